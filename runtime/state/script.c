/*
 * The one Lua script behind shared budgets and rate limits. Redis runs a
 * script atomically, so "check the key and its team, then reserve in
 * both" cannot interleave with another replica's admission: the same
 * exactness the in-process holders get from their mutexes. Time is
 * Redis's own (TIME), so replicas with skewed clocks agree on windows and
 * expiries; only the period bucket in a key's name comes from the caller.
 *
 * KEYS: per holder (the key, then its team) six names: the reservation
 * period's bucket hash and reservation set, the rpm window, the tpm
 * window and its sum, the current period's bucket (see keys.h).
 * KEYS[13] is the set of workers whose spend this dataset holds, and
 * ARGV[20] the calling worker's name in it ("replica:worker"); KEYS[14]
 * the deployment's ledger stream, to which a settlement adds its row
 * (ARGV[21..], field and value pairs).
 * ARGV[1] = "a" (admit) or "s" (settle); ARGV[2] = the reservation
 * member "replica:worker:seq:usd:tokens"; admit: ARGV[3..5] = usd,
 * tokens, lease ms; settle: ARGV[3..4] = charged usd, tokens. ARGV[6..12]
 * and [13..19] per holder: present, budgeted, usd limit (-1 none), token
 * limit (-1 none), rpm, tpm, bucket expiry (unix s, 0 = keep).
 *
 * ARGV[1] = "z" seeds: KEYS = the set, then period buckets; ARGV[2] = the
 * worker's name, then per bucket its spend (usd, tokens), what Redis owes
 * it (usd, tokens) and the expiry. A Redis that
 * restarted empty or was flushed answers every other call {3} until the
 * caller has seeded: each worker's spend in the current periods (its
 * replica's ledger for worker 0) is added exactly once, so the counters
 * are rebuilt from the replicas' own journals.
 *
 * A reservation expires `lease` after it was made: an admission first
 * drops expired ones from the reserved sums, so a replica killed mid-
 * request gives its reservations back within one lease.
 */
#include "state/redis_script.h"

