# shellcheck shell=bash
# The local stack's settings, for stack.sh and any script that wants the same environment:
#
#     source infra/scripts/stack-env.sh
#
# Reads `.env` (when present) without overriding the real environment, applies the defaults, and
# exports the connection settings the app and the tests read (DATABASE_URL, REDIS_URL,
# KAFKA_BOOTSTRAP_SERVERS). A connection variable that was already set (in the environment or in
# `.env`) marks that service as external: stack.sh then uses it as it is and starts nothing for it.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export REPO_ROOT

# KEY=VALUE lines; `#` comments, blank lines and an optional `export ` prefix are allowed, and one
# pair of surrounding quotes is removed. Variables already in the environment win.
stack_load_dotenv() {
    local file=$1 line key value
    [[ -f $file ]] || return 0
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=(.*)$ ]] || continue
        key=${BASH_REMATCH[2]}
        value=${BASH_REMATCH[3]}
        value=${value#"${value%%[![:space:]]*}"}
        value=${value%"${value##*[![:space:]]}"}
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
            value=${BASH_REMATCH[1]}
        else
            value=${value%%[[:space:]]#*}  # an unquoted value ends at " #"
        fi
        [[ -n ${!key+set} ]] || export "$key=$value"
    done <"$file"
}

stack_load_dotenv "$REPO_ROOT/.env"

# Where the stack keeps its state (Kafka jars and data, pids, logs); git-ignored.
STACK_DIR=${STACK_DIR:-$REPO_ROOT/.stack}
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)

export POSTGRES_PORT=${POSTGRES_PORT:-5432}
export REDIS_PORT=${REDIS_PORT:-6379}
export KAFKA_PORT=${KAFKA_PORT:-9092}
export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
export KAFKA_TOPIC=${KAFKA_TOPIC:-warehouse-movements}
export APP_HOST=${APP_HOST:-127.0.0.1}
export APP_PORT=${APP_PORT:-8000}
export STACK_DIR

# 1 when the user points at a service of their own (nothing is installed or started for it).
STACK_EXTERNAL_POSTGRES=0
STACK_EXTERNAL_REDIS=0
STACK_EXTERNAL_KAFKA=0
[[ -n ${DATABASE_URL:-} ]] && STACK_EXTERNAL_POSTGRES=1
[[ -n ${REDIS_URL:-} ]] && STACK_EXTERNAL_REDIS=1
[[ -n ${KAFKA_BOOTSTRAP_SERVERS:-} ]] && STACK_EXTERNAL_KAFKA=1
export STACK_EXTERNAL_POSTGRES STACK_EXTERNAL_REDIS STACK_EXTERNAL_KAFKA

export DATABASE_URL=${DATABASE_URL:-postgresql://warehouse:warehouse@127.0.0.1:$POSTGRES_PORT/warehouse}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}
