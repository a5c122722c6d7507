"""Where the time of one fresh-process MCMC run goes, per backend, on empty compile caches (issue 14).

    python benchmarks/bench_mcmc_breakdown.py [--specs models/harmoni2_pfs_pdl1.toml ...]
        [--backends pymc nutpie numpyro] [--repeats 1] [--out benchmarks/results/mcmc_breakdown.md]

Each run is ``harmoni-bayes run SPEC --method mcmc --backend B --out DIR`` in a fresh interpreter with brand-new
PyTensor, numba and JAX cache folders (a new machine).  The phases come from cProfile's cumulative times of the
functions that do them, so they add up to less than the wall time (the rest is the interpreter and the CLI):

* import: importing ``harmoni_bayes.run`` (NumPy, pandas, SciPy, PyMC, ...) before any work;
* evidence + model: reading and selecting the evidence, building the PyMC model(s);
* sampling: ``inference.sample`` whole, of which "compile" is the backend's compiler (PyTensor's C compile for
  ``pymc``, numba for ``nutpie``, XLA for ``numpyro``) and the rest is tuning, drawing and conversion;
* summaries: the diagnostics gate and the summary tables; write: ``save_result`` (netCDF, JSON, CSV).

The brms figures for the same models (brms 2.18 with rstan on this 2-core machine, from issue 14) give the ratios:
R is not installed here, so brms itself is not re-run.
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRMS_SECONDS = {"harmoni2_pfs_pdl1": 124.0, "ivonescimab_pfs_meta": 71.0}  # issue 14 (low end of 71-115 s)

# (phase, substring of the profiled function's file, function name)
PHASES = (
    ("run_spec", "harmoni_bayes/run.py", "run_spec"),
    ("evidence", "harmoni_bayes/models/", "from_spec"),
    ("model", "harmoni_bayes/models/", "build_models"),
    ("sampling", "harmoni_bayes/inference.py", "sample"),
    ("write", "harmoni_bayes/results.py", "save_result"),
)
COMPILERS = {
    "pymc": [("pytensor/link/c/cmodule.py", "compile_str")],
    "nutpie": [("numba/core/compiler.py", "compile_extra")],
    "numpyro": [("jax/_src/compiler.py", "backend_compile_and_load")],
}


def _cum(stats: pstats.Stats, file_part: str, name: str) -> float:
    """Cumulative seconds of the top-level calls of ``name`` in a file matching ``file_part`` (0 if never called)."""
    total = 0.0
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and file_part in file:
            total = max(total, ct)  # recursive or nested entries repeat the outer time: take the largest
    return total


def _own_sum(stats: pstats.Stats, file_part: str, name: str) -> float:
    """Summed own time of ``name`` (compilers are called many times, never nested)."""
    return sum(
        tt
        for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
        if func == name and file_part in file
    )


def one(spec: Path, backend: str) -> dict[str, float]:
    """Profile one fresh-process run; return the phases in seconds and the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        env = {
            **os.environ,
            "PYTENSOR_FLAGS": f"base_compiledir={t / 'pytensor'}",
            "NUMBA_CACHE_DIR": str(t / "numba"),
            "JAX_COMPILATION_CACHE_DIR": str(t / "jax"),
            "PYTHONPATH": str(ROOT / "src"),
        }
        prof = t / "run.prof"
        code = (
            "import cProfile, time, sys\n"
            "t0 = time.perf_counter()\n"
            "pr = cProfile.Profile(); pr.enable()\n"
            "import harmoni_bayes.run\n"
            "t_import = time.perf_counter() - t0\n"
            "from harmoni_bayes.cli import main\n"
            f"sys.argv = ['harmoni-bayes', 'run', {str(spec)!r}, '--method', 'mcmc', '--backend', {backend!r},"
            f" '--out', {str(t / 'out')!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"pr.disable(); pr.dump_stats({str(prof)!r})\n"
            "print('IMPORT', t_import)\n"
        )
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
        wall = time.perf_counter() - start
        if res.returncode != 0 or "IMPORT" not in res.stdout:
            raise RuntimeError(f"{spec.stem} {backend}: {res.stderr[-2000:]}")
        stats = pstats.Stats(str(prof))
        out = {"wall": wall, "import": float(res.stdout.split("IMPORT")[-1].split()[0])}
        for phase, file_part, name in PHASES:
            out[phase] = _cum(stats, file_part, name)
        out["compile"] = sum(_own_sum(stats, f, n) for f, n in COMPILERS[backend])
        out["evidence + model"] = out["evidence"] + out["model"]
        # what run_spec does after sampling: the diagnostics gate, summaries, prior draws, the strip
        out["summaries"] = out["run_spec"] - out["evidence + model"] - out["sampling"]
        out["ok"] = float("ok)" in res.stdout)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_specs = [ROOT / "models" / f"{s}.toml" for s in ("harmoni2_pfs_pdl1", "ivonescimab_pfs_meta")]
    ap.add_argument("--specs", nargs="*", type=Path, default=default_specs)
    ap.add_argument("--backends", nargs="*", default=["pymc", "nutpie", "numpyro"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mcmc_breakdown.md")
    args = ap.parse_args(argv)

    load = os.getloadavg()[0]
    lines = [
        f"Fresh process, empty compile caches, 4 chains x (1000 tune + 1000 draws); load average {load:.1f} at start.",
        "",
        "| spec | backend | wall (s) | import | evidence + model | sampling | of which compile | summaries | write"
        " | brms (s) | wall / brms | gate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in args.specs:
        for backend in args.backends:
            runs = [one(spec, backend) for _ in range(args.repeats)]
            r = min(runs, key=lambda x: x["wall"])  # the least disturbed run
            brms = BRMS_SECONDS.get(spec.stem)
            ratio = f"{r['wall'] / brms:.2f}" if brms else "-"
            row = (
                f"| {spec.stem} | {backend} | {r['wall']:.1f} | {r['import']:.1f} | {r['evidence + model']:.1f} |"
                f" {r['sampling']:.1f} | {r['compile']:.1f} | {r['summaries']:.1f} | {r['write']:.1f} |"
                f" {brms or '-'} | {ratio} | {'ok' if r['ok'] else 'failed'} |"
            )
            print(row, flush=True)
            lines.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
