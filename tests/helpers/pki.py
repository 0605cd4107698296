"""Throw-away X.509 PKI for tests: keys, CAs, leaf and TSA certificates, PEM files.

Everything is built with ``cryptography`` in memory and is fast enough to call per
test. The defaults make a valid chain; keyword arguments break it in the ways the
security tests need (expired, not yet valid, missing key usages, wrong EKU...).

    root = make_ca("Root")
    inter = make_ca("Intermediate", parent=root)
    leaf = issue_leaf(inter).write(tmp_path, "leaf")
    leaf.cert_path, leaf.key_path, leaf.chain   # chain: [inter, root]
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


def now() -> datetime.datetime:
    """The current time, aware UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


def days(n: float) -> datetime.timedelta:
    """A time span of ``n`` days (negative for the past)."""
    return datetime.timedelta(days=n)


@dataclass(frozen=True)
class Issued:
    """A certificate, its private key, the issuers above it and, once written, its files.

    Attributes:
        cert: the certificate.
        key: its private key.
        chain: the issuing certificates, nearest first, up to and including the root
            (empty for a root).
        cert_path: PEM file holding ``cert`` alone (after ``write``).
        key_path: PEM file holding ``key`` as unencrypted PKCS#8 (after ``write``).
        chain_path: PEM file holding ``chain`` (after ``write``; None for a root).
    """

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = field(default=())
    cert_path: Path | None = None
    key_path: Path | None = None
    chain_path: Path | None = None

    @property
    def root(self) -> x509.Certificate:
        """The self-signed certificate at the top of this chain."""
        return self.chain[-1] if self.chain else self.cert

    @property
    def full_chain(self) -> tuple[x509.Certificate, ...]:
        """``cert`` followed by its issuers, nearest first."""
        return (self.cert, *self.chain)

    def write(self, directory: Path, stem: str) -> Issued:
        """Write ``<stem>.crt``, ``<stem>.key`` and ``<stem>-chain.crt`` under ``directory``.

        Returns:
            A copy of this object with the paths filled in.
        """
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = write_certs(directory / f"{stem}.crt", [self.cert])
        key_path = write_private_key(directory / f"{stem}.key", self.key)
        chain_path = (
            write_certs(directory / f"{stem}-chain.crt", self.chain) if self.chain else None
        )
        return replace(self, cert_path=cert_path, key_path=key_path, chain_path=chain_path)


def make_ec_key(curve: str | type[ec.EllipticCurve] = "P-256") -> ec.EllipticCurvePrivateKey:
    """A new ECDSA private key on ``curve`` ("P-256", "P-384", "P-521" or a curve class)."""
    return ec.generate_private_key((_CURVES[curve] if isinstance(curve, str) else curve)())


def make_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_ed25519_key() -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 private key."""
    return ed25519.Ed25519PrivateKey.generate()


def make_ed448_key() -> ed448.Ed448PrivateKey:
    """A new Ed448 private key (an algorithm omsign does not sign with)."""
    return ed448.Ed448PrivateKey.generate()


def make_dsa_key(bits: int = 2048) -> dsa.DSAPrivateKey:
    """A new DSA private key (an algorithm omsign does not sign with)."""
    return dsa.generate_private_key(key_size=bits)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "omsign tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        if size > 384:
            return hashes.SHA512()
        if size > 256:
            return hashes.SHA384()
    return hashes.SHA256()


def _certificate(
    *,
    subject: x509.Name,
    public_key: PublicKey,
    signer_key: PrivateKey,
    issuer_name: x509.Name,
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
    extensions: Iterable[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now() - days(1))
        .not_valid_after(not_after or now() + days(365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer_key, _hash_for(signer_key))


def build_certificate(
    *,
    subject: str,
    key: PrivateKey,
    issuer: Issued | None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> Issued:
    """A certificate for ``key`` with exactly ``extensions`` (plus key identifiers).

    For shapes that :func:`make_ca` and :func:`issue_leaf` do not make (name constraints,
    unknown critical extensions...).

    Args:
        subject: common name of the subject.
        key: the subject's private key.
        issuer: the issuing CA, or None for a self-signed certificate.
        not_before: start of validity (default: a day ago).
        not_after: end of validity (default: in a year).
        extensions: (extension, critical) pairs, added in order.
    """
    cert = _certificate(
        subject=_name(subject),
        public_key=key.public_key(),
        signer_key=issuer.key if issuer else key,
        issuer_name=issuer.cert.subject if issuer else _name(subject),
        not_before=not_before,
        not_after=not_after,
        extensions=extensions,
    )
    return Issued(cert=cert, key=key, chain=issuer.full_chain if issuer else ())


def key_usage_extension(
    *, digital_signature: bool = False, cert_sign: bool = False
) -> x509.KeyUsage:
    """A keyUsage extension with digitalSignature and/or keyCertSign (with cRLSign)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    name: str,
    key: PrivateKey | None = None,
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    parent: Issued | None = None,
    path_length: int | None = None,
) -> Issued:
    """A CA certificate: a self-signed root, or an intermediate signed by ``parent``.

    Args:
        name: common name of the CA.
        key: its key (a new P-256 key when omitted).
        not_before: start of validity (default: a day ago).
        not_after: end of validity (default: in a year).
        parent: the issuing CA; None makes a root.
        path_length: basicConstraints pathLenConstraint.
    """
    key = key or make_ec_key()
    return build_certificate(
        subject=name,
        key=key,
        issuer=parent,
        not_before=not_before,
        not_after=not_after,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=path_length), True),
            (key_usage_extension(cert_sign=True), True),
        ],
    )


