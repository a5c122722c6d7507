"""Tests of the exact (tau-grid) NNHM engine in ``harmoni_bayes.exact``."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from harmoni_bayes.exact import (
    INTERVAL_PROB,
    GridDistribution,
    NNHMExact,
    NormalMixture,
    nnhm_exact,
)
from harmoni_bayes.priors import HalfCauchyPrior, HalfNormalPrior, NormalPrior, TurnerPrior

KEYS = {"mean", "sd", "median", "q2.5", "q97.5", "hdi_low", "hdi_high"}
QS = np.array([0.025, 0.3, 0.5, 0.975])

# ------------------------------------------------------------ 1. methods brief worked example (section c)

H2_Y = [math.log(0.54), math.log(0.48)]
H2_SE = [(math.log(0.78) - math.log(0.37)) / 3.92, (math.log(0.79) - math.log(0.29)) / 3.92]


@pytest.mark.parametrize(
    ("sigma", "hr1", "sd1", "hr2", "sd2", "tau_median"),
    [
        (0.10, "0.520", "0.158", "0.513", "0.169", "0.06"),
        (0.25, "0.525", "0.166", "0.506", "0.192", "0.13"),
        (0.50, "0.528", "0.172", "0.500", "0.208", "0.22"),
    ],
)
def test_harmoni2_pdl1_worked_example(sigma, hr1, sd1, hr2, sd2, tau_median):
    """Methods brief table, section c.  "Shrunken HR" there is exp(posterior mean of log HR):
    the posterior median HR differs in the third decimal for HN(0.25) and HN(0.50)."""
    fit = nnhm_exact(H2_Y, H2_SE, mu_prior=None, tau_prior=HalfNormalPrior(sigma=sigma))
    t1, t2 = fit.theta
    assert f"{math.exp(t1.mean()):.3f}" == hr1
    assert f"{math.exp(t2.mean()):.3f}" == hr2
    assert f"{t1.sd():.3f}" == sd1
    assert f"{t2.sd():.3f}" == sd2
    assert f"{fit.tau.ppf(0.5):.2f}" == tau_median
    assert f"{fit.tau.summary()['median']:.2f}" == tau_median


def test_harmoni2_raw_inputs_match_table():
    # the "raw" row of the table: 0.54 (0.190), 0.48 (0.256)
    assert f"{H2_SE[0]:.3f}" == "0.190"
    assert f"{H2_SE[1]:.3f}" == "0.256"


# ------------------------------------------------------------------ 2. brute force: 2-D numerical integration


class _Brute:
    """Brute-force posterior of (mu, tau) by 2-D numerical integration of the un-marginalised model.

    Independent of the engine: no analytic integration over mu, no given-tau conditionals.

    * tau: tanh-sinh (double-exponential) rule in prior-quantile space on an interval
      ``[q_lo, q_hi]`` of ``q = F(tau)`` (the prior is in the measure dq); splitting at ``F(x)``
      gives ``P(tau <= x)`` without interpolation.
    * mu: midpoint rule in ``v`` with ``mu = centre + a sinh(v)`` (fine near the data, logarithmic
      far out), or ``mu = x -+ exp(v)`` on either side of a point ``x`` for ``P(mu <= x)``.
    * log p(y, mu, tau) = log p(mu) + sum_i log N(y_i; mu, s_i^2 + tau^2), summed study by study.
    * functionals use the conditionals given (mu, tau):
      ``theta_i | mu, tau, y ~ N(B_i mu + (1 - B_i) y_i, (1 - B_i) s_i^2)``, ``theta_new ~ N(mu, tau^2)``.
    """

    def __init__(self, y, se, mu_prior, tau_prior, n_tau=801, n_mu=1201, t_max=3.6):
        self.y, self.se = np.asarray(y, float), np.asarray(se, float)
        self.t_max = t_max  # tau nodes reach the prior quantiles 1 -+ expit(-pi sinh(t_max))
        self.mu_prior, self.dist = mu_prior, tau_prior.scipy()
        self.n_tau, self.n_mu = n_tau, n_mu
        prec = 1.0 / self.se**2
        self.centre = float(np.sum(prec * self.y) / prec.sum())
        self.a = 0.1 / math.sqrt(prec.sum() + (0 if mu_prior is None else mu_prior.sigma**-2))
        self.tau, log_wt = self._tau_nodes(0.0, 1.0)
        v_max = math.asinh(1e4 / self.a)
        v = (np.arange(n_mu) + 0.5) * (2 * v_max / n_mu) - v_max
        self.mu = self.centre + self.a * np.sinh(v)
        logw = self._log_joint(self.tau, self.mu) + log_wt[:, None] + np.log(self.a * np.cosh(v))[None, :]
        w = np.exp(logw - logw.max())
        self.w = w / w.sum()

    def _tau_nodes(self, q_lo, q_hi):
        t = np.linspace(-self.t_max, self.t_max, self.n_tau)
        s2 = np.pi * np.sinh(t)
        up, down = special.expit(s2), special.expit(-s2)  # (q - q_lo)/(q_hi - q_lo), (q_hi - q)/(q_hi - q_lo)
        q = q_lo + (q_hi - q_lo) * up
        with np.errstate(divide="ignore"):
            tau = np.where(q < 0.5, self.dist.ppf(q), self.dist.isf((1.0 - q_hi) + (q_hi - q_lo) * down))
            log_dq = math.log(q_hi - q_lo) + np.log(np.pi * np.cosh(t)) + np.log(up) + np.log(down)
        return tau, np.where(np.isfinite(log_dq), log_dq, -np.inf)

    def _log_joint(self, tau, mu):
        # sum_i (y_i - mu)^2 / v_i = A (mu - m)^2 + R per tau: the same sum, just computed in O(1) per mu
        v = self.se[None, :] ** 2 + tau[:, None] ** 2
        a = (1.0 / v).sum(axis=1)
        m = (self.y[None, :] / v).sum(axis=1) / a
        r = ((self.y[None, :] - m[:, None]) ** 2 / v).sum(axis=1)
        out = -0.5 * np.log(v).sum(axis=1)[:, None] - 0.5 * (a[:, None] * (mu[None, :] - m[:, None]) ** 2 + r[:, None])
        if self.mu_prior is not None:
            out += stats.norm.logpdf(mu, self.mu_prior.mu, self.mu_prior.sigma)[None, :]
        return out

    @staticmethod
    def _logsumexp(a):
        m = a.max()
        return m + math.log(np.exp(a - m).sum())

    def tau_cdf(self, x):
        v = (np.arange(self.n_mu) + 0.5) * (2 * math.asinh(1e4 / self.a) / self.n_mu) - math.asinh(1e4 / self.a)
        mu, log_jac = self.centre + self.a * np.sinh(v), np.log(self.a * np.cosh(v))
        qx = float(self.dist.cdf(x))
        parts = []
        for lo, hi in ((0.0, qx), (qx, 1.0)):
            tau, log_wt = self._tau_nodes(lo, hi)
            parts.append(self._logsumexp(self._log_joint(tau, mu) + log_wt[:, None] + log_jac[None, :]))
        return float(special.expit(parts[0] - parts[1]))

    def mu_cdf(self, x):
        tau, log_wt = self._tau_nodes(0.0, 1.0)
        lo, hi = math.log(1e-12 * self.a), math.log(1e4)
        v = lo + (np.arange(self.n_mu) + 0.5) * (hi - lo) / self.n_mu
        parts = [
            self._logsumexp(self._log_joint(tau, x + sign * np.exp(v)) + log_wt[:, None] + v[None, :])
            for sign in (-1.0, 1.0)
        ]
        return float(special.expit(parts[0] - parts[1]))

    def tau_moments(self):
        w = self.w.sum(axis=1)
        m1 = float(np.sum(w * self.tau))
        return m1, math.sqrt(float(np.sum(w * (self.tau - m1) ** 2)))

    def mu_moments(self):
        w = self.w.sum(axis=0)
        m1 = float(np.sum(w * self.mu))
        return m1, math.sqrt(float(np.sum(w * (self.mu - m1) ** 2)))

    def contrast_conditionals(self, c):
        """Mean and sd of sum_i c_i theta_i given (mu, tau), on the grid."""
        mean = np.zeros(self.w.shape)
        var = np.zeros((self.tau.size, 1))
        for ci, yi, si in zip(c, self.y, self.se, strict=True):
            shrink = (si**2 / (si**2 + self.tau**2))[:, None]
            one_minus = (self.tau**2 / (si**2 + self.tau**2))[:, None]
            mean += ci * (shrink * self.mu[None, :] + one_minus * yi)
            var = var + ci**2 * one_minus * si**2
        return mean, np.broadcast_to(np.sqrt(var), self.w.shape)

    def theta_new_conditionals(self):
        return (
            np.broadcast_to(self.mu[None, :], self.w.shape),
            np.broadcast_to(self.tau[:, None], self.w.shape),
        )

    def mixture_stats(self, mean, sd, xs):
        """Mean, sd and CDF at ``xs`` of a quantity that is N(mean, sd^2) given (mu, tau)."""
        w = self.w
        m1 = float(np.sum(w * mean))
        m2 = float(np.sum(w * (sd**2 + (mean - m1) ** 2)))
        with np.errstate(divide="ignore", invalid="ignore"):  # sd = 0 where the prior's ppf underflows to 0
            cdf = [float(np.sum(w * np.where(sd > 0, special.ndtr((x - mean) / sd), x >= mean))) for x in xs]
        return m1, math.sqrt(m2), np.array(cdf)


def _dataset(seed, k):
    rng = np.random.default_rng(seed)
    se = rng.uniform(0.08, 0.45, k)
    y = rng.normal(-0.35, 0.2, k) + rng.normal(0, se)
    return y, se


BRUTE_CASES = [
    # id, seed, k, mu prior, tau prior, compare moments of tau / theta_new (finite?)
    ("k1-hn-normal", 11, 1, NormalPrior(mu=0.0, sigma=1.0), HalfNormalPrior(sigma=0.5), True),
    ("k2-hn-normal", 1, 2, NormalPrior(mu=0.0, sigma=1.0), HalfNormalPrior(sigma=0.5), True),
    ("k2-hc-flat", 2, 2, None, HalfCauchyPrior(beta=0.5), False),
    ("k5-hc-flat", 3, 5, None, HalfCauchyPrior(beta=0.5), True),
    ("k5-turner-flat", 4, 5, None, TurnerPrior(), True),
    ("k30-turner-normal", 5, 30, NormalPrior(mu=0.0, sigma=2.0), TurnerPrior(), True),
    ("k30-hc-flat", 6, 30, None, HalfCauchyPrior(beta=1.0), True),
]

MOMENT_TOL = 1e-8  # absolute (relative for tau), log scale; observed agreement 1e-11 or better
# |F_brute(engine quantile) - q|.  Observed: up to ~2e-6 for tau (the engine's piecewise-linear grid CDF),
# ~1e-14 for mu, up to ~3e-6 for theta/theta_new with k <= 2 (brute-force mu grid vs the N(mu, tiny^2)
# conditionals at small tau; shrinks as the brute-force grid is refined).
CDF_TOL = 1e-5


@pytest.fixture(scope="module", params=BRUTE_CASES, ids=[c[0] for c in BRUTE_CASES])
def brute_case(request):
    _, seed, k, mu_prior, tau_prior, moments = request.param
    y, se = _dataset(seed, k)
    fit = nnhm_exact(y, se, mu_prior=mu_prior, tau_prior=tau_prior)
    return fit, _Brute(y, se, mu_prior, tau_prior), moments, k


def test_brute_force_tau(brute_case):
    fit, b, moments, _ = brute_case
    got = [b.tau_cdf(x) for x in fit.tau.ppf(QS)]
    np.testing.assert_allclose(got, QS, atol=CDF_TOL)
    if moments:
        m1, sd = b.tau_moments()
        assert fit.tau.mean() == pytest.approx(m1, rel=MOMENT_TOL)
        assert fit.tau.sd() == pytest.approx(sd, rel=MOMENT_TOL)


def test_brute_force_mu(brute_case):
    fit, b, moments, _ = brute_case
    got = [b.mu_cdf(x) for x in fit.mu.ppf(QS)]
    np.testing.assert_allclose(got, QS, atol=CDF_TOL)
    if moments:
        m1, sd = b.mu_moments()
        assert fit.mu.mean() == pytest.approx(m1, abs=MOMENT_TOL)
        assert fit.mu.sd() == pytest.approx(sd, abs=MOMENT_TOL)


def test_brute_force_theta_and_contrasts(brute_case):
    fit, b, _, k = brute_case
    idx = sorted({0, k - 1})
    contrasts = [np.eye(k)[i] for i in idx]
    mixtures = [fit.theta[i] for i in idx]
    if k >= 2:
        c = np.zeros(k)
        c[0], c[-1] = 1.0, -1.0  # log hr_ratio[first/last]
        contrasts.append(c)
        mixtures.append(fit.contrast(c))
        share = 1.0 / b.se**2
        contrasts.append(share / share.sum())  # population-averaged effect
        mixtures.append(fit.contrast(share / share.sum()))
    for c, mix in zip(contrasts, mixtures, strict=True):
        m1, s1, cdf = b.mixture_stats(*b.contrast_conditionals(c), mix.ppf(QS))
        np.testing.assert_allclose(cdf, QS, atol=CDF_TOL)
        assert mix.mean() == pytest.approx(m1, abs=MOMENT_TOL)
        assert mix.sd() == pytest.approx(s1, abs=MOMENT_TOL)


def test_brute_force_theta_new(brute_case):
    fit, b, moments, _ = brute_case
    m1, s1, cdf = b.mixture_stats(*b.theta_new_conditionals(), fit.theta_new.ppf(QS))
    np.testing.assert_allclose(cdf, QS, atol=CDF_TOL)
    if moments:
        assert fit.theta_new.mean() == pytest.approx(m1, abs=MOMENT_TOL)
        assert fit.theta_new.sd() == pytest.approx(s1, abs=MOMENT_TOL)


def test_contrast_matches_theta_difference_and_unit_vectors():
    y, se = _dataset(7, 4)
    fit = nnhm_exact(y, se, mu_prior=None, tau_prior=HalfNormalPrior(sigma=0.3))
    e2 = fit.contrast([0, 1, 0, 0])
    assert e2.mean() == pytest.approx(fit.theta[1].mean(), abs=1e-14)
    assert e2.sd() == pytest.approx(fit.theta[1].sd(), abs=1e-14)
    d = fit.contrast([1, -1, 0, 0])
    assert d.mean() == pytest.approx(fit.theta[0].mean() - fit.theta[1].mean(), abs=1e-14)
    # shrinkage induces positive correlation, so the difference is less variable than if independent
    assert d.sd() < math.hypot(fit.theta[0].sd(), fit.theta[1].sd())


# ------------------------------------------------------------------ 3. limits


@pytest.mark.parametrize("mu_prior", [None, NormalPrior(mu=0.1, sigma=0.5)])
def test_tau_near_zero_gives_fixed_effect(mu_prior):
    y, se = _dataset(8, 6)
    fit = nnhm_exact(y, se, mu_prior=mu_prior, tau_prior=HalfNormalPrior(sigma=1e-4))
    prec, num = 1.0 / se**2, y / se**2
    if mu_prior is not None:  # the mu prior is one more (pseudo-)study
        prec = np.append(prec, mu_prior.sigma**-2)
        num = np.append(num, mu_prior.mu * mu_prior.sigma**-2)
    fe_mean, fe_sd = num.sum() / prec.sum(), 1.0 / math.sqrt(prec.sum())
    for mix in (fit.mu, fit.theta_new, *fit.theta):
        assert mix.mean() == pytest.approx(fe_mean, abs=1e-6)
        assert mix.sd() == pytest.approx(fe_sd, rel=1e-5)
    assert fit.mu.ppf(0.975) == pytest.approx(fe_mean + stats.norm.ppf(0.975) * fe_sd, abs=1e-6)
    assert fit.tau.ppf(0.5) < 2e-4


@pytest.mark.parametrize("prior", [HalfNormalPrior(sigma=0.5), HalfCauchyPrior(beta=0.5), TurnerPrior()])
def test_one_study_flat_mu_tau_is_prior_and_theta_is_likelihood(prior):
    y, s = -0.4, 0.2
    fit = nnhm_exact([y], [s], mu_prior=None, tau_prior=prior)
    dist = prior.scipy()
    # tau quantiles come from a piecewise-linear CDF between grid-cell edges: ~1e-5 relative at worst
    np.testing.assert_allclose(fit.tau.ppf(QS), dist.ppf(QS), rtol=5e-5)
    np.testing.assert_allclose(fit.tau.cdf(dist.ppf(QS)), QS, atol=1e-5)
    # theta_1 | y ~ N(y, s^2) exactly: mu_hat = y, Var = (1 - B) s^2 + B^2 (s^2 + tau^2) = s^2
    assert fit.theta[0].mean() == pytest.approx(y, abs=1e-12)
    assert fit.theta[0].sd() == pytest.approx(s, rel=1e-10)
    # mu | y: mixture over the prior of N(y, s^2 + tau^2)
    for x in (-1.0, -0.5, 0.0):
        want = integrate.quad(lambda t, x=x: dist.pdf(t) * special.ndtr((x - y) / math.hypot(s, t)), 0, np.inf)[0]
        assert fit.mu.cdf(x) == pytest.approx(want, abs=1e-6)
    if isinstance(prior, HalfNormalPrior):
        assert fit.tau.mean() == pytest.approx(dist.mean(), rel=1e-8)
        assert fit.tau.sd() == pytest.approx(dist.std(), rel=1e-8)
        lo, hi = fit.tau.summary()["hdi_low"], fit.tau.summary()["hdi_high"]
        assert lo == 0.0  # density highest at tau = 0
        assert hi == pytest.approx(dist.ppf(INTERVAL_PROB), rel=1e-5)


def test_two_studies_work_and_tau_is_prior_dominated():
    fit = nnhm_exact([-0.3, -0.2], [0.2, 0.25], mu_prior=None, tau_prior=HalfNormalPrior(sigma=0.25))
    prior_median = HalfNormalPrior(sigma=0.25).scipy().median()
    assert 0.5 * prior_median < fit.tau.ppf(0.5) < prior_median
    assert isinstance(fit, NNHMExact) and fit.k == 2 and len(fit.theta) == 2


def test_n_grid_convergence():
    y, se = _dataset(9, 8)
    fine = nnhm_exact(y, se, mu_prior=None, tau_prior=HalfCauchyPrior(beta=0.5), n_grid=12000)
    coarse = nnhm_exact(y, se, mu_prior=None, tau_prior=HalfCauchyPrior(beta=0.5), n_grid=1000)
    assert coarse.tau.mean() == pytest.approx(fine.tau.mean(), rel=1e-8)
    assert coarse.theta_new.sd() == pytest.approx(fine.theta_new.sd(), rel=1e-8)
    assert coarse.theta[3].ppf(0.975) == pytest.approx(fine.theta[3].ppf(0.975), abs=1e-8)
    assert coarse.tau.ppf(0.5) == pytest.approx(fine.tau.ppf(0.5), rel=1e-5)


@pytest.mark.parametrize("prior", [HalfCauchyPrior(beta=0.01), HalfNormalPrior(sigma=0.03)])
def test_prior_data_conflict_far_in_prior_tail(prior):
    # the data say tau ~ 1 while the prior says tau ~ 0.01-0.03: the grid must follow the posterior into
    # the prior's tail (for HN(0.03) beyond the prior's 1 - 1e-12 quantile, 0.21)
    y = np.array([-2.0, 0.0, 2.0, -1.0, 1.0]) / (1 if isinstance(prior, HalfCauchyPrior) else 2)
    se = np.full(5, 0.1)
    fit = nnhm_exact(y, se, mu_prior=None, tau_prior=prior)
    b = _Brute(y, se, None, prior, n_tau=1201, t_max=4.2)
    np.testing.assert_allclose([b.tau_cdf(x) for x in fit.tau.ppf(QS)], QS, atol=CDF_TOL)
    assert fit.tau.mean() == pytest.approx(b.tau_moments()[0], rel=1e-8)
    assert fit.theta_new.sd() == pytest.approx(b.mixture_stats(*b.theta_new_conditionals(), [0.0])[1], rel=1e-8)
    assert fit.tau.ppf(0.5) > 0.15


# ------------------------------------------------------------------ summaries and HDIs


def test_summary_single_normal_and_lognormal_hdi():
    m, s = -0.5, 0.3
    mix = NormalMixture(np.array([1.0]), np.array([m]), np.array([s]))
    z = stats.norm.ppf(0.975)
    log = mix.summary("log")
    assert set(log) == KEYS
    assert log["hdi_low"] == pytest.approx(m - z * s, abs=1e-9)
    assert log["hdi_high"] == pytest.approx(m + z * s, abs=1e-9)
    assert log["q2.5"] == pytest.approx(m - z * s, abs=1e-10)
    hr = mix.summary("hr")
    ln = stats.lognorm(s=s, scale=math.exp(m))
    assert hr["mean"] == pytest.approx(ln.mean(), rel=1e-12)
    assert hr["sd"] == pytest.approx(ln.std(), rel=1e-10)
    assert hr["median"] == pytest.approx(math.exp(m), rel=1e-12)
    # HR-scale HDI from the density of exp(X): equal density at both ends, 95% mass, shorter than exp(log HDI)
    lo, hi = hr["hdi_low"], hr["hdi_high"]
    assert ln.pdf(lo) == pytest.approx(ln.pdf(hi), rel=1e-6)
    assert ln.cdf(hi) - ln.cdf(lo) == pytest.approx(INTERVAL_PROB, abs=1e-10)
    assert hi - lo < math.exp(log["hdi_high"]) - math.exp(log["hdi_low"]) - 1e-3
    assert lo < math.exp(log["hdi_low"])


def test_hr_scale_moments_of_a_mixture():
    w, m, s = np.array([0.3, 0.7]), np.array([-0.9, 0.2]), np.array([0.4, 0.1])
    mix = NormalMixture(w, m, s)
    e1 = float(np.sum(w * np.exp(m + s**2 / 2)))
    e2 = float(np.sum(w * np.exp(2 * m + 2 * s**2)))  # raw second moment of a log-normal mixture
    hr = mix.summary("hr")
    assert hr["mean"] == pytest.approx(e1, rel=1e-12)
    assert hr["sd"] == pytest.approx(math.sqrt(e2 - e1**2), rel=1e-10)
    # and against numerical integration of the log-scale density
    q1 = integrate.quad(lambda x: math.exp(x) * mix.pdf(x), -10, 10, epsabs=0, epsrel=1e-12, limit=200)[0]
    q2 = integrate.quad(lambda x: math.exp(2 * x) * mix.pdf(x), -10, 10, epsabs=0, epsrel=1e-12, limit=200)[0]
    assert hr["mean"] == pytest.approx(q1, rel=1e-9)
    assert hr["sd"] == pytest.approx(math.sqrt(q2 - q1**2), rel=1e-8)
    assert mix.sd() == pytest.approx(math.sqrt(float(np.sum(w * (s**2 + m**2))) - mix.mean() ** 2), rel=1e-12)


def test_summary_of_fit_is_consistent():
    fit = nnhm_exact(H2_Y, H2_SE, mu_prior=NormalPrior(), tau_prior=HalfNormalPrior(sigma=0.25))
    for mix in (fit.mu, fit.theta_new, *fit.theta, fit.contrast([1, -1])):
        log, hr = mix.summary("log"), mix.summary("hr")
        assert set(log) == KEYS and set(hr) == KEYS | {"log_mean", "log_sd"}
        assert (hr["log_mean"], hr["log_sd"]) == (log["mean"], log["sd"])
        for key in ("median", "q2.5", "q97.5"):
            assert hr[key] == pytest.approx(math.exp(log[key]), rel=1e-12)
        for s in (log,):
            assert mix.cdf(s["hdi_high"]) - mix.cdf(s["hdi_low"]) == pytest.approx(INTERVAL_PROB, abs=1e-9)
        assert mix.cdf(math.log(hr["hdi_high"])) - mix.cdf(math.log(hr["hdi_low"])) == pytest.approx(
            INTERVAL_PROB, abs=1e-9
        )
        # shortest on the HR scale: no wider than exp() of the log-scale HDI
        assert hr["hdi_high"] - hr["hdi_low"] <= math.exp(log["hdi_high"]) - math.exp(log["hdi_low"]) + 1e-12
        # HR-scale density equal at both HDI ends: f_Y(y) = f_X(log y) / y
        f_lo = mix.pdf(math.log(hr["hdi_low"])) / hr["hdi_low"]
        f_hi = mix.pdf(math.log(hr["hdi_high"])) / hr["hdi_high"]
        assert f_lo == pytest.approx(f_hi, rel=1e-5)
        assert hr["mean"] == pytest.approx(float(np.dot(mix.weights, np.exp(mix.means + mix.sds**2 / 2))), rel=1e-12)
    tau = fit.tau.summary()
    assert set(tau) == KEYS
    assert tau["hdi_low"] == 0.0 and tau["q2.5"] > 0
    assert fit.tau.cdf(tau["hdi_high"]) == pytest.approx(INTERVAL_PROB, abs=1e-12)


def test_summary_parts_are_computed_when_read_whatever_the_order(monkeypatch):
    """The sensitivity strip reads only the median and interval of its refits: no HDI is computed for them, and
    a summary's numbers are the same whichever part is read first."""
    import harmoni_bayes.exact as exact

    fit = nnhm_exact(H2_Y, H2_SE, mu_prior=NormalPrior(), tau_prior=HalfNormalPrior(sigma=0.25))
    full = {"hr": dict(fit.mu.summary("hr")), "log": dict(fit.mu.summary("log")), "tau": dict(fit.tau.summary())}
    calls = []
    real = exact._shortest_interval
    monkeypatch.setattr(exact, "_shortest_interval", lambda *a, **k: calls.append(1) or real(*a, **k))
    lazy = {"hr": fit.mu.summary("hr"), "log": fit.mu.summary("log"), "tau": fit.tau.summary()}
    for name, summary in lazy.items():
        assert [summary[k] for k in ("median", "q2.5", "q97.5")] == [full[name][k] for k in ("median", "q2.5", "q97.5")]
        assert not calls, name
        assert summary["hdi_high"] == full[name]["hdi_high"] and len(calls) == 1
        assert dict(summary) == full[name] and list(summary) == list(full[name]) and len(calls) == 1
        calls.clear()


