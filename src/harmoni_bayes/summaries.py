"""Tidy summaries: the ``summary.json`` contract and ``summary.csv``.

``summary.json`` (a fixed contract; later versions add keys, never change them)::

    {"spec", "model", "method", "as_of", "evidence_rows",
     "quantities": [{"name", "scale", "mean", "sd", "median", "q2.5", "q97.5", "hdi_low", "hdi_high",
                     "log_mean", "log_sd" (HR scales), "infinite" (when a statistic is)}, ...],
     "probabilities": [{"name", "value", "mcse"}, ...],
     "diagnostics": {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "ok", "problems",
                     "checks": [{"name", "value", "op", "threshold", "ok"}, ...]}}

HR-scale quantities (``hr``, ``ratio``) give median, quantiles and HDI as HRs and their moments on the log
scale (``log_mean``, ``log_sd``; ``mean`` and ``sd`` are null): HR-scale moments are dominated by the extreme
tail.  An infinite statistic is null and named in ``infinite`` (results saved before this rule have HR-scale
``mean`` and ``sd`` and still load).

Numbers are rounded to 6 significant digits (:func:`harmoni_bayes.constants.round_sig`), so that the file
reads well and is byte-identical for the same spec, evidence and seed.  The diagnostics block records
every check of the gate with its threshold and verdict; reports print it, never recompute it.

``summary.csv`` (:meth:`Summary.to_frame`) is the same numbers as one tidy table, one row per quantity and per
probability, each row saying which fit it comes from::

    spec, as_of, kind, name, scale, mean, sd, median, q2.5, q97.5, hdi_low, hdi_high, probability, mcse

``kind`` is ``quantity`` or ``probability``.  A quantity fills ``scale`` and the statistics; a probability
fills ``probability`` (the value) and ``mcse`` (its Monte Carlo standard error, 0 when computed exactly), and
leaves the quantity columns blank: a probability is never written as a mean.  ``as_of`` is blank when the fit
used all evidence.  Tables of several fits concatenate into one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .constants import STAT_KEYS
from .constants import round_sig as _r
from .models.base import Draws
from .posterior import Diagnostics, mcse_mean, summarise_draws


@dataclass
class Summary:
    """The ``summary.json`` contract of one fit (see the module docstring)."""

    spec: str
    model: str
    method: str
    as_of: str | None
    evidence_rows: list[str]
    quantities: list[dict]
    probabilities: list[dict]
    diagnostics: dict
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The contract as a dict, keys in contract order, then any extra keys."""
        d = {
            "spec": self.spec,
            "model": self.model,
            "method": self.method,
            "as_of": self.as_of,
            "evidence_rows": list(self.evidence_rows),
            "quantities": self.quantities,
            "probabilities": self.probabilities,
            "diagnostics": self.diagnostics,
        }
        d.update(self.extra)
        return d

    def to_json(self) -> str:
        """``summary.json`` text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def to_frame(self) -> pd.DataFrame:
        """``summary.csv``: one tidy row per quantity and per probability (columns in :data:`CSV_COLUMNS`)."""
        q = pd.DataFrame(self.quantities, columns=["name", "scale", *STAT_KEYS, *LOG_MOMENT_KEYS]).assign(
            kind="quantity"
        )
        p = pd.DataFrame(self.probabilities, columns=["name", "value", "mcse"])
        p = p.rename(columns={"value": "probability"}).assign(kind="probability")
        frame = pd.concat([df for df in (q, p) if len(df)], ignore_index=True).reindex(columns=CSV_COLUMNS)
        return frame.assign(spec=self.spec, as_of=self.as_of)

    def quantity(self, name: str) -> dict:
        """The quantity record named ``name``."""
        return next(q for q in self.quantities if q["name"] == name)

    def probability(self, name: str) -> dict:
        """The probability record named ``name``."""
        return next(p for p in self.probabilities if p["name"] == name)

    @classmethod
    def from_dict(cls, d: Any) -> Summary:
        """Inverse of :meth:`to_dict`; a ``ValueError`` naming what is wrong when ``d`` is not the contract."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        missing = [k for k in _SHAPE if k not in d]
        if missing:
            raise ValueError(f"missing key(s): {', '.join(missing)}")
        wrong = [k for k, t in _SHAPE.items() if not isinstance(d[k], t)]
        for section, need in (("quantities", ("name", "scale", *STAT_KEYS)), ("probabilities", ("name", "value"))):
            if any(not isinstance(x, dict) or any(k not in x for k in need) for x in d[section]):
                wrong.append(section)
        if wrong:
            raise ValueError(f"wrongly typed or incomplete: {', '.join(dict.fromkeys(wrong))}")
        return cls(**{k: d[k] for k in _SHAPE}, extra={k: v for k, v in d.items() if k not in _SHAPE})


