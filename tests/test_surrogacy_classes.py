"""Class-aware surrogacy: data with classes, the closed forms against independent algebra, the masked
likelihood, the stacked forecast's weighting, and (slow) parameter recovery and SBC of the exchangeable model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harmoni_bayes.errors import ModelError, SpecError
from harmoni_bayes.evidence import load_reference_trials
from harmoni_bayes.models import get_family
from harmoni_bayes.models.base import EvidenceTables
from harmoni_bayes.models.surrogacy_classes import (
    ClassData,
    ClassSurrogacyModel,
    OSForecastClassesModel,
    _Forecast,
    os_given_pfs,
    target_given_relationship,
)
from harmoni_bayes.priors import FixedValue, NormalPrior
from harmoni_bayes.reference import class_of, select_reference
from harmoni_bayes.specs import load_spec, parse_spec, with_overrides
from helpers import REPO

FORECAST = REPO / "models" / "harmoni2_os_forecast_now.toml"
CLASSES = REPO / "models" / "nsclc_surrogacy_classes.toml"


def _family(path, **over):
    spec = with_overrides(load_spec(path), **over)
    return get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))


# --------------------------------------------------------------------------- data and classes


def test_class_of_splits_only_the_named_groups_by_line():
    assert class_of("IO", "1L") == "IO 1L"
    assert class_of("IO", "1L maintenance") == "IO 1L"
    assert class_of("IO", "2L") == "IO 2L"
    assert class_of("IO", "2L+ (after TKI)", split_lines=()) == "IO"
    assert class_of("EGFR-TKI", "1L") == "EGFR-TKI"


def test_interval_levels_change_the_se_as_the_spec_says():
    ref = load_reference_trials()
    published = select_reference(ref, groups=None, lines=None).used.set_index("comparison")
    as_95 = select_reference(ref, groups=None, lines=None, ci_levels="assume_95").used.set_index("comparison")
    dropped = select_reference(ref, groups=None, lines=None, ci_levels="exclude")
    # ZODIAC's OS interval is a 97.52% CI: read at 95% it implies a larger SE by the ratio of normal quantiles
    ratio = stats.norm.ppf(0.5 + 0.9752 / 2) / stats.norm.ppf(0.975)
    assert as_95.at["ZODIAC", "se_os"] == pytest.approx(published.at["ZODIAC", "se_os"] * ratio)
    assert as_95.at["KEYNOTE-189", "se_os"] == pytest.approx(published.at["KEYNOTE-189", "se_os"])
    reasons = dict(zip(dropped.excluded.trial, dropped.excluded.reason, strict=False))
    assert "97.52% CI" in reasons["ZODIAC"] and "96% CI" in reasons["CheckMate 057"]


def test_forecast_reference_has_every_class_and_the_ivonescimab_trials_once():
    fam, record = _family(FORECAST)
    counts = fam.data.counts
    assert set(counts) >= {"IO 1L", "IO 2L", "IO+antiVEGF", "antiVEGF", "EGFR-TKI", "chemo", "ivonescimab"}
    # HARMONi enters from the trial table (its own class), not also from the reference table
    assert fam.data.labels.count("HARMONi") == 1
    assert fam.data.classes[fam.data.class_index[fam.data.labels.index("HARMONi")]] == "ivonescimab"
    assert "HARMONi-2" not in fam.data.labels  # the target is never its own reference
    moved = record.excluded[record.excluded.trial == "HARMONi"]
    assert any("enters from the trial table" in r for r in moved.reason)


def test_as_of_2024_is_a_hindcast_for_the_reference_and_the_trial_class():
    fam, record = _family(FORECAST, as_of="2024-09-30")
    assert fam.target.y_os is None  # no HARMONi-2 OS data yet
    used_ref = record.used[record.used.table == "reference"]
    assert (used_ref.disclosed <= "2024-09-30").all()
    # HARMONi-A had an OS interim (May 2024); HARMONi and HARMONi-6 had no OS yet
    ivo = [
        lab
        for lab, k in zip(fam.data.labels, fam.data.class_index, strict=True)
        if fam.data.classes[k] == "ivonescimab"
    ]
    assert ivo == ["HARMONi-A"]


def test_unknown_target_class_and_bad_weights_are_refused():
    spec = load_spec(FORECAST)
    bad = spec.model_copy(update={"target": spec.target.model_copy(update={"target_class": "IO 3L"})})
    with pytest.raises(ModelError, match="IO 3L"):
        OSForecastClassesModel.from_spec(bad, EvidenceTables(bad, None))
    raw = {
        "model": "os_forecast_classes",
        "name": "x",
        "title": "x",
        "evidence": {"trials": ["HARMONi-2"]},
        "target": {"class": {"IO 1L": 0.5, "antiVEGF": -1}},
    }
    with pytest.raises(SpecError):
        parse_spec(raw)


# --------------------------------------------------------------------------- closed forms


def test_target_conditional_equals_gaussian_conditioning_of_the_generative_model():
    """(e_S, eps, e_T) jointly normal; mu_T and y_T linear in them; condition on y_T by linear algebra."""
    a, b, psi, rho, y_s, s_s, y_t, s_t = -0.1, 0.4, 0.15, 0.5, -0.67, 0.15, -0.31, 0.13
    cov_e = np.array([[s_s**2, 0, rho * s_s * s_t], [0, 1, 0], [rho * s_s * s_t, 0, s_t**2]])
    # mu_T = a + b (y_s - e_S) + psi eps ;  y_T = mu_T + e_T
    l_mu = np.array([-b, psi, 0.0])
    l_y = np.array([-b, psi, 1.0])
    m0 = a + b * y_s
    s_mm, s_my, s_yy = l_mu @ cov_e @ l_mu, l_mu @ cov_e @ l_y, l_y @ cov_e @ l_y
    mean = m0 + s_my / s_yy * (y_t - m0)
    var = s_mm - s_my**2 / s_yy
    m, sd, lw = target_given_relationship(a, b, psi, rho, y_s, s_s, y_t, s_t)
    assert m == pytest.approx(mean) and sd == pytest.approx(math.sqrt(var))
    assert lw == pytest.approx(stats.norm.logpdf(y_t, m0, math.sqrt(s_yy)))
    m1, sd1, lw1 = target_given_relationship(a, b, psi, rho, y_s, s_s)
    assert m1 == pytest.approx(m0) and sd1 == pytest.approx(math.sqrt(s_mm)) and lw1 == 0


def test_mixture_weights_are_the_posterior_class_probabilities():
    """Fixed relationships (every draw the same): the forecast is the exact two-component posterior mixture."""
    y_s, s_s, y_t, s_t, rho = -0.67, 0.15, -0.31, 0.13, 0.4
    rels = [(-0.1, 0.4, 0.1), (0.0, 0.05, 0.1)]  # an "IO-like" and an "antiVEGF-like" line
    prior = [0.3, 0.7]
    parts = [target_given_relationship(a, b, p, rho, y_s, s_s, y_t, s_t) for a, b, p in rels]
    shape = (2, 50, 1)
    fc = _Forecast(
        np.concatenate([np.full(shape, m) for m, _, _ in parts], -1),
        np.concatenate([np.full(shape, s) for _, s, _ in parts], -1),
        np.concatenate([np.full(shape, lw + math.log(w)) for (_, _, lw), w in zip(parts, prior, strict=True)], -1),
    )
    post = np.array([w * math.exp(lw) for (_, _, lw), w in zip(parts, prior, strict=True)])
    post /= post.sum()
    exact = sum(p * stats.norm.cdf((0 - m) / s) for p, (m, s, _) in zip(post, parts, strict=True))
    assert fc.prob_below(0.0).mean() == pytest.approx(exact)
    draws = fc.sample(np.random.default_rng(1))
    assert draws.shape == (2, 50)


def test_the_include_mask_removes_exactly_one_comparisons_likelihood():
    """logp(all) - logp(without comparison j) = j's PFS and OS|PFS log densities, computed with numpy; where the
    class intercepts are integrated out, j's OS density given the other comparisons of its class."""
    pytest.importorskip("pymc")
    import pytensor

    fam, _ = _family(CLASSES)
    d, j = fam.data, 3
    c = d.class_index[j]
    mode = pytensor.compile.mode.FAST_COMPILE
    for r, model in fam.build_models().items():
        point = model.initial_point()
        logp = model.compile_logp(mode=mode)
        names = ["eta_pfs", "tau_pfs", "rho_w", "intercept", "slope", "residual_sd"]
        names += ["intercept_mean", "intercept_sd"] if r == "exchangeable" else []
        integrated = r not in ("pooled", "pooled_no_intercept")  # the class intercepts
        values = dict(
            zip(
                names,
                model.compile_fn(
                    model.replace_rvs_by_values([model[f"{r}::{n}"] for n in names]),
                    inputs=model.value_vars,
                    on_unused_input="ignore",
                    mode=mode,
                )(point),
                strict=True,
            )
        )
        full = logp(point)
        mask = np.ones(len(d.labels))
        mask[j] = 0.0
        model.set_data(f"{r}::include", mask)
        dropped = logp(point)

        def at(n, values=values):
            v = np.asarray(values[n])
            return v[c] if v.ndim else v

        eta, tau = at("eta_pfs"), at("tau_pfs")
        pfs = stats.norm.logpdf(d.y_pfs[j], eta, math.hypot(tau, d.se_pfs[j]))
        if integrated:
            prior = fam.priors.intercept
            a_mu, a_sd = (
                (float(values["intercept_mean"]), float(values["intercept_sd"]))
                if r == "exchangeable"
                else (prior.mu, prior.sigma)
            )
            m, sd = os_given_pfs(eta, tau, 0.0, at("slope"), at("residual_sd"), at("rho_w"), d.y_pfs, d.se_pfs, d.se_os)
            others = (d.class_index == c) & (np.arange(len(d.labels)) != j)
            prec, total = np.sum(1 / sd[others] ** 2), np.sum((d.y_os - m)[others] / sd[others] ** 2)
            # the intercept given the class's other comparisons, then comparison j's OS estimate given that
            mean, var = (a_mu + a_sd**2 * total) / (1 + a_sd**2 * prec), a_sd**2 / (1 + a_sd**2 * prec)
            own = pfs + stats.norm.logpdf(d.y_os[j], m[j] + mean, math.sqrt(sd[j] ** 2 + var))
        else:
            m, sd = os_given_pfs(
                eta,
                tau,
                at("intercept"),
                at("slope"),
                at("residual_sd"),
                at("rho_w"),
                d.y_pfs[j],
                d.se_pfs[j],
                d.se_os[j],
            )
            own = pfs + stats.norm.logpdf(d.y_os[j], m, sd)
        assert full - dropped == pytest.approx(own, rel=1e-6), r


