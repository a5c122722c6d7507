"""Choosing the reference comparisons that feed the PFS -> OS surrogacy model.

Input is the reference-trial table as returned by
``harmoni_bayes.evidence.load_reference_trials()``: the raw columns of
``nsclc_pfs_os_trials.csv`` (numbers as floats, blanks as NaN) plus ``row_id`` (str),
``line_no`` (1-based file line, header = 1) and the derived ``log_hr_pfs``, ``se_pfs``,
``log_hr_os``, ``se_os`` (SE from the 95% CI; NaN when a CI is missing).

:func:`select_reference` applies the rules below, in this order, and gives every row
it leaves out exactly one plain-English reason (the first rule that removes it):

1. ``exclude_trials``: comparisons the user names are left out ("excluded by the user").
2. ``groups`` / ``lines``: the ``group`` and ``line`` columns must match one of the
   given values exactly ("group antiVEGF not selected", "line 2L not selected").
   ``None`` means "any".
3. Population: a row whose ``population`` contains ``SUBGROUP`` is not an ITT result
   ("subgroup, not ITT").
4. Interval levels (``ci_levels``): a CI whose stated level is not 95% (``pfs_ci_level`` /
   ``os_ci_level``) is read at that level (``"as_published"``, default), as if it were 95%
   (``"assume_95"``: what a table that labels it 95% implies), or the row is left out
   (``"exclude"``: "OS interval is a 96% CI").
5. Completeness: a row needs a PFS HR with its CI *and* an OS HR with its CI to enter
   the bivariate likelihood ("no PFS CI: cannot enter the likelihood", ...).
6. One row per comparison (the ``trial`` value): of the rows still standing, keep the
   most mature OS analysis.  Maturity is read from the leading label of
   ``os_analysis``: ``interim`` < ``primary`` < ``updated`` < ``final`` < ``N-yr``
   (``3yr``, ``5yr``, ...; a larger N is more mature).  Ties go to the later file
   line.  The others are "superseded by a more mature OS analysis (5yr)".  Because
   completeness is checked first, an incomplete later analysis never pushes out a
   complete earlier one.
7. Shared control arms: comparisons whose ``trial`` names are equal once the
   parenthetical is removed ("POSEIDON (D+CT vs CT)" -> family "POSEIDON") share a
   control arm, so their estimates are positively correlated.  ``shared_control``:

   * ``"inflate"`` (default): keep them all and multiply *both* variances (PFS and OS)
     of each comparison by the number of comparisons in its family.  With k
     comparisons of equal precision sharing one control, this gives the family the
     total weight of roughly one independent comparison: a conservative
     approximation that avoids the unreported between-comparison covariance.  The
     reported SEs stay in ``se_pfs_reported`` / ``se_os_reported``.
   * ``"first"``: keep the first comparison of each family (by file line) and leave
     the others out ("shares its control arm with ..., kept instead").
   * ``"keep"``: treat them as independent (anti-conservative; for sensitivity only).

Every used row gets a treatment ``class`` (:func:`class_of`): its ``group``, except that groups
named in ``split_lines`` are split into first-line and later-line classes (``IO 1L``, ``IO 2L``).

The result is a :class:`ReferenceSelection`: ``used`` (one row per comparison, with
``comparison``, ``class``, ``family``, ``n_sharing_control`` and ``variance_inflation``) and
``excluded`` (``row_id``, ``trial``, ``reason``, plus ``line_no``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .effects import Z95
from .errors import ModelError, Problem

SharedControl = Literal["inflate", "keep", "first"]
CILevels = Literal["as_published", "assume_95", "exclude"]

REQUIRED_COLUMNS = (
    "row_id",
    "line_no",
    "trial",
    "group",
    "line",
    "population",
    "pfs_hr",
    "os_hr",
    "os_analysis",
    "log_hr_pfs",
    "se_pfs",
    "log_hr_os",
    "se_os",
)

#: Maturity rank of the leading ``os_analysis`` label; ``N-yr`` ranks above ``final`` (4 + N).
MATURITY_RANK = {"interim": 0, "primary": 1, "updated": 2, "final": 3}
_YEARS = re.compile(r"^(\d+(?:\.\d+)?)\s*-?\s*(?:yr|yrs|year|years)\b")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)")


@dataclass(frozen=True)
class ReferenceSelection:
    """Reference comparisons used by the surrogacy model, and the rows left out with reasons.

    ``used``: one row per comparison; all input columns plus ``comparison`` (= ``trial``),
    ``family`` (trial name without its parenthetical), ``n_sharing_control`` (number of
    selected comparisons in the family, before ``shared_control`` is applied),
    ``variance_inflation`` (factor applied to both variances; 1 unless ``"inflate"``),
    ``se_pfs_reported`` / ``se_os_reported`` (SEs before inflation) and ``maturity``
    (the parsed ``os_analysis`` label).  ``se_pfs`` / ``se_os`` are the SEs that enter the
    likelihood.

    ``excluded``: ``row_id``, ``trial``, ``reason`` and ``line_no``, one row per row left out.
    """

    used: pd.DataFrame
    excluded: pd.DataFrame
    shared_control: SharedControl = "inflate"

    @property
    def comparisons(self) -> list[str]:
        """Labels of the comparisons used, in order."""
        return list(self.used["comparison"])


def maturity_label(text: object) -> str | None:
    """The leading maturity label of an ``os_analysis`` text, or ``None`` if unrecognised.

    ``"5yr (median FU ...)"`` -> ``"5yr"``; ``"updated exploratory (...)"`` -> ``"updated"``;
    ``"final (6yr; ...)"`` -> ``"final"`` (only the leading label counts).
    """
    if not isinstance(text, str):
        return None
    s = text.strip().lower()
    m = _YEARS.match(s)
    if m:
        n = float(m.group(1))
        return f"{n:g}yr"
    for label in MATURITY_RANK:
        if re.match(rf"^{label}\b", s):
            return label
    return None


def maturity_rank(text: object) -> float:
    """Rank of an ``os_analysis`` text: interim 0 < primary 1 < updated 2 < final 3 < N-yr (4 + N).

    Unrecognised text ranks ``NaN`` (``select_reference`` refuses it with a ModelError).
    """
    label = maturity_label(text)
    if label is None:
        return math.nan
    if label.endswith("yr"):
        return 4.0 + float(label[:-2])
    return float(MATURITY_RANK[label])


def family_of(trial: str) -> str:
    """Trial name with parentheticals removed: ``"POSEIDON (D+CT vs CT)"`` -> ``"POSEIDON"``."""
    return _PARENTHETICAL.sub("", str(trial)).strip()


def class_of(group: str, line: str, split_lines: Sequence[str] = ("IO",)) -> str:
    """The treatment class of a reference comparison: ``group``, or ``"<group> 1L"`` / ``"<group> 2L"``.

    Groups in ``split_lines`` are split by line of therapy, because a drug's PFS-to-OS relation differs
    between first line and pretreated disease (post-progression therapy differs): a ``line`` starting
    with ``1L`` is first line (maintenance included), anything else is later line.
    """
    if group not in split_lines:
        return str(group)
    return f"{group} 1L" if str(line).strip().upper().startswith("1L") else f"{group} 2L"


def _level_reason(row: pd.Series, ci_levels: str) -> str | None:
    if ci_levels != "exclude":
        return None
    off = [
        f"{name} interval is a {100 * float(row[col]):g}% CI"
        for name, col in (("PFS", "ci_level_pfs"), ("OS", "ci_level_os"))
        if col in row and pd.notna(row[col]) and abs(float(row[col]) - 0.95) > 1e-9
    ]
    return "; ".join(off) + " (ci_levels = 'exclude')" if off else None


def _missing_reason(row: pd.Series) -> str | None:
    parts = []
    for endpoint, hr_col, se_col in (("PFS", "pfs_hr", "se_pfs"), ("OS", "os_hr", "se_os")):
        hr, se = row[hr_col], row[se_col]
        if pd.isna(hr):
            parts.append(f"no {endpoint} HR")
        elif pd.isna(se):
            parts.append(f"no {endpoint} CI")
        elif not (np.isfinite(se) and se > 0):
            parts.append(f"{endpoint} CI does not give a positive SE")
    if not parts:
        return None
    return "; ".join(parts) + ": cannot enter the likelihood"


def _check_input(df: pd.DataFrame, shared_control: str, ci_levels: str) -> None:
    problems = [Problem(f"reference table lacks column '{c}'", column=c) for c in REQUIRED_COLUMNS if c not in df]
    if shared_control not in ("inflate", "keep", "first"):
        problems.append(Problem(f"shared_control must be 'inflate', 'keep' or 'first', not {shared_control!r}"))
    if ci_levels not in ("as_published", "assume_95", "exclude"):
        problems.append(Problem(f"ci_levels must be 'as_published', 'assume_95' or 'exclude', not {ci_levels!r}"))
    if problems:
        raise ModelError("cannot select reference comparisons", problems)


def select_reference(
    df: pd.DataFrame,
    *,
    groups: Sequence[str] | None = ("IO", "IO+antiVEGF"),
    lines: Sequence[str] | None = ("1L",),
    shared_control: SharedControl = "inflate",
    exclude_trials: Sequence[str] = (),
    ci_levels: CILevels = "as_published",
    split_lines: Sequence[str] = ("IO",),
) -> ReferenceSelection:
    """Choose one row per reference comparison for the surrogacy model (rules in the module docstring).

    Parameters
    ----------
    df:
        The reference-trial table (see module docstring for the columns).
    groups, lines:
        Values of the ``group`` / ``line`` columns to keep, matched exactly; ``None`` keeps all.
        Default: first-line checkpoint-inhibitor comparisons (``IO`` and ``IO+antiVEGF``, ``1L``).
    shared_control:
        ``"inflate"`` (default; both variances times the family size), ``"first"`` (first
        comparison of each family) or ``"keep"`` (treat as independent).
    exclude_trials:
        ``trial`` values to leave out (e.g. for sensitivity analyses).
    ci_levels:
        Intervals that are not 95%: ``"as_published"`` (SE from the stated level), ``"assume_95"`` or
        ``"exclude"`` (rule 4).
    split_lines:
        Groups split into first-line and later-line classes (:func:`class_of`).

    Raises
    ------
    ModelError
        If columns are missing, ``shared_control`` is unknown, or an ``os_analysis`` label of a
        candidate row cannot be ranked (all such problems at once).
    """
    _check_input(df, shared_control, ci_levels)
    data = df.reset_index(drop=True).copy()
    if ci_levels == "assume_95":
        # Read every interval as 95%: SE = (ln U - ln L) / (2 z_0.975).
        for ep in ("pfs", "os"):
            data[f"se_{ep}"] = (np.log(data[f"{ep}_ci_upper"]) - np.log(data[f"{ep}_ci_lower"])) / (2 * Z95)
    groups_set = None if groups is None else set(groups)
    lines_set = None if lines is None else set(lines)
    excluded_trials = set(exclude_trials)

    reasons: dict[int, str] = {}

    # Rules 1-5: one reason per row, the first rule that removes it.
    for i, row in data.iterrows():
        if row["trial"] in excluded_trials:
            reasons[i] = "excluded by the user (exclude_trials)"
        elif groups_set is not None and row["group"] not in groups_set:
            reasons[i] = f"group {row['group']} not selected"
        elif lines_set is not None and row["line"] not in lines_set:
            reasons[i] = f"line {row['line']} not selected"
        elif isinstance(row["population"], str) and "SUBGROUP" in row["population"]:
            reasons[i] = "subgroup, not ITT"
        elif (level := _level_reason(row, ci_levels)) is not None:
            reasons[i] = level
        else:
            missing = _missing_reason(row)
            if missing is not None:
                reasons[i] = missing

    candidates = data.loc[[i for i in data.index if i not in reasons]].copy()

    # Rule 6: most mature OS analysis per comparison; ties -> later file line.
    candidates["maturity"] = candidates["os_analysis"].map(maturity_label)
    candidates["_rank"] = candidates["os_analysis"].map(maturity_rank)
    bad = candidates[candidates["_rank"].isna()]
    if len(bad):
        raise ModelError(
            "cannot rank the maturity of some OS analyses",
            [
                Problem(
                    "os_analysis must start with interim, primary, updated, final or N-yr",
                    row=int(r["line_no"]),
                    column="os_analysis",
                    value=str(r["os_analysis"]),
                )
                for _, r in bad.iterrows()
            ],
        )
    candidates = candidates.sort_values(["trial", "_rank", "line_no"], kind="stable")
    best = candidates.groupby("trial", sort=False).tail(1)
    for i, row in candidates.iterrows():
        if i not in best.index:
            winner = best.loc[best["trial"] == row["trial"]].iloc[0]
            reasons[i] = f"superseded by a more mature OS analysis ({winner['maturity']})"

    used = best.sort_values("line_no", kind="stable").drop(columns="_rank").copy()
    used.insert(0, "comparison", used["trial"].astype(str))
    used["class"] = [class_of(g, ln, split_lines) for g, ln in zip(used["group"], used["line"], strict=True)]
    used["family"] = used["trial"].map(family_of)
    used["n_sharing_control"] = used.groupby("family")["comparison"].transform("size").astype(int)
    used["se_pfs_reported"] = used["se_pfs"].astype(float)
    used["se_os_reported"] = used["se_os"].astype(float)

    # Rule 7: shared control arms.
    if shared_control == "inflate":
        used["variance_inflation"] = used["n_sharing_control"].astype(float)
    else:
        used["variance_inflation"] = 1.0
        if shared_control == "first":
            first = used.groupby("family", sort=False)["comparison"].transform("first")
            for i in used.index[used["comparison"] != first]:
                reasons[i] = f"shares its control arm with {first[i]}, kept instead (shared_control='first')"
            used = used[used["comparison"] == first].copy()
    used["se_pfs"] = used["se_pfs_reported"] * np.sqrt(used["variance_inflation"])
    used["se_os"] = used["se_os_reported"] * np.sqrt(used["variance_inflation"])
    used = used.reset_index(drop=True)

    excluded = pd.DataFrame(
        {
            "row_id": [data.at[i, "row_id"] for i in sorted(reasons)],
            "trial": [data.at[i, "trial"] for i in sorted(reasons)],
            "reason": [reasons[i] for i in sorted(reasons)],
            "line_no": [int(data.at[i, "line_no"]) for i in sorted(reasons)],
        }
    )
    return ReferenceSelection(used=used, excluded=excluded, shared_control=shared_control)
