"""The main job (run-all) and the report command, on exact fits so they stay fast."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmoni_bayes.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_run_all_writes_reports_and_index(tmp_path):
    specs = tmp_path / "models"
    specs.mkdir()
    for name in ("harmoni2_pfs_pdl1", "ivonescimab_pfs_meta"):
        text = (ROOT / "models" / f"{name}.toml").read_text()
        (specs / f"{name}.toml").write_text(text)
    res = CliRunner().invoke(
        app, ["run-all", str(specs), "--out", str(tmp_path / "out"), "--reports", str(tmp_path / "rep"), "--no-pages"]
    )
    assert res.exit_code == 0, res.output
    index = (tmp_path / "rep" / "index.html").read_text()
    for name in ("harmoni2_pfs_pdl1", "ivonescimab_pfs_meta"):
        assert (tmp_path / "rep" / name / "report.html").exists()
        assert f"{name}/report.html" in index


def test_report_command(tmp_path):
    runner = CliRunner()
    spec = ROOT / "models" / "harmoni2_pfs_histology.toml"
    assert runner.invoke(app, ["run", str(spec), "--out", str(tmp_path), "--method", "exact"]).exit_code == 0
    res = runner.invoke(app, ["report", str(tmp_path), "--format", "md"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report.md").read_text().startswith("#")
    missing = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "posterior.nc missing" in missing.output
    bad = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "x"), "--method", "magic"])
    assert bad.exit_code == 2 and "method" in bad.output and "Traceback" not in bad.output


def test_run_all_goes_on_past_a_bad_spec(tmp_path):
    """One broken spec is reported (exit 2) but the other analyses are still fitted and indexed."""
    specs = tmp_path / "models"
    specs.mkdir()
    good = (ROOT / "models" / "harmoni2_pfs_pdl1.toml").read_text()
    (specs / "a_good.toml").write_text(good)
    (specs / "b_bad.toml").write_text(good.replace('subgroup_factor = "pdl1"', 'subgroup_factor = "eye_colour"'))
    res = CliRunner().invoke(
        app, ["run-all", str(specs), "--out", str(tmp_path / "o"), "--reports", str(tmp_path / "r"), "--no-pages"]
    )
    assert res.exit_code == 2
    assert "b_bad.toml" in res.output and "Traceback" not in res.output
    assert "a_good/report.html" in (tmp_path / "r" / "index.html").read_text()


@pytest.mark.slow
def test_run_all_writes_timeline_and_scorecard_pages_linked_from_the_index(tmp_path):
    specs = tmp_path / "models"
    specs.mkdir()
    for name in ("ivonescimab_pfs_meta", "ivonescimab_pfs_meta_now"):
        text = (ROOT / "models" / f"{name}.toml").read_text()
        (specs / f"{name}.toml").write_text(text)
    reports = tmp_path / "reports"
    res = CliRunner().invoke(app, ["run-all", str(specs), "--out", str(tmp_path / "out"), "--reports", str(reports)])
    assert res.exit_code == 0, res.output
    assert (reports / "ivonescimab_pfs_meta" / "scorecard.html").exists()  # mid-2025 forecast, HARMONi-6 since
    assert (reports / "ivonescimab_pfs_meta_now" / "timeline.html").exists()
    index = (reports / "index.html").read_text()
    assert 'href="ivonescimab_pfs_meta/scorecard.html"' in index
    assert 'href="ivonescimab_pfs_meta_now/timeline.html"' in index


def test_version_and_the_run_summary(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("harmoni-bayes ")
    spec = ROOT / "models" / "harmoni2_pfs_pdl1.toml"
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "r"), "--method", "exact", "--report"])
    assert res.exit_code == 0, res.output
    assert "Probability that ivonescimab improves PFS" in res.output and "report.html" in res.output
