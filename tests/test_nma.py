"""Network meta-analysis (family ``nma``): algebra, engines, evidence selection, bad input, reports.

Independent checks:

* the fixed-effect posterior with a flat prior is the generalised-least-squares estimate, computed here from scratch
  (covariance built from arm-level variances, dense matrix inverse), on a network with a three-arm trial;
* Bucher's indirect comparison and the node-split difference, in closed form, on a triangle;
* the random-effects grid engine against brute-force quadrature over tau of the multivariate normal likelihood
  (scipy), with the prior on ``d`` integrated analytically;
* recovery: 95% intervals of known relative effects on simulated networks cover the truth about 95% of the time;
* SBC of the random-effects model (slow): PITs of d, tau and a contrast are uniform;
* NUTS (both parameterisations) against the exact engine (slow).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.errors import EvidenceError, ModelError, SpecError
from harmoni_bayes.evidence import load_network, read_evidence, shipped_path
from harmoni_bayes.models import get_family
from harmoni_bayes.models.base import EvidenceTables
from harmoni_bayes.models.nma import NMAModel, NMAPriors, pdl1_stratum, select_network, target_name
from harmoni_bayes.nma_core import NMAInputs, components, rank_draws, shared_arm_variance
from harmoni_bayes.priors import HalfNormalPrior, NormalPrior
from harmoni_bayes.reporting import write_report
from harmoni_bayes.results import load_result, save_result
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import parse_spec

REPO = Path(__file__).resolve().parents[1]
SPECS = {p.stem: p for p in sorted((REPO / "models").glob("nsclc_nma_*.toml"))}
TARGET = target_name("ivonescimab", "pembrolizumab+chemo")


def _spec(**evidence):
    network = evidence.pop("network", {})
    return parse_spec(
        {
            "name": "t",
            "title": "t",
            "model": "nma",
            "method": "exact",
            "as_of": "2025-06-30",
            "evidence": evidence,
            "network": network,
        }
    )


# ---------------------------------------------------------------------------------------------
# a synthetic network: A (reference), B, C, D; a three-arm trial; a loop B-C-A
# ---------------------------------------------------------------------------------------------

ARM_VAR = {  # arm-level variances of the log hazard, per study and arm
    "s1": {"A": 0.010, "B": 0.012},
    "s2": {"A": 0.020, "C": 0.018},
    "s3": {"A": 0.008, "B": 0.011, "C": 0.009},  # three arms, baseline A
    "s4": {"B": 0.015, "C": 0.014},
    "s5": {"C": 0.020, "D": 0.030},
    "s6": {"A": 0.012, "D": 0.016},
}
CONTRASTS = [("s1", "B", "A"), ("s2", "C", "A"), ("s3", "B", "A"), ("s3", "C", "A"), ("s4", "C", "B")]
CONTRASTS += [("s5", "D", "C"), ("s6", "D", "A")]
TRUE_D = {"A": 0.0, "B": -0.3, "C": -0.5, "D": -0.1}


def _synthetic(y=None):
    study, a, b = zip(*CONTRASTS, strict=True)
    se = [math.sqrt(ARM_VAR[s][x] + ARM_VAR[s][z]) for s, x, z in CONTRASTS]
    if y is None:
        y = [TRUE_D[x] - TRUE_D[z] + 0.05 * (-1) ** i for i, (_, x, z) in enumerate(CONTRASTS)]
    return list(study), list(a), list(b), np.asarray(y, dtype=float), np.asarray(se)


def _dense_gls(y, study, a, b):
    """GLS from scratch: contrast covariance from arm variances, flat prior, dense inverse."""
    m = len(y)
    v = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if study[i] != study[j]:
                continue
            arms = ARM_VAR[study[i]]
            # Cov(mu_ai - mu_bi, mu_aj - mu_bj) with independent arm log hazards
            v[i, j] = (
                (arms[a[i]] if a[i] == a[j] else 0)
                - (arms[a[i]] if a[i] == b[j] else 0)
                - (arms[b[i]] if b[i] == a[j] else 0)
                + (arms[b[i]] if b[i] == b[j] else 0)
            )
    others = ["B", "C", "D"]
    x = np.array([[(t == a[i]) - (t == b[i]) for t in others] for i in range(m)], dtype=float)
    w = np.linalg.inv(v)
    cov = np.linalg.inv(x.T @ w @ x)
    return cov @ x.T @ w @ y, cov


def test_fixed_effect_with_flat_prior_is_the_gls_estimate():
    study, a, b, y, se = _synthetic()
    fam = NMAModel.from_contrasts(
        study, a, b, y, se, reference="A", effects="fixed", shared_variance={"s3": ARM_VAR["s3"]["A"]}
    )
    post = fam.exact(flat=True)
    mean, cov = _dense_gls(y, study, a, b)
    assert fam.inputs.others == ("B", "C", "D")
    np.testing.assert_allclose(post.means[0], mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.covs[0], cov, rtol=1e-10, atol=1e-14)
    # the multi-arm covariance is the shared arm's variance
    i, j = [k for k, s in enumerate(fam.inputs.study) if s == "s3"]
    assert fam.inputs.cov[i, j] == pytest.approx(ARM_VAR["s3"]["A"])


def test_exact_fit_summaries_are_the_gls_normal():
    study, a, b, y, se = _synthetic()
    fam = NMAModel.from_contrasts(
        study,
        a,
        b,
        y,
        se,
        reference="A",
        effects="fixed",
        target=("D", "B"),
        priors=NMAPriors(d=NormalPrior(mu=0, sigma=1e4)),
        shared_variance={"s3": ARM_VAR["s3"]["A"]},
    )
    fit = fam.exact_fit(2000, np.random.default_rng(1))
    mean, cov = _dense_gls(y, study, a, b)
    target = {q.name: q for q in fit.quantities}[target_name("D", "B")]
    c = np.array([-1.0, 0.0, 1.0])  # d_D - d_B
    assert math.log(target.stats["median"]) == pytest.approx(c @ mean, abs=1e-6)
    lo = math.exp(c @ mean - stats.norm.ppf(0.975) * math.sqrt(c @ cov @ c))
    assert target.stats["q2.5"] == pytest.approx(lo, rel=1e-5)
    probs = dict(fit.probabilities)
    assert probs[f"P({target_name('D', 'B')}<1)"] == pytest.approx(stats.norm.cdf(0, c @ mean, math.sqrt(c @ cov @ c)))


def test_bucher_indirect_comparison_and_node_split_on_a_triangle():
    # AB and AC trials plus a BC trial: a loop; fixed effect, near-flat prior
    y_ab, y_ac, y_bc = -0.2, -0.5, -0.1  # B vs A, C vs A, C vs B
    s_ab, s_ac, s_bc = 0.10, 0.12, 0.15
    fam = NMAModel.from_contrasts(
        ["t1", "t2", "t3"],
        ["B", "C", "C"],
        ["A", "A", "B"],
        [y_ab, y_ac, y_bc],
        [s_ab, s_ac, s_bc],
        reference="A",
        effects="fixed",
        priors=NMAPriors(d=NormalPrior(mu=0, sigma=1e4)),
    )
    splits = {(s.a, s.b) for s in fam.splits}
    assert splits == {("A", "B"), ("A", "C"), ("B", "C")}
    fit = fam.exact_fit(1000, np.random.default_rng(0))
    q = {x.name: x for x in fit.quantities}
    # node split of B-C: direct (C vs B: y_bc) minus indirect (Bucher: y_ac - y_ab), oriented B vs C
    omega = -(y_bc - (y_ac - y_ab))
    sd = math.sqrt(s_bc**2 + s_ab**2 + s_ac**2)
    assert q["inconsistency[B vs C]"].stats["median"] == pytest.approx(omega, abs=1e-6)
    assert q["inconsistency[B vs C]"].stats["sd"] == pytest.approx(sd, rel=1e-5)
    # without the BC trial, the network estimate of C vs B is Bucher's indirect comparison
    indirect = NMAModel.from_contrasts(
        ["t1", "t2"], ["B", "C"], ["A", "A"], [y_ab, y_ac], [s_ab, s_ac], reference="A", effects="fixed"
    )
    p = indirect.exact(flat=True)
    _, m, s = p.contrast(indirect.inputs.contrast_vector("C", "B"))
    assert m[0] == pytest.approx(y_ac - y_ab) and s[0] == pytest.approx(math.hypot(s_ab, s_ac))
    assert not indirect.splits  # no loop, nothing to split


def test_random_effects_grid_engine_matches_quadrature():
    study, a, b, y, se = _synthetic()
    prior_d, prior_tau = NormalPrior(mu=0, sigma=1.0), HalfNormalPrior(sigma=0.3)
    fam = NMAModel.from_contrasts(study, a, b, y, se, reference="A", priors=NMAPriors(d=prior_d, tau=prior_tau))
    inp = fam.inputs
    x, s, c = inp.design, inp.cov, inp.re_structure

    def like(tau):  # p(y | tau) with d ~ N(0, I) integrated out analytically
        return stats.multivariate_normal(np.zeros(inp.m), s + tau**2 * c + x @ x.T).pdf(inp.y)

    def dens(tau):
        return prior_tau.scipy().pdf(tau) * like(tau)

    z = integrate.quad(dens, 0, 3, limit=200)[0]
    mean_tau = integrate.quad(lambda t: t * dens(t), 0, 3, limit=200)[0] / z
    cdf_02 = integrate.quad(dens, 0, 0.2, limit=200)[0] / z

    def mean_d_b(tau):  # E[d_B | tau, y]
        v = s + tau**2 * c
        a_ = x.T @ np.linalg.solve(v, x) + np.eye(inp.p)
        return np.linalg.solve(a_, x.T @ np.linalg.solve(v, inp.y))[0]

    mean_b = integrate.quad(lambda t: mean_d_b(t) * dens(t), 0, 3, limit=200)[0] / z
    post = fam.exact()
    assert float(post.weights @ post.tau) == pytest.approx(mean_tau, rel=2e-4)
    from harmoni_bayes.exact import GridDistribution, NormalMixture

    assert GridDistribution(post.tau, post.weights, post.edges).cdf(0.2) == pytest.approx(cdf_02, abs=2e-4)
    assert NormalMixture(*post.contrast(np.array([1.0, 0, 0]))).mean() == pytest.approx(mean_b, abs=1e-5)


def test_recovery_of_known_relative_effects_on_simulated_networks():
    """95% credible intervals of d cover the simulated truth in about 95% of 300 networks (random effects)."""
    rng = np.random.default_rng(11)
    study, a, b, _, se = _synthetic()
    priors = NMAPriors(d=NormalPrior(mu=0, sigma=1.0), tau=HalfNormalPrior(sigma=0.2))
    base = NMAInputs.from_contrasts(study, a, b, np.zeros(len(a)), se, reference="A")
    lc = np.linalg.cholesky(base.re_structure)
    ls = np.linalg.cholesky(base.cov)
    hits, n = 0, 0
    for _ in range(300):
        d = rng.normal(0, 1.0, 3)
        tau = abs(rng.normal(0, 0.2))
        y = base.design @ d + tau * lc @ rng.standard_normal(base.m) + ls @ rng.standard_normal(base.m)
        fam = NMAModel.from_contrasts(study, a, b, y, se, reference="A", priors=priors)
        post = fam.exact(n_grid=400)
        from harmoni_bayes.exact import NormalMixture

        for j in range(3):
            e = np.zeros(3)
            e[j] = 1
            mix = NormalMixture(*post.contrast(e))
            lo, hi = mix.ppf(np.array([0.025, 0.975]))
            hits += lo <= d[j] <= hi
            n += 1
    assert 0.92 <= hits / n <= 0.98, hits / n


def test_multi_arm_shared_variance_from_arm_sizes_and_orientation():
    # v_b = mean_j s_j^2 n_j / (n_j + n_b): with n_j = n_b, half of each s_j^2
    assert shared_arm_variance([0.2, 0.2], [100, 100], 100) == pytest.approx(0.02)
    assert shared_arm_variance([0.2, 0.3]) == pytest.approx((0.04 + 0.09) / 4)
    assert shared_arm_variance([0.1, 0.5]) == pytest.approx(0.9 * 0.01)  # capped below min s^2
    # a contrast written the other way round (A vs B instead of B vs A) is the same network
    study, a, b, y, se = _synthetic()
    flipped_a, flipped_b, flipped_y = list(a), list(b), y.copy()
    flipped_a[0], flipped_b[0], flipped_y[0] = b[0], a[0], -y[0]
    p1 = NMAModel.from_contrasts(study, a, b, y, se, reference="A", effects="fixed").exact()
    p2 = NMAModel.from_contrasts(study, flipped_a, flipped_b, flipped_y, se, reference="A", effects="fixed").exact()
    np.testing.assert_allclose(p1.means, p2.means)


def test_ranks_and_sucra():
    d = np.array([[-1.0, -0.5], [-0.2, -0.6], [0.3, -0.1]])  # B, C vs reference A
    ranks = rank_draws(d)
    assert ranks.tolist() == [[3, 1, 2], [3, 2, 1], [2, 3, 1]]
    # clearly separated treatments: SUCRA near 1, 0.5 and 0
    fam = NMAModel.from_contrasts(
        ["s1", "s2"], ["B", "C"], ["A", "A"], [-1.0, -3.0], [0.05, 0.05], reference="A", effects="fixed"
    )
    fit = fam.exact_fit(1000, np.random.default_rng(0))
    sucra = {q.name: q.stats["mean"] for q in fit.quantities if q.name.startswith("sucra[")}
    assert sucra == pytest.approx({"sucra[A]": 0.0, "sucra[B]": 0.5, "sucra[C]": 1.0}, abs=1e-3)
    assert dict(fit.probabilities)["P(rank[C]=1)"] == pytest.approx(1.0)


def test_the_public_api_takes_any_table_of_contrasts():
    """A contrast table that is not HRs (log odds ratios, a three-arm trial) goes through build, exact fit and MCMC
    model construction without the evidence tables."""
    fam = NMAModel.from_contrasts(
        ["a", "b", "b", "c"], ["X", "Y", "Z", "Z"], ["P", "P", "P", "X"], [0.4, 0.2, 0.5, 0.1], [0.2, 0.25, 0.3, 0.2]
    )
    assert fam.inputs.reference == "P"  # in the most studies
    assert fam.inputs.multi_arm == ["b"]
    model = fam.build_model()
    assert {"d", "tau", "eta"} <= {v.name for v in model.free_RVs} | {v.name for v in model.deterministics}
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    nc = NMAModel(fam.inputs, parameterisation="non_centred")
    assert "z" in {v.name for v in nc.build_model().free_RVs}


def test_conditional_parameterisation_is_the_exact_model_density():
    """The MCMC model's log density at two points (eta, tau) differs as log p(tau) + log p(d) + log N(y | X d,
    S + tau^2 C) + log|dd/deta| does, computed independently with scipy (dense covariance, numerical Jacobian)."""
    from harmoni_bayes.models.nma import ConditionalShift

    study, a, b, y, se = _synthetic()
    priors = NMAPriors(d=NormalPrior(mu=0, sigma=1.0), tau=HalfNormalPrior(sigma=0.3))
    fam = NMAModel.from_contrasts(study, a, b, y, se, reference="A", priors=priors)
    inp = fam.inputs
    model = fam.build_model()
    logp = model.compile_logp(jacobian=False)
    shift = ConditionalShift.fit(inp, priors.d, priors.tau)

    def d_of(eta, tau):
        u = tau**2 / shift.tau1**2
        var = shift.v0 + (shift.vmax - shift.v0) * shift.k * u / (1 + shift.k * u)
        return shift.m0 + (shift.m1 - shift.m0) * 2 * u / (1 + u) + np.sqrt(var) * (shift.chol @ eta)

    def independent(eta, tau):
        d = d_of(eta, tau)
        jac = np.column_stack([(d_of(eta + 1e-6 * e, tau) - d_of(eta - 1e-6 * e, tau)) / 2e-6 for e in np.eye(3)])
        return (
            stats.halfnorm(scale=0.3).logpdf(tau)
            + stats.norm(0, 1).logpdf(d).sum()
            + stats.multivariate_normal(inp.design @ d, inp.cov + tau**2 * inp.re_structure).logpdf(inp.y)
            + np.linalg.slogdet(jac)[1]
        )

    points = [(np.array([0.3, -1.0, 0.5]), 0.05), (np.array([-0.7, 0.2, 1.4]), 0.6)]
    model_lp = [float(logp({"eta": e, "tau_log__": math.log(t)})) for e, t in points]
    indep = [independent(e, t) for e, t in points]
    assert model_lp[0] - model_lp[1] == pytest.approx(indep[0] - indep[1], abs=1e-6)
    # at its anchor points the shift reproduces the exact conditional posterior moments of d
    fixed = ConditionalShift.fit(inp, priors.d, None)
    cov0 = np.linalg.inv(inp.design.T @ np.linalg.solve(inp.cov, inp.design) + np.eye(3))
    sd0 = np.sqrt(fixed.v0)
    np.testing.assert_allclose((sd0[:, None] * fixed.chol) @ (sd0[:, None] * fixed.chol).T, cov0, atol=1e-12)
    np.testing.assert_allclose(shift.eta(d_of(points[1][0], 0.6), 0.6), points[1][0], atol=1e-10)


# ---------------------------------------------------------------------------------------------
# bad input: clear errors listing every problem
# ---------------------------------------------------------------------------------------------


def test_disconnected_network_names_its_components():
    with pytest.raises(ModelError) as err:
        NMAInputs.from_contrasts(["s1", "s2"], ["B", "D"], ["A", "C"], [0.1, 0.2], [0.1, 0.1])
    assert "{A, B} | {C, D}" in err.value.message()
    assert components(["A", "B", "C"], [("A", "B")]) == [["A", "B"], ["C"]]


def test_invalid_contrast_sets_and_duplicates_are_refused_all_at_once():
    with pytest.raises(ModelError) as err:
        NMAInputs.from_contrasts(
            ["s1", "s1", "s2", "s2", "s3"],
            ["B", "A", "B", "D", "A"],
            ["A", "B", "A", "C", "A"],
            [0.1, -0.1, 0.2, 0.3, 0.0],
            [0.1, 0.1, 0.1, 0.1, -1],
        )
    msg = err.value.message()
    assert "duplicated contrast" in msg and "s1" in msg
    assert "compares a treatment with itself" in msg and "standard error must be positive" in msg
    with pytest.raises(ModelError, match="no valid contrast set"):
        NMAInputs.from_contrasts(["s", "s"], ["B", "D"], ["A", "C"], [0.1, 0.2], [0.1, 0.1])
    with pytest.raises(ModelError, match="reference treatment 'Z' is not in the network"):
        NMAInputs.from_contrasts(["s"], ["B"], ["A"], [0.1], [0.1], reference="Z")


@pytest.mark.parametrize(
    ("endpoint", "stratum", "missing"),
    [
        ("PFS", "1-49%", "chemo (reference), pembrolizumab+chemo (target)"),
        ("PFS", ">=50%", "pembrolizumab+chemo (target)"),
        ("OS", "1-49%", "ivonescimab (target)"),
        ("OS", ">=50%", "ivonescimab (target)"),
        ("OS", "<1%", "ivonescimab (target)"),
    ],
)
def test_strata_where_ivonescimab_cannot_reach_pembrolizumab_chemo_say_so(endpoint, stratum, missing):
    with pytest.raises(ModelError) as err:
        run_spec(_spec(endpoint=endpoint, stratum=stratum))
    msg = err.value.message()
    assert f"not in the {endpoint} network for PD-L1 {stratum} as of 2025-06-30: {missing}" in msg
    assert "ivonescimab vs pembrolizumab+chemo cannot be estimated" in msg and "components {" in msg


def test_a_disconnected_stratum_network_names_the_components():
    spec = _spec(
        endpoint="PFS", stratum=">=50%", exclude_trials=["KEYNOTE-024"], network={"target": ["ivonescimab", "chemo"]}
    )
    with pytest.raises(ModelError) as err:
        run_spec(spec)
    msg = err.value.message()
    assert "is disconnected: {cemiplimab, chemo, tislelizumab+chemo} | {ivonescimab, pembrolizumab}" in msg
    assert "ivonescimab and chemo are in different components" in msg


def test_treatments_named_in_the_spec_must_exist_in_the_data():
    with pytest.raises(SpecError) as err:
        run_spec(_spec(network={"target": ["ivonescimab", "durvalumab+chemo"], "reference": "chemotherapy"}))
    msg = err.value.message()
    assert "'durvalumab+chemo': no row names it" in msg and "'chemotherapy': no row names it" in msg
    with pytest.raises(SpecError, match="does not belong in a first-line network"):
        _spec(ivonescimab_trials=["HARMONi-A"])


def _network_csv(tmp_path, extra: list[dict]) -> Path:
    """The shipped network table plus rows made from a copy of CheckMate 9LA's ITT OS row with cells changed."""
    with open(shipped_path("nsclc_pdl1_network.csv"), newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    base = next(r for r in rows if r[0] == "CheckMate 9LA" and r[header.index("subgroup_factor")] == "overall")
    for cells in extra:
        row = list(base)
        for k, v in cells.items():
            row[header.index(k)] = v
        rows.append(row)
    path = tmp_path / "network.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])
    return path


def test_a_trial_whose_arms_form_no_valid_contrast_set_is_refused(tmp_path):
    path = _network_csv(
        tmp_path,
        [
            {
                "treatment_experimental": "nivolumab",
                "treatment_control": "pembrolizumab",
                "hr": "0.9",
                "ci_lower": "0.75",
                "ci_upper": "1.08",
                "note": "made up",
            }
        ],
    )
    with pytest.raises(ModelError, match="study CheckMate 9LA: its arms form no valid contrast set"):
        run_spec(_spec(endpoint="OS", network_file=str(path)))


def test_duplicated_contrasts_are_refused(tmp_path):
    path = _network_csv(
        tmp_path,
        [
            {
                "treatment_experimental": "chemo",
                "treatment_control": "nivolumab+ipilimumab+chemo",
                "hr": "1.5",
                "ci_lower": "1.25",
                "ci_upper": "1.82",
                "note": "same contrast written the other way round",
            }
        ],
    )
    with pytest.raises(ModelError, match="duplicated contrast"):
        run_spec(_spec(endpoint="OS", network_file=str(path)))


def test_reference_absent_from_the_network():
    with pytest.raises(ModelError, match=r"atezolizumab \(reference\)"):
        run_spec(_spec(endpoint="PFS", stratum=">=50%", network={"reference": "atezolizumab"}))


def test_cli_exits_2_without_traceback(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(
        'model = "nma"\ntitle = "t"\nas_of = 2025-06-30\nmethod = "exact"\n'
        '[evidence]\nendpoint = "PFS"\nstratum = "1-49%"\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["run", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "{ivonescimab, pembrolizumab}" in res.output


# ---------------------------------------------------------------------------------------------
# the network table and the selection of rows
# ---------------------------------------------------------------------------------------------


def test_network_table_is_read_with_its_own_schema():
    df = load_network()
    assert df.attrs["schema"] == "network" and len(df) == 94
    again = read_evidence(shipped_path("nsclc_pdl1_network.csv"))  # detected from the header
    assert again.attrs["schema"] == "network" and list(again.row_id) == list(df.row_id)
    assert (df.disclosed == "").sum() > 0  # undated rows are allowed here, not in the trial table
    res = CliRunner().invoke(app, ["evidence", "validate", str(shipped_path("nsclc_pdl1_network.csv"))])
    assert res.exit_code == 0 and "valid network table" in res.output


def test_network_table_still_refuses_a_blank_node(tmp_path):
    path = _network_csv(tmp_path, [{"treatment_control": "", "hr": "0.7"}])
    with pytest.raises(EvidenceError, match="treatment_control"):
        read_evidence(path)


@pytest.mark.parametrize(
    ("text", "stratum"),
    [
        ("TPS >=50%", ">=50%"),
        ("ITT (TPS>=50%)", ">=50%"),
        ("TC3 or IC3 (SP142 high)", ">=50%"),
        ("PD-L1 1-49%", "1-49%"),
        ("TC 1-49% (JS311)", "1-49%"),
        ("PD-L1 <1% (Part 1b)", "<1%"),
        ("TC1/2/3 or IC1/2/3 (SP142 >=1%; whole trial)", ">=1%"),
        ("TPS >=20%", ">=20%"),
        ("ITT", None),
    ],
)
def test_pdl1_strata_are_read_across_spellings(text, stratum):
    assert pdl1_stratum(text) == stratum


def test_selection_os_all_comers_one_row_per_trial_no_overlap():
    spec = _spec(endpoint="OS", stratum="all")
    used, record = select_network(spec, EvidenceTables(spec))
    assert not used.trial.duplicated().any()
    assert "KEYNOTE-042 China" not in set(used.trial) and "KEYNOTE-407 China" not in set(used.trial)
    assert "CheckMate 227 Part 1" not in set(used.trial)  # no whole-population row
    kn042 = used[used.trial == "KEYNOTE-042"].iloc[0]
    assert kn042.subgroup_level == "TPS >=1%" and kn042.stratum == ">=1%"  # its ITT is TPS >= 1%
    ex = record.excluded.set_index("row_id").reason
    assert any("EGFR-mutant" in r for r in ex[ex.index.str.startswith("HARMONi-A|")])
    assert any("reuses patients of KEYNOTE-407" in r for r in ex[ex.index.str.startswith("KEYNOTE-407 China|")])
    assert all(r.startswith("not yet disclosed") or "PD-L1" in r for r in ex[ex.index.str.contains("2026-09-15")])
    harmoni2 = used[used.trial == "HARMONi-2"].iloc[0]
    assert (harmoni2.node_e, harmoni2.node_c, harmoni2.hr) == ("ivonescimab", "pembrolizumab", 0.777)
    assert set(record.excluded.table) == {"network", "trials"} and record.excluded.source.str.len().min() > 0


def test_selection_by_stratum_keeps_one_partition_per_trial():
    spec = _spec(endpoint="OS", stratum=">=50%", network={"target": ["pembrolizumab+chemo", "pembrolizumab"]})
    used, record = select_network(spec, EvidenceTables(spec))
    assert set(used.stratum) == {">=50%"} and not used.trial.duplicated().any()
    assert {"KEYNOTE-024", "KEYNOTE-042", "EMPOWER-Lung 1", "IMpower110"} <= set(used.trial)
    reasons = record.excluded.set_index("row_id").reason
    assert any("PD-L1 stratum >=1%, not this network's stratum >=50%" in r for r in reasons)
    assert any("PD-L1 stratum >=20%" in r for r in reasons)
    # a pooled analysis stands in for its trials only where they do not report the stratum
    pfs, _ = select_network(*(lambda s: (s, EvidenceTables(s)))(_spec(endpoint="PFS", stratum="<1%")))
    assert "KEYNOTE-189 + KEYNOTE-407 pooled (TPS<1%)" in set(pfs.trial)
    os_, rec = select_network(*(lambda s: (s, EvidenceTables(s)))(_spec(endpoint="OS", stratum="<1%")))
    assert "KEYNOTE-189 + KEYNOTE-407 pooled (TPS<1%)" not in set(os_.trial)
    assert any("reuses patients of KEYNOTE-189 and KEYNOTE-407" in r for r in rec.excluded.reason)


def test_undated_rows_policy():
    keep = _spec(endpoint="OS", stratum=">=50%", network={"target": ["pembrolizumab+chemo", "pembrolizumab"]})
    used, record = select_network(keep, EvidenceTables(keep))
    assert record.notes["network"]["undated_rows_used"]
    drop = _spec(
        endpoint="OS", stratum=">=50%", undated="drop", network={"target": ["pembrolizumab+chemo", "pembrolizumab"]}
    )
    used2, record2 = select_network(drop, EvidenceTables(drop))
    assert (used2.disclosed != "").all()
    assert any("undated rows are left out" in r for r in record2.excluded.reason)
    # a dated later analysis beats an undated review-table row: KEYNOTE-024 enters with its 5-year update
    assert used.set_index("trial").loc["KEYNOTE-024", "hr"] == 0.62


# ---------------------------------------------------------------------------------------------
# shipped specs: exact fits, summary contract, report
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def os_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("nma") / "os_all"
    return save_result(run_spec(SPECS["nsclc_nma_os_all"], method="exact"), out)


def test_shipped_specs_state_their_date_and_notes():
    assert set(SPECS) == {"nsclc_nma_os_all", "nsclc_nma_pdl1_1_49", "nsclc_nma_pdl1_ge50"}
    for path in SPECS.values():
        text = path.read_text()
        assert "as_of = 2025-06-30" in text and "notes = [" in text and 'model = "nma"' in text


def test_os_all_summary_holds_the_contract_quantities(os_all):
    summary = json.loads((os_all / "summary.json").read_text())
    names = [q["name"] for q in summary["quantities"]]
    assert names[0] == TARGET and "tau" in names
    assert {f"hr[{t}]" for t in ("pembrolizumab", "pembrolizumab+chemo", "ivonescimab")} <= set(names)
    assert "hr[chemo]" not in names and "sucra[chemo]" in names and "rank[ivonescimab]" in names
    probs = {p["name"]: p["value"] for p in summary["probabilities"]}
    assert {f"P({TARGET}<1)", f"P({TARGET}<0.9)", "P(rank[ivonescimab]=1)"} <= set(probs)
    scales = {q["name"]: q["scale"] for q in summary["quantities"]}
    assert scales[TARGET] == "hr" and scales["sucra[chemo]"] == "probability" and scales["rank[chemo]"] == "identity"
    q = {x["name"]: x for x in summary["quantities"]}
    # the chained estimate: ivonescimab vs pembro+chemo = (ivo vs chemo) / (pembro+chemo vs chemo), medians aside
    assert q[TARGET]["q2.5"] < q[TARGET]["median"] < q[TARGET]["q97.5"]
    sucras = [x["mean"] for n, x in q.items() if n.startswith("sucra[")]
    assert sum(sucras) == pytest.approx(len(sucras) / 2, abs=0.01)  # mean SUCRA is 1/2 by construction


def test_os_all_report_shows_network_figures_headline_and_left_out_rows(os_all):
    (html,) = write_report(os_all, fmt="html")
    page = html.read_text()
    for fig in ("network", "nma_forest", "league", "ranks"):
        assert f'id="figure-{fig}"' in page
    assert "Probability that ivonescimab improves OS over pembrolizumab + chemotherapy (network HR &lt; 1)" in page
    assert "reuses patients of KEYNOTE-407" in page and "EGFR-mutant" in page
    assert "No trial compared ivonescimab with pembrolizumab + chemotherapy directly" in page
    r = load_result(os_all)
    assert r.summary.model == "nma" and get_family("nma").presentation.headline_quantity == TARGET


def test_league_table_is_consistent_with_summary(os_all):
    from harmoni_bayes.reporting.network import league_table_data, network_graph_data, rank_plot_data

    r = load_result(os_all)
    league = league_table_data(r).set_index(["row", "column"])
    q = {x["name"]: x for x in r.summary.quantities}
    # exp(d_row - d_col) from the stored draws, vs the exact median in summary.json
    assert league.loc[("ivonescimab", "pembrolizumab+chemo"), "estimate"] == pytest.approx(
        q[TARGET]["median"], rel=0.03
    )
    ab = league.loc[("pembrolizumab", "chemo"), "estimate"] * league.loc[("chemo", "pembrolizumab"), "estimate"]
    assert ab == pytest.approx(1.0)
    graph = network_graph_data(r)
    edges = graph[graph.kind == "edge"].set_index(["treatment", "other"])
    assert edges.loc[("chemo", "pembrolizumab"), "trials"] == 2
    ranks = rank_plot_data(r)
    assert list(ranks.sucra) == sorted(ranks.sucra, reverse=True)


def test_exact_fit_of_a_15_treatment_25_trial_network():
    """The benchmark's network (speed is measured in benchmarks/bench_nma.py, never here) fits exactly."""
    rng = np.random.default_rng(3)
    treatments = [f"T{i:02d}" for i in range(15)]
    study, a, b = [], [], []
    for k in range(25):  # a spanning tree first, then extra edges
        i = k + 1 if k < 14 else int(rng.integers(1, 15))
        j = int(rng.integers(0, i)) if k < 14 else int(rng.integers(0, 15))
        if i == j:
            j = (j + 1) % 15
        study.append(f"s{k}")
        a.append(treatments[i])
        b.append(treatments[j])
    y = rng.normal(-0.2, 0.2, 25)
    se = rng.uniform(0.08, 0.25, 25)
    fam = NMAModel.from_contrasts(study, a, b, y, se, reference="T00")
    fit = fam.exact_fit(4000, np.random.default_rng(0))
    assert fit.quantities and all(np.isfinite(s.stats["median"]) for s in fit.quantities)


# ---------------------------------------------------------------------------------------------
# slow: NUTS against the exact engine; SBC of the random-effects model
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_nuts_matches_the_exact_engine():
    """Both parameterisations (conditional: the default; non-centred) on the synthetic network with a three-arm
    trial (NUTS on numpyro: seconds to compile, where PyMC's own sampler takes most of a minute), and the shipped
    all-comers OS spec with its own backend, against the exact grid engine."""
    from harmoni_bayes.config import SamplerConfig
    from harmoni_bayes.exact import GridDistribution, NormalMixture
    from harmoni_bayes.inference import sample_numpyro

    study, a, b, y, se = _synthetic()
    priors = NMAPriors(d=NormalPrior(mu=0, sigma=1.0), tau=HalfNormalPrior(sigma=0.3))
    fam = NMAModel.from_contrasts(study, a, b, y, se, reference="A", priors=priors, target=("D", "B"))
    post = fam.exact()
    c = fam.inputs.contrast_vector("D", "B")
    truth = {
        "target": NormalMixture(*post.contrast(c)).summary("log"),
        "tau": GridDistribution(post.tau, post.weights, post.edges).summary(),
    }
    for param, accept in (("conditional", 0.9), ("non_centred", 0.99)):
        fam.parameterisation = param
        config = SamplerConfig(draws=1500, tune=1000, chains=2, seed=5, target_accept=accept, backend="numpyro")
        idata = sample_numpyro(fam.build_model(), config)
        assert int(idata.sample_stats.diverging.sum()) <= (0 if param == "conditional" else 5), param
        d = idata.posterior["d"].values.reshape(-1, 3)
        tau = idata.posterior["tau"].values.ravel()
        for name, draws in (("target", d @ c), ("tau", tau)):
            t = truth[name]
            assert np.median(draws) == pytest.approx(t["median"], abs=0.1 * t["sd"] + 0.01), (param, name)
            assert np.std(draws) == pytest.approx(t["sd"], rel=0.1), (param, name)
    res = run_spec(SPECS["nsclc_nma_os_all"], method="mcmc", draws=1000)
    ex = run_spec(SPECS["nsclc_nma_os_all"], method="exact")
    assert res.summary.diagnostics["ok"] and res.summary.diagnostics["divergences"] == 0
    for name in (TARGET, "hr[pembrolizumab+chemo]", "tau"):
        m, e = res.summary.quantity(name), ex.summary.quantity(name)
        assert m["median"] == pytest.approx(e["median"], rel=0.05, abs=0.01), name
        assert m["q97.5"] == pytest.approx(e["q97.5"], rel=0.1), name
    assert res.summary.probability(f"P({TARGET}<1)")["value"] == pytest.approx(
        ex.summary.probability(f"P({TARGET}<1)")["value"], abs=0.03
    )


@pytest.mark.slow
def test_sbc_random_effects_nma():
    """Simulation-based calibration through the exact engine: for 500 networks drawn from the prior, the PITs of
    d_B, d_D, tau and the D-vs-B contrast are uniform (chi-square over 10 bins, z-tests of mean and variance)."""
    from harmoni_bayes.exact import GridDistribution, NormalMixture

    rng = np.random.default_rng(2)
    study, a, b, _, se = _synthetic()
    priors = NMAPriors(d=NormalPrior(mu=0, sigma=0.5), tau=HalfNormalPrior(sigma=0.3))
    base = NMAInputs.from_contrasts(study, a, b, np.zeros(len(a)), se, reference="A")
    lc, ls = np.linalg.cholesky(base.re_structure), np.linalg.cholesky(base.cov)
    pits: dict[str, list[float]] = {"dB": [], "dD": [], "tau": [], "D-B": []}
    for _ in range(500):
        d = rng.normal(0, 0.5, 3)
        tau = abs(rng.normal(0, 0.3))
        y = base.design @ d + tau * lc @ rng.standard_normal(base.m) + ls @ rng.standard_normal(base.m)
        post = NMAModel.from_contrasts(study, a, b, y, se, reference="A", priors=priors).exact(n_grid=600)
        pits["dB"].append(float(NormalMixture(*post.contrast(np.array([1.0, 0, 0]))).cdf(d[0])))
        pits["dD"].append(float(NormalMixture(*post.contrast(np.array([0, 0, 1.0]))).cdf(d[2])))
        pits["D-B"].append(float(NormalMixture(*post.contrast(np.array([-1.0, 0, 1.0]))).cdf(d[2] - d[0])))
        pits["tau"].append(float(GridDistribution(post.tau, post.weights, post.edges).cdf(tau)))
    for name, u in pits.items():
        u = np.asarray(u)
        counts = np.bincount(np.minimum((u * 10).astype(int), 9), minlength=10)
        p = stats.chisquare(counts).pvalue
        z_mean = (u.mean() - 0.5) / math.sqrt(1 / 12 / u.size)
        z_var = (np.mean((u - 0.5) ** 2) - 1 / 12) / math.sqrt((1 / 80 - 1 / 144) / u.size)
        assert p > 0.001 and abs(z_mean) < 3.3 and abs(z_var) < 3.3, (name, counts.tolist(), p, z_mean, z_var)
