# Every target bootstraps .venv itself from constraints.txt (the tested, locked set).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test test-slow test-faults test-browser screenshots image-test lint format bench bench-demo bench-dashboard bench-million lock clean

help:
	@echo "make demo       set up .venv and run the whole loop on a synthetic dataset"
	@echo "make test       set up .venv; ruff, mypy and the default test suite"
	@echo "make test-slow  the heavy suites (marker: slow)"
	@echo "make test-faults the fault campaign at full size (marker: faults; figures in docs/reliability.md)"
	@echo "make test-browser  the dashboard in headless Chromium (installs Debian's chromium)"
	@echo "make screenshots   the dashboard's pages at 1280 and 390 px into docs/screenshots/"
	@echo "make image-test build the container offline (Debian docker.io + debootstrap) and check it"
	@echo "make lint       ruff + mypy + import-linter layer contracts only"
	@echo "make bench      the benchmarks under bench/ (figures go to docs/benchmarks.md)"
	@echo "make bench-million  a synthetic 100k- then 1M-row model run through every stage (~1 h on 2 busy cores)"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python >= 3.11 is required; set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" "uv==0.13.10"
	@# uv installs the rest of the locked set (about 20 s instead of pip's 3 min); torch stays pip's
	@# (the CPU build of 2.13.0 already installed satisfies constraints.txt, so uv keeps it)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[all,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vmt demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# mypy (a minute or more on a fresh clone, single-threaded) runs beside the tests; both must pass.
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache
	@$(BIN)/mypy > $(VENV)/mypy.log 2>&1 & typing=$$!; \
	  $(BIN)/pytest -q; tests=$$?; \
	  wait $$typing; typed=$$?; echo "mypy:"; cat $(VENV)/mypy.log; \
	  [ $$tests -eq 0 ] && [ $$typed -eq 0 ]

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow || [ $$? -eq 5 ]  # 5: no test carries the marker

test-faults: $(STAMP)
	$(BIN)/pytest -q -m faults tests/faults

# Debian's chromium, driven by Playwright for Python (never `playwright install`: no downloads).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test-browser: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q -m browser

screenshots: $(STAMP) $(CHROMIUM)
	DASHBOARD_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q -m browser tests/integration/dashboard/test_browser.py tests/integration/dashboard/test_browser_rows.py

# The container (Dockerfile) built and checked here, as root: installs docker.io and debootstrap
# from Debian, runs its own dockerd, builds offline from a wheelhouse (deploy/image_test.sh).
image-test: $(STAMP)
	PYTHON=$(BIN)/python bash deploy/image_test.sh

bench: $(STAMP)
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/evaluate.py

bench-dashboard: $(STAMP)
	$(BIN)/python bench/dashboard.py

# Not in `make bench`: the 1M-row run writes ~3 GB under a temporary folder and takes long.
bench-million: $(STAMP)
	$(BIN)/python bench/million_rows.py --rows 100000
	$(BIN)/python bench/million_rows.py --rows 1000000

bench-demo: $(STAMP)
	$(BIN)/python bench/demo.py

clean:
	rm -rf $(VENV) .vmt .pytest_cache .mypy_cache .ruff_cache

# Re-lock after changing dependencies: installs the newest allowed set into a scratch venv and freezes it.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[all,dev]"
	{ echo "# The tested set: make installs with -c constraints.txt. Regenerate with make lock."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | sed 's/+cpu//' | sort -f; } > constraints.txt
	rm -rf .lock-venv
