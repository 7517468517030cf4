# shellcheck shell=bash
# The project's Python environments, for stack.sh and lock.sh (sourced, never run; needs
# stack-env.sh and stack-common.sh first):
#
#   .venv              CPython 3.13; the runtime, the local app and the dev tools from uv.lock,
#                      plus the project itself (editable: .venv/bin/warehouse-stock)
#   tools/lint/.venv   the lint tools (cfn-lint, aws-sam-translator, check-jsonschema) from
#                      tools/lint/uv.lock, kept apart so they never pick the runtime's versions
#
# Both are made by one pinned uv (tools/uv/requirements.txt), which is installed once per machine
# with pip from PyPI, hash-checked, into ~/.cache/warehouse-stock/uv-<version>. Each environment is
# synced again only when its lock (or pyproject.toml) changed: a hash is kept inside it.

VENV=$REPO_ROOT/.venv
# shellcheck disable=SC2034  # used by stack.sh
VENV_PY=$VENV/bin/python
LINT_VENV=$REPO_ROOT/tools/lint/.venv
UV_REQUIREMENTS=$REPO_ROOT/tools/uv/requirements.txt
UV_VERSION=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$UV_REQUIREMENTS")
UV_HOME=${UV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/warehouse-stock/uv-$UV_VERSION}
UV=$UV_HOME/bin/uv
# The interpreter is always the one find_python chose, never one uv downloads.
export UV_PYTHON_DOWNLOADS=never
# TLS roots from the system store (where a site's own CA is installed), not uv's bundled ones.
export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}

# Is $1 a CPython 3.13 (the Lambda runtime is python3.13, and the suite is tested on it)?
python_ok() {
    "$1" -c 'import sys; sys.exit(sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 13))' \
        >/dev/null 2>&1
}

# The interpreter .venv is made with, by its real path: PYTHON when set; else python3.13 on the
# PATH; else pyenv's newest 3.13.x by path (pyenv's shims refuse a version that is not selected).
find_python() {
    local candidate root pyenv_pythons=()
    if [[ -n ${PYTHON:-} ]]; then
        python_ok "$PYTHON" || die "PYTHON=$PYTHON is not CPython 3.13"
        "$PYTHON" -c 'import sys; print(sys.executable)'
        return 0
    fi
    root=$(pyenv root 2>/dev/null) || root=${PYENV_ROOT:-$HOME/.pyenv}
    mapfile -t pyenv_pythons < <(printf '%s\n' "$root"/versions/3.13.*/bin/python3.13 | sort -V -r)
    for candidate in python3.13 "${pyenv_pythons[@]}"; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        if python_ok "$candidate"; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

uv_ready() {
    [[ -f $UV_HOME/.complete && -x $UV ]] && [[ $("$UV" --version 2>/dev/null) == "uv $UV_VERSION"* ]]
}

# The pinned uv, installed with pip (hash-checked) when missing. Machine-wide, so clones share it;
# fd 8 serialises clones that get here at once.
ensure_uv() {
    local python=$1
    uv_ready && return 0
    mkdir -p "$(dirname "$UV_HOME")"
    exec 8>>"$UV_HOME.lock"
    flock -w 600 8 || die "gave up waiting for $UV_HOME.lock"
    if ! uv_ready; then
        log "uv: installing uv $UV_VERSION into $UV_HOME (pip from PyPI, hash-checked)"
        rm -rf "$UV_HOME"
        "$python" -m venv "$UV_HOME" || die "$python -m venv $UV_HOME failed"
        "$UV_HOME/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            --only-binary=:all: --require-hashes -r "$UV_REQUIREMENTS" ||
            die "pip install uv==$UV_VERSION failed"
        "$UV" --version >/dev/null || die "$UV does not run"
        touch "$UV_HOME/.complete"
    fi
    exec 8>&-
}

# Does the environment at $1 run, on CPython 3.13?
venv_ok() {
    [[ -x $1/bin/python ]] && python_ok "$1/bin/python"
}

# uv sync --frozen of one project into one environment, when its lock changed since the last sync.
#   sync_env NAME PROJECT_DIR ENV_DIR [uv sync options...]
sync_env() {
    local name=$1 project=$2 env=$3 stamp want python
    shift 3
    stamp=$env/.uv-sync.sha256
    if [[ -e $env ]] && ! venv_ok "$env"; then
        log "$name: $env is broken or not Python 3.13, recreating it"
        rm -rf "$env"
    fi
    want=$(cat "$project/uv.lock" "$project/pyproject.toml" "$UV_REQUIREMENTS" | sha256sum | cut -d' ' -f1)
    [[ -f $stamp && $(cat "$stamp") == "$want" ]] && venv_ok "$env" && return 0
    python=$(find_python) || die "CPython 3.13 not found (set PYTHON=/path/to/python3.13)"
    ensure_uv "$python"
    log "$name: uv sync --frozen into $env ($("$python" --version 2>&1))"
    UV_PROJECT_ENVIRONMENT=$env "$UV" sync --quiet --frozen --project "$project" --python "$python" "$@" ||
        die "uv sync into $env failed"
    printf '%s\n' "$want" >"$stamp"
}

# .venv: the runtime, the local app and the dev tools (tool.uv.default-groups), the project editable.
ensure_venv() {
    sync_env venv "$REPO_ROOT" "$VENV"
}

# tools/lint/.venv: the lint tools alone.
ensure_lint_venv() {
    sync_env lint-venv "$REPO_ROOT/tools/lint" "$LINT_VENV"
}
