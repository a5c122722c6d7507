"""The ``harmoni-bayes`` command line: a thin shell over the public functions.

Known errors become one message on stderr and an exit code, never a traceback:
0 success, 2 bad input (evidence, spec, model), 3 diagnostics failed under ``--strict``.

Every command's ``--help`` ends with examples and shows no type tags (``<path>``, ``<int>``): arguments
by name, options with a placeholder (``DATE``, ``DIR``).  Arguments are parsed and checked before the
heavy libraries load: this module imports only typer and the package's errors at start, every command
imports what it needs inside, so ``--help`` or a mistyped option never waits for pandas, PyMC, PyTensor
or ArviZ (``tests/test_cli_help.py``; timings in ``benchmarks/bench_cli.py``).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from .errors import HarmoniError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# PyTensor installed from pip warns on every start that it found no optimised BLAS; for a command-line
# user this is noise about the environment, not about their analysis.
warnings.filterwarnings("ignore", message=r".*BLAS.*", category=UserWarning)


def _no_type_tag(ctx: Any) -> None:
    return None


def _without_type_tags(params: list) -> list:
    """Help without type tags: arguments show their name, flags nothing, other options their metavar."""
    for p in params:
        if p.param_type_name == "argument" or getattr(p, "is_flag", False):
            setattr(p, "display_type_rich", _no_type_tag)  # noqa: B010 - typer's hook for the type column
        elif p.metavar is None:
            p.metavar = p.name.upper()
    return params


class _Command(TyperCommand):
    """A command whose ``--help`` has no type tags (see :func:`_without_type_tags`)."""

    def get_params(self, ctx):
        """The parameters, with the type tags hidden."""
        return _without_type_tags(super().get_params(ctx))


class _Group(TyperGroup):
    """A command group whose ``--help`` has no type tags (see :func:`_without_type_tags`)."""

    def get_params(self, ctx):
        """The parameters, with the type tags hidden."""
        return _without_type_tags(super().get_params(ctx))


def _examples(*commands: str) -> str:
    """The 'Examples' section at the end of a command's ``--help``, one command a line (never rewrapped)."""
    return "\b\nExamples:\n" + "\n".join(f"  {c}" for c in commands)


app = typer.Typer(
    cls=_Group,
    rich_markup_mode=None,  # plain help: '[[setting]]' and '[evidence]' are text, and rich is not loaded
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian evidence synthesis of published oncology hazard ratios (see README.md).",
    epilog=_examples(
        "harmoni-bayes evidence template > rows.csv",
        "harmoni-bayes evidence add rows.csv --into my_trials.csv",
        "harmoni-bayes run models/harmoni2_pfs_pdl1.toml --out out/pdl1",
        "harmoni-bayes report out/pdl1 --format all",
        "harmoni-bayes COMMAND --help",
    ),
)
evidence_app = typer.Typer(
    cls=_Group,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Validate, show, template and append evidence tables.",
    epilog=_examples(
        "harmoni-bayes evidence validate my_trials.csv",
        "harmoni-bayes evidence show --trial HARMONi-2 --endpoint PFS",
        "harmoni-bayes evidence template > rows.csv",
        "harmoni-bayes evidence add rows.csv --into my_trials.csv",
    ),
)
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


@evidence_app.command(
    "validate",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes evidence validate my_trials.csv",
        "harmoni-bayes evidence validate rows.csv",
    ),
)
@_errors_to_exit
def evidence_validate(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV file: trials, reference or network table")],
) -> None:
    """Validate FILE: exit 0 with a one-line summary, or exit 2 listing every problem."""
    from .evidence import evidence_summary

    df = _load(file)
    _echo_warnings(df)
    if df.attrs.get("schema") == "trials":
        from .selection import select_evidence

        # Selection finds what row checks cannot: two reports of one analysis, equally ranked, that disagree.
        select_evidence(df)
    typer.echo(f"{file}: valid {df.attrs['schema']} table: {evidence_summary(df)}")


