# make demo  - set everything up and run the product on the embedded default (Ctrl-C stops it)
# make test  - set up, then lint, type-check and run the tests
# make bench - run the benchmarks (figures to bench/results/)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export HF_HUB_OFFLINE := 1

.PHONY: install demo test lint typecheck pytest bench clean

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

pytest: $(STAMP)
	$(PY) -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) bench/run_all.py $(if $(QUICK),--quick)

clean:
	rm -rf var staticfiles .pytest_cache .mypy_cache .ruff_cache
