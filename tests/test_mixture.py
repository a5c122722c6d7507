"""Tests of ``harmoni_bayes.mixture``: normal-mixture algebra, EM compression, robustification and ESS.

Every closed form is checked against an independent numerical computation (``scipy.integrate.quad``,
finite differences, Monte Carlo), never against itself.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from harmoni_bayes.errors import ModelError
from harmoni_bayes.exact import nnhm_exact
from harmoni_bayes.mixture import (
    LOG_HR_UNIT_SD,
    NormalMix,
    as_normal_mix,
    difference,
    em_fit,
    ess,
    fit_mixture,
    posterior,
    predictive,
    robustify,
    unit_information_sd,
)
from harmoni_bayes.priors import HalfNormalPrior, NormalPrior

# an informative two-component MAP-like prior on log HR, and its robust version
MAP = NormalMix([0.65, 0.35], [math.log(0.7), math.log(0.9)], [0.12, 0.2])
ROBUST = robustify(MAP, 0.3, mean=0.0, sd=2.0)
XS = np.array([-2.5, -0.9, -0.4, -0.2, 0.0, 0.3, 1.7])


def quad(f, lo=-np.inf, hi=np.inf, **kw):
    return integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400, **kw)[0]


# ----------------------------------------------------------------------------- module boundary


def test_mixture_module_does_not_import_pymc():
    """The fast path must not drag in PyMC, pytensor or ArviZ (checked in a fresh interpreter)."""
    import subprocess

    code = (
        "import sys, harmoni_bayes.mixture, harmoni_bayes.design; "
        "print(sorted(m for m in ('pymc', 'pytensor', 'arviz') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- validation


def test_weights_not_summing_to_one_is_a_model_error():
    with pytest.raises(ModelError, match="sum to 1"):
        NormalMix([0.5, 0.4], [0.0, 1.0], [1.0, 1.0])


def test_weights_within_tolerance_are_renormalised():
    mix = NormalMix([0.5 + 4e-7, 0.5], [0.0, 1.0], [1.0, 1.0])
    assert mix.weights.sum() == pytest.approx(1.0, abs=1e-15)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ModelError) as err:
        NormalMix([0.7, -0.1, 0.1], [0.0, math.inf, 1.0], [1.0, 0.0, -2.0])
    reasons = " | ".join(p.reason for p in err.value.problems)
    assert len(err.value.problems) == 3, reasons
    assert "non-negative" in reasons and "means must be finite" in reasons and "sds must be positive" in reasons


def test_length_mismatch_and_empty():
    with pytest.raises(ModelError, match="same length"):
        NormalMix([1.0], [0.0, 1.0], [1.0])
    with pytest.raises(ModelError, match="at least one component"):
        NormalMix([], [], [])


def test_mixture_is_read_only():
    with pytest.raises(ValueError, match="read-only"):
        MAP.means[0] = 1.0


def test_from_mixture_drops_zero_weights_and_rejects_junk():
    class Grid:  # duck-typed like harmoni_bayes.exact.NormalMixture
        weights = np.array([0.0, 0.25, 0.75])
        means = np.array([5.0, -0.1, 0.2])
        sds = np.array([0.0, 0.3, 0.4])

    mix = as_normal_mix(Grid())
    assert len(mix) == 2
    np.testing.assert_allclose(mix.weights, [0.25, 0.75])
    assert as_normal_mix(MAP) is MAP
    with pytest.raises(ModelError, match="NormalMix"):
        as_normal_mix([0.1, 0.2])


# ----------------------------------------------------------------------------- distribution functions


def test_density_cdf_moments_against_quadrature():
    mix = ROBUST
    assert quad(mix.pdf) == pytest.approx(1.0, abs=1e-10)
    for x in XS:
        assert mix.cdf(x) == pytest.approx(quad(mix.pdf, -np.inf, x), abs=1e-10)
        assert mix.sf(x) == pytest.approx(1.0 - mix.cdf(x), abs=1e-14)
        assert mix.logpdf(x) == pytest.approx(math.log(mix.pdf(x)), rel=1e-13)
    mean = quad(lambda t: t * mix.pdf(t))
    assert mix.mean() == pytest.approx(mean, abs=1e-10)
    assert mix.var() == pytest.approx(quad(lambda t: (t - mean) ** 2 * mix.pdf(t)), rel=1e-9)
    assert mix.sd() == pytest.approx(math.sqrt(mix.var()))
    assert len(mix) == 3
    assert isinstance(mix.pdf(0.1), float) and mix.pdf(XS).shape == XS.shape


def test_ppf_inverts_cdf_including_the_tails():
    q = np.array([1e-12, 1e-6, 0.025, 0.3, 0.5, 0.77, 0.975, 1 - 1e-6, 1 - 1e-12])
    x = ROBUST.ppf(q)
    np.testing.assert_allclose(ROBUST.cdf(x[:5]), q[:5], rtol=1e-10)
    np.testing.assert_allclose(ROBUST.sf(x[5:]), 1 - q[5:], rtol=1e-8)
    assert ROBUST.ppf(0.0) == -math.inf and ROBUST.ppf(1.0) == math.inf
    assert np.isnan(ROBUST.ppf(1.5))
    # against a root finder on the cdf
    ref = optimize.brentq(lambda t: ROBUST.cdf(t) - 0.3, -10, 10, xtol=1e-14)
    assert ROBUST.ppf(0.3) == pytest.approx(ref, abs=1e-12)


def test_sample_matches_moments():
    draws = ROBUST.sample(200_000, rng=1)
    se = ROBUST.sd() / math.sqrt(draws.size)
    assert abs(draws.mean() - ROBUST.mean()) < 4 * se
    assert draws.var() == pytest.approx(ROBUST.var(), rel=0.02)
    np.testing.assert_array_equal(draws[:10], ROBUST.sample(200_000, rng=1)[:10])


def test_score_and_information_against_finite_differences():
    h = 1e-4
    for x in XS:
        lp = [ROBUST.logpdf(x + k * h) for k in (-2, -1, 0, 1, 2)]
        d1 = (lp[0] - 8 * lp[1] + 8 * lp[3] - lp[4]) / (12 * h)
        d2 = (-lp[0] + 16 * lp[1] - 30 * lp[2] + 16 * lp[3] - lp[4]) / (12 * h * h)
        assert ROBUST.score(x) == pytest.approx(d1, rel=1e-6, abs=1e-6)
        assert ROBUST.information(x) == pytest.approx(-d2, rel=1e-4, abs=1e-3)


def test_mode_of_a_bimodal_mixture_against_grid_search():
    mix = NormalMix([0.45, 0.55], [-1.0, 1.2], [0.3, 0.6])
    grid = np.linspace(-3, 3, 600_001)
    x0 = grid[np.argmax(mix.pdf(grid))]
    ref = optimize.minimize_scalar(lambda t: -mix.logpdf(t), bounds=(x0 - 1e-4, x0 + 1e-4), method="bounded").x
    assert mix.mode() == pytest.approx(ref, abs=1e-7)
    assert mix.mode() == pytest.approx(-1.0, abs=0.05)  # the taller, narrower component wins


# ----------------------------------------------------------------------------- posterior, predictive, difference


def test_single_component_posterior_is_the_normal_normal_update():
    m, s, y, se = -0.2, 0.3, -0.6, 0.15
    post = posterior(NormalMix.single(m, s), y, se)
    v = 1 / (1 / s**2 + 1 / se**2)
    assert len(post) == 1
    assert post.means[0] == pytest.approx(v * (m / s**2 + y / se**2), abs=1e-14)
    assert post.sds[0] == pytest.approx(math.sqrt(v), rel=1e-14)


@pytest.mark.parametrize(("y", "se"), [(-0.5, 0.15), (0.4, 0.3)])
def test_mixture_posterior_against_quadrature(y, se):
    prior = NormalMix([0.6, 0.4], [math.log(0.65), 0.05], [0.1, 0.25])
    post = posterior(prior, y, se)

    def unnorm(t):
        return prior.pdf(t) * stats.norm.pdf(y, t, se)

    z = quad(unnorm)
    for x in (-0.9, -0.2, 0.3):
        assert post.pdf(x) == pytest.approx(unnorm(x) / z, abs=1e-9, rel=1e-8)
        assert post.cdf(x) == pytest.approx(quad(unnorm, -np.inf, x) / z, abs=1e-8)
    mean = quad(lambda t: t * unnorm(t)) / z
    assert post.mean() == pytest.approx(mean, abs=1e-9)
    assert post.var() == pytest.approx(quad(lambda t: (t - mean) ** 2 * unnorm(t)) / z, rel=1e-7)


@settings(deadline=None, max_examples=25)
@given(
    w=st.floats(0.05, 0.95),
    m1=st.floats(-1.5, 1.5),
    m2=st.floats(-1.5, 1.5),
    s1=st.floats(0.05, 2.0),
    s2=st.floats(0.05, 2.0),
    y=st.floats(-2.0, 2.0),
    se=st.floats(0.05, 1.0),
)
def test_posterior_mean_property(w, m1, m2, s1, s2, y, se):
    """Posterior mean = prior-weighted likelihood mean, for arbitrary two-component priors."""
    prior = NormalMix([w, 1 - w], [m1, m2], [s1, s2])
    post = posterior(prior, y, se)
    grid = np.linspace(-8, 8, 40_001)
    dens = prior.pdf(grid) * stats.norm.pdf(y, grid, se)
    z = integrate.simpson(dens, x=grid)
    assert post.mean() == pytest.approx(integrate.simpson(grid * dens, x=grid) / z, abs=1e-6)


def test_posterior_survives_extreme_conflict():
    post = posterior(NormalMix([0.5, 0.5], [-3.0, 3.0], [0.01, 0.01]), 3.0, 0.01)
    assert post.weights[0] == 0.0 and post.weights[1] == 1.0


def test_predictive_against_numerical_convolution():
    pred = predictive(MAP, 0.1)
    for x in (-0.6, -0.3, 0.1):
        ref = quad(lambda t, x=x: MAP.pdf(t) * stats.norm.pdf(x, t, 0.1))
        assert pred.pdf(x) == pytest.approx(ref, rel=1e-9)


def test_difference_against_numerical_convolution():
    a = NormalMix([0.7, 0.3], [-0.4, 0.1], [0.15, 0.4])
    b = NormalMix([0.2, 0.5, 0.3], [-0.2, 0.0, 0.3], [0.1, 0.2, 0.5])
    dmix = difference(a, b)
    assert len(dmix) == 6
    for z in (-1.5, -0.3, 0.4):
        pdf = quad(lambda t, z=z: a.pdf(z + t) * b.pdf(t))
        cdf = quad(lambda t, z=z: a.cdf(z + t) * b.pdf(t))
        assert dmix.pdf(z) == pytest.approx(pdf, abs=1e-9)
        assert dmix.cdf(z) == pytest.approx(cdf, abs=1e-9)
    assert dmix.mean() == pytest.approx(a.mean() - b.mean(), abs=1e-14)
    assert dmix.var() == pytest.approx(a.var() + b.var(), rel=1e-12)


# ----------------------------------------------------------------------------- robustify


def test_robustify_scales_weights_and_appends_the_vague_component():
    rob = robustify(MAP, 0.2)
    np.testing.assert_allclose(rob.weights, [0.8 * 0.65, 0.8 * 0.35, 0.2], rtol=1e-14)
    np.testing.assert_array_equal(rob.means, [*MAP.means, 0.0])
    np.testing.assert_array_equal(rob.sds, [*MAP.sds, LOG_HR_UNIT_SD])
    assert robustify(MAP, 0.0).weights[-1] == 0.0
    assert np.all(robustify(MAP, 1.0).weights[:2] == 0.0)


@pytest.mark.parametrize("w", [-0.01, 1.01, math.nan, math.inf])
def test_robust_weight_outside_unit_interval_is_an_error(w):
    with pytest.raises(ModelError, match="robust"):
        robustify(MAP, w)


def test_unit_information_sd():
    assert unit_information_sd() == 2.0
    # 2:1 allocation, Var(log HR) = (1 + r)^2 / (r D) = 9 / (2 D)
    assert unit_information_sd(2.0) ** 2 == pytest.approx(4.5)
    with pytest.raises(ModelError):
        unit_information_sd(0.0)


# ----------------------------------------------------------------------------- EM fit


def test_em_recovers_a_known_two_component_mixture():
    truth = NormalMix([0.35, 0.65], [-1.0, 0.5], [0.4, 0.3])
    draws = truth.sample(20_000, rng=11)
    fit = fit_mixture(draws, max_components=4, criterion="bic", seed=0)
    assert len(fit) == 2
    order = np.argsort(fit.means)
    np.testing.assert_allclose(fit.weights[order], truth.weights, atol=0.02)
    np.testing.assert_allclose(fit.means[order], truth.means, atol=0.03)
    np.testing.assert_allclose(fit.sds[order], truth.sds, atol=0.03)
    # deterministic given the seed
    again = fit_mixture(draws, max_components=4, criterion="bic", seed=0)
    np.testing.assert_array_equal(fit.means, again.means)
    np.testing.assert_array_equal(fit.weights, again.weights)
    # same seed, same fit for every K: a smaller penalty per parameter (BIC log n = 9.9 > RBesT 6 > AIC 2)
    # can only choose as many components or more
    assert (
        len(fit)
        <= len(fit_mixture(draws, criterion="rbest", seed=0))
        <= len(fit_mixture(draws, criterion="aic", seed=0))
    )


@pytest.mark.parametrize("criterion", ["bic", "rbest"])
def test_em_chooses_one_component_for_normal_draws(criterion):
    draws = np.random.default_rng(5).normal(-0.3, 0.2, 20_000)
    fit = fit_mixture(draws, max_components=3, criterion=criterion)
    assert len(fit) == 1
    assert fit.means[0] == pytest.approx(draws.mean(), abs=1e-12)
    assert fit.sds[0] == pytest.approx(draws.std(), rel=1e-12)


def test_em_likelihood_against_scipy_optimiser():
    """EM's maximum (small sample, no binning) matches a direct numerical maximisation."""
    truth = NormalMix([0.5, 0.5], [-0.8, 0.6], [0.3, 0.5])
    x = truth.sample(1500, rng=2)
    fit = em_fit(x, 2, tol=1e-12, max_iter=20_000)
    assert fit.converged

    def negll(p):
        w = 1 / (1 + math.exp(-p[0]))
        return -np.sum(NormalMix([w, 1 - w], p[1:3], np.exp(p[3:])).logpdf(x))

    order = np.argsort(fit.mix.means)
    w0 = fit.mix.weights[order][0]
    start = [math.log(w0 / (1 - w0)), *fit.mix.means[order], *np.log(fit.mix.sds[order])]
    opt = optimize.minimize(negll, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10})
    assert fit.loglik == pytest.approx(-opt.fun, abs=1e-6)
    assert fit.loglik == pytest.approx(np.sum(fit.mix.logpdf(x)), rel=1e-12)


