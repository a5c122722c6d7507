"""log HR and SE for every row, with the route recorded in se_method."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from harmoni_bayes.effects import ci_from_se, parse_p_value, se_from_ci, se_from_events
from harmoni_bayes.evidence import (
    load_evidence,
    load_reference_trials,
    parse_evidence_text,
    read_evidence,
)
from helpers import csv_text, shipped_header_and_row

Z95 = stats.norm.ppf(0.975)
Z90 = stats.norm.ppf(0.95)

NO_CI = {"ci_lower": "", "ci_upper": "", "ci_level": "", "p_value": ""}


def one_row(make_row, write_csv, **cells):
    df = read_evidence(write_csv([make_row(**cells)]))
    assert len(df) == 1
    return df.iloc[0]


# --------------------------------------------------------------------------- shipped worked example


def test_harmoni2_itt_pfs_matches_the_methods_brief_worked_example():
    df = load_evidence()
    rows = df[(df.trial == "HARMONi-2") & (df.endpoint == "PFS") & (df.subgroup_level == "ITT")]
    assert len(rows) == 2  # WCLC 2024 and Lancet 2025 report the same numbers
    for r in rows.itertuples():
        assert r.se_method == "ci" and r.usable
        assert round(r.log_hr, 3) == -0.673
        assert round(r.se, 3) == 0.152
        # half-widths on the log scale, divided by z: 0.150 below, 0.154 above
        assert round(math.log(r.hr / r.ci_lower) / Z95, 3) == 0.150
        assert round(math.log(r.ci_upper / r.hr) / Z95, 3) == 0.154
        assert r.se == pytest.approx((0.150 + 0.154) / 2, abs=5e-4)
        # implied events 4 / se^2
        assert 4 / r.se**2 == pytest.approx(173, abs=1)


def test_every_shipped_row_has_a_route_or_a_reason():
    df = load_evidence()
    assert set(df.se_method) <= {"ci", "events", "maturity", "p_value", ""}
    usable = df[df.usable]
    assert (usable.se > 0).all() and np.isfinite(usable.se).all()
    assert (usable.se_method != "").all()
    assert np.allclose(usable.log_hr, np.log(usable.hr))
    unusable = df[~df.usable]
    assert len(unusable) > 0
    assert (unusable.unusable_reason.str.len() > 0).all()
    assert unusable.se.isna().all()


def test_shipped_harmoni2_os_uses_maturity_and_events():
    df = load_evidence()
    os_rows = df[(df.trial == "HARMONi-2") & (df.endpoint == "OS")].set_index("source_kind")
    press, news = os_rows.loc["press"], os_rows.loc["news"]
    assert press.se_method == "maturity"
    pi = 198 / 398
    assert press.se == pytest.approx(math.sqrt(1 / (0.39 * 398 * pi * (1 - pi))))
    assert news.se_method == "events"
    assert news.se == pytest.approx(math.sqrt(4 / 157))


def test_reference_table_effects():
    df = load_reference_trials()
    r = df[df.trial == "KEYNOTE-024"].iloc[0]
    assert r.log_hr_pfs == pytest.approx(math.log(0.50))
    assert r.se_pfs == pytest.approx((math.log(0.68) - math.log(0.37)) / (2 * Z95))
    assert r.log_hr_os == pytest.approx(math.log(0.60))
    assert r.se_os == pytest.approx((math.log(0.89) - math.log(0.41)) / (2 * Z95))


# --------------------------------------------------------------------------- routes


def test_ci_route_at_95_percent(make_row, write_csv):
    r = one_row(make_row, write_csv, hr="0.79", ci_lower="0.62", ci_upper="1.01", ci_level="0.95")
    assert r.se_method == "ci"
    assert r.se == pytest.approx((math.log(1.01) - math.log(0.62)) / (2 * Z95))


def test_ci_route_at_90_percent(make_row, write_csv):
    r = one_row(make_row, write_csv, hr="0.79", ci_lower="0.65", ci_upper="0.96", ci_level="0.90")
    assert r.se_method == "ci"
    assert r.se == pytest.approx((math.log(0.96) - math.log(0.65)) / (2 * Z90))
    # a 90% CI is narrower for the same SE: reading it as 95% would understate the SE
    assert r.se > (math.log(0.96) - math.log(0.65)) / (2 * Z95)


def test_ci_route_wins_over_events_and_p_value(make_row, write_csv):
    r = one_row(make_row, write_csv, events_total="100", maturity="0.5", p_value="0.001")
    assert r.se_method == "ci"
    assert r.se == pytest.approx(se_from_ci(0.38, 0.69))


def test_events_route_one_to_one_is_four_over_d(make_row, write_csv):
    r = one_row(make_row, write_csv, **NO_CI, events_total="200", n_experimental="", n_control="")
    assert r.se_method == "events" and r.usable
    assert r.se == pytest.approx(math.sqrt(4 / 200))
    r = one_row(make_row, write_csv, **NO_CI, events_total="200", n_experimental="150", n_control="150")
    assert r.se == pytest.approx(math.sqrt(4 / 200))


def test_events_route_uses_unequal_arm_sizes(make_row, write_csv):
    r = one_row(make_row, write_csv, **NO_CI, events_total="270", n_experimental="300", n_control="150")
    assert r.se_method == "events"
    # Var = 1 / (D pi (1 - pi)) with pi = 2/3: 4.5 / D, larger than the 1:1 value 4 / D
    assert r.se == pytest.approx(math.sqrt(4.5 / 270))
    assert r.se > math.sqrt(4 / 270)


def test_events_route_wins_over_maturity(make_row, write_csv):
    r = one_row(make_row, write_csv, **NO_CI, events_total="100", maturity="0.9")
    assert r.se_method == "events"
    assert r.se == pytest.approx(se_from_events(100, 198, 200))


def test_maturity_route_uses_randomised_patients(make_row, write_csv):
    r = one_row(make_row, write_csv, **NO_CI, maturity="0.5", n_experimental="200", n_control="200")
    assert r.se_method == "maturity"
    assert r.se == pytest.approx(math.sqrt(4 / 200))
    r = one_row(make_row, write_csv, **NO_CI, maturity="0.5", n_experimental="200", n_control="100")
    assert r.se == pytest.approx(math.sqrt(1 / (150 * (2 / 3) * (1 / 3))))


def test_maturity_without_arm_sizes_is_no_route(make_row, write_csv):
    r = one_row(make_row, write_csv, **NO_CI, maturity="0.5", n_experimental="", n_control="")
    assert not r.usable and r.se_method == ""


def test_exact_two_sided_p_value_route(make_row, write_csv):
    r = one_row(make_row, write_csv, **{**NO_CI, "hr": "0.79", "p_value": "0.057"})
    assert r.se_method == "p_value" and r.usable
    assert r.se == pytest.approx(abs(math.log(0.79)) / stats.norm.ppf(1 - 0.057 / 2))


def test_one_sided_p_value_is_doubled(make_row, write_csv):
    one = one_row(make_row, write_csv, **{**NO_CI, "hr": "0.79", "p_value": "0.0285 (one-sided)"})
    two = one_row(make_row, write_csv, **{**NO_CI, "hr": "0.79", "p_value": "0.057"})
    assert one.se_method == "p_value"
    assert one.se == pytest.approx(two.se)


@pytest.mark.parametrize("p", ["<0.0001", "<0.0001 (one-sided)", "≤0.05", ">0.05", "< 0.001"])
def test_p_value_inequalities_are_refused(make_row, write_csv, p):
    r = one_row(make_row, write_csv, **{**NO_CI, "p_value": p})
    assert not r.usable
    assert np.isnan(r.se)
    assert r.log_hr == pytest.approx(math.log(0.51))
    assert "inequality" in r.unusable_reason


@pytest.mark.parametrize("p", ["0.5 (one-sided)", "0.6 (one-sided)"])
def test_one_sided_p_of_one_half_or_more_never_gives_an_infinite_se(make_row, write_csv, p):
    # Doubling a one-sided p >= 0.5 gives p = 1, z = 0 and SE = |ln HR| / 0 = inf.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = one_row(make_row, write_csv, **{**NO_CI, "p_value": p})
    assert (r.usable and np.isfinite(r.se)) or (not r.usable and r.unusable_reason), (r.usable, r.se)


def test_row_with_no_route_stays_visible_and_unusable(make_row, write_csv):
    df = read_evidence(write_csv([make_row(**NO_CI), make_row(1)]))
    assert len(df) == 2
    r = df.iloc[0]
    assert not r.usable
    assert r.se_method == ""
    assert np.isnan(r.se)
    assert r.log_hr == pytest.approx(math.log(0.51))
    assert "no standard error" in r.unusable_reason
    assert df.iloc[1].usable and df.iloc[1].unusable_reason == ""


def test_orr_row_is_unusable_with_reason():
    df = load_evidence()
    orr = df[df.endpoint == "ORR"]
    assert len(orr) > 0
    assert (~orr.usable).all()
    assert orr.unusable_reason.str.contains("ORR").all()


def test_hr_of_one_with_exact_p_is_not_usable_via_p(make_row, write_csv):
    r = one_row(make_row, write_csv, **{**NO_CI, "hr": "1.00", "p_value": "0.99"})
    assert not r.usable and r.log_hr == 0.0


# --------------------------------------------------------------------------- parse_p_value


@pytest.mark.parametrize(
    ("text", "p"),
    [
        ("0.057", 0.057),
        ("=0.057", 0.057),
        ("0.02 (one-sided)", 0.04),
        ("0.02, one sided", 0.04),
        ("1e-5", 1e-5),
        (".03", 0.03),
    ],
)
def test_parse_p_value_exact(text, p):
    got, _ = parse_p_value(text)
    assert got == pytest.approx(p)


@pytest.mark.parametrize("text", ["", "  ", "<0.0001", "≥0.1", "ns", "0", "1.5", "p<0.05"])
def test_parse_p_value_refuses(text):
    got, why = parse_p_value(text)
    assert got is None and why


# --------------------------------------------------------------------------- round trips (hypothesis)

hrs = st.floats(min_value=0.05, max_value=20.0, allow_nan=False)
ses = st.floats(min_value=0.005, max_value=2.0, allow_nan=False)
levels = st.floats(min_value=0.5, max_value=0.995)


@settings(max_examples=200)
@given(hr=hrs, se=ses, level=levels)
def test_se_to_ci_to_se_round_trip(hr, se, level):
    lo, hi = ci_from_se(math.log(hr), se, level)
    assert lo < hr < hi
    assert se_from_ci(lo, hi, level) == pytest.approx(se, rel=1e-9)
    assert math.sqrt(lo * hi) == pytest.approx(hr, rel=1e-9)  # symmetric on the log scale


@settings(max_examples=200)
@given(
    lo=st.floats(min_value=0.01, max_value=10.0),
    ratio=st.floats(min_value=1.01, max_value=50.0),
    level=levels,
)
def test_ci_to_se_to_ci_round_trip(lo, ratio, level):
    hi = lo * ratio
    centre = (math.log(lo) + math.log(hi)) / 2
    se = se_from_ci(lo, hi, level)
    assert se > 0
    lo2, hi2 = ci_from_se(centre, se, level)
    assert lo2 == pytest.approx(lo, rel=1e-9)
    assert hi2 == pytest.approx(hi, rel=1e-9)


@settings(max_examples=100)
@given(hr=hrs, se=ses)
def test_wider_level_gives_wider_ci_for_same_se(hr, se):
    lo90, hi90 = ci_from_se(math.log(hr), se, 0.90)
    lo95, hi95 = ci_from_se(math.log(hr), se, 0.95)
    assert lo95 < lo90 and hi90 < hi95
    assert se_from_ci(lo90, hi90, 0.95) < se  # a 90% CI read as 95% understates the SE


@settings(max_examples=200)
@given(
    events=st.integers(min_value=1, max_value=5000),
    n_e=st.integers(min_value=1, max_value=2000),
    n_c=st.integers(min_value=1, max_value=2000),
)
def test_events_to_se_round_trip(events, n_e, n_c):
    se = se_from_events(events, n_e, n_c)
    pi = n_e / (n_e + n_c)
    assert 1 / (se**2 * pi * (1 - pi)) == pytest.approx(events, rel=1e-9)
    se11 = se_from_events(events)
    assert 4 / se11**2 == pytest.approx(events, rel=1e-9)
    assert se >= se11 * (1 - 1e-12)  # unequal allocation never gives more information than 1:1


@settings(max_examples=200)
@given(log_hr=st.floats(min_value=-5, max_value=5), se=ses)
def test_log_hr_and_se_survive_a_printed_round_trip(log_hr, se):
    hr = math.exp(log_hr)
    lo, hi = ci_from_se(log_hr, se)
    assert math.log(hr) == pytest.approx(log_hr, abs=1e-12)
    assert math.log(math.sqrt(lo * hi)) == pytest.approx(log_hr, abs=1e-9)
    assert se_from_ci(lo, hi) == pytest.approx(se, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    hr=st.sampled_from(["0.45", "0.79", "0.9", "1.25", "2.10"]),
    p=st.floats(min_value=1e-6, max_value=0.9),
    one_sided=st.booleans(),
)
def test_p_value_route_inverts_the_wald_test(hr, p, one_sided):
    """The SE derived from an exact p gives back that (two-sided) p in a Wald test."""
    printed = f"{p / 2 if one_sided else p!r}" + (" (one-sided)" if one_sided else "")
    header, row = shipped_header_and_row()
    for k, v in {**NO_CI, "hr": hr, "p_value": printed}.items():
        row[header.index(k)] = v
    r = parse_evidence_text(csv_text(header, [row])).iloc[0]
    assert r.se_method == "p_value" and r.usable
    assert 2 * stats.norm.sf(abs(r.log_hr) / r.se) == pytest.approx(p, rel=1e-6)
