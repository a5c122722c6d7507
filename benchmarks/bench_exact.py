"""Time the exact path end to end in fresh processes, and break down its imports (issue 14: under 1.5 s).

    .venv/bin/python benchmarks/bench_exact.py [--spec models/harmoni2_pfs_pdl1.toml] [--repeats 5]
                                               [--out benchmarks/results/exact.md]

* **end to end**: ``harmoni-bayes run SPEC --method exact --out DIR`` (``python -m harmoni_bayes.cli``), each
  repeat a fresh interpreter, wall time from before the process starts to after it exits; the median and the
  range of ``--repeats`` runs.  Evidence selection, the grid engine, the summaries, 4,000 iid draws for figures
  and the result folder (``posterior.nc`` in ArviZ's layout, summary, manifest) are all included; no report.
  Also the CPU time (user + system) of each process: on a shared machine the wall time measures the other jobs
  too, the CPU time much less.
* **imports**: one more run under ``python -X importtime``: the heaviest packages (the summed own import time
  of their modules, so nested imports count where they belong) and whether PyMC, PyTensor, ArviZ or
  matplotlib were imported at all.

The machine is shared, so its load average is recorded with the numbers.  Nothing here is asserted: speed goals
are measured, never tested.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.5
HEAVY = ("pymc", "pytensor", "arviz", "matplotlib", "nutpie", "numba")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cmd(spec: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "harmoni_bayes.cli", "run", spec, "--method", "exact", "--out", str(out)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def end_to_end(spec: str, repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of ``repeats`` fresh-process runs."""
    times, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            c, t = _children_cpu(), time.perf_counter()
            subprocess.run(_cmd(spec, Path(tmp) / f"r{i}"), cwd=ROOT, env=_env(), check=True, capture_output=True)
            times.append(time.perf_counter() - t)
            cpu.append(_children_cpu() - c)
    return times, cpu


def import_breakdown(spec: str, top: int = 15) -> tuple[list[tuple[str, float]], float, list[str]]:
    """(heaviest packages with the seconds their own modules took to import, total, heavy packages imported)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", *_cmd(spec, Path(tmp) / "r")[1:]],
            cwd=ROOT,
            env=_env(),
            check=True,
            capture_output=True,
            text=True,
        )
    roots: dict[str, float] = {}
    seen = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.split(":", 1)[1].split("|")
        name = name.strip()
        seen.add(name)
        roots[name.split(".")[0]] = roots.get(name.split(".")[0], 0.0) + int(own) / 1e6  # each module's own time
    total = sum(roots.values())
    heavy = sorted(h for h in HEAVY if h in seen)
    return sorted(roots.items(), key=lambda r: -r[1])[:top], total, heavy


def main() -> None:
    """Measure and write the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="models/harmoni2_pfs_pdl1.toml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "exact.md")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    times, cpu = end_to_end(args.spec, args.repeats)
    roots, total, heavy = import_breakdown(args.spec)
    load_after = os.getloadavg()[0]
    med = statistics.median(times)
    lines = [
        "# Exact path end to end (issue 14)",
        "",
        f"`python benchmarks/bench_exact.py --spec {args.spec} --repeats {args.repeats}` on "
        f"{dt.date.today().isoformat()}, {platform.node()} ({os.cpu_count()} cores), Python "
        f"{platform.python_version()}; load average {load_before:.1f} before, {load_after:.1f} after.",
        "",
        f"* `harmoni-bayes run {args.spec} --method exact` in a fresh process: median **{med:.2f} s** "
        f"(range {min(times):.2f}-{max(times):.2f} s over {args.repeats} runs; goal {GOAL} s); CPU time median "
        f"{statistics.median(cpu):.2f} s (range {min(cpu):.2f}-{max(cpu):.2f} s).",
        f"* Imports (`python -X importtime`, one more run): {total:.2f} s in all; PyMC, PyTensor, ArviZ, "
        f"matplotlib, nutpie, numba imported: {', '.join(heavy) if heavy else 'none'}.",
        "",
        "| package | import time of its modules (s) |",
        "|---|---|",
        *[f"| {name} | {t:.3f} |" for name, t in roots],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