def _root_finder_hdi(mix: NormalMixture, scale: str) -> tuple[float, float]:
    """The HDI as found before Newton's method: 21 values of p, then the root of f(lower) = f(upper) over p."""
    import harmoni_bayes.exact as exact

    shift = 1.0 if scale == "hr" else 0.0
    return exact._shortest_interval(
        mix.ppf,
        INTERVAL_PROB,
        transform=np.exp if scale == "hr" else None,
        log_density=lambda x: mix._log_pdf(x) - shift * x,
    )


@pytest.mark.parametrize("case", BRUTE_CASES, ids=[c[0] for c in BRUTE_CASES])
def test_newtons_hdi_is_the_root_finders(case, monkeypatch):
    """The HDI of the grid engines' mixtures comes from Newton's method on both ends at once; it is the interval
    the root finder over p finds (to 1e-9 of its width), and Newton did not hand back to it."""
    import harmoni_bayes.exact as exact

    _, seed, k, mu_prior, tau_prior, _ = case
    fit = nnhm_exact(*_dataset(seed, k), mu_prior=mu_prior, tau_prior=tau_prior)
    outcomes = []
    real = exact.NormalMixture._hdi_ends
    monkeypatch.setattr(exact.NormalMixture, "_hdi_ends", lambda *a: outcomes.append(real(*a)) or outcomes[-1])
    for mix in (fit.mu, fit.theta_new, fit.theta[0], *([fit.contrast([1, -1] + [0] * (k - 2))] if k > 1 else [])):
        for scale in ("log", "hr"):
            s = mix.summary(scale)
            lo, hi = _root_finder_hdi(mix, scale)
            assert (s["hdi_low"], s["hdi_high"]) == pytest.approx((lo, hi), abs=1e-9 * (hi - lo)), scale
            # Newton solved it, unless the density is highest at the boundary (HR 0), where no end is interior
            assert outcomes and (outcomes[-1] is not None or (scale == "hr" and lo == 0.0))
            outcomes.clear()


