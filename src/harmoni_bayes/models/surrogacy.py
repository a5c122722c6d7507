"""Bivariate PFS -> OS surrogacy model and the joint forecast for a target trial (methods §d-§f).

Model (product-normal bivariate random-effects meta-analysis; Bujkiewicz et al. 2016,
Daniels & Hughes 1997), on the log-HR scale (experimental vs control; below 0 favours
the experimental arm), for reference comparisons i = 1..K::

    true effects     mu_S,i ~ N(eta_pfs, tau_pfs^2)
                     mu_T,i = intercept + slope * mu_S,i + residual_sd * e_i,   e_i ~ N(0, 1)
    estimates        (y_S,i, y_T,i) ~ N2((mu_S,i, mu_T,i), Sigma_w,i)
                     Sigma_w,i = [[s_S,i^2, rho_w s_S,i s_T,i], [rho_w s_S,i s_T,i, s_T,i^2]]

The true effects are integrated out analytically, so the likelihood is the bivariate
normal ``(y_S,i, y_T,i) ~ N2(eta, Sigma_b + Sigma_w,i)`` with ``eta = (eta_pfs, intercept +
slope * eta_pfs)`` and ``Sigma_b = [[tau^2, slope tau^2], [slope tau^2, slope^2 tau^2 +
residual_sd^2]]``.  It is written, exactly and vectorised over ``comparison``, as the PFS
margin times the OS conditional: ``y_S ~ N(eta_S, A)`` and ``y_T | y_S ~ N(eta_T + C/A (y_S -
eta_S), D - C^2/A)`` with ``A, C, D`` the entries of ``Sigma_b + Sigma_w``.  With no latent
per-trial effects there is no funnel; NUTS samples five or six hyperparameters.

Target trial (e.g. HARMONi-2).  It enters the *same* likelihood as one more row: its PFS
estimate, and its immature OS estimate when there is one, with the full within-trial
covariance (no OS -> only the PFS margin).  Its true effects (mu_S, mu_T) are then drawn
from their exact conditional given the hyperparameters and its own data (methods §d)::

    V = (Sigma_b^-1 + Sigma_w^-1)^-1,    m = V (Sigma_b^-1 eta + Sigma_w^-1 y)

through auxiliary standard-normal variables (``target_z``) that do not enter the
likelihood.  The model computes (m, V) in the equivalent covariance form
``m = eta + Sigma_b (Sigma_b + Sigma_w)^-1 (y - eta)``, which stays finite as
``residual_sd -> 0``; :func:`forecast_fixed_hyperparameters` uses the precision form above,
so the tests compare two independent implementations.  A surrogacy prediction is never
multiplied by an independent OS likelihood: the interim OS estimate and the PFS estimate
are one correlated observation.

The later OS analysis with ``D = later_deaths`` deaths (information ``I_F = D/4``) reports
``y_F = (I_I y_I + (I_F - I_I) y_delta) / I_F`` with ``y_delta ~ N(theta, 1/(I_F - I_I))``
independent of the interim ``y_I`` (information ``I_I = 1/se_os^2``; independent increments,
methods §f), or ``y_F ~ N(theta, 4/D)`` when there is no interim OS estimate.

``scipy.stats`` is imported inside the functions that use it: the registry imports every family, and an exact
run of another family should not wait for it (issue 14).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import EvidenceSpec, ReferenceSpec, SpecBase
from ..constants import Q_HI, Q_LO, Z_INTERVAL
from ..errors import ModelError, Problem
from ..priors import (
    CorrelationPrior,
    FixedValue,
    HalfNormalPrior,
    NormalPrior,
    TauPrior,
    UniformPrior,
    check_correlation,
)
from ..surrogacy_grid import AXES, FINE, SurrogacyGrid, surrogacy_grid
from . import register
from .base import (
    CI,
    BenefitCurves,
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
    Q,
    SensitivityRow,
    SensitivityStrip,
    Stats,
    StripContext,
    exact_strip_rows,
    line,
    posterior_array,
    reasons_as_problems,
    select_trials,
    with_sources,
)

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

__all__ = [
    "OSForecastModel",
    "OSForecastSpec",
    "ReferenceArrays",
    "SurrogacyModel",
    "SurrogacyPriors",
    "SurrogacySpec",
    "TargetTrial",
    "brma_from_product_normal",
    "forecast_fixed_hyperparameters",
    "surrogate_threshold_effect",
    "target_conditional",
]

HYPERPARAMETERS = ("eta_pfs", "tau_pfs", "intercept", "slope", "residual_sd", "rho_w")
OS_ALONE = "immature OS alone"
"""The strip row of the target's own OS estimate, without the surrogacy model."""


# --------------------------------------------------------------------------------------------
# Priors and the target trial
# --------------------------------------------------------------------------------------------


