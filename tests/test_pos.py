"""The probability-of-success family ``pos``: each result checked against something computed independently.

* the MAP prior against the exact grid of the normal-normal model (and the random-effects family), the region
  discount against adaptive quadrature over the extra SD, the mixture approximation against the grid's
  quantiles;
* the assurance against the single-analysis closed form, the robust-weight sweep against the robust mixture
  itself, a multi-analysis assurance against direct integration of the OC curve over the exact predictive,
  success given interim data against its closed form;
* the exact predictive's calibration (PIT of a simulated new trial), and SBC of the PyMC model's predictive
  (slow);
* the whole path spec -> summary.json -> HTML, and bad input -> exit 2 through the CLI.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.design import assurance, power_curve
from harmoni_bayes.errors import ResultError, SpecError
from harmoni_bayes.evidence import load_evidence
from harmoni_bayes.exact import nnhm_exact
from harmoni_bayes.mixture import NormalMix, robustify
from harmoni_bayes.models.base import EvidenceTables
from harmoni_bayes.models.pos import PoSFamily, discounted_predictive
from harmoni_bayes.posterior import from_draws
from harmoni_bayes.priors import HalfNormalPrior, NormalPrior
from harmoni_bayes.reporting import build_report, write_report
from harmoni_bayes.reporting import figures as F
from harmoni_bayes.results import load_result, save_result
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import load_spec, parse_spec
from helpers import lookup, shows

REPO = Path(__file__).resolve().parents[1]
H3 = REPO / "models" / "harmoni3_pos.toml"
H7 = REPO / "models" / "harmoni7_pos.toml"
QUANTILES = np.array([0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975])
QUANTILE_TOL = 0.02  # log HR: the mixture approximation's quantiles within 2% of the HR of the exact predictive


def spec_dict(path: Path = H3, **changes) -> dict:
    d = tomllib.loads(path.read_text())
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = d
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return d


def family_of(d: dict) -> PoSFamily:
    spec = parse_spec(d)
    fam, _ = PoSFamily.from_spec(spec, EvidenceTables(spec))
    return fam


@pytest.fixture(scope="module")
def h3():
    return run_spec(H3)


@pytest.fixture(scope="module")
def h3_family():
    return family_of(spec_dict())


def _rows(trials: list[str], endpoint: str) -> pd.DataFrame:
    from harmoni_bayes.selection import select_evidence

    sel = select_evidence(
        load_evidence(), as_of="2025-06-30", trials=trials, endpoint=endpoint, subgroup_factor="overall"
    )
    return sel.used


# ---------------------------------------------------------------------------------------------
# the MAP prior against the exact normal-normal model
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["PFS", "OS"])
@pytest.mark.parametrize("path", [H3, H7], ids=["harmoni3", "harmoni7"])
def test_mixture_approximation_matches_the_exact_predictive(path, endpoint):
    """Without discounts the fitted mixture is the MAP predictive: its quantiles agree with the exact grid's
    (computed here with the default 4000-node grid) within QUANTILE_TOL on the log-HR scale.
    """
    d = spec_dict(path, **{"discount.extra_sd": None})
    fam = family_of(d)
    a = fam.analysis()[endpoint]
    rows = _rows(d["endpoints"][endpoint]["trials"], endpoint)
    pr = parse_spec(d).map.priors
    grid = nnhm_exact(rows.log_hr, rows.se, mu_prior=pr.mu, tau_prior=pr.tau).theta_new
    diff = np.abs(np.asarray(a.mixture.ppf(QUANTILES)) - np.asarray(grid.ppf(QUANTILES)))
    assert diff.max() < QUANTILE_TOL, diff
    assert a.fit_error < QUANTILE_TOL
    # the CDFs agree everywhere too (Kolmogorov distance)
    x = np.linspace(-2.5, 1.5, 801)
    assert np.max(np.abs(np.asarray(a.mixture.cdf(x)) - np.asarray(grid.cdf(x)))) < 0.01


def test_map_predictive_is_the_random_effects_new_trial(h3):
    """hr_new_trial[PFS] of the pos family equals hr_new_trial of the random-effects family on the same rows."""
    re = run_spec(
        parse_spec(
            {
                "name": "re",
                "title": "re",
                "model": "random_effects",
                "method": "exact",
                "as_of": "2025-06-30",
                "evidence": {"trials": ["HARMONi-2", "HARMONi-A", "HARMONi"], "endpoint": "PFS"},
            }
        )
    )
    mine, theirs = h3.summary.quantity("hr_new_trial[PFS]"), re.summary.quantity("hr_new_trial")
    for k in ("median", "q2.5", "q97.5", "log_mean"):
        assert mine[k] == pytest.approx(theirs[k], rel=2e-6)
    assert h3.summary.probability("P(hr_new_trial[PFS]<1)")["value"] == pytest.approx(
        re.summary.probability("P(hr_new_trial<1)")["value"], abs=2e-6
    )


def test_region_discount_against_quadrature_over_the_extra_sd():
    """The region SD's quadrature vs adaptive quadrature of
    P(theta* <= x) = int_0^inf HN(d; sigma) sum_j w_j Phi((x - m_j) / sqrt(s_j^2 + d^2)) dd,
    also with the extra SD 20 times the narrowest component's SD.
    """
    for sds, sigma in (([0.12, 0.3], 0.15), ([0.05, 0.3], 1.0)):
        pred = NormalMix([0.6, 0.4], [-0.7, -0.5], sds)
        _check_discount(pred, HalfNormalPrior(sigma=sigma))


def _check_discount(pred: NormalMix, prior: HalfNormalPrior) -> None:
    disc = discounted_predictive(pred, prior)
    hn = prior.scipy()
    for x in (-1.2, -0.8, -0.7, -0.6, -0.2, 0.3):

        def integrand(d, x=x):
            comps = stats.norm.cdf(x, pred.means, np.sqrt(pred.sds**2 + d**2))
            return hn.pdf(d) * float(pred.weights @ comps)

        ref = integrate.quad(integrand, 0, np.inf, epsabs=1e-13, limit=200)[0]
        assert float(disc.cdf(x)) == pytest.approx(ref, abs=1e-6)


def test_exact_predictive_is_calibrated_pit():
    """Simulate (mu, tau) from the priors, three trials and a new one; the exact predictive CDF at the new
    trial's true log HR is uniform (probability integral transform; Kolmogorov-Smirnov).
    """
    rng = np.random.default_rng(11)
    se = np.array([0.152, 0.153, 0.121])
    mu_p, tau_p = NormalPrior(mu=0.0, sigma=2.0), HalfNormalPrior(sigma=0.5)
    pit = []
    for _ in range(300):
        mu, tau = rng.normal(0, 2), abs(rng.normal(0, 0.5))
        theta = rng.normal(mu, tau, 4)
        y = rng.normal(theta[:3], se)
        pit.append(nnhm_exact(y, se, mu_prior=mu_p, tau_prior=tau_p, n_grid=200).theta_new.cdf(theta[3]))
    assert stats.kstest(pit, "uniform").pvalue > 0.001


# ---------------------------------------------------------------------------------------------
# probability of success
# ---------------------------------------------------------------------------------------------


def test_single_analysis_assurance_closed_form_in_the_output_path():
    """One analysis: PoS = sum_c w_c Phi((-z_alpha - m_c sqrt(I)) / sqrt(1 + v_c I)), I = D r/(1 + r)^2.

    Success iff the estimate theta_hat < -z_alpha/sqrt(I) (theta < 0 favours the experimental arm), and
    theta_hat ~ N(m_c, v_c + 1/I) under component c.  Summed over the robust prior's components.
    """
    d = spec_dict(
        **{
            "endpoints": {"PFS": {"trials": ["HARMONi-2", "HARMONi-A", "HARMONi"], "events": [420], "alpha": 0.02}},
            "discount.robust_weight": 0.25,
            "discount.sweep": [0.0, 0.6, 1.0],
            "discount.region_pair": None,
        }
    )
    result = run_spec(parse_spec(d))
    robust = family_of(d).analysis()["PFS"].robust
    info, z = 420 / 4, stats.norm.ppf(1 - 0.02)

    def closed(mix: NormalMix) -> float:
        terms = stats.norm.cdf((-z - mix.means * math.sqrt(info)) / np.sqrt(1 + mix.sds**2 * info))
        return float(mix.weights @ terms)

    assert result.summary.probability("P(success[PFS])")["value"] == pytest.approx(closed(robust), abs=1e-6)
    informative = NormalMix(robust.weights[:-1] / robust.weights[:-1].sum(), robust.means[:-1], robust.sds[:-1])
    for w in (0.0, 0.6, 1.0):
        expected = closed(robustify(informative, w))
        assert result.summary.probability(f"P(success[PFS];w={w:g})")["value"] == pytest.approx(expected, abs=1e-6)
    # the OC table is the closed-form power Phi(-log(HR) sqrt(I) - z)
    for hr in (0.6, 0.8, 1.0):
        power = stats.norm.cdf(-math.log(hr) * math.sqrt(info) - z)
        assert result.summary.probability(f"P(success[PFS];HR={hr:g})")["value"] == pytest.approx(power, abs=1e-6)


def test_group_sequential_assurance_against_direct_integration(h3_family):
    """HARMONi-3 OS (three analyses): the assurance under the fitted MAP mixture agrees with the OC curve
    integrated over the exact discounted predictive (the grid, no mixture), and robust-weight results are the
    mixture's own assurance (linear in w).
    """
    a = h3_family.analysis()["OS"]
    target = discounted_predictive(a.predictive, h3_family.spec.discount.extra_sd)
    theta = np.linspace(-2.5, 1.5, 801)
    direct = integrate.trapezoid(power_curve(a.design, np.exp(theta)) * target.pdf(theta), theta)
    assert a.assurance_parts[0] == pytest.approx(direct, abs=0.005)
    for w in (0.0, 0.3, 0.5):
        assert a.pos(w) == pytest.approx(assurance(a.design, robustify(a.mixture, w)), abs=1e-9)


def test_success_given_interim_closed_form():
    """Final analysis at D_F = 600 events, interim HR 0.75 at 300 events: the posterior mixture (conjugate
    update, here by hand) and theta_hat_F | y ~ N((I_obs y + dI m')/I_F, (dI + dI^2 v')/I_F^2).
    """
    d = spec_dict(
        **{
            "endpoints": {
                "PFS": {
                    "trials": ["HARMONi-2", "HARMONi-A", "HARMONi"],
                    "events": [600],
                    "alpha": 0.025,
                    "interim": {"hr": 0.75, "events": 300},
                }
            },
            "discount.region_pair": None,
        }
    )
    result = run_spec(parse_spec(d))
    prior = family_of(d).analysis()["PFS"].robust
    y, i_obs, i_f = math.log(0.75), 300 / 4, 600 / 4
    di = i_f - i_obs
    w = prior.weights * stats.norm.pdf(y, prior.means, np.sqrt(prior.sds**2 + 1 / i_obs))
    w = w / w.sum()
    v_post = 1 / (1 / prior.sds**2 + i_obs)
    m_post = v_post * (prior.means / prior.sds**2 + y * i_obs)
    mean_f = (i_obs * y + di * m_post) / i_f
    sd_f = np.sqrt(di + di**2 * v_post) / i_f
    crit = -stats.norm.ppf(0.975) / math.sqrt(i_f)
    expected = float(w @ stats.norm.cdf((crit - mean_f) / sd_f))
    assert result.summary.probability("P(success[PFS];interim)")["value"] == pytest.approx(expected, abs=1e-6)


def test_a_prior_given_as_a_normal_has_ess_four_over_s2():
    """An endpoint whose prior is N(m, s^2) (no trials, no region SD, robust weight 0): all three ESS are 4/s^2
    events and the assurance is the closed form with that one component.
    """
    d = spec_dict(
        **{
            "endpoints": {"OS": {"prior": {"weights": [1.0], "means": [-0.2], "sds": [0.25]}, "events": [400]}},
            "discount.extra_sd": None,
            "discount.robust_weight": 0.0,
            "discount.region_pair": None,
        }
    )
    result = run_spec(parse_spec(d))
    assert result.evidence_used.empty
    for m in ("elir", "moment", "morita"):
        assert result.summary.quantity(f"ess_{m}[OS]")["median"] == pytest.approx(4 / 0.25**2, rel=1e-5)
    z, info = stats.norm.ppf(0.975), 100.0
    expected = stats.norm.cdf((-z + 0.2 * math.sqrt(info)) / math.sqrt(1 + 0.25**2 * info))
    assert result.summary.probability("P(success[OS])")["value"] == pytest.approx(expected, abs=1e-6)
    assert result.summary.quantity("hr_new_trial[OS]")["median"] == pytest.approx(math.exp(-0.2), rel=1e-5)


def test_ess_orders_and_the_robust_component_lowers_it(h3):
    q = {x["name"]: x["median"] for x in h3.summary.quantities}
    for e in ("PFS", "OS"):
        assert q[f"ess_moment[{e}]"] < q[f"ess_elir[{e}]"] < q[f"ess_morita[{e}]"]
        for m in ("elir", "moment", "morita"):
            assert q[f"ess_{m}_robust[{e}]"] < q[f"ess_{m}[{e}]"]


# ---------------------------------------------------------------------------------------------
# the MCMC path, without sampling
# ---------------------------------------------------------------------------------------------


def test_build_model_has_the_map_hierarchy_with_finite_gradient(h3_family):
    model = h3_family.build_model()
    assert {v.name for v in model.free_RVs} == {"mu", "tau", "z_new", "extra_sd", "z_region"}
    assert list(model.coords["endpoint"]) == ["PFS", "OS"]
    assert {"theta_new", "hr_new_trial", "theta_target"} <= {v.name for v in model.deterministics}
    point = model.initial_point()
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(point))
    assert np.all(np.isfinite(model.compile_dlogp(mode="FAST_COMPILE")(point)))


def _iid_exact_draws(family: PoSFamily, rng: np.random.Generator, n: int = 4000):
    """What an MCMC fit would give, drawn iid from the exact analysis: theta*, the new trial's HR, tau."""
    exact = family.analysis()
    theta, new, tau = [], [], []
    for e in ("PFS", "OS"):
        target = discounted_predictive(exact[e].predictive, family.spec.discount.extra_sd)
        theta.append(NormalMix.from_mixture(target).sample(n, rng))
        new.append(np.exp(NormalMix.from_mixture(exact[e].predictive).sample(n, rng)))
        tau.append(exact[e].tau.ppf(rng.uniform(size=n)))
    draws = {
        "theta_target": np.stack(theta, 1),
        "hr_new_trial": np.stack(new, 1),
        "tau": np.stack(tau, 1),
        "extra_sd": np.abs(rng.normal(0, 0.1, n)),
    }
    return from_draws(
        draws,
        coords={"endpoint": ["PFS", "OS"]},
        dims={"theta_target": ["endpoint"], "hr_new_trial": ["endpoint"], "tau": ["endpoint"]},
    )


