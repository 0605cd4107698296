"""No library message names a command-line flag: the CLI renders flags from one table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import omsign
from omsign.cli._flags import OPTION_FLAGS
from omsign.errors import UsageError

SRC = Path(omsign.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Modules whose messages are being converted elsewhere; each entry goes once it is clean.
PENDING: frozenset[str] = frozenset()


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def flags_in(path: Path) -> list[str]:
    """``line: literal`` for every non-docstring string literal that names a flag."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [
        f"{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and FLAG.search(node.value)
    ]


def test_no_library_string_names_a_flag() -> None:
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("cli/") or rel in PENDING:
            continue
        found = flags_in(path)
        if found:
            offenders[rel] = found
    assert offenders == {}


def test_the_scan_finds_a_flag(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Docstring: --key is fine here."""\nX = f"use --password-file {1}"\n')
    assert flags_in(module) == ["2: 'use --password-file '"]


def test_library_message_names_the_option_cli_renders_the_flag() -> None:
    with pytest.raises(UsageError) as caught:
        omsign.sign(".", certificate="leaf.pem")
    exc = caught.value
    assert "--" not in str(exc)
    assert "key=" in str(exc) and "certificate=" in str(exc)
    rendered = exc.render(OPTION_FLAGS)
    assert "--key" in rendered and "--cert" in rendered and "=" not in rendered


def test_every_hinted_option_has_a_flag() -> None:
    for option in ("key", "cert_chain", "identity", "issuer", "password", "allow_symlinks"):
        assert OPTION_FLAGS[option].startswith("--")
