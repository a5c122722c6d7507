"""Reports as a clinician reads them: the summary of findings, the sensitivity strip beside the headline, the
probability-of-benefit curve, folded evidence, links, figures as files beside report.md, a small report.json, and
every printed number equal to summary.json formatted by ``reporting/format.py``.

Results are the exact fits of the shipped specs (session fixture) and the synthetic MCMC result of
``test_report.fake_forecast_result`` (os_forecast / surrogacy), some with a hand-made ``strip`` in their summary.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harmoni_bayes.models import families
from harmoni_bayes.reporting import (
    FIGURE_DIR,
    build_report,
    fmt_estimate,
    fmt_mcse,
    fmt_probability,
    publish_report,
    render_html,
    render_json,
    render_markdown,
    write_index,
    write_report,
)
from harmoni_bayes.reporting import figures as F
from harmoni_bayes.reporting.build import NOT_ADVICE, figure_names, region_of
from harmoni_bayes.reporting.content import MAX_POINTS, reason_kind
from harmoni_bayes.results import check_output_dir, load_result
from helpers import EXACT_SPECS, MCMC_GROUP, MCMC_SPECS, lookup
from test_report import fake_forecast_result, num_spans

SPEC_NAMES = [p.stem for p in EXACT_SPECS]


# results, contents: the session fixtures of conftest.py (tests that change a result put it back)


def with_strip(result, headline_label: str = "both (the headline)"):
    """``result`` with a hand-made sensitivity strip in its summary; the headline row repeats os_hr's numbers."""
    q, p = result.summary.quantity("os_hr"), result.summary.probability("P(os_hr<1)")
    result.summary.extra["strip"] = {
        "title": "Where the certainty comes from",
        "probability": "P(OS HR < 1)",
        "rows": [
            {
                "label": "immature OS alone",
                "probability": 0.9412,
                "median": 0.7317,
                "lower": 0.5702,
                "upper": 0.9549,
                "headline": False,
                "note": "the early OS look only",
            },
            {
                "label": "PFS via surrogacy alone",
                "probability": 0.99971,
                "median": 0.6812,
                "lower": 0.4466,
                "upper": 1.0213,
                "headline": False,
                "note": "",
            },
            {
                "label": headline_label,
                "probability": p["value"],
                "median": q["median"],
                "lower": q["q2.5"],
                "upper": q["q97.5"],
                "headline": True,
                "note": "the joint model",
            },
        ],
    }
    return result


def _fmt_for(section: str, stat: str):
    if section == "probabilities":
        return fmt_mcse if stat == "mcse" else fmt_probability
    if section == "strip":
        return fmt_probability if stat == "probability" else fmt_estimate
    return fmt_estimate


# ---------------------------------------------------------------------------------------------
# 1. the sensitivity strip
# ---------------------------------------------------------------------------------------------


def test_strip_in_the_headline_box_of_html_markdown_and_json():
    r = with_strip(fake_forecast_result())
    rows = r.summary.extra["strip"]["rows"]
    c = build_report(r)
    assert c.strip is not None and [x.label for x in c.strip.rows] == [x["label"] for x in rows]
    html = render_html(c)
    box = html[html.index('id="headline"') : html.index('<nav class="toc">')]
    assert 'id="strip"' in box and "Where the certainty comes from" in box and "P(OS HR &lt; 1)" in box
    spans = [s for s in num_spans(html) if s["section"] == "strip"]
    assert len(spans) == 4 * len(rows)
    summary = r.summary.to_dict()
    for s in spans:
        value = lookup(summary, (s["data-section"], s["data-name"], s["data-stat"]))
        assert float(s["data-value"]) == value
        assert s["text"] == _fmt_for("strip", s["data-stat"])(value)
    marked = re.findall(r'<tr class="headline-row"><td>([^<]*)', box)
    assert marked == [x["label"] + " " for x in rows if x["headline"]]
    md = render_markdown(c)
    head = md[md.index("## Headline") : md.index("## Figures")]
    for x in rows:
        p, med = fmt_probability(x["probability"]), fmt_estimate(x["median"])
        interval = f"{med} ({fmt_estimate(x['lower'])}–{fmt_estimate(x['upper'])})"
        if x["headline"]:
            assert f"| **{x['label']}** (headline) | **{p}** | {interval} |" in head
        else:
            assert f"| {x['label']} | {p} | {interval} |" in head
    js = json.loads(render_json(c))
    # report.json keeps the strip's labels in order; its numbers are summary.json's (report.json points there)
    assert js["strip"]["rows"] == [x["label"] for x in rows]


