r"""Probability of success (PoS) of an ongoing trial from a meta-analytic-predictive (MAP) prior.

Family ``pos``: will a new trial (HARMONi-3, HARMONi-7) meet its PFS and OS endpoints, given the earlier
ivonescimab trials?  Per endpoint ``e`` (each endpoint has its own source trials, design and results):

**1. MAP prior** (Neuenschwander et al. 2010; Schmidli et al. 2014), the normal-normal model of the source
trials ``k = 1..K`` and the new trial's true log HR ``theta_new``::

    y_k | theta_k ~ N(theta_k, s_k^2),   theta_k, theta_new | mu, tau ~ N(mu, tau^2)
    mu ~ N(0, 2^2),   tau ~ Half-normal(0.5)                       (defaults; spec [map.priors])

Exact engine (:func:`harmoni_bayes.exact.nnhm_exact`): on a grid ``tau_j`` with posterior weights ``w_j``,
``theta_new | y ~ sum_j w_j N(mu_hat_j, V_mu_j + tau_j^2)``.  MCMC: the same model in PyMC
(marginal likelihood ``y_k ~ N(mu, s_k^2 + tau^2)``, ``theta_new = mu + tau z_new``).  Instead of
source trials an endpoint may give its prior directly as a normal mixture (``prior = {weights, means, sds}``).

**2. Discounts** (spec ``[discount]``).  *Between-region SD*: ``theta* = theta_new + delta z`` with
``z ~ N(0, 1)`` and ``delta`` fixed or ``delta ~ Half-normal(sigma_r)``; exactly,

    p(theta*) = sum_j sum_l w_j v_l N(mu_hat_j, V_mu_j + tau_j^2 + delta_l^2),

with ``delta_l = sigma_r x_l`` and ``v_l`` composite Gauss-Legendre nodes and weights of the half-normal
``x`` (51 nodes on panels graded towards 0; CDF error below 1e-7).  The result is compressed into a few components
(:func:`harmoni_bayes.mixture.fit_mixture`: EM on the ``n`` quantile points ``F^{-1}((i - 1/2)/n)``, the
number of components ``K <= max_components`` by BIC), ``p_MAP(theta) ~= sum_c pi_c N(m_c, s_c^2)``.
*Robust weight* (:func:`harmoni_bayes.mixture.robustify`): the prior used is

    p_rob = (1 - w) p_MAP + w N(m_v, s_v^2),   s_v = (1 + r)/sqrt(r)   (one event's information; 2 for 1:1).

**3. Effective sample size in events** (:func:`harmoni_bayes.mixture.ess`, ``sigma = (1 + r)/sqrt(r)``,
so ``N(m, s^2)`` is worth ``sigma^2/s^2`` events): moment ``sigma^2 / Var[theta]``; Morita
``sigma^2 i(theta_mode)``; ELIR ``sigma^2 E_p[i(theta)]``, with ``i = -d^2 log p / d theta^2``.

**4. Design and success** (:mod:`harmoni_bayes.design`).  Events ``D_1 < ... < D_K``, allocation ``r``,
information ``I_k = D_k r/(1 + r)^2``, Lan-DeMets spending of the one-sided ``alpha``, efficacy boundaries
``b_k``; success at the first ``k`` with ``Z_k = -theta_hat_k sqrt(I_k) > b_k`` (and, with a dual criterion,
``HR_hat_k < relevant_hr``).  *OC curve*: ``P(success | HR)``.  *Assurance* (O'Hagan et al. 2005):

    PoS = int P(success | theta) p_rob(theta) dtheta = (1 - w) PoS_MAP + w PoS_vague,

linear in ``w``, each term by the recursion of :func:`harmoni_bayes.design.assurance` (no simulation); for
one analysis ``PoS = sum_c pi_c Phi((-z_{1-alpha} - m_c sqrt(I)) / sqrt(1 + s_c^2 I))``.  *Given interim
data* ``(HR_hat, D)``: :func:`harmoni_bayes.design.conditional_success` (prior updated by the interim
estimate, the remaining analyses integrated).  As in RBesT, the prior only averages the trial's own
frequentist test.  MCMC: ``PoS = mean_i [(1 - w) P(success | theta*_i) + w PoS_vague]`` over the draws.

Summary names (per endpoint ``e``): ``hr_new_trial[e]`` (MAP predictive, HR scale, no discount),
``hr_prior[e]`` (the prior used), ``tau[e]``, ``ess_elir[e]``, ``ess_moment[e]``, ``ess_morita[e]`` (the MAP
mixture, after the region discount), ``ess_*_robust[e]`` (the prior used), ``critical_hr[e]``,
``map_fit_error[e]``, ``robust_weight``, ``extra_sd``; probabilities ``P(success[e])``,
``P(success[e];w=<w>)`` (robust-weight sweep), ``P(success[e];HR=<h>)`` (OC table),
``P(success[e];interim)`` and ``P(hr_new_trial[e]<t)``; read ``;`` as "with" (robust weight ``w``, true HR
``h``, the interim data), as in ``P(x; theta)``.

The sensitivity strip (:meth:`PoSFamily.strip`) shows, per endpoint, ``P(success)`` as the discounts are added one
by one: none, the region SD, the spec's robust weight, the sweep's heaviest weight, and no borrowing at all.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import Field, PositiveFloat, field_validator, model_validator

from ..config import SpecBase, Strict
from ..constants import Z_INTERVAL
from ..design import Design, assurance, conditional_success, critical_hr, power_curve
from ..errors import ModelError
from ..exact import GridDistribution, NormalMixture, nnhm_exact
from ..mixture import WEIGHT_TOL, NormalMix, ess, fit_mixture, robustify, unit_information_sd
from ..priors import FixedValue, HalfNormalPrior
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
    Q,
    SensitivityRow,
    SensitivityStrip,
    Stats,
    StripContext,
    line,
    posterior_array,
    reasons_as_problems,
    with_sources,
)
from .random_effects import RandomEffectsPriors

__all__ = [
    "DEFAULT_OC_HRS",
    "DEFAULT_SWEEP",
    "ENDPOINTS",
    "DesignSpec",
    "DiscountSpec",
    "EndpointPoS",
    "EndpointSpec",
    "MapSpec",
    "MixtureSpec",
    "PoSFamily",
    "PoSSpec",
    "discounted_predictive",
    "quantile_points",
    "reanalyse",
]

Endpoint = Literal["PFS", "OS"]
ENDPOINTS: tuple[Endpoint, ...] = ("PFS", "OS")
DEFAULT_SWEEP = (0.0, 0.1, 0.2, 0.3, 0.5)
"""Robust weights of the sensitivity sweep (methods brief: 0.2-0.5, with 0 for no discount)."""
DEFAULT_OC_HRS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""True HRs of the OC table in summary.json (the figure draws the whole curve)."""
N_TAU_GRID = 4000  # tau grid of the reported MAP predictive and tau (as in the random_effects family)
N_TAU_GRID_FIT = 200  # coarser tau grid of the distribution the mixture is fitted to (CDF agrees to ~1e-8)
_HN_EDGES = np.array([0, 0.01, 0.02, 0.04, 0.08, 0.15, 0.25, 0.4, 0.6, 0.85, 1.15, 1.5, 2, 2.6, 3.4, 4.5, 6, 8.5])
"""Panels (in units of the half-normal scale) of the region SD's quadrature: fine near 0, where the predictive
changes on the scale of its narrowest component; beyond 8.5 scales the mass is below 1e-16."""
_HN_NODES = 3  # Gauss-Legendre nodes per panel: 51 nodes, CDF error below 1e-7 (tests: below 1e-6)
N_CDF_GRID = 2001  # CDF evaluation points for the quantile points (their error is below 1e-4 on log HR)
FIT_ERROR_Q = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99)
"""Quantiles at which the mixture approximation is compared with the predictive it approximates."""


