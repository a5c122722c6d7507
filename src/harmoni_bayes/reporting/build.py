"""Build a report's content from a result, once.

:func:`build_report` turns a :class:`~harmoni_bayes.results.Result` into one
:class:`~harmoni_bayes.reporting.content.ReportContent`: headline, probability and quantity tables, evidence
used and left out (with sources, carried by the result: no CSV is re-read), figures, assumptions, the
diagnostics the gate recorded, and provenance.  What is family-specific (headline sentences, plain names,
figures) comes from the family's :class:`~harmoni_bayes.models.base.Presentation`, looked up in the registry
by ``summary.model``; a result of an unregistered family gets the generic headline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..constants import INTERVAL_PROB, LOWER_KEY, UPPER_KEY
from ..errors import SpecError
from ..models import families, get_family
from ..models.base import CI, HeadlineContext, Line, P, Presentation, Q
from ..results import Result, package_versions
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
    TableView,
    TrialFacts,
)
from .figures import FIGURES, figure_svg, headline_quantity, plain_label, trial_rows
from .format import DASH, finite, fmt_estimate, fmt_mcse, fmt_probability, text
from .plain import describe_probability, describe_quantity

__all__ = [
    "REPORT_LINKS",
    "build_findings",
    "build_headline",
    "build_report",
    "build_strip",
    "linkify",
    "presentation_of",
]


def presentation_of(model: str) -> Presentation:
    """The presentation of the family that made a result; the generic one for an unknown family."""
    return get_family(model).presentation if model in families() else Presentation()


# =============================================================================================
# headline: the family's lines, with numbers tied to summary.json
# =============================================================================================


def _number(summary: Any, part: Q | P) -> Number:
    if isinstance(part, P):
        v = {p["name"]: p for p in summary.probabilities}[part.name]["value"]
        return Number(v, fmt_probability(v), ("probabilities", part.name, "value"))
    v = {q["name"]: q for q in summary.quantities}[part.name][part.stat]
    return Number(v, fmt_estimate(v), ("quantities", part.name, part.stat))


def _sentence(summary: Any, ln: Line) -> Sentence:
    out: list[str | Number] = []
    for part in ln.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, CI):
            lo, hi = _number(summary, Q(part.name, LOWER_KEY)), _number(summary, Q(part.name, UPPER_KEY))
            out += [
                _number(summary, Q(part.name)),
                f" ({INTERVAL_PROB:.0%} CrI ",
                lo,
                " to " if _negative(lo, hi) else DASH,
                hi,
                ")",
            ]
        else:
            out.append(_number(summary, part))
    return Sentence(tuple(out), ln.role)


def _negative(lo: Number, hi: Number) -> bool:
    """A range with a negative bound reads "-0.23 to -0.017", not "-0.23\u2013-0.017"."""
    return any(n.value is not None and finite(n.value) and n.value < 0 for n in (lo, hi))


# =============================================================================================
# words about the arms, endpoint and date
# =============================================================================================


_DOSE = re.compile(
    r"\s+\d[\d.,]*\s*(?:mg/kg|mg/m2|mg/m\u00b2|mg|\u00b5g|mcg|g)\b(?:\s+(?:Q\d+W|QD|BID|daily|weekly))?",
    re.IGNORECASE,
)


def _drug(name: str) -> str:
    """An arm name without its dosing: 'ivonescimab 20 mg/kg Q3W' -> 'ivonescimab'."""
    return _DOSE.sub("", name).strip()


def _common_words(values) -> str:
    """The one arm name, or the words all arm names start with ("ivonescimab" for its three trials);
    doses are dropped, so the headline reads 'ivonescimab ... over pembrolizumab'.
    """
    names = list(dict.fromkeys(_drug(v) for v in values if text(v).strip()))
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


def _tables(result: Result, pres: Presentation) -> list[TableView]:
    """The family's declared tables from summary.json, numbers formatted like every other number."""
    out = []
    for t in pres.tables:
        rows = result.summary.extra.get(t.key)
        if not isinstance(rows, list) or not rows:
            continue
        cells = [[_cell(r.get(f)) if isinstance(r, dict) else "" for f, _ in t.columns] for r in rows]
        out.append(TableView(t.title, t.intro, [h for _, h in t.columns], cells))
    return out


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: ""}[v]
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_estimate(v)
    return text(v)


