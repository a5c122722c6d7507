"""PFS -> OS surrogacy that may differ by treatment class, and the stacked OS forecast (methods §d).

Reference comparisons i = 1..K fall into treatment classes c(i) (``IO 1L``, ``IO 2L``, ``IO+antiVEGF``,
``antiVEGF``, ``EGFR-TKI``, ``chemo``, and the ivonescimab trials as their own class when the spec asks).
Within class c, on the log-HR scale (Bujkiewicz et al. 2016 product-normal form; Papanikos et al. 2020)::

    true PFS effects   mu_S,i ~ N(eta_c, tau_c^2)
    true OS effects    mu_T,i = lambda0_c + lambda1_c * mu_S,i + psi_c * e_i,       e_i ~ N(0, 1)
    estimates          (y_S,i, y_T,i) ~ N2((mu_S,i, mu_T,i), Sigma_w,i),  corr rho_w

The true effects are integrated out exactly (as in :mod:`.surrogacy`): ``y_S,i ~ N(eta_c, A_i)`` and
``y_T,i | y_S,i ~ N(lambda0_c + lambda1_c eta_c + C_i/A_i (y_S,i - eta_c), D_i - C_i^2/A_i)`` with
``A = tau_c^2 + s_S^2``, ``C = lambda1_c tau_c^2 + rho_w s_S s_T``, ``D = lambda1_c^2 tau_c^2 + psi_c^2 + s_T^2``.
The PFS margin (eta_c, tau_c) is class-specific in every variant, so the variants differ only in the
relationship (lambda0, lambda1, psi) across classes:

* ``pooled`` (model a): one relationship for all classes, ``lambda0_c = lambda0``, ``lambda1_c = lambda1``,
  ``psi_c = psi``; the intercept may be estimated, fixed at 0 or given a prior centred on 0 (``priors``).
* ``pooled_no_intercept``: the same with the intercept fixed at 0 (no OS effect without a PFS effect), fitted
  beside it so that the report shows what the intercept does to the forecast.
* ``independent`` (model b): each class its own ``lambda0_c, lambda1_c, psi_c`` with the pooled priors;
  no borrowing.
* ``exchangeable`` (model c; Papanikos et al. 2020 model 1): ``lambda0_c ~ N(beta0, xi0^2)``,
  ``lambda1_c = beta1 + xi1 z1_c``, ``psi_c = psi_bar exp(s_psi z_psi,c)`` with ``z ~ N(0, 1)``
  (non-centred).  A class with few comparisons borrows from the others.

The class intercepts (independent, and exchangeable given beta0 and xi0) enter the OS likelihood linearly with
normal priors, so they are integrated out in closed form for sampling and then drawn from their exact normal
conditional (:func:`_integrated_intercepts`): the same joint posterior, with fewer and better-conditioned
dimensions for NUTS.

All requested variants are separate blocks of one PyMC model (no shared parameters), so one sampling run
fits them all and the diagnostics gate covers every block.

**The target trial** (e.g. HARMONi-2) is not exchangeable with the reference comparisons in its PFS effect
(a new drug against an active comparator), so its true PFS effect gets a flat prior (Daniels & Hughes
1997): given its PFS estimate, ``mu_S = y_S - e_S``.  Given a class's relationship theta = (lambda0,
lambda1, psi) and rho_w, the target's (mu_T, y_T) are jointly normal::

    m0 = lambda0 + lambda1 y_S,       V0 = lambda1^2 s_S^2 + psi^2
    Var(y_T) = V0 + s_T^2 - 2 lambda1 rho_w s_S s_T,    Cov(mu_T, y_T) = V0 - lambda1 rho_w s_S s_T
    mu_T | y_S, y_T, theta ~ N(m0 + Cov/Var(y_T) (y_T - m0),  V0 - Cov^2/Var(y_T))

With no interim OS estimate ``mu_T ~ N(m0, V0)``.  The target's interim OS estimate also informs theta:
its density ``N(y_T; m0, Var(y_T))`` is the importance weight of each posterior draw (self-normalised
importance sampling of the joint posterior with the target as one more row of its class; the Kish
effective sample size of the weights is reported).  The target's class is

* a named class (its theta);
* ``new``: theta drawn from the common distribution (exchangeable), from the priors (independent), or the
  one line (pooled), several draws per posterior draw;
* a mixture over named classes with prior weights w_k: per draw, class k has weight w_k x its density
  of the target's OS estimate (the posterior class probabilities).

**Which variant to believe.**  Each variant's pointwise log density of every reference comparison's OS
estimate given its PFS estimate, ``log p(y_T,i | y_S,i, theta)``, goes to PSIS-LOO (``arviz.loo``) and
stacking (``arviz.compare(method="stacking")``; Yao et al. 2018).  The **stacked forecast** is the mixture
of the variants' forecasts (each with the spec's target class) with the stacking weights.  The sensitivity
strip shows P(OS HR < 1), the OS HR and its 95% interval under immature OS alone (a flat prior on the true
OS log HR: ``N(y_T, s_T^2)``), one relationship, the target as each strip class, as a new class, and
stacked.

``scipy.stats`` is imported inside the functions that use it: the registry imports every family, and an exact
run of another family should not wait for it (issue 14).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import EvidenceSpec, ReferenceGroup, ReferenceSpec, RowPadding, SpecBase
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
from . import register
from .base import (
    CI,
    BenefitCurves,
    Draws,
    EvidenceRecord,
    EvidenceTables,
    Forecast,
    HeadlineContext,
    Line,
    ModelFamily,
    P,
    Presentation,
    SensitivityRow,
    SensitivityStrip,
    StripContext,
    SummaryTable,
    line,
    posterior_array,
    select_trials,
)
from .surrogacy import TargetSpec, TargetTrial, os_benefit_given_pfs, select_reference_for, select_target

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

__all__ = [
    "RELATIONSHIPS",
    "ClassData",
    "ClassPriors",
    "ClassSurrogacyModel",
    "ClassTargetSpec",
    "OSForecastClassesModel",
    "OSForecastClassesSpec",
    "SurrogacyClassesSpec",
    "class_relationships",
    "target_given_relationship",
]

Relationship = Literal["pooled", "pooled_no_intercept", "independent", "exchangeable"]
RELATIONSHIPS: tuple[Relationship, ...] = ("pooled", "pooled_no_intercept", "independent", "exchangeable")
POOLED = ("pooled", "pooled_no_intercept")
VARIANT_LABELS = {
    "pooled": "one relationship",
    "pooled_no_intercept": "one relationship, intercept 0",
    "independent": "independent classes",
    "exchangeable": "exchangeable classes",
}
NEW_CLASS = "new"
MIN_CLASS_SIZE = 3  # fewer comparisons than this: the report says the class slope is not estimated on its own
NEW_CLASS_DRAWS = 16  # relationships drawn per posterior draw for a new class


class ClassPriors(BaseModel):
    """Priors of the class-aware surrogacy model (log-HR scale).

    PFS margin, per class: ``eta_pfs`` ~ Normal(0, 1) (mean true PFS log HR of the class), ``tau_pfs`` ~
    Half-normal(0.5) (its between-comparison SD).  ``rho_w`` ~ Uniform(0.2, 0.7): within-trial correlation
    of the PFS and OS estimates (shared by all comparisons of a variant).

    One relationship (pooled) and independent classes: ``intercept`` ~ Normal(0, 1) (OS log HR when the
    PFS HR is 1; ``{dist = "fixed", value = 0}`` means no OS effect without a PFS effect, and a narrow
    normal centred on 0 says "close to 0"), ``slope`` ~ Normal(0, 1), ``residual_sd`` ~ Half-normal(0.5).

    Exchangeable classes: the class intercepts are Normal(``intercept_mean``, ``intercept_sd``^2) with
    ``intercept_mean`` ~ Normal(0, 1) and ``intercept_sd`` ~ Half-normal(0.25) (class intercepts typically
    within +-0.5 of each other, an OS HR factor of 1.6); the class slopes are Normal(``slope_mean``,
    ``slope_sd``^2) with ``slope_mean`` ~ Normal(0, 1) and ``slope_sd`` ~ Half-normal(0.5) (slopes may differ
    by about 1 between classes, from "PFS says nothing" to "OS follows PFS"); the class residual SDs are
    log-normal around ``residual_sd_typical`` ~ Half-normal(0.5) with log-scale SD ``residual_sd_spread`` ~
    Half-normal(0.5) (a class's residual SD typically within a factor exp(1.96 x 0.5) = 2.7 of the typical).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    eta_pfs: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0))
    tau_pfs: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))
    rho_w: CorrelationPrior = Field(default_factory=lambda: UniformPrior(lower=0.2, upper=0.7))
    intercept: NormalPrior | FixedValue = Field(
        default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0), discriminator="dist"
    )
    slope: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0))
    residual_sd: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))
    intercept_mean: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0))
    intercept_sd: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.25))
    slope_mean: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=1.0))
    slope_sd: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))
    residual_sd_typical: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))
    residual_sd_spread: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))

    @model_validator(mode="after")
    def _rho_in_range(self):
        check_correlation(self.rho_w)
        return self

    def describe(self) -> dict[str, str]:
        """Plain-text description of each prior (for reports)."""
        return {name: getattr(self, name).describe() for name in type(self).model_fields}


