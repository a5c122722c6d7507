"""The sensitivity strip beside every headline: each family declares it (``ModelFamily.strip``), and each row is
checked against an independent computation (a fit under that setting, the summary's own numbers, a closed form).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harmoni_bayes.models import get_family
from harmoni_bayes.models.base import StripContext
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import load_spec, merge_changes, parse_spec, spec_to_dict
from helpers import REPO

SPEC = REPO / "models" / "ivonescimab_pfs_meta_now.toml"


def test_each_strip_row_equals_a_fit_under_its_prior_setting():
    spec = load_spec(SPEC)
    result = run_spec(spec, method="exact")
    strip = result.summary.extra["strip"]
    family = get_family(spec.model)
    assert [r["label"] for r in strip["rows"]] == ["as specified", *(label for label, _ in family.sensitivity)]
    head = [r for r in strip["rows"] if r["headline"]]
    assert len(head) == 1 and head[0]["probability"] == result.summary.probability("P(hr_pooled<1)")["value"]
    label, changes = family.sensitivity[0]
    alt = run_spec(parse_spec(merge_changes(spec_to_dict(spec), changes)), method="exact")
    row = next(r for r in strip["rows"] if r["label"] == label)
    assert row["probability"] == pytest.approx(alt.summary.probability("P(hr_pooled<1)")["value"], abs=1e-6)
    assert row["median"] == pytest.approx(alt.summary.quantity("hr_pooled")["median"])
    # the tau prior matters for a 4-trial meta-analysis: the rows are not all the same
    assert len({r["upper"] for r in strip["rows"]}) > 1


def test_merge_changes_replaces_a_prior_whole_and_leaves_its_inputs_alone():
    base = {"priors": {"tau": {"dist": "half_normal", "sigma": 0.5}, "mu": {"dist": "normal", "sigma": 2}}}
    changes = {"priors": {"tau": {"dist": "half_cauchy", "scale": 0.5}}}
    merged = merge_changes(base, changes)
    assert merged["priors"]["tau"] == {"dist": "half_cauchy", "scale": 0.5}
    assert merged["priors"]["mu"] == {"dist": "normal", "sigma": 2}
    assert base["priors"]["tau"] == {"dist": "half_normal", "sigma": 0.5}


# ---------------------------------------------------------------------------------------------
# every family declares its strip (ModelFamily.strip); the numbers of each row, checked independently
# ---------------------------------------------------------------------------------------------


def _context(spec, summary):
    """The strip context run_spec builds, for a spec and a (possibly hand-made) summary."""
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.run import _strip_context

    return _strip_context(spec, get_family(spec.model), EvidenceTables(spec), summary)


def _rows(strip) -> dict:
    return {r["label"]: r for r in strip["rows"]}


def test_pos_strip_adds_the_discounts_one_by_one(exact_result_dirs):
    from harmoni_bayes.results import load_result

    result = load_result(exact_result_dirs["harmoni3_pos"])
    s = result.summary
    strip = s.extra["strip"]
    assert strip["probability"] == "P(success)"
    rows = _rows(strip)
    steps = ["no discount", "region SD only", "as specified", "robust weight 0.5", "no borrowing"]
    assert list(rows) == [f"{e}: {step}" for e in ("PFS", "OS") for step in steps]
    assert [r["label"] for r in strip["rows"] if r["headline"]] == ["PFS: as specified", "OS: as specified"]
    spec = load_spec(REPO / "models" / "harmoni3_pos.toml")
    without_region = run_spec(parse_spec(merge_changes(spec_to_dict(spec), {"discount": {"extra_sd": None}})))
    for e in ("PFS", "OS"):
        p = [rows[f"{e}: {step}"]["probability"] for step in steps]
        # the summary's own numbers: the headline, the weight sweep (linear in the weight), the MAP predictive
        assert p[2] == s.probability(f"P(success[{e}])")["value"]
        assert p[1] == pytest.approx(s.probability(f"P(success[{e}];w=0)")["value"], abs=1e-6)
        assert p[3] == pytest.approx(s.probability(f"P(success[{e}];w=0.5)")["value"], abs=1e-6)
        head, new = rows[f"{e}: as specified"], s.quantity(f"hr_new_trial[{e}]")
        assert (head["median"], head["upper"]) == (
            s.quantity(f"hr_prior[{e}]")["median"],
            s.quantity(f"hr_prior[{e}]")["q97.5"],
        )
        assert rows[f"{e}: no discount"]["median"] == new["median"]
        # no discount = the spec without its region SD, at robust weight 0
        assert p[0] == pytest.approx(without_region.summary.probability(f"P(success[{e}];w=0)")["value"], abs=1e-6)
        # each discount takes away borrowing: the probabilities fall, down to the design alone (w = 1)
        assert p == sorted(p, reverse=True) and p[0] > p[-1]
        assert rows[f"{e}: no borrowing"]["median"] == pytest.approx(1.0)  # the vague component, centred at HR 1


def test_exnex_strip_sets_the_mcmc_headline_beside_the_exact_model_without_exnex():
    """EXNEX has no exact engine; its strip compares it with the plain model (exact) under each tau prior."""
    from harmoni_bayes.summaries import Summary

    spec = parse_spec(merge_changes(spec_to_dict(load_spec(REPO / "models" / "harmoni2_pfs_pdl1.toml")), EXNEX))
    assert spec.method == "mcmc"
    family, _ = get_family(spec.model).from_spec(spec, _tables(spec))
    hand = {"name": "hr_overall", "scale": "hr", "median": 0.55, "q2.5": 0.4, "q97.5": 0.75}
    summary = Summary(spec.name, spec.model, "mcmc", None, [], [hand], [{"name": "P(hr_overall<1)", "value": 0.99}], {})
    strip = family.strip(None, _context(spec, summary)).to_dict()
    labels = [r["label"] for r in strip["rows"]]
    assert labels == ["as specified (EXNEX)", "no EXNEX", *(f"no EXNEX, {label}" for label, _ in family.sensitivity)]
    head = strip["rows"][0]
    assert head["headline"] and (head["probability"], head["median"], head["upper"]) == (0.99, 0.55, 0.75)
    plain = run_spec(REPO / "models" / "harmoni2_pfs_pdl1.toml", method="exact").summary
    row = _rows(strip)["no EXNEX"]
    assert row["probability"] == pytest.approx(plain.probability("P(hr_overall<1)")["value"], abs=1e-6)
    assert row["median"] == pytest.approx(plain.quantity("hr_overall")["median"])


# numpyro: the EXNEX model compiles in seconds with XLA, against a minute of PyMC's C compile from an empty cache
EXNEX = {
    "exnex": {"enabled": True},
    "method": None,
    "sampler": {"chains": 2, "draws": 100, "tune": 100, "backend": "numpyro"},
}


def _tables(spec):
    from harmoni_bayes.models.base import EvidenceTables

    return EvidenceTables(spec)


@pytest.mark.slow
def test_an_exnex_fit_reports_its_strip():
    """The MCMC-only path end to end, with a tiny fit: no shipped spec enables EXNEX."""
    spec = parse_spec(merge_changes(spec_to_dict(load_spec(REPO / "models" / "harmoni2_pfs_pdl1.toml")), EXNEX))
    result = run_spec(spec)
    strip = result.summary.extra["strip"]
    head = strip["rows"][0]
    assert head["label"] == "as specified (EXNEX)" and head["headline"]
    assert head["probability"] == result.summary.probability("P(hr_overall<1)")["value"]
    assert head["median"] == result.summary.quantity("hr_overall")["median"]
    assert len(strip["rows"]) == 2 + len(get_family("subgroups").sensitivity)


def _fake_posterior(**draws):
    from harmoni_bayes.posterior import from_draws

    return from_draws({k: np.asarray(v) for k, v in draws.items()}, coords={}, dims={})


def _reference_only():
    from harmoni_bayes.models.surrogacy import SurrogacyModel

    rng = np.random.default_rng(1)
    y_s = rng.normal(-0.4, 0.25, 6)
    return SurrogacyModel.from_arrays(y_s, np.full(6, 0.1), 0.5 * y_s, np.full(6, 0.15))


def _slope_context(family, slope):
    q = {"slope": {"name": "slope", "scale": "identity", "median": float(np.median(slope)), "q2.5": 0, "q97.5": 1}}
    p = {"P(slope>0)": float(np.mean(slope > 0))}
    return StripContext("mcmc", 0, q, p, refit=None, settings=None)


def _posterior_on_a_grid(prior, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws of a residual SD whose posterior is ``prior`` times a N(0.3, 0.1^2) likelihood (by inverting its
    CDF on a fine grid), and the grid with the likelihood, to compute exact answers under other priors.
    """
    x = np.linspace(0.0, 1.5, 30001)
    lik = stats.norm.pdf(x, 0.3, 0.1)
    cdf = np.cumsum(prior.pdf(x) * lik)
    return np.interp(rng.uniform(size=n), cdf / cdf[-1], x), x, lik


