#!/usr/bin/env bash
# The local stack: a virtualenv, PostgreSQL, Redis and an Apache Kafka broker (KRaft) on 127.0.0.1.
#
#   stack.sh venv     .venv and tools/lint/.venv only (uv sync --frozen; when a lock changed)
#   stack.sh up       venvs + services + migrations (what `make run` and `make test` do first)
#   stack.sh run      up, then the app in the foreground (`make run`; Ctrl-C stops the app)
#   stack.sh test     up, then ruff, mypy, lint-imports, `make lint-infra` and pytest over tests/ (`make test`)
#   stack.sh stop     stop exactly what this stack started, by the pids in .stack/pids/ (`make stop`)
#   stack.sh status   what is listening, and what we started
#   stack.sh clean    stop, then delete the data of this stack (its PostgreSQL clusters, Kafka data,
#                     pids, logs); the venv and the Kafka jars stay (`make clean-stack`)
#
# A service already listening on its port is reused; one named by DATABASE_URL / REDIS_URL /
# KAFKA_BOOTSTRAP_SERVERS is used as it is. Missing PostgreSQL/Redis are installed with apt-get.
# State and logs: .stack/ (STACK_DIR). Settings: see .env.example.
set -euo pipefail

# shellcheck source=infra/scripts/stack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack-env.sh"
# shellcheck source=infra/scripts/stack-common.sh
source "$REPO_ROOT/infra/scripts/stack-common.sh"
# shellcheck source=infra/scripts/stack-postgres.sh
source "$REPO_ROOT/infra/scripts/stack-postgres.sh"
# shellcheck source=infra/scripts/stack-redis.sh
source "$REPO_ROOT/infra/scripts/stack-redis.sh"
# shellcheck source=infra/scripts/stack-kafka.sh
source "$REPO_ROOT/infra/scripts/stack-kafka.sh"
# shellcheck source=infra/scripts/stack-python.sh
source "$REPO_ROOT/infra/scripts/stack-python.sh"

cd "$REPO_ROOT"

# Serialise set-ups: fd 9 holds, in turn, a lock for the repository's .venv, one for STACK_DIR (the
# Kafka jars), and one for the whole machine while services are checked and started (ports, apt
# and clusters are shared by every clone).
take_lock() {
    local file=$1 what=$2
    exec 9>>"$file"
    if ! flock -n 9; then
        log "waiting for $what ($file)"
        flock -w 1800 9 || die "gave up waiting for $what"
    fi
}

release_lock() { exec 9>&-; }

