r"""Contrast-based Bayesian network meta-analysis (NMA) of log hazard ratios: family ``nma``.

Treatments are the nodes of a network; every trial contributes its log HR(s) and standard error(s), each
comparing one arm with the trial's control arm.  With ``d_t`` the log HR of treatment ``t`` vs the reference
``r`` (``d_r = 0``) and, for trial ``i`` and its contrast ``j`` (arm ``a_ij`` vs control ``b_i``):

    y_ij | delta_ij ~ N(delta_ij, s_ij^2)                    jointly normal within a trial: two contrasts of one
                                                             multi-arm trial share the control arm's variance v_b
    delta_ij = d_{a_ij} - d_{b_i} + tau (L_C z)_ij           consistency; random effects non-centred, z ~ N(0, 1),
                                                             Var = tau^2, Cov within a trial = tau^2 / 2
    d_t ~ N(0, 2^2)                                          default: 95% prior range of each HR vs the reference
                                                             0.02 to 50 (the methods' unit-information scale)
    tau ~ Half-normal(0.5)                                   default (methods section b): prior median 0.34;
                                                             ``effects = "fixed"`` sets tau = 0

Reported (``summary.json``): ``hr_<a>_vs_<b>`` = exp(d_a - d_b) for the spec's target pair (default ivonescimab vs
pembrolizumab + chemotherapy) with ``P(...<1)`` and ``P(...<0.9)``; ``hr[<t>]`` = exp(d_t) for every treatment vs
the reference with ``P(hr[<t>]<1)``; ``tau``; ``sucra[<t>]`` (per-draw (K - rank) / (K - 1); its mean is the
SUCRA) and ``rank[<t>]`` (1 = lowest hazard) for every treatment, with ``P(rank[<t>]=1)``; and, where the
network has a closed loop that node splitting can separate, ``inconsistency[<a> vs <b>]`` = direct - indirect
log HR (:mod:`harmoni_bayes.nma_core`).

Engines.  MCMC (PyMC) samples the same posterior in one of two parameterisations (``[network] parameterisation``):
``conditional`` (default) integrates the trial-level random effects out and non-centres ``d`` on an approximation
of its conditional posterior given tau, ``d = m(tau) + s(tau) R eta`` (exact GLS moments at tau = 0 and at the
prior median; the Jacobian is in the density, so the posterior is exact), so that ``eta`` is close to independent
standard normals whatever tau (no funnel, no ridge: zero divergences, high ESS); ``non_centred`` is the textbook
form above, whose ``d``/``z`` ridge in one-trial comparisons needs ``target_accept = 0.99``
(:meth:`NMAModel.build_model`).  ``method = "exact"`` uses the closed form: given tau everything is normal (GLS),
and tau is integrated on a grid; with ``effects = "fixed"`` and a flat prior the posterior is exactly the GLS
estimate.  Ranks and SUCRA of the exact engine are Monte Carlo over iid posterior draws (:data:`RANK_DRAWS`).

Evidence (:func:`select_network`): the treatment-network table (``nsclc_pdl1_network.csv``) and the ivonescimab
trials (HARMONi-2 only: its arms are mapped to the nodes ``ivonescimab`` and ``pembrolizumab``; HARMONi-A and
HARMONi randomised EGFR-mutant patients after EGFR-TKI and do not belong in a first-line network).  One network
per endpoint and PD-L1 stratum (``<1%``, ``1-49%``, ``>=50%``, or ``all``: each trial's whole randomised
population).  Each trial enters with rows of one stratum only (never overlapping strata such as TPS >= 1% with
TPS >= 50%); one row per trial, contrast and stratum, chosen by :func:`~harmoni_bayes.selection.select_evidence`
(as-of date, most mature analysis, source precedence); rows that reuse patients of a trial already in the
network (the China extension cohorts, the pooled KEYNOTE-189/407 analysis) are left out; every row left out is
listed with its reason and source.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import SpecBase, Strict
from ..errors import ModelError, Problem, SpecError
from ..nma_core import (
    NMAInputs,
    NMAPosterior,
    NodeSplit,
    components,
    describe_components,
    nma_posterior,
    node_splits,
    rank_draws,
    splittable_pairs,
)
from ..priors import HalfNormalPrior, NormalPrior, TauPrior
from ..selection import resolve_ids
from . import register
from .base import (
    CI,
    Draws,
    EvidenceRecord,
    EvidenceTables,
    ExactFit,
    HeadlineContext,
    Line,
    ModelFamily,
    P,
    Presentation,
    Q,
    Stats,
    line,
    posterior_array,
)
from .nnhm import TAU_SENSITIVITY

__all__ = [
    "IVONESCIMAB_NODES",
    "RANK_DRAWS",
    "STRATA",
    "NMAInputs",
    "NMAModel",
    "NMAPriors",
    "NMASpec",
    "NetworkEvidence",
    "NetworkOptions",
    "pdl1_stratum",
    "select_network",
    "target_name",
]

Stratum = Literal["<1%", "1-49%", ">=50%", "all"]
STRATA: tuple[str, ...] = ("<1%", "1-49%", ">=50%", "all")

IVONESCIMAB_NODES: dict[str, tuple[str, str]] = {
    "HARMONi-2": ("ivonescimab", "pembrolizumab"),
    "HARMONi-6": ("ivonescimab+chemo", "tislelizumab+chemo"),
}
"""Network nodes (experimental, control) of the ivonescimab trials that belong in a first-line network."""

NOT_IN_NETWORK: dict[str, str] = {
    "HARMONi-A": "EGFR-mutant NSCLC after EGFR-TKI (ivonescimab + chemotherapy vs chemotherapy)",
    "HARMONi": "EGFR-mutant NSCLC after EGFR-TKI (ivonescimab + chemotherapy vs chemotherapy)",
}
"""Ivonescimab trials outside the first-line PD-L1 network, and why."""

RANK_DRAWS = 20_000
"""iid posterior draws behind the exact engine's ranks and SUCRA (Monte Carlo SE of a probability <= 0.0036)."""

DEFAULT_TARGET = ("ivonescimab", "pembrolizumab+chemo")
UNDATED = "1900-01-01"
"""The date an undated row without a data cutoff is ranked at by selection (before every dated row)."""


# ---------------------------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------------------------