# ---------------------------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------------------------


class MixtureSpec(Strict):
    """A prior given directly as a normal mixture on the log-HR scale, ``sum_k w_k N(m_k, s_k^2)``."""

    weights: list[float] = Field(min_length=1)
    means: list[float] = Field(min_length=1)
    sds: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _a_mixture(self) -> MixtureSpec:
        problems = []
        if not len(self.weights) == len(self.means) == len(self.sds):
            problems.append(
                f"weights, means and sds need one entry per component "
                f"(got {len(self.weights)}, {len(self.means)}, {len(self.sds)})"
            )
        if any(not math.isfinite(w) or w < 0 for w in self.weights):
            problems.append("mixture weights must be finite and non-negative")
        elif abs(sum(self.weights) - 1.0) > WEIGHT_TOL:
            problems.append(f"mixture weights must sum to 1 (they sum to {sum(self.weights):.6g})")
        if any(not math.isfinite(m) for m in self.means):
            problems.append("mixture means must be finite")
        if any(not (math.isfinite(s) and s > 0) for s in self.sds):
            problems.append("mixture sds must be positive and finite")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def mix(self) -> NormalMix:
        """The mixture as a :class:`~harmoni_bayes.mixture.NormalMix`."""
        return NormalMix(np.asarray(self.weights), np.asarray(self.means), np.asarray(self.sds))


class InterimSpec(Strict):
    """Interim data of the new trial itself: its observed HR after ``events`` events."""

    hr: PositiveFloat
    events: PositiveFloat


class DesignSpec(Strict):
    """A group-sequential design for one endpoint (see :class:`harmoni_bayes.design.Design`).

    ``events`` are the expected events at each analysis (strictly increasing), ``alpha`` the one-sided
    type I error in ``(0, 0.5)``, ``spending`` the Lan-DeMets family (``obf``, ``pocock``) or a classical
    boundary, ``allocation`` experimental:control, ``relevant_hr`` an optional clinically relevant HR for a
    dual criterion (success needs the observed HR below it too).
    """

    events: list[float]
    alpha: float = 0.025
    spending: Literal["obf", "pocock", "obf_classic", "pocock_classic"] = "obf"
    allocation: PositiveFloat = 1.0
    relevant_hr: float | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[float]) -> list[float]:
        if len(v) == 0:
            raise ValueError("a design needs at least one analysis (events = [] has none)")
        if any(not (math.isfinite(e) and e > 0) for e in v):
            raise ValueError(f"events must be positive and finite, got {v}")
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"events must increase from one analysis to the next, got {v}")
        return v

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not (math.isfinite(v) and 0.0 < v < 0.5):
            raise ValueError(f"the one-sided alpha must lie in (0, 0.5), got {v}")
        return v

    @field_validator("relevant_hr")
    @classmethod
    def _relevant_hr(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0.0 < v < 1.0):
            raise ValueError(f"relevant_hr must lie in (0, 1), got {v}")
        return v

    def design(self) -> Design:
        """The :class:`~harmoni_bayes.design.Design`."""
        return Design(tuple(self.events), self.alpha, self.spending, self.allocation, self.relevant_hr)


class EndpointSpec(DesignSpec):
    """One endpoint of the new trial: where its prior comes from and its design.

    Exactly one of ``trials`` (source trials of the MAP prior; their ITT rows of this endpoint are selected
    as of the spec's date) and ``prior`` (a normal mixture given directly).  ``interim``: the new trial's own
    interim result, for the probability of success given it.
    """

    trials: list[str] | None = Field(None, min_length=1)
    prior: MixtureSpec | None = None
    interim: InterimSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EndpointSpec:
        if (self.trials is None) == (self.prior is None):
            raise ValueError("give exactly one of 'trials' (a MAP prior from these trials) and 'prior' (a mixture)")
        if self.interim is not None and self.interim.events >= self.events[-1]:
            raise ValueError(
                f"interim.events ({self.interim.events:g}) must be below the final analysis ({self.events[-1]:g})"
            )
        return self


ExtraSDPrior = Annotated[HalfNormalPrior | FixedValue, Field(discriminator="dist")]


class DiscountSpec(Strict):
    """How far the new trial may differ from the source trials.

    ``robust_weight``: weight ``w`` of a vague component ``N(robust_mean, robust_sd^2)`` (``robust_sd``
    defaults to one event's information, ``(1 + r)/sqrt(r)``, 2 for 1:1).  ``extra_sd``: an added
    between-region SD of the new trial's log HR (half-normal prior, or fixed), ``None`` for none.
    ``sweep``: robust weights of the sensitivity table.  ``region_pair``: two source trials that differ
    mainly by region (e.g. HARMONi-A, China, and HARMONi, global); the ratio of their published HRs is
    reported beside the discount it informs.
    """

    robust_weight: float = 0.3
    robust_mean: float = 0.0
    robust_sd: PositiveFloat | None = None
    extra_sd: ExtraSDPrior | None = None
    sweep: list[float] = Field(default_factory=lambda: list(DEFAULT_SWEEP))
    region_pair: list[str] | None = Field(None, min_length=2, max_length=2)

    @field_validator("robust_weight")
    @classmethod
    def _weight(cls, v: float) -> float:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"the robust weight must lie in [0, 1], got {v}")
        return v

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, v: list[float]) -> list[float]:
        bad = [w for w in v if not (math.isfinite(w) and 0.0 <= w <= 1.0)]
        if bad:
            raise ValueError(f"robust weights must lie in [0, 1], got {bad}")
        if len({f"{w:g}" for w in v}) < len(v):
            raise ValueError(f"the sweep's robust weights must differ (as printed), got {v}")
        return v

    @field_validator("extra_sd")
    @classmethod
    def _extra(cls, v: HalfNormalPrior | FixedValue | None) -> HalfNormalPrior | FixedValue | None:
        if isinstance(v, FixedValue) and not (math.isfinite(v.value) and v.value >= 0):
            raise ValueError(f"a fixed extra SD must be >= 0, got {v.value}")
        return v


