"""Wrong numbers, misspelled columns, impossible dates, tiny SEs, invisible characters, odd files: refused or warned."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from harmoni_bayes import evidence
from harmoni_bayes.effects import SE_FLOOR, se_from_events
from harmoni_bayes.errors import EvidenceError, Problem
from harmoni_bayes.evidence import load_evidence, load_reference_trials, parse_evidence_text, read_evidence
from helpers import csv_text


def problems_of(path) -> list[Problem]:
    with pytest.raises(EvidenceError) as info:
        read_evidence(path)
    assert info.value.problems, "an EvidenceError must list its problems"
    return info.value.problems


def only_problem(path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


def error_of(path) -> str:
    with pytest.raises(EvidenceError) as info:
        read_evidence(path)
    return str(info.value)


# --------------------------------------------------------------------------- 1. numbers as printed

REFUSED_NUMBERS = [
    # (column, value, words in the reason)
    ("hr", "0_51", "'_'"),
    ("events_total", "1_57", "'_'"),
    ("n_control", "2_00", "'_'"),
    ("hr", "0,51", "use a decimal point"),
    ("ci_lower", "0,38", "use a decimal point"),
    ("events_total", "1,157", "thousands separators"),
    ("ci_level", "95%", "write 0.95"),
    ("maturity", "39%", "write 0.39"),
    ("hr", "51%", "percentages"),
    ("hr", "nan", "finite number"),
    ("hr", "NaN", "finite number"),
    ("hr", "inf", "finite number"),
    ("ci_upper", "-Infinity", "finite number"),
    ("hr", "1e400", "finite number"),
    ("hr", "0x1p-1", "not a number"),
    ("hr", "0.5 1", "not a number"),
    ("hr", "\u0660.\u0665\u0661", "digits 0-9"),  # Arabic-Indic digits: float() reads them
    ("hr", "\uff10.51", "digits 0-9"),  # full-width zero
    ("hr", "0.5\u200b1", "U+200B"),
    ("hr", "++0.51", "not a number"),
    ("hr", "0.51.", "not a number"),
    ("events_total", "1e", "not a number"),
]


@pytest.mark.parametrize(
    ("column", "value", "words"), REFUSED_NUMBERS, ids=[f"{c}={v!r}" for c, v, _ in REFUSED_NUMBERS]
)
def test_a_number_not_printed_plainly_is_refused_with_a_hint(make_row, write_csv, column, value, words):
    p = only_problem(write_csv([make_row(1), make_row(**{column: value})]))
    assert (p.row, p.column, p.value) == (3, column, value)
    assert words in p.reason


@pytest.mark.parametrize(
    ("column", "value"),
    [("hr", "+0.51"), ("hr", ".51"), ("hr", "5.1e-1"), ("hr", "51E-2"), ("ci_level", ".95"), ("events_total", "157.")],
)
def test_plain_numbers_are_read_exactly(make_row, write_csv, column, value):
    df = read_evidence(write_csv([make_row(**{column: value})]))
    assert df[column].iloc[0] == float(value)


def test_the_reason_for_an_underscore_names_what_python_would_have_read(make_row, write_csv):
    p = only_problem(write_csv([make_row(hr="0_51")]))
    assert "51" in p.reason


def test_a_level_written_as_a_percentage_number_gets_the_fraction(make_row, write_csv):
    p = only_problem(write_csv([make_row(ci_level="95")]))
    assert "between 0 and 1" in p.reason and "write 0.95" in p.reason


# --------------------------------------------------------------------------- 2. column names one edit away


@pytest.mark.parametrize(
    ("wrong", "meant"),
    [
        ("evnts_total", "events_total"),
        ("Events_Total", "events_total"),
        ("events total", "events_total"),
        (" EVENTS_TOTAL ", "events_total"),
        ("events_totals", "events_total"),
        ("maturty", "maturity"),
        ("notes", "note"),
        ("data_cutof", "data_cutoff"),
    ],
)
def test_an_optional_column_one_edit_away_is_refused_with_did_you_mean(trials_table, make_row, write_csv, wrong, meant):
    header = [wrong if h == meant else h for h in trials_table[0]]
    p = only_problem(write_csv([make_row()], header=header))
    assert p.row == 1 and p.column == wrong.strip()
    assert f"did you mean {meant}?" in p.reason


@pytest.mark.parametrize(("wrong", "meant"), [("HR", "hr"), ("Trial", "trial"), ("source-kind", "source_kind")])
def test_a_required_column_in_the_wrong_case_is_did_you_mean_not_missing(
    trials_table, make_row, write_csv, wrong, meant
):
    header = [wrong if h == meant else h for h in trials_table[0]]
    p = only_problem(write_csv([make_row()], header=header))
    assert f"did you mean {meant}?" in p.reason and "missing" not in p.reason


def test_a_header_with_an_invisible_character_is_named(trials_table, make_row, write_csv):
    header = ["hr\u200b" if h == "hr" else h for h in trials_table[0]]
    p = only_problem(write_csv([make_row()], header=header))
    assert "did you mean hr?" in p.reason and "U+200B" in p.reason


def test_a_reference_table_with_upper_case_columns_is_still_detected(reference_table, write_csv):
    header, rows = reference_table
    wrong = ["PFS_HR" if h == "pfs_hr" else h for h in header]
    p = only_problem(write_csv(rows[:2], header=wrong))
    assert p.column == "PFS_HR" and "did you mean pfs_hr?" in p.reason


def test_unrelated_unknown_columns_still_only_warn(trials_table, make_row, write_csv):
    header = [*trials_table[0], "reviewer", "checked_on"]
    df = read_evidence(write_csv([[*make_row(), "AB", "2025-01-01"]], header=header))
    assert any("reviewer" in w and "checked_on" in w for w in df.attrs["warnings"])


def test_a_near_miss_beside_its_own_column_is_kept_with_a_warning(trials_table, make_row, write_csv):
    # 'note' and 'notes' side by side are two columns on purpose
    header = [*trials_table[0], "notes"]
    df = read_evidence(write_csv([[*make_row(), "x"]], header=header))
    assert df.notes.tolist() == ["x"]
    assert any("notes" in w for w in df.attrs["warnings"])


def test_suggest_column():
    names = ["events_total", "hr", "note"]
    assert evidence.suggest_column("evnts_total", names) == "events_total"
    assert evidence.suggest_column("HR", names) == "hr"
    assert evidence.suggest_column("reviewer", names) is None
    assert evidence.suggest_column("events_count", names) is None


# --------------------------------------------------------------------------- 3. impossible dates


@pytest.fixture
def today_is(monkeypatch):
    def set_today(day: str):
        monkeypatch.setattr(evidence, "today", lambda: dt.date.fromisoformat(day))

    return set_today


def test_a_disclosure_after_today_is_refused(make_row, write_csv, today_is):
    today_is("2025-03-07")
    p = only_problem(write_csv([make_row(disclosed="2025-03-08")]))
    assert (p.row, p.column, p.value) == (2, "disclosed", "2025-03-08")
    assert "after today (2025-03-07)" in p.reason


def test_a_disclosure_today_is_accepted(make_row, write_csv, today_is):
    today_is("2025-03-08")
    assert len(read_evidence(write_csv([make_row(disclosed="2025-03-08")]))) == 1


def test_the_real_today_is_used_by_default(make_row, write_csv):
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    p = only_problem(write_csv([make_row(disclosed=tomorrow)]))
    assert p.column == "disclosed"


def test_a_data_cutoff_after_the_disclosure_is_refused(make_row, write_csv):
    p = only_problem(write_csv([make_row(disclosed="2024-09-08", data_cutoff="2025-09-08")]))
    assert (p.row, p.column, p.value) == (2, "data_cutoff", "2025-09-08")
    assert "2024-09-08" in p.reason


def test_a_data_cutoff_on_the_disclosure_day_is_accepted(make_row, write_csv):
    df = read_evidence(write_csv([make_row(disclosed="2024-09-08", data_cutoff="2024-09-08")]))
    assert df.data_cutoff.tolist() == ["2024-09-08"]


def test_an_interim_with_a_mistyped_year_cannot_supersede_the_final(make_row, write_csv):
    # the interim's cutoff typed 2052 instead of 2025 would have made it the "latest" analysis
    path = write_csv([make_row(20, data_cutoff="2052-03-10"), make_row(25)])
    p = only_problem(path)
    assert p.column == "data_cutoff" and p.value == "2052-03-10"


# --------------------------------------------------------------------------- 5. SE floor


def test_a_vanishing_ci_is_refused_naming_the_floor(make_row, write_csv):
    p = only_problem(write_csv([make_row(hr="0.51", ci_lower="0.5100000001", ci_upper="0.5100000002")]))
    assert (p.row, p.column) == (2, "ci_lower")
    assert "SE_FLOOR = 0.01" in p.reason and "40,000 events" in p.reason


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ({"events_total": "50000"}, "events_total"),
        ({"maturity": "1", "n_experimental": "30000", "n_control": "30000"}, "maturity"),
        ({"hr": "0.5", "p_value": "1e-300"}, "p_value"),
    ],
)
def test_every_route_to_the_se_has_the_floor(make_row, write_csv, cells, column):
    no_ci = {"ci_lower": "", "ci_upper": "", "ci_level": "", "p_value": ""}
    p = only_problem(write_csv([make_row(**{**no_ci, **cells})]))
    assert p.column == column and "SE_FLOOR" in p.reason


def test_an_se_just_above_the_floor_is_accepted(make_row, write_csv):
    no_ci = {"ci_lower": "", "ci_upper": "", "ci_level": "", "p_value": ""}
    df = read_evidence(write_csv([make_row(**no_ci, events_total="39000")]))
    assert df.se.iloc[0] == pytest.approx(se_from_events(39000, 198, 200)) and df.se.iloc[0] > SE_FLOOR


def test_the_floor_is_10000_events_per_unit_variance():
    assert SE_FLOOR == 0.01
    assert se_from_events(40000) == pytest.approx(SE_FLOOR)


def test_no_shipped_row_is_below_the_floor():
    df = load_evidence()
    assert (df.se.dropna() >= SE_FLOOR).all()
    ref = load_reference_trials()
    assert (ref.se_pfs.dropna() >= SE_FLOOR).all() and (ref.se_os.dropna() >= SE_FLOOR).all()


def test_the_floor_holds_for_the_reference_table(reference_table, write_csv):
    header, rows = reference_table
    row = list(rows[0])
    for k, v in {"os_hr": "0.60", "os_ci_lower": "0.5999", "os_ci_upper": "0.6001"}.items():
        row[header.index(k)] = v
    problems = problems_of(write_csv([row], header=header))
    assert [(p.row, p.column) for p in problems] == [(2, "os_ci_lower")]


def test_a_row_with_another_problem_is_not_also_judged_by_the_floor(make_row, write_csv):
    p = only_problem(write_csv([make_row(hr="0.51", ci_lower="0.5100000002", ci_upper="0.5100000001")]))
    assert "not below" in p.reason


# --------------------------------------------------------------------------- 6. invisible characters, registry ids


@pytest.mark.parametrize("char", ["\u200b", "\u200e", "\u202e", "\u2066", "\ufeff", "\u00ad"])
def test_an_invisible_character_in_a_trial_name_is_a_warning_with_line_and_column(make_row, write_csv, char):
    df = read_evidence(write_csv([make_row(1), make_row(trial=f"HARMONi{char}-2")]))
    hits = [w for w in df.attrs["warnings"] if f"U+{ord(char):04X}" in w]
    assert len(hits) == 1
    assert "line 3" in hits[0] and "column 'trial'" in hits[0]


def test_invisible_characters_in_any_text_cell_are_warned_about(trials_table, make_row, write_csv):
    header = [*trials_table[0], "reviewer"]
    df = read_evidence(write_csv([[*make_row(note="see\u200dsupplement"), "A\u2069B"]], header=header))
    warned = {(w.split(",")[0], w.split("column ")[1].split(":")[0]) for w in df.attrs["warnings"] if "U+" in w}
    assert warned == {("line 2", "'note'"), ("line 2", "'reviewer'")}


def test_an_invisible_character_in_a_choice_or_date_is_named_in_the_error(make_row, write_csv):
    problems = problems_of(write_csv([make_row(endpoint="PFS\u200b", disclosed="2024-09-08\u200e")]))
    assert {p.column for p in problems} == {"endpoint", "disclosed"}
    assert all("U+200" in p.reason for p in problems)


def test_plain_text_has_no_invisible_character_warning(make_row, write_csv):
    df = read_evidence(write_csv([make_row(note="caf\u00e9 \u2265 50% \u2013 ok")]))
    assert df.attrs["warnings"] == []


def test_one_registry_id_under_two_trial_names_is_a_warning(make_row, write_csv):
    df = read_evidence(write_csv([make_row(0), make_row(1, trial="HARMONi 2")]))
    (w,) = df.attrs["warnings"]
    assert "NCT05499390" in w and "'HARMONi-2' (line 2)" in w and "'HARMONi 2' (line 3)" in w


def test_blank_registry_ids_are_not_compared(make_row, write_csv):
    df = read_evidence(write_csv([make_row(0, registry_id=""), make_row(1, registry_id="", trial="Other")]))
    assert df.attrs["warnings"] == []


def test_the_shipped_tables_have_no_new_warnings():
    assert load_evidence().attrs["warnings"] == []
    assert all("asymmetric" in w for w in load_reference_trials().attrs["warnings"])


# --------------------------------------------------------------------------- 7. file-level messages


def test_a_semicolon_delimited_file_is_named_as_such(trials_table, make_row, tmp_path):
    path = tmp_path / "excel.csv"
    lines = [";".join(trials_table[0]), ";".join(v.replace(".", ",") for v in make_row())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = error_of(path)
    assert "semicolon-delimited" in message and "comma-separated" in message
    assert "fields" not in message  # not a ragged-row error per line


def test_a_tab_delimited_file_is_named_as_such(trials_table, make_row, tmp_path):
    path = tmp_path / "tabs.csv"
    path.write_text("\t".join(trials_table[0]) + "\n" + "\t".join(make_row()) + "\n", encoding="utf-8")
    assert "tab-delimited" in error_of(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_named_utf16_not_binary(make_row, write_csv, tmp_path, encoding):
    good = write_csv([make_row()], name="good.csv")
    path = tmp_path / "utf16.csv"
    path.write_bytes(good.read_text(encoding="utf-8").encode(encoding))
    message = error_of(path)
    assert "UTF-16" in message and "save the file as UTF-8" in message and "binary" not in message


def test_a_nul_byte_in_a_text_file_is_named_with_offset_and_line(make_row, write_csv, tmp_path):
    good = write_csv([make_row(), make_row(1)], name="good.csv").read_bytes()
    at = good.index(b"0.54")  # on line 3
    path = tmp_path / "nul.csv"
    path.write_bytes(good[:at] + b"\x00" + good[at:])
    message = error_of(path)
    assert f"byte offset {at}" in message and "line 3" in message and "NUL" in message


def test_a_nul_character_in_text_is_named_with_its_line():
    with pytest.raises(EvidenceError, match=r"NUL character \(line 2\)"):
        parse_evidence_text("trial,hr\nA\x00,1\n")


def test_a_binary_file_is_still_binary(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" * 50)
    assert "binary" in error_of(path)


def test_a_latin1_file_names_the_byte_and_line(make_row, write_csv):
    path = write_csv([make_row(), make_row(1, note="caf\u00e9")], encoding="latin-1")
    message = error_of(path)
    assert "not UTF-8" in message and "line 3" in message


# --------------------------------------------------------------------------- limits


def test_a_file_above_the_size_limit_is_refused_before_reading(make_row, write_csv, monkeypatch):
    path = write_csv([make_row()])
    monkeypatch.setattr(evidence, "MAX_FILE_BYTES", 100)
    assert "MiB are refused" in error_of(path)


def test_a_table_above_the_row_limit_is_refused(make_row, write_csv, monkeypatch):
    path = write_csv([make_row(i) for i in range(5)])
    monkeypatch.setattr(evidence, "MAX_ROWS", 3)
    assert "more than 3 data rows" in error_of(path)


def test_problems_beyond_the_limit_are_counted_not_listed(make_row, write_csv, monkeypatch):
    monkeypatch.setattr(evidence, "MAX_PROBLEMS", 3)
    problems = problems_of(write_csv([make_row(i, hr="0,5") for i in range(6)]))
    assert [p.row for p in problems[:3]] == [2, 3, 4]
    assert "3 more problems" in problems[3].reason


def test_every_problem_has_line_and_column_and_the_message_no_traceback(make_row, write_csv):
    path = write_csv([make_row(hr="0_51"), make_row(1, ci_level="95%"), make_row(2, disclosed="2099-01-01")])
    problems = problems_of(path)
    assert [(p.row, p.column) for p in problems] == [(2, "hr"), (3, "ci_level"), (4, "disclosed")]
    assert "Traceback" not in error_of(path)


def test_numbers_are_floats_and_nan_for_blank(make_row, write_csv):
    df = read_evidence(write_csv([make_row()]))
    assert df.hr.dtype == float and math.isnan(df.events_total.iloc[0])
    assert np.isfinite(df.se.iloc[0])


def test_csv_text_helper_round_trip(trials_table, make_row):
    df = parse_evidence_text(csv_text(trials_table[0], [make_row()]))
    assert df.row_id.iloc[0].startswith("HARMONi-2|PFS|overall=ITT|2024-09-08|")


def test_warnings_beyond_the_limit_are_counted(make_row, write_csv, monkeypatch):
    monkeypatch.setattr(evidence, "MAX_WARNINGS_PER_KIND", 1)
    df = read_evidence(write_csv([make_row(i, note=f"n\u200b{i}") for i in range(3)]))
    invisible = [w for w in df.attrs["warnings"] if "U+200B" in w or "invisible" in w]
    assert len(invisible) == 2 and "line 2" in invisible[0]
    assert invisible[1] == "... and 2 more warnings about cells with invisible characters"
