// HTTP/2 to upstreams (providers' `http2:`), in clear text: `http2: on`
// reaches an h2c-only server (prior knowledge), streams are relayed event
// by event, and a provider pinned to HTTP/1.1 keeps speaking HTTP/1.1.
// Multiplexing over TLS (ALPN) is tested in upstream-tls.test.mjs. The upstream is a Node http2 server written here: it
// counts sessions and concurrent streams, which is what is asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import http from 'node:http';
import { startGateway, freePort, readSSE, OPENAI_KEY } from './lib/harness.mjs';

const GATEWAY = process.env.SLUICE_HTTP2_BIN;
const HOLD_MS = 300; // every answer waits this long, so requests overlap

function completion(model, text) {
  return {
    id: 'chatcmpl-h2', object: 'chat.completion', created: 1, model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  };
}

// One handler for both servers: the HTTP version it saw goes into the text.
function answer(req, res, seen) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    seen.requests.push({ version: req.httpVersion, auth: req.headers.authorization, path: req.url });
    seen.inflight++;
    seen.maxInflight = Math.max(seen.maxInflight, seen.inflight);
    const j = JSON.parse(body);
    setTimeout(() => {
      seen.inflight--;
      if (j.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const piece of ['one ', 'two ', 'three']) {
          res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: j.model,
            choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: j.model,
          choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
          usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`);
        res.end('data: [DONE]\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completion(j.model, `over HTTP/${req.httpVersion}`)));
      }
    }, HOLD_MS);
  });
}

const h2seen = { sessions: 0, requests: [], inflight: 0, maxInflight: 0 };
const h1seen = { sockets: 0, requests: [], inflight: 0, maxInflight: 0 };
let h2server, h1server, gateway;

before(async () => {
  h2server = http2.createServer();
  h2server.on('session', () => { h2seen.sessions++; });
  h2server.on('request', (req, res) => answer(req, res, h2seen));
  const h2port = await freePort();
  await new Promise((r) => h2server.listen(h2port, '127.0.0.1', r));
  h1server = http.createServer((req, res) => answer(req, res, h1seen));
  h1server.on('connection', () => { h1seen.sockets++; });
  const h1port = await freePort();
  await new Promise((r) => h1server.listen(h1port, '127.0.0.1', r));
  gateway = await startGateway({
    bin: GATEWAY,
    args: ['--workers', '1'],
    upstreams: { 18433: `http://127.0.0.1:${h2port}`, 18434: `http://127.0.0.1:${h1port}` },
  });
});

after(async () => {
  await gateway?.stop();
  h2server?.close();
  h1server?.close();
});

const chat = (model, extra = {}) => fetch(`${gateway.url}/v1/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
});

test('concurrent requests to an h2c upstream each speak HTTP/2 on a connection of their own', async () => {
  const N = 24;
  const rs = await Promise.all(Array.from({ length: N }, () => chat('via-h2')));
  const bodies = await Promise.all(rs.map((r) => r.json()));
  for (const [i, r] of rs.entries()) {
    assert.equal(r.status, 200, JSON.stringify(bodies[i]));
    assert.equal(bodies[i].choices[0].message.content, 'over HTTP/2.0');
  }
  assert.equal(h2seen.requests.length, N);
  for (const q of h2seen.requests) {
    assert.equal(q.version, '2.0');
    assert.equal(q.path, '/v1/chat/completions');
    assert.equal(q.auth, `Bearer ${OPENAI_KEY}`);
  }
  // In clear text sluice does not multiplex (Debian 12's libcurl breaks
  // the second stream on an h2c connection): a session per request, and
  // they were in flight together (the server held each for HOLD_MS).
  assert.equal(h2seen.sessions, N);
  assert.ok(h2seen.maxInflight > 1, `max concurrent streams ${h2seen.maxInflight}`);
});

test('a stream over HTTP/2 is relayed event by event', async () => {
  const before = h2seen.sessions;
  const r = await chat('via-h2', { stream: true });
  assert.equal(r.status, 200);
  const { events, ended } = await readSSE(r);
  assert.ok(ended);
  const text = events.filter((e) => e.data && e.data !== '[DONE]')
    .map((e) => JSON.parse(e.data).choices?.[0]?.delta?.content || '').join('');
  assert.equal(text, 'one two three');
  assert.equal(events.at(-1).data, '[DONE]');
  assert.equal(h2seen.sessions, before + 1);
  assert.equal(h2seen.requests.at(-1).version, '2.0');
});

test('a provider with http2: off speaks HTTP/1.1, a connection per request in flight', async () => {
  const N = 6;
  const rs = await Promise.all(Array.from({ length: N }, () => chat('via-h1')));
  const bodies = await Promise.all(rs.map((r) => r.json()));
  for (const b of bodies) assert.equal(b.choices[0].message.content, 'over HTTP/1.1');
  assert.ok(h1seen.requests.every((q) => q.version === '1.1'));
  // Without multiplexing, requests in flight together need a socket each.
  assert.ok(h1seen.maxInflight > 1, `max in flight ${h1seen.maxInflight}`);
  assert.ok(h1seen.sockets > 1, `sockets ${h1seen.sockets}`);
});
