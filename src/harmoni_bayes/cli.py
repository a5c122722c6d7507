"""The ``harmoni-bayes`` command line: a thin shell over the public functions.

Known errors become one message on stderr and an exit code, never a traceback:
0 success, 2 bad input (evidence, spec, model), 3 diagnostics failed under ``--strict``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from .errors import HarmoniError

# PyTensor installed from pip warns on every start that it found no optimised BLAS; for a command-line
# user this is noise about the environment, not about their analysis.
warnings.filterwarnings("ignore", message=r".*BLAS.*", category=UserWarning)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
evidence_app = typer.Typer(no_args_is_help=True, help="Validate, show and append evidence tables.")
app.add_typer(evidence_app, name="evidence")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"harmoni-bayes {version('harmoni-bayes')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Bayesian evidence synthesis of published oncology hazard ratios (see README.md)."""


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
    if df.attrs.get("schema") == "trials":
        from .selection import select_evidence

        # Selection finds what row checks cannot: two reports of one analysis, equally ranked, that disagree.
        select_evidence(df)
    typer.echo(f"{file}: valid {df.attrs['schema']} table: {evidence_summary(df)}")


@evidence_app.command("show")
@_errors_to_exit
def evidence_show(
    as_of: Annotated[str | None, typer.Option("--as-of", help="only evidence disclosed by this date")] = None,
    trial: Annotated[list[str] | None, typer.Option("--trial", help="trial name (repeatable)")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="PFS, OS or ORR")] = None,
    factor: Annotated[str | None, typer.Option("--factor", help="subgroup factor, e.g. pdl1 or overall")] = None,
    file: Annotated[Path | None, typer.Option("--evidence", help="evidence CSV (default: shipped)")] = None,
    prefer: Annotated[
        list[str] | None, typer.Option("--prefer", help="row id or its 6-character hash to prefer (repeatable)")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="row id or its 6-character hash to leave out (repeatable)")
    ] = None,
) -> None:
    """Show rows with log-HR, SE, se_method and whether each is used, with the reason when not.

    --prefer and --exclude work as in a spec's [evidence] section, e.g. to settle two reports that disagree.
    """
    from .selection import select_evidence

    df = _load(file)
    _echo_warnings(df)
    if df.attrs.get("schema") == "reference":
        from .errors import EvidenceError

        raise EvidenceError(
            f"{file}: 'evidence show' lists trial evidence rows; this is the reference PFS/OS table "
            "(use 'evidence validate' to check it)"
        )
    sel = select_evidence(
        df,
        as_of=as_of,
        trials=trial or None,
        endpoint=endpoint,
        subgroup_factor=factor,
        prefer=prefer or (),
        exclude=exclude or (),
    )
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
    from .append import append_evidence

    n = append_evidence(new, into)
    typer.echo(f"appended {n} row(s) to {into}")


@app.command("run")
@_errors_to_exit
def run(
    spec: Annotated[Path, typer.Argument(help="analysis spec (TOML) in models/")],
    out: Annotated[Path, typer.Option("--out", help="directory for posterior.nc, summary.json, summary.csv")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="use only evidence disclosed by this date")] = None,
    evidence: Annotated[
        Path | None, typer.Option("--evidence", help="evidence CSV (default: spec's or shipped)")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="random seed (default: the spec's)")] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help="exact or mcmc (default: the spec's, else exact where the family has it)"),
    ] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="pymc or nutpie")] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="draws and tuning steps per chain")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 3 when the diagnostics gate fails")] = False,
    report: Annotated[bool, typer.Option("--report", help="also write report.html and report.md")] = False,
) -> None:
    """Fit SPEC and write the result to --out."""
    code, _ = _run_one(
        spec, out, as_of=as_of, evidence=evidence, seed=seed, method=method, backend=backend, draws=draws, report=report
    )
    if strict and code:
        raise typer.Exit(EXIT_DIAGNOSTICS)


def _run_one(spec: Path, out: Path, report: bool = False, **overrides):
    """Fit, save, optionally report; print a summary line.  Returns (1 when diagnostics failed else 0, result)."""
    from .results import check_output_dir, save_result
    from .run import run_spec

    check_output_dir(out)  # refuse a bad --out before minutes of fitting, not after
    result = run_spec(spec, **overrides)
    save_result(result, out)
    if report:
        from .reporting import write_report

        write_report(out, fmt="all")
    diag = result.summary.diagnostics
    status = "ok" if diag["ok"] else "DIAGNOSTICS FAILED: " + "; ".join(diag.get("problems", []))
    typer.echo(f"{result.summary.spec}: wrote {out} ({result.summary.method}; {status})")
    if report:
        from .reporting import build_headline

        answer = next((s for s in build_headline(result) if s.role == "answer"), None)
        if answer is not None:
            typer.echo(f"  {answer.text}")
        typer.echo(f"  report: {out / 'report.html'}")
    if not diag["ok"]:
        typer.echo(f"warning: {result.summary.spec}: {status}", err=True)
    return (0 if diag["ok"] else 1), result


