"""Reading a SLSA provenance predicate: the models and datasets it names, its step, its builder."""

from __future__ import annotations

from typing import Any

from omsign._lineage._follow import Dependency, _builder, _step, dependencies, why
from omsign.errors import IdentityError, IntegrityError, ModelError, SignatureNotFoundError
from omsign.manifest import Difference

D = "ab" * 32


def _predicate(*entries: Any, **build: Any) -> dict[str, Any]:
    return {"buildDefinition": {"resolvedDependencies": list(entries), **build}}


def _entry(kind: Any = "model", digest: Any = D, **more: Any) -> dict[str, Any]:
    return {
        "name": "base",
        "digest": {"sha256": digest},
        "annotations": {"omsign.kind": kind},
        **more,
    }


def test_models_and_datasets_are_read_with_their_names_and_uris() -> None:
    deps, problems = dependencies(
        _predicate(_entry(uri="hf://acme/base"), _entry("dataset", name="corpus"))
    )
    assert deps == [
        Dependency("model", "base", D, "hf://acme/base"),
        Dependency("dataset", "corpus", D, None),
    ]
    assert problems == []


def test_code_and_other_entries_are_not_artifacts_of_the_lineage() -> None:
    code = {"uri": "git+https://example.com/x@1", "digest": {"gitCommit": "1" * 40}}
    deps, problems = dependencies(_predicate(code, _entry(kind="tool"), "not an object", 3))
    assert (deps, problems) == ([], [])


def test_a_model_or_dataset_without_a_sha256_root_digest_is_a_problem() -> None:
    for bad in (None, "AB" * 32, "ab" * 31, "zz" * 32, 12, "ab" * 32 + "\n"):
        deps, problems = dependencies(_predicate(_entry(digest=bad)))
        assert deps == []
        assert problems == ["its provenance names model base without a sha256 root digest"], bad


def test_a_provenance_listing_too_many_dependencies_is_a_problem() -> None:
    deps, problems = dependencies(_predicate(*[_entry("dataset") for _ in range(300)]))
    assert len(deps) == 256
    assert problems == ["the provenance lists more than 256 dependencies"]


def test_malformed_predicates_name_nothing() -> None:
    for predicate in (
        {},
        {"buildDefinition": []},
        _predicate() | {"buildDefinition": {"resolvedDependencies": {}}},
    ):
        assert dependencies(predicate) == ([], [])


def test_the_step_and_builder() -> None:
    assert _step(_predicate(externalParameters={"step": "fine-tune"})) == "fine-tune"
    assert _step(_predicate(buildType="https://omsign.dev/model-step/v1/quantize")) == "quantize"
    assert _step(_predicate(buildType="https://omsign.dev/model-step/v1")) is None
    assert _step({"buildDefinition": 3}) is None
    assert (
        _builder({"runDetails": {"builder": {"id": "https://ci.example.com"}}})
        == "https://ci.example.com"
    )
    assert _builder({"runDetails": {"builder": "x"}}) is None


def test_reasons_leave_out_the_location_the_node_shows() -> None:
    diff = Difference(("a.json",), (), ("w.bin",))
    assert why(IntegrityError("/m: model does not match", diff), "/m") == (
        "content does not match its signature: changed: w.bin; missing: a.json"
    )
    assert why(
        SignatureNotFoundError("/m: no signature found (looked for /m/model.sig)"), "/m"
    ) == ("no signature found")
    assert why(IdentityError("/m/model.sig: signed by X, not Y"), "/m", "/m/model.sig") == (
        "signer not trusted: signed by X, not Y"
    )
    assert why(ModelError("/m: unreadable"), "/m") == "cannot be checked: unreadable"
