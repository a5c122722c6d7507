"""Simulation-based calibration (Talts et al. 2018) of the NNHM families, through the exact engine.

For each replicate: draw (mu, tau) from the prior, then theta and y with the shipped data's standard
errors, compute the exact posterior, and record the posterior CDF at the true value (its PIT).  If the
posterior is the right one for the generative model, PITs are uniform on (0, 1): a chi-square test over 10
bins and z-tests of their mean and variance.  The exact engine makes 400 replicates per family take seconds
(MCMC needed minutes for 100), so the check keeps more power than before.  NUTS is checked against the exact
engine separately (``test_nuts_vs_exact.py``), so the MCMC path is covered by that chain of checks.

The check can fail: fitting with the wrong standard errors gives non-uniform PITs (last test).
"""

import math

import numpy as np
import pytest
from scipy import stats

from harmoni_bayes.exact import nnhm_exact
from harmoni_bayes.models.random_effects import RandomEffectsModel
from harmoni_bayes.models.subgroups import SubgroupModel

REPLICATES = 400


def _pits(family, n_rep=REPLICATES, seed=0, fit_se=None):
    """PITs of mu, tau and theta[0] under the exact posterior; ``fit_se`` misspecifies the fit's SEs."""
    rng = np.random.default_rng(seed)
    prior_mu, prior_tau = family.priors.mu.scipy(), family.priors.tau.scipy()
    pits: dict[str, list[float]] = {"mu": [], "tau": [], "theta0": []}
    for _ in range(n_rep):
        mu = prior_mu.rvs(random_state=rng)
        tau = prior_tau.rvs(random_state=rng)
        theta = rng.normal(mu, tau, len(family.se))
        y = rng.normal(theta, family.se)
        ex = nnhm_exact(
            y, family.se if fit_se is None else fit_se, mu_prior=family.priors.mu, tau_prior=family.priors.tau
        )
        pits["mu"].append(float(ex.mu.cdf(mu)))
        pits["tau"].append(float(ex.tau.cdf(tau)))
        pits["theta0"].append(float(ex.theta[0].cdf(theta[0])))
    return pits


def _uniform(u, what):
    u = np.asarray(u)
    counts = np.bincount(np.minimum((u * 10).astype(int), 9), minlength=10)
    p = stats.chisquare(counts).pvalue
    z_mean = (u.mean() - 0.5) / math.sqrt(1 / 12 / u.size)
    z_var = (np.mean((u - 0.5) ** 2) - 1 / 12) / math.sqrt((1 / 80 - 1 / 144) / u.size)
    assert p > 0.001 and abs(z_mean) < 3.3 and abs(z_var) < 3.3, (what, counts.tolist(), p, z_mean, z_var)


def test_sbc_random_effects():
    fam = RandomEffectsModel.from_arrays(["a", "b", "c"], [0.0, 0.0, 0.0], [0.152, 0.153, 0.121])
    for name, u in _pits(fam).items():
        _uniform(u, f"random effects {name}")


def test_sbc_subgroups():
    fam = SubgroupModel.from_arrays(["TPS 1-49%", "TPS >=50%"], [0.0, 0.0], [0.190, 0.256])
    for name, u in _pits(fam, seed=1).items():
        _uniform(u, f"subgroups {name}")


def test_sbc_detects_a_wrong_model():
    """Simulating with SE 0.6 but fitting with SE 0.06 makes the tau PITs pile up: the check fails."""
    fam = RandomEffectsModel.from_arrays(["a", "b", "c"], [0.0, 0.0, 0.0], [0.6, 0.6, 0.6])
    u = _pits(fam, n_rep=100, seed=5, fit_se=np.full(3, 0.06))["tau"]
    with pytest.raises(AssertionError):
        _uniform(u, "misspecified tau")