def _arms(result: Result) -> tuple[str, str]:
    rows = trial_rows(result)
    exp = _common_words(rows["experimental"]) if "experimental" in rows else ""
    ctl = _common_words(rows["control"]) if "control" in rows else ""
    return exp or "experimental", ctl or "control"


def _endpoint(result: Result) -> str:
    ev = result.spec.get("evidence") if isinstance(result.spec, dict) else None
    if isinstance(ev, dict) and ev.get("endpoint"):
        return str(ev["endpoint"])
    rows = trial_rows(result)
    eps = sorted({text(e) for e in rows.get("endpoint", [])} - {""})
    return eps[0] if len(eps) == 1 else "the outcome"


def _when(result: Result) -> str:
    if result.summary.as_of:
        return f"as of {result.summary.as_of}"
    rows = trial_rows(result)
    dates = sorted({text(d) for d in rows.get("disclosed", [])} - {""})
    return f"evidence disclosed up to {dates[-1]}" if dates else ""


def _target(result: Result) -> str:
    rows = trial_rows(result)
    trials = list(dict.fromkeys(text(t) for t in rows.get("trial", [])))
    return trials[0] if len(trials) == 1 else ""


def build_headline(result: Result) -> list[Sentence]:
    """The headline sentences of ``result``, from its family's presentation."""
    exp, ctl = _arms(result)
    s = result.summary
    ctx = HeadlineContext(
        experimental=exp,
        control=ctl,
        endpoint=_endpoint(result),
        when=_when(result),
        target=_target(result),
        quantities={q["name"]: q for q in s.quantities},
        probabilities={p["name"]: p for p in s.probabilities},
        spec=result.spec if isinstance(result.spec, dict) else {},
    )
    pres = presentation_of(s.model)
    names = pres.names
    if pres.headline is not None:
        try:
            return [_sentence(s, ln) for ln in pres.headline(ctx)]
        except KeyError:  # a summary lacks a quantity its headline expects: say what there is
            pass
    return [_sentence(s, ln) for ln in _generic_headline(ctx, names)]


def _generic_headline(c: HeadlineContext, names: Mapping[str, str]) -> list[Line]:
    """The first probability and the first quantity, in plain words."""
    out = []
    if c.probabilities:
        name = next(iter(c.probabilities))
        out.append(Line("answer", (f"Probability that {describe_probability(name, names)}: ", P(name), c.when_suffix)))
    if c.quantities:
        name = next(iter(c.quantities))
        desc = describe_quantity(name, names)
        out.append(Line("estimate", (f"{desc[:1].upper()}{desc[1:]}: ", CI(name), ".")))
    return out


# --- tables -----------------------------------------------------------------------------------


def _quantity_rows(result: Result, names: Mapping[str, str]) -> list[QuantityRow]:
    out = []
    for q in result.summary.quantities:
        name = q["name"]

        def num(stat, _q=q, _name=name):
            infinite = stat in _q.get("infinite", ())
            text = "infinite" if infinite else fmt_estimate(_q.get(stat))
            return Number(_q.get(stat), text, ("quantities", _name, stat))

        # HR scales: moments of log HR (the HR's are tail-dominated); results saved before have no log_mean
        log_moments = "log_mean" in q or "log_sd" in q

        out.append(
            QuantityRow(
                name,
                describe_quantity(name, names),
                q.get("scale", ""),
                num("median"),
                num(LOWER_KEY),
                num(UPPER_KEY),
                num("log_mean" if log_moments else "mean"),
                num("log_sd" if log_moments else "sd"),
                "log" if log_moments else "",
            )
        )
    return out


def _probability_rows(result: Result, names: Mapping[str, str]) -> list[ProbabilityRow]:
    return [
        ProbabilityRow(
            p["name"],
            describe_probability(p["name"], names),
            Number(p["value"], fmt_probability(p["value"]), ("probabilities", p["name"], "value")),
            Number(p.get("mcse"), fmt_mcse(p.get("mcse")), ("probabilities", p["name"], "mcse")),
        )
        for p in result.summary.probabilities
    ]


_URL = re.compile(r"https?://[^\s<>\"'\]]+")


