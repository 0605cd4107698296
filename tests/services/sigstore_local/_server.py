"""The HTTP front of the local Sigstore instance, and its trust configuration.

One ``ThreadingHTTPServer`` on 127.0.0.1 serves three services under one
origin, with the paths the Sigstore clients use:

* Fulcio: ``POST /api/v2/signingCert``, ``GET /api/v2/trustBundle``
* Rekor v1: ``POST /api/v1/log/entries``, ``GET /api/v1/log/entries/<uuid>``,
  ``GET /api/v1/log``
* TSA: ``POST /api/v1/timestamp``, ``GET /api/v1/timestamp/certchain``
* OIDC discovery, ``GET /oidc/.well-known/openid-configuration`` (no login:
  tokens are minted by :meth:`LocalSigstore.mint_token`)
* a GitHub Actions-style token endpoint, ``GET /actions/token?audience=sigstore``,
  for ambient-credential tests (see :meth:`LocalSigstore.github_actions_env`)
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._pki import Authority, RequestRejected, key_id, spki_der
from ._rekor import TransparencyLog
from ._tsa import TimestampAuthority

TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
DEFAULT_IDENTITY = "signer@omsign.test"
GITHUB_WORKFLOW_IDENTITY = (
    "https://github.com/omsign/omsign/.github/workflows/release.yml@refs/heads/main"
)
GITHUB_CLAIMS = {
    "repository": "omsign/omsign",
    "ref": "refs/heads/main",
    "workflow": "release",
    "event_name": "push",
    "sha": "0123456789abcdef0123456789abcdef01234567",
}


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Services:
    """The state shared by request handlers."""

    def __init__(self, workdir: Path, base_url: str) -> None:
        self.base_url = base_url
        self.issuer = f"{base_url}/oidc"
        self.authority = Authority.generate()
        self.log = TransparencyLog(self.authority.rekor_key, f"rekor.local - {int(time.time())}")
        self.authority.write_tsa_files(workdir)
        self.tsa = TimestampAuthority(workdir)
        self.actions_request_token = secrets.token_urlsafe(16)

    def mint(self, identity: str, lifetime: int, claims: dict[str, Any]) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "sub": identity,
            "aud": "sigstore",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            **claims,
        }
        return self.authority.mint_token(payload)

    def actions_token(self, headers: Any, query: str) -> tuple[int, str, bytes]:
        scheme, _, presented = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or presented != self.actions_request_token:
            return 401, "application/json", b'{"message":"bad request token"}'
        audience = parse_qs(query).get("audience", ["sigstore"])[0]
        token = self.mint(GITHUB_WORKFLOW_IDENTITY, 600, {**GITHUB_CLAIMS, "aud": audience})
        return 200, "application/json", json.dumps({"value": token}).encode()

    def signing_cert(self, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return 401, "application/json", b'{"message":"missing bearer token"}'
        claims = self.authority.check_token(auth[len("Bearer ") :], self.issuer)
        try:
            request = json.loads(body)
            csr_pem = base64.b64decode(request["certificateSigningRequest"])
            csr = x509.load_pem_x509_csr(csr_pem)
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestRejected(f"malformed certificate request: {exc}") from exc
        cert = self.authority.issue_certificate(csr, claims, self.issuer)
        chain = [_pem(cert), _pem(self.authority.fulcio_root)]
        answer = {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}
        return 201, "application/json", json.dumps(answer).encode()

    def trusted_root(self) -> dict[str, Any]:
        """The trusted root (``trustedroot+json;version=0.1``) for this instance."""
        a = self.authority
        start = _iso(a.fulcio_root.not_valid_before_utc)

        def log_instance(key: Any, url: str) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(spki_der(key.public_key())).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": base64.b64encode(key_id(key.public_key())).decode()},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log_instance(a.rekor_key, self.base_url)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "omsign-test", "commonName": "local-fulcio-root"},
                    "uri": self.base_url,
                    "certChain": {"certificates": [{"rawBytes": _der_b64(a.fulcio_root)}]},
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log_instance(a.ct_key, self.base_url)],
            "timestampAuthorities": [
                {
                    "subject": {"organization": "omsign-test", "commonName": "local-tsa"},
                    "uri": f"{self.base_url}/api/v1/timestamp",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _der_b64(a.tsa_cert)},
                            {"rawBytes": _der_b64(a.tsa_root)},
                        ]
                    },
                    "validFor": {"start": start},
                }
            ],
        }

    def signing_config(self) -> dict[str, Any]:
        """The signing config (``signingconfig.v0.2+json``) pointing here."""
        start = _iso(self.authority.fulcio_root.not_valid_before_utc)

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": start},
                "operator": "omsign-test",
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(self.base_url)],
            "oidcUrls": [service(self.issuer)],
            "rekorTlogUrls": [service(self.base_url)],
            "tsaUrls": [service(f"{self.base_url}/api/v1/timestamp")],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps test output quiet."""

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: object) -> None:
        self._send(status, "application/json", json.dumps(obj).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        services = self.server.services
        try:
            if self.path == "/api/v2/signingCert":
                self._send(*services.signing_cert(self.headers, body))
            elif self.path == "/api/v1/log/entries":
                self._json(201, services.log.add(json.loads(body)))
            elif self.path == "/api/v1/timestamp":
                self._send(201, "application/timestamp-reply", services.tsa.respond(body))
            else:
                self._json(404, {"message": f"no such endpoint {self.path}"})
        except RequestRejected as exc:
            self._json(400, {"code": 400, "message": str(exc)})
        except ValueError as exc:
            self._json(400, {"code": 400, "message": f"malformed request: {exc}"})

    def do_GET(self) -> None:
        services = self.server.services
        url = urlsplit(self.path)
        if url.path == "/oidc/.well-known/openid-configuration":
            oidc = services.issuer
            self._json(
                200,
                {
                    "issuer": oidc,
                    "authorization_endpoint": f"{oidc}/auth",
                    "token_endpoint": f"{oidc}/token",
                    "jwks_uri": f"{oidc}/keys",
                    "id_token_signing_alg_values_supported": ["ES256"],
                },
            )
        elif url.path == "/oidc/keys":
            self._json(200, {"keys": [services.authority.oidc_jwk()]})
        elif url.path == "/actions/token":
            self._send(*services.actions_token(self.headers, url.query))
        elif self.path == "/api/v2/trustBundle":
            chain = [_pem(services.authority.fulcio_root)]
            self._json(200, {"chains": [{"certificates": chain}]})
        elif self.path == "/api/v1/log":
            self._json(200, services.log.info())
        elif self.path.startswith("/api/v1/log/entries/"):
            entry = services.log.get(self.path.rsplit("/", 1)[-1])
            self._json(200, entry) if entry else self._json(404, {"message": "no such entry"})
        elif self.path == "/api/v1/timestamp/certchain":
            a = services.authority
            self._send(
                200,
                "application/pem-certificate-chain",
                (_pem(a.tsa_cert) + _pem(a.tsa_root)).encode(),
            )
        else:
            self._json(404, {"message": f"no such endpoint {self.path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    services: _Services


@dataclass
class LocalSigstore:
    """A running local Sigstore instance.

    Attributes:
        url: base URL of all three services.
        trust_config: ClientTrustConfig JSON file pointing at this instance.
        identity_token: a fresh token for ``identity`` (valid one hour).
        identity: the certificate identity (email SAN) the token yields.
        issuer: the OIDC issuer written into certificates.
    """

    url: str
    trust_config: Path
    identity_token: str
    identity: str
    issuer: str
    _server: _Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def mint_token(
        self, identity: str = DEFAULT_IDENTITY, lifetime: int = 3600, **claims: Any
    ) -> str:
        """Mints another identity token (email identity); extra ``claims`` are added.

        GitHub claims (``repository``, ``ref``, ``workflow``, ``event_name``,
        ``sha``) end up in the certificate's Fulcio extensions.
        """
        return self._server.services.mint(identity, lifetime, {"email": identity, **claims})

    def github_actions_env(self) -> dict[str, str]:
        """Environment variables that make this instance a GitHub Actions token source.

        The token it hands out has identity ``GITHUB_WORKFLOW_IDENTITY`` (a URI)
        and the claims in ``GITHUB_CLAIMS``.
        """
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/actions/token",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self._server.services.actions_request_token,
        }

    def stop(self) -> None:
        """Shuts the server down and waits for it."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_local_sigstore(workdir: Path) -> LocalSigstore:
    """Starts the instance on a free 127.0.0.1 port; files go to ``workdir``."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    server = _Server(("127.0.0.1", 0), _Handler)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    server.services = _Services(workdir, base_url)
    trust_config = workdir / "trust_config.json"
    trust_config.write_text(
        json.dumps(
            {
                "mediaType": TRUST_CONFIG_MEDIA_TYPE,
                "trustedRoot": server.services.trusted_root(),
                "signingConfig": server.services.signing_config(),
            },
            indent=2,
        )
    )
    thread = threading.Thread(target=server.serve_forever, name="local-sigstore", daemon=True)
    thread.start()
    instance = LocalSigstore(
        url=base_url,
        trust_config=trust_config,
        identity_token="",
        identity=DEFAULT_IDENTITY,
        issuer=server.services.issuer,
        _server=server,
        _thread=thread,
    )
    instance.identity_token = instance.mint_token()
    return instance
