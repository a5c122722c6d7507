"""Scoring earlier forecasts against later readouts: the scores against closed forms, the shipped cases, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.errors import SpecError
from harmoni_bayes.scorecard import score, score_draws, score_normal
from helpers import REPO

META = REPO / "models" / "ivonescimab_pfs_meta.toml"
FORECAST = REPO / "models" / "harmoni2_os_forecast_one_line_now.toml"
PDL1 = REPO / "models" / "harmoni2_pfs_pdl1.toml"


def test_draw_scores_match_the_normal_closed_form():
    """Draws of N(m, v) scored with the readout's SE s: PIT and log density of N(m, v + s^2)."""
    rng = np.random.default_rng(1)
    m, sd, y, s = -0.4, 0.15, -0.2, 0.12
    draws = rng.normal(m, sd, 400_000)
    a, b = score_draws("draws", draws, y, s), score_normal("normal", m, sd, y, s)
    assert a.pit == pytest.approx(b.pit, abs=0.003)
    assert a.log_density == pytest.approx(b.log_density, abs=0.005)
    assert b.pit == pytest.approx(stats.norm.cdf(y, m, np.hypot(sd, s)))
    assert (a.in_50, a.in_95) == (b.in_50, b.in_95)
    far = score_normal("far", m, sd, 1.0, s)
    assert not far.in_95 and far.pit > 0.975


def test_the_meta_analysis_of_mid_2025_against_harmoni_6():
    card = score(META, "2025-06-30", outcome_as_of="2026-12-01")
    (r,) = card.readouts
    assert r.trial == "HARMONi-6" and r.hr == pytest.approx(0.60)
    names = [s.forecaster for s in r.scores]
    assert names == ["model", "pooled estimate, ignoring heterogeneity"]
    model, pooled = r.scores
    # heterogeneity widens the predictive: the new-trial forecast is less sure than the pooled estimate
    assert abs(model.pit - 0.5) < abs(pooled.pit - 0.5)
    assert 0 < model.pit < 1 and np.isfinite(model.log_density)


def test_nothing_to_score_is_a_clear_error():
    with pytest.raises(SpecError, match="no new trial"):
        score(META, "2026-11-01", outcome_as_of="2026-12-01")
    with pytest.raises(SpecError, match="makes no forecast"):
        score(PDL1, "2025-06-30")
    with pytest.raises(SpecError, match="must come after"):
        score(META, "2025-06-30", outcome_as_of="2025-01-01")
    res = CliRunner().invoke(
        app, ["score", str(META), "--forecast-as-of", "2026-11-01", "--outcome-as-of", "2026-12-01"]
    )
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.slow
def test_the_os_forecast_of_mid_2025_against_the_2026_os_interim(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "score",
            str(FORECAST),
            "--forecast-as-of",
            "2025-06-30",
            "--outcome-as-of",
            "2026-12-01",
            "--draws",
            "400",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "scorecard.json").read_text())
    (r,) = card["readouts"]
    assert r["trial"] == "HARMONi-2" and r["hr"] == pytest.approx(0.73)
    assert [s["forecaster"] for s in r["scores"]] == ["model", "OS HR equals PFS HR", "immature OS alone"]
    for line in ("PIT", "in 50%", "in 95%", "log density"):
        assert line in res.output
