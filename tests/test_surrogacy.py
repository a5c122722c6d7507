"""Bivariate PFS -> OS surrogacy model and the joint target forecast (harmoni_bayes.models.surrogacy).

Default tests build graphs and evaluate closed forms only.  Tests marked ``slow`` sample; CI runs them
(``-m "not slow"`` skips them for a quick loop).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from harmoni_bayes.config import SamplerConfig
from harmoni_bayes.errors import ModelError
from harmoni_bayes.inference import sample
from harmoni_bayes.models.base import ModelFamily
from harmoni_bayes.models.surrogacy import (
    SurrogacyModel,
    SurrogacyPriors,
    TargetTrial,
    brma_from_product_normal,
    forecast_fixed_hyperparameters,
    surrogate_threshold_effect,
    target_conditional,
)
from harmoni_bayes.priors import FixedValue, HalfCauchyPrior, UniformPrior

# Structure tests evaluate graphs without the C compilation that sampling needs (milliseconds, not minutes).
FAST = "FAST_COMPILE"

HYPER = ("eta_pfs", "tau_pfs", "intercept", "slope", "residual_sd", "rho_w")


# ---- shared inputs ----------------------------------------------------------------------------

# Methods §d toy example: eta = (-0.25, -0.15), tau = (0.25, 0.15), rho_b = 0.8, HARMONi-2 PFS
# y_S = -0.673 (s 0.152), hypothetical OS interim HR 0.78 (s 0.20).
TOY_ETA = np.array([-0.25, -0.15])
TOY_TAU = np.array([0.25, 0.15])
TOY_RHO_B = 0.8
TOY_YS, TOY_SS = -0.673, 0.152
TOY_YT, TOY_ST = math.log(0.78), 0.20
# The same hyperparameters in product-normal form.
TOY_PN = {"eta_pfs": -0.25, "tau_pfs": 0.25, "slope": 0.48, "residual_sd": 0.09, "intercept": -0.03}


def reference_arrays(k: int = 8, seed: int = 3):
    rng = np.random.default_rng(seed)
    y_s = rng.normal(-0.4, 0.25, k)
    y_t = -0.05 + 0.5 * y_s + rng.normal(0, 0.12, k)
    return y_s, rng.uniform(0.08, 0.2, k), y_t, rng.uniform(0.1, 0.22, k)


def make_model(target: TargetTrial | None = None, priors: SurrogacyPriors | None = None, k: int = 8):
    return SurrogacyModel.from_arrays(*reference_arrays(k), priors=priors, target=target)


def toy_target(rho_os: bool = True, later_deaths: int = 160) -> TargetTrial:
    if rho_os:
        return TargetTrial("toy", TOY_YS, TOY_SS, TOY_YT, TOY_ST, later_deaths)
    return TargetTrial("toy", TOY_YS, TOY_SS, None, None, later_deaths)


def point_for(model, values: dict, z=(0.0, 0.0), zf: float = 0.0) -> dict:
    """A point on the sampler's (transformed) scale from natural-scale hyperparameters."""
    pt = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        name = rv.name
        if name == "target_z":
            pt[value.name] = np.asarray(z, float)
        elif name == "later_os_z":
            pt[value.name] = np.asarray(zf, float)
        else:
            tr = model.rvs_to_transforms.get(rv)
            v = np.asarray(values[name], float)
            pt[value.name] = tr.forward(v, *rv.owner.inputs).eval() if tr is not None else v
    return pt


def value_fn(model, *names):
    """Compile deterministics as functions of the value variables (a point dict), not of random draws."""
    outs = model.replace_rvs_by_values([model[n] for n in names])
    return model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", mode=FAST)


def fake_idata(draws: dict[str, np.ndarray]):
    import arviz as az

    return az.from_dict(posterior={k: np.asarray(v, float).reshape(1, -1) for k, v in draws.items()})


# ---- priors and inputs -------------------------------------------------------------------------


