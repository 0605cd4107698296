"""``omsign.lineage``: the trust and search options turned into a walk of the lineage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omsign._keywords import RuntimeKeywords, TrustOptions, check_keywords, pick
from omsign._keywords import runtime as _runtime
from omsign._lineage._follow import Follower, Verify
from omsign._lineage._graph import Lineage
from omsign._lineage._search import SearchIndex
from omsign.errors import UsageError
from omsign.options import AttestationRequirement, PathLike, Runtime

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.policy import Policy
    from omsign.policy._file import PolicyFile
    from omsign.results import VerificationResult

__all__ = ["LineageKeywords", "lineage"]


class LineageKeywords(TrustOptions, RuntimeKeywords, total=False):
    """Every keyword option of :func:`omsign.lineage`: whom to trust, how to hash."""


def lineage(
    model: PathLike,
    *,
    search: Sequence[PathLike] = (),
    policy: Policy | PolicyFile | None = None,
    signature: PathLike | None = None,
    allow_roots: bool = False,
    max_depth: int = 16,
    search_depth: int = 2,
    history: PathLike | None = None,
    require_attestations: Sequence[AttestationRequirement | str] = (),
    runtime: Runtime | None = None,
    **options: Unpack[LineageKeywords],
) -> Lineage:
    """Follows a model's provenance back to its roots and checks every link.

    The model is verified (signature, signer, content), then its attestations under the
    same trust. Each base model and dataset its verified SLSA provenance names by root
    digest is looked for among ``search``, verified the same way (a dataset without a
    signature by its content digest), and followed in turn.

    Args:
        model: file, directory or ``hf://ORG/NAME[@REVISION]``.
        search: where copies are looked for: folders (scanned ``search_depth`` levels
            down), files, ``hf://`` (the local Hugging Face cache) or
            ``hf://ORG/NAME[@REVISION]``.
        policy: a verifier, or a trust policy file: each artifact is verified as
            :func:`omsign.verify` verifies it under the file (the rule matching it, with
            its signers, files and pins), instead of the trust keywords.
        signature: the model's signature, when not at the default path.
        allow_roots: accept a verified model without provenance as a root. By default
            every model must carry a verified provenance attestation (a removed
            ``claims.jsonl`` line is otherwise invisible); datasets need none.
        max_depth: links followed at most; deeper artifacts fail as not followed.
        search_depth: folder levels scanned below each search folder.
        history: with a policy file whose rule pins signers (``pin = true``), the
            first-use history, as for :func:`omsign.verify`.
        require_attestations: attestations every model of the lineage must have, as
            :func:`omsign.verify` requires them (``"scan:max-age=7d"`` or
            :class:`~omsign.options.AttestationRequirement` values); a model without
            them is a broken link.
        runtime: how to hash; or the keywords ``workers``, ``progress``, ``executor``.
        **options: the trust keywords of :func:`omsign.verify` (``key`` may list
            several keys: each artifact may be signed by any of them) and the keyword
            forms of ``runtime``.

    Returns:
        The graph, each node verified, unverified (and why) or not found; check
        :attr:`Lineage.verified` or call :meth:`Lineage.check`.

    Raises:
        omsign.errors.ModelError: the model itself cannot be read.
        omsign.errors.UsageError: bad options or search places.
    """
    check_keywords("lineage", options, LineageKeywords)
    if max_depth < 0:
        raise UsageError(f"max_depth must be 0 or more, not {max_depth}", option="max_depth")
    run = _runtime(runtime, options)
    from omsign._api import requirements

    needs = requirements(require_attestations)
    verify = _verifier(policy, pick(options, TrustOptions), history, str(model))
    index = SearchIndex(search, depth=search_depth, runtime=run)
    follower = Follower(
        verify, index, allow_roots=allow_roots, max_depth=max_depth, runtime=run, require=needs
    )
    return follower.follow(str(model), None if signature is None else str(signature))


def _verifier(
    policy: Policy | PolicyFile | None,
    trust: dict[str, Any],
    history: PathLike | None,
    model: str,
) -> Verify:
    """How each artifact is verified: as ``verify`` would, under the same trust."""
    from omsign._api import make_policy, resolve_policy
    from omsign._verify import verify_with_policy
    from omsign.policy._file import PolicyFile

    if isinstance(policy, PolicyFile):
        resolve_policy(policy, trust, model)  # refuses a policy given with trust keywords
        policy_file = policy

        def by_rule(where: str, sig: str | None, run: Runtime) -> tuple[VerificationResult, Policy]:
            from omsign._api import verify

            # The rule matching the artifact applies, with its scope and first-use pins.
            result = verify(where, policy=policy_file, signature=sig, runtime=run, history=history)
            return result, policy_file.decide(where).verifier()

        return by_rule
    if history is not None:
        raise UsageError(
            "a signer history applies to a trust policy file", options=("history", "policy")
        )
    fixed = make_policy(**trust) if policy is None else resolve_policy(policy, trust, model)

    def under(where: str, sig: str | None, run: Runtime) -> tuple[VerificationResult, Policy]:
        return verify_with_policy(where, fixed, signature=sig, runtime=run), fixed

    return under
