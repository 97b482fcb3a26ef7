# clinicflow: `make run` starts the whole stack with the demo chain; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# requirements/*.lock pin every package with its hashes (uv pip compile, `make lock`):
#   image.lock  what deploy/Dockerfile installs: the dependencies, for Python 3.11 on linux/amd64
#   build.lock  the build backend the Dockerfile builds the project's wheel with
#   dev.lock    what this virtualenv (and so CI) installs: the dependencies and the dev
#               and local extras, for any platform, on the image's versions
LOCKS := requirements/image.lock requirements/build.lock requirements/dev.lock

.PHONY: install browser run demo lint test test-fast schemas lock clean

$(BIN)/.installed: pyproject.toml $(LOCKS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed

# Re-resolves the locks from pyproject.toml, keeping every pin that still fits;
# `make lock LOCK_FLAGS=--upgrade` moves everything to the newest releases.
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --custom-compile-command "make lock"
IMAGE_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_17 --only-binary :all:
lock: install
	$(UV_COMPILE) $(LOCK_FLAGS) $(IMAGE_TARGET) pyproject.toml -o requirements/image.lock
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(UV_COMPILE) $(LOCK_FLAGS) $(IMAGE_TARGET) - -o requirements/build.lock
	$(UV_COMPILE) $(LOCK_FLAGS) --universal --python-version 3.11 --extra dev --extra local \
	  -c requirements/image.lock pyproject.toml -o requirements/dev.lock

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
