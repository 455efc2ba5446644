# The two commands of the quick start: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint

$(BIN)/imagegate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/imagegate
	$(BIN)/imagegate serve

lint: $(BIN)/imagegate
	$(BIN)/ruff check imagegate tests
	$(BIN)/ruff format --check imagegate tests
	$(BIN)/mypy

test:
	scripts/install-system-deps
	$(MAKE) $(BIN)/imagegate
	$(MAKE) lint
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)
