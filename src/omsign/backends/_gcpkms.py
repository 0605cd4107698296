"""Signing with an EC key kept in Google Cloud KMS.

``gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]``, as
cosign writes it. Without a version, the newest enabled version is used (and named in
the log). The version's algorithm must be ``EC_SIGN_P256_SHA256`` or
``EC_SIGN_P384_SHA384`` (Cloud KMS has no P-521 signing keys); only the digest is sent.
Credentials come from Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, workload identity), never from a flag.
google-cloud-kms is optional: ``pip install 'omsign[gcpkms]'``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from omsign.backends import PasswordSource
from omsign.backends._remote import RemoteSigningKey, load_public
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

__all__ = ["load_signing_key", "parse_gcpkms_uri", "pick_version"]

logger = logging.getLogger("omsign")

_SEGMENT = r"[A-Za-z0-9_-]+"
_URI = re.compile(
    rf"gcpkms://(?P<key>projects/{_SEGMENT}/locations/{_SEGMENT}/keyRings/{_SEGMENT}"
    rf"/cryptoKeys/{_SEGMENT})(?:/cryptoKeyVersions/(?P<version>[0-9]+))?"
)
# Cloud KMS algorithm -> (digest field of the sign request, curve name).
_ALGORITHMS = {
    "EC_SIGN_P256_SHA256": ("sha256", "secp256r1"),
    "EC_SIGN_P384_SHA384": ("sha384", "secp384r1"),
}
# google.api_core exception class name -> what to check.
_ERRORS = {
    "PermissionDenied": "permission denied: the credentials need cloudkms.cryptoKeyVersions."
    "useToSign and viewPublicKey on this key",
    "NotFound": "no such key or key version (check project, location, key ring and key)",
    "Unauthenticated": "the credentials were refused; refresh them "
    "(gcloud auth application-default login)",
    "FailedPrecondition": "the key version cannot be used in its current state "
    "(disabled or scheduled for destruction)",
    "ResourceExhausted": "the key service throttled the request; try again later",
    "TooManyRequests": "the key service throttled the request; try again later",
    "ServiceUnavailable": "the key service is unreachable; check the network and try again",
    "DeadlineExceeded": "the key service did not answer in time; try again",
}


def parse_gcpkms_uri(uri: str) -> tuple[str, str | None]:
    """Splits a ``gcpkms://`` URI into the key's resource name and its version, if given.

    Raises:
        UsageError: the URI is not of that form.
    """
    match = _URI.fullmatch(uri)
    if match is None:
        raise UsageError(
            f"{uri}: not a Google Cloud KMS key URI; expected gcpkms://projects/P/locations/L/"
            "keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]"
        )
    return match["key"], match["version"]


def _state_name(value: Any) -> str:
    return str(getattr(value, "name", value))


def pick_version(key: str, versions: Iterable[Any]) -> str:
    """The newest ``ENABLED`` version's resource name among a key's versions.

    Raises:
        KeyLoadError: no version is enabled.
    """
    enabled = [v.name for v in versions if _state_name(v.state) == "ENABLED"]
    if not enabled:
        raise KeyLoadError(f"gcpkms://{key}: the key has no enabled version")
    return str(max(enabled, key=lambda name: int(name.rsplit("/", 1)[1])))


def _explain(uri: str, exc: Exception) -> KeyLoadError | BackendUnavailableError:
    name = type(exc).__name__
    if name == "DefaultCredentialsError":
        return KeyLoadError(
            f"{uri}: no Google Cloud credentials found; set GOOGLE_APPLICATION_CREDENTIALS or "
            "run gcloud auth application-default login"
        )
    detail = _ERRORS.get(name)
    if detail is None:
        first = str(exc).splitlines()[0] if str(exc) else name
        return KeyLoadError(f"{uri}: the key service failed: {first}")
    if name in ("ServiceUnavailable", "DeadlineExceeded"):
        return BackendUnavailableError(f"{uri}: {detail}")
    return KeyLoadError(f"{uri}: {detail}")


def _client() -> Any:
    try:
        from google.cloud import kms
    except ImportError:
        raise BackendUnavailableError(
            "Google Cloud KMS keys need google-cloud-kms: pip install 'omsign[gcpkms]'"
        ) from None
    return kms.KeyManagementServiceClient()


def load_signing_key(
    uri: str, password_source: PasswordSource, client: Any = None
) -> RemoteSigningKey:
    """Looks the key version up in Cloud KMS and returns a signer for it.

    Args:
        uri: the ``gcpkms://`` URI.
        password_source: unused (credentials come from Application Default Credentials).
        client: a ``KeyManagementServiceClient`` (made here when not given).

    Raises:
        UsageError: the URI is malformed.
        KeyLoadError: credentials, permissions, key state or algorithm are wrong.
        BackendUnavailableError: the library is missing or the service unreachable.
    """
    del password_source
    key, version = parse_gcpkms_uri(uri)
    client = client or _client()
    try:
        if version is None:
            versions = list(client.list_crypto_key_versions(request={"parent": key}))
        else:
            name = f"{key}/cryptoKeyVersions/{version}"
            state = _state_name(client.get_crypto_key_version(request={"name": name}).state)
    except Exception as exc:  # the SDK's exceptions have no common base without importing it
        raise _explain(uri, exc) from None
    if version is None:
        name = pick_version(key, versions)
        logger.info("%s: signing with version %s", uri, name.rsplit("/", 1)[1])
    elif state != "ENABLED":
        raise KeyLoadError(f"{uri}: the key version is {state}, not ENABLED")
    try:
        answer = client.get_public_key(request={"name": name})
    except Exception as exc:
        raise _explain(uri, exc) from None
    algorithm = _state_name(answer.algorithm)
    if algorithm not in _ALGORITHMS:
        raise KeyLoadError(
            f"{uri}: the key's algorithm is {algorithm}; omsign signs with "
            "EC_SIGN_P256_SHA256 or EC_SIGN_P384_SHA384 keys"
        )
    field, curve = _ALGORITHMS[algorithm]
    pem = answer.pem.encode() if isinstance(answer.pem, str) else bytes(answer.pem)
    public = load_public(pem, uri)
    if public.curve.name != curve:
        raise KeyLoadError(f"{uri}: the service reported a {algorithm} key with another curve")

    def call(data: bytes, digest: bytes) -> bytes:
        del data  # only the digest leaves this machine
        try:
            result = client.asymmetric_sign(request={"name": name, "digest": {field: digest}})
        except Exception as exc:
            raise _explain(uri, exc) from None
        return bytes(result.signature)

    return RemoteSigningKey(uri, public, call)
