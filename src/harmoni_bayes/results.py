"""One self-describing directory per fit.

``DIR/posterior.nc``  ArviZ InferenceData; its attrs (JSON strings, never raw dicts or None) hold the
                      spec, the evidence rows used and left out (with reasons), the assumptions,
                      the package versions, the seed and the creation time.
``DIR/summary.json``  the contract of :mod:`harmoni_bayes.summaries`.
``DIR/summary.csv``   the same quantities as a tidy table.

:func:`load_result` round-trips all of it and warns when the saving harmoni_bayes version differs.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from .files import atomic_write
from .posterior import load_netcdf, save_netcdf
from .summaries import Summary

_PACKAGES = ("harmoni-bayes", "pymc", "pytensor", "arviz", "numpy", "pandas", "scipy", "xarray", "nutpie")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class Result:
    """A fitted analysis: what went in, what came out, and how."""

    spec: dict
    summary: Summary
    idata: object  # arviz.InferenceData
    evidence_used: pd.DataFrame
    evidence_excluded: pd.DataFrame
    assumptions: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.summary.spec


def _records(df: pd.DataFrame) -> str:
    return df.to_json(orient="records", date_format="iso")


def save_result(result: Result, out_dir: str | Path) -> Path:
    """Write posterior.nc, summary.json and summary.csv into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    idata = result.idata
    attrs = {
        "spec": json.dumps(result.spec),
        "evidence_used": _records(result.evidence_used),
        "evidence_excluded": _records(result.evidence_excluded),
        "assumptions": json.dumps(result.assumptions),
        "provenance": json.dumps(result.provenance),
        "summary": result.summary.to_json(),
    }
    idata.posterior.attrs.update(attrs)
    save_netcdf(idata, out / "posterior.nc")
    atomic_write(out / "summary.json", result.summary.to_json())
    atomic_write(out / "summary.csv", result.summary.to_frame().to_csv(index=False))
    return out


def load_result(out_dir: str | Path) -> Result:
    """Read a directory written by :func:`save_result`."""
    out = Path(out_dir)
    idata = load_netcdf(out / "posterior.nc")
    attrs = dict(idata.posterior.attrs)
    provenance = json.loads(attrs["provenance"])
    saved = provenance.get("versions", {}).get("harmoni-bayes")
    current = package_versions()["harmoni-bayes"]
    if saved and saved != current:
        warnings.warn(f"{out} was saved by harmoni-bayes {saved}; this is {current}", stacklevel=2)
    summary = Summary.from_dict(json.loads((out / "summary.json").read_text()))
    return Result(
        spec=json.loads(attrs["spec"]),
        summary=summary,
        idata=idata,
        evidence_used=_frame(attrs["evidence_used"]),
        evidence_excluded=_frame(attrs["evidence_excluded"]),
        assumptions=json.loads(attrs["assumptions"]),
        provenance=provenance,
    )


def _frame(records_json: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads(records_json))


def make_provenance(seed: int | None, method: str, as_of: str | None, extra: dict | None = None) -> dict:
    return {
        "seed": seed,
        "method": method,
        "as_of": as_of,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        **(extra or {}),
    }
