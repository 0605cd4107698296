"""Pickles without a protocol marker (protocols 0 and 1) are recognised by content."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import IntegrityError, UnsafeFormatError
from omsign.integrations import _inflate
from omsign.integrations.gguf import verified_path
from omsign.integrations.unsafe import sniff_length, unsafe_reason


class _Runs:
    """Unpickling this would call os.system (the tests never unpickle anything)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights", "model.dat"])
def test_an_old_protocol_pickle_that_calls_a_global_is_unsafe(name: str, protocol: int) -> None:
    data = pickle.dumps({"w": [1.0, 2.0], "x": _Runs()}, protocol=protocol)
    assert not data.startswith(b"\x80")  # no PROTO marker to go by
    head = data[: sniff_length(name)]
    assert unsafe_reason(name, head) == "a pickle stream (loading it can run code)"


@pytest.mark.parametrize("protocol", [0, 1])
def test_an_old_protocol_pickle_cut_by_the_sniffed_head_is_still_unsafe(protocol: int) -> None:
    data = pickle.dumps([_Runs()] + [f"{i:04}" * 25 for i in range(200)], protocol=protocol)
    head = data[: sniff_length("w.bin")]
    assert len(head) < len(data)
    assert unsafe_reason("w.bin", head) is not None


def test_an_old_protocol_pickle_of_plain_data_is_unsafe_too() -> None:
    data = pickle.dumps({"w": [1, 2, 3]}, protocol=0)
    assert unsafe_reason("w.bin", data) is not None


@pytest.mark.parametrize(
    "data",
    [
        random.Random(7).randbytes(4096),
        struct.pack("<512f", *[float(i) / 3 for i in range(512)]),
        b"cat\ndog\nfish and chips\n" * 50,
        b"(a, b), (c, d)\n" * 100,
        b"N.",
        b"",
    ],
    ids=["random", "float32", "text-lines", "text-parens", "two-bytes", "empty"],
)
def test_data_that_is_not_a_pickle_is_not_refused(data: bytes) -> None:
    assert unsafe_reason("w.bin", data[:4096]) is None


@pytest.mark.parametrize(
    "head",
    [
        b"o\x83\x12\x34\x8b\xff\xff\xff\x7f",  # OBJ with no mark, then an extension code
        b"RNX\xff\xff\x00\x00",  # REDUCE on an empty stack
        b"h\x05R",  # a memo entry fetched that was never stored
        b"N(RX\xff\xff\x00\x00",  # REDUCE reaching below an open mark
        b"NN.",  # STOP with two objects on the stack
        b"(N.",  # STOP inside an open mark
        b"\x8c\x03os.R",  # REDUCE on the one string a protocol 4 opcode pushed
    ],
    ids=[
        "obj-without-mark",
        "reduce-empty",
        "memo-never-stored",
        "across-a-mark",
        "stop-two",
        "stop-in-mark",
        "reduce-one",
    ],
)
def test_opcodes_no_unpickler_could_run_are_not_a_pickle(head: bytes) -> None:
    assert unsafe_reason("w.bin", head) is None


@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
def test_random_bytes_are_not_mistaken_for_a_pickle() -> None:
    # A binary file's first 4 KiB reading as a pickle by chance used to refuse about one
    # random file in a thousand; the stack check makes it vanishingly rare.
    heads = (random.Random(seed).randbytes(4096) for seed in range(20_000))
    assert [h[:16] for h in heads if unsafe_reason("w.bin", h) is not None] == []


# Each of these calls os.system when unpickled (pickle.loads accepts every one of them,
# the one with UTF-8 text when told that encoding).
_CALL = b"cposix\nsystem\n(S'true'\ntR."
EVASIVE = {
    "protocol-4-unframed": b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x8c\x04true\x85R.",
    "protocol-2-text-first": b"\x80\x02X\x02\x00\x00\x00hi0" + _CALL,
    "long-string-first": b"S'" + b"a" * 5000 + b"'\n0" + _CALL,
    "long-binstring-first": b"T" + struct.pack("<i", 9000) + b"a" * 9000 + b"0" + _CALL,
    "mark-then-long-string": b"(X" + struct.pack("<I", 9000) + b"a" * 9000 + b"0" + _CALL,
    "protocol-4-unmarked": b"\x8c\x05posix\x8c\x06system\x93\x8c\x04true\x85R.",
    "protocol-0-and-4-mixed": b"cposix\nsystem\n\x8c\x04true\x85R.",
    "hexadecimal-int-first": b"I0x1\n0" + _CALL,
    "octal-long-first": b"L0o1L\n0" + _CALL,
    "utf8-string-first": b"S'\xc3\xa9'\n0" + _CALL,  # as torch.load(encoding="utf-8") reads
}


