"""PKCS#11 signing keys against real SoftHSM2 tokens (see ``services/softhsm.py``)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import load_signing_key as load_any_signing_key
from omsign.backends.pkcs11 import (
    PIN_ENV,
    Pkcs11SigningKey,
    export_public_key_pem,
    load_signing_key,
)
from omsign.backends.pkcs11._session import Token
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

if TYPE_CHECKING:
    from services.softhsm import SoftHsm

pytest_plugins = ["services.softhsm"]

DATA = b"the PAE of a DSSE envelope"


def no_prompt(prompt: str) -> bytes | None:
    return None


def signs_and_verifies(key: Pkcs11SigningKey, hash_type: type[hashes.HashAlgorithm]) -> None:
    signature = key.sign(DATA)
    key.public_key().verify(signature, DATA, ec.ECDSA(hash_type()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, DATA + b"!", ec.ECDSA(hash_type()))


def exported(hsm: SoftHsm, uri: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(export_public_key_pem(uri, no_prompt))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


# --- signing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "curve", "hash_type"),
    [
        ("p256", "secp256r1", hashes.SHA256),
        ("p384", "secp384r1", hashes.SHA384),
        ("p521", "secp521r1", hashes.SHA512),
    ],
)
def test_signs_with_each_curve_and_its_hash(
    softhsm_token: SoftHsm, name: str, curve: str, hash_type: type[hashes.HashAlgorithm]
) -> None:
    uri = softhsm_token.uri(f"object={name}")
    with load_signing_key(uri, no_prompt) as key:
        assert key.public_key().curve.name == curve
        signature = key.sign(DATA)
    public = exported(softhsm_token, uri)
    public.verify(signature, DATA, ec.ECDSA(hash_type()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, DATA + b"!", ec.ECDSA(hash_type()))


def test_p384_signature_is_not_over_sha256(softhsm_token: SoftHsm) -> None:
    with load_signing_key(softhsm_token.uri("object=p384"), no_prompt) as key:
        signature = key.sign(DATA)
        with pytest.raises(InvalidSignature):
            key.public_key().verify(signature, DATA, ec.ECDSA(hashes.SHA256()))


def test_registry_routes_pkcs11_uris_here(softhsm_token: SoftHsm) -> None:
    key = load_any_signing_key(softhsm_token.uri("object=p256"), no_prompt)
    assert isinstance(key, Pkcs11SigningKey)
    signs_and_verifies(key, hashes.SHA256)
    key.close()


def test_two_keys_of_one_token_open_at_once(softhsm_token: SoftHsm) -> None:
    with (
        load_signing_key(softhsm_token.uri("object=p256"), no_prompt) as first,
        load_signing_key(softhsm_token.uri("object=p384"), no_prompt) as second,
    ):
        signs_and_verifies(first, hashes.SHA256)
        signs_and_verifies(second, hashes.SHA384)


# --- choosing the token ------------------------------------------------------------------


def test_selects_token_by_label(softhsm_token: SoftHsm) -> None:
    main = exported(softhsm_token, softhsm_token.uri("object=p256"))
    other = exported(
        softhsm_token, softhsm_token.uri("object=p256", token=softhsm_token.other.label)
    )
    assert main.public_numbers() != other.public_numbers()
    with load_signing_key(
        softhsm_token.uri("object=p256", token=softhsm_token.other.label), no_prompt
    ) as key:
        assert key.public_key().public_numbers() == other.public_numbers()
        signs_and_verifies(key, hashes.SHA256)


def test_selects_token_by_serial(softhsm_token: SoftHsm) -> None:
    expected = exported(
        softhsm_token, softhsm_token.uri("object=p256", token=softhsm_token.other.label)
    )
    uri = softhsm_token.uri(f"serial={softhsm_token.other.serial};object=p256", token=None)
    with load_signing_key(uri, no_prompt) as key:
        assert key.public_key().public_numbers() == expected.public_numbers()


def test_selects_token_by_slot_id(softhsm_token: SoftHsm) -> None:
    expected = exported(softhsm_token, softhsm_token.uri("object=p256"))
    uri = softhsm_token.uri(f"slot-id={softhsm_token.token.slot_id};object=p256", token=None)
    with load_signing_key(uri, no_prompt) as key:
        assert key.public_key().public_numbers() == expected.public_numbers()


def test_module_found_by_name(softhsm_token: SoftHsm) -> None:
    uri = softhsm_token.uri(
        "object=p256", query=f"module-name=softhsm2&pin-value={softhsm_token.user_pin}"
    )
    with load_signing_key(uri, no_prompt) as key:
        signs_and_verifies(key, hashes.SHA256)


def test_token_not_found(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match="no PKCS#11 token matches token='nonesuch'") as err:
        load_signing_key(softhsm_token.uri("object=p256", token="nonesuch"), no_prompt)
    assert "'omsign-test'" in str(err.value)  # lists the tokens that are there
    assert "libsofthsm2.so" in str(err.value)


def test_serial_and_label_must_both_match(softhsm_token: SoftHsm) -> None:
    uri = softhsm_token.uri(f"serial={softhsm_token.other.serial};object=p256")
    with pytest.raises(KeyLoadError, match="no PKCS#11 token matches"):
        load_signing_key(uri, no_prompt)


def test_several_tokens_match(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match=r"2 PKCS#11 tokens match any token .*add token="):
        load_signing_key(softhsm_token.uri("object=p256", token=None), no_prompt)


def test_library_attributes_must_match(softhsm_token: SoftHsm) -> None:
    uri = softhsm_token.uri("library-manufacturer=Acme;object=p256")
    with pytest.raises(KeyLoadError, match="has library-manufacturer 'SoftHSM', not 'Acme'"):
        load_signing_key(uri, no_prompt)


def test_library_version_matches_major_or_major_minor(softhsm_token: SoftHsm) -> None:
    import PyKCS11

    lib = PyKCS11.PyKCS11Lib().load(os.path.realpath(softhsm_token.module))
    major, minor = lib.getInfo().libraryVersion
    lib.unload()
    for version in (f"{major}", f"{major}.{minor}"):
        uri = softhsm_token.uri(f"library-version={version};object=p256")
        with load_signing_key(uri, no_prompt) as key:
            signs_and_verifies(key, hashes.SHA256)
    uri = softhsm_token.uri(f"library-version={major + 1};object=p256")
    with pytest.raises(KeyLoadError, match=f"has library-version '{major}', not '{major + 1}'"):
        load_signing_key(uri, no_prompt)


def test_dropping_a_key_ends_its_session(softhsm_token: SoftHsm) -> None:
    import gc

    import PyKCS11

    module = os.path.realpath(softhsm_token.module)
    key = load_signing_key(softhsm_token.uri("object=p256"), no_prompt)
    loaded = module in PyKCS11.PyKCS11Lib._loaded_libs
    del key
    gc.collect()
    assert loaded
    assert module not in PyKCS11.PyKCS11Lib._loaded_libs
    uri = softhsm_token.uri("object=p256", query=f"module-path={softhsm_token.module}")
    with pytest.raises(KeyLoadError, match="wrong PIN"):  # no login left behind
        load_signing_key(uri, lambda prompt: b"000000")


# --- choosing the key --------------------------------------------------------------------


def test_selects_key_by_id(softhsm_token: SoftHsm) -> None:
    by_object = exported(softhsm_token, softhsm_token.uri("object=p384"))
    with load_signing_key(softhsm_token.uri("id=%02"), no_prompt) as key:
        assert key.public_key().public_numbers() == by_object.public_numbers()
        signs_and_verifies(key, hashes.SHA384)


def test_selects_key_by_id_and_object(softhsm_token: SoftHsm) -> None:
    with load_signing_key(softhsm_token.uri("id=%11;object=dup"), no_prompt) as key:
        signs_and_verifies(key, hashes.SHA256)


def test_key_not_found(softhsm_token: SoftHsm) -> None:
    message = "no private key matches object='missing' on PKCS#11 token 'omsign-test'"
    with pytest.raises(KeyLoadError, match=message):
        load_signing_key(softhsm_token.uri("object=missing"), no_prompt)


def test_id_and_object_must_both_match(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match="no private key matches object='p256', id=02"):
        load_signing_key(softhsm_token.uri("id=%02;object=p256"), no_prompt)


def test_several_keys_match(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match="2 private keys match object='dup'"):
        load_signing_key(softhsm_token.uri("object=dup"), no_prompt)


def test_rsa_key_refused(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match=r"key 'rsa' .* is not an EC key"):
        load_signing_key(softhsm_token.uri("object=rsa"), no_prompt)


def test_key_that_may_not_sign_refused(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match=r"key 'nosign' .* is not allowed to sign"):
        load_signing_key(softhsm_token.uri("object=nosign"), no_prompt)


def test_public_key_read_from_certificate_when_no_public_object(softhsm_token: SoftHsm) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((softhsm_token.directory / "certonly.crt").read_bytes())
    with load_signing_key(softhsm_token.uri("object=certonly"), no_prompt) as key:
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()
        signs_and_verifies(key, hashes.SHA256)


def test_key_that_needs_a_login_per_signature(softhsm_token: SoftHsm) -> None:
    with load_signing_key(softhsm_token.uri("object=always"), no_prompt) as key:
        signs_and_verifies(key, hashes.SHA256)
        signs_and_verifies(key, hashes.SHA256)


def test_login_per_signature_is_what_the_token_demands(softhsm_token: SoftHsm) -> None:
    with load_signing_key(softhsm_token.uri("object=always"), no_prompt) as key:
        without_context_login = dataclasses.replace(key, _context_pin=None)
        with pytest.raises(KeyLoadError, match="CKR_USER_NOT_LOGGED_IN"):
            without_context_login.sign(DATA)


def test_sign_after_close(softhsm_token: SoftHsm) -> None:
    key = load_signing_key(softhsm_token.uri("object=p256"), no_prompt)
    key.close()
    key.close()
    with pytest.raises(KeyLoadError, match="the key on PKCS#11 token 'omsign-test' was closed"):
        key.sign(DATA)


def test_key_without_any_public_half(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match="no public key for key 'nopub'"):
        load_signing_key(softhsm_token.uri("object=nopub"), no_prompt)


def test_type_other_than_private_cannot_sign(softhsm_token: SoftHsm) -> None:
    with pytest.raises(UsageError, match="type=cert cannot sign"):
        load_signing_key(softhsm_token.uri("object=p256;type=cert"), no_prompt)


# --- PIN and login -----------------------------------------------------------------------


def test_wrong_pin(softhsm_token: SoftHsm) -> None:
    uri = softhsm_token.uri("object=p256", query=f"module-path={softhsm_token.module}")
    with pytest.raises(KeyLoadError, match=r"^wrong PIN for PKCS#11 token 'omsign-test'$"):
        load_signing_key(uri, lambda prompt: b"000000")


def test_pin_from_prompt(softhsm_token: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    prompts: list[str] = []

    def prompt(text: str) -> bytes:
        prompts.append(text)
        return softhsm_token.user_pin.encode()

    uri = softhsm_token.uri("object=p256", query=f"module-path={softhsm_token.module}")
    with load_signing_key(uri, prompt) as key:
        signs_and_verifies(key, hashes.SHA256)
    assert prompts == [f"PIN for token {softhsm_token.token.label}: "]


def test_pin_from_environment(softhsm_token: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, softhsm_token.user_pin)
    uri = softhsm_token.uri("object=p256", query=f"module-path={softhsm_token.module}")
    with load_signing_key(uri, no_prompt) as key:
        signs_and_verifies(key, hashes.SHA256)


def test_wrong_pin_from_environment(
    softhsm_token: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, "111111")
    uri = softhsm_token.uri("object=p256", query=f"module-path={softhsm_token.module}")
    with pytest.raises(KeyLoadError, match="wrong PIN"):
        load_signing_key(uri, no_prompt)


def test_no_pin_anywhere(softhsm_token: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    uri = softhsm_token.uri("object=p256", query=f"module-path={softhsm_token.module}")
    with pytest.raises(KeyLoadError, match="token 'omsign-test' needs a PIN"):
        load_signing_key(uri, no_prompt)


def test_pin_value_works_and_warns(
    softhsm_token: SoftHsm, caplog: pytest.LogCaptureFixture
) -> None:
    uri = softhsm_token.uri(
        "object=p256",
        query=f"module-path={softhsm_token.module}&pin-value={softhsm_token.user_pin}",
    )
    with caplog.at_level(logging.WARNING), load_signing_key(uri, no_prompt) as key:
        signs_and_verifies(key, hashes.SHA256)
    assert ["shell history" in r.getMessage() for r in caplog.records] == [True]


def test_locked_pin_message() -> None:
    import PyKCS11

    token = Token(PyKCS11, None, None, "card", "/m.so")
    locked = token.error(PyKCS11.PyKCS11Error(PyKCS11.CKR_PIN_LOCKED), "login")
    assert str(locked) == "the PIN of PKCS#11 token 'card' is locked; unlock it with the SO PIN"
    other = token.error(PyKCS11.PyKCS11Error(PyKCS11.CKR_DEVICE_ERROR), "signing")
    assert str(other) == "signing failed on PKCS#11 token 'card': CKR_DEVICE_ERROR"


# --- module and dependency ---------------------------------------------------------------


def test_module_path_that_does_not_exist(softhsm_token: SoftHsm, tmp_path: Path) -> None:
    uri = f"pkcs11:token={softhsm_token.token.label};object=p256?module-path={tmp_path}/nope.so"
    with pytest.raises(KeyLoadError, match=r"PKCS#11 module not found: .*/nope\.so"):
        load_signing_key(uri, no_prompt)


def test_module_that_is_not_a_library(
    softhsm_token: SoftHsm, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake.so"
    fake.write_bytes(b"not a shared object")
    message = r"cannot load PKCS#11 module .*fake\.so: not a loadable library"
    with pytest.raises(KeyLoadError, match=message):
        load_signing_key(f"pkcs11:object=p256?module-path={fake}", no_prompt)
    assert capfd.readouterr().err == ""  # the loader's own complaint is silenced


def test_module_whose_initialisation_fails(
    softhsm_token: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOFTHSM2_CONF", str(tmp_path / "missing.conf"))
    with pytest.raises(KeyLoadError, match="its C_Initialize failed with CKR_"):
        load_signing_key(softhsm_token.uri("object=p256"), no_prompt)
    monkeypatch.undo()
    with load_signing_key(softhsm_token.uri("object=p256"), no_prompt) as key:
        signs_and_verifies(key, hashes.SHA256)


def test_missing_pykcs11_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PyKCS11", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'omsign\[pkcs11\]'"):
        load_signing_key("pkcs11:object=k?module-name=softhsm2", no_prompt)


# --- public key export -------------------------------------------------------------------


def test_export_needs_no_pin_when_the_public_object_is_there(softhsm_token: SoftHsm) -> None:
    uri = softhsm_token.uri("object=p521", query=f"module-path={softhsm_token.module}")
    pem = export_public_key_pem(uri, no_prompt)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    with load_signing_key(softhsm_token.uri("object=p521"), no_prompt) as key:
        signature = key.sign(DATA)
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, DATA, ec.ECDSA(hashes.SHA512()))


def test_export_with_type_public(softhsm_token: SoftHsm) -> None:
    plain = export_public_key_pem(softhsm_token.uri("object=p256"), no_prompt)
    assert export_public_key_pem(softhsm_token.uri("object=p256;type=public"), no_prompt) == plain


def test_export_logs_in_when_only_a_certificate_holds_the_key(softhsm_token: SoftHsm) -> None:
    uri = softhsm_token.uri("object=certonly", query=f"module-path={softhsm_token.module}")
    with pytest.raises(KeyLoadError, match="needs a PIN"):
        export_public_key_pem(uri, no_prompt)
    assert export_public_key_pem(uri, lambda prompt: softhsm_token.user_pin.encode()).startswith(
        b"-----BEGIN"
    )


def test_export_of_missing_key(softhsm_token: SoftHsm) -> None:
    with pytest.raises(KeyLoadError, match="no private key matches object='missing'"):
        export_public_key_pem(softhsm_token.uri("object=missing"), no_prompt)


def test_export_refuses_type_data(softhsm_token: SoftHsm) -> None:
    with pytest.raises(UsageError, match="type=data names no key"):
        export_public_key_pem(softhsm_token.uri("object=p256;type=data"), no_prompt)
