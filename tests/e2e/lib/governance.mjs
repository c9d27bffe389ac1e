// What governance.test.mjs drives its gateways with: gov.yaml's prices and
// the cost arithmetic the ledger must agree with, starting and stopping
// sluice-gov processes on state directories of their own, requests whose
// every answer is kept (received, gatewayLogs, stateDirs: the haystacks of
// the file's last test, the secret grep), and the error shapes of both
// client protocols.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { E2E_DIR, MOCK_TEXT, mockArgs, sleep, startLoggedGateway } from './harness.mjs';
import { KEYS, PLANTED } from './gov-fixtures.mjs';

export const GOV_BIN = process.env.SLUICE_GOV_BIN || resolve(E2E_DIR, '..', '..', 'build', 'tests', 'sluice-gov');

export const KEY_NAMES = Object.keys(KEYS);

// gov.yaml's prices in micro-USD per million tokens.
const PRICES = {
  'up-openai/gpt-4o-mini': { input: 150000, output: 600000, cache_read: 75000, cache_write: 0 },
  'up-openai/gpt-4o': { input: 2500000, output: 10000000, cache_read: 1250000, cache_write: 0 },
  'up-anthropic/claude-sonnet-4-5': { input: 3000000, output: 15000000, cache_read: 300000, cache_write: 3750000 },
};
export const TINY_BUDGET_MICROS = 400; // keys.tiny.budget.usd: 0.0004
const MOCK_WORDS = MOCK_TEXT.split(/\s+/).length;

// Cost in micro-USD of one request, as runtime/govern/govern.c sl_gov_cost
// computes it: integer products, divided by 1e6, rounded half up.
export function costMicros(priceKey, u) {
  const p = PRICES[priceKey];
  assert.ok(p, `no price for ${priceKey}`);
  const sum = BigInt(u.input) * BigInt(p.input) + BigInt(u.output) * BigInt(p.output) +
    BigInt(u.cache_read || 0) * BigInt(p.cache_read) + BigInt(u.cache_write || 0) * BigInt(p.cache_write);
  return Number((sum + 500000n) / 1000000n);
}

// A provider's usage object, normalised as runtime/govern/usage.c does.
export function normUsage(u) {
  if (!u) return undefined;
  if (u.prompt_tokens !== undefined) {
    const cached = u.prompt_tokens_details?.cached_tokens || 0;
    return { input: u.prompt_tokens - cached, output: u.completion_tokens, cache_read: cached, cache_write: 0 };
  }
  return {
    input: u.input_tokens, output: u.output_tokens,
    cache_read: u.cache_read_input_tokens || 0, cache_write: u.cache_creation_input_tokens || 0,
  };
}

// ---- everything we received, for the secret grep at the end ---------------

export const received = [];   // strings: status lines, headers, bodies
export const gatewayLogs = []; // functions returning a gateway's full stderr
export const stateDirs = [];
export const live = new Set(); // gateway processes still running

export function keep(res, text) {
  received.push(`${res.status}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${text}`);
}

export async function send(url, { method = 'POST', headers = {}, body, signal } = {}) {
  const r = await fetch(url, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  const text = await r.text();
  keep(r, text);
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

// One raw HTTP/1.1 request (for header bytes fetch will not send).
export function rawRequest(port, headerBytes, body) {
  return new Promise((resolvePromise, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('raw request timed out')); }, 5000);
    sock.on('connect', () => {
      const b = Buffer.from(body);
      sock.write(Buffer.concat([
        Buffer.from('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          'Content-Type: application/json\r\nConnection: close\r\n'),
        headerBytes,
        Buffer.from(`Content-Length: ${b.length}\r\n\r\n`),
        b,
      ]));
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      received.push(raw);
      const m = raw.match(/^HTTP\/1\.1 (\d{3})/);
      const at = raw.indexOf('\r\n\r\n');
      const text = at >= 0 ? raw.slice(at + 4) : '';
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      resolvePromise({ status: m ? Number(m[1]) : 0, text, json, raw });
    });
  });
}

// ---- gateway processes ------------------------------------------------------

// Starts sluice-gov on `port` with the state file `state`, its providers
// pointed at `mock`; the handle's fullLog() is its whole stderr (the
// harness keeps only a tail).
export async function startGov({ mock, port, state, args = [] }) {
  if (!existsSync(GOV_BIN)) throw new Error(`SLUICE_GOV_BIN: no binary at ${GOV_BIN}`);
  const g = await startLoggedGateway('sluice-gov', GOV_BIN, port,
    ['--state', state, '--workers', '2', ...mockArgs(GOV_BIN, mock), ...args],
    { env: { ...process.env, ...PLANTED }, live, logs: gatewayLogs });
  return {
    ...g, state,
    async kill9() {
      if (g.proc.exitCode === null && g.proc.signalCode === null) g.proc.kill('SIGKILL');
      return g.exited;
    },
  };
}

export function newStateDir() {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gov-'));
  stateDirs.push(dir);
  return dir;
}

// ---- protocol helpers ------------------------------------------------------

export const bearer = (k) => ({ authorization: `Bearer ${k}` });
export const anthropic = (k) => ({ ...(k === undefined ? {} : { 'x-api-key': k }), 'anthropic-version': '2023-06-01' });
export const chatBody = (content, extra = {}) => ({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content }], ...extra });
export const msgBody = (content, extra = {}) => ({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content }], ...extra });

export function assertOpenAIError(res, status, type, code) {
  assert.equal(res.status, status, res.text);
  assert.ok(res.json?.error, `OpenAI error shape expected: ${res.text}`);
  assert.equal(typeof res.json.error.message, 'string');
  assert.ok(res.json.error.message.length > 0);
  assert.equal(res.json.error.type, type, res.text);
  if (code !== undefined) assert.equal(res.json.error.code, code, res.text);
  assert.ok('param' in res.json.error, res.text);
}

export function assertAnthropicError(res, status, type) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.type, 'error', `Anthropic error shape expected: ${res.text}`);
  assert.equal(res.json.error?.type, type, res.text);
  assert.equal(typeof res.json.error.message, 'string');
}
