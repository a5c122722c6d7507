"""Priors as data.

Each prior is a small pydantic model with a ``dist`` tag, so a spec writes it as an
inline TOML table, e.g. ``tau = {dist = "half_normal", sigma = 0.25}``.  The same
object is used by both engines, so NUTS and the exact grid engine can never
disagree about the prior:

* :meth:`to_pymc` creates the PyMC random variable (inside a model context);
* :meth:`scipy` returns the frozen ``scipy.stats`` distribution on the same scale.

All effect priors are on the log-HR scale (theta = log HR, experimental vs control).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator
from scipy import stats

from .constants import Z_INTERVAL


class _Prior(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


class NormalPrior(_Prior):
    """Normal(mu, sigma) on the log-HR scale."""

    dist: Literal["normal"] = "normal"
    mu: float = 0.0
    sigma: PositiveFloat = 2.0

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.Normal(name, mu=self.mu, sigma=self.sigma, **kwargs)

    def scipy(self):
        """The frozen ``scipy.stats`` distribution on the same scale."""
        return stats.norm(self.mu, self.sigma)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        lo, hi = (math.exp(self.mu + s * Z_INTERVAL * self.sigma) for s in (-1, 1))
        return f"Normal({self.mu:g}, {self.sigma:g}^2) on log HR (95% prior range of HR {lo:.3g} to {hi:.3g})"


class HalfNormalPrior(_Prior):
    """Half-normal(sigma) for a heterogeneity SD on the log-HR scale."""

    dist: Literal["half_normal"] = "half_normal"
    sigma: PositiveFloat = 0.5

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.HalfNormal(name, sigma=self.sigma, **kwargs)

    def scipy(self):
        """The frozen ``scipy.stats`` distribution on the same scale."""
        return stats.halfnorm(scale=self.sigma)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return _describe_tau(f"Half-normal({self.sigma:g})", self.scipy())


class HalfCauchyPrior(_Prior):
    """Half-Cauchy(beta): heavier tail, discounts the prior under prior-data conflict."""

    dist: Literal["half_cauchy"] = "half_cauchy"
    beta: PositiveFloat = 0.5

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.HalfCauchy(name, beta=self.beta, **kwargs)

    def scipy(self):
        """The frozen ``scipy.stats`` distribution on the same scale."""
        return stats.halfcauchy(scale=self.beta)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return _describe_tau(f"Half-Cauchy({self.beta:g})", self.scipy())


class TurnerPrior(_Prior):
    """Turner et al. (2015) empirical prior: log(tau^2) ~ Normal(mean, sd^2).

    On tau itself this is LogNormal(mean/2, sd/2).  Default: all-cause mortality,
    pharmacological vs placebo, LN(-3.95, 1.34^2) on tau^2 (tau median 0.139).
    """

    dist: Literal["turner_lognormal"] = "turner_lognormal"
    mean: float = -3.95
    sd: PositiveFloat = 1.34

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.LogNormal(name, mu=self.mean / 2, sigma=self.sd / 2, **kwargs)

    def scipy(self):
        """The frozen ``scipy.stats`` distribution on the same scale."""
        return stats.lognorm(s=self.sd / 2, scale=math.exp(self.mean / 2))

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return _describe_tau(f"Turner log-normal: log(tau^2) ~ N({self.mean:g}, {self.sd:g}^2)", self.scipy())


class UniformPrior(_Prior):
    """Uniform(lower, upper); used for the within-trial correlation rho_w."""

    dist: Literal["uniform"] = "uniform"
    lower: float
    upper: float

    @model_validator(mode="after")
    def _ordered(self):
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.Uniform(name, lower=self.lower, upper=self.upper, **kwargs)

    def scipy(self):
        """The frozen ``scipy.stats`` distribution on the same scale."""
        return stats.uniform(self.lower, self.upper - self.lower)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return f"Uniform({self.lower:g}, {self.upper:g})"


class FixedValue(_Prior):
    """A fixed value (a point mass); for sensitivity analyses such as rho_w = 0.5."""

    dist: Literal["fixed"] = "fixed"
    value: float

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        kwargs.pop("dims", None)
        return pm.Deterministic(name, pm.math.constant(self.value))

    def scipy(self):
        """The frozen ``scipy.stats`` distribution on the same scale."""
        return stats.uniform(self.value, 0.0)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return f"fixed at {self.value:g}"


TauPrior = Annotated[HalfNormalPrior | HalfCauchyPrior | TurnerPrior, Field(discriminator="dist")]
CorrelationPrior = Annotated[UniformPrior | FixedValue, Field(discriminator="dist")]


def check_correlation(prior: UniformPrior | FixedValue) -> None:
    """A correlation prior must keep the correlation strictly inside (-1, 1) (a ``ValueError`` otherwise)."""
    ok = -1.0 < prior.value < 1.0 if isinstance(prior, FixedValue) else (prior.lower > -1.0 and prior.upper < 1.0)
    if not ok:
        raise ValueError("rho_w must lie strictly between -1 and 1")


def _describe_tau(label: str, dist) -> str:
    """Say what a heterogeneity prior means on the HR scale.

    Two trials' true log HRs differ by N(0, 2 tau^2), so the 95% range of their HR
    ratio at the prior median of tau is exp(+-1.96 * sqrt(2) * tau).
    """
    med = float(dist.median())
    ratio = math.exp(Z_INTERVAL * math.sqrt(2.0) * med)
    return (
        f"{label} on tau (log-HR SD); prior median tau {med:.3g}: two trials' true HRs "
        f"typically within a factor of {ratio:.3g} of each other"
    )


def prior_probability_tau_above(prior, value: float) -> float:
    """P(tau > value) under a tau prior, e.g. the prior chance of a 1.5-fold subgroup difference (ln 1.5)."""
    return float(prior.scipy().sf(value))