@pytest.mark.parametrize("strip", [None, {}, {"title": "x"}, {"rows": []}, {"rows": [{"probability": 0.5}]}, "text"])
def test_no_strip_renders_nothing(strip):
    r = fake_forecast_result()
    if strip is not None:
        r.summary.extra["strip"] = strip
    c = build_report(r)
    assert c.strip is None
    assert 'id="strip"' not in render_html(c) and "(headline) |" not in render_markdown(c)
    assert json.loads(render_json(c))["strip"] is None


def with_missing_os(result):
    """``result`` with a strip as of a date before any OS data: the OS-alone row has no numbers."""
    r = with_strip(result)
    first = r.summary.extra["strip"]["rows"][0]
    first.update(probability=None, median=None, lower=None, upper=None, note="no OS data yet")
    r.summary.extra["strip"]["quantity"] = "OS HR"
    return r


def test_a_row_without_numbers_says_why_where_the_numbers_would_be():
    r = with_missing_os(fake_forecast_result())
    c = build_report(r)
    assert c.strip.rows[0].missing and not c.strip.rows[1].missing
    html = render_html(c)
    box = html[html.index('id="strip"') : html.index("</table>", html.index('id="strip"'))]
    assert '<tr><td>immature OS alone</td><td class="missing" colspan="3">no OS data yet</td><td></td></tr>' in box
    assert not [s for s in num_spans(html) if s["section"] == "strip" and s["data-name"] == "immature OS alone"]
    assert '<th class="r">OS HR: median (95% CrI)</th>' in box  # what the medians are of, said once
    md = render_markdown(c)
    assert "| immature OS alone | no OS data yet | | |" in md
    assert "| analysis | P(OS HR < 1) | OS HR: median (95% CrI) | note |" in md
    assert json.loads(render_json(c))["strip"]["rows"][0] == "immature OS alone"


def test_strip_with_a_missing_number_shows_a_dash():
    r = with_strip(fake_forecast_result())
    del r.summary.extra["strip"]["rows"][0]["lower"]
    row = build_report(r).strip.rows[0]
    assert row.lower.value is None and row.lower.text == "\u2013" and row.upper.text == fmt_estimate(0.9549)


# ---------------------------------------------------------------------------------------------
# 2. summary of findings
# ---------------------------------------------------------------------------------------------


def _every_family_result(results) -> dict[str, object]:
    out = {r.summary.model: r for r in results.values()}
    out |= {
        m: fake_forecast_result(m) for m in ("os_forecast", "surrogacy", "os_forecast_classes", "surrogacy_classes")
    }
    return out


def test_every_family_renders_a_summary_of_findings(results):
    by_family = _every_family_result(results)
    assert set(families()) <= set(by_family)
    for model, r in by_family.items():
        c = build_report(r)
        f = c.findings
        assert f is not None and f.answer, model
        html, md = render_html(c), render_markdown(c)
        assert html.index('id="findings"') < html.index('id="headline"'), model
        assert md.index("## Summary of findings") < md.index("## Headline"), model
        assert NOT_ADVICE in html and NOT_ADVICE in md and "not a treatment recommendation" in NOT_ADVICE
        assert f"**Certainty:** {f.certainty}" in md
        summary = r.summary.to_dict()
        for n in (n for s in f.answer for n in s.numbers):
            assert n.text == _fmt_for(n.ref[0], n.ref[2])(lookup(summary, n.ref)), (model, n)