def test_mcmc_post_processing_on_iid_exact_draws(h3_family):
    """Feed the MCMC post-processing iid draws of the exact discounted predictive: P(success) (per-draw
    conditional power) agrees with the exact analysis within Monte Carlo error plus the mixture's error.
    """
    rng = np.random.default_rng(3)
    exact = h3_family.analysis()
    idata = _iid_exact_draws(h3_family, rng)
    probs = {p.name: p.values for p in h3_family.probabilities(idata)}
    for e in ("PFS", "OS"):
        v = probs[f"P(success[{e}])"]
        mcse = v.std() / math.sqrt(v.size)
        assert v.mean() == pytest.approx(exact[e].pos(), abs=4 * mcse + 0.01)
        assert probs[f"P(success[{e}];HR=0.8)"].mean() == pytest.approx(float(exact[e].power(0.8)), abs=1e-12)
    qs = {q.name: q.values for q in h3_family.quantities(idata)}
    assert qs["ess_elir[PFS]"].mean() == pytest.approx(exact["PFS"].ess("elir"), rel=0.15)
    exact_names = [name for name, _ in h3_family.exact_fit(10, rng).probabilities]
    assert [p.name for p in h3_family.probabilities(idata)] == exact_names


def test_the_strip_of_an_mcmc_fit_agrees_with_the_exact_one(h3, h3_family):
    """The strip from MCMC post-processing (iid exact draws): the same rows, each close to the exact strip's."""
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.run import _strip_context
    from harmoni_bayes.summaries import Summary, probabilities_from_draws, quantities_from_draws

    idata = _iid_exact_draws(h3_family, np.random.default_rng(4))
    qs = quantities_from_draws(h3_family.quantities(idata))
    ps = probabilities_from_draws(h3_family.probabilities(idata))
    summary = Summary("harmoni3_pos", "pos", "mcmc", None, [], qs, ps, {})
    spec = parse_spec(spec_dict() | {"method": "mcmc"})
    context = _strip_context(spec, PoSFamily, EvidenceTables(spec), summary)
    mcmc = {r["label"]: r for r in h3_family.strip(idata, context).to_dict()["rows"]}
    exact = {r["label"]: r for r in h3.summary.extra["strip"]["rows"]}
    assert list(mcmc) == list(exact)
    for label, row in mcmc.items():
        assert row["probability"] == pytest.approx(exact[label]["probability"], abs=0.02), label
        assert row["median"] == pytest.approx(exact[label]["median"], rel=0.05), label


