"""The family registry: a new family is one class, one spec class and one registry line.

A toy family (one trial's log HR with a normal prior: the conjugate normal model) is defined and registered
here, in the test file alone, and taken through ``run_spec`` -> ``summary.json`` -> the HTML report without
editing any other module.  Its exact engine is the closed-form conjugate posterior, which the test checks
against an independent numerical integration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import Field
from scipy import integrate, stats

from harmoni_bayes.config import EvidenceSpec, SpecBase
from harmoni_bayes.errors import ModelError, SpecError
from harmoni_bayes.models import families, get_family, register, unregister
from harmoni_bayes.models.base import (
    CI,
    Draws,
    EvidenceTables,
    ExactFit,
    HeadlineContext,
    Line,
    ModelFamily,
    P,
    Presentation,
    Stats,
    line,
    posterior_array,
    probabilities_below,
    select_trials,
)
from harmoni_bayes.reporting import write_report
from harmoni_bayes.results import load_result, save_result
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import parse_spec

PRIOR_SD = 2.0
PDL1 = Path(__file__).resolve().parents[1] / "models" / "harmoni2_pfs_pdl1.toml"


class ToySpec(SpecBase):
    """One trial's ITT estimate with a normal prior on its log HR."""

    model: Literal["toy_conjugate"]
    evidence: EvidenceSpec
    prior_sd: float = Field(PRIOR_SD, gt=0)


def _headline(c: HeadlineContext) -> list[Line]:
    return [
        line("answer", f"Toy: probability that {c.experimental} beats {c.control}: ", P("P(hr_toy<1)"), c.when_suffix),
        line("estimate", "Toy HR ", CI("hr_toy"), "."),
    ]


class ToyFamily(ModelFamily):
    """y ~ N(theta, s^2), theta ~ N(0, prior_sd^2): posterior N(m, v), v = 1/(1/s^2 + 1/prior_sd^2), m = v y/s^2."""

    name = "toy_conjugate"
    spec_class = ToySpec
    capabilities = frozenset({"exact"})
    presentation = Presentation(
        headline=_headline,
        names={"hr_toy": "toy HR (conjugate normal posterior)"},
        figures=("forest", "densities"),
        densities=("hr_toy",),
        forest="target",
        headline_quantity="hr_toy",
    )

    def __init__(self, y: float, se: float, prior_sd: float):
        self.y, self.se, self.prior_sd = y, se, prior_sd
        self.labels = []
        self.thresholds = self.default_thresholds

    @classmethod
    def from_spec(cls, spec, tables: EvidenceTables):
        sel, record = select_trials(spec, tables, subgroup_factor="overall")
        if len(sel.used) != 1:
            raise ModelError(f"the toy family needs one row, got {len(sel.used)}")
        fam = cls(float(sel.used.log_hr.iloc[0]), float(sel.used.se.iloc[0]), spec.prior_sd)
        fam.set_thresholds(spec)
        return fam, record

    def posterior(self) -> tuple[float, float]:
        v = 1.0 / (1.0 / self.se**2 + 1.0 / self.prior_sd**2)
        return v * self.y / self.se**2, float(np.sqrt(v))

    def build_model(self):
        import pymc as pm

        with pm.Model() as model:
            theta = pm.Normal("theta", 0.0, self.prior_sd)
            pm.Normal("y", theta, self.se, observed=self.y)
            pm.Deterministic("hr_toy", pm.math.exp(theta))
        return model

    def quantities(self, idata) -> list[Draws]:
        return [Draws("hr_toy", "hr", posterior_array(idata, "hr_toy"))]

    def probabilities(self, idata) -> list[Draws]:
        return probabilities_below(self.quantities(idata), ["hr_toy"], self.thresholds)

    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        from harmoni_bayes.exact import NormalMixture

        m, s = self.posterior()
        mix = NormalMixture(np.ones(1), np.array([m]), np.array([s]))
        probs = [(f"P(hr_toy<{t:g})", mix.prob_below(np.log(t))) for t in self.thresholds]
        return ExactFit(
            [Stats("hr_toy", "hr", mix.summary("hr"))], probs, {"hr_toy": np.exp(rng.normal(m, s, n_draws))}
        )

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"hr_toy": np.exp(rng.normal(0.0, self.prior_sd, n))}

    def assumptions(self) -> list[str]:
        return ["Toy: the log HR estimate is normal around the true log HR."]


