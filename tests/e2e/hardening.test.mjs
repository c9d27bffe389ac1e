// Hostile input and robustness, over raw TCP sockets so every byte is the
// test's choice: framing the parser must refuse (each answered with its
// status and the connection closed, since nothing after a framing error can
// be trusted), limits and timeouts, pipelining, header hygiene towards the
// upstream, overload (connection and in-flight caps answered with a quick
// 503, resources back to their baseline afterwards) and graceful shutdown.
// The gateway is compiled from hardening.yaml (64 KiB bodies, 2 s header and
// body timeouts, 50 connections, 20 requests in flight) and runs with one
// worker, because those caps are enforced per worker.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  E2E_DIR, mockArgs, OPENAI_KEY, ANTHROPIC_KEY, CLIENT_KEY, MOCK_TEXT,
  startMock, startProcess, stopProcess, freePort, sleep, eventually,
} from './lib/harness.mjs';

const LIMITS = { maxBody: 64 * 1024, headerTimeoutMs: 2000, bodyTimeoutMs: 2000, maxConns: 50, maxInflight: 20 };

function gatewayBinary() {
  const p = process.env.SLUICE_HARDENING_BIN || resolve(E2E_DIR, '..', '..', 'build', 'tests', 'sluice-hardening');
  if (!existsSync(p)) throw new Error(`SLUICE_HARDENING_BIN: no binary at ${p} (build it, or set SLUICE_HARDENING_BIN)`);
  return p;
}

// ---- raw socket helpers ---------------------------------------------------

// Connects, writes each piece (gapMs apart), collects everything the server
// sends until it closes or timeoutMs passes. `closed` is true when the
// server ended the connection (FIN or RST) on its own; `closedMs` is when.
function exchange(port, pieces, { gapMs = 0, timeoutMs = 4000, onData } = {}) {
  return new Promise((done) => {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1');
    const bufs = [];
    const res = { closed: false, error: null, closedMs: null, sock };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      res.bytes = Buffer.concat(bufs);
      res.text = res.bytes.toString('latin1');
      res.ms = performance.now() - t0;
      done(res);
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => {
      bufs.push(d);
      if (onData) onData(Buffer.concat(bufs).toString('latin1'), sock);
    });
    sock.on('end', () => { res.closed = true; res.closedMs ??= performance.now() - t0; finish(); });
    sock.on('error', (e) => {
      res.error = e.code;
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') { res.closed = true; res.closedMs ??= performance.now() - t0; }
      finish();
    });
    sock.on('close', finish);
    sock.on('connect', async () => {
      const list = Array.isArray(pieces) ? pieces : [pieces];
      for (let i = 0; i < list.length && !finished && !sock.destroyed; i++) {
        if (i > 0 && gapMs) await sleep(gapMs);
        if (!finished && !sock.destroyed) sock.write(list[i]);
      }
    });
  });
}

