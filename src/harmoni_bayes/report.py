"""Reports: compute once, render many.

:func:`build_report` turns a :class:`~harmoni_bayes.results.Result` into one :class:`ReportContent`
(headline, probability and quantity tables, evidence used and left out, figures, assumptions,
diagnostics, provenance).  :func:`render_html`, :func:`render_markdown` and :func:`render_json` only
format that object; :func:`write_report` writes ``report.html`` / ``report.md`` / ``report.json`` into
a result directory and :func:`write_index` writes a self-contained index of several reports.

Every number shown is a :class:`Number`: the exact value from ``summary.json``, the text displayed,
and a reference to where the value lives in ``summary.json`` (``("quantities", "hr_pooled", "median")``,
``("probabilities", "P(hr_pooled<1)", "value")``, ``("diagnostics", "max_rhat")``), so tests and
readers can check every displayed number against the contract.

Formatting (one rule, everywhere): estimates with 2 significant digits below 1 and 3 at or above 1
(``0.52``, ``0.0048``, ``1.06``, ``12.3``); probabilities with 2 decimals, or 3 where 2 would round to
0 or 1 (``0.98``, ``0.997``), and ``>0.999`` / ``<0.001`` beyond that.

The headline depends on the model family; it is looked up in :data:`HEADLINES` by ``summary.model``,
so a new family plugs in by registering one function with :func:`headline`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from . import figures as F
from .files import atomic_write
from .posterior import DiagnosticThresholds
from .results import Result, load_result

__all__ = [
    "HEADLINES",
    "DiagnosticsView",
    "EvidenceRow",
    "FigureView",
    "Number",
    "ProbabilityRow",
    "QuantityRow",
    "ReportContent",
    "Sentence",
    "build_report",
    "describe_probability",
    "describe_quantity",
    "fmt_estimate",
    "fmt_probability",
    "headline",
    "render_html",
    "render_json",
    "render_markdown",
    "write_index",
    "write_report",
]

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = {"html": "report.html", "md": "report.md", "json": "report.json"}
DASH = "\u2013"


# =============================================================================================
# numbers
# =============================================================================================


def _finite(x) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def fmt_estimate(x) -> str:
    """2 significant digits below 1, 3 at or above 1; thousands as integers."""
    if not _finite(x):
        return DASH
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.{max(0, 2 - math.floor(math.log10(a)))}f}"
    if a >= 1e-4:
        return f"{x:.{1 - math.floor(math.log10(a))}f}"
    return f"{x:.1e}"


def fmt_probability(p) -> str:
    """2 decimals; 3 where 2 would show 0.00 or 1.00; ``>0.999`` / ``<0.001`` beyond that."""
    if not _finite(p):
        return DASH
    if p >= 0.9995:
        return ">0.999"
    if p <= 0.0005:
        return "<0.001" if p > 0 else "0"
    two = f"{p:.2f}"
    return two if two not in ("0.00", "1.00") else f"{p:.3f}"


def fmt_mcse(x) -> str:
    return "0" if x == 0 else fmt_estimate(x)


@dataclass(frozen=True)
class Number:
    """One displayed number: exact ``value`` (from summary.json), displayed ``text`` and ``ref``, its place
    in summary.json (section, name, key) or (``"diagnostics"``, key)."""

    value: float | None
    text: str
    ref: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"value": self.value, "text": self.text, "ref": list(self.ref)}


@dataclass(frozen=True)
class Sentence:
    """Text with numbers in it.  ``role``: ``answer`` (the question's answer), ``estimate``, ``detail``, ``note``."""

    parts: tuple[str | Number, ...]
    role: str = "detail"

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    @property
    def numbers(self) -> list[Number]:
        return [p for p in self.parts if isinstance(p, Number)]

    def to_dict(self) -> dict:
        return {
            "role": self.role,
            "text": self.text,
            "parts": [p if isinstance(p, str) else p.to_dict() for p in self.parts],
        }


# =============================================================================================
# content
# =============================================================================================


@dataclass(frozen=True)
class QuantityRow:
    name: str
    description: str
    scale: str
    median: Number
    lower: Number
    upper: Number
    mean: Number
    sd: Number


@dataclass(frozen=True)
class ProbabilityRow:
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
        return [u for _, u in self.source if u]

    @property
    def source_text(self) -> str:
        return "".join(t for t, _ in self.source)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("row_id", "table", "trial", "endpoint", "subgroup", "estimate", "se",
                                            "disclosed", "source_kind", "reason")}
        return d | {"source": self.source_text, "links": self.links}


