"""Policy file signers: keys held in a token or a key service, CA signers with constraints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import omsign
from helpers.fixtures import make_model
from helpers.pki import issue_leaf, make_ca, write_certs
from omsign.errors import IdentityError, SignatureError, UsageError

if TYPE_CHECKING:
    from services.softhsm import SoftHsm
    from services.tsa import RunningTSA


def policy(tmp_path: Path, signers: str, names: str = '"a"') -> omsign.PolicyFile:
    path = tmp_path / "policy.toml"
    path.write_text(f'version = 1\n{signers}\n[[rules]]\nmatch = "/**"\nsigners = [{names}]\n')
    return omsign.load_policy(path)


def test_pkcs11_key_signer_reads_the_public_key_from_the_token(
    softhsm_token: SoftHsm, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "model")
    omsign.sign(model, key=softhsm_token.uri("object=p256"))
    trusted = policy(tmp_path, f'[signers.a]\nkey = "{softhsm_token.uri("object=p256")}"')
    assert omsign.verify(model, policy=trusted).signer.startswith("key sha256:")
    other = policy(tmp_path, f'[signers.a]\nkey = "{softhsm_token.uri("object=p384")}"')
    with pytest.raises(SignatureError, match="different key"):
        omsign.verify(model, policy=other)
    # the PIN of a URI never shows in what the policy describes
    shown = policy(
        tmp_path, '[signers.a]\nkey = "pkcs11:token=x;object=y?pin-value=1234&module-path=/m"'
    )
    assert "1234" not in shown.summary()


def test_kms_key_signer_reads_the_public_key_from_the_service(
    make_kms_key: Callable[..., str], tmp_path: Path
) -> None:
    model = make_model(tmp_path / "model")
    signer, stranger = (f"awskms:///{make_kms_key('ECC_NIST_P256')}" for _ in range(2))
    omsign.sign(model, key=signer)
    both = policy(tmp_path, f'[signers.a]\nkey = "{signer}"')
    assert omsign.verify(model, policy=both).method == "key"
    with pytest.raises(SignatureError):
        omsign.verify(model, policy=policy(tmp_path, f'[signers.a]\nkey = "{stranger}"'))


def test_an_unknown_key_uri_scheme_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"policy.toml:3: key: 'vault' is no key URI scheme"):
        policy(tmp_path, '[signers.a]\nkey = "vault://keys/release"')


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ca-signers")
    ca = make_ca("acme root")
    release = issue_leaf(ca, name="release", emails=["release@acme.example"]).write(d, "release")
    intern = issue_leaf(ca, name="intern", emails=["intern@acme.example"]).write(d, "intern")
    model = make_model(d / "model")
    omsign.sign(model, key=release.key_path, certificate=release.cert_path)
    other = make_model(d / "other")
    omsign.sign(other, key=intern.key_path, certificate=intern.cert_path)
    return {"ca": write_certs(d / "ca.pem", [ca.cert]), "model": model, "other": other}


@pytest.mark.parametrize(
    ("constraint", "release_ok", "intern_ok"),
    [
        ("", True, True),
        ('subject = "CN=release,O=omsign tests"', True, False),
        ('subject_regexp = "CN=(release|build),O=omsign tests"', True, False),
        ('san = "release@acme.example"', True, False),
        ('san_regexp = ".*@acme\\\\.example"', True, True),
        ('san_regexp = "release@acme"', False, False),  # a pattern matches in full
        ('subject = "CN=release"', False, False),
    ],
)
def test_ca_signer_subject_and_alternative_name_constraints(
    pki: dict[str, Path], tmp_path: Path, constraint: str, release_ok: bool, intern_ok: bool
) -> None:
    extra = f", {constraint}" if constraint else ""
    trusted = policy(tmp_path, f'[signers.a]\nca = {{ chain = "{pki["ca"]}"{extra} }}')
    for model, ok in ((pki["model"], release_ok), (pki["other"], intern_ok)):
        if ok:
            assert omsign.verify(model, policy=trusted).method == "certificate"
        else:
            with pytest.raises(IdentityError, match="is not the required signer"):
                omsign.verify(model, policy=trusted)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('ca = { chain = "ca.pem", san = "a", san_regexp = "b" }', "give san or san_regexp"),
        ('ca = { chain = "ca.pem", subject_regexp = "(" }', "invalid regular expression"),
        ('ca = { chain = "ca.pem", subjct = "x" }', "unknown key 'subjct'"),
        ('sigstore = { identity = "a", issuer = "b" }\ntsa = "ca.pem"', "trust_config"),
    ],
)
def test_ca_signer_errors_name_the_line(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "ca.pem").write_bytes(Path(str(make_ca_pem(tmp_path))).read_bytes())
    with pytest.raises(UsageError, match=rf"policy.toml:\d+: .*{message}"):
        policy(tmp_path, f"[signers.a]\n{table}")


def make_ca_pem(tmp_path: Path) -> Path:
    return write_certs(tmp_path / "anchor.pem", [make_ca("anchor").cert])


def test_key_signer_tsa_proves_the_signing_time(tsa: RunningTSA, tmp_path: Path) -> None:
    from helpers.pki import make_ec_key, write_private_key, write_public_key

    key = make_ec_key()
    private = write_private_key(tmp_path / "k.pem", key)
    public = write_public_key(tmp_path / "k.pub", key)
    model = make_model(tmp_path / "model")
    omsign.sign(model, key=private, tsa_url=tsa.url)
    with_tsa = policy(tmp_path, f'[signers.a]\nkey = "{public}"\ntsa = "{tsa.root_path}"')
    assert omsign.verify(model, policy=with_tsa).signed_at is not None
    without = policy(tmp_path, f'[signers.a]\nkey = "{public}"')
    assert omsign.verify(model, policy=without).signed_at is None


@pytest.mark.parametrize(
    "uri",
    [
        "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
        "azurekms://vault.vault.azure.net/release",
    ],
)
def test_cloud_key_uris_are_key_signers_not_files(tmp_path: Path, uri: str) -> None:
    # Their services cannot run here: the URI is kept as is for the service to be asked
    # when the policy is used, never looked up as a file.
    signer = policy(tmp_path, f'[signers.a]\nkey = "{uri}"').signers["a"]
    assert signer.method == "key"
    assert signer.options["key_uris"] == [uri] and signer.options["key"] == []
