# eContract: `make run` serves a complete development instance; `make test` runs everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-fast lint types deps prove-install install install-test system clean bench fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $@

install: $(STAMP)

install-test: $(TEST_STAMP)

## Serve on http://127.0.0.1:8000 with the embedded defaults (SQLite and files under ./var).
run: $(STAMP)
	$(BIN)/econtract serve --host 127.0.0.1 --port 8000

## System packages and services the tests need (installed or started when missing).
system:
	bash scripts/test-system.sh

## Everything: the dependency check, ruff, mypy, the layer rules (lint-imports), tests on
## SQLite and, at the same time, the registry tests again on PostgreSQL.
test: install-test system deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	bash scripts/run-test-passes.sh $(PG_TEST_URL)

## The fast subset, SQLite only.
test-fast: install-test
	bash scripts/run-pytest.sh -m "not slow"

## Every import of the installed package is a runtime dependency and every runtime dependency
## is used ([tool.deptry] in pyproject.toml); the tests', benchmarks' and scripts' imports are
## declared too (runtime or the test extra).
deps: install-test
	$(BIN)/deptry .
	$(BIN)/deptry tests bench scripts fuzz --exclude '\.venv' --exclude 'bench/out' --ignore DEP002,DEP004

## Install the package without the test extra into a throwaway environment and run it:
## every command's --help, then `econtract serve` until /healthz answers (what CI runs first).
prove-install:
	bash scripts/prove-install.sh

## Fuzz the upload path (verify/'s structure check and PDF reader, the worker's memory limit)
## with atheris for FUZZ_RUNS inputs from the seeds in fuzz/corpus; new inputs go to a
## scratch directory, a crashing one to fuzz/crash-*. Every crash becomes a regression test.
FUZZ_RUNS ?= 10000
fuzz: install-test
	mkdir -p var/fuzz-corpus
	$(BIN)/python fuzz/fuzz_upload.py var/fuzz-corpus fuzz/corpus -runs=$(FUZZ_RUNS) \
		-rss_limit_mb=1024 -timeout=30 -artifact_prefix=fuzz/crash-

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install-test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
