"""The built-in predicates, gathered from where they live: models, files, git, CI.

- :func:`provenance_predicate`: SLSA Provenance v1 for one pipeline step. Each base model
  and dataset is hashed as its signature was (a dataset folder like a model) and named by
  its OMS root digest; the code is ``URI@COMMIT`` as given, else the git checkout of the
  current directory (``git rev-parse HEAD``), else the commit the CI names; the builder
  is ``builder_id``, else GitHub Actions' or GitLab CI's run from their environment
  variables; parameters come from a JSON or TOML file.
- :func:`model_card_predicate`: a Hugging Face model card's YAML metadata.
- :func:`bom_predicate`: a CycloneDX 1.6 ML-BOM built from the hashed model (pass the
  function itself as ``attest``'s ``predicate``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign._attest import digest_as_signed, read_file
from omsign.errors import UsageError
from omsign.options import PathLike, Runtime
from omsign.predicates._bom import build_bom
from omsign.predicates._modelcard import MAX_CARD_BYTES, card_predicate
from omsign.predicates._slsa import Dependency, build_provenance

if TYPE_CHECKING:
    from omsign.loading import VerifiedModel

__all__ = [
    "bom_predicate",
    "builder_from_environment",
    "code_from_checkout",
    "model_card_predicate",
    "provenance_predicate",
    "read_parameters",
]

_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def builder_from_environment(environ: Mapping[str, str]) -> tuple[str, str | None] | None:
    """The builder id and run id that GitHub Actions or GitLab CI describe, or None."""
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        repo = environ["GITHUB_REPOSITORY"]
        workflow = environ.get("GITHUB_WORKFLOW_REF")
        builder = f"{server}/{workflow}" if workflow else f"{server}/{repo}/actions"
        run = environ.get("GITHUB_RUN_ID")
        attempt = environ.get("GITHUB_RUN_ATTEMPT", "1")
        return builder, f"{server}/{repo}/actions/runs/{run}/attempts/{attempt}" if run else None
    if environ.get("GITLAB_CI") == "true" and environ.get("CI_PROJECT_PATH"):
        server = environ.get("CI_SERVER_URL", "https://gitlab.com")
        runner = environ.get("CI_RUNNER_ID", "")
        builder = f"{server}/{environ['CI_PROJECT_PATH']}/-/runners/{runner}".rstrip("/")
        return builder, environ.get("CI_JOB_URL")
    return None


def _code(uri: str, commit: str) -> Dependency:
    return Dependency(
        "code", "code", uri if uri.startswith("git+") else f"git+{uri}", {"gitCommit": commit}
    )


def _parse_code(value: str) -> Dependency:
    uri, sep, commit = value.rpartition("@")
    if not sep or not uri or not _COMMIT.fullmatch(commit.lower()):
        raise UsageError(
            f"code {value!r} is not URI@COMMIT with a full hexadecimal commit id",
            option="code",
            hint="give {option} like https://github.com/org/repo@<40 hex digits>",
        )
    return _code(uri, commit.lower())


def _git(cwd: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(cwd), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_from_checkout(cwd: Path) -> Dependency | None:
    """The commit checked out at ``cwd`` (and its ``origin`` URL), if it is a git checkout."""
    commit = _git(cwd, "rev-parse", "HEAD")  # fails outside a checkout
    if not commit or not _COMMIT.fullmatch(commit):
        return None
    origin = _git(cwd, "config", "remote.origin.url")
    return _code(origin or Path(cwd).resolve().as_uri(), commit)


def _code_from_ci(environ: Mapping[str, str]) -> Dependency | None:
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_SHA"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return _code(f"{server}/{environ.get('GITHUB_REPOSITORY', '')}", environ["GITHUB_SHA"])
    if environ.get("GITLAB_CI") == "true" and environ.get("CI_COMMIT_SHA"):
        return _code(environ.get("CI_PROJECT_URL", ""), environ["CI_COMMIT_SHA"])
    return None


def read_parameters(path: PathLike) -> dict[str, Any]:
    """A step's parameters from a JSON file or (by its ``.toml`` suffix) a TOML file.

    Raises:
        UsageError: missing, unreadable, not valid JSON or TOML, or not an object/table.
    """
    where = os.fspath(path)
    if where.endswith(".toml"):
        data = read_file(path, "parameters")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            value: Any = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{where}: the parameters file is not valid TOML ({exc})") from None
        ready: dict[str, Any] = _json_ready(value, where)
        return ready
    from omsign._attest import read_predicate

    return read_predicate(path, "parameters")


def _json_ready(value: Any, where: str) -> Any:
    """TOML values as JSON ones (dates and times become RFC 3339 strings)."""
    if isinstance(value, dict):
        return {k: _json_ready(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v, where) for v in value]
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def provenance_predicate(
    *,
    step: str,
    base: Sequence[PathLike] = (),
    dataset: Sequence[PathLike] = (),
    code: str | None = None,
    parameters: PathLike | Mapping[str, Any] | None = None,
    builder_id: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: PathLike | None = None,
    runtime: Runtime | None = None,
    reuse_digests: bool = False,
    started: dt.datetime | None = None,
) -> dict[str, Any]:
    """A SLSA Provenance v1 predicate for the pipeline step that made a model.

    Args:
        step: the step (``train``, ``fine-tune``, ``quantize``, ``convert``, ``merge``...).
        base: the models the step started from: folders, files, ``hf://`` names...
        dataset: the datasets it used (a folder or file, hashed like a model).
        code: ``URI@COMMIT``; default: the git checkout of ``cwd``, else the CI's commit.
        parameters: the step's parameters, or a JSON / TOML file holding them.
        builder_id: who ran the step; default: the GitHub Actions or GitLab CI run.
        environ: the environment to read CI variables from (default ``os.environ``).
        cwd: where to look for a git checkout (default: the current directory).
        runtime: how to hash the bases and datasets.
        reuse_digests: reuse the digest cache for them.
        started: when the step started, if known (it finished now).

    Raises:
        UsageError: an empty step, a bad ``code``, no builder, or bad parameters.
        ModelError: a base model or dataset cannot be found or read.
    """
    if not step or not step.strip():
        raise UsageError("the step is empty", option="step")
    env = os.environ if environ is None else environ
    ci = builder_from_environment(env)
    if builder_id is None and ci is None:
        raise UsageError(
            "no builder: this is not a GitHub Actions or GitLab CI run",
            option="builder_id",
            hint="say who ran the step with {option}",
        )
    builder, invocation = (builder_id, None) if builder_id is not None else ci  # type: ignore[misc]
    deps: list[Dependency] = []
    for kind, given in (("model", base), ("dataset", dataset)):
        for item in given:
            hashed = digest_as_signed(item, runtime=runtime, reuse_digests=reuse_digests)
            name = hashed.source.name
            deps.append(Dependency(kind, name, os.fspath(item), {"sha256": hashed.root_digest}))
    where = Path(cwd) if cwd is not None else Path.cwd()
    found = _parse_code(code) if code else code_from_checkout(where) or _code_from_ci(env)
    if found is not None:
        deps.append(found)
    params = (
        read_parameters(parameters) if isinstance(parameters, (str, os.PathLike)) else parameters
    )
    return build_provenance(
        step=step.strip(),
        dependencies=deps,
        builder_id=builder,
        parameters=params,
        invocation_id=invocation,
        started=started,
        finished=dt.datetime.now(dt.timezone.utc),
    )


def model_card_predicate(path: PathLike) -> dict[str, Any]:
    """The metadata of a Hugging Face model card (``README.md``), as a predicate.

    Raises:
        UsageError: missing, larger than 1 MiB, or without valid YAML metadata.
        BackendUnavailableError: PyYAML is not installed (``omsign[modelcard]``).
    """
    data = read_file(path, "model card", MAX_CARD_BYTES)
    return card_predicate(data, Path(path).name, os.fspath(path))


def bom_predicate(model: VerifiedModel) -> dict[str, Any]:
    """A CycloneDX 1.6 ML-BOM of a hashed model (give this function as the predicate)."""
    from omsign._version import __version__

    result = model.result
    return build_bom(
        result.subject_name,
        result.root_digest,
        result.manifest,
        tool_version=__version__,
        timestamp=dt.datetime.now(dt.timezone.utc),
    )
