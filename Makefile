# The two commands of the quick start: `make serve` and `make test`; `make fuzz` fuzzes
# the parsers for longer than the suite does (TARGET: one of tests/fuzz/targets, or all).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

TARGET ?= all
SECONDS ?= 60

.PHONY: serve test lint fuzz

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

fuzz: $(BIN)/imagegate
	@targets="$(TARGET)"; \
	if [ "$$targets" = all ]; then \
		targets=$$($(BIN)/python -c 'from tests.fuzz.targets import TARGETS; print(*TARGETS)'); \
	fi; \
	for target in $$targets; do \
		echo "fuzz: $$target for $(SECONDS) s"; \
		$(BIN)/python -m tests.fuzz $$target --seconds $(SECONDS) || exit 1; \
	done
