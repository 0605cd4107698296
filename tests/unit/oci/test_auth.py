"""Registry credentials: WWW-Authenticate challenges and the Docker configuration.

The credential helper is a real program (a shell script) put on ``PATH``, asked the way
Docker asks it.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from omsign.oci import Credentials, RegistryError, find_credentials
from omsign.oci._auth import parse_challenge


def test_parses_a_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:org/model:pull,push"'
    )
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:org/model:pull,push",
    }


def test_parses_basic_quoted_escapes_and_bare_values() -> None:
    challenge = parse_challenge('Basic realm="a \\"b\\" c", charset=UTF-8')
    assert challenge is not None
    assert challenge.scheme == "basic"
    assert challenge.params == {"realm": 'a "b" c', "charset": "UTF-8"}


@pytest.mark.parametrize("header", ["", "   ", "=bad", '"quoted" realm=x'])
def test_malformed_challenges_give_none(header: str) -> None:
    assert parse_challenge(header) is None


def _config(tmp_path: Path, data: object, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "docker"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(data))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder / "config.json"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_reads_auths_in_their_several_key_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(
        tmp_path,
        {
            "auths": {
                "https://registry.example:5000/v1/": {"auth": _b64("alice:s3:cr:et")},
                "https://index.docker.io/v1/": {"auth": _b64("hub:pw")},
                "other.example": {"identitytoken": "refresh-me"},
            }
        },
        monkeypatch,
    )
    assert find_credentials("registry.example:5000") == Credentials("alice", "s3:cr:et")
    assert find_credentials("docker.io") == Credentials("hub", "pw")
    assert find_credentials("registry-1.docker.io") == Credentials("hub", "pw")
    assert find_credentials("other.example") == Credentials("<token>", "refresh-me")
    assert find_credentials("registry.example") is None  # another port is another host


def test_no_config_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "absent"))
    assert find_credentials("registry.example") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"auths": {"r.example": {"auth": "!!!"}}}), "not base64"),
        (json.dumps({"auths": {"r.example": {"auth": _b64("nocolon")}}}), "no ':'"),
    ],
)
def test_malformed_configs_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, problem: str
) -> None:
    (tmp_path / "config.json").write_text(content)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(RegistryError, match=problem) as info:
        find_credentials("r.example")
    assert str(tmp_path / "config.json") in str(info.value)


def test_secret_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(Credentials("bob", "hunter2"))


def _helper(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_credential_helpers_are_asked_for_their_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    log = tmp_path / "asked"
    _helper(
        bin_dir,
        "fake",
        f'[ "$1" = get ] || exit 3\nread host\necho "$host" >> {log}\n'
        'case "$host" in\n'
        '  registry.example) echo \'{"Username":"u","Secret":"p"}\';;\n'
        '  *) echo "credentials not found in native keychain"; exit 1;;\n'
        "esac\n",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _config(
        tmp_path,
        {
            "credHelpers": {"registry.example": "fake"},
            "credsStore": "fake",
            "auths": {"inline.example": {"auth": _b64("i:j")}},
        },
        monkeypatch,
    )
    assert find_credentials("registry.example") == Credentials("u", "p")
    assert find_credentials("inline.example") == Credentials("i", "j")  # auths before the store
    assert find_credentials("elsewhere.example") is None  # the store has none: anonymous
    assert log.read_text().split() == ["registry.example", "elsewhere.example"]


def test_missing_helper_means_anonymous_and_bad_answers_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "liar", "echo 'not json'\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _config(tmp_path, {"credHelpers": {"a.example": "absent", "b.example": "liar"}}, monkeypatch)
    assert find_credentials("a.example") is None
    with pytest.raises(RegistryError, match="docker-credential-liar"):
        find_credentials("b.example")


def test_helper_names_cannot_be_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, {"credsStore": "../../bin/sh"}, monkeypatch)
    with pytest.raises(RegistryError, match="invalid credential helper"):
        find_credentials("a.example")
