"""Exact leave-one-comparison-out refits of the class-aware surrogacy models, per class and model.

For every reference comparison j of ``models/nsclc_surrogacy_classes.toml`` and every relationship variant
(one line, one line without intercept, independent classes, exchangeable classes), refit the variant
without j and predict j's OS log-HR *estimate* from its PFS estimate: the posterior predictive of
``y_T | y_S`` under j's class (a normal mixture over draws, with j's own sampling error and rho_w).  The
baselines of ``surrogacy_loo.py``: ``OS HR = PFS HR`` and ``mean OS of others`` (DerSimonian-Laird).

The refits drop j through the model's ``include`` data (its likelihood weight 0), so each variant is
compiled once per worker (nutpie) and only re-sampled.  The work goes through the package's Dask sweep
path (:func:`harmoni_bayes.sweep.run_sweep`): one task per (variant, chunk of comparisons).

Reported: per model, and per class and model, coverage of the 50% and 95% predictive intervals and the
mean log predictive density; per comparison, each prediction.  This is the check of PSIS-LOO: the exact
refits need no importance sampling, so comparisons with a high Pareto k are scored correctly here.

Usage::

    PYTHONPATH=src python benchmarks/surrogacy_classes_loo.py [--out benchmarks/results/surrogacy_classes_loo.md]
        [--draws 1000] [--tune 1000] [--chunks 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "src", ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from surrogacy_loo import NormalMixture, dersimonian_laird, score  # noqa: E402

SPEC = ROOT / "models" / "nsclc_surrogacy_classes.toml"
VARIANTS = ("pooled", "pooled_no_intercept", "independent", "exchangeable")
BASELINES = ("OS HR = PFS HR", "mean OS of others")


def _family():
    from harmoni_bayes.models import get_family
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.specs import load_spec, with_overrides

    spec = with_overrides(load_spec(SPEC))
    spec = spec.model_copy(update={"relationships": list(VARIANTS)})
    family, _ = get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))
    return family


def refit_chunk(variant: str, held_out: list[int], draws: int, tune: int, seed: int) -> list[dict]:
    """Refit ``variant`` without each comparison in ``held_out`` and score its prediction (a sweep task)."""
    import nutpie

    from harmoni_bayes.models.surrogacy_classes import class_relationships, os_given_pfs

    fam = _family()
    d = fam.data
    compiled = nutpie.compile_pymc_model(fam.build_models()[variant])
    rows = []
    for j in held_out:
        include = np.ones(len(d.labels))
        include[j] = 0.0
        t0 = time.perf_counter()
        idata = nutpie.sample(
            compiled.with_data(**{f"{variant}::include": include}),
            draws=draws,
            tune=tune,
            chains=2,
            cores=1,
            seed=seed + j,
            progress_bar=False,
            target_accept=0.95,
        )
        h = fam._block_draws(idata, variant)
        rel = class_relationships(h, variant, len(d.classes))
        c = d.class_index[j]
        m, sd = os_given_pfs(
            h["eta_pfs"][..., c],
            h["tau_pfs"][..., c],
            rel["intercept"][..., c],
            rel["slope"][..., c],
            rel["residual_sd"][..., c],
            h["rho_w"],
            d.y_pfs[j],
            d.se_pfs[j],
            d.se_os[j],
        )
        rows.append(
            {
                "comparison": d.labels[j],
                "class": d.classes[c],
                "method": variant,
                "y_pfs": d.y_pfs[j],
                "y_os": d.y_os[j],
                "divergences": int(idata.sample_stats["diverging"].sum()),
                "seconds": time.perf_counter() - t0,
            }
            | score(NormalMixture(np.ravel(m), np.ravel(sd)), d.y_os[j])
        )
    return rows


def baselines() -> list[dict]:
    """The two naive predictions for every comparison."""
    d = _family().data
    rows = []
    for j in range(len(d.labels)):
        keep = np.arange(len(d.labels)) != j
        mu, se_mu, tau = dersimonian_laird(d.y_os[keep], d.se_os[keep])
        preds = {
            "OS HR = PFS HR": NormalMixture(d.y_pfs[j], d.se_os[j]),
            "mean OS of others": NormalMixture(mu, math.sqrt(se_mu**2 + tau**2 + d.se_os[j] ** 2)),
        }
        for method, pred in preds.items():
            rows.append(
                {
                    "comparison": d.labels[j],
                    "class": d.classes[d.class_index[j]],
                    "method": method,
                    "y_pfs": d.y_pfs[j],
                    "y_os": d.y_os[j],
                }
                | score(pred, d.y_os[j])
            )
    return rows


def run(draws: int, tune: int, chunks: int, seed: int, scheduler: str | None) -> tuple[pd.DataFrame, dict]:
    from harmoni_bayes.sweep import Task, run_sweep

    k = len(_family().data.labels)
    parts = np.array_split(np.arange(k), chunks)
    tasks = [
        Task(
            key=f"{v}:{i}",
            fn=refit_chunk,
            kwargs={"variant": v, "held_out": [int(j) for j in part], "draws": draws, "tune": tune, "seed": seed},
        )
        for v in VARIANTS
        for i, part in enumerate(parts)
    ]
    t0 = time.perf_counter()
    outcomes = run_sweep(tasks, scheduler=scheduler)
    wall = time.perf_counter() - t0
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit("refits failed:\n" + "\n".join(str(o.error) for o in failed))
    rows = [r for o in outcomes for r in o.value] + baselines()
    meta = {"k": k, "draws": draws, "tune": tune, "seed": seed, "wall_s": wall, "tasks": len(tasks)}
    return pd.DataFrame(rows), meta


def markdown(res: pd.DataFrame, meta: dict) -> str:
    order = [*VARIANTS, *BASELINES]
    k = meta["k"]
    fits = res[res.method.isin(VARIANTS)]
    lines = [
        "# Class-aware surrogacy: exact leave-one-comparison-out prediction of the OS log-HR estimate",
        "",
        f"{k} reference comparisons of `models/nsclc_surrogacy_classes.toml`, each predicted from its PFS "
        f"estimate and the other {k - 1}, by each model. MCMC: nutpie, 2 chains x ({meta['tune']} tune + "
        f"{meta['draws']} draws) per refit, seed {meta['seed']}; {len(fits)} refits in {meta['tasks']} Dask tasks, "
        f"{meta['wall_s']:.0f} s wall time in all (compiles included); {int(fits.divergences.sum())} divergences.",
        "",
        "## By model",
        "",
        "| model | coverage 50% | coverage 95% | mean log predictive density | mean 95% width (log HR) |",
        "|---|---|---|---|---|",
    ]
    g = res.groupby("method").agg(
        cov50=("cov50", "mean"), cov95=("cov95", "mean"), lpd=("lpd", "mean"), width95=("width95", "mean")
    )
    for method in order:
        r = g.loc[method]
        lines.append(f"| {method} | {r.cov50:.2f} | {r.cov95:.2f} | {r.lpd:.3f} | {r.width95:.3f} |")
    lines += [
        "",
        "## By class and model (mean log predictive density; coverage of the 95% interval)",
        "",
        "| class | n | " + " | ".join(order) + " |",
        "|---|---|" + "---|" * len(order),
    ]
    for cls, sub in res.groupby("class", sort=False):
        n = sub.comparison.nunique()
        cells = []
        for method in order:
            s = sub[sub.method == method]
            cells.append(f"{s.lpd.mean():.2f} ({int(s.cov95.sum())}/{n})")
        note = " (fewer than 3: no slope of its own)" if n < 3 else ""
        lines.append(f"| {cls}{note} | {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Per comparison (HR scale: observed, and predictive median with 95% interval)",
        "",
        "| comparison | class | PFS HR | OS HR | " + " | ".join(order) + " |",
        "|---|---|---|---|" + "---|" * len(order),
    ]
    wide = {m: res[res.method == m].set_index("comparison") for m in order}
    for comp in wide[order[0]].index:
        s = wide[order[0]].loc[comp]

        def cell(m, comp=comp):
            r = wide[m].loc[comp]
            return f"{math.exp(r['median']):.2f} ({math.exp(r['lo95']):.2f}-{math.exp(r['hi95']):.2f})"

        lines.append(
            f"| {comp} | {s['class']} | {math.exp(s['y_pfs']):.2f} | {math.exp(s['y_os']):.2f} | "
            + " | ".join(cell(m) for m in order)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "surrogacy_classes_loo.md"))
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chunks", type=int, default=2, help="tasks per model (each compiles the model once)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scheduler", default=None, help="address of a Dask scheduler (default: a local cluster)")
    args = ap.parse_args(argv)
    res, meta = run(args.draws, args.tune, args.chunks, args.seed, args.scheduler)
    md = markdown(res, meta)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md, encoding="utf-8")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
