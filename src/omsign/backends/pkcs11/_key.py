"""Signing with an EC private key kept on a PKCS#11 token.

:func:`load_signing_key` opens the token a ``pkcs11:`` URI selects, logs in,
finds the one private key the URI names and its public half, and returns a
:class:`Pkcs11SigningKey`. Data is hashed locally with the curve's hash and the
token signs the digest (``CKM_ECDSA``). :func:`export_public_key_pem` reads the
public key, without logging in when it can.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from omsign.backends.pkcs11._session import (
    Token,
    attribute,
    login,
    open_token,
    template,
)
from omsign.backends.pkcs11._uri import Pkcs11Uri, parse_pkcs11_uri
from omsign.errors import KeyLoadError, UsageError

__all__ = ["Pkcs11SigningKey", "export_public_key_pem", "load_signing_key"]

# DER namedCurve OID (CKA_EC_PARAMS) -> curve, hash.
_CURVES: dict[bytes, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm]]] = {
    bytes.fromhex("06082a8648ce3d030107"): (ec.SECP256R1, hashes.SHA256),
    bytes.fromhex("06052b81040022"): (ec.SECP384R1, hashes.SHA384),
    bytes.fromhex("06052b81040023"): (ec.SECP521R1, hashes.SHA512),
}


@dataclass(frozen=True, repr=False)
class Pkcs11SigningKey:
    """A private EC key (P-256, P-384 or P-521) on a logged-in PKCS#11 token.

    Use it as a context manager, or call :meth:`close`, to end the session.
    """

    _token: Token
    _handle: Any
    _public_key: ec.EllipticCurvePublicKey
    _hash_type: type[hashes.HashAlgorithm]
    _context_pin: bytes | None  # for keys with CKA_ALWAYS_AUTHENTICATE
    _closer: Callable[[], object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Ends the session when the key is dropped, so a stale login never lingers.
        object.__setattr__(self, "_closer", weakref.finalize(self, self._token.close))

    def __repr__(self) -> str:
        return f"<PKCS#11 {self._public_key.curve.name} key on {self._token!r}>"

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """Returns the public key that pairs with the token's private key."""
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        """Signs ``data`` with ECDSA on the token; returns the DER signature.

        Args:
            data: the bytes to sign; hashed here with the curve's hash.

        Raises:
            KeyLoadError: the token refused to sign.
        """
        if self._token.closed:
            raise KeyLoadError(f"the key on PKCS#11 token {self._token.label!r} was closed")
        digest = hashes.Hash(self._hash_type())
        digest.update(data)
        p11 = self._token.p11
        try:
            raw = self._sign_digest(digest.finalize())
        except p11.PyKCS11Error as exc:
            raise self._token.error(exc, "signing") from None
        size = (self._public_key.curve.key_size + 7) // 8
        if len(raw) != 2 * size:
            raise KeyLoadError(
                f"PKCS#11 token {self._token.label!r} returned a {len(raw)}-byte ECDSA "
                f"signature, expected {2 * size}"
            )
        return encode_dss_signature(
            int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
        )

    def _sign_digest(self, digest: bytes) -> bytes:
        # C_SignInit, the context-specific login that CKA_ALWAYS_AUTHENTICATE keys need
        # between init and sign (PKCS#11 5.2), then C_Sign (size query, then signature).
        p11, session = self._token.p11, self._token.session
        mechanism = p11.Mechanism(p11.CKM_ECDSA, None).to_native()
        data, signature = p11.ckbytelist(digest), p11.ckbytelist()
        rv = session.lib.C_SignInit(session.session, mechanism, self._handle)
        if rv != p11.CKR_OK:
            raise p11.PyKCS11Error(rv)
        if self._context_pin is not None:
            session.login(self._context_pin, p11.CKU_CONTEXT_SPECIFIC)
        for _ in range(2):
            rv = session.lib.C_Sign(session.session, data, signature)
            if rv != p11.CKR_OK:
                raise p11.PyKCS11Error(rv)
        return bytes(signature)

    def close(self) -> None:
        """Closes the session on the token (which logs out once no session is left)."""
        self._closer()

    def __enter__(self) -> Pkcs11SigningKey:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def load_signing_key(uri: str, password_source: Callable[[str], bytes | None]) -> Pkcs11SigningKey:
    """Loads the private key a ``pkcs11:`` URI names, logged in and ready to sign.

    Args:
        uri: an RFC 7512 URI naming the module, the token and the key.
        password_source: called with a prompt when the PIN is needed and neither
            the URI nor ``OMSIGN_PKCS11_PIN`` gives it; returns None if it cannot ask.

    Returns:
        The key; close it (or use it as a context manager) when done.

    Raises:
        UsageError: the URI is malformed or names something that cannot sign.
        BackendUnavailableError: PyKCS11 is not installed.
        KeyLoadError: the module, token or key is missing or ambiguous, or the PIN is wrong.
    """
    parsed = parse_pkcs11_uri(uri)
    if parsed.type not in (None, "private"):
        raise UsageError(f"PKCS#11 URI type={parsed.type} cannot sign; use type=private")
    return _load(parsed, password_source)


