"""The pickle walk of :mod:`.unsafe`: a stream's opcodes followed the way an unpickler
runs them, tracking the shape of its stack and memo, never running anything.

CPython's unpickler (that of ``pickle.loads`` and ``torch.load``) is the reference: any
stream it runs up to an import or a call must walk as a pickle, while weights, text and
random bytes break the walk within a few opcodes.
"""

from __future__ import annotations

import copyreg
import io
import pickletools
import warnings
from typing import Any, BinaryIO

from omsign.errors import Error
from omsign.integrations._inflate import LimitError, read_up_to

__all__ = ["LINE", "walks_as_pickle"]


LINE = 4096  # a newline-ended argument longer than this is skipped, not decoded
# Walking arbitrary bytes as protocol 0 STRING arguments makes pickletools decode their
# escapes, which warns about invalid ones: the walk is a test, not an unpickling.
warnings.filterwarnings(
    "ignore", message="invalid escape sequence", category=DeprecationWarning, module="pickletools"
)

# Opcodes through which unpickling reaches a callable (imports it, calls it, or sets state).
_CODE_OPCODES = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
    | {"EXT1", "EXT2", "EXT4"}  # a registered extension code: imported as GLOBAL is
)
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
# Opcodes whose result is never a string (whatever else pushes may be one).
_NEVER_STR = frozenset(
    {op.name for op in pickletools.opcodes if op.name.startswith(("EMPTY_", "TUPLE"))}
    | {"NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1"}
    | {"LONG4", "FLOAT", "BINFLOAT", "APPEND", "APPENDS", "LIST", "DICT", "SETITEM"}
    | {"SETITEMS", "ADDITEMS", "FROZENSET", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
    | {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}
)
# Opcodes that import a module: once one has run, so may the module's code.
_IMPORTS = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"})
# A head cut inside a stream this long, every opcode consistent, is a pickle even when
# no global shows before the cut (one may well follow it).
_LONG_RUN = 16


class _Stack:
    """The shape of an unpickler's stack (items and marks), never the objects themselves.

    Each opcode is checked against what pickletools says it takes and leaves, and the
    memo against what was stored: a real pickle never pops what is not there, crosses a
    mark, or fetches a memo entry it never stored. Random bytes that happen to read as
    opcodes break one of these within a few steps. Each item records whether it may be a
    string (STACK_GLOBAL imports only from two strings).
    """

    def __init__(self, memo: set[object] | None = None) -> None:
        self.items: list[bool] = []  # per item on the stack: may it be a string
        self.marks: list[int] = []  # the depth at which each open mark was pushed
        self.memo: set[object] = set() if memo is None else memo

    @property
    def depth(self) -> int:
        """Items on the stack, marks not counted."""
        return len(self.items)

    @property
    def floor(self) -> int:
        """The depth below which the next opcode may not reach (the last open mark)."""
        return self.marks[-1] if self.marks else 0

    def step(self, opcode: pickletools.OpcodeInfo, arg: object) -> bool:
        """Applies one opcode; False if no unpickler could run it here."""
        before, after = opcode.stack_before, opcode.stack_after
        floor = self.floor
        if opcode.name in _PUTS or opcode.name == "MEMOIZE":
            if self.depth <= floor:
                return False
            self.memo.add(len(self.memo) if opcode.name == "MEMOIZE" else arg)
        elif opcode.name in _GETS and arg not in self.memo:
            return False
        elif opcode.name == "STACK_GLOBAL" and not all([*self.items[-2:], self.depth >= 2]):
            return False  # the unpickler takes a module and a name as strings, or stops
        if pickletools.markobject in before:
            if not self.marks:
                return False
            below = before.index(pickletools.markobject)
            above = len(before) - below - 1 - (pickletools.stackslice in before)
            if self.depth - floor < above:
                return False
            del self.items[self.marks.pop() :]
            floor = self.floor
            taken = below
        elif opcode.name == "POP" and self.marks and self.depth == floor:
            self.marks.pop()  # POP of a mark drops the mark
            return True
        else:
            taken = len(before)
        if self.depth - taken < floor:
            return False
        top = self.items[-1:]
        del self.items[self.depth - taken :]
        if pickletools.markobject in after:
            self.marks.append(self.depth)
        elif opcode.name == "DUP":
            self.items += top * 2
        else:
            self.items += [opcode.name not in _NEVER_STR] * len(after)
        return True


class _CutError(Exception):
    """The stream ends inside an opcode or its argument."""


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = read_up_to(stream, size)
    if len(data) < size:
        raise _CutError
    return data


def _skip_line(stream: BinaryIO, kept: bytes) -> None:
    """Moves past the newline that ends a line longer than :data:`LINE`."""
    while b"\n" not in kept:
        kept = stream.read(LINE)
        if not kept:
            raise _CutError
    stream.seek(kept.index(b"\n") + 1 - len(kept), io.SEEK_CUR)


def _line(stream: BinaryIO) -> bytes | None:
    """The next line, newline included; None, once past it, for one over :data:`LINE`."""
    line = b""
    while b"\n" not in line:
        if len(line) >= LINE:
            _skip_line(stream, b"")
            return None
        chunk = stream.read(LINE - len(line))  # a verified read stops at a shard's end
        if not chunk:
            raise _CutError
        line += chunk
    cut = line.index(b"\n") + 1
    stream.seek(cut - len(line), io.SEEK_CUR)
    return line[:cut]


_NUMBERS = frozenset({"INT", "LONG", "FLOAT", "PUT", "GET"})


def _integer(text: bytes) -> int:
    """An integer as an unpickler reads it: decimal, or with a 0x, 0o, 0b or 0 prefix."""
    for base in (10, 0, 8):
        try:
            return int(text, base)
        except ValueError:
            continue
    raise ValueError("not an integer")


def _argument(opcode: pickletools.OpcodeInfo, stream: BinaryIO, end: int) -> object:
    """Reads an opcode's argument, skipping (never reading) one given by a length.

    Raises:
        _CutError: the stream ends inside the argument.
        ValueError: the argument is malformed (no unpickler would accept it).
    """
    arg = opcode.arg
    if arg is None:
        return None
    if arg.n >= 0:
        return arg.reader(io.BytesIO(_read_exact(stream, arg.n)))
    if arg.n == pickletools.UP_TO_NEWLINE:
        found = [_line(stream) for _ in range(2 if arg.name == "stringnl_noescape_pair" else 1)]
        lines = [line for line in found if line is not None]
        if len(lines) < len(found):  # a long line (a long string): its value is not needed
            return None
        text = lines[0][:-1]
        if opcode.name in _NUMBERS:  # the C unpickler reads a number up to a NUL byte
            number = text.removesuffix(b"L").partition(b"\0")[0]
            if opcode.name == "FLOAT":
                return float(number)
            if opcode.name == "INT" and not number:
                return 0  # strtol reads nothing and stops at the NUL
            # INT and LONG in any base, as C does; a memo index in base 10
            return _integer(number) if opcode.name in ("INT", "LONG") else int(number, 10)
        if arg.name == "stringnl_noescape_pair":  # names to import, read as UTF-8
            for name in lines:
                if len(name) < 2:
                    raise ValueError("empty name")
                name.decode("utf-8")
        if arg.name == "stringnl":  # quoted; its text decoded as the unpickler is told
            if len(text) < 2 or text[0] != text[-1] or text[:1] not in (b"'", b'"'):
                raise ValueError("no quotes")
            return None
        return arg.reader(io.BytesIO(b"".join(lines)))
    width = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT8U: 8}
    size = int.from_bytes(
        _read_exact(stream, width.get(arg.n, 4)),
        "little",
        signed=arg.n == pickletools.TAKEN_FROM_ARGUMENT4,
    )
    if size < 0:
        raise ValueError("negative length")
    if stream.tell() + size > end:
        raise _CutError
    stream.seek(size, io.SEEK_CUR)
    return None


