"""Load and validate evidence tables.

One data contract: every table, shipped or the user's, goes through :func:`parse_evidence_text`,
which collects *every* problem (row, column, value, reason) and raises one
:class:`~harmoni_bayes.errors.EvidenceError`.  The result is a DataFrame with

* the file's columns (numbers as floats, blanks as NaN, text as ``str``);
* ``row_id``: a stable id, ``<trial>|<endpoint>|<factor>=<level>|<disclosed>|<hash6>``;
* ``line_no``: the row's line in the file (header = line 1);
* the derived effect columns of :mod:`harmoni_bayes.effects` (``log_hr``, ``se``, ``se_method``...).

Warnings (an asymmetric CI, unknown columns) do not stop anything; they are kept in
``df.attrs["warnings"]`` as strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import EvidenceError, Problem
from .schema import REFERENCE, TRIALS, HRTriple, Schema

_NUMERIC_KINDS = {"positive", "count", "level", "fraction", "rate", "number"}
DERIVED_COLUMNS = frozenset(
    {"row_id", "line_no", "log_hr", "se", "se_method", "usable", "unusable_reason"}
    | {"log_hr_pfs", "se_pfs", "log_hr_os", "se_os"}
)


def shipped_path(name: str) -> Path:
    """Path of a CSV shipped in ``harmoni_bayes/data``."""
    return Path(str(resources.files("harmoni_bayes") / "data" / name))


def load_evidence() -> pd.DataFrame:
    """The shipped HARMONi evidence table (``data/ivonescimab_trials.csv``), validated, with effects derived."""
    return read_evidence(shipped_path("ivonescimab_trials.csv"))


def load_reference_trials() -> pd.DataFrame:
    """The shipped reference NSCLC trials with PFS and OS HRs (``data/nsclc_pfs_os_trials.csv``).

    Adds ``log_hr_pfs``, ``se_pfs``, ``log_hr_os`` and ``se_os`` (SE from the 95% CI; NaN where a CI is missing).
    """
    return read_evidence(shipped_path("nsclc_pfs_os_trials.csv"), schema=REFERENCE)


def read_evidence(path: str | Path, schema: Schema | None = None) -> pd.DataFrame:
    """Read a user's evidence CSV.  The schema is detected from the header when not given."""
    text = read_text(path)
    return parse_evidence_text(text, name=str(path), schema=schema)


def read_text(path: str | Path) -> str:
    """Read a file as UTF-8 text, turning every way it can fail into an :class:`EvidenceError`."""
    p = Path(path)
    if not p.exists():
        raise EvidenceError(f"{p}: file not found")
    if p.is_dir():
        raise EvidenceError(f"{p}: is a directory, not a CSV file")
    data = p.read_bytes()
    if not data.strip():
        raise EvidenceError(f"{p}: the file is empty")
    if b"\x00" in data[:8192]:
        raise EvidenceError(f"{p}: this is a binary file, not a CSV text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceError(
            f"{p}: not UTF-8 text (byte {exc.start} cannot be decoded); save the file as UTF-8 CSV"
        ) from None


def detect_schema(header: list[str]) -> Schema:
    return REFERENCE if "pfs_hr" in header and "endpoint" not in header else TRIALS


