# Two commands on a fresh machine: `make run [PORT=8000] [HOST=127.0.0.1]` (jamhost on the
# embedded SQLite store)
# and `make test` (the whole suite, with PostgreSQL, Redis and the reference PVM set up).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
ANAN_AS_DIR ?= .cache/anan-as
BROWSER_DIR ?= .cache/browser
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv venv-test services anan-as browser lint bench clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

run: venv
	$(VENV)/bin/jamhost serve --host $(HOST) --port $(PORT)

services:
	bash scripts/ensure-services.sh

anan-as:
	bash scripts/ensure-anan-as.sh $(ANAN_AS_DIR)

browser:  # Debian's chromium and playwright-core, for the /docs browser test
	bash scripts/ensure-browser.sh $(BROWSER_DIR)

test: venv-test services anan-as browser
	JAMHOST_ANAN_AS_DIR=$(abspath $(ANAN_AS_DIR)) JAMHOST_BROWSER_DIR=$(abspath $(BROWSER_DIR)) \
	  $(VENV)/bin/pytest -n 2 -q --durations=15

lint: venv-test
	$(VENV)/bin/ruff check src tests bench

bench: venv-test services anan-as
	@for b in bench_pvm bench_api bench_tenancy bench_pipeline; do \
	  echo "== bench/$$b.py"; \
	  JAMHOST_ANAN_AS_DIR=$(abspath $(ANAN_AS_DIR)) $(PY) bench/$$b.py || exit 1; \
	done

clean:
	rm -rf $(VENV) .cache .pytest_cache jamhost.db
