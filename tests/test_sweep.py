"""The sweep path on Dask (a 2-worker LocalCluster and a few tiny tasks), the readout timeline and the
prior-sensitivity grid built on it, and their bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.errors import SpecError
from harmoni_bayes.specs import load_spec
from harmoni_bayes.sweep import SweepError, Task, run_sweep
from harmoni_bayes.timeline import build_timeline, evidence_changes, read_grid
from helpers import REPO

# Workers are other processes: send this module's task functions by value, not by an import they cannot do.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

META = REPO / "models" / "ivonescimab_pfs_meta.toml"
PDL1 = REPO / "models" / "harmoni2_pfs_pdl1.toml"
HISTOLOGY = REPO / "models" / "harmoni2_pfs_histology.toml"


def square(x: int) -> int:
    if x == 2:
        raise ValueError("two is not allowed")
    if x == 3:
        os._exit(1)  # the worker process dies mid-task
    return x * x


def test_a_failing_task_and_a_dying_worker_lose_only_their_own_task():
    lines: list[str] = []
    out = run_sweep([Task(f"t{i}", square, {"x": i}) for i in range(6)], workers=2, progress=lines.append)
    by_key = {o.key: o for o in out}
    assert [o.key for o in out] == [f"t{i}" for i in range(6)]  # in the order given
    assert {k for k, o in by_key.items() if o.ok} == {"t0", "t1", "t4", "t5"}
    assert by_key["t5"].value == 25
    assert "two is not allowed" in by_key["t2"].error and by_key["t2"].inputs["x"] == 2
    assert "died" in by_key["t3"].error and by_key["t3"].inputs["x"] == 3
    assert len(lines) == 6 and lines[-1].startswith("[6/6]")


def where_and_progress(x: int) -> tuple[int, int, str | None]:
    if x == 2:
        raise ValueError("two is not allowed")
    return x * x, os.getpid(), os.environ.get("HARMONI_PROGRESS")


@pytest.mark.parametrize("light", [True, False])
def test_a_light_sweep_of_one_worker_runs_in_this_process(light, monkeypatch):
    """Exact fits take less than a worker process's imports: with one local worker a light sweep runs it here,
    through Dask all the same (a raising task is still its own outcome), and hands the environment back as it was.
    """
    monkeypatch.setenv("HARMONI_PROGRESS", "lines")
    out = run_sweep([Task(f"t{i}", where_and_progress, {"x": i}) for i in range(4)], workers=1, light=light)
    assert [o.ok for o in out] == [True, True, False, True]
    assert "two is not allowed" in out[2].error
    assert [o.value[0] for o in out if o.ok] == [0, 1, 9]
    pids = {o.value[1] for o in out if o.ok}
    assert (pids == {os.getpid()}) == light, pids
    assert {o.value[2] for o in out if o.ok} == {"off"}  # tasks print no progress of their own
    assert os.environ["HARMONI_PROGRESS"] == "lines"


def test_bad_sweeps_are_refused_before_starting():
    with pytest.raises(SweepError, match="more than once"):
        run_sweep([Task("a", square, {"x": 1}), Task("a", square, {"x": 1})])
    with pytest.raises(SweepError, match="at least 1"):
        run_sweep([Task("a", square, {"x": 1})], workers=0)


def test_an_unreachable_scheduler_is_named_with_the_way_out():
    with pytest.raises(SweepError) as err:
        run_sweep([Task("a", square, {"x": 1})], scheduler="tcp://127.0.0.1:9")
    assert "tcp://127.0.0.1:9" in err.value.message() and "--scheduler" in err.value.message()


def test_evidence_changes_follow_the_disclosures():
    changes = evidence_changes(load_spec(META))
    dates = [d for d, *_ in changes]
    assert dates == sorted(dates) and len(dates) >= 3
    # one more trial at each of the first steps, and a report replaced rather than added later on
    assert [len(rows) for _, rows, _, _ in changes][:2] == [1, 2]
    assert any(dropped for *_, dropped in changes)


def test_timeline_of_unchanging_evidence_is_refused():
    with pytest.raises(SpecError, match="never changes"):
        build_timeline(HISTOLOGY)


@pytest.mark.slow
def test_timeline_and_sensitivity_through_the_cli(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["timeline", str(META), "--out", str(tmp_path / "tl"), "--workers", "2"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "tl" / "timeline.json").read_text())
    assert data["method"] == "exact" and len(data["steps"]) >= 3
    steps = data["steps"]
    assert all(s["summary"] and s["bands"]["q2.5"] <= s["bands"]["q50"] <= s["bands"]["q97.5"] for s in steps)
    # each step's numbers are those of a fit of the spec as of that date
    assert [s["summary"]["as_of"] for s in steps] == [s["label"] for s in steps]
    page = (tmp_path / "tl" / "timeline.html").read_text()
    assert "data:image/svg+xml;base64," in page and steps[0]["readout"] in page

    grid = tmp_path / "grid.toml"
    grid.write_text('[[setting]]\nlabel = "wide tau"\npriors.tau = { dist = "half_cauchy", beta = 0.5 }\n')
    res = runner.invoke(
        app, ["sensitivity", str(PDL1), "--grid", str(grid), "--out", str(tmp_path / "s"), "--workers", "2"]
    )
    assert res.exit_code == 0, res.output
    sens = json.loads((tmp_path / "s" / "sensitivity.json").read_text())
    assert [s["label"] for s in sens["steps"]] == ["as specified", "wide tau"]
    assert sens["steps"][1]["summary"]["quantities"] != sens["steps"][0]["summary"]["quantities"]


def test_grid_with_unknown_keys_lists_every_problem(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        "[[setting]]\nlabel = 'a'\npriors.tau = { dist = 'half_normal', sigma = 0.25 }\n"
        "[[setting]]\nlabel = 'b'\npriors.tua = { dist = 'half_normal', sigma = 0.5 }\n"
        "[[setting]]\nlabel = 'c'\npriors.tau = { dist = 'half_normal', sigma = -1 }\n"
    )
    with pytest.raises(SpecError) as err:
        read_grid(grid, load_spec(PDL1))
    text = err.value.message()
    assert "setting 2 (b)" in text and "tua" in text and "setting 3 (c)" in text and "setting 1" not in text
    res = CliRunner().invoke(app, ["sensitivity", str(PDL1), "--grid", str(grid), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_cli_names_an_unreachable_scheduler(tmp_path):
    res = CliRunner().invoke(
        app, ["timeline", str(META), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert res.exit_code == 2 and "tcp://127.0.0.1:9" in res.output and "Traceback" not in res.output
    assert not Path(tmp_path / "o").exists()


def test_every_family_sensitivity_setting_is_a_valid_spec():
    """The settings the main job fits (ModelFamily.sensitivity) validate against every shipped spec."""
    from harmoni_bayes.models import get_family
    from harmoni_bayes.specs import merge_changes, parse_spec, spec_to_dict

    for path in sorted((REPO / "models").glob("*.toml")):
        spec = load_spec(path)
        for label, changes in get_family(spec.model).sensitivity:
            changed = parse_spec(merge_changes(spec_to_dict(spec), changes))
            # the setting reached the prior it names, and nothing else
            key = next(iter(changes["priors"]))
            assert getattr(changed.priors, key).model_dump() == {**changes["priors"][key]} | {
                k: v for k, v in getattr(changed.priors, key).model_dump().items() if k not in changes["priors"][key]
            }, (path.name, label)
            assert spec_to_dict(changed) | {"priors": None} == spec_to_dict(spec) | {"priors": None}


_SWEEP_SCRIPT = """
import os, sys
import cloudpickle
from harmoni_bayes.sweep import Task, run_sweep

