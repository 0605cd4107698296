"""Hashing on real local Dask and Ray clusters (2 workers each, started once per session).

Digests are those of the built-in engine for every mode and hash; sign and verify run
there from the CLI; a worker killed mid-run is retried; a unit that keeps failing fails
the run naming the unit.

Each cluster is exercised by ONE test function (the checks below, in turn): pytest-xdist
spreads test functions over its workers, and a second function could start a second
Ray instance in another worker process on these two cores.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import Error, IntegrityError
from omsign.hashing import ChangedWhileHashingError, enumerate_model, hash_entries
from omsign.options import HashOptions, Runtime
from services.clusters import dask_address
from unit.executors._readers import DyingOnceReader, FailingReader


def test_a_local_dask_cluster(
    dask_executor: Executor, tmp_path: Path, p256: KeyPair, cli: Any, s3_bucket: Any
) -> None:
    _run_every_check(dask_executor, f"dask={dask_address(dask_executor)}", tmp_path, p256, cli)
    check_the_workers_read_a_model_in_s3(dask_executor, tmp_path / "s3", p256, s3_bucket)


def test_a_local_ray_cluster(
    ray_executor: Executor, tmp_path: Path, p256: KeyPair, cli: Any, s3_bucket: Any
) -> None:
    import ray

    address = ray.get_runtime_context().gcs_address
    _run_every_check(ray_executor, f"ray={address}", tmp_path, p256, cli)
    check_the_workers_read_a_model_in_s3(ray_executor, tmp_path / "s3", p256, s3_bucket)


def check_the_workers_read_a_model_in_s3(
    cluster: Executor, tmp: Path, p256: KeyPair, s3_bucket: Any
) -> None:
    """The workers read their byte ranges from the S3 server themselves (the client only
    lists); an object replaced after the listing fails the run, naming it."""
    from services.s3 import s3_client, upload

    local = _model(tmp / "m")
    bucket = s3_bucket(versioned=True)
    url = upload(local, bucket, "m")
    runtime = Runtime(executor=cluster)
    for hashing in (HashOptions(), HashOptions("blake3", 250_000)):
        assert omsign.digest(url, hashing=hashing, runtime=runtime) == omsign.digest(
            local, hashing=hashing
        )
    signed = omsign.sign(url, key=p256.private, shard_size=250_000, runtime=runtime)
    assert omsign.verify(url, key=p256.public, runtime=runtime).root_digest == signed.root_digest

    def replace(done: int, total: int) -> None:
        if done == 0:
            s3_client().put_object(Bucket=bucket, Key="m/w2.bin", Body=os.urandom(1_300_000))

    with pytest.raises(IntegrityError, match=f"{url}/w2.bin: object replaced"):
        omsign.verify(url, key=p256.public, runtime=Runtime(executor=cluster, progress=replace))


def _run_every_check(cluster: Executor, spec: str, tmp: Path, p256: KeyPair, cli: Any) -> None:
    model = _model(tmp / "model")
    check_a_cluster_gives_every_digest_of_the_built_in_engine(cluster, model)
    check_sign_and_verify_on_a_cluster(cluster, tmp / "sv", p256)
    check_a_file_replaced_before_a_worker_reads_it_fails_the_run(cluster, tmp / "rep")
    check_a_worker_killed_mid_run_is_retried(cluster, model, tmp)
    check_a_unit_that_keeps_failing_fails_the_run_with_its_name(cluster, tmp / "fail")
    check_the_cli_connects_to_a_running_cluster(spec, tmp / "cli", p256, cli)


def _model(root: Path) -> Path:
    files = {f"small/{i:02}.json": os.urandom(i * 97) for i in range(8)}
    files |= {"w1.bin": os.urandom(700_001), "w2.bin": os.urandom(1_300_000), "e": b""}
    return make_model(root, files)


def check_a_cluster_gives_every_digest_of_the_built_in_engine(
    cluster: Executor, model: Path
) -> None:
    entries = enumerate_model(model)
    for algorithm in ("sha256", "blake2b", "blake3"):
        for shard_size in (None, 250_000):
            local = hash_entries(entries, algorithm, shard_size)
            got = hash_entries(entries, algorithm, shard_size, executor=cluster)
            assert got == local, (algorithm, shard_size)
            hashing = HashOptions(algorithm, shard_size)
            assert omsign.digest(model, hashing=hashing, runtime=Runtime(executor=cluster)) == (
                omsign.digest(model, hashing=hashing)
            )


def check_sign_and_verify_on_a_cluster(cluster: Executor, tmp: Path, p256: KeyPair) -> None:
    m = make_model(tmp, {"a": os.urandom(300_000), "b/c": b"c"})
    hashing = HashOptions("blake3", 100_000)
    runtime = Runtime(executor=cluster)
    signed = omsign.sign(m, key=p256.private, hashing=hashing, runtime=runtime)
    assert signed.root_digest == omsign.digest(m, hashing=hashing)
    assert omsign.verify(m, key=p256.public, runtime=runtime).root_digest == signed.root_digest
    (m / "b" / "c").write_bytes(b"C")
    with pytest.raises(IntegrityError, match="b/c"):
        omsign.verify(m, key=p256.public, runtime=runtime)


def check_a_file_replaced_before_a_worker_reads_it_fails_the_run(
    cluster: Executor, tmp: Path
) -> None:
    m = make_model(tmp, {"a": os.urandom(1000), "b": os.urandom(1000)})
    entries = enumerate_model(m)
    (m / "b").unlink()
    (m / "b").write_bytes(os.urandom(1000))
    with pytest.raises(ChangedWhileHashingError, match="b"):
        hash_entries(entries, "sha256", executor=cluster)


def check_a_worker_killed_mid_run_is_retried(cluster: Executor, model: Path, tmp: Path) -> None:
    entries = enumerate_model(model)
    reader = DyingOnceReader(str(tmp / "died"))
    got = hash_entries(entries, "sha256", 250_000, executor=cluster, reader=reader)
    assert (tmp / "died").exists()  # a worker did die
    assert got == hash_entries(entries, "sha256", 250_000)


def check_a_unit_that_keeps_failing_fails_the_run_with_its_name(
    cluster: Executor, tmp: Path
) -> None:
    m = make_model(tmp, {"weights.bin": os.urandom(1000)})
    with pytest.raises(Error, match=r"weights\.bin.*storage refused the read") as caught:
        hash_entries(enumerate_model(m), "sha256", executor=cluster, reader=FailingReader())
    assert "\n" not in str(caught.value)


def check_the_cli_connects_to_a_running_cluster(
    spec: str, tmp: Path, p256: KeyPair, cli: Any
) -> None:
    m = make_model(tmp, {"a": os.urandom(200_000), "b": b"b"})
    expected = omsign.digest(m, hashing=HashOptions(shard_size=50_000))
    flags = ("--executor", spec, "--shard-size", "50000")
    got = cli("digest", m, *flags)
    assert got.code == 0, got.err
    assert got.out.strip() == f"sha256:{expected}"
    signed = cli("sign", m, "--key", p256.private, *flags)
    assert signed.code == 0, signed.err
    verified = cli("verify", m, "--key", p256.public, "--executor", spec)
    assert verified.code == 0, verified.err
    assert verified.err.count("trusts every worker") == 1


def test_the_cli_starts_a_local_dask_cluster_for_the_run(tmp_path: Path, cli: Any) -> None:
    m = make_model(tmp_path / "m", {"a": os.urandom(200_000), "b": b"b"})
    got = cli("digest", m, "--executor", "dask", "--workers", "2")
    assert got.code == 0, got.err
    assert got.out.strip() == f"sha256:{omsign.digest(m)}"
