# omsign: two commands on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
REFVENV := .venv-ms
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REFSTAMP := $(REFVENV)/.installed
DEMOVENV := .venv-demo
DEMOSTAMP := $(DEMOVENV)/.installed
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
	npm install --prefix .cache/npm --no-audit --no-fund --silent azurite@3 || echo "azurite (npm) not installed: the Azure object-storage tests skip"
	mkdir -p .cache && touch $@

# The demo needs omsign and its runtime dependencies only: its own environment, without the
# development tools of .venv (make test still installs everything there).
$(DEMOSTAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMOVENV)
	$(DEMOVENV)/bin/pip install -q --upgrade pip
	$(DEMOVENV)/bin/pip install -q -e .
	touch $@

demo: $(DEMOSTAMP)
	OMSIGN_VENV=$(DEMOVENV) bash scripts/demo.sh

lint: env
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: env
	$(BIN)/mypy

# Branch coverage, CLI subprocesses included (pyproject [tool.coverage]). The floor for the
# whole package is fail_under in pyproject.toml (90%; measured 93.0% when it was set); the
# security-critical modules get their own report and floor below (92%; measured 95.3%).
COVERAGE_CRITICAL := */omsign/bundle.py,*/omsign/_bundle_fields.py,*/omsign/dsse.py,\
	*/omsign/statement.py,*/omsign/intoto.py,*/omsign/predicates/*,*/omsign/manifest.py,\
	*/omsign/policy/*,*/omsign/backends/_certificate.py,*/omsign/backends/_chain.py,\
	*/omsign/backends/_stamps.py,*/omsign/_timestamp.py,*/omsign/backends/_timestamp.py,*/omsign/hashing/_walk.py,\
	*/omsign/hashing/_plan.py,*/omsign/hashing/_executor.py,\
	*/omsign/hashing/_io.py
COVERAGE_CRITICAL_FLOOR := 92
nothing :=
space := $(nothing) $(nothing)

pytest: env reference system
	$(BIN)/pytest -q -n 2 --cov=omsign --cov-branch --cov-report=term
	@echo "Security-critical modules (floor $(COVERAGE_CRITICAL_FLOOR)%):"
	$(BIN)/coverage report --include='$(subst $(space),,$(COVERAGE_CRITICAL))' --no-skip-covered \
		--fail-under=$(COVERAGE_CRITICAL_FLOOR)

test: lint typecheck pytest

fuzz: env
	OMSIGN_SLOW=1 $(BIN)/pytest -q -n 2 tests/fuzz

bench: env reference system
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/loading.py
	$(BIN)/python benchmarks/clusters.py --size 4G --shard 1G --repeat 5
	$(BIN)/python benchmarks/clusters.py --size 64M --shard 1M --repeat 5
	$(BIN)/python benchmarks/registry.py
	$(BIN)/python benchmarks/s3read.py

clean:
	rm -rf $(VENV) $(REFVENV) $(DEMOVENV) .cache .demo .bench .coverage .coverage.*
