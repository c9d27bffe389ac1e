// Routing and resilience end to end, continued from resilience.test.mjs:
// weighted targets split their traffic by weight, the circuit breaker
// opens, probes and closes a target, an entry whose targets all cool still
// answers, and neither the body nor the headers can point a request at
// another upstream than the spec's. Same gateway (resilience.yaml) and
// helpers (lib/resilience.mjs); this file runs its own stack.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import { sleep, eventually, freePort } from './lib/harness.mjs';
import {
  stack, PROTOS, G, E, newTag, send, describeRes, callsFor, assertGoodAnswer, eachVariant, matrix,
  note,
} from './lib/resilience.mjs';

// ---- weighted balancing -------------------------------------------------------

describe('weighted targets', () => {
  for (const proto of Object.keys(PROTOS)) {
    it(`${proto}: 400 requests over a 3:1 entry land 300/100 (±5 %)`, async () => {
      const model = `weighted-${PROTOS[proto].id}`;
      const tag = newTag();
      const N = 400;
      const seen = { heavy: 0, light: 0 };
      const byHeader = {};
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const i = next++;
          const v = { proto, stream: i % 2 === 1 };
          const r = await send(v, model, `${tag} #${i}`);
          assertGoodAnswer(r, v);
          byHeader[r.sluice.provider] = (byHeader[r.sluice.provider] || 0) + 1;
          assert.equal(r.sluice.attempts, '1');
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const calls = await callsFor(tag);
      assert.equal(calls.length, N);
      for (const c of calls) {
        if (c.body.model === 'w-heavy') seen.heavy++;
        else if (c.body.model === 'w-light') seen.light++;
        else assert.fail(`unexpected upstream model ${c.body.model}`);
      }
      matrix.push(`${'weighted 3:1 x400'.padEnd(34)} ${proto.padEnd(20)} -> heavy=${seen.heavy} light=${seen.light}; headers ${JSON.stringify(byHeader)}`);
      assert.ok(Math.abs(seen.heavy - 300) <= 15, `heavy got ${seen.heavy}, want 300 ± 15`);
      assert.ok(Math.abs(seen.light - 100) <= 15, `light got ${seen.light}, want 100 ± 15`);
      assert.equal(byHeader[PROTOS[proto].provider], seen.heavy, 'x-sluice-provider agrees with the mock');
      assert.equal(byHeader[PROTOS[proto].alias], seen.light);
    });
  }
});

// ---- circuit breaker ----------------------------------------------------------

async function targetState(model, provider) {
  const r = await fetch(`${stack.url}/healthz?detail=1`);
  assert.equal(r.status, 200);
  const j = await r.json();
  const t = j.targets?.find((x) => x.model === model && x.provider === provider);
  assert.ok(t, `healthz lists ${model} -> ${provider}: ${JSON.stringify(j.targets)}`);
  return t;
}

