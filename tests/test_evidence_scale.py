"""Large tables take their values from PyArrow: the result must be the one the csv module gives."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harmoni_bayes import evidence
from harmoni_bayes.append import append_evidence
from harmoni_bayes.errors import EvidenceError
from harmoni_bayes.evidence import read_evidence, shipped_path

N = 2500  # above evidence._SMALL_TABLE: the PyArrow reader is used


@pytest.fixture(scope="module")
def shipped():
    with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


def big_rows(shipped, n=N):
    header, rows = shipped
    trial, note = header.index("trial"), header.index("note")
    out = []
    for i in range(n):
        row = list(rows[i % len(rows)])
        row[trial] = f"{row[trial]}-{i // len(rows)}"
        if i % 7 == 0:
            row[note] = f'multi-line, "quoted"\nnote {i}'  # records spanning lines shift line numbers
        if i % 11 == 0:
            row[note] = f"  padded {i}\t"
        out.append(row)
    return out


def write(path, header, rows, blank_every=0):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for i, row in enumerate(rows):
            writer.writerow(row)
            if blank_every and i % blank_every == 0:
                fh.write("\n" if i % 2 else " , ,\n")  # a blank line, or a record of blank cells
    return path


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        if a[c].dtype.kind == "f":
            assert np.array_equal(a[c].to_numpy(), b[c].to_numpy(), equal_nan=True), c
        else:
            assert a[c].tolist() == b[c].tolist(), c
    assert a.attrs == b.attrs


@pytest.fixture
def via_csv_module(monkeypatch):
    """Read the values with the csv module whatever the size (the small-table path)."""

    def read(path):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(evidence, "_SMALL_TABLE", 10**9)
            return read_evidence(path)

    return read


def test_a_large_table_reads_the_same_through_pyarrow(shipped, tmp_path, via_csv_module):
    path = write(tmp_path / "big.csv", shipped[0], big_rows(shipped), blank_every=13)
    fast = read_evidence(path)
    assert len(fast) == N
    assert_same(fast, via_csv_module(path))
    # line numbers count the blank lines and the lines inside multi-line cells
    assert fast.line_no.tolist() == read_evidence_lines(path)
    assert fast.note.iloc[11] == "padded 11"


def test_problems_in_a_large_table_name_their_lines(shipped, tmp_path, via_csv_module):
    header, _ = shipped
    rows = big_rows(shipped)
    rows[1500][header.index("hr")] = "0,5"
    rows[2100] = list(rows[2000])  # an exact duplicate
    path = write(tmp_path / "bad.csv", header, rows, blank_every=13)
    with pytest.raises(EvidenceError) as fast:
        read_evidence(path)
    with pytest.raises(EvidenceError) as slow:
        via_csv_module(path)
    assert fast.value.problems == slow.value.problems
    (hr,) = [p for p in fast.value.problems if p.column == "hr"]
    (dup,) = [p for p in fast.value.problems if "duplicate" in p.reason]
    lines = read_evidence_lines(path)
    assert hr.row == lines[1500] and dup.row == lines[2100] and f"line {lines[2000]}" in dup.reason


def read_evidence_lines(path) -> list[int]:
    """The first line of every non-blank record, by the csv module."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        out, start = [], 2
        for fields in reader:
            if any(f.strip() for f in fields):
                out.append(start)
            start = reader.line_num + 1
    return out


def test_when_pyarrow_cannot_read_the_csv_modules_values_are_used(shipped, tmp_path, via_csv_module, monkeypatch):
    path = write(tmp_path / "big.csv", shipped[0], big_rows(shipped))
    expected = via_csv_module(path)

    def refuse(*args, **kwargs):
        raise pa.ArrowInvalid("CSV parse error")

    monkeypatch.setattr(evidence.pcsv, "open_csv", refuse)
    assert_same(read_evidence(path), expected)


def test_when_pyarrow_reads_other_rows_the_csv_modules_values_are_used(shipped, tmp_path, via_csv_module, monkeypatch):
    path = write(tmp_path / "big.csv", shipped[0], big_rows(shipped))
    expected = via_csv_module(path)
    real = evidence.pcsv.open_csv

    class Shifted:
        """A reader that loses one row, as a reader splitting a quoted cell differently would."""

        def __init__(self, *a, **k):
            self.table = real(*a, **k).read_all()

        def read_all(self):
            return pa.concat_tables([self.table.slice(0, 100), self.table.slice(101)])

    monkeypatch.setattr(evidence.pcsv, "open_csv", Shifted)
    assert_same(read_evidence(path), expected)


def test_adding_to_a_large_target_validates_through_pyarrow(shipped, tmp_path):
    header, _ = shipped
    rows = big_rows(shipped)
    target = write(tmp_path / "target.csv", header, rows[:N])
    new = write(tmp_path / "new.csv", header, [[*r[:-1], "added"] for r in rows[:2]])
    before = target.read_bytes()
    assert append_evidence(new, target) == 2
    assert target.read_bytes().startswith(before)
    df = read_evidence(target)
    assert len(df) == N + 2 and df.note.tolist()[-2:] == ["added", "added"]
    # and a duplicate of a row deep in the target is found
    again = write(tmp_path / "again.csv", header, [rows[N - 1]])
    with pytest.raises(EvidenceError, match="duplicate"):
        append_evidence(again, target)
