// The response cache end to end: a gateway compiled from cache.yaml in
// front of the mock upstream. Hits, misses, the key's normalisation
// (member order), bypass (header, Cache-Control, temperature), TTL expiry,
// LRU eviction, scopes, a key's `cache: false`, streams replayed byte for
// byte (same protocol and translated), budgets untouched by hits, the
// ledger's cache columns, the metrics, and that a spec without `cache:`
// links no cache code. The upstream's call log tells hits from misses.
//
// The raw keys below are test fixtures; cache.yaml holds only their hashes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { E2E_DIR, OPENAI_KEY, eventually, sleep, startGateway, startMock } from './lib/harness.mjs';

const BIN = process.env.SLUICE_CACHE_BIN || resolve(E2E_DIR, '..', '..', 'build', 'tests', 'sluice-cache');
const PLAIN_BIN = process.env.SLUICE_BIN || resolve(E2E_DIR, '..', '..', 'build', 'tests', 'sluice-e2e');
const SQLITE3 = process.env.SQLITE3_BIN || 'sqlite3';
const PROMTOOL = process.env.PROMTOOL_BIN || 'promtool';
const KEYS = {
  alice: 'sk-sluice-test-cache-alice-5c0e1f7a2b',
  bob: 'sk-sluice-test-cache-bob-9d3a44e1c6',
  carol: 'sk-sluice-test-cache-carol-1f8b2e6d0a',
  broke: 'sk-sluice-test-cache-broke-4b7d21e09c',
};
const ADMIN = 'sk-sluice-test-cache-admin-7e2c9a1b44';

let mock;
let gw;
let dir;
let state;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cache-'));
  state = join(dir, 'ledger.db');
  mock = await startMock();
  try {
    gw = await startGateway({ bin: BIN, mock, args: ['--workers', '2', '--state', state, '--ledger', 'commit'] });
  } catch (e) {
    await mock.stop();
    throw e;
  }
});

after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  rmSync(dir, { recursive: true, force: true });
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

let seq = 0;
// A prompt no other test uses, so each test starts from an empty cache.
const fresh = (what) => `${what} #${++seq} ${Date.now()}`;

async function post(path, body, { key = KEYS.alice, headers = {}, raw = false } = {}) {
  const r = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, body: raw ? null : JSON.parse(text) };
}

const chatBody = (model, prompt, extra = {}) =>
  ({ model, messages: [{ role: 'user', content: prompt }], temperature: 0, ...extra });
const chat = (model, prompt, opts = {}) =>
  post('/v1/chat/completions', chatBody(model, prompt, opts.extra), opts);

// Upstream calls whose body carried this prompt.
async function upstreamCalls(prompt) {
  const calls = await mock.calls();
  return calls.filter((c) => JSON.stringify(c.body).includes(prompt)).length;
}

function sql(query) {
  const r = spawnSync(SQLITE3, ['-json', state, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sqlite3: ${r.error || r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

async function metrics() {
  const r = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(r.status, 200);
  return r.text();
}
const sample = (text, name, labels) => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.split(' ').pop());
  }
  return undefined;
};

test('a repeated request is a hit: same bytes, no upstream call, x-sluice-cache says so', async () => {
  const p = fresh('hit');
  const a = await chat('cached', p);
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('x-sluice-cache'), 'miss');
  const b = await chat('cached', p);
  assert.equal(b.status, 200);
  assert.equal(b.headers.get('x-sluice-cache'), 'hit');
  assert.equal(b.headers.get('x-sluice-attempts'), '0');
  assert.equal(b.headers.get('x-sluice-model'), 'cached');
  assert.equal(b.headers.get('x-sluice-provider'), 'up-openai');
  assert.equal(b.text, a.text, 'the stored answer, byte for byte (the mock numbers its ids)');
  assert.equal(await upstreamCalls(p), 1);
  // The access log says so too (text format, on the gateway's stderr).
  const lines = await eventually(() => gw.log().split('\n').filter((l) => l.includes('model=cached') && / cache=(hit|miss)/.test(l)));
  assert.ok(lines.some((l) => / attempts=0 .*cache=hit/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => / cache=miss/.test(l)), lines.join('\n'));
});

