"""How a forecast moved between two dates: the same spec, evidence and seed, fitted as of each date.

:func:`compare_as_of` fits the spec at each date; :func:`write_comparison` writes, into one directory,

* ``<date>/``: each fit as a saved result (posterior.nc, summary.json, summary.csv);
* ``comparison.json``: the key quantities and probabilities at each date, and the evidence rows added
  and dropped between the dates;
* ``comparison.md`` and ``comparison.html``: the same as readable tables, with a figure of the two
  posteriors of the family's headline quantity (the HTML embeds it, so it works offline, and uses the same
  template styles as the reports).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import SpecError
from ..files import atomic_write
from ..results import Result, save_result
from ..run import run_spec
from .build import presentation_of
from .figures import compare_posteriors, figure_data_uri
from .render import render_comparison_html


@dataclass
class Comparison:
    """The same spec fitted at several as-of dates."""

    dates: list[str]
    results: list[Result]

    @property
    def quantity(self) -> str:
        """The family's headline quantity (else the first quantity), drawn at each date."""
        first = self.results[0].summary
        return presentation_of(first.model).headline_quantity or first.quantities[0]["name"]

    def table(self) -> pd.DataFrame:
        """One row per quantity or probability, one column per date (medians [95% interval] or values)."""
        rows: dict[str, dict] = {}
        for date, r in zip(self.dates, self.results, strict=True):
            for q in r.summary.quantities:
                rows.setdefault(q["name"], {})[date] = f"{q['median']:.3g} [{q['q2.5']:.3g}, {q['q97.5']:.3g}]"
            for p in r.summary.probabilities:
                rows.setdefault(p["name"], {})[date] = f"{p['value']:.3f} (MCSE {p['mcse']:.3f})"
        return pd.DataFrame.from_dict(rows, orient="index", columns=self.dates).fillna("not available")

    def evidence_changes(self) -> dict[str, list[str]]:
        """Evidence row ids added and dropped between the first and the last date."""
        first, last = (set(r.summary.evidence_rows) for r in (self.results[0], self.results[-1]))
        return {"added": sorted(last - first), "dropped": sorted(first - last)}

    def to_dict(self) -> dict:
        """The summaries at each date and the evidence changes, for ``comparison.json``."""
        return {
            "spec": self.results[0].summary.spec,
            "dates": self.dates,
            "summaries": {d: r.summary.to_dict() for d, r in zip(self.dates, self.results, strict=True)},
            "evidence": self.evidence_changes(),
        }


def compare_as_of(spec: Any, dates: list[str], **run_kwargs: Any) -> Comparison:
    """Fit ``spec`` as of each date (same evidence and seed) and collect the results."""
    if len(dates) < 2:
        raise SpecError("a comparison needs at least two --as-of dates")
    return Comparison(dates=list(dates), results=[run_spec(spec, as_of=d, **run_kwargs) for d in dates])


def write_comparison(comp: Comparison, out_dir: str | Path) -> list[Path]:
    """Write each date's result and ``comparison.json``, ``comparison.md`` and ``comparison.html``."""
    out = Path(out_dir)
    for date, r in zip(comp.dates, comp.results, strict=True):
        save_result(r, out / date)
    table = comp.table()
    changes = comp.evidence_changes()
    fig = compare_posteriors(comp.results, comp.quantity)
    try:
        figure = figure_data_uri(fig)
    finally:
        fig.clf()
    title = f"{comp.results[0].spec.get('title', comp.results[0].summary.spec)}: as of {' vs '.join(comp.dates)}"
    rows = [(str(name), [str(v) for v in row]) for name, row in zip(table.index, table.values, strict=True)]

    md = [f"# {title}", "", "| | " + " | ".join(comp.dates) + " |", "|---" * (len(comp.dates) + 1) + "|"]
    md += [f"| {name} | " + " | ".join(row) + " |" for name, row in rows]
    md += [""]
    for kind, rows_ in changes.items():
        md += [f"## Evidence rows {kind}", *([f"- `{r}`" for r in rows_] or ["- none"]), ""]
    md += [f"Figure: posteriors of `{comp.quantity}` at each date (see comparison.html).", ""]
    page = render_comparison_html(
        title=title,
        spec=comp.results[0].summary.spec,
        dates=comp.dates,
        rows=rows,
        changes=changes,
        quantity=comp.quantity,
        figure=figure,
    )
    paths = [out / "comparison.json", out / "comparison.md", out / "comparison.html"]
    atomic_write(paths[0], json.dumps(comp.to_dict(), indent=2) + "\n")
    atomic_write(paths[1], "\n".join(md))
    atomic_write(paths[2], page)
    return paths
