"""Executor specs: parsing, missing extras, and the process pool, without a cluster."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import CliResult, make_model
from omsign.errors import BackendUnavailableError, UsageError
from omsign.executors import make_executor, parse_spec
from omsign.options import HashOptions, Runtime


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("threads", ("threads", None)),
        ("processes", ("processes", None)),
        ("dask", ("dask", None)),
        ("dask=tcp://10.0.0.1:8786", ("dask", "tcp://10.0.0.1:8786")),
        ("ray=10.0.0.1:6379", ("ray", "10.0.0.1:6379")),
    ],
)
def test_specs_name_a_kind_and_an_optional_address(
    spec: str, parsed: tuple[str, str | None]
) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["spark", "threads=x", "processes=host", "dask=", ""])
def test_a_bad_spec_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_spec(spec)


def test_threads_is_the_built_in_engine() -> None:
    with make_executor("threads") as executor:
        assert executor is None


@pytest.mark.parametrize(("kind", "module"), [("dask", "distributed"), ("ray", "ray")])
def test_a_missing_extra_is_named(
    kind: str, module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: Any
) -> None:
    real_module = importlib.import_module

    def no_import_module(name: str, package: str | None = None) -> Any:
        if name == module:
            raise ImportError(f"No module named {module!r}")
        return real_module(name, package)

    monkeypatch.setattr(importlib, "import_module", no_import_module)
    with pytest.raises(BackendUnavailableError, match=rf"omsign\[{kind}\]"), make_executor(kind):
        pass
    m = make_model(tmp_path / "m", {"a": b"a"})
    result: CliResult = cli("digest", m, "--executor", kind)
    assert result.code == 2
    assert f"omsign[{kind}]" in result.err


def test_the_cli_rejects_an_unknown_executor(tmp_path: Path, cli: Any) -> None:
    m = make_model(tmp_path / "m", {"a": b"a"})
    result = cli("digest", m, "--executor", "spark")
    assert result.code == 2
    assert "--executor" in result.err


def test_processes_give_the_digest_of_threads(tmp_path: Path, cli: Any) -> None:
    m = make_model(tmp_path / "m", {"a": os.urandom(300_000), "b": b"b"})
    expected = omsign.digest(m, hashing=HashOptions(shard_size=100_000))
    result = cli("digest", m, "--executor", "processes", "--workers", "2", "--shard-size", "100000")
    assert result.code == 0, result.err
    assert result.out.strip() == f"sha256:{expected}"
    with make_executor("processes", 2) as pool:
        assert omsign.digest(m, runtime=Runtime(executor=pool)) == omsign.digest(m)