test('the key ignores member order and whitespace but not the tools', async () => {
  const p = fresh('order');
  const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
  const a = await post('/v1/chat/completions', { model: 'cached', temperature: 0, messages: [{ role: 'user', content: p }], max_tokens: 50, tools });
  assert.equal(a.headers.get('x-sluice-cache'), 'miss');
  const reordered = `{ "tools": [{"function": {"parameters": {"properties": {}, "type": "object"}, "name": "f"}, "type": "function"}],
    "max_tokens": 50, "messages": [{"content": ${JSON.stringify(p)}, "role": "user"}], "temperature": 0, "model": "cached" }`;
  const b = await post('/v1/chat/completions', reordered);
  assert.equal(b.headers.get('x-sluice-cache'), 'hit');
  assert.equal(b.text, a.text);
  const otherTools = [{ type: 'function', function: { name: 'g', parameters: { type: 'object', properties: {} } } }];
  const c = await post('/v1/chat/completions', { model: 'cached', temperature: 0, messages: [{ role: 'user', content: p }], max_tokens: 50, tools: otherTools });
  assert.equal(c.headers.get('x-sluice-cache'), 'miss');
  const d = await post('/v1/chat/completions', { model: 'cached', temperature: 0, messages: [{ role: 'user', content: p }], max_tokens: 51, tools });
  assert.equal(d.headers.get('x-sluice-cache'), 'miss', 'another output limit is another question');
});

test('bypass: the header, Cache-Control no-store, and a temperature the rule does not allow', async () => {
  const p = fresh('bypass');
  await chat('cached', p);
  const b = await chat('cached', p, { headers: { 'x-sluice-cache': 'bypass' } });
  assert.equal(b.headers.get('x-sluice-cache'), 'bypass');
  const c = await chat('cached', p, { headers: { 'cache-control': 'no-store' } });
  assert.equal(c.headers.get('x-sluice-cache'), 'bypass');
  assert.equal(await upstreamCalls(p), 3);

  const warm = fresh('warm');
  for (const extra of [{ temperature: 0.7 }, { temperature: undefined }]) {
    const r1 = await post('/v1/chat/completions', { model: 'cached', messages: [{ role: 'user', content: warm }], ...extra });
    assert.equal(r1.headers.get('x-sluice-cache'), 'bypass');
  }
  const r2 = await post('/v1/chat/completions', { model: 'cached', messages: [{ role: 'user', content: warm }], temperature: 0.7 });
  assert.equal(r2.headers.get('x-sluice-cache'), 'bypass', 'never stored either');
  assert.equal(await upstreamCalls(warm), 3);

  // allow_temperature: true caches it.
  const hot = fresh('hot');
  const h1 = await post('/v1/chat/completions', { model: 'shared', messages: [{ role: 'user', content: hot }], temperature: 0.7 });
  const h2 = await post('/v1/chat/completions', { model: 'shared', messages: [{ role: 'user', content: hot }], temperature: 0.7 });
  assert.deepEqual([h1.headers.get('x-sluice-cache'), h2.headers.get('x-sluice-cache')], ['miss', 'hit']);
});

test('Cache-Control: no-cache asks upstream and stores the fresh answer', async () => {
  const p = fresh('refresh');
  const a = await chat('cached', p);
  const b = await chat('cached', p, { headers: { 'cache-control': 'no-cache' } });
  assert.equal(b.headers.get('x-sluice-cache'), 'bypass');
  assert.notEqual(b.body.id, a.body.id, 'a new answer from upstream');
  const c = await chat('cached', p);
  assert.equal(c.headers.get('x-sluice-cache'), 'hit');
  assert.equal(c.text, b.text, 'the refreshed answer replaced the old one');
});

