// Observability end to end: a scripted mix of requests (success, stream,
// retry, fallback, a rate-limit refusal and a budget refusal) against a
// gateway compiled from metrics.yaml in front of the mock upstream, then
// GET /metrics must show exact counts; `promtool check metrics` must accept
// the page; and a real Prometheus server, started here with a generated
// config that scrapes sluice with the admin key, must answer a PromQL
// query with the same request count. Every wait is bounded.
//
// The raw keys below are test fixtures; metrics.yaml holds only their hashes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  E2E_DIR, freePort, readSSE, sleep, startGateway, startMock, stopProcess,
} from './lib/harness.mjs';

const BIN = process.env.SLUICE_METRICS_BIN || resolve(E2E_DIR, '..', '..', 'build', 'tests', 'sluice-metrics');
const PROMTOOL = process.env.PROMTOOL_BIN || 'promtool';
const PROMETHEUS = process.env.PROMETHEUS_BIN || 'prometheus';

const KEYS = {
  alice: 'sk-sluice-test-m1-D8TGfsFAzHMU50jd-u5h68SPMy7zwFGEAkJy-XOIVtk',
  ratey: 'sk-sluice-test-m2-OeFRRdkXDcVxbdMbqBXv1EQHBWxbSlEmlc-n5fs0WtY',
  broke: 'sk-sluice-test-m3-fU25TwNWQdOu-inbCDxMxlP7Qr-UsIQ9_LhACpozRrs',
};
const ADMIN = 'sk-sluice-test-m4-lxJwsdmXB8rPDwahQucg2epixKUP_e3btJzL3RV-3vI';

let mock;
let gw;
let mix;

before(async () => {
  mock = await startMock();
  try {
    gw = await startGateway({ bin: BIN, mock, args: ['--workers', '2'] });
  } catch (e) {
    await mock.stop();
    throw e;
  }
  mix = await sendMix(); // defined below, with the helpers it uses
});

after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

async function chat(key, model, { stream = false } = {}) {
  const body = { model, messages: [{ role: 'user', content: 'hi' }] };
  if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  if (!stream) return { status: r.status, headers: r.headers, body: await r.json() };
  let usage;
  await readSSE(r, {
    onEvent: (e) => {
      if (e.data && e.data !== '[DONE]') {
        const j = JSON.parse(e.data);
        if (j.usage) usage = j.usage;
      }
    },
  });
  return { status: r.status, headers: r.headers, body: { usage } };
}