@evidence_app.command(
    "show",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes evidence show --trial HARMONi-2 --endpoint PFS",
        "harmoni-bayes evidence show --as-of 2025-03-31 --factor pdl1",
        "harmoni-bayes evidence show --evidence my_trials.csv --exclude 3f2a9c",
    ),
)
@_errors_to_exit
def evidence_show(
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="DATE", help="only evidence disclosed by this date")
    ] = None,
    trial: Annotated[list[str] | None, typer.Option("--trial", metavar="NAME", help="trial name (repeatable)")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", metavar="PFS|OS|ORR", help="the endpoint")] = None,
    factor: Annotated[
        str | None, typer.Option("--factor", metavar="NAME", help="subgroup factor, e.g. pdl1 or overall")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--evidence", metavar="FILE", help="evidence CSV (default: shipped)")
    ] = None,
    prefer: Annotated[
        list[str] | None,
        typer.Option("--prefer", metavar="ID", help="row id or its 6-character hash to prefer (repeatable)"),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="ID", help="row id or its 6-character hash to leave out (repeatable)"),
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
    import pandas as pd

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
    return "" if math.isnan(lo) else f"{lo:g}-{hi:g}"


@evidence_app.command(
    "template",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes evidence template > rows.csv",
        "harmoni-bayes evidence template --schema reference > pairs.csv",
    ),
)
@_errors_to_exit
def evidence_template(
    schema: Annotated[
        str,
        typer.Option(
            "--schema",
            metavar="trials|reference|network",
            help="which table: trial estimates, reference PFS/OS pairs or the treatment network",
        ),
    ] = "trials",
) -> None:
    """Print an empty evidence table: the header and one example row, commented out with '#'.

    Redirect it to a file, write one row per reported estimate under the header, and add the file with
    'evidence add'.  Lines starting with '#' are comments that every reader skips; to keep the example as a
    starting point, change its values and delete the '#'.
    """
    from .schema import NETWORK, REFERENCE, TRIALS, template

    schemas = {"trials": TRIALS, "reference": REFERENCE, "network": NETWORK}
    if schema not in schemas:
        from .errors import EvidenceError

        raise EvidenceError(f"--schema must be trials, reference or network, not {schema!r}")
    typer.echo(template(schemas[schema]), nl=False)


@evidence_app.command(
    "add",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes evidence add rows.csv --into my_trials.csv",
    ),
)
@_errors_to_exit
def evidence_add(
    new: Annotated[Path, typer.Argument(metavar="NEW", help="CSV with the new rows (columns in any order)")],
    into: Annotated[Path, typer.Option("--into", metavar="FILE", help="evidence CSV to append to")],
) -> None:
    """Validate NEW together with the rows in --into, then append atomically (existing rows untouched).

    NEW needs only the columns its table requires, in any order; the target's other columns are written
    blank, in the target's order.  Lines starting with '#' are comments and are not appended.
    """
    from .append import append_evidence

    n = append_evidence(new, into)
    typer.echo(f"appended {n} row(s) to {into}")


_SPEC = typer.Argument(metavar="SPEC", help="analysis spec (TOML), e.g. one in models/")
_EVIDENCE = typer.Option("--evidence", metavar="FILE", help="evidence CSV (default: spec's or shipped)")
_DRAWS = typer.Option("--draws", metavar="N", help="draws and tuning steps per chain (MCMC)")
_METHOD = typer.Option("--method", metavar="exact|mcmc", help="the engine (default: exact where the family has one)")


@app.command(
    "run",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes run models/harmoni2_pfs_pdl1.toml --out out/pdl1 --report",
        "harmoni-bayes run SPEC --out out/exact --method exact",
        "harmoni-bayes run SPEC --out out/then --as-of 2025-06-30 --strict",
    ),
)
@_errors_to_exit
def run(
    spec: Annotated[Path, _SPEC],
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="folder for posterior.nc, summary.json, summary.csv")
    ],
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="DATE", help="use only evidence disclosed by this date")
    ] = None,
    evidence: Annotated[Path | None, _EVIDENCE] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="random seed (default: the spec's)")] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            metavar="exact|mcmc",
            help="the engine (default: the spec's, else exact where the family has it)",
        ),
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", metavar="pymc|nutpie|numpyro", help="the MCMC sampler")
    ] = None,
    draws: Annotated[int | None, _DRAWS] = None,
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


@app.command(
    "run-all",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes run-all",
        "harmoni-bayes run-all models --out out --reports reports --no-pages",
    ),
)
@_errors_to_exit
def run_all(
    specs_dir: Annotated[Path, typer.Argument(metavar="SPECS_DIR", help="folder of specs")] = Path("models"),
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="one result folder per spec goes here")] = Path(
        "out"
    ),
    reports: Annotated[Path, typer.Option("--reports", metavar="DIR", help="reports and index.html go here")] = Path(
        "reports"
    ),
    draws: Annotated[int | None, _DRAWS] = None,
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
    broken = [d.spec.name for d in done if d.target is None or d.pages_failed]
    report_dirs = [d.target for d in sorted(done, key=lambda d: d.index) if d.target is not None]
    if report_dirs:
        index = write_index(report_dirs, reports / "index.html")
        typer.echo(f"wrote {index} ({len(report_dirs)} analyses, {time.time() - start:.0f} s)")
    if broken:
        typer.echo(f"error: {len(broken)} spec(s) failed: {', '.join(broken)}", err=True)
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
    pages_failed: bool = False  # its sensitivity, timeline or scorecard page hit an internal error
    lines: list[tuple[bool, str]] = field(default_factory=list)  # (to stderr, text), in printed order


