"""Google Cloud KMS and Azure Key Vault keys, tested without their services.

Neither service can run on these machines (no local server exists for either), so
these tests exercise everything but the service: URI parsing, version and algorithm
checks, and turning the service's answers (built with the SDKs' own response types,
signed with a local key standing in for the service's) into omsign's signatures and
errors. ``scripts/check-cloud-kms.sh`` checks both end to end with real credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

import omsign
from helpers.fixtures import make_model
from helpers.pki import make_ec_key, write_private_key, write_public_key
from omsign.backends import _azurekms, _gcpkms
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

KEY = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
_GCP_ALGS = {ec.SECP256R1: "EC_SIGN_P256_SHA256", ec.SECP384R1: "EC_SIGN_P384_SHA384"}


@dataclass
class StandInKms:
    """Answers like KeyManagementServiceClient, with the SDK's types and a local key."""

    curve: type[ec.EllipticCurve] = ec.SECP256R1
    states: dict[str, str] = field(default_factory=lambda: {"1": "ENABLED"})
    algorithm: str | None = None
    wrong_key: bool = False
    fail: Exception | None = None
    digests: list[dict[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = make_ec_key(self.curve)
        self.other = make_ec_key(self.curve)

    def list_crypto_key_versions(self, request: dict[str, str]) -> list[Any]:
        from google.cloud import kms

        return [
            kms.CryptoKeyVersion(name=f"{request['parent']}/cryptoKeyVersions/{v}", state=s)
            for v, s in self.states.items()
        ]

    def get_crypto_key_version(self, request: dict[str, str]) -> Any:
        from google.cloud import kms

        return kms.CryptoKeyVersion(
            name=request["name"], state=self.states[request["name"].rsplit("/", 1)[1]]
        )

    def get_public_key(self, request: dict[str, str]) -> Any:
        from google.cloud import kms

        if self.fail is not None:
            raise self.fail
        pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        algorithm = self.algorithm or _GCP_ALGS[self.curve]
        return kms.PublicKey(pem=pem.decode(), algorithm=algorithm, name=request["name"])

    def asymmetric_sign(self, request: dict[str, Any]) -> Any:
        from google.cloud import kms

        self.digests.append(request["digest"])
        ((name, digest),) = request["digest"].items()
        signer = self.other if self.wrong_key else self.key
        hash_cls = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}[name]
        return kms.AsymmetricSignResponse(
            signature=signer.sign(digest, ec.ECDSA(Prehashed(hash_cls()))), name=request["name"]
        )


def _gcp(client: StandInKms, uri: str = f"gcpkms://{KEY}") -> Any:
    return _gcpkms.load_signing_key(uri, lambda _p: None, client=client)


@pytest.mark.parametrize("curve", [ec.SECP256R1, ec.SECP384R1])
def test_gcp_signature_verifies_and_only_the_digest_is_sent(
    curve: type[ec.EllipticCurve], tmp_path: Path
) -> None:
    client = StandInKms(curve=curve)
    key = _gcp(client)
    signature = key.sign(b"statement")
    algorithm = hashes.SHA256() if curve is ec.SECP256R1 else hashes.SHA384()
    key.public_key().verify(signature, b"statement", ec.ECDSA(algorithm))
    assert all(b"statement" not in d for digest in client.digests for d in digest.values())


def test_gcp_key_signs_a_model_through_the_signer_interface(tmp_path: Path) -> None:
    client = StandInKms()
    key = _gcp(client)
    write_public_key(tmp_path / "public.pem", key)
    from omsign.backends._key import KeyBundleSigner

    model = make_model(tmp_path / "model")
    omsign.sign(model, signer=KeyBundleSigner(key, None))
    assert omsign.verify(model, key=tmp_path / "public.pem").method == "key"


def test_gcp_newest_enabled_version_is_chosen() -> None:
    client = StandInKms(states={"1": "ENABLED", "3": "DISABLED", "2": "ENABLED", "10": "DESTROYED"})
    assert _gcpkms.pick_version(KEY, client.list_crypto_key_versions({"parent": KEY})).endswith(
        "/cryptoKeyVersions/2"
    )
    with pytest.raises(KeyLoadError, match="no enabled version"):
        _gcp(StandInKms(states={"1": "DISABLED"}))


def test_gcp_disabled_version_named_in_the_uri_is_refused() -> None:
    with pytest.raises(KeyLoadError, match="DISABLED, not ENABLED"):
        _gcp(StandInKms(states={"4": "DISABLED"}), f"gcpkms://{KEY}/cryptoKeyVersions/4")


@pytest.mark.parametrize(
    "algorithm", ["EC_SIGN_SECP256K1_SHA256", "RSA_SIGN_PSS_2048_SHA256", "EC_SIGN_ED25519"]
)
def test_gcp_algorithms_omsign_cannot_use_are_refused(algorithm: str) -> None:
    with pytest.raises(KeyLoadError, match=algorithm):
        _gcp(StandInKms(algorithm=algorithm))


def test_gcp_a_signature_by_another_key_is_caught_at_signing() -> None:
    with pytest.raises(KeyLoadError, match="does not verify"):
        _gcp(StandInKms(wrong_key=True)).sign(b"statement")


def test_gcp_service_errors_are_one_line() -> None:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import DefaultCredentialsError

    cases = [
        (gexc.PermissionDenied("no"), KeyLoadError, "permission denied"),
        (gexc.NotFound("no"), KeyLoadError, "no such key"),
        (gexc.ResourceExhausted("slow down"), KeyLoadError, "throttled"),
        (gexc.ServiceUnavailable("down"), BackendUnavailableError, "unreachable"),
        (DefaultCredentialsError("none"), KeyLoadError, "GOOGLE_APPLICATION_CREDENTIALS"),
    ]
    for exc, kind, words in cases:
        with pytest.raises(kind, match=words) as info:
            _gcp(StandInKms(fail=exc))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("uri", "version"),
    [(f"gcpkms://{KEY}", None), (f"gcpkms://{KEY}/cryptoKeyVersions/7", "7")],
)
def test_gcp_uri_forms(uri: str, version: str | None) -> None:
    assert _gcpkms.parse_gcpkms_uri(uri) == (KEY, version)


