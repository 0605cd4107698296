"""The named signers of a trust policy file: how each is written, and the verifier it builds.

Each ``[signers.NAME]`` table holds exactly one of:

* ``key``: public key PEM files, or key URIs (``pkcs11:...``, ``awskms://...``,
  ``gcpkms://...``, ``azurekms://...`` or a scheme another package registers) whose
  public key is read from the token or the key service when the policy is used;
* ``ca = {chain, tsa, subject | subject_regexp, san | san_regexp}``: CA certificates the
  signing certificate must chain to, with optional constraints on its subject (RFC 4514
  text) and alternative names (e-mail, URI, DNS), exact or as a full-match pattern;
* ``sigstore = {identity | identity_regexp, issuer, github_*, offline, staging,
  trust_config}``.

``tsa`` beside ``key`` or ``ca`` names timestamp authority roots whose tokens prove when
a signature existed. Paths are relative to the policy file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from omsign.policy._base import VerifiedSignature, Verifier

__all__ = ["NamedSigner", "parse_signer"]

_KINDS = ("key", "ca", "sigstore")
_SIGSTORE = {
    "identity",
    "identity_regexp",
    "issuer",
    "github_repository",
    "github_ref",
    "github_workflow_name",
    "offline",
    "staging",
    "trust_config",
}
_CA = {"chain", "tsa", "subject", "subject_regexp", "san", "san_regexp"}
_SECRET = re.compile(r"(pin-value=)[^&;]*", re.IGNORECASE)


class Reader(Protocol):
    """What the policy file reader offers the signer parser."""

    def line_of(self, key: str, after: int = 0) -> int: ...
    def fail(self, line: int, message: str) -> Exception: ...
    def known(
        self, table: Mapping[str, Any], allowed: set[str], where: str, after: int
    ) -> None: ...
    def paths(self, value: Any, line: int, what: str, uris: bool = False) -> list[str]: ...


@dataclass(frozen=True)
class NamedSigner:
    """A signer the policy file names.

    Attributes:
        name: its name in the file.
        method: ``key``, ``certificate`` or ``sigstore``.
        options: the trust options that build its verifier (paths made absolute; key
            URIs under ``key_uris``).
    """

    name: str
    method: str
    options: Mapping[str, Any]

    def verifier(self) -> Verifier:
        """Builds the verifier (loads keys and trust roots, reads URI keys' public keys)."""
        if self.options.get("key_uris"):
            return _Named(self.name, _key_verifier(self.options))
        from omsign.policy._build import policy_from_options

        return _Named(self.name, policy_from_options(self.options))

    def describe(self) -> str:
        """``trainer: key (key=['/keys/trainer.pub'])``; PINs in URIs are not shown."""
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return _SECRET.sub(r"\1***", f"{self.name}: {self.method} ({shown})")


def _no_prompt(prompt: str) -> bytes | None:
    """Verification never prompts: a PIN comes from the URI or the environment."""
    return None


def _key_verifier(options: Mapping[str, Any]) -> Verifier:
    from omsign.backends import public_key_from_uri
    from omsign.backends._key import KeyPolicy
    from omsign.backends._pem import load_public_keys
    from omsign.backends._stamps import tsa_anchors_from_options

    keys = [k for p in options.get("key", ()) for k in load_public_keys(p)]
    keys += [public_key_from_uri(uri, _no_prompt) for uri in options["key_uris"]]
    return KeyPolicy(tuple(keys), tsa_anchors_from_options(options))


class _Named:
    """A verifier reported under the name the policy file gives it."""

    def __init__(self, label: str, inner: Verifier) -> None:
        self.label = label
        self.inner = inner

    @property
    def method(self) -> str:
        return self.inner.method

    @property
    def name(self) -> str:
        return self.label

    def verify(self, bundle: Any) -> VerifiedSignature:
        return dataclasses.replace(self.inner.verify(bundle), trusted_as=self.label)


def _pattern(reader: Reader, value: Any, line: int, what: str) -> str:
    if not isinstance(value, str):
        raise reader.fail(line, f"{what} must be a string")
    try:
        re.compile(value)
    except re.error as exc:
        raise reader.fail(line, f"{what}: invalid regular expression: {exc}") from None
    return value


def parse_signer(reader: Reader, name: str, table: Any) -> NamedSigner:
    """Validates one ``[signers.NAME]`` table (see the module docstring)."""
    line = reader.line_of(name)
    if not isinstance(table, dict):
        raise reader.fail(line, f"signer '{name}' must be a table")
    reader.known(table, {*_KINDS, "tsa"}, f"signer '{name}'", line - 1)
    kinds = [k for k in _KINDS if k in table]
    if len(kinds) != 1:
        raise reader.fail(line, f"signer '{name}' needs exactly one of key, ca, sigstore")
    kind, value = kinds[0], table[kinds[0]]
    at = reader.line_of(kind, line - 1)
    tsa: list[str] = []
    if "tsa" in table:
        if kind == "sigstore":
            raise reader.fail(
                reader.line_of("tsa", line - 1),
                f"signer '{name}': a sigstore signer takes its timestamp authorities from its "
                "trust_config",
            )
        tsa = reader.paths(table["tsa"], reader.line_of("tsa", line - 1), "tsa")
    if kind == "key":
        given = reader.paths(value, at, "key", uris=True)
        from omsign.backends import is_key_uri

        options: dict[str, Any] = {"key": [k for k in given if not is_key_uri(k)]}
        uris = [k for k in given if is_key_uri(k)]
        if uris:
            options["key_uris"] = uris
        if tsa:
            options["tsa_certs"] = tsa
        return NamedSigner(name, "key", options)
    if not isinstance(value, dict):
        raise reader.fail(at, f"signer '{name}': {kind} must be a table")
    if kind == "ca":
        return NamedSigner(name, "certificate", _ca_options(reader, name, value, at, tsa))
    reader.known(value, _SIGSTORE, f"signer '{name}' sigstore", at - 1)
    if "issuer" not in value or ("identity" in value) == ("identity_regexp" in value):
        raise reader.fail(
            at, f"signer '{name}': sigstore needs issuer and identity or identity_regexp"
        )
    options = dict(value)
    if "identity_regexp" in options:
        _pattern(reader, options["identity_regexp"], at, f"signer '{name}': identity_regexp")
    if "trust_config" in options:
        options["trust_config"] = reader.paths(options["trust_config"], at, "trust_config")[0]
    return NamedSigner(name, "sigstore", options)


def _ca_options(
    reader: Reader, name: str, value: Mapping[str, Any], at: int, tsa: list[str]
) -> dict[str, Any]:
    reader.known(value, _CA, f"signer '{name}' ca", at - 1)
    if "chain" not in value:
        raise reader.fail(at, f"signer '{name}': ca needs a chain")
    options: dict[str, Any] = {"cert_chain": reader.paths(value["chain"], at, "chain")}
    tsa = tsa + (reader.paths(value["tsa"], at, "tsa") if "tsa" in value else [])
    if tsa:
        options["tsa_certs"] = tsa
    for field in ("subject", "san"):
        if field in value and f"{field}_regexp" in value:
            raise reader.fail(at, f"signer '{name}': give {field} or {field}_regexp, not both")
        if field in value:
            if not isinstance(value[field], str):
                raise reader.fail(at, f"signer '{name}': {field} must be a string")
            options[f"cert_{field}"] = value[field]
        if f"{field}_regexp" in value:
            options[f"cert_{field}_regexp"] = _pattern(
                reader, value[f"{field}_regexp"], at, f"signer '{name}': {field}_regexp"
            )
    return options
