#!/usr/bin/env bash
# The console's and the API docs' front-end assets, vendored from the npm registry at pinned
# versions so that /docs, /redoc and /ui/ load nothing from the internet at run time.
#
#   vendor-assets.sh            fetch the pinned packages (`npm pack`), check every file against
#                               SHA256SUMS, then (only if all match) copy them into place
#   vendor-assets.sh --check    offline: the committed files match SHA256SUMS, nothing missing
#   vendor-assets.sh --update   fetch as above, copy, and rewrite SHA256SUMS (after a version bump:
#                               review the diff of SHA256SUMS and of the pins below)
#
# Destination: functions/console/static/vendor/<package>@<version>/, served by the app under
# /static/vendor/... (functions/console/routes.py); each package's LICENSE travels with it.
# The versions are also named in functions/http/offline_docs.py (docs) and in the console's templates
# (uPlot): change them together.
#
# One patch, applied after extraction and covered by SHA256SUMS: ReDoc's sidebar credit ("API docs
# by Redocly") loads its logo from cdn.redoc.ly whatever the options; the URL is replaced with an
# empty inline SVG (the credit's text and link stay). See redoc@*/PATCHED.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENDOR=$ROOT/functions/console/static/vendor
SUMS=$VENDOR/SHA256SUMS

# package@version  path-in-tarball...  (the tarball's top folder is `package/`)
PINS=(
    "swagger-ui-dist@5.35.0 swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt"
    # 2.x: the UMD standalone bundle FastAPI's get_redoc_html loads with a plain <script>
    # (3.x ships an ES module, which a plain <script> cannot run).
    "redoc@2.5.4 bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE"
    "uplot@1.6.32 dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE"
)

die() { echo "vendor-assets: $*" >&2; exit 1; }

check() {
    [[ -f $SUMS ]] || die "$SUMS is missing"
    (cd "$VENDOR" && sha256sum --quiet --strict -c SHA256SUMS) || die "vendored files differ from SHA256SUMS"
    # Nothing vendored that the sums do not cover.
    local listed actual
    listed=$(awk '{print $2}' "$SUMS" | sort)
    actual=$(cd "$VENDOR" && find . -type f ! -name SHA256SUMS | sed 's#^\./##' | sort)
    [[ $listed == "$actual" ]] || die "files under $VENDOR and SHA256SUMS disagree:
$(diff <(echo "$listed") <(echo "$actual") || true)"
    echo "vendor-assets: $(wc -l <"$SUMS") files match SHA256SUMS"
}

REDOC_LOGO_URL="https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_SVG="data:image/svg+xml,%3Csvg%20xmlns='http://www.w3.org/2000/svg'%20width='1'%20height='1'/%3E"

patch_redoc() {
    local dir file count
    for dir in "$1"/redoc@*; do
        file=$dir/redoc.standalone.js
        count=$(grep -o "$REDOC_LOGO_URL" "$file" | wc -l)
        [[ $count == 1 ]] || die "$file: expected the CDN logo URL once, found it $count times"
        sed -i "s#$REDOC_LOGO_URL#$EMPTY_SVG#" "$file"
        cat >"$dir/PATCHED.txt" <<EOF
redoc.standalone.js differs from the npm package in one string: the sidebar credit's logo,
$REDOC_LOGO_URL, is replaced with an empty inline SVG
so that /redoc requests nothing from the internet. Applied by infra/scripts/vendor-assets.sh.
EOF
    done
}

fetch() {
    local mode=$1 pin spec files package file
    command -v npm >/dev/null || die "npm is needed to fetch the packages (apt-get install npm)"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    local work=$WORK
    mkdir -p "$work/out"
    for pin in "${PINS[@]}"; do
        read -r spec files <<<"$pin"
        package=${spec%@*}
        echo "vendor-assets: npm pack $spec"
        (cd "$work" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
        mkdir -p "$work/x/$spec" "$work/out/$spec"
        tar -xzf "$work/${package//\//-}-${spec##*@}.tgz" -C "$work/x/$spec"
        for file in $files; do
            [[ -f $work/x/$spec/package/$file ]] || die "$spec has no $file"
            cp "$work/x/$spec/package/$file" "$work/out/$spec/$(basename "$file")"
        done
    done
    patch_redoc "$work/out"
    if [[ $mode == update ]]; then
        (cd "$work/out" && find . -type f | sed 's#^\./##' | sort | xargs sha256sum) >"$work/SHA256SUMS"
    else
        [[ -f $SUMS ]] || die "$SUMS is missing (use --update to create it)"
        cp "$SUMS" "$work/SHA256SUMS"
        (cd "$work/out" && sha256sum --quiet --strict -c ../SHA256SUMS) ||
            die "the registry's files differ from SHA256SUMS: nothing was changed"
    fi
    rm -rf "$VENDOR"
    mkdir -p "$VENDOR"
    cp -r "$work/out/." "$VENDOR/"
    cp "$work/SHA256SUMS" "$SUMS"
    check
}

case ${1:-} in
    "") fetch verify ;;
    --check) check ;;
    --update) fetch update ;;
    *) sed -n '2,/^set -euo/{/^set -euo/d;p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