def test_findings_take_trials_arms_and_counts_from_the_evidence_rows(results, contents):
    r, f = results["ivonescimab_pfs_meta"], contents["ivonescimab_pfs_meta"].findings
    rows = r.evidence_used
    assert [t.trial for t in f.trials] == list(rows.trial)
    for t, row in zip(f.trials, rows.to_dict("records"), strict=True):
        assert (t.experimental, t.control, t.population) == (row["experimental"], row["control"], row["population"])
        n = row["n_experimental"]
        assert t.n_experimental == ("" if pd.isna(n) else f"{n:.0f}")
        m = row["median_experimental"]
        assert t.median_experimental == ("" if pd.isna(m) else f"{m:g} mo")
    answer = f.answer[0]
    assert answer.numbers[0].ref == ("probabilities", "P(hr_pooled<1)", "value")
    assert [n.ref for n in f.answer[1].numbers] == [("quantities", "hr_pooled", k) for k in ("median", "q2.5", "q97.5")]


def test_findings_name_the_threats_the_evidence_shows(results, contents):
    meta = contents["ivonescimab_pfs_meta"].findings
    kinds = results["ivonescimab_pfs_meta"].evidence_used.source_kind
    n_secondary = int(kinds.isin(["secondary", "news", "press"]).sum())
    assert n_secondary and any(f"{n_secondary} of {len(kinds)} evidence rows" in t for t in meta.threats)
    pdl1 = contents["harmoni2_pfs_pdl1"].findings
    assert any("China only" in t for t in pdl1.threats) and "a single trial" in pdl1.threats
    assert "China only" in pdl1.certainty


def test_findings_flag_immature_os_and_failed_diagnostics():
    r = fake_forecast_result(ok=False)
    os_row = r.evidence_used.iloc[[0]].assign(
        endpoint="OS", maturity=0.39, analysis_kind="interim", population="1L NSCLC, China", source_kind="press"
    )
    r.evidence_used = pd.concat([r.evidence_used, os_row], ignore_index=True)
    threats = build_report(r).findings.threats
    assert any(t.startswith("immature overall survival") and "39% of deaths" in t for t in threats)
    assert any("diagnostics failed" in t for t in threats)
    assert any("press" in t for t in threats)
    assert build_report(fake_forecast_result()).findings.threats == (
        "a single trial",
        "only 4 reference comparisons to learn the PFS-to-OS relation from",
    )


def test_findings_survive_rows_without_the_trial_table_columns():
    r = fake_forecast_result()
    r.evidence_used = r.evidence_used[["row_id", "trial", "table"]]
    c = build_report(r)
    assert [t.population for t in c.findings.trials] == [""]
    html = render_html(c)
    assert "not stated" in html and "not reported" in html


@pytest.mark.parametrize(
    ("population", "region"),
    [
        ("1L NSCLC, EGFR/ALK negative, China", "China"),
        ("EGFR-mutant NSCLC, global (Asia, Europe, North America)", "global (Asia, Europe, North America)"),
        ("1L metastatic NSCLC, PD-L1 TPS>=50%", ""),
    ],
)
def test_region_of(population, region):
    assert region_of(population) == region


# ---------------------------------------------------------------------------------------------
# 3. probability of benefit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ivonescimab_pfs_meta", "harmoni2_pfs_pdl1", "nsclc_nma_pdl1_ge50"])
def test_benefit_curve_is_p_below_h_of_the_headline_draws(results, name):
    r = results[name]
    q = F.headline_quantity(r)
    assert q is not None and r.summary.quantity(q)["scale"] == "hr"
    df = F.benefit_curve_data(r)
    curve, marks = df[df.kind == "curve"], df[df.kind == "mark"]
    draws = F.draws_of(r.idata.posterior, q)
    for h, p in zip(curve.hr, curve.probability, strict=True):
        assert p == pytest.approx(np.mean(draws < h), abs=1e-12)
    assert np.all(np.diff(curve.probability) >= 0) and curve.hr.min() == pytest.approx(0.3)
    assert sorted(marks.hr) == [0.7, 0.8, 0.9, 1.0]
    probs = {p["name"]: p["value"] for p in r.summary.probabilities}
    for m in marks.itertuples():
        expected = probs.get(f"P({q}<{m.hr:g})", np.mean(draws < m.hr))
        assert m.probability == pytest.approx(expected, abs=1e-12)
        assert m.source == ("summary" if f"P({q}<{m.hr:g})" in probs else "draws")


