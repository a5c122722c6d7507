"""Simulation-based calibration (Talts et al. 2018) of the NNHM families (slow: real sampling).

For each replicate: draw (mu, tau) from the prior, simulate y with the shipped data's standard errors,
fit with NUTS (one compiled model, data swapped with pm.set_data), and record the rank of the true
value among thinned posterior draws.  Ranks must be uniform (chi-square test over 10 bins).
"""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from harmoni_bayes.models.random_effects import RandomEffectsModel
from harmoni_bayes.models.subgroups import SubgroupModel

pytestmark = pytest.mark.slow
REPLICATES = 100
KEEP = 99  # thinned draws per replicate -> ranks 0..99, 10 bins of 10


def _sbc(family, n_rep=REPLICATES, seed=0):
    rng = np.random.default_rng(seed)
    model = family.build_model()
    prior_mu, prior_tau = family.priors.mu.scipy(), family.priors.tau.scipy()
    ranks = {"mu": [], "tau": [], "theta0": []}
    for r in range(n_rep):
        mu = prior_mu.rvs(random_state=rng)
        tau = prior_tau.rvs(random_state=rng)
        theta = rng.normal(mu, tau, len(family.se))
        y = rng.normal(theta, family.se)
        post = _fit(model, y, seed=r)
        for name, truth in (("mu", mu), ("tau", tau), ("theta0", theta[0])):
            ranks[name].append(int((post[name] < truth).sum()))
    return ranks


def _fit(model, y, seed: int) -> dict[str, np.ndarray]:
    """Swap in the simulated data, sample, and return KEEP thinned draws of mu, tau and theta[0]."""
    with model:
        pm.set_data({"log_hr": y})
        idata = pm.sample(
            draws=250,
            tune=250,
            chains=2,
            cores=1,
            random_seed=seed,
            target_accept=0.99,
            progressbar=False,
            compute_convergence_checks=False,
        )
    post = idata.posterior
    idx = np.linspace(0, 499, KEEP).astype(int)
    return {
        "mu": post["mu"].values.ravel()[idx],
        "tau": post["tau"].values.ravel()[idx],
        "theta0": post["theta"].values[..., 0].ravel()[idx],
    }


def _uniform(ranks, what):
    counts = np.bincount(np.asarray(ranks) // 10, minlength=10)
    p = stats.chisquare(counts).pvalue
    assert p > 0.001, f"{what}: SBC ranks not uniform (p = {p:.2g}, counts {counts.tolist()})"


def test_sbc_random_effects():
    fam = RandomEffectsModel.from_arrays(["a", "b", "c"], [0.0, 0.0, 0.0], [0.152, 0.153, 0.121])
    for name, r in _sbc(fam).items():
        _uniform(r, f"random effects {name}")


def test_sbc_subgroups():
    fam = SubgroupModel.from_arrays(["TPS 1-49%", "TPS >=50%"], [0.0, 0.0], [0.190, 0.256])
    for name, r in _sbc(fam, seed=1).items():
        _uniform(r, f"subgroups {name}")


def test_sbc_detects_a_wrong_model():
    """The check can fail: simulating with SE 0.6 but fitting with SE 0.06 gives non-uniform tau ranks."""
    truth = RandomEffectsModel.from_arrays(["a", "b", "c"], [0.0, 0.0, 0.0], [0.6, 0.6, 0.6])
    model = RandomEffectsModel.from_arrays(["a", "b", "c"], [0.0, 0.0, 0.0], [0.06, 0.06, 0.06]).build_model()
    rng = np.random.default_rng(5)
    ranks = []
    for r in range(40):
        mu = truth.priors.mu.scipy().rvs(random_state=rng)
        tau = truth.priors.tau.scipy().rvs(random_state=rng)
        y = rng.normal(rng.normal(mu, tau, 3), truth.se)
        ranks.append(int((_fit(model, y, seed=r)["tau"] < tau).sum()))
    counts = np.bincount(np.asarray(ranks) // 10, minlength=10)
    assert stats.chisquare(counts).pvalue < 0.001
