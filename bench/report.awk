# bench/report.awk: turns bench/run's raw measurements (TSV lines:
# scenario, contender, round, key, value) into the figures. Each figure for
# a contender is the median over the interleaved rounds; an "added" figure
# is a proxy's median minus the direct run's median from the same rounds.
# Writes OUT.txt (the table), OUT.json (figures, raw runs, problems) and
# OUT.plot/*.dat for bench/plot.gp. Variables come from bench/run (-v);
# `scenarios` (",plain,stream,tls,floor,spec,") says which sections to print.
# Rows that issue 18 sets a target for say in the last column whether the
# run met it.
BEGIN { FS = "\t"; nruns = 0 }

{
    sc = $1; who = $2; r = $3; k = $4; v = $5
    id = sc SUBSEP who SUBSEP r
    if (!(id in seen)) { seen[id] = 1; runs[++nruns] = id }
    val[id, k] = v
    if (!((id, k) in keyseen)) { keyseen[id, k] = 1; keys[id] = keys[id] (keys[id] == "" ? "" : SUBSEP) k }
    # values per (scenario, contender, key) across rounds, for medians
    n = ++cnt[sc, who, k]
    vals[sc, who, k, n] = v
}

function med(sc, who, k,    n, i, j, a, t) {
    n = cnt[sc, who, k]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) a[i] = vals[sc, who, k, i] + 0
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function sub_(a, b) { return (a == "" || b == "") ? "" : a - b }
function div_(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : a / b }
function fmt(x, dec) { return x == "" ? "-" : sprintf("%." dec "f", x) }

# Targets: tgt(DESC, OK) is the target column, OK being 1, 0 or "" (no
# figure to judge); le/lt compare figures that may be missing.
function tgt(desc, ok) { return desc ": " (ok == "" ? "-" : (ok ? "met" : "missed")) }
function le(a, b) { return (a == "" || b == "") ? "" : (a + 0 <= b + 0) }
function lt(a, b) { return (a == "" || b == "") ? "" : (a + 0 < b + 0) }
function want(sc) { return index(scenarios, "," sc ",") > 0 }

# A table row, also kept for the JSON. cmp: "diff" (sluice - nginx and
# sluice / nginx), "ratio" (sluice / nginx), "first" (first column /
# nginx), or "". target: from tgt(), or "" (this row has none). The first
# column is the direct run's unless col1 names another (the floor rows:
# "libcurl"), also in the JSON.
function row(fig, label, unit, d, n, s, dec, cmp, target,    c, dn) {
    c = ""
    if (cmp == "first" && n != "" && d != "" && n + 0 > 0) {
        c = sprintf("%.2fx", d / n)
    } else if (cmp == "diff" && n != "" && s != "") {
        c = sprintf("%+." dec "f %s", s - n, unit)
        if (n + 0 > 0 && s + 0 >= 0) c = c sprintf(" (%.2fx)", s / n)
    } else if (cmp == "ratio" && n != "" && s != "" && n + 0 > 0) {
        c = sprintf("%.2fx", s / n)
    }
    printf "%-3s %-48s %10s %10s %10s   %-18s %s\n", fig, label " (" unit ")", fmt(d, dec), fmt(n, dec), fmt(s, dec), c, target > txt
    nrows++
    rfig[nrows] = fig; rlabel[nrows] = label; runit[nrows] = unit
    rd[nrows] = d; rn[nrows] = n; rs[nrows] = s; rc[nrows] = c; rt[nrows] = target; rcol1[nrows] = col1
}
function heading(s) { printf "%s\n", s > txt }

function jstr(s) {
    gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); gsub(/\n/, "\\n", s); gsub(/\r/, "", s)
    return "\"" s "\""
}
function jval(v) {
    if (v == "") return "null"
    if (v ~ /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/) return v
    return jstr(v)
}

# gnuplot data: rows p50..p99.9, one column per contender in the
# space-separated list `whos` (in ms).
function plotdat(file, sc, pre, whos,    i, p, w, line, ws, nw) {
    split("p50 p90 p99 p999", p, " ")
    split("p50 p90 p99 p99.9", lab, " ")
    nw = split(whos, ws, " ")
    printf "# percentile %s (ms)\n", whos > (dir "/" file)
    for (i = 1; i <= 4; i++) {
        line = lab[i]
        for (w = 1; w <= nw; w++) {
            x = med(sc, ws[w], pre "_" p[i] "_us")
            line = line " " (x == "" ? "NaN" : sprintf("%.4f", x / 1000))
        }
        print line > (dir "/" file)
    }
    close(dir "/" file)
}
function ms(x) { return x == "" ? "" : x / 1000 }
function mib(x) { return x == "" ? "" : x / 1024 }

