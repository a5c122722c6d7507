# Two commands do all set-up on a fresh machine (see README):
#   make report   install into .venv, fit every shipped analysis in models/, write reports/
#   make test     install into .venv (with test extras), run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/harmoni-bayes run-all models --out out --reports reports

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf out reports .pytest_cache