def linkify(text: str) -> tuple[tuple[str, str | None], ...]:
    """Split ``text`` into (text, url-or-None) pieces; a URL keeps its balanced parentheses
    (``https://doi.org/10.1016/S0140-6736(24)02722-3``) and drops a closing one that is not its own.
    """
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
    src = text(r.get("source"))
    if src:
        return src
    pfs, os_ = text(r.get("source_url_pfs")), text(r.get("source_url_os"))
    if pfs and os_ and pfs != os_:
        return f"PFS: {pfs}; OS: {os_}"
    return pfs or os_


def _hr_ci(hr, lo, hi) -> str:
    hr, lo, hi = text(hr), text(lo), text(hi)
    if not hr:
        return ""
    return f"{hr} ({lo}{DASH}{hi})" if lo and hi else hr


def _evidence_rows(df: pd.DataFrame, excluded: bool = False) -> list[EvidenceRow]:
    if df is None or len(df) == 0:
        return []
    out = []
    for r in df.to_dict("records"):
        table = text(r.get("table")) or ("reference" if "pfs_hr" in r and text(r.get("pfs_hr")) else "trials")
        if text(r.get("pfs_hr")) or text(r.get("os_hr")):
            est = "; ".join(
                f"{ep.upper()} " + _hr_ci(r.get(f"{ep}_hr"), r.get(f"{ep}_ci_lower"), r.get(f"{ep}_ci_upper"))
                for ep in ("pfs", "os")
                if text(r.get(f"{ep}_hr"))
            )
        else:
            est = _hr_ci(r.get("hr"), r.get("ci_lower"), r.get("ci_upper"))
        se = r.get("se")
        se_text = f"{float(se):.3g} ({text(r.get('se_method'))})" if finite(se) else ""
        subgroup = text(r.get("subgroup"))
        if not subgroup and text(r.get("subgroup_factor")):
            subgroup = f"{text(r.get('subgroup_factor'))}={text(r.get('subgroup_level'))}"
        out.append(
            EvidenceRow(
                row_id=text(r.get("row_id")),
                table=table,
                trial=text(r.get("comparison")) or text(r.get("trial")),
                endpoint=text(r.get("endpoint")) or ("PFS and OS" if table == "reference" else ""),
                subgroup=subgroup,
                estimate=est,
                se=se_text,
                disclosed=text(r.get("disclosed")) or text(r.get("os_analysis")),
                source_kind=text(r.get("source_kind")),
                source=linkify(_source_of(r)),
                reason=text(r.get("reason")) if excluded else "",
            )
        )
    return out


# --- diagnostics and provenance -----------------------------------------------------------------


def _diagnostics(result: Result) -> DiagnosticsView:
    """What the diagnostics gate recorded in summary.json, in words; nothing is recomputed here."""
    d = result.summary.diagnostics or {}
    ok = bool(d.get("ok", False))
    status = "PASS" if ok else "FAIL"
    if result.summary.method == "exact":
        return DiagnosticsView(status, "exact computation; no MCMC diagnostics needed")
    fmt = {"max_rhat": "{:.3f}", "min_ess_bulk": "{:.0f}", "min_ess_tail": "{:.0f}", "divergences": "{:.0f}"}
    checks = []
    for c in d.get("checks") or []:
        value = c.get("value")
        shown = fmt.get(c["name"], "{:.3g}").format(value) if finite(value) else DASH
        op = {"<=": "\u2264", ">=": "\u2265"}.get(c["op"], c["op"])
        checks.append(
            DiagnosticCheck(
                _CHECK_LABELS.get(c["name"], c["name"]),
                Number(value, shown, ("diagnostics", c["name"])),
                f"{op} {c['threshold']:g}",
                bool(c["ok"]),
            )
        )
    problems = tuple(d.get("problems") or ())
    if ok:
        message = "MCMC diagnostics pass: the chains agree, there are enough effective draws and no divergences."
    else:
        message = (
            "MCMC diagnostics FAIL: "
            + ("; ".join(problems) or "see the checks below")
            + ". Do not rely on these numbers before refitting (more draws or a higher target_accept)."
        )
    return DiagnosticsView(status, message, tuple(checks), problems)


_CHECK_LABELS = {
    "max_rhat": "largest R-hat (chains agree)",
    "min_ess_bulk": "smallest bulk ESS (effective draws)",
    "min_ess_tail": "smallest tail ESS (effective draws in the tails)",
    "divergences": "divergent transitions",
}


