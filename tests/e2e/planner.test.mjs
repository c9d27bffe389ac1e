// One planner: `sluicec explain --format=json` against what a gateway built
// from the same spec really sends upstream, for every example and test spec
// and planner.yaml (written for this: cross-entry fallbacks, globs, weights,
// key scopes, a plan longer than a request may go).
//
// Each spec's gateway is built by e2e-mock-spec (mock_spec.c): sluicec's
// lowering with every provider pointed at the mock upstream under a key of
// its own, known client keys, 1 ms backoffs and no circuit breaking; the
// plan itself is untouched. For every entry (a glob by a name it matches)
// and one name no exact entry has, a fresh gateway (fresh balancing
// counters: explain describes the first request after start) gets one
// request whose every attempt fails with 503, and the calls the mock saw,
// as (provider, upstream model), must be explain's plan walked the way the
// gateway walks it: each entry's steps in order for its attempts + 1 tries,
// wrapping around, then the next entry; a 503 the entry does not retry ends
// the request. Separately, for every name and key, explain's "allowed"
// must match whether the gateway answers 403.
//
// PLAN_CASES names a JSON file ([{spec, gateway}], written by CMake);
// SLUICEC_BIN and MOCK_SPEC_BIN are sluicec and e2e-mock-spec.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { E2E_DIR, postJSON, startGateway, startMock } from './lib/harness.mjs';

// A fresh gateway per entry: a short drain, because an idle keep-alive
// client (fetch keeps sockets for 4 s) would otherwise hold each stop.
const GATEWAY_ARGS = ['--workers', '1', '--drain-timeout', '300'];

const REPO = resolve(E2E_DIR, '..', '..');
const CASES = JSON.parse(readFileSync(process.env.PLAN_CASES, 'utf8'));
const SLUICEC = process.env.SLUICEC_BIN;
const MOCK_SPEC = process.env.MOCK_SPEC_BIN;
const PARALLEL = 3; // gateways at once: each mostly waits on the mock
const UNMATCHED = 'planner-test-no-such-model';

