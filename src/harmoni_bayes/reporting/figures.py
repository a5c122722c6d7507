"""Figures of a fitted analysis.

Every plot function takes a :class:`~harmoni_bayes.results.Result` (or a list of them) and ``ax=None``,
draws, and returns the matplotlib ``Figure``; its ``*_data`` twin returns the plotted numbers as a
DataFrame, so a figure can always be checked against (or replaced by) a table.

* :func:`forest_plot`          observed estimates (95% CI) beside posterior estimates (95% CrI), HR scale
* :func:`posterior_densities`  posterior densities of the key quantities with their priors overlaid
* :func:`surrogacy_scatter`    reference trials' PFS vs OS HRs, the fitted line and the target's forecast
* :func:`compare_posteriors`   one quantity across results (e.g. the same spec at different as-of dates)
* :func:`benefit_curve`        probability of benefit: P(HR < h) over h for the headline HR quantity

Interval numbers (medians, 95% CrIs) come from ``summary.json`` (``result.summary``); draws are used
only for densities and the surrogacy line.  Without ``ax`` a new ``Figure`` is made *without* pyplot
(Agg canvas), so nothing is registered globally and nothing leaks; densities are estimated through
:func:`harmoni_bayes.posterior.kde`.  What a family shows (density quantities, forest layout, row labels)
comes from its :class:`~harmoni_bayes.models.base.Presentation`.

:data:`FIGURES` is the figure registry: a family's presentation names the figures it draws, and the report
takes title, caption, plot and data from here.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from .. import posterior
from ..constants import INTERVAL_PROB, LOWER_KEY, Q_HI, Q_LO, UPPER_KEY, Z_INTERVAL
from ..models import families, get_family
from ..models.base import Presentation
from ..results import Result
from .content import svg_data_uri
from .format import fmt_probability, hr_interval
from .plain import describe_quantity

__all__ = [
    "FIGURES",
    "FigureDef",
    "benefit_curve",
    "benefit_curve_data",
    "compare_posteriors",
    "compare_posteriors_data",
    "figure_data_uri",
    "figure_svg",
    "forest_plot",
    "forest_plot_data",
    "headline_quantity",
    "plain_label",
    "posterior_densities",
    "posterior_densities_data",
    "surrogacy_scatter",
    "surrogacy_scatter_data",
]

OBSERVED = "#6b6b6b"
POSTERIOR = "#1f5fa8"
SUMMARY = "#b2182b"
PALETTE = ("#1f5fa8", "#b2182b", "#1b7837", "#762a83", "#e08214", "#35978f")
HR_TICKS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
HR_TICKS_DENSE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0)
NOT_IN_FOREST = {"ste_hr_pfs"}  # a PFS threshold, not an effect estimate

PANEL_LABELS = {
    "tau": "tau: SD of true log HRs (heterogeneity)",
    "residual_sd": "residual SD of OS log HR",
    "slope": "slope (OS log HR per PFS log HR)",
}

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def figure_svg(fig: Figure) -> str:
    """The figure as SVG text: text kept as text (small, sharp, searchable), no date, stable ids."""
    if fig.canvas is None or not hasattr(fig.canvas, "print_svg"):
        FigureCanvasAgg(fig)
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "harmoni-bayes"}):
        fig.savefig(buf, format="svg", facecolor="white", metadata={"Date": None})
    return buf.getvalue()


def figure_data_uri(fig: Figure) -> str:
    """The figure as an SVG ``data:`` URI (for ``<img src=...>`` on a self-contained page): sharp at any size."""
    return svg_data_uri(figure_svg(fig))


def _hr_axis(ax, lo: float, hi: float, axis: str = "x") -> None:
    """Log scale with plain HR tick labels, and the line of no effect at 1."""
    lo, hi = max(lo, 1e-3), max(hi, lo * 1.01)
    pad = (math.log(hi) - math.log(lo)) * 0.08 + 0.05
    lo, hi = math.exp(math.log(lo) - pad), math.exp(math.log(hi) + pad)
    ticks = [t for t in HR_TICKS if lo <= t <= hi]
    if len(ticks) < 4:
        ticks = [t for t in HR_TICKS_DENSE if lo <= t <= hi] or ticks or [1.0]
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}lim")(lo, hi)
    scale = getattr(ax, f"{axis}axis")
    scale.set_major_locator(FixedLocator(ticks))
    scale.set_minor_locator(NullLocator())
    scale.set_minor_formatter(NullFormatter())
    getattr(ax, f"set_{axis}ticklabels")([f"{t:g}" for t in ticks])
    if lo < 1 < hi:
        (ax.axvline if axis == "x" else ax.axhline)(1.0, color="black", lw=0.9, zorder=0)


def _label_right(ax, y: float, text: str, color: str) -> None:
    """Write an estimate's numbers just right of the axes, level with its row."""
    ax.annotate(
        text,
        xy=(1.0, y),
        xycoords=("axes fraction", "data"),
        xytext=(6, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
        color=color,
    )


def _presentation(result: Result) -> Presentation:
    model = result.summary.model
    return get_family(model).presentation if model in families() else Presentation()


def _quantities(result: Result) -> dict[str, dict]:
    return {q["name"]: q for q in result.summary.quantities}


def _probabilities(result: Result) -> dict[str, dict]:
    return {p["name"]: p for p in result.summary.probabilities}


def trial_rows(result: Result) -> pd.DataFrame:
    """The trial-evidence rows a result used (reference comparisons left out)."""
    df = result.evidence_used
    if df is None or len(df) == 0:
        return pd.DataFrame()
    if "table" in df.columns:
        df = df[df["table"].fillna("trials") != "reference"]
    return df.reset_index(drop=True)


def _reference_rows(result: Result) -> pd.DataFrame:
    df = result.evidence_used
    if df is None or len(df) == 0 or "table" not in df.columns:
        return pd.DataFrame()
    return df[df["table"] == "reference"].reset_index(drop=True)


def _float(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


_INDEXED = re.compile(r"^(?P<var>[A-Za-z_]\w*)\[(?P<label>.+)\]$")


def draws_of(group, name: str) -> np.ndarray | None:
    """Flat draws of summary quantity ``name`` from an InferenceData group (posterior or prior).

    Handles plain variables (``hr_pooled``) and indexed quantities stored as one variable with a dim
    (``hr[HARMONi-2]`` -> ``hr`` at that label); prior and posterior groups use the same names.
    """
    if group is None:
        return None
    data_vars = group.data_vars
    if name in data_vars:
        return np.asarray(group[name].values, dtype=float).ravel()
    m = _INDEXED.match(name)
    if m and m["var"] in data_vars:
        var = group[m["var"]]
        dims = [d for d in var.dims if d not in ("chain", "draw")]
        if len(dims) == 1:
            labels = [str(v) for v in var.coords[dims[0]].values]
            if m["label"] in labels:
                return np.asarray(var.isel({dims[0]: labels.index(m["label"])}).values, dtype=float).ravel()
    return None


def _group(result: Result, name: str):
    idata = result.idata
    try:
        return idata[name] if name in idata.groups() else None
    except (AttributeError, KeyError, TypeError):
        return None


def _observed(r: dict) -> dict:
    """A published HR with its 95% CI; where no CI was published but an SE was derived (from events,
    maturity or a p-value), the interval is exp(log HR +- 1.96 SE).
    """
    est, lo, hi = _float(r.get("hr")), _float(r.get("ci_lower")), _float(r.get("ci_upper"))
    se, log_hr = _float(r.get("se")), _float(r.get("log_hr"))
    if not (np.isfinite(lo) and np.isfinite(hi)) and np.isfinite(se) and se > 0:
        centre = log_hr if np.isfinite(log_hr) else (math.log(est) if est > 0 else math.nan)
        lo, hi = math.exp(centre - Z_INTERVAL * se), math.exp(centre + Z_INTERVAL * se)
    return {"estimate": est, "lower": lo, "upper": hi}


def _interval_row(q: dict, **extra) -> dict:
    return {"estimate": q.get("median"), "lower": q.get(LOWER_KEY), "upper": q.get(UPPER_KEY), **extra}


def _hr_text(est: float, lo: float, hi: float) -> str:
    """``0.52 (0.39–0.70)``, formatted exactly as the report formats numbers."""
    return hr_interval(float(est), float(lo), float(hi))


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=OBSERVED, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------------
# forest plot
# ---------------------------------------------------------------------------------------------


def forest_plot_data(result: Result) -> pd.DataFrame:
    """The forest plot's rows, top to bottom.

    Columns: ``row`` (label), ``kind`` (``observed``, ``posterior`` or ``summary``), ``estimate``,
    ``lower``, ``upper`` (HR scale; observed = published HR and 95% CI, otherwise posterior median and
    95% CrI from summary.json) and ``source`` (evidence row id or summary quantity name).

    The layout is the family's ``presentation.forest``:

    * ``levels``: per level the published ``hr_raw[level]`` and the shrunken ``hr[level]``; then ``hr_overall``;
    * ``trials``: per trial the published HR and ``hr[trial]``; then ``hr_pooled`` and ``hr_new_trial``;
    * ``target``: the target trial's published rows, then every HR-scale quantity;
    * ``none``: no rows.
    """
    qs = _quantities(result)
    pres = _presentation(result)
    short = pres.short_labels
    rows: list[dict] = []
    trials = trial_rows(result)
    if pres.forest == "none":
        pass
    elif pres.forest == "levels":
        levels = [n[len("hr[") : -1] for n in qs if n.startswith("hr[")]
        for lev in levels:
            if f"hr_raw[{lev}]" in qs:
                rows.append(_interval_row(qs[f"hr_raw[{lev}]"], row=lev, kind="observed", source=f"hr_raw[{lev}]"))
            rows.append(_interval_row(qs[f"hr[{lev}]"], row=lev, kind="posterior", source=f"hr[{lev}]"))
        if "hr_overall" in qs:
            rows.append(
                _interval_row(
                    qs["hr_overall"], row=short.get("hr_overall", "hr_overall"), kind="summary", source="hr_overall"
                )
            )
    elif pres.forest == "trials":
        for r in trials.to_dict("records"):
            trial = r["trial"]
            rows.append({"row": trial, "kind": "observed", **_observed(r), "source": r["row_id"]})
            if f"hr[{trial}]" in qs:
                rows.append(_interval_row(qs[f"hr[{trial}]"], row=trial, kind="posterior", source=f"hr[{trial}]"))
        for name in ("hr_pooled", "hr_new_trial"):
            if name in qs:
                rows.append(_interval_row(qs[name], row=short.get(name, name), kind="summary", source=name))
    else:
        for r in trials.to_dict("records"):
            label = " ".join(str(r[k]) for k in ("trial", "endpoint") if r.get(k))
            rows.append({"row": label or str(r["row_id"]), "kind": "observed", **_observed(r), "source": r["row_id"]})
        for name, q in qs.items():
            if q.get("scale") == "hr" and name not in NOT_IN_FOREST:
                rows.append(_interval_row(q, row=short.get(name, name), kind="summary", source=name))
    df = pd.DataFrame(rows, columns=["row", "kind", "estimate", "lower", "upper", "source"])
    return df.astype({"estimate": float, "lower": float, "upper": float})


def forest_plot(result: Result, ax=None) -> Figure:
    """Observed estimates with 95% CIs (grey squares) and posterior estimates with 95% CrIs (blue dots;
    pooled / summary rows as red diamonds) on a log HR axis with the line of no effect at 1.
    """
    df = forest_plot_data(result)
    labels = list(dict.fromkeys(df["row"]))
    if ax is None:
        fig, (ax,) = _new_figure(7.4, 0.55 * max(len(labels), 1) + 1.3)
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, "no HR-scale estimates to show")
        return fig
    ypos = {lab: len(labels) - 1 - i for i, lab in enumerate(labels)}
    style = {
        "observed": {"marker": "s", "color": OBSERVED, "mfc": "white", "ms": 6, "label": "published estimate (95% CI)"},
        "posterior": {"marker": "o", "color": POSTERIOR, "mfc": POSTERIOR, "ms": 6, "label": "posterior (95% CrI)"},
        "summary": {"marker": "D", "color": SUMMARY, "mfc": SUMMARY, "ms": 7, "label": "summary (95% CrI)"},
    }
    n_kinds = df.groupby("row")["kind"].transform("size")
    order = df.groupby("row").cumcount()
    seen = set()
    for (_, r), n, k in zip(df.iterrows(), n_kinds, order, strict=True):
        s = style.get(r["kind"], style["summary"])
        y = ypos[r["row"]] + (0.0 if n == 1 else (0.17 if k == 0 else -0.17))
        lab = s["label"] if r["kind"] not in seen else None
        seen.add(r["kind"])
        if np.isfinite(r["lower"]) and np.isfinite(r["upper"]):
            ax.plot([r["lower"], r["upper"]], [y, y], color=s["color"], lw=1.8, solid_capstyle="butt")
        ax.plot(
            [r["estimate"]],
            [y],
            linestyle="none",
            marker=s["marker"],
            color=s["color"],
            mfc=s["mfc"],
            ms=s["ms"],
            label=lab,
            zorder=3,
        )
        _label_right(ax, y, _hr_text(r["estimate"], r["lower"], r["upper"]), str(s["color"]))
    vals = np.concatenate([df[c].to_numpy(float) for c in ("estimate", "lower", "upper")])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    _hr_axis(ax, min(vals.min(), 0.9), max(vals.max(), 1.1))
    ax.set_yticks(list(ypos.values()), list(ypos.keys()))
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel("hazard ratio (log scale); < 1 favours the experimental arm")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


# ---------------------------------------------------------------------------------------------
# posterior densities
# ---------------------------------------------------------------------------------------------


def _density_names(result: Result) -> list[str]:
    qs = _quantities(result)
    keys = _presentation(result).densities or tuple(n for n, q in qs.items() if q.get("scale") == "hr")
    out = []
    for k in keys:
        if k.endswith("[*]"):
            stem = k[:-3]
            out += [n for n in qs if n.startswith(stem + "[")]
        elif k in qs:
            out.append(k)
    lead = headline_quantity(result)
    if lead is not None and lead not in out:  # e.g. a network whose target is not the family's default
        out.insert(0, lead)
    return out


def posterior_densities_data(result: Result) -> pd.DataFrame:
    """Density curves: columns ``quantity``, ``distribution`` (``posterior`` / ``prior``), ``panel``
    (``hr`` for HR-scale quantities, else the quantity name), ``x`` and ``density``.

    HR-scale quantities are estimated on the log scale (density per unit log HR) and plotted against
    the HR; priors come from ``idata.prior`` (same names as the posterior) and are drawn where present.
    """
    qs = _quantities(result)
    post, prior = _group(result, "posterior"), _group(result, "prior")
    frames = []
    for name in _density_names(result):
        is_hr = qs[name].get("scale") in ("hr", "ratio")
        for dist, group in (("posterior", post), ("prior", prior)):
            draws = draws_of(group, name)
            if draws is None:
                continue
            draws = draws[np.isfinite(draws)]
            if is_hr:
                draws = np.log(draws[draws > 0])
            if draws.size < 2 or np.ptp(draws) == 0:
                continue
            x, dens = posterior.kde(draws)
            frames.append(
                pd.DataFrame(
                    {
                        "quantity": name,
                        "distribution": dist,
                        "panel": "hr" if is_hr else name,
                        "x": np.exp(x) if is_hr else x,
                        "density": dens,
                    }
                )
            )
    cols = ["quantity", "distribution", "panel", "x", "density"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def plain_label(result: Result, name: str) -> str:
    """A quantity's name as a legend shows it: its plain words without their parenthesis ("pooled HR"), else the
    family's short label, else the name.
    """
    pres = _presentation(result)
    words = describe_quantity(name, pres.names)
    if words == name and name in pres.short_labels:
        return pres.short_labels[name]
    return re.sub(r"\s*\([^()]*\)$", "", words) or name


def _share_below_1(result: Result, name: str, log_draws: np.ndarray | None = None) -> float | None:
    """P(<name> < 1): from summary.json when it reports it, else from the draws (log scale), else None."""
    p = _probabilities(result).get(f"P({name}<1)")
    if p is not None:
        return float(p["value"])
    if log_draws is not None and log_draws.size:
        return float(np.mean(log_draws < 0))
    return None


def posterior_densities(result: Result, ax=None) -> Figure:
    """Posterior densities (solid) of the key quantities with their priors (dashed).

    As :func:`arviz.plot_posterior` does, each posterior has its 95% HDI drawn as a bar under the curves (from
    summary.json), and on the HR panel the area below HR 1 is shaded and its share stated in the legend
    (``P(HR<1)`` from summary.json where reported).  Legends use plain names and sit above the axes, off the
    line of no effect.  Without ``ax`` the figure has one panel for the HR-scale quantities (log axis) and
    one per other quantity (e.g. tau); with ``ax`` only the HR panel is drawn into it.
    """
    df = posterior_densities_data(result)
    panels = list(dict.fromkeys(df["panel"])) if not df.empty else ["hr"]
    if "hr" in panels:
        panels = ["hr"] + [p for p in panels if p != "hr"]
    if ax is None:
        widths = [3.0 if p == "hr" else 1.8 for p in panels]
        fig = Figure(figsize=(min(max(3.2 * sum(widths) / 1.6, 6.0), 10.5), 3.8), layout="constrained")
        FigureCanvasAgg(fig)
        axes = list(fig.subplots(1, len(panels), squeeze=False, gridspec_kw={"width_ratios": widths})[0])
    else:
        fig, axes, panels = ax.figure, [ax], panels[:1]
    if df.empty:
        _message(axes[0], "no posterior draws to show")
        return fig
    qs = _quantities(result)
    for ax_, panel in zip(axes, panels, strict=True):
        sub = df[df["panel"] == panel]
        names = list(dict.fromkeys(sub["quantity"]))
        post = sub[sub["distribution"] == "posterior"]
        top = float(sub["density"].max()) if len(sub) else 1.0
        for i, name in enumerate(names):
            color = PALETTE[i % len(PALETTE)]
            p = post[post["quantity"] == name]
            label = plain_label(result, name)
            if panel == "hr" and len(p):
                below = p[p["x"] <= 1.0]
                if len(below) and i == 0:  # shading every curve would blur into grey: the first (headline) one
                    ax_.fill_between(below["x"], 0, below["density"], color=color, alpha=0.15, lw=0)
                share = _share_below_1(result, name)
                if share is not None:
                    label += f" \u2014 P(HR<1) {fmt_probability(share)}"
            ax_.plot(p["x"], p["density"], color=color, lw=2, label=label)
            pr = sub[(sub["quantity"] == name) & (sub["distribution"] == "prior")]
            if len(pr):
                ax_.plot(pr["x"], pr["density"], color=color, lw=1.2, ls="--", alpha=0.8)
            q = qs.get(name, {})
            lo, hi = q.get("hdi_low"), q.get("hdi_high")
            if lo is not None and hi is not None and len(p):
                y = -top * (0.05 + 0.06 * i)
                ax_.plot([lo, hi], [y, y], color=color, lw=3, solid_capstyle="butt")
        if (sub["distribution"] == "prior").any():
            ax_.plot([], [], color=OBSERVED, lw=1.2, ls="--", label="prior (dashed)")
        ax_.plot([], [], color=OBSERVED, lw=3, label=f"{INTERVAL_PROB:.0%} HDI (bars)")
        if panel == "hr":
            lo = min(qs[n][LOWER_KEY] for n in names if n in qs)
            hi = max(qs[n][UPPER_KEY] for n in names if n in qs)
            _hr_axis(ax_, min(lo * 0.8, 0.9), max(hi * 1.25, 1.1))
            ax_.set_xlabel("hazard ratio (log scale); shaded: HR < 1")
            ax_.set_ylabel("density per unit log HR")
        else:
            q = qs.get(panel, {})
            if q.get(UPPER_KEY) is not None:
                ax_.set_xlim(left=min(0.0, post["x"].min()), right=q[UPPER_KEY] * 1.6)
            ax_.set_xlabel(PANEL_LABELS.get(panel, plain_label(result, panel)))
        ax_.set_ylim(bottom=-top * (0.05 + 0.06 * len(names)), top=top * 1.05)
        ax_.axhline(0, color=OBSERVED, lw=0.6, zorder=0)
        ax_.set_yticks([])
        ax_.legend(fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=1)
        for side in ("top", "right", "left"):
            ax_.spines[side].set_visible(False)
    return fig


# ---------------------------------------------------------------------------------------------
# probability of benefit: P(HR < h) over h
# ---------------------------------------------------------------------------------------------

BENEFIT_HRS = np.round(np.exp(np.linspace(math.log(0.3), math.log(1.3), 121)), 4)
"""The HRs at which the probability-of-benefit curve is drawn (0.3 to 1.3, even on the log scale)."""
BENEFIT_MARKS = (1.0, 0.9, 0.8, 0.7)
"""Thresholds marked on the curve when the spec names none."""
_BENEFIT_LINES = ("-", "--", ":")
"""Line styles of a family's several benefit curves, the headline's first."""


def headline_quantity(result: Result) -> str | None:
    """The HR-scale quantity a result's headline is about, or None when the headline is not an HR.

    The family's ``presentation.headline_quantity`` when the summary reports it on the HR scale; else (e.g. a
    network whose target is not the family's default) the first HR-scale quantity with ``P(<name><1)``.
    """
    qs = _quantities(result)
    name = _presentation(result).headline_quantity
    if name in qs:
        return name if qs[name].get("scale") == "hr" else None
    for p in _probabilities(result):
        m = re.fullmatch(r"P\((.+)<1\)", p)
        if m and qs.get(m.group(1), {}).get("scale") == "hr":
            return m.group(1)
    return None


def benefit_thresholds(result: Result) -> tuple[float, ...]:
    """The HRs marked on the benefit curve: the spec's ``thresholds``, else 1, 0.9, 0.8 and 0.7."""
    spec = result.spec if isinstance(result.spec, dict) else {}
    given = spec.get("thresholds") or ()
    marks = [float(t) for t in given if isinstance(t, int | float) and float(t) > 0]
    return tuple(sorted(set(marks or BENEFIT_MARKS), reverse=True))


def benefit_curve_data(result: Result) -> pd.DataFrame:
    """The probability-of-benefit curve of the headline HR quantity, or the family's own curves.

    Columns: ``quantity`` (the headline quantity, or the family's curve label), ``kind`` (``curve``: at
    :data:`BENEFIT_HRS`; ``mark``: at the thresholds of :func:`benefit_thresholds`), ``hr``, ``probability``,
    ``source`` (``draws``, or ``summary`` for a mark whose ``P(<quantity><h>)`` summary.json reports: that value
    is shown, so the figure never disagrees with the probability table) and ``given`` (empty for P(HR < h); for a
    family's curves, what h is, e.g. ``true PFS HR``, and ``event``, what the probability is of).  With an HR
    headline the curve is P(HR < h) from its posterior draws; a family whose headline is not an HR may declare
    curves (``Presentation.benefit``, e.g. the probability of an OS benefit given the PFS HR).  Empty when
    neither applies or the draws are missing.
    """
    cols = ["quantity", "kind", "hr", "probability", "source", "given", "event"]
    name = headline_quantity(result)
    posterior = _group(result, "posterior")
    declared = _presentation(result).benefit
    if name is None:
        if declared is None or posterior is None:
            return pd.DataFrame(columns=cols)
        marks = np.array(benefit_thresholds(result))
        log_h = np.log(np.concatenate([BENEFIT_HRS, marks]))
        rows = []
        for label, curve in declared.curves(lambda n: draws_of(posterior, n), log_h).items():
            for h, v in zip(BENEFIT_HRS, curve[: BENEFIT_HRS.size], strict=True):
                rows.append({"quantity": label, "kind": "curve", "hr": float(h), "probability": float(v)})
            for h, v in zip(marks, curve[BENEFIT_HRS.size :], strict=True):
                rows.append({"quantity": label, "kind": "mark", "hr": float(h), "probability": float(v)})
        out = pd.DataFrame(rows, columns=cols).assign(source="draws", given=declared.given, event=declared.event)
        return out.astype({"hr": float, "probability": float})
    draws = draws_of(posterior, name) if name else None
    if draws is None:
        return pd.DataFrame(columns=cols)
    draws = np.sort(draws[np.isfinite(draws)])
    if draws.size == 0:
        return pd.DataFrame(columns=cols)

    def below(h: np.ndarray) -> np.ndarray:
        return np.searchsorted(draws, h, side="left") / draws.size

    probs = _probabilities(result)
    rows = [
        {"quantity": name, "kind": "curve", "hr": float(h), "probability": float(v), "source": "draws"}
        for h, v in zip(BENEFIT_HRS, below(BENEFIT_HRS), strict=True)
    ]
    for t in benefit_thresholds(result):
        p = probs.get(f"P({name}<{t:g})")
        value, source = (float(p["value"]), "summary") if p else (float(below(np.array([t]))[0]), "draws")
        rows.append({"quantity": name, "kind": "mark", "hr": t, "probability": value, "source": source})
    out = pd.DataFrame(rows, columns=cols).assign(given="", event="")
    return out.astype({"hr": float, "probability": float})


def benefit_curve(result: Result, ax=None) -> Figure:
    """P(HR < h) against h (log axis, 0.3 to 1.3) for the headline HR quantity, with the thresholds marked
    and their probabilities written beside them.  Reading: the curve at h is the probability that the true
    HR is below h, i.e. that the benefit is at least that large.  A family's own curves (e.g. the probability
    of an OS benefit for a trial with true PFS HR h) are drawn the same way, the first (the headline's) marked.
    """
    df = benefit_curve_data(result)
    if ax is None:
        fig, (ax,) = _new_figure(7.4, 3.6)
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, "no HR-scale headline quantity with posterior draws")
        return fig
    given, event = str(df["given"].iloc[0]), str(df["event"].iloc[0])
    names = list(dict.fromkeys(df["quantity"]))
    for i, name in enumerate(names):
        curve = df[(df["kind"] == "curve") & (df["quantity"] == name)]
        label = f"P({plain_label(result, name)} < h)" if not given else name
        style = _BENEFIT_LINES[i % len(_BENEFIT_LINES)]
        ax.plot(curve["hr"], curve["probability"], color=POSTERIOR, lw=2 if i == 0 else 1.2, ls=style, label=label)
    marks = df[(df["kind"] == "mark") & (df["quantity"] == names[0])]
    for r in marks.itertuples(index=False):
        ax.plot([r.hr, r.hr], [0, r.probability], color=OBSERVED, lw=0.8, ls=":")
        ax.plot([r.hr], [r.probability], "o", color=SUMMARY, ms=5, zorder=3)
    mark = "{given} {h:g}: {p}" if given else "P(HR < {h:g}) = {p}"
    said = "\n".join(
        mark.format(given=given, h=r.hr, p=fmt_probability(r.probability)) for r in marks.itertuples(index=False)
    )
    ax.text(  # right of the axes: never over the curve or the line of no effect
        1.03,
        0.5,
        said,
        transform=ax.transAxes,
        ha="left",
        va="center",
        fontsize=8,
        color=SUMMARY,
        bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#d8dee6"},
    )
    _hr_axis(ax, min(float(BENEFIT_HRS[0]), marks["hr"].min()), max(float(BENEFIT_HRS[-1]), marks["hr"].max()))
    ax.set_ylim(0, 1.04)
    ax.set_xlabel(f"h: {given or 'hazard ratio'} (log scale)")
    ax.set_ylabel("probability that HR < h" if not given else f"probability of {event}")
    ax.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=min(len(names), 3))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


