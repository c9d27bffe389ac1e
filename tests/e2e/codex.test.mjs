// Codex CLI itself through the gateway's Responses API: Codex (pinned in
// codex/package.json; the npm package launches a Rust binary from its
// platform package) is configured with a custom model provider whose
// base_url is the gateway (wire_api = "responses", as Codex requires) in
// a temporary CODEX_HOME, and runs `codex exec` non-interactively against
// the gateway compiled from responses.yaml, whose entries translate to
// the Anthropic-kind and the OpenAI-Chat-kind mock upstream or pass
// through to a mock provider that serves the Responses API. Each run gets
// a fresh CODEX_HOME and working directory, talks only to loopback (an
// unreachable proxy for anything else) and is killed after 90 s. The mock
// is steered with `[[mock ...]]` directives in the prompt: `tool=none`
// for a plain answer, `tool=exec_command args=required arg_str=pwd` to
// make the model run `pwd` through Codex's shell tool.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useStack, postJSON, E2E_DIR, MOCK_TEXT, ANTHROPIC_KEY, OPENAI_KEY } from './lib/harness.mjs';

const CODEX = join(E2E_DIR, 'codex', 'node_modules', '.bin', 'codex');
const VERSION = 'codex-cli 0.171.0';
const BOB = 'sk-sluice-test-resp-bob-9d3e7a'; // responses.yaml's key without a budget
const RUN_TIMEOUT_MS = 90000;
const DEAD_PROXY = 'http://127.0.0.1:9';

const stack = useStack();
let scratch;

before(() => {
  assert.ok(existsSync(CODEX), `no Codex at ${CODEX} (ctest fixture e2e_codex_npm_ci installs it)`);
  scratch = mkdtempSync(join(tmpdir(), 'sluice-codex-'));
  const v = spawnSync(CODEX, ['--version'], { encoding: 'utf8', timeout: 30000,
    env: { PATH: process.env.PATH, HOME: scratch, CODEX_HOME: scratch } });
  assert.equal(v.stdout.trim(), VERSION, `codex --version: ${v.stdout} ${v.stderr}`);
});
after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// The config.toml the README shows, pointed at this gateway.
const configToml = (model) => `model = "${model}"
model_provider = "sluice"

[model_providers.sluice]
name = "sluice"
base_url = "${stack.url}/v1"
env_key = "SLUICE_API_KEY"
wire_api = "responses"
`;

let runs = 0;
function runCodex(prompt, model) {
  const dir = join(scratch, `run${++runs}`);
  const home = join(dir, 'codex-home');
  const cwd = join(dir, 'work');
  for (const d of [home, cwd]) mkdirSync(d, { recursive: true });
  writeFileSync(join(home, 'config.toml'), configToml(model));
  const env = {
    PATH: process.env.PATH, HOME: home, CODEX_HOME: home, LANG: 'C.UTF-8',
    SLUICE_API_KEY: BOB,
    HTTPS_PROXY: DEAD_PROXY, HTTP_PROXY: DEAD_PROXY, NO_PROXY: '127.0.0.1,localhost',
  };
  return new Promise((resolve, reject) => {
    const p = spawn(CODEX, ['exec', '--skip-git-repo-check', prompt], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-16384); });
    const timer = setTimeout(() => p.kill('SIGKILL'), RUN_TIMEOUT_MS);
    p.once('error', (e) => { clearTimeout(timer); reject(e); });
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, cwd: realpathSync(cwd) });
    });
  });
}

const describeRun = (r) => `exit ${r.code} ${r.signal || ''}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(-3000)}`;

