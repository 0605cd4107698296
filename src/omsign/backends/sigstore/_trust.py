"""Which Sigstore instance to trust, and loading its trust configuration.

:class:`SigstoreSettings` names the instance (production, staging, or a private
one through a ClientTrustConfig file); :func:`load_trust_config` loads its
trusted root and signing config with sigstore-python, imported only when called.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

__all__ = ["SigstoreSettings", "load_trust_config"]


@dataclass(frozen=True)
class SigstoreSettings:
    """Which Sigstore instance to use.

    Attributes:
        staging: use the Sigstore staging instance instead of production.
        trust_config: a ClientTrustConfig JSON file (trusted root and signing
            config) for a private instance; overrides production and staging.
        offline: never refresh the trust root over the network; use the copy
            sigstore-python ships or has cached.
    """

    staging: bool = False
    trust_config: Path | None = None
    offline: bool = False


@contextlib.contextmanager
def _quiet_tuf_warning() -> Iterator[None]:
    # sigstore-python warns on every offline trust-root load; it is expected here.
    logger = logging.getLogger("sigstore._internal.tuf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_trust_config(settings: SigstoreSettings, *, signing: bool = False) -> ClientTrustConfig:
    """Loads the trust configuration the settings name.

    Args:
        settings: which instance.
        signing: the trust root is for signing (the remedy a failure names differs).

    Raises:
        UsageError: both staging and a trust config file were asked for.
        KeyLoadError: the trust config file cannot be read or parsed.
        BackendUnavailableError: the trust root cannot be fetched or loaded.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    from omsign.backends._trust_files import read_trust_json

    if settings.trust_config is not None:
        if settings.staging:
            raise UsageError(
                "the staging instance and a trust config cannot be combined",
                hint="give {option0} or {option1}, not both",
                options=("staging", "trust_config"),
            )
        path = settings.trust_config
        try:
            return ClientTrustConfig.from_json(read_trust_json(path))
        except OSError as exc:
            raise KeyLoadError(f"{path}: cannot read trust config: {exc.strerror}") from exc
        except (ValueError, SigstoreError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise KeyLoadError(f"{path}: not a Sigstore client trust config: {first}") from exc
    instance = "staging" if settings.staging else "production"
    try:
        with _quiet_tuf_warning():
            if settings.staging:
                return ClientTrustConfig.staging(offline=settings.offline)
            return ClientTrustConfig.production(offline=settings.offline)
    except (SigstoreError, OSError, ValueError) as exc:
        if signing:
            raise BackendUnavailableError(
                f"cannot load the Sigstore {instance} trust root to sign: {exc}",
                hint="keyless signing needs the network; without it sign with {option}",
                option="key",
            ) from exc
        raise BackendUnavailableError(
            f"cannot load the Sigstore {instance} trust root: {exc}",
            hint=""
            if settings.offline
            else "to verify without network, use {option} (the cached trust root)",
            option="offline",
        ) from exc