class MapSpec(Strict):
    """How the MAP prior is built: the random-effects priors and the mixture approximation.

    ``points``: quantile points the mixture is fitted to (exact engine); ``max_components`` and ``criterion``
    choose the number of components (BIC by default; ``rbest`` is RBesT's AIC with penalty 6).
    """

    priors: RandomEffectsPriors = Field(default_factory=RandomEffectsPriors)
    max_components: int = Field(4, ge=1, le=8)
    criterion: Literal["bic", "aic", "rbest"] = "bic"
    points: int = Field(10_000, ge=500, le=200_000)


class PoSEvidence(Strict):
    """The evidence table and the row choices shared by every endpoint (trials are named per endpoint)."""

    file: str | None = None
    prefer: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class PoSSpec(SpecBase):
    """Spec of a probability-of-success analysis: ``target`` (the new trial's name, for the report's words),
    ``[endpoints.PFS]`` / ``[endpoints.OS]`` (source and design), ``[map]``, ``[discount]``, ``[evidence]``
    (file, prefer, exclude) and ``oc_hrs`` (the OC table).
    """

    model: Literal["pos"]
    target: str = "the new trial"
    evidence: PoSEvidence = Field(default_factory=PoSEvidence)
    map: MapSpec = Field(default_factory=MapSpec)
    discount: DiscountSpec = Field(default_factory=DiscountSpec)
    endpoints: dict[Endpoint, EndpointSpec] = Field(min_length=1)
    oc_hrs: list[PositiveFloat] = Field(default_factory=lambda: list(DEFAULT_OC_HRS), min_length=1)

    @field_validator("oc_hrs")
    @classmethod
    def _distinct_hrs(cls, v: list[float]) -> list[float]:
        if len({f"{h:g}" for h in v}) < len(v):
            raise ValueError(f"the OC table's HRs must differ (as printed), got {v}")
        return v


# ---------------------------------------------------------------------------------------------
# the numerical pipeline
# ---------------------------------------------------------------------------------------------


def _extra_sd_nodes(prior: HalfNormalPrior | FixedValue | None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``delta_l`` and weights ``v_l`` (summing to 1) of the extra SD's distribution.

    Half-normal(sigma): ``delta = sigma x`` with ``x`` half-normal(1); composite Gauss-Legendre on the panels
    :data:`_HN_EDGES` (3 nodes each), weights ``2 phi(x_l) h_l`` normalised to sum to one.  (Gauss-Hermite
    in ``x`` converges slowly when ``sigma`` exceeds the narrowest component's SD; graded panels do not.)
    Fixed: one node.
    """
    if prior is None:
        return np.zeros(1), np.ones(1)
    if isinstance(prior, FixedValue):
        return np.array([float(prior.value)]), np.ones(1)
    g, gw = np.polynomial.legendre.leggauss(_HN_NODES)
    a, b = _HN_EDGES[:-1], _HN_EDGES[1:]
    half = 0.5 * (b - a)
    x = (0.5 * (a + b)[:, None] + half[:, None] * g).ravel()
    v = (half[:, None] * gw).ravel() * 2.0 * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return prior.sigma * x, v / v.sum()


def discounted_predictive(
    predictive: NormalMixture | NormalMix, extra_sd: HalfNormalPrior | FixedValue | None
) -> NormalMixture:
    r"""The predictive of ``theta* = theta_new + delta z`` (module docstring, step 2), as a normal mixture.

    Each component ``N(m_j, s_j^2)`` becomes ``sum_l v_l N(m_j, s_j^2 + delta_l^2)``; components with zero
    weight are dropped first.
    """
    w, m, s = (np.asarray(a, dtype=float) for a in (predictive.weights, predictive.means, predictive.sds))
    keep = w > 0
    w, m, s = w[keep], m[keep], s[keep]
    nodes, v = _extra_sd_nodes(extra_sd)
    weights = np.outer(w, v).ravel()
    sds = np.sqrt(s[:, None] ** 2 + nodes[None, :] ** 2).ravel()
    return NormalMixture(weights, np.repeat(m, nodes.size), sds)


def _cdf_grid(dist: NormalMixture) -> tuple[np.ndarray, np.ndarray]:
    """``x`` from the ``1e-8`` to the ``1 - 1e-8`` quantile (``N_CDF_GRID`` points) and ``F(x)`` there."""
    lo, hi = dist.ppf(np.array([1e-8, 1.0 - 1e-8]))
    x = np.linspace(lo, hi, N_CDF_GRID)
    return x, np.maximum.accumulate(np.asarray(dist.cdf(x)))


def quantile_points(dist: NormalMixture, n: int, grid: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A deterministic "sample" of ``n`` points: the quantiles ``F^{-1}((i - 1/2)/n)``, ``i = 1..n``.

    ``F`` is evaluated on a fine grid (:data:`N_CDF_GRID` points between the ``1e-8`` and ``1 - 1e-8``
    quantiles; or ``grid = (x, F(x))`` as returned by :func:`_cdf_grid`) and inverted by linear interpolation.
    """
    x, f = _cdf_grid(dist) if grid is None else grid
    return np.interp((np.arange(n) + 0.5) / n, f, x)


@dataclass(frozen=True, eq=False)
class EndpointPoS:
    """Everything one endpoint's results come from: source, MAP prior, discounts, design.

    ``predictive`` is the exact MAP predictive (grid over tau), or the prior given in the spec (``None`` under
    MCMC, where ``draws`` hold ``theta*``), ``mixture`` the MAP prior after the region discount (fitted
    mixture), ``robust`` the prior
    used, ``vague`` its robust component, ``fit_error`` the largest quantile difference (log HR) between
    ``mixture`` and the distribution it approximates.
    """

    endpoint: str
    design: Design
    weight: float
    mixture: NormalMix
    robust: NormalMix
    vague: NormalMix
    fit_error: float
    trials: tuple[str, ...] = ()
    predictive: NormalMixture | None = None
    tau: GridDistribution | None = None
    draws: np.ndarray | None = None
    interim: InterimSpec | None = None
    _cache: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def sigma(self) -> float:
        """Per-event sd of the log HR with this design's allocation: ``(1 + r)/sqrt(r)``."""
        return unit_information_sd(self.design.allocation)

    def ess(self, method: Literal["elir", "moment", "morita"], robust: bool = False) -> float:
        """ESS in events of the MAP mixture (or of the prior used, ``robust=True``)."""
        key = f"ess_{method}_{robust}"
        if key not in self._cache:
            self._cache[key] = ess(self.robust if robust else self.mixture, method, sigma=self.sigma)
        return self._cache[key]

    @cached_property
    def assurance_parts(self) -> tuple[float, float]:
        """``(PoS_MAP, PoS_vague)``: assurance under the MAP mixture and under the vague component alone."""
        return assurance(self.design, self.mixture), assurance(self.design, self.vague)

    def pos(self, weight: float | None = None) -> float:
        """Assurance under ``(1 - w) MAP + w vague`` (the spec's weight by default), linear in ``w``."""
        w = self.weight if weight is None else float(weight)
        a_map, a_vague = self.assurance_parts
        return float((1.0 - w) * a_map + w * a_vague)

    def power(self, hr: Any) -> np.ndarray | float:
        """The OC curve: probability of success at true hazard ratio(s) ``hr``."""
        return power_curve(self.design, hr)

    def given_interim(self, hr: float | Sequence[float], events: float) -> float | np.ndarray:
        """Probability of success given the new trial's own interim HR after ``events`` events."""
        return conditional_success(self.design, self.robust, np.log(np.asarray(hr, dtype=float)), interim_events=events)

    @property
    def critical_hr(self) -> float:
        """Largest observed HR at the final analysis that is a success."""
        return float(critical_hr(self.design)[-1])

    def prior_used(self) -> NormalMixture:
        """The prior used (robust mixture) as a :class:`~harmoni_bayes.exact.NormalMixture` for summaries."""
        return NormalMixture(self.robust.weights, self.robust.means, self.robust.sds)

    def prior_with_weight(self, weight: float) -> NormalMixture:
        """The prior with robust weight ``weight`` instead of the spec's (``prior_used`` at the spec's weight)."""
        mix = robustify(self.mixture, weight, float(self.vague.means[0]), float(self.vague.sds[0]))
        return NormalMixture(mix.weights, mix.means, mix.sds)

    def map_used(self) -> NormalMixture:
        """The MAP mixture (after the region discount) as a :class:`~harmoni_bayes.exact.NormalMixture`."""
        return NormalMixture(self.mixture.weights, self.mixture.means, self.mixture.sds)


def _fit_error(mix: NormalMix, target_q: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(mix.ppf(np.asarray(FIT_ERROR_Q))) - target_q)))


