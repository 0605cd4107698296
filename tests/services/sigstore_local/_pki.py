"""Keys, certificates and tokens of the local Sigstore instance.

Holds the Fulcio-like certificate authority (root CA, CT log key that signs
embedded SCTs), the OIDC issuer key that signs identity tokens, and the
timestamp authority's certificate chain. Everything is generated fresh per
instance and written to its work directory as PEM.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from helpers.pki import (
    days,
    issue_tsa_cert,
    key_usage_extension,
    make_ca,
    make_ec_key,
    now,
)

OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

# GitHub Actions claims -> Fulcio extension OIDs (legacy raw-string encoding).
GITHUB_CLAIM_OIDS = {
    "event_name": ObjectIdentifier("1.3.6.1.4.1.57264.1.2"),
    "sha": ObjectIdentifier("1.3.6.1.4.1.57264.1.3"),
    "workflow": ObjectIdentifier("1.3.6.1.4.1.57264.1.4"),
    "repository": ObjectIdentifier("1.3.6.1.4.1.57264.1.5"),
    "ref": ObjectIdentifier("1.3.6.1.4.1.57264.1.6"),
}

CERT_LIFETIME = dt.timedelta(minutes=10)


class RequestRejected(Exception):
    """A client request that a real service would refuse (HTTP 4xx)."""


def spki_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of ``key``."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo: the log ID Sigstore clients use."""
    return hashlib.sha256(spki_der(key)).digest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _der_utf8(value: str) -> bytes:
    raw = value.encode()
    if len(raw) < 128:
        return b"\x0c" + bytes([len(raw)]) + raw
    length = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(length)]) + length + raw


def _der_octet_string(raw: bytes) -> bytes:
    if len(raw) < 128:
        return b"\x04" + bytes([len(raw)]) + raw
    length = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(length)]) + length + raw


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Authority:
    """The local instance's keys and CA certificates."""

    fulcio_key: ec.EllipticCurvePrivateKey
    fulcio_root: x509.Certificate
    ct_key: ec.EllipticCurvePrivateKey
    rekor_key: ec.EllipticCurvePrivateKey
    oidc_key: ec.EllipticCurvePrivateKey
    tsa_root_key: ec.EllipticCurvePrivateKey
    tsa_root: x509.Certificate
    tsa_key: ec.EllipticCurvePrivateKey
    tsa_cert: x509.Certificate

    @classmethod
    def generate(cls) -> Authority:
        """Creates fresh keys and certificates."""
        fulcio_key, tsa_root_key, tsa_key = make_ec_key(), make_ec_key(), make_ec_key()
        until = now() + days(30)
        fulcio = make_ca("local-fulcio-root", fulcio_key, not_after=until, path_length=1)
        tsa_root = make_ca("local-tsa-root", tsa_root_key, not_after=until, path_length=1)
        tsa = issue_tsa_cert(tsa_root, tsa_key, name="local-tsa", not_after=until)
        return cls(
            fulcio_key=fulcio_key,
            fulcio_root=fulcio.cert,
            ct_key=make_ec_key(),
            rekor_key=make_ec_key(),
            oidc_key=make_ec_key(),
            tsa_root_key=tsa_root_key,
            tsa_root=tsa_root.cert,
            tsa_key=tsa_key,
            tsa_cert=tsa.cert,
        )

    # --- OIDC -----------------------------------------------------------------

    def mint_token(self, claims: dict[str, Any]) -> str:
        """Signs ``claims`` as an ES256 JWT with the local issuer key."""
        header = {"alg": "ES256", "typ": "JWT", "kid": key_id(self.oidc_key.public_key()).hex()}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        der = self.oidc_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def oidc_jwk(self) -> dict[str, str]:
        """The token-signing public key as a JWK (served at the issuer's ``/keys``)."""
        numbers = self.oidc_key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": key_id(self.oidc_key.public_key()).hex(),
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }

    def check_token(self, token: str, issuer: str) -> dict[str, Any]:
        """Verifies a token this instance minted; returns its claims.

        Raises:
            RequestRejected: bad signature, wrong issuer or audience, expired.
        """
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        try:
            head, body, sig = token.split(".")
            raw_sig = _b64url_decode(sig)
            der = encode_dss_signature(
                int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
            )
            self.oidc_key.public_key().verify(
                der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256())
            )
            claims: dict[str, Any] = json.loads(_b64url_decode(body))
        except (ValueError, InvalidSignature) as exc:
            raise RequestRejected(f"invalid identity token: {exc or 'bad signature'}") from exc
        now = _now().timestamp()
        if claims.get("iss") != issuer:
            raise RequestRejected(f"unknown token issuer {claims.get('iss')!r}")
        if claims.get("aud") != "sigstore":
            raise RequestRejected("token audience is not 'sigstore'")
        if not claims.get("nbf", 0) - 5 <= now < claims.get("exp", 0) + 5:
            raise RequestRejected("identity token expired")
        return claims

    # --- Fulcio ---------------------------------------------------------------

    def issue_certificate(
        self, csr: x509.CertificateSigningRequest, claims: dict[str, Any], issuer: str
    ) -> x509.Certificate:
        """Issues a short-lived code-signing certificate with an embedded SCT."""
        if not csr.is_signature_valid:
            raise RequestRejected("CSR signature (proof of possession) is invalid")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise RequestRejected("only EC keys are supported")
        if "email" in claims:
            san: x509.GeneralName = x509.RFC822Name(str(claims["email"]))
        else:
            san = x509.UniformResourceIdentifier(str(claims["sub"]))
        now = _now().replace(microsecond=0)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.fulcio_root.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + CERT_LIFETIME)
            .add_extension(key_usage_extension(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.fulcio_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V1, issuer.encode()), False)
            .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V2, _der_utf8(issuer)), False)
        )
        for claim, oid in GITHUB_CLAIM_OIDS.items():
            if isinstance(claims.get(claim), str):
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(oid, claims[claim].encode()), False
                )
        # RFC 6962 3.2: the SCT signs the certificate's TBS without the SCT list.
        precert = builder.sign(self.fulcio_key, hashes.SHA256())
        sct_list = self._sct_list(precert.tbs_certificate_bytes)
        return builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST, _der_octet_string(sct_list)), False
        ).sign(self.fulcio_key, hashes.SHA256())

    def _sct_list(self, tbs: bytes) -> bytes:
        timestamp = int(_now().timestamp() * 1000)
        issuer_hash = key_id(self.fulcio_key.public_key())
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp, 1)  # v1, certificate_timestamp, precert_entry
            + issuer_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)  # no extensions
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (
            struct.pack("!B", 0)
            + key_id(self.ct_key.public_key())
            + struct.pack("!QH", timestamp, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )
        item = struct.pack("!H", len(sct)) + sct
        return struct.pack("!H", len(item)) + item

    # --- files ----------------------------------------------------------------

    def write_tsa_files(self, directory: Path) -> dict[str, Path]:
        """Writes the TSA key and chain as PEM for ``openssl ts -reply``."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "key": directory / "tsa-key.pem",
            "cert": directory / "tsa-cert.pem",
            "chain": directory / "tsa-chain.pem",
        }
        paths["key"].write_bytes(
            self.tsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(paths["key"], 0o600)
        paths["cert"].write_bytes(self.tsa_cert.public_bytes(serialization.Encoding.PEM))
        paths["chain"].write_bytes(self.tsa_root.public_bytes(serialization.Encoding.PEM))
        return paths