def test_benefit_marks_follow_the_spec_thresholds(results):
    r = results["ivonescimab_pfs_meta"]
    r.spec["thresholds"] = [1.0, 0.75]
    try:
        marks = F.benefit_curve_data(r).query("kind == 'mark'")
    finally:
        del r.spec["thresholds"]
    assert list(marks.hr) == [1.0, 0.75]
    fig = F.benefit_curve(r)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "P(HR < 1) = " + fmt_probability(r.summary.probability("P(hr_pooled<1)")["value"]) in text
    r.spec["thresholds"] = [1.5, 0.25]  # outside the curve's 0.3-1.3: the axis widens to show them
    try:
        lo, hi = F.benefit_curve(r).axes[0].get_xlim()
    finally:
        del r.spec["thresholds"]
    assert lo < 0.25 and hi > 1.5


def test_benefit_figure_is_added_where_the_headline_is_an_hr(results, contents):
    for name, c in contents.items():
        names = [f.name for f in c.figures]
        assert "benefit" in names, name
    sur = fake_forecast_result("surrogacy")  # its posterior lacks the residual SD the family's curve needs
    assert F.headline_quantity(sur) is None and F.benefit_curve_data(sur).empty
    assert "benefit" not in [f.name for f in build_report(sur).figures]
    assert figure_names(results["harmoni3_pos"], F._presentation(results["harmoni3_pos"]))[-1] == "benefit"


def test_a_surrogacy_report_draws_the_probability_of_an_os_benefit_by_pfs_hr():
    """The relationship's own benefit curve (``Presentation.benefit``): P(true OS HR < 1 | true PFS HR = h), per
    draw Phi(-(a + b log h) / psi), averaged; marked at the spec's thresholds.
    """
    from harmoni_bayes.posterior import from_draws

    sur = fake_forecast_result("surrogacy")
    rng = np.random.default_rng(5)
    a, b, psi = rng.normal(-0.05, 0.03, 500), rng.normal(0.5, 0.1, 500), np.abs(rng.normal(0.1, 0.03, 500))
    sur.idata = from_draws({"intercept": a, "slope": b, "residual_sd": psi}, coords={}, dims={})
    df = F.benefit_curve_data(sur)
    curve, marks = df[df.kind == "curve"], df[df.kind == "mark"]
    assert set(df.quantity) == {"one relationship"} and set(df.given) == {"true PFS HR"}
    for h in (0.7, 1.0):
        expected = np.mean(stats.norm.cdf(-(a + b * np.log(h)) / psi))
        assert marks[marks.hr == h].probability.iloc[0] == pytest.approx(expected, abs=1e-12)
    assert np.all(np.diff(curve.probability) <= 0)  # a smaller PFS benefit, a smaller chance of an OS benefit
    assert sorted(marks.hr) == [0.7, 0.8, 0.9, 1.0]
    c = build_report(sur)
    fig = next(f for f in c.figures if f.name == "benefit")
    assert "true PFS HR 0.7: " + fmt_probability(marks[marks.hr == 0.7].probability.iloc[0]) in fig.caption


def test_densities_shade_below_1_state_the_share_and_draw_hdi_bars(results):
    r = results["ivonescimab_pfs_meta"]
    fig = F.posterior_densities(r)
    ax = fig.axes[0]
    q = r.summary.quantity("hr_pooled")
    hdi = [q["hdi_low"], q["hdi_high"]]
    bars = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and np.allclose(ln.get_xdata(), hdi)]
    assert bars and all(max(ln.get_ydata()) < 0 for ln in bars)  # under the curves
    assert ax.collections, "no shaded area below HR 1"
    shaded = ax.collections[0].get_paths()[0].vertices[:, 0]
    assert shaded.max() <= 1.0 + 1e-9
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    p = fmt_probability(r.summary.probability("P(hr_pooled<1)")["value"])
    assert any(lab.startswith("pooled HR") and lab.endswith(f"P(HR<1) {p}") for lab in labels), labels
    assert not any(lab.startswith("hr_") for lab in labels)  # plain names, not contract names


@pytest.mark.parametrize("plot", [F.posterior_densities, F.benefit_curve])
def test_legends_sit_above_the_axes_off_the_hr_1_line(results, plot):
    fig = plot(results["harmoni2_pfs_pdl1"])
    fig.canvas.draw()
    ax = fig.axes[0]
    legend, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.y0 >= box.y1 - 1


# ---------------------------------------------------------------------------------------------
# 4. readable pages
# ---------------------------------------------------------------------------------------------


