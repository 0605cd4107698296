"""A three-step model pipeline, signed and attested, for lineage tests.

The base model (trained on ``data0``) is signed by key A; the fine-tuned model, made
from the base and ``data1``, by key B; the quantised model, made from the fine-tuned
one, by key B. Each model carries its SLSA provenance in ``claims.jsonl``, signed by
the key that signed it. ``data0`` is unsigned (proven by its digest), ``data1`` signed
by key A. Key C is trusted by nobody.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.pki import make_ec_key, write_private_key, write_public_key

__all__ = ["Pipeline", "attest_step", "build_pipeline", "provenance"]


@dataclass(frozen=True)
class Pipeline:
    root: Path
    a: KeyPair
    b: KeyPair
    c: KeyPair  # trusted by nobody
    digests: dict[str, str]

    def copy(self, root: Path) -> Pipeline:
        """The same pipeline copied under ``root`` (to break without touching this one)."""
        shutil.copytree(self.root, root, symlinks=True)
        keys = (
            KeyPair(k.curve, root / "keys" / k.private.name, root / "keys" / k.public.name)
            for k in (self.a, self.b, self.c)
        )
        return Pipeline(root, *keys, self.digests)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def search(self) -> list[Path]:
        return [self.path("models"), self.path("data")]

    @property
    def trusted(self) -> list[Path]:
        return [self.a.public, self.b.public]

    def lineage(self, model: str = "quant", **kw: Any) -> omsign.Lineage:
        return omsign.lineage(
            self.path("models", model), search=self.search, key=self.trusted, workers=2, **kw
        )

    def cli(self, run: Callable[..., CliResult], *extra: str | Path) -> CliResult:
        flags: list[str | Path] = []
        for place in self.search:
            flags += ["--search", place]
        for key in self.trusted:
            flags += ["--key", key]
        return run("lineage", self.path("models", "quant"), *flags, "--workers", "2", *extra)


def _keypair(folder: Path, name: str) -> KeyPair:
    key = make_ec_key("P-256")
    write_private_key(folder / f"{name}.pem", key)
    write_public_key(folder / f"{name}.pub", key)
    return KeyPair("P-256", folder / f"{name}.pem", folder / f"{name}.pub")


def provenance(step: str, deps: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A SLSA provenance v1 predicate for one pipeline step, naming its inputs."""
    return {
        "buildDefinition": {
            "buildType": "https://omsign.dev/model-step/v1",
            "externalParameters": {"step": step},
            "resolvedDependencies": [
                {
                    "name": name,
                    "uri": f"file:///pipeline/{name}",
                    "digest": {"sha256": digest},
                    "annotations": {"omsign.kind": kind},
                }
                for kind, name, digest in deps
            ]
            + [{"uri": "git+https://example.com/train@1234", "digest": {"gitCommit": "1234"}}],
        },
        "runDetails": {"builder": {"id": "https://ci.example.com/runner"}},
    }


def attest_step(model: Path, key: KeyPair, step: str, deps: list[tuple[str, str, str]]) -> str:
    signed = omsign.sign(model, key=key.private, workers=2)
    omsign.attest(
        model, predicate_type="provenance", predicate=provenance(step, deps), key=key.private
    )
    return signed.root_digest


def build_pipeline(root: Path) -> Pipeline:
    keys = root / "keys"
    keys.mkdir(parents=True)
    a, b, c = (_keypair(keys, n) for n in "abc")
    digests: dict[str, str] = {}
    data0 = make_model(root / "data" / "data0", {"train.jsonl": b'{"text": "zero"}\n' * 50})
    data1 = make_model(root / "data" / "data1", {"tune.jsonl": b'{"text": "one"}\n' * 50})
    digests["data0"] = omsign.digest(data0)
    digests["data1"] = omsign.sign(data1, key=a.private).root_digest
    models = root / "models"
    weights = {"config.json": b'{"layers": 2}\n', "weights.bin": os.urandom(4096)}
    base = make_model(models / "base", weights)
    digests["base"] = attest_step(base, a, "train", [("dataset", "data0", digests["data0"])])
    tuned = make_model(models / "tuned", {**weights, "weights.bin": os.urandom(4096)})
    digests["tuned"] = attest_step(
        tuned,
        b,
        "fine-tune",
        [("model", "base", digests["base"]), ("dataset", "data1", digests["data1"])],
    )
    quant = make_model(models / "quant", {**weights, "weights.bin": os.urandom(1024)})
    digests["quant"] = attest_step(quant, b, "quantize", [("model", "tuned", digests["tuned"])])
    return Pipeline(root, a, b, c, digests)
