"""The exceptions omsign raises: one root, one class per failure mode.

Every error carries a one-line message meant for a person. A message never names a
command-line flag: where the remedy is another option, the error says so with a
structured hint (``option``, the library keyword, and ``hint``, a sentence in which
``{option}`` stands for it). The library renders the keyword (``key=``); the CLI
renders its flag (``--key``) from one table. ``VerificationError`` and its subclasses
mean "do not trust this model" (exit code 1); every other ``Error`` is a usage or
environment problem (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omsign.manifest import Difference

__all__ = [
    "AttestationError",
    "BackendUnavailableError",
    "Error",
    "IdentityError",
    "IntegrityError",
    "KeyLoadError",
    "MalformedSignatureError",
    "ModelError",
    "SignatureError",
    "SignatureNotFoundError",
    "StorageAccessError",
    "UnsafeFormatError",
    "UsageError",
    "VerificationError",
]


class Error(Exception):
    """Root of every error omsign raises on purpose.

    Attributes:
        message: what went wrong, one line, naming the file when there is one.
        options: the library options the remedy names (keywords of ``sign``/``verify``).
        hint: the remedy, with ``{option}`` (or ``{option0}``, ``{option1}``...) where an
            option's name goes; empty when there is nothing to add.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        option: str | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.message = message
        self.hint = hint
        self.options = (option,) if option is not None else tuple(options)
        super().__init__(self.render())

    def __reduce__(self) -> tuple[object, ...]:
        """Pickles with every attribute (hint, options, difference): errors cross processes."""
        return (_restore, (type(self), self.args, dict(self.__dict__)))

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """The message with its hint; ``names`` maps options to how they are spelt.

        Without ``names`` an option is spelt as the library keyword (``key=``).
        """
        if not self.hint:
            return self.message
        spelt = [(names or {}).get(o, f"{o}=") for o in self.options]
        fields = {f"option{i}": s for i, s in enumerate(spelt)}
        if spelt:
            fields["option"] = spelt[0]
        try:
            hint = self.hint.format(**fields)
        except (KeyError, IndexError):  # pragma: no cover - a hint with a stray brace
            hint = self.hint
        return f"{self.message}; {hint}"


def _restore(cls: type[Error], args: tuple[object, ...], state: dict[str, object]) -> Error:
    """Rebuilds a pickled error without calling its constructor."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UsageError(Error):
    """Bad options or arguments: the caller asked for something impossible."""


class UnsafeFormatError(UsageError):
    """A signed file is in a format whose loading can run code (pickle), and was not allowed."""


class ModelError(Error):
    """The model cannot be read or enumerated (missing, empty, bad names, symlinks)."""


class StorageAccessError(Error):
    """A remote store (object storage) could not be reached or refused the request."""


class KeyLoadError(Error):
    """A key, certificate, token or password could not be loaded."""


class BackendUnavailableError(Error):
    """An optional dependency or service that the requested method needs is missing."""


class VerificationError(Error):
    """Verification failed: the model must not be trusted."""

    exit_code = 1


class MalformedSignatureError(VerificationError):
    """The signature file is not a well-formed OMS bundle."""


class SignatureNotFoundError(VerificationError):
    """There is no signature where one was looked for: nothing proves the model."""


class SignatureError(VerificationError):
    """The cryptographic signature does not verify."""


class IdentityError(VerificationError):
    """The signature is valid but the signer is not one the policy trusts."""


class IntegrityError(VerificationError):
    """The model on disk differs from the signed manifest.

    Attributes:
        difference: the structured difference, when one was computed.
    """

    def __init__(self, message: str, difference: Difference | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.difference = difference


class AttestationError(VerificationError):
    """The model verified, but an attestation it is required to have is missing or fails.

    Attributes:
        attestations: every attestation found for the model, verified or not (each an
            :class:`omsign.attestations.Attestation`), for reports.
    """

    def __init__(self, message: str, attestations: tuple[object, ...] = (), **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.attestations = attestations
