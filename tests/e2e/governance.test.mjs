// Governance end to end: keys, scopes, rate limits, budgets, cost, the spend
// ledger, the admin API and secret hygiene, against a gateway compiled from
// gov.yaml in front of the mock upstream. The test starts, restarts and
// kill -9s that gateway itself, so it drives the binary (SLUICE_GOV_BIN)
// rather than the shared useStack(). Every gateway it starts carries planted
// provider keys in its environment, and every byte it answers is kept: the
// last test greps all of it, the gateways' stderr, the state files and the
// binary for those keys and for the raw client keys.
//
// The raw keys are test fixtures (lib/gov-fixtures.mjs); gov.yaml holds only
// their SHA-256. The process, request and cost helpers are in
// lib/governance.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { eventually, freePort, readSSE, startMock } from './lib/harness.mjs';
import { KEYS, ADMIN_KEY, PLANTED } from './lib/gov-fixtures.mjs';
import {
  GOV_BIN, KEY_NAMES, TINY_BUDGET_MICROS, costMicros, normUsage, received, gatewayLogs, stateDirs,
  live, keep, send, rawRequest, startGov, newStateDir, bearer, anthropic, chatBody, msgBody,
  assertOpenAIError, assertAnthropicError,
} from './lib/governance.mjs';

// ---- the stack ---------------------------------------------------------------

let mock;
let gw;           // the main gateway (restarted by the restart test)
let mainState;

before(async () => {
  mock = await startMock();
  try {
    mainState = join(newStateDir(), 'gov.db');
    // debug logging: more output for the secret grep to look through
    gw = await startGov({ mock, port: await freePort(), state: mainState, args: ['--log-level', 'debug'] });
  } catch (e) {
    await mock.stop();
    throw e;
  }
});

after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  // A test that failed half-way may leave a gateway behind: never hang on it.
  for (const p of live) p.kill('SIGKILL');
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

const admin = (path) => send(`${gw.url}${path}`, { method: 'GET', headers: bearer(ADMIN_KEY) });

async function spendBy(by, query = '') {
  const r = await admin(`/admin/spend?by=${by}${query}`);
  assert.equal(r.status, 200, r.text);
  return r.json.rows;
}

