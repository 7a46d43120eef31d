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

.PHONY: run test venv venv-test services anan-as browser lint bench clean test-native-asan

# The native PVM core built with AddressSanitizer and UndefinedBehaviorSanitizer into a copy
# of src/, and the PVM suite run on it (libasan preloaded: python itself is not built with it).
ASAN_DIR := .cache/asan
NATIVE_SRC := src/jamhost/pvm/_native.c
NATIVE_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -fno-strict-aliasing -O1 -g \
  -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
PVM_SUITE := tests/vectors/test_pvm_vectors.py tests/vectors/test_accumulate_service_load.py \
  tests/vectors/test_stf_accumulate.py tests/differential/test_pvm_engines.py \
  tests/unit/test_pvm_native.py tests/unit/test_pvm_host.py tests/unit/test_pvm_standard.py \
  tests/unit/test_fast_host.py tests/unit/test_inner_machines.py

$(VENV)/.installed: pyproject.toml setup.py src/jamhost/pvm/_native.c src/jamhost/pvm/_fasthost.h
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

# --dist worksteal: an idle worker takes tests queued on the other, so the slow integration
# tests left at the end do not run on one core while the other waits (23 min against 11).
test: venv-test services anan-as browser test-native-asan
	JAMHOST_ANAN_AS_DIR=$(abspath $(ANAN_AS_DIR)) JAMHOST_BROWSER_DIR=$(abspath $(BROWSER_DIR)) \
	  $(VENV)/bin/pytest -n 2 --dist worksteal -q --durations=15

test-native-asan: venv-test
	rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR)
	cp -r src $(ASAN_DIR)/src && rm -f $(ASAN_DIR)/src/jamhost/pvm/_native*.so
	gcc -shared -fPIC $(NATIVE_CFLAGS) \
	  -I"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
	  $(NATIVE_SRC) -o "$(ASAN_DIR)/src/jamhost/pvm/_native$$($(PY) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
	cd $(ASAN_DIR) && ln -s ../../tests tests && ln -s ../../pyproject.toml pyproject.toml
	cd $(ASAN_DIR) && LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  PYTHONPATH=src ../../$(PY) -c 'import jamhost.pvm._native as n; assert "$(ASAN_DIR)" in n.__file__, n.__file__' && \
	  LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=32 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 JAMHOST_PVM_EXAMPLES=80 \
	  PYTHONPATH=src ../../$(VENV)/bin/pytest -q -p no:cacheprovider -m "not node" $(PVM_SUITE)

lint: venv-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src/jamhost

bench: venv-test services anan-as
	@for b in bench_pvm bench_api bench_tenancy bench_pipeline; do \
	  echo "== bench/$$b.py"; \
	  JAMHOST_ANAN_AS_DIR=$(abspath $(ANAN_AS_DIR)) $(PY) bench/$$b.py || exit 1; \
	done

clean:
	rm -rf $(VENV) .cache .pytest_cache jamhost.db
