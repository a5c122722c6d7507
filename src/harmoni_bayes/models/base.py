"""What every model family provides, so that running, summaries and reports treat them alike.

A model family is the unit of extension: one class in one module holds

* its **spec class** (``spec_class``, a :class:`~harmoni_bayes.config.SpecBase` with ``model: Literal[...]``);
* its **evidence step** (:meth:`ModelFamily.from_spec`: select rows from the evidence tables, build a typed
  inputs object, and say which rows were used and which were left out, with reasons and sources);
* its **model** (:meth:`ModelFamily.build_model`: a fresh ``pm.Model``, no sampling);
* its **quantities** with their scales and its **probabilities** (thresholds from the spec, with family
  defaults), under the fixed names of the ``summary.json`` contract;
* its **assumptions**, in words a clinician can read;
* its **presentation** (:class:`Presentation`: headline sentences, plain names of its quantities, which
  figures it draws);
* its **capabilities**, declared rather than probed (``"exact"``: an exact engine, ``"forecast"``: it
  predicts a later readout).

It registers itself with :func:`harmoni_bayes.models.register`; nothing else needs editing.  The constructor
is lazy (stores data only); PyMC is imported inside :meth:`build_model`, so specs can be validated and exact
engines run without loading the sampling stack.
"""

from __future__ import annotations

import datetime as dt
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import RowPadding, SpecBase
from ..constants import DEFAULT_HR_THRESHOLDS, LOWER_KEY, Q_HI, Q_LO, UPPER_KEY, round_sig
from ..errors import ModelError, Problem

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

    from ..selection import Selection

Scale = Literal["hr", "log", "sd", "ratio", "identity", "probability"]
Capability = Literal["exact", "forecast"]
SOURCE_COLUMNS = ("source", "source_kind", "source_url_pfs", "source_url_os")


# ---------------------------------------------------------------------------------------------
# Named results of a fit
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draws:
    """Posterior draws of one named quantity, shape ``(chain, draw)``.

    For a probability, ``values`` holds per-draw indicators (0/1) or per-draw conditional probabilities;
    their mean is the posterior probability.  ``moments=False`` marks quantities without finite moments
    (e.g. a ratio with the slope in the denominator): the summary then reports mean and sd as null.
    """

    name: str
    scale: Scale
    values: np.ndarray
    moments: bool = True


@dataclass(frozen=True)
class Stats:
    """A quantity summarised without draws (an exact engine, or a published estimate).

    ``stats`` holds the keys of :data:`harmoni_bayes.constants.STAT_KEYS`; a missing moment is ``None``.
    """

    name: str
    scale: Scale
    stats: Mapping[str, float | None]


@dataclass(frozen=True)
class ExactFit:
    """What an exact engine returns: summarised quantities, probabilities, and iid draws for figures.

    ``draws`` maps variable names to arrays of shape ``(n,)`` or ``(n, m)``.  A 2-D array's second axis is the
    family's dim unless ``dims`` names another, whose labels are then in ``coords``.
    """

    quantities: list[Stats]
    probabilities: list[tuple[str, float]]
    draws: dict[str, np.ndarray]
    dims: dict[str, str] = field(default_factory=dict)
    coords: dict[str, list[str]] = field(default_factory=dict)


def posterior_array(idata: Any, name: str) -> np.ndarray:
    """``idata.posterior[name]`` as a numpy array with (chain, draw) leading."""
    return np.asarray(idata.posterior[name].values)


def probabilities_below(quantities: Sequence[Draws], names: Sequence[str], thresholds: Sequence[float]) -> list[Draws]:
    """``P(<name><t>)`` indicators for the named HR-scale quantities, each threshold in turn."""
    by_name = {q.name: q for q in quantities}
    return [
        Draws(f"P({n}<{t:g})", "probability", (by_name[n].values < t).astype(float)) for n in names for t in thresholds
    ]


# ---------------------------------------------------------------------------------------------
# Evidence going in, and the record of it that travels with the result
# ---------------------------------------------------------------------------------------------


