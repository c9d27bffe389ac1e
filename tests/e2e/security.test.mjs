// Security regressions (issue 20), end to end: one test group per numbered
// item of the issue, each on every client surface the class applies to
// (OpenAI chat, Anthropic messages, Gemini generateContent, legacy
// /v1/completions). The gateway is compiled from security.yaml (keys, USD
// budgets, glob price rules, an unpriced glob route, OpenAI, Anthropic and
// Gemini-kind providers, all at the mock upstream); item 11
// uses a second one compiled from security-slots.yaml (six connection
// slots). The test starts and stops both itself: SLUICE_SECURITY_BIN and
// SLUICE_SECURITY_SLOTS_BIN name them.
//
// The raw client keys below are test fixtures; the specs hold only their
// SHA-256. Upstream behaviour comes from mock directives (usage=none,
// account_headers, bare_cr, huge_line, words, delay_ms) in the prompt.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  E2E_DIR, eventually, mockArgs, freePort, readSSE, sleep, startMock, startProcess, stopProcess,
} from './lib/harness.mjs';

const BUILD_TESTS = resolve(E2E_DIR, '..', '..', 'build', 'tests');
const BIN = process.env.SLUICE_SECURITY_BIN || join(BUILD_TESTS, 'sluice-security');
const SLOTS_BIN = process.env.SLUICE_SECURITY_SLOTS_BIN || join(BUILD_TESTS, 'sluice-security-slots');
// An AddressSanitizer build keeps freed memory in quarantine: its peak RSS
// says nothing about what a stream holds (item 10 then checks behaviour only).
const SANITIZED = process.env.SLUICE_SANITIZED === '1';

const KEYS = {
  rich: 'sk-sec-test-rich-79c05301ac354cc23c08d7e8',
  member: 'sk-sec-test-member-11c8d6de634d99fa38c7abde',
  broke: 'sk-sec-test-broke-bc96c43762df8dc4a307c3e8',
  racer: 'sk-sec-test-racer-5da8a8d673ef806d432f337c',
  free: 'sk-sec-test-free-814fa858847d2739dfe8d9dd',
  expired: 'sk-sec-test-expired-94f893a8054c2120ebe8a11a',
  office: 'sk-sec-test-office-40067ca29e4e6a95300e18d8',
};
const ADMIN_KEY = 'sk-sec-test-admin-60015c4cb0a578278db05b92';
const UNKNOWN_KEY = 'sk-sec-test-nobody-00000000000000000000000000';

// Provider keys the gateway sends upstream.
const PROVIDER_ENV = {
  SLUICE_E2E_OPENAI_KEY: 'sk-sec-upstream-openai-fake',
  SLUICE_E2E_ANTHROPIC_KEY: 'sk-ant-sec-upstream-fake',
  SLUICE_E2E_GEMINI_KEY: 'gemini-sec-upstream-fake',
};

// security.yaml's prices in micro-USD per million tokens.
const PRICES = {
  'up-openai/gpt-4o-mini': { input: 150000, output: 600000 },
  'up-openai/gpt-4o': { input: 2500000, output: 10000000 },
  'up-openai/open-priced-*': { input: 500000, output: 1500000 },
  'up-anthropic/claude-sonnet-4-5': { input: 3000000, output: 15000000 },
  'up-anthropic/claude-haiku-4-5': { input: 1000000, output: 5000000 },
  'up-anthropic/claude-*': { input: 7000000, output: 21000000 },
  'up-gemini/gemini-2.5-flash': { input: 300000, output: 2500000 },
  'up-gemini/gemini-*': { input: 1250000, output: 10000000 },
};
const BUDGET_MICROS = { broke: 200, racer: 20000 };
const DEFAULT_LIMIT = 4096; // runtime/proxy/admit.h SL_DEFAULT_OUTPUT_TOKENS
const MAX_LIMIT = 10000000; // SL_MAX_OUTPUT_TOKENS
const MiB = 1024 * 1024;

// Cost in micro-USD as sl_gov_cost computes it: integer products, / 1e6,
// rounded half up.
function costMicros(priceKey, u) {
  const p = PRICES[priceKey];
  assert.ok(p, `no price for ${priceKey}`);
  const sum = BigInt(u.input) * BigInt(p.input) + BigInt(u.output) * BigInt(p.output);
  return Number((sum + 500000n) / 1000000n);
}

// A provider's usage object in the ledger's terms (uncached input, output).
function normUsage(u) {
  assert.ok(u, 'the mock recorded the usage it reported');
  if (u.promptTokenCount !== undefined) {
    const cached = u.cachedContentTokenCount || 0;
    return { input: u.promptTokenCount - cached, output: (u.candidatesTokenCount || 0) + (u.thoughtsTokenCount || 0) };
  }
  if (u.prompt_tokens !== undefined) {
    return { input: u.prompt_tokens - (u.prompt_tokens_details?.cached_tokens || 0), output: u.completion_tokens };
  }
  return { input: u.input_tokens, output: u.output_tokens };
}

const tokensOf = (bytes) => Math.ceil(bytes / 4); // sl_usage_estimate_tokens

// ---- processes -------------------------------------------------------------

const stateDirs = [];
const live = new Set();

async function waitHealthy(url, proc, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && proc.exitCode === null) {
    try {
      const r = await fetch(`${url}/healthz`);
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch { /* not yet */ }
    await sleep(25);
  }
  throw new Error(`gateway at ${url} not healthy in ${timeoutMs} ms`);
}

