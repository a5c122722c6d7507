"""``make report`` after install, on empty compile caches: the main job's wall and CPU time, and when each spec ran.

    python benchmarks/bench_make_report.py [--repeats 2] [--jobs N] [--out benchmarks/results/make_report.md]

Each repeat runs ``harmoni-bayes run-all models --out OUT --reports REPORTS`` (what ``make report`` runs once the
environment is installed) in a fresh interpreter with brand-new JAX, PyTensor and numba cache folders (a new
machine) and temporary output folders.  It reports the wall time, the CPU time of the job and its worker processes
(user + system, ``resource.getrusage(RUSAGE_CHILDREN)``) and their ratio (how busy the cores were), and per spec
the second it started (the job's ``[i/N] spec (T s)`` lines).  The goal (issue 14) is under 60 s on a new 2-core
machine.  Run it on an otherwise idle machine: on a shared one the same work has taken 105 to 118 s of CPU from
one run to the next (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTED = re.compile(r"^\[(\d+)/(\d+)\] (\S+) \((\d+) s\)$")


def run_once(jobs: int | None) -> dict:
    """One main job on empty caches: wall and CPU seconds, and each spec's start second."""
    with tempfile.TemporaryDirectory(prefix="harmoni-make-report-") as tmp:
        t = Path(tmp)
        env = dict(os.environ)
        env.update(
            HARMONI_JAX_CACHE=str(t / "jax"),
            PYTENSOR_FLAGS=f"compiledir={t / 'pytensor'}",
            NUMBA_CACHE_DIR=str(t / "numba"),
            PYTHONPATH=str(ROOT / "src"),
        )
        cmd = [sys.executable, "-m", "harmoni_bayes.cli", "run-all", str(ROOT / "models")]
        cmd += ["--out", str(t / "out"), "--reports", str(t / "reports")]
        if jobs is not None:
            cmd += ["--jobs", str(jobs)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"run-all failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    starts = {m[3]: int(m[4]) for line in done.stderr.splitlines() if (m := STARTED.match(line.strip()))}
    return {"wall": wall, "cpu": cpu, "starts": starts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None, help="run-all --jobs (default: run-all's, the cores)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "make_report.md")
    args = parser.parse_args()

    runs = []
    for i in range(args.repeats):
        r = run_once(args.jobs)
        runs.append(r)
        print(f"run {i + 1}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU", flush=True)

    lines = [
        "# `make report` after install, empty compile caches",
        "",
        f"`python benchmarks/bench_make_report.py --repeats {args.repeats}`"
        + (f" `--jobs {args.jobs}`" if args.jobs else "")
        + f"; {os.cpu_count()} cores.",
        "",
        "| run | wall, s | CPU, s | CPU / wall |",
        "|---|---|---|---|",
    ]
    lines += [f"| {i} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['cpu'] / r['wall']:.2f} |" for i, r in enumerate(runs, 1)]
    specs = sorted(runs[0]["starts"], key=lambda s: runs[0]["starts"][s])
    lines += ["", "Second at which each spec started:", ""]
    lines += ["| spec | " + " | ".join(f"run {i}" for i in range(1, len(runs) + 1)) + " |"]
    lines += ["|---|" + "---|" * len(runs)]
    lines += [f"| {s} | " + " | ".join(str(r["starts"].get(s, "")) for r in runs) + " |" for s in specs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