describe('circuit breaker', () => {
  it('3 failures open a target for 2 s; then one probe decides; success closes it', async () => {
    // oa-breaker-* / an-breaker-*: attempts 0, fallback ok, cooldown {failures: 3, period: 2s}.
    // The two protocols use different targets, so they run side by side.
    await Promise.all(Object.keys(PROTOS).map(async (proto) => {
      const p = PROTOS[proto];
      const vs = { proto, stream: true, name: `${proto} stream` };
      const vn = { proto, stream: false, name: `${proto} non-stream` };
      const entry = `${p.id}-breaker-*`;
      const plain = `${p.id}-breaker-x`;
      const failing = `${plain} [[mock status=503]]`;

      // 1. Three consecutive failures, each falling back.
      for (const [i, v] of [vn, vs, vn].entries()) {
        const tag = newTag();
        const r = await send(v, failing, `${tag} hello`);
        const calls = await callsFor(tag);
        note(`breaker: failure ${i + 1}/3`, v, r, calls);
        assertGoodAnswer(r, v);
        assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: p.alias, attempts: '2' });
        assert.deepEqual(calls.map((c) => c.body.model), [failing, 'ok-model'],
          `failure ${i + 1}: the primary is still tried`);
        const st = await targetState(entry, p.provider);
        if (i < 2) assert.equal(st.state, 'ok', `after ${i + 1} failures: ${JSON.stringify(st)}`);
      }
      const askedAt = performance.now();
      const cooling = await targetState(entry, p.provider);
      assert.equal(cooling.state, 'cooling', JSON.stringify(cooling));
      assert.equal(cooling.consecutive_failures, 3);
      assert.ok(cooling.cooldown_remaining_ms > 0 && cooling.cooldown_remaining_ms <= 2000,
        JSON.stringify(cooling));

      // 2. While cooling: skipped, the mock sees no call to it.
      for (const v of [vs, vn]) {
        const tag = newTag();
        const r = await send(v, plain, `${tag} hello`);
        const calls = await callsFor(tag);
        note('breaker: while cooling', v, r, calls);
        assertGoodAnswer(r, v);
        assert.deepEqual(r.sluice, { model: E(v, 'ok'), provider: p.alias, attempts: '1' });
        assert.deepEqual(calls.map((c) => c.body.model), ['ok-model'], 'the cooling target is skipped');
      }
      assert.equal((await targetState(entry, p.provider)).state, 'cooling', 'those requests came inside the cooldown');

      // 3. After the period: half-open. One slow probe is let through; a
      // request arriving meanwhile is not sent to the target.
      let half;
      await eventually(async () => {
        half = await targetState(entry, p.provider);
        return half.state !== 'cooling';
      }, 4000, 100);
      assert.equal(half.state, 'probing', `the cooldown ends: ${JSON.stringify(half)}`);
      // Not before the period: the gateway's own cooldown_remaining_ms,
      // read after askedAt, cannot have run out before askedAt + remaining.
      assert.ok(performance.now() - askedAt >= cooling.cooldown_remaining_ms - 1,
        `probing ${(performance.now() - askedAt).toFixed(0)} ms after ${cooling.cooldown_remaining_ms} ms were left`);
      const probeTag = newTag();
      const otherTag = newTag();
      const probe = send(vs, `${plain} [[mock first_byte_ms=600]]`, `${probeTag} hello`);
      await sleep(200);
      const other = await send(vn, plain, `${otherTag} hello`);
      const probed = await probe;
      const probeCalls = await callsFor(probeTag);
      const otherCalls = await callsFor(otherTag);
      note('breaker: half-open probe', vs, probed, probeCalls);
      note('breaker: during the probe', vn, other, otherCalls);
      assertGoodAnswer(probed, vs);
      assert.deepEqual(probed.sluice, { model: entry, provider: p.provider, attempts: '1' });
      assert.equal(probeCalls.length, 1);
      assertGoodAnswer(other, vn);
      assert.deepEqual(otherCalls.map((c) => c.body.model), ['ok-model'],
        'only one probe: the concurrent request goes to the fallback');

      // 4. The probe succeeded: the target is back.
      const back = await targetState(entry, p.provider);
      assert.equal(back.state, 'ok', JSON.stringify(back));
      assert.equal(back.consecutive_failures, 0);
      const tag = newTag();
      const r = await send(vn, plain, `${tag} hello`);
      const calls = await callsFor(tag);
      note('breaker: closed again', vn, r, calls);
      assertGoodAnswer(r, vn);
      assert.deepEqual(r.sluice, { model: entry, provider: p.provider, attempts: '1' });
      assert.deepEqual(calls.map((c) => c.body.model), [plain]);
    }));
  });
});

// README (circuit breaker): "If every remaining target is cooling, sluice
// tries them anyway: a degraded answer beats none."
describe('every target cooling: tried anyway', () => {
  it('with both targets of an entry cooling, requests still go upstream and their answers reach the client', async () => {
    // oa-allcool-* / an-allcool-*: two targets, one retry, no fallback,
    // cooldown {failures: 1, period: 60s}. Each protocol has its own targets.
    await Promise.all(Object.keys(PROTOS).map(async (proto) => {
      const p = PROTOS[proto];
      const v = { proto, stream: false, name: `${proto} non-stream` };
      const entry = `${p.id}-allcool-*`;
      const plain = `${p.id}-allcool-x`;
      const failing = `${plain} [[mock status=503]]`;
      const states = async () => [(await targetState(entry, p.provider)).state, (await targetState(entry, p.alias)).state];

      // 1. One request fails on both targets (the try and its retry): both cool.
      let tag = newTag();
      let r = await send(v, failing, `${tag} hello`);
      let calls = await callsFor(tag);
      note('all cooling: open both', v, r, calls);
      assert.equal(r.status, 503, describeRes(r));
      assert.equal(calls.length, 2, 'the try and the retry');
      assert.deepEqual(await states(), ['cooling', 'cooling']);

      // 2. Both cooling and failing again: both are still tried, and the
      // client gets the upstream's own answer, not a refusal by sluice.
      tag = newTag();
      r = await send(v, failing, `${tag} hello`);
      calls = await callsFor(tag);
      note('all cooling: tried anyway, failing', v, r, calls);
      assert.equal(calls.length, 2, `both cooling targets tried: ${describeRes(r)}`);
      assert.equal(r.status, 503, describeRes(r));
      assert.equal(r.sluice.attempts, '2');
      assert.deepEqual(await states(), ['cooling', 'cooling']);

      // 3. Both cooling, the upstream healthy: one call, a good answer,
      // and that target's circuit closes; the other stays open.
      tag = newTag();
      r = await send(v, plain, `${tag} hello`);
      calls = await callsFor(tag);
      note('all cooling: tried anyway, answering', v, r, calls);
      assertGoodAnswer(r, v);
      assert.equal(r.sluice.attempts, '1');
      assert.equal(r.sluice.model, entry);
      assert.deepEqual(calls.map((c) => c.body.model), [plain]);
      const closed = r.sluice.provider;
      assert.ok([p.provider, p.alias].includes(closed), describeRes(r));
      const after = await states();
      assert.deepEqual(after, closed === p.provider ? ['ok', 'cooling'] : ['cooling', 'ok']);
    }));
  });
});

