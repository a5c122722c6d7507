"""Plain helpers shared by test modules (fixtures live in conftest.py)."""

import csv
import io
import tomllib
from pathlib import Path

from harmoni_bayes.evidence import shipped_path


def shipped_header_and_row() -> tuple[list[str], list[str]]:
    """The shipped HARMONi table's header and its first data row."""
    with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as fh:
        header, first, *_ = csv.reader(fh)
    return header, list(first)


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


REPO = Path(__file__).resolve().parents[1]
ALL_SPECS = sorted((REPO / "models").glob("*.toml"))


def _exact_capable(path: Path) -> bool:
    from harmoni_bayes.models import get_family

    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    if spec.get("exnex", {}).get("enabled", False):  # EXNEX has no exact engine
        return False
    return "exact" in get_family(spec.get("model", "")).capabilities


EXACT_SPECS = [p for p in ALL_SPECS if _exact_capable(p)]
"""Shipped specs the exact engine can fit (fast tests); the others need MCMC (slow tests)."""
# Every one is fitted (few draws) for the report and browser tests: the class-aware OS forecast at each of its three
# dates too (with numpyro a few-draw fit of its four blocks costs seconds of XLA compile each, not a nutpie minute).
MCMC_SPECS = [p for p in ALL_SPECS if p not in EXACT_SPECS]
"""Every shipped spec that needs MCMC, for the checks every shipped report must pass (slow)."""
MCMC_GROUP = "mcmc_results"
"""The xdist group of the slow tests that use the ``mcmc_result_dirs`` fixture (one worker fits them once)."""


def lookup(summary: dict, ref) -> float:
    """The value at ``ref`` (section, name, key) or (``diagnostics``, key) in summary.json; a sensitivity strip's
    numbers are (``strip``, row label, key).
    """
    section, *rest = ref
    if section == "diagnostics":
        return summary["diagnostics"][rest[0]]
    if section == "strip":
        label, key = rest
        return next(row for row in summary["strip"]["rows"] if row["label"] == label)[key]
    name, key = rest
    return next(item for item in summary[section] if item["name"] == name)[key]


def shows(text: str, value: float) -> bool:
    """Does the displayed ``text`` faithfully show ``value`` (to the digits displayed)?"""
    t = text.replace(",", "").strip()
    if value is None:  # a statistic that does not exist (e.g. the mean of the STE) shows as a dash
        return t == "\u2013"
    if t.startswith(">"):
        return value >= float(t[1:])
    if t.startswith("<"):
        return value <= float(t[1:])
    if "e" in t:
        return abs(float(t) - value) <= 0.051 * abs(float(t))
    decimals = len(t.split(".")[1]) if "." in t else 0
    return abs(float(t) - value) <= 0.5 * 10 ** (-decimals) + 1e-12
