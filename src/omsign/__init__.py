"""omsign: sign and verify machine-learning models in the OMS v1.0 format.

>>> import omsign
>>> omsign.sign("my-model", key="private.pem")                # doctest: +SKIP
>>> result = omsign.verify("my-model", key="public.pem")     # doctest: +SKIP
>>> result.signer, result.root_digest, result.verified       # doctest: +SKIP

Names are imported lazily so that ``import omsign`` and ``omsign --version`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from omsign._version import __version__

if TYPE_CHECKING:
    from omsign._api import accept_signers, make_policy, verify
    from omsign._attest import attest
    from omsign._lineage import (
        Lineage,
        LineageEdge,
        LineageError,
        LineageNode,
        lineage,
        render_lineage_html,
    )
    from omsign._predicate_builders import (
        bom_predicate,
        model_card_predicate,
        provenance_predicate,
    )
    from omsign._public_key import export_public_key
    from omsign._sign import digest, make_signer, sign
    from omsign.inspect import SignatureDescription, describe_signature
    from omsign.loading import VerifiedModel, load_safetensors, open_verified
    from omsign.manifest import Difference, Manifest, Serialization
    from omsign.options import HashOptions, Runtime, VerifyScope
    from omsign.policy import CertificatePolicy, KeyPolicy, PolicyFile, SigstorePolicy, load_policy
    from omsign.results import AttestResult, SignResult, VerificationResult, VerifiedSigner

__all__ = [
    "AttestResult",
    "CertificatePolicy",
    "Difference",
    "HashOptions",
    "KeyPolicy",
    "Lineage",
    "LineageEdge",
    "LineageError",
    "LineageNode",
    "Manifest",
    "PolicyFile",
    "Serialization",
    "Runtime",
    "SignResult",
    "SignatureDescription",
    "SigstorePolicy",
    "VerificationResult",
    "VerifiedModel",
    "VerifiedSigner",
    "VerifyScope",
    "__version__",
    "accept_signers",
    "attest",
    "bom_predicate",
    "describe_signature",
    "digest",
    "export_public_key",
    "load_policy",
    "lineage",
    "load_safetensors",
    "make_policy",
    "make_signer",
    "model_card_predicate",
    "open_verified",
    "provenance_predicate",
    "render_lineage_html",
    "sign",
    "verify",
]

_LAZY = {
    "attest": "omsign._attest",
    "provenance_predicate": "omsign._predicate_builders",
    "model_card_predicate": "omsign._predicate_builders",
    "bom_predicate": "omsign._predicate_builders",
    "AttestResult": "omsign.results",
    "export_public_key": "omsign._public_key",
    "sign": "omsign._sign",
    "digest": "omsign._sign",
    "make_signer": "omsign._sign",
    "SignResult": "omsign.results",
    "verify": "omsign._api",
    "accept_signers": "omsign._api",
    "make_policy": "omsign._api",
    "VerificationResult": "omsign.results",
    "VerifiedSigner": "omsign.results",
    "HashOptions": "omsign.options",
    "VerifyScope": "omsign.options",
    "Runtime": "omsign.options",
    "describe_signature": "omsign.inspect",
    "SignatureDescription": "omsign.inspect",
    "VerifiedModel": "omsign.loading",
    "open_verified": "omsign.loading",
    "load_safetensors": "omsign.loading",
    "Difference": "omsign.manifest",
    "Manifest": "omsign.manifest",
    "Serialization": "omsign.manifest",
    "KeyPolicy": "omsign.policy",
    "CertificatePolicy": "omsign.policy",
    "SigstorePolicy": "omsign.policy",
    "PolicyFile": "omsign.policy",
    "load_policy": "omsign.policy",
    "Lineage": "omsign._lineage",
    "LineageEdge": "omsign._lineage",
    "LineageNode": "omsign._lineage",
    "LineageError": "omsign._lineage",
    "lineage": "omsign._lineage",
    "render_lineage_html": "omsign._lineage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omsign' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
