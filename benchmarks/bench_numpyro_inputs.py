"""Cold-cache time of the class surrogacy fits with numpyro: PyMC's path (data baked into each compiled program)
against the data-as-inputs path (one compiled program per relationship, reused across specs).

    PYTHONPATH=src python benchmarks/bench_numpyro_inputs.py {pymc,inputs} SPEC[:BLOCK] ... [--save FILE.pkl]

Fits every block (or the one named) of each spec in this process, with brand-new JAX and PyTensor cache folders
unless ``--keep-cache`` (then ``HARMONI_JAX_CACHE`` / ``PYTENSOR_FLAGS`` as set, e.g. shared by two processes).
Prints wall and CPU seconds per block and the time in XLA's compiler, PyTensor's JAX conversion and the initial
points (monkeypatched timers, so the phases overlap the per-block totals).  ``--save`` pickles each block's
posterior (as a dict) and divergence count, for comparing the two paths' summaries.
"""

from __future__ import annotations

import argparse
import collections
import os
import pickle
import resource
import sys
import tempfile
import time

START = time.perf_counter()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", choices=["pymc", "inputs"])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--save")
    parser.add_argument("--keep-cache", action="store_true")
    args = parser.parse_args()
    if not args.keep_cache:
        tmp = tempfile.mkdtemp(prefix="harmoni_jax_bench_")
        os.environ["HARMONI_JAX_CACHE"] = os.path.join(tmp, "jax")
        os.environ["PYTENSOR_FLAGS"] = f"compiledir={tmp}/pytensor"

    phases: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])

    def timed(module, name: str, label: str) -> None:
        f = getattr(module, name)

        def wrapper(*a, **k):
            w, c = time.perf_counter(), _cpu()
            try:
                return f(*a, **k)
            finally:
                phases[label][0] += time.perf_counter() - w
                phases[label][1] += _cpu() - c
                phases[label][2] += 1

        setattr(module, name, wrapper)

    import jax._src.compiler as compiler
    import pymc.sampling.jax as pmjax
    import pymc.sampling.mcmc as pmmcmc

    timed(compiler, "backend_compile_and_load", "XLA compile")
    timed(pmjax, "get_jaxified_graph", "PyTensor -> JAX")
    timed(pmmcmc, "_init_jitter", "initial points")

    from harmoni_bayes.inference import sample
    from harmoni_bayes.models import get_family
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.specs import load_spec

    print(f"imports {time.perf_counter() - START:.1f} s", flush=True)
    saved = {}
    w0, c0 = time.perf_counter(), _cpu()
    for target in args.specs:
        path, _, only = target.partition(":")
        spec = load_spec(path)
        family, _ = get_family(spec.model).from_spec(spec, EvidenceTables(spec))
        padding = family.row_padding if args.path == "inputs" else None
        for name, model in family.build_models().items():
            if only and name != only:
                continue
            w, c = time.perf_counter(), _cpu()
            idata = sample(model, spec.sampler, padding)
            div = int(idata.sample_stats["diverging"].sum())
            print(f"  {spec.name:28s} {name:20s} wall {time.perf_counter() - w:6.1f} cpu {_cpu() - c:6.1f} div {div}")
            saved[(spec.name, name)] = {"posterior": idata.posterior.to_dict(), "div": div}
    print(f"all fits: wall {time.perf_counter() - w0:.1f} s, cpu {_cpu() - c0:.1f} s")
    for label, (w, c, n) in phases.items():
        print(f"  {label:18s} wall {w:6.1f} cpu {c:6.1f} calls {n:.0f}")
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump(saved, fh)


if __name__ == "__main__":
    sys.exit(main())
