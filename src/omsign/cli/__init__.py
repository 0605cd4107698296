"""The ``omsign`` command line: parse flags, call one library function, map errors to exit codes.

Exit codes: 0 success; 1 verification failed; 2 usage or environment error.
Results go to stdout; status, warnings and errors to stderr. The exit code reports the
command's outcome even when the reader of stdout stops early (``| head``): what a closed
pipe no longer accepts is dropped, never turned into success.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the command line and exits with its status."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code instead of exiting."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from omsign._version import __version__

        print(f"omsign {__version__}")
        return 0
    from omsign.cli._main import dispatch

    return dispatch(args)