class ClassTargetSpec(TargetSpec):
    """The later OS analysis to forecast, and the target's class.

    ``class``: a class name (e.g. ``"ivonescimab"``, ``"IO 1L"``), ``"new"`` (a class drawn from the common
    distribution), or a table of prior weights over named classes (``{"IO 1L" = 0.5, "antiVEGF" = 0.5}``).
    ``strip``: the named classes the sensitivity strip shows the target as.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    target_class: str | dict[str, float] = Field(NEW_CLASS, alias="class")
    strip: list[str] = Field(default_factory=lambda: ["IO 1L", "antiVEGF"])

    @model_validator(mode="after")
    def _weights(self):
        if isinstance(self.target_class, dict):
            bad = [k for k, w in self.target_class.items() if not (w > 0 and math.isfinite(w))]
            if bad or not self.target_class:
                raise ValueError("class weights must be positive numbers, one per named class")
        return self


class ClassReferenceSpec(ReferenceSpec):
    """Reference comparisons for class models: every group and line unless the spec narrows them."""

    groups: list[ReferenceGroup] | None = None
    lines: list[str] | None = None


class SurrogacyClassesSpec(SpecBase):
    """Spec of the class-aware surrogacy model: reference comparisons, the variants to fit, the priors."""

    model: Literal["surrogacy_classes"]
    relationships: list[Relationship] = Field(
        default_factory=lambda: list[Relationship](["independent", "exchangeable"]), min_length=1
    )
    reference: ClassReferenceSpec = Field(default_factory=ClassReferenceSpec)
    priors: ClassPriors = Field(default_factory=ClassPriors)

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.relationships)) != len(self.relationships):
            raise ValueError("relationships are listed twice")
        return self

    def sampled_blocks(self) -> tuple[str, ...]:
        """Each relationship is one sampled block (:meth:`ClassSurrogacyModel.build_models`)."""
        return tuple(self.relationships)


class OSForecastClassesSpec(SurrogacyClassesSpec):
    """Spec of the stacked OS forecast: the target trial in ``[evidence]``, its class in ``[target]``."""

    model: Literal["os_forecast_classes"]  # type: ignore[assignment]
    relationships: list[Relationship] = Field(default_factory=lambda: list(RELATIONSHIPS), min_length=1)
    evidence: EvidenceSpec
    target: ClassTargetSpec = Field(default_factory=ClassTargetSpec)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassData:
    """Reference comparisons as arrays, with their classes (``classes[class_index[i]]``)."""

    labels: list[str]
    classes: list[str]
    class_index: np.ndarray
    y_pfs: np.ndarray
    se_pfs: np.ndarray
    y_os: np.ndarray
    se_os: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> ClassData:
        """From rows with ``comparison``, ``class``, ``log_hr_pfs``, ``se_pfs``, ``log_hr_os``, ``se_os``."""
        need = ["comparison", "class", "log_hr_pfs", "se_pfs", "log_hr_os", "se_os"]
        missing = [c for c in need if c not in df]
        if missing:
            raise ModelError(
                "class surrogacy reference table is incomplete",
                [Problem(f"missing column '{c}'", column=c) for c in missing],
            )
        if df.empty:
            raise ModelError("no reference comparisons selected: the surrogacy model has nothing to learn from")
        classes = list(dict.fromkeys(str(c) for c in df["class"]))
        index = np.array([classes.index(str(c)) for c in df["class"]], dtype=int)
        arrays = [df[c].to_numpy(dtype=float) for c in need[2:]]
        return cls([str(x) for x in df["comparison"]], classes, index, *arrays)

    @property
    def counts(self) -> dict[str, int]:
        """Comparisons per class."""
        return {c: int((self.class_index == k).sum()) for k, c in enumerate(self.classes)}


def trial_class_rows(spec: Any, tables: EvidenceTables, exclude: Sequence[str]) -> tuple[pd.DataFrame, EvidenceRecord]:
    """The spec's ``[reference.trial_class]`` trials as comparisons: one (ITT PFS, ITT OS) pair per trial.

    Each estimate is the one the evidence selection keeps as of the spec's date (most mature usable row,
    source precedence, conflicts refused).  A trial without both a usable PFS and OS estimate is left out.
    """
    tc = spec.reference.trial_class
    trials = [t for t in tc.trials if t not in set(exclude)]
    empty = pd.DataFrame(columns=["comparison", "class", "log_hr_pfs", "se_pfs", "log_hr_os", "se_os"])
    if not trials:
        return empty, EvidenceRecord(used=pd.DataFrame(), excluded=pd.DataFrame(), as_of=spec.as_of)
    # an OS forecast's prefer/exclude apply to these rows too
    sel, record = select_trials(spec, tables, trials=trials, endpoint=None, subgroup_factor="overall")
    rows, left = [], []
    for trial in trials:
        got = sel.used[sel.used.trial == trial]
        pfs, os_ = got[got.endpoint == "PFS"], got[got.endpoint == "OS"]
        if pfs.empty or os_.empty:
            missing = " and ".join(e for e, d in (("PFS", pfs), ("OS", os_)) if d.empty)
            left.append((trial, f"no usable ITT {missing} estimate as of {spec.as_of}: not in class {tc.name}"))
            continue
        rows.append(
            {
                "comparison": trial,
                "class": tc.name,
                "trial": trial,
                "log_hr_pfs": float(pfs.log_hr.iloc[0]),
                "se_pfs": float(pfs.se.iloc[0]),
                "log_hr_os": float(os_.log_hr.iloc[0]),
                "se_os": float(os_.se.iloc[0]),
                "pfs_hr": float(pfs.hr.iloc[0]),
                "os_hr": float(os_.hr.iloc[0]),
                "row_id_pfs": pfs.row_id.iloc[0],
                "row_id_os": os_.row_id.iloc[0],
            }
        )
    # Their role is a reference comparison (reports list them with the reference trials, not as the target).
    entered = [r["trial"] for r in rows]
    used = record.used[record.used.endpoint.isin(["PFS", "OS"]) & record.used.trial.isin(entered)].assign(
        table="reference"
    )
    notes = pd.DataFrame([{"row_id": "", "trial": t, "reason": r, "table": "trials"} for t, r in left])
    record = EvidenceRecord(
        used=used,
        excluded=pd.concat([record.excluded, notes], ignore_index=True),
        as_of=spec.as_of,
    )
    return (pd.DataFrame(rows) if rows else empty), record


def select_class_reference(
    spec: Any, tables: EvidenceTables, target_trials: Sequence[str]
) -> tuple[pd.DataFrame, EvidenceRecord]:
    """Reference comparisons with classes (reference table as of the date, plus the trial class)."""
    ref = spec.reference
    own = set(ref.trial_class.trials) if ref.trial_class else set()
    used, excluded, notes = select_reference_for(spec, tables, [*target_trials, *own])
    # Trials of the trial class (and the target) are taken from the trial table, never twice.
    moved = excluded.trial.isin(own | set(target_trials))
    excluded.loc[moved, "reason"] = [
        f"{t} enters from the trial table ({'target trial' if t in target_trials else 'its own class'}), not twice"
        for t in excluded.trial[moved]
    ]
    parts = [used]
    records = [EvidenceRecord(used=used, excluded=excluded, as_of=spec.as_of)]
    if ref.trial_class is not None:
        rows, record = trial_class_rows(spec, tables, target_trials)
        parts.append(rows.assign(table="trials"))
        records.append(record)
    all_used = pd.concat([p for p in parts if len(p)], ignore_index=True)
    return all_used, EvidenceRecord(
        used=pd.concat([r.used for r in records if len(r.used)], ignore_index=True),
        excluded=pd.concat([r.excluded for r in records if len(r.excluded)], ignore_index=True),
        as_of=spec.as_of,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Closed forms (numpy; also used by the tests as the independent check)
# --------------------------------------------------------------------------------------------


def os_given_pfs(eta, tau, intercept, slope, psi, rho, y_s, s_s, s_t):
    """Mean and SD of a comparison's OS log-HR estimate given its PFS estimate (the OS likelihood factor).

    Works on numpy arrays (broadcast over draws) and PyTensor tensors alike.
    """
    t2 = tau**2
    a = t2 + s_s**2
    c = slope * t2 + rho * s_s * s_t
    d = slope**2 * t2 + psi**2 + s_t**2
    return intercept + slope * eta + c / a * (y_s - eta), (d - c**2 / a) ** 0.5


def _line(r: str, intercept: NormalPrior | FixedValue, slope: NormalPrior, centre: float):
    """One relationship's (intercept, slope), its intercept sampled where the data are rather than at PFS HR 1.

    The intercept ``lambda0`` is the OS log HR at a PFS log HR of 0, far from the comparisons (PFS log HRs about
    -0.4), so the data pin ``lambda0 + lambda1 x`` at ``x`` near them and leave ``lambda0`` and ``lambda1``
    correlated.  NUTS samples ``c = lambda0 + lambda1 x`` instead (``x``: ``centre``, the comparisons' mean PFS log
    HR, data ``{r}::centre`` so that specs share the compiled sampler) with ``c | lambda1 ~ N(mu0 + lambda1 x,
    sigma0^2)``, and ``lambda0 = c - lambda1 x`` is a deterministic.  The map ``(c, lambda1) -> (lambda0, lambda1)``
    is a shear with Jacobian 1 and ``N(c; mu0 + lambda1 x, sigma0^2) = N(lambda0; mu0, sigma0^2)``, so the prior of
    ``(lambda0, lambda1)``, and hence the model and its posterior, are the spec's.  (Integrating this intercept out
    as the class blocks do, :func:`_integrated_intercepts`, gains nothing here: 15 leapfrog steps per draw either
    way, and one divergent transition on a shipped spec's seed.)  A fixed intercept is the value.
    """
    import pymc as pm

    b = slope.to_pymc(f"{r}::slope")
    if isinstance(intercept, FixedValue):
        return intercept.to_pymc(f"{r}::intercept"), b
    x = pm.Data(f"{r}::centre", np.asarray(centre))
    c = pm.Normal(f"{r}::intercept_centred", intercept.mu + b * x, intercept.sigma)
    return pm.Deterministic(f"{r}::intercept", c - b * x), b


def _integrated_intercepts(resid, sd, include, member, mu0, sd0, z0):
    r"""The OS likelihood with the class intercepts integrated out, and the intercepts drawn from their conditional.

    Given the other parameters theta, comparison i of class g has ``y_T,i | y_S,i ~ N(lambda0_g + m_i, v_i)``:
    ``resid`` is ``r_i = y_T,i - m_i`` and ``sd`` is ``sqrt(v_i)`` (:func:`os_given_pfs` with the intercept 0),
    ``member`` the (comparison, class) one-hot matrix and ``w`` (``include``) the comparisons' weights.  With the
    class sums ``P_g = sum_i w_i / v_i``, ``S_g = sum_i w_i r_i / v_i``, ``Q_g = sum_i w_i r_i^2 / v_i`` and
    ``k_g = 1 + sd0^2 P_g``, the intercept's normal prior ``lambda0_g ~ N(mu0, sd0^2)`` integrates out in closed
    form (completing the square in ``l``; a class without comparisons adds 0)::

        log int prod_i N(r_i; l, v_i)^w_i N(l; mu0, sd0^2) dl
            = -1/2 sum_i w_i log(2 pi v_i) - 1/2 Q_g + (sd0^2 S_g^2 + 2 mu0 S_g - mu0^2 P_g) / (2 k_g) - 1/2 log k_g

    and given theta the intercept is normal with mean ``(mu0 + sd0^2 S_g) / k_g`` and variance ``sd0^2 / k_g``.
    NUTS samples theta from its marginal posterior, and the intercept is that conditional mean plus its SD times
    ``z0_g``, a standard normal that enters nothing else (``sd0 = 0``, a fixed intercept: the likelihood at
    ``mu0``, and the draw ``mu0``): ``p(theta, l | y) = p(theta | y) p(l | theta, y)``, so
    the joint posterior is the spec's model exactly (Rao-Blackwellisation); what changes is the sampler's work.
    Sampled jointly, a class intercept (the OS log HR at a PFS HR of 1, far from the comparisons' PFS log HRs of
    about -0.4) moved with its slope (posterior correlation 0.7-0.97), and in the exchangeable model sat in a
    funnel with its spread ``sd0``: NUTS took about 60 leapfrog steps per draw there, 31-48 now
    (docs/benchmarks.md).

    Returns ``(sum of the OS log densities, the intercepts, one per class)``.
    """
    import pytensor.tensor as pt

    w = include / sd**2
    sums = pt.stack([w, w * resid, w * resid**2])  # (3, comparison)
    # class sums as a sum of products rather than a matrix product: the same numbers, and numba (nutpie's backend)
    # would warn that np.dot is slower on the broadcast one-hot matrix
    g = pt.sum(sums[:, :, None] * member[None, :, :], axis=1)  # (3, class)
    p_g, s_g, q_g = g[0], g[1], g[2]
    k_g = 1 + sd0**2 * p_g
    quad = -0.5 * q_g + (sd0**2 * s_g**2 + 2 * mu0 * s_g - mu0**2 * p_g) / (2 * k_g) - 0.5 * pt.log(k_g)
    loglik = pt.sum(quad) - 0.5 * pt.sum(include * pt.log(2 * np.pi * sd**2))
    intercept = (mu0 + sd0**2 * s_g) / k_g + sd0 / pt.sqrt(k_g) * z0
    return loglik, intercept


def target_given_relationship(intercept, slope, psi, rho, y_s, s_s, y_t=None, s_t=None):
    """The target's true OS log HR given a relationship, with a flat prior on its true PFS log HR.

    Returns ``(mean, sd, log_weight)``: the conditional normal of mu_T given the target's PFS estimate and
    (when given) its OS estimate, and the log density of the OS estimate given the PFS estimate (0 without
    an OS estimate).  See the module docstring for the algebra.
    """
    from scipy import stats

    m0 = intercept + slope * y_s
    v0 = slope**2 * s_s**2 + psi**2
    if y_t is None:
        return m0, np.sqrt(v0), np.zeros(np.shape(m0))
    cross = slope * rho * s_s * s_t
    var_y = v0 + s_t**2 - 2.0 * cross
    cov = v0 - cross
    mean = m0 + cov / var_y * (y_t - m0)
    var = np.maximum(v0 - cov**2 / var_y, 0.0)
    log_w = stats.norm.logpdf(y_t, m0, np.sqrt(var_y))
    return mean, np.sqrt(var), log_w


def class_relationships(h: Mapping[str, np.ndarray], relationship: str, n_class: int) -> dict[str, np.ndarray]:
    """Per-draw, per-class (intercept, slope, residual SD), shape ``(chain, draw, class)``, from block draws."""
    if relationship in POOLED:
        return {k: np.repeat(h[k][..., None], n_class, axis=-1) for k in ("intercept", "slope", "residual_sd")}
    return {k: h[k] for k in ("intercept", "slope", "residual_sd")}


# --------------------------------------------------------------------------------------------
# The family
# --------------------------------------------------------------------------------------------


@dataclass
class _Forecast:
    """One forecast variant: per-draw conditional means/SDs (possibly several per draw) and weights."""

    mean: np.ndarray  # (chain, draw, m)
    sd: np.ndarray
    log_w: np.ndarray  # unnormalised log weights, same shape

    def weights(self) -> np.ndarray:
        """Normalised weights, shape (chain, draw, m), summing to chain * draw (so means are averages)."""
        lw = self.log_w - np.max(self.log_w)
        w = np.exp(lw)
        return w / w.sum() * (w.shape[0] * w.shape[1])

    def kish_ess(self) -> float:
        """Kish effective sample size of the importance weights, over posterior draws."""
        w = self.weights().sum(axis=-1).ravel()
        return float(w.sum() ** 2 / np.sum(w**2))

    def prob_below(self, log_t: float) -> np.ndarray:
        """Per-draw Rao-Blackwellised P(mu_T < log t), weighted; its mean is the posterior probability."""
        from scipy import stats

        return np.sum(self.weights() * stats.norm.cdf((log_t - self.mean) / self.sd), axis=-1)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draws of mu_T, shape (chain, draw): within each chain, (draw, component) resampled by weight."""
        w = self.weights()
        n_chain, n_draw, m = w.shape
        out = np.empty((n_chain, n_draw))
        for c in range(n_chain):
            p = w[c].ravel() / w[c].sum()
            pick = rng.choice(n_draw * m, size=n_draw, p=p)
            out[c] = self.mean[c].ravel()[pick] + self.sd[c].ravel()[pick] * rng.standard_normal(n_draw)
        return out


