"""Where per-image tasks run: the ``--workers``/``--scheduler`` settings and the executors behind them.

:class:`Execution` holds the settings of every command; :func:`open_executor` turns them into an
executor (``submit``, ``result``, ``close``) that :mod:`hbens.pipeline` feeds one task per image.
Executors are chosen by name from :data:`EXECUTORS`:

``auto`` (default)
    ``threads``, or ``processes`` for a task that holds the GIL (the CRF) when there are two or
    more workers;
``threads``
    a thread pool; the numba kernels and torch release the GIL, so threads scale without copies;
``processes``
    a local process pool;
``local``
    a ``dask.distributed.LocalCluster`` of worker processes on 127.0.0.1;
``tcp://HOST:PORT``
    an existing Dask cluster (``dask scheduler`` / ``dask worker``); workers read their inputs
    from paths that every worker sees and send back rows and stats only.

A task sent to a Dask cluster carries absolute paths: the fields that name files or folders
(:func:`path_field`) are resolved in this process's working directory before it leaves
(:func:`absolute_paths`), since a worker may run in another one.  A cluster left with no worker
for :data:`WORKERLESS_LIMIT` seconds ends the run with :class:`ClusterLost`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import sys
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numba

from hbens.errors import HbensError

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler before giving up."""
WORKERLESS_LIMIT = 10.0
"""Seconds a Dask cluster may have no worker (one restarting, none started yet) before the run ends."""
POLL_SECONDS = 1.0
"""How often a wait for a Dask task checks that the cluster still has workers."""
CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the Dask scheduler when closing the connection (it may be gone)."""
ADDRESS = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:(?P<port>[0-9]{1,5}))?")
"""A Dask scheduler address: ``tcp://HOST`` or ``tcp://HOST:PORT`` (HOST a name, IPv4 or [IPv6])."""
PATH_FIELD = "hbens.path"
"""Metadata key of the dataclass fields that name files or folders (see :func:`path_field`)."""


def path_field(default: Any = MISSING) -> Any:
    """A dataclass field that names files or folders: a str, None, or a list, tuple or dict of them.

    A task sent to a Dask cluster carries such fields as absolute paths (:func:`absolute_paths`);
    other executors run in this process's working directory and get them as given, so that
    messages name the paths as the user wrote them.
    """
    return field(default=default, metadata={PATH_FIELD: True})


