# shellcheck shell=bash
# Redis for the local stack (sourced by stack.sh): a daemonized redis-server without persistence.

redis_needs_install() {
    ((STACK_EXTERNAL_REDIS == 0)) && ! port_open 127.0.0.1 "$REDIS_PORT" && ! command -v redis-server >/dev/null
}

ensure_redis() {
    local pidfile=$STACK_PIDS/redis-$REDIS_PORT.pid logfile=$STACK_LOGS/redis.log pid
    if ((STACK_EXTERNAL_REDIS)); then
        log "redis: using REDIS_URL as set (nothing started)"
        return 0
    fi
    if port_open 127.0.0.1 "$REDIS_PORT"; then
        log "redis: reusing the server on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    warn_ephemeral_ports "$REDIS_PORT"
    command -v redis-server >/dev/null || die "redis-server not found"
    mkdir -p "$STACK_DIR/redis"
    log "redis: starting on 127.0.0.1:$REDIS_PORT (log $logfile)"
    rm -f "$pidfile"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
        --pidfile "$pidfile" --logfile "$logfile" --dir "$STACK_DIR/redis" \
        --save '' --appendonly no </dev/null 9>&- ||
        { log_tail "$logfile"; die "redis-server did not start (log: $logfile)"; }
    wait_for_port 127.0.0.1 "$REDIS_PORT" 30 "" Redis "$logfile"
    pid=$(cat "$pidfile" 2>/dev/null) || die "redis-server wrote no pid file $pidfile"
    pid_matches "$pid" redis-server || die "pid file $pidfile does not name a running redis-server"
}

stop_redis() {
    local pidfile=$1 pid
    pid=$(cat "$pidfile" 2>/dev/null) || true
    if pid_matches "$pid" redis-server; then
        log "redis: stopping pid $pid"
        stop_pid "$pid" redis-server TERM
    fi
    rm -f "$pidfile"
}