def _provenance(result: Result) -> tuple[list[tuple[str, str]], dict[str, str]]:
    p, s, spec = result.provenance or {}, result.summary, result.spec or {}
    sampler = spec.get("sampler") or {}
    files = p.get("evidence_files") or ({p["evidence_source"]: ""} if p.get("evidence_source") else {})
    if s.method == "exact":
        how = "exact grid computation over tau (iid draws stored for figures only)"
    else:
        how = (
            f"MCMC, {sampler.get('chains', '?')} chains \u00d7 {sampler.get('draws', '?')} draws "
            f"({sampler.get('tune', '?')} tuning), backend {sampler.get('backend', '?')}, "
            f"target_accept {sampler.get('target_accept', '?')}"
            + "".join(f" ({block}: {value})" for block, value in (sampler.get("block_target_accept") or {}).items())
        )
    rows = [
        ("Spec", s.spec),
        ("Model family", s.model),
        ("Method", how),
        ("As-of date", s.as_of or p.get("as_of") or "not set: every row in the evidence table was eligible"),
        ("Seed", text(p.get("seed"))),
        ("Result created", text(p.get("created"))),
        *[(f"Evidence file ({sha[:12]})" if sha else "Evidence file", name) for name, sha in files.items()],
        ("Evidence rows used", str(len(s.evidence_rows))),
        ("Report rendered by", f"harmoni-bayes {package_versions()['harmoni-bayes']}"),
    ]
    versions = {k: text(v) for k, v in (p.get("versions") or {}).items()}
    return rows, versions


# --- figures ------------------------------------------------------------------------------------


def figure_names(result: Result, pres: Presentation) -> list[str]:
    """The figures a report draws: the family's, plus the probability-of-benefit curve (``benefit``) when the
    headline quantity is on the HR scale or the family declares its own curves (after the forest plot and
    densities, before the family's own figures).
    """
    names = list(pres.figures)
    if "benefit" not in names and (headline_quantity(result) is not None or pres.benefit is not None):
        at = max((i + 1 for i, n in enumerate(names) if n in ("forest", "densities")), default=len(names))
        names.insert(at, "benefit")
    return names


def _figures(result: Result, pres: Presentation) -> list[FigureView]:
    out = []
    for name in figure_names(result, pres):
        if name not in FIGURES:
            raise SpecError(f"model {result.summary.model!r} asks for figure {name!r}; known: {', '.join(FIGURES)}")
        fig_def = FIGURES[name]
        data = fig_def.data(result)
        if data.empty:
            continue
        fig = fig_def.plot(result)
        try:
            svg = figure_svg(fig)
        finally:
            fig.clf()  # made without pyplot, so nothing global holds it; clear to release memory now
        out.append(FigureView(name, fig_def.title, fig_def.caption(data), svg, data))
    return out


# --- the sensitivity strip ----------------------------------------------------------------------


def build_strip(summary: Any) -> Strip | None:
    """The sensitivity strip a summary carries (``summary.json`` key ``strip``), its numbers tied to their place
    there (``("strip", <row label>, <key>)``); None when there is none or it holds no rows.
    """
    raw = (summary.extra or {}).get("strip")
    if not isinstance(raw, dict) or not isinstance(raw.get("rows"), list):
        return None
    rows = []
    for r in raw["rows"]:
        if not isinstance(r, dict) or not text(r.get("label")):
            continue
        label = text(r["label"])

        def num(key, fmt, _r=r, _label=label):
            v = _r.get(key)
            v = float(v) if finite(v) else None
            return Number(v, fmt(v), ("strip", _label, key))

        rows.append(
            StripRow(
                label=label,
                probability=num("probability", fmt_probability),
                median=num("median", fmt_estimate),
                lower=num("lower", fmt_estimate),
                upper=num("upper", fmt_estimate),
                headline=bool(r.get("headline", False)),
                note=text(r.get("note")),
            )
        )
    if not rows:
        return None
    title, probability = text(raw.get("title")) or "Sensitivity", text(raw.get("probability")) or "probability"
    return Strip(title, probability, tuple(rows), text(raw.get("quantity")))


# --- summary of findings ------------------------------------------------------------------------

