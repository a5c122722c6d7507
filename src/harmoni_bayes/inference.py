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
import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import RowPadding, SamplerConfig
from .posterior import inference_data
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


XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""``XLA_FLAGS`` of the main job's worker processes: XLA on one thread.  A class-surrogacy block's operations are on
arrays of a few dozen numbers, where handing them to a thread pool costs more than it saves (0-25% of the sampling
time in our measurements, docs/benchmarks.md), and each worker has one core's share anyway.  Read when JAX starts
its backend, so it is set before a worker's first fit, and only when the user has set no flags of their own."""


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


def sample(model: Any, config: SamplerConfig, padding: RowPadding | None = None) -> Any:
    """Run NUTS on ``model`` and return InferenceData (posterior and sample_stats).

    The numpyro backend samples through :func:`sample_numpyro`: the data (``pm.Data``) are arguments of one compiled
    program, which JAX keeps on disk, so a refit on other evidence, or of another model of the same structure, skips
    compilation; ``padding`` (the family's ``row_padding``) pads the rows so that data sets of different sizes share
    it.  The pymc and nutpie backends go through ``pm.sample``.

    The same model, settings and seed give the same draws on the same machine and package versions, whatever
    the number of cores (each chain has its own seed).  Progress: the backend's per-chain bars when stderr is a
    terminal, else a line before and after (:func:`harmoni_bayes.progress.timed`), so a long fit is never silent
    and a log is never redrawn.
    """
    if config.backend == "numpyro":
        return sample_numpyro(model, config, padding)
    return _pm_sample(model, config)


