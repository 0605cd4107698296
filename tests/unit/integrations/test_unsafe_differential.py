"""The pickle walk against CPython's unpickler: every stream that reaches a callable when
unpickled is refused.

The streams are real ``pickle.dumps`` output (protocols 0 to 5, optimized or not, in
containers, after long strings and bytes, with persistent ids, shared objects, extension
codes, NEWOBJ, NEWOBJ_EX and BUILD) and hand-assembled opcode sequences (INST, OBJ,
STACK_GLOBAL from every kind of string, frames of odd sizes, odd number spellings before
the call, junk or a second pickle after it). Each is first unpickled here, its payload
recording the call in a list instead of running anything, and kept only if the call
happened; then :func:`unsafe_reason` must refuse it, as it is and gzip-compressed.
"""

from __future__ import annotations

import copyreg
import gzip
import io
import pickle
import pickletools
import random
import struct
from collections.abc import Iterator

import pytest

from omsign.integrations.unsafe import sniff_length, unsafe_reason

CALLS: list[str] = []


def record(tag: str = "") -> str:
    """The payload's callable: records that unpickling reached it."""
    CALLS.append(tag)
    return tag


class Reduces:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (record, ("reduce",))


class NewArgs:
    def __new__(cls, *args: object, **kwargs: object) -> NewArgs:
        CALLS.append("new")
        return super().__new__(cls)

    def __getnewargs__(self) -> tuple[int]:
        return (1,)


class NewArgsEx(NewArgs):
    def __getnewargs_ex__(self) -> tuple[tuple[int], dict[str, int]]:
        return ((1,), {"k": 2})


class SetsState:
    def __init__(self, *args: object) -> None:
        CALLS.append("init")

    def __reduce__(self) -> tuple[object, tuple[()], dict[str, int]]:
        return (SetsState, (), {"w": 1})

    def __setstate__(self, state: object) -> None:
        CALLS.append("setstate")


