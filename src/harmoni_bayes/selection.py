"""Choose which evidence rows enter a likelihood, so that no patient is counted twice.

:func:`select_evidence` keeps, for each *estimand* (trial, endpoint, subgroup factor, level),
exactly one row, and says for every other row why it was left out:

1. **As of a date.** Rows disclosed after ``as_of`` are "not yet disclosed".
2. **No standard error.** Rows with no route to an SE (see :mod:`harmoni_bayes.effects`) are shown
   but cannot enter a likelihood.
3. **Same analysis, several reports.** Rows of one estimand are grouped into *analyses*: two rows
   are the same analysis when their ``analysis_kind`` matches, their data cutoffs match (when both
   are stated) and their event information agrees within 10% (when both state it).  Within an
   analysis one row is kept by source precedence, :data:`SOURCE_PRECEDENCE` (journal, then
   conference, company release, news, secondary), and within one kind the later disclosure.  A
   dropped row is a "duplicate report" when its numbers equal the kept row's, else a
   "conflicting report", with both numbers shown.  Two rows of the *same* kind with different
   numbers are a conflict that precedence cannot settle: selection stops with an
   :class:`~harmoni_bayes.errors.EvidenceError` naming both rows, and the user chooses one with
   ``prefer`` (or drops one with ``exclude``).
4. **Most mature analysis.** Across analyses the most mature one is kept: latest data cutoff,
   else most events, else the later analysis kind (interim < primary < updated < final), else
   the latest disclosure.  Earlier analyses are "superseded": the final estimate is sufficient for
   theta (canonical joint distribution, methods §f), so the interim is replaced, never added.
   A supersession never rests on an impossible date: a data cutoff after its disclosure, or a
   disclosure after today, stops selection with an EvidenceError (validated tables never have
   one; a DataFrame built by hand might).

A user can override steps 3-4 with ``prefer`` (row ids, or their 6-character hash suffix) and drop
rows with ``exclude``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key

import numpy as np
import pandas as pd

from . import evidence
from .errors import EvidenceError, Problem
from .schema import ANALYSIS_KINDS, SOURCE_KINDS

SOURCE_PRECEDENCE: tuple[str, ...] = SOURCE_KINDS  # journal > conference > press > news > secondary
_INFO_TOLERANCE = 0.10

ESTIMAND = ["trial", "endpoint", "subgroup_factor", "subgroup_level"]


@dataclass
class Selection:
    """Rows used and rows left out, with the reasons; carried into every result and report."""

    used: pd.DataFrame
    excluded: pd.DataFrame  # columns: row_id, trial, endpoint, subgroup, reason
    criteria: dict = field(default_factory=dict)

    @property
    def row_ids(self) -> list[str]:
        """The ids of the rows used, in table order."""
        return list(self.used.row_id)

    def explain(self) -> list[str]:
        """One sentence per row left out."""
        return [f"{r.row_id}: {r.reason}" for r in self.excluded.itertuples()]


def select_evidence(
    df: pd.DataFrame,
    *,
    as_of: str | dt.date | None = None,
    trials: str | Sequence[str] | None = None,
    endpoint: str | None = None,
    subgroup_factor: str | None = None,
    prefer: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Selection:
    """Select the rows that may enter one likelihood (see the module docstring for the rules).

    ``subgroup_factor=None`` keeps every factor; use ``"overall"`` for the ITT rows only.
    """
    as_of_s = as_of_string(as_of)
    trials = [trials] if isinstance(trials, str) else (list(trials) if trials else None)
    in_scope = df
    if trials is not None:
        unknown = sorted(set(trials) - set(df.trial))
        if unknown:
            raise EvidenceError(
                "unknown trial(s)",
                [
                    Problem(f"no rows for trial {t!r}; known trials: {', '.join(sorted(set(df.trial)))}")
                    for t in unknown
                ],
            )
        in_scope = in_scope[in_scope.trial.isin(trials)]
    if endpoint is not None:
        in_scope = in_scope[in_scope.endpoint == endpoint]
    if subgroup_factor is not None:
        in_scope = in_scope[in_scope.subgroup_factor == subgroup_factor]

    prefer_ids = resolve_ids(df, prefer, "prefer")
    exclude_ids = resolve_ids(df, exclude, "exclude")
    reasons: dict[str, str] = {}
    candidates = []
    for row in in_scope.itertuples(index=False):
        if row.row_id in exclude_ids:
            reasons[row.row_id] = "excluded by the user"
        elif as_of_s is not None and row.disclosed > as_of_s:
            reasons[row.row_id] = f"not yet disclosed on {as_of_s} (disclosed {row.disclosed})"
        elif not row.usable:
            reasons[row.row_id] = f"cannot enter a likelihood: {row.unusable_reason}"
        else:
            candidates.append(row)
            continue
        if row.row_id in prefer_ids:  # say so, rather than ignore the user's preference silently
            reasons[row.row_id] += " (listed in prefer, but it cannot be used)"

    kept: list[str] = []
    problems: list[Problem] = []
    for _, group in _group_by_estimand(candidates):
        kept.append(_choose(group, prefer_ids, reasons, problems))
    if problems:
        raise EvidenceError("the evidence does not say which row to use", problems)

    used = in_scope[in_scope.row_id.isin(kept)].copy()
    order = {rid: i for i, rid in enumerate(in_scope.row_id)}
    # Rows left out keep their identity and source, so reports can link every row they mention.
    shown = ["row_id", "trial", "endpoint", "subgroup_factor", "subgroup_level", "hr", "ci_lower", "ci_upper"]
    shown += ["disclosed", "source", "source_kind"]
    excluded = in_scope[in_scope.row_id.isin(reasons)][shown].copy()
    excluded["subgroup"] = excluded.subgroup_factor + "=" + excluded.subgroup_level
    excluded["reason"] = excluded.row_id.map(reasons)
    excluded = excluded.sort_values("row_id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    criteria = {
        "as_of": as_of_s,
        "trials": trials,
        "endpoint": endpoint,
        "subgroup_factor": subgroup_factor,
        "prefer": sorted(prefer_ids),
        "exclude": sorted(exclude_ids),
    }
    return Selection(used=used, excluded=excluded, criteria=criteria)


def filter_as_of(df: pd.DataFrame, as_of: str | dt.date | None) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Keep rows disclosed on or before ``as_of`` in a table that may lack a ``disclosed`` date.

    Returns (kept, left out with reasons, whether the table carried dates at all).  The reference
    PFS/OS table has no dates; callers record that it could not be filtered.
    """
    as_of_s = as_of_string(as_of)
    has_dates = "disclosed" in df and bool((df["disclosed"] != "").any())
    if as_of_s is None or not has_dates:
        return df, pd.DataFrame(columns=["row_id", "reason"]), has_dates
    late = (df["disclosed"] != "") & (df["disclosed"] > as_of_s)
    left = pd.DataFrame(
        {
            "row_id": df.row_id[late],
            "trial": df.trial[late],
            "reason": [f"not yet disclosed on {as_of_s} (disclosed {d})" for d in df.disclosed[late]],
        }
    )
    return df[~late], left, has_dates


