# clinicflow: `make run` starts the whole stack with the demo chain; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install browser run demo lint test test-fast schemas clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# the dashboard's browser test drives Debian's headless Chromium
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(BIN)/clinicflow up

demo: install
	$(BIN)/clinicflow demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services

test: lint browser
	$(BIN)/pytest -q --durations=25

test-fast: install
	$(BIN)/pytest -q tests/unit

schemas: install
	$(BIN)/clinicflow schemas --out schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