test('an answer expires after the ttl', async () => {
  const p = fresh('ttl');
  const a = await chat('brief', p);
  const b = await chat('brief', p);
  assert.deepEqual([a.headers.get('x-sluice-cache'), b.headers.get('x-sluice-cache')], ['miss', 'hit']);
  await sleep(1300); // ttl 1s
  const c = await chat('brief', p);
  assert.equal(c.headers.get('x-sluice-cache'), 'miss');
  assert.equal(await upstreamCalls(p), 2);
  assert.ok(sample(await metrics(), 'sluice_cache_evictions_total', { name: 'brief', reason: 'ttl' }) >= 1);
});

test('the byte cap evicts the least recently used answers', async () => {
  const first = fresh('lru-first');
  await chat('small', first);
  for (let i = 0; i < 12; i++) await chat('small', fresh(`lru-${i}`));
  const m = await metrics();
  assert.ok(sample(m, 'sluice_cache_evictions_total', { name: 'small', reason: 'lru' }) >= 1);
  assert.ok(sample(m, 'sluice_cache_bytes', { name: 'small' }) <= 8192);
  const again = await chat('small', first);
  assert.equal(again.headers.get('x-sluice-cache'), 'miss', 'the oldest answer was evicted');
  // The one just stored is still there.
  const last = await chat('small', first);
  assert.equal(last.headers.get('x-sluice-cache'), 'hit');
});

test('scope: per key by default, shared when the rule says so; a key with cache: false never caches', async () => {
  const p = fresh('scope');
  await chat('cached', p, { key: KEYS.alice });
  const bob = await chat('cached', p, { key: KEYS.bob });
  assert.equal(bob.headers.get('x-sluice-cache'), 'miss', 'another key, its own answers');
  const s = fresh('shared');
  await chat('shared', s, { key: KEYS.alice });
  const bobShared = await chat('shared', s, { key: KEYS.bob });
  assert.equal(bobShared.headers.get('x-sluice-cache'), 'hit');
  const q = fresh('carol');
  const c1 = await chat('cached', q, { key: KEYS.carol });
  const c2 = await chat('cached', q, { key: KEYS.carol });
  assert.equal(c1.headers.get('x-sluice-cache'), null);
  assert.equal(c2.headers.get('x-sluice-cache'), null);
  assert.equal(await upstreamCalls(q), 2);
  const plain = await chat('plain', fresh('plain'));
  assert.equal(plain.headers.get('x-sluice-cache'), null, 'no rule, no header');
});

test('streams replay byte for byte, in the protocol they were asked in', async () => {
  const cases = [
    ['/v1/chat/completions', 'cached', {}],                                   // OpenAI -> OpenAI
    ['/v1/chat/completions', 'claude', {}],                                   // OpenAI client, Anthropic upstream
    ['/v1/messages', 'claude', { 'anthropic-version': '2023-06-01' }],        // Anthropic -> Anthropic
    ['/v1/responses', 'cached', {}],                                          // Responses client, OpenAI upstream
    ['/v1/completions', 'gem', {}],                                           // legacy client, Gemini upstream
  ];
  for (const [path, model, headers] of cases) {
    const p = fresh(`stream ${path} ${model}`);
    const body = path === '/v1/responses'
      ? { model, stream: true, temperature: 0, max_output_tokens: 64, input: p }
      : path === '/v1/completions'
        ? { model, stream: true, temperature: 0, max_tokens: 64, prompt: p }
        : { model, stream: true, temperature: 0, max_tokens: 64, messages: [{ role: 'user', content: p }] };
    const a = await post(path, body, { headers, raw: true });
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('x-sluice-cache'), 'miss');
    const b = await post(path, body, { headers, raw: true });
    assert.equal(b.headers.get('x-sluice-cache'), 'hit', `${path} ${model}`);
    assert.equal(b.headers.get('content-type'), a.headers.get('content-type'));
    assert.ok(a.text.split('\n\n').length > 3, 'several events');
    assert.equal(b.text, a.text, `${path} ${model}: the same events`);
    // A stream and a whole answer are different entries.
    const c = await post(path, { ...body, stream: false }, { headers });
    assert.equal(c.headers.get('x-sluice-cache'), 'miss');
    assert.equal(await upstreamCalls(p), 2);
  }
});

