"""Leave-one-comparison-out check of the PFS -> OS surrogacy model on the reference trials.

For each selected reference comparison j (default selection of ``select_reference``), fit the
surrogacy model to the other comparisons and predict j's OS log-HR *estimate* from its PFS
estimate: the posterior predictive of ``y_T | y_S`` (a mixture over posterior draws of normals
that include j's own sampling error and the within-trial correlation rho_w).  Two naive baselines:

* ``OS HR = PFS HR``: ``y_T ~ N(y_S, se_T^2)``;
* ``mean OS of others``: DerSimonian-Laird random-effects mean of the other comparisons' OS
  estimates, ``y_T ~ N(mu_hat, se(mu_hat)^2 + tau_DL^2 + se_T^2)``.

Reported per method: coverage of the central 50% and 95% predictive intervals, the mean log
predictive density (log scale, higher is better), the mean width of the 95% interval (log HR)
and, in a second table, each comparison's prediction.  The held-out comparison is predicted
with its *reported* SEs; the training comparisons use the SEs that enter the likelihood
(shared-control families inflated).  MCMC: nutpie, the model compiled once for K-1 comparisons
and the data swapped with ``with_data``; 2 chains x (1000 tune + 2000 draws) per fit.

Usage::

    PYTHONPATH=src python benchmarks/surrogacy_loo.py [--out benchmarks/results/surrogacy_loo.md]
        [--draws 2000] [--tune 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from harmoni_bayes.models.surrogacy import SurrogacyModel  # noqa: E402
from harmoni_bayes.reference import select_reference  # noqa: E402

LEVELS = (0.5, 0.95)


def load_reference() -> pd.DataFrame:
    from harmoni_bayes.evidence import load_reference_trials

    return load_reference_trials()


# ---- predictive distributions -----------------------------------------------------------------


class NormalMixture:
    """Equal-weight mixture of normals (one per posterior draw, or a single normal)."""

    def __init__(self, means, sds):
        self.m = np.atleast_1d(np.asarray(means, float)).ravel()
        self.s = np.atleast_1d(np.asarray(sds, float)).ravel()

    def cdf(self, x: float) -> float:
        return float(np.mean(stats.norm.cdf((x - self.m) / self.s)))

    def logpdf(self, x: float) -> float:
        lp = stats.norm.logpdf(x, self.m, self.s)
        return float(np.logaddexp.reduce(lp) - math.log(lp.size))

    def ppf(self, q: float) -> float:
        lo = float(np.min(self.m - 10 * self.s))
        hi = float(np.max(self.m + 10 * self.s))
        return float(optimize.brentq(lambda x: self.cdf(x) - q, lo, hi, xtol=1e-10))


def dersimonian_laird(y: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    """Random-effects mean, its SE and tau (DerSimonian-Laird)."""
    w = 1 / se**2
    mu_fe = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - mu_fe) ** 2)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (q - (len(y) - 1)) / c)
    w_re = 1 / (se**2 + tau2)
    mu = np.sum(w_re * y) / np.sum(w_re)
    return float(mu), float(math.sqrt(1 / np.sum(w_re))), math.sqrt(tau2)


def score(pred: NormalMixture, y: float) -> dict[str, float]:
    pit = pred.cdf(y)
    out = {"pit": pit, "lpd": pred.logpdf(y)}
    for lev in LEVELS:
        out[f"cov{int(lev * 100)}"] = float(abs(pit - 0.5) < lev / 2)
    lo, hi = pred.ppf(0.025), pred.ppf(0.975)
    out.update({"lo95": lo, "hi95": hi, "median": pred.ppf(0.5), "width95": hi - lo})
    return out


# ---- the LOO loop -----------------------------------------------------------------------------


def run(draws: int, tune: int, seed: int) -> tuple[pd.DataFrame, dict]:
    import nutpie

    sel = select_reference(load_reference())
    used = sel.used.reset_index(drop=True)
    k = len(used)
    y_s, s_s = used["log_hr_pfs"].to_numpy(float), used["se_pfs"].to_numpy(float)
    y_t, s_t = used["log_hr_os"].to_numpy(float), used["se_os"].to_numpy(float)
    s_s_rep, s_t_rep = used["se_pfs_reported"].to_numpy(float), used["se_os_reported"].to_numpy(float)

    keep0 = np.arange(1, k)
    template = SurrogacyModel.from_arrays(y_s[keep0], s_s[keep0], y_t[keep0], s_t[keep0])
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(template.build_model())
    t_compile = time.perf_counter() - t0

    rows, divergences, max_rhat, min_ess = [], 0, 0.0, math.inf
    t1 = time.perf_counter()
    for j in range(k):
        keep = np.array([i for i in range(k) if i != j])
        data = {
            "ref_y_pfs": y_s[keep],
            "ref_se_pfs": s_s[keep],
            "ref_y_os": y_t[keep],
            "ref_se_os": s_t[keep],
        }
        idata = nutpie.sample(
            compiled.with_data(**data),
            draws=draws,
            tune=tune,
            chains=2,
            cores=2,
            seed=seed + j,
            progress_bar=False,
        )
        fam = SurrogacyModel.from_arrays(y_s[keep], s_s[keep], y_t[keep], s_t[keep])
        divergences += int(idata.sample_stats["diverging"].sum())
        diag = _diagnose(idata)
        max_rhat, min_ess = max(max_rhat, diag[0]), min(min_ess, diag[1])

        m, sd = fam.os_estimate_predictive(idata, y_s[j], s_s_rep[j], s_t_rep[j])
        mu_re, se_mu, tau_re = dersimonian_laird(y_t[keep], s_t[keep])
        preds = {
            "surrogacy model": NormalMixture(m, sd),
            "OS HR = PFS HR": NormalMixture(y_s[j], s_t_rep[j]),
            "mean OS of others": NormalMixture(mu_re, math.sqrt(se_mu**2 + tau_re**2 + s_t_rep[j] ** 2)),
        }
        for method, pred in preds.items():
            rows.append(
                {"comparison": used.at[j, "comparison"], "method": method, "y_pfs": y_s[j], "y_os": y_t[j]}
                | score(pred, y_t[j])
            )
    t_sample = time.perf_counter() - t1
    meta = {
        "k": k,
        "draws": draws,
        "tune": tune,
        "seed": seed,
        "compile_s": t_compile,
        "sample_s": t_sample,
        "divergences": divergences,
        "max_rhat": max_rhat,
        "min_ess_bulk": min_ess,
        "excluded": len(sel.excluded),
    }
    return pd.DataFrame(rows), meta


def _diagnose(idata) -> tuple[float, float]:
    from harmoni_bayes.config import DiagnosticThresholds
    from harmoni_bayes.posterior import diagnose

    d = diagnose(idata, ["eta_pfs", "tau_pfs", "intercept", "slope", "residual_sd", "rho_w"], DiagnosticThresholds())
    return (d.max_rhat or math.nan), (d.min_ess_bulk or math.nan)


# ---- report -----------------------------------------------------------------------------------


def markdown(res: pd.DataFrame, meta: dict) -> str:
    order = ["surrogacy model", "OS HR = PFS HR", "mean OS of others"]
    g = (
        res.groupby("method")
        .agg(cov50=("cov50", "mean"), cov95=("cov95", "mean"), lpd=("lpd", "mean"), width95=("width95", "mean"))
        .loc[order]
    )
    k = meta["k"]
    lines = [
        "# Surrogacy model: leave-one-comparison-out prediction of the OS log-HR estimate",
        "",
        f"{k} reference comparisons (default `select_reference`: IO and IO+antiVEGF, 1L, most mature OS "
        "analysis, shared controls variance-inflated). Each is predicted from its PFS estimate and the "
        f"other {k - 1}. MCMC: nutpie, 2 chains x ({meta['tune']} tune + {meta['draws']} draws) per fit, "
        f"seed {meta['seed']}; compile {meta['compile_s']:.0f} s once, {k} fits {meta['sample_s']:.0f} s; "
        f"{meta['divergences']} divergences in total, max R-hat {meta['max_rhat']:.3f}, "
        f"min bulk ESS {meta['min_ess_bulk']:.0f}.",
        "",
        "| method | coverage 50% | coverage 95% | mean log predictive density | mean 95% width (log HR) |",
        "|---|---|---|---|---|",
    ]
    for method, r in g.iterrows():
        n50, n95 = round(r.cov50 * k), round(r.cov95 * k)
        lines.append(
            f"| {method} | {r.cov50:.2f} ({n50}/{k}) | {r.cov95:.2f} ({n95}/{k}) | {r.lpd:.3f} | {r.width95:.3f} |"
        )
    lines += [
        "",
        "Nominal coverage is 0.50 and 0.95; with "
        f"{k} comparisons the binomial SD of a coverage is about {math.sqrt(0.25 / k):.2f} (50%) and "
        f"{math.sqrt(0.95 * 0.05 / k):.2f} (95%).",
        "",
        "## Per comparison (HR scale: observed, and predictive median with 95% interval)",
        "",
        "| comparison | PFS HR | OS HR observed | surrogacy model | PIT | OS HR = PFS HR | mean OS of others |",
        "|---|---|---|---|---|---|---|",
    ]
    wide = {m: res[res.method == m].set_index("comparison") for m in order}
    for comp in wide[order[0]].index:
        s = wide[order[0]].loc[comp]

        def cell(m, comp=comp):
            r = wide[m].loc[comp]
            return f"{math.exp(r['median']):.2f} ({math.exp(r['lo95']):.2f}-{math.exp(r['hi95']):.2f})"

        lines.append(
            f"| {comp} | {math.exp(s['y_pfs']):.2f} | {math.exp(s['y_os']):.2f} | {cell(order[0])} | "
            f"{s['pit']:.2f} | {cell(order[1])} | {cell(order[2])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "surrogacy_loo.md"))
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    res, meta = run(args.draws, args.tune, args.seed)
    md = markdown(res, meta)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md, encoding="utf-8")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
