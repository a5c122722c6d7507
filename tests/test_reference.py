"""Choosing reference comparisons for the surrogacy model (harmoni_bayes.reference)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmoni_bayes.errors import ModelError
from harmoni_bayes.reference import family_of, maturity_label, maturity_rank, select_reference

CSV = Path(__file__).resolve().parents[1] / "src" / "harmoni_bayes" / "data" / "nsclc_pfs_os_trials.csv"
Z95X2 = 3.919928


def with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Add row_id, line_no and the derived log-HR/SE columns, as load_reference_trials() does."""
    df = df.copy()
    if "line_no" not in df:
        df["line_no"] = np.arange(2, len(df) + 2)
    if "row_id" not in df:
        df["row_id"] = [
            f"{t}|OS {str(a).split(' ')[0]}|{hashlib.sha1(f'{t}{a}{n}'.encode()).hexdigest()[:6]}"
            for t, a, n in zip(df["trial"], df["os_analysis"], df["line_no"], strict=True)
        ]
    for ep in ("pfs", "os"):
        df[f"log_hr_{ep}"] = np.log(df[f"{ep}_hr"].astype(float))
        df[f"se_{ep}"] = (
            np.log(df[f"{ep}_ci_upper"].astype(float)) - np.log(df[f"{ep}_ci_lower"].astype(float))
        ) / Z95X2
    return df


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return with_derived(pd.read_csv(CSV))


def toy(rows: list[dict]) -> pd.DataFrame:
    """A literal reference table; unspecified columns get harmless defaults."""
    base = {
        "group": "IO",
        "line": "1L",
        "population": "ITT",
        "pfs_hr": 0.6,
        "pfs_ci_lower": 0.5,
        "pfs_ci_upper": 0.72,
        "os_hr": 0.8,
        "os_ci_lower": 0.66,
        "os_ci_upper": 0.97,
        "os_analysis": "final",
    }
    return with_derived(pd.DataFrame([base | r for r in rows]))


# ---- rules on the real file ------------------------------------------------------------------


def test_one_row_per_comparison_and_every_row_accounted_for(trials):
    sel = select_reference(trials)
    assert sel.used["comparison"].is_unique
    assert set(sel.used["row_id"]).isdisjoint(sel.excluded["row_id"])
    assert len(sel.used) + len(sel.excluded) == len(trials)
    assert sel.excluded["reason"].str.len().gt(0).all()
    assert list(sel.excluded.columns[:3]) == ["row_id", "trial", "reason"]
    assert {"comparison", "family", "n_sharing_control"} <= set(sel.used.columns)


def test_most_mature_os_analysis_is_chosen(trials):
    used = select_reference(trials).used.set_index("comparison")
    expected = {
        "KEYNOTE-024": (4, "5yr"),
        "KEYNOTE-189": (10, "5yr"),
        "KEYNOTE-407": (13, "5yr"),
        "IMpower110": (17, "updated"),
        "IMpower132": (21, "final"),
        "CHOICE-01": (38, "final"),
        "GEMSTONE-302": (39, "4yr"),
        "CheckMate 227 Part 1 (all randomized)": (23, "3yr"),
        "POSEIDON (D+CT vs CT)": (44, "5yr"),
    }
    for comp, (line_no, label) in expected.items():
        assert used.loc[comp, "line_no"] == line_no, comp
        assert used.loc[comp, "maturity"] == label, comp
    assert math.isclose(used.loc["KEYNOTE-024", "os_hr"], 0.62)


def test_default_selection_reasons(trials):
    sel = select_reference(trials)
    reasons = dict(zip(sel.excluded["line_no"], sel.excluded["reason"], strict=True))
    assert reasons[2] == "superseded by a more mature OS analysis (5yr)"  # KEYNOTE-024 interim
    assert reasons[16] == "superseded by a more mature OS analysis (updated)"  # IMpower110 primary
    assert reasons[24] == "no PFS HR: cannot enter the likelihood"  # CheckMate 9LA
    assert reasons[22] == "no PFS HR: cannot enter the likelihood"  # IMpower150 ACP vs BCP
    assert reasons[42] == "subgroup, not ITT"  # RATIONALE-304 PD-L1>=50%
    assert reasons[51] == "group antiVEGF not selected"  # E4599
    assert reasons[50] == "line 2L+ (after 3rd-gen EGFR-TKI) not selected"  # HARMONi (global)
    assert len(sel.used) == 24
    assert not sel.used["group"].eq("antiVEGF").any()


