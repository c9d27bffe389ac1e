// Security regressions (issue 20), end to end: one test group per numbered
// item of the issue, each on every client surface the class applies to
// (OpenAI chat, Anthropic messages, Gemini generateContent, legacy
// /v1/completions). The gateway is compiled from security.yaml (keys, USD
// budgets, glob price rules, an unpriced glob route, OpenAI, Anthropic and
// Gemini-kind providers, all at the mock upstream); item 11
// uses a second one compiled from security-slots.yaml (six connection
// slots). The test starts and stops both itself: SLUICE_SECURITY_BIN and
// SLUICE_SECURITY_SLOTS_BIN name them.
//
// The raw client keys below are test fixtures; the specs hold only their
// SHA-256. Upstream behaviour comes from mock directives (usage=none,
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, readSSE } from './lib/harness.mjs';
import {
  env, securityProcesses, BUDGET_MICROS, DEFAULT_LIMIT, KEYS, MAX_LIMIT, PROVIDER_ENV, SURFACES,
  admin, ask, askStream, assertError, authHeaders, build, callsWith, costMicros, delta, jsonText,
  keyBudget, keyRow, ledgerSettled, modelRow, newTag, normUsage, raw, rawPost, send, tokensOf,
  upstreamLimit,
} from './lib/security.mjs';

securityProcesses();

