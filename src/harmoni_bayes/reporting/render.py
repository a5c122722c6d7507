"""Render a report's content as HTML, Markdown and JSON, and write reports, indexes and comparison pages.

The renderers only format a :class:`~harmoni_bayes.reporting.content.ReportContent`; every page shares the
templates and styles in ``templates/``.  Text from evidence files and specs (trial names, notes, sources,
titles) is escaped in HTML and in Markdown alike.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from ..files import atomic_write
from ..results import load_result
from .build import build_report, presentation_of
from .content import FigureView, Number, ReportContent, Sentence
from .format import fmt_probability
from .plain import describe_probability

TEMPLATES = Path(__file__).parent / "templates"
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
FORMATS = {"html": "report.html", "md": "report.md", "json": "report.json"}

__all__ = [
    "FIGURE_DIR",
    "FORMATS",
    "RENDERERS",
    "publish_report",
    "render_comparison_html",
    "render_html",
    "render_json",
    "render_markdown",
    "write_figures",
    "write_index",
    "write_report",
]


def _md_escape(x: Any) -> Any:
    """Markdown output: raw HTML from evidence files or specs is escaped (Markdown viewers render it).

    Applied to every ``{{ ... }}`` of the Markdown templates; :class:`markupsafe.Markup` (built here for
    autolinks) passes through.
    """
    if isinstance(x, markupsafe.Markup):
        return x
    # Only what CommonMark reads as raw HTML is escaped: "<" before a tag name, "/", "!" or "?", and "&" that
    # starts an entity.  "HR < 1", ">0.999" and "TPS >=50%" stay readable, also inside code spans.
    return _MD_TAG.sub("&lt;", _MD_ENTITY.sub("&amp;", str(x)))


def _md_cell(x: Any) -> str:
    """Text safe in a Markdown table cell: no cell breaks (HTML is escaped by :func:`_md_escape`)."""
    return str(x).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_source(parts: Any) -> markupsafe.Markup:
    """Source text with its URLs as Markdown autolinks ``<url>``; the rest escaped."""
    return markupsafe.Markup("".join(f"<{html.escape(u)}>" if u else str(_md_escape(_md_cell(t))) for t, u in parts))


@functools.cache
def _env(autoescape: bool) -> jinja2.Environment:
    """The templates' environment, one per process and escaping mode: it compiles each template once (every
    report, page and index used to compile its templates afresh, about 50 ms each).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=None if autoescape else _md_escape,
    )
    env.filters["md"] = _md_cell
    env.filters["md_source"] = _md_source
    env.tests["number"] = lambda x: isinstance(x, Number)
    return env


def render_html(content: ReportContent) -> str:
    """A self-contained HTML page: inline CSS, figures as SVG ``data:`` URIs, no scripts, nothing fetched."""
    return _env(True).get_template("report.html.j2").render(c=content)


FIGURE_DIR = ".report_files"
"""The folder beside ``report.md`` holding its figures as SVG files.  Its name starts with a dot because a result
folder may hold only the result and its reports (``results.check_output_dir`` ignores dot-names), so
``harmoni-bayes run --report`` can replace the folder again."""


def figure_file(index: int, figure: FigureView) -> str:
    """The file name of a report's ``index``-th figure (from 1): ``fig-1-forest.svg``."""
    return f"fig-{index}-{figure.name}.svg"


def render_markdown(content: ReportContent, figure_dir: str = FIGURE_DIR) -> str:
    """Markdown; figures are image links to ``<figure_dir>/fig-<n>-<name>.svg`` (see :func:`write_report`), so
    the page shows on GitHub and in other viewers that do not render data-URI images.
    """
    return _env(False).get_template("report.md.j2").render(c=content, figure_dir=figure_dir, figure_file=figure_file)


