# Local development. Everything stack-related lives in infra/scripts/stack.sh; see README.md.
# Settings come from the environment, then `.env` (see .env.example), e.g.
#   make run POSTGRES_PORT=55432 REDIS_PORT=56379 KAFKA_PORT=59092

SHELL := /bin/bash
STACK := bash infra/scripts/stack.sh
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k stack -x"
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run up test stop status clean-stack lint lint-infra bench loadtest chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

run: ## venv + PostgreSQL, Redis, Kafka (installed/started when missing) + migrations, then the app
	@$(STACK) run

up: ## the same set-up as `make run`, without the app
	@$(STACK) up

test: ## set-up, then ruff, lint-infra and pytest over tests/ (non-zero on any failure)
	@$(STACK) test $(PYTEST_ARGS)

stop: ## stop exactly what make run/test started (pids in .stack/pids/)
	@$(STACK) stop

status: ## which services are up, and which of them this stack started
	@$(STACK) status

clean-stack: ## stop, then delete the stack's data (PostgreSQL cluster, Kafka data, logs); keeps .venv and jars
	@$(STACK) clean

lint: ## ruff over the Python code
	@.venv/bin/ruff check .

lint-infra: ## infra/scripts/lint-infra.sh, when it exists
	@if [ -f infra/scripts/lint-infra.sh ]; then bash infra/scripts/lint-infra.sh; \
	else echo "lint-infra: infra/scripts/lint-infra.sh not available yet, skipped"; fi

bench: ## infra/scripts/bench.sh
	@$(call optional_script,bench)

loadtest: ## infra/scripts/loadtest.sh
	@$(call optional_script,loadtest)

chaos: ## infra/scripts/chaos.sh
	@$(call optional_script,chaos)

# Run infra/scripts/$(1).sh, or say it is not there yet (and fail: nothing was run).
define optional_script
if [ -f infra/scripts/$(1).sh ]; then bash infra/scripts/$(1).sh; \
else echo "$(1): not available yet (infra/scripts/$(1).sh does not exist)"; exit 1; fi
endef
