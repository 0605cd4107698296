"""Verified loading: open a signed file so that no byte is used before it is proven.

>>> from omsign.loading import open_verified, load_safetensors
>>> model = open_verified("my-model", key="public.pem")          # doctest: +SKIP
>>> with model.open("config.json") as f:                          # doctest: +SKIP
...     config = json.load(f)
>>> tensors = load_safetensors(model, "model.safetensors")        # doctest: +SKIP

What is guaranteed. ``open_verified`` checks the signature and signer and (by default)
every signed file, and keeps the signed manifest. ``VerifiedModel.open(name)`` then
opens the file once (no link is followed unless the signature or the Hugging Face
cache rules allow it), checks that the descriptor is the same file (device and inode)
that verification read, and serves bytes only from a private copy that was hashed and
compared with the signed digest:

- ``files`` signatures are verified as a whole: the first read hashes the entire file
  into the private copy and fails with :class:`~omsign.errors.IntegrityError` before
  any byte is returned if the digest differs.
- ``shards`` signatures are verified shard by shard: a read first hashes the shards
  its range touches, so a loader fails at the first bad byte range and never sees
  bytes that are not proven.

The private copy is held in memory, or, for a piece larger than 128 MiB, in an
unlinked temporary file that no other process can name (an attacker running as the
same user could change the process' memory too). A file replaced, truncated, grown or
modified after verification is therefore caught: by its inode at ``open``, by its size,
or by the digest of the bytes actually read; bytes already proven are never re-read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import io
import itertools
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from omsign._keywords import RuntimeKeywords, ScopeKeywords, VerifyKeywords
from omsign._verified_file import Piece, VerifiedFile, unsafe_error
from omsign._verify import as_integrity
from omsign.errors import (
    IntegrityError,
    ModelError,
    UsageError,
)
from omsign.hashing import FileEntry, open_checked
from omsign.manifest import split_shard_name
from omsign.options import AttestationRequirement, Runtime, VerifyScope

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.hashing import LinkPolicy
    from omsign.manifest import Manifest
    from omsign.policy import Policy, PolicyFile
    from omsign.predicates._scan import ScanVerdict
    from omsign.results import VerificationResult

__all__ = ["VerifiedFile", "VerifiedModel", "load_safetensors", "open_verified"]

_NO_SCAN = "; no fresh passing scan attestation of this model covers it"


class VerifiedModel:
    """A verified model whose signed files can be opened without a check-to-use gap.

    Attributes:
        result: the verification result (signer, manifest, what was checked).
    """

    def __init__(self, result: VerificationResult, *, require_scan: bool = False) -> None:
        """Wraps a verification result.

        Args:
            result: what verification proved.
            require_scan: serve a pickle-based file only when a verified, fresh, passing
                scan verdict among ``result.attestations`` scanned it.
        """
        self.result = result
        self._files = result.manifest.by_file()
        # Sizes proven by a read, for files verification did not hash (lazy, partial).
        self._proven_sizes: dict[str, int] = {}
        self._scans: tuple[ScanVerdict, ...] | None = None
        if require_scan:
            from omsign._required import passing_scans

            self._scans = passing_scans(result.attestations, result.root_digest)

    @classmethod
    def from_hashes(
        cls,
        model: os.PathLike[str],
        manifest: Manifest,
        *,
        root_digest: str | None = None,
        link_policy: LinkPolicy | None = None,
    ) -> VerifiedModel:
        """A model just hashed (not signed): reads are checked against those digests.

        Nothing is trusted here; it serves exactly the bytes whose digests are in
        ``manifest`` (an attestation about ``root_digest`` covers these bytes).

        Args:
            model: the model's local path.
            manifest: the manifest just computed, in the OMS form.
            root_digest: the hex root digest a statement names (default: the manifest's).
            link_policy: the links its listing followed.
        """
        from pathlib import Path

        from omsign.results import VerificationResult

        path = Path(model)
        result = VerificationResult(
            model=path,
            signature=Path(),
            method="digest",
            signer="",
            issuer=None,
            signed_at=None,
            root_digest=root_digest or manifest.root_digest().hex(),
            subject_name=path.name,
            serialization=manifest.serialization,
            verified=tuple(sorted(manifest.by_file())),
            manifest=manifest,
            link_policy=link_policy,
        )
        return cls(result)

    def _scan_clears(self, name: str) -> bool:
        """A verified, passing scan verdict that has not expired scanned and passed ``name``."""
        now = dt.datetime.now(dt.timezone.utc)
        for verdict in self._scans or ():
            scanned = verdict.file(name)
            if verdict.expires > now and scanned is not None and scanned.passed:
                return True
        return False

    @property
    def files(self) -> tuple[str, ...]:
        """The signed file names, sorted."""
        return tuple(sorted(self._files))

    def open(self, name: str, *, allow_pickle: bool = False) -> io.BufferedReader:
        """Opens a signed file for reading; bytes are verified before they are returned.

        Args:
            name: the file's model-relative name as signed (``/``-separated).
            allow_pickle: serve pickle-based files too (see
                :mod:`omsign.integrations.unsafe`); loading them can run code.

        Returns:
            A buffered binary reader; closing it releases the file and private copies.

        Raises:
            IntegrityError: the file is not signed, was replaced or changed, or (when read)
                its bytes differ from the signed digest.
            ModelError: the file cannot be opened.
            UnsafeFormatError: a pickle-based file, without ``allow_pickle``.
        """
        return io.BufferedReader(self.open_raw(name, allow_pickle=allow_pickle))

    def open_raw(self, name: str, *, allow_pickle: bool = False) -> VerifiedFile:
        """Like :meth:`open`, without the buffering layer."""
        from omsign.integrations.unsafe import sniff_length, unsafe_by_name

        if not allow_pickle and self._scans is not None:
            allow_pickle = self._scan_clears(name)
        reason = None if allow_pickle else unsafe_by_name(name)
        if reason is not None:
            if self._scans is not None:
                reason += _NO_SCAN
            raise unsafe_error(name, reason)
        raw = self._open_raw(name)
        # By content, at the first read (nothing is read yet), unless the name rules it out.
        raw.sniff = not allow_pickle and sniff_length(name) > 0
        if self._scans is not None:
            raw.refusal_note = _NO_SCAN
        return raw

    @property
    def scan_required(self) -> bool:
        """Pickle-based files are served when a passing scan verdict covers them."""
        return self._scans is not None

    def _open_raw(self, name: str) -> VerifiedFile:
        if name not in self._files:
            raise IntegrityError(f"{name}: not a signed file of {self.result.model}")
        entry = self._entry(name)
        fd = _open_entry(entry)
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(os.close, fd)
            st = os.fstat(fd)
            seen = self.result.identities.get(name)
            if seen is not None and seen != (st.st_dev, st.st_ino):
                raise IntegrityError(f"{name}: was replaced after it was verified")
            verified_size = self.result.sizes.get(name, self._proven_sizes.get(name))
            if verified_size is not None and verified_size != st.st_size:  # before any read
                raise IntegrityError(f"{name}: size changed after it was verified")
            pieces = self._pieces(name, st.st_size)
            if pieces[-1].end != st.st_size:
                raise IntegrityError(
                    f"{name}: size {st.st_size} differs from the signed size {pieces[-1].end}"
                )
            cleanup.pop_all()
        return VerifiedFile(
            name,
            fd,
            pieces,
            self.result.serialization.hash_type,
            on_proven=functools.partial(self._proven_sizes.__setitem__, name),
        )

    def read_bytes(self, name: str, *, allow_pickle: bool = False) -> bytes:
        """The whole content of a signed file, verified (see :meth:`open`)."""
        raw = self.open_raw(name, allow_pickle=allow_pickle)
        try:
            return raw.read_all_verified()
        finally:
            raw.close()

    def _entry(self, name: str) -> FileEntry:
        from omsign.sources import resolve_source

        model, ser = self.result.model, self.result.serialization
        source = resolve_source(model, link_policy=self.result.link_policy)
        try:
            found = source.entries(allow_symlinks=ser.allow_symlinks, names=[name])
        except ModelError as exc:
            raise as_integrity(exc) from None
        if not found:
            raise ModelError(f"{name}: signed file is absent from {model}")
        entry = found[0]
        if not isinstance(entry, FileEntry):
            raise ModelError(f"{model}: verified loading reads models on this machine")
        return entry

    def _pieces(self, name: str, size: int) -> list[Piece]:
        items = self._files[name]
        if self.result.serialization.method == "files":
            return [Piece(0, size, next(iter(items.values())))]
        pieces = []
        for resource, digest in items.items():
            _, start, end = split_shard_name(resource)
            pieces.append(Piece(start, end, digest))
        pieces.sort(key=lambda p: p.start)
        if pieces[0].start != 0 or any(a.end != b.start for a, b in itertools.pairwise(pieces)):
            raise IntegrityError(f"{name}: the signed shards do not cover the file contiguously")
        return pieces


def _open_entry(entry: FileEntry) -> int:
    """Opens exactly the file that was looked up (no link swapped in, no FIFO)."""
    try:
        return open_checked(entry)
    except ModelError as exc:
        raise as_integrity(exc) from None


def open_verified(
    model: str | os.PathLike[str],
    *,
    verify_content: bool = True,
    policy: Policy | PolicyFile | None = None,
    signature: str | os.PathLike[str] | None = None,
    scope: VerifyScope | None = None,
    runtime: Runtime | None = None,
    require_attestations: Sequence[AttestationRequirement | str] = (),
    require_scan: bool = False,
    **options: Unpack[VerifyKeywords],
) -> VerifiedModel:
    """Verifies a model and returns it ready for verified reads.

    Args:
        model: file, directory or ``hf://ORG/NAME[@REVISION]``.
        verify_content: hash every signed file now, as :func:`omsign.verify` does
            (default). With False only the signature and signer are checked now; file
            content is then checked only as it is read, which reads each file once.
        policy: an explicit :mod:`omsign.policy` object, instead of the trust keywords.
        signature: bundle path (default ``MODEL/model.sig`` or ``MODEL.sig``).
        scope: what to check now, as for :func:`omsign.verify`; without
            ``verify_content`` only its ``link_policy`` applies.
        runtime: how to run the hashing (only with ``verify_content``).
        require_attestations: attestations the model must have, as for
            :func:`omsign.verify`.
        require_scan: serve a pickle-based file (which is otherwise refused unless
            ``allow_pickle``) only when a scan attestation of this model, verified
            under the same trust, fresh and passing, scanned that file and found
            nothing (see ``omsign attest --scan``). Also on when ``policy`` is a trust
            policy file whose rule for the model requires a scan attestation.
        **options: the keywords of :func:`omsign.verify` (trust: ``key``,
            ``cert_chain``, ``identity`` and ``issuer``...; scope: ``allow_missing``,
            ``files``...; runtime: ``workers``...).

    Returns:
        The verified model.

    Raises:
        omsign.errors.VerificationError: as :func:`omsign.verify`.
    """
    from omsign._api import requirements, resolve_policy, verify
    from omsign._keywords import check_keywords, pick, verify_scope
    from omsign._keywords import runtime as _runtime

    check_keywords("open_verified", options, VerifyKeywords)
    needs = requirements(require_attestations)
    require_scan = require_scan or _policy_asks_for_scan(policy, model)
    if verify_content:
        result = verify(
            model,
            policy=policy,
            signature=signature,
            scope=scope,
            runtime=runtime,
            require_attestations=needs,
            read_attestations=require_scan,
            **options,
        )
        return VerifiedModel(result, require_scan=require_scan)
    from omsign._verify import verify_signature_only

    trust = resolve_policy(policy, options, model)
    checked = verify_scope(scope, options)
    need_content = sorted(
        {*pick(options, ScopeKeywords), *pick(options, RuntimeKeywords)} - {"link_policy"}
    )
    if scope is not None and dataclasses.replace(checked, link_policy=None) != VerifyScope():
        need_content.append("scope")
    if runtime is not None:
        _runtime(runtime, options)
        need_content.append("runtime")
    if need_content:
        raise UsageError(f"options {', '.join(need_content)} need verify_content=True")
    result = verify_signature_only(
        model, trust, signature=signature, link_policy=checked.link_policy
    )
    if needs or require_scan:
        from omsign._required import check_required

        result = check_required(result, trust, needs, signature=signature, model=model)
    from omsign.policy._file import PolicyFile

    if isinstance(policy, PolicyFile):  # the attestations its rule requires, as verify does
        from omsign._api import rule_attestations

        result = rule_attestations(policy, model, result, signature)
    return VerifiedModel(result, require_scan=require_scan)


def _policy_asks_for_scan(policy: object, model: str | os.PathLike[str]) -> bool:
    """Whether a trust policy file's rule for the model requires a scan attestation."""
    from omsign.policy._file import PolicyFile

    if not isinstance(policy, PolicyFile):
        return False
    from omsign.attestations import resolve_type
    from omsign.predicates._scan import PREDICATE_TYPE

    return any(
        resolve_type(ra.requirement.predicate_type) == PREDICATE_TYPE
        for ra in policy.decide(model).attestations
    )


def load_safetensors(
    verified: VerifiedModel,
    name: str,
    *,
    framework: str = "numpy",
    tensors: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Loads the tensors of a signed ``.safetensors`` file from exactly the verified bytes.

    Tensors are read one at a time (memory is bounded by the tensors asked for); see
    :mod:`omsign.integrations.safetensors`, which also loads sharded checkpoints.

    Args:
        verified: from :func:`open_verified`.
        name: the file's signed name.
        framework: ``numpy`` (default, or ``np``), ``torch`` (``pt``) or ``jax`` (``flax``).
        tensors: only these tensors (default: all).

    Returns:
        ``{tensor name: array}``.

    Raises:
        IntegrityError: the file is not signed, its bytes differ from the signature, or
            it is not a valid safetensors file.
        BackendUnavailableError: the framework is not installed.
    """
    from omsign.integrations.safetensors import load

    return load(verified, name, framework=framework, tensors=tensors)
