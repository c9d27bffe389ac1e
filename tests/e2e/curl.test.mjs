// The gateway's request path seen with plain HTTP (curl and fetch): requests
// reach the right provider with the right model name and the provider's
// key (never the client's), provider headers pass through, errors come
// back in the caller's protocol's shape, upstream errors pass back
// unchanged, and the in-process demo provider answers both protocols.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  useStack, postJSON, readSSE, openaiHeaders, anthropicHeaders,
  CLIENT_KEY, OPENAI_KEY, ANTHROPIC_KEY, MOCK_TEXT, E2E_DIR,
} from './lib/harness.mjs';

const stack = useStack();
const run = promisify(execFile);

const chat = (model, content = 'Say hello.', extra = {}) =>
  ({ model, messages: [{ role: 'user', content }], ...extra });
const msg = (model, content = 'Say hello.', extra = {}) =>
  ({ model, max_tokens: 128, messages: [{ role: 'user', content }], ...extra });

// The one call the upstream received since the last reset.
async function onlyCall() {
  const calls = await stack.mock.calls();
  assert.equal(calls.length, 1, `upstream calls: ${JSON.stringify(calls.map((c) => c.path))}`);
  return calls[0];
}

function assertNoClientKey(call) {
  const headers = JSON.stringify(call.headers);
  assert.ok(!headers.includes(CLIENT_KEY), `client key leaked upstream: ${headers}`);
}

beforeEach(() => stack.mock.reset());

describe('health', () => {
  it('GET /healthz -> 200 with the spec sha256', async () => {
    const r = await fetch(`${stack.url}/healthz`);
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.status, 'ok');
    const want = createHash('sha256').update(readFileSync(join(E2E_DIR, 'spec.yaml'))).digest('hex');
    assert.equal(j.spec_sha256, want, 'the sha256 of tests/e2e/spec.yaml');
  });
});

describe('OpenAI surface -> openai provider', () => {
  it('curl: non-stream chat completion gets the upstream answer', async () => {
    const { stdout } = await run('curl', ['-sS', '--fail-with-body', '-X', 'POST',
      `${stack.url}/v1/chat/completions`,
      '-H', 'content-type: application/json', '-H', `authorization: Bearer ${CLIENT_KEY}`,
      '--data-binary', JSON.stringify(chat('gpt-4o-mini'))]);
    const j = JSON.parse(stdout);
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.choices[0].message.content, MOCK_TEXT);
    assert.ok(j.usage.prompt_tokens > 0);
  });

  it('the upstream sees the same model name and the provider key, not the client key', async () => {
    const r = await postJSON(`${stack.url}/v1/chat/completions`, chat('gpt-4o-mini'), openaiHeaders());
    assert.equal(r.status, 200);
    const call = await onlyCall();
    assert.equal(call.method, 'POST');
    assert.equal(call.path.split('?')[0], '/v1/chat/completions');
    assert.equal(call.body.model, 'gpt-4o-mini');
    assert.deepEqual(call.body.messages, [{ role: 'user', content: 'Say hello.' }]);
    assert.equal(call.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assertNoClientKey(call);
  });

  it('renamed: the upstream sees the substituted model name', async () => {
    const r = await postJSON(`${stack.url}/v1/chat/completions`, chat('renamed'), openaiHeaders());
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, MOCK_TEXT);
    const call = await onlyCall();
    assert.equal(call.body.model, 'gpt-4o');
    assert.equal(call.headers.authorization, `Bearer ${OPENAI_KEY}`);
  });

  it('unknown model -> 404 in the OpenAI error shape, nothing sent upstream', async () => {
    const r = await postJSON(`${stack.url}/v1/chat/completions`, chat('no-such-model'), openaiHeaders());
    assert.equal(r.status, 404);
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(typeof r.json.error.type, 'string');
    assert.match(r.json.error.message, /no-such-model/);
    assert.deepEqual(await stack.mock.calls(), []);
  });

  it('malformed JSON -> 400 in the OpenAI error shape', async () => {
    const r = await postJSON(`${stack.url}/v1/chat/completions`, '{"model": "gpt-4o-mini", ', openaiHeaders());
    assert.equal(r.status, 400);
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(typeof r.json.error.type, 'string');
    assert.deepEqual(await stack.mock.calls(), []);
  });

  for (const status of [429, 500]) {
    it(`upstream ${status}: status and body passed back unchanged`, async () => {
      const r = await postJSON(`${stack.url}/v1/chat/completions`,
        chat('gpt-4o-mini', `[[mock status=${status} retry_after=1]]`), openaiHeaders());
      assert.equal(r.status, status);
      assert.deepEqual(r.json, { error: {
        message: `mock-upstream: simulated ${status} (requested by a [[mock]] directive)`,
        type: status === 429 ? 'requests' : 'server_error', param: null,
        code: status === 429 ? 'rate_limit_exceeded' : null } });
    });
  }
});

