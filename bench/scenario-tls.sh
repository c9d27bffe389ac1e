# shellcheck shell=bash disable=SC2046,SC2034,SC2317
# (PID lists are meant to split; bench/run uses the variables set here; the hook is called by bench/run.)
# bench/scenario-tls.sh: bench/run's TLS-upstream scenario (--scenarios
# tls), sourced by bench/run and using its helpers (start_mock, run_wrk,
# open_loop_fresh, record, ...). Not a program of its own.
#
# The bench mock upstream goes behind an nginx that terminates TLS (a
# certificate pair made for this run with the openssl CLI) and offers
# HTTP/2 and HTTP/1.1 through ALPN. Contenders, interleaved round by round:
#   direct     wrk over HTTPS (HTTP/1.1, kept alive) to the terminator
#   nginx      nginx proxy_pass https to the terminator: HTTP/1.1, upstream
#              keepalive, proxy_ssl_session_reuse (nginx cannot proxy over
#              HTTP/2)
#   sluice     sluice-bench-utls, provider with http2: off
#   sluice_h2  the same gateway restarted, provider with http2: on
# The terminator is upstream, not proxy: its CPU is not counted for either
# proxy, and it is pinned with the mock (on two cpus, with the client too).

# A port nothing listens on, below the ephemeral range: a port that an
# outgoing connection holds as its local one cannot be bound either.
free_port() {
  local lo=32768 hi base p
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  base=20000; [ "$lo" -le 21000 ] && base=10000
  for _ in $(seq 1 100); do
    p=$((base + RANDOM % (lo - base)))
    port_open "$p" || { echo "$p"; return 0; }
  done
  die "no free port for the TLS terminator"
}

term_procs() { [ -n "$PID_TERM" ] && { echo "$PID_TERM"; pgrep -P "$PID_TERM" || true; }; }

