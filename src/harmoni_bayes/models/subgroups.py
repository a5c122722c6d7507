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
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

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
    HeadlineContext,
    Line,
    ModelFamily,
    P,
    Presentation,
    SensitivityStrip,
    Stats,
    StripContext,
    exact_strip_rows,
    line,
    posterior_array,
    probabilities_below,
    reasons_as_problems,
    select_trials,
)
from .nnhm import TAU_SENSITIVITY, NNHMInputs, add_nnhm, conditional_theta, exact_joint_draws, information_shares


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


class SubgroupSpec(SpecBase):
    """Spec of subgroup shrinkage: ``[evidence]`` names one trial and one subgroup factor."""

    model: Literal["subgroups"]
    evidence: EvidenceSpec
    priors: SubgroupPriors = Field(default_factory=SubgroupPriors)
    exnex: ExnexOptions = Field(default_factory=ExnexOptions)


def _headline(c: HeadlineContext) -> list[Line]:
    out = [
        line(
            "answer",
            f"Probability that {c.experimental} improves {c.endpoint} over {c.control} overall (HR < 1): ",
            P("P(hr_overall<1)"),
            c.when_suffix,
        ),
        line("estimate", "Overall HR ", CI("hr_overall"), "."),
    ]
    for pair in c.levels("hr_ratio"):
        a, b = pair.split("/", 1)
        name = f"hr_ratio[{pair}]"
        parts: list = [
            f"Is the benefit the same in {a} and {b}? Ratio of their HRs ",
            CI(name),
            "; a ratio of 1 means the same benefit",
        ]
        if f"P({name}<1)" in c.probabilities:
            parts += [f"; probability the benefit is larger in {a} (ratio < 1): ", P(f"P({name}<1)")]
        out.append(line("estimate", *parts, "."))
    levels = c.levels("hr")
    if levels:
        parts = ["Subgroup HRs after shrinkage: "]
        for i, lev in enumerate(levels):
            parts += [("; " if i else "") + f"{lev} ", CI(f"hr[{lev}]")]
        out.append(line("detail", *parts, "."))
    return out


