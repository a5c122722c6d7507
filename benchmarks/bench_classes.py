"""Time the class-aware surrogacy model: compile and sampling per relationship variant (nutpie and PyMC).

"Warm" is the second sampling run of an already compiled model in the same process (what a sweep or a
leave-one-out loop pays per fit); "compile" is the first compile in a fresh process (PyTensor's on-disk
caches make a second process faster; run with ``PYTENSOR_FLAGS=base_compiledir=$(mktemp -d)`` for a cold
cache).  4 chains x (1000 tune + 1000 draws) on the reference comparisons of
``models/nsclc_surrogacy_classes.toml`` (about 60 comparisons in 7 classes).

Usage::

    PYTHONPATH=src python benchmarks/bench_classes.py [--backend nutpie|pymc|both]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

SPEC = ROOT / "models" / "nsclc_surrogacy_classes.toml"
VARIANTS = ("pooled", "pooled_no_intercept", "independent", "exchangeable")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="nutpie", choices=["nutpie", "pymc", "both"])
    args = ap.parse_args(argv)

    from harmoni_bayes.config import DiagnosticThresholds, SamplerConfig
    from harmoni_bayes.inference import sample
    from harmoni_bayes.models import get_family
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.posterior import diagnose
    from harmoni_bayes.specs import load_spec

    spec = load_spec(SPEC)
    spec = spec.model_copy(update={"relationships": list(VARIANTS)})
    fam, _ = get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))
    print(f"{len(fam.data.labels)} comparisons, {len(fam.data.classes)} classes: {fam.data.counts}")
    print(
        "| variant | backend | first run (compile + sample), s | warm run, s | divergences | max R-hat | min bulk ESS |"
    )
    print("|---|---|---|---|---|---|---|")
    backends = ("nutpie", "pymc") if args.backend == "both" else (args.backend,)
    for backend in backends:
        for r, model in fam.build_models().items():
            if backend == "nutpie":
                import nutpie

                t0 = time.perf_counter()
                compiled = nutpie.compile_pymc_model(model)
                kw = {
                    "draws": 1000,
                    "tune": 1000,
                    "chains": 4,
                    "cores": 2,
                    "progress_bar": False,
                    "target_accept": 0.95,
                }
                idata = nutpie.sample(compiled, seed=1, **kw)
                first = time.perf_counter() - t0
                t1 = time.perf_counter()
                idata = nutpie.sample(compiled, seed=2, **kw)
                warm = time.perf_counter() - t1
            else:
                cfg = SamplerConfig(draws=1000, tune=1000, chains=4, seed=1, backend="pymc", target_accept=0.95)
                t0 = time.perf_counter()
                idata = sample(model, cfg)
                first = time.perf_counter() - t0
                t1 = time.perf_counter()
                idata = sample(model, cfg.model_copy(update={"seed": 2}))
                warm = time.perf_counter() - t1
            names = [k for k, v in idata.posterior.data_vars.items() if v.dtype.kind == "f"]
            d = diagnose(idata, names, DiagnosticThresholds())
            print(
                f"| {r} | {backend} | {first:.1f} | {warm:.1f} | {d.divergences} | {d.max_rhat:.3f} | "
                f"{d.min_ess_bulk:.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
