"""Signing a model in an OCI registry reads its manifest, not its blobs.

Usage: ``python benchmarks/registry.py [--size 4G] [--layers 8] [--repeat 3] [--quick]``.
Starts the OCI test registry of ``tests/services`` on loopback, stores a ModelPack model
of ``--size`` bytes in ``--layers`` raw weight layers (sparse files on disk: cheap to
store; their digests are computed once and kept in ``.bench/registry/digests.json``),
then times, each in a fresh process (median of ``--repeat``):

- ``manifest``: fetching and checking the manifest alone (``Registry.manifest``), the
  floor any registry signer pays;
- ``sign``: ``omsign.sign("oci://...", key=...)`` with files/sha256 (the manifest
  fetched, the statement signed, the bundle pushed as a referrer);
- ``verify``: ``omsign.verify("oci://...", key=...)``;
- ``omsign sign`` (CLI): the whole process, interpreter start included.

Each library call is timed twice in its process, imports excluded (a tiny local model is
signed and verified first): the first call (a new connection to the registry, its
client set up) and a second, warm one.

The registry counts the blob bytes it sends: the target is none (a raw layer's sha256 is
its digest). The baseline is what reading the model would cost: its size over the
machine's ``hashlib.sha256`` rate on all cores, measured in the same run; the report
prints the ratio of each time to it, and the bytes fetched against the model size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib.config import usable_cores
from benchlib.measure import sha256_single_core_rate
from benchlib.tools import keys

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from helpers.ocimodel import FILEPATH, MODELPACK_ARTIFACT, MODELPACK_CONFIG, PlainClient  # noqa: E402
from services.oci_registry import OciRegistry, start_registry  # noqa: E402

_SIZES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_CODE = {
    "manifest": "from omsign.oci import Registry; Registry(ref).manifest()",
    "sign": "omsign.sign(ref, key=private, signature=None)",
    "verify": "omsign.verify(ref, key=public)",
}
# Imports excluded, as in run.py: a tiny local model is signed and verified first, so the
# signing and verifying modules are loaded before the registry calls are timed.
_PRELUDE = (
    "import sys, time, tempfile, pathlib; import omsign, omsign.oci; "
    "ref, private, public = sys.argv[1:4]; d = pathlib.Path(tempfile.mkdtemp()); "
    "(d / 'w.bin').write_bytes(b'w'); omsign.sign(d, key=private); "
    "omsign.verify(d, key=public); "
)
_TIMED = "t = time.perf_counter(); {code}; print(time.perf_counter() - t); "


def _size(text: str) -> int:
    text = text.upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * _SIZES[text[-1]]) if text[-1] in _SIZES else int(text)


def _sparse_layers(registry: OciRegistry, repo: str, work: Path, size: int, count: int) -> list[
    tuple[str, int]
]:  # fmt: skip
    """``count`` sparse blobs of ``size // count`` bytes, registered (digests cached)."""
    cache_file = work / "digests.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    each = size // count
    out = []
    for i in range(count):
        key = f"{each}:{i}"
        path = work / f"layer-{i}.bin"
        if key not in cache or not path.exists() or path.stat().st_size != each:
            with path.open("wb") as f:
                f.write(f"omsign registry bench layer {i}\n".encode())
                f.truncate(each)
            h = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
            cache[key] = "sha256:" + h.hexdigest()
            cache_file.write_text(json.dumps(cache))
        digest = cache[key]
        target = registry.state.blob_path(digest)
        if not target.exists():
            os.link(path, target)
        registry.state.add_blob(repo, digest)
        out.append((digest, each))
    return out


def _push(registry: OciRegistry, repo: str, layers: list[tuple[str, int]]) -> str:
    """Pushes the config blob and a ModelPack manifest naming the registered layers."""
    client = PlainClient(registry.url)
    config = json.dumps({"descriptor": {"name": "bench"}, "modelfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": MODELPACK_ARTIFACT,
        "config": {"mediaType": MODELPACK_CONFIG, "digest": client.push_blob(repo, config),
                   "size": len(config)},
        "layers": [
            {"mediaType": "application/vnd.cncf.model.weight.v1.raw", "digest": digest,
             "size": size, "annotations": {FILEPATH: f"model-{i:05d}.safetensors"}}
            for i, (digest, size) in enumerate(layers)
        ],
    }  # fmt: skip
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    return client.push_manifest(repo, "v1", raw)


def _time(code: str, ref: str, private: Path, public: Path) -> tuple[float, float]:
    """The first call in a fresh process (lazy imports included), then a second one."""
    script = _PRELUDE + _TIMED.format(code=code) * 2
    out = subprocess.run(
        [sys.executable, "-c", script, ref, str(private), str(public)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{code}: failed\n{out.stderr[-2000:]}")
    first, warm = out.stdout.strip().splitlines()[-2:]
    return float(first), float(warm)


def _time_cli(ref: str, private: Path) -> float:
    exe = Path(sys.executable).parent / "omsign"
    start = time.perf_counter()
    subprocess.run([str(exe), "sign", ref, "--key", str(private)], check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G", help="model size (default 4G)")
    parser.add_argument("--layers", type=int, default=8, help="raw weight layers (default 8)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="256M, one run: a smoke test")
    parser.add_argument("--workdir", default=str(REPO / ".bench" / "registry"))
    args = parser.parse_args()
    size, repeat = (256 << 20, 1) if args.quick else (_size(args.size), args.repeat)
    work = Path(args.workdir)
    (work / "layers").mkdir(parents=True, exist_ok=True)
    registry = start_registry(work / f"run-{os.getpid()}")
    try:
        layers = _sparse_layers(registry, "bench/model", work / "layers", size, args.layers)
        ref = registry.ref("bench/model", _push(registry, "bench/model", layers))
        private, public = keys(argparse.Namespace(workdir=work))  # type: ignore[arg-type]
        os.environ.setdefault("OMSIGN_OCI_INSECURE", registry.host)
        served: dict[str, int] = {}
        times: dict[str, list[float]] = {"omsign sign (CLI)": []}
        for _ in range(repeat):  # interleaved, so drift hits every way alike
            for name, code in _CODE.items():
                before = registry.state.blob_bytes_served
                first, warm = _time(code, ref, private, public)
                times.setdefault(f"{name} (first call)", []).append(first)
                times.setdefault(f"{name} (warm)", []).append(warm)
                served[name] = max(served.get(name, 0), registry.state.blob_bytes_served - before)
            times["omsign sign (CLI)"].append(_time_cli(ref, private))
        hashing = size / (sha256_single_core_rate() * usable_cores())
    finally:
        registry.stop()
    median = {name: statistics.median(v) for name, v in times.items()}
    gib = size / (1 << 30)
    print(f"registry model, {gib:.2f} GiB in {args.layers} raw layers, median of {repeat}:")
    print(f"  baseline: reading and hashing it at the sha256 limit ({usable_cores()} cores) "
          f"= {hashing:.2f} s")  # fmt: skip
    for name, value in median.items():
        what = name.split(" ")[0]
        fetched = f"{served[what]:,} blob bytes fetched" if what in served else ""
        print(f"  {name:<22} {value * 1000:8.1f} ms  {value / hashing:7.4f}x baseline  {fetched}")
    extra = median["sign (first call)"] - median["manifest (first call)"]
    print(f"  sign - manifest fetch (first calls) = {extra * 1000:.1f} ms (target: well under 1 s)")
    print(f"  blob bytes fetched while signing: {served['sign']:,} of {size:,} "
          f"({served['sign'] / size:.6%}; target 0)")  # fmt: skip
    return 0 if served["sign"] == 0 and extra < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
