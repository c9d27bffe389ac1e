// AWS Bedrock (issue 16): the gateway signs every request with SigV4 and
// the mock upstream verifies the signature with its own code
// (tests/mock-upstream/mock_sigv4.c, OpenSSL) for test credentials at one
// fixed instant. The gateway runs under libfaketime frozen at that instant
// (realtime only: timers keep the real monotonic clock), so x-amz-date is
// known; a request signed at any other time, with another key, secret,
// region or token, or over other bytes, gets AWS's 403.
//
// Covered: InvokeModel (Anthropic models, also through an inference
// profile) and Converse (other models, or forced with api: converse), plain
// and streamed, from the OpenAI and Anthropic SDKs and raw Gemini and
// Responses clients; the exact URL, signed headers and body shape the
// mock sees; a wrong secret (a clear 403, no hang, the secret in no
// output); corrupt, truncated and exception event streams reported as
// failures; missing credentials stopping the start.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  startGateway, startMock, postJSON, readSSE, parseSSEEvent, eventually, MOCK_TEXT, CLIENT_KEY, anthropicHeaders,
} from './lib/harness.mjs';

const BIN = process.env.SLUICE_BEDROCK_BIN;
const FAKETIME_LIB = process.env.FAKETIME_LIB;
assert.ok(BIN, 'SLUICE_BEDROCK_BIN must name the gateway built from bedrock.yaml');
assert.ok(FAKETIME_LIB, 'FAKETIME_LIB must name libfaketimeMT.so.1 (scripts/install-deps --test installs it)');

const KEY_ID = 'AKIDE2EBEDROCKTEST';
const SECRET = 'e2e/Secret+Key/that-must-never-leak';
const TOKEN = 'e2e-session-token-value';
const DATE = '20241022T101500Z';
const CLOCK = '2024-10-22 10:15:00';
const REGION = 'us-west-2';
const CONTAINER_AUTH = 'e2e-container-authorization';
const CLAUDE = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const CLAUDE_PATH = '/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0';
const LLAMA_PATH = '/model/meta.llama3-1-70b-instruct-v1%3A0';

const gatewayEnv = (over = {}) => ({
  LD_PRELOAD: FAKETIME_LIB,
  FAKETIME: CLOCK,
  FAKETIME_DONT_FAKE_MONOTONIC: '1',
  // An ASan build would refuse a preloaded library ahead of its runtime.
  ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':'),
  E2E_AWS_KEY_ID: KEY_ID,
  E2E_AWS_SECRET: SECRET,
  E2E_AWS_TOKEN: TOKEN,
  AWS_ACCESS_KEY_ID: KEY_ID,
  AWS_SECRET_ACCESS_KEY: SECRET,
  AWS_SESSION_TOKEN: TOKEN,
  ...over,
});

async function bedrockGateway(mock, env = {}) {
  const args = [];
  for (const p of ['aws', 'aws_plain', 'aws_conv', 'aws_ecs']) args.push('--provider-url', `${p}=${mock.url}`);
  return startGateway({ bin: BIN, args, env: gatewayEnv({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: `${mock.url}/aws/credentials`,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: CONTAINER_AUTH, ...env }) });
}

const SIG_RE = new RegExp(
  `^AWS4-HMAC-SHA256 Credential=${KEY_ID}/20241022/${REGION}/bedrock/aws4_request, ` +
  'SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$');

function assertSigned(call) {
  assert.equal(call.sigv4, 'ok', `the mock rejected the signature: ${call.sigv4}`);
  assert.match(call.headers.authorization, SIG_RE);
  assert.equal(call.headers['x-amz-date'], DATE);
  assert.equal(call.headers['x-amz-security-token'], TOKEN);
  assert.equal(call.headers['content-type'], 'application/json');
  for (const h of ['x-api-key', 'api-key', 'x-goog-api-key']) assert.equal(call.headers[h], undefined, h);
}

