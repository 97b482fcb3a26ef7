# clinicflow: `make run` starts the whole stack with the demo chain; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install run demo lint test test-fast schemas clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/clinicflow up

demo: install
	$(BIN)/clinicflow demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services

test: lint
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q tests/unit

schemas: install
	$(BIN)/clinicflow schemas --out schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
