// Provider presets (issue 16), table-driven: for every preset in
// presets.yaml the compiled-in default base URL must be the one the
// provider documents, and a non-streaming and a streaming chat request
// through the gateway must reach the mock upstream at the preset's exact
// URL path, with its auth header carrying that provider's key (and no
// other key header), and a body in its protocol. Each provider is
// re-pointed at the mock with --provider-url, keeping its base URL's path,
// so the path under test is the preset's own; the mock runs --no-auth so
// that these assertions, not the mock, judge the auth header.
//
// The expectations below are written from the providers' documentation,
// independently of compiler/presets.c: a wrong row there fails here.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startGateway, startMock, postJSON, MOCK_TEXT } from './lib/harness.mjs';

const BIN = process.env.SLUICE_PRESETS_BIN;

// name: [documented default base URL, auth style, protocol, extra]
const PRESETS = {
  openai: ['https://api.openai.com/v1', 'bearer'],
  anthropic: ['https://api.anthropic.com', 'x-api-key', 'anthropic'],
  gemini: ['https://generativelanguage.googleapis.com', 'x-goog-api-key', 'gemini'],
  azure: ['https://contoso.openai.azure.com', 'api-key', 'openai', { deployment: 'test-model' }],
  'azure-fixed': ['https://contoso.openai.azure.com', 'api-key', 'openai', { deployment: 'prod-4o' }],
  mistral: ['https://api.mistral.ai/v1', 'bearer'],
  groq: ['https://api.groq.com/openai/v1', 'bearer', 'openai', { noEmbeddings: true }],
  deepseek: ['https://api.deepseek.com', 'bearer'],
  xai: ['https://api.x.ai/v1', 'bearer'],
  together: ['https://api.together.xyz/v1', 'bearer'],
  fireworks: ['https://api.fireworks.ai/inference/v1', 'bearer'],
  openrouter: ['https://openrouter.ai/api/v1', 'bearer'],
  perplexity: ['https://api.perplexity.ai', 'bearer'],
  cerebras: ['https://api.cerebras.ai/v1', 'bearer'],
  cohere: ['https://api.cohere.ai/compatibility/v1', 'bearer', 'openai', { noStreamOptions: true }],
  deepinfra: ['https://api.deepinfra.com/v1/openai', 'bearer'],
  nebius: ['https://api.tokenfactory.nebius.com/v1', 'bearer'],
  sambanova: ['https://api.sambanova.ai/v1', 'bearer'],
  hyperbolic: ['https://api.hyperbolic.xyz/v1', 'bearer'],
  novita: ['https://api.novita.ai/openai', 'bearer'],
  moonshot: ['https://api.moonshot.ai/v1', 'bearer'],
  ollama: ['http://127.0.0.1:11434/v1', 'none'],
  vllm: ['http://127.0.0.1:8000/v1', 'bearer'],
  lmstudio: ['http://127.0.0.1:1234/v1', 'none'],
  llamacpp: ['http://127.0.0.1:8080/v1', 'none'],
  localai: ['http://127.0.0.1:8080/v1', 'none'],
};

const keyVar = (name) => `SLUICE_E2E_KEY_${name.toUpperCase().replace(/-/g, '_')}`;
const keyOf = (name) => `key-for-${name}`;
const AUTH_HEADERS = ['authorization', 'api-key', 'x-api-key', 'x-goog-api-key'];

// `sluice --providers`: name, kind, base URL, key variable per line.
function compiledProviders() {
  const r = spawnSync(BIN, ['--providers'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => {
    const [name, kind, url, env] = l.split('\t');
    return [name, { kind, url, env }];
  }));
}

function expectedPath(name, stream) {
  const [base, , proto = 'openai', extra = {}] = PRESETS[name];
  const prefix = new URL(base).pathname.replace(/\/$/, '');
  if (proto === 'anthropic') return `${prefix}/v1/messages`;
  if (proto === 'gemini')
    return `${prefix}/v1beta/models/test-model:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`;
  if (extra.deployment)
    return `${prefix}/openai/deployments/${extra.deployment}/chat/completions?api-version=2024-10-21`;
  return `${prefix}/chat/completions`;
}

function assertAuth(name, headers) {
  const [, style] = PRESETS[name];
  const key = keyOf(name);
  const want = {
    bearer: { authorization: `Bearer ${key}` },
    'api-key': { 'api-key': key },
    'x-api-key': { 'x-api-key': key },
    'x-goog-api-key': { 'x-goog-api-key': key },
    none: {},
  }[style];
  for (const h of AUTH_HEADERS) assert.equal(headers[h], want[h], `${name}: header ${h}`);
}