// Splits a byte stream into HTTP/1.x responses (Content-Length, chunked or
// close-delimited bodies; 1xx interim responses have none).
function parseResponses(text) {
  const out = [];
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf('\r\n\r\n', pos);
    if (end < 0) { out.push({ partial: text.slice(pos) }); break; }
    const lines = text.slice(pos, end).split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3}) /.exec(lines[0]);
    assert.ok(m, `not a status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const r = { version: `1.${m[1]}`, status: Number(m[2]), headers, body: '', complete: true };
    pos = end + 4;
    if (r.status >= 100 && r.status < 200) { out.push(r); continue; }
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      r.body = text.slice(pos, pos + n);
      r.complete = r.body.length === n;
      pos += n;
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      r.complete = false;
      for (;;) {
        const le = text.indexOf('\r\n', pos);
        if (le < 0) break;
        const size = parseInt(text.slice(pos, le), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) { r.complete = text.startsWith('\r\n', le + 2); pos = le + 4; break; }
        r.body += text.slice(le + 2, le + 2 + size);
        pos = le + 2 + size + 2;
      }
    } else {
      r.body = text.slice(pos);
      pos = text.length;
    }
    out.push(r);
  }
  return out;
}

// The connection got exactly one response, with `status`, marked
// `Connection: close`, and the server then closed the connection.
function assertRefused(res, status, label = '') {
  const rs = parseResponses(res.text).filter((r) => !(r.status >= 100 && r.status < 200));
  assert.equal(rs.length, 1, `${label}: one response expected, got ${JSON.stringify(res.text.slice(0, 400))}`);
  assert.equal(rs[0].status, status, `${label}: ${JSON.stringify(res.text.slice(0, 400))}`);
  assert.ok(rs[0].complete, `${label}: the error body is complete`);
  assert.match(rs[0].headers.connection || '', /close/i, `${label}: the answer announces the close`);
  assert.ok(res.closed, `${label}: the server must close the connection after ${status}`);
  return rs[0];
}

const H = 'Host: sluice.test\r\n';
const json = (o) => JSON.stringify(o);
const chatBody = (content, extra = {}) => json({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
const demoBody = json({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] });
const post = (path, body, headers = '') =>
  `POST ${path} HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`;

// A request on a fresh connection that asks to close; returns the parsed response.
async function request(port, method, path, { headers = '', body = null, timeoutMs = 8000 } = {}) {
  const head = `${method} ${path} HTTP/1.1\r\n${H}Connection: close\r\n${headers}` +
    (body !== null ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '');
  const res = await exchange(port, [Buffer.from(`${head}\r\n${body ?? ''}`, 'utf8')], { timeoutMs });
  const rs = parseResponses(res.bytes.toString('utf8'));
  return { ...rs.at(-1), ms: res.ms, closed: res.closed };
}

async function assertServes(port) {
  const r = await request(port, 'POST', '/v1/chat/completions', { body: demoBody });
  assert.equal(r.status, 200, 'a normal request on a new connection is still served');
  assert.equal(JSON.parse(r.body).object, 'chat.completion');
}

// ---- processes -------------------------------------------------------------

async function startGateway({ drainMs } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-hard-'));
  const port = await freePort();
  const args = ['--listen', `127.0.0.1:${port}`, '--state', join(dir, 's.db'), '--workers', '1',
    ...mockArgs(gatewayBinary(), mock)];
  if (drainMs !== undefined) args.push('--drain-timeout', String(drainMs));
  const h = await startProcess('sluice-hardening', gatewayBinary(), args, {
    env: { ...process.env, SLUICE_E2E_OPENAI_KEY: OPENAI_KEY, SLUICE_E2E_ANTHROPIC_KEY: ANTHROPIC_KEY },
    pattern: /sluice listening on (\S+)/,
  });
  const ok = await eventually(async () => (await request(port, 'GET', '/healthz', { timeoutMs: 1000 })).status === 200, 5000);
  if (!ok) {
    h.proc.kill('SIGKILL');
    throw new Error(`gateway not healthy; stderr:\n${h.log()}`);
  }
  return {
    ...h, port, pid: h.proc.pid,
    stop: async () => {
      try { await stopProcess(h); } finally { rmSync(dir, { recursive: true, force: true }); }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

let mock;
let gw;
before(async () => {
  mock = await startMock();
  try {
    gw = await startGateway();
  } catch (e) {
    await mock.stop();
    throw e;
  }
});
after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

// ---- framing -----------------------------------------------------------------

const CHAT = 'POST /v1/chat/completions HTTP/1.1\r\n';
const CHUNKED = 'Transfer-Encoding: chunked\r\n';
const chunkedReq = (body) => `${CHAT}${H}${CHUNKED}\r\n${body}`;
const headerReq = (line) => `GET /healthz HTTP/1.1\r\n${H}${line}\r\n\r\n`;

// [name, bytes, status the parser's contract (runtime/http/http.h) gives]
const refused = [
  ['Content-Length with Transfer-Encoding', `${CHAT}${H}Content-Length: 5\r\n${CHUNKED}\r\n0\r\n\r\n`, 400],
  ['duplicate identical Content-Length', `${CHAT}${H}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}`, 400],
  ['conflicting Content-Length', `${CHAT}${H}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400],
  ['Content-Length list "2, 2"', `${CHAT}${H}Content-Length: 2, 2\r\n\r\n{}`, 400],
  ['empty Content-Length', `${CHAT}${H}Content-Length: \r\n\r\n`, 400],
  ['negative Content-Length', `${CHAT}${H}Content-Length: -1\r\n\r\n`, 400],
  ['non-numeric Content-Length', `${CHAT}${H}Content-Length: abc\r\n\r\n`, 400],
  ['signed Content-Length "+2"', `${CHAT}${H}Content-Length: +2\r\n\r\n{}`, 400],
  ['hex Content-Length "0x2"', `${CHAT}${H}Content-Length: 0x2\r\n\r\n{}`, 400],
  ['Content-Length beyond 2^64', `${CHAT}${H}Content-Length: 99999999999999999999999\r\n\r\n`, 400],
  ['Transfer-Encoding "chunked,"', `${CHAT}${H}Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding "gzip, chunked"', `${CHAT}${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding "chunked, chunked"', `${CHAT}${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding twice', `${CHAT}${H}${CHUNKED}${CHUNKED}\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding in HTTP/1.0', `POST /v1/chat/completions HTTP/1.0\r\n${CHUNKED}\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding "gzip" (understood, not implemented)', `${CHAT}${H}Transfer-Encoding: gzip\r\n\r\n`, 501],
  ['Transfer-Encoding "identity"', `${CHAT}${H}Transfer-Encoding: identity\r\n\r\n`, 501],
  ['chunk size not hex', chunkedReq('zz\r\n{}\r\n0\r\n\r\n'), 400],
  ['negative chunk size', chunkedReq('-2\r\n{}\r\n0\r\n\r\n'), 400],
  ['chunk size with 0x', chunkedReq('0x2\r\n{}\r\n0\r\n\r\n'), 400],
  ['chunk size of 17 digits', chunkedReq('00000000000000002\r\n{}\r\n0\r\n\r\n'), 400],
  ['chunk size over 2^62', chunkedReq('ffffffffffffffff\r\n{}\r\n0\r\n\r\n'), 400],
  ['chunk size with leading space', chunkedReq(' 2\r\n{}\r\n0\r\n\r\n'), 400],
  ['chunk size line ending in bare LF', chunkedReq('2\n{}\r\n0\r\n\r\n'), 400],
  ['chunk data not followed by CRLF', chunkedReq('2\r\n{}XX0\r\n\r\n'), 400],
  ['chunk extension beyond the 4 KiB line cap', chunkedReq(`2;ext=${'x'.repeat(5000)}\r\n{}\r\n0\r\n\r\n`), 400],
  ['CR inside a header name', headerReq('X-A\rB: 1'), 400],
  ['LF inside a header name', headerReq('X-A\nB: 1'), 400],
  ['NUL inside a header name', headerReq('X-A\0B: 1'), 400],
  ['CR inside a header value', headerReq('X-A: a\rb'), 400],
  ['LF inside a header value', headerReq('X-A: a\nX-Injected: 1'), 400],
  ['NUL inside a header value', headerReq('X-A: a\0b'), 400],
  ['control byte 0x01 in a header value', headerReq('X-A: a\x01b'), 400],
  ['DEL in a header value', headerReq('X-A: a\x7fb'), 400],
  ['whitespace before the colon', headerReq('X-A : 1'), 400],
  ['empty header name', headerReq(': 1'), 400],
  ['obs-fold with SP', headerReq('X-A: 1\r\n  continued'), 400],
  ['obs-fold with HTAB', headerReq('X-A: 1\r\n\tcontinued'), 400],
  ['bare LF line endings', 'GET /healthz HTTP/1.1\nHost: x\n\n', 400],
  ['missing Host in HTTP/1.1', 'GET /healthz HTTP/1.1\r\n\r\n', 400],
  ['two Host fields', `GET /healthz HTTP/1.1\r\n${H}${H}\r\n`, 400],
  ['HTTP/0.9 request line', 'GET /healthz\r\n\r\n', 400],
  ['lower-case version', `GET /healthz http/1.1\r\n${H}\r\n`, 400],
  ['HTTP/2.0 version', `GET /healthz HTTP/2.0\r\n${H}\r\n`, 505],
  ['header block over 16 KiB', `GET /healthz HTTP/1.1\r\n${H}X-Pad: ${'a'.repeat(9000)}\r\nX-Pad2: ${'b'.repeat(9000)}\r\n\r\n`, 431],
  ['101 header fields', `GET /healthz HTTP/1.1\r\n${H}${Array.from({ length: 100 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}\r\n`, 431],
  ['request line over 8 KiB', `GET /${'a'.repeat(9000)} HTTP/1.1\r\n${H}\r\n`, 414],
  ['Content-Length over max_body (head only)', `${CHAT}${H}Content-Length: ${LIMITS.maxBody + 1}\r\n\r\n`, 413],
  ['Content-Length over max_body, body sent', `${CHAT}${H}Content-Length: 70000\r\n\r\n${'a'.repeat(70000)}`, 413],
  ['chunked body over max_body', chunkedReq(`20000\r\n${'a'.repeat(0x20000)}\r\n0\r\n\r\n`), 413],
];

describe('framing the parser refuses: status, then close', () => {
  for (const [name, bytes, status] of refused) {
    it(`${name} -> ${status}`, async () => {
      const res = await exchange(gw.port, [Buffer.from(bytes, 'latin1')]);
      const r = assertRefused(res, status, name);
      assert.ok(JSON.parse(r.body).error, `${name}: a JSON error body`);
    });
  }

  it('Expect: 100-continue with a Content-Length over max_body -> 413, no 100 Continue', async () => {
    const res = await exchange(gw.port, `${CHAT}${H}Content-Length: 70000\r\nExpect: 100-continue\r\n\r\n`);
    assert.doesNotMatch(res.text, /100 Continue/);
    assertRefused(res, 413, 'expect');
  });

  it('a body of exactly max_body is accepted', async () => {
    const body = demoBody + ' '.repeat(LIMITS.maxBody - demoBody.length);
    const r = await request(gw.port, 'POST', '/v1/chat/completions', { body });
    assert.equal(r.status, 200);
  });

  it('exactly 100 header fields are accepted', async () => {
    const extra = Array.from({ length: 98 }, (_, i) => `X-H${i}: ${i}\r\n`).join(''); // + Host + Connection
    const r = await request(gw.port, 'GET', '/healthz', { headers: extra });
    assert.equal(r.status, 200);
  });

  // RFC 9112 7: transfer-coding names are case-insensitive and the field
  // value is trimmed of OWS, so these are plain `chunked` and must work.
  for (const te of ['Chunked', 'CHUNKED', ' chunked ']) {
    it(`Transfer-Encoding "${te}" is chunked (case-insensitive, OWS trimmed)`, async () => {
      const half = demoBody.length >> 1;
      const body = `${half.toString(16)}\r\n${demoBody.slice(0, half)}\r\n` +
        `${(demoBody.length - half).toString(16)};ext=1\r\n${demoBody.slice(half)}\r\n0\r\n\r\n`;
      const res = await exchange(gw.port, `${CHAT}${H}Connection: close\r\nTransfer-Encoding:${te}\r\n\r\n${body}`);
      const rs = parseResponses(res.text);
      assert.equal(rs.length, 1);
      assert.equal(rs[0].status, 200, res.text.slice(0, 300));
    });
  }

  it('HTTP/1.0 without keep-alive: answered, then closed', async () => {
    const res = await exchange(gw.port, 'GET /healthz HTTP/1.0\r\n\r\n');
    const rs = parseResponses(res.text);
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].version, '1.0');
    assert.equal(JSON.parse(rs[0].body).status, 'ok');
    // Closed by the gateway (exchange() gives up after 4 s, long before the
    // 75 s keep-alive timeout would close an idle HTTP/1.1 connection).
    assert.ok(res.closed, 'closed after the response');
  });

  it('HTTP/1.0 with Connection: keep-alive stays open for a second request', async () => {
    const one = 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';
    const res = await exchange(gw.port, [one, 'GET /nope HTTP/1.0\r\n\r\n'], { gapMs: 100 });
    const rs = parseResponses(res.text);
    assert.deepEqual(rs.map((r) => r.status), [200, 404]);
    assert.match(rs[0].headers.connection, /keep-alive/i);
    assert.ok(res.closed);
  });

  it('3 pipelined requests in one write: 3 responses, in order', async () => {
    const reqs = `GET /healthz HTTP/1.1\r\n${H}\r\n` +
      post('/v1/chat/completions', json({ model: 'demo-model', messages: [{ role: 'user', content: 'two' }] })) +
      `GET /nope HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    const res = await exchange(gw.port, reqs);
    const rs = parseResponses(res.text);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 404], res.text.slice(0, 500));
    assert.equal(JSON.parse(rs[0].body).status, 'ok');
    assert.equal(JSON.parse(rs[1].body).object, 'chat.completion');
    assert.match(JSON.parse(rs[2].body).error.message, /\/nope/);
    assert.ok(res.closed, 'closed after the request that asked for it');
  });

  it('300 pipelined requests in one write are all answered, in order', async () => {
    const n = 300;
    const reqs = Array.from({ length: n }, (_, i) =>
      `GET /n${i} HTTP/1.1\r\n${H}${i === n - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    const res = await exchange(gw.port, reqs, { timeoutMs: 8000 });
    const rs = parseResponses(res.text);
    assert.equal(rs.length, n);
    rs.forEach((r, i) => assert.match(JSON.parse(r.body).error.message, new RegExp(`/n${i}$`)));
    assert.ok(res.closed);
  });

  it('an error in a pipelined request still answers the ones before it', async () => {
    const reqs = `GET /healthz HTTP/1.1\r\n${H}\r\nGET /healthz HTTP/1.1\r\n${H}Content-Length: x\r\n\r\n` +
      `GET /healthz HTTP/1.1\r\n${H}\r\n`;
    const res = await exchange(gw.port, reqs);
    const rs = parseResponses(res.text);
    assert.deepEqual(rs.map((r) => r.status), [200, 400], 'nothing after the bad request is answered');
    assert.ok(res.closed);
  });

  it('after all that, a normal request on a new connection is served', () => assertServes(gw.port));
});