function run(bin, args) {
  return new Promise((r) => {
    execFile(bin, args, { timeout: 20000, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => r({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
  });
}

async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock?.stop(); });

let seq = 0;
const newTag = () => `planner-${process.pid}-${++seq}`;

// A name a glob matches: what a client of that glob would send.
const sampleName = (glob) => glob.replace(/\*/g, 'x1').replace(/\?/g, 'q');

async function explain(spec, model, key) {
  const args = ['explain', spec, '--model', model, '--format=json'];
  if (key) args.push('--key', key);
  const r = await run(SLUICEC, args);
  assert.ok(r.code === 0 || r.code === 1, `sluicec ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

// Does an explain "retry on" text ("408, 429, 500, 502-504, 529, connect")
// include 503?
function retries503(on) {
  return on.split(', ').some((tok) => {
    if (/^\dxx$/.test(tok)) return Number(tok[0]) === 5;
    const m = tok.match(/^(\d+)(?:-(\d+))?$/);
    return m && Number(m[1]) <= 503 && 503 <= Number(m[2] ?? m[1]);
  });
}

// The calls a request whose attempts all answer 503 makes, per explain.
function expectedCalls(x) {
  const groups = [];
  for (const step of x.plan) {
    if (!groups.length || groups.at(-1).entry !== step.entry) groups.push({ entry: step.entry, steps: [] });
    groups.at(-1).steps.push(step);
  }
  const out = [];
  for (const g of groups) {
    const { retry } = x.entries.find((e) => e.name === g.entry);
    for (let t = 0; t <= retry.attempts; t++) {
      out.push(g.steps[t % g.steps.length]);
      if (!retries503(retry.on)) return out;
    }
  }
  return out;
}

function callsFor(all, tag) {
  return all.filter((c) => JSON.stringify(c.body ?? '').includes(tag));
}

function providerOf(manifest, call) {
  const h = call.headers;
  const key = h['x-api-key'] || h['api-key'] || (h.authorization || '').replace(/^Bearer /, '');
  return manifest.providers.find((p) => p.key === key)?.name ?? `(unknown key ${key})`;
}

function gatewayEnv(manifest) {
  return Object.fromEntries(manifest.providers.map((p) => [p.env, p.key]));
}

const auth = (key) => (key ? { authorization: `Bearer ${key.secret}` } : {});

async function ask(url, model, content, key) {
  return postJSON(`${url}/v1/chat/completions`,
    { model, messages: [{ role: 'user', content }] }, auth(key));
}

// One request, every attempt failing, on a fresh gateway.
async function observe(c, manifest, name, key) {
  const gw = await startGateway({ bin: c.gateway, mock, env: gatewayEnv(manifest), args: GATEWAY_ARGS });
  try {
    const tag = newTag();
    const r = await ask(gw.url, name, `[[mock status=503]] ${tag}`, key);
    const calls = callsFor(await mock.calls(), tag);
    return { r, calls };
  } finally {
    await gw.stop();
  }
}

// Keys without budgets or limits first: admission must not stop the request.
function keyOrder(x) {
  const k = x.key;
  if (!k) return 0;
  const free = !k.budget && !(k.team && k.team.budget) && !k.limits.rpm && !k.limits.tpm;
  return free ? 0 : 1;
}

async function checkPlan(c, manifest, name, keyed, problems) {
  const label = `'${name}'`;
  if (keyed[0].x.entry === null) {
    const { r, calls } = await observe(c, manifest, name, keyed[0].key);
    if (r.status !== 404 || calls.length)
      problems.push(`${label}: explain matches no entry, gateway answered ${r.status} after ${calls.length} calls`);
    return null;
  }
  const tries = keyed.filter((k) => !k.key || k.x.key.allowed).sort((a, b) => keyOrder(a.x) - keyOrder(b.x));
  if (!tries.length) return `${label}: no key may use it (scope checked only)`;
  for (const { key, x } of tries) {
    const { r, calls } = await observe(c, manifest, name, key);
    if (r.status === 429 && !calls.length) continue; // admission (budget or rate) for this key
    const want = expectedCalls(x).map((s) => `${s.provider}/${s.upstream_model}`);
    const got = calls.map((call) => `${providerOf(manifest, call)}/${call.body?.model}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      problems.push(`${label}${key ? ` (key ${key.name})` : ''}: explain plan ` +
        `${JSON.stringify(x.plan.map((s) => `${s.entry}:${s.provider}/${s.upstream_model}`))}\n` +
        `    expected calls ${JSON.stringify(want)}\n    gateway called ${JSON.stringify(got)}`);
      return null;
    }
    const attempts = r.headers.get('x-sluice-attempts');
    if (attempts !== String(want.length))
      problems.push(`${label}: x-sluice-attempts ${attempts}, expected ${want.length}`);
    if (r.status !== 503) problems.push(`${label}: the client got ${r.status}, not the last 503`);
    return null;
  }
  return `${label}: every key allowed to use it is stopped by admission (scope checked only)`;
}

// 403 exactly when explain says the key may not use the entry; 404 when
// no entry matches. Requests succeed upstream, so this is quick.
async function checkScopes(c, manifest, names, keyed, problems) {
  const gw = await startGateway({ bin: c.gateway, mock, env: gatewayEnv(manifest), args: GATEWAY_ARGS });
  try {
    for (const name of names) {
      for (const { key, x } of keyed[name]) {
        const r = await ask(gw.url, name, `hello ${newTag()}`, key);
        const who = key ? `key ${key.name}` : 'no key';
        if (x.entry === null) {
          if (r.status !== 404) problems.push(`'${name}' (${who}): no entry, gateway answered ${r.status}`);
        } else if (key && !x.key.allowed) {
          if (r.status !== 403) problems.push(`'${name}' (${who}): explain says not allowed, gateway answered ${r.status}`);
        } else if (r.status === 403 || r.status === 401 || r.status === 404) {
          problems.push(`'${name}' (${who}): explain says allowed, gateway answered ${r.status}: ${r.text.slice(0, 200)}`);
        }
      }
    }
  } finally {
    await gw.stop();
  }
}

describe('sluicec explain agrees with the gateway', () => {
  for (const c of CASES) {
    it(relative(REPO, c.spec), async (t) => {
      const m = await run(MOCK_SPEC, ['manifest', c.spec]);
      assert.equal(m.code, 0, `e2e-mock-spec manifest ${c.spec}: ${m.stderr}`);
      const manifest = JSON.parse(m.stdout);
      const names = [...new Set([
        ...manifest.entries.map((e) => (e.glob ? sampleName(e.name) : e.name)), UNMATCHED])];
      const keys = manifest.keys.length ? manifest.keys : [null];
      const keyed = {};
      for (const name of names) {
        keyed[name] = await pool(keys, 4, async (key) => ({ key, x: await explain(c.spec, name, key?.name) }));
      }
      const problems = [];
      const notes = await pool(names, PARALLEL, (name) => checkPlan(c, manifest, name, keyed[name], problems));
      await checkScopes(c, manifest, names, keyed, problems);
      await mock.reset();
      for (const n of notes.filter(Boolean)) t.diagnostic(n);
      assert.deepEqual(problems, [], `${relative(REPO, c.spec)}:\n  ${problems.join('\n  ')}`);
    });
  }

  // The issue this test exists for, spelled out.
  it('a fallback entry asks for its own name (issue 11)', async () => {
    const c = CASES.find((k) => k.spec.endsWith('planner.yaml'));
    assert.ok(c, 'planner.yaml is among the cases');
    const x = await explain(c.spec, 'smart', 'all');
    assert.deepEqual(x.plan.map((s) => `${s.provider}/${s.upstream_model}`), ['oa/smart', 'an/cheap']);
  });
});
