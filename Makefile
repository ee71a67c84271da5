# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: demo test lint bench venv clean browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/xinyi demo

# Runs the whole suite; PostgreSQL tests run when a server answers (CI requires one).
test: $(STAMP) browser
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "PostgreSQL answers: database tests run on SQLite and PostgreSQL"; \
		export XINYI_TEST_DATABASE_URL='$(PG_URL)'; \
	else echo "no PostgreSQL at $(PG_URL): SQLite only"; fi; \
	$(BIN)/python -m pytest -n 2 -q -p no:cacheprovider tests
	$(MAKE) --no-print-directory lint

# Browser tests drive Debian's chromium; never a browser download of a tool's own.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium and CJK fonts for the browser tests"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null \
		|| echo "warning: chromium could not be installed; browser tests will be skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance bench/results/*.tmp