@pytest.mark.parametrize("data", EVASIVE.values(), ids=EVASIVE.keys())
def test_pickles_shaped_to_evade_the_first_bytes_are_unsafe(data: bytes) -> None:
    assert unsafe_reason("w.bin", data[: sniff_length("w.bin")], io.BytesIO(data)) is not None


@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@pytest.mark.parametrize("data", EVASIVE.values(), ids=EVASIVE.keys())
def test_random_files_starting_like_an_evasive_pickle_are_not_refused(data: bytes) -> None:
    # The same first byte (or PROTO marker), then random bytes: a long argument skipped
    # lands among bytes that no unpickler could run.
    for seed in range(1000):
        rest = random.Random(seed).randbytes(20_000)
        sample = data[: 2 if data[0] == 0x80 else 1] + rest
        assert unsafe_reason("w.bin", sample[:4096], io.BytesIO(sample)) is None


@pytest.mark.parametrize("name", ["w.bin", "weights"])
def test_evasive_pickles_are_refused_by_verified_reads_and_paths(
    tmp_path: Path, p256: KeyPair, name: str
) -> None:
    model = make_model(tmp_path / "m", {name: EVASIVE["long-binstring-first"]})
    omsign.sign(model, key=p256.private)
    verified = omsign.open_verified(model, key=p256.public)
    with pytest.raises(UnsafeFormatError, match="a pickle stream"):
        verified.read_bytes(name)
    with pytest.raises(UnsafeFormatError, match="a pickle stream"), verified_path(verified, name):
        pass


def test_a_shard_changed_while_the_content_is_judged_leaves_it_to_be_judged_again(
    tmp_path: Path, p256: KeyPair
) -> None:
    # The check skips the long string to the call, in the third shard. That shard is
    # changed while the check reads it, then put back: the check must not end as "safe".
    data = EVASIVE["long-binstring-first"]
    model = make_model(tmp_path / "m", {"w.bin": data})
    omsign.sign(model, key=p256.private, shard_size=4096)
    verified = omsign.open_verified(model, key=p256.public)
    with verified.open_raw("w.bin") as f, open(model / "w.bin", "r+b") as disk:
        disk.seek(8500)
        disk.write(b"b")
        disk.flush()
        with pytest.raises(IntegrityError, match="bytes 8192-"):
            f.read(1)
        disk.seek(8500)
        disk.write(b"a")
        disk.flush()
        with pytest.raises(UnsafeFormatError, match="a pickle stream"):
            f.read(1)


COMPRESSORS = {
    "gzip": gzip.compress,
    "zlib": zlib.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
}


@pytest.mark.parametrize("compress", COMPRESSORS.values(), ids=COMPRESSORS.keys())
def test_compressed_pickles_are_unsafe_and_compressed_text_is_not(
    compress: Callable[[bytes], bytes],
) -> None:
    # joblib.load opens each of these by content, whatever the file's name.
    hostile = compress(pickle.dumps({"w": [1.0] * 100, "x": _Runs()}, protocol=4))
    assert unsafe_reason("model.bin", hostile[:4096], io.BytesIO(hostile)) == (
        "a compressed pickle stream (loading it can run code)"
    )
    text = compress(b"the model is signed\n" * 1000)
    assert unsafe_reason("notes.bin", text[:4096], io.BytesIO(text)) is None


@pytest.mark.parametrize("name", ["model.pkl.gz", "clf.joblib.z", "state.PT.xz"])
def test_compressed_pickle_names_are_refused_by_verified_reads(
    tmp_path: Path, p256: KeyPair, name: str
) -> None:
    model = make_model(tmp_path / "m", {name: gzip.compress(b"anything")})
    omsign.sign(model, key=p256.private)
    verified = omsign.open_verified(model, key=p256.public)
    with pytest.raises(UnsafeFormatError, match="a pickle-based format"):
        verified.read_bytes(name)


