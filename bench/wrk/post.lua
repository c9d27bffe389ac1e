-- wrk script for the sluice benchmark: POSTs the JSON body named by the
-- BENCH_BODY environment variable (a file) and prints the run's summary as
-- `key=value` lines that bench/run reads. Latencies are wrk's, in
-- microseconds; wrk is closed loop, so they are service times.
local path = os.getenv("BENCH_BODY")
local body = '{"model":"bench-openai","messages":[{"role":"user","content":"hi"}]}'
if path then
  local f = assert(io.open(path, "rb"))
  body = f:read("*a")
  f:close()
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local extra = os.getenv("BENCH_HEADER")   -- one optional "Name: value"
if extra then
  local k, v = extra:match("^([^:]+):%s*(.*)$")
  if k then wrk.headers[k] = v end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local secs = summary.duration / 1e6
  local out = {
    string.format("requests=%d", summary.requests),
    string.format("duration_s=%.3f", secs),
    string.format("rps=%.1f", summary.requests / secs),
    string.format("errors=%d", errors),
    string.format("err_connect=%d", e.connect),
    string.format("err_read=%d", e.read),
    string.format("err_write=%d", e.write),
    string.format("err_status=%d", e.status),
    string.format("err_timeout=%d", e.timeout),
    string.format("lat_p50_us=%d", latency:percentile(50)),
    string.format("lat_p90_us=%d", latency:percentile(90)),
    string.format("lat_p99_us=%d", latency:percentile(99)),
    string.format("lat_p999_us=%d", latency:percentile(99.9)),
    string.format("lat_max_us=%d", latency.max),
    string.format("lat_mean_us=%.1f", latency.mean),
  }
  io.write("BENCH ", table.concat(out, "\nBENCH "), "\n")
end