def test_missing_ci_reason_when_groups_and_lines_are_open(trials):
    sel = select_reference(trials, groups=None, lines=None)
    reasons = dict(zip(sel.excluded["trial"], sel.excluded["reason"], strict=True))
    assert reasons["BEYOND"] == "no PFS CI; no OS CI: cannot enter the likelihood"
    assert reasons["BeTa"] == "no PFS HR: cannot enter the likelihood"
    assert "REVEL" in set(sel.used["comparison"])  # 2L admitted when lines=None
    assert "HARMONi" in set(sel.used["comparison"])


def test_lines_match_exactly(trials):
    sel = select_reference(trials, groups=None, lines=("2L",))
    assert "REVEL" in set(sel.used["comparison"]) and "BeTa" not in set(sel.used["comparison"])  # BeTa: no PFS HR
    assert (sel.used["line"] == "2L").all()  # not "2L+ (after ...)"
    assert "HARMONi" not in set(sel.used["comparison"])  # its line is "2L+ (after 3rd-gen EGFR-TKI)"


def test_exclude_trials(trials):
    sel = select_reference(trials, exclude_trials=["KEYNOTE-042"])
    assert "KEYNOTE-042" not in set(sel.used["comparison"])
    rs = sel.excluded.loc[sel.excluded["trial"] == "KEYNOTE-042", "reason"]
    assert len(rs) == 2 and rs.eq("excluded by the user (exclude_trials)").all()


# ---- shared control arms -----------------------------------------------------------------------


def test_shared_control_inflate_multiplies_both_variances(trials):
    infl = select_reference(trials, shared_control="inflate").used.set_index("comparison")
    keep = select_reference(trials, shared_control="keep").used.set_index("comparison")
    for comp in ("POSEIDON (D+CT vs CT)", "POSEIDON (T+D+CT vs CT)", "RATIONALE-307 (arm A vs C)"):
        assert infl.loc[comp, "n_sharing_control"] == 2
        assert infl.loc[comp, "se_pfs"] ** 2 == pytest.approx(2 * keep.loc[comp, "se_pfs"] ** 2)
        assert infl.loc[comp, "se_os"] ** 2 == pytest.approx(2 * keep.loc[comp, "se_os"] ** 2)
        assert infl.loc[comp, "se_os_reported"] == pytest.approx(keep.loc[comp, "se_os"])
    assert infl.loc["POSEIDON (D+CT vs CT)", "family"] == "POSEIDON"
    # IMpower150 ACP vs BCP has no PFS HR, so ABCP vs BCP shares its control with nothing selected.
    assert infl.loc["IMpower150 (ABCP vs BCP)", "n_sharing_control"] == 1
    assert infl.loc["KEYNOTE-024", "se_pfs"] == pytest.approx(keep.loc["KEYNOTE-024", "se_pfs"])
    assert keep["variance_inflation"].eq(1).all()


def test_shared_control_first_keeps_first_of_family(trials):
    sel = select_reference(trials, shared_control="first")
    comps = set(sel.used["comparison"])
    assert "POSEIDON (D+CT vs CT)" in comps and "POSEIDON (T+D+CT vs CT)" not in comps
    assert "RATIONALE-307 (arm A vs C)" in comps and "RATIONALE-307 (arm B vs C)" not in comps
    assert sel.used["family"].is_unique
    r = sel.excluded.set_index("line_no").loc[46, "reason"]  # POSEIDON T+D+CT 5yr row
    assert r == "shares its control arm with POSEIDON (D+CT vs CT), kept instead (shared_control='first')"
    assert len(sel.used) == 22


def test_shared_control_with_antivegf_families(trials):
    sel = select_reference(trials, groups=("antiVEGF",), shared_control="inflate")
    avail = sel.used[sel.used["family"] == "AVAiL"]
    assert len(avail) == 2 and avail["n_sharing_control"].eq(2).all()
    assert avail["variance_inflation"].eq(2.0).all()