// ---- timeouts ----------------------------------------------------------------

describe('slow clients', () => {
  it('slowloris: a header byte every 500 ms is cut off at header_timeout with 408', async () => {
    const head = `GET /healthz HTTP/1.1\r\n${H}X-Slow: ${'s'.repeat(30)}`;
    const res = await exchange(gw.port, head.split(''), { gapMs: 500, timeoutMs: LIMITS.headerTimeoutMs + 3000 });
    assertRefused(res, 408, 'slowloris');
    assert.ok(res.closedMs >= LIMITS.headerTimeoutMs - 100 && res.closedMs < LIMITS.headerTimeoutMs + 1000,
      `cut off after ${res.closedMs.toFixed(0)} ms (header_timeout ${LIMITS.headerTimeoutMs})`);
  });

  it('a body that stops arriving is cut off at body_timeout with 408', async () => {
    const head = `${CHAT}${H}Content-Type: application/json\r\nContent-Length: ${demoBody.length}\r\n\r\n`;
    const res = await exchange(gw.port, [head + demoBody.slice(0, 10)], { timeoutMs: LIMITS.bodyTimeoutMs + 3000 });
    assertRefused(res, 408, 'stalled body');
    assert.ok(res.closedMs >= LIMITS.bodyTimeoutMs - 100 && res.closedMs < LIMITS.bodyTimeoutMs + 1000,
      `cut off after ${res.closedMs.toFixed(0)} ms`);
  });

  it('a stalled chunked body is cut off at body_timeout with 408', async () => {
    const res = await exchange(gw.port, [chunkedReq('5\r\n{"mod')], { timeoutMs: LIMITS.bodyTimeoutMs + 3000 });
    assertRefused(res, 408, 'stalled chunked body');
  });

  // Besides the idle timeout, a body must arrive at a minimum average rate
  // (32 KiB/s once body_timeout has passed), so a dribbled body cannot hold
  // a connection for minutes.
  it('slow body: a byte every 500 ms is cut off near body_timeout', async () => {
    const head = `${CHAT}${H}Content-Type: application/json\r\nContent-Length: ${demoBody.length}\r\n\r\n`;
    const pieces = [head, ...demoBody.slice(0, 8).split('')];
    const res = await exchange(gw.port, pieces, { gapMs: 500, timeoutMs: LIMITS.bodyTimeoutMs + 1500 });
    assertRefused(res, 408, 'dribbled body');
  });

  it('the gateway still serves a normal request afterwards', () => assertServes(gw.port));
});

