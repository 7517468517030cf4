#!/usr/bin/env bash
# Container entry point of the local app (docker-compose.yml):
#   1. wait for PostgreSQL, Redis and Kafka (TCP, bounded by WAIT_TIMEOUT_SECONDS),
#   2. apply the migrations (warehouse-stock migrate; safe to run from several containers),
#   3. exec uvicorn on 0.0.0.0:${APP_PORT:-8000}, or exec the given command instead, e.g.
#      docker compose run --rm app warehouse-stock --help   (the operator commands: replay, reconcile, ...)
# Environment: WAIT_FOR (default "postgres redis kafka"; empty waits for nothing),
# WAIT_TIMEOUT_SECONDS (default 90), SKIP_MIGRATIONS=1 to skip step 2.
set -euo pipefail

cd "$(dirname "$0")/../.."

read -r -a wait_for <<< "${WAIT_FOR-postgres redis kafka}"
if [ "${#wait_for[@]}" -gt 0 ]; then
    python infra/docker/wait_for.py --timeout "${WAIT_TIMEOUT_SECONDS:-90}" "${wait_for[@]}"
fi

if [ "${SKIP_MIGRATIONS:-0}" != "1" ]; then
    warehouse-stock migrate
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

exec uvicorn functions.local_app.main:app \
    --host 0.0.0.0 \
    --port "${APP_PORT:-8000}" \
    --proxy-headers \
    --timeout-graceful-shutdown 20
