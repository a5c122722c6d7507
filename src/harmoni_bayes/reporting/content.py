"""The frozen content of a report: every number as a :class:`Number` tied to its place in ``summary.json``.

:func:`harmoni_bayes.reporting.build.build_report` fills a :class:`ReportContent` once; the renderers only
format it.  Every displayed number carries the exact value from ``summary.json``, its displayed text, and a
reference to where the value lives there (``("quantities", "hr_pooled", "median")``,
``("probabilities", "P(hr_pooled<1)", "value")``, ``("diagnostics", "max_rhat")``), so tests and readers can
check every displayed number against the contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd


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
        """A JSON-ready dict of this object."""
        return {
            "role": self.role,
            "text": self.text,
            "parts": [p if isinstance(p, str) else p.to_dict() for p in self.parts],
        }


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


@dataclass(frozen=True)
class ProbabilityRow:
    """One row of the probabilities table: a probability and its Monte Carlo error as displayed."""

    name: str
    description: str
    value: Number
    mcse: Number


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
        """A JSON-ready dict of this object."""
        d = {
            k: getattr(self, k)
            for k in (
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
        }
        return d | {"source": self.source_text, "links": self.links}


@dataclass
class FigureView:
    """A rendered figure: title, caption, the PNG (base64) and the plotted data."""

    name: str
    title: str
    caption: str
    png_base64: str
    data: pd.DataFrame

    @property
    def alt(self) -> str:
        """Alternative text of the figure: its title and caption."""
        return f"{self.title}. {self.caption}"

    def to_dict(self) -> dict:
        """A JSON-ready dict of this object."""
        return {
            "name": self.name,
            "title": self.title,
            "caption": self.caption,
            "data": json.loads(self.data.to_json(orient="records")),
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
            "probabilities": [
                {"name": r.name, "description": r.description, "value": r.value.to_dict(), "mcse": r.mcse.to_dict()}
                for r in self.probabilities
            ],
            "quantities": [
                {
                    "name": r.name,
                    "description": r.description,
                    "scale": r.scale,
                    **{k: getattr(r, k).to_dict() for k in ("median", "lower", "upper", "mean", "sd")},
                    "moments_scale": r.moments_scale,
                }
                for r in self.quantities
            ],
            "evidence_used": [r.to_dict() for r in self.evidence_used],
            "evidence_excluded": [r.to_dict() for r in self.evidence_excluded],
            "figures": [f.to_dict() for f in self.figures],
            "assumptions": list(self.assumptions),
            "diagnostics": self.diagnostics.to_dict(),
            "provenance": dict(self.provenance),
            "versions": dict(self.versions),
            "summary": self.summary,
        }