class SurrogacyPriors(BaseModel):
    """Priors of the surrogacy model (all on the log-HR scale, experimental vs control).

    * ``eta_pfs`` ~ Normal(0, 1): mean true PFS log HR across reference comparisons
      (95% prior range of the typical PFS HR 0.14 to 7.1).
    * ``tau_pfs`` ~ Half-normal(0.5): between-comparison SD of the true PFS log HRs; at
      tau = 0.5 two comparisons' true PFS HRs typically differ by up to a factor of
      exp(1.96 * sqrt(2) * 0.5) = 4.
    * ``intercept`` ~ Normal(0, 1): true OS log HR predicted for a comparison whose true
      PFS HR is 1 (no PFS effect); 0 means "no PFS effect, no OS effect".
    * ``slope`` ~ Normal(0, 1): change in the true OS log HR per unit of true PFS log HR.
      OS HR = exp(intercept) * PFS HR ** slope, so with slope 0.4 halving the PFS HR
      multiplies the predicted OS HR by 0.5 ** 0.4 = 0.76; slope 0 means PFS says nothing
      about OS.
    * ``residual_sd`` ~ Half-normal(0.5): SD of the true OS log HRs around the regression
      line; the OS HR of a comparison is within a factor exp(1.96 * residual_sd) of its
      prediction 95% of the time (0 = a perfect trial-level surrogate).
    * ``rho_w`` ~ Uniform(0.2, 0.7): within-trial correlation of the PFS and OS log-HR
      *estimates* of the same trial (shared patients).  It is rarely published and never
      assumed 0 by default; use :class:`~harmoni_bayes.priors.FixedValue` for a sensitivity
      grid (methods §d).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    eta_pfs: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0))
    tau_pfs: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))
    intercept: NormalPrior | FixedValue = Field(
        default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0), discriminator="dist"
    )
    slope: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0))
    residual_sd: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))
    rho_w: CorrelationPrior = Field(default_factory=lambda: UniformPrior(lower=0.2, upper=0.7))

    @model_validator(mode="after")
    def _rho_in_range(self):
        check_correlation(self.rho_w)
        return self

    def describe(self) -> dict[str, str]:
        """Plain-text description of each prior (for reports)."""
        return {name: getattr(self, name).describe() for name in HYPERPARAMETERS}


@dataclass(frozen=True)
class TargetTrial:
    """The trial whose OS we forecast (e.g. HARMONi-2), on the log-HR scale.

    ``y_pfs``/``se_pfs``: its PFS log-HR estimate and SE.  ``y_os``/``se_os``: its immature
    (interim) OS estimate and SE, or both ``None``.  ``later_deaths``: deaths at the later
    OS analysis to forecast (information D/4 for 1:1 allocation); it must exceed the
    interim's implied deaths ``4/se_os^2``.  ``alpha``: one-sided significance level of
    that later test (success if the estimate is below ``-z_{1-alpha} * 2/sqrt(D)``).
    """

    label: str
    y_pfs: float
    se_pfs: float
    y_os: float | None
    se_os: float | None
    later_deaths: int | None  # None: the OS estimate is final, no later analysis is forecast
    alpha: float = 0.025

    def __post_init__(self):
        problems = []
        if not (np.isfinite(self.y_pfs) and np.isfinite(self.se_pfs) and self.se_pfs > 0):
            problems.append(Problem("target PFS estimate needs a finite log HR and a positive SE"))
        if (self.y_os is None) != (self.se_os is None):
            problems.append(Problem("give both y_os and se_os for the interim OS estimate, or neither"))
        elif (
            self.y_os is not None
            and self.se_os is not None
            and not (np.isfinite(self.y_os) and np.isfinite(self.se_os) and self.se_os > 0)
        ):
            problems.append(Problem("target OS estimate needs a finite log HR and a positive SE"))
        if self.later_deaths is None:
            pass
        elif not (isinstance(self.later_deaths, (int, np.integer)) and self.later_deaths > 0):
            problems.append(Problem("later_deaths must be a positive integer", value=str(self.later_deaths)))
        elif self.se_os is not None and np.isfinite(self.se_os) and self.se_os > 0:
            interim_deaths = 4.0 / self.se_os**2
            if not self.later_deaths > interim_deaths * (1 + 1e-9):  # tolerance for SEs like 2/sqrt(D)
                problems.append(
                    Problem(
                        f"later_deaths = {self.later_deaths} (information D/4 = {self.later_deaths / 4:.3g}) "
                        f"is not larger than the interim OS information 1/se_os^2 = {1 / self.se_os**2:.3g} "
                        f"(about {interim_deaths:.0f} deaths); a later analysis needs more deaths "
                        "than the interim one"
                    )
                )
        if not (0.0 < self.alpha < 0.5):
            problems.append(Problem("alpha (one-sided) must be between 0 and 0.5", value=str(self.alpha)))
        if problems:
            raise ModelError(f"target trial {self.label!r} cannot be forecast", problems)

    @property
    def has_os(self) -> bool:
        """True when the target has an interim OS estimate."""
        return self.y_os is not None

    @property
    def interim_information(self) -> float:
        """I_I = 1/se_os^2 (0 without an interim OS estimate)."""
        return 0.0 if self.se_os is None else 1.0 / self.se_os**2

    @property
    def later_information(self) -> float:
        """I_F = D/4 (1:1 allocation)."""
        return self._deaths() / 4.0

    @property
    def success_bound(self) -> float:
        """c = -z_{1-alpha} * 2/sqrt(D): the later analysis is significant if its log HR is below c."""
        from scipy import special

        return float(special.ndtri(self.alpha) * 2.0 / math.sqrt(self._deaths()))

    def os_alone(self) -> SensitivityRow:
        """The strip row of the target's own OS estimate with a flat prior on its true OS log HR (no PFS
        information): ``P(OS HR < 1) = Phi(-y_T / s_T)``, interval ``exp(y_T +- z s_T)``.

        Before any OS estimate was disclosed the row stays, without numbers and with the note "no OS data yet":
        a forecast as of then rests on PFS alone, and the strip should say so rather than drop the row.
        """
        from scipy import stats

        if self.y_os is None or self.se_os is None:
            return SensitivityRow(OS_ALONE, None, note="no OS data yet")
        med, lo, hi = np.exp(self.y_os + self.se_os * stats.norm.ppf([0.5, Q_LO, Q_HI]))
        p = float(stats.norm.cdf(-self.y_os / self.se_os))
        return SensitivityRow(
            OS_ALONE, p, med, lo, hi, note="the interim OS estimate with a flat prior; no PFS information"
        )

    def _deaths(self) -> int:
        if self.later_deaths is None:
            raise ModelError(f"target trial {self.label!r}: its OS analysis is final; there is no later analysis")
        return self.later_deaths

    @classmethod
    def from_hrs(
        cls,
        label: str,
        pfs_hr: float,
        pfs_ci: tuple[float, float],
        *,
        later_deaths: int,
        os_hr: float | None = None,
        os_ci: tuple[float, float] | None = None,
        alpha: float = 0.025,
        ci_level: float = 0.95,
    ) -> TargetTrial:
        """Build from published HRs and CIs (SE = (ln U - ln L) / (2 z))."""
        from scipy import stats

        z2 = 2.0 * stats.norm.isf((1.0 - ci_level) / 2.0)
        se_pfs = (math.log(pfs_ci[1]) - math.log(pfs_ci[0])) / z2
        y_os = se_os = None
        if os_hr is not None:
            if os_ci is None:
                raise ModelError(f"target trial {label!r}: an OS HR needs its CI")
            y_os = math.log(os_hr)
            se_os = (math.log(os_ci[1]) - math.log(os_ci[0])) / z2
        return cls(label, math.log(pfs_hr), se_pfs, y_os, se_os, later_deaths, alpha)


# --------------------------------------------------------------------------------------------
# Closed-form pieces (numpy; the conditional helper also works on PyTensor tensors)
# --------------------------------------------------------------------------------------------


def brma_from_product_normal(eta_pfs, tau_pfs, intercept, slope, residual_sd):
    """Product-normal parameters -> BRMA ``(eta (2,), tau (2,), rho_b)``.

    eta_T = intercept + slope * eta_S; tau_T^2 = slope^2 tau_S^2 + residual_sd^2;
    rho_b = slope * tau_S / tau_T (so R^2_trial = rho_b^2).
    """
    eta_os = intercept + slope * eta_pfs
    tau_os = math.sqrt(slope**2 * tau_pfs**2 + residual_sd**2)
    rho_b = slope * tau_pfs / tau_os
    return np.array([eta_pfs, eta_os]), np.array([tau_pfs, tau_os]), rho_b


def forecast_fixed_hyperparameters(eta, tau, rho_b, y, sigma_w) -> tuple[np.ndarray, np.ndarray]:
    """Posterior of a new trial's true (PFS, OS) log HRs for fixed hyperparameters (methods §d).

    ``eta``: (2,) between-trial means; ``tau``: (2,) between-trial SDs; ``rho_b``: between-trial
    correlation; ``y``: the trial's estimates, (y_S,) or (y_S, y_T) (a NaN/None y_T means "no
    OS estimate"); ``sigma_w``: its within-trial covariance, (2, 2) (or (1, 1) / a scalar
    variance with PFS only).  Returns ``(mean (2,), cov (2, 2))``::

        V = (Sigma_b^-1 + Sigma_w^-1)^-1,   m = V (Sigma_b^-1 eta + Sigma_w^-1 y)

    With PFS only, ``Sigma_w^-1`` is the precision of the PFS estimate alone
    ``[[1/s_S^2, 0], [0, 0]]``.
    """
    eta = np.asarray(eta, dtype=float).reshape(2)
    tau = np.asarray(tau, dtype=float).reshape(2)
    sb = np.array([[tau[0] ** 2, rho_b * tau[0] * tau[1]], [rho_b * tau[0] * tau[1], tau[1] ** 2]], dtype=float)
    y_arr = np.array([np.nan if v is None else v for v in np.atleast_1d(np.asarray(y, dtype=object))], float)
    sw = np.atleast_2d(np.asarray(sigma_w, dtype=float))
    has_os = y_arr.size == 2 and np.isfinite(y_arr[1])
    if has_os:
        pw = np.linalg.inv(sw)
        pw_y = pw @ y_arr
    else:
        pw = np.array([[1.0 / sw[0, 0], 0.0], [0.0, 0.0]])
        pw_y = np.array([y_arr[0] / sw[0, 0], 0.0])
    pb = np.linalg.inv(sb)
    cov = np.linalg.inv(pb + pw)
    mean = cov @ (pb @ eta + pw_y)
    return mean, cov


def target_conditional(eta_pfs, tau_pfs, intercept, slope, residual_sd, rho_w, y_s, s_s, y_t=None, s_t=None):
    """Conditional mean and covariance of a trial's true (mu_S, mu_T) given hyperparameters and its data.

    Covariance form ``m = eta + Sigma_b S^-1 (y - eta)``, ``V = Sigma_b - Sigma_b S^-1 Sigma_b`` with
    ``S = Sigma_b + Sigma_w``; exact, and finite as residual_sd -> 0.  Uses only arithmetic,
    so the arguments may be numpy arrays (broadcast over posterior draws) or PyTensor tensors.
    Returns ``(m_S, m_T, V_SS, V_ST, V_TT)``.
    """
    t2 = tau_pfs**2
    b11 = t2
    b12 = slope * t2
    b22 = slope**2 * t2 + residual_sd**2
    e_s = eta_pfs
    e_t = intercept + slope * eta_pfs
    if y_t is None:
        a = b11 + s_s**2
        r = y_s - e_s
        m_s = e_s + b11 * r / a
        m_t = e_t + b12 * r / a
        v11 = b11 - b11 * b11 / a
        v12 = b12 - b11 * b12 / a
        v22 = b22 - b12 * b12 / a
        return m_s, m_t, v11, v12, v22
    s11 = b11 + s_s**2
    s12 = b12 + rho_w * s_s * s_t
    s22 = b22 + s_t**2
    det = s11 * s22 - s12**2
    i11, i12, i22 = s22 / det, -s12 / det, s11 / det
    # K = Sigma_b S^-1
    k11 = b11 * i11 + b12 * i12
    k12 = b11 * i12 + b12 * i22
    k21 = b12 * i11 + b22 * i12
    k22 = b12 * i12 + b22 * i22
    r_s, r_t = y_s - e_s, y_t - e_t
    m_s = e_s + k11 * r_s + k12 * r_t
    m_t = e_t + k21 * r_s + k22 * r_t
    v11 = b11 - (k11 * b11 + k12 * b12)
    v12 = b12 - (k11 * b12 + k12 * b22)
    v22 = b22 - (k21 * b12 + k22 * b22)
    return m_s, m_t, v11, v12, v22


def os_estimate_given_pfs(eta_pfs, tau_pfs, intercept, slope, residual_sd, rho_w, y_s, s_s, s_t):
    """Predictive mean and SD of a trial's OS log-HR *estimate* given its PFS estimate (per draw).

    ``y_T | y_S ~ N(eta_T + C/A (y_S - eta_S), D - C^2/A)`` with A, C, D the entries of
    ``Sigma_b + Sigma_w``: the OS factor of the model's likelihood, including the trial's
    own sampling error and the within-trial correlation.  Works on numpy or PyTensor input.
    """
    t2 = tau_pfs**2
    a = t2 + s_s**2
    c = slope * t2 + rho_w * s_s * s_t
    d = slope**2 * t2 + residual_sd**2 + s_t**2
    mean = intercept + slope * eta_pfs + c / a * (y_s - eta_pfs)
    var = d - c**2 / a
    return mean, var**0.5


def surrogate_threshold_effect(intercept, slope, residual_sd, z: float = Z_INTERVAL) -> np.ndarray:
    """Per-draw surrogate threshold effect on the PFS **HR** scale.

    The largest true PFS HR whose 95% prediction interval for the true OS log HR lies below 0:
    for slope > 0 it solves ``intercept + slope * x + z * residual_sd = 0``, giving
    ``STE = exp(-(intercept + z * residual_sd) / slope)``.  It conditions on each draw's
    hyperparameters (their uncertainty is in the spread of the draws) and on the *true* PFS
    effect (no sampling error of a new trial's PFS estimate).

    For slope <= 0 a larger PFS benefit does not predict a larger OS benefit, so no threshold
    exists: those draws are NaN (``P(slope>0)`` reports how often it is defined).  Extreme draws
    (slope near 0+) are kept on the log scale clipped to +-50 before exponentiation, so they are 0
    or huge but finite.
    """
    intercept = np.asarray(intercept, dtype=float)
    slope = np.asarray(slope, dtype=float)
    residual_sd = np.asarray(residual_sd, dtype=float)
    out = np.full(np.broadcast(intercept, slope, residual_sd).shape, np.nan)
    pos = np.broadcast_to(slope > 0, out.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = -(intercept + z * residual_sd) / slope
    x = np.broadcast_to(x, out.shape)
    out[pos] = np.exp(np.clip(x[pos], -50.0, 50.0))
    return out


REWEIGHTED_PRIORS = (
    ("residual SD half-normal(0.25)", "residual_sd", HalfNormalPrior(sigma=0.25)),
    ("residual SD half-normal(1)", "residual_sd", HalfNormalPrior(sigma=1.0)),
)
"""Other priors of the residual SD (as the OS forecast's sensitivity settings), for the relationship's strip."""


def reweighted_priors(priors: SurrogacyPriors) -> list[tuple[str, str, Any]]:
    """``(label, parameter, prior)``: the alternative priors the relationship's strip reweights the fit to.

    :data:`REWEIGHTED_PRIORS` (but not the spec's own), and rho_w in the lowest and highest fifth of its uniform
    prior's range (the within-trial correlation is not published: does the answer move between a low and a high
    one?).  An alternative must put its mass inside the spec prior's support, where importance weights exist:
    every residual-SD prior lives on (0, inf), and a fixed rho_w gets no rows.
    """
    out: list[tuple[str, str, Any]] = [
        (label, name, alt) for label, name, alt in REWEIGHTED_PRIORS if getattr(priors, name) != alt
    ]
    rho = priors.rho_w
    if isinstance(rho, UniformPrior):
        fifth = (rho.upper - rho.lower) / 5
        for a, b in ((rho.lower, rho.lower + fifth), (rho.upper - fifth, rho.upper)):
            out.append((f"rho_w {a:.2g} to {b:.2g}", "rho_w", UniformPrior(lower=a, upper=b)))
    return out


def os_benefit_given_pfs(intercept: Any, slope: Any, residual_sd: Any, log_pfs_hr: Any) -> np.ndarray:
    """P(true OS HR < 1 | true PFS HR = exp(x)) at each ``x`` of ``log_pfs_hr``, averaged over the draws.

    Per draw the true OS log HR of a comparison with true PFS log HR x is ``N(intercept + slope x, residual_sd^2)``,
    so the probability is ``Phi(-(intercept + slope x) / residual_sd)`` (a step where ``residual_sd`` is 0).  It
    conditions on the *true* PFS effect, as the surrogate threshold effect does: the STE is where this curve,
    drawn per draw, crosses 0.975.
    """
    from scipy import stats

    a, b, psi = (np.asarray(v, dtype=float).ravel()[:, None] for v in (intercept, slope, residual_sd))
    mean = a + b * np.asarray(log_pfs_hr, dtype=float)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(psi > 0, stats.norm.cdf(-mean / np.where(psi > 0, psi, 1.0)), (mean < 0) * 1.0)
    return p.mean(axis=0)


def _benefit_curves(draws: Any, log_h: np.ndarray) -> dict[str, np.ndarray]:
    a, b, psi = (draws(n) for n in ("intercept", "slope", "residual_sd"))
    if a is None or b is None or psi is None:
        return {}
    return {"one relationship": os_benefit_given_pfs(a, b, psi, log_h)}


OS_BENEFIT = BenefitCurves("true PFS HR", "a true OS benefit (OS HR < 1)", _benefit_curves)
"""The relationship's benefit figure: the probability of an OS benefit for a trial with true PFS HR h."""


# --------------------------------------------------------------------------------------------
# The model family
# --------------------------------------------------------------------------------------------


_REFINE = 16
"""Each cell of a grid parameter's axis is split this many times for its reported marginal."""


def _binned(values: np.ndarray, weights: np.ndarray, lo: float, hi: float, bins: int = 2000) -> Any:
    """The weighted node values of a function of the grid parameters as a fine histogram on ``[lo, hi]``
    (a :class:`~harmoni_bayes.exact.GridDistribution`; its quantiles are exact up to the bin width).
    """
    from ..exact import GridDistribution

    edges = np.linspace(lo, hi, bins + 1)
    w = np.histogram(np.clip(values, lo, hi), bins=edges, weights=weights)[0]
    return GridDistribution(0.5 * (edges[1:] + edges[:-1]), w, edges)


def _bivariate_normal(m1, m2, v11, v12, v22, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One draw per entry of N2((m1, m2), [[v11, v12], [v12, v22]]) by the Cholesky factor, as the PyMC model draws
    the target's true effects (a variance of 0, e.g. a fixed intercept, gives the mean).
    """
    z = rng.standard_normal((np.size(m1), 2)).T  # drawn as (n, 2): the same draws for a seed as before
    l11 = np.sqrt(np.maximum(v11, 0.0))
    l21 = np.divide(v12, l11, out=np.zeros(np.shape(l11)), where=l11 > 0)
    l22 = np.sqrt(np.maximum(v22 - l21**2, 0.0))
    return m1 + l11 * z[0], m2 + l21 * z[0] + l22 * z[1]


def _ste_summary(w: np.ndarray, m_a: np.ndarray, sd_a: np.ndarray, slope: np.ndarray, psi: np.ndarray) -> Any:
    """The STE's summary given slope > 0 (draws with slope <= 0 have none), without moments (it has none).

    Given a node, ``log STE = -(intercept + z psi) / slope`` is normal (the intercept is), so the STE is a mixture
    of log-normals over the nodes with a positive slope.
    """
    from ..exact import NormalMixture

    pos = slope > 0
    if not pos.any():
        return dict.fromkeys(("median", "q2.5", "q97.5", "hdi_low", "hdi_high"), None)
    b = slope[pos]
    mix = NormalMixture(w[pos], -(m_a[pos] + Z_INTERVAL * psi[pos]) / b, sd_a[pos] / b).reduced()
    return dict(mix.summary("hr")) | {"log_mean": math.inf, "log_sd": math.inf}


@dataclass(frozen=True)
class ReferenceArrays:
    """The reference comparisons as arrays: labels, PFS and OS log-HR estimates and their SEs."""

    labels: list[str]
    y_pfs: np.ndarray
    se_pfs: np.ndarray
    y_os: np.ndarray
    se_os: np.ndarray

    @classmethod
    def from_frame(cls, reference: Any) -> ReferenceArrays:
        """From a reference table (or a ``ReferenceSelection``) with ``log_hr_pfs``, ``se_pfs``, ... columns."""
        df = getattr(reference, "used", reference)
        if not isinstance(df, pd.DataFrame):
            raise ModelError("surrogacy reference must be a DataFrame or a ReferenceSelection")
        label_col = "comparison" if "comparison" in df else "trial"
        need = [label_col, "log_hr_pfs", "se_pfs", "log_hr_os", "se_os"]
        missing = [c for c in need if c not in df]
        if missing:
            raise ModelError(
                "surrogacy reference table is incomplete",
                [Problem(f"missing column '{c}'", column=c) for c in missing],
            )
        arrays = [df[c].to_numpy(dtype=float) for c in need[1:]]
        return cls([str(x) for x in df[label_col]], *arrays)


class SurrogacySpec(SpecBase):
    """Spec of the surrogacy model alone: which reference comparisons, and the priors."""

    model: Literal["surrogacy"]
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    priors: SurrogacyPriors = Field(default_factory=SurrogacyPriors)


class TargetSpec(BaseModel):
    """The later OS analysis to forecast.

    HARMONi-2's planned number of deaths is not public.  The default, 314, is an assumption: twice the
    157 deaths of the early OS look (39% maturity), i.e. about 79% of the 398 patients.  Change it when the
    plan is known.  ``alpha`` is the one-sided significance level of that later test.
    """

    model_config = ConfigDict(extra="forbid")
    later_deaths: int = Field(314, gt=0)
    alpha: float = Field(0.025, gt=0, lt=0.5)


class OSForecastSpec(SpecBase):
    """Spec of an OS forecast: the target trial in ``[evidence]``, the later analysis in ``[target]``."""

    model: Literal["os_forecast"]
    evidence: EvidenceSpec  # the target trial: its ITT PFS row and, when disclosed, its ITT OS row
    target: TargetSpec = Field(default_factory=TargetSpec)
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    priors: SurrogacyPriors = Field(default_factory=SurrogacyPriors)


def select_reference_for(
    spec: Any, tables: EvidenceTables, target_trials: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Reference comparisons for a surrogacy model, filtered by date where rows carry one.

    Returns the rows used, the rows left out (with reasons and sources) and provenance notes.  A trial never
    serves as its own reference: ``target_trials`` (the target, and any trial that enters another way) are
    excluded from the reference set.
    """
    from ..reference import select_reference
    from ..selection import filter_as_of

    ref_spec = spec.reference
    table = tables.reference(ref_spec.file)
    dated, late, has_dates = filter_as_of(table, spec.as_of)
    chosen = select_reference(
        dated,
        groups=ref_spec.groups,
        lines=ref_spec.lines,
        shared_control=ref_spec.shared_control,
        exclude_trials=[*ref_spec.exclude_trials, *[t for t in target_trials if t in set(table.trial)]],
        ci_levels=ref_spec.ci_levels,
        split_lines=ref_spec.split_lines,
    )
    excluded = with_sources(pd.concat([late, chosen.excluded], ignore_index=True), table, "reference")
    used = chosen.used.assign(table="reference")
    undated = int((used["disclosed"].fillna("") == "").sum()) if "disclosed" in used else len(used)
    note = (
        f"reference rows filtered by their disclosure dates; {undated} of the {len(used)} used have no date"
        if has_dates
        else "the reference table carries no disclosure dates, so it was not filtered by the as-of date"
    )
    notes = {"reference_filtered_by_date": has_dates, "reference_note": note}
    return used, excluded, notes


def select_target(spec: Any, tables: EvidenceTables) -> tuple[TargetTrial, EvidenceRecord]:
    """The target trial of an OS forecast (the one trial in ``[evidence]``) as of the spec's date.

    Its ITT PFS estimate (required) and ITT OS estimate (when one is public), each the most mature usable row;
    ``spec.target`` gives the later analysis's deaths and alpha.  Returns the target and the evidence record of
    the trial table (every PFS/OS/ORR row considered, used or left out with its reason).
    """
    ev = spec.evidence
    if len(ev.trials) != 1:
        raise ModelError("an OS forecast has one target trial; list exactly one in evidence.trials")
    sel, record = select_trials(spec, tables, endpoint=None, subgroup_factor="overall")
    pfs = sel.used[sel.used.endpoint == "PFS"]
    os_ = sel.used[sel.used.endpoint == "OS"]
    if pfs.empty:
        raise ModelError(
            f"no usable ITT PFS estimate for {ev.trials[0]} as of {spec.as_of}", reasons_as_problems(sel.excluded)
        )
    # Once the OS estimate comes from the final analysis there is no later analysis to forecast.
    final_os = len(os_) > 0 and os_.analysis_kind.iloc[0] == "final"
    target = TargetTrial(
        label=ev.trials[0],
        y_pfs=float(pfs.log_hr.iloc[0]),
        se_pfs=float(pfs.se.iloc[0]),
        y_os=float(os_.log_hr.iloc[0]) if len(os_) else None,
        se_os=float(os_.se.iloc[0]) if len(os_) else None,
        later_deaths=None if final_os else spec.target.later_deaths,
        alpha=spec.target.alpha,
    )
    return target, record


def _headline_surrogacy(c: HeadlineContext) -> list[Line]:
    out = [
        line(
            "answer",
            "How well PFS effects predict OS effects across trials: slope ",
            CI("slope"),
            " and trial-level R\u00b2 ",
            CI("r2_trial"),
            c.when_suffix,
        ),
    ]
    if "P(slope>0)" in c.probabilities:
        out.append(
            line(
                "estimate",
                "Probability that a better PFS effect goes with a better OS effect (slope > 0): ",
                P("P(slope>0)"),
                ".",
            )
        )
    ste = c.quantities.get("ste_hr_pfs", {}).get("median")
    if ste is not None and math.isfinite(ste) and ste < 1:
        out.append(
            line(
                "detail",
                "A trial needs a PFS HR below about ",
                Q("ste_hr_pfs"),
                " to predict an OS benefit (surrogate threshold effect, posterior median).",
            )
        )
    return out


def _headline_os_forecast(c: HeadlineContext) -> list[Line]:
    where = f" in {c.target}" if c.target else ""
    out = [
        line(
            "answer",
            f"Probability that {c.experimental} improves OS over {c.control}{where} (true OS HR < 1): ",
            P("P(os_hr<1)"),
            c.when_suffix,
        ),
        line("estimate", "Forecast OS HR ", CI("os_hr"), "."),
        line(
            "note",
            "This forecast assumes that the PFS-to-OS relationship seen in the reference trials (other "
            "drugs, mostly checkpoint inhibitors against chemotherapy) carries over to this trial; see "
            "Assumptions.",
        ),
    ]
    if "P(later_os_significant)" in c.probabilities:
        out.append(
            line(
                "estimate",
                "Probability that the later OS analysis is statistically significant: ",
                P("P(later_os_significant)"),
                ".",
            )
        )
        out.append(
            line(
                "note",
                "These two probabilities differ. The first is about the true OS effect; the second "
                "is about whether the later analysis, with its limited number of deaths, crosses the "
                "significance boundary. A real OS benefit can still be missed by that analysis.",
            )
        )
    return out


_NAMES = {
    "slope": "surrogacy slope (change in OS log HR per unit PFS log HR)",
    "intercept": "surrogacy intercept (OS log HR when the PFS HR is 1)",
    "residual_sd": "residual SD of the OS log HR around the line",
    "r2_trial": "trial-level R\u00b2 (share of OS-effect variation explained by PFS)",
    "ste_hr_pfs": "surrogate threshold effect (PFS HR needed to predict an OS benefit)",
    "os_hr": "forecast true OS HR of the target trial",
    "os_hr_later_estimate": "OS HR the later analysis is predicted to report",
    "P(later_os_significant)": "the later OS analysis is statistically significant",
}
_SHORT = {
    "os_hr": "OS HR (forecast)",
    "os_hr_later_estimate": "OS HR at the later analysis (predicted)",
    "ste_hr_pfs": "Surrogate threshold effect (PFS HR)",
}


@register
class SurrogacyModel(ModelFamily):
    """Bivariate PFS -> OS surrogacy model, optionally with a target trial to forecast.

    Lazy: the constructor validates and stores data and priors only.  ``build_model()``
    returns a fresh ``pm.Model`` with dims ``comparison``; variables ``eta_pfs``, ``tau_pfs``,
    ``intercept``, ``slope``, ``residual_sd``, ``rho_w``, deterministic ``r2_trial``; observed
    ``y_pfs`` and ``y_os`` (the latter conditional on the observed PFS estimate); data
    ``ref_y_pfs``, ``ref_se_pfs``, ``ref_y_os``, ``ref_se_os``.  With a target: observed
    ``target_pfs`` (and ``target_os``), data ``target_y_pfs``, ``target_se_pfs``
    (``target_y_os``, ``target_se_os``), ``target_later_deaths``; auxiliary ``target_z``
    (2 standard normals) and ``later_os_z``; deterministics ``target_mu_pfs``,
    ``target_mu_os``, ``os_hr``, ``os_hr_later_estimate``.
    """

    name = "surrogacy"
    spec_class: ClassVar[type[SpecBase]] = SurrogacySpec
    capabilities = frozenset({"exact"})
    dim = "comparison"
    presentation = Presentation(
        headline=_headline_surrogacy,
        names=_NAMES,
        short_labels=_SHORT,
        figures=("densities", "surrogacy"),
        densities=("slope", "residual_sd"),
        forest="none",
        headline_quantity="slope",
        benefit=OS_BENEFIT,
    )

    def __init__(
        self,
        reference: Any,
        *,
        priors: SurrogacyPriors | None = None,
        target: TargetTrial | None = None,
        thresholds: tuple[float, ...] | None = None,
    ):
        arrays = reference if isinstance(reference, ReferenceArrays) else ReferenceArrays.from_frame(reference)
        labels, y_s, s_s, y_t, s_t = arrays.labels, arrays.y_pfs, arrays.se_pfs, arrays.y_os, arrays.se_os
        problems = []
        for name, arr, positive in (
            ("log_hr_pfs", y_s, False),
            ("se_pfs", s_s, True),
            ("log_hr_os", y_t, False),
            ("se_os", s_t, True),
        ):
            for lab, v in zip(labels, arr, strict=True):
                if not np.isfinite(v) or (positive and v <= 0):
                    problems.append(
                        Problem(
                            f"{lab}: {name} must be finite{' and positive' if positive else ''}",
                            column=name,
                            value=str(v),
                        )
                    )
        if len(set(labels)) != len(labels):
            dup = sorted({x for x in labels if labels.count(x) > 1})
            problems.append(Problem(f"comparison labels must be unique; repeated: {', '.join(dup)}"))
        if len(labels) < 3:
            problems.append(Problem(f"need at least 3 reference comparisons, got {len(labels)}"))
        if problems:
            raise ModelError("the reference comparisons cannot feed the surrogacy model", problems)
        self.comparisons = labels
        self.y_pfs, self.se_pfs, self.y_os, self.se_os = y_s, s_s, y_t, s_t
        self.labels = labels
        self.priors = priors if priors is not None else SurrogacyPriors()
        self.target = target
        self.thresholds = tuple(thresholds or self.default_thresholds)

    @classmethod
    def from_spec(cls, spec: Any, tables: EvidenceTables) -> tuple[SurrogacyModel, EvidenceRecord]:
        """The reference comparisons the spec selects (no target trial)."""
        used, excluded, notes = select_reference_for(spec, tables, [])
        family = cls(used, priors=spec.priors)
        family.set_thresholds(spec)
        return family, EvidenceRecord(used=used, excluded=excluded, as_of=spec.as_of, notes=notes)

    @classmethod
    def from_arrays(
        cls,
        y_pfs: Sequence[float],
        se_pfs: Sequence[float],
        y_os: Sequence[float],
        se_os: Sequence[float],
        comparisons: Sequence[str] | None = None,
        *,
        priors: SurrogacyPriors | None = None,
        target: TargetTrial | None = None,
    ) -> SurrogacyModel:
        """Build from plain arrays of PFS and OS log-HR estimates and SEs (one entry per comparison)."""
        n = len(y_pfs)
        df = pd.DataFrame(
            {
                "comparison": list(comparisons) if comparisons is not None else [f"c{i}" for i in range(n)],
                "log_hr_pfs": np.asarray(y_pfs, float),
                "se_pfs": np.asarray(se_pfs, float),
                "log_hr_os": np.asarray(y_os, float),
                "se_os": np.asarray(se_os, float),
            }
        )
        return cls(ReferenceArrays.from_frame(df), priors=priors, target=target)

    # ---- model ------------------------------------------------------------------------------

    def build_model(self) -> pm.Model:
        """The marginal bivariate likelihood of the reference comparisons (and the target, if any)."""
        import pymc as pm

        p = self.priors
        with pm.Model(coords={"comparison": self.comparisons}) as model:
            ys = pm.Data("ref_y_pfs", self.y_pfs, dims="comparison")
            ss = pm.Data("ref_se_pfs", self.se_pfs, dims="comparison")
            yt = pm.Data("ref_y_os", self.y_os, dims="comparison")
            st = pm.Data("ref_se_os", self.se_os, dims="comparison")

            eta = p.eta_pfs.to_pymc("eta_pfs")
            tau = p.tau_pfs.to_pymc("tau_pfs")
            intercept = p.intercept.to_pymc("intercept")
            slope = p.slope.to_pymc("slope")
            psi = p.residual_sd.to_pymc("residual_sd")
            rho = p.rho_w.to_pymc("rho_w")

            b2 = slope**2 * tau**2
            pm.Deterministic("r2_trial", b2 / (b2 + psi**2))

            # Bivariate normal (true effects integrated out) = PFS margin x OS | PFS.
            pm.Normal("y_pfs", mu=eta, sigma=pm.math.sqrt(tau**2 + ss**2), observed=ys, dims="comparison")
            m_t, sd_t = os_estimate_given_pfs(eta, tau, intercept, slope, psi, rho, ys, ss, st)
            pm.Normal("y_os", mu=m_t, sigma=sd_t, observed=yt, dims="comparison")

            if self.target is not None:
                self._add_target(model, eta, tau, intercept, slope, psi, rho)
        return model

    def _add_target(self, model, eta, tau, intercept, slope, psi, rho) -> None:
        import pymc as pm

        tg = self._target()
        ys = pm.Data("target_y_pfs", float(tg.y_pfs))
        ss = pm.Data("target_se_pfs", float(tg.se_pfs))
        # The target's estimates enter the same likelihood as one more row.
        pm.Normal("target_pfs", mu=eta, sigma=pm.math.sqrt(tau**2 + ss**2), observed=ys)
        if tg.y_os is not None and tg.se_os is not None:
            yt = pm.Data("target_y_os", float(tg.y_os))
            st = pm.Data("target_se_os", float(tg.se_os))
            m_t, sd_t = os_estimate_given_pfs(eta, tau, intercept, slope, psi, rho, ys, ss, st)
            pm.Normal("target_os", mu=m_t, sigma=sd_t, observed=yt)
            m_s, m_t, v11, v12, v22 = target_conditional(eta, tau, intercept, slope, psi, rho, ys, ss, yt, st)
        else:
            m_s, m_t, v11, v12, v22 = target_conditional(eta, tau, intercept, slope, psi, rho, ys, ss)

        # Exact conditional draw of the target's true effects via auxiliary N(0, 1) variables.
        z = pm.Normal("target_z", 0.0, 1.0, shape=2)
        l11 = pm.math.sqrt(v11)
        l21 = v12 / l11
        l22 = pm.math.sqrt(pm.math.maximum(v22 - l21**2, 0.0))
        pm.Deterministic("target_mu_pfs", m_s + l11 * z[0])
        mu_t = pm.Deterministic("target_mu_os", m_t + l21 * z[0] + l22 * z[1])
        pm.Deterministic("os_hr", pm.math.exp(mu_t))

        if tg.later_deaths is None:
            return
        # Later OS estimate with D deaths: independent increment on top of the interim estimate.
        deaths = pm.Data("target_later_deaths", float(tg.later_deaths))
        zf = pm.Normal("later_os_z", 0.0, 1.0)
        i_f = deaths / 4.0
        if tg.has_os:
            i_i = 1.0 / st**2
            d_i = i_f - i_i
            y_f = (i_i * yt + d_i * mu_t + pm.math.sqrt(d_i) * zf) / i_f
        else:
            y_f = mu_t + zf * 2.0 / pm.math.sqrt(deaths)
        pm.Deterministic("os_hr_later_estimate", pm.math.exp(y_f))

    # ---- results ----------------------------------------------------------------------------

    def _target(self) -> TargetTrial:
        if self.target is None:
            raise ModelError("this surrogacy model has no target trial")
        return self.target

    def _hyper_draws(self, idata) -> dict[str, np.ndarray]:
        return {name: posterior_array(idata, name) for name in HYPERPARAMETERS}

    def quantities(self, idata: az.InferenceData) -> list[Draws]:
        """Slope, intercept, residual SD, R^2, STE; with a target, the OS HR and the later estimate."""
        h = self._hyper_draws(idata)
        b2 = h["slope"] ** 2 * h["tau_pfs"] ** 2
        r2 = b2 / (b2 + h["residual_sd"] ** 2)
        out = [
            Draws("slope", "identity", h["slope"]),
            Draws("intercept", "log", h["intercept"]),
            Draws("residual_sd", "sd", h["residual_sd"]),
            Draws("r2_trial", "identity", r2),
            # The STE divides by the slope, so it has no finite moments: report median and intervals only.
            Draws(
                "ste_hr_pfs",
                "hr",
                surrogate_threshold_effect(h["intercept"], h["slope"], h["residual_sd"]),
                moments=False,
            ),
        ]
        if self.target is not None:
            out.append(Draws("os_hr", "hr", posterior_array(idata, "os_hr")))
            if self.target.later_deaths is not None:
                out.append(Draws("os_hr_later_estimate", "hr", posterior_array(idata, "os_hr_later_estimate")))
        return out

    def target_conditional_draws(self, idata) -> tuple[np.ndarray, np.ndarray]:
        """Per-draw conditional mean and SD of the target's true OS log HR given hyperparameters."""
        if self.target is None:
            raise ModelError("this surrogacy model has no target trial")
        h = self._hyper_draws(idata)
        tg = self.target
        if tg.has_os:
            _, m_t, _, _, v22 = target_conditional(**h, y_s=tg.y_pfs, s_s=tg.se_pfs, y_t=tg.y_os, s_t=tg.se_os)
        else:
            _, m_t, _, _, v22 = target_conditional(**h, y_s=tg.y_pfs, s_s=tg.se_pfs)
        return m_t, np.sqrt(np.maximum(v22, 0.0))

    def probabilities(self, idata: az.InferenceData) -> list[Draws]:
        """Per-draw conditional probabilities (Rao-Blackwellised given each draw's hyperparameters).

        ``P(slope>0)``: indicator; the fraction of draws in which the STE is defined.
        With a target: ``P(os_hr<t)`` = Phi((log t - m_T) / sd_T) per draw for each threshold t, and
        ``P(later_os_significant)`` = Phi((c_F - E y_F) / SD y_F) per draw, where
        ``y_F | hyperparameters, data ~ N((I_I y_I + dI m_T)/I_F, (dI + dI^2 v_T)/I_F^2)`` with
        ``dI = I_F - I_I`` (or ``N(m_T, v_T + 4/D)`` without an interim OS estimate) and
        ``c_F = -z_{1-alpha} * 2/sqrt(D)``.  Their means are the posterior probabilities.
        """
        from scipy import stats

        slope = posterior_array(idata, "slope")
        out = [Draws("P(slope>0)", "probability", (slope > 0).astype(float))]
        if self.target is None:
            return out
        tg = self.target
        m_t, sd_t = self.target_conditional_draws(idata)
        norm = stats.norm
        out += [Draws(f"P(os_hr<{t:g})", "probability", norm.cdf((math.log(t) - m_t) / sd_t)) for t in self.thresholds]
        if tg.later_deaths is None:
            return out
        c = tg.success_bound
        i_f = tg.later_information
        if tg.y_os is not None:
            i_i = tg.interim_information
            d_i = i_f - i_i
            mean = (i_i * tg.y_os + d_i * m_t) / i_f
            sd = np.sqrt(d_i + d_i**2 * sd_t**2) / i_f
        else:
            mean = m_t
            deaths = 4.0 * i_f  # D, exactly (i_f = D/4)
            sd = np.sqrt(sd_t**2 + 4.0 / deaths)
        out.append(Draws("P(later_os_significant)", "probability", norm.cdf((c - mean) / sd)))
        return out

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Prior draws of the key quantities, for prior/posterior overlays in reports.

        ``os_hr`` here is the OS HR of a new comparison before any data: true PFS effect from
        N(eta_pfs, tau_pfs^2), then the regression line plus residual scatter.
        """
        h = {name: getattr(self.priors, name).rvs(n, rng) for name in HYPERPARAMETERS}
        mu_s = h["eta_pfs"] + h["tau_pfs"] * rng.standard_normal(n)
        mu_t = h["intercept"] + h["slope"] * mu_s + h["residual_sd"] * rng.standard_normal(n)
        out = {"slope": h["slope"], "intercept": h["intercept"], "residual_sd": h["residual_sd"]}
        if self.target is not None:
            out["os_hr"] = np.exp(mu_t)
        return out

    def os_estimate_predictive(self, idata, y_pfs: float, se_pfs: float, se_os: float):
        """Per-draw predictive mean and SD of a new comparison's OS log-HR estimate given its PFS
        estimate (for leave-one-out checks); the predictive is the normal mixture over draws.
        """
        h = self._hyper_draws(idata)
        return os_estimate_given_pfs(**h, y_s=y_pfs, s_s=se_pfs, s_t=se_os)

    # ---- exact engine ---------------------------------------------------------------------------

    def exact(self, fine: tuple[int, int, int, int] = FINE) -> SurrogacyGrid:
        """The grid posterior (:func:`harmoni_bayes.surrogacy_grid.surrogacy_grid`, ``fine`` nodes per axis) of the
        reference comparisons and, with a target, its PFS (and OS) estimates as one more row.
        """
        y_s, s_s, y_t, s_t = self.y_pfs, self.se_pfs, self.y_os, self.se_os
        if self.target is not None:
            tg = self.target
            y_s, s_s = np.append(y_s, tg.y_pfs), np.append(s_s, tg.se_pfs)
            # no OS estimate: NaN, a row with its PFS factor only
            y_t = np.append(y_t, np.nan if tg.y_os is None else tg.y_os)
            s_t = np.append(s_t, np.nan if tg.se_os is None else tg.se_os)
        p = self.priors
        return surrogacy_grid(
            y_s,
            s_s,
            y_t,
            s_t,
            eta=p.eta_pfs,
            intercept=p.intercept,
            slope=p.slope,
            tau=p.tau_pfs,
            residual_sd=p.residual_sd,
            rho_w=p.rho_w,
            fine=fine,
        )

    def _target_given_nodes(self, g: SurrogacyGrid) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the target's true OS log HR given each grid node (theta integrated out).

        Given the node and theta = (eta_pfs, intercept), :func:`target_conditional` gives a mean that is affine
        in theta (coefficients read off at theta = 0, e_1, e_2) and a variance that does not depend on it, so
        ``mu_T | node ~ N(m0 + c . E[theta], v + c' Cov[theta] c)``.
        """
        tg = self._target()
        h = g.nodes
        os_args = {"y_t": tg.y_os, "s_t": tg.se_os} if tg.has_os else {}

        def at(eta: float, a: float) -> tuple[Any, ...]:
            return target_conditional(
                eta,
                h["tau_pfs"],
                a,
                h["slope"],
                h["residual_sd"],
                h["rho_w"],
                tg.y_pfs,
                tg.se_pfs,
                **os_args,
            )

        _, m0, _, _, v = at(0.0, 0.0)
        c = np.stack([at(1.0, 0.0)[1] - m0, at(0.0, 1.0)[1] - m0], axis=1)
        mean = m0 + np.einsum("nk,nk->n", c, g.theta_mean)
        var = np.maximum(v, 0.0) + np.einsum("nk,nkl,nl->n", c, g.theta_cov, c)
        return mean, var

    def _later_given_nodes(self, m_t: np.ndarray, v_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the later OS log-HR estimate given each node (see :meth:`probabilities`)."""
        tg = self._target()
        i_f = tg.later_information
        if tg.y_os is not None:
            i_i = tg.interim_information
            d_i = i_f - i_i
            return (i_i * tg.y_os + d_i * m_t) / i_f, (d_i + d_i**2 * v_t) / i_f**2
        return m_t, v_t + 1.0 / i_f  # 4/D = 1/I_F

    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        """Exact summaries from the grid posterior, and iid draws for figures.

        Functions of the grid parameters (slope, residual SD, R^2) are grid marginals; the intercept, the STE
        (on the log scale, ``-(intercept + z psi) / slope`` is normal given a node with slope > 0), the target's
        OS HR and the later estimate are normal mixtures over the nodes; probabilities are the same weighted sums.
        The draws jitter each drawn node uniformly within its cell, then draw theta and the target's true effects
        from their exact conditionals, as the PyMC model does.
        """
        from scipy import special

        from ..exact import GridDistribution, NormalMixture

        g = self.exact()
        w, h = g.weights, g.nodes
        m_a, sd_a = g.theta_mean[:, 1], np.sqrt(g.theta_cov[:, 1, 1])
        slope = GridDistribution(*g.marginal("slope", refine=_REFINE))
        b2 = h["slope"] ** 2 * h["tau_pfs"] ** 2
        r2 = _binned(b2 / (b2 + h["residual_sd"] ** 2), w, 0.0, 1.0)
        quantities = [
            Stats("slope", "identity", slope.summary()),
            Stats("intercept", "log", NormalMixture(w, m_a, sd_a).reduced().summary("log")),
            Stats("residual_sd", "sd", GridDistribution(*g.marginal("residual_sd", refine=_REFINE)).summary()),
            Stats("r2_trial", "identity", r2.summary()),
            Stats("ste_hr_pfs", "hr", _ste_summary(w, m_a, sd_a, h["slope"], h["residual_sd"])),
        ]
        probabilities: list[tuple[str, float]] = [("P(slope>0)", 1.0 - float(slope.cdf(0.0)))]
        if self.target is not None:
            tg = self.target
            m_t, v_t = self._target_given_nodes(g)
            # Probabilities from the full mixture (a tail probability such as 1 - 1e-4 feels the merging of
            # components); summaries (many evaluations each) from the reduced one.
            os_hr = NormalMixture(w, m_t, np.sqrt(v_t))
            quantities.append(Stats("os_hr", "hr", os_hr.reduced().summary("hr")))
            probabilities += [(f"P(os_hr<{t:g})", os_hr.prob_below(math.log(t))) for t in self.thresholds]
            if tg.later_deaths is not None:
                m_f, v_f = self._later_given_nodes(m_t, v_t)
                later = NormalMixture(w, m_f, np.sqrt(v_f)).reduced()
                quantities.append(Stats("os_hr_later_estimate", "hr", later.summary("hr")))
                significant = float(np.dot(w, special.ndtr((tg.success_bound - m_f) / np.sqrt(v_f))))
                probabilities.append(("P(later_os_significant)", significant))
        return ExactFit(quantities, probabilities, self._exact_draws(g, n_draws, rng))

    def _exact_draws(self, g: SurrogacyGrid, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        j = rng.choice(g.weights.size, size=n, p=g.weights)
        d: dict[str, np.ndarray] = {}
        for name in AXES:
            _, edges = g.axes[name]
            i = g.index[name][j]
            d[name] = edges[i] + (edges[i + 1] - edges[i]) * rng.uniform(size=n)
        cov = g.theta_cov[j]
        d["eta_pfs"], d["intercept"] = _bivariate_normal(
            g.theta_mean[j, 0], g.theta_mean[j, 1], cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1], rng
        )
        b2 = d["slope"] ** 2 * d["tau_pfs"] ** 2
        d["r2_trial"] = b2 / (b2 + d["residual_sd"] ** 2)
        if self.target is None:
            return d
        tg = self.target
        os_args = {"y_t": tg.y_os, "s_t": tg.se_os} if tg.has_os else {}
        hyper = {k: d[k] for k in HYPERPARAMETERS}
        m_s, m_t, v11, v12, v22 = target_conditional(**hyper, y_s=tg.y_pfs, s_s=tg.se_pfs, **os_args)
        d["target_mu_pfs"], mu_t = _bivariate_normal(m_s, m_t, v11, v12, v22, rng)
        d["target_mu_os"] = mu_t
        d["os_hr"] = np.exp(mu_t)
        if tg.later_deaths is not None:
            m_f, v_f = self._later_given_nodes(mu_t, np.zeros(n))
            d["os_hr_later_estimate"] = np.exp(m_f + np.sqrt(v_f) * rng.standard_normal(n))
        return d

    def strip(self, idata, context: StripContext) -> SensitivityStrip:
        """Where the certainty comes from.

        With a target: immature OS alone (no OS data yet, as of a date before any) beside this model's forecast.
        Without one (the relationship alone): ``P(slope > 0)`` and the slope as fitted and under the other priors
        of the two parameters the data say least about, the residual SD and the unpublished within-trial
        correlation rho_w (:data:`REWEIGHTED_PRIORS`): an exact fit refits exactly under each (the grid engine takes
        a fraction of a second); an MCMC fit reweights its draws (importance sampling; no refit, so its run pays
        nothing for it).  The effective number of draws of each row is kept
        (``importance_ess``): few effective draws mean the alternative prior puts its mass where the posterior
        has little, and only a refit (``harmoni-bayes sensitivity``) would tell.
        """
        if self.target is None:
            return self._relationship_strip(idata, context)
        with_os = "joint with the target's own OS estimate" if self.target.has_os else "from the target's PFS alone"
        head = context.headline_row(
            "PFS-to-OS surrogacy (this model)",
            "os_hr",
            f"one relationship learned from the reference trials, {with_os}",
        )
        return SensitivityStrip("P(OS HR < 1)", (self.target.os_alone(), head), "OS HR")

    def _relationship_strip(self, idata, context: StripContext) -> SensitivityStrip:
        alts = reweighted_priors(self.priors)
        rows = [
            SensitivityRow.from_stats(
                "as specified",
                context.probabilities["P(slope>0)"],
                context.quantities["slope"],
                note="the spec's priors",
                headline=True,
            )
        ]
        if context.method == "exact":
            refits = [(label, context.refit({"priors": {name: alt.model_dump()}})) for label, name, alt in alts]
            rows += exact_strip_rows(refits, "slope", context.seed, "exact refit under this prior", "P(slope>0)")
            return SensitivityStrip("P(slope > 0)", tuple(rows), "slope")
        slope = posterior_array(idata, "slope")
        for label, name, alt in alts:
            spec_prior = getattr(self.priors, name)
            x = posterior_array(idata, name)
            log_w = alt.scipy().logpdf(x) - spec_prior.scipy().logpdf(x)
            w = np.exp(log_w - np.max(log_w))
            ess = float(w.sum() ** 2 / np.sum(w**2))
            rows.append(
                SensitivityRow.from_draws(
                    label,
                    float(np.sum(w * (slope > 0)) / w.sum()),
                    slope,
                    weights=w,
                    note=f"the fit's draws reweighted to this prior ({ess:.0f} effective draws)",
                    extra={"importance_ess": ess},
                )
            )
        return SensitivityStrip("P(slope > 0)", tuple(rows), "slope")

    def assumptions(self) -> list[str]:
        """Transport of the PFS-OS relation, exchangeability, proportional hazards, rho_w, shared arms."""
        out = [
            "The PFS-to-OS relation is learned from other drugs and drug classes (the reference "
            "comparisons) and assumed to carry over to the target trial; for a new mechanism, such as "
            "adding VEGF blockade, this is an extrapolation.",
            "Exchangeability: the reference comparisons are exchangeable; their true PFS effects come from one normal "
            "distribution and their true OS effects scatter around one straight line on the log-HR scale.",
            "Proportional hazards: one hazard ratio summarises each endpoint; under delayed or "
            "waning effects the HR is an average that depends on follow-up.",
            "The PFS and OS estimates of the same trial are correlated (rho_w), because they share "
            f"patients; rho_w is not published and is given the prior {self.priors.rho_w.describe()}.",
            "Comparisons that share a control arm are handled approximately (variance inflation, one per "
            "family, or independence), as chosen when the reference comparisons were selected.",
        ]
        if self.target is not None and self.target.later_deaths is None:
            out.append("The target's OS estimate is from its final analysis, so no later analysis is forecast.")
        elif self.target is not None:
            out.append(
                "The later OS analysis adds an independent increment of information (D/4 for 1:1 "
                "allocation) to the interim estimate, with the same analysis model and population; the "
                "increment is assumed independent of the PFS estimate given the true effects."
            )
            out.append(
                "The later OS test is judged at one-sided alpha = "
                f"{self.target.alpha:g} without adjustment for interim looks (no alpha-spending)."
            )
        return out


@register
class OSForecastModel(SurrogacyModel):
    """The surrogacy model with a target trial: the joint forecast of the target's OS (methods §d-§f)."""

    name = "os_forecast"
    spec_class = OSForecastSpec
    capabilities = frozenset({"exact", "forecast"})
    forecast = Forecast("os_hr", "target_os")
    sensitivity = (
        ("residual SD half-normal(0.25)", {"priors": {"residual_sd": {"dist": "half_normal", "sigma": 0.25}}}),
        ("residual SD half-normal(1)", {"priors": {"residual_sd": {"dist": "half_normal", "sigma": 1.0}}}),
        ("rho_w fixed at 0.2", {"priors": {"rho_w": {"dist": "fixed", "value": 0.2}}}),
        ("rho_w fixed at 0.7", {"priors": {"rho_w": {"dist": "fixed", "value": 0.7}}}),
    )
    presentation = Presentation(
        headline=_headline_os_forecast,
        names=_NAMES,
        short_labels=_SHORT,
        figures=("forest", "densities", "surrogacy"),
        densities=("os_hr", "os_hr_later_estimate"),
        forest="target",
        headline_quantity="os_hr",
    )

    @classmethod
    def from_spec(cls, spec: OSForecastSpec, tables: EvidenceTables) -> tuple[OSForecastModel, EvidenceRecord]:
        """The target's ITT PFS (and OS) rows as of the spec's date, and the reference comparisons."""
        ev = spec.evidence
        target, record = select_target(spec, tables)
        ref_used, ref_excluded, notes = select_reference_for(spec, tables, ev.trials)
        family = cls(ref_used, priors=spec.priors, target=target)
        family.set_thresholds(spec)
        trial_used = record.used[record.used.endpoint.isin(["PFS", "OS"])]
        return family, EvidenceRecord(
            used=pd.concat([trial_used, ref_used], ignore_index=True),
            excluded=pd.concat([record.excluded, ref_excluded], ignore_index=True),
            as_of=spec.as_of,
            notes=notes,
        )
