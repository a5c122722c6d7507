"""The OS forecast: evidence as of a date, the target trial, the reference rows, and real fits (slow)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.evidence import load_evidence
from harmoni_bayes.models.base import EvidenceTables
from harmoni_bayes.models.surrogacy import OSForecastModel
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import load_spec, with_overrides

ROOT = Path(__file__).resolve().parents[1]
FORECAST = ROOT / "models" / "harmoni2_os_forecast_one_line_now.toml"
SURROGACY = ROOT / "models" / "nsclc_surrogacy.toml"


def _build(as_of, table=None, **changes):
    """The family and its evidence record, as run_spec builds them, for the shipped forecast spec."""
    spec = with_overrides(load_spec(FORECAST), as_of=as_of)
    for key, value in changes.items():
        setattr(spec.target, key, value)
    return OSForecastModel.from_spec(spec, EvidenceTables(spec, load_evidence() if table is None else table))


def _trials(record):
    return record.used[record.used.table == "trials"]


def test_before_the_os_look_the_target_has_pfs_only():
    import datetime as dt

    fam, record = _build(dt.date(2024, 9, 30))
    assert not fam.target.has_os
    assert set(_trials(record).endpoint) == {"PFS"}
    assert all(d <= "2024-09-30" for d in _trials(record).disclosed)
    assert any("not yet disclosed" in r for r in record.excluded.reason)


def test_after_the_os_look_the_company_release_is_used():
    import datetime as dt

    fam, record = _build(dt.date(2025, 6, 30))
    assert fam.target.has_os
    trials = _trials(record)
    os_row = trials[trials.endpoint == "OS"].iloc[0]
    assert os_row.hr == pytest.approx(0.777)  # press release beats the news report of 0.784
    assert any("conflicting report" in r and "0.784" in r for r in record.excluded.reason)
    # the reference rows carry disclosure dates: a later OS update is left out, the earlier analysis used
    assert record.notes["reference_filtered_by_date"] is True
    ref_left = record.excluded[record.excluded.table == "reference"]
    late = ref_left[ref_left.trial == "EMPOWER-Lung 3 Part 2"]
    assert any(r.startswith("not yet disclosed on 2025-06-30") for r in late.reason)
    assert "EMPOWER-Lung 3 Part 2" in set(record.used[record.used.table == "reference"].trial)
    # the target never serves as its own reference
    assert "HARMONi-2" not in set(record.used[record.used.table == "reference"].trial)
    # rows left out carry their sources, so reports never re-read a CSV
    assert record.excluded["source"].map(bool).all()


def test_the_later_analysis_must_have_more_deaths():
    import datetime as dt

    from harmoni_bayes.errors import ModelError

    with pytest.raises(ModelError, match="later_deaths"):
        _build(dt.date(2025, 6, 30), later_deaths=100)  # fewer than the ~155 deaths behind the early look


@pytest.mark.slow
def test_forecast_run_writes_the_contract(tmp_path):
    res = CliRunner().invoke(app, ["run", str(FORECAST), "--as-of", "2025-06-30", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["diagnostics"]["ok"] is True
    names = {q["name"] for q in summary["quantities"]}
    assert {"slope", "intercept", "residual_sd", "r2_trial", "ste_hr_pfs", "os_hr", "os_hr_later_estimate"} <= names
    probs = {p["name"]: p["value"] for p in summary["probabilities"]}
    assert {"P(os_hr<1)", "P(os_hr<0.8)", "P(later_os_significant)"} <= set(probs)
    # benefit and significance are different questions, and the second is the harder one
    assert probs["P(later_os_significant)"] < probs["P(os_hr<1)"]
    assert any(r.startswith("HARMONi-2|OS") for r in summary["evidence_rows"])


@pytest.mark.slow
def test_compare_two_dates(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", str(FORECAST), "--as-of", "2024-09-30", "--as-of", "2025-06-30", "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--draws", "300"])
    assert res.exit_code == 0, res.output
    comp = json.loads((out / "comparison.json").read_text())
    assert comp["evidence"]["added"] and any("|OS|" in r for r in comp["evidence"]["added"])
    assert "data:image/svg+xml;base64," in (out / "comparison.html").read_text()
    for date in ("2024-09-30", "2025-06-30"):
        assert (out / date / "summary.json").exists()


@pytest.mark.slow
def test_surrogacy_agrees_in_direction_with_published_analyses():
    """Published trial-level slopes in NSCLC are 0.33-0.40: expect a positive slope of that rough size."""
    result = run_spec(SURROGACY)
    slope = result.summary.quantity("slope")
    assert result.summary.diagnostics["ok"]
    assert 0.1 < slope["median"] < 0.8
    assert slope["q2.5"] > 0


def test_a_final_os_analysis_replaces_the_interim_and_ends_the_forecast(monkeypatch):
    import datetime as _dt

    # the hypothetical final analysis is "disclosed" 2026-06-30: fix the clock so the test never depends on it
    monkeypatch.setattr("harmoni_bayes.evidence.today", lambda: _dt.date(2026, 12, 1))
    """A final OS row supersedes the early look (replace, don't add); there is no later analysis left."""
    import csv
    import datetime as dt
    import io

    from harmoni_bayes.evidence import parse_evidence_text, shipped_path

    text = shipped_path("ivonescimab_trials.csv").read_text()
    header = next(csv.reader(io.StringIO(text)))
    row = dict.fromkeys(header, "")
    row |= {
        "trial": "HARMONi-2",
        "endpoint": "OS",
        "analysis": "HYPOTHETICAL final OS",
        "analysis_kind": "final",
        "disclosed": "2026-06-30",
        "subgroup_factor": "overall",
        "subgroup_level": "ITT",
        "hr": "0.80",
        "ci_lower": "0.64",
        "ci_upper": "1.00",
        "ci_level": "0.95",
        "events_total": "314",
        "source": "HYPOTHETICAL",
        "source_kind": "journal",
    }
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[c] for c in header])
    table = parse_evidence_text(text + buf.getvalue(), name="with final")
    fam, record = _build(dt.date(2026, 7, 1), table=table)
    assert fam.target.later_deaths is None
    trials = _trials(record)
    assert trials[trials.endpoint == "OS"].hr.tolist() == [0.80]
    assert any("superseded by a more mature analysis" in r for r in record.excluded.reason)
    model = fam.build_model()
    assert "os_hr" in model.named_vars and "os_hr_later_estimate" not in model.named_vars
