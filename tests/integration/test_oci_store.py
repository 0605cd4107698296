"""The referrers signature store against real registries.

On the OCI 1.1 test registry (referrers API) and on Debian's docker-registry (no referrers
API: the ``sha256-<digest>`` tag index): the referrer has cosign's bundle shape, the bundle
comes back byte for byte, a local copy is the same bytes, Red Hat's model-signing artifact
type is read, and a referrer of another manifest, a swapped bundle blob or a missing
signature are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from helpers.ocimodel import EMPTY, PlainClient, push_model, sha256_digest
from omsign.errors import MalformedSignatureError, SignatureNotFoundError, VerificationError
from omsign.oci import Credentials, Registry, fallback_tag
from omsign.storage._oci import BUNDLE_ARTIFACT, MODEL_SIGNING_ARTIFACT, OciStore, encode
from services.docker_registry import DockerRegistry
from services.oci_registry import OciRegistry

_FILES = {"config.json": b"{}\n", "weights.bin": b"\x01" * 4096}


@dataclass
class _Model:
    """A model in a registry as the store sees it (what the oci:// source provides)."""

    registry: Registry
    digest: str
    media_type: str
    manifest_size: int
    location: str


@dataclass
class _Setup:
    client: PlainClient
    registry: Registry
    repo: str
    host: str


@pytest.fixture(params=["oci", "distribution"])
def setup(request: pytest.FixtureRequest, oci_registry: OciRegistry) -> _Setup:
    repo = f"store/{request.node.name.split('[')[0].replace('_', '-')}"
    if request.param == "oci":
        return _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref(repo)), repo,
                      oci_registry.host)  # fmt: skip
    docker: DockerRegistry = request.getfixturevalue("docker_registry")
    creds = Credentials(docker.user, docker.password)
    return _Setup(
        PlainClient(docker.url, docker.user, docker.password),
        Registry(docker.ref(repo), credentials=creds),
        repo,
        docker.host,
    )


def _push(
    setup: _Setup, tmp_path: Path, name: str = "m", files: dict[str, bytes] | None = None
) -> _Model:
    folder = make_model(tmp_path / name, files or _FILES)
    digest = push_model(setup.client, setup.repo, folder, "raw", tag=name)
    data, media_type = setup.client.manifest(setup.repo, digest)
    location = f"oci://{setup.host}/{setup.repo}@{digest}"
    return _Model(setup.registry, digest, media_type, len(data), location)


def _bundle(tmp_path: Path, key: KeyPair, name: str = "signed") -> dict[str, Any]:
    folder = make_model(tmp_path / name, _FILES)
    return dict(omsign.sign(folder, key=key.private).bundle)


