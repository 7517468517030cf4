# shellcheck shell=bash
# PostgreSQL for the local stack (sourced by stack.sh).
#
# PostgreSQL refuses to run as root, and the postgres OS user may not be able to read the
# repository (CI clones into a mode-700 temporary directory), so our own cluster lives under
# /var/lib/postgresql/warehouse-stock/<hash of STACK_DIR>-<port>/ and runs as `postgres`: data in
# data/, the unix socket in the directory itself. Its log is written through a file descriptor
# opened by us, so it still lands in .stack/logs/postgres.log.

PG_MIN_MAJOR=15
PG_APP_USER=warehouse
PG_APP_PASSWORD=warehouse
PG_APP_DB=warehouse
PG_ROOT=${PG_ROOT:-/var/lib/postgresql/warehouse-stock}

# The newest installed server's bin directory with major version >= PG_MIN_MAJOR, if any.
pg_bindir() {
    local dir major best="" best_major=0
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb && -x $dir/pg_ctl ]] || continue
        major=$(basename "$(dirname "$dir")")
        [[ $major =~ ^[0-9]+$ ]] || continue
        if ((major >= PG_MIN_MAJOR && major > best_major)); then
            best=$dir
            best_major=$major
        fi
    done
    [[ -n $best ]] && printf '%s\n' "$best"
}

# Our clusters are named after STACK_DIR (one per clone) and the port.
pg_stack_hash() { printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12; }

pg_cluster_dir() { printf '%s/%s-%s\n' "$PG_ROOT" "$(pg_stack_hash)" "$POSTGRES_PORT"; }

# Run a command as the postgres OS user from `/` (it may not be allowed into our working tree).
as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

postgres_needs_install() {
    ((STACK_EXTERNAL_POSTGRES == 0)) && ! port_open 127.0.0.1 "$POSTGRES_PORT" && [[ -z $(pg_bindir) ]]
}

ensure_postgres() {
    if ((STACK_EXTERNAL_POSTGRES)); then
        log "postgres: using DATABASE_URL as set (nothing started)"
        return 0
    fi
    if port_open 127.0.0.1 "$POSTGRES_PORT"; then
        log "postgres: reusing the server on 127.0.0.1:$POSTGRES_PORT"
    else
        start_postgres
    fi
    ensure_postgres_role_and_db
}

# Server settings sized for the ledger's write load (docs/deployment.md names the same for RDS).
# initdb's defaults (shared_buffers 128 MB, max_wal_size 1 GB, no WAL compression) make a Kafka
# drain checkpoint every few seconds, and each checkpoint makes the next change of every B-tree
# leaf (random UUID keys: most of them) write a full 8 KiB page image into the WAL.
#   shared_buffers 512MB        the bench's and a day's working set stay in PostgreSQL's cache
#                               (POSTGRES_SHARED_BUFFERS: several stacks share one development box)
#   max_wal_size 4GB, checkpoint_timeout 15min
#                               checkpoints by time, not every few seconds of writes: fewer
#                               full-page images (min_wal_size 1GB keeps the segments recycled)
#   wal_compression lz4         the full-page images that remain, compressed (PostgreSQL 15+)
#   checkpoint_completion_target 0.9 (the default since 14) spreads the checkpoint's writes
# A setting changes on the server's next start (`make stop`, then `make up`).
postgres_tuning() {
    printf '%s' "-c shared_buffers=${POSTGRES_SHARED_BUFFERS:-512MB} -c max_wal_size=4GB -c min_wal_size=1GB"
    printf '%s' " -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9 -c wal_compression=lz4"
}