def test_fit_mixture_compresses_the_exact_grid_map_prior():
    """The NNHM predictive (thousands of grid components) is compressed to a few components."""
    y = [math.log(0.51), math.log(0.66), math.log(0.74)]
    se = [0.15, 0.12, 0.11]
    fit = nnhm_exact(y, se, mu_prior=NormalPrior(mu=0.0, sigma=2.0), tau_prior=HalfNormalPrior(sigma=0.25))
    grid_mix = NormalMix.from_mixture(fit.theta_new)
    draws = grid_mix.sample(20_000, rng=3)
    compact = fit_mixture(draws, criterion="rbest", seed=1)
    assert 1 <= len(compact) <= 4
    x = np.linspace(*grid_mix.ppf([0.0005, 0.9995]), 1000)
    assert np.max(np.abs(compact.cdf(x) - grid_mix.cdf(x))) < 0.012  # DKW 99% band for n = 20,000 is 0.0115


def test_fit_mixture_of_two_draws_is_one_normal():
    """K = 1 (closed form) is always available, even when K = 2 has more parameters than draws."""
    fit = fit_mixture([0.0, 1.0])
    assert len(fit) == 1 and fit.means[0] == 0.5 and fit.sds[0] == 0.5


@pytest.mark.parametrize(("n", "case"), [(1000, 0), (4000, 0), (20_000, 8)])
def test_no_component_collapses_onto_an_outlying_draw(n, case):
    """The mixture likelihood is unbounded: a component sitting on one draw with sd -> 0 wins any criterion.
    Such degenerate fits (a component worth fewer than 5 draws) are never chosen, so one far draw among normal
    ones gives no spike.  Before the fix these cases gave weight 1/n, sd 3e-7 and an ELIR ESS of ~1e10 events
    (n = 20,000: the collapse happened while polishing the binned fit on the raw draws).
    """
    rng = np.random.default_rng(0)
    for _ in range(case + 1):
        x = np.concatenate([rng.normal(0.0, 0.3, n - 1), [3.0]])
    fit = fit_mixture(x, max_components=4, seed=case)
    assert np.all(fit.weights * n >= 5), fit
    assert ess(fit, "elir") == pytest.approx(4 / 0.3**2, rel=0.25)