@dataclass
class _Cache:
    key: int = -1  # id() of the posterior these were computed from
    forecasts: dict[str, _Forecast] = field(default_factory=dict)
    stacked: np.ndarray | None = None


def _later_probability(tg: TargetTrial, fc: _Forecast) -> np.ndarray:
    """Per-draw P(later OS analysis significant) (independent increments; see :mod:`.surrogacy`)."""
    from scipy import stats

    c = tg.success_bound
    i_f = tg.later_information
    if tg.y_os is not None:
        i_i = tg.interim_information
        d_i = i_f - i_i
        mean = (i_i * tg.y_os + d_i * fc.mean) / i_f
        sd = np.sqrt(d_i + d_i**2 * fc.sd**2) / i_f
    else:
        mean, sd = fc.mean, np.sqrt(fc.sd**2 + 4.0 / (4.0 * i_f))
    return np.sum(fc.weights() * stats.norm.cdf((c - mean) / sd), axis=-1)


def _headline_classes(c: HeadlineContext) -> list[Line]:
    out = [
        line(
            "answer",
            "How well PFS effects predict OS effects, class by class: typical slope across classes ",
            CI("slope_mean"),
            c.when_suffix,
        )
    ]
    if "P(slope_mean>0)" in c.probabilities:
        out.append(
            line("estimate", "Probability that the typical class slope is positive: ", P("P(slope_mean>0)"), ".")
        )
    out.append(
        line(
            "note",
            "Classes with fewer than three comparisons have no slope of their own: their estimate borrows "
            "from the other classes (exchangeable model) or stays near its prior (independent model).",
        )
    )
    return out


