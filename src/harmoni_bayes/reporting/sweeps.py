"""Pages for sweeps of one spec: the readout timeline and the prior-sensitivity grid.

:func:`sweep_figure` draws the headline quantity per step (median, 50% and 95% bands): against date for a
timeline, each step labelled with the readout that caused it; as a strip of intervals for a sensitivity
grid.  :func:`write_sweep` writes ``<kind>.json``, ``<kind>.csv`` and ``<kind>.html`` (the reports' template
and styles) into one folder, each atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..files import atomic_write
from ..scorecard import Scorecard
from ..timeline import Sweep
from .build import presentation_of
from .figures import POSTERIOR, _hr_axis, _new_figure, figure_data_uri
from .format import fmt_estimate, fmt_probability, hr_interval
from .plain import describe_quantity
from .render import _env

__all__ = ["sweep_figure", "sweep_figure_data", "write_scorecard", "write_sweep"]


def sweep_figure_data(sweep: Sweep) -> pd.DataFrame:
    """The plotted numbers: one row per fitted step (``step``, ``readout``, median and band bounds)."""
    df = sweep.table()
    return df[df["median"].notna()].reset_index(drop=True)


def sweep_figure(sweep: Sweep, ax=None) -> Figure:
    """The headline quantity per step: median with 50% (dark) and 95% (light) bands."""
    df = sweep_figure_data(sweep)
    hr_scale = sweep.quantity.startswith(("hr", "os_hr"))
    if sweep.kind == "timeline":
        if ax is None:
            fig, (ax,) = _new_figure(8.0, 4.6)
        else:
            fig = ax.figure
        x = [dt.date.fromisoformat(s) for s in df["step"]]
        ends = [*x[1:], max(x[-1] + dt.timedelta(days=60), dt.date.today())] if x else []
        for x0, x1, r in zip(x, ends, df.itertuples(index=False), strict=True):
            ax.fill_between([x0, x1], r._5, r._6, color=POSTERIOR, alpha=0.15, lw=0)
            ax.fill_between([x0, x1], r.q25, r.q75, color=POSTERIOR, alpha=0.35, lw=0)
            ax.plot([x0, x1], [r.median, r.median], color=POSTERIOR, lw=2)
            ax.annotate(
                r.readout if len(r.readout) <= 48 else r.readout[:45] + "...",
                xy=(x0, r._6),
                xytext=(2, 4),
                textcoords="offset points",
                fontsize=7,
                rotation=20,
                color="#333333",
            )
        if hr_scale and len(df):
            _hr_axis(ax, min(df["q2.5"].min(), 0.9), max(df["q97.5"].max(), 1.1), "y")
        ax.set_ylabel(f"{describe_quantity(sweep.quantity, _names(sweep))}")
        ax.set_xlabel("as of (disclosure date)")
        fig.autofmt_xdate()
    else:
        if ax is None:
            fig, (ax,) = _new_figure(7.4, 0.5 * max(len(df), 1) + 1.4)
        else:
            fig = ax.figure
        y = np.arange(len(df))[::-1]
        ax.hlines(y, df["q2.5"], df["q97.5"], color=POSTERIOR, lw=1.5, alpha=0.5)
        ax.hlines(y, df["q25"], df["q75"], color=POSTERIOR, lw=4)
        ax.plot(df["median"], y, "o", color=POSTERIOR)
        ax.set_yticks(y, list(df["step"]))
        if hr_scale and len(df):
            _hr_axis(ax, min(df["q2.5"].min(), 0.9), max(df["q97.5"].max(), 1.1))
        ax.set_xlabel(describe_quantity(sweep.quantity, _names(sweep)))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _names(sweep: Sweep) -> Mapping[str, str]:
    return presentation_of(str(sweep.spec.get("model"))).names


def write_sweep(sweep: Sweep, out_dir: str | Path) -> list[Path]:
    """Write ``<kind>.json``, ``<kind>.csv`` and a self-contained ``<kind>.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = sweep_figure(sweep)
    try:
        figure = figure_data_uri(fig)
    finally:
        fig.clf()
    table = sweep.table()
    pname = f"P({sweep.quantity}<1)"
    rows = [
        {
            "step": r["step"],
            "readout": r["readout"],
            "estimate": hr_interval(r["median"], r["q2.5"], r["q97.5"]) if _ok(r["median"]) else "",
            "iqr": f"{fmt_estimate(r['q25'])} to {fmt_estimate(r['q75'])}" if _ok(r["q25"]) else "",
            "p": fmt_probability(r[pname]) if _ok(r[pname]) else "",
            "rows": "" if not _ok(r["rows"]) else str(int(r["rows"])),
            "error": r["error"],
        }
        for r in table.to_dict("records")
    ]
    steps = [s.to_dict() for s in sweep.steps]
    page = (
        _env(True)
        .get_template("sweep.html.j2")
        .render(
            s=sweep,
            title=f"{sweep.title}: {'readout timeline' if sweep.kind == 'timeline' else 'prior sensitivity'}",
            quantity=describe_quantity(sweep.quantity, _names(sweep)),
            pname=pname,
            rows=rows,
            steps=steps,
            figure=figure,
        )
    )
    paths = [out / f"{sweep.kind}.json", out / f"{sweep.kind}.csv", out / f"{sweep.kind}.html"]
    atomic_write(paths[0], json.dumps(sweep.to_dict(), indent=2, allow_nan=False, default=_json_default) + "\n")
    atomic_write(paths[1], table.to_csv(index=False))
    atomic_write(paths[2], page)
    return paths


def _ok(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_scorecard(card: Scorecard, out_dir: str | Path) -> list[Path]:
    """Write ``scorecard.json``, ``scorecard.csv`` and a self-contained ``scorecard.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "readout": f"{r.trial} {r.endpoint} HR {fmt_estimate(r.hr)} "
            f"(SE {r.se:.3f}; {r.source_kind}, {r.disclosed})",
            "forecaster": s.forecaster,
            "median": fmt_estimate(s.median_hr),
            "pit": f"{s.pit:.2f}",
            "in_50": "yes" if s.in_50 else "no",
            "in_95": "yes" if s.in_95 else "no",
            "log_density": f"{s.log_density:.2f}",
        }
        for r in card.readouts
        for s in r.scores
    ]
    page = _env(True).get_template("scorecard.html.j2").render(c=card, rows=rows)
    paths = [out / "scorecard.json", out / "scorecard.csv", out / "scorecard.html"]
    atomic_write(paths[0], json.dumps(card.to_dict(), indent=2, allow_nan=False, default=_json_default) + "\n")
    atomic_write(paths[1], card.table().to_csv(index=False))
    atomic_write(paths[2], page)
    return paths
