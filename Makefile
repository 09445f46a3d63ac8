# AlgoMirror — `make run` starts the platform, `make test` runs every test, `make bench` the benchmarks.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A Python >= 3.12: python3.13/python3.12 on PATH (pyenv shims that refuse to run do not count),
# else the newest pyenv-installed 3.13/3.12.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell \
  for p in python3.13 python3.12; do \
    if $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then command -v $$p; exit; fi; \
  done; \
  root=$$(pyenv root 2>/dev/null); \
  for p in $$(ls -d $$root/versions/3.13*/bin/python3 $$root/versions/3.12*/bin/python3 2>/dev/null | sort -rV); do \
    if $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo $$p; exit; fi; \
  done)
endif
VENV := .venv
PG_URL ?= postgres://postgres@127.0.0.1:5432/algomirror
SQLITE_URL ?= sqlite:///$(CURDIR)/var/test-instance/algomirror.sqlite3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help run test bench lint services browser venv clean which-python

which-python:
	@echo $(PYTHON)

help:
	@echo "make run    - install, migrate and start the whole platform with brokersim paper accounts"
	@echo "make test   - install what tests need and run the whole suite"
	@echo "make bench  - run the benchmarks in bench/ (figures go to docs/performance.md)"

$(PY):
	@if [ -z "$(PYTHON)" ]; then echo "No Python >= 3.12 found (tried python3.13, python3.12 and pyenv versions)." >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) requirements.txt requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(STAMP)

# PostgreSQL and Redis: start them when installed but not running (tests use the real servers).
services:
	@if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "starting PostgreSQL"; pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -1) main start || true; \
	fi
	@if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
	  echo "starting Redis"; mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis \
	    --logfile /var/log/redis/ci.log || true; \
	fi

# Debian's Chromium for the Playwright browser tests (Playwright's own browser download is not used).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; browser tests will fail" >&2; \
	fi

# ruff (lint and format), bandit (security; [tool.bandit] in pyproject.toml, each remaining finding
# explained in place with `# nosec <id> # why`), the import contracts of .importlinter
# (docs/architecture.md), migrations.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -c pyproject.toml -r .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) manage.py makemigrations --check --dry-run

# brokersim's suite once (Django-free); the Django suite on PostgreSQL, then on SQLite
# (the whole-stack tests run once: `make run` always uses the embedded SQLite).
test: $(STAMP) services browser lint
	$(PY) -m pytest brokersim
	DATABASE_URL=$(PG_URL) $(PY) -m pytest core openalgo_client accounts marketdata trading strategies algomirror
	DATABASE_URL=$(SQLITE_URL) $(PY) -m pytest core openalgo_client accounts marketdata trading strategies algomirror -m "not stack and not once"

bench: $(STAMP) services
	$(PY) bench/brokersim_bench.py
	$(PY) bench/feed_bench.py
	DATABASE_URL=$(PG_URL) $(PY) bench/feed_failover_bench.py --trials 20
	DATABASE_URL=$(PG_URL) $(PY) bench/orders_faults_bench.py --trials 20
	DATABASE_URL=$(PG_URL) $(PY) -m pytest -q -s -p no:cacheprovider -o python_files='bench_*.py' bench/bench_trading.py

run: $(STAMP)
	@exec $(PY) -m algomirror.launcher

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
