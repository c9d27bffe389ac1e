// Routing and resilience end to end: weighted targets, fallback chains,
// retries with backoff and Retry-After, the circuit breaker, timeouts, and
// how a stream that breaks after its first byte ends. The gateway is built
// from resilience.yaml (short timeouts, a provider on a port where nothing
// listens); faults come from [[mock ...]] directives. Every case runs for
// both protocols, streamed and not, and checks both sides: what the client
// got (status, body, x-sluice-* headers) and what the mock saw (/__calls).
//
// This file: the attempt order against sluicec explain, refused
// connections, failures before the first byte, timeouts, failures after
// bytes reached the client, and every attempt failing.
// resilience-targets.test.mjs: weighted targets, the circuit breaker and
// where traffic may go. The shared setup and helpers are in
// lib/resilience.mjs, which also describes how requests are tagged and the
// failure matrix.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { eventually, E2E_DIR } from './lib/harness.mjs';
import {
  PROTOS, VARIANTS, G, E, newTag, send, describeRes, callsFor, assertGoodAnswer, assertSluiceError,
  assertNoLeak, assertBrokenStream, eachVariant, matrix, note,
} from './lib/resilience.mjs';

let gatewayOrder;

describe('attempt order', () => {
  it('the first request tries the heavier target, the other, then each fallback in order', async () => {
    const tag = newTag();
    const v = { proto: 'openai', stream: false, name: 'openai non-stream' };
    const r = await send(v, 'explain-chain', `${tag} [[mock status=503]]`);
    const calls = await callsFor(tag);
    note('explain chain (all fail)', v, r, calls);
    const msg = assertSluiceError(r, v, 502);
    assertNoLeak(r.text);
    const m = msg.match(/all upstream attempts failed: (.*)$/);
    assert.ok(m, msg);
    const failures = m[1].split('; ').map((f) => f.split(': '));
    gatewayOrder = failures.map(([p]) => p);
    assert.deepEqual(failures, [['dead-2', 'connect'], ['dead-1', 'connect'],
      ['up-openai-b', 'HTTP 503'], ['dead-3', 'connect']]);
    assert.equal(r.sluice.attempts, '4');
    assert.deepEqual(calls.map((c) => c.body.model), ['ex-mid'], 'the mock saw the one reachable fallback');
  });

  it('sluicec explain prints the order the gateway tried', async (t) => {
    const bin = process.env.SLUICEC_BIN || resolve(E2E_DIR, '..', '..', 'build', 'sluicec');
    const spec = process.env.SLUICE_RESILIENCE_SPEC || resolve(E2E_DIR, 'resilience.yaml');
    const run = (args) => new Promise((r) => {
      execFile(bin, args, { timeout: 10000 },
        (err, stdout, stderr) => r({ code: err ? (err.code ?? 1) : 0, stdout, stderr, err }));
    });
    const out = await run(['explain', spec, '--model', 'explain-chain', '--format=json']);
    assert.equal(out.code, 0, `sluicec explain failed: ${out.stderr}`);
    assert.ok(gatewayOrder, 'the gateway order was measured by the previous test');
    const plan = JSON.parse(out.stdout).plan;
    assert.ok(Array.isArray(plan), `explain --format=json has a plan: ${out.stdout.slice(0, 400)}`);
    assert.deepEqual(plan.map((a) => a.provider), gatewayOrder,
      `explain's order differs from the gateway's first request: ${JSON.stringify(plan)}`);
    assert.deepEqual(plan.map((a) => a.entry),
      ['explain-chain', 'explain-chain', 'explain-mid', 'explain-last']);
    assert.deepEqual(plan.map((a) => a.upstream_model), ['ex-b', 'ex-a', 'ex-mid', 'ex-last']);
  });
});

// ---- connection refused ---------------------------------------------------

describe('connection refused', () => {
  it('is retried (attempts: 2) on the entry, then falls back', () => eachVariant(async (v, tag) => {
    const r = await send(v, E(v, 'refused'), `${tag} hello`);
    const calls = await callsFor(tag);
    note('refused, retry 2 + fallback', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '4' });
    assert.deepEqual(calls.map((c) => c.body.model), ['ok-model'], 'only the fallback reached the mock');
  }));

  it('is not retried with attempts: 0; the fallback answers at once', () => eachVariant(async (v, tag) => {
    const r = await send(v, E(v, 'refused-noretry'), `${tag} hello`);
    const calls = await callsFor(tag);
    note('refused, retry 0 + fallback', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '2' });
    assert.deepEqual(calls.map((c) => c.body.model), ['ok-model']);
  }));
});

