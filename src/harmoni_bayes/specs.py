"""Declarative analysis specs (``models/*.toml``), validated with pydantic.

A spec names the evidence selection, the model family, the priors, the sampler and the diagnostics
thresholds.  Unknown keys and bad values are refused with one :class:`SpecError` listing every problem
with its location (``evidence.trials``, ``priors.tau.sigma``, ...).  Example::

    name = "harmoni2_pfs_pdl1"
    title = "HARMONi-2 PFS by PD-L1 expression"
    model = "subgroups"
    method = "mcmc"

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

import datetime as dt
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import Problem, SpecError
from .inference import SamplerConfig
from .models.random_effects import RandomEffectsPriors
from .models.subgroups import ExnexOptions, SubgroupPriors
from .models.surrogacy import SurrogacyPriors
from .posterior import DiagnosticThresholds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceSpec(_Strict):
    """Which rows enter the likelihood (see :func:`harmoni_bayes.selection.select_evidence`)."""

    file: str | None = None  # default: the shipped HARMONi table; relative paths are relative to the spec
    trials: list[str] = Field(min_length=1)
    endpoint: Literal["PFS", "OS"] = "PFS"
    subgroup_factor: str = "overall"
    as_of: dt.date | None = None
    prefer: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class _SpecBase(_Strict):
    name: str
    title: str
    question: str = ""
    notes: list[str] = Field(default_factory=list)  # caveats shown in the report, e.g. differing comparators
    method: Literal["mcmc", "exact"] = "mcmc"
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    diagnostics: DiagnosticThresholds = Field(default_factory=DiagnosticThresholds)


class RandomEffectsSpec(_SpecBase):
    model: Literal["random_effects"]
    evidence: EvidenceSpec
    priors: RandomEffectsPriors = Field(default_factory=RandomEffectsPriors)


class SubgroupSpec(_SpecBase):
    model: Literal["subgroups"]
    evidence: EvidenceSpec
    priors: SubgroupPriors = Field(default_factory=SubgroupPriors)
    exnex: ExnexOptions = Field(default_factory=ExnexOptions)


class ReferenceSpec(_Strict):
    """Which reference PFS/OS comparisons train the surrogacy model (see :mod:`harmoni_bayes.reference`)."""

    file: str | None = None  # default: the shipped nsclc_pfs_os_trials.csv
    groups: list[Literal["IO", "IO+antiVEGF", "antiVEGF"]] | None = Field(default_factory=lambda: ["IO", "IO+antiVEGF"])
    lines: list[str] | None = Field(default_factory=lambda: ["1L"])
    shared_control: Literal["inflate", "keep", "first"] = "inflate"
    exclude_trials: list[str] = Field(default_factory=list)


class SurrogacySpec(_SpecBase):
    model: Literal["surrogacy"]
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    priors: SurrogacyPriors = Field(default_factory=SurrogacyPriors)
    as_of: dt.date | None = None  # filters reference rows that carry a disclosure date


class TargetSpec(_Strict):
    """The later OS analysis to forecast.

    HARMONi-2's planned number of deaths is not public.  The default, 314, is an assumption: twice the
    157 deaths of the early OS look (39% maturity), i.e. about 79% of the 398 patients.  Change it when the
    plan is known.  ``alpha`` is the one-sided significance level of that later test.
    """

    later_deaths: int = Field(314, gt=0)
    alpha: float = Field(0.025, gt=0, lt=0.5)


class OSForecastSpec(_SpecBase):
    model: Literal["os_forecast"]
    evidence: EvidenceSpec  # the target trial: its ITT PFS row and, when disclosed, its ITT OS row
    target: TargetSpec = Field(default_factory=TargetSpec)
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    priors: SurrogacyPriors = Field(default_factory=SurrogacyPriors)


SPEC_TYPES: tuple[type[_SpecBase], ...] = (RandomEffectsSpec, SubgroupSpec, SurrogacySpec, OSForecastSpec)
AnySpec = Annotated[
    RandomEffectsSpec | SubgroupSpec | SurrogacySpec | OSForecastSpec,
    Field(discriminator="model"),
]


class _SpecFile(_Strict):
    spec: AnySpec


def load_spec(path: str | Path) -> _SpecBase:
    """Read and validate a TOML spec; ``name`` defaults to the file's stem."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{path}: spec file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    data.setdefault("name", path.stem)
    spec = parse_spec(data, source=str(path))
    for section in (getattr(spec, "evidence", None), getattr(spec, "reference", None)):
        if section is not None and section.file and not Path(section.file).is_absolute():
            section.file = str((path.parent / section.file).resolve())
    return spec


def parse_spec(data: dict, source: str = "<spec>") -> _SpecBase:
    """Validate a spec given as a dict (the parsed TOML)."""
    if "model" not in data:
        raise SpecError(f"{source}: invalid spec", [Problem(f"missing key 'model' (one of {', '.join(families())})")])
    try:
        return _SpecFile.model_validate({"spec": data}).spec
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"][1:] if str(p) not in families()]
            where = ".".join(loc) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            value = None if err["type"] == "missing" else repr(err.get("input"))[:60]
            problems.append(Problem(f"{where}: {msg}", value=value))
        raise SpecError(f"{source}: invalid spec", problems) from None


def families() -> list[str]:
    return [t.model_fields["model"].annotation.__args__[0] for t in SPEC_TYPES]


def spec_to_dict(spec: _SpecBase) -> dict:
    """JSON-safe dict of the full (defaults filled in) spec, as saved with every result."""
    return spec.model_dump(mode="json")
