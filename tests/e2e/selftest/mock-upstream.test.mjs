// The mock upstream's own test (ctest mock_upstream_selftest): the official
// SDKs talk to it directly, so the shapes it produces are the ones the real
// SDKs accept; raw HTTP checks the directives, the control endpoints and
// the HTTP/1.1 details (keep-alive, pipelining, chunked request bodies) a
// gateway relies on. It uses a free port, not the e2e port, so it can run
// beside anything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import {
  startMock, postJSON, readSSE, eventually, openaiHeaders, anthropicHeaders,
  CLIENT_KEY, MOCK_TEXT,
} from '../lib/harness.mjs';
import { openaiCases, anthropicCases, openaiClient, anthropicClient } from '../lib/sdk-cases.mjs';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock?.stop(); });

openaiCases({ label: 'mock-upstream', getBaseURL: () => `${mock.url}/v1`, model: 'gpt-4o-mini', exact: true });
anthropicCases({ label: 'mock-upstream', getBaseURL: () => mock.url, model: 'claude-haiku-4-5', exact: true });

const chat = (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
const msg = (content, extra = {}) => ({
  model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content }], ...extra,
});

describe('other endpoints through the SDKs', () => {
  it('embeddings (the SDK asks for base64 floats)', async () => {
    const r = await openaiClient(`${mock.url}/v1`).embeddings.create({
      model: 'text-embedding-3-small', input: ['one', 'two'], dimensions: 8,
    });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[1].index, 1);
    assert.equal(r.data[0].embedding.length, 8);
    const norm = Math.hypot(...r.data[0].embedding);
    assert.ok(Math.abs(norm - 1) < 1e-3, `unit vector, norm ${norm}`);
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    assert.ok(r.usage.prompt_tokens > 0);
    const f = await postJSON(`${mock.url}/v1/embeddings`, { model: 'm', input: 'one', dimensions: 8 },
      openaiHeaders());
    assert.equal(f.json.data[0].embedding.length, 8);
    for (const [a, b] of f.json.data[0].embedding.map((x, i) => [x, r.data[0].embedding[i]])) {
      assert.ok(Math.abs(a - b) < 1e-6, 'same input, same vector, whatever the encoding');
    }
  });

  it('models list in both shapes', async () => {
    const oa = [];
    for await (const m of openaiClient(`${mock.url}/v1`).models.list()) oa.push(m.id);
    assert.ok(oa.includes('gpt-4o-mini'));
    const an = [];
    for await (const m of anthropicClient(mock.url).models.list()) an.push(m.id);
    assert.ok(an.includes('claude-sonnet-4-5'));
  });

  it('responses: non-stream, stream (the SDK\'s event accumulation), a function call and its output', async () => {
    const c = openaiClient(`${mock.url}/v1`);
    const r = await c.responses.create({ model: 'gpt-5', input: 'Hi.', instructions: 'Be brief.', store: false });
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, MOCK_TEXT);
    assert.equal(r.instructions, 'Be brief.');
    assert.equal(r.store, false);
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    const stream = c.responses.stream({ model: 'gpt-5', input: 'Hi. [[mock chunks=4]]' });
    const seqs = [];
    let deltas = 0;
    for await (const e of stream) {
      seqs.push(e.sequence_number);
      if (e.type === 'response.output_text.delta') deltas++;
    }
    const done = await stream.finalResponse();
    assert.equal(done.output_text, MOCK_TEXT);
    assert.equal(deltas, 4);
    assert.deepEqual(seqs, seqs.map((_, i) => i));
    const tools = [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } }];
    const call = (await c.responses.create({ model: 'gpt-5', input: 'Go.', tools })).output[0];
    assert.equal(call.type, 'function_call');
    assert.deepEqual(JSON.parse(call.arguments), { a: 'mock-a' });
    const back = await c.responses.create({
      model: 'gpt-5', tools,
      input: [{ role: 'user', content: 'Go.' }, call, { type: 'function_call_output', call_id: call.call_id, output: 'ok!' }],
    });
    assert.equal(back.output_text, 'The tool returned: ok!');
  });

  it('count_tokens', async () => {
    const r = await anthropicClient(mock.url).messages.countTokens({
      model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hello there' }],
    });
    assert.ok(r.input_tokens > 0);
  });

  it('SDK errors: status, type and retry-after reach the caller', async () => {
    await assert.rejects(
      openaiClient(`${mock.url}/v1`).chat.completions.create(chat('x [[mock status=429 retry_after=7]]')),
      (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
        assert.equal(e.status, 429);
        assert.equal(e.headers.get('retry-after'), '7');
        assert.equal(e.code, 'rate_limit_exceeded');
        return true;
      });
    await assert.rejects(
      anthropicClient(mock.url).messages.create(msg('x [[mock status=529]]')),
      (e) => {
        assert.equal(e.status, 529);
        assert.equal(e.error.type, 'error');
        assert.equal(e.error.error.type, 'overloaded_error');
        return true;
      });
    await assert.rejects(
      anthropicClient(mock.url).messages.create(msg('x [[mock fail=reset]]')),
      (e) => e instanceof Anthropic.APIConnectionError);
  });
});

