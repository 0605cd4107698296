"""Sigstore bundle v0.3 JSON: reading with strict checks, writing atomically.

:func:`parse_bundle` bounds size and nesting before parsing, checks the type of
every field it uses, and tells which signing method the bundle uses from its
verification material (OMS 4.1). Nothing here verifies a signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omsign._atomic import write_atomic
from omsign.dsse import PAYLOAD_TYPE
from omsign.errors import MalformedSignatureError, ModelError
from omsign.statement import brief, load_json

__all__ = [
    "MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "Bundle",
    "parse_bundle",
    "read_bundle",
    "write_bundle",
]

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_MEDIA_TYPES = frozenset(
    {
        MEDIA_TYPE,
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
    }
)
MAX_BUNDLE_BYTES = 256 << 20
MAX_DEPTH = 32
# Arrays, objects and commas outside strings. A bundle holds a few dozen (the statement
# is one base64 string); the bound keeps a flat million-element array from being built.
MAX_TOKENS = 100_000
_STRINGS = re.compile(rb'"[^"]*"?')  # an unterminated string runs to the end
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_URLSAFE = str.maketrans("-_", "+/")

Method = Literal["key", "certificate", "sigstore"]


@dataclass(frozen=True)
class Bundle:
    """The parts of an OMS bundle that verification uses.

    Attributes:
        method: ``key``, ``certificate`` or ``sigstore``.
        payload_type: the DSSE payload type.
        payload: the decoded DSSE payload (the in-toto statement bytes).
        signature: the decoded DSSE signature.
        key_hint: ``publicKey.hint`` (key method), if present.
        key_raw: ``publicKey.rawBytes`` decoded (older key bundles), if present.
        certificates: DER certificates: the chain (certificate method) or the
            Fulcio certificate (sigstore).
        timestamps: DER RFC 3161 timestamps from ``timestampVerificationData``.
        tlog_entries: the transparency log entries as JSON objects.
        raw: the whole bundle as parsed JSON.
        text: the bundle's original text (sigstore verification re-reads it).
    """

    method: Method
    payload_type: str
    payload: bytes
    signature: bytes
    key_hint: str | None
    key_raw: bytes | None
    certificates: tuple[bytes, ...]
    timestamps: tuple[bytes, ...]
    tlog_entries: tuple[dict[str, Any], ...]
    raw: dict[str, Any]
    text: str


def _bad(source: str, what: str) -> MalformedSignatureError:
    return MalformedSignatureError(f"{source}: malformed signature: {what}")


def _check_shape(data: bytes, source: str) -> None:
    """Bounds the number of JSON values and the nesting depth, in linear time, unparsed."""
    # Escapes go first (pairs of backslashes, then escaped quotes), so strings hold no
    # quote and one C-speed pass removes them; brackets in strings are not structure.
    bare = _STRINGS.sub(b"", data.replace(b"\\\\", b"").replace(b'\\"', b""))
    brackets = bare.translate(_BRACKETS, _NOT_BRACKETS)
    if len(brackets) + bare.count(b",") > MAX_TOKENS:
        raise _bad(source, f"more than {MAX_TOKENS} JSON values")
    depth = 0
    for byte in brackets:  # at most MAX_TOKENS
        depth += 1 if byte == 0x5B else -1
        if depth > MAX_DEPTH:
            raise _bad(source, f"JSON nested deeper than {MAX_DEPTH} levels")
        if depth < 0:
            raise _bad(source, "not valid UTF-8 JSON")


def _b64(value: Any, source: str, where: str) -> bytes:
    """Decodes canonical base64, standard or URL-safe alphabet, padded or not.

    Anything else fails: characters outside the alphabet, partial padding, and set
    bits after the last byte, so each decoded value has exactly one accepted spelling.
    """
    if not isinstance(value, str) or not value:
        raise _bad(source, f"{where} is not a base64 string")
    body = value.rstrip("=")
    padding = len(value) - len(body)
    urlsafe = "-" in body or "_" in body
    text = body.translate(_URLSAFE) if urlsafe else body
    mixed = urlsafe and ("+" in body or "/" in body)
    if padding not in (0, -len(body) % 4) or not text.isascii() or mixed:
        raise _bad(source, f"{where} is not valid base64")
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(source, f"{where} is not valid base64") from None
    if base64.b64encode(decoded).decode().rstrip("=") != text:
        raise _bad(source, f"{where} is not canonical base64")
    return decoded


def _obj(parent: dict[str, Any], key: str, source: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _bad(source, f"{where}{key} is missing or not an object")
    return value


def _method(vm: dict[str, Any], source: str) -> Method:
    present = [k for k in ("publicKey", "x509CertificateChain", "certificate") if k in vm]
    if len(present) != 1:
        raise _bad(
            source,
            "verificationMaterial must hold exactly one of publicKey, "
            "x509CertificateChain, certificate",
        )
    methods: dict[str, Method] = {
        "publicKey": "key",
        "x509CertificateChain": "certificate",
        "certificate": "sigstore",
    }
    return methods[present[0]]


def _certificate(value: Any, source: str, where: str) -> bytes:
    """Decodes a DER certificate and parses every part that verification reads.

    The X.509 parser is lazy: a certificate that loads may still fail when its
    subject or extensions are first read. Reading them here turns any such failure
    into a malformed signature instead of an error deep inside chain validation.
    """
    der = _b64(value, source, where)
    from cryptography import x509

    try:
        with warnings.catch_warnings():  # a non-positive serial number warns, then fails below
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(der)
            positive = cert.serial_number > 0
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        for extension in cert.extensions:
            repr(extension.value)
        cert.public_key()
        cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
    except Exception:  # any parse failure of untrusted DER, whatever its class
        raise _bad(source, f"{where} is not a valid X.509 certificate") from None
    if not positive:
        raise _bad(source, f"{where} has a serial number that is not positive (RFC 5280)")
    return der


def _certificates(vm: dict[str, Any], method: Method, source: str) -> tuple[bytes, ...]:
    if method == "sigstore":
        cert = _obj(vm, "certificate", source, "verificationMaterial.")
        return (_certificate(cert.get("rawBytes"), source, "certificate.rawBytes"),)
    if method == "certificate":
        chain = _obj(vm, "x509CertificateChain", source, "verificationMaterial.")
        certs = chain.get("certificates")
        if not isinstance(certs, list) or not certs:
            raise _bad(source, "x509CertificateChain.certificates is not a non-empty list")
        return tuple(
            _certificate(
                c.get("rawBytes") if isinstance(c, dict) else None,
                source,
                f"certificates[{i}].rawBytes",
            )
            for i, c in enumerate(certs)
        )
    return ()


def _timestamps(vm: dict[str, Any], source: str) -> tuple[bytes, ...]:
    tvd = vm.get("timestampVerificationData")
    if tvd is None:
        return ()
    if not isinstance(tvd, dict):
        raise _bad(source, "timestampVerificationData is not an object")
    stamps = tvd.get("rfc3161Timestamps", [])
    if not isinstance(stamps, list):
        raise _bad(source, "rfc3161Timestamps is not a list")
    return tuple(
        _b64(
            s.get("signedTimestamp") if isinstance(s, dict) else None,
            source,
            f"rfc3161Timestamps[{i}].signedTimestamp",
        )
        for i, s in enumerate(stamps)
    )


def parse_bundle(data: bytes, source: str = "signature") -> Bundle:
    """Parses an OMS bundle, checking sizes, types and media types (OMS 8.1).

    Args:
        data: the bundle file's bytes.
        source: the file name, for messages.

    Raises:
        MalformedSignatureError: anything that is not a well-formed OMS bundle.
    """
    if len(data) > MAX_BUNDLE_BYTES:
        raise _bad(source, f"larger than {MAX_BUNDLE_BYTES >> 20} MiB")
    if not data.strip():
        raise _bad(source, "the file is empty")
    _check_shape(data, source)
    try:
        raw = load_json(data)
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if str(exc).startswith("duplicate key") else "not valid UTF-8 JSON"
        raise _bad(source, detail) from None
    if not isinstance(raw, dict):
        raise _bad(source, "not a JSON object")
    media = raw.get("mediaType")
    if media is None:
        raise _bad(source, "not a Sigstore bundle (no mediaType)")
    if not isinstance(media, str) or media not in _MEDIA_TYPES:
        raise _bad(source, f"unsupported mediaType {brief(media)}")
    vm = _obj(raw, "verificationMaterial", source, "")
    env = _obj(raw, "dsseEnvelope", source, "")
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise _bad(source, f"unsupported DSSE payloadType {brief(env.get('payloadType'))}")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise _bad(source, "the DSSE envelope must hold exactly one signature")
    keyid = sigs[0].get("keyid")
    if keyid is not None and not isinstance(keyid, str):
        raise _bad(source, "DSSE keyid is not a string")
    method = _method(vm, source)
    key_hint = key_raw = None
    if method == "key":
        pk = _obj(vm, "publicKey", source, "verificationMaterial.")
        key_hint = pk.get("hint")
        if key_hint is not None and not isinstance(key_hint, str):
            raise _bad(source, "publicKey.hint is not a string")
        if "rawBytes" in pk:
            key_raw = _b64(pk["rawBytes"], source, "publicKey.rawBytes")
    entries = vm.get("tlogEntries", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _bad(source, "tlogEntries is not a list of objects")
    if method == "sigstore" and not entries:
        raise _bad(source, "a Sigstore bundle must have at least one transparency log entry")
    return Bundle(
        method=method,
        payload_type=PAYLOAD_TYPE,
        payload=_b64(env.get("payload"), source, "dsseEnvelope.payload"),
        signature=_b64(sigs[0].get("sig"), source, "DSSE signature"),
        key_hint=key_hint,
        key_raw=key_raw,
        certificates=_certificates(vm, method, source),
        timestamps=_timestamps(vm, source),
        tlog_entries=tuple(entries),
        raw=raw,
        text=data.decode(),
    )


def read_bundle(path: Path) -> Bundle:
    """Reads and parses a bundle file.

    The file is opened without blocking and must be a regular file: a FIFO or a device
    put where the signature belongs is refused, not read. At most the size limit is read.

    Raises:
        ModelError: the file is missing or unreadable (exit code 2).
        MalformedSignatureError: not a regular file, or not a well-formed bundle.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(f"{path}: signature file not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read signature ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ModelError(f"{path}: signature path is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise _bad(str(path), "not a regular file (a FIFO, socket or device)")
        if st.st_size > MAX_BUNDLE_BYTES:
            raise _bad(str(path), f"larger than {MAX_BUNDLE_BYTES >> 20} MiB")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read signature ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BUNDLE_BYTES:
        raise _bad(str(path), f"larger than {MAX_BUNDLE_BYTES >> 20} MiB")
    return parse_bundle(data, str(path))


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    """Writes a bundle atomically: a temporary file beside it, then a rename.

    Raises:
        ModelError: the directory cannot be written.
    """
    data = json.dumps(bundle, indent=2, sort_keys=True).encode() + b"\n"
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise ModelError(f"{path}: cannot write signature ({exc.strerror})") from None
