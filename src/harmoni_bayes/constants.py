"""Numbers the whole package agrees on: interval probability, the normal quantile, summary keys, rounding.

Every module that needs one of these imports it from here, so a change happens in one place.
"""

from __future__ import annotations

import math

INTERVAL_PROB = 0.95
"""Probability of every equal-tailed and highest-density interval the package reports."""

Q_LO = (1 - INTERVAL_PROB) / 2
Q_HI = 1 - Q_LO
"""Lower and upper quantiles of the equal-tailed interval (0.025 and 0.975)."""

Z_INTERVAL = 1.959963984540054
"""Standard-normal quantile Phi^-1(Q_HI): a 95% interval is estimate +- Z_INTERVAL * SE."""

STAT_KEYS = ("mean", "sd", "median", "q2.5", "q97.5", "hdi_low", "hdi_high")
"""The statistics of each quantity in ``summary.json`` (a fixed contract)."""

LOWER_KEY, UPPER_KEY = "q2.5", "q97.5"
"""The ``summary.json`` keys of the equal-tailed interval's bounds."""

SIGNIFICANT_DIGITS = 6
"""Numbers in ``summary.json`` are rounded to this many significant digits (byte-identical re-runs)."""

DEFAULT_HR_THRESHOLDS = (1.0, 0.8)
"""Default thresholds t of the headline probabilities P(HR < t): any benefit, and a 20% hazard reduction."""


def round_sig(x: float | None) -> float | None:
    """Round to :data:`SIGNIFICANT_DIGITS` significant digits; ``None`` for a missing or non-finite number.

    Parameters
    ----------
    x : float or None
        The number to round.

    Returns
    -------
    float or None
        The rounded number, or ``None`` where ``x`` is ``None``, NaN or infinite.
    """
    if x is None:
        return None
    x = float(x)
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(x) else None