@dataclass
class FigureView:
    name: str
    title: str
    caption: str
    png_base64: str
    data: pd.DataFrame

    @property
    def alt(self) -> str:
        return f"{self.title}. {self.caption}"

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "caption": self.caption,
                "data": json.loads(self.data.to_json(orient="records"))}


@dataclass(frozen=True)
class DiagnosticCheck:
    label: str
    value: Number
    threshold: str
    ok: bool


@dataclass(frozen=True)
class DiagnosticsView:
    status: str  # "PASS" or "FAIL"
    message: str
    checks: tuple[DiagnosticCheck, ...] = ()
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "message": self.message,
            "checks": [{"label": c.label, "value": c.value.to_dict(), "threshold": c.threshold, "ok": c.ok}
                       for c in self.checks],
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
        return [n for s in self.headline for n in s.numbers]

    def to_dict(self) -> dict:
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
            "probabilities": [{"name": r.name, "description": r.description, "value": r.value.to_dict(),
                               "mcse": r.mcse.to_dict()} for r in self.probabilities],
            "quantities": [{"name": r.name, "description": r.description, "scale": r.scale,
                            **{k: getattr(r, k).to_dict() for k in ("median", "lower", "upper", "mean", "sd")}}
                           for r in self.quantities],
            "evidence_used": [r.to_dict() for r in self.evidence_used],
            "evidence_excluded": [r.to_dict() for r in self.evidence_excluded],
            "figures": [f.to_dict() for f in self.figures],
            "assumptions": list(self.assumptions),
            "diagnostics": self.diagnostics.to_dict(),
            "provenance": dict(self.provenance),
            "versions": dict(self.versions),
            "summary": self.summary,
        }


# =============================================================================================
# plain words for the contract's names
# =============================================================================================

_PLAIN = {
    "hr_pooled": "pooled HR (average across trials)",
    "hr_new_trial": "HR a new, similar trial would show",
    "tau": "heterogeneity: SD of the true log HRs (tau)",
    "hr_overall": "overall HR (subgroups weighted by information)",
    "slope": "surrogacy slope (change in OS log HR per unit PFS log HR)",
    "intercept": "surrogacy intercept (OS log HR when the PFS HR is 1)",
    "residual_sd": "residual SD of the OS log HR around the line",
    "r2_trial": "trial-level R\u00b2 (share of OS-effect variation explained by PFS)",
    "ste_hr_pfs": "surrogate threshold effect (PFS HR needed to predict an OS benefit)",
    "os_hr": "forecast true OS HR of the target trial",
    "os_hr_later_estimate": "OS HR the later analysis is predicted to report",
}


def describe_quantity(name: str) -> str:
    """A summary.json quantity name in plain words."""
    if name in _PLAIN:
        return _PLAIN[name]
    m = re.fullmatch(r"(\w+)\[(.+)\]", name)
    if m:
        stem, label = m.groups()
        if stem == "hr":
            return f"HR in {label} (posterior, after borrowing strength)"
        if stem == "hr_raw":
            return f"HR in {label} as published"
        if stem == "hr_ratio" and "/" in label:
            a, b = label.split("/", 1)
            return f"ratio of HRs, {a} / {b} (1 = same benefit)"
        if stem == "exchangeable":
            return f"{label} is exchangeable with the other levels"
    return name


_PROB = re.compile(r"^P\((?P<q>.+?)(?P<op><=|>=|<|>)(?P<t>-?[\d.]+(?:e-?\d+)?)\)$")


def describe_probability(name: str) -> str:
    """``P(hr_pooled<1)`` -> ``pooled HR (average across trials) below 1``."""
    if name == "P(later_os_significant)":
        return "the later OS analysis is statistically significant"
    m = re.fullmatch(r"P\((.+)\)", name)
    if m and m.group(1).startswith("exchangeable["):
        return describe_quantity(m.group(1))
    m = _PROB.match(name)
    if not m:
        return name
    word = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}[m["op"]]
    return f"{describe_quantity(m['q'])} {word} {m['t']}"


# =============================================================================================
# headline: one small function per model family
# =============================================================================================


