#!/usr/bin/env bash
# `make loadtest`: the stack up, then python -m tools.bench.loadtest — Kafka ingestion at a steady rate and
# GET stock over HTTP at the same time for a bounded time; prints a summary and the chart's path
# (.stack/loadtest/loadtest-<time>.png).
#
#   make loadtest                                        60 s, 1,000 events/s, 16 read connections
#   make loadtest LOADTEST_ARGS="--duration 30 --rate 3000"
#   bash infra/scripts/loadtest.sh --duration 20         arguments go to tools.bench.loadtest
#
# Same set-up as `make bench` (infra/scripts/bench.sh): services, wrk, the producer's crc32c.
set -euo pipefail
BENCH_MODULE=tools.bench.loadtest BENCH_ARGS=${LOADTEST_ARGS:-} \
    exec bash "$(dirname "${BASH_SOURCE[0]}")/bench.sh" "$@"
