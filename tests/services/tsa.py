"""A real RFC 3161 timestamp authority on 127.0.0.1 for tests.

A threaded ``http.server`` answers ``application/timestamp-query`` POSTs by piping
the query through ``openssl ts -reply`` with a throw-away PKI (root -> TSA
certificate, from ``helpers.pki``), and returns the DER
``application/timestamp-reply``. The pytest fixtures ``tsa`` and ``untrusted_tsa``
(session scoped, two unrelated roots) are defined at the bottom; a conftest brings
them in with ``pytest_plugins = ["services.tsa"]`` or by importing them.

``openssl ts -reply`` refuses to sign with a certificate that lacks the critical
timeStamping EKU. To test that verifiers reject such tokens, a TSA started with such
a certificate has its genuine TSTInfo re-signed by ``openssl cms -sign`` with the bad
certificate, which yields a well-formed token from a TSA that should not be trusted.
``fault`` makes the server misbehave in other ways: ``"garbage"`` (200 with junk),
``"http-500"`` and ``"replay"`` (always sends the first reply it made).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from helpers.pki import Issued, issue_tsa_cert, make_ca, write_certs

_TSTINFO_OID = "1.2.840.113549.1.9.16.1.4"

# TimeStampResp { status { rejection (2), statusString { "busy" } } }: no token.
REJECTION = bytes.fromhex("300d300b02010230060c0462757379")

_CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = {cert}
{certs_line}
signer_key = {key}
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.2.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = {tsa_name}
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass
class RunningTSA:
    """A timestamp authority serving on loopback.

    Attributes:
        url: where to POST timestamp queries.
        root: the root CA (certificate and key) the TSA certificate chains to.
        tsa: the TSA signing certificate and key (``chain`` holds its issuers).
        root_path: PEM file with the root certificate (the trust anchor to give verifiers).
        chain_path: PEM file with the TSA certificate followed by its issuers.
        requests: number of queries answered so far.
    """

    url: str
    root: Issued
    tsa: Issued
    root_path: Path
    chain_path: Path
    requests: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _wrap_granted(token: bytes) -> bytes:
    """TimeStampResp ::= SEQUENCE { status PKIStatusInfo (granted), timeStampToken }."""
    body = b"\x30\x03\x02\x01\x00" + token
    return b"\x30" + _der_length(len(body)) + body


def _other_imprint(query: bytes) -> bytes:
    """The query with its SHA-256 message imprint replaced: a reply over other data."""
    start = query.index(b"\x04\x20") + 2
    other = hashlib.sha256(b"other data").digest()
    return query[:start] + other + query[start + 32 :]


def _without_certificate_request(query: bytes) -> bytes:
    """The query without ``certReq TRUE`` (its last field), so the reply has no certificate."""
    assert query[1] < 0x80 and query.endswith(b"\x01\x01\xff"), query.hex()
    body = query[2:-3]
    return b"\x30" + bytes([len(body)]) + body


def _usable_by_openssl_ts(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


class _Stamper:
    """Turns a DER query into a DER reply with openssl, one at a time (serial file)."""

    def __init__(self, workdir: Path, tsa: Issued, root: Issued, *, include_chain: bool) -> None:
        self.workdir = workdir
        self.lock = threading.Lock()
        self.resign_with: Issued | None = None
        signer = tsa
        if not _usable_by_openssl_ts(tsa.cert):
            # openssl ts only signs with a proper TSA certificate: make the TSTInfo with
            # a private helper, then re-sign it as the (improper) TSA below.
            self.resign_with = tsa
            signer = issue_tsa_cert(root, name="omsign test TSA helper").write(workdir, "helper")
        (workdir / "serial").write_text("01\n")
        assert signer.cert_path
        assert signer.key_path
        chain_file = write_certs(workdir / "signer-chain.crt", signer.chain)
        self.config = workdir / "openssl-tsa.cnf"
        self.config.write_text(
            _CONFIG.format(
                dir=workdir,
                cert=signer.cert_path,
                key=signer.key_path,
                certs_line=f"certs = {chain_file}" if include_chain else "",
                tsa_name="no" if self.resign_with else "yes",
            )
        )

    def reply(self, query: bytes) -> bytes:
        with self.lock, tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            query_path = Path(tmp, "query.tsq")
            query_path.write_bytes(query)
            reply_path = Path(tmp, "reply.tsr")
            args = ["-config", str(self.config), "-queryfile", str(query_path)]
            if self.resign_with is None:
                _openssl("ts", "-reply", *args, "-out", str(reply_path))
                return reply_path.read_bytes()
            return self._resigned(tmp, args)

    def _resigned(self, tmp: str, args: list[str]) -> bytes:
        bad = self.resign_with
        assert bad is not None
        assert bad.cert_path
        assert bad.key_path
        token = Path(tmp, "token.der")
        _openssl("ts", "-reply", *args, "-token_out", "-out", str(token))
        tst_info = _openssl(
            "cms", "-verify", "-noverify", "-binary", "-inform", "DER", "-in", str(token)
        )
        resigned = _openssl(
            "cms", "-sign", "-binary", "-nodetach", "-nosmimecap", "-md", "sha256",
            "-econtent_type", _TSTINFO_OID, "-signer", str(bad.cert_path),
            "-inkey", str(bad.key_path), "-outform", "DER",
            stdin=tst_info,
        )  # fmt: skip
        return _wrap_granted(resigned)


def start_tsa(
    workdir: Path,
    *,
    root: Issued | None = None,
    tsa: Issued | None = None,
    name: str = "omsign test TSA",
    intermediate: bool = False,
    include_chain: bool = False,
    fault: str | None = None,
) -> RunningTSA:
    """Start a timestamp authority on a random loopback port.

    Args:
        workdir: an empty directory for its keys, certificates and openssl files.
        root: the root CA to issue from (a new one when omitted).
        tsa: the TSA certificate to sign with (default: a proper TSA certificate with the
            critical timeStamping EKU, issued by ``root``).
        name: common name for the generated TSA certificate and CAs.
        intermediate: issue the default TSA certificate from an intermediate CA.
        include_chain: put the issuers of the TSA certificate into each token besides
            the TSA certificate itself (openssl writes that SET OF unsorted, which strict
            DER parsers such as rfc3161-client reject).
        fault: None for a correct TSA, or "garbage", "http-500", "replay" (the first reply
            again), "other-data" (stamps another message imprint), "no-certificate" (leaves
            its certificate out of the reply), "rejection" (refuses, status 2 "busy").

    Returns:
        The running TSA; call ``stop()`` when done.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    root = root or make_ca(f"{name} root")
    if tsa is None:
        issuer = make_ca(f"{name} intermediate", parent=root) if intermediate else root
        tsa = issue_tsa_cert(issuer, name=name)
    tsa = tsa.write(workdir, "tsa")
    root_path = write_certs(workdir / "root.crt", [root.cert])
    chain_path = write_certs(workdir / "tsa-fullchain.crt", tsa.full_chain)
    stamper = _Stamper(workdir, tsa, root, include_chain=include_chain)
    running = RunningTSA(url="", root=root, tsa=tsa, root_path=root_path, chain_path=chain_path)
    replayed: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            query = self.rfile.read(length)
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self._send(415, b"expected application/timestamp-query", "text/plain")
                return
            running.requests += 1
            if fault == "http-500":
                self._send(500, b"internal error", "text/plain")
                return
            if fault == "garbage":
                self._send(200, b"<html>this is not a timestamp</html>", "text/html")
                return
            if fault == "rejection":
                self._send(200, REJECTION, "application/timestamp-reply")
                return
            if fault == "other-data":
                query = _other_imprint(query)
            if fault == "no-certificate":
                query = _without_certificate_request(query)
            try:
                reply = stamper.reply(query)
            except RuntimeError as exc:
                self._send(400, str(exc).encode(), "text/plain")
                return
            if fault == "replay":
                replayed.append(reply)
                reply = replayed[0]
            self._send(200, reply, "application/timestamp-reply")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="tsa", daemon=True)
    thread.start()
    running.url = f"http://127.0.0.1:{server.server_address[1]}/tsr"
    running._server = server
    running._thread = thread
    return running


def _require_openssl() -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("the TSA test service needs the openssl command line tool")


@pytest.fixture(scope="session", name="tsa")
def tsa_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTSA]:
    """A correct timestamp authority, shared by the whole session."""
    _require_openssl()
    running = start_tsa(tmp_path_factory.mktemp("tsa"), name="omsign test TSA")
    yield running
    running.stop()


@pytest.fixture(scope="session", name="untrusted_tsa")
def untrusted_tsa_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTSA]:
    """A second, correct timestamp authority under its own unrelated root."""
    _require_openssl()
    running = start_tsa(tmp_path_factory.mktemp("untrusted-tsa"), name="omsign rogue TSA")
    yield running
    running.stop()
