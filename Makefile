# teledrop: `make run` serves on 127.0.0.1:8000, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install web-deps system-deps run test clean

$(STAMP): pyproject.toml plugins/local_storage/pyproject.toml plugins/sqlite_meta/pyproject.toml \
		plugins/s3_storage/pyproject.toml plugins/postgres_meta/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e plugins/local_storage -e plugins/sqlite_meta \
		-e plugins/s3_storage -e plugins/postgres_meta
	touch $@

# The upload page's tus client, pinned in package-lock.json: `npm ci` whenever node_modules
# is missing or older than the lock, then its built file is copied where the app serves its
# static files (a gitignored folder). axe-core and jsQR come along for the browser tests.
NPM_STAMP := node_modules/.installed
VENDOR := teledrop/web/static/vendor

$(NPM_STAMP): package.json package-lock.json
	command -v npm >/dev/null || $(MAKE) system-deps
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR)/tus.min.js: $(NPM_STAMP)
	mkdir -p $(@D)
	cp node_modules/tus-js-client/dist/tus.min.js $@

web-deps: $(VENDOR)/tus.min.js

install: $(STAMP) web-deps

run: install
	mkdir -p data
	TELEDROP_CONFIG=$${TELEDROP_CONFIG:-conf/teledrop.toml} $(BIN)/gunicorn -c conf/gunicorn.conf.py wsgi:app

# What the tests drive besides Python: Debian's chromium for the browser tests (Playwright
# never downloads a browser here), nginx for the reverse-proxy tests, curl as a client,
# npm for the page's JavaScript packages, and PostgreSQL, whose binaries Debian keeps off
# PATH, for a throwaway database server. ClamAV's clamd and sigtool for the ClamAV
# example's tests, which run their own clamd: the clamav-daemon and freshclam services the
# install starts are stopped again (the tests download no signatures).
SYSTEM_TOOLS := chromium:chromium nginx:nginx-light curl:curl npm:npm clamd:clamav-daemon \
	sigtool:clamav
CLAMAV_SERVICES := clamav-daemon clamav-freshclam

system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
		command -v $${pair%%:*} >/dev/null || PATH="$$PATH:/usr/sbin" command -v $${pair%%:*} >/dev/null \
			|| missing="$$missing $${pair##*:}"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
		case "$$missing" in *clamav*) for service in $(CLAMAV_SERVICES); do \
			systemctl stop $$service >/dev/null 2>&1 \
				|| service $$service stop >/dev/null 2>&1 || true; done;; esac; \
	fi

# The suite runs in TEST_WORKERS pytest-xdist workers, a module at a time each: most of its
# time waits on servers, subprocesses and sockets, so more workers than cores pays.
# TEST_WORKERS=0 runs it in one process (for --pdb, say).
TEST_WORKERS ?= 4

test: install system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info plugins/*/*.egg-info node_modules $(VENDOR)
