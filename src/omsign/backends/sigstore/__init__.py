"""Sigstore keyless signing and verification, built on sigstore-python.

Signing gets an OIDC identity token, obtains a short-lived certificate from
Fulcio, signs the in-toto statement as a DSSE envelope and logs it in Rekor (and
timestamps it when the instance has a TSA). Verification checks the chain to
the Fulcio root at the logged or timestamped time, the SCT, the log entry and
the envelope signature, then the signer's identity against a
:class:`SigstoreIdentityPolicy`.

sigstore-python is imported only inside the functions that need it. The package is
split by concern: ``_trust`` (which instance), ``_identity`` (who must have signed),
``_verify`` (checking a bundle), ``_policy`` (the verifier), ``_sign``, and ``_cert``
(reading Fulcio certificates and log entries).
"""

from __future__ import annotations

from omsign.backends.sigstore._cert import describe_sigstore_material
from omsign.backends.sigstore._identity import SigstoreIdentityPolicy
from omsign.backends.sigstore._policy import SigstorePolicy
from omsign.backends.sigstore._sign import SigstoreBundleSigner
from omsign.backends.sigstore._trust import SigstoreSettings
from omsign.backends.sigstore._verify import SigstoreVerified, verify_sigstore_bundle

__all__ = [
    "SigstoreBundleSigner",
    "SigstoreIdentityPolicy",
    "SigstorePolicy",
    "SigstoreSettings",
    "SigstoreVerified",
    "describe_sigstore_material",
    "verify_sigstore_bundle",
]
