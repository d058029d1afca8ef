# PaperSearch: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# The CPU build of torch. On this machine pip finds torch 2.13.0 on local disk; elsewhere use
#   make install TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
# A bare `torch` requirement would pull a multi-GB CUDA build on Linux.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
INDEX ?= $(CURDIR)/.papersearch/sample-index

.PHONY: install install-test browser axe run search test test-fast test-shuffled lint

install:
	$(PIP) install -q "$(TORCH_SPEC)" $(TORCH_INDEX)
	$(PIP) install -q -e .

install-test: install
	$(PIP) install -q -e '.[test,ray]'

# Debian's chromium for the browser tests (skipped with a reason when it cannot be installed).
browser:
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ) || \
	  echo "chromium not installed: browser tests will be skipped"

# axe-core (npm) for the pages' WCAG checks in the browser tests, into ./node_modules (ignored by git).
axe:
	@test -f node_modules/axe-core/axe.min.js || (command -v npm >/dev/null 2>&1 && \
	  npm install --silent --no-save --no-package-lock --no-audit --no-fund axe-core >/dev/null) || \
	  echo "axe-core not installed: the accessibility checks will be skipped"

HOST ?= 127.0.0.1
PORT ?= 8000

# Main job: serve the bundled sample corpus (indexed on first start) with the page, API and widget.
run: install
	papersearch serve --sample --index $(INDEX) --host $(HOST) --port $(PORT)

# The same corpus from the command line, without a server.
search: install
	papersearch index --index $(INDEX) indexer/sample/papers.jsonl
	papersearch search "lightweight OCR" --index $(INDEX) --limit 5

# Every test, slow ones included (real model, real corpora when ../shared/data exists).
test: install-test browser axe
	$(PYTHON) -m pytest -m ""

# The fast tests only (what a plain `pytest` runs).
test-fast:
	$(PYTHON) -m pytest

# The fast tests in a random global order; the seed is printed, rerun one with RANDOM_SEED=N.
RANDOM_SEED ?= $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
test-shuffled:
	$(PYTHON) -m pytest -p random_order --random-order-bucket=global --random-order-seed=$(RANDOM_SEED)

lint:
	ruff check . && ruff format --check .
