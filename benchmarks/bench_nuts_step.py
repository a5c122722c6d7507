"""Run time of the compiled NUTS program of each class-surrogacy block (no tracing, no compile), and its gradient.

    python benchmarks/bench_nuts_step.py [--spec SPEC] [--position {flat,arrays}]
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" python benchmarks/bench_nuts_step.py

For each relationship block of the spec: the gradient of its log density alone (20,000 evaluations in one jitted
loop), then the spec's chains x (tune + draws) of NUTS run twice by the same jitted program, timing the second run;
the leapfrog steps of the draws (the program returns those, not the warm-up's) show that both variants take the same
trees, and the run time per draw-phase step is the figure to compare between them.

``--position flat`` is the shipped sampler (``inference._nuts_program``: one flat vector); ``arrays`` is the one
before it, with the position as a list of arrays, one per value variable (the same arithmetic; XLA's CPU thunk
runtime pays per operation, so per array).  Run each variant in its own process: ``XLA_FLAGS`` is read once, when
JAX starts its backend.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="models/harmoni2_os_forecast.toml")
    parser.add_argument("--position", choices=["flat", "arrays"], default="flat")
    args = parser.parse_args()
    os.environ.setdefault("HARMONI_JAX_CACHE", "")  # compile afresh: the first run is not what is timed anyway

    import jax
    import jax.numpy as jnp
    from numpyro.infer.hmc import hmc
    from pymc.sampling.jax import get_jaxified_graph

    from harmoni_bayes import inference
    from harmoni_bayes.models import get_family
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.specs import load_spec, with_overrides

    spec = with_overrides(load_spec(args.spec), method="mcmc")
    family, _ = get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))
    cfg = spec.sampler
    print(f"{args.spec}, position {args.position}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print("| block | gradient (us) | NUTS run (s) | draw-phase steps | run / draw-phase steps (us) |")
    print("|---|---|---|---|---|")
    for name, model in family.build_models().items():
        values = list(model.value_vars)
        (logp,), shared, inputs = inference._data_as_inputs([model.logp()])
        data = [jnp.asarray(x) for x in inference._padded_data(model, shared, family.row_padding)]
        graph = get_jaxified_graph(inputs=values + inputs, outputs=[-logp])
        start = model.initial_point()
        z = [np.asarray(start[v.name], dtype=float) for v in values]
        shapes = [x.shape for x in z]
        cuts = np.cumsum([x.size for x in z])[:-1].tolist()

        def split(x, shapes=shapes, cuts=cuts):
            return [p.reshape(s) for p, s in zip(jnp.split(x, cuts), shapes, strict=True)]

        grad = jax.value_and_grad(lambda zz, graph=graph, data=data: graph(*zz, *data)[0])

        @jax.jit
        def loop(zz, grad=grad):
            def body(i, acc):
                v, _ = grad(jax.tree.map(lambda a: a + 1e-9 * acc, zz))
                return acc + 1e-12 * v

            return jax.lax.fori_loop(0, 20_000, body, 0.0)

        zj = [jnp.asarray(x) for x in z]
        loop(zj).block_until_ready()
        t = time.perf_counter()
        loop(zj).block_until_ready()
        per_grad = (time.perf_counter() - t) / 20_000

        keys = jax.random.split(jax.random.PRNGKey(1), cfg.chains)
        if args.position == "flat":

            def potential(x, *d, graph=graph, split=split):
                return graph(*split(x), *d)[0]

            run = inference._nuts_program(potential, cfg.tune, cfg.draws, cfg.target_accept)
            x0 = jnp.asarray(np.tile(np.concatenate([x.ravel() for x in z]), (cfg.chains, 1)))
        else:
            run = _arrays_program(graph, cfg.tune, cfg.draws, cfg.target_accept, hmc)
            x0 = [jnp.asarray(np.stack([x] * cfg.chains)) for x in z]
        jax.block_until_ready(run(keys, x0, data))
        t = time.perf_counter()
        out = jax.block_until_ready(run(keys, x0, data))
        seconds = time.perf_counter() - t
        steps = int(np.asarray(out[2]).sum())
        print(f"| {name} | {per_grad * 1e6:.2f} | {seconds:.2f} | {steps} | {seconds / steps * 1e6:.1f} |", flush=True)


def _arrays_program(graph, tune, draws, target_accept, hmc):
    """The sampler before the flat position: numpyro's NUTS on a list of arrays, otherwise as _nuts_program."""
    import jax

    init_kernel, sample_kernel = hmc(potential_fn_gen=lambda *d: lambda z: graph(*z, *d)[0], algo="NUTS")

    def chain(key, z0, data):
        state = init_kernel(z0, tune, target_accept_prob=target_accept, model_args=data, rng_key=key)

        def step(s, _):
            s = sample_kernel(s, model_args=data)
            return s, (s.z, s.diverging, s.num_steps)

        _, trace = jax.lax.scan(step, state, None, length=tune + draws)
        return jax.tree.map(lambda x: x[tune:], trace)

    return jax.jit(lambda keys, z0, data: jax.lax.map(lambda kz: chain(kz[0], kz[1], data), (keys, z0)))


if __name__ == "__main__":
    main()
