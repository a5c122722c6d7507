"""Column definitions of the evidence tables: trials, reference PFS/OS trials and the PD-L1 network.

Both tables are read as text so that the printed digits of every number are kept (the
HR-in-CI check allows for rounding of the printed digits).  Each column has a *kind*
that says how it is checked:

=============  =====================================================================
kind           check
=============  =====================================================================
``text``       anything (may be blank unless required)
``choice``     one of ``choices``
``date``       an ISO date ``YYYY-MM-DD`` that exists on the calendar
``positive``   a number > 0
``count``      a whole number > 0 (events, patients)
``level``      a number in (0, 1) (confidence level)
``fraction``   a number in (0, 1] (maturity)
``rate``       a number in [0, 1] (response rate)
``number``     any finite number
=============  =====================================================================

Numbers must be written plainly, as a publication prints them: ASCII digits, an optional sign,
a decimal point, an optional exponent (``0.51``, ``157``, ``5.1e-1``).  ``0_51``, ``0,51``,
``95%``, ``nan`` and ``inf`` are refused with a hint (see :mod:`harmoni_bayes.evidence`).

Each column also carries an ``example`` value; :func:`template` writes them as the commented example row
of ``harmoni-bayes evidence template`` (the examples of a table together make a valid row).

A ``required`` column must be present in the header; ``nonblank`` means every row must
fill it in.  Columns not listed here are kept, with a warning, unless the name is one edit away
from a column listed here (``evnts_total``): that is refused as a probable typo.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

COMMENT = "#"
"""A line (a CSV record) whose first cell starts with this is a comment: the readers skip it."""

ENDPOINTS = ("PFS", "OS", "ORR")
SOURCE_KINDS = ("journal", "conference", "press", "news", "secondary")
ANALYSIS_KINDS = ("interim", "primary", "updated", "final")
REFERENCE_GROUPS = ("IO", "IO+antiVEGF", "antiVEGF", "EGFR-TKI", "chemo")


@dataclass(frozen=True)
class Column:
    """One column of an evidence table: its name, its kind (see the module docstring) and how it is checked.

    ``example`` is a value for the template's example row (blank where the example row leaves the cell empty).
    """

    name: str
    kind: str
    doc: str
    required: bool = False
    nonblank: bool = False
    choices: tuple[str, ...] = ()
    example: str = ""


@dataclass(frozen=True)
class HRTriple:
    """An HR with its CI, checked together (positive, ordered, HR inside the CI)."""

    hr: str
    lower: str
    upper: str
    level: str | None = None  # column holding the CI level; None means 95%


@dataclass(frozen=True)
class Schema:
    """An evidence table: its columns, in file order, and the HR/CI triples checked together."""

    name: str
    columns: tuple[Column, ...]
    triples: tuple[HRTriple, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


C = Column
_HARMONI2_PFS_SOURCE = (
    "https://www.onclive.com/view/ivonescimab-outperforms-pembrolizumab-as-frontline-therapy-in-pd-l1-advanced-nsclc"
)
TRIALS = Schema(
    name="trial evidence",
    columns=(
        C("trial", "text", "trial name, e.g. HARMONi-2", required=True, nonblank=True, example="HARMONi-2"),
        C("registry_id", "text", "registry number, e.g. NCT05499390", example="NCT05499390"),
        C("experimental", "text", "experimental arm", example="ivonescimab 20 mg/kg Q3W"),
        C("control", "text", "control arm", example="pembrolizumab 200 mg Q3W"),
        C("population", "text", "who was randomised", example="1L advanced PD-L1 TPS>=1% NSCLC, EGFR/ALK negative"),
        C("endpoint", "choice", "PFS, OS or ORR", required=True, nonblank=True, choices=ENDPOINTS, example="PFS"),
        C(
            "analysis",
            "text",
            "the analysis as its source names it, with venue",
            example="PFS interim (primary PFS analysis), WCLC 2024",
        ),
        C(
            "analysis_kind",
            "choice",
            "interim, primary, updated or final",
            required=True,
            nonblank=True,
            choices=ANALYSIS_KINDS,
            example="interim",
        ),
        C(
            "disclosed",
            "date",
            "date the number became public (ISO)",
            required=True,
            nonblank=True,
            example="2024-09-08",
        ),
        C("data_cutoff", "date", "the analysis's data cutoff, where stated (ISO)"),
        C(
            "subgroup_factor",
            "text",
            "'overall' for the whole trial, else the factor",
            required=True,
            nonblank=True,
            example="overall",
        ),
        C(
            "subgroup_level",
            "text",
            "'ITT' for the whole trial, else the level",
            required=True,
            nonblank=True,
            example="ITT",
        ),
        C(
            "hr",
            "positive",
            "hazard ratio, experimental vs control (below 1 favours experimental)",
            required=True,
            example="0.51",
        ),
        C("ci_lower", "positive", "lower confidence limit of the HR", example="0.38"),
        C("ci_upper", "positive", "upper confidence limit of the HR", example="0.69"),
        C("ci_level", "level", "confidence level of the interval, e.g. 0.95", example="0.95"),
        C("p_value", "text", "p-value as printed, with inequalities and sidedness", example="<0.0001"),
        C("events_total", "count", "events (deaths or progressions) in both arms"),
        C("maturity", "fraction", "fraction of randomised patients with an event (deaths / randomised for OS)"),
        C("n_experimental", "count", "patients randomised to the experimental arm", example="198"),
        C("n_control", "count", "patients randomised to the control arm", example="200"),
        C("median_experimental", "positive", "median PFS or OS in months, experimental arm", example="11.14"),
        C("median_control", "positive", "median PFS or OS in months, control arm", example="5.82"),
        C("rate_experimental", "rate", "response rate, experimental arm (ORR rows)"),
        C("rate_control", "rate", "response rate, control arm (ORR rows)"),
        C(
            "source",
            "text",
            "where the number was read (URL or citation)",
            required=True,
            nonblank=True,
            example=_HARMONI2_PFS_SOURCE,
        ),
        C(
            "source_kind",
            "choice",
            "journal, conference, press, news or secondary",
            required=True,
            nonblank=True,
            choices=SOURCE_KINDS,
            example="news",
        ),
        C("note", "text", "caveats", example="stratified HR; PFS by masked independent review"),
    ),
    triples=(HRTriple("hr", "ci_lower", "ci_upper", "ci_level"),),
)

REFERENCE = Schema(
    name="reference PFS/OS trials",
    columns=(
        C(
            "trial",
            "text",
            "comparison name; a parenthetical names the arms of a multi-arm trial",
            required=True,
            nonblank=True,
            example="KEYNOTE-024",
        ),
        C(
            "group",
            "choice",
            "treatment class: IO, IO+antiVEGF, antiVEGF, EGFR-TKI or chemo",
            required=True,
            nonblank=True,
            choices=REFERENCE_GROUPS,
            example="IO",
        ),
        C("line", "text", "line of therapy, e.g. 1L, 2L", required=True, nonblank=True, example="1L"),
        C(
            "population",
            "text",
            "who was randomised ('SUBGROUP' marks a subgroup, not the ITT)",
            example="metastatic NSCLC, PD-L1 TPS>=50%, EGFR/ALK wild-type",
        ),
        C("experimental", "text", "experimental arm", example="pembrolizumab"),
        C("control", "text", "control arm", example="investigator-choice platinum doublet"),
        C("n_total", "count", "patients randomised in this comparison", example="305"),
        C("pfs_hr", "positive", "PFS hazard ratio", required=True, example="0.50"),
        C(
            "pfs_ci_lower",
            "positive",
            "PFS CI lower limit (95% unless pfs_ci_level says otherwise)",
            required=True,
            example="0.37",
        ),
        C("pfs_ci_upper", "positive", "PFS CI upper limit", required=True, example="0.68"),
        C("os_hr", "positive", "OS hazard ratio", required=True, example="0.60"),
        C(
            "os_ci_lower",
            "positive",
            "OS CI lower limit (95% unless os_ci_level says otherwise)",
            required=True,
            example="0.41",
        ),
        C("os_ci_upper", "positive", "OS CI upper limit", required=True, example="0.89"),
        C(
            "os_analysis",
            "text",
            "which OS analysis (interim, updated, final, 5yr ...)",
            required=True,
            nonblank=True,
            example="interim (second interim analysis, NEJM 2016)",
        ),
        C(
            "crossover_note",
            "text",
            "crossover to the experimental class, which dilutes OS",
            example="crossover from chemotherapy to pembrolizumab on progression",
        ),
        C("source_url_pfs", "text", "source of the PFS numbers", example="https://doi.org/10.1056/NEJMoa1606774"),
        C("source_url_os", "text", "source of the OS numbers", example="https://doi.org/10.1056/NEJMoa1606774"),
        C("note", "text", "caveats"),
        C(
            "disclosed",
            "date",
            "optional: date the OS analysis became public (ISO), for as-of filtering",
            example="2016-10-08",
        ),
        C(
            "disclosed_source",
            "text",
            "optional: where the disclosure date was read, or why it is unknown",
            example="precision day; NEJM online 2016-10-08",
        ),
        C("pfs_ci_level", "level", "optional: level of the PFS interval when it is not 0.95 (e.g. 0.9758)"),
        C("os_ci_level", "level", "optional: level of the OS interval when it is not 0.95 (e.g. 0.96)"),
    ),
    triples=(
        HRTriple("pfs_hr", "pfs_ci_lower", "pfs_ci_upper"),
        HRTriple("os_hr", "os_ci_lower", "os_ci_upper"),
    ),
)


NETWORK_TREATMENTS = ("treatment_experimental", "treatment_control")
NETWORK = Schema(
    name="treatment network",
    columns=(
        *(replace(c, nonblank=False) if c.name == "disclosed" else c for c in TRIALS.columns),
        C(
            "treatment_experimental",
            "text",
            "network node of the experimental arm, e.g. pembrolizumab+chemo",
            required=True,
            nonblank=True,
            example="ivonescimab",
        ),
        C(
            "treatment_control",
            "text",
            "network node of the control arm, e.g. chemo",
            required=True,
            nonblank=True,
            example="pembrolizumab",
        ),
    ),
    triples=TRIALS.triples,
)
"""The network table (``nsclc_pdl1_network.csv``): the trial columns plus each arm's network node.

``disclosed`` may be blank here (the curated table has undated rows, flagged in ``note``); the network
family decides what an undated row means for an as-of date and says so in the report.
"""


def template(schema: Schema) -> str:
    """A CSV template of ``schema``: the header and one example row commented out with ``#``.

    The readers skip lines starting with ``#`` (:mod:`harmoni_bayes.evidence`), so the template itself
    reads as a table with no rows; removing the ``#`` makes the example a valid row.

    Parameters
    ----------
    schema
        :data:`TRIALS`, :data:`REFERENCE` or :data:`NETWORK`.

    Returns
    -------
    str
        Two lines of CSV text, each ending with a newline.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(schema.names)
    first, *rest = (c.example for c in schema.columns)
    writer.writerow([f"{COMMENT} {first}", *rest])
    return buf.getvalue()