test('a large stream replays at the pace of a slow reader, byte for byte', async () => {
  // 20,000 events (over 1 MB): far beyond the connection's 256 KiB high-water mark.
  const p = `${fresh('large')} [[mock chunks=20000]]`;
  const body = JSON.stringify({ model: 'cached', stream: true, temperature: 0, messages: [{ role: 'user', content: p }] });
  const get = (pauseMs) => new Promise((resolveP, reject) => {
    const u = new URL(`${gw.url}/v1/chat/completions`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.alice}` } }, (res) => {
      const parts = [];
      res.on('data', (b) => parts.push(b));
      res.on('end', () => resolveP({ cache: res.headers['x-sluice-cache'], text: Buffer.concat(parts).toString() }));
      res.on('error', reject);
      if (pauseMs) {
        res.pause();
        setTimeout(() => res.resume(), pauseMs);
      }
    });
    req.on('error', reject);
    req.end(body);
  });
  const a = await get(0);
  assert.equal(a.cache, 'miss');
  assert.ok(a.text.length > 1_000_000, `${a.text.length} bytes`);
  const b = await get(300);
  assert.equal(b.cache, 'hit');
  assert.equal(b.text.length, a.text.length);
  assert.ok(b.text === a.text, 'the same bytes');
  assert.ok(a.text.endsWith('data: [DONE]\n\n'));
});

test('Gemini clients: generateContent and streamGenerateContent are separate entries, replayed as sent', async () => {
  const p = fresh('gemini');
  const body = { contents: [{ role: 'user', parts: [{ text: p }] }], generationConfig: { temperature: 0 } };
  const headers = { 'x-goog-api-key': KEYS.alice };
  for (const verb of ['generateContent', 'streamGenerateContent?alt=sse']) {
    const a = await post(`/v1beta/models/gem:${verb}`, body, { headers, raw: true });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.headers.get('x-sluice-cache'), 'miss', verb);
    const b = await post(`/v1beta/models/gem:${verb}`, body, { headers, raw: true });
    assert.equal(b.headers.get('x-sluice-cache'), 'hit', verb);
    assert.equal(b.text, a.text);
  }
  assert.equal(await upstreamCalls(p), 2);
  const hot = await post('/v1beta/models/gem:generateContent',
    { contents: [{ role: 'user', parts: [{ text: p }] }] }, { headers });
  assert.equal(hot.headers.get('x-sluice-cache'), 'bypass', 'no generationConfig.temperature: 0');
});

test('every worker sees the same store (new connections land on either of two workers)', async () => {
  const p = fresh('workers');
  const body = JSON.stringify(chatBody('cached', p));
  const once = () => new Promise((resolveP, reject) => {
    const u = new URL(`${gw.url}/v1/chat/completions`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.alice}`, connection: 'close' } },
    (res) => { res.resume(); res.on('end', () => resolveP(res.headers['x-sluice-cache'])); });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(await once(), 'miss');
  const results = [];
  for (let i = 0; i < 16; i++) results.push(await once());
  assert.deepEqual(results, Array(16).fill('hit'));
});