start_postgres() {
    local bindir cluster data logfile pid
    warn_ephemeral_ports "$POSTGRES_PORT"
    bindir=$(pg_bindir) || die "no PostgreSQL >= $PG_MIN_MAJOR server found under /usr/lib/postgresql"
    [[ $EUID -eq 0 ]] || die "starting PostgreSQL as the postgres user needs root; or set DATABASE_URL"
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is the postgresql package installed?)"
    cluster=$(pg_cluster_dir)
    data=$cluster/data
    logfile=$STACK_LOGS/postgres.log
    mkdir -p "$cluster"
    chown postgres:postgres "$PG_ROOT" "$cluster"
    chmod 755 "$PG_ROOT" "$cluster"
    if [[ ! -f $data/PG_VERSION ]]; then
        log "postgres: initdb $data ($(basename "$(dirname "$bindir")"))"
        as_postgres "$bindir/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
            --auth-local=trust --auth-host=scram-sha-256 >>"$logfile" 2>&1 ||
            { log_tail "$logfile"; die "initdb failed"; }
    fi
    # A session that ended killed the server: its lock file names a pid that may now be reused.
    pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || pid=""
    if [[ -n $pid ]] && ! pid_matches "$pid" postgres; then
        log "postgres: removing the stale $data/postmaster.pid (pid $pid is not running PostgreSQL)"
        rm -f "$data/postmaster.pid" "$cluster/.s.PGSQL.$POSTGRES_PORT.lock"
    fi
    log "postgres: starting on 127.0.0.1:$POSTGRES_PORT (data $data, log $logfile)"
    # The postmaster inherits our log file descriptor; fd 9 (the stack lock) must not leak to it.
    as_postgres "$bindir/pg_ctl" -D "$data" -w -t 60 \
        -o "-h 127.0.0.1 -p $POSTGRES_PORT -k $cluster -c max_connections=200 $(postgres_tuning)" \
        start >>"$logfile" 2>&1 </dev/null 9>&- ||
        { log_tail "$logfile"; die "PostgreSQL did not start (log: $logfile)"; }
    pid=$(head -n 1 "$data/postmaster.pid")
    printf '%s\n' "$pid" >"$STACK_PIDS/postgres-$POSTGRES_PORT.pid"
    printf 'data=%s\nbindir=%s\n' "$data" "$bindir" >"$STACK_PIDS/postgres-$POSTGRES_PORT.info"
    wait_for_port 127.0.0.1 "$POSTGRES_PORT" 30 "$pid" PostgreSQL "$logfile"
}

# Can the app's role log in to the app's database over TCP with its password?
postgres_app_login_ok() {
    "$VENV_PY" - "$DATABASE_URL" <<'PY' 2>/dev/null
import sys

import psycopg

psycopg.connect(sys.argv[1], connect_timeout=5).close()
PY
}

# The unix socket directory of the server on POSTGRES_PORT: ours, Debian's, or another clone's.
pg_socket_dir() {
    local dir
    for dir in "$(pg_cluster_dir)" /var/run/postgresql /tmp "$PG_ROOT"/*; do
        if [[ -S $dir/.s.PGSQL.$POSTGRES_PORT ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 1
}

ensure_postgres_role_and_db() {
    local sockdir psql bindir
    postgres_app_login_ok && return 0
    log "postgres: creating role $PG_APP_USER and database $PG_APP_DB"
    sockdir=$(pg_socket_dir) ||
        die "cannot log in as $PG_APP_USER on 127.0.0.1:$POSTGRES_PORT and found no local socket to fix that"
    bindir=$(pg_bindir) || true
    psql=${bindir:+$bindir/psql}
    [[ -n $psql ]] || psql=$(command -v psql) || die "psql not found"
    as_postgres "$psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$POSTGRES_PORT" -U postgres -d postgres \
        >>"$STACK_LOGS/postgres.log" 2>&1 <<SQL || { log_tail "$STACK_LOGS/postgres.log"; die "creating the role failed"; }
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_USER') THEN
        CREATE ROLE $PG_APP_USER LOGIN CREATEDB PASSWORD '$PG_APP_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_APP_DB OWNER $PG_APP_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB') \gexec
SQL
    postgres_app_login_ok ||
        die "role $PG_APP_USER still cannot log in to $PG_APP_DB on 127.0.0.1:$POSTGRES_PORT (wrong password?)"
}

stop_postgres() {
    local pidfile=$1 pid port info data bindir
    pid=$(cat "$pidfile" 2>/dev/null) || true
    port=$(basename "$pidfile" .pid)
    port=${port#postgres-}
    info=$STACK_PIDS/postgres-$port.info
    data=$(sed -n 's/^data=//p' "$info" 2>/dev/null) || true
    bindir=$(sed -n 's/^bindir=//p' "$info" 2>/dev/null) || true
    if pid_matches "$pid" postgres && [[ -n $data && -x $bindir/pg_ctl ]] &&
        [[ $(head -n 1 "$data/postmaster.pid" 2>/dev/null) == "$pid" ]]; then
        log "postgres: stopping pid $pid (port $port)"
        as_postgres "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null ||
            stop_pid "$pid" postgres INT
    fi
    rm -f "$pidfile" "$info"
}
