# coobill: the two commands of the README's Quick start, and what they stand on.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
export COOBILL_DATABASE__URL ?= sqlite+aiosqlite:///$(CURDIR)/var/coobill.db

.PHONY: run test setup test-setup browsers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## Set up, migrate the embedded SQLite ledger, and run the daemon in the foreground.
run: $(STAMP)
	mkdir -p var
	$(BIN)/coobill migrate
	$(BIN)/coobill run

## Set up (Python packages, headless Chromium) and run the whole test suite.
test: $(STAMP) browsers
	$(BIN)/python -m pytest -q

browsers:
	@command -v chromium >/dev/null 2>&1 || ( \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: browser tests will fail" >&2 )

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