def test_default_priors():
    p = SurrogacyPriors()
    assert (p.eta_pfs.mu, p.eta_pfs.sigma) == (0.0, 1.0)
    assert p.tau_pfs.sigma == 0.5 and p.residual_sd.sigma == 0.5
    assert (p.slope.mu, p.slope.sigma, p.intercept.sigma) == (0.0, 1.0, 1.0)
    assert isinstance(p.rho_w, UniformPrior) and (p.rho_w.lower, p.rho_w.upper) == (0.2, 0.7)
    assert set(p.describe()) == set(HYPER)


def test_priors_are_validated():
    with pytest.raises(ValidationError):
        SurrogacyPriors(slope_prior={"dist": "normal"})  # unknown key
    with pytest.raises(ValidationError):
        SurrogacyPriors(rho_w={"dist": "fixed", "value": 1.0})
    with pytest.raises(ValidationError):
        SurrogacyPriors(rho_w={"dist": "uniform", "lower": -1.5, "upper": 0.5})
    p = SurrogacyPriors(rho_w={"dist": "fixed", "value": 0.5}, tau_pfs={"dist": "half_cauchy", "beta": 0.3})
    assert isinstance(p.rho_w, FixedValue) and isinstance(p.tau_pfs, HalfCauchyPrior)


def test_target_needs_more_later_deaths_than_interim():
    # se_os 0.2 -> interim information 25, about 100 deaths.
    with pytest.raises(ModelError, match="not larger than the interim"):
        TargetTrial("t", -0.6, 0.15, -0.2, 0.2, later_deaths=100)
    with pytest.raises(ModelError, match="interim"):
        TargetTrial("t", -0.6, 0.15, -0.2, 0.2, later_deaths=60)
    TargetTrial("t", -0.6, 0.15, -0.2, 0.2, later_deaths=101)
    TargetTrial("t", -0.6, 0.15, None, None, later_deaths=60)  # no interim OS: any D > 0


def test_target_collects_all_problems():
    with pytest.raises(ModelError) as exc:
        TargetTrial("t", float("nan"), 0.15, -0.2, None, later_deaths=0, alpha=0.7)
    assert len(exc.value.problems) == 4


def test_target_from_hrs():
    t = TargetTrial.from_hrs("HARMONi-2", 0.51, (0.38, 0.69), os_hr=0.78, os_ci=(0.55, 1.1), later_deaths=300)
    assert t.y_pfs == pytest.approx(math.log(0.51))
    assert t.se_pfs == pytest.approx((math.log(0.69) - math.log(0.38)) / 3.919928, rel=1e-6)
    assert t.success_bound == pytest.approx(-1.959964 * 2 / math.sqrt(300), rel=1e-6)


def test_reference_problems_raise_model_error():
    y_s, s_s, y_t, s_t = reference_arrays(4)
    s_t[1] = 0.0
    y_s[2] = np.nan
    with pytest.raises(ModelError) as exc:
        SurrogacyModel.from_arrays(y_s, s_s, y_t, s_t, ["a", "b", "c", "a"])
    msg = str(exc.value)
    assert "se_os" in msg and "log_hr_pfs" in msg and "unique" in msg
    with pytest.raises(ModelError, match="at least 3"):
        SurrogacyModel.from_arrays(*(a[:2] for a in reference_arrays(4)))


def test_accepts_reference_selection():
    import pandas as pd

    from harmoni_bayes.reference import select_reference
    from test_reference import CSV, with_derived

    sel = select_reference(with_derived(pd.read_csv(CSV)))
    fam = SurrogacyModel(sel)
    assert fam.comparisons == list(sel.used["comparison"])
    np.testing.assert_allclose(fam.se_os, sel.used["se_os"])  # inflated SEs enter the likelihood


# ---- structure ---------------------------------------------------------------------------------


def test_is_a_model_family_and_lazy():
    fam = make_model(toy_target())
    assert isinstance(fam, ModelFamily)
    assert callable(fam.assumptions)
    assert fam.name == "surrogacy"
    assert not hasattr(fam, "model") and not hasattr(fam, "idata")


