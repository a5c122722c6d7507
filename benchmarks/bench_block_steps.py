"""Leapfrog steps, divergences, ESS and R-hat of every sampled block of a spec, over one or more seeds.

    PYTHONPATH=src python benchmarks/bench_block_steps.py TARGET_ACCEPT SPEC [SPEC ...] [--seeds N]
    PYTHONPATH=src python benchmarks/bench_block_steps.py 0.95 harmoni2_os_forecast nsclc_surrogacy_classes
    PYTHONPATH=src python benchmarks/bench_block_steps.py spec harmoni2_os_forecast --seeds 6

SPEC is a name in ``models/``.  Each block (e.g. each class-surrogacy relationship) is sampled with the spec's
sampler settings, every block at ``TARGET_ACCEPT`` (the spec's ``block_target_accept`` is ignored), or with ``spec``
at the spec's own ``target_accept`` and ``block_target_accept``.  With ``--seeds N`` each block is sampled N times,
with the spec's seed plus 0 to N - 1.  One line per block and seed gives the mean leapfrog steps per iteration
(draws only), the divergent transitions, the smallest bulk ESS and the largest R-hat over the block's variables, the
wall time (compile included for the first block of each relationship in the process) and the sampling time alone.
This is how the class specs' ``target_accept`` and ``block_target_accept`` were chosen, and how the zero-divergence
gate was checked over seeds (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target_accept", help="a number, or 'spec' for the spec's own settings")
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    import arviz as az

    from harmoni_bayes.inference import sample
    from harmoni_bayes.models import get_family
    from harmoni_bayes.models.base import EvidenceTables
    from harmoni_bayes.specs import load_spec

    for name in args.specs:
        spec = load_spec(ROOT / "models" / f"{name}.toml")
        family, _ = get_family(spec.model).from_spec(spec, EvidenceTables(spec, None))
        for block, model in family.build_models().items():
            if args.target_accept == "spec":
                target_accept = spec.sampler.block_target_accept.get(block, spec.sampler.target_accept)
            else:
                target_accept = float(args.target_accept)
            for offset in range(args.seeds):
                config = spec.sampler.model_copy(
                    update={
                        "target_accept": target_accept,
                        "block_target_accept": {},
                        "seed": spec.sampler.seed + offset,
                    }
                )
                start = time.perf_counter()
                idata = sample(model, config, family.row_padding)
                seconds = time.perf_counter() - start
                stats = idata.sample_stats
                ess = az.ess(idata.posterior).to_array().min().item()
                rhat = az.rhat(idata.posterior).to_array().max().item()
                sampling = idata.posterior.attrs.get("sampling_time", float("nan"))
                print(
                    f"{name:28s} {block or '(one block)':20s} seed+{offset} target_accept={target_accept}"
                    f" steps={float(stats.n_steps.mean()):6.1f} divergences={int(stats.diverging.sum())}"
                    f" min_ess_bulk={ess:6.0f} max_rhat={rhat:.3f} {seconds:5.1f} s (sampling {sampling:.1f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