// Prometheus text format samples: [{name, labels, value}].
function parse(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `unparsable sample line: ${line}`);
    const labels = {};
    for (const lm of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// The sum of the samples called `name` whose labels include `want`.
function value(samples, name, want = {}) {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(want).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

async function scrape(headers = { authorization: `Bearer ${ADMIN}` }) {
  const r = await fetch(`${gw.url}/metrics`, { headers, signal: AbortSignal.timeout(5000) });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
}

const sent = { okTokens: { input: 0, output: 0 }, cost: 0 };
// The mix, sent once by the before hook, so no test depends on another
// having run: every test below reads these answers or the page.

async function sendMix() {
  const ok = [];
  for (let i = 0; i < 2; i++) ok.push(await chat(KEYS.alice, 'ok'));
  const stream = await chat(KEYS.alice, 'ok', { stream: true });
  const retry = await chat(KEYS.alice, 'retry-[[mock status=503]]');
  const fb = await chat(KEYS.alice, 'fb-[[mock status=503]]');
  const rateOk = await chat(KEYS.ratey, 'ok');
  const limited = await chat(KEYS.ratey, 'ok');
  const broke = await chat(KEYS.broke, 'ok');
  for (const r of [...ok, stream]) {
    if (!r.body.usage) continue;
    sent.okTokens.input += r.body.usage.prompt_tokens;
    sent.okTokens.output += r.body.usage.completion_tokens;
  }
  return { ok, stream, retry, fb, rateOk, limited, broke };
}

test('the scripted mix answers as expected', () => {
  for (const r of mix.ok) assert.equal(r.status, 200);
  assert.equal(mix.stream.status, 200);
  assert.ok(mix.stream.body.usage, 'the stream carries usage');

  assert.equal(mix.retry.status, 200);
  assert.equal(mix.retry.headers.get('x-sluice-attempts'), '2');
  assert.equal(mix.retry.headers.get('x-sluice-provider'), 'up-openai-b');

  assert.equal(mix.fb.status, 200);
  assert.equal(mix.fb.headers.get('x-sluice-attempts'), '2');

  assert.equal(mix.rateOk.status, 200);
  assert.equal(mix.limited.status, 429);
  assert.equal(mix.limited.body.error.code, 'rate_limit_exceeded');

  assert.equal(mix.broke.status, 429);
  assert.equal(mix.broke.body.error.code, 'insufficient_quota');
});

test('/metrics needs the admin key', async () => {
  assert.equal((await scrape({})).status, 401);
  assert.equal((await scrape({ authorization: `Bearer ${KEYS.alice}` })).status, 401);
  const ok = await scrape();
  assert.equal(ok.status, 200);
  assert.match(ok.type, /^text\/plain; version=0\.0\.4/);
});

test('/metrics counts the mix exactly', async () => {
  const { text } = await scrape();
  const m = parse(text);
  const req = (labels) => value(m, 'sluice_requests_total', labels);
  assert.equal(req({}), 8, 'every answered request once');
  assert.equal(req({ entry: 'ok', provider: 'up-openai-b', key: 'alice', team: 'metrics-team',
    surface: 'openai', status_class: '2xx' }), 3);
  assert.equal(req({ entry: 'retry-*', provider: 'up-openai-b', key: 'alice', status_class: '2xx' }), 1);
  assert.equal(req({ entry: 'fb-*', provider: 'up-openai-b', key: 'alice', status_class: '2xx' }), 1);
  assert.equal(req({ entry: 'ok', key: 'ratey', status_class: '2xx' }), 1);
  assert.equal(req({ entry: 'ok', provider: '', key: 'ratey', status_class: '4xx' }), 1);
  assert.equal(req({ entry: 'ok', provider: '', key: 'broke', status_class: '4xx' }), 1);

  const att = (labels) => value(m, 'sluice_attempts_total', labels);
  assert.equal(att({}), 8);
  assert.equal(att({ entry: 'retry-*', provider: 'up-openai', result: 'http_5xx' }), 1);
  assert.equal(att({ entry: 'retry-*', provider: 'up-openai-b', result: 'ok' }), 1);
  assert.equal(att({ entry: 'fb-*', provider: 'up-openai', result: 'http_5xx' }), 1);
  assert.equal(att({ entry: 'ok', provider: 'up-openai-b', result: 'ok' }), 5);

  assert.equal(value(m, 'sluice_retries_total'), 1);
  assert.equal(value(m, 'sluice_retries_total', { entry: 'retry-*' }), 1);
  assert.equal(value(m, 'sluice_fallbacks_total'), 1);
  assert.equal(value(m, 'sluice_fallbacks_total', { entry: 'fb-*' }), 1);
  assert.equal(value(m, 'sluice_rate_limit_refusals_total', { key: 'ratey', reason: 'rate_limit' }), 1);
  assert.equal(value(m, 'sluice_rate_limit_refusals_total', { key: 'broke', reason: 'budget' }), 1);
  assert.equal(value(m, 'sluice_rate_limit_refusals_total'), 2);

  const okAlice = { entry: 'ok', provider: 'up-openai-b', key: 'alice' };
  assert.equal(value(m, 'sluice_tokens_total', { ...okAlice, type: 'input' }), sent.okTokens.input);
  assert.equal(value(m, 'sluice_tokens_total', { ...okAlice, type: 'output' }), sent.okTokens.output);
  // $1 and $2 per million tokens: in + 2 x out micro-USD per request.
  const cost = value(m, 'sluice_cost_usd_total', okAlice);
  assert.equal(Math.round(cost * 1e6), sent.okTokens.input + 2 * sent.okTokens.output);

  const genai = { gen_ai_request_model: 'ok', gen_ai_provider_name: 'up-openai-b', gen_ai_operation_name: 'chat' };
  assert.equal(value(m, 'gen_ai_client_operation_duration_seconds_count', { ...genai, error_type: '' }), 4);
  assert.equal(value(m, 'gen_ai_client_operation_duration_seconds_count', { gen_ai_request_model: 'ok',
    gen_ai_provider_name: '', error_type: '429' }), 2);
  assert.equal(value(m, 'gen_ai_server_time_to_first_token_seconds_count', genai), 1);
  assert.equal(value(m, 'gen_ai_client_token_usage_count', { ...genai, gen_ai_token_type: 'output' }), 4);
  assert.equal(value(m, 'sluice_overhead_seconds_count'), 8);
  assert.ok(value(m, 'sluice_overhead_seconds_sum') >= 0);

  assert.equal(value(m, 'sluice_in_flight_requests'), 0);
  assert.ok(value(m, 'sluice_connections_open') >= 1);
  assert.equal(value(m, 'sluice_circuit_state', { entry: 'retry-*', provider: 'up-openai' }), 0);
  const teamLeft = value(m, 'sluice_budget_remaining_usd', { scope: 'team', name: 'metrics-team' });
  assert.ok(teamLeft > 99.99 && teamLeft < 100, `team budget left: ${teamLeft}`);
  assert.equal(value(m, 'sluice_budget_remaining_usd', { scope: 'key', name: 'broke' }), 0.000001);
  assert.equal(value(m, 'sluice_ledger_rows_committed_total') + value(m, 'sluice_ledger_queue_depth'), 6);
  const info = m.find((s) => s.name === 'sluice_build_info');
  assert.match(info.labels.spec_sha256, /^[0-9a-f]{64}$/);
  // Never a key, a hash or a prompt.
  for (const k of [...Object.values(KEYS), ADMIN]) assert.ok(!text.includes(k));
  assert.ok(!text.includes('sha256:'));
  assert.ok(!text.includes('[[mock'), 'client model names are not labels');
});

test('the example Grafana dashboard queries only metrics the page has', async () => {
  const { text } = await scrape();
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  // Label lists (`by (...)`) and legends (`{{...}}`) name labels, not metrics.
  const dash = readFileSync(resolve(E2E_DIR, '..', '..', 'examples', 'grafana-dashboard.json'), 'utf8')
    .replace(/by \([^)]*\)/g, '').replace(/\{\{[^}]*\}\}/g, '');
  const used = new Set([...dash.matchAll(/\b((?:sluice|gen_ai)_[a-z_]+)/g)].map((m) => m[1]));
  assert.ok(used.size >= 10);
  for (const name of used) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(families.has(name) || families.has(base), `dashboard uses unknown metric ${name}`);
  }
});

