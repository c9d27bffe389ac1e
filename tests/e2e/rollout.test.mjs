// Rolling out a new spec without losing anything: the gateway binary is
// swapped 20 times under bounded load (keep-alive clients, one connection
// per request clients, 20 slow streams open at all times), alternating two
// binaries built from different specs (spec.yaml, rollout.yaml) and two
// worker counts, so listeners are handed between instances whose worker
// counts differ. With `--upgrade-from` no request may fail and no stream
// may be cut. The same load over 20 plain swaps (start a second instance
// on the port with SO_REUSEPORT, SIGTERM the first) shows what the
// hand-off avoids; both figures are printed. Also: what a client idle
// across a swap sees (its next request answered with Connection: close,
// or the close at the drain deadline), and socket activation under
// systemd-socket-activate (SOCKET_ACTIVATE_BIN).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startMock, startProcess, freePort, sleep, eventually, mockArgs, OPENAI_KEY, ANTHROPIC_KEY,
} from './lib/harness.mjs';

const BIN_A = process.env.SLUICE_BIN;
const BIN_B = process.env.SLUICE_NEXT_BIN;
const SWAPS = Number(process.env.ROLLOUT_SWAPS || 20);
const DRAIN_MS = 5000;
const ENV = { ...process.env, SLUICE_E2E_OPENAI_KEY: OPENAI_KEY, SLUICE_E2E_ANTHROPIC_KEY: ANTHROPIC_KEY };

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock?.stop(); });

// One request; resolves { status, text } or { error } (never rejects).
function request(port, { agent, path = '/v1/chat/completions', body, close = false }) {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    let done = false;
    const finish = (r) => { if (!done) { done = true; resolve(r); } };
    const req = http.request({
      host: '127.0.0.1', port, method: body ? 'POST' : 'GET', path, agent,
      headers: {
        'content-type': 'application/json', 'content-length': body ? Buffer.byteLength(data) : 0,
        ...(close ? { connection: 'close' } : {}),
      },
    }, (res) => {
      let text = '';
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => { ended = true; finish({ status: res.statusCode, text, headers: res.headers }); });
      res.on('error', (e) => finish({ error: `response: ${e.code || e.message}`, text }));
      res.on('close', () => { if (!ended) finish({ error: 'response cut', text }); });
    });
    req.on('error', (e) => finish({ error: e.code || e.message }));
    req.setTimeout(20000, () => req.destroy(new Error('timeout')));
    req.end(body ? data : undefined);
  });
}

const chat = (content, extra = {}) => ({ model: 'demo-model', messages: [{ role: 'user', content }], ...extra });
const slowStream = {
  model: 'gpt-4o-mini', stream: true,
  messages: [{ role: 'user', content: 'slow [[mock chunks=8 interval_ms=150]]' }],
};

// Client loops until `state.stop`; every outcome is counted.
function startLoad(port, state) {
  const stats = { requests: 0, failed: 0, streams: 0, cut: 0, errors: {} };
  const note = (what) => { stats.errors[what] = (stats.errors[what] || 0) + 1; };
  const loops = [];
  const loop = async (fn) => { while (!state.stop) await fn(); };
  for (let i = 0; i < 4; i++) { // keep-alive clients
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    loops.push(loop(async () => {
      const r = await request(port, { agent, body: chat(`ka ${i}`) });
      stats.requests++;
      if (r.error || r.status !== 200) { stats.failed++; note(r.error || `status ${r.status}`); }
      await sleep(2);
    }).finally(() => agent.destroy()));
  }
  for (let i = 0; i < 16; i++) { // a new connection per request
    loops.push(loop(async () => {
      const r = await request(port, { agent: false, body: chat(`cpr ${i}`), close: true });
      stats.requests++;
      if (r.error || r.status !== 200) { stats.failed++; note(r.error || `status ${r.status}`); }
    }));
  }
  for (let i = 0; i < 20; i++) { // slow streams, always 20 open
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    loops.push(loop(async () => {
      const r = await request(port, { agent, body: slowStream });
      stats.streams++;
      if (r.error || r.status !== 200 || !r.text.trimEnd().endsWith('data: [DONE]')) {
        stats.cut++;
        note(`stream: ${r.error || r.status}`);
      }
    }).finally(() => agent.destroy()));
  }
  return { stats, done: Promise.all(loops) };
}