@pytest.mark.parametrize("r", ["independent", "exchangeable"])
def test_the_intercepts_integrate_out_exactly(r):
    """The class blocks' likelihood is the joint model's with each class intercept integrated over its normal
    prior (N(intercept_mean, intercept_sd^2) for the exchangeable classes; numerical quadrature per class), and the
    intercept is the exact conditional: at a standardised draw of 0 the quadrature mean, per unit of it the
    quadrature SD; at a point away from the initial one."""
    pytest.importorskip("pymc")
    import pytensor
    from scipy import integrate

    spec = load_spec(CLASSES)  # an intercept prior whose SD is not 1, so that SD and variance differ
    priors = spec.priors.model_copy(update={"intercept": NormalPrior(mu=-0.1, sigma=0.6)})
    fam = get_family(spec.model).from_spec(spec.model_copy(update={"priors": priors}), EvidenceTables(spec, None))[0]
    d = fam.data
    model = fam.build_models()[r]
    mode = pytensor.compile.mode.FAST_COMPILE
    rng = np.random.default_rng(8)
    point = {k: v + rng.uniform(-0.4, 0.4, np.shape(v)) for k, v in model.initial_point().items()}
    names = ["eta_pfs", "tau_pfs", "rho_w", "slope", "residual_sd", "intercept"]
    names += ["intercept_mean", "intercept_sd"] if r == "exchangeable" else []
    outs = [model[f"{r}::{n}"] for n in names] + [model[f"{r}::loglik"]]
    fn = model.compile_fn(
        model.replace_rvs_by_values(outs), inputs=model.value_vars, on_unused_input="ignore", mode=mode
    )
    *vals, loglik = fn(point)
    v = dict(zip(names, vals, strict=True))
    idx = d.class_index
    eta, tau = v["eta_pfs"][idx], v["tau_pfs"][idx]
    m, sd = os_given_pfs(eta, tau, 0.0, v["slope"][idx], v["residual_sd"][idx], v["rho_w"], d.y_pfs, d.se_pfs, d.se_os)
    expected = float(np.sum(stats.norm.logpdf(d.y_pfs, eta, np.hypot(tau, d.se_pfs))))
    if r == "exchangeable":
        a_mu, a_sd, z0 = float(v["intercept_mean"]), float(v["intercept_sd"]), point[f"{r}::z"][0]
    else:
        a_mu, a_sd, z0 = fam.priors.intercept.mu, fam.priors.intercept.sigma, point[f"{r}::intercept_z"]
    for c in range(len(d.classes)):
        rows = idx == c
        if not rows.any():
            continue
        lo, hi = a_mu - 12 * a_sd, a_mu + 12 * a_sd
        # the likelihood's peak over the prior's range, taken out so that the integrands do not underflow
        shift = max(np.sum(stats.norm.logpdf(d.y_os[rows], g + m[rows], sd[rows])) for g in np.linspace(lo, hi, 2001))

        def integrand(a, power, rows=rows, shift=shift):
            like = np.exp(np.sum(stats.norm.logpdf(d.y_os[rows], a + m[rows], sd[rows])) - shift)
            return a**power * like * stats.norm.pdf(a, a_mu, a_sd)

        moments = [integrate.quad(integrand, lo, hi, args=(k,), epsabs=0, limit=400)[0] for k in (0, 1, 2)]
        expected += math.log(moments[0]) + shift
        mean, var = moments[1] / moments[0], moments[2] / moments[0] - (moments[1] / moments[0]) ** 2
        assert v["intercept"][c] == pytest.approx(mean + math.sqrt(var) * z0[c], rel=1e-6, abs=1e-9), c
    assert float(loglik) == pytest.approx(expected, rel=1e-8)


