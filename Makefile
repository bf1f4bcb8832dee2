# make demo   run opskit on the local lab (installs everything it needs)
#             PROFILE=ha: on the HA lab instead (lab/up --profile ha, its opskit config)
# make test   install, start separate test labs (default, then HA), run the whole suite,
#             stop both labs
# make bench  benchmarks (not part of the tests)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The test lab listens on the README's ports + this offset, with its own state.
TEST_OFFSET ?= 10000
TEST_LAB := OPSKIT_LAB_PORT_OFFSET=$(TEST_OFFSET)
# `make demo PROFILE=ha`: the HA lab (lab/ha.py); anything else: the default lab
PROFILE ?= default

.PHONY: install demo test lint bench lab-up lab-down lab-status

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

demo: install
ifeq ($(PROFILE),ha)
	lab/up --profile ha
	eval "$$(python3 lab/lab.py --profile ha env)" && $(BIN)/opskit
else
	lab/up
	GRAFANA_USER=admin GRAFANA_PASSWORD=admin $(BIN)/opskit
endif

lint: install
	$(BIN)/ruff check opskit tasks screens tests lab bench
	$(BIN)/ruff format --check opskit tasks screens tests lab bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Fresh test labs each run: tests rely on the demo data as lab/up makes it. The HA lab
# (tests/ha) runs beside the default one at the same offset, on ports of its own.
test: install
	$(TEST_LAB) lab/down --wipe
	$(TEST_LAB) lab/down --profile ha --wipe
	$(TEST_LAB) lab/up
	$(TEST_LAB) lab/up --profile ha
	$(TEST_LAB) $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	$(TEST_LAB) lab/down; $(TEST_LAB) lab/down --profile ha; exit $$rc

# Benchmarks (docs/performance.md): a bench lab at its own offset, scaled up and back down.
BENCH_OFFSET ?= 5000
bench: install
	OPSKIT_LAB_PORT_OFFSET=$(BENCH_OFFSET) lab/up
	BENCH_OFFSET=$(BENCH_OFFSET) $(BIN)/python -m bench.run $(BENCH_ARGS)

lab-up:
	lab/up
lab-down:
	lab/down
lab-status:
	lab/status
