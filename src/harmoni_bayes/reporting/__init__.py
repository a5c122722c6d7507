"""Reports: compute once, render many.

* :mod:`.format`: the formatting rules for every displayed number;
* :mod:`.content`: the frozen :class:`ReportContent` (every number tied to its place in ``summary.json``);
* :mod:`.plain`: plain words for the contract's names;
* :mod:`.figures`: figures and the figure registry;
* :mod:`.build`: :func:`build_report` (a result -> its content, using the family's presentation);
* :mod:`.render`: HTML, Markdown and JSON renderers, :func:`write_report`, :func:`write_index`;
* :mod:`.compare`: one spec at several as-of dates (:func:`compare_as_of`, :func:`write_comparison`).
"""

from . import network  # noqa: F401  (registers the network meta-analysis figures)
from .build import build_headline, build_report, linkify, presentation_of
from .compare import Comparison, compare_as_of, write_comparison
from .content import (
    DiagnosticCheck,
    DiagnosticsView,
    EvidenceRow,
    FigureView,
    Number,
    ProbabilityRow,
    QuantityRow,
    ReportContent,
    Sentence,
)
from .format import fmt_estimate, fmt_mcse, fmt_probability
from .plain import describe_probability, describe_quantity
from .render import FORMATS, RENDERERS, render_html, render_json, render_markdown, write_index, write_report

__all__ = [
    "FORMATS",
    "RENDERERS",
    "Comparison",
    "DiagnosticCheck",
    "DiagnosticsView",
    "EvidenceRow",
    "FigureView",
    "Number",
    "ProbabilityRow",
    "QuantityRow",
    "ReportContent",
    "Sentence",
    "build_headline",
    "build_report",
    "compare_as_of",
    "describe_probability",
    "describe_quantity",
    "fmt_estimate",
    "fmt_mcse",
    "fmt_probability",
    "linkify",
    "presentation_of",
    "render_html",
    "render_json",
    "render_markdown",
    "write_comparison",
    "write_index",
    "write_report",
]
