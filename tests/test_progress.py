"""Progress of long work: live bars on a terminal, plain lines elsewhere, nothing in sweep workers."""

from __future__ import annotations

import io
import sys
import types

import pytest

from harmoni_bayes import progress
from harmoni_bayes.config import SamplerConfig
from harmoni_bayes.progress import PROGRESS_ENV, Tasks, timed


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def stderr(monkeypatch):
    """``stderr(tty)``: point sys.stderr at a fresh stream (a terminal or not) and return it.

    Called in the test body: pytest puts its own capture back on sys.stderr between a fixture and the test.
    """
    monkeypatch.delenv(PROGRESS_ENV, raising=False)

    def install(tty: bool) -> io.StringIO:
        stream = _Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return install


def test_mode_follows_the_terminal_and_the_environment(stderr, monkeypatch):
    stderr(tty=True)
    assert progress.mode() == "live"
    monkeypatch.setenv(PROGRESS_ENV, "lines")
    assert progress.mode() == "lines"
    monkeypatch.setenv(PROGRESS_ENV, "OFF")
    assert progress.mode() == "off"
    stderr(tty=False)
    monkeypatch.setenv(PROGRESS_ENV, "auto")
    assert progress.mode() == "lines"


def test_timed_prints_a_line_before_and_after_unless_a_live_display_shows_it(stderr, monkeypatch):
    terminal = stderr(tty=True)
    with timed("sampling 4 chains") as live:
        assert live
    assert terminal.getvalue() == ""  # the sampler draws its own bars
    log = stderr(tty=False)
    with timed("sampling 4 chains") as live:
        assert not live
    lines = log.getvalue().splitlines()
    assert lines[0] == "sampling 4 chains ..." and lines[1].startswith("... done in ") and lines[1].endswith(" s")
    with pytest.raises(RuntimeError), timed("failing"):
        raise RuntimeError("boom")
    assert log.getvalue().splitlines()[-1] == "failing ..."  # no "done" after a failure
    monkeypatch.setenv(PROGRESS_ENV, "off")
    with timed("quiet"):
        pass
    assert "quiet" not in log.getvalue()


def test_sample_shows_the_sampler_bars_on_a_terminal_and_lines_elsewhere(stderr, monkeypatch):
    """inference.sample asks PyMC (or nutpie through it) for its per-chain bars only on a terminal."""
    from harmoni_bayes import inference

    calls = []
    fake = types.SimpleNamespace(sample=lambda **kw: calls.append(kw) or "idata")
    monkeypatch.setitem(sys.modules, "pymc", fake)

    class Model:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    config = SamplerConfig(draws=50, tune=60, chains=2, backend="nutpie")
    terminal = stderr(tty=True)
    assert inference.sample(Model(), config) == "idata"
    assert calls[-1]["progressbar"] is True and terminal.getvalue() == ""
    log = stderr(tty=False)
    inference.sample(Model(), config)
    assert calls[-1]["progressbar"] is False
    assert log.getvalue().splitlines()[0] == "sampling 2 chains x (60 tune + 50 draws) with nutpie ..."


def test_tasks_draw_a_bar_on_a_terminal_with_each_line_above_it(stderr):
    terminal = stderr(tty=True)
    with Tasks(3, "fits") as bar:
        for i in range(3):
            bar.done(f"[{i + 1}/3] fit {i} ok")
    out = terminal.getvalue()
    assert all(f"[{i + 1}/3] fit {i} ok" in out for i in range(3))
    assert "fits" in out and "3/3" in out  # the bar's description and count


def test_tasks_are_plain_lines_in_a_log_and_keep_stdout_lines_on_stdout(stderr, monkeypatch):
    log = stderr(tty=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    with Tasks(2, "specs") as bar:
        bar.print("wrote reports/a", err=False)
        bar.done("[1/2] a")
        bar.print("error: b.toml: bad", err=True)
        bar.done()
    assert log.getvalue() == "[1/2] a\nerror: b.toml: bad\n"
    assert out.getvalue() == "wrote reports/a\n"
    monkeypatch.setenv(PROGRESS_ENV, "off")  # work's own lines are never silenced: they may be errors
    with Tasks(1, "specs") as bar:
        bar.print("error: c.toml: bad")
    assert log.getvalue().endswith("error: c.toml: bad\n")
