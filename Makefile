# The two commands of the README: `make run` and `make test`. Both create .venv and install
# what they need, so they work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-service bench-gateway load-test clean compose-check ccxt-4.4

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/exchange up

# The ccxt conformance tests run against the 4.4 line first (their own venv), then everything
# against the pinned newest ccxt: the suite's summary is the last line.
test: $(STAMP) compose-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MAKE) --no-print-directory ccxt-4.4
	$(BIN)/pytest

# docker-compose.yml is validated offline by Debian's docker-compose (the Docker client here has
# no compose plugin and there is no engine), installed on first use as the venv is (needs root).
compose-check:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing Debian's docker-compose to validate docker-compose.yml"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose \
	    >/dev/null; } || { echo "cannot install docker-compose (apt-get, as root)" >&2; exit 1; }
	@# The gateway's master key is the deployer's secret, required by the file: a stand-in here.
	EXCHANGE_GATEWAY_MASTER_KEY=stand-in-for-config-check-00000000 \
	  docker-compose -f docker-compose.yml config -q

bench: $(STAMP)
	$(BIN)/python -m load.bench_matching

# The engine service through the embedded broker against a bare echo service (about a minute).
bench-service: $(STAMP)
	$(BIN)/python -m load.bench_engine_service

# The websocket gateway under 200 clients against the echo floor, then a rate sweep (3-4 minutes).
bench-gateway: $(STAMP)
	$(BIN)/python -m load.bench_gateway

# The sustained load test (docs/load-test.md): the month of BTCUSDT minutes replayed over 10
# minutes while 200 websocket clients trade at 1,000 requests/s, against the whole exchange.
LOAD_FILE ?= ../shared/data/binance-usdm-btcusdt-history/BTCUSDT_perp_1m_2025-05-25_2025-06-24.csv.gz
load-test: $(STAMP)
	$(BIN)/exchange load $(LOAD_FILE) --speed 4320 --clients 200 --rate 1000 --duration 600

clean:
	rm -rf $(VENV) .venv-ccxt44 .pytest_cache .mypy_cache .ruff_cache

# The ccxt conformance tests against the 4.4 line of ccxt (its URL layout differs from 4.5's),
# in a venv of its own beside .venv, so the pinned newest ccxt of the dev extra stays as it is.
CCXT_44 := 4.4.100
CCXT_44_STAMP := .venv-ccxt44/.installed-$(CCXT_44)
$(CCXT_44_STAMP): pyproject.toml
	$(PY) -m venv .venv-ccxt44
	.venv-ccxt44/bin/pip install -q --upgrade pip
	.venv-ccxt44/bin/pip install -q -e '.[dev]'
	.venv-ccxt44/bin/pip install -q 'ccxt==$(CCXT_44)'
	touch $(CCXT_44_STAMP)

ccxt-4.4: $(CCXT_44_STAMP)
	.venv-ccxt44/bin/pytest tests/test_binance_ccxt.py tests/test_binance_ws.py tests/test_ccxt_bot.py
