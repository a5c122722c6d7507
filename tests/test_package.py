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