// A gateway on a free port with a fresh state file; fullLog() is its whole
// stderr (the access log test counts its lines).
async function startGateway(bin, args = []) {
  if (!existsSync(bin)) throw new Error(`no gateway binary at ${bin} (build it, or set SLUICE_SECURITY_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sec-'));
  stateDirs.push(dir);
  const port = await freePort();
  const h = await startProcess('sluice-security', bin,
    ['--listen', `127.0.0.1:${port}`, '--state', join(dir, 'sec.db'), ...mockArgs(bin, mock), ...args], {
      env: { ...process.env, ...PROVIDER_ENV },
      pattern: /sluice listening on (\S+)/,
    });
  let full = h.log();
  h.proc.stderr.on('data', (d) => { full += d; });
  live.add(h.proc);
  h.proc.once('exit', () => live.delete(h.proc));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, h.proc);
  } catch (e) {
    h.proc.kill('SIGKILL');
    throw new Error(`${e.message}; stderr:\n${full}`);
  }
  return { ...h, url, port, pid: h.proc.pid, fullLog: () => full, stop: () => stopProcess(h) };
}

let mock;
let gw;

before(async () => {
  mock = await startMock();
  try {
    gw = await startGateway(BIN);
  } catch (e) {
    await mock.stop();
    throw e;
  }
});

after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  for (const p of live) p.kill('SIGKILL');
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

// ---- requests ----------------------------------------------------------------

let seq = 0;
const newTag = () => `sec-${process.pid}-${++seq}`;

// Numbers jansson reads as integers but JavaScript cannot hold: written into
// the JSON text as they are.
const raw = (digits) => `@@${digits}@@`;
const jsonText = (o) => JSON.stringify(o).replace(/"@@([^@"]*)@@"/g, '$1');

const SURFACES = ['openai', 'anthropic', 'gemini', 'legacy'];

function authHeaders(surface, key) {
  if (key === undefined) return surface === 'anthropic' ? { 'anthropic-version': '2023-06-01' } : {};
  if (surface === 'anthropic') return { 'x-api-key': key, 'anthropic-version': '2023-06-01' };
  if (surface === 'gemini') return { 'x-goog-api-key': key };
  return { authorization: `Bearer ${key}` };
}

// One request of `surface`: path and JSON body. `limit` is that surface's
// output-limit members (Gemini: generationConfig's); `modelPath` is a raw
// Gemini path segment for names fetch would otherwise encode.
function build(surface, { model, text, limit = {}, stream = false, extra = {}, modelPath, query = '' }) {
  const q = (base) => (query ? `${base}${base.includes('?') ? '&' : '?'}${query}` : base);
  switch (surface) {
  case 'openai':
    return { path: q('/v1/chat/completions'),
      body: { model, messages: [{ role: 'user', content: text }], ...limit, ...(stream ? { stream: true } : {}), ...extra } };
  case 'anthropic':
    return { path: q('/v1/messages'),
      body: { model, ...limit, messages: [{ role: 'user', content: text }], ...(stream ? { stream: true } : {}), ...extra } };
  case 'gemini': {
    const seg = modelPath ?? encodeURIComponent(model);
    return { path: q(`/v1beta/models/${seg}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`),
      body: { contents: [{ role: 'user', parts: [{ text }] }], ...(Object.keys(limit).length ? { generationConfig: limit } : {}), ...extra } };
  }
  case 'legacy':
    return { path: q('/v1/completions'),
      body: { model, prompt: text, ...limit, ...(stream ? { stream: true } : {}), ...extra } };
  default:
    throw new Error(surface);
  }
}

// Sends a request; `body` may be an object (raw() numbers allowed), a
// string or a Buffer. Returns { status, headers, text, json, bytes }.
async function send(path, { method = 'POST', headers = {}, body, url = gw.url } = {}) {
  const payload = body === undefined ? undefined
    : Buffer.isBuffer(body) || typeof body === 'string' ? body : jsonText(body);
  const r = await fetch(`${url}${path}`, {
    method,
    headers: payload !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: payload,
  });
  const buf = Buffer.from(await r.arrayBuffer());
  const text = buf.toString('utf8');
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json, bytes: buf.length, sent: payload };
}

function ask(surface, opts) {
  const { path, body } = build(surface, opts);
  return send(path, { headers: { ...authHeaders(surface, opts.key), ...(opts.headers || {}) }, body: opts.body ?? body });
}

// A streaming request; returns the fetch Response (read it with readSSE).
function askStream(surface, opts) {
  const { path, body } = build(surface, { ...opts, stream: true });
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(surface, opts.key) },
    body: jsonText(body),
  });
}

// The error shape of each surface (legacy errors are OpenAI's).
function assertError(surface, res, status, label = '') {
  assert.equal(res.status, status, `${label}: ${res.text.slice(0, 300)}`);
  if (surface === 'anthropic') {
    assert.equal(res.json?.type, 'error', `${label}: Anthropic error shape: ${res.text}`);
    return res.json.error.message;
  }
  if (surface === 'gemini') {
    assert.equal(res.json?.error?.code, status, `${label}: Gemini error shape: ${res.text}`);
    return res.json.error.message;
  }
  assert.equal(typeof res.json?.error?.message, 'string', `${label}: OpenAI error shape: ${res.text}`);
  return res.json.error.message;
}

const callsWith = async (tag) => (await mock.calls()).filter((c) => JSON.stringify(c).includes(tag));

// The output limit an upstream request carries, by the upstream's protocol
// (OpenAI: either spelling, which must agree when both are present).
function upstreamLimit(call) {
  const b = call.body;
  if (call.path.startsWith('/v1beta/')) return b.generationConfig?.maxOutputTokens;
  if (call.path.startsWith('/v1/messages')) return b.max_tokens;
  if (b.max_tokens !== undefined && b.max_completion_tokens !== undefined) {
    assert.equal(b.max_tokens, b.max_completion_tokens, `OpenAI upstream got two limits: ${JSON.stringify(b)}`);
  }
  return b.max_completion_tokens ?? b.max_tokens;
}

// ---- admin API and ledger ------------------------------------------------------

const admin = (path) => send(path, { method: 'GET', headers: { authorization: `Bearer ${ADMIN_KEY}` } });

async function spendRows(by) {
  const r = await admin(`/admin/spend?by=${by}`);
  assert.equal(r.status, 200, r.text);
  return r.json.rows;
}

const ZERO = { requests: 0, cost_micros: 0, input_tokens: 0, output_tokens: 0 };
async function keyRow(name) {
  return (await spendRows('key')).find((r) => r.key === name) || { key: name, ...ZERO };
}
async function modelRow(model) {
  return (await spendRows('model')).find((r) => r.model === model) || { model, ...ZERO };
}
async function keyBudget(name) {
  const r = await admin('/admin/keys');
  assert.equal(r.status, 200, r.text);
  return r.json.keys.find((k) => k.name === name).budget;
}

const delta = (a, b) => ({
  requests: b.requests - a.requests, cost: b.cost_micros - a.cost_micros,
  input: b.input_tokens - a.input_tokens, output: b.output_tokens - a.output_tokens,
});

// Ledger rows of keys without a budget are written shortly after the
// answer; a later request of the same key that succeeds is the barrier.
async function ledgerSettled(key, before, expectRequests) {
  const row = await eventually(async () => {
    const r = await keyRow(key);
    return r.requests - before.requests >= expectRequests ? r : null;
  }, 3000);
  return row || keyRow(key);
}

// ---- raw sockets ----------------------------------------------------------------

// Writes `bytes`, collects the answer until the server closes (or timeout).
function rawExchange(port, bytes, timeoutMs = 5000) {
  return new Promise((done) => {
    const sock = connect(port, '127.0.0.1');
    const chunks = [];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      done(Buffer.concat(chunks));
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', finish);
    sock.on('error', finish);
    sock.on('close', finish);
  });
}

function rawPost(surface, opts) {
  const { path, body } = build(surface, opts);
  const b = Buffer.from(jsonText(body));
  const hdrs = Object.entries(authHeaders(surface, opts.key)).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return rawExchange(gw.port, Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: sluice.test\r\nConnection: close\r\n` +
      `Content-Type: application/json\r\n${hdrs}Content-Length: ${b.length}\r\n\r\n`), b]));
}

// Reads a stream that may end without its final chunk (as sluice ends a
// failed one): the events seen, and whether the connection was cut.
async function readStream(response) {
  const seen = [];
  try {
    const r = await readSSE(response, { onEvent: (ev) => { seen.push(ev); } });
    return { events: r.events, cut: false, rest: r.rest };
  } catch (e) {
    return { events: seen, cut: true, error: e };
  }
}

// ---- process memory -------------------------------------------------------------

function memKiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)[1]);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

// =====================================================================================

