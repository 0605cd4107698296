"""Models in OCI registries on the command line: one signature, two forms.

A folder is pushed as ModelPack raw layers and as tar layers, signed in the registry
(``omsign sign oci://...``), verified there, pulled, and the pulled folder verified with
the same bundle; and the reverse, a folder signed before its push verifies in the
registry. On the OCI 1.1 test registry (referrers API) and on Debian's docker-registry
(tag fallback, htpasswd credentials from a Docker config file). Negatives: a tag moved to
a manifest with one layer swapped, a blob whose bytes are not its digest, a manifest that
is not its digest, a signature referrer of another manifest, a tar member named ``../``,
wrong credentials.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.ocimodel import (
    MODELPACK_ARTIFACT,
    Layer,
    PlainClient,
    layers_for,
    model_files,
    modelpack_media_type,
    pull_model,
    push_layers,
    push_model,
    sha256_digest,
    tar_of,
)
from services.docker_registry import DockerRegistry
from services.oci_registry import PASSWORD, USER, OciRegistry

Cli = Callable[..., CliResult]
FILES = {
    "config.json": b'{"hidden_size": 8}\n',
    "model.safetensors": bytes(range(256)) * 64,
    "tokenizer/tokenizer.json": b'{"vocab": {}}\n',
    "README.md": b"# a model\n",
}


@dataclass
class Target:
    """A registry to push to, the client that pushes, and its ``oci://`` host."""

    client: PlainClient
    host: str
    kind: str

    def ref(self, repo: str, at: str) -> str:
        return f"oci://{self.host}/{repo}" + ("@" if at.startswith("sha256:") else ":") + at


def _docker_config(tmp_path: Path, host: str, user: str, password: str) -> Path:
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return folder