class NetworkEvidence(Strict):
    """Which rows enter the network: endpoint, PD-L1 stratum, tables, and the usual row overrides.

    ``file`` is the trial-evidence table holding the ivonescimab rows (default: the shipped one; a relative path
    is relative to the spec's folder); ``network_file`` the treatment-network table (default: the shipped
    ``nsclc_pdl1_network.csv``; a relative path is relative to the working folder, since
    :func:`~harmoni_bayes.specs.load_spec` resolves only ``file``).
    ``undated`` says what a row without a disclosure date means for the as-of date: ``keep`` (treated as
    disclosed on or before it; its data cutoff must not be later) or ``drop``.
    """

    file: str | None = None
    network_file: str | None = None
    endpoint: Literal["PFS", "OS"] = "OS"
    stratum: Stratum = "all"
    ivonescimab_trials: list[str] = Field(default_factory=lambda: ["HARMONi-2"])
    exclude_trials: list[str] = Field(default_factory=list)
    prefer: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    undated: Literal["keep", "drop"] = "keep"

    @model_validator(mode="after")
    def _known_ivonescimab_trials(self) -> NetworkEvidence:
        bad = [t for t in self.ivonescimab_trials if t in NOT_IN_NETWORK]
        if bad:
            raise ValueError(
                "; ".join(f"{t} does not belong in a first-line network: {NOT_IN_NETWORK[t]}" for t in bad)
            )
        unknown = [t for t in self.ivonescimab_trials if t not in IVONESCIMAB_NODES]
        if unknown:
            raise ValueError(f"no network nodes known for {', '.join(unknown)}; known: {', '.join(IVONESCIMAB_NODES)}")
        return self


class NetworkOptions(Strict):
    """The network's reference treatment, the comparison the analysis is for, fixed or random effects."""

    reference: str = "chemo"
    target: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGET), min_length=2, max_length=2)
    effects: Literal["random", "fixed"] = "random"
    parameterisation: Literal["conditional", "non_centred"] = "conditional"
    """How MCMC samples the model (see :meth:`NMAModel.build_model`); the posterior is the same."""
    treatments: list[str] | None = None
    """Keep only these nodes (None: every node the selected rows name)."""

    @model_validator(mode="after")
    def _distinct(self) -> NetworkOptions:
        if self.target[0] == self.target[1]:
            raise ValueError(f"target compares {self.target[0]!r} with itself")
        return self


class NMAPriors(BaseModel):
    """Priors of the NMA (log-HR scale): each basic parameter ``d_t`` and the common between-trial SD ``tau``."""

    model_config = ConfigDict(extra="forbid")
    d: NormalPrior = Field(default_factory=lambda: NormalPrior(mu=0.0, sigma=2.0))
    tau: TauPrior = Field(default_factory=lambda: HalfNormalPrior(sigma=0.5))


class NMASpec(SpecBase):
    """Spec of a network meta-analysis: ``[evidence]`` (endpoint, stratum, rows), ``[network]``, ``[priors]``."""

    model: Literal["nma"]
    evidence: NetworkEvidence = Field(default_factory=NetworkEvidence)
    network: NetworkOptions = Field(default_factory=NetworkOptions)
    priors: NMAPriors = Field(default_factory=NMAPriors)


# ---------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------


def slug(treatment: str) -> str:
    """A treatment as part of a quantity name: ``pembrolizumab+chemo`` -> ``pembrolizumab_chemo``."""
    return re.sub(r"[^0-9a-z]+", "_", treatment.lower()).strip("_")


def target_name(a: str, b: str) -> str:
    """The summary name of the HR of ``a`` vs ``b``: ``hr_ivonescimab_vs_pembrolizumab_chemo``."""
    return f"hr_{slug(a)}_vs_{slug(b)}"


def words(treatment: str) -> str:
    """A node in plain words: ``pembrolizumab+chemo`` -> ``pembrolizumab + chemotherapy``."""
    w = " + ".join(p.strip() for p in treatment.split("+"))
    return re.sub(r"\bchemo\b", "chemotherapy", w)


KNOWN_NODES = (
    "ivonescimab",
    "ivonescimab+chemo",
    "pembrolizumab",
    "pembrolizumab+chemo",
    "chemo",
    "atezolizumab",
    "cemiplimab",
    "cemiplimab+chemo",
    "nivolumab+ipilimumab",
    "nivolumab+ipilimumab+chemo",
    "sugemalimab+chemo",
    "toripalimab+chemo",
    "tislelizumab+chemo",
    "sintilimab+chemo",
)


def _names() -> dict[str, str]:
    out = {
        "tau": "heterogeneity: SD of true log HRs between trials of the same comparison (tau, one for all comparisons)"
    }
    for a in KNOWN_NODES:
        w = words(a)
        out[f"hr[{a}]"] = f"HR of {w} vs the reference treatment (network estimate)"
        out[f"sucra[{a}]"] = f"SUCRA of {w} (mean: share of the other treatments it beats; 1 = always best)"
        out[f"rank[{a}]"] = f"rank of {w} (1 = lowest hazard)"
        out[f"P(rank[{a}]=1)"] = f"{w} has the lowest hazard of all treatments (ranked first)"
        for b in KNOWN_NODES:
            if a != b:
                out[target_name(a, b)] = f"HR of {w} vs {words(b)} (network estimate)"
                out[f"inconsistency[{a} vs {b}]"] = (
                    f"inconsistency, {w} vs {words(b)}: direct minus indirect log HR (0 = consistent)"
                )
    return out


_TARGET = re.compile(r"^hr_(?P<a>.+)_vs_(?P<b>.+)$")


def _target_words(name: str, names: dict[str, str]) -> tuple[str, str]:
    by_slug = {target_name(a, b): (words(a), words(b)) for a in KNOWN_NODES for b in KNOWN_NODES if a != b}
    if name in by_slug:
        return by_slug[name]
    m = _TARGET.match(name)
    return (m["a"].replace("_", " "), m["b"].replace("_", " ")) if m else ("experimental", "control")