_REGION_WIDE = re.compile(r"\b(global|international|multinational|multi-regional|worldwide)\b(\s*\([^)]*\))?", re.I)
_PLACES = (
    "China",
    "Japan",
    "Korea",
    "Taiwan",
    "India",
    "East Asia",
    "Asia",
    "Europe",
    "North America",
    "United States",
    "USA",
    "Latin America",
    "Australia",
)
_PLACE = re.compile(r"\b(" + "|".join(re.escape(p) for p in _PLACES) + r")\b")
_FOLLOW_UP = re.compile(r"median follow[- ]up (?:of )?(\d+(?:\.\d+)?)\s*(?:mo|months?)\b", re.I)
SECONDARY_SOURCES = ("secondary", "news", "press")
"""Source kinds that are not a peer-reviewed paper or a conference presentation."""
NOT_ADVICE = (
    "This summarises published trial results with a statistical model; it is not a treatment recommendation and "
    "does not replace clinical judgement, the full publications or guidelines."
)


def region_of(population: str) -> str:
    """Where a trial enrolled, from its population text: ``global (Asia, Europe, North America)``, ``China``, or ''."""
    m = _REGION_WIDE.search(population)
    if m:
        return m.group(0).strip()
    return ", ".join(dict.fromkeys(_PLACE.findall(population)))


def _count(x: Any) -> str:
    return f"{float(x):.0f}" if finite(_num(x)) else ""


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if finite(v) else None


def _months(x: Any) -> str:
    v = _num(x)
    return f"{v:g} mo" if v is not None else ""


def _trial_facts(rows: pd.DataFrame) -> list[TrialFacts]:
    out: dict[tuple[str, str], TrialFacts] = {}
    for r in rows.to_dict("records"):
        trial, endpoint = text(r.get("trial")), text(r.get("endpoint"))
        if (trial, endpoint) in out:
            continue
        population = text(r.get("population"))
        fu = _FOLLOW_UP.search(text(r.get("note")) + " " + text(r.get("analysis")))
        mat = _num(r.get("maturity"))
        maturity = f"{mat:.0%} of events" if mat is not None and mat <= 1 else ""
        kind = text(r.get("analysis_kind"))
        out[(trial, endpoint)] = TrialFacts(
            trial=trial,
            endpoint=endpoint,
            population=population,
            region=region_of(population),
            experimental=text(r.get("experimental")),
            control=text(r.get("control")),
            n_experimental=_count(r.get("n_experimental")),
            n_control=_count(r.get("n_control")),
            median_experimental=_months(r.get("median_experimental")),
            median_control=_months(r.get("median_control")),
            follow_up=f"{fu.group(1)} mo" if fu else "",
            cutoff=text(r.get("data_cutoff"))
            or (f"disclosed {text(r.get('disclosed'))}" if text(r.get("disclosed")) else ""),
            maturity=", ".join(x for x in (maturity, kind) if x),
            source_kind=text(r.get("source_kind")),
        )
    return list(out.values())


def _threats(result: Result, trials: pd.DataFrame, facts: list[TrialFacts]) -> list[str]:
    out = []
    region = {f.trial: f.region for f in facts}
    single = {t: r for t, r in region.items() if r and "," not in r and not _REGION_WIDE.search(r)}
    places = sorted(set(single.values()))
    if single and len(single) == len(region) and len(places) == 1:
        out.append(f"single-country evidence (every trial enrolled in {places[0]} only)")
    elif single and len(places) == 1:
        out.append(f"{len(single)} of {len(region)} trials enrolled in {places[0]} only")
    immature = []
    for r in trials.to_dict("records"):
        if text(r.get("endpoint")).upper() != "OS":
            continue
        mat, kind = _num(r.get("maturity")), text(r.get("analysis_kind")).lower()
        if (mat is not None and mat < 0.5) or kind == "interim":
            said = f"{mat:.0%} of deaths" if mat is not None else kind
            immature.append(f"{text(r.get('trial'))} ({said})")
    if immature:
        out.append("immature overall survival: " + ", ".join(dict.fromkeys(immature)))
    kinds = [text(r.get("source_kind")).lower() for r in trials.to_dict("records")]
    secondary = [k for k in kinds if k in SECONDARY_SOURCES]
    if secondary:
        verb = "rows comes" if len(secondary) == 1 else "rows come"
        out.append(
            f"{len(secondary)} of {len(kinds)} evidence {verb} from "
            + "/".join(sorted(set(secondary)))
            + " sources, not peer-reviewed papers"
        )
    n_trials = len({text(t) for t in trials.get("trial", [])} - {""})
    if n_trials and n_trials < 3:
        out.append("a single trial" if n_trials == 1 else f"only {n_trials} trials")
    ref = result.evidence_used
    if ref is not None and "table" in getattr(ref, "columns", []):
        n_ref = int((ref["table"] == "reference").sum())
        if 0 < n_ref < 10:
            out.append(f"only {n_ref} reference comparisons to learn the PFS-to-OS relation from")
    if not (result.summary.diagnostics or {}).get("ok", True):
        out.append("the MCMC diagnostics failed, so the numbers may be inaccurate")
    return out


