// Client certificates on the HTTPS listener (mtls/spec.yaml: `client_ca`,
// `client_auth: require`): a client with a certificate from the spec's CA
// is served (curl, Node's https with the OpenAI SDK's transport, openssl
// s_client); one without a certificate, or with one from another CA, is
// refused in the handshake and never reaches HTTP. The CAs and certificates
// are made per run with the openssl CLI (upstream-tls/certs.sh), and the
// gateway starts in that directory, where the spec's relative names point.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, stopProcess, freePort, eventually, E2E_DIR } from './lib/harness.mjs';

const BIN = process.env.SLUICE_MTLS_BIN;
const stack = {};

function certs(dir, name) {
  execFileSync('sh', [join(E2E_DIR, 'upstream-tls', 'certs.sh'), dir, name]);
  return dir;
}

before(async () => {
  stack.dir = mkdtempSync(join(tmpdir(), 'sluice-mtls-'));
  stack.good = certs(join(stack.dir, 'certs'), 'sluice mTLS test CA');
  stack.rogue = certs(join(stack.dir, 'rogue'), 'rogue CA');
  const port = await freePort();
  stack.gw = await startProcess('sluice-mtls', BIN,
    ['--listen', `127.0.0.1:${port}`, '--state', join(stack.dir, 's.db'), '--workers', '1'],
    { pattern: /sluice listening on (\S+)/, cwd: stack.dir });
  stack.port = port;
});

after(async () => {
  try {
    if (stack.gw) await stopProcess(stack.gw);
  } finally {
    rmSync(stack.dir, { recursive: true, force: true });
  }
});

const BODY = JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] });

function curl(extra) {
  return spawnSync('curl', ['-sS', '--max-time', '10', '--cacert', join(stack.good, 'ca.pem'), ...extra,
    '-H', 'content-type: application/json', '-d', BODY,
    `https://127.0.0.1:${stack.port}/v1/chat/completions`], { encoding: 'utf8' });
}

function requests() {
  return stack.gw.log().split('\n').filter((l) => / POST \/v1\/chat\/completions /.test(l)).length;
}

// The access log line of a request is written as it ends, which may be
// after the client has its answer: each test that makes requests waits for
// its lines, so the next one counts from a settled log.
test('a client certificate from the spec\'s CA is served (curl)', async () => {
  const r = curl(['--cert', join(stack.good, 'client.pem'), '--key', join(stack.good, 'client.key')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).choices[0].message.content.length > 0, true, r.stdout);
  assert.ok(await eventually(() => requests() === 1), stack.gw.log());
});

test('a client certificate from the spec\'s CA is served (Node https)', async () => {
  const res = await new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: stack.port, path: '/v1/chat/completions', method: 'POST',
      ca: readFileSync(join(stack.good, 'ca.pem')),
      cert: readFileSync(join(stack.good, 'client.pem')),
      key: readFileSync(join(stack.good, 'client.key')),
      headers: { 'content-type': 'application/json' },
    }, (r) => {
      let body = '';
      r.setEncoding('utf8').on('data', (d) => { body += d; }).on('end', () => resolve({ status: r.statusCode, body }));
    });
    req.on('error', reject);
    req.end(BODY);
  });
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).object, 'chat.completion');
  assert.ok(await eventually(() => requests() === 2), stack.gw.log());
});

test('without a client certificate the handshake is refused', () => {
  const before = requests();
  const r = curl([]);
  // 35: CURLE_SSL_CONNECT_ERROR, the handshake did not complete.
  assert.equal(r.status, 35, `curl: ${r.status} ${r.stderr} ${r.stdout}`);
  assert.equal(requests(), before, 'no request reached HTTP');
});

test('a client certificate from another CA is refused (curl and openssl s_client)', async () => {
  const before = requests();
  const r = curl(['--cert', join(stack.rogue, 'client.pem'), '--key', join(stack.rogue, 'client.key')]);
  assert.equal(r.status, 35, `curl: ${r.status} ${r.stderr} ${r.stdout}`);
  // s_client: the handshake itself fails, and no HTTP answer arrives.
  const s = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${stack.port}`, '-tls1_2',
    '-CAfile', join(stack.good, 'ca.pem'), '-cert', join(stack.rogue, 'client.pem'),
    '-key', join(stack.rogue, 'client.key')],
  { input: `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    encoding: 'utf8', timeout: 10000 });
  const out = `${s.stdout}\n${s.stderr}`;
  assert.match(out, /alert|handshake failure|Cipher is \(NONE\)|errno|error/i, out);
  assert.doesNotMatch(out, /HTTP\/1\.1 200/, out);
  // The same with the right certificate answers, so the refusal is the CA's.
  const ok = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${stack.port}`, '-tls1_2', '-quiet',
    '-CAfile', join(stack.good, 'ca.pem'), '-cert', join(stack.good, 'client.pem'),
    '-key', join(stack.good, 'client.key')],
  { input: `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    encoding: 'utf8', timeout: 10000 });
  assert.match(ok.stdout, /HTTP\/1\.1 200/, `${ok.stdout}\n${ok.stderr}`);
  await eventually(() => requests() === before + 1);
  assert.equal(requests(), before + 1, 'only the good client reached HTTP');
});

test('the gateway says at start that it requires client certificates', () => {
  assert.ok(stack.gw.log().includes('client certificates from certs/ca.pem required'), stack.gw.log());
});
