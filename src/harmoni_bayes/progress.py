"""Progress of long work: a live display where stderr is a terminal, plain lines where it is not.

Long work is MCMC sampling (per chain), the specs of ``run-all`` and the tasks of a sweep.  On a terminal the
user sees PyMC's or nutpie's own per-chain bars and a ``rich`` bar of finished specs or tasks; anywhere else (a
log file, CI, a stream captured by pytest or by a main-job worker) one plain line when the work starts and one
when it ends, so a log stays readable and nothing is redrawn into it.

``HARMONI_PROGRESS=lines`` asks for plain lines on a terminal too, ``off`` for none (sweep workers run with
``off``: several processes drawing bars on one terminal would garble it, and the sweep reports each task).
``rich`` is imported only when a bar is drawn, so the CLI starts without it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Literal

PROGRESS_ENV = "HARMONI_PROGRESS"
"""Environment variable: ``lines`` (plain lines even on a terminal), ``off`` (nothing), else automatic."""

Mode = Literal["live", "lines", "off"]


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def mode() -> Mode:
    """How progress is shown now: ``live`` on a terminal, ``lines`` elsewhere, or as ``HARMONI_PROGRESS`` says."""
    asked = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if asked in ("lines", "off"):
        return "lines" if asked == "lines" else "off"
    return "live" if _isatty(sys.stderr) else "lines"


def say(text: str) -> None:
    """One progress line on stderr (nothing when progress is ``off``)."""
    if mode() != "off":
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def timed(what: str) -> Iterator[bool]:
    """Around work that can draw its own live display: yields True when it should (on a terminal); otherwise
    prints ``<what> ...`` before and ``... done in <n> s`` after it (not after a failure: the error says that).
    """
    m = mode()
    if m == "lines":
        say(f"{what} ...")
    start = time.perf_counter()
    yield m == "live"
    if m == "lines":
        say(f"... done in {time.perf_counter() - start:.0f} s")


class Tasks:
    """Units of work finishing one by one (specs, sweep tasks), each reported by a line.

    On a terminal, a ``rich`` bar (finished of total, elapsed time) with each line printed above it; elsewhere
    each line as it is.  Use as a context manager and call :meth:`done` once per finished unit.  Lines meant
    for stdout go there unless stdout is the same terminal (then above the bar, so the bar is not torn).
    """

    def __init__(self, total: int, what: str):
        self.total, self.what = total, what
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Tasks:
        if mode() == "live" and self.total > 1:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                redirect_stdout=False,
                redirect_stderr=False,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def print(self, text: str, err: bool = True) -> None:
        """A line of the work's output (always printed: it may be an error), above the bar when there is one."""
        if self._bar is not None and (err or _isatty(sys.stdout)):
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr if err else sys.stdout, flush=True)

    def done(self, text: str = "") -> None:
        """One unit finished; ``text`` (if any) says which and how it went."""
        if text:
            self.print(text)
        if self._bar is not None:
            self._bar.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


__all__ = ["PROGRESS_ENV", "Tasks", "mode", "say", "timed"]