@app.command("run-all")
@_errors_to_exit
def run_all(
    specs_dir: Annotated[Path, typer.Argument(help="directory of specs")] = Path("models"),
    out: Annotated[Path, typer.Option("--out", help="one result directory per spec goes here")] = Path("out"),
    reports: Annotated[Path, typer.Option("--reports", help="reports and index.html go here")] = Path("reports"),
    draws: Annotated[int | None, typer.Option("--draws", help="draws and tuning steps per chain")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 3 when any diagnostics gate fails")] = False,
    pages: Annotated[
        bool, typer.Option("--pages/--no-pages", help="also prior-sensitivity, timeline and scorecard pages")
    ] = True,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="specs fitted at once in worker processes (default: cores; 1: one by one)"),
    ] = None,
) -> None:
    """The main job: fit every shipped spec, write one report per spec and reports/index.html.

    Specs are independent, so they run in parallel worker processes (``--jobs``, default the number of cores);
    the cores are split between them (an MCMC fit runs its chains on its share, a sweep its workers), so the
    results are those of a serial run (``--jobs 1``).  Each spec's lines are printed together when it is done.
    """
    import os
    import time

    from .errors import SpecError
    from .reporting import write_index

    specs = sorted(specs_dir.glob("*.toml"))
    if not specs:
        raise SpecError(f"no *.toml specs in {specs_dir}")
    if jobs is not None and jobs < 1:
        raise SpecError(f"--jobs must be at least 1, got {jobs}")
    cpus = os.cpu_count() or 1
    jobs = min(jobs or cpus, len(specs))
    start = time.time()
    tasks = [
        _SpecTask(spec, i, len(specs), out, reports, draws, pages, start, cores=None if jobs == 1 else cpus // jobs)
        for i, spec in enumerate(specs, start=1)
    ]
    done = _run_tasks(tasks, jobs)
    failed = sum(d.code for d in done)
    broken = [d.spec.name for d in done if d.target is None]
    report_dirs = [d.target for d in sorted(done, key=lambda d: d.index) if d.target is not None]
    if report_dirs:
        index = write_index(report_dirs, reports / "index.html")
        typer.echo(f"wrote {index} ({len(report_dirs)} analyses, {time.time() - start:.0f} s)")
    if broken:
        typer.echo(f"error: {len(broken)} spec(s) could not run: {', '.join(broken)}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if strict and failed:
        raise typer.Exit(EXIT_DIAGNOSTICS)


@dataclass(frozen=True)
class _SpecTask:
    """One spec of the main job, as sent to a worker process."""

    spec: Path
    index: int
    total: int
    out: Path
    reports: Path
    draws: int | None
    pages: bool
    start: float  # time.time() when the main job started, for the progress lines
    cores: int | None = None  # this worker's share of the cores (None: all, as in a serial run)
    capture: bool = False  # keep the printed lines and hand them back (parallel runs print them together)


@dataclass
class _SpecDone:
    """What a worker hands back: the spec, its report folder (None when it could not run), its lines."""

    spec: Path
    index: int
    target: Path | None
    code: int = 0  # 1 when the diagnostics gate failed
    lines: list[tuple[bool, str]] = field(default_factory=list)  # (to stderr, text), in printed order


def _run_tasks(tasks: list[_SpecTask], jobs: int) -> list[_SpecDone]:
    """Serially in this process (``jobs == 1``, lines printed as they come), else in a process pool.

    The pool takes MCMC specs first (they take longest), and prints each spec's lines when it is done.
    """
    if jobs == 1:
        return [_main_job_spec(t) for t in tasks]
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from dataclasses import replace

    order = sorted(tasks, key=lambda t: (not _is_mcmc(t.spec), t.index))
    done = []
    # The platform's default start method (fork on Linux): workers inherit the imported package, not pay for it.
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_main_job_spec, replace(t, capture=True)) for t in order]
        for future in as_completed(futures):
            d = future.result()
            for err, text in d.lines:
                typer.echo(text, err=err)
            done.append(d)
    return done


def _is_mcmc(spec_path: Path) -> bool:
    from .specs import load_spec

    try:
        return load_spec(spec_path).method == "mcmc"
    except HarmoniError:
        return False  # a broken spec fails fast wherever it runs


