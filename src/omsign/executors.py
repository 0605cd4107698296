"""Executors for hashing beyond the built-in threads: processes, a Dask or a Ray cluster.

:func:`make_executor` turns a spec (``threads``, ``processes``, ``dask``,
``dask=ADDRESS``, ``ray``, ``ray=ADDRESS``) into a context manager yielding a
:class:`concurrent.futures.Executor` (or ``None`` for the built-in threads). Without
an address a local cluster is started for the run and shut down after it; with one,
the run connects to that cluster and leaves it running.

Dask and Ray are optional (``omsign[dask]``, ``omsign[ray]``) and imported only here,
only when asked for. Dask's own ``Client.get_executor()`` already behaves as a
``concurrent.futures.Executor``; Ray gets a small adapter over ``ray.remote`` whose
futures are Ray's own ``concurrent.futures`` futures.

A worker that dies is retried by the cluster (Dask reschedules the task of a lost
worker; Ray's ``max_retries`` re-runs it); a unit whose task keeps failing fails the
run, and :func:`omsign.hashing.hash_units` names the unit.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from omsign.errors import BackendUnavailableError, UsageError

__all__ = ["EXECUTORS", "RayExecutor", "make_executor", "parse_spec"]

EXECUTORS = ("threads", "processes", "dask", "ray")
_LOCAL_WORKERS = 2  # workers of a local cluster when the caller gives no count
_RETRIES = 2  # extra attempts for a task that raised (a transient read error)

_FORMS = "{option} takes threads, processes, dask[=ADDRESS] or ray[=ADDRESS]"
_T = TypeVar("_T")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Splits ``kind[=ADDRESS]``; raises :class:`UsageError` for an unknown kind.

    Args:
        spec: ``threads``, ``processes``, ``dask``, ``dask=ADDRESS``, ``ray`` or
            ``ray=ADDRESS``.

    Returns:
        ``(kind, address or None)``.
    """
    kind, sep, address = spec.partition("=")
    kind = kind.strip().lower()
    if kind not in EXECUTORS:
        raise UsageError(f"unknown executor {spec!r}", hint=_FORMS, option="executor")
    if sep and kind in ("threads", "processes"):
        raise UsageError(f"executor {kind!r} takes no address", hint=_FORMS, option="executor")
    if sep and not address.strip():
        raise UsageError(f"executor {spec!r} has an empty address", hint=_FORMS, option="executor")
    return kind, address.strip() if sep else None


@contextlib.contextmanager
def make_executor(spec: str, workers: int | None = None) -> Iterator[Executor | None]:
    """Yields the executor ``spec`` names for the duration of a run.

    Args:
        spec: see :func:`parse_spec`.
        workers: processes, or workers of a local cluster (default: 2 for a local
            cluster, every CPU for processes); ignored with an address.

    Yields:
        ``None`` for ``threads`` (the built-in engine), else an executor.

    Raises:
        UsageError: an unknown spec.
        BackendUnavailableError: Dask or Ray is not installed.
    """
    kind, address = parse_spec(spec)
    if kind == "threads":
        yield None
    elif kind == "processes":
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield pool
    elif kind == "dask":
        with _dask(address, workers or _LOCAL_WORKERS) as executor:
            yield executor
    else:
        with _ray(address, workers or _LOCAL_WORKERS) as executor:
            yield executor


def _optional(extra: str, module: str) -> Any:
    """Imports an optional dependency, or says which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BackendUnavailableError(
            f"the {extra} executor needs {module}, which is not installed",
            hint=f"install omsign[{extra}]",
        ) from None


@contextlib.contextmanager
def _dask(address: str | None, workers: int) -> Iterator[Executor]:
    distributed = _optional("dask", "distributed")
    cluster = None
    if address is None:
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(address, timeout=30)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot reach the Dask scheduler at {address} ({exc})"
            ) from None
    try:
        executor: Any = client.get_executor(retries=_RETRIES, pure=False)
        executor._max_workers = _dask_cores(client) or workers
        yield executor
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_cores(client: Any) -> int:
    try:
        return int(sum(client.nthreads().values()))
    except Exception:  # pragma: no cover - an old scheduler
        return 0


def _ray_call(fn: Callable[..., _T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _T:
    """What a Ray task runs: ``fn(*args, **kwargs)``."""
    return fn(*args, **kwargs)


class RayExecutor(Executor):
    """A :class:`concurrent.futures.Executor` over Ray tasks.

    Each ``submit`` is one Ray task (``max_retries`` re-runs it when its worker dies);
    the future is Ray's own ``concurrent.futures.Future`` for the task's result.
    """

    def __init__(self, max_retries: int = 3) -> None:
        ray: Any = importlib.import_module("ray")

        self._ray = ray
        self._remote: Any = ray.remote(max_retries=max_retries)(_ray_call)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self._max_workers = max(1, cpus)

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Runs ``fn(*args, **kwargs)`` as a Ray task."""
        ref = self._remote.remote(fn, args, kwargs)
        future: Future[_T] = ref.future()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to release: the cluster outlives the executor."""


@contextlib.contextmanager
def _ray(address: str | None, workers: int) -> Iterator[Executor]:
    ray = _optional("ray", "ray")
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError) as exc:
                raise BackendUnavailableError(
                    f"cannot reach the Ray cluster at {address} ({exc})"
                ) from None
        started = True
    try:
        yield RayExecutor()
    finally:
        if started:
            ray.shutdown()
