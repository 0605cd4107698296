"""RFC 3161 timestamps over DSSE signatures, for the key and certificate methods.

A timestamp proves that a signature existed at a time vouched for by a timestamp
authority (TSA), so a certificate that has since expired can still be checked at
the moment of signing. As in Sigstore, the timestamp covers the raw DSSE signature
bytes, and the bundle stores the DER ``TimeStampResp`` in
``verificationMaterial.timestampVerificationData.rfc3161Timestamps[].signedTimestamp``
(sigstore-python 4.5 writes and reads exactly these bytes).

Verification trusts only the anchors the caller passes: never the system store. An
anchor is a certificate (a root, or an intermediate the caller chose to trust, from a
PEM file) or a :class:`TimestampAuthority` of a trust config, which vouches only for
tokens signed by its own listed certificate within its ``validFor`` window.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

from omsign.backends._timestamp_authorities import TimestampAuthority
from omsign.errors import BackendUnavailableError, Error, SignatureError, UsageError

if TYPE_CHECKING:
    from cryptography import x509
    from rfc3161_client import TimeStampResponse

# What a timestamp may be verified against: a trusted certificate, or a listed authority.
TimestampAnchor = Union["x509.Certificate", TimestampAuthority]

_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_GRANTED = 0
_MAX_REPLY = 1 << 20


def request_timestamp(url: str, signature: bytes, *, timeout: float = 30.0) -> bytes:
    """Ask the TSA at ``url`` to timestamp ``signature``.

    The request carries the SHA-256 of ``signature``, a random nonce and certReq, so
    the reply embeds the TSA certificate. The reply is checked (granted, same nonce,
    same message imprint) but not verified against any trust anchor.

    Args:
        url: the TSA endpoint (http or https).
        signature: the DSSE signature bytes to timestamp.
        timeout: seconds to wait for the TSA.

    Returns:
        The DER ``TimeStampResp``, as stored (base64) in ``signedTimestamp``.

    Raises:
        UsageError: ``url`` is not an http(s) URL.
        BackendUnavailableError: the TSA cannot be reached or answers with an HTTP error.
        Error: the TSA answered, but not with a usable timestamp for this request.
    """
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    if not url.lower().startswith(("http://", "https://")):
        raise UsageError(f"timestamp authority URL must be http or https: {url}")
    request = (
        TimestampRequestBuilder()
        .hash_algorithm(HashAlgorithm.SHA256)
        .data(signature)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    body = _post(url, request.as_bytes(), timeout)
    response = _parse_reply(url, body)
    info = response.tst_info
    imprint = info.message_imprint
    if info.nonce != request.nonce:
        raise Error(f"timestamp authority {url} answered with the wrong nonce (replayed reply?)")
    if (
        imprint.hash_algorithm.dotted_string != "2.16.840.1.101.3.4.2.1"
        or imprint.message != hashlib.sha256(signature).digest()
    ):
        raise Error(f"timestamp authority {url} timestamped different data than requested")
    if not response.signed_data.certificates:
        raise Error(f"timestamp authority {url} did not include its certificate in the reply")
    return response.as_bytes()


def _post(url: str, query: bytes, timeout: float) -> bytes:
    """POST ``query`` to ``url``; network and HTTP failures become BackendUnavailableError."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (scheme checked by the caller)
        url,
        data=query,
        method="POST",
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            return bytes(reply.read(_MAX_REPLY))
    except urllib.error.HTTPError as exc:
        raise BackendUnavailableError(
            f"timestamp authority {url} answered HTTP {exc.code} {exc.reason}"
        ) from exc
    except urllib.error.URLError as exc:
        raise BackendUnavailableError(
            f"timestamp authority {url} is unreachable: {exc.reason}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise BackendUnavailableError(f"timestamp authority {url} is unreachable: {exc}") from exc


def _parse_reply(url: str, body: bytes) -> TimeStampResponse:
    from rfc3161_client import decode_timestamp_response

    try:
        response = decode_timestamp_response(body)
    except ValueError as exc:
        raise Error(
            f"timestamp authority {url} sent something that is not an RFC 3161 reply"
        ) from exc
    if response.status != _GRANTED:
        detail = "; ".join(response.status_string) or "no reason given"
        raise Error(
            f"timestamp authority {url} refused the request (status {response.status}: {detail})"
        )
    return response


def _decode(token: bytes) -> TimeStampResponse:
    """Parse a stored ``signedTimestamp``; malformed input becomes SignatureError."""
    from rfc3161_client import decode_timestamp_response

    try:
        return decode_timestamp_response(token)
    except ValueError as exc:
        raise SignatureError(f"timestamp is malformed: {exc}") from exc


def _tsa_certificate(response: TimeStampResponse) -> x509.Certificate:
    """The embedded certificate named by the (signed) SignerInfo of the token."""
    from cryptography import x509

    signers = list(response.signed_data.signer_infos)
    if len(signers) != 1:
        raise SignatureError(f"timestamp has {len(signers)} signers, expected exactly one")
    signer = signers[0]
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer == signer.issuer and cert.serial_number == signer.serial_number:
            return cert
    raise SignatureError("timestamp does not include the certificate of its authority")


def _check_tsa_usage(cert: x509.Certificate) -> None:
    """RFC 3161 section 2.3: the TSA certificate has a critical EKU of timeStamping."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    name = cert.subject.rfc4514_string()
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.TIME_STAMPING not in eku.value:
        raise SignatureError(f"timestamp authority ({name}) is not certified for timestamping")
    if not eku.critical:
        raise SignatureError(f"timestamp authority ({name}) has a non-critical extended key usage")


def _openssl_reason(message: str) -> str:
    found = re.search(r'Verify error: ([^"]+)"', message) or re.search(
        r'reason: "([^"]+)"', message
    )
    return found.group(1) if found else message


def verify_timestamp(
    token: bytes, signature: bytes, anchors: Sequence[TimestampAnchor]
) -> datetime.datetime:
    """Verify an RFC 3161 timestamp over ``signature`` and return the time it proves.

    Checks, in order: the reply is well formed and granted; it carries the TSA
    certificate named by its SignerInfo; that certificate has the critical
    timeStamping EKU; the token's CMS signature verifies and the TSA certificate
    is trusted at genTime; the message imprint is the hash of ``signature``.

    Args:
        token: the DER ``TimeStampResp`` (decoded ``signedTimestamp``).
        signature: the DSSE signature bytes the timestamp must cover.
        anchors: certificates the caller trusts to issue TSA certificates (the chain
            must end at a self-signed one; intermediates not embedded in the token may
            be passed too), and timestamp authorities of a trust config (the token must
            be signed by the authority's own certificate, within its ``validFor``
            window, and its listed chain must be valid at genTime).

    Returns:
        The verified genTime, timezone-aware UTC.

    Raises:
        SignatureError: the timestamp is malformed, untrusted, or does not cover
            ``signature``.
    """
    try:
        return _verify_timestamp(token, signature, anchors)
    except SignatureError:
        raise
    except Exception as exc:  # a hostile token must end as a failed check, never a crash
        raise SignatureError(f"timestamp is malformed: {exc}") from exc


def _verify_timestamp(
    token: bytes, signature: bytes, anchors: Sequence[TimestampAnchor]
) -> datetime.datetime:
    response = _decode(token)
    if response.status != _GRANTED:
        raise SignatureError(f"timestamp was not granted (status {response.status})")
    tsa_cert = _tsa_certificate(response)
    name = tsa_cert.subject.rfc4514_string()
    _check_tsa_usage(tsa_cert)
    if not anchors:
        raise SignatureError("timestamp cannot be verified: no trust anchors were given")
    authorities = [a for a in anchors if isinstance(a, TimestampAuthority)]
    certificates = [a for a in anchors if not isinstance(a, TimestampAuthority)]
    failure: SignatureError | None = None
    for authority in authorities:
        if authority.certificate != tsa_cert:
            continue  # only the listed certificate speaks for a listed authority
        try:
            return _verify_with_authority(response, signature, authority, name)
        except SignatureError as exc:
            failure = failure or exc
    if certificates:
        try:
            return _verify_with_roots(response, signature, certificates, name)
        except SignatureError as exc:
            failure = failure or exc
    raise failure or SignatureError(f"timestamp was issued by an untrusted authority ({name})")


def _verify_with_roots(
    response: TimeStampResponse,
    signature: bytes,
    roots: Sequence[x509.Certificate],
    name: str,
) -> datetime.datetime:
    from rfc3161_client import VerifierBuilder

    builder = VerifierBuilder()
    for anchor in dict.fromkeys(roots):
        builder = builder.add_root_certificate(anchor)
    _run(builder, response, signature, name)
    return _gen_time(response)


def _verify_with_authority(
    response: TimeStampResponse,
    signature: bytes,
    authority: TimestampAuthority,
    name: str,
) -> datetime.datetime:
    """The token is signed by the authority's certificate, anchored at its chain's root."""
    from rfc3161_client import VerifierBuilder

    chain = authority.chain
    builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
    for intermediate in dict.fromkeys(c for c in chain[1:-1] if c not in (chain[0], chain[-1])):
        builder = builder.add_intermediate_certificate(intermediate)
    _run(builder, response, signature, name)
    gen_time = _gen_time(response)
    authority.check(gen_time)  # validFor, and the listed chain at the token's time
    return gen_time


def _run(builder: Any, response: TimeStampResponse, signature: bytes, name: str) -> None:
    from rfc3161_client import VerificationError as TimestampVerificationError

    try:
        builder.build().verify_message(response, signature)
    except TimestampVerificationError as exc:
        raise SignatureError(_explain(str(exc), name)) from exc


def _gen_time(response: TimeStampResponse) -> datetime.datetime:
    gen_time = response.tst_info.gen_time
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=datetime.timezone.utc)
    return gen_time.astimezone(datetime.timezone.utc)


def _explain(message: str, name: str) -> str:
    """Turn an rfc3161-client verification failure into one line for a person."""
    if message == "Mismatch between messages":
        return "timestamp does not cover this signature"
    if message.startswith("Unsupported hash algorithm"):
        return f"timestamp uses an unsupported hash algorithm ({message.rsplit(' ', 1)[-1]})"
    reason = _openssl_reason(message)
    if "issuer certificate" in reason or "self-signed certificate" in reason:
        return f"timestamp was issued by an untrusted authority ({name})"
    if "expired" in reason or "not yet valid" in reason:
        return f"timestamp authority certificate ({name}) was not valid at the timestamp: {reason}"
    if "purpose" in reason:
        return f"timestamp authority ({name}) is not certified for timestamping"
    return f"timestamp does not verify ({name}): {reason}"


def describe_timestamp(token: bytes) -> dict[str, Any]:
    """Summarise a timestamp for display, WITHOUT verifying it.

    Args:
        token: the DER ``TimeStampResp`` (decoded ``signedTimestamp``).

    Returns:
        ``time`` (ISO 8601 UTC), ``authority`` (the TSA name, or the subject of its
        certificate), ``serial`` (decimal string), ``hash_algorithm`` and ``policy``.

    Raises:
        SignatureError: the timestamp cannot be parsed.
    """
    response = _decode(token)
    info = response.tst_info
    gen_time = info.gen_time
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=datetime.timezone.utc)
    authority: str | None = None
    if info.name is not None:
        authority = _general_name(info.name)
    if authority is None:
        try:
            authority = _tsa_certificate(response).subject.rfc4514_string()
        except SignatureError:
            authority = "unknown"
    oid = info.message_imprint.hash_algorithm.dotted_string
    return {
        "time": gen_time.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "authority": authority,
        "serial": str(info.serial_number),
        "hash_algorithm": _HASHES.get(oid, oid),
        "policy": info.policy.dotted_string,
    }


def _general_name(name: x509.GeneralName) -> str:
    from cryptography import x509

    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)