def _main_job_spec(task: _SpecTask) -> _SpecDone:
    """Fit one spec, write its report (and pages) into the reports folder; the main job's unit of work."""
    import contextlib
    import os
    import time

    done = _SpecDone(task.spec, task.index, None)
    if task.cores is not None:
        from .inference import CORES_ENV

        os.environ[CORES_ENV] = str(task.cores)
    with contextlib.ExitStack() as stack:
        if task.capture:
            stack.enter_context(contextlib.redirect_stdout(_Lines(done.lines, err=False)))
            stack.enter_context(contextlib.redirect_stderr(_Lines(done.lines, err=True)))
        spec = task.spec
        typer.echo(f"[{task.index}/{task.total}] {spec.stem} ({time.time() - task.start:.0f} s)", err=True)
        try:
            done.code, result = _run_one(spec, task.out / spec.stem, draws=task.draws)
        except HarmoniError as exc:  # one bad spec must not cost the user the other analyses
            typer.echo(f"error: {spec.name}: {exc.message()}", err=True)
            return done
        _publish(task.out / spec.stem, task.reports / spec.stem)
        if task.pages:
            _extra_pages(spec, result, task.reports / spec.stem, task.draws, workers=task.cores)
        done.target = task.reports / spec.stem
    return done


def _publish(result_dir: Path, target: Path) -> None:
    """Write the result's report and copy it, with summary.json, into the reports folder."""
    import shutil

    from .reporting import write_report

    write_report(result_dir, fmt="all")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("report.html", "report.md", "report.json", "summary.json"):
        shutil.copy2(result_dir / name, target / name)


