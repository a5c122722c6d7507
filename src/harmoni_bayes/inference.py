"""Sampling, with sampler settings kept apart from model settings.

Seeds are integers and are recorded in every result.  The same model, settings and seed give the
same draws with any backend (PyMC seeds each chain from the integer; nutpie and numpyro likewise).

PyMC runs chains in worker processes.  If the parent is killed (``kill -9``), plain workers would be
left running; here every worker asks the kernel to kill it when its parent dies (Linux
``PR_SET_PDEATHSIG``), so a killed run leaves no orphans.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing.context
import os
import signal
import sys
from typing import Any

from .config import SamplerConfig
from .progress import timed

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits; a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


class _DiesWithParent:
    """Mixin for a chain worker process: it asks the kernel to kill it when its parent dies."""

    def run(self) -> None:
        _die_with_parent()
        super().run()  # type: ignore[misc]


class _WorkerProcess(_DiesWithParent, multiprocessing.context.ForkProcess):
    """A forked chain worker (PyMC's default start method on Linux)."""


class _WorkerContext(multiprocessing.context.ForkContext):
    Process = _WorkerProcess


class _ServedWorkerProcess(_DiesWithParent, multiprocessing.context.ForkServerProcess):
    """A chain worker started by a fork server (its parent is the server, which ends with us)."""


class _ServedWorkerContext(multiprocessing.context.ForkServerContext):
    Process = _ServedWorkerProcess


def fork_is_safe() -> bool:
    """False once JAX is loaded in this process (a numpyro fit ran, e.g. earlier in a notebook): JAX runs threads,
    and a forked child of a multithreaded process can deadlock on a lock one of them held.  Worker processes are
    then started by a fork server, a fresh interpreter, instead of by forking this one.
    """
    return "jax" not in sys.modules


def worker_context() -> multiprocessing.context.BaseContext:
    """How to start worker processes here: forking (fast, inherits the imports) unless :func:`fork_is_safe` says
    no, then a fork server.
    """
    return multiprocessing.get_context("fork" if fork_is_safe() else "forkserver")


CORES_ENV = "HARMONI_CHAIN_CORES"
"""Environment variable: at most this many chain processes per fit when the spec sets no ``cores`` (the main
job sets it in its worker processes, so parallel specs share the cores instead of oversubscribing them)."""


def chain_cores() -> int:
    """Cores a fit may use for its chains: ``HARMONI_CHAIN_CORES`` if set (a positive integer), else all.

    Returns
    -------
    int
        At least 1.  The number of cores changes where chains run, never their draws (each chain has its own
        seed).
    """
    value = os.environ.get(CORES_ENV, "")
    if value.strip().isdigit() and int(value) >= 1:
        return int(value)
    return os.cpu_count() or 1


JAX_CACHE_ENV = "HARMONI_JAX_CACHE"
"""Environment variable: folder of the on-disk cache of XLA-compiled samplers (default
``$XDG_CACHE_HOME/harmoni_bayes/jax``, else ``~/.cache/harmoni_bayes/jax``); empty turns the cache off."""


def _jax_cache() -> None:
    """Keep XLA's compiled programs on disk, so a re-run of an unchanged model skips compilation.

    The cache key is the compiled program itself, data included (PyMC's JAX graphs hold the data as constants):
    re-running a spec on the same evidence hits the cache, new evidence compiles afresh.  Entries are written
    atomically by JAX, so parallel processes can share the folder.
    """
    import jax

    folder = os.environ.get(JAX_CACHE_ENV)
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "harmoni_bayes", "jax")
    if folder and jax.config.values.get("jax_compilation_cache_dir") is None:
        jax.config.update("jax_compilation_cache_dir", folder)
        # every program, however quick to compile: PyMC evaluates start points op by op, and those add up
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _backend_kwargs(config: SamplerConfig) -> dict[str, Any]:
    """Keyword arguments of ``pm.sample`` that only one backend takes."""
    if config.backend == "pymc" and sys.platform.startswith("linux"):
        return {"mp_ctx": _WorkerContext() if fork_is_safe() else _ServedWorkerContext()}
    if config.backend == "numpyro":
        _jax_cache()
        # Chains one after another in one compiled program.  "parallel" (one XLA host device per chain) compiles
        # through pmap, which JAX's disk cache does not keep, and its draws differ in the last digits from the
        # sequential ones; since the device count is fixed once per process, the draws of a notebook would then
        # depend on the first fit's chain count.  Sequential chains give the same draws in every process.
        return {"nuts_sampler_kwargs": {"chain_method": "sequential"}}
    return {}


def sample(model: Any, config: SamplerConfig) -> Any:
    """Run NUTS on ``model`` and return InferenceData (posterior and sample_stats).

    The same model, settings and seed give the same draws on the same machine and package versions, whatever
    the number of cores (each chain has its own seed).  Progress: the backend's per-chain bars when stderr is a
    terminal, else a line before and after (:func:`harmoni_bayes.progress.timed`), so a long fit is never silent
    and a log is never redrawn.
    """
    import pymc as pm

    cores = config.cores or min(config.chains, chain_cores())
    # PyMC logs its own convergence advice; our diagnostics gate is the single source of truth.
    logging.getLogger("pymc").setLevel(logging.ERROR)
    extra = _backend_kwargs(config)
    what = f"sampling {config.chains} chains x ({config.tune} tune + {config.draws} draws) with {config.backend}"
    with model, timed(what) as live:
        return pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=cores,
            random_seed=config.seed,
            target_accept=config.target_accept,
            nuts_sampler=config.backend,
            progressbar=live,
            compute_convergence_checks=False,
            **extra,
        )
