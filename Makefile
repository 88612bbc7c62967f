VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install install-dev run test fuzz soak lint format bench clean

$(VENV)/bin/activate:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Installs the serving dependencies and starts the app on the embedded default
# (SQLite + local photo folder + the shipped models), at http://$(HOST):$(PORT): `make run PORT=8080`.
HOST ?= 127.0.0.1
PORT ?= 5000

install: $(VENV)/bin/activate
	$(PIP) install -q -r requirements.txt

run: install
	$(VENV)/bin/flask --app app db upgrade
	$(VENV)/bin/flask --app app run --host $(HOST) --port $(PORT)

install-dev: $(VENV)/bin/activate
	$(PIP) install -q -r requirements-dev.txt

# The suite runs in one worker process per core, at most 4 (pytest-xdist), a test file's tests in one worker:
# much of it waits on browsers, brokers and servers rather than computing. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= auto
test: install-dev
	$(VENV)/bin/python -m pytest --numprocesses $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

# Schemathesis against our OpenAPI document with a larger example budget per operation than `make test` uses
# (FUZZ_EXAMPLES, default 200), on SQLite and PostgreSQL: no 500s, every answer as documented.
FUZZ_EXAMPLES ?= 200
fuzz: install-dev
	MEDSIGHT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/python -m pytest tests/resources/test_fuzz.py -p no:cacheprovider

# Mixed traffic against gunicorn on loopback for SOAK_SECONDS (default 600): errors, p95, worker memory.
SOAK_SECONDS ?= 600
soak: install-dev
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS)

# ruff: lint (with import order) and formatting, configured in pyproject.toml.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Serving throughput beside the original apps' pattern (needs wrk, PostgreSQL; see README), where the slowest
# uploads spend their time (bench/upload_tail.py: phase by phase, two processes side by side), then
# inference latency per model, the history list at 1M rows on PostgreSQL, batch jobs on Celery workers
# beside single uploads (needs RabbitMQ; bench/jobs.py --images N), and the history page: server render
# time, page weight, and its load in Chromium at phone and desktop width (bench/pages.py; without Chromium
# that part is skipped).
bench: install-dev
	$(PY) bench/serving.py
	$(PY) bench/upload_tail.py
	$(PY) bench/inference.py --seed-baseline
	$(PY) bench/history.py
	$(PY) bench/jobs.py
	$(PY) bench/pages.py

clean:
	rm -rf $(VENV) .pytest_cache
