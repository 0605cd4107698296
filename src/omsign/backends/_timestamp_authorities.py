"""Timestamp authorities listed in a Sigstore trust config, and what trusting one means.

A trust config (``ClientTrustConfig`` or a bare trusted root) lists each timestamp
authority as a certificate chain (the authority's own certificate first, its root
last) and a ``validFor`` window. Trusting such an entry means exactly this, as the
Sigstore trusted-root specification says: a token counts only when it was signed by
the listed certificate itself (not by another certificate its issuers signed), its
time falls inside ``validFor``, and the listed chain is valid at that time, anchored
at the chain's last certificate. No certificate of the chain acts as a root on its own.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from omsign.errors import KeyLoadError, SignatureError

__all__ = ["TimestampAuthority", "load_timestamp_authorities"]


@dataclass(frozen=True)
class TimestampAuthority:
    """One timestamp authority of a trust config.

    Attributes:
        chain: the authority's certificate, then its issuers; the last one is the anchor.
        valid_from: start of the trust config's ``validFor`` window.
        valid_until: end of the window (exclusive), or None when it is open.
        name: how messages name the authority.
    """

    chain: tuple[x509.Certificate, ...]
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    name: str = ""

    @property
    def certificate(self) -> x509.Certificate:
        """The certificate that must have signed a token: the first of the chain."""
        return self.chain[0]

    def check(self, at: dt.datetime) -> None:
        """Checks that a token made at ``at`` may be trusted through this authority.

        ``at`` must fall inside ``validFor`` and every link of the listed chain must
        be valid at ``at``, signed by the next certificate, which must be a CA.

        Raises:
            SignatureError: the time is outside the window or the chain is not valid then.
        """
        if at < self.valid_from or (self.valid_until is not None and at >= self.valid_until):
            until = f"{self.valid_until:%Y-%m-%d %H:%M:%S} UTC" if self.valid_until else "now"
            raise SignatureError(
                f"timestamp from {at:%Y-%m-%d %H:%M:%S} UTC is outside the window in which the "
                f"trust config trusts its authority ({self.name}): "
                f"{self.valid_from:%Y-%m-%d %H:%M:%S} UTC to {until}"
            )
        for cert in self.chain:
            if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
                raise SignatureError(
                    f"timestamp authority ({self.name}): certificate "
                    f"{cert.subject.rfc4514_string()} was not valid at the timestamp"
                )
        for child, issuer in zip(self.chain, self.chain[1:], strict=False):
            if not (_is_ca(issuer) and _issued_by(child, issuer)):
                raise SignatureError(
                    f"timestamp authority ({self.name}): the trust config's chain is broken at "
                    f"{child.subject.rfc4514_string()}"
                )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    return bool(bc.ca and (ku is None or ku.key_cert_sign))


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except Exception:  # wrong name, bad signature, unsupported algorithm: not issued by it
        return False
    return True


def load_timestamp_authorities(
    path: str | os.PathLike[str],
) -> tuple[TimestampAuthority, ...]:
    """The timestamp authorities of a Sigstore trust config or trusted root.

    Accepts a ClientTrustConfig (``trustedRoot.timestampAuthorities``) or a bare
    trusted root. The file is read with size and nesting limits.

    Raises:
        KeyLoadError: unreadable, malformed, or listing no timestamp authority.
    """
    from omsign.backends._trust_files import load_trust_json

    doc = load_trust_json(path)
    root = doc.get("trustedRoot", doc) if isinstance(doc, dict) else None
    entries = root.get("timestampAuthorities", []) if isinstance(root, dict) else None
    if not isinstance(entries, list):
        raise KeyLoadError(f"{path}: not a valid Sigstore trust config")
    authorities = tuple(_authority(path, i, entry) for i, entry in enumerate(entries))
    if not authorities:
        raise KeyLoadError(f"{path}: the trust config lists no timestamp authority")
    return authorities


def _authority(path: str | os.PathLike[str], index: int, entry: Any) -> TimestampAuthority:
    where = f"{path}: timestamp authority {index + 1}"
    try:
        raw = entry["certChain"]["certificates"]
        if not isinstance(raw, list) or not raw:
            raise KeyLoadError(f"{where} has no certificate")
        chain = tuple(_certificate(where, c["rawBytes"]) for c in raw)
        window = entry["validFor"]
        start = _time(where, window["start"])
        end = _time(where, window["end"]) if window.get("end") is not None else None
    except (KeyError, TypeError, AttributeError):
        raise KeyLoadError(f"{where} lacks its certChain or validFor start") from None
    return TimestampAuthority(chain, start, end, _name(entry, chain))


def _certificate(where: str, value: Any) -> x509.Certificate:
    if not isinstance(value, str):
        raise KeyLoadError(f"{where}: a certificate is not base64 text")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(value, validate=True))
        cert.public_key()  # an unsupported key algorithm is refused here, not at use
    except (binascii.Error, ValueError):
        raise KeyLoadError(f"{where}: a certificate cannot be parsed") from None
    except Exception as exc:  # cryptography's UnsupportedAlgorithm
        raise KeyLoadError(f"{where}: a certificate has an unsupported key ({exc})") from None
    return cert


def _time(where: str, value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise KeyLoadError(f"{where}: validFor time is not a string")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise KeyLoadError(f"{where}: validFor time {value[:40]!r} is not RFC 3339") from None
    if when.tzinfo is None:
        raise KeyLoadError(f"{where}: validFor time {value[:40]!r} has no time zone")
    return when.astimezone(dt.timezone.utc)


def _name(entry: dict[str, Any], chain: Sequence[x509.Certificate]) -> str:
    subject = entry.get("subject")
    if isinstance(subject, dict):
        parts = [subject.get(k) for k in ("commonName", "organization")]
        named = ", ".join(p for p in parts if isinstance(p, str) and p)
        if named:
            return named
    return chain[0].subject.rfc4514_string()
