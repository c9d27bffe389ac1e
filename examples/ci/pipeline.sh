#!/bin/sh
# The steps of the GitOps pipeline for a sluice spec, shared by the GitHub
# Actions and GitLab CI examples here (and by the test that runs them), so
# the workflows only decide *when* each step runs.
#
#   pipeline.sh check SPEC              diagnostics, one JSON object per line;
#                                       with GITHUB_ACTIONS set, also ::error /
#                                       ::warning annotations; exit 1 on errors
#   pipeline.sh diff BASE_REF SPEC      route-level changes against the spec at
#                                       git BASE_REF (nothing when it is new)
#   pipeline.sh package SPEC [NAME]     reproducible .deb (SOURCE_DATE_EPOCH = the
#                                       spec's last commit), prints its path and
#                                       the spec SHA-256
#
# SLUICEC (default build/sluicec) and BUILD_DIR (default build-deb) may be set.
set -eu
SLUICEC=${SLUICEC:-build/sluicec}
cmd=${1:-}
shift || true

case "$cmd" in
check)
    spec=$1
    status=0
    "$SLUICEC" check --format=json "$spec" >sluicec-check.json || status=$?
    cat sluicec-check.json
    if [ -n "${GITHUB_ACTIONS:-}" ]; then
        # {"file":F,"line":L,"column":C,"severity":S,"message":M} -> annotation
        sed -n 's/^{"file":"\([^"]*\)","line":\([0-9]*\),"column":\([0-9]*\),"severity":"\([a-z]*\)","message":"\(.*\)"}$/::\4 file=\1,line=\2,col=\3::\5/p' \
            sluicec-check.json | sed 's/^::note /::notice /'
    fi
    exit "$status"
    ;;
diff)
    base=$1 spec=$2
    old=$(mktemp)
    trap 'rm -f "$old"' EXIT
    if ! git show "$base:$spec" >"$old" 2>/dev/null; then
        echo "$spec is new (not in $base)"
        exit 0
    fi
    echo "Routing changes in $spec against $base:"
    if "$SLUICEC" diff "$old" "$spec" >sluicec-diff.txt; then
        echo "(no route-level change)" >sluicec-diff.txt
    fi
    cat sluicec-diff.txt
    ;;
package)
    spec=$1
    name=${2:-$(basename "$spec" .yaml)}
    build=${BUILD_DIR:-build-deb}
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct -- "$spec" 2>/dev/null || echo 0)
    export SOURCE_DATE_EPOCH
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SPEC="$spec" \
        -DSLUICE_DEB_NAME="$name" >/dev/null
    cmake --build "$build" --target deb -j "$(nproc)" | grep -E '\.deb$|^spec sha256:'
    ;;
*)
    echo "usage: pipeline.sh check SPEC | diff BASE_REF SPEC | package SPEC [NAME]" >&2
    exit 2
    ;;
esac
