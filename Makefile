# Sluis: every target builds .venv with python3 -m venv when missing and installs the project.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CODE   := gateway policies connectors certs

.PHONY: demo test lint pytest mutants mutate bench clean docs-check lowest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,helm]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gateway.demo

lint: $(STAMP)
	$(BIN)/ruff check $(CODE) tests bench
	$(BIN)/ruff format --check $(CODE) tests bench
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# Each guarantee mutant (tests/mutants/mutants.toml) applied to a scratch copy: its tests must fail.
mutants: $(STAMP)
	$(BIN)/python -m tests.mutants

# Broad mutation testing of the security core with mutmut, module by module, one worker (long;
# not part of `make test`): MODULES="gateway/auth policies" for some. See docs/testing.md.
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutate]'
	$(BIN)/python -m tests.mutate $(MODULES)

# docs/first-hour.md, run as written against a fresh home and a loopback gateway. `pytest`
# runs it too (tests/docs); this target runs only the guide.
docs-check: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/docs

test: lint mutants pytest

# The lowest allowed dependency versions (pyproject.toml's lower bounds) in a scratch venv,
# running the fast tests (all but PostgreSQL's): the bounds are known to work. Deprecation
# warnings are not errors here: old typer with a new click warns, and that is not a failure.
LOWEST := /tmp/sluis-lowest
lowest: $(STAMP)
	rm -rf $(LOWEST) && $(PYTHON) -m venv $(LOWEST)
	$(BIN)/python -m tests.lowest_deps dev > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[dev]'
	$(LOWEST)/bin/pytest -q -x -p no:cacheprovider -m 'not postgres' -W ignore::DeprecationWarning \
		tests/gateway tests/policies

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .sluis .mypy_cache .ruff_cache .pytest_cache