def _pm_sample(model: Any, config: SamplerConfig) -> Any:
    """``pm.sample`` with ``config.backend`` as its ``nuts_sampler``: PyMC's own samplers, nutpie, and (for tests
    comparing the two numpyro paths) PyMC's JAX path, which bakes the data into the compiled program.
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


# ---- numpyro with the data as arguments of the compiled program ----------------------------------------------


_STATS = ("diverging", "num_steps", "potential_energy", "energy", "step_size", "accept_prob")


def _data_as_inputs(outputs: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """``outputs`` with every shared variable (``pm.Data``) replaced by a symbolic input of the same type.

    Returns the new outputs, the shared variables (sorted by name) and their stand-in inputs, in the same order.
    """
    from pytensor.compile import SharedVariable
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs

    shared = sorted((v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)), key=lambda v: str(v.name))
    if any(v.default_update is not None for v in shared):
        raise ValueError("shared variables with updates cannot be sampling arguments")
    stand_ins = [v.type(name=v.name) for v in shared]
    replace: dict[Any, Any] = dict(zip(shared, stand_ins, strict=True))
    return clone_replace(outputs, replace=replace), shared, stand_ins


def _padded_data(model: Any, shared: list[Any], padding: RowPadding | None) -> list[np.ndarray]:
    """The current values of ``shared``, rows padded as ``padding`` says."""
    values = [np.asarray(v.get_value(borrow=True)) for v in shared]
    if padding is None:
        return values
    n = len(model.coords[padding.dim])
    size = -(-n // padding.bucket) * padding.bucket
    out = []
    for v, x in zip(shared, values, strict=True):
        if v is model.dim_lengths.get(padding.dim):  # the dimension's length, when it is data
            x = np.asarray(size, dtype=x.dtype)
        dims = model.named_vars_to_dims.get(v.name, ())
        if dims and dims[0] == padding.dim and size > n:
            x = np.concatenate([x, np.repeat(x[:1], size - n, axis=0)])
            if v.name.endswith(padding.weight):
                x[n:] = 0
        out.append(x)
    return out


_PROGRAMS: dict[tuple, Any] = {}
"""Jitted programs of this process, by :func:`_structure_key` and settings: a later fit of the same structure (another
spec's block of the same relationship) reuses the traced and compiled program instead of tracing it again."""


def _structure_key(fn: Any, *args: Any) -> str:
    """A digest of what ``fn`` computes on arguments shaped like ``args``: its jaxpr with every captured constant.

    Two functions with the same key compute the same thing, so one's jitted program serves the other.
    """
    import hashlib

    import jax

    closed = jax.make_jaxpr(fn)(*args)
    h = hashlib.sha256(str(closed.jaxpr).encode())
    for c in closed.consts:
        c = np.asarray(c)
        h.update(f"{c.dtype}{c.shape}".encode())
        h.update(c.tobytes())
    return h.hexdigest()


def _nuts_program(potential: Any, tune: int, draws: int, target_accept: float) -> Any:
    """One jitted program: every chain's NUTS warm-up and draws, chains one after another (``lax.map``).

    ``potential(x, *data)`` is minus the log density of the flat vector ``x`` of all unconstrained values: one
    array rather than a list of them, because the thunk runtime of XLA's CPU backend (jaxlib 0.4.32 and later)
    pays per operation, and NUTS's every operation on the position and momentum is one per array (a third less
    time per leapfrog step here; the same arithmetic, so the same draws up to rounding).  The data are arguments,
    so XLA's compiled program depends only on the model's structure and shapes: JAX's disk cache reuses it for every
    such model.
    """
    import jax
    from numpyro.infer.hmc import hmc

    def potential_fn_gen(*data):
        return lambda x: potential(x, *data)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def chain(key, x0, data):
        state = init_kernel(x0, tune, target_accept_prob=target_accept, model_args=data, rng_key=key)

        def step(s, _):
            s = sample_kernel(s, model_args=data)
            return s, (
                s.z,
                s.diverging,
                s.num_steps,
                s.potential_energy,
                s.energy,
                s.adapt_state.step_size,
                s.accept_prob,
            )

        # one loop over warm-up and draws (two loops would compile the NUTS kernel twice); warm-up steps dropped
        _, trace = jax.lax.scan(step, state, None, length=tune + draws)
        return jax.tree.map(lambda x: x[tune:], trace)

    def run(keys, x0, data):
        return jax.lax.map(lambda kx: chain(kx[0], kx[1], data), (keys, x0))

    return jax.jit(run)


def _memo(key: tuple, build: Any) -> Any:
    """``_PROGRAMS[key]``, built by ``build()`` the first time."""
    if key not in _PROGRAMS:
        _PROGRAMS[key] = build()
    return _PROGRAMS[key]


@dataclass(frozen=True)
class _Jaxified:
    """A model's JAX functions for :func:`sample_numpyro`, data (``pm.Data``) as arguments; see :func:`_jaxified`."""

    value_vars: list[Any]
    shared: list[Any]  # the log density's data, in the order its potential takes them
    potential: Any  # (*values, *data) -> minus the log density
    logp_jit: Any  # the same, jitted: for the start points
    initial_point: Any  # seed -> a jittered start point (PyMC's initial-point function)
    wanted: list[Any]  # the variables kept in the posterior
    shared_draws: list[Any]
    draws_graph: Any  # (*values, *data) -> the wanted variables


_JAXIFIED: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], _Jaxified]] = weakref.WeakKeyDictionary()
"""The :class:`_Jaxified` of each live model, with the identities of the model's variables when it was made."""

_CONVERTED: dict[tuple, Any] = {}
"""PyTensor graphs converted to JAX in this process, by :func:`_graph_key`: another model of the same structure
(another spec's block of the same relationship, the same spec at another date) reuses the conversion."""

_PLAIN_CONSTANTS = (type(None), bool, int, float, complex, str, bytes, slice, tuple)