# ---------------------------------------------------------------------------------------------
# surrogacy scatter
# ---------------------------------------------------------------------------------------------

_REF_COLS = ("pfs_hr", "pfs_ci_lower", "pfs_ci_upper", "os_hr", "os_ci_lower", "os_ci_upper")


def surrogacy_scatter_data(result: Result, grid_size: int = 60) -> pd.DataFrame:
    """Rows ``kind`` = ``reference`` (one per reference comparison: PFS and OS HR with 95% CIs),
    ``fit`` (the fitted line: OS HR median and 95% band over a PFS HR grid, from the slope/intercept
    draws: log OS HR = intercept + slope * log PFS HR) and ``target`` (the target trial's PFS HR as
    published and its forecast OS HR from summary.json).  Missing pieces are simply absent.
    """
    cols = ["kind", "label", "pfs_hr", "pfs_lower", "pfs_upper", "os_hr", "os_lower", "os_upper"]
    rows: list[dict] = []
    ref = _reference_rows(result)
    if len(ref) and all(c in ref.columns for c in _REF_COLS):
        label_col = "comparison" if "comparison" in ref.columns else "trial"
        for r in ref.to_dict("records"):
            rows.append(
                {
                    "kind": "reference",
                    "label": str(r.get(label_col, r.get("row_id", ""))),
                    "pfs_hr": _float(r["pfs_hr"]),
                    "pfs_lower": _float(r["pfs_ci_lower"]),
                    "pfs_upper": _float(r["pfs_ci_upper"]),
                    "os_hr": _float(r["os_hr"]),
                    "os_lower": _float(r["os_ci_lower"]),
                    "os_upper": _float(r["os_ci_upper"]),
                }
            )
    qs = _quantities(result)
    target = None
    trials = trial_rows(result)
    if len(trials):
        pfs = trials[trials["endpoint"].astype(str).str.upper() == "PFS"] if "endpoint" in trials else trials
        if len(pfs):
            t = pfs.iloc[0]
            target = {
                "kind": "target",
                "label": str(t.get("trial", "target")),
                "pfs_hr": _float(t.get("hr")),
                "pfs_lower": _float(t.get("ci_lower")),
                "pfs_upper": _float(t.get("ci_upper")),
            }
            if "os_hr" in qs:
                q = qs["os_hr"]
                target |= {"os_hr": q["median"], "os_lower": q[LOWER_KEY], "os_upper": q[UPPER_KEY]}
    post = _group(result, "posterior")
    slope, intercept = draws_of(post, "slope"), draws_of(post, "intercept")
    candidates = [r["pfs_lower"] for r in rows] + [r["pfs_upper"] for r in rows] + [r["pfs_hr"] for r in rows]
    if target:
        candidates += [target["pfs_hr"]]
    xs = np.asarray([x for x in candidates if np.isfinite(x) and x > 0])
    if slope is not None and intercept is not None and slope.size == intercept.size and xs.size:
        grid = np.exp(np.linspace(np.log(xs.min()), np.log(xs.max()), grid_size))
        log_os = intercept[:, None] + slope[:, None] * np.log(grid)[None, :]
        lo, med, hi = np.quantile(log_os, [Q_LO, 0.5, Q_HI], axis=0)
        rows += [
            {
                "kind": "fit",
                "label": "fitted line",
                "pfs_hr": g,
                "os_hr": math.exp(m),
                "os_lower": math.exp(a),
                "os_upper": math.exp(b),
            }
            for g, m, a, b in zip(grid, med, lo, hi, strict=True)
        ]
    if target:
        rows.append(target)
    return pd.DataFrame(rows, columns=cols).astype({c: float for c in cols[2:]})


