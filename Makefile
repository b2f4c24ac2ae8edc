# Every target sets itself up: a fresh machine needs only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?=

.PHONY: install test test-fast demo bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The whole suite, slow tests included (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_FLAGS)

## Quick loop: skips tests marked slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x -q $(PYTEST_FLAGS)

## The main job end to end on an embedded default, offline.
demo: $(STAMP)
	$(BIN)/python -m keras_layernas.demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
