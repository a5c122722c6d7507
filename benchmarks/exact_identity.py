"""Check that a speed change altered no number: the exact results of every shipped spec, before and after.

    .venv/bin/python benchmarks/exact_identity.py DIR                 # fit every exact-capable spec into DIR
    .venv/bin/python benchmarks/exact_identity.py DIR --against OLD   # ... and compare with an earlier DIR

Each spec in ``models/`` whose family has an exact engine is run as ``harmoni-bayes run SPEC --method exact``
would run it (``run_spec`` then ``save_result``, the spec's own seed) into ``DIR/<spec>``.  With ``--against``,
``summary.json`` and ``summary.csv`` of every spec must be byte-identical to those in ``OLD/<spec>``; the
draws of every ``posterior.nc`` group are compared too (values, dims and coordinates) and its attributes (the
spec, evidence rows, assumptions and summary it carries), all but the ones holding creation times, which keep
the files themselves from ever being byte-identical.  Exit 1 when anything differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TIMED_ATTRS = ("created_at", "provenance")  # creation times (provenance also holds the versions and the seed)


def exact_specs() -> list[Path]:
    """The shipped specs whose family has an exact engine."""
    from harmoni_bayes.models import get_family
    from harmoni_bayes.specs import load_spec

    return [
        p for p in sorted((ROOT / "models").glob("*.toml")) if "exact" in get_family(load_spec(p).model).capabilities
    ]


def fit_all(out: Path) -> list[str]:
    """Fit every exact-capable spec into ``out/<spec>``; the spec names."""
    from harmoni_bayes.results import save_result
    from harmoni_bayes.run import run_spec

    names = []
    for path in exact_specs():
        save_result(run_spec(path, method="exact"), out / path.stem)
        names.append(path.stem)
    return names


def _draws_equal(a: Path, b: Path) -> list[str]:
    import numpy as np
    import xarray as xr

    problems = []
    for group in ("posterior", "prior"):
        try:
            da, db = (xr.load_dataset(p, group=group, engine="h5netcdf") for p in (a, b))
        except OSError:
            continue  # a result without prior draws
        if list(da.data_vars) != list(db.data_vars) or dict(da.sizes) != dict(db.sizes):
            problems.append(f"{group}: variables or dims differ")
            continue
        for name in da.variables:
            x, y = da[name], db[name]
            if x.dims != y.dims or x.dtype != y.dtype or not np.array_equal(x.values, y.values):
                problems.append(f"{group}/{name} differs")
        for key in sorted(set(da.attrs) | set(db.attrs)):
            if key not in _TIMED_ATTRS and da.attrs.get(key) != db.attrs.get(key):
                problems.append(f"{group} attribute {key!r} differs")
    return problems


def compare(new: Path, old: Path, names: list[str]) -> list[str]:
    """Every difference between the results in ``new`` and ``old``, as lines of text (none when identical)."""
    problems = []
    for name in names:
        for f in ("summary.json", "summary.csv"):
            if (new / name / f).read_bytes() != (old / name / f).read_bytes():
                problems.append(f"{name}/{f} differs")
        problems += [
            f"{name}/posterior.nc {p}" for p in _draws_equal(new / name / "posterior.nc", old / name / "posterior.nc")
        ]
    return problems


def main() -> int:
    """Fit, then compare when asked; print the verdict."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--against", type=Path, default=None)
    args = ap.parse_args()
    names = fit_all(args.out)
    print(f"{len(names)} exact-capable specs fitted into {args.out}: {', '.join(names)}")
    if args.against is None:
        return 0
    problems = compare(args.out, args.against, names)
    for p in problems:
        print(p)
    print(
        "byte-identical summary.json and summary.csv, equal draws" if not problems else f"{len(problems)} differences"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
