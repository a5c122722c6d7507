"""Package-level facts: the version, and what the exact path imports."""

import subprocess
import sys
import tomllib
from pathlib import Path

import harmoni_bayes

REPO = Path(__file__).resolve().parents[1]


def test_version_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert harmoni_bayes.__version__ == project["version"]


def test_the_exact_path_never_imports_pymc(tmp_path):
    """An exact fit, saved and reported, without loading PyMC or PyTensor (their import costs seconds)."""
    code = (
        "import sys\n"
        "from harmoni_bayes.run import run_spec\n"
        "from harmoni_bayes.results import save_result\n"
        "from harmoni_bayes.reporting import write_report\n"
        f"d = save_result(run_spec({str(REPO / 'models' / 'harmoni2_pfs_pdl1.toml')!r}, method='exact'), "
        f"{str(tmp_path / 'r')!r})\n"
        "write_report(d, fmt='all')\n"
        "print(sorted(m for m in ('pymc', 'pytensor', 'nutpie') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


HEAVY = (
    "pymc",
    "pytensor",
    "arviz",
    "matplotlib",
    "nutpie",
    "numba",
    "scipy.stats",
    "scipy.optimize",
    "xarray",
    "dask",
)


def test_an_exact_run_never_imports_pymc_pytensor_or_arviz(tmp_path):
    """`harmoni-bayes run` of a spec whose family defaults to the exact engine: fitted, saved as posterior.nc in
    ArviZ's layout, and no PyMC, PyTensor, ArviZ, matplotlib or numba in the process (issue 14: their imports
    cost seconds), nor scipy.stats, xarray or the Dask xarray imports (most of a second each), nor scipy.optimize
    (a tenth of a second; only the probability-of-success designs need it).  The saved result
    loads back, through ArviZ, with the same draws.
    """
    spec = REPO / "models" / "harmoni2_pfs_pdl1.toml"
    code = (
        "import sys\n"
        "from harmoni_bayes.cli import app\n"
        f"app(['run', {str(spec)!r}, '--out', {str(tmp_path / 'r')!r}], prog_name='harmoni-bayes', "
        "standalone_mode=False)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    assert "(exact; ok)" in out.stdout

    from harmoni_bayes.results import load_result

    back = load_result(tmp_path / "r")
    assert back.summary.method == "exact"
    assert back.idata.groups() == ["posterior", "prior"]
    assert back.idata.posterior["hr"].dims == ("chain", "draw", "subgroup")
    assert back.idata.posterior["hr"].shape == (1, 4000, 2)
    assert list(back.idata.prior["hr"].coords["subgroup"].values) == list(back.idata.posterior["hr"].subgroup.values)