describe('directives', () => {
  it('status + retry_after: provider-shaped error bodies', async () => {
    const o = await postJSON(`${mock.url}/v1/chat/completions`, chat('[[mock status=500]]'), openaiHeaders());
    assert.equal(o.status, 500);
    assert.deepEqual(o.json, { error: {
      message: 'mock-upstream: simulated 500 (requested by a [[mock]] directive)',
      type: 'server_error', param: null, code: null } });
    const a = await postJSON(`${mock.url}/v1/messages`, msg('[[mock status=429 retry_after=2]]'),
      anthropicHeaders());
    assert.equal(a.status, 429);
    assert.equal(a.headers.get('retry-after'), '2');
    assert.equal(a.json.type, 'error');
    assert.equal(a.json.error.type, 'rate_limit_error');
  });

  it('directives in the model name', async () => {
    const r = await postJSON(`${mock.url}/v1/chat/completions`,
      { model: 'gpt-4o[[mock status=503]]', messages: [{ role: 'user', content: 'hi' }] }, openaiHeaders());
    assert.equal(r.status, 503);
  });

  it('unknown directive -> 400 naming it', async () => {
    const r = await postJSON(`${mock.url}/v1/chat/completions`, chat('[[mock chunkz=3]]'), openaiHeaders());
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /chunkz/);
  });

  it('chunks + interval_ms: a stream paced on the wire', async () => {
    const t0 = performance.now();
    const r = await fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST', headers: openaiHeaders(),
      body: JSON.stringify(chat('[[mock chunks=4 interval_ms=150]]', { stream: true })),
    });
    const { events } = await readSSE(r, { t0 });
    const content = events.filter((e) => e.json?.choices?.[0]?.delta?.content);
    assert.equal(content.length, 4);
    for (let i = 1; i < 4; i++) {
      const gap = content[i].t - content[i - 1].t;
      assert.ok(gap > 100 && gap < 400, `gap ${i}: ${gap} ms`);
    }
    assert.equal(events.at(-1).data, '[DONE]');
    assert.equal(content.map((e) => e.json.choices[0].delta.content).join('').split(' ').length, 17);
  });

  it('anthropic stream: the exact event sequence on the wire', async () => {
    const r = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST', headers: anthropicHeaders(),
      body: JSON.stringify(msg('[[mock chunks=2]]', { stream: true })),
    });
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const { events } = await readSSE(r);
    assert.deepEqual(events.map((e) => e.event), ['message_start', 'content_block_start', 'ping',
      'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta',
      'message_stop']);
    for (const e of events) assert.equal(e.json.type, e.event, 'data.type names the event');
    assert.equal(events[6].json.delta.stop_reason, 'end_turn');
    assert.equal(events[6].json.usage.output_tokens, 17);
  });

  it('chunks + interval_ms: non-stream waits chunks*interval', async () => {
    const t0 = performance.now();
    const r = await postJSON(`${mock.url}/v1/messages`, msg('[[mock chunks=3 interval_ms=100]]'),
      anthropicHeaders());
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 >= 290);
  });

  it('words and max_tokens', async () => {
    const r = await postJSON(`${mock.url}/v1/messages`, msg('[[mock words=40]]', { max_tokens: 5 }),
      anthropicHeaders());
    assert.equal(r.json.stop_reason, 'max_tokens');
    assert.equal(r.json.content[0].text, 'Hello from mock-upstream. This deterministic');
    assert.equal(r.json.usage.output_tokens, 5);
    const o = await postJSON(`${mock.url}/v1/chat/completions`, chat('[[mock words=3]]'), openaiHeaders());
    assert.equal(o.json.choices[0].message.content, 'Hello from mock-upstream.');
  });

  it('delay_ms holds the headers; first_byte_ms holds the body', async () => {
    let t0 = performance.now();
    let r = await fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST', headers: openaiHeaders(), body: JSON.stringify(chat('[[mock delay_ms=250]]')),
    });
    assert.ok(performance.now() - t0 >= 240, 'headers after delay_ms');
    await r.json();
    t0 = performance.now();
    r = await fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST', headers: openaiHeaders(),
      body: JSON.stringify(chat('[[mock first_byte_ms=300]]', { stream: true })),
    });
    const tHead = performance.now() - t0;
    assert.ok(tHead < 200, `headers at once (${tHead} ms)`);
    const { events } = await readSSE(r, { t0 });
    assert.ok(events[0].t >= 290, `first event after first_byte_ms (${events[0].t} ms)`);
  });

  it('fail=truncate: the stream stops without its final events', async () => {
    const r = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST', headers: anthropicHeaders(),
      body: JSON.stringify(msg('[[mock chunks=6 fail=truncate]]', { stream: true })),
    });
    assert.equal(r.status, 200);
    let events = [];
    let err = null;
    try {
      ({ events } = await readSSE(r, { onEvent: (e) => { events.push(e); } }));
    } catch (e) {
      err = e; // the chunked body ends without its terminator
    }
    const types = events.map((e) => e.event);
    assert.ok(types.includes('content_block_delta'), types.join(','));
    assert.ok(!types.includes('message_stop'));
    assert.ok(err, 'the transfer is reported as incomplete');
  });

  it('fail=reset: connection closed with no answer', async () => {
    await assert.rejects(fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST', headers: openaiHeaders(), body: JSON.stringify(chat('[[mock fail=reset]]')),
    }));
  });

  it('fail=stall: headers, then nothing; the client leaving is recorded', async () => {
    await mock.reset();
    const ac = new AbortController();
    const r = await fetch(`${mock.url}/v1/chat/completions`, {
      method: 'POST', headers: openaiHeaders(), signal: ac.signal,
      body: JSON.stringify(chat('[[mock fail=stall]]', { stream: true })),
    });
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    const got = await Promise.race([reader.read().then(() => 'data'),
      new Promise((res) => setTimeout(() => res('nothing'), 300))]);
    assert.equal(got, 'nothing');
    ac.abort();
    const calls = await eventually(async () => {
      const c = await mock.calls();
      return c[0]?.closed_early ? c : null;
    });
    assert.ok(calls, 'closed_early recorded');
    assert.equal(calls[0].completed, false);
  });
});