# ---------------------------------------------------------------------------------------------
# end to end: spec -> summary.json -> report
# ---------------------------------------------------------------------------------------------


def test_harmoni3_end_to_end_report(h3, tmp_path):
    out = save_result(h3, tmp_path / "h3")
    summary = json.loads((out / "summary.json").read_text())
    probs = {p["name"] for p in summary["probabilities"]}
    quants = {q["name"] for q in summary["quantities"]}
    assert {"P(success[PFS])", "P(success[OS])", "P(success[PFS];w=0.5)", "P(success[OS];HR=0.8)"} <= probs
    assert {"hr_new_trial[PFS]", "ess_elir[OS]", "ess_moment[PFS]", "ess_morita[OS]", "tau[PFS]"} <= quants
    assert {"robust_weight", "extra_sd", "region_hr_ratio[PFS]"} <= quants
    (html_path,) = write_report(out, fmt="html")
    page = html_path.read_text()
    assert 'id="figure-map_prior"' in page and 'id="figure-oc_curve"' in page
    content = build_report(load_result(out))
    answer = content.headline[0]
    assert answer.role == "answer" and "meets its PFS endpoint" in answer.text and "its OS endpoint" in answer.text
    refs = [n.ref for s in content.headline for n in s.numbers]
    assert refs[:2] == [("probabilities", "P(success[PFS])", "value"), ("probabilities", "P(success[OS])", "value")]
    assert ("quantities", "ess_elir[PFS]", "median") in refs and ("quantities", "robust_weight", "median") in refs
    for n in (n for s in content.headline for n in s.numbers):
        assert n.value == lookup(summary, n.ref) and shows(n.text, n.value)
    # the figures' numbers: the OC table drawn is summary.json's, and the curve passes through it
    saved = load_result(out)
    oc = F.oc_curve_data(saved)
    spec = load_spec(H3)
    for e in ("PFS", "OS"):
        table = oc[(oc.endpoint == e) & (oc.kind == "oc_table")]
        assert len(table) == 6
        for row in table.itertuples():
            assert row.value == summary_probability(summary, f"P(success[{e}];HR={row.hr:g})")
        curve = oc[(oc.endpoint == e) & (oc.kind == "power")]
        assert len(curve) == 100
        assert np.allclose(curve.value, power_curve(spec.endpoints[e].design(), curve.hr.to_numpy()))
    dens = F.map_prior_data(saved)
    assert set(dens.curve) == {"map_exact", "map_mixture", "robust"}
    for (_, curve_name), sub in dens.groupby(["endpoint", "curve"]):
        mass = integrate.trapezoid(sub.density, np.log(sub.hr))
        # the plotted HR range (0.08 to 4) holds all but the robust component's wide tails
        assert mass == pytest.approx(1.0, abs=0.12 if curve_name == "robust" else 0.01)


