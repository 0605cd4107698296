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
import warnings
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
# Walking arbitrary bytes as protocol 0 STRING arguments makes pickletools decode their
# escapes, which warns about invalid ones: the walk is a test, not an unpickling.
warnings.filterwarnings(
    "ignore", message="invalid escape sequence", category=DeprecationWarning, module="pickletools"
)


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


_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
# A head cut inside a stream this long, every opcode consistent, is a pickle even when
# no global shows before the cut (one may well follow it).
_LONG_RUN = 16


class _Stack:
    """The shape of an unpickler's stack (items and marks), never the objects themselves.

    Each opcode is checked against what pickletools says it takes and leaves, and the
    memo against what was stored: a real pickle never pops what is not there, crosses a
    mark, or fetches a memo entry it never stored. Random bytes that happen to read as
    opcodes break one of these within a few steps.
    """

    def __init__(self) -> None:
        self.depth = 0  # items on the stack, marks not counted
        self.marks: list[int] = []  # the depth at which each open mark was pushed
        self.memo: set[object] = set()

    def step(self, opcode: pickletools.OpcodeInfo, arg: object) -> bool:
        """Applies one opcode; False if no unpickler could run it here."""
        before, after = opcode.stack_before, opcode.stack_after
        floor = self.marks[-1] if self.marks else 0
        if opcode.name in _PUTS:
            if self.depth <= floor:
                return False
            self.memo.add(arg)
        elif opcode.name in _GETS and arg not in self.memo:
            return False
        if pickletools.markobject in before:
            if not self.marks:
                return False
            below = before.index(pickletools.markobject)
            above = len(before) - below - 1 - (pickletools.stackslice in before)
            if self.depth - floor < above:
                return False
            self.depth = self.marks.pop()
            floor = self.marks[-1] if self.marks else 0
            taken = below
        elif opcode.name == "POP" and self.marks and self.depth == floor:
            self.marks.pop()  # POP of a mark drops the mark
            return True
        else:
            taken = len(before)
        if self.depth - taken < floor:
            return False
        self.depth -= taken
        if pickletools.markobject in after:
            self.marks.append(self.depth)
        else:
            self.depth += len(after)
        return True


def _is_text_pickle(head: bytes) -> bool:
    """A protocol 0 or 1 pickle stream (no PROTO marker).

    The head is walked as pickle opcodes without executing anything, tracking the shape
    of the unpickler's stack and memo: every opcode must be one protocols 0 and 1 know and
    fit the stack as it stands. A walk that reaches STOP with exactly the result on the
    stack is a pickle of three opcodes or more, or one that names or calls a global; a
    head that ends inside the stream is a pickle once it has named or called a global, or
    has run consistently for a long stretch. Weights, text and other binary data break
    the walk within a few bytes.
    """
    stack = _Stack()
    seen: set[str] = set()
    count = 0
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(head)):
            if opcode.proto > 1:
                return False  # protocols 2+ begin with PROTO (checked by _is_pickle)
            if opcode.name == "STOP":
                whole = stack.depth == 1 and not stack.marks
                return whole and (count + 1 >= 3 or bool(seen & _CODE_OPCODES))
            if not stack.step(opcode, arg):
                return False
            seen.add(opcode.name)
            count += 1
    except ValueError as exc:
        if "unknown" in str(exc) or not seen:  # not a pickle opcode: not a pickle
            return False
        # Anything else is the head ending inside an argument: judge what was read.
    except Exception:  # a malformed argument (bad text, a number out of range)
        return False
    return (bool(seen & _CODE_OPCODES) and count >= 2) or count >= _LONG_RUN


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
