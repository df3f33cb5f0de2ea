# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install the project and the pinned models, then run.
# Dependencies come from requirements.lock (pip-compile --generate-hashes, every file's sha256):
# `make lock` refreshes it after a change to pyproject.toml's dependencies (docs/install.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PIP_TOOLS := pip-tools==7.6.2
LOCK_FLAGS := --generate-hashes --extra=test --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
MODEL_DIR ?= $(CURDIR)/.models
export CONSENTGATE_MODEL_DIR := $(MODEL_DIR)

.PHONY: demo test test-fast test-slow lint install lock lock-upgrade venv models browser bench \
	clean postgres web

venv:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)

# The locked dependencies (runtime and test extra) with their hashes, then the project itself.
$(STAMP): pyproject.toml $(LOCK) | venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve after pyproject.toml's dependencies changed; pins still allowed are kept.
lock: venv
	$(PY) -m pip install --quiet $(PIP_TOOLS)
	$(VENV)/bin/pip-compile --quiet $(LOCK_FLAGS) --output-file=$(LOCK) pyproject.toml

# Every pin to the newest version pyproject.toml allows.
lock-upgrade: venv
	$(PY) -m pip install --quiet $(PIP_TOOLS)
	$(VENV)/bin/pip-compile --quiet --upgrade $(LOCK_FLAGS) --output-file=$(LOCK) pyproject.toml

models: install
	$(PY) -m provisioning install-models --model-dir $(MODEL_DIR)
	$(PY) -m provisioning install-models --model-dir $(MODEL_DIR) --from ../shared/models --only-available

# Debian's chromium for the kiosk browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Browser-side packages from web/package-lock.json (exact versions, integrity hashes checked by
# `npm ci`; no install scripts run): uPlot for central's dashboard, axe-core for the kiosk's
# accessibility tests. Debian's nodejs/npm are installed when missing.
WEB_STAMP := web/node_modules/.installed
$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { \
	  echo "installing Debian's nodejs and npm for the pinned browser packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

web: $(WEB_STAMP)

# Debian's PostgreSQL server for central's tests and bench: they start a throwaway cluster in a
# temporary folder (central/pg_cluster.py: initdb + pg_ctl, unix socket only), no system service.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  echo "installing Debian's postgresql for central's tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

demo: models web
	$(PY) -m edge demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: models browser postgres web lint
	$(PY) -m pytest -q

test-fast: models browser postgres web
	$(PY) -m pytest -q -m "not slow"

test-slow: models browser postgres web
	$(PY) -m pytest -q -m slow

# Every bench but the slow ones, one at a time (results in bench/results/), then the docs'
# generated tables from them (bench/summary.py). Run on a quiet box.
bench: models postgres
	$(PY) bench/record.py
	$(PY) bench/summary.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache web/node_modules
