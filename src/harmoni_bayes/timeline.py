"""How the answer moved, disclosure by disclosure, and how it depends on the priors: sweeps of one spec.

**Readout timeline** (:func:`build_timeline`): a Bayesian cumulative meta-analysis over disclosure dates.
Every date on which a row that the spec can select was disclosed is a candidate; the spec's evidence step
(the family's ``from_spec``) is run as of each candidate, and the dates on which the selected rows change
(a readout added, an interim superseded by a final analysis) are kept.  The spec is then fitted as of each
kept date, with the exact engine where the family has one, as independent tasks on the sweep path
(:mod:`harmoni_bayes.sweep`).  Unlike a frequentist cumulative meta-analysis (metafor ``cumul()``) each step
keeps the full posterior, and what was left out at each date and why.

**Prior sensitivity** (:func:`build_sensitivity`): the spec fitted under a list of settings from a grid file,
each a set of spec keys (``priors.tau = {dist = "half_normal", sigma = 0.25}``), validated like the spec.

Both return plain data (per-step summaries and bands of the family's headline quantity); the reporting
package draws and writes them.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import SpecBase
from .errors import HarmoniError, Problem, SpecError
from .models import get_family
from .models.base import EvidenceTables
from .specs import load_spec, merge_changes, parse_spec, sensitivity_settings, spec_to_dict, with_overrides
from .sweep import Task, TaskOutcome, run_sweep

BAND_QUANTILES = (0.025, 0.25, 0.5, 0.75, 0.975)
"""Quantiles of the headline quantity kept per step: the 95% and 50% bands and the median."""


@dataclass
class Step:
    """One fit of a sweep: its label (a date or a setting), what changed, and the result's summary."""

    label: str
    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    readout: str = ""
    summary: dict | None = None
    bands: dict[str, float] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "label": self.label,
            "readout": self.readout,
            "added": self.added,
            "dropped": self.dropped,
            "bands": self.bands,
            "error": self.error,
            "summary": self.summary,
        }