# Bytes per request in flight at a proxy in the open loop: peak RSS over
# RSS at rest, per request the client had outstanding, capped by its
# connections (queued requests never reached the proxy).
function bpi_of(who,    h, i0, pk, pc) {
    h = med("openloop", who, "hwm_kb"); i0 = med("idle", who, "rss_idle_kb"); pk = med("openloop", who, "peak_inflight")
    pc = med("openloop", who, "peak_conns"); if (pc != "" && pk != "" && pc + 0 < pk + 0) pk = pc
    return (h == "" || i0 == "" || pk == "" || pk + 0 == 0) ? "" : (h - i0) * 1024 / pk
}
# A figure of libcurl alone, left out when a run of it had failures
# (failed transfers cost less than real ones; the problems list says why).
function fmed(sc, k) { return med(sc, "curl", "errors") + 0 > 0 ? "" : med(sc, "curl", k) }
# The floor rows' target column: whether libcurl alone is already over
# the figure a whole gateway must stay under.
function floor_tgt(what, f, limit) {
    if (f == "" || limit == "") return "vs " what ": -"
    return f + 0 > limit + 0 ? "floor over " what : "floor under " what
}

# The streaming rows of one scenario (sc; 20 or 1,000 events per stream).
# long: the 1,000-event scenario, whose gaps are printed in us with the
# cost per event and its targets.
function stream_rows(fig, sc, tag, long,    d, n, s) {
    d = med(sc, "direct", "ttfb_p50_us"); n = med(sc, "nginx", "ttfb_p50_us"); s = med(sc, "sluice", "ttfb_p50_us")
    row(fig, tag " stream: TTFT p50", "ms", ms(d), ms(n), ms(s), 2, "")
    row("", "  added TTFT p50 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff", tgt("<= 100 us", le(sub_(s, d), 100)))
    d = med(sc, "direct", "ttfb_p99_us"); n = med(sc, "nginx", "ttfb_p99_us"); s = med(sc, "sluice", "ttfb_p99_us")
    row("", "  added TTFT p99 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff")
    d = med(sc, "direct", "gap_p50_us"); n = med(sc, "nginx", "gap_p50_us"); s = med(sc, "sluice", "gap_p50_us")
    if (long) {
        # per event: a read of k events counts k gaps of 1/k (bench-loadgen)
        d = med(sc, "direct", "evgap_p50_us"); n = med(sc, "nginx", "evgap_p50_us"); s = med(sc, "sluice", "evgap_p50_us")
        row("", "  inter-event gap per event p50", "us", d, n, s, 0, "")
        row("", "  added gap per event p50 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff", tgt("<= 2 us", le(sub_(s, d), 2)))
    } else {
        row("", "  inter-event gap p50", "ms", ms(d), ms(n), ms(s), 2, "")
    }
    d = med(sc, "direct", "gap_p99_us"); n = med(sc, "nginx", "gap_p99_us"); s = med(sc, "sluice", "gap_p99_us")
    if (long) row("", "  inter-event gap p99", "us", d, n, s, 0, "")
    else row("", "  inter-event gap p99", "ms", ms(d), ms(n), ms(s), 2, "")
    row("", "  added gap p99 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff")
    if (long)
        row("", "  proxy CPU per event", "us", "", med(sc, "nginx", "cpu_us_per_event"), med(sc, "sluice", "cpu_us_per_event"), 2, "ratio")
    row("", "  events per stream (min)", "count", med(sc, "direct", "events_min"), med(sc, "nginx", "events_min"), med(sc, "sluice", "events_min"), 0, "")
    row("", "  reads with events per stream (min)", "count", med(sc, "direct", "reads_min"), med(sc, "nginx", "reads_min"), med(sc, "sluice", "reads_min"), 0, "")
    row("", "  streams with coalesced events", "count", med(sc, "direct", "coalesced"), med(sc, "nginx", "coalesced"), med(sc, "sluice", "coalesced"), 0, "")
    row("", "  streams completed / sent", "%", med(sc, "direct", "success_pct"), med(sc, "nginx", "success_pct"), med(sc, "sluice", "success_pct"), 2, "")
}