class _Details(HTMLParser):
    """The text of each <summary> and the table classes inside each <details>."""

    def __init__(self):
        super().__init__()
        self.blocks: list[dict] = []
        self._in_summary = False

    def handle_starttag(self, tag, attrs):
        if tag == "details":
            self.blocks.append({"summary": "", "tables": []})
        elif tag == "summary":
            self._in_summary = True
        elif tag == "table" and self.blocks:
            self.blocks[-1]["tables"].append(dict(attrs).get("class"))

    def handle_endtag(self, tag):
        if tag == "summary":
            self._in_summary = False

    def handle_data(self, data):
        if self._in_summary:
            self.blocks[-1]["summary"] += data


@pytest.mark.parametrize("name", ["harmoni3_pos", "nsclc_nma_pdl1_ge50", "ivonescimab_pfs_meta"])
def test_evidence_folds_and_left_out_rows_group_by_reason(results, contents, name):
    p = _Details()
    p.feed(render_html(contents[name]))
    used = [b for b in p.blocks if b["tables"] == ["evidence-used"]]
    assert len(used) == 1 and used[0]["summary"] == f"Used: {len(results[name].evidence_used)} rows"
    reasons = [reason_kind(x) for x in results[name].evidence_excluded.reason.fillna("")]
    expected = {k: reasons.count(k) for k in dict.fromkeys(reasons)}
    got = {}
    for b in p.blocks:
        if b["tables"] == ["evidence-excluded"]:
            kind, n = re.fullmatch(r"(.+): (\d+) rows?", b["summary"]).groups()
            got[kind] = int(n)
    assert got == expected


def test_reason_kind():
    assert reason_kind("conflicting report of the same analysis (HR 0.54 (0.37-0.79) vs 0.54 kept); kept X|Y") == (
        "conflicting report of the same analysis"
    )
    assert reason_kind("not yet disclosed on 2025-06-30 (disclosed 2026-09-15)") == "not yet disclosed on 2025-06-30"
    assert reason_kind("") == "no reason recorded"
    nested = "superseded by a more mature analysis (5-year OS update (JCO 2021; median FU 59.9 mo); kept X|OS|a (b)|c)"
    assert reason_kind(nested) == "superseded by a more mature analysis"


def test_reports_link_the_index_and_the_result_files(exact_result_dirs, tmp_path):
    d = exact_result_dirs["harmoni2_pfs_pdl1"]
    html_path, md_path, _ = write_report(d, fmt="all")
    html, md = html_path.read_text(), md_path.read_text()
    for target in ("../index.html", "summary.csv", "posterior.nc"):
        assert f'href="{target}"' in html and f"]({target})" in md
    assert (d / "summary.csv").exists() and (d / "posterior.nc").exists()


def _relative_links(html: str, md: str) -> set[str]:
    links = set(re.findall(r'<a href="([^"#:]+)"', html))
    links |= {u for u in re.findall(r"\]\(([^)]+)\)", md) if not re.match(r"^[a-z]+:|#", u)}
    return links


def test_published_reports_have_every_link_resolve(exact_result_dirs, tmp_path):
    reports = tmp_path / "reports"
    targets = []
    for name in ("harmoni2_pfs_pdl1", "harmoni3_pos"):
        write_report(exact_result_dirs[name], fmt="all")
        targets.append(publish_report(exact_result_dirs[name], reports / name))
    write_index(targets, reports / "index.html")
    for t in targets:
        links = _relative_links((t / "report.html").read_text(), (t / "report.md").read_text())
        assert {"../index.html", "summary.csv", "posterior.nc"} <= links
        assert any(x.startswith(f"{FIGURE_DIR}/") for x in links)
        missing = [x for x in links if not (t / x).resolve().exists()]
        assert missing == [], (t.name, missing)


