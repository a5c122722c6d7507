"""Declarative analysis specs (``models/*.toml``), validated with pydantic.

A spec names the model family (``model``), the evidence selection, the priors, the sampler and the
diagnostics thresholds.  Each family declares its spec class in its own module and registers it with
the family (:mod:`harmoni_bayes.models`); this module only reads TOML and dispatches on ``model``.
Unknown keys and bad values are refused with one :class:`SpecError` listing every problem with its
location (``evidence.trials``, ``priors.tau.sigma``, ...).  Example::

    name = "harmoni2_pfs_pdl1"
    title = "HARMONi-2 PFS by PD-L1 expression"
    model = "subgroups"
    as_of = 2025-06-30

    [evidence]
    trials = ["HARMONi-2"]
    endpoint = "PFS"
    subgroup_factor = "pdl1"

    [priors]
    tau = {dist = "half_normal", sigma = 0.25}

    [sampler]
    draws = 1000
    seed = 20240908
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import Overrides, SpecBase
from .errors import Problem, SpecError
from .models import families, get_family


def load_spec(path: str | Path) -> SpecBase:
    """Read and validate a TOML spec; ``name`` defaults to the file's stem.

    Relative evidence and reference file paths are resolved against the spec's folder.  A UTF-8 byte-order
    mark is accepted, as it is in evidence CSVs.
    """
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{path}: spec file not found")
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a spec file")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    data.setdefault("name", path.stem)
    spec = parse_spec(data, source=str(path))
    for key in ("evidence", "reference"):
        section = getattr(spec, key, None)
        for name in type(section).model_fields if section is not None else ():
            value = getattr(section, name)
            if (name == "file" or name.endswith("_file")) and value and not Path(value).is_absolute():
                setattr(section, name, str((path.parent / value).resolve()))
    return spec


def parse_spec(data: dict[str, Any], source: str = "<spec>") -> SpecBase:
    """Validate a spec given as a dict (the parsed TOML) against its family's spec class."""
    model = data.get("model")
    if model is None:
        raise SpecError(f"{source}: invalid spec", [Problem(f"missing key 'model' (one of {', '.join(families())})")])
    if not isinstance(model, str) or model not in families():
        raise SpecError(
            f"{source}: invalid spec",
            [Problem(f"model: unknown model (one of {', '.join(families())})", value=repr(model))],
        )
    return _validate(get_family(model).spec_class, data, source)


def _validate(cls: type[SpecBase], data: dict[str, Any], source: str) -> SpecBase:
    try:
        spec = cls.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: invalid spec", _problems(exc)) from None
    return resolve_method(spec)


def resolve_method(spec: SpecBase) -> SpecBase:
    """The spec with its engine named: a spec that names none gets its family's default.

    This is the one place the default is decided (every parsed or overridden spec passes here): ``exact``
    where the family has an exact engine for the spec (as bayesmeta does), else ``mcmc``; see
    :meth:`harmoni_bayes.models.base.ModelFamily.default_method`.

    Parameters
    ----------
    spec
        A validated spec, ``method`` possibly ``None``.

    Returns
    -------
    SpecBase
        The same spec object, its ``method`` set.
    """
    if spec.method is None:
        spec.method = get_family(spec.model).default_method(spec)
    return spec


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbid" or err["type"] == "extra_forbidden" else err["msg"]
        value = None if err["type"] == "missing" else repr(err.get("input"))[:60]
        problems.append(Problem(f"{where}: {msg}", value=value))
    return problems


def with_overrides(spec: SpecBase, **overrides: Any) -> SpecBase:
    """The spec with run-time overrides applied, validated like the spec itself.

    ``as_of`` (a date or ISO string), ``seed``, ``method`` (``mcmc``/``exact``; a spec that names no method
    gets its family's default, see :func:`resolve_method`), ``backend``
    (``pymc``/``nutpie``/``numpyro``) and ``draws`` (draws and tuning steps per chain); ``None`` keeps the spec's value.
    Bad values raise one :class:`SpecError` listing every problem.
    """
    try:
        o = Overrides.model_validate({k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SpecError("invalid option(s)", _problems(exc)) from None
    data = spec.model_dump()
    sampler = data["sampler"]
    if o.seed is not None:
        sampler["seed"] = o.seed
    if o.backend is not None:
        sampler["backend"] = o.backend
    if o.draws is not None:
        sampler["draws"] = sampler["tune"] = o.draws
    if o.method is not None:
        data["method"] = o.method
    if o.as_of is not None:
        data["as_of"] = o.as_of
    return _validate(type(spec), data, spec.name)


def spec_to_dict(spec: SpecBase) -> dict[str, Any]:
    """JSON-safe dict of the full (defaults filled in) spec, as saved with every result."""
    return spec.model_dump(mode="json")


def merge_changes(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` deep-merged in (neither is modified): nested tables merge key by key, but a
    table with a ``dist`` (a prior) replaces the old value whole, so a half-normal can become a half-Cauchy.
    """
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and "dist" not in value and isinstance(out.get(key), dict):
            out[key] = merge_changes(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def sensitivity_settings(spec: SpecBase) -> list[tuple[str, SpecBase]]:
    """The spec under each of its family's prior settings (``ModelFamily.sensitivity``), as ``(label, spec)``."""
    base = spec_to_dict(spec)
    return [(label, parse_spec(merge_changes(base, changes))) for label, changes in get_family(spec.model).sensitivity]


__all__ = [
    "families",
    "load_spec",
    "merge_changes",
    "parse_spec",
    "resolve_method",
    "sensitivity_settings",
    "spec_to_dict",
    "with_overrides",
]
