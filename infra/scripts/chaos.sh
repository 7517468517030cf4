#!/usr/bin/env bash
# shellcheck disable=SC1091  # stack-*.sh are sourced by path; `shellcheck -x` follows them
# The fault suite (`make chaos`): its own PostgreSQL, Redis and Kafka broker on spare ports of
# 127.0.0.1, in a state directory of its own, never the shared or `make run` services.
#
#   chaos.sh [--short] [--keep-state] [--redis-pause]   run the driver (tools/chaos/run.py), tear down
#
# The driver stands the stack up and injects the faults through these subcommands, which reuse
# the local stack's own start functions (infra/scripts/stack-*.sh) with STACK_DIR and the ports
# taken from the environment:
#
#   stack-up                          start the three services, check they are ours, migrate
#   stack-down                        stop what this state dir started, remove its PostgreSQL cluster
#   svc-stop  postgres|redis|kafka    stop one service of this state dir (pid file checked)
#   svc-start postgres|redis|kafka    start it again on the same port and data
#   svc-pause|svc-resume redis        freeze / thaw it (SIGSTOP / SIGCONT)
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPTS/../.." && pwd)
VENV_PY=$REPO_ROOT/.venv/bin/python

say() { printf '[chaos] %s\n' "$*" >&2; }

fail() {
    say "ERROR: $*"
    exit 1
}

# The stack's settings and functions for the state dir in STACK_DIR (which must not be the
# repository's own .stack: that one belongs to `make run` / `make test`).
load_stack() {
    [[ -n ${STACK_DIR:-} ]] || fail "STACK_DIR is not set"
    [[ $(cd "$STACK_DIR" 2>/dev/null && pwd) != "$REPO_ROOT/.stack" ]] || fail "refusing to use $REPO_ROOT/.stack"
    # Empty, not unset: `.env` cannot point the chaos stack at somebody else's services.
    export DATABASE_URL="" REDIS_URL="" KAFKA_BOOTSTRAP_SERVERS="" DLQ_TOPIC=""
    # shellcheck source=infra/scripts/stack-env.sh
    source "$SCRIPTS/stack-env.sh"
    # shellcheck source=infra/scripts/stack-common.sh
    source "$SCRIPTS/stack-common.sh"
    # shellcheck source=infra/scripts/stack-postgres.sh
    source "$SCRIPTS/stack-postgres.sh"
    # shellcheck source=infra/scripts/stack-redis.sh
    source "$SCRIPTS/stack-redis.sh"
    # shellcheck source=infra/scripts/stack-kafka.sh
    source "$SCRIPTS/stack-kafka.sh"
}

# The Kafka jars: the repository's copy (fetched once by `make up`, or now), linked into the state dir.
link_kafka_libs() {
    local shared=$REPO_ROOT/.stack/kafka/libs
    if [[ ! -f $shared/.pom.sha256 ]]; then
        say "fetching the Kafka jars into $REPO_ROOT/.stack (once, as make up would)"
        (STACK_DIR=$REPO_ROOT/.stack load_stack_for_libs)
    fi
    mkdir -p "$STACK_DIR/kafka"
    [[ -e $STACK_DIR/kafka/libs ]] || ln -s "$shared" "$STACK_DIR/kafka/libs"
}

load_stack_for_libs() {
    mkdir -p "$STACK_DIR"
    exec 8>>"$STACK_DIR/stack.lock"  # the lock stack.sh holds while it fetches the same jars
    flock -w 1800 8 || fail "gave up waiting for $STACK_DIR/stack.lock"
    # shellcheck source=infra/scripts/stack-env.sh
    source "$SCRIPTS/stack-env.sh"
    # shellcheck source=infra/scripts/stack-common.sh
    source "$SCRIPTS/stack-common.sh"
    # shellcheck source=infra/scripts/stack-kafka.sh
    source "$SCRIPTS/stack-kafka.sh"
    check_java
    ensure_kafka_libs
}

ours() {
    local name=$1 pidfile pid pattern
    case $name in
        postgres) pidfile=$STACK_PIDS/postgres-$POSTGRES_PORT.pid pattern=postgres ;;
        redis) pidfile=$STACK_PIDS/redis-$REDIS_PORT.pid pattern=redis-server ;;
        kafka) pidfile=$STACK_PIDS/kafka-$KAFKA_PORT.pid pattern=kafka.Kafka ;;
        *) fail "unknown service $name" ;;
    esac
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    pid_matches "$pid" "$pattern"
}

