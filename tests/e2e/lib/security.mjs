// The security suites' shared fixtures (issue 20): the keys and prices of
// security.yaml, the gateway and mock they run against (env.gw, env.mock,
// started by securityProcesses()), and one request builder per client
// surface. security.test.mjs covers items 1-6 of the issue (what a request
// may cost and what it forwards); security-io.test.mjs items 7-12 (logs,
// refusals, memory, connection slots, names).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  E2E_DIR, eventually, mockArgs, freePort, readSSE, startLoggedGateway, startMock,
} from './harness.mjs';

// The running gateway and mock of the importing suite.
export const env = { gw: undefined, mock: undefined };

export const BUILD_TESTS = resolve(E2E_DIR, '..', '..', 'build', 'tests');
export const BIN = process.env.SLUICE_SECURITY_BIN || join(BUILD_TESTS, 'sluice-security');
export const SLOTS_BIN = process.env.SLUICE_SECURITY_SLOTS_BIN || join(BUILD_TESTS, 'sluice-security-slots');
// An AddressSanitizer build keeps freed memory in quarantine: its peak RSS
// says nothing about what a stream holds (item 10 then checks behaviour only).
export const SANITIZED = process.env.SLUICE_SANITIZED === '1';

export const KEYS = {
  rich: 'sk-sec-test-rich-79c05301ac354cc23c08d7e8',
  member: 'sk-sec-test-member-11c8d6de634d99fa38c7abde',
  broke: 'sk-sec-test-broke-bc96c43762df8dc4a307c3e8',
  racer: 'sk-sec-test-racer-5da8a8d673ef806d432f337c',
  free: 'sk-sec-test-free-814fa858847d2739dfe8d9dd',
  expired: 'sk-sec-test-expired-94f893a8054c2120ebe8a11a',
  office: 'sk-sec-test-office-40067ca29e4e6a95300e18d8',
};
export const ADMIN_KEY = 'sk-sec-test-admin-60015c4cb0a578278db05b92';
export const UNKNOWN_KEY = 'sk-sec-test-nobody-00000000000000000000000000';

// Provider keys the gateway sends upstream.
export const PROVIDER_ENV = {
  SLUICE_E2E_OPENAI_KEY: 'sk-sec-upstream-openai-fake',
  SLUICE_E2E_ANTHROPIC_KEY: 'sk-ant-sec-upstream-fake',
  SLUICE_E2E_GEMINI_KEY: 'gemini-sec-upstream-fake',
};

// security.yaml's prices in micro-USD per million tokens.
export const PRICES = {
  'up-openai/gpt-4o-mini': { input: 150000, output: 600000 },
  'up-openai/gpt-4o': { input: 2500000, output: 10000000 },
  'up-openai/open-priced-*': { input: 500000, output: 1500000 },
  'up-anthropic/claude-sonnet-4-5': { input: 3000000, output: 15000000 },
  'up-anthropic/claude-haiku-4-5': { input: 1000000, output: 5000000 },
  'up-anthropic/claude-*': { input: 7000000, output: 21000000 },
  'up-gemini/gemini-2.5-flash': { input: 300000, output: 2500000 },
  'up-gemini/gemini-*': { input: 1250000, output: 10000000 },
};
export const BUDGET_MICROS = { broke: 200, racer: 20000 };
export const DEFAULT_LIMIT = 4096; // runtime/proxy/admit.h SL_DEFAULT_OUTPUT_TOKENS
export const MAX_LIMIT = 10000000; // SL_MAX_OUTPUT_TOKENS
export const MiB = 1024 * 1024;

// Cost in micro-USD as sl_gov_cost computes it: integer products, / 1e6,
// rounded half up.
export function costMicros(priceKey, u) {
  const p = PRICES[priceKey];
  assert.ok(p, `no price for ${priceKey}`);
  const sum = BigInt(u.input) * BigInt(p.input) + BigInt(u.output) * BigInt(p.output);
  return Number((sum + 500000n) / 1000000n);
}