def test_the_density_derivative_newton_uses():
    mix = NormalMixture(np.array([0.3, 0.7]), np.array([-0.9, 0.2]), np.array([0.4, 0.1]))
    x = np.linspace(-2.0, 1.0, 13)
    cdf, pdf, dpdf = mix._eval(x, "all")
    h = 1e-6
    assert dpdf == pytest.approx((mix.pdf(x + h) - mix.pdf(x - h)) / (2 * h), rel=1e-6, abs=1e-8)
    assert cdf == pytest.approx(mix.cdf(x), abs=1e-15) and pdf == pytest.approx(mix.pdf(x), abs=1e-15)


def test_when_newton_cannot_the_root_finder_gives_the_hdi(monkeypatch):
    """Newton hands back (``None``) when it does not converge or leaves the grid's bracket; the root finder over
    p then gives the interval, and the two agree where both work."""
    import harmoni_bayes.exact as exact

    mix = nnhm_exact(H2_Y, H2_SE, mu_prior=None, tau_prior=HalfCauchyPrior(beta=0.5)).theta_new
    with_newton = {scale: dict(mix.summary(scale)) for scale in ("log", "hr")}
    monkeypatch.setattr(exact.NormalMixture, "_hdi_ends", lambda *a: None)
    for scale in ("log", "hr"):
        fallback = mix.summary(scale)
        width = fallback["hdi_high"] - fallback["hdi_low"]
        for key in ("hdi_low", "hdi_high"):
            assert fallback[key] == pytest.approx(with_newton[scale][key], abs=1e-9 * width)
    # Newton's solution is refused when its F(lower) lies outside the bracket of p it is given (here about 0.025)
    monkeypatch.undo()
    lo, hi = mix.ppf([0.04, 0.99])
    assert mix._hdi_ends(lo, hi, 0.0, INTERVAL_PROB, (0.04, 0.05)) is None
    ends = mix._hdi_ends(lo, hi, 0.0, INTERVAL_PROB, (0.02, 0.03))
    assert ends == pytest.approx((with_newton["log"]["hdi_low"], with_newton["log"]["hdi_high"]), abs=1e-12)
    # on the HR scale the density of exp(X) of this heavy-tailed mixture is highest at 0: no interior solution
    assert with_newton["hr"]["hdi_low"] == 0.0
    assert mix._hdi_ends(lo, hi, 1.0, INTERVAL_PROB, (0.0, 0.005)) is None


