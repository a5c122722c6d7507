r"""How earlier forecasts fared: score a forecast made as of one date against a readout disclosed later.

A family with the ``"forecast"`` capability declares what it forecasts (:class:`~harmoni_bayes.models.base.
Forecast`): the target trial's OS (``os_forecast``: the true OS HR ``os_hr``) or a new trial's effect
(``random_effects``: ``hr_new_trial``).  :func:`score` fits the spec as of the forecast date ``A``, finds the
readouts of that kind disclosed after ``A`` (up to ``B``), and scores the forecast against each, on the
log-HR scale.  The forecast is of a *true* log HR ``theta``; the readout ``y`` estimates it with its own
standard error ``s``, so the predictive of ``y`` is the forecast plus that error:

.. math::

    p(y) = \frac{1}{S}\sum_{d=1}^{S} \phi\!\left(\frac{y - \theta_d}{s}\right)\frac{1}{s}, \qquad
    \mathrm{PIT} = \frac{1}{S}\sum_d \Phi\!\left(\frac{y - \theta_d}{s}\right)

over the posterior draws ``theta_d``.  Reported: the PIT (the predictive percentile of the readout), whether
the readout lies in the central 50% and 95% predictive intervals (PIT within [0.25, 0.75] and
[0.025, 0.975]), and the log predictive density.  Baselines, each a normal predictive with the readout's SE
added, scored the same way:

* OS forecasts: *OS HR equals PFS HR* (the target's PFS estimate as of ``A``) and *immature OS alone* (its
  OS estimate as of ``A``, if there was one);
* a new trial: *the pooled estimate, ignoring heterogeneity* (the fixed-effect pool of the trials used).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from .config import SpecBase
from .errors import SpecError
from .evidence import load_evidence, read_evidence
from .models import get_family
from .results import Result
from .selection import select_evidence
from .specs import load_spec, with_overrides

HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class Score:
    """One forecaster scored against one readout."""

    forecaster: str
    pit: float
    in_50: bool
    in_95: bool
    log_density: float
    median_hr: float

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {k: (bool(v) if isinstance(v, bool | np.bool_) else v) for k, v in self.__dict__.items()}


@dataclass
class Readout:
    """A readout disclosed after the forecast date, and every forecaster's score against it."""

    row_id: str
    trial: str
    endpoint: str
    disclosed: str
    hr: float
    log_hr: float
    se: float
    source_kind: str
    scores: list[Score] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            **{k: v for k, v in self.__dict__.items() if k != "scores"},
            "scores": [s.to_dict() for s in self.scores],
        }


@dataclass
class Scorecard:
    """The forecast of a spec as of ``forecast_as_of``, scored against the readouts up to ``outcome_as_of``."""

    spec: str
    title: str
    model: str
    quantity: str
    forecast_as_of: str
    outcome_as_of: str
    readouts: list[Readout]

    def table(self) -> pd.DataFrame:
        """One row per (readout, forecaster)."""
        rows = [
            {"readout": r.row_id, "trial": r.trial, "observed_hr": r.hr, "se": r.se, **s.to_dict()}
            for r in self.readouts
            for s in r.scores
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "spec": self.spec,
            "title": self.title,
            "model": self.model,
            "quantity": self.quantity,
            "forecast_as_of": self.forecast_as_of,
            "outcome_as_of": self.outcome_as_of,
            "readouts": [r.to_dict() for r in self.readouts],
        }


def score_draws(name: str, theta: np.ndarray, y: float, s: float) -> Score:
    """Score draws ``theta`` of a true log HR against a readout ``y`` with SE ``s`` (see the module docstring)."""
    theta = np.asarray(theta, dtype=float).ravel()
    theta = theta[np.isfinite(theta)]
    z = (y - theta) / s
    pit = float(special.ndtr(z).mean())
    log_dens = float(np.logaddexp.reduce(-0.5 * z**2) - np.log(theta.size) - np.log(s) - HALF_LOG_2PI)
    return Score(name, pit, 0.25 <= pit <= 0.75, 0.025 <= pit <= 0.975, log_dens, float(np.exp(np.median(theta))))


def score_normal(name: str, mean: float, sd: float, y: float, s: float) -> Score:
    """Score a normal forecast N(mean, sd^2) of a true log HR against ``y`` with SE ``s``."""
    total = float(np.hypot(sd, s))
    pit = float(stats.norm.cdf(y, mean, total))
    return Score(
        name,
        pit,
        0.25 <= pit <= 0.75,
        0.025 <= pit <= 0.975,
        float(stats.norm.logpdf(y, mean, total)),
        float(np.exp(mean)),
    )


