"""One self-describing directory per fit.

``DIR/posterior.nc``  ArviZ InferenceData; its attrs (JSON strings, never raw dicts or None) hold the
                      spec, the evidence rows used and left out (with reasons), the assumptions,
                      the package versions, the seed and the creation time.
``DIR/summary.json``  the contract of :mod:`harmoni_bayes.summaries`.
``DIR/summary.csv``   the same quantities as a tidy table.
``DIR/manifest.json`` the SHA-256 of each of the three files.

The folder is written as one unit (:func:`save_result`); :func:`load_result` round-trips all of it, refuses
a damaged or hand-edited result with one clear message, and warns when the saving harmoni_bayes version
differs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .errors import Problem, ResultError
from .files import atomic_write, clean_stale, new_dir_mode, replace_dir, sha256_file
from .posterior import DrawGroups, load_netcdf, save_netcdf
from .summaries import Summary

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az

_PACKAGES = (
    "harmoni-bayes",
    "pymc",
    "pytensor",
    "arviz",
    "numpy",
    "pandas",
    "scipy",
    "xarray",
    "nutpie",
    "jax",
    "numpyro",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a result (recorded in every result)."""
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
    idata: az.InferenceData | DrawGroups  # ArviZ InferenceData (MCMC, or loaded) or DrawGroups (an exact fit)
    evidence_used: pd.DataFrame
    evidence_excluded: pd.DataFrame
    assumptions: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The spec name of the result."""
        return self.summary.spec


def _records(df: pd.DataFrame) -> str:
    return df.to_json(orient="records", date_format="iso")


RESULT_FILES = ("posterior.nc", "summary.json", "summary.csv")
MANIFEST = "manifest.json"
# Files a result folder may hold besides the result itself (reports rendered from it).
_REPORT_FILES = ("report.html", "report.md", "report.json")
_PARTIAL = ".partial-"


def check_output_dir(out_dir: str | Path) -> Path:
    """Refuse an output folder that cannot take a result, before any fitting.

    ``out_dir`` may be missing (it is created), empty, or a previous result folder (it is replaced as a
    whole).  A file, a folder holding anything else, or a folder that cannot be written is a
    :class:`ResultError`.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ResultError(f"--out {out}: is a file, not a folder")
    if out.is_dir():
        known = {*RESULT_FILES, MANIFEST, *_REPORT_FILES}
        other = sorted(p.name for p in out.iterdir() if p.name not in known and not p.name.startswith("."))
        if other:
            raise ResultError(
                f"--out {out}: the folder holds other files ({', '.join(other[:5])}"
                f"{', ...' if len(other) > 5 else ''}); a result replaces its folder as a whole, so give an empty "
                "or new folder"
            )
    parent = _existing_parent(out)
    if not _writable(parent):
        raise ResultError(f"--out {out}: cannot write in {parent} (read-only or no permission)")
    return out


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK) and not _read_only_fs(folder)


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _existing_parent(p: Path) -> Path:
    p = p.absolute()
    while not p.exists():
        p = p.parent
    return p if p.is_dir() else p.parent


def save_result(result: Result, out_dir: str | Path) -> Path:
    """Write the result folder as one unit: ``posterior.nc``, ``summary.json``, ``summary.csv``, ``manifest.json``.

    Everything is written into a temporary folder beside ``out_dir``, then swapped into place
    (:func:`harmoni_bayes.files.replace_dir`): a crash leaves either the old result or the new one, never a
    mix.  ``manifest.json`` holds the SHA-256 of each file, and ``posterior.nc`` carries the summary, so
    :func:`load_result` notices a damaged or hand-edited file.  Leftovers of killed writers are removed.
    """
    out = check_output_dir(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent, f".{out.name}{_PARTIAL}")
    tmp = out.parent / f".{out.name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        idata = result.idata
        attrs = {
            "spec": json.dumps(result.spec),
            "evidence_used": _records(result.evidence_used),
            "evidence_excluded": _records(result.evidence_excluded),
            "assumptions": json.dumps(result.assumptions),
            "provenance": json.dumps(result.provenance),
            "summary": result.summary.to_json(),
        }
        save_netcdf(idata, tmp / "posterior.nc", attrs)
        atomic_write(tmp / "summary.json", result.summary.to_json())
        atomic_write(tmp / "summary.csv", result.summary.to_frame().to_csv(index=False))
        manifest = {"files": {name: sha256_file(tmp / name) for name in RESULT_FILES}}
        atomic_write(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, new_dir_mode())
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_result(out_dir: str | Path) -> Result:
    """Read a folder written by :func:`save_result`, checking that it is complete and unchanged.

    Raises
    ------
    ResultError
        When the folder or a file is missing, a file does not match the manifest, ``posterior.nc`` cannot be
        read, ``summary.json`` is not the contract, or ``summary.json`` differs from the summary carried
        inside ``posterior.nc`` (edited by hand).
    """
    out = Path(out_dir)
    if not (out / "posterior.nc").is_file():
        raise ResultError(f"{out}: no saved result here (posterior.nc missing); run 'harmoni-bayes run' first")
    _verify_manifest(out)
    try:
        idata = load_netcdf(out / "posterior.nc")
        attrs = dict(idata.posterior.attrs)
        provenance = json.loads(attrs["provenance"])
        carried = attrs["summary"]
        spec = json.loads(attrs["spec"])
        used, excluded = _frame(attrs["evidence_used"]), _frame(attrs["evidence_excluded"])
        assumptions = json.loads(attrs["assumptions"])
    except Exception as exc:  # h5py/netCDF raise many types for a damaged file; all mean the same to a user
        raise ResultError(f"{out}/posterior.nc: cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        text = (out / "summary.json").read_text(encoding="utf-8")
        summary = Summary.from_dict(json.loads(text))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ResultError(f"{out}/summary.json: not a valid summary ({type(exc).__name__}: {exc})") from None
    if text != carried:
        raise ResultError(
            f"{out}/summary.json differs from the summary saved inside posterior.nc: it was edited or comes from "
            "another fit; re-run 'harmoni-bayes run' to write both again"
        )
    saved = provenance.get("versions", {}).get("harmoni-bayes")
    current = package_versions()["harmoni-bayes"]
    if saved and saved != current:
        warnings.warn(f"{out} was saved by harmoni-bayes {saved}; this is {current}", stacklevel=2)
    return Result(
        spec=spec,
        summary=summary,
        idata=idata,
        evidence_used=used,
        evidence_excluded=excluded,
        assumptions=assumptions,
        provenance=provenance,
    )


def _verify_manifest(out: Path) -> None:
    path = out / MANIFEST
    if not path.is_file():
        return  # written before manifests existed; the summary cross-check still applies
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ResultError(f"{path}: not a valid manifest ({exc})") from None
    problems = []
    for name, digest in files.items():
        f = out / name
        if not f.is_file():
            problems.append(Problem(f"{name} is missing"))
        elif sha256_file(f) != digest:
            problems.append(Problem(f"{name} does not match its checksum (damaged, or changed since it was written)"))
    if problems:
        raise ResultError(f"{out}: the saved result is incomplete or changed", problems)


def _frame(records_json: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads(records_json))


def make_provenance(seed: int | None, method: str, as_of: str | None, extra: dict | None = None) -> dict:
    """The provenance record saved with a result: seed, method, as-of date, time, package versions."""
    return {
        "seed": seed,
        "method": method,
        "as_of": as_of,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        **(extra or {}),
    }
