# embodied-ai: `make demo` (set up, build a demo registry, open the app) and `make test` (set up, run the tests).
# `make test-pg`: only the tests that talk to PostgreSQL (each pytest worker starts and deletes its own throwaway
# cluster, tests/pg_server.py; missing server binaries fail here instead of skipping).
# Setup is done once: a stamp in the venv remembers it (redone when pyproject.toml changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.embodied-ai-setup
DEMO_DB ?= .demo/registry.json
PYTEST_ARGS ?= -n 2 tests/

.PHONY: setup demo demo-db test test-pg lint bench clean

setup: $(STAMP)

# torch first and exactly: the CPU wheel is what these machines provide; a looser request would let pip pull a
# multi-GB CUDA build. The package's own range (torch>=2.4) is then already satisfied.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# byte-compile the package as a wheel install would: an editable install leaves that to the first import, which
	# never happens where PYTHONDONTWRITEBYTECODE is set (every command then compiles ~0.2 s of modules again)
	$(BIN)/python -m compileall -q embodied_tui
	touch $(STAMP)

demo-db: $(STAMP)
	$(BIN)/embodied-ai --db $(DEMO_DB) demo

demo: demo-db
	$(BIN)/embodied-ai --db $(DEMO_DB)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-pg: $(STAMP)
	EMBODIED_AI_REQUIRE_PG=1 $(BIN)/python -m pytest -m postgresql $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check embodied_tui tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/registry.py

clean:
	rm -rf .demo .pytest_cache
