// What the resilience e2e files share (resilience.test.mjs,
// resilience-targets.test.mjs): the gateway built from resilience.yaml with
// its refusing providers pointed at a closed port, requests in both
// protocols streamed or not, the mock's calls found by tag, the assertions
// on both sides, and the failure matrix.
//
// Importing this module sets up the stack for the importing test file:
// useStack and the hooks below register with node:test at import, so each
// file gets its own mock and gateway.
//
// Requests carry a unique tag in their message, so the calls of one request
// are found by tag (fallback calls too, since the body goes upstream as is)
// and the variants of a case can run concurrently without resetting the
// mock. Directives ride in the model name, which glob entries pass upstream
// unchanged, so they reach the primary target and not the fallback. Each
// entry exists once per protocol (oa-/an-), so nothing is translated.
//
// After each file's run, a "failure matrix" (case x variant -> what the
// client got, how many calls the mock saw) is printed for the record.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { useStack, freePort, openaiHeaders, anthropicHeaders, CLIENT_KEY, OPENAI_KEY, ANTHROPIC_KEY } from './harness.mjs';

// resilience.yaml's refusing providers name port 18439; they are pointed
// at a port that was free a moment ago (the before hook checks it still
// refuses).
const DEAD_PORT = await freePort();
export const stack = useStack({ upstreams: { 18439: `http://127.0.0.1:${DEAD_PORT}` } });

// ---- requests --------------------------------------------------------------

export const PROTOS = {
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
export const VARIANTS = Object.keys(PROTOS).flatMap((proto) =>
  [false, true].map((stream) => ({ proto, stream, name: `${proto} ${stream ? 'stream' : 'non-stream'}` })));

// resilience.yaml has every entry twice: `oa-` globs and `-oa` exact names
// for OpenAI clients, `an-`/`-an` for Anthropic ones.
export const G = (v, rest) => `${PROTOS[v.proto].id}-${rest}`;
export const E = (v, name) => `${name}-${PROTOS[v.proto].id}`;

let tagSeq = 0;
export const newTag = () => `tag-${process.pid}-${++tagSeq}`;

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
export async function send({ proto, stream }, model, content, { extra = {}, headers = {} } = {}) {
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

export const describeRes = (r) => JSON.stringify({
  status: r.status, sluice: r.sluice, text: r.text?.slice(0, 400),
  events: r.events?.map((e) => e.event || e.data.slice(0, 60)).slice(-6), clean: r.clean,
});

// The mock's calls for one tag, in arrival order.
export async function callsFor(tag) {
  const calls = await stack.mock.calls();
  return calls.filter((c) => {
    const msgs = c.body?.messages;
    const last = Array.isArray(msgs) ? msgs[msgs.length - 1] : undefined;
    return typeof last?.content === 'string' && last.content.includes(tag);
  }).sort((a, b) => a.seq - b.seq);
}

// A successful answer in the client's protocol, whole.
export function assertGoodAnswer(r, v) {
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
export function assertSluiceError(r, v, status) {
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

export function assertNoLeak(text) {
  for (const secret of ['127.0.0.1', 'localhost', new URL(stack.mock.url).port, `${DEAD_PORT}`, 'http://',
    OPENAI_KEY, ANTHROPIC_KEY, CLIENT_KEY]) {
    assert.ok(!text.includes(secret), `the error leaks '${secret}': ${text}`);
  }
}

// A stream that broke after bytes reached the client: it carries text,
// ends with an error event in the client's protocol, has no clean end
// marker, and the connection closes without the terminating chunk.
export function assertBrokenStream(r, v, reason) {
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
export async function eachVariant(fn, variants = VARIANTS) {
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

export const matrix = [];
export function note(kase, v, r, calls) {
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
