"""Tensors from verified safetensors bytes, one tensor at a time.

The safetensors layout is an 8-byte little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the data. :func:`load` parses the
header, checks it (size bounds, known dtypes, ranges that match shapes and tile the
data without gaps or overlaps), then reads the tensors:

- every tensor of a file (the default, and each shard of :func:`load_sharded`): one
  read of the file straight into one buffer of its size, hashed in that same memory as
  it arrives (a second thread reads chunk k+1 while chunk k is hashed); the tensors are
  views of that buffer, returned only once the whole file matches its signature. Peak
  memory is the file's size (the tensors themselves; jax copies them into arrays of its
  own, so twice that for jax), freed when the last tensor of the file is;
- chosen tensors (``tensors=``): each read into a buffer of its own from verified
  bytes, so memory is bounded by the tensors asked for (plus, while a piece of the file
  is proven, the private copy :mod:`omsign.loading` describes).

:func:`load_sharded` follows a verified ``*.safetensors.index.json`` to its shards,
loading shards in parallel. numpy, torch and jax (``np``, ``pt``, ``flax``) are
supported.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from omsign.errors import BackendUnavailableError, IntegrityError, UsageError

if TYPE_CHECKING:
    from omsign.loading import VerifiedFile, VerifiedModel

__all__ = ["FRAMEWORKS", "iter_tensors", "load", "load_sharded", "read_header"]

FRAMEWORKS = ("numpy", "np", "torch", "pt", "jax", "flax")
_ALIASES = {"numpy": "numpy", "np": "numpy", "torch": "torch", "pt": "torch", "jax": "jax"}
_ALIASES["flax"] = "jax"  # safetensors' flax loader returns jax arrays too
# Frameworks omsign does not build tensors for, and how to convert numpy arrays to them.
_CONVERT = {
    "tf": "tf.convert_to_tensor",
    "tensorflow": "tf.convert_to_tensor",
    "paddle": "paddle.to_tensor",
    "mlx": "mlx.core.array",
}
MAX_HEADER = 100 << 20  # bytes; the safetensors library's own bound
# dtype -> (bytes per element, numpy dtype or None, torch dtype name)
_DTYPES: dict[str, tuple[int, str | None, str]] = {
    "F64": (8, "<f8", "float64"),
    "F32": (4, "<f4", "float32"),
    "F16": (2, "<f2", "float16"),
    "BF16": (2, None, "bfloat16"),
    "I64": (8, "<i8", "int64"),
    "I32": (4, "<i4", "int32"),
    "I16": (2, "<i2", "int16"),
    "I8": (1, "i1", "int8"),
    "U8": (1, "u1", "uint8"),
    "U16": (2, "<u2", "uint16"),
    "U32": (4, "<u4", "uint32"),
    "U64": (8, "<u8", "uint64"),
    "BOOL": (1, "?", "bool"),
    "F8_E4M3": (1, None, "float8_e4m3fn"),
    "F8_E5M2": (1, None, "float8_e5m2"),
}


def _bad(name: str, what: str) -> IntegrityError:
    return IntegrityError(f"{name}: not a valid safetensors file: {what}")


def _read_exact(f: VerifiedFile, size: int, name: str) -> bytearray:
    """Exactly ``size`` verified bytes from the current position."""
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            raise _bad(name, "shorter than its header says")
        got += n
    return data


def read_header(f: VerifiedFile, *, proven: bool = True) -> tuple[int, dict[str, dict[str, Any]]]:
    """Reads and checks the header; returns (data start offset, tensor entries).

    With ``proven=False`` the header is read without verification (:meth:`peek`), for a
    whole-file read (:meth:`~omsign.loading.VerifiedFile.read_into_verified`) that checks it.

    Raises:
        IntegrityError: the header is malformed, out of bounds, or its ranges do not
            tile the data exactly.
    """
    start, raw = _header_bytes(f, proven)
    return start, _parse_header(f, raw)


def _header_bytes(f: VerifiedFile, proven: bool) -> tuple[int, bytes]:
    name = f.name
    if f.size < 8:
        raise _bad(name, "shorter than its header")
    f.seek(0)
    head = f.peek(0, 8) if not proven else bytes(_read_exact(f, 8, name))
    length = int.from_bytes(head, "little")
    if length > min(MAX_HEADER, f.size - 8):
        raise _bad(name, f"header of {length} bytes is larger than the file allows")
    raw = f.peek(8, length) if not proven else bytes(_read_exact(f, length, name))
    if len(raw) != length:
        raise _bad(name, "shorter than its header says")
    return 8 + length, head + raw


def _parse_header(f: VerifiedFile, prefix: bytes) -> dict[str, dict[str, Any]]:
    name, raw = f.name, prefix[8:]
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise _bad(name, "header is not JSON") from None
    if not isinstance(header, dict):
        raise _bad(name, "header is not a JSON object")
    header.pop("__metadata__", None)
    start, spans = len(prefix), []
    for tensor, info in header.items():
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise _bad(name, f"tensor {tensor!r} has no known dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (
            isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise _bad(name, f"tensor {tensor!r} has a malformed shape")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
        ):
            raise _bad(name, f"tensor {tensor!r} has malformed data offsets")
        if _elements(shape, f.size) * _DTYPES[dtype][0] != offsets[1] - offsets[0]:
            raise _bad(name, f"tensor {tensor!r} size does not match its shape")
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    end = 0
    for begin, stop in spans:
        if begin != end:
            raise _bad(name, "tensor data overlaps or leaves gaps")
        end = stop
    if start + end != f.size:
        raise _bad(name, "tensor data does not end where the file ends")
    return header


def _elements(shape: list[int], limit: int) -> int:
    """The number of elements of ``shape``, or -1 once it exceeds ``limit``.

    Stops multiplying as soon as the count passes ``limit``, so that a header of many
    huge dimensions costs no more than its length to check.
    """
    if 0 in shape:
        return 0
    count = 1
    for dim in shape:
        count *= dim
        if count > limit:
            return -1
    return count


def _framework(framework: str) -> str:
    """The framework's canonical name, once its module imports.

    Raises:
        UsageError: an unknown framework, or one omsign does not build tensors for.
        BackendUnavailableError: the framework is not installed (the extra is named).
    """
    canonical = _ALIASES.get(framework)
    if canonical is None:
        if framework in _CONVERT:
            raise UsageError(
                f"framework {framework!r} is not supported; load numpy arrays and convert "
                f"them with {_CONVERT[framework]}"
            )
        raise UsageError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    module = {"numpy": "numpy", "torch": "torch", "jax": "jax.numpy"}[canonical]
    try:
        importlib.import_module(module)
    except ImportError:
        extra = "safetensors" if canonical == "numpy" else canonical
        raise BackendUnavailableError(
            f"loading tensors as {framework} needs {module.partition('.')[0]}: "
            f"pip install 'omsign[{extra}]'"
        ) from None
    return canonical


def _check_dtypes(header: dict[str, dict[str, Any]], framework: str, name: str) -> None:
    """Refuses, before anything is read, a dtype the framework cannot hold."""
    if framework == "torch":
        return
    for tensor, info in header.items():
        if _DTYPES[info["dtype"]][1] is None and _ml_dtype(info["dtype"]) is None:
            raise UsageError(
                f"{name}: tensor {tensor!r} is {info['dtype']}, which numpy holds only with "
                "ml_dtypes: pip install ml_dtypes, or load it with torch"
            )


def _ml_dtype(dtype: str) -> Any:
    """The ml_dtypes type of a dtype numpy lacks (bfloat16, float8), if installed."""
    try:
        ml_dtypes = importlib.import_module("ml_dtypes")
    except ImportError:
        return None
    return getattr(ml_dtypes, _DTYPES[dtype][2], None)


def _tensor(data: bytearray | memoryview, info: dict[str, Any], framework: str) -> Any:
    _, numpy_dtype, torch_dtype = _DTYPES[info["dtype"]]
    shape = tuple(info["shape"])
    if framework == "torch":
        import torch

        if not data:
            return torch.empty(shape, dtype=getattr(torch, torch_dtype))
        return torch.frombuffer(data, dtype=getattr(torch, torch_dtype)).reshape(shape)
    import numpy

    dtype = numpy_dtype if numpy_dtype is not None else _ml_dtype(info["dtype"])
    array = numpy.frombuffer(data, dtype=dtype).reshape(shape)
    if framework == "jax":  # copied into the array's own buffer
        return importlib.import_module("jax.numpy").asarray(array)
    return array


def iter_tensors(
    verified: VerifiedModel,
    name: str,
    *,
    framework: str = "numpy",
    tensors: Iterable[str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """Yields ``(tensor name, tensor)`` from a signed safetensors file, verified as read.

    Args:
        verified: from :func:`omsign.open_verified`.
        name: the file's signed name.
        framework: ``numpy`` (or ``np``), ``torch`` (or ``pt``), ``jax`` (or ``flax``).
            bfloat16 and float8 tensors need torch, or ml_dtypes (which jax brings).
        tensors: only these tensors (default: all, in file order).

    Raises:
        IntegrityError: the file is not signed, differs from the signature, or is not a
            valid safetensors file; a tensor asked for is not in it.
        UsageError: an unknown or unsupported framework, or a dtype it cannot hold.
        BackendUnavailableError: the framework is not installed.
    """
    framework = _framework(framework)
    with verified.open_raw(name) as f:
        if tensors is None:  # the whole file: one hashed read
            yield from _scan_all(f, name, framework)
            return
        start, header = read_header(f)
        wanted = list(tensors)
        missing = [t for t in wanted if t not in header]
        if missing:
            raise IntegrityError(f"{name}: no tensor named {missing[0]!r}")
        _check_dtypes({t: header[t] for t in wanted}, framework, name)
        wanted.sort(key=lambda t: header[t]["data_offsets"][0])
        for tensor in wanted:
            begin, end = header[tensor]["data_offsets"]
            f.seek(start + begin)
            data = _read_exact(f, end - begin, name)
            yield tensor, _tensor(data, header[tensor], framework)


def _scan_all(
    f: VerifiedFile,
    name: str,
    framework: str,
    expected: Iterable[str] | None = None,
    index: str | None = None,
    *,
    overlap: bool = True,
) -> Iterator[tuple[str, Any]]:
    """Every tensor, in one sequential read that is hashed as it goes.

    Tensor bytes are copied into the tensors' own buffers while the file is hashed;
    nothing is returned before the whole file is proven, and on a mismatch everything
    is dropped. The header is parsed from the file's leading bytes before they are
    proven, bounded by the signed file size (checked when the file was opened).
    """
    start, prefix = _header_bytes(f, proven=False)
    header = _parse_header(f, prefix)
    _check_dtypes(header, framework, name)
    if expected is not None:
        expected = set(expected)
        missing = sorted(expected - set(header))
        if missing:
            raise IntegrityError(f"{name}: no tensor named {missing[0]!r}")
        extra = sorted(set(header) - expected)
        if extra:
            raise IntegrityError(
                f"{name}: holds tensor {extra[0]!r} that {index} assigns elsewhere"
            )
    from omsign._memory import check_room, new_buffer

    check_room(name, f.size)
    whole = new_buffer(f.size)  # every tensor's bytes, read straight in and then proven
    f.read_into_verified(whole, overlap=overlap)
    if whole[:start] != prefix:  # the layout was planned from bytes that then changed
        raise IntegrityError(f"{name}: changed while it was read (its header differs)")
    data = memoryview(whole)
    for tensor in sorted(header, key=lambda t: header[t]["data_offsets"][0]):
        begin, end = header[tensor]["data_offsets"]
        yield tensor, _tensor(data[start + begin : start + end], header[tensor], framework)


def load(
    verified: VerifiedModel,
    name: str,
    *,
    framework: str = "numpy",
    tensors: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The tensors of a signed safetensors file as a dict (see :func:`iter_tensors`)."""
    return dict(iter_tensors(verified, name, framework=framework, tensors=tensors))