@pytest.mark.parametrize("with_os", [True, False])
def test_structure_with_target(with_os):
    fam = make_model(toy_target(rho_os=with_os))
    model = fam.build_model()
    free = {rv.name for rv in model.free_RVs}
    assert free == set(HYPER) | {"target_z", "later_os_z"}
    det = {v.name for v in model.deterministics}
    assert det == {"r2_trial", "target_mu_pfs", "target_mu_os", "os_hr", "os_hr_later_estimate"}
    obs = {v.name for v in model.observed_RVs}
    assert obs == ({"y_pfs", "y_os", "target_pfs", "target_os"} if with_os else {"y_pfs", "y_os", "target_pfs"})
    assert model.named_vars_to_dims["y_pfs"] == ("comparison",)
    assert model.named_vars_to_dims["y_os"] == ("comparison",)
    assert list(model.coords["comparison"]) == fam.comparisons
    ip = model.initial_point()
    logp = model.compile_logp(mode=FAST)(ip)
    dlogp = model.compile_dlogp(mode=FAST)(ip)
    assert np.isfinite(logp) and np.all(np.isfinite(dlogp)) and np.any(dlogp != 0)


def test_structure_without_target_and_fixed_rho():
    fam = make_model(priors=SurrogacyPriors(rho_w=FixedValue(value=0.5)))
    model = fam.build_model()
    assert {rv.name for rv in model.free_RVs} == set(HYPER) - {"rho_w"}
    assert "rho_w" in {v.name for v in model.deterministics}
    assert "os_hr" not in model.named_vars
    ip = model.initial_point()
    assert np.all(np.isfinite(model.compile_dlogp(mode=FAST)(ip)))


def test_likelihood_is_the_marginal_bivariate_normal():
    """logp of the observed terms = sum of N2(y_i; eta, Sigma_b + Sigma_w,i), target row included."""
    fam = make_model(toy_target())
    model = fam.build_model()
    h = {"eta_pfs": -0.3, "tau_pfs": 0.2, "intercept": -0.1, "slope": 0.6, "residual_sd": 0.15, "rho_w": 0.45}
    pt = point_for(model, h)
    obs_logp = model.compile_logp(vars=model.observed_RVs, jacobian=False, mode=FAST)(pt)

    eta, tau, rho_b = brma_from_product_normal(*(h[n] for n in HYPER[:5]))
    sb = np.array([[tau[0] ** 2, rho_b * tau[0] * tau[1]], [rho_b * tau[0] * tau[1], tau[1] ** 2]])
    ys = [*fam.y_pfs, TOY_YS]
    ss = [*fam.se_pfs, TOY_SS]
    yt = [*fam.y_os, TOY_YT]
    st = [*fam.se_os, TOY_ST]
    expected = 0.0
    for a, sa, b, sbb in zip(ys, ss, yt, st, strict=True):
        sw = np.array([[sa**2, h["rho_w"] * sa * sbb], [h["rho_w"] * sa * sbb, sbb**2]])
        expected += stats.multivariate_normal(eta, sb + sw).logpdf([a, b])
    assert obs_logp == pytest.approx(expected, rel=1e-10)


def test_target_without_os_enters_only_the_pfs_margin():
    fam = make_model(toy_target(rho_os=False))
    model = fam.build_model()
    h = {"eta_pfs": -0.3, "tau_pfs": 0.2, "intercept": -0.1, "slope": 0.6, "residual_sd": 0.15, "rho_w": 0.45}
    pt = point_for(model, h)
    target_logp = model.compile_logp(vars=[model["target_pfs"]], jacobian=False, mode=FAST)(pt)
    assert target_logp == pytest.approx(stats.norm(-0.3, math.hypot(0.2, TOY_SS)).logpdf(TOY_YS))


# ---- analytic agreement ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rho_w", "with_os", "hr", "sd"),
    [(0.0, False, 0.742, 0.109), (0.0, True, 0.751, 0.096), (0.5, True, 0.758, 0.104)],
)
def test_toy_table_closed_form(rho_w, with_os, hr, sd):
    y = [TOY_YS, TOY_YT] if with_os else [TOY_YS]
    sw = np.array([[TOY_SS**2, rho_w * TOY_SS * TOY_ST], [rho_w * TOY_SS * TOY_ST, TOY_ST**2]])
    mean, cov = forecast_fixed_hyperparameters(TOY_ETA, TOY_TAU, TOY_RHO_B, y, sw if with_os else sw[:1, :1])
    assert math.exp(mean[1]) == pytest.approx(hr, abs=5e-4)
    assert math.sqrt(cov[1, 1]) == pytest.approx(sd, abs=5e-4)


