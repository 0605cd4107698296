"""OCI references: ``[oci://]REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]``.

The grammar follows the distribution reference format: the first component is the
registry when it contains a ``.`` or a ``:`` or is ``localhost``; otherwise the reference
names Docker Hub (``docker.io``, one-component names in ``library/``), as ``docker pull``
reads it. Repository components are lower case letters and digits joined by ``.``,
``_``, ``__`` or dashes; a tag is at most 128 characters of ``[A-Za-z0-9_.-]`` not
starting with ``.`` or ``-``; a digest is ``sha256:`` and 64 lower-case hex digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from omsign.errors import UsageError

__all__ = ["DIGEST_RE", "OCI_SCHEME", "Reference", "check_digest"]

OCI_SCHEME = "oci://"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_MAX_REFERENCE = 4096
DOCKER_HUB = "docker.io"


def check_digest(digest: str, where: str = "digest") -> str:
    """Returns ``digest`` if it is ``sha256:<64 hex>``, else raises UsageError."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise UsageError(f"{where}: {digest!r} is not a sha256 digest (sha256:<64 hex digits>)")
    return digest


@dataclass(frozen=True)
class Reference:
    """A parsed OCI reference.

    Attributes:
        registry: the registry's host (and port), e.g. ``ghcr.io`` or ``127.0.0.1:5000``.
        repository: the repository path, e.g. ``org/models/llama``.
        tag: the tag, or None.
        digest: the manifest digest (``sha256:...``), or None.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parses ``[oci://]REGISTRY/REPO[:TAG][@sha256:DIGEST]``.

        Raises:
            UsageError: the reference is malformed.
        """
        if not isinstance(text, str) or len(text) > _MAX_REFERENCE:
            raise UsageError(f"{str(text)[:80]!r}: not an OCI reference")
        body = text[len(OCI_SCHEME) :] if text.startswith(OCI_SCHEME) else text
        where = text
        body, at, digest = body.partition("@")
        if at:
            check_digest(digest, where)
        head, slash, rest = body.partition("/")
        if slash and (("." in head or ":" in head or head == "localhost") or head.startswith("[")):
            registry, path = head, rest
        else:
            registry, path = DOCKER_HUB, body
        tag = None
        last_slash = path.rfind("/")
        colon = path.rfind(":")
        if colon > last_slash:
            path, tag = path[:colon], path[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise UsageError(f"{where}: invalid tag {tag!r}")
        if not _HOST.fullmatch(registry):
            raise UsageError(f"{where}: invalid registry host {registry!r}")
        parts = path.split("/")
        if not path or not all(_COMPONENT.fullmatch(p) for p in parts):
            raise UsageError(
                f"{where}: invalid repository {path!r} (lower-case letters, digits and "
                "separators, expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST])"
            )
        if registry == DOCKER_HUB and len(parts) == 1:
            path = f"library/{path}"
        return cls(registry, path, tag, digest or None)

    @property
    def name(self) -> str:
        """The repository's last component (``llama`` for ``ghcr.io/org/llama:v1``)."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def reference(self) -> str:
        """What names the manifest in the API: the digest if known, else the tag (or latest)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        """The same repository and tag, pinned to ``digest``."""
        return replace(self, digest=check_digest(digest))

    def __str__(self) -> str:
        """``REGISTRY/REPO[:TAG][@DIGEST]``, without the ``oci://`` scheme."""
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def url(self) -> str:
        """The reference as a model name: ``oci://REGISTRY/REPO[:TAG][@DIGEST]``."""
        return OCI_SCHEME + str(self)
