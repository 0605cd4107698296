"""The registry of verification methods: which verifier checks each, which options ask for it.

A method is one line here: its name as bundles record it, where its verifier factory
lives (``"module:attribute"``, imported only when the method is used), the options that
choose it, and how to ask for it in words. A factory has ``from_options(options)``
returning a :class:`~omsign.policy.Verifier`; the backend that signs with the method
provides it. Other packages add methods with :func:`register_method`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Method",
    "VerifierFactory",
    "load_factory",
    "method_named",
    "methods",
    "register_method",
    "unregister_method",
    "usage_hint",
]


class VerifierFactory(Protocol):
    """Builds a method's verifier from the trust options (``key=``, ``cert_chain=``...)."""

    def from_options(self, options: Mapping[str, Any]) -> Any:
        """Returns the verifier the options describe; raises ``UsageError`` if incomplete."""
        ...


@dataclass(frozen=True)
class Method:
    """A verification method.

    Attributes:
        name: the method as a bundle records it (``key``, ``certificate``, ``sigstore``).
        factory: ``"module:attribute"`` naming the verifier factory, or the factory.
        chosen_by: the options that select this method when one of them is given.
        usage: how to ask for the method; ``{0}``, ``{1}``... stand for ``chosen_by``.
    """

    name: str
    factory: str | VerifierFactory
    chosen_by: tuple[str, ...]
    usage: str


_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("key", "omsign.backends._key:KeyPolicy", ("key",), "{0} PUBLIC.pem"),
        Method(
            "certificate",
            "omsign.backends._certificate:CertificatePolicy",
            ("cert_chain",),
            "{0} CA.pem",
        ),
        Method(
            "sigstore",
            "omsign.backends.sigstore:SigstorePolicy",
            ("identity", "issuer", "identity_regexp"),
            "{0} ID with {1} URL",
        ),
    )
}


def methods() -> tuple[Method, ...]:
    """The registered methods, in registration order."""
    return tuple(_METHODS.values())


def method_named(name: str) -> Method | None:
    """The registered method called ``name``, if any."""
    return _METHODS.get(name)


def register_method(method: Method) -> None:
    """Adds a verification method (or replaces the one with the same name)."""
    _METHODS[method.name] = method


def unregister_method(name: str) -> None:
    """Removes a verification method; unknown names are ignored."""
    _METHODS.pop(name, None)


def load_factory(method: Method) -> VerifierFactory:
    """Imports the method's verifier factory."""
    if not isinstance(method.factory, str):
        return method.factory
    module_name, _, attribute = method.factory.partition(":")
    factory: VerifierFactory = getattr(importlib.import_module(module_name), attribute)
    return factory


def usage_hint(chosen: tuple[Method, ...], start: int = 0) -> tuple[str, tuple[str, ...]]:
    """How to ask for each method, as an error hint and the options it names.

    Returns:
        The text (``{option0} PUBLIC.pem, {option1} CA.pem, or ...``, numbering from
        ``start``) and the options in that order.
    """
    parts: list[str] = []
    options: list[str] = []
    for method in chosen:
        fields = [f"{{option{start + len(options) + i}}}" for i in range(len(method.chosen_by))]
        parts.append(method.usage.format(*fields))
        options.extend(method.chosen_by)
    text = ", ".join(parts[:-1]) + ", or " + parts[-1] if len(parts) > 1 else "".join(parts)
    return text, tuple(options)
