"""The HTML pages as a reader sees them: headless Chromium, offline, driven by selenium.

Pages: the report of every shipped spec (the exact-capable ones fitted exactly; the MCMC-only ones sampled with
few draws in the tests marked ``slow``), published as ``harmoni-bayes run-all`` publishes them, with the index over
them and the pages the main job writes beside a report (readout timeline, prior sensitivity, scorecard), and the
page ``harmoni-bayes compare`` writes.  On the rendered DOM of each:

* the headline's numbers (and the index's) are summary.json's, as displayed;
* the summary of findings lists the report's trials, and shows its answer (numbers from summary.json), its
  certainty line and the note that it is not a treatment recommendation;
* the sensitivity strip is in the headline box exactly when summary.json has one: its rows in order, the
  headline row marked, its numbers and the lengths of its bars;
* every figure has loaded (``naturalWidth > 0``) and is SVG (or a PNG drawn at 2x);
* in a 390 px wide window (a phone), with every ``<details>`` open, the page does not scroll sideways, whatever
  is wider than the screen (a wide table) is inside a box that scrolls on its own, and nothing is clipped;
* nothing is fetched from the network and the console shows no error.

Screenshots (full page, 1280 and 390 px wide) go to ``out/screenshots/`` at the repository root (gitignored), which
CI keeps as artefacts.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; override
with ``HARMONI_CHROMIUM`` / ``HARMONI_CHROMEDRIVER``) and ``selenium`` (the ``test`` extra); skipped otherwise.
The driver path is given to selenium explicitly, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import EXACT_SPECS, MCMC_GROUP, MCMC_SPECS, REPO, lookup, shows

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "out" / "screenshots"
WIDE, PHONE = 1280, 390
CHROMIUM = Path(os.environ.get("HARMONI_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("HARMONI_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",  # the same layout width with or without a vertical scrollbar
)
# The pages the main job writes beside a report, and where: the exact-capable specs that have them.
TIMELINE_SPEC = "ivonescimab_pfs_meta_now"  # timeline = true; its family declares prior settings
SCORED_SPEC = "ivonescimab_pfs_meta"  # a dated forecast with later readouts
PAGES = {"timeline": TIMELINE_SPEC, "sensitivity": TIMELINE_SPEC, "scorecard": SCORED_SPEC, "comparison": SCORED_SPEC}
"""Each page checked, and the spec it is of (the comparison: SCORED_SPEC's result beside TIMELINE_SPEC's, later)."""
SITE_GROUP = "browser_site"
"""The xdist group of the tests reading ``site`` and ``pages``: one worker publishes them (a minute of reports and
pages), instead of each worker its own copy of these module fixtures."""


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (or set HARMONI_CHROMIUM)")
    if not CHROMEDRIVER.is_file():
        pytest.skip(f"no chromedriver at {CHROMEDRIVER}: apt-get install chromium-driver (or set HARMONI_CHROMEDRIVER)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={WIDE},1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


@dataclass
class Site:
    """A folder of reports as ``run-all`` writes it: ``<root>/<spec>/report.html`` and ``<root>/index.html``."""

    root: Path
    reports: dict[str, Path]
    pages: dict[str, Path] = field(default_factory=dict)


def publish(result_dirs: dict[str, Path], root: Path) -> dict[str, Path]:
    """Each result's report written (all formats) and published into ``root/<spec>/``, as ``run-all`` does."""
    from harmoni_bayes.reporting import publish_report, write_report

    out = {}
    for name, d in result_dirs.items():
        write_report(d, fmt="all")
        out[name] = publish_report(d, root / name)
    return out


def _serial_sweep(tasks, **_):
    """``run_sweep`` without Dask: the same tasks, one after another in this process (the sweep path has its own
    tests; this module needs only the pages)."""
    from harmoni_bayes.sweep import TaskOutcome

    return [TaskOutcome(t.key, True, value=t.fn(**t.kwargs)) for t in tasks]