describe('Anthropic surface -> anthropic provider', () => {
  it('non-stream message; provider key, anthropic-version and anthropic-beta reach upstream', async () => {
    const r = await postJSON(`${stack.url}/v1/messages`, msg('claude-sonnet-4-5'),
      anthropicHeaders(CLIENT_KEY, { 'anthropic-beta': 'prompt-caching-2024-07-31' }));
    assert.equal(r.status, 200);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.content[0].text, MOCK_TEXT);
    assert.equal(r.json.stop_reason, 'end_turn');
    const call = await onlyCall();
    assert.equal(call.path.split('?')[0], '/v1/messages');
    assert.equal(call.body.model, 'claude-sonnet-4-5');
    assert.equal(call.headers['x-api-key'], ANTHROPIC_KEY);
    assert.equal(call.headers['anthropic-version'], '2023-06-01');
    assert.equal(call.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
    assertNoClientKey(call);
  });

  it('a client authenticating with Authorization: Bearer does not leak it upstream', async () => {
    const r = await postJSON(`${stack.url}/v1/messages`, msg('claude-sonnet-4-5'), {
      authorization: `Bearer ${CLIENT_KEY}`, 'anthropic-version': '2023-06-01',
    });
    assert.equal(r.status, 200);
    const call = await onlyCall();
    assert.equal(call.headers['x-api-key'], ANTHROPIC_KEY);
    assertNoClientKey(call);
  });

  it('POST /v1/messages?beta=true works (what the SDK beta client and Claude Code send)', async () => {
    const r = await postJSON(`${stack.url}/v1/messages?beta=true`, msg('claude-sonnet-4-5'),
      anthropicHeaders());
    assert.equal(r.status, 200);
    assert.equal(r.json.content[0].text, MOCK_TEXT);
    const call = await onlyCall();
    assert.equal(call.path.split('?')[0], '/v1/messages');
  });

  it('a glob route (claude-*) keeps the model name', async () => {
    const r = await postJSON(`${stack.url}/v1/messages`, msg('claude-3-5-haiku-latest'), anthropicHeaders());
    assert.equal(r.status, 200);
    const call = await onlyCall();
    assert.equal(call.body.model, 'claude-3-5-haiku-latest');
  });

  it('unknown model -> 404 in the Anthropic error shape', async () => {
    const r = await postJSON(`${stack.url}/v1/messages`, msg('gpt-unknown'), anthropicHeaders());
    assert.equal(r.status, 404);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'not_found_error');
    assert.equal(typeof r.json.error.message, 'string');
    assert.deepEqual(await stack.mock.calls(), []);
  });

  it('malformed JSON -> 400 in the Anthropic error shape', async () => {
    const r = await postJSON(`${stack.url}/v1/messages`, '{"model": [', anthropicHeaders());
    assert.equal(r.status, 400);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.equal(typeof r.json.error.message, 'string');
  });

  for (const [status, type] of [[429, 'rate_limit_error'], [500, 'api_error']]) {
    it(`upstream ${status}: status and body passed back unchanged`, async () => {
      const r = await postJSON(`${stack.url}/v1/messages`,
        msg('claude-sonnet-4-5', `[[mock status=${status}]]`), anthropicHeaders());
      assert.equal(r.status, status);
      assert.equal(r.json.type, 'error');
      assert.deepEqual(r.json.error, {
        type, message: `mock-upstream: simulated ${status} (requested by a [[mock]] directive)` });
      assert.match(r.json.request_id, /^req_/);
    });
  }
});

