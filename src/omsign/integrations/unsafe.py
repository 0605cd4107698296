"""Which files are unsafe to load: pickle in any of its disguises.

A signature says who shipped a file, not that loading it is safe: unpickling runs
code. Verified loading refuses these unless the caller allows them explicitly:
``.pt``, ``.pth``, ``.ckpt``, ``.pkl``, ``.pickle``, ``.joblib``, ``.dill``; a ``.bin``
(or any other name) that holds a pickle stream of any protocol (0 and 1 have no marker:
their opcodes are walked, never run) or a PyTorch zip archive; ``.npy`` object arrays
and ``.npz`` archives holding one.
"""

from __future__ import annotations

import ast
import io
import pickletools
import zipfile
from typing import BinaryIO

__all__ = ["PICKLE_SUFFIXES", "sniff_length", "unsafe_by_name", "unsafe_reason"]

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill")
# Formats that are never unpickled: their content is not sniffed (a safetensors header
# length can begin with the bytes of a pickle protocol marker).
_SAFE_SUFFIXES = (".safetensors", ".json", ".txt", ".md", ".gguf", ".jinja", ".onnx")
# What follows PROTO 2/3 in a real pickle: a container, a global, a mark, a memo, a long.
_AFTER_PROTO = frozenset(b"}](cq\x8a\x8c\x95")
_HEAD = 4096  # bytes of a file that the checks below look at


def sniff_length(name: str) -> int:
    """How many leading bytes :func:`unsafe_reason` needs for this name (0: none)."""
    return 0 if name.lower().endswith(PICKLE_SUFFIXES + _SAFE_SUFFIXES) else _HEAD


def unsafe_by_name(name: str) -> str | None:
    """Why a file is unsafe by its name alone (a pickle-based suffix), or None."""
    if name.lower().endswith(PICKLE_SUFFIXES):
        return "a pickle-based format (loading it can run code)"
    return None


def _is_pickle(head: bytes) -> bool:
    """A pickle stream of protocol 2 or later: PROTO, the protocol, then a pickle opcode."""
    if len(head) < 3 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        return False
    return head[2] == 0x95 if head[1] >= 4 else head[2] in _AFTER_PROTO


# Opcodes through which unpickling reaches a callable (imports it, calls it, or sets state).
_CODE_OPCODES = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
)


def _is_text_pickle(head: bytes) -> bool:
    """A protocol 0 or 1 pickle stream (no PROTO marker).

    The head is walked as pickle opcodes without executing anything: it must parse to
    its end or to STOP with no unknown opcode, and either name or call a global, or be a
    whole pickle of three opcodes or more. Weights, text and other binary data stop at
    an unknown opcode within a few bytes.
    """
    seen: set[str] = set()
    count = 0
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(head)):
            seen.add(opcode.name)
            count += 1
            if opcode.name == "STOP":
                return count >= 3 or bool(seen & _CODE_OPCODES)
    except ValueError as exc:
        if "unknown" in str(exc) or not seen:  # not a pickle opcode: not a pickle
            return False
        # Anything else is the head ending inside an argument: judge what was read.
    except Exception:  # a malformed argument (bad text, a number out of range)
        return False
    return bool(seen & _CODE_OPCODES) and count >= 2


def _npy_is_object(head: bytes) -> bool:
    """Whether an ``.npy`` header declares an object (pickled) dtype."""
    if not head.startswith(b"\x93NUMPY") or len(head) < 10:
        return False
    major = head[6]
    size_bytes = 2 if major == 1 else 4
    size = int.from_bytes(head[8 : 8 + size_bytes], "little")
    text = head[8 + size_bytes : 8 + size_bytes + size].decode("latin-1", "replace")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return True  # unreadable: numpy would refuse it too; do not guess it is safe
    descr = header.get("descr") if isinstance(header, dict) else None
    return "O" in str(descr)


def unsafe_reason(name: str, head: bytes, stream: BinaryIO | None = None) -> str | None:
    """Why ``name`` is unsafe to load, or None.

    Args:
        name: the file's name.
        head: its first :func:`sniff_length` bytes.
        stream: the file, seekable, for ``.npz`` archives (whose members are checked).
    """
    lower = name.lower()
    by_name = unsafe_by_name(name)
    if by_name is not None:
        return by_name
    if lower.endswith(_SAFE_SUFFIXES):
        return None
    if _is_pickle(head) or _is_text_pickle(head):
        return "a pickle stream (loading it can run code)"
    if head.startswith(b"PK\x03\x04") and lower.endswith((".bin", ".pt", ".model")):
        return "a PyTorch zip archive holding a pickle (loading it can run code)"
    if lower.endswith(".npy") and _npy_is_object(head):
        return "a NumPy object array (loading it unpickles)"
    if lower.endswith(".npz") and stream is not None:
        try:
            with zipfile.ZipFile(stream) as archive:
                for member in archive.namelist():
                    with archive.open(member) as f:
                        if _npy_is_object(f.read(_HEAD)):
                            return f"a NumPy archive whose {member} is an object array"
        except zipfile.BadZipFile:
            return None
    return None
