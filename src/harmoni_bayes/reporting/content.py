"""The frozen content of a report: every number as a :class:`Number` tied to its place in ``summary.json``.

:func:`harmoni_bayes.reporting.build.build_report` fills a :class:`ReportContent` once; the renderers only
format it.  Every displayed number carries the exact value from ``summary.json``, its displayed text, and a
reference to where the value lives there (``("quantities", "hr_pooled", "median")``,
``("probabilities", "P(hr_pooled<1)", "value")``, ``("diagnostics", "max_rhat")``), so tests and readers can
check every displayed number against the contract.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_INNER_PARENS = re.compile(r"\s*\([^()]*\)")


def reason_kind(reason: str) -> str:
    """The kind of a reason a row was left out: the reason without its parenthesised particulars (nested or not)
    and without what follows a semicolon (``"conflicting report of the same analysis (HR ...); kept ..."`` ->
    ``"conflicting report of the same analysis"``).
    """
    kind, n = reason, 1
    while n:
        kind, n = _INNER_PARENS.subn("", kind)
    kind = kind.split(";", 1)[0].strip(" ,.")
    return kind or "no reason recorded"


@dataclass(frozen=True)
class Number:
    """One displayed number: exact ``value`` (from summary.json), displayed ``text`` and ``ref``, its place
    in summary.json (section, name, key) or (``"diagnostics"``, key).
    """

    value: float | None
    text: str
    ref: tuple[str, ...]

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return {"value": self.value, "text": self.text, "ref": list(self.ref)}


@dataclass(frozen=True)
class Sentence:
    """Text with numbers in it.  ``role``: ``answer`` (the question's answer), ``estimate``, ``detail``, ``note``."""

    parts: tuple[str | Number, ...]
    role: str = "detail"

    @property
    def text(self) -> str:
        """The sentence as plain text."""
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    @property
    def numbers(self) -> list[Number]:
        """The numbers in the sentence, in order."""
        return [p for p in self.parts if isinstance(p, Number)]

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object: its role and its parts (text, and numbers with their place in
        summary.json); the sentence is the parts joined, each number by its ``text``.
        """
        return {"role": self.role, "parts": [p if isinstance(p, str) else p.to_dict() for p in self.parts]}


@dataclass(frozen=True)
class QuantityRow:
    """One row of the quantities table: a quantity's median, interval and moments as displayed.

    ``moments_scale`` is ``"log"`` when ``mean`` and ``sd`` are of the log HR (HR scales), else empty.
    """

    name: str
    description: str
    scale: str
    median: Number
    lower: Number
    upper: Number
    mean: Number
    sd: Number
    moments_scale: str = ""

    @property
    def sep(self) -> str:
        """Between the interval's ends: an en dash, or " to " when an end is negative (never "-0.23–-0.02")."""
        ends = (self.lower.value, self.upper.value)
        return " to " if any(isinstance(v, int | float) and v < 0 for v in ends) else "–"


@dataclass(frozen=True)
class ProbabilityRow:
    """One row of the probabilities table: a probability and its Monte Carlo error as displayed."""

    name: str
    description: str
    value: Number
    mcse: Number


_EVIDENCE_KEYS = (
    "row_id",
    "table",
    "trial",
    "endpoint",
    "subgroup",
    "estimate",
    "se",
    "disclosed",
    "source_kind",
    "reason",
)


@dataclass(frozen=True)
class EvidenceRow:
    """One evidence row as shown: ``source`` is a list of (text, url-or-None) pieces."""

    row_id: str
    table: str
    trial: str
    endpoint: str
    subgroup: str
    estimate: str
    se: str
    disclosed: str
    source_kind: str
    source: tuple[tuple[str, str | None], ...]
    reason: str = ""

    @property
    def links(self) -> list[str]:
        """The URLs in the row's source."""
        return [u for _, u in self.source if u]

    @property
    def source_text(self) -> str:
        """The row's source as plain text."""
        return "".join(t for t, _ in self.source)

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object, blank fields left out; the source is not repeated (the report pages
        show it, and the evidence table holds it under the row id).
        """
        return {k: v for k in _EVIDENCE_KEYS if (v := getattr(self, k))}


def svg_data_uri(svg: str) -> str:
    """SVG text as a base64 ``data:`` URI, for a self-contained ``<img>`` (every page embeds its figures so)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


@dataclass
class FigureView:
    """A rendered figure: title, caption, the SVG text and the plotted data."""

    name: str
    title: str
    caption: str
    svg: str
    data: pd.DataFrame

    @property
    def alt(self) -> str:
        """Alternative text of the figure: its title and caption."""
        return f"{self.title}. {self.caption}"

    @property
    def data_uri(self) -> str:
        """The SVG as a ``data:`` URI, for a self-contained ``<img>``."""
        return svg_data_uri(self.svg)

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object: the plotted data by column (see :func:`columns`)."""
        return {"name": self.name, "title": self.title, "caption": self.caption, "data": columns(self.data)}


FIGURE_DIGITS = 3
"""Significant digits of the plotted numbers in report.json (the figures' data, not summary.json's numbers)."""
MAX_POINTS = 32
"""Points kept per curve of a long figure table (densities, curves) in report.json."""
MAX_CURVES = 12
"""A long figure table with more distinct text keys than this is a table of points, kept whole."""


def _round(x: float) -> float | None:
    if not math.isfinite(x):
        return None
    return float(f"{x:.{FIGURE_DIGITS}g}")


def columns(df: pd.DataFrame) -> dict:
    """A figure's plotted table for report.json, by column at :data:`FIGURE_DIGITS` significant digits.

    A table of points (at most :data:`MAX_POINTS` rows, or more than :data:`MAX_CURVES` distinct text keys) is
    ``{"columns": {name: [values]}}``; a text column that mostly repeats a few values is stored as
    ``{"levels": [distinct values], "codes": [index into levels per row]}``.  A table of curves (density grids,
    OC curves) is split into its curves by its text columns and each curve thinned evenly to at most
    :data:`MAX_POINTS` points (ends kept): ``{"series": [{<text column>: value, ..., <number column>: [...]}]}``.
    """
    if df is None or len(df) == 0:
        return {"columns": {}}
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]

    def values(frame: pd.DataFrame, col: str) -> list:
        if col in numeric:
            return [_round(float(v)) for v in frame[col]]
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in frame[col].tolist()]

    def column(col: str) -> list | dict:
        v = values(df, col)
        if col in numeric:
            return v
        levels = list(dict.fromkeys(v))
        if len(v) < 8 or 2 * len(levels) > len(v):
            return v
        code = {x: i for i, x in enumerate(levels)}
        return {"levels": levels, "codes": [code[x] for x in v]}

    keys = [c for c in df.columns if c not in numeric]
    n_curves = len(df.drop_duplicates(keys)) if keys else 1
    if len(df) <= MAX_POINTS or n_curves > MAX_CURVES:
        return {"columns": {c: column(c) for c in df.columns}}
    series = []
    groups = df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        if len(frame) > MAX_POINTS:
            idx = sorted({round(i) for i in np.linspace(0, len(frame) - 1, MAX_POINTS)})
            frame = frame.iloc[idx]
        series.append(dict(zip(keys, key, strict=True)) | {c: values(frame, c) for c in numeric})
    return {"series": series}


def summary_sha256(summary: dict) -> str:
    """SHA-256 of ``summary.json`` as written (:meth:`harmoni_bayes.summaries.Summary.to_json`) for this summary."""
    text = json.dumps(summary, indent=2, sort_keys=False) + "\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _by_reason(rows: list[EvidenceRow]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.reason, []).append(r.row_id)
    return out


@dataclass(frozen=True)
class StripRow:
    """One row of the sensitivity strip: how certain the answer is under one analysis of the evidence.

    A row with no numbers at all (``missing``: the analysis does not exist yet, e.g. immature OS before any OS
    was disclosed) is printed with its note where the numbers would be.
    """

    label: str
    probability: Number
    median: Number
    lower: Number
    upper: Number
    headline: bool
    note: str = ""

    @property
    def missing(self) -> bool:
        """True when the row has none of its numbers (its note says why)."""
        return all(getattr(self, k).value is None for k in ("probability", "median", "lower", "upper"))

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return {
            "label": self.label,
            **{k: getattr(self, k).to_dict() for k in ("probability", "median", "lower", "upper")},
            "headline": self.headline,
            "note": self.note,
        }


@dataclass(frozen=True)
class Strip:
    """The sensitivity strip beside the headline (``summary.json`` key ``strip``): ``title``, the probability
    shown (``P(OS HR < 1)``), what the medians and intervals are of (``quantity``, may be empty) and one row per
    analysis, the headline's own row marked.
    """

    title: str
    probability: str
    rows: tuple[StripRow, ...]
    quantity: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        # its numbers are summary.json's "strip" (report.json points to summary.json): the labels in order suffice
        rows = [r.label for r in self.rows]
        return {"title": self.title, "probability": self.probability, "quantity": self.quantity, "rows": rows}


@dataclass(frozen=True)
class TrialFacts:
    """One trial (and endpoint) in the summary of findings, as the evidence rows give it; blank when not given."""

    trial: str
    endpoint: str
    population: str
    region: str
    experimental: str
    control: str
    n_experimental: str
    n_control: str
    median_experimental: str
    median_control: str
    follow_up: str
    cutoff: str
    maturity: str
    source_kind: str

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Findings:
    """The summary of findings at the top of a report (Cochrane/GRADE style): who and what was studied, the
    answer with its probability and interval, and what limits the certainty, in the evidence's own terms.
    """

    trials: tuple[TrialFacts, ...]
    evidence: str
    answer: tuple[Sentence, ...]
    threats: tuple[str, ...]
    note: str

    @property
    def certainty(self) -> str:
        """One line naming the main threats to certainty (or saying none was flagged)."""
        if not self.threats:
            return "no threat was flagged from the evidence rows (this is not a formal GRADE rating)."
        return "limited by " + "; ".join(self.threats) + " (flagged from the evidence rows; not a formal GRADE rating)."

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return {
            "trials": {k: [getattr(t, k) for t in self.trials] for k in TrialFacts.__dataclass_fields__},
            "evidence": self.evidence,
            "answer": [s.to_dict() for s in self.answer],
            "threats": list(self.threats),
            "certainty": self.certainty,
            "note": self.note,
        }


@dataclass(frozen=True)
class DiagnosticCheck:
    """One check of the diagnostics gate as recorded: label, value, threshold and verdict."""

    label: str
    value: Number
    threshold: str
    ok: bool


@dataclass(frozen=True)
class DiagnosticsView:
    """The diagnostics gate's verdict in words, with every recorded check."""

    status: str  # "PASS" or "FAIL"
    message: str
    checks: tuple[DiagnosticCheck, ...] = ()
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return {
            "status": self.status,
            "message": self.message,
            "checks": [
                {"label": c.label, "value": c.value.to_dict(), "threshold": c.threshold, "ok": c.ok}
                for c in self.checks
            ],
            "problems": list(self.problems),
        }


@dataclass
class TableView:
    """A family table as shown: title, intro, headers and cells already formatted (numbers by format.py)."""

    title: str
    intro: str
    headers: list[str]
    rows: list[list[str]]

    def to_dict(self) -> dict:
        """The table for report.json."""
        return {"title": self.title, "headers": self.headers, "rows": self.rows}


@dataclass
class ReportContent:
    """Everything a report shows, computed once; the renderers only format it."""

    spec: str
    title: str
    question: str
    model: str
    method: str
    as_of: str | None
    when: str
    experimental: str
    control: str
    endpoint: str
    headline: list[Sentence]
    probabilities: list[ProbabilityRow]
    quantities: list[QuantityRow]
    evidence_used: list[EvidenceRow]
    evidence_excluded: list[EvidenceRow]
    figures: list[FigureView]
    assumptions: list[str]
    diagnostics: DiagnosticsView
    provenance: list[tuple[str, str]]
    versions: dict[str, str]
    summary: dict = field(repr=False, default_factory=dict)  # summary.json as loaded: the exact values
    findings: Findings | None = None
    strip: Strip | None = None
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, relative href): index, data files
    tables: list[TableView] = field(default_factory=list)  # the family's own tables (Presentation.tables)

    @property
    def excluded_by_reason(self) -> list[tuple[str, list[EvidenceRow]]]:
        """Rows left out, grouped by the kind of reason (the reason without its particulars), in order."""
        groups: dict[str, list[EvidenceRow]] = {}
        for r in self.evidence_excluded:
            groups.setdefault(reason_kind(r.reason), []).append(r)
        return list(groups.items())

    @property
    def headline_numbers(self) -> list[Number]:
        """Every number in the headline, in order."""
        return [n for s in self.headline for n in s.numbers]

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return {
            "spec": self.spec,
            "title": self.title,
            "question": self.question,
            "model": self.model,
            "method": self.method,
            "as_of": self.as_of,
            "when": self.when,
            "arms": {"experimental": self.experimental, "control": self.control},
            "endpoint": self.endpoint,
            "headline": [s.to_dict() for s in self.headline],
            "strip": self.strip.to_dict() if self.strip else None,
            "findings": self.findings.to_dict() if self.findings else None,
            # the tables' plain words, by name; their numbers are summary.json's, formatted by reporting/format.py
            "probabilities": {r.name: r.description for r in self.probabilities},
            "quantities": {r.name: r.description for r in self.quantities},
            # by column, blank columns left out; sources are shown on the pages and kept in the evidence table
            "evidence_used": {
                k: col
                for k in _EVIDENCE_KEYS
                if k != "reason" and any(col := [getattr(r, k) for r in self.evidence_used])
            },
            # grouped by the kind of reason, then by the full reason: {kind, details: {reason: [row ids]}}
            "evidence_excluded": [
                {"reason": kind, "details": _by_reason(rows)} for kind, rows in self.excluded_by_reason
            ],
            "links": dict(self.links),
            "tables": [t.to_dict() for t in self.tables],
            "figures": [f.to_dict() for f in self.figures],
            "assumptions": list(self.assumptions),
            "diagnostics": self.diagnostics.to_dict(),
            "provenance": dict(self.provenance),
            "versions": dict(self.versions),
            # the exact values live in summary.json beside the report (every "ref" points there); its checksum:
            "summary": {"file": "summary.json", "sha256": summary_sha256(self.summary)},
        }