async function keyRow(name) {
  const rows = await spendBy('key');
  return rows.find((r) => r.key === name) ||
    { key: name, requests: 0, cost_micros: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
}

async function adminKeys() {
  const r = await admin('/admin/keys');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const callsWith = (calls, marker) => calls.filter((c) => JSON.stringify(c.body).includes(marker));

// ---- tests -------------------------------------------------------------------

test('auth matrix: every bad credential is a 401 in the surface\'s shape; good ones pass', async (t) => {
  await mock.reset();
  const bad = {
    'no key': undefined,
    'unknown key': 'sk-sluice-test-nobody-000000000000000000000000',
    'expired key': KEYS.expired,
    'key from a disallowed address': KEYS.office,
    'SQL-looking key': "' OR 1=1 --",
    '10 KB key': 'k'.repeat(10 * 1024),
    'admin key': ADMIN_KEY,
  };
  for (const [what, key] of Object.entries(bad)) {
    const oa = await send(`${gw.url}/v1/chat/completions`, {
      headers: key === undefined ? {} : bearer(key), body: chatBody(`auth matrix ${what}`),
    });
    assertOpenAIError(oa, 401, 'authentication_error', 'invalid_api_key');
    const an = await send(`${gw.url}/v1/messages`, { headers: anthropic(key), body: msgBody(`auth matrix ${what}`) });
    assertAnthropicError(an, 401, 'authentication_error');
  }
  // One message for every refused key: telling "expired" or "wrong
  // address" from "unknown" would confirm that a guessed key is genuine.
  // The reason goes to the operator's log instead.
  const unknown = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(bad['unknown key']), body: chatBody('x') });
  const exp = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.expired), body: chatBody('x') });
  const ip = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.office), body: chatBody('x') });
  assert.equal(exp.json.error.message, unknown.json.error.message);
  assert.equal(ip.json.error.message, unknown.json.error.message);
  assert.doesNotMatch(exp.json.error.message, /expired|address/);
  assert.match(gatewayLogs[0](), /refused key from [^ ]+: expired/);
  assert.match(gatewayLogs[0](), /refused key from [^ ]+: address not allowed/);
  // The address is the socket's: forwarding headers do not change it.
  const xff = await send(`${gw.url}/v1/chat/completions`, {
    headers: { ...bearer(KEYS.office), 'x-forwarded-for': '10.1.2.3', forwarded: 'for=10.1.2.3', 'x-real-ip': '10.1.2.3' },
    body: chatBody('x'),
  });
  assertOpenAIError(xff, 401, 'authentication_error', 'invalid_api_key');

  // Malformed: "Bearer" with nothing after it, and bytes no key has.
  for (const scheme of ['Bearer', 'Bearer ', 'Bearer      ']) {
    const r = await send(`${gw.url}/v1/chat/completions`, { headers: { authorization: scheme }, body: chatBody('bearer nothing') });
    assertOpenAIError(r, 401, 'authentication_error', 'invalid_api_key');
  }
  const body = JSON.stringify(chatBody('garbage key'));
  const garbage = Buffer.concat([Buffer.from('Authorization: Bearer '),
    Buffer.from([0x80, 0xff, 0xfe, 0xc3, 0x28, 0x09, 0xe2, 0x82, 0x7e, 0x5c, 0x22, 0x27, 0x3b]), Buffer.from('\r\n')]);
  const g1 = await rawRequest(gw.port, garbage, body);
  assertOpenAIError(g1, 401, 'authentication_error', 'invalid_api_key');
  const g2 = await rawRequest(gw.port, Buffer.concat([Buffer.from('x-api-key: '), Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x25, 0x30, 0x30]), Buffer.from('\r\n')]), body);
  assertOpenAIError(g2, 401, 'authentication_error', 'invalid_api_key');
  // Control bytes in a header value: the parser may refuse the request
  // outright (400) or the key check does (401); never anything else.
  const g3 = await rawRequest(gw.port, Buffer.concat([Buffer.from('Authorization: Bearer sk-\x01\x02\x7f'), Buffer.from('\r\n')]), body);
  assert.ok(g3.status === 400 || g3.status === 401, `control bytes: ${g3.status} ${g3.text}`);

  // None of that reached the upstream.
  assert.deepEqual(await mock.calls(), [], 'refused requests must not reach the upstream');

  // The valid key through each of the three headers, on both surfaces.
  const ok = [
    await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('auth ok bearer') }),
    await send(`${gw.url}/v1/chat/completions`, { headers: { 'x-api-key': KEYS.alice }, body: chatBody('auth ok x-api-key') }),
    await send(`${gw.url}/v1/chat/completions`, { headers: { 'x-goog-api-key': KEYS.alice }, body: chatBody('auth ok x-goog-api-key') }),
    await send(`${gw.url}/v1/messages`, { headers: anthropic(KEYS.alice), body: msgBody('auth ok anthropic x-api-key') }),
    await send(`${gw.url}/v1/messages`, { headers: { ...bearer(KEYS.alice), 'anthropic-version': '2023-06-01' }, body: msgBody('auth ok anthropic bearer') }),
  ];
  for (const r of ok) assert.equal(r.status, 200, r.text);
  const calls = await mock.calls();
  assert.equal(calls.length, ok.length);
  for (const c of calls) {
    assert.ok(!JSON.stringify(c.headers).includes(KEYS.alice), 'the client key must not go upstream');
  }

  // Informal: what auth failures cost next to a success (no assertion).
  const time = async (headers, n = 20) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await send(`${gw.url}/v1/models`, { method: 'GET', headers });
    }
    return ((performance.now() - t0) / n).toFixed(3);
  };
  t.diagnostic(`GET /v1/models mean ms: valid ${await time(bearer(KEYS.alice))}, unknown ${await time(bearer(bad['unknown key']))}, ` +
    `missing ${await time({})}, 10KB ${await time(bearer(bad['10 KB key']))}`);
});

test('scoped key: a model outside its scope is 403, never reaches the upstream, leaves no ledger row', async () => {
  await mock.reset();
  const before = await keyRow('scoped');
  const oa = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.scoped), body: chatBody('scope probe openai') });
  assertOpenAIError(oa, 403, 'permission_error', 'model_not_allowed');
  // claude-haiku-4-5 matches the "claude-*" entry, which is not in scope.
  const an = await send(`${gw.url}/v1/messages`, {
    headers: anthropic(KEYS.scoped), body: msgBody('scope probe anthropic', { model: 'claude-haiku-4-5' }),
  });
  assertAnthropicError(an, 403, 'permission_error');
  assert.deepEqual(await mock.calls(), [], 'a refused model must not be called upstream');
  // The model in scope works.
  const good = await send(`${gw.url}/v1/messages`, { headers: anthropic(KEYS.scoped), body: msgBody('scope probe allowed') });
  assert.equal(good.status, 200, good.text);
  const calls = await mock.calls();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].body.model, 'claude-sonnet-4-5');
  const after = await keyRow('scoped');
  assert.equal(after.requests - before.requests, 1, 'only the allowed request has a ledger row');
  const u = normUsage(good.json.usage);
  assert.equal(after.input_tokens - before.input_tokens, u.input);
  assert.equal(after.output_tokens - before.output_tokens, u.output);
  assert.equal(after.cost_micros - before.cost_micros, costMicros('up-anthropic/claude-sonnet-4-5', u));
});

