"""The keyword forms of the options, each defined once, and how they become option values.

``sign``, ``verify``, ``digest``, ``open_verified``, ``make_policy`` and ``make_signer``
take their options either as values (:class:`~omsign.options.HashOptions`,
:class:`~omsign.options.VerifyScope`, :class:`~omsign.options.Runtime`, a policy or a
signer) or as keywords. The keywords are typed once here (as ``TypedDict`` s) and turned
into the values by the functions below; giving one setting both ways is a
:class:`~omsign.errors.UsageError`, and an unknown keyword a ``TypeError`` as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypedDict

from omsign.errors import UsageError
from omsign.options import HashOptions, PathLike, ProgressCallback, Runtime, VerifyScope

if TYPE_CHECKING:
    from omsign.hashing import LinkPolicy

__all__ = [
    "DigestKeywords",
    "HashKeywords",
    "RuntimeKeywords",
    "ScopeKeywords",
    "SignKeywords",
    "SignerOptions",
    "TrustOptions",
    "VerifyKeywords",
    "check_keywords",
    "hash_options",
    "pick",
    "runtime",
    "verify_scope",
]


class TrustOptions(TypedDict, total=False):
    """Whom a verification trusts (exactly one method); see :func:`omsign.make_policy`.

    Keys:
        key: trusted public key PEM path(s) (key method).
        cert_chain: trusted CA certificates (certificate method).
        identity: expected Sigstore certificate identity (e-mail, URI).
        identity_regexp: a regular expression the identity must fully match, instead.
        issuer: expected OIDC issuer URL (Sigstore).
        github_repository: Sigstore: required GitHub Actions repository claim.
        github_ref: Sigstore: required GitHub Actions ref claim.
        github_workflow_name: Sigstore: required GitHub Actions workflow name claim.
        tsa_certs: trusted RFC 3161 timestamp authority roots.
        offline: Sigstore: make no network call; use the cached or shipped trust root.
        staging: Sigstore: use the staging instance.
        trust_config: a Sigstore ClientTrustConfig file (private instance; with a key or
            CA anchors, its timestamp authorities are trusted).
    """

    key: PathLike | Sequence[PathLike] | None
    cert_chain: PathLike | Sequence[PathLike]
    identity: str | None
    identity_regexp: str | None
    issuer: str | None
    github_repository: str | None
    github_ref: str | None
    github_workflow_name: str | None
    tsa_certs: PathLike | Sequence[PathLike]
    offline: bool
    staging: bool
    trust_config: PathLike | None


class SignerOptions(TypedDict, total=False):
    """How to sign; see :func:`omsign.make_signer`.

    Keys:
        key: private key PEM path or ``pkcs11:`` URI (none: Sigstore keyless).
        certificate: leaf certificate PEM for the key (certificate method).
        chain: PEM files with the intermediate certificates to embed.
        password: the key's password (else ``$OMSIGN_PASSWORD`` or a prompt).
        tsa_url: an RFC 3161 timestamp authority to timestamp the signature.
        identity_token: OIDC token for Sigstore keyless signing.
        staging: use the Sigstore staging instance.
        trust_config: a Sigstore ClientTrustConfig file (private instances).
        oauth_out_of_band: Sigstore browser login by pasting a code (no local redirect).
    """

    key: PathLike | None
    certificate: PathLike | None
    chain: PathLike | Sequence[PathLike]
    password: bytes | str | None
    tsa_url: str | None
    identity_token: str | None
    staging: bool
    trust_config: PathLike | None
    oauth_out_of_band: bool


class HashKeywords(TypedDict, total=False):
    """The keyword form of :class:`~omsign.options.HashOptions` (``hashing=``)."""

    hash_algorithm: str
    shard_size: int | None
    ignore_paths: PathLike | Sequence[PathLike]
    allow_symlinks: bool


class ScopeKeywords(TypedDict, total=False):
    """The keyword form of :class:`~omsign.options.VerifyScope` (``scope=``)."""

    ignore_paths: PathLike | Sequence[PathLike]
    ignore_unsigned_files: bool
    allow_missing: bool
    files: str | Sequence[str] | None
    link_policy: LinkPolicy | None


class RuntimeKeywords(TypedDict, total=False):
    """The keyword form of :class:`~omsign.options.Runtime` (``runtime=``)."""

    workers: int | None
    progress: ProgressCallback | None
    executor: Executor | None


class SignKeywords(SignerOptions, HashKeywords, RuntimeKeywords, total=False):
    """Every keyword option of :func:`omsign.sign`."""


class DigestKeywords(HashKeywords, RuntimeKeywords, total=False):
    """Every keyword option of :func:`omsign.digest`."""


class VerifyKeywords(TrustOptions, ScopeKeywords, RuntimeKeywords, total=False):
    """Every keyword option of :func:`omsign.verify` and :func:`omsign.open_verified`."""


def _keys(kind: Any) -> frozenset[str]:
    return frozenset(kind.__required_keys__ | kind.__optional_keys__)


def check_keywords(function: str, given: Mapping[str, object], kind: Any) -> None:
    """Raises ``TypeError`` for a keyword that ``kind`` does not define, as Python would."""
    unknown = sorted(set(given) - _keys(kind))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")


def pick(given: Mapping[str, Any], kind: Any) -> dict[str, Any]:
    """The keywords of ``given`` that ``kind`` defines."""
    keys = _keys(kind)
    return {k: v for k, v in given.items() if k in keys}


def _twice(value_name: str, keywords: Sequence[str]) -> UsageError:
    return UsageError(
        "the same settings were given twice, as an option value and as keywords",
        options=(value_name, *keywords),
        hint="give {option0} or "
        + ", ".join(f"{{option{i}}}" for i in range(1, len(keywords) + 1))
        + ", not both",
    )


def hash_options(hashing: HashOptions | None, given: Mapping[str, Any]) -> HashOptions:
    """The hashing settings, from ``hashing=`` or from the keywords (not both)."""
    kw = pick(given, HashKeywords)
    if hashing is not None:
        if kw:
            raise _twice("hashing", sorted(kw))
        return hashing
    return HashOptions(
        algorithm=kw.get("hash_algorithm", "sha256"),
        shard_size=kw.get("shard_size"),
        ignore_paths=kw.get("ignore_paths", ()),
        allow_symlinks=kw.get("allow_symlinks", False),
    )


def verify_scope(scope: VerifyScope | None, given: Mapping[str, Any]) -> VerifyScope:
    """What verification covers, from ``scope=`` or from the keywords (not both)."""
    kw = pick(given, ScopeKeywords)
    if scope is not None:
        if kw:
            raise _twice("scope", sorted(kw))
        return scope
    return VerifyScope(
        ignore_unsigned_files=kw.get("ignore_unsigned_files", False),
        allow_missing=kw.get("allow_missing", False),
        files=kw.get("files"),
        ignore_paths=kw.get("ignore_paths", ()),
        link_policy=kw.get("link_policy"),
    )


def runtime(value: Runtime | None, given: Mapping[str, Any]) -> Runtime:
    """How the work runs, from ``runtime=`` or from the keywords (not both)."""
    kw = pick(given, RuntimeKeywords)
    if value is not None:
        if kw:
            raise _twice("runtime", sorted(kw))
        return value
    return Runtime(
        workers=kw.get("workers"), progress=kw.get("progress"), executor=kw.get("executor")
    )