start_terminator() {
  mkdir -p "$TMP/term/logs" "$TMP/term/tmp"
  cat >"$TMP/term/nginx.conf" <<EOF
# Written by bench/run: the upstream's TLS terminator, HTTP/2 and HTTP/1.1.
worker_processes 1;
daemon off;
master_process on;
pid $TMP/term/nginx.pid;
error_log $TMP/term/logs/error.log warn;
worker_rlimit_nofile $NOFILE;
events {
    worker_connections $((NOFILE > 30000 ? 30000 : NOFILE - 100));
}
http {
    access_log off;
    client_body_temp_path $TMP/term/tmp/body;
    proxy_temp_path $TMP/term/tmp/proxy;
    fastcgi_temp_path $TMP/term/tmp/fastcgi;
    uwsgi_temp_path $TMP/term/tmp/uwsgi;
    scgi_temp_path $TMP/term/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream mock {
        server 127.0.0.1:$P_MOCK;
        keepalive 1024;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$P_TERM ssl http2 backlog=4096;
        ssl_certificate $TMP/utls/tls/chain.pem;
        ssl_certificate_key $TMP/utls/tls/server.key;
        ssl_session_cache shared:term:20m;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
  "${ON_MOCK[@]}" "$NGINX" -p "$TMP/term" -c "$TMP/term/nginx.conf" -e "$TMP/term/logs/error.log" \
    2>>"$TMP/term/logs/stderr.log" &
  PID_TERM=$!
  # nginx retries a bind that fails for a few seconds before it gives up
  for _ in $(seq 1 200); do
    port_open "$P_TERM" && return 0
    kill -0 "$PID_TERM" 2>/dev/null || break
    sleep 0.05
  done
  stop_pid "$PID_TERM"; PID_TERM=""
  return 1
}

# upstream_conns PIDS...: their established TCP connections to the terminator.
upstream_conns() {
  command -v ss >/dev/null || return 0
  local list p n=0
  list=$(ss -tnpH state established "( dport = :$P_TERM )" 2>/dev/null) || return 0
  for p in "$@"; do
    n=$((n + $(printf '%s\n' "$list" | grep -c "pid=$p," || true)))
  done
  echo "$n"
}

# The gateway process serves one contender at a time: sluice (HTTP/1.1) and
# sluice_h2 differ only in the provider their model routes to, but a fresh
# process for each keeps their connections, CPU and memory apart.
TLS_RUNNING=""
tls_proxy_for() { # tls_proxy_for CONTENDER: the right gateway is up and warm
  case "$1" in
    sluice|sluice_h2)
      if [ "$TLS_RUNNING" != "$1" ] || [ -z "$PID_SLUICE" ]; then
        start_sluice
        TLS_RUNNING=$1
        warm "$1"
      fi ;;
  esac
}

# ---- setup ---------------------------------------------------------------------
[ -x "$SLUICE_UTLS" ] || die "no TLS-upstream gateway at $SLUICE_UTLS"
sh "$ROOT/tests/e2e/tls/certs.sh" "$TMP/utls/tls" ec >/dev/null ||
  die "could not make the terminator's certificate (openssl)"
start_mock --latency-ms 0 --size 1400
for attempt in 1 2 3; do
  P_TERM=$(free_port)
  start_terminator && break
  log "the TLS terminator did not start on port $P_TERM: $(tail -2 "$TMP/term/logs/error.log" "$TMP/term/logs/stderr.log" 2>/dev/null | tr '\n' ' ')"
  [ "$attempt" = 3 ] && die "TLS terminator did not start"
done
SLUICE=$SLUICE_UTLS
SLUICE_CWD=$TMP/utls          # the spec's tls: { ca: tls/ca.pem } resolves here
SLUICE_ARGS=(--provider-url "mock-tls-h1=https://127.0.0.1:$P_TERM/v1"
             --provider-url "mock-tls-h2=https://127.0.0.1:$P_TERM/v1")
NGINX_UP=tls
DIRECT_URL=https://127.0.0.1:$P_TERM
BODY_MAIN=$TMP/body-tls-h1.json
BODY_H2=$TMP/body-tls-h2.json
printf '%s' '{"model":"bench-tls-h1","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$BODY_MAIN"
printf '%s' '{"model":"bench-tls-h2","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$BODY_H2"
TLS_CONTENDERS="direct nginx sluice sluice_h2"

# ---- closed loop: concurrency 1 and 64 ----------------------------------------------
log "TLS upstream (terminator on 127.0.0.1:$P_TERM, pinned with the mock): wrk at concurrency 1 and 64, $ROUNDS2 round(s)"
start_nginx
warm direct
warm nginx
for round in $(seq 1 "$ROUNDS2"); do
  for who in $TLS_CONTENDERS; do
    tls_proxy_for "$who"
    run_wrk tls_c1 "$who" "$round" 1 "$D_TLS"
    tt0=$(cpu_ticks $(term_procs))
    run_wrk tls_c64 "$who" "$round" 64 "$D_TLS"
    tt1=$(cpu_ticks $(term_procs))
    awk -v t=$((tt1 - tt0)) -v hz="$CLK_TCK" -v s="$D_TLS" 'BEGIN {printf "term_busy_pct=%.0f\n", 100 * t / hz / s}' |
      record tls_c64 "$who" "$round"
    if [ "$who" != direct ]; then
      # shellcheck disable=SC2046
      printf 'upstream_conns=%s\n' "$(upstream_conns $(procs_of "$who"))" | record tls_c64 "$who" "$round"
    fi
  done
done
stop_pid "$PID_SLUICE"; PID_SLUICE=""; TLS_RUNNING=""

# With the floor scenario: libcurl alone over HTTP/2 + TLS to the same
# terminator, as sluice_h2 drives it (bench-curl-floor --h2-tls), the floor
# under the HTTP/2 + TLS CPU targets.
FLOOR_TLS=()
want floor && FLOOR_TLS=(--target "127.0.0.1:$P_TERM" --h2-tls "$TMP/utls/tls/ca.pem" --body "$BODY_H2")
if want floor; then
  for round in $(seq 1 "$ROUNDS2"); do
    run_floor tls_floor_c64 "$round" --closed 64 --requests $((N_FLOOR / 2)) "${FLOOR_TLS[@]}"
    log "  tls_floor_c64 r$round (libcurl alone, HTTP/2 + TLS): $(getrec tls_floor_c64 curl "$round" cpu_us_per_req) us cpu per request, $(getrec tls_floor_c64 curl "$round" rps) req/s, errors $(getrec tls_floor_c64 curl "$round" errors)"
  done
fi

# ---- open loop: 5,000 req/s into a 1.5 s upstream ----------------------------------
# bench-loadgen speaks no TLS, so no direct run: the plain scenario's is the
# reference for falling behind.
log "TLS upstream, open loop: $OPEN_RATE req/s for ${D_OPEN_TLS} s, upstream latency ${OPEN_LATENCY_MS} ms"
start_mock --latency-ms "$OPEN_LATENCY_MS" --size 1400
REF_P50_US=$(getrec openloop direct 1 lat_p50_us)
[ -n "$REF_P50_US" ] || REF_P50_US=$((OPEN_LATENCY_MS * 1000))
# open_loop_fresh calls this around each run: upstream connections sampled
# when the in-flight count has settled, and the terminator's CPU.
open_loop_hook() { # open_loop_hook start|end SCENARIO CONTENDER [PIDS...]
  local what=$1 sc=$2 who=$3; shift 3
  if [ "$what" = start ]; then
    HOOK_T0=$(cpu_ticks $(term_procs))
    HOOK_W0=$(date +%s.%N)
    # shellcheck disable=SC2016
    ( sleep "$(awk -v d="$D_OPEN_TLS" -v l="$OPEN_LATENCY_MS" 'BEGIN {print l / 1000 + (d - l / 1000) / 2}')"
      upstream_conns "$@" >"$TMP/upstream-conns" ) &
    HOOK_PID=$!
  else
    wait "$HOOK_PID" 2>/dev/null || true
    printf 'upstream_conns=%s\n' "$(cat "$TMP/upstream-conns" 2>/dev/null)" | record "$sc" "$who" 1
    awk -v t=$(($(cpu_ticks $(term_procs)) - HOOK_T0)) -v hz="$CLK_TCK" -v w0="$HOOK_W0" -v w1="$(date +%s.%N)" \
      'BEGIN {printf "term_busy_pct=%.0f\n", 100 * t / hz / (w1 - w0)}' | record "$sc" "$who" 1
    local busy; busy=$(getrec "$sc" "$who" 1 term_busy_pct)
    [ "${busy:-0}" -ge 90 ] && echo "$sc/$who: the TLS terminator was ${busy}% busy over the run (it shares a cpu with the mock and the client): the upstream, not the proxy, may have set the pace" >>"$PROBLEMS"
  fi
  return 0
}
for who in nginx sluice sluice_h2; do
  open_loop_fresh tls_openloop tls_idle "$who" "$D_OPEN_TLS"
done
if want floor; then
  run_floor tls_floor_open 1 --open "$OPEN_RATE" --seconds "$D_OPEN_TLS" --max-seconds $((D_OPEN_TLS + 15)) "${FLOOR_TLS[@]}"
  log "  tls_floor_open (libcurl alone, HTTP/2 + TLS): ok $(getrec tls_floor_open curl 1 ok)/$(getrec tls_floor_open curl 1 sent), peak $(getrec tls_floor_open curl 1 peak_inflight) in flight, $(getrec tls_floor_open curl 1 cpu_us_per_req) us cpu per request, $(getrec tls_floor_open curl 1 hwm_kb) kB peak"
fi
unset -f open_loop_hook
REF_P50_US=""

# back to the plain gateway and nginx for whatever runs next
SLUICE=$SLUICE_PLAIN; SLUICE_CWD=$ROOT; SLUICE_ARGS=(); NGINX_UP=plain; DIRECT_URL=""
BODY_MAIN=$BODY_OPENAI; BODY_H2=$BODY_OPENAI
