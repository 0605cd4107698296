"""Signatures of a model on a web server: read from beside it, written only to a local file.

The main signature of a folder model ``https://HOST/PATH/`` is ``PATH/model.sig``
(``FILE.sig`` beside a single file), or the ``http(s)://`` URL given as ``signature``;
it is read with one ``GET`` bounded by the bundle size limit before anything is parsed
(the bundle proves itself: no version pinning is needed). Further bundles (co-signers,
for a threshold policy) are the ``*.sig`` files the directory index of ``model.sig.d/``
lists (at most 64; no index there means none). Attestations are read from
``claims.jsonl`` beside the signature, with the bounds of a local claims file.

A web server cannot be written to: signing a served model needs a local ``signature``
path (refused before anything is hashed, otherwise), and attestations are appended to a
local file. With a local signature, the server's signature names (``model.sig``,
``model.sig.d``, ``claims.jsonl``) are still left out of the model's files, so the
signature can be published beside the model afterwards and verified from there.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from omsign.bundle import MAX_BUNDLE_BYTES, Bundle, parse_bundle
from omsign.errors import (
    Error,
    MalformedSignatureError,
    ModelError,
    SignatureNotFoundError,
    StorageAccessError,
    UsageError,
)
from omsign.sources._http import HttpSource
from omsign.sources._http_client import finish, request, take
from omsign.sources._http_index import MAX_PAGE_BYTES, clip, parse_page, quote_name
from omsign.storage._claims import MAX_FILE_BYTES, parse_lines
from omsign.storage._file import FileStore

if TYPE_CHECKING:
    from omsign.sources import ModelSource

__all__ = ["HttpSignatureStore", "LocalSignature", "open_store"]

_MAX_BUNDLES = 64  # companion bundles read at most


def _server_names(source: HttpSource) -> list[str]:
    """The model-relative names of the default signature, its companions and claims."""
    return ["claims.jsonl", "model.sig", "model.sig.d"] if source.is_dir else []


def _get(url: str, cap: int) -> bytes | None:
    """The body at ``url`` (at most ``cap + 1`` bytes), None when there is none.

    Raises:
        StorageAccessError: the server refuses or redirects the request.
    """
    response = request("GET", url, most=cap + 1)
    try:
        if response.status == 404:
            return None
        if response.status != 200:
            raise StorageAccessError(
                f"{url}: the server refused the request (HTTP {response.status} "
                f"{clip(response.reason)}); redirects are not followed"
            )
        data = take(response, cap + 1)
    finally:
        finish(response)
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise MalformedSignatureError(f"{url}: the server sends it content-coded, not as it is")
    return data


class HttpSignatureStore:
    """A served model's signature, read-only (see the module docstring)."""

    def __init__(self, source: HttpSource, signature: str | None = None) -> None:
        self.source = source
        if signature is None:
            signature = source.location + "model.sig" if source.is_dir else source.location + ".sig"
        elif "@" in urlsplit(signature).netloc:
            raise UsageError(
                "the signature's URL names a user: give it without credentials",
                option="signature",
            )
        elif not signature.startswith(("https://", "http://")):
            raise UsageError(
                f"{signature}: the signature of a model on a web server is a local path or "
                "an http(s) URL",
                option="signature",
            )
        self.location = signature
        stem = signature.removesuffix("model.sig") if signature.endswith("/model.sig") else None
        self.claims_url = (
            stem + "claims.jsonl"
            if stem is not None
            else signature.removesuffix(".sig") + ".claims.jsonl"
        )

    def _missing(self) -> SignatureNotFoundError:
        return SignatureNotFoundError(
            f"{self.source.location}: no signature found (looked for {self.location})",
            option="signature",
            hint="publish the signature there, or give its path with {option}",
        )

    def _companions(self) -> list[str]:
        """The ``*.sig`` files the index of the companion folder lists (none without one)."""
        page = self.location + ".d/"
        accept = {"Accept": "application/json, text/html;q=0.9"}
        response = request("GET", page, accept, most=MAX_PAGE_BYTES + 1)
        try:
            if response.status != 200:
                return []
            body = take(response, MAX_PAGE_BYTES + 1)
        finally:
            finish(response)
        if len(body) > MAX_PAGE_BYTES:
            raise MalformedSignatureError(f"{page}: the listing is larger than the bound")
        try:
            links = parse_page(body, response.headers.get("Content-Type", ""), page)
        except ValueError:  # not an index: no companion bundles
            return []
        except ModelError as exc:
            raise MalformedSignatureError(exc.message) from None
        names = sorted(x.name for x in links if not x.is_dir and x.name.endswith(".sig"))
        return [page + quote_name(n) for n in names[:_MAX_BUNDLES]]

    def locations(self) -> list[str]:
        """The main signature when the server has it, then the companion bundles."""
        response = request("HEAD", self.location)
        finish(response)
        main = [self.location] if response.status == 200 else []
        return main + self._companions()

    def read(self, location: str | None = None) -> Bundle:
        """Reads the main signature (``location`` must be it, or None)."""
        url = location or self.location
        data = _get(url, MAX_BUNDLE_BYTES)
        if data is None:
            raise self._missing() if url == self.location else SignatureNotFoundError(url)
        if len(data) > MAX_BUNDLE_BYTES:
            raise MalformedSignatureError(f"{url}: larger than {MAX_BUNDLE_BYTES >> 20} MiB")
        return parse_bundle(data, url)

    def read_all(self) -> list[Bundle]:
        """Every bundle present, the main signature first."""
        found = self.locations()
        if not found:
            raise self._missing()
        return [self.read(u) for u in found]

    def refuse_writes(self) -> None:
        """A web server is not written to: signing needs a local signature path."""
        raise UsageError(
            f"{self.source.location}: a signature cannot be written to a web server",
            option="signature",
            hint="give a local path for the signature with {option}, then publish it "
            "beside the model",
        )

    def write(self, bundle: Mapping[str, Any]) -> str:
        """Refused (see :meth:`refuse_writes`)."""
        del bundle
        self.refuse_writes()
        raise AssertionError  # pragma: no cover - refuse_writes always raises

    add = write

    def claims(self) -> list[tuple[str, bytes | Error]]:
        """Each line of the claims file beside the signature (``URL:N``); bounded."""
        url = self.claims_url
        data = _get(url, MAX_FILE_BYTES)
        if not data:
            return []
        return parse_lines(io.BytesIO(data[:MAX_FILE_BYTES]), url)

    def append_claim(self, bundle: Mapping[str, Any]) -> str:
        """Refused: a web server cannot be written to."""
        del bundle
        raise UsageError(
            f"{self.claims_url}: attestations are not appended on a web server (it cannot "
            "be written)",
            option="output",
            hint="write the attestation to a file with {option}",
        )

    def excluded(self) -> list[str]:
        """The server's signature names inside the model, left out of its files."""
        return _server_names(self.source)


class LocalSignature(FileStore):
    """A local signature file of a served model; the server's signature names stay out."""

    def __init__(self, source: HttpSource, signature: str | os.PathLike[str]) -> None:
        super().__init__(None, signature)
        self.source = source

    def excluded(self) -> list[str]:
        """``model.sig``, ``model.sig.d`` and ``claims.jsonl`` of the served folder."""
        return _server_names(self.source)


def open_store(
    source: ModelSource, signature: str | os.PathLike[str] | None
) -> HttpSignatureStore | LocalSignature:
    """The store of a served model: its signature beside it (read-only), or a local file.

    Raises:
        UsageError: the source is not a model on a web server.
    """
    if not isinstance(source, HttpSource):
        raise UsageError(f"{source.location}: not a model on a web server")
    if signature is not None and "://" not in os.fspath(signature):
        return LocalSignature(source, signature)
    return HttpSignatureStore(source, None if signature is None else os.fspath(signature))