// Codex reached the gateway only through POST /v1/responses.
function assertOnlyResponsesTraffic() {
  const lines = stack.gateway.log().split('\n').filter((l) => / (GET|POST|HEAD|PUT|DELETE) \//.test(l));
  assert.ok(lines.length > 0, 'the gateway served requests');
  for (const l of lines) assert.match(l, / POST \/v1\/responses 200 /, `unexpected request: ${l}`);
}

for (const [label, model, path, key] of [
  ['Anthropic-kind upstream', 'gpt-via-anthropic', '/v1/messages', ANTHROPIC_KEY],
  ['OpenAI-Chat-kind upstream', 'gpt-via-chat', '/v1/chat/completions', OPENAI_KEY],
]) {
  describe(`codex exec -> sluice /v1/responses -> ${label}`, () => {
    beforeEach(() => stack.mock.reset());

    it('answers a prompt', async () => {
      const r = await runCodex('Say hello. [[mock tool=none]]', model);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.stdout.trim(), MOCK_TEXT, describeRun(r));
      const calls = await stack.mock.calls();
      assert.equal(calls.length, 1, JSON.stringify(calls.map((c) => c.path)));
      assert.equal(calls[0].path, path);
      assert.equal(calls[0].status, 200);
      assert.equal(calls[0].stream, true, 'Codex streams');
      const auth = calls[0].headers['x-api-key'] || calls[0].headers.authorization;
      assert.ok(auth.endsWith(key), 'the provider key, never the client key');
      assertOnlyResponsesTraffic();
    });

    it('runs one shell command through a tool call and sends its output back', async () => {
      const r = await runCodex('Where am I? [[mock tool=exec_command args=required arg_str=pwd]]', model);
      assert.equal(r.code, 0, describeRun(r));
      const calls = await stack.mock.calls();
      assert.equal(calls.length, 2, describeRun(r));
      const [first, second] = calls.map((c) => c.body);
      const names = path === '/v1/messages' ? first.tools.map((t) => t.name) : first.tools.map((t) => t.function.name);
      assert.ok(names.includes('exec_command'), names.join(','));
      // Codex's namespace group arrives flattened; its hosted web_search
      // does not arrive at all.
      assert.ok(names.includes('spawn_agent'), names.join(','));
      assert.ok(!names.includes('web_search'));
      // The command's output went back as the tool result...
      const result = path === '/v1/messages'
        ? second.messages.at(-1).content.find((b) => b.type === 'tool_result').content
        : second.messages.at(-1).content;
      assert.ok(String(typeof result === 'string' ? result : JSON.stringify(result)).includes(r.cwd), `tool result holds ${r.cwd}: ${JSON.stringify(result)}`);
      // ... and the model's final answer (the mock quotes it) is Codex's.
      assert.match(r.stdout, /The tool returned:/, describeRun(r));
      assert.match(r.stdout, new RegExp(r.cwd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assertOnlyResponsesTraffic();
    });
  });
}

describe('codex exec -> sluice -> a provider serving the Responses API', () => {
  beforeEach(() => stack.mock.reset());

  it('passes its request through, and the same request translated names the dropped tools', async () => {
    const r = await runCodex('Say hello. [[mock tool=none]]', 'responses-direct');
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout.trim(), MOCK_TEXT, describeRun(r));
    const [call] = await stack.mock.calls();
    assert.equal(call.path, '/v1/responses');
    const body = call.body;
    // What Codex sends, as it sent it (only the model renamed).
    assert.equal(body.model, 'gpt-5');
    assert.equal(body.stream, true);
    assert.equal(body.store, false);
    assert.deepEqual(body.include, ['reasoning.encrypted_content']);
    assert.equal(typeof body.prompt_cache_key, 'string');
    assert.equal(typeof body.client_metadata, 'object');
    const types = body.tools.map((t) => t.type);
    assert.ok(types.includes('web_search') && types.includes('namespace'), types.join(','));
    assertOnlyResponsesTraffic();

    // The same body, plus the freeform apply_patch tool Codex offers to the
    // models it knows, sent to a translated entry: hosted and custom tools
    // are dropped and named; the answer still comes.
    await stack.mock.reset();
    const replay = {
      ...body, model: 'gpt-via-anthropic', stream: false,
      tools: [...body.tools, { type: 'custom', name: 'apply_patch', description: 'Edit files', format: { type: 'grammar', syntax: 'lark', definition: 'start: /.+/' } }],
    };
    const res = await postJSON(`${stack.url}/v1/responses`, replay, { authorization: `Bearer ${BOB}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-sluice-dropped-tools'), 'web_search,custom');
    const [up] = await stack.mock.calls();
    const names = up.body.tools.map((t) => t.name);
    assert.ok(!names.includes('apply_patch') && names.includes('exec_command'), names.join(','));
  });
});
