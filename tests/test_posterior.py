"""The ArviZ layer: the diagnostics gate and draw summaries, on fake InferenceData from seeded arrays."""

import arviz as az
import h5py
import numpy as np
import pytest

from harmoni_bayes.config import DiagnosticThresholds
from harmoni_bayes.posterior import diagnose, mcse_mean, summarise_draws


def _idata(post: dict, diverging=None):
    n = next(iter(post.values())).shape
    div = np.zeros(n, bool) if diverging is None else diverging
    return az.from_dict(posterior=post, sample_stats={"diverging": div})


def test_gate_passes_on_good_draws_and_skips_constants():
    rng = np.random.default_rng(0)
    idata = _idata({"a": rng.normal(size=(4, 1000)), "fixed": np.full((4, 1000), 0.5)})
    with np.errstate(all="raise"):  # no division by zero on the constant variable
        d = diagnose(idata, ["a", "fixed"], DiagnosticThresholds())
    assert d.ok and not d.problems
    assert d.max_rhat < 1.01


def test_gate_fails_on_divergences_rhat_and_ess():
    rng = np.random.default_rng(1)
    stuck = rng.normal(size=(4, 200)) + np.arange(4)[:, None]  # chains disagree
    div = np.zeros((4, 200), bool)
    div[0, :3] = True
    d = diagnose(_idata({"b": stuck}, div), ["b"], DiagnosticThresholds())
    assert not d.ok
    text = " ".join(d.problems)
    assert "R-hat" in text and "ESS" in text and "3 divergent" in text


def test_summaries():
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 2.0, size=(4, 5000))
    s = summarise_draws(x)
    assert s["mean"] == pytest.approx(1.0, abs=0.1)
    assert s["sd"] == pytest.approx(2.0, rel=0.05)
    assert s["q2.5"] == pytest.approx(1 - 1.96 * 2, abs=0.15)
    assert s["hdi_high"] - s["hdi_low"] == pytest.approx(2 * 1.96 * 2, rel=0.05)
    assert mcse_mean(np.ones((2, 50))) == 0.0
    assert mcse_mean(x) == pytest.approx(2.0 / np.sqrt(20000), rel=0.2)


def test_draw_groups_are_written_in_arvizs_layout(tmp_path):
    """The exact path writes posterior.nc with h5netcdf alone; ArviZ reads it back as it reads its own files,
    and the HDF5 datasets are stored as ArviZ (through xarray) stores them."""
    from harmoni_bayes.posterior import DrawGroups, add_prior_draws, from_draws, load_netcdf, save_netcdf

    rng = np.random.default_rng(1)
    draws = {"mu": rng.normal(size=50), "hr": np.exp(rng.normal(size=(50, 2))), "rank": rng.integers(1, 3, (50, 3))}
    coords = {"trial": ["A", "B"]}
    mine = from_draws(draws, coords=coords, dims={"hr": ["trial"]})
    assert isinstance(mine, DrawGroups) and "posterior" in mine and "prior" not in mine
    add_prior_draws(mine, {"mu": rng.normal(size=50), "hr": rng.normal(size=(50, 2))}, coords)
    assert mine.groups() == ["posterior", "prior"] and mine.prior is mine["prior"]
    with pytest.raises(AttributeError, match="no group 'sample_stats'"):
        _ = mine.sample_stats
    theirs = az.from_dict(posterior={k: v[None] for k, v in draws.items()}, coords=coords, dims={"hr": ["trial"]})
    save_netcdf(mine, tmp_path / "mine.nc")
    save_netcdf(theirs, tmp_path / "theirs.nc")
    a, b = load_netcdf(tmp_path / "mine.nc"), load_netcdf(tmp_path / "theirs.nc")
    assert a.groups() == ["posterior", "prior"]
    xr_a, xr_b = a.posterior, b.posterior
    assert list(xr_a.data_vars) == list(xr_b.data_vars)
    for v in xr_b.data_vars:
        assert xr_a[v].dims == xr_b[v].dims
        assert xr_a[v].dtype == xr_b[v].dtype
        np.testing.assert_array_equal(xr_a[v].values, xr_b[v].values)
    assert list(a.prior["hr"].trial.values) == ["A", "B"]
    assert set(xr_a.attrs) == set(xr_b.attrs)  # created_at, arviz_version
    assert isinstance(mine.to_inference_data(), az.InferenceData)
    with h5py.File(tmp_path / "mine.nc") as fa, h5py.File(tmp_path / "theirs.nc") as fb:
        assert list(fa["posterior"]) == list(fb["posterior"])
        for name, ds in fb["posterior"].items():
            other = fa["posterior"][name]
            assert (other.dtype, other.compression, other.chunks, other.shuffle) == (
                ds.dtype,
                ds.compression,
                ds.chunks,
                ds.shuffle,
            ), name
            assert sorted(other.attrs) == sorted(ds.attrs), name
            np.testing.assert_array_equal(other.fillvalue, ds.fillvalue)


def test_draw_groups_refuse_draws_that_need_xarrays_encoding(tmp_path):
    from harmoni_bayes.posterior import from_draws, save_netcdf

    with pytest.raises(TypeError, match="flag: draws of dtype bool"):
        save_netcdf(from_draws({"flag": np.zeros(5, bool)}, coords={}, dims={}), tmp_path / "x.nc")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_figures_density_estimate_compiles_no_numba():
    """ArviZ's KDE would jit-compile its histogram with numba (about 9 s in every fresh worker process); ours runs
    ArviZ with numba off, so the histogram is numpy's, and the density still integrates to one."""
    from arviz.stats.density_utils import histogram

    from harmoni_bayes.posterior import kde

    x, pdf = kde(np.random.default_rng(1).normal(size=4000))
    assert "numba_fn" not in vars(histogram)  # the lazily compiled function was never built
    assert float(np.sum(pdf) * (x[1] - x[0])) == pytest.approx(1.0, abs=0.02)
