-- wrk script for bench/cpu-profile: like post.lua (POSTs the file named by
-- BENCH_BODY) but stops after BENCH_COUNT responses (per wrk thread; run
-- it with -t1), so a run is a fixed number of requests, not a duration.
-- Prints `requests=N errors=N` (non-200 answers) for the caller.
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

local limit = tonumber(os.getenv("BENCH_COUNT") or "10000")
local seen, bad = 0, 0
-- wrk runs for its whole -d whatever the threads do, so the script ends
-- the process itself once the count is reached.
response = function(status, headers, body)
  seen = seen + 1
  if status ~= 200 then bad = bad + 1 end
  if seen >= limit then
    io.write(string.format("BENCH requests=%d errors=%d\n", seen, bad))
    io.flush()
    os.exit(0)
  end
end
