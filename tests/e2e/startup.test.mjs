// What the gateway decides at start, before it serves anything: provider
// keys missing from the environment (an error naming the variable, unless
// the spec marks the provider optional, whose requests then get a 503 and
// never reach the upstream unauthenticated), the operator's upstream URL
// override (--provider-url, --providers), and the refusal to serve a spec
// without keys on a non-loopback address. Against the e2e gateway
// (spec.yaml: up-optional is optional and its variable is never set).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startMock, startGateway, postJSON, openaiHeaders, anthropicHeaders, mockArgs,
  OPENAI_KEY, ANTHROPIC_KEY,
} from './lib/harness.mjs';

const BIN = process.env.SLUICE_BIN;
assert.ok(BIN, 'SLUICE_BIN must name the e2e gateway');

// Runs the gateway expecting it to exit on its own; resolves
// { code, stderr, stdout }. A gateway that starts serving instead is
// killed after timeoutMs and reported as code null.
function run(args, env, timeoutMs = 5000) {
  return new Promise((done) => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-start-'));
    const p = spawn(BIN, ['--state', join(dir, 's.db'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.stdout.on('data', (d) => { stdout += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
      done({ code, stderr, stdout });
    });
  });
}

const baseEnv = () => {
  const e = { ...process.env, SLUICE_E2E_OPENAI_KEY: OPENAI_KEY, SLUICE_E2E_ANTHROPIC_KEY: ANTHROPIC_KEY };
  delete e.SLUICE_E2E_OPTIONAL_KEY;
  return e;
};
const chat = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock?.stop(); });

describe('provider keys at start', () => {
  for (const [how, value] of [['unset', undefined], ['empty', '']]) {
    it(`a required provider's key variable ${how}: exit 2 naming the variable and the provider`, async () => {
      const env = baseEnv();
      if (value === undefined) delete env.SLUICE_E2E_OPENAI_KEY;
      else env.SLUICE_E2E_OPENAI_KEY = value;
      const r = await run(['--listen', '127.0.0.1:0'], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /provider 'up-openai': environment variable SLUICE_E2E_OPENAI_KEY is /);
      assert.match(r.stderr, value === undefined ? /is not set/ : /is empty/);
      assert.doesNotMatch(r.stderr, /listening on/, 'it never started listening');
    });
  }

  describe('an optional provider without its key', () => {
    let gw;
    before(async () => { gw = await startGateway({ bin: BIN, mock, env: baseEnv() }); });
    after(async () => { await gw?.stop(); });

    it('starts, saying which variable is missing', () => {
      assert.match(gw.log(), /provider 'up-optional' \(optional\): environment variable SLUICE_E2E_OPTIONAL_KEY is not set/);
    });

    it('a request only it could serve: 503 naming the variable, in the caller\'s shape, nothing sent upstream', async () => {
      await mock.reset();
      const o = await postJSON(`${gw.url}/v1/chat/completions`, chat('optional-only'), openaiHeaders());
      assert.equal(o.status, 503, o.text);
      assert.equal(o.json.error.code, 'provider_key_missing', o.text);
      assert.match(o.json.error.message, /provider 'up-optional'.*SLUICE_E2E_OPTIONAL_KEY is not set/);
      const a = await postJSON(`${gw.url}/v1/messages`, { ...chat('optional-only'), max_tokens: 8 },
        anthropicHeaders());
      assert.equal(a.status, 503, a.text);
      assert.equal(a.json.type, 'error', a.text);
      assert.match(a.json.error.message, /SLUICE_E2E_OPTIONAL_KEY/);
      assert.deepEqual(await mock.calls(), [], 'no call reached the upstream');
    });

    it('a plan with other targets skips it: the fallback answers, every upstream call carries a key', async () => {
      await mock.reset();
      const r = await postJSON(`${gw.url}/v1/chat/completions`, chat('optional-first'), openaiHeaders());
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-sluice-provider'), 'up-openai');
      const calls = await mock.calls();
      assert.equal(calls.length, 1, JSON.stringify(calls));
      assert.equal(calls[0].headers.authorization, `Bearer ${OPENAI_KEY}`);
    });
  });

  it('an optional provider with its key set is called with it', async () => {
    const gw = await startGateway({ bin: BIN, mock, env: { ...baseEnv(), SLUICE_E2E_OPTIONAL_KEY: 'sk-optional-fake' } });
    try {
      await mock.reset();
      const r = await postJSON(`${gw.url}/v1/chat/completions`, chat('optional-only'), openaiHeaders());
      assert.equal(r.status, 200, r.text);
      const calls = await mock.calls();
      assert.equal(calls.length, 1);
      assert.equal(calls[0].headers.authorization, 'Bearer sk-optional-fake');
    } finally {
      await gw.stop();
    }
  });
});