def test_fit_mixture_input_errors():
    with pytest.raises(ModelError, match="identical"):
        fit_mixture(np.ones(100))
    with pytest.raises(ModelError, match="finite"):
        fit_mixture([0.0, 1.0, math.nan])
    with pytest.raises(ModelError) as err:
        fit_mixture(np.arange(10.0), max_components=0, criterion="hqic")
    assert len(err.value.problems) == 2


# ----------------------------------------------------------------------------- ESS


@pytest.mark.parametrize(("s", "sigma"), [(0.2, 2.0), (0.1, 2.0), (1.0, 1.0), (0.5, 3.0)])
def test_all_ess_methods_equal_sigma2_over_s2_for_one_normal(s, sigma):
    mix = NormalMix.single(-0.3, s)
    for method in ("moment", "morita", "elir"):
        assert ess(mix, method, sigma) == pytest.approx(sigma**2 / s**2, rel=1e-12)


def test_ess_of_log_hr_prior_is_events():
    """N(m, 4/D) on log HR carries D events of information (sigma = 2)."""
    assert ess(NormalMix.single(math.log(0.7), 2 / math.sqrt(180))) == pytest.approx(180.0, rel=1e-12)


def test_morita_with_rbest_flattening():
    """RBesT's baseline N(mode, 100 s^2) removes 1% of the information of a single normal."""
    assert ess(NormalMix.single(0.0, 0.25), "morita", flatten=100) == pytest.approx(0.99 * 4 / 0.25**2, rel=1e-12)