# The TLS-upstream rows for one sluice contender (sw: sluice = HTTP/1.1,
# sluice_h2 = HTTP/2) against direct and nginx (always HTTP/1.1).
function tls_rows(fig, sw, title,    d, n, s, h2, t) {
    h2 = (sw == "sluice_h2")
    heading(fig "   " title)
    d = med("tls_c1", "direct", "lat_p50_us"); n = med("tls_c1", "nginx", "lat_p50_us"); s = med("tls_c1", sw, "lat_p50_us")
    row("", "  c=1 p50 latency", "us", d, n, s, 0, "")
    row("", "  c=1 added p50 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff")
    d = med("tls_c1", "direct", "lat_p99_us"); n = med("tls_c1", "nginx", "lat_p99_us"); s = med("tls_c1", sw, "lat_p99_us")
    row("", "  c=1 added p99 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff")
    row("", "  c=64 throughput", "req/s", med("tls_c64", "direct", "rps"), med("tls_c64", "nginx", "rps"), med("tls_c64", sw, "rps"), 0, "ratio")
    d = med("tls_c64", "direct", "lat_p99_us"); n = med("tls_c64", "nginx", "lat_p99_us"); s = med("tls_c64", sw, "lat_p99_us")
    row("", "  c=64 p99 latency", "us", d, n, s, 0, "")
    row("", "  c=64 errors (sum of medians)", "count", med("tls_c64", "direct", "errors"), med("tls_c64", "nginx", "errors"), med("tls_c64", sw, "errors"), 0, "")
    n = med("tls_c64", "nginx", "cpu_us_per_req"); s = med("tls_c64", sw, "cpu_us_per_req")
    row("", "  proxy CPU per request at c=64", "us", "", n, s, 1, "ratio", h2 ? tgt("< nginx h1+TLS", lt(s, n)) : "")
    if (h2 && want("floor")) {
        # first column: libcurl alone over HTTP/2 + TLS (bench-curl-floor --h2-tls)
        col1 = "libcurl"; t = fmed("tls_floor_c64", "cpu_us_per_req")
        row("", "  libcurl alone, h2+TLS (1st column), c=64", "us", t, n, s, 1, "first", floor_tgt("nginx h1+TLS whole proxy", t, n))
        col1 = ""
    }
    row("", "  proxy CPU per request at c=1", "us", "", med("tls_c1", "nginx", "cpu_us_per_req"), med("tls_c1", sw, "cpu_us_per_req"), 1, "ratio")
    row("", "  upstream connections after c=64", "count", "", med("tls_c64", "nginx", "upstream_conns"), med("tls_c64", sw, "upstream_conns"), 0, "")
    row("", "  terminator cpu busy at c=64", "%", med("tls_c64", "direct", "term_busy_pct"), med("tls_c64", "nginx", "term_busy_pct"), med("tls_c64", sw, "term_busy_pct"), 0, "")
    row("", sprintf("  %s req/s x %.1f s upstream: success", open_rate, open_latency / 1000), "%", "", med("tls_openloop", "nginx", "success_pct"), med("tls_openloop", sw, "success_pct"), 2, "",
        h2 ? tgt("100 %", le(100, med("tls_openloop", sw, "success_pct"))) : "")
    row("", "    peak in flight", "count", "", med("tls_openloop", "nginx", "peak_inflight"), med("tls_openloop", sw, "peak_inflight"), 0, "")
    row("", "    p99 latency", "ms", "", ms(med("tls_openloop", "nginx", "lat_p99_us")), ms(med("tls_openloop", sw, "lat_p99_us")), 1, "")
    n = med("tls_openloop", "nginx", "cpu_us_per_req"); s = med("tls_openloop", sw, "cpu_us_per_req")
    row("", "    proxy CPU per request", "us", "", n, s, 1, "ratio", h2 ? tgt("< nginx h1+TLS", lt(s, n)) : "")
    if (h2 && want("floor")) {
        col1 = "libcurl"; t = fmed("tls_floor_open", "cpu_us_per_req")
        row("", "    libcurl alone, h2+TLS (1st column)", "us", t, n, s, 1, "first",
            floor_tgt("nginx h1+TLS whole proxy", t, n))
        col1 = ""
    }
    n = med("tls_openloop", "nginx", "hwm_kb"); s = med("tls_openloop", sw, "hwm_kb")
    row("", "    proxy peak RSS (VmHWM)", "MiB", "", mib(n), mib(s), 1, "ratio", h2 ? tgt("< nginx h1+TLS", lt(s, n)) : "")
    if (h2) {
        t = med("tls_openloop", "sluice", "hwm_kb")
        row("", "    sluice peak RSS, HTTP/2 vs HTTP/1.1", "x", "", "", div_(s, t), 2, "", tgt("< 1 (lower over h2)", lt(s, t)))
    }
    row("", "    upstream connections mid-run", "count", "", med("tls_openloop", "nginx", "upstream_conns"), med("tls_openloop", sw, "upstream_conns"), 0, "")
    row("", "    terminator cpu busy over the run", "%", "", med("tls_openloop", "nginx", "term_busy_pct"), med("tls_openloop", sw, "term_busy_pct"), 0, "")
}