def test_product_normal_conversion_matches_toy():
    eta, tau, rho_b = brma_from_product_normal(*(TOY_PN[n] for n in HYPER[:5]))
    np.testing.assert_allclose(eta, TOY_ETA, atol=1e-12)
    np.testing.assert_allclose(tau, TOY_TAU, atol=1e-12)
    assert rho_b == pytest.approx(TOY_RHO_B)


@pytest.mark.parametrize(("rho_w", "with_os"), [(0.0, False), (0.0, True), (0.5, True), (0.3, False)])
def test_model_target_conditional_equals_closed_form(rho_w, with_os):
    """With hyperparameters fixed, the model's draw of the target's true effects is N(m, V) of methods §d."""
    fam = make_model(toy_target(rho_os=with_os), priors=SurrogacyPriors(rho_w=FixedValue(value=rho_w)))
    model = fam.build_model()
    fn = value_fn(model, "target_mu_pfs", "target_mu_os")
    vals = dict(TOY_PN)
    at = {z: np.array(fn(point_for(model, vals, z=z))) for z in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]}
    mean = at[(0.0, 0.0)]
    chol = np.column_stack([at[(1.0, 0.0)] - mean, at[(0.0, 1.0)] - mean])
    cov = chol @ chol.T

    sw = np.array([[TOY_SS**2, rho_w * TOY_SS * TOY_ST], [rho_w * TOY_SS * TOY_ST, TOY_ST**2]])
    y = [TOY_YS, TOY_YT] if with_os else [TOY_YS, None]
    ref_mean, ref_cov = forecast_fixed_hyperparameters(TOY_ETA, TOY_TAU, TOY_RHO_B, y, sw)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-10)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-10)
    if with_os and rho_w == 0.5:
        assert math.exp(mean[1]) == pytest.approx(0.758, abs=5e-4)


def test_target_conditional_numpy_matches_precision_form_over_draws():
    rng = np.random.default_rng(7)
    n = 50
    h = {
        "eta_pfs": rng.normal(-0.3, 0.3, n),
        "tau_pfs": rng.uniform(0.05, 0.5, n),
        "intercept": rng.normal(0, 0.2, n),
        "slope": rng.normal(0.4, 0.5, n),
        "residual_sd": rng.uniform(0.01, 0.4, n),
        "rho_w": rng.uniform(0.2, 0.7, n),
    }
    m_s, m_t, v11, v12, v22 = target_conditional(*(h[k] for k in HYPER), TOY_YS, TOY_SS, TOY_YT, TOY_ST)
    for i in range(n):
        eta, tau, rb = brma_from_product_normal(*(h[k][i] for k in HYPER[:5]))
        r = h["rho_w"][i]
        sw = np.array([[TOY_SS**2, r * TOY_SS * TOY_ST], [r * TOY_SS * TOY_ST, TOY_ST**2]])
        mean, cov = forecast_fixed_hyperparameters(eta, tau, rb, [TOY_YS, TOY_YT], sw)
        np.testing.assert_allclose([m_s[i], m_t[i]], mean, atol=1e-9)
        np.testing.assert_allclose([v11[i], v12[i], v22[i]], [cov[0, 0], cov[0, 1], cov[1, 1]], atol=1e-9)