// A failed stream ends with an error event and a truncated body (no final
// chunk), which fetch reports as an error: keep what arrived, and whether
// the body ended cleanly.
async function readBroken(response) {
  const reader = response.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  let clean = true;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
  } catch {
    clean = false;
  }
  const events = text.replace(/\r\n/g, '\n').split('\n\n').map((raw) => parseSSEEvent(raw)).filter(Boolean);
  return { events, clean };
}

const openai = (url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 20000 });
const anthropic = (url) => new Anthropic({ baseURL: url, apiKey: CLIENT_KEY, authToken: null, maxRetries: 0,
  timeout: 20000 });

describe('AWS Bedrock through sluice (SigV4 checked by the mock)', () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ args: ['--aws', `${KEY_ID}:${SECRET}`, '--aws-region', REGION, '--aws-date', DATE,
      '--aws-token', TOKEN] });
    gw = await bedrockGateway(mock);
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });
  beforeEach(() => mock.reset());

  it('compiles the documented default base URL from the region; --providers names the key source', () => {
    const r = spawnSync(BIN, ['--providers'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.startsWith('aws\t'));
    assert.equal(line.split('\t')[2], `https://bedrock-runtime.${REGION}.amazonaws.com`);
    assert.equal(line.split('\t')[3], 'env:E2E_AWS_KEY_ID');
    const plain = r.stdout.split('\n').find((l) => l.startsWith('aws_plain\t'));
    assert.equal(plain.split('\t')[3], 'env:AWS_ACCESS_KEY_ID');
  });

  it('InvokeModel, plain, from the OpenAI SDK', async () => {
    const r = await openai(gw.url).chat.completions.create({
      model: 'claude', max_tokens: 64, messages: [{ role: 'system', content: 'terse' }, { role: 'user', content: 'hi' }],
    });
    assert.equal(r.choices[0].message.content, MOCK_TEXT);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const [call] = await mock.calls();
    assert.equal(call.method, 'POST');
    assert.equal(call.path, `${CLAUDE_PATH}/invoke`);
    assertSigned(call);
    assert.deepEqual(Object.keys(call.body).sort(), ['anthropic_version', 'max_tokens', 'messages', 'system']);
    assert.equal(call.body.anthropic_version, 'bedrock-2023-05-31');
    assert.deepEqual(call.body.system, [{ type: 'text', text: 'terse' }]);
    assert.deepEqual(r.usage.completion_tokens, call.usage.output_tokens);
    assert.deepEqual(r.usage.prompt_tokens, call.usage.input_tokens);
  });

  it('InvokeModel, streamed, from the Anthropic SDK', async () => {
    const stream = anthropic(gw.url).messages.stream({
      model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }],
    });
    const msg = await stream.finalMessage();
    assert.equal(msg.content[0].text, MOCK_TEXT);
    assert.equal(msg.stop_reason, 'end_turn');
    const [call] = await mock.calls();
    assert.equal(call.path, `${CLAUDE_PATH}/invoke-with-response-stream`);
    assertSigned(call);
    assert.notEqual(call.headers.accept, 'text/event-stream'); /* the answer is event-stream frames */
    assert.equal(call.body.model, undefined);
    assert.equal(call.body.stream, undefined);
    assert.equal(call.body.anthropic_version, 'bedrock-2023-05-31');
    assert.equal(msg.usage.output_tokens, call.usage.output_tokens);
  });

  it('an inference profile id (us.anthropic...) uses InvokeModel', async () => {
    const r = await postJSON(`${gw.url}/v1/messages`,
      { model: 'claude-us', max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] }, anthropicHeaders());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.type, 'message');
    const [call] = await mock.calls();
    assert.equal(call.path, '/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/invoke');
  });

  it('Converse, plain, from an Anthropic client: content blocks, system, inferenceConfig', async () => {
    const r = await postJSON(`${gw.url}/v1/messages`, {
      model: 'llama', max_tokens: 5, temperature: 0.3, top_p: 0.9, stop_sequences: ['END'], system: 'be brief',
      messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' },
        { role: 'user', content: [{ type: 'text', text: 'again' }] }],
    }, anthropicHeaders());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.content[0].text, 'Hello from mock-upstream. This deterministic');
    assert.equal(r.json.stop_reason, 'max_tokens');
    const [call] = await mock.calls();
    assert.equal(call.path, `${LLAMA_PATH}/converse`);
    assertSigned(call);
    assert.deepEqual(call.body, {
      messages: [{ role: 'user', content: [{ text: 'hi' }] }, { role: 'assistant', content: [{ text: 'hello' }] },
        { role: 'user', content: [{ text: 'again' }] }],
      system: [{ text: 'be brief' }],
      inferenceConfig: { maxTokens: 5, temperature: 0.3, topP: 0.9, stopSequences: ['END'] },
    });
    assert.equal(r.json.usage.input_tokens, call.usage.inputTokens);
    assert.equal(r.json.usage.output_tokens, call.usage.outputTokens);
  });

  it('Converse, streamed, from the OpenAI SDK (usage from the metadata event)', async () => {
    const stream = await openai(gw.url).chat.completions.create({
      model: 'llama', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    let finish;
    let usage;
    for await (const ch of stream) {
      if (ch.choices[0]?.delta?.content) text += ch.choices[0].delta.content;
      if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
      if (ch.usage) usage = ch.usage;
    }
    assert.equal(text, MOCK_TEXT);
    assert.equal(finish, 'stop');
    const [call] = await mock.calls();
    assert.equal(call.path, `${LLAMA_PATH}/converse-stream`);
    assertSigned(call);
    assert.equal(usage.completion_tokens, call.usage.outputTokens);
    assert.equal(usage.prompt_tokens, call.usage.inputTokens);
  });

  it('Converse streams reach Gemini and Responses clients in their own formats', async () => {
    const g = await fetch(`${gw.url}/v1beta/models/llama:streamGenerateContent?alt=sse`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    assert.equal(g.status, 200);
    const ge = await readSSE(g);
    const gtext = ge.events.map((e) => e.json?.candidates?.[0]?.content?.parts?.[0]?.text || '').join('');
    assert.equal(gtext, MOCK_TEXT);
    const rs = await fetch(`${gw.url}/v1/responses`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude', input: 'hi', stream: true, store: false }),
    });
    assert.equal(rs.status, 200);
    const re = await readSSE(rs);
    const done = re.events.find((e) => e.event === 'response.completed');
    assert.ok(done, 'response.completed');
    assert.equal(done.json.response.output[0].content[0].text, MOCK_TEXT);
    const calls = await mock.calls();
    assert.deepEqual(calls.map((c) => c.path),
      [`${LLAMA_PATH}/converse-stream`, `${CLAUDE_PATH}/invoke-with-response-stream`]);
  });

  it('default AWS_* credentials, and api: converse forcing Converse for an Anthropic model', async () => {
    const a = await postJSON(`${gw.url}/v1/chat/completions`,
      { model: 'nova', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(a.status, 200, a.text);
    const b = await postJSON(`${gw.url}/v1/chat/completions`,
      { model: 'forced', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(b.status, 200, b.text);
    const calls = await mock.calls();
    assert.deepEqual(calls.map((c) => c.path),
      ['/model/amazon.nova-pro-v1%3A0/converse', '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse']);
    calls.forEach(assertSigned);
  });

  it('Converse tool use, streamed, from the OpenAI SDK, and the tool result turn', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const stream = await openai(gw.url).chat.completions.create({
      model: 'llama', stream: true, tools, messages: [{ role: 'user', content: 'weather in Oslo?' }],
    });
    let name = '';
    let args = '';
    let id;
    let finish;
    for await (const ch of stream) {
      const tc = ch.choices[0]?.delta?.tool_calls?.[0];
      if (tc?.id) id = tc.id;
      if (tc?.function?.name) name += tc.function.name;
      if (tc?.function?.arguments) args += tc.function.arguments;
      if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
    }
    assert.equal(name, 'get_weather');
    assert.deepEqual(JSON.parse(args), { city: 'mock-city' });
    assert.equal(finish, 'tool_calls');
    const [call] = await mock.calls();
    assert.deepEqual(call.body.toolConfig, { tools: [{ toolSpec: { name: 'get_weather', description: 'weather',
      inputSchema: { json: tools[0].function.parameters } } }] });
    await mock.reset();
    const r = await openai(gw.url).chat.completions.create({
      model: 'llama', tools, messages: [{ role: 'user', content: 'weather in Oslo?' },
        { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] },
        { role: 'tool', tool_call_id: id, content: 'sunny, 21C' }],
    });
    assert.equal(r.choices[0].message.content, 'The tool returned: sunny, 21C');
    const [second] = await mock.calls();
    assert.deepEqual(second.body.messages[1].content, [{ toolUse: { toolUseId: id, name: 'get_weather',
      input: { city: 'mock-city' } } }]);
    assert.deepEqual(second.body.messages[2].content,
      [{ toolResult: { toolUseId: id, content: [{ text: 'sunny, 21C' }] } }]);
  });

  it('count_tokens is estimated by sluice, not sent to Bedrock', async () => {
    const r = await postJSON(`${gw.url}/v1/messages/count_tokens`,
      { model: 'claude', messages: [{ role: 'user', content: 'hello there' }] }, anthropicHeaders());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-sluice-estimate'), 'true');
    assert.ok(r.json.input_tokens > 0);
    assert.equal((await mock.calls()).length, 0);
  });

  for (const [fail, why] of [['corrupt', 'CRC'], ['truncate', 'cut mid-frame'], ['exception', 'exception frame']]) {
    it(`an event stream with a ${why} is reported, not cut silently (${fail})`, async () => {
      for (const model of ['claude', 'llama']) {
        const r = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: `hi [[mock fail=${fail}]]` }] }),
        });
        assert.equal(r.status, 200);
        const { events, clean } = await readBroken(r);
        assert.equal(clean, false, `${model}: the body is cut, not ended cleanly`);
        const last = events[events.length - 1];
        assert.ok(last.json?.error, `${model}: last event is an error: ${JSON.stringify(last)}`);
        assert.ok(!events.some((e) => e.data === '[DONE]'), `${model}: no clean [DONE]`);
        assert.ok(!events.some((e) => e.json?.choices?.[0]?.finish_reason), `${model}: no finish reason`);
        if (fail === 'exception') {
          assert.match(last.json.error.message, /Bedrock stream exception throttlingException: Too many requests/);
        }
        if (fail === 'corrupt') assert.match(last.json.error.message, /event-stream message CRC mismatch/);
      }
    });
  }

  it('an exception as the first frame, before any text, is a 502 that says what Bedrock said', async () => {
    const r = await postJSON(`${gw.url}/v1/chat/completions`,
      { model: 'llama', stream: true, messages: [{ role: 'user', content: 'hi [[mock fail=early_exception]]' }] });
    assert.equal(r.status, 502, r.text);
    assert.match(r.json.error.message,
      /aws: Bedrock stream exception throttlingException: Too many requests, please wait before trying again\./);
  });

  it('the Anthropic client sees a stream exception as its own error event', async () => {
    const r = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...anthropicHeaders() },
      body: JSON.stringify({ model: 'claude', stream: true, max_tokens: 64,
        messages: [{ role: 'user', content: 'hi [[mock fail=exception]]' }] }),
    });
    const { events, clean } = await readBroken(r);
    assert.equal(clean, false);
    const err = events.find((e) => e.event === 'error');
    assert.ok(err, 'an error event');
    assert.match(err.json.error.message, /throttlingException: Too many requests/);
    assert.ok(!events.some((e) => e.event === 'message_stop'));
  });
});

