"""The evidence commands: validate, show, add.  Bad input is exit 2 with every problem, never a traceback."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.errors import EvidenceError
from harmoni_bayes.evidence import load_evidence, read_evidence, shipped_path
from harmoni_bayes.schema import NETWORK, REFERENCE, TRIALS
from harmoni_bayes.selection import select_evidence

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_bad_input(result):
    """Exit 2, an 'error:' message on stderr, and no traceback anywhere."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "error:" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "harmoni_bayes.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or REPO,
        timeout=120,
        check=False,
    )


def dir_listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


# --------------------------------------------------------------------------- validate: good files


@pytest.mark.parametrize("name", ["ivonescimab_trials.csv", "nsclc_pfs_os_trials.csv"])
def test_validate_shipped_files_exit_0_with_a_one_line_summary(name):
    path = shipped_path(name)
    result = invoke("evidence", "validate", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "valid" in lines[0] and "rows" in lines[0]
    assert str(len(read_evidence(path))) in lines[0]
    assert "Traceback" not in result.output


def test_validate_reports_warnings_on_stderr_and_still_succeeds():
    result = invoke("evidence", "validate", shipped_path("nsclc_pfs_os_trials.csv"))
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "asymmetric" in result.stderr and "0.57-0.93" in result.stderr


def test_validate_in_a_real_subprocess_succeeds():
    proc = run_cli("evidence", "validate", shipped_path("ivonescimab_trials.csv"))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- validate: bad files

BAD_FILES = [
    "empty",
    "binary",
    "utf16",
    "latin1",
    "missing_column",
    "negative_hr",
    "swapped_ci",
    "hr_outside_ci",
    "date_2025_02_30",
    "events_12_5",
    "duplicate_row",
    "does_not_exist",
]


def make_bad_file(kind, tmp_path, trials_table, make_row, write_csv) -> tuple[Path, list[str]]:
    """A bad input file and text fragments that must appear on stderr."""
    header = trials_table[0]
    if kind == "empty":
        path = tmp_path / "empty.csv"
        path.write_bytes(b"")
        return path, ["empty"]
    if kind == "binary":
        path = tmp_path / "image.csv"
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
        return path, ["binary"]
    if kind == "utf16":
        good = write_csv([make_row()], name="good.csv")
        path = tmp_path / "utf16.csv"
        path.write_bytes(good.read_text(encoding="utf-8").encode("utf-16"))
        return path, ["utf16.csv"]
    if kind == "latin1":
        return write_csv([make_row(note="caf\u00e9 au lait")], name="latin1.csv", encoding="latin-1"), ["UTF-8"]
    if kind == "missing_column":
        i = header.index("hr")
        row = make_row()
        return write_csv([row[:i] + row[i + 1 :]], header=header[:i] + header[i + 1 :]), ["missing", "hr"]
    if kind == "negative_hr":
        return write_csv([make_row(hr="-0.51")]), ["line 2", "'hr'", "-0.51", "positive"]
    if kind == "swapped_ci":
        return write_csv([make_row(ci_lower="0.69", ci_upper="0.38")]), ["line 2", "ci_lower", "not below"]
    if kind == "hr_outside_ci":
        return write_csv([make_row(hr="0.30")]), ["line 2", "'hr'", "outside"]
    if kind == "date_2025_02_30":
        return write_csv([make_row(disclosed="2025-02-30")]), ["line 2", "disclosed", "2025-02-30"]
    if kind == "events_12_5":
        return write_csv([make_row(events_total="12.5")]), ["line 2", "events_total", "12.5"]
    if kind == "duplicate_row":
        return write_csv([make_row(), make_row(1), make_row()]), ["line 4", "duplicate", "line 2"]
    if kind == "does_not_exist":
        return tmp_path / "nope.csv", ["nope.csv", "not found"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", BAD_FILES)
def test_validate_bad_file_exits_2_with_the_problem_on_stderr(kind, tmp_path, trials_table, make_row, write_csv):
    path, fragments = make_bad_file(kind, tmp_path, trials_table, make_row, write_csv)
    result = invoke("evidence", "validate", path)
    assert_bad_input(result)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    # every problem the validator finds is printed
    try:
        read_evidence(path)
    except EvidenceError as exc:
        for problem in exc.problems:
            assert str(problem) in result.stderr
    else:
        pytest.fail(f"{kind}: read_evidence accepted a bad file")


@pytest.mark.parametrize(
    "kind", ["empty", "binary", "utf16", "latin1", "date_2025_02_30", "duplicate_row", "does_not_exist"]
)
def test_validate_bad_file_in_a_real_subprocess_has_no_traceback(kind, tmp_path, trials_table, make_row, write_csv):
    path, fragments = make_bad_file(kind, tmp_path, trials_table, make_row, write_csv)
    proc = run_cli("evidence", "validate", path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")
    assert all(f in proc.stderr for f in fragments), proc.stderr
    assert proc.stdout == ""


def test_validate_lists_every_problem_of_a_file_at_once(make_row, write_csv):
    path = write_csv(
        [
            make_row(hr="-0.51"),
            make_row(1, disclosed="2025-02-30"),
            make_row(2, events_total="12.5"),
            make_row(3, ci_lower="0.74", ci_upper="0.31"),
            make_row(4, endpoint="DFS"),
            make_row(5, maturity="1.5"),
        ]
    )
    result = invoke("evidence", "validate", path)
    assert_bad_input(result)
    assert "6 problems" in result.stderr
    for line, column in [
        (2, "hr"),
        (3, "disclosed"),
        (4, "events_total"),
        (5, "ci_lower"),
        (6, "endpoint"),
        (7, "maturity"),
    ]:
        assert f"line {line}, column '{column}'" in result.stderr


def test_validate_a_directory_is_bad_input(tmp_path):
    assert_bad_input(invoke("evidence", "validate", tmp_path))


# --------------------------------------------------------------------------- show


def short(row_id: str) -> str:
    return row_id.rsplit("|", 1)[1]


def _table_line(stdout: str, short_id: str) -> str:
    lines = [ln for ln in stdout.split("\n\nNot used:")[0].splitlines() if ln.strip().startswith(short_id)]
    assert len(lines) == 1, (short_id, stdout)
    return lines[0]


def _not_used_line(stdout: str, short_id: str) -> str:
    section = stdout.split("Not used:", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.strip().startswith(short_id)]
    assert len(lines) == 1, (short_id, section)
    return lines[0]


def test_show_harmoni2_as_of_2025_03_31_uses_the_pfs_rows_and_explains_duplicates():
    result = invoke("evidence", "show", "--trial", "HARMONi-2", "--as-of", "2025-03-31")
    assert result.exit_code == 0, result.output
    out = result.stdout
    df = load_evidence()
    sel = select_evidence(df, trials="HARMONi-2", as_of="2025-03-31")
    used = sel.used
    assert set(used.endpoint) == {"PFS"} and len(used) >= 3
    for rid in used.row_id:
        line = _table_line(out, short(rid))
        assert line.rstrip().endswith("yes")
        assert " ci " in line  # SE route shown
    h2 = df[(df.trial == "HARMONi-2") & (df.endpoint == "PFS")]
    for level, kind in [
        ("ITT", "duplicate report"),
        ("TPS 1-49%", "conflicting report"),
        ("TPS >=50%", "conflicting report"),
    ]:
        rows = h2[h2.subgroup_level == level].set_index("source_kind")
        journal, news = rows.loc["journal", "row_id"], rows.loc["news", "row_id"]
        assert _table_line(out, short(journal)).rstrip().endswith("yes")
        explained = _not_used_line(out, short(news))
        assert f"{kind} of the same analysis" in explained and journal in explained
    for rid in df[(df.trial == "HARMONi-2") & (df.endpoint == "OS")].row_id:
        assert "not yet disclosed on 2025-03-31" in _not_used_line(out, short(rid))
    assert f"{len(used)} row(s) used" in out


def test_show_harmoni2_as_of_2024_09_30_has_no_os_and_uses_wclc_pdl1_rows():
    result = invoke("evidence", "show", "--trial", "HARMONi-2", "--as-of", "2024-09-30")
    assert result.exit_code == 0, result.output
    df = load_evidence()
    h2 = df[df.trial == "HARMONi-2"]
    for rid in h2[h2.endpoint == "OS"].row_id:
        assert "not yet disclosed" in _not_used_line(result.stdout, short(rid))
    wclc = h2[(h2.subgroup_factor == "pdl1") & (h2.source_kind == "news")]
    assert len(wclc) == 2
    for rid in wclc.row_id:
        assert _table_line(result.stdout, short(rid)).rstrip().endswith("yes")


@pytest.mark.parametrize(
    "args",
    [
        ["--as-of", "2025-02-30"],
        ["--trial", "HARMONi-9"],
        ["--evidence", "does-not-exist.csv"],
    ],
)
def test_show_bad_options_are_bad_input(args):
    assert_bad_input(invoke("evidence", "show", *args))


def test_show_a_bad_evidence_file_is_bad_input(make_row, write_csv):
    assert_bad_input(invoke("evidence", "show", "--evidence", write_csv([make_row(hr="-1")])))


def test_show_with_the_reference_table_does_not_crash():
    # --evidence takes "evidence CSV"; the shipped reference table is one.  Whatever show does with it
    # (show it, or refuse with exit 2), it must not end in a traceback.
    proc = run_cli("evidence", "show", "--evidence", shipped_path("nsclc_pfs_os_trials.csv"))
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 2)


# --------------------------------------------------------------------------- add: success


def test_add_appends_and_never_rewrites_existing_bytes(trials_table, write_csv, tmp_path):
    rows = trials_table[1]
    target = write_csv(rows[:3], name="target.csv")
    new = write_csv(rows[3:5], name="new.csv")
    before = target.read_bytes()
    result = invoke("evidence", "add", new, "--into", target)
    assert result.exit_code == 0, result.output
    assert "appended 2 row(s)" in result.stdout
    after = target.read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    df = read_evidence(target)
    assert len(df) == 5
    assert df.row_id.tolist()[:3] == read_evidence(new.parent / "target.csv").row_id.tolist()[:3]
    assert dir_listing(tmp_path) == ["new.csv", "target.csv"]


def test_add_row_ids_of_existing_rows_do_not_change(trials_table, write_csv):
    rows = trials_table[1]
    target = write_csv(rows[:3], name="target.csv")
    ids_before = read_evidence(target).row_id.tolist()
    invoke("evidence", "add", write_csv(rows[10:12], name="new.csv"), "--into", target)
    assert read_evidence(target).row_id.tolist()[:3] == ids_before


def test_add_reorders_columns_to_the_target_order(trials_table, write_csv):
    header, rows = trials_table
    target = write_csv(rows[:2], name="target.csv")
    order = list(reversed(range(len(header))))
    new = write_csv([[rows[2][i] for i in order]], header=[header[i] for i in order], name="new.csv")
    result = invoke("evidence", "add", new, "--into", target)
    assert result.exit_code == 0, result.output
    df = read_evidence(target)
    assert len(df) == 3
    assert df.iloc[2].subgroup_level == "TPS >=50%" and df.iloc[2].hr == 0.46


def test_add_keeps_crlf_line_endings(trials_table, write_csv):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv", lineterminator="\r\n")
    before = target.read_bytes()
    assert invoke("evidence", "add", write_csv(rows[2:3], name="new.csv"), "--into", target).exit_code == 0
    after = target.read_bytes()
    assert after.startswith(before)
    assert after[len(before) :].endswith(b"\r\n")
    assert b"\n" not in after.replace(b"\r\n", b"")


def test_add_keeps_a_utf8_bom_of_the_target(trials_table, write_csv):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv", encoding="utf-8-sig")
    before = target.read_bytes()
    assert before.startswith(b"\xef\xbb\xbf")
    assert invoke("evidence", "add", write_csv(rows[2:3], name="new.csv"), "--into", target).exit_code == 0
    assert target.read_bytes().startswith(before)
    assert len(read_evidence(target)) == 3


def test_add_to_a_target_without_final_newline(trials_table, write_csv):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv")
    target.write_bytes(target.read_bytes().rstrip(b"\n"))
    before = target.read_bytes()
    assert invoke("evidence", "add", write_csv(rows[2:3], name="new.csv"), "--into", target).exit_code == 0
    assert target.read_bytes().startswith(before)
    assert len(read_evidence(target)) == 3


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_add_keeps_the_target_file_mode(trials_table, write_csv):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv")
    target.chmod(0o644)
    assert invoke("evidence", "add", write_csv(rows[2:3], name="new.csv"), "--into", target).exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_add_in_a_real_subprocess(trials_table, write_csv, tmp_path):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv")
    before = target.read_bytes()
    proc = run_cli("evidence", "add", write_csv(rows[2:4], name="new.csv"), "--into", target)
    assert proc.returncode == 0, proc.stderr
    assert "appended 2 row(s)" in proc.stdout
    assert target.read_bytes().startswith(before)
    # the same rows again are duplicates: refused, nothing changed, no traceback
    again = target.read_bytes()
    proc = run_cli("evidence", "add", tmp_path / "new.csv", "--into", target)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "duplicate" in proc.stderr
    assert target.read_bytes() == again
    assert dir_listing(tmp_path) == ["new.csv", "target.csv"]


# --------------------------------------------------------------------------- add: failures leave the target alone

ADD_FAILURES = [
    "bad_new_row",
    "several_bad_rows",
    "duplicate_of_existing",
    "duplicate_within_new",
    "header_missing_required_column",
    "header_extra_column",
    "missing_target",
    "missing_new",
    "empty_new",
    "binary_new",
    "latin1_new",
]


@pytest.mark.parametrize("kind", ADD_FAILURES)
def test_add_failure_leaves_target_unchanged_and_no_temp_file(kind, trials_table, make_row, write_csv, tmp_path):
    header, rows = trials_table
    target = write_csv(rows[:3], name="target.csv")
    new = tmp_path / "new.csv"
    fragments = []
    if kind == "bad_new_row":
        write_csv([make_row(5), make_row(6, hr="-0.5")], name="new.csv")
        fragments = ["'hr'", "-0.5"]
    elif kind == "several_bad_rows":
        write_csv([make_row(5, disclosed="2025-02-30"), make_row(6, events_total="12.5")], name="new.csv")
        fragments = ["2025-02-30", "12.5"]
    elif kind == "duplicate_of_existing":
        write_csv([rows[5], rows[1]], name="new.csv")
        fragments = ["duplicate"]
    elif kind == "duplicate_within_new":
        write_csv([rows[5], rows[5]], name="new.csv")
        fragments = ["duplicate"]
    elif kind == "header_missing_required_column":
        i = header.index("source")
        write_csv([rows[5][:i] + rows[5][i + 1 :]], header=header[:i] + header[i + 1 :], name="new.csv")
        fragments = ["required", "source"]
    elif kind == "header_extra_column":
        write_csv([[*rows[5], "x"]], header=[*header, "reviewer"], name="new.csv")
        fragments = ["reviewer"]
    elif kind == "missing_target":
        write_csv([rows[5]], name="new.csv")
        target.unlink()
        target = tmp_path / "target.csv"
        fragments = ["not found"]
    elif kind == "missing_new":
        fragments = ["not found"]
    elif kind == "empty_new":
        new.write_bytes(b"")
        fragments = ["empty"]
    elif kind == "binary_new":
        new.write_bytes(b"\x00\x01\x02garbage\x00")
        fragments = ["binary"]
    elif kind == "latin1_new":
        write_csv([make_row(5, note="caf\u00e9")], name="new.csv", encoding="latin-1")
        fragments = ["UTF-8"]
    before = target.read_bytes() if target.exists() else None
    listing = dir_listing(tmp_path)

    result = invoke("evidence", "add", new, "--into", target)

    assert_bad_input(result)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    if before is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == before
    assert dir_listing(tmp_path) == listing


# --------------------------------------------------------------------------- reliability messages through the CLI


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_add_to_a_read_only_target_is_bad_input_and_changes_nothing(trials_table, write_csv):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv")
    target.chmod(0o444)
    before = target.read_bytes()
    try:
        result = invoke("evidence", "add", write_csv(rows[2:3], name="new.csv"), "--into", target)
        assert_bad_input(result)
        assert "read-only" in result.stderr
        assert target.read_bytes() == before and stat.S_IMODE(target.stat().st_mode) == 0o444
    finally:
        target.chmod(0o644)


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_add_through_a_symlink_keeps_the_link(trials_table, write_csv, tmp_path):
    rows = trials_table[1]
    target = write_csv(rows[:2], name="target.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = invoke("evidence", "add", write_csv(rows[2:3], name="new.csv"), "--into", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and len(read_evidence(target)) == 3


def test_validate_names_a_misspelled_column_and_a_typo_in_a_number(trials_table, make_row, write_csv):
    header = ["evnts_total" if h == "events_total" else h for h in trials_table[0]]
    result = invoke("evidence", "validate", write_csv([make_row()], header=header))
    assert_bad_input(result)
    assert "line 1, column 'evnts_total'" in result.stderr and "did you mean events_total?" in result.stderr
    result = invoke("evidence", "validate", write_csv([make_row(hr="0_51")], name="typo.csv"))
    assert_bad_input(result)
    assert "line 2, column 'hr'" in result.stderr and "0_51" in result.stderr


def test_validate_a_semicolon_file_says_so(trials_table, make_row, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text(";".join(trials_table[0]) + "\n" + ";".join(make_row()) + "\n", encoding="utf-8")
    result = invoke("evidence", "validate", path)
    assert_bad_input(result)
    assert "semicolon-delimited" in result.stderr


def test_validate_warns_about_invisible_characters(make_row, write_csv):
    result = invoke("evidence", "validate", write_csv([make_row(trial="HARMONi\u200b-2")]))
    assert result.exit_code == 0, result.output
    assert "warning: line 2, column 'trial'" in result.stderr and "U+200B" in result.stderr


# --------------------------------------------------------------------------- template


@pytest.mark.parametrize(
    ("schema", "columns"),
    [("trials", TRIALS.names), ("reference", REFERENCE.names), ("network", NETWORK.names)],
)
def test_template_is_the_header_and_one_commented_example_row(schema, columns, tmp_path):
    result = invoke("evidence", "template", "--schema", schema)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split(",") == list(columns)
    assert lines[1].startswith("#")
    # the template alone is a valid header with no rows: the comment is skipped
    path = tmp_path / "rows.csv"
    path.write_text(result.stdout)
    with pytest.raises(EvidenceError, match="header but no data rows"):
        read_evidence(path)
    # without its '#', the example is a valid row of the right table
    filled = tmp_path / "filled.csv"
    filled.write_text(lines[0] + "\n" + lines[1].removeprefix("#") + "\n")
    df = read_evidence(filled)
    assert len(df) == 1 and df.attrs["schema"] == schema


def test_template_defaults_to_the_trials_table():
    assert invoke("evidence", "template").stdout.splitlines()[0].split(",") == list(TRIALS.names)


def test_template_round_trips_through_evidence_add(trials_table, write_csv, tmp_path):
    """`evidence template > rows.csv`, fill in a row under the example, add: the comment is not appended."""
    rows = trials_table[1]
    target = write_csv(rows[1:3], name="target.csv")
    before = target.read_bytes()
    rows_csv = tmp_path / "rows.csv"
    with open(rows_csv, "w", newline="", encoding="utf-8") as fh:
        fh.write(invoke("evidence", "template").stdout)
        csv.writer(fh, lineterminator="\n").writerow(rows[5])
    result = invoke("evidence", "add", rows_csv, "--into", target)
    assert result.exit_code == 0, result.output
    assert "appended 1 row(s)" in result.stdout
    after = target.read_bytes()
    assert after.startswith(before) and b"#" not in after[len(before) :]
    assert len(read_evidence(target)) == 3
    # the example itself, with its '#' removed, is accepted too
    example = tmp_path / "example.csv"
    lines = invoke("evidence", "template").stdout.splitlines()
    example.write_text(lines[0] + "\n" + lines[1].removeprefix("# ") + "\n")
    assert invoke("evidence", "add", example, "--into", target).exit_code == 0
    assert read_evidence(target).trial.iloc[-1] == "HARMONi-2"


def test_adding_the_untouched_template_says_there_are_no_rows(trials_table, write_csv, tmp_path):
    target = write_csv(trials_table[1][:2], name="target.csv")
    before = target.read_bytes()
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text(invoke("evidence", "template").stdout)
    result = invoke("evidence", "add", rows_csv, "--into", target)
    assert_bad_input(result)
    assert "no rows to add" in result.stderr and "'#'" in result.stderr
    assert target.read_bytes() == before


def test_template_refuses_an_unknown_schema():
    result = invoke("evidence", "template", "--schema", "subgroups")
    assert_bad_input(result)
    assert "trials, reference or network" in result.stderr and "subgroups" in result.stderr


# --------------------------------------------------------------------------- add: only the required columns


def _required_only(header: list[str], row: list[str], schema) -> tuple[list[str], list[str]]:
    """The required columns of ``row``, in reverse schema order."""
    names = [c.name for c in schema.columns if c.required][::-1]
    return names, [row[header.index(n)] for n in names]


def test_add_takes_a_file_of_only_the_required_columns_in_any_order(trials_table, write_csv):
    header, rows = trials_table
    target = write_csv(rows[:2], name="target.csv")
    before = target.read_bytes()
    names, cells = _required_only(header, rows[2], TRIALS)
    assert len(names) < len(header)
    new = write_csv([cells], header=names, name="new.csv")
    result = invoke("evidence", "add", new, "--into", target)
    assert result.exit_code == 0, result.output
    added = target.read_bytes()[len(before) :].decode()
    fields = next(csv.reader([added]))
    assert len(fields) == len(header)  # in the target's columns and order, the others blank
    expected = {n: c for n, c in zip(names, cells, strict=True)}
    assert fields == [expected.get(h, "") for h in header]
    df = read_evidence(target)
    assert len(df) == 3 and df.iloc[2].hr == float(rows[2][header.index("hr")])
    assert df.iloc[2].note == "" and pd.isna(df.iloc[2].n_control)


def test_add_takes_only_the_required_columns_of_a_reference_table(reference_table, write_csv):
    header, rows = reference_table
    target = write_csv(rows[:2], header=header, name="target.csv")
    names, cells = _required_only(header, rows[2], REFERENCE)
    new = write_csv([cells], header=names, name="new.csv")
    result = invoke("evidence", "add", new, "--into", target)
    assert result.exit_code == 0, result.output
    assert len(read_evidence(target)) == 3


def test_add_names_missing_required_and_unknown_columns_in_one_message(trials_table, write_csv):
    header, rows = trials_table
    target = write_csv(rows[:2], name="target.csv")
    before = target.read_bytes()
    keep = [h for h in header if h not in {"source", "endpoint"}]
    new_header = [*keep, "evnts_total"]
    row = [rows[2][header.index(h)] for h in keep] + ["12"]
    result = invoke("evidence", "add", write_csv([row], header=new_header, name="new.csv"), "--into", target)
    assert_bad_input(result)
    message = result.stderr
    assert "required columns" in message and "endpoint" in message and "source" in message
    assert "evnts_total" in message and "add them to the target first" in message
    assert target.read_bytes() == before
