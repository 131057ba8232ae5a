# vi-course: every target installs what it needs into the repo (.venv, node_modules).
# Two commands a newcomer needs:   make book   and   make test

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# nbgrader runs `alembic` from PATH when it creates a gradebook: keep the venv first on PATH.
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
STAMPS := .stamps

.PHONY: help venv node chromium book test test-fast bench release autograde feedback export clean

help:
	@echo "make book       build the online book into _build/html (installs everything it needs)"
	@echo "make test       run every test: library, reference answers, autograding, book, browser"
	@echo "make bench      run the benchmarks against the reference tools"
	@echo "make release | autograde | feedback | export   instructor workflow (see README.md)"

$(STAMPS):
	@mkdir -p $(STAMPS)

# --- Python environment --------------------------------------------------------------------
$(STAMPS)/venv: pyproject.toml constraints.txt | $(STAMPS)
	@echo ">> creating $(VENV) and installing pinned dependencies"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (vi-course)" >/dev/null
	@touch $@

venv: $(STAMPS)/venv

# --- MathJax served from node_modules (no CDN) ---------------------------------------------
$(STAMPS)/node: package.json package-lock.json | $(STAMPS)
	@echo ">> installing npm packages (local MathJax)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: $(STAMPS)/node

# --- Debian's chromium for the browser tests -----------------------------------------------
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo ">> installing Debian's chromium and chromium-driver"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# --- The book -------------------------------------------------------------------------------
# Chapters execute at build time; locally results are cached, in CI (CI=true) execution is forced.
book: venv node
	$(BIN)/python scripts/build_book.py

# --- Tests ----------------------------------------------------------------------------------
test: venv node chromium book
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

# Library and grading tests only (no book build, no browser).
test-fast: venv
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not browser" tests

# --- Benchmarks (not part of the tests) -----------------------------------------------------
bench: venv
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench,bench-numpyro]"
	$(BIN)/python -m benchmarks

# --- Instructor workflow (nbgrader) ---------------------------------------------------------
release: venv
	$(BIN)/python -m grading release

autograde: venv
	$(BIN)/python -m grading autograde $(if $(SUBMISSIONS),--submissions $(SUBMISSIONS))

feedback: venv node
	$(BIN)/python -m grading feedback

export: venv
	$(BIN)/python -m grading export $(if $(OUT),--out $(OUT))

clean:
	rm -rf _build $(STAMPS)