const char sl_state_script[] =
    /* Seed: a worker's whole spend in the current periods when Redis is
     * new to it (the set of seeded workers goes with a flush), else what
     * Redis never received of it. */
    "if ARGV[1] == 'z' then\n"
    "  local cold = redis.call('SADD', KEYS[1], ARGV[2]) == 1\n"
    "  for i = 2, #KEYS do\n"
    "    local a = 3 + (i - 2) * 5\n"
    "    local u, k = ARGV[a], ARGV[a + 1]\n"
    "    if not cold then u, k = ARGV[a + 2], ARGV[a + 3] end\n"
    "    redis.call('HINCRBY', KEYS[i], 'usd', u)\n"
    "    redis.call('HINCRBY', KEYS[i], 'tok', k)\n"
    "    if tonumber(ARGV[a + 4]) > 0 then redis.call('EXPIREAT', KEYS[i], ARGV[a + 4]) end\n"
    "  end\n"
    "  return { cold and 1 or 0 }\n"
    "end\n"
    /* A worker Redis has not seen since it was emptied: nothing counts
     * until its seed is in (a settlement is part of that seed). */
    "if redis.call('SISMEMBER', KEYS[13], ARGV[20]) == 0 then return { 3 } end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local op, member = ARGV[1], ARGV[2]\n"
    "local function h(i)\n"
    "  local a, k = 5 + 7 * i, 6 * i\n"
    "  return { present = ARGV[a + 1] == '1', budgeted = ARGV[a + 2] == '1',\n"
    "    usd = tonumber(ARGV[a + 3]), tok = tonumber(ARGV[a + 4]),\n"
    "    rpm = tonumber(ARGV[a + 5]), tpm = tonumber(ARGV[a + 6]), exp = tonumber(ARGV[a + 7]),\n"
    "    b = KEYS[k + 1], r = KEYS[k + 2], q = KEYS[k + 3], w = KEYS[k + 4], ws = KEYS[k + 5],\n"
    "    bn = KEYS[k + 6] }\n"
    "end\n"
    "local hs = { h(0), h(1) }\n"
    /* Expired reservations leave the reserved sums; old tpm entries leave
     * the window sum. Amounts ride in the members' last fields. */
    "local function purge(x)\n"
    "  if x.budgeted then\n"
    "    local old = redis.call('ZRANGEBYSCORE', x.r, '-inf', now)\n"
    "    if #old > 0 then\n"
    "      local du, dt = 0, 0\n"
    "      for _, m in ipairs(old) do\n"
    "        local u, k = string.match(m, ':(%d+):(%d+)$')\n"
    "        du = du + tonumber(u); dt = dt + tonumber(k)\n"
    "      end\n"
    "      redis.call('HINCRBY', x.b, 'rusd', -du)\n"
    "      redis.call('HINCRBY', x.b, 'rtok', -dt)\n"
    "      redis.call('ZREMRANGEBYSCORE', x.r, '-inf', now)\n"
    "    end\n"
    "  end\n"
    "  if x.tpm > 0 then\n"
    "    local old = redis.call('ZRANGEBYSCORE', x.w, '-inf', now - 60000)\n"
    "    if #old > 0 then\n"
    "      local s = 0\n"
    "      for _, m in ipairs(old) do s = s + tonumber(string.match(m, ':(%d+)$')) end\n"
    "      redis.call('DECRBY', x.ws, s)\n"
    "      redis.call('ZREMRANGEBYSCORE', x.w, '-inf', now - 60000)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function oldest(z)\n"
    "  local o = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')\n"
    "  if #o < 2 then return 1000 end\n"
    "  return math.max(0, tonumber(o[2]) + 60000 - now)\n"
    "end\n"
    /* Would `want` on top of spent + reserved pass `limit`? */
    "local function over(limit, spent, reserved, want)\n"
    "  if limit < 0 then return false end\n"
    "  local used = spent + reserved\n"
    "  return used > limit or want > limit - used\n"
    "end\n"
    "if op == 'a' then\n"
    "  local usd, tok, lease = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "  for i = 1, 2 do\n"
    "    local x = hs[i]\n"
    "    if x.present then\n"
    "      local team = (i - 1) * 2\n"
    "      purge(x)\n"
    "      if x.rpm > 0 then\n"
    "        redis.call('ZREMRANGEBYSCORE', x.q, '-inf', now - 60000)\n"
    "        if redis.call('ZCARD', x.q) >= x.rpm then return { 1, oldest(x.q), team } end\n"
    "      end\n"
    "      if x.tpm > 0 and tonumber(redis.call('GET', x.ws) or '0') >= x.tpm then\n"
    "        return { 1, oldest(x.w), team + 1 }\n"
    "      end\n"
    "      if x.budgeted then\n"
    "        local v = redis.call('HMGET', x.b, 'usd', 'rusd', 'tok', 'rtok')\n"
    "        local su, ru = tonumber(v[1] or '0'), tonumber(v[2] or '0')\n"
    "        local st, rt = tonumber(v[3] or '0'), tonumber(v[4] or '0')\n"
    "        if over(x.usd, su, ru, usd) then return { 2, team } end\n"
    "        if over(x.tok, st, rt, tok) then return { 2, team + 1 } end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  for i = 1, 2 do\n"
    "    local x = hs[i]\n"
    "    if x.present then\n"
    "      if x.rpm > 0 then\n"
    "        redis.call('ZADD', x.q, now, member)\n"
    "        redis.call('PEXPIRE', x.q, 61000)\n"
    "      end\n"
    "      if x.budgeted then\n"
    "        redis.call('ZADD', x.r, now + lease, member)\n"
    "        redis.call('HINCRBY', x.b, 'rusd', usd)\n"
    "        redis.call('HINCRBY', x.b, 'rtok', tok)\n"
    "        if x.exp > 0 then\n"
    "          redis.call('EXPIREAT', x.b, x.exp)\n"
    "          redis.call('PEXPIREAT', x.r, math.max(x.exp * 1000, now + lease + 60000))\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return { 0 }\n"
    "end\n"
    "local cost, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local u, k = string.match(member, ':(%d+):(%d+)$')\n"
    "for i = 1, 2 do\n"
    "  local x = hs[i]\n"
    "  if x.present then\n"
    "    if x.budgeted then\n"
    "      if redis.call('ZREM', x.r, member) == 1 then\n"
    "        redis.call('HINCRBY', x.b, 'rusd', -tonumber(u))\n"
    "        redis.call('HINCRBY', x.b, 'rtok', -tonumber(k))\n"
    "      end\n"
    "      redis.call('HINCRBY', x.bn, 'usd', cost)\n"
    "      redis.call('HINCRBY', x.bn, 'tok', tokens)\n"
    "      if x.exp > 0 then redis.call('EXPIREAT', x.bn, x.exp) end\n"
    "    end\n"
    "    if x.tpm > 0 and tokens > 0 then\n"
    "      redis.call('ZADD', x.w, now, member .. ':' .. tokens)\n"
    "      redis.call('INCRBY', x.ws, tokens)\n"
    "      redis.call('PEXPIRE', x.w, 61000)\n"
    "      redis.call('PEXPIRE', x.ws, 61000)\n"
    "    end\n"
    "  end\n"
    "end\n"
    /* The ledger row, in the same atomic step as the spend it records. */
    "if #ARGV > 20 then\n"
    "  redis.call('XADD', KEYS[14], 'MAXLEN', '~', " SL_STATE_STREAM_MAX ", '*', unpack(ARGV, 21))\n"
    "end\n"
    "return { 0 }\n";
