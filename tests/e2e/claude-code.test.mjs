// Claude Code itself through the gateway, on a backend that is not
// Anthropic: Claude Code (pinned in claude-code/package.json) sends its
// Anthropic Messages requests to the gateway compiled from translate.yaml,
// whose `claude-*` glob routes them to the OpenAI-kind mock upstream, so
// every request and every streamed answer goes through runtime/translate/.
// Each run gets a temporary HOME and working directory, talks only to
// loopback (the base URL, plus an unreachable proxy for anything else) and
// is killed after 90 s. The mock is steered with `[[mock ...]]` directives
// in the prompt: `tool=none` for a plain answer even though Claude Code
// declares its tools, `tool=NAME args=required arg_str=VALUE` to make it
// call one tool with known arguments (tests/mock-upstream/README.md).
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  useStack, startGateway, startMock, startProcess, stopProcess, freePort, mockArgs, E2E_DIR, OPENAI_KEY,
  ANTHROPIC_KEY, MOCK_TEXT,
} from './lib/harness.mjs';

const CC_DIR = join(E2E_DIR, 'claude-code', 'node_modules');
const CLAUDE = join(CC_DIR, '.bin', 'claude');
// Its postinstall puts the platform's native binary in place of a stub;
// where install scripts did not run, the package's wrapper finds it.
const WRAPPER = join(CC_DIR, '@anthropic-ai', 'claude-code', 'cli-wrapper.cjs');
let claudeCmd = [CLAUDE];
const RUN_TIMEOUT_MS = 90000;
// Nothing listens on the discard port: traffic that would bypass the base
// URL fails at once instead of leaving the machine.
const DEAD_PROXY = 'http://127.0.0.1:9';

const stack = useStack();
// The HTTPS gateway (tls/spec.yaml) for the last group.
const TLS_BIN = process.env.SLUICE_TLS_BIN;
let scratch;

before(() => {
  assert.ok(existsSync(CLAUDE), `no Claude Code at ${CLAUDE} (ctest fixture e2e_claude_code_npm_ci installs it)`);
  scratch = mkdtempSync(join(tmpdir(), 'sluice-claude-code-'));
  const v = spawnSync(CLAUDE, ['--version'], { encoding: 'utf8', timeout: 30000,
    env: { PATH: process.env.PATH, HOME: scratch, DISABLE_AUTOUPDATER: '1', DISABLE_TELEMETRY: '1' } });
  if (v.status !== 0 || !/Claude Code/.test(v.stdout)) claudeCmd = [process.execPath, WRAPPER];
});
after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

let runs = 0;
// Runs `claude -p PROMPT --output-format json ...args` in a fresh working
// directory with a fresh HOME (prompt: a string, or a function of that
// directory); resolves with exit code, output and the parsed JSON result.
function runClaude(prompt, args = [], { files = {}, extraEnv = {}, model = 'claude-sonnet-4-5' } = {}) {
  const dir = join(scratch, `run${++runs}`);
  const home = join(dir, 'home');
  const cwd = join(dir, 'work');
  const tmp = join(dir, 'tmp');
  for (const d of [home, cwd, tmp]) mkdirSync(d, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    TMPDIR: tmp,
    LANG: 'C.UTF-8',
    ANTHROPIC_BASE_URL: stack.url,
    ANTHROPIC_AUTH_TOKEN: 'test-token',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    HTTPS_PROXY: DEAD_PROXY,
    HTTP_PROXY: DEAD_PROXY,
    NO_PROXY: '127.0.0.1,localhost',
    ...extraEnv,
  };
  const text = typeof prompt === 'function' ? prompt(cwd) : prompt;
  const argv = ['-p', text, '--output-format', 'json', '--model', model,
    '--no-session-persistence', '--max-turns', '4', ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(claudeCmd[0], [...claudeCmd.slice(1), ...argv], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-16384); });
    const timer = setTimeout(() => p.kill('SIGKILL'), RUN_TIMEOUT_MS);
    p.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      let json;
      try { json = JSON.parse(stdout.trim().split('\n').at(-1)); } catch { json = undefined; }
      resolve({ code, signal, stdout, stderr, json, cwd: realpathSync(cwd) });
    });
  });
}