def test_robust_mixture_has_lower_ess_than_its_informative_part():
    for method in ("moment", "morita", "elir"):
        assert ess(ROBUST, method) < ess(MAP, method)
        assert ess(ROBUST, method) > 0
    # moment matching is the most conservative, Morita (at the mode) the most liberal
    assert ess(ROBUST, "moment") < ess(ROBUST, "elir") < ess(ROBUST, "morita")


def test_elir_against_independent_finite_difference_integration():
    """sigma^2 int p(x) * (-(log p)''(x)) dx with the second derivative by finite differences."""
    for mix in (MAP, ROBUST, NormalMix([0.45, 0.55], [-1.0, 1.2], [0.3, 0.6])):
        lo = float(np.min(mix.means - 12 * mix.sds))
        hi = float(np.max(mix.means + 12 * mix.sds))
        x = np.linspace(lo, hi, 100_001)
        h = x[1] - x[0]
        lp = mix.logpdf(x)
        d2 = (lp[2:] - 2 * lp[1:-1] + lp[:-2]) / h**2
        ref = 4.0 * integrate.simpson(mix.pdf(x[1:-1]) * -d2, x=x[1:-1])
        assert ess(mix, "elir") == pytest.approx(ref, rel=2e-5)


@pytest.mark.parametrize("n", [1, 4])
def test_elir_is_predictively_consistent(n):
    """Neuenschwander et al. (2020): E_y[ELIR(posterior after n obs)] = ELIR(prior) + n, exactly.

    (For a normal likelihood the posterior's local information is the prior's plus n/sigma^2.)  The
    expectation over the prior predictive of y, a normal mixture, is taken by Gauss-Hermite quadrature
    per predictive component (100 nodes; ESS(y) has sharp features where the data start to conflict
    with the informative components, which is why n is kept small here).
    """
    se = LOG_HR_UNIT_SD / math.sqrt(n)
    pred = predictive(ROBUST, se)
    x, w = np.polynomial.hermite_e.hermegauss(100)
    total = 0.0
    for wk, mk, sk in zip(pred.weights, pred.means, pred.sds, strict=True):
        vals = np.array([ess(posterior(ROBUST, mk + sk * xi, se), "elir") for xi in x])
        total += wk * np.sum(w * vals) / math.sqrt(2 * math.pi)
    assert total == pytest.approx(ess(ROBUST, "elir") + n, rel=1e-6)


def test_morita_against_independent_mode_and_curvature():
    for mix in (MAP, ROBUST):
        grid = np.linspace(-3, 3, 600_001)
        x0 = grid[np.argmax(mix.pdf(grid))]
        mode = optimize.minimize_scalar(
            lambda t, m=mix: -m.logpdf(t), bounds=(x0 - 1e-4, x0 + 1e-4), method="bounded"
        ).x
        h = 1e-4
        d2 = (mix.logpdf(mode + h) - 2 * mix.logpdf(mode) + mix.logpdf(mode - h)) / h**2
        assert ess(mix, "morita") == pytest.approx(-4.0 * d2, rel=1e-5)


def test_moment_ess_against_quadrature_variance():
    var = quad(lambda t: (t - ROBUST.mean()) ** 2 * ROBUST.pdf(t))
    assert ess(ROBUST, "moment") == pytest.approx(4.0 / var, rel=1e-9)


def test_ess_argument_errors():
    with pytest.raises(ModelError, match="method"):
        ess(MAP, "bogus")
    with pytest.raises(ModelError, match="sigma"):
        ess(MAP, "elir", sigma=0.0)
    with pytest.raises(ModelError, match="morita"):
        ess(MAP, "elir", flatten=100)