class _Ctx:
    """What a headline function needs: numbers by name (each a :class:`Number`) and the words."""

    def __init__(self, result: Result, experimental: str, control: str, endpoint: str, when: str, target: str):
        self.result = result
        self.summary = result.summary
        self.qs = {q["name"]: q for q in result.summary.quantities}
        self.ps = {p["name"]: p for p in result.summary.probabilities}
        self.experimental, self.control, self.endpoint, self.when, self.target = (
            experimental, control, endpoint, when, target)

    def q(self, name: str, stat: str = "median") -> Number:
        v = self.qs[name][stat]
        return Number(v, fmt_estimate(v), ("quantities", name, stat))

    def p(self, name: str) -> Number:
        v = self.ps[name]["value"]
        return Number(v, fmt_probability(v), ("probabilities", name, "value"))

    def ci(self, name: str) -> list:
        """``median (95% CrI lo–hi)`` as parts."""
        return [self.q(name), " (95% CrI ", self.q(name, "q2.5"), DASH, self.q(name, "q97.5"), ")"]

    @property
    def when_suffix(self) -> str:
        return f" ({self.when})" if self.when else ""

    def levels(self, stem: str = "hr") -> list[str]:
        return [n[len(stem) + 1 : -1] for n in self.qs if n.startswith(stem + "[")]


HeadlineFn = Callable[[_Ctx], list[Sentence]]
HEADLINES: dict[str, HeadlineFn] = {}


def headline(model: str) -> Callable[[HeadlineFn], HeadlineFn]:
    """Register the headline function of a model family (``summary.model``)."""

    def register(fn: HeadlineFn) -> HeadlineFn:
        HEADLINES[model] = fn
        return fn

    return register


def _S(role: str, *parts) -> Sentence:
    flat: list = []
    for p in parts:
        flat.extend(p if isinstance(p, list) else [p])
    return Sentence(tuple(flat), role)


@headline("random_effects")
def _headline_random_effects(c: _Ctx) -> list[Sentence]:
    out = [
        _S("answer", f"Probability that {c.experimental} improves {c.endpoint} over {c.control} (pooled HR < 1): ",
           c.p("P(hr_pooled<1)"), c.when_suffix),
        _S("estimate", "Pooled HR ", c.ci("hr_pooled"), "."),
    ]
    if "hr_new_trial" in c.qs:
        parts = ["A new trial like these would show HR ", c.ci("hr_new_trial")]
        if "P(hr_new_trial<1)" in c.ps:
            parts += ["; probability it shows HR < 1: ", c.p("P(hr_new_trial<1)")]
        out.append(_S("detail", *parts, "."))
    if "tau" in c.qs:
        out.append(_S("detail", "Between-trial heterogeneity (SD of true log HRs, tau) ", c.ci("tau"), "."))
    return out


@headline("subgroups")
def _headline_subgroups(c: _Ctx) -> list[Sentence]:
    out = [
        _S("answer", f"Probability that {c.experimental} improves {c.endpoint} over {c.control} overall (HR < 1): ",
           c.p("P(hr_overall<1)"), c.when_suffix),
        _S("estimate", "Overall HR ", c.ci("hr_overall"), "."),
    ]
    for pair in c.levels("hr_ratio"):
        a, b = pair.split("/", 1)
        name = f"hr_ratio[{pair}]"
        parts = [f"Is the benefit the same in {a} and {b}? Ratio of their HRs ", c.ci(name),
                 "; a ratio of 1 means the same benefit"]
        if f"P({name}<1)" in c.ps:
            parts += [f"; probability the benefit is larger in {a} (ratio < 1): ", c.p(f"P({name}<1)")]
        out.append(_S("estimate", *parts, "."))
    levels = c.levels("hr")
    if levels:
        parts: list = ["Subgroup HRs after shrinkage: "]
        for i, lev in enumerate(levels):
            parts += [("; " if i else "") + f"{lev} ", c.ci(f"hr[{lev}]")]
        out.append(_S("detail", *parts, "."))
    return out


@headline("os_forecast")
def _headline_os_forecast(c: _Ctx) -> list[Sentence]:
    where = f" in {c.target}" if c.target else ""
    out = [
        _S("answer", f"Probability that {c.experimental} improves OS over {c.control}{where} (true OS HR < 1): ",
           c.p("P(os_hr<1)"), c.when_suffix),
        _S("estimate", "Forecast OS HR ", c.ci("os_hr"), "."),
        _S("note", "This forecast assumes that the PFS-to-OS relationship seen in the reference trials (other "
                   "drugs, mostly checkpoint inhibitors against chemotherapy) carries over to this trial; see "
                   "Assumptions."),
    ]
    if "P(later_os_significant)" in c.ps:
        out.append(_S("estimate", "Probability that the later OS analysis is statistically significant: ",
                      c.p("P(later_os_significant)"), "."))
        out.append(_S("note", "These two probabilities differ. The first is about the true OS effect; the second "
                              "is about whether the later analysis, with its limited number of deaths, crosses the "
                              "significance boundary. A real OS benefit can still be missed by that analysis."))
    return out


