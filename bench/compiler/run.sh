#!/bin/sh
# Compiler benchmark (not a test): how sluicec, re2c and the C compiler
# cope with a spec of N model entries and N keys (default 10000), and what
# a model-name lookup costs in the generated matcher at 10 and at N
# entries. Figures go to stdout.
#
# usage: bench/compiler/run.sh BUILD_DIR [N]
#   BUILD_DIR holds a built sluicec (cmake --build BUILD_DIR --target sluicec)
set -eu
build=$(cd "$1" && pwd)
n=${2:-10000}
here=$(cd "$(dirname "$0")" && pwd)
runtime="$here/../../runtime"
cc=${CC:-cc}
re2c=${RE2C:-re2c}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# wall and CPU seconds and peak RSS of one command, via GNU time when
# present (CPU time is the figure to compare on a busy machine)
measure() {
  label=$1
  shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "$label: %e s wall, %U s user + %S s sys cpu, %M KiB peak RSS" "$@" 2>"$tmp/time" >/dev/null ||
      { cat "$tmp/time"; exit 1; }
    tail -1 "$tmp/time"
  else
    start=$(date +%s.%N)
    "$@" >/dev/null
    echo "$label: $(echo "$(date +%s.%N) - $start" | bc) s wall"
  fi
}

"$here/gen_spec.sh" "$n" >"$tmp/big.yaml"
"$here/gen_spec.sh" 10 >"$tmp/small.yaml"
echo "spec: $n model entries, $n keys, $(wc -l <"$tmp/big.yaml") lines, $(wc -c <"$tmp/big.yaml") bytes"
measure "sluicec build" "$build/sluicec" build "$tmp/big.yaml" -o "$tmp/big" --quiet
echo "generated: sluice_table.c $(wc -c <"$tmp/big/sluice_table.c") bytes, sluice_models.re $(wc -c <"$tmp/big/sluice_models.re") bytes"
measure "re2c" "$re2c" -W --no-generation-date --no-version -o "$tmp/big/sluice_models.c" "$tmp/big/sluice_models.re"
measure "cc -O2 table" "$cc" -O2 -std=c11 -I"$runtime" -c -o "$tmp/big/t.o" "$tmp/big/sluice_table.c"
measure "cc -O2 matcher" "$cc" -O2 -std=c11 -c -o "$tmp/big/m.o" "$tmp/big/sluice_models.c"

for size in small big; do
  dir="$tmp/$size"
  if [ "$size" = small ]; then
    "$build/sluicec" build "$tmp/small.yaml" -o "$dir" --quiet
    "$re2c" -W --no-generation-date --no-version -o "$dir/sluice_models.c" "$dir/sluice_models.re"
    "$cc" -O2 -std=c11 -I"$runtime" -c -o "$dir/t.o" "$dir/sluice_table.c"
    "$cc" -O2 -std=c11 -c -o "$dir/m.o" "$dir/sluice_models.c"
  fi
  "$cc" -O2 -std=c11 -I"$runtime" -o "$dir/lookup" "$here/lookup.c" "$dir/t.o" "$dir/m.o"
  printf 'lookup (%s, every name): ' "$size"
  "$dir/lookup"
  printf 'lookup (%s, 13 names spread over the spec): ' "$size"
  "$dir/lookup" 13
done
