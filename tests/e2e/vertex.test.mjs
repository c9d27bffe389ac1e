// OAuth-token providers (issue 16): Vertex AI (Gemini and Claude models)
// with a Google service account, Azure OpenAI with Entra ID, and a
// provider key read from a file, through the gateway compiled from
// vertex.yaml, against the mock's token endpoints (mock_oauth.c), which
// verify the JWT's RS256 signature with the public half of a key pair made
// here per run (openssl CLI), check every claim and form field, and issue
// tokens that live 3 seconds; the mock's Vertex and Azure paths take only
// a live token it issued. One worker, so "one fetch for concurrent
// requests" is about one cache.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startMock, startProcess, stopProcess, waitHealthy, freePort, postJSON, readSSE, sleep,
  openaiHeaders, anthropicHeaders, eventually, MOCK_TEXT,
} from './lib/harness.mjs';
import { openaiClient, anthropicClient } from './lib/sdk-cases.mjs';

const BIN = process.env.SLUICE_VERTEX_BIN;
const SA_EMAIL = 'sluice-e2e@test-proj.iam.gserviceaccount.com';
const ENTRA_SECRET = 'entra~secret-e2e-0123456789';
const FILE_KEY = 'sk-ant-from-a-file-e2e';
const TTL_S = 3;
const VERTEX_PATH = '/v1/projects/test-proj/locations/us-east5/publishers';

let dir;
let mock;
let gw;
let privateKeyPem;

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function writeServiceAccount(file, tokenUri, extra = {}) {
  writeFileSync(file, JSON.stringify({
    type: 'service_account', project_id: 'test-proj', private_key_id: 'k1',
    private_key: privateKeyPem, client_email: SA_EMAIL, client_id: '1',
    token_uri: tokenUri, ...extra,
  }, null, 2));
}

function gatewayArgs(port, mockUrl, more = []) {
  return ['--listen', `127.0.0.1:${port}`, '--workers', '1', '--state', join(dir, `s-${port}.db`),
    '--access-log', join(dir, 'access.log'),
    '--provider-url', `vertex=${mockUrl}/v1`, '--provider-url', `vertex-claude=${mockUrl}/v1`,
    '--provider-url', `azure-entra=${mockUrl}`, '--provider-url', `filekey=${mockUrl}`,
    '--token-url', `azure-entra=${mockUrl}/tenant-e2e/oauth2/v2.0/token`, ...more];
}

const gatewayEnv = (extra = {}) => ({
  ...process.env,
  SLUICE_E2E_VERTEX_SA: join(dir, 'vertex-sa.json'),
  SLUICE_E2E_ENTRA_SECRET: ENTRA_SECRET,
  ...extra,
});

async function startGw(more = [], env = {}) {
  const port = await freePort();
  const h = await startProcess('sluice-vertex', BIN, gatewayArgs(port, mock.url, more),
    { env: gatewayEnv(env), cwd: dir, pattern: /sluice listening on (\S+)/ });
  const url = `http://${h.address}`;
  await waitHealthy(url, h.proc);
  return { ...h, url };
}

