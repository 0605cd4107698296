"""Sigstore bundle v0.3 JSON: the one place that builds, reads and writes bundles.

Backends sign and hand back the signature and its :class:`Material`;
:func:`build_bundle` puts them into a bundle. :func:`parse_bundle` bounds size and
nesting before parsing, checks the type of every field it uses, and tells which
signing method the bundle uses from its verification material (OMS 4.1). Nothing
here verifies a signature.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from omsign._atomic import write_atomic
from omsign._bundle_fields import b64 as _b64
from omsign._bundle_fields import bad as _bad
from omsign._bundle_fields import certificate as _certificate
from omsign._json import DuplicateKeyError, ShapeError, brief, check_shape, load_json
from omsign.dsse import PAYLOAD_TYPE, envelope
from omsign.errors import ModelError

__all__ = [
    "MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "Bundle",
    "Material",
    "Signed",
    "build_bundle",
    "open_regular",
    "encode_bundle",
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
MAX_TIMESTAMPS = 32  # RFC 3161 timestamps per bundle, as sigstore-python allows


Method = Literal["key", "certificate", "sigstore"]


@dataclass(frozen=True)
class Material:
    """A signature's verification material: what a verifier needs besides the signature.

    Attributes:
        method: ``key``, ``certificate`` or ``sigstore``.
        key_hint: ``publicKey.hint`` (key method): hex SHA-256 of the PEM public key.
        key_raw: ``publicKey.rawBytes`` decoded (older key bundles), when read.
        key_details: ``publicKey.keyDetails`` (older key bundles), when read.
        certificates: DER certificates: the chain, leaf first (certificate method), or
            the Fulcio certificate (sigstore).
        timestamps: DER RFC 3161 timestamp tokens over the signature.
        tlog_entries: transparency log entries as JSON objects (sigstore).
    """

    method: Method
    key_hint: str | None = None
    key_raw: bytes | None = None
    key_details: str | None = None
    certificates: tuple[bytes, ...] = ()
    timestamps: tuple[bytes, ...] = ()
    tlog_entries: tuple[dict[str, Any], ...] = ()


class Signed(NamedTuple):
    """What a signer returns: the DSSE signature and its verification material."""

    signature: bytes
    material: Material


@dataclass(frozen=True)
class Bundle:
    """The parts of an OMS bundle that verification uses.

    Attributes:
        payload_type: the DSSE payload type.
        payload: the decoded DSSE payload (the in-toto statement bytes).
        signature: the decoded DSSE signature.
        material: the verification material.
        text: the bundle's original text (Sigstore verification hands it to
            sigstore-python, which parses it itself).
    """

    payload_type: str
    payload: bytes
    signature: bytes
    material: Material
    text: str

    @property
    def method(self) -> Method:
        """``key``, ``certificate`` or ``sigstore``."""
        return self.material.method

    @property
    def key_hint(self) -> str | None:
        """``publicKey.hint`` (key method), if present."""
        return self.material.key_hint

    @property
    def key_raw(self) -> bytes | None:
        """``publicKey.rawBytes`` decoded (older key bundles), if present."""
        return self.material.key_raw

    @property
    def certificates(self) -> tuple[bytes, ...]:
        """DER certificates: the chain (certificate method) or the Fulcio certificate."""
        return self.material.certificates

    @property
    def timestamps(self) -> tuple[bytes, ...]:
        """DER RFC 3161 timestamps from ``timestampVerificationData``."""
        return self.material.timestamps

    @property
    def tlog_entries(self) -> tuple[dict[str, Any], ...]:
        """The transparency log entries as JSON objects."""
        return self.material.tlog_entries


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _material_json(material: Material) -> dict[str, Any]:
    vm: dict[str, Any] = {}
    if material.method == "key":
        key: dict[str, Any] = {}
        if material.key_hint is not None:
            key["hint"] = material.key_hint
        if material.key_raw is not None:
            key["rawBytes"] = _b64encode(material.key_raw)
        if material.key_details is not None:
            key["keyDetails"] = material.key_details
        vm["publicKey"] = key
    elif material.method == "certificate":
        certs = [{"rawBytes": _b64encode(der)} for der in material.certificates]
        vm["x509CertificateChain"] = {"certificates": certs}
    else:
        vm["certificate"] = {"rawBytes": _b64encode(material.certificates[0])}
    vm["tlogEntries"] = [dict(entry) for entry in material.tlog_entries]
    if material.timestamps:
        stamps = [{"signedTimestamp": _b64encode(t)} for t in material.timestamps]
        vm["timestampVerificationData"] = {"rfc3161Timestamps": stamps}
    return vm


def build_bundle(payload: bytes, signature: bytes, material: Material) -> dict[str, Any]:
    """A Sigstore bundle v0.3 (OMS 4.1): a DSSE envelope and its verification material.

    Args:
        payload: the signed in-toto statement bytes.
        signature: the DSSE signature over the payload's PAE.
        material: what a verifier needs to check the signature.

    Returns:
        The bundle as a JSON object (:func:`write_bundle` writes it).
    """
    return {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": _material_json(material),
        "dsseEnvelope": envelope(payload, signature),
    }


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
    if len(stamps) > MAX_TIMESTAMPS:  # before any is decoded, let alone verified
        raise _bad(source, f"more than {MAX_TIMESTAMPS} RFC 3161 timestamps")
    tokens = tuple(
        _b64(
            s.get("signedTimestamp") if isinstance(s, dict) else None,
            source,
            f"rfc3161Timestamps[{i}].signedTimestamp",
        )
        for i, s in enumerate(stamps)
    )
    if len(set(tokens)) != len(tokens):
        raise _bad(source, "the same RFC 3161 timestamp is listed more than once")
    return tokens


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
    try:
        check_shape(data, max_values=MAX_TOKENS, max_depth=MAX_DEPTH)
        text = data.decode("utf-8")
        raw = load_json(text)
    except ShapeError as exc:
        raise _bad(source, str(exc)) from None
    except DuplicateKeyError as exc:
        raise _bad(source, str(exc)) from None
    except (ValueError, RecursionError):
        raise _bad(source, "not valid UTF-8 JSON") from None
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
    key = _key(vm, source) if method == "key" else Material(method)
    entries = vm.get("tlogEntries", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _bad(source, "tlogEntries is not a list of objects")
    if method == "sigstore" and not entries:
        raise _bad(source, "a Sigstore bundle must have at least one transparency log entry")
    payload = _b64(env.get("payload"), source, "dsseEnvelope.payload")
    signature = _b64(sigs[0].get("sig"), source, "DSSE signature")
    material = Material(
        method=method,
        key_hint=key.key_hint,
        key_raw=key.key_raw,
        key_details=key.key_details,
        certificates=_certificates(vm, method, source),
        timestamps=_timestamps(vm, source),
        tlog_entries=tuple(entries),
    )
    return Bundle(PAYLOAD_TYPE, payload, signature, material, text)


def _key(vm: dict[str, Any], source: str) -> Material:
    """The key method's ``publicKey``: a hint, or (older bundles) the key itself."""
    pk = _obj(vm, "publicKey", source, "verificationMaterial.")
    hint = pk.get("hint")
    if hint is not None and not isinstance(hint, str):
        raise _bad(source, "publicKey.hint is not a string")
    raw = _b64(pk["rawBytes"], source, "publicKey.rawBytes") if "rawBytes" in pk else None
    details = pk.get("keyDetails")
    return Material("key", hint, raw, details if isinstance(details, str) else None)