// ---- what reaches the upstream ----------------------------------------------

describe('header hygiene towards the upstream', () => {
  const anthropicBody = json({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  // Every header a client can send that must stay at the gateway.
  const hostile =
    `Authorization: Bearer ${CLIENT_KEY}\r\nx-api-key: ${CLIENT_KEY}\r\nx-goog-api-key: ${CLIENT_KEY}\r\n` +
    'Connection: close, X-Hop\r\nKeep-Alive: timeout=5, max=100\r\nTE: trailers\r\nUpgrade: h2c\r\n' +
    'Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\nProxy-Connection: keep-alive\r\nTrailer: X-T\r\n' +
    'X-Hop: 1\r\nX-Injected: yes\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nCookie: s=1\r\n' +
    'Via: 1.1 evil\r\nOrigin: http://evil.test\r\nReferer: http://evil.test/\r\n';
  // What the gateway itself (and libcurl) put on an upstream request.
  const allowed = {
    openai: ['host', 'accept', 'content-type', 'content-length', 'user-agent', 'authorization', 'x-request-id'],
    anthropic: ['host', 'accept', 'content-type', 'content-length', 'user-agent', 'x-api-key',
      'anthropic-version', 'anthropic-beta', 'x-request-id'],
  };

  async function onlyCall() {
    const calls = await mock.calls();
    assert.equal(calls.length, 1, `upstream calls: ${JSON.stringify(calls.map((c) => c.path))}`);
    return calls[0];
  }

  it('anthropic-beta with weird but legal bytes is forwarded verbatim; nothing else leaks', async () => {
    await mock.reset();
    // VCHARs, inner HTAB and spaces, quotes, backslash, and UTF-8 (obs-text).
    const beta = 'tools-2024-04-04,  x\t"q\\"";v=1 ~!#$%&\'*+^`|(){}[]<>?/=@: caf\u00e9 \u2603';
    const res = await exchange(gw.port, [Buffer.from(post('/v1/messages', anthropicBody,
      `anthropic-version: 2023-06-01\r\nanthropic-beta: ${beta}\r\n${hostile}`), 'utf8')]);
    const rs = parseResponses(res.bytes.toString('utf8'));
    assert.equal(rs[0].status, 200, res.text.slice(0, 300));
    const call = await onlyCall();
    assert.equal(call.headers['anthropic-beta'], beta, 'forwarded byte for byte');
    assert.equal(call.headers['anthropic-version'], '2023-06-01');
    assert.equal(call.headers['x-api-key'], ANTHROPIC_KEY, 'the provider key, not the client one');
    assert.deepEqual(Object.keys(call.headers).filter((k) => !allowed.anthropic.includes(k)), [],
      `unexpected upstream headers: ${JSON.stringify(call.headers)}`);
    assert.ok(!JSON.stringify(call.headers).includes(CLIENT_KEY));
  });

  it('OpenAI route: hop-by-hop headers and the client key never reach the upstream', async () => {
    await mock.reset();
    const res = await exchange(gw.port, post('/v1/chat/completions', chatBody('hi'), hostile));
    const rs = parseResponses(res.text);
    assert.equal(rs[0].status, 200, res.text.slice(0, 300));
    const call = await onlyCall();
    assert.equal(call.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.deepEqual(Object.keys(call.headers).filter((k) => !allowed.openai.includes(k)), [],
      `unexpected upstream headers: ${JSON.stringify(call.headers)}`);
    assert.ok(!JSON.stringify(call.headers).includes(CLIENT_KEY));
  });

  it('a CR/LF smuggling attempt in anthropic-beta is refused before any upstream call', async () => {
    await mock.reset();
    for (const sep of ['\r', '\n', '\0']) {
      const res = await exchange(gw.port, post('/v1/messages', anthropicBody,
        `anthropic-version: 2023-06-01\r\nanthropic-beta: x${sep}X-Injected: 1\r\n`));
      assertRefused(res, 400, `separator ${JSON.stringify(sep)}`);
    }
    assert.equal((await mock.calls()).length, 0, 'nothing went upstream');
  });

  it('a CRLF-looking model name stays inside the JSON body', async () => {
    await mock.reset();
    const body = json({ model: 'claude-x\r\nX-Injected: 1', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const res = await exchange(gw.port, post('/v1/messages', body, 'Connection: close\r\nanthropic-version: 2023-06-01\r\n'));
    assert.ok(res.closed);
    for (const call of await mock.calls()) {
      assert.equal(call.headers['x-injected'], undefined);
      assert.deepEqual(Object.keys(call.headers).filter((k) => !allowed.anthropic.includes(k)), []);
    }
  });
});

// ---- overload ------------------------------------------------------------------

describe('overload', () => {
  const slow = (ms, model = 'gpt-4o-mini') => chatBody(`wait [[mock delay_ms=${ms}]]`, { model });
  let base;

  // One burst fills libcurl's upstream connection cache (kept on purpose
  // for reuse), so the baseline is taken after a warm-up of the same shape.
  async function inflightBurst(delayMs) {
    let heldAnswered = 0;
    const held = Array.from({ length: LIMITS.maxInflight }, () =>
      request(gw.port, 'POST', '/v1/chat/completions', { body: slow(delayMs) }).then((r) => { heldAnswered++; return r; }));
    await eventually(async () => (await mock.calls()).filter((c) => !c.completed).length >= LIMITS.maxInflight, 3000, 20);
    const extra = await Promise.all([
      request(gw.port, 'POST', '/v1/chat/completions', { body: slow(delayMs) }),
      request(gw.port, 'POST', '/v1/messages', {
        headers: 'anthropic-version: 2023-06-01\r\n',
        body: json({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      }),
    ]);
    const answeredBeforeExtra = heldAnswered;
    return { held: await Promise.all(held), extra, answeredBeforeExtra };
  }

  before(async () => {
    await mock.reset();
    await inflightBurst(1000);
    await sleep(300);
    base = { fds: fdCount(gw.pid), rss: rssKiB(gw.pid) };
  });

  it(`more than max_connections (${LIMITS.maxConns}) sockets: the extra ones get a quick 503 and close`, async () => {
    const socks = [];
    const opened = (extra) => new Promise((res) => {
      const s = connect(gw.port, '127.0.0.1');
      const rec = { s, text: '', closed: false, t0: performance.now(), extra };
      s.on('data', (d) => { rec.text += d.toString('latin1'); });
      s.on('error', () => {});
      s.on('close', () => { rec.closed = true; rec.closedMs = performance.now() - rec.t0; });
      s.on('connect', () => res(rec));
      socks.push(rec);
    });
    try {
      for (let i = 0; i < LIMITS.maxConns; i++) await opened(false);
      await sleep(100);
      for (let i = 0; i < 5; i++) await opened(true);
      // Quick means without waiting for a request: the extra connections
      // never send a byte, and they are answered and closed before the
      // header timeout closes any of the first ones (which send nothing
      // either). Event order, not a stopwatch.
      await eventually(() => socks.every((r) => !r.extra || r.closed) || socks.some((r) => !r.extra && r.closed),
        4 * LIMITS.headerTimeoutMs, 10);
      const early = socks.filter((r) => !r.extra && r.closed);
      assert.equal(early.length, 0, `${early.length} of the first ${LIMITS.maxConns} connections were closed first (connection count leak, or refusals waiting for the header timeout?)`);
      for (const r of socks.filter((x) => x.extra)) {
        assert.ok(r.closed, 'the extra connection is closed');
        const [resp] = parseResponses(r.text);
        assert.equal(resp.status, 503);
        assert.equal(Buffer.byteLength(resp.body, 'latin1'), Number(resp.headers['content-length']),
          `the 503 body must be as long as its Content-Length says: ${JSON.stringify(r.text)}`);
        assert.equal(resp.headers['retry-after'], '1');
        assert.equal(JSON.parse(resp.body).error.type, 'overloaded_error');
      }
    } finally {
      for (const r of socks) r.s.destroy();
    }
    await sleep(100);
    await assertServes(gw.port);
  });

  it(`more than max_inflight (${LIMITS.maxInflight}) slow upstream requests: the extra ones get a quick 503 in the protocol's shape`, async () => {
    await mock.reset();
    const { held, extra, answeredBeforeExtra } = await inflightBurst(2000);
    const [oai, ant] = extra;
    // Quick means without waiting for a slot: both refusals arrive while
    // every held request is still waiting on the mock's 2 s delay.
    assert.equal(answeredBeforeExtra, 0, 'a held request was answered before the refusals: they waited for a slot');
    assert.equal(oai.status, 503, oai.body);
    assert.equal(JSON.parse(oai.body).error.code, 'overloaded');
    assert.equal(oai.headers['retry-after'], '1');
    assert.equal(ant.status, 503, ant.body);
    const aj = JSON.parse(ant.body);
    assert.equal(aj.type, 'error');
    assert.equal(aj.error.type, 'overloaded_error');
    assert.deepEqual(held.map((r) => r.status), Array(LIMITS.maxInflight).fill(200));
    for (const r of held) assert.equal(JSON.parse(r.body).choices[0].message.content, MOCK_TEXT);
  });

  it('after the bursts, open fds and RSS return to the baseline', async () => {
    // A burst of its own, so the check does not rest on the tests above.
    await mock.reset();
    const { held, extra } = await inflightBurst(500);
    assert.deepEqual([...held, ...extra].map((r) => r.status),
      [...Array(LIMITS.maxInflight).fill(200), 503, 503]);
    await sleep(300);
    const fds = await eventually(() => { const n = fdCount(gw.pid); return n <= base.fds + 2 ? n : 0; }, 2000);
    assert.ok(fds, `fds ${fdCount(gw.pid)} vs baseline ${base.fds}`);
    const rss = rssKiB(gw.pid);
    assert.ok(rss <= base.rss + 8 * 1024, `RSS ${rss} KiB vs baseline ${base.rss} KiB`);
    await assertServes(gw.port);
  });
});

// ---- graceful shutdown ----------------------------------------------------------

function streamReq(port, content) {
  const body = chatBody(content, { stream: true });
  return exchange(port, post('/v1/chat/completions', body), { timeoutMs: 10000 });
}

function connectOutcome(port) {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    s.on('connect', () => s.write(`GET /healthz HTTP/1.1\r\n${H}\r\n`));
    s.on('data', (d) => { text += d; });
    s.on('error', (e) => done({ error: e.code, text }));
    s.on('close', () => done({ closed: true, text }));
    setTimeout(() => { s.destroy(); done({ timeout: true, text }); }, 2000);
  });
}

describe('graceful shutdown', () => {
  it('SIGTERM: new connections refused, in-flight request and stream complete, exit 0', async () => {
    const g = await startGateway({ drainMs: 5000 });
    try {
      await mock.reset();
      const slowReq = exchange(g.port, post('/v1/chat/completions', chatBody('slow [[mock delay_ms=1500]]')), { timeoutMs: 10000 });
      let firstChunk;
      const seen = new Promise((r) => { firstChunk = r; });
      const stream = exchange(g.port, post('/v1/chat/completions',
        chatBody('count [[mock chunks=5 interval_ms=300]]', { stream: true })),
      { timeoutMs: 10000, onData: (t) => { if (t.includes('data: ')) firstChunk(); } });
      await seen;
      const t0 = performance.now();
      g.proc.kill('SIGTERM');
      await sleep(150);
      const late = await connectOutcome(g.port);
      assert.ok(late.error === 'ECONNREFUSED' || (late.closed && !/HTTP\/1\.1 200/.test(late.text)),
        `a new connection after SIGTERM: ${JSON.stringify(late)}`);

      const [a, b] = await Promise.all([slowReq, stream]);
      const ra = parseResponses(a.text);
      assert.equal(ra.length, 1);
      assert.equal(ra[0].status, 200);
      assert.equal(JSON.parse(ra[0].body).choices[0].message.content, MOCK_TEXT);
      assert.match(ra[0].headers.connection || '', /close/i, 'answered while draining: Connection: close');
      assert.ok(a.closed);

      const rb = parseResponses(b.text);
      assert.equal(rb.length, 1);
      assert.equal(rb[0].status, 200);
      assert.ok(rb[0].complete, 'the stream ends with the last chunk, not a cut');
      const events = rb[0].body.split('\n\n').filter((e) => e.startsWith('data: '));
      assert.equal(events.at(-1), 'data: [DONE]');
      const pieces = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)))
        .map((j) => j.choices?.[0]?.delta?.content).filter(Boolean);
      assert.equal(pieces.length, 5, `five chunks streamed: ${JSON.stringify(pieces)}`);
      assert.equal(pieces.join(''), MOCK_TEXT);
      assert.ok(b.closed);

      const exit = await g.exited;
      const took = performance.now() - t0;
      assert.deepEqual(exit, { code: 0, signal: null }, g.log());
      // The stream's head went out before SIGTERM without Connection: close,
      // so its client may send another request on that connection: the
      // drain keeps it open for that (answered with close) until the
      // deadline (5000 ms) rather than closing it under the client. The
      // upper bound only tells a deadline from a hang, generously.
      assert.ok(took < 2 * 5000, `exited ${took.toFixed(0)} ms after SIGTERM (deadline 5000 ms)`);
      const calls = await mock.calls();
      assert.ok(calls.every((c) => c.completed && !c.closed_early), JSON.stringify(calls));
    } finally {
      if (g.proc.exitCode === null) g.proc.kill('SIGKILL');
      g.cleanup();
    }
  });

  it('a stream stuck upstream does not hold the exit past --drain-timeout', async () => {
    const g = await startGateway({ drainMs: 1000 });
    try {
      await mock.reset();
      const stuck = streamReq(g.port, 'stall [[mock fail=stall]]');
      assert.ok(await eventually(async () => (await mock.calls()).length === 1, 3000, 20), 'the upstream call started');
      await sleep(100);
      const t0 = performance.now();
      g.proc.kill('SIGTERM');
      const exit = await g.exited;
      const took = performance.now() - t0;
      assert.deepEqual(exit, { code: 0, signal: null }, g.log());
      // Not before the deadline (t0 precedes the signal, so this cannot
      // flake); after it, the exit while the upstream is still stalled
      // (it never ends by itself) is what shows the deadline enforced. The
      // upper bound only tells that from a hang.
      assert.ok(took >= 900, `exited ${took.toFixed(0)} ms after SIGTERM (deadline 1000 ms)`);
      assert.ok(took < 10 * 1000, `exited ${took.toFixed(0)} ms after SIGTERM: a hang, not the deadline`);
      assert.equal((await mock.calls())[0].completed, false, 'the upstream was still stalled at exit');
      const r = await stuck;
      assert.ok(r.closed, 'the stuck client is disconnected');
      const rs = parseResponses(r.text);
      assert.ok(rs.length === 0 || rs[0].partial !== undefined || !rs[0].complete || rs[0].status >= 500,
        `the client must not see a clean end: ${JSON.stringify(r.text.slice(0, 300))}`);
      assert.ok(await eventually(async () => (await mock.calls())[0]?.closed_early === true, 2000),
        'the upstream transfer was dropped');
    } finally {
      if (g.proc.exitCode === null) g.proc.kill('SIGKILL');
      g.cleanup();
    }
  });
});