@pytest.fixture(params=["oci", "distribution"])
def target(
    request: pytest.FixtureRequest, oci_registry: OciRegistry, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Target:  # fmt: skip
    if request.param == "oci":
        return Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    docker: DockerRegistry = request.getfixturevalue("docker_registry")
    config = _docker_config(tmp_path, docker.host, docker.user, docker.password)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return Target(
        PlainClient(docker.url, docker.user, docker.password), docker.host, "distribution"
    )


def _repo(request: pytest.FixtureRequest) -> str:
    """A repository of its own per test (the docker-registry is shared by the session)."""
    return "cli/" + "".join(c if c.isalnum() else "-" for c in request.node.name).strip("-").lower()


@pytest.mark.parametrize("layout", ["raw", "tar"])
def test_sign_in_registry_verify_there_and_pulled(
    target: Target, layout: str, tmp_path: Path, p256: KeyPair, cli: Cli,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    _round_trip(target, _repo(request), layout, tmp_path, p256, cli)


@pytest.mark.parametrize("layout", ["tar+gzip", "oras", "modelcar"])
def test_other_layouts_round_trip(
    oci_registry: OciRegistry, layout: str, tmp_path: Path, p256: KeyPair, cli: Cli,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    target = Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    _round_trip(target, _repo(request), layout, tmp_path, p256, cli)


def _round_trip(
    target: Target, repo: str, layout: str, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    """Push, sign in the registry, verify there, pull, verify the folder and a subset."""
    model = make_model(tmp_path / "model", FILES)
    digest = push_model(target.client, repo, model, layout)
    copy = tmp_path / "registry-copy.sig"
    signed = cli("sign", target.ref(repo, "v1"), "--key", p256.private, "--signature", copy)
    assert signed.code == 0, signed.err
    verified = cli("verify", target.ref(repo, digest), "--key", p256.public)
    assert verified.code == 0, verified.err
    pulled = tmp_path / "pulled"
    pull_model(target.client, repo, digest, pulled)
    assert model_files(pulled) == model_files(model)
    local = cli("verify", pulled, "--key", p256.public, "--signature", copy)
    assert local.code == 0, local.err
    (pulled / "README.md").unlink()  # a pulled subset
    subset = cli("verify", pulled, "--key", p256.public, "--signature", copy, "--allow-missing")
    assert subset.code == 0, subset.err
    one = cli("verify", pulled, "--key", p256.public, "--signature", copy,
              "--files", "config.json")  # fmt: skip
    assert one.code == 0, one.err
    # the copy is the registry's bundle, byte for byte
    (referrer,) = _referrers(target, repo, digest)
    layer = json.loads(target.client.manifest(repo, referrer)[0])["layers"][0]
    assert target.client.blob(repo, layer["digest"]) == copy.read_bytes()


def _referrers(target: Target, repo: str, digest: str) -> list[str]:
    """The referrers listed by the API (ours) or the sha256-<hex> tag index (distribution)."""
    if target.kind == "oci":
        index = target.client.request("GET", f"/v2/{repo}/referrers/{digest}")[2]
    else:
        index = target.client.manifest(repo, "sha256-" + digest.split(":", 1)[1])[0]
    return [d["digest"] for d in json.loads(index)["manifests"]]


def test_folder_signed_before_push_verifies_in_the_registry(
    target: Target, tmp_path: Path, p256: KeyPair, cli: Cli, request: pytest.FixtureRequest
) -> None:
    repo = _repo(request)
    model = make_model(tmp_path / "model", FILES)
    assert cli("sign", model, "--key", p256.private).code == 0
    push_model(target.client, repo, model, "tar")  # model.sig stays behind
    r = cli("verify", target.ref(repo, "v1"), "--key", p256.public,
            "--signature", model / "model.sig")  # fmt: skip
    assert r.code == 0, r.err
    unsigned = cli("verify", target.ref(repo, "v1"), "--key", p256.public)
    assert unsigned.code == 1
    assert "no signature found" in unsigned.err


def _signed_in_registry(
    target: Target, repo: str, tmp_path: Path, key: KeyPair, cli: Cli, layout: str = "raw"
) -> str:
    digest = push_model(target.client, repo, make_model(tmp_path / "model", FILES), layout)
    r = cli("sign", target.ref(repo, "v1"), "--key", key.private)
    assert r.code == 0, r.err
    return digest


def test_tag_moved_to_a_manifest_with_a_swapped_layer(
    target: Target, tmp_path: Path, p256: KeyPair, cli: Cli, request: pytest.FixtureRequest
) -> None:
    repo = _repo(request)
    signed = _signed_in_registry(target, repo, tmp_path, p256, cli)
    files = {**FILES, "model.safetensors": b"backdoored weights"}
    push_layers(target.client, repo, layers_for(sorted(files.items()), "raw"), tag="v1")
    # the signature is a referrer of the signed manifest: the moved tag has none
    r = cli("verify", target.ref(repo, "v1"), "--key", p256.public)
    assert r.code == 1
    assert "no signature found" in r.err
    assert cli("verify", target.ref(repo, signed), "--key", p256.public).code == 0


def test_layer_swapped_under_the_same_tag_is_a_difference(
    target: Target, tmp_path: Path, p256: KeyPair, cli: Cli, request: pytest.FixtureRequest
) -> None:
    repo = _repo(request)
    model = make_model(tmp_path / "model", FILES)
    copy = tmp_path / "copy.sig"
    push_model(target.client, repo, model, "raw")
    assert cli("sign", target.ref(repo, "v1"), "--key", p256.private, "--signature", copy).code == 0
    files = {**FILES, "model.safetensors": b"backdoored weights"}
    push_layers(target.client, repo, layers_for(sorted(files.items()), "raw"), tag="v1")
    r = cli("verify", target.ref(repo, "v1"), "--key", p256.public, "--signature", copy)
    assert r.code == 1
    assert "model.safetensors" in r.err
    assert len(r.err.strip().splitlines()) <= 3, r.err


def test_blob_that_is_not_its_digest(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    target = Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    digest = _signed_in_registry(target, "cli/lying-blob", tmp_path, p256, cli, "tar")
    manifest = json.loads(target.client.manifest("cli/lying-blob", digest)[0])
    layer = manifest["layers"][0]
    swapped = tar_of([(layer["annotations"]["org.cncf.model.filepath"], b"evil")])
    oci_registry.state.add_blob("cli/lying-blob", layer["digest"], swapped)
    r = cli("verify", target.ref("cli/lying-blob", digest), "--key", p256.public)
    assert r.code == 1
    assert "does not hash to" in r.err or "bytes" in r.err, r.err


def test_manifest_that_is_not_its_digest(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    target = Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    digest = _signed_in_registry(target, "cli/lying-manifest", tmp_path, p256, cli)
    data, media_type = target.client.manifest("cli/lying-manifest", digest)
    lie = data.replace(b'"model.safetensors"', b'"model.safetensorz"')
    oci_registry.state.add_manifest("cli/lying-manifest", digest, lie, media_type)
    r = cli("verify", target.ref("cli/lying-manifest", digest), "--key", p256.public)
    assert r.code == 1
    assert "hashes to" in r.err, r.err


def test_signature_of_another_manifest_is_refused(
    docker_registry: DockerRegistry, tmp_path: Path, p256: KeyPair, cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = _docker_config(tmp_path, docker_registry.host, docker_registry.user,
                            docker_registry.password)  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    client = PlainClient(docker_registry.url, docker_registry.user, docker_registry.password)
    target = Target(client, docker_registry.host, "distribution")
    repo = "cli/other-subject"
    signed = _signed_in_registry(target, repo, tmp_path, p256, cli)
    files = {**FILES, "model.safetensors": b"other weights"}
    victim, _ = push_layers(client, repo, layers_for(sorted(files.items()), "raw"), tag="v2")
    index, _ = client.manifest(repo, "sha256-" + signed.split(":", 1)[1])
    client.push_manifest(repo, "sha256-" + victim.split(":", 1)[1], index,
                         "application/vnd.oci.image.index.v1+json")  # fmt: skip
    r = cli("verify", target.ref(repo, victim), "--key", p256.public)
    assert r.code == 1
    assert "refused" in r.err and signed in r.err, r.err


def test_tar_member_outside_the_model_is_refused(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    client = PlainClient(oci_registry.url)
    name = "../escape.bin"
    layer = Layer(modelpack_media_type("escape.bin", "tar"), tar_of([(name, b"x")]),
                  {"org.cncf.model.filepath": "escape.bin"})  # fmt: skip
    digest, _ = push_layers(client, "cli/dotdot", [layer], artifact_type=MODELPACK_ARTIFACT)
    ref = f"oci://{oci_registry.host}/cli/dotdot@{digest}"
    r = cli("sign", ref, "--key", p256.private)
    assert r.code != 0
    assert ".." in r.err
    assert len(r.err.strip().splitlines()) <= 2, r.err
    assert oci_registry.state.referrers("cli/dotdot", digest) == []


def test_bearer_token_over_tls_with_the_ca_bundle(
    oci_registry_factory: Any, tmp_path: Path, p256: KeyPair, cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    registry: OciRegistry = oci_registry_factory(auth="bearer", tls=True)
    client = PlainClient(registry.url, USER, PASSWORD, cafile=registry.ca_path)
    digest = push_model(client, "cli/tls", make_model(tmp_path / "m", FILES), "raw")
    monkeypatch.setenv(
        "DOCKER_CONFIG", str(_docker_config(tmp_path, registry.host, USER, PASSWORD))
    )
    ref = f"oci://{registry.host}/cli/tls@{digest}"
    # the test CA is not trusted yet (another repository: clients are kept per repository)
    untrusted = cli("verify", ref.replace("cli/tls@", "cli/tls-untrusted@"), "--key", p256.public)
    assert untrusted.code == 2
    assert "certificate" in untrusted.err.lower(), untrusted.err
    monkeypatch.setenv("SSL_CERT_FILE", str(registry.ca_path))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)  # it would come first
    assert cli("sign", ref, "--key", p256.private).code == 0
    r = cli("verify", ref, "--key", p256.public)
    assert r.code == 0, r.err
    assert any(path == "/token" for _, path in registry.state.requests)


def test_wrong_credentials(
    docker_registry: DockerRegistry, tmp_path: Path, p256: KeyPair, cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    client = PlainClient(docker_registry.url, docker_registry.user, docker_registry.password)
    digest = push_model(client, "cli/credentials", make_model(tmp_path / "m", FILES), "raw")
    config = _docker_config(tmp_path, docker_registry.host, docker_registry.user, "wrong")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    r = cli("verify", f"oci://{docker_registry.host}/cli/credentials@{digest}",
            "--key", p256.public)  # fmt: skip
    assert r.code == 2
    assert len(r.err.strip().splitlines()) <= 2, r.err
    assert "401" in r.err or "credentials" in r.err or "denied" in r.err, r.err
    assert sha256_digest(b"") not in r.err


def test_attest_a_registry_model(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    import omsign
    from omsign.attestations import check_attestations
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    target = Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    digest = _signed_in_registry(target, "cli/attest", tmp_path, p256, cli)
    ref = target.ref("cli/attest", digest)
    predicate = tmp_path / "eval.json"
    predicate.write_text('{"accuracy": 0.9}')
    r = cli("attest", ref, "--predicate-type", "https://example.com/eval/v1",
            "--predicate", predicate, "--key", p256.private)  # fmt: skip
    assert r.code == 0, r.err
    assert cli("verify", ref, "--key", p256.public).code == 0  # the signature is still the main one
    verified = omsign.verify(ref, key=p256.public)
    store = resolve_store(resolve_source(ref))
    (checked,) = check_attestations(
        store, verified.root_digest, omsign.make_policy(key=p256.public)
    )
    assert checked.verified, checked.reason
    assert checked.predicate == {"accuracy": 0.9}
    required = cli("verify", ref, "--key", p256.public,
                   "--require-attestation", "https://example.com/eval/v1")  # fmt: skip
    assert required.code == 0, required.err
    missing = cli("verify", ref, "--key", p256.public, "--require-attestation", "provenance")
    assert missing.code == 1
    assert "provenance" in missing.err


def _key(folder: Path, name: str) -> KeyPair:
    from helpers.pki import make_ec_key, write_private_key, write_public_key

    key = make_ec_key("P-256")
    folder.mkdir(parents=True, exist_ok=True)
    private = write_private_key(folder / f"{name}.pem", key)
    public = write_public_key(folder / f"{name}.pub", key)
    return KeyPair("P-256", private, public)


def test_every_signer_of_a_registry_model_verifies_and_a_threshold_counts_them(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    target = Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    digest = _signed_in_registry(target, "cli/two-signers", tmp_path, p256, cli)
    ref = target.ref("cli/two-signers", digest)
    second, stranger = _key(tmp_path / "keys", "second"), _key(tmp_path / "keys", "stranger")
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'version = 1\ndefault = "deny"\n'
        f'[signers.first]\nkey = "{p256.public}"\n[signers.second]\nkey = "{second.public}"\n'
        f'[[rules]]\nmatch = ["oci://{oci_registry.host}/cli/**"]\nmode = "enforce"\n'
        'signers = ["first", "second"]\nthreshold = 2\n'
    )
    short = cli("verify", ref, "--policy", policy)
    assert short.code == 1, short.err
    assert cli("sign", ref, "--key", second.private).code == 0  # the newest signature now
    for key in (p256, second):  # under one key, any signature referrer that verifies
        r = cli("verify", ref, "--key", key.public)
        assert r.code == 0, r.err
    r = cli("verify", ref, "--key", stranger.public)
    assert r.code == 1
    both = cli("verify", ref, "--policy", policy)
    assert both.code == 0, both.err


def test_the_result_names_the_referrer_that_verified(
    target: Target, tmp_path: Path, p256: KeyPair, cli: Cli, request: pytest.FixtureRequest
) -> None:
    import omsign
    from helpers.reports import parse_report

    repo = _repo(request)
    digest = _signed_in_registry(target, repo, tmp_path, p256, cli)
    (first,) = _referrers(target, repo, digest)
    ref = target.ref(repo, digest)
    second = _key(tmp_path / "keys", "second")
    assert cli("sign", ref, "--key", second.private).code == 0  # the newest signature now
    (newest,) = set(_referrers(target, repo, digest)) - {first}
    base = f"oci://{target.host}/{repo}@"
    # Under the first key the older referrer verifies, not the newest: it is the one named.
    result = omsign.verify(ref, key=p256.public)
    assert result.model == ref
    assert result.signature == base + first
    assert [s.signature for s in result.signers] == [base + first]
    r = cli("verify", ref, "--key", second.public, "--json")
    assert r.code == 0, r.err
    report = parse_report(r.out)
    assert report["model"] == ref
    assert report["signature"] == base + newest
    assert [s["signature"] for s in report["signers"]] == [base + newest]


def test_attest_a_scan_of_a_registry_model_is_a_usage_error(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    # A scan reads the model's files, which are not on this machine: refused in one
    # line, and no attestation is pushed.
    target = Target(PlainClient(oci_registry.url), oci_registry.host, "oci")
    digest = _signed_in_registry(target, "cli/scan", tmp_path, p256, cli)
    ref = target.ref("cli/scan", digest)
    before = _referrers(target, "cli/scan", digest)
    r = cli("attest", ref, "--scan", "picklescan", "--key", p256.private)
    assert r.code == 2, r.err
    assert r.out == ""
    assert r.err == (
        f"omsign: error: {ref}: this predicate is built from the model's files, which must "
        "be on this machine; pull the model and attest the local copy\n"
    )
    assert _referrers(target, "cli/scan", digest) == before
