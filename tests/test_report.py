"""Reports and figures: one ReportContent rendered three ways, every shown number traced to summary.json.

Results come from the shipped specs that have an exact engine (well under a second each), saved into a
temporary directory.  The MCMC-only families (os_forecast, surrogacy) are exercised fast through a small
synthetic Result built from seeded draws with the package's own summary functions, and for real, with
few draws, in the tests marked ``slow``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from markupsafe import escape  # what the templates escape with
from matplotlib.figure import Figure

from harmoni_bayes.models import families, get_family
from harmoni_bayes.models.base import Draws
from harmoni_bayes.posterior import from_draws
from harmoni_bayes.reporting import (
    build_report,
    fmt_estimate,
    fmt_probability,
    linkify,
    render_html,
    render_json,
    render_markdown,
    write_index,
    write_report,
)
from harmoni_bayes.reporting import figures as F
from harmoni_bayes.reporting.build import presentation_of
from harmoni_bayes.results import Result, load_result, save_result
from harmoni_bayes.summaries import Summary, probabilities_from_draws, quantities_from_draws
from helpers import EXACT_SPECS, MCMC_GROUP, MCMC_SPECS, REPO, lookup, shows

SPECS = EXACT_SPECS
SPEC_NAMES = [p.stem for p in SPECS]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


# result_dirs, results, contents, htmls: session fixtures in conftest.py, shared with test_report_reading.py


def summary_json(result_dir: Path) -> dict:
    return json.loads((result_dir / "summary.json").read_text())


def significant_digits(text: str) -> int:
    digits = re.sub(r"[^0-9]", "", text.split("e")[0]).lstrip("0")
    return len(digits)


class NumSpans(HTMLParser):
    """Collect every <span class="num"> with its attributes, text and enclosing section/table."""

    def __init__(self):
        super().__init__()
        self.spans: list[dict] = []
        self.section: list[str] = []
        self.table: str | None = None
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section.append(a.get("id", ""))
        elif tag == "table":
            self.table = a.get("class")
        elif tag == "span" and "num" in (a.get("class") or "").split():
            self._open = {**a, "text": "", "section": self.section[-1] if self.section else "", "table": self.table}

    def handle_endtag(self, tag):
        if tag == "section" and self.section:
            self.section.pop()
        elif tag == "table":
            self.table = None
        elif tag == "span" and self._open is not None:
            self.spans.append(self._open)
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data


def num_spans(html: str) -> list[dict]:
    p = NumSpans()
    p.feed(html)
    return p.spans


class Refs(HTMLParser):
    """Every (tag, attribute, value) that loads something, plus <style> text."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data", "poster", "action") and v is not None:
                self.refs.append((tag, k, v))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def loaded_refs(html: str) -> Refs:
    p = Refs()
    p.feed(html)
    return p


# --- a synthetic result of the future families (os_forecast / surrogacy) ------------------------


