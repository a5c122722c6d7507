"""What every model family provides, so that inference, summaries and reports treat them alike.

A family is a class whose constructor only stores data and configuration (lazy: no
sampling, no graph building).  ``build_model()`` returns a fresh ``pm.Model``;
structure tests and prior predictive checks need nothing more.  After sampling,
``quantities(idata)`` and ``probabilities(idata)`` turn the posterior into named draws
under the fixed names of the ``summary.json`` contract (see ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import arviz as az
    import pymc as pm

Scale = Literal["hr", "log", "sd", "ratio", "identity"]


@dataclass(frozen=True)
class Draws:
    """Posterior draws of one named quantity, shape ``(chain, draw)``.

    For a probability, ``values`` holds per-draw indicators (0/1) or per-draw
    conditional probabilities; their mean is the posterior probability.
    """

    name: str
    scale: Scale
    values: np.ndarray
    # False for quantities without finite moments (e.g. a ratio with the slope in the denominator):
    # the summary then reports mean and sd as null and keeps the median and intervals.
    moments: bool = True


class ModelFamily(Protocol):
    family: str

    def build_model(self) -> pm.Model: ...

    def quantities(self, idata: az.InferenceData) -> list[Draws]: ...

    def probabilities(self, idata: az.InferenceData) -> list[Draws]: ...

    def assumptions(self) -> list[str]: ...


def posterior_array(idata, name: str) -> np.ndarray:
    """``idata.posterior[name]`` as a numpy array with (chain, draw) leading."""
    return np.asarray(idata.posterior[name].values)
