"""Sampling, with sampler settings kept apart from model settings.

Seeds are integers and are recorded in every result.  The same model, settings and seed give the
same draws with either backend (PyMC seeds each chain from the integer; nutpie likewise).
"""

from __future__ import annotations

import logging
import os

import pymc as pm

from .config import SamplerConfig

def sample(model: pm.Model, config: SamplerConfig):
    """Run NUTS on ``model`` and return InferenceData (posterior and sample_stats)."""
    cores = config.cores or min(config.chains, os.cpu_count() or 1)
    # PyMC logs its own convergence advice; our diagnostics gate is the single source of truth.
    logging.getLogger("pymc").setLevel(logging.ERROR)
    with model:
        return pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=cores,
            random_seed=config.seed,
            target_accept=config.target_accept,
            nuts_sampler=config.backend,
            progressbar=False,
            compute_convergence_checks=False,
        )
