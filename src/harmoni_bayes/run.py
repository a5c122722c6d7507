"""Run a spec: evidence selection -> model family -> fit (MCMC or exact) -> summary -> :class:`Result`.

This is the one entry point for every model family; the CLI and the notebooks call it.  It knows no
family by name: the spec's ``model`` key finds the family in the registry (:mod:`harmoni_bayes.models`),
and the family says what evidence it needs, what it can do, and what its quantities are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import SpecBase
from .constants import LOWER_KEY, UPPER_KEY, round_sig
from .errors import ModelError
from .models import get_family
from .models.base import EvidenceRecord, EvidenceTables, ExactFit, ModelFamily
from .results import Result, make_provenance
from .specs import load_spec, sensitivity_settings, spec_to_dict, with_overrides
from .summaries import (
    Summary,
    diagnostics_record,
    exact_probability_record,
    probabilities_from_draws,
    quantities_from_draws,
    quantity_record,
)

EXACT_DRAWS = 4000  # iid draws stored from an exact fit, for figures only


def run_spec(
    spec: SpecBase | str | Path,
    *,
    as_of: Any = None,
    evidence: str | Path | pd.DataFrame | None = None,
    seed: int | None = None,
    method: str | None = None,
    backend: str | None = None,
    draws: int | None = None,
) -> Result:
    """Fit one analysis spec (a path or a parsed spec) and return its :class:`Result`.

    Parameters
    ----------
    spec
        A spec file (TOML) or a parsed spec.
    as_of
        Use only evidence disclosed on or before this date (else the spec's ``as_of``).
    evidence
        A trial-evidence CSV path or a validated table (else the spec's file, else the shipped table).
    seed, method, backend, draws
        Overrides of the spec's sampler seed, method (``mcmc`` or ``exact``; a spec that names none runs its
        family's default engine: exact where the family has one, else MCMC), backend (``pymc``, ``nutpie`` or
        ``numpyro``) and draws (draws and tuning steps per chain, for quick looks and tests).  They are validated
        like the spec: a bad value raises :class:`~harmoni_bayes.errors.SpecError` before any fitting.

    Returns
    -------
    Result
        The summary, the posterior (``idata``), the evidence used and left out, assumptions and provenance.
    """
    spec = load_spec(spec) if isinstance(spec, str | Path) else spec
    spec = with_overrides(spec, as_of=as_of, seed=seed, method=method, backend=backend, draws=draws)
    assert spec.method is not None  # with_overrides names the engine (the family's default when the spec has none)
    family_cls = get_family(spec.model)
    if spec.method == "exact" and "exact" not in family_cls.capabilities:
        raise ModelError(f"model '{spec.model}' has no exact engine; use method = 'mcmc'")
    tables = EvidenceTables(spec, evidence)
    family, record = family_cls.from_spec(spec, tables)

    if spec.method == "exact":
        fit = family.exact_fit(EXACT_DRAWS, np.random.default_rng(spec.sampler.seed))
        quantities = [quantity_record(s.name, s.scale, s.stats) for s in fit.quantities]
        probabilities = [exact_probability_record(name, value) for name, value in fit.probabilities]
        idata = _exact_idata(family, fit)
        diag = None
    else:
        from .inference import sample
        from .posterior import diagnose, merge_blocks

        idata = merge_blocks({name: sample(m, spec.sampler) for name, m in family.build_models().items()})
        diag = diagnose(idata, _checked_vars(idata), spec.diagnostics)
        loglik = family.pointwise_loglik(idata)
        if loglik:
            from .posterior import compare_models

            family.use_comparison(compare_models(loglik))
        quantities = quantities_from_draws(family.quantities(idata))
        probabilities = probabilities_from_draws(family.probabilities(idata))
    quantities += [quantity_record(s.name, s.scale, s.stats) for s in family.published_quantities()]
    prior = family.prior_draws(EXACT_DRAWS, np.random.default_rng(spec.sampler.seed + 1))
    if prior:
        from .posterior import add_prior_draws

        add_prior_draws(idata, prior, _coords(family))

    as_of_s = record.as_of.isoformat() if record.as_of else None
    summary = Summary(
        spec=spec.name,
        model=spec.model,
        method=spec.method,
        as_of=as_of_s,
        evidence_rows=record.row_ids,
        quantities=quantities,
        probabilities=probabilities,
        diagnostics=diagnostics_record(diag),
        extra=family.summary_extra(idata),
    )
    if "strip" not in summary.extra and spec.method == "exact":
        strip = exact_sensitivity_strip(spec, family_cls, tables, summary)
        if strip:
            summary.extra["strip"] = strip
    return Result(
        spec=spec_to_dict(spec),
        summary=summary,
        idata=idata,
        evidence_used=record.used,
        evidence_excluded=record.excluded,
        assumptions=family.assumptions() + list(spec.notes),
        provenance=make_provenance(
            spec.sampler.seed, spec.method, as_of_s, {"evidence_files": tables.files} | _notes(record)
        ),
    )


def exact_sensitivity_strip(spec: SpecBase, family_cls: type[ModelFamily], tables: EvidenceTables, summary: Summary):
    """The headline probability and HR under the family's prior settings (``ModelFamily.sensitivity``).

    With an exact engine each setting is one more exact fit of the same evidence (milliseconds), so every exact
    report shows, beside its headline, how much the answer depends on the heterogeneity prior.  ``None`` when
    the family declares no settings or has no headline HR.
    """
    have = {q["name"]: q for q in summary.quantities}
    probs = {p["name"]: p["value"] for p in summary.probabilities}
    # the family's headline HR, else (a network's target comparison is named by the spec) the first HR with P(<1)
    candidates = [
        family_cls.presentation.headline_quantity,
        *(q["name"] for q in summary.quantities if q["scale"] == "hr"),
    ]
    hq = next((c for c in candidates if c in have and f"P({c}<1)" in probs), None)
    if not family_cls.sensitivity or hq is None:
        return None
    pname = f"P({hq}<1)"

    def row(label: str, p: float, q: Mapping[str, Any], headline: bool, note: str) -> dict[str, Any]:
        """A strip row from the quantity's median and interval (as ``summary.json`` records them: rounded)."""
        return {
            "label": label,
            "probability": p,
            "median": round_sig(q["median"]),
            "lower": round_sig(q[LOWER_KEY]),
            "upper": round_sig(q[UPPER_KEY]),
            "headline": headline,
            "note": note,
        }

    rows = [row("as specified", probs[pname], have[hq], True, "the spec's priors")]
    for label, alt in sensitivity_settings(spec):
        fam, _ = family_cls.from_spec(alt, tables)
        fit = fam.exact_fit(EXACT_DRAWS, np.random.default_rng(spec.sampler.seed))
        q = next(s for s in fit.quantities if s.name == hq)
        p = dict(fit.probabilities)[pname]
        # only the median and interval are read: an exact engine's lazy summaries skip the rest (the HDIs)
        rows.append(row(label, round(float(p), 6), q.stats, False, "exact refit"))
    return {"title": "Where the certainty comes from", "probability": f"P({hq} < 1)", "rows": rows}


def _notes(record: EvidenceRecord) -> dict[str, Any]:
    return dict(record.notes)


def _coords(family: ModelFamily) -> dict[str, list[str]]:
    return {family.dim: list(family.labels)} if family.dim else {}


def _exact_idata(family: ModelFamily, fit: ExactFit) -> Any:
    from .posterior import from_draws

    dims = {k: [fit.dims.get(k, family.dim)] for k, v in fit.draws.items() if np.ndim(v) == 2}
    return from_draws(fit.draws, coords=_coords(family) | fit.coords, dims=dims)


def _checked_vars(idata: Any) -> list[str]:
    """Every float posterior variable; indicators (booleans) have no meaningful R-hat."""
    return [k for k, v in idata.posterior.data_vars.items() if np.issubdtype(v.dtype, np.floating)]


__all__ = ["EXACT_DRAWS", "run_spec"]
