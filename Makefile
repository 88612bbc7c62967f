VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install install-dev run test lint format bench clean

$(VENV)/bin/activate:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Installs the serving dependencies and starts the app on the embedded default
# (SQLite + local photo folder + the shipped models).
install: $(VENV)/bin/activate
	$(PIP) install -q -r requirements.txt

run: install
	$(VENV)/bin/flask --app app db upgrade
	$(VENV)/bin/flask --app app run

install-dev: $(VENV)/bin/activate
	$(PIP) install -q -r requirements-dev.txt

test: install-dev
	$(VENV)/bin/python -m pytest

# ruff: lint (with import order) and formatting, configured in pyproject.toml.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev
	$(PY) bench/inference.py --seed-baseline

clean:
	rm -rf $(VENV) .pytest_cache
