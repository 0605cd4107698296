# omsign: two commands on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
REFVENV := .venv-ms
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REFSTAMP := $(REFVENV)/.installed
SYSSTAMP := .cache/system-packages

.PHONY: env demo test check lint typecheck pytest bench fuzz clean reference system

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The reference implementation, in its own environment, for interop tests and benchmarks.
reference: $(REFSTAMP)

$(REFSTAMP):
	$(PYTHON) -m venv $(REFVENV)
	$(REFVENV)/bin/pip install -q model-signing==1.1.1 pyopenssl
	touch $@

# Debian packages the tests use for real: SoftHSM2 and OpenSC (PKCS#11), b3sum (benchmarks).
system: $(SYSSTAMP)

$(SYSSTAMP): scripts/setup-system.sh
	bash scripts/setup-system.sh
	mkdir -p .cache && touch $@

demo: env
	bash scripts/demo.sh

lint: env
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: env
	$(BIN)/mypy

pytest: env reference system
	$(BIN)/pytest -q -n 2

test: lint typecheck pytest

fuzz: env
	OMSIGN_SLOW=1 $(BIN)/pytest -q -n 2 tests/fuzz

bench: env reference system
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(REFVENV) .cache .demo .bench