def read_bundle(path: Path) -> Bundle:
    """Reads and parses a bundle file.

    The file must be a regular file, and its type is checked (through any links) before
    it is opened: a FIFO or a device put where the signature belongs is refused, never
    opened (opening some devices has side effects). At most the size limit is read.

    Raises:
        ModelError: the file is missing or unreadable (exit code 2).
        MalformedSignatureError: not a regular file, or not a well-formed bundle.
    """
    fd = _open_regular(path)
    try:
        st = os.fstat(fd)
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


def _refuse_kind(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"{path}: signature path is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise _bad(str(path), "not a regular file (a FIFO, socket or device)")


def _open_regular(path: Path) -> int:
    """Opens a signature file for reading only once its target is known to be regular.

    Where the system can name a file without opening it (``O_PATH``), the very file
    checked is then reopened through its descriptor, so nothing can be swapped in
    between. Elsewhere the type is checked by path, and the opened file must be the
    one checked.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    o_path = getattr(os, "O_PATH", 0)
    try:
        if o_path:
            handle = os.open(path, o_path | getattr(os, "O_CLOEXEC", 0))
            try:
                seen = os.fstat(handle)
                _refuse_kind(path, seen)
                try:
                    fd = os.open(f"/proc/self/fd/{handle}", flags)
                except FileNotFoundError:  # no /proc: check by path below
                    fd = -1
            finally:
                os.close(handle)
            if fd >= 0:
                return fd
        seen = os.stat(path)
        _refuse_kind(path, seen)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(f"{path}: signature file not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read signature ({exc.strerror})") from None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        raise _bad(str(path), "was replaced while it was read")
    return fd


open_regular = _open_regular  # for other files read as signatures (claims)


def encode_bundle(bundle: Mapping[str, Any]) -> bytes:
    """A bundle's bytes as omsign writes them (indented JSON, sorted keys, newline)."""
    return json.dumps(bundle, indent=2, sort_keys=True).encode() + b"\n"


def write_bundle(path: Path, bundle: Mapping[str, Any]) -> None:
    """Writes a bundle atomically: a temporary file beside it, then a rename.

    Raises:
        ModelError: the directory cannot be written.
    """
    data = encode_bundle(bundle)
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise ModelError(f"{path}: cannot write signature ({exc.strerror})") from None