def _answer(result: Result) -> list[Sentence]:
    """The family's answer to the question (its first headline answer), then, for an HR headline quantity, its
    probability of benefit (unless the answer already gives it) and its median with the 95% CrI.
    """
    s = result.summary
    out = [x for x in build_headline(result) if x.role == "answer"][:1]
    name = headline_quantity(result)
    if name is None:
        return out
    words = plain_label(result, name)
    p_name = f"P({name}<1)"
    said = {n.ref[1] for x in out for n in x.numbers}
    if p_name in {p["name"] for p in s.probabilities} and p_name not in said:
        out.append(_sentence(s, Line("estimate", (f"Probability that the {words} is below 1: ", P(p_name), "."))))
    out.append(_sentence(s, Line("estimate", (f"The {words}: ", CI(name), "."))))
    return out


def build_findings(result: Result) -> Findings:
    """The summary of findings: trials (population, region, arms, N per arm, medians, follow-up, data cut-off)
    from the evidence rows the result carries, the answer (the headline quantity's probability of benefit and
    interval) and the threats to certainty the evidence rows show.  Columns a table lacks are left blank.
    """
    trials = trial_rows(result)
    facts = _trial_facts(trials) if len(trials) else []
    used = result.evidence_used
    n_ref = int((used["table"] == "reference").sum()) if used is not None and "table" in used.columns else 0
    parts = []
    if facts:
        n = len({f.trial for f in facts})
        parts.append(f"{n} trial{'s' if n != 1 else ''} ({len(trials)} evidence row{'s' if len(trials) != 1 else ''})")
    if n_ref:
        parts.append(f"{n_ref} reference comparisons of PFS and OS hazard ratios")
    evidence = (
        "Evidence used: " + (" and ".join(parts) if parts else "none listed") + f" {_when(result)}".rstrip() + "."
    )
    return Findings(tuple(facts), evidence, tuple(_answer(result)), tuple(_threats(result, trials, facts)), NOT_ADVICE)


REPORT_LINKS = (
    ("all reports", "../index.html"),
    ("summary.csv", "summary.csv"),
    ("summary.json", "summary.json"),
    ("posterior.nc", "posterior.nc"),
)
"""Links every report carries, relative to its folder: the index of a run (one level up) and the result's data."""


def build_report(result: Result) -> ReportContent:
    """Compute everything a report shows, once."""
    exp, ctl = _arms(result)
    prov, versions = _provenance(result)
    spec = result.spec or {}
    pres = presentation_of(result.summary.model)
    names = pres.names
    return ReportContent(
        spec=result.summary.spec,
        title=text(spec.get("title")) or result.summary.spec,
        question=text(spec.get("question")),
        model=result.summary.model,
        method=result.summary.method,
        as_of=result.summary.as_of,
        when=_when(result),
        experimental=exp,
        control=ctl,
        endpoint=_endpoint(result),
        headline=build_headline(result),
        probabilities=_probability_rows(result, names),
        quantities=_quantity_rows(result, names),
        evidence_used=_evidence_rows(result.evidence_used),
        evidence_excluded=_evidence_rows(result.evidence_excluded, excluded=True),
        figures=_figures(result, pres),
        assumptions=list(result.assumptions),
        diagnostics=_diagnostics(result),
        provenance=prov,
        versions=versions,
        summary=result.summary.to_dict(),
        findings=build_findings(result),
        strip=build_strip(result.summary),
        links=list(REPORT_LINKS),
        tables=_tables(result, pres),
    )