class _Pids(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        return f"storage-{obj}" if isinstance(obj, float) else None


class _Loads(pickle.Unpickler):
    def persistent_load(self, pid: object) -> object:
        return pid


def _reaches_a_callable(data: bytes) -> bool:
    """Unpickles ``data`` as loaders do, pickle after pickle from one stream (PyTorch's
    legacy format reads four in a row, each with a new unpickler; one unpickler loading
    again keeps its memo), and tells whether the payload was called."""
    CALLS.clear()
    for fresh in (True, False):
        stream = io.BytesIO(data)
        unpickler = _Loads(stream)
        try:
            for _ in range(4):
                (_Loads(stream) if fresh else unpickler).load()
        except Exception:  # the stream's end or a malformed opcode: what ran has run
            pass
    return bool(CALLS)


def _dumps(obj: object, protocol: int, pids: bool = False) -> bytes:
    if not pids:
        return pickle.dumps(obj, protocol=protocol)
    out = io.BytesIO()
    _Pids(out, protocol=protocol).dump(obj)
    return out.getvalue()


def _wrapped(payload: object, rng: random.Random) -> Iterator[object]:
    shared = [1.5, "s" * 3]
    yield payload
    yield [payload]
    yield {"w": [0.25, 0.5], "x": payload}
    yield (1, payload)
    yield {payload}
    yield frozenset({payload, 3})
    yield [bytearray(b"a" * rng.randrange(300)), payload]
    yield [b"b" * rng.choice([3, 255, 256, 70_000]), payload]
    yield ["c" * rng.choice([3, 255, 256, 70_000]), payload]
    yield [shared, shared, {"m": shared}, payload, shared]
    yield {i: [shared, str(i)] for i in range(rng.randrange(1, 40))} | {"p": payload}


def _pickled() -> Iterator[tuple[str, bytes]]:
    rng = random.Random(1)
    for payload in (Reduces(), NewArgs(), NewArgsEx(), SetsState()):
        for n, obj in enumerate(_wrapped(payload, rng)):
            for protocol in range(6):
                for pids in (False, True):
                    data = _dumps(obj, protocol, pids)
                    name = f"{type(payload).__name__}-{n}-p{protocol}-pid{pids:d}"
                    yield name, data
                    yield name + "-optimized", pickletools.optimize(data)


_MOD, _NAME = record.__module__.encode(), record.__qualname__.encode()
_INST = (_MOD, NewArgs.__qualname__.encode())


def _unicode(text: bytes, rng: random.Random) -> bytes:
    """A string pushed by one of the opcodes that make strings, chosen by ``rng``."""
    return rng.choice(
        [
            b"\x8c" + bytes([len(text)]) + text,
            b"X" + struct.pack("<I", len(text)) + text,
            b"\x8d" + struct.pack("<Q", len(text)) + text,
            b"V" + text + b"\n",
            b"S'" + text + b"'\n",
            b"U" + bytes([len(text)]) + text,
            b"T" + struct.pack("<i", len(text)) + text,
        ]
    )


def _call(rng: random.Random) -> bytes:
    """Opcodes that import the payload's callable and call it, leaving one object."""
    arg = _unicode(b"t", rng)
    return rng.choice(
        [
            b"c" + _MOD + b"\n" + _NAME + b"\n(" + arg + b"tR",
            b"c" + _MOD + b"\n" + _NAME + b"\n" + arg + b"\x85R",
            _unicode(_MOD, rng) + _unicode(_NAME, rng) + b"\x93" + arg + b"\x85R",
            _unicode(_MOD, rng) + b"\x94" + _unicode(_NAME, rng) + b"\x93)R",
            b"(i" + _INST[0] + b"\n" + _INST[1] + b"\n",
            b"(c" + _INST[0] + b"\n" + _INST[1] + b"\no",
            b"c" + _INST[0] + b"\n" + _INST[1] + b"\n)\x81",
            b"c" + _INST[0] + b"\n" + _INST[1] + b"\n)}\x92",
        ]
    )


# Opcodes that an unpickler runs ahead of the call, leaving the stack as it was.
_PREFIXES = [
    b"",
    b"N0",
    b"I0x1\n0",
    b"I1\x00z\n0",
    b"I\x00\n0",
    b"L5\x00L\n0",
    b"F1.5\x00z\n0",
    b"F1e3\n0",
    b"Np1\x00q\n0g1\x00\n0",
    b"S'" + b"a" * 5000 + b"'\n0",
    b"T" + struct.pack("<i", 9000) + b"a" * 9000 + b"0",
    b"B" + struct.pack("<I", 300) + b"b" * 300 + b"0",
    b"\x96" + struct.pack("<Q", 5) + b"bytes0",
    b"(N(\x8c\x01a1",
    b"N\x8a\x01\x01(1",
    b"]\x94(K\x01K\x02e0",
    b"N.",  # a pickle of its own: a loader reads the next one after it
    b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.",  # PyTorch's legacy magic number
    b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.",
]
_SUFFIXES = [b".", b"", b"\xff", b"R", b"0R", b"h\x07", b"I1x\n", b"\x82\xf0", b"N."]


def _framed(body: bytes, rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 3, len(body) // 2, len(body), len(body) + 1])
    return b"\x95" + struct.pack("<Q", size) + body


def _assembled() -> Iterator[tuple[str, bytes]]:
    rng = random.Random(2)
    for n in range(1500):
        prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
        body = prefix + _call(rng) + suffix
        if rng.random() < 0.3:
            body = _framed(body, rng)
        marker = rng.choice([b"", b"", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"])
        yield f"assembled-{n}", marker + body


@pytest.fixture(scope="module")
def extension_code() -> Iterator[int]:
    """The payload's callable registered as an extension code, as ``copyreg`` allows."""
    code = 0xF0
    copyreg.add_extension(record.__module__, record.__qualname__, code)
    yield code
    copyreg.remove_extension(record.__module__, record.__qualname__, code)


def _refused(data: bytes) -> bool:
    head = data[: sniff_length("w.bin")]
    return unsafe_reason("w.bin", head, io.BytesIO(data)) is not None


@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
def test_every_stream_that_reaches_a_callable_is_refused(extension_code: int) -> None:
    cases = dict(_pickled()) | dict(_assembled())
    ext = bytes([0x82, extension_code])
    for n in range(4):
        cases[f"extension-{n}"] = [b"", b"N0", b"\x80\x02", b"\x80\x04"][n] + ext + b")R."
    cases["pickled-extension"] = pickle.dumps(Reduces(), protocol=2)
    # The module's name stored by a first pickle, fetched by the next one.
    stored = _unicode(_MOD, random.Random(3)) + b"\x94N."
    cases["memo-across-pickles"] = (
        stored + b"h\x00" + _unicode(_NAME, random.Random(4)) + b"\x93)R."
    )
    assert ext in cases["pickled-extension"]
    running = {name: data for name, data in cases.items() if _reaches_a_callable(data)}
    assert len(running) > 0.8 * len(cases)  # the generator builds what unpicklers run
    missed = [name for name, data in running.items() if not _refused(data)]
    assert missed == []
    packed = [
        name for name, data in running.items() if not _refused(gzip.compress(data, 1, mtime=0))
    ]
    assert packed == []


def test_an_unpickler_starts_at_the_first_byte() -> None:
    # No leading junk is skipped: a byte that is no opcode ends the load before the call.
    call = b"c" + _MOD + b"\n" + _NAME + b"\n)R."
    assert _reaches_a_callable(call)
    opcodes = {ord(op.code.encode("latin-1")) for op in pickletools.opcodes}
    for byte in sorted(set(range(256)) - opcodes):
        assert not _reaches_a_callable(bytes([byte]) + call), byte
