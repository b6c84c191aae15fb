# Every target sets itself up: a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint layers fmt typecheck pytest demo bench docs emulator clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint layers typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check discobase tests bench
	$(BIN)/ruff format --check discobase tests bench

# The layering of ARCHITECTURE.md: contracts in pyproject.toml's [tool.importlinter].
layers: $(STAMP)
	$(BIN)/lint-imports --no-cache

fmt: $(STAMP)
	$(BIN)/ruff format discobase tests bench
	$(BIN)/ruff check --fix discobase tests bench

typecheck: $(STAMP)
	$(BIN)/mypy discobase

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m discobase demo

emulator: $(STAMP)
	$(BIN)/python -m discobase emulator

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