describe('AWS Bedrock: credentials', () => {
  let mock;
  before(async () => {
    // Container credentials that expire 4 minutes after the frozen clock:
    // inside the 5-minute margin, so the gateway keeps refreshing them.
    mock = await startMock({ args: ['--aws', `${KEY_ID}:${SECRET}`, '--aws-region', REGION, '--aws-date', DATE,
      '--aws-token', TOKEN, '--aws-container-auth', CONTAINER_AUTH, '--aws-expiration', '2024-10-22T10:19:00Z'] });
  });
  beforeEach(() => mock.reset());

  it('credentials: container: fetched with the endpoint\'s Authorization, signed with, refreshed before expiry',
    async () => {
      const gw = await bedrockGateway(mock, { AWS_ACCESS_KEY_ID: 'AKIDNOTTHEONE', AWS_SECRET_ACCESS_KEY: 'wrong' });
      try {
        const r = await postJSON(`${gw.url}/v1/chat/completions`,
          { model: 'titan', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(r.status, 200, r.text);
        const calls = await mock.calls();
        const fetches = calls.filter((c) => c.path === '/aws/credentials');
        assert.ok(fetches.length >= 1);
        assert.equal(fetches[0].method, 'GET');
        assert.equal(fetches[0].headers.authorization, CONTAINER_AUTH);
        const invoke = calls.find((c) => c.path === '/model/amazon.titan-text-premier-v1%3A0/converse');
        assertSigned(invoke);
        // Refreshed (every 5 s while inside the margin), not only at start.
        const again = await eventually(async () =>
          (await mock.calls()).filter((c) => c.path === '/aws/credentials').length >= fetches.length + 1, 15000, 250);
        assert.ok(again, 'the credentials were fetched again before they expire');
        assert.ok(!gw.log().includes(SECRET) && !gw.log().includes(TOKEN));
      } finally {
        await gw.stop();
      }
    });

  it('credentials: container with a plain-HTTP endpoint that is not local is refused at start', () => {
    const env = { ...process.env, ...gatewayEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://198.51.100.7/creds' }) };
    // It would serve the other providers: stopped after 3 s, its log read.
    const r = spawnSync(BIN, ['--listen', '127.0.0.1:0', '--state', ''], { env, encoding: 'utf8', timeout: 3000 });
    // The provider is optional: the gateway starts without it and says why.
    assert.match(r.stderr, /provider 'aws_ecs' \(optional\): AWS_CONTAINER_CREDENTIALS_FULL_URI over plain HTTP must name a loopback host/);
  });
  after(() => mock?.stop());

  it('a wrong secret gives the client a clear 403 at once, and the secret appears nowhere', async () => {
    const wrong = 'wrong/secret+value-0123456789';
    const gw = await bedrockGateway(mock, { E2E_AWS_SECRET: wrong });
    try {
      const t0 = Date.now();
      const r = await postJSON(`${gw.url}/v1/chat/completions`,
        { model: 'claude', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.error.message, /Bedrock answered HTTP 403: The request signature we calculated does not match/);
      assert.ok(Date.now() - t0 < 15000, 'answered, not hung');
      const s = await fetch(`${gw.url}/v1/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...anthropicHeaders() },
        body: JSON.stringify({ model: 'llama', stream: true, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(s.status, 403);
      const body = await s.json();
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'permission_error');
      const calls = (await mock.calls()).filter((c) => c.path.startsWith('/model/'));
      assert.equal(calls.length, 2);
      assert.ok(calls.every((c) => /does not match/.test(c.sigv4)), JSON.stringify(calls.map((c) => c.sigv4)));
      for (const text of [r.text, JSON.stringify(body), gw.log()]) {
        assert.ok(!text.includes(wrong) && !text.includes(SECRET), 'no secret in answers or logs');
      }
    } finally {
      await gw.stop();
    }
  });

  it('a credential that is not set stops the start, naming its source', () => {
    const env = { ...process.env, ...gatewayEnv({ E2E_AWS_KEY_ID: '' }) };
    const r = spawnSync(BIN, ['--listen', '127.0.0.1:0', '--state', ''], { env, encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /provider 'aws': AWS credential env:E2E_AWS_KEY_ID is not set or empty/);
    assert.ok(!r.stderr.includes(SECRET));
  });
});
