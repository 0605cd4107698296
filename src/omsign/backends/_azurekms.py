"""Signing with an EC key kept in Azure Key Vault (or a Managed HSM).

``azurekms://VAULT-NAME.vault.azure.net/KEY[/VERSION]``, as cosign writes it; the vault
is reached over HTTPS. Without a version, the key's current version is used. The key
must be an EC key on P-256, P-384 or P-521 that allows ``sign``; omsign signs with
ES256/ES384/ES512 and sends only the digest. Credentials come from azure-identity's
``DefaultAzureCredential`` (environment, workload or managed identity, Azure CLI login),
never from a flag. The SDK is optional: ``pip install 'omsign[azurekms]'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import PasswordSource
from omsign.backends._ec import check_ec_key
from omsign.backends._remote import RemoteSigningKey, der_from_raw
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

__all__ = ["load_signing_key", "parse_azurekms_uri", "public_key_from_jwk"]

_URI = re.compile(
    r"azurekms://(?P<host>[a-z0-9-]{3,24}\.(?:vault|managedhsm)\.[a-z0-9.-]+)"
    r"/(?P<key>[A-Za-z0-9-]{1,127})(?:/(?P<version>[A-Za-z0-9]{1,64}))?"
)
# JWK curve -> cryptography curve; curve name -> JWS signature algorithm.
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}
_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
# HTTP status -> what to check.
_STATUS = {
    401: "the credentials were refused; log in again (az login) or check the identity",
    403: "access denied: the identity needs the keys/get and keys/sign permissions "
    "(or the Key Vault Crypto User role) on this vault",
    404: "no such key or version in this vault",
    429: "the key vault throttled the request; try again later",
}

# Makes (vault URL, credential) -> a KeyClient; and (key, credential) -> a CryptographyClient.
ClientFactory = Callable[..., Any]


def parse_azurekms_uri(uri: str) -> tuple[str, str, str | None]:
    """Splits an ``azurekms://`` URI into the vault URL, the key name and its version.

    Raises:
        UsageError: the URI is not of that form.
    """
    match = _URI.fullmatch(uri)
    if match is None:
        raise UsageError(
            f"{uri}: not an Azure Key Vault key URI; expected "
            "azurekms://VAULT-NAME.vault.azure.net/KEY[/VERSION]"
        )
    return f"https://{match['host']}", match["key"], match["version"]


def public_key_from_jwk(jwk: Any, source: str) -> ec.EllipticCurvePublicKey:
    """The public key of a Key Vault JSON Web Key (``kty`` EC or EC-HSM).

    Raises:
        KeyLoadError: not an EC key on a supported curve.
    """
    kty, crv = (str(getattr(v, "value", v) or "") for v in (jwk.kty, jwk.crv))
    if kty not in ("EC", "EC-HSM") or crv not in _CURVES:
        raise KeyLoadError(
            f"{source}: the key is {kty} {crv}".rstrip()
            + "; omsign signs with EC keys on P-256, P-384 or P-521"
        )
    x, y = bytes(jwk.x), bytes(jwk.y)
    try:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), _CURVES[crv]()
        ).public_key()
    except ValueError:
        raise KeyLoadError(f"{source}: the vault returned a point that is not on {crv}") from None
    return check_ec_key(key, source)


def _explain(uri: str, exc: Exception) -> KeyLoadError | BackendUnavailableError:
    name = type(exc).__name__
    if name in ("CredentialUnavailableError", "ClientAuthenticationError"):
        return KeyLoadError(
            f"{uri}: no usable Azure credentials; set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            "AZURE_CLIENT_SECRET, use a managed identity, or run az login"
        )
    if name in ("ServiceRequestError", "ServiceRequestTimeoutError", "ServiceResponseError"):
        return BackendUnavailableError(f"{uri}: cannot reach the key vault ({exc})")
    status = getattr(exc, "status_code", None)
    if status in _STATUS:
        return KeyLoadError(f"{uri}: {_STATUS[status]}")
    first = str(exc).splitlines()[0] if str(exc) else name
    return KeyLoadError(f"{uri}: the key vault failed: {first}")


def _factories() -> tuple[ClientFactory, ClientFactory, Any]:
    try:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.keys import KeyClient
        from azure.keyvault.keys.crypto import CryptographyClient
    except ImportError:
        raise BackendUnavailableError(
            "Azure Key Vault keys need azure-keyvault-keys and azure-identity: "
            "pip install 'omsign[azurekms]'"
        ) from None
    return KeyClient, CryptographyClient, DefaultAzureCredential()


def load_signing_key(
    uri: str,
    password_source: PasswordSource,
    factories: tuple[ClientFactory, ClientFactory, Any] | None = None,
) -> RemoteSigningKey:
    """Looks the key up in the vault and returns a signer for it.

    Args:
        uri: the ``azurekms://`` URI.
        password_source: unused (credentials come from ``DefaultAzureCredential``).
        factories: ``(KeyClient, CryptographyClient, credential)``; the SDK's by default.

    Raises:
        UsageError: the URI is malformed.
        KeyLoadError: credentials, permissions, key state or key type are wrong.
        BackendUnavailableError: the SDK is missing or the vault unreachable.
    """
    del password_source
    vault, name, version = parse_azurekms_uri(uri)
    key_client, crypto_client, credential = factories or _factories()
    try:
        key = key_client(vault, credential).get_key(name, version)
    except Exception as exc:  # the SDK's errors share no base class without importing it
        raise _explain(uri, exc) from None
    if getattr(key.properties, "enabled", True) is False:
        raise KeyLoadError(f"{uri}: the key version is disabled; enable it or use another")
    operations = [str(getattr(op, "value", op)) for op in (key.key_operations or ["sign"])]
    if "sign" not in operations:
        raise KeyLoadError(f"{uri}: the key does not allow the sign operation")
    public = public_key_from_jwk(key.key, uri)
    algorithm = _ALGORITHMS[public.curve.name]
    signer = crypto_client(key, credential)

    def call(data: bytes, digest: bytes) -> bytes:
        del data  # only the digest leaves this machine
        try:
            result = signer.sign(algorithm, digest)
        except Exception as exc:
            raise _explain(uri, exc) from None
        return der_from_raw(bytes(result.signature), public, uri)

    return RemoteSigningKey(uri, public, call)
