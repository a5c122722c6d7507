"""Running specs end to end: exact runs, save/load round trips, reproducibility, as-of selection, the gate."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.errors import ModelError
from harmoni_bayes.results import load_result, save_result
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import load_spec

ROOT = Path(__file__).resolve().parents[1]
PDL1 = ROOT / "models" / "harmoni2_pfs_pdl1.toml"
META = ROOT / "models" / "ivonescimab_pfs_meta.toml"
CONTRACT_KEYS = {"spec", "model", "method", "as_of", "evidence_rows", "quantities", "probabilities", "diagnostics"}
STAT_KEYS = {"name", "scale", "mean", "sd", "median", "q2.5", "q97.5", "hdi_low", "hdi_high"}


def test_exact_subgroup_run_follows_contract(tmp_path):
    result = run_spec(PDL1, method="exact", as_of="2025-03-31")
    save_result(result, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) >= CONTRACT_KEYS
    names = {q["name"] for q in summary["quantities"]}
    assert {"hr_overall", "tau", "hr[TPS 1-49%]", "hr[TPS >=50%]", "hr_raw[TPS 1-49%]"} <= names
    assert "hr_ratio[TPS 1-49%/TPS >=50%]" in names
    assert all(set(q) >= STAT_KEYS for q in summary["quantities"])
    # the Lancet (journal) rows are used, not the WCLC news rows
    assert all(r.endswith(("d61b9e", "c5a823")) for r in summary["evidence_rows"])
    raw = next(q for q in summary["quantities"] if q["name"] == "hr_raw[TPS >=50%]")
    assert raw["median"] == pytest.approx(0.48) and raw["q2.5"] == pytest.approx(0.29, abs=0.002)
    # shrinkage pulls the two levels together
    shrunk = {q["name"]: q["median"] for q in summary["quantities"]}
    assert shrunk["hr[TPS >=50%]"] > 0.48 and shrunk["hr[TPS 1-49%]"] < 0.54
    assert summary["diagnostics"]["ok"] is True


def test_as_of_changes_the_rows(tmp_path):
    before = run_spec(PDL1, method="exact", as_of="2024-12-31").summary
    after = run_spec(PDL1, method="exact", as_of="2025-03-31").summary
    assert before.evidence_rows != after.evidence_rows
    assert all("2024-09-08" in r for r in before.evidence_rows)
    with pytest.raises(ModelError, match="at least two usable levels"):
        run_spec(PDL1, method="exact", as_of="2024-01-01")


def test_save_load_round_trip(tmp_path):
    result = run_spec(META, method="exact")
    save_result(result, tmp_path)
    back = load_result(tmp_path)
    assert back.summary.to_dict() == result.summary.to_dict()
    assert back.spec == result.spec
    assert list(back.evidence_used.row_id) == list(result.evidence_used.row_id)
    assert back.provenance["seed"] == result.provenance["seed"]
    assert "pymc" in back.provenance["versions"]
    np.testing.assert_allclose(back.idata.posterior["mu"].values, result.idata.posterior["mu"].values)
    # re-saving over an existing result works (the netCDF was read into memory and closed)
    save_result(back, tmp_path)


@pytest.mark.slow
def test_mcmc_is_reproducible_and_gated(tmp_path):
    """Same spec, evidence and seed: identical summary.json. Few draws, so the gate must fail and say so; with
    ``--strict`` (the second run) the exit code is 3, and the summary is written all the same.
    """
    runner = CliRunner()
    outs, codes = [], []
    for i, strict in enumerate(([], ["--strict"])):
        out = tmp_path / f"r{i}"
        args = ["run", str(PDL1), "--out", str(out), "--method", "mcmc", "--draws", "60", "--seed", "7", *strict]
        res = runner.invoke(app, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), res.output
        codes.append(res.exit_code)
        outs.append((out / "summary.json").read_text())
    assert codes == [0, 3]
    assert outs[0] == outs[1]
    summary = json.loads(outs[0])
    assert summary["method"] == "mcmc"
    assert summary["diagnostics"]["ok"] is False  # 60 draws cannot reach ESS 400
    assert any("ESS" in p for p in summary["diagnostics"]["problems"])


def test_exact_refused_for_exnex():
    spec = load_spec(PDL1)
    spec.exnex.enabled = True
    with pytest.raises(ModelError, match="mcmc"):
        run_spec(spec, method="exact")


def test_derived_draws_that_figures_and_the_scorecard_read_are_stored_with_the_posterior():
    """The class-aware forecast derives its stacked os_hr from the posterior; reports (headline, densities) and
    the scorecard (the forecast) read it from there, so the run stores it; sampled and indexed names are left.
    """
    from harmoni_bayes.models.surrogacy_classes import OSForecastClassesModel
    from harmoni_bayes.posterior import add_posterior_draws, from_draws
    from harmoni_bayes.run import _derived_draws_read_later
    from harmoni_bayes.summaries import Draws

    rng = np.random.default_rng(0)
    idata = from_draws({"exchangeable::slope_mean": rng.normal(size=100)}, coords={}, dims={})  # 1 chain
    drawn = [
        Draws("exchangeable::slope_mean", "identity", rng.normal(size=(1, 100))),  # sampled: already there
        Draws("slope_exchangeable[IO 1L]", "identity", rng.normal(size=(1, 100))),  # indexed, not read later
        Draws("os_hr", "hr", np.exp(rng.normal(-0.3, 0.1, (1, 100)))),
        Draws("os_hr_later_estimate", "hr", np.exp(rng.normal(-0.3, 0.2, (1, 100)))),  # not drawn in a figure
    ]
    stored = _derived_draws_read_later(OSForecastClassesModel, drawn, idata)
    assert list(stored) == ["os_hr"]
    add_posterior_draws(idata, stored)
    assert np.array_equal(idata.posterior["os_hr"].values, drawn[2].values)
    assert idata.posterior["os_hr"].dims == ("chain", "draw")


def test_sweeps_skip_the_strip():
    """run_spec(strip=False) (what a sweep task runs) gives the same numbers without the strip's refits."""
    full = run_spec(PDL1)
    bare = run_spec(PDL1, strip=False)
    assert "strip" in full.summary.extra and "strip" not in bare.summary.extra
    assert bare.summary.quantities == full.summary.quantities
