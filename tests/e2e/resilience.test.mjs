// Routing and resilience end to end: weighted targets, fallback chains,
// retries with backoff and Retry-After, the circuit breaker, timeouts, and
// how a stream that breaks after its first byte ends. The gateway is built
// from resilience.yaml (short timeouts, a provider on a port where nothing
// listens); faults come from [[mock ...]] directives. Every case runs for
// both protocols, streamed and not, and checks both sides: what the client
// got (status, body, x-sluice-* headers) and what the mock saw (/__calls).
//
// Requests carry a unique tag in their message, so the calls of one request
// are found by tag (fallback calls too, since the body goes upstream as is)
// and the variants of a case can run concurrently without resetting the
// mock. Directives ride in the model name, which glob entries pass upstream
// unchanged, so they reach the primary target and not the fallback. Each
// entry exists once per protocol (oa-/an-), so nothing is translated.
//
// After the run, a "failure matrix" (case x variant -> what the client got,
// how many calls the mock saw) is printed for the record.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import {
  useStack, sleep, eventually, freePort, openaiHeaders, anthropicHeaders,
  CLIENT_KEY, OPENAI_KEY, ANTHROPIC_KEY, E2E_DIR,
} from './lib/harness.mjs';

// resilience.yaml's refusing providers name port 18439; they are pointed
// at a port that was free a moment ago (the before hook checks it still
// refuses).
const DEAD_PORT = await freePort();
const stack = useStack({ upstreams: { 18439: `http://127.0.0.1:${DEAD_PORT}` } });

// ---- requests --------------------------------------------------------------

const PROTOS = {
  openai: {
    id: 'oa',
    path: '/v1/chat/completions',
    headers: () => openaiHeaders(),
    body: (model, content, stream) => ({ model, stream, messages: [{ role: 'user', content }] }),
    provider: 'up-openai',
    alias: 'up-openai-b',
    dead: 'dead-openai',
    isText: (e) => Boolean(e.json?.choices?.[0]?.delta?.content),
    isEnd: (e) => e.data === '[DONE]',
    isError: (e) => e.json?.error !== undefined && e.event === undefined,
    errorMessage: (j) => j?.error?.message,
  },
  anthropic: {
    id: 'an',
    path: '/v1/messages',
    headers: () => anthropicHeaders(),
    body: (model, content, stream) => ({ model, stream, max_tokens: 256,
      messages: [{ role: 'user', content }] }),
    provider: 'up-anthropic',
    alias: 'up-anthropic-b',
    dead: 'dead-anthropic',
    isText: (e) => e.json?.type === 'content_block_delta',
    isEnd: (e) => e.json?.type === 'message_stop' || e.event === 'message_stop',
    isError: (e) => e.event === 'error' && e.json?.type === 'error',
    errorMessage: (j) => j?.error?.message,
  },
};

// Every (protocol, stream) pair a case runs for.
const VARIANTS = Object.keys(PROTOS).flatMap((proto) =>
  [false, true].map((stream) => ({ proto, stream, name: `${proto} ${stream ? 'stream' : 'non-stream'}` })));

// resilience.yaml has every entry twice: `oa-` globs and `-oa` exact names
// for OpenAI clients, `an-`/`-an` for Anthropic ones.
const G = (v, rest) => `${PROTOS[v.proto].id}-${rest}`;
const E = (v, name) => `${name}-${PROTOS[v.proto].id}`;

let tagSeq = 0;
const newTag = () => `tag-${process.pid}-${++tagSeq}`;

// Reads an SSE body to its end, or to the connection breaking: `clean` is
// false when the body did not end properly (a chunked body cut off without
// its last chunk makes the reader throw).
async function readEvents(response) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  let clean = true;
  let error;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = { event: undefined, data: '' };
        for (const line of raw.split('\n')) {
          if (line.startsWith(':')) continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
          if (field === 'event') ev.event = val;
          else if (field === 'data') ev.data = ev.data ? `${ev.data}\n${val}` : val;
        }
        if (ev.data === '' && ev.event === undefined) continue;
        try { ev.json = JSON.parse(ev.data); } catch { /* [DONE] */ }
        events.push(ev);
      }
    }
  } catch (e) {
    clean = false;
    error = e;
  }
  return { events, clean, error, rest: buf };
}