LOG_MOMENT_KEYS = ("log_mean", "log_sd")
CSV_COLUMNS = ["spec", "as_of", "kind", "name", "scale", *STAT_KEYS, *LOG_MOMENT_KEYS, "probability", "mcse"]
"""The columns of ``summary.csv``, in order (see the module docstring)."""

_SHAPE: dict[str, Any] = {
    "spec": str,
    "model": str,
    "method": str,
    "as_of": (str, type(None)),
    "evidence_rows": list,
    "quantities": list,
    "probabilities": list,
    "diagnostics": dict,
}


LOG_MOMENT_SCALES = ("hr", "ratio")
"""Scales whose moments are reported on the log scale (``log_mean``, ``log_sd``), never on their own: the mean
and SD of an HR are dominated by the extreme upper tail (the mean of a new trial's HR can be infinite) and
differ between engines, while its median, quantiles and HDI do not."""


def quantity_record(name: str, scale: str, stats: Mapping[str, Any]) -> dict:
    """One entry of ``quantities``.

    HR-scale quantities (scales :data:`LOG_MOMENT_SCALES`) report median, quantiles and HDI on the HR scale and
    their moments on the log scale: ``mean`` and ``sd`` are null, ``log_mean`` and ``log_sd`` hold the moments of
    log HR.  A statistic that is infinite (or does not exist, given as ``inf``) is null and named in the
    record's ``infinite`` list, so readers can tell "infinite" from "not computed".

    Parameters
    ----------
    name, scale
        The quantity's contract name and scale.
    stats
        The keys of :data:`~harmoni_bayes.constants.STAT_KEYS`, and for HR scales ``log_mean``, ``log_sd``
        (missing: null).

    Returns
    -------
    dict
        The record as written to ``summary.json``.
    """
    values = {k: stats.get(k) for k in STAT_KEYS}
    if scale in LOG_MOMENT_SCALES:
        values |= {"mean": None, "sd": None} | {k: stats.get(k) for k in LOG_MOMENT_KEYS}
    infinite = [k for k, v in values.items() if v is not None and np.isinf(v)]
    record: dict[str, Any] = {"name": name, "scale": scale, **{k: _r(v) for k, v in values.items()}}
    if infinite:
        record["infinite"] = infinite
    return record


def quantities_from_draws(draws: list[Draws]) -> list[dict]:
    """Quantity records from posterior draws; moments are of log HR for HR scales, infinite where they do not
    exist (``Draws.moments`` false).
    """
    out = []
    for d in draws:
        stats: dict[str, float | None] = dict(summarise_draws(d.values))
        log_scale = d.scale in LOG_MOMENT_SCALES
        if log_scale:
            logs = np.log(np.asarray(d.values, dtype=float).ravel())
            logs = logs[np.isfinite(logs)]
            stats |= {"log_mean": float(logs.mean()), "log_sd": float(logs.std(ddof=1))}
        if not d.moments:
            stats |= dict.fromkeys(LOG_MOMENT_KEYS if log_scale else ("mean", "sd"), np.inf)
        out.append(quantity_record(d.name, d.scale, stats))
    return out


def probabilities_from_draws(draws: list[Draws]) -> list[dict]:
    """Probability records: the mean of per-draw indicators or conditional probabilities, with its MCSE."""
    return [{"name": d.name, "value": _r(d.values.mean()), "mcse": _r(mcse_mean(d.values))} for d in draws]


def exact_probability_record(name: str, value: float) -> dict:
    """A probability computed exactly: no Monte Carlo error."""
    return {"name": name, "value": _r(value), "mcse": 0.0}


def diagnostics_record(d: Diagnostics | None) -> dict:
    """The contract's diagnostics block; an exact fit has nothing to check and is ok by construction."""
    if d is None:
        return {
            "max_rhat": None,
            "min_ess_bulk": None,
            "min_ess_tail": None,
            "divergences": 0,
            "ok": True,
            "problems": [],
            "checks": [],
        }
    return {
        "max_rhat": _r(d.max_rhat),
        "min_ess_bulk": _r(d.min_ess_bulk),
        "min_ess_tail": _r(d.min_ess_tail),
        "divergences": d.divergences,
        "ok": d.ok,
        "problems": d.problems,
        "checks": [c | {"value": _r(c["value"]), "threshold": _r(c["threshold"])} for c in d.checks],
    }