def summary_probability(summary: dict, name: str) -> float:
    return next(p["value"] for p in summary["probabilities"] if p["name"] == name)


def test_figures_refuse_a_summary_that_does_not_match_the_prior(h3, tmp_path):
    out = save_result(h3, tmp_path / "h3")
    r = load_result(out)
    for q in r.summary.quantities:
        if q["name"] == "ess_elir[PFS]":
            q["median"] *= 1.5
    with pytest.raises(ResultError, match="does not match"):
        F.map_prior_data(r)


def test_a_report_after_the_fit_reuses_its_analysis_and_a_rebuild_is_the_same(tmp_path):
    """The figures' rebuild of a result fitted in this process is the fit's own analysis (no second mixture fit);
    rebuilt from nothing (from the saved rows, 10 decimals), it gives the same priors and probabilities."""
    from harmoni_bayes.models import pos as P

    P._ANALYSES.clear()
    r = load_result(save_result(run_spec(H3), tmp_path / "h3"))
    made = list(P._ANALYSES.values())
    again = P.reanalyse(r.spec, r.evidence_used)
    assert any(again is m for m in made) and len(P._ANALYSES) == len(made)
    P._ANALYSES.clear()
    fresh = P.reanalyse(r.spec, r.evidence_used)
    assert fresh is not again and list(fresh) == list(again)
    for e, x in fresh.items():
        assert x.pos() == pytest.approx(again[e].pos(), rel=1e-9)
        assert x.ess("elir") == pytest.approx(again[e].ess("elir"), rel=1e-9)
        np.testing.assert_allclose(x.robust.means, again[e].robust.means, rtol=1e-9, atol=1e-12)


