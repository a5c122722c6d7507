"""Settings shared by every analysis spec: sampler, diagnostics thresholds, evidence and reference selection.

These are plain pydantic models with no PyMC import, so that a spec can be validated (and the exact engine
run) without loading the sampling stack.  Each model family declares its own spec class on top of
:class:`SpecBase` in its own module (see :mod:`harmoni_bayes.models`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

DEFAULT_SEED = 20240908  # the HARMONi-2 WCLC readout date; any integer works
MAX_DRAWS = 100_000  # per chain; 4 chains x 100k draws of a few hundred variables already fill gigabytes
MAX_SEED = 2**32 - 1  # numpy's SeedSequence accepts any non-negative integer; PyMC and nutpie take 32 bits


class Strict(BaseModel):
    """A pydantic model that refuses unknown keys (a misspelt spec key is an error, never ignored)."""

    model_config = ConfigDict(extra="forbid")


Backend = Literal["pymc", "nutpie", "numpyro"]
"""NUTS implementations: PyMC's own (C-compiled PyTensor, one process per chain), nutpie (numba-compiled) and
numpyro (JAX/XLA-compiled; the fastest from an empty compile cache here, see docs/benchmarks.md)."""


class SamplerConfig(Strict):
    """NUTS settings.  ``backend`` picks the implementation (:data:`Backend`); all run the same model graph.

    ``block_target_accept``: for families sampled in independent blocks (the class surrogacy relationships), a
    ``target_accept`` per block name; blocks not named take ``target_accept``.
    """

    draws: int = Field(1000, ge=10, le=MAX_DRAWS)
    tune: int = Field(1000, ge=10, le=MAX_DRAWS)
    chains: int = Field(4, ge=1, le=16)
    seed: int = Field(DEFAULT_SEED, ge=0, le=MAX_SEED)
    backend: Backend = "pymc"
    target_accept: float = Field(0.95, gt=0.5, lt=1.0)
    block_target_accept: dict[str, Annotated[float, Field(gt=0.5, lt=1.0)]] = Field(default_factory=dict)
    cores: int | None = Field(None, ge=1)

    def for_block(self, block: str) -> SamplerConfig:
        """The settings for one block of a family sampled in blocks: ``target_accept`` as ``block_target_accept``
        gives it for that block (e.g. only the block with a funnel takes the small steps it needs), else the
        spec's ``target_accept``.
        """
        if block not in self.block_target_accept:
            return self
        return self.model_copy(update={"target_accept": self.block_target_accept[block]})


class DiagnosticThresholds(Strict):
    """Acceptance thresholds of the diagnostics gate (methods §g; Vehtari et al. 2021)."""

    max_rhat: float = Field(1.01, gt=1.0)
    min_ess_bulk: float = Field(400, gt=0)
    min_ess_tail: float = Field(400, gt=0)
    max_divergences: int = Field(0, ge=0)


class EvidenceSpec(Strict):
    """Which trial-evidence rows enter the likelihood (see :func:`harmoni_bayes.selection.select_evidence`)."""

    file: str | None = None  # default: the shipped HARMONi table; relative paths are relative to the spec
    trials: list[str] = Field(min_length=1)
    endpoint: Literal["PFS", "OS"] = "PFS"
    subgroup_factor: str = "overall"
    prefer: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


ReferenceGroup = Literal["IO", "IO+antiVEGF", "antiVEGF", "EGFR-TKI", "chemo"]


class TrialClassSpec(Strict):
    """Trials of the *trial-evidence* table that form one more class of reference comparisons.

    Each listed trial contributes its ITT PFS and OS estimates (the most mature of each as of the spec's
    date, chosen like any evidence) as one comparison of class ``name``; a trial without both is left out
    with its reason.  Used for the ivonescimab trials (HARMONi-A, HARMONi, HARMONi-6).
    """

    name: str = "ivonescimab"
    trials: list[str] = Field(min_length=1)


class ReferenceSpec(Strict):
    """Which reference PFS/OS comparisons train a surrogacy model (see :mod:`harmoni_bayes.reference`).

    ``ci_levels``: intervals whose level is not 95% (``pfs_ci_level``/``os_ci_level`` columns) are read at
    their stated level (``as_published``), read as if 95% (``assume_95``, the sensitivity of tables that
    label them 95%), or left out (``exclude``).  ``split_lines``: groups whose first-line and later-line
    comparisons are different classes (``IO`` -> ``IO 1L`` and ``IO 2L``).
    """

    file: str | None = None  # default: the shipped nsclc_pfs_os_trials.csv
    groups: list[ReferenceGroup] | None = Field(default_factory=lambda: list[ReferenceGroup](["IO", "IO+antiVEGF"]))
    lines: list[str] | None = Field(default_factory=lambda: ["1L"])
    shared_control: Literal["inflate", "keep", "first"] = "inflate"
    ci_levels: Literal["as_published", "assume_95", "exclude"] = "as_published"
    split_lines: list[ReferenceGroup] = Field(default_factory=lambda: list[ReferenceGroup](["IO"]))
    exclude_trials: list[str] = Field(default_factory=list)
    trial_class: TrialClassSpec | None = None


class SpecBase(Strict):
    """Keys every analysis spec has.  A family's spec class adds ``model: Literal["<key>"]`` and its own keys.

    ``as_of`` is the one as-of date of the analysis: evidence disclosed after it is left out.  Older specs
    wrote it inside ``[evidence]``; it is moved here on reading, and stored only here.  ``thresholds`` are
    the HR thresholds t of the headline probabilities P(HR < t); ``None`` means the family's defaults.
    ``method`` left out (``None``) means the family's default engine: ``exact`` where the family has an exact
    engine for the spec (as bayesmeta does), else ``mcmc``; it is resolved when the spec is read
    (:func:`harmoni_bayes.specs.parse_spec`), so a parsed spec always names its engine.
    ``timeline = true`` asks the main job to fit the spec at every date its evidence changed, too.
    """

    model: str
    name: str
    title: str
    question: str = ""
    notes: list[str] = Field(default_factory=list)  # caveats shown in the report, e.g. differing comparators
    method: Literal["mcmc", "exact"] | None = None  # None: the family's default (exact where it has an engine)
    as_of: dt.date | None = None
    thresholds: list[PositiveFloat] | None = Field(None, min_length=1)
    timeline: bool = False  # the main job (run-all) also draws this spec's readout timeline
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    diagnostics: DiagnosticThresholds = Field(default_factory=DiagnosticThresholds)

    @model_validator(mode="before")
    @classmethod
    def _as_of_stored_once(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("evidence"), dict):
            return data
        evidence = dict(data["evidence"])
        if "as_of" not in evidence:
            return data
        nested = evidence.pop("as_of")
        top = data.get("as_of")
        if top is not None and str(top) != str(nested):
            raise ValueError(f"as_of is given twice with different dates ({top} and evidence.as_of {nested})")
        return {**data, "evidence": evidence, "as_of": nested if top is None else top}

    def sampled_blocks(self) -> tuple[str, ...]:
        """Names of the blocks MCMC samples separately (``ModelFamily.build_models``); one unnamed block unless a
        family's spec says otherwise.  ``sampler.block_target_accept`` may name only these.
        """
        return ("",)

    @model_validator(mode="after")
    def _block_target_accept_names_blocks(self):
        blocks = self.sampled_blocks()
        unknown = sorted(set(self.sampler.block_target_accept) - set(blocks))
        if unknown:
            named = ", ".join(b for b in blocks if b)
            raise ValueError(
                f"sampler.block_target_accept names {', '.join(map(repr, unknown))}, not a sampled block of this"
                f" model ({'its blocks: ' + named if named else 'it is sampled as one block'})"
            )
        return self


class Overrides(Strict):
    """Run-time overrides of a spec (command-line options or ``run_spec`` keywords), validated like the spec."""

    as_of: dt.date | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    method: Literal["mcmc", "exact"] | None = None
    backend: Backend | None = None
    draws: int | None = Field(None, ge=10, le=MAX_DRAWS)


@dataclass(frozen=True)
class RowPadding:
    """How to pad a model's rows so that models with different numbers of rows share one compiled sampler.

    Every data variable whose first dimension is ``dim`` is padded to the next multiple of ``bucket`` by repeating
    its first row (a valid row, so the padded log densities are finite), and the data variables named ``*weight``
    (a per-row weight multiplying each row's log density) get 0 there: padded rows add exactly nothing.
    """

    dim: str
    weight: str
    bucket: int = 16