install_missing_packages() {
    local packages=()
    postgres_needs_install && packages+=(postgresql)
    redis_needs_install && packages+=(redis-server)
    [[ ${STACK_WANTS_CHROMIUM:-0} == 1 ]] && chromium_needs_install && packages+=(chromium)
    ((${#packages[@]} == 0)) || apt_install "${packages[@]}"
}

cmd_up() {
    local started=$SECONDS
    mkdir -p "$REPO_ROOT/.stack"
    cmd_venv
    take_lock "$STACK_DIR/stack.lock" "another set-up of $STACK_DIR"
    if ((STACK_EXTERNAL_KAFKA == 0)); then
        check_java
        ensure_kafka_libs
    fi
    take_lock /tmp/warehouse-stock-services.lock "another clone's set-up on this machine"
    install_missing_packages
    ensure_postgres
    ensure_redis
    ensure_kafka
    release_lock
    local out
    out=$("$VENV/bin/warehouse-stock" migrate 2>&1) || { printf '%s\n' "$out" >&2; die "migrations failed"; }
    log "${out##*$'\n'}"
    log "stack ready in $((SECONDS - started))s: postgres $(redact "$DATABASE_URL"), redis $REDIS_URL," \
        "kafka $KAFKA_BOOTSTRAP_SERVERS (logs: $STACK_LOGS)"
}

# Both Python environments, under the repository's venv lock (parallel `make test` runs).
cmd_venv() {
    mkdir -p "$REPO_ROOT/.stack"
    take_lock "$REPO_ROOT/.stack/venv.lock" "another set-up of $VENV"
    ensure_venv
    ensure_lint_venv
}

redact() { sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

cmd_run() {
    cmd_up
    if [[ ! -f functions/local_app/main.py ]]; then
        die "functions/local_app/main.py does not exist yet: the services are up, the app is not"
    fi
    # APP_WORKERS uvicorn workers (default: one per core) and, with APP_MODE=kafka, the Kafka pollers
    # as processes of their own (KAFKA_POLLERS, default one per partition up to the cores), started
    # once by the supervisor (functions/local_app/serve.py), which also stops them.
    log "app: functions.local_app.serve on http://$APP_HOST:$APP_PORT (Ctrl-C stops it)"
    # exec keeps our pid: record it so that `make stop` from another terminal stops the app too.
    printf '%s\n' "$$" >"$STACK_PIDS/app.pid"
    exec "$VENV_PY" -m functions.local_app.serve
}

cmd_test() {
    local status=0
    STACK_WANTS_CHROMIUM=1  # for tests/browser
    cmd_up
    log "ruff check"
    "$VENV/bin/ruff" check . || status=1
    log "mypy"
    "$VENV/bin/mypy" || status=1
    log "lint-imports (the layers in pyproject.toml [tool.importlinter])"
    "$VENV/bin/lint-imports" --no-cache || status=1
    make --no-print-directory -C "$REPO_ROOT" lint-infra || status=1
    log "pytest $*"
    "$VENV_PY" -m pytest "$@" || status=1
    ((status == 0)) || log "FAILED (see above)"
    return "$status"
}

cmd_stop() {
    local pidfile name found=0
    for pidfile in "$STACK_PIDS"/*.pid; do
        [[ -f $pidfile ]] || continue
        found=1
        name=$(basename "$pidfile" .pid)
        case $name in
            app)
                # The supervisor stops its workers and pollers itself (an older run: uvicorn alone).
                for pattern in functions.local_app.serve uvicorn; do
                    if pid_matches "$(cat "$pidfile")" "$pattern"; then
                        log "app: stopping pid $(cat "$pidfile")"
                        stop_pid "$(cat "$pidfile")" "$pattern" TERM
                    fi
                done
                rm -f "$pidfile"
                ;;
            kafka-*) stop_kafka "$pidfile" ;;
            redis-*) stop_redis "$pidfile" ;;
            postgres-*) stop_postgres "$pidfile" ;;
            *) log "ignoring unknown pid file $pidfile" ;;
        esac
    done
    ((found)) || log "nothing to stop (no pid files in $STACK_PIDS)"
    log "stopped what this stack had started; services it reused were left alone"
}

cmd_status() {
    local service port pidfile pid
    for service in postgres:$POSTGRES_PORT redis:$REDIS_PORT kafka:$KAFKA_PORT app:$APP_PORT; do
        port=${service#*:}
        service=${service%%:*}
        pidfile=$STACK_PIDS/$service-$port.pid
        [[ $service == app ]] && pidfile=$STACK_PIDS/app.pid
        pid=$(cat "$pidfile" 2>/dev/null) || pid=""
        if port_open 127.0.0.1 "$port"; then
            if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
                printf '%-9s 127.0.0.1:%-6s up (started by this stack, pid %s)\n' "$service" "$port" "$pid"
            else
                printf '%-9s 127.0.0.1:%-6s up (not ours: reused)\n' "$service" "$port"
            fi
        else
            printf '%-9s 127.0.0.1:%-6s down\n' "$service" "$port"
        fi
    done
    printf 'state: %s\n' "$STACK_DIR"
}

cmd_clean() {
    local cluster pid
    cmd_stop
    for cluster in "$PG_ROOT/$(pg_stack_hash)"-*; do
        [[ -d $cluster ]] || continue
        pid=$(head -n 1 "$cluster/data/postmaster.pid" 2>/dev/null) || pid=""
        if pid_matches "$pid" postgres; then
            log "clean: $cluster is running (pid $pid), not started by this stack: left alone"
            continue
        fi
        log "clean: removing PostgreSQL cluster $cluster"
        rm -rf "$cluster"
    done
    log "clean: removing Kafka data, Redis dir, pids and logs under $STACK_DIR"
    rm -rf "$STACK_DIR"/kafka/[0-9]* "$STACK_DIR/redis" "$STACK_PIDS" "$STACK_LOGS"
}

command=${1:-}
[[ $# -gt 0 ]] && shift
case $command in
    venv) cmd_venv ;;
    up) cmd_up ;;
    run) cmd_run ;;
    test) cmd_test "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    clean) cmd_clean ;;
    *)
        sed -n '2,/^set -euo/{/^set -euo/d;p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