def _graph_key(inputs: list[Any], outputs: list[Any]) -> tuple | None:
    """An exact, hashable description of what ``outputs`` compute from ``inputs``; None where a part of the graph
    cannot be described (then nothing is reused).

    Every apply node in topological order as its op (ops compare by their parameters, ``__props__``) and where its
    inputs come from: one of ``inputs`` (by position and type), an earlier node's output, or a constant (its type
    and every byte of its value).  Equal keys are equal computations; a dict lookup compares keys in full, so a hash
    collision cannot make two different graphs share a conversion.
    """
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import io_toposort

    where: dict[Any, tuple] = {v: ("in", i) for i, v in enumerate(inputs)}

    def source(v: Any) -> tuple:
        if v in where:
            return where[v]
        if isinstance(v, Constant):
            data = v.data
            if isinstance(data, np.ndarray | np.generic):
                a = np.asarray(data)
                return ("const", v.type, a.dtype.str, a.shape, a.tobytes())
            if isinstance(data, _PLAIN_CONSTANTS):
                return ("const", v.type, repr(data))
        raise LookupError(v)  # a root that is neither an input nor a constant we can describe

    parts: list[tuple] = [tuple(v.type for v in inputs)]
    try:
        for node in io_toposort(inputs, outputs):
            parts.append((node.op, tuple(source(v) for v in node.inputs)))
            for j, out in enumerate(node.outputs):
                where[out] = ("node", len(parts) - 1, j)
        parts.append(tuple(source(v) for v in outputs))
        key = tuple(parts)
        hash(key)
    except (LookupError, TypeError):  # TypeError: an unhashable op
        return None
    return key


def _converted(inputs: list[Any], outputs: list[Any], finish: Any = None) -> Any:
    """PyMC's ``get_jaxified_graph(inputs, outputs)``, passed through ``finish`` if given, made once per computation
    (:func:`_graph_key`).

    The conversion runs PyTensor's graph rewrites: 1-2 s for a class-surrogacy block, as long as sampling the
    block with a compiled program.  The data are inputs, so models that differ only in their data share it (and
    what ``finish`` made of it, e.g. a jitted function).
    """
    from pymc.sampling.jax import get_jaxified_graph

    def make() -> Any:
        graph = get_jaxified_graph(inputs=inputs, outputs=outputs)
        return graph if finish is None else finish(graph)

    key = _graph_key(inputs, outputs)
    if key is None:
        return make()
    if key not in _CONVERTED:
        _CONVERTED[key] = make()
    return _CONVERTED[key]


def _jaxified(model: Any) -> _Jaxified:
    """The model's JAX functions, made once per model and reused while its variables stay the same.

    Converting PyMC's graphs to JAX (graph rewrites) and compiling the initial-point function take about half a
    second, several times the sampling when a loop refits one model to new data (``pm.set_data``: SBC and
    recovery runs).  The data are arguments of the functions, so new data need no new conversion; a model that
    has gained or lost a variable since is converted again, and another model of the same structure (another spec's
    block of the same relationship) reuses the conversion (:func:`_converted`).
    """
    from pymc.initial_point import make_initial_point_fn
    from pymc.util import get_default_varnames

    signature = tuple(id(v) for v in model.named_vars.values())
    hit = _JAXIFIED.get(model)
    if hit is not None and hit[0] == signature:
        return hit[1]
    value_vars = list(model.value_vars)
    (logp,), shared, inputs = _data_as_inputs([model.logp()])
    potential, logp_jit = _converted(value_vars + inputs, [-logp], finish=_potential)
    wanted = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    outs, shared_draws, inputs_draws = _data_as_inputs(wanted)
    made = _Jaxified(
        value_vars=value_vars,
        shared=shared,
        potential=potential,
        logp_jit=logp_jit,
        initial_point=make_initial_point_fn(
            model=model, overrides=None, jitter_rvs=set(model.free_RVs), return_transformed=True
        ),
        wanted=wanted,
        shared_draws=shared_draws,
        draws_graph=_converted(value_vars + inputs_draws, outs),
    )
    _JAXIFIED[model] = (signature, made)
    return made


def _potential(graph: Any) -> tuple[Any, Any]:
    """(minus the log density, the same jitted) of a converted log-density graph; made with the conversion
    (:func:`_converted`), so that models sharing a conversion share the jitted function too.
    """
    import jax

    def potential(*args):
        return graph(*args)[0]

    return potential, jax.jit(potential)


def _start_points(model: Any, fns: _Jaxified, data: list[Any], seeds: Any, retries: int = 10) -> list[dict]:
    """One jittered start point per seed, with a finite log density: PyMC's ``_init_jitter``, so the same points,
    with the initial-point function made once per model (:func:`_jaxified`) instead of at every fit.
    """
    points = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for i in range(retries + 1):
            point = fns.initial_point(seed)
            if np.isfinite(-fns.logp_jit(*(point[v.name] for v in fns.value_vars), *data)):
                break
            if i == retries:
                model.check_start_vals(point)  # raises, naming the variables whose start is bad
            seed = rng.integers(2**30, dtype=np.int64)
        points.append(point)
    return points


