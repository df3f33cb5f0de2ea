# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install the project and the pinned models, then run.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_DIR ?= $(CURDIR)/.models
export CONSENTGATE_MODEL_DIR := $(MODEL_DIR)

.PHONY: demo test test-fast test-slow lint install models browser bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

models: install
	$(PY) -m provisioning install-models --model-dir $(MODEL_DIR)
	$(PY) -m provisioning install-models --model-dir $(MODEL_DIR) --from ../shared/models --only-available

# Debian's chromium for the kiosk browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: models
	$(PY) -m edge demo

lint: install
	$(VENV)/bin/ruff check .

test: models browser lint
	$(PY) -m pytest -q

test-fast: models browser
	$(PY) -m pytest -q -m "not slow"

test-slow: models browser
	$(PY) -m pytest -q -m slow

bench: models
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
