"""Who is trusted: verifiers for each signing method, and policies built from them.

A :class:`Verifier` checks one bundle and returns a :class:`VerifiedSignature`
(what was signed, by whom, and when if a trusted timestamp or log entry says so).
Each signing method's backend provides its verifier (:class:`KeyPolicy`,
:class:`CertificatePolicy`, :class:`SigstorePolicy`), registered by method name in
``_registry``; :func:`policy_from_options` builds the one the trust options ask for.
:class:`AnyOf` and :class:`Threshold` combine verifiers, and :func:`verify_bundles`
evaluates a policy over several bundles, reporting who verified and who did not.

Names are imported lazily: checking a key signature loads neither Sigstore nor X.509.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from omsign.policy._base import (
    MethodMismatchError,
    Policy,
    VerifiedSignature,
    Verifier,
    verify_signature,
)

if TYPE_CHECKING:
    from omsign.backends._certificate import CertificatePolicy
    from omsign.backends._key import KeyPolicy
    from omsign.backends._stamps import load_tsa_anchors, tsa_anchors_from_trust_config
    from omsign.backends.sigstore import SigstorePolicy
    from omsign.policy._build import policy_from_options
    from omsign.policy._composite import (
        AnyOf,
        BundleFailure,
        PolicyOutcome,
        SignerReport,
        Threshold,
        verify_bundles,
    )
    from omsign.policy._file import Decision, PolicyFile, load_policy
    from omsign.policy._registry import Method, register_method, unregister_method

__all__ = [
    "AnyOf",
    "BundleFailure",
    "CertificatePolicy",
    "Decision",
    "KeyPolicy",
    "Method",
    "MethodMismatchError",
    "Policy",
    "PolicyFile",
    "PolicyOutcome",
    "SignerReport",
    "SigstorePolicy",
    "Threshold",
    "VerifiedSignature",
    "Verifier",
    "load_policy",
    "load_tsa_anchors",
    "policy_from_options",
    "register_method",
    "tsa_anchors_from_trust_config",
    "unregister_method",
    "verify_bundles",
    "verify_signature",
]

_LAZY = {
    "KeyPolicy": "omsign.backends._key",
    "CertificatePolicy": "omsign.backends._certificate",
    "SigstorePolicy": "omsign.backends.sigstore",
    "load_tsa_anchors": "omsign.backends._stamps",
    "tsa_anchors_from_trust_config": "omsign.backends._stamps",
    "policy_from_options": "omsign.policy._build",
    "AnyOf": "omsign.policy._composite",
    "BundleFailure": "omsign.policy._composite",
    "PolicyOutcome": "omsign.policy._composite",
    "SignerReport": "omsign.policy._composite",
    "Threshold": "omsign.policy._composite",
    "verify_bundles": "omsign.policy._composite",
    "Decision": "omsign.policy._file",
    "PolicyFile": "omsign.policy._file",
    "load_policy": "omsign.policy._file",
    "Method": "omsign.policy._registry",
    "register_method": "omsign.policy._registry",
    "unregister_method": "omsign.policy._registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omsign.policy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