class _Lines:
    """A text stream that records each printed line as (to stderr, text), for a worker's output."""

    def __init__(self, lines: list[tuple[bool, str]], err: bool):
        self.lines, self.err, self._buf = lines, err, ""

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self.lines.append((self.err, line))
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: lines are kept as they are completed."""

    def isatty(self) -> bool:
        """Never a terminal."""
        return False


def _extra_pages(spec_path: Path, result, target: Path, draws: int | None, workers: int | None = None) -> None:
    """Prior sensitivity (families that declare settings), the readout timeline (specs with ``timeline = true``)
    and the scorecard of a dated forecast, where there is one.  ``workers``: local sweep workers (default: cores).
    """
    import datetime as dt

    from .models import get_family
    from .reporting.sweeps import write_scorecard, write_sweep
    from .scorecard import score
    from .specs import load_spec
    from .timeline import build_sensitivity, build_timeline

    spec = load_spec(spec_path)
    try:
        if get_family(spec.model).sensitivity:
            write_sweep(build_sensitivity(spec, draws=draws, workers=workers), target)
            typer.echo(f"{spec.name}: wrote {target / 'sensitivity.html'}")
        if spec.timeline:
            write_sweep(build_timeline(spec, draws=draws, workers=workers), target)
            typer.echo(f"{spec.name}: wrote {target / 'timeline.html'}")
        family = get_family(spec.model)
        if "forecast" in family.capabilities and spec.as_of and spec.as_of < dt.date.today():
            write_scorecard(score(spec, spec.as_of, result=result), target)
            typer.echo(f"{spec.name}: wrote {target / 'scorecard.html'}")
    except HarmoniError as exc:  # nothing to score yet, or no timeline: the report itself stands
        typer.echo(f"{spec.name}: {exc.message()}", err=True)


@app.command("compare")
@_errors_to_exit
def compare(
    spec: Annotated[Path, typer.Argument(help="analysis spec (TOML)")],
    as_of: Annotated[list[str], typer.Option("--as-of", help="a date (give two or more)")],
    out: Annotated[Path, typer.Option("--out", help="directory for the comparison")],
    seed: Annotated[int | None, typer.Option("--seed", help="random seed (default: the spec's)")] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="draws and tuning steps per chain")] = None,
) -> None:
    """Fit SPEC as of each date and show how the forecast moved (table, evidence added, figure)."""
    from .reporting import compare_as_of, write_comparison

    comp = compare_as_of(spec, as_of, seed=seed, draws=draws)
    for path in write_comparison(comp, out):
        typer.echo(f"wrote {path}")
    typer.echo(comp.table().to_string())


_SCHEDULER = typer.Option(
    "--scheduler",
    envvar="HARMONI_DASK_SCHEDULER",
    help="address of a Dask scheduler (tcp://host:8786); default: local worker processes",
)


@app.command("timeline")
@_errors_to_exit
def timeline(
    spec: Annotated[Path, typer.Argument(help="analysis spec (TOML)")],
    out: Annotated[Path, typer.Option("--out", help="folder for timeline.html, .json and .csv")],
    method: Annotated[str | None, typer.Option("--method", help="exact or mcmc (default: exact if available)")] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="draws and tuning steps per chain (MCMC)")] = None,
    scheduler: Annotated[str | None, _SCHEDULER] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="local worker processes (default: cores)")] = None,
) -> None:
    """Fit SPEC as of every date on which its evidence changed; write the timeline page.

    Example: harmoni-bayes timeline models/ivonescimab_pfs_meta.toml --out out/timeline
    """
    from .reporting.sweeps import write_sweep
    from .timeline import build_timeline

    tl = build_timeline(spec, method=method, draws=draws, scheduler=scheduler, workers=workers)
    for path in write_sweep(tl, out):
        typer.echo(f"wrote {path}")
    _echo_failed(tl)


@app.command("sensitivity")
@_errors_to_exit
def sensitivity(
    spec: Annotated[Path, typer.Argument(help="analysis spec (TOML)")],
    grid: Annotated[
        Path | None, typer.Option("--grid", help="TOML of [[setting]] tables (default: the family's own settings)")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="folder for sensitivity.html, .json and .csv")] = Path(
        "sensitivity"
    ),
    method: Annotated[str | None, typer.Option("--method", help="exact or mcmc (default: exact if available)")] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="draws and tuning steps per chain (MCMC)")] = None,
    scheduler: Annotated[str | None, _SCHEDULER] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="local worker processes (default: cores)")] = None,
) -> None:
    """Fit SPEC under each prior setting of GRID; write a table and a strip of the headline quantity.

    Example: harmoni-bayes sensitivity models/harmoni2_pfs_pdl1.toml --grid tau_grid.toml --out out/sens
    """
    from .reporting.sweeps import write_sweep
    from .timeline import build_sensitivity

    sw = build_sensitivity(spec, grid, method=method, draws=draws, scheduler=scheduler, workers=workers)
    for path in write_sweep(sw, out):
        typer.echo(f"wrote {path}")
    _echo_failed(sw)


def _echo_failed(sweep) -> None:
    failed = [s for s in sweep.steps if s.error]
    for s in failed:
        typer.echo(f"warning: {s.label} was not fitted: {s.error}", err=True)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("score")
@_errors_to_exit
def score_cmd(
    spec: Annotated[Path, typer.Argument(help="analysis spec (TOML) of a family that forecasts")],
    forecast_as_of: Annotated[str, typer.Option("--forecast-as-of", help="date of the forecast to score")],
    outcome_as_of: Annotated[
        str | None, typer.Option("--outcome-as-of", help="score readouts disclosed up to this date (default: today)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="also write scorecard.html, .json, .csv here")] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="draws and tuning steps per chain (MCMC)")] = None,
) -> None:
    """Score the forecast SPEC made as of a date against the readouts disclosed after it.

    Example: harmoni-bayes score models/harmoni2_os_forecast.toml --forecast-as-of 2025-06-30
    """
    from .scorecard import score

    card = score(spec, forecast_as_of, outcome_as_of=outcome_as_of, draws=draws)
    for r in card.readouts:
        typer.echo(f"{r.trial} {r.endpoint} HR {r.hr:g} (SE {r.se:.3f}, {r.source_kind}, disclosed {r.disclosed}):")
        for s in r.scores:
            typer.echo(
                f"  {s.forecaster:<42} median HR {s.median_hr:.3f}  PIT {s.pit:.2f}  "
                f"in 50%: {'yes' if s.in_50 else 'no ':<3}  in 95%: {'yes' if s.in_95 else 'no ':<3}  "
                f"log density {s.log_density:.2f}"
            )
    if out is not None:
        from .reporting.sweeps import write_scorecard

        for path in write_scorecard(card, out):
            typer.echo(f"wrote {path}")


@app.command("report")
@_errors_to_exit
def report(
    result_dir: Annotated[Path, typer.Argument(help="a directory written by 'run'")],
    fmt: Annotated[str, typer.Option("--format", help="html, md, json or all")] = "html",
) -> None:
    """Render a saved result into a self-contained report."""
    from .errors import SpecError
    from .reporting import write_report

    if fmt not in ("html", "md", "json", "all"):
        raise SpecError(f"--format must be html, md, json or all, not {fmt!r}")
    for path in write_report(result_dir, fmt=fmt):
        typer.echo(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry point alternative
    """Run the command line as ``harmoni-bayes``."""
    app(prog_name="harmoni-bayes")


if __name__ == "__main__":  # pragma: no cover
    main()
