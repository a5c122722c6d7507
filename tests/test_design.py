"""Tests of ``harmoni_bayes.design``: group-sequential boundaries, power, assurance and conditional success.

Independent checks used below:

* published boundary tables: gsDesign (Lan-DeMets spending, one-sided alpha = 0.025, equally spaced) and
  Jennison & Turnbull (2000), *Group Sequential Methods*, Tables 2.1 (Pocock constants C_P) and 2.3
  (O'Brien-Fleming constants C_B) for two-sided 0.05 = one-sided 0.025;
* the canonical joint distribution through ``scipy.stats.multivariate_normal.cdf`` (a second
  implementation: Genz's quasi-Monte Carlo integration instead of the recursive quadrature);
* Monte Carlo simulation of Z paths with independent increments;
* closed forms for a single analysis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harmoni_bayes.design import (
    Design,
    assurance,
    boundaries,
    conditional_success,
    critical_hr,
    crossing_probabilities,
    power_curve,
    spending_function,
)
from harmoni_bayes.errors import ModelError, SpecError
from harmoni_bayes.exact import nnhm_exact
from harmoni_bayes.mixture import NormalMix, fit_mixture, posterior, robustify
from harmoni_bayes.priors import HalfNormalPrior, NormalPrior

Z975 = stats.norm.ppf(0.975)
MAP = NormalMix([0.65, 0.35], [math.log(0.7), math.log(0.9)], [0.12, 0.2])
ROBUST = robustify(MAP, 0.3, mean=0.0, sd=2.0)
D3 = Design((150, 300, 420), alpha=0.025, spending="obf")


def mvn_success(design: Design, m: float, v: float) -> float:
    """1 - P(Z_k <= b_k for all k), Z ~ MVN(-m sqrt(I_k), sqrt(I_j/I_k) + v sqrt(I_j I_k)) (brief's closed form)."""
    info, b = design.information, boundaries(design)
    cov = np.sqrt(np.minimum.outer(info, info) / np.maximum.outer(info, info)) + v * np.sqrt(np.outer(info, info))
    cdf = stats.multivariate_normal.cdf(
        b, -m * np.sqrt(info), cov, maxpts=1_000_000, abseps=1e-8, releps=0, rng=np.random.default_rng(0)
    )
    return 1.0 - float(cdf)


def simulate_scores(info: np.ndarray, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Score paths S_k = -theta_hat_k I_k with independent increments N(-theta dI, dI); shape (n, K)."""
    d_info = np.diff(np.concatenate([[0.0], info]))
    inc = rng.normal(-theta[:, None] * d_info, np.sqrt(d_info), size=(theta.size, info.size))
    return np.cumsum(inc, axis=1)


def first_crossing(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the first analysis with S_k > c_k, or K when there is none."""
    cross = s > c
    return np.where(cross.any(axis=1), cross.argmax(axis=1), s.shape[1])


# ----------------------------------------------------------------------------- design validation


def test_design_lists_every_problem_in_one_error():
    with pytest.raises(SpecError) as err:
        Design((300, 200), alpha=0.7, spending="hsd", allocation=-1, relevant_hr=1.5)
    cols = sorted(p.column for p in err.value.problems)
    assert cols == ["allocation", "alpha", "events", "relevant_hr", "spending"], err.value.message()


@pytest.mark.parametrize("events", [(), (100, 100), (0, 100), ("many", 200), (math.nan,), "300", (True, 200)], ids=repr)
def test_design_rejects_bad_events(events):
    with pytest.raises(SpecError, match="events"):
        Design(events)


def test_design_information_and_fractions():
    d = Design([100, 250, 400], allocation=2.0)
    np.testing.assert_allclose(d.information, np.array([100, 250, 400]) * 2 / 9)
    np.testing.assert_allclose(d.fractions, [0.25, 0.625, 1.0])
    assert d.n_analyses == 3 and d.events == (100.0, 250.0, 400.0)
    assert Design((400,)).information[0] == 100.0  # D/4 for 1:1
    assert hash(d) == hash(Design((100, 250, 400), allocation=2))


def test_spending_functions():
    t = np.linspace(0, 1, 101)
    for kind in ("obf", "pocock"):
        a = spending_function(kind, 0.025, t)
        assert a[0] == 0.0 and a[-1] == pytest.approx(0.025, abs=1e-15)
        assert np.all(np.diff(a) > 0)
    # O'Brien-Fleming type spends far less early
    assert spending_function("obf", 0.025, 0.5) == pytest.approx(
        2 * stats.norm.sf(stats.norm.isf(0.0125) / math.sqrt(0.5))
    )
    assert spending_function("pocock", 0.025, 0.5) == pytest.approx(0.025 * math.log(1 + (math.e - 1) / 2))
    with pytest.raises(ModelError):
        spending_function("hsd", 0.025, 0.5)


# ----------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    ("spending", "k", "table"),
    [
        # gsDesign, sfLDOF / sfLDPocock, test.type = 1, alpha = 0.025, equally spaced
        ("obf", 2, (2.963, 1.969)),
        ("obf", 3, (3.710, 2.511, 1.993)),
        ("obf", 4, (4.333, 2.963, 2.359, 2.014)),
        ("obf", 5, (4.877, 3.357, 2.680, 2.290, 2.031)),
        ("pocock", 2, (2.157, 2.201)),
        # Jennison & Turnbull Table 2.3: C_B(2) = 1.977, C_B(3) = 2.004, C_B(4) = 2.024; b_k = C_B sqrt(K/k)
        ("obf_classic", 2, (2.797, 1.977)),
        ("obf_classic", 3, (3.471, 2.454, 2.004)),
        # Jennison & Turnbull Table 2.1: C_P(2) = 2.178, C_P(3) = 2.289
        ("pocock_classic", 2, (2.178, 2.178)),
        ("pocock_classic", 3, (2.289, 2.289, 2.289)),
    ],
)
def test_boundaries_match_published_tables(spending, k, table):
    b = boundaries(Design(tuple(range(1, k + 1)), alpha=0.025, spending=spending))
    # tables are rounded to 3 decimals; classical boundaries derived as C sqrt(K/k) inherit C's rounding
    scale = np.sqrt(k / np.arange(1, k + 1)) if spending == "obf_classic" else 1.0
    assert np.all(np.abs(b - np.asarray(table)) <= 5.01e-4 * scale + 1e-6), (b, table)


@pytest.mark.parametrize(
    ("spending", "constants"),
    [
        ("obf_classic", {2: 1.977, 3: 2.004, 4: 2.024, 5: 2.040}),  # Jennison & Turnbull Table 2.3, C_B(K)
        ("pocock_classic", {2: 2.178, 3: 2.289, 4: 2.361, 5: 2.413}),  # Jennison & Turnbull Table 2.1, C_P(K)
    ],
)
def test_classical_constants_match_jennison_turnbull(spending, constants):
    for k, c in constants.items():
        b = boundaries(Design(tuple(range(1, k + 1)), spending=spending))
        assert b[-1] == pytest.approx(c, abs=5.01e-4)
        shape = np.sqrt(k / np.arange(1, k + 1)) if spending == "obf_classic" else np.ones(k)
        np.testing.assert_allclose(b, b[-1] * shape, rtol=1e-13)


@pytest.mark.parametrize(
    "design",
    [
        Design((150, 300, 420), spending="obf"),
        Design((100, 250, 400, 1000), spending="pocock"),
    ],
    ids=["obf-3", "pocock-4-unequal"],
)
def test_boundaries_against_monte_carlo(design):
    """400,000 null Z paths: total and per-analysis crossing rates within 3 MC standard errors."""
    n = 400_000
    info, b = design.information, boundaries(design)
    s = simulate_scores(info, np.zeros(n), np.random.default_rng(20260101))
    first = first_crossing(s, b * np.sqrt(info))
    spent = np.diff(np.concatenate([[0.0], spending_function(design.spending, design.alpha, design.fractions)]))
    for k in range(design.n_analyses):
        p = spent[k]
        assert abs(np.mean(first == k) - p) < 3 * math.sqrt(p * (1 - p) / n), k
    alpha = design.alpha
    assert abs(np.mean(first < design.n_analyses) - alpha) < 3 * math.sqrt(alpha * (1 - alpha) / n)


def test_boundaries_against_multivariate_normal():
    """The null crossing probability of the boundaries, by Genz integration, is alpha."""
    for design in (D3, Design((100, 250, 400, 1000), spending="pocock"), Design((1, 2, 3), spending="obf_classic")):
        assert mvn_success(design, 0.0, 0.0) == pytest.approx(design.alpha, abs=1e-6)


def test_boundaries_are_cached_but_not_shared():
    b = boundaries(D3)
    first = b[0]
    b[0] = 0.0
    assert boundaries(D3)[0] == first


def test_single_analysis_boundary_is_the_normal_quantile():
    assert boundaries(Design((300,), alpha=0.025))[0] == pytest.approx(Z975, abs=1e-12)
    assert critical_hr(Design((400,)))[0] == pytest.approx(math.exp(-Z975 / 10.0), rel=1e-12)


# ----------------------------------------------------------------------------- power


@pytest.mark.parametrize(
    "design",
    [
        Design((300,)),
        Design((200, 400), spending="pocock"),
        D3,
        Design((100, 250, 400, 1000), spending="obf", alpha=0.01),
        Design((1, 2, 3, 4, 5), spending="pocock_classic"),
    ],
    ids=["k1", "pocock-2", "obf-3", "obf-4-unequal", "pocock-classic-5"],
)
def test_power_at_hr_one_is_alpha(design):
    assert power_curve(design, 1.0) == pytest.approx(design.alpha, abs=1e-6)


def test_power_curve_is_monotone():
    hr = np.linspace(0.4, 1.3, 100)
    p = power_curve(D3, hr)
    assert p.shape == (100,)
    assert np.all((p >= 0) & (p <= 1))
    # strictly decreasing, up to the ~1e-7 quadrature error where the power is saturated at 1
    assert np.all(np.diff(p) < 1e-8)
    assert np.all(np.diff(p)[p[1:] < 0.9999] < 0)
    assert p[0] > 0.999999 and p[-1] < 1e-4


def test_single_analysis_power_closed_form():
    d = Design((330,), alpha=0.025)
    info = 330 / 4
    for hr in (0.6, 0.75, 0.9, 1.1):
        assert power_curve(d, hr) == pytest.approx(stats.norm.cdf(-math.log(hr) * math.sqrt(info) - Z975), abs=1e-12)
    # Schoenfeld: 330 events give ~90% power for HR 0.70 at two-sided 5% (methods brief, section e)
    assert power_curve(d, 0.70) == pytest.approx(0.90, abs=0.005)


@pytest.mark.parametrize("hr", [0.6, 0.8])
def test_power_against_multivariate_normal(hr):
    for design in (D3, Design((100, 250, 400, 1000), spending="pocock")):
        assert power_curve(design, hr) == pytest.approx(mvn_success(design, math.log(hr), 0.0), abs=1e-6)


def test_crossing_probabilities_add_up_and_spend_alpha_under_the_null():
    per_look = crossing_probabilities(D3, [1.0, 0.7])
    assert per_look.shape == (2, 3)
    np.testing.assert_allclose(per_look.sum(axis=1), power_curve(D3, [1.0, 0.7]), rtol=1e-14)
    spent = np.diff(np.concatenate([[0.0], spending_function("obf", 0.025, D3.fractions)]))
    np.testing.assert_allclose(per_look[0], spent, rtol=1e-7, atol=1e-12)


def test_power_with_unequal_allocation():
    """2:1 allocation has information D r/(1+r)^2 = 2D/9, i.e. the power of a 1:1 trial with 8/9 of the events."""
    d21 = Design((270, 540), allocation=2.0, spending="pocock")
    d11 = Design((240, 480), spending="pocock")
    np.testing.assert_allclose(power_curve(d21, [0.6, 0.8]), power_curve(d11, [0.6, 0.8]), rtol=1e-12)


def test_power_input_errors():
    for bad in (0.0, -0.5, math.nan, []):
        with pytest.raises(ModelError, match="hazard ratio"):
            power_curve(D3, bad)


# ----------------------------------------------------------------------------- assurance


@pytest.mark.parametrize(("m", "sd"), [(math.log(0.75), 0.15), (math.log(0.6), 0.05), (0.0, 2.0), (0.2, 0.5)])
def test_single_analysis_assurance_closed_form(m, sd):
    d = Design((400,), alpha=0.025)
    info = 100.0
    ref = stats.norm.cdf((-Z975 - m * math.sqrt(info)) / math.sqrt(1 + sd**2 * info))
    assert assurance(d, NormalMix.single(m, sd)) == pytest.approx(ref, abs=1e-12)
    # methods brief, section e: m = ln 0.75, v = 0.15^2, D = 400 gives PoS = 0.69
    if sd == 0.15:
        assert round(assurance(d, NormalMix.single(m, sd)), 2) == 0.69


def test_single_analysis_assurance_of_a_mixture_is_the_weighted_sum():
    d = Design((400,))
    ref = sum(
        w * stats.norm.cdf((-Z975 - m * 10) / math.sqrt(1 + s**2 * 100))
        for w, m, s in zip(ROBUST.weights, ROBUST.means, ROBUST.sds, strict=True)
    )
    assert assurance(d, ROBUST) == pytest.approx(ref, abs=1e-12)


def test_assurance_with_a_very_narrow_prior_is_the_power():
    for hr in (0.7, 0.85):
        assert assurance(D3, NormalMix.single(math.log(hr), 1e-6)) == pytest.approx(power_curve(D3, hr), abs=1e-9)


@pytest.mark.parametrize(("m", "sd"), [(math.log(0.8), 0.15), (-0.3, 2.0)])
def test_multi_analysis_assurance_against_multivariate_normal(m, sd):
    """Each prior component against the brief's closed form with covariance sqrt(I_j/I_k) + v sqrt(I_j I_k)."""
    for design in (D3, Design((100, 250, 400, 1000), spending="pocock")):
        got = assurance(design, NormalMix.single(m, sd))
        assert got == pytest.approx(mvn_success(design, m, sd**2), abs=1e-6)


def test_multi_analysis_assurance_of_a_robust_mixture_against_monte_carlo():
    n = 400_000
    rng = np.random.default_rng(7)
    theta = ROBUST.sample(n, rng)
    s = simulate_scores(D3.information, theta, rng)
    mc = np.mean(first_crossing(s, boundaries(D3) * np.sqrt(D3.information)) < 3)
    got = assurance(D3, ROBUST)
    assert abs(got - mc) < 3 * math.sqrt(mc * (1 - mc) / n)
    # and component by component against the multivariate normal
    ref = sum(w * mvn_success(D3, m, s_**2) for w, m, s_ in zip(ROBUST.weights, ROBUST.means, ROBUST.sds, strict=True))
    assert got == pytest.approx(ref, abs=1e-6)


def test_assurance_accepts_the_exact_grid_mixture_and_its_compression():
    """MAP prior from the exact NNHM engine: the grid mixture and its EM compression give the same PoS."""
    y = [math.log(0.51), math.log(0.66), math.log(0.74)]
    fit = nnhm_exact(
        y, [0.15, 0.12, 0.11], mu_prior=NormalPrior(mu=0.0, sigma=2.0), tau_prior=HalfNormalPrior(sigma=0.25)
    )
    single = Design((400,))
    exact_pos = assurance(single, fit.theta_new)  # thousands of components, closed form per component
    compact = fit_mixture(NormalMix.from_mixture(fit.theta_new).sample(20_000, rng=4), criterion="rbest", seed=0)
    assert assurance(single, compact) == pytest.approx(exact_pos, abs=0.005)
    assert assurance(single, robustify(compact, 0.3)) < assurance(single, compact)
    # several analyses: the compressed prior against Monte Carlo from the grid mixture itself
    n = 200_000
    rng = np.random.default_rng(9)
    theta = NormalMix.from_mixture(fit.theta_new).sample(n, rng)
    s = simulate_scores(D3.information, theta, rng)
    mc = np.mean(first_crossing(s, boundaries(D3) * np.sqrt(D3.information)) < 3)
    assert abs(assurance(D3, compact) - mc) < 0.005
    with pytest.raises(ModelError, match="compress"):
        assurance(D3, fit.theta_new)


# ----------------------------------------------------------------------------- dual criterion


def test_dual_criterion_single_analysis_closed_form():
    """Success iff theta_hat < min(-z/sqrt(I), log(relevant_hr)); theta_hat ~ N(m, v + 1/I)."""
    for events, relevant in ((400, 0.85), (400, 0.75), (1000, 0.85)):
        d = Design((events,), relevant_hr=relevant)
        info = events / 4
        thr = min(-Z975 / math.sqrt(info), math.log(relevant))
        for m, sd in ((math.log(0.75), 0.15), (0.0, 2.0)):
            ref = stats.norm.cdf((thr - m) / math.sqrt(sd**2 + 1 / info))
            assert assurance(d, NormalMix.single(m, sd)) == pytest.approx(ref, abs=1e-12)
        assert critical_hr(d)[0] == pytest.approx(math.exp(thr), rel=1e-12)


def test_dual_criterion_multi_analysis_against_monte_carlo():
    d = Design((150, 300, 420), spending="pocock", relevant_hr=0.78)  # binds at the final analysis only
    c = np.maximum(boundaries(d) * np.sqrt(d.information), -math.log(0.78) * d.information)
    assert c[-1] > boundaries(d)[-1] * math.sqrt(d.information[-1]) and c[0] == boundaries(d)[0] * math.sqrt(37.5)
    n = 400_000
    for hr in (0.7, 0.78):
        s = simulate_scores(d.information, np.full(n, math.log(hr)), np.random.default_rng(int(hr * 100)))
        mc = np.mean(first_crossing(s, c) < 3)
        assert abs(power_curve(d, hr) - mc) < 3 * math.sqrt(mc * (1 - mc) / n)
    assert power_curve(d, 1.0) < 0.025 - 1e-4  # the second criterion can only lower the type I error


# ----------------------------------------------------------------------------- conditional success


def test_conditional_success_two_analyses_closed_form():
    """Methods brief (section e): theta_hat_F | y ~ N((I_1 y + dI m')/I_F, (dI + dI^2 v')/I_F^2) per component."""
    d = Design((200, 400), spending="obf")
    i1, i2 = d.information
    c2 = boundaries(d)[1] * math.sqrt(i2)
    for y in (math.log(0.9), math.log(0.75), 0.1):
        post = posterior(ROBUST, y, 1 / math.sqrt(i1))
        ref = 0.0
        for w, m, s in zip(post.weights, post.means, post.sds, strict=True):
            di = i2 - i1
            mean = (i1 * y + di * m) / i2
            sd = math.sqrt(di + di**2 * s**2) / i2
            ref += w * stats.norm.cdf((-c2 / i2 - mean) / sd)
        assert conditional_success(d, ROBUST, y, interim_events=200) == pytest.approx(ref, abs=1e-10)


def test_conditional_success_against_importance_weighted_monte_carlo():
    """theta from the prior weighted by the interim likelihood (no conjugate algebra), then the remaining path."""
    y, n = math.log(0.8), 400_000
    info, b = D3.information, boundaries(D3)
    rng = np.random.default_rng(3)
    theta = ROBUST.sample(n, rng)
    logw = -0.5 * (y - theta) ** 2 * info[0]
    w = np.exp(logw - logw.max())
    w /= w.sum()
    s1 = -y * info[0]
    s2 = s1 + rng.normal(-theta * (info[1] - info[0]), math.sqrt(info[1] - info[0]))
    s3 = s2 + rng.normal(-theta * (info[2] - info[1]), math.sqrt(info[2] - info[1]))
    success = (s2 > b[1] * math.sqrt(info[1])) | (s3 > b[2] * math.sqrt(info[2]))
    mc = float(w @ success)
    mc_se = math.sqrt(float(np.sum(w**2 * (success - mc) ** 2)))
    got = conditional_success(D3, ROBUST, y, interim_events=150)
    assert abs(got - mc) < 3 * mc_se


def test_conditional_success_is_vectorised_and_scale_consistent():
    ys = np.array([-0.6, -0.25, 0.0, 0.2])
    vec = conditional_success(D3, ROBUST, ys, interim_events=200)
    loop = [conditional_success(D3, ROBUST, float(y), interim_events=200) for y in ys]
    np.testing.assert_allclose(vec, loop, rtol=1e-12)
    assert np.all(np.diff(vec) < 0)  # a worse interim estimate lowers the chance of success
    # SE of a 1:1 log HR after D events is 2/sqrt(D): the same information
    assert conditional_success(D3, ROBUST, -0.25, interim_se=2 / math.sqrt(200)) == pytest.approx(vec[1], rel=1e-12)


def test_conditional_success_when_the_interim_already_succeeded():
    b1 = boundaries(D3)[0]
    y_cross = -(b1 + 0.01) / math.sqrt(D3.information[0])
    assert conditional_success(D3, ROBUST, y_cross, interim_events=150) == 1.0
    assert conditional_success(D3, ROBUST, -0.2, interim_events=150) < 1.0


def test_conditional_success_input_errors():
    with pytest.raises(ModelError, match="no analysis after the interim"):
        conditional_success(D3, ROBUST, -0.2, interim_events=420)
    with pytest.raises(ModelError, match="exactly one"):
        conditional_success(D3, ROBUST, -0.2)
    with pytest.raises(ModelError, match="exactly one"):
        conditional_success(D3, ROBUST, -0.2, interim_se=0.1, interim_events=100)
    with pytest.raises(ModelError) as err:
        conditional_success(D3, ROBUST, math.nan, interim_se=-1.0)
    assert len(err.value.problems) == 2