def _run_tasks(tasks: list[_SpecTask], jobs: int) -> list[_SpecDone]:
    """Serially in this process (``jobs == 1``, lines printed as they come, sampling showing its own progress),
    else in a process pool.

    Free workers take the costliest specs first (:func:`_mcmc_fits`: MCMC specs with sweeps, then other MCMC
    specs), so that the longest one does not start last, except that while the first MCMC spec runs the other
    workers take specs without MCMC (:func:`_pick`); the results are the same in any order.  Each spec's lines
    are printed when it is done; on a terminal a bar of finished specs stays below them
    (:class:`~harmoni_bayes.progress.Tasks`).
    """
    if jobs == 1:
        return [_main_job_spec(t) for t in tasks]
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from dataclasses import replace

    from .inference import worker_context
    from .progress import Tasks

    pending = sorted(((_mcmc_fits(t.spec), t) for t in tasks), key=lambda ct: (-ct[0], ct[1].index))
    running: set[Future] = set()
    first_mcmc: list[Future] = []  # the first MCMC spec started, once it is
    done = []

    def submit(pool: ProcessPoolExecutor) -> None:
        while pending and len(running) < jobs:
            warming = bool(first_mcmc) and first_mcmc[0] in running
            cost, task = pending.pop(_pick([c for c, _ in pending], warming=warming))
            future = pool.submit(_main_job_spec, replace(task, capture=True))
            running.add(future)
            if cost and not first_mcmc:
                first_mcmc.append(future)

    # Forked workers inherit the imported package instead of paying for it (a fork server once JAX is loaded).
    with ProcessPoolExecutor(max_workers=jobs, mp_context=worker_context()) as pool:
        submit(pool)  # one spec per worker: each submit forks one, before the bar's thread exists
        with Tasks(len(tasks), "specs") as bar:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.remove(future)
                    d = future.result()
                    for err, text in d.lines:
                        bar.print(text, err=err)
                    bar.done()
                    done.append(d)
                submit(pool)
    return done


def _pick(costs: list[int], warming: bool) -> int:
    """Which of the pending specs (their :func:`_mcmc_fits`, costliest first) a free worker takes: the first,
    unless the first MCMC spec started is still running (``warming``), then the first without MCMC if any.

    The first MCMC spec compiles its samplers into the on-disk caches (JAX's, PyTensor's); a second MCMC spec
    started beside it would compile the same programs at the same time (about 30 s of CPU for the class models),
    where started after it, it loads them.  The other workers meanwhile run the exact specs.
    """
    if warming:
        return next((i for i, cost in enumerate(costs) if cost == 0), 0)
    return 0


def _mcmc_fits(spec_path: Path) -> int:
    """A rough cost of a spec in the main job: its MCMC fits (one per model block, e.g. per surrogacy relationship,
    its prior-sensitivity refits and, with a timeline, about four dated refits); 0 for exact specs, whose fits take
    well under a second.
    """
    from .models import get_family
    from .specs import load_spec

    try:
        spec = load_spec(spec_path)
    except HarmoniError:
        return 0  # a broken spec fails fast wherever it runs
    if spec.method != "mcmc":
        return 0
    blocks = len(getattr(spec, "relationships", None) or ()) or 1
    return blocks + len(get_family(spec.model).sensitivity) + (4 if spec.timeline else 0)


def _main_job_spec(task: _SpecTask) -> _SpecDone:
    """Fit one spec, write its report (and pages) into the reports folder; the main job's unit of work."""
    import contextlib
    import os
    import time

    done = _SpecDone(task.spec, task.index, None)
    if task.cores is not None:
        from .inference import CORES_ENV, XLA_ONE_THREAD

        os.environ[CORES_ENV] = str(task.cores)
        os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD)
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
        except Exception as exc:  # a bug, not the user's mistake: say so, and keep the other analyses
            typer.echo(f"error: {spec.name}: {_internal(exc)}", err=True)
            return done
        _publish(task.out / spec.stem, task.reports / spec.stem)
        done.target = task.reports / spec.stem
        if task.pages:
            try:
                _extra_pages(spec, result, task.reports / spec.stem, task.draws, workers=task.cores)
            except Exception as exc:  # the report stands; the main job still exits non-zero
                typer.echo(f"error: {spec.name}: its extra pages: {_internal(exc)}", err=True)
                done.pages_failed = True
    return done


def _internal(exc: Exception) -> str:
    """One line for an unexpected exception in one spec of the main job (its traceback: run that spec alone)."""
    return (
        f"internal error {type(exc).__name__}: {exc} (a bug: `harmoni-bayes run SPEC --out DIR --report` shows the"
        " traceback)"
    )