def walks_as_pickle(stream: BinaryIO) -> bool:
    """A pickle stream of any protocol, walked from the start of ``stream``.

    The stream is walked as pickle opcodes without executing anything, tracking the
    shape of the unpickler's stack and memo: every opcode must fit the stack as it
    stands (opcodes of any protocol, PROTO marker or not: unpicklers do not check).
    Arguments given by a length (strings, bytes) are skipped, not read, so a long string
    does not hide what follows it. A walk that reaches STOP with exactly the result on
    the stack is a pickle of three opcodes or more; after a shorter one the next pickle
    is walked (loaders read several in a row). A walk that stops at what no unpickler
    runs is a pickle once it has imported a global (an unpickler ran it up to there); a
    stream that ends inside the walk, once it has named or called a global or shown a
    PROTO marker and two opcodes; a consistent run of :data:`_LONG_RUN` opcodes is a
    pickle, and so is a walk through a compressed stream still consistent where its
    decompression stops (:data:`._inflate.LIMIT`).
    Weights, text and other binary data break the walk within a few bytes.
    """
    end = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    head = read_up_to(stream, 2)
    stream.seek(0)
    marked = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    stack = _Stack()
    seen: set[str] = set()
    count = 0
    try:
        while count < _LONG_RUN:
            code = stream.read(1)
            if not code:
                break
            opcode = _OPCODES.get(code[0])
            if opcode is None:  # the unpickler stops here, having run what came before
                return _ran_code(seen, count)
            arg = _argument(opcode, stream, end)
            if opcode.name == "STOP":
                if stack.depth == 1 and not stack.marks and count + 1 >= 3:
                    return True
                if stack.depth <= stack.floor:
                    break
                # A result is returned and a loader may read another pickle right after
                # (PyTorch's legacy format is four in a row): a new unpickler goes on, or
                # the same one, its memo kept.
                stack, count = _Stack(stack.memo), count + 1
                continue
            if opcode.name.startswith("EXT") and arg not in _extension_codes():
                return _ran_code(seen, count)  # an unregistered code: the unpickler stops
            if not stack.step(opcode, arg):
                return _ran_code(seen, count)
            seen.add(opcode.name)
            count += 1
        else:
            return True
    except _CutError:
        pass
    except LimitError:  # still consistent as far as a compressed stream may be followed
        return True
    except Error:  # the stream could not be read as verified: no verdict
        raise
    except Exception:  # a malformed argument (bad text, a number out of range)
        return _ran_code(seen, count)
    # Stopped or cut: an unpickler has run everything walked so far.
    return (bool(seen & _CODE_OPCODES) and count >= 2) or (marked and count >= 3)


def _ran_code(seen: set[str], count: int) -> bool:
    """Whether an unpickler that stops here (at an opcode it cannot run) has imported
    a module, and so may have run its code, or called what it imported."""
    return bool(seen & _IMPORTS) and count >= 2


def _extension_codes() -> Any:
    """The extension codes the unpickler knows (``copyreg.add_extension``)."""
    return getattr(copyreg, "_inverted_registry", {})  # the registry the unpickler reads


_OPCODES = {ord(op.code.encode("latin-1")): op for op in pickletools.opcodes}
