"""Real local compute clusters for tests: a Dask ``LocalCluster`` and a local Ray instance.

Each starts once per test session with 2 workers (these machines have 2 cores) through
``omsign.executors.make_executor`` itself, so the fixtures also exercise the path that
starts a local cluster for a run. Test modules that use one put themselves in its
``xdist_group`` so that one pytest worker runs them all and the cluster starts once.
Dask and Ray are development dependencies; under CI a missing one fails instead of
skipping.

The workers start with the test credentials of ``services.s3`` in their environment (a
real cluster's workers have their own), so that they can read models from the test S3
server; the endpoint itself travels with omsign's reader.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

import pytest

WORKERS = 2


@contextlib.contextmanager
def _worker_credentials() -> Iterator[None]:
    """Test credentials in the environment the workers are started with, then removed."""
    from services.s3 import TEST_CREDENTIALS

    saved = {name: os.environ.get(name) for name in TEST_CREDENTIALS}
    os.environ.update(TEST_CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _require(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{module} is needed for the cluster tests: {exc}")


@pytest.fixture(scope="session")
def dask_executor() -> Iterator[Executor]:
    """A local Dask cluster (2 worker processes) started for the session."""
    _require("distributed")
    from omsign.executors import make_executor

    with contextlib.ExitStack() as stack:
        with _worker_credentials():
            executor = stack.enter_context(make_executor("dask", WORKERS))
        assert executor is not None
        yield executor


def dask_address(executor: Executor) -> str:
    """The scheduler address of the cluster behind a Dask executor."""
    client: Any = getattr(executor, "_client")  # noqa: B009 - Dask's executor keeps it there
    return str(client.scheduler.address)


@pytest.fixture(scope="session")
def ray_executor() -> Iterator[Executor]:
    """A local Ray instance (2 CPUs) started for the session.

    Ray's workers start from a clean interpreter: ``PYTHONPATH`` carries this process's
    import path (the source tree and the tests' helpers) to them.
    """
    _require("ray")
    from omsign.executors import make_executor

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        with contextlib.ExitStack() as stack:
            with _worker_credentials():
                executor = stack.enter_context(make_executor("ray", WORKERS))
            assert executor is not None
            yield executor
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