@headline("surrogacy")
def _headline_surrogacy(c: _Ctx) -> list[Sentence]:
    out = [
        _S("answer", "How well PFS effects predict OS effects across trials: slope ", c.ci("slope"),
           " and trial-level R\u00b2 ", c.ci("r2_trial"), c.when_suffix),
    ]
    if "P(slope>0)" in c.ps:
        out.append(_S("estimate", "Probability that a better PFS effect goes with a better OS effect (slope > 0): ",
                      c.p("P(slope>0)"), "."))
    if "ste_hr_pfs" in c.qs and _finite(c.qs["ste_hr_pfs"].get("median")) and c.qs["ste_hr_pfs"]["median"] < 1:
        out.append(_S("detail", "A trial needs a PFS HR below about ", c.q("ste_hr_pfs"),
                      " to predict an OS benefit (surrogate threshold effect, posterior median)."))
    return out


def _headline_generic(c: _Ctx) -> list[Sentence]:
    out = []
    if c.ps:
        name = next(iter(c.ps))
        out.append(_S("answer", f"Probability that {describe_probability(name)}: ", c.p(name), c.when_suffix))
    if c.qs:
        name = next(iter(c.qs))
        out.append(_S("estimate", f"{describe_quantity(name)[:1].upper()}{describe_quantity(name)[1:]}: ",
                      c.ci(name), "."))
    return out


# =============================================================================================
# building the content
# =============================================================================================


def _text(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:g}"
    return str(x)


_DOSE = re.compile(
    r"\s+\d[\d.,]*\s*(?:mg/kg|mg/m2|mg/m\u00b2|mg|\u00b5g|mcg|g)\b(?:\s+(?:Q\d+W|QD|BID|daily|weekly))?",
    re.IGNORECASE,
)


def _drug(name: str) -> str:
    """An arm name without its dosing: 'ivonescimab 20 mg/kg Q3W' -> 'ivonescimab'."""
    return _DOSE.sub("", name).strip()


def _common_words(values) -> str:
    """The one arm name, or the words all arm names start with ("ivonescimab" for its three trials);
    doses are dropped, so the headline reads 'ivonescimab ... over pembrolizumab'."""
    names = list(dict.fromkeys(_drug(v) for v in values if _text(v).strip()))
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    prefix = []
    for words in zip(*(n.split() for n in names), strict=False):
        if len(set(w.lower() for w in words)) != 1:
            break
        prefix.append(words[0])
    return " ".join(prefix).rstrip("+,;/ ")


def _arms(result: Result) -> tuple[str, str]:
    rows = F.trial_rows(result)
    exp = _common_words(rows["experimental"]) if "experimental" in rows else ""
    ctl = _common_words(rows["control"]) if "control" in rows else ""
    return exp or "experimental", ctl or "control"


def _endpoint(result: Result) -> str:
    ev = result.spec.get("evidence") if isinstance(result.spec, dict) else None
    if isinstance(ev, dict) and ev.get("endpoint"):
        return str(ev["endpoint"])
    rows = F.trial_rows(result)
    eps = sorted({_text(e) for e in rows.get("endpoint", [])} - {""})
    return eps[0] if len(eps) == 1 else "the outcome"


def _when(result: Result) -> str:
    if result.summary.as_of:
        return f"as of {result.summary.as_of}"
    rows = F.trial_rows(result)
    dates = sorted({_text(d) for d in rows.get("disclosed", [])} - {""})
    return f"evidence disclosed up to {dates[-1]}" if dates else ""


def _target(result: Result) -> str:
    rows = F.trial_rows(result)
    trials = list(dict.fromkeys(_text(t) for t in rows.get("trial", [])))
    return trials[0] if len(trials) == 1 else ""