def as_of_string(as_of) -> str | None:
    """``as_of`` as an ISO date string (None for no date); an impossible date is an :class:`EvidenceError`."""
    if as_of is None or as_of == "":
        return None
    if isinstance(as_of, dt.date):
        return as_of.isoformat()
    try:
        return dt.date.fromisoformat(str(as_of)).isoformat()
    except ValueError:
        raise EvidenceError(f"as-of date {as_of!r} is not a real ISO date (YYYY-MM-DD)") from None


def resolve_ids(df: pd.DataFrame, given: Iterable[str], what: str) -> set[str]:
    """Full row ids for user-given ids or 6-character hash suffixes; unknown ones are an error."""
    out, problems = set(), []
    for g in given:
        hits = [rid for rid in df.row_id if rid == g or rid.endswith("|" + g)]
        if len(hits) != 1:
            problems.append(Problem(f"{what}: {g!r} matches {len(hits)} rows (needs exactly one)"))
        else:
            out.add(hits[0])
    if problems:
        raise EvidenceError("row ids in the selection do not match the evidence", problems)
    return out


def _group_by_estimand(rows: list) -> list[tuple[tuple, list]]:
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(getattr(r, c) for c in ESTIMAND), []).append(r)
    return list(groups.items())


def _information(r) -> float | None:
    """Events behind an estimate, when the row states them (events, or maturity x randomised)."""
    if np.isfinite(r.events_total):
        return float(r.events_total)
    if np.isfinite(r.maturity) and np.isfinite(r.n_experimental) and np.isfinite(r.n_control):
        return float(r.maturity * (r.n_experimental + r.n_control))
    return None