test('rpm limit: requests past the limit get 429 + Retry-After; the upstream sees only admitted ones', async () => {
  await mock.reset();
  const results = [];
  for (let i = 0; i < 8; i++) {
    results.push(await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.ratey), body: chatBody(`rpm probe ${i}`) }));
  }
  const an = await send(`${gw.url}/v1/messages`, { headers: anthropic(KEYS.ratey), body: msgBody('rpm probe anthropic') });
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok.length, 5, `rpm: 5 admits five: ${results.map((r) => r.status)}`);
  assert.equal(limited.length, 3);
  for (const r of limited) {
    assertOpenAIError(r, 429, 'rate_limit_error', 'rate_limit_exceeded');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 13, `Retry-After ${r.headers.get('retry-after')}`);
  }
  assertAnthropicError(an, 429, 'rate_limit_error');
  assert.ok(Number(an.headers.get('retry-after')) >= 1, 'Anthropic surface: Retry-After too');
  const calls = await mock.calls();
  assert.equal(calls.length, 5, 'the upstream saw only the admitted requests');
  assert.deepEqual(calls.map((c) => c.body.messages[0].content).sort(),
    results.map((r, i) => [r, i]).filter(([r]) => r.status === 200).map(([, i]) => `rpm probe ${i}`).sort());
});

// What the budget test saw (the restart test exhausts the key itself when
// run alone).
const budget = {};

test('budget under 200 parallel requests: overshoot at most one; ledger cost = upstream usage x prices', async (t) => {
  await mock.reset();
  // Same length for every request, so every request costs the same.
  const bodies = Array.from({ length: 200 }, (_, i) => JSON.stringify(chatBody(`budget probe ${String(i).padStart(3, '0')}`)));
  // The mock's rule: input = ceil(request bytes / 4), output = max_tokens words.
  const expectUsage = { input: Math.ceil(Buffer.byteLength(bodies[0]) / 4), output: 5, cache_read: 0, cache_write: 0 };
  const perRequest = costMicros('up-openai/gpt-4o-mini', expectUsage);
  const allowed = Math.floor(TINY_BUDGET_MICROS / perRequest);
  const res = await Promise.all(bodies.map((b) =>
    send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.tiny), body: b })));
  const ok = res.filter((r) => r.status === 200);
  const refused = res.filter((r) => r.status === 429);
  assert.equal(ok.length + refused.length, 200, `unexpected statuses: ${[...new Set(res.map((r) => r.status))]}`);
  for (const r of refused) assertOpenAIError(r, 429, 'rate_limit_error', 'insufficient_quota');
  assert.ok(ok.length >= 1, 'some requests fit the budget');
  assert.ok(ok.length <= allowed + 1, `admitted ${ok.length}, budget allows ${allowed}: overshoot > 1`);

  // What the upstream reported, request by request (the mock's /__calls
  // carries `usage` when it records it; otherwise the usage in the body the
  // client received, which the gateway passes through unchanged).
  const calls = callsWith(await mock.calls(), 'budget probe');
  assert.equal(calls.length, ok.length, 'the upstream saw exactly the admitted requests');
  const reported = calls.map((c, i) => normUsage(c.usage) || normUsage(ok[i].json.usage));
  for (const r of ok) assert.deepEqual(normUsage(r.json.usage), expectUsage, 'mock usage follows its rule');
  const upstreamCost = reported.reduce((s, u) => s + costMicros('up-openai/gpt-4o-mini', u), 0);
  const upstreamIn = reported.reduce((s, u) => s + u.input, 0);
  const upstreamOut = reported.reduce((s, u) => s + u.output, 0);

  const row = await keyRow('tiny');
  assert.equal(row.requests, ok.length, 'one ledger row per admitted request');
  assert.equal(row.cost_micros, upstreamCost, 'ledger cost = upstream usage x prices');
  assert.equal(row.input_tokens, upstreamIn);
  assert.equal(row.output_tokens, upstreamOut);
  const team = (await spendBy('team')).find((r) => r.team === 'thrift');
  assert.equal(team.cost_micros, upstreamCost, 'the team carries its key\'s spend');

  const k = (await adminKeys()).keys.find((x) => x.name === 'tiny');
  assert.equal(k.budget.spent_micros, upstreamCost);
  assert.equal(k.budget.reserved_micros, 0, 'no reservation left behind');
  assert.equal(k.budget.limit_usd, '0.000400');
  const rem = TINY_BUDGET_MICROS - upstreamCost;
  assert.equal(k.budget.remaining_usd, `0.${String(Math.max(rem, 0)).padStart(6, '0')}`);

  // Exhausted: the next request is refused too.
  const again = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.tiny), body: bodies[0] });
  assertOpenAIError(again, 429, 'rate_limit_error', 'insufficient_quota');
  Object.assign(budget, { spent: upstreamCost, admitted: ok.length, allowed, perRequest, body: bodies[0] });
  t.diagnostic(`tiny budget: ${perRequest} micro-USD/request, allows ${allowed}, admitted ${ok.length} of 200 ` +
    `(overshoot ${Math.max(0, ok.length - allowed)}), ledger ${row.cost_micros} micro-USD = upstream ${upstreamCost}`);
});