# ---------------------------------------------------------------------------------------------
# presentation
# ---------------------------------------------------------------------------------------------


def _names() -> dict[str, str]:
    out = {
        "robust_weight": "robust weight: prior probability that the new trial is not like the source trials",
        "extra_sd": "extra between-region SD of the new trial's log HR (its prior)",
    }
    for e in ENDPOINTS:
        out |= {
            f"hr_new_trial[{e}]": f"{e} HR a new trial like the source trials would show (MAP prior, no discount)",
            f"hr_prior[{e}]": f"{e} HR prior used for the new trial (MAP with all discounts)",
            f"tau[{e}]": f"{e}: SD of the true log HRs across the source trials (tau)",
            f"ess_elir[{e}]": f"{e} MAP prior's effective sample size in events (ELIR)",
            f"ess_moment[{e}]": f"{e} MAP prior's effective sample size in events (moment matching)",
            f"ess_morita[{e}]": f"{e} MAP prior's effective sample size in events (Morita, at the mode)",
            f"ess_elir_robust[{e}]": f"{e} prior used: effective sample size in events (ELIR)",
            f"ess_moment_robust[{e}]": f"{e} prior used: effective sample size in events (moment matching)",
            f"ess_morita_robust[{e}]": f"{e} prior used: effective sample size in events (Morita, at the mode)",
            f"critical_hr[{e}]": f"{e}: largest observed HR that succeeds at the final analysis",
            f"map_fit_error[{e}]": f"{e}: largest quantile error (log HR) of the MAP mixture approximation",
            f"region_hr_ratio[{e}]": f"{e}: ratio of the region-pair trials' published HRs (1 = no region effect)",
            f"P(success[{e}])": f"the new trial meets its {e} endpoint (assurance, with the spec's discounts)",
            f"P(success[{e}];interim)": f"the new trial meets its {e} endpoint, given its interim result",
        }
        for w in np.round(np.arange(0.0, 1.0001, 0.05), 2):
            out[f"P(success[{e}];w={w:g})"] = f"the new trial meets its {e} endpoint with robust weight {w:g}"
        for hr in np.round(np.arange(0.3, 1.5001, 0.05), 2):
            out[f"P(success[{e}];HR={hr:g})"] = f"{e} success if the true HR were {hr:g} (power)"
    return out


