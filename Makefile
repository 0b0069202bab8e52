# One task runner for people and CI.
PY ?= python3

.PHONY: install lint typecheck test test-fast check bench

install:
	$(PY) -m pip install -q -e '.[test]'

lint:
	ruff check src tests bench fuzz
	ruff format --check src tests bench fuzz

typecheck:
	mypy

test:
	$(PY) -m pytest -q tests

test-fast:
	$(PY) -m pytest -q -m "not network and not slow" tests

check: lint typecheck test

bench:
	$(PY) bench/resolve.py
	$(PY) bench/scan.py