def test_markdown_figures_are_svg_files_beside_it(exact_result_dirs):
    d = exact_result_dirs["ivonescimab_pfs_meta"]
    (md_path,) = write_report(d, fmt="md")
    md = md_path.read_text()
    assert "data:image" not in md and "base64" not in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    content = build_report(load_result(d))
    assert len(links) == len(content.figures) >= 3
    for link, f in zip(links, content.figures, strict=True):
        assert link.startswith(f"{FIGURE_DIR}/") and link.endswith(f"-{f.name}.svg")
        svg = (d / link).read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert sorted(p.name for p in (d / FIGURE_DIR).iterdir()) == sorted(Path(x).name for x in links)
    check_output_dir(d)  # the figure folder does not stop `run --out` from replacing the result folder


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_report_json_is_small_and_stores_figure_data_by_column(contents, name):
    text = render_json(contents[name])
    assert len(text.encode("utf-8")) < 40_000
    data = json.loads(text)
    for fig in data["figures"]:
        d = fig["data"]
        assert set(d) in ({"columns"}, {"series"}), fig["name"]
        numbers = [
            v
            for block in (d.get("series") or [d["columns"]])
            for col in block.values()
            if isinstance(col, list)
            for v in col
            if isinstance(v, float)
        ]
        assert all(len(re.sub(r"[^0-9]", "", f"{v:e}".split("e")[0]).rstrip("0")) <= 3 for v in numbers), fig["name"]
        for block in d.get("series", []):
            assert all(len(col) <= MAX_POINTS for col in block.values() if isinstance(col, list))
    dens = next(f for f in data["figures"] if f["name"] in ("densities", "map_prior"))
    assert "series" in dens["data"]


# ---------------------------------------------------------------------------------------------
# 5. every printed number is summary.json's, formatted by reporting/format.py
# ---------------------------------------------------------------------------------------------


def _consistency_cases(results):
    return {
        "harmoni2_pfs_pdl1": results["harmoni2_pfs_pdl1"],
        "ivonescimab_pfs_meta": results["ivonescimab_pfs_meta"],
        "harmoni3_pos": results["harmoni3_pos"],
        "nsclc_nma_pdl1_ge50": results["nsclc_nma_pdl1_ge50"],
        "fake_os_forecast_with_strip": with_strip(fake_forecast_result()),
        "fake_os_forecast_before_os_data": with_missing_os(fake_forecast_result()),
    }


def _md_table_rows(md: str, name: str) -> list[list[str]]:
    """Cells of the Markdown table rows whose second cell is `name` (probability and quantity tables)."""
    out = []
    for line in md.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) >= 2 and cells[1] == f"`{name}`":
            out.append(cells)
    return out


def test_every_printed_number_equals_summary_json_formatted(results):
    for case, r in _consistency_cases(results).items():
        summary = json.loads(r.summary.to_json())  # as written to summary.json
        c = build_report(r)
        html, md = render_html(c), render_markdown(c)
        spans = num_spans(html)
        sections = {s["data-section"] for s in spans}
        assert {"quantities", "probabilities"} <= sections, case
        for s in spans:
            if s["data-section"] == "diagnostics":
                continue
            value = lookup(summary, (s["data-section"], s["data-name"], s["data-stat"]))
            assert s["text"] == _fmt_for(s["data-section"], s["data-stat"])(value), (case, s)
        for p in summary["probabilities"]:
            rows = _md_table_rows(md, p["name"])
            assert len(rows) == 1, (case, p["name"])
            assert rows[0][2:4] == [fmt_probability(p["value"]), fmt_mcse(p["mcse"])], (case, p["name"])
        for q in summary["quantities"]:
            rows = _md_table_rows(md, q["name"])
            assert len(rows) == 1, (case, q["name"])
            shown = rows[0][2:6]
            sep = " to " if min(q["q2.5"], q["q97.5"]) < 0 else "–"  # never "-0.23–-0.02"
            log = "log_mean" in q  # HR scales: moments of the log HR, marked *log*
            expected = [
                fmt_estimate(q["median"]),
                f"{fmt_estimate(q['q2.5'])}{sep}{fmt_estimate(q['q97.5'])}",
                fmt_estimate(q["log_mean"]) + " *log*" if log else fmt_estimate(q["mean"]),
                fmt_estimate(q["log_sd"]) + " *log*" if log else fmt_estimate(q["sd"]),
            ]
            assert shown == expected, (case, q["name"])
        for sentence in [*c.headline, *c.findings.answer]:
            expected = "".join(
                part if isinstance(part, str) else _fmt_for(part.ref[0], part.ref[-1])(lookup(summary, part.ref))
                for part in sentence.parts
            )
            assert expected in md, (case, expected)


