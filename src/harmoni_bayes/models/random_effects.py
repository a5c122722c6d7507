"""Random-effects synthesis of log-HRs across trials (the normal-normal hierarchical model).

    y_k | theta_k ~ N(theta_k, s_k^2)          observed log HR of trial k and its SE
    theta_k | mu, tau ~ N(mu, tau^2)           trials exchangeable around the pooled effect
    mu ~ N(0, 2^2)                             default; 95% prior range of the pooled HR 0.02 to 50
    tau ~ Half-normal(0.5)                     default; prior median tau 0.34: two trials' true HRs
                                               typically within a factor of 2.5 of each other
    theta_new = mu + tau z                     the effect a new trial would show

Reported on the HR scale: ``hr_pooled`` = exp(mu), ``hr_new_trial`` = exp(theta_new), ``hr[<trial>]`` =
exp(theta_k); and ``tau`` on the log-HR scale.  Alternatives for tau: ``half_cauchy`` (heavier tail) and
``turner_lognormal`` (Turner et al. 2015, all-cause mortality, pharmacological vs placebo: log tau^2 ~
N(-3.95, 1.34^2)).  With three trials the tau posterior is close to its prior: the report overlays them.

Sampling uses the marginal likelihood (no funnel; see :mod:`.nnhm`).  ``method = "exact"`` integrates
over a tau grid instead (:mod:`harmoni_bayes.exact`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import EvidenceSpec, SpecBase
from ..errors import ModelError
from ..priors import HalfNormalPrior, NormalPrior, TauPrior
from . import register
from .base import (
    CI,
    Draws,
    EvidenceRecord,
    EvidenceTables,
    ExactFit,
    Forecast,
    HeadlineContext,
    Line,
    ModelFamily,
    P,
    Presentation,
    Stats,
    line,
    posterior_array,
    probabilities_below,
    reasons_as_problems,
    select_trials,
)
from .nnhm import TAU_SENSITIVITY, NNHMInputs, add_nnhm, exact_joint_draws


class RandomEffectsPriors(BaseModel):
    """Priors of the random-effects model (log-HR scale)."""

    model_config = ConfigDict(extra="forbid")
    mu: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=2.0))
    tau: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))


class RandomEffectsSpec(SpecBase):
    """Spec of a random-effects synthesis: ``[evidence]`` names the trials (one ITT row each) and endpoint."""

    model: Literal["random_effects"]
    evidence: EvidenceSpec
    priors: RandomEffectsPriors = Field(default_factory=RandomEffectsPriors)


def _headline(c: HeadlineContext) -> list[Line]:
    out = [
        line(
            "answer",
            f"Probability that {c.experimental} improves {c.endpoint} over {c.control} (pooled HR < 1): ",
            P("P(hr_pooled<1)"),
            c.when_suffix,
        ),
        line("estimate", "Pooled HR ", CI("hr_pooled"), "."),
    ]
    if "hr_new_trial" in c.quantities:
        parts: list = ["A new trial like these would show HR ", CI("hr_new_trial")]
        if "P(hr_new_trial<1)" in c.probabilities:
            parts += ["; probability it shows HR < 1: ", P("P(hr_new_trial<1)")]
        out.append(line("detail", *parts, "."))
    if "tau" in c.quantities:
        out.append(line("detail", "Between-trial heterogeneity (SD of true log HRs, tau) ", CI("tau"), "."))
    return out


@register
class RandomEffectsModel(ModelFamily):
    """Random-effects meta-analysis of one log-HR per trial."""

    name = "random_effects"
    spec_class = RandomEffectsSpec
    dim = "trial"
    capabilities = frozenset({"exact", "forecast"})
    forecast = Forecast("hr_new_trial", "new_trial")
    sensitivity = TAU_SENSITIVITY
    presentation = Presentation(
        headline=_headline,
        names={
            "hr_pooled": "pooled HR (average across trials)",
            "hr_new_trial": "HR a new, similar trial would show",
            "tau": "heterogeneity: SD of the true log HRs (tau)",
        },
        short_labels={"hr_pooled": "Pooled", "hr_new_trial": "New trial"},
        figures=("forest", "densities"),
        densities=("hr_pooled", "hr_new_trial", "tau"),
        forest="trials",
        headline_quantity="hr_pooled",
    )

    def __init__(
        self,
        inputs: NNHMInputs,
        priors: RandomEffectsPriors | None = None,
        thresholds: tuple[float, ...] | None = None,
    ):
        self.inputs = inputs
        self.labels = inputs.labels
        self.y, self.se = inputs.y, inputs.se
        self.priors = priors or RandomEffectsPriors()
        self.thresholds = tuple(thresholds or self.default_thresholds)

    @classmethod
    def from_arrays(cls, labels: list[str], y: Any, se: Any, priors: RandomEffectsPriors | None = None):
        """Build from plain arrays of log-HR estimates and SEs (any scale works the same way)."""
        return cls(NNHMInputs(labels, y, se), priors)

    @classmethod
    def from_spec(cls, spec: RandomEffectsSpec, tables: EvidenceTables) -> tuple[RandomEffectsModel, EvidenceRecord]:
        """One ITT row per listed trial, selected as of the spec's date."""
        sel, record = select_trials(spec, tables)
        used = sel.used
        if len(used) < 1:
            raise ModelError(
                f"no usable rows for {spec.evidence.trials} {spec.evidence.endpoint}", reasons_as_problems(sel.excluded)
            )
        if used.trial.duplicated().any():
            raise ModelError("random-effects synthesis needs one row per trial; set subgroup_factor = 'overall'")
        family = cls(NNHMInputs(list(used.trial), used.log_hr, used.se), spec.priors)
        family.set_thresholds(spec)
        return family, record

    def build_model(self):
        """mu, tau with the marginal likelihood; theta, theta_new and the HR-scale deterministics."""
        import pymc as pm

        with pm.Model(coords={self.dim: self.labels}) as model:
            mu = self.priors.mu.to_pymc("mu")
            tau = self.priors.tau.to_pymc("tau")
            theta, theta_new = add_nnhm(self.dim, self.y, self.se, mu, tau)
            pm.Deterministic("hr_pooled", pm.math.exp(mu))
            pm.Deterministic("hr_new_trial", pm.math.exp(theta_new))
            pm.Deterministic("hr", pm.math.exp(theta), dims=self.dim)
        return model

    # -- posterior quantities under the summary.json names -------------------------------------------
    def quantities(self, idata) -> list[Draws]:
        """``hr_pooled``, ``tau``, ``hr_new_trial`` and ``hr[<trial>]``."""
        hr = posterior_array(idata, "hr")
        out = [
            Draws("hr_pooled", "hr", posterior_array(idata, "hr_pooled")),
            Draws("tau", "sd", posterior_array(idata, "tau")),
            Draws("hr_new_trial", "hr", posterior_array(idata, "hr_new_trial")),
        ]
        out += [Draws(f"hr[{lab}]", "hr", hr[..., i]) for i, lab in enumerate(self.labels)]
        return out

    def probabilities(self, idata) -> list[Draws]:
        """P(hr_pooled < t) and P(hr_new_trial < t) for each threshold; P(hr[<trial>] < 1)."""
        qs = self.quantities(idata)
        return probabilities_below(qs, ("hr_pooled", "hr_new_trial"), self.thresholds) + [
            Draws(f"P({q.name}<1)", "probability", (q.values < 1).astype(float)) for q in qs if q.name.startswith("hr[")
        ]

    # -- exact engine ----------------------------------------------------------------------------------
    def exact(self):
        """The grid posterior of :func:`harmoni_bayes.exact.nnhm_exact`."""
        from ..exact import nnhm_exact

        return nnhm_exact(self.y, self.se, mu_prior=self.priors.mu, tau_prior=self.priors.tau)

    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        """Exact summaries and probabilities, and iid joint draws for figures."""
        ex = self.exact()
        quantities = [
            Stats("hr_pooled", "hr", ex.mu.summary("hr")),
            Stats("tau", "sd", ex.tau.summary()),
            Stats("hr_new_trial", "hr", ex.theta_new.summary("hr")),
        ]
        quantities += [Stats(f"hr[{lab}]", "hr", ex.theta[i].summary("hr")) for i, lab in enumerate(self.labels)]
        probabilities = [
            (f"P({name}<{t:g})", mix.prob_below(np.log(t)))
            for name, mix in (("hr_pooled", ex.mu), ("hr_new_trial", ex.theta_new))
            for t in self.thresholds
        ]
        probabilities += [(f"P(hr[{lab}]<1)", ex.theta[i].prob_below(0.0)) for i, lab in enumerate(self.labels)]
        d = exact_joint_draws(ex, self.y, self.se, n_draws, rng)
        draws = d | {"hr_pooled": np.exp(d["mu"]), "hr_new_trial": np.exp(d["theta_new"])}
        return ExactFit(quantities, probabilities, draws)

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Prior draws of the key HR-scale quantities, for prior/posterior overlays."""
        mu = self.priors.mu.rvs(n, rng)
        tau = self.priors.tau.rvs(n, rng)
        with np.errstate(over="ignore"):  # a heavy-tailed tau prior draws HRs beyond float range: inf, as it should
            return {"hr_pooled": np.exp(mu), "tau": tau, "hr_new_trial": np.exp(mu + tau * rng.standard_normal(n))}

    def assumptions(self) -> list[str]:
        """Exchangeability, proportional hazards, normal estimates, the priors."""
        return [
            "Exchangeability: the trials' true log HRs are draws from one normal distribution around the pooled "
            "effect. Trials that differ in comparator, backbone, population or region make this a strong assumption.",
            "Proportional hazards: each trial's HR summarises its effect by one number over follow-up.",
            "Each trial's log HR estimate is normal with the standard error derived from its reported CI "
            "(or events, maturity or p-value, as recorded per row).",
            f"Priors: mu {self.priors.mu.describe()}; tau {self.priors.tau.describe()}.",
        ]
