"""The modelscan adapter: runs modelscan's enabled scanners with its default settings.

modelscan scans a ``Model`` made of a name and a stream: each file is handed over as
its verified stream, and each member of a zip archive (a PyTorch checkpoint) as a
member stream, as modelscan itself walks archives. modelscan picks the formats by file
suffix; a file whose content omsign found to be a pickle stream is scanned as a pickle
whatever its name.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from omsign.scanners._base import ScanFailedError

__all__ = ["DISTRIBUTION", "EXTRA", "NAME", "reads", "scan"]

NAME = "modelscan"
DISTRIBUTION = "modelscan"
EXTRA = "scan-modelscan"
_SUFFIXES = (
    ".pkl", ".pickle", ".joblib", ".dill", ".dat", ".data", ".bin", ".pt", ".pth", ".ckpt",
    ".npy", ".h5", ".keras", ".pb", ".zip", ".npz",
)  # fmt: skip


def reads(name: str) -> bool:
    """Whether modelscan scans a file of this name by itself."""
    return name.lower().endswith(_SUFFIXES)


def _tools() -> tuple[dict[str, Any], Any, list[Any]]:
    """modelscan's default settings, its middleware pipeline and its enabled scanners."""
    from modelscan.middlewares.middleware import MiddlewarePipeline
    from modelscan.settings import DEFAULT_SETTINGS

    settings: dict[str, Any] = DEFAULT_SETTINGS
    pipeline = MiddlewarePipeline.from_settings(settings["middlewares"])
    scanners = []
    for path, options in settings["scanners"].items():
        if options.get("enabled"):
            module, name = path.rsplit(".", 1)
            scanners.append(getattr(importlib.import_module(module), name)(settings))
    return settings, pipeline, scanners


def _models(name: str, stream: BinaryIO, archive: zipfile.ZipFile | None) -> Iterator[Any]:
    from modelscan.model import Model

    yield Model(name, stream)
    if archive is not None:
        for member in archive.namelist():
            with archive.open(member) as data:
                yield Model(f"{name}:{member}", data)


def scan(name: str, stream: BinaryIO, pickle_content: bool) -> list[str]:
    """The issues modelscan reports for one file (empty: none).

    Raises:
        ScanFailedError: modelscan failed on it, or has no scanner for it.
    """
    from modelscan.settings import SupportedModelFormats

    _, pipeline, scanners = _tools()
    findings: list[str] = []
    errors: list[str] = []
    ran = False
    is_zip = zipfile.is_zipfile(stream)
    stream.seek(0)
    archive = zipfile.ZipFile(stream) if is_zip else None
    try:
        for model in _models(name, stream, archive):
            pipeline.run(model)
            if pickle_content and not is_zip and not model.get_context("formats"):
                model.set_context("formats", [SupportedModelFormats.PICKLE])
            for scanner in scanners:
                results = scanner.scan(model)
                if results is None:
                    continue
                ran = True
                where = str(model.get_source())
                where = f", in {where.removeprefix(name + ':')}" if where != name else ""
                findings += [
                    f"{i.details.output_json().get('description', '')} ({i.severity.name}{where})"
                    for i in results.issues
                ]
                errors += [f"{e.message}" for e in results.errors]
    finally:
        if archive is not None:
            archive.close()
    if findings:
        return findings
    if errors:
        raise ScanFailedError(f"modelscan failed: {'; '.join(errors)}")
    if not ran:
        raise ScanFailedError("modelscan has no scanner for it")
    return []
