"""Sampling, with sampler settings kept apart from model settings.

Seeds are integers and are recorded in every result.  The same model, settings and seed give the
same draws with either backend (PyMC seeds each chain from the integer; nutpie likewise).
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import pymc as pm
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SEED = 20240908  # the HARMONi-2 WCLC readout date; any integer works


class SamplerConfig(BaseModel):
    """NUTS settings.  ``backend = "nutpie"`` compiles with numba and is usually faster per ESS."""

    model_config = ConfigDict(extra="forbid")
    draws: int = Field(1000, ge=10)
    tune: int = Field(1000, ge=10)
    chains: int = Field(4, ge=1, le=16)
    seed: int = Field(DEFAULT_SEED, ge=0)
    backend: Literal["pymc", "nutpie"] = "pymc"
    target_accept: float = Field(0.95, gt=0.5, lt=1.0)
    cores: int | None = Field(None, ge=1)


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