def sample_numpyro(model: Any, config: SamplerConfig, padding: RowPadding | None = None) -> Any:
    """NUTS with numpyro, the model's data (``pm.Data``) passed to the compiled program as arguments.

    PyMC's own numpyro path bakes the data into the program as constants, so each model compiles afresh.  Here
    the log density's shared variables become inputs, so one compiled program (kept on disk by JAX, see
    :func:`_jax_cache`) serves every model of the same structure and shapes; ``padding`` pads the rows to a
    common size.  Chains run one after another in one program.  Returns InferenceData like ``pm.sample``:
    posterior (constrained values and deterministics, with the model's dims) and sample_stats.
    """
    import jax
    import jax.numpy as jnp
    import numpyro
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants
    from pymc.util import _get_seeds_per_chain

    _jax_cache()
    fns = _jaxified(model)
    value_vars, potential_of_values = fns.value_vars, fns.potential
    data = [jnp.asarray(x) for x in _padded_data(model, fns.shared, padding)]
    (seed,) = _get_seeds_per_chain(config.seed, 1)
    points = _start_points(model, fns, data, _get_seeds_per_chain(seed, config.chains))
    # NUTS moves one flat vector (see _nuts_program): the values' shapes say how to cut it back into them
    shapes = [np.shape(points[0][v.name]) for v in value_vars]
    cuts = np.cumsum([int(np.prod(shape)) for shape in shapes])[:-1].tolist()

    def values(x):  # flat vector(s), last axis -> the value variables
        return [
            part.reshape(*x.shape[:-1], *shape) for part, shape in zip(jnp.split(x, cuts, axis=-1), shapes, strict=True)
        ]

    def potential(x, *data):
        return potential_of_values(*values(x), *data)

    x0 = jnp.asarray(np.stack([np.concatenate([np.ravel(p[v.name]) for v in value_vars]) for p in points]))
    keys = jax.random.split(jax.random.PRNGKey(seed), config.chains)
    what = (
        f"sampling {config.chains} chains x ({config.tune} tune + {config.draws} draws) with numpyro (data as inputs)"
    )
    with timed(what):
        started = time.perf_counter()
        settings = (config.tune, config.draws, config.target_accept)
        run = _memo(
            ("nuts", _structure_key(potential, x0[0], *data), *settings),
            lambda: _nuts_program(potential, *settings),
        )
        x, *stats = jax.block_until_ready(run(keys, x0, data))
        attrs = {"sampling_time": time.perf_counter() - started, "tuning_steps": config.tune}

    wanted, draws_graph = fns.wanted, fns.draws_graph
    data_d = [jnp.asarray(x) for x in _padded_data(model, fns.shared_draws, padding)]

    def per_draw(x, data):  # over chains and draws, the data (if any) again as arguments
        return jax.vmap(jax.vmap(lambda x1: draws_graph(*values(x1), *data)))(x)

    per_draw_jit = _memo(
        ("draws", _structure_key(lambda x1, *d: draws_graph(*values(x1), *d), x0[0], *data_d)),
        lambda: jax.jit(per_draw),
    )
    posterior = {v.name: np.asarray(d) for v, d in zip(wanted, per_draw_jit(x, data_d), strict=True)}

    names = dict(zip(_STATS, stats, strict=True))
    sample_stats = {
        "diverging": np.asarray(names["diverging"]),
        "n_steps": np.asarray(names["num_steps"]),
        "tree_depth": np.log2(np.asarray(names["num_steps"])).astype(int) + 1,
        "lp": np.asarray(names["potential_energy"]),
        "energy": np.asarray(names["energy"]),
        "step_size": np.asarray(names["step_size"]),
        "acceptance_rate": np.asarray(names["accept_prob"]),
    }
    coords, dims = coords_and_dims_for_inferencedata(model)
    return inference_data(
        posterior,
        sample_stats,
        constant_data=find_constants(model),
        coords=coords,
        dims=dims,
        attrs=attrs,
        library=numpyro,
    )