describe('control endpoints and request log', () => {
  it('records method, path, lowercased headers, parsed body; reset clears', async () => {
    await mock.reset();
    await postJSON(`${mock.url}/v1/messages?beta=true`, msg('hello'),
      anthropicHeaders(CLIENT_KEY, { 'Anthropic-Beta': 'tools-2024-04-04', 'X-Custom': 'a' }));
    const calls = await mock.calls();
    assert.equal(calls.length, 1);
    const c = calls[0];
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/v1/messages?beta=true');
    assert.equal(c.headers['x-api-key'], CLIENT_KEY);
    assert.equal(c.headers['anthropic-beta'], 'tools-2024-04-04');
    assert.equal(c.headers['x-custom'], 'a');
    assert.equal(c.body.messages[0].content, 'hello');
    assert.equal(c.status, 200);
    assert.equal(c.completed, true);
    assert.equal(c.closed_early, false);
    assert.equal(typeof c.time, 'number');
    await mock.reset();
    assert.deepEqual(await mock.calls(), []);
  });

  it('missing provider key -> 401; missing anthropic-version -> 400; bad JSON -> 400', async () => {
    let r = await postJSON(`${mock.url}/v1/chat/completions`, chat('hi'));
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
    r = await postJSON(`${mock.url}/v1/messages`, msg('hi'), { 'x-api-key': 'k' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'invalid_request_error');
    r = await postJSON(`${mock.url}/v1/messages`, '{"model":', anthropicHeaders());
    assert.equal(r.status, 400);
    assert.equal(r.json.type, 'error');
    r = await postJSON(`${mock.url}/v1/chat/completions`, 'nope', openaiHeaders());
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'invalid_request_error');
    r = await postJSON(`${mock.url}/v1/nothing`, '{}', openaiHeaders());
    assert.equal(r.status, 404);
  });
});

