// Security regressions (issue 20), items 7-12: the access log, what a
// refused caller learns, memory before authentication, an SSE line that
// never ends, connection slots, model names that are not UTF-8. Fixtures,
// processes and request builders: lib/security.mjs (see security.test.mjs).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { eventually, sleep } from './lib/harness.mjs';
import {
  env, securityProcesses, ADMIN_KEY, KEYS, MiB, SANITIZED, SLOTS_BIN, SURFACES, UNKNOWN_KEY,
  admin, ask, askStream, assertError, authHeaders, build, callsWith, delta, jsonText, keyRow,
  memKiB, newTag, raw, readStream, send, startGateway,
} from './lib/security.mjs';

securityProcesses();

describe('7. the access log', () => {
  it('CR, LF and ESC in a model name are escaped: one line per request', async () => {
    const forged = '2099-01-01T00:00:00.000Z 10.9.9.9:1 POST /admin/keys 200 model=forged key=admin';
    const reqs = [
      ['openai', { model: `claude-log-1\n${forged}` }],
      ['openai', { model: `gpt-4o-mini\r${forged}` }], // no such entry: 404, logged too
      ['openai', { model: 'claude-log-2\u001b[2J\u001b[31mred' }],
      ['anthropic', { model: `claude-log-3\r\n${forged}` }],
      ['gemini', { model: 'gemini-log-4', modelPath: `gemini-log-4%0A${encodeURIComponent(forged)}%0D%1B%5B31m` }],
      ['legacy', { model: `open-priced-log-5\n${forged}` }],
    ];
    await sleep(150); // earlier requests' lines are in
    const startLen = env.gw.fullLog().length;
    for (const [surface, o] of reqs) {
      const r = await ask(surface, { ...o, key: KEYS.rich, text: `log ${newTag()}`, limit: surface === 'gemini' ? { maxOutputTokens: 3 } : { max_tokens: 3 } });
      assert.ok(r.status === 200 || r.status === 404, `${surface} ${JSON.stringify(o.model)}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    const fresh = () => env.gw.fullLog().slice(startLen);
    await eventually(() => fresh().split('\n').length > reqs.length, 2000);
    await sleep(200); // any extra line would have been written by now
    const text = fresh();
    const lines = text.split('\n');
    assert.equal(lines.pop(), '', 'the log ends with a newline');
    assert.equal(lines.length, reqs.length, `one line per request:\n${text}`);
    for (const l of lines) {
      assert.match(l, /^\d{4}-\d\d-\d\dT[\d:.]+Z 127\.0\.0\.1:\d+ POST \/v1\S* \d{3} model=\S+ provider=\S+ upstream_model=\S+ attempts=\d+ ms=[\d.]+ key=rich request_id=[0-9a-f]{32}$/, l);
    }
    assert.ok(!text.includes('\r') && !text.includes('\u001b'), 'no raw CR or ESC in the log');
    for (const esc of ['\\x0a', '\\x0d', '\\x1b']) assert.ok(text.includes(esc), `escaped as ${esc}`);
    assert.ok(!lines.some((l) => l.startsWith('2099')), 'no forged line');
  });
});

describe('8. what a refused caller learns', () => {
  it('/healthz?detail=1 needs the admin key', async () => {
    const plain = await send('/healthz', { method: 'GET' });
    assert.equal(plain.status, 200);
    assert.equal(plain.json.targets, undefined);
    for (const [q, headers] of [
      ['?detail=1', {}], ['?detail=1', { authorization: `Bearer ${KEYS.rich}` }],
      ['?detail=1', { authorization: `Bearer ${UNKNOWN_KEY}` }], ['?detail=0', {}], ['?x=1&detail=yes', {}],
      [`?detail=1&key=${KEYS.rich}`, {}],
    ]) {
      const r = await send(`/healthz${q}`, { method: 'GET', headers });
      assert.equal(r.status, 401, `/healthz${q} ${JSON.stringify(headers)}: ${r.text}`);
      assert.ok(!r.text.includes('up-openai') && !r.text.includes('gpt-4o'), 'nothing of the routing table');
    }
    // A bare `detail` is no detail parameter: the plain answer.
    const bare = await send('/healthz?detail', { method: 'GET' });
    assert.ok(bare.status === 401 || (bare.status === 200 && bare.json.targets === undefined), bare.text);
    const r = await send('/healthz?detail=1', { method: 'GET', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200, r.text);
    const models = new Set(r.json.targets.map((x) => x.model));
    for (const m of ['gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash', 'claude-*', 'open-*']) assert.ok(models.has(m), m);
    assert.ok(r.json.targets.every((x) => x.provider && x.state), 'every target has its provider and state');
  });

  it('expired, unknown and wrong-address keys get the identical 401 on every surface', async () => {
    const tag = newTag();
    for (const surface of SURFACES) {
      for (const viaQuery of [false, true]) {
        const bodies = new Set();
        for (const key of [KEYS.expired, UNKNOWN_KEY, KEYS.office]) {
          const model = surface === 'gemini' ? 'gemini-2.5-flash' : surface === 'anthropic' ? 'claude-sonnet-4-5' : 'gpt-4o-mini';
          const { path, body } = build(surface, { model, text: `refused ${tag}`, limit: surface === 'gemini' ? {} : { max_tokens: 5 },
            query: viaQuery ? `key=${encodeURIComponent(key)}` : '' });
          const res = await send(path, { headers: viaQuery ? authHeaders(surface, undefined) : authHeaders(surface, key), body });
          const msg = assertError(surface, res, 401, `${surface} ${viaQuery ? '?key=' : 'header'}`);
          assert.equal(msg, 'invalid API key');
          bodies.add(`${res.status} ${res.headers.get('content-type')} ${res.text}`);
        }
        assert.equal(bodies.size, 1, `${surface} ${viaQuery ? '?key=' : 'header'}: the answers differ:\n${[...bodies].join('\n')}`);
      }
    }
    assert.deepEqual(await callsWith(tag), []);
  });
});

describe('9. memory before authentication', () => {
  it('30 slow uploads declaring 10 MiB without a valid key get 401 at once and cost no memory', async (t) => {
    const N = 30;
    const idle = [];
    for (let i = 0; i < 5; i++) { idle.push(memKiB(env.gw.pid).rss); await sleep(50); }
    const idleRss = Math.max(...idle);
    let peak = idleRss;
    const sampler = setInterval(() => { try { peak = Math.max(peak, memKiB(env.gw.pid).rss); } catch { /* exited */ } }, 25);
    const targets = [
      ['/v1/chat/completions', ''], ['/v1/messages', 'anthropic-version: 2023-06-01\r\n'],
      ['/v1beta/models/gemini-2.5-flash:generateContent', ''], ['/v1/completions', ''],
    ];
    const one = (i) => new Promise((done) => {
      const [path, extra] = targets[i % targets.length];
      const auth = i % 3 === 0 ? '' : i % 3 === 1 ? `Authorization: Bearer ${UNKNOWN_KEY}\r\n` : `x-api-key: ${KEYS.expired}\r\n`;
      const sock = connect(env.gw.port, '127.0.0.1');
      const out = { path, got: '', bodySent: 0, answeredAfterBytes: -1, answeredMs: -1, closedMs: -1, gaveUp: false };
      let t0 = 0;
      let timer = null;
      const finish = () => {
        clearInterval(timer);
        clearTimeout(deadline);
        sock.destroy();
        done(out);
      };
      const deadline = setTimeout(() => { out.gaveUp = true; finish(); }, 4000);
      sock.on('connect', () => {
        sock.write(`POST ${path} HTTP/1.1\r\nHost: sluice.test\r\nContent-Type: application/json\r\n${extra}${auth}` +
          `Content-Length: ${10 * MiB}\r\n\r\n`);
        t0 = performance.now();
        timer = setInterval(() => {
          if (!sock.destroyed && sock.writable) { sock.write('x'); out.bodySent++; }
        }, 100);
      });
      sock.on('data', (d) => {
        out.got += d.toString('latin1');
        if (out.answeredMs < 0 && out.got.includes('\r\n\r\n')) {
          out.answeredMs = performance.now() - t0;
          out.answeredAfterBytes = out.bodySent;
        }
      });
      const closed = () => { if (out.closedMs < 0) out.closedMs = performance.now() - t0; finish(); };
      sock.on('end', closed);
      sock.on('error', closed);
      sock.on('close', closed);
    });
    const results = await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
    clearInterval(sampler);
    for (const r of results) {
      assert.match(r.got, /^HTTP\/1\.1 401 /, `${r.path}: ${JSON.stringify(r.got.slice(0, 120))}`);
      // Answered before the client had sent more than a few of the 10 MiB it
      // announced (one byte per 100 ms): the answer did not wait for the body.
      assert.ok(r.answeredMs >= 0, `${r.path}: answered`);
      assert.ok(r.answeredAfterBytes <= 15, `${r.path}: answered after ${r.answeredAfterBytes} body bytes: the body was not awaited`);
      assert.match(r.got, /connection: close/i, `${r.path}: the answer announces the close`);
      // Closed by the gateway, not by this test giving up after 4 s.
      assert.ok(!r.gaveUp && r.closedMs >= 0, `${r.path}: the gateway closed the connection (${r.closedMs.toFixed(0)} ms)`);
    }
    const grew = peak - idleRss;
    t.diagnostic(`RSS idle ${idleRss} KiB, peak ${peak} KiB; 401 after at most ` +
      `${Math.max(...results.map((r) => r.answeredMs)).toFixed(0)} ms`);
    assert.ok(grew < 8 * 1024, `RSS grew by ${grew} KiB over idle ${idleRss} KiB while ${N} clients each declared 10 MiB`);
    // The gateway still serves.
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: 'after uploads', limit: { max_tokens: 3 } })).status, 200);
  });
});

describe('10. an SSE line that never ends', () => {
  it('a 4 MiB data: line without newline ends the stream with an error event; memory stays bounded', async (t) => {
    const LINE = 4 * MiB;
    const paths = [
      // OpenAI upstream, sluice-added usage stripped from the stream.
      ['openai', 'gpt-4o-mini'],
      ['legacy', 'gpt-4o-mini'],
      // Translated streams.
      ['openai', 'gpt-via-anthropic'],
      ['anthropic', 'claude-via-openai'],
      ['gemini', 'gpt-4o-mini'],
    ];
    // Every stream and the memory are checked before anything fails, so
    // a failure report says all that went wrong.
    const problems = [];
    const check = (ok, msg) => { if (!ok) problems.push(msg); };
    const one = async ([surface, model]) => {
      const label = `${surface} ${model}`;
      const r = await askStream(surface, { model, key: KEYS.rich, text: `huge ${newTag()} [[mock words=6 huge_line=${LINE}]]`,
        limit: surface === 'gemini' ? { maxOutputTokens: 50 } : { max_tokens: 50 } });
      check(r.status === 200, `${label}: status ${r.status}`);
      const res = await readStream(r);
      const last = res.events.at(-1) || { data: '' };
      const bytes = res.events.reduce((n, e) => n + e.data.length, 0) + (res.rest || '').length;
      check(bytes < MiB, `${label}: ${bytes} bytes of the line were relayed`);
      check(res.events.length >= 2, `${label}: the good first half was relayed`);
      if (surface === 'anthropic') {
        check(last.event === 'error', `${label}: no error event at the end: ${last.data.slice(0, 120)}`);
        check(!res.events.some((e) => e.event === 'message_stop'), `${label}: a clean message_stop`);
      } else {
        check(last.json?.error, `${label}: no error event at the end: ${last.data.slice(0, 120)}`);
        check(!res.events.some((e) => e.data === '[DONE]'), `${label}: a clean [DONE]`);
      }
      check(res.cut, `${label}: the connection should close without the final chunk`);
    };
    // Memory: the stripping relay holds a line until its newline, at most
    // SL_SSE_MAX_LINE (1 MiB). Four such streams at once, twice: a relay
    // holding the whole line needs 16 MiB or more at once.
    const hwm0 = memKiB(env.gw.pid).hwm;
    for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: 4 }, () => one(paths[0])));
    const grewStrip = memKiB(env.gw.pid).hwm - hwm0;
    check(SANITIZED || grewStrip < 2 * LINE / 1024, `4 stripped streams: peak RSS grew by ${grewStrip} KiB`);
    // Every path at once, twice. Each filter that splits lines may hold up
    // to 1 MiB of the line before refusing it: up to 2 MiB for a
    // translated stream, 3 for a legacy one, about 10 MiB for the five.
    const hwm1 = memKiB(env.gw.pid).hwm;
    for (let round = 0; round < 2; round++) await Promise.all(paths.map(one));
    const grewAll = memKiB(env.gw.pid).hwm - hwm1;
    check(SANITIZED || grewAll < 4 * LINE / 1024, `every path: peak RSS grew by ${grewAll} KiB`);
    t.diagnostic(`peak RSS ${hwm0} KiB before; grew by ${grewStrip} KiB (4 stripped streams), then ${grewAll} KiB (every path)` +
      `${SANITIZED ? '; sanitizer build: not bounded' : ''}`);
    assert.deepEqual(problems, []);
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: 'after huge lines', limit: { max_tokens: 3 } })).status, 200);
  });
});

describe('11. connection slots', () => {
  it('idle keep-alive connections that never authenticated are shed first', async () => {
    const slots = await startGateway(SLOTS_BIN, ['--workers', '1']);
    const MAX = 6; // security-slots.yaml server.max_connections
    const open = [];
    // A keep-alive connection that sends one request per call.
    const keepAlive = async () => {
      const sock = connect(slots.port, '127.0.0.1');
      await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
      const c = { sock, closed: false, buf: '' };
      sock.on('data', (d) => { c.buf += d.toString('latin1'); });
      sock.on('close', () => { c.closed = true; });
      sock.on('error', () => { c.closed = true; });
      // One whole response (Content-Length framed), or what came before a close.
      const complete = () => {
        const end = c.buf.indexOf('\r\n\r\n');
        const cl = /\r\ncontent-length: (\d+)/i.exec(c.buf);
        return end >= 0 && cl && c.buf.length >= end + 4 + Number(cl[1]);
      };
      c.request = async (head) => {
        c.buf = '';
        sock.write(head);
        const ok = await eventually(() => complete() || c.closed, 3000, 10);
        assert.ok(ok && complete(), `no answer: ${JSON.stringify(c.buf)}`);
        return Number(/^HTTP\/1\.1 (\d{3})/.exec(c.buf)?.[1]);
      };
      open.push(c);
      return c;
    };
    const authed = `GET /v1/models HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer ${KEYS.rich}\r\n\r\n`;
    const anon = 'GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n';
    try {
      // Two authenticated connections first (the longest idle), then four
      // that never presented a key: every slot is taken.
      const keyed = [];
      for (let i = 0; i < 2; i++) {
        const c = await keepAlive();
        assert.equal(await c.request(authed), 200);
        keyed.push(c);
        await sleep(30);
      }
      const anonymous = [];
      for (let i = 0; i < MAX - 2; i++) {
        const c = await keepAlive();
        assert.equal(await c.request(anon), 200);
        anonymous.push(c);
        await sleep(30);
      }
      // Each new authenticated client is served, and takes the slot of an
      // anonymous idle connection, the longest idle first.
      for (let i = 0; i < anonymous.length; i++) {
        const c = await keepAlive();
        assert.equal(await c.request(authed), 200, `new client ${i} served`);
        keyed.push(c);
        await eventually(() => anonymous[i].closed, 2000);
        assert.deepEqual(anonymous.map((a) => a.closed), anonymous.map((_, k) => k <= i), `after new client ${i}`);
        assert.ok(keyed.every((k) => !k.closed), 'no authenticated connection was shed while anonymous ones were idle');
        await sleep(30);
      }
      // Only authenticated idle connections left: the longest idle goes.
      const last = await keepAlive();
      assert.equal(await last.request(authed), 200, 'served once every anonymous slot is gone');
      await eventually(() => keyed[0].closed, 2000);
      assert.ok(keyed[0].closed, 'then the longest-idle authenticated connection gave up its slot');
      // The others still work on their old connections.
      for (const k of keyed.slice(1)) assert.equal(await k.request(authed), 200);
    } finally {
      for (const c of open) c.sock.destroy();
      await slots.stop();
    }
  });
});

describe('12. model names that are not UTF-8', () => {
  it('are refused with 400 before admission on every surface: no upstream call, no ledger row', async () => {
    const tag = newTag();
    const before = await keyRow('rich');
    // Gemini: the name is a percent-encoded path segment (gemini-* would
    // route any of these to a priced target).
    for (const seg of ['gemini-%C3%28', 'gemini-%FF', 'gemini-%ED%A0%80', 'gemini-%C0%AF', 'gemini-x%E2%82']) {
      for (const stream of [false, true]) {
        const { path, body } = build('gemini', { model: 'x', modelPath: seg, text: `utf8 ${tag}`, limit: { maxOutputTokens: 5 }, stream });
        const res = await send(path, { headers: authHeaders('gemini', KEYS.rich), body });
        assert.deepEqual(await callsWith(tag), [], `${seg}: reached the upstream`);
        const msg = assertError('gemini', res, 400, `${seg}${stream ? ' stream' : ''}`);
        assert.equal(msg, "'model' must be valid UTF-8", seg);
      }
    }
    // A NUL is valid UTF-8 but ends a C string: refused too, whatever the status.
    const nul = await ask('gemini', { model: 'x', modelPath: 'gemini-x%00y', key: KEYS.rich, text: `utf8 ${tag}`, limit: { maxOutputTokens: 5 } });
    assert.ok(nul.status >= 400 && nul.status < 500, `NUL: ${nul.status}`);
    // JSON bodies: lone surrogates and raw bytes that are not UTF-8.
    const bad = [
      (b) => b.replace('"claude-utf8"', '"claude-\\udc80"'),
      (b) => b.replace('"claude-utf8"', '"claude-\\ud800x"'),
      (b) => b.replace('"claude-utf8"', '"claude-\\udfff\\ud800"'),
      (b) => Buffer.from(b.replace('"claude-utf8"', '"claude-\u00c3("'), 'latin1'),
      (b) => Buffer.concat([Buffer.from(b.slice(0, b.indexOf('claude-utf8') + 7)), Buffer.from([0xff, 0xfe]),
        Buffer.from(b.slice(b.indexOf('claude-utf8') + 7))]),
    ];
    for (const surface of ['openai', 'anthropic', 'legacy']) {
      for (const [i, f] of bad.entries()) {
        const { path, body } = build(surface, { model: 'claude-utf8', text: `utf8 ${tag}`, limit: { max_tokens: 5 } });
        const res = await send(path, { headers: authHeaders(surface, KEYS.rich), body: f(jsonText(body)) });
        assertError(surface, res, 400, `${surface} body ${i}`);
      }
    }
    assert.deepEqual(await callsWith(tag), [], 'nothing reached the upstream');
    // A good request is the barrier: its row is the only new one.
    assert.equal((await ask('openai', { model: 'gpt-4o-mini', key: KEYS.rich, text: `utf8 ok ${tag}`, limit: { max_tokens: 3 } })).status, 200);
    assert.equal(delta(before, await keyRow('rich')).requests, 1, 'no ledger row for the refused names');
  });
});