def build_headline(result: Result) -> list[Sentence]:
    """The headline sentences of ``result``, chosen by ``summary.model`` in :data:`HEADLINES`."""
    exp, ctl = _arms(result)
    ctx = _Ctx(result, exp, ctl, _endpoint(result), _when(result), _target(result))
    fn = HEADLINES.get(result.summary.model, _headline_generic)
    try:
        return fn(ctx)
    except KeyError:  # a family's summary lacks a quantity its headline expects: say what there is
        return _headline_generic(ctx)


# --- tables -----------------------------------------------------------------------------------


def _quantity_rows(result: Result) -> list[QuantityRow]:
    out = []
    for q in result.summary.quantities:
        name = q["name"]

        def num(stat, _q=q, _name=name):
            return Number(_q.get(stat), fmt_estimate(_q.get(stat)), ("quantities", _name, stat))

        out.append(QuantityRow(name, describe_quantity(name), q.get("scale", ""), num("median"), num("q2.5"),
                               num("q97.5"), num("mean"), num("sd")))
    return out


def _probability_rows(result: Result) -> list[ProbabilityRow]:
    return [
        ProbabilityRow(
            p["name"],
            describe_probability(p["name"]),
            Number(p["value"], fmt_probability(p["value"]), ("probabilities", p["name"], "value")),
            Number(p.get("mcse"), fmt_mcse(p.get("mcse")), ("probabilities", p["name"], "mcse")),
        )
        for p in result.summary.probabilities
    ]


_URL = re.compile(r"https?://[^\s<>\"'\]]+")


