"""How a forecast moved between two dates: the same spec, evidence and seed, fitted as of each date.

:func:`compare_as_of` fits the spec at each date; :func:`write_comparison` writes, into one directory,

* ``<date>/``: each fit as a saved result (posterior.nc, summary.json, summary.csv);
* ``comparison.json``: the key quantities and probabilities at each date, and the evidence rows added
  and dropped between the dates;
* ``comparison.md`` and ``comparison.html``: the same as readable tables, with a figure of the two
  posteriors of the headline quantity (the HTML embeds it, so it works offline).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .files import atomic_write
from .results import Result, save_result
from .run import run_spec

# The quantity whose posteriors are drawn, by model family.
HEADLINE_QUANTITY = {
    "os_forecast": "os_hr",
    "random_effects": "hr_pooled",
    "subgroups": "hr_overall",
    "surrogacy": "slope",
}


@dataclass
class Comparison:
    dates: list[str]
    results: list[Result]

    @property
    def quantity(self) -> str:
        return HEADLINE_QUANTITY.get(self.results[0].summary.model, self.results[0].summary.quantities[0]["name"])

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
        first, last = (set(r.summary.evidence_rows) for r in (self.results[0], self.results[-1]))
        return {"added": sorted(last - first), "dropped": sorted(first - last)}

    def to_dict(self) -> dict:
        return {
            "spec": self.results[0].summary.spec,
            "dates": self.dates,
            "summaries": {d: r.summary.to_dict() for d, r in zip(self.dates, self.results, strict=True)},
            "evidence": self.evidence_changes(),
        }


def compare_as_of(spec, dates: list[str], **run_kwargs) -> Comparison:
    """Fit ``spec`` as of each date (same evidence and seed) and collect the results."""
    if len(dates) < 2:
        from .errors import SpecError

        raise SpecError("a comparison needs at least two --as-of dates")
    return Comparison(dates=list(dates), results=[run_spec(spec, as_of=d, **run_kwargs) for d in dates])


def write_comparison(comp: Comparison, out_dir: str | Path) -> list[Path]:
    from .figures import compare_posteriors, figure_png_base64

    out = Path(out_dir)
    for date, r in zip(comp.dates, comp.results, strict=True):
        save_result(r, out / date)
    table = comp.table()
    changes = comp.evidence_changes()
    fig = compare_posteriors(comp.results, comp.quantity)
    png = figure_png_base64(fig)
    title = f"{comp.results[0].spec.get('title', comp.results[0].summary.spec)}: as of {' vs '.join(comp.dates)}"

    md = [f"# {title}", "", "| | " + " | ".join(comp.dates) + " |", "|---" * (len(comp.dates) + 1) + "|"]
    md += [
        f"| {name} | " + " | ".join(str(v) for v in row) + " |"
        for name, row in zip(table.index, table.values, strict=True)
    ]
    md += [""]
    for kind, rows_ in changes.items():
        md += [f"## Evidence rows {kind}", *([f"- {r}" for r in rows_] or ["- none"]), ""]
    md += [f"Figure: posteriors of `{comp.quantity}` at each date (see comparison.html).", ""]

    rows = "".join(
        f"<tr><th>{html.escape(str(i))}</th>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for i, row in zip(table.index, table.values, strict=True)
    )
    head = "".join(f"<th>{html.escape(d)}</th>" for d in comp.dates)
    lists = "".join(
        f"<h2>Evidence rows {k}</h2><ul>"
        + ("".join(f"<li>{html.escape(r)}</li>" for r in v) or "<li>none</li>")
        + "</ul>"
        for k, v in changes.items()
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}td,th{padding:.2rem .6rem;"
        "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><tr><th></th>{head}</tr>{rows}</table>{lists}"
        f"<h2>Posteriors of {html.escape(comp.quantity)}</h2>"
        f"<img alt='posteriors of {html.escape(comp.quantity)} at each date' src='data:image/png;base64,{png}'>"
        "</body></html>"
    )
    paths = [out / "comparison.json", out / "comparison.md", out / "comparison.html"]
    atomic_write(paths[0], json.dumps(comp.to_dict(), indent=2) + "\n")
    atomic_write(paths[1], "\n".join(md))
    atomic_write(paths[2], page)
    return paths
