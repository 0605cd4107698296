"""Signatures as files: ``model.sig`` first, further bundles in a companion folder.

The main signature is ``MODEL/model.sig`` for a folder and ``MODEL.sig`` for a single
file, or the path given as ``signature``. More bundles (a second signer) go in the
companion folder named after it with ``.d`` appended (``MODEL/model.sig.d/``,
``MODEL.sig.d/``), one ``*.sig`` file each, named by the SHA-256 of its content.
Attestations go in the claims file beside the main signature, one bundle per line
(see :mod:`omsign.storage._claims`): ``claims.jsonl`` beside ``model.sig``, and
``NAME.claims.jsonl`` beside any other ``NAME.sig`` (``weights.bin.claims.jsonl`` for a
single file ``weights.bin``). All three are left out of the model's files when they lie
inside it, present or not: signing records them among the ignored paths (so another
verifier, model_signing 1.1.1 included, leaves them out too, and co-signers of one
statement sign with them in place) and verification never counts them as unsigned
files. A verification under a threshold policy reads every bundle of the folder; under
one policy, the main signature alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omsign._paths import default_signature, signature_ignore
from omsign.bundle import Bundle, parse_bundle, read_bundle, write_bundle
from omsign.errors import Error, ModelError, SignatureNotFoundError, UsageError
from omsign.hashing import DEFAULT_IGNORES
from omsign.storage._claims import append_line, read_lines

__all__ = ["CLAIMS_NAME", "COMPANION_SUFFIX", "FileStore", "claims_path"]

logger = logging.getLogger("omsign")

COMPANION_SUFFIX = ".d"
CLAIMS_NAME = "claims.jsonl"
_MAX_BUNDLES = 64  # companion bundles read at most (each is bounded by read_bundle)


def claims_path(signature: Path) -> Path:
    """The claims file beside a main signature (see the module docstring)."""
    if signature.name == "model.sig":
        return signature.with_name(CLAIMS_NAME)
    return signature.with_name(signature.name.removesuffix(".sig") + "." + CLAIMS_NAME)


class FileStore:
    """A model's signature files (see the module docstring)."""

    def __init__(self, model: Path | None, signature: str | os.PathLike[str] | None = None) -> None:
        """A store next to (or in) ``model``; None for a model elsewhere (``signature`` given)."""
        self.model = model
        if signature is None and model is None:
            raise ValueError("a signature file for a model elsewhere needs its path")
        self.path = Path(signature) if signature is not None else default_signature(model)  # type: ignore[arg-type]
        self.companion = self.path.with_name(self.path.name + COMPANION_SUFFIX)
        self.claims_file = claims_path(self.path)
        self.location = str(self.path)

    def _companions(self) -> list[Path]:
        if not self.companion.is_dir() or self.companion.is_symlink():
            return []
        try:
            names = sorted(n for n in os.listdir(self.companion) if n.endswith(".sig"))
        except OSError as exc:
            raise ModelError(f"{self.companion}: cannot list signatures ({exc.strerror})") from None
        return [self.companion / n for n in names[:_MAX_BUNDLES]]

    def locations(self) -> list[str]:
        """The main signature (when present), then the companion bundles."""
        main = [str(self.path)] if os.path.lexists(self.path) else []
        return main + [str(p) for p in self._companions()]

    def _missing(self) -> SignatureNotFoundError:
        return SignatureNotFoundError(
            f"{self.model}: no signature found (looked for {self.path})",
            option="signature",
            hint="sign the model first, or give the signature's path with {option}",
        )

    def read(self, location: str | None = None) -> Bundle:
        """Reads the main signature, or the bundle at ``location``."""
        path = self.path if location is None else Path(location)
        if not os.path.lexists(path):
            if location is None:
                raise self._missing()
            raise SignatureNotFoundError(f"{path}: no such signature")
        return read_bundle(path)

    def read_all(self) -> list[Bundle]:
        """Every bundle present, the main signature first."""
        found = self.locations()
        if not found:
            raise self._missing()
        return [read_bundle(Path(p)) for p in found]

    def write(self, bundle: Mapping[str, Any]) -> str:
        """Writes the main signature atomically."""
        write_bundle(self.path, bundle)
        return str(self.path)

    def add(self, bundle: Mapping[str, Any]) -> str:
        """Writes one more bundle into the companion folder, named by its content."""
        data = json.dumps(bundle, sort_keys=True, separators=(",", ":")).encode()
        path = self.companion / (hashlib.sha256(data).hexdigest()[:32] + ".sig")
        try:
            self.companion.mkdir(exist_ok=True)
        except OSError as exc:
            raise ModelError(f"{self.companion}: cannot create ({exc.strerror})") from None
        write_bundle(path, bundle)
        return str(path)

    def claims(self) -> list[tuple[str, bytes | Error]]:
        """Each line of the claims file: ``(path:line, raw bytes or that line's error)``.

        Blank lines are skipped; an absent file has none. Line size and count are
        bounded (see :mod:`omsign.storage._claims`); nothing is parsed here.

        Raises:
            ModelError: the claims file exists but cannot be read at all.
        """
        return read_lines(self.claims_file)

    def append_claim(self, bundle: Mapping[str, Any]) -> str:
        """Appends one bundle as one line of the claims file; returns ``path:line``."""
        data = json.dumps(bundle, sort_keys=True, separators=(",", ":")).encode()
        return append_line(self.claims_file, data)

    def warn_foreign_claims(self) -> None:
        """Warns when the claims file inside the model does not hold bundles.

        Signing always leaves the claims file out; a data file that happens to have its
        name would go unsigned without a word.
        """
        if self.model is None or not signature_ignore(self.model, self.claims_file):
            return
        try:
            lines = self.claims()
        except Error:
            lines = [(str(self.claims_file), b"")]
        for location, raw in lines[:1]:
            try:
                parse_bundle(raw if isinstance(raw, bytes) else b"", location)
            except Error:
                logger.warning(
                    "%s is left out of the signature (it is where attestations are kept), "
                    "but it does not hold signature bundles; if it is part of the model, "
                    "rename it",
                    self.claims_file,
                )

    def excluded(self) -> list[str]:
        """The model paths of the main signature, the companion folder and the claims file.

        Each is listed whether it exists yet or not, so that a signature made before
        any of them appears already leaves them out.
        """
        if self.model is None:
            return []
        out: list[str] = []
        for path in (self.path, self.companion, self.claims_file):
            out += signature_ignore(self.model, path)
        return sorted(out)

    def check_writable(self, ignored: Sequence[str], *, explicit: bool) -> None:
        """Refuses a main signature path that would overwrite a file of the model.

        A signature path is left out of the signature, so one naming a model file would
        drop it unsigned and replace it (for a single file, the model itself). An earlier
        signature there (a bundle) may be replaced; so may a file the model ignores.

        Args:
            ignored: the user's model-relative ignore paths.
            explicit: the path was chosen by the caller (the default is always fine).
        """
        if self.model is None:
            return
        if not self.model.is_dir():
            try:
                same = os.path.samefile(self.model, self.path)
            except OSError:
                same = False
            if same:
                raise UsageError(
                    f"{self.path}: the signature path is the model itself; "
                    "refusing to overwrite it",
                    option="signature",
                    hint="write the signature elsewhere with {option}",
                )
            return
        inside = signature_ignore(self.model, self.path)
        if not explicit or not inside or not os.path.lexists(self.path):
            return
        rel = inside[0]
        if any(rel == i or rel.startswith(i + "/") for i in {*DEFAULT_IGNORES, *ignored}):
            return
        try:
            read_bundle(self.path)
        except Error:
            raise UsageError(
                f"{self.path}: the signature path is part of the model, not an earlier "
                "signature; refusing to overwrite it",
                option="signature",
                hint="write the signature elsewhere with {option}",
            ) from None
