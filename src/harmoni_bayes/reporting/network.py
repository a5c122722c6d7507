"""Figures of a network meta-analysis (family ``nma``), registered in :data:`~.figures.FIGURES` on import.

* ``network``     the treatment network: nodes sized by patients randomised (where reported), edges by trials
* ``nma_forest``  each treatment's HR against the reference: the network estimate (summary.json) beside the
                  published direct estimates
* ``league``      the league table: every pairwise HR (row vs column), median and 95% CrI from the posterior draws
* ``ranks``       SUCRA of every treatment and its probability of the lowest hazard (summary.json)

Each plot has a ``*_data`` twin returning the plotted numbers.  Numbers printed in the forest and ranks figures
come from ``summary.json``; the league table is computed from ``result.idata`` (``d``: log HR of each
non-reference treatment vs the reference), as the surrogacy scatter computes its line.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..constants import LOWER_KEY, Q_HI, Q_LO, UPPER_KEY
from ..results import Result
from .figures import (
    FIGURES,
    OBSERVED,
    POSTERIOR,
    SUMMARY,
    FigureDef,
    _group,
    _hr_axis,
    _hr_text,
    _label_right,
    _message,
    _new_figure,
    _observed,
    _quantities,
    plain_label,
    trial_rows,
)
from .format import fmt_probability

__all__ = [
    "league_table",
    "league_table_data",
    "network_graph",
    "network_graph_data",
    "nma_forest",
    "nma_forest_data",
    "rank_plot",
    "rank_plot_data",
]


def _is_nma(result: Result) -> bool:
    return result.summary.model == "nma"


def _treatments(result: Result) -> tuple[str | None, list[str]]:
    """(reference, every treatment) from the summary: ``sucra[<t>]`` names all, ``hr[<t>]`` all but the reference."""
    qs = _quantities(result)
    every = [n[6:-1] for n in qs if n.startswith("sucra[")]
    others = {n[3:-1] for n in qs if n.startswith("hr[")}
    refs = [t for t in every if t not in others]
    return (refs[0] if refs else None), every


def _contrast_rows(result: Result) -> pd.DataFrame:
    rows = trial_rows(result)
    if rows.empty or "treatment_experimental" not in rows or "treatment_control" not in rows:
        return pd.DataFrame()
    return rows


# ---------------------------------------------------------------------------------------------
# network graph
# ---------------------------------------------------------------------------------------------


def network_graph_data(result: Result) -> pd.DataFrame:
    """Nodes and edges of the network.

    Rows ``kind = node``: ``treatment``, position ``x``, ``y``, ``patients`` (randomised to that treatment in the
    rows used, where the row reports arm sizes), ``trials`` (trials with an arm of it) and ``unsized`` (its arms
    without a reported size).  Rows ``kind = edge``: ``treatment`` and ``other`` (the pair), ``trials`` and
    ``studies`` (the trials' names).  The reference sits in the centre when it is compared with most treatments;
    the others go round a circle in depth-first order from it, so that a treatment reached only through another
    sits next to it.
    """
    cols = ["kind", "treatment", "other", "x", "y", "patients", "trials", "unsized", "studies"]
    rows = _contrast_rows(result)
    if not _is_nma(result) or rows.empty:
        return pd.DataFrame(columns=cols)
    ref, _ = _treatments(result)
    nodes: dict[str, dict] = {}
    edges: dict[tuple[str, str], list[str]] = {}
    for r in rows.to_dict("records"):
        pair = (str(r["treatment_experimental"]), str(r["treatment_control"]))
        for t, n in zip(pair, (r.get("n_experimental"), r.get("n_control")), strict=True):
            node = nodes.setdefault(t, {"patients": 0.0, "trials": set(), "unsized": 0})
            node["trials"].add(r["trial"])
            if n is not None and np.isfinite(float(n)):
                node["patients"] += float(n)
            else:
                node["unsized"] += 1
        edges.setdefault(tuple(sorted(pair)), []).append(str(r["trial"]))  # type: ignore[arg-type]
    adj: dict[str, set[str]] = {t: set() for t in nodes}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    centre = ref if ref in adj and len(adj[ref]) >= max(2, (len(nodes) - 1) / 2) else None
    start = centre or (ref if ref in adj else sorted(nodes)[0])
    order: list[str] = []

    def visit(t: str) -> None:
        order.append(t)
        for u in sorted(adj[t]):
            if u not in order:
                visit(u)

    visit(start)
    order += [t for t in sorted(nodes) if t not in order]
    ring = [t for t in order if t != centre]
    pos = {centre: (0.0, 0.0)} if centre else {}
    for i, t in enumerate(ring):
        angle = math.pi / 2 - 2 * math.pi * i / max(len(ring), 1)
        pos[t] = (math.cos(angle), math.sin(angle))
    out = [
        {
            "kind": "node",
            "treatment": t,
            "other": "",
            "x": pos[t][0],
            "y": pos[t][1],
            "patients": nodes[t]["patients"],
            "trials": len(nodes[t]["trials"]),
            "unsized": nodes[t]["unsized"],
            "studies": ", ".join(sorted(nodes[t]["trials"])),
        }
        for t in order
    ]
    out += [
        {
            "kind": "edge",
            "treatment": a,
            "other": b,
            "x": math.nan,
            "y": math.nan,
            "patients": math.nan,
            "trials": len(s),
            "unsized": 0,
            "studies": ", ".join(sorted(s)),
        }
        for (a, b), s in sorted(edges.items())
    ]
    return pd.DataFrame(out, columns=cols)


def network_graph(result: Result, ax=None) -> Figure:
    """The network: a circle per treatment (area ∝ patients where reported), a line per compared pair (width ∝
    number of trials, labelled with it); the reference is drawn in blue.
    """
    df = network_graph_data(result)
    if ax is None:
        fig, (ax,) = _new_figure(7.2, 6.4)
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, "no network in this result")
        return fig
    ref, _ = _treatments(result)
    nodes = df[df.kind == "node"].set_index("treatment")
    edges = df[df.kind == "edge"]
    for e in edges.itertuples():
        (x0, y0), (x1, y1) = nodes.loc[e.treatment, ["x", "y"]], nodes.loc[e.other, ["x", "y"]]
        ax.plot(
            [x0, x1], [y0, y1], color=OBSERVED, lw=1.2 + 1.6 * e.trials, alpha=0.7, zorder=1, solid_capstyle="round"
        )
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            str(e.trials),
            fontsize=7,
            ha="center",
            va="center",
            color="black",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
            zorder=3,
        )
    top = max(float(nodes.patients.max()), 1.0)
    for t, n in nodes.iterrows():
        size = 180 + 1400 * math.sqrt(max(n.patients, 0.0) / top)
        color = POSTERIOR if t == ref else SUMMARY if t.startswith("ivonescimab") else "#8c8c8c"
        ax.scatter([n.x], [n.y], s=size, color=color, alpha=0.85, zorder=2, edgecolors="white", linewidths=1.5)
        label = t + (f"\nn={n.patients:,.0f}" if n.patients > 0 else "")
        if n.unsized:
            label += f" ({int(n.unsized)} arm{'s' if n.unsized > 1 else ''} n/r)"
        dx, dy = n.x * 0.16, n.y * 0.16 + (0.2 if n.x == 0 and n.y == 0 else 0)
        ax.text(n.x + dx, n.y + dy, label, fontsize=7.5, ha="center", va="center", zorder=4)
    ax.set_xlim(-1.55, 1.55)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def _network_caption(df: pd.DataFrame) -> str:
    nodes, edges = df[df.kind == "node"], df[df.kind == "edge"]
    unsized = int(nodes.unsized.sum())
    text = (
        f"{len(nodes)} treatments and {len(edges)} compared pairs. Circle area grows with the patients randomised to "
        "each treatment in the rows used; a line joins two treatments compared in a trial, its width and label give "
        "the number of trials. Blue: the reference treatment; red: ivonescimab."
    )
    if unsized:
        text += f" {unsized} arm(s) have no reported size (n/r) and do not add to the circle."
    return text


# ---------------------------------------------------------------------------------------------
# forest: each treatment vs the reference
# ---------------------------------------------------------------------------------------------


def nma_forest_data(result: Result) -> pd.DataFrame:
    """Rows top to bottom: per treatment the published direct estimates against the reference (``observed``,
    one per trial, oriented treatment vs reference) and the network estimate ``hr[<t>]`` (``posterior``), then the
    target comparison (``summary``).  Columns as :func:`~.figures.forest_plot_data`.
    """
    cols = ["row", "kind", "estimate", "lower", "upper", "source"]
    if not _is_nma(result):
        return pd.DataFrame(columns=cols)
    qs = _quantities(result)
    ref, _ = _treatments(result)
    rows = _contrast_rows(result)
    out: list[dict] = []
    for name, q in qs.items():
        if not name.startswith("hr["):
            continue
        t = name[3:-1]
        if len(rows):
            for r in rows.to_dict("records"):
                pair = (r["treatment_experimental"], r["treatment_control"])
                if set(pair) != {t, ref}:
                    continue
                o = _observed(r)
                if pair[0] != t:  # published as reference vs t: invert
                    o = {"estimate": 1 / o["estimate"], "lower": 1 / o["upper"], "upper": 1 / o["lower"]}
                out.append({"row": f"{t}: {r['trial']}", "kind": "observed", **o, "source": r["row_id"]})
        out.append(
            {"row": t, "kind": "posterior", "estimate": q["median"], "lower": q[LOWER_KEY], "upper": q[UPPER_KEY]}
            | {"source": name}
        )
    for name, q in qs.items():
        if name.startswith("hr_") and "_vs_" in name:
            out.append(
                {"row": plain_label(result, name), "kind": "summary", "estimate": q["median"]}
                | {"lower": q[LOWER_KEY], "upper": q[UPPER_KEY]}
                | {"source": name}
            )
    return pd.DataFrame(out, columns=cols).astype({"estimate": float, "lower": float, "upper": float})


def nma_forest(result: Result, ax=None) -> Figure:
    """Published direct estimates (grey squares, 95% CI), network estimates vs the reference (blue dots, 95% CrI)
    and the target comparison (red diamond) on a log HR axis.
    """
    df = nma_forest_data(result)
    if ax is None:
        fig, (ax,) = _new_figure(7.6, 0.36 * max(len(df), 1) + 1.4)
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, "no HR-scale estimates to show")
        return fig
    style = {
        "observed": {"marker": "s", "color": OBSERVED, "mfc": "white", "ms": 5, "label": "published, direct (95% CI)"},
        "posterior": {"marker": "o", "color": POSTERIOR, "mfc": POSTERIOR, "ms": 6, "label": "network (95% CrI)"},
        "summary": {"marker": "D", "color": SUMMARY, "mfc": SUMMARY, "ms": 7, "label": "target comparison (95% CrI)"},
    }
    n = len(df)
    seen: set[str] = set()
    for i, r in enumerate(df.itertuples()):
        y = n - 1 - i
        s = style[r.kind]
        if np.isfinite(r.lower) and np.isfinite(r.upper):
            ax.plot([r.lower, r.upper], [y, y], color=s["color"], lw=1.6)
        ax.plot(
            [r.estimate],
            [y],
            linestyle="none",
            marker=s["marker"],
            color=s["color"],
            mfc=s["mfc"],
            ms=s["ms"],
            label=s["label"] if r.kind not in seen else None,
            zorder=3,
        )
        seen.add(r.kind)
        if np.isfinite(r.lower) and np.isfinite(r.upper):
            _label_right(ax, y, _hr_text(r.estimate, r.lower, r.upper), str(s["color"]))
    vals = df[["estimate", "lower", "upper"]].to_numpy(float).ravel()
    vals = vals[np.isfinite(vals) & (vals > 0)]
    _hr_axis(ax, min(vals.min(), 0.9), max(vals.max(), 1.1))
    ax.set_yticks(list(range(n - 1, -1, -1)), list(df["row"]), fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ref, _ = _treatments(result)
    ax.set_xlabel(f"hazard ratio vs {ref} (log scale); < 1 favours the named treatment")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _forest_caption(df: pd.DataFrame) -> str:
    return (
        "Each treatment against the reference. Blue dots: the network estimate (posterior median, 95% credible "
        "interval), which combines direct and indirect evidence. Grey squares: the published HR of each trial that "
        "compared the two directly (95% confidence interval). Red diamond: the comparison the analysis is for. "
        "Left of the vertical line (HR 1) favours the named treatment."
    )


# ---------------------------------------------------------------------------------------------
# league table
# ---------------------------------------------------------------------------------------------


def league_table_data(result: Result) -> pd.DataFrame:
    """Every ordered pair: ``row`` vs ``column`` HR, median and 95% equal-tailed CrI from the posterior draws of
    ``d`` (log HR vs the reference): ``HR(row vs column) = exp(d_row - d_column)``, ``d_reference = 0``.
    """
    cols = ["row", "column", "estimate", "lower", "upper"]
    post = _group(result, "posterior")
    ref, every = _treatments(result)
    if not _is_nma(result) or post is None or "d" not in post.data_vars or ref is None:
        return pd.DataFrame(columns=cols)
    var = post["d"]
    dim = next(d for d in var.dims if d not in ("chain", "draw"))
    labels = [str(v) for v in var.coords[dim].values]
    d = np.asarray(var.values, dtype=float).reshape(-1, len(labels))
    full = {ref: np.zeros(d.shape[0])} | {t: d[:, j] for j, t in enumerate(labels)}
    order = [t for t in every if t in full]
    out = []
    for a in order:
        for b in order:
            if a == b:
                continue
            lo, med, hi = np.quantile(full[a] - full[b], [Q_LO, 0.5, Q_HI])
            out.append({"row": a, "column": b, "estimate": math.exp(med), "lower": math.exp(lo), "upper": math.exp(hi)})
    return pd.DataFrame(out, columns=cols)


def league_table(result: Result, ax=None) -> Figure:
    """The league table as a grid: the cell in row A, column B is the HR of A vs B with its 95% CrI; green where the
    interval lies below 1 (A better), red where above 1, grey otherwise.
    """
    df = league_table_data(result)
    _, every = _treatments(result)
    order = [t for t in every if t in set(df["row"])] if not df.empty else []
    k = len(order)
    if ax is None:
        fig, (ax,) = _new_figure(max(6.0, 1.05 * k + 1.6), max(3.0, 0.62 * k + 1.2))
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, "no posterior draws of the network's effects in this result")
        return fig
    cell = {(r.row, r.column): r for r in df.itertuples()}
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            y = k - 1 - i
            if a == b:
                ax.add_patch(_rect(j, y, "#dfe8f5"))
                ax.text(j, y, a, ha="center", va="center", fontsize=6.5, fontweight="bold", wrap=True)
                continue
            r = cell[(a, b)]
            color = "#d9f0d3" if r.upper < 1 else "#f4d4d4" if r.lower > 1 else "#f2f2f2"
            ax.add_patch(_rect(j, y, color))
            ax.text(j, y + 0.13, f"{r.estimate:.2f}", ha="center", va="center", fontsize=7)
            ax.text(j, y - 0.17, f"{r.lower:.2f}-{r.upper:.2f}", ha="center", va="center", fontsize=5.5, color="#444")
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_ylim(-0.5, k - 0.5)
    ax.set_aspect("auto")
    ax.axis("off")
    return fig


def _rect(x: float, y: float, color: str):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.48, y - 0.46), 0.96, 0.92, facecolor=color, edgecolor="white")


def _league_caption(df: pd.DataFrame) -> str:
    below = int((df["upper"] < 1).sum())
    return (
        "League table: the cell in row A and column B is the HR of A vs B (posterior median; 95% credible interval "
        f"below), from the posterior draws. Green: the interval lies below 1 ({below} ordered pairs); red: above 1; "
        "grey: it includes 1. Most pairs were never compared in a trial: their HRs are indirect."
    )


# ---------------------------------------------------------------------------------------------
# ranks
# ---------------------------------------------------------------------------------------------


def rank_plot_data(result: Result) -> pd.DataFrame:
    """Per treatment, best first: ``sucra`` (mean of ``sucra[<t>]``), ``p_best`` (``P(rank[<t>]=1)``) and the
    median and 95% interval of its rank, all from summary.json.
    """
    cols = ["treatment", "sucra", "p_best", "rank_median", "rank_lower", "rank_upper"]
    if not _is_nma(result):
        return pd.DataFrame(columns=cols)
    qs = _quantities(result)
    ps = {p["name"]: p["value"] for p in result.summary.probabilities}
    _, every = _treatments(result)
    out = [
        {
            "treatment": t,
            "sucra": qs[f"sucra[{t}]"]["mean"],
            "p_best": ps.get(f"P(rank[{t}]=1)", math.nan),
            "rank_median": qs.get(f"rank[{t}]", {}).get("median", math.nan),
            "rank_lower": qs.get(f"rank[{t}]", {}).get(LOWER_KEY, math.nan),
            "rank_upper": qs.get(f"rank[{t}]", {}).get(UPPER_KEY, math.nan),
        }
        for t in every
    ]
    df = pd.DataFrame(out, columns=cols)
    return df.sort_values("sucra", ascending=False, kind="stable").reset_index(drop=True)


def rank_plot(result: Result, ax=None) -> Figure:
    """SUCRA per treatment (bars, best on top), labelled with the probability of the lowest hazard and the rank's
    median and 95% interval.
    """
    df = rank_plot_data(result)
    if ax is None:
        fig, (ax,) = _new_figure(7.0, 0.34 * max(len(df), 1) + 1.2)
    else:
        fig = ax.figure
    if df.empty:
        _message(ax, "no ranks in this result")
        return fig
    y = np.arange(len(df))[::-1]
    colors = [SUMMARY if str(t).startswith("ivonescimab") else POSTERIOR for t in df.treatment]
    ax.barh(y, df.sucra, color=colors, alpha=0.8, height=0.6)
    for yi, r in zip(y, df.itertuples(), strict=True):
        text = f"P(best) {fmt_probability(float(r.p_best))}" if np.isfinite(r.p_best) else ""
        if np.isfinite(r.rank_median):
            text += f"; rank {r.rank_median:.0f} ({r.rank_lower:.0f}-{r.rank_upper:.0f})"
        ax.text(min(r.sucra + 0.02, 1.02), yi, text, va="center", fontsize=7.5)
    ax.set_yticks(y, list(df.treatment), fontsize=8)
    ax.set_xlim(0, 1.45)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("SUCRA (1 = always ranked first, 0 = always last)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _rank_caption(df: pd.DataFrame) -> str:
    return (
        "SUCRA: the share of the other treatments each treatment beats, averaged over the posterior (1 = always the "
        "lowest hazard). Labels: the probability of being best and the rank (median, 95% interval). Ranks hide how "
        "small the differences may be and how uncertain: read them with the league table."
    )


FIGURES["network"] = FigureDef("The treatment network", _network_caption, network_graph, network_graph_data)
FIGURES["nma_forest"] = FigureDef("Each treatment against the reference", _forest_caption, nma_forest, nma_forest_data)
FIGURES["league"] = FigureDef("League table: every pairwise HR", _league_caption, league_table, league_table_data)
FIGURES["ranks"] = FigureDef("Ranks and SUCRA", _rank_caption, rank_plot, rank_plot_data)