function gateway(bin, port, dir, extra) {
  return startProcess('sluice', bin, [
    '--listen', `127.0.0.1:${port}`, '--state', join(dir, 's.db'), '--quiet',
    '--drain-timeout', String(DRAIN_MS), ...mockArgs(bin, mock), ...extra,
  ], { env: ENV, pattern: /sluice listening on (\S+)/ });
}

// Runs the load across SWAPS swaps made by `swap(old, i)` (which returns
// the new instance); every replaced instance must exit 0.
async function underLoad(label, first, swap, port) {
  const state = { stop: false };
  const load = startLoad(port, state);
  const exits = [];
  let cur = first;
  const t0 = performance.now();
  // Paced by what the clients got done, not by the clock, so a loaded
  // machine runs the same load, only slower: wait for `req` more requests
  // and `str` more streams to finish (bounded, to tell slow from stuck).
  const st = load.stats;
  const progress = async (req, str) => {
    const [r0, s0] = [st.requests, st.streams];
    const ok = await eventually(() => st.requests >= r0 + req && st.streams >= s0 + str, 60000, 20);
    assert.ok(ok, `the load stalled: ${st.requests - r0} requests, ${st.streams - s0} streams in 60 s`);
  };
  await progress(20, 20); // each stream loop is on its second stream: all open before the first swap
  for (let i = 0; i < SWAPS; i++) {
    const old = cur;
    cur = await swap(old, i);
    exits.push(old.exited.then((e) => ({ e, log: old.log() })));
    await progress(15, 6);
  }
  state.stop = true;
  await load.done;
  const secs = (performance.now() - t0) / 1000;
  for (const x of await Promise.all(exits))
    assert.deepEqual(x.e, { code: 0, signal: null }, `a replaced gateway must exit 0:\n${x.log}`);
  const s = load.stats;
  console.log(`# ${label}: ${SWAPS} swaps in ${secs.toFixed(1)} s: ${s.requests} requests, ` +
    `${s.failed} failed; ${s.streams} streams, ${s.cut} cut ${JSON.stringify(s.errors)}`);
  return { ...s, last: cur };
}

async function stop(h) {
  h.proc.kill('SIGTERM');
  const e = await h.exited;
  assert.deepEqual(e, { code: 0, signal: null }, h.log());
}

