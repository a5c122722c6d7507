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
never silently dropped.  A derived SE below :data:`SE_FLOOR` is refused by the reader (a typo,
not a trial).  The routes are computed for whole columns at once, with the same floating-point
operations as the formulas above, so every number is bit-identical to the row-by-row helpers.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtri  # the standard normal quantile (scipy.stats.norm.ppf), lighter to import

from .schema import REFERENCE, Schema

Z95 = ndtri(0.975)

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
    z = ndtri(0.5 + level / 2)
    return (math.log(upper) - math.log(lower)) / (2 * z)


def ci_from_se(log_hr: float, se: float, level: float = 0.95) -> tuple[float, float]:
    """The inverse of :func:`se_from_ci`: the HR-scale CI of a log HR and its SE."""
    z = ndtri(0.5 + level / 2)
    return math.exp(log_hr - z * se), math.exp(log_hr + z * se)


def se_from_events(events: float, n_experimental: float = np.nan, n_control: float = np.nan) -> float:
    """SE of log HR from total events: sqrt(1 / (D pi (1 - pi))), pi = allocation fraction (1:1 if unknown)."""
    if np.isfinite(n_experimental) and np.isfinite(n_control):
        pi = n_experimental / (n_experimental + n_control)
    else:
        pi = 0.5
    return math.sqrt(1.0 / (events * pi * (1 - pi)))


SE_FLOOR = 0.01
"""Smallest standard error of a log HR that is believed; rows below it are refused.

With 1:1 allocation Var(log HR) = 4 / D (Schoenfeld), so an SE of 0.01 needs D = 4 / 0.01**2 = 40,000
events.  The largest randomised oncology trials report a few thousand events (SE about 0.03 or more).
A smaller SE comes from a typo (a CI of 0.5100000001-0.5100000002 gives SE 5e-11), and such a row would
pin the pooled estimate to itself whatever the other trials say.
"""