describe('demo-model: the in-process mock provider', () => {
  it('OpenAI non-stream', async () => {
    const r = await postJSON(`${stack.url}/v1/chat/completions`, chat('demo-model'), openaiHeaders());
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'chat.completion');
    assert.ok(r.json.choices[0].message.content.length > 0);
  });

  it('OpenAI stream', async () => {
    const r = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...openaiHeaders() },
      body: JSON.stringify(chat('demo-model', 'Say hello.', { stream: true })),
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const { events } = await readSSE(r);
    assert.equal(events.at(-1).data, '[DONE]');
    const text = events.filter((e) => e.json).map((e) => e.json.choices[0]?.delta?.content ?? '').join('');
    assert.ok(text.length > 0);
    assert.ok(events.filter((e) => e.json).every((e) => e.json.object === 'chat.completion.chunk'));
  });

  it('Anthropic non-stream', async () => {
    const r = await postJSON(`${stack.url}/v1/messages`, msg('demo-model'), anthropicHeaders());
    assert.equal(r.status, 200);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.content[0].type, 'text');
    assert.ok(r.json.content[0].text.length > 0);
  });

  it('Anthropic stream', async () => {
    const r = await fetch(`${stack.url}/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...anthropicHeaders() },
      body: JSON.stringify(msg('demo-model', 'Say hello.', { stream: true })),
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const { events } = await readSSE(r);
    const types = events.map((e) => e.event);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('content_block_delta'));
    for (const e of events) assert.equal(e.json.type, e.event);
  });

  it('never reaches the upstream', async () => {
    await postJSON(`${stack.url}/v1/chat/completions`, chat('demo-model'), openaiHeaders());
    await postJSON(`${stack.url}/v1/messages`, msg('demo-model'), anthropicHeaders());
    assert.deepEqual(await stack.mock.calls(), []);
  });
});

// The legacy Completions API is served by chat targets: the prompt goes
// upstream as a user message and answers come back as text_completion.
describe('legacy /v1/completions', () => {
  const completion = (model, extra = {}) => ({ model, prompt: 'Say hello.', max_tokens: 64, ...extra });
  const streamText = (events) => events.filter((e) => e.json).map((e) => e.json.choices[0]?.text ?? '').join('');

  for (const model of ['gpt-4o-mini', 'claude-sonnet-4-5', 'demo-model']) {
    it(`${model}: non-stream`, async () => {
      const r = await postJSON(`${stack.url}/v1/completions`, completion(model), openaiHeaders());
      assert.equal(r.status, 200);
      assert.equal(r.json.object, 'text_completion');
      assert.equal(r.json.model, model);
      assert.ok(r.json.choices[0].text.length > 0);
      assert.equal(r.json.choices[0].finish_reason, 'stop');
      if (model !== 'demo-model') {
        assert.equal(r.json.choices[0].text, MOCK_TEXT);
        const call = await onlyCall();
        const user = call.body.messages.at(-1);
        assert.equal(user.role, 'user');
        assert.equal(typeof user.content === 'string' ? user.content : user.content[0].text, 'Say hello.');
      }
    });

    it(`${model}: stream`, async () => {
      const r = await fetch(`${stack.url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...openaiHeaders() },
        body: JSON.stringify(completion(model, { stream: true })),
      });
      assert.equal(r.status, 200);
      const { events } = await readSSE(r);
      assert.equal(events.at(-1).data, '[DONE]');
      assert.ok(events.filter((e) => e.json).every((e) => e.json.object === 'text_completion'));
      const text = streamText(events);
      if (model === 'demo-model') assert.ok(text.length > 0);
      else assert.equal(text, MOCK_TEXT);
    });
  }

  it('a prompt that is not text -> 400 in the OpenAI shape', async () => {
    const r = await postJSON(`${stack.url}/v1/completions`, completion('gpt-4o-mini', { prompt: [1, 2, 3] }), openaiHeaders());
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /prompt/);
  });
});

