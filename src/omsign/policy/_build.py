"""From trust options to a verifier: the registry picks the one method the options ask for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omsign.errors import UsageError
from omsign.policy._base import Verifier
from omsign.policy._registry import load_factory, methods, usage_hint

__all__ = ["policy_from_options"]


def _given(value: object) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (str, bytes, list, tuple, set, frozenset)):
        return len(value) > 0
    return True


def policy_from_options(options: Mapping[str, Any]) -> Verifier:
    """Builds the verifier the trust options describe (exactly one method).

    Args:
        options: the trust keywords of :func:`omsign.verify` (``key``, ``cert_chain``,
            ``identity``/``identity_regexp`` with ``issuer``, ``tsa_certs``, ``offline``,
            ``staging``, ``trust_config``, the GitHub claims), or those of a
            registered method.

    Raises:
        UsageError: no method or more than one method was chosen, or the chosen
            method's options are incomplete.
    """
    registered = methods()
    chosen = [m for m in registered if any(_given(options.get(o)) for o in m.chosen_by)]
    if len(chosen) != 1:
        hint, names = usage_hint(registered)
        got = [next(o for o in m.chosen_by if _given(options.get(o))) for m in chosen]
        spelt = ", ".join(f"{{option{len(names) + i}}}" for i in range(len(got)))
        raise UsageError(
            "choose exactly one way to trust the signer",
            options=(*names, *got),
            hint=f"give {hint}" + (f" (got {spelt})" if got else ""),
        )
    verifier: Verifier = load_factory(chosen[0]).from_options(options)
    return verifier
