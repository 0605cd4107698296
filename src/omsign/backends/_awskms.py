"""Signing with an EC key kept in AWS KMS: ``awskms://[ENDPOINT]/KEY``.

``KEY`` is a key id (``1234abcd-...``, ``mrk-...``), a key ARN, ``alias/NAME`` or an
alias ARN, as cosign writes them; ``ENDPOINT`` (optional) is a host[:port] reached over
HTTPS. Without it, boto3's own configuration applies (``AWS_ENDPOINT_URL``, profiles).
Credentials and region come from boto3's standard chain (environment, profile, SSO,
instance or workload role), never from a flag; a key ARN names its region.

The key must be ``ECC_NIST_P256``, ``ECC_NIST_P384`` or ``ECC_NIST_P521`` with usage
``SIGN_VERIFY``; omsign signs with ECDSA and the curve's hash. KMS takes a ``RAW``
message of up to 4,096 bytes (and hashes it itself) or a ``DIGEST``: the DSSE PAE (the
statement of file digests, never model content) is sent as ``RAW`` when it fits, else
its locally computed digest is sent. boto3 is optional: ``pip install 'omsign[awskms]'``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from omsign.backends import PasswordSource
from omsign.backends._remote import RemoteSigningKey, load_public
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

__all__ = ["AwsKeyRef", "load_signing_key", "parse_awskms_uri"]

_RAW_LIMIT = 4096  # bytes KMS accepts as a RAW message
_HEX = "[0-9A-Fa-f]"
_UUID = rf"(?:mrk-[0-9a-f]{{32}}|{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})"
_ARN = r"arn:aws(?:-us-gov|-cn)?:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:"
_KEY = re.compile(rf"(?:{_UUID}|alias/[A-Za-z0-9/_-]+|{_ARN}(?:key/{_UUID}|alias/[A-Za-z0-9/_-]+))")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
# KMS key spec -> (signing algorithm, curve name).
_SPECS = {
    "ECC_NIST_P256": ("ECDSA_SHA_256", "secp256r1"),
    "ECC_NIST_P384": ("ECDSA_SHA_384", "secp384r1"),
    "ECC_NIST_P521": ("ECDSA_SHA_512", "secp521r1"),
}
# Error codes -> what to check, for one-line messages.
_CODES = {
    "AccessDeniedException": "access denied: the credentials need kms:GetPublicKey and kms:Sign "
    "on this key",
    "NotFoundException": "no such key (check the key id, alias, region and account)",
    "DisabledException": "the key is disabled; enable it or use another key",
    "KMSInvalidStateException": "the key cannot be used in its current state (disabled, "
    "pending deletion or import)",
    "InvalidKeyUsageException": "the key cannot sign: its usage must be SIGN_VERIFY",
    "ThrottlingException": "the key service throttled the request; try again later",
    "UnrecognizedClientException": "the credentials are not valid for this account",
    "InvalidSignatureException": "the credentials are not valid (the request signature was "
    "refused); check the secret key and the clock",
    "ExpiredTokenException": "the session credentials have expired; refresh them",
    "KMSInternalException": "the key service failed; try again later",
}


@dataclass(frozen=True)
class AwsKeyRef:
    """A parsed ``awskms://`` URI.

    Attributes:
        endpoint: ``https://HOST[:PORT]``, or None for boto3's configured endpoint.
        key_id: the key id, key ARN, alias name or alias ARN.
        region: the region an ARN names, else None (boto3's configured region).
    """

    endpoint: str | None
    key_id: str
    region: str | None


def parse_awskms_uri(uri: str) -> AwsKeyRef:
    """Parses ``awskms://[ENDPOINT]/KEY`` (the forms cosign accepts).

    Raises:
        UsageError: the URI is not of that form.
    """
    form = "awskms://[ENDPOINT]/KEY-ID, ALIAS or ARN (e.g. awskms:///alias/model-signing)"
    if not uri.startswith("awskms://"):
        raise UsageError(f"{uri}: not an AWS KMS key URI; expected {form}")
    host, sep, key = uri[len("awskms://") :].partition("/")
    if not sep or not key or (host and not _HOST.fullmatch(host)):
        raise UsageError(f"{uri}: not an AWS KMS key URI; expected {form}")
    match = _KEY.fullmatch(key)
    if match is None:
        raise UsageError(f"{uri}: {key!r} is not a KMS key id, alias or ARN; expected {form}")
    return AwsKeyRef(f"https://{host}" if host else None, key, match.group("region"))


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise BackendUnavailableError(
            "AWS KMS keys need boto3: pip install 'omsign[awskms]'"
        ) from None
    return boto3


def _explain(uri: str, exc: Exception) -> KeyLoadError | BackendUnavailableError:
    """One line for anything boto3 raises: what happened and what to check."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        detail = _CODES.get(code) or (
            f"{code}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")
        )
        return KeyLoadError(f"{uri}: {detail}")
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return KeyLoadError(
            f"{uri}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or run where an instance or workload role is available"
        )
    if isinstance(exc, bex.NoRegionError):
        return KeyLoadError(
            f"{uri}: no AWS region configured; set AWS_REGION (or AWS_DEFAULT_REGION) or "
            "name the key by its ARN"
        )
    if isinstance(exc, bex.ProfileNotFound):
        return KeyLoadError(f"{uri}: {exc}")
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError)):
        return BackendUnavailableError(f"{uri}: cannot reach the key service ({exc})")
    return KeyLoadError(f"{uri}: the key service failed: {type(exc).__name__}: {exc}")