def _published(result_dirs: dict[str, Path], root: Path) -> Site:
    """The results' reports published under ``root``, with an index over them."""
    from harmoni_bayes.reporting import write_index

    s = Site(root, publish(result_dirs, root))
    write_index(list(s.reports.values()), root / "index.html")
    return s


@pytest.fixture(scope="module")
def site(exact_result_dirs, tmp_path_factory) -> Site:
    """Every exact-capable shipped spec's report published, and the index over them."""
    return _published(exact_result_dirs, tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def pages(site, exact_result_dirs) -> Site:
    """``site`` with the pages ``run-all`` writes beside the reports (timeline and prior sensitivity of
    TIMELINE_SPEC, the scorecard of SCORED_SPEC, each as the main job makes it), the page ``compare`` writes (of
    SCORED_SPEC's result and TIMELINE_SPEC's, later), and the index written again (it links the first three).
    """
    from harmoni_bayes.reporting import Comparison, write_comparison, write_index
    from harmoni_bayes.reporting.sweeps import write_scorecard, write_sweep
    from harmoni_bayes.results import load_result
    from harmoni_bayes.scorecard import score
    from harmoni_bayes.specs import load_spec
    from harmoni_bayes.timeline import build_sensitivity, build_timeline

    spec = REPO / "models" / f"{TIMELINE_SPEC}.toml"
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setattr("harmoni_bayes.timeline.run_sweep", _serial_sweep)
        # prior draws under a half-Cauchy tau reach HRs beyond float range (inf): a warning in a sweep worker too
        warnings.filterwarnings("ignore", "overflow encountered in exp", RuntimeWarning)
        write_sweep(build_timeline(spec), site.reports[TIMELINE_SPEC])
        write_sweep(build_sensitivity(spec), site.reports[TIMELINE_SPEC])
    site.pages["timeline"] = site.reports[TIMELINE_SPEC] / "timeline.html"
    site.pages["sensitivity"] = site.reports[TIMELINE_SPEC] / "sensitivity.html"
    scored = load_result(exact_result_dirs[SCORED_SPEC])
    scored_spec = load_spec(REPO / "models" / f"{SCORED_SPEC}.toml")
    write_scorecard(score(scored_spec, scored_spec.as_of, result=scored), site.reports[SCORED_SPEC])
    site.pages["scorecard"] = site.reports[SCORED_SPEC] / "scorecard.html"
    later = load_result(exact_result_dirs[TIMELINE_SPEC])
    comp = Comparison([scored.summary.as_of, later.summary.as_of], [scored, later])
    site.pages["comparison"] = write_comparison(comp, site.root / "comparison")[-1]
    write_index(list(site.reports.values()), site.root / "index.html")
    return site


@pytest.fixture(scope="module")
def mcmc_site(mcmc_result_dirs, tmp_path_factory) -> Site:
    """The MCMC-only specs' reports (few draws), published with an index over them."""
    return _published(mcmc_result_dirs, tmp_path_factory.mktemp("mcmc_reports"))


# ---------------------------------------------------------------------------------------------
# what the browser shows
# ---------------------------------------------------------------------------------------------


def open_page(driver, path: Path) -> None:
    """Load ``path`` in a WIDE window; fail on any console error logged while loading."""
    driver.set_window_size(WIDE, 1000)
    driver.get_log("browser")  # drop anything left from a previous page
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, f"console errors: {severe}"
    # nothing on the page was fetched from anywhere but the page itself
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [r for r in resources if r.startswith(("http:", "https:"))] == []


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def screenshot(driver, name: str, width: int) -> Path:
    """A full-page screenshot at the window's width (``width`` CSS px) into out/screenshots/<name>_<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    data = base64.b64decode(shot["data"])
    assert png_size(data) == (width, height)
    path = SCREENSHOTS / f"{name}_{width}.png"
    path.write_bytes(data)
    return path


_NUMS_JS = """
return Array.from(document.querySelectorAll(arguments[0])).map(e => ({
  ref: [e.dataset.section, e.dataset.name, e.dataset.stat], value: e.dataset.value, text: e.innerText}));
"""


def numbers(driver, selector: str) -> list[dict]:
    """The ``.num`` spans under ``selector``: their summary.json reference, stored value and displayed text."""
    return driver.execute_script(_NUMS_JS, f"{selector} .num")


def check_numbers(spans: list[dict], summary: dict) -> None:
    """Each span carries the summary.json value it names and shows it to the digits displayed."""
    for s in spans:
        value = lookup(summary, s["ref"])
        assert s["value"] == "" if value is None else float(s["value"]) == value, s
        _, name, stat = s["ref"]
        if s["text"] == "infinite":  # an HR-scale moment that is infinite, named so in summary.json
            record = next(q for q in summary["quantities"] if q["name"] == name)
            assert stat in record.get("infinite", ()), s
        else:
            assert shows(s["text"], value), (s, value)


def count_numbers(sentences: list[dict]) -> int:
    """Numbers in report.json sentences (``{"role", "parts"}``; a number is a dict part)."""
    return sum(isinstance(p, dict) for s in sentences for p in s["parts"])


_FIGURES_JS = """
return Array.from(document.images).map(i => ({
  src: i.getAttribute('src').slice(0, 40), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
  shown: i.getBoundingClientRect().width, figure: i.closest('figure') ? i.closest('figure').id : null}));
"""


def figure_problems(driver) -> list[str]:
    """Every image must have loaded and be SVG, or a PNG with at least twice the pixels it is shown at."""
    problems = []
    for img in driver.execute_script(_FIGURES_JS):
        if not (img["complete"] and img["w"] > 0 and img["h"] > 0):
            problems.append(f"not loaded: {img}")
        elif img["src"].startswith("data:image/svg+xml"):
            continue
        elif not img["src"].startswith("data:image/png"):
            problems.append(f"neither SVG nor PNG: {img}")
        elif img["w"] < 2 * img["shown"] - 0.5:
            problems.append(f"PNG at less than 2x ({img['w']} px shown at {img['shown']:.0f}): {img}")
    return problems


_LAYOUT_JS = """
document.querySelectorAll('details').forEach(d => d.open = true);
const root = document.documentElement, W = root.clientWidth;
const scrollsX = el => {
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll') return true;
  }
  return false;
};
const label = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
  + (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
const sticking = [], clipped = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if ((r.right > W + 0.5 || r.left < -0.5) && !scrollsX(el) && !sticking.some(s => s.contains(el))) sticking.push(el);
  const o = getComputedStyle(el).overflowX;
  if ((o === 'hidden' || o === 'clip') && el.scrollWidth > el.clientWidth + 1) clipped.push(el);
}
return {innerWidth: window.innerWidth, scrollWidth: root.scrollWidth, clientWidth: W,
        rootOverflow: [getComputedStyle(root).overflowX, getComputedStyle(document.body).overflowX],
        sticking: sticking.map(e => label(e) + ' ' + Math.round(e.getBoundingClientRect().left) + '..'
                                    + Math.round(e.getBoundingClientRect().right)),
        clipped: clipped.map(label)};