def test_a_family_table_prints_the_summary_values_formatted():
    """Presentation.tables: the model comparison of the class-aware forecast, every cell from summary.json."""
    r = fake_forecast_result("os_forecast_classes")
    rows = [
        {
            "label": "one relationship",
            "model": "pooled",
            "elpd_loo": 18.5361,
            "se": 9.47,
            "elpd_diff": 8.69,
            "p_loo": 5.92,
            "weight": 0.0,
            "warning": "",
        },
        {
            "label": "exchangeable classes",
            "model": "exchangeable",
            "elpd_loo": 27.229,
            "se": 8.99,
            "elpd_diff": 0.0,
            "p_loo": 12.1,
            "weight": 0.8224,
            "warning": "1 comparison(s) with Pareto k > 0.7",
        },
    ]
    r.summary.extra["model_comparison"] = rows
    r.summary.extra["classes"] = [{"class": "chemo", "comparisons": 2, "note": "only 2 comparison(s)"}]
    c = build_report(r)
    md = render_markdown(c)
    table = next(t for t in c.tables if t.title.startswith("Which PFS-to-OS model"))
    cols = ["label", "elpd_loo", "se", "elpd_diff", "p_loo", "weight", "warning"]
    for row, shown in zip(rows, table.rows, strict=True):
        expected = [row["label"], *(fmt_estimate(row[k]) for k in cols[1:-1]), row["warning"]]
        assert shown == expected
        assert "| " + " | ".join(expected) + " |" in md
    assert "| chemo | 2 | only 2 comparison(s) |" in md
    assert json.loads(render_json(c))["tables"][0]["rows"] == table.rows


# ---------------------------------------------------------------------------------------------
# 6. every shipped report: summary of findings, sensitivity strip, probability-of-benefit curve
# ---------------------------------------------------------------------------------------------


def assert_reads_at_a_glance(report: dict, summary: dict) -> None:
    """What issue 13 asks of every shipped report, read from its report.json and summary.json."""
    findings = report["findings"]
    assert findings and findings["answer"] and "not a treatment recommendation" in findings["note"]
    strip = summary.get("strip")
    assert strip and len(strip["rows"]) >= 2, "no sensitivity strip"
    assert report["strip"]["rows"] == [r["label"] for r in strip["rows"]]
    assert strip["quantity"] and report["strip"]["quantity"] == strip["quantity"], "what the intervals are of"
    assert any(r["headline"] for r in strip["rows"]), "the strip does not mark the headline's row"
    benefit = next((f for f in report["figures"] if f["name"] == "benefit"), None)
    assert benefit is not None, "no probability-of-benefit curve"
    blocks = benefit["data"].get("series") or [benefit["data"]["columns"]]
    assert {"curve", "mark"} <= {k for b in blocks for k in _values(b.get("kind"))}, "the curve or its marks"


def _values(column) -> list:
    """A report.json column as plain values: a list, coded levels, or one value (a key of a series)."""
    if isinstance(column, dict):
        return [column["levels"][i] for i in column["codes"]]
    return column if isinstance(column, list) else [column]


def _report_and_summary(result_dir: Path) -> tuple[dict, dict]:
    (path,) = write_report(result_dir, fmt="json")
    return json.loads(path.read_text()), json.loads((result_dir / "summary.json").read_text())


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_exact_shipped_report_has_findings_strip_and_benefit_curve(exact_result_dirs, name):
    assert_reads_at_a_glance(*_report_and_summary(exact_result_dirs[name]))


@pytest.mark.slow
@pytest.mark.xdist_group(MCMC_GROUP)
@pytest.mark.parametrize("name", [p.stem for p in MCMC_SPECS])
def test_every_mcmc_shipped_report_has_findings_strip_and_benefit_curve(mcmc_result_dirs, name):
    report, summary = _report_and_summary(mcmc_result_dirs[name])
    assert_reads_at_a_glance(report, summary)
    if name == "harmoni2_os_forecast_2024":  # no OS data then: the OS-alone row says so instead of vanishing
        first = summary["strip"]["rows"][0]
        assert (first["label"], first["probability"], first["note"]) == ("immature OS alone", None, "no OS data yet")