def test_the_centred_intercept_keeps_the_specs_prior_on_intercept_and_slope():
    """NUTS samples one line's intercept at the comparisons' PFS log HR (``intercept_centred``): its log density at
    any point equals the spec's Normal prior of the intercept itself (a shear, Jacobian 1), and the prior draws of
    (intercept, slope) are the spec's independent normals.  A fixed intercept is neither centred nor integrated,
    in the independent block the value once per class."""
    pytest.importorskip("pymc")
    import pymc as pm
    import pytensor

    fam, _ = _family(CLASSES)
    prior = fam.priors.intercept
    rng = np.random.default_rng(3)
    mode = pytensor.compile.mode.FAST_COMPILE
    models = fam.build_models()
    fixed = _family(REPO / "models" / "harmoni2_os_forecast.toml")[0].build_models()["pooled_no_intercept"]
    assert [v.name for v in fixed.free_RVs if v.name.split("::")[1].startswith("intercept")] == []
    assert "pooled_no_intercept::centre" not in fixed.named_vars
    spec = load_spec(CLASSES)
    spec = spec.model_copy(update={"priors": spec.priors.model_copy(update={"intercept": FixedValue(value=0.1)})})
    ind = get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))[0].build_models()["independent"]
    assert [v.name for v in ind.free_RVs if v.name.split("::")[1].startswith("intercept")] == []
    np.testing.assert_array_equal(pm.draw(ind["independent::intercept"]), np.full(len(fam.data.classes), 0.1))
    # as a prior of SD 0 in the integral: the likelihood at the value, computed with numpy
    d, idx = fam.data, fam.data.class_index
    at = {k: v + rng.uniform(-0.4, 0.4, np.shape(v)) for k, v in ind.initial_point().items()}
    names = ["eta_pfs", "tau_pfs", "rho_w", "slope", "residual_sd", "loglik"]
    fn = ind.compile_fn(
        ind.replace_rvs_by_values([ind[f"independent::{n}"] for n in names]),
        inputs=ind.value_vars,
        on_unused_input="ignore",
        mode=mode,
    )
    eta, tau, rho, slope, psi, loglik = fn(at)
    m, sd = os_given_pfs(eta[idx], tau[idx], 0.1, slope[idx], psi[idx], rho, d.y_pfs, d.se_pfs, d.se_os)
    pfs = stats.norm.logpdf(d.y_pfs, eta[idx], np.hypot(tau[idx], d.se_pfs))
    assert float(loglik) == pytest.approx(float(np.sum(pfs + stats.norm.logpdf(d.y_os, m, sd))), rel=1e-10)
    r = "pooled"
    model = models[r]
    centred = model[f"{r}::intercept_centred"]
    point = {k: v + rng.uniform(-0.5, 0.5, np.shape(v)) for k, v in model.initial_point().items()}
    term = model.compile_logp(vars=[centred], mode=mode)(point)
    intercept = model.compile_fn(
        model.replace_rvs_by_values([model[f"{r}::intercept"]]),
        inputs=model.value_vars,
        on_unused_input="ignore",
        mode=mode,
    )(point)[0]
    assert term == pytest.approx(stats.norm.logpdf(intercept, prior.mu, prior.sigma).sum(), rel=1e-9)
    a, b = pm.draw([model[f"{r}::intercept"], model[f"{r}::slope"]], draws=4000, random_seed=5)
    a, b = np.ravel(a), np.ravel(b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.06
    assert np.mean(a) == pytest.approx(prior.mu, abs=0.06) and np.std(a) == pytest.approx(prior.sigma, rel=0.05)


def test_padded_comparisons_add_nothing_to_the_numpyro_log_density():
    """numpyro's program takes the data as inputs, the comparisons padded to a multiple of 16 with weight 0:
    the same log density and gradient as the unpadded data, at a point away from the initial one."""
    pytest.importorskip("jax")
    import jax
    from pymc.sampling.jax import get_jaxified_graph

    from harmoni_bayes.inference import _data_as_inputs, _padded_data

    fam, _ = _family(CLASSES)
    n = len(fam.data.labels)
    size = -(-n // 16) * 16
    assert size > n
    rng = np.random.default_rng(4)
    for r, model in fam.build_models().items():
        (logp,), shared, inputs = _data_as_inputs([model.logp()])
        dims = model.named_vars_to_dims
        rows = {v.name: i for i, v in enumerate(shared) if dims.get(v.name, ())[:1] == ("comparison",)}
        assert {name.split("::")[1] for name in rows} == {"include", "y_pfs", "y_os", "se_pfs", "se_os", "class_index"}
        fn = get_jaxified_graph(inputs=model.value_vars + inputs, outputs=[logp])
        point = [v + rng.uniform(-0.5, 0.5, np.shape(v)) for v in model.initial_point().values()]
        plain, padded = _padded_data(model, shared, None), _padded_data(model, shared, fam.row_padding)
        assert [len(plain[i]) for i in rows.values()] == [n] * len(rows)
        assert [len(padded[i]) for i in rows.values()] == [size] * len(rows)
        assert padded[rows[f"{r}::include"]][n:].sum() == 0
        # the rest (data without a comparison dimension, if any) are not padded
        rest = [i for i in range(len(shared)) if i not in rows.values()]
        assert [np.shape(padded[i]) for i in rest] == [np.shape(plain[i]) for i in rest]

        def value_and_grad(data, fn=fn, point=point):
            grad = jax.value_and_grad(lambda *z: fn(*z, *data)[0], argnums=tuple(range(len(point))))
            return jax.jit(grad)(*point)

        (v0, g0), (v1, g1) = value_and_grad(plain), value_and_grad(padded)
        assert float(v1) == pytest.approx(float(v0), rel=1e-12), r
        for a, b in zip(g0, g1, strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_numpyro_with_data_inputs_gives_what_pymc_gives():
    """The data-as-inputs numpyro path: the variables, dims and sample stats of PyMC's own JAX path, and the same
    draws again from the same seed (the reproducibility across processes and compile caches is in
    docs/benchmarks.md)."""
    pytest.importorskip("numpyro")
    from harmoni_bayes.config import SamplerConfig
    from harmoni_bayes.inference import _pm_sample, sample

    fam, _ = _family(CLASSES)
    cfg = SamplerConfig(draws=30, tune=30, chains=2, seed=9, backend="numpyro")
    model = fam.build_models()["exchangeable"]
    ours, again = sample(model, cfg, fam.row_padding), sample(model, cfg, fam.row_padding)
    theirs = _pm_sample(model, cfg)  # PyMC's numpyro path, the data baked in
    for group in ("posterior", "sample_stats"):
        assert set(ours[group].data_vars) == set(theirs[group].data_vars), group
        for v in ours[group].data_vars:
            assert ours[group][v].dims == theirs[group][v].dims, v
            assert ours[group][v].shape == theirs[group][v].shape, v
    assert set(ours.groups()) == set(theirs.groups())
    assert ours.posterior["exchangeable::slope"].coords["class"].values.tolist() == fam.data.classes
    for v in ours.posterior.data_vars:
        np.testing.assert_array_equal(ours.posterior[v].values, again.posterior[v].values)


@pytest.mark.slow
def test_a_fit_of_the_same_structure_reuses_the_traced_program_with_the_same_draws():
    """``again`` above reused this process's program (``inference._PROGRAMS``); a program traced afresh gives the
    same draws, and a model of the same structure on other data (another as-of date: fewer comparisons, the same
    padded size) adds no program and no conversion to JAX of its own, while its draws are its own data's."""
    pytest.importorskip("numpyro")
    from harmoni_bayes import inference
    from harmoni_bayes.config import SamplerConfig

    cfg = SamplerConfig(draws=30, tune=30, chains=2, seed=9, backend="numpyro")
    fam, _ = _family(CLASSES)
    older, _ = _family(CLASSES, as_of="2025-06-30")
    assert len(older.data.labels) < len(fam.data.labels)
    assert -(-len(older.data.labels) // 16) == -(-len(fam.data.labels) // 16)
    inference._PROGRAMS.clear()
    inference._CONVERTED.clear()
    first = inference.sample(fam.build_models()["pooled"], cfg, fam.row_padding)
    programs, converted = dict(inference._PROGRAMS), dict(inference._CONVERTED)
    assert len(programs) == 2  # the sampler and the draws' deterministics
    assert len(converted) == 2  # the log density and the posterior's variables, converted to JAX
    other = inference.sample(older.build_models()["pooled"], cfg, older.row_padding)
    assert programs == inference._PROGRAMS  # reused, not traced again
    assert converted == inference._CONVERTED  # nor converted again
    assert not np.array_equal(other.posterior["pooled::slope"].values, first.posterior["pooled::slope"].values)
    inference._PROGRAMS.clear()
    inference._CONVERTED.clear()
    fresh = inference.sample(older.build_models()["pooled"], cfg, older.row_padding)
    for v in fresh.posterior.data_vars:
        np.testing.assert_array_equal(fresh.posterior[v].values, other.posterior[v].values)


def test_each_block_samples_with_its_own_target_accept(monkeypatch):
    """``sampler.block_target_accept`` sets the blocks it names; the others keep ``target_accept``."""
    from harmoni_bayes import inference
    from harmoni_bayes.run import run_spec

    spec = load_spec(CLASSES)
    raw = spec.model_dump(mode="json", exclude_none=True)
    raw["sampler"] |= {"target_accept": 0.9, "block_target_accept": {"exchangeable": 0.98}}
    seen = {}

    class Stop(Exception):
        pass

    def fake_sample(model, config, padding=None):
        seen[next(iter(model.named_vars)).split("::")[0]] = config.target_accept
        if len(seen) == len(spec.relationships):
            raise Stop
        return None

    monkeypatch.setattr(inference, "sample", fake_sample)
    with pytest.raises(Stop):
        run_spec(parse_spec(raw), method="mcmc")
    assert seen == {"pooled": 0.9, "independent": 0.9, "exchangeable": 0.98}


def test_a_block_target_accept_must_name_a_block():
    raw = load_spec(CLASSES).model_dump(mode="json", exclude_none=True)
    raw["sampler"]["block_target_accept"] = {"exchangable": 0.98, "pooled": 0.9}
    with pytest.raises(SpecError, match="'exchangable', not a sampled block of this model"):
        parse_spec(raw)
    raw["sampler"]["block_target_accept"] = {"pooled": 1.2}
    with pytest.raises(SpecError, match=r"block_target_accept\.pooled"):
        parse_spec(raw)


def test_a_block_target_accept_in_a_family_of_one_block_is_refused_when_read():
    raw = load_spec(REPO / "models" / "harmoni2_pfs_pdl1.toml").model_dump(mode="json", exclude_none=True)
    raw["sampler"]["block_target_accept"] = {"exchangeable": 0.98}
    with pytest.raises(SpecError, match="it is sampled as one block"):
        parse_spec(raw)


def test_the_report_states_each_blocks_target_accept():
    """The provenance table's method line gives the spec's target_accept and each block's own."""
    from harmoni_bayes.reporting.build import _provenance

    spec = load_spec(CLASSES).model_dump(mode="json", exclude_none=True)
    spec["sampler"] |= {"target_accept": 0.95, "block_target_accept": {"exchangeable": 0.98}}
    summary = SimpleNamespace(method="mcmc", spec="x", model="surrogacy_classes", as_of=None, evidence_rows=[])
    rows, _ = _provenance(SimpleNamespace(provenance={}, summary=summary, spec=spec))
    assert dict(rows)["Method"].endswith("target_accept 0.95 (exchangeable: 0.98)")


def test_a_model_is_converted_to_jax_once_and_again_when_it_changes():
    """``sample_numpyro`` reuses a model's JAX functions across fits of new data (``pm.set_data``), and converts
    the model again once it has a variable more."""
    pytest.importorskip("jax")
    import pymc as pm

    from harmoni_bayes.inference import _jaxified

    with pm.Model() as model:
        y = pm.Data("y", np.zeros(3))
        mu = pm.Normal("mu")
        pm.Normal("obs", mu, 1.0, observed=y)
    first = _jaxified(model)
    with model:
        pm.set_data({"y": np.ones(3)})
    assert _jaxified(model) is first
    with model:
        pm.Deterministic("mu2", 2 * mu)
    again = _jaxified(model)
    assert again is not first and [v.name for v in again.wanted] == ["mu", "mu2"]


def test_the_graph_key_of_a_conversion_sees_structure_and_constants_but_not_data():
    """Models that differ only in their data (``pm.Data``) share one conversion to JAX; another prior (a constant),
    another constant in the likelihood, or another likelihood gets its own."""
    pytest.importorskip("jax")
    import pymc as pm

    from harmoni_bayes.inference import _data_as_inputs, _graph_key

    def key(sigma=1.0, y=(1.0, 2.0), dist=pm.Normal, scale=1.0):
        with pm.Model() as m:
            data = pm.Data("y", np.asarray(y))
            mu = pm.Normal("mu", 0.0, sigma)
            dist("obs", mu, scale, observed=data)
        (logp,), _, inputs = _data_as_inputs([m.logp()])
        return _graph_key(list(m.value_vars) + inputs, [-logp])

    base = key()
    assert base is not None and base == key(y=(3.0, -4.0))  # other data: the same computation
    assert base != key(sigma=2.0)  # another prior scale
    assert base != key(scale=2.0)  # a constant inside the likelihood
    assert base != key(dist=pm.Cauchy)  # another likelihood


def test_the_structure_key_sees_constants_but_not_argument_values():
    """Two functions share a jitted program only when they compute the same thing: a different captured constant
    or shape gives another key, other argument values the same."""
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from harmoni_bayes.inference import _structure_key

    c1, c2 = jnp.arange(3.0), jnp.arange(3.0) * 2

    def f1(x, d):
        return jnp.sum(x * c1) + d[0]

    def f2(x, d):
        return jnp.sum(x * c2) + d[0]

    x, d = jnp.ones(3), jnp.zeros(5)
    assert _structure_key(f1, x, d) == _structure_key(f1, x + 1, d - 2)
    assert _structure_key(f1, x, d) != _structure_key(f2, x, d)
    assert _structure_key(f1, x, d) != _structure_key(f1, x, jnp.zeros(6))
    assert _structure_key(f1, x, d) != _structure_key(lambda x, d: jnp.sum(x * c1) - d[0], x, d)


def test_pointwise_loglik_is_the_os_given_pfs_density(tmp_path):
    """Feed known parameter draws; the pointwise log densities match the formula evaluated directly."""
    fam, _ = _family(CLASSES)
    d = fam.data
    k = len(d.classes)
    rng = np.random.default_rng(3)
    post = {}
    for r in fam.relationships:
        shape_c = (2, 5, k)
        post[f"{r}::eta_pfs"] = rng.normal(-0.3, 0.1, shape_c)
        post[f"{r}::tau_pfs"] = rng.uniform(0.05, 0.3, shape_c)
        post[f"{r}::rho_w"] = rng.uniform(0.2, 0.7, (2, 5))
        if r == "pooled":
            for n in ("intercept", "slope", "residual_sd"):
                post[f"{r}::{n}"] = rng.uniform(0.05, 0.5, (2, 5))
        else:
            for n in ("intercept", "slope", "residual_sd"):
                post[f"{r}::{n}"] = rng.uniform(0.05, 0.5, shape_c)
        if r == "exchangeable":
            for n in (
                "intercept_mean",
                "intercept_sd",
                "slope_mean",
                "slope_sd",
                "residual_sd_typical",
                "residual_sd_spread",
            ):
                post[f"{r}::{n}"] = rng.uniform(0.05, 0.5, (2, 5))

    idata = SimpleNamespace(posterior={n: SimpleNamespace(values=v) for n, v in post.items()})
    ll = fam.pointwise_loglik(idata)
    i, c = 7, d.class_index[7]
    for r in fam.relationships:
        at = (1, 2) if r == "pooled" else (1, 2, c)

        def g(n, r=r, at=at):
            return post[f"{r}::{n}"][at]

        m, sd = os_given_pfs(
            post[f"{r}::eta_pfs"][1, 2, c],
            post[f"{r}::tau_pfs"][1, 2, c],
            g("intercept"),
            g("slope"),
            g("residual_sd"),
            post[f"{r}::rho_w"][1, 2],
            d.y_pfs[i],
            d.se_pfs[i],
            d.se_os[i],
        )
        assert ll[r][1, 2, i] == pytest.approx(stats.norm.logpdf(d.y_os[i], m, sd))


# --------------------------------------------------------------------------- slow: recovery and SBC


def _simulate(slopes, intercepts, n_per, rng, psi=0.05, tau=0.3, rho=0.4, s_s=0.08, s_t=0.08):
    rows = []
    for c, (b, a) in enumerate(zip(slopes, intercepts, strict=True)):
        for i in range(n_per):
            mu_s = rng.normal(-0.4, tau)
            mu_t = a + b * mu_s + psi * rng.standard_normal()
            e = rng.multivariate_normal([0, 0], [[s_s**2, rho * s_s * s_t], [rho * s_s * s_t, s_t**2]])
            rows.append(
                {
                    "comparison": f"c{c}-{i}",
                    "class": f"class {c}",
                    "log_hr_pfs": mu_s + e[0],
                    "se_pfs": s_s,
                    "log_hr_os": mu_t + e[1],
                    "se_os": s_t,
                }
            )
    return ClassData.from_frame(pd.DataFrame(rows))


@pytest.mark.slow
def test_class_slopes_are_recovered():
    """With numpyro, the shipped class specs' backend, through the padded path: 36 comparisons and 12 padding rows of
    weight 0.  (nutpie samples the same model in the SBC below; its numba compile costs a minute per relationship
    from an empty cache, so it is not repeated here.)"""
    from harmoni_bayes.config import SamplerConfig
    from harmoni_bayes.inference import sample
    from harmoni_bayes.models.base import posterior_array

    slopes, intercepts = (0.1, 0.5, 0.9), (0.0, -0.1, 0.05)
    data = _simulate(slopes, intercepts, 12, np.random.default_rng(2026))
    fam = ClassSurrogacyModel(data, relationships=("independent", "exchangeable"))
    # 0.98, as the shipped class specs' exchangeable block: at 0.95 its funnel gives a few divergences in some data
    # sets (nutpie, when this test ran it too: 6 once the SEs and the class index became data)
    cfg = SamplerConfig(draws=500, tune=500, chains=2, seed=5, backend="numpyro", target_accept=0.98)
    for r, model in fam.build_models().items():
        idata = sample(model, cfg, fam.row_padding)
        b = posterior_array(idata, f"{r}::slope")
        lo, hi = np.quantile(b, [0.025, 0.975], axis=(0, 1))
        assert np.all((lo < np.array(slopes)) & (np.array(slopes) < hi)), (r, lo, hi)
        med = np.median(b, axis=(0, 1))
        assert med[0] < med[1] < med[2], r  # the ordering of the true slopes comes back
        # The exchangeable model's funnel left a divergent transition in some realisations even at 0.98 (numpyro,
        # this data set, 2 x 500 draws: 1 with seed 5, none with seeds 6 and 7, none at 0.99; measured before its
        # intercepts were integrated out); the shipped specs' gate, which asks for none, holds for every block
        # (docs/benchmarks.md).  More than 2 in 1000 is a failure.
        allowed = 2 if r == "exchangeable" else 0
        assert int(idata.sample_stats["diverging"].sum()) <= allowed, r


@pytest.mark.slow
def test_sbc_of_the_exchangeable_model():
    """Simulation-based calibration (Talts et al. 2018): ranks of the true typical slope, intercept, a class slope
    and a class intercept among posterior draws are uniform when data are simulated from the prior."""
    import nutpie

    from harmoni_bayes.models.surrogacy_classes import ClassPriors

    n_rep, n_keep = 60, 99
    rng = np.random.default_rng(11)
    pri = ClassPriors()
    base = _simulate((0.3, 0.3, 0.3, 0.3), (0, 0, 0, 0), 5, rng, s_s=0.15, s_t=0.15)
    fam = ClassSurrogacyModel(base, relationships=("exchangeable",), priors=pri)
    compiled = nutpie.compile_pymc_model(fam.build_models()["exchangeable"])
    k, idx = len(base.classes), base.class_index
    ranks = {"slope_mean": [], "intercept_mean": [], "slope0": [], "intercept0": []}
    for rep in range(n_rep):
        beta0, beta1 = rng.normal(0, 1), rng.normal(0, 1)
        xi0, xi1 = abs(rng.normal(0, 0.25)), abs(rng.normal(0, 0.5))
        psi_bar, s_psi = abs(rng.normal(0, 0.5)), abs(rng.normal(0, 0.5))
        a = beta0 + xi0 * rng.standard_normal(k)
        b = beta1 + xi1 * rng.standard_normal(k)
        psi = psi_bar * np.exp(s_psi * rng.standard_normal(k))
        eta, tau = rng.normal(0, 1, k), np.abs(rng.normal(0, 0.5, k))
        rho = rng.uniform(0.2, 0.7)
        mu_s = eta[idx] + tau[idx] * rng.standard_normal(len(idx))
        mu_t = a[idx] + b[idx] * mu_s + psi[idx] * rng.standard_normal(len(idx))
        s = base.se_pfs
        e_s = s * rng.standard_normal(len(idx))
        e_t = rho * e_s + s * math.sqrt(1 - rho**2) * rng.standard_normal(len(idx))
        idata = nutpie.sample(
            compiled.with_data(**{"exchangeable::y_pfs": mu_s + e_s, "exchangeable::y_os": mu_t + e_t}),
            draws=400,
            tune=400,
            chains=2,
            cores=1,
            seed=rep,
            progress_bar=False,
            target_accept=0.95,
        )
        post = idata.posterior
        for name, truth, draws in (
            ("slope_mean", beta1, post["exchangeable::slope_mean"].values),
            ("intercept_mean", beta0, post["exchangeable::intercept_mean"].values),
            ("slope0", b[0], post["exchangeable::slope"].values[..., 0]),
            # integrated out for sampling, drawn from its conditional: calibrated only if that draw is exact
            ("intercept0", a[0], post["exchangeable::intercept"].values[..., 0]),
        ):
            thin = draws.ravel()[:: max(1, draws.size // n_keep)][:n_keep]
            ranks[name].append(int(np.sum(thin < truth)))
    for name, r in ranks.items():
        counts = np.histogram(r, bins=5, range=(0, n_keep + 1))[0]
        p = stats.chisquare(counts).pvalue
        assert p > 0.001, (name, counts)
