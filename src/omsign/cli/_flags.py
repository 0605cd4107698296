"""How the command line spells each library option: one table for every error hint.

Library errors never name a flag; they name the option (the keyword of ``sign``,
``verify``, ``digest`` or ``open_verified``) and the CLI renders it through
:data:`OPTION_FLAGS` with ``exc.render(OPTION_FLAGS)``.
"""

from __future__ import annotations

__all__ = ["OPTION_FLAGS"]

OPTION_FLAGS: dict[str, str] = {
    # whom to trust (verify) and how to sign
    "key": "--key",
    "certificate": "--cert",
    "chain": "--cert-chain",
    "cert_chain": "--cert-chain",
    "pkcs11_uri": "--pkcs11-uri",
    "password": "--password-file",
    "tsa_url": "--tsa-url",
    "tsa_certs": "--tsa-cert",
    "identity": "--identity",
    "identity_regexp": "--identity-regexp",
    "issuer": "--issuer",
    "github_repository": "--github-repository",
    "github_ref": "--github-ref",
    "github_workflow_name": "--github-workflow-name",
    "identity_token": "--identity-token",
    "oauth_out_of_band": "--oauth-out-of-band",
    "offline": "--offline",
    "staging": "--staging",
    "trust_config": "--trust-config",
    "signature": "--signature",
    "policy": "--policy",
    "history": "--history",
    # hashing
    "hash_algorithm": "--hash",
    "shard_size": "--shard-size",
    "ignore_paths": "--ignore-paths",
    "allow_symlinks": "--allow-symlinks",
    "reuse_digests": "--reuse-digests",
    "compat": "--compat",
    "add": "--add",
    # attestations
    "predicate": "--predicate",
    "predicate_type": "--predicate-type",
    "output": "--output",
    "step": "--step",
    "code": "--code",
    "builder_id": "--builder-id",
    # verification scope and run time
    "ignore_unsigned_files": "--ignore-unsigned-files",
    "allow_missing": "--allow-missing",
    "files": "--files",
    "workers": "--workers",
    "executor": "--executor",
    # lineage
    "search": "--search",
    "search_depth": "--search-depth",
    "max_depth": "--max-depth",
    "allow_roots": "--allow-roots",
    # attestations and scanners
    "require_attestations": "--require-attestation",
    "scan": "--scan",
    "valid_for": "--scan-valid-for",
}
