"""The priors' light methods (numpy and scipy.special) give scipy.stats's numbers to the last bit.

The exact engines and the prior draws use them instead of ``scipy.stats`` (issue 14: its import costs most of a
second), so every result stays byte-identical only if they are the same functions; these tests compare with
``assert_array_equal``, never with a tolerance.
"""

import numpy as np
import pytest

from harmoni_bayes.priors import (
    FixedValue,
    HalfCauchyPrior,
    HalfNormalPrior,
    NormalPrior,
    TurnerPrior,
    UniformPrior,
    prior_probability_tau_above,
)

TAU_PRIORS = [
    HalfNormalPrior(sigma=0.25),
    HalfNormalPrior(sigma=0.5),
    HalfNormalPrior(sigma=1.7),
    HalfCauchyPrior(beta=0.5),
    HalfCauchyPrior(beta=0.05),
    TurnerPrior(),
    TurnerPrior(mean=-2.56, sd=1.74),
]
ALL_PRIORS = [
    *TAU_PRIORS,
    NormalPrior(),
    NormalPrior(mu=-0.3, sigma=0.7),
    UniformPrior(lower=-0.9, upper=0.9),
    FixedValue(value=0.5),
]


def _points() -> np.ndarray:
    rng = np.random.default_rng(7)
    grid = 0.3 * np.sinh(np.linspace(0.0, 12.0, 4001))  # as the exact engine's tau grid spans
    special = [0.0, -0.0, -1.0, 1e-300, 5e-324, 1e-12, 0.25, 1.0, 1e12, 1e300, np.inf, -np.inf, np.nan]
    return np.concatenate([grid, rng.exponential(0.3, 2000), rng.lognormal(-2, 2, 2000), special])


def _probabilities() -> np.ndarray:
    rng = np.random.default_rng(8)
    special = [0.0, 1.0, 0.5, 0.01, 1e-12, 1e-300, 5e-324, 1 - 1e-16, 0.025, 0.975, -0.1, 1.1, np.nan]
    return np.concatenate([np.linspace(0, 1, 2001), rng.uniform(size=2000), 10.0 ** -rng.uniform(0, 300, 500), special])


@pytest.mark.parametrize("prior", TAU_PRIORS, ids=repr)
@pytest.mark.parametrize("method", ["logpdf", "sf", "ppf", "isf"])
def test_tau_prior_functions_equal_scipy_stats_to_the_bit(prior, method):
    x = _probabilities() if method in ("ppf", "isf") else _points()
    mine, theirs = getattr(prior, method), getattr(prior.scipy(), method)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(mine(x), theirs(x))
        for v in x[::97]:  # a scalar in, a numpy scalar out, the same number
            a, b = mine(v), theirs(v)
            assert type(a) is type(b) and (a == b or (np.isnan(a) and np.isnan(b))), (v, a, b)
            assert np.signbit(a) == np.signbit(b), (v, a, b)
        np.testing.assert_array_equal(mine(x.reshape(-1, 1)[:60]), theirs(x.reshape(-1, 1)[:60]))


@pytest.mark.parametrize("prior", TAU_PRIORS, ids=repr)
def test_tau_prior_median_and_tail_equal_scipy_stats(prior):
    assert prior.median() == float(prior.scipy().median())
    for value in (0.0, np.log(1.5), 0.3, 2.0):
        assert prior_probability_tau_above(prior, value) == float(prior.scipy().sf(value))


def test_half_normal_moments_equal_scipy_stats():
    for prior in TAU_PRIORS[:3]:
        assert prior.mean() == float(prior.scipy().mean())
        assert prior.std() == float(prior.scipy().std())


@pytest.mark.parametrize("prior", ALL_PRIORS, ids=repr)
@pytest.mark.parametrize("size", [1, 4000, (4000, 3), (2, 5, 7)])
def test_draws_equal_scipy_stats_draws_from_the_same_generator(prior, size):
    """The same values, and the generator left in the same state (later draws of a fit depend on it)."""
    a, b = np.random.default_rng(20240908), np.random.default_rng(20240908)
    mine, theirs = prior.rvs(size, a), prior.scipy().rvs(size, random_state=b)
    assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
    np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(a.standard_normal(8), b.standard_normal(8))
