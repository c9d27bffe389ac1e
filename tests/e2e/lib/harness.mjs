// Starts and stops the processes an end-to-end test talks to: the
// mock-upstream (the fake provider) and a sluice gateway compiled from
// tests/e2e/spec.yaml. Every process gets a free port, so two build trees
// can test at once: test specs point their providers at MOCK_PORT, and the
// harness re-points each such provider at the mock actually running with
// the operator's `sluice --provider-url NAME=URL`. Each process is stopped with SIGTERM and must exit 0, so a
// crash or a hang at shutdown fails the test that started it. Also small
// HTTP helpers shared by the tests (JSON requests, SSE reading).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO = resolve(E2E_DIR, '..', '..');

// The port test specs give providers served by the mock upstream: a
// placeholder that providerArgs() replaces with the running mock's port
// (nothing listens on it).
export const MOCK_PORT = 18431;
export const OPENAI_KEY = 'sk-e2e-openai-fake';
export const ANTHROPIC_KEY = 'sk-ant-e2e-fake';
export const GEMINI_KEY = 'gemini-e2e-fake';
// What a client sends; it must never reach the upstream.
export const CLIENT_KEY = 'client-key-must-not-leak';
// The mock's default reply text (tests/mock-upstream/mock_answer.c).
export const MOCK_TEXT =
  'Hello from mock-upstream. This deterministic reply streams word by word so tests can count chunks and tokens.';

function binary(envName, fallback) {
  const p = process.env[envName] || join(REPO, 'build', 'tests', fallback);
  if (!existsSync(p)) {
    throw new Error(`${envName}: no binary at ${p} (build it, or set ${envName})`);
  }
  return p;
}

// Spawns `bin args`, resolves once stderr shows `pattern` (a RegExp with
// one capture: the address). stderr is kept (tail) for failure messages.
// `cwd` is its working directory (default: the test's).
export function startProcess(name, bin, args, { env = process.env, pattern, timeoutMs = 10000, cwd } = {}) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(bin, args, { env, cwd, stdio: ['ignore', 'inherit', 'pipe'] });
    let log = '';
    let ready = false;
    const handle = {
      name,
      proc,
      log: () => log,
      exited: new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal }))),
    };
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not become ready in ${timeoutMs} ms; stderr:\n${log}`));
    }, timeoutMs);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      log = (log + d).slice(-65536);
      if (process.env.E2E_VERBOSE) process.stderr.write(`[${name}] ${d}`);
      const m = !ready && log.match(pattern);
      if (m) {
        ready = true;
        clearTimeout(timer);
        handle.address = m[1];
        resolvePromise(handle);
      }
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${name}: cannot start ${bin}: ${e.message}`));
    });
    proc.once('exit', (code, signal) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${name} exited early (code ${code}, signal ${signal}); stderr:\n${log}`));
      }
    });
  });
}

// SIGTERM, then the process must exit 0 within timeoutMs.
export async function stopProcess(handle, timeoutMs = 5000) {
  if (handle.proc.exitCode === null && handle.proc.signalCode === null) handle.proc.kill('SIGTERM');
  let timer;
  const res = await Promise.race([
    handle.exited,
    new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); }),
  ]);
  clearTimeout(timer);
  if (res === null) {
    handle.proc.kill('SIGKILL');
    await handle.exited;
    throw new Error(`${handle.name} did not exit within ${timeoutMs} ms of SIGTERM; stderr:\n${handle.log()}`);
  }
  assert.deepEqual(res, { code: 0, signal: null },
    `${handle.name} should exit 0 on SIGTERM; stderr:\n${handle.log()}`);
}

export function freePort() {
  return new Promise((r, j) => {
    const s = createServer();
    s.once('error', j);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => r(port));
    });
  });
}

// `--provider-url` arguments that re-point every provider of gateway `bin`
// whose base URL is http(s)://127.0.0.1:P... at ports[P] (an origin such as
// http://127.0.0.1:40123), keeping the URL's path. `sluice --providers`
// lists the compiled providers, so the spec stays the one place they are
// named.
export function providerArgs(bin, ports) {
  const r = spawnSync(bin, ['--providers'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} --providers: exit ${r.status}: ${r.stderr}`);
  const args = [];
  for (const line of r.stdout.split('\n')) {
    const [name, , url] = line.split('\t');
    const m = url && url.match(/^https?:\/\/127\.0\.0\.1:(\d+)(\/.*)?$/);
    if (m && ports[m[1]]) args.push('--provider-url', `${name}=${ports[m[1]]}${m[2] || ''}`);
  }
  return args;
}

// providerArgs for the usual case: MOCK_PORT -> the running mock.
export const mockArgs = (bin, mock) => providerArgs(bin, { [MOCK_PORT]: mock.url });

// A running mock-upstream plus helpers for its control endpoints.
export async function startMock({ port = 0, args = [] } = {}) {
  const h = await startProcess('mock-upstream', binary('MOCK_UPSTREAM_BIN', 'mock-upstream'),
    ['--listen', `127.0.0.1:${port}`, ...args],
    { pattern: /mock-upstream listening on (\S+)/ });
  const url = `http://${h.address}`;
  return {
    ...h,
    url,
    async calls() {
      const r = await fetch(`${url}/__calls`);
      assert.equal(r.status, 200);
      return r.json();
    },
    async reset() {
      const r = await fetch(`${url}/__reset`, { method: 'POST' });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    },
    stop: () => stopProcess(h),
  };
}

