"""Shared fixtures: small evidence CSVs built from the shipped table by changing single cells, every shipped spec
with an exact engine fitted exactly (no sampling) and saved once per session, and the MCMC-only specs
sampled with few draws (slow tests; those using them share an xdist group, so the fits are made once).

Hypothesis runs without deadlines: example timings on a loaded 2-core machine say nothing about correctness.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import settings

from harmoni_bayes.evidence import shipped_path
from helpers import EXACT_SPECS, MCMC_SPECS, REPO

settings.register_profile("harmoni", deadline=None)
settings.load_profile("harmoni")


_LOST_GROUPS: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Slow tests first; and on an xdist worker under ``--dist loadgroup``, note the tests whose ``xdist_group``
    mark did not take.

    xdist groups a test by appending ``@group`` to its id at collection.  Where a pytest release no longer reads the
    id that way (9.2 with xdist 3.8), grouped tests spread over the workers and each refits the session's shared
    fixtures: the suite takes twice as long and nothing fails.  :func:`_xdist_groups_hold` makes it fail.
    """
    if getattr(config.option, "loadgroup", False):  # set on xdist workers only
        _LOST_GROUPS.extend(i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid)
    # Slow tests first (otherwise in collection order): xdist hands out tests in this order, and a minute-long
    # test collected last (test_surrogacy_*, test_sweep) would run alone at the end while the other cores idle.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _xdist_groups_hold():
    """Fail every test, before any costly fixture, when :func:`pytest_collection_modifyitems` found lost groups."""
    if _LOST_GROUPS:
        pytest.fail(
            f"pytest-xdist's loadgroup did not group {len(_LOST_GROUPS)} tests (e.g. {_LOST_GROUPS[0]}): pytest"
            f" {pytest.__version__} and this pytest-xdist do not work together; see the pytest pin in pyproject.toml",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def exact_result_dirs(tmp_path_factory) -> dict[str, Path]:
    """Every exact-capable shipped spec fitted exactly and saved: {spec name: result dir}."""
    from harmoni_bayes.results import save_result
    from harmoni_bayes.run import run_spec

    root = tmp_path_factory.mktemp("exact_results")
    return {spec.stem: save_result(run_spec(spec, method="exact"), root / spec.stem) for spec in EXACT_SPECS}


@pytest.fixture(scope="session")
def result_dirs(exact_result_dirs) -> dict[str, Path]:
    return exact_result_dirs


@pytest.fixture(scope="session")
def results(exact_result_dirs) -> dict:
    """{spec name: Result} of :func:`exact_result_dirs`, loaded once; a test that changes one puts it back."""
    from harmoni_bayes.results import load_result

    return {name: load_result(d) for name, d in exact_result_dirs.items()}


@pytest.fixture(scope="session")
def contents(results) -> dict:
    """{spec name: ReportContent} of :func:`results`: the figures of eleven reports, drawn once per worker."""
    from harmoni_bayes.reporting import build_report

    return {name: build_report(r) for name, r in results.items()}


@pytest.fixture(scope="session")
def htmls(contents) -> dict[str, str]:
    from harmoni_bayes.reporting import render_html

    return {name: render_html(c) for name, c in contents.items()}


class _Fits(dict):
    """{spec name: result dir}; a shipped spec not there yet is fitted (200 draws per chain) and saved when asked."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, name: str) -> Path:
        from harmoni_bayes.results import save_result
        from harmoni_bayes.run import run_spec

        self[name] = save_result(run_spec(REPO / "models" / f"{name}.toml", draws=200), self.root / name)
        return self[name]


@pytest.fixture(scope="session")
def mcmc_result_dirs(tmp_path_factory) -> dict[str, Path]:
    """Every MCMC-only shipped spec of ``helpers.MCMC_SPECS`` sampled with few draws and saved (other shipped specs
    on demand: ``mcmc_result_dirs[name]``); for slow tests marked ``xdist_group(MCMC_GROUP)``, so that under ``-n``
    one worker makes these fits once for all of them.
    """
    fits = _Fits(tmp_path_factory.mktemp("mcmc_results"))
    for p in MCMC_SPECS:
        fits[p.stem]  # fitted now: every test using the fixture reads these
    return fits


def _read_table(name: str) -> tuple[list[str], list[list[str]]]:
    with open(shipped_path(name), newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


@pytest.fixture(scope="session")
def trials_table() -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the shipped ivonescimab_trials.csv, as text."""
    return _read_table("ivonescimab_trials.csv")


@pytest.fixture(scope="session")
def reference_table() -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the shipped nsclc_pfs_os_trials.csv, as text."""
    return _read_table("nsclc_pfs_os_trials.csv")


@pytest.fixture
def make_row(trials_table):
    """``make_row(base=0, **cells)``: a copy of shipped data row ``base`` with some cells changed."""
    header, rows = trials_table

    def make(base: int = 0, **cells: str) -> list[str]:
        row = list(rows[base])
        for name, value in cells.items():
            row[header.index(name)] = value
        return row

    return make


@pytest.fixture
def write_csv(tmp_path, trials_table):
    """``write_csv(rows, header=None, name=..., encoding=..., lineterminator=...)`` -> path in tmp_path."""

    def write(
        rows: list[list[str]],
        header: list[str] | None = None,
        name: str = "evidence.csv",
        encoding: str = "utf-8",
        lineterminator: str = "\n",
    ) -> Path:
        path = tmp_path / name
        with open(path, "w", newline="", encoding=encoding) as fh:
            writer = csv.writer(fh, lineterminator=lineterminator)
            writer.writerow(trials_table[0] if header is None else header)
            writer.writerows(rows)
        return path

    return write
