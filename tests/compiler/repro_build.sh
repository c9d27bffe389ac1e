#!/bin/sh
# Reproducible build: the gateway for examples/quickstart.yaml, configured
# and built in two fresh build directories at different absolute paths,
# must give byte-identical generated table C, re2c input and `sluice`
# binary. Also: `sluice --version` reports the spec SHA-256 that
# `sluicec build` printed.
#
# usage: repro_build.sh SOURCE_DIR CMAKE C_COMPILER
set -u
orig=$1 cmake=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# Both builds use one snapshot of the sources, so an edit made to the work
# tree while the test runs cannot pass for irreproducibility.
src="$tmp/src"
mkdir -p "$src"
(cd "$orig" && tar cf - --exclude='./build*' --exclude=./.git --exclude=node_modules .) |
  (cd "$src" && tar xf -)
spec="$src/examples/quickstart.yaml"
failed=0 passed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# Two paths of different lengths and depths, so nothing path-shaped can
# line up by accident.
a="$tmp/a" b="$tmp/elsewhere/deeper/build-b"
for dir in "$a" "$b"; do
  mkdir -p "$dir"
  if ! "$cmake" -S "$src" -B "$dir" -DSLUICE_TESTS=OFF -DSLUICE_SPEC="$spec" \
       -DCMAKE_C_COMPILER="$cc" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    echo "FAIL: configure in $dir"
    exit 1
  fi
  if ! "$cmake" --build "$dir" -j2 --target sluice >"$dir.build.log" 2>&1; then
    tail -40 "$dir.build.log"
    echo "FAIL: build in $dir"
    exit 1
  fi
done

same() {
  if cmp "$a/$1" "$b/$1"; then
    passed=$((passed + 1))
  else
    fail "$1 differs between the two build directories"
  fi
}
same sluice_spec.gen/sluice_table.c
same sluice_spec.gen/sluice_models.re
same sluice
# re2c's output names its input by absolute path in #line directives (the
# compiler's -ffile-prefix-map keeps that path out of the binary); apart
# from those paths it must match too.
strip_paths() { sed 's|^#line \([0-9]*\) ".*/\([^/]*\)"$|#line \1 "\2"|' "$1"; }
if [ "$(strip_paths "$a/sluice_spec.gen/sluice_models.c")" = \
     "$(strip_paths "$b/sluice_spec.gen/sluice_models.c")" ]; then
  passed=$((passed + 1))
else
  fail "sluice_models.c differs beyond #line paths"
fi

# The binary carries the hash sluicec computed for the spec.
want=$("$a/sluicec" build "$spec" -o "$tmp/gen" | sed -n 's/^spec sha256: //p')
got=$("$a/sluice" --version | sed -n 's/^spec sha256: //p')
file=$(sha256sum "$spec" | cut -d' ' -f1)
if [ -n "$want" ] && [ "$want" = "$got" ] && [ "$want" = "$file" ]; then
  passed=$((passed + 1))
else
  fail "sluice --version reports '$got', sluicec build printed '$want', file hash '$file'"
fi

echo "repro: $passed passed, $failed failed"
[ $failed -eq 0 ]
