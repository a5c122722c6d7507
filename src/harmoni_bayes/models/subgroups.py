"""Subgroup shrinkage within one trial and one factor (the one-way NNHM, with an EXNEX option).

The levels of one factor (PD-L1 TPS 1-49% vs >=50%; squamous vs non-squamous) partition the trial, so
their estimates are approximately independent:

    y_g | theta_g ~ N(theta_g, s_g^2)
    theta_g | mu, tau ~ N(mu, tau^2)          exchangeable around the trial's effect
    mu ~ N(0, 2^2);  tau ~ Half-normal(0.25)  defaults (methods §c): P(tau > ln 1.5) = 0.10, i.e. a
                                              subgroup HR 1.5-fold off the trial's is a priori unlikely

With two levels tau is barely identified: its prior sets the amount of shrinkage, and the report says so.

**The ITT HR is not an extra data point.** The subgroups *are* the ITT patients; adding the ITT estimate
would count every patient twice.  The population-averaged effect is reported instead as
``hr_overall`` = exp(sum_g pi_g theta_g), pi_g the information share (1/s_g^2, i.e. events) of level g;
mu itself is poorly determined with K = 2 and is not reported.

**EXNEX** (Neuenschwander et al. 2016): with probability p each theta_g is exchangeable (EX, as above);
otherwise it is non-exchangeable (NEX) with its own weakly informative N(m, v) prior (default N(0, 2^2),
unit information).  The mixture is marginalised in the likelihood; membership and theta_g are drawn from
their exact conditionals through auxiliary variables, and ``P(exchangeable[<level>])`` is reported.

Outputs: ``hr[<level>]`` (shrunken) beside ``hr_raw[<level>]`` (the published estimate, summarised as
N(y_g, s_g^2) on the log scale), ``hr_ratio[<a>/<b>]`` = exp(theta_a - theta_b) from the joint draws,
``tau``, ``hr_overall`` and P(hr[<level>] < 1).
"""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from ..errors import ModelError
from ..priors import HalfNormalPrior, NormalPrior, TauPrior
from .base import Draws, posterior_array
from .nnhm import add_nnhm, conditional_theta, exact_joint_draws, information_shares
from .random_effects import probabilities_below


class SubgroupPriors(BaseModel):
    """Priors of the subgroup model (log-HR scale)."""

    model_config = ConfigDict(extra="forbid")
    mu: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=2.0))
    tau: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.25))