def absolute_paths(value: Any, *, is_path: bool = False) -> Any:
    """``value`` with every relative path in a :func:`path_field` of its dataclasses made absolute.

    Dataclasses, lists, tuples and dicts (values) are searched; every other value, and anything
    that holds no relative path, is returned as it is (the same object).  ``is_path`` says that
    ``value`` itself is (or holds) paths.
    """
    if is_path and isinstance(value, (str, Path)):
        return value if os.path.isabs(value) else type(value)(Path(value).absolute())
    if is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for f in fields(value):
            old = getattr(value, f.name)
            new = absolute_paths(old, is_path=f.metadata.get(PATH_FIELD, False))
            if new is not old:
                changed[f.name] = new
        return replace(value, **changed) if changed else value
    if isinstance(value, (list, tuple)):
        items = [absolute_paths(item, is_path=is_path) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        entries = {key: absolute_paths(item, is_path=is_path) for key, item in value.items()}
        return value if all(entries[key] is item for key, item in value.items()) else type(value)(entries)
    return value


@dataclass(frozen=True, kw_only=True)
class Execution:
    """Where and how per-image tasks run (the ``--workers``, ``--scheduler`` and friends of every command).

    Parameters
    ----------
    workers : int, optional
        Number of workers; default: the number of cores for ``auto`` and ``threads``, 2 otherwise.
    scheduler : str
        ``auto``, ``threads``, ``processes``, ``local`` or a Dask address ``tcp://HOST:PORT``.
    keep_going : bool
        Report images whose task fails and go on (the exit status is then 1) instead of stopping.
    progress : bool
        Show a progress bar on terminals.
    """

    workers: int | None = None
    scheduler: str = "auto"
    keep_going: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise HbensError(f"--workers {self.workers}: must be >= 1")
        if self.scheduler != "auto":
            executor_name(self.scheduler)

    @property
    def n_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return cores() if self.scheduler in ("auto", "threads") else 2

    def resolved(self, *, holds_gil: bool) -> Execution:
        """This execution with ``auto`` replaced by the executor that suits a task.

        A task that holds the GIL (``holds_gil``) runs on processes when there are two or more
        workers, since threads would take turns; every other task runs on threads.
        """
        if self.scheduler != "auto":
            return self
        scheduler = "processes" if holds_gil and self.n_workers > 1 else "threads"
        return replace(self, scheduler=scheduler, workers=self.n_workers)


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Compute threads each worker may use so that workers x threads does not exceed the cores."""
    return max(1, cores() // max(1, workers))


def limit_threads(threads: int) -> None:
    """Cap numba's (and torch's, when loaded) threads in this process."""
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _run_limited(job: tuple[Callable, Any, int]) -> Any:
    """Run ``task(item)`` in a worker process after capping its threads."""
    task, item, threads = job
    limit_threads(threads)
    return task(item)


class ThreadExecutor:
    """Tasks on a pool of threads in this process (the numba kernels release the GIL)."""

    in_flight_per_worker = 2
    """Tasks submitted ahead per worker: enough to keep it busy, few enough to bound memory."""

    def __init__(self, execution: Execution):
        self.workers = execution.n_workers
        self._pool = ThreadPoolExecutor(self.workers)
        self._torch = sys.modules.get("torch")
        self._torch_threads = self._torch.get_num_threads() if self._torch else 0
        if self._torch and self.workers > 1:
            self._torch.set_num_threads(threads_per_worker(self.workers))

    def submit(self, task: Callable, item: Any):
        return self._pool.submit(task, item)

    @staticmethod
    def result(future) -> Any:
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._torch:
            self._torch.set_num_threads(self._torch_threads)


class ProcessExecutor(ThreadExecutor):
    """Tasks on a pool of local worker processes (started fresh, not forked)."""

    def __init__(self, execution: Execution):
        self.workers = execution.n_workers
        self._threads = threads_per_worker(self.workers)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        self._torch = None

    def submit(self, task: Callable, item: Any):
        return self._pool.submit(_run_limited, (task, item, self._threads))

    @staticmethod
    def result(future) -> Any:
        try:
            return future.result()
        except BrokenProcessPool:
            raise TaskLost("a worker process died") from None


class TaskLost(Exception):
    """A task whose worker died or whose cluster went away (reported per image)."""


class ClusterLost(HbensError):
    """The Dask cluster can run no task (no worker left, scheduler gone): the whole run ends, even
    with ``--keep-going``."""


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise HbensError(
            "--scheduler needs dask.distributed: pip install 'hbens[dask]' (or: pip install dask distributed)"
        ) from None
    return distributed


@contextmanager
def deferred_signals():
    """Hold Ctrl-C, SIGTERM and SIGHUP back for the block (the start of a Dask cluster), and let them
    act once it ends: a cluster stopped half-started cannot close and prints Dask's traceback at
    exit, while a started one is closed cleanly by its context."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def local_cluster(workers: int):
    """A Dask ``LocalCluster`` of ``workers`` single-task processes, every server on 127.0.0.1.

    Dask's nanny starts workers with ``OMP_NUM_THREADS=1`` and ``MALLOC_TRIM_THRESHOLD_=65536``.
    Here each worker may use its share of the cores (:func:`threads_per_worker`), as the other
    executors' workers do, and keeps glibc's default allocator: the trim setting makes every
    large array fresh pages from the system, which slowed crf and predict by a third.
    """
    import dask

    distributed = _import_distributed()
    threads = str(threads_per_worker(workers))
    environ = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address="127.0.0.1:0", silence_logs=50)


DASK_LOGGERS = ("distributed", "distributed.client")
"""Loggers of the Dask client, quiet while it runs tasks: a lost cluster is one line of hbens's."""


