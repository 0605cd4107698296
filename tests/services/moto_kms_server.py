"""moto's standalone server, for the AWS KMS tests, with one behaviour corrected.

AWS KMS ``Sign`` with ``MessageType=DIGEST`` signs the given digest as it is. moto
5.2.5 does not implement that (its documentation says DIGEST is not implemented): it
hashes the digest again, so a correct client's signature would not verify. This
launcher replaces moto's ``Sign`` handler for ``DIGEST`` messages on EC keys with one
that signs the digest as given (ECDSA over a prehashed value), and leaves everything
else, ``RAW`` signing included, to moto. Run: ``python moto_kms_server.py PORT``.
"""

from __future__ import annotations

import base64
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms.exceptions import ValidationException
from moto.kms.responses import KmsResponse
from moto.server import main

_HASHES = {
    "ECDSA_SHA_256": hashes.SHA256,
    "ECDSA_SHA_384": hashes.SHA384,
    "ECDSA_SHA_512": hashes.SHA512,
}
_moto_sign = KmsResponse.sign


def _sign(self: KmsResponse) -> str:
    if self._get_param("MessageType") != "DIGEST":
        return _moto_sign(self)
    key = self.kms_backend.describe_key(self._get_param("KeyId"))
    algorithm = self._get_param("SigningAlgorithm")
    private = getattr(key.private_key, "private_key", None)
    if algorithm not in _HASHES or not isinstance(private, ec.EllipticCurvePrivateKey):
        return _moto_sign(self)
    digest = self._get_param("Message")
    hash_algorithm = _HASHES[algorithm]()
    if len(digest) != hash_algorithm.digest_size:
        raise ValidationException("Digest is invalid length for algorithm " + algorithm)
    signature = private.sign(digest, ec.ECDSA(Prehashed(hash_algorithm)))
    return json.dumps(
        {
            "KeyId": key.arn,
            "Signature": base64.b64encode(signature).decode(),
            "SigningAlgorithm": algorithm,
        }
    )


KmsResponse.sign = _sign  # type: ignore[method-assign]

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