@register
class SubgroupModel(ModelFamily):
    """One-way shrinkage of a trial's subgroup log-HRs for one factor."""

    name = "subgroups"
    spec_class = SubgroupSpec
    dim = "subgroup"
    capabilities = frozenset({"exact"})
    sensitivity = TAU_SENSITIVITY
    presentation = Presentation(
        headline=_headline,
        names={
            "hr_overall": "overall HR (subgroups weighted by information)",
            "tau": "heterogeneity: SD of the true log HRs (tau)",
        },
        short_labels={"hr_overall": "Overall (weighted)"},
        figures=("forest", "densities"),
        densities=("hr_overall", "hr[*]", "tau"),
        forest="levels",
        headline_quantity="hr_overall",
    )

    def __init__(
        self,
        inputs: NNHMInputs,
        priors: SubgroupPriors | None = None,
        exnex: ExnexOptions | None = None,
        thresholds: tuple[float, ...] | None = None,
    ):
        if len(inputs.labels) < 2:
            raise ModelError(f"subgroup shrinkage needs at least two levels of the factor; got {len(inputs.labels)}")
        self.inputs = inputs
        self.labels = inputs.labels
        self.y, self.se = inputs.y, inputs.se
        self.priors = priors or SubgroupPriors()
        self.exnex = exnex or ExnexOptions()
        self.shares = information_shares(self.se)
        self.thresholds = tuple(thresholds or self.default_thresholds)

    @classmethod
    def from_arrays(
        cls, labels: list[str], y: Any, se: Any, priors: SubgroupPriors | None = None, exnex: ExnexOptions | None = None
    ) -> SubgroupModel:
        """Build from plain arrays of subgroup log-HR estimates and SEs."""
        if len(labels) < 2:
            raise ModelError(f"subgroup shrinkage needs at least two levels of the factor; got {len(labels)}")
        return cls(NNHMInputs(labels, y, se), priors, exnex)

    @classmethod
    def default_method(cls, spec: Any) -> Literal["mcmc", "exact"]:
        """``exact`` for the plain normal-normal model; EXNEX has no exact engine, so ``mcmc``."""
        exnex = getattr(spec, "exnex", None)
        return "mcmc" if exnex is not None and exnex.enabled else "exact"

    @classmethod
    def from_spec(cls, spec: SubgroupSpec, tables: EvidenceTables) -> tuple[SubgroupModel, EvidenceRecord]:
        """The levels of one factor within one trial (the ITT row never enters)."""
        ev = spec.evidence
        if len(ev.trials) != 1:
            raise ModelError("subgroup shrinkage works within one trial; list exactly one trial in evidence.trials")
        if ev.subgroup_factor == "overall":
            raise ModelError("subgroup shrinkage needs a subgroup factor (e.g. pdl1, histology), not 'overall'")
        sel, record = select_trials(spec, tables)
        if len(sel.used) < 2:
            raise ModelError(
                f"subgroup shrinkage needs at least two usable levels of '{ev.subgroup_factor}'; found {len(sel.used)}",
                reasons_as_problems(sel.excluded),
            )
        used = sel.used
        family = cls(NNHMInputs(list(used.subgroup_level), used.log_hr, used.se), spec.priors, spec.exnex)
        family.set_thresholds(spec)
        return family, record

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Index pairs (a, b), a < b, of the levels compared by HR ratios."""
        return list(itertools.combinations(range(len(self.labels)), 2))

    def build_model(self):
        """mu, tau (and EXNEX membership) with the marginal likelihood; theta, hr, hr_overall, hr_ratio."""
        import pymc as pm
        import pytensor.tensor as pt

        coords = {self.dim: self.labels, "pair": [f"{self.labels[a]}/{self.labels[b]}" for a, b in self.pairs]}
        with pm.Model(coords=coords) as model:
            mu = self.priors.mu.to_pymc("mu")
            tau = self.priors.tau.to_pymc("tau")
            if self.exnex.enabled:
                theta = self._exnex(mu, tau)
                pm.Deterministic("theta_new", mu + tau * pm.Normal("z_new"))
            else:
                theta, _ = add_nnhm(self.dim, self.y, self.se, mu, tau)
            pm.Deterministic("hr", pm.math.exp(theta), dims=self.dim)
            pm.Deterministic("hr_overall", pm.math.exp(pt.dot(self.shares, theta)))
            a, b = (np.array(ix, dtype=int) for ix in zip(*self.pairs, strict=True))
            pm.Deterministic("hr_ratio", pm.math.exp(theta[a] - theta[b]), dims="pair")
        return model

    def _exnex(self, mu: Any, tau: Any) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

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
    def published_quantities(self) -> list[Stats]:
        """The published estimates, summarised as N(y_g, s_g^2) on the log scale (their CI is the interval)."""
        from ..exact import NormalMixture

        return [
            Stats(f"hr_raw[{lab}]", "hr", NormalMixture(np.ones(1), np.array([y]), np.array([s])).summary("hr"))
            for lab, y, s in zip(self.labels, self.y, self.se, strict=True)
        ]

    def quantities(self, idata) -> list[Draws]:
        """``hr_overall``, ``tau``, ``hr[<level>]`` and ``hr_ratio[<a>/<b>]``."""
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
        """P(hr < t) for the overall HR and each level; P(ratio < 1); with EXNEX, P(exchangeable)."""
        qs = self.quantities(idata)
        out = probabilities_below(qs, ["hr_overall"] + [f"hr[{lab}]" for lab in self.labels], self.thresholds)
        out += [Draws(f"P({q.name}<1)", "probability", (q.values < 1).astype(float)) for q in qs if q.scale == "ratio"]
        if self.exnex.enabled:
            w = posterior_array(idata, "w_exchangeable")
            out += [Draws(f"P(exchangeable[{lab}])", "probability", w[..., i]) for i, lab in enumerate(self.labels)]
        return out

    # -- exact engine -------------------------------------------------------------------------------------
    def exact(self):
        """The grid posterior of :func:`harmoni_bayes.exact.nnhm_exact` (plain NNHM only)."""
        if self.exnex.enabled:
            raise ModelError("the exact engine covers the plain normal-normal model; EXNEX needs method = 'mcmc'")
        from ..exact import nnhm_exact

        return nnhm_exact(self.y, self.se, mu_prior=self.priors.mu, tau_prior=self.priors.tau)

    def _contrasts(self, ex) -> list[tuple[str, Any]]:
        k = len(self.labels)
        out = []
        for a, b in self.pairs:
            c = np.zeros(k)
            c[a], c[b] = 1.0, -1.0
            out.append((f"hr_ratio[{self.labels[a]}/{self.labels[b]}]", ex.contrast(c)))
        return out

    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        """Exact summaries and probabilities (contrasts are exact mixtures), and iid draws for figures."""
        ex = self.exact()
        overall = ex.contrast(self.shares)
        contrasts = self._contrasts(ex)
        quantities = [Stats("hr_overall", "hr", overall.summary("hr")), Stats("tau", "sd", ex.tau.summary())]
        quantities += [Stats(f"hr[{lab}]", "hr", ex.theta[i].summary("hr")) for i, lab in enumerate(self.labels)]
        quantities += [Stats(name, "ratio", mix.summary("hr")) for name, mix in contrasts]
        mixes = [("hr_overall", overall)] + [(f"hr[{lab}]", ex.theta[i]) for i, lab in enumerate(self.labels)]
        probabilities = [(f"P({n}<{t:g})", m.prob_below(np.log(t))) for n, m in mixes for t in self.thresholds]
        probabilities += [(f"P({name}<1)", mix.prob_below(0.0)) for name, mix in contrasts]
        d = exact_joint_draws(ex, self.y, self.se, n_draws, rng)
        a, b = (np.array(ix, dtype=int) for ix in zip(*self.pairs, strict=True))
        ratio = np.exp(d["theta"][:, a] - d["theta"][:, b])
        draws = d | {"hr_overall": np.exp(d["theta"] @ self.shares), "hr_ratio": ratio}
        pairs = [f"{self.labels[i]}/{self.labels[j]}" for i, j in self.pairs]
        return ExactFit(quantities, probabilities, draws, dims={"hr_ratio": "pair"}, coords={"pair": pairs})

    def strip(self, idata, context: StripContext) -> SensitivityStrip | None:
        """The tau priors' strip (:meth:`ModelFamily.strip`); with EXNEX, the EXNEX fit beside the plain
        exchangeable model under the spec's tau prior and each other one, all exact.

        EXNEX has no exact engine, but the question a reader asks of it, "what does letting a subgroup escape
        shrinkage change?", is answered by the model without it, which has one; and that model under the other
        tau priors shows how much of the shrinkage the prior sets.
        """
        if not self.exnex.enabled:
            return super().strip(idata, context)
        name = "hr_overall"
        head = context.headline_row(
            "as specified (EXNEX)",
            name,
            f"each subgroup exchangeable with prior probability {self.exnex.p_exchangeable:g}",
        )
        plain = {"exnex": {"enabled": False}}
        rows = exact_strip_rows([("no EXNEX", context.refit(plain))], name, context.seed, "all subgroups exchangeable")
        alternatives = [(f"no EXNEX, {label}", fam) for label, fam in context.settings(plain)]
        rows += exact_strip_rows(alternatives, name, context.seed, "exact refit without EXNEX")
        return SensitivityStrip(f"P({name} < 1)", (head, *rows), self.presentation.names[name])

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Prior draws of tau, hr_overall and hr (dim ``subgroup``), named as in the posterior."""
        mu = self.priors.mu.rvs(n, rng)
        tau = self.priors.tau.rvs(n, rng)
        theta = mu[:, None] + tau[:, None] * rng.standard_normal((n, len(self.labels)))
        with np.errstate(over="ignore"):  # a heavy-tailed tau prior draws HRs beyond float range: inf, as it should
            return {"tau": tau, "hr_overall": np.exp(theta @ self.shares), "hr": np.exp(theta)}

    def assumptions(self) -> list[str]:
        """Exchangeability, partition of the trial, proportional hazards, priors (and EXNEX)."""
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
