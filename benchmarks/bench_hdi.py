"""HDIs of the exact engines' normal mixtures: Newton's method on both ends against the root finder over p.

    PYTHONPATH=src python benchmarks/bench_hdi.py [--repeats 3]

Fits every shipped spec whose method is ``exact`` (``run_spec``, no sensitivity strip) and keeps each normal
mixture whose HDI its summary reads (log and HR scale).  Then, per mixture, times the HDI as the summaries compute it
(:meth:`NormalMixture.summary`: an 11-point grid of p, then Newton on both conditions,
:meth:`NormalMixture._hdi_ends`) and as it was computed before (a 21-point grid, then the root of
``f(lower) = f(upper)`` over p, each evaluation two quantiles), and reports the total of each (best of
``--repeats``), how many HDIs Newton solved without handing back to the root finder, and the largest difference of
the two intervals' ends relative to the interval's width.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def collect() -> list[tuple[object, str]]:
    """(mixture, scale) of every HDI the shipped exact specs' summaries read."""
    from harmoni_bayes import exact
    from harmoni_bayes.run import run_spec
    from harmoni_bayes.specs import load_spec

    seen: list[tuple[object, str]] = []
    real = exact.NormalMixture.summary

    def spy(self, scale):
        seen.append((self, scale))
        return real(self, scale)

    exact.NormalMixture.summary = spy  # type: ignore[method-assign]
    try:
        for path in sorted((ROOT / "models").glob("*.toml")):
            spec = load_spec(path)
            if spec.method == "exact":
                run_spec(spec, strip=False)
    finally:
        exact.NormalMixture.summary = real  # type: ignore[method-assign]
    return seen


def root_finder(mix, scale: str) -> tuple[float, float]:
    """The HDI as computed before Newton: 21 values of p, then the root finder over p."""
    from harmoni_bayes.exact import INTERVAL_PROB, _shortest_interval

    shift = 1.0 if scale == "hr" else 0.0
    return _shortest_interval(
        mix.ppf,
        INTERVAL_PROB,
        transform=np.exp if scale == "hr" else None,
        log_density=lambda x: mix._log_pdf(x) - shift * x,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from harmoni_bayes import exact

    cases = [(m, s) for m, s in collect() if m._parts.all_positive]  # point masses: no density, no Newton
    solved = []
    real = exact.NormalMixture._hdi_ends

    def counted(self, *a):
        out = real(self, *a)
        solved.append(out is not None)
        return out

    best = {"newton": math.inf, "root finder": math.inf}
    worst = 0.0
    for rep in range(args.repeats):
        exact.NormalMixture._hdi_ends = counted  # type: ignore[method-assign]
        start = time.perf_counter()
        new = [(x["hdi_low"], x["hdi_high"]) for x in (m.summary(s) for m, s in cases)]
        best["newton"] = min(best["newton"], time.perf_counter() - start)
        exact.NormalMixture._hdi_ends = real  # type: ignore[method-assign]
        start = time.perf_counter()
        old = [root_finder(m, s) for m, s in cases]
        best["root finder"] = min(best["root finder"], time.perf_counter() - start)
        if rep == 0:
            worst = max(abs(a - c) / (d - c) + abs(b - d) / (d - c) for (a, b), (c, d) in zip(new, old, strict=True))
    sizes = [m.weights.size for m, _ in cases]
    print(f"{len(cases)} HDIs of mixtures of {min(sizes)}-{max(sizes)} components (median {int(np.median(sizes))})")
    for name, seconds in best.items():
        print(f"  {name:12s} {seconds:6.2f} s  ({1e3 * seconds / len(cases):.1f} ms each)")
    n_solved = sum(solved[: len(cases)])
    print(f"  Newton solved {n_solved} of {len(cases)}; largest difference of the ends: {worst:.1e} of the width")


if __name__ == "__main__":
    main()
