"""Named errors.  Every user mistake becomes one of these, carrying *all* problems found.

The CLI maps them to exit codes (see ``harmoni_bayes.cli``):

* :class:`EvidenceError`, :class:`SpecError`, :class:`ModelError` -> exit 2 (bad input)
* a failed diagnostics gate under ``--strict``                        -> exit 3
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem with one cell (or row, or file) of the user's input.

    ``row`` is the 1-based line number in the file as a spreadsheet shows it
    (the header is line 1, the first data row is line 2), or ``None`` for
    file-level problems such as a missing column.
    """

    reason: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"line {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        loc = ", ".join(where)
        val = f" (value {self.value!r})" if self.value is not None else ""
        return f"{loc}: {self.reason}{val}" if loc else f"{self.reason}{val}"


class HarmoniError(Exception):
    """Base class: an error caused by the user's input, reported without a traceback."""

    def __init__(self, title: str, problems: list[Problem] | None = None):
        self.title = title
        self.problems = list(problems or [])
        super().__init__(self.message())

    def message(self) -> str:
        """The title and every problem, one per line."""
        if not self.problems:
            return self.title
        n = len(self.problems)
        lines = [f"{self.title}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class EvidenceError(HarmoniError):
    """The evidence table is malformed; ``problems`` lists every problem with row and column."""


class SpecError(HarmoniError):
    """An analysis spec (TOML) has unknown keys or bad values."""


class ModelError(HarmoniError):
    """The selected evidence cannot feed the requested model (too few rows, no SE, ...)."""


class ResultError(HarmoniError):
    """A saved result cannot be written or read: a bad output folder, a damaged or hand-edited file."""
