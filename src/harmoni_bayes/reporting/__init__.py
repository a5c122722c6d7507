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
from .build import build_findings, build_headline, build_report, build_strip, linkify, presentation_of
from .compare import Comparison, compare_as_of, write_comparison
from .content import (
    DiagnosticCheck,
    DiagnosticsView,
    EvidenceRow,
    FigureView,
    Findings,
    Number,
    ProbabilityRow,
    QuantityRow,
    ReportContent,
    Sentence,
    Strip,
    StripRow,
    TrialFacts,
)
from .format import fmt_estimate, fmt_mcse, fmt_probability
from .plain import describe_probability, describe_quantity
from .render import (
    FIGURE_DIR,
    FORMATS,
    RENDERERS,
    publish_report,
    render_html,
    render_json,
    render_markdown,
    write_figures,
    write_index,
    write_report,
)

__all__ = [
    "FIGURE_DIR",
    "FORMATS",
    "RENDERERS",
    "Comparison",
    "DiagnosticCheck",
    "DiagnosticsView",
    "EvidenceRow",
    "FigureView",
    "Findings",
    "Number",
    "ProbabilityRow",
    "QuantityRow",
    "ReportContent",
    "Sentence",
    "Strip",
    "StripRow",
    "TrialFacts",
    "build_findings",
    "build_headline",
    "build_report",
    "build_strip",
    "compare_as_of",
    "describe_probability",
    "describe_quantity",
    "fmt_estimate",
    "fmt_mcse",
    "fmt_probability",
    "linkify",
    "presentation_of",
    "publish_report",
    "render_html",
    "render_json",
    "render_markdown",
    "write_comparison",
    "write_figures",
    "write_index",
    "write_report",
]
