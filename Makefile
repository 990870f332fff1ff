# One command each, on a fresh machine: `make demo` runs the demo, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install browser test demo bench loadtest lint matrix typecheck check-newcomer

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

# The wheel in a new virtualenv and a new `startproject`, set up by following README.md (its blocks,
# read as tests/project/test_readme.py reads them), answering real requests against the stand-in.
check-newcomer: install
	$(PY) scripts/check-newcomer

# gunicorn + PostgreSQL + Redis on this machine; DATABASE_URL / CACHE_URL override the defaults.
loadtest: install
	$(PY) bench/loadtest.py $(LOADTEST_ARGS)

# mypy --strict on the package, on tests/typing_usage (user code pinning the typing contract) and
# on scripts/check-newcomer.
typecheck: install
	$(VENV)/bin/pip install -q -e '.[typecheck]'
	$(VENV)/bin/mypy

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The version matrix (noxfile.py): Python 3.11-3.13 by Django 5.2 LTS / newest 6.x. Interpreters
# come from PATH, plus pyenv's when present.
PYENV_BINS := $(wildcard $(HOME)/.pyenv/versions/3.11*/bin $(HOME)/.pyenv/versions/3.12*/bin $(HOME)/.pyenv/versions/3.13*/bin)
empty :=
space := $(empty) $(empty)
matrix: install
	PATH="$(subst $(space),:,$(PYENV_BINS)):$$PATH" $(VENV)/bin/nox $(NOX_ARGS)