class ExnexOptions(BaseModel):
    """EXNEX: let a subgroup escape shrinkage.  ``p_exchangeable`` is the prior EX probability."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    p_exchangeable: float = Field(0.5, gt=0, lt=1)
    nex_mu: float = 0.0
    nex_sigma: PositiveFloat = 2.0


class SubgroupModel:
    """One-way shrinkage of a trial's subgroup log-HRs for one factor."""

    family = "subgroups"
    dim = "subgroup"

    def __init__(
        self, labels: list[str], y, se, priors: SubgroupPriors | None = None, exnex: ExnexOptions | None = None
    ):
        if len(labels) < 2:
            raise ModelError(f"subgroup shrinkage needs at least two levels of the factor; got {len(labels)}")
        self.labels = list(labels)
        self.y = np.asarray(y, dtype=float)
        self.se = np.asarray(se, dtype=float)
        self.priors = priors or SubgroupPriors()
        self.exnex = exnex or ExnexOptions()
        self.shares = information_shares(self.se)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(itertools.combinations(range(len(self.labels)), 2))

    def build_model(self) -> pm.Model:
        with pm.Model(coords={self.dim: self.labels}) as model:
            mu = self.priors.mu.to_pymc("mu")
            tau = self.priors.tau.to_pymc("tau")
            if self.exnex.enabled:
                theta = self._exnex(mu, tau)
                pm.Deterministic("theta_new", mu + tau * pm.Normal("z_new"))
            else:
                theta, _ = add_nnhm(self.dim, self.y, self.se, mu, tau)
            pm.Deterministic("hr", pm.math.exp(theta), dims=self.dim)
            pm.Deterministic("hr_overall", pm.math.exp(pt.dot(self.shares, theta)))
        return model

    def _exnex(self, mu, tau):
        y = pm.Data("log_hr", self.y, dims=self.dim)
        se = pm.Data("se", self.se, dims=self.dim)
        p, m, v = self.exnex.p_exchangeable, self.exnex.nex_mu, self.exnex.nex_sigma**2
        sd_ex = pt.sqrt(se**2 + tau**2)
        sd_nex = pt.sqrt(se**2 + v)
        comps = pm.Normal.dist(mu=pt.stack([mu + 0 * y, m + 0 * y], axis=-1), sigma=pt.stack([sd_ex, sd_nex], axis=-1))
        pm.Mixture("y", w=np.array([p, 1 - p]), comp_dists=comps, observed=y, dims=self.dim)
        # posterior membership given (mu, tau, y): p N(y; mu, s^2 + tau^2) / mixture density
        log_ex = np.log(p) + pm.logp(pm.Normal.dist(mu, sd_ex), y)
        log_nex = np.log(1 - p) + pm.logp(pm.Normal.dist(m, sd_nex), y)
        w_ex = pm.Deterministic("w_exchangeable", pm.math.sigmoid(log_ex - log_nex), dims=self.dim)
        u = pm.Uniform("u_membership", 0, 1, dims=self.dim)
        is_ex = pm.Deterministic("exchangeable", pt.lt(u, w_ex), dims=self.dim)
        theta_ex = conditional_theta(self.dim, y, se, mu, tau, name="theta_ex")
        prec = 1 / v + 1 / se**2
        theta_nex = (m / v + y / se**2) / prec + pt.sqrt(1 / prec) * pm.Normal("z_nex", dims=self.dim)
        return pm.Deterministic("theta", pt.switch(is_ex, theta_ex, theta_nex), dims=self.dim)

    # -- posterior quantities ---------------------------------------------------------------------------
    def raw_quantities(self) -> list[tuple[str, dict]]:
        """The published estimates, summarised as N(y_g, s_g^2) on the log scale (their CI is the interval)."""
        from ..exact import NormalMixture

        return [
            (f"hr_raw[{lab}]", NormalMixture(np.ones(1), np.array([y]), np.array([s])).summary("hr"))
            for lab, y, s in zip(self.labels, self.y, self.se, strict=True)
        ]

    def quantities(self, idata) -> list[Draws]:
        theta = posterior_array(idata, "theta")
        out = [
            Draws("hr_overall", "hr", posterior_array(idata, "hr_overall")),
            Draws("tau", "sd", posterior_array(idata, "tau")),
        ]
        out += [Draws(f"hr[{lab}]", "hr", np.exp(theta[..., i])) for i, lab in enumerate(self.labels)]
        out += [
            Draws(f"hr_ratio[{self.labels[a]}/{self.labels[b]}]", "ratio", np.exp(theta[..., a] - theta[..., b]))
            for a, b in self.pairs
        ]
        return out

    def probabilities(self, idata) -> list[Draws]:
        qs = self.quantities(idata)
        out = probabilities_below(qs, ["hr_overall"] + [f"hr[{lab}]" for lab in self.labels], (1.0, 0.8))
        out += [Draws(f"P({q.name}<1)", "identity", (q.values < 1).astype(float)) for q in qs if q.scale == "ratio"]
        if self.exnex.enabled:
            w = posterior_array(idata, "w_exchangeable")
            out += [Draws(f"P(exchangeable[{lab}])", "identity", w[..., i]) for i, lab in enumerate(self.labels)]
        return out

    # -- exact engine -------------------------------------------------------------------------------------
    def exact(self):
        if self.exnex.enabled:
            raise ModelError("the exact engine covers the plain normal-normal model; EXNEX needs method = 'mcmc'")
        from ..exact import nnhm_exact

        return nnhm_exact(self.y, self.se, mu_prior=self.priors.mu, tau_prior=self.priors.tau)

    def _contrasts(self, ex) -> list[tuple[str, object]]:
        k = len(self.labels)
        out = []
        for a, b in self.pairs:
            c = np.zeros(k)
            c[a], c[b] = 1.0, -1.0
            out.append((f"hr_ratio[{self.labels[a]}/{self.labels[b]}]", ex.contrast(c)))
        return out

    def exact_quantities(self, ex) -> list[tuple[str, dict]]:
        out = [("hr_overall", ex.contrast(self.shares).summary("hr")), ("tau", ex.tau.summary())]
        out += [(f"hr[{lab}]", ex.theta[i].summary("hr")) for i, lab in enumerate(self.labels)]
        out += [(name, mix.summary("hr")) for name, mix in self._contrasts(ex)]
        return out

    def exact_probabilities(self, ex) -> list[tuple[str, float]]:
        mixes = [("hr_overall", ex.contrast(self.shares))] + [
            (f"hr[{lab}]", ex.theta[i]) for i, lab in enumerate(self.labels)
        ]
        out = [(f"P({n}<{t:g})", m.prob_below(np.log(t))) for n, m in mixes for t in (1.0, 0.8)]
        out += [(f"P({name}<1)", mix.prob_below(0.0)) for name, mix in self._contrasts(ex)]
        return out

    def exact_draws(self, ex, n: int, rng: np.random.Generator) -> dict:
        d = exact_joint_draws(ex, self.y, self.se, n, rng)
        return d | {"hr_overall": np.exp(d["theta"] @ self.shares)}

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        mu = self.priors.mu.scipy().rvs(n, random_state=rng)
        tau = self.priors.tau.scipy().rvs(n, random_state=rng)
        theta = mu[:, None] + tau[:, None] * rng.standard_normal((n, len(self.labels)))
        out = {"tau": tau, "hr_overall": np.exp(theta @ self.shares)}
        out |= {f"hr[{lab}]": np.exp(theta[:, i]) for i, lab in enumerate(self.labels)}
        return out

    def assumptions(self) -> list[str]:
        out = [
            "Exchangeability: the subgroups' true log HRs are draws from one normal distribution around the "
            "trial's effect, so each subgroup estimate borrows strength from the others (shrinkage).",
            "The subgroup levels partition the trial, so their estimates are treated as independent; the ITT "
            "estimate is not added as data (that would count every patient twice).",
            "Proportional hazards within each subgroup; subgroup HRs are unstratified conditional effects, so "
            "their weighted mean only approximates the ITT HR (non-collapsibility).",
            f"Priors: mu {self.priors.mu.describe()}; tau {self.priors.tau.describe()}. With two levels the tau "
            "prior largely sets the amount of shrinkage.",
        ]
        if self.exnex.enabled:
            out.append(
                f"EXNEX: each subgroup is exchangeable with prior probability {self.exnex.p_exchangeable:g}, "
                f"otherwise it follows its own N({self.exnex.nex_mu:g}, {self.exnex.nex_sigma:g}^2) prior."
            )
        return out