describe('GET /v1/models', () => {
  // spec.yaml's exact entries (globs are patterns, not models), in spec order.
  const ENTRIES = ['gpt-4o-mini', 'claude-sonnet-4-5', 'renamed', 'demo-model', 'optional-only', 'optional-first'];

  it('OpenAI shape: a list of every exact entry, nothing sent upstream', async () => {
    const r = await fetch(`${stack.url}/v1/models`, { headers: openaiHeaders() });
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.object, 'list');
    assert.deepEqual(j.data.map((m) => m.id), ENTRIES);
    for (const m of j.data) assert.deepEqual(m, { id: m.id, object: 'model', created: 0, owned_by: 'sluice' });
    assert.deepEqual(await stack.mock.calls(), []);
  });

  it('Anthropic shape when anthropic-version is sent: type, display_name, paging ids', async () => {
    const r = await fetch(`${stack.url}/v1/models`, { headers: anthropicHeaders() });
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.deepEqual(j.data.map((m) => m.id), ENTRIES);
    for (const m of j.data) {
      assert.deepEqual(m, { type: 'model', id: m.id, display_name: m.id, created_at: '1970-01-01T00:00:00Z' });
    }
    assert.equal(j.has_more, false);
    assert.equal(j.first_id, ENTRIES[0]);
    assert.equal(j.last_id, ENTRIES.at(-1));
  });
});

describe('POST /v1/embeddings', () => {
  it('reaches the OpenAI-kind provider with its key, the model renamed, dimensions and base64 kept', async () => {
    const r = await postJSON(`${stack.url}/v1/embeddings`,
      { model: 'renamed', input: ['one', 'two'], dimensions: 8 }, openaiHeaders());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.data.length, 2);
    assert.equal(r.json.data[1].index, 1);
    assert.equal(r.json.data[0].embedding.length, 8);
    assert.equal(r.headers.get('x-sluice-provider'), 'up-openai');
    const call = await onlyCall();
    assert.equal(call.path, '/v1/embeddings');
    assert.equal(call.headers.authorization, `Bearer ${OPENAI_KEY}`);
    assert.deepEqual(call.body, { model: 'gpt-4o', input: ['one', 'two'], dimensions: 8 });
    assertNoClientKey(call);
    await stack.mock.reset();
    const b = await postJSON(`${stack.url}/v1/embeddings`,
      { model: 'gpt-4o-mini', input: 'x', encoding_format: 'base64' }, openaiHeaders());
    assert.equal(b.status, 200, b.text);
    assert.equal(typeof b.json.data[0].embedding, 'string', 'base64 passes through');
  });

  it('a model served only by an Anthropic provider: 400 unsupported_route, nothing sent upstream', async () => {
    const r = await postJSON(`${stack.url}/v1/embeddings`, { model: 'claude-sonnet-4-5', input: 'x' }, openaiHeaders());
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'unsupported_route', r.text);
    assert.match(r.json.error.message, /up-anthropic/);
    assert.deepEqual(await stack.mock.calls(), []);
  });
});

describe('count_tokens on the in-process mock target', () => {
  it('the mock answers it like any request: no x-sluice-estimate, nothing sent upstream', async () => {
    const r = await postJSON(`${stack.url}/v1/messages/count_tokens`,
      { model: 'demo-model', messages: [{ role: 'user', content: 'hello there' }] }, anthropicHeaders());
    assert.equal(r.status, 200, r.text);
    assert.ok(Number.isInteger(r.json.input_tokens) && r.json.input_tokens > 0, r.text);
    assert.equal(r.headers.get('x-sluice-estimate'), null);
    assert.equal(r.headers.get('x-sluice-provider'), 'demo');
    assert.deepEqual(await stack.mock.calls(), []);
  });
});