// A provider's usage object in the ledger's terms (uncached input, output).
export function normUsage(u) {
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

export const tokensOf = (bytes) => Math.ceil(bytes / 4); // sl_usage_estimate_tokens

// ---- processes -------------------------------------------------------------

export const stateDirs = [];
export const live = new Set();

// A gateway on a free port with a fresh state file; fullLog() is its whole
// stderr (the access log test counts its lines).
export async function startGateway(bin, args = []) {
  if (!existsSync(bin)) throw new Error(`no gateway binary at ${bin} (build it, or set SLUICE_SECURITY_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sec-'));
  stateDirs.push(dir);
  const g = await startLoggedGateway('sluice-security', bin, await freePort(),
    ['--state', join(dir, 'sec.db'), ...mockArgs(bin, env.mock), ...args],
    { env: { ...process.env, ...PROVIDER_ENV }, live });
  return { ...g, pid: g.proc.pid };
}


// ---- requests ----------------------------------------------------------------

export let seq = 0;
export const newTag = () => `sec-${process.pid}-${++seq}`;

// Numbers jansson reads as integers but JavaScript cannot hold: written into
// the JSON text as they are.
export const raw = (digits) => `@@${digits}@@`;
export const jsonText = (o) => JSON.stringify(o).replace(/"@@([^@"]*)@@"/g, '$1');

export const SURFACES = ['openai', 'anthropic', 'gemini', 'legacy'];

export function authHeaders(surface, key) {
  if (key === undefined) return surface === 'anthropic' ? { 'anthropic-version': '2023-06-01' } : {};
  if (surface === 'anthropic') return { 'x-api-key': key, 'anthropic-version': '2023-06-01' };
  if (surface === 'gemini') return { 'x-goog-api-key': key };
  return { authorization: `Bearer ${key}` };
}

// One request of `surface`: path and JSON body. `limit` is that surface's
// output-limit members (Gemini: generationConfig's); `modelPath` is a raw
// Gemini path segment for names fetch would otherwise encode.
export function build(surface, { model, text, limit = {}, stream = false, extra = {}, modelPath, query = '' }) {
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
export async function send(path, { method = 'POST', headers = {}, body, url = env.gw.url } = {}) {
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

export function ask(surface, opts) {
  const { path, body } = build(surface, opts);
  return send(path, { headers: { ...authHeaders(surface, opts.key), ...(opts.headers || {}) }, body: opts.body ?? body });
}

// A streaming request; returns the fetch Response (read it with readSSE).
export function askStream(surface, opts) {
  const { path, body } = build(surface, { ...opts, stream: true });
  return fetch(`${env.gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(surface, opts.key) },
    body: jsonText(body),
  });
}

// The error shape of each surface (legacy errors are OpenAI's).
export function assertError(surface, res, status, label = '') {
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

export const callsWith = async (tag) => (await env.mock.calls()).filter((c) => JSON.stringify(c).includes(tag));

// The output limit an upstream request carries, by the upstream's protocol
// (OpenAI: either spelling, which must agree when both are present).
export function upstreamLimit(call) {
  const b = call.body;
  if (call.path.startsWith('/v1beta/')) return b.generationConfig?.maxOutputTokens;
  if (call.path.startsWith('/v1/messages')) return b.max_tokens;
  if (b.max_tokens !== undefined && b.max_completion_tokens !== undefined) {
    assert.equal(b.max_tokens, b.max_completion_tokens, `OpenAI upstream got two limits: ${JSON.stringify(b)}`);
  }
  return b.max_completion_tokens ?? b.max_tokens;
}

// ---- admin API and ledger ------------------------------------------------------

export const admin = (path) => send(path, { method: 'GET', headers: { authorization: `Bearer ${ADMIN_KEY}` } });

export async function spendRows(by) {
  const r = await admin(`/admin/spend?by=${by}`);
  assert.equal(r.status, 200, r.text);
  return r.json.rows;
}

export const ZERO = { requests: 0, cost_micros: 0, input_tokens: 0, output_tokens: 0 };
export async function keyRow(name) {
  return (await spendRows('key')).find((r) => r.key === name) || { key: name, ...ZERO };
}
export async function modelRow(model) {
  return (await spendRows('model')).find((r) => r.model === model) || { model, ...ZERO };
}
export async function keyBudget(name) {
  const r = await admin('/admin/keys');
  assert.equal(r.status, 200, r.text);
  return r.json.keys.find((k) => k.name === name).budget;
}

export const delta = (a, b) => ({
  requests: b.requests - a.requests, cost: b.cost_micros - a.cost_micros,
  input: b.input_tokens - a.input_tokens, output: b.output_tokens - a.output_tokens,
});

// Ledger rows of keys without a budget are written shortly after the
// answer; a later request of the same key that succeeds is the barrier.
export async function ledgerSettled(key, before, expectRequests) {
  const row = await eventually(async () => {
    const r = await keyRow(key);
    return r.requests - before.requests >= expectRequests ? r : null;
  }, 3000);
  return row || keyRow(key);
}

// ---- raw sockets ----------------------------------------------------------------

// Writes `bytes`, collects the answer until the server closes (or timeout).
export function rawExchange(port, bytes, timeoutMs = 5000) {
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

export function rawPost(surface, opts) {
  const { path, body } = build(surface, opts);
  const b = Buffer.from(jsonText(body));
  const hdrs = Object.entries(authHeaders(surface, opts.key)).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return rawExchange(env.gw.port, Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: sluice.test\r\nConnection: close\r\n` +
      `Content-Type: application/json\r\n${hdrs}Content-Length: ${b.length}\r\n\r\n`), b]));
}

// Reads a stream that may end without its final chunk (as sluice ends a
// failed one): the events seen, and whether the connection was cut.
export async function readStream(response) {
  const seen = [];
  try {
    const r = await readSSE(response, { onEvent: (ev) => { seen.push(ev); } });
    return { events: r.events, cut: false, rest: r.rest };
  } catch (e) {
    return { events: seen, cut: true, error: e };
  }
}

// ---- process memory -------------------------------------------------------------

export function memKiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)[1]);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

// Starts the mock and the security.yaml gateway before the suite, stops
// both (and any other gateway it started) after.
export function securityProcesses() {
  before(async () => {
    env.mock = await startMock();
    try {
      env.gw = await startGateway(BIN);
    } catch (e) {
      await env.mock.stop();
      throw e;
    }
  });

  after(async () => {
    const results = await Promise.allSettled([env.gw?.stop(), env.mock?.stop()]);
    for (const p of live) p.kill('SIGKILL');
    for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  });
}