"""


def layout_problems(driver, width: int = PHONE) -> list[str]:
    """What a reader with a ``width`` px wide window would see go wrong, every ``<details>`` open: a page that
    scrolls sideways, an element past the right edge that is not inside a box that scrolls on its own, content
    clipped by ``overflow: hidden``, a page that hides its horizontal overflow.
    """
    driver.set_window_size(width, 1000)
    m = driver.execute_script(_LAYOUT_JS)
    assert m["innerWidth"] == width, f"the window is {m['innerWidth']} px wide, not {width}"
    problems = []
    if m["scrollWidth"] > m["clientWidth"]:
        problems.append(f"the page scrolls sideways: {m['scrollWidth']} px wide in a {m['clientWidth']} px window")
    problems += [f"sticks out of the window: {e}" for e in m["sticking"]]
    problems += [f"content clipped: {e}" for e in m["clipped"]]
    if m["rootOverflow"] != ["visible", "visible"]:
        problems.append(f"html/body hide horizontal overflow: {m['rootOverflow']}")
    return problems


def check_screenshots_and_phone_layout(driver, name: str) -> None:
    """Full-page screenshots at WIDE and PHONE widths (as the page first shows), then the PHONE layout check."""
    shot = screenshot(driver, name, WIDE)
    assert shot.stat().st_size > 5_000
    driver.set_window_size(PHONE, 1000)
    screenshot(driver, name, PHONE)
    assert layout_problems(driver, PHONE) == []


_REPORT_JS = """
const q = s => document.querySelector(s), all = s => Array.from(document.querySelectorAll(s));
const shown = el => !!el && el.checkVisibility() && el.getBoundingClientRect().height > 0;
// the width a strip row's bar may fill (null for a row with no numbers, e.g. 'no OS data yet')
const barWidth = td => td && (td.getBoundingClientRect().width - parseFloat(getComputedStyle(td).paddingLeft)
                              - parseFloat(getComputedStyle(td).paddingRight));