describe('--provider-url and --providers', () => {
  it('--providers lists name, kind, base URL and key variable, after overrides', async () => {
    const plain = await run(['--providers'], baseEnv());
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^up-openai\topenai\thttp:\/\/127\.0\.0\.1:18431\/v1\tSLUICE_E2E_OPENAI_KEY$/m);
    assert.match(plain.stdout, /^demo\tmock\t-\t-$/m);
    const moved = await run(['--provider-url', 'up-openai=https://staging.example.test/v1//', '--providers'], baseEnv());
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /^up-openai\topenai\thttps:\/\/staging\.example\.test\/v1\tSLUICE_E2E_OPENAI_KEY$/m,
      'trailing slashes are dropped as the compiler drops them');
  });

  for (const [arg, why] of [
    ['nope=http://127.0.0.1:1/v1', /no provider 'nope'/],
    ['up-openai', /NAME=URL/],
    ['up-openai=ftp://127.0.0.1/v1', /must start with http:\/\/ or https:\/\//],
    ['up-openai=http:///v1', /has no host/],
    ['up-openai=http://127.0.0.1:1/v1?x=1', /'\?'/],
    ['up-openai=http://127.0.0.1:1/v 1', /blanks/],
    ['demo=http://127.0.0.1:1', /mock/],
  ]) {
    it(`refuses --provider-url ${arg} (exit 2)`, async () => {
      const r = await run(['--provider-url', arg, '--listen', '127.0.0.1:0'], baseEnv());
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    });
  }

  it('traffic goes to the overriding URL, only for the named provider', async () => {
    const other = await startMock();
    // up-anthropic keeps following the harness's mock; up-openai moves.
    const args = [...mockArgs(BIN, mock), '--provider-url', `up-openai=${other.url}/v1`];
    const gw = await startGateway({ bin: BIN, env: baseEnv(), args });
    try {
      await mock.reset();
      const r = await postJSON(`${gw.url}/v1/chat/completions`, chat('gpt-4o-mini'), openaiHeaders());
      assert.equal(r.status, 200, r.text);
      const a = await postJSON(`${gw.url}/v1/messages`, { ...chat('claude-sonnet-4-5'), max_tokens: 8 },
        anthropicHeaders());
      assert.equal(a.status, 200, a.text);
      assert.deepEqual((await other.calls()).map((c) => c.path), ['/v1/chat/completions']);
      assert.deepEqual((await mock.calls()).map((c) => c.path), ['/v1/messages']);
    } finally {
      // Both, whatever the first says: a mock left running would hold the
      // test process open until ctest's timeout.
      const r = await Promise.allSettled([gw.stop(), other.stop()]);
      for (const x of r) if (x.status === 'rejected') throw x.reason;
    }
  });
});

describe('--listen for a spec without keys', () => {
  for (const addr of ['0.0.0.0:0', '[::]:0']) {
    it(`refuses ${addr} (exit 2): a keyless spec serves only loopback`, async () => {
      const r = await run(['--listen', addr], baseEnv());
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /no keys.*loopback/);
    });
  }
});
