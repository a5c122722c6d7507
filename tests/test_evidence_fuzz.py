"""Fuzzing the reader: one field of a valid row is damaged at a time.

Each time the reader must either refuse the table with a clean EvidenceError that names the damaged
row (its line) and column, or accept it with numbers that are exactly what the cell says.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from harmoni_bayes import evidence
from harmoni_bayes.errors import EvidenceError
from harmoni_bayes.evidence import parse_evidence_text, shipped_path
from harmoni_bayes.schema import TRIALS
from helpers import csv_text

with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as _fh:
    HEADER, *ROWS = list(csv.reader(_fh))

NUMERIC = {c.name for c in TRIALS.columns if c.kind in {"positive", "count", "level", "fraction", "rate", "number"}}
# A damaged cell may be reported on a column checked together with it.
GROUPS = [
    {"hr", "ci_lower", "ci_upper", "ci_level", "events_total", "maturity", "n_experimental", "n_control", "p_value"},
    {"disclosed", "data_cutoff"},
]
PLAIN = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff"]


def related(column: str) -> set[str]:
    return next((g for g in GROUPS if column in g), {column})


@st.composite
def damaged(draw, value: str) -> str:
    """One way a cell gets damaged by hand, by a spreadsheet or by copy and paste."""
    kind = draw(
        st.sampled_from(
            [
                "underscore",
                "comma",
                "blank",
                "huge",
                "non_finite",
                "percent",
                "sign",
                "padding",
                "invisible",
                "bad_date",
                "number",
                "text",
            ]
        )
    )
    event(kind)
    at = draw(st.integers(0, len(value)))
    if kind == "underscore":
        return value[:at] + "_" + value[at:] if value else "1_0"
    if kind == "comma":
        return value.replace(".", ",") if "." in value else value[:at] + "," + value[at:]
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "  \t"]))
    if kind == "huge":
        return draw(
            st.sampled_from(["1e400", "9" * 400, "1e308", "-1e400", "1e-400", "123456789012345678901234567890"])
        )
    if kind == "non_finite":
        return draw(st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "N/A", "NA", "-", "?", "0x1A"]))
    if kind == "percent":
        return value + "%"
    if kind == "sign":
        return draw(st.sampled_from(["+", "-", "--", "+-"])) + value
    if kind == "padding":
        return draw(st.sampled_from([" ", "\t", "  "])) + value + draw(st.sampled_from(["", " ", "\t "]))
    if kind == "invisible":
        return value[:at] + draw(st.sampled_from(INVISIBLE)) + value[at:]
    if kind == "bad_date":
        return draw(
            st.sampled_from(
                ["2025-02-30", "2025/03/08", "20250308", "2025-W10-6", "\uff12025-03-08", "2099-01-01", "1900-01-01"]
            )
        )
    if kind == "number":
        x = draw(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
        return draw(st.sampled_from([f"{x}", f"{x:.2f}", f"{x:g}", f"{x:e}", f"{abs(x):.3f}", str(int(x))]))
    return draw(st.text(alphabet=st.sampled_from(list("0123456789.,-+eE_% abc\"'\n")), max_size=8))


@st.composite
def one_damaged_table(draw):
    base = draw(st.integers(0, len(ROWS) - 2))
    row = list(ROWS[base])
    if draw(st.booleans()) and row[HEADER.index("ci_lower")]:
        column = "ci_lower"  # swapped CI bounds
        lo, hi = HEADER.index("ci_lower"), HEADER.index("ci_upper")
        row[lo], row[hi] = row[hi], row[lo]
        event("swapped_ci")
    else:
        column = draw(st.sampled_from(HEADER))
        row[HEADER.index(column)] = draw(damaged(row[HEADER.index(column)]))
    # the last shipped row first (line 2), then the damaged one (line 3): never a duplicate of each other
    return column, row, csv_text(HEADER, [ROWS[-1], row])


def check_outcome(column: str, row: list[str], text: str) -> None:
    try:
        df = parse_evidence_text(text)
    except EvidenceError as exc:
        assert exc.problems, exc
        for p in exc.problems:
            assert p.row == 3, (column, row[HEADER.index(column)], exc)
            assert p.column in related(column), (column, row[HEADER.index(column)], exc)
        assert "Traceback" not in str(exc)
        event("refused")
        return
    event("accepted")
    got = df.iloc[1]
    assert got.line_no == 3
    for name, written in zip(HEADER, row, strict=True):
        cell = written.strip()
        if name in NUMERIC:
            if cell == "":
                assert np.isnan(got[name]), (name, written)
            else:
                assert PLAIN.fullmatch(cell), (name, written)
                assert got[name] == float(cell), (name, written, got[name])
        else:
            assert got[name] == cell, (name, written, got[name])


@settings(deadline=None, max_examples=150)
@given(case=one_damaged_table())
def test_one_damaged_cell_is_refused_on_its_line_and_column_or_read_exactly(case):
    column, row, text = case
    check_outcome(column, row, text)


@settings(deadline=None, max_examples=40)
@given(case=one_damaged_table())
def test_the_same_holds_when_values_come_from_pyarrow(case):
    column, row, text = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evidence, "_SMALL_TABLE", -1)  # the PyArrow value reader of large tables, on a small one
        check_outcome(column, row, text)


# --------------------------------------------------------------------------- the two CSV readers agree

_CELL = st.text(alphabet=st.sampled_from(list('ab é,"\n\r\t ')), max_size=6)


@settings(deadline=None, max_examples=150)
@given(
    rows=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=1, max_size=6),
    quoting=st.sampled_from(["writer", "naive", "all"]),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_pyarrow_values_equal_the_csv_modules(rows, quoting, eol):
    """Whatever the quoting, the values used are the csv module's (PyArrow's only when they agree)."""
    if quoting == "naive":  # no quoting at all: commas, quotes and line breaks fall where they may
        text = eol.join([",".join(["a", "b", "c"]), *(",".join(r) for r in rows)]) + eol
    else:
        buf = io.StringIO()
        mode = csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL
        writer = csv.writer(buf, lineterminator=eol, quoting=mode)
        writer.writerow(["a", "b", "c"])
        writer.writerows(rows)
        text = buf.getvalue()
    source = evidence._TextSource(text)
    with source.text() as stream:
        reader = csv.reader(stream)
        try:
            header = evidence.read_header(reader, "t")
            scan = evidence._scan_rows(reader, header, "t")
        except EvidenceError:
            return
    if scan.ragged or not len(scan.lines):
        event("ragged or empty: refused before values are read")
        return
    expected = [c.to_pylist() for c in evidence._columns_of(scan.rows, 3)]
    fell_back = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evidence, "_fallback", lambda *a: fell_back.append(1) or evidence._columns_of(scan.rows, 3))
        got = [c.to_pylist() for c in evidence._values(source, scan)]
    event("pyarrow disagreed: csv values used" if fell_back else "pyarrow values used")
    assert got == expected
