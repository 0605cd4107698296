"""Replays the kept fuzz cases in ``corpus/``: each file is named after what it covers.

A case is a JSON file with ``covers`` (what it is about), ``message`` (a part of the
expected error) and a ``kind``:

* ``raw``: the bundle is ``text``, or ``prefix`` + ``repeat`` * ``times``;
* ``edit``: the valid bundle with ``set`` (``[dotted.path, value]`` pairs) applied;
* ``text``: the valid bundle's text with ``old`` replaced by ``new`` once;
* ``signed``: ``statement`` (JSON), ``text`` or ``text_utf16`` signed by the trusted key.

Every case must be rejected with one of omsign's own errors, within ``seconds``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from fuzz.harness import Target, make_target
from omsign.bundle import build_bundle, parse_bundle
from omsign.errors import Error, VerificationError
from omsign.policy import verify_signature
from omsign.statement import parse_statement

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.json"))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The signed model that edits start from."""
    return make_target(tmp_path_factory.mktemp("fuzz-corpus"))


def _set(obj: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    obj[int(last) if isinstance(obj, list) else last] = value


def _bundle(case: dict[str, Any], target: Target) -> bytes:
    kind = case["kind"]
    if kind == "raw":
        text = case.get("text") or case["prefix"] + case["repeat"] * case["times"]
        return str(text).encode()
    if kind == "edit":
        bundle = json.loads(target.text)
        for path, value in case["set"]:
            _set(bundle, path, value)
        return json.dumps(bundle).encode()
    if kind == "text":
        old, new = case["old"].encode(), case["new"].encode()
        assert old in target.text, f"{old!r} is not in the valid bundle"
        return target.text.replace(old, new, 1)
    assert kind == "signed", kind
    if "statement" in case:
        payload = json.dumps(case["statement"]).encode()
    elif "text_utf16" in case:
        payload = case["text_utf16"].encode("utf-16")
    else:
        payload = case["text"].encode()
    return json.dumps(build_bundle(payload, *target.signer.sign_statement(payload))).encode()


def _verify(data: bytes, target: Target) -> None:
    bundle = parse_bundle(data, "corpus.sig")
    proven = verify_signature(bundle, target.policy)
    parse_statement(proven.payload, legacy_encoding=proven.legacy_encoding)


def test_the_corpus_is_not_empty() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_case_is_rejected(path: Path, target: Target) -> None:
    case = json.loads(path.read_text())
    assert case["covers"]
    data = _bundle(case, target)
    start = time.monotonic()
    with pytest.raises(Error) as caught:
        _verify(data, target)
    assert time.monotonic() - start < case.get("seconds", 5)
    assert isinstance(caught.value, VerificationError)
    assert case["message"] in str(caught.value)
    assert len(str(caught.value)) < 300 and "\n" not in str(caught.value)