def test_signature_is_a_cosign_shaped_referrer(
    setup: _Setup, tmp_path: Path, p256: KeyPair
) -> None:
    model = _push(setup, tmp_path)
    bundle = _bundle(tmp_path, p256)
    store = OciStore(model)
    where = store.write(bundle)
    referrer = where.rsplit("@", 1)[1]
    manifest = json.loads(setup.client.manifest(setup.repo, referrer)[0])
    assert manifest["artifactType"] == BUNDLE_ARTIFACT
    assert manifest["config"] == {"mediaType": EMPTY, "digest": sha256_digest(b"{}"), "size": 2}
    assert manifest["subject"]["digest"] == model.digest
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == BUNDLE_ARTIFACT
    assert setup.client.blob(setup.repo, layer["digest"]) == encode(bundle)
    annotations = manifest["annotations"]
    assert (
        annotations["dev.sigstore.bundle.predicateType"] == "https://model_signing/signature/v1.0"
    )
    assert annotations["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert store.locations() == [where]
    assert store.read().text.encode() == encode(bundle)


def test_without_referrers_api_the_tag_index_lists_it(
    docker_registry: DockerRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    creds = Credentials(docker_registry.user, docker_registry.password)
    setup = _Setup(PlainClient(docker_registry.url, docker_registry.user, docker_registry.password),
                   Registry(docker_registry.ref("store/fallback"), credentials=creds),
                   "store/fallback", docker_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    first = OciStore(model).write(_bundle(tmp_path, p256, "a"))
    second = OciStore(model).add(_bundle(tmp_path, p256, "b"))
    index = json.loads(setup.client.manifest(setup.repo, fallback_tag(model.digest))[0])
    listed = {d["digest"] for d in index["manifests"]}
    assert {first.rsplit("@", 1)[1], second.rsplit("@", 1)[1]} == listed
    assert len(OciStore(model).read_all()) == 2


def test_local_copy_is_the_same_bytes(setup: _Setup, tmp_path: Path, p256: KeyPair) -> None:
    model = _push(setup, tmp_path)
    bundle = _bundle(tmp_path, p256)
    local = tmp_path / "copy.sig"
    OciStore(model, local).write(bundle)
    remote = OciStore(model).read()
    assert local.read_bytes() == remote.text.encode() == encode(bundle)
    assert OciStore(model, local).read().text == remote.text


def test_no_signature(setup: _Setup, tmp_path: Path) -> None:
    model = _push(setup, tmp_path)
    with pytest.raises(SignatureNotFoundError, match="no signature found"):
        OciStore(model).read_all()


def _push_referrer(setup: _Setup, subject: _Model, data: bytes, artifact_type: str,
                   config_type: str = EMPTY) -> str:  # fmt: skip
    layer = setup.client.push_blob(setup.repo, data)
    config = setup.client.push_blob(setup.repo, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": config_type, "digest": config, "size": 2},
        "layers": [{"mediaType": BUNDLE_ARTIFACT, "digest": layer, "size": len(data)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest,
                    "size": subject.manifest_size},
    }  # fmt: skip
    raw = json.dumps(manifest).encode()
    return setup.client.push_manifest(setup.repo, sha256_digest(raw), raw)


def test_reads_the_model_signing_fork_artifact_type(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    setup = _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref("store/fork")),
                   "store/fork", oci_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    data = encode(_bundle(tmp_path, p256))
    _push_referrer(setup, model, data, MODEL_SIGNING_ARTIFACT,
                   "application/vnd.model-signing.signature.v0.1.config+json")  # fmt: skip
    _push_referrer(setup, model, b"an SBOM", "application/spdx+json")  # not a signature
    (bundle,) = OciStore(model).read_all()
    assert bundle.text.encode() == data


def test_referrer_of_another_manifest_is_refused(
    docker_registry: DockerRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    creds = Credentials(docker_registry.user, docker_registry.password)
    setup = _Setup(PlainClient(docker_registry.url, docker_registry.user, docker_registry.password),
                   Registry(docker_registry.ref("store/other"), credentials=creds),
                   "store/other", docker_registry.host)  # fmt: skip
    signed = _push(setup, tmp_path, "signed")
    victim = _push(setup, tmp_path, "victim", {"weights.bin": b"\x02" * 4096})
    where = OciStore(signed).write(_bundle(tmp_path, p256))
    index = setup.client.manifest(setup.repo, fallback_tag(signed.digest))[0]
    # The attacker lists the other model's signature in the victim's tag index.
    setup.client.push_manifest(setup.repo, fallback_tag(victim.digest), index,
                               "application/vnd.oci.image.index.v1+json")  # fmt: skip
    with pytest.raises(MalformedSignatureError, match="refused: this signature's subject is"):
        OciStore(victim).read_all()
    with pytest.raises(MalformedSignatureError, match=signed.digest):
        OciStore(victim).read(where)  # named directly: refused all the same


def test_swapped_bundle_blob_is_refused(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    setup = _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref("store/swap")),
                   "store/swap", oci_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    where = OciStore(model).write(_bundle(tmp_path, p256))
    manifest = json.loads(setup.client.manifest(setup.repo, where.rsplit("@", 1)[1])[0])
    layer = manifest["layers"][0]
    other = encode(_bundle(tmp_path, p256, "other"))[: layer["size"]].ljust(layer["size"])
    oci_registry.state.add_blob("store/swap", layer["digest"], other)  # the registry lies
    with pytest.raises(VerificationError, match="does not hash to"):
        OciStore(model).read()


def test_attestations_are_referrers_beside_the_signatures(
    setup: _Setup, tmp_path: Path, p256: KeyPair
) -> None:
    from omsign.attestations import check_attestations

    model = _push(setup, tmp_path)
    folder = make_model(tmp_path / "attested", _FILES)
    signed = omsign.sign(folder, key=p256.private)
    attested = omsign.attest(
        folder, predicate_type="https://example.com/eval/v1", predicate={"accuracy": 0.9},
        output=tmp_path / "eval.sig", key=p256.private,
    )  # fmt: skip
    store = OciStore(model)
    store.write(dict(signed.bundle))
    where = store.append_claim(dict(attested.bundle))
    (signature,) = store.read_all()  # the attestation is not a signature
    assert signature.text.encode() == encode(signed.bundle)
    assert store.read().text == signature.text
    ((location, raw),) = store.claims()
    assert (location, raw) == (where, encode(attested.bundle))
    (checked,) = check_attestations(store, signed.root_digest, omsign.make_policy(key=p256.public))
    assert checked.verified, checked.reason
    assert checked.predicate_type == "https://example.com/eval/v1"
    assert checked.location == where


def test_attestation_of_another_manifest_is_reported_not_raised(
    docker_registry: DockerRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    creds = Credentials(docker_registry.user, docker_registry.password)
    setup = _Setup(PlainClient(docker_registry.url, docker_registry.user, docker_registry.password),
                   Registry(docker_registry.ref("store/claims"), credentials=creds),
                   "store/claims", docker_registry.host)  # fmt: skip
    one = _push(setup, tmp_path, "one")
    other = _push(setup, tmp_path, "other", {"weights.bin": b"\x03" * 4096})
    folder = make_model(tmp_path / "attested", _FILES)
    attested = omsign.attest(
        folder, predicate_type="https://example.com/eval/v1", predicate={"accuracy": 0.9},
        output=tmp_path / "eval.sig", key=p256.private,
    )  # fmt: skip
    OciStore(one).append_claim(dict(attested.bundle))
    index = setup.client.manifest(setup.repo, fallback_tag(one.digest))[0]
    setup.client.push_manifest(setup.repo, fallback_tag(other.digest), index,
                               "application/vnd.oci.image.index.v1+json")  # fmt: skip
    ((_, problem),) = OciStore(other).claims()
    assert isinstance(problem, MalformedSignatureError)
    assert "refused" in str(problem)


def test_referrers_read_are_bounded_newest_first(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    import omsign.storage._oci as oci_store

    setup = _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref("store/many")),
                   "store/many", oci_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    bundles = [_bundle(tmp_path, p256, f"s{i}") for i in range(5)]
    pushed = [OciStore(model).add(b) for b in bundles]
    monkeypatch.setattr(oci_store, "MAX_REFERRERS", 3)
    read = OciStore(model).read_all()
    assert [b.text.encode() for b in read] == [encode(b) for b in reversed(bundles[2:])]
    assert OciStore(model).locations() == list(reversed(pushed[2:]))
    assert "5 signature referrers; reading 3" in caplog.text


def test_inspect_a_registry_model_shows_its_newest_signature(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, cli: Any
) -> None:
    setup = _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref("store/inspect")),
                   "store/inspect", oci_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    r = cli("inspect", model.location)
    assert r.code == 1
    assert "no signature found" in r.err
    OciStore(model).write(_bundle(tmp_path, p256, "old"))
    newest = OciStore(model).add(_bundle(tmp_path, p256, "new"))
    r = cli("inspect", model.location, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["signature"] == newest
    assert report["method"] == "key"


def _fork_tag_manifest(setup: _Setup, data: bytes) -> bytes:
    """A manifest as the fork's tag mode writes it: no subject, its artifact type noted."""
    layer = setup.client.push_blob(setup.repo, data)
    config = setup.client.push_blob(setup.repo, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                   "size": 2},
        "layers": [{"mediaType": BUNDLE_ARTIFACT, "digest": layer, "size": len(data)}],
        "annotations": {"dev.sigstore.model-signing.artifact-type": MODEL_SIGNING_ARTIFACT},
    }  # fmt: skip
    return json.dumps(manifest).encode()


def test_reads_the_model_signing_fork_tag_form_only_under_its_tag(
    docker_registry: DockerRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    creds = Credentials(docker_registry.user, docker_registry.password)
    setup = _Setup(PlainClient(docker_registry.url, docker_registry.user, docker_registry.password),
                   Registry(docker_registry.ref("store/fork-tag"), credentials=creds),
                   "store/fork-tag", docker_registry.host)  # fmt: skip
    model = _push(setup, tmp_path, "signed")
    data = encode(_bundle(tmp_path, p256))
    raw = _fork_tag_manifest(setup, data)
    tag = model.digest.replace(":", "-") + ".sig"
    setup.client.push_manifest(setup.repo, tag, raw)
    (bundle,) = OciStore(model).read_all()
    assert bundle.text.encode() == data
    # Listed as a referrer of another manifest, the subject-less manifest is refused.
    victim = _push(setup, tmp_path, "victim", {"weights.bin": b"\x04" * 4096})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": sha256_digest(raw), "size": len(raw),
                            "artifactType": MODEL_SIGNING_ARTIFACT}]}  # fmt: skip
    setup.client.push_manifest(setup.repo, fallback_tag(victim.digest), json.dumps(index).encode(),
                               "application/vnd.oci.image.index.v1+json")  # fmt: skip
    with pytest.raises(MalformedSignatureError, match="refused"):
        OciStore(victim).read_all()


def test_malformed_listing_annotations_do_not_crash(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair
) -> None:
    setup = _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref("store/odd")),
                   "store/odd", oci_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    OciStore(model).write(_bundle(tmp_path, p256))
    for data, media_type in list(oci_registry.state.repo("store/odd").manifests.values()):
        doc = json.loads(data)
        if "subject" in doc:  # the referrer: its annotations made a list
            doc["annotations"] = ["not", "a", "map"]
            raw = json.dumps(doc).encode()
            oci_registry.state.add_manifest("store/odd", sha256_digest(raw), raw, media_type)
    assert len(OciStore(model).read_all()) == 2
    assert OciStore(model).claims() == []


@pytest.mark.parametrize("lie", ["huge layer", "two layers", "no layer"])
def test_referrer_of_the_wrong_shape_is_refused_before_its_blob_is_read(
    oci_registry: OciRegistry, tmp_path: Path, p256: KeyPair, lie: str
) -> None:
    setup = _Setup(PlainClient(oci_registry.url), Registry(oci_registry.ref("store/shape")),
                   "store/shape", oci_registry.host)  # fmt: skip
    model = _push(setup, tmp_path)
    where = OciStore(model).write(_bundle(tmp_path, p256))
    data, media_type = setup.client.manifest(setup.repo, where.rsplit("@", 1)[1])
    doc = json.loads(data)
    layer = doc["layers"][0]
    doc["layers"] = {"huge layer": [{**layer, "size": 1 << 40}], "two layers": [layer, layer],
                     "no layer": []}[lie]  # fmt: skip
    raw = json.dumps(doc).encode()
    state = oci_registry.state
    state.repo(setup.repo).manifests.pop(where.rsplit("@", 1)[1])
    state.add_manifest(setup.repo, sha256_digest(raw), raw, media_type)
    served = state.blob_bytes_served
    with pytest.raises(MalformedSignatureError, match=r"larger than|exactly one bundle layer"):
        OciStore(model).read_all()
    assert state.blob_bytes_served == served