def task(x):
    if x == 2:
        raise ValueError("two is not allowed")
    if x == 3:
        os._exit(1)  # the worker dies mid-task
    return x

if __name__ == "__main__":  # worker processes are spawned: they import this file too
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    print([o.ok for o in run_sweep([Task(f"t{i}", task, {"x": i}) for i in range(5)], workers=2)])
"""


def _no_traceback(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr


def test_a_sweep_prints_no_traceback_for_a_failing_task_a_dying_worker_or_its_shutdown(tmp_path):
    """What reaches the terminal (fd 2 of every process, workers included): our lines, no Dask traceback.

    A task's exception is its outcome (returned from the worker), so the worker has no failed task to log with
    its traceback; the cluster closes after its client.
    """
    script = tmp_path / "sweep_script.py"
    script.write_text(_SWEEP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    _no_traceback(res)
    assert res.stdout.strip() == "[True, True, False, False, True]"
    assert "t2 FAILED: ValueError: two is not allowed" in res.stderr and "t3 FAILED: the worker" in res.stderr


@pytest.mark.slow
def test_the_timeline_command_prints_no_traceback(tmp_path):
    """The command an earlier report saw a Dask traceback from at cluster shutdown (not reproduced since)."""
    exe = Path(sys.executable).parent / "harmoni-bayes"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [str(exe), "timeline", str(REPO / "models" / "ivonescimab_pfs_meta_now.toml"), "--out", str(tmp_path)]
    res = subprocess.run([*cmd, "--workers", "2"], capture_output=True, text=True, env=env, timeout=900)
    _no_traceback(res)
    assert "wrote" in res.stdout and (tmp_path / "timeline.html").exists()


def test_timeline_bands_read_one_element_of_an_indexed_variable():
    """A headline like the PoS family's ``hr_new_trial[PFS]`` is one element of a variable with a dimension."""
    from types import SimpleNamespace

    import numpy as np
    import xarray as xr

    from harmoni_bayes.timeline import _draws

    values = np.stack([np.full((2, 5), 0.5), np.full((2, 5), 0.9)], axis=-1)  # chain, draw, endpoint
    post = xr.Dataset({"hr_new_trial": (("chain", "draw", "endpoint"), values)}, coords={"endpoint": ["PFS", "OS"]})
    idata = SimpleNamespace(posterior=post)
    np.testing.assert_array_equal(_draws(idata, "hr_new_trial[OS]"), np.full(10, 0.9))
    np.testing.assert_array_equal(_draws(idata, "hr_new_trial[PFS]"), np.full(10, 0.5))
    assert _draws(idata, "hr_new_trial[DFS]") is None and _draws(idata, "other") is None