def _load(parsed: Pkcs11Uri, password_source: Callable[[str], bytes | None]) -> Pkcs11SigningKey:
    token = open_token(parsed)
    try:
        pin = login(token, parsed, password_source)
        handle, key_id, label, params = _find_private_key(token, parsed)
        curve, hash_type = _curve(params, token, label)
        public = _public_key(token, key_id, label, curve, handle)
        always = attribute(token, handle, token.p11.CKA_ALWAYS_AUTHENTICATE, binary=False)
        context_pin = pin if always else None
    except BaseException:
        token.close()
        raise
    return Pkcs11SigningKey(token, handle, public, hash_type, context_pin)


def export_public_key_pem(uri: str, password_source: Callable[[str], bytes | None]) -> bytes:
    """Returns the PEM SubjectPublicKeyInfo of the key a ``pkcs11:`` URI names.

    Reads the public key object without logging in when exactly one matches;
    otherwise logs in and reads it through the private key, as signing would.

    Args:
        uri: an RFC 7512 URI naming the module, the token and the key.
        password_source: called with a prompt if a PIN turns out to be needed.

    Raises:
        UsageError: the URI is malformed.
        BackendUnavailableError: PyKCS11 is not installed.
        KeyLoadError: the module, token or key is missing or ambiguous, or the PIN is wrong.
    """
    parsed = parse_pkcs11_uri(uri)
    if parsed.type not in (None, "private", "public"):
        raise UsageError(f"PKCS#11 URI type={parsed.type} names no key; use type=public")
    public: ec.EllipticCurvePublicKey | None = None
    if parsed.id is not None or parsed.object is not None:
        token = open_token(parsed)
        try:
            public = _lone_public_key(token, parsed)
        finally:
            token.close()
    if public is None:
        with _load(replace(parsed, type=None), password_source) as key:
            public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _find_private_key(token: Token, uri: Pkcs11Uri) -> tuple[Any, bytes, str, bytes]:
    p11 = token.p11
    where = f"on PKCS#11 token {token.label!r}"
    try:
        handles = token.session.findObjects(template(p11, uri, p11.CKO_PRIVATE_KEY))
    except p11.PyKCS11Error as exc:
        raise token.error(exc, "key search") from None
    if not handles:
        raise KeyLoadError(f"no private key matches {uri.describe_key()} {where}")
    if len(handles) > 1:
        raise KeyLoadError(
            f"{len(handles)} private keys match {uri.describe_key()} {where}; "
            "add id= or object= to the URI"
        )
    handle = handles[0]
    key_type = attribute(token, handle, p11.CKA_KEY_TYPE, binary=False)
    sign = attribute(token, handle, p11.CKA_SIGN, binary=False)
    key_id = bytes(attribute(token, handle, p11.CKA_ID) or b"")
    label = bytes(attribute(token, handle, p11.CKA_LABEL) or b"").decode("utf-8", "replace")
    name = label or key_id.hex()
    if key_type is not None and key_type != p11.CKK_EC:
        raise KeyLoadError(f"key {name!r} {where} is not an EC key; omsign signs with ECDSA")
    if sign is False:
        raise KeyLoadError(f"key {name!r} {where} is not allowed to sign (CKA_SIGN is false)")
    params = attribute(token, handle, p11.CKA_EC_PARAMS)
    return handle, key_id, name, bytes(params or b"")


