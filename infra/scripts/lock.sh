#!/usr/bin/env bash
# `make lock`: after a change to the dependencies (pyproject.toml, tools/lint/pyproject.toml),
# re-lock and regenerate every file made from the locks:
#
#   uv.lock                    the project: runtime, `local` and `dev` groups (uv lock)
#   tools/lint/uv.lock         the lint tools' own environment (uv lock --project tools/lint)
#   requirements.txt           the runtime alone, with hashes: what `sam build` installs into the
#                              Lambda functions (uv export)
#   tools/uv/requirements.txt  the pinned uv with its hashes, for pip to bootstrap it (from uv.lock)
#
#   lock.sh                          re-lock (keeps every version the lock can keep), regenerate
#   lock.sh --upgrade-package NAME   the same, moving NAME to its newest allowed version
#   lock.sh --check                  change nothing; exit 1 when any of the four is out of date
#                                    (offline: what tests/integration/test_dependencies.py runs)
set -euo pipefail

# shellcheck source=infra/scripts/stack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack-env.sh"
# shellcheck source=infra/scripts/stack-common.sh
source "$REPO_ROOT/infra/scripts/stack-common.sh"
# shellcheck source=infra/scripts/stack-python.sh
source "$REPO_ROOT/infra/scripts/stack-python.sh"
cd "$REPO_ROOT"

REQUIREMENTS_HEADER="# Generated from uv.lock by \`make lock\` (infra/scripts/lock.sh): do not edit.
# The runtime dependencies alone, with hashes: what \`sam build\` installs into every Lambda
# function. Change pyproject.toml, then run \`make lock\`."

# requirements.txt as it should be, on stdout.
runtime_requirements() {
    printf '%s\n' "$REQUIREMENTS_HEADER"
    "$UV" export --quiet --frozen --no-default-groups --no-emit-project --no-header \
        --format requirements-txt
}

# tools/uv/requirements.txt as it should be: uv's pin and hashes, read from uv.lock.
uv_requirements() {
    "$PY" - <<'PY'
import tomllib

with open("uv.lock", "rb") as fh:
    (uv,) = [p for p in tomllib.load(fh)["package"] if p["name"] == "uv"]
hashes = sorted(f["hash"] for f in [*uv.get("wheels", []), *([uv["sdist"]] if "sdist" in uv else [])])
print("# The uv that infra/scripts/stack.sh and the Dockerfile install with pip, hash-checked. Generated")
print("# from uv.lock (the dev group's uv) by `make lock`: do not edit. Its version must equal")
print("# tool.uv.required-version in pyproject.toml and tools/lint/pyproject.toml.")
print(f"uv=={uv['version']} \\")
print(" \\\n".join(f"    --hash={h}" for h in hashes))
PY
}

PY=$(find_python) || die "CPython 3.13 not found (set PYTHON=/path/to/python3.13)"
ensure_uv "$PY"

if [[ ${1:-} == --check ]]; then
    status=0
    for project in . tools/lint; do
        UV_OFFLINE=1 "$UV" lock --quiet --check --project "$project" --python "$PY" ||
            { echo "lock.sh: $project/uv.lock is out of date with $project/pyproject.toml" >&2; status=1; }
    done
    diff -u requirements.txt <(runtime_requirements) >&2 ||
        { echo "lock.sh: requirements.txt is out of date with uv.lock" >&2; status=1; }
    diff -u tools/uv/requirements.txt <(uv_requirements) >&2 ||
        { echo "lock.sh: tools/uv/requirements.txt is out of date with uv.lock" >&2; status=1; }
    ((status == 0)) && echo "lock.sh: the locks and the files made from them are up to date"
    ((status == 0)) || echo "lock.sh: run \`make lock\`" >&2
    exit "$status"
fi

for project in . tools/lint; do
    "$UV" lock --project "$project" --python "$PY" "$@"
done
runtime_requirements >requirements.txt.new && mv requirements.txt.new requirements.txt
uv_requirements >tools/uv/requirements.txt.new && mv tools/uv/requirements.txt.new tools/uv/requirements.txt
echo "lock.sh: uv.lock, tools/lint/uv.lock, requirements.txt and tools/uv/requirements.txt regenerated"
