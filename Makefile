# Local development. Everything stack-related lives in infra/scripts/stack.sh; see README.md.
# Settings come from the environment, then `.env` (see .env.example), e.g.
#   make run POSTGRES_PORT=55432 REDIS_PORT=56379 KAFKA_PORT=59092

SHELL := /bin/bash
STACK := bash infra/scripts/stack.sh
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k stack -x"
PYTEST_ARGS ?=
# The benchmark and the load test read BENCH_ARGS / LOADTEST_ARGS from the environment (make
# exports command-line variables), e.g. make bench BENCH_ARGS="--only cold --runs 1"
# Extra arguments for the fault suite, e.g. make chaos CHAOS_ARGS=--short
CHAOS_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run up venv test stop status clean-stack lint lint-infra typecheck lock bench loadtest chaos demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

run: ## venvs + PostgreSQL, Redis, Kafka (installed/started when missing) + migrations, then the app
	@$(STACK) run

up: ## the same set-up as `make run`, without the app
	@$(STACK) up

venv: ## only .venv (runtime + local + dev, Python 3.13) and tools/lint/.venv, from the locks
	@$(STACK) venv

test: ## set-up, then ruff, mypy, lint-infra and pytest over tests/ (non-zero on any failure)
	@$(STACK) test $(PYTEST_ARGS)

stop: ## stop exactly what make run/test started (pids in .stack/pids/)
	@$(STACK) stop

status: ## which services are up, and which of them this stack started
	@$(STACK) status

clean-stack: ## stop, then delete the stack's data (PostgreSQL cluster, Kafka data, logs); keeps the venvs and jars
	@$(STACK) clean

lint: ## ruff over the Python code
	@$(STACK) venv && .venv/bin/ruff check .

lint-infra: ## cfn-lint (template and its SAM transform), Compose schema, Dockerfile, shell scripts
	@$(STACK) venv && bash infra/scripts/lint-infra.sh

typecheck: ## mypy over cli/, common/, functions/, tools/ and tests/ (configured in pyproject.toml)
	@$(STACK) venv && .venv/bin/mypy

lock: ## after a dependency change: uv lock (project and lint tools), regenerate requirements.txt
	@bash infra/scripts/lock.sh

bench: ## the benchmark table (infra/scripts/bench.sh; BENCH_ARGS="--only cold --runs 1")
	@bash infra/scripts/bench.sh

loadtest: ## 60 s of Kafka ingestion with GET stock reads, and a chart (infra/scripts/loadtest.sh; LOADTEST_ARGS)
	@bash infra/scripts/loadtest.sh

demo: ## publish a realistic day of movements to Kafka (warehouse-stock demo; the app consumes them)
	@$(STACK) up && .venv/bin/warehouse-stock demo $(DEMO_ARGS)

chaos: ## the fault suite on its own stack (infra/scripts/chaos.sh; CHAOS_ARGS=--short)
	@bash infra/scripts/chaos.sh $(CHAOS_ARGS)
