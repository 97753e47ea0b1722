# Sluis: every target builds .venv with python3 -m venv when missing and installs the project.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CODE   := gateway policies connectors certs

.PHONY: demo test lint pytest mutants bench clean

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

test: lint mutants pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .sluis .mypy_cache .ruff_cache .pytest_cache
