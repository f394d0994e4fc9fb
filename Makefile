# projops-sync: `make sandbox` runs the demo, `make test` runs every check. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup sandbox test lint typecheck check-maps unit bench faults maps-doc screenshots browser clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Azurite (the Table Storage emulator) comes from npm; the tests start and stop it themselves.
$(NPM_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

setup: $(STAMP) $(NPM_STAMP)

# The web console's tests run in Debian's chromium, driven by Playwright (its own browser download is
# not used: it comes from a CDN). Installed here when missing; CI runs as root.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

browser: $(CHROMIUM)

sandbox: $(STAMP)
	$(PY) -m sandbox $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Every map against the simulators' $metadata, which come from the real services' published schemas.
check-maps: $(STAMP)
	$(PY) -m sandbox --check-maps

unit: setup browser
	$(PY) -m pytest -q

test: setup lint typecheck check-maps unit

bench: setup
	$(PY) -m benchmarks $(ARGS)

# 10,000 changes through 429s, 5xx, dropped connections, duplicates, reordering and a host crash.
faults: setup
	$(PY) -m tests.faults $(ARGS)

# The console's pictures in docs/, taken by its browser tests.
screenshots: setup browser
	PROJOPS_SCREENSHOTS=1 $(PY) -m pytest -q tests/integration/test_console_browser.py

maps-doc: $(STAMP)
	$(VENV)/bin/projops-sync maps --markdown > docs/maps.md

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .sandbox