def _headline(c: HeadlineContext) -> list[Line]:
    target = next(n for n in c.quantities if _TARGET.match(n))
    a, b = _target_words(target, NAMES)
    out = [
        line(
            "answer",
            f"Probability that {a} improves {c.endpoint} over {b} (network HR < 1): ",
            P(f"P({target}<1)"),
            c.when_suffix,
        )
    ]
    parts: list[Any] = [f"Network estimate of the HR, {a} vs {b}: ", CI(target)]
    for p in c.probabilities:
        if p.startswith(f"P({target}<") and p != f"P({target}<1)":
            parts += [f"; probability of HR < {p[len(target) + 3 : -1]}: ", P(p)]
    out.append(line("estimate", *parts, "."))
    if "tau" in c.quantities:
        out.append(line("detail", "Between-trial heterogeneity (tau, one SD for every comparison) ", CI("tau"), "."))
    sucra = {n[6:-1]: q["mean"] for n, q in c.quantities.items() if n.startswith("sucra[")}
    if sucra:
        best = max(sucra, key=lambda t: sucra[t])
        refs = sorted(set(sucra) - set(c.levels("hr")))
        out.append(
            line(
                "detail",
                f"Highest SUCRA: {words(best)} (SUCRA ",
                Q(f"sucra[{best}]", "mean"),
                "; probability of the lowest hazard ",
                P(f"P(rank[{best}]=1)"),
                f"). HRs of each treatment are against {words(refs[0]) if refs else 'the reference'}.",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# PD-L1 strata
# ---------------------------------------------------------------------------------------------

_GE = re.compile(r"(?:>=|≥|>)\s*(\d+)\s*%")


def pdl1_stratum(text: str) -> str | None:
    """The PD-L1 stratum a level or population text names: ``<1%``, ``1-49%``, ``>=50%``, ``>=<n>%`` or None.

    Spaces around the signs are ignored (``TPS >= 50%``), ``>50%`` is read as ``>=50%`` (KEYNOTE-189 prints it
    so), and SP142's "high" group (TC3 or IC3) as ``>=50%`` (an approximation across assays, stated in the report).
    """
    if re.search(r"(?<![\d.])1\s*[-–]\s*49\s*%", text):
        return "1-49%"
    if re.search(r"<\s*1\s*%", text):
        return "<1%"
    if "high" in text.lower():
        return ">=50%"
    m = _GE.search(text)
    return f">={m.group(1)}%" if m else None


def _whole_trial_stratum(population: str) -> str | None:
    """``... (whole trial is TPS>=1%)`` -> ``>=1%``."""
    m = re.search(r"whole trial is ([^)]*)", population)
    return pdl1_stratum(m.group(1)) if m else None


def _row_stratum(r: dict[str, Any]) -> tuple[str | None, bool]:
    """(stratum, whole-trial row?) of an evidence row; stratum None for a non-PD-L1 subgroup."""
    factor, level, pop = str(r["subgroup_factor"]), str(r["subgroup_level"]), str(r.get("population") or "")
    if factor == "overall":
        return (pdl1_stratum(level) or pdl1_stratum(pop) or "all"), True
    if factor != "pdl1":
        return None, False
    s = pdl1_stratum(level)
    whole = "whole trial" in level or (s is not None and s == _whole_trial_stratum(pop))
    return s, whole


def _parents(trial: str, names: Sequence[str]) -> list[str]:
    """Other trials whose patients a row of ``trial`` reuses: names it contains as whole words
    (``KEYNOTE-042 China`` -> KEYNOTE-042; ``KEYNOTE-189 + KEYNOTE-407 pooled`` -> both).
    """
    return [
        t
        for t in names
        if t != trial and re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", trial) and not trial.startswith(t + "-")
    ]


# ---------------------------------------------------------------------------------------------
# evidence selection
# ---------------------------------------------------------------------------------------------

_SHOWN = ["row_id", "trial", "endpoint", "subgroup_factor", "subgroup_level", "hr", "ci_lower", "ci_upper"]
_SHOWN += ["disclosed", "source", "source_kind"]


def select_network(spec: NMASpec, tables: EvidenceTables) -> tuple[pd.DataFrame, EvidenceRecord]:
    """The rows of one network (endpoint, PD-L1 stratum, as-of date), and the record of every row left out.

    Returns the used rows (one per trial and contrast, with ``node_e`` and ``node_c``, the network nodes of
    the experimental and control arm) and the :class:`EvidenceRecord` (used and excluded rows with reasons
    and sources; ``table`` is ``network`` or ``trials``).
    """
    from ..selection import as_of_string, select_evidence

    ev = spec.evidence
    as_of_s = as_of_string(spec.as_of)
    net = tables.network(ev.network_file)
    ivo = tables.trials
    frames = []
    n = net[net.endpoint == ev.endpoint].copy()
    n["node_e"], n["node_c"], n["table"] = n.treatment_experimental, n.treatment_control, "network"
    frames.append(n)
    t = ivo[ivo.endpoint == ev.endpoint].copy()
    t["node_e"] = [IVONESCIMAB_NODES.get(x, ("", ""))[0] for x in t.trial]
    t["node_c"] = [IVONESCIMAB_NODES.get(x, ("", ""))[1] for x in t.trial]
    t["table"] = "trials"
    frames.append(t)
    common = [c for c in frames[0].columns if c in frames[1].columns]
    rows = pd.concat([f[common] for f in frames], ignore_index=True)
    names = list(dict.fromkeys(rows.trial))
    keep_nodes = set(spec.network.treatments) if spec.network.treatments else None

    reasons: dict[str, str] = {}
    strata: dict[str, str] = {}
    whole: dict[str, bool] = {}
    for r in rows.to_dict("records"):
        rid, trial = r["row_id"], r["trial"]
        s, w = _row_stratum(r)
        strata[rid], whole[rid] = s or "", w
        if r["table"] == "trials" and trial not in ev.ivonescimab_trials:
            why = NOT_IN_NETWORK.get(trial)
            reasons[rid] = (
                f"{trial} randomised {why}: a different population, not part of this first-line network"
                if why
                else f"{trial} is not among the ivonescimab trials of this network ({', '.join(ev.ivonescimab_trials)})"
            )
        elif trial in ev.exclude_trials:
            reasons[rid] = "trial excluded by the spec (exclude_trials)"
        elif s is None:
            reasons[rid] = f"subgroup factor {r['subgroup_factor']!r} is not a PD-L1 stratum"
        elif ev.stratum == "all" and not w:
            reasons[rid] = "a PD-L1 subgroup of its trial; the all-comers network takes each trial's whole population"
        elif ev.stratum != "all" and s != ev.stratum:
            what = "the trial's whole population" if w else "PD-L1 stratum"
            reasons[rid] = f"{what} {s if s != 'all' else '(any PD-L1)'}, not this network's stratum {ev.stratum}"
        elif keep_nodes is not None and not {r["node_e"], r["node_c"]} <= keep_nodes:
            reasons[rid] = f"compares {r['node_e']} with {r['node_c']}; not among the spec's treatments"
        elif not r["disclosed"]:
            if ev.undated == "drop":
                reasons[rid] = "no disclosure date; undated rows are left out (undated = 'drop')"
            elif as_of_s and r["data_cutoff"] and r["data_cutoff"] > as_of_s:
                reasons[rid] = f"no disclosure date, and its data cutoff {r['data_cutoff']} is after {as_of_s}"
    candidates = rows[~rows.row_id.isin(reasons)].copy()
    undated = list(candidates.row_id[candidates.disclosed == ""])
    original = rows.set_index("row_id")[["subgroup_factor", "subgroup_level", "disclosed"]]
    candidates["subgroup_factor"] = "network"
    candidates["subgroup_level"] = [
        f"{strata[r]}: {e} vs {c}"
        for r, e, c in zip(candidates.row_id, candidates.node_e, candidates.node_c, strict=True)
    ]
    # an undated row ranks as if disclosed at its data cutoff, else before every dated row: a dated report of
    # the same analysis wins, and a dated later analysis supersedes it (selection ranks analyses by dates)
    undated_fill = candidates.data_cutoff.where(candidates.data_cutoff != "", UNDATED)
    candidates["disclosed"] = candidates.disclosed.where(candidates.disclosed != "", undated_fill)
    prefer = resolve_ids(rows, ev.prefer, "prefer")
    exclude = resolve_ids(rows, ev.exclude, "exclude")
    for rid in exclude - set(candidates.row_id):
        reasons[rid] += " (also listed in exclude)"
    for rid in prefer - set(candidates.row_id):
        reasons[rid] += " (listed in prefer, but it cannot be used)"
    sel = select_evidence(
        candidates,
        as_of=as_of_s,
        prefer=sorted(prefer & set(candidates.row_id)),
        exclude=sorted(exclude & set(candidates.row_id)),
    )
    used = sel.used.copy()
    for rid, why in zip(sel.excluded.row_id, sel.excluded.reason, strict=True):
        reasons[rid] = why
    # rows that reuse patients of a trial already in this network never enter with it
    in_network = set(used.trial)
    for r in used.itertuples():
        parents = [p for p in _parents(r.trial, names) if p in in_network]
        if parents:
            reasons[r.row_id] = (
                f"reuses patients of {' and '.join(parents)}, which enter{'s' if len(parents) == 1 else ''} this "
                "network themselves (China extension cohort or pooled analysis); one row per patient"
            )
    used = used[~used.row_id.isin(reasons)].copy()
    in_network = set(used.trial)
    for r in rows.itertuples():  # rows left out for another reason say so too, when it is the case
        parents = [p for p in _parents(r.trial, names) if p in in_network]
        if parents and r.row_id in reasons and "reuses patients" not in reasons[r.row_id]:
            reasons[r.row_id] += f"; it also reuses patients of {' and '.join(parents)}, which enter this network"
    for col in ("subgroup_factor", "subgroup_level", "disclosed"):
        used[col] = used.row_id.map(original[col])
    used["stratum"] = used.row_id.map(strata)
    used["subgroup"] = [
        f"{lev} ({e} vs {c})"
        for lev, e, c in zip(
            np.where(used.subgroup_factor == "overall", "ITT: " + used.subgroup_level, used.subgroup_level),
            used.node_e,
            used.node_c,
            strict=True,
        )
    ]
    used["treatment_experimental"], used["treatment_control"] = used.node_e, used.node_c
    used = used.reset_index(drop=True)

    left = rows[rows.row_id.isin(reasons)]
    excluded = left[[*_SHOWN, "table", "node_e", "node_c"]].rename(
        columns={"node_e": "treatment_experimental", "node_c": "treatment_control"}
    )
    excluded["subgroup"] = excluded.subgroup_factor + "=" + excluded.subgroup_level
    excluded["reason"] = excluded.row_id.map(reasons)
    excluded = excluded.reset_index(drop=True)
    notes = {
        "network": {
            "endpoint": ev.endpoint,
            "stratum": ev.stratum,
            "undated_rows_used": [r for r in undated if r in set(used.row_id)],
            "undated_policy": ev.undated,
            "nodes_in_data": sorted(
                set(net.treatment_experimental) | set(net.treatment_control) | set(t.node_e) - {""}
            ),
        }
    }
    return used, EvidenceRecord(used=used, excluded=excluded, as_of=spec.as_of, notes=notes)


# ---------------------------------------------------------------------------------------------
# the family
# ---------------------------------------------------------------------------------------------

NAMES = _names()


@register
class NMAModel(ModelFamily):
    """Contrast-based Bayesian network meta-analysis of log HRs (fixed or random effects)."""

    name = "nma"
    spec_class = NMASpec
    dim = "treatment"
    capabilities = frozenset({"exact"})
    sensitivity = TAU_SENSITIVITY  # the heterogeneity priors (a fixed-effects network has no tau: rows agree)
    default_thresholds = (1.0, 0.9)
    presentation = Presentation(
        headline=_headline,
        names=NAMES,
        short_labels={},
        figures=("network", "nma_forest", "league", "ranks", "densities"),
        densities=("tau", target_name(*DEFAULT_TARGET)),
        forest="none",
        headline_quantity=target_name(*DEFAULT_TARGET),
    )

    def __init__(
        self,
        inputs: NMAInputs,
        priors: NMAPriors | None = None,
        effects: Literal["random", "fixed"] = "random",
        target: Sequence[str] | None = None,
        thresholds: tuple[float, ...] | None = None,
        used: pd.DataFrame | None = None,
        parameterisation: Literal["conditional", "non_centred"] = "conditional",
    ):
        self.inputs = inputs
        self.priors = priors or NMAPriors()
        self.effects = effects
        self.parameterisation = parameterisation
        self.labels = list(inputs.others)
        self.thresholds = tuple(thresholds or self.default_thresholds)
        a, b = tuple(target) if target else (inputs.others[0], inputs.reference)
        for t in (a, b):
            if t not in inputs.treatments:
                raise ModelError(f"target treatment {t!r} is not in the network ({', '.join(inputs.treatments)})")
        self.target = (a, b)
        self.used = used
        self.splits: list[NodeSplit] = splittable_pairs(inputs)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_contrasts(
        cls,
        study: Sequence[str],
        treat_a: Sequence[str],
        treat_b: Sequence[str],
        estimate: Sequence[float],
        se: Sequence[float],
        *,
        reference: str | None = None,
        target: Sequence[str] | None = None,
        effects: Literal["random", "fixed"] = "random",
        priors: NMAPriors | None = None,
        parameterisation: Literal["conditional", "non_centred"] = "conditional",
        **kwargs: Any,
    ) -> NMAModel:
        """A family from any table of contrasts (log HRs, log ORs...): see :meth:`NMAInputs.from_contrasts`.

        ``kwargs`` (``n_a``, ``n_b``, ``shared_variance``) go to :meth:`NMAInputs.from_contrasts`.
        """
        inputs = NMAInputs.from_contrasts(study, treat_a, treat_b, estimate, se, reference=reference, **kwargs)
        return cls(inputs, priors, effects, target, parameterisation=parameterisation)

    @classmethod
    def from_spec(cls, spec: NMASpec, tables: EvidenceTables) -> tuple[NMAModel, EvidenceRecord]:
        """The network of the spec's endpoint and stratum as of its date (see :func:`select_network`)."""
        used, record = select_network(spec, tables)
        opts, ev = spec.network, spec.evidence
        where = f"the {ev.endpoint} network for PD-L1 {ev.stratum}" + (f" as of {spec.as_of}" if spec.as_of else "")
        known = set(record.notes["network"]["nodes_in_data"])
        known |= {n for t in ev.ivonescimab_trials for n in IVONESCIMAB_NODES[t]}
        named = [opts.reference, *opts.target, *(opts.treatments or [])]
        unknown = [t for t in dict.fromkeys(named) if t not in known]
        if unknown:
            raise SpecError(
                "treatment(s) named in the spec but absent from the data",
                [Problem(f"{t!r}: no row names it; known treatments: {', '.join(sorted(known))}") for t in unknown],
            )
        if used.empty:
            raise ModelError(f"no usable rows for {where}", _reasons(record.excluded))
        nodes = set(used.node_e) | set(used.node_c)
        roles = {opts.reference: "reference", opts.target[0]: "target", opts.target[1]: "target"}
        missing = [t for t in roles if t not in nodes]
        if missing:
            raise ModelError(
                f"not in {where}: "
                + ", ".join(f"{t} ({roles[t]})" for t in missing)
                + f"; no usable row compares {'it' if len(missing) == 1 else 'them'}, so "
                + f"{opts.target[0]} vs {opts.target[1]} cannot be estimated here. The network has "
                + ", ".join(sorted(nodes))
                + " (components "
                + describe_components(components(sorted(nodes), list(zip(used.node_e, used.node_c, strict=True))))
                + ")",
                [p for t in missing for p in _reasons(record.excluded, t)],
            )
        edges = list(zip(used.node_e, used.node_c, strict=True))
        comps = components(sorted(nodes), edges)
        if len(comps) > 1:
            a, b = opts.target
            apart = not any(a in c and b in c for c in comps)
            raise ModelError(
                f"{where} is disconnected: {describe_components(comps)}"
                + (f"; {a} and {b} are in different components, so no estimate links them" if apart else "")
            )
        inputs = NMAInputs.from_contrasts(
            used.trial,
            used.node_e,
            used.node_c,
            used.log_hr,
            used.se,
            reference=opts.reference,
            n_a=used.n_experimental,
            n_b=used.n_control,
        )
        family = cls(inputs, spec.priors, opts.effects, opts.target, used=used, parameterisation=opts.parameterisation)
        family.set_thresholds(spec)
        record.notes["network"] |= {
            "reference": opts.reference,
            "target": list(opts.target),
            "effects": opts.effects,
            "treatments": list(inputs.treatments),
            "multi_arm": {s: {"shared_variance": v, "how": how} for s, (v, how) in inputs.shared.items()},
        }
        return family, record

    # -- the model --------------------------------------------------------------------------------
    @property
    def random(self) -> bool:
        """True for random effects."""
        return self.effects == "random"

    @property
    def target_name(self) -> str:
        """Summary name of the target HR."""
        return target_name(*self.target)

    def contrast_labels(self) -> list[str]:
        """One label per contrast: ``<study>: <a> vs <b>``."""
        i = self.inputs
        return [f"{s}: {a} vs {b}" for s, a, b in zip(i.study, i.treat_a, i.treat_b, strict=True)]

    def build_model(self):
        """A fresh PyMC model: ``d`` (log HR of each treatment vs the reference), ``tau`` (random effects), the HRs.

        ``parameterisation = "conditional"`` (default): the trial-level random effects are integrated out
        (:func:`marginal_loglik`) and ``d`` is non-centred on an approximation of its conditional posterior given
        ``tau`` (:class:`ConditionalShift`), so that ``eta`` is close to independent standard normals whatever
        ``tau``: no funnel and no ridge, whatever the network.  ``"non_centred"``: the textbook form,
        ``delta = X d + tau L_C z`` with ``z ~ N(0, I)`` per contrast and a whitened normal likelihood; with one trial
        per comparison (most of the shipped networks) ``d`` and ``z`` trade off along a ridge whose slope changes
        with ``tau``, so it needs a high ``target_accept``.
        """
        import pymc as pm

        i = self.inputs
        c = i.contrast_vector(*self.target)
        with pm.Model(coords={self.dim: self.labels, "contrast": self.contrast_labels()}) as model:
            if self.parameterisation == "conditional":
                y = pm.Data("y", i.y)
                tau = self.priors.tau.to_pymc("tau") if self.random else pm.math.constant(0.0)
                eta = pm.Flat("eta", dims=self.dim)
                shift = ConditionalShift.fit(i, self.priors.d, self.priors.tau if self.random else None)
                d_expr, log_jac = shift.expression(eta, tau)
                d = pm.Deterministic("d", d_expr, dims=self.dim)
                prior = pm.logp(pm.Normal.dist(self.priors.d.mu, self.priors.d.sigma), d).sum()
                pm.Potential("y_obs", prior + log_jac + marginal_loglik(i, y - pm.math.dot(i.design, d), tau))
            else:
                yw, xw, bw = i.whitened()
                y = pm.Data("y_white", yw)
                d = self.priors.d.to_pymc("d", dims=self.dim)
                mean = pm.math.dot(xw, d)
                if self.random:
                    tau = self.priors.tau.to_pymc("tau")
                    z = pm.Normal("z", 0.0, 1.0, dims="contrast")
                    mean = mean + tau * pm.math.dot(bw, z)
                pm.Normal("y_obs", mu=mean, sigma=1.0, observed=y)
            pm.Deterministic("hr", pm.math.exp(d), dims=self.dim)
            pm.Deterministic(self.target_name, pm.math.exp(pm.math.dot(c, d)))
        return model

    def set_data(self, model: Any, y: np.ndarray) -> None:
        """Swap new contrasts ``y`` (same network, same SEs) into a model from :meth:`build_model` (simulations)."""
        import pymc as pm

        with model:
            if self.parameterisation == "conditional":
                pm.set_data({"y": np.asarray(y, dtype=float)})
            else:
                pm.set_data({"y_white": self.whiten(y)})

    def whiten(self, y: np.ndarray) -> np.ndarray:
        """``L_S^{-1} y``: contrasts on the scale of the model's observed data (for simulations)."""
        return np.linalg.solve(np.linalg.cholesky(self.inputs.cov), np.asarray(y, dtype=float))

    # -- quantities from draws of d (and tau) -----------------------------------------------------
    def _from_draws(
        self, d: np.ndarray, tau: np.ndarray | None, rng: np.random.Generator, splits: bool = True
    ) -> list[Draws]:
        """Every summary quantity from draws ``d`` (``(..., p)``) and ``tau`` (``(...)``, None if fixed).

        Node splits (``splits=True``): given each draw's ``tau``, ``omega ~ N(m(tau), v(tau))``
        (:func:`~harmoni_bayes.nma_core.node_splits`); ``m`` and ``v`` are computed on 200 values of ``tau``
        spanning the draws and interpolated linearly (both are smooth in ``tau``).
        """
        i = self.inputs
        c = i.contrast_vector(*self.target)
        out = [Draws(self.target_name, "hr", np.exp(d @ c))]
        out += [Draws(f"hr[{t}]", "hr", np.exp(d[..., j])) for j, t in enumerate(i.others)]
        if tau is not None:
            out.append(Draws("tau", "sd", tau))
        ranks = rank_draws(d)
        k = len(i.treatments)
        out += [Draws(f"sucra[{t}]", "probability", (k - ranks[..., j]) / (k - 1)) for j, t in enumerate(i.treatments)]
        out += [Draws(f"rank[{t}]", "identity", ranks[..., j].astype(float)) for j, t in enumerate(i.treatments)]
        taus = (np.zeros(d.shape[:-1]) if tau is None else np.asarray(tau)).ravel()
        grid = np.linspace(taus.min(), taus.max(), 200) if np.ptp(taus) > 0 else taus[:1]
        for sp in self.splits if splits else []:
            m_g, v_g = node_splits(i, sp, grid, self.priors.d.sigma)
            mean, var = (np.interp(taus, grid, m_g), np.interp(taus, grid, v_g)) if grid.size > 1 else (m_g, v_g)
            omega = mean + np.sqrt(var) * rng.standard_normal(taus.shape)
            out.append(Draws(f"inconsistency[{sp.a} vs {sp.b}]", "log", omega.reshape(d.shape[:-1])))
        return out

    def quantities(self, idata) -> list[Draws]:
        """Target HR, ``hr[<t>]``, ``tau``, ``sucra[<t>]``, ``rank[<t>]``, ``inconsistency[<a> vs <b>]``."""
        d = posterior_array(idata, "d")
        tau = posterior_array(idata, "tau") if self.random else None
        return self._from_draws(d, tau, np.random.default_rng(20240908))

    def probabilities(self, idata) -> list[Draws]:
        """``P(<target><t>)`` per threshold, ``P(hr[<t>]<1)``, ``P(rank[<t>]=1)``."""
        return self._probabilities(self.quantities(idata))

    def _probabilities(self, qs: list[Draws]) -> list[Draws]:
        by = {q.name: q.values for q in qs}
        out = [
            Draws(f"P({self.target_name}<{t:g})", "probability", (by[self.target_name] < t).astype(float))
            for t in self.thresholds
        ]
        out += [Draws(f"P(hr[{t}]<1)", "probability", (by[f"hr[{t}]"] < 1).astype(float)) for t in self.inputs.others]
        out += [
            Draws(f"P(rank[{t}]=1)", "probability", (by[f"rank[{t}]"] == 1).astype(float))
            for t in self.inputs.treatments
        ]
        return out

    # -- exact engine -----------------------------------------------------------------------------
    def exact(self, flat: bool = False, n_grid: int = 1500) -> NMAPosterior:
        """The closed-form posterior (GLS given tau; grid over tau); ``flat=True``: flat prior on ``d``."""
        return nma_posterior(
            self.inputs,
            prior_mean=self.priors.d.mu,
            prior_sd=None if flat else self.priors.d.sigma,
            tau_prior=self.priors.tau if self.random else None,
            n_grid=n_grid,
        )

    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        """Exact HRs, tau and inconsistency (normal mixtures over the tau grid); ranks from iid draws."""
        from ..exact import GridDistribution, NormalMixture

        post = self.exact()
        i = self.inputs

        def mix(c: np.ndarray) -> NormalMixture:
            return NormalMixture(*post.contrast(c))

        target = mix(i.contrast_vector(*self.target))
        hrs = [mix(i.contrast_vector(t, i.reference)) for t in i.others]
        quantities = [Stats(self.target_name, "hr", target.summary("hr"))]
        quantities += [Stats(f"hr[{t}]", "hr", m.summary("hr")) for t, m in zip(i.others, hrs, strict=True)]
        if self.random:
            quantities.append(Stats("tau", "sd", GridDistribution(post.tau, post.weights, post.edges).summary()))
        tau_mc, d_mc = post.sample(RANK_DRAWS, rng)
        mc = self._from_draws(d_mc, tau_mc if self.random else None, rng, splits=False)
        quantities += [
            Stats(q.name, q.scale, draw_stats(q.values)) for q in mc if q.name.startswith(("sucra[", "rank["))
        ]
        for sp in self.splits:
            mean, var = node_splits(i, sp, post.tau, self.priors.d.sigma)
            quantities.append(
                Stats(
                    f"inconsistency[{sp.a} vs {sp.b}]",
                    "log",
                    NormalMixture(post.weights, mean, np.sqrt(var)).summary("log"),
                )
            )
        probabilities = [(f"P({self.target_name}<{t:g})", target.prob_below(math.log(t))) for t in self.thresholds]
        probabilities += [(f"P(hr[{t}]<1)", m.prob_below(0.0)) for t, m in zip(i.others, hrs, strict=True)]
        probabilities += [
            (p.name, float(p.values.mean())) for p in self._probabilities(mc) if p.name.startswith("P(rank[")
        ]
        n = min(n_draws, RANK_DRAWS)
        draws: dict[str, np.ndarray] = {"d": d_mc[:n], "hr": np.exp(d_mc[:n])}
        draws[self.target_name] = np.exp(d_mc[:n] @ i.contrast_vector(*self.target))
        if self.random:
            draws["tau"] = tau_mc[:n]
        return ExactFit(quantities, probabilities, draws)

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Prior draws of ``hr`` (vs the reference), the target HR and ``tau``, named as in the posterior."""
        d = self.priors.d.rvs((n, len(self.labels)), rng)
        out = {"hr": np.exp(d), self.target_name: np.exp(d @ self.inputs.contrast_vector(*self.target))}
        if self.random:
            out["tau"] = self.priors.tau.rvs(n, rng)
        return out

    # -- words ------------------------------------------------------------------------------------
    def assumptions(self) -> list[str]:
        """Consistency, transitivity (populations, assays, regions), crossover, proportional hazards, priors."""
        i = self.inputs
        a, b = self.target
        out = [
            "Exchangeability of the trials' patients (transitivity, and consistency of direct and indirect "
            "evidence): every comparison is assumed to estimate the same relative effect it would in the other "
            "trials' patients, so that indirect comparisons through shared comparators are valid. "
            "The trials differ in PD-L1 assay (22C3 TPS in KEYNOTE, EMPOWER and HARMONi-2; 28-8 in CheckMate; SP142 "
            "on tumour or immune cells in IMpower110, whose 'high' group is TC >= 50% or IC >= 10%; SP263 or "
            "tumour-cell PD-L1 in RATIONALE-304; JS311 in CHOICE-01), so strata with the same numbers are not "
            "identical populations.",
        ]
        if not any(set(pair) == {a, b} for pair in zip(i.treat_a, i.treat_b, strict=True)):
            out.append(
                f"No trial compared {words(a)} with {words(b)} directly: their HR is indirect, a chain of comparisons "
                "through shared comparators, and rests entirely on transitivity."
            )
        if self.used is not None and len(self.used):
            u = self.used
            china = sorted({t for t, p in zip(u.trial, u.population, strict=True) if "China" in str(p)})
            if china:
                out.append(
                    f"Chinese and global populations are assumed exchangeable: {', '.join(china)} enrolled in China "
                    "only; the KEYNOTE, CheckMate, EMPOWER and IMpower trials are global."
                )
            selected = sorted({f"{t} ({s})" for t, s in zip(u.trial, u.stratum, strict=True) if s not in ("all", "")})
            if (u.stratum == "all").any() and selected:
                out.append(
                    "All-comers network: each trial enters with its whole randomised population, and some enrolled "
                    f"only PD-L1-selected patients: {', '.join(selected)}. PD-L1 modifies the benefit of checkpoint "
                    "inhibitors, so treatments tested only in selected populations look better than they would in "
                    "all-comers; this is the network's main transitivity risk."
                )
            weak = sorted(
                {t for t, k in zip(u.trial, u.source_kind, strict=True) if k in ("secondary", "news", "press")}
            )
            if weak:
                out.append(
                    "Some rows come from secondary compilations, news reports or company releases rather than the "
                    f"journal paper ({', '.join(weak)}); the evidence table shows each row's source."
                )
        endpoints = set(self.used.endpoint) if self.used is not None and "endpoint" in self.used else set()
        if "OS" in endpoints:
            out.append(
                "Crossover: OS HRs are intention-to-treat and diluted where control patients later received "
                "immunotherapy (KEYNOTE-024: 66% effective crossover; ORIENT-11: 47%; KEYNOTE-189 and -407 allowed "
                "crossover to pembrolizumab), more in some trials than others."
            )
        out.append(
            "Proportional hazards: each HR summarises the effect by one number over follow-up, although "
            "immunotherapy curves separate late; analyses at different follow-up (interim to 5-year) are combined."
        )
        if self.used is not None:
            out.append(
                "Rows without a disclosure date (flagged in the data file) are treated as disclosed before the as-of "
                "date unless their data cutoff is later; PD-L1-stratum HRs from a review table have no stated data cut."
            )
        if i.shared:
            out.append(
                "Multi-arm trials: two contrasts against a shared control share its variance, which was not reported: "
                + "; ".join(f"{s}: {v:.4g} ({how})" for s, (v, how) in i.shared.items())
                + "."
            )
        else:
            out.append("No multi-arm trial enters this network (each trial contributes one contrast).")
        if not self.splits:
            out.append(
                "The network has no closed loop of independent evidence, so consistency between direct and indirect "
                "evidence cannot be checked: every indirect comparison rests on transitivity alone."
            )
        else:
            out.append(
                "Inconsistency is checked by node splitting (direct minus indirect log HR for each pair in a loop; "
                "tau as in the consistency model)."
            )
        effects = (
            f"Random effects: one between-trial SD tau for every comparison, prior {self.priors.tau.describe()}"
            if self.random
            else "Fixed effect: every trial of a comparison estimates the same HR (tau = 0)"
        )
        out.append(
            f"{effects}; each treatment's log HR vs {words(i.reference)}: {self.priors.d.describe()}. Ranks: 1 = the "
            "lowest hazard; SUCRA = the mean share of the other treatments a treatment beats."
        )
        return out


@dataclass(frozen=True)
class ConditionalShift:
    r"""``d = m(tau) + s(tau) * (R eta)``: ``d`` non-centred on an approximation of its conditional posterior.

    From the exact GLS posterior ``d | tau, y ~ N(mu(tau), Sigma(tau))`` (:func:`~harmoni_bayes.nma_core.gls`) at
    ``tau = 0`` and at ``tau_1`` (the prior median of tau), with ``u = tau^2 / tau_1^2``:

    * ``s_t(tau)^2 = v0_t + (vmax - v0_t) k_t u / (1 + k_t u)``, ``k_t = (v1_t - v0_t) / (vmax - v1_t)``: the
      posterior variances at 0 and ``tau_1`` exactly, rising towards the prior variance ``vmax = sigma_0^2``;
    * ``m(tau) = m0 + (m1 - m0) 2u / (1 + u)``: the posterior means at 0 and ``tau_1``;
    * ``R``: the Cholesky factor of the posterior correlation matrix at ``tau_1``.

    The map ``(eta, tau) -> (d, tau)`` is smooth and invertible for every ``tau`` with Jacobian
    ``prod_t s_t(tau) |R|``, so sampling ``eta`` (flat) and ``tau`` with ``log p(tau) + log p(d) + log p(y | d, tau)
    + sum_t log s_t(tau)`` is exact, whatever the quality of the approximation; where it is good (always at
    ``tau = 0`` and ``tau_1``; with a fixed effect exactly), ``eta`` is close to ``N(0, I)`` and independent of
    ``tau``, so NUTS meets neither the funnel nor the ridge of the centred and textbook non-centred forms.  Only
    elementwise operations and small matrix-vector products: no matrix factorisation per gradient.
    """

    m0: np.ndarray
    m1: np.ndarray
    v0: np.ndarray
    k: np.ndarray
    vmax: float
    tau1: float
    chol: np.ndarray

    @classmethod
    def fit(cls, inputs: NMAInputs, d_prior: NormalPrior, tau_prior: Any | None) -> ConditionalShift:
        """The shift for a network: two GLS solutions (``tau = 0`` and ``tau_1``), or one for a fixed effect."""
        from ..nma_core import gls

        p = inputs.p
        prec, m_prior = np.eye(p) / d_prior.sigma**2, np.full(p, d_prior.mu)
        m0, c0, _ = gls(inputs.y, inputs.design, inputs.cov, m_prior, prec)
        vmax = float(d_prior.sigma**2)
        if tau_prior is None:
            m1, c1, tau1 = m0, c0, 1.0
        else:
            tau1 = tau_prior.median()
            m1, c1, _ = gls(inputs.y, inputs.design, inputs.cov + tau1**2 * inputs.re_structure, m_prior, prec)
        v0, v1 = np.diag(c0).copy(), np.minimum(np.maximum(np.diag(c1), np.diag(c0)), 0.999 * vmax)
        sd1 = np.sqrt(np.diag(c1))
        chol = np.linalg.cholesky(c1 / np.outer(sd1, sd1))
        k = (v1 - v0) / (vmax - v1)
        return cls(m0, m1, v0, k, vmax, tau1, chol)

    def expression(self, eta: Any, tau: Any) -> tuple[Any, Any]:
        """``(d, log Jacobian)`` as PyTensor expressions of ``eta`` and ``tau``."""
        import pytensor.tensor as pt

        u = tau**2 / self.tau1**2
        var = self.v0 + (self.vmax - self.v0) * self.k * u / (1.0 + self.k * u)
        sd = pt.sqrt(var)
        mean = self.m0 + (self.m1 - self.m0) * (2.0 * u / (1.0 + u))
        return mean + sd * pt.dot(self.chol, eta), pt.sum(pt.log(sd))

    def eta(self, d: np.ndarray, tau: np.ndarray | float) -> np.ndarray:
        """The inverse map (numpy), for tests: ``eta = R^{-1} (d - m(tau)) / s(tau)``."""
        u = np.asarray(tau, dtype=float) ** 2 / self.tau1**2
        u = u[..., None] if np.ndim(u) else u
        var = self.v0 + (self.vmax - self.v0) * self.k * u / (1.0 + self.k * u)
        mean = self.m0 + (self.m1 - self.m0) * (2.0 * u / (1.0 + u))
        z = (np.asarray(d) - mean) / np.sqrt(var)
        return np.linalg.solve(self.chol, np.moveaxis(z, -1, 0)).T if np.ndim(z) > 1 else np.linalg.solve(self.chol, z)


def marginal_loglik(inputs: NMAInputs, resid: Any, tau: Any) -> Any:
    r"""Log likelihood of the contrasts given ``d`` with the random effects integrated out (PyTensor expression).

    Within study ``i`` (``k_i`` contrasts against one baseline) ``V_i = S_i + tau^2 C_i = D_i + a_i 1 1'`` with
    ``D_ij = s_ij^2 - v_i + tau^2 / 2`` and ``a_i = v_i + tau^2 / 2`` (``v_i`` the shared-arm variance, 0 for a
    two-arm study), so by the matrix determinant lemma and Sherman-Morrison, with ``r = y - X d``:

        log N(r | 0, V_i) = -1/2 [sum_j log D_ij + log(1 + a_i sum_j 1/D_ij) + sum_j r_ij^2 / D_ij
                                  - a_i (sum_j r_ij / D_ij)^2 / (1 + a_i sum_j 1/D_ij) + k_i log 2 pi]

    Elementwise operations and sums per study only: no matrix factorisation per gradient evaluation.
    """
    import pytensor.tensor as pt

    studies = inputs.studies
    member = np.array([[1.0 if s == st else 0.0 for s in inputs.study] for st in studies])  # (n_studies, m)
    v_study = np.array([inputs.shared.get(st, (0.0, ""))[0] for st in studies])
    half = tau**2 / 2.0
    dd = inputs.se**2 - member.T @ v_study + half
    a = v_study + half
    inv = 1.0 / dd
    s1 = pt.dot(member, inv)
    b = pt.dot(member, resid * inv)
    q = pt.dot(member, resid**2 * inv)
    logdet = pt.dot(member, pt.log(dd)) + pt.log1p(a * s1)
    k = member.sum(axis=1)
    return -0.5 * pt.sum(logdet + q - a * b**2 / (1.0 + a * s1) + k * math.log(2 * math.pi))


def _reasons(excluded: pd.DataFrame, treatment: str | None = None) -> list[Problem]:
    """Why rows were left out (all, or those comparing ``treatment``), for a ModelError."""
    rows = excluded
    if treatment is not None:
        rows = rows[(rows.treatment_experimental == treatment) | (rows.treatment_control == treatment)]
    return [Problem(f"{r.row_id}: {r.reason}") for r in rows.itertuples()]


def draw_stats(x: np.ndarray) -> dict[str, float]:
    """Mean, SD, median, 95% equal-tailed interval and 95% HDI (shortest interval) of draws."""
    v = np.sort(np.asarray(x, dtype=float).ravel())
    n = v.size
    lo, med, hi = np.quantile(v, [0.025, 0.5, 0.975])
    k = max(1, math.ceil(0.95 * n))
    widths = v[k - 1 :] - v[: n - k + 1]
    j = int(np.argmin(widths))
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)),
        "median": float(med),
        "q2.5": float(lo),
        "q97.5": float(hi),
        "hdi_low": float(v[j]),
        "hdi_high": float(v[j + k - 1]),
    }
