"""Running a sweep's runs on Dask: local worker processes or a remote cluster, one code path.

:func:`open_client` gives a :class:`distributed.Client` either on a
:class:`distributed.LocalCluster` of ``workers`` single-threaded processes (the default, one per
core) or connected to a running scheduler (``--scheduler tcp://host:8786``).  Either way
:class:`TaskRunner` submits every run as a Dask future and consumes them with
:func:`distributed.as_completed`; nothing else distributes work.  When a worker process dies
mid-run, Dask's scheduler gives its tasks to other workers (up to
``distributed.scheduler.allowed-failures`` times, then the run is recorded as failed with
``KilledWorker``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from backtest.errors import ConfigError
from backtest.folders import interrupts_held
from backtest.sweep.backends import Backend
from backtest.sweep.store import FAILED, RunRecord
from backtest.sweep.worker import RunTask, one_line, perform_chunk

#: Preload module of local worker processes (they leave Ctrl-C to the sweep process).
WORKER_SETUP = "backtest.sweep.worker_setup"
#: Seconds to wait for a remote scheduler before giving up.
CONNECT_TIMEOUT = 10
#: Dask settings of the local worker processes.  Dask's nanny starts workers with
#: ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's mmap threshold at 128 KiB: every
#: array of a run (a year of 5m bars is 840 KB per column) is then mapped and unmapped afresh,
#: page faults included, which doubled the array path's time per run (about 70 -> 150 ms).  The
#: local workers keep glibc's adaptive defaults, as any Python process has (a value the user
#: exported is still inherited).
LOCAL_WORKER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None
}


def default_workers() -> int:
    """One worker per core this process may use."""
    with contextlib.suppress(AttributeError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def open_client(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    processes: bool = True,
) -> Iterator[Any]:
    """Start local workers or connect to a scheduler; close what was opened on exit.

    Parameters
    ----------
    workers : int, optional
        Local worker processes (one thread each); one per core when omitted.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.  Its workers need
        this package installed and the market data at the same ``data_dir``.
    processes : bool
        Local workers as processes (True, the default) or threads of this process (tests).

    Raises
    ------
    ConfigError
        When both or a bad count are given, or the scheduler cannot be reached.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler and workers is not None:
        raise ConfigError("--workers and --scheduler exclude each other: give one of them")
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as error:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler} ({one_line(error)}); start one "
                "with `dask scheduler` and workers with `dask worker ADDRESS`, or drop "
                "--scheduler to use local processes"
            ) from error
        try:
            yield client
        finally:
            client.close()
        return
    count = default_workers() if workers is None else capped_workers(workers)
    cluster = client = None
    try:
        # A Ctrl-C while the workers start is raised once they are up (and can be stopped);
        # the workers themselves ignore it (backtest.sweep.worker_setup).
        with warnings.catch_warnings(), interrupts_held(), dask.config.set(LOCAL_WORKER_CONFIG):
            # The scheduler's HTTP server moves off 8787 when another cluster holds it: harmless.
            warnings.filterwarnings(
                "ignore", message="Port .* is already in use", category=UserWarning
            )
            cluster = LocalCluster(
                n_workers=count,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                **({"preload": [WORKER_SETUP]} if processes else {}),
            )
        client = Client(cluster)
        yield client
    finally:
        with interrupts_held():  # a second Ctrl-C must not leave workers running
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()


def capped_workers(requested: int) -> int:
    """``requested`` local worker processes, at most one per core this process may use.

    More processes than cores only slow a sweep down (each run is CPU-bound) and multiply the
    memory held by every worker's market cache, so the count is lowered with a warning.

    Raises
    ------
    ConfigError
        When ``requested`` is below 1.
    """
    if requested < 1:
        raise ConfigError(f"--workers {requested}: give at least 1 worker process")
    available = default_workers()
    if requested > available:
        logging.getLogger(__name__).warning(
            "--workers %d: this machine gives this process %d core%s; using %d worker process%s",
            requested,
            available,
            "" if available == 1 else "s",
            available,
            "" if available == 1 else "es",
        )
        return available
    return requested


def describe_failure(error: BaseException) -> str:
    """One line for a run whose future failed (a lost worker or the cluster going away)."""
    if type(error).__name__ == "KilledWorker":
        return (
            "KilledWorker: the worker process died while running this run, on every retry "
            "(Dask's distributed.scheduler.allowed-failures); check the workers' memory and logs"
        )
    return one_line(error)


#: Most runs one Dask task carries (a lost worker fails at most this many runs at once).
MAX_CHUNK = 16


