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


def test_run_all_in_parallel_workers_writes_what_a_serial_run_writes(tmp_path):
    """--jobs 2: the same summaries, reports and progress lines as --jobs 1 (each spec's lines kept together)."""
    specs = tmp_path / "models"
    specs.mkdir()
    names = ("harmoni2_pfs_pdl1", "ivonescimab_pfs_meta", "harmoni3_pos")
    for name in names:
        (specs / f"{name}.toml").write_text((ROOT / "models" / f"{name}.toml").read_text())
    runs = {}
    for jobs in ("1", "2"):
        where = ["--out", str(tmp_path / jobs / "out"), "--reports", str(tmp_path / jobs / "rep")]
        res = CliRunner().invoke(app, ["run-all", str(specs), *where, "--no-pages", "--jobs", jobs])
        assert res.exit_code == 0, res.output
        runs[jobs] = res
    for name in names:
        assert (tmp_path / "1" / "out" / name / "summary.json").read_bytes() == (
            tmp_path / "2" / "out" / name / "summary.json"
        ).read_bytes()
        assert (tmp_path / "2" / "rep" / name / "report.html").exists()

    def lines(jobs):  # the progress lines without their timings and run folders
        out = runs[jobs].output.replace(str(tmp_path / jobs), "RUN")
        return sorted(line.split(" (")[0] for line in out.splitlines() if not line.startswith("wrote "))

    assert lines("1") == lines("2")
    assert any(line.startswith("[2/3] harmoni3_pos") for line in runs["2"].output.splitlines())
    bad = CliRunner().invoke(app, ["run-all", str(specs), "--jobs", "0"])
    assert bad.exit_code == 2 and "--jobs must be at least 1" in bad.output and "Traceback" not in bad.output


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


def test_run_all_reports_an_internal_error_in_one_line_and_goes_on(tmp_path, monkeypatch):
    """A bug in one spec's extra pages costs neither its report nor the other specs; exit 2, no traceback."""
    import harmoni_bayes.cli as cli

    specs = tmp_path / "models"
    specs.mkdir()
    for name in ("harmoni2_pfs_pdl1", "harmoni2_pfs_histology"):
        (specs / f"{name}.toml").write_text((ROOT / "models" / f"{name}.toml").read_text())

    def broken_pages(spec, *args, **kwargs):
        if spec.stem == "harmoni2_pfs_pdl1":
            raise KeyError("No variable named 'os_hr'")

    monkeypatch.setattr(cli, "_extra_pages", broken_pages)
    reports = tmp_path / "r"
    res = CliRunner().invoke(
        app, ["run-all", str(specs), "--out", str(tmp_path / "o"), "--reports", str(reports), "--jobs", "1"]
    )
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert "harmoni2_pfs_pdl1.toml: its extra pages: internal error KeyError" in res.output
    assert "1 spec(s) failed: harmoni2_pfs_pdl1.toml" in res.output
    index = (reports / "index.html").read_text()
    assert "harmoni2_pfs_pdl1/report.html" in index and "harmoni2_pfs_histology/report.html" in index


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


def test_main_job_starts_the_costliest_specs_first(tmp_path):
    """run-all hands its pool the specs by falling MCMC cost, so the longest never starts last."""
    from harmoni_bayes.cli import _mcmc_fits

    models = ROOT / "models"

    def as_mcmc(name: str) -> Path:
        text = (models / name).read_text().replace('method = "exact"', 'method = "mcmc"')
        (tmp_path / name).write_text(text)
        return tmp_path / name

    one_line = _mcmc_fits(as_mcmc("harmoni2_os_forecast_one_line_now.toml"))  # fit + 4 priors + timeline
    classes = _mcmc_fits(models / "harmoni2_os_forecast_now.toml")  # four relationship blocks
    assert one_line > classes > _mcmc_fits(as_mcmc("nsclc_surrogacy.toml")) == 1
    assert _mcmc_fits(models / "nsclc_surrogacy.toml") == _mcmc_fits(models / "harmoni2_pfs_pdl1.toml") == 0  # exact
    broken = tmp_path / "broken.toml"
    broken.write_text("model = 'no_such_family'\n")
    assert _mcmc_fits(broken) == 0


def test_while_the_first_mcmc_spec_fills_the_compile_caches_free_workers_take_exact_specs():
    """``_pick``: the costliest pending spec, unless the first MCMC spec is still running; then the first spec
    without MCMC, so that no second worker compiles the same samplers at the same time (MCMC again if none is left).
    """
    from harmoni_bayes.cli import _pick

    costs = [5, 4, 4, 0, 0]
    assert _pick(costs, warming=False) == 0
    assert _pick(costs, warming=True) == 3
    assert _pick([4, 4], warming=True) == 0
    assert _pick([0, 0], warming=True) == 0