// ---- traffic cannot be redirected ----------------------------------------------

describe('upstream address is fixed by the spec', () => {
  let trap;
  const trapHits = []; // must stay empty
  before(async () => {
    trap = createServer((req, res) => {
      trapHits.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"trap":true}');
    });
    const port = await freePort();
    await new Promise((r) => trap.listen(port, '127.0.0.1', r));
    trap.port = port;
  });
  after(() => new Promise((r) => trap.close(r)));

  it('api_base / base_url in the body and Host / X-Forwarded-Host headers are ignored', () => eachVariant(async (v, tag) => {
    const p = PROTOS[v.proto];
    const trapHost = `127.0.0.1:${trap.port}`;
    const trapUrl = `http://${trapHost}${v.proto === 'openai' ? '/v1' : ''}`;
    const body = JSON.stringify({
      ...p.body(G(v, 'retry-redirect'), `${tag} hello`, v.stream),
      api_base: trapUrl, base_url: trapUrl, baseURL: trapUrl, api_host: trapHost,
    });
    // node:http, because fetch will not send a Host header of our choosing.
    const { status, headers, text } = await new Promise((res, rej) => {
      const req = httpRequest({
        host: '127.0.0.1', port: new URL(stack.url).port, method: 'POST', path: p.path,
        headers: {
          ...p.headers(), 'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
          host: trapHost, 'x-forwarded-host': trapHost, 'x-forwarded-proto': 'http',
          forwarded: `host=${trapHost};proto=http`, 'x-original-url': trapUrl,
        },
      }, (resp) => {
        let t = '';
        resp.setEncoding('utf8');
        resp.on('data', (d) => { t += d; });
        resp.on('end', () => res({ status: resp.statusCode, headers: resp.headers, text: t }));
        resp.on('error', rej);
      });
      req.on('error', rej);
      req.end(body);
    });
    const calls = await callsFor(tag);
    matrix.push(`${'api_base/Host redirect attempt'.padEnd(34)} ${v.name.padEnd(20)} -> ${status}; provider=${headers['x-sluice-provider']}; mock calls=${calls.length}; trap hits=${trapHits.length}`);
    assert.equal(status, 200, text.slice(0, 300));
    assert.equal(headers['x-sluice-provider'], p.provider);
    assert.equal(calls.length, 1, 'the mock got the call');
    assert.equal(calls[0].headers.host, stack.mock.address);
    assert.ok(!JSON.stringify(calls[0].headers).includes(`${trap.port}`),
      `no client-supplied address reached the upstream headers: ${JSON.stringify(calls[0].headers)}`);
    assert.deepEqual(trapHits, [], 'nothing reached the other address');
  }));

  it('an upstream 302 is not followed', () => eachVariant(async (v, tag) => {
    const trapUrl = `http://127.0.0.1:${trap.port}${PROTOS[v.proto].path}`;
    const model = G(v, `retry-302 [[mock redirect=${trapUrl}]]`);
    const r = await send(v, model, `${tag} hello`);
    const calls = await callsFor(tag);
    note('upstream 302', v, r, calls);
    assert.equal(calls.length, 1, 'one call, not retried');
    assert.equal(calls[0].status, 302, 'the mock did answer 302');
    assert.deepEqual(trapHits, [], 'the gateway did not follow the Location');
    assert.ok(r.status < 200 || r.status >= 300, `not a success: ${describeRes(r)}`);
    const loc = r.headers.get('location');
    assert.ok(!loc || !loc.includes(`${trap.port}`),
      `the client is not sent to the upstream's Location either: ${loc}`);
  }));
});
