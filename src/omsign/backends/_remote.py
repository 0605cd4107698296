"""What every key held by a remote service shares: hash here, sign there, check the answer.

A cloud key service signs a digest with a key that never leaves it. omsign hashes the
DSSE PAE locally with the curve's hash, sends what the service needs, and verifies the
signature it returns with the public key the service reported before using it, so a
service that answers with another key's signature (or garbage) fails at signing time,
not later at verification. Service modules (``_awskms``, ``_gcpkms``, ``_azurekms``)
supply only the calls and the translation of their answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from omsign.backends._ec import check_ec_key, hash_for
from omsign.errors import KeyLoadError

__all__ = ["RemoteSigningKey", "der_from_raw", "load_public"]

# Signs with the service: (the data, its digest under the curve's hash) -> DER or raw r||s.
SignCall = Callable[[bytes, bytes], bytes]


def load_public(data: bytes, source: str) -> ec.EllipticCurvePublicKey:
    """A service's SubjectPublicKeyInfo answer (PEM or DER) as a supported EC public key."""
    pem = data.lstrip().startswith(b"-----BEGIN")
    loader = serialization.load_pem_public_key if pem else serialization.load_der_public_key
    try:
        key = loader(data)
    except ValueError:
        raise KeyLoadError(
            f"{source}: the service returned a public key omsign cannot read"
        ) from None
    return check_ec_key(key, source)


def der_from_raw(raw: bytes, key: ec.EllipticCurvePublicKey, source: str) -> bytes:
    """Turns a JOSE-style ``r || s`` signature into DER (as ECDSA verification expects)."""
    size = (key.curve.key_size + 7) // 8
    if len(raw) != 2 * size:
        raise KeyLoadError(
            f"{source}: the service returned a {len(raw)}-byte signature; "
            f"{2 * size} bytes were expected for {key.curve.name}"
        )
    return encode_dss_signature(
        int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    )


@dataclass(frozen=True, repr=False)
class RemoteSigningKey:
    """A :class:`~omsign.backends.SigningKey` whose private half stays in a service.

    Attributes:
        name: the key's URI, for messages.
        public: the public key the service reported.
        call: signs with the service; returns a DER signature.
    """

    name: str
    public: ec.EllipticCurvePublicKey
    call: SignCall

    def __repr__(self) -> str:
        return f"<remote key {self.name}>"

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key the service reported."""
        return self.public

    def sign(self, data: bytes) -> bytes:
        """Signs ``data`` (hashed here with the curve's hash); returns a checked DER signature.

        Raises:
            KeyLoadError: the service's signature does not verify with its public key.
        """
        algorithm = hash_for(self.public)
        hasher = hashes.Hash(algorithm)
        hasher.update(data)
        signature = self.call(data, hasher.finalize())
        try:
            self.public.verify(signature, data, ec.ECDSA(algorithm))
        except InvalidSignature:
            raise KeyLoadError(
                f"{self.name}: the key service returned a signature that does not verify with "
                "the key's public key; check the key version"
            ) from None
        return signature
