"""Time a 15-treatment, 25-trial random-effects network meta-analysis (the issue's speed target: < 20 s warm).

    python benchmarks/bench_nma.py [--out benchmarks/results/nma.md] [--backends pymc nutpie] [--reps 1]

The network is simulated (seed 12): a random spanning tree over 15 treatments (14 two-arm trials), 9 more
two-arm trials between random pairs, and two three-arm trials, 25 trials and 27 contrasts in all, SEs 0.08-0.25
on the log-HR scale, true tau 0.1.  Each engine is timed in a fresh interpreter: "cold" is the first fit (graph
building and compilation included), "warm" the same fit again in that process (compile caches hot).  MCMC uses
the spec defaults (4 chains x 1000 draws after 1000 tuning steps, target_accept 0.95, chains on 2 cores) with the
family's default (conditional) parameterisation, and reports the diagnostics gate; ``non_centred`` is timed as well.
The exact engine (GLS given tau, grid over tau; ranks from 20,000 iid draws) needs no compilation.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NETWORK = """
import numpy as np

def network(seed=12):
    rng = np.random.default_rng(seed)
    t = [f"T{i:02d}" for i in range(15)]
    study, a, b = [], [], []
    for i in range(1, 15):  # spanning tree
        j = int(rng.integers(0, i))
        study.append(f"s{i:02d}"); a.append(t[i]); b.append(t[j])
    k = 15
    while len(set(study)) < 23:  # more two-arm trials
        i, j = rng.choice(15, 2, replace=False)
        study.append(f"s{k:02d}"); a.append(t[i]); b.append(t[j]); k += 1
    for _ in range(2):  # two three-arm trials: two contrasts against one baseline
        i, j, l = rng.choice(15, 3, replace=False)
        study += [f"s{k:02d}", f"s{k:02d}"]; a += [t[i], t[j]]; b += [t[l], t[l]]; k += 1
    d = np.concatenate([[0.0], rng.normal(-0.2, 0.25, 14)])
    idx = {x: n for n, x in enumerate(t)}
    se = rng.uniform(0.08, 0.25, len(a))
    y = np.array([d[idx[x]] - d[idx[z]] for x, z in zip(a, b)]) + rng.normal(0, 0.1, len(a)) + rng.normal(0, se)
    return study, a, b, y, se
"""


def _run(code: str) -> dict:
    res = subprocess.run([sys.executable, "-c", NETWORK + code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _mcmc(backend: str, parameterisation: str) -> dict:
    code = f"""
import json, time
from harmoni_bayes.config import SamplerConfig
from harmoni_bayes.inference import sample
from harmoni_bayes.models.nma import NMAModel
from harmoni_bayes.posterior import diagnose
from harmoni_bayes.config import DiagnosticThresholds
study, a, b, y, se = network()
out = {{"studies": len(set(study)), "contrasts": len(a), "treatments": len(set(a) | set(b))}}
for label in ("cold", "warm"):
    t = time.perf_counter()
    fam = NMAModel.from_contrasts(study, a, b, y, se, reference="T00", parameterisation={parameterisation!r})
    idata = sample(fam.build_model(), SamplerConfig(backend={backend!r}, seed=1))
    out[label] = time.perf_counter() - t
    checked = [k for k, v in idata.posterior.data_vars.items() if v.dtype.kind == "f"]
    diag = diagnose(idata, checked, DiagnosticThresholds())
    out[label + "_gate"] = {{"ok": diag.ok, "min_ess_bulk": diag.min_ess_bulk, "max_rhat": diag.max_rhat,
                            "divergences": diag.divergences}}
print(json.dumps(out))
"""
    return _run(code)


def _exact() -> dict:
    code = """
import json, time
import numpy as np
from harmoni_bayes.models.nma import NMAModel
study, a, b, y, se = network()
out = {}
for label in ("cold", "warm"):
    t = time.perf_counter()
    fam = NMAModel.from_contrasts(study, a, b, y, se, reference="T00")
    fam.exact_fit(4000, np.random.default_rng(0))
    out[label] = time.perf_counter() - t
print(json.dumps(out))
"""
    return _run(code)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nma.md"))
    ap.add_argument("--backends", nargs="*", default=["pymc", "nutpie"])
    ap.add_argument("--reps", type=int, default=1, help="fresh processes per engine (the fastest is reported)")
    args = ap.parse_args()

    rows = [
        "| engine | parameterisation | cold (s) | warm (s) | gate (warm): min bulk ESS, max R-hat, divergences |",
        "|---|---|---|---|---|",
    ]
    size = ""
    ex = min((_exact() for _ in range(args.reps)), key=lambda r: r["warm"])
    rows.append(f"| exact (grid over tau) | - | {ex['cold']:.2f} | {ex['warm']:.2f} | - |")
    for backend in args.backends:
        for param in ("conditional", "non_centred"):
            r = min((_mcmc(backend, param) for _ in range(args.reps)), key=lambda r: r["warm"])
            g = r["warm_gate"]
            size = f"{r['treatments']} treatments, {r['studies']} trials, {r['contrasts']} contrasts"
            gate = f"{'ok' if g['ok'] else 'FAIL'}: {g['min_ess_bulk']:.0f}, {g['max_rhat']:.3f}, {g['divergences']}"
            rows.append(f"| {backend} (4x1000) | {param} | {r['cold']:.1f} | {r['warm']:.1f} | {gate} |")
            print(rows[-1], flush=True)
    head = [
        "# Network meta-analysis: speed",
        "",
        f"Simulated random-effects network ({size}); `python benchmarks/bench_nma.py`. Machine: "
        f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}. Fastest of {args.reps} fresh "
        "processes per engine; cold = first fit in the process, warm = the same fit again.",
        "",
    ]
    Path(args.out).write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    print("\n".join(head + rows))


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
