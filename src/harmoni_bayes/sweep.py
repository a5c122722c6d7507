"""One path for work that is many independent fits: timelines, prior-sensitivity grids, SBC, leave-one-out.

:func:`run_sweep` runs a list of :class:`Task` s on a ``dask.distributed`` client and returns one
:class:`TaskOutcome` per task, in the order given:

* by default on a ``LocalCluster`` of worker *processes* on this machine (one per core, one thread each:
  PyMC and the exact engine are CPU-bound, and processes keep PyTensor's compile locks apart);
* on an existing cluster when a scheduler address is given (``scheduler=`` or ``HARMONI_DASK_SCHEDULER``).

The same code path runs with one worker or many.  A task that raises is reported with its inputs and the
error, and the others finish; a worker that dies (killed, out of memory) loses only the task it was running
(the scheduler is told not to retry it elsewhere, so one poisonous task cannot kill every worker in turn).
Progress is printed as tasks complete.  The caller writes results (atomically); nothing here touches files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import Problem, SpecError
from .progress import PROGRESS_ENV, Tasks

SCHEDULER_ENV = "HARMONI_DASK_SCHEDULER"
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Task:
    """One independent unit of work: ``fn(**kwargs)``, identified by ``key`` (unique within a sweep).

    ``fn`` must be importable by the workers (a module-level function), and ``kwargs`` picklable.
    """

    key: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutcome:
    """What became of a task: its value, or the error with the inputs that caused it."""

    key: str
    ok: bool
    value: Any = None
    error: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class SweepError(SpecError):
    """A sweep cannot start (bad options, an unreachable scheduler)."""


def run_sweep(
    tasks: Sequence[Task],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    light: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[TaskOutcome]:
    """Run ``tasks`` on Dask and return their outcomes in the order given.

    Parameters
    ----------
    tasks
        The work; keys must be unique.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); else ``$HARMONI_DASK_SCHEDULER``; else a
        local cluster is started for this sweep and closed after it.
    workers
        Worker processes of the local cluster (default: the number of cores, at most the number of tasks).
    light
        The tasks are exact fits of a second or less.  A local cluster of one worker then runs it in this
        process (``processes=False``, one thread) instead of starting a process that would spend longer
        importing the package than on the tasks; the tasks still go through Dask, but a task that crashes the
        interpreter would take this process with it, so heavy (MCMC) sweeps keep their worker processes.
    progress
        Called with one line per finished task (default: :class:`~harmoni_bayes.progress.Tasks`: a bar of finished
        tasks on a terminal, with each line above it; the lines alone elsewhere).

    Returns
    -------
    list of TaskOutcome
        ``ok=False`` outcomes carry the error text and the task's inputs; they never stop the others.
    """
    keys = [t.key for t in tasks]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    problems = [Problem(f"task key {k!r} is used more than once") for k in dupes]
    if workers is not None and workers < 1:
        problems.append(Problem(f"workers must be at least 1, got {workers}"))
    if problems:
        raise SweepError("the sweep cannot start", problems)
    if not tasks:
        return []
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    import dask
    from distributed import Client, LocalCluster, as_completed

    # A task whose worker dies is not retried on another worker: it fails alone, with its inputs.
    settings = {"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False}
    with dask.config.set(settings):
        cluster = None
        try:
            if address:
                client = _connect(Client, address)
            else:
                n = workers or min(len(tasks), os.cpu_count() or 1)
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=not (light and n == 1),
                    dashboard_address=":0",  # a free port: sweeps in parallel never contend for 8787
                    silence_logs=logging.ERROR,
                )
                client = Client(cluster)
            with client, Tasks(len(tasks), "fits") as bar:
                outcomes = _run_throttled(client, tasks, progress or bar.done, as_completed)
        finally:
            if cluster is not None:
                cluster.close()
    return [outcomes[t.key] for t in tasks]


def _run_throttled(client: Any, tasks: Sequence[Task], say: Callable[[str], None], as_completed: Any) -> dict:
    """Keep one task per worker thread in flight, submitting the next as one finishes.

    The scheduler would otherwise queue several tasks on one worker, and a worker that dies takes every task
    it holds; with one at a time it loses only its own.  Results are fetched as each task finishes, so a
    worker dying later cannot take them along either.
    """
    slots = max(1, sum(client.nthreads().values()))
    pending = list(reversed(tasks))
    futures: dict[Any, Task] = {}
    outcomes: dict[str, TaskOutcome] = {}
    started = time.perf_counter()

    def submit(batch: Any) -> None:
        task = pending.pop()
        fut = client.submit(_timed, task.fn, task.kwargs, key=f"harmoni_sweep-{id(task)}-{task.key}", pure=False)
        futures[fut] = task
        batch.add(fut)

    finished = as_completed([], with_results=True, raise_errors=False)
    while pending and len(futures) < slots:
        submit(finished)
    for done, (fut, result) in enumerate(finished, start=1):
        task = futures.pop(fut)
        outcomes[task.key] = _outcome(task, fut, result)
        status = "ok" if outcomes[task.key].ok else "FAILED: " + outcomes[task.key].error
        say(f"[{done}/{len(tasks)}] {task.key} {status} ({time.perf_counter() - started:.1f} s)")
        if pending:
            submit(finished)
    return outcomes


def _connect(client_cls: Any, address: str) -> Any:
    try:
        return client_cls(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(
            f"cannot reach the Dask scheduler at {address!r} within {CONNECT_TIMEOUT_S} s ({type(exc).__name__}); "
            f"to run on this machine instead, leave out --scheduler and unset {SCHEDULER_ENV}"
        ) from None


@dataclass(frozen=True)
class _Raised:
    """What a task raised, described in the worker: the task's outcome, not a Dask failure."""

    error: str


def _timed(fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, float]:
    """Run one task in a worker, without progress output of its own (the sweep reports each task).

    An exception is returned as the task's value (:class:`_Raised`), not raised into Dask: the sweep reports it
    with the task's inputs, and a failed Dask task would have the worker log its traceback on the terminal too.
    """
    previous = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "off"
    start = time.perf_counter()
    try:
        value = fn(**kwargs)
    except Exception as exc:  # any error of one task is that task's outcome
        value = _Raised(_describe(exc))
    finally:  # a worker in the caller's process (``light``) hands its environment back as it found it
        if previous is None:
            del os.environ[PROGRESS_ENV]
        else:
            os.environ[PROGRESS_ENV] = previous
    return value, time.perf_counter() - start


def _outcome(task: Task, fut: Any, result: Any) -> TaskOutcome:
    if fut.status != "finished":  # the worker died, or Dask could not run the task at all
        exc = result[1] if isinstance(result, tuple) and len(result) == 3 else result
        return TaskOutcome(task.key, False, error=_describe(exc), inputs=_inputs(task))
    value, seconds = result
    if isinstance(value, _Raised):
        return TaskOutcome(task.key, False, error=value.error, inputs=_inputs(task), seconds=seconds)
    return TaskOutcome(task.key, True, value=value, inputs=_inputs(task), seconds=seconds)


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "the worker running this task died (killed or out of memory)"
    msg = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    return f"{name}: {msg}"


def _inputs(task: Task) -> dict[str, Any]:
    return {"fn": f"{task.fn.__module__}.{task.fn.__qualname__}", **task.kwargs}


__all__ = ["SCHEDULER_ENV", "SweepError", "Task", "TaskOutcome", "run_sweep"]