def test_surrogacy_strip_reweights_the_draws_to_each_other_prior():
    """Draws of a known posterior, reweighted to another prior, must give the answers of that prior's posterior
    (computed on a grid).  The slope is made a function of the reweighted parameter so the strip sees it.
    """
    family = _reference_only()  # residual_sd ~ half-normal(0.5), rho_w ~ uniform(0.2, 0.7)
    rng = np.random.default_rng(7)
    n = 200_000
    psi, x, lik = _posterior_on_a_grid(stats.halfnorm(scale=0.5), n, rng)
    rho = rng.uniform(0.2, 0.7, n)
    draws = {"slope": psi - 0.3, "residual_sd": psi, "rho_w": rho}
    rows = _rows(family.strip(_fake_posterior(**draws), _slope_context(family, psi - 0.3)).to_dict())
    assert list(rows) == [
        "as specified",
        "residual SD half-normal(0.25)",
        "residual SD half-normal(1)",
        "rho_w 0.2 to 0.3",
        "rho_w 0.6 to 0.7",
    ]
    for label, sigma in (("residual SD half-normal(0.25)", 0.25), ("residual SD half-normal(1)", 1.0)):
        post = stats.halfnorm(scale=sigma).pdf(x) * lik
        cdf = np.cumsum(post) / post.sum()
        assert rows[label]["probability"] == pytest.approx(1 - np.interp(0.3, x, cdf), abs=0.005)
        assert rows[label]["median"] == pytest.approx(np.interp(0.5, cdf, x) - 0.3, abs=0.003)
        assert 0 < rows[label]["importance_ess"] < n
    # rho_w: the slope is rho - 0.25, so P(slope > 0) is 1/2 in the lowest fifth of the range and 1 in the highest
    rows = _rows(
        family.strip(
            _fake_posterior(slope=rho - 0.25, residual_sd=psi, rho_w=rho), _slope_context(family, rho - 0.25)
        ).to_dict()
    )
    assert rows["rho_w 0.2 to 0.3"]["probability"] == pytest.approx(0.5, abs=0.01)
    assert rows["rho_w 0.2 to 0.3"]["importance_ess"] == pytest.approx(n / 5, rel=0.02)
    assert rows["rho_w 0.6 to 0.7"]["probability"] == 1.0
    assert rows["rho_w 0.6 to 0.7"]["upper"] == pytest.approx(0.7 - 0.25, abs=0.005)