test('streams settle from the final usage event; a stream the client cuts is still charged', async (t) => {
  await mock.reset();
  // OpenAI, asking for usage: the ledger takes the final usage chunk.
  let before = await keyRow('streamer');
  const r1 = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.streamer) },
    body: JSON.stringify(chatBody('stream openai usage', { max_tokens: 9, stream: true, stream_options: { include_usage: true } })),
  });
  assert.equal(r1.status, 200);
  const s1 = await readSSE(r1);
  received.push(JSON.stringify(s1.events));
  const usageEv = s1.events.filter((e) => e.json?.usage).pop();
  assert.ok(usageEv, 'usage chunk relayed to a client that asked for it');
  const u1 = normUsage(usageEv.json.usage);
  assert.equal(u1.output, 9);
  let row = await keyRow('streamer');
  assert.equal(row.requests - before.requests, 1);
  assert.equal(row.input_tokens - before.input_tokens, u1.input);
  assert.equal(row.output_tokens - before.output_tokens, u1.output);
  assert.equal(row.cost_micros - before.cost_micros, costMicros('up-openai/gpt-4o-mini', u1));

  // OpenAI, not asking: the gateway must ask the upstream itself, and
  // settle from what the upstream reported (9 words), not an estimate.
  before = row;
  const plain = JSON.stringify(chatBody('stream openai plain', { max_tokens: 9, stream: true }));
  const r1b = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.streamer) }, body: plain,
  });
  assert.equal(r1b.status, 200);
  const s1b = await readSSE(r1b);
  received.push(JSON.stringify(s1b.events));
  const [call1] = callsWith(await mock.calls(), 'stream openai plain');
  assert.equal(call1.body.stream_options?.include_usage, true, 'gateway injects stream_options.include_usage');
  row = await keyRow('streamer');
  assert.equal(row.requests - before.requests, 1);
  assert.equal(row.output_tokens - before.output_tokens, 9, 'output tokens as the upstream reported them');
  assert.ok(row.input_tokens - before.input_tokens >= Math.ceil(Buffer.byteLength(plain) / 4), 'input tokens as the upstream reported them');

  // Anthropic: input from message_start, output from message_delta.
  before = row;
  const r2 = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...anthropic(KEYS.streamer) },
    body: JSON.stringify(msgBody('stream anthropic', { max_tokens: 7, stream: true })),
  });
  assert.equal(r2.status, 200);
  const s2 = await readSSE(r2);
  received.push(JSON.stringify(s2.events));
  const start = s2.events.find((e) => e.event === 'message_start').json.message.usage;
  const delta = s2.events.find((e) => e.event === 'message_delta').json.usage;
  const u2 = normUsage({ ...start, output_tokens: delta.output_tokens });
  assert.equal(u2.output, 7);
  row = await keyRow('streamer');
  assert.equal(row.requests - before.requests, 1);
  assert.equal(row.input_tokens - before.input_tokens, u2.input);
  assert.equal(row.output_tokens - before.output_tokens, u2.output);
  assert.equal(row.cost_micros - before.cost_micros, costMicros('up-anthropic/claude-sonnet-4-5', u2));

  // Cut short by the client after a few chunks of a slow stream.
  const cut = async (surface) => {
    const b = row;
    const marker = `stream cut ${surface} [[mock chunks=40 interval_ms=50]]`;
    const ac = new AbortController();
    const r = await fetch(`${gw.url}${surface === 'openai' ? '/v1/chat/completions' : '/v1/messages'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(surface === 'openai' ? bearer(KEYS.streamer) : anthropic(KEYS.streamer)) },
      body: JSON.stringify((surface === 'openai' ? chatBody : msgBody)(marker, { max_tokens: 100, stream: true })),
      signal: ac.signal,
    });
    assert.equal(r.status, 200);
    let deltas = 0;
    const got = await readSSE(r, {
      onEvent: (ev) => {
        if (ev.json?.choices?.[0]?.delta?.content || ev.json?.delta?.type === 'text_delta') deltas++;
        return deltas < 5;
      },
    });
    received.push(JSON.stringify(got.events));
    ac.abort();
    const now = await eventually(async () => {
      const x = await keyRow('streamer');
      return x.requests > b.requests ? x : null;
    }, 5000);
    assert.ok(now, `${surface}: the cut stream has a ledger row`);
    assert.equal(now.requests - b.requests, 1);
    const out = now.output_tokens - b.output_tokens;
    assert.ok(out > 0, `${surface}: the cut stream is charged output tokens`);
    assert.ok(now.input_tokens - b.input_tokens > 0, `${surface}: and input tokens`);
    assert.ok(now.cost_micros - b.cost_micros > 0, `${surface}: and money`);
    const call = await eventually(async () => callsWith(await mock.calls(), `stream cut ${surface}`).find((c) => c.closed_early));
    assert.ok(call, `${surface}: the gateway cancelled the upstream transfer`);
    row = now;
    return { deltas, out };
  };
  const cutOA = await cut('openai');
  const cutAN = await cut('anthropic');
  t.diagnostic(`cut streams: openai ${cutOA.deltas} deltas seen, ${cutOA.out} output tokens charged; ` +
    `anthropic ${cutAN.deltas} deltas seen, ${cutAN.out} output tokens charged`);

  // What the admin API does not show: status and whether usage was
  // estimated. The last five streamer rows are this test's, in order.
  const sq = spawnSync(process.env.SQLITE3_BIN || 'sqlite3', ['-readonly', mainState,
    "SELECT status, estimated, output_tokens FROM requests WHERE key='streamer' ORDER BY id DESC LIMIT 5"], { encoding: 'utf8' });
  assert.equal(sq.status, 0, `sqlite3 CLI (scripts/install-deps --test installs it): ${sq.error || sq.stderr}`);
  const rows = sq.stdout.trim().split('\n').map((l) => l.split('|').map(Number)).reverse();
  assert.deepEqual(rows.map((r) => r[0]), [200, 200, 200, 499, 499], `statuses: ${sq.stdout}`);
  assert.deepEqual(rows.slice(0, 3).map((r) => r[1]), [0, 0, 0], 'complete streams settle from reported usage, not an estimate');
  assert.deepEqual(rows.slice(3).map((r) => r[1]), [1, 1], 'cut streams without reported usage are marked estimated');
  for (const r of rows) assert.ok(r[2] > 0);
});

test('an OpenAI stream client that did not ask for usage gets no usage chunk', async () => {
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.streamer) },
    body: JSON.stringify(chatBody('stream openai no usage', { max_tokens: 3, stream: true })),
  });
  assert.equal(r.status, 200);
  const s = await readSSE(r);
  received.push(JSON.stringify(s.events));
  assert.equal(s.events.at(-1).data, '[DONE]');
  const chunks = s.events.filter((e) => e.json);
  assert.ok(chunks.length > 0);
  // What OpenAI sends without stream_options: every chunk has a choice and
  // no usage; code like chunk.choices[0].delta relies on it.
  for (const c of chunks) {
    assert.ok(c.json.choices.length > 0, `chunk without choices: ${c.data}`);
    assert.ok(!c.json.usage, `unrequested usage: ${c.data}`);
  }
});

test('a cut Anthropic stream is charged at least the output it delivered', async () => {
  await mock.reset();
  const b = await keyRow('streamer');
  const ac = new AbortController();
  const r = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...anthropic(KEYS.streamer) },
    body: JSON.stringify(msgBody('stream cut undercharge [[mock chunks=40 interval_ms=50]]', { max_tokens: 100, stream: true })),
    signal: ac.signal,
  });
  let deltas = 0;
  const got = await readSSE(r, { onEvent: (ev) => { if (ev.json?.delta?.type === 'text_delta') deltas++; return deltas < 8; } });
  received.push(JSON.stringify(got.events));
  ac.abort();
  const now = await eventually(async () => {
    const x = await keyRow('streamer');
    return x.requests > b.requests ? x : null;
  }, 5000);
  assert.ok(now);
  assert.ok(now.output_tokens - b.output_tokens >= deltas,
    `delivered ${deltas} words, charged ${now.output_tokens - b.output_tokens} output tokens`);
});

test('admin API: keys and spend without secrets; the admin key is only an admin key', async () => {
  // Traffic of its own, so what follows does not rest on earlier tests:
  // alice (team platform) on both models, streamer on a stream.
  assert.equal((await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('admin traffic') })).status, 200);
  assert.equal((await send(`${gw.url}/v1/messages`, { headers: anthropic(KEYS.alice), body: msgBody('admin traffic') })).status, 200);
  const st = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...bearer(KEYS.streamer) },
    body: JSON.stringify(chatBody('admin traffic stream', { stream: true })),
  });
  assert.equal(st.status, 200);
  received.push(JSON.stringify((await readSSE(st)).events));
  const keys = await adminKeys();
  const text = JSON.stringify(keys);
  assert.deepEqual(keys.keys.map((k) => k.name), KEY_NAMES);
  assert.deepEqual(keys.teams.map((x) => x.name), ['platform', 'thrift']);
  const by = Object.fromEntries(keys.keys.map((k) => [k.name, k]));
  assert.equal(by.alice.team, 'platform');
  assert.equal(by.office.team, null);
  assert.deepEqual(by.scoped.models, ['claude-sonnet-4-5']);
  assert.deepEqual(by.alice.models, ['*']);
  assert.deepEqual(by.ratey.limits, { rpm: 5, tpm: 0 });
  assert.equal(by.expired.expires, Date.UTC(2020, 0, 1) / 1000);
  assert.equal(by.streamer.budget.per, 'month');
  assert.equal(by.streamer.budget.limit_usd, '10.000000');
  assert.ok(by.streamer.budget.spent_micros > 0);
  assert.equal(typeof by.streamer.budget.remaining_usd, 'string');
  assert.equal(by.loader.budget.per, 'total');
  const platform = keys.teams.find((x) => x.name === 'platform').budget;
  assert.equal(platform.limit_usd, '100.000000');
  assert.ok(platform.spent_micros > 0, 'team spend includes its keys\' requests');
  assert.doesNotMatch(text, /[0-9a-f]{64}/i, 'no hash in /admin/keys');
  assert.doesNotMatch(text, /sha256|hash/i);
  assert.doesNotMatch(text, /sk-sluice-test-/, 'no raw key in /admin/keys');

  // /admin/spend by every grouping agrees on the totals.
  const total = (rows) => rows.reduce((a, r) => ({ n: a.n + r.requests, c: a.c + r.cost_micros }), { n: 0, c: 0 });
  const byKey = await spendBy('key');
  assert.ok(byKey.every((r) => KEY_NAMES.includes(r.key)), `only known keys have rows (no rows for refused auth): ${JSON.stringify(byKey)}`);
  assert.ok(!byKey.some((r) => r.key === 'expired' || r.key === 'office'), 'refused keys have no rows');
  const all = total(byKey);
  assert.ok(all.n > 0);
  for (const g of ['team', 'model', 'day']) {
    const rows = await spendBy(g);
    assert.deepEqual(total(rows), all, `by=${g} totals`);
    for (const r of rows) assert.ok(g in r, `rows carry '${g}'`);
  }
  const models = (await spendBy('model')).map((r) => r.model);
  assert.ok(models.includes('gpt-4o-mini') && models.includes('claude-sonnet-4-5'), models.join());
  const today = new Date().toISOString().slice(0, 10);
  const days = await spendBy('day');
  assert.deepEqual(days.map((r) => r.day), [today]);
  // since/until, as unix seconds and as dates; until is exclusive.
  const now = Math.floor(Date.now() / 1000);
  assert.deepEqual(total(await spendBy('key', `&since=${today}`)), all);
  assert.deepEqual(total(await spendBy('key', `&since=${now - 3600}&until=${now + 3600}`)), all);
  assert.deepEqual(await spendBy('key', `&since=${now + 86400 * 2}`), []);
  assert.deepEqual(await spendBy('key', `&until=${today}`), [], 'until is exclusive: nothing before today 00:00');
  assert.deepEqual(await spendBy('key', '&until=1'), []);
  const badBy = await admin('/admin/spend?by=password');
  assertOpenAIError(badBy, 400, 'invalid_request_error');
  const badSince = await admin('/admin/spend?since=yesterday');
  assertOpenAIError(badSince, 400, 'invalid_request_error');

  // Wrong, missing and client keys are not admin keys.
  for (const h of [{}, bearer('sk-sluice-test-admin-000000000000000000000000'), bearer(KEYS.alice), { 'x-api-key': KEYS.alice }]) {
    for (const p of ['/admin/keys', '/admin/spend?by=key']) {
      assertOpenAIError(await send(`${gw.url}${p}`, { method: 'GET', headers: h }), 401, 'authentication_error');
    }
  }
  assert.equal((await send(`${gw.url}/admin/keys`, { method: 'POST', headers: bearer(ADMIN_KEY), body: {} })).status, 405);
  assert.equal((await admin('/admin/nothing')).status, 404);
  // The admin key cannot be spent on inference.
  assertOpenAIError(await send(`${gw.url}/v1/chat/completions`, { headers: bearer(ADMIN_KEY), body: chatBody('admin infers') }),
    401, 'authentication_error', 'invalid_api_key');
  assertAnthropicError(await send(`${gw.url}/v1/messages`, { headers: anthropic(ADMIN_KEY), body: msgBody('admin infers') }),
    401, 'authentication_error');
});

test('restart on the same state: spend survives SIGTERM, the exhausted key stays refused', async () => {
  // `tiny` exhausted (by the budget test, or here): a few dozen requests
  // at most, its budget being 400 micro-USD.
  const body = budget.body || JSON.stringify(chatBody('budget probe 000'));
  let r;
  for (let i = 0; i < 100; i++) {
    r = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.tiny), body });
    if (r.status !== 200) break;
  }
  assertOpenAIError(r, 429, 'rate_limit_error', 'insufficient_quota');
  const spentBefore = (await adminKeys()).keys.find((k) => k.name === 'tiny').budget.spent_micros;
  assert.ok(spentBefore > 0);
  const before = await adminKeys();
  const ledgerBefore = await spendBy('key');
  await gw.stop(); // SIGTERM, exit 0
  gw = await startGov({ mock, port: gw.port, state: mainState, args: ['--log-level', 'debug'] });
  const afterKeys = await adminKeys();
  const pick = (k) => ({ name: k.name, budget: k.budget && { ...k.budget } });
  assert.deepEqual(afterKeys.keys.map(pick), before.keys.map(pick), 'key spend restored from the ledger');
  assert.deepEqual(afterKeys.teams, before.teams, 'team spend restored from the ledger');
  assert.deepEqual(await spendBy('key'), ledgerBefore);
  const tiny = afterKeys.keys.find((k) => k.name === 'tiny');
  assert.equal(tiny.budget.spent_micros, spentBefore);
  if (budget.spent !== undefined) assert.equal(spentBefore, budget.spent, 'nothing spent since the budget test');
  const again = await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.tiny), body });
  assertOpenAIError(again, 429, 'rate_limit_error', 'insufficient_quota');
  // An unlimited key still works after the restart.
  assert.equal((await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('after restart') })).status, 200);
});

test('crash: kill -9 three times under load; every request the client saw complete is in the ledger', async (t) => {
  await mock.reset();
  const state = join(newStateDir(), 'crash.db');
  const port = await freePort();
  let g = await startGov({ mock, port, state });
  const TOTAL = 300;
  const CONCURRENCY = 20;
  const KILL_AT = [50, 110, 170];
  const completed = [];
  let failed = 0;
  const CUT_BY_KILL = ['UND_ERR_SOCKET', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE'];
  const cutBy = {};
  let next = 0;
  let kills = 0;
  let up = Promise.resolve();
  let crashing = null;

  const crash = async () => {
    let release;
    up = new Promise((r) => { release = r; });
    const res = await g.kill9();
    assert.equal(res.signal, 'SIGKILL');
    kills++;
    g = await startGov({ mock, port, state });
    release();
  };

  const worker = async () => {
    while (next < TOTAL) {
      await up;
      const i = next++;
      const content = `crash load ${String(i).padStart(3, '0')} [[mock delay_ms=15]]`;
      try {
        const r = await fetch(`${g.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...bearer(KEYS.loader) },
          body: JSON.stringify(chatBody(content)),
          signal: AbortSignal.timeout(5000),
        });
        const text = await r.text();
        keep(r, text);
        // Every answer that arrives whole is a success: a kill cuts
        // connections, it does not make the gateway answer an error.
        assert.equal(r.status, 200, text);
        const j = JSON.parse(text);
        assert.ok(j.choices?.[0]?.message?.content && j.usage, text);
        completed.push(normUsage(j.usage));
      } catch (e) {
        // Cut by the kill (may or may not be in the ledger): the socket
        // closed or reset under the request, or, between kill and restart,
        // the connection was refused. Anything else fails the test.
        const code = e.cause?.code;
        if (!(e instanceof TypeError) || !CUT_BY_KILL.includes(code)) throw e;
        cutBy[code] = (cutBy[code] || 0) + 1;
        failed++;
      }
      if (kills < KILL_AT.length && completed.length >= KILL_AT[kills] && !crashing) {
        crashing = crash().finally(() => { crashing = null; });
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  if (crashing) await crashing;
  assert.equal(kills, 3, `killed ${kills} times`);

  const rows = await (async () => {
    const r = await send(`${g.url}/admin/spend?by=key`, { method: 'GET', headers: bearer(ADMIN_KEY) });
    assert.equal(r.status, 200, r.text);
    return r.json.rows;
  })();
  await g.stop();
  const row = rows.find((r) => r.key === 'loader') || { requests: 0, input_tokens: 0, output_tokens: 0, cost_micros: 0 };
  const sum = completed.reduce((a, u) => ({ input: a.input + u.input, output: a.output + u.output }), { input: 0, output: 0 });
  const cost = completed.reduce((a, u) => a + costMicros('up-openai/gpt-4o-mini', u), 0);
  const upstream = callsWith(await mock.calls(), 'crash load').length;
  t.diagnostic(`crash: ${TOTAL} requests, ${completed.length} completed, ${failed} cut, ${kills} kills; ` +
    `ledger ${row.requests} rows / ${row.input_tokens}+${row.output_tokens} tokens / ${row.cost_micros} micro-USD; ` +
    `completed ${sum.input}+${sum.output} tokens / ${cost} micro-USD; upstream saw ${upstream}; cut by ${JSON.stringify(cutBy)}`);
  assert.equal(completed.length + failed, TOTAL);
  assert.ok(row.requests >= completed.length, `ledger has ${row.requests} rows for ${completed.length} completed requests`);
  assert.ok(row.input_tokens >= sum.input && row.output_tokens >= sum.output, 'ledger tokens cover completed requests');
  assert.ok(row.cost_micros >= cost);
  assert.ok(row.requests <= upstream, 'no ledger row without an upstream call');
});

