#!/bin/sh
# Golden tests for sluicec, run by ctest (see CMakeLists.txt here):
#   bad/NAME.yaml   `sluicec check NAME.yaml` must print exactly NAME.expected
#                   on stderr (run from bad/ so paths show as written; the
#                   certificates the tls specs name are in bad/tls/) and
#                   exit 1, or 0 when NAME.expected holds warnings only;
#   good/NAME.yaml  `sluicec check` must exit 0, `sluicec build` must write NAME.table.c and NAME.models.re
#                   byte for byte, twice into two directories identically,
#                   leave unchanged files untouched, and the .re must pass
#                   `re2c -W` silently and the C must compile;
#   examples/*.yaml must pass `sluicec check --Werror` and compile likewise.
# With SLUICE_UPDATE_GOLDEN=1 the expected files are rewritten instead.
#
# usage: run_golden.sh SLUICEC RE2C CC RUNTIME_DIR EXAMPLES_DIR
set -u

sluicec=$1 re2c=$2 cc=$3 runtime=$4 examples=$5
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0
passed=0
update=${SLUICE_UPDATE_GOLDEN:-0}

fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

# compare EXPECTED ACTUAL LABEL
compare() {
  if [ "$update" = 1 ]; then
    cp "$2" "$1"
    return 0
  fi
  if [ ! -f "$1" ]; then
    fail "$3: missing expected file $(basename "$1")"
    return 1
  fi
  if ! diff -u "$1" "$2"; then
    fail "$3: output differs from $(basename "$1")"
    return 1
  fi
  return 0
}

# compiles DIR/sluice_models.re and DIR/sluice_table.c; LABEL
compile_generated() {
  if ! "$re2c" -W --no-generation-date --no-version -o "$1/sluice_models.c" \
      "$1/sluice_models.re" 2>"$1/re2c.err"; then
    cat "$1/re2c.err"
    fail "$2: re2c rejected the matcher"
    return 1
  fi
  if [ -s "$1/re2c.err" ]; then
    cat "$1/re2c.err"
    fail "$2: re2c warned about the matcher"
    return 1
  fi
  if ! "$cc" -std=c11 -Wall -Wextra -Werror -I"$runtime" -c -o "$1/t.o" "$1/sluice_table.c" ||
     ! "$cc" -std=c11 -Wall -Wextra -Werror -c -o "$1/m.o" "$1/sluice_models.c"; then
    fail "$2: generated C does not compile"
    return 1
  fi
  return 0
}

# --- bad specs: exact diagnostics and exit status ------------------------
# A spec whose expected diagnostics hold an error must exit 1; one that
# only warns (plain HTTP, unused provider...) must still compile: exit 0.
# The clock is pinned so certificate expiry diagnostics (bad/tls/) never
# change with the date: 2030-01-01 00:00 UTC.
for spec in "$here"/bad/*.yaml; do
  name=$(basename "$spec" .yaml)
  (cd "$here/bad" && SLUICEC_NOW=1893456000 "$sluicec" check "$name.yaml" >/dev/null 2>"$tmp/$name.err")
  rc=$?
  want=0
  if [ "$update" = 1 ]; then
    grep -q ': error: ' "$tmp/$name.err" && want=1
  elif grep -q ': error: ' "$here/bad/$name.expected" 2>/dev/null; then
    want=1
  fi
  if [ $rc -ne $want ]; then
    cat "$tmp/$name.err"
    fail "bad/$name: exit status $rc (want $want)"
    continue
  fi
  compare "$here/bad/$name.expected" "$tmp/$name.err" "bad/$name" && passed=$((passed + 1))
done

# --- good specs: exact output, determinism, compiles ----------------------
# The files good specs name (good/tls) go along to the copy, so the copy
# checks too: the table must hold the names as written, not where the
# spec sits.
[ -e "$here/good/tls" ] && cp -RL "$here/good/tls" "$tmp/tls"
for spec in "$here"/good/*.yaml; do
  name=$(basename "$spec" .yaml)
  a="$tmp/good-$name-a" b="$tmp/good-$name-b"
  if ! (cd "$here/good" && "$sluicec" build "$name.yaml" -o "$a" --quiet 2>"$tmp/$name.err") ||
     [ -s "$tmp/$name.err" ]; then
    cat "$tmp/$name.err"
    fail "good/$name: sluicec build failed or warned"
    continue
  fi
  ok=1
  if ! (cd "$here/good" && "$sluicec" check "$name.yaml" >/dev/null 2>&1); then
    fail "good/$name: sluicec check did not exit 0"
    ok=0
  fi
  compare "$here/good/$name.table.c" "$a/sluice_table.c" "good/$name" || ok=0
  compare "$here/good/$name.models.re" "$a/sluice_models.re" "good/$name" || ok=0
  # Same spec from another directory and path: same bytes.
  cp "$spec" "$tmp/$name-copy.yaml"
  "$sluicec" build "$tmp/$name-copy.yaml" -o "$b/nested" --quiet || ok=0
  if ! cmp -s "$a/sluice_table.c" "$b/nested/sluice_table.c" ||
     ! cmp -s "$a/sluice_models.re" "$b/nested/sluice_models.re"; then
    fail "good/$name: two builds differ"
    ok=0
  fi
  # A rebuild of an unchanged spec must not touch the outputs.
  touch -t 200001010000 "$a/sluice_table.c" "$a/sluice_models.re"
  (cd "$here/good" && "$sluicec" build "$name.yaml" -o "$a" --quiet) || ok=0
  if [ -n "$(find "$a" -name 'sluice_*' -newer "$spec")" ]; then
    fail "good/$name: unchanged output was rewritten"
    ok=0
  fi
  compile_generated "$a" "good/$name" || ok=0
  [ $ok = 1 ] && passed=$((passed + 1))
done

# --- examples: clean check, and they compile -----------------------------
for spec in "$examples"/*.yaml; do
  name=$(basename "$spec" .yaml)
  out="$tmp/example-$name"
  if ! "$sluicec" check --Werror "$spec"; then
    fail "examples/$name.yaml does not pass sluicec check --Werror"
    continue
  fi
  "$sluicec" build "$spec" -o "$out" --quiet || { fail "examples/$name: build failed"; continue; }
  compile_generated "$out" "examples/$name" && passed=$((passed + 1))
done

echo "golden: $passed passed, $failed failed"
[ $failed -eq 0 ]