def test_surrogacy_strip_has_no_rho_rows_when_rho_is_fixed():
    from harmoni_bayes.models.surrogacy import SurrogacyPriors, reweighted_priors
    from harmoni_bayes.priors import FixedValue, HalfNormalPrior

    labels = [x[0] for x in reweighted_priors(SurrogacyPriors(rho_w=FixedValue(value=0.5)))]
    assert labels == ["residual SD half-normal(0.25)", "residual SD half-normal(1)"]
    own = SurrogacyPriors(residual_sd=HalfNormalPrior(sigma=0.25))  # the spec's own prior is not a row of its own
    assert "residual SD half-normal(0.25)" not in [x[0] for x in reweighted_priors(own)]


def test_class_surrogacy_strip_shows_each_relationship_with_a_common_slope():
    from harmoni_bayes.models.surrogacy_classes import ClassSurrogacyModel

    stats_ = {"median": 0.3, "q2.5": 0.1, "q97.5": 0.5}
    q = {n: {"name": n, "scale": "identity", **stats_} for n in ("slope_pooled", "slope_mean", "slope_sd")}
    p = {"P(slope_pooled>0)": 0.99, "P(slope_mean>0)": 0.95}
    family = object.__new__(ClassSurrogacyModel)  # the strip reads only the summary: no data needed
    strip = family.strip(None, StripContext("mcmc", 0, q, p, refit=None, settings=None)).to_dict()
    assert [(r["label"], r["probability"], r["headline"]) for r in strip["rows"]] == [
        ("one relationship", 0.99, False),
        ("exchangeable classes: typical slope", 0.95, True),
    ]
    assert strip["probability"] == "P(slope > 0)"


def test_a_forecast_before_any_os_keeps_the_os_row_with_no_numbers():
    from harmoni_bayes.models.surrogacy import TargetTrial

    before = TargetTrial("HARMONi-2", -0.67, 0.15, None, None, later_deaths=314).os_alone().to_dict()
    assert before["label"] == "immature OS alone" and before["note"] == "no OS data yet"
    assert [before[k] for k in ("probability", "median", "lower", "upper")] == [None] * 4
    after = TargetTrial("HARMONi-2", -0.67, 0.15, -0.25, 0.16, later_deaths=314).os_alone().to_dict()
    assert after["probability"] == pytest.approx(stats.norm.cdf(0.25 / 0.16), abs=1e-6)
    assert after["median"] == pytest.approx(np.exp(-0.25), rel=1e-5)
    assert after["upper"] == pytest.approx(np.exp(-0.25 + 1.959964 * 0.16), rel=1e-5)


def test_weighted_quantiles_agree_with_numpy_and_with_replication():
    from harmoni_bayes.models.base import weighted_quantiles

    x = np.random.default_rng(0).normal(size=2001)
    assert weighted_quantiles(x, (0.5, 0.025)) == pytest.approx(np.quantile(x, [0.5, 0.025]))
    w = np.where(x > 0, 3.0, 1.0)  # weight 3 = the value three times
    rep = np.concatenate([x, x[x > 0], x[x > 0]])
    assert weighted_quantiles(x, (0.1, 0.5, 0.9), w) == pytest.approx(np.quantile(rep, [0.1, 0.5, 0.9]), abs=0.01)
    assert weighted_quantiles([np.nan, np.inf], (0.5,)) == [pytest.approx(np.nan, nan_ok=True)]