def test_later_estimate_graph_uses_independent_increments():
    tg = toy_target(later_deaths=160)
    fam = make_model(tg, priors=SurrogacyPriors(rho_w=FixedValue(value=0.5)))
    model = fam.build_model()
    fn = value_fn(model, "target_mu_os", "os_hr_later_estimate")
    i_i, i_f = 1 / TOY_ST**2, 160 / 4
    for z, zf in [((0.3, -1.0), 0.0), ((0.0, 0.5), 1.7)]:
        mu_t, later = fn(point_for(model, TOY_PN, z=z, zf=zf))
        expected = (i_i * TOY_YT + (i_f - i_i) * mu_t + math.sqrt(i_f - i_i) * zf) / i_f
        assert math.log(later) == pytest.approx(expected, abs=1e-12)

    fam0 = make_model(toy_target(rho_os=False, later_deaths=160))
    model0 = fam0.build_model()
    fn0 = value_fn(model0, "target_mu_os", "os_hr_later_estimate")
    mu_t, later = fn0(point_for(model0, TOY_PN | {"rho_w": 0.5}, z=(0.2, 0.1), zf=-1.3))
    assert math.log(later) == pytest.approx(mu_t - 1.3 * 2 / math.sqrt(160), abs=1e-12)


# ---- quantities and probabilities --------------------------------------------------------------


def test_toy_probabilities_match_methods():
    """Methods §d: P(HR_OS < 1) = 0.996 and P(final OS significant) = 0.31.

    (Final deaths = 1.6 x interim deaths, rho_w = 0.5.)
    """
    interim_deaths = 4 / TOY_ST**2
    fam = make_model(TargetTrial("toy", TOY_YS, TOY_SS, TOY_YT, TOY_ST, round(1.6 * interim_deaths)))
    idata = fake_idata({k: np.full(4, v) for k, v in (TOY_PN | {"rho_w": 0.5}).items()})
    probs = {d.name: d.values for d in fam.probabilities(idata)}
    assert set(probs) == {"P(slope>0)", "P(os_hr<1)", "P(os_hr<0.8)", "P(later_os_significant)"}
    assert probs["P(os_hr<1)"].mean() == pytest.approx(0.996, abs=5e-4)
    assert probs["P(later_os_significant)"].mean() == pytest.approx(0.31, abs=5e-3)
    mean, cov = forecast_fixed_hyperparameters(
        TOY_ETA,
        TOY_TAU,
        TOY_RHO_B,
        [TOY_YS, TOY_YT],
        [[TOY_SS**2, 0.5 * TOY_SS * TOY_ST], [0.5 * TOY_SS * TOY_ST, TOY_ST**2]],
    )
    assert probs["P(os_hr<0.8)"].mean() == pytest.approx(
        stats.norm.cdf((math.log(0.8) - mean[1]) / math.sqrt(cov[1, 1]))
    )
    assert probs["P(os_hr<1)"].shape == (1, 4)


@pytest.mark.parametrize("with_os", [True, False])
def test_later_significance_closed_form_matches_simulation(with_os):
    tg = toy_target(rho_os=with_os, later_deaths=260)
    fam = make_model(tg)
    rng = np.random.default_rng(11)
    n = 6
    h = {
        "eta_pfs": rng.normal(-0.3, 0.1, n),
        "tau_pfs": rng.uniform(0.1, 0.4, n),
        "intercept": rng.normal(-0.05, 0.1, n),
        "slope": rng.normal(0.4, 0.2, n),
        "residual_sd": rng.uniform(0.05, 0.2, n),
        "rho_w": rng.uniform(0.2, 0.7, n),
    }
    p = {d.name: d.values.ravel() for d in fam.probabilities(fake_idata(h))}["P(later_os_significant)"]
    m_t, sd_t = fam.target_conditional_draws(fake_idata(h))
    m_t, sd_t = m_t.ravel(), sd_t.ravel()
    sims = 400_000
    for i in range(n):
        theta = rng.normal(m_t[i], sd_t[i], sims)
        if with_os:
            i_i, i_f = tg.interim_information, tg.later_information
            y_delta = rng.normal(theta, 1 / math.sqrt(i_f - i_i))
            y_f = (i_i * tg.y_os + (i_f - i_i) * y_delta) / i_f
        else:
            y_f = rng.normal(theta, 2 / math.sqrt(tg.later_deaths))
        assert p[i] == pytest.approx(np.mean(y_f < tg.success_bound), abs=4e-3)


