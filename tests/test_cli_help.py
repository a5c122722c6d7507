"""``--help`` of every command: an Examples section whose commands parse, no type tags, and no heavy imports.

The import check runs the real command line in a subprocess with ``-X importtime`` and reads which modules
were imported: ``--help`` and a mistyped option must be answered before pandas, PyMC, PyTensor or ArviZ load.
Speed itself is measured in ``benchmarks/bench_cli.py``, never asserted here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harmoni_bayes.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
ROOT = typer.main.get_command(app)


def _paths(group, prefix=()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in getattr(group, "commands", {}).items():
        out += _paths(cmd, (*prefix, name)) if hasattr(cmd, "commands") else [(*prefix, name)]
    return out


COMMANDS = _paths(ROOT)
TYPE_TAG = re.compile(r"<(path|str|int|bool|float|text)>|\b(TEXT|INTEGER|PATH|BOOLEAN|FLOAT)\b")


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def _parse(line: str) -> None:
    """Parse a shell line ``harmoni-bayes ... [> file]`` with its command's parser, without running it."""
    args = shlex.split(line.split(">")[0])[1:]
    cmd, rest, names = ROOT, args, ["harmoni-bayes"]
    while hasattr(cmd, "commands"):
        cmd, rest, names = cmd.commands[rest[0]], rest[1:], [*names, rest[0]]
    with cmd.make_context(" ".join(names), list(rest)) as ctx:
        assert ctx.params, line


def _examples(text: str) -> list[str]:
    """The command lines of the help's Examples section."""
    _, found, section = text.partition("Examples:\n")
    assert found, f"no Examples section in:\n{text}"
    return [line.strip() for line in section.splitlines() if line.strip()]


def test_every_command_is_covered():
    assert {"run", "report", "compare", "timeline", "evidence"} <= {p[0] for p in COMMANDS if p}
    assert ("evidence", "template") in COMMANDS and ("evidence", "add") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "harmoni-bayes")
def test_help_has_examples_and_no_type_tags(path):
    text = _help(path)
    assert not TYPE_TAG.search(text), TYPE_TAG.search(text)
    examples = _examples(text)
    assert examples and all(e.startswith("harmoni-bayes") for e in examples), examples
    assert all(len(e) <= 76 for e in examples), [e for e in examples if len(e) > 76]  # no wrapping at 80 columns
    if len(path) == 2 or (len(path) == 1 and path[0] != "evidence"):
        assert any(e.startswith("harmoni-bayes " + " ".join(path)) for e in examples), examples


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "harmoni-bayes")
def test_every_example_parses(path):
    """Each example is parsed by its command (options, values and their types), without running it."""
    for line in _examples(_help(path)):
        if "COMMAND" not in line:
            _parse(line)


def _imported(*args: str) -> tuple[int, set[str]]:
    """Exit code and the top-level modules imported by ``harmoni-bayes ARGS`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "harmoni_bayes.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "typer" in modules, proc.stderr[-2000:]  # the importtime output was read
    assert "Traceback" not in proc.stderr
    return proc.returncode, modules


HEAVY = {"pymc", "pytensor", "arviz", "nutpie", "pandas", "scipy", "matplotlib"}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--help",), 0),
        (("run", "--help"), 0),
        (("evidence", "add", "--help"), 0),
        (("run", "models/harmoni2_pfs_pdl1.toml", "--out", "x", "--bogus"), 2),
        (("run", "models/harmoni2_pfs_pdl1.toml", "--out", "x", "--draws", "many"), 2),
        (("evidence", "validate"), 2),
    ],
)
def test_help_and_a_wrong_option_import_no_heavy_library(args, code):
    returncode, modules = _imported(*args)
    assert returncode == code
    assert not modules & HEAVY, sorted(modules & HEAVY)


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("harmoni-bayes ") and "[" not in line]


def test_the_readme_commands_parse():
    """The README's commands (the 'final analysis' recipe included) use options the commands have."""
    commands = _readme_commands()
    assert any(c.startswith("harmoni-bayes compare ") and "--evidence" in c for c in commands)
    for line in commands:
        _parse(line)