def load_sharded(
    verified: VerifiedModel,
    index: str = "model.safetensors.index.json",
    *,
    framework: str = "numpy",
    workers: int | None = None,
) -> dict[str, Any]:
    """All tensors of a sharded checkpoint, through its verified index.

    Every shard the index names must be signed; each tensor is taken from the shard the
    index assigns it to, and a shard holding a tensor the index does not assign to it is
    refused (a swapped shard).

    Args:
        verified: from :func:`omsign.open_verified`.
        index: the index file's signed name.
        framework: as for :func:`iter_tensors`.
        workers: shards read at once (default: the CPUs this process may use).

    Raises:
        IntegrityError: the index or a shard is not signed or differs, or they disagree.
        ModelError: the shards together are larger than the memory available.
        UsageError: an unknown or unsupported framework.
        BackendUnavailableError: the framework is not installed.
    """
    framework = _framework(framework)
    try:
        weight_map = json.loads(verified.read_bytes(index))["weight_map"]
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"{index}: not a valid safetensors index") from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise IntegrityError(f"{index}: weight_map is not a map of tensor to file")
    folder = index.rpartition("/")[0]
    by_shard: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        by_shard.setdefault(f"{folder}/{shard}" if folder else shard, []).append(tensor)
    from concurrent.futures import ThreadPoolExecutor

    from omsign._memory import check_room
    from omsign.hashing import worker_count

    workers = worker_count(workers)
    # Shards are read and hashed in parallel (reading and hashing release the GIL); each
    # shard also reads ahead in a second thread only when cores would otherwise idle.
    overlap = len(by_shard) < workers
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        files = {name: stack.enter_context(verified.open_raw(name)) for name in by_shard}
        # Every shard is read whole into memory, and a files signature records no size (a
        # shard may have grown on disk since signing): their sizes together, once, before
        # any is read, each file read at the size checked here.
        check_room(index, sum(f.size for f in files.values()), whose="its shards'")

        def one(shard: str) -> dict[str, Any]:
            return dict(
                _scan_all(files[shard], shard, framework, by_shard[shard], index, overlap=overlap)
            )

        with ThreadPoolExecutor(max_workers=min(workers, len(by_shard) or 1)) as pool:
            for tensors in pool.map(one, sorted(by_shard)):
                out.update(tensors)
    return out
