# `make run` serves the API on 127.0.0.1:8000; `make test` runs the test suite.
# `make cli ARGS="users create"` and `make psql` reach the database of `make run`
# (or DATABASE_URL's).
PYTHON3 ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run cli psql test bench bench-realtime bench-webhooks bench-contacts bench-register-flood bench-caches bench-tools bench-knowledge-base clean

install: $(INSTALLED)

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# No PostgreSQL server on the machine: use the one bundled in a Python package.
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| $(PY) -m pip install --quiet 'pgserver>=0.1.4,<0.2'
	@touch $@

run: $(INSTALLED)
	$(PY) -m chatconnect.devserver

cli: $(INSTALLED)
	@$(VENV)/bin/chatconnect $(ARGS)

psql: $(INSTALLED)
	@$(VENV)/bin/chatconnect db shell

test: $(INSTALLED)
	$(PY) -m pytest -n auto $(PYTEST_ARGS)

# wrk is a Debian package: installed here when missing and running as root, else bench/run.py
# says how to get it. BENCH_ARGS passes options, e.g. BENCH_ARGS="--clients 1000000".
bench: bench-tools
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/realtime.py
	$(MAKE) bench-webhooks
	$(MAKE) bench-contacts
	$(MAKE) bench-register-flood
	$(PY) bench/knowledge_base.py
	$(MAKE) --no-print-directory bench-caches

bench-realtime: bench-tools
	$(PY) bench/realtime.py $(BENCH_ARGS)

bench-tools: $(INSTALLED)
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || { \
		echo "installing wrk (apt-get install wrk)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }; }

bench-knowledge-base: bench-tools
	$(PY) bench/knowledge_base.py $(BENCH_ARGS)

bench-webhooks: $(INSTALLED)
	$(PY) bench/webhooks.py $(BENCH_WEBHOOKS_ARGS)

# Identify req/s and contact search latency at a million contacts; CONTACTS_BENCH_ARGS passes
# options, e.g. CONTACTS_BENCH_ARGS="--contacts 100000".
bench-contacts: bench-tools
	$(PY) bench/contacts.py $(CONTACTS_BENCH_ARGS)

bench-register-flood: $(INSTALLED)
	$(PY) bench/register_flood.py $(FLOOD_ARGS)

# How long a change takes to reach another worker's caches (the notification latency).
bench-caches: $(INSTALLED)
	$(PY) bench/caches.py

clean:
	rm -rf $(VENV) *.egg-info