// One request through the gateway. Returns status, headers, elapsed ms,
// and either the body (text/json) or, for an event stream, its events.
async function send({ proto, stream }, model, content, { extra = {}, headers = {} } = {}) {
  const p = PROTOS[proto];
  const t0 = performance.now();
  const r = await fetch(`${stack.url}${p.path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json', ...p.headers(), ...headers },
    body: JSON.stringify({ ...p.body(model, content, stream), ...extra }),
  });
  const res = { status: r.status, headers: r.headers, proto, stream };
  const ct = r.headers.get('content-type') || '';
  if (ct.startsWith('text/event-stream')) {
    Object.assign(res, await readEvents(r));
    res.sse = true;
  } else {
    res.text = await r.text();
    try { res.json = JSON.parse(res.text); } catch { res.json = undefined; }
  }
  res.ms = performance.now() - t0;
  res.sluice = {
    model: r.headers.get('x-sluice-model'),
    provider: r.headers.get('x-sluice-provider'),
    attempts: r.headers.get('x-sluice-attempts'),
  };
  return res;
}

const describeRes = (r) => JSON.stringify({
  status: r.status, sluice: r.sluice, text: r.text?.slice(0, 400),
  events: r.events?.map((e) => e.event || e.data.slice(0, 60)).slice(-6), clean: r.clean,
});

// The mock's calls for one tag, in arrival order.
async function callsFor(tag) {
  const calls = await stack.mock.calls();
  return calls.filter((c) => {
    const msgs = c.body?.messages;
    const last = Array.isArray(msgs) ? msgs[msgs.length - 1] : undefined;
    return typeof last?.content === 'string' && last.content.includes(tag);
  }).sort((a, b) => a.seq - b.seq);
}

// A successful answer in the client's protocol, whole.
function assertGoodAnswer(r, v) {
  assert.equal(r.status, 200, describeRes(r));
  if (v.stream) {
    assert.ok(r.sse, `an event stream: ${describeRes(r)}`);
    assert.ok(r.clean, `the stream ends cleanly: ${r.error}`);
    assert.ok(r.events.some(PROTOS[v.proto].isText), 'text arrives');
    assert.ok(PROTOS[v.proto].isEnd(r.events.at(-1)), `ends with its final event: ${describeRes(r)}`);
    assert.ok(!r.events.some(PROTOS[v.proto].isError), 'no error event');
  } else if (v.proto === 'openai') {
    assert.equal(r.json?.object, 'chat.completion', describeRes(r));
    assert.ok(r.json.choices[0].message.content.length > 0);
  } else {
    assert.equal(r.json?.type, 'message', describeRes(r));
    assert.ok(r.json.content[0].text.length > 0);
  }
}

// sluice's own error (not an upstream body) in the client's protocol.
function assertSluiceError(r, v, status) {
  assert.equal(r.status, status, describeRes(r));
  assert.ok(!r.sse, 'an error before any byte is a plain JSON answer, not a stream');
  if (v.proto === 'openai') {
    assert.equal(typeof r.json?.error?.message, 'string', describeRes(r));
    assert.equal(r.json.error.code, 'upstream_failed');
  } else {
    assert.equal(r.json?.type, 'error', describeRes(r));
    assert.equal(typeof r.json.error?.type, 'string');
    assert.equal(typeof r.json.error?.message, 'string');
  }
  return PROTOS[v.proto].errorMessage(r.json);
}

function assertNoLeak(text) {
  for (const secret of ['127.0.0.1', 'localhost', new URL(stack.mock.url).port, `${DEAD_PORT}`, 'http://',
    OPENAI_KEY, ANTHROPIC_KEY, CLIENT_KEY]) {
    assert.ok(!text.includes(secret), `the error leaks '${secret}': ${text}`);
  }
}

// A stream that broke after bytes reached the client: it carries text,
// ends with an error event in the client's protocol, has no clean end
// marker, and the connection closes without the terminating chunk.
function assertBrokenStream(r, v, reason) {
  const p = PROTOS[v.proto];
  assert.equal(r.status, 200, describeRes(r));
  assert.ok(r.sse, describeRes(r));
  assert.ok(r.events.some(p.isText), 'some text went out before the failure');
  assert.ok(!r.events.some(p.isEnd), `no clean end (${v.proto === 'openai' ? '[DONE]' : 'message_stop'}): ${describeRes(r)}`);
  const last = r.events.at(-1);
  assert.ok(p.isError(last), `the last event is an error event: ${describeRes(r)}`);
  const msg = v.proto === 'openai' ? last.json.error.message : last.json.error.message;
  assert.match(msg, reason);
  assertNoLeak(last.data);
  assert.equal(r.clean, false, 'the body is cut off (no terminating chunk), not ended cleanly');
}

// Runs fn for every variant at once; failures name their variant.
async function eachVariant(fn, variants = VARIANTS) {
  const results = await Promise.allSettled(variants.map((v) => fn(v, newTag())));
  const failed = results.map((r, i) => [r, variants[i]]).filter(([r]) => r.status === 'rejected');
  if (failed.length) {
    const [r, v] = failed[0];
    r.reason.message = `[${v.name}] ${r.reason.message}` +
      (failed.length > 1 ? ` (also failed: ${failed.slice(1).map(([, fv]) => fv.name).join(', ')})` : '');
    throw r.reason;
  }
}

// ---- the failure matrix, printed at the end ------------------------------

const matrix = [];
function note(kase, v, r, calls) {
  const what = r.sse
    ? `${r.status} SSE ${r.events.length} events, ${r.clean ? 'clean end' : 'cut off'}` +
      `${r.events.some(PROTOS[v.proto].isError) ? ' + error event' : ''}`
    : `${r.status} ${r.json?.error?.code || r.json?.error?.type || r.json?.object || r.json?.type || ''}`;
  matrix.push(`${kase.padEnd(34)} ${v.name.padEnd(20)} -> ${what}; ` +
    `model=${r.sluice.model} provider=${r.sluice.provider} attempts=${r.sluice.attempts}; ` +
    `mock calls=${calls.length}`);
}
after(() => {
  if (!matrix.length) return;
  // Grouped by case in the order the cases ran, variants sorted within.
  const order = [...new Set(matrix.map((l) => l.slice(0, 34)))];
  const rows = [...matrix].sort((a, b) =>
    order.indexOf(a.slice(0, 34)) - order.indexOf(b.slice(0, 34)) || a.localeCompare(b));
  process.stdout.write(`failure matrix (case, variant -> what the client got; what the mock saw)\n${rows.join('\n')}\n`);
});

before(async () => {
  // The refusing providers only refuse if nothing listens on their port.
  const refused = await new Promise((r) => {
    const s = connect(DEAD_PORT, '127.0.0.1');
    s.once('connect', () => { s.destroy(); r(false); });
    s.once('error', (e) => r(e.code === 'ECONNREFUSED'));
  });
  assert.ok(refused, `something listens on 127.0.0.1:${DEAD_PORT}; these tests need it closed`);
});

// ---- attempt order vs. sluicec explain --------------------------------------
//
// First, while the balancing counters are fresh: the gateway's first
// request to explain-chain, whose attempts all fail, so its error lists
// every attempt in order.

let gatewayOrder;

describe('attempt order', () => {
  it('the first request tries the heavier target, the other, then each fallback in order', async () => {
    const tag = newTag();
    const v = { proto: 'openai', stream: false, name: 'openai non-stream' };
    const r = await send(v, 'explain-chain', `${tag} [[mock status=503]]`);
    const calls = await callsFor(tag);
    note('explain chain (all fail)', v, r, calls);
    const msg = assertSluiceError(r, v, 502);
    assertNoLeak(r.text);
    const m = msg.match(/all upstream attempts failed: (.*)$/);
    assert.ok(m, msg);
    const failures = m[1].split('; ').map((f) => f.split(': '));
    gatewayOrder = failures.map(([p]) => p);
    assert.deepEqual(failures, [['dead-2', 'connect'], ['dead-1', 'connect'],
      ['up-openai-b', 'HTTP 503'], ['dead-3', 'connect']]);
    assert.equal(r.sluice.attempts, '4');
    assert.deepEqual(calls.map((c) => c.body.model), ['ex-mid'], 'the mock saw the one reachable fallback');
  });

  it('sluicec explain prints the order the gateway tried', async (t) => {
    const bin = process.env.SLUICEC_BIN || resolve(E2E_DIR, '..', '..', 'build', 'sluicec');
    const spec = process.env.SLUICE_RESILIENCE_SPEC || resolve(E2E_DIR, 'resilience.yaml');
    const run = (args) => new Promise((r) => {
      execFile(bin, args, { timeout: 10000 },
        (err, stdout, stderr) => r({ code: err ? (err.code ?? 1) : 0, stdout, stderr, err }));
    });
    const out = await run(['explain', spec, '--model', 'explain-chain', '--format=json']);
    assert.equal(out.code, 0, `sluicec explain failed: ${out.stderr}`);
    assert.ok(gatewayOrder, 'the gateway order was measured by the previous test');
    const plan = JSON.parse(out.stdout).plan;
    assert.ok(Array.isArray(plan), `explain --format=json has a plan: ${out.stdout.slice(0, 400)}`);
    assert.deepEqual(plan.map((a) => a.provider), gatewayOrder,
      `explain's order differs from the gateway's first request: ${JSON.stringify(plan)}`);
    assert.deepEqual(plan.map((a) => a.entry),
      ['explain-chain', 'explain-chain', 'explain-mid', 'explain-last']);
    assert.deepEqual(plan.map((a) => a.upstream_model), ['ex-b', 'ex-a', 'ex-mid', 'ex-last']);
  });
});

// ---- connection refused ---------------------------------------------------

describe('connection refused', () => {
  it('is retried (attempts: 2) on the entry, then falls back', () => eachVariant(async (v, tag) => {
    const r = await send(v, E(v, 'refused'), `${tag} hello`);
    const calls = await callsFor(tag);
    note('refused, retry 2 + fallback', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '4' });
    assert.deepEqual(calls.map((c) => c.body.model), ['ok-model'], 'only the fallback reached the mock');
  }));

  it('is not retried with attempts: 0; the fallback answers at once', () => eachVariant(async (v, tag) => {
    const r = await send(v, E(v, 'refused-noretry'), `${tag} hello`);
    const calls = await callsFor(tag);
    note('refused, retry 0 + fallback', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '2' });
    assert.deepEqual(calls.map((c) => c.body.model), ['ok-model']);
  }));
});

// ---- resets and status codes ----------------------------------------------

describe('failures before the first byte', () => {
  it('a reset with nothing sent is retried, then falls back', () => eachVariant(async (v, tag) => {
    const model = G(v, 'chain-reset [[mock fail=reset]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('reset before any byte (chain)', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
    // The 2 tries of the entry, then the fallback once.
    const models = calls.map((c) => c.body.model);
    assert.equal(models.at(-1), 'ok-model');
    assert.ok(models.length === 3 && models.slice(0, -1).every((m) => m === model), JSON.stringify(models));
  }));

  it('5xx answers (500, 502, 503, 504, 529) are retried; the last one is passed back', async () => {
    const codes = [500, 502, 503, 504, 529];
    await Promise.all(codes.map((code) => eachVariant(async (v, tag) => {
      const model = G(v, `retry-${code} [[mock status=${code}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`HTTP ${code}`, v, r, calls);
      assert.equal(r.status, code, describeRes(r));
      assert.equal(calls.length, 3, '1 try + 2 retries');
      assert.ok(calls.every((c) => c.body.model === model));
      assert.equal(r.sluice.attempts, '3');
      assert.equal(r.sluice.provider, PROTOS[v.proto].provider);
      assert.ok(!r.sse, 'an upstream error answer is not turned into a stream');
      assert.equal(PROTOS[v.proto].errorMessage(r.json),
        `mock-upstream: simulated ${code} (requested by a [[mock]] directive)`, describeRes(r));
    })));
  });

  it('4xx answers (400, 401, 403, 404, 413, 422) are never retried and pass back unchanged', async () => {
    const openaiType = { 400: 'invalid_request_error', 401: 'invalid_request_error',
      403: 'permission_error', 404: 'invalid_request_error', 413: 'invalid_request_error',
      422: 'invalid_request_error' };
    const openaiCode = { 401: 'invalid_api_key', 404: 'model_not_found' };
    const anthropicType = { 400: 'invalid_request_error', 401: 'authentication_error',
      403: 'permission_error', 404: 'not_found_error', 413: 'request_too_large',
      422: 'api_error' };
    const codes = [400, 401, 403, 404, 413, 422];
    await Promise.all(codes.map((code) => eachVariant(async (v, tag) => {
      const model = G(v, `retry-${code} [[mock status=${code}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`HTTP ${code}`, v, r, calls);
      assert.equal(r.status, code, describeRes(r));
      assert.equal(calls.length, 1, 'never retried');
      assert.equal(r.sluice.attempts, '1');
      const message = `mock-upstream: simulated ${code} (requested by a [[mock]] directive)`;
      if (v.proto === 'openai') {
        assert.deepEqual(r.json, { error: { message, type: openaiType[code], param: null,
          code: openaiCode[code] ?? null } }, describeRes(r));
      } else {
        assert.deepEqual(Object.keys(r.json).sort(), ['error', 'request_id', 'type']);
        assert.equal(r.json.type, 'error');
        assert.deepEqual(r.json.error, { type: anthropicType[code], message });
        assert.match(r.json.request_id, /^req_/);
        assert.equal(r.headers.get('request-id'), r.json.request_id,
          'the upstream request-id header passes through with its body');
      }
    })));
  });

  it('429 with Retry-After: 1 is retried after about a second, each time', () => eachVariant(async (v, tag) => {
    const model = G(v, 'retry-429 [[mock status=429 retry_after=1]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('429 Retry-After: 1', v, r, calls);
    assert.equal(r.status, 429, describeRes(r));
    assert.equal(r.headers.get('retry-after'), '1', 'the last answer keeps its Retry-After');
    assert.equal(calls.length, 3);
    assert.equal(r.sluice.attempts, '3');
    for (let i = 1; i < calls.length; i++) {
      const gap = (calls[i].time - calls[i - 1].time) * 1000;
      assert.ok(gap >= 950, `retry ${i} came ${gap.toFixed(0)} ms after the 429 (Retry-After: 1)`);
      assert.ok(gap < 2100, `retry ${i} came ${gap.toFixed(0)} ms later: more than Retry-After`);
    }
    if (v.proto === 'openai') assert.equal(r.json.error.code, 'rate_limit_exceeded');
    else assert.equal(r.json.error.type, 'rate_limit_error');
  }));

  it('a Retry-After longer than the cap waits only the cap (300 ms)', () => eachVariant(async (v, tag) => {
    const model = G(v, 'capped-429 [[mock status=429 retry_after=5]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('429 Retry-After: 5, cap 300ms', v, r, calls);
    assert.equal(r.status, 429, describeRes(r));
    assert.equal(calls.length, 2);
    // The mock's own timestamps; the upper bounds are the Retry-After the
    // gateway must not honour (5 s), so a loaded machine cannot reach them.
    const gap = (calls[1].time - calls[0].time) * 1000;
    assert.ok(gap >= 250 && gap < 5000, `retry after ${gap.toFixed(0)} ms; cap is 300 ms, Retry-After 5 s`);
    assert.ok(r.ms < 5000, `answered in ${r.ms.toFixed(0)} ms, before Retry-After: 5 would allow a retry`);
  }));

  // libcurl by itself re-sends a POST whose reused connection dies before
  // any response byte; upstream.c refuses that second send so only the
  // entry's retry rules decide (and x-sluice-attempts counts every call).
  it("a reset is not re-sent behind the retry policy's back", () => eachVariant(async (v, tag) => {
    // Warm the gateway's connection pool to the mock first, so the failing
    // request goes out on a reused connection, as it would in production.
    await Promise.all(Array.from({ length: 4 }, () => send(v, G(v, 'custom-warm'), `${newTag()} warm`)));
    // custom-*: on: [409, 503, timeout], so a reset is final, after 1 call.
    const model = G(v, 'custom-reset [[mock fail=reset]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('reset, not in on: list (pool warm)', v, r, calls);
    const msg = assertSluiceError(r, v, 502);
    assert.match(msg, /: reset$/);
    assert.equal(r.sluice.attempts, '1');
    assert.equal(calls.length, 1, `the upstream received the request ${calls.length} times for 1 attempt`);
  }));

  it('a written on: list replaces the defaults', async () => {
    // custom-*: attempts 1, on: [409, 503, timeout].
    const cases = [
      { d: 'status=409', calls: 2, status: 409 },
      { d: 'status=503', calls: 2, status: 503 },
      { d: 'status=500', calls: 1, status: 500 },
      { d: 'status=429', calls: 1, status: 429 },
      { d: 'fail=stall', calls: 2, status: 504, reason: /: first_byte_timeout; .*: first_byte_timeout$/ },
    ];
    await Promise.all(cases.map((c) => eachVariant(async (v, tag) => {
      const model = G(v, `custom-x [[mock ${c.d}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`on:[409,503,timeout] ${c.d}`, v, r, calls);
      assert.equal(r.status, c.status, describeRes(r));
      assert.equal(calls.length, c.calls, `${c.d}: ${c.calls} calls`);
      assert.equal(r.sluice.attempts, String(c.calls));
      if (c.reason) {
        const msg = assertSluiceError(r, v, c.status);
        assert.match(msg, c.reason);
        assertNoLeak(r.text);
      }
    })));
  });
});