def _headline(c: HeadlineContext) -> list[Line]:
    eps = [n[len("P(success[") : -2] for n in c.probabilities if n.startswith("P(success[") and n.endswith("])")]
    parts: list = [f"Probability that {c.spec.get('target') or 'the new trial'} meets its "]
    for i, e in enumerate(eps):
        parts += [f"{e} endpoint: " if i == 0 else f"; its {e} endpoint: ", P(f"P(success[{e}])")]
    out = [line("answer", *parts, c.when_suffix)]
    for e in eps:
        est: list = [f"{e}: MAP prior for the new trial's HR ", CI(f"hr_new_trial[{e}]")]
        est += [", worth ", Q(f"ess_elir[{e}]"), " events (ELIR; moment method ", Q(f"ess_moment[{e}]"), ")"]
        est += ["; robust weight ", Q("robust_weight")]
        if f"ess_elir_robust[{e}]" in c.quantities:
            est += [", leaving ", Q(f"ess_elir_robust[{e}]"), " events (ELIR)"]
        out.append(line("estimate", *est, "."))
    if "extra_sd" in c.quantities:
        out.append(line("detail", "Added between-region SD of the log HR (prior) ", CI("extra_sd"), "."))
    if all(f"P(success[{e}];w=0)" in c.probabilities for e in eps):
        parts = ["Without the robust component (weight 0) the probabilities would be "]
        for i, e in enumerate(eps):
            parts += ["" if i == 0 else " and ", f"{e} ", P(f"P(success[{e}];w=0)")]
        out.append(line("detail", *parts, "."))
    notes: list = []
    for e in eps:
        if f"P(hr_new_trial[{e}]<1)" in c.probabilities:
            notes += ["; " if notes else "", f"{e} ", P(f"P(hr_new_trial[{e}]<1)")]
    if notes:
        out.append(
            line(
                "note",
                "Success means the trial's own test crosses its boundary; it is not the probability of HR < 1 "
                "in a new trial (",
                *notes,
                ").",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# the family
# ---------------------------------------------------------------------------------------------


def _const(name: str, scale: Any, value: float) -> Stats:
    v = float(value)
    stats = {k: v for k in ("mean", "median", "q2.5", "q97.5", "hdi_low", "hdi_high")} | {"sd": 0.0}
    if scale in ("hr", "ratio") and v > 0:  # an HR's moments are reported on the log scale
        stats |= {"log_mean": math.log(v), "log_sd": 0.0}
    return Stats(name, scale, stats)


_SPENDING_WORDS = {
    "obf": "Lan-DeMets O'Brien-Fleming-type alpha spending",
    "pocock": "Lan-DeMets Pocock-type alpha spending",
    "obf_classic": "classical O'Brien-Fleming boundaries",
    "pocock_classic": "classical Pocock boundaries",
}


def _describe_extra_sd(prior: HalfNormalPrior | FixedValue) -> str:
    """The region SD's prior in words: what its median means for the new trial's HR."""
    if isinstance(prior, FixedValue):
        sd = float(prior.value)
        factor = math.exp(Z_INTERVAL * sd)
        return f"fixed at {sd:g} (the new trial's HR within a factor {factor:.3g} of the MAP value, 95%)"
    med = prior.median()
    return (
        f"half-normal with scale {prior.sigma:g} (median {med:.2g}: at that SD the new trial's HR lies within a factor "
        f"{math.exp(Z_INTERVAL * med):.3g} of the MAP value with 95% probability)"
    )


def _endpoints(idata) -> list[str]:
    """The endpoints of an MCMC fit's ``endpoint`` dim, in order (those with source trials)."""
    return [str(v) for v in idata.posterior["theta_target"].coords["endpoint"].values]


def _short_extra_sd(prior: HalfNormalPrior | FixedValue) -> str:
    """The region SD's prior in a few words, for a strip note."""
    return f"fixed at {prior.value:g}" if isinstance(prior, FixedValue) else f"half-normal({prior.sigma:g})"


def _extra_sd_stats(prior: HalfNormalPrior | FixedValue) -> Stats:
    if isinstance(prior, FixedValue):
        return _const("extra_sd", "sd", prior.value)
    q_lo, med, q_hi, hdi_hi = (float(x) for x in prior.ppf([0.025, 0.5, 0.975, 0.95]))
    return Stats(
        "extra_sd",
        "sd",
        {
            "mean": prior.mean(),
            "sd": prior.std(),
            "median": med,
            "q2.5": q_lo,
            "q97.5": q_hi,
            "hdi_low": 0.0,
            "hdi_high": hdi_hi,  # the density decreases from 0: the HDI is [0, 95% quantile]
        },
    )


_ANALYSES: dict[tuple, dict[str, EndpointPoS]] = {}
"""Exact analyses made in this process, by their inputs (:meth:`PoSFamily._inputs`).  A report's figures rebuild
the analysis of the result they show from its saved spec and rows (:func:`reanalyse`); right after the fit, in
the same process, that is the analysis just made (1-2 s of mixture fits saved per report).  The analysis is a
deterministic function of its inputs, and its parts are immutable."""


@register
class PoSFamily(ModelFamily):
    """Probability of success of a new trial: MAP prior, discounts, group-sequential design (module docstring)."""

    name = "pos"
    spec_class = PoSSpec
    capabilities = frozenset({"exact"})
    presentation = Presentation(
        headline=_headline,
        names=_names(),
        figures=("map_prior", "oc_curve"),
        forest="none",
        headline_quantity="hr_new_trial[PFS]",
    )

    def __init__(self, spec: PoSSpec, rows: Mapping[str, pd.DataFrame]):
        self.spec = spec
        self.rows = {e: rows[e].reset_index(drop=True) for e in rows}
        self.endpoints: list[Endpoint] = list(spec.endpoints)
        self.map_endpoints: list[Endpoint] = [e for e in self.endpoints if spec.endpoints[e].trials is not None]
        self.labels = []
        self.set_thresholds(spec)
        self._exact: dict[str, EndpointPoS] | None = None
        self._mcmc_cache: tuple[Any, tuple[dict[str, EndpointPoS], dict[str, np.ndarray], tuple[int, int]]] | None = (
            None
        )

    # -- evidence ---------------------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: PoSSpec, tables: EvidenceTables) -> tuple[PoSFamily, EvidenceRecord]:
        """For each endpoint with source trials: their ITT rows of that endpoint, one per trial, as of the date."""
        from ..selection import select_evidence

        used: list[pd.DataFrame] = []
        excluded: list[pd.DataFrame] = []
        rows: dict[str, pd.DataFrame] = {}
        for e, ep in spec.endpoints.items():
            if ep.trials is None:
                continue
            table = tables.trials
            sel = select_evidence(
                table,
                as_of=spec.as_of,
                trials=ep.trials,
                endpoint=e,
                subgroup_factor="overall",
                prefer=spec.evidence.prefer,
                exclude=spec.evidence.exclude,
            )
            if len(sel.used) == 0:
                raise ModelError(f"no usable {e} rows for {ep.trials}", reasons_as_problems(sel.excluded))
            if sel.used.trial.duplicated().any():
                raise ModelError(f"the {e} MAP prior needs one row per trial")
            rows[e] = sel.used
            used.append(sel.used.assign(table="trials"))
            excluded.append(with_sources(sel.excluded, table, "trials"))
        record = EvidenceRecord(
            used=pd.concat(used, ignore_index=True) if used else pd.DataFrame(columns=["row_id", "table"]),
            excluded=pd.concat(excluded, ignore_index=True) if excluded else pd.DataFrame(columns=["row_id"]),
            as_of=spec.as_of,
        )
        return cls(spec, rows), record

    @classmethod
    def from_rows(cls, spec: PoSSpec, used: pd.DataFrame) -> PoSFamily:
        """Rebuild from a saved result's evidence rows (no re-selection): each endpoint's rows of its trials."""
        rows: dict[str, pd.DataFrame] = {}
        for e, ep in spec.endpoints.items():
            if ep.trials is not None:
                sub = used[(used["endpoint"] == e) & used["trial"].isin(ep.trials)]
                rows[e] = sub.assign(log_hr=sub["log_hr"].astype(float), se=sub["se"].astype(float))
        return cls(spec, rows)

    # -- the pipeline -------------------------------------------------------------------------------------
    def _exact_map(self, e: str) -> tuple[NormalMixture, GridDistribution, NormalMixture]:
        """The exact predictive and tau posterior (fine grid), and the predictive on a coarser grid for fitting."""
        r = self.rows[e]
        y, se = r.log_hr.to_numpy(float), r.se.to_numpy(float)
        pr = self.spec.map.priors
        ex = nnhm_exact(y, se, mu_prior=pr.mu, tau_prior=pr.tau, n_grid=N_TAU_GRID)
        coarse = nnhm_exact(y, se, mu_prior=pr.mu, tau_prior=pr.tau, n_grid=N_TAU_GRID_FIT)
        return ex.theta_new, ex.tau, coarse.theta_new

    def analysis(self, draws: Mapping[str, np.ndarray] | None = None) -> dict[str, EndpointPoS]:
        """Per endpoint: MAP prior (exact, or from MCMC ``draws`` of ``theta*`` per endpoint), its mixture
        approximation, the robust prior, the design and their derived results.  The exact analysis is cached.
        """
        if draws is None:
            if self._exact is None:
                key = self._inputs()
                if key not in _ANALYSES:
                    if len(_ANALYSES) >= 16:
                        _ANALYSES.clear()
                    _ANALYSES[key] = self._analyse(None)
                self._exact = _ANALYSES[key]
            return self._exact
        return self._analyse(draws)

    def _inputs(self) -> tuple:
        """Everything the exact analysis depends on: the spec, and each endpoint's log HRs and SEs in order, as a
        result folder saves them (JSON, 10 decimals: ``results._records``), so that a rebuild from the saved rows
        finds the analysis of the fit that saved them.
        """
        rows = tuple(
            (e, r.log_hr.astype(float).to_json(orient="values"), r.se.astype(float).to_json(orient="values"))
            for e, r in sorted(self.rows.items())
        )
        return self.spec.model_dump_json(), rows

    def _analyse(self, draws: Mapping[str, np.ndarray] | None) -> dict[str, EndpointPoS]:
        disc = self.spec.discount
        mspec = self.spec.map
        out: dict[str, EndpointPoS] = {}
        for e in self.endpoints:
            ep = self.spec.endpoints[e]
            design = ep.design()
            predictive, tau, theta = None, None, None
            if draws is not None and e in draws:
                theta = np.asarray(draws[e], dtype=float)
                flat = theta.ravel()
                mix = fit_mixture(flat, mspec.max_components, mspec.criterion, seed=self.spec.sampler.seed)
                target_q = np.quantile(flat, FIT_ERROR_Q)
            else:
                if ep.prior is not None:
                    given = ep.prior.mix()
                    source: NormalMixture | NormalMix = given
                    predictive = NormalMixture(given.weights, given.means, given.sds)
                else:
                    predictive, tau, source = self._exact_map(e)
                target = discounted_predictive(source, disc.extra_sd)
                grid = _cdf_grid(target)
                if ep.prior is not None and disc.extra_sd is None:
                    mix = ep.prior.mix()
                else:
                    pts = quantile_points(target, mspec.points, grid)
                    mix = fit_mixture(pts, mspec.max_components, mspec.criterion, seed=self.spec.sampler.seed)
                target_q = np.interp(np.asarray(FIT_ERROR_Q), grid[1], grid[0])
            sd_v = disc.robust_sd if disc.robust_sd is not None else unit_information_sd(design.allocation)
            out[e] = EndpointPoS(
                endpoint=e,
                design=design,
                weight=disc.robust_weight,
                mixture=mix,
                robust=robustify(mix, disc.robust_weight, disc.robust_mean, sd_v),
                vague=NormalMix.single(disc.robust_mean, sd_v),
                fit_error=_fit_error(mix, target_q),
                trials=tuple(ep.trials or ()),
                predictive=predictive,
                tau=tau,
                draws=theta,
                interim=ep.interim,
            )
        return out

    # -- results shared by both engines -------------------------------------------------------------------
    def _fixed_quantities(self, a: Mapping[str, EndpointPoS]) -> list[Stats]:
        """Numbers that are not uncertain: robust weight, ESS, critical HR, fit error (and the extra SD prior)."""
        out = [_const("robust_weight", "identity", self.spec.discount.robust_weight)]
        if self.spec.discount.extra_sd is not None:
            out.append(_extra_sd_stats(self.spec.discount.extra_sd))
        methods: tuple[Literal["elir", "moment", "morita"], ...] = ("elir", "moment", "morita")
        for e, x in a.items():
            for robust in (False, True):
                suffix = "_robust" if robust else ""
                out += [_const(f"ess_{m}{suffix}[{e}]", "identity", x.ess(m, robust)) for m in methods]
            out.append(_const(f"critical_hr[{e}]", "hr", x.critical_hr))
            out.append(_const(f"map_fit_error[{e}]", "identity", x.fit_error))
        return out

    def _design_probabilities(self, x: EndpointPoS) -> list[tuple[str, float]]:
        """The OC table (power at the spec's HRs) and, with interim data, success given them."""
        e = x.endpoint
        power = np.atleast_1d(x.power(np.asarray(self.spec.oc_hrs)))
        out = [(f"P(success[{e}];HR={h:g})", float(p)) for h, p in zip(self.spec.oc_hrs, power, strict=True)]
        if x.interim is not None:
            out.append((f"P(success[{e}];interim)", float(x.given_interim(x.interim.hr, x.interim.events))))
        return out

    # -- exact engine -------------------------------------------------------------------------------------
    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        """Exact MAP predictive (grid over tau), its mixture approximation, the robust prior, and the design.

        Probabilities, in order: ``P(success[e])`` for every endpoint, ``P(hr_new_trial[e]<t)``, then per
        endpoint the robust-weight sweep, the OC table and success given interim data.
        """
        a = self.analysis()
        quantities: list[Stats] = []
        probabilities: list[tuple[str, float]] = [(f"P(success[{e}])", x.pos()) for e, x in a.items()]
        new_draws, prior_draws = [], []
        for e, x in a.items():
            new = x.predictive if x.predictive is not None else x.map_used()
            quantities.append(Stats(f"hr_new_trial[{e}]", "hr", new.summary("hr")))
            quantities.append(Stats(f"hr_prior[{e}]", "hr", x.prior_used().summary("hr")))
            if x.tau is not None:
                quantities.append(Stats(f"tau[{e}]", "sd", x.tau.summary()))
            probabilities += [(f"P(hr_new_trial[{e}]<{t:g})", new.prob_below(math.log(t))) for t in self.thresholds]
            new_draws.append(np.exp(NormalMix.from_mixture(new).sample(n_draws, rng)))
            prior_draws.append(np.exp(x.robust.sample(n_draws, rng)))
        quantities += self._fixed_quantities(a)
        for x in a.values():
            probabilities += [(f"P(success[{x.endpoint}];w={w:g})", x.pos(w)) for w in self.spec.discount.sweep]
            probabilities += self._design_probabilities(x)
        draws = {"hr_new_trial": np.stack(new_draws, axis=1), "hr_prior": np.stack(prior_draws, axis=1)}
        return ExactFit(
            quantities,
            probabilities,
            draws,
            dims={"hr_new_trial": "endpoint", "hr_prior": "endpoint"},
            coords={"endpoint": list(a)},
        )

    # -- MCMC -----------------------------------------------------------------------------------------------
    def build_model(self):
        """The random-effects MAP model of every endpoint with source trials, vectorised over ``endpoint``.

        ``mu``, ``tau``, ``theta_new = mu + tau z_new`` and ``hr_new_trial`` have dim ``endpoint``; with an
        extra region SD, ``theta_target = theta_new + extra_sd z_region`` (else ``theta_target = theta_new``).
        """
        import pymc as pm
        import pytensor.tensor as pt

        eps = self.map_endpoints
        if not eps:
            raise ModelError("nothing to sample: every endpoint gives its prior directly; use method = 'exact'")
        y = np.concatenate([self.rows[e].log_hr.to_numpy(float) for e in eps])
        se = np.concatenate([self.rows[e].se.to_numpy(float) for e in eps])
        idx = np.concatenate([np.full(len(self.rows[e]), i) for i, e in enumerate(eps)])
        obs = [f"{e}:{t}" for e in eps for t in self.rows[e].trial]
        pr = self.spec.map.priors
        with pm.Model(coords={"endpoint": eps, "obs": obs}) as model:
            mu = pr.mu.to_pymc("mu", dims="endpoint")
            tau = pr.tau.to_pymc("tau", dims="endpoint")
            y_d = pm.Data("log_hr", y, dims="obs")
            se_d = pm.Data("se", se, dims="obs")
            pm.Normal("y", mu=mu[idx], sigma=pt.sqrt(se_d**2 + tau[idx] ** 2), observed=y_d, dims="obs")
            z_new = pm.Normal("z_new", dims="endpoint")
            theta_new = pm.Deterministic("theta_new", mu + tau * z_new, dims="endpoint")
            pm.Deterministic("hr_new_trial", pt.exp(theta_new), dims="endpoint")
            target = theta_new
            if self.spec.discount.extra_sd is not None:
                extra = self.spec.discount.extra_sd.to_pymc("extra_sd")
                z_region = pm.Normal("z_region", dims="endpoint")
                target = theta_new + extra * z_region
            pm.Deterministic("theta_target", target, dims="endpoint")
        return model

    def _mcmc(self, idata) -> tuple[dict[str, EndpointPoS], dict[str, np.ndarray], tuple[int, int]]:
        """The analysis of MCMC draws (cached for this ``idata``), the draws of ``theta*`` per endpoint (iid
        draws of the prior for an endpoint that gives it directly) and the (chain, draw) shape.
        """
        if self._mcmc_cache is not None and self._mcmc_cache[0] is idata:
            return self._mcmc_cache[1]
        theta = posterior_array(idata, "theta_target")
        shape = (int(theta.shape[0]), int(theta.shape[1]))
        labels = _endpoints(idata)
        draws: dict[str, np.ndarray] = {e: theta[..., labels.index(e)] for e in self.map_endpoints}
        a = self.analysis(draws)
        rng = np.random.default_rng(self.spec.sampler.seed)
        for e, x in a.items():
            if e not in draws:  # a directly given prior (after its region discount): iid draws
                draws[e] = x.mixture.sample(shape[0] * shape[1], rng).reshape(shape)
        self._mcmc_cache = (idata, (a, draws, shape))
        return a, draws, shape

    def quantities(self, idata) -> list[Draws]:
        """Draws of ``hr_new_trial``, ``tau`` and ``extra_sd``; the prior used by iid sampling; fixed numbers
        (ESS, critical HR, robust weight, fit error) as constant draws.
        """
        a, _, shape = self._mcmc(idata)
        n = shape[0] * shape[1]
        rng = np.random.default_rng(self.spec.sampler.seed + 2)
        labels = _endpoints(idata)
        out = []
        for e, x in a.items():
            if e in labels:
                new = posterior_array(idata, "hr_new_trial")[..., labels.index(e)]
            else:
                given = self.spec.endpoints[cast(Endpoint, e)].prior
                assert given is not None
                new = np.exp(given.mix().sample(n, rng)).reshape(shape)
            out.append(Draws(f"hr_new_trial[{e}]", "hr", new))
            out.append(Draws(f"hr_prior[{e}]", "hr", np.exp(x.robust.sample(n, rng)).reshape(shape)))
            if e in labels:
                out.append(Draws(f"tau[{e}]", "sd", posterior_array(idata, "tau")[..., labels.index(e)]))
        for s in self._fixed_quantities(a):
            if s.name == "extra_sd" and "extra_sd" in idata.posterior:
                out.append(Draws("extra_sd", "sd", posterior_array(idata, "extra_sd")))
            else:
                out.append(Draws(s.name, s.scale, np.full(shape, s.stats["median"])))
        return out

    def probabilities(self, idata) -> list[Draws]:
        """``P(success[e])`` and the weight sweep as per-draw conditional probabilities
        ``(1 - w) P(success | theta*_i) + w PoS_vague``; ``P(hr_new_trial[e]<t)`` as indicators; the OC table
        and success given interim data as constants.  Same names and order as :meth:`exact_fit`.
        """
        a, draws, shape = self._mcmc(idata)
        hr_new = {q.name: q.values for q in self.quantities(idata) if q.name.startswith("hr_new_trial[")}
        power = {e: np.asarray(x.power(np.exp(draws[e]))) for e, x in a.items()}

        def pos(x: EndpointPoS, w: float) -> np.ndarray:
            return (1.0 - w) * power[x.endpoint] + w * x.assurance_parts[1]

        out = [Draws(f"P(success[{e}])", "probability", pos(x, x.weight)) for e, x in a.items()]
        for e in a:
            out += [
                Draws(f"P(hr_new_trial[{e}]<{t:g})", "probability", (hr_new[f"hr_new_trial[{e}]"] < t).astype(float))
                for t in self.thresholds
            ]
        for x in a.values():
            out += [
                Draws(f"P(success[{x.endpoint}];w={w:g})", "probability", pos(x, w)) for w in self.spec.discount.sweep
            ]
            out += [Draws(n, "probability", np.full(shape, v)) for n, v in self._design_probabilities(x)]
        return out

    # -- where the certainty comes from -----------------------------------------------------------------------
    def strip(self, idata, context: StripContext) -> SensitivityStrip:
        """Per endpoint, the probability of success as the discounts are added one by one, beside the HR prior
        each gives the new trial: no discount (the MAP prior as it is), the region SD alone, as specified (region
        SD and robust weight), the sweep's heaviest robust weight, and no borrowing (the vague component alone:
        what the design gives without the source trials).

        All exact and cheap: the assurance is linear in the robust weight, so the weights need no new mixture;
        "no discount" is the family's own exact pipeline without the region SD (one more mixture fit per endpoint,
        about a second), rather than a second way of computing an assurance.  The headline rows repeat
        ``P(success[e])`` and ``hr_prior[e]``; the no-discount interval is ``hr_new_trial[e]``.
        """
        a = self.analysis() if context.method == "exact" else self._mcmc(idata)[0]
        disc = self.spec.discount
        plain = (
            a if disc.extra_sd is None else cast(PoSFamily, context.refit({"discount": {"extra_sd": None}})).analysis()
        )
        region = " and the region SD" if disc.extra_sd is not None else ""
        rows: list[SensitivityRow] = []
        for e, x in a.items():
            source = "the source trials' MAP prior" if x.trials else "the prior given in the spec"
            rows.append(
                SensitivityRow.from_stats(
                    f"{e}: no discount",
                    plain[e].pos(0.0),
                    context.quantities[f"hr_new_trial[{e}]"],
                    note=f"{source} as it is",
                )
            )
            if disc.extra_sd is not None:
                rows.append(
                    SensitivityRow.from_stats(
                        f"{e}: region SD only",
                        x.pos(0.0),
                        x.map_used().summary("hr"),
                        note=f"extra between-region SD {_short_extra_sd(disc.extra_sd)}; robust weight 0",
                    )
                )
            rows.append(
                SensitivityRow.from_stats(
                    f"{e}: as specified",
                    context.probabilities[f"P(success[{e}])"],
                    context.quantities[f"hr_prior[{e}]"],
                    note=f"robust weight {x.weight:g}{region}",
                    headline=True,
                )
            )
            heavier = [w for w in disc.sweep if x.weight < w < 1.0]
            if heavier:
                w = max(heavier)
                rows.append(
                    SensitivityRow.from_stats(
                        f"{e}: robust weight {w:g}",
                        x.pos(w),
                        x.prior_with_weight(w).summary("hr"),
                        note=f"the sweep's heaviest discount{region}",
                    )
                )
            rows.append(
                SensitivityRow.from_stats(
                    f"{e}: no borrowing",
                    x.pos(1.0),
                    x.prior_with_weight(1.0).summary("hr"),
                    note="the vague component alone: the design without the source trials",
                )
            )
        return SensitivityStrip("P(success)", tuple(rows), "HR prior for the new trial")

    # -- published numbers beside the model's ------------------------------------------------------------------
    def published_quantities(self) -> list[Stats]:
        """``region_hr_ratio[e]``: the ratio of the region-pair trials' published HRs, exp(y_a - y_b) with the
        normal 95% interval from their SEs (independent trials).
        """
        pair = self.spec.discount.region_pair
        if not pair:
            return []
        out = []
        for e in self.map_endpoints:
            r = self.rows[e].set_index("trial")
            if not set(pair) <= set(r.index):
                continue
            d = float(r.loc[pair[0], "log_hr"] - r.loc[pair[1], "log_hr"])
            s = math.hypot(float(r.loc[pair[0], "se"]), float(r.loc[pair[1], "se"]))
            out.append(
                Stats(
                    f"region_hr_ratio[{e}]",
                    "ratio",
                    NormalMixture(np.ones(1), np.array([d]), np.array([s])).summary("hr"),
                )
            )
        return out

    # -- words ------------------------------------------------------------------------------------------------
    def assumptions(self) -> list[str]:
        """What the PoS rests on, in plain words: exchangeability, discounts, ESS, success, design."""
        sp, disc = self.spec, self.spec.discount
        pr = sp.map.priors
        sources = "; ".join(
            f"{e}: {', '.join(ep.trials)}" if ep.trials else f"{e}: a normal mixture given in the spec"
            for e, ep in sp.endpoints.items()
        )
        text = [
            f"Exchangeability: for each endpoint {sp.target}'s true log HR is one more draw from the normal "
            "distribution that generated the source trials' true log HRs (a meta-analytic-predictive, MAP, prior). "
            f"Source trials: {sources}. They differ from the new trial in comparator, backbone, population or "
            "region, so the discounts below matter.",
            "Proportional hazards: each trial's effect is one HR, and a trial's information is proportional to its "
            "events (Schoenfeld: Var(log HR estimate) = (1 + r)^2 / (r D) with allocation r:1 and D events).",
            f"MAP prior: random effects with mu {pr.mu.describe()} and tau {pr.tau.describe()}; the predictive of "
            "a new trial's log HR is computed exactly on a grid over tau (MCMC: from the draws), then approximated "
            f"by a normal mixture of at most {sp.map.max_components} components chosen by "
            f"{sp.map.criterion.upper()} (fitted by EM to {sp.map.points} evenly spaced quantiles of the predictive; "
            "map_fit_error says how close it is).",
        ]
        if disc.extra_sd is not None:
            text.append(
                "Region discount: the new trial's true log HR is the MAP prediction plus a normal shift with an "
                f"extra SD, {_describe_extra_sd(disc.extra_sd)}; it widens the MAP prior before the mixture is fitted."
            )
        sd_txt = f"sd {disc.robust_sd:g}" if disc.robust_sd is not None else "one event's information (sd 2 for 1:1)"
        text += [
            f"Robust discount: with weight {disc.robust_weight:g} the new trial is assumed unlike the source trials "
            f"and its log HR follows a vague normal component centred at {disc.robust_mean:g} with {sd_txt} "
            "(Schmidli et al. 2014). The probability of success is linear in this weight, so the sweep table shows "
            "how the answer moves between no discount (weight 0) and heavier discounts.",
            "Effective sample size (ESS), in events: how many events of the new trial the prior is worth. A log HR "
            "estimated from D events (1:1) has SD 2/sqrt(D), so a normal prior with SD s is worth 4/s^2 events. "
            "For a mixture the methods differ: moment matching uses the prior's variance and understates a robust "
            "prior's information; Morita uses the curvature at the prior's peak and overstates it; ELIR (expected "
            "local-information ratio, Neuenschwander et al. 2020) averages the curvature over the prior and is the "
            "one that predicts consistently. The ESS is an upper bound on what the prior could add: the trial's "
            "own test does not use it.",
            "Probability of success (assurance): the probability that the new trial's own pre-specified "
            "frequentist analysis succeeds (its group-sequential boundary is crossed at some analysis), averaged "
            "over the prior for its true HR. It is computed by numerical integration, not simulation. It is not "
            "the probability that the true HR is below 1.",
            "Not modelled: the joint probability that both PFS and OS succeed (a testing hierarchy or the "
            "PFS-to-OS surrogacy model would be needed), non-proportional hazards (delayed separation of "
            "immunotherapy curves), futility stopping, and separate analyses of trial cohorts.",
        ]
        for e, ep in sp.endpoints.items():
            dual = f"; success also needs an observed HR below {ep.relevant_hr:g}" if ep.relevant_hr else ""
            text.append(
                f"Design of {sp.target}, {e}: analyses at {', '.join(f'{v:g}' for v in ep.events)} "
                f"{'deaths' if e == 'OS' else 'events'}, one-sided alpha {ep.alpha:g}, {_SPENDING_WORDS[ep.spending]}, "
                f"allocation {ep.allocation:g}:1{dual}."
            )
        return text


def reanalyse(
    spec: Mapping[str, Any], used: pd.DataFrame, draws: Mapping[str, np.ndarray] | None = None
) -> dict[str, EndpointPoS]:
    """A saved result's per-endpoint analysis, rebuilt from its spec and evidence rows (for figures).

    ``draws``: MCMC draws of ``theta*`` per endpoint (``theta_target``), for a result fitted by MCMC.
    Deterministic given the spec (the mixture fit is seeded with the spec's seed).
    """
    parsed = PoSSpec.model_validate(dict(spec))
    return PoSFamily.from_rows(parsed, used).analysis(draws)
