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

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omsign.errors import IdentityError, UsageError
from omsign.options import VerifyScope
from omsign.policy._base import Verifier
from omsign.policy._composite import Threshold
from omsign.policy._globs import canonical_uri, compile_glob, model_location
from omsign.policy._signers import NamedSigner, parse_signer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["MODES", "Decision", "NamedSigner", "PolicyFile", "Rule", "load_policy"]

MODES = ("enforce", "warn", "off")
_TOP = {"version", "default", "signers", "rules"}
_RULE = {"name", "match", "mode", "signers", "threshold", "files", "pin"}
FILES = ("all", "present")


class PolicyFileError(UsageError):
    """The policy file is not valid (the message names the file and the line)."""


@dataclass(frozen=True)
class Rule:
    """One ordered rule of the file.

    Attributes:
        index: its position (1-based) among the rules.
        line: the line of its ``[[rules]]`` header.
        match: the globs over model locations: absolute paths, or URIs (``hf://``,
            ``oci://``, ``s3://``, ``gs://``, ``az://``...) matched on their canonical string
            (see :mod:`omsign.policy._globs`).
        mode: ``enforce``, ``warn`` or ``off``.
        signers: the names of the accepted signers.
        threshold: how many distinct accepted signers must have signed.
        name: an optional label.
        files: ``all`` (every signed file must be present and verified), ``present``
            (verify the signed files present, report the absent ones), or None (as the
            caller asks).
        pin: record the first verified signers of each model and refuse others later
            (first-use pinning, see :mod:`omsign.policy._history`).
    """

    index: int
    line: int
    match: tuple[str, ...]
    mode: str
    signers: tuple[str, ...]
    threshold: int
    name: str = ""
    files: str | None = None
    pin: bool = False

    def label(self) -> str:
        """``rule 2 (name)``."""
        return f"rule {self.index}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class Decision:
    """What the policy says about one model.

    Attributes:
        location: the model's location as the rules see it.
        rule: the first rule that matches, or None (the default applies).
        mode: ``enforce``, ``warn``, ``off``; ``deny`` when no rule matches and the
            default denies.
        signers: the accepted signers.
        threshold: how many of them must have signed.
    """

    location: str
    rule: Rule | None
    mode: str
    signers: tuple[NamedSigner, ...]
    threshold: int

    @property
    def files(self) -> str | None:
        """The rule's ``files`` setting (``all``, ``present``, or None)."""
        return self.rule.files if self.rule else None

    @property
    def pin(self) -> bool:
        """Whether the rule pins the first verified signers of the model."""
        return bool(self.rule and self.rule.pin)

    def scope(self, scope: VerifyScope) -> VerifyScope:
        """The caller's scope as the rule's ``files`` setting makes it.

        ``present`` verifies the signed files present and reports the absent ones;
        ``all`` refuses a partial verification.

        Raises:
            UsageError: the rule needs every file, and the scope asks for fewer.
        """
        if self.files == "present":
            return dataclasses.replace(scope, allow_missing=True)
        if self.files == "all" and (scope.allow_missing or scope.files is not None):
            assert self.rule is not None
            raise UsageError(
                f"{self.location}: {self.rule.label()} of the trust policy requires every "
                "signed file; a partial verification is refused",
                options=("allow_missing", "files"),
                hint="leave out {option0} and {option1}",
            )
        return scope

    def verifier(self) -> Verifier:
        """The threshold verifier over the accepted signers.

        Raises:
            IdentityError: no rule matches and the default denies.
        """
        if self.mode == "deny":
            raise IdentityError(f"{self.location}: no rule of the trust policy matches; denied")
        if not self.signers:
            raise UsageError(f"{self.location}: the trust policy checks nothing here (mode off)")
        return Threshold(self.threshold, [s.verifier() for s in self.signers])

    def describe(self) -> str:
        """What applies and what it requires, in a few lines."""
        if self.rule is None:
            return f"{self.location}: no rule matches; default: {self.mode}"
        lines = [
            f"{self.location}: {self.rule.label()} (line {self.rule.line}) applies, "
            f"mode {self.mode}",
            f"requires {self.threshold} of {len(self.signers)} signers:",
        ]
        lines += [f"  {s.describe()}" for s in self.signers]
        if self.files == "all":
            lines.append("every signed file must be present")
        elif self.files == "present":
            lines.append("the signed files present are verified; absent ones are reported")
        if self.pin:
            lines.append(
                "first-use pinning: signers other than the first recorded ones are refused "
                "until accepted; an older signature than the newest recorded is a rollback"
            )
        return "\n".join(lines)


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
                return Decision(location, rule, rule.mode, chosen, rule.threshold)
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
            lines.append(
                f"{rule.label()}: {rule.mode}, {rule.threshold} of "
                f"[{', '.join(rule.signers)}] for {', '.join(rule.match)}"
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
