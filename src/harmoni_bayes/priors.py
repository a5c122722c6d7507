"""Priors as data.

Each prior is a small pydantic model with a ``dist`` tag, so a spec writes it as an
inline TOML table, e.g. ``tau = {dist = "half_normal", sigma = 0.25}``.  The same
object is used by both engines, so NUTS and the exact grid engine can never
disagree about the prior:

* :meth:`to_pymc` creates the PyMC random variable (inside a model context);
* ``rvs`` draws from the prior, and a heterogeneity prior has ``logpdf``, ``ppf``, ``isf``, ``sf`` and
  ``median``: what the exact engines and the prior draws use, with numpy and ``scipy.special`` only;
* :meth:`scipy` returns the frozen ``scipy.stats`` distribution on the same scale (checks, the MCMC families).

The light methods compute what ``scipy.stats`` computes, with the same ``scipy.special`` and numpy calls in the
same order (``standard value * scale + loc`` last), so they give the same numbers to the last bit and draw the
same values from the same generator; ``tests/test_priors.py`` holds them to :meth:`scipy`.  They exist because
importing ``scipy.stats`` takes most of a second, more than an exact fit (issue 14).

All effect priors are on the log-HR scale (theta = log HR, experimental vs control).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator
from scipy.special import log1p, ndtr, ndtri

from .constants import Z_INTERVAL

if TYPE_CHECKING:  # pragma: no cover
    from scipy.stats._distn_infrastructure import rv_continuous_frozen

Size = int | tuple[int, ...]


def _scaled(standard: Any, scale: Any, loc: Any = 0.0) -> Any:
    """``standard * scale + loc``, the last step of every ``scipy.stats`` draw and quantile (the ``+ loc``
    also turns ``-0.0`` into ``0.0``, as scipy's does); a 0-d result is a numpy scalar, as scipy returns.
    """
    out = np.asarray(standard) * scale + loc
    return out[()] if out.ndim == 0 else out


class _Prior(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def rvs(self, size: Size, rng: np.random.Generator) -> Any:  # pragma: no cover - overridden
        """``size`` draws from ``rng``: the values ``self.scipy().rvs(size, random_state=rng)`` gives."""
        raise NotImplementedError


class _TauPriorBase(_Prior):
    """A prior on a heterogeneity SD: ``scale`` times a standard variable on ``[0, inf)``.

    Subclasses give the standard variable's log density, quantile, inverse survival and survival functions
    and draws (``scipy.stats``'s private ``_logpdf``, ``_ppf``, ``_isf``, ``_sf``, ``_rvs`` of the same
    distribution); the public methods add the scale and the ends of the support as ``scipy.stats`` does.
    """

    def _scale(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def _std_logpdf(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _std_ppf(self, q: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _std_isf(self, q: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _std_sf(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _std_rvs(self, size: Size, rng: np.random.Generator) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def logpdf(self, x: Any) -> Any:
        """Log density at ``x`` (``-inf`` below 0, NaN at NaN)."""
        y, shape = _standardised(x, self._scale())
        good = y >= 0  # the closed support [0, inf]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(good, self._std_logpdf(np.where(good, y, 1.0)) - np.log(self._scale()), -np.inf)
        return _shaped(np.where(np.isnan(y), np.nan, out), shape)

    def sf(self, x: Any) -> Any:
        """``P(tau > x)``: 1 at and below 0, 0 at infinity, NaN at NaN."""
        y, shape = _standardised(x, self._scale())
        inside = (y > 0) & (y < np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(inside, self._std_sf(np.where(inside, y, 1.0)), np.where(y <= 0, 1.0, 0.0))
        return _shaped(np.where(np.isnan(y), np.nan, out), shape)

    def ppf(self, q: Any) -> Any:
        """Quantile function: 0 at ``q = 0``, infinity at ``q = 1``, NaN outside ``[0, 1]``."""
        return self._quantile(q, self._std_ppf, at0=0.0, at1=np.inf)

    def isf(self, q: Any) -> Any:
        """Inverse survival function ``ppf(1 - q)``, without the cancellation of ``1 - q``."""
        return self._quantile(q, self._std_isf, at0=np.inf, at1=0.0)

    def median(self) -> float:
        """The prior median of tau."""
        return float(self.ppf(0.5))

    def rvs(self, size: Size, rng: np.random.Generator) -> Any:
        """``size`` draws from ``rng``: the values ``self.scipy().rvs(size, random_state=rng)`` gives."""
        return _scaled(self._std_rvs(size, rng), self._scale())

    def _quantile(self, q: Any, inner, at0: float, at1: float) -> Any:
        q, shape = _standardised(q, 1.0)
        inside = (q > 0) & (q < 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _scaled(inner(np.where(inside, q, 0.5)), self._scale())
        return _shaped(np.where(inside, out, np.where(q == 0, at0, np.where(q == 1, at1, np.nan))), shape)


def _standardised(x: Any, scale: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x / scale`` at least 1-d, as ``scipy.stats`` computes on (a scalar's power, say, takes another path in
    numpy than an array's), and the shape to give the result back in.
    """
    x = np.asarray(x, dtype=float)
    return np.atleast_1d(x / scale), x.shape


def _shaped(out: np.ndarray, shape: tuple[int, ...]) -> Any:
    """``out`` in ``shape``; a numpy scalar for a scalar input, as ``scipy.stats`` returns."""
    out = out.reshape(shape)
    return out[()] if out.ndim == 0 else out


class NormalPrior(_Prior):
    """Normal(mu, sigma) on the log-HR scale."""

    dist: Literal["normal"] = "normal"
    mu: float = 0.0
    sigma: PositiveFloat = 2.0

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.Normal(name, mu=self.mu, sigma=self.sigma, **kwargs)

    def rvs(self, size: Size, rng: np.random.Generator) -> Any:
        """``size`` draws from ``rng``: the values ``self.scipy().rvs(size, random_state=rng)`` gives."""
        return _scaled(rng.standard_normal(size), self.sigma, self.mu)

    def scipy(self) -> rv_continuous_frozen:
        """The frozen ``scipy.stats`` distribution on the same scale (imports ``scipy.stats``)."""
        from scipy import stats

        return stats.norm(self.mu, self.sigma)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        lo, hi = (math.exp(self.mu + s * Z_INTERVAL * self.sigma) for s in (-1, 1))
        return f"Normal({self.mu:g}, {self.sigma:g}^2) on log HR (95% prior range of HR {lo:.3g} to {hi:.3g})"


class HalfNormalPrior(_TauPriorBase):
    """Half-normal(sigma) for a heterogeneity SD on the log-HR scale."""

    dist: Literal["half_normal"] = "half_normal"
    sigma: PositiveFloat = 0.5

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.HalfNormal(name, sigma=self.sigma, **kwargs)

    def _scale(self) -> float:
        return self.sigma

    def _std_logpdf(self, y):
        return 0.5 * np.log(2.0 / np.pi) - y * y / 2.0

    def _std_ppf(self, q):
        return ndtri((1 + q) / 2.0)

    def _std_isf(self, q):
        return -ndtri(q / 2)

    def _std_sf(self, y):
        return 2 * ndtr(-y)

    def _std_rvs(self, size, rng):
        return abs(rng.standard_normal(size=size))

    def mean(self) -> float:
        """``sigma sqrt(2 / pi)``."""
        return float(_scaled(np.sqrt(2.0 / np.pi), self.sigma))

    def std(self) -> float:
        """``sigma sqrt(1 - 2 / pi)``."""
        return float(np.sqrt((1 - 2.0 / np.pi) * self.sigma * self.sigma))

    def scipy(self) -> rv_continuous_frozen:
        """The frozen ``scipy.stats`` distribution on the same scale (imports ``scipy.stats``)."""
        from scipy import stats

        return stats.halfnorm(scale=self.sigma)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return _describe_tau(f"Half-normal({self.sigma:g})", self.median())


class HalfCauchyPrior(_TauPriorBase):
    """Half-Cauchy(beta): heavier tail, discounts the prior under prior-data conflict."""

    dist: Literal["half_cauchy"] = "half_cauchy"
    beta: PositiveFloat = 0.5

    def to_pymc(self, name: str, **kwargs):
        """The PyMC random variable ``name`` with this prior (inside a model context)."""
        import pymc as pm

        return pm.HalfCauchy(name, beta=self.beta, **kwargs)

    def _scale(self) -> float:
        return self.beta

    def _std_logpdf(self, y):
        return np.log(2.0 / np.pi) - log1p(y * y)

    def _std_ppf(self, q):
        return np.tan(np.pi / 2 * q)

    def _std_isf(self, q):
        return 1.0 / np.tan(np.pi * q / 2)

    def _std_sf(self, y):
        return 2.0 / np.pi * np.arctan2(1, y)

    def _std_rvs(self, size, rng):
        return self._std_ppf(rng.uniform(size=size))  # scipy's default: inverse-CDF draws

    def scipy(self) -> rv_continuous_frozen:
        """The frozen ``scipy.stats`` distribution on the same scale (imports ``scipy.stats``)."""
        from scipy import stats

        return stats.halfcauchy(scale=self.beta)

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return _describe_tau(f"Half-Cauchy({self.beta:g})", self.median())


class TurnerPrior(_TauPriorBase):
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

    def _scale(self) -> float:
        return math.exp(self.mean / 2)

    def _std_logpdf(self, y):
        s = self.sd / 2
        with np.errstate(divide="ignore"):  # s * s: what numpy's s**2 of scipy's 1-d shape array computes
            return np.where(y != 0, -(np.log(y) ** 2) / (2 * (s * s)) - np.log(s * y * np.sqrt(2 * np.pi)), -np.inf)

    def _std_ppf(self, q):
        return np.exp(self.sd / 2 * ndtri(q))

    def _std_isf(self, q):
        return np.exp(self.sd / 2 * -ndtri(q))

    def _std_sf(self, y):
        return ndtr(-(np.log(y) / (self.sd / 2)))

    def _std_rvs(self, size, rng):
        return np.exp(self.sd / 2 * rng.standard_normal(size))

    def scipy(self) -> rv_continuous_frozen:
        """The frozen ``scipy.stats`` distribution on the same scale (imports ``scipy.stats``)."""
        from scipy import stats

        return stats.lognorm(s=self.sd / 2, scale=math.exp(self.mean / 2))

    def describe(self) -> str:
        """The prior in words, with what it means on the HR scale."""
        return _describe_tau(f"Turner log-normal: log(tau^2) ~ N({self.mean:g}, {self.sd:g}^2)", self.median())


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

    def rvs(self, size: Size, rng: np.random.Generator) -> Any:
        """``size`` draws from ``rng``: the values ``self.scipy().rvs(size, random_state=rng)`` gives."""
        return _scaled(rng.uniform(0.0, 1.0, size), self.upper - self.lower, self.lower)

    def scipy(self) -> rv_continuous_frozen:
        """The frozen ``scipy.stats`` distribution on the same scale (imports ``scipy.stats``)."""
        from scipy import stats

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

    def rvs(self, size: Size, rng: np.random.Generator) -> Any:
        """``size`` copies of the value (``rng`` is not used, as in scipy's zero-width uniform)."""
        return self.value * np.ones(size)

    def scipy(self) -> rv_continuous_frozen:
        """The frozen ``scipy.stats`` distribution on the same scale (a zero-width uniform; imports ``scipy.stats``)."""
        from scipy import stats

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


def _describe_tau(label: str, med: float) -> str:
    """Say what a heterogeneity prior with median ``med`` means on the HR scale.

    Two trials' true log HRs differ by N(0, 2 tau^2), so the 95% range of their HR
    ratio at the prior median of tau is exp(+-1.96 * sqrt(2) * tau).
    """
    ratio = math.exp(Z_INTERVAL * math.sqrt(2.0) * med)
    return (
        f"{label} on tau (log-HR SD); prior median tau {med:.3g}: two trials' true HRs "
        f"typically within a factor of {ratio:.3g} of each other"
    )


def prior_probability_tau_above(prior, value: float) -> float:
    """P(tau > value) under a tau prior, e.g. the prior chance of a 1.5-fold subgroup difference (ln 1.5)."""
    return float(prior.sf(value))