def _same_analysis(a, b) -> bool:
    """Whether two rows of one estimand report the same analysis.

    Different kinds, different stated cutoffs, or information (events) differing by more than 10% make
    them different analyses.  When neither cutoff nor information can be compared, rows whose analyses are
    named differently (venue aside) and that were disclosed more than :data:`_SAME_REPORT_DAYS` apart are
    different analyses too: a talk and its paper name one analysis alike within months (HARMONi-2 PFS, WCLC
    2024 and Lancet 2025), while HARMONi-2's unplanned 2025 OS look and its prespecified 2026 OS interim
    are both "interim" with no cutoff stated, yet a year and a half apart.
    """
    if a.analysis_kind != b.analysis_kind:
        return False
    if a.data_cutoff and b.data_cutoff and a.data_cutoff != b.data_cutoff:
        return False
    ia, ib = _information(a), _information(b)
    if ia is not None and ib is not None:
        return abs(ia - ib) <= _INFO_TOLERANCE * max(ia, ib)
    if a.data_cutoff and b.data_cutoff:
        return True
    apart = abs(dt.date.fromisoformat(a.disclosed) - dt.date.fromisoformat(b.disclosed)).days
    return _analysis_name(a.analysis) == _analysis_name(b.analysis) or apart <= _SAME_REPORT_DAYS


_SAME_REPORT_DAYS = 183
_VENUE = re.compile(r",\s*[^,]*\b(19|20)\d\d\b.*$")


def _analysis_name(text: str) -> str:
    """An analysis's name without its venue, in lower case.

    "PFS interim (primary PFS analysis), WCLC 2024" -> "pfs interim (primary pfs analysis)".
    """
    return _VENUE.sub("", str(text or "")).strip().lower()


def _compare_maturity(a: list, b: list) -> int:
    """Order two analyses of one estimand by maturity; each criterion applies only when both state it.

    Data cutoff first, then events, then the analysis kind (interim < primary < updated < final), then the
    latest disclosure.  A criterion that one analysis leaves blank is skipped rather than read as "earliest".
    """
    for key in (_cutoff, _events, _kind_rank, _disclosed):
        ka, kb = key(a), key(b)
        if ka is not None and kb is not None and ka != kb:
            return -1 if ka < kb else 1
    return 0


def _cutoff(analysis: list):
    return max((r.data_cutoff for r in analysis if r.data_cutoff), default=None)


def _events(analysis: list):
    return max((i for r in analysis if (i := _information(r)) is not None), default=None)


def _kind_rank(analysis: list):
    return max(ANALYSIS_KINDS.index(r.analysis_kind) for r in analysis)


def _disclosed(analysis: list):
    return max(r.disclosed for r in analysis)


def _precedence_key(r) -> tuple:
    # lower is better: source kind first, then the later disclosure, then the later line
    return (SOURCE_PRECEDENCE.index(r.source_kind), _neg_date(r.disclosed), -r.line_no)


def _neg_date(d: str) -> int:
    return -dt.date.fromisoformat(d).toordinal()


