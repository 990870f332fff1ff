# One command each, on a fresh machine: `make demo` runs the demo, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install browser test demo bench loadtest lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

browser:
	scripts/install-browser

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) bench/verify.py
	$(PY) bench/exchange.py
	$(PY) bench/async_verify.py

# gunicorn + PostgreSQL + Redis on this machine; DATABASE_URL / CACHE_URL override the defaults.
loadtest: install
	$(PY) bench/loadtest.py $(LOADTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