def fake_forecast_result(model: str = "os_forecast", method: str = "mcmc", ok: bool = True) -> Result:
    rng = np.random.default_rng(20240908)
    n = 2000
    slope = rng.normal(0.55, 0.12, n)
    intercept = rng.normal(-0.02, 0.05, n)
    residual_sd = np.abs(rng.normal(0.08, 0.03, n))
    tau_pfs = np.abs(rng.normal(0.3, 0.05, n))
    os_hr = np.exp(rng.normal(-0.35, 0.15, n))
    later = np.clip(rng.beta(8, 4, n), 0, 1)
    b2 = slope**2 * tau_pfs**2
    draws = [
        Draws("slope", "identity", slope[None, :]),
        Draws("intercept", "log", intercept[None, :]),
        Draws("residual_sd", "sd", residual_sd[None, :]),
        Draws("r2_trial", "identity", (b2 / (b2 + residual_sd**2))[None, :]),
        Draws("os_hr", "hr", os_hr[None, :]),
    ]
    probs = [
        Draws("P(slope>0)", "identity", (slope > 0).astype(float)[None, :]),
        Draws("P(os_hr<1)", "identity", (os_hr < 1).astype(float)[None, :]),
        Draws("P(later_os_significant)", "identity", later[None, :]),
    ]
    idata = from_draws({"slope": slope, "intercept": intercept, "os_hr": os_hr}, coords={}, dims={})
    ref = pd.DataFrame(
        {
            "row_id": [f"REF-{i}|ref|{i:06d}" for i in range(4)],
            "trial": ["KEYNOTE-024", "KEYNOTE-189", "IMpower150", "CheckMate 9LA"],
            "comparison": ["KEYNOTE-024", "KEYNOTE-189", "IMpower150", "CheckMate 9LA"],
            "pfs_hr": [0.50, 0.52, 0.62, 0.70],
            "pfs_ci_lower": [0.37, 0.43, 0.52, 0.57],
            "pfs_ci_upper": [0.68, 0.64, 0.74, 0.86],
            "os_hr": [0.60, 0.49, 0.78, 0.66],
            "os_ci_lower": [0.41, 0.38, 0.64, 0.55],
            "os_ci_upper": [0.89, 0.64, 0.96, 0.80],
            "source_url_pfs": ["https://example.org/a", "https://example.org/b", "https://example.org/c", ""],
            "source_url_os": ["https://example.org/a2", "https://example.org/b", "https://example.org/c2", ""],
            "table": "reference",
        }
    )
    target = pd.DataFrame(
        {
            "row_id": ["HARMONi-2|PFS|overall=ITT|2025-03-08|9b8041"],
            "trial": ["HARMONi-2"],
            "endpoint": ["PFS"],
            "subgroup_factor": ["overall"],
            "subgroup_level": ["ITT"],
            "experimental": ["ivonescimab 20 mg/kg Q3W"],
            "control": ["pembrolizumab 200 mg Q3W"],
            "hr": [0.51],
            "ci_lower": [0.38],
            "ci_upper": [0.69],
            "se": [0.152],
            "se_method": ["ci"],
            "disclosed": ["2025-03-08"],
            "source": ["https://doi.org/10.1016/S0140-6736(24)02722-3 (as reported by https://example.org/x)"],
            "source_kind": ["journal"],
            "table": "trials",
        }
    )
    diagnostics = {
        "max_rhat": 1.002 if ok else 1.05,
        "min_ess_bulk": 1500.0 if ok else 120.0,
        "min_ess_tail": 1200.0,
        "divergences": 0 if ok else 3,
        "ok": ok,
        "problems": [] if ok else ["max R-hat 1.050 > 1.01", "3 divergent transitions (allowed 0)"],
    }
    diagnostics["checks"] = [
        {"name": "max_rhat", "value": diagnostics["max_rhat"], "op": "<=", "threshold": 1.01, "ok": ok},
        {"name": "min_ess_bulk", "value": diagnostics["min_ess_bulk"], "op": ">=", "threshold": 400, "ok": ok},
        {"name": "min_ess_tail", "value": 1200.0, "op": ">=", "threshold": 400, "ok": True},
        {"name": "divergences", "value": diagnostics["divergences"], "op": "<=", "threshold": 0, "ok": ok},
    ]
    summary = Summary(
        spec=f"fake_{model}",
        model=model,
        method=method,
        as_of="2025-03-31",
        evidence_rows=list(target.row_id) + list(ref.row_id),
        quantities=quantities_from_draws(draws),
        probabilities=probabilities_from_draws(probs),
        diagnostics=diagnostics,
    )
    return Result(
        spec={
            "name": f"fake_{model}",
            "title": "Synthetic OS forecast",
            "question": "Will OS follow PFS?",
            "model": model,
            "diagnostics": {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0},
        },
        summary=summary,
        idata=idata,
        evidence_used=pd.concat([target, ref], ignore_index=True),
        evidence_excluded=pd.DataFrame(
            {"row_id": ["OAK|ref|000009"], "trial": ["OAK"], "reason": ["line 2L not selected"]}
        ),
        assumptions=["Surrogacy: the PFS-to-OS relation carries over.", "Proportional hazards."],
        provenance={
            "seed": 1,
            "method": method,
            "as_of": "2025-03-31",
            "created": "2025-04-01T00:00:00+00:00",
            "versions": {"pymc": "x"},
        },
    )


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.506744, "0.51"),
        (0.697, "0.70"),
        (1.05787, "1.06"),
        (0.00480889, "0.0048"),
        (12.34, "12.3"),
        (1754.78, "1,755"),
        (0.0, "0"),
        (None, "\u2013"),
        (float("nan"), "\u2013"),
        (-0.0469, "-0.047"),
    ],
)
def test_fmt_estimate(x, text):
    assert fmt_estimate(x) == text


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.43, "0.43"),
        (0.99675, "0.997"),
        (0.994, "0.99"),
        (0.9996, ">0.999"),
        (1.0, ">0.999"),
        (0.0, "0"),
        (0.0004, "<0.001"),
        (0.002, "0.002"),
        (0.5, "0.50"),
    ],
)
def test_fmt_probability(p, text):
    assert fmt_probability(p) == text


