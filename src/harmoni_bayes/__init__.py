"""harmoni_bayes: Bayesian evidence synthesis of published oncology hazard ratios.

The public API, in the order data flows (see ARCHITECTURE.md):

* evidence: :func:`load_evidence`, :func:`load_reference_trials`, :func:`read_evidence`, :func:`select_evidence`
* specs and fitting: :func:`load_spec`, :func:`run_spec`
* results and reports: :func:`save_result`, :func:`load_result`, :func:`build_report`, :func:`write_report`
* model families: :func:`families` (the registry; see ARCHITECTURE.md to add one)
"""

from .errors import EvidenceError, ModelError, SpecError

# Everything else is imported on first use: PyMC so that evidence commands start fast, and pandas, PyArrow
# and SciPy (the evidence modules) so that `harmoni-bayes --help` does not wait for them.
_LAZY = {
    "load_evidence": "evidence",
    "load_reference_trials": "evidence",
    "read_evidence": "evidence",
    "Selection": "selection",
    "select_evidence": "selection",
    "Result": "results",
    "load_result": "results",
    "save_result": "results",
    "run_spec": "run",
    "load_spec": "specs",
    "write_report": "reporting",
    "build_report": "reporting",
    "families": "models",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'harmoni_bayes' has no attribute {name!r}")


__version__ = "0.1.0"  # kept equal to pyproject.toml's version (checked by a test)

__all__ = [
    "EvidenceError",
    "ModelError",
    "Result",
    "Selection",
    "SpecError",
    "build_report",
    "families",
    "load_evidence",
    "load_reference_trials",
    "load_result",
    "load_spec",
    "read_evidence",
    "run_spec",
    "save_result",
    "select_evidence",
    "write_report",
]
