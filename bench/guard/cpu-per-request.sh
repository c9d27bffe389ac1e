#!/bin/sh
# Gateway CPU per request with guardrails off and on: the e2e guardrail
# gateway (tests/e2e/guard.yaml) in front of tests/mock-upstream, entry
# `plain` (no guardrails) against `restore-openai` (redact and restore in
# both directions), a 1.2 KB chat request with an e-mail address, a phone
# and a card number that the mock echoes back. Rounds alternate; CPU is
# utime+stime of the gateway from /proc/PID/stat (10 ms ticks).
#
#   bench/guard/cpu-per-request.sh BUILD_DIR [ROUNDS]
set -eu
build=$1 rounds=${2:-5}
tmp=$(mktemp -d)
gw= mock=
trap 'kill ${gw:-} ${mock:-} 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
python3 - "$tmp" <<'PY'
import json, sys
sys_prompt = "You are a helpful support assistant for Acme Corp. Answer briefly and politely. " * 6
user = ("Hi, my name is Jane Doe and my account email is jane.doe@example.com. I was charged twice on my card "
        "4111 1111 1111 1111 last week and I'd like a refund. You can call me at +1 415 555 2671 after 5pm. "
        "The order numbers are 88231 and 88232; the invoice was sent to the billing address on file. ") * 2
for model in ["plain", "restore-openai"]:
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "system", "content": sys_prompt},
            {"role": "user", "content": user + " [[mock echo=1]]"}]}
    open(f"{sys.argv[1]}/{model}.json", "w").write(json.dumps(body))
PY
"$build/tests/mock-upstream" --listen 127.0.0.1:0 --no-auth 2>"$tmp/mock.log" &
mock=$!
sleep 0.5
port=$(grep -o '[0-9]*$' "$tmp/mock.log")
SLUICE_E2E_OPENAI_KEY=x SLUICE_E2E_ANTHROPIC_KEY=y "$build/tests/sluice-guard" --listen 127.0.0.1:0 \
  --state "$tmp/s.db" --quiet --workers 1 --ledger async \
  --provider-url up-openai=http://127.0.0.1:$port/v1 --provider-url up-anthropic=http://127.0.0.1:$port 2>"$tmp/gw.log" &
gw=$!
sleep 1
addr=$(grep -o 'listening on [0-9.:]*' "$tmp/gw.log" | head -1 | cut -d' ' -f3)
ticks() { awk '{print $14+$15}' /proc/$gw/stat; }
n=4000
r=1
while [ $r -le "$rounds" ]; do
  for model in plain restore-openai; do
    t0=$(ticks)
    "$build/bench/bench-loadgen" --target "$addr" --body "$tmp/$model.json" --rate 500 --duration 8 --connections 64 >/dev/null 2>&1
    t1=$(ticks)
    echo "round $r $model: $(( (t1 - t0) * 10000 / n )) us CPU per request"
  done
  r=$((r + 1))
done
