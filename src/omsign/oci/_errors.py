"""The errors of the registry client: the registry is unusable, or it lied.

An unreachable registry, a refused login or a missing manifest is an environment problem
(:class:`RegistryError`, exit 2); content that does not match the digest it was asked
for, or a manifest that is not one, means the model cannot be trusted
(:class:`RegistryContentError`, a verification failure, exit 1).
"""

from __future__ import annotations

from omsign.errors import Error, VerificationError

__all__ = ["NotFoundError", "RegistryContentError", "RegistryError"]


class RegistryError(Error):
    """The registry cannot be reached, refuses the credentials or the request."""


class NotFoundError(RegistryError):
    """The registry has no such repository, manifest, tag or blob."""


class RegistryContentError(VerificationError):
    """The registry returned content that is not what was asked for (digest, size, form)."""
