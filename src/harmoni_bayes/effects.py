"""log HR and its standard error for every row, with the route recorded in ``se_method``.

Routes, in order of preference (methods brief §a; Tierney et al. 2007; Cochrane Handbook 7.7.7.3):

1. ``ci``: from the CI at its stated level, se = (ln U - ln L) / (2 z_{1-alpha/2}).  When the CI is
   asymmetric on the log scale this is the mean of the two half-widths, as the brief recommends.
2. ``events``: from the total events D.  Var(log HR) = 1 / (D pi (1 - pi)), pi the allocation
   fraction n_E / (n_E + n_C); this is 4 / D for 1:1 (Schoenfeld).  1:1 is assumed when arm sizes
   are not reported.
3. ``maturity``: as 2 with D = maturity x (n_E + n_C) (maturity = fraction of randomised patients
   with an event; HARMONi-2 OS: 0.39 x 398 = 155 deaths, against 157 reported elsewhere).
4. ``p_value``: from an exact two-sided p, se = |ln HR| / z_{1-p/2}; a one-sided p is doubled first.
   An inequality ("<0.0001") only bounds the SE and is never used.

A row with no route keeps ``usable = False`` and says why in ``unusable_reason``; it is shown,
never silently dropped.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import stats

from .schema import REFERENCE, Schema

Z95 = stats.norm.ppf(0.975)

_P_VALUE = re.compile(r"^\s*(?P<op>[<>≤≥]=?|=)?\s*(?P<num>\d*\.?\d+(?:[eE]-?\d+)?)\s*(?P<rest>.*)$")


def parse_p_value(text: str) -> tuple[float | None, str]:
    """Parse a printed p-value into an exact two-sided p, or say why it cannot be used.

    >>> parse_p_value("0.057")
    (0.057, 'two-sided assumed')
    >>> parse_p_value("<0.0001 (one-sided)")[0] is None
    True
    """
    if not text or not text.strip():
        return None, "no p-value"
    m = _P_VALUE.match(text)
    if not m:
        return None, f"p-value {text!r} is not a number"
    if m.group("op") and m.group("op") != "=":
        return None, f"p-value {text!r} is an inequality, which only bounds the SE"
    p = float(m.group("num"))
    if not 0 < p < 1:
        return None, f"p-value {text!r} is not in (0, 1)"
    if "one" in m.group("rest").lower():
        if 2 * p >= 1:
            return None, f"one-sided p-value {text!r} doubles to 1 or more, which carries no information on the SE"
        return 2 * p, "one-sided, doubled"
    return p, "two-sided assumed"


def se_from_ci(lower: float, upper: float, level: float = 0.95) -> float:
    """SE of log HR from a (level) CI: (ln U - ln L) / (2 z)."""
    z = stats.norm.ppf(0.5 + level / 2)
    return (math.log(upper) - math.log(lower)) / (2 * z)


def ci_from_se(log_hr: float, se: float, level: float = 0.95) -> tuple[float, float]:
    """The inverse of :func:`se_from_ci`: the HR-scale CI of a log HR and its SE."""
    z = stats.norm.ppf(0.5 + level / 2)
    return math.exp(log_hr - z * se), math.exp(log_hr + z * se)


def se_from_events(events: float, n_experimental: float = np.nan, n_control: float = np.nan) -> float:
    """SE of log HR from total events: sqrt(1 / (D pi (1 - pi))), pi = allocation fraction (1:1 if unknown)."""
    if np.isfinite(n_experimental) and np.isfinite(n_control):
        pi = n_experimental / (n_experimental + n_control)
    else:
        pi = 0.5
    return math.sqrt(1.0 / (events * pi * (1 - pi)))


def derive_effects(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Add log-HR and SE columns to a validated table (see module docstring)."""
    if schema is REFERENCE:
        return _derive_reference(df)
    out = df.copy()
    records = [_row_effect(r) for r in out.itertuples(index=False)]
    for key in ("log_hr", "se", "se_method", "usable", "unusable_reason"):
        out[key] = [r[key] for r in records]
    out["usable"] = out["usable"].astype(bool)
    return out


def _row_effect(r) -> dict:
    none = {"log_hr": np.nan, "se": np.nan, "se_method": "", "usable": False}
    if r.endpoint == "ORR":
        return none | {"unusable_reason": "ORR row: a response rate, not a hazard ratio"}
    if not np.isfinite(r.hr):
        return none | {"unusable_reason": "no hazard ratio reported"}
    log_hr = math.log(r.hr)
    found = {"log_hr": log_hr, "usable": True, "unusable_reason": ""}
    if np.isfinite(r.ci_lower) and np.isfinite(r.ci_upper):
        return found | {"se": se_from_ci(r.ci_lower, r.ci_upper, r.ci_level), "se_method": "ci"}
    if np.isfinite(r.events_total):
        return found | {
            "se": se_from_events(r.events_total, r.n_experimental, r.n_control),
            "se_method": "events",
        }
    if np.isfinite(r.maturity) and np.isfinite(r.n_experimental) and np.isfinite(r.n_control):
        d = r.maturity * (r.n_experimental + r.n_control)
        return found | {"se": se_from_events(d, r.n_experimental, r.n_control), "se_method": "maturity"}
    p, why = parse_p_value(r.p_value)
    if p is not None and log_hr != 0:
        return found | {"se": abs(log_hr) / stats.norm.ppf(1 - p / 2), "se_method": "p_value"}
    reason = "no standard error: no CI, events, maturity with arm sizes, or exact p-value"
    if r.p_value:
        reason += f" ({why})"
    return none | {"log_hr": log_hr, "unusable_reason": reason}


def _derive_reference(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for ep in ("pfs", "os"):
        hr, lo, hi = out[f"{ep}_hr"], out[f"{ep}_ci_lower"], out[f"{ep}_ci_upper"]
        out[f"log_hr_{ep}"] = np.log(hr)
        out[f"se_{ep}"] = (np.log(hi) - np.log(lo)) / (2 * Z95)
    return out
