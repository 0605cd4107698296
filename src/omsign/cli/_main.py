"""Argument parsing for every subcommand, and the error-to-exit-code mapping."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO, cast

from omsign._version import __version__
from omsign.cli import _attest, _digest, _inspect, _lineage, _policy, _pubkey, _sign, _verify

__all__ = ["build_parser", "dispatch"]

_DESCRIPTION = """\
Sign and verify machine-learning models (a file or a directory tree) in the
OpenSSF Model Signing format, OMS v1.0.

  omsign sign MODEL --key private.pem          sign with a key
  omsign verify MODEL --key public.pem         check the signature and every file
  omsign sign MODEL                            sign keyless with Sigstore (browser login)
  omsign verify MODEL --identity you@example.com --issuer https://accounts.google.com
  omsign inspect MODEL/model.sig               show who signed what, without verifying

The signature goes to MODEL/model.sig (directory) or MODEL.sig (file) by default.
Exit codes: 0 ok, 1 verification failed, 2 usage or environment error.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def build_parser() -> argparse.ArgumentParser:
    """The full ``omsign`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="omsign", description=_DESCRIPTION, formatter_class=_Formatter, allow_abbrev=False
    )
    parser.add_argument("-V", "--version", action="version", version=f"omsign {__version__}")
    _add_output_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (_sign, _verify, _attest, _digest, _inspect, _pubkey, _policy, _lineage):
        module.add_parser(sub, _Formatter)
    for command in sub.choices.values():  # also after the command, where people type them
        command.allow_abbrev = False  # a flag added later must not change what scripts mean
        _add_output_flags(command, default=argparse.SUPPRESS)
    return parser


def _add_output_flags(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="show debug logs and tracebacks",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="only print errors"
    )


def _command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser  # pragma: no cover - build_parser always adds the subcommands


class _Log(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from omsign.cli._common import safe

        return f"omsign: {record.levelname.lower()}: {safe(record.getMessage())}"


def _setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Log())
    logger = logging.getLogger("omsign")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    logger.propagate = False
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [handler]


def dispatch(argv: Sequence[str]) -> int:
    """Parses ``argv``, runs the command, and turns omsign errors into exit codes.

    A reader that stops early (``omsign verify --json | head``) never changes the exit
    code: output to a closed pipe is dropped and the command finishes, so a failed
    verification still exits 1; a success whose output was cut still exits 0. Output
    that cannot be written for another reason (a full disk) turns a success into an
    environment error (2); a failure keeps its own code.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said with the command's usage, not the top-level one
        _command_parser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    _setup_logging(args.verbose, args.quiet)
    stdout = sys.stdout
    guard = _PipeGuard(stdout)
    sys.stdout = wrapped = cast("TextIO", guard)
    try:
        code = _run(args)
        guard.flush()
    finally:
        if sys.stdout is wrapped:
            sys.stdout = stdout
    if guard.error is not None and code == 0:
        print(f"omsign: error: cannot write the output ({guard.error})", file=sys.stderr)
        return 2
    return code


def _run(args: argparse.Namespace) -> int:
    from omsign.errors import Error, IntegrityError

    try:
        code: int = args.handler(args)
        return code
    except Error as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        from omsign.cli._common import safe
        from omsign.cli._flags import OPTION_FLAGS

        diff = exc.difference if isinstance(exc, IntegrityError) else None
        if diff is None or diff.empty:
            print(f"omsign: error: {safe(exc.render(OPTION_FLAGS))}", file=sys.stderr)
            return exc.exit_code
        from omsign.cli._common import print_difference

        # The names are listed below, each once: the first line says how many.
        message = exc.render(OPTION_FLAGS)
        head = message.removesuffix(f": {diff.summary()}")
        if head != message:
            message = f"{head}: {diff.counts()}"
        print(f"omsign: error: {safe(message)}", file=sys.stderr)
        print_difference(diff, limit=None if args.verbose else 20)
        return exc.exit_code
    except KeyboardInterrupt:
        print("omsign: interrupted", file=sys.stderr)
        return 130


class _PipeGuard(io.TextIOBase):
    """Standard output that drops what it cannot write instead of raising.

    The command's outcome, not the reader's patience, decides the exit code: once the
    reader is gone, later writes (and the final flush) go nowhere instead of raising.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self.cut = False
        self.error: str | None = None  # why output was lost, other than a closed pipe

    def write(self, text: str) -> int:
        if not self.cut:
            try:
                self._stream.write(text)
            except OSError as exc:
                self._drop(exc)
        return len(text)

    def flush(self) -> None:
        if not self.cut:
            try:
                self._stream.flush()
            except OSError as exc:
                self._drop(exc)

    def _drop(self, exc: OSError) -> None:
        self.cut = True
        if not isinstance(exc, BrokenPipeError):
            self.error = exc.strerror or str(exc)
        try:  # what the stream still buffers must not fail again at exit
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, self._stream.fileno())
            os.close(fd)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors
