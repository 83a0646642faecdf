# Two commands do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8420

.PHONY: serve test lint typecheck unit e2e clean bench bench-interleaved bench-smoke bench-tools libpq browser

$(BIN)/python:
	@echo "==> Creating the virtual environment $(VENV) (once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes. The `client` extra is what the README's
# first steps run: the AWS CLI, boto3 and aws-secretsmanager-caching.
$(VENV)/.installed: pyproject.toml | $(BIN)/python libpq
	@echo "==> Installing Strongroom and the clients the README uses (the AWS CLI, boto3,"
	@echo "    aws-secretsmanager-caching) into $(VENV): about a minute the first time"
	$(BIN)/pip install --quiet -e '.[client,rotators]'
	@echo "==> Installed: $(BIN)/strongroom, $(BIN)/aws and $(BIN)/python with boto3"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python libpq
	@echo "==> Installing Strongroom and its test tools into $(VENV)"
	$(BIN)/pip install --quiet -e '.[test,client,rotators]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python libpq
	$(BIN)/pip install --quiet -e '.[test,rotators,bench]'
	touch $(VENV)/.installed $(VENV)/.installed-test $@

serve: $(VENV)/.installed
	@echo "==> Serving on http://127.0.0.1:$(PORT); the README's clients are in $(BIN)"
	$(BIN)/strongroom server --dev --data-dir ./.strongroom --port $(PORT)

test: $(VENV)/.installed-test browser
	$(BIN)/ruff check strongroom tests
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layering of docs/architecture.md (contract in pyproject.toml)
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check strongroom tests
	$(BIN)/ruff format --check strongroom tests
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

e2e: $(VENV)/.installed-test browser
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# The benchmark suite (bench/README.md), ~30 minutes; never part of `make test`.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--targets strongroom-w2,openbao".
bench: $(VENV)/.installed-bench bench-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

# This checkout against another commit (BASELINE=<commit or checkout>) and OpenBao, all up at
# once, in alternating windows, so host drift cancels out of the ratios (bench/README.md).
bench-interleaved: $(VENV)/.installed-bench bench-tools
	$(BIN)/python -m bench.interleaved --baseline $(BASELINE) $(BENCH_ARGS)

# A few seconds against Strongroom alone (tests/e2e/test_bench_smoke.py runs the same).
bench-smoke: $(VENV)/.installed-test bench-tools
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

bench-tools:  # the load generator, from Debian
	@command -v wrk >/dev/null || apt-get install -y -qq wrk \
		|| { apt-get update -qq && apt-get install -y -qq wrk; }

# Debian's chromium, which the console's browser tests drive (tests/browser.py); as root it is
# installed when missing, otherwise those tests skip locally (and fail in CI) with the reason.
browser:
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || apt-get install -y -qq chromium \
		|| { apt-get update -qq && apt-get install -y -qq chromium; }

libpq:  # PyGreSQL (the rotators extra) builds against libpq, from Debian
	@command -v pg_config >/dev/null || apt-get install -y -qq libpq-dev \
		|| { apt-get update -qq && apt-get install -y -qq libpq-dev; }

clean:
	rm -rf $(VENV) .strongroom .pytest_cache .mypy_cache .ruff_cache
