"""The exceptions omsign raises: one root, one class per failure mode.

Every error carries a one-line message meant for a person; the CLI prints it
as is. ``VerificationError`` and its subclasses mean "do not trust this model"
(exit code 1); every other ``Error`` is a usage or environment problem (exit 2).
"""

from __future__ import annotations


class Error(Exception):
    """Root of every error omsign raises on purpose."""

    exit_code = 2


class UsageError(Error):
    """Bad options or arguments: the caller asked for something impossible."""


class ModelError(Error):
    """The model cannot be read or enumerated (missing, empty, bad names, symlinks)."""


class KeyLoadError(Error):
    """A key, certificate, token or password could not be loaded."""


class BackendUnavailableError(Error):
    """An optional dependency or service that the requested method needs is missing."""


class VerificationError(Error):
    """Verification failed: the model must not be trusted."""

    exit_code = 1


class MalformedSignatureError(VerificationError):
    """The signature file is not a well-formed OMS bundle."""


class SignatureError(VerificationError):
    """The cryptographic signature does not verify."""


class IdentityError(VerificationError):
    """The signature is valid but the signer is not one the policy trusts."""


class IntegrityError(VerificationError):
    """The model on disk differs from the signed manifest.

    Attributes:
        difference: the structured difference, when one was computed.
    """

    def __init__(self, message: str, difference: object | None = None) -> None:
        super().__init__(message)
        self.difference = difference