class EvidenceTables:
    """The evidence tables a spec may read, loaded once and only when a family asks for them.

    ``trials``: a validated trial-evidence table given directly, or a CSV path, or ``None`` for the spec's
    ``[evidence] file`` and then the shipped HARMONi table.  :meth:`reference` reads the reference PFS/OS
    table named by the spec's ``[reference] file``, else the shipped one; :meth:`network` the treatment-network
    table likewise.  Every file read is recorded
    (name and SHA-256) for the result's provenance.

    Tables, and selections from the trial table (:meth:`selection`), are kept: an exact run's sensitivity strip
    refits the same evidence under each prior setting, and reading and selecting again each time cost more
    than the refits (issue 14).  Callers share them, so they never change a table or selection in place.
    """

    def __init__(self, spec: SpecBase, trials: str | Path | pd.DataFrame | None = None):
        self._spec = spec
        self._given = trials
        self.files: dict[str, str] = {}
        self._tables: dict[tuple[str, str | None], pd.DataFrame] = {}
        self._selections: dict[tuple[tuple[str, Any], ...], Selection] = {}

    @cached_property
    def trials(self) -> pd.DataFrame:
        """The trial-evidence table."""
        from ..evidence import load_evidence, read_evidence

        if isinstance(self._given, pd.DataFrame):
            table = self._given
        elif self._given is not None:
            table = read_evidence(self._given)
        else:
            ev = getattr(self._spec, "evidence", None)
            table = read_evidence(ev.file) if ev is not None and ev.file else load_evidence()
        self._record(table)
        return table

    def selection(self, **criteria: Any) -> Selection:
        """:func:`~harmoni_bayes.selection.select_evidence` on the trial table, once per set of criteria."""
        from ..selection import select_evidence

        key = tuple(sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in criteria.items()))
        if key not in self._selections:
            self._selections[key] = select_evidence(self.trials, **criteria)
        return self._selections[key]

    def reference(self, file: str | None) -> pd.DataFrame:
        """The reference PFS/OS table (the spec's file, else the shipped one)."""
        from ..evidence import load_reference_trials, read_evidence
        from ..schema import REFERENCE

        return self._kept(
            "reference", file, lambda: read_evidence(file, schema=REFERENCE) if file else load_reference_trials()
        )

    def network(self, file: str | None) -> pd.DataFrame:
        """The treatment-network table (the spec's file, else the shipped ``nsclc_pdl1_network.csv``)."""
        from ..evidence import load_network, read_evidence
        from ..schema import NETWORK

        return self._kept("network", file, lambda: read_evidence(file, schema=NETWORK) if file else load_network())

    def _kept(self, kind: str, file: str | None, read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        if (kind, file) not in self._tables:
            table = read()
            self._record(table)
            self._tables[kind, file] = table
        return self._tables[kind, file]

    def _record(self, table: pd.DataFrame) -> None:
        source = str(table.attrs.get("source", "<DataFrame>"))
        self.files[_display_name(source)] = _sha256(source)


def _display_name(source: str) -> str:
    """A file's name for provenance without absolute paths: relative to the working folder, the package's
    ``harmoni_bayes/data/<name>`` for shipped tables, else the bare file name.
    """
    p = Path(source)
    if not p.is_absolute():
        return source
    package_data = Path(__file__).resolve().parents[1] / "data"
    for base, prefix in ((package_data, "harmoni_bayes/data"), (Path.cwd().resolve(), "")):
        try:
            rel = p.resolve().relative_to(base)
        except ValueError:
            continue
        return f"{prefix}/{rel}" if prefix else str(rel)
    return p.name


def _sha256(path: str) -> str:
    import hashlib

    p = Path(path)
    if not p.is_file():
        return ""
    return hashlib.sha256(p.read_bytes()).hexdigest()


@dataclass
class EvidenceRecord:
    """Which evidence rows a fit used and which it left out, with reasons and sources.

    ``used`` and ``excluded`` carry a ``table`` column (``trials`` or ``reference``); ``excluded`` has
    ``reason`` and the row's ``source`` columns, so a report never has to re-read a CSV.  ``as_of`` is the
    spec's as-of date; ``notes`` are provenance facts (e.g. that a reference table carried no dates).
    """

    used: pd.DataFrame
    excluded: pd.DataFrame
    as_of: dt.date | None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def row_ids(self) -> list[str]:
        """Ids of the rows used, in order."""
        return list(self.used["row_id"]) if "row_id" in self.used else []


def with_sources(excluded: pd.DataFrame, table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows left out, with their source columns filled in from ``table`` (matched by ``row_id``)."""
    out = excluded.copy()
    cols = [c for c in SOURCE_COLUMNS if c in table and c not in out]
    if cols and len(out):
        out = out.merge(table[["row_id", *cols]], on="row_id", how="left")
    return out.assign(table=name)


def reasons_as_problems(excluded: pd.DataFrame) -> list[Problem]:
    """One :class:`Problem` per row left out, for an error that says why too few rows were usable."""
    return [Problem(f"{r.row_id}: {r.reason}") for r in excluded.itertuples()]


# ---------------------------------------------------------------------------------------------
# Presentation: what reports say about a family, as data (reporting turns it into text and figures)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Q:
    """A statistic of a summary quantity in a headline, e.g. ``Q("hr_pooled")`` (the median)."""

    name: str
    stat: str = "median"


@dataclass(frozen=True)
class P:
    """A summary probability in a headline, e.g. ``P("P(hr_pooled<1)")``."""

    name: str


@dataclass(frozen=True)
class CI:
    """``median (95% CrI lower to upper)`` of a summary quantity in a headline."""

    name: str


Part = str | Q | P | CI


@dataclass(frozen=True)
class Line:
    """One headline sentence.  ``role``: ``answer``, ``estimate``, ``detail`` or ``note``."""

    role: str
    parts: tuple[Part, ...]


def line(role: str, *parts: Part | Sequence[Part]) -> Line:
    """A headline sentence from text and number references (nested lists are flattened)."""
    flat: list[Part] = []
    for p in parts:
        if isinstance(p, str | Q | P | CI):
            flat.append(p)
        else:
            flat.extend(p)
    return Line(role, tuple(flat))


@dataclass(frozen=True)
class HeadlineContext:
    """What a family's headline function may use: the arms and endpoint in words, and the summary's names."""

    experimental: str
    control: str
    endpoint: str
    when: str
    target: str
    quantities: Mapping[str, Mapping[str, Any]]
    probabilities: Mapping[str, Mapping[str, Any]]
    spec: Mapping[str, Any] = field(default_factory=dict)
    """The result's spec (as saved), for words a family keeps there (e.g. a target trial's name)."""

    @property
    def when_suffix(self) -> str:
        """`` (as of 2025-06-30)`` or empty."""
        return f" ({self.when})" if self.when else ""

    def levels(self, stem: str = "hr") -> list[str]:
        """Labels of the indexed quantities ``<stem>[<label>]``, in summary order."""
        return [n[len(stem) + 1 : -1] for n in self.quantities if n.startswith(stem + "[")]


HeadlineFn = Callable[[HeadlineContext], list[Line]]


@dataclass(frozen=True)
class Forecast:
    """What a family with the ``"forecast"`` capability predicts, so a later readout can score it.

    ``quantity``: a posterior variable on the HR scale whose draws forecast a *true* HR.  ``outcome``:
    which later readout it forecasts: ``"target_os"``, the target trial's ITT OS estimate; ``"new_trial"``,
    the ITT estimate (same endpoint) of a trial that was not in the evidence.
    """

    quantity: str
    outcome: Literal["target_os", "new_trial"]


ForestLayout = Literal["levels", "trials", "target", "none"]


@dataclass(frozen=True)
class SummaryTable:
    """A table a family adds to ``summary.json`` (:meth:`ModelFamily.summary_extra`) and shows in its report.

    ``key``: the summary key holding a list of row dicts; ``columns``: ``(field, header)`` pairs, in order;
    ``intro``: one sentence above the table saying what it is and how to read it.
    """

    key: str
    title: str
    columns: tuple[tuple[str, str], ...]
    intro: str = ""


@dataclass(frozen=True)
class BenefitCurves:
    """The probability-of-benefit figure of a family whose headline is not a treatment HR (a PFS-to-OS relationship):
    the probability of ``event`` for a comparison whose ``given`` is h, over h (e.g. a true OS benefit given the
    true PFS HR), instead of P(HR < h) of a headline HR.

    ``curves(draws, log_h)``: ``{label: probability at each log h}``, averaged over the posterior draws, where
    ``draws(name)`` gives a posterior variable's draws, flat (``None`` when absent); the first curve is the
    headline's, and an empty dict means the posterior lacks what the curves need.
    """

    given: str
    event: str
    curves: Callable[[Callable[[str], np.ndarray | None], np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Presentation:
    """How reports show a family.

    * ``headline``: a function of :class:`HeadlineContext` returning headline :class:`Line` s (``None``: the
      reporting package's generic headline, the first probability and the first quantity);
    * ``names``: plain words for the family's quantity names (``{"hr_pooled": "pooled HR ..."}``);
      indexed names (``hr[<label>]``) fall back to the shared wording in the reporting package;
    * ``short_labels``: row labels in the forest plot;
    * ``figures``: names of the figures drawn, from the reporting package's figure registry;
    * ``densities``: quantities whose posterior (and prior) densities are drawn; ``"hr[*]"`` means every
      ``hr[<label>]``;
    * ``forest``: how the forest plot is laid out (``levels``: published and shrunken estimate per
      subgroup; ``trials``: published and shrunken per trial; ``target``: the target trial's published
      rows and every HR-scale quantity; ``none``);
    * ``headline_quantity``: the quantity drawn when results at several dates are compared;
    * ``benefit``: the probability-of-benefit curves of a family whose headline is not an HR (:class:`BenefitCurves`;
      an HR headline gets P(HR < h) of its draws without asking).
    """

    headline: HeadlineFn | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    short_labels: Mapping[str, str] = field(default_factory=dict)
    figures: tuple[str, ...] = ("forest", "densities")
    densities: tuple[str, ...] = ()
    forest: ForestLayout = "target"
    headline_quantity: str | None = None
    tables: tuple[SummaryTable, ...] = ()
    benefit: BenefitCurves | None = None


# ---------------------------------------------------------------------------------------------
# The sensitivity strip: the headline probability under the other analyses a reader would ask about
# ---------------------------------------------------------------------------------------------

STRIP_TITLE = "Where the certainty comes from"
STRIP_DRAWS = 64
"""Draws asked of an exact refit in a strip: its numbers are exact, the draws (for figures) are not used."""


def weighted_quantiles(values: Any, probs: Sequence[float], weights: Any = None) -> list[float]:
    """Quantiles of ``values`` (any shape; non-finite values dropped), optionally with importance ``weights``.

    Unweighted: :func:`numpy.quantile`.  Weighted: the inverse of the weighted empirical CDF, interpolated
    between the midpoints of the sorted values' weights (so equal weights give ``numpy.quantile``'s answer up to
    the interpolation at the ends).
    """
    v = np.asarray(values, dtype=float).ravel()
    w = None if weights is None else np.broadcast_to(np.asarray(weights, dtype=float), np.shape(values)).ravel()
    keep = np.isfinite(v)
    v = v[keep]
    if v.size == 0:
        return [math.nan] * len(probs)
    if w is None:
        return [float(x) for x in np.quantile(v, probs)]
    w = w[keep]
    order = np.argsort(v)
    v, w = v[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return [float(x) for x in np.interp(probs, cdf, v)]


@dataclass(frozen=True)
class SensitivityRow:
    """One analysis in the sensitivity strip: the headline probability under it, and the median and 95% interval
    of the quantity the strip is about.

    A row whose numbers do not exist (immature OS before any OS was disclosed) keeps them ``None`` and says why in
    ``note``: reports print that note where the numbers would be, so the reader sees the analysis is missing and
    why, rather than a strip that silently lacks it.  ``extra`` holds further numbers of the row (e.g. the
    importance-sampling effective sample size), written beside the others.
    """

    label: str
    probability: float | None
    median: float | None = None
    lower: float | None = None
    upper: float | None = None
    note: str = ""
    headline: bool = False
    extra: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_stats(cls, label: str, probability: float | None, stats: Mapping[str, Any], **kw: Any) -> SensitivityRow:
        """A row whose interval is a summary record's (``median``, ``q2.5``, ``q97.5``)."""
        return cls(label, probability, stats.get("median"), stats.get(LOWER_KEY), stats.get(UPPER_KEY), **kw)

    @classmethod
    def from_draws(
        cls, label: str, probability: float | None, values: Any, *, weights: Any = None, **kw: Any
    ) -> SensitivityRow:
        """A row whose interval is the median and 95% equal-tailed interval of draws (importance-weighted)."""
        med, lo, hi = weighted_quantiles(values, (0.5, Q_LO, Q_HI), weights)
        return cls(label, probability, med, lo, hi, **kw)

    def to_dict(self) -> dict[str, Any]:
        """The row as ``summary.json`` holds it (numbers rounded like every summary number)."""
        return {
            "label": self.label,
            "probability": round_sig(self.probability),
            "median": round_sig(self.median),
            "lower": round_sig(self.lower),
            "upper": round_sig(self.upper),
            "headline": self.headline,
            "note": self.note,
            **{k: round_sig(v) for k, v in self.extra.items()},
        }


@dataclass(frozen=True)
class SensitivityStrip:
    """The strip beside a headline (``summary.json`` key ``strip``): ``probability`` names the probability shown
    (``P(OS HR < 1)``), ``quantity`` what each row's median and interval are of (``forecast OS HR``), one row per
    analysis, the headline's own row (or rows) marked.
    """

    probability: str
    rows: tuple[SensitivityRow, ...]
    quantity: str = ""
    title: str = STRIP_TITLE

    def to_dict(self) -> dict[str, Any]:
        """``{"title", "probability", "quantity", "rows"}``, as ``summary.json`` holds it."""
        rows = [r.to_dict() for r in self.rows]
        return {"title": self.title, "probability": self.probability, "quantity": self.quantity, "rows": rows}


@dataclass(frozen=True)
class StripContext:
    """What a family's :meth:`ModelFamily.strip` may use beyond its own posterior.

    ``quantities`` and ``probabilities``: the fit's summary records by name (the headline row repeats them, so
    it always equals the headline).  ``refit(changes)``: the family built from the spec with ``changes`` merged
    in (as a sensitivity setting is), on the same evidence tables; ``settings(changes)``: likewise under each of
    the family's :attr:`ModelFamily.sensitivity` settings, as ``(label, family)``.  Building a family selects
    evidence only; fitting it is the strip's choice (an exact fit costs milliseconds, MCMC minutes).
    """

    method: str
    seed: int
    quantities: Mapping[str, Mapping[str, Any]]
    probabilities: Mapping[str, float]
    refit: Callable[[Mapping[str, Any]], ModelFamily]
    settings: Callable[[Mapping[str, Any]], list[tuple[str, ModelFamily]]]

    def headline_row(self, label: str, name: str, note: str) -> SensitivityRow:
        """The strip's row of the fit itself: ``P(<name><1)`` and the median and 95% interval of ``name``, as the
        headline shows them.
        """
        return SensitivityRow.from_stats(
            label, self.probabilities[f"P({name}<1)"], self.quantities[name], note=note, headline=True
        )

    def headline_hr(self, preferred: str | None) -> str | None:
        """The HR-scale quantity a strip is about: ``preferred`` (the family's headline quantity) when the summary
        has it and its ``P(<name><1)``, else (a network's target comparison is named by the spec) the first such.
        """
        candidates = [preferred, *(n for n, q in self.quantities.items() if q.get("scale") == "hr")]
        return next((c for c in candidates if c in self.quantities and f"P({c}<1)" in self.probabilities), None)


def exact_strip_rows(
    families: Sequence[tuple[str, ModelFamily]], name: str, seed: int, note: str, probability: str | None = None
) -> list[SensitivityRow]:
    """One row per family: ``probability`` (default ``P(<name><1)``) and ``name``'s median and interval from its
    exact fit.
    """
    pname = probability or f"P({name}<1)"
    rows = []
    for label, fam in families:
        fit = fam.exact_fit(STRIP_DRAWS, np.random.default_rng(seed))
        stats = next(s.stats for s in fit.quantities if s.name == name)
        rows.append(SensitivityRow.from_stats(label, float(dict(fit.probabilities)[pname]), stats, note=note))
    return rows


# ---------------------------------------------------------------------------------------------
# The family interface
# ---------------------------------------------------------------------------------------------


class ModelFamily(ABC):
    """A model family: spec, evidence step, model, quantities, assumptions, presentation, capabilities.

    Subclasses set the class attributes and implement the abstract methods; optional capabilities are
    declared in ``capabilities`` and implemented by overriding :meth:`exact_fit`.
    """

    name: ClassVar[str]
    """The spec's ``model`` key."""
    spec_class: ClassVar[type[SpecBase]]
    presentation: ClassVar[Presentation] = Presentation()
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    forecast: ClassVar[Forecast | None] = None
    """With the ``"forecast"`` capability: what is forecast (see :class:`Forecast`)."""
    sensitivity: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = ()
    """The prior settings a reader would ask about, as ``(label, spec changes)``; the main job fits each."""
    default_thresholds: ClassVar[tuple[float, ...]] = DEFAULT_HR_THRESHOLDS
    dim: ClassVar[str | None] = None
    """The name of the family's indexed dimension (``trial``, ``subgroup``), if any."""
    row_padding: ClassVar[RowPadding | None] = None
    """With the numpyro backend: how to pad the model's rows so that fits of other evidence share one compiled
    sampler (:func:`harmoni_bayes.inference.sample`); None samples with PyMC's own numpyro path."""

    labels: list[str]
    thresholds: tuple[float, ...]

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: Any, tables: EvidenceTables) -> tuple[ModelFamily, EvidenceRecord]:
        """Select the evidence the spec asks for and construct the family from it."""

    @abstractmethod
    def build_model(self) -> pm.Model:
        """A fresh PyMC model of the family's data (no sampling)."""

    def build_models(self) -> dict[str, pm.Model]:
        """The models to sample, by block name; one (:meth:`build_model`) unless a family splits its model into
        independent blocks, which are sampled separately and merged (their variable names must differ).
        """
        return {"": self.build_model()}

    @abstractmethod
    def quantities(self, idata: az.InferenceData) -> list[Draws]:
        """Posterior draws of the named quantities, each with its scale."""

    @abstractmethod
    def probabilities(self, idata: az.InferenceData) -> list[Draws]:
        """Per-draw indicators or conditional probabilities of the named events."""

    @abstractmethod
    def assumptions(self) -> list[str]:
        """What the model assumes, in plain words, for the report."""

    # -- optional parts, with defaults --------------------------------------------------------------

    @classmethod
    def default_method(cls, spec: Any) -> Literal["mcmc", "exact"]:
        """The engine of a spec that names none: ``exact`` where the family has an exact engine, else ``mcmc``.

        Parameters
        ----------
        spec
            The family's spec (a family may need MCMC for some of its options, e.g. EXNEX).

        Returns
        -------
        str
            ``"exact"`` or ``"mcmc"``.
        """
        return "exact" if "exact" in cls.capabilities else "mcmc"

    def exact_fit(self, n_draws: int, rng: np.random.Generator) -> ExactFit:
        """The exact engine (families with the ``"exact"`` capability override this)."""
        raise ModelError(f"model '{self.name}' has no exact engine; use method = 'mcmc'")

    def published_quantities(self) -> list[Stats]:
        """Published estimates shown beside the posterior ones (e.g. raw subgroup HRs); none by default."""
        return []

    def prior_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Prior draws of the key quantities, named and shaped as in the posterior, for overlays."""
        return {}

    def pointwise_loglik(self, idata: az.InferenceData) -> dict[str, np.ndarray]:
        """Per model variant, pointwise log densities ``(chain, draw, n)`` for a LOO comparison; none by default.

        A family that fits several variants in one run returns them here; the run compares them with PSIS-LOO
        and stacking (ArviZ, in :mod:`harmoni_bayes.posterior`) and hands the table to :meth:`use_comparison`.
        """
        return {}

    def use_comparison(self, rows: list[dict[str, Any]]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Take the LOO comparison of :meth:`pointwise_loglik`'s variants (rows with ``model`` and ``weight``)."""

    def summary_extra(self, idata: az.InferenceData) -> dict[str, Any]:
        """Family-specific tables for ``summary.json`` (e.g. a model comparison); none by default."""
        return {}

    def strip(self, idata: az.InferenceData, context: StripContext) -> SensitivityStrip | None:
        """The sensitivity strip beside the headline (``summary.json`` key ``strip``), or ``None``.

        By default, for a family with an exact engine and prior settings (:attr:`sensitivity`): the headline
        probability ``P(<HR><1)`` and HR as fitted, then under each setting, each one more exact fit of the same
        evidence (milliseconds), so a report shows beside its headline how much the answer rests on the
        heterogeneity prior.  This holds for an MCMC fit too (its exact refits are the cheap check).  A family
        whose strip shows other analyses (a forecast without the surrogacy model, other discounts, other model
        variants) overrides this.
        """
        if "exact" not in self.capabilities or not self.sensitivity:
            return None
        name = context.headline_hr(self.presentation.headline_quantity)
        if name is None:
            return None
        head = context.headline_row("as specified", name, "the spec's priors")
        rows = exact_strip_rows(context.settings({}), name, context.seed, "exact refit")
        return SensitivityStrip(f"P({name} < 1)", (head, *rows), self.presentation.names.get(name, name))

    def set_thresholds(self, spec: SpecBase) -> None:
        """Take the headline HR thresholds from the spec, else the family's defaults."""
        self.thresholds = tuple(spec.thresholds) if spec.thresholds else tuple(self.default_thresholds)


def select_trials(spec: Any, tables: EvidenceTables, **criteria: Any) -> tuple[Any, EvidenceRecord]:
    """Run :func:`~harmoni_bayes.selection.select_evidence` with the spec's ``[evidence]`` and ``as_of``.

    Keyword ``criteria`` override the spec's (e.g. ``subgroup_factor="overall"``, ``endpoint=None``).
    Returns the :class:`~harmoni_bayes.selection.Selection` and the matching :class:`EvidenceRecord`.
    """
    ev = getattr(spec, "evidence", None)  # a spec without [evidence] (e.g. a reference-only model): criteria only
    args = {
        "as_of": spec.as_of,
        "trials": ev.trials if ev else None,
        "endpoint": ev.endpoint if ev else None,
        "subgroup_factor": ev.subgroup_factor if ev else None,
        "prefer": ev.prefer if ev else (),
        "exclude": ev.exclude if ev else (),
    } | criteria
    table = tables.trials
    sel = tables.selection(**args)
    record = EvidenceRecord(
        used=sel.used.assign(table="trials"),
        excluded=with_sources(sel.excluded, table, "trials"),
        as_of=spec.as_of,
    )
    return sel, record