def test_prob_below_zero_is_probability_of_benefit():
    fit = nnhm_exact(H2_Y, H2_SE, mu_prior=None, tau_prior=HalfNormalPrior(sigma=0.25))
    p = fit.theta[0].prob_below(0.0)
    assert 0.99 < p < 1.0
    assert p == pytest.approx(float(np.dot(fit.theta[0].weights, special.ndtr(-fit.theta[0].means / fit.theta[0].sds))))


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("y", "se", "match"),
    [
        ([0.1, float("nan")], [0.1, 0.2], "y must be finite"),
        ([0.1, float("inf")], [0.1, 0.2], "y must be finite"),
        ([0.1, 0.2], [0.1, 0.0], "se must be positive"),
        ([0.1, 0.2], [0.1, -0.2], "se must be positive"),
        ([0.1, 0.2], [0.1, float("inf")], "se must be positive"),
        ([0.1, 0.2], [0.1], "same length"),
        ([], [], "at least one study"),
        ([[0.1, 0.2]], [[0.1, 0.2]], "one-dimensional"),
        (["a"], [0.1], "must be numbers"),
    ],
)
def test_input_validation(y, se, match):
    with pytest.raises(ValueError, match=match):
        nnhm_exact(y, se, mu_prior=None, tau_prior=HalfNormalPrior())