const text = el => el ? el.innerText.trim() : null;
const strip = q('#strip');
return {
  headline: shown(q('#headline')), answer: shown(q('#headline > p.answer')),
  findings: shown(q('#findings')), findings_title: text(q('#findings h2')),
  trials: all('#findings table.findings tbody tr').map(tr => text(tr.cells[0])),
  findings_answer: shown(q('#findings p.answer')), certainty: text(q('#findings p.certainty')),
  note: text(q('#findings p.note')),
  strip: strip && {
    in_headline: !!strip.closest('#headline'), shown: shown(strip), title: text(strip.querySelector('h3')),
    rows: all('#strip tbody tr').map(tr => ({
      label: tr.cells[0].firstChild.textContent.trim(), headline: tr.classList.contains('headline-row'),
      bar: tr.querySelector('span.bar') ? tr.querySelector('span.bar').getBoundingClientRect().width : null,
      missing: tr.querySelector('td.missing') ? text(tr.querySelector('td.missing')) : null,
      cell: barWidth(tr.querySelector('td.bar'))}))},
  figures: all('#figures figure').map(f => ({
    id: f.id, img: !!f.querySelector('img'), caption: text(f.querySelector('figcaption'))})),
  links: all('nav.links a').map(a => a.href),
};
"""


def check_report(driver, d: Path, name: str) -> None:
    """The checks of the module docstring on ``d/report.html``, against ``d/summary.json`` and ``d/report.json``."""
    from harmoni_bayes.reporting.build import REPORT_LINKS

    summary = json.loads((d / "summary.json").read_text())
    content = json.loads((d / "report.json").read_text())
    open_page(driver, d / "report.html")
    page = driver.execute_script(_REPORT_JS)

    # the headline: its numbers are summary.json's, and all of them are there
    assert page["headline"] and page["answer"]
    headline = numbers(driver, "#headline > p")
    assert len(headline) == count_numbers(content["headline"]) > 0
    check_numbers(headline, summary)

    # the summary of findings, above the headline
    f = content["findings"]
    assert page["findings"] and page["findings_title"] == "Summary of findings"
    assert page["trials"] == f["trials"].get("trial", [])
    assert page["findings_answer"] and page["certainty"] == f"Certainty: {f['certainty']}"
    assert page["note"] == f["note"] and "not a treatment recommendation" in page["note"]
    findings = numbers(driver, "#findings")
    assert len(findings) == count_numbers(f["answer"]) > 0
    check_numbers(findings, summary)

    # the sensitivity strip: in the headline box exactly when summary.json has one
    strip = summary.get("strip")
    if strip is None:
        assert page["strip"] is None
    else:
        s = page["strip"]
        assert s and s["in_headline"] and s["shown"] and s["title"] == strip["title"]
        assert [r["label"] for r in s["rows"]] == [r["label"] for r in strip["rows"]]
        assert [r["headline"] for r in s["rows"]] == [r["headline"] for r in strip["rows"]]
        assert sum(r["headline"] for r in strip["rows"]) >= 1  # one per endpoint where the headline has two (PoS)
        # a row with none of its numbers (e.g. immature OS before any OS was disclosed) shows its note instead
        empty = [all(row[k] is None for k in ("probability", "median", "lower", "upper")) for row in strip["rows"]]
        notes = [row["note"] if e else None for row, e in zip(strip["rows"], empty, strict=True)]
        assert [r["missing"] for r in s["rows"]] == notes
        spans = numbers(driver, "#strip")
        assert len(spans) == 4 * empty.count(False) and {x["ref"][0] for x in spans} == {"strip"}
        check_numbers(spans, summary)
        for shown_row, row in zip(s["rows"], strip["rows"], strict=True):
            if row["probability"] is not None:  # the bar is as long as the probability
                assert abs(shown_row["bar"] / shown_row["cell"] - row["probability"]) <= 0.005 + 1.5 / shown_row["cell"]

    # figures: each of report.json's, in order, loaded, SVG
    assert [x["id"] for x in page["figures"]] == [f"figure-{x['name']}" for x in content["figures"]]
    assert all(x["img"] and x["caption"] for x in page["figures"])
    images = driver.execute_script(_FIGURES_JS)
    assert len(images) == len(content["figures"])
    assert all(i["src"].startswith("data:image/svg+xml;base64,") for i in images), images
    assert figure_problems(driver) == []

    # the links to the index and the result files resolve
    assert len(page["links"]) == len(REPORT_LINKS)
    for href in page["links"]:
        assert href.startswith("file://") and Path(href.removeprefix("file://")).exists(), href

    check_screenshots_and_phone_layout(driver, f"report_{name}")


# ---------------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.xdist_group(SITE_GROUP)
@pytest.mark.parametrize("name", [p.stem for p in EXACT_SPECS])
def test_report_in_headless_chromium(driver, site, name):
    check_report(driver, site.reports[name], name)


@pytest.mark.slow
@pytest.mark.xdist_group(MCMC_GROUP)
@pytest.mark.parametrize("name", [p.stem for p in MCMC_SPECS])
def test_mcmc_report_in_headless_chromium(driver, mcmc_site, name):
    check_report(driver, mcmc_site.reports[name], name)


@pytest.mark.xdist_group(SITE_GROUP)
def test_index_in_headless_chromium(driver, pages):
    site = pages
    open_page(driver, site.root / "index.html")
    entries = driver.execute_script(
        "return Array.from(document.querySelectorAll('section.report')).map(s => ({"
        " href: s.querySelector('h2 a').href, pages: Array.from(s.querySelectorAll('p.meta a')).map(a => a.href)}))"
    )
    assert len(entries) == len(site.reports)
    for e, d in zip(entries, site.reports.values(), strict=True):
        assert e["href"] == (d / "report.html").as_uri()
        assert all(Path(h.removeprefix("file://")).exists() for h in e["pages"]), e
    linked = {h for e in entries for h in e["pages"]}
    assert {site.pages[k].as_uri() for k in ("timeline", "sensitivity", "scorecard")} <= linked
    # each report's headline answer, with summary.json's numbers
    for i, d in enumerate(site.reports.values(), start=1):
        spans = numbers(driver, f"section.report:nth-of-type({i}) .answer")
        assert spans
        check_numbers(spans, json.loads((d / "summary.json").read_text()))
    assert figure_problems(driver) == []
    check_screenshots_and_phone_layout(driver, "reports_index")


@pytest.mark.xdist_group(SITE_GROUP)
@pytest.mark.parametrize("kind", PAGES)
def test_page_in_headless_chromium(driver, pages, kind):
    """The timeline, sensitivity and scorecard pages run-all writes, and compare's page: one SVG figure each
    (the scorecard has none), a table row per step, date or score, and the phone layout."""
    path = pages.pages[kind]
    open_page(driver, path)
    images = driver.execute_script(_FIGURES_JS)
    assert len(images) == (0 if kind == "scorecard" else 1)
    assert all(i["src"].startswith("data:image/svg+xml;base64,") for i in images), images
    assert figure_problems(driver) == []
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('table tbody tr')).map(tr => tr.cells[0].innerText.trim())"
    )
    data = json.loads(path.with_suffix(".json").read_text())
    if kind in ("timeline", "sensitivity"):
        assert cells == [s["label"] for s in data["steps"]]
    elif kind == "scorecard":
        assert len(cells) == sum(len(r["scores"]) for r in data["readouts"]) > 0
    else:
        heads = driver.execute_script(
            "return Array.from(document.querySelectorAll('thead th')).map(th => th.innerText)"
        )
        assert heads[1:] == data["dates"] and cells
    check_screenshots_and_phone_layout(driver, f"{kind}_{PAGES[kind]}")


# ---------------------------------------------------------------------------------------------
# the checks themselves fail on what they are there to catch
# ---------------------------------------------------------------------------------------------


def _page(tmp_path: Path, name: str, body: str) -> Path:
    from harmoni_bayes.reporting.render import TEMPLATES

    css = (TEMPLATES / "style.css").read_text()
    path = tmp_path / f"{name}.html"
    path.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{css}</style></head><body>{body}</body></html>'
    )
    return path


def test_the_layout_check_fails_on_a_page_a_phone_shows_badly(driver, tmp_path):
    wide = "<table><tr>" + "<td>a&nbsp;rather&nbsp;long&nbsp;cell</td>" * 8 + "</tr></table>"
    cases = {
        "bare": (f"<main>{wide}</main>", ["the page scrolls sideways", "sticks out of the window: table"]),
        "scrolls": (f'<main><div class="scroll">{wide}</div></main>', []),
        "hidden": (f'<main><div style="overflow-x: hidden">{wide}</div></main>', ["content clipped: div"]),
        "body": (f"<main>{wide}</main><style>body {{ overflow-x: hidden }}</style>", ["html/body hide"]),
        "closed": (f"<main><details><summary>rows</summary>{wide}</details></main>", ["the page scrolls sideways"]),
    }
    for name, (body, expected) in cases.items():
        open_page(driver, _page(tmp_path, name, body))
        found = layout_problems(driver, PHONE)
        assert all(any(p.startswith(e) for p in found) for e in expected), (name, found)
        assert bool(found) == bool(expected), (name, found)


def fig_png(fig) -> str:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def open_page_lenient(driver, path: Path) -> None:
    """Load ``path`` without failing on console errors (a broken image logs one)."""
    driver.set_window_size(WIDE, 1000)
    driver.get(path.as_uri())
    driver.get_log("browser")


def test_the_figure_check_fails_on_a_1x_png_and_a_broken_image(driver, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from harmoni_bayes.reporting.figures import figure_data_uri

    fig = Figure(figsize=(2, 1), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots().plot([0, 1], [0, 1])
    png = fig_png(fig)  # 200 x 100 px
    svg = figure_data_uri(fig)
    cases = {
        "svg": (f'<img src="{svg}">', []),
        "png_2x": (f'<img src="{png}" style="width: 100px">', []),
        "png_1x": (f'<img src="{png}" style="width: 200px">', ["PNG at less than 2x"]),
        "broken": ('<img src="data:image/png;base64,AAAA">', ["not loaded"]),
    }
    for name, (body, expected) in cases.items():
        open_page_lenient(driver, _page(tmp_path, name, body))
        found = figure_problems(driver)
        assert [p.split(":")[0].split(" (")[0] for p in found] == expected, (name, found)
