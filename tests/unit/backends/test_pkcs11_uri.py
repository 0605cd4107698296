"""PKCS#11 URI parsing (RFC 7512), module search and PIN sources; no token needed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from omsign.backends.pkcs11 import (
    MODULE_ENV,
    PIN_ENV,
    Pkcs11Uri,
    find_module,
    module_search_dirs,
    parse_pkcs11_uri,
    resolve_pin,
)
from omsign.errors import KeyLoadError, UsageError


def no_prompt(prompt: str) -> bytes | None:
    return None


# --- parsing -----------------------------------------------------------------------------


def test_parses_every_path_and_query_attribute() -> None:
    uri = parse_pkcs11_uri(
        "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc123;model=SoftHSM%20v2;"
        "library-manufacturer=Acme;library-description=lib;library-version=2.6;slot-id=42;"
        "slot-description=slot;slot-manufacturer=Acme;id=%01%FF;object=model%3Bkey;type=private"
        "?module-path=/usr/lib/x.so&pin-source=file:/run/pin"
    )
    assert uri == Pkcs11Uri(
        token="My Token",
        manufacturer="SoftHSM project",
        serial="abc123",
        model="SoftHSM v2",
        library_manufacturer="Acme",
        library_description="lib",
        library_version="2.6",
        slot_id=42,
        slot_description="slot",
        slot_manufacturer="Acme",
        id=b"\x01\xff",
        object="model;key",
        type="private",
        module_path="/usr/lib/x.so",
        pin_source="file:/run/pin",
    )


def test_parses_module_name_and_pin_value() -> None:
    uri = parse_pkcs11_uri("pkcs11:object=k?module-name=softhsm2&pin-value=1234")
    assert (uri.object, uri.module_name, uri.pin_value) == ("k", "softhsm2", "1234")


def test_empty_uri_matches_anything() -> None:
    assert parse_pkcs11_uri("pkcs11:") == Pkcs11Uri()
    assert parse_pkcs11_uri("PKCS11:token=t").token == "t"


def test_percent_decoding_of_utf8_labels_and_raw_ids() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=cl%C3%A9;id=%00%0a%80")
    assert uri.token == "clé"
    assert uri.id == b"\x00\n\x80"


def test_describes_selection_for_messages() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=t;serial=s;slot-id=3;id=%0a;object=k")
    assert uri.describe_token() == "token='t', serial='s', slot-id=3"
    assert uri.describe_key() == "object='k', id=0a"
    assert Pkcs11Uri().describe_token() == "any token"
    assert Pkcs11Uri().describe_key() == "any key"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("pkcs12:token=t", "not a PKCS#11 URI"),
        ("token=t", "not a PKCS#11 URI"),
        ("pkcs11:token", "expected name=value"),
        ("pkcs11:=x", "expected name=value"),
        ("pkcs11:token=a;token=b", "token given twice"),
        ("pkcs11:?module-name=a&module-name=b", "module-name given twice"),
        ("pkcs11:token=a%2", "bad character or escape in token="),
        ("pkcs11:token=a%zz", "bad character or escape in token="),
        ("pkcs11:token=a b", "bad character or escape in token="),
        ("pkcs11:token=a#frag", "fragments are not allowed"),
        ("pkcs11:colour=red", "unknown PKCS#11 URI path attribute 'colour'"),
        ("pkcs11:?module=x", "unknown PKCS#11 URI query attribute 'module'"),
        ("pkcs11:module-path=/x.so", "unknown PKCS#11 URI path attribute 'module-path'"),
        ("pkcs11:?token=t", "unknown PKCS#11 URI query attribute 'token'"),
        ("pkcs11:slot-id=abc", "slot-id must be a decimal number"),
        ("pkcs11:slot-id=-1", "slot-id must be a decimal number"),
        ("pkcs11:id=", "id= is empty"),
        ("pkcs11:type=secret", "type must be one of"),
        ("pkcs11:token=%FF", "token is not UTF-8 text"),
        ("pkcs11:?pin-source=/p&pin-value=1", "both pin-source and pin-value"),
        ("pkcs11:?module-path=/a.so&module-name=a", "both module-path and module-name"),
        ("pkcs11:?module-name=/usr/lib/a.so", "module-name must be a bare library name"),
    ],
)
def test_rejects_malformed_uris(uri: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_pkcs11_uri(uri)
    assert "\n" not in str(caught.value)


# --- module search -----------------------------------------------------------------------


@pytest.fixture
def libdirs(tmp_path: Path) -> list[Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "libexample-pkcs11.so").write_bytes(b"")
    (second / "opensc-pkcs11.so").write_bytes(b"")
    (first / "libversioned.so.2").write_bytes(b"")
    return [first, second]


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("example-pkcs11", "second/libexample-pkcs11.so"),
        ("libexample-pkcs11", "second/libexample-pkcs11.so"),
        ("libexample-pkcs11.so", "second/libexample-pkcs11.so"),
        ("example-pkcs11.so", "second/libexample-pkcs11.so"),
        ("opensc-pkcs11", "second/opensc-pkcs11.so"),
        ("libversioned.so.2", "first/libversioned.so.2"),
    ],
)
def test_module_name_found_with_or_without_prefix_and_suffix(
    libdirs: list[Path], name: str, found: str
) -> None:
    uri = parse_pkcs11_uri(f"pkcs11:?module-name={name}")
    path = find_module(uri, search_dirs=libdirs, environ={})
    assert path == str((libdirs[0].parent / found).resolve())


def test_module_name_first_directory_wins(libdirs: list[Path]) -> None:
    (libdirs[0] / "libexample-pkcs11.so").write_bytes(b"")
    uri = parse_pkcs11_uri("pkcs11:?module-name=example-pkcs11")
    assert find_module(uri, search_dirs=libdirs, environ={}).startswith(str(libdirs[0]))


def test_module_name_not_found(libdirs: list[Path]) -> None:
    uri = parse_pkcs11_uri("pkcs11:?module-name=nonesuch")
    with pytest.raises(KeyLoadError, match=r"PKCS#11 module 'nonesuch' not found in .*first"):
        find_module(uri, search_dirs=libdirs, environ={})


def test_module_name_softhsm2_found_in_the_system_directories() -> None:
    if not Path("/usr/lib/softhsm/libsofthsm2.so").exists():
        pytest.skip("softhsm2 is not installed")  # the token tests fail loudly instead
    uri = parse_pkcs11_uri("pkcs11:?module-name=softhsm2")
    assert Path(find_module(uri, environ={})).name == "libsofthsm2.so"


def test_search_dirs_cover_debian_fedora_and_macos() -> None:
    dirs = {str(d) for d in module_search_dirs()}
    assert {"/usr/lib/softhsm", "/usr/lib/pkcs11", "/usr/lib64/pkcs11", "/usr/lib64"} <= dirs
    assert {"/usr/local/lib", "/opt/homebrew/lib"} <= dirs
    assert any(d.startswith("/usr/lib/") and d.endswith("-linux-gnu/pkcs11") for d in dirs)


def test_module_path_used_as_given(tmp_path: Path) -> None:
    module = tmp_path / "mod.so"
    module.write_bytes(b"")
    uri = parse_pkcs11_uri(f"pkcs11:?module-path={module}")
    assert find_module(uri, environ={MODULE_ENV: "/elsewhere.so"}) == str(module)


def test_module_path_that_does_not_exist(tmp_path: Path) -> None:
    uri = parse_pkcs11_uri(f"pkcs11:?module-path={tmp_path}/missing.so")
    with pytest.raises(KeyLoadError, match=r"PKCS#11 module not found: .*missing\.so"):
        find_module(uri, environ={})


def test_module_from_environment_variable(tmp_path: Path) -> None:
    module = tmp_path / "env.so"
    module.write_bytes(b"")
    assert find_module(Pkcs11Uri(), environ={MODULE_ENV: str(module)}) == str(module)


def test_module_from_environment_variable_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match=f"from {MODULE_ENV}"):
        find_module(Pkcs11Uri(), environ={MODULE_ENV: str(tmp_path / "none.so")})


def test_no_module_anywhere() -> None:
    with pytest.raises(UsageError, match="no PKCS#11 module: add module-path="):
        find_module(Pkcs11Uri(), environ={})


# --- PIN sources -------------------------------------------------------------------------


def test_pin_from_file_drops_one_newline(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_bytes(b"12 34\r\n")
    uri = parse_pkcs11_uri(f"pkcs11:?pin-source={pin}")
    assert resolve_pin(uri, "t", no_prompt) == b"12 34"


def test_pin_from_file_uri(tmp_path: Path) -> None:
    pin = tmp_path / "pin file"
    pin.write_bytes(b"5678\n\n")
    for source in (f"file://{pin}", f"file:{pin}", f"file://localhost{pin}"):
        uri = parse_pkcs11_uri(f"pkcs11:?pin-source={source.replace(' ', '%20')}")
        assert resolve_pin(uri, "t", no_prompt) == b"5678\n"


def test_pin_file_missing(tmp_path: Path) -> None:
    uri = parse_pkcs11_uri(f"pkcs11:?pin-source={tmp_path}/nope")
    with pytest.raises(KeyLoadError, match=r"cannot read the PKCS#11 PIN file .*nope"):
        resolve_pin(uri, "t", no_prompt)


def test_pin_file_on_another_host() -> None:
    uri = parse_pkcs11_uri("pkcs11:?pin-source=file://server/pin")
    with pytest.raises(UsageError, match="pin-source must be a local file"):
        resolve_pin(uri, "t", no_prompt)


def test_pin_source_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin = tmp_path / "pin"
    pin.write_bytes(b"file")
    monkeypatch.setenv(PIN_ENV, "env")
    assert resolve_pin(parse_pkcs11_uri(f"pkcs11:?pin-source={pin}"), "t", no_prompt) == b"file"


def test_pin_value_warns_about_shell_history(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, "env")
    with caplog.at_level(logging.WARNING):
        pin = resolve_pin(parse_pkcs11_uri("pkcs11:?pin-value=9999"), "t", no_prompt)
    assert pin == b"9999"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "shell history" in record.getMessage()
    assert "9999" not in record.getMessage()


def test_other_pin_sources_do_not_warn(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, "env")
    with caplog.at_level(logging.WARNING):
        assert resolve_pin(Pkcs11Uri(), "t", no_prompt) == b"env"
    assert caplog.records == []


def test_pin_from_prompt_names_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    prompts: list[str] = []

    def prompt(text: str) -> bytes:
        prompts.append(text)
        return b"typed"

    assert resolve_pin(Pkcs11Uri(), "my token", prompt) == b"typed"
    assert prompts == ["PIN for token my token: "]


def test_no_pin_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    with pytest.raises(KeyLoadError, match="token 'tok' needs a PIN: add pin-source="):
        resolve_pin(Pkcs11Uri(), "tok", no_prompt)
