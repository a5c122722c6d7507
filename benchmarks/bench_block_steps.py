"""Leapfrog steps, divergences, ESS and R-hat of every sampled block of a spec at a given ``target_accept``.

    PYTHONPATH=src python benchmarks/bench_block_steps.py TARGET_ACCEPT SPEC [SPEC ...]
    PYTHONPATH=src python benchmarks/bench_block_steps.py 0.95 harmoni2_os_forecast nsclc_surrogacy_classes

SPEC is a name in ``models/``.  Each block (e.g. each class-surrogacy relationship) is sampled with the spec's
sampler settings, every block at ``TARGET_ACCEPT`` (the spec's ``block_target_accept`` is ignored), and one line
per block gives the mean leapfrog steps per iteration (draws only), the divergent transitions, the smallest bulk ESS
and the largest R-hat over the block's variables, and the wall time (compile included for the first block of each
relationship in the process).  This is how the class specs' ``target_accept`` and ``block_target_accept`` were
chosen (docs/benchmarks.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    import arviz as az

    from harmoni_bayes.inference import sample
    from harmoni_bayes.models import get_family
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.specs import load_spec

    target_accept = float(sys.argv[1])
    for name in sys.argv[2:]:
        spec = load_spec(ROOT / "models" / f"{name}.toml")
        config = spec.sampler.model_copy(update={"target_accept": target_accept, "block_target_accept": {}})
        family, _ = get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))
        for block, model in family.build_models().items():
            start = time.perf_counter()
            idata = sample(model, config, family.row_padding)
            seconds = time.perf_counter() - start
            stats = idata.sample_stats
            ess = az.ess(idata.posterior).to_array().min().item()
            rhat = az.rhat(idata.posterior).to_array().max().item()
            print(
                f"{name:28s} {block or '(one block)':20s} target_accept={target_accept}"
                f" steps={float(stats.n_steps.mean()):6.1f} divergences={int(stats.diverging.sum())}"
                f" min_ess_bulk={ess:6.0f} max_rhat={rhat:.3f} {seconds:5.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
