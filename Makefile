# mlcc: common tasks. `make setup` once on a fresh machine, then `make test`.
# On a Debian system Python, `make setup` installs mlcc into .venv
# (scripts/setup.sh); putting it first on PATH is harmless when it is absent.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
PYTHON ?= python3

.PHONY: setup test test-fast demo quickstart

setup:
	bash scripts/setup.sh

# The README's test command: installs what the tests need, then runs them all.
test: setup
	$(PYTHON) -m pytest -q -n 2 --durations=15 tests

# Unit tests and driver comparisons only (no real-project builds).
test-fast:
	$(PYTHON) -m pytest -q -n 2 -m "not projects" tests

# Compile an example with mlcc and clang at -Oz and print both sizes.
demo:
	$(PYTHON) scripts/demo.py

# One command on a fresh Debian/Ubuntu machine: install everything, compile an example.
quickstart:
	bash scripts/setup.sh --demo
