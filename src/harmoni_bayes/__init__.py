"""harmoni_bayes: Bayesian evidence synthesis of published oncology hazard ratios."""

from .errors import EvidenceError, ModelError, SpecError
from .evidence import load_evidence, load_reference_trials, read_evidence

__version__ = "0.1.0"

__all__ = [
    "EvidenceError",
    "ModelError",
    "SpecError",
    "load_evidence",
    "load_reference_trials",
    "read_evidence",
]