describe('1. absurd output limits', () => {
  const HUGE = ['9223372036854775807', '9223371936854775808', '4611686018427387904', '10000001'];
  const BAD = [...HUGE, '0', '-1', '2.5', '"64"'];
  // Every field a surface reads the limit from.
  const FIELDS = [
    ['openai', 'max_tokens'], ['openai', 'max_completion_tokens'], ['anthropic', 'max_tokens'],
    ['gemini', 'maxOutputTokens'], ['gemini', 'max_output_tokens'], ['legacy', 'max_tokens'],
  ];
  const MODEL = { openai: 'gpt-4o-mini', anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-flash', legacy: 'gpt-4o-mini' };

  it('a limit near INT64_MAX or over 10,000,000 is a 400 on every surface; nothing reaches the upstream', async () => {
    const tag = newTag();
    const before = { rich: await keyRow('rich'), free: await keyRow('free') };
    for (const key of ['rich', 'free']) {
      for (const [surface, field] of FIELDS) {
        for (const v of BAD) {
          const label = `${key} ${surface} ${field}=${v}`;
          const res = await ask(surface, { model: MODEL[surface], key: KEYS[key], text: `limit ${tag}`, limit: { [field]: raw(v) } });
          const msg = assertError(surface, res, 400, label);
          assert.match(msg, new RegExp(field), `${label}: the message names the field`);
        }
      }
    }
    assert.deepEqual(await callsWith(tag), [], 'no refused limit reached the upstream');
    // The largest allowed limit is admitted and sent as it is (to a model
    // the catalog does not know: a known one gets its own limit, issue 16).
    const ok = await ask('openai', { model: 'open-priced-max', key: KEYS.rich, text: `limit max ${tag}`, limit: { max_tokens: MAX_LIMIT } });
    assert.equal(ok.status, 200, ok.text);
    const calls = await callsWith(tag);
    assert.equal(calls.length, 1);
    assert.equal(upstreamLimit(calls[0]), MAX_LIMIT);
    const free = await ask('openai', { model: 'gpt-4o-mini', key: KEYS.free, text: `limit barrier ${tag}`, limit: { max_tokens: 3 } });
    assert.equal(free.status, 200);
    assert.equal(delta(before.rich, await keyRow('rich')).requests, 1, 'refusals leave no ledger row');
    assert.equal(delta(before.free, await ledgerSettled('free', before.free, 1)).requests, 1, 'refusals leave no ledger row');
  });

  it('a key over its budget gets no 200 whatever limit it sends', async () => {
    // Spend the budget with the smallest requests until one is refused.
    let admitted = 0;
    let refused = null;
    for (let i = 0; i < 30 && !refused; i++) {
      const r = await ask('openai', { model: 'gpt-4o', key: KEYS.broke, text: `exhaust ${i}`, limit: { max_tokens: 1 } });
      if (r.status === 200) admitted++;
      else refused = r;
    }
    assert.ok(admitted >= 1, 'the budget admitted something');
    assert.ok(refused, 'the budget ran out');
    assertError('openai', refused, 429, 'exhausted');
    const spent = await keyRow('broke');
    assert.ok(spent.cost_micros <= BUDGET_MICROS.broke, `spent ${spent.cost_micros} of ${BUDGET_MICROS.broke}`);

    // Probes cost more than what is left (the refused request was smaller),
    // whatever their limit says; an absurd limit must not make them free.
    const tag = newTag();
    const pad = 'p'.repeat(2000);
    const probeModel = { openai: 'gpt-4o', anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-flash', legacy: 'gpt-4o' };
    const field = { openai: 'max_tokens', anthropic: 'max_tokens', gemini: 'maxOutputTokens', legacy: 'max_tokens' };
    const values = [undefined, '1', '100', '4096', String(MAX_LIMIT), ...HUGE, '9223372036854775808', '-9223372036854775808'];
    const got = [];
    for (const surface of SURFACES) {
      for (const v of values) {
        for (const stream of [false, true]) {
          const limit = v === undefined ? {} : { [field[surface]]: raw(v) };
          const { path, body } = build(surface, { model: probeModel[surface], text: `${pad} ${tag}`, limit, stream });
          const res = await send(path, { headers: authHeaders(surface, KEYS.broke), body });
          got.push({ surface, v, res, label: `${surface}${stream ? ' stream' : ''} limit ${v ?? '(none)'}` });
        }
      }
    }
    assert.deepEqual(got.filter((g) => g.res.status === 200).map((g) => g.label), [], 'answered over budget');
    for (const { surface, v, res, label } of got) {
      // A limit sluice accepts is priced and refused by the budget; any
      // other is refused before pricing.
      const valid = v === undefined || (BigInt(v) >= 1n && BigInt(v) <= BigInt(MAX_LIMIT));
      assertError(surface, res, valid ? 429 : 400, label);
    }
    assert.deepEqual(await callsWith(tag), [], 'nothing reached the upstream');
    const after = await keyRow('broke');
    assert.deepEqual(after, spent, 'no ledger row, no spend');
  });
});

describe('2. unpriced and glob-priced routes under a USD budget', () => {
  it('a glob route whose upstream name has no price is a 400 naming the model; no upstream call, no ledger row', async () => {
    const tag = newTag();
    const before = await keyRow('rich');
    for (const surface of SURFACES) {
      for (const stream of [false, true]) {
        const model = `open-unpriced-${surface}${stream ? '-stream' : ''}`;
        const { path, body } = build(surface, { model, text: `unpriced ${tag}`, limit: surface === 'gemini' ? { maxOutputTokens: 5 } : { max_tokens: 5 }, stream });
        const res = await send(path, { headers: authHeaders(surface, KEYS.rich), body });
        const msg = assertError(surface, res, 400, `${surface} ${model}`);
        assert.ok(msg.includes(model), `${surface}: the message names the model: ${msg}`);
        assert.match(msg, /price/);
      }
    }
    // A key whose only budget is its team's is under a USD budget too.
    const member = await ask('openai', { model: 'open-unpriced-member', key: KEYS.member, text: `unpriced ${tag}`, limit: { max_tokens: 5 } });
    assert.ok(assertError('openai', member, 400, 'team-budgeted key').includes('open-unpriced-member'));
    assert.deepEqual(await callsWith(tag), [], 'an unpriced target is never called under a USD budget');
    // The same route serves a key without a budget: only the money rule refused.
    const free = await ask('openai', { model: 'open-unpriced-openai', key: KEYS.free, text: `unpriced free ${tag}`, limit: { max_tokens: 5 } });
    assert.equal(free.status, 200, free.text);
    assert.equal((await callsWith(tag)).length, 1);
    assert.deepEqual(await keyRow('rich'), before, 'no ledger row for the refused requests');
  });

  it('glob price rules price glob routes (an exact price wins over the glob)', async () => {
    const cases = [
      ['openai', 'open-priced-model-1', 'up-openai/open-priced-*'],
      ['legacy', 'open-priced-model-2', 'up-openai/open-priced-*'],
      ['anthropic', 'claude-glob-test-1', 'up-anthropic/claude-*'],
      ['openai', 'claude-glob-test-2', 'up-anthropic/claude-*'],
      ['anthropic', 'claude-haiku-4-5', 'up-anthropic/claude-haiku-4-5'],
      ['gemini', 'gemini-glob-test-1', 'up-gemini/gemini-*'],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash'],
    ];
    for (const [surface, model, priceKey] of cases) {
      const tag = newTag();
      const before = await modelRow(model);
      const res = await ask(surface, { model, key: KEYS.rich, text: `glob price ${tag} [[mock words=9]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 40 } : { max_tokens: 40 } });
      assert.equal(res.status, 200, `${surface} ${model}: ${res.text}`);
      const [call] = await callsWith(tag);
      const u = normUsage(call.usage);
      const d = delta(before, await modelRow(model));
      assert.deepEqual({ requests: d.requests, input: d.input, output: d.output }, { requests: 1, ...u },
        `${surface} ${model}: the ledger holds what the provider reported`);
      assert.equal(d.cost, costMicros(priceKey, u), `${surface} ${model}: priced by ${priceKey}`);
      assert.ok(d.cost > 0);
    }
  });
});

describe('3. one output limit for admission and upstream', () => {
  it('two spellings that disagree are a 400, before any upstream call', async () => {
    const tag = newTag();
    const pairs = [
      ['openai', { max_tokens: 1, max_completion_tokens: 4000 }],
      ['openai', { max_tokens: 4000, max_completion_tokens: 1 }],
      ['legacy', { max_tokens: 1, max_completion_tokens: 4000 }],
      ['gemini', { maxOutputTokens: 1, max_output_tokens: 4000 }],
    ];
    for (const [surface, limit] of pairs) {
      const res = await ask(surface, { model: surface === 'gemini' ? 'gemini-2.5-flash' : 'gpt-4o-mini', key: KEYS.rich, text: `pair ${tag}`, limit });
      const msg = assertError(surface, res, 400, `${surface} ${JSON.stringify(limit)}`);
      assert.match(msg, /disagree/);
    }
    // The same for a key without a budget: the rule is about one limit.
    const free = await ask('openai', { model: 'gpt-4o-mini', key: KEYS.free, text: `pair ${tag}`, limit: { max_tokens: 1, max_completion_tokens: 4000 } });
    assertError('openai', free, 400, 'free key');
    assert.deepEqual(await callsWith(tag), []);
    // Spellings that agree are one limit.
    const ok = await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: `pair ok ${tag}`, limit: { max_tokens: 7, max_completion_tokens: 7 } });
    assert.equal(ok.status, 200, ok.text);
    const [call] = await callsWith(tag);
    assert.equal(call.body.max_tokens, 7);
    assert.equal(call.body.max_completion_tokens, 7);
  });

  it('the upstream receives the limit the client sent, translated where the protocol differs', async () => {
    const cases = [
      ['openai', 'gpt-4o-mini', { max_tokens: 7 }, 7],
      ['openai', 'gpt-4o-mini', { max_completion_tokens: 9 }, 9],
      ['openai', 'gpt-via-anthropic', { max_completion_tokens: 13 }, 13],
      ['openai', 'gpt-via-anthropic', { max_tokens: 14 }, 14],
      ['anthropic', 'claude-sonnet-4-5', { max_tokens: 15 }, 15],
      ['anthropic', 'claude-via-openai', { max_tokens: 17 }, 17],
      ['gemini', 'gemini-2.5-flash', { maxOutputTokens: 19 }, 19],
      ['gemini', 'gpt-via-anthropic', { maxOutputTokens: 21 }, 21],
      ['gemini', 'gpt-4o-mini', { max_output_tokens: 23 }, 23],
      ['legacy', 'gpt-4o-mini', { max_tokens: 25 }, 25],
      ['legacy', 'gpt-via-anthropic', { max_tokens: 27 }, 27],
    ];
    for (const key of ['rich', 'free']) {
      for (const [surface, model, limit, want] of cases) {
        const tag = newTag();
        const res = await ask(surface, { model, key: KEYS[key], text: `limit pass ${tag}`, limit });
        assert.equal(res.status, 200, `${key} ${surface} ${model}: ${res.text}`);
        const calls = await callsWith(tag);
        assert.equal(calls.length, 1);
        assert.equal(upstreamLimit(calls[0]), want, `${key} ${surface} -> ${calls[0].path}: ${JSON.stringify(calls[0].body)}`);
      }
    }
  });

  it('a budgeted key without a limit gets 4096 written into the upstream request; a key without a budget does not', async () => {
    const cases = [
      ['openai', 'gpt-4o-mini', 'max_completion_tokens'],
      ['openai', 'gpt-via-anthropic', null],
      ['anthropic', 'claude-sonnet-4-5', null],
      ['anthropic', 'claude-via-openai', null],
      ['gemini', 'gemini-2.5-flash', null],
      ['gemini', 'gpt-4o-mini', null],
      ['legacy', 'gpt-4o-mini', 'max_completion_tokens'],
      ['legacy', 'gpt-via-anthropic', null],
    ];
    for (const [surface, model, field] of cases) {
      for (const stream of [false, true]) {
        const tag = newTag();
        const label = `${surface}${stream ? ' stream' : ''} ${model}`;
        if (stream) {
          const r = await askStream(surface, { model, key: KEYS.rich, text: `inject ${tag}` });
          assert.equal(r.status, 200, label);
          await readSSE(r);
        } else {
          const r = await ask(surface, { model, key: KEYS.rich, text: `inject ${tag}` });
          assert.equal(r.status, 200, `${label}: ${r.text}`);
        }
        const [call] = await callsWith(tag);
        assert.equal(upstreamLimit(call), DEFAULT_LIMIT, `${label}: ${JSON.stringify(call.body)}`);
        // OpenAI: the spelling every current model takes.
        if (field) assert.equal(call.body[field], DEFAULT_LIMIT, `${label}: ${JSON.stringify(call.body)}`);
      }
    }
    // A budget of the key's team is a budget too.
    const teamTag = newTag();
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.member, text: `inject ${teamTag}` })).status, 200);
    assert.equal((await callsWith(teamTag))[0].body.max_completion_tokens, DEFAULT_LIMIT, 'team budget: injected');
    // No budget, nothing to protect: the request goes as the client sent it.
    const tag = newTag();
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.free, text: `no inject ${tag}` })).status, 200);
    const [call] = await callsWith(tag);
    assert.equal(call.body.max_completion_tokens, undefined);
    assert.equal(call.body.max_tokens, undefined);
  });

  it('the reservation held in flight is the worst case of the limit the upstream received', async () => {
    // A slow answer keeps the reservation visible on /admin/keys. Without
    // a limit from the client sluice writes 4096 and must reserve exactly
    // that; with one, that one (in whichever field the surface uses).
    for (const [surface, model, priceKey, limit, want] of [
      ['openai', 'gpt-4o', 'up-openai/gpt-4o', {}, DEFAULT_LIMIT],
      ['anthropic', 'claude-sonnet-4-5', 'up-anthropic/claude-sonnet-4-5', {}, DEFAULT_LIMIT],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash', {}, DEFAULT_LIMIT],
      ['openai', 'gpt-4o', 'up-openai/gpt-4o', { max_completion_tokens: 3000 }, 3000],
      ['anthropic', 'claude-sonnet-4-5', 'up-anthropic/claude-sonnet-4-5', { max_tokens: 3000 }, 3000],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash', { maxOutputTokens: 6000 }, 6000],
      ['gemini', 'gpt-4o', 'up-openai/gpt-4o', { maxOutputTokens: 2500 }, 2500],
      ['legacy', 'gpt-4o', 'up-openai/gpt-4o', { max_tokens: 3500 }, 3500],
    ]) {
      const tag = newTag();
      assert.equal((await keyBudget('rich')).reserved_micros, 0);
      const slow = ask(surface, { model, key: KEYS.rich, limit, text: `reserve ${tag} [[mock delay_ms=1500]]` });
      const seen = await eventually(async () => {
        const calls = await callsWith(`reserve ${tag}`);
        const b = await keyBudget('rich');
        return calls.length === 1 && b.reserved_micros > 0 ? { call: calls[0], reserved: b.reserved_micros } : null;
      }, 1400, 20);
      const res = await slow;
      assert.equal(res.status, 200, res.text);
      assert.ok(seen, `${surface}: a reservation while the request was in flight`);
      const sent = upstreamLimit(seen.call);
      assert.equal(sent, want, `${surface} ${model}: ${JSON.stringify(seen.call.body)}`);
      // Input is estimated from the body sluice holds (the client's, with
      // a limit written in, or its chat form): within a few tokens of the
      // upstream body, which differs from it by a few members at most.
      const bodyLen = Buffer.byteLength(JSON.stringify(seen.call.body));
      const lo = costMicros(priceKey, { input: Math.max(tokensOf(bodyLen) - 16, 0), output: want });
      const hi = costMicros(priceKey, { input: tokensOf(bodyLen) + 16, output: want });
      assert.ok(seen.reserved >= lo && seen.reserved <= hi,
        `${surface} ${model}: reserved ${seen.reserved} micro-USD, the worst case of ${want} output tokens is ${lo}..${hi}`);
      assert.equal((await keyBudget('rich')).reserved_micros, 0, 'released after the answer');
    }
  });

  it('20 parallel requests spend at most the budget plus one reservation; the upstream limit is the reserved one', async () => {
    const tag = newTag();
    const WORDS = 400;
    // Half send two limits that disagree (the upstream would obey the
    // larger), half one limit; every answer is as long as its limit.
    const bodies = Array.from({ length: 20 }, (_, i) => {
      const limit = i % 2 ? { max_tokens: 1, max_completion_tokens: WORDS } : { max_completion_tokens: WORDS };
      // A slow upstream: all twenty are in flight before any settles.
      return build('openai', { model: 'gpt-4o', text: `race ${tag} ${String(i).padStart(2, '0')} [[mock words=${WORDS} delay_ms=300]]`, limit });
    });
    const res = await Promise.all(bodies.map(({ path, body }) =>
      send(path, { headers: authHeaders('openai', KEYS.racer), body })));
    const ok = res.filter((r) => r.status === 200);
    const calls = await callsWith(tag);
    // The worst case of one request: its prompt estimate and WORDS out.
    const longest = Math.max(...bodies.map(({ body }) => Buffer.byteLength(JSON.stringify(body))));
    const oneReservation = costMicros('up-openai/gpt-4o', { input: tokensOf(longest) + 16, output: WORDS });
    const b = await keyBudget('racer');
    assert.ok(b.spent_micros <= BUDGET_MICROS.racer + oneReservation,
      `spent ${b.spent_micros} micro-USD in ${ok.length} answers: over budget ${BUDGET_MICROS.racer} + one reservation ${oneReservation}`);
    assert.equal(b.reserved_micros, 0);
    res.forEach((r, i) => {
      if (i % 2) assertError('openai', r, 400, `race ${i}: disagreeing limits`);
      else assert.ok(r.status === 200 || r.status === 429, `race ${i}: ${r.status} ${r.text.slice(0, 200)}`);
    });
    assert.ok(ok.length >= 1, 'some requests fit the budget');
    assert.equal(calls.length, ok.length, 'the upstream saw exactly the admitted requests');
    for (const c of calls) {
      assert.equal(upstreamLimit(c), WORDS, 'the upstream got the limit admission reserved for');
      assert.ok(normUsage(c.usage).output <= WORDS);
    }
    const row = await keyRow('racer');
    assert.equal(row.requests, ok.length);
    assert.equal(row.cost_micros, calls.reduce((s, c) => s + costMicros('up-openai/gpt-4o', normUsage(c.usage)), 0),
      'the ledger holds what the upstream reported');
  });
});

describe('4. usage is what the provider reported', () => {
  it('a stream whose client declined usage: the upstream is asked anyway, the client sees none, the ledger gets the reported usage', async () => {
    const cases = [
      ['openai', 'gpt-4o-mini', { stream_options: { include_usage: false } }, 'up-openai/gpt-4o-mini'],
      ['openai', 'gpt-4o-mini', {}, 'up-openai/gpt-4o-mini'],
      ['legacy', 'gpt-4o-mini', { stream_options: { include_usage: false } }, 'up-openai/gpt-4o-mini'],
      ['anthropic', 'claude-via-openai', {}, 'up-openai/gpt-4o'],
      ['gemini', 'gpt-4o-mini', {}, 'up-openai/gpt-4o-mini'],
    ];
    for (const [surface, model, extra, priceKey] of cases) {
      const tag = newTag();
      const label = `${surface} ${model} ${JSON.stringify(extra)}`;
      const before = await keyRow('rich');
      const r = await askStream(surface, { model, key: KEYS.rich, text: `usage ${tag} [[mock words=11]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 50 } : { max_tokens: 50 }, extra });
      assert.equal(r.status, 200, label);
      const { events } = await readSSE(r);
      const [call] = await callsWith(tag);
      assert.equal(call.body.stream_options?.include_usage, true, `${label}: upstream asked for usage: ${JSON.stringify(call.body)}`);
      if (surface === 'openai' || surface === 'legacy') {
        assert.equal(events.at(-1).data, '[DONE]', label);
        for (const e of events.filter((x) => x.json)) {
          assert.ok(!e.json.usage, `${label}: unrequested usage reached the client: ${e.data}`);
          assert.ok(e.json.choices.length > 0, `${label}: a chunk without choices: ${e.data}`);
        }
      }
      const u = normUsage(call.usage);
      assert.equal(u.output, 11);
      const d = delta(before, await keyRow('rich'));
      assert.deepEqual(d, { requests: 1, input: u.input, output: u.output, cost: costMicros(priceKey, u) },
        `${label}: charged the reported usage, not an estimate`);
    }
  });

  it('a client that asked for usage gets it (the control)', async () => {
    const tag = newTag();
    const r = await askStream('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: `usage asked ${tag}`,
      limit: { max_tokens: 5 }, extra: { stream_options: { include_usage: true } } });
    const { events } = await readSSE(r);
    const usage = events.filter((e) => e.json?.usage).pop();
    assert.ok(usage, 'usage chunk relayed');
    const [call] = await callsWith(tag);
    assert.deepEqual(normUsage(usage.json.usage), normUsage(call.usage));
  });

  it('Gemini answers relayed to Gemini clients are charged what Gemini reported', async () => {
    for (const stream of [false, true]) {
      const tag = newTag();
      const before = await keyRow('rich');
      const opts = { model: 'gemini-2.5-flash', key: KEYS.rich, text: `gemini usage ${tag} [[mock words=12]]`, limit: { maxOutputTokens: 64 } };
      if (stream) {
        const r = await askStream('gemini', opts);
        assert.equal(r.status, 200);
        await readSSE(r);
      } else {
        assert.equal((await ask('gemini', opts)).status, 200);
      }
      const [call] = await callsWith(tag);
      const u = normUsage(call.usage);
      const d = delta(before, await keyRow('rich'));
      assert.deepEqual(d, { requests: 1, input: u.input, output: u.output, cost: costMicros('up-gemini/gemini-2.5-flash', u) },
        `gemini ${stream ? 'stream' : 'body'}: charged usageMetadata, not an estimate`);
    }
  });

  it('a 200 without usage is charged an estimate, never zero', async () => {
    // The estimate: request bytes / 4 in, delivered bytes / 4 out (rounded up).
    const cases = [
      ['openai', 'gpt-4o-mini', 'up-openai/gpt-4o-mini'],
      ['anthropic', 'claude-sonnet-4-5', 'up-anthropic/claude-sonnet-4-5'],
      ['anthropic', 'claude-via-openai', 'up-openai/gpt-4o'],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash'],
      ['legacy', 'gpt-4o-mini', 'up-openai/gpt-4o-mini'],
    ];
    for (const [surface, model, priceKey] of cases) {
      const tag = newTag();
      const before = await keyRow('rich');
      const res = await ask(surface, { model, key: KEYS.rich, text: `no usage ${tag} [[mock usage=none]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 30 } : { max_tokens: 30 } });
      assert.equal(res.status, 200, `${surface}: ${res.text}`);
      const [call] = await callsWith(tag);
      assert.equal(call.usage, undefined, 'the upstream reported no usage');
      const d = delta(before, await keyRow('rich'));
      assert.equal(d.requests, 1);
      assert.ok(d.input > 0 && d.output > 0 && d.cost > 0, `${surface} ${model}: never free: ${JSON.stringify(d)}`);
      // The legacy body sluice holds is the converted chat request, which
      // the client never sees; the other bodies are the client's bytes.
      if (surface !== 'legacy') assert.equal(d.input, tokensOf(Buffer.byteLength(res.sent)), `${surface}: input estimate`);
      assert.equal(d.output, tokensOf(res.bytes), `${surface}: output estimate from the delivered body`);
      assert.equal(d.cost, costMicros(priceKey, { input: d.input, output: d.output }));
    }
  });
});

describe('5. the client\'s query string stays at the gateway', () => {
  it('?key=<client key>&foo=bar never reaches the upstream; only beta=true reaches Anthropic from an Anthropic client', async () => {
    const K = encodeURIComponent(KEYS.rich);
    const cases = [
      ['openai', 'gpt-4o-mini', `key=${K}&foo=bar`, '/v1/chat/completions'],
      ['openai', 'gpt-via-anthropic', `key=${K}&foo=bar&beta=true`, '/v1/messages'],
      ['anthropic', 'claude-sonnet-4-5', `key=${K}&foo=bar`, '/v1/messages'],
      ['anthropic', 'claude-sonnet-4-5', `key=${K}&beta=true&foo=bar`, '/v1/messages?beta=true'],
      ['anthropic', 'claude-sonnet-4-5', `beta=false&key=${K}`, '/v1/messages'],
      ['anthropic', 'claude-via-openai', `beta=true&key=${K}&foo=bar`, '/v1/chat/completions'],
      ['gemini', 'gemini-2.5-flash', `key=${K}&foo=bar&alt=json`, '/v1beta/models/gemini-2.5-flash:generateContent'],
      ['gemini', 'gpt-4o-mini', `key=${K}&foo=bar`, '/v1/chat/completions'],
      ['legacy', 'gpt-4o-mini', `key=${K}&foo=bar`, '/v1/chat/completions'],
    ];
    for (const [surface, model, query, want] of cases) {
      const tag = newTag();
      const { path, body } = build(surface, { model, text: `query ${tag}`, limit: surface === 'gemini' ? {} : { max_tokens: 5 }, query });
      // Authenticated by ?key= alone (Anthropic still sends its version).
      const res = await send(path, { headers: surface === 'anthropic' ? { 'anthropic-version': '2023-06-01' } : {}, body });
      assert.equal(res.status, 200, `${surface} ${path}: ${res.text}`);
      const [call] = await callsWith(tag);
      assert.equal(call.path, want, `${surface} ${path}`);
      assert.ok(!JSON.stringify(call).includes(KEYS.rich), `${surface}: the client key reached the upstream`);
      assert.ok(!JSON.stringify(call).includes('foo'), `${surface}: the client query reached the upstream`);
    }
    // A Gemini stream: the upstream URL carries alt=sse, which sluice
    // writes itself, and nothing of the client's.
    const tag = newTag();
    const { path, body } = build('gemini', { model: 'gemini-2.5-flash', text: `query ${tag}`, stream: true, query: `key=${K}&foo=bar` });
    const r = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonText(body) });
    assert.equal(r.status, 200);
    await readSSE(r);
    const [call] = await callsWith(tag);
    assert.equal(call.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    assert.equal(call.headers['x-goog-api-key'], PROVIDER_ENV.SLUICE_E2E_GEMINI_KEY, 'the provider key went in its header');
  });
});

describe('6. upstream response headers', () => {
  // Splits a raw HTTP response into its head (lines) and the rest.
  const head = (buf) => {
    const s = buf.toString('latin1');
    const end = s.indexOf('\r\n\r\n');
    assert.ok(end > 0, `no response head: ${JSON.stringify(s.slice(0, 200))}`);
    return { head: s.slice(0, end + 2), lines: s.slice(0, end).split('\r\n') };
  };
  const CASES = [
    ['openai', 'gpt-4o-mini', false], ['openai', 'gpt-4o-mini', true],
    ['anthropic', 'claude-sonnet-4-5', false], ['anthropic', 'claude-sonnet-4-5', true],
    ['openai', 'gpt-via-anthropic', false], ['anthropic', 'claude-via-openai', true],
    ['gemini', 'gemini-2.5-flash', false], ['gemini', 'gemini-2.5-flash', true],
    ['legacy', 'gpt-4o-mini', false],
  ];

  it('a header value holding a bare CR never reaches the client', async () => {
    for (const [surface, model, stream] of CASES) {
      const label = `${surface}${stream ? ' stream' : ''} ${model}`;
      const buf = await rawPost(surface, { model, key: KEYS.rich, stream, text: `bare cr ${newTag()} [[mock bare_cr=1]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 5 } : { max_tokens: 5 } });
      const { head: h, lines } = head(buf);
      assert.match(lines[0], /^HTTP\/1\.1 200 /, `${label}: ${lines[0]}`);
      assert.doesNotMatch(h, /\r(?!\n)/, `${label}: a bare CR in the response head`);
      assert.ok(!buf.includes('mock_smuggled'), `${label}: the smuggled header text reached the client`);
      assert.ok(!lines.some((l) => /^set-cookie:/i.test(l)), label);
      // The header holding it is dropped whole, not cleaned up (x-request-id is sluice's own).
      assert.ok(!lines.some((l) => /^(x-upstream-)?request-id:/i.test(l)), `${label}: ${lines.join(' | ')}`);
    }
  });

  it('account identifiers stay behind the gateway; request ids and rate limits pass', async () => {
    for (const [surface, model, stream] of CASES) {
      const label = `${surface}${stream ? ' stream' : ''} ${model}`;
      const buf = await rawPost(surface, { model, key: KEYS.rich, stream, text: `account ${newTag()} [[mock account_headers=1]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 5 } : { max_tokens: 5 } });
      const { lines } = head(buf);
      const names = lines.slice(1).map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
      assert.match(lines[0], /^HTTP\/1\.1 200 /, `${label}: ${lines[0]}`);
      for (const n of ['openai-organization', 'openai-project', 'anthropic-organization-id']) {
        assert.ok(!names.includes(n), `${label}: ${n} reached the client`);
      }
      assert.ok(!buf.includes('org-mock-account') && !buf.includes('proj_mock_account') && !buf.includes('00000000mock'), label);
      const upstream = model === 'gpt-via-anthropic' || (surface === 'anthropic' && model !== 'claude-via-openai') ? 'anthropic'
        : surface === 'gemini' ? 'gemini' : 'openai';
      if (upstream === 'openai') {
        for (const n of ['x-upstream-request-id', 'x-request-id', 'openai-processing-ms', 'x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests']) {
          assert.ok(names.includes(n), `${label}: ${n} should pass: ${names}`);
        }
        assert.ok(lines.includes('x-ratelimit-limit-requests: 500'), `${label}: the value passes as sent`);
      } else if (upstream === 'anthropic') {
        for (const n of ['request-id', 'anthropic-ratelimit-requests-limit', 'anthropic-ratelimit-requests-remaining']) {
          assert.ok(names.includes(n), `${label}: ${n} should pass: ${names}`);
        }
      }
    }
  });
});

describe('7. the access log', () => {
  it('CR, LF and ESC in a model name are escaped: one line per request', async () => {
    const forged = '2099-01-01T00:00:00.000Z 10.9.9.9:1 POST /admin/keys 200 model=forged key=admin';
    const reqs = [
      ['openai', { model: `claude-log-1\n${forged}` }],
      ['openai', { model: `gpt-4o-mini\r${forged}` }], // no such entry: 404, logged too
      ['openai', { model: 'claude-log-2\u001b[2J\u001b[31mred' }],
      ['anthropic', { model: `claude-log-3\r\n${forged}` }],
      ['gemini', { model: 'gemini-log-4', modelPath: `gemini-log-4%0A${encodeURIComponent(forged)}%0D%1B%5B31m` }],
      ['legacy', { model: `open-priced-log-5\n${forged}` }],
    ];
    await sleep(150); // earlier requests' lines are in
    const startLen = gw.fullLog().length;
    for (const [surface, o] of reqs) {
      const r = await ask(surface, { ...o, key: KEYS.rich, text: `log ${newTag()}`, limit: surface === 'gemini' ? { maxOutputTokens: 3 } : { max_tokens: 3 } });
      assert.ok(r.status === 200 || r.status === 404, `${surface} ${JSON.stringify(o.model)}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    const fresh = () => gw.fullLog().slice(startLen);
    await eventually(() => fresh().split('\n').length > reqs.length, 2000);
    await sleep(200); // any extra line would have been written by now
    const text = fresh();
    const lines = text.split('\n');
    assert.equal(lines.pop(), '', 'the log ends with a newline');
    assert.equal(lines.length, reqs.length, `one line per request:\n${text}`);
    for (const l of lines) {
      assert.match(l, /^\d{4}-\d\d-\d\dT[\d:.]+Z 127\.0\.0\.1:\d+ POST \/v1\S* \d{3} model=\S+ provider=\S+ upstream_model=\S+ attempts=\d+ ms=[\d.]+ key=rich request_id=[0-9a-f]{32}$/, l);
    }
    assert.ok(!text.includes('\r') && !text.includes('\u001b'), 'no raw CR or ESC in the log');
    for (const esc of ['\\x0a', '\\x0d', '\\x1b']) assert.ok(text.includes(esc), `escaped as ${esc}`);
    assert.ok(!lines.some((l) => l.startsWith('2099')), 'no forged line');
  });
});

describe('8. what a refused caller learns', () => {
  it('/healthz?detail=1 needs the admin key', async () => {
    const plain = await send('/healthz', { method: 'GET' });
    assert.equal(plain.status, 200);
    assert.equal(plain.json.targets, undefined);
    for (const [q, headers] of [
      ['?detail=1', {}], ['?detail=1', { authorization: `Bearer ${KEYS.rich}` }],
      ['?detail=1', { authorization: `Bearer ${UNKNOWN_KEY}` }], ['?detail=0', {}], ['?x=1&detail=yes', {}],
      [`?detail=1&key=${KEYS.rich}`, {}],
    ]) {
      const r = await send(`/healthz${q}`, { method: 'GET', headers });
      assert.equal(r.status, 401, `/healthz${q} ${JSON.stringify(headers)}: ${r.text}`);
      assert.ok(!r.text.includes('up-openai') && !r.text.includes('gpt-4o'), 'nothing of the routing table');
    }
    // A bare `detail` is no detail parameter: the plain answer.
    const bare = await send('/healthz?detail', { method: 'GET' });
    assert.ok(bare.status === 401 || (bare.status === 200 && bare.json.targets === undefined), bare.text);
    const r = await send('/healthz?detail=1', { method: 'GET', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200, r.text);
    const models = new Set(r.json.targets.map((x) => x.model));
    for (const m of ['gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash', 'claude-*', 'open-*']) assert.ok(models.has(m), m);
    assert.ok(r.json.targets.every((x) => x.provider && x.state), 'every target has its provider and state');
  });

  it('expired, unknown and wrong-address keys get the identical 401 on every surface', async () => {
    const tag = newTag();
    for (const surface of SURFACES) {
      for (const viaQuery of [false, true]) {
        const bodies = new Set();
        for (const key of [KEYS.expired, UNKNOWN_KEY, KEYS.office]) {
          const model = surface === 'gemini' ? 'gemini-2.5-flash' : surface === 'anthropic' ? 'claude-sonnet-4-5' : 'gpt-4o-mini';
          const { path, body } = build(surface, { model, text: `refused ${tag}`, limit: surface === 'gemini' ? {} : { max_tokens: 5 },
            query: viaQuery ? `key=${encodeURIComponent(key)}` : '' });
          const res = await send(path, { headers: viaQuery ? authHeaders(surface, undefined) : authHeaders(surface, key), body });
          const msg = assertError(surface, res, 401, `${surface} ${viaQuery ? '?key=' : 'header'}`);
          assert.equal(msg, 'invalid API key');
          bodies.add(`${res.status} ${res.headers.get('content-type')} ${res.text}`);
        }
        assert.equal(bodies.size, 1, `${surface} ${viaQuery ? '?key=' : 'header'}: the answers differ:\n${[...bodies].join('\n')}`);
      }
    }
    assert.deepEqual(await callsWith(tag), []);
  });
});

describe('9. memory before authentication', () => {
  it('30 slow uploads declaring 10 MiB without a valid key get 401 at once and cost no memory', async (t) => {
    const N = 30;
    const idle = [];
    for (let i = 0; i < 5; i++) { idle.push(memKiB(gw.pid).rss); await sleep(50); }
    const idleRss = Math.max(...idle);
    let peak = idleRss;
    const sampler = setInterval(() => { try { peak = Math.max(peak, memKiB(gw.pid).rss); } catch { /* exited */ } }, 25);
    const targets = [
      ['/v1/chat/completions', ''], ['/v1/messages', 'anthropic-version: 2023-06-01\r\n'],
      ['/v1beta/models/gemini-2.5-flash:generateContent', ''], ['/v1/completions', ''],
    ];
    const one = (i) => new Promise((done) => {
      const [path, extra] = targets[i % targets.length];
      const auth = i % 3 === 0 ? '' : i % 3 === 1 ? `Authorization: Bearer ${UNKNOWN_KEY}\r\n` : `x-api-key: ${KEYS.expired}\r\n`;
      const sock = connect(gw.port, '127.0.0.1');
      const out = { path, got: '', bodySent: 0, answeredAfterBytes: -1, answeredMs: -1, closedMs: -1, gaveUp: false };
      let t0 = 0;
      let timer = null;
      const finish = () => {
        clearInterval(timer);
        clearTimeout(deadline);
        sock.destroy();
        done(out);
      };
      const deadline = setTimeout(() => { out.gaveUp = true; finish(); }, 4000);
      sock.on('connect', () => {
        sock.write(`POST ${path} HTTP/1.1\r\nHost: sluice.test\r\nContent-Type: application/json\r\n${extra}${auth}` +
          `Content-Length: ${10 * MiB}\r\n\r\n`);
        t0 = performance.now();
        timer = setInterval(() => {
          if (!sock.destroyed && sock.writable) { sock.write('x'); out.bodySent++; }
        }, 100);
      });
      sock.on('data', (d) => {
        out.got += d.toString('latin1');
        if (out.answeredMs < 0 && out.got.includes('\r\n\r\n')) {
          out.answeredMs = performance.now() - t0;
          out.answeredAfterBytes = out.bodySent;
        }
      });
      const closed = () => { if (out.closedMs < 0) out.closedMs = performance.now() - t0; finish(); };
      sock.on('end', closed);
      sock.on('error', closed);
      sock.on('close', closed);
    });
    const results = await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
    clearInterval(sampler);
    for (const r of results) {
      assert.match(r.got, /^HTTP\/1\.1 401 /, `${r.path}: ${JSON.stringify(r.got.slice(0, 120))}`);
      // Answered before the client had sent more than a few of the 10 MiB it
      // announced (one byte per 100 ms): the answer did not wait for the body.
      assert.ok(r.answeredMs >= 0, `${r.path}: answered`);
      assert.ok(r.answeredAfterBytes <= 15, `${r.path}: answered after ${r.answeredAfterBytes} body bytes: the body was not awaited`);
      assert.match(r.got, /connection: close/i, `${r.path}: the answer announces the close`);
      // Closed by the gateway, not by this test giving up after 4 s.
      assert.ok(!r.gaveUp && r.closedMs >= 0, `${r.path}: the gateway closed the connection (${r.closedMs.toFixed(0)} ms)`);
    }
    const grew = peak - idleRss;
    t.diagnostic(`RSS idle ${idleRss} KiB, peak ${peak} KiB; 401 after at most ` +
      `${Math.max(...results.map((r) => r.answeredMs)).toFixed(0)} ms`);
    assert.ok(grew < 8 * 1024, `RSS grew by ${grew} KiB over idle ${idleRss} KiB while ${N} clients each declared 10 MiB`);
    // The gateway still serves.
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: 'after uploads', limit: { max_tokens: 3 } })).status, 200);
  });
});

describe('10. an SSE line that never ends', () => {
  it('a 4 MiB data: line without newline ends the stream with an error event; memory stays bounded', async (t) => {
    const LINE = 4 * MiB;
    const paths = [
      // OpenAI upstream, sluice-added usage stripped from the stream.
      ['openai', 'gpt-4o-mini'],
      ['legacy', 'gpt-4o-mini'],
      // Translated streams.
      ['openai', 'gpt-via-anthropic'],
      ['anthropic', 'claude-via-openai'],
      ['gemini', 'gpt-4o-mini'],
    ];
    // Every stream and the memory are checked before anything fails, so
    // a failure report says all that went wrong.
    const problems = [];
    const check = (ok, msg) => { if (!ok) problems.push(msg); };
    const one = async ([surface, model]) => {
      const label = `${surface} ${model}`;
      const r = await askStream(surface, { model, key: KEYS.rich, text: `huge ${newTag()} [[mock words=6 huge_line=${LINE}]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 50 } : { max_tokens: 50 } });
      check(r.status === 200, `${label}: status ${r.status}`);
      const res = await readStream(r);
      const last = res.events.at(-1) || { data: '' };
      const bytes = res.events.reduce((n, e) => n + e.data.length, 0) + (res.rest || '').length;
      check(bytes < MiB, `${label}: ${bytes} bytes of the line were relayed`);
      check(res.events.length >= 2, `${label}: the good first half was relayed`);
      if (surface === 'anthropic') {
        check(last.event === 'error', `${label}: no error event at the end: ${last.data.slice(0, 120)}`);
        check(!res.events.some((e) => e.event === 'message_stop'), `${label}: a clean message_stop`);
      } else {
        check(last.json?.error, `${label}: no error event at the end: ${last.data.slice(0, 120)}`);
        check(!res.events.some((e) => e.data === '[DONE]'), `${label}: a clean [DONE]`);
      }
      check(res.cut, `${label}: the connection should close without the final chunk`);
    };
    // Memory: the stripping relay holds a line until its newline, at most
    // SL_SSE_MAX_LINE (1 MiB). Four such streams at once, twice: a relay
    // holding the whole line needs 16 MiB or more at once.
    const hwm0 = memKiB(gw.pid).hwm;
    for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: 4 }, () => one(paths[0])));
    const grewStrip = memKiB(gw.pid).hwm - hwm0;
    check(SANITIZED || grewStrip < 2 * LINE / 1024, `4 stripped streams: peak RSS grew by ${grewStrip} KiB`);
    // Every path at once, twice. Each filter that splits lines may hold up
    // to 1 MiB of the line before refusing it: up to 2 MiB for a
    // translated stream, 3 for a legacy one, about 10 MiB for the five.
    const hwm1 = memKiB(gw.pid).hwm;
    for (let round = 0; round < 2; round++) await Promise.all(paths.map(one));
    const grewAll = memKiB(gw.pid).hwm - hwm1;
    check(SANITIZED || grewAll < 4 * LINE / 1024, `every path: peak RSS grew by ${grewAll} KiB`);
    t.diagnostic(`peak RSS ${hwm0} KiB before; grew by ${grewStrip} KiB (4 stripped streams), then ${grewAll} KiB (every path)` +
      `${SANITIZED ? '; sanitizer build: not bounded' : ''}`);
    assert.deepEqual(problems, []);
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: 'after huge lines', limit: { max_tokens: 3 } })).status, 200);
  });
});

describe('11. connection slots', () => {
  it('idle keep-alive connections that never authenticated are shed first', async () => {
    const slots = await startGateway(SLOTS_BIN, ['--workers', '1']);
    const MAX = 6; // security-slots.yaml server.max_connections
    const open = [];
    // A keep-alive connection that sends one request per call.
    const keepAlive = async () => {
      const sock = connect(slots.port, '127.0.0.1');
      await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
      const c = { sock, closed: false, buf: '' };
      sock.on('data', (d) => { c.buf += d.toString('latin1'); });
      sock.on('close', () => { c.closed = true; });
      sock.on('error', () => { c.closed = true; });
      // One whole response (Content-Length framed), or what came before a close.
      const complete = () => {
        const end = c.buf.indexOf('\r\n\r\n');
        const cl = /\r\ncontent-length: (\d+)/i.exec(c.buf);
        return end >= 0 && cl && c.buf.length >= end + 4 + Number(cl[1]);
      };
      c.request = async (head) => {
        c.buf = '';
        sock.write(head);
        const ok = await eventually(() => complete() || c.closed, 3000, 10);
        assert.ok(ok && complete(), `no answer: ${JSON.stringify(c.buf)}`);
        return Number(/^HTTP\/1\.1 (\d{3})/.exec(c.buf)?.[1]);
      };
      open.push(c);
      return c;
    };
    const authed = `GET /v1/models HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer ${KEYS.rich}\r\n\r\n`;
    const anon = 'GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n';
    try {
      // Two authenticated connections first (the longest idle), then four
      // that never presented a key: every slot is taken.
      const keyed = [];
      for (let i = 0; i < 2; i++) {
        const c = await keepAlive();
        assert.equal(await c.request(authed), 200);
        keyed.push(c);
        await sleep(30);
      }
      const anonymous = [];
      for (let i = 0; i < MAX - 2; i++) {
        const c = await keepAlive();
        assert.equal(await c.request(anon), 200);
        anonymous.push(c);
        await sleep(30);
      }
      // Each new authenticated client is served, and takes the slot of an
      // anonymous idle connection, the longest idle first.
      for (let i = 0; i < anonymous.length; i++) {
        const c = await keepAlive();
        assert.equal(await c.request(authed), 200, `new client ${i} served`);
        keyed.push(c);
        await eventually(() => anonymous[i].closed, 2000);
        assert.deepEqual(anonymous.map((a) => a.closed), anonymous.map((_, k) => k <= i), `after new client ${i}`);
        assert.ok(keyed.every((k) => !k.closed), 'no authenticated connection was shed while anonymous ones were idle');
        await sleep(30);
      }
      // Only authenticated idle connections left: the longest idle goes.
      const last = await keepAlive();
      assert.equal(await last.request(authed), 200, 'served once every anonymous slot is gone');
      await eventually(() => keyed[0].closed, 2000);
      assert.ok(keyed[0].closed, 'then the longest-idle authenticated connection gave up its slot');
      // The others still work on their old connections.
      for (const k of keyed.slice(1)) assert.equal(await k.request(authed), 200);
    } finally {
      for (const c of open) c.sock.destroy();
      await slots.stop();
    }
  });
});

describe('12. model names that are not UTF-8', () => {
  it('are refused with 400 before admission on every surface: no upstream call, no ledger row', async () => {
    const tag = newTag();
    const before = await keyRow('rich');
    // Gemini: the name is a percent-encoded path segment (gemini-* would
    // route any of these to a priced target).
    for (const seg of ['gemini-%C3%28', 'gemini-%FF', 'gemini-%ED%A0%80', 'gemini-%C0%AF', 'gemini-x%E2%82']) {
      for (const stream of [false, true]) {
        const { path, body } = build('gemini', { model: 'x', modelPath: seg, text: `utf8 ${tag}`, limit: { maxOutputTokens: 5 }, stream });
        const res = await send(path, { headers: authHeaders('gemini', KEYS.rich), body });
        assert.deepEqual(await callsWith(tag), [], `${seg}: reached the upstream`);
        const msg = assertError('gemini', res, 400, `${seg}${stream ? ' stream' : ''}`);
        assert.equal(msg, "'model' must be valid UTF-8", seg);
      }
    }
    // A NUL is valid UTF-8 but ends a C string: refused too, whatever the status.
    const nul = await ask('gemini', { model: 'x', modelPath: 'gemini-x%00y', key: KEYS.rich, text: `utf8 ${tag}`, limit: { maxOutputTokens: 5 } });
    assert.ok(nul.status >= 400 && nul.status < 500, `NUL: ${nul.status}`);
    // JSON bodies: lone surrogates and raw bytes that are not UTF-8.
    const bad = [
      (b) => b.replace('"claude-utf8"', '"claude-\\udc80"'),
      (b) => b.replace('"claude-utf8"', '"claude-\\ud800x"'),
      (b) => b.replace('"claude-utf8"', '"claude-\\udfff\\ud800"'),
      (b) => Buffer.from(b.replace('"claude-utf8"', '"claude-\u00c3("'), 'latin1'),
      (b) => Buffer.concat([Buffer.from(b.slice(0, b.indexOf('claude-utf8') + 7)), Buffer.from([0xff, 0xfe]),
        Buffer.from(b.slice(b.indexOf('claude-utf8') + 7))]),
    ];
    for (const surface of ['openai', 'anthropic', 'legacy']) {
      for (const [i, f] of bad.entries()) {
        const { path, body } = build(surface, { model: 'claude-utf8', text: `utf8 ${tag}`, limit: { max_tokens: 5 } });
        const res = await send(path, { headers: authHeaders(surface, KEYS.rich), body: f(jsonText(body)) });
        assertError(surface, res, 400, `${surface} body ${i}`);
      }
    }
    assert.deepEqual(await callsWith(tag), [], 'nothing reached the upstream');
    // A good request is the barrier: its row is the only new one.
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: `utf8 ok ${tag}`, limit: { max_tokens: 3 } })).status, 200);
    assert.equal(delta(before, await keyRow('rich')).requests, 1, 'no ledger row for the refused names');
  });
});
