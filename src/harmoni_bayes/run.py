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
from .errors import ModelError
from .models import get_family
from .models.base import Draws, EvidenceRecord, EvidenceTables, ExactFit, ModelFamily, StripContext
from .results import Result, make_provenance
from .specs import load_spec, merge_changes, parse_spec, sensitivity_settings, spec_to_dict, with_overrides
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
    strip: bool = True,
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
    strip
        Also compute the sensitivity strip (``summary.json`` ``strip``; for most families a few exact refits under
        other priors).  Sweeps pass ``False``: their pages show one number per fit, never a strip.

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
        from .posterior import add_posterior_draws, diagnose, merge_blocks

        blocks = family.build_models()
        idata = merge_blocks(
            {name: sample(m, spec.sampler.for_block(name), family.row_padding) for name, m in blocks.items()}
        )
        diag = diagnose(idata, _checked_vars(idata), spec.diagnostics)
        loglik = family.pointwise_loglik(idata)
        if loglik:
            from .posterior import compare_models

            family.use_comparison(compare_models(loglik))
        drawn = family.quantities(idata)
        quantities = quantities_from_draws(drawn)
        probabilities = probabilities_from_draws(family.probabilities(idata))
        add_posterior_draws(idata, _derived_draws_read_later(family, drawn, idata))
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
    if strip:
        family_strip = family.strip(idata, _strip_context(spec, family_cls, tables, summary))
        if family_strip is not None:
            summary.extra["strip"] = family_strip.to_dict()
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


def _strip_context(
    spec: SpecBase, family_cls: type[ModelFamily], tables: EvidenceTables, summary: Summary
) -> StripContext:
    """What a family's strip may use: the fit's summary, and the family under other specs of the same evidence.

    The other specs are the spec with changes merged in (:func:`~harmoni_bayes.specs.merge_changes`), and its
    prior settings (:func:`~harmoni_bayes.specs.sensitivity_settings`, as the sensitivity sweep fits them), so a
    strip row and the sweep's row of one setting are fits of the same spec.
    """

    def variant(changes: Mapping[str, Any]) -> SpecBase:
        return parse_spec(merge_changes(spec_to_dict(spec), dict(changes))) if changes else spec

    def refit(changes: Mapping[str, Any]) -> ModelFamily:
        return family_cls.from_spec(variant(changes), tables)[0]

    def settings(changes: Mapping[str, Any]) -> list[tuple[str, ModelFamily]]:
        return [(label, family_cls.from_spec(alt, tables)[0]) for label, alt in sensitivity_settings(variant(changes))]

    return StripContext(
        method=str(spec.method),
        seed=spec.sampler.seed,
        quantities={q["name"]: q for q in summary.quantities},
        probabilities={p["name"]: p["value"] for p in summary.probabilities},
        refit=refit,
        settings=settings,
    )


def _derived_draws_read_later(family: ModelFamily, drawn: list[Draws], idata: Any) -> dict[str, np.ndarray]:
    """Quantities the family derived from the posterior (not sampled) that are read from the posterior later:
    the headline quantity and densities (report figures) and the forecast (the scorecard), e.g. the class-aware
    family's stacked ``os_hr``.  Sampled variables are already there; indexed names are not stored.
    """
    pres = family.presentation
    wanted = {pres.headline_quantity, *pres.densities, family.forecast.quantity if family.forecast else None}
    return {d.name: d.values for d in drawn if d.name in wanted and d.name not in idata.posterior.data_vars}


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