@pytest.mark.parametrize(
    "uri",
    ["gcpkms://", "gcpkms://projects/p", f"gcpkms://{KEY}/cryptoKeyVersions/x", f"gcpkms://{KEY}/"],
)
def test_gcp_malformed_uris_are_usage_errors(uri: str) -> None:
    with pytest.raises(UsageError, match="gcpkms://projects"):
        _gcpkms.parse_gcpkms_uri(uri)


# --- Azure Key Vault ---------------------------------------------------------------

_AZ_CURVES = {ec.SECP256R1: "P-256", ec.SECP384R1: "P-384", ec.SECP521R1: "P-521"}


@dataclass
class StandInVault:
    """Answers like KeyClient and CryptographyClient, with the SDK's types and a local key."""

    curve: type[ec.EllipticCurve] = ec.SECP256R1
    kty: str = "EC"
    operations: tuple[str, ...] = ("sign", "verify")
    enabled: bool = True
    fail: Exception | None = None
    calls: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = make_ec_key(self.curve)

    def key_client(self, vault: str, credential: object) -> StandInVault:
        self.vault = vault
        return self

    def get_key(self, name: str, version: str | None) -> Any:
        from azure.keyvault.keys import KeyVaultKey

        if self.fail is not None:
            raise self.fail
        numbers = self.key.public_key().public_numbers()
        size = (self.key.curve.key_size + 7) // 8
        jwk = {
            "kid": f"{self.vault}/keys/{name}/{version or 'current'}",
            "kty": self.kty,
            "crv": _AZ_CURVES[self.curve],
            "x": numbers.x.to_bytes(size, "big"),
            "y": numbers.y.to_bytes(size, "big"),
            "key_ops": list(self.operations),
        }
        from azure.keyvault.keys._generated.models import KeyAttributes

        attributes = KeyAttributes(enabled=self.enabled)
        return KeyVaultKey(key_id=jwk["kid"], jwk=jwk, attributes=attributes)

    def crypto_client(self, key: object, credential: object) -> StandInVault:
        return self

    def sign(self, algorithm: str, digest: bytes) -> Any:
        from azure.keyvault.keys.crypto import SignResult

        self.calls.append((str(algorithm), digest))
        hash_cls = {"ES256": hashes.SHA256, "ES384": hashes.SHA384, "ES512": hashes.SHA512}
        der = self.key.sign(digest, ec.ECDSA(Prehashed(hash_cls[str(algorithm)]())))
        r, s = decode_dss_signature(der)
        size = (self.key.curve.key_size + 7) // 8
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return SignResult(key_id=None, algorithm=algorithm, signature=raw)

    def factories(self) -> tuple[Any, Any, Any]:
        return self.key_client, self.crypto_client, object()


VAULT_URI = "azurekms://omsign-test.vault.azure.net/model-key"