// The gateway must refuse to start: exit 2 and a message.
function startFails(env, more = []) {
  const r = spawnSync(BIN, gatewayArgs(0, 'http://127.0.0.1:9', more),
    { env: gatewayEnv(env), cwd: dir, encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2, `exit 2 expected; stderr:\n${r.stderr}`);
  return r.stderr;
}

async function oauthState() {
  const r = await fetch(`${mock.url}/__oauth`);
  return r.json();
}

async function lastCall(pathPrefix) {
  const calls = await mock.calls();
  const c = calls.filter((x) => x.path.startsWith(pathPrefix));
  assert.ok(c.length, `a call to ${pathPrefix}; calls: ${calls.map((x) => x.path).join(', ')}`);
  return c[c.length - 1];
}

const chat = (model, stream = false) => postJSON(`${gw.url}/v1/chat/completions`,
  { model, stream, messages: [{ role: 'user', content: 'hello' }] }, openaiHeaders());
const chatStream = (model) => fetch(`${gw.url}/v1/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...openaiHeaders() },
  body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hello' }] }),
});
const messages = (model) => postJSON(`${gw.url}/v1/messages`,
  { model, max_tokens: 200, messages: [{ role: 'user', content: 'hello' }] }, anthropicHeaders());
const messagesStream = (model) => fetch(`${gw.url}/v1/messages`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...anthropicHeaders() },
  body: JSON.stringify({ model, max_tokens: 200, stream: true, messages: [{ role: 'user', content: 'hello' }] }),
});

function openaiStreamText(events) {
  return events.filter((e) => e.json?.choices?.[0]?.delta?.content)
    .map((e) => e.json.choices[0].delta.content).join('');
}
function anthropicStreamText(events) {
  return events.filter((e) => e.json?.type === 'content_block_delta')
    .map((e) => e.json.delta.text || '').join('');
}

function assertBearer(call) {
  assert.match(call.headers.authorization || '', /^Bearer mock-oat-[0-9a-f]{32}$/);
  for (const h of ['x-goog-api-key', 'x-api-key', 'api-key']) assert.equal(call.headers[h], undefined, h);
}

before(async () => {
  assert.ok(BIN, 'SLUICE_VERTEX_BIN');
  dir = mkdtempSync(join(tmpdir(), 'sluice-vertex-'));
  sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'sa.key')]);
  sh('openssl', ['req', '-x509', '-new', '-key', join(dir, 'sa.key'), '-subj', '/CN=sluice-e2e', '-days', '1',
    '-out', join(dir, 'sa.crt')]);
  privateKeyPem = readFileSync(join(dir, 'sa.key'), 'utf8');
  assert.match(privateKeyPem, /^-----BEGIN PRIVATE KEY-----/); // PKCS#8, as Google's key files have
  mock = await startMock({ args: ['--google-sa', `${SA_EMAIL}=${join(dir, 'sa.crt')}`,
    '--entra', `tenant-e2e:client-e2e:${ENTRA_SECRET}`, '--token-ttl', String(TTL_S)] });
  writeServiceAccount(join(dir, 'vertex-sa.json'), `${mock.url}/token`);
  writeFileSync(join(dir, 'anthropic.key'), `${FILE_KEY}\n`);
  gw = await startGw();
});

after(async () => {
  const results = await Promise.allSettled([gw && stopProcess(gw), mock?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

describe('Vertex AI', () => {
  it('compiles the documented default base URLs', () => {
    const r = spawnSync(BIN, ['--providers'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const urls = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('\t')).map((f) => [f[0], f[2]]));
    assert.equal(urls.vertex, 'https://us-east5-aiplatform.googleapis.com/v1');
    assert.equal(urls['vertex-claude'], 'https://aiplatform.googleapis.com/v1');
    assert.equal(urls['azure-entra'], 'https://contoso.openai.azure.com');
  });

  it('Gemini model, OpenAI client, non-streaming: generateContent with a bearer token', async () => {
    await mock.reset();
    const r = await chat('gemini-2.5-flash');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, MOCK_TEXT);
    const call = await lastCall('/v1/projects/');
    assert.equal(call.path, `${VERTEX_PATH}/google/models/gemini-2.5-flash:generateContent`);
    assertBearer(call);
    assert.ok(Array.isArray(call.body.contents) && call.body.contents.length);
    assert.equal(call.body.model, undefined);
  });

  it('Gemini model, Anthropic client, streaming: streamGenerateContent?alt=sse', async () => {
    await mock.reset();
    const r = await messagesStream('gemini-2.5-flash');
    assert.equal(r.status, 200);
    const { events } = await readSSE(r);
    assert.equal(anthropicStreamText(events), MOCK_TEXT);
    assert.equal(events.at(-1).json.type, 'message_stop');
    const call = await lastCall('/v1/projects/');
    assert.equal(call.path, `${VERTEX_PATH}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`);
    assertBearer(call);
  });

  it('Claude model, Anthropic client, non-streaming: rawPredict, anthropic_version in the body, no model', async () => {
    await mock.reset();
    const r = await messages('claude-sonnet-4');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.content[0].text, MOCK_TEXT);
    const call = await lastCall('/v1/projects/');
    assert.equal(call.path, `${VERTEX_PATH}/anthropic/models/claude-sonnet-4:rawPredict`);
    assertBearer(call);
    assert.equal(call.body.anthropic_version, 'vertex-2023-10-16');
    assert.equal('model' in call.body, false);
    assert.equal(call.body.max_tokens, 200);
    assert.equal(call.headers['anthropic-version'], undefined);
  });

  it('Claude model, OpenAI client, streaming: streamRawPredict with stream: true', async () => {
    await mock.reset();
    const r = await chatStream('claude-sonnet-4');
    assert.equal(r.status, 200);
    const { events } = await readSSE(r);
    assert.equal(openaiStreamText(events), MOCK_TEXT);
    assert.equal(events.at(-1).data, '[DONE]');
    const call = await lastCall('/v1/projects/');
    assert.equal(call.path, `${VERTEX_PATH}/anthropic/models/claude-sonnet-4:streamRawPredict`);
    assert.equal(call.body.stream, true);
    assert.equal(call.body.anthropic_version, 'vertex-2023-10-16');
    assert.equal('model' in call.body, false);
  });

  it('Claude token count: count-tokens:rawPredict with the model in the body', async () => {
    await mock.reset();
    const r = await postJSON(`${gw.url}/v1/messages/count_tokens`,
      { model: 'claude-sonnet-4', messages: [{ role: 'user', content: 'hello' }] }, anthropicHeaders());
    assert.equal(r.status, 200, r.text);
    assert.equal(typeof r.json.input_tokens, 'number');
    assert.equal(r.headers.get('x-sluice-estimate'), null);
    const call = await lastCall('/v1/projects/');
    assert.equal(call.path, `${VERTEX_PATH}/anthropic/models/count-tokens:rawPredict`);
    assert.equal(call.body.model, 'claude-sonnet-4');
    assertBearer(call);
  });

  it('publisher: anthropic sends any model name to rawPredict; location global', async () => {
    await mock.reset();
    const r = await chat('pinned-claude');
    assert.equal(r.status, 200, r.text);
    const call = await lastCall('/v1/projects/');
    assert.equal(call.path, '/v1/projects/other-proj/locations/global/publishers/anthropic/models/my-claude:rawPredict');
    assert.equal(call.body.anthropic_version, 'vertex-2023-10-16');
  });
});

describe('Azure OpenAI with Entra ID', () => {
  it('non-streaming and streaming carry a bearer token, no api-key', async () => {
    await mock.reset();
    const r = await chat('gpt-4o');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, MOCK_TEXT);
    let call = await lastCall('/openai/');
    assert.equal(call.path, '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21');
    assertBearer(call);
    const s = await messagesStream('gpt-4o');
    assert.equal(s.status, 200);
    const { events } = await readSSE(s);
    assert.equal(anthropicStreamText(events), MOCK_TEXT);
    call = await lastCall('/openai/');
    assertBearer(call);
    assert.equal(call.body.stream, true);
  });

  it('the token request is the client-credentials form with the secret', async () => {
    const calls = await mock.calls();
    const grants = calls.filter((c) => c.path === '/tenant-e2e/oauth2/v2.0/token');
    assert.ok(grants.length >= 1);
    const form = new URLSearchParams(grants[0].body);
    assert.equal(form.get('grant_type'), 'client_credentials');
    assert.equal(form.get('client_id'), 'client-e2e');
    assert.equal(form.get('client_secret'), ENTRA_SECRET);
    assert.equal(form.get('scope'), 'https://cognitiveservices.azure.com/.default');
    assert.match(grants[0].headers['content-type'], /^application\/x-www-form-urlencoded/);
  });
});

describe('official SDKs', () => {
  it('OpenAI SDK: Vertex Claude and Azure Entra, plain and streamed', async () => {
    const client = openaiClient(`${gw.url}/v1`);
    for (const model of ['claude-sonnet-4', 'gpt-4o', 'gemini-2.5-flash']) {
      const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.choices[0].message.content, MOCK_TEXT, model);
      const stream = await client.chat.completions.create({ model, stream: true,
        messages: [{ role: 'user', content: 'hi' }] });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
      assert.equal(text, MOCK_TEXT, `${model} streamed`);
    }
  });

  it('Anthropic SDK: Vertex Gemini and Claude, plain and streamed', async () => {
    const client = anthropicClient(gw.url);
    for (const model of ['gemini-2.5-flash', 'claude-sonnet-4', 'gpt-4o']) {
      const r = await client.messages.create({ model, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.content[0].text, MOCK_TEXT, model);
      const stream = client.messages.stream({ model, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
      const final = await stream.finalMessage();
      assert.equal(final.content[0].text, MOCK_TEXT, `${model} streamed`);
    }
  });
});

describe('keys from files', () => {
  it('api_key: file:PATH is read at start, its newline trimmed', async () => {
    await mock.reset();
    const r = await messages('file-claude');
    assert.equal(r.status, 200, r.text);
    const call = await lastCall('/v1/messages');
    assert.equal(call.headers['x-api-key'], FILE_KEY);
  });

  it('a missing or empty key file, or a broken service-account file, stops the start (exit 2) naming provider and path', () => {
    writeFileSync(join(dir, 'empty.json'), '');
    writeFileSync(join(dir, 'broken.json'), '{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"}');
    let err = startFails({ SLUICE_E2E_VERTEX_SA: join(dir, 'nope.json') });
    assert.match(err, /provider 'vertex': credentials: cannot read '.*nope\.json': No such file/);
    err = startFails({ SLUICE_E2E_VERTEX_SA: join(dir, 'broken.json') });
    assert.match(err, /provider 'vertex': credentials '.*broken\.json' is not a usable service-account key: private_key/);
    err = startFails({ SLUICE_E2E_VERTEX_SA: join(dir, 'empty.json') });
    assert.match(err, /provider 'vertex'.*empty\.json/);
    err = startFails({ SLUICE_E2E_ENTRA_SECRET: '' });
    assert.match(err, /provider 'azure-entra': client_secret: environment variable SLUICE_E2E_ENTRA_SECRET is empty/);
    writeFileSync(join(dir, 'anthropic.key'), '\n');
    err = startFails({});
    assert.match(err, /provider 'filekey': api_key: file 'anthropic\.key' is empty/);
    rmSync(join(dir, 'anthropic.key'));
    err = startFails({});
    assert.match(err, /provider 'filekey': api_key: cannot read 'anthropic\.key': No such file/);
    writeFileSync(join(dir, 'anthropic.key'), `${FILE_KEY}\n`);
    assert.ok(!err.includes(FILE_KEY));
  });
});

describe('token lifetime', () => {
  it('a token is renewed before it expires: requests across its lifetime fetch again', async () => {
    await mock.reset();
    const before = (await oauthState()).granted;
    const r1 = await chat('gemini-2.5-flash');
    assert.equal(r1.status, 200, r1.text);
    const t1 = (await lastCall('/v1/projects/')).headers.authorization;
    await sleep(TTL_S * 1000 + 300);
    const r2 = await chat('gemini-2.5-flash');
    assert.equal(r2.status, 200, r2.text); // the mock refuses an expired token
    const t2 = (await lastCall('/v1/projects/')).headers.authorization;
    assert.notEqual(t1, t2);
    const grants = (await mock.calls()).filter((c) => c.path === '/token').length;
    assert.ok(grants >= 1 && (await oauthState()).granted > before, 'a new token was fetched');
  });

  it('requests in the renewal window still use the current token and start one renewal', async () => {
    // 20 s tokens: renewal from 18 s (the last tenth), no use from 19.5 s
    await fetch(`${mock.url}/__oauth?ttl=20`, { method: 'POST' });
    try {
      await sleep(TTL_S * 1000 + 300); // the 3 s token is gone: the next request fetches a 20 s one
      const r1 = await chat('gemini-2.5-flash');
      assert.equal(r1.status, 200, r1.text);
      const t1 = (await lastCall('/v1/projects/')).headers.authorization;
      await sleep(18300); // inside the window
      await mock.reset();
      const g0 = (await oauthState()).granted;
      const r2 = await chat('gemini-2.5-flash');
      assert.equal(r2.status, 200, r2.text);
      assert.equal((await lastCall('/v1/projects/')).headers.authorization, t1, 'the current token is still used');
      // the renewal ran alongside; the next request gets the new token
      assert.ok(await eventually(async () => (await oauthState()).granted === g0 + 1, 3000));
      const r3 = await chat('gemini-2.5-flash');
      assert.equal(r3.status, 200, r3.text);
      assert.notEqual((await lastCall('/v1/projects/')).headers.authorization, t1);
      assert.equal((await oauthState()).granted, g0 + 1, 'one renewal');
    } finally {
      await fetch(`${mock.url}/__oauth?ttl=${TTL_S}`, { method: 'POST' });
    }
  });

  it('concurrent requests without a token share one fetch', async () => {
    // vertex-claude's token (the publisher test's) is long expired
    const g0 = (await oauthState()).granted;
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      (i % 2 ? messages('pinned-claude') : chat('pinned-claude'))));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    assert.equal((await oauthState()).granted, g0 + 1);
  });
});

describe('token endpoint failures', () => {
  it('a refusing token endpoint gives a clear 502 naming the provider and its status, then recovers', async () => {
    await sleep(TTL_S * 1000 + 100); // the concurrent test's token is gone
    await fetch(`${mock.url}/__oauth?fail=503`, { method: 'POST' });
    try {
      const r = await chat('pinned-claude');
      assert.equal(r.status, 502, r.text);
      assert.match(r.json.error.message, /vertex-claude: no access token: the token endpoint answered HTTP 503 \(temporarily_unavailable\)/);
      const a = await messages('gpt-4o');
      assert.equal(a.status, 502, a.text);
      assert.match(a.text, /azure-entra: no access token: the token endpoint answered HTTP 503/);
    } finally {
      await fetch(`${mock.url}/__oauth?fail=0`, { method: 'POST' });
    }
    const ok = await chat('pinned-claude');
    assert.equal(ok.status, 200, ok.text);
  });

  it('a wrong client secret is the token endpoint\'s 401 (invalid_client)', async () => {
    const g = await startGw([], { SLUICE_E2E_ENTRA_SECRET: 'wrong-secret' });
    try {
      const r = await postJSON(`${g.url}/v1/chat/completions`,
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, openaiHeaders());
      assert.equal(r.status, 502, r.text);
      assert.match(r.json.error.message, /azure-entra: no access token: the token endpoint answered HTTP 401 \(invalid_client\)/);
      assert.ok(!r.text.includes('wrong-secret'));
    } finally {
      await stopProcess(g);
    }
    assert.ok(!g.log().includes('wrong-secret'));
  });

  it('an unreachable token endpoint fails at once, no hang', async () => {
    const closed = await freePort();
    writeServiceAccount(join(dir, 'down-sa.json'), `http://127.0.0.1:${closed}/token`);
    const g = await startGw([], { SLUICE_E2E_VERTEX_SA: join(dir, 'down-sa.json') });
    try {
      const t0 = Date.now();
      const r = await postJSON(`${g.url}/v1/chat/completions`,
        { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }, openaiHeaders());
      assert.equal(r.status, 502, r.text);
      assert.match(r.json.error.message, /vertex: no access token: the token endpoint failed \(connect\)/);
      assert.ok(Date.now() - t0 < 10000);
    } finally {
      await stopProcess(g);
    }
  });
});

describe('secrecy', () => {
  it('no token, secret or private key reaches the gateway\'s stderr or access log', async () => {
    const calls = await mock.calls();
    const tokens = new Set(calls.map((c) => c.headers.authorization).filter(Boolean)
      .map((a) => a.replace(/^Bearer /, '')));
    assert.ok(tokens.size >= 1, 'tokens were seen');
    await stopProcess(gw);
    const stderr = gw.log();
    gw = null;
    const access = existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8') : '';
    assert.ok(access.length > 0, 'access log written');
    const keyBody = privateKeyPem.split('\n')[1];
    for (const [what, s] of [['stderr', stderr], ['access log', access]]) {
      assert.ok(!/mock-oat-/.test(s), `${what} holds a token`);
      for (const t of tokens) assert.ok(!s.includes(t), `${what} holds a token`);
      assert.ok(!s.includes(ENTRA_SECRET), `${what} holds the client secret`);
      assert.ok(!s.includes(FILE_KEY), `${what} holds the file key`);
      assert.ok(!s.includes(keyBody), `${what} holds the private key`);
      assert.ok(!/eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9/.test(s), `${what} holds an assertion`);
    }
  });
});
