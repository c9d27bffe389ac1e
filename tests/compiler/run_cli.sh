#!/bin/sh
# Command-line behaviour of sluicec that the golden runner does not cover:
# `check --format=json`, exit statuses of `explain` and `diff` (with a spec
# on stdin), and `keygen` (hash of the printed key, fresh randomness).
#
# usage: run_cli.sh SLUICEC EXAMPLES_DIR TESTS_COMPILER_DIR
set -u
sluicec=$1 examples=$2 here=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0 failed=0

ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# expect_rc WANT LABEL CMD...
expect_rc() {
  want=$1 label=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  if [ $rc -eq "$want" ]; then ok; else cat "$tmp/err"; fail "$label: exit $rc, want $want"; fi
}

# --- check --format=json ---------------------------------------------------
(cd "$here/bad" && "$sluicec" check --format=json unknown-kind.yaml >"$tmp/json" 2>"$tmp/err")
rc=$?
[ $rc -eq 1 ] && ok || fail "check --format=json: exit $rc, want 1"
[ -s "$tmp/err" ] && fail "check --format=json wrote to stderr: $(cat "$tmp/err")" || ok
want='{"file":"unknown-kind.yaml","line":3,"column":19,"severity":"error","message":"provider '"'"'openai'"'"' has unknown kind '"'"'opnai'"'"' (did you mean '"'"'openai'"'"'?)"}'
if grep -qxF "$want" "$tmp/json"; then ok; else cat "$tmp/json"; fail "check --format=json: line not found"; fi
# Every line one object with the five fields.
if [ "$(grep -cv '^{"file":"[^"]*","line":[0-9]*,"column":[0-9]*,"severity":"\(error\|warning\|note\)","message":".*"}$' "$tmp/json")" = 0 ]; then ok; else fail "check --format=json: malformed line"; fi
(cd "$here/bad" && "$sluicec" check --format json secret-anywhere.yaml >"$tmp/json" 2>&1)
if grep -q 'AIzaSy\|ghp_A1\|Zx9Yw8' "$tmp/json"; then fail "json output leaks a secret"; else ok; fi
expect_rc 0 "check --format=json clean" "$sluicec" check --format=json "$examples/quickstart.yaml"
[ -s "$tmp/out" ] && fail "clean check printed JSON: $(cat "$tmp/out")" || ok
expect_rc 2 "check --format=xml" "$sluicec" check --format=xml "$examples/quickstart.yaml"

# --- explain -----------------------------------------------------------------
expect_rc 0 "explain match" "$sluicec" explain "$examples/multi-provider.yaml" --model smart
grep -q "^   1. \[smart\] anthropic/claude-sonnet-4-5$" "$tmp/out" && ok || fail "explain: plan line"
expect_rc 0 "explain --key" "$sluicec" explain "$examples/team-budgets.yaml" --model smart --key bob --format=json
grep -q '"key":{"name":"bob","allowed":true' "$tmp/out" && ok || fail "explain --key json"
# guardrails: from the entry, the key and the key's team; valid JSON
expect_rc 0 "explain guardrails" "$sluicec" explain "$here/good/guardrails.yaml" --model chat --key alice
grep -q "^  pii (via model entry): request redact, response log, restore$" "$tmp/out" && \
  grep -q "^  codenames (via key): request block, response block$" "$tmp/out" && \
  grep -q "^  audit (via team): request log, response log$" "$tmp/out" && ok || fail "explain guardrails text"
expect_rc 0 "explain guardrails json" "$sluicec" explain "$here/good/guardrails.yaml" --model bulk --key bob --format=json
grep -q '"guardrails":\[\]}$' "$tmp/out" && ok || fail "explain guardrails json (none for bulk and bob)"
expect_rc 1 "explain no match" "$sluicec" explain "$examples/team-budgets.yaml" --model nope
expect_rc 2 "explain unknown key" "$sluicec" explain "$examples/team-budgets.yaml" --model smart --key eve
expect_rc 2 "explain no --model" "$sluicec" explain "$examples/team-budgets.yaml"
expect_rc 2 "explain bad spec" "$sluicec" explain "$here/bad/unknown-kind.yaml" --model gpt-4o
expect_rc 2 "explain missing file" "$sluicec" explain "$tmp/none.yaml" --model x

# --- diff --------------------------------------------------------------------
grep -v '^#' "$examples/multi-provider.yaml" >"$tmp/same.yaml"
expect_rc 0 "diff identical" "$sluicec" diff "$examples/multi-provider.yaml" "$tmp/same.yaml"
sed 's/weight: 3/weight: 2/' "$examples/multi-provider.yaml" >"$tmp/new.yaml"
expect_rc 1 "diff changed" "$sluicec" diff "$examples/multi-provider.yaml" "$tmp/new.yaml"
grep -qxF "model 'smart': weight of anthropic/claude-sonnet-4-5: 3 -> 2" "$tmp/out" && ok || fail "diff: weight line"
"$sluicec" diff - "$tmp/new.yaml" --format=json <"$examples/multi-provider.yaml" >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '"identical":false' "$tmp/out" && ok || fail "diff with OLD on stdin: exit $rc"
expect_rc 2 "diff bad spec" "$sluicec" diff "$examples/quickstart.yaml" "$here/bad/unknown-kind.yaml"
expect_rc 2 "diff missing file" "$sluicec" diff "$tmp/none.yaml" "$examples/quickstart.yaml"
expect_rc 2 "diff one arg" "$sluicec" diff "$examples/quickstart.yaml"

# --- keygen ------------------------------------------------------------------
"$sluicec" keygen >"$tmp/k1" 2>/dev/null && "$sluicec" keygen >"$tmp/k2" 2>/dev/null && ok || fail "keygen failed"
key1=$(sed -n 's/^key:  //p' "$tmp/k1") key2=$(sed -n 's/^key:  //p' "$tmp/k2")
hash1=$(sed -n 's/^hash: sha256://p' "$tmp/k1")
case $key1 in sk-sluice-???????????????????????????????????????????) ok ;; *) fail "keygen: key shape '$key1'" ;; esac
[ "$(printf %s "$key1" | sha256sum | cut -d' ' -f1)" = "$hash1" ] && ok || fail "keygen: hash is not sha256 of the key"
[ "$key1" != "$key2" ] && ok || fail "keygen: two calls gave the same key"
"$sluicec" keygen --prefix sk-sl- >"$tmp/k3" 2>/dev/null
key3=$(sed -n 's/^key:  //p' "$tmp/k3") hash3=$(sed -n 's/^hash: sha256://p' "$tmp/k3")
case $key3 in sk-sl-???????????????????????????????????????????) ok ;; *) fail "keygen --prefix: '$key3'" ;; esac
[ "$(printf %s "$key3" | sha256sum | cut -d' ' -f1)" = "$hash3" ] && ok || fail "keygen --prefix: hash"
expect_rc 2 "keygen bad prefix" "$sluicec" keygen --prefix 'a b'
# A generated key pasted into a spec is caught as a secret.
printf 'sluice: 1\nproviders:\n  d: { kind: mock }\nmodels:\n  m: { targets: [d] }\nx-oops: %s\n' "$key1" >"$tmp/leak.yaml"
expect_rc 1 "pasted key" "$sluicec" check "$tmp/leak.yaml"
grep -q "a sluice client key" "$tmp/err" && ok || fail "pasted key: message"
grep -qF "$key1" "$tmp/err" && fail "pasted key echoed" || ok

echo "cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