def test_prior_and_grid_validation():
    with pytest.raises(ValueError, match="mu_prior"):
        nnhm_exact([0.1], [0.1], mu_prior=HalfNormalPrior(), tau_prior=HalfNormalPrior())
    with pytest.raises(ValueError, match="tau_prior"):
        nnhm_exact([0.1], [0.1], mu_prior=None, tau_prior=NormalPrior())
    with pytest.raises(ValueError, match="n_grid"):
        nnhm_exact([0.1], [0.1], mu_prior=None, tau_prior=HalfNormalPrior(), n_grid=10)
    fit = nnhm_exact([0.1, 0.2], [0.1, 0.2], mu_prior=None, tau_prior=HalfNormalPrior())
    with pytest.raises(ValueError, match="one entry per study"):
        fit.contrast([1, -1, 0])
    with pytest.raises(ValueError, match="non-zero"):
        fit.contrast([0, 0])
    with pytest.raises(ValueError, match="scale"):
        fit.mu.summary("odds")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit.mu.ppf(1.5)
    with pytest.raises(ValueError, match="weights"):
        NormalMixture(np.array([-1.0]), np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="increasing"):
        GridDistribution(np.array([1.0, 0.5]), np.array([0.5, 0.5]))


# ------------------------------------------------------------------ 4. property tests