# ---- rules on literal tables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "rank"),
    [
        ("interim (second interim analysis)", "interim", 0),
        ("primary as published (median FU ~18.5 mo)", "primary", 1),
        ("updated exploratory (+17 mo follow-up)", "updated", 2),
        ("final (6yr; min FU 68.6 mo; 2025)", "final", 3),
        ("3yr (OS at 3-year follow-up)", "3yr", 7),
        ("4yr follow-up (subgroup analysis; 2025)", "4yr", 8),
        ("5yr (median FU 61.1 mo)", "5yr", 9),
        ("5-year update", "5yr", 9),
    ],
)
def test_maturity_rank(text, label, rank):
    assert maturity_label(text) == label
    assert maturity_rank(text) == rank


def test_maturity_unrecognised():
    assert maturity_label("topline readout") is None
    assert math.isnan(maturity_rank("topline readout"))
    assert math.isnan(maturity_rank(float("nan")))


def test_tie_goes_to_later_line_and_incomplete_later_analysis_does_not_win():
    df = toy(
        [
            {"trial": "A", "os_analysis": "final (journal)", "os_hr": 0.81},
            {"trial": "A", "os_analysis": "final (erratum)", "os_hr": 0.82},
            {"trial": "B", "os_analysis": "interim", "os_hr": 0.7},
            {"trial": "B", "os_analysis": "5yr", "os_ci_lower": np.nan},
            {"trial": "C", "os_analysis": "primary"},
        ]
    )
    sel = select_reference(df)
    used = sel.used.set_index("comparison")
    assert used.loc["A", "os_hr"] == 0.82 and used.loc["A", "line_no"] == 3
    assert used.loc["B", "maturity"] == "interim"
    reasons = dict(zip(sel.excluded["line_no"], sel.excluded["reason"], strict=True))
    assert reasons == {
        2: "superseded by a more mature OS analysis (final)",
        5: "no OS CI: cannot enter the likelihood",
    }


def test_subgroup_rule_is_case_sensitive_marker():
    df = toy(
        [
            {"trial": "A", "population": "PD-L1>=50% SUBGROUP"},
            {"trial": "B", "population": "subgroup-free ITT"},
        ]
    )
    sel = select_reference(df)
    assert list(sel.used["comparison"]) == ["B"]
    assert sel.excluded["reason"].tolist() == ["subgroup, not ITT"]


def test_non_positive_se_is_excluded():
    df = toy([{"trial": "A", "pfs_ci_lower": 0.72, "pfs_ci_upper": 0.5}, {"trial": "B"}])
    sel = select_reference(df)
    assert sel.excluded["reason"].tolist() == ["PFS CI does not give a positive SE: cannot enter the likelihood"]


def test_unrankable_analysis_raises_with_line():
    df = toy([{"trial": "A", "os_analysis": "topline"}, {"trial": "B", "os_analysis": "whenever"}])
    with pytest.raises(ModelError) as exc:
        select_reference(df)
    assert [p.row for p in exc.value.problems] == [2, 3]
    assert "os_analysis" in str(exc.value)


def test_bad_input_raises_all_problems():
    df = toy([{"trial": "A"}]).drop(columns=["se_os", "line"])
    with pytest.raises(ModelError) as exc:
        select_reference(df, shared_control="merge")  # type: ignore[arg-type]
    msg = str(exc.value)
    assert "se_os" in msg and "'line'" in msg and "shared_control" in msg
    assert len(exc.value.problems) == 3


@pytest.mark.parametrize(
    ("trial", "family"),
    [
        ("POSEIDON (D+CT vs CT)", "POSEIDON"),
        ("AVAiL (7.5 mg/kg)", "AVAiL"),
        ("CheckMate 227 Part 1 (all randomized)", "CheckMate 227 Part 1"),
        ("KEYNOTE-024", "KEYNOTE-024"),
    ],
)
def test_family_of(trial, family):
    assert family_of(trial) == family


def test_agrees_with_package_loader(trials):
    from harmoni_bayes.evidence import load_reference_trials

    loaded = load_reference_trials()
    a = select_reference(loaded).used
    b = select_reference(trials).used
    assert list(a["comparison"]) == list(b["comparison"])
    assert list(a["line_no"]) == list(b["line_no"])
    np.testing.assert_allclose(a["se_os"], b["se_os"], rtol=1e-4)