function describeRun(r) {
  return `exit ${r.code} ${r.signal || ''}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(-2000)}`;
}

// What reached the gateway from Claude Code: only Messages API calls, and
// everything answered (its access log lines).
function assertOnlyMessagesTraffic() {
  const lines = stack.gateway.log().split('\n').filter((l) => / (GET|POST|HEAD|PUT|DELETE) \//.test(l));
  for (const l of lines) assert.match(l, / POST \/v1\/messages(\/count_tokens)?(\?\S*)? /, `unexpected request: ${l}`);
}

describe('Claude Code -> sluice -> OpenAI-kind upstream', () => {
  beforeEach(() => stack.mock.reset());

  it('answers a prompt (streamed, its full tool set declared)', async () => {
    const r = await runClaude('Say hello. [[mock tool=none]]');
    assert.equal(r.code, 0, describeRun(r));
    assert.ok(r.json, describeRun(r));
    assert.equal(r.json.is_error, false, describeRun(r));
    assert.equal(r.json.result, MOCK_TEXT);

    const calls = await stack.mock.calls();
    assert.ok(calls.length >= 1);
    for (const c of calls) {
      assert.equal(c.path, '/v1/chat/completions', 'everything went to the OpenAI-kind upstream');
      assert.equal(c.headers.authorization, `Bearer ${OPENAI_KEY}`);
      assert.equal(c.status, 200);
    }
    const main = calls.find((c) => c.body.tools?.length);
    assert.ok(main, 'the main request declares tools');
    assert.equal(main.body.model, 'gpt-4o');
    assert.equal(main.stream, true, 'Claude Code streams');
    assert.equal(main.body.stream_options?.include_usage, true);
    assert.equal(main.body.messages[0].role, 'system');
    assert.ok(main.body.messages.at(-1).role === 'user');
    const names = main.body.tools.map((t) => t.function?.name);
    for (const n of ['Bash', 'Read']) assert.ok(names.includes(n), `tool ${n} declared: ${names.join(',')}`);
    for (const t of main.body.tools) {
      assert.equal(t.type, 'function');
      assert.equal(typeof t.function.parameters, 'object', `${t.function.name} has a JSON Schema`);
    }
    assertOnlyMessagesTraffic();
  });

  it('runs a Bash tool call and sends its result back', async () => {
    const r = await runClaude('Where am I? [[mock tool=Bash args=required arg_str=pwd]]',
      ['--allowedTools', 'Bash']);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, false, describeRun(r));
    assert.equal(r.json.result, `The tool returned: ${r.cwd}`);
    assert.equal(r.json.num_turns, 2);

    const calls = await stack.mock.calls();
    const second = calls.find((c) => c.body.messages?.at(-1)?.role === 'tool');
    assert.ok(second, `a request ends with the tool result: ${JSON.stringify(calls.map((c) => c.body.messages?.map((m) => m.role)))}`);
    const msgs = second.body.messages;
    const result = msgs.at(-1);
    const call = msgs.at(-2);
    assert.equal(call.role, 'assistant');
    assert.equal(call.tool_calls.length, 1);
    assert.equal(call.tool_calls[0].function.name, 'Bash');
    assert.deepEqual(JSON.parse(call.tool_calls[0].function.arguments), { command: 'pwd' });
    assert.equal(result.tool_call_id, call.tool_calls[0].id);
    assert.equal(result.content, r.cwd);
    assertOnlyMessagesTraffic();
  });

  it('runs a Read tool call on a file in the working directory', async () => {
    const marker = 'sluice-claude-code-marker-7f3a';
    const r = await runClaude(
      (cwd) => `Read notes.txt. [[mock tool=Read args=required arg_str=${join(cwd, 'notes.txt')}]]`,
      ['--allowedTools', 'Read'], { files: { 'notes.txt': `${marker}\n` } });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, false, describeRun(r));
    assert.match(r.json.result, /^The tool returned: /);
    assert.ok(r.json.result.includes(marker), r.json.result);
  });

  it('an overloaded upstream: Claude Code sees 529 and the upstream message', async () => {
    const r = await runClaude('Say hello. [[mock status=529]]', [], { extraEnv: { CLAUDE_CODE_MAX_RETRIES: '0' } });
    assert.notEqual(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, true, describeRun(r));
    assert.equal(r.json.api_error_status, 529);
    assert.match(r.json.result, /mock-upstream: simulated 529/);
  });

  it('an upstream error reaches Claude Code with its message', async () => {
    const r = await runClaude('Say hello. [[mock status=400]]');
    assert.notEqual(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, true, describeRun(r));
    assert.match(r.json.result, /400/);
    assert.match(r.json.result, /mock-upstream: simulated 400/);
  });
});

