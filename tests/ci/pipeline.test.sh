#!/bin/sh
# Runs what examples/ci/github-actions.yml and gitlab-ci.yml run, through
# the same examples/ci/pipeline.sh: check (JSON lines, GitHub annotations,
# exit 1 on an error) and diff against a base branch in a scratch git
# repository, then package in this source tree with this build directory
# (already configured for SPEC, so it only packs), twice: same .deb bytes,
# and the spec SHA-256 printed.
# usage: pipeline.test.sh SRC BUILD SLUICEC SPEC
set -eu
src=$1 build=$2 sluicec=$3 spec=$4
pipeline="$src/examples/ci/pipeline.sh"
export SLUICEC="$sluicec"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$t"
git init -q -b main repo && cd repo
git config user.email ci@example.invalid && git config user.name ci
cp "$spec" spec.yaml
git add spec.yaml && git commit -qm base
git checkout -q -b change
sed 's/^models:$/models:\n  extra-model: { targets: [demo] }/' spec.yaml >s && mv s spec.yaml
grep -q extra-model spec.yaml || fail "test setup: no model added"

"$pipeline" check spec.yaml >check.out || fail "check of a good spec failed: $(cat check.out)"
"$pipeline" diff main spec.yaml >diff.out
grep -q "Routing changes in spec.yaml against main" diff.out || fail "diff header: $(cat diff.out)"
grep -q "model 'extra-model': added" diff.out || fail "diff body: $(cat diff.out)"
echo "diff: $(tail -n 1 diff.out)"

sed 's/targets: \[demo\]/targets: [demoo]/' spec.yaml >bad.yaml
if GITHUB_ACTIONS=true "$pipeline" check bad.yaml >bad.out; then fail "a bad spec passed"; fi
grep -q '"severity":"error"' bad.out || fail "no JSON diagnostic: $(cat bad.out)"
grep -q '^::error file=bad.yaml,line=[0-9]*,col=[0-9]*::' bad.out || fail "no annotation: $(cat bad.out)"
echo "check: $(grep '^::error' bad.out | head -n 1)"

cd "$src"
sha=$("$build/sluice" --version | sed -n 's/^spec sha256: //p')
for i in 1 2; do
    BUILD_DIR="$build" "$pipeline" package "$spec" >"$t/pkg$i.out" || fail "package: $(cat "$t/pkg$i.out")"
    deb=$(grep '\.deb$' "$t/pkg$i.out")
    sha256sum "$deb" | cut -d' ' -f1 >"$t/deb$i.sha"
done
grep -q "^spec sha256: $sha$" "$t/pkg1.out" || fail "package does not print the spec SHA-256"
cmp "$t/deb1.sha" "$t/deb2.sha" || fail "two package runs differ"
echo "package: $(basename "$deb") sha256 $(cat "$t/deb1.sha"), spec $sha"