def test_linkify_keeps_doi_parentheses_and_drops_the_closing_one():
    parts = linkify("https://doi.org/10.1016/S0140-6736(24)02722-3 (as reported by https://ascopost.com/a-b)")
    links = [u for _, u in parts if u]
    assert links == ["https://doi.org/10.1016/S0140-6736(24)02722-3", "https://ascopost.com/a-b"]
    assert "".join(t for t, _ in parts).endswith("a-b)")


# ---------------------------------------------------------------------------------------------
# one content object, three renderings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_write_report_all_formats(result_dirs, name):
    paths = write_report(result_dirs[name], fmt="all")
    assert [p.name for p in paths] == ["report.html", "report.md", "report.json"]
    html, md, js = (p.read_text(encoding="utf-8") for p in paths)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert md.startswith("# ")
    data = json.loads(js)
    summary = summary_json(result_dirs[name])
    assert data["spec"] == summary["spec"] == name
    assert data["summary"]["file"] == "summary.json"
    assert data["summary"]["sha256"] == hashlib.sha256((result_dirs[name] / "summary.json").read_bytes()).hexdigest()
    for section in ("Headline", "Figures", "Probabilities", "Evidence", "Assumptions", "Diagnostics", "Provenance"):
        assert f"## {section}" in md or f"## {section}:" in md
        assert section in html


def test_write_report_single_format_and_bad_format(result_dirs):
    d = result_dirs["ivonescimab_pfs_meta"]
    assert write_report(d, fmt="json") == [d / "report.json"]
    with pytest.raises(ValueError, match="html, md, json or all"):
        write_report(d, fmt="pdf")


def test_renderers_share_one_content(contents):
    c = contents["harmoni2_pfs_pdl1"]
    html, md, js = render_html(c), render_markdown(c), json.loads(render_json(c))
    for s in c.headline:
        assert s.text in md
        joined = ["".join(p if isinstance(p, str) else p["text"] for p in h["parts"]) for h in js["headline"]]
        assert s.text in joined
    for n in c.headline_numbers:
        assert f">{escape(n.text)}</span>" in html


# ---------------------------------------------------------------------------------------------
# every number shown comes from summary.json
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_headline_numbers_match_summary(result_dirs, contents, htmls, name):
    summary = summary_json(result_dirs[name])
    c = contents[name]
    assert c.headline and c.headline[0].role == "answer"
    assert c.headline_numbers
    for n in c.headline_numbers:
        assert n.value == lookup(summary, n.ref), n
        assert shows(n.text, n.value), n
    spans = [s for s in num_spans(htmls[name]) if s["section"] == "headline"]
    assert len(spans) == len(c.headline_numbers)
    for s in spans:
        value = lookup(summary, (s["data-section"], s["data-name"], s["data-stat"]))
        assert float(s["data-value"]) == value
        assert shows(s["text"], value), s


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_probability_table_matches_summary(result_dirs, contents, htmls, name):
    summary = summary_json(result_dirs[name])
    c = contents[name]
    assert [p.name for p in c.probabilities] == [p["name"] for p in summary["probabilities"]]
    for row, p in zip(c.probabilities, summary["probabilities"], strict=True):
        assert row.value.value == p["value"] and shows(row.value.text, p["value"])
        assert row.mcse.value == p["mcse"] and shows(row.mcse.text, p["mcse"])
    spans = [s for s in num_spans(htmls[name]) if s["table"] == "probabilities"]
    assert len(spans) == 2 * len(summary["probabilities"])
    shown = {(s["data-name"], s["data-stat"]): s for s in spans}
    for p in summary["probabilities"]:
        for stat in ("value", "mcse"):
            s = shown[(p["name"], stat)]
            assert float(s["data-value"]) == p[stat] and shows(s["text"], p[stat])
    md = render_markdown(c)
    for row in c.probabilities:
        assert f"| `{row.name}` | {row.value.text} | {row.mcse.text} |" in md


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_displayed_number_matches_summary_and_has_two_or_three_digits(result_dirs, htmls, name):
    summary = summary_json(result_dirs[name])
    spans = num_spans(htmls[name])
    assert spans
    for s in spans:
        value = lookup(summary, (s["data-section"], s["data-name"], s["data-stat"]))
        if s["text"] == "infinite":  # a moment that does not exist (the STE's): null, and named so in the record
            record = next(q for q in summary["quantities"] if q["name"] == s["data-name"])
            assert value is None and s["data-stat"] in record["infinite"], s
            continue
        assert shows(s["text"], value), s
        if s["data-section"] in ("quantities", "probabilities") and s["text"] not in ("0", ">0.999", "<0.001"):
            assert significant_digits(s["text"]) in (1, 2, 3), s  # 1 only for numbers like 0.002


