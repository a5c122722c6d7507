"""Validation of evidence tables: every problem with row, column, value and reason, in one EvidenceError."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmoni_bayes.effects import ci_from_se, se_from_ci
from harmoni_bayes.errors import EvidenceError, Problem
from harmoni_bayes.evidence import (
    half_unit,
    load_evidence,
    load_reference_trials,
    parse_evidence_text,
    read_evidence,
)
from helpers import csv_text, shipped_header_and_row

ROW_ID = re.compile(r"^[^|]+\|(PFS|OS|ORR)\|[^|]+=[^|]+\|\d{4}-\d{2}-\d{2}\|[0-9a-f]{6}$")


def problems_of(path) -> list[Problem]:
    with pytest.raises(EvidenceError) as info:
        read_evidence(path)
    assert info.value.problems, "an EvidenceError must list its problems"
    return info.value.problems


def only_problem(path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


# --------------------------------------------------------------------------- shipped data


def test_shipped_trials_table_loads_without_errors():
    df = load_evidence()
    assert len(df) >= 29
    assert df.attrs["schema"] == "trials"
    assert list(df.line_no) == list(range(2, len(df) + 2))
    assert df.row_id.is_unique
    assert all(ROW_ID.match(rid) for rid in df.row_id), list(df.row_id)
    assert not any("asymmetric" in w for w in df.attrs["warnings"])


def test_shipped_reference_table_loads_and_warns_about_choice01_os():
    df = load_reference_trials()
    assert df.attrs["schema"] == "reference"
    assert len(df) >= 58
    asym = [w for w in df.attrs["warnings"] if "asymmetric" in w]
    assert len(asym) == 1, df.attrs["warnings"]
    assert "0.57-0.93" in asym[0] and "0.69" in asym[0] and "os_hr" in asym[0]
    row = df[(df.trial == "CHOICE-01") & df.os_analysis.str.startswith("final")].iloc[0]
    # SE from the CI width (mean of the two log half-widths), not from either half alone
    assert row.se_os == pytest.approx((math.log(0.93) - math.log(0.57)) / (2 * 1.959963985), rel=1e-9)
    assert row.log_hr_os == pytest.approx(math.log(0.69))


def test_a_valid_row_has_no_problems(make_row, write_csv):
    df = read_evidence(write_csv([make_row()]))
    assert len(df) == 1
    assert df.line_no.tolist() == [2]
    assert df.hr.iloc[0] == 0.51
    assert df.attrs["warnings"] == []


# --------------------------------------------------------------------------- file-level problems


def test_missing_required_columns_are_all_named(trials_table, make_row, write_csv):
    header = list(trials_table[0])
    drop = {header.index("hr"), header.index("source_kind")}
    row = make_row()
    path = write_csv(
        [[v for i, v in enumerate(row) if i not in drop]],
        header=[h for i, h in enumerate(header) if i not in drop],
    )
    p = only_problem(path)
    assert p.row is None
    assert "missing required column" in p.reason
    assert "hr" in p.reason.split(": ", 1)[1].split(", ")
    assert "source_kind" in p.reason


def test_missing_required_column_of_reference_table(reference_table, write_csv):
    header, rows = reference_table
    i = header.index("os_ci_upper")
    path = write_csv([r[:i] + r[i + 1 :] for r in rows[:2]], header=header[:i] + header[i + 1 :])
    p = only_problem(path)
    assert "os_ci_upper" in p.reason and p.row is None


def test_header_without_rows_is_an_error(write_csv):
    with pytest.raises(EvidenceError, match="no data rows"):
        read_evidence(write_csv([]))


def test_ragged_row_is_reported_with_its_line(make_row, write_csv):
    path = write_csv([make_row(), make_row(1)[:-3]])
    p = only_problem(path)
    assert p.row == 3 and "fields" in p.reason


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        ("trial,hr\nHARMONi-2,0.51\n".encode("utf-16"), "binary|UTF-8"),
        ("trial,note\nHARMONi-2,caf\u00e9\n".encode("latin-1"), "UTF-8"),
    ],
    ids=["empty", "blank", "binary", "utf16", "latin1"],
)
def test_unreadable_files_are_evidence_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(EvidenceError, match=match):
        read_evidence(path)


def test_missing_file_and_directory_are_evidence_errors(tmp_path):
    with pytest.raises(EvidenceError, match="not found"):
        read_evidence(tmp_path / "nope.csv")
    with pytest.raises(EvidenceError, match="directory"):
        read_evidence(tmp_path)


def test_utf8_bom_is_accepted(make_row, write_csv):
    df = read_evidence(write_csv([make_row()], encoding="utf-8-sig"))
    assert "trial" in df.columns and df.trial.iloc[0] == "HARMONi-2"


# --------------------------------------------------------------------------- one bad cell

BAD_CELLS = [
    # (column, value, words expected in the reason)
    ("hr", "abc", "not a number"),
    ("hr", "nan", "not a number"),
    ("hr", "-0.51", "positive"),
    ("hr", "0", "positive"),
    ("ci_lower", "-0.38", "positive"),
    ("ci_upper", "0", "positive"),
    ("ci_upper", "0,69", "not a number"),
    ("ci_level", "95", "between 0 and 1"),
    ("ci_level", "1", "between 0 and 1"),
    ("ci_level", "0", "between 0 and 1"),
    ("disclosed", "2025-02-30", "ISO date"),
    ("disclosed", "2025/03/08", "ISO date"),
    ("disclosed", "08-03-2025", "ISO date"),
    ("disclosed", "March 2025", "ISO date"),
    ("disclosed", "20250308", "ISO date"),
    ("data_cutoff", "2024-13-01", "ISO date"),
    ("endpoint", "DFS", "one of"),
    ("endpoint", "pfs", "one of"),
    ("analysis_kind", "topline", "one of"),
    ("source_kind", "blog", "one of"),
    ("events_total", "12.5", "whole number"),
    ("events_total", "0", "whole number"),
    ("events_total", "-40", "whole number"),
    ("n_experimental", "198.5", "whole number"),
    ("maturity", "0", "(0, 1]"),
    ("maturity", "1.2", "(0, 1]"),
    ("maturity", "39", "(0, 1]"),
    ("rate_experimental", "50", "[0, 1]"),
    ("median_control", "-5.8", "positive"),
]


@pytest.mark.parametrize(("column", "value", "words"), BAD_CELLS, ids=[f"{c}={v}" for c, v, _ in BAD_CELLS])
def test_one_bad_cell_gives_one_problem_with_row_column_value(make_row, write_csv, column, value, words):
    path = write_csv([make_row(1), make_row(**{column: value})])
    p = only_problem(path)
    assert (p.row, p.column, p.value) == (3, column, value)
    assert words in p.reason


def test_week_date_is_not_a_yyyy_mm_dd_date(make_row, write_csv):
    # '2025-W10-6' is 10 characters and date.fromisoformat accepts it in Python 3.11, but the schema
    # promises YYYY-MM-DD, and selection compares dates as strings ('2025-W..' sorts after every 2025-MM-DD).
    p = only_problem(write_csv([make_row(disclosed="2025-W10-6")]))
    assert (p.row, p.column, p.value) == (2, "disclosed", "2025-W10-6")


@pytest.mark.parametrize("column", ["trial", "endpoint", "disclosed", "subgroup_factor", "source", "source_kind"])
def test_blank_nonblank_column_is_a_problem(make_row, write_csv, column):
    p = only_problem(write_csv([make_row(**{column: ""})]))
    assert (p.row, p.column) == (2, column)
    assert "blank" in p.reason


# --------------------------------------------------------------------------- HR and CI together


def test_swapped_ci_bounds(make_row, write_csv):
    p = only_problem(write_csv([make_row(ci_lower="0.69", ci_upper="0.38")]))
    assert (p.row, p.column, p.value) == (2, "ci_lower", "0.69")
    assert "not below" in p.reason and "0.38" in p.reason


def test_equal_ci_bounds(make_row, write_csv):
    p = only_problem(write_csv([make_row(hr="0.51", ci_lower="0.51", ci_upper="0.51")]))
    assert p.column == "ci_lower" and "not below" in p.reason


@pytest.mark.parametrize(
    ("hr", "lo", "hi"),
    [("0.30", "0.38", "0.69"), ("0.79", "0.81", "0.99"), ("1.01", "0.81", "0.99"), ("0.800", "0.810", "0.990")],
)
def test_hr_outside_its_ci_beyond_rounding_is_an_error(make_row, write_csv, hr, lo, hi):
    p = only_problem(write_csv([make_row(hr=hr, ci_lower=lo, ci_upper=hi)]))
    assert (p.row, p.column, p.value) == (2, "hr", hr)
    assert "outside" in p.reason and f"{lo}-{hi}" in p.reason


@pytest.mark.parametrize(
    ("hr", "lo", "hi"),
    [("0.80", "0.81", "0.99"), ("1.00", "0.81", "0.99"), ("0.8", "0.81", "0.99"), ("0.805", "0.81", "0.99")],
)
def test_hr_just_outside_its_ci_by_rounding_is_not_an_error(make_row, write_csv, hr, lo, hi):
    df = read_evidence(write_csv([make_row(hr=hr, ci_lower=lo, ci_upper=hi)]))
    assert df.hr.iloc[0] == float(hr)
    assert df.se.iloc[0] == pytest.approx(se_from_ci(float(lo), float(hi)))


@pytest.mark.parametrize(
    ("printed", "half"), [("0.51", 0.005), ("1.0", 0.05), ("2", 0.5), ("0.777", 0.0005), (" 0.80 ", 0.005)]
)
def test_half_unit_of_printed_digits(printed, half):
    assert half_unit(printed) == pytest.approx(half)


def test_a_ci_needs_both_bounds(make_row, write_csv):
    p = only_problem(write_csv([make_row(ci_upper="")]))
    assert (p.row, p.column) == (2, "ci_upper")
    assert "both bounds" in p.reason


def test_ci_level_is_required_with_a_ci(make_row, write_csv):
    p = only_problem(write_csv([make_row(ci_level="")]))
    assert (p.row, p.column) == (2, "ci_level")


def test_asymmetric_ci_is_a_warning_not_an_error(make_row, write_csv):
    df = read_evidence(write_csv([make_row(hr="0.69", ci_lower="0.57", ci_upper="0.93")]))
    warnings = df.attrs["warnings"]
    assert len(warnings) == 1 and "asymmetric" in warnings[0] and "line 2" in warnings[0]
    assert df.usable.iloc[0]
    assert df.se.iloc[0] == pytest.approx(se_from_ci(0.57, 0.93))


def test_symmetric_ci_gives_no_warning(make_row, write_csv):
    df = read_evidence(write_csv([make_row(hr="0.51", ci_lower="0.38", ci_upper="0.69")]))
    assert df.attrs["warnings"] == []


@settings(max_examples=60, deadline=None)
@given(
    hr=st.floats(0.3, 3.0),
    se=st.floats(0.05, 0.5),
    level=st.sampled_from([0.90, 0.95, 0.99]),
    decimals=st.sampled_from([2, 3]),
)
def test_printed_symmetric_cis_always_validate_without_warning(hr, se, level, decimals):
    """An HR and CI computed from (log HR, SE) and printed to 2-3 decimals is valid and not 'asymmetric'."""
    lo, hi = ci_from_se(math.log(hr), se, level)
    cells = {k: f"{v:.{decimals}f}" for k, v in {"hr": hr, "ci_lower": lo, "ci_upper": hi}.items()}
    cells["ci_level"] = f"{level:.2f}"
    header, row = shipped_header_and_row()
    for k, v in cells.items():
        row[header.index(k)] = v
    df = parse_evidence_text(csv_text(header, [row]))
    assert df.attrs["warnings"] == []
    assert df.log_hr.iloc[0] == pytest.approx(math.log(float(cells["hr"])))
    assert df.se.iloc[0] == pytest.approx(se_from_ci(float(cells["ci_lower"]), float(cells["ci_upper"]), level))
    # printing moves each bound by at most half a unit: bound the SE error by that
    unit = 0.5 * 10.0**-decimals
    z = (math.log(hi) - math.log(lo)) / (2 * se)
    slack = unit * (1 / float(cells["ci_lower"]) + 1 / float(cells["ci_upper"])) / (2 * z)
    assert abs(df.se.iloc[0] - se) <= 1.1 * slack + 1e-12


# --------------------------------------------------------------------------- rows, duplicates, many problems


def test_exact_duplicate_row(make_row, write_csv):
    path = write_csv([make_row(), make_row(1), make_row()])
    p = only_problem(path)
    assert p.row == 4 and "duplicate" in p.reason and "line 2" in p.reason


def test_rows_differing_in_one_cell_are_not_duplicates(make_row, write_csv):
    df = read_evidence(write_csv([make_row(), make_row(note="re-checked")]))
    assert len(df) == 2 and df.row_id.is_unique


def test_several_problems_are_all_listed_at_once(make_row, write_csv):
    path = write_csv(
        [
            make_row(hr="-0.51"),  # line 2
            make_row(1, disclosed="2025-02-30", endpoint="DFS"),  # line 3, two problems
            make_row(2, events_total="12.5"),  # line 4
            make_row(3, ci_lower="0.74", ci_upper="0.31"),  # line 5
            make_row(4, hr="0.20"),  # line 6: HR outside 0.36-0.82
            make_row(5, maturity="1.5", ci_level="95"),  # line 7, two problems
            make_row(1),  # line 8
            make_row(1),  # line 9: duplicate of line 8
        ]
    )
    problems = problems_of(path)
    found = {(p.row, p.column) for p in problems}
    assert found == {
        (2, "hr"),
        (3, "endpoint"),
        (3, "disclosed"),
        (4, "events_total"),
        (5, "ci_lower"),
        (6, "hr"),
        (7, "ci_level"),
        (7, "maturity"),
        (9, None),
    }
    assert [p.row for p in problems] == sorted(p.row for p in problems)
    values = {(p.row, p.column): p.value for p in problems}
    assert values[(3, "disclosed")] == "2025-02-30"
    assert values[(4, "events_total")] == "12.5"
    # the error message lists every problem too
    with pytest.raises(EvidenceError) as info:
        read_evidence(path)
    msg = str(info.value)
    assert "9 problems" in msg
    for p in problems:
        assert str(p) in msg


def test_problem_rows_are_file_lines_even_with_a_multiline_cell(make_row, write_csv):
    path = write_csv([make_row(note="first line\nsecond line"), make_row(1, hr="abc")])
    # the first record spans lines 2-3, so the bad record starts on line 4
    assert path.read_text().count("\n") == 4
    p = only_problem(path)
    assert (p.row, p.column, p.value) == (4, "hr", "abc")


def test_blank_lines_are_skipped_but_counted(make_row, trials_table, tmp_path):
    header = trials_table[0]
    text = csv_text(header, [make_row()]) + "\n" + csv_text(header, [make_row(1, hr="x")]).split("\n", 1)[1]
    path = tmp_path / "gaps.csv"
    path.write_text(text)
    p = only_problem(path)
    assert (p.row, p.value) == (4, "x")


def test_problem_str_names_line_column_and_value():
    s = str(Problem("must be positive", 7, "hr", "-0.5"))
    assert "line 7" in s and "'hr'" in s and "-0.5" in s and "must be positive" in s


# --------------------------------------------------------------------------- extra columns, ids


def test_unknown_extra_column_is_kept_with_a_warning(trials_table, make_row, write_csv):
    header = [*trials_table[0], "reviewer"]
    df = read_evidence(write_csv([[*make_row(), "AB"], [*make_row(1), ""]], header=header))
    assert df.reviewer.tolist() == ["AB", ""]
    assert any("reviewer" in w and "unknown column" in w for w in df.attrs["warnings"])


@pytest.mark.parametrize("extra", ["row_id", "line_no"])
def test_extra_column_named_like_a_derived_column_does_not_crash(trials_table, make_row, write_csv, extra):
    # e.g. a table saved from load_evidence().to_csv(): the validator must answer with a warning
    # (column kept or replaced) or an EvidenceError, never a bare ValueError from pandas.
    header = [*trials_table[0], extra]
    path = write_csv([[*make_row(), "x"]], header=header)
    try:
        df = read_evidence(path)
    except EvidenceError as exc:
        assert extra in str(exc)
    else:
        assert any(extra in w for w in df.attrs["warnings"])


def test_optional_columns_may_be_absent(trials_table, make_row, write_csv):
    header = trials_table[0]
    keep = [i for i, h in enumerate(header) if h not in {"note", "registry_id", "median_control"}]
    row = make_row()
    df = read_evidence(write_csv([[row[i] for i in keep]], header=[header[i] for i in keep]))
    assert df.se.iloc[0] == pytest.approx(se_from_ci(0.38, 0.69))


def test_row_ids_are_stable_when_rows_are_appended(make_row, write_csv, tmp_path):
    one = read_evidence(write_csv([make_row(), make_row(1)], name="a.csv"))
    two = read_evidence(write_csv([make_row(), make_row(1), make_row(2)], name="b.csv"))
    assert one.row_id.tolist() == two.row_id.tolist()[:2]
    assert one.row_id.iloc[0].startswith("HARMONi-2|PFS|overall=ITT|2024-09-08|")
    changed = read_evidence(write_csv([make_row(note="edited")], name="c.csv"))
    assert changed.row_id.iloc[0] != one.row_id.iloc[0]


def test_reference_row_problems_are_reported(reference_table, write_csv):
    header, rows = reference_table
    bad = list(rows[0])
    bad[header.index("os_hr")] = "-0.60"
    bad[header.index("pfs_ci_lower")], bad[header.index("pfs_ci_upper")] = "0.68", "0.37"
    problems = problems_of(write_csv([rows[1], bad], header=header))
    assert {(p.row, p.column) for p in problems} == {(3, "os_hr"), (3, "pfs_ci_lower")}


def test_numbers_keep_their_float_type_and_blanks_are_nan(make_row, write_csv):
    df = read_evidence(write_csv([make_row()]))
    assert df.events_total.dtype == float and np.isnan(df.events_total.iloc[0])
    assert df.n_experimental.iloc[0] == 198.0


# --------------------------------------------------------------------------- helpers for hypothesis


# --------------------------------------------------------------------------- comment lines


@pytest.fixture(params=["csv", "arrow"])
def value_reader(request, monkeypatch):
    """Both value readers: the csv module's rows (small tables) and PyArrow's (large ones)."""
    from harmoni_bayes import evidence

    if request.param == "arrow":
        monkeypatch.setattr(evidence, "_SMALL_TABLE", -1)
    return request.param


def test_comment_lines_are_skipped_anywhere_and_leave_ids_and_lines_right(
    value_reader, trials_table, make_row, tmp_path
):
    header = trials_table[0]
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(header, [make_row(), make_row(1)]))
    # a comment before the header, one with as many cells as the header (so PyArrow keeps it), one blank-ish
    wide = "# " + ",".join(["x"] * len(header))
    body = csv_text(header, [make_row(), make_row(1)]).splitlines()
    commented = tmp_path / "commented.csv"
    commented.write_text("\n".join(["# made by hand", body[0], wide, body[1], "#", body[2]]) + "\n")
    a, b = read_evidence(plain), read_evidence(commented)
    assert b.row_id.tolist() == a.row_id.tolist()
    assert b.line_no.tolist() == [4, 6]
    assert b.trial.tolist() == a.trial.tolist()


def test_a_problem_after_a_comment_names_its_file_line(value_reader, make_row, write_csv, tmp_path):
    good = write_csv([make_row(), make_row(1, hr="abc")])
    lines = good.read_text().splitlines()
    path = tmp_path / "c.csv"
    path.write_text("\n".join([lines[0], "# note, with a comma", lines[1], lines[2]]) + "\n")
    p = only_problem(path)
    assert (p.row, p.column, p.value) == (4, "hr", "abc")


def test_a_comment_with_an_unclosed_quote_is_refused_not_allowed_to_swallow_rows(make_row, write_csv, tmp_path):
    lines = write_csv([make_row(), make_row(1)]).read_text().splitlines()
    path = tmp_path / "c.csv"
    path.write_text("\n".join([lines[0], '# see,"the paper', lines[1], lines[2]]) + "\n")
    with pytest.raises(EvidenceError) as info:
        read_evidence(path)
    assert "comment" in info.value.message() and "quote" in info.value.message()
    assert info.value.problems[0].row == 2


def test_a_file_of_comments_has_no_header(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("# nothing here\n#\n")
    with pytest.raises(EvidenceError, match="no header row"):
        read_evidence(path)