probs = st.floats(min_value=1e-6, max_value=1 - 1e-6)


@st.composite
def mixtures(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    w = draw(st.lists(st.floats(min_value=1e-3, max_value=1.0), min_size=n, max_size=n))
    m = draw(st.lists(st.floats(min_value=-3.0, max_value=3.0), min_size=n, max_size=n))
    s = draw(st.lists(st.floats(min_value=0.01, max_value=2.0), min_size=n, max_size=n))
    return NormalMixture(np.array(w), np.array(m), np.array(s))


@settings(max_examples=60, deadline=None)
@given(mixtures(), st.lists(probs, min_size=1, max_size=8))
def test_mixture_cdf_inverts_ppf(mix, qs):
    q = np.array(qs)
    x = mix.ppf(q)
    np.testing.assert_allclose(mix.cdf(x), q, atol=1e-12, rtol=1e-9)
    order = np.argsort(q)
    # monotone up to the root finder's tolerance (1e-14 relative): q one ulp apart may swap at 1e-15
    assert np.all(np.diff(x[order]) >= -1e-12 * (1 + np.abs(x[order][1:])))
    assert mix.ppf(0.0) == -np.inf and mix.ppf(1.0) == np.inf


@settings(max_examples=60, deadline=None)
@given(mixtures(), st.lists(st.floats(min_value=-10, max_value=10), min_size=2, max_size=10))
def test_prob_below_monotone(mix, xs):
    xs = sorted(xs)
    p = [mix.prob_below(x) for x in xs]
    assert all(0.0 <= v <= 1.0 for v in p)
    assert all(b >= a for a, b in itertools.pairwise(p))


@settings(max_examples=30, deadline=None)
@given(mixtures())
def test_hr_quantiles_are_exp_of_log_quantiles_and_keys(mix):
    log, hr = mix.summary("log"), mix.summary("hr")
    assert set(log) == KEYS and set(hr) == KEYS | {"log_mean", "log_sd"}
    for key in ("median", "q2.5", "q97.5"):
        assert hr[key] == pytest.approx(math.exp(log[key]), rel=1e-12)
    assert log["hdi_low"] < log["median"] < log["hdi_high"] or mix.sds.max() == 0
    assert log["hdi_high"] - log["hdi_low"] <= log["q97.5"] - log["q2.5"] + 1e-9
    assert hr["hdi_high"] - hr["hdi_low"] <= hr["q97.5"] - hr["q2.5"] + 1e-9
    assert mix.cdf(log["hdi_high"]) - mix.cdf(log["hdi_low"]) == pytest.approx(INTERVAL_PROB, abs=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda k: st.tuples(
            st.lists(st.floats(min_value=-2, max_value=1), min_size=k, max_size=k),
            st.lists(st.floats(min_value=0.02, max_value=1.5), min_size=k, max_size=k),
        )
    ),
    st.sampled_from([HalfNormalPrior(sigma=0.25), HalfCauchyPrior(beta=0.5), TurnerPrior()]),
    st.sampled_from([None, NormalPrior()]),
    probs,
)
def test_fit_distributions_invert(data, tau_prior, mu_prior, q):
    y, se = data
    fit = nnhm_exact(y, se, mu_prior=mu_prior, tau_prior=tau_prior, n_grid=1000)
    assert fit.tau.cdf(fit.tau.ppf(q)) == pytest.approx(q, abs=1e-12)
    for mix in (fit.mu, fit.theta_new, fit.theta[-1]):
        assert mix.cdf(mix.ppf(q)) == pytest.approx(q, abs=1e-11)
    assert np.all(fit.tau.values > 0) and fit.tau.weights.sum() == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-3, max_value=1.0), min_size=2, max_size=30),
    st.lists(probs, min_size=1, max_size=5),
)
def test_grid_distribution_inverts(ws, qs):
    values = np.cumsum(np.linspace(0.1, 1.0, len(ws)))
    g = GridDistribution(values, np.array(ws))
    q = np.array(qs)
    np.testing.assert_allclose(g.cdf(g.ppf(q)), q, atol=1e-12)
    s = g.summary()
    assert set(s) == KEYS
    assert g.cdf(s["hdi_high"]) - g.cdf(s["hdi_low"]) == pytest.approx(INTERVAL_PROB, abs=1e-9)