def test_headline_by_family(contents):
    assert {"random_effects", "subgroups", "os_forecast", "surrogacy"} <= set(families())
    assert all(get_family(f).presentation.headline is not None for f in families())
    meta = contents["ivonescimab_pfs_meta"]
    assert meta.headline[0].numbers[0].ref == ("probabilities", "P(hr_pooled<1)", "value")
    assert "improves PFS over control (pooled HR < 1)" in meta.headline[0].text
    assert meta.headline[1].numbers[0].ref == ("quantities", "hr_pooled", "median")
    assert "95% CrI" in meta.headline[1].text
    pdl1 = contents["harmoni2_pfs_pdl1"]
    assert "ivonescimab improves PFS over pembrolizumab overall" in pdl1.headline[0].text
    refs = [n.ref[1] for n in pdl1.headline_numbers]
    assert "hr_overall" in refs and "hr_ratio[TPS 1-49%/TPS >=50%]" in refs
    assert "P(hr_ratio[TPS 1-49%/TPS >=50%]<1)" in refs


def test_os_forecast_headline_separates_the_two_probabilities():
    r = fake_forecast_result("os_forecast")
    c = build_report(r)
    refs = [n.ref[1] for n in c.headline_numbers]
    assert refs[0] == "P(os_hr<1)" and "os_hr" in refs and "P(later_os_significant)" in refs
    assert "as of 2025-03-31" in c.headline[0].text
    assert any(s.role == "note" and "differ" in s.text for s in c.headline)
    summary = r.summary.to_dict()
    for n in c.headline_numbers:
        assert n.value == lookup(summary, n.ref) and shows(n.text, n.value)
    assert [f.name for f in c.figures] == ["forest", "densities", "benefit", "surrogacy"]
    html = render_html(c)
    assert 'href="https://doi.org/10.1016/S0140-6736(24)02722-3"' in html
    assert "line 2L not selected" in html


def test_surrogacy_headline_reports_slope_and_r2():
    c = build_report(fake_forecast_result("surrogacy"))
    refs = [n.ref[1] for n in c.headline_numbers]
    assert refs[:2] == ["slope", "slope"] and "r2_trial" in refs and "P(slope>0)" in refs


def test_unknown_family_gets_a_generic_headline():
    r = fake_forecast_result("some_future_family")
    c = build_report(r)
    assert c.headline[0].numbers[0].ref == ("probabilities", r.summary.probabilities[0]["name"], "value")


# ---------------------------------------------------------------------------------------------
# evidence, assumptions, diagnostics, provenance
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_evidence_used_and_left_out_are_listed_with_sources_and_reasons(results, htmls, name):
    r, page = results[name], htmls[name]
    sources = [c for c in ("source", "source_url_pfs", "source_url_os") if c in r.evidence_used]  # trial, reference
    for row in r.evidence_used.itertuples():
        assert escape(row.row_id) in page
        for column in sources:
            text = getattr(row, column)
            for url in re.findall(r"https?://[^\s)]+", text if isinstance(text, str) else ""):
                assert f'href="{escape(url)}' in page
    for row in r.evidence_excluded.itertuples():
        assert escape(row.row_id) in page
        assert escape(row.reason) in page


def test_left_out_rows_show_the_source_the_result_carries(contents, results):
    excluded = contents["harmoni2_pfs_pdl1"].evidence_excluded
    assert [e.row_id for e in excluded] == list(results["harmoni2_pfs_pdl1"].evidence_excluded.row_id)
    for e in excluded:
        assert e.reason.startswith("conflicting report")
        assert e.links and all(u.startswith("https://") for u in e.links)


