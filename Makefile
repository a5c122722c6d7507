# Two commands do all set-up on a fresh machine (see README):
#   make report   install into .venv, fit every shipped analysis in models/, write reports/
#   make test     install into .venv (with test extras), run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test lint clean

# uv resolves and installs the same versions as pip (same index, same pins) in under half the time on a new
# machine (57 s against 2 min 14 s with empty caches, docs/benchmarks.md); pip only installs uv itself.  The
# bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, nothing would write it later, and every
# process would compile pymc and jax again (imports 26 s instead of 10 s).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[test]"
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/harmoni-bayes run-all models --out out --reports reports

# Static checks first (seconds), then the tests on every core (pytest-xdist); notebooks run top to bottom
# with few draws (nbmake); the slow sampling tests run too.
test: lint
	HARMONI_NOTEBOOK_DRAWS=150 MPLBACKEND=Agg $(BIN)/pytest -n auto --dist loadgroup --nbmake tests notebooks $(PYTEST_ARGS)

# Style, formatting, types and the architecture contracts (pyproject.toml [tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf out reports .pytest_cache
