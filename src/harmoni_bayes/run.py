"""Run a spec: evidence selection -> model -> fit (MCMC or exact) -> summary -> :class:`Result`.

This is the one entry point for every model family; the CLI and the notebooks call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ModelError
from .evidence import load_evidence, load_reference_trials, read_evidence
from .models.random_effects import RandomEffectsModel
from .models.subgroups import SubgroupModel
from .models.surrogacy import SurrogacyModel, TargetTrial
from .posterior import diagnose, from_draws
from .reference import select_reference
from .results import Result, make_provenance
from .schema import REFERENCE
from .selection import Selection, as_of_string, filter_as_of, select_evidence
from .specs import load_spec, spec_to_dict
from .summaries import (
    Summary,
    diagnostics_record,
    probabilities_from_draws,
    quantities_from_draws,
    quantity_record,
)

EXACT_DRAWS = 4000  # iid draws stored from an exact fit, for figures only


def scale_of(name: str) -> str:
    if name.startswith("hr_ratio"):
        return "ratio"
    if name in ("tau", "residual_sd", "tau_pfs"):
        return "sd"
    if name.startswith(("hr", "os_hr", "ste_hr")):
        return "hr"
    return "identity"


def run_spec(
    spec,
    *,
    as_of: str | None = None,
    evidence: str | Path | pd.DataFrame | None = None,
    seed: int | None = None,
    method: str | None = None,
    backend: str | None = None,
    draws: int | None = None,
) -> Result:
    """Fit one analysis spec (a path or a parsed spec) and return its :class:`Result`.

    Overrides: ``as_of`` (else the spec's), ``evidence`` (a CSV path or a validated table; else the spec's
    file, else the shipped table), ``seed``, ``method`` (``mcmc`` or ``exact``), ``backend`` (``pymc`` or
    ``nutpie``) and ``draws`` (draws and tuning steps per chain; for quick looks and tests).
    """
    spec = load_spec(spec) if isinstance(spec, str | Path) else spec.model_copy(deep=True)
    sampler = spec.sampler.model_copy(
        update={k: v for k, v in {"seed": seed, "backend": backend}.items() if v is not None}
        | ({"draws": draws, "tune": draws} if draws else {})
    )
    spec = spec.model_copy(update={"sampler": sampler, "method": method or spec.method})
    if as_of is not None:
        date = dt.date.fromisoformat(as_of_string(as_of))
        if getattr(spec, "evidence", None) is not None:
            spec.evidence.as_of = date
        else:
            spec.as_of = date
    table = _evidence_table(spec, evidence)
    family, selection, extra = BUILDERS[spec.model](spec, table)
    as_of_s = selection.criteria.get("as_of")

    if spec.method == "exact":
        if not hasattr(family, "exact"):
            raise ModelError(f"model '{spec.model}' has no exact engine; use method = 'mcmc'")
        ex = family.exact()
        quantities = [quantity_record(n, scale_of(n), s) for n, s in family.exact_quantities(ex)]
        probabilities = [
            {"name": n, "value": float(f"{v:.6g}"), "mcse": 0.0} for n, v in family.exact_probabilities(ex)
        ]
        rng = np.random.default_rng(spec.sampler.seed)
        draws_ = family.exact_draws(ex, EXACT_DRAWS, rng)
        idata = from_draws(draws_, coords={family.dim: family.labels}, dims=_dims_of(draws_, family))
        diag = None
    else:
        from .inference import sample

        model = family.build_model()
        idata = sample(model, spec.sampler)
        diag = diagnose(idata, _checked_vars(idata), spec.diagnostics)
        quantities = quantities_from_draws(family.quantities(idata))
        probabilities = probabilities_from_draws(family.probabilities(idata))
    if hasattr(family, "raw_quantities"):
        quantities += [quantity_record(n, "hr", s) for n, s in family.raw_quantities()]
    if hasattr(family, "prior_draws"):
        prior = family.prior_draws(EXACT_DRAWS, np.random.default_rng(spec.sampler.seed + 1))
        idata.add_groups(prior={k.replace("[", "(").replace("]", ")"): v[None, :] for k, v in prior.items()})

    summary = Summary(
        spec=spec.name,
        model=spec.model,
        method=spec.method,
        as_of=as_of_s,
        evidence_rows=list(selection.used.row_id) + extra.get("reference_rows", []),
        quantities=quantities,
        probabilities=probabilities,
        diagnostics=diagnostics_record(diag),
    )
    used = selection.used.assign(table="trials")
    if "reference_used" in extra:
        used = pd.concat([used, extra["reference_used"].assign(table="reference")], ignore_index=True)
    excluded = selection.excluded
    if "reference_excluded" in extra:
        excluded = pd.concat([excluded, extra["reference_excluded"]], ignore_index=True)
    return Result(
        spec=spec_to_dict(spec),
        summary=summary,
        idata=idata,
        evidence_used=used,
        evidence_excluded=excluded,
        assumptions=family.assumptions() + list(spec.notes),
        provenance=make_provenance(
            spec.sampler.seed,
            spec.method,
            as_of_s,
            {"evidence_source": table.attrs.get("source")} | extra.get("provenance", {}),
        ),
    )


def _evidence_table(spec, evidence) -> pd.DataFrame:
    if isinstance(evidence, pd.DataFrame):
        return evidence
    if evidence is not None:
        return read_evidence(evidence)
    ev = getattr(spec, "evidence", None)
    if ev is not None and ev.file:
        return read_evidence(ev.file)
    return load_evidence()


def _dims_of(draws: dict, family) -> dict:
    return {k: [family.dim] for k, v in draws.items() if np.ndim(v) == 2}


def _checked_vars(idata) -> list[str]:
    """Every float posterior variable; indicators (booleans) have no meaningful R-hat."""
    return [k for k, v in idata.posterior.data_vars.items() if np.issubdtype(v.dtype, np.floating)]


def _select(spec, table: pd.DataFrame) -> Selection:
    ev = spec.evidence
    return select_evidence(
        table,
        as_of=ev.as_of,
        trials=ev.trials,
        endpoint=ev.endpoint,
        subgroup_factor=ev.subgroup_factor,
        prefer=ev.prefer,
        exclude=ev.exclude,
    )


def _build_random_effects(spec, table):
    sel = _select(spec, table)
    used = sel.used
    if len(used) < 1:
        raise ModelError(f"no usable rows for {spec.evidence.trials} {spec.evidence.endpoint}", _reasons(sel))
    if used.trial.duplicated().any():
        raise ModelError("random-effects synthesis needs one row per trial; set subgroup_factor = 'overall'")
    fam = RandomEffectsModel(list(used.trial), used.log_hr, used.se, spec.priors)
    return fam, sel, {}


def _build_subgroups(spec, table):
    if len(spec.evidence.trials) != 1:
        raise ModelError("subgroup shrinkage works within one trial; list exactly one trial in evidence.trials")
    if spec.evidence.subgroup_factor == "overall":
        raise ModelError("subgroup shrinkage needs a subgroup factor (e.g. pdl1, histology), not 'overall'")
    sel = _select(spec, table)
    if len(sel.used) < 2:
        raise ModelError(
            f"subgroup shrinkage needs at least two usable levels of '{spec.evidence.subgroup_factor}'; "
            f"found {len(sel.used)}",
            _reasons(sel),
        )
    used = sel.used
    fam = SubgroupModel(list(used.subgroup_level), used.log_hr, used.se, spec.priors, spec.exnex)
    return fam, sel, {}


def _reference(spec, as_of, target_trials: list[str]):
    """Reference comparisons for the surrogacy model, filtered by date where rows carry one.

    A trial never serves as its own reference: the target trial is excluded from the reference set.
    """
    ref_spec = spec.reference
    table = read_evidence(ref_spec.file, schema=REFERENCE) if ref_spec.file else load_reference_trials()
    dated, late, has_dates = filter_as_of(table, as_of)
    chosen = select_reference(
        dated,
        groups=ref_spec.groups,
        lines=ref_spec.lines,
        shared_control=ref_spec.shared_control,
        exclude_trials=[*ref_spec.exclude_trials, *[t for t in target_trials if t in set(table.trial)]],
    )
    excluded = pd.concat([late, chosen.excluded], ignore_index=True)
    note = (
        "reference rows filtered by their disclosure dates"
        if has_dates
        else "the reference table carries no disclosure dates, so it was not filtered by the as-of date"
    )
    extra = {
        "reference_rows": list(chosen.used.row_id),
        "reference_used": chosen.used,
        "reference_excluded": excluded,
        "provenance": {"reference_filtered_by_date": has_dates, "reference_note": note},
    }
    return chosen.used, extra


def _build_surrogacy(spec, table):
    as_of = as_of_string(spec.as_of)
    used, extra = _reference(spec, as_of, [])
    fam = SurrogacyModel(used, priors=spec.priors)
    sel = Selection(
        used=table.iloc[0:0], excluded=table.iloc[0:0][["row_id"]].assign(reason=""), criteria={"as_of": as_of}
    )
    return fam, sel, extra


def _build_os_forecast(spec, table):
    ev = spec.evidence
    if len(ev.trials) != 1:
        raise ModelError("an OS forecast has one target trial; list exactly one in evidence.trials")
    sel = select_evidence(
        table, as_of=ev.as_of, trials=ev.trials, subgroup_factor="overall", prefer=ev.prefer, exclude=ev.exclude
    )
    pfs = sel.used[sel.used.endpoint == "PFS"]
    os_ = sel.used[sel.used.endpoint == "OS"]
    if pfs.empty:
        raise ModelError(f"no usable ITT PFS estimate for {ev.trials[0]} as of {ev.as_of}", _reasons(sel))
    sel.used = sel.used[sel.used.endpoint.isin(["PFS", "OS"])]
    # Once the OS estimate comes from the final analysis there is no later analysis to forecast.
    final_os = len(os_) > 0 and os_.analysis_kind.iloc[0] == "final"
    target = TargetTrial(
        label=ev.trials[0],
        y_pfs=float(pfs.log_hr.iloc[0]),
        se_pfs=float(pfs.se.iloc[0]),
        y_os=float(os_.log_hr.iloc[0]) if len(os_) else None,
        se_os=float(os_.se.iloc[0]) if len(os_) else None,
        later_deaths=None if final_os else spec.target.later_deaths,
        alpha=spec.target.alpha,
    )
    used, extra = _reference(spec, sel.criteria["as_of"], ev.trials)
    return SurrogacyModel(used, priors=spec.priors, target=target), sel, extra


def _reasons(sel: Selection):
    from .errors import Problem

    return [Problem(f"{r.row_id}: {r.reason}") for r in sel.excluded.itertuples()]


BUILDERS: dict[str, Callable] = {
    "random_effects": _build_random_effects,
    "subgroups": _build_subgroups,
    "surrogacy": _build_surrogacy,
    "os_forecast": _build_os_forecast,
}

__all__ = ["BUILDERS", "run_spec"]