def test_doi_links_are_clickable(htmls):
    assert '<a href="https://doi.org/10.1016/S0140-6736(24)02722-3"' in htmls["ivonescimab_pfs_meta"]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_assumptions_diagnostics_provenance(results, contents, htmls, name):
    r, c, page = results[name], contents[name], htmls[name]
    for a in r.assumptions:
        assert escape(a) in page
    assert any(a.startswith("Exchangeability") for a in c.assumptions)
    assert any("Proportional hazards" in a for a in c.assumptions)
    assert c.diagnostics.status == "PASS"
    assert c.diagnostics.message == "exact computation; no MCMC diagnostics needed"
    prov = dict(c.provenance)
    assert prov["Spec"] == name and prov["Seed"] == str(r.provenance["seed"])
    assert prov["Result created"] == r.provenance["created"]
    assert c.versions["pymc"] == r.provenance["versions"]["pymc"]
    assert "pymc " + c.versions["pymc"] in page


def test_failed_mcmc_diagnostics_say_fail():
    c = build_report(fake_forecast_result(ok=False))
    assert c.diagnostics.status == "FAIL"
    assert "max R-hat 1.050 > 1.01" in c.diagnostics.message
    failed = [k.label for k in c.diagnostics.checks if not k.ok]
    assert any("R-hat" in f for f in failed) and any("divergent" in f for f in failed)
    assert 'class="badge FAIL"' in render_html(c)
    ok = build_report(fake_forecast_result(ok=True))
    assert ok.diagnostics.status == "PASS" and all(k.ok for k in ok.diagnostics.checks)


def test_markdown_tables_escape_pipes_in_row_ids(contents):
    md = render_markdown(contents["harmoni2_pfs_pdl1"])
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "HARMONi-2" in ln]
    assert table
    for ln in table:
        assert len(re.findall(r"(?<!\\)\|", ln)) in (7, 9, 10)  # 6 or 8 columns; 9 in the summary of findings


def test_json_is_strict_and_complete(contents):
    data = json.loads(render_json(contents["ivonescimab_pfs_meta"]))  # allow_nan=False when written
    assert {
        "headline",
        "probabilities",
        "quantities",
        "evidence_used",
        "evidence_excluded",
        "figures",
        "assumptions",
        "diagnostics",
        "provenance",
        "versions",
        "summary",
    } <= set(data)
    forest = next(f for f in data["figures"] if f["name"] == "forest")
    assert len(forest["data"]["columns"]["row"]) == 8 and "svg" not in forest


