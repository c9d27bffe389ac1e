// HTTPS on the gateway's listener (tests/e2e/tls/spec.yaml): curl and the
// official OpenAI and Anthropic SDKs over TLS, streaming included, trusting
// a CA made for this run (tls/run.sh sets NODE_EXTRA_CA_CERTS); the plain
// loopback listener next to it; what must be refused (TLS 1.0/1.1, 1.3,
// suites without ECDHE or AEAD, plain HTTP on the TLS port, a handshake
// that never finishes); session resumption; and SIGHUP replacing the
// certificate while a kept-alive connection carries on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startMock, startProcess, stopProcess, freePort, sleep, mockArgs, OPENAI_KEY, ANTHROPIC_KEY,
} from './lib/harness.mjs';
import { openaiCases, anthropicCases } from './lib/sdk-cases.mjs';

const DIR = process.env.SLUICE_TLS_DIR;
const BIN = process.env.SLUICE_TLS_BIN;
let PLAIN; // the plain health listener, on a free port (--listen-plain)
const CA = join(DIR, 'ca.pem');

const stack = {};

async function startTLSGateway(certDir = DIR) {
  const state = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  const port = await freePort();
  const plainPort = await freePort();
  PLAIN = `http://127.0.0.1:${plainPort}`;
  const h = await startProcess('sluice-tls', BIN,
    ['--listen', `127.0.0.1:${port}`, '--listen-plain', `127.0.0.1:${plainPort}`, ...mockArgs(BIN, stack.mock),
      '--state', join(state, 's.db'), '--workers', '2',
      '--tls-cert', join(certDir, 'chain.pem'), '--tls-key', join(certDir, 'server.key')], {
      env: { ...process.env, SLUICE_E2E_OPENAI_KEY: OPENAI_KEY, SLUICE_E2E_ANTHROPIC_KEY: ANTHROPIC_KEY },
      pattern: /sluice listening on (\S+)/,
    });
  // Health through the plain loopback listener, as a load balancer would.
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${PLAIN}/healthz`);
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch (e) {
      if (i > 100) throw e;
    }
    await sleep(50);
  }
  return {
    ...h,
    port,
    url: `https://localhost:${port}`,
    stop: async () => {
      try { await stopProcess(h); } finally { rmSync(state, { recursive: true, force: true }); }
    },
  };
}

before(async () => {
  stack.mock = await startMock();
  stack.gw = await startTLSGateway();
});
after(async () => {
  const r = await Promise.allSettled([stack.gw?.stop(), stack.mock?.stop()]);
  for (const x of r) if (x.status === 'rejected') throw x.reason;
});

function curl(args) {
  return execFileSync('curl', ['-sS', '--cacert', CA, ...args], { encoding: 'utf8' });
}