END {
    txt = out ".txt"
    dir = out ".plot"
    split("direct nginx sluice", who3, " ")
    printf "" > txt

    heading(sprintf("sluice benchmark %s: %s cpus, kernel %s, %s worker(s) per proxy, %s round(s), medians", stamp, cpus, kernel, workers, rounds))
    heading(sprintf("pinning: %s", pinning))
    if (want("plain")) {
        mc = med("capacity", "mock", "cpu_us_per_req")
        heading(sprintf("mock upstream alone: %s req/s at 64 connections from wrk on the other cpu; %s us cpu per request (%s req/s per cpu-second)",
            fmt(med("capacity", "mock", "rps"), 0), fmt(mc, 1), (mc == "" || mc + 0 == 0) ? "-" : sprintf("%.0f", 1e6 / mc)))
    }
    heading("")
    # (the floor section prints its own column heads)
    if (want("plain") || want("stream") || want("tls") || want("spec"))
        printf "%-3s %-48s %10s %10s %10s   %-18s %s\n", "", "", "direct", "nginx", "sluice", "sluice vs nginx", "target (issue 18)" > txt

  if (want("plain")) {
    # 1. concurrency 1
    d = med("c1", "direct", "lat_p50_us"); n = med("c1", "nginx", "lat_p50_us"); s = med("c1", "sluice", "lat_p50_us")
    row("1", "c=1 p50 latency", "us", d, n, s, 0, "")
    row("", "c=1 added p50 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff", tgt("<= nginx + 10 us", le(sub_(s, d), sub_(n, d) == "" ? "" : sub_(n, d) + 10)))
    d = med("c1", "direct", "lat_p99_us"); n = med("c1", "nginx", "lat_p99_us"); s = med("c1", "sluice", "lat_p99_us")
    row("", "c=1 p99 latency", "us", d, n, s, 0, "")
    row("", "c=1 added p99 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff", tgt("< 100 us", lt(sub_(s, d), 100)))
    row("", "c=1 throughput", "req/s", med("c1", "direct", "rps"), med("c1", "nginx", "rps"), med("c1", "sluice", "rps"), 0, "ratio")

    # 2. concurrency 64
    row("2", "c=64 throughput", "req/s", med("c64", "direct", "rps"), med("c64", "nginx", "rps"), med("c64", "sluice", "rps"), 0, "ratio")
    d = med("c64", "direct", "lat_p50_us"); n = med("c64", "nginx", "lat_p50_us"); s = med("c64", "sluice", "lat_p50_us")
    row("", "c=64 p50 latency", "us", d, n, s, 0, "")
    d = med("c64", "direct", "lat_p99_us"); n = med("c64", "nginx", "lat_p99_us"); s = med("c64", "sluice", "lat_p99_us")
    row("", "c=64 p99 latency", "us", d, n, s, 0, "")
    row("", "c=64 added p99 vs direct", "us", "", sub_(n, d), sub_(s, d), 0, "diff")
    row("", "c=64 errors (sum of medians)", "count", med("c64", "direct", "errors"), med("c64", "nginx", "errors"), med("c64", "sluice", "errors"), 0, "")

    # 3. CPU per request
    n = med("c64", "nginx", "cpu_us_per_req"); s = med("c64", "sluice", "cpu_us_per_req")
    row("3", "proxy CPU per request at c=64", "us", "", n, s, 1, "ratio", tgt("<= nginx", le(s, n)))
    n = med("c1", "nginx", "cpu_us_per_req"); s = med("c1", "sluice", "cpu_us_per_req")
    row("", "proxy CPU per request at c=1", "us", "", n, s, 1, "ratio", tgt("<= nginx", le(s, n)))

    # 4. open loop overload
    s = med("openloop", "sluice", "success_pct")
    row("4", sprintf("%s req/s x %.1f s upstream: success", open_rate, open_latency / 1000), "%", med("openloop", "direct", "success_pct"), med("openloop", "nginx", "success_pct"), s, 2, "", tgt("100 %", le(100, s)))
    row("", "  requests sent", "count", med("openloop", "direct", "sent"), med("openloop", "nginx", "sent"), med("openloop", "sluice", "sent"), 0, "")
    row("", "  peak in flight", "count", med("openloop", "direct", "peak_inflight"), med("openloop", "nginx", "peak_inflight"), med("openloop", "sluice", "peak_inflight"), 0, "")
    split("p50 p99 p999", pp, " "); split("p50 p99 p99.9", pl, " ")
    for (i = 1; i <= 3; i++) {
        d = med("openloop", "direct", "lat_" pp[i] "_us"); n = med("openloop", "nginx", "lat_" pp[i] "_us"); s = med("openloop", "sluice", "lat_" pp[i] "_us")
        row("", "  " pl[i] " latency", "ms", ms(d), ms(n), ms(s), 1, "")
    }
    n = med("openloop", "nginx", "hwm_kb"); s = med("openloop", "sluice", "hwm_kb")
    row("", "  proxy cpu busy over the run", "%", "", med("openloop", "nginx", "cpu_busy_pct"), med("openloop", "sluice", "cpu_busy_pct"), 0, "")
    row("", "  proxy peak RSS (VmHWM)", "MiB", "", mib(n), mib(s), 1, "ratio", tgt("<= 64 MiB", le(s, 64 * 1024)))

    # 5. streaming, 20 events
    stream_rows("5", "stream_openai", "OpenAI", 0)
    stream_rows("", "stream_anthropic", "Anthropic", 0)

    # 6. memory
    n = med("idle", "nginx", "rss_idle_kb"); s = med("idle", "sluice", "rss_idle_kb")
    row("6", "idle RSS after start", "MiB", "", mib(n), mib(s), 2, "ratio")
    row("", "bytes per in-flight request", "B", "", bpi_of("nginx"), bpi_of("sluice"), 0, "ratio")
  }

    # 7. streaming, 1,000 events
    if (want("stream")) {
        heading(sprintf("7   streams of %s", stream1k_desc))
        stream_rows("", "stream1k_openai", "OpenAI", 1)
        stream_rows("", "stream1k_anthropic", "Anthropic", 1)
    }

    # 8. TLS upstream
    if (want("tls")) {
        tls_rows("8", "sluice", "TLS upstream over HTTP/1.1 (nginx terminator in front of the mock; sluice http2: off)")
        tls_rows("", "sluice_h2", "TLS upstream, sluice over HTTP/2 (http2: on; nginx still HTTP/1.1, it has no HTTP/2 upstream)")
    }

    # 9. a large spec
    if (want("spec")) {
        ne = med("spec", "sluice", "entries"); big = (ne + 0 >= 10000)
        heading(sprintf("9   a spec of %s model entries and keys (bench/compiler/run.sh; not pinned)", ne == "" ? "?" : ne))
        c = med("spec", "sluice", "compile_cpu_s")
        row("", "  sluicec + re2c + cc -O2: cpu", "s", "", "", c, 2, "", big ? tgt("< 30 s", lt(c, 30)) : "")
        row("", "  sluicec + re2c + cc -O2: wall", "s", "", "", med("spec", "sluice", "compile_wall_s"), 2, "")
        row("", "  of which cc -O2 of the matcher: cpu", "s", "", "", med("spec", "sluice", "cc_matcher_cpu_s"), 2, "")
        a = med("spec", "sluice", "lookup_small_set_ns"); b = med("spec", "sluice", "lookup_big_set_ns")
        row("", "  lookup at 10 entries (13 names)", "ns", "", "", a, 1, "")
        row("", sprintf("  lookup at %s entries (13 names)", ne), "ns", "", "", b, 1, "")
        row("", sprintf("  lookup at %s vs at 10 entries", ne), "x", "", "", div_(b, a), 2, "", big ? tgt("within 2x", le(div_(b, a), 2)) : "")
        row("", sprintf("  lookup at %s entries, every name", ne), "ns", "", "", med("spec", "sluice", "lookup_big_all_ns"), 1, "")
    }

    # 10. libcurl alone, next to the whole proxies of the plain scenario
    if (want("floor")) {
        heading(sprintf("10  libcurl %s alone (bench/curl-floor: driven as sluice drives it, no server side, on the proxy's cpu)",
            val["floor_c64", "curl", 1, "libcurl"] != "" ? val["floor_c64", "curl", 1, "libcurl"] : val["floor_open", "curl", 1, "libcurl"]))
        heading("    first column: libcurl alone; nginx and sluice: the plain scenario's figures from this run")
        printf "%-3s %-48s %10s %10s %10s   %-18s %s\n", "", "", "libcurl", "nginx", "sluice", "libcurl vs nginx", "target (issue 18)" > txt
        col1 = "libcurl"
        c = fmed("floor_c64", "cpu_us_per_req"); n = med("c64", "nginx", "cpu_us_per_req"); s = med("c64", "sluice", "cpu_us_per_req")
        row("", "libcurl alone: CPU per request at c=64", "us", c, n, s, 1, "first", floor_tgt("nginx's whole proxy", c, n))
        row("", "  user", "us", fmed("floor_c64", "user_us_per_req"), "", "", 1, "")
        row("", "  system", "us", fmed("floor_c64", "sys_us_per_req"), "", "", 1, "")
        row("", "  sluice above libcurl alone", "us", "", "", sub_(s, c), 1, "")
        c = fmed("floor_bare_c64", "cpu_us_per_req")
        row("", "  options set once, no callbacks (--bare)", "us", c, n, "", 1, "first", floor_tgt("nginx's whole proxy", c, n))
        c = fmed("floor_c1", "cpu_us_per_req"); n = med("c1", "nginx", "cpu_us_per_req"); s = med("c1", "sluice", "cpu_us_per_req")
        row("", "libcurl alone: CPU per request at c=1", "us", c, n, s, 1, "first", floor_tgt("nginx's whole proxy", c, n))
        pk = med("floor_open", "curl", "peak_inflight")
        row("", sprintf("libcurl alone: %s/s x %.1f s upstream: ok", open_rate, open_latency / 1000), "%",
            med("floor_open", "curl", "success_pct"), med("openloop", "nginx", "success_pct"), med("openloop", "sluice", "success_pct"), 2, "")
        row("", "  peak in flight", "count", pk, med("openloop", "nginx", "peak_inflight"), med("openloop", "sluice", "peak_inflight"), 0, "")
        row("", "  CPU per request", "us", fmed("floor_open", "cpu_us_per_req"), med("openloop", "nginx", "cpu_us_per_req"), med("openloop", "sluice", "cpu_us_per_req"), 1, "first")
        row("", "  RSS at rest", "MiB", mib(fmed("floor_open", "rss_rest_kb")), mib(med("idle", "nginx", "rss_idle_kb")), mib(med("idle", "sluice", "rss_idle_kb")), 1, "")
        c = fmed("floor_open", "hwm_kb")
        row("", sprintf("  peak RSS at %s in flight (VmHWM)", pk == "" ? "?" : pk), "MiB", mib(c), mib(med("openloop", "nginx", "hwm_kb")), mib(med("openloop", "sluice", "hwm_kb")), 1, "first",
            floor_tgt("64 MiB", c, 64 * 1024))
        c = fmed("floor_open", "bytes_per_inflight")
        row("", "  bytes per in-flight transfer", "B", c, bpi_of("nginx"), bpi_of("sluice"), 0, "first",
            floor_tgt("64 MiB / 7,500 (8,948 B)", c, 64 * 1048576 / 7500))
        row("", "    of which malloc'd and live at the peak", "B", fmed("floor_open", "heap_bytes_per_inflight"), "", "", 0, "")
        # sluice can do no better than its own rest plus libcurl's share
        # per transfer: 7,500 of them over 64 MiB is out of reach.
        i0 = med("idle", "sluice", "rss_idle_kb")
        f = (i0 == "" || c == "") ? "" : (i0 * 1024 + c * 7500) / 1048576
        row("", "  sluice at rest + libcurl alone x 7,500", "MiB", "", "", f, 1, "", floor_tgt("64 MiB", f, 64))
        col1 = ""
    }

    # problems
    np = 0
    while ((getline line < problems_file) > 0) prob[++np] = line
    heading("")
    if (np == 0) heading("problems: none (no errors, no crashes, no stalls)")
    else { heading("problems:"); for (i = 1; i <= np; i++) heading("  - " prob[i]) }
    close(txt)

    # JSON
    js = out ".json"
    printf "{\n  \"timestamp\": %s,\n", jstr(stamp) > js
    printf "  \"machine\": {\"cpus\": %s, \"kernel\": %s},\n", cpus, jstr(kernel) > js
    printf "  \"versions\": {\"sluice\": %s, \"nginx\": %s},\n", jstr(sluice_version), jstr(nginx_version) > js
    printf "  \"pinning\": %s,\n  \"workers\": %s,\n  \"rounds\": %s,\n  \"elapsed_s\": %s,\n", jstr(pinning), workers, rounds, elapsed > js
    printf "  \"scenarios\": {\"selected\": %s, \"openloop\": {\"rate\": %s, \"upstream_latency_ms\": %s, \"seconds\": %s}, \"stream\": %s, \"stream1k\": %s, \"tls_openloop_seconds\": %s},\n", jstr(scenarios), open_rate, open_latency, open_secs, jstr(stream_desc), jstr(stream1k_desc), jval(tls_open_secs) > js
    printf "  \"figures\": [\n" > js
    for (i = 1; i <= nrows; i++)
        printf "    {\"figure\": %s, \"metric\": %s, \"unit\": %s, %s: %s, \"nginx\": %s, \"sluice\": %s, \"%s\": %s, \"target\": %s}%s\n",
            jstr(rfig[i]), jstr(rlabel[i]), jstr(runit[i]), jstr(rcol1[i] == "" ? "direct" : rcol1[i]), jval(rd[i]), jval(rn[i]), jval(rs[i]), (rcol1[i] == "" ? "sluice_vs_nginx" : rcol1[i] "_vs_nginx"), jstr(rc[i]), jstr(rt[i]), (i < nrows ? "," : "") > js
    printf "  ],\n  \"runs\": [\n" > js
    for (i = 1; i <= nruns; i++) {
        split(runs[i], idp, SUBSEP)
        printf "    {\"scenario\": %s, \"contender\": %s, \"round\": %s, \"metrics\": {", jstr(idp[1]), jstr(idp[2]), idp[3] > js
        nk = split(keys[runs[i]], kk, SUBSEP)
        for (j = 1; j <= nk; j++)
            printf "%s%s: %s", (j > 1 ? ", " : ""), jstr(kk[j]), jval(val[runs[i], kk[j]]) > js
        printf "}}%s\n", (i < nruns ? "," : "") > js
    }
    printf "  ],\n  \"problems\": [" > js
    for (i = 1; i <= np; i++) printf "%s\n    %s", (i > 1 ? "," : ""), jstr(prob[i]) > js
    printf "%s]\n}\n", (np ? "\n  " : "") > js
    close(js)

    # plot data
    system("mkdir -p '" dir "'")
    plotdat("c1.dat", "c1", "lat", "direct nginx sluice")
    plotdat("c64.dat", "c64", "lat", "direct nginx sluice")
    plotdat("openloop.dat", "openloop", "lat", "direct nginx sluice")
    plotdat("ttft.dat", "stream_openai", "ttfb", "direct nginx sluice")
    plotdat("tls_c64.dat", "tls_c64", "lat", "direct nginx sluice sluice_h2")
    plotdat("ttft1k.dat", "stream1k_openai", "ttfb", "direct nginx sluice")
}
