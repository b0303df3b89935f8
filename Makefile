# coobill: the two commands of the README's Quick start, and what they stand on.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# This checkout's configuration, where coobill looks for it when it runs from this virtual
# environment (src/coobill/config.py): the daemon `make run` starts and `.venv/bin/coobill`,
# run from any folder, use the same ledger, ./var/coobill.db.
LOCAL_CONFIG = $(VENV)/etc/coobill/coobill.toml

.PHONY: run test check lint setup browsers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Written once; edit it freely (etc/coobill.toml documents every key).
$(LOCAL_CONFIG): | $(STAMP)
	mkdir -p $(dir $@)
	install -d -m 0700 var
	printf '%s\n' \
	  '# This checkout'"'"'s coobill configuration, written by `make run`; .venv/bin/coobill reads it' \
	  '# too (see the README, Configuration). Every key is documented in etc/coobill.toml.' \
	  '[database]' \
	  'url = "sqlite+aiosqlite:///$(CURDIR)/var/coobill.db"' > $@

## Set up, migrate the embedded SQLite ledger, and run the daemon in the foreground.
run: $(STAMP) $(LOCAL_CONFIG)
	$(BIN)/coobill migrate
	$(BIN)/coobill run

## Set up (Python packages, headless Chromium) and run the whole test suite.
test: $(STAMP) browsers
	$(BIN)/python -m pytest -q

## Lint (ruff, the rules in pyproject.toml) and types (mypy --strict on src/); CI runs it too.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

## A contributor's quick check: lint, types, and the suite on SQLite without the browser tests
## and without the one that installs a copy of the checkout (make test runs them all).
check: lint
	env -u COOBILL_TEST_POSTGRES_URL $(BIN)/python -m pytest -q -m "not browser and not clone"

browsers:
	@command -v chromium >/dev/null 2>&1 || ( \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: browser tests will fail" >&2 )

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
