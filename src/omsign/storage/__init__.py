"""Where a model's signatures are: the :class:`SignatureStore` protocol and :func:`resolve_store`.

A store lists, reads and writes the bundles that belong to one model. The file store
(:mod:`omsign.storage._file`) keeps today's ``MODEL/model.sig`` (``MODEL.sig`` for a
single file, or the path given as ``signature``), further bundles in a companion
folder next to it, and attestations one per line in ``claims.jsonl`` beside it. A
model in an OCI registry (``oci://``) keeps its signatures there as referrers of its
manifest (:mod:`omsign.storage._oci`). A model in object storage keeps its signatures
there, next to it (:mod:`omsign.storage._object`), or in a local file given as
``signature``; a model on a web server has its signature read from beside it, or a
local file (:mod:`omsign.storage._http`). A new store is one module with an
``open_store(source, signature)`` function and one line in :data:`STORES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from omsign.options import PathLike

if TYPE_CHECKING:
    from omsign.bundle import Bundle
    from omsign.errors import Error
    from omsign.sources import ModelSource

__all__ = ["STORES", "SignatureStore", "resolve_store"]


class SignatureStore(Protocol):
    """The bundles that belong to one model.

    Attributes:
        location: where the main signature is (for messages and results).
    """

    location: str

    def locations(self) -> list[str]:
        """Where each bundle present is, the main signature first."""
        ...

    def read(self, location: str | None = None) -> Bundle:
        """Reads one bundle (default: the main signature).

        Raises:
            SignatureNotFoundError: there is no signature there.
            MalformedSignatureError: it is not a well-formed bundle.
        """
        ...

    def read_all(self) -> list[Bundle]:
        """Reads every bundle present, the main signature first.

        Raises:
            SignatureNotFoundError: there is none at all.
        """
        ...

    def write(self, bundle: Mapping[str, Any]) -> str:
        """Writes the main signature atomically; returns where."""
        ...

    def add(self, bundle: Mapping[str, Any]) -> str:
        """Stores one more bundle beside the main signature; returns where."""
        ...

    def claims(self) -> list[tuple[str, bytes | Error]]:
        """The stored attestations: ``(location, raw bundle bytes or that entry's error)``.

        The entries are bounded in size and count; one unreadable entry is reported in
        its place and never hides the others. Nothing is authenticated or parsed here.
        """
        ...

    def append_claim(self, bundle: Mapping[str, Any]) -> str:
        """Stores one more attestation bundle (never replacing any); returns its location."""
        ...

    def excluded(self) -> list[str]:
        """Model-relative paths of the store inside the model, left out of its files."""
        ...


# URL scheme of a model's location -> the module whose ``open_store(source, signature)``
# opens its store; any other model keeps its signatures in files (``_file``).
STORES: dict[str, str] = {
    "oci://": "omsign.storage._oci",
    "s3://": "omsign.storage._object",
    "gs://": "omsign.storage._object",
    "gcs://": "omsign.storage._object",
    "az://": "omsign.storage._object",
    "abfs://": "omsign.storage._object",
    "https://": "omsign.storage._http",
    "http://": "omsign.storage._http",
}


def resolve_store(source: ModelSource, signature: PathLike | None = None) -> SignatureStore:
    """The store of a model's signatures: the one registered for its location's scheme
    (the referrers of an ``oci://`` model's manifest, objects next to a model in object
    storage), else files next to (or in) a local model.

    Args:
        source: the model.
        signature: the main signature's path (or URL), instead of the default.
    """
    import importlib

    from omsign.storage._file import FileStore

    for scheme, module in STORES.items():
        if source.location.startswith(scheme):
            opened: SignatureStore = importlib.import_module(module).open_store(source, signature)
            return opened
    if source.path is None:
        from omsign.errors import UsageError

        raise UsageError(
            f"{source.location}: no signature store for a model that is not on this machine",
            option="signature",
            hint="give the signature's path with {option}",
        )
    return FileStore(source.path, signature)