# ---------------------------------------------------------------------------------------------
# self-contained HTML
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_html_is_self_contained(htmls, name):
    refs = loaded_refs(htmls[name])
    assert "script" not in refs.tags  # no JavaScript at all
    for tag, attr, value in refs.refs:
        if tag == "a":
            continue  # source links are for the reader to click, not loaded by the page
        assert not re.match(r"^\s*(https?:)?//", value, re.I), (tag, attr, value)
        assert value.startswith(("data:", "#")), (tag, attr, value)
    assert "http" not in refs.style and "@import" not in refs.style and "url(" not in refs.style


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_image_is_an_embedded_svg(htmls, contents, name):
    imgs = [v for tag, attr, v in loaded_refs(htmls[name]).refs if tag == "img" and attr == "src"]
    assert len(imgs) == len(contents[name].figures) >= 2
    for src in imgs:
        assert src.startswith("data:image/svg+xml;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True).decode("utf-8")
        assert "<svg" in raw and "</svg>" in raw
        assert not re.search(r"(?:href|src)=\"(?!#|data:)", raw)  # nothing fetched from inside the SVG either


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def test_forest_plot_random_effects(results):
    r = results["ivonescimab_pfs_meta"]
    df = F.forest_plot_data(r)
    trials = list(r.evidence_used.trial)
    assert list(df["row"]) == [t for t in trials for _ in (0, 1)] + ["Pooled", "New trial"]
    obs = df[df.kind == "observed"]
    assert list(obs["estimate"]) == list(r.evidence_used.hr) and list(obs["lower"]) == list(r.evidence_used.ci_lower)
    for row in df[df.kind != "observed"].itertuples():
        q = r.summary.quantity(row.source)
        assert (row.estimate, row.lower, row.upper) == (q["median"], q["q2.5"], q["q97.5"])
    fig = F.forest_plot(r)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert any(np.allclose(line.get_xdata(), [1.0, 1.0]) for line in ax.get_lines())  # line of no effect


def test_forest_plot_subgroups_raw_vs_shrunken(results):
    r = results["harmoni2_pfs_pdl1"]
    df = F.forest_plot_data(r)
    assert list(df["source"]) == [
        "hr_raw[TPS 1-49%]",
        "hr[TPS 1-49%]",
        "hr_raw[TPS >=50%]",
        "hr[TPS >=50%]",
        "hr_overall",
    ]
    assert list(df["kind"]) == ["observed", "posterior", "observed", "posterior", "summary"]
    assert df.loc[0, "estimate"] == r.summary.quantity("hr_raw[TPS 1-49%]")["median"]


def test_forest_plot_draws_into_a_given_ax(results):
    fig = Figure()
    ax = fig.add_subplot()
    assert F.forest_plot(results["harmoni2_pfs_histology"], ax=ax) is fig
    assert len(ax.get_lines()) >= 5


def test_posterior_densities_overlay_priors(results):
    r = results["ivonescimab_pfs_meta"]
    df = F.posterior_densities_data(r)
    got = set(zip(df.quantity, df.distribution, strict=True))
    assert got == {(q, d) for q in ("hr_pooled", "hr_new_trial", "tau") for d in ("posterior", "prior")}
    assert (df.density >= 0).all() and (df[df.panel == "hr"].x > 0).all()
    fig = F.posterior_densities(r)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    sub = F.posterior_densities_data(results["harmoni2_pfs_pdl1"])
    assert {"hr_overall", "hr[TPS 1-49%]", "hr[TPS >=50%]", "tau"} == set(sub.quantity)
    assert set(sub[sub.quantity == "hr[TPS >=50%]"].distribution) == {"posterior", "prior"}


def test_surrogacy_scatter():
    r = fake_forecast_result()
    df = F.surrogacy_scatter_data(r)
    assert (df.kind == "reference").sum() == 4 and (df.kind == "target").sum() == 1 and (df.kind == "fit").sum() > 10
    tgt = df[df.kind == "target"].iloc[0]
    q = r.summary.quantity("os_hr")
    assert (tgt.pfs_hr, tgt.os_hr, tgt.os_lower, tgt.os_upper) == (0.51, q["median"], q["q2.5"], q["q97.5"])
    fit = df[df.kind == "fit"]
    slope, intercept = np.median(r.idata.posterior["slope"].values), np.median(r.idata.posterior["intercept"].values)
    mid = fit.iloc[len(fit) // 2]
    assert np.log(mid.os_hr) == pytest.approx(intercept + slope * np.log(mid.pfs_hr), abs=0.02)
    fig = F.surrogacy_scatter(r)
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"


def test_surrogacy_scatter_is_defensive(results):
    r = results["ivonescimab_pfs_meta"]  # no reference rows, no slope draws, no os_hr
    df = F.surrogacy_scatter_data(r)
    assert set(df.kind) <= {"target"} and not np.isfinite(df.os_hr).any()
    assert isinstance(F.surrogacy_scatter(r), Figure)


def test_compare_posteriors_between_dates(results):
    from harmoni_bayes.run import run_spec

    early = run_spec(REPO / "models" / "ivonescimab_pfs_meta.toml", method="exact", as_of="2024-12-31")
    late = run_spec(REPO / "models" / "ivonescimab_pfs_meta.toml", method="exact", as_of="2025-12-31")
    df = F.compare_posteriors_data([late, early], "hr_pooled")
    assert list(df["as_of"]) == ["2024-12-31", "2025-12-31"]
    assert list(df["label"]) == ["as of 2024-12-31", "as of 2025-12-31"]
    for row, r in zip(df.itertuples(), (early, late), strict=True):
        q = r.summary.quantity("hr_pooled")
        assert (row.estimate, row.lower, row.upper) == (q["median"], q["q2.5"], q["q97.5"])
        assert row.p_below_1 == r.summary.probability("P(hr_pooled<1)")["value"]
    fig = F.compare_posteriors([early, late], "hr_pooled")
    assert isinstance(fig, Figure) and len(fig.axes[0].get_yticklabels()) == 2
    assert F.compare_posteriors_data([early], "no_such_quantity").empty


def test_building_a_report_leaks_no_figures(results):
    before = plt.get_fignums()
    c = build_report(results["harmoni2_pfs_pdl1"])
    render_html(c), render_markdown(c), render_json(c)
    assert plt.get_fignums() == before


def test_markdown_escapes_html_from_evidence_and_specs():
    r = fake_forecast_result()
    r.spec["title"] = "Trial <script>alert(1)</script>"
    r.assumptions.append("<img src=x onerror=alert(1)>")
    r.evidence_used.loc[0, "trial"] = "HARMONi-2<b>"
    md = render_markdown(build_report(r))
    assert "<script>" not in md and "<img" not in md and "<b>" not in md
    assert "&lt;script>" in md and "&lt;img src=x" in md


# ---------------------------------------------------------------------------------------------
# index
# ---------------------------------------------------------------------------------------------


def test_write_index_links_each_report_with_its_headline(result_dirs, tmp_path):
    # as `harmoni-bayes run-all` does: copy the reports (not posterior.nc) into reports/<spec>/
    report_dirs = []
    for name, d in result_dirs.items():
        write_report(d, fmt="all")
        target = tmp_path / "reports" / name
        target.mkdir(parents=True)
        for f in ("report.html", "report.md", "report.json", "summary.json"):
            shutil.copy2(d / f, target / f)
        report_dirs.append(target)
    out = write_index(report_dirs, tmp_path / "reports" / "index.html")
    assert out == tmp_path / "reports" / "index.html"
    page = out.read_text(encoding="utf-8")
    for name in result_dirs:
        assert f'href="{name}/report.html"' in page
        assert (out.parent / name / "report.html").exists()
    refs = loaded_refs(page)
    assert "script" not in refs.tags
    assert all(v.startswith("data:") for tag, _, v in refs.refs if tag != "a")
    assert all(not v.startswith(("http", "//")) for tag, _, v in refs.refs)
    spans = num_spans(page)
    assert len(spans) >= 2 * len(result_dirs)  # each entry: its answer and its estimate
    summaries = [summary_json(d) for d in result_dirs.values()]
    for s in spans:
        ref = (s["data-section"], s["data-name"], s["data-stat"])
        assert any(
            s["data-name"] in {item["name"] for item in sm[ref[0]]} and lookup(sm, ref) == float(s["data-value"])
            for sm in summaries
        ), s
        assert shows(s["text"], float(s["data-value"]))


def test_write_index_falls_back_to_summary_json(result_dirs, tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    shutil.copy2(result_dirs["ivonescimab_pfs_meta"] / "summary.json", d / "summary.json")
    page = write_index([d], tmp_path / "index.html").read_text()
    assert "report.html not written" in page
    assert "pooled HR (average across trials) below 1: <span" in page


# ---------------------------------------------------------------------------------------------
# MCMC-only families, for real (few draws): slow
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group(MCMC_GROUP)  # on the worker that fits mcmc_result_dirs for the browser test too
@pytest.mark.parametrize("name", [p.stem for p in MCMC_SPECS])
def test_mcmc_family_report(mcmc_result_dirs, name):
    d = mcmc_result_dirs[name]
    html_path, _, json_path = write_report(d, fmt="all")
    summary = summary_json(d)
    content = json.loads(json_path.read_text())
    assert content["headline"] and content["headline"][0]["role"] == "answer"
    page = html_path.read_text()
    spans = num_spans(page)
    assert [s for s in spans if s["section"] == "headline"]
    for s in spans:
        value = lookup(summary, (s["data-section"], s["data-name"], s["data-stat"]))
        record = next((q for q in summary["quantities"] if q["name"] == s["data-name"]), {})
        if s["data-section"] == "quantities" and s["data-stat"] in record.get("infinite", ()):
            assert s["text"] == "infinite", s  # e.g. the log-scale moments of the STE (a ratio with the slope)
        else:
            assert shows(s["text"], value), s
    assert len([s for s in spans if s["table"] == "probabilities"]) == 2 * len(summary["probabilities"])
    if "surrogacy" not in presentation_of(summary["model"]).figures:
        # the class-aware families: their report tables (model comparison, classes) and the strip instead
        assert [t["title"] for t in content["tables"]] and summary["model_comparison"]
        assert "strip" not in summary or content["strip"]["rows"] == [r["label"] for r in summary["strip"]["rows"]]
        return
    assert "surrogacy" in [f["name"] for f in content["figures"]]
    result = load_result(d)
    scatter = F.surrogacy_scatter_data(result)
    n_ref = int((result.evidence_used["table"] == "reference").sum())
    assert (scatter.kind == "reference").sum() == n_ref >= 3 and (scatter.kind == "fit").sum() > 10
    if summary["model"] == "os_forecast":
        refs = [n["ref"][1] for h in content["headline"] for n in h["parts"] if isinstance(n, dict)]
        assert refs[0] == "P(os_hr<1)" and "P(later_os_significant)" in refs
        tgt = scatter[scatter.kind == "target"].iloc[0]
        assert tgt.os_hr == lookup(summary, ("quantities", "os_hr", "median"))
    for tag, _, v in loaded_refs(page).refs:
        assert tag == "a" or v.startswith(("data:", "#"))


def test_report_prints_the_checks_the_gate_recorded():
    """The report shows the gate's recorded thresholds and verdicts; it never recomputes them."""
    loose = fake_forecast_result(ok=False)
    for c in loose.summary.diagnostics["checks"]:
        c["threshold"], c["ok"] = {"max_rhat": 1.1, "min_ess_bulk": 100, "divergences": 5}.get(c["name"], 400), True
    checks = build_report(loose).diagnostics.checks
    assert all(k.ok for k in checks)
    assert [k.threshold for k in checks] == ["\u2264 1.1", "\u2265 100", "\u2265 400", "\u2264 5"]
    failed = [k.label for k in build_report(fake_forecast_result(ok=False)).diagnostics.checks if not k.ok]
    assert len(failed) == 3  # R-hat 1.05 > 1.01, bulk ESS 120 < 400, 3 divergences > 0


# ---------------------------------------------------------------------------------------------
# Issue 14: HR-scale moments are reported on the log scale; an infinite moment is said to be one
# ---------------------------------------------------------------------------------------------


def test_hr_scale_moments_are_of_the_log_hr_and_infinite_ones_are_named():
    from harmoni_bayes.summaries import quantity_record

    rng = np.random.default_rng(3)
    log_hr = rng.normal(-0.4, 0.2, (2, 3000))
    heavy = np.clip(rng.standard_cauchy((2, 3000)), -30, 30)
    records = quantities_from_draws(
        [
            Draws("hr_x", "hr", np.exp(log_hr)),
            Draws("tau", "sd", np.abs(log_hr)),
            Draws("ste", "hr", np.exp(heavy), moments=False),
            Draws("slope_ratio", "identity", heavy, moments=False),
        ]
    )
    hr, tau, ste, ratio = records
    assert hr["mean"] is None and hr["sd"] is None and "infinite" not in hr
    assert hr["log_mean"] == pytest.approx(log_hr.mean(), rel=1e-5)
    assert hr["log_sd"] == pytest.approx(log_hr.std(ddof=1), rel=1e-5)
    assert hr["median"] == pytest.approx(np.exp(np.median(log_hr)), rel=1e-5)  # medians and intervals as HRs
    assert tau["mean"] == pytest.approx(np.abs(log_hr).mean(), rel=1e-5) and "log_mean" not in tau
    assert ste["log_mean"] is None and ste["infinite"] == ["log_mean", "log_sd"]
    assert ratio["mean"] is None and ratio["infinite"] == ["mean", "sd"]
    # an exact engine's infinite moment (given as inf) is null and named too
    exact = quantity_record("tau", "sd", {"mean": float("inf"), "sd": float("inf"), "median": 1.0} | {"q2.5": 0.1})
    assert exact["mean"] is None and exact["infinite"] == ["mean", "sd"]
    assert json.loads(json.dumps(exact)) == exact  # plain JSON: no inf or NaN in summary.json


def test_the_report_marks_log_moments_and_prints_infinite(tmp_path):
    result = fake_forecast_result()
    heavy = np.clip(np.random.default_rng(1).standard_cauchy((1, 2000)), -30, 30)
    result.summary.quantities += quantities_from_draws([Draws("ste_hr_pfs", "hr", np.exp(heavy), moments=False)])
    content = build_report(result)
    rows = {r.name: r for r in content.quantities}
    assert rows["os_hr"].moments_scale == "log" and rows["os_hr"].mean.ref == ("quantities", "os_hr", "log_mean")
    assert rows["slope"].moments_scale == "" and rows["slope"].mean.ref == ("quantities", "slope", "mean")
    assert rows["ste_hr_pfs"].mean.text == "infinite" and rows["ste_hr_pfs"].mean.value is None
    md = render_markdown(content)
    assert "| infinite *log* | infinite *log* |" in md and "of the log HR" in md


def test_a_result_saved_before_log_moments_still_loads_and_reports(tmp_path):
    """Older summaries have HR-scale mean and sd and no log moments: they load and report as they were."""
    result = fake_forecast_result()
    for q in result.summary.quantities:
        if q["scale"] == "hr":
            q["mean"], q["sd"] = 0.71, 0.11
            del q["log_mean"], q["log_sd"]
    out = save_result(result, tmp_path / "old")
    back = load_result(out)
    row = next(r for r in build_report(back).quantities if r.name == "os_hr")
    assert row.moments_scale == "" and row.mean.value == 0.71 and row.mean.ref[-1] == "mean"
