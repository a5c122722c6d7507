"""Building blocks of the normal-normal hierarchical model (NNHM), shared by the random-effects and
subgroup families.

    y_i | theta_i ~ N(theta_i, s_i^2),   theta_i | mu, tau ~ N(mu, tau^2)

**Marginalised likelihood.**  PyMC samples only (mu, tau) from y_i ~ N(mu, s_i^2 + tau^2), which has no
funnel (methods §b, "PyMC notes").  The study effects are then drawn *exactly* from their conditional

    theta_i | mu, tau, y ~ N(B_i mu + (1 - B_i) y_i, (1 - B_i) s_i^2),   B_i = s_i^2 / (s_i^2 + tau^2)

through auxiliary standard normals ``z_<dim>`` that do not enter the likelihood, so NUTS mixes over
them trivially.  The predictive effect of a new study is theta_new = mu + tau z_new.

PyMC is imported inside the functions that build graphs, so the exact path never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError, Problem

TAU_SENSITIVITY = (
    ("tau half-normal(0.25)", {"priors": {"tau": {"dist": "half_normal", "sigma": 0.25}}}),
    ("tau half-normal(0.5)", {"priors": {"tau": {"dist": "half_normal", "sigma": 0.5}}}),
    ("tau half-Cauchy(0.5)", {"priors": {"tau": {"dist": "half_cauchy", "beta": 0.5}}}),
    ("tau Turner log-normal", {"priors": {"tau": {"dist": "turner_lognormal"}}}),
)
"""The heterogeneity priors a reader would ask about (methods §b): the main job fits the spec under each."""


@dataclass(frozen=True)
class NNHMInputs:
    """The data of an NNHM: one log-HR estimate ``y`` with standard error ``se`` per label."""

    labels: list[str]
    y: np.ndarray
    se: np.ndarray

    def __post_init__(self) -> None:
        y = np.asarray(self.y, dtype=float)
        se = np.asarray(self.se, dtype=float)
        object.__setattr__(self, "labels", [str(x) for x in self.labels])
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "se", se)
        problems = []
        if not (len(self.labels) == y.size == se.size):
            problems.append(Problem(f"{len(self.labels)} labels, {y.size} estimates and {se.size} SEs differ"))
        if not np.all(np.isfinite(y)):
            problems.append(Problem("every log-HR estimate must be finite"))
        if not np.all(np.isfinite(se) & (se > 0)):
            problems.append(Problem("every standard error must be finite and positive"))
        if len(set(self.labels)) != len(self.labels):
            problems.append(Problem("labels must be unique"))
        if problems:
            raise ModelError("the estimates cannot feed a normal-normal model", problems)


def add_nnhm(dim: str, y: np.ndarray, se: np.ndarray, mu: Any, tau: Any) -> tuple[Any, Any]:
    """Inside a model context: add the marginal likelihood, ``theta`` (dims ``dim``) and ``theta_new``."""
    import pymc as pm
    import pytensor.tensor as pt

    y_d = pm.Data("log_hr", np.asarray(y, dtype=float), dims=dim)
    se_d = pm.Data("se", np.asarray(se, dtype=float), dims=dim)
    pm.Normal("y", mu=mu, sigma=pt.sqrt(se_d**2 + tau**2), observed=y_d, dims=dim)
    theta = conditional_theta(dim, y_d, se_d, mu, tau)
    z_new = pm.Normal("z_new")
    theta_new = pm.Deterministic("theta_new", mu + tau * z_new)
    return theta, theta_new


def conditional_theta(dim: str, y: Any, se: Any, mu: Any, tau: Any, name: str = "theta") -> Any:
    """theta_i drawn from its exact conditional given (mu, tau, y)."""
    import pymc as pm
    import pytensor.tensor as pt

    z = pm.Normal(f"z_{dim}", dims=dim)
    shrink = se**2 / (se**2 + tau**2)
    mean = shrink * mu + (1 - shrink) * y
    sd = pt.sqrt(1 - shrink) * se
    return pm.Deterministic(name, mean + sd * z, dims=dim)


def exact_joint_draws(exact: Any, y: np.ndarray, se: np.ndarray, n: int, rng: np.random.Generator) -> dict:
    """IID joint draws of (tau, mu, theta, theta_new) and hr = exp(theta) from the exact grid posterior.

    tau ~ its grid posterior; mu | tau, y ~ N(mu_hat(tau), V_mu(tau)) (the grid engine's mixture components,
    aligned with the tau grid); theta_i | mu, tau, y and theta_new | mu, tau as in the module docstring.
    Used to store an exact fit as InferenceData for figures; summary numbers come from the engine itself.
    """
    j = rng.choice(len(exact.tau.values), size=n, p=exact.tau.weights / exact.tau.weights.sum())
    tau = exact.tau.values[j]
    mu = rng.normal(exact.mu.means[j], exact.mu.sds[j])
    shrink = se[None, :] ** 2 / (se[None, :] ** 2 + tau[:, None] ** 2)
    theta = rng.normal(shrink * mu[:, None] + (1 - shrink) * y[None, :], np.sqrt(1 - shrink) * se[None, :])
    theta_new = rng.normal(mu, tau)
    return {"tau": tau, "mu": mu, "theta": theta, "theta_new": theta_new, "hr": np.exp(theta)}


def information_shares(se: np.ndarray) -> np.ndarray:
    """pi_g proportional to 1/s_g^2: each subgroup's share of the events (I ~ D/4)."""
    w = 1.0 / np.asarray(se, dtype=float) ** 2
    return w / w.sum()