def _client(ref: AwsKeyRef) -> Any:
    boto3 = _boto3()
    from botocore.config import Config

    config = Config(
        connect_timeout=10,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        user_agent_extra="omsign",
    )
    kwargs: dict[str, Any] = {"config": config}
    if ref.endpoint:
        kwargs["endpoint_url"] = ref.endpoint
    region = ref.region or os.environ.get("AWS_REGION")  # the variable other AWS SDKs read
    if region:
        kwargs["region_name"] = region
    return boto3.session.Session().client("kms", **kwargs)


def _check_state(uri: str, client: Any, key_id: str) -> None:
    """Refuses a key that is not enabled, when the credentials may describe it.

    kms:DescribeKey is not needed to sign; without it the check is left to ``Sign``.
    """
    from botocore.exceptions import ClientError

    try:
        state = client.describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState", "Enabled")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "AccessDeniedException":
            return
        raise
    if state != "Enabled":
        raise KeyLoadError(f"{uri}: the key is {state}, not Enabled; enable it or use another key")


def load_signing_key(uri: str, password_source: PasswordSource) -> RemoteSigningKey:
    """Looks the key up in AWS KMS and returns a signer for it (see the module docstring).

    ``password_source`` is unused: AWS credentials come from boto3's standard chain.

    Raises:
        UsageError: the URI is malformed.
        KeyLoadError: credentials, permissions, key state or key type are wrong.
        BackendUnavailableError: boto3 is missing or the service cannot be reached.
    """
    del password_source
    ref = parse_awskms_uri(uri)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = _client(ref)
        answer = client.get_public_key(KeyId=ref.key_id)
        _check_state(uri, client, ref.key_id)
    except (BotoCoreError, ClientError) as exc:
        raise _explain(uri, exc) from None
    spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
    if spec not in _SPECS:
        raise KeyLoadError(
            f"{uri}: the key is {spec}; omsign signs with ECC_NIST_P256, ECC_NIST_P384 or "
            "ECC_NIST_P521 keys"
        )
    if answer.get("KeyUsage") != "SIGN_VERIFY":
        raise KeyLoadError(f"{uri}: the key cannot sign: its usage must be SIGN_VERIFY")
    algorithm, curve = _SPECS[spec]
    if algorithm not in answer.get("SigningAlgorithms", [algorithm]):
        raise KeyLoadError(f"{uri}: the key does not offer {algorithm}")
    public = load_public(answer["PublicKey"], uri)
    if public.curve.name != curve:
        raise KeyLoadError(f"{uri}: the service reported a {spec} key with another curve")
    key_id = answer.get("KeyId", ref.key_id)  # the key ARN: an alias moved later is not followed

    def call(data: bytes, digest: bytes) -> bytes:
        raw = len(data) <= _RAW_LIMIT
        try:
            result = client.sign(
                KeyId=key_id,
                Message=data if raw else digest,
                MessageType="RAW" if raw else "DIGEST",
                SigningAlgorithm=algorithm,
            )
        except (BotoCoreError, ClientError) as exc:
            raise _explain(uri, exc) from None
        signature: bytes = result["Signature"]
        return signature

    return RemoteSigningKey(uri, public, call)