// Raw HTTP/1.1 on one socket: write `data`, collect until `n` complete
// responses (Content-Length framed) have arrived.
function rawExchange(url, chunks, n) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname);
    let buf = Buffer.alloc(0);
    const responses = [];
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.subarray(0, end).toString();
        const status = Number(head.split(' ')[1]);
        if (status === 100) {
          responses.push({ status, head, body: '' });
          buf = buf.subarray(end + 4);
          continue;
        }
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) break;
        responses.push({ status, head, body: buf.subarray(end + 4, end + 4 + len).toString() });
        buf = buf.subarray(end + 4 + len);
      }
      if (responses.filter((r) => r.status !== 100).length >= n) {
        s.end();
        resolve(responses);
      }
    });
    s.on('error', reject);
    s.on('connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'number') await new Promise((r) => setTimeout(r, c));
        else s.write(c);
      }
    });
  });
}

describe('HTTP/1.1 details', () => {
  const auth = 'Authorization: Bearer k\r\n';
  const body = JSON.stringify(chat('[[mock words=2]]'));

  it('keep-alive with pipelined requests, chunked and Content-Length bodies', async () => {
    const half = Math.floor(body.length / 2);
    const chunked = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}` +
      `Transfer-Encoding: chunked\r\n\r\n${half.toString(16)};ext=1\r\n${body.slice(0, half)}\r\n` +
      `${(body.length - half).toString(16)}\r\n${body.slice(half)}\r\n0\r\nX-Trailer: t\r\n\r\n`;
    const plain = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    // Both requests in one write, then a third split across writes.
    const res = await rawExchange(mock.url,
      [chunked + plain, plain.slice(0, 30), 50, plain.slice(30, 120), 50, plain.slice(120)], 3);
    assert.equal(res.length, 3);
    for (const r of res) {
      assert.equal(r.status, 200);
      assert.match(r.head, /connection: keep-alive/i);
      assert.equal(JSON.parse(r.body).choices[0].message.content, 'Hello from');
    }
  });

  it('Expect: 100-continue', async () => {
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}` +
      `Expect: 100-continue\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const res = await rawExchange(mock.url, [head, 100, body], 1);
    assert.equal(res[0].status, 100);
    assert.equal(res[1].status, 200);
  });

  it('malformed HTTP -> 400 and close', async () => {
    const res = await rawExchange(mock.url, ['GARBAGE\r\n\r\n'], 1);
    assert.equal(res[0].status, 400);
    assert.match(res[0].head, /connection: close/i);
  });
});

describe('Gemini', () => {
  const gemini = () => new GoogleGenAI({ apiKey: CLIENT_KEY, httpOptions: { baseUrl: mock.url } });

  it('@google/genai generateContent and generateContentStream', async () => {
    await mock.reset();
    const r = await gemini().models.generateContent({ model: 'gemini-2.5-flash', contents: 'Say hello.',
      config: { maxOutputTokens: 4 } });
    assert.equal(r.text, 'Hello from mock-upstream. This');
    assert.equal(r.candidates[0].finishReason, 'MAX_TOKENS');
    assert.equal(r.usageMetadata.candidatesTokenCount, 4);
    assert.ok(r.usageMetadata.promptTokenCount > 0);
    let text = '';
    let chunks = 0;
    let last;
    for await (const c of await gemini().models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'Say hello.' })) {
      text += c.text ?? '';
      chunks++;
      last = c;
    }
    assert.equal(text, MOCK_TEXT);
    assert.equal(chunks, MOCK_TEXT.split(' ').length, 'one chunk per word');
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.equal(last.usageMetadata.candidatesTokenCount, chunks);
    const calls = await mock.calls();
    assert.deepEqual(calls.map((c) => c.path), ['/v1beta/models/gemini-2.5-flash:generateContent',
      '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse']);
    assert.equal(calls[0].headers['x-goog-api-key'], CLIENT_KEY);
    assert.deepEqual(calls[0].usage, r.usageMetadata, 'the reported usage is on the call');
  });

  it('auth by header or ?key=, error shape, no stream without alt=sse, non-UTF-8 names refused', async () => {
    const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    const path = `${mock.url}/v1beta/models/gemini-x:generateContent`;
    assert.equal((await postJSON(`${path}?key=k`, body)).status, 200);
    const anon = await postJSON(path, body);
    assert.equal(anon.status, 401);
    assert.deepEqual(Object.keys(anon.json.error), ['code', 'message', 'status']);
    assert.equal(anon.json.error.status, 'UNAUTHENTICATED');
    const e = await postJSON(path, { contents: [{ parts: [{ text: '[[mock status=429]]' }] }] }, { 'x-goog-api-key': 'k' });
    assert.equal(e.status, 429);
    assert.equal(e.json.error.status, 'RESOURCE_EXHAUSTED');
    const noSse = await postJSON(`${mock.url}/v1beta/models/gemini-x:streamGenerateContent`, body, { 'x-goog-api-key': 'k' });
    assert.equal(noSse.status, 404);
    const bad = await postJSON(`${mock.url}/v1beta/models/gemini-%C3%28:generateContent`, body, { 'x-goog-api-key': 'k' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /UTF-8/);
  });
});

describe('misbehaviour directives', () => {
  // The raw response head of one request.
  const rawHead = (path, body, headers) => new Promise((done, fail) => {
    const port = Number(new URL(mock.url).port);
    const sock = connect(port, '127.0.0.1');
    let got = '';
    const b = JSON.stringify(body);
    sock.on('connect', () => sock.write(`POST ${path} HTTP/1.1\r\nHost: m\r\nConnection: close\r\n` +
      `${headers}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`));
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('end', () => done(got.slice(0, got.indexOf('\r\n\r\n') + 2)));
    sock.on('error', fail);
  });

  it('usage=none: no usage anywhere, nothing recorded', async () => {
    await mock.reset();
    const o = await postJSON(`${mock.url}/v1/chat/completions`, chat('[[mock usage=none]]'), openaiHeaders());
    assert.equal(o.json.usage, undefined);
    const a = await postJSON(`${mock.url}/v1/messages`, msg('[[mock usage=none]]'), anthropicHeaders());
    assert.equal(a.json.usage, undefined);
    const s = await fetch(`${mock.url}/v1/chat/completions`, { method: 'POST', headers: openaiHeaders(),
      body: JSON.stringify(chat('[[mock usage=none]]', { stream: true, stream_options: { include_usage: true } })) });
    const { events } = await readSSE(s);
    assert.ok(events.every((e) => !e.json?.usage && !('usage' in (e.json || {}))), 'no usage member in any chunk');
    assert.ok(events.filter((e) => e.json).every((e) => e.json.choices.length > 0));
    const as = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: anthropicHeaders(),
      body: JSON.stringify(msg('[[mock usage=none]]', { stream: true })) });
    const an = await readSSE(as);
    assert.ok(an.events.every((e) => !JSON.stringify(e.json ?? {}).includes('usage')));
    assert.ok((await mock.calls()).every((c) => c.usage === undefined));
    // Without the directive the usage is recorded as reported.
    const u = await postJSON(`${mock.url}/v1/chat/completions`, chat('hi'), openaiHeaders());
    assert.deepEqual((await mock.calls()).at(-1).usage, u.json.usage);
  });

  it('account_headers and bare_cr', async () => {
    const o = await rawHead('/v1/chat/completions', chat('[[mock account_headers=1]]'), `Authorization: Bearer ${CLIENT_KEY}\r\n`);
    for (const h of ['openai-organization: ', 'openai-project: ', 'x-ratelimit-limit-requests: 500', 'x-request-id: req_mock']) {
      assert.ok(o.includes(h), `${h} in ${o}`);
    }
    const a = await rawHead('/v1/messages', msg('[[mock account_headers=1]]'), `x-api-key: k\r\nanthropic-version: 2023-06-01\r\n`);
    for (const h of ['anthropic-organization-id: ', 'anthropic-ratelimit-requests-limit: 50', 'request-id: req_']) {
      assert.ok(a.includes(h), `${h} in ${a}`);
    }
    const cr = await rawHead('/v1/chat/completions', chat('[[mock bare_cr=1]]'), `Authorization: Bearer ${CLIENT_KEY}\r\n`);
    assert.match(cr, /\r\nx-request-id: req_mock[0-9a-f]+\rSet-Cookie: mock_smuggled=1\r\n/);
  });

  it('huge_line: the first half of the stream, then one line without end', async () => {
    const r = await fetch(`${mock.url}/v1/chat/completions`, { method: 'POST', headers: openaiHeaders(),
      body: JSON.stringify(chat('[[mock words=4 huge_line=300000]]', { stream: true })) });
    const text = await r.text();
    const tail = text.slice(text.lastIndexOf('\n\n') + 2);
    assert.equal(tail, `data: ${'x'.repeat(300000)}`);
    assert.ok(!text.includes('[DONE]'));
    assert.equal(text.split('\n\n').length - 1, 3, 'half of role + 4 words + finish + [DONE]');
  });
});

describe('command line', () => {
  it('--max-calls bounds the request log, keeping the newest', async () => {
    const m = await startMock({ args: ['--max-calls', '4'] });
    try {
      for (let i = 0; i < 9; i++) {
        const r = await postJSON(`${m.url}/v1/chat/completions`, chat(`n${i}`), openaiHeaders());
        assert.equal(r.status, 200);
      }
      const calls = await m.calls();
      assert.ok(calls.length >= 2 && calls.length <= 4, `${calls.length} entries`);
      assert.equal(calls.at(-1).seq, 8);
      assert.equal(calls.at(-1).body.messages[0].content, 'n8');
    } finally {
      await m.stop();
    }
  });

  it('--latency-ms delays every answer; SIGTERM exits 0', async () => {
    const slow = await startMock({ args: ['--latency-ms', '200', '--jitter-ms', '50'] });
    try {
      const t0 = performance.now();
      const r = await postJSON(`${slow.url}/v1/chat/completions`, chat('hi'), openaiHeaders());
      const dt = performance.now() - t0;
      assert.equal(r.status, 200);
      assert.equal(r.json.choices[0].message.content, MOCK_TEXT);
      assert.ok(dt >= 195 && dt < 1000, `${dt} ms`);
    } finally {
      await slow.stop();
    }
  });
});
