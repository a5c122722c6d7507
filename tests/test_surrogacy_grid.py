"""The exact (grid) engine of the one-line surrogacy model (harmoni_bayes.surrogacy_grid, issue 14).

Checked against independent computations: the closed-form integral over (eta_pfs, intercept) against brute-force
quadrature of the model's own likelihood factors; the grid against one twice as fine; the exact probabilities
against Monte Carlo over the engine's iid draws; calibration (probability integral transform) over data simulated
from the prior.  The slow test in test_surrogacy.py compares the engine with NUTS on the real reference trials.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from harmoni_bayes.models.surrogacy import (
    SurrogacyModel,
    SurrogacyPriors,
    TargetTrial,
    os_estimate_given_pfs,
)
from harmoni_bayes.priors import FixedValue, HalfNormalPrior, NormalPrior, UniformPrior
from harmoni_bayes.surrogacy_grid import _log_evidence, _Priors, _rows

HYPER = ("eta_pfs", "tau_pfs", "intercept", "slope", "residual_sd", "rho_w")


def reference(k: int = 8, seed: int = 3):
    rng = np.random.default_rng(seed)
    y_s = rng.normal(-0.4, 0.25, k)
    y_t = -0.05 + 0.5 * y_s + rng.normal(0, 0.12, k)
    return y_s, rng.uniform(0.08, 0.2, k), y_t, rng.uniform(0.1, 0.22, k)


def brute_force(phi: dict, y_s, s_s, y_t, s_t, eta: NormalPrior, intercept, n: int = 1201):
    """log p(y | phi) and E[theta | phi, y] by quadrature over (eta, a) of prior x the model's likelihood factors
    (PFS margin x OS given PFS, as the PyMC model writes them; a NaN OS estimate: the PFS margin only)."""
    e = np.linspace(eta.mu - 2.5, eta.mu + 2.5, n)
    fixed = isinstance(intercept, FixedValue)
    a = np.array([intercept.value]) if fixed else np.linspace(intercept.mu - 2.5, intercept.mu + 2.5, n)
    ee, aa = np.meshgrid(e, a, indexing="ij")
    logp = stats.norm.logpdf(ee, eta.mu, eta.sigma)
    if not fixed:
        logp = logp + stats.norm.logpdf(aa, intercept.mu, intercept.sigma)
    tau, b, psi, rho = phi["tau_pfs"], phi["slope"], phi["residual_sd"], phi["rho_w"]
    for ys, ss, yt, st in zip(y_s, s_s, y_t, s_t, strict=True):
        logp = logp + stats.norm.logpdf(ys, ee, math.sqrt(tau**2 + ss**2))
        if np.isfinite(yt):
            m, sd = os_estimate_given_pfs(ee, tau, aa, b, psi, rho, ys, ss, st)
            logp = logp + stats.norm.logpdf(yt, m, sd)
    cell = (e[1] - e[0]) * (1.0 if fixed else a[1] - a[0])
    log_z = special.logsumexp(logp) + math.log(cell)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    return log_z, np.array([np.sum(w * ee), np.sum(w * aa)])


@pytest.mark.parametrize("target", ["none", "pfs_only", "pfs_os"])
@pytest.mark.parametrize("fixed_intercept", [False, True])
def test_closed_form_integral_over_eta_and_intercept_equals_quadrature(target, fixed_intercept):
    y_s, s_s, y_t, s_t = reference()
    if target != "none":  # one more row: the target trial, with or without its OS estimate
        y_s, s_s = np.append(y_s, -0.67), np.append(s_s, 0.15)
        y_t = np.append(y_t, -0.3 if target == "pfs_os" else np.nan)
        s_t = np.append(s_t, 0.2 if target == "pfs_os" else np.nan)
    eta = NormalPrior(mu=0.0, sigma=1.0)
    intercept = FixedValue(value=-0.05) if fixed_intercept else NormalPrior(mu=0.0, sigma=1.0)
    pr = _Priors(eta, intercept, NormalPrior(mu=0, sigma=1), HalfNormalPrior(sigma=0.5), HalfNormalPrior(sigma=0.5),
                 UniformPrior(lower=0.2, upper=0.7))  # fmt: skip
    for phi in ({"tau_pfs": 0.3, "slope": 0.5, "residual_sd": 0.1, "rho_w": 0.4},
                {"tau_pfs": 0.05, "slope": -0.3, "residual_sd": 0.4, "rho_w": 0.65}):  # fmt: skip
        axes = [np.array([phi[k]]) for k in ("tau_pfs", "slope", "residual_sd", "rho_w")]
        log_z, mean, _ = _log_evidence(*axes, _rows(y_s, s_s, y_t, s_t), pr, with_theta=True)
        ref_z, ref_mean = brute_force(phi, y_s, s_s, y_t, s_t, eta, intercept)
        n_obs = len(y_s) + int(np.isfinite(y_t).sum())  # the engine drops the constant -n/2 log(2 pi)
        assert float(log_z.ravel()[0]) - 0.5 * n_obs * math.log(2 * math.pi) == pytest.approx(ref_z, abs=1e-4)
        assert mean.reshape(2) == pytest.approx(ref_mean, abs=1e-4)


def test_the_grid_agrees_with_one_twice_as_fine():
    fam = SurrogacyModel.from_arrays(*reference(10), target=TargetTrial("t", -0.67, 0.15, -0.3, 0.2, 300))
    coarse, fine = fam.exact(), fam.exact(fine=(48, 72, 48, 16))

    def quantiles(g, name):
        from harmoni_bayes.exact import GridDistribution

        return GridDistribution(*g.marginal(name, refine=16)).ppf(np.array([0.025, 0.5, 0.975]))

    for name in ("slope", "residual_sd"):
        assert quantiles(coarse, name) == pytest.approx(quantiles(fine, name), abs=2e-3), name
    for g in (coarse, fine):
        assert g.weights.sum() == pytest.approx(1.0) and np.all(g.weights > 0)
    e_theta = [np.einsum("n,nk->k", g.weights, g.theta_mean) for g in (coarse, fine)]
    assert e_theta[0] == pytest.approx(e_theta[1], abs=2e-4)


def test_exact_probabilities_equal_monte_carlo_over_the_engines_own_draws():
    tg = TargetTrial("t", -0.67, 0.15, -0.3, 0.2, 300)
    fam = SurrogacyModel.from_arrays(*reference(10), target=tg)
    fit = fam.exact_fit(40_000, np.random.default_rng(1))
    p, d = dict(fit.probabilities), fit.draws
    se = lambda q: math.sqrt(q * (1 - q) / 40_000)  # noqa: E731
    for name, draws in (
        ("P(os_hr<1)", d["os_hr"] < 1),
        ("P(os_hr<0.8)", d["os_hr"] < 0.8),
        ("P(slope>0)", d["slope"] > 0),
    ):
        assert draws.mean() == pytest.approx(p[name], abs=4 * se(p[name]) + 1e-3), name
    significant = np.log(d["os_hr_later_estimate"]) < tg.success_bound
    assert significant.mean() == pytest.approx(p["P(later_os_significant)"], abs=4 * se(significant.mean()) + 1e-3)
    q = {s.name: s.stats for s in fit.quantities}
    for name in ("slope", "residual_sd", "intercept", "os_hr"):
        assert np.median(d[name]) == pytest.approx(q[name]["median"], abs=0.01), name
    assert set(d) >= set(HYPER) | {"os_hr", "os_hr_later_estimate", "r2_trial"}


def test_a_fixed_rho_and_intercept_leave_one_node_and_no_spread():
    priors = SurrogacyPriors(rho_w=FixedValue(value=0.5), intercept=FixedValue(value=0.0))
    fam = SurrogacyModel.from_arrays(*reference(), priors=priors)
    g = fam.exact()
    assert np.all(g.nodes["rho_w"] == 0.5) and np.all(g.theta_mean[:, 1] == 0.0) and np.all(g.theta_cov[:, 1] == 0)
    stats_ = {s.name: s.stats for s in fam.exact_fit(100, np.random.default_rng(0)).quantities}
    assert stats_["intercept"]["q2.5"] == stats_["intercept"]["q97.5"] == 0.0


@pytest.mark.slow
def test_probability_integral_transform_is_uniform_over_prior_simulations():
    """Calibration of the exact engine (the PIT form of SBC, Talts et al. 2018): with data simulated from the prior,
    the exact posterior CDF at the true value is Uniform(0, 1).  600 replications (as the NUTS SBC this replaced), a
    coarser grid (the test checks the formulas, not the grid's resolution); Kolmogorov-Smirnov p > 0.001 and the mean
    and variance of the PIT within 3.3 standard errors of 1/2 and 1/12 (the variance test is what catches a
    conditional that is too narrow or too wide: halving theta's conditional covariance in the engine gave z = 3.4 at
    400 replications).  The target has no OS estimate, so its OS forecast leans on the fitted relationship."""
    from harmoni_bayes.exact import GridDistribution, NormalMixture

    reps, k = 600, 12
    rng = np.random.default_rng(7)
    priors = SurrogacyPriors()
    se_s, se_t = rng.uniform(0.08, 0.2, k + 1), rng.uniform(0.1, 0.25, k + 1)
    pit: dict[str, list[float]] = {"slope": [], "residual_sd": [], "intercept": [], "target_mu_os": []}
    for _ in range(reps):
        t = {n: float(getattr(priors, n).rvs(1, rng)[0]) for n in HYPER}
        mu_s = rng.normal(t["eta_pfs"], t["tau_pfs"], k + 1)
        mu_t = t["intercept"] + t["slope"] * mu_s + rng.normal(0, t["residual_sd"], k + 1)
        e1 = rng.standard_normal(k + 1)
        e2 = t["rho_w"] * e1 + math.sqrt(1 - t["rho_w"] ** 2) * rng.standard_normal(k + 1)
        y_s, y_t = mu_s + se_s * e1, mu_t + se_t * e2
        tg = TargetTrial("t", y_s[-1], se_s[-1], None, None, None)  # PFS only: its OS forecast leans on the model
        fam = SurrogacyModel.from_arrays(y_s[:-1], se_s[:-1], y_t[:-1], se_t[:-1], priors=priors, target=tg)
        g = fam.exact(fine=(16, 24, 16, 6))
        pit["slope"].append(float(GridDistribution(*g.marginal("slope", refine=16)).cdf(t["slope"])))
        pit["residual_sd"].append(float(GridDistribution(*g.marginal("residual_sd", refine=16)).cdf(t["residual_sd"])))
        a = NormalMixture(g.weights, g.theta_mean[:, 1], np.sqrt(g.theta_cov[:, 1, 1]))
        pit["intercept"].append(float(a.cdf(t["intercept"])))
        m, v = fam._target_given_nodes(g)
        pit["target_mu_os"].append(float(NormalMixture(g.weights, m, np.sqrt(v)).cdf(mu_t[-1])))
    for name, u in pit.items():
        u = np.asarray(u)
        z_mean = (u.mean() - 0.5) / math.sqrt(1 / 12 / reps)
        z_var = (np.mean((u - 0.5) ** 2) - 1 / 12) / math.sqrt((1 / 80 - 1 / 144) / reps)
        assert stats.kstest(u, "uniform").pvalue > 0.001 and abs(z_mean) < 3.3 and abs(z_var) < 3.3, (
            name,
            z_mean,
            z_var,
        )


def test_the_relationships_strip_rows_are_exact_refits_of_the_spec_under_each_prior():
    from pathlib import Path

    from harmoni_bayes.run import run_spec
    from harmoni_bayes.specs import load_spec, merge_changes, parse_spec, spec_to_dict

    spec = load_spec(Path(__file__).resolve().parents[1] / "models" / "nsclc_surrogacy.toml")
    rows = {r["label"]: r for r in run_spec(spec).summary.extra["strip"]["rows"]}
    alt = parse_spec(
        merge_changes(spec_to_dict(spec), {"priors": {"residual_sd": HalfNormalPrior(sigma=1.0).model_dump()}})
    )
    refit = run_spec(alt, strip=False).summary
    row = rows["residual SD half-normal(1)"]
    assert row["median"] == refit.quantity("slope")["median"] and row["upper"] == refit.quantity("slope")["q97.5"]
    assert (
        row["probability"] == refit.probability("P(slope>0)")["value"] and row["note"] == "exact refit under this prior"
    )
    assert rows["as specified"]["median"] != row["median"]  # the prior matters, a little