def _curve(
    params: bytes, token: Token, name: str
) -> tuple[ec.EllipticCurve, type[hashes.HashAlgorithm]]:
    try:
        curve_type, hash_type = _CURVES[params]
    except KeyError:
        raise KeyLoadError(
            f"key {name!r} on PKCS#11 token {token.label!r} is not on P-256, P-384 or P-521"
        ) from None
    return curve_type(), hash_type


def _decode_point(
    value: bytes, curve: ec.EllipticCurve, token: Token, name: str
) -> ec.EllipticCurvePublicKey:
    size = (curve.key_size + 7) // 8
    point = value
    raw = (len(value) == 1 + 2 * size and value[:1] == b"\x04") or (
        len(value) == 1 + size and value[:1] in (b"\x02", b"\x03")
    )
    if not raw and len(value) > 2 and value[0] == 0x04:  # DER OCTET STRING
        length, start = value[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, start = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
        if start + length == len(value):
            point = value[start:]
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError:
        raise KeyLoadError(
            f"the public key of {name!r} on PKCS#11 token {token.label!r} is not a "
            f"valid {curve.name} point"
        ) from None


def _public_key(
    token: Token, key_id: bytes, label: str, curve: ec.EllipticCurve, private: Any
) -> ec.EllipticCurvePublicKey:
    p11 = token.p11
    select = (p11.CKA_ID, key_id) if key_id else (p11.CKA_LABEL, label)
    candidates: list[ec.EllipticCurvePublicKey] = []
    for handle in token.session.findObjects([(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), select]):
        point = attribute(token, handle, p11.CKA_EC_POINT)
        if point:
            candidates.append(_decode_point(bytes(point), curve, token, label))
    if not candidates:
        point = attribute(token, private, p11.CKA_EC_POINT)
        if point:
            candidates.append(_decode_point(bytes(point), curve, token, label))
    if not candidates:
        for handle in token.session.findObjects([(p11.CKA_CLASS, p11.CKO_CERTIFICATE), select]):
            der = attribute(token, handle, p11.CKA_VALUE)
            cert_key = x509.load_der_x509_certificate(bytes(der)).public_key() if der else None
            if (
                isinstance(cert_key, ec.EllipticCurvePublicKey)
                and cert_key.curve.name == curve.name
            ):
                candidates.append(cert_key)
    distinct = {
        c.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for c in candidates
    }
    if len(distinct) != 1:
        problem = "no public key" if not distinct else "several different public keys"
        raise KeyLoadError(
            f"{problem} for key {label!r} on PKCS#11 token {token.label!r} "
            "(looked for public key and certificate objects with the same id)"
        )
    return candidates[0]


def _lone_public_key(token: Token, uri: Pkcs11Uri) -> ec.EllipticCurvePublicKey | None:
    p11 = token.p11
    try:
        handles = token.session.findObjects(template(p11, uri, p11.CKO_PUBLIC_KEY))
    except p11.PyKCS11Error:
        return None
    if len(handles) != 1:
        return None
    point = attribute(token, handles[0], p11.CKA_EC_POINT)
    params = bytes(attribute(token, handles[0], p11.CKA_EC_PARAMS) or b"")
    if not point or params not in _CURVES:
        return None
    curve, _ = _curve(params, token, uri.describe_key())
    return _decode_point(bytes(point), curve, token, uri.describe_key())