def split_rows(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """CSV text -> (header, [(line_no, fields)]).  Ragged rows are problems, reported all at once."""
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    problems: list[Problem] = []
    header: list[str] | None = None
    try:
        start = 1
        for fields in reader:
            if header is None:
                header = [h.strip() for h in fields]
            elif any(f.strip() for f in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise EvidenceError(f"{name}: not a readable CSV file (line {reader.line_num}: {exc})") from None
    if not header or not any(header):
        raise EvidenceError(f"{name}: no header row")
    for line, fields in rows:
        if len(fields) != len(header):
            problems.append(Problem(f"has {len(fields)} fields but the header has {len(header)}", row=line))
    if problems:
        raise EvidenceError(f"{name}: malformed CSV", problems)
    return header, rows


def parse_evidence_text(text: str, name: str = "<text>", schema: Schema | None = None) -> pd.DataFrame:
    """Validate CSV text against a schema and return the typed table (see module docstring)."""
    header, rows = split_rows(text, name)
    schema = schema or detect_schema(header)
    problems: list[Problem] = []
    warnings: list[str] = []

    missing = [c.name for c in schema.columns if c.required and c.name not in header]
    if missing:
        problems.append(Problem(f"missing required column(s): {', '.join(missing)}"))
    reserved = [h for h in header if h in DERIVED_COLUMNS]
    if reserved:
        problems.append(
            Problem(f"column(s) {', '.join(reserved)} are computed by harmoni_bayes and cannot be given in the file")
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        problems.append(Problem(f"duplicate column name(s): {', '.join(dupes)}"))
    if problems:
        raise EvidenceError(f"{name}: not a valid {schema.name} table", problems)
    unknown = [h for h in header if h not in schema.names]
    if unknown:
        warnings.append(f"unknown column(s) kept as they are: {', '.join(unknown)}")
    if not rows:
        raise EvidenceError(f"{name}: the table has a header but no data rows")

    raw = pd.DataFrame([f for _, f in rows], columns=header, dtype=str)
    for col in schema.names:  # optional columns absent from the file read as blank
        if col not in raw:
            raw[col] = ""
    raw = raw.apply(lambda s: s.str.strip())
    line_nos = [line for line, _ in rows]

    out = raw.copy()
    for col in schema.columns:
        values, col_problems = _check_column(col, raw[col.name], line_nos)
        out[col.name] = values
        problems += col_problems
    for triple in schema.triples:
        triple_problems, triple_warnings = _check_triple(triple, raw, out, line_nos)
        problems += triple_problems
        warnings += triple_warnings
    problems += _check_duplicates(raw, line_nos)
    if problems:
        problems.sort(key=lambda p: (p.row or 0, header.index(p.column) if p.column in header else -1))
        raise EvidenceError(f"{name}: {schema.name} table is not valid", problems)

    out.insert(0, "line_no", line_nos)
    out.insert(0, "row_id", [_row_id(schema, raw.iloc[i]) for i in range(len(raw))])
    from .effects import derive_effects  # effects depend on validated, typed columns

    out = derive_effects(out, schema)
    out.attrs["warnings"] = warnings
    out.attrs["source"] = name
    out.attrs["schema"] = "reference" if schema is REFERENCE else "trials"
    return out


def _check_column(col, values: pd.Series, lines: list[int]) -> tuple[pd.Series, list[Problem]]:
    problems: list[Problem] = []
    typed: list[object] = []
    for line, v in zip(lines, values, strict=True):
        if v == "":
            if col.nonblank:
                problems.append(Problem("is required but blank", line, col.name))
            typed.append(np.nan if col.kind in _NUMERIC_KINDS else "")
            continue
        if col.kind in _NUMERIC_KINDS:
            x = _to_float(v)
            reason = _numeric_problem(col.kind, x)
            if reason:
                problems.append(Problem(reason, line, col.name, v))
            typed.append(x if x is not None else np.nan)
        elif col.kind == "date":
            if not _is_iso_date(v):
                problems.append(Problem("is not a real ISO date (YYYY-MM-DD)", line, col.name, v))
            typed.append(v)
        elif col.kind == "choice" and v not in col.choices:
            problems.append(Problem(f"must be one of {', '.join(col.choices)}", line, col.name, v))
            typed.append(v)
        else:
            typed.append(v)
    dtype = float if col.kind in _NUMERIC_KINDS else object
    return pd.Series(typed, index=values.index, dtype=dtype), problems


def _to_float(v: str) -> float | None:
    try:
        x = float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _numeric_problem(kind: str, x: float | None) -> str | None:
    if x is None:
        return "is not a number"
    if kind == "positive" and x <= 0:
        return "must be positive"
    if kind == "count" and (x <= 0 or x != int(x)):
        return "must be a positive whole number"
    if kind == "level" and not 0 < x < 1:
        return "must be between 0 and 1 (e.g. 0.95)"
    if kind == "fraction" and not 0 < x <= 1:
        return "must be in (0, 1]"
    if kind == "rate" and not 0 <= x <= 1:
        return "must be in [0, 1]"
    return None


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_iso_date(v: str) -> bool:
    # fromisoformat alone would also accept week dates such as 2025-W10-6
    if not _ISO_DATE.match(v):
        return False
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        return False
    return True


def half_unit(printed: str) -> float:
    """Half a unit in the last printed digit: '0.51' -> 0.005, '1.0' -> 0.05, '2' -> 0.5."""
    s = printed.strip().lower()
    if "e" in s:
        return 0.0
    decimals = len(s.split(".", 1)[1]) if "." in s else 0
    return 0.5 * 10.0 ** (-decimals)


def _check_triple(t: HRTriple, raw: pd.DataFrame, typed: pd.DataFrame, lines: list[int]):
    """HR and CI together: both bounds or none, lower < upper, HR inside the CI up to printed rounding.

    Also warns when the CI is asymmetric on the log scale by more than rounding allows: the
    HR and CI may then come from different models (e.g. stratified HR, unstratified CI).
    """
    problems: list[Problem] = []
    warnings: list[str] = []
    for i, line in enumerate(lines):
        hr, lo, hi = (typed[c].iloc[i] for c in (t.hr, t.lower, t.upper))
        r_hr, r_lo, r_hi = (raw[c].iloc[i] for c in (t.hr, t.lower, t.upper))
        if (r_lo == "") != (r_hi == ""):
            gone = t.lower if r_lo == "" else t.upper
            problems.append(Problem("a CI needs both bounds; this one is blank", line, gone))
            continue
        if t.level and r_lo != "" and raw[t.level].iloc[i] == "":
            problems.append(Problem("is required when a CI is given", line, t.level))
        if not all(np.isfinite([hr, lo, hi])) or min(hr, lo, hi) <= 0:
            continue  # missing or already reported as a column problem
        if not lo < hi:
            problems.append(Problem(f"lower bound {r_lo} is not below upper bound {r_hi}", line, t.lower, r_lo))
            continue
        d_hr, d_lo, d_hi = half_unit(r_hr), half_unit(r_lo), half_unit(r_hi)
        if hr + d_hr < lo - d_lo or hr - d_hr > hi + d_hi:
            problems.append(Problem(f"HR {r_hr} lies outside its CI {r_lo}-{r_hi}", line, t.hr, r_hr))
            continue
        h_lo, h_hi = math.log(hr / lo), math.log(hi / hr)
        tol = d_lo / lo + 2 * d_hr / hr + d_hi / hi  # first-order rounding box of h_hi - h_lo
        if abs(h_hi - h_lo) > tol:
            warnings.append(
                f"line {line}, column '{t.hr}': CI {r_lo}-{r_hi} is asymmetric around HR {r_hr} on the log scale "
                f"(half-widths {h_lo:.3f} vs {h_hi:.3f}, rounding allows {tol:.3f}); SE is taken from the CI width"
            )
    return problems, warnings


def _check_duplicates(raw: pd.DataFrame, lines: list[int]) -> list[Problem]:
    seen: dict[tuple, int] = {}
    problems = []
    for i, line in enumerate(lines):
        key = tuple(raw.iloc[i])
        if key in seen:
            problems.append(Problem(f"exact duplicate of line {seen[key]}", line))
        else:
            seen[key] = line
    return problems


def _row_id(schema: Schema, raw_row: pd.Series) -> str:
    digest = hashlib.sha1("\x1f".join(raw_row.astype(str)).encode()).hexdigest()[:6]
    if schema is TRIALS:
        r = raw_row
        return f"{r.trial}|{r.endpoint}|{r.subgroup_factor}={r.subgroup_level}|{r.disclosed}|{digest}"
    analysis = raw_row.os_analysis.split(" ", 1)[0].strip("(),;")
    return f"{raw_row.trial}|OS {analysis}|{digest}"


def evidence_summary(df: pd.DataFrame) -> str:
    """One line: how many rows, trials and usable estimates."""
    if df.attrs.get("schema") == "reference":
        usable = int((df.se_pfs.notna() & df.se_os.notna()).sum())
        return f"{len(df)} rows, {df.trial.nunique()} comparisons, {usable} with both PFS and OS standard errors"
    usable = int(df.usable.sum())
    return f"{len(df)} rows, {df.trial.nunique()} trials, {usable} usable estimates (log HR with SE)"