def test_harmoni7_headline_has_os_first(tmp_path):
    r = run_spec(H7)
    assert [p["name"] for p in r.summary.probabilities[:2]] == ["P(success[OS])", "P(success[PFS])"]
    assert "region_hr_ratio[OS]" not in {q["name"] for q in r.summary.quantities}  # one source trial: no pair
    content = build_report(r)
    assert content.headline[0].text.startswith("Probability that HARMONi-7 meets its OS endpoint")


# ---------------------------------------------------------------------------------------------
# bad input: one clear error, exit 2 through the CLI
# ---------------------------------------------------------------------------------------------

BAD = [
    ({"endpoints.OS.events": [290, 290, 580]}, ["endpoints.OS.events", "increase"]),
    ({"endpoints.PFS.events": []}, ["endpoints.PFS.events", "at least one analysis"]),
    ({"endpoints.PFS.alpha": 0.6}, ["endpoints.PFS.alpha", "(0, 0.5)"]),
    ({"endpoints.PFS.alpha": 0.0}, ["endpoints.PFS.alpha", "(0, 0.5)"]),
    ({"discount.robust_weight": 1.5}, ["discount.robust_weight", "[0, 1]"]),
    ({"discount.sweep": [0.0, -0.1]}, ["discount.sweep", "[0, 1]"]),
    ({"discount.sweep": [0.2, 0.2]}, ["discount.sweep", "must differ"]),
    ({"discount.extra_sd": {"dist": "fixed", "value": -0.1}}, ["discount.extra_sd", ">= 0"]),
    (
        {"endpoints.PFS.trials": None, "endpoints.PFS.prior": {"weights": [0.5, 0.4], "means": [0, 0], "sds": [1, 1]}},
        ["endpoints.PFS.prior", "sum to 1"],
    ),
    ({"endpoints.PFS.prior": {"weights": [1.0], "means": [0.0], "sds": [1.0]}}, ["exactly one of 'trials'"]),
    ({"endpoints.OS.interim": {"hr": 0.8, "events": 600}}, ["interim.events", "below the final"]),
    ({"endpoints.PFS.relevant_hr": 1.2}, ["relevant_hr", "(0, 1)"]),
    ({"endpoints.PFS.spending": "haybittle"}, ["endpoints.PFS.spending"]),
    ({"endpoints.ORR": {"trials": ["HARMONi-2"], "events": [100]}}, ["endpoints.ORR"]),
]


