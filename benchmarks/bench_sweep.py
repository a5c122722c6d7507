"""Sweep benchmarks: serial vs local Dask workers, time per fit as the sweep grows, memory per worker.

    python benchmarks/bench_sweep.py [--sizes 10 50 200] [--workers 2] [--out benchmarks/results/sweep.md]

Each task is one exact fit of the ivonescimab PFS meta-analysis spec (the spec a timeline or a prior grid
refits), returning its summary, exactly as the timeline and sensitivity commands run it.  "serial" calls the
same task function in this process one after another; "dask" runs it through ``run_sweep`` on a fresh
LocalCluster (start-up included).  Peak memory per worker is the largest ``ru_maxrss`` a worker reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "models" / "ivonescimab_pfs_meta.toml"


def task(spec: dict, quantity: str, seed: int) -> dict:
    """One fit (module-level, so workers can import it) plus the worker's peak memory."""
    import resource as r

    from harmoni_bayes.timeline import fit_summary

    spec = {**spec, "sampler": {**spec["sampler"], "seed": seed}}
    out = fit_summary(spec, quantity)
    return {"median": out["bands"]["q50"], "maxrss_mb": r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 200])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sweep.md")
    ap.add_argument("--method", choices=["exact", "mcmc"], default="exact")
    ap.add_argument("--draws", type=int, default=None, help="MCMC draws and tuning steps per chain")
    ap.add_argument("--spec", type=Path, default=SPEC)
    args = ap.parse_args()

    from harmoni_bayes.specs import load_spec, spec_to_dict, with_overrides
    from harmoni_bayes.sweep import Task, run_sweep

    spec = spec_to_dict(with_overrides(load_spec(args.spec), method=args.method, draws=args.draws))
    quantity = "hr_pooled" if "meta" in args.spec.stem else "hr_overall"
    rows = []
    task(spec, quantity, 0)  # warm this process (imports) so serial times are per fit
    for n in args.sizes:
        t0 = time.perf_counter()
        for i in range(min(n, 20)):  # serial is linear in n: time 20 fits and scale
            task(spec, quantity, i)
        serial = (time.perf_counter() - t0) / min(n, 20) * n
        t0 = time.perf_counter()
        out = run_sweep(
            [Task(f"fit{i}", task, {"spec": spec, "quantity": quantity, "seed": i}) for i in range(n)],
            workers=args.workers,
            progress=lambda line: None,
        )
        dask_s = time.perf_counter() - t0
        assert all(o.ok for o in out), [o.error for o in out if not o.ok]
        peak = max(o.value["maxrss_mb"] for o in out)
        rows.append((n, serial, dask_s, dask_s / n, peak))
        print(f"n={n}: serial {serial:.1f} s, dask {dask_s:.1f} s ({dask_s / n:.3f} s/fit), worker peak {peak:.0f} MB")
    here = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        f"## {args.spec.stem}, {args.method}" + (f" ({args.draws} draws)" if args.draws else ""),
        "",
        f"Measured {dt.date.today()} on {platform.machine()} with {args.workers} local workers "
        f"(`python benchmarks/bench_sweep.py --workers {args.workers} --method {args.method} --spec {args.spec.name}"
        f"{f' --draws {args.draws}' if args.draws else ''} --sizes {' '.join(map(str, args.sizes))}`). Each task is "
        f"one {args.method} fit of `{args.spec.stem}` returning its summary. Serial = the same function in one "
        "warm process (20 fits timed, scaled to n); dask = `run_sweep` on a fresh LocalCluster, start-up included.",
        "",
        "| fits | serial (s) | dask (s) | dask per fit (s) | peak memory per worker (MB) |",
        "|--:|--:|--:|--:|--:|",
        *[f"| {n} | {s:.1f} | {d:.1f} | {p:.3f} | {m:.0f} |" for n, s, d, p, m in rows],
        "",
        f"Peak memory of the driving process: {here:.0f} MB.",
        "",
    ]
    previous = args.out.read_text() if args.out.exists() else "# Sweep benchmarks\n\n"
    args.out.write_text(previous + "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
