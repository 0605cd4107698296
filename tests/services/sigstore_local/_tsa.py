"""An RFC 3161 timestamp authority answered by ``openssl ts -reply``.

The signer is a certificate with the critical ``timeStamping`` extended key
usage, issued by its own root; both are in the instance's trusted root.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from ._pki import RequestRejected

_CONFIG = """\
[ tsa ]
default_tsa = local_tsa

[ local_tsa ]
dir = {dir}
serial = $dir/tsa-serial
crypto_device = builtin
signer_cert = $dir/tsa-cert.pem
signer_key = $dir/tsa-key.pem
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class TimestampAuthority:
    """Signs timestamp requests with the TSA key written in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self._openssl = shutil.which("openssl")
        if self._openssl is None:
            raise RuntimeError("the local timestamp authority needs the openssl command")
        self._dir = directory
        self._config = directory / "tsa.cnf"
        self._config.write_text(_CONFIG.format(dir=directory))
        (directory / "tsa-serial").write_text("01\n")
        self._lock = threading.Lock()

    def respond(self, query: bytes) -> bytes:
        """Returns the DER TimeStampResp for a DER TimeStampReq.

        Raises:
            RequestRejected: openssl could not parse or answer the request.
        """
        with self._lock, tempfile.TemporaryDirectory(dir=self._dir) as tmp:
            query_file = Path(tmp, "query.tsq")
            reply_file = Path(tmp, "reply.tsr")
            query_file.write_bytes(query)
            result = subprocess.run(
                [
                    str(self._openssl),
                    "ts",
                    "-reply",
                    "-config",
                    str(self._config),
                    "-queryfile",
                    str(query_file),
                    "-out",
                    str(reply_file),
                ],
                capture_output=True,
                check=False,
            )
            if result.returncode != 0 or not reply_file.exists():
                detail = result.stderr.decode(errors="replace").strip().splitlines()
                raise RequestRejected(f"timestamp request refused: {detail[-1:] or '?'}")
            return reply_file.read_bytes()