test('a hit costs nothing against the budget and is a ledger row with the saving', async () => {
  const p = fresh('budget');
  const spend = async () => {
    const r = await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(r.status, 200);
    const { keys } = await r.json();
    const alice = keys.find((k) => k.name === 'alice');
    assert.ok(alice.spend, 'alice has a budget, so a spend');
    return JSON.stringify(alice.spend);
  };
  const model = `priced-${++seq}`; // the ledger's model column: this test's rows only
  await chat(model, p);
  const before = await spend();
  for (let i = 0; i < 3; i++) assert.equal((await chat(model, p)).headers.get('x-sluice-cache'), 'hit');
  assert.equal(await spend(), before);
  // Rows without tokens are not waited for, even with --ledger commit: poll.
  const query = "SELECT status, cost_micros, input_tokens, output_tokens, cache_hit, cache_saved_micros, provider " +
                `FROM requests WHERE model = '${model}' AND key = 'alice' ORDER BY id DESC`;
  const rows = await eventually(() => { const r = sql(query); return r.length >= 4 ? r : null; }) || sql(query);
  assert.equal(rows.length, 4, JSON.stringify(rows));
  const [miss, ...hits] = rows.reverse();
  assert.equal(miss.cache_hit, 0);
  assert.ok(miss.cost_micros > 0);
  for (const h of hits) {
    assert.deepEqual({ ...h }, { status: 200, cost_micros: 0, input_tokens: 0, output_tokens: 0, cache_hit: 1,
                                  cache_saved_micros: miss.cost_micros, provider: 'up-openai' });
  }
});

test('a key over its budget is refused upstream but still served from the cache', async () => {
  const p = fresh('broke');
  const stored = await chat('shared', p, { key: KEYS.bob });
  assert.equal(stored.headers.get('x-sluice-cache'), 'miss');
  const spend = await chat('cached', fresh('spend it'), { key: KEYS.broke });
  assert.equal(spend.status, 429, 'the worst case is already over a one-micro-USD budget');
  const hit = await chat('shared', p, { key: KEYS.broke });
  assert.equal(hit.status, 200);
  assert.equal(hit.headers.get('x-sluice-cache'), 'hit');
  assert.equal(hit.text, stored.text);
  const miss = await chat('shared', fresh('broke miss'), { key: KEYS.broke });
  assert.equal(miss.status, 429);
  assert.equal(miss.headers.get('x-sluice-cache'), null, 'refused at admission: no cache header on sluice\'s own error');
});