// ---- timeouts ------------------------------------------------------------

describe('timeouts', () => {
  it('a stall before the first byte times out (first_byte) and the next attempt runs', () => eachVariant(async (v, tag) => {
    const model = G(v, 'chain-stall [[mock fail=stall]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('stall before first byte (chain)', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
    assert.deepEqual(calls.map((c) => c.body.model), [model, model, 'ok-model']);
    // Two first-byte timeouts of 1 s each; without them each attempt would
    // run into the 20 s total timeout instead.
    assert.ok(r.ms >= 1900 && r.ms < 20000, `took ${r.ms.toFixed(0)} ms`);
    // The gateway hung up on the stalled attempts.
    const stalled = await eventually(async () => {
      const cs = await callsFor(tag);
      return cs.filter((c) => c.body.model === model).every((c) => c.closed_early) && cs;
    });
    assert.ok(stalled, 'the stalled upstream requests were closed by the gateway');
  }));

  it('a slow answer inside the timeouts succeeds on the first attempt', () => eachVariant(async (v, tag) => {
    // Non-stream: headers after 700 ms. Stream: first chunk after 700 ms,
    // then 700 ms between chunks (idle timeout is 1 s).
    const model = G(v, v.stream ? 'retry-slow [[mock first_byte_ms=700 chunks=3 interval_ms=700]]'
      : 'retry-slow [[mock delay_ms=700]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('slow but within timeouts', v, r, calls);
    assertGoodAnswer(r, v);
    assert.equal(calls.length, 1);
    assert.equal(r.sluice.attempts, '1');
    assert.ok(r.ms >= 650, `took ${r.ms.toFixed(0)} ms`);
    if (v.stream) assert.equal(r.events.filter(PROTOS[v.proto].isText).length, 3);
  }));
});

// ---- streams that break after the first byte --------------------------------

describe('failures after bytes reached the client', () => {
  const streamOnly = VARIANTS.filter((v) => v.stream);
  const bufferedOnly = VARIANTS.filter((v) => !v.stream);

  it('a stall mid-stream ends with an error event after the idle timeout, never retried', () => eachVariant(async (v, tag) => {
    const model = G(v, 'retry-idle [[mock chunks=4 interval_ms=4000]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('stall mid-stream (idle)', v, r, calls);
    assertBrokenStream(r, v, /idle_timeout/);
    // Ended by the 1 s idle timeout, before the mock's second chunk (4 s
    // later) could arrive: event order, not a stopwatch.
    assert.ok(r.ms >= 900, `ended after ${r.ms.toFixed(0)} ms (idle timeout 1 s)`);
    assert.equal(r.events.filter(PROTOS[v.proto].isText).length, 1, 'only the first chunk before the error');
    assert.equal(calls.length, 1, 'committed: no retry once bytes went out');
    assert.equal(r.sluice.attempts, '1');
    const gone = await eventually(async () => (await callsFor(tag))[0]?.closed_early);
    assert.ok(gone, 'the gateway hung up on the stalled upstream');
  }, streamOnly));

  for (const fail of ['truncate', 'abort']) {
    it(`fail=${fail} mid-stream ends with an error event, never retried`, () => eachVariant(async (v, tag) => {
      const model = G(v, `retry-${fail} [[mock fail=${fail}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`${fail} mid-stream`, v, r, calls);
      assertBrokenStream(r, v, /reset|error/);
      assert.equal(calls.length, 1, 'committed: no retry once bytes went out');
      assert.equal(r.sluice.attempts, '1');
    }, streamOnly));

    it(`fail=${fail} mid-body (not streamed: nothing sent yet) is retried, then falls back`, () => eachVariant(async (v, tag) => {
      const model = G(v, `chain-${fail} [[mock fail=${fail}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`${fail} mid-body (chain)`, v, r, calls);
      assertGoodAnswer(r, v);
      assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
      assert.deepEqual(calls.map((c) => c.body.model), [model, model, 'ok-model']);
    }, bufferedOnly));
  }

  it('a stream failing before its first byte (5xx) falls back like any other request', () => eachVariant(async (v, tag) => {
    const model = G(v, 'chain-503 [[mock status=503]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('503 before first byte (chain)', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
    assert.deepEqual(calls.map((c) => c.body.model), [model, model, 'ok-model']);
  }));
});

// ---- everything fails -------------------------------------------------------

describe('all attempts fail', () => {
  it("sluice's own error names every attempt and reason, and leaks nothing", () => eachVariant(async (v, tag) => {
    // doomed: refused, refused (retry), then doomed-last, which the
    // message stalls: the last failure is a timeout, so 504.
    const r = await send(v, E(v, 'doomed'), `${tag} [[mock fail=stall]]`);
    const calls = await callsFor(tag);
    note('all fail (refused, refused, stall)', v, r, calls);
    const msg = assertSluiceError(r, v, 504);
    const dead = PROTOS[v.proto].dead;
    assert.equal(msg, `all upstream attempts failed: ${dead}: connect; ${dead}: connect; ` +
      `${PROTOS[v.proto].alias}: first_byte_timeout`);
    assertNoLeak(r.text);
    assert.equal(r.sluice.attempts, '3');
    assert.deepEqual(calls.map((c) => c.body.model), ['doomed-last-model']);
  }));

  it('retries spent on one target: connection resets -> 502 naming each', () => eachVariant(async (v, tag) => {
    const model = G(v, 'retry-reset [[mock fail=reset]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('reset x3 (retry, no fallback)', v, r, calls);
    const msg = assertSluiceError(r, v, 502);
    const p = PROTOS[v.proto].provider;
    assert.equal(msg, `all upstream attempts failed: ${p}: reset; ${p}: reset; ${p}: reset`);
    assertNoLeak(r.text);
    assert.equal(r.sluice.attempts, '3');
    assert.equal(calls.length, 3, `${calls.length} calls`);
  }));
});

// ---- weighted balancing -------------------------------------------------------

describe('weighted targets', () => {
  for (const proto of Object.keys(PROTOS)) {
    it(`${proto}: 400 requests over a 3:1 entry land 300/100 (±5 %)`, async () => {
      const model = `weighted-${PROTOS[proto].id}`;
      const tag = newTag();
      const N = 400;
      const seen = { heavy: 0, light: 0 };
      const byHeader = {};
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const i = next++;
          const v = { proto, stream: i % 2 === 1 };
          const r = await send(v, model, `${tag} #${i}`);
          assertGoodAnswer(r, v);
          byHeader[r.sluice.provider] = (byHeader[r.sluice.provider] || 0) + 1;
          assert.equal(r.sluice.attempts, '1');
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const calls = await callsFor(tag);
      assert.equal(calls.length, N);
      for (const c of calls) {
        if (c.body.model === 'w-heavy') seen.heavy++;
        else if (c.body.model === 'w-light') seen.light++;
        else assert.fail(`unexpected upstream model ${c.body.model}`);
      }
      matrix.push(`${'weighted 3:1 x400'.padEnd(34)} ${proto.padEnd(20)} -> heavy=${seen.heavy} light=${seen.light}; headers ${JSON.stringify(byHeader)}`);
      assert.ok(Math.abs(seen.heavy - 300) <= 15, `heavy got ${seen.heavy}, want 300 ± 15`);
      assert.ok(Math.abs(seen.light - 100) <= 15, `light got ${seen.light}, want 100 ± 15`);
      assert.equal(byHeader[PROTOS[proto].provider], seen.heavy, 'x-sluice-provider agrees with the mock');
      assert.equal(byHeader[PROTOS[proto].alias], seen.light);
    });
  }
});

// ---- circuit breaker ----------------------------------------------------------

async function targetState(model, provider) {
  const r = await fetch(`${stack.url}/healthz?detail=1`);
  assert.equal(r.status, 200);
  const j = await r.json();
  const t = j.targets?.find((x) => x.model === model && x.provider === provider);
  assert.ok(t, `healthz lists ${model} -> ${provider}: ${JSON.stringify(j.targets)}`);
  return t;
}

describe('circuit breaker', () => {
  it('3 failures open a target for 2 s; then one probe decides; success closes it', async () => {
    // oa-breaker-* / an-breaker-*: attempts 0, fallback ok, cooldown {failures: 3, period: 2s}.
    // The two protocols use different targets, so they run side by side.
    await Promise.all(Object.keys(PROTOS).map(async (proto) => {
      const p = PROTOS[proto];
      const vs = { proto, stream: true, name: `${proto} stream` };
      const vn = { proto, stream: false, name: `${proto} non-stream` };
      const entry = `${p.id}-breaker-*`;
      const plain = `${p.id}-breaker-x`;
      const failing = `${plain} [[mock status=503]]`;

      // 1. Three consecutive failures, each falling back.
      for (const [i, v] of [vn, vs, vn].entries()) {
        const tag = newTag();
        const r = await send(v, failing, `${tag} hello`);
        const calls = await callsFor(tag);
        note(`breaker: failure ${i + 1}/3`, v, r, calls);
        assertGoodAnswer(r, v);
        assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: p.alias, attempts: '2' });
        assert.deepEqual(calls.map((c) => c.body.model), [failing, 'ok-model'],
          `failure ${i + 1}: the primary is still tried`);
        const st = await targetState(entry, p.provider);
        if (i < 2) assert.equal(st.state, 'ok', `after ${i + 1} failures: ${JSON.stringify(st)}`);
      }
      const askedAt = performance.now();
      const cooling = await targetState(entry, p.provider);
      assert.equal(cooling.state, 'cooling', JSON.stringify(cooling));
      assert.equal(cooling.consecutive_failures, 3);
      assert.ok(cooling.cooldown_remaining_ms > 0 && cooling.cooldown_remaining_ms <= 2000,
        JSON.stringify(cooling));

      // 2. While cooling: skipped, the mock sees no call to it.
      for (const v of [vs, vn]) {
        const tag = newTag();
        const r = await send(v, plain, `${tag} hello`);
        const calls = await callsFor(tag);
        note('breaker: while cooling', v, r, calls);
        assertGoodAnswer(r, v);
        assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: p.alias, attempts: '1' });
        assert.deepEqual(calls.map((c) => c.body.model), ['ok-model'], 'the cooling target is skipped');
      }
      assert.equal((await targetState(entry, p.provider)).state, 'cooling', 'those requests came inside the cooldown');

      // 3. After the period: half-open. One slow probe is let through; a
      // request arriving meanwhile is not sent to the target.
      let half;
      await eventually(async () => {
        half = await targetState(entry, p.provider);
        return half.state !== 'cooling';
      }, 4000, 100);
      assert.equal(half.state, 'probing', `the cooldown ends: ${JSON.stringify(half)}`);
      // Not before the period: the gateway's own cooldown_remaining_ms,
      // read after askedAt, cannot have run out before askedAt + remaining.
      assert.ok(performance.now() - askedAt >= cooling.cooldown_remaining_ms - 1,
        `probing ${(performance.now() - askedAt).toFixed(0)} ms after ${cooling.cooldown_remaining_ms} ms were left`);
      const probeTag = newTag();
      const otherTag = newTag();
      const probe = send(vs, `${plain} [[mock first_byte_ms=600]]`, `${probeTag} hello`);
      await sleep(200);
      const other = await send(vn, plain, `${otherTag} hello`);
      const probed = await probe;
      const probeCalls = await callsFor(probeTag);
      const otherCalls = await callsFor(otherTag);
      note('breaker: half-open probe', vs, probed, probeCalls);
      note('breaker: during the probe', vn, other, otherCalls);
      assertGoodAnswer(probed, vs);
      assert.deepEqual(probed.sluice, { model: entry, provider: p.provider, attempts: '1' });
      assert.equal(probeCalls.length, 1);
      assertGoodAnswer(other, vn);
      assert.deepEqual(otherCalls.map((c) => c.body.model), ['ok-model'],
        'only one probe: the concurrent request goes to the fallback');

      // 4. The probe succeeded: the target is back.
      const back = await targetState(entry, p.provider);
      assert.equal(back.state, 'ok', JSON.stringify(back));
      assert.equal(back.consecutive_failures, 0);
      const tag = newTag();
      const r = await send(vn, plain, `${tag} hello`);
      const calls = await callsFor(tag);
      note('breaker: closed again', vn, r, calls);
      assertGoodAnswer(r, vn);
      assert.deepEqual(r.sluice, { model: entry, provider: p.provider, attempts: '1' });
      assert.deepEqual(calls.map((c) => c.body.model), [plain]);
    }));
  });
});

// README (circuit breaker): "If every remaining target is cooling, sluice
// tries them anyway: a degraded answer beats none."
describe('every target cooling: tried anyway', () => {
  it('with both targets of an entry cooling, requests still go upstream and their answers reach the client', async () => {
    // oa-allcool-* / an-allcool-*: two targets, one retry, no fallback,
    // cooldown {failures: 1, period: 60s}. Each protocol has its own targets.
    await Promise.all(Object.keys(PROTOS).map(async (proto) => {
      const p = PROTOS[proto];
      const v = { proto, stream: false, name: `${proto} non-stream` };
      const entry = `${p.id}-allcool-*`;
      const plain = `${p.id}-allcool-x`;
      const failing = `${plain} [[mock status=503]]`;
      const states = async () => [(await targetState(entry, p.provider)).state, (await targetState(entry, p.alias)).state];

      // 1. One request fails on both targets (the try and its retry): both cool.
      let tag = newTag();
      let r = await send(v, failing, `${tag} hello`);
      let calls = await callsFor(tag);
      note('all cooling: open both', v, r, calls);
      assert.equal(r.status, 503, describeRes(r));
      assert.equal(calls.length, 2, 'the try and the retry');
      assert.deepEqual(await states(), ['cooling', 'cooling']);

      // 2. Both cooling and failing again: both are still tried, and the
      // client gets the upstream's own answer, not a refusal by sluice.
      tag = newTag();
      r = await send(v, failing, `${tag} hello`);
      calls = await callsFor(tag);
      note('all cooling: tried anyway, failing', v, r, calls);
      assert.equal(calls.length, 2, `both cooling targets tried: ${describeRes(r)}`);
      assert.equal(r.status, 503, describeRes(r));
      assert.equal(r.sluice.attempts, '2');
      assert.deepEqual(await states(), ['cooling', 'cooling']);

      // 3. Both cooling, the upstream healthy: one call, a good answer,
      // and that target's circuit closes; the other stays open.
      tag = newTag();
      r = await send(v, plain, `${tag} hello`);
      calls = await callsFor(tag);
      note('all cooling: tried anyway, answering', v, r, calls);
      assertGoodAnswer(r, v);
      assert.equal(r.sluice.attempts, '1');
      assert.equal(r.sluice.model, entry);
      assert.deepEqual(calls.map((c) => c.body.model), [plain]);
      const closed = r.sluice.provider;
      assert.ok([p.provider, p.alias].includes(closed), describeRes(r));
      const after = await states();
      assert.deepEqual(after, closed === p.provider ? ['ok', 'cooling'] : ['cooling', 'ok']);
    }));
  });
});

// ---- traffic cannot be redirected ----------------------------------------------

describe('upstream address is fixed by the spec', () => {
  let trap;
  const trapHits = []; // must stay empty
  before(async () => {
    trap = createServer((req, res) => {
      trapHits.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"trap":true}');
    });
    const port = await freePort();
    await new Promise((r) => trap.listen(port, '127.0.0.1', r));
    trap.port = port;
  });
  after(() => new Promise((r) => trap.close(r)));

  it('api_base / base_url in the body and Host / X-Forwarded-Host headers are ignored', () => eachVariant(async (v, tag) => {
    const p = PROTOS[v.proto];
    const trapHost = `127.0.0.1:${trap.port}`;
    const trapUrl = `http://${trapHost}${v.proto === 'openai' ? '/v1' : ''}`;
    const body = JSON.stringify({
      ...p.body(G(v, 'retry-redirect'), `${tag} hello`, v.stream),
      api_base: trapUrl, base_url: trapUrl, baseURL: trapUrl, api_host: trapHost,
    });
    // node:http, because fetch will not send a Host header of our choosing.
    const { status, headers, text } = await new Promise((res, rej) => {
      const req = httpRequest({
        host: '127.0.0.1', port: new URL(stack.url).port, method: 'POST', path: p.path,
        headers: {
          ...p.headers(), 'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
          host: trapHost, 'x-forwarded-host': trapHost, 'x-forwarded-proto': 'http',
          forwarded: `host=${trapHost};proto=http`, 'x-original-url': trapUrl,
        },
      }, (resp) => {
        let t = '';
        resp.setEncoding('utf8');
        resp.on('data', (d) => { t += d; });
        resp.on('end', () => res({ status: resp.statusCode, headers: resp.headers, text: t }));
        resp.on('error', rej);
      });
      req.on('error', rej);
      req.end(body);
    });
    const calls = await callsFor(tag);
    matrix.push(`${'api_base/Host redirect attempt'.padEnd(34)} ${v.name.padEnd(20)} -> ${status}; provider=${headers['x-sluice-provider']}; mock calls=${calls.length}; trap hits=${trapHits.length}`);
    assert.equal(status, 200, text.slice(0, 300));
    assert.equal(headers['x-sluice-provider'], p.provider);
    assert.equal(calls.length, 1, 'the mock got the call');
    assert.equal(calls[0].headers.host, stack.mock.address);
    assert.ok(!JSON.stringify(calls[0].headers).includes(`${trap.port}`),
      `no client-supplied address reached the upstream headers: ${JSON.stringify(calls[0].headers)}`);
    assert.deepEqual(trapHits, [], 'nothing reached the other address');
  }));

  it('an upstream 302 is not followed', () => eachVariant(async (v, tag) => {
    const trapUrl = `http://127.0.0.1:${trap.port}${PROTOS[v.proto].path}`;
    const model = G(v, `retry-302 [[mock redirect=${trapUrl}]]`);
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('upstream 302', v, r, calls);
    assert.equal(calls.length, 1, 'one call, not retried');
    assert.equal(calls[0].status, 302, 'the mock did answer 302');
    assert.deepEqual(trapHits, [], 'the gateway did not follow the Location');
    assert.ok(r.status < 200 || r.status >= 300, `not a success: ${describeRes(r)}`);
    const loc = r.headers.get('location');
    assert.ok(!loc || !loc.includes(`${trap.port}`),
      `the client is not sent to the upstream's Location either: ${loc}`);
  }));
});
