# teledrop: `make run` serves on 127.0.0.1:8000, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install browser run test clean

$(STAMP): pyproject.toml plugins/local_storage/pyproject.toml plugins/sqlite_meta/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e plugins/local_storage -e plugins/sqlite_meta
	touch $@

install: $(STAMP)

run: install
	mkdir -p data
	TELEDROP_CONFIG=$${TELEDROP_CONFIG:-conf/teledrop.toml} $(BIN)/gunicorn -c conf/gunicorn.conf.py wsgi:app

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info plugins/*/*.egg-info