test('metrics count hits, misses, bypasses and hold bytes', async () => {
  const before = await metrics();
  const count = (m, result) => sample(m, 'sluice_cache_requests_total', { scope: 'model', name: 'claude', result }) ?? 0;
  const p = fresh('metrics');
  await chat('claude', p);
  await chat('claude', p);
  await chat('claude', p);
  await chat('claude', p, { headers: { 'x-sluice-cache': 'bypass' } });
  const m = await metrics();
  assert.equal(count(m, 'miss') - count(before, 'miss'), 1);
  assert.equal(count(m, 'hit') - count(before, 'hit'), 2);
  assert.equal(count(m, 'bypass') - count(before, 'bypass'), 1);
  assert.ok(sample(m, 'sluice_cache_bytes', { name: 'claude' }) > 0);
  assert.ok(sample(m, 'sluice_cache_entries', { name: 'claude' }) >= 1);
  const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: m, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics: ${check.error || check.stdout + check.stderr}`);
});

test('semantic: a similar prompt is a hit with its similarity; the embeddings go through the provider', async () => {
  const tag = `t${++seq}x${Date.now()}`; // one word that keeps these prompts apart from other runs
  const ask = (text) => post('/v1/chat/completions',
    { model: 'similar', temperature: 0, messages: [{ role: 'user', content: text }] });
  const count = async (path, word) => (await mock.calls())
    .filter((c) => c.path === path && JSON.stringify(c.body).includes(word)).length;
  const first = await ask(`Please tell me the capital city of France today ${tag}`);
  assert.equal(first.headers.get('x-sluice-cache'), 'miss');
  assert.equal(first.headers.get('x-sluice-cache-similarity'), null);
  // Same words, other case, punctuation and spacing: another exact key, the same embedding.
  const same = await ask(`please tell me the CAPITAL city of France,   today! ${tag}`);
  assert.equal(same.headers.get('x-sluice-cache'), 'hit');
  assert.equal(same.headers.get('x-sluice-cache-similarity'), '1.0000');
  assert.equal(same.text, first.text);
  // One word more: similar, not identical.
  const near = await ask(`Please tell me the capital city of France today my friend ${tag}`);
  assert.equal(near.headers.get('x-sluice-cache'), 'hit');
  const sim = Number(near.headers.get('x-sluice-cache-similarity'));
  assert.ok(sim >= 0.8 && sim < 1, `similarity ${sim}`);
  assert.equal(near.text, first.text);
  const other = await ask(`Write a haiku about autumn leaves falling slowly ${tag}`);
  assert.equal(other.headers.get('x-sluice-cache'), 'miss');
  assert.equal(await count('/v1/chat/completions', tag), 2, 'two answers came from upstream');
  assert.equal(await count('/v1/embeddings', tag), 4, 'one embedding per exact miss');
  const embedCall = (await mock.calls()).find((c) => c.path === '/v1/embeddings' && JSON.stringify(c.body).includes(tag));
  assert.equal(embedCall.body.model, 'embed-model');
  assert.equal(embedCall.headers.authorization, `Bearer ${OPENAI_KEY}`, 'the provider key, never the client key');
  // no-cache: upstream answers, and the fresh answer (with its vector) replaces the old one.
  const fresh2 = await post('/v1/chat/completions',
    { model: 'similar', temperature: 0, messages: [{ role: 'user', content: `Write a haiku about autumn leaves falling slowly ${tag}` }] },
    { headers: { 'cache-control': 'no-cache' } });
  assert.equal(fresh2.headers.get('x-sluice-cache'), 'bypass');
  assert.notEqual(fresh2.body.id, other.body.id);
  const similarToFresh = await ask(`write a HAIKU about autumn leaves, falling slowly ${tag}`);
  assert.equal(similarToFresh.headers.get('x-sluice-cache'), 'hit');
  assert.equal(similarToFresh.text, fresh2.text);
  assert.equal(await count('/v1/chat/completions', tag), 3);
  assert.equal(await count('/v1/embeddings', tag), 6);
  // An exact repeat needs no embedding at all.
  const again = await ask(`Please tell me the capital city of France today ${tag}`);
  assert.equal(again.headers.get('x-sluice-cache'), 'hit');
  assert.equal(again.headers.get('x-sluice-cache-similarity'), '1.0000');
  assert.equal(await count('/v1/embeddings', tag), 6);
  const m = await metrics();
  assert.equal(sample(m, 'sluice_cache_requests_total', { name: 'similar', result: 'hit' }), 4);
  assert.equal(sample(m, 'sluice_cache_requests_total', { name: 'similar', result: 'miss' }), 2);
  assert.equal(sample(m, 'sluice_cache_requests_total', { name: 'similar', result: 'bypass' }), 1);
  assert.equal(sample(m, 'sluice_cache_embeddings_total', { name: 'similar', result: 'ok' }), 6);
  assert.equal(sample(m, 'sluice_cache_embeddings_total', { name: 'cached', result: 'ok' }), undefined, 'exact rules have none');

  // A failing embeddings call: the request goes upstream, and the error is counted.
  const failing = await ask(`[[mock status=500]] ${tag}`);
  assert.equal(failing.status, 500, 'the same directive fails the chat request too');
  assert.equal(failing.headers.get('x-sluice-cache'), 'miss');
  const m2 = await metrics();
  assert.equal(sample(m2, 'sluice_cache_embeddings_total', { name: 'similar', result: 'error' }), 1);
  assert.equal(sample(m2, 'sluice_cache_requests_total', { name: 'similar', result: 'miss' }), 3);
});

test('only a spec with cache: links the cache module', () => {
  const syms = (bin) => {
    const r = spawnSync('nm', [bin], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, `nm ${bin}: ${r.error || r.stderr}`);
    return r.stdout;
  };
  assert.match(syms(BIN), / sl_cache_module_ops$/m);
  assert.doesNotMatch(syms(PLAIN_BIN), /sl_cache_/);
});
