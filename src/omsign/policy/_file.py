"""The trust policy file: named signers and ordered rules saying who may sign which model.

A policy file is versioned TOML, parsed strictly (an unknown key is an error naming its
line)::

    version = 1
    default = "deny"                 # or "off": a model no rule matches is not checked

    [signers.trainer]
    key = "keys/trainer.pub"         # paths are relative to the policy file
    [signers.hub]
    ca = { chain = "ca.pem", tsa = "tsa.pem" }
    [signers.ci]
    sigstore = { identity = "https://github.com/acme/train/...", issuer = "https://..." }

    [[rules]]
    match = ["/srv/models/**", "hf://acme/*"]
    mode = "enforce"                 # or "warn", "off"
    signers = ["trainer", "hub", "ci"]
    threshold = 2

The first rule whose ``match`` globs cover the model's location applies (``*`` stays in
one path segment, ``**`` crosses them). :meth:`PolicyFile.decide` says which one and
builds its verifier: a :class:`~omsign.policy.Threshold` over the named signers.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omsign.errors import UsageError
from omsign.policy._decision import FILES, Decision, Rule
from omsign.policy._globs import canonical_uri, compile_glob, model_location
from omsign.policy._requirements import parse_attestations
from omsign.policy._signers import NamedSigner, parse_signer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["MODES", "Decision", "NamedSigner", "PolicyFile", "Rule", "load_policy"]

MODES = ("enforce", "warn", "off")
_TOP = {"version", "default", "signers", "rules"}
_RULE = {"name", "match", "mode", "signers", "threshold", "files", "pin", "attestations"}


class PolicyFileError(UsageError):
    """The policy file is not valid (the message names the file and the line)."""


@dataclass(frozen=True)
class PolicyFile:
    """A parsed trust policy file (see the module docstring).

    Attributes:
        path: the file.
        version: its format version (1).
        default: ``deny`` or ``off``, for models no rule matches.
        signers: the named signers, by name.
        rules: the rules, in order.
    """

    path: Path
    version: int
    default: str
    signers: Mapping[str, NamedSigner]
    rules: tuple[Rule, ...]

    def decide(self, model: str | os.PathLike[str]) -> Decision:
        """The first rule matching the model (a path or ``hf://ORG/NAME[@REV]``)."""
        location = model_location(model)
        for rule in self.rules:
            if any(compile_glob(p).fullmatch(location) for p in rule.match):
                chosen = tuple(self.signers[n] for n in rule.signers)
                return Decision(
                    location, rule, rule.mode, chosen, rule.threshold, dict(self.signers)
                )
        return Decision(location, None, self.default, (), 0)

    def check(self) -> None:
        """Loads every key and certificate file the signers name (Sigstore roots are not fetched).

        Raises:
            Error: a file cannot be read or holds no usable key or certificate.
        """
        for signer in self.signers.values():
            if signer.method != "sigstore":
                signer.verifier()

    def summary(self) -> str:
        """The signers and rules, one line each."""
        lines = [f"{self.path}: version {self.version}, {len(self.signers)} signers, "]
        lines[0] += f"{len(self.rules)} rules, default {self.default}"
        lines += [f"signer {s.describe()}" for s in self.signers.values()]
        for rule in self.rules:
            extras = [f"files {rule.files}"] if rule.files else []
            extras += ["pinned at first use"] if rule.pin else []
            extras += [f"attestation {ra.describe()}" for ra in rule.attestations]
            lines.append(
                f"{rule.label()}: {rule.mode}, {rule.threshold} of "
                f"[{', '.join(rule.signers)}] for {', '.join(rule.match)}"
                + "".join(f"; {e}" for e in extras)
            )
        return "\n".join(lines)


def _looks_like_uri(text: str) -> bool:
    scheme, sep, _ = text.partition(":")
    return bool(sep) and len(scheme) > 1 and scheme.isalnum()


class _Reader:
    """Validates the parsed TOML, naming the file and line of each problem."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str, after: int = 0) -> int:
        """The first line at or after ``after`` that sets or opens ``key``."""
        pattern = re.compile(rf"^\s*(\[+\s*)?([\w.\"-]*\.)?\"?{re.escape(key)}\"?\s*(=|\]|\.)")
        inline = re.compile(rf"[{{,]\s*\"?{re.escape(key)}\"?\s*=")
        for test in (pattern.match, inline.search):
            for number, line in enumerate(self.lines[after:], start=after + 1):
                if test(line):
                    return number
        return after or 1

    def fail(self, line: int, message: str) -> PolicyFileError:
        return PolicyFileError(f"{self.path}:{line}: {message}")

    def known(self, table: Mapping[str, Any], allowed: set[str], where: str, after: int) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    self.line_of(key, after),
                    f"unknown key '{key}' in {where} (known: {', '.join(sorted(allowed))})",
                )

    def paths(self, value: Any, line: int, what: str, uris: bool = False) -> list[str]:
        """Files (relative to the policy file) that must exist; or key URIs, if ``uris``."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
            raise self.fail(line, f"{what} must be a path or a list of paths")
        out = []
        for item in items:
            if uris and _looks_like_uri(item):
                from omsign.backends import is_key_uri

                if not is_key_uri(item):
                    raise self.fail(
                        line, f"{what}: {item.partition(':')[0]!r} is no key URI scheme"
                    )
                out.append(item)
                continue
            full = (self.path.parent / item).resolve()
            if not full.is_file():
                raise self.fail(line, f"{what}: {full}: no such file")
            out.append(str(full))
        return out

    def rule(self, index: int, table: Any, signers: Mapping[str, NamedSigner]) -> Rule:
        line = self._rule_line(index)
        if not isinstance(table, dict):
            raise self.fail(line, f"rule {index} must be a table")
        self.known(table, _RULE, f"rule {index}", line - 1)
        match = table.get("match")
        match = [match] if isinstance(match, str) else match
        if not isinstance(match, list) or not match or not all(isinstance(m, str) for m in match):
            raise self.fail(line, f"rule {index}: match must be a glob or a list of globs")
        globs = []
        for pattern in match:
            full = (
                canonical_uri(pattern)
                if "://" in pattern
                else pattern
                if pattern.startswith("/")
                else ((self.path.parent.resolve() / pattern).as_posix())
            )
            try:
                compile_glob(full)
            except ValueError as exc:
                raise self.fail(
                    self.line_of("match", line - 1), f"rule {index}: bad glob '{pattern}': {exc}"
                ) from None
            globs.append(full)
        mode = table.get("mode", "enforce")
        if mode not in MODES:
            raise self.fail(
                self.line_of("mode", line - 1),
                f"rule {index}: mode must be one of {', '.join(MODES)}, got {mode!r}",
            )
        names = table.get("signers")
        if mode != "off" and (not isinstance(names, list) or not names):
            raise self.fail(line, f"rule {index}: signers must list at least one signer")
        names = names or []
        for n in names:
            if n not in signers:
                raise self.fail(
                    self.line_of("signers", line - 1), f"rule {index}: unknown signer '{n}'"
                )
        threshold = table.get("threshold", 1 if names else 0)
        if (
            not isinstance(threshold, int)
            or isinstance(threshold, bool)
            or (names and not 1 <= threshold <= len(set(names)))
        ):
            raise self.fail(
                self.line_of("threshold", line - 1),
                f"rule {index}: threshold must be between 1 and {len(set(names))}",
            )
        files = table.get("files")
        if files is not None and files not in FILES:
            raise self.fail(
                self.line_of("files", line - 1),
                f"rule {index}: files must be one of {', '.join(FILES)}, got {files!r}",
            )
        pin = table.get("pin", False)
        if not isinstance(pin, bool):
            raise self.fail(
                self.line_of("pin", line - 1), f"rule {index}: pin must be true or false"
            )
        attestations = (
            parse_attestations(
                self,
                index,
                table["attestations"],
                line,
                rule_signers=tuple(dict.fromkeys(names)),
                signers=signers,
            )
            if "attestations" in table
            else ()
        )
        return Rule(
            index,
            line,
            tuple(globs),
            mode,
            tuple(dict.fromkeys(names)),
            threshold,
            str(table.get("name", "")),
            files,
            pin,
            attestations,
        )

    def _rule_line(self, index: int) -> int:
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if re.match(r"^\s*\[\[\s*rules\s*\]\]", line):
                seen += 1
                if seen == index:
                    return number
        return self.line_of("rules")


def load_policy(path: str | os.PathLike[str]) -> PolicyFile:
    """Reads and validates a trust policy file (see :mod:`omsign.policy._file`).

    Args:
        path: the TOML file; the paths inside it are relative to it.

    Raises:
        UsageError: the file cannot be read or is not a valid policy (the message
            names the file, the line and the key).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{file}: cannot read the trust policy ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"{file}: not valid TOML: {exc}") from None
    reader = _Reader(file, text)
    reader.known(data, _TOP, "the policy file", 0)
    if data.get("version") != 1:
        raise reader.fail(reader.line_of("version"), "version must be 1")
    default = data.get("default", "deny")
    if default not in ("deny", "off"):
        raise reader.fail(
            reader.line_of("default"), f"default must be 'deny' or 'off', got {default!r}"
        )
    tables = data.get("signers", {})
    if not isinstance(tables, dict):
        raise reader.fail(reader.line_of("signers"), "signers must be a table")
    signers = {name: parse_signer(reader, name, table) for name, table in tables.items()}
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise reader.fail(reader.line_of("rules"), "rules must be an array of tables ([[rules]])")
    parsed = tuple(reader.rule(i, t, signers) for i, t in enumerate(rules, start=1))
    return PolicyFile(file, 1, default, signers, parsed)