def surrogacy_scatter(result: Result, ax=None) -> Figure:
    """Reference comparisons' OS HR against PFS HR (95% CIs both ways, log-log), the fitted
    surrogacy line with its 95% band, and the target trial's forecast OS HR at its observed PFS HR.
    """
    df = surrogacy_scatter_data(result)
    if ax is None:
        fig, (ax,) = _new_figure(6.0, 4.8)
    else:
        fig = ax.figure
    ref, fit, tgt = (df[df["kind"] == k] for k in ("reference", "fit", "target"))
    if ref.empty and fit.empty and not np.isfinite(tgt["os_hr"]).any():
        _message(ax, "no reference trials or surrogacy draws in this result")
        return fig
    if len(ref):
        ax.errorbar(
            ref["pfs_hr"],
            ref["os_hr"],
            xerr=[ref["pfs_hr"] - ref["pfs_lower"], ref["pfs_upper"] - ref["pfs_hr"]],
            yerr=[ref["os_hr"] - ref["os_lower"], ref["os_upper"] - ref["os_hr"]],
            fmt="o",
            color=OBSERVED,
            mfc="white",
            ms=5,
            lw=0.8,
            capsize=0,
            label="reference trials (95% CI)",
        )
    if len(fit):
        ax.fill_between(fit["pfs_hr"], fit["os_lower"], fit["os_upper"], color=POSTERIOR, alpha=0.15, lw=0)
        ax.plot(fit["pfs_hr"], fit["os_hr"], color=POSTERIOR, lw=2, label="fitted line (95% CrI)")
    if len(tgt) and np.isfinite(tgt["os_hr"]).any():
        t = tgt.iloc[0]
        ax.errorbar(
            [t["pfs_hr"]],
            [t["os_hr"]],
            yerr=[[t["os_hr"] - t["os_lower"]], [t["os_upper"] - t["os_hr"]]],
            xerr=[[t["pfs_hr"] - t["pfs_lower"]], [t["pfs_upper"] - t["pfs_hr"]]]
            if np.isfinite(t["pfs_lower"])
            else None,
            fmt="D",
            color=SUMMARY,
            ms=7,
            lw=1.5,
            label=f"{t['label']}: forecast OS HR (95% CrI)",
        )
    vals_x = df[["pfs_hr", "pfs_lower", "pfs_upper"]].to_numpy(float).ravel()
    vals_y = df[["os_hr", "os_lower", "os_upper"]].to_numpy(float).ravel()
    vals_x, vals_y = vals_x[np.isfinite(vals_x) & (vals_x > 0)], vals_y[np.isfinite(vals_y) & (vals_y > 0)]
    if vals_x.size:
        _hr_axis(ax, min(vals_x.min(), 0.9), max(vals_x.max(), 1.1), "x")
    if vals_y.size:
        _hr_axis(ax, min(vals_y.min(), 0.9), max(vals_y.max(), 1.1), "y")
    ax.set_xlabel("PFS hazard ratio (log scale)")
    ax.set_ylabel("OS hazard ratio (log scale)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, loc="upper left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


# ---------------------------------------------------------------------------------------------
# comparison between results (dates)
# ---------------------------------------------------------------------------------------------


def _result_label(r: Result) -> str:
    as_of = r.summary.as_of or r.provenance.get("as_of")
    return f"as of {as_of}" if as_of else f"{r.summary.spec} ({str(r.provenance.get('created', ''))[:10]})"


def compare_posteriors_data(results: Sequence[Result], quantity: str) -> pd.DataFrame:
    """One row per result holding ``quantity``, ordered by as-of date: ``label``, ``spec``, ``as_of``,
    ``estimate`` / ``lower`` / ``upper`` (median and 95% CrI from summary.json), ``scale`` and
    ``p_below_1`` (``P(<quantity><1)`` when reported).
    """
    rows = []
    for r in results:
        qs, ps = _quantities(r), _probabilities(r)
        if quantity not in qs:
            continue
        q = qs[quantity]
        p = ps.get(f"P({quantity}<1)")
        rows.append(
            {
                "label": _result_label(r),
                "spec": r.summary.spec,
                "as_of": r.summary.as_of,
                "estimate": q["median"],
                "lower": q[LOWER_KEY],
                "upper": q[UPPER_KEY],
                "scale": q.get("scale"),
                "p_below_1": p["value"] if p else math.nan,
            }
        )
    cols = ["label", "spec", "as_of", "estimate", "lower", "upper", "scale", "p_below_1"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values("as_of", kind="stable", na_position="last").reset_index(drop=True)
    return df


def compare_posteriors(results: Sequence[Result], quantity: str, ax=None) -> Figure:
    """Median and 95% CrI of ``quantity`` in each result, one row per result (earliest on top);
    P(<quantity> < 1) is printed beside each row when the result reports it.
    """
    df = compare_posteriors_data(results, quantity)
    if ax is None:
        fig, (ax,) = _new_figure(7.0, 0.5 * max(len(df), 1) + 1.2)
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, f"no result reports {quantity}")
        return fig
    n = len(df)
    y = np.arange(n)[::-1]
    ax.hlines(y, df["lower"], df["upper"], color=POSTERIOR, lw=2)
    ax.plot(df["estimate"], y, "o", color=POSTERIOR, ms=6)
    for yi, r in zip(y, df.itertuples(index=False), strict=True):
        text = _hr_text(r.estimate, r.lower, r.upper)
        if np.isfinite(r.p_below_1):
            text += f"; P(<1) {fmt_probability(float(r.p_below_1))}"
        _label_right(ax, yi, text, POSTERIOR)
    ax.set_yticks(y, df["label"])
    ax.set_ylim(-0.7, n - 0.3)
    if set(df["scale"]) <= {"hr", "ratio"}:
        _hr_axis(ax, min(df["lower"].min(), 0.9), max(df["upper"].max(), 1.1))
        ax.set_xlabel(f"{quantity} (log scale)")
    else:
        ax.set_xlabel(quantity)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


# ---------------------------------------------------------------------------------------------
# the figure registry
# ---------------------------------------------------------------------------------------------


def _forest_caption(df: pd.DataFrame) -> str:
    kinds = set(df["kind"])
    parts = []
    if "observed" in kinds:
        parts.append(
            "Grey squares: each published HR with its 95% confidence interval (from the published CI, "
            "or from the SE where no CI was published)."
        )
    if "posterior" in kinds:
        parts.append(
            "Blue dots: the model's estimate for the same trial or subgroup after borrowing strength, "
            "with its 95% credible interval."
        )
    if "summary" in kinds:
        parts.append("Red diamonds: pooled, overall or forecast estimates (95% credible intervals).")
    parts.append("Left of the vertical line (HR 1) favours the experimental arm.")
    return " ".join(parts)


def _densities_caption(df: pd.DataFrame) -> str:
    text = (
        "Solid curves: how plausible each value is after seeing the evidence (posterior); bars under the curves: "
        f"{INTERVAL_PROB:.0%} highest-density intervals; shaded: the part below HR 1, whose probability the "
        "legend states."
    )
    if (df["distribution"] == "prior").any():
        return text + (
            " Dashed curves: before seeing it (prior). Where the two look alike, the data say little "
            "about that quantity."
        )
    return text + " No prior draws were stored with this result, so no prior is overlaid."


def _benefit_caption(df: pd.DataFrame) -> str:
    first = df["quantity"].iloc[0]
    marks = df[(df["kind"] == "mark") & (df["quantity"] == first)]
    given, event = str(df["given"].iloc[0]), str(df["event"].iloc[0])
    if given:
        said = "; ".join(
            f"{given} {h:g}: {fmt_probability(p)}" for h, p in zip(marks["hr"], marks["probability"], strict=True)
        )
        others = "; thinner lines: the other relationships" if df["quantity"].nunique() > 1 else ""
        return (
            f"The probability of {event} for a trial whose {given} is h, from the posterior draws of the PFS-to-OS "
            f"relationship ({first}{others}): the further left, the larger the PFS benefit. Marked: {said}."
        )
    said = "; ".join(
        f"HR < {h:g}: {fmt_probability(p)}" for h, p in zip(marks["hr"], marks["probability"], strict=True)
    )
    return (
        "The probability that the true hazard ratio is below each value h on the horizontal axis, from the "
        f"posterior draws: the further left, the larger the benefit asked for. Marked: {said} (values as in the "
        "probability table where it reports them)."
    )


def _surrogacy_caption(df: pd.DataFrame) -> str:
    text = (
        "Each grey point is a reference trial (95% CIs). The blue line and band are the fitted PFS-to-OS "
        "relation (posterior median and 95% credible band)."
    )
    if ((df["kind"] == "target") & df["os_hr"].notna()).any():
        text += " The red diamond is the target trial's forecast OS HR at its observed PFS HR."
    return text


@dataclass(frozen=True)
class FigureDef:
    """A report figure: its title, a caption written from the plotted data, the plot and its data."""

    title: str
    caption: Callable[[pd.DataFrame], str]
    plot: Callable[[Result], Figure]
    data: Callable[[Result], pd.DataFrame]


FIGURES: dict[str, FigureDef] = {
    "forest": FigureDef("Published estimates and posterior estimates", _forest_caption, forest_plot, forest_plot_data),
    "densities": FigureDef("Posterior and prior", _densities_caption, posterior_densities, posterior_densities_data),
    "surrogacy": FigureDef(
        "PFS and OS effects across reference trials", _surrogacy_caption, surrogacy_scatter, surrogacy_scatter_data
    ),
    "benefit": FigureDef("Probability of benefit", _benefit_caption, benefit_curve, benefit_curve_data),
}


# ---------------------------------------------------------------------------------------------
# probability of success (family ``pos``): the MAP prior and the OC curve
# ---------------------------------------------------------------------------------------------

POS_ENDPOINTS = ("PFS", "OS")
POS_OC_HRS = np.exp(np.linspace(math.log(0.3), math.log(1.3), 100))
"""The 100 true HRs of the OC curve."""
_POS_DENSITY_HRS = np.exp(np.linspace(math.log(0.08), math.log(4.0), 400))
_POS_CACHE: dict[str, dict] = {}


def _pos_analysis(result: Result) -> dict:
    """The per-endpoint analysis of a ``pos`` result, rebuilt from its saved spec and evidence rows (and, for
    an MCMC fit, its draws of ``theta_target``) by :func:`harmoni_bayes.models.pos.reanalyse`.

    The rebuild is deterministic; it is checked against ``summary.json`` (each endpoint's ELIR ESS must agree
    to the 6 digits stored), so a figure can never show a prior other than the one the numbers came from.
    """
    import json

    from ..constants import round_sig
    from ..errors import ResultError
    from ..models.pos import reanalyse

    key = result.summary.to_json() + json.dumps(result.spec, sort_keys=True, default=str)
    if key in _POS_CACHE:
        return _POS_CACHE[key]
    draws = None
    if result.summary.method == "mcmc":
        post = _group(result, "posterior")
        draws = {e: d for e in POS_ENDPOINTS if (d := draws_of(post, f"theta_target[{e}]")) is not None}
    analysis = reanalyse(result.spec, result.evidence_used, draws)
    qs = _quantities(result)
    for e, x in analysis.items():
        saved = qs.get(f"ess_elir[{e}]", {}).get("median")
        again = round_sig(x.ess("elir"))
        if saved is None or again is None or abs(again - saved) > 1e-5 * abs(saved):
            raise ResultError(
                f"{result.summary.spec}: the {e} prior rebuilt from the saved spec and evidence does not match "
                f"summary.json (ESS {again} vs {saved}); re-run 'harmoni-bayes run'"
            )
    if len(_POS_CACHE) > 8:
        _POS_CACHE.clear()
    _POS_CACHE[key] = analysis
    return analysis


def map_prior_data(result: Result) -> pd.DataFrame:
    """Prior densities per unit log HR against the HR, per endpoint: columns ``endpoint``, ``curve``, ``hr``,
    ``density``.

    Curves: ``map_exact`` (the exact MAP predictive of a new trial's log HR, grid over tau; exact fits only),
    ``map_mixture`` (its normal-mixture approximation after the region discount) and ``robust`` (the prior
    used: the mixture with the robust component).
    """
    cols = ["endpoint", "curve", "hr", "density"]
    if result.summary.model != "pos":
        return pd.DataFrame(columns=cols)
    frames = []
    x = np.log(_POS_DENSITY_HRS)
    for e, a in _pos_analysis(result).items():
        curves = {"map_mixture": a.mixture.pdf(x), "robust": a.robust.pdf(x)}
        if a.predictive is not None and a.trials:
            curves = {"map_exact": a.predictive.pdf(x)} | curves
        for name, dens in curves.items():
            frames.append(pd.DataFrame({"endpoint": e, "curve": name, "hr": _POS_DENSITY_HRS, "density": dens}))
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


_POS_CURVE_STYLE = {
    "map_exact": {"color": OBSERVED, "lw": 1.2, "ls": ":", "label": "MAP predictive (exact grid)"},
    "map_mixture": {"color": POSTERIOR, "lw": 2.0, "ls": "-", "label": "MAP prior (mixture, region discount)"},
    "robust": {"color": SUMMARY, "lw": 1.6, "ls": "--", "label": "prior used (with robust component)"},
}


def _pos_axes(n: int, ax, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list]:
    if ax is not None:
        return ax.figure, [ax]
    return _new_figure(width * max(n, 1), height, ncols=max(n, 1))


def map_prior(result: Result, ax=None) -> Figure:
    """The MAP prior of each endpoint (exact predictive, its mixture approximation) and the robust prior used,
    as densities per unit log HR on a log HR axis.  With ``ax`` only the first endpoint is drawn.
    """
    df = map_prior_data(result)
    endpoints = list(dict.fromkeys(df["endpoint"]))
    fig, axes = _pos_axes(len(endpoints), ax)
    if df.empty:
        _message(axes[0], "no prior to show")
        return fig
    for ax_, e in zip(axes, endpoints, strict=False):
        sub = df[df["endpoint"] == e]
        for name, style in _POS_CURVE_STYLE.items():
            c = sub[sub["curve"] == name]
            if len(c):
                ax_.plot(c["hr"], c["density"], **style)
        _hr_axis(ax_, 0.15, 2.5)
        ax_.set_ylim(0, float(sub["density"].max()) * 1.45)  # headroom for the legend above the curves
        ax_.set_title(e, fontsize=10)
        ax_.set_xlabel("true HR of the new trial (log scale)")
        ax_.set_ylabel("density per unit log HR")
        ax_.legend(fontsize=7, frameon=False, loc="upper left")
        for side in ("top", "right"):
            ax_.spines[side].set_visible(False)
    return fig


def oc_curve_data(result: Result) -> pd.DataFrame:
    """The OC curve with the prior, per endpoint: columns ``endpoint``, ``kind``, ``hr``, ``value``.

    ``kind`` = ``power`` (probability of success at 100 true HRs from 0.3 to 1.3, computed from the saved
    design), ``oc_table`` (the powers stored in summary.json as ``P(success[e];HR=h)``) and ``prior`` (the
    density per unit log HR of the prior used, at the same HRs).
    """
    cols = ["endpoint", "kind", "hr", "value"]
    if result.summary.model != "pos":
        return pd.DataFrame(columns=cols)
    frames = []
    probs = _probabilities(result)
    for e, a in _pos_analysis(result).items():
        frames.append(pd.DataFrame({"endpoint": e, "kind": "power", "hr": POS_OC_HRS, "value": a.power(POS_OC_HRS)}))
        frames.append(
            pd.DataFrame({"endpoint": e, "kind": "prior", "hr": POS_OC_HRS, "value": a.robust.pdf(np.log(POS_OC_HRS))})
        )
        prefix = f"P(success[{e}];HR="
        table = [(float(n[len(prefix) : -1]), p["value"]) for n, p in probs.items() if n.startswith(prefix)]
        if table:
            hr, val = zip(*table, strict=True)
            frames.append(pd.DataFrame({"endpoint": e, "kind": "oc_table", "hr": hr, "value": val}))
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def oc_curve(result: Result, ax=None) -> Figure:
    """Probability of success against the true HR (the design's OC curve; dots: the table in summary.json),
    with the prior used shaded behind it and the critical HR of the final analysis marked.  The assurance is
    the OC curve averaged over that prior.  With ``ax`` only the first endpoint is drawn.
    """
    df = oc_curve_data(result)
    endpoints = list(dict.fromkeys(df["endpoint"]))
    fig, axes = _pos_axes(len(endpoints), ax)
    if df.empty:
        _message(axes[0], "no design to show")
        return fig
    qs, ps = _quantities(result), _probabilities(result)
    for ax_, e in zip(axes, endpoints, strict=False):
        sub = df[df["endpoint"] == e]
        prior = sub[sub["kind"] == "prior"]
        twin = ax_.twinx()
        twin.fill_between(prior["hr"], 0, prior["value"], color=SUMMARY, alpha=0.12, lw=0)
        twin.set_ylim(bottom=0, top=max(float(prior["value"].max()), 1e-9) * 1.15)
        twin.set_yticks([])
        for side in ("top", "right"):
            twin.spines[side].set_visible(False)
        power = sub[sub["kind"] == "power"]
        label = "probability of success"
        if f"P(success[{e}])" in ps:
            label += f" (assurance {fmt_probability(ps[f'P(success[{e}])']['value'])})"
        ax_.plot(power["hr"], power["value"], color=POSTERIOR, lw=2, label=label, zorder=3)
        table = sub[sub["kind"] == "oc_table"]
        if len(table):
            ax_.plot(table["hr"], table["value"], "o", color=POSTERIOR, ms=4, zorder=4)
        crit = qs.get(f"critical_hr[{e}]", {}).get("median")
        if crit is not None:
            ax_.axvline(crit, color=OBSERVED, lw=1, ls="--", label="critical HR at the final analysis")
        ax_.fill_between([], [], color=SUMMARY, alpha=0.12, label="prior used (shaded)")
        _hr_axis(ax_, float(power["hr"].min()), float(power["hr"].max()))
        ax_.set_ylim(0, 1.02)
        ax_.set_zorder(twin.get_zorder() + 1)
        ax_.patch.set_visible(False)
        ax_.set_title(e, fontsize=10)
        ax_.set_xlabel("true HR (log scale)")
        ax_.set_ylabel("probability of success")
        ax_.legend(fontsize=7, frameon=False, loc="lower left")
        for side in ("top", "right"):
            ax_.spines[side].set_visible(False)
    return fig


def _map_prior_caption(df: pd.DataFrame) -> str:
    text = (
        "Blue: the meta-analytic-predictive (MAP) prior for the new trial's true HR, approximated by a mixture of "
        "normal distributions (after the region discount, if any). Red dashed: the prior actually used, which "
        "adds a vague robust component in case the new trial is unlike the earlier ones."
    )
    if (df["curve"] == "map_exact").any():
        text += " Grey dotted: the exact MAP predictive before any discount."
    return text + " Left of HR 1 favours the experimental arm."


def _oc_caption(df: pd.DataFrame) -> str:
    return (
        "Blue line: the probability that the trial meets its endpoint if the true HR were the value on the "
        "horizontal axis (its operating characteristic, from the assumed design; dots: the values in the "
        "probability table). Shaded: the prior used for the true HR. The probability of success (assurance) is "
        "the blue line averaged over the shaded prior. Dashed line: the largest observed HR that would succeed "
        "at the final analysis."
    )


FIGURES["map_prior"] = FigureDef("MAP prior and the prior used", _map_prior_caption, map_prior, map_prior_data)
FIGURES["oc_curve"] = FigureDef("Probability of success against the true HR", _oc_caption, oc_curve, oc_curve_data)

__all__ += ["map_prior", "map_prior_data", "oc_curve", "oc_curve_data"]