function sClient(args, input = '') {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${stack.gw.port}`, ...args],
    { input, encoding: 'utf8', timeout: 10000 });
  return `${r.stdout}\n${r.stderr}`;
}

const handshakeFailed = (out) => /Cipher is \(NONE\)|Cipher\s*:\s*0000|no protocols available|handshake failure|wrong version number|alert/i.test(out)
  && !/New, TLSv1\.2, Cipher is ECDHE/.test(out);

test('curl: healthz and a completion over HTTPS, verified against the test CA', () => {
  const h = JSON.parse(curl([`${stack.gw.url}/healthz`]));
  assert.equal(h.status, 'ok');
  const out = curl(['-w', '\n%{http_version} %{ssl_verify_result}', '-H', 'content-type: application/json',
    '-d', JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }),
    `${stack.gw.url}/v1/chat/completions`]);
  const [body, meta] = out.split('\n');
  assert.equal(JSON.parse(body).object, 'chat.completion');
  assert.equal(meta, '1.1 0');
});

test('curl: a stream over HTTPS ends with [DONE]', () => {
  const out = curl(['-N', '-H', 'content-type: application/json', '-d',
    JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    `${stack.gw.url}/v1/chat/completions`]);
  assert.match(out, /^data: \{/m);
  assert.match(out, /data: \[DONE\]\s*$/);
});

test('the plain listener next to it serves HTTP on loopback', async () => {
  const r = await fetch(`${PLAIN}/healthz`);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).status, 'ok');
});

openaiCases({ label: 'https -> up-openai', getBaseURL: () => `${stack.gw.url}/v1`, model: 'gpt-4o-mini', exact: true });
anthropicCases({ label: 'https -> up-anthropic', getBaseURL: () => stack.gw.url, model: 'claude-sonnet-4-5', exact: true });

test('TLS 1.2 with an ECDHE AEAD suite, ALPN http/1.1 and SNI', () => {
  const out = sClient(['-tls1_2', '-alpn', 'http/1.1', '-servername', 'localhost', '-CAfile', CA]);
  assert.match(out, /New, TLSv1\.2, Cipher is ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)/);
  assert.match(out, /ALPN protocol: http\/1\.1/);
  assert.match(out, /Verify return code: 0 \(ok\)/);
});

for (const [name, args] of [
  ['TLS 1.0', ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0']],
  ['TLS 1.1', ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']],
  ['TLS 1.3 only', ['-tls1_3']],
  ['a CBC suite', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384']],
  ['a suite without ECDHE', ['-tls1_2', '-cipher', 'AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA']],
]) {
  test(`refused: ${name}`, () => {
    const out = sClient(args);
    assert.ok(handshakeFailed(out), out);
  });
}

test('a reconnecting client resumes its session', () => {
  const sess = join(DIR, 'session.pem');
  const first = sClient(['-tls1_2', '-CAfile', CA, '-sess_out', sess]);
  assert.match(first, /^New, TLSv1\.2/m);
  // Two workers: the cache is shared, so whichever takes the connection resumes.
  for (let i = 0; i < 4; i++) {
    assert.match(sClient(['-tls1_2', '-CAfile', CA, '-sess_in', sess]), /^Reused, TLSv1\.2/m);
  }
});

function rawExchange(payload, { waitMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = netConnect(stack.gw.port, '127.0.0.1');
    let data = '';
    let error = null;
    s.on('connect', () => s.write(payload));
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('error', (e) => { error = e.code; });
    let gaveUp = false;
    const timer = setTimeout(() => { gaveUp = true; s.destroy(); }, waitMs);
    s.on('close', () => { clearTimeout(timer); resolve({ data, error, gaveUp, ms: performance.now() - t0 }); });
  });
}

test('plain HTTP to the TLS port: a 400 that says so, then a clean close', async () => {
  const r = await rawExchange('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.equal(r.error, null);
  assert.match(r.data, /^HTTP\/1\.[01] 400 /);
  assert.match(r.data, /https:\/\//);
  assert.match(r.data, /Connection: close/i);
});

test('a handshake that never finishes is closed after handshake_timeout (1 s)', async () => {
  // A record header promising a ClientHello that never comes.
  const r = await rawExchange(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]));
  assert.equal(r.data, '');
  // Closed by the gateway, not by this test giving up after 5 s; and not
  // before the timeout (t0 precedes the connection, so this cannot flake).
  assert.equal(r.gaveUp, false, 'the gateway closed the connection');
  assert.ok(r.ms > 800, `closed after ${r.ms} ms`);
});

function tlsSocket() {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: stack.gw.port, servername: 'localhost',
      ca: readFileSync(CA) }, () => resolve(s));
    s.once('error', reject);
  });
}

function get(s, path) {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d) => {
      buf += d.toString();
      const end = buf.indexOf('\r\n\r\n');
      const m = end >= 0 && buf.slice(0, end).match(/Content-Length: (\d+)/i);
      if (m && buf.length >= end + 4 + Number(m[1])) {
        s.off('data', onData);
        resolve(buf);
      }
    };
    s.on('data', onData);
    s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  });
}

test('SIGHUP loads a new certificate; a kept-alive connection carries on', async () => {
  const old = await tlsSocket();
  assert.equal(old.getPeerCertificate().subject.CN, 'localhost');
  assert.match(await get(old, '/healthz'), /^HTTP\/1\.1 200/);
  execFileSync('sh', [join(process.cwd(), 'tls', 'certs.sh'), DIR, 'rsa', 'reloaded']);
  stack.gw.proc.kill('SIGHUP');
  for (let i = 0; i < 100 && !/reloaded; new connections use them/.test(stack.gw.log()); i++) await sleep(20);
  assert.match(stack.gw.log(), /certificate and key reloaded/);
  const fresh = await tlsSocket();
  assert.equal(fresh.getPeerCertificate().subject.CN, 'reloaded');
  assert.match(await get(fresh, '/healthz'), /^HTTP\/1\.1 200/);
  assert.match(await get(old, '/healthz'), /^HTTP\/1\.1 200/, 'the old connection still serves');
  fresh.destroy();
  old.destroy();
});

test('a broken pair on SIGHUP keeps the previous one serving', async () => {
  const bad = mkdtempSync(join(tmpdir(), 'sluice-tls-bad-'));
  try {
    execFileSync('sh', [join(process.cwd(), 'tls', 'certs.sh'), bad]);
    // The key of another pair: the reload must refuse it.
    execFileSync('cp', [join(bad, 'server.key'), join(DIR, 'server.key')]);
    stack.gw.proc.kill('SIGHUP');
    for (let i = 0; i < 100 && !/reload failed/.test(stack.gw.log()); i++) await sleep(20);
    assert.match(stack.gw.log(), /reload failed, still serving the previous certificate: .*does not belong/);
    const s = await tlsSocket();
    assert.equal(s.getPeerCertificate().subject.CN, 'reloaded');
    assert.match(await get(s, '/healthz'), /^HTTP\/1\.1 200/);
    s.destroy();
  } finally {
    rmSync(bad, { recursive: true, force: true });
  }
});
