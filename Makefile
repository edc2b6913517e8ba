# Two entry points, each of which sets everything up on a fresh machine first:
#   make run    creates .venv, installs easel, and runs it
#   make test   creates .venv, installs easel with its test tools, and runs the test suite
# Another interpreter: make run PYTHON=python3.12 (3.11 or newer). Other arguments: make run ARGS=--version
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What has been installed into .venv: `make run` needs only easel (-e .), `make test` its test tools too (-e '.[dev]').
# A stamp is written only after its install succeeded, so an interrupted or failed install is retried next time.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
ARGS ?= run

# Measured with `pip download .` (Python 3.11, Linux x86_64): 2.8 GB with PyPI's torch 2.13.0, the CUDA build that
# pip picks there (the torch wheel 527 MB, NVIDIA's CUDA libraries and triton 2.2 GB), 0.3 GB with the CPU build (its
# wheel 192 MB) where pip is pointed at it; the rest of easel's dependencies are 0.1 GB.
DOWNLOAD := torch, diffusers, transformers: roughly 2.8 GB to download with the CUDA build of torch, 0.3 GB with the CPU build

# .venv's own Python, checked at every make: a .venv whose Python is missing, broken or older than 3.11 (left by an
# earlier failed attempt, or an interpreter removed since) is not reused but recreated, as if it had no stamps.
VENV_OK := $(shell $(BIN)/python -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
ifneq ($(VENV_OK),1)
STALE := venv-stale
endif
# The command to suggest when $(PYTHON) is too old.
GOAL := $(firstword $(filter run test install benchmark,$(MAKECMDGOALS)) run)

.PHONY: run test install benchmark clean venv-stale
.DELETE_ON_ERROR:
# One install at a time into .venv, even under make -j.
.NOTPARALLEL:

$(RUN_STAMP): EXTRAS :=
$(RUN_STAMP): WHAT := easel and its dependencies
$(DEV_STAMP): EXTRAS := [dev]
$(DEV_STAMP): WHAT := easel, its dependencies and its test tools

# One line says what is about to happen; a .venv that cannot be used is made anew with $(PYTHON), after checking
# that it is 3.11 or newer (if not: one line, and no .venv left behind); then pip, with its progress shown.
$(RUN_STAMP) $(DEV_STAMP): pyproject.toml $(STALE)
	@if $(BIN)/python -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	    if [ '$(EXTRAS)' = '[dev]' ] && [ $(RUN_STAMP) -nt pyproject.toml ]; then \
	        echo "easel: installing easel's test tools into .venv (pytest, pytest-xdist, hypothesis, psutil, asyncpg: a few MB)"; \
	    else \
	        echo "easel: installing $(WHAT) into .venv (new, or pyproject.toml changed since: only what is missing is downloaded)"; \
	    fi; \
	else \
	    found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null | head -n 1); \
	    major=$${found%%.*}; minor=$${found#*.}; \
	    if [ -z "$$found" ]; then \
	        echo "easel needs Python 3.11 or newer; $(PYTHON) was not found or does not run. Name another with: make $(GOAL) PYTHON=python3.12" >&2; \
	        exit 1; \
	    elif ! { [ "$$major" -gt 3 ] || { [ "$$major" -eq 3 ] && [ "$$minor" -ge 11 ]; }; } 2>/dev/null; then \
	        echo "easel needs Python 3.11 or newer; $(PYTHON) is $$found. Name another with: make $(GOAL) PYTHON=python3.12" >&2; \
	        exit 1; \
	    fi; \
	    if [ -e $(VENV) ]; then \
	        echo "easel: .venv is unusable (its Python is missing, broken or older than 3.11, or it has no pip): recreating it with $(PYTHON) ($$found) and installing $(WHAT) ($(DOWNLOAD))"; \
	    else \
	        echo "easel: first run: creating .venv with $(PYTHON) ($$found) and installing $(WHAT) ($(DOWNLOAD); later runs skip this)"; \
	    fi; \
	    rm -rf $(VENV); \
	    if ! { $(PYTHON) -m venv $(VENV) && $(BIN)/python -c 'import pip' >/dev/null 2>&1; }; then \
	        rm -rf $(VENV); \
	        echo "easel: $(PYTHON) -m venv could not create .venv with pip (on Debian and Ubuntu: apt install python3-venv, or python$$found-venv)" >&2; \
	        exit 1; \
	    fi; \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.$(EXTRAS)'
	$(if $(EXTRAS),@touch $(RUN_STAMP))
	@touch $@

venv-stale:

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/easel $(ARGS)

# One pytest worker per core (-n auto), each taking the next test as it finishes one (worksteal): most of the
# suite's time is its process tests, which mostly wait on the easel processes they start and stop.
test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal

benchmark: $(DEV_STAMP)
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/multilingual.py

clean:
	rm -rf $(VENV) .pytest_cache