@dataclass
class Sweep:
    """A spec fitted several times: a readout timeline (``kind="timeline"``) or a sensitivity grid."""

    kind: str
    spec: dict
    quantity: str
    method: str
    steps: list[Step]

    @property
    def title(self) -> str:
        """The spec's title."""
        return str(self.spec.get("title") or self.spec.get("name"))

    def table(self) -> pd.DataFrame:
        """One row per step: the headline quantity's median, 50% and 95% intervals and P(quantity < 1)."""
        rows = []
        for s in self.steps:
            p = _probability_below_1(s.summary, self.quantity) if s.summary else None
            rows.append(
                {
                    "step": s.label,
                    "readout": s.readout,
                    "median": s.bands.get("q50"),
                    "q25": s.bands.get("q25"),
                    "q75": s.bands.get("q75"),
                    "q2.5": s.bands.get("q2.5"),
                    "q97.5": s.bands.get("q97.5"),
                    f"P({self.quantity}<1)": p,
                    "rows": len(s.summary["evidence_rows"]) if s.summary else None,
                    "error": s.error,
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """A JSON-ready dict of the whole sweep."""
        return {
            "kind": self.kind,
            "spec": self.spec,
            "quantity": self.quantity,
            "method": self.method,
            "steps": [s.to_dict() for s in self.steps],
        }


# --------------------------------------------------------------------------------------------------
# the readout timeline
# --------------------------------------------------------------------------------------------------


def evidence_changes(
    spec: SpecBase, evidence: str | Path | pd.DataFrame | None = None
) -> list[tuple[str, list[str], list[str], list[str]]]:
    """The dates on which the rows the spec selects change: ``(date, rows, added, dropped)`` per date.

    Candidates are the ``disclosed`` dates of the evidence tables (up to the spec's own ``as_of``, if any);
    a date on which the evidence step cannot yet build the model (too few rows) is skipped.
    """
    family = get_family(spec.model)
    tables = EvidenceTables(spec, evidence)
    dates = _candidate_dates(spec, tables)
    out: list[tuple[str, list[str], list[str], list[str]]] = []
    previous: list[str] = []
    for d in dates:
        try:
            _, record = family.from_spec(with_overrides(spec, as_of=d), tables)
        except HarmoniError:
            continue
        rows = record.row_ids
        if set(rows) != set(previous):
            added = [r for r in rows if r not in previous]
            dropped = [r for r in previous if r not in rows]
            out.append((d, rows, added, dropped))
            previous = rows
    return out


def _candidate_dates(spec: SpecBase, tables: EvidenceTables) -> list[str]:
    dates: set[str] = set()
    if getattr(spec, "evidence", None) is not None:
        dates |= {str(d) for d in tables.trials.get("disclosed", pd.Series(dtype=str)) if str(d)}
    reference = getattr(spec, "reference", None)
    if reference is not None:
        ref = tables.reference(reference.file)
        if "disclosed" in ref:
            dates |= {str(d) for d in ref["disclosed"] if str(d)}
    limit = spec.as_of.isoformat() if spec.as_of else None
    return sorted(d for d in dates if d and d != "nan" and (limit is None or d <= limit))


def build_timeline(
    spec: SpecBase | str | Path,
    *,
    evidence: str | Path | pd.DataFrame | None = None,
    method: str | None = None,
    draws: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> Sweep:
    """Fit ``spec`` as of every date on which its evidence changed (see the module docstring).

    ``method`` defaults to ``exact`` for families with an exact engine, else the spec's method.  Raises a
    :class:`SpecError` when the evidence the spec selects never changes (a timeline needs two states).
    """
    spec = load_spec(spec) if isinstance(spec, str | Path) else spec
    family = get_family(spec.model)
    spec = with_overrides(spec, method=method or ("exact" if "exact" in family.capabilities else None), draws=draws)
    method = str(spec.method)
    changes = evidence_changes(spec, evidence)
    if len(changes) < 2:
        raise SpecError(
            f"{spec.name}: the evidence this spec selects never changes"
            + (f" (the same {len(changes[0][1])} row(s) at every date)" if changes else " (no date gives a model)")
            + "; a timeline needs at least two different evidence states"
        )
    labels = _row_labels(spec, evidence)
    quantity = _headline_quantity(spec)
    data = spec_to_dict(spec)
    tasks = [
        Task(d, fit_summary, {"spec": data, "as_of": d, "evidence": evidence, "quantity": quantity})
        for d, _, _, _ in changes
    ]
    outcomes = run_sweep(tasks, scheduler=scheduler, workers=workers, light=method == "exact")
    steps = []
    for (d, _, added, dropped), outcome in zip(changes, outcomes, strict=True):
        step = _step(d, outcome)
        step.added, step.dropped = added, dropped
        step.readout = "; ".join(labels.get(r, r) for r in added) or "start"
        steps.append(step)
    return Sweep("timeline", data, quantity, method, steps)


def fit_summary(spec: dict, quantity: str, as_of: str | None = None, evidence: Any = None) -> dict:
    """Fit one spec (a dict, as saved with results) and return its summary and the headline quantity's bands.

    Runs on a sweep worker: everything in and out is plain data.  MCMC chains run one after another here
    (``cores = 1``): the sweep already keeps every core busy with one fit per worker, and chains in processes
    of their own would only compete with it.  The draws are the same either way (each chain has its seed).
    """
    from .run import run_spec

    spec = copy.deepcopy(spec)
    spec["sampler"]["cores"] = 1
    result = run_spec(parse_spec(spec), as_of=as_of, evidence=evidence, strip=False)  # a sweep shows no strip
    return {"summary": result.summary.to_dict(), "bands": _bands(result, quantity)}


def _bands(result: Any, quantity: str) -> dict[str, float]:
    """Median and 50%/95% bands: the summary's own median and 95% interval, the quartiles from the draws."""
    q = next((q for q in result.summary.quantities if q["name"] == quantity), None)
    if q is None:
        return {}
    out = {"q50": q["median"], "q2.5": q["q2.5"], "q97.5": q["q97.5"]}
    draws = _draws(result.idata, quantity)
    if draws is not None and draws.size:
        q25, q75 = np.quantile(draws, [0.25, 0.75])
        out |= {"q25": float(q25), "q75": float(q75)}
    return out


def _draws(idata: Any, name: str) -> np.ndarray | None:
    """The draws of ``name``: a variable, or one element of one, written ``var[label]`` (e.g. the PoS family's
    ``hr_new_trial[PFS]``, a variable with an ``endpoint`` dimension).
    """
    post = idata.posterior
    if name in post.data_vars:
        return np.asarray(post[name].values, dtype=float).ravel()
    base, _, label = name.partition("[")
    if label.endswith("]") and base in post.data_vars:
        var = post[base]
        for dim in var.dims:
            if dim in var.coords and label[:-1] in [str(c) for c in var.coords[dim].values]:
                return np.asarray(var.sel({dim: label[:-1]}).values, dtype=float).ravel()
    return None


def _step(label: str, outcome: TaskOutcome) -> Step:
    if not outcome.ok:
        return Step(label, error=outcome.error)
    return Step(label, summary=outcome.value["summary"], bands=outcome.value["bands"])


def _row_labels(spec: SpecBase, evidence: Any) -> dict[str, str]:
    """Row id -> "HARMONi-2 OS (ITT, interim analysis, press)" for the readout labels."""
    if getattr(spec, "evidence", None) is None:
        return {}
    table = EvidenceTables(spec, evidence).trials
    out = {}
    for r in table.to_dict("records"):
        level = (
            "ITT" if r.get("subgroup_factor") == "overall" else f"{r.get('subgroup_factor')}={r.get('subgroup_level')}"
        )
        out[r["row_id"]] = f"{r['trial']} {r['endpoint']} ({level}, {r.get('analysis_kind')}, {r.get('source_kind')})"
    return out


def _headline_quantity(spec: SpecBase) -> str:
    quantity = get_family(spec.model).presentation.headline_quantity
    if quantity is None:
        raise SpecError(f"model {spec.model!r} names no headline quantity to follow over time")
    return quantity


def _probability_below_1(summary: dict | None, quantity: str) -> float | None:
    if not summary:
        return None
    name = f"P({quantity}<1)"
    return next((p["value"] for p in summary["probabilities"] if p["name"] == name), None)


# --------------------------------------------------------------------------------------------------
# prior sensitivity
# --------------------------------------------------------------------------------------------------


def read_grid(path: str | Path, spec: SpecBase) -> list[tuple[str, SpecBase]]:
    """Read a sensitivity grid (TOML) and return ``(label, spec)`` per setting, every setting validated.

    Format: ``[[setting]]`` tables, each with a ``label`` and dotted spec keys::

        [[setting]]
        label = "tau half-normal(0.25)"
        priors.tau = { dist = "half_normal", sigma = 0.25 }

    A key the spec does not have, or a bad value, is a :class:`SpecError` listing every problem of every
    setting at once.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: grid file not found")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    settings = data.get("setting")
    extra = sorted(set(data) - {"setting"})
    problems = [Problem(f"unknown top-level key {k!r} (settings go in [[setting]] tables)") for k in extra]
    if not isinstance(settings, list) or not settings:
        problems.append(Problem("no [[setting]] tables"))
        raise SpecError(f"{path}: not a sensitivity grid", problems)
    base = spec_to_dict(spec)
    out: list[tuple[str, SpecBase]] = []
    labels: list[str] = []
    for i, setting in enumerate(settings, start=1):
        changes = dict(setting)
        label = str(changes.pop("label", f"setting {i}"))
        if label in labels:
            problems.append(Problem(f"setting {i}: label {label!r} is used twice"))
        labels.append(label)
        if not changes:
            problems.append(Problem(f"setting {i} ({label}): changes nothing"))
            continue
        merged = merge_changes(base, changes)
        try:
            out.append((label, parse_spec(merged, source=f"{path} setting {i} ({label})")))
        except SpecError as exc:
            problems += [Problem(f"setting {i} ({label}): {p}") for p in exc.problems]
    if problems:
        raise SpecError(f"{path}: invalid sensitivity grid", problems)
    return out


def build_sensitivity(
    spec: SpecBase | str | Path,
    grid: str | Path | None = None,
    *,
    evidence: str | Path | pd.DataFrame | None = None,
    method: str | None = None,
    draws: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> Sweep:
    """Fit ``spec`` (first, as given) and then under each setting of the grid, on the sweep path.

    Without a grid file the family's own settings are used (``ModelFamily.sensitivity``: the tau priors of
    the normal-normal families, the residual SD and rho_w of the OS forecast).
    """
    spec = load_spec(spec) if isinstance(spec, str | Path) else spec
    family = get_family(spec.model)
    spec = with_overrides(spec, method=method or ("exact" if "exact" in family.capabilities else None), draws=draws)
    method = str(spec.method)
    if grid is None:
        if not family.sensitivity:
            raise SpecError(f"model {spec.model!r} declares no prior settings; give a grid file")
        grid_settings = sensitivity_settings(spec)
    else:
        grid_settings = read_grid(grid, spec)
    settings = [
        ("as specified", spec),
        *((lab, with_overrides(s, method=method, draws=draws)) for lab, s in grid_settings),
    ]
    quantity = _headline_quantity(spec)
    tasks = [
        Task(label, fit_summary, {"spec": spec_to_dict(s), "evidence": evidence, "quantity": quantity})
        for label, s in settings
    ]
    outcomes = run_sweep(tasks, scheduler=scheduler, workers=workers, light=method == "exact")
    steps = [_step(label, o) for (label, _), o in zip(settings, outcomes, strict=True)]
    return Sweep("sensitivity", spec_to_dict(spec), quantity, method, steps)


__all__ = ["BAND_QUANTILES", "Step", "Sweep", "build_sensitivity", "build_timeline", "evidence_changes", "read_grid"]
