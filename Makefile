# The two commands that matter: `make book` and `make test`. Each creates the
# virtual environment it needs (.venv) on first use.
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg

.PHONY: book test unit regression site-ci refs bench clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

book: $(STAMP)  ## build the site at the full "paper" settings into _build/html
	$(VENV)/bin/stlearn build

site-ci: $(STAMP)  ## build the site at the small "ci" settings into _build/html-ci
	$(VENV)/bin/stlearn build --set ci --jobs 2

test: $(STAMP) site-ci  ## everything CI runs: ci-size book build, unit tests, nbval regression
	$(PY) -m pytest tests $(NBVAL) -n 2 --dist loadfile

unit: $(STAMP)  ## library and tool tests only (no chapter execution)
	$(PY) -m pytest tests

regression: $(STAMP)  ## nbval regression of every chapter against tests/references
	$(PY) -m pytest tests/references $(NBVAL)

refs: $(STAMP)  ## regenerate the regression references (after changing a chapter)
	$(VENV)/bin/stlearn refs

bench: $(STAMP)  ## speed: ensemble vs loop vs vmap vs autograd (fraction of matmul peak), theory vs simulation
	$(PY) benchmarks/bench_ensemble.py && $(PY) benchmarks/bench_theory.py

clean:  ## remove build outputs (keeps .venv)
	rm -rf _build
