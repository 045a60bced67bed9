# Baton: `make run` brings the whole system up on a local Kafka and PostgreSQL; `make test`
# runs the suite against the same real servers. Both set up everything a fresh clone lacks.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BATON_ROOT := $(CURDIR)
export KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:9092
export DATABASE_URL ?= postgresql+asyncpg://baton@127.0.0.1:55432/baton
export POLICY_PATH ?= deploy/policy.example.yaml

.PHONY: venv stack stack-stop migrate run demo test test-unit test-faults lint typecheck clean tools docs dashboard-png

venv: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

stack: ## start (or reuse) the local Kafka and PostgreSQL
	deploy/local/postgres.sh start
	deploy/local/kafka.sh start

stack-stop:
	deploy/local/kafka.sh stop
	deploy/local/postgres.sh stop

migrate: venv stack
	$(BIN)/baton migrate
	$(BIN)/baton topics

run: migrate ## the three services in the foreground; Ctrl-C stops them all
	@source deploy/local/demo-env.sh && exec $(BIN)/python deploy/local/run.py

demo: venv ## submit a handful of leads to a running system and print the assignments
	@source deploy/local/demo-env.sh && $(BIN)/python deploy/local/demo.py

tools: ## system tools the checks use (promtool, amtool, kcat, nginx and chromium from Debian; npm checkers)
	@command -v promtool >/dev/null || { \
	  echo "installing promtool (Debian package prometheus; its service is not left running)"; \
	  deploy/local/promtool.sh; }
	@command -v amtool >/dev/null || { \
	  echo "installing amtool (Debian package prometheus-alertmanager; not left running)"; \
	  deploy/local/apt-tools.sh prometheus-alertmanager; }
	@command -v kcat >/dev/null || { echo "installing kcat (Debian)"; deploy/local/apt-tools.sh kcat; }
	@command -v nginx >/dev/null || { echo "installing nginx (Debian; not left running)"; deploy/local/apt-tools.sh nginx-light; }
	@command -v chromium >/dev/null || { echo "installing chromium (Debian)"; deploy/local/apt-tools.sh chromium; }
	@test -d tools/asyncapi/node_modules/@asyncapi/parser || \
	  (cd tools/asyncapi && npm ci --no-audit --no-fund --loglevel=error)
	@test -d tools/cloudevents-js/node_modules/cloudevents || \
	  (cd tools/cloudevents-js && npm ci --no-audit --no-fund --loglevel=error)

dashboard-png: migrate tools ## demo traffic + local Prometheus, then render the dashboard to docs/dashboard.png
	deploy/local/dashboard.sh

docs: venv ## regenerate docs/asyncapi.yaml and docs/openapi/*.json from the code
	$(BIN)/baton docs

# Two workers: most of the suite waits on servers, not the CPU. Fault tests stay on one worker
# (their xdist_group, tests/conftest.py); --durations names the slowest tests on every run.
test: migrate tools lint typecheck ## lint, types, then the whole suite against the real local stack
	$(BIN)/pytest -q -n 2 --dist loadgroup --durations=15

test-unit: venv
	$(BIN)/pytest -q -m "not integration and not e2e"

test-faults: migrate ## fault tests only: SIGKILL a dedicated broker / the router mid-stream, reconcile
	$(BIN)/pytest -q -s -m faults

lint: venv
	$(BIN)/ruff check shared services ops tests bench deploy
	$(BIN)/ruff format --check -q shared services ops tests bench deploy
	$(BIN)/lint-imports --no-logo --cache-dir .import_linter_cache  # contracts: pyproject.toml
	$(BIN)/vulture  # dead code; paths and exemptions in pyproject.toml [tool.vulture]

typecheck: venv
	$(BIN)/mypy

.PHONY: bench bench-quick
bench: venv stack ## benchmarks on the real local stack (< 15 min): table + bench/results.json
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: venv stack ## a ~4-minute smoke version of make bench (notify included)
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .local deploy/local/.kafka

.PHONY: bench-matching
bench-matching: venv stack ## dedupe quality: ~300 messy touches from 120 people through intake and router, pairwise precision/recall (~1 min)
	$(BIN)/python -m bench.matching $(BENCH_ARGS)