function assertBody(name, call, stream) {
  const [, , proto = 'openai', extra = {}] = PRESETS[name];
  const b = call.body;
  if (proto === 'gemini') {
    assert.ok(Array.isArray(b.contents) && b.contents.length, `${name}: contents`);
    assert.equal(b.model, undefined, `${name}: the model is in the path`);
    return;
  }
  assert.equal(b.model, 'test-model', `${name}: model`);
  assert.ok(Array.isArray(b.messages) && b.messages.length, `${name}: messages`);
  if (proto === 'anthropic') {
    assert.equal(call.headers['anthropic-version'], '2023-06-01');
    assert.equal(typeof b.max_tokens, 'number');
  }
  assert.equal(Boolean(b.stream), stream, `${name}: stream`);
  if (proto === 'openai' && stream)
    assert.deepEqual(b.stream_options, extra.noStreamOptions ? undefined : { include_usage: true },
      `${name}: stream_options`);
}

let mock;
let gateway;
before(async () => {
  assert.ok(BIN, 'SLUICE_PRESETS_BIN');
  mock = await startMock({ args: ['--no-auth'] });
  const provs = compiledProviders();
  const args = [];
  for (const name of Object.keys(PRESETS)) {
    assert.ok(provs[name], `presets.yaml has a provider '${name}'`);
    args.push('--provider-url', `${name}=${mock.url}${new URL(provs[name].url).pathname.replace(/\/$/, '')}`);
  }
  const env = Object.fromEntries(Object.keys(PRESETS).map((n) => [keyVar(n), keyOf(n)]));
  try {
    gateway = await startGateway({ bin: BIN, env, args });
  } catch (e) {
    await mock.stop();
    throw e;
  }
});
after(async () => {
  const results = await Promise.allSettled([gateway?.stop(), mock?.stop()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});
beforeEach(() => mock.reset());

describe('provider presets', () => {
  it('every preset compiles to its documented default base URL', () => {
    const provs = compiledProviders();
    for (const [name, [base]] of Object.entries(PRESETS)) assert.equal(provs[name].url, base, name);
  });

  for (const name of Object.keys(PRESETS)) {
    it(`${name}: URL, auth header and body, non-streaming and streaming`, async () => {
      const req = { model: `via-${name}`, messages: [{ role: 'user', content: 'hello' }] };
      const r = await postJSON(`${gateway.url}/v1/chat/completions`, req);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, MOCK_TEXT);
      const s = await postJSON(`${gateway.url}/v1/chat/completions`, { ...req, stream: true });
      assert.equal(s.status, 200, s.text);
      assert.match(s.text, /data: \[DONE\]/);
      const calls = await mock.calls();
      assert.equal(calls.length, 2, JSON.stringify(calls.map((c) => c.path)));
      calls.forEach((call, i) => {
        const stream = i === 1;
        assert.equal(call.method, 'POST');
        assert.equal(call.path, expectedPath(name, stream), `${name} ${stream ? 'stream' : 'non-stream'}`);
        assert.equal(call.status, 200);
        assertAuth(name, call.headers);
        assertBody(name, call, stream);
      });
    });
  }

  // Issue 16: a model the catalog says takes no tools (or images) is not
  // sent them: the target is skipped, and with no other target the client
  // gets a 400 naming what the model lacks, before any upstream call.
  it('tools or images to a model without them: 400 before any upstream call, or the next target', async () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const image = [{ type: 'text', text: 'what is this?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }];
    const t = await postJSON(`${gateway.url}/v1/chat/completions`,
      { model: 'no-tools', messages: [{ role: 'user', content: 'hi' }], tools });
    assert.equal(t.status, 400, t.text);
    assert.equal(t.json.error.code, 'unsupported_input');
    assert.match(t.json.error.message, /groq\/llama-guard-3-8b.*does not accept tools/);
    const i = await postJSON(`${gateway.url}/v1/chat/completions`,
      { model: 'no-tools', messages: [{ role: 'user', content: image }] });
    assert.equal(i.status, 400, i.text);
    assert.match(i.json.error.message, /does not accept images/);
    assert.deepEqual(await mock.calls(), [], 'nothing reached the upstream');
    const plain = await postJSON(`${gateway.url}/v1/chat/completions`,
      { model: 'no-tools', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(plain.status, 200, plain.text);
    await mock.reset();
    const next = await postJSON(`${gateway.url}/v1/chat/completions`,
      { model: 'no-tools-then-mistral', messages: [{ role: 'user', content: 'hi' }], tools });
    assert.equal(next.status, 200, next.text);
    const calls = await mock.calls();
    assert.equal(calls.length, 1);
    assert.equal(calls[0].path, '/v1/chat/completions');
    assertAuth('mistral', calls[0].headers);
  });

  it('a preset that serves no embeddings is not asked for them; one that does is', async () => {
    const groq = await postJSON(`${gateway.url}/v1/embeddings`, { model: 'via-groq', input: 'hi' });
    assert.equal(groq.status, 400, groq.text);
    assert.match(groq.json.error.message, /groq/);
    assert.equal((await mock.calls()).length, 0);
    const mistral = await postJSON(`${gateway.url}/v1/embeddings`, { model: 'via-mistral', input: 'hi' });
    assert.equal(mistral.status, 200, mistral.text);
    const [call] = await mock.calls();
    assert.equal(call.path, '/v1/embeddings');
    assertAuth('mistral', call.headers);
  });
});
