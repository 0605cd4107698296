"""Mutation fuzzing of a signed model folder: every change to signed content fails.

Each mutation changes the model on disk, verification runs through the library, and
the model is restored. Neutral changes (a new modification time, the same bytes
rewritten, a file in an ignored directory) must verify; every other change must fail
with one of omsign's own errors.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fuzz.harness import MODEL_FILES, VOLUME, Target, make_target
from omsign._verify import verify_with_policy
from omsign.errors import Error
from omsign.options import Runtime

SEED = int(os.environ.get("OMSIGN_FUZZ_SEED", "20261125"))
NEW_NAMES = ["new.bin", "sub/new.json", "newdir/deeper/x", "Config.json", "cafe\u0301.txt", "a:0:1"]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _restore(model: Path, touched: list[str]) -> None:
    for name in touched:
        _remove(model / name)
        top = model / name.split("/")[0]
        if name.split("/")[0] not in {n.split("/")[0] for n in MODEL_FILES} and top.exists():
            _remove(top)
    for name in touched:
        if name in MODEL_FILES:
            (model / name).parent.mkdir(parents=True, exist_ok=True)
            (model / name).write_bytes(MODEL_FILES[name])


def _mutate(rng: random.Random, model: Path) -> tuple[str, bool, list[str]]:
    """Applies one change; returns its kind, whether it is neutral, and the names touched."""
    name = rng.choice(sorted(MODEL_FILES))
    path, data = model / name, MODEL_FILES[name]
    kind = rng.randrange(12)
    if kind == 0:
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :])
        return "bit-flip", False, [name]
    if kind == 1:
        with path.open("ab") as f:
            f.write(os.urandom(rng.randint(1, 10)))
        return "append", False, [name]
    if kind == 2:
        os.truncate(path, rng.randrange(len(data)))
        return "truncate", False, [name]
    if kind == 3:
        path.unlink()
        return "delete", False, [name]
    if kind == 4:
        new = rng.choice(NEW_NAMES)
        (model / new).parent.mkdir(parents=True, exist_ok=True)
        (model / new).write_bytes(os.urandom(rng.randint(0, 50)))
        return "add", False, [new]
    if kind == 5:
        other = rng.choice([n for n in sorted(MODEL_FILES) if n != name])
        path.unlink()
        path.symlink_to(model / other)
        return "symlink", False, [name]
    if kind == 6:
        path.unlink()
        os.mkfifo(path)
        return "fifo", False, [name]
    if kind == 7:
        path.unlink()
        path.mkdir()
        (path / "inner").write_bytes(data)
        return "file-to-directory", False, [name]
    if kind == 8:
        new = rng.choice([n for n in NEW_NAMES if "/" not in n])
        path.rename(model / new)
        return "rename", False, [name, new]
    if kind == 9:
        other = rng.choice([n for n in sorted(MODEL_FILES) if n != name])
        path.write_bytes(MODEL_FILES[other])
        return "content-of-another-file", False, [name]
    if kind == 10:
        if rng.random() < 0.5:
            path.write_bytes(data)  # the same bytes again
        stamp = rng.randrange(1, 2_000_000_000)
        os.utime(path, (stamp, stamp))
        return "touch", True, [name]
    (model / ".git").mkdir(exist_ok=True)
    (model / ".git" / "HEAD").write_bytes(os.urandom(8))
    return "ignored-directory", True, [".git"]


def _verify(target: Target) -> str:
    try:
        verify_with_policy(target.model, target.policy, runtime=Runtime(workers=1))
    except Error:
        return "rejected"
    return "accepted"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The signed model to mutate (restored after every mutation)."""
    return make_target(tmp_path_factory.mktemp("fuzz-model"))


def test_model_mutations_fail_verification_unless_neutral(
    target: Target, record_property: Any
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[tuple[str, str]] = Counter()
    for i in range(VOLUME["model"]):
        kind, neutral, touched = _mutate(rng, target.model)
        try:
            outcome = _verify(target)
        except Exception as exc:
            pytest.fail(f"mutation {i} ({kind} of {touched}): crash {type(exc).__name__}: {exc}")
        finally:
            _restore(target.model, touched)
        expected = "accepted" if neutral else "rejected"
        if outcome != expected:
            pytest.fail(f"mutation {i} ({kind} of {touched}, seed {SEED}): {outcome}")
        outcomes[kind, outcome] += 1
    total = sum(outcomes.values())
    record_property("mutations", total)
    assert total == VOLUME["model"]
    assert _verify(target) == "accepted"


def test_restoring_gives_back_a_model_that_verifies(target: Target) -> None:
    rng = random.Random(SEED)
    for _ in range(50):
        _, _, touched = _mutate(rng, target.model)
        _restore(target.model, touched)
        assert _verify(target) == "accepted"