def linkify(text: str) -> tuple[tuple[str, str | None], ...]:
    """Split ``text`` into (text, url-or-None) pieces; a URL keeps its balanced parentheses
    (``https://doi.org/10.1016/S0140-6736(24)02722-3``) and drops a closing one that is not its own."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group(0)
        while url and (url[-1] in ".,;:!?" or (url[-1] == ")" and url.count(")") > url.count("("))):
            url = url[:-1]
        start, end = m.start(), m.start() + len(url)
        if start > pos:
            out.append((text[pos:start], None))
        out.append((url, url))
        pos = end
    if pos < len(text):
        out.append((text[pos:], None))
    return tuple(out)


def _source_of(r: dict) -> str:
    src = _text(r.get("source"))
    if src:
        return src
    pfs, os_ = _text(r.get("source_url_pfs")), _text(r.get("source_url_os"))
    if pfs and os_ and pfs != os_:
        return f"PFS: {pfs}; OS: {os_}"
    return pfs or os_


def _hr_ci(hr, lo, hi) -> str:
    hr, lo, hi = _text(hr), _text(lo), _text(hi)
    if not hr:
        return ""
    return f"{hr} ({lo}{DASH}{hi})" if lo and hi else hr


def _excluded_sources(result: Result) -> dict[str, str]:
    """Sources of the left-out rows, by row id.

    The selection records only ids and reasons for rows it leaves out, so their sources are looked up in
    the evidence table named in the provenance (and the shipped reference table).  Row ids hash the
    row's text, so a table that has grown since (rows are append-only) still matches.  Anything that
    cannot be read is skipped: those rows then show no source.
    """
    df = result.evidence_excluded
    if df is None or len(df) == 0 or "row_id" not in df.columns:
        return {}
    if "source" in df.columns and df["source"].map(_text).all():
        return dict(zip(df["row_id"], df["source"], strict=True))
    from .errors import HarmoniError
    from .evidence import load_reference_trials, read_evidence

    wanted, found = set(df["row_id"].map(_text)), {}
    loaders = []
    src = (result.provenance or {}).get("evidence_source")
    if src and Path(src).is_file():
        loaders.append(lambda: read_evidence(src))
    if (result.evidence_used.get("table", pd.Series(dtype=str)) == "reference").any():
        loaders.append(load_reference_trials)
    for load in loaders:
        if wanted <= set(found):
            break
        try:
            table = load()
        except (HarmoniError, OSError, ValueError):
            continue
        for r in table.to_dict("records"):
            if r.get("row_id") in wanted:
                found[r["row_id"]] = _source_of(r)
    return found


def _evidence_rows(
    df: pd.DataFrame, excluded: bool = False, sources: dict[str, str] | None = None
) -> list[EvidenceRow]:
    if df is None or len(df) == 0:
        return []
    out = []
    for r in df.to_dict("records"):
        if sources and not _source_of(r) and _text(r.get("row_id")) in sources:
            r = {**r, "source": sources[_text(r.get("row_id"))]}
        table = _text(r.get("table")) or ("reference" if "pfs_hr" in r and _text(r.get("pfs_hr")) else "trials")
        if _text(r.get("pfs_hr")) or _text(r.get("os_hr")):
            est = "; ".join(
                f"{ep.upper()} " + _hr_ci(r.get(f"{ep}_hr"), r.get(f"{ep}_ci_lower"), r.get(f"{ep}_ci_upper"))
                for ep in ("pfs", "os")
                if _text(r.get(f"{ep}_hr"))
            )
        else:
            est = _hr_ci(r.get("hr"), r.get("ci_lower"), r.get("ci_upper"))
        se = r.get("se")
        se_text = f"{float(se):.3g} ({_text(r.get('se_method'))})" if _finite(se) else ""
        subgroup = _text(r.get("subgroup"))
        if not subgroup and _text(r.get("subgroup_factor")):
            subgroup = f"{_text(r.get('subgroup_factor'))}={_text(r.get('subgroup_level'))}"
        out.append(EvidenceRow(
            row_id=_text(r.get("row_id")),
            table=table,
            trial=_text(r.get("comparison")) or _text(r.get("trial")),
            endpoint=_text(r.get("endpoint")) or ("PFS and OS" if table == "reference" else ""),
            subgroup=subgroup,
            estimate=est,
            se=se_text,
            disclosed=_text(r.get("disclosed")) or _text(r.get("os_analysis")),
            source_kind=_text(r.get("source_kind")),
            source=linkify(_source_of(r)),
            reason=_text(r.get("reason")) if excluded else "",
        ))
    return out


# --- diagnostics and provenance -----------------------------------------------------------------


def _diagnostics(result: Result) -> DiagnosticsView:
    d = result.summary.diagnostics or {}
    ok = bool(d.get("ok", False))
    status = "PASS" if ok else "FAIL"
    if result.summary.method == "exact":
        return DiagnosticsView(status, "exact computation; no MCMC diagnostics needed")
    th = DiagnosticThresholds().model_dump()  # the gate's defaults, overridden by the spec's own thresholds
    spec_th = result.spec.get("diagnostics") if isinstance(result.spec, dict) else None
    th |= {k: v for k, v in (spec_th or {}).items() if v is not None}

    def num(key, text):
        return Number(d.get(key), text, ("diagnostics", key))

    rhat, bulk, tail, div = d.get("max_rhat"), d.get("min_ess_bulk"), d.get("min_ess_tail"), d.get("divergences", 0)
    rhat_text = f"{rhat:.3f}" if _finite(rhat) else DASH
    bulk_text = f"{bulk:.0f}" if _finite(bulk) else DASH
    tail_text = f"{tail:.0f}" if _finite(tail) else DASH
    checks = (
        DiagnosticCheck("largest R-hat (chains agree)", num("max_rhat", rhat_text),
                        f"\u2264 {th['max_rhat']:g}", not _finite(rhat) or rhat <= th["max_rhat"]),
        DiagnosticCheck("smallest bulk ESS (effective draws)", num("min_ess_bulk", bulk_text),
                        f"\u2265 {th['min_ess_bulk']:g}", not _finite(bulk) or bulk >= th["min_ess_bulk"]),
        DiagnosticCheck("smallest tail ESS (effective draws in the tails)", num("min_ess_tail", tail_text),
                        f"\u2265 {th['min_ess_tail']:g}", not _finite(tail) or tail >= th["min_ess_tail"]),
        DiagnosticCheck("divergent transitions", num("divergences", f"{int(div or 0)}"),
                        f"\u2264 {int(th['max_divergences'])}", int(div or 0) <= th["max_divergences"]),
    )
    problems = tuple(d.get("problems") or ())
    if ok:
        message = "MCMC diagnostics pass: the chains agree, there are enough effective draws and no divergences."
    else:
        message = "MCMC diagnostics FAIL: " + ("; ".join(problems) or "see the checks below") + \
                  ". Do not rely on these numbers before refitting (more draws or a higher target_accept)."
    return DiagnosticsView(status, message, checks, problems)


def _provenance(result: Result) -> tuple[list[tuple[str, str]], dict[str, str]]:
    from . import __version__

    p, s, spec = result.provenance or {}, result.summary, result.spec or {}
    sampler = spec.get("sampler") or {}
    if s.method == "exact":
        how = "exact grid computation over tau (iid draws stored for figures only)"
    else:
        how = (f"MCMC, {sampler.get('chains', '?')} chains \u00d7 {sampler.get('draws', '?')} draws "
               f"({sampler.get('tune', '?')} tuning), backend {sampler.get('backend', '?')}, "
               f"target_accept {sampler.get('target_accept', '?')}")
    rows = [
        ("Spec", s.spec),
        ("Model family", s.model),
        ("Method", how),
        ("As-of date", s.as_of or p.get("as_of") or "not set: every row in the evidence table was eligible"),
        ("Seed", _text(p.get("seed"))),
        ("Result created", _text(p.get("created"))),
        ("Evidence table", _text(p.get("evidence_source"))),
        ("Evidence rows used", str(len(s.evidence_rows))),
        ("Report rendered by", f"harmoni-bayes {__version__}"),
    ]
    versions = {k: _text(v) for k, v in (p.get("versions") or {}).items()}
    return rows, versions


# --- figures ------------------------------------------------------------------------------------

def _forest_caption(df: pd.DataFrame) -> str:
    kinds = set(df["kind"])
    parts = []
    if "observed" in kinds:
        parts.append("Grey squares: each published HR with its 95% confidence interval (from the published CI, "
                     "or from the SE where no CI was published).")
    if "posterior" in kinds:
        parts.append("Blue dots: the model's estimate for the same trial or subgroup after borrowing strength, "
                     "with its 95% credible interval.")
    if "summary" in kinds:
        parts.append("Red diamonds: pooled, overall or forecast estimates (95% credible intervals).")
    parts.append("Left of the vertical line (HR 1) favours the experimental arm.")
    return " ".join(parts)


def _densities_caption(df: pd.DataFrame) -> str:
    text = "Solid curves: how plausible each value is after seeing the evidence (posterior)."
    if (df["distribution"] == "prior").any():
        return text + (" Dashed curves: before seeing it (prior). Where the two look alike, the data say little "
                       "about that quantity.")
    return text + " No prior draws were stored with this result, so no prior is overlaid."


def _surrogacy_caption(df: pd.DataFrame) -> str:
    text = ("Each grey point is a reference trial (95% CIs). The blue line and band are the fitted PFS-to-OS "
            "relation (posterior median and 95% credible band).")
    if ((df["kind"] == "target") & df["os_hr"].notna()).any():
        text += " The red diamond is the target trial's forecast OS HR at its observed PFS HR."
    return text


# (name, title, caption from the plotted data, plot, data, shown for which summary.model)
_FIGURES: list[tuple[str, str, Callable, Callable, Callable, Callable[[str], bool]]] = [
    ("forest", "Published estimates and posterior estimates", _forest_caption,
     F.forest_plot, F.forest_plot_data, lambda m: m != "surrogacy"),
    ("densities", "Posterior and prior", _densities_caption,
     F.posterior_densities, F.posterior_densities_data, lambda m: True),
    ("surrogacy", "PFS and OS effects across reference trials", _surrogacy_caption,
     F.surrogacy_scatter, F.surrogacy_scatter_data, lambda m: m in ("os_forecast", "surrogacy")),
]


def _figures(result: Result) -> list[FigureView]:
    out = []
    for name, title, caption, plot, data_fn, wanted in _FIGURES:
        if not wanted(result.summary.model):
            continue
        data = data_fn(result)
        if data.empty:
            continue
        fig = plot(result)
        try:
            png = F.figure_png_base64(fig)
        finally:
            fig.clf()  # made without pyplot, so nothing global holds it; clear to release memory now
        out.append(FigureView(name, title, caption(data), png, data))
    return out


def build_report(result: Result) -> ReportContent:
    """Compute everything a report shows, once."""
    exp, ctl = _arms(result)
    prov, versions = _provenance(result)
    spec = result.spec or {}
    return ReportContent(
        spec=result.summary.spec,
        title=_text(spec.get("title")) or result.summary.spec,
        question=_text(spec.get("question")),
        model=result.summary.model,
        method=result.summary.method,
        as_of=result.summary.as_of,
        when=_when(result),
        experimental=exp,
        control=ctl,
        endpoint=_endpoint(result),
        headline=build_headline(result),
        probabilities=_probability_rows(result),
        quantities=_quantity_rows(result),
        evidence_used=_evidence_rows(result.evidence_used),
        evidence_excluded=_evidence_rows(result.evidence_excluded, excluded=True, sources=_excluded_sources(result)),
        figures=_figures(result),
        assumptions=list(result.assumptions),
        diagnostics=_diagnostics(result),
        provenance=prov,
        versions=versions,
        summary=result.summary.to_dict(),
    )


# =============================================================================================
# rendering
# =============================================================================================


def _md_cell(x) -> str:
    return str(x).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_source(parts) -> str:
    return "".join(f"<{u}>" if u else _md_cell(t) for t, u in parts)


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    env.filters["md_source"] = _md_source
    env.tests["number"] = lambda x: isinstance(x, Number)
    return env


def render_html(content: ReportContent) -> str:
    """A self-contained HTML page: inline CSS, figures as base64 PNG, no scripts, nothing fetched."""
    return _env(True).get_template("report.html.j2").render(c=content)


def render_markdown(content: ReportContent) -> str:
    """Markdown; figures are embedded as data-URI PNGs."""
    return _env(False).get_template("report.md.j2").render(c=content)


def render_json(content: ReportContent) -> str:
    """The content as JSON (figures as their plotted data, without the images)."""
    return json.dumps(_clean(content.to_dict()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


RENDERERS: dict[str, Callable[[ReportContent], str]] = {"html": render_html, "md": render_markdown,
                                                        "json": render_json}


def write_report(result_dir: str | Path, fmt: str = "html") -> list[Path]:
    """Render the result saved in ``result_dir`` and write ``report.<ext>`` there (atomically).

    ``fmt``: ``html``, ``md``, ``json`` or ``all``.  Returns the paths written.
    """
    fmts = list(FORMATS) if fmt == "all" else [fmt]
    unknown = [f for f in fmts if f not in FORMATS]
    if unknown:
        raise ValueError(f"fmt must be one of html, md, json or all, not {fmt!r}")
    result_dir = Path(result_dir)
    content = build_report(load_result(result_dir))
    written = []
    for f in fmts:
        path = result_dir / FORMATS[f]
        atomic_write(path, RENDERERS[f](content))
        written.append(path)
    return written


# --- index --------------------------------------------------------------------------------------


def _index_entry(report_dir: Path, out_dir: Path) -> dict:
    report_dir = Path(report_dir)
    rj, sj = report_dir / "report.json", report_dir / "summary.json"
    html_path = report_dir / "report.html"
    entry = {
        "dir": str(report_dir),
        "href": os.path.relpath(html_path, out_dir).replace(os.sep, "/") if html_path.exists() else None,
        "headline": [],
    }
    if rj.exists():
        d = json.loads(rj.read_text(encoding="utf-8"))
        entry |= {"spec": d["spec"], "title": d.get("title") or d["spec"], "model": d["model"],
                  "method": d["method"], "when": d.get("when", ""), "status": d["diagnostics"]["status"],
                  "created": d.get("provenance", {}).get("Result created", "")}
        entry["headline"] = [
            Sentence(tuple(p if isinstance(p, str) else Number(p["value"], p["text"], tuple(p["ref"]))
                           for p in s["parts"]), s["role"])
            for s in d["headline"] if s["role"] in ("answer", "estimate")
        ]
    elif sj.exists():
        d = json.loads(sj.read_text(encoding="utf-8"))
        entry |= {"spec": d["spec"], "title": d["spec"], "model": d["model"], "method": d["method"],
                  "when": f"as of {d['as_of']}" if d.get("as_of") else "", "created": "",
                  "status": "PASS" if d.get("diagnostics", {}).get("ok") else "FAIL"}
        if d.get("probabilities"):
            p = d["probabilities"][0]
            entry["headline"] = [Sentence((f"{describe_probability(p['name'])}: ",
                                           Number(p["value"], fmt_probability(p["value"]),
                                                  ("probabilities", p["name"], "value"))), "answer")]
    else:
        entry |= {"spec": report_dir.name, "title": report_dir.name, "model": "", "method": "", "when": "",
                  "status": "", "created": ""}
    return entry


def write_index(report_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write a self-contained ``index.html`` linking each report (``<dir>/report.html``) with its headline.

    Reads each directory's ``report.json`` (written by :func:`write_report`), else its ``summary.json``.
    Links are relative to ``out``, so the folder can be moved or zipped as a whole.
    """
    out = Path(out)
    entries = [_index_entry(Path(d), out.parent) for d in report_dirs]
    page = _env(True).get_template("index.html.j2").render(
        entries=entries, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    atomic_write(out, page)
    return out
