# The two commands: `make run` sets up and starts the chatbot on the embedded model; `make test` sets up and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint typecheck unit bench install install-dev clean browser postgres redis web

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "genai-chatbot needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama.cpp is compiled once per machine (a few minutes on 2 cores) by scripts/build-llama-cpp.sh, which
# says why it does not leave the build to pip.
$(VENV)/.installed-llama: scripts/build-llama-cpp.sh | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$$(PYTHON=$(BIN)/python scripts/build-llama-cpp.sh)"
	touch $@

$(VENV)/.installed-run: pyproject.toml $(VENV)/.installed-llama
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-llama
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/genai-chatbot serve $(ARGS)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy --strict src

# The browser tests drive Debian's chromium (Playwright cannot download its own browsers here).
browser:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The store tests start Debian's PostgreSQL server in a temporary folder (tests/postgres.py); no Docker.
postgres:
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

# The rate-limit tests with redis_url start Debian's redis-server on a free port (tests/redis_server.py).
redis:
	command -v redis-server >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server)

# Rebuild the chat page's vendored libraries (committed under src/genai_chatbot/web/static/vendor/).
web:
	cd src/genai_chatbot/web && npm ci && npm run build

# PYTHONDONTWRITEBYTECODE is cleared for the tests: without the bytecode caches every run, every xdist worker
# and every CLI subprocess compiles the sources and rewrites the test modules again (13 of the fast suite's
# 72 s of CPU time, measured).
unit: install-dev browser postgres redis
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The tests that need neither the embedded model, the browser, a PostgreSQL server nor a server subprocess
# (the `slow` marker; see README "Development"), on every core: 656 tests in about 39 s on 2 cores.
test-fast: install-dev
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -m "not slow" -n auto $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python bench/streaming.py
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/history.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