test('promtool check metrics accepts the page', (t) => {
  assert.ok(!spawnSync(PROMTOOL, ['--version']).error, `no promtool at ${PROMTOOL} (scripts/install-deps --test)`);
  return scrape().then(({ text }) => {
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  });
});

test('a Prometheus server scrapes sluice and PromQL sees the requests', async (t) => {
  assert.ok(!spawnSync(PROMETHEUS, ['--version']).error, `no prometheus at ${PROMETHEUS} (scripts/install-deps --test)`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-prom-'));
  const port = await freePort();
  const target = new URL(gw.url).host;
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: sluice',
    '    scrape_interval: 1s',
    `    authorization: { type: Bearer, credentials: "${ADMIN}" }`,
    `    static_configs: [ { targets: ["${target}"] } ]`,
    '',
  ].join('\n'));
  const proc = spawn(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log = (log + d).slice(-8192); });
  const handle = { name: 'prometheus', proc, log: () => log,
    exited: new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal }))) };
  try {
    const query = encodeURIComponent('sum(sluice_requests_total{job="sluice"})');
    const deadline = Date.now() + 45000;
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`,
          { signal: AbortSignal.timeout(2000) });
        const j = await r.json();
        last = JSON.stringify(j);
        if (j.status === 'success' && j.data.result.length === 1) {
          // /metrics scrapes add no requests: still the mix's 8.
          assert.equal(j.data.result[0].value[1], '8');
          const up = await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=up`)).json();
          assert.equal(up.data.result[0].value[1], '1', 'the scrape target is up');
          return;
        }
      } catch (e) {
        last = e.message;
      }
      await sleep(500);
    }
    assert.fail(`Prometheus never returned the request count: ${last}; prometheus stderr:\n${log}`);
  } finally {
    proc.kill('SIGTERM');
    await Promise.race([handle.exited, sleep(10000)]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