// ---- resets and status codes ----------------------------------------------

describe('failures before the first byte', () => {
  it('a reset with nothing sent is retried, then falls back', () => eachVariant(async (v, tag) => {
    const model = G(v, 'chain-reset [[mock fail=reset]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('reset before any byte (chain)', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
    // The 2 tries of the entry, then the fallback once.
    const models = calls.map((c) => c.body.model);
    assert.equal(models.at(-1), 'ok-model');
    assert.ok(models.length === 3 && models.slice(0, -1).every((m) => m === model), JSON.stringify(models));
  }));

  it('5xx answers (500, 502, 503, 504, 529) are retried; the last one is passed back', async () => {
    const codes = [500, 502, 503, 504, 529];
    await Promise.all(codes.map((code) => eachVariant(async (v, tag) => {
      const model = G(v, `retry-${code} [[mock status=${code}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`HTTP ${code}`, v, r, calls);
      assert.equal(r.status, code, describeRes(r));
      assert.equal(calls.length, 3, '1 try + 2 retries');
      assert.ok(calls.every((c) => c.body.model === model));
      assert.equal(r.sluice.attempts, '3');
      assert.equal(r.sluice.provider, PROTOS[v.proto].provider);
      assert.ok(!r.sse, 'an upstream error answer is not turned into a stream');
      assert.equal(PROTOS[v.proto].errorMessage(r.json),
        `mock-upstream: simulated ${code} (requested by a [[mock]] directive)`, describeRes(r));
    })));
  });

  it('4xx answers (400, 401, 403, 404, 413, 422) are never retried and pass back unchanged', async () => {
    const openaiType = { 400: 'invalid_request_error', 401: 'invalid_request_error',
      403: 'permission_error', 404: 'invalid_request_error', 413: 'invalid_request_error',
      422: 'invalid_request_error' };
    const openaiCode = { 401: 'invalid_api_key', 404: 'model_not_found' };
    const anthropicType = { 400: 'invalid_request_error', 401: 'authentication_error',
      403: 'permission_error', 404: 'not_found_error', 413: 'request_too_large',
      422: 'api_error' };
    const codes = [400, 401, 403, 404, 413, 422];
    await Promise.all(codes.map((code) => eachVariant(async (v, tag) => {
      const model = G(v, `retry-${code} [[mock status=${code}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`HTTP ${code}`, v, r, calls);
      assert.equal(r.status, code, describeRes(r));
      assert.equal(calls.length, 1, 'never retried');
      assert.equal(r.sluice.attempts, '1');
      const message = `mock-upstream: simulated ${code} (requested by a [[mock]] directive)`;
      if (v.proto === 'openai') {
        assert.deepEqual(r.json, { error: { message, type: openaiType[code], param: null,
          code: openaiCode[code] ?? null } }, describeRes(r));
      } else {
        assert.deepEqual(Object.keys(r.json).sort(), ['error', 'request_id', 'type']);
        assert.equal(r.json.type, 'error');
        assert.deepEqual(r.json.error, { type: anthropicType[code], message });
        assert.match(r.json.request_id, /^req_/);
        assert.equal(r.headers.get('request-id'), r.json.request_id,
          'the upstream request-id header passes through with its body');
      }
    })));
  });

  it('429 with Retry-After: 1 is retried after about a second, each time', () => eachVariant(async (v, tag) => {
    const model = G(v, 'retry-429 [[mock status=429 retry_after=1]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('429 Retry-After: 1', v, r, calls);
    assert.equal(r.status, 429, describeRes(r));
    assert.equal(r.headers.get('retry-after'), '1', 'the last answer keeps its Retry-After');
    assert.equal(calls.length, 3);
    assert.equal(r.sluice.attempts, '3');
    for (let i = 1; i < calls.length; i++) {
      const gap = (calls[i].time - calls[i - 1].time) * 1000;
      assert.ok(gap >= 950, `retry ${i} came ${gap.toFixed(0)} ms after the 429 (Retry-After: 1)`);
      assert.ok(gap < 2100, `retry ${i} came ${gap.toFixed(0)} ms later: more than Retry-After`);
    }
    if (v.proto === 'openai') assert.equal(r.json.error.code, 'rate_limit_exceeded');
    else assert.equal(r.json.error.type, 'rate_limit_error');
  }));

  it('a Retry-After longer than the cap waits only the cap (300 ms)', () => eachVariant(async (v, tag) => {
    const model = G(v, 'capped-429 [[mock status=429 retry_after=5]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('429 Retry-After: 5, cap 300ms', v, r, calls);
    assert.equal(r.status, 429, describeRes(r));
    assert.equal(calls.length, 2);
    // The mock's own timestamps; the upper bounds are the Retry-After the
    // gateway must not honour (5 s), so a loaded machine cannot reach them.
    const gap = (calls[1].time - calls[0].time) * 1000;
    assert.ok(gap >= 250 && gap < 5000, `retry after ${gap.toFixed(0)} ms; cap is 300 ms, Retry-After 5 s`);
    assert.ok(r.ms < 5000, `answered in ${r.ms.toFixed(0)} ms, before Retry-After: 5 would allow a retry`);
  }));

  // libcurl by itself re-sends a POST whose reused connection dies before
  // any response byte; upstream.c refuses that second send so only the
  // entry's retry rules decide (and x-sluice-attempts counts every call).
  it("a reset is not re-sent behind the retry policy's back", () => eachVariant(async (v, tag) => {
    // Warm the gateway's connection pool to the mock first, so the failing
    // request goes out on a reused connection, as it would in production.
    await Promise.all(Array.from({ length: 4 }, () => send(v, G(v, 'custom-warm'), `${newTag()} warm`)));
    // custom-*: on: [409, 503, timeout], so a reset is final, after 1 call.
    const model = G(v, 'custom-reset [[mock fail=reset]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('reset, not in on: list (pool warm)', v, r, calls);
    const msg = assertSluiceError(r, v, 502);
    assert.match(msg, /: reset$/);
    assert.equal(r.sluice.attempts, '1');
    assert.equal(calls.length, 1, `the upstream received the request ${calls.length} times for 1 attempt`);
  }));

  it('a written on: list replaces the defaults', async () => {
    // custom-*: attempts 1, on: [409, 503, timeout].
    const cases = [
      { d: 'status=409', calls: 2, status: 409 },
      { d: 'status=503', calls: 2, status: 503 },
      { d: 'status=500', calls: 1, status: 500 },
      { d: 'status=429', calls: 1, status: 429 },
      { d: 'fail=stall', calls: 2, status: 504, reason: /: first_byte_timeout; .*: first_byte_timeout$/ },
    ];
    await Promise.all(cases.map((c) => eachVariant(async (v, tag) => {
      const model = G(v, `custom-x [[mock ${c.d}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`on:[409,503,timeout] ${c.d}`, v, r, calls);
      assert.equal(r.status, c.status, describeRes(r));
      assert.equal(calls.length, c.calls, `${c.d}: ${c.calls} calls`);
      assert.equal(r.sluice.attempts, String(c.calls));
      if (c.reason) {
        const msg = assertSluiceError(r, v, c.status);
        assert.match(msg, c.reason);
        assertNoLeak(r.text);
      }
    })));
  });
});

// ---- timeouts ------------------------------------------------------------

describe('timeouts', () => {
  it('a stall before the first byte times out (first_byte) and the next attempt runs', () => eachVariant(async (v, tag) => {
    const model = G(v, 'chain-stall [[mock fail=stall]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('stall before first byte (chain)', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
    assert.deepEqual(calls.map((c) => c.body.model), [model, model, 'ok-model']);
    // Two first-byte timeouts of 1 s each; without them each attempt would
    // run into the 20 s total timeout instead.
    assert.ok(r.ms >= 1900 && r.ms < 20000, `took ${r.ms.toFixed(0)} ms`);
    // The gateway hung up on the stalled attempts.
    const stalled = await eventually(async () => {
      const cs = await callsFor(tag);
      return cs.filter((c) => c.body.model === model).every((c) => c.closed_early) && cs;
    });
    assert.ok(stalled, 'the stalled upstream requests were closed by the gateway');
  }));

  it('a slow answer inside the timeouts succeeds on the first attempt', () => eachVariant(async (v, tag) => {
    // Non-stream: headers after 700 ms. Stream: first chunk after 700 ms,
    // then 700 ms between chunks (idle timeout is 1 s).
    const model = G(v, v.stream ? 'retry-slow [[mock first_byte_ms=700 chunks=3 interval_ms=700]]'
      : 'retry-slow [[mock delay_ms=700]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('slow but within timeouts', v, r, calls);
    assertGoodAnswer(r, v);
    assert.equal(calls.length, 1);
    assert.equal(r.sluice.attempts, '1');
    assert.ok(r.ms >= 650, `took ${r.ms.toFixed(0)} ms`);
    if (v.stream) assert.equal(r.events.filter(PROTOS[v.proto].isText).length, 3);
  }));
});

// ---- streams that break after the first byte --------------------------------

describe('failures after bytes reached the client', () => {
  const streamOnly = VARIANTS.filter((v) => v.stream);
  const bufferedOnly = VARIANTS.filter((v) => !v.stream);

  it('a stall mid-stream ends with an error event after the idle timeout, never retried', () => eachVariant(async (v, tag) => {
    const model = G(v, 'retry-idle [[mock chunks=4 interval_ms=4000]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('stall mid-stream (idle)', v, r, calls);
    assertBrokenStream(r, v, /idle_timeout/);
    // Ended by the 1 s idle timeout, before the mock's second chunk (4 s
    // later) could arrive: event order, not a stopwatch.
    assert.ok(r.ms >= 900, `ended after ${r.ms.toFixed(0)} ms (idle timeout 1 s)`);
    assert.equal(r.events.filter(PROTOS[v.proto].isText).length, 1, 'only the first chunk before the error');
    assert.equal(calls.length, 1, 'committed: no retry once bytes went out');
    assert.equal(r.sluice.attempts, '1');
    const gone = await eventually(async () => (await callsFor(tag))[0]?.closed_early);
    assert.ok(gone, 'the gateway hung up on the stalled upstream');
  }, streamOnly));

  for (const fail of ['truncate', 'abort']) {
    it(`fail=${fail} mid-stream ends with an error event, never retried`, () => eachVariant(async (v, tag) => {
      const model = G(v, `retry-${fail} [[mock fail=${fail}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`${fail} mid-stream`, v, r, calls);
      assertBrokenStream(r, v, /reset|error/);
      assert.equal(calls.length, 1, 'committed: no retry once bytes went out');
      assert.equal(r.sluice.attempts, '1');
    }, streamOnly));

    it(`fail=${fail} mid-body (not streamed: nothing sent yet) is retried, then falls back`, () => eachVariant(async (v, tag) => {
      const model = G(v, `chain-${fail} [[mock fail=${fail}]]`);
      const r = await send(v, model, `${tag} hello`);
      const calls = await callsFor(tag);
      note(`${fail} mid-body (chain)`, v, r, calls);
      assertGoodAnswer(r, v);
      assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
      assert.deepEqual(calls.map((c) => c.body.model), [model, model, 'ok-model']);
    }, bufferedOnly));
  }

  it('a stream failing before its first byte (5xx) falls back like any other request', () => eachVariant(async (v, tag) => {
    const model = G(v, 'chain-503 [[mock status=503]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('503 before first byte (chain)', v, r, calls);
    assertGoodAnswer(r, v);
    assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: PROTOS[v.proto].alias, attempts: '3' });
    assert.deepEqual(calls.map((c) => c.body.model), [model, model, 'ok-model']);
  }));
});

// ---- everything fails -------------------------------------------------------

describe('all attempts fail', () => {
  it("sluice's own error names every attempt and reason, and leaks nothing", () => eachVariant(async (v, tag) => {
    // doomed: refused, refused (retry), then doomed-last, which the
    // message stalls: the last failure is a timeout, so 504.
    const r = await send(v, E(v, 'doomed'), `${tag} [[mock fail=stall]]`);
    const calls = await callsFor(tag);
    note('all fail (refused, refused, stall)', v, r, calls);
    const msg = assertSluiceError(r, v, 504);
    const dead = PROTOS[v.proto].dead;
    assert.equal(msg, `all upstream attempts failed: ${dead}: connect; ${dead}: connect; ` +
      `${PROTOS[v.proto].alias}: first_byte_timeout`);
    assertNoLeak(r.text);
    assert.equal(r.sluice.attempts, '3');
    assert.deepEqual(calls.map((c) => c.body.model), ['doomed-last-model']);
  }));

  it('retries spent on one target: connection resets -> 502 naming each', () => eachVariant(async (v, tag) => {
    const model = G(v, 'retry-reset [[mock fail=reset]]');
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('reset x3 (retry, no fallback)', v, r, calls);
    const msg = assertSluiceError(r, v, 502);
    const p = PROTOS[v.proto].provider;
    assert.equal(msg, `all upstream attempts failed: ${p}: reset; ${p}: reset; ${p}: reset`);
    assertNoLeak(r.text);
    assert.equal(r.sluice.attempts, '3');
    assert.equal(calls.length, 3, `${calls.length} calls`);
  }));
});