@pytest.mark.parametrize("shard_size", [1, 3, 7])
@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps([_Runs()], protocol=0),
        pickle.dumps([_Runs()], protocol=4),
        gzip.compress(pickle.dumps([_Runs()], protocol=2)),
    ],
    ids=["protocol-0", "protocol-4", "gzip"],
)
def test_pickles_are_refused_whatever_the_shard_size(
    tmp_path: Path, p256: KeyPair, shard_size: int, data: bytes
) -> None:
    # A verified read stops at the end of a shard: a line, a marker or a magic number
    # split across shards must still be read whole.
    model = make_model(tmp_path / "m", {"w.bin": data})
    omsign.sign(model, key=p256.private, shard_size=shard_size)
    verified = omsign.open_verified(model, key=p256.public)
    with pytest.raises(UnsafeFormatError, match="pickle stream"):
        verified.read_bytes("w.bin")


LONG = "a" * (2 << 20)  # a string past the first MiB a compressed stream holds


@pytest.mark.parametrize("compress", COMPRESSORS.values(), ids=COMPRESSORS.keys())
def test_a_compressed_pickle_opening_with_a_long_string_is_unsafe(
    compress: Callable[[bytes], bytes],
) -> None:
    hostile = compress(pickle.dumps((LONG, _Runs())))
    assert unsafe_reason("data.bin", hostile[:4096], io.BytesIO(hostile)) == (
        "a compressed pickle stream (loading it can run code)"
    )


@pytest.mark.parametrize(
    ("name", "words"),
    [("model.pkl.gz", "a pickle-based format"), ("data.bin", "a compressed pickle stream")],
)
def test_a_compressed_pickle_opening_with_a_long_string_is_refused_by_verified_reads(
    tmp_path: Path, p256: KeyPair, name: str, words: str
) -> None:
    model = make_model(tmp_path / "m", {name: gzip.compress(pickle.dumps((LONG, _Runs())))})
    omsign.sign(model, key=p256.private)
    verified = omsign.open_verified(model, key=p256.public)
    with pytest.raises(UnsafeFormatError, match=words):
        verified.read_bytes(name)


def _safetensors(data: bytes) -> bytes:
    header = json.dumps(
        {"w": {"dtype": "U8", "shape": [len(data)], "data_offsets": [0, len(data)]}}
    )
    return struct.pack("<Q", len(header)) + header.encode() + data


_WEIGHTS = np.random.default_rng(3).normal(0, 0.02, 3 << 18)
COMPRESSED_DATA = {
    "random": random.Random(5).randbytes(3 << 20),
    "float32": _WEIGHTS.astype("<f4").tobytes(),
    "float16": _WEIGHTS.astype("<f2").tobytes(),
    "int64": np.arange(1 << 18, dtype="<i8").tobytes(),
    "safetensors": _safetensors(_WEIGHTS.astype("<f4").tobytes()),
    "text": b"The model is signed and verified as it is loaded.\n" * 60_000,
    "long-line": b"Tokens " * 400_000,
}


@pytest.mark.parametrize("data", COMPRESSED_DATA.values(), ids=COMPRESSED_DATA.keys())
def test_compressed_data_of_several_mib_is_not_refused(data: bytes) -> None:
    # Each breaks the walk, or opens with what reads as a long argument: the text with T
    # (BINSTRING), whose length read from "he m" runs far past the 3 MB it holds.
    assert len(data) > 1 << 20
    packed = gzip.compress(data, compresslevel=1)
    assert unsafe_reason("data.bin", packed[:4096], io.BytesIO(packed)) is None


def test_a_pickle_consistent_where_decompression_stops_is_unsafe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bound on what is decompressed (over 4 GiB) is lowered so that the long string
    # outlasts it: the walk stops inside it, every opcode so far consistent.
    monkeypatch.setattr(_inflate, "LIMIT", 1 << 20)
    hostile = gzip.compress(pickle.dumps((LONG, _Runs())))
    assert unsafe_reason("data.bin", hostile[:4096], io.BytesIO(hostile)) is not None