class TaskRunner:
    """Submit runs to a Dask client and hand each finished record to a callback.

    Parameters
    ----------
    client : distributed.Client
        Local or remote.
    backend : Backend
        The functions the workers call.
    progress : bool
        Show a tqdm bar over runs on standard error.
    description : str
        The bar's label.
    """

    def __init__(
        self,
        client: Any,
        backend: Backend,
        *,
        progress: bool = False,
        description: str = "sweep",
    ) -> None:
        self.client = client
        self.backend = backend
        self.progress = progress
        self.description = description

    def _submit(self, chunk: Sequence[RunTask]) -> Any:
        # A fresh Dask key per submission: the scheduler may still be forgetting a cancelled
        # future of an interrupted sweep, and a reused key would be cancelled with it.
        return self.client.submit(
            perform_chunk,
            list(chunk),
            self.backend,
            key=f"sweep-runs-{chunk[0].key}-{len(chunk)}-{uuid.uuid4().hex[:12]}",
            priority=chunk[0].priority,
            retries=0,
        )

    def _chunk_size(self, count: int) -> int:
        """Runs per Dask task: about eight tasks per worker thread, at most :data:`MAX_CHUNK`.

        A run on the array path takes well under 0.1 s, while a Dask task costs the client
        and scheduler several milliseconds; grouping the runs of a large grid keeps that cost
        off the two cores the runs need.  Small grids keep one run per task.
        """
        try:
            threads = sum(self.client.nthreads().values())
        except Exception:  # a client that cannot tell: one run per task
            return 1
        return max(1, min(MAX_CHUNK, count // max(8 * threads, 1)))

    def _chunks(self, tasks: Sequence[RunTask]) -> list[list[RunTask]]:
        """``tasks`` in order, grouped by runs of equal priority into chunks."""
        size = self._chunk_size(len(tasks))
        chunks: list[list[RunTask]] = []
        for task in tasks:
            last = chunks[-1] if chunks else None
            if last is not None and len(last) < size and last[0].priority == task.priority:
                last.append(task)
            else:
                chunks.append([task])
        return chunks

    def run(
        self,
        tasks: Sequence[RunTask],
        on_record: Callable[[RunRecord], Iterable[RunTask] | None],
        *,
        already_done: int = 0,
    ) -> int:
        """Run ``tasks`` and whatever ``on_record`` asks for next; return the runs done.

        Parameters
        ----------
        tasks : sequence of RunTask
            Submitted at once (Dask orders them by ``task.priority``), several short runs
            per Dask task on large grids (:meth:`_chunk_size`).
        on_record : callable
            Called in this process with each finished record, in completion order; the
            runs it returns are submitted too (a walk-forward's test run after its window's
            training runs).
        already_done : int
            Runs skipped because they were recorded before (shown on the progress bar).
        """
        from distributed import as_completed
        from tqdm import tqdm

        outstanding: dict[str, tuple[Any, list[RunTask]]] = {}
        done = failed = 0
        bar = tqdm(
            total=len(tasks) + already_done,
            initial=already_done,
            disable=not self.progress,
            unit="run",
            desc=self.description,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            futures = []
            for chunk in self._chunks(tasks):
                future = self._submit(chunk)
                outstanding[future.key] = (future, chunk)
                futures.append(future)
            pending = as_completed(futures)
            for future in pending:
                _, chunk = outstanding.pop(future.key)
                records = self._collect(future, chunk)
                future.release()
                for record in records:
                    done += 1
                    failed += not record.complete
                    bar.update(1)
                    if failed:
                        bar.set_postfix(failed=failed, refresh=False)
                    for follow_up in on_record(record) or ():
                        follow_future = self._submit([follow_up])
                        outstanding[follow_future.key] = (follow_future, [follow_up])
                        pending.add(follow_future)
                        bar.total += 1
                        bar.refresh()
        finally:
            bar.close()
            if outstanding:
                self.client.cancel([future for future, _ in outstanding.values()])
        return done

    @staticmethod
    def _collect(future: Any, chunk: Sequence[RunTask]) -> list[RunRecord]:
        try:
            records = future.result()
        except Exception as error:  # a lost worker or a cancelled future: record, go on
            return [
                RunRecord(
                    key=task.key,
                    status=FAILED,
                    error=describe_failure(error),
                    settings=task.settings,
                )
                for task in chunk
            ]
        if not (
            isinstance(records, list)
            and len(records) == len(chunk)
            and all(isinstance(record, RunRecord) for record in records)
        ):  # pragma: no cover - a broken backend
            return [
                RunRecord(
                    key=task.key,
                    status=FAILED,
                    error=f"the worker returned {type(records).__name__}, not run records",
                    settings=task.settings,
                )
                for task in chunk
            ]
        return records

    def gather_results(self, tasks: Sequence[RunTask], function: Callable[..., Any]) -> list[Any]:
        """Run ``function(task, backend)`` for each task on the cluster; results in order.

        Exceptions are returned in place of the result, so one bad run does not hide others.
        """
        futures = [
            self.client.submit(
                function, task, self.backend, key=f"sweep-full-{task.key}-{uuid.uuid4().hex[:12]}"
            )
            for task in tasks
        ]
        outcomes: list[Any] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as error:
                outcomes.append(error)
        return outcomes


def check_scheduler_address(address: str) -> str:
    """Accept ``host:port`` or a URL with a protocol (``tcp://``, ``tls://``, ``inproc://``)."""
    text = address.strip()
    if not text:
        raise ConfigError("--scheduler needs an address, e.g. tcp://10.0.0.5:8786")
    if "://" not in text:
        text = f"tcp://{text}"
    return text
