# The two commands: `make run` serves everything, `make test` runs the tests.
# Both create and use the local virtual environment .venv themselves. `make test-postgres` runs the
# tests again on a throwaway PostgreSQL server (needs its binaries: apt-get install postgresql).
# `make opencode` installs the pinned opencode (tests/opencode/package.json, ~420 MB, needs npm) into
# .opencode-ci/, for the real-opencode test (tests/test_real_opencode.py), which skips without it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-postgres bench lint opencode clean

run: $(VENV)/.installed-run
	$(BIN)/python -m deploy.run

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m deploy.jobs --check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-postgres
	tests/with_postgres.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

# Every benchmark prints its figures with their targets and "met" / "NOT met", and appends those lines to
# BENCH_SUMMARY; bench/summary.py prints them together at the end (docs/benchmarks.md).
bench: export BENCH_SUMMARY = $(CURDIR)/.bench-summary
bench: $(VENV)/.installed-run
	rm -f $(BENCH_SUMMARY)
	-$(BIN)/python bench/ingest.py
	-$(BIN)/python bench/stream.py --clients 1
	-$(BIN)/python bench/stream.py --clients 500 --events 400 --rate 20
	-$(BIN)/python bench/hook.py
	-$(BIN)/python bench/capacity.py
	-$(BIN)/python bench/linear_sync.py
	-$(BIN)/python bench/memory.py
	-$(BIN)/python bench/search.py
	$(BIN)/python bench/summary.py $(BENCH_SUMMARY)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

opencode: .opencode-ci/.installed

.opencode-ci/.installed: tests/opencode/package.json
	mkdir -p .opencode-ci
	cp tests/opencode/package.json .opencode-ci/package.json
	cd .opencode-ci && npm install --no-audit --no-fund --loglevel=error
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-postgres: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
