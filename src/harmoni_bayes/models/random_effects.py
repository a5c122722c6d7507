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

import numpy as np
import pymc as pm
from pydantic import BaseModel, ConfigDict, Field

from ..priors import HalfNormalPrior, NormalPrior, TauPrior
from .base import Draws, posterior_array
from .nnhm import add_nnhm, exact_joint_draws

DEFAULT_THRESHOLDS = (1.0, 0.8)


class RandomEffectsPriors(BaseModel):
    """Priors of the random-effects model (log-HR scale)."""

    model_config = ConfigDict(extra="forbid")
    mu: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=2.0))
    tau: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))


class RandomEffectsModel:
    """Random-effects meta-analysis of one log-HR per trial."""

    family = "random_effects"
    dim = "trial"

    def __init__(self, labels: list[str], y, se, priors: RandomEffectsPriors | None = None):
        self.labels = list(labels)
        self.y = np.asarray(y, dtype=float)
        self.se = np.asarray(se, dtype=float)
        self.priors = priors or RandomEffectsPriors()

    def build_model(self) -> pm.Model:
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
        hr = posterior_array(idata, "hr")
        out = [
            Draws("hr_pooled", "hr", posterior_array(idata, "hr_pooled")),
            Draws("tau", "sd", posterior_array(idata, "tau")),
            Draws("hr_new_trial", "hr", posterior_array(idata, "hr_new_trial")),
        ]
        out += [Draws(f"hr[{lab}]", "hr", hr[..., i]) for i, lab in enumerate(self.labels)]
        return out

    def probabilities(self, idata) -> list[Draws]:
        return probabilities_below(self.quantities(idata), ("hr_pooled", "hr_new_trial"), DEFAULT_THRESHOLDS) + [
            Draws(f"P({q.name}<1)", "identity", (q.values < 1).astype(float))
            for q in self.quantities(idata)
            if q.name.startswith("hr[")
        ]

    # -- exact engine ----------------------------------------------------------------------------------
    def exact(self):
        from ..exact import nnhm_exact

        return nnhm_exact(self.y, self.se, mu_prior=self.priors.mu, tau_prior=self.priors.tau)

    def exact_quantities(self, ex) -> list[tuple[str, dict]]:
        out = [
            ("hr_pooled", ex.mu.summary("hr")),
            ("tau", ex.tau.summary()),
            ("hr_new_trial", ex.theta_new.summary("hr")),
        ]
        out += [(f"hr[{lab}]", ex.theta[i].summary("hr")) for i, lab in enumerate(self.labels)]
        return out

    def exact_probabilities(self, ex) -> list[tuple[str, float]]:
        out = [
            (f"P({name}<{t:g})", mix.prob_below(np.log(t)))
            for name, mix in (("hr_pooled", ex.mu), ("hr_new_trial", ex.theta_new))
            for t in DEFAULT_THRESHOLDS
        ]
        out += [(f"P(hr[{lab}]<1)", ex.theta[i].prob_below(0.0)) for i, lab in enumerate(self.labels)]
        return out

    def exact_draws(self, ex, n: int, rng: np.random.Generator) -> dict:
        d = exact_joint_draws(ex, self.y, self.se, n, rng)
        return d | {"hr_pooled": np.exp(d["mu"]), "hr_new_trial": np.exp(d["theta_new"])}

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Prior draws of the key HR-scale quantities, for prior/posterior overlays."""
        mu = self.priors.mu.scipy().rvs(n, random_state=rng)
        tau = self.priors.tau.scipy().rvs(n, random_state=rng)
        return {"hr_pooled": np.exp(mu), "tau": tau, "hr_new_trial": np.exp(mu + tau * rng.standard_normal(n))}

    def assumptions(self) -> list[str]:
        return [
            "Exchangeability: the trials' true log HRs are draws from one normal distribution around the pooled "
            "effect. Trials that differ in comparator, backbone, population or region make this a strong assumption.",
            "Proportional hazards: each trial's HR summarises its effect by one number over follow-up.",
            "Each trial's log HR estimate is normal with the standard error derived from its reported CI "
            "(or events, maturity or p-value, as recorded per row).",
            f"Priors: mu {self.priors.mu.describe()}; tau {self.priors.tau.describe()}.",
        ]


def probabilities_below(quantities: list[Draws], names, thresholds) -> list[Draws]:
    """P(<name><t>) indicators for the named HR-scale quantities."""
    by_name = {q.name: q for q in quantities}
    return [
        Draws(f"P({n}<{t:g})", "identity", (by_name[n].values < t).astype(float)) for n in names for t in thresholds
    ]
