"""Time every shipped spec: exact engine, MCMC cold and warm wall time, and ESS per second per backend.

    python benchmarks/bench_specs.py [--out benchmarks/results/specs.md] [--specs models/a.toml ...]

"Cold" is the first fit in a fresh process (graph building and compilation included); "warm" is the
same fit again in that process (PyTensor's compile cache is then hot). ESS/s is the minimum bulk ESS over
the checked variables divided by the wall time of the whole fit. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _one(spec: str, backend: str) -> str:
    """Cold and warm timings of one spec and backend, measured in a fresh interpreter."""
    code = f"""
import time, json
t0 = time.perf_counter()
from harmoni_bayes.run import run_spec
t_import = time.perf_counter() - t0
out = {{}}
for label in ("cold", "warm"):
    t = time.perf_counter()
    r = run_spec({spec!r}, backend={backend!r})
    out[label] = time.perf_counter() - t
    out[label + "_ess"] = r.summary.diagnostics["min_ess_bulk"]
    out["ok"] = r.summary.diagnostics["ok"]
out["import"] = t_import
print(json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return res.stdout.strip().splitlines()[-1]


def main() -> None:
    import json

    from harmoni_bayes.run import run_spec
    from harmoni_bayes.specs import load_spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "specs.md"))
    ap.add_argument("--specs", nargs="*", default=sorted(str(p) for p in (ROOT / "models").glob("*.toml")))
    ap.add_argument("--backends", nargs="*", default=["pymc", "nutpie"])
    args = ap.parse_args()

    rows = [
        "| spec | engine | cold (s) | warm (s) | min bulk ESS | ESS/s (warm) | gate |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in args.specs:
        s = load_spec(spec)
        name = Path(spec).stem
        try:
            run_spec(spec, method="exact")
            times = []
            for _ in range(5):
                t = time.perf_counter()
                run_spec(spec, method="exact")
                times.append(time.perf_counter() - t)
            rows.append(f"| {name} | exact | - | {statistics.median(times):.3f} | - | - | - |")
        except Exception as exc:  # families without an exact engine
            print(f"{name}: no exact engine ({exc.__class__.__name__})", file=sys.stderr)
        for backend in args.backends:
            m = json.loads(_one(spec, backend))
            ess_s = m["warm_ess"] / m["warm"] if m["warm_ess"] else float("nan")
            rows.append(
                f"| {name} | {backend} ({s.sampler.chains}x{s.sampler.draws}) | {m['cold']:.1f} | {m['warm']:.1f} "
                f"| {m['warm_ess']:.0f} | {ess_s:.0f} | {'ok' if m['ok'] else 'FAIL'} |"
            )
        print(rows[-1], flush=True)
    table = "\n".join(rows) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
