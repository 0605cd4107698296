"""Signatures of a model in an OCI registry, stored there as referrers of its manifest.

Each bundle is pushed unchanged (the bytes omsign writes to ``model.sig``) as one OCI 1.1
artifact in the shape cosign uses for Sigstore bundles: an image manifest with
``artifactType`` ``application/vnd.dev.sigstore.bundle.v0.3+json``, the empty config
(``application/vnd.oci.empty.v1+json``), one layer of that media type holding the bundle,
``subject`` = the model's manifest descriptor, and the annotations
``dev.sigstore.bundle.content`` (``dsse-envelope``), ``dev.sigstore.bundle.predicateType``
(the statement's predicate type) and ``org.opencontainers.image.created``. A registry
with the referrers API lists it by itself; on one without (distribution 2.8, for one),
the ``sha256-<digest>`` tag index of the model's manifest is extended to list it.

Reading lists the referrers (the API, else that tag index), keeps the two artifact types
that carry model signatures: the one above, and ``application/vnd.model-signing.signature.v0.1``
that Red Hat's model-signing fork writes (as a referrer, or in its tag form: a manifest
tagged ``sha256-<hex>.sig`` with the annotation ``dev.sigstore.model-signing.artifact-type``).
Everything a listing says is a claim: each referrer manifest is fetched by its digest
(checked), its ``subject`` must be this model's manifest (a referrer of another manifest
is refused, never read), it must have exactly one bundle layer of bounded size, and the
blob is checked against its digest. At most :data:`MAX_REFERRERS` are read, newest first
(by ``org.opencontainers.image.created``); the newest is the main signature, and a
verification under one policy accepts any of them that verifies (``any_signature``).

Attestations (:meth:`OciStore.append_claim`) are referrers of the same shape whose
``dev.sigstore.bundle.predicateType`` is not a model signature's; :meth:`OciStore.claims`
reads them, oldest first, with the same checks, one failure reported without hiding the
others. A bundle referrer without that annotation is taken for a signature.

With a local ``signature`` path, signing also writes the same bytes there, and verifying
reads that file: the bundle that verifies the registry copy verifies the pulled folder.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from omsign.bundle import MAX_BUNDLE_BYTES, Bundle, parse_bundle, read_bundle, write_bundle
from omsign.errors import Error, MalformedSignatureError, SignatureNotFoundError, UsageError

if TYPE_CHECKING:
    from omsign.oci import Registry
    from omsign.sources import ModelSource

__all__ = [
    "BUNDLE_ARTIFACT",
    "MAX_REFERRERS",
    "MODEL_SIGNING_ARTIFACT",
    "OciModel",
    "OciStore",
    "open_store",
]

BUNDLE_ARTIFACT = "application/vnd.dev.sigstore.bundle.v0.3+json"
MODEL_SIGNING_ARTIFACT = "application/vnd.model-signing.signature.v0.1"
_MODEL_SIGNING_TAG_ANNOTATION = "dev.sigstore.model-signing.artifact-type"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
CREATED = "org.opencontainers.image.created"
MAX_REFERRERS = 64  # signature referrers read at most
PREDICATE = "dev.sigstore.bundle.predicateType"
# Statements that sign a model (a bundle of another predicate type is an attestation).
_SIGNATURE_PREDICATES = (
    "https://model_signing/signature/v1.0",
    "https://model_signing/Digests/v0.1",
)

log = logging.getLogger(__name__)


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``annotations`` of a descriptor or manifest (empty when absent or malformed)."""
    found = obj.get("annotations")
    return found if isinstance(found, Mapping) else {}


def _is_signature(descriptor: Mapping[str, Any]) -> bool:
    """A referrer that carries a model signature (else an attestation, or something else)."""
    if descriptor.get("artifactType") == MODEL_SIGNING_ARTIFACT:
        return True
    kind = _annotations(descriptor).get(PREDICATE)
    return descriptor.get("artifactType") == BUNDLE_ARTIFACT and kind in (
        None,
        *_SIGNATURE_PREDICATES,
    )


