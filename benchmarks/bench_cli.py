"""Wall time of the command line answering ``--help`` and a mistyped option (median of 5 fresh processes).

    python benchmarks/bench_cli.py [--repeats 5]

Each case runs ``python -m harmoni_bayes.cli ...`` in a new interpreter, as a user's shell would run
``harmoni-bayes``; an empty interpreter (``python -c pass``) and the import of PyMC are timed alongside
for scale.  Both CLI cases are answered before pandas, PyMC, PyTensor or ArviZ load
(``tests/test_cli_help.py`` checks that; this script only measures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass (interpreter start)": ["-c", "pass"],
    "harmoni-bayes --help": ["-m", "harmoni_bayes.cli", "--help"],
    "harmoni-bayes run --help": ["-m", "harmoni_bayes.cli", "run", "--help"],
    "harmoni-bayes run SPEC --out x --bogus (exit 2)": [
        "-m",
        "harmoni_bayes.cli",
        "run",
        "models/harmoni2_pfs_pdl1.toml",
        "--out",
        "x",
        "--bogus",
    ],
    "python -c 'import pymc' (for scale)": ["-c", "import pymc"],
}


def _seconds(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, check=False)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    print(f"| command | median of {repeats} (s) | min (s) |")
    print("|---|---|---|")
    for label, args in CASES.items():
        _seconds(args)  # warm the file-system cache and the .pyc files
        times = [_seconds(args) for _ in range(repeats)]
        print(f"| `{label}` | {statistics.median(times):.2f} | {min(times):.2f} |")


if __name__ == "__main__":
    main()