def score(
    spec: SpecBase | str | Path,
    forecast_as_of: Any,
    *,
    outcome_as_of: Any = None,
    evidence: str | Path | pd.DataFrame | None = None,
    draws: int | None = None,
    result: Result | None = None,
) -> Scorecard:
    """Fit ``spec`` as of ``forecast_as_of`` and score its forecast against every later readout.

    ``outcome_as_of`` (default: today) bounds the readouts.  ``result`` may pass a fit already made as of
    ``forecast_as_of``.  A spec whose family forecasts nothing, or no readout of the forecast kind after the
    forecast date, is a :class:`SpecError`.
    """
    from .run import run_spec

    spec = load_spec(spec) if isinstance(spec, str | Path) else spec
    family = get_family(spec.model)
    if "forecast" not in family.capabilities or family.forecast is None:
        raise SpecError(f"model {spec.model!r} makes no forecast that a later readout could score")
    spec_a = with_overrides(spec, as_of=forecast_as_of, draws=draws)
    assert spec_a.as_of is not None
    a = spec_a.as_of.isoformat()
    b = _date(outcome_as_of) if outcome_as_of is not None else dt.date.today().isoformat()
    if b <= a:
        raise SpecError(f"the outcome date {b} must come after the forecast date {a}")
    table = _table(spec, evidence)
    readouts = _readouts(family.forecast.outcome, spec_a, table, a, b)
    if result is None:
        method = "exact" if "exact" in family.capabilities else spec_a.method
        result = run_spec(spec_a, evidence=table, method=method)
    theta = np.log(np.asarray(result.idata.posterior[family.forecast.quantity].values, dtype=float))
    used = result.evidence_used
    trials_used = used[used["table"] == "trials"] if "table" in used.columns else used
    for r in readouts:
        r.scores.append(score_draws("model", theta, r.log_hr, r.se))
        r.scores += _baselines(family.forecast.outcome, trials_used, r)
    return Scorecard(spec.name, str(spec.title), spec.model, family.forecast.quantity, a, b, readouts)


def _date(x: Any) -> str:
    try:
        return dt.date.fromisoformat(str(x)).isoformat()
    except ValueError:
        raise SpecError(f"date {x!r} is not a real ISO date (YYYY-MM-DD)") from None


def _table(spec: SpecBase, evidence: Any) -> pd.DataFrame:
    if isinstance(evidence, pd.DataFrame):
        return evidence
    if evidence is not None:
        return read_evidence(evidence)
    ev = getattr(spec, "evidence", None)
    return read_evidence(ev.file) if ev is not None and ev.file else load_evidence()


def _readouts(kind: str, spec: SpecBase, table: pd.DataFrame, a: str, b: str) -> list[Readout]:
    ev = getattr(spec, "evidence", None)
    if ev is None:
        raise SpecError(f"{spec.name}: a forecast needs an [evidence] section naming its trials")
    if kind == "target_os":
        sel = select_evidence(table, as_of=b, trials=ev.trials, endpoint="OS", subgroup_factor="overall")
    else:
        sel = select_evidence(table, as_of=b, endpoint=ev.endpoint, subgroup_factor="overall")
        sel.used = sel.used[~sel.used.trial.isin(ev.trials)]
    later = sel.used[sel.used.disclosed > a]
    if later.empty:
        what = "OS readout of " + ", ".join(ev.trials) if kind == "target_os" else f"new trial's {ev.endpoint} readout"
        raise SpecError(f"{spec.name}: no {what} was disclosed after {a} (up to {b}); nothing to score yet")
    return [
        Readout(r.row_id, r.trial, r.endpoint, r.disclosed, float(r.hr), float(r.log_hr), float(r.se), r.source_kind)
        for r in later.itertuples()
    ]


def _baselines(kind: str, used: pd.DataFrame, r: Readout) -> list:
    out = []
    if kind == "target_os":
        for endpoint, name in (("PFS", "OS HR equals PFS HR"), ("OS", "immature OS alone")):
            rows = used[used.endpoint == endpoint]
            if len(rows):
                out.append(score_normal(name, float(rows.log_hr.iloc[0]), float(rows.se.iloc[0]), r.log_hr, r.se))
    else:
        w = 1.0 / used.se.to_numpy(float) ** 2
        pooled = float((w * used.log_hr.to_numpy(float)).sum() / w.sum())
        out.append(
            score_normal("pooled estimate, ignoring heterogeneity", pooled, float(w.sum() ** -0.5), r.log_hr, r.se)
        )
    return out


__all__ = ["Readout", "Score", "Scorecard", "score", "score_draws", "score_normal"]
