"""Model structure without sampling: named variables, dims, a finite log-density gradient at the initial point."""

import numpy as np
import pytest

from harmoni_bayes.errors import ModelError
from harmoni_bayes.models.random_effects import RandomEffectsModel, RandomEffectsPriors
from harmoni_bayes.models.subgroups import ExnexOptions, SubgroupModel
from harmoni_bayes.priors import HalfCauchyPrior, TurnerPrior

Y = np.log([0.51, 0.46, 0.52])
SE = np.array([0.152, 0.153, 0.121])
LABELS = ["HARMONi-2", "HARMONi-A", "HARMONi"]


def _finite_gradient(model):
    """logp and its gradient at the initial point are finite.  FAST_COMPILE skips the C compilation that
    sampling needs: the graph is the same, and the check takes milliseconds instead of a minute cold."""
    point = model.initial_point()
    logp = model.compile_logp(mode="FAST_COMPILE")(point)
    grad = model.compile_dlogp(mode="FAST_COMPILE")(point)
    assert np.isfinite(logp)
    assert np.all(np.isfinite(grad))
    return grad


@pytest.mark.parametrize("tau", [None, HalfCauchyPrior(beta=0.5), TurnerPrior()])
def test_random_effects_structure(tau):
    priors = RandomEffectsPriors() if tau is None else RandomEffectsPriors(tau=tau)
    model = RandomEffectsModel.from_arrays(LABELS, Y, SE, priors).build_model()
    names = set(model.named_vars)
    assert {"mu", "tau", "theta", "theta_new", "hr_pooled", "hr_new_trial", "hr", "y"} <= names
    assert model.named_vars_to_dims["theta"] == ("trial",)
    assert list(model.coords["trial"]) == LABELS
    # the likelihood is marginal: only mu and tau (plus auxiliary normals) are free
    assert {v.name for v in model.free_RVs} == {"mu", "tau", "z_trial", "z_new"}
    _finite_gradient(model)


def test_subgroup_structure_and_exnex():
    labels = ["TPS 1-49%", "TPS >=50%"]
    y, se = np.log([0.54, 0.48]), np.array([0.19, 0.256])
    plain = SubgroupModel.from_arrays(labels, y, se).build_model()
    assert {"hr", "hr_overall", "theta", "tau"} <= set(plain.named_vars)
    assert plain.named_vars_to_dims["hr"] == ("subgroup",)
    _finite_gradient(plain)
    exnex = SubgroupModel.from_arrays(labels, y, se, exnex=ExnexOptions(enabled=True)).build_model()
    assert {"w_exchangeable", "exchangeable", "theta_ex", "u_membership"} <= set(exnex.named_vars)
    _finite_gradient(exnex)


def test_subgroup_needs_two_levels():
    with pytest.raises(ModelError, match="at least two levels"):
        SubgroupModel.from_arrays(["only"], [0.1], [0.2])


def test_exnex_has_no_exact_engine():
    m = SubgroupModel.from_arrays(["a", "b"], [0.1, 0.2], [0.2, 0.3], exnex=ExnexOptions(enabled=True))
    with pytest.raises(ModelError, match="mcmc"):
        m.exact()


def test_conditional_theta_matches_closed_form():
    """At fixed (mu, tau) the deterministic theta equals the normal-normal posterior mean when z = 0."""
    model = RandomEffectsModel.from_arrays(LABELS, Y, SE).build_model()
    (theta_of_values,) = model.replace_rvs_by_values([model["theta"]])
    fn = model.compile_fn(theta_of_values, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")
    mu, tau = -0.6, 0.2
    point = {"mu": mu, "tau_log__": np.log(tau), "z_trial": np.zeros(3), "z_new": 0.0}
    theta = fn(point)
    b = SE**2 / (SE**2 + tau**2)
    np.testing.assert_allclose(theta, b * mu + (1 - b) * Y, rtol=1e-10)
    point["z_trial"] = np.ones(3)
    np.testing.assert_allclose(fn(point) - theta, np.sqrt(1 - b) * SE, rtol=1e-10)


def test_information_shares_reproduce_itt():
    """Methods §c: the inverse-variance pool of the PD-L1 subgroups is HR 0.518 (SE 0.153) vs reported 0.51."""
    from harmoni_bayes.models.nnhm import information_shares

    y = np.log([0.54, 0.48])
    se = (np.log([0.78, 0.79]) - np.log([0.37, 0.29])) / 3.919928
    w = information_shares(se)
    pooled = float(w @ y)
    assert np.exp(pooled) == pytest.approx(0.518, abs=0.0015)
    assert 1 / np.sqrt((1 / se**2).sum()) == pytest.approx(0.153, abs=0.001)


def test_tau_prior_tail_probabilities_match_the_methods_brief():
    """Methods §c: under HN(0.25), P(tau > ln 1.5) = 0.10; under HN(0.5), 0.42."""
    from harmoni_bayes.priors import HalfNormalPrior, prior_probability_tau_above

    assert prior_probability_tau_above(HalfNormalPrior(sigma=0.25), np.log(1.5)) == pytest.approx(0.10, abs=0.005)
    assert prior_probability_tau_above(HalfNormalPrior(sigma=0.5), np.log(1.5)) == pytest.approx(0.42, abs=0.005)