describe('1. absurd output limits', () => {
  const HUGE = ['9223372036854775807', '9223371936854775808', '4611686018427387904', '10000001'];
  const BAD = [...HUGE, '0', '-1', '2.5', '"64"'];
  // Every field a surface reads the limit from.
  const FIELDS = [
    ['openai', 'max_tokens'], ['openai', 'max_completion_tokens'], ['anthropic', 'max_tokens'],
    ['gemini', 'maxOutputTokens'], ['gemini', 'max_output_tokens'], ['legacy', 'max_tokens'],
  ];
  const MODEL = { openai: 'gpt-4o-mini', anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-flash', legacy: 'gpt-4o-mini' };

  it('a limit near INT64_MAX or over 10,000,000 is a 400 on every surface; nothing reaches the upstream', async () => {
    const tag = newTag();
    const before = { rich: await keyRow('rich'), free: await keyRow('free') };
    for (const key of ['rich', 'free']) {
      for (const [surface, field] of FIELDS) {
        for (const v of BAD) {
          const label = `${key} ${surface} ${field}=${v}`;
          const res = await ask(surface, { model: MODEL[surface], key: KEYS[key], text: `limit ${tag}`, limit: { [field]: raw(v) } });
          const msg = assertError(surface, res, 400, label);
          assert.match(msg, new RegExp(field), `${label}: the message names the field`);
        }
      }
    }
    assert.deepEqual(await callsWith(tag), [], 'no refused limit reached the upstream');
    // The largest allowed limit is admitted and sent as it is (to a model
    // the catalog does not know: a known one gets its own limit, issue 16).
    const ok = await ask('openai', { model: 'open-priced-max', key: KEYS.rich, text: `limit max ${tag}`, limit: { max_tokens: MAX_LIMIT } });
    assert.equal(ok.status, 200, ok.text);
    const calls = await callsWith(tag);
    assert.equal(calls.length, 1);
    assert.equal(upstreamLimit(calls[0]), MAX_LIMIT);
    const free = await ask('openai', { model: 'gpt-4o-mini', key: KEYS.free, text: `limit barrier ${tag}`, limit: { max_tokens: 3 } });
    assert.equal(free.status, 200);
    assert.equal(delta(before.rich, await keyRow('rich')).requests, 1, 'refusals leave no ledger row');
    assert.equal(delta(before.free, await ledgerSettled('free', before.free, 1)).requests, 1, 'refusals leave no ledger row');
  });

  it('a key over its budget gets no 200 whatever limit it sends', async () => {
    // Spend the budget with the smallest requests until one is refused.
    let admitted = 0;
    let refused = null;
    for (let i = 0; i < 30 && !refused; i++) {
      const r = await ask('openai', { model: 'gpt-4o', key: KEYS.broke, text: `exhaust ${i}`, limit: { max_tokens: 1 } });
      if (r.status === 200) admitted++;
      else refused = r;
    }
    assert.ok(admitted >= 1, 'the budget admitted something');
    assert.ok(refused, 'the budget ran out');
    assertError('openai', refused, 429, 'exhausted');
    const spent = await keyRow('broke');
    assert.ok(spent.cost_micros <= BUDGET_MICROS.broke, `spent ${spent.cost_micros} of ${BUDGET_MICROS.broke}`);

    // Probes cost more than what is left (the refused request was smaller),
    // whatever their limit says; an absurd limit must not make them free.
    const tag = newTag();
    const pad = 'p'.repeat(2000);
    const probeModel = { openai: 'gpt-4o', anthropic: 'claude-sonnet-4-5', gemini: 'gemini-2.5-flash', legacy: 'gpt-4o' };
    const field = { openai: 'max_tokens', anthropic: 'max_tokens', gemini: 'maxOutputTokens', legacy: 'max_tokens' };
    const values = [undefined, '1', '100', '4096', String(MAX_LIMIT), ...HUGE, '9223372036854775808', '-9223372036854775808'];
    const got = [];
    for (const surface of SURFACES) {
      for (const v of values) {
        for (const stream of [false, true]) {
          const limit = v === undefined ? {} : { [field[surface]]: raw(v) };
          const { path, body } = build(surface, { model: probeModel[surface], text: `${pad} ${tag}`, limit, stream });
          const res = await send(path, { headers: authHeaders(surface, KEYS.broke), body });
          got.push({ surface, v, res, label: `${surface}${stream ? ' stream' : ''} limit ${v ?? '(none)'}` });
        }
      }
    }
    assert.deepEqual(got.filter((g) => g.res.status === 200).map((g) => g.label), [], 'answered over budget');
    for (const { surface, v, res, label } of got) {
      // A limit sluice accepts is priced and refused by the budget; any
      // other is refused before pricing.
      const valid = v === undefined || (BigInt(v) >= 1n && BigInt(v) <= BigInt(MAX_LIMIT));
      assertError(surface, res, valid ? 429 : 400, label);
    }
    assert.deepEqual(await callsWith(tag), [], 'nothing reached the upstream');
    const after = await keyRow('broke');
    assert.deepEqual(after, spent, 'no ledger row, no spend');
  });
});

describe('2. unpriced and glob-priced routes under a USD budget', () => {
  it('a glob route whose upstream name has no price is a 400 naming the model; no upstream call, no ledger row', async () => {
    const tag = newTag();
    const before = await keyRow('rich');
    for (const surface of SURFACES) {
      for (const stream of [false, true]) {
        const model = `open-unpriced-${surface}${stream ? '-stream' : ''}`;
        const { path, body } = build(surface, { model, text: `unpriced ${tag}`, limit: surface === 'gemini' ? { maxOutputTokens: 5 } : { max_tokens: 5 }, stream });
        const res = await send(path, { headers: authHeaders(surface, KEYS.rich), body });
        const msg = assertError(surface, res, 400, `${surface} ${model}`);
        assert.ok(msg.includes(model), `${surface}: the message names the model: ${msg}`);
        assert.match(msg, /price/);
      }
    }
    // A key whose only budget is its team's is under a USD budget too.
    const member = await ask('openai', { model: 'open-unpriced-member', key: KEYS.member, text: `unpriced ${tag}`, limit: { max_tokens: 5 } });
    assert.ok(assertError('openai', member, 400, 'team-budgeted key').includes('open-unpriced-member'));
    assert.deepEqual(await callsWith(tag), [], 'an unpriced target is never called under a USD budget');
    // The same route serves a key without a budget: only the money rule refused.
    const free = await ask('openai', { model: 'open-unpriced-openai', key: KEYS.free, text: `unpriced free ${tag}`, limit: { max_tokens: 5 } });
    assert.equal(free.status, 200, free.text);
    assert.equal((await callsWith(tag)).length, 1);
    assert.deepEqual(await keyRow('rich'), before, 'no ledger row for the refused requests');
  });

  it('glob price rules price glob routes (an exact price wins over the glob)', async () => {
    const cases = [
      ['openai', 'open-priced-model-1', 'up-openai/open-priced-*'],
      ['legacy', 'open-priced-model-2', 'up-openai/open-priced-*'],
      ['anthropic', 'claude-glob-test-1', 'up-anthropic/claude-*'],
      ['openai', 'claude-glob-test-2', 'up-anthropic/claude-*'],
      ['anthropic', 'claude-haiku-4-5', 'up-anthropic/claude-haiku-4-5'],
      ['gemini', 'gemini-glob-test-1', 'up-gemini/gemini-*'],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash'],
    ];
    for (const [surface, model, priceKey] of cases) {
      const tag = newTag();
      const before = await modelRow(model);
      const res = await ask(surface, { model, key: KEYS.rich, text: `glob price ${tag} [[mock words=9]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 40 } : { max_tokens: 40 } });
      assert.equal(res.status, 200, `${surface} ${model}: ${res.text}`);
      const [call] = await callsWith(tag);
      const u = normUsage(call.usage);
      const d = delta(before, await modelRow(model));
      assert.deepEqual({ requests: d.requests, input: d.input, output: d.output }, { requests: 1, ...u },
        `${surface} ${model}: the ledger holds what the provider reported`);
      assert.equal(d.cost, costMicros(priceKey, u), `${surface} ${model}: priced by ${priceKey}`);
      assert.ok(d.cost > 0);
    }
  });
});

describe('3. one output limit for admission and upstream', () => {
  it('two spellings that disagree are a 400, before any upstream call', async () => {
    const tag = newTag();
    const pairs = [
      ['openai', { max_tokens: 1, max_completion_tokens: 4000 }],
      ['openai', { max_tokens: 4000, max_completion_tokens: 1 }],
      ['legacy', { max_tokens: 1, max_completion_tokens: 4000 }],
      ['gemini', { maxOutputTokens: 1, max_output_tokens: 4000 }],
    ];
    for (const [surface, limit] of pairs) {
      const res = await ask(surface, { model: surface === 'gemini' ? 'gemini-2.5-flash' : 'gpt-4o-mini', key: KEYS.rich, text: `pair ${tag}`, limit });
      const msg = assertError(surface, res, 400, `${surface} ${JSON.stringify(limit)}`);
      assert.match(msg, /disagree/);
    }
    // The same for a key without a budget: the rule is about one limit.
    const free = await ask('openai', { model: 'gpt-4o-mini', key: KEYS.free, text: `pair ${tag}`, limit: { max_tokens: 1, max_completion_tokens: 4000 } });
    assertError('openai', free, 400, 'free key');
    assert.deepEqual(await callsWith(tag), []);
    // Spellings that agree are one limit.
    const ok = await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: `pair ok ${tag}`, limit: { max_tokens: 7, max_completion_tokens: 7 } });
    assert.equal(ok.status, 200, ok.text);
    const [call] = await callsWith(tag);
    assert.equal(call.body.max_tokens, 7);
    assert.equal(call.body.max_completion_tokens, 7);
  });

  it('the upstream receives the limit the client sent, translated where the protocol differs', async () => {
    const cases = [
      ['openai', 'gpt-4o-mini', { max_tokens: 7 }, 7],
      ['openai', 'gpt-4o-mini', { max_completion_tokens: 9 }, 9],
      ['openai', 'gpt-via-anthropic', { max_completion_tokens: 13 }, 13],
      ['openai', 'gpt-via-anthropic', { max_tokens: 14 }, 14],
      ['anthropic', 'claude-sonnet-4-5', { max_tokens: 15 }, 15],
      ['anthropic', 'claude-via-openai', { max_tokens: 17 }, 17],
      ['gemini', 'gemini-2.5-flash', { maxOutputTokens: 19 }, 19],
      ['gemini', 'gpt-via-anthropic', { maxOutputTokens: 21 }, 21],
      ['gemini', 'gpt-4o-mini', { max_output_tokens: 23 }, 23],
      ['legacy', 'gpt-4o-mini', { max_tokens: 25 }, 25],
      ['legacy', 'gpt-via-anthropic', { max_tokens: 27 }, 27],
    ];
    for (const key of ['rich', 'free']) {
      for (const [surface, model, limit, want] of cases) {
        const tag = newTag();
        const res = await ask(surface, { model, key: KEYS[key], text: `limit pass ${tag}`, limit });
        assert.equal(res.status, 200, `${key} ${surface} ${model}: ${res.text}`);
        const calls = await callsWith(tag);
        assert.equal(calls.length, 1);
        assert.equal(upstreamLimit(calls[0]), want, `${key} ${surface} -> ${calls[0].path}: ${JSON.stringify(calls[0].body)}`);
      }
    }
  });

  it('a budgeted key without a limit gets 4096 written into the upstream request; a key without a budget does not', async () => {
    const cases = [
      ['openai', 'gpt-4o-mini', 'max_completion_tokens'],
      ['openai', 'gpt-via-anthropic', null],
      ['anthropic', 'claude-sonnet-4-5', null],
      ['anthropic', 'claude-via-openai', null],
      ['gemini', 'gemini-2.5-flash', null],
      ['gemini', 'gpt-4o-mini', null],
      ['legacy', 'gpt-4o-mini', 'max_completion_tokens'],
      ['legacy', 'gpt-via-anthropic', null],
    ];
    for (const [surface, model, field] of cases) {
      for (const stream of [false, true]) {
        const tag = newTag();
        const label = `${surface}${stream ? ' stream' : ''} ${model}`;
        if (stream) {
          const r = await askStream(surface, { model, key: KEYS.rich, text: `inject ${tag}` });
          assert.equal(r.status, 200, label);
          await readSSE(r);
        } else {
          const r = await ask(surface, { model, key: KEYS.rich, text: `inject ${tag}` });
          assert.equal(r.status, 200, `${label}: ${r.text}`);
        }
        const [call] = await callsWith(tag);
        assert.equal(upstreamLimit(call), DEFAULT_LIMIT, `${label}: ${JSON.stringify(call.body)}`);
        // OpenAI: the spelling every current model takes.
        if (field) assert.equal(call.body[field], DEFAULT_LIMIT, `${label}: ${JSON.stringify(call.body)}`);
      }
    }
    // A budget of the key's team is a budget too.
    const teamTag = newTag();
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.member, text: `inject ${teamTag}` })).status, 200);
    assert.equal((await callsWith(teamTag))[0].body.max_completion_tokens, DEFAULT_LIMIT, 'team budget: injected');
    // No budget, nothing to protect: the request goes as the client sent it.
    const tag = newTag();
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.free, text: `no inject ${tag}` })).status, 200);
    const [call] = await callsWith(tag);
    assert.equal(call.body.max_completion_tokens, undefined);
    assert.equal(call.body.max_tokens, undefined);
  });

  it('the reservation held in flight is the worst case of the limit the upstream received', async () => {
    // A slow answer keeps the reservation visible on /admin/keys. Without
    // a limit from the client sluice writes 4096 and must reserve exactly
    // that; with one, that one (in whichever field the surface uses).
    for (const [surface, model, priceKey, limit, want] of [
      ['openai', 'gpt-4o', 'up-openai/gpt-4o', {}, DEFAULT_LIMIT],
      ['anthropic', 'claude-sonnet-4-5', 'up-anthropic/claude-sonnet-4-5', {}, DEFAULT_LIMIT],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash', {}, DEFAULT_LIMIT],
      ['openai', 'gpt-4o', 'up-openai/gpt-4o', { max_completion_tokens: 3000 }, 3000],
      ['anthropic', 'claude-sonnet-4-5', 'up-anthropic/claude-sonnet-4-5', { max_tokens: 3000 }, 3000],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash', { maxOutputTokens: 6000 }, 6000],
      ['gemini', 'gpt-4o', 'up-openai/gpt-4o', { maxOutputTokens: 2500 }, 2500],
      ['legacy', 'gpt-4o', 'up-openai/gpt-4o', { max_tokens: 3500 }, 3500],
    ]) {
      const tag = newTag();
      assert.equal((await keyBudget('rich')).reserved_micros, 0);
      const slow = ask(surface, { model, key: KEYS.rich, limit, text: `reserve ${tag} [[mock delay_ms=1500]]` });
      const seen = await eventually(async () => {
        const calls = await callsWith(`reserve ${tag}`);
        const b = await keyBudget('rich');
        return calls.length === 1 && b.reserved_micros > 0 ? { call: calls[0], reserved: b.reserved_micros } : null;
      }, 1400, 20);
      const res = await slow;
      assert.equal(res.status, 200, res.text);
      assert.ok(seen, `${surface}: a reservation while the request was in flight`);
      const sent = upstreamLimit(seen.call);
      assert.equal(sent, want, `${surface} ${model}: ${JSON.stringify(seen.call.body)}`);
      // Input is estimated from the body sluice holds (the client's, with
      // a limit written in, or its chat form): within a few tokens of the
      // upstream body, which differs from it by a few members at most.
      const bodyLen = Buffer.byteLength(JSON.stringify(seen.call.body));
      const lo = costMicros(priceKey, { input: Math.max(tokensOf(bodyLen) - 16, 0), output: want });
      const hi = costMicros(priceKey, { input: tokensOf(bodyLen) + 16, output: want });
      assert.ok(seen.reserved >= lo && seen.reserved <= hi,
        `${surface} ${model}: reserved ${seen.reserved} micro-USD, the worst case of ${want} output tokens is ${lo}..${hi}`);
      assert.equal((await keyBudget('rich')).reserved_micros, 0, 'released after the answer');
    }
  });

  it('20 parallel requests spend at most the budget plus one reservation; the upstream limit is the reserved one', async () => {
    const tag = newTag();
    const WORDS = 400;
    // Half send two limits that disagree (the upstream would obey the
    // larger), half one limit; every answer is as long as its limit.
    const bodies = Array.from({ length: 20 }, (_, i) => {
      const limit = i % 2 ? { max_tokens: 1, max_completion_tokens: WORDS } : { max_completion_tokens: WORDS };
      // A slow upstream: all twenty are in flight before any settles.
      return build('openai', { model: 'gpt-4o', text: `race ${tag} ${String(i).padStart(2, '0')} [[mock words=${WORDS} delay_ms=300]]`, limit });
    });
    const res = await Promise.all(bodies.map(({ path, body }) =>
      send(path, { headers: authHeaders('openai', KEYS.racer), body })));
    const ok = res.filter((r) => r.status === 200);
    const calls = await callsWith(tag);
    // The worst case of one request: its prompt estimate and WORDS out.
    const longest = Math.max(...bodies.map(({ body }) => Buffer.byteLength(JSON.stringify(body))));
    const oneReservation = costMicros('up-openai/gpt-4o', { input: tokensOf(longest) + 16, output: WORDS });
    const b = await keyBudget('racer');
    assert.ok(b.spent_micros <= BUDGET_MICROS.racer + oneReservation,
      `spent ${b.spent_micros} micro-USD in ${ok.length} answers: over budget ${BUDGET_MICROS.racer} + one reservation ${oneReservation}`);
    assert.equal(b.reserved_micros, 0);
    res.forEach((r, i) => {
      if (i % 2) assertError('openai', r, 400, `race ${i}: disagreeing limits`);
      else assert.ok(r.status === 200 || r.status === 429, `race ${i}: ${r.status} ${r.text.slice(0, 200)}`);
    });
    assert.ok(ok.length >= 1, 'some requests fit the budget');
    assert.equal(calls.length, ok.length, 'the upstream saw exactly the admitted requests');
    for (const c of calls) {
      assert.equal(upstreamLimit(c), WORDS, 'the upstream got the limit admission reserved for');
      assert.ok(normUsage(c.usage).output <= WORDS);
    }
    const row = await keyRow('racer');
    assert.equal(row.requests, ok.length);
    assert.equal(row.cost_micros, calls.reduce((s, c) => s + costMicros('up-openai/gpt-4o', normUsage(c.usage)), 0),
      'the ledger holds what the upstream reported');
  });
});

describe('4. usage is what the provider reported', () => {
  it('a stream whose client declined usage: the upstream is asked anyway, the client sees none, the ledger gets the reported usage', async () => {
    const cases = [
      ['openai', 'gpt-4o-mini', { stream_options: { include_usage: false } }, 'up-openai/gpt-4o-mini'],
      ['openai', 'gpt-4o-mini', {}, 'up-openai/gpt-4o-mini'],
      ['legacy', 'gpt-4o-mini', { stream_options: { include_usage: false } }, 'up-openai/gpt-4o-mini'],
      ['anthropic', 'claude-via-openai', {}, 'up-openai/gpt-4o'],
      ['gemini', 'gpt-4o-mini', {}, 'up-openai/gpt-4o-mini'],
    ];
    for (const [surface, model, extra, priceKey] of cases) {
      const tag = newTag();
      const label = `${surface} ${model} ${JSON.stringify(extra)}`;
      const before = await keyRow('rich');
      const r = await askStream(surface, { model, key: KEYS.rich, text: `usage ${tag} [[mock words=11]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 50 } : { max_tokens: 50 }, extra });
      assert.equal(r.status, 200, label);
      const { events } = await readSSE(r);
      const [call] = await callsWith(tag);
      assert.equal(call.body.stream_options?.include_usage, true, `${label}: upstream asked for usage: ${JSON.stringify(call.body)}`);
      if (surface === 'openai' || surface === 'legacy') {
        assert.equal(events.at(-1).data, '[DONE]', label);
        for (const e of events.filter((x) => x.json)) {
          assert.ok(!e.json.usage, `${label}: unrequested usage reached the client: ${e.data}`);
          assert.ok(e.json.choices.length > 0, `${label}: a chunk without choices: ${e.data}`);
        }
      }
      const u = normUsage(call.usage);
      assert.equal(u.output, 11);
      const d = delta(before, await keyRow('rich'));
      assert.deepEqual(d, { requests: 1, input: u.input, output: u.output, cost: costMicros(priceKey, u) },
        `${label}: charged the reported usage, not an estimate`);
    }
  });

  it('a client that asked for usage gets it (the control)', async () => {
    const tag = newTag();
    const r = await askStream('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: `usage asked ${tag}`,
      limit: { max_tokens: 5 }, extra: { stream_options: { include_usage: true } } });
    const { events } = await readSSE(r);
    const usage = events.filter((e) => e.json?.usage).pop();
    assert.ok(usage, 'usage chunk relayed');
    const [call] = await callsWith(tag);
    assert.deepEqual(normUsage(usage.json.usage), normUsage(call.usage));
  });

  it('Gemini answers relayed to Gemini clients are charged what Gemini reported', async () => {
    for (const stream of [false, true]) {
      const tag = newTag();
      const before = await keyRow('rich');
      const opts = { model: 'gemini-2.5-flash', key: KEYS.rich, text: `gemini usage ${tag} [[mock words=12]]`, limit: { maxOutputTokens: 64 } };
      if (stream) {
        const r = await askStream('gemini', opts);
        assert.equal(r.status, 200);
        await readSSE(r);
      } else {
        assert.equal((await ask('gemini', opts)).status, 200);
      }
      const [call] = await callsWith(tag);
      const u = normUsage(call.usage);
      const d = delta(before, await keyRow('rich'));
      assert.deepEqual(d, { requests: 1, input: u.input, output: u.output, cost: costMicros('up-gemini/gemini-2.5-flash', u) },
        `gemini ${stream ? 'stream' : 'body'}: charged usageMetadata, not an estimate`);
    }
  });

  it('a 200 without usage is charged an estimate, never zero', async () => {
    // The estimate: request bytes / 4 in, delivered bytes / 4 out (rounded up).
    const cases = [
      ['openai', 'gpt-4o-mini', 'up-openai/gpt-4o-mini'],
      ['anthropic', 'claude-sonnet-4-5', 'up-anthropic/claude-sonnet-4-5'],
      ['anthropic', 'claude-via-openai', 'up-openai/gpt-4o'],
      ['gemini', 'gemini-2.5-flash', 'up-gemini/gemini-2.5-flash'],
      ['legacy', 'gpt-4o-mini', 'up-openai/gpt-4o-mini'],
    ];
    for (const [surface, model, priceKey] of cases) {
      const tag = newTag();
      const before = await keyRow('rich');
      const res = await ask(surface, { model, key: KEYS.rich, text: `no usage ${tag} [[mock usage=none]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 30 } : { max_tokens: 30 } });
      assert.equal(res.status, 200, `${surface}: ${res.text}`);
      const [call] = await callsWith(tag);
      assert.equal(call.usage, undefined, 'the upstream reported no usage');
      const d = delta(before, await keyRow('rich'));
      assert.equal(d.requests, 1);
      assert.ok(d.input > 0 && d.output > 0 && d.cost > 0, `${surface} ${model}: never free: ${JSON.stringify(d)}`);
      // The legacy body sluice holds is the converted chat request, which
      // the client never sees; the other bodies are the client's bytes.
      if (surface !== 'legacy') assert.equal(d.input, tokensOf(Buffer.byteLength(res.sent)), `${surface}: input estimate`);
      assert.equal(d.output, tokensOf(res.bytes), `${surface}: output estimate from the delivered body`);
      assert.equal(d.cost, costMicros(priceKey, { input: d.input, output: d.output }));
    }
  });
});

describe('5. the client\'s query string stays at the gateway', () => {
  it('?key=<client key>&foo=bar never reaches the upstream; only beta=true reaches Anthropic from an Anthropic client', async () => {
    const K = encodeURIComponent(KEYS.rich);
    const cases = [
      ['openai', 'gpt-4o-mini', `key=${K}&foo=bar`, '/v1/chat/completions'],
      ['openai', 'gpt-via-anthropic', `key=${K}&foo=bar&beta=true`, '/v1/messages'],
      ['anthropic', 'claude-sonnet-4-5', `key=${K}&foo=bar`, '/v1/messages'],
      ['anthropic', 'claude-sonnet-4-5', `key=${K}&beta=true&foo=bar`, '/v1/messages?beta=true'],
      ['anthropic', 'claude-sonnet-4-5', `beta=false&key=${K}`, '/v1/messages'],
      ['anthropic', 'claude-via-openai', `beta=true&key=${K}&foo=bar`, '/v1/chat/completions'],
      ['gemini', 'gemini-2.5-flash', `key=${K}&foo=bar&alt=json`, '/v1beta/models/gemini-2.5-flash:generateContent'],
      ['gemini', 'gpt-4o-mini', `key=${K}&foo=bar`, '/v1/chat/completions'],
      ['legacy', 'gpt-4o-mini', `key=${K}&foo=bar`, '/v1/chat/completions'],
    ];
    for (const [surface, model, query, want] of cases) {
      const tag = newTag();
      const { path, body } = build(surface, { model, text: `query ${tag}`, limit: surface === 'gemini' ? {} : { max_tokens: 5 }, query });
      // Authenticated by ?key= alone (Anthropic still sends its version).
      const res = await send(path, { headers: surface === 'anthropic' ? { 'anthropic-version': '2023-06-01' } : {}, body });
      assert.equal(res.status, 200, `${surface} ${path}: ${res.text}`);
      const [call] = await callsWith(tag);
      assert.equal(call.path, want, `${surface} ${path}`);
      assert.ok(!JSON.stringify(call).includes(KEYS.rich), `${surface}: the client key reached the upstream`);
      assert.ok(!JSON.stringify(call).includes('foo'), `${surface}: the client query reached the upstream`);
    }
    // A Gemini stream: the upstream URL carries alt=sse, which sluice
    // writes itself, and nothing of the client's.
    const tag = newTag();
    const { path, body } = build('gemini', { model: 'gemini-2.5-flash', text: `query ${tag}`, stream: true, query: `key=${K}&foo=bar` });
    const r = await fetch(`${env.gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonText(body) });
    assert.equal(r.status, 200);
    await readSSE(r);
    const [call] = await callsWith(tag);
    assert.equal(call.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    assert.equal(call.headers['x-goog-api-key'], PROVIDER_ENV.SLUICE_E2E_GEMINI_KEY, 'the provider key went in its header');
  });
});

describe('6. upstream response headers', () => {
  // Splits a raw HTTP response into its head (lines) and the rest.
  const head = (buf) => {
    const s = buf.toString('latin1');
    const end = s.indexOf('\r\n\r\n');
    assert.ok(end > 0, `no response head: ${JSON.stringify(s.slice(0, 200))}`);
    return { head: s.slice(0, end + 2), lines: s.slice(0, end).split('\r\n') };
  };
  const CASES = [
    ['openai', 'gpt-4o-mini', false], ['openai', 'gpt-4o-mini', true],
    ['anthropic', 'claude-sonnet-4-5', false], ['anthropic', 'claude-sonnet-4-5', true],
    ['openai', 'gpt-via-anthropic', false], ['anthropic', 'claude-via-openai', true],
    ['gemini', 'gemini-2.5-flash', false], ['gemini', 'gemini-2.5-flash', true],
    ['legacy', 'gpt-4o-mini', false],
  ];

  it('a header value holding a bare CR never reaches the client', async () => {
    for (const [surface, model, stream] of CASES) {
      const label = `${surface}${stream ? ' stream' : ''} ${model}`;
      const buf = await rawPost(surface, { model, key: KEYS.rich, stream, text: `bare cr ${newTag()} [[mock bare_cr=1]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 5 } : { max_tokens: 5 } });
      const { head: h, lines } = head(buf);
      assert.match(lines[0], /^HTTP\/1\.1 200 /, `${label}: ${lines[0]}`);
      assert.doesNotMatch(h, /\r(?!\n)/, `${label}: a bare CR in the response head`);
      assert.ok(!buf.includes('mock_smuggled'), `${label}: the smuggled header text reached the client`);
      assert.ok(!lines.some((l) => /^set-cookie:/i.test(l)), label);
      // The header holding it is dropped whole, not cleaned up (x-request-id is sluice's own).
      assert.ok(!lines.some((l) => /^(x-upstream-)?request-id:/i.test(l)), `${label}: ${lines.join(' | ')}`);
    }
  });

  it('account identifiers stay behind the gateway; request ids and rate limits pass', async () => {
    for (const [surface, model, stream] of CASES) {
      const label = `${surface}${stream ? ' stream' : ''} ${model}`;
      const buf = await rawPost(surface, { model, key: KEYS.rich, stream, text: `account ${newTag()} [[mock account_headers=1]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 5 } : { max_tokens: 5 } });
      const { lines } = head(buf);
      const names = lines.slice(1).map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
      assert.match(lines[0], /^HTTP\/1\.1 200 /, `${label}: ${lines[0]}`);
      for (const n of ['openai-organization', 'openai-project', 'anthropic-organization-id']) {
        assert.ok(!names.includes(n), `${label}: ${n} reached the client`);
      }
      assert.ok(!buf.includes('org-mock-account') && !buf.includes('proj_mock_account') && !buf.includes('00000000mock'), label);
      const upstream = model === 'gpt-via-anthropic' || (surface === 'anthropic' && model !== 'claude-via-openai') ? 'anthropic'
        : surface === 'gemini' ? 'gemini' : 'openai';
      if (upstream === 'openai') {
        for (const n of ['x-upstream-request-id', 'x-request-id', 'openai-processing-ms', 'x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests']) {
          assert.ok(names.includes(n), `${label}: ${n} should pass: ${names}`);
        }
        assert.ok(lines.includes('x-ratelimit-limit-requests: 500'), `${label}: the value passes as sent`);
      } else if (upstream === 'anthropic') {
        for (const n of ['request-id', 'anthropic-ratelimit-requests-limit', 'anthropic-ratelimit-requests-remaining']) {
          assert.ok(names.includes(n), `${label}: ${n} should pass: ${names}`);
        }
      }
    }
  });
});