def _headline_forecast(c: HeadlineContext) -> list[Line]:
    where = f" in {c.target}" if c.target else ""
    out = [
        line(
            "answer",
            f"Probability that {c.experimental} improves OS over {c.control}{where} (true OS HR < 1), "
            "stacked over the surrogacy models: ",
            P("P(os_hr<1)"),
            c.when_suffix,
        ),
        line("estimate", "Forecast OS HR ", CI("os_hr"), "."),
        line(
            "note",
            "The stacked forecast weights one PFS-to-OS relationship, independent class relationships and "
            "exchangeable class relationships by how well each predicted the reference trials' OS from their "
            "PFS (leave-one-out stacking); the strip shows how the answer moves with the model and the class "
            "the target is assumed to belong to.",
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
    return out


class _Names(Mapping[str, str]):
    """Plain names of the family's quantities, including the per-class ones (``slope_exchangeable[IO 1L]``)."""

    _VARIANT: ClassVar[dict[str, str]] = {
        "independent": "independent classes",
        "exchangeable": "exchangeable classes",
    }

    def __init__(self, fixed: Mapping[str, str]):
        self._FIXED = dict(fixed)

    def __getitem__(self, name: str) -> str:
        if name in self._FIXED:
            return self._FIXED[name]
        stem, _, rest = name.partition("[")
        what, _, variant = stem.partition("_")
        if rest.endswith("]") and what in ("slope", "intercept") and variant in self._VARIANT:
            word = "slope" if what == "slope" else "intercept (OS log HR when the PFS HR is 1)"
            return f"{word} of class {rest[:-1]} ({self._VARIANT[variant]})"
        raise KeyError(name)

    def __iter__(self):
        return iter(self._FIXED)

    def __len__(self) -> int:
        return len(self._FIXED)


_FIXED_NAMES = {
    "slope_mean": "typical surrogacy slope across classes (exchangeable model)",
    "slope_sd": "between-class SD of the slopes",
    "intercept_mean": "typical intercept across classes (OS log HR when the PFS HR is 1)",
    "slope_pooled": "slope of the one relationship",
    "intercept_pooled": "intercept of the one relationship",
    "residual_sd_pooled": "residual SD around the one relationship",
    "slope_pooled_no_intercept": "slope of the one relationship with the intercept fixed at 0",
    "residual_sd_pooled_no_intercept": "residual SD around the one relationship with the intercept fixed at 0",
    "intercept_sd": "between-class SD of the intercepts",
    "os_hr": "forecast true OS HR of the target trial (stacked)",
    "os_hr_later_estimate": "OS HR the later analysis is predicted to report (stacked)",
    "P(later_os_significant)": "the later OS analysis is statistically significant",
}
_SLOPES = (
    ("slope_pooled", "one relationship", "all classes share one PFS-to-OS line"),
    ("slope_pooled_no_intercept", "one relationship, intercept 0", "no OS effect without a PFS effect"),
    ("slope_mean", "exchangeable classes: typical slope", "class lines drawn from a common distribution"),
)
"""The slopes of the relationship's strip: (summary name, row label, note), one per variant with a common slope."""


def _class_benefit_curves(draws: Any, log_h: np.ndarray) -> dict[str, np.ndarray]:
    """P(true OS HR < 1 | true PFS HR = h) under each relationship with a common line (as :data:`_SLOPES`): one
    line, one line through the origin, and the exchangeable model's typical class (its mean intercept and slope,
    typical residual SD).
    """
    line_ = ("intercept", "slope", "residual_sd")
    typical = ("intercept_mean", "slope_mean", "residual_sd_typical")
    out = {}
    for r, label, (a, b, psi) in (
        ("exchangeable", "exchangeable classes: typical class", typical),
        ("pooled", "one relationship", line_),
        ("pooled_no_intercept", "one relationship, intercept 0", line_),
    ):
        slope, psi_d = draws(f"{r}::{b}"), draws(f"{r}::{psi}")
        if slope is None or psi_d is None:
            continue
        intercept = draws(f"{r}::{a}")
        out[label] = os_benefit_given_pfs(np.zeros_like(slope) if intercept is None else intercept, slope, psi_d, log_h)
    return out


_NAMES = _Names(_FIXED_NAMES)
_SHORT = {"os_hr": "OS HR (stacked forecast)", "os_hr_later_estimate": "OS HR at the later analysis (predicted)"}
_COMPARISON = SummaryTable(
    "model_comparison",
    "Which PFS-to-OS model predicts the reference trials best",
    (
        ("label", "model"),
        ("elpd_loo", "expected log predictive density (LOO)"),
        ("se", "SE"),
        ("elpd_diff", "difference from the best"),
        ("p_loo", "effective parameters"),
        ("weight", "stacking weight"),
        ("warning", "Pareto k warning"),
    ),
    "Each model predicts every reference comparison's OS estimate from its PFS estimate, leaving that comparison "
    "out (PSIS-LOO); higher is better, and differences smaller than about two SEs are not clear. The stacking "
    "weights combine the models into the forecast that predicts best (Yao et al. 2018).",
)
_CLASSES = SummaryTable(
    "classes",
    "Treatment classes",
    (("class", "class"), ("comparisons", "comparisons"), ("note", "note")),
    "Reference comparisons per class. A class with fewer than three comparisons cannot estimate a slope of its "
    "own: its relationship comes from the other classes (exchangeable model) or from the prior (independent).",
)


@register
class ClassSurrogacyModel(ModelFamily):
    """PFS -> OS surrogacy by treatment class: one, independent and exchangeable relationships (methods §d)."""

    name = "surrogacy_classes"
    spec_class: ClassVar[type[SpecBase]] = SurrogacyClassesSpec
    presentation = Presentation(
        headline=_headline_classes,
        names=_NAMES,
        figures=("densities",),
        densities=(),
        forest="none",
        headline_quantity="slope_mean",
        tables=(_COMPARISON, _CLASSES),
        benefit=BenefitCurves("true PFS HR", "a true OS benefit (OS HR < 1)", _class_benefit_curves),
    )
    dim = "class"
    # numpyro: comparisons padded to a multiple of 16 (weight 0), so every spec's block of one relationship runs
    # the same compiled sampler (the disk cache then compiles each relationship once per machine)
    row_padding: ClassVar[RowPadding | None] = RowPadding(dim="comparison", weight="::include")

    def __init__(
        self,
        data: ClassData,
        *,
        relationships: Sequence[str] = ("independent", "exchangeable"),
        priors: ClassPriors | None = None,
        target: TargetTrial | None = None,
        target_class: str | Mapping[str, float] = NEW_CLASS,
        strip_classes: Sequence[str] = (),
        seed: int = 0,
    ):
        self.data = data
        self.relationships = tuple(relationships)
        self.priors = priors or ClassPriors()
        self.target = target
        self.target_class = target_class
        self.strip_classes = tuple(strip_classes)
        self.seed = seed
        self.labels = list(data.classes)
        self.thresholds = tuple(self.default_thresholds)
        self.weights: dict[str, float] | None = None  # stacking weights, set by the run from the LOO comparison
        self.comparison: list[dict[str, Any]] = []
        self._cache = _Cache()

    @classmethod
    def from_spec(cls, spec: Any, tables: EvidenceTables) -> tuple[ClassSurrogacyModel, EvidenceRecord]:
        """The reference comparisons (and trial class) the spec selects, as of its date."""
        used, record = select_class_reference(spec, tables, [])
        family = cls(
            ClassData.from_frame(used), relationships=spec.relationships, priors=spec.priors, seed=spec.sampler.seed
        )
        family.set_thresholds(spec)
        return family, record

    # ---- model ----------------------------------------------------------------------------------

    def build_model(self) -> pm.Model:
        """One PyMC model holding every relationship variant as an independent block (see :meth:`build_models`)."""
        import pymc as pm

        with pm.Model(coords=self._coords()) as model:
            for r in self.relationships:
                self._block(r)
        return model

    def build_models(self) -> dict[str, pm.Model]:
        """One PyMC model per relationship variant.

        The variants share no parameters, so sampling them separately gives each its own step size and
        mass matrix (jointly, the hardest block sets the step size of all), and the same posterior.
        """
        import pymc as pm

        out = {}
        for r in self.relationships:
            with pm.Model(coords=self._coords()) as model:
                self._block(r)
            out[r] = model
        return out

    def _coords(self) -> dict[str, list[str]]:
        return {"comparison": self.data.labels, "class": self.data.classes}

    def _block(self, r: str) -> None:
        """The variant's parameters and its likelihood of the reference comparisons.

        The likelihood is a potential ``sum_i include_i (log N(y_S,i) + log N(y_T,i | y_S,i))``: ``include``
        (data, all ones) lets leave-one-out refits drop a comparison without rebuilding or recompiling.  Class
        intercepts with a normal prior (independent classes; the exchangeable classes', given their common mean and
        spread) are integrated out of the OS part and drawn from their exact conditional
        (:func:`_integrated_intercepts`; a fixed one as a prior of SD 0, its draw the value); one line's intercept
        is sampled centred (:func:`_line`), or fixed.  The exchangeable model's slopes and residual SDs are non-centred:
        ``lambda1_c = beta1 + xi1 z[1]_c``, ``psi_c = psi_bar exp(s_psi z[2]_c)``, and ``z[0]`` draws its
        intercepts.
        """
        import pymc as pm
        import pytensor.tensor as pt

        d, p, k = self.data, self.priors, len(self.data.classes)
        include = pm.Data(f"{r}::include", np.ones(len(d.labels)), dims="comparison")
        y_s = pm.Data(f"{r}::y_pfs", d.y_pfs, dims="comparison")
        y_t = pm.Data(f"{r}::y_os", d.y_os, dims="comparison")
        # data rather than constants, so that specs with other comparisons share one compiled sampler
        s_s = pm.Data(f"{r}::se_pfs", d.se_pfs, dims="comparison")
        s_t = pm.Data(f"{r}::se_os", d.se_os, dims="comparison")
        idx = pm.Data(f"{r}::class_index", d.class_index, dims="comparison")
        eta = p.eta_pfs.to_pymc(f"{r}::eta_pfs", dims="class")
        tau = p.tau_pfs.to_pymc(f"{r}::tau_pfs", dims="class")
        rho = p.rho_w.to_pymc(f"{r}::rho_w")
        eta_i, tau_i = eta[idx], tau[idx]
        if r in POOLED:  # one line, its intercept sampled centred
            intercept = FixedValue(value=0.0) if r == "pooled_no_intercept" else p.intercept
            a, b = _line(r, intercept, p.slope, float(np.mean(d.y_pfs)))
            psi = p.residual_sd.to_pymc(f"{r}::residual_sd")
            sd_s = pm.math.sqrt(tau_i**2 + s_s**2)
            m_t, sd_t = os_given_pfs(eta_i, tau_i, a, b, psi, rho, y_s, s_s, s_t)
            logp = pm.logp(pm.Normal.dist(eta_i, sd_s), y_s) + pm.logp(pm.Normal.dist(m_t, sd_t), y_t)
            pm.Potential(f"{r}::loglik", pm.math.sum(include * logp))
            return
        if r == "independent":
            b_i = p.slope.to_pymc(f"{r}::slope", dims="class")[idx]
            psi_i = p.residual_sd.to_pymc(f"{r}::residual_sd", dims="class")[idx]
            if isinstance(p.intercept, FixedValue):  # a prior of SD 0: the integral is the likelihood at the value
                prior, z0 = (p.intercept.value, 0.0), 0.0
            else:
                prior = (p.intercept.mu, p.intercept.sigma)
                z0 = pm.Normal(f"{r}::intercept_z", 0.0, 1.0, dims="class")
        else:  # exchangeable
            z = pm.Normal(f"{r}::z", 0.0, 1.0, shape=(3, k))
            a_mu = p.intercept_mean.to_pymc(f"{r}::intercept_mean")
            a_sd = p.intercept_sd.to_pymc(f"{r}::intercept_sd")
            b_mu = p.slope_mean.to_pymc(f"{r}::slope_mean")
            b_sd = p.slope_sd.to_pymc(f"{r}::slope_sd")
            psi_mu = p.residual_sd_typical.to_pymc(f"{r}::residual_sd_typical")
            psi_sd = p.residual_sd_spread.to_pymc(f"{r}::residual_sd_spread")
            b_i = pm.Deterministic(f"{r}::slope", b_mu + b_sd * z[1], dims="class")[idx]
            psi_i = pm.Deterministic(f"{r}::residual_sd", psi_mu * pm.math.exp(psi_sd * z[2]), dims="class")[idx]
            prior, z0 = (a_mu, a_sd), z[0]
        # the class intercepts integrated out, then drawn from their conditional
        m_t, sd_t = os_given_pfs(eta_i, tau_i, 0.0, b_i, psi_i, rho, y_s, s_s, s_t)
        member = pt.cast(pt.eq(idx[:, None], pt.arange(k)[None, :]), "float64")  # (comparison, class)
        os, a = _integrated_intercepts(y_t - m_t, sd_t, include, member, *prior, z0)
        pm.Deterministic(f"{r}::intercept", a, dims="class")
        pfs = include * pm.logp(pm.Normal.dist(eta_i, pm.math.sqrt(tau_i**2 + s_s**2)), y_s)
        pm.Potential(f"{r}::loglik", pt.sum(pfs) + os)

    # ---- draws ----------------------------------------------------------------------------------

    def _block_draws(self, idata, r: str) -> dict[str, np.ndarray]:
        names = ("eta_pfs", "tau_pfs", "rho_w", "intercept", "slope", "residual_sd")
        h = {n: posterior_array(idata, f"{r}::{n}") for n in names}
        if r == "exchangeable":
            for n in ("intercept_mean", "intercept_sd", "slope_mean", "slope_sd"):
                h[n] = posterior_array(idata, f"{r}::{n}")
            h["residual_sd_typical"] = posterior_array(idata, f"{r}::residual_sd_typical")
            h["residual_sd_spread"] = posterior_array(idata, f"{r}::residual_sd_spread")
        return h

    def pointwise_loglik(self, idata) -> dict[str, np.ndarray]:
        """Per variant, ``log p(y_T,i | y_S,i, theta)`` per draw and comparison, shape (chain, draw, K)."""
        from scipy import stats

        d, idx, out = self.data, self.data.class_index, {}
        for r in self.relationships:
            h = self._block_draws(idata, r)
            rel = class_relationships(h, r, len(d.classes))
            eta, tau = h["eta_pfs"][..., idx], h["tau_pfs"][..., idx]
            rho = h["rho_w"]
            rho = rho[..., None] if np.ndim(rho) == 2 else np.full(eta.shape, float(np.ravel(rho)[0]))
            m, sd = os_given_pfs(
                eta,
                tau,
                rel["intercept"][..., idx],
                rel["slope"][..., idx],
                rel["residual_sd"][..., idx],
                rho,
                d.y_pfs,
                d.se_pfs,
                d.se_os,
            )
            out[r] = stats.norm.logpdf(d.y_os, m, sd)
        return out

    def use_comparison(self, rows: list[dict[str, Any]]) -> None:
        """Take the LOO comparison (one row per variant, with ``model`` and ``weight``) from the run."""
        self.comparison = [{"label": VARIANT_LABELS.get(str(r["model"]), str(r["model"])), **r} for r in rows]
        self.weights = {str(r["model"]): float(r["weight"]) for r in rows}

    # ---- quantities ---------------------------------------------------------------------------

    def quantities(self, idata: az.InferenceData) -> list[Draws]:
        """Per variant and class: slopes and intercepts; the exchangeable model's typical slope and spread."""
        out: list[Draws] = []
        for r in self.relationships:
            h = self._block_draws(idata, r)
            if r == "pooled":
                out += [
                    Draws("slope_pooled", "identity", h["slope"]),
                    Draws("intercept_pooled", "log", h["intercept"]),
                    Draws("residual_sd_pooled", "sd", h["residual_sd"]),
                ]
                continue
            if r == "pooled_no_intercept":
                out += [
                    Draws("slope_pooled_no_intercept", "identity", h["slope"]),
                    Draws("residual_sd_pooled_no_intercept", "sd", h["residual_sd"]),
                ]
                continue
            if r == "exchangeable":
                out += [
                    Draws("slope_mean", "identity", h["slope_mean"]),
                    Draws("slope_sd", "sd", h["slope_sd"]),
                    Draws("intercept_mean", "log", h["intercept_mean"]),
                    Draws("intercept_sd", "sd", h["intercept_sd"]),
                ]
            for k, c in enumerate(self.data.classes):
                out.append(Draws(f"slope_{r}[{c}]", "identity", h["slope"][..., k]))
                out.append(Draws(f"intercept_{r}[{c}]", "log", h["intercept"][..., k]))
        return out

    def probabilities(self, idata: az.InferenceData) -> list[Draws]:
        """P(slope > 0): of the one relationship (with and without intercept) and the typical class slope."""
        out: list[Draws] = []
        for r in POOLED:
            if r in self.relationships:
                slope = self._block_draws(idata, r)["slope"]
                out.append(Draws(f"P(slope_{r}>0)", "probability", (slope > 0) * 1.0))
        if "exchangeable" in self.relationships:
            h = self._block_draws(idata, "exchangeable")
            out.append(Draws("P(slope_mean>0)", "probability", (h["slope_mean"] > 0) * 1.0))
        return out

    def class_table(self) -> list[dict[str, Any]]:
        """Comparisons per class, and whether the class can estimate a slope of its own."""
        return [
            {
                "class": c,
                "comparisons": n,
                "note": "" if n >= MIN_CLASS_SIZE else f"only {n} comparison(s): its slope is not estimated on its own",
            }
            for c, n in self.data.counts.items()
        ]

    def summary_extra(self, idata) -> dict[str, Any]:
        """The class table and the LOO model comparison, for the summary and the report."""
        out: dict[str, Any] = {"classes": self.class_table()}
        if self.comparison:
            out["model_comparison"] = self.comparison
        return out

    def strip(self, idata, context: StripContext) -> SensitivityStrip | None:
        """``P(slope > 0)`` and the slope under each relationship the fit holds (one line, one line through the
        origin, the exchangeable classes' typical slope): how much the answer rests on the model of the classes,
        with no refit.  The independent model has no common slope and no row.
        """
        rows = [
            SensitivityRow.from_stats(
                label,
                context.probabilities[f"P({name}>0)"],
                context.quantities[name],
                note=note,
                headline=name == self.presentation.headline_quantity,
            )
            for name, label, note in _SLOPES
            if name in context.quantities and f"P({name}>0)" in context.probabilities
        ]
        return SensitivityStrip("P(slope > 0)", tuple(rows), "slope") if rows else None

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """No prior overlays (the class parameters have many dimensions)."""
        return {}

    def assumptions(self) -> list[str]:
        """Classes, exchangeability, PH, rho_w, shared arms."""
        return [
            "Within a treatment class, the true PFS and OS effects of the comparisons follow one straight line on "
            "the log-HR scale with normal scatter; the classes are defined by drug group and line of therapy.",
            "Exchangeable model: the classes' intercepts, slopes and residual SDs are drawn from common "
            "distributions, so a class with few comparisons borrows from the others; the independent model "
            "assumes nothing in common; the one-relationship model assumes all classes share one line.",
            "Hazards are proportional, so one hazard ratio summarises each endpoint.",
            "The PFS and OS estimates of the same trial are correlated (rho_w, not published; prior "
            f"{self.priors.rho_w.describe()}).",
            "Comparisons that share a control arm are handled approximately (variance inflation, one per family, "
            "or independence), as chosen when the reference comparisons were selected.",
            "Model comparison uses leave-one-out prediction of each reference comparison's OS estimate from its "
            "PFS estimate (PSIS-LOO) and stacking weights; a Pareto k above 0.7 makes that comparison's LOO "
            "estimate unreliable.",
        ]


@register
class OSForecastClassesModel(ClassSurrogacyModel):
    """The class-aware surrogacy models with a target trial: the stacked OS forecast and its strip."""

    name = "os_forecast_classes"
    spec_class = OSForecastClassesSpec
    capabilities = frozenset({"forecast"})
    forecast = Forecast("os_hr", "target_os")
    presentation = Presentation(
        headline=_headline_forecast,
        names=_NAMES,
        short_labels=_SHORT,
        figures=("forest", "densities"),
        densities=("os_hr",),
        forest="target",
        headline_quantity="os_hr",
        tables=(_COMPARISON, _CLASSES),
    )

    @classmethod
    def from_spec(
        cls, spec: OSForecastClassesSpec, tables: EvidenceTables
    ) -> tuple[OSForecastClassesModel, EvidenceRecord]:
        """The target's ITT PFS (and OS) as of the date, and the reference comparisons with classes."""
        ev = spec.evidence
        target, record = select_target(spec, tables)
        used, ref_record = select_class_reference(spec, tables, ev.trials)
        data = ClassData.from_frame(used)
        tc = spec.target.target_class
        named = list(tc) if isinstance(tc, dict) else ([] if tc == NEW_CLASS else [tc])
        unknown = [c for c in [*named, *spec.target.strip] if c not in data.classes and not _is_trial_class(spec, c)]
        if unknown:
            raise ModelError(
                "unknown target class",
                [
                    Problem(f"class {c!r} has no reference comparisons; classes: {', '.join(data.classes)}")
                    for c in unknown
                ],
            )
        family = cls(
            data,
            relationships=spec.relationships,
            priors=spec.priors,
            target=target,
            target_class=tc,
            strip_classes=spec.target.strip,
            seed=spec.sampler.seed,
        )
        family.set_thresholds(spec)
        trial_used = record.used[record.used.endpoint.isin(["PFS", "OS"])]
        return family, EvidenceRecord(
            used=pd.concat([trial_used, ref_record.used], ignore_index=True),
            excluded=pd.concat([record.excluded, ref_record.excluded], ignore_index=True),
            as_of=spec.as_of,
            notes=ref_record.notes,
        )

    # ---- forecasts ------------------------------------------------------------------------------

    def _target(self) -> TargetTrial:
        if self.target is None:
            raise ModelError("this model has no target trial")
        return self.target

    def _variant(self, idata, r: str, target_class: str | Mapping[str, float], rng: np.random.Generator) -> _Forecast:
        """The target's forecast under variant ``r`` with the target in ``target_class``."""
        tg = self._target()
        h = self._block_draws(idata, r)
        rel = class_relationships(h, r, len(self.data.classes))
        rho = h["rho_w"][..., None]
        if isinstance(target_class, str) and target_class in self.data.classes:
            comps = {target_class: 1.0}
        elif isinstance(target_class, str):  # "new", or a named class without reference comparisons yet
            comps = {}
        else:
            comps = dict(target_class)
        parts = []
        for c, w in comps.items():
            if c not in self.data.classes:  # a class with no comparisons as of the date: a new class
                parts.append(self._new_class(h, r, rho, rng, math.log(w)))
                continue
            k = self.data.classes.index(c)
            m, sd, lw = target_given_relationship(
                rel["intercept"][..., k, None],
                rel["slope"][..., k, None],
                rel["residual_sd"][..., k, None],
                rho,
                tg.y_pfs,
                tg.se_pfs,
                tg.y_os,
                tg.se_os,
            )
            parts.append(_Forecast(m, sd, lw + math.log(w)))
        if not comps:
            parts.append(self._new_class(h, r, rho, rng, 0.0))
        return _Forecast(
            np.concatenate([p.mean for p in parts], axis=-1),
            np.concatenate([p.sd for p in parts], axis=-1),
            np.concatenate([p.log_w for p in parts], axis=-1),
        )

    def _new_class(self, h, r: str, rho, rng: np.random.Generator, log_prior: float) -> _Forecast:
        """A class drawn anew: from the common distribution (exchangeable), the priors (independent), or the
        one line (pooled); ``NEW_CLASS_DRAWS`` relationships per posterior draw, equally weighted a priori.
        """
        tg = self._target()
        shape = (*h["rho_w"].shape, NEW_CLASS_DRAWS)
        p = self.priors
        if r in POOLED:
            a, b, psi = (np.broadcast_to(h[k][..., None], shape) for k in ("intercept", "slope", "residual_sd"))
        elif r == "exchangeable":
            z = rng.standard_normal((3, *shape))
            a = h["intercept_mean"][..., None] + h["intercept_sd"][..., None] * z[0]
            b = h["slope_mean"][..., None] + h["slope_sd"][..., None] * z[1]
            psi = h["residual_sd_typical"][..., None] * np.exp(h["residual_sd_spread"][..., None] * z[2])
        else:
            a = p.intercept.rvs(shape, rng)
            b = p.slope.rvs(shape, rng)
            psi = p.residual_sd.rvs(shape, rng)
        m, sd, lw = target_given_relationship(a, b, psi, rho, tg.y_pfs, tg.se_pfs, tg.y_os, tg.se_os)
        return _Forecast(m, sd, lw + log_prior - math.log(NEW_CLASS_DRAWS))

    def _forecasts(self, idata) -> dict[str, _Forecast]:
        """Every variant the strip and the stacked headline need, computed once per posterior."""
        if self._cache.key == id(idata):
            return self._cache.forecasts
        rng = np.random.default_rng(self.seed + 7)
        out: dict[str, _Forecast] = {}
        for r in self.relationships:
            out[f"model:{r}"] = self._variant(idata, r, self.target_class, rng)
        if "exchangeable" in self.relationships:
            for c in self.strip_classes:
                out[f"class:{c}"] = self._variant(idata, "exchangeable", c, rng)
            out["class:new"] = self._variant(idata, "exchangeable", NEW_CLASS, rng)
        self._cache = _Cache(key=id(idata), forecasts=out)
        return out

    def _stack_weights(self) -> dict[str, float]:
        if self.weights:
            return {r: self.weights.get(r, 0.0) for r in self.relationships}
        return {r: 1.0 / len(self.relationships) for r in self.relationships}

    def _stacked_draws(self, idata) -> np.ndarray:
        """Draws of the stacked mu_T: each draw from the variant chosen with its stacking weight."""
        fcs = self._forecasts(idata)  # (re)sets the cache for this posterior
        if self._cache.stacked is None:
            rng = np.random.default_rng(self.seed + 11)
            w = self._stack_weights()
            samples = {r: fcs[f"model:{r}"].sample(rng) for r in self.relationships}
            shape = next(iter(samples.values())).shape
            choice = rng.choice(len(w), size=shape, p=np.array(list(w.values())) / sum(w.values()))
            stacked = np.zeros(shape)
            for j, r in enumerate(w):
                stacked = np.where(choice == j, samples[r], stacked)
            self._cache.stacked = stacked
        return self._cache.stacked

    def quantities(self, idata: az.InferenceData) -> list[Draws]:
        """The class parameters, then the stacked forecast OS HR and the later analysis's predicted HR."""
        out = super().quantities(idata)
        mu = self._stacked_draws(idata)
        out.append(Draws("os_hr", "hr", np.exp(mu)))
        tg = self._target()
        if tg.later_deaths is not None:
            rng = np.random.default_rng(self.seed + 13)
            i_f = tg.later_information
            if tg.y_os is not None:
                i_i = tg.interim_information
                d_i = i_f - i_i
                y_f = (i_i * tg.y_os + d_i * mu + np.sqrt(d_i) * rng.standard_normal(mu.shape)) / i_f
            else:
                y_f = mu + rng.standard_normal(mu.shape) / np.sqrt(i_f)
            out.append(Draws("os_hr_later_estimate", "hr", np.exp(y_f)))
        return out

    def probabilities(self, idata: az.InferenceData) -> list[Draws]:
        """Stacked ``P(os_hr<t)`` and ``P(later_os_significant)``: weighted Rao-Blackwellised per-draw values."""
        out = super().probabilities(idata)
        fcs, w = self._forecasts(idata), self._stack_weights()
        total = sum(w.values())
        for t in self.thresholds:
            v = sum(w[r] / total * fcs[f"model:{r}"].prob_below(math.log(t)) for r in self.relationships)
            out.append(Draws(f"P(os_hr<{t:g})", "probability", np.asarray(v)))
        if self._target().later_deaths is not None:
            v = sum(w[r] / total * _later_probability(self._target(), fcs[f"model:{r}"]) for r in self.relationships)
            out.append(Draws("P(later_os_significant)", "probability", np.asarray(v)))
        return out

    def strip(self, idata, context: StripContext) -> SensitivityStrip:
        """P(OS HR < 1) and the OS HR under each analysis a reader would ask about: immature OS alone (or "no OS
        data yet"), one relationship (with and without intercept), the target as each strip class and as a new
        class (with the importance ESS of the target's OS weighting), and the stacked headline.
        """
        fcs = self._forecasts(idata)
        rng = np.random.default_rng(self.seed + 17)
        rows = [self._target().os_alone()]
        variants = [
            ("model:pooled", "one relationship", "all classes share one PFS-to-OS line"),
            ("model:pooled_no_intercept", "one relationship, intercept 0", "no OS effect without a PFS effect"),
        ]
        variants += [
            (f"class:{c}", f"target as {c}", f"exchangeable classes; target in class {c}") for c in self.strip_classes
        ]
        variants += [("class:new", "target as a new class", "exchangeable classes; target's class drawn anew")]
        for key, label, note in variants:
            if key in fcs:
                fc = fcs[key]
                ess = fc.kish_ess()
                p = float(fc.prob_below(0.0).mean())
                mu = fc.sample(rng)
                rows.append(SensitivityRow.from_draws(label, p, np.exp(mu), note=note, extra={"importance_ess": ess}))
        w = self._stack_weights()
        weights = ", ".join(f"{r} {w[r]:.2f}" for r in self.relationships)
        stacked = context.headline_row("stacked", "os_hr", f"stacking weights: {weights}")
        return SensitivityStrip("P(OS HR < 1)", (*rows, stacked), "OS HR")

    def summary_extra(self, idata) -> dict[str, Any]:
        """Class table, model comparison, and the target's class in words."""
        return super().summary_extra(idata) | {"target_class": self._class_words()}

    def _class_words(self) -> str:
        tc = self.target_class
        if isinstance(tc, str):
            return "a new class" if tc == NEW_CLASS else tc
        return "mixture: " + ", ".join(f"{c} {w:g}" for c, w in tc.items())

    def assumptions(self) -> list[str]:
        """The class assumptions, the target's flat PFS prior and class, and the later analysis."""
        tg = self._target()
        out = [
            *super().assumptions(),
            "The target trial's true PFS effect is not assumed exchangeable with the reference comparisons' (flat "
            "prior); its true OS effect follows the PFS-to-OS relationship of its class, which is "
            f"{self._class_words()} in the stacked forecast.",
            "The stacked forecast is only as good as the models stacked: all of them assume that a relation learned "
            "on other drugs carries over to the target trial.",
        ]
        if tg.later_deaths is not None:
            out.append(
                "The later OS analysis adds an independent increment of information (D/4 for 1:1 allocation) to the "
                f"interim estimate; it is judged at one-sided alpha = {tg.alpha:g} without alpha-spending."
            )
        return out


def _is_trial_class(spec: Any, name: str) -> bool:
    tc = spec.reference.trial_class
    return tc is not None and tc.name == name
