"""select_evidence: as-of date, most mature analysis, source precedence, prefer/exclude, with reasons."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmoni_bayes.errors import EvidenceError
from harmoni_bayes.evidence import (
    load_evidence,
    load_reference_trials,
    parse_evidence_text,
    read_evidence,
    shipped_path,
)
from harmoni_bayes.schema import SOURCE_KINDS
from harmoni_bayes.selection import ESTIMAND, filter_as_of, select_evidence
from helpers import csv_text


@functools.cache
def shipped():
    return load_evidence()


def row_id(df, trial, endpoint, level="ITT", **match) -> str:
    """The id of the one row of ``trial``/``endpoint``/subgroup ``level`` matching ``match``."""
    m = (df.trial == trial) & (df.endpoint == endpoint) & (df.subgroup_level == level)
    for col, value in match.items():
        m &= df[col] == value
    hits = df[m]
    assert len(hits) == 1, hits.row_id.tolist()
    return hits.row_id.iloc[0]


def reasons(sel) -> dict[str, str]:
    return dict(zip(sel.excluded.row_id, sel.excluded.reason, strict=True))


def check_partition(df, sel):
    """Every in-scope row is used or left out with a reason, never both, never silently dropped."""
    used, left = set(sel.used.row_id), set(sel.excluded.row_id)
    assert not used & left
    assert used | left == set(df.row_id)
    assert all(sel.excluded.reason.str.len() > 0)
    # no patient counted twice: one row per estimand
    assert not sel.used.duplicated(ESTIMAND).any()


# --------------------------------------------------------------------------- as of a date


@settings(max_examples=60, deadline=None)
@given(as_of=st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2026, 1, 1)))
def test_never_admits_a_row_disclosed_after_as_of_on_shipped_data(as_of):
    df = shipped()
    sel = select_evidence(df, as_of=as_of)
    iso = as_of.isoformat()
    assert (sel.used.disclosed <= iso).all()
    late = set(df.row_id[df.disclosed > iso])
    why = reasons(sel)
    assert all(why[r].startswith("not yet disclosed") for r in late)
    check_partition(df, sel)
    # the string form gives the same answer
    assert select_evidence(df, as_of=iso).row_ids == sel.row_ids


@functools.cache
def _base_row() -> tuple[tuple[str, ...], tuple[str, ...]]:
    with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as fh:
        header, first, *_ = csv.reader(fh)
    return tuple(header), tuple(first)


def synthetic(cells: list[dict[str, str]]):
    """A table of copies of the first shipped row, each with some cells changed."""
    header, base = _base_row()
    rows = []
    for i, change in enumerate(cells):
        row = list(base)
        row[header.index("note")] = f"report {i}"  # rows never exact duplicates
        for k, v in change.items():
            row[header.index(k)] = v
        rows.append(row)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return parse_evidence_text(buf.getvalue())


NO_CI = {"ci_lower": "", "ci_upper": "", "ci_level": ""}
DAY0 = dt.date(2024, 1, 1)
days = st.integers(min_value=0, max_value=700)


@settings(max_examples=60, deadline=None)
@given(
    reports=st.lists(
        st.tuples(days, st.sampled_from(["ITT", "TPS 1-49%", "TPS >=50%"]), st.sampled_from(SOURCE_KINDS)),
        min_size=1,
        max_size=8,
    ),
    as_of=days,
)
def test_never_admits_a_row_disclosed_after_as_of_on_generated_rows(reports, as_of):
    df = synthetic(
        [
            {
                "disclosed": (DAY0 + dt.timedelta(days=d)).isoformat(),
                "subgroup_factor": "overall" if level == "ITT" else "pdl1",
                "subgroup_level": level,
                "source_kind": kind,
            }
            for d, level, kind in reports
        ]
    )
    iso = (DAY0 + dt.timedelta(days=as_of)).isoformat()
    sel = select_evidence(df, as_of=iso)
    assert (sel.used.disclosed <= iso).all()
    check_partition(df, sel)
    # every estimand with a row disclosed by then gets exactly one row
    seen = df[df.disclosed <= iso]
    assert len(sel.used) == len(seen.drop_duplicates(ESTIMAND))


def test_as_of_is_inclusive():
    df = shipped()
    rid = row_id(df, "HARMONi", "OS", disclosed="2025-05-30")
    assert rid in select_evidence(df, as_of="2025-05-30").row_ids
    assert rid not in select_evidence(df, as_of="2025-05-29").row_ids
    assert rid in select_evidence(df, as_of=dt.date(2025, 5, 30)).row_ids


@pytest.mark.parametrize("bad", ["2025-02-30", "31/03/2025", "yesterday"])
def test_as_of_must_be_a_real_iso_date(bad):
    with pytest.raises(EvidenceError, match="ISO date"):
        select_evidence(shipped(), as_of=bad)


def test_as_of_2024_09_30_has_no_harmoni2_os_and_uses_wclc_pdl1_rows():
    df = shipped()
    sel = select_evidence(df, as_of="2024-09-30", trials="HARMONi-2")
    assert not (sel.used.endpoint == "OS").any()
    pdl1 = sel.used[sel.used.subgroup_factor == "pdl1"]
    assert len(pdl1) == 2
    assert set(pdl1.source_kind) == {"news"}
    assert set(pdl1.disclosed) == {"2024-09-08"}
    assert sorted(pdl1.hr) == [0.46, 0.54]
    itt = sel.used[sel.used.subgroup_level == "ITT"]
    assert itt.disclosed.tolist() == ["2024-09-08"]
    check_partition(df[df.trial == "HARMONi-2"], sel)


# --------------------------------------------------------------------------- duplicate reports


def test_harmoni2_pdl1_lancet_rows_are_kept_over_wclc_news_rows():
    df = shipped()
    sel = select_evidence(df, as_of="2025-03-31", trials="HARMONi-2")
    why = reasons(sel)
    for level, news_hr, journal_hr in [
        ("TPS 1-49%", "0.54 (0.37-0.79)", "0.54 (0.37-0.78)"),
        ("TPS >=50%", "0.46 (0.28-0.75)", "0.48 (0.29-0.79)"),
    ]:
        kept = row_id(df, "HARMONi-2", "PFS", level, source_kind="journal")
        dropped = row_id(df, "HARMONi-2", "PFS", level, source_kind="news")
        assert kept in sel.row_ids
        assert dropped not in sel.row_ids
        assert "conflicting report" in why[dropped]
        assert news_hr in why[dropped] and journal_hr in why[dropped]
        assert kept in why[dropped]


def test_harmoni2_itt_pfs_same_numbers_is_a_duplicate_report():
    df = shipped()
    sel = select_evidence(df, trials="HARMONi-2", endpoint="PFS", subgroup_factor="overall")
    kept = row_id(df, "HARMONi-2", "PFS", source_kind="journal")
    dropped = row_id(df, "HARMONi-2", "PFS", source_kind="news")
    assert sel.row_ids == [kept]
    why = reasons(sel)[dropped]
    assert "duplicate report" in why and "same numbers" in why and kept in why


def test_harmoni2_early_os_press_0777_is_kept_over_news_0784():
    df = shipped()
    sel = select_evidence(df, trials="HARMONi-2", endpoint="OS", as_of="2025-06-30")  # before the 2026 OS interim
    press = row_id(df, "HARMONi-2", "OS", source_kind="press")
    news = row_id(df, "HARMONi-2", "OS", source_kind="news")
    assert sel.row_ids == [press]
    assert sel.used.hr.tolist() == [0.777]
    why = reasons(sel)[news]
    assert "conflicting report" in why and "0.784" in why and "0.777" in why


@settings(max_examples=60, deadline=None)
@given(reports=st.lists(st.tuples(st.sampled_from(SOURCE_KINDS), days), min_size=2, max_size=6))
def test_source_precedence_with_different_numbers(reports):
    """Reports of one analysis: journal > conference > press > news > secondary.  Two reports of the top
    kind with different numbers are a conflict that precedence cannot settle: an error naming both, until
    the user prefers one."""
    df = synthetic(
        [
            {"source_kind": kind, "disclosed": (DAY0 + dt.timedelta(days=d)).isoformat(), "hr": f"0.{50 + i}"}
            for i, (kind, d) in enumerate(reports)
        ]
    )
    top = min(SOURCE_KINDS.index(kind) for kind, _ in reports)
    tied = [i for i, (kind, _) in enumerate(reports) if SOURCE_KINDS.index(kind) == top]
    if len(tied) > 1:
        with pytest.raises(EvidenceError) as info:
            select_evidence(df)
        message = str(info.value)
        assert all(df.row_id.iloc[i] in message for i in tied)
        assert "prefer = [" in message and "exclude" in message
        chosen = tied[-1]
        sel = select_evidence(df, prefer=[df.row_id.iloc[chosen].rsplit("|", 1)[1]])
        assert sel.row_ids == [df.row_id.iloc[chosen]]
        assert all("preferred by the user" in w for w in reasons(sel).values())
        return
    best = tied[0]
    sel = select_evidence(df)
    assert sel.row_ids == [df.row_id.iloc[best]]
    why = reasons(sel)
    assert len(why) == len(reports) - 1
    assert all("conflicting report of the same analysis" in w for w in why.values())


@settings(max_examples=40, deadline=None)
@given(reports=st.lists(st.tuples(st.sampled_from(SOURCE_KINDS), days), min_size=2, max_size=6))
def test_source_precedence_then_later_disclosure_for_the_same_numbers(reports):
    """Reports of one analysis with equal numbers: the highest kind, within it the later disclosure, is kept."""
    df = synthetic(
        [{"source_kind": kind, "disclosed": (DAY0 + dt.timedelta(days=d)).isoformat()} for kind, d in reports]
    )
    best = min(range(len(reports)), key=lambda i: (SOURCE_KINDS.index(reports[i][0]), -reports[i][1], -i))
    sel = select_evidence(df)
    assert sel.row_ids == [df.row_id.iloc[best]]
    why = reasons(sel)
    assert len(why) == len(reports) - 1
    assert all("duplicate report of the same analysis" in w for w in why.values())


def test_two_journal_reports_with_different_numbers_are_a_conflict():
    df = synthetic(
        [
            {"source_kind": "journal", "disclosed": "2025-03-08", "hr": "0.51"},
            {"source_kind": "journal", "disclosed": "2025-04-01", "hr": "0.80", "ci_lower": "0.60", "ci_upper": "1.07"},
        ]
    )
    first, second = df.row_id
    with pytest.raises(EvidenceError) as info:
        select_evidence(df)
    (problem,) = info.value.problems
    assert first in problem.reason and second in problem.reason
    assert "0.51" in problem.reason and "0.8" in problem.reason
    assert f'prefer = ["{first.rsplit("|", 1)[1]}"]' in problem.reason
    assert problem.row in (2, 3) and problem.column == "hr"
    # either way out works: prefer one, or exclude the other
    assert select_evidence(df, prefer=[second]).row_ids == [second]
    assert select_evidence(df, exclude=[second]).row_ids == [first]


def test_a_conflict_below_the_kept_row_is_not_an_error():
    # two news rows disagree, but a journal row outranks both: nothing for the user to decide
    df = synthetic(
        [
            {"source_kind": "news", "hr": "0.51"},
            {"source_kind": "news", "hr": "0.52"},
            {"source_kind": "journal", "hr": "0.53"},
        ]
    )
    sel = select_evidence(df)
    assert sel.row_ids == [df.row_id.iloc[2]]


def _hand_built():
    """Two analyses of one estimand, validated; tests then change cells as a hand-built DataFrame could."""
    return synthetic(
        [
            {"data_cutoff": "2024-06-01", "disclosed": "2024-09-08", "hr": "0.51"},
            {"data_cutoff": "2025-01-15", "disclosed": "2025-05-01", "hr": "0.55", "analysis_kind": "updated"},
        ]
    ).copy()


@pytest.mark.parametrize(
    ("changes", "column"),
    [
        ({(0, "data_cutoff"): "2026-01-01"}, "data_cutoff"),  # cutoff after its disclosure
        ({(1, "disclosed"): "2099-05-01"}, "disclosed"),  # disclosed in the future
        ({(1, "data_cutoff"): "2025-02-30"}, "data_cutoff"),  # not a date
        ({(1, "disclosed"): "2025-02-30"}, "disclosed"),  # not a date, used to rank reports
    ],
    ids=["cutoff_after_disclosure", "future_disclosure", "cutoff_not_a_date", "disclosed_not_a_date"],
)
def test_a_supersession_never_rests_on_an_impossible_date(changes, column):
    df = _hand_built()
    assert len(select_evidence(df).used) == 1  # as validated: the update supersedes the first analysis
    for (i, col), value in changes.items():
        df.loc[i, col] = value
    with pytest.raises(EvidenceError) as info:
        select_evidence(df)
    assert any(p.column == column for p in info.value.problems), info.value


# --------------------------------------------------------------------------- most mature analysis


def test_harmoni_a_os_52_percent_maturity_supersedes_30_percent():
    df = shipped()
    sel = select_evidence(df, trials="HARMONi-A", endpoint="OS", as_of="2025-06-30")  # before the final analysis
    mature = row_id(df, "HARMONi-A", "OS", maturity=0.52)
    early = row_id(df, "HARMONi-A", "OS", maturity=0.30)
    assert sel.row_ids == [mature]
    why = reasons(sel)[early]
    assert "superseded" in why and mature in why


def test_later_data_cutoff_supersedes_earlier():
    df = synthetic(
        [
            {"data_cutoff": "2024-06-01", "disclosed": "2024-09-08", "hr": "0.51"},
            {"data_cutoff": "2025-01-15", "disclosed": "2025-05-01", "hr": "0.55", "analysis_kind": "updated"},
        ]
    )
    sel = select_evidence(df)
    assert sel.used.data_cutoff.tolist() == ["2025-01-15"]
    assert "superseded" in reasons(sel)[df.row_id.iloc[0]]


def test_later_data_cutoff_wins_even_when_disclosed_earlier():
    # an update presented at a congress (later cutoff) before the journal prints the earlier cutoff
    df = synthetic(
        [
            {"data_cutoff": "2024-12-01", "disclosed": "2025-03-01", "hr": "0.55", "analysis_kind": "updated"},
            {"data_cutoff": "2024-06-01", "disclosed": "2025-06-01", "hr": "0.51", "source_kind": "journal"},
        ]
    )
    sel = select_evidence(df)
    assert sel.used.data_cutoff.tolist() == ["2024-12-01"]
    assert "superseded" in reasons(sel)[df.row_id.iloc[1]]


def test_more_events_supersede_fewer():
    df = synthetic(
        [
            {**NO_CI, "events_total": "260", "hr": "0.60"},
            {**NO_CI, "events_total": "120", "hr": "0.50"},
        ]
    )
    sel = select_evidence(df)
    assert sel.used.events_total.tolist() == [260.0]


def test_final_analysis_supersedes_an_interim_whose_cutoff_alone_is_stated():
    # HARMONi-A PFS: the interim (JAMA 2024) states its cutoff; a later final analysis with more
    # events is reported without one.  The final analysis is the more mature one.
    header, rows = _shipped_rows()
    interim = dict(zip(header, rows[20], strict=True))
    assert (interim["trial"], interim["endpoint"], interim["data_cutoff"]) == ("HARMONi-A", "PFS", "2023-03-10")
    final = {
        **interim,
        "analysis": "PFS final analysis",
        "analysis_kind": "final",
        "disclosed": "2025-06-01",
        "data_cutoff": "",
        "hr": "0.50",
        "ci_lower": "0.40",
        "ci_upper": "0.62",
        "events_total": "250",
        "source_kind": "journal",
    }
    df = parse_evidence_text(csv_text(header, [[interim[h] for h in header], [final[h] for h in header]]))
    sel = select_evidence(df)
    assert sel.used.analysis_kind.tolist() == ["final"], sel.explain()


def test_events_disagreeing_by_more_than_10_percent_are_different_analyses():
    df = synthetic(
        [
            {**NO_CI, "events_total": "150", "hr": "0.60", "source_kind": "journal"},
            {**NO_CI, "events_total": "200", "hr": "0.62", "source_kind": "news"},
        ]
    )
    sel = select_evidence(df)
    assert sel.used.events_total.tolist() == [200.0]  # more mature wins, although it is news
    assert "superseded" in reasons(sel)[df.row_id.iloc[0]]


# --------------------------------------------------------------------------- prefer, exclude, errors


def test_prefer_by_full_id_overrides_precedence():
    df = shipped()
    news = row_id(df, "HARMONi-2", "PFS", "TPS >=50%", source_kind="news")
    journal = row_id(df, "HARMONi-2", "PFS", "TPS >=50%", source_kind="journal")
    sel = select_evidence(df, trials="HARMONi-2", prefer=[news])
    assert news in sel.row_ids and journal not in sel.row_ids
    why = reasons(sel)[journal]
    assert "preferred by the user" in why
    assert sel.criteria["prefer"] == [news]


def test_prefer_by_hash_suffix_overrides_maturity():
    df = shipped()
    early = row_id(df, "HARMONi-A", "OS", maturity=0.30)
    mature = row_id(df, "HARMONi-A", "OS", maturity=0.52)
    sel = select_evidence(df, trials="HARMONi-A", endpoint="OS", prefer=[early.rsplit("|", 1)[1]])
    assert sel.row_ids == [early]
    assert mature in reasons(sel)


def test_exclude_drops_a_row_with_reason_and_the_next_one_is_used():
    df = shipped()
    press = row_id(df, "HARMONi-2", "OS", source_kind="press")
    news = row_id(df, "HARMONi-2", "OS", source_kind="news")
    sel = select_evidence(df, trials="HARMONi-2", endpoint="OS", as_of="2025-06-30", exclude=[press.rsplit("|", 1)[1]])
    assert sel.row_ids == [news]
    assert reasons(sel)[press] == "excluded by the user"


@pytest.mark.parametrize("kind", ["prefer", "exclude"])
@pytest.mark.parametrize("bad", ["zzzzzz", "HARMONi-2|PFS|overall=ITT|2024-09-08|000000"])
def test_unknown_ids_raise(kind, bad):
    with pytest.raises(EvidenceError) as info:
        select_evidence(shipped(), **{kind: [bad]})
    assert bad in str(info.value)


def test_unknown_trials_raise_naming_each():
    with pytest.raises(EvidenceError) as info:
        select_evidence(shipped(), trials=["HARMONi-2", "HARMONi-9", "KEYNOTE-999"])
    assert {p.reason.split("'")[1] for p in info.value.problems} == {"HARMONi-9", "KEYNOTE-999"}


def test_filters_restrict_the_scope():
    df = shipped()
    sel = select_evidence(df, trials=["HARMONi-2"], endpoint="PFS", subgroup_factor="overall")
    assert set(sel.used.trial) == {"HARMONi-2"}
    assert set(sel.excluded.trial) <= {"HARMONi-2"}
    assert set(sel.used.endpoint) == {"PFS"} and set(sel.used.subgroup_factor) == {"overall"}


def test_unusable_rows_are_shown_with_their_reason():
    df = shipped()
    sel = select_evidence(df, trials="HARMONi-2")
    rid = row_id(df, "HARMONi-2", "PFS", "never")
    assert reasons(sel)[rid].startswith("cannot enter a likelihood: no standard error")


def test_explain_gives_one_sentence_per_row_left_out():
    sel = select_evidence(shipped())
    lines = sel.explain()
    assert len(lines) == len(sel.excluded)
    assert all(": " in line for line in lines)


# --------------------------------------------------------------------------- filter_as_of (reference table)


def test_filter_as_of_on_a_table_without_dates():
    ref = load_reference_trials().assign(disclosed="")  # a user's reference table may carry no dates
    kept, left, has_dates = filter_as_of(ref, "2020-01-01")
    assert has_dates is False and len(kept) == len(ref) and left.empty


def test_filter_as_of_on_a_reference_table_with_dates(reference_table, write_csv):
    header, rows = reference_table
    at = header.index("disclosed")

    def dated(row, date):
        return [*row[:at], date, *row[at + 1 :]]

    path = write_csv(
        [dated(rows[0], "2016-10-09"), dated(rows[1], "2019-01-08"), dated(rows[3], "")], header=header, name="ref.csv"
    )
    ref = read_evidence(path)
    kept, left, has_dates = filter_as_of(ref, "2018-01-01")
    assert has_dates
    assert len(kept) == 2 and len(left) == 1
    assert left.reason.iloc[0].startswith("not yet disclosed")


def test_the_shipped_reference_table_is_a_true_hindcast():
    """Every shipped reference row has a disclosure date, so an as-of selection sees only what was public."""
    ref = load_reference_trials()
    assert (ref.disclosed != "").all()
    kept, left, has_dates = filter_as_of(ref, "2024-09-30")
    assert has_dates and (kept.disclosed <= "2024-09-30").all() and len(kept) + len(left) == len(ref)
    # KEYNOTE-189's 5-year update (2022) was public on that date; EMPOWER-Lung 3's 5-year one (WCLC 2025) was not
    assert "2025-09-09" in set(ref[ref.trial == "EMPOWER-Lung 3 Part 2"].disclosed)
    assert not (kept.trial.eq("EMPOWER-Lung 3 Part 2") & kept.os_analysis.str.startswith("5yr")).any()


# --------------------------------------------------------------------------- helpers


def _shipped_rows():
    with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as fh:
        header, *rows = csv.reader(fh)
    return header, rows


def test_a_later_analysis_named_differently_supersedes_an_earlier_one_of_the_same_kind():
    """HARMONi-2's prespecified OS interim (WCLC 2026) replaces the unplanned 2025 look, though both are
    'interim' with no cutoff stated: differently named and 17 months apart, they are two analyses."""
    df = shipped()
    sel = select_evidence(df, trials="HARMONi-2", endpoint="OS", subgroup_factor="overall", as_of="2026-12-01")
    assert sel.used.hr.tolist() == [0.73]
    early = sel.excluded[sel.excluded.disclosed == "2025-04-25"]
    assert len(early) == 2 and early.reason.str.startswith("superseded by a more mature analysis").all()
    # a talk and its paper months apart are still one analysis (HARMONi-2 PFS, WCLC 2024 and Lancet 2025)
    pfs = select_evidence(df, trials="HARMONi-2", endpoint="PFS", subgroup_factor="overall")
    assert any(r.startswith("duplicate report") for r in pfs.excluded.reason)


def test_new_readouts_need_what_they_need():
    """The 2025-2026 readouts: SEs from p-values, points-only rows shown but unusable, a new trial."""
    df = shipped()
    by = {(r.trial, r.endpoint, r.subgroup_level, r.disclosed): r for r in df.itertuples()}
    harmoni_a_final = by[("HARMONi-A", "OS", "ITT", "2025-11-07")]
    assert harmoni_a_final.se_method == "p_value" and harmoni_a_final.usable
    points = df[(df.trial == "HARMONi-2") & (df.endpoint == "OS") & (df.subgroup_factor != "overall")]
    assert len(points) == 4 and not points.usable.any()
    assert points.unusable_reason.str.contains("no standard error").all()
    sel = select_evidence(df, trials="HARMONi-6", endpoint="PFS", subgroup_factor="overall")
    assert sel.used.hr.tolist() == [0.60]
    assert select_evidence(df, trials="HARMONi-6", as_of="2025-06-30").used.empty  # not yet disclosed
