# Sluis: every target builds .venv with python3 -m venv when missing and installs the project.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CODE   := gateway policies connectors certs

.PHONY: demo test lint pytest mutants mutate bench clean docs-check lowest image image-test

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
	$(BIN)/hadolint Containerfile

# The suite runs in JOBS pytest-xdist workers (2 by default: the CI machine's cores; each
# test makes its own databases, ports and files, so they do not meet).
JOBS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -n $(JOBS)

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
# running the fast tests (all but the `postgres`-marked ones) in JOBS workers: the bounds are
# known to work. Deprecation warnings are not errors here: old typer with a new click warns,
# and that is not a failure. `make lowest LOWEST=/tmp/elsewhere` for another venv; the whole
# suite: `make lowest LOWEST_EXTRAS=dev,helm LOWEST_TESTS=tests LOWEST_MARKS=` (long).
LOWEST ?= /tmp/sluis-lowest
LOWEST_EXTRAS ?= dev
LOWEST_TESTS ?= tests/gateway tests/policies tests/connectors tests/certs tests/audit
LOWEST_MARKS ?= not postgres
comma := ,
lowest: $(STAMP)
	rm -rf $(LOWEST) && $(PYTHON) -m venv $(LOWEST)
	$(BIN)/python -m tests.lowest_deps $(subst $(comma), ,$(LOWEST_EXTRAS)) > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[$(LOWEST_EXTRAS)]'
	$(LOWEST)/bin/pytest -q -x -n $(JOBS) -p no:cacheprovider -m '$(LOWEST_MARKS)' \
		-W ignore::DeprecationWarning $(LOWEST_TESTS)

# The container image (Containerfile), built with buildah from a Debian root made by mmdebstrap;
# no container registry needed. Needs root, buildah and mmdebstrap. Cached by content hash: an
# unchanged tree reuses the image (tests/image/build.py; docs/deployment.md#the-image).
image: $(STAMP)
	$(BIN)/python -m tests.image.build

# The image run as a pod runs it (UID 10001, read-only root, keys mounted 0440): version, help,
# `sluis serve` answering its health port and TLS, and the whole demo. Apart from `make test`:
# a cold build takes minutes. .ci/run calls it.
image-test: $(STAMP)
	SLUIS_IMAGE_TEST=1 $(BIN)/pytest -q -p no:cacheprovider tests/image

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .sluis .mypy_cache .ruff_cache .pytest_cache