// Polls /healthz until it answers 200, the process exits, or timeoutMs.
export async function waitHealthy(url, proc, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const r = await fetch(`${url}/healthz`);
      await r.arrayBuffer();
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await sleep(50);
  }
  throw new Error(`gateway at ${url} not healthy in ${timeoutMs} ms (${last})`);
}

// A gateway on 127.0.0.1:port for suites that read all it logs: its whole
// stderr is kept (fullLog(); startProcess keeps only a tail, and `logs`,
// when given, gets the getter at once), it sits in the set `live` while it
// runs, and one that never answers /healthz is killed and reported with
// that stderr.
export async function startLoggedGateway(name, bin, port, args, { env, live, logs }) {
  const h = await startProcess(name, bin, ['--listen', `127.0.0.1:${port}`, ...args], {
    env, pattern: /sluice listening on (\S+)/,
  });
  let full = h.log();
  h.proc.stderr.on('data', (d) => { full += d; });
  live.add(h.proc);
  h.proc.once('exit', () => live.delete(h.proc));
  logs?.push(() => full);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, h.proc);
  } catch (e) {
    h.proc.kill('SIGKILL');
    throw new Error(`${e.message}; stderr:\n${full}`);
  }
  return { ...h, url, port, fullLog: () => full, stop: () => stopProcess(h) };
}

// `bin` overrides SLUICE_BIN; `args` are added to the command line; `mock`
// (a startMock() result) receives what the spec sends to MOCK_PORT;
// `upstreams` maps other spec ports to origins (see providerArgs).
export async function startGateway({ env = {}, bin, args = [], mock, upstreams = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-'));
  const port = await freePort();
  const exe = bin || binary('SLUICE_BIN', 'sluice-e2e');
  const h = await startProcess('sluice', exe,
    ['--listen', `127.0.0.1:${port}`, '--state', join(dir, 's.db'),
      ...providerArgs(exe, { ...(mock ? { [MOCK_PORT]: mock.url } : {}), ...upstreams }), ...args], {
      env: {
        ...process.env,
        SLUICE_E2E_OPENAI_KEY: OPENAI_KEY,
        SLUICE_E2E_ANTHROPIC_KEY: ANTHROPIC_KEY,
        SLUICE_E2E_GEMINI_KEY: GEMINI_KEY,
        ...env,
      },
      pattern: /sluice listening on (\S+)/,
    });
  const url = `http://${h.address}`;
  try {
    await waitHealthy(url, h.proc);
  } catch (e) {
    h.proc.kill('SIGKILL');
    throw new Error(`${e.message}; stderr:\n${h.log()}`);
  }
  return {
    ...h,
    url,
    stop: async () => {
      try {
        await stopProcess(h);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// Registers before/after hooks that run the mock and a gateway pointed at
// it for the whole test file; returns an object filled in by `before`.
// `upstreams` as for startGateway.
export function useStack({ upstreams } = {}) {
  const stack = {};
  before(async () => {
    stack.mock = await startMock();
    try {
      stack.gateway = await startGateway({ mock: stack.mock, upstreams });
    } catch (e) {
      await stack.mock.stop();
      throw e;
    }
    stack.url = stack.gateway.url;
  });
  after(async () => {
    // Stop both even if one fails, then report the first failure.
    const results = await Promise.allSettled([
      stack.gateway?.stop(),
      stack.mock?.stop(),
    ]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  });
  return stack;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// POST a JSON body (object, or a raw string sent as is); returns
// { status, headers, text, json } with json undefined when not JSON.
export async function postJSON(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

export const openaiHeaders = (key = CLIENT_KEY) => ({ authorization: `Bearer ${key}` });
export const anthropicHeaders = (key = CLIENT_KEY, extra = {}) => ({
  'x-api-key': key,
  'anthropic-version': '2023-06-01',
  ...extra,
});

// Reads a fetch Response as server-sent events. Each event carries `t`,
// the ms since `t0` at which the network chunk holding its end arrived.
// One SSE event from the text between two blank lines: { event, data,
// json } (json when data parses), or null for a comment-only block.
export function parseSSEEvent(raw, extra = {}) {
  const ev = { event: undefined, data: '', ...extra };
  for (const line of raw.split('\n')) {
    if (line.startsWith(':')) continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
    if (field === 'event') ev.event = val;
    else if (field === 'data') ev.data = ev.data ? `${ev.data}\n${val}` : val;
  }
  if (ev.data === '' && ev.event === undefined) return null;
  try { ev.json = JSON.parse(ev.data); } catch { /* [DONE] and friends */ }
  return ev;
}

export async function readSSE(response, { t0 = performance.now(), onEvent } = {}) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  const reader = response.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const t = performance.now() - t0;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = parseSSEEvent(raw, { t });
      if (!ev) continue;
      events.push(ev);
      if (onEvent && onEvent(ev, reader) === false) {
        return { events, ended: false };
      }
    }
  }
  return { events, ended: true, rest: buf };
}

// Polls fn() until it returns a truthy value or timeoutMs passes.
export async function eventually(fn, timeoutMs = 3000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(stepMs);
  }
}