def test_quantities_names_and_values():
    fam = make_model(toy_target())
    h = {
        "eta_pfs": np.array([-0.3, -0.2, -0.4]),
        "tau_pfs": np.array([0.2, 0.3, 0.25]),
        "intercept": np.array([-0.1, 0.05, 0.2]),
        "slope": np.array([0.5, -0.2, 0.0]),
        "residual_sd": np.array([0.1, 0.2, 0.05]),
        "rho_w": np.array([0.5, 0.5, 0.5]),
        "os_hr": np.array([0.7, 0.8, 0.9]),
        "os_hr_later_estimate": np.array([0.72, 0.85, 0.95]),
    }
    q = {d.name: d for d in fam.quantities(fake_idata(h))}
    assert list(q) == [
        "slope",
        "intercept",
        "residual_sd",
        "r2_trial",
        "ste_hr_pfs",
        "os_hr",
        "os_hr_later_estimate",
    ]
    assert q["os_hr"].scale == "hr" and q["ste_hr_pfs"].scale == "hr" and q["residual_sd"].scale == "sd"
    b2 = h["slope"] ** 2 * h["tau_pfs"] ** 2
    np.testing.assert_allclose(q["r2_trial"].values.ravel(), b2 / (b2 + h["residual_sd"] ** 2))
    ste = q["ste_hr_pfs"].values.ravel()
    assert ste[0] == pytest.approx(math.exp(-(-0.1 + 1.959964 * 0.1) / 0.5), rel=1e-6)
    assert np.isnan(ste[1]) and np.isnan(ste[2])  # slope <= 0: undefined
    assert [d.name for d in make_model().quantities(fake_idata(h))][-1] == "ste_hr_pfs"


def test_ste_definition():
    # At x = log(STE) the upper 95% prediction limit of the true OS log HR is exactly 0.
    a, b, s = -0.05, 0.4, 0.1
    ste = surrogate_threshold_effect(a, b, s)
    assert a + b * math.log(ste) + 1.959964 * s == pytest.approx(0.0, abs=1e-6)
    assert surrogate_threshold_effect(0.2, 1e-9, 0.1) == pytest.approx(math.exp(-50))  # finite, clipped
    assert np.isnan(surrogate_threshold_effect(0.2, -0.4, 0.1))  # slope <= 0: no threshold exists


def test_p_slope_positive_without_target():
    fam = make_model()
    probs = fam.probabilities(fake_idata({"slope": np.array([0.3, -0.1, 0.2, 0.5])}))
    assert [d.name for d in probs] == ["P(slope>0)"]
    assert probs[0].values.mean() == 0.75


def test_assumptions_are_sentences():
    a = make_model(toy_target()).assumptions()
    text = " ".join(a).lower()
    for word in ("other drugs", "exchangeable", "proportional", "rho_w", "independent increment"):
        assert word in text
    assert all(s.endswith(".") for s in a)
    assert "uniform(0.2, 0.7)" in text


# ---- slow: real sampling -----------------------------------------------------------------------


def simulate_reference(rng, k, truth, se_s, se_t):
    mu_s = rng.normal(truth["eta_pfs"], truth["tau_pfs"], k)
    mu_t = truth["intercept"] + truth["slope"] * mu_s + rng.normal(0, truth["residual_sd"], k)
    e1 = rng.standard_normal(k)
    e2 = truth["rho_w"] * e1 + math.sqrt(1 - truth["rho_w"] ** 2) * rng.standard_normal(k)
    return mu_s, mu_t, mu_s + se_s * e1, mu_t + se_t * e2


