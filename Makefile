# The two commands that matter: `make book` and `make test`. Each creates the
# virtual environment it needs (.venv) on first use.
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg

.PHONY: book test unit lint browser regression portability ranges seeds seeds-ci site-ci site-check refs bench clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

book: $(STAMP)  ## build the site at the full settings (the set "full") into _build/html
	$(VENV)/bin/stlearn build --jobs 2

site-ci: $(STAMP)  ## build the site at the small "ci" settings into _build/html-ci
	$(VENV)/bin/stlearn build --set ci --jobs 2

browser:  ## headless Chromium and its driver for the site tests (Debian packages; needs root or sudo)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; fi

lint: $(STAMP)  ## ruff over src, tests, benchmarks and every chapter's code cells
	$(VENV)/bin/stlearn lint

# CI's tests run with torch's plain (default-capability) kernels, against references made with the machine's
# own (make refs): every submission checks that the references hold on another kernel variant
test: $(STAMP) browser lint site-ci  ## everything CI runs: lint, ci-size book build, all tests, nbval regression
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest tests $(NBVAL) -n 2 --dist loadfile

site-check: $(STAMP) browser  ## the site tests and the browser check on the paper site that `make book` built
	STLEARN_SITE_SET=full $(PY) -m pytest tests/site -m slow -n 2 --dist loadfile

unit: $(STAMP)  ## the library's tests only: no chapter execution, no site build (under 2 minutes)
	$(PY) -m pytest tests/library -n 2

regression: $(STAMP)  ## nbval regression of every chapter against tests/references
	$(PY) -m pytest tests/references $(NBVAL)

portability: $(STAMP)  ## nbval regression under every kernel variant this processor has (capabilities, threads, MKL, oneDNN)
	$(PY) -m stlearn.tooling.portability

ranges: $(STAMP)  ## every chapter at its ci set with each size moved by 1.5x up and down: passes or stops fast
	$(PY) -m stlearn.tooling.robustness ranges

seeds: $(STAMP)  ## slow (five books): every chapter at full settings at 5 root seeds drawn at random
	$(PY) -m stlearn.tooling.robustness seeds

seeds-ci: $(STAMP)  ## every chapter at its ci set at 2 root seeds drawn at random (about 15 minutes)
	$(PY) -m stlearn.tooling.robustness seeds --set ci --seeds 2

refs: $(STAMP)  ## regenerate the regression references (after changing a chapter)
	$(VENV)/bin/stlearn refs

bench: $(STAMP)  ## speed: ensemble vs loop vs vmap vs autograd (fractions of matmul peak and of the roofline), theory vs simulation
	$(PY) benchmarks/bench_ensemble.py && $(PY) benchmarks/bench_pool_order.py && $(PY) benchmarks/bench_allocator.py && $(PY) benchmarks/bench_layout.py && $(PY) benchmarks/bench_conv_forms.py --compile && $(PY) benchmarks/bench_optimizer.py && $(PY) benchmarks/bench_theory.py

clean:  ## remove build outputs (keeps .venv)
	rm -rf _build
