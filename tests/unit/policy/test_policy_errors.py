"""Every malformed policy file is a usage error naming the file and line; globs as documented."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from helpers.pki import make_ca, make_ec_key, write_certs, write_public_key
from omsign.errors import Error, UsageError
from omsign.policy import load_policy
from omsign.policy._globs import canonical_uri, compile_glob
from omsign.policy._history import claimed_time, record_pins


@pytest.fixture
def files(tmp_path: Path) -> Path:
    write_public_key(tmp_path / "k.pub", make_ec_key())
    write_certs(tmp_path / "ca.pem", [make_ca("anchor").cert])
    return tmp_path


RULE = '[[rules]]\nmatch = "/**"\nsigners = ["a"]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version = 1\nsigners = "x"\n', "signers must be a table"),
        ('version = 1\nrules = "x"\n', r"rules must be an array of tables"),
        ("version = 1\n[signers]\na = 1\n", "signer 'a' must be a table"),
        ('version = 1\n[signers.a]\nkey = "k.pub"\nca = { chain = "ca.pem" }\n', "exactly one"),
        ("version = 1\n[signers.a]\nca = 1\n", "ca must be a table"),
        ('version = 1\n[signers.a]\nca = { tsa = "ca.pem" }\n', "ca needs a chain"),
        ('version = 1\n[signers.a]\nca = { chain = "ca.pem", san = 1 }\n', "san must be a string"),
        ("version = 1\n[signers.a]\nkey = 7\n", "key must be a path or a list of paths"),
        ('version = 1\n[signers.a]\nkey = "nope.pub"\n', "no such file"),
        (
            'version = 1\n[signers.a]\nsigstore = { identity_regexp = 7, issuer = "i" }\n',
            "identity_regexp must be a string",
        ),
        (
            'version = 1\n[signers.a]\nsigstore = { identity = "x", issuer = "i", '
            'trust_config = "missing.json" }\n',
            "trust_config: .* no such file",
        ),
        ('version = 1\n[signers.a]\nkey = "k.pub"\n[[rules]]\nmatch = 3\n', "match must be"),
        ('version = 1\n[signers.a]\nkey = "k.pub"\n[[rules]]\nmatch = "/x"\n', "signers must"),
        ('version = 1\n[signers.a]\nkey = "k.pub"\n' + RULE + "pin = 1\n", "pin must be"),
        ("version = 1\nrules = [1]\n", "rule 1 must be a table"),
        ('version = 1\n[signers.a]\nkey = "k.pub"\n' + RULE + 'match = "/[x"\n', ""),
    ],
)
def test_malformed_policy_files(files: Path, text: str, message: str) -> None:
    path = files / "policy.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=rf"policy.toml(:\d+)?: .*{message}"):
        load_policy(path)


def test_an_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the trust policy"):
        load_policy(tmp_path / "missing.toml")


def test_a_bad_glob_names_its_line(files: Path) -> None:
    path = files / "policy.toml"
    path.write_text(
        'version = 1\n[signers.a]\nkey = "k.pub"\n[[rules]]\nmatch = "/m/[ab"\nsigners = ["a"]\n'
    )
    with pytest.raises(UsageError, match=r"policy.toml:5: rule 1: bad glob '/m/\[ab': unclosed"):
        load_policy(path)


@pytest.mark.parametrize(
    ("glob", "location", "matches"),
    [
        ("/m/?.bin", "/m/a.bin", True),
        ("/m/?.bin", "/m/ab.bin", False),
        ("/m/[ab]", "/m/a", True),
        ("/m/[!ab]", "/m/a", False),
        ("/m/[!ab]", "/m/c", True),
        ("/m/*", "/m/x/y", False),
        ("/m/**", "/m/x/y", True),
        ("/m/**", "/m", True),
    ],
)
def test_globs(glob: str, location: str, matches: bool) -> None:
    assert bool(compile_glob(glob).fullmatch(location)) is matches


def test_canonical_uri() -> None:
    assert canonical_uri("S3://Bucket/Prefix/") == "s3://bucket/Prefix"
    assert canonical_uri("/not/a/uri/") == "/not/a/uri/"


def test_mode_off_rule_builds_no_verifier(files: Path) -> None:
    path = files / "policy.toml"
    path.write_text('version = 1\n[[rules]]\nmatch = "/**"\nmode = "off"\n')
    decision = load_policy(path).decide("/x")
    assert decision.mode == "off"
    with pytest.raises(UsageError, match="checks nothing here"):
        decision.verifier()


def test_history_that_is_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "h.json").mkdir()
    with pytest.raises(Error, match="not a regular file"):
        record_pins(tmp_path / "h.json", "/m", [], "d")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(Error, match="not a regular file"):
        record_pins(tmp_path / "fifo.json", "/m", [], "d")


def test_history_in_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(Error, match="cannot lock the signer history"):
        record_pins(blocker / "sub" / "h.json", "/m", [], "d")


def test_a_history_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "h.json").write_text(
        json.dumps({"format": "omsign-history", "version": 1, "models": []})
    )
    with pytest.raises(Error, match="models is not an object"):
        record_pins(tmp_path / "h.json", "/m", [], "d")


class _Bundle:
    def __init__(self, tlog: tuple[dict[str, object], ...], certs: tuple[bytes, ...]) -> None:
        self.timestamps: tuple[bytes, ...] = (b"not a token",)
        self.tlog_entries = tlog
        self.certificates = certs


def test_claimed_time_sources() -> None:
    assert claimed_time(_Bundle(({"integratedTime": "1700000000"},), ())) == dt.datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc
    )
    assert claimed_time(_Bundle(({"integratedTime": "soon"},), (b"junk",))) is None
    assert claimed_time(_Bundle((), ())) is None