def derive_effects(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Add log-HR and SE columns to a validated table (see the module docstring for the routes).

    Parameters
    ----------
    df
        A typed evidence table (as :func:`~harmoni_bayes.evidence.read_evidence` builds it).
    schema
        The table's schema; the reference table gets ``log_hr_pfs``, ``se_pfs``, ``log_hr_os``, ``se_os``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with ``log_hr``, ``se``, ``se_method``, ``usable`` and ``unusable_reason`` added.
    """
    if schema is REFERENCE:
        return _derive_reference(df)
    out = df.copy(deep=False)  # copy-on-write: the new columns never reach df
    n = len(out)

    def num(c: str) -> np.ndarray:
        col = out[c]
        return col.to_numpy() if col.dtype == np.float64 else col.to_numpy(dtype=float, na_value=np.nan)

    hr, lo, hi, level = num("hr"), num("ci_lower"), num("ci_upper"), num("ci_level")
    events, maturity, n_e, n_c = num("events_total"), num("maturity"), num("n_experimental"), num("n_control")
    orr = (out["endpoint"] == "ORR").to_numpy(dtype=bool, na_value=False)
    has_hr = ~orr & np.isfinite(hr)
    log_hr = np.where(has_hr, math_log(hr), np.nan)

    # the first route that applies, in the order of the module docstring
    by_ci = has_hr & np.isfinite(lo) & np.isfinite(hi)
    by_events = has_hr & ~by_ci & np.isfinite(events)
    by_maturity = has_hr & ~by_ci & ~by_events & np.isfinite(maturity) & np.isfinite(n_e) & np.isfinite(n_c)
    p_text = out["p_value"] if "p_value" in out else pd.Series("", index=out.index)
    codes, distinct = pd.factorize(p_text.fillna(""))
    parsed = [parse_p_value(t) for t in distinct]
    p = np.array([np.nan if q is None else q for q, _ in parsed], dtype=float)[codes]
    by_p = has_hr & ~by_ci & ~by_events & ~by_maturity & np.isfinite(p) & (log_hr != 0)

    se = np.full(n, np.nan)
    with np.errstate(all="ignore"):
        se[by_ci] = (math_log(hi[by_ci]) - math_log(lo[by_ci])) / (2 * ndtri(0.5 + level[by_ci] / 2))
        se[by_events] = _se_from_events(events[by_events], n_e[by_events], n_c[by_events])
        d = maturity[by_maturity] * (n_e[by_maturity] + n_c[by_maturity])
        se[by_maturity] = _se_from_events(d, n_e[by_maturity], n_c[by_maturity])
        se[by_p] = np.abs(log_hr[by_p]) / ndtri(1 - p[by_p] / 2)

    usable = by_ci | by_events | by_maturity | by_p
    methods = ["", "ci", "events", "maturity", "p_value"]
    method = np.select([by_ci, by_events, by_maturity, by_p], [1, 2, 3, 4], 0)
    # reasons: 0 none, 1 ORR, 2 no HR, 3 + k no SE with the k-th distinct p-value's explanation
    no_se = "no standard error: no CI, events, maturity with arm sizes, or exact p-value"
    reasons = ["", "ORR row: a response rate, not a hazard ratio", "no hazard ratio reported"]
    reasons += [f"{no_se} ({why})" if text else no_se for text, (_, why) in zip(distinct, parsed, strict=True)]
    reason = np.select([orr, ~has_hr, usable], [1, 2, 0], 3 + codes)
    out["log_hr"] = log_hr
    out["se"] = se
    out["se_method"] = str_series(_labels(method, methods), index=out.index)
    out["usable"] = usable
    out["unusable_reason"] = str_series(_labels(reason, reasons), index=out.index)
    return out


def _labels(codes: np.ndarray, labels: list[str]) -> pa.Array:
    """``labels[codes]`` as an Arrow string array, without a Python string per row."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels, pa.large_string()))
    return dictionary.cast(pa.large_string())


def math_log(x: np.ndarray) -> np.ndarray:
    """``math.log`` of every positive finite value (NaN elsewhere).

    numpy's vectorised log can differ from ``math.log`` in the last bit; the evidence numbers (and
    the HR-in-CI decisions made on them) stay bit-identical to the row-by-row code they replace.
    """
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & (x > 0)
    if ok.any():
        distinct, inverse = np.unique(x[ok], return_inverse=True)
        out[ok] = np.array([math.log(v) for v in distinct.tolist()])[inverse]
    return out


def str_series(values: pa.ChunkedArray | pa.Array, index: pd.Index | None = None) -> pd.Series:
    """A pandas ``str`` Series on an Arrow string array, without copying it."""
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    text = pd.arrays.ArrowStringArray(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    return pd.Series(text, index=index)


def _se_from_events(events: np.ndarray, n_e: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """:func:`se_from_events` on arrays (the same operations in the same order, so the same bits)."""
    pi = np.where(np.isfinite(n_e) & np.isfinite(n_c), n_e / (n_e + n_c), 0.5)
    return np.sqrt(1.0 / (events * pi * (1 - pi)))


def se_floor_problems(df: pd.DataFrame, schema: Schema) -> list[tuple[int, str, str]]:
    """Rows whose derived SE is below :data:`SE_FLOOR`, as (row position, column to blame, reason)."""
    if schema is REFERENCE:
        checks = [("se_pfs", lambda i: ("pfs_ci_lower", "PFS CI")), ("se_os", lambda i: ("os_ci_lower", "OS CI"))]
    else:
        routes = {"ci": ("ci_lower", "CI"), "events": ("events_total", "event count")}
        routes |= {"maturity": ("maturity", "maturity"), "p_value": ("p_value", "p-value")}
        method = df["se_method"].to_numpy(dtype=object, na_value="")
        checks = [("se", lambda i: routes[method[i]])]
    out = []
    for se_col, blame in checks:
        se = df[se_col].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            low = np.flatnonzero(np.isfinite(se) & (se < SE_FLOOR))
        for i in low.tolist():
            column, what = blame(i)
            out.append(
                (
                    i,
                    column,
                    f"gives a standard error of {se[i]:.2g} for the log HR (from the {what}), below the floor "
                    f"SE_FLOOR = {SE_FLOOR} (about 40,000 events at 1:1); no trial is that precise, so a number "
                    "is probably mistyped",
                )
            )
    return out


def _derive_reference(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for ep in ("pfs", "os"):
        hr, lo, hi = out[f"{ep}_hr"], out[f"{ep}_ci_lower"], out[f"{ep}_ci_upper"]
        # A blank level means the usual 95% interval; a stated one (e.g. 0.9758) sets the normal quantile.
        level = out[f"{ep}_ci_level"].astype(float).fillna(0.95) if f"{ep}_ci_level" in out else 0.95
        out[f"log_hr_{ep}"] = np.log(hr)
        out[f"ci_level_{ep}"] = level
        out[f"se_{ep}"] = (np.log(hi) - np.log(lo)) / (2 * ndtri(0.5 + np.asarray(level, dtype=float) / 2))
    return out
