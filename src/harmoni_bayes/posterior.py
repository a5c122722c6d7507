"""Every ArviZ call of the package lives here, and the posterior file (``posterior.nc``) is read and written here.

ArviZ defaults have changed between versions (interval probability, HDI vs ETI, ESS methods), so
everything is passed explicitly: intervals are 95% (:data:`INTERVAL_PROB`), ESS is rank-normalised
bulk and tail ESS, R-hat is the rank-normalised split R-hat (Vehtari et al. 2021).

ArviZ and xarray are imported inside the functions that need them, never at module level: the exact path
(iid draws of an exact engine, :class:`DrawGroups`) keeps its groups as numpy arrays and writes them with
h5netcdf alone, in the layout ArviZ writes through xarray (one netCDF group per InferenceData group, ``chain``
and ``draw`` leading, zlib-compressed numbers, NaN fill values), so ``arviz.from_netcdf`` and
:func:`load_netcdf` read it as any other result.  An exact run so never pays for importing ArviZ (seconds,
with the plotting stack it loads), nor xarray and the Dask it imports on building any Dataset (most of a
second; issue 14).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import DiagnosticThresholds
from .constants import INTERVAL_PROB, Q_HI, Q_LO
from .files import new_file_mode

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import xarray as xr

NETCDF_ENGINE = "h5netcdf"
"""The netCDF library used for every posterior file, written by ArviZ or directly."""


def _arviz() -> Any:
    """ArviZ, with its numba code paths off.

    With numba installed (PyMC's nutpie backend needs it) ArviZ jit-compiles a few helpers on first use: its KDE's
    histogram alone takes about 9 s to compile in every fresh process (each worker of the main job), for a
    computation numpy does in microseconds.  Off, ArviZ uses numpy (``np.histogram``, ``np.var``) instead.
    """
    import arviz as az

    az.Numba.disable_numba()
    return az


@dataclass
class Diagnostics:
    """The diagnostics gate's verdict: the worst value of each statistic and every check with its threshold."""

    max_rhat: float | None
    min_ess_bulk: float | None
    min_ess_tail: float | None
    divergences: int
    ok: bool
    problems: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def diagnose(idata: az.InferenceData, var_names: list[str], thresholds: DiagnosticThresholds) -> Diagnostics:
    """R-hat, bulk/tail ESS over ``var_names`` and divergences; ``ok`` only when every threshold holds.

    Constant variables (a fixed prior) have undefined R-hat and are skipped.  Each check is recorded as
    ``{"name", "value", "op", "threshold", "ok"}`` so that reports print what the gate decided, never
    recompute it.
    """
    az = _arviz()

    # A constant variable (a fixed prior) has no R-hat or ESS; leave it out rather than divide by zero.
    varying = [v for v in var_names if np.ptp(np.asarray(idata.posterior[v].values)) > 0]
    post = idata.posterior[varying]
    rhat = _flat_values(az.rhat(post, method="rank"))
    ess_bulk = _flat_values(az.ess(post, method="bulk"))
    ess_tail = _flat_values(az.ess(post, method="tail"))
    div = int(idata.sample_stats["diverging"].sum()) if "sample_stats" in idata else 0
    d = Diagnostics(
        max_rhat=_nan_to_none(np.nanmax(rhat) if np.isfinite(rhat).any() else np.nan),
        min_ess_bulk=_nan_to_none(np.nanmin(ess_bulk) if np.isfinite(ess_bulk).any() else np.nan),
        min_ess_tail=_nan_to_none(np.nanmin(ess_tail) if np.isfinite(ess_tail).any() else np.nan),
        divergences=div,
        ok=True,
    )
    checks = (
        ("max_rhat", d.max_rhat, "<=", thresholds.max_rhat, f"max R-hat {{v:.3f}} > {thresholds.max_rhat}"),
        (
            "min_ess_bulk",
            d.min_ess_bulk,
            ">=",
            thresholds.min_ess_bulk,
            f"min bulk ESS {{v:.0f}} < {thresholds.min_ess_bulk:g}",
        ),
        (
            "min_ess_tail",
            d.min_ess_tail,
            ">=",
            thresholds.min_ess_tail,
            f"min tail ESS {{v:.0f}} < {thresholds.min_ess_tail:g}",
        ),
        (
            "divergences",
            div,
            "<=",
            thresholds.max_divergences,
            f"{{v}} divergent transitions (allowed {thresholds.max_divergences})",
        ),
    )
    for name, value, op, limit, problem in checks:
        # an undefined statistic (no varying variable) cannot fail the gate
        ok = value is None or (value <= limit if op == "<=" else value >= limit)
        d.checks.append({"name": name, "value": value, "op": op, "threshold": limit, "ok": ok})
        if not ok:
            d.problems.append(problem.format(v=value))
    d.ok = not d.problems
    return d


def _flat_values(ds: xr.Dataset) -> np.ndarray:
    vals = [np.asarray(v.values, dtype=float).ravel() for v in ds.data_vars.values()]
    return np.concatenate(vals) if vals else np.array([np.nan])


def _nan_to_none(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def summarise_draws(values: np.ndarray) -> dict[str, float]:
    """mean, sd, median, 2.5% and 97.5% quantiles and the 95% HDI of draws with (chain, draw) leading."""
    az = _arviz()

    flat = np.asarray(values, dtype=float).ravel()
    flat = flat[np.isfinite(flat)]
    lo, hi = az.hdi(flat, hdi_prob=INTERVAL_PROB)
    q_lo, med, q_hi = np.quantile(flat, [Q_LO, 0.5, Q_HI])
    return {
        "mean": float(flat.mean()),
        "sd": float(flat.std(ddof=1)),
        "median": float(med),
        "q2.5": float(q_lo),
        "q97.5": float(q_hi),
        "hdi_low": float(lo),
        "hdi_high": float(hi),
    }


def mcse_mean(values: np.ndarray) -> float:
    """Monte Carlo SE of the mean of (chain, draw) draws (e.g. of a probability's indicators)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if np.all(arr == arr.flat[0]):
        return 0.0
    az = _arviz()

    return float(np.ravel(az.mcse(arr, method="mean"))[0])


@dataclass
class ArrayGroup:
    """One InferenceData group as numpy arrays, laid out as ``arviz.from_dict`` lays it out.

    ``variables`` maps each name to its dims (``chain`` and ``draw`` first) and values; ``coords`` holds the
    labels of every dim; ``attrs`` the group's attributes.
    """

    variables: dict[str, tuple[tuple[str, ...], np.ndarray]]
    coords: dict[str, np.ndarray]
    attrs: dict[str, str]

    @classmethod
    def from_draws(
        cls, draws: Mapping[str, np.ndarray], coords: Mapping[str, Any], dims: Mapping[str, list[str]]
    ) -> ArrayGroup:
        """Arrays with (chain, draw) leading.  Dims named in ``dims`` take their labels from ``coords``; other dims
        are ``<var>_dim_<i>`` with integer labels.  The group carries ArviZ's ``created_at`` and
        ``arviz_version`` attributes.
        """
        variables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
        labels: dict[str, np.ndarray] = {}
        for name, values in draws.items():
            arr = np.asarray(values)
            extra = list(dims.get(name, []))
            extra += [f"{name}_dim_{i}" for i in range(len(extra), arr.ndim - 2)]
            all_dims = ("chain", "draw", *extra)
            for i, d in enumerate(all_dims):
                labels.setdefault(d, np.asarray(coords[d]) if d in coords else np.arange(arr.shape[i]))
            variables[name] = (all_dims, arr)
        return cls(variables, labels, _group_attrs())

    def to_dataset(self) -> xr.Dataset:
        """The group as an xarray Dataset (imports xarray)."""
        import xarray as xr

        data_vars = {
            name: xr.DataArray(arr, dims=dims, coords={d: self.coords[d] for d in dims})
            for name, (dims, arr) in self.variables.items()
        }
        return xr.Dataset(data_vars, attrs=dict(self.attrs))


class DrawGroups(Mapping[str, "xr.Dataset"]):
    """Groups of iid draws (``posterior``, ``prior``): the part of ArviZ's InferenceData interface the package
    uses, without importing ArviZ, and without xarray until a group is looked at.

    Each group is an :class:`ArrayGroup`; ``groups.posterior`` and ``groups["prior"]`` give it as an xarray
    Dataset, made on first use and kept (a view: :func:`save_netcdf` writes the arrays).  ``"prior" in groups``
    and :meth:`groups` work as on InferenceData; :meth:`to_inference_data` gives a real InferenceData where
    ArviZ itself is wanted.
    """

    def __init__(self, **groups: ArrayGroup):
        self._groups: dict[str, ArrayGroup] = dict(groups)
        self._views: dict[str, xr.Dataset] = {}

    def __getattr__(self, name: str) -> xr.Dataset:
        groups = self.__dict__.get("_groups", {})
        if name in groups:
            return self[name]
        raise AttributeError(f"no group {name!r} (groups: {', '.join(groups) or 'none'})")

    def __getitem__(self, name: str) -> xr.Dataset:
        if name not in self._views:
            self._views[name] = self._groups[name].to_dataset()
        return self._views[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def __repr__(self) -> str:
        return f"DrawGroups({', '.join(self._groups)})"

    def groups(self) -> list[str]:
        """The group names, in order."""
        return list(self._groups)

    def arrays(self, name: str) -> ArrayGroup:
        """The group ``name`` as arrays."""
        return self._groups[name]

    def add_group(self, name: str, data: ArrayGroup) -> None:
        """Add (or replace) a group."""
        self._groups[name] = data
        self._views.pop(name, None)

    def to_inference_data(self) -> az.InferenceData:
        """The same groups as an ArviZ InferenceData (imports ArviZ)."""
        az = _arviz()

        return az.InferenceData(**{name: self[name] for name in self._groups})


def _group_attrs() -> dict[str, str]:
    try:
        version = metadata.version("arviz")
    except metadata.PackageNotFoundError:  # pragma: no cover - arviz is a dependency
        version = "not installed"
    return {"created_at": dt.datetime.now(dt.UTC).isoformat(), "arviz_version": version}


def from_draws(draws: dict[str, np.ndarray], coords: dict, dims: dict) -> DrawGroups:
    """The ``posterior`` group of iid draws (the exact engine's), shaped as one chain; no ArviZ or xarray import."""
    return DrawGroups(
        posterior=ArrayGroup.from_draws({k: np.asarray(v)[None, ...] for k, v in draws.items()}, coords, dims)
    )


def add_prior_draws(idata: Any, draws: dict[str, np.ndarray], coords: dict[str, list[str]]) -> None:
    """Add iid prior draws (``(n,)`` or ``(n, len(labels))`` arrays) as the ``prior`` group, one chain.

    2-D arrays take the one dim in ``coords``, so prior variables are named and indexed as in the posterior.
    ``idata`` is a :class:`DrawGroups` (exact fits) or an ArviZ InferenceData (MCMC fits).
    """
    dim = next(iter(coords), None)
    dims = {k: [dim] for k, v in draws.items() if np.ndim(v) == 2} if dim else {}
    prior = ArrayGroup.from_draws({k: np.asarray(v)[None, ...] for k, v in draws.items()}, coords, dims)
    if isinstance(idata, DrawGroups):
        idata.add_group("prior", prior)
    else:
        idata.add_groups(prior=prior.to_dataset())


def add_posterior_draws(idata: Any, draws: dict[str, np.ndarray]) -> None:
    """Add derived ``(chain, draw)`` draws to the posterior group, beside the sampled variables.

    For quantities a family computes from the posterior rather than samples (the stacked OS forecast), so that
    figures, the scorecard and ``posterior.nc`` hold the very draws the summary was computed from.
    ``idata`` is a :class:`DrawGroups` (whose arrays are what is written) or an ArviZ InferenceData.
    """
    if not draws:
        return
    if isinstance(idata, DrawGroups):
        group = idata.arrays("posterior")
        group.variables.update({k: (("chain", "draw"), np.asarray(v, dtype=float)) for k, v in draws.items()})
        idata.add_group("posterior", group)  # drops the view made before
        return
    for name, values in draws.items():
        idata.posterior[name] = (("chain", "draw"), np.asarray(values, dtype=float))


def inference_data(
    posterior: Mapping[str, np.ndarray],
    sample_stats: Mapping[str, np.ndarray],
    *,
    constant_data: Mapping[str, Any],
    coords: Mapping[str, Any],
    dims: Mapping[str, Any],
    attrs: Mapping[str, Any],
    library: Any,
) -> az.InferenceData:
    """InferenceData from a sampler's (chain, draw) arrays, as PyMC's own samplers return it (the inference
    module's numpyro path builds its result here: this module is the one that calls ArviZ).
    """
    az = _arviz()
    from arviz.data.base import make_attrs

    return az.from_dict(
        posterior=dict(posterior),
        sample_stats=dict(sample_stats),
        constant_data=dict(constant_data),
        coords=dict(coords),
        dims=dict(dims),
        attrs=make_attrs(dict(attrs), library=library),
        posterior_attrs=make_attrs(dict(attrs), library=library),
    )


def save_netcdf(idata: Any, path: str | Path, attrs: Mapping[str, str] | None = None) -> None:
    """Write atomically: to a temporary file in the same directory, then rename over the target.

    ``attrs`` are added to the posterior group's attributes.  An ArviZ InferenceData writes itself;
    :class:`DrawGroups` are written group by group with h5netcdf in the same layout (:func:`_write_groups`), so
    neither ArviZ nor xarray is imported.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, new_file_mode())  # mkstemp makes 0600; a result is as readable as any other output
    try:
        if isinstance(idata, DrawGroups):
            _write_groups(idata, tmp, dict(attrs or {}))
        else:
            idata.posterior.attrs.update(attrs or {})
            idata.to_netcdf(tmp, engine=NETCDF_ENGINE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_groups(groups: DrawGroups, path: str, attrs: dict[str, str]) -> None:
    """Each group as xarray's netCDF writer (``Dataset.to_netcdf(engine="h5netcdf")``) writes it, with h5netcdf.

    Per group: the dims; a coordinate variable per dim (integers, or variable-length strings); each variable
    with its dims, gzip for numbers (the ``zlib`` encoding ArviZ asks for; h5netcdf's level 4) and a NaN fill value for
    floats (xarray's CF default); the attributes as strings.  Only numbers and string labels occur in draws;
    anything else would need xarray's CF encoding and is refused.
    """
    import h5netcdf

    with h5netcdf.File(path, "w") as f:
        for name in groups.groups():
            group = groups.arrays(name)
            g = f.create_group(name)
            for d, labels in group.coords.items():
                g.dimensions[d] = len(labels)
            written: set[str] = set()
            for var, (dims, arr) in group.variables.items():
                for d in dims:
                    if d not in written:
                        _write_variable(g, d, (d,), group.coords[d])
                        written.add(d)
                _write_variable(g, var, dims, arr)
            g.attrs.update(group.attrs | (attrs if name == "posterior" else {}))


def _write_variable(g: Any, name: str, dims: tuple[str, ...], values: np.ndarray) -> None:
    values = np.asarray(values)
    if values.dtype.kind in "UO":
        import h5py

        g.create_variable(name, dims, dtype=h5py.string_dtype(), data=values.astype(object))
    elif values.dtype.kind in "iuf":
        fill = np.nan if values.dtype.kind == "f" else None
        g.create_variable(name, dims, data=values, fillvalue=fill, compression="gzip")
    else:
        raise TypeError(f"{name}: draws of dtype {values.dtype} cannot be written without xarray's CF encoding")


def load_netcdf(path: str | Path) -> az.InferenceData:
    """Read fully into memory and close the file, so it can be overwritten later."""
    az = _arviz()

    idata = az.from_netcdf(path, engine=NETCDF_ENGINE)
    idata.load()
    return idata


def kde(values: np.ndarray, grid_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A density estimate for figures: (x, density)."""
    az = _arviz()

    flat = np.asarray(values, dtype=float).ravel()
    grid, pdf = az.kde(flat[np.isfinite(flat)], grid_len=grid_size)
    return np.asarray(grid), np.asarray(pdf)


def compare_models(loglik: dict[str, np.ndarray], *, k_threshold: float = 0.7) -> list[dict]:
    """PSIS-LOO of each model and stacking weights (``arviz.loo``, ``arviz.compare(method="stacking")``).

    ``loglik`` maps a model name to its pointwise log densities, shape ``(chain, draw, n)``, the same n
    observations for every model.  Returns one row per model, in the input order: ``model``, ``elpd_loo``,
    ``se``, ``p_loo``, ``elpd_diff`` (from the best), ``weight`` (stacking), ``n_bad_k`` (observations with
    Pareto k above ``k_threshold``, whose LOO estimate is unreliable) and ``warning``.
    """
    az = _arviz()

    data = {
        name: az.from_dict(
            posterior={"_": np.zeros(ll.shape[:2])},
            log_likelihood={"y": ll},
        )
        for name, ll in loglik.items()
    }
    with warnings.catch_warnings():
        # ArviZ warns about high Pareto k on stderr; the rows below carry that warning, per model, instead.
        warnings.filterwarnings("ignore", message=".*shape parameter of Pareto", category=UserWarning)
        # ArviZ 0.23's compare sorts with inplace=True, which pandas deprecates; nothing for us to act on
        warnings.filterwarnings("ignore", message=".*inplace keyword")
        loos = {name: az.loo(d, pointwise=True) for name, d in data.items()}
        table = az.compare(loos, method="stacking") if len(loos) > 1 else None
    rows = []
    for name, lo in loos.items():
        k = np.asarray(lo.pareto_k)
        n_bad = int(np.sum(k > k_threshold))
        rows.append(
            {
                "model": name,
                "elpd_loo": round(float(lo.elpd_loo), 3),
                "se": round(float(lo.se), 3),
                "p_loo": round(float(lo.p_loo), 3),
                "elpd_diff": round(float(table.loc[name, "elpd_diff"]), 3) if table is not None else 0.0,
                "weight": round(float(table.loc[name, "weight"]), 4) if table is not None else 1.0,
                "n_bad_k": n_bad,
                "max_k": round(float(np.max(k)), 3),
                "warning": (
                    f"{n_bad} comparison(s) with Pareto k > {k_threshold}: their LOO estimates are unreliable"
                    if n_bad
                    else ""
                ),
            }
        )
    return rows


def merge_blocks(blocks: dict[str, az.InferenceData]) -> az.InferenceData:
    """One InferenceData from independently sampled blocks (same chains and draws, distinct variable names).

    The posteriors are merged; ``sample_stats.diverging`` counts the divergent transitions of all blocks at
    each (chain, draw), so the diagnostics gate sees every block's divergences.
    """
    if len(blocks) == 1:
        return next(iter(blocks.values()))
    az = _arviz()
    import xarray as xr

    parts = list(blocks.values())
    posterior = xr.merge([p.posterior for p in parts], compat="override", combine_attrs="drop_conflicts")
    diverging = sum(p.sample_stats["diverging"].astype(int) for p in parts if "sample_stats" in p)
    return az.InferenceData(posterior=posterior, sample_stats=xr.Dataset({"diverging": diverging}))