# The services only, as `stack.sh up` starts them (same functions), without its venv step (the
# driver already runs in the venv) and without its machine-wide lock: the ports are spare and the
# cluster is ours, so there is nothing to serialise with other set-ups, only minutes to lose.
cmd_stack_up() {
    local service out
    mkdir -p "$STACK_DIR"
    link_kafka_libs
    load_stack
    check_java
    ensure_postgres
    ensure_redis
    ensure_kafka
    for service in postgres redis kafka; do
        ours "$service" || fail "$service on its port was not started by this run (port taken?): refusing faults"
    done
    out=$("$REPO_ROOT/.venv/bin/warehouse-stock" migrate 2>&1) || { printf '%s\n' "$out" >&2; fail "migrations failed"; }
}

cmd_stack_down() {
    load_stack
    local info cluster=""
    for info in "$STACK_PIDS"/postgres-*.info; do  # whatever the port: the trap does not know it
        [[ -f $info ]] && cluster=$(dirname "$(sed -n 's/^data=//p' "$info")")
    done
    bash "$SCRIPTS/stack.sh" stop || true
    if [[ -n $cluster && $cluster == "$PG_ROOT"/* && -d $cluster ]]; then
        rm -rf "$cluster"
    fi
}

cmd_svc_stop() {
    local name=$1 info data bindir pid
    load_stack
    ours "$name" || fail "$name is not running from $STACK_DIR: nothing of ours to stop"
    case $name in
        postgres)
            info=$STACK_PIDS/postgres-$POSTGRES_PORT.info
            data=$(sed -n 's/^data=//p' "$info")
            bindir=$(sed -n 's/^bindir=//p' "$info")
            as_postgres "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
            ;;
        redis) stop_redis "$STACK_PIDS/redis-$REDIS_PORT.pid" ;;
        kafka) stop_kafka "$STACK_PIDS/kafka-$KAFKA_PORT.pid" ;;
    esac
}

cmd_svc_start() {
    local name=$1
    load_stack
    ! ours "$name" || fail "$name is already running"
    case $name in
        postgres) start_postgres ;;
        redis) ensure_redis ;;
        kafka) start_kafka ;;
        *) fail "unknown service $name" ;;
    esac
}

# Globals, not locals: the EXIT trap runs after cmd_run has returned.
CHAOS_STATE=""
CHAOS_KEEP=0

on_exit() {
    local rc=$?
    [[ -n $CHAOS_STATE ]] || return 0
    (STACK_DIR=$CHAOS_STATE cmd_stack_down >/dev/null 2>&1) || true
    # The logs of a failed run stay for reading; a passed run leaves nothing behind.
    ((CHAOS_KEEP || rc != 0)) || rm -rf "$CHAOS_STATE"
}

cmd_svc_signal() {
    local name=$1 signal=$2
    load_stack
    [[ $name == redis ]] || fail "only redis can be paused"
    ours redis || fail "redis is not running from $STACK_DIR"
    kill "-$signal" "$(cat "$STACK_PIDS/redis-$REDIS_PORT.pid")"
}

cmd_run() {
    local status=0 arg
    for arg in "$@"; do [[ $arg == --keep-state ]] && CHAOS_KEEP=1; done
    [[ -x $VENV_PY ]] || fail "no virtualenv at $REPO_ROOT/.venv: run \`make up\` once first"
    CHAOS_STATE=$(mktemp -d /tmp/warehouse-chaos.XXXXXX)
    # Backstop: whatever happens to the driver, the services of this state dir are stopped.
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    cd "$REPO_ROOT"
    "$VENV_PY" -m tools.chaos.run --state-dir "$CHAOS_STATE" "$@" || status=$?
    ((status == 0)) || say "FAILED (exit $status); logs kept in $CHAOS_STATE"
    return "$status"
}

command=${1:-}
case $command in
    stack-up) cmd_stack_up ;;
    stack-down) cmd_stack_down ;;
    svc-stop) cmd_svc_stop "${2:?service}" ;;
    svc-start) cmd_svc_start "${2:?service}" ;;
    svc-pause) cmd_svc_signal "${2:?service}" STOP ;;
    svc-resume) cmd_svc_signal "${2:?service}" CONT ;;
    -h | --help) sed -n '3,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) cmd_run "$@" ;;
esac
