# Two entry points, each of which sets everything up on a fresh machine first:
#   make run    creates .venv, installs easel, and runs it
#   make test   creates .venv, installs easel with its test tools, and runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?= run

.PHONY: run test install benchmark clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/easel $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

benchmark: $(STAMP)
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/multilingual.py

clean:
	rm -rf $(VENV) .pytest_cache
