"""The ``harmoni-bayes`` command line: a thin shell over the public functions.

Known errors become one message on stderr and an exit code, never a traceback:
0 success, 2 bad input (evidence, spec, model), 3 diagnostics failed under ``--strict``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from .errors import HarmoniError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
evidence_app = typer.Typer(no_args_is_help=True, help="Validate, show and append evidence tables.")
app.add_typer(evidence_app, name="evidence")

EXIT_BAD_INPUT = 2
EXIT_DIAGNOSTICS = 3


def _errors_to_exit(fn):
    """Map known errors to a one-message exit; everything else stays a real bug with a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HarmoniError as exc:
            typer.echo(f"error: {exc.message()}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def _load(path: Path | None) -> pd.DataFrame:
    from .evidence import load_evidence, read_evidence

    return read_evidence(path) if path else load_evidence()


def _echo_warnings(df: pd.DataFrame) -> None:
    for w in df.attrs.get("warnings", []):
        typer.echo(f"warning: {w}", err=True)


@evidence_app.command("validate")
@_errors_to_exit
def evidence_validate(file: Annotated[Path, typer.Argument(help="CSV file in either evidence schema")]) -> None:
    """Validate FILE: exit 0 with a one-line summary, or exit 2 listing every problem."""
    from .evidence import evidence_summary

    df = _load(file)
    _echo_warnings(df)
    typer.echo(f"{file}: valid {df.attrs['schema']} table: {evidence_summary(df)}")


@evidence_app.command("show")
@_errors_to_exit
def evidence_show(
    as_of: Annotated[str | None, typer.Option("--as-of", help="only evidence disclosed by this date")] = None,
    trial: Annotated[list[str] | None, typer.Option("--trial", help="trial name (repeatable)")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="PFS, OS or ORR")] = None,
    factor: Annotated[str | None, typer.Option("--factor", help="subgroup factor, e.g. pdl1 or overall")] = None,
    file: Annotated[Path | None, typer.Option("--evidence", help="evidence CSV (default: shipped)")] = None,
) -> None:
    """Show rows with log-HR, SE, se_method and whether each is used, with the reason when not."""
    from .selection import select_evidence

    df = _load(file)
    _echo_warnings(df)
    sel = select_evidence(df, as_of=as_of, trials=trial or None, endpoint=endpoint, subgroup_factor=factor)
    typer.echo(format_selection(df, sel))


def format_selection(df: pd.DataFrame, sel) -> str:
    """A readable table of every in-scope row: used rows first, then the rest with reasons."""
    reasons = dict(zip(sel.excluded.row_id, sel.excluded.reason, strict=True))
    rows = df[df.row_id.isin(set(sel.used.row_id) | set(reasons))]
    table = pd.DataFrame(
        {
            "id": [r.split("|")[-1] for r in rows.row_id],
            "trial": rows.trial,
            "endpoint": rows.endpoint,
            "subgroup": rows.subgroup_factor + "=" + rows.subgroup_level,
            "disclosed": rows.disclosed,
            "source": rows.source_kind,
            "HR": rows.hr.map(lambda x: "" if pd.isna(x) else f"{x:g}"),
            "CI": [_ci(lo, hi) for lo, hi in zip(rows.ci_lower, rows.ci_upper, strict=True)],
            "log_hr": rows.log_hr.map(lambda x: "" if pd.isna(x) else f"{x:.3f}"),
            "se": rows.se.map(lambda x: "" if pd.isna(x) else f"{x:.3f}"),
            "se_method": rows.se_method,
            "used": ["yes" if r in set(sel.used.row_id) else "no" for r in rows.row_id],
        }
    )
    table = table.sort_values(["used", "trial", "endpoint", "subgroup"], ascending=[False, True, True, True])
    lines = [table.to_string(index=False)]
    if reasons:
        lines += ["", "Not used:"]
        lines += [f"  {rid.split('|')[-1]}  {rid.rsplit('|', 1)[0]}: {why}" for rid, why in reasons.items()]
    crit = {k: v for k, v in sel.criteria.items() if v}
    lines += ["", f"{len(sel.used)} row(s) used; selection: {crit or 'all rows'}"]
    return "\n".join(lines)


def _ci(lo: float, hi: float) -> str:
    return "" if pd.isna(lo) else f"{lo:g}-{hi:g}"


@evidence_app.command("add")
@_errors_to_exit
def evidence_add(
    new: Annotated[Path, typer.Argument(help="CSV with the new rows, same columns as the target")],
    into: Annotated[Path, typer.Option("--into", help="evidence CSV to append to")],
) -> None:
    """Validate NEW together with the rows in --into, then append atomically (existing rows untouched)."""
    from .io import append_evidence

    n = append_evidence(new, into)
    typer.echo(f"appended {n} row(s) to {into}")


def main() -> None:  # pragma: no cover - console entry point alternative
    app(prog_name="harmoni-bayes")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
