"""Formatting rules for every number a report shows (one rule, everywhere).

Estimates: 2 significant digits below 1 and 3 at or above 1 (``0.52``, ``0.0048``, ``1.06``, ``12.3``).
Probabilities: 2 decimals, or 3 where 2 would round to 0 or 1 (``0.98``, ``0.997``), and ``>0.999`` /
``<0.001`` beyond that.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "\u2013"


def finite(x: Any) -> bool:
    """True for a finite int or float (not None, NaN or infinite)."""
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def fmt_estimate(x: Any) -> str:
    """2 significant digits below 1, 3 at or above 1; thousands as integers."""
    if not finite(x):
        return DASH
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.{max(0, 2 - math.floor(math.log10(a)))}f}"
    if a >= 1e-4:
        return f"{x:.{1 - math.floor(math.log10(a))}f}"
    return f"{x:.1e}"


def fmt_probability(p: Any) -> str:
    """2 decimals; 3 where 2 would show 0.00 or 1.00; ``>0.999`` / ``<0.001`` beyond that."""
    if not finite(p):
        return DASH
    if p >= 0.9995:
        return ">0.999"
    if p <= 0.0005:
        return "<0.001" if p > 0 else "0"
    two = f"{p:.2f}"
    return two if two not in ("0.00", "1.00") else f"{p:.3f}"


def fmt_mcse(x: Any) -> str:
    """A Monte Carlo standard error; exactly 0 for an exact computation."""
    return "0" if x == 0 else fmt_estimate(x)


def text(x: Any) -> str:
    """A cell as display text: blank for None or NaN, ``%g`` for floats."""
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:g}"
    return str(x)


def hr_interval(est: float, lo: float, hi: float) -> str:
    """``0.52 (0.39\u20130.70)``: an estimate and interval formatted as everywhere in the report."""
    if not finite(est):
        return ""
    body = fmt_estimate(float(est))
    if finite(lo) and finite(hi):
        body += f" ({fmt_estimate(float(lo))}{DASH}{fmt_estimate(float(hi))})"
    return body