def _publish(result_dir: Path, target: Path) -> None:
    """Write the result's report and publish it, with its figures and the result files it links to."""
    from .reporting import publish_report, write_report

    write_report(result_dir, fmt="all")
    publish_report(result_dir, target)


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


@app.command(
    "compare",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes compare SPEC --as-of 2025-06-30 --as-of 2026-12-01 --out out/c",
    ),
)
@_errors_to_exit
def compare(
    spec: Annotated[Path, _SPEC],
    as_of: Annotated[list[str], typer.Option("--as-of", metavar="DATE", help="a date (give two or more)")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="folder for the comparison")],
    evidence: Annotated[Path | None, _EVIDENCE] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="random seed (default: the spec's)")] = None,
    draws: Annotated[int | None, _DRAWS] = None,
) -> None:
    """Fit SPEC as of each date and show how the forecast moved (table, evidence added, figure)."""
    from .reporting import compare_as_of, write_comparison

    comp = compare_as_of(spec, as_of, evidence=evidence, seed=seed, draws=draws)
    for path in write_comparison(comp, out):
        typer.echo(f"wrote {path}")
    typer.echo(comp.table().to_string())


_SCHEDULER = typer.Option(
    "--scheduler",
    metavar="ADDRESS",
    envvar="HARMONI_DASK_SCHEDULER",
    help="address of a Dask scheduler (tcp://host:8786); default: local worker processes",
)
_WORKERS = typer.Option("--workers", metavar="N", help="local worker processes (default: cores)")


@app.command(
    "timeline",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes timeline models/ivonescimab_pfs_meta_now.toml --out out/tl",
        "harmoni-bayes timeline SPEC --out out/timeline --scheduler tcp://host:8786",
    ),
)
@_errors_to_exit
def timeline(
    spec: Annotated[Path, _SPEC],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="folder for timeline.html, .json and .csv")],
    evidence: Annotated[Path | None, _EVIDENCE] = None,
    method: Annotated[str | None, _METHOD] = None,
    draws: Annotated[int | None, _DRAWS] = None,
    scheduler: Annotated[str | None, _SCHEDULER] = None,
    workers: Annotated[int | None, _WORKERS] = None,
) -> None:
    """Fit SPEC as of every date on which its evidence changed; write the timeline page."""
    from .reporting.sweeps import write_sweep
    from .timeline import build_timeline

    tl = build_timeline(spec, evidence=evidence, method=method, draws=draws, scheduler=scheduler, workers=workers)
    for path in write_sweep(tl, out):
        typer.echo(f"wrote {path}")
    _echo_failed(tl)


@app.command(
    "sensitivity",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes sensitivity models/harmoni2_pfs_pdl1.toml --out out/sens",
        "harmoni-bayes sensitivity SPEC --grid tau_grid.toml --out out/sens",
    ),
)
@_errors_to_exit
def sensitivity(
    spec: Annotated[Path, _SPEC],
    grid: Annotated[
        Path | None,
        typer.Option("--grid", metavar="FILE", help="TOML of [[setting]] tables (default: the family's own settings)"),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="folder for sensitivity.html, .json and .csv")
    ] = Path("sensitivity"),
    method: Annotated[str | None, _METHOD] = None,
    draws: Annotated[int | None, _DRAWS] = None,
    scheduler: Annotated[str | None, _SCHEDULER] = None,
    workers: Annotated[int | None, _WORKERS] = None,
) -> None:
    """Fit SPEC under each prior setting of a grid; write a table and a strip of the headline quantity."""
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


@app.command(
    "score",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes score SPEC --forecast-as-of 2025-06-30",
        "harmoni-bayes score SPEC --forecast-as-of 2025-06-30 --out out/score",
    ),
)
@_errors_to_exit
def score_cmd(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="analysis spec (TOML) of a family that forecasts")],
    forecast_as_of: Annotated[
        str, typer.Option("--forecast-as-of", metavar="DATE", help="date of the forecast to score")
    ],
    outcome_as_of: Annotated[
        str | None,
        typer.Option(
            "--outcome-as-of", metavar="DATE", help="score readouts disclosed up to this date (default: today)"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="also write scorecard.html, .json, .csv here")
    ] = None,
    draws: Annotated[int | None, _DRAWS] = None,
) -> None:
    """Score the forecast SPEC made as of a date against the readouts disclosed after it."""
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


@app.command(
    "report",
    cls=_Command,
    epilog=_examples(
        "harmoni-bayes report out/pdl1",
        "harmoni-bayes report out/pdl1 --format all",
    ),
)
@_errors_to_exit
def report(
    result_dir: Annotated[Path, typer.Argument(metavar="RESULT_DIR", help="a folder written by 'run'")],
    fmt: Annotated[str, typer.Option("--format", metavar="html|md|json|all", help="the report's format")] = "html",
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