class OciModel(Protocol):
    """What the store needs of a model in a registry (the ``oci://`` source provides it).

    Attributes:
        registry: a client for the model's repository.
        digest: the model's manifest digest (``sha256:...``).
        media_type: the manifest's media type.
        manifest_size: the manifest's size in bytes.
        location: the model's name for messages (``oci://HOST/REPO@DIGEST``).
    """

    registry: Registry
    digest: str
    media_type: str
    manifest_size: int
    location: str


def encode(bundle: Mapping[str, Any]) -> bytes:
    """A bundle's bytes exactly as :func:`omsign.bundle.write_bundle` writes them."""
    return json.dumps(bundle, indent=2, sort_keys=True).encode() + b"\n"


def _predicate_type(bundle: Mapping[str, Any]) -> str | None:
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, Mapping):
        return None
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("payload", ""))))
    except (ValueError, binascii.Error):
        return None
    kind = statement.get("predicateType") if isinstance(statement, dict) else None
    return kind if isinstance(kind, str) else None


class OciStore:
    """The referrers of a model's manifest that carry its signatures (module docstring).

    Args:
        model: the model in its registry.
        local: a local file that also holds the main signature (written on signing, read
            on verifying), or None.
    """

    def __init__(self, model: OciModel, local: Path | None = None) -> None:
        self.model = model
        self.registry = model.registry
        self.local = local
        self.base = f"oci://{self.registry.reference.registry}/{self.registry.repository}"
        self.location = str(local) if local is not None else self._at(model.digest)
        self._tagged: str | None = None  # the fork's sha256-<hex>.sig manifest, once found
        # Verifying under one policy: any signature referrer that verifies will do (a
        # registry keeps every signing); a local copy given is the one signature read.
        self.any_signature = local is None

    def _at(self, digest: str) -> str:
        return f"{self.base}@{digest}"

    # Reading ---------------------------------------------------------------------------

    def _descriptors(self, *, claims: bool = False) -> list[dict[str, Any]]:
        """The signature referrers, newest first (or the attestations, oldest first)."""
        found = self.registry.referrers(self.model.digest)
        wanted = [d for d in found if _is_signature(d) != claims]
        if claims:
            wanted = [d for d in wanted if d.get("artifactType") == BUNDLE_ARTIFACT]
        wanted.sort(key=lambda d: str(_annotations(d).get(CREATED, "")))
        if not claims:
            wanted.reverse()
        if len(wanted) > MAX_REFERRERS:
            log.warning(
                "%s: %d %s referrers; reading %d",
                self.model.location,
                len(wanted),
                "attestation" if claims else "signature",
                MAX_REFERRERS,
            )
        return wanted[:MAX_REFERRERS]

    def locations(self) -> list[str]:
        """The local copy (when given and present), then each signature referrer, newest first."""
        local = [str(self.local)] if self.local is not None and self.local.exists() else []
        remote = [self._at(d["digest"]) for d in self._descriptors()]
        tagged = self._model_signing_tag()
        return local + remote + ([self._at(tagged)] if tagged else [])

    def _missing(self) -> SignatureNotFoundError:
        return SignatureNotFoundError(
            f"{self.model.location}: no signature found (no signature referrer of "
            f"{self.model.digest} in the registry)",
            option="signature",
            hint="sign the model first, or give a local signature file with {option}",
        )

    def read(self, location: str | None = None) -> Bundle:
        """The local copy if given, else the newest referrer, or the one at ``location``."""
        if location is None:
            if self.local is not None:
                return read_bundle(self.local)
            found = self.locations()
            if not found:
                raise self._missing()
            location = found[0]
        if "@sha256:" not in location:
            return read_bundle(Path(location))
        return self._read_referrer(location.rsplit("@", 1)[1])

    def read_all(self) -> list[Bundle]:
        """Every signature: the local copy when given, and every referrer (bounded)."""
        return [bundle for _, bundle in self.read_located()]

    def read_located(self) -> list[tuple[str, Bundle]]:
        """As :meth:`read_all`, each bundle with where it was read (``oci://...@<referrer>``).

        Raises:
            SignatureNotFoundError: there is no signature at all.
            MalformedSignatureError: every referrer was refused (the first reason).
        """
        out: list[tuple[str, Bundle]] = []
        if self.local is not None and self.local.exists():
            out.append((str(self.local), read_bundle(self.local)))
        refused: list[str] = []
        for where in self.locations()[len(out) :]:
            try:
                out.append((where, self._read_referrer(where.rsplit("@", 1)[1])))
            except MalformedSignatureError as exc:
                log.warning("%s", exc)
                refused.append(str(exc))
        if not out:
            if refused:
                raise MalformedSignatureError(refused[0])
            raise self._missing()
        return out

    def _read_referrer(self, digest: str) -> Bundle:
        """Reads the bundle of one referrer manifest, after checking what it is."""
        return parse_bundle(self._referrer_bytes(digest), self._at(digest))

    def _referrer_bytes(self, digest: str) -> bytes:
        """The bundle bytes of one referrer manifest, after checking what it is."""
        from omsign.oci import check_descriptor

        where = self._at(digest)
        data, _, _ = self.registry.manifest(digest)  # fetched by digest, checked
        try:
            manifest = json.loads(data)
        except ValueError:
            raise MalformedSignatureError(f"{where}: the referrer is not JSON") from None
        if not isinstance(manifest, dict):
            raise MalformedSignatureError(f"{where}: the referrer is not a manifest")
        subject = manifest.get("subject")
        if subject is None and digest == self._tagged:
            pass  # the fork's tag form: its tag, sha256-<hex>.sig, names the subject
        elif not isinstance(subject, dict) or subject.get("digest") != self.model.digest:
            named = subject.get("digest") if isinstance(subject, dict) else None
            raise MalformedSignatureError(
                f"{where}: refused: this signature's subject is {str(named)[:80]}, "
                f"not the model's manifest {self.model.digest}"
            )
        layers = manifest.get("layers")
        layers = layers if isinstance(layers, list) else []
        bundles = [
            d for d in layers if isinstance(d, dict) and d.get("mediaType") == BUNDLE_ARTIFACT
        ]
        if len(bundles) != 1:
            raise MalformedSignatureError(
                f"{where}: the referrer must hold exactly one bundle layer"
            )
        layer = check_descriptor(bundles[0], where)
        if layer["size"] > MAX_BUNDLE_BYTES:
            raise MalformedSignatureError(
                f"{where}: the bundle is larger than {MAX_BUNDLE_BYTES >> 20} MiB"
            )
        with self.registry.blob(layer["digest"], layer["size"]) as stream:
            blob = stream.read(MAX_BUNDLE_BYTES + 1)
            stream.read()  # to its end: the size and digest are checked there
        return bytes(blob)

    def _model_signing_tag(self) -> str | None:
        """The digest of the fork's ``sha256-<hex>.sig`` tag manifest, if there is one."""
        from omsign.oci import NotFoundError

        tag = self.model.digest.replace(":", "-", 1) + ".sig"
        try:
            data, digest, _ = self.registry.manifest(tag)
        except NotFoundError:
            return None
        try:
            manifest = json.loads(data)
        except ValueError:
            return None
        annotations = _annotations(manifest) if isinstance(manifest, dict) else {}
        if annotations.get(_MODEL_SIGNING_TAG_ANNOTATION) != MODEL_SIGNING_ARTIFACT:
            return None  # cosign's own legacy signatures live there: not a bundle
        self._tagged = digest
        return digest

    # Writing ---------------------------------------------------------------------------

    def write(self, bundle: Mapping[str, Any]) -> str:
        """Pushes the bundle as a referrer (and writes the local copy, if given)."""
        pushed = self._push(bundle)
        if self.local is not None:
            write_bundle(self.local, bundle)
        return pushed

    def add(self, bundle: Mapping[str, Any]) -> str:
        """Pushes one more signature referrer (the registry keeps every one)."""
        return self._push(bundle)

    def _push(self, bundle: Mapping[str, Any]) -> str:
        from omsign.oci import MANIFEST_MEDIA_TYPE, digest_of

        data = encode(bundle)
        layer_digest = self.registry.push_blob(data)
        config_digest = self.registry.push_blob(EMPTY_CONFIG)
        annotations = {
            "dev.sigstore.bundle.content": "dsse-envelope",
            CREATED: datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        predicate_type = _predicate_type(bundle)
        if predicate_type:
            annotations[PREDICATE] = predicate_type
        title = layer_digest.replace(":", "-", 1) + ".sigstore.json"
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": BUNDLE_ARTIFACT,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config_digest, "size": 2},
            "layers": [
                {
                    "mediaType": BUNDLE_ARTIFACT,
                    "digest": layer_digest,
                    "size": len(data),
                    "annotations": {"org.opencontainers.image.title": title},
                }
            ],
            "subject": {
                "mediaType": self.model.media_type,
                "digest": self.model.digest,
                "size": self.model.manifest_size,
            },
            "annotations": annotations,
        }
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        digest = self.registry.push_manifest(raw, MANIFEST_MEDIA_TYPE)
        if digest not in {d["digest"] for d in self.registry.referrers(self.model.digest)}:
            # No referrers API here: list it in the sha256-<hex> tag index.
            descriptor = {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": digest_of(raw),
                "size": len(raw),
                "artifactType": BUNDLE_ARTIFACT,
                "annotations": annotations,
            }
            self.registry.add_referrer_fallback(self.model.digest, descriptor)
        return self._at(digest)

    def excluded(self) -> list[str]:
        """Nothing: the signatures are beside the model's files, never among them."""
        return []

    # Attestations ------------------------------------------------------------------------

    def claims(self) -> list[tuple[str, bytes | Error]]:
        """Each attestation referrer, oldest first: ``(where, bundle bytes or its error)``.

        Attestations are bundle referrers whose ``dev.sigstore.bundle.predicateType`` is
        not a model signature's; each is checked as a signature referrer is (subject, one
        bounded layer, blob digest), and one that fails is reported, not raised.
        """
        out: list[tuple[str, bytes | Error]] = []
        for descriptor in self._descriptors(claims=True):
            where = self._at(descriptor["digest"])
            try:
                out.append((where, self._referrer_bytes(descriptor["digest"])))
            except Error as exc:
                out.append((where, exc))
        return out

    def append_claim(self, bundle: Mapping[str, Any]) -> str:
        """Pushes an attestation bundle as one more referrer; returns where."""
        return self._push(bundle)


@dataclass
class _Pinned:
    registry: Registry
    digest: str
    media_type: str
    manifest_size: int
    location: str


def open_store(source: ModelSource, signature: str | os.PathLike[str] | None) -> OciStore:
    """The referrers store of an ``oci://`` model (``signature``: a local copy, or None).

    The source gives its registry client, its manifest's media type and either
    ``digest`` and ``manifest_size`` or the pinned ``resolved`` reference and the
    ``manifest`` bytes.

    Raises:
        UsageError: the source does not say which manifest it is.
    """
    found: Any = source
    digest = getattr(found, "digest", None) or getattr(
        getattr(found, "resolved", None), "digest", None
    )
    size = getattr(found, "manifest_size", None)
    if size is None and isinstance(getattr(found, "manifest", None), bytes):
        size = len(found.manifest)
    registry, media_type = getattr(found, "registry", None), getattr(found, "media_type", None)
    if not digest or size is None or registry is None or not media_type:
        raise UsageError(f"{source.location}: no registry signature store for this source")
    model = _Pinned(registry, digest, media_type, size, source.location)
    return OciStore(model, None if signature is None else Path(signature))