describe('rollout', () => {
  const figures = {};

  it(`${SWAPS} hand-offs under load: 0 failed requests, 0 cut streams`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-roll-'));
    try {
      const port = await freePort();
      const ctl = join(dir, 's.db.ctl');
      const first = await gateway(BIN_A, port, dir, ['--workers', '2']);
      const res = await underLoad('hand-off', first, (old, i) =>
        gateway(i % 2 ? BIN_A : BIN_B, port, dir, ['--workers', i % 2 ? '2' : '3', '--upgrade-from', ctl]), port);
      figures.handoff = res;
      // The last binary swapped in answers, and it is the spec it says.
      const h = await request(port, { agent: false, path: '/healthz' });
      assert.equal(h.status, 200);
      await stop(res.last);
      assert.equal(res.failed, 0, `failed requests: ${JSON.stringify(res.errors)}`);
      assert.equal(res.cut, 0, `cut streams: ${JSON.stringify(res.errors)}`);
      // Guaranteed by the pacing (15 requests and 6 streams per swap).
      assert.ok(res.requests > 200 && res.streams > 100, `enough load: ${res.requests} requests, ${res.streams} streams`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`${SWAPS} plain SIGTERM+restart swaps under the same load (the losses a hand-off avoids)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-roll-'));
    try {
      const port = await freePort();
      const extra = (i) => ['--workers', i % 2 ? '2' : '3', '--control', 'off'];
      const first = await gateway(BIN_A, port, dir, extra(1));
      const res = await underLoad('SIGTERM+restart', first, async (old, i) => {
        const next = await gateway(i % 2 ? BIN_A : BIN_B, port, dir, extra(i));
        old.proc.kill('SIGTERM');
        return next;
      }, port);
      figures.restart = res;
      await stop(res.last);
      const h = figures.handoff;
      if (h)
        console.log(`# rollout figures: hand-off ${h.failed} failed of ${h.requests}, ${h.cut} cut of ${h.streams} streams; ` +
          `SIGTERM+restart ${res.failed} failed of ${res.requests}, ${res.cut} cut of ${res.streams} streams`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a keep-alive client idle across a hand-off: its next request is answered with Connection: close; one idle past the deadline is closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-roll-'));
    try {
      const port = await freePort();
      const drain = 1500;
      const args = (more) => ['--workers', '1', '--drain-timeout', String(drain), ...more];
      const a = await gateway(BIN_A, port, dir, args([]));
      const raw = () => new Promise((r) => {
        const s = connect(port, '127.0.0.1', () => r(s));
        s.text = '';
        s.setEncoding('latin1');
        s.on('data', (d) => { s.text += d; });
        s.closedAt = new Promise((c) => s.on('close', () => c(performance.now())));
        s.on('error', () => {});
      });
      const get = 'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n';
      const active = await raw();
      const idle = await raw();
      for (const s of [active, idle]) s.write(get);
      await eventually(() => /\r\n\r\n/.test(active.text) && /\r\n\r\n/.test(idle.text), 5000, 20);
      assert.match(active.text, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(active.text, /connection: close/i);
      const b = await gateway(BIN_B, port, dir, args(['--upgrade-from', join(dir, 's.db.ctl')]));
      const t0 = performance.now();
      await sleep(300);
      active.text = '';
      active.write(get); // after the old instance began draining
      await eventually(() => /\r\n\r\n/.test(active.text), 5000, 20);
      assert.match(active.text, /^HTTP\/1\.1 200[^]*connection: close/i, 'answered, with Connection: close');
      const [ta, ti] = [await active.closedAt, await idle.closedAt];
      // Event order: the answered connection closes right after its answer,
      // before the idle one, which waits for the drain deadline.
      assert.ok(ta < ti, 'closed right after that answer, before the idle one');
      const idleMs = ti - t0;
      console.log(`# idle keep-alive connection closed ${idleMs.toFixed(0)} ms after the hand-off (drain deadline ${drain} ms)`);
      // At the deadline, not before; the upper bound only tells it from a hang.
      assert.ok(idleMs >= drain - 200 && idleMs < 3 * drain, `idle closed at the deadline: ${idleMs}`);
      assert.deepEqual(await a.exited, { code: 0, signal: null }, a.log());
      await stop(b);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const activate = process.env.SOCKET_ACTIVATE_BIN || 'systemd-socket-activate';
  // systemd-socket-activate clears the environment but for -E names, and
  // sluice will not start without its providers' keys.
  const keep = ['-E', 'SLUICE_E2E_OPENAI_KEY', '-E', 'SLUICE_E2E_ANTHROPIC_KEY'];
  it('socket activation: serves the socket systemd-socket-activate passes, refuses one on another address',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-roll-'));
      try {
        const port = await freePort();
        const h = await startProcess('socket-activate', activate, [
          '-l', `127.0.0.1:${port}`, ...keep, BIN_A, '--listen', `127.0.0.1:${port}`, '--state', join(dir, 's.db'),
          '--workers', '2', ...mockArgs(BIN_A, mock),
        ], { env: ENV, pattern: /(Listening on \S+)/ });
        // systemd-socket-activate starts sluice on the first connection.
        const r = await request(port, { agent: false, body: chat('activated') });
        assert.equal(r.status, 200, JSON.stringify(r));
        await sleep(200);
        assert.match(h.log(), /sluice listening on 127\.0\.0\.1/);
        await stop(h);

        const port2 = await freePort();
        const bad = spawn(activate, ['-l', `127.0.0.1:${port2}`, ...keep, BIN_A, '--listen', `127.0.0.1:${port}`,
          '--state', join(dir, 's2.db')], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
        let log = '';
        bad.stderr.on('data', (d) => { log += d; });
        await sleep(300);
        const r2 = await request(port2, { agent: false, path: '/healthz' });
        assert.ok(r2.error || r2.status !== 200, 'a socket on another address is not served');
        await sleep(200);
        assert.match(log, /socket activation: socket listens on 127\.0\.0\.1:\d+, this gateway on 127\.0\.0\.1:\d+/);
        bad.kill('SIGTERM');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
});

if (!existsSync(BIN_A || '') || !existsSync(BIN_B || ''))
  throw new Error('SLUICE_BIN and SLUICE_NEXT_BIN must name the two gateway binaries');
