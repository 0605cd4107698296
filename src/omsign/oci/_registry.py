"""An OCI distribution client: manifests, blobs, push, and the referrers listing.

Everything read is checked before it is used: a manifest is fetched by digest (a tag is
resolved to a digest once, then the manifest is fetched by that digest) and its bytes
must hash to it; a blob streamed by :meth:`Registry.blob` is hashed as it is read and
the stream raises at its end if the bytes do not match the digest (or the expected
size). Manifests, indexes and referrers listings are capped at 4 MiB, as registries
must accept at least that much. Only ``sha256`` digests are supported.

The referrers of a manifest come from the OCI 1.1 referrers API, else (a registry
without it answers 404) from the tag-schema fallback: an image index tagged
``sha256-<hex>`` listing them, which :meth:`Registry.add_referrer_fallback` maintains.
A listing is what the registry claims: the caller fetches each referrer manifest and
checks its ``subject`` before trusting it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO
from urllib.parse import quote, urljoin

from omsign.oci._auth import Credentials
from omsign.oci._blob import BlobStream, RangeStream, read_exactly
from omsign.oci._errors import NotFoundError, RegistryContentError, RegistryError
from omsign.oci._http import Transport, finish
from omsign.oci._reference import DIGEST_RE, Reference, check_digest
from omsign.oci._referrers import (
    INDEX_MEDIA_TYPE,
    fallback_index,
    fallback_tag,
    index_descriptors,
    referrers_api,
)

__all__ = [
    "BlobStream",
    "INDEX_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPES",
    "MAX_MANIFEST",
    "Registry",
    "digest_of",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_MEDIA_TYPES = (
    MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MAX_MANIFEST = 4 << 20
_MAX_ERROR = 1 << 14
_CHUNK = 1 << 20


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """A client for one repository of an OCI registry (see the module docstring).

    Args:
        reference_or_host: a :class:`Reference` or its text (its registry and repository
            are used), or a bare host (``host:port``) with ``repository`` given.
        insecure: speak plain HTTP to this registry (see :mod:`omsign.oci._http`).
        credentials: use these instead of the Docker configuration's.
        repository: the repository, when ``reference_or_host`` is a host.
    """

    def __init__(
        self,
        reference_or_host: Reference | str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        repository: str | None = None,
    ) -> None:
        if isinstance(reference_or_host, str) and "/" not in reference_or_host.removeprefix(
            "oci://"
        ):
            host = reference_or_host.removeprefix("oci://")
            reference = Reference.parse(f"{host}/{repository or 'unset'}")
        else:
            reference = (
                reference_or_host
                if isinstance(reference_or_host, Reference)
                else Reference.parse(reference_or_host)
            )
            if repository is not None:
                reference = Reference.parse(f"{reference.registry}/{repository}")
        self.reference = reference
        self.repository = reference.repository
        api_host = (
            "registry-1.docker.io" if reference.registry == "docker.io" else reference.registry
        )
        self.transport = Transport(api_host, insecure=insecure, credentials=credentials)

    @property
    def _repo(self) -> str:
        return f"/v2/{self.repository}"

    def _scope(self, push: bool = False) -> str:
        return f"repository:{self.repository}:{'pull,push' if push else 'pull'}"

    def _ref(self, ref: Reference | str | None) -> str:
        """The tag or digest that names a manifest in this repository."""
        if ref is None:
            return self.reference.reference
        if isinstance(ref, Reference):
            if ref.repository != self.repository:
                raise RegistryError(f"{ref}: not in the repository {self.repository}")
            return ref.reference
        if DIGEST_RE.fullmatch(ref) or ("/" not in ref and "@" not in ref and ":" not in ref):
            return ref
        return self._ref(Reference.parse(ref))

    def _where(self, ref: str) -> str:
        sep = "@" if ref.startswith("sha256:") else ":"
        return f"{self.reference.registry}/{self.repository}{sep}{ref}"

    def _failed(self, response: Any, what: str) -> RegistryError:
        body = response.read(_MAX_ERROR)
        finish(response)
        detail = ""
        try:
            errors = json.loads(body).get("errors") or []
            detail = "; ".join(str(e.get("message") or e.get("code")) for e in errors[:3])
        except (ValueError, AttributeError, TypeError):
            pass
        if response.status == 404:
            return NotFoundError(f"{what}: not found in the registry")
        if response.status == 403:
            return RegistryError(
                f"{what}: the registry denies access (HTTP 403{': ' + detail if detail else ''})",
                hint="check that these credentials may use this repository",
            )
        return RegistryError(
            f"{what}: the registry answered HTTP {response.status}{': ' + detail if detail else ''}"
        )

    # Manifests -------------------------------------------------------------------------

    def resolve(self, ref: Reference | str | None = None) -> tuple[str, str]:
        """The digest and media type of a manifest (a tag resolved with one request).

        Raises:
            NotFoundError: no such manifest.
            RegistryError: the registry cannot be used.
        """
        name = self._ref(ref)
        response = self.transport.request(
            "HEAD",
            f"{self._repo}/manifests/{quote(name, safe=':')}",
            scope=self._scope(),
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
        )
        if response.status != 200:
            raise self._failed(response, self._where(name))
        finish(response)
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if name.startswith("sha256:"):
            if digest and digest != name:
                raise RegistryContentError(
                    f"{self._where(name)}: the registry names digest {digest}"
                )
            digest = name
        if not DIGEST_RE.fullmatch(digest):  # no digest header: read the manifest itself
            _, digest, media_type = self._get_manifest(name, None)
        return digest, media_type

    def manifest(self, ref: Reference | str | None = None) -> tuple[bytes, str, str]:
        """A manifest's bytes, digest and media type, fetched by digest and checked.

        A tag is first resolved to a digest (:meth:`resolve`); the manifest is then
        fetched by that digest, and its bytes must hash to it.

        Raises:
            NotFoundError: no such manifest.
            RegistryContentError: the bytes do not match the digest, or exceed 4 MiB.
            RegistryError: the registry cannot be used.
        """
        name = self._ref(ref)
        if not name.startswith("sha256:"):
            name, _ = self.resolve(name)
        return self._get_manifest(name, name)

    def _get_manifest(self, name: str, digest: str | None) -> tuple[bytes, str, str]:
        where = self._where(name)
        response = self.transport.request(
            "GET",
            f"{self._repo}/manifests/{quote(name, safe=':')}",
            scope=self._scope(),
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
        )
        if response.status != 200:
            raise self._failed(response, where)
        data = response.read(MAX_MANIFEST + 1)
        finish(response)
        if len(data) > MAX_MANIFEST:
            raise RegistryContentError(f"{where}: the manifest is larger than 4 MiB")
        actual = digest_of(data)
        if digest is not None and actual != digest:
            raise RegistryContentError(
                f"{where}: the registry's manifest hashes to {actual}, not to the digest asked for"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return data, actual, media_type

    def push_manifest(self, data: bytes, media_type: str, tag: str | None = None) -> str:
        """Stores a manifest (under ``tag`` too, if given); returns its digest.

        Raises:
            RegistryError: the registry refuses it.
        """
        digest = digest_of(data)
        name = tag or digest
        response = self.transport.request(
            "PUT",
            f"{self._repo}/manifests/{quote(name, safe=':')}",
            scope=self._scope(push=True),
            headers={"Content-Type": media_type},
            body=data,
        )
        if response.status not in (200, 201):
            raise self._failed(response, self._where(name))
        finish(response)
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise RegistryContentError(f"{self._where(name)}: the registry stored digest {echoed}")
        return digest

    # Blobs -----------------------------------------------------------------------------

    def blob(self, digest: str, size: int | None = None) -> BlobStream:
        """A blob's bytes as a stream; its end raises if they do not match ``digest``/``size``.

        Raises:
            NotFoundError: no such blob.
            RegistryContentError: (when read to the end) the bytes are not the blob.
        """
        check_digest(digest)
        response = self.transport.request(
            "GET", f"{self._repo}/blobs/{digest}", scope=self._scope()
        )
        if response.status != 200:
            raise self._failed(response, self._where(digest))
        return BlobStream(response, digest, size, self._where(digest))

    def blob_range(self, digest: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a blob (fewer only at its end). Not checked: a range
        cannot be; whoever uses it checks what it computes from it.

        Raises:
            NotFoundError: no such blob.
            RegistryContentError: the registry answered another range.
        """
        if end <= start:
            return b""
        with self.blob_section(digest, start, end) as section:
            return read_exactly(section, end - start)

    def blob_section(self, digest: str, start: int, end: int | None = None) -> RangeStream:
        """Bytes ``[start, end)`` of a blob (``end`` None: to its end) as a stream.

        One request, read as the caller reads (a registry that ignores ranges is read
        from the blob's start, skipping). Not checked, as :meth:`blob_range`.

        Raises:
            NotFoundError: no such blob.
            RegistryContentError: the registry answered another range.
        """
        check_digest(digest)
        last = "" if end is None else str(end - 1)
        response = self.transport.request(
            "GET",
            f"{self._repo}/blobs/{digest}",
            scope=self._scope(),
            headers={"Range": f"bytes={start}-{last}"},
        )
        where = self._where(digest)
        if response.status == 416:
            finish(response)
            return RangeStream(None, 0)
        limit = None if end is None else end - start
        if response.status == 200:  # no range support: skip to the start
            skip = start
            while skip > 0:
                chunk = response.read(min(_CHUNK, skip))
                if not chunk:
                    finish(response)
                    return RangeStream(None, 0)
                skip -= len(chunk)
        elif response.status == 206:
            got = response.headers.get("Content-Range", "")
            if not got.startswith(f"bytes {start}-"):
                finish(response)
                raise RegistryContentError(f"{where}: the registry answered range {got!r}")
        else:
            raise self._failed(response, where)
        return RangeStream(response, limit)

    def has_blob(self, digest: str) -> bool:
        """Whether the repository holds the blob."""
        response = self.transport.request(
            "HEAD", f"{self._repo}/blobs/{check_digest(digest)}", scope=self._scope()
        )
        finish(response)
        if response.status in (200, 404):
            return bool(response.status == 200)
        raise self._failed(response, self._where(digest))

    def push_blob(self, data: bytes | os.PathLike[str] | BinaryIO) -> str:
        """Uploads a blob (bytes, a file path or a binary file) unless present; its digest.

        Raises:
            RegistryError: the registry refuses it.
        """
        body: bytes | BinaryIO
        if isinstance(data, bytes):
            body, digest, size = data, digest_of(data), len(data)
        else:
            body = open(data, "rb") if isinstance(data, os.PathLike) else data  # noqa: SIM115
            hasher, size = hashlib.sha256(), 0
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                hasher.update(chunk)
                size += len(chunk)
            digest = "sha256:" + hasher.hexdigest()
        try:
            if self.has_blob(digest):
                return digest
            response = self.transport.request(
                "POST", f"{self._repo}/blobs/uploads/", scope=self._scope(push=True)
            )
            if response.status != 202:
                raise self._failed(response, f"{self._where(digest)} (upload)")
            finish(response)
            location = urljoin(self.transport.base + "/", response.headers.get("Location", ""))
            location += ("&" if "?" in location else "?") + f"digest={quote(digest)}"
            if not isinstance(body, bytes):
                body.seek(0)
            response = self.transport.request(
                "PUT",
                location,
                scope=self._scope(push=True),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                body=body,
            )
            if response.status not in (201, 204):
                raise self._failed(response, f"{self._where(digest)} (upload)")
            finish(response)
        finally:
            if isinstance(data, os.PathLike) and not isinstance(body, bytes):
                body.close()
        return digest

    # Referrers -------------------------------------------------------------------------

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
        """The descriptors of the manifests that name ``digest`` as their subject.

        From the referrers API, else the ``sha256-<hex>`` tag fallback; filtered by
        ``artifact_type`` when given. These are claims: check each manifest's subject.

        Raises:
            RegistryContentError: the listing is malformed or too large.
            RegistryError: the registry cannot be used.
        """
        check_digest(digest)
        found = referrers_api(self, digest, artifact_type)
        if found is None:
            found = fallback_index(self, digest)
        if artifact_type is not None:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    def add_referrer_fallback(self, subject_digest: str, descriptor: dict[str, Any]) -> str:
        """Adds ``descriptor`` to the ``sha256-<hex>`` tag index of ``subject_digest``.

        For registries without the referrers API. Read, extended and pushed again: two
        writers at once may lose one entry (the registry offers no compare-and-swap).

        Returns:
            The digest of the index now tagged.
        """
        tag = fallback_tag(subject_digest)
        try:
            data, _, _ = self.manifest(tag)
            index = json.loads(data)
            index_descriptors(data, self._where(tag))
        except NotFoundError:
            index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}
        manifests = index.setdefault("manifests", [])
        if not any(d.get("digest") == descriptor.get("digest") for d in manifests):
            manifests.append(descriptor)
        raw = json.dumps(index, separators=(",", ":")).encode()
        return self.push_manifest(raw, INDEX_MEDIA_TYPE, tag=tag)
