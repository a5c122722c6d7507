"""NUTS agrees with the exact grid engine within Monte Carlo error (slow: real sampling)."""

from pathlib import Path

import numpy as np
import pytest

from harmoni_bayes.config import SamplerConfig
from harmoni_bayes.inference import sample
from harmoni_bayes.models.random_effects import RandomEffectsModel
from harmoni_bayes.posterior import mcse_mean
from harmoni_bayes.run import run_spec

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
# numpyro: these small models compile in seconds with XLA, where PyMC's C backend takes half a minute from an empty
# cache; PyMC's own sampler is checked against the exact engine in test_shipped_specs (the PD-L1 spec)
CFG = SamplerConfig(draws=1000, tune=1000, chains=2, seed=11, target_accept=0.99, cores=1, backend="numpyro")


def _agree(draws: np.ndarray, exact_mean: float, what: str, k: float = 4.0):
    err = abs(draws.mean() - exact_mean)
    assert err < k * mcse_mean(draws) + 1e-3, f"{what}: NUTS {draws.mean():.4f} vs exact {exact_mean:.4f}"


@pytest.mark.parametrize("k", [2, 5, 30])
def test_simulated_trials(k):
    rng = np.random.default_rng(k)
    se = rng.uniform(0.1, 0.4, k)
    y = rng.normal(-0.3 + 0.2 * rng.standard_normal(k), se)
    fam = RandomEffectsModel.from_arrays([f"t{i}" for i in range(k)], y, se)
    idata = sample(fam.build_model(), CFG)
    ex = fam.exact()
    post = idata.posterior
    _agree(post["mu"].values, ex.mu.mean(), "mu")
    _agree(post["tau"].values, ex.tau.mean(), "tau")
    _agree(post["theta_new"].values, ex.theta_new.mean(), "theta_new")
    for i in range(min(k, 5)):
        _agree(post["theta"].values[..., i], ex.theta[i].mean(), f"theta[{i}]")
    # tail probabilities too: P(HR < 1) of the pooled effect
    _agree((post["mu"].values < 0).astype(float), ex.mu.prob_below(0.0), "P(mu<0)")
    # and the spread: posterior SDs within 10%
    assert post["mu"].values.std() == pytest.approx(ex.mu.sd(), rel=0.1)


@pytest.mark.parametrize("backend", ["numpyro", "nutpie"])
def test_other_backends_agree_and_repeat(backend):
    """The numba sampler targets the same posterior as the exact engine (the JAX one: test_simulated_trials too),
    and a seed fixes the draws of both."""
    rng = np.random.default_rng(5)
    se = rng.uniform(0.1, 0.4, 5)
    y = rng.normal(-0.3 + 0.2 * rng.standard_normal(5), se)
    fam = RandomEffectsModel.from_arrays([f"t{i}" for i in range(5)], y, se)
    cfg = CFG.model_copy(update={"backend": backend})
    post = sample(fam.build_model(), cfg).posterior
    ex = fam.exact()
    _agree(post["mu"].values, ex.mu.mean(), f"{backend} mu")
    _agree(post["tau"].values, ex.tau.mean(), f"{backend} tau")
    _agree((post["mu"].values < 0).astype(float), ex.mu.prob_below(0.0), f"{backend} P(mu<0)")
    assert post.sizes["chain"] == cfg.chains and post.sizes["draw"] == cfg.draws
    again = sample(fam.build_model(), cfg).posterior  # the smallest model: a fresh build, same seed
    np.testing.assert_array_equal(again["mu"].values, post["mu"].values)
    if backend == "numpyro":  # the compiled sampler went to the on-disk cache that a re-run reads
        import jax

        cache = Path(jax.config.values["jax_compilation_cache_dir"])
        assert any(p.name.startswith("jit_run-") for p in cache.iterdir()), sorted(cache.iterdir())[:5]  # _nuts_program


@pytest.mark.parametrize(
    ("spec", "backend"),
    [("harmoni2_pfs_pdl1", None), ("harmoni2_pfs_histology", "numpyro"), ("ivonescimab_pfs_meta", "numpyro")],
)
def test_shipped_specs(spec, backend):
    """The shipped specs' MCMC summaries agree with their exact ones: one with the spec's own sampler (PyMC's), the
    others with numpyro, which samples these small models in a fraction of PyMC's compile and start-up time (the
    backends are checked against each other in ``test_other_backends_agree_and_repeat``)."""
    path = ROOT / "models" / f"{spec}.toml"
    mcmc = run_spec(path, method="mcmc", seed=3, backend=backend)
    exact = run_spec(path, method="exact")
    assert mcmc.summary.diagnostics["ok"], mcmc.summary.diagnostics
    for q_exact in exact.summary.quantities:
        q = mcmc.summary.quantity(q_exact["name"])
        # posterior SD: on the quantity's own scale, or (HR scales report log-scale moments) from the 95% interval
        spread = q_exact["sd"] if q_exact["sd"] is not None else (q_exact["q97.5"] - q_exact["q2.5"]) / 3.92
        tol = 0.06 * spread * 4 + 1e-3  # generous MC error for 4000 draws, ESS >= 1000
        assert q["median"] == pytest.approx(q_exact["median"], abs=tol), q_exact["name"]
    for p_exact in exact.summary.probabilities:
        p = mcmc.summary.probability(p_exact["name"])
        assert abs(p["value"] - p_exact["value"]) < 4 * p["mcse"] + 0.005, p_exact["name"]


def test_pymc_chain_workers_are_not_forked_from_a_process_running_jax():
    """After a numpyro fit (JAX's threads running) PyMC's chain workers come from a fork server: a forked child of
    a multithreaded process can deadlock, and JAX warns at every fork (an error under this suite's filters)."""
    import jax

    from harmoni_bayes.inference import fork_is_safe

    jax.numpy.zeros(1).block_until_ready()
    assert not fork_is_safe()
    fam = RandomEffectsModel.from_arrays(["a", "b", "c"], np.array([-0.3, -0.1, -0.5]), np.array([0.2, 0.3, 0.25]))
    cfg = CFG.model_copy(update={"backend": "pymc", "cores": 2, "draws": 100, "tune": 100})
    post = sample(fam.build_model(), cfg).posterior
    assert post.sizes["chain"] == 2 and np.isfinite(post["mu"].values).all()
