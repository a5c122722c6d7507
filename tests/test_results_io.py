"""Result I/O under damage, crashes and bad options: one clear message and exit 2, never a traceback or a mix.

A result folder is written as one unit with a manifest of checksums, and ``posterior.nc`` carries the
summary, so a truncated, emptied, garbled or hand-edited file is refused by ``report``.  Bad ``run``
options are refused before any fitting.  A run killed at a random moment leaves the old result or the new
one, never a mix, and no orphaned sampler processes.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harmoni_bayes import results as results_mod
from harmoni_bayes.cli import app
from harmoni_bayes.constants import STAT_KEYS
from harmoni_bayes.errors import ResultError
from harmoni_bayes.results import load_result, save_result
from harmoni_bayes.run import run_spec
from harmoni_bayes.summaries import Summary

REPO = Path(__file__).resolve().parents[1]
PDL1 = REPO / "models" / "harmoni2_pfs_pdl1.toml"
META = REPO / "models" / "ivonescimab_pfs_meta.toml"
FORECAST = REPO / "models" / "harmoni2_os_forecast_one_line_now.toml"
CLI = [sys.executable, "-m", "harmoni_bayes.cli"]


@pytest.fixture(scope="module")
def saved(exact_result_dirs) -> Path:
    return exact_result_dirs["harmoni2_pfs_pdl1"]


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    """The saved result alone (the shared folder may also hold reports written by other tests)."""
    d = tmp_path / "copy"
    d.mkdir()
    for name in (*results_mod.RESULT_FILES, results_mod.MANIFEST):
        shutil.copy2(saved / name, d / name)
    return d


def _report(d: Path):
    return CliRunner().invoke(app, ["report", str(d)])


def _refused(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    text = res.output.lower()
    for w in words:
        assert w.lower() in text, res.output


# -- damaged results ---------------------------------------------------------------------------------


def test_an_intact_result_reports(copy):
    res = _report(copy)
    assert res.exit_code == 0, res.output
    assert (copy / "report.html").exists()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: (d / "posterior.nc").write_bytes((d / "posterior.nc").read_bytes()[:500]), ["posterior.nc"]),
        (lambda d: (d / "posterior.nc").write_bytes(b""), ["posterior.nc"]),
        (lambda d: (d / "summary.json").write_text("not json {"), ["summary.json"]),
        (lambda d: (d / "summary.json").write_text("{}"), ["summary.json"]),
        (lambda d: (d / "summary.json").write_text('{"spec": 1, "quantities": "x"}'), ["summary.json"]),
        (lambda d: (d / "summary.json").unlink(), ["summary.json", "missing"]),
        (lambda d: (d / "posterior.nc").unlink(), ["no saved result"]),
    ],
    ids=["truncated-nc", "empty-nc", "garbage-json", "empty-json", "wrong-types", "missing-json", "missing-nc"],
)
def test_damaged_result_is_refused_with_one_message(copy, damage, words):
    damage(copy)
    _refused(_report(copy), *words)
    assert not (copy / "report.html").exists()


@pytest.mark.parametrize("with_manifest", [True, False])
def test_a_hand_edited_number_is_noticed(copy, with_manifest):
    if not with_manifest:  # results written before manifests: the summary inside posterior.nc still catches it
        (copy / "manifest.json").unlink()
    s = json.loads((copy / "summary.json").read_text())
    s["probabilities"][0]["value"] = 0.5
    (copy / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    _refused(_report(copy), "summary.json")


def test_load_result_raises_result_error(copy):
    (copy / "summary.json").write_text("[]")
    with pytest.raises(ResultError, match=r"summary\.json"):
        load_result(copy)


# -- written as one unit -----------------------------------------------------------------------------


def test_result_files_have_ordinary_permissions(saved):
    for name in ("posterior.nc", "summary.json", "summary.csv", "manifest.json"):
        mode = stat.S_IMODE((saved / name).stat().st_mode)
        assert mode & 0o044 == 0o044, (name, oct(mode))  # readable by group and others, as other outputs


CSV_COLUMNS = ["spec", "as_of", "kind", "name", "scale", *STAT_KEYS, "log_mean", "log_sd", "probability", "mcse"]


def _same(a, b) -> bool:
    return (b is None and pd.isna(a)) or a == pytest.approx(b, rel=1e-12)


def test_summary_csv_is_tidy_with_spec_as_of_and_probabilities_in_their_own_column(saved):
    summary = json.loads((saved / "summary.json").read_text())
    df = pd.read_csv(saved / "summary.csv", dtype={"as_of": str})
    assert list(df.columns) == CSV_COLUMNS
    assert (df.spec == summary["spec"]).all() and summary["as_of"] and (df.as_of == summary["as_of"]).all()
    q, p = df[df.kind == "quantity"].set_index("name"), df[df.kind == "probability"].set_index("name")
    assert len(q) + len(p) == len(df)
    assert list(q.index) == [x["name"] for x in summary["quantities"]]
    assert list(p.index) == [x["name"] for x in summary["probabilities"]] and len(p)
    for x in summary["quantities"]:
        assert q.loc[x["name"], "scale"] == x["scale"]
        assert all(_same(q.loc[x["name"], k], x[k]) for k in STAT_KEYS), x
    for x in summary["probabilities"]:
        assert _same(p.loc[x["name"], "probability"], x["value"]) and _same(p.loc[x["name"], "mcse"], x["mcse"])
    assert p[["scale", *STAT_KEYS]].isna().all().all()  # a probability is never written as a mean
    assert q[["probability", "mcse"]].isna().all().all()


def test_summary_csv_of_a_fit_on_all_evidence_has_a_blank_as_of(saved):
    summary = Summary.from_dict(json.loads((saved / "summary.json").read_text()))
    summary.as_of = None
    text = summary.to_frame().to_csv(index=False)
    df = pd.read_csv(io.StringIO(text))
    assert list(df.columns) == CSV_COLUMNS and df.as_of.isna().all() and (df.spec == summary.spec).all()
    # and summary.json's contract is unchanged: probabilities keep "value", quantities keep their statistics
    d = summary.to_dict()
    assert all(set(x) == {"name", "value", "mcse"} for x in d["probabilities"])
    base, extra = {"name", "scale", *STAT_KEYS}, {"log_mean", "log_sd", "infinite"}  # HR scales: log moments
    assert all(base <= set(x) <= base | extra for x in d["quantities"])


_SAVE_AND_REPORT = """
import os, stat, sys
os.umask(int(sys.argv[1], 8))
from harmoni_bayes.reporting import write_report
from harmoni_bayes.results import save_result
from harmoni_bayes.run import run_spec
out = save_result(run_spec(sys.argv[2], method="exact"), sys.argv[3])
write_report(out, fmt="all")
save_result(run_spec(sys.argv[2], method="exact"), sys.argv[3])  # replacing a result: new files again
write_report(out, fmt="all")
for p in sorted([out, *out.iterdir()]):
    print(p.name, oct(stat.S_IMODE(p.stat().st_mode)))
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [("022", 0o644, 0o755), ("027", 0o640, 0o750)])
def test_every_output_file_has_the_mode_of_an_ordinary_file(tmp_path, umask, file_mode, dir_mode):
    """posterior.nc, summaries, manifest and reports: 0666 less the umask (0644 under 022), never mkstemp's 0600."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-c", _SAVE_AND_REPORT, umask, str(PDL1), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    modes = dict(line.split() for line in proc.stdout.splitlines())
    expected_files = {"posterior.nc", "summary.json", "summary.csv", "manifest.json", "report.html", "report.md"}
    assert expected_files <= set(modes), modes
    assert modes.pop("r") == oct(dir_mode)
    assert modes.pop(".report_files", oct(dir_mode)) == oct(dir_mode)  # the Markdown report's figure folder
    assert modes == dict.fromkeys(modes, oct(file_mode)), modes


def test_a_crash_while_writing_leaves_the_old_result_intact(saved, tmp_path, monkeypatch):
    target = tmp_path / "out"
    shutil.copytree(saved, target)
    (target / "report.html").unlink(missing_ok=True)
    before = {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    new = run_spec(META, method="exact")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill between posterior.nc and summary.json

    monkeypatch.setattr(results_mod, "atomic_write", crash)
    with pytest.raises(KeyboardInterrupt):
        save_result(new, target)
    assert {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    assert load_result(target).summary.spec == "harmoni2_pfs_pdl1"


def test_a_rerun_replaces_the_whole_folder_and_cleans_leftovers(saved, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(saved, target)
    (target / "report.html").write_text("stale report of the old result")
    stale = tmp_path / ".out.partial-999999999-dead"  # left by a killed writer (no such pid)
    stale.mkdir()
    (stale / "posterior.nc").write_bytes(b"")
    save_result(run_spec(META, method="exact"), target)
    assert load_result(target).summary.spec == "ivonescimab_pfs_meta"
    assert not (target / "report.html").exists()  # a report of the old result would now be wrong
    assert not stale.exists()


# -- bad options, refused before fitting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--draws", "-5"], ["draws"]),
        (["--draws", str(10**12)], ["draws"]),
        (["--seed", "-1"], ["seed"]),
        (["--backend", "foo"], ["backend"]),
        (["--method", "bogus"], ["method"]),
        (["--as-of", "2025-02-30"], ["as_of"]),
    ],
)
def test_bad_run_options_are_refused(tmp_path, args, words):
    res = CliRunner().invoke(app, ["run", str(PDL1), "--out", str(tmp_path / "o"), *args])
    _refused(res, *words)
    assert not (tmp_path / "o").exists()


def test_out_must_be_a_folder_for_results(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("mine")
    _refused(CliRunner().invoke(app, ["run", str(PDL1), "--out", str(f), "--method", "exact"]), "is a file")
    assert f.read_text() == "mine"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    _refused(CliRunner().invoke(app, ["run", str(PDL1), "--out", str(mine), "--method", "exact"]), "other files")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_unwritable_out_is_refused_before_fitting(tmp_path, monkeypatch):
    # root ignores permission bits and tests cannot mount a read-only filesystem: stub the one check
    monkeypatch.setattr(results_mod, "_writable", lambda folder: False)
    _refused(CliRunner().invoke(app, ["run", str(PDL1), "--out", str(tmp_path / "o")]), "cannot write")


def test_huge_draws_in_a_spec_are_refused(tmp_path):
    text = PDL1.read_text().replace("draws = 1000", "draws = 1000000000000")
    spec = tmp_path / "huge.toml"
    spec.write_text(text)
    _refused(CliRunner().invoke(app, ["run", str(spec), "--out", str(tmp_path / "o")]), "sampler.draws")


def test_spec_with_a_byte_order_mark_is_read(tmp_path):
    spec = tmp_path / "bom.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + PDL1.read_bytes())
    res = CliRunner().invoke(app, ["run", str(spec), "--out", str(tmp_path / "o"), "--method", "exact"])
    assert res.exit_code == 0, res.output


# -- killed runs -------------------------------------------------------------------------------------------


def _processes_with(marker: str) -> list[int]:
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_a_killed_run_leaves_the_old_result_or_the_new_one(saved, tmp_path):
    """Kill `run --method exact` at random moments; each time the folder holds one whole result, or none."""
    target = tmp_path / "out"
    rng = random.Random(20250101)
    seen = set()
    for _ in range(6):
        proc = subprocess.Popen(
            [*CLI, "run", str(META), "--out", str(target), "--method", "exact"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if target.exists():
            seen.add(load_result(target).summary.spec)  # complete: loads and verifies
            res = _report(target)
            assert res.exit_code == 0, res.output
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
        assert all(".partial-" in p.name for p in leftovers)
    save_result(run_spec(META, method="exact"), target)  # the next writer cleans what killed ones left
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PR_SET_PDEATHSIG")
def test_killing_a_sampling_run_leaves_no_orphaned_workers(tmp_path):
    marker = f"HB_TEST_{uuid.uuid4().hex}"
    env = os.environ | {"HB_TEST_MARK": marker}
    run = [*CLI, "run", str(FORECAST), "--out", str(tmp_path / "o"), "--method", "mcmc", "--draws", "2000"]
    proc = subprocess.Popen([*run, "--backend", "pymc"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_processes_with(marker)) < 4 and time.monotonic() < deadline:  # main, fork server, chain workers
            time.sleep(0.5)
        assert len(_processes_with(marker)) >= 4, "the sampler never started its workers"
    finally:  # the run is killed whatever happened above: never left behind for a later test to trip over
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == []
