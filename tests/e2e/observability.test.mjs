// Request ids and the JSON access log end to end, against a gateway
// compiled from observability.yaml in front of the mock upstream: a
// client's x-request-id comes back and reaches the upstream, a bad one is
// replaced, every answer (errors too) carries one; with --log-format json
// --access-log FILE each request is one JSON object whose fields match
// the scripted request; after the file is renamed, SIGHUP makes sluice
// write to a new file at the old path; spans reach a small OTLP/HTTP
// collector written here with the names, parent/child links and GenAI
// attributes of a scripted request, and the traceparent each try sent the
// mock upstream names that try's client span. Every wait is bounded.
//
// The raw keys below are test fixtures; observability.yaml holds their hashes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { E2E_DIR, eventually, readSSE, startGateway, startMock } from './lib/harness.mjs';

const BIN = process.env.SLUICE_OBS_BIN || resolve(E2E_DIR, '..', '..', 'build', 'tests', 'sluice-observability');
const ALICE = 'sk-sluice-test-m1-D8TGfsFAzHMU50jd-u5h68SPMy7zwFGEAkJy-XOIVtk';
const ADMIN = 'sk-sluice-test-m4-lxJwsdmXB8rPDwahQucg2epixKUP_e3btJzL3RV-3vI';
const HEX32 = /^[0-9a-f]{32}$/;

let mock;
let gw;
let dir;
let logPath;
let collector;
const spans = []; // every span received, flattened
const posts = []; // content types of the POSTs

// OTLP/HTTP JSON collector: POST /v1/traces with an ExportTraceServiceRequest.
function startCollector() {
  return new Promise((res) => {
    const srv = createServer((req, rsp) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          rsp.writeHead(404).end();
          return;
        }
        posts.push(req.headers['content-type']);
        const j = JSON.parse(body);
        for (const rs of j.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
          for (const ss of rs.scopeSpans) for (const sp of ss.spans) spans.push({ ...sp, service });
        }
        rsp.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    srv.listen(0, '127.0.0.1', () => res(srv));
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-obs-'));
  logPath = join(dir, 'access.log');
  collector = await startCollector();
  mock = await startMock();
  try {
    gw = await startGateway({ bin: BIN, mock, args: ['--workers', '2', '--log-format', 'json', '--access-log', logPath,
      '--otlp', `http://127.0.0.1:${collector.address().port}`] });
  } catch (e) {
    await mock.stop();
    throw e;
  }
});

after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  collector?.close();
  rmSync(dir, { recursive: true, force: true });
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

async function chat(model, { stream = false, headers = {}, key = ALICE } = {}) {
  const body = { model, messages: [{ role: 'user', content: 'hi' }] };
  if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  if (stream) await readSSE(r);
  else await r.arrayBuffer();
  return r;
}

// The access log's objects so far, by request id.
function logged(path = logPath) {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const byId = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const j = JSON.parse(line); // every line parses
    byId.set(j.request_id, j);
  }
  return byId;
}

async function upstreamHeaders(id) {
  const calls = await mock.calls();
  return calls.filter((c) => c.headers['x-request-id'] === id);
}

describe('request ids', () => {
  it('a sane client id comes back and reaches the upstream', async () => {
    const r = await chat('ok', { headers: { 'x-request-id': 'client-id-1' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-request-id'), 'client-id-1');
    assert.equal((await upstreamHeaders('client-id-1')).length, 1);
  });

  it('a missing, overlong or odd id is replaced by a random one', async () => {
    for (const sent of [undefined, 'x'.repeat(65), 'a b', 'a"b', 'café']) {
      const r = await chat('ok', { headers: sent === undefined ? {} : { 'x-request-id': sent } });
      assert.equal(r.status, 200);
      const id = r.headers.get('x-request-id');
      assert.match(id, HEX32, `for ${JSON.stringify(sent)}`);
      assert.equal((await upstreamHeaders(id)).length, 1);
    }
  });

  it('errors carry one too: sluice-made, refused and parse errors', async () => {
    const unknown = await chat('no-such-model', { headers: { 'x-request-id': 'err-404' } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get('x-request-id'), 'err-404');
    const badKey = await chat('ok', { key: 'wrong', headers: { 'x-request-id': 'err-401' } });
    assert.equal(badKey.status, 401);
    assert.equal(badKey.headers.get('x-request-id'), 'err-401');
    const health = await fetch(`${gw.url}/healthz`);
    await health.arrayBuffer();
    assert.match(health.headers.get('x-request-id'), HEX32);
    const notFound = await fetch(`${gw.url}/nowhere`);
    await notFound.arrayBuffer();
    assert.match(notFound.headers.get('x-request-id'), HEX32);
  });
});

describe('JSON access log', () => {
  it('one object per request with the scripted fields', async () => {
    await chat('ok', { headers: { 'x-request-id': 'log-plain' } });
    await chat('ok', { stream: true, headers: { 'x-request-id': 'log-stream' } });
    await chat('retry-x [[mock status=503]]', { headers: { 'x-request-id': 'log-retry' } });
    await chat('nope\n{"forged":1}\u0085', { headers: { 'x-request-id': 'log-404' } });
    await eventually(() => ['log-plain', 'log-stream', 'log-retry', 'log-404'].every((id) => logged().has(id)), 3000);
    const log = logged();

    const p = log.get('log-plain');
    assert.match(p.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(p.key, 'alice');
    assert.equal(p.team, 'obs-team');
    assert.equal(p.surface, 'openai');
    assert.equal(p.model, 'ok');
    assert.equal(p.entry, 'ok');
    assert.equal(p.provider, 'up-openai-b');
    assert.equal(p.upstream_model, 'ok-model');
    assert.equal(p.attempts, 1);
    assert.equal(p.status, 200);
    assert.equal(p.stream, false);
    const call = (await upstreamHeaders('log-plain'))[0];
    assert.equal(p.tokens_in, call.usage.prompt_tokens);
    assert.equal(p.tokens_out, call.usage.completion_tokens);
    assert.equal(p.tokens_cache_read, 0);
    // 1 USD and 2 USD per million tokens.
    assert.equal(Math.round(p.cost_usd * 1e6), p.tokens_in * 1 + p.tokens_out * 2);
    for (const f of ['duration_ms', 'overhead_ms', 'upstream_ms']) assert.equal(typeof p[f], 'number', f);
    assert.ok(p.overhead_ms >= 0 && p.upstream_ms > 0 && p.overhead_ms + p.upstream_ms <= p.duration_ms + 0.01);
    assert.equal(p.ttft_ms, undefined);
    assert.equal(p.error_type, undefined);

    const s = log.get('log-stream');
    assert.equal(s.stream, true);
    assert.equal(typeof s.ttft_ms, 'number');
    assert.ok(s.tokens_out > 0);

    const r = log.get('log-retry');
    assert.equal(r.attempts, 2);
    assert.equal(r.entry, 'retry-*');
    assert.equal(r.status, 200);

    const e = log.get('log-404');
    assert.equal(e.status, 404);
    assert.equal(e.error_type, '404');
    assert.equal(e.model, 'nope\n{"forged":1}\u0085', 'escaped and read back exactly');
    assert.equal(e.entry, undefined);
    const raw = readFileSync(logPath, 'utf8');
    assert.ok(!raw.includes(ALICE), 'never a key');
    assert.ok(!raw.includes('"content"') && !raw.includes('"hi"'), 'never a prompt');
  });

  it('SIGHUP reopens the file after logrotate renamed it', async () => {
    await chat('ok', { headers: { 'x-request-id': 'before-rotate' } });
    await eventually(() => logged().has('before-rotate'), 3000);
    const rotated = `${logPath}.1`;
    renameSync(logPath, rotated);
    await chat('ok', { headers: { 'x-request-id': 'during-rotate' } });
    await eventually(() => logged(rotated).has('during-rotate'), 3000);
    gw.proc.kill('SIGHUP');
    await eventually(() => existsSync(logPath), 3000);
    await chat('ok', { headers: { 'x-request-id': 'after-rotate' } });
    await eventually(() => logged().has('after-rotate'), 3000);
    assert.ok(!logged(rotated).has('after-rotate'));
    assert.equal(gw.proc.exitCode, null, 'SIGHUP did not stop sluice');
  });
});

describe('OTLP traces', () => {
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const CLIENT_SPAN = '00f067aa0ba902b7';
  const attrs = (sp) => Object.fromEntries(sp.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.boolValue ?? Number(a.value.intValue)]));
  const byRequest = (id) => spans.filter((sp) => attrs(sp)['sluice.request_id'] === id);

  it('a server span per request, a client span per try, the client trace continued', async () => {
    const r = await chat('retry-x [[mock status=503]]', {
      headers: { 'x-request-id': 'trace-retry', traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
    });
    assert.equal(r.status, 200);
    await eventually(() => byRequest('trace-retry').length === 3, 5000);
    const mine = byRequest('trace-retry');
    const server = mine.find((sp) => sp.kind === 2);
    const clients = mine.filter((sp) => sp.kind === 3).sort((a, b) => Number(BigInt(a.startTimeUnixNano) - BigInt(b.startTimeUnixNano)));
    assert.ok(server, 'a server span');
    assert.equal(clients.length, 2, 'one client span per try');
    assert.equal(server.service, 'sluice-e2e');
    assert.ok(posts.every((c) => c === 'application/json'));

    for (const sp of mine) assert.equal(sp.traceId, TRACE, 'the client trace continues');
    assert.equal(server.parentSpanId, CLIENT_SPAN, 'the server span is a child of the client span');
    for (const c of clients) assert.equal(c.parentSpanId, server.spanId, 'tries are children of the server span');
    assert.notEqual(clients[0].spanId, clients[1].spanId);
    assert.ok(BigInt(server.startTimeUnixNano) <= BigInt(clients[0].startTimeUnixNano));
    assert.ok(BigInt(clients[1].endTimeUnixNano) <= BigInt(server.endTimeUnixNano));

    assert.equal(server.name, 'chat retry-x [[mock status=503]]');
    const sa = attrs(server);
    assert.equal(sa['gen_ai.operation.name'], 'chat');
    assert.equal(sa['gen_ai.request.model'], 'retry-x [[mock status=503]]');
    assert.equal(sa['gen_ai.provider.name'], 'up-openai-b');
    assert.equal(sa['gen_ai.response.model'], 'ok-model');
    assert.equal(sa['gen_ai.request.stream'], false);
    assert.equal(sa['error.type'], undefined);
    assert.equal(server.status?.code ?? 0, 0);

    const [failed, ok] = clients.map(attrs);
    assert.equal(clients[0].name, 'chat retry-x [[mock status=503]]');
    assert.equal(failed['gen_ai.provider.name'], 'up-openai');
    assert.equal(failed['error.type'], '503');
    assert.equal(failed['http.response.status_code'], 503);
    assert.equal(failed['server.address'], '127.0.0.1');
    assert.equal(clients[0].status.code, 2);
    assert.equal(clients[1].name, 'chat ok-model');
    assert.equal(ok['gen_ai.provider.name'], 'up-openai-b');
    assert.equal(ok['gen_ai.request.model'], 'ok-model');
    assert.equal(ok['gen_ai.response.model'], 'ok-model');
    assert.equal(ok['error.type'], undefined);

    // Usage on the successful try and the request, as the upstream reported it.
    const calls = await upstreamHeaders('trace-retry');
    assert.equal(calls.length, 2);
    const usage = calls.find((c) => c.status === 200).usage;
    for (const a of [sa, ok]) {
      assert.equal(a['gen_ai.usage.input_tokens'], usage.prompt_tokens);
      assert.equal(a['gen_ai.usage.output_tokens'], usage.completion_tokens);
      assert.equal(a['gen_ai.usage.cache_read.input_tokens'], 0);
    }
    // Each try told the upstream its own client span as the parent.
    const sent = calls.sort((a, b) => a.seq - b.seq).map((c) => c.headers.traceparent);
    assert.deepEqual(sent, clients.map((c) => `00-${TRACE}-${c.spanId}-01`));
  });

  it('without a (valid) traceparent a new trace starts; streams are marked', async () => {
    await chat('ok', { stream: true, headers: { 'x-request-id': 'trace-new', traceparent: '00-zz-bad-01' } });
    await eventually(() => byRequest('trace-new').length === 2, 5000);
    const [server] = byRequest('trace-new').filter((sp) => sp.kind === 2);
    assert.match(server.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(server.traceId, TRACE);
    assert.equal(server.parentSpanId ?? '', '');
    assert.equal(attrs(server)['gen_ai.request.stream'], true);
    const call = (await upstreamHeaders('trace-new'))[0];
    const client = byRequest('trace-new').find((sp) => sp.kind === 3);
    assert.equal(call.headers.traceparent, `00-${server.traceId}-${client.spanId}-01`);
  });

  it('no span was dropped', async () => {
    const r = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(r.status, 200);
    assert.match(await r.text(), /^sluice_trace_spans_dropped_total 0$/m);
  });
});