@contextmanager
def quiet_loggers(names: Sequence[str]) -> Iterator[None]:
    """Only critical records of the loggers ``names`` in the block; their levels are restored after."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class DaskExecutor:
    """Tasks on a Dask cluster: a new ``LocalCluster`` (``local``) or an existing one (``tcp://...``).

    Tasks leave with absolute paths (:func:`absolute_paths`).  A wait for a task ends with
    :class:`ClusterLost` once the cluster has had no worker for :data:`WORKERLESS_LIMIT` seconds
    (Dask itself would wait for one forever).
    """

    in_flight_per_worker = 16
    """More tasks ahead than for local pools: each one's round trip to the scheduler is overlapped."""

    def __init__(self, execution: Execution):
        distributed = _import_distributed()
        self._stack = ExitStack()
        self._stack.enter_context(quiet_loggers(DASK_LOGGERS))
        address = execution.scheduler
        try:
            if address == "local":
                self.workers = execution.n_workers
                with deferred_signals():
                    cluster = self._stack.enter_context(local_cluster(self.workers))
                address = cluster.scheduler_address
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            self.address = address
        except (OSError, TimeoutError) as error:
            self._stack.close()
            raise HbensError(f"--scheduler {execution.scheduler}: cannot connect within {CONNECT_TIMEOUT:.0f} s "
                             f"({str(error).splitlines()[0][:120]}); start it with `dask scheduler` or use "
                             "--scheduler local") from None
        self._stack.callback(self.client.close, timeout=CLOSE_TIMEOUT)
        if execution.scheduler != "local":
            self.workers = self._first_workers()
        self._threads = self._threads_of_workers()
        self._running: list = []
        self._fetched: dict[str, Any] = {}

    def _first_workers(self) -> int:
        """The number of workers of an existing cluster, after waiting a while for a first one."""
        try:
            self.client.wait_for_workers(1, timeout=WORKERLESS_LIMIT)
        except TimeoutError:
            self.close()
            raise ClusterLost(f"--scheduler {self.address}: no Dask worker joined within {WORKERLESS_LIMIT:.0f} s; "
                              f"start some (dask worker {self.address}) and run again") from None
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def _threads_of_workers(self) -> int:
        """Threads per worker so that the workers of one host do not oversubscribe its cores."""
        workers = self.client.scheduler_info().get("workers", {})
        per_host: dict[str, int] = {}
        for info in workers.values():
            per_host[info.get("host", "")] = per_host.get(info.get("host", ""), 0) + 1
        return threads_per_worker(max(per_host.values(), default=1))

    def submit(self, task: Callable, item: Any):
        future = self.client.submit(_run_limited, (task, absolute_paths(item), self._threads), pure=False, retries=1)
        self._running.append(future)
        return future

    def _has_workers(self) -> bool:
        """Whether the cluster has a worker now; ClusterLost when its scheduler does not answer."""
        try:
            return bool(self.client.nthreads())
        except (OSError, CancelledError):
            raise self._scheduler_lost() from None

    def _scheduler_lost(self) -> ClusterLost:
        return ClusterLost(f"the Dask scheduler {self.address} went away; start it and its workers again and "
                           "run again")

    def _wait(self, future) -> None:
        """Wait until ``future`` is done; ClusterLost after :data:`WORKERLESS_LIMIT` seconds without a
        worker, or when the scheduler is gone."""
        alone_since = None
        while True:
            try:
                future.exception(timeout=POLL_SECONDS)
                return
            except TimeoutError:
                pass
            except (OSError, CancelledError):
                raise self._scheduler_lost() from None
            if self._has_workers():
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since >= WORKERLESS_LIMIT:
                raise ClusterLost(f"no Dask worker left on {self.address} for {WORKERLESS_LIMIT:.0f} s; restart "
                                  "the workers and run again")

    def result(self, future) -> Any:
        """``future``'s output; it and every other finished task's are fetched in one round trip.

        The task's own exception is raised as it is; a task whose workers died (each retry too) is
        :class:`TaskLost`, a cluster that can run nothing more :class:`ClusterLost`.
        """
        from distributed import KilledWorker

        if future.key not in self._fetched:
            self._wait(future)
            finished = [f for f in self._running if f.status == "finished"]
            try:
                self._fetched.update(zip((f.key for f in finished), self.client.gather(finished)))
            except (OSError, CancelledError):
                raise self._scheduler_lost() from None
            self._running = [f for f in self._running if f.key not in self._fetched and f.key != future.key]
        if future.key in self._fetched:
            return self._fetched.pop(future.key)
        try:
            return future.result()
        except KilledWorker:
            raise TaskLost("its Dask worker died (each retry too)") from None
        except CancelledError:
            raise self._scheduler_lost() from None

    def close(self) -> None:
        self._stack.close()


EXECUTORS: dict[str, type] = {
    "threads": ThreadExecutor,
    "processes": ProcessExecutor,
    "local": DaskExecutor,
    "tcp": DaskExecutor,
}
"""Executor classes by ``--scheduler`` name (``tcp`` for ``tcp://HOST:PORT`` addresses)."""


def executor_name(scheduler: str) -> str:
    """The :data:`EXECUTORS` key of a ``--scheduler`` value; HbensError listing the valid ones, or
    saying what is wrong with a ``tcp://`` address (:data:`ADDRESS`, a port from 1 to 65535)."""
    name = "tcp" if scheduler.startswith("tcp://") else scheduler
    if name not in EXECUTORS or name == "tcp" and not scheduler[len("tcp://"):]:
        raise HbensError(f"--scheduler {scheduler}: expected auto, threads, processes, local or tcp://HOST:PORT")
    if name == "tcp":
        address = ADDRESS.fullmatch(scheduler)
        if address is None or address["port"] is not None and not 1 <= int(address["port"]) <= 65535:
            raise HbensError(f"--scheduler {scheduler}: not a Dask scheduler address; expected tcp://HOST:PORT "
                             "with a host name or IP address and a port from 1 to 65535, e.g. tcp://10.0.0.5:8786")
    return name


@contextmanager
def open_executor(execution: Execution, *, holds_gil: bool = False):
    """An executor for ``execution``, shut down (and its cluster stopped) when the block ends.

    ``holds_gil`` says that the tasks hold the GIL, which ``auto`` runs on processes.
    """
    execution = execution.resolved(holds_gil=holds_gil)
    executor = EXECUTORS[executor_name(execution.scheduler)](execution)
    try:
        yield executor
    finally:
        executor.close()