@pytest.mark.slow
def test_recovery_of_slope_and_residual_sd():

    rng = np.random.default_rng(2024)
    k = 40
    truth = {
        "eta_pfs": -0.4,
        "tau_pfs": 0.4,
        "intercept": -0.05,
        "slope": 0.5,
        "residual_sd": 0.12,
        "rho_w": 0.5,
    }
    se_s, se_t = rng.uniform(0.05, 0.12, k), rng.uniform(0.06, 0.14, k)
    _, _, y_s, y_t = simulate_reference(rng, k, truth, se_s, se_t)
    fam = SurrogacyModel.from_arrays(y_s, se_s, y_t, se_t)
    # numpyro, the backend of the shipped surrogacy specs: seconds of XLA compile where PyMC's C backend and its
    # chain processes took a minute from an empty cache under the suite's load
    idata = sample(
        fam.build_model(), SamplerConfig(draws=1000, tune=1000, chains=2, seed=5, target_accept=0.8, backend="numpyro")
    )
    assert int(idata.sample_stats["diverging"].sum()) == 0
    # Tolerances are about 1.5 posterior SDs (here: slope 0.07, intercept 0.04, residual_sd 0.03).
    for name, tol in (
        ("slope", 0.12),
        ("intercept", 0.07),
        ("residual_sd", 0.05),
        ("eta_pfs", 0.1),
        ("tau_pfs", 0.1),
    ):
        d = idata.posterior[name].values.ravel()
        lo, hi = np.quantile(d, [0.025, 0.975])
        assert lo < truth[name] < hi, (name, lo, hi)
        assert abs(d.mean() - truth[name]) < tol, (name, d.mean())


def _harmoni2_target() -> TargetTrial:
    # HARMONi-2 PFS 0.51 (0.38-0.69); OS interim 0.784 with 157 deaths (news report); final at ~400 deaths.
    se_os = 2 / math.sqrt(157)
    return TargetTrial(
        "HARMONi-2",
        math.log(0.51),
        (math.log(0.69) - math.log(0.38)) / 3.919928,
        math.log(0.784),
        se_os,
        later_deaths=400,
    )


@pytest.mark.slow
def test_real_reference_fit_with_harmoni2_target():
    import pandas as pd

    from harmoni_bayes.reference import select_reference
    from test_reference import CSV, with_derived

    sel = select_reference(with_derived(pd.read_csv(CSV)))
    fam = SurrogacyModel(sel, target=_harmoni2_target())
    # numpyro, the backend of the shipped surrogacy specs: seconds of XLA compile where PyMC's C backend and its
    # chain processes took a minute from an empty cache under the suite's load
    idata = sample(
        fam.build_model(), SamplerConfig(draws=1000, tune=1000, chains=2, seed=3, target_accept=0.8, backend="numpyro")
    )
    assert int(idata.sample_stats["diverging"].sum()) == 0
    q = {d.name: d.values for d in fam.quantities(idata)}
    p = {d.name: d.values for d in fam.probabilities(idata)}
    # Rao-Blackwellised probabilities agree with the plain indicator over the draws of os_hr.
    assert p["P(os_hr<1)"].mean() == pytest.approx((q["os_hr"] < 1).mean(), abs=0.02)
    assert p["P(os_hr<0.8)"].mean() == pytest.approx((q["os_hr"] < 0.8).mean(), abs=0.04)
    sig = np.log(q["os_hr_later_estimate"]) < _harmoni2_target().success_bound
    assert p["P(later_os_significant)"].mean() == pytest.approx(sig.mean(), abs=0.04)
    assert 0 < np.median(q["slope"]) < 1
    assert 0.4 < np.median(q["os_hr"]) < 1.0
    # The exact (grid) engine on the same data: NUTS agrees within its Monte Carlo error (2000 draws; tolerances
    # about 4 MCSEs of a median or a 2.5% quantile, and of a probability).  This is the check of the PyMC model
    # (its calibration is tests/test_surrogacy_grid.py's, on the engine).
    fit = fam.exact_fit(100, np.random.default_rng(0))
    ex = {s.name: s.stats for s in fit.quantities}
    sd = {name: float(np.std(q[name])) for name in ("slope", "residual_sd", "os_hr", "os_hr_later_estimate")}
    for name in sd:
        for stat, level, tol in (("median", 0.5, 0.12), ("q2.5", 0.025, 0.25), ("q97.5", 0.975, 0.25)):
            assert np.quantile(q[name], level) == pytest.approx(ex[name][stat], abs=tol * sd[name]), (name, stat)
    exact_p = dict(fit.probabilities)
    for name in ("P(os_hr<1)", "P(os_hr<0.8)", "P(later_os_significant)"):
        assert p[name].mean() == pytest.approx(exact_p[name], abs=0.02), name