def leaf_extensions(
    *,
    key_usage_digital_signature: bool = True,
    key_usage: bool = True,
    eku_code_signing: bool = True,
    extra_ekus: Sequence[x509.ObjectIdentifier] = (),
    critical_eku: bool = False,
    is_ca: bool = False,
    emails: Sequence[str] = (),
    uris: Sequence[str] = (),
) -> list[tuple[x509.ExtensionType, bool]]:
    """The (extension, critical) pairs of a signing certificate; see :func:`issue_leaf`."""
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=is_ca, path_length=None), True),
    ]
    if key_usage:
        extensions.append(
            (key_usage_extension(digital_signature=key_usage_digital_signature), True)
        )
    ekus = [ExtendedKeyUsageOID.CODE_SIGNING] if eku_code_signing else []
    ekus += list(extra_ekus)
    if ekus:
        extensions.append((x509.ExtendedKeyUsage(ekus), critical_eku))
    sans: list[x509.GeneralName] = [x509.RFC822Name(e) for e in emails]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    if sans:
        extensions.append((x509.SubjectAlternativeName(sans), False))
    return extensions


def issue_leaf(
    ca: Issued,
    key: PrivateKey | None = None,
    *,
    name: str = "omsign test signer",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    **usage: Any,
) -> Issued:
    """An end-entity (signing) certificate issued by ``ca``.

    Args:
        ca: the issuing CA.
        key: the leaf key (a new P-256 key when omitted).
        name: common name of the subject.
        not_before: start of validity (default: a day ago).
        not_after: end of validity (default: in a year).
        **usage: keyword arguments of :func:`leaf_extensions`:
            ``key_usage_digital_signature`` (set digitalSignature in keyUsage),
            ``key_usage`` (include a keyUsage extension at all), ``eku_code_signing``
            (include codeSigning in extendedKeyUsage), ``extra_ekus`` (further purposes),
            ``critical_eku`` (mark extendedKeyUsage critical), ``is_ca`` (basicConstraints
            cA flag: a leaf that claims to be a CA), ``emails`` and ``uris`` (subject
            alternative names).
    """
    return build_certificate(
        subject=name,
        key=key or make_ec_key(),
        issuer=ca,
        not_before=not_before,
        not_after=not_after,
        extensions=leaf_extensions(**usage),
    )


def certify_public_key(
    ca: Issued,
    public_key: PublicKey,
    *,
    name: str = "omsign test signer",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    **usage: Any,
) -> x509.Certificate:
    """A signing certificate from ``ca`` for a key held elsewhere (a token, a CSR).

    Takes the same arguments as :func:`issue_leaf`, with a public key instead of a
    private one.
    """
    return _certificate(
        subject=_name(name),
        public_key=public_key,
        signer_key=ca.key,
        issuer_name=ca.cert.subject,
        not_before=not_before,
        not_after=not_after,
        extensions=leaf_extensions(**usage),
    )


def issue_tsa_cert(
    ca: Issued | None,
    key: PrivateKey | None = None,
    *,
    name: str = "omsign test TSA",
    critical_eku: bool = True,
    eku_time_stamping: bool = True,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A timestamp authority certificate issued by ``ca`` (RFC 3161 section 2.3).

    Args:
        ca: the issuing CA, or None for a self-signed TSA certificate.
        key: the TSA key (a new P-256 key when omitted).
        name: common name of the TSA.
        critical_eku: mark the extendedKeyUsage extension critical, as RFC 3161 requires.
        eku_time_stamping: use timeStamping as the sole purpose; False uses codeSigning.
        not_before: start of validity (default: a day ago).
        not_after: end of validity (default: in a year).
    """
    key = key or make_ec_key()
    purpose = (
        ExtendedKeyUsageOID.TIME_STAMPING if eku_time_stamping else ExtendedKeyUsageOID.CODE_SIGNING
    )
    return build_certificate(
        subject=name,
        key=key,
        issuer=ca,
        not_before=not_before,
        not_after=not_after,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (key_usage_extension(digital_signature=True), True),
            (x509.ExtendedKeyUsage([purpose]), critical_eku),
        ],
    )


def cert_pem(certs: Iterable[x509.Certificate]) -> bytes:
    """The concatenated PEM encoding of ``certs``."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_certs(path: Path, certs: Iterable[x509.Certificate]) -> Path:
    """Write ``certs`` as concatenated PEM to ``path``; returns ``path``."""
    path.write_bytes(cert_pem(certs))
    return path


def private_key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """``key`` as PKCS#8 PEM, encrypted with ``password`` when given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_private_key(path: Path, key: PrivateKey, password: bytes | None = None) -> Path:
    """Write ``key`` as PKCS#8 PEM to ``path`` (encrypted when ``password`` is given)."""
    path.write_bytes(private_key_pem(key, password))
    path.chmod(0o600)
    return path


def write_public_key(
    path: Path, key: PrivateKey | ed448.Ed448PrivateKey | dsa.DSAPrivateKey
) -> Path:
    """Write the SubjectPublicKeyInfo PEM of ``key`` to ``path``; returns ``path``."""
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def write_loopback_server_cert(directory: Path, ca_name: str) -> tuple[Path, Path, Path]:
    """A TLS server certificate for ``127.0.0.1`` and ``localhost`` from a fresh test CA.

    Writes ``server.crt`` (the chain), ``server.key`` and ``ca.crt`` into ``directory``
    and returns their paths in that order.
    """
    ca = make_ca(ca_name)
    key = make_ec_key()
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = build_certificate(
        subject="127.0.0.1",
        key=key,
        issuer=ca,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.SubjectAlternativeName(sans), False),
        ],
    )
    return (
        write_certs(directory / "server.crt", leaf.full_chain),
        write_private_key(directory / "server.key", key),
        write_certs(directory / "ca.crt", [ca.cert]),
    )