@pytest.fixture
def toy():
    register(ToyFamily)
    yield ToyFamily
    unregister("toy_conjugate")


SPEC = {
    "name": "toy",
    "title": "Toy conjugate model",
    "model": "toy_conjugate",
    "method": "exact",
    "thresholds": [1.0, 0.6],
    "evidence": {"trials": ["HARMONi-2"], "endpoint": "PFS", "as_of": "2025-06-30"},
}


def test_toy_family_runs_saves_and_reports_without_other_edits(toy, tmp_path):
    result = run_spec(parse_spec(dict(SPEC)))
    out = save_result(result, tmp_path / "toy")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "toy_conjugate" and summary["as_of"] == "2025-06-30"
    assert [q["name"] for q in summary["quantities"]] == ["hr_toy"]
    # thresholds come from the spec
    assert [p["name"] for p in summary["probabilities"]] == ["P(hr_toy<1)", "P(hr_toy<0.6)"]
    (html_path,) = write_report(out, fmt="html")
    page = html_path.read_text()
    assert "Toy: probability that ivonescimab beats pembrolizumab" in page
    assert "toy HR (conjugate normal posterior)" in page
    assert 'id="figure-forest"' in page and 'id="figure-densities"' in page
    assert load_result(out).summary.to_dict() == summary


def test_toy_exact_engine_matches_numerical_integration(toy):
    """The conjugate closed form agrees with brute-force quadrature of prior x likelihood."""
    result = run_spec(parse_spec(dict(SPEC)))
    y = float(result.evidence_used.log_hr.iloc[0])
    se = float(result.evidence_used.se.iloc[0])

    def unnorm(t):
        return stats.norm.pdf(t, 0, PRIOR_SD) * stats.norm.pdf(y, t, se)

    z = integrate.quad(unnorm, -10, 10, points=[y])[0]
    p_below_0 = integrate.quad(unnorm, -10, 0, points=[y])[0] / z
    assert result.summary.probability("P(hr_toy<1)")["value"] == pytest.approx(p_below_0, rel=1e-5)
    median = result.summary.quantity("hr_toy")["median"]
    assert integrate.quad(unnorm, -10, np.log(median), points=[y])[0] / z == pytest.approx(0.5, abs=1e-5)


def test_registration_is_checked(toy):
    assert "toy_conjugate" in families() and get_family("toy_conjugate") is ToyFamily
    with pytest.raises(ValueError, match="already registered"):
        register(type("Other", (ToyFamily,), {}))
    with pytest.raises(TypeError, match="spec_class"):
        register(type("NoSpec", (), {"name": "x"}))


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "x", "title": "x", "model": "nope"})
    assert "random_effects" in err.value.message() and "subgroups" in err.value.message()


def test_a_family_without_an_exact_engine_refuses_method_exact(toy):
    spec = parse_spec(dict(SPEC))
    ToyFamily.capabilities = frozenset()
    try:
        with pytest.raises(ModelError, match="no exact engine"):
            run_spec(spec)
    finally:
        ToyFamily.capabilities = frozenset({"exact"})


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"method": "bogus"}, "method"),
        ({"backend": "stan"}, "backend"),
        ({"draws": 3}, "draws"),
        ({"draws": 10**12}, "draws"),
        ({"seed": -1}, "seed"),
        ({"as_of": "2025-02-30"}, "as_of"),
    ],
)
def test_run_spec_overrides_are_validated_like_the_spec(kwargs, where):
    with pytest.raises(SpecError) as err:
        run_spec(PDL1, **kwargs)
    assert where in err.value.message()


def test_every_shipped_family_declares_its_presentation():
    from harmoni_bayes.reporting.figures import FIGURES

    for name in families():
        fam = get_family(name)
        assert fam.presentation.headline is not None, name
        assert set(fam.presentation.figures) <= set(FIGURES), name
        assert fam.spec_class.model_fields["model"].annotation.__args__ == (name,)
