# The two commands of the README, and a few more for developers.
#   make demo   install, then run the hub on the embedded default with the demo loaded
#   make test   install, then run the whole test suite against PostgreSQL and Redis

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The test suite's services; override with the environment.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/aanspraak
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# The browser test (tests/browser) drives the system's Chromium, Debian's package `chromium`;
# `make test` installs it where it is missing (as root, or through sudo). Playwright never
# downloads a browser of its own.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || command -v sudo)

.PHONY: install chromium demo test lint format lock bench

$(BIN)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

install: $(BIN)/.installed

chromium:
	@command -v chromium >/dev/null || \
		{ $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

demo: install
	$(BIN)/python manage.py demo

test: install chromium
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	$(BIN)/pytest

# The benchmark of docs/performance.md: needs wrk (apt-get install wrk), PostgreSQL and Redis;
# creates and drops a database of its own. BENCH_ARGS='--quick' or '--only P1,P2' to narrow.
bench: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf /tmp/aanspraak-lock && $(PYTHON) -m venv /tmp/aanspraak-lock
	/tmp/aanspraak-lock/bin/pip install --quiet '.[dev]'
	/tmp/aanspraak-lock/bin/pip freeze --exclude-editable | grep -v '^aanspraakmanager' > requirements.lock