def _choose(rows: list, prefer: set[str], reasons: dict[str, str], problems: list[Problem]) -> str:
    """Return the kept row id of one estimand; record a reason for every other row.

    Problems that need the user (a tie that precedence cannot break, an impossible date) are added
    to ``problems``.
    """
    analyses: list[list] = []
    for r in sorted(rows, key=lambda r: r.line_no):
        for a in analyses:
            if all(_same_analysis(r, other) for other in a):
                a.append(r)
                break
        else:
            analyses.append([r])

    preferred = [a for a in analyses if any(r.row_id in prefer for r in a)]
    impossible = _impossible_dates(rows, ranks_analyses=not preferred and len(analyses) > 1)
    if impossible:  # selection stops; no row is chosen on such a date
        problems += impossible
        return rows[0].row_id
    best = preferred[0] if preferred else max(analyses, key=cmp_to_key(_compare_maturity))
    ranked = sorted(best, key=lambda r: (r.row_id not in prefer, *_precedence_key(r)))
    keep = ranked[0]
    why_keep = "preferred by the user" if keep.row_id in prefer else f"{keep.source_kind} ranks first"
    if keep.row_id not in prefer:
        problems += _ties(keep, ranked[1:])
    for r in ranked[1:]:
        if _same_numbers(r, keep):
            kind = "duplicate report of the same analysis (same numbers)"
        else:
            kind = f"conflicting report of the same analysis (HR {_fmt(r)} vs {_fmt(keep)} kept)"
        reasons[r.row_id] = f"{kind}; kept {keep.row_id} ({why_keep}; precedence {' > '.join(SOURCE_PRECEDENCE)})"
    for a in analyses:
        if a is best:
            continue
        for r in a:
            reasons[r.row_id] = (
                f"superseded by a more mature analysis ({keep.analysis or keep.analysis_kind}; kept {keep.row_id})"
            )
    return keep.row_id


def _same_numbers(a, b) -> bool:
    return a.hr == b.hr and _nan_eq(a.ci_lower, b.ci_lower) and _nan_eq(a.ci_upper, b.ci_upper)


def _ties(keep, others: list) -> list[Problem]:
    """Rows as high in precedence as the kept one but with other numbers: precedence cannot choose."""
    out = []
    for r in others:
        if r.source_kind == keep.source_kind and not _same_numbers(r, keep):
            out.append(
                Problem(
                    f"rows {keep.row_id} (line {keep.line_no}) and {r.row_id} (line {r.line_no}) report the same "
                    f"analysis from the same kind of source ({r.source_kind}) with different numbers "
                    f"(HR {_fmt(keep)} vs {_fmt(r)}); choose one with "
                    f'prefer = ["{_short(keep.row_id)}"] or prefer = ["{_short(r.row_id)}"] in the spec '
                    "(or exclude the wrong one)",
                    row=int(r.line_no),
                    column="hr",
                )
            )
    return out


def _short(row_id: str) -> str:
    return row_id.rsplit("|", 1)[-1]


def _impossible_dates(rows: list, ranks_analyses: bool) -> list[Problem]:
    """Dates that are not dates, and, when analyses are ranked by them, dates that cannot be true.

    A data cutoff after its disclosure, or a disclosure after today, could let an interim replace the final.
    """
    now = evidence.today().isoformat()
    out = []
    for r in rows:
        disclosed = str(r.disclosed)
        cutoff = r.data_cutoff if isinstance(r.data_cutoff, str) else ""
        line = int(r.line_no)
        for column, value in (("disclosed", disclosed), ("data_cutoff", cutoff)):
            if value and not evidence.is_iso_date(value):
                out.append(Problem(f"row {r.row_id}: is not a real ISO date (YYYY-MM-DD)", line, column, value))
        if not ranks_analyses or not evidence.is_iso_date(disclosed):
            continue
        if disclosed > now:
            reason = f"row {r.row_id}: disclosed after today ({now}); analyses cannot be ranked on a future date"
            out.append(Problem(reason, line, "disclosed", disclosed))
        if cutoff and evidence.is_iso_date(cutoff) and cutoff > disclosed:
            reason = f"row {r.row_id}: data cutoff after its disclosure ({disclosed}); analyses cannot be ranked on it"
            out.append(Problem(reason, line, "data_cutoff", cutoff))
    return out


def _nan_eq(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


def _fmt(r) -> str:
    ci = f" ({r.ci_lower:g}-{r.ci_upper:g})" if np.isfinite(r.ci_lower) else ""
    return f"{r.hr:g}{ci}"