// Issue 16: Claude Code with extended thinking sends a thinking budget,
// which translation turns into reasoning_effort, and asks for up to 32000
// output tokens. gpt-4o takes neither: the mock here refuses
// reasoning_effort for it (and for the uncatalogued gpt-4o-ft) as OpenAI
// does. The catalog says gpt-4o takes no effort and at most 16384 output
// tokens, so sluice leaves the effort out and caps the limit; for the model
// the catalog lacks, the request goes as sent and is refused, which shows
// the effort was really there to drop.
describe('Claude Code -> sluice -> an OpenAI model that rejects reasoning_effort', () => {
  let mock;
  let gateway;
  before(async () => {
    mock = await startMock({ args: ['--reject', 'gpt-4o=reasoning_effort', '--reject', 'gpt-4o-ft=reasoning_effort'] });
    try {
      gateway = await startGateway({ mock });
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
  const thinking = () => ({ ANTHROPIC_BASE_URL: gateway.url, MAX_THINKING_TOKENS: '8000' });

  it('succeeds: the catalog drops reasoning_effort and caps the output limit for gpt-4o', async () => {
    const r = await runClaude('Say hello. [[mock tool=none]]', [], { extraEnv: thinking() });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, false, describeRun(r));
    assert.equal(r.json.result, MOCK_TEXT);
    const calls = await mock.calls();
    const main = calls.find((c) => c.body.tools?.length);
    assert.ok(main, 'the main request declares tools');
    assert.equal(main.body.model, 'gpt-4o');
    assert.equal(main.status, 200);
    assert.equal('reasoning_effort' in main.body, false, JSON.stringify(main.body).slice(0, 300));
    assert.equal('max_tokens' in main.body, false);
    assert.ok(main.body.max_completion_tokens > 0 && main.body.max_completion_tokens <= 16384,
      `max_completion_tokens ${main.body.max_completion_tokens}`);
    for (const c of calls) assert.equal(c.status, 200, `${c.path} ${JSON.stringify(c.body).slice(0, 200)}`);
  });

  it('the control: a model the catalog lacks gets the effort as sent, and the upstream refuses it', async () => {
    const r = await runClaude('Say hello. [[mock tool=none]]', [],
      { model: 'claude-sonnet-4-5-20250929', extraEnv: { ...thinking(), CLAUDE_CODE_MAX_RETRIES: '0' } });
    assert.notEqual(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, true, describeRun(r));
    assert.match(r.json.result, /reasoning_effort/);
    const calls = await mock.calls();
    const refused = calls.find((c) => c.body.model === 'gpt-4o-ft');
    assert.ok(refused, JSON.stringify(calls.map((c) => c.body.model)));
    assert.equal(refused.status, 400);
    assert.ok(refused.body.reasoning_effort, 'Claude Code asked for thinking, sent on as reasoning_effort');
  });
});

describe('Claude Code -> sluice -> Anthropic-kind upstream (pass-through)', () => {
  beforeEach(() => stack.mock.reset());

  it('its betas, query and request members reach the provider', async () => {
    const r = await runClaude('Say hello. [[mock tool=none]]', [], { model: 'anthropic-direct' });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, false, describeRun(r));
    assert.equal(r.json.result, MOCK_TEXT);
    const calls = await stack.mock.calls();
    const main = calls.find((c) => c.body.tools?.length);
    assert.ok(main, 'the main request declares tools');
    assert.equal(main.path, '/v1/messages?beta=true');
    assert.equal(main.headers['x-api-key'], ANTHROPIC_KEY);
    assert.match(main.headers['anthropic-beta'] || '', /claude-code-/);
    assert.equal(main.body.model, 'claude-sonnet-4-5');
    assert.ok(Array.isArray(main.body.system), 'system blocks as sent');
    assert.ok(main.body.tools.every((t) => t.name && (t.input_schema || t.type)), 'Anthropic tool shape');
    assertOnlyMessagesTraffic();
  });
});

// The same over HTTPS: the gateway compiled from tls/spec.yaml serves a
// certificate from a CA made for this run (tls/certs.sh, openssl CLI), and
// Claude Code trusts that CA only through NODE_EXTRA_CA_CERTS, as a user
// of a private CA would. Its `claude-*` models go to the Anthropic-kind
// provider on the mock upstream.
describe('Claude Code -> sluice over HTTPS (ANTHROPIC_BASE_URL=https://...)', () => {
  const tls = {};
  before(async () => {
    tls.dir = join(scratch, 'tls');
    execFileSync('sh', [join(E2E_DIR, 'tls', 'certs.sh'), tls.dir]);
    const state = join(tls.dir, 'state');
    mkdirSync(state);
    const port = await freePort();
    const plain = await freePort();
    tls.gw = await startProcess('sluice-tls', TLS_BIN,
      ['--listen', `127.0.0.1:${port}`, '--listen-plain', `127.0.0.1:${plain}`, ...mockArgs(TLS_BIN, stack.mock),
        '--state', join(state, 's.db'), '--workers', '1',
        '--tls-cert', join(tls.dir, 'chain.pem'), '--tls-key', join(tls.dir, 'server.key')], {
        env: { ...process.env, SLUICE_E2E_OPENAI_KEY: OPENAI_KEY, SLUICE_E2E_ANTHROPIC_KEY: ANTHROPIC_KEY },
        pattern: /sluice listening on (\S+)/,
      });
    tls.url = `https://127.0.0.1:${port}`;
  });
  after(async () => {
    if (tls.gw) await stopProcess(tls.gw);
  });
  beforeEach(() => stack.mock.reset());

  const httpsEnv = () => ({ ANTHROPIC_BASE_URL: tls.url, NODE_EXTRA_CA_CERTS: join(tls.dir, 'ca.pem') });

  it('answers a streamed prompt through the TLS listener', async () => {
    const r = await runClaude('Say hello. [[mock tool=none]]', [], { extraEnv: httpsEnv() });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, false, describeRun(r));
    assert.equal(r.json.result, MOCK_TEXT);
    const calls = await stack.mock.calls();
    const main = calls.find((c) => c.body.tools?.length);
    assert.ok(main, 'the main request declares tools');
    assert.equal(main.path, '/v1/messages?beta=true');
    assert.equal(main.headers['x-api-key'], ANTHROPIC_KEY);
    assert.equal(main.stream, true, 'Claude Code streams');
    // Every request came over TLS: the gateway's access log has them all,
    // and nothing else reached it.
    const lines = tls.gw.log().split('\n').filter((l) => / (GET|POST|HEAD|PUT|DELETE) \//.test(l));
    assert.ok(lines.length >= 1, tls.gw.log());
    for (const l of lines) assert.match(l, / POST \/v1\/messages(\/count_tokens)?(\?\S*)? /, `unexpected request: ${l}`);
  });

  it('runs a Bash tool call over HTTPS', async () => {
    const r = await runClaude('Where am I? [[mock tool=Bash args=required arg_str=pwd]]',
      ['--allowedTools', 'Bash'], { extraEnv: httpsEnv() });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error, false, describeRun(r));
    assert.equal(r.json.result, `The tool returned: ${r.cwd}`);
  });

  it('without the CA it refuses the gateway certificate: no request is made', async () => {
    const requests = () => tls.gw.log().split('\n').filter((l) => / POST \//.test(l)).length;
    const before = requests();
    const r = await runClaude('Say hello. [[mock tool=none]]', [],
      { extraEnv: { ANTHROPIC_BASE_URL: tls.url, CLAUDE_CODE_MAX_RETRIES: '0' } });
    assert.notEqual(r.code, 0, describeRun(r));
    assert.equal(r.json?.is_error ?? true, true, describeRun(r));
    assert.equal((await stack.mock.calls()).length, 0, 'nothing reached the upstream');
    assert.equal(requests(), before, 'no request got through the TLS listener');
  });
});