def test_a_reduced_mixture_keeps_moments_and_quantiles():
    rng = np.random.default_rng(11)
    n = 60_000
    means = rng.normal(0.0, 0.3, n) + np.where(rng.uniform(size=n) < 0.1, 1.5, 0.0)  # two bumps
    sds = rng.uniform(0.1, 0.2, n)  # SDs within a factor of two, as in the grid engines' mixtures
    full = NormalMixture(rng.uniform(size=n), means, sds)
    small = full.reduced()
    assert small.weights.size <= 512 * 8 + 32 * 8 < n
    assert small.mean() == pytest.approx(full.mean(), rel=1e-12) and small.sd() == pytest.approx(full.sd(), rel=1e-10)
    q = np.array([0.001, 0.025, 0.5, 0.975, 0.999])
    assert small.ppf(q) == pytest.approx(full.ppf(q), abs=2e-4 * full.sd())
    with_atoms = NormalMixture(np.ones(n), means, np.where(np.arange(n) < 10, 0.0, sds))
    assert np.sum(with_atoms.reduced().sds == 0) == 10  # point masses are kept as they are
    assert NormalMixture([1.0, 1.0], [0.0, 1.0], [0.0, 0.0]).reduced().summary("log")["hdi_high"] == pytest.approx(1.0)


def test_the_root_finder_and_minimiser_that_replace_scipy_optimize():
    from harmoni_bayes.exact import _minimum, _root

    for f, a, b, x0 in (
        (lambda x: x**3 - 2.0, 0.0, 3.0, 2.0 ** (1 / 3)),
        (lambda x: math.tanh(50 * (x - 0.3)), -1.0, 1.0, 0.3),  # steep: regula falsi alone would crawl
        (lambda x: math.exp(x) - 1e-8, -40.0, 0.0, math.log(1e-8)),
    ):
        assert _root(f, a, b, xtol=1e-15) == pytest.approx(x0, abs=1e-13)
    x, fx = _minimum(lambda x: (x - 0.123) ** 2 + 1.0, 0.0, 1.0, xtol=1e-12)
    assert x == pytest.approx(0.123, abs=1e-7) and fx == pytest.approx(1.0)  # f is flat to 1e-16 within 1e-8 of x
    assert _minimum(lambda x: x, 0.0, 1.0, xtol=1e-12)[0] == pytest.approx(0.0, abs=1e-11)  # at the boundary