def write_figures(content: ReportContent, folder: str | Path) -> list[Path]:
    """Write the figures of ``content`` as SVG files into ``folder`` (created; stale ``fig-*.svg`` removed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, f in enumerate(content.figures, start=1):
        path = folder / figure_file(i, f)
        atomic_write(path, f.svg)
        written.append(path)
    for old in folder.glob("fig-*.svg"):
        if old not in written:
            old.unlink()
    return written


def render_json(content: ReportContent) -> str:
    """The content as JSON (figures as their plotted data by column, without the images).

    One top-level key per line, each value compact, so the file stays small (under 40 KB for the shipped specs)
    and a diff shows which part changed.
    """
    data = _clean(content.to_dict())
    lines = [
        f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False, allow_nan=False, separators=(',', ':'))}"
        for k, v in data.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


RENDERERS: dict[str, Callable[[ReportContent], str]] = {"html": render_html, "md": render_markdown, "json": render_json}


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
        if f == "md":
            write_figures(content, result_dir / FIGURE_DIR)
        path = result_dir / FORMATS[f]
        atomic_write(path, RENDERERS[f](content))
        written.append(path)
    return written


PUBLISHED = ("report.html", "report.md", "report.json", "summary.json", "summary.csv", "posterior.nc")
"""What :func:`publish_report` copies: the reports and the result files they link to."""


def publish_report(result_dir: str | Path, target: str | Path) -> Path:
    """Copy a rendered report, its Markdown figures and the result files it links to into ``target``.

    For a folder of reports with an ``index.html`` one level up (as ``harmoni-bayes run-all`` writes), so the
    links of every report (index, ``summary.csv``, ``posterior.nc``, the Markdown figures) resolve there.
    """
    import shutil

    result_dir, target = Path(result_dir), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        if (result_dir / name).exists():
            shutil.copy2(result_dir / name, target / name)
    if (result_dir / FIGURE_DIR).is_dir():
        shutil.copytree(result_dir / FIGURE_DIR, target / FIGURE_DIR, dirs_exist_ok=True)
    return target


# --- index --------------------------------------------------------------------------------------


def _index_entry(report_dir: Path, out_dir: Path) -> dict:
    report_dir = Path(report_dir)
    rj, sj = report_dir / "report.json", report_dir / "summary.json"
    html_path = report_dir / "report.html"
    entry: dict[str, Any] = {
        "dir": str(report_dir),
        "href": os.path.relpath(html_path, out_dir).replace(os.sep, "/") if html_path.exists() else None,
        "headline": [],
    }
    if rj.exists():
        d = json.loads(rj.read_text(encoding="utf-8"))
        entry |= {
            "spec": d["spec"],
            "title": d.get("title") or d["spec"],
            "model": d["model"],
            "method": d["method"],
            "when": d.get("when", ""),
            "status": d["diagnostics"]["status"],
            "created": d.get("provenance", {}).get("Result created", ""),
        }
        entry["headline"] = [
            Sentence(
                tuple(p if isinstance(p, str) else Number(p["value"], p["text"], tuple(p["ref"])) for p in s["parts"]),
                s["role"],
            )
            for s in d["headline"]
            if s["role"] in ("answer", "estimate")
        ]
    elif sj.exists():
        d = json.loads(sj.read_text(encoding="utf-8"))
        entry |= {
            "spec": d["spec"],
            "title": d["spec"],
            "model": d["model"],
            "method": d["method"],
            "when": f"as of {d['as_of']}" if d.get("as_of") else "",
            "created": "",
            "status": "PASS" if d.get("diagnostics", {}).get("ok") else "FAIL",
        }
        if d.get("probabilities"):
            p = d["probabilities"][0]
            names = presentation_of(d["model"]).names
            entry["headline"] = [
                Sentence(
                    (
                        f"{describe_probability(p['name'], names)}: ",
                        Number(p["value"], fmt_probability(p["value"]), ("probabilities", p["name"], "value")),
                    ),
                    "answer",
                )
            ]
    else:
        entry |= {
            "spec": report_dir.name,
            "title": report_dir.name,
            "model": "",
            "method": "",
            "when": "",
            "status": "",
            "created": "",
        }
    entry["pages"] = [
        (label, os.path.relpath(report_dir / name, out_dir).replace(os.sep, "/"))
        for name, label in _EXTRA_PAGES
        if (report_dir / name).exists()
    ]
    return entry


# Pages beside a report that the index links to, when the main job wrote them.
_EXTRA_PAGES = (
    ("timeline.html", "readout timeline"),
    ("scorecard.html", "how the forecast fared"),
    ("sensitivity.html", "prior sensitivity"),
)


def write_index(report_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write a self-contained ``index.html`` linking each report (``<dir>/report.html``) with its headline.

    Reads each directory's ``report.json`` (written by :func:`write_report`), else its ``summary.json``.
    Links are relative to ``out``, so the folder can be moved or zipped as a whole.
    """
    out = Path(out)
    entries = [_index_entry(Path(d), out.parent) for d in report_dirs]
    page = (
        _env(True)
        .get_template("index.html.j2")
        .render(entries=entries, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    )
    atomic_write(out, page)
    return out


def render_comparison_html(
    *,
    title: str,
    spec: str,
    dates: Sequence[str],
    rows: Sequence[tuple[str, Sequence[str]]],
    changes: dict[str, list[str]],
    quantity: str,
    figure: str,
) -> str:
    """The comparison page (one spec at several as-of dates), in the reports' template and styles.

    ``figure``: the posteriors' figure as a ``data:`` URI (:func:`~harmoni_bayes.reporting.figures.figure_data_uri`).
    """
    return (
        _env(True)
        .get_template("comparison.html.j2")
        .render(
            title=title,
            spec=spec,
            dates=list(dates),
            rows=list(rows),
            changes=changes,
            quantity=quantity,
            figure=figure,
        )
    )
