# make demo  - set everything up and run the product on the embedded default (Ctrl-C stops it)
# make test  - set up, then lint, type-check and run the tests, then the fault suite
# make faults - the fault suite alone (tests/faults: its own PostgreSQL and Redis; root, for tmpfs)
# make bench - run the benchmarks (figures to bench/results/)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1

.PHONY: install demo test lint typecheck pytest faults bench clean

install: $(STAMP)

# torch first, pinned to the CPU wheel on disk, so nothing pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(PY) manage.py demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy labeling active_learning workbench

# With DATABASE_URL on PostgreSQL, the queue and submit services (hand-written SQL with a SQLite
# dialect for the embedded default) and the broker-namespace test run a second time on SQLite,
# with the embedded broker: the tests that need PostgreSQL or Redis are deselected there.
SQLITE_TESTS := tests/labeling/services tests/labeling/test_views_queue.py \
	tests/labeling/test_selectors_queue.py tests/test_broker_namespace.py

pytest: $(STAMP)
	$(PY) -m pytest
ifneq ($(findstring postgres,$(DATABASE_URL)),)
	env -u DATABASE_URL -u TEST_DATABASE_NAME -u CELERY_BROKER_URL -u REDIS_URL \
		$(PY) -m pytest -m "not postgres and not redis" $(SQLITE_TESTS)
endif

# The fault suite (marked `faults`, left out of plain `pytest` by the addopts in pyproject.toml)
# starts and stops its own PostgreSQL and Redis servers. Its temporary files live under var/ so
# other pytest runs on the machine, which prune /tmp/pytest-of-<user>, never remove them mid-run.
faults: $(STAMP)
	$(PY) -m pytest -m faults tests/faults --basetemp=var/pytest-faults

test: lint typecheck pytest faults

bench: $(STAMP)
	$(PY) bench/run_all.py $(if $(QUICK),--quick)

clean:
	rm -rf var staticfiles .pytest_cache .mypy_cache .ruff_cache