@pytest.mark.parametrize(
    ("curve", "alg"), [(ec.SECP256R1, "ES256"), (ec.SECP384R1, "ES384"), (ec.SECP521R1, "ES512")]
)
def test_azure_signature_converted_from_jose_verifies(
    curve: type[ec.EllipticCurve], alg: str
) -> None:
    vault = StandInVault(curve=curve)
    key = _azurekms.load_signing_key(VAULT_URI, lambda _p: None, factories=vault.factories())
    signature = key.sign(b"statement")
    hash_for = {"ES256": hashes.SHA256, "ES384": hashes.SHA384, "ES512": hashes.SHA512}
    key.public_key().verify(signature, b"statement", ec.ECDSA(hash_for[alg]()))
    assert vault.calls[0][0] == alg
    assert b"statement" not in vault.calls[0][1]
    assert vault.vault == "https://omsign-test.vault.azure.net"


@pytest.mark.parametrize(
    ("vault", "words"),
    [
        (StandInVault(kty="RSA"), "RSA"),
        (StandInVault(operations=("verify",)), "sign operation"),
        (StandInVault(enabled=False), "disabled"),
    ],
)
def test_azure_keys_that_cannot_sign_are_refused(vault: StandInVault, words: str) -> None:
    with pytest.raises(KeyLoadError, match=words):
        _azurekms.load_signing_key(VAULT_URI, lambda _p: None, factories=vault.factories())


def test_azure_service_errors_are_one_line() -> None:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    forbidden = HttpResponseError(message="Forbidden")
    forbidden.status_code = 403
    throttled = HttpResponseError(message="Too many")
    throttled.status_code = 429
    cases = [
        (ClientAuthenticationError("no credential"), KeyLoadError, "az login"),
        (forbidden, KeyLoadError, "access denied"),
        (throttled, KeyLoadError, "throttled"),
        (ServiceRequestError("dns"), BackendUnavailableError, "cannot reach"),
    ]
    for exc, kind, words in cases:
        vault = StandInVault(fail=exc)
        with pytest.raises(kind, match=words) as info:
            _azurekms.load_signing_key(VAULT_URI, lambda _p: None, factories=vault.factories())
        assert "\n" not in str(info.value)


def test_azure_signature_of_the_wrong_length_is_refused() -> None:
    key = make_ec_key().public_key()
    with pytest.raises(KeyLoadError, match="64 bytes"):
        _azurekms.der_from_raw(b"\x01" * 63, key, VAULT_URI)


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        (VAULT_URI, ("https://omsign-test.vault.azure.net", "model-key", None)),
        (VAULT_URI + "/0123abcd", ("https://omsign-test.vault.azure.net", "model-key", "0123abcd")),
        (
            "azurekms://hsm-1.managedhsm.azure.net/k",
            ("https://hsm-1.managedhsm.azure.net", "k", None),
        ),
    ],
)
def test_azure_uri_forms(uri: str, parts: tuple[str, str, str | None]) -> None:
    assert _azurekms.parse_azurekms_uri(uri) == parts


@pytest.mark.parametrize(
    "uri",
    [
        "azurekms://",
        "azurekms://vault.azure.net",
        "azurekms://x.example.com/k",
        "azurekms://v1.vault.azure.net/k/v/extra",
    ],
)
def test_azure_malformed_uris_are_usage_errors(uri: str) -> None:
    with pytest.raises(UsageError, match="azurekms://"):
        _azurekms.parse_azurekms_uri(uri)


def test_third_party_scheme_registers_through_an_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed distribution (a dist-info on sys.path) declares the scheme "toykms".
    pem = tmp_path / "toy.pem"
    key = make_ec_key()
    write_private_key(pem, key)
    site = tmp_path / "site"
    (site / "toykms-1.0.dist-info").mkdir(parents=True)
    (site / "toykms-1.0.dist-info" / "METADATA").write_text("Name: toykms\nVersion: 1.0\n")
    (site / "toykms-1.0.dist-info" / "entry_points.txt").write_text(
        "[omsign.key_schemes]\ntoykms = toykms_module:load_signing_key\n"
    )
    (site / "toykms_module.py").write_text(
        "from omsign.backends._pem import load_pem_signing_key\n"
        "def load_signing_key(uri, password_source):\n"
        f"    return load_pem_signing_key({str(pem)!r}, password_source)\n"
    )
    monkeypatch.syspath_prepend(str(site))
    write_public_key(tmp_path / "public.pem", key)
    model = make_model(tmp_path / "model")
    omsign.sign(model, key="toykms://anything")
    assert omsign.verify(model, key=tmp_path / "public.pem").method == "key"
    with pytest.raises(UsageError, match="unknown key URI scheme 'nokms'"):
        omsign.sign(model, key="nokms://anything")
