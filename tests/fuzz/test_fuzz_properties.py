"""Property tests with hypothesis: generated bundles, statements, model trees, byte edits.

The examples per test are ``harness.EXAMPLES`` (more with ``OMSIGN_SLOW=1``); the
regular run is derandomised so that it is reproducible.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import omsign
from fuzz.harness import EXAMPLES, SLOW, Target, independent_problem, make_target
from omsign.bundle import parse_bundle
from omsign.errors import Error, IntegrityError
from omsign.statement import parse_statement

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not SLOW,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["AAAA", "e30=", "", "sha256", "files", "shards", "../x", "a\\b"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, _json)


_bundles = st.fixed_dictionaries(
    {
        "mediaType": _maybe(st.just("application/vnd.dev.sigstore.bundle.v0.3+json")),
        "verificationMaterial": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "publicKey": _maybe(st.fixed_dictionaries({"hint": _maybe(st.text())})),
                    "certificate": _maybe(st.fixed_dictionaries({"rawBytes": _json})),
                    "x509CertificateChain": _json,
                    "tlogEntries": _maybe(st.lists(_json, max_size=2)),
                    "timestampVerificationData": _json,
                },
            )
        ),
        "dsseEnvelope": _maybe(
            st.fixed_dictionaries(
                {
                    "payload": _maybe(
                        st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
                    ),
                    "payloadType": _maybe(st.just("application/vnd.in-toto+json")),
                    "signatures": _maybe(
                        st.lists(
                            st.fixed_dictionaries(
                                {"sig": _maybe(st.just("AAAA"))}, optional={"keyid": _json}
                            ),
                            max_size=2,
                        )
                    ),
                }
            )
        ),
    },
    optional={"extra": _json},
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The signed model for the byte-edit property."""
    return make_target(tmp_path_factory.mktemp("fuzz-properties"))


@pytest.fixture(scope="module")
def counter() -> dict[str, int]:
    """Examples run per test, for the count each test records."""
    return {}


def _count(counter: dict[str, int], name: str) -> None:
    counter[name] = counter.get(name, 0) + 1


def test_generated_bundles_parse_or_fail_with_omsign_errors(
    counter: dict[str, int], record_property: Any
) -> None:
    @SETTINGS
    @given(_bundles)
    def check(bundle: dict[str, Any]) -> None:
        _count(counter, "bundles")
        try:
            parsed = parse_bundle(json.dumps(bundle).encode())
        except Error:
            return
        assert parsed.method in ("key", "certificate", "sigstore")

    check()
    record_property("mutations", counter["bundles"])


_names = st.one_of(
    st.text(
        alphabet=st.sampled_from(["a", "b", "/", ".", "\\", "\0", ":", "0", "\u00e9", " "]),
        max_size=12,
    ),
    st.sampled_from(["config.json", "../x", "/abs", "a//b", "a/./b", "a/", "x:0:10"]),
)
_resources = st.lists(
    st.fixed_dictionaries(
        {
            "name": _maybe(_names),
            "digest": _maybe(st.binary(min_size=32, max_size=32).map(bytes.hex)),
            "algorithm": _maybe(st.sampled_from(["sha256", "sha256-sharded-10", "blake3"])),
        }
    ),
    max_size=5,
)
_serializations = st.fixed_dictionaries(
    {
        "method": _maybe(st.sampled_from(["files", "shards"])),
        "hash_type": _maybe(st.sampled_from(["sha256", "blake2b", "blake3"])),
        "allow_symlinks": _maybe(st.booleans()),
    },
    optional={"shard_size": _maybe(st.integers(1, 100)), "ignore_paths": _json},
)


def test_generated_statements_are_rejected_or_have_safe_unique_names(
    counter: dict[str, int], record_property: Any
) -> None:
    @SETTINGS
    @given(_resources, _serializations, st.booleans())
    def check(resources: list[Any], serialization: dict[str, Any], fix_root: bool) -> None:
        _count(counter, "statements")
        root = "00" * 32
        if fix_root:
            import hashlib

            h = hashlib.sha256()
            for res in resources:
                digest = res.get("digest")
                if isinstance(digest, str) and len(digest) == 64:
                    h.update(bytes.fromhex(digest))
            root = h.hexdigest()
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "m", "digest": {"sha256": root}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {"resources": resources, "serialization": serialization},
        }
        try:
            signed = parse_statement(json.dumps(statement).encode())
        except Error:
            return
        ser = signed.manifest.serialization
        names = [item.name for item in signed.manifest.items]
        assert len(set(names)) == len(names)
        for name in names:
            path = name.rsplit(":", 2)[0] if ser.method == "shards" else name
            parts = path.split("/")
            assert path == "." or not ({"", ".", ".."} & set(parts)), name
            assert not path.startswith("/") and "\\" not in path and "\0" not in path, name

    check()
    record_property("mutations", counter["statements"])


_file_names = st.text(
    alphabet=st.sampled_from(["a", "B", "z", "0", "_", "-", ".", ":", "\u00e9", "\u4e2d"]),
    min_size=1,
    max_size=6,
).filter(lambda n: n not in (".", "..") and not n.startswith(".git"))
_trees = st.dictionaries(
    st.lists(_file_names, min_size=1, max_size=3).map("/".join),
    st.binary(min_size=1, max_size=300),
    min_size=1,
    max_size=6,
)


def _write_tree(root: Path, tree: dict[str, bytes]) -> bool:
    """Writes the files; False when two names clash (a file where a directory goes)."""
    try:
        for name, data in tree.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        return False
    return True


def test_generated_model_trees_verify_and_any_byte_change_fails(
    target: Target, counter: dict[str, int], record_property: Any
) -> None:
    @SETTINGS
    @given(_trees, st.data())
    def check(tree: dict[str, bytes], data: st.DataObject) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model"
            model.mkdir()
            if not _write_tree(model, tree):
                return
            _count(counter, "trees")
            shard = data.draw(st.sampled_from([None, 7, 1000]))
            omsign.sign(model, signer=target.signer, shard_size=shard, workers=1)
            omsign.verify(model, policy=target.policy, workers=1)
            written = sorted(n for n in tree if (model / n).is_file())
            victim = model / data.draw(st.sampled_from(written))
            content = bytearray(victim.read_bytes())
            offset = data.draw(st.integers(0, len(content) - 1))
            content[offset] ^= 1 << data.draw(st.integers(0, 7))
            victim.write_bytes(bytes(content))
            with pytest.raises(IntegrityError):
                omsign.verify(model, policy=target.policy, workers=1)

    check()
    record_property("mutations", counter.get("trees", 0))
    assert counter.get("trees", 0) > EXAMPLES // 4


def test_any_single_byte_edit_of_a_valid_bundle_is_safe(
    target: Target, counter: dict[str, int], record_property: Any
) -> None:
    @SETTINGS
    @given(st.integers(0, len(target.text) - 1), st.integers(0, 255))
    def check(offset: int, value: int) -> None:
        _count(counter, "byte-edits")
        data = bytearray(target.text)
        data[offset] = value
        target.oracle(bytes(data), "byte-edit")

    check()
    record_property("mutations", counter["byte-edits"])


def test_independent_check_catches_a_wrong_manifest(target: Target) -> None:
    bad = omsign.Manifest(target.local.items[1:], target.local.serialization)
    assert independent_problem(bad) is not None
    assert independent_problem(target.local) is None
