# Two commands set everything up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest bench bench-stages soak clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), \
	  "restless-cds needs Python 3.11 or 3.12 (durable-rules does not import on 3.13)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/restless-cds serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/pytest -q

test: lint typecheck pytest

# the user's figure: real HTTP, wrk (Debian's package, installed here if missing), server
# CPU from /proc, the floor app in the same run; ~2 minutes
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.http

# where the time goes inside one call, stage by stage, in process (not the user's figure)
bench-stages: $(VENV)/.installed-test
	$(BIN)/python -m bench.latency

# a soak of SOAK_REQUESTS calls (default 100,000) against a real server with retention on;
# not part of `make test`
SOAK_REQUESTS ?= 100000
soak: $(VENV)/.installed-test
	$(BIN)/python -m bench.soak --requests $(SOAK_REQUESTS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