def _write(tmp_path: Path, d: dict) -> Path:
    def toml_value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(toml_value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
        return str(v)

    lines = [f"{k} = {toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"{k} = {toml_value(v)}")
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("changes", "words"), BAD)
def test_bad_input_is_one_clear_error_and_exit_2(tmp_path, changes, words):
    d = spec_dict(**changes)
    d["as_of"] = str(d["as_of"])
    path = _write(tmp_path, d)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    for w in words:
        assert w in err.value.message(), err.value.message()
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and words[0] in res.output
    assert not (tmp_path / "out" / "summary.json").exists()


def test_every_problem_is_listed_at_once(tmp_path):
    d = spec_dict(**{"endpoints.OS.events": [300, 200], "endpoints.PFS.alpha": 0.7, "discount.robust_weight": -0.1})
    d["as_of"] = str(d["as_of"])
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, d))
    msg = err.value.message()
    assert "3 problems" in msg and "events" in msg and "alpha" in msg and "robust_weight" in msg


def test_unknown_source_trial_is_an_evidence_error_exit_2(tmp_path):
    d = spec_dict(**{"endpoints.PFS.trials": ["HARMONi-99"]})
    d["as_of"] = str(d["as_of"])
    res = CliRunner().invoke(app, ["run", str(_write(tmp_path, d)), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "HARMONi-99" in res.output


# ---------------------------------------------------------------------------------------------
# slow: SBC of the PyMC model's predictive
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sbc_of_the_map_predictive():
    """The random-effects SBC in test_sbc.py already checks mu, tau and theta_k of this hierarchy; what is new
    here is the predictive.  Draw (mu, tau) from the priors, three trials and a NEW trial's true log HR, fit the
    pos family's PyMC model, and rank the new trial's true log HR among the draws of theta_new: uniform ranks
    mean the MAP predictive is calibrated.  100 replicates, 10 bins.  NUTS runs on numpyro with the data as
    arguments (``sample_numpyro``): the model is converted and compiled once, and each replicate only samples.
    """
    import pymc as pm

    from harmoni_bayes.config import SamplerConfig
    from harmoni_bayes.inference import sample_numpyro

    d = spec_dict(
        **{
            "discount.extra_sd": None,
            "endpoints": {"PFS": {"trials": ["HARMONi-2", "HARMONi-A", "HARMONi"], "events": [400]}},
        }
    )
    fam = family_of(d)
    se = fam.rows["PFS"].se.to_numpy()
    model = fam.build_model()
    rng = np.random.default_rng(5)
    ranks, divergences = [], 0
    for r in range(100):
        mu, tau = rng.normal(0, 2), abs(rng.normal(0, 0.5))
        theta = rng.normal(mu, tau, 4)
        with model:
            pm.set_data({"log_hr": rng.normal(theta[:3], se)})
        config = SamplerConfig(draws=250, tune=250, chains=2, seed=r, target_accept=0.99, backend="numpyro")
        idata = sample_numpyro(model, config)
        divergences += int(idata.sample_stats.diverging.sum())
        draws = idata.posterior["theta_new"].values[..., 0].ravel()[np.linspace(0, 499, 99).astype(int)]
        ranks.append(int((draws < theta[3]).sum()))
    counts = np.bincount(np.asarray(ranks) // 10, minlength=10)
    assert divergences <= 5, divergences
    assert stats.chisquare(counts).pvalue > 0.001, counts
