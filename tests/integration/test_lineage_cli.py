"""``omsign lineage`` on the command line: arguments, defaults, errors, the page in a browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.browser import dump_dom, parse_dom
from helpers.lineage_values import check_lineage_json
from helpers.pipeline import Pipeline, build_pipeline


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return build_pipeline(tmp_path_factory.mktemp("pipeline"))


def _keys(p: Pipeline) -> list[str | Path]:
    return ["--key", p.a.public, "--key", p.b.public]


def test_the_model_may_follow_the_search_places(built: Pipeline, cli: Any) -> None:
    result = cli(
        "lineage", "-q", *_keys(built), "--search", *built.search, built.path("models", "quant")
    )
    assert (result.code, result.out, result.err) == (0, "", "")


def test_the_default_search_place_is_the_folder_of_the_model(built: Pipeline, cli: Any) -> None:
    result = cli("lineage", built.path("models", "quant"), *_keys(built))
    assert result.code == 1
    # models/ holds every model; the datasets are elsewhere.
    assert result.err.startswith("omsign: error: lineage broken at dataset data0 (sha256:")
    assert result.err.endswith("(and 1 more broken link(s))\n")
    for name in ("quant", "tuned", "base"):
        assert f"model {name} (sha256:" in result.out
    for name in ("data0", "data1"):
        assert f"dataset {name} (sha256:" in result.out
    assert result.out.count("NOT FOUND: no copy among the search places") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-model", "--key", "KEY"], "missing-model: no such file or directory"),
        (
            ["MODEL", "--key", "KEY", "--search", "no-such-place"],
            "no-such-place: no such search place",
        ),
        (["MODEL"], "--key"),  # no trust given
        (["--search", "x"], "required: MODEL"),
    ],
)
def test_usage_errors_exit_2(
    built: Pipeline, cli: Any, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(built.root)
    monkeypatch.delenv("OMSIGN_POLICY", raising=False)
    spelt = {"MODEL": str(built.path("models", "quant")), "KEY": str(built.a.public)}
    result = cli("lineage", *(spelt.get(a, a) for a in args))
    assert result.code == 2, (result.out, result.err)
    assert message in result.err
    assert result.out == ""


def test_a_broken_lineage_still_writes_its_page_and_the_browser_shows_the_break(
    built: Pipeline, cli: Any, tmp_path: Path
) -> None:
    pipeline = built.copy(tmp_path / "copy")
    weights = pipeline.path("models", "base", "weights.bin")
    weights.write_bytes(weights.read_bytes()[::-1])
    page = tmp_path / "out" / "lineage.html"
    page.parent.mkdir()
    result = pipeline.cli(cli, "--html", page, "--json")
    assert result.code == 1
    assert f"lineage graph written to {page}" in result.err
    doc = check_lineage_json(json.loads(result.out))
    assert doc["verified"] is False
    assert [(b["role"], b["digest"]) for b in doc["broken"]] == [
        ("base model", f"sha256:{pipeline.digests['base']}")
    ]
    elements = parse_dom(dump_dom(page))
    status = {e.attrs["data-name"]: e.attrs["data-status"] for e in elements if "node" in e.classes}
    assert status == {
        "quant": "verified",
        "tuned": "verified",
        "base": "unverified",
        "data1": "verified",
    }
    summary = next(e for e in elements if "summary" in e.classes)
    assert summary.text.startswith(
        "Broken: 1 link(s) do not verify; first: base model base (sha256:"
    )
    assert sorted(p.name for p in page.parent.iterdir()) == ["lineage.html"]