test('planted secrets: no provider key or client key in logs, answers, state or binary', async () => {
  // More traffic that could leak: auth failures, upstream errors, successes.
  await mock.reset();
  const errs = [
    await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('secret probe [[mock status=500]]') }),
    await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('secret probe [[mock status=401]]') }),
    await send(`${gw.url}/v1/messages`, { headers: anthropic(KEYS.alice), body: msgBody('secret probe [[mock status=401]]') }),
    await send(`${gw.url}/v1/messages`, { headers: anthropic(KEYS.alice), body: msgBody('secret probe [[mock status=529]]') }),
    await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('secret probe [[mock fail=reset]]') }),
  ];
  assert.equal(errs[0].status, 500);
  assert.equal(errs[1].status, 401);
  assert.equal(errs[2].status, 401);
  assert.ok(errs[4].status >= 500, `reset upstream: ${errs[4].status}`);
  assert.equal((await send(`${gw.url}/v1/chat/completions`, { headers: bearer(KEYS.alice), body: chatBody('secret probe ok') })).status, 200);
  assert.equal((await send(`${gw.url}/v1/chat/completions`, { headers: bearer('sk-PLANTED-openai-8c1d0e5a7b3f49e2a6d4'), body: chatBody('x') })).status, 401);
  for (const k of Object.values(KEYS)) {
    await send(`${gw.url}/v1/messages`, { headers: anthropic(k), body: msgBody('secret probe all keys', { model: 'claude-nope-1' }) });
  }
  // The provider keys did go upstream (so they were really loaded)...
  const calls = await mock.calls();
  assert.ok(calls.some((c) => c.headers.authorization === `Bearer ${PLANTED.SLUICE_GOV_OPENAI_KEY}`));
  assert.ok(calls.some((c) => c.headers['x-api-key'] === PLANTED.SLUICE_GOV_ANTHROPIC_KEY));
  // ...and client keys did not.
  for (const c of calls) {
    const h = JSON.stringify(c.headers);
    for (const k of [...Object.values(KEYS), ADMIN_KEY]) assert.ok(!h.includes(k), 'client key forwarded upstream');
  }

  const needles = [...Object.values(PLANTED), ...Object.values(KEYS), ADMIN_KEY, 'PLANTED'];
  const haystacks = [
    ['responses (status, headers, bodies)', Buffer.from(received.join('\n'), 'latin1')],
    ...gatewayLogs.map((f, i) => [`gateway #${i} stderr`, Buffer.from(f())]),
  ];
  for (const d of stateDirs) {
    for (const f of ['gov.db', 'gov.db-wal', 'gov.db-shm', 'crash.db', 'crash.db-wal', 'crash.db-shm']) {
      const p = join(d, f);
      if (existsSync(p)) haystacks.push([`state file ${f}`, readFileSync(p)]);
    }
  }
  haystacks.push(['sluice-gov binary', readFileSync(GOV_BIN)]);
  // The haystacks are real: six gateways (main, its restart, the crash
  // test's four lives) logged requests, and the ledgers hold rows.
  assert.equal(gatewayLogs.length, 6, 'this last test greps what the whole file produced, the restart and crash tests\' gateways included');
  for (const f of gatewayLogs) assert.match(f(), /sluice listening on/);
  assert.match(gatewayLogs[0](), /key=alice/, 'access log lines are in the grep');
  assert.ok(haystacks.some(([w]) => w.startsWith('state file')), 'state files found');
  assert.ok(received.length > 500, `kept ${received.length} responses`);
  const hits = [];
  for (const [where, buf] of haystacks) {
    for (const n of needles) {
      if (buf.includes(Buffer.from(n))) hits.push(`${n.slice(0, 24)}... in ${where}`);
    }
  }
  // The binary carries hashes only: not even the test key prefix.
  if (readFileSync(GOV_BIN).includes(Buffer.from('sk-sluice-test-'))) hits.push('sk-sluice-test- in the binary');
  assert.deepEqual(hits, []);
});
