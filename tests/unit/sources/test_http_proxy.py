"""Models on a web server reached through the HTTP proxy the environment names
(``https_proxy`` / ``http_proxy``, either case; ``no_proxy``), against a real tinyproxy and
a real nginx: ``https://`` through a ``CONNECT`` tunnel with the server's certificate still
verified, ``http://`` forwarded, hosts in ``no_proxy`` reached directly, and a proxy's
credentials sent to it alone, never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from helpers.pki import make_ca, write_certs
from omsign.errors import StorageAccessError, UsageError
from omsign.sources._http_proxy import proxy_for
from services._process import free_port
from services.nginx import Nginx
from services.tinyproxy import Tinyproxy

_FILES = {"config.json": b'{"layers": 2}\n', "weights.bin": os.urandom(200_000)}
_NAMES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test names its own proxies: none inherited from the environment."""
    for name in _NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_a_served_model_verifies_through_the_proxy_in_a_tls_tunnel(
    https_trust: Nginx,
    tinyproxy: Tinyproxy,
    tmp_path: Path,
    p256: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    folder, path = https_trust.folder(_FILES)
    url = https_trust.tls_url + path
    monkeypatch.setenv(variable, tinyproxy.url)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    result = omsign.verify(url, key=p256.public, signature=sig)
    assert result.root_digest == omsign.digest(folder)
    port = https_trust.tls_url.rpartition(":")[2]
    assert tinyproxy.logged(f"CONNECT 127.0.0.1:{port} ")
    assert all(" CONNECT " in line for line in tinyproxy.requests())  # never a plain request


def test_a_plain_http_model_is_forwarded_by_the_proxy(
    nginx: Nginx,
    tinyproxy: Tinyproxy,
    tmp_path: Path,
    p256: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from omsign.sources import _http

    monkeypatch.setattr(_http, "_WARNED", set())  # the once-per-host warning stays unsaid
    _, path = nginx.folder(_FILES)
    url = nginx.url + path
    monkeypatch.setenv("http_proxy", tinyproxy.url)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    omsign.verify(url, key=p256.public, signature=sig)
    assert tinyproxy.logged(f"GET {url}weights.bin ")
    assert tinyproxy.logged(f"HEAD {url}config.json ")


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_a_host_in_no_proxy_is_reached_directly(
    https_trust: Nginx,
    tmp_path: Path,
    p256: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """The proxy named listens nowhere (see the next test but one): the model verifies only
    because 127.0.0.1 is reached directly."""
    folder, path = https_trust.folder(_FILES)
    url = https_trust.tls_url + path
    sig = tmp_path / "m.sig"
    omsign.sign(folder, key=p256.private, signature=sig)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv(variable, "example.org,127.0.0.1")
    omsign.verify(url, key=p256.public, signature=sig)


def test_the_servers_certificate_is_verified_through_the_tunnel(
    nginx: Nginx,
    tinyproxy: Tinyproxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy relays the TLS bytes; the certificate is still the server's, checked
    against the trust omsign has (here another CA): refused."""
    other = write_certs(tmp_path / "other-ca.pem", [make_ca("another CA").cert])
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    _, path = nginx.folder(_FILES)
    with pytest.raises(StorageAccessError, match="the server's TLS certificate is not trusted"):
        omsign.digest(nginx.tls_url + path)
    port = nginx.tls_url.rpartition(":")[2]
    assert tinyproxy.logged(f"CONNECT 127.0.0.1:{port} ")  # tunnelled: the cert is the server's


def test_an_unreachable_proxy_is_named_without_its_credentials(
    https_trust: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("HTTPS_PROXY", f"http://omsign:s3cret@127.0.0.1:{port}")
    _, path = https_trust.folder(_FILES)
    with pytest.raises(StorageAccessError) as caught:
        omsign.digest(https_trust.tls_url + path)
    message = str(caught.value)
    assert f"cannot reach the server through the proxy http://127.0.0.1:{port}" in message
    assert "s3cret" not in message and "omsign:" not in message
    assert caught.value.exit_code == 2


def test_the_proxys_credentials_go_to_the_proxy(
    https_trust: Nginx,
    tinyproxy_auth: Tinyproxy,
    tmp_path: Path,
    p256: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy that asks for a password: given in the proxy's URL, the model verifies
    through it; without it, the proxy refuses the tunnel, and the run fails (exit 2)."""
    folder, path = https_trust.folder(_FILES)
    url = https_trust.tls_url + path
    sig = tmp_path / "m.sig"
    omsign.sign(folder, key=p256.private, signature=sig)
    address = tinyproxy_auth.url.removeprefix("http://")
    monkeypatch.setenv("HTTPS_PROXY", f"http://omsign:s3cret@{address}")
    omsign.verify(url, key=p256.public, signature=sig)
    assert tinyproxy_auth.logged("CONNECT 127.0.0.1:")
    monkeypatch.setenv("HTTPS_PROXY", f"http://omsign:wrong@{address}")
    with pytest.raises(
        StorageAccessError,
        match=r"through the proxy http://127\.0\.0\.1:[0-9]+ \(Tunnel connection failed: 40[17]",
    ):
        omsign.verify(url, key=p256.public, signature=sig)


def test_a_proxy_that_is_not_http_is_a_usage_error(
    https_trust: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://u:pw@127.0.0.1:1080")
    with pytest.raises(UsageError, match=r"https_proxy: socks5://127\.0\.0\.1:1080 is not an"):
        omsign.digest(https_trust.tls_url + "/")


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("example.org", "https://models.example.org/m/", True),
        (".example.org", "https://example.org/m/", True),
        ("example.org", "https://badexample.org/m/", False),
        ("example.org:8443", "https://example.org:8443/m/", True),
        ("example.org:8443", "https://example.org/m/", False),
        ("*", "https://anything.test/m/", True),
        ("", "https://example.org/m/", False),
        (" other.test , EXAMPLE.org ", "https://example.org/m/", True),
    ],
)
def test_no_proxy_names_hosts_and_domain_suffixes(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, direct: bool
) -> None:
    monkeypatch.setenv("https_proxy", "proxy.test:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    assert proxy_for(url) == (None if direct else "http://proxy.test:3128")
