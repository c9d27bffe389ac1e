// Limits end to end, against a gateway compiled from limits.yaml in front
// of the mock upstream: a tokens-per-minute limit (exact admitted counts
// from the usage the mock reports, 429 with an honest Retry-After, the
// bucket refilling), and token budgets per UTC day, ISO week and month at
// their boundaries, across a restart too.
//
// The boundaries are crossed by moving the gateway's wall clock with
// libfaketime (FAKETIME_LIB, LD_PRELOADed into the gateway only): it reads
// a frozen "YYYY-MM-DD hh:mm:ss" from a file this test rewrites between
// requests, so each request lands on the exact second named. Monotonic
// clocks (timers, rate buckets) stay real. The production binary is the
// one tested: it has no test-only clock.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startGateway, postJSON, sleep } from './lib/harness.mjs';
import { ADMIN_KEY } from './lib/gov-fixtures.mjs';

const BIN = process.env.SLUICE_LIMITS_BIN;
const FAKETIME_LIB = process.env.FAKETIME_LIB;
assert.ok(BIN, 'SLUICE_LIMITS_BIN must name the limits gateway');
assert.ok(FAKETIME_LIB, 'FAKETIME_LIB must name libfaketimeMT.so.1 (scripts/install-deps --test installs it)');

// limits.yaml holds their SHA-256.
const KEYS = {
  tpm: 'sk-sluice-test-tpm-e8d4c3a812816ca79991e903',
  daily: 'sk-sluice-test-daily-25968c18d3d025d505cc3d28',
  weekly: 'sk-sluice-test-weekly-7bf32b58a9b69629ad9dafda',
  monthly: 'sk-sluice-test-monthly-ac6cf21adbff8d2f38b973d0',
};
const TPM = 6000;            // keys.tpm.limits.tpm
const BUDGET_TOKENS = 1000;  // keys.{daily,weekly,monthly}.budget.tokens

let mock;
let dir;
before(async () => {
  mock = await startMock();
  dir = mkdtempSync(join(tmpdir(), 'sluice-limits-'));
});
after(async () => {
  await mock?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const chat = (content) => ({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content }] });
const bearer = (k) => ({ authorization: `Bearer ${k}` });
// Tokens one answer counts against a limit: OpenAI's prompt_tokens include
// the cached ones, so input + cache_read + output.
const total = (u) => u.prompt_tokens + u.completion_tokens;

describe('tokens per minute', () => {
  it('admits while the bucket is above zero, then 429 + Retry-After until it refills', async () => {
    const gw = await startGateway({ bin: BIN, mock });
    try {
      await mock.reset();
      // Each answer reports 2500 cached tokens besides its own: three put
      // the 6000-token bucket in debt (the bucket is checked at admission
      // and charged at settlement).
      const t0 = performance.now();
      const res = [];
      for (let i = 0; i < 6; i++) {
        res.push(await postJSON(`${gw.url}/v1/chat/completions`, chat(`tpm ${i} [[mock cache_read=2500]]`), bearer(KEYS.tpm)));
      }
      const an = await postJSON(`${gw.url}/v1/messages`,
        { model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'tpm anthropic' }] },
        { 'x-api-key': KEYS.tpm, 'anthropic-version': '2023-06-01' });
      const elapsedMs = performance.now() - t0;

      assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 429, 429, 429], res.map((r) => r.text).join('\n'));
      const used = res.slice(0, 3).map((r) => total(r.json.usage));
      for (const u of used) assert.ok(u > 2500, `usage reported: ${u}`);
      // What the bucket holds after the three, ignoring the refill
      // (TPM/60000 tokens a ms): refusals need it below zero, and the
      // refill during the test must not have lifted it back.
      const debt = used.reduce((a, b) => a + b, 0) - TPM;
      assert.ok(TPM - used[0] - used[1] > 0, 'the third request is admitted on what is left');
      const refillMax = (elapsedMs * TPM) / 60000;
      assert.ok(refillMax < debt, `the test took ${elapsedMs.toFixed(0)} ms: its refill (${refillMax}) would repay the debt (${debt})`);

      // Retry-After = whole seconds until the bucket is above zero again:
      // floor((debt + 1 - refill) * 60 / TPM) + 1, where the refill so far
      // is between 0 and what the elapsed time allows.
      const raMax = Math.floor(((debt + 1) * 60) / TPM) + 1;
      const raMin = Math.floor(((debt + 1 - refillMax) * 60) / TPM) + 1;
      for (const r of res.slice(3)) {
        assert.equal(r.json.error.type, 'rate_limit_error', r.text);
        assert.equal(r.json.error.code, 'rate_limit_exceeded', r.text);
        assert.match(r.json.error.message, /token rate limit/, r.text);
        const ra = Number(r.headers.get('retry-after'));
        assert.ok(Number.isInteger(ra) && ra >= raMin && ra <= raMax, `Retry-After ${ra}, want ${raMin}..${raMax}`);
      }
      assert.equal(an.status, 429, an.text);
      assert.equal(an.json.type, 'error', an.text);
      assert.equal(an.json.error.type, 'rate_limit_error', an.text);
      assert.ok(Number(an.headers.get('retry-after')) >= 1);

      // Only the admitted requests reached the upstream.
      const calls = (await mock.calls()).filter((c) => JSON.stringify(c.body).includes('tpm '));
      assert.deepEqual(calls.map((c) => c.body.messages[0].content),
        [0, 1, 2].map((i) => `tpm ${i} [[mock cache_read=2500]]`));

      // Retry-After is honest: once it has passed, the key is admitted.
      const last = Number(res.at(-1).headers.get('retry-after'));
      await sleep(last * 1000);
      const again = await postJSON(`${gw.url}/v1/chat/completions`, chat('tpm after the wait'), bearer(KEYS.tpm));
      assert.equal(again.status, 200, again.text);
    } finally {
      await gw.stop();
    }
  });
});

describe('budget periods at their UTC boundaries (libfaketime)', () => {
  it('a day ends at 00:00, an ISO week on Monday 00:00, a month on the 1st; restarts restore the current period', async () => {
    const clock = join(dir, 'clock');
    const state = join(dir, 'periods.db');
    // Written aside and renamed: the gateway never reads a half-written file.
    const at = (t) => { writeFileSync(`${clock}.new`, `${t}\n`); renameSync(`${clock}.new`, clock); };
    const env = {
      LD_PRELOAD: FAKETIME_LIB,
      FAKETIME_TIMESTAMP_FILE: clock,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
      // Under AddressSanitizer its runtime must otherwise be the first
      // preloaded library.
      ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':'),
    };
    const start = () => startGateway({ bin: BIN, mock, env, args: ['--state', state] });
    let n = 0;
    const ask = (gw, key, content) =>
      postJSON(`${gw.url}/v1/chat/completions`, chat(`${content} ${n++}`), bearer(KEYS[key]));
    // One request that reports 5000 cached tokens: over the 1000-token budget.
    const spend = async (gw, key) => {
      const r = await ask(gw, key, 'spend [[mock cache_read=5000]]');
      assert.equal(r.status, 200, `${key}: ${r.text}`);
      assert.ok(total(r.json.usage) > BUDGET_TOKENS);
    };
    const admitted = async (gw, key, when) => {
      const r = await ask(gw, key, 'probe');
      assert.equal(r.status, 200, `${key} at ${when}: a new period, admitted: ${r.text}`);
    };
    const refused = async (gw, key, when) => {
      const r = await ask(gw, key, 'probe');
      assert.equal(r.status, 429, `${key} at ${when}: the same period, refused: ${r.text}`);
      assert.equal(r.json.error.code, 'insufficient_quota', r.text);
      assert.match(r.json.error.message, /token budget/, r.text);
    };
    const spent = async (gw) => {
      const r = await fetch(`${gw.url}/admin/keys`, { headers: bearer(ADMIN_KEY) });
      assert.equal(r.status, 200);
      return Object.fromEntries((await r.json()).keys.map((k) => [k.name, k.budget?.spent_tokens]));
    };

    at('2024-02-28 23:59:59');
    let gw = await start();
    try {
      // The gateway's clock is the faked one (its log lines carry it).
      assert.match(gw.log(), /^2024-02-28T23:59:59/m);
      await spend(gw, 'daily');
      await spend(gw, 'monthly');
      await refused(gw, 'daily', 'Wed 2024-02-28 23:59:59');
      await refused(gw, 'monthly', 'Wed 2024-02-28 23:59:59');

      at('2024-02-29 00:00:00');
      await admitted(gw, 'daily', 'Thu 2024-02-29 00:00:00');
      await refused(gw, 'monthly', '2024-02-29 00:00:00 (a leap year: still February)');
      at('2024-02-29 23:59:59');
      await refused(gw, 'monthly', '2024-02-29 23:59:59');
      at('2024-03-01 00:00:00');
      await admitted(gw, 'monthly', '2024-03-01 00:00:00');

      // ISO weeks start on Monday, not Sunday.
      at('2024-03-02 23:59:59');
      await spend(gw, 'weekly');
      await refused(gw, 'weekly', 'Sat 2024-03-02 23:59:59');
      at('2024-03-03 00:00:00');
      await refused(gw, 'weekly', 'Sun 2024-03-03 00:00:00');
      at('2024-03-03 23:59:59');
      await refused(gw, 'weekly', 'Sun 2024-03-03 23:59:59');
      at('2024-03-04 00:00:00');
      await admitted(gw, 'weekly', 'Mon 2024-03-04 00:00:00');

      // December to January: a new day and month, the same ISO week
      // (it began on Monday 2024-12-30).
      at('2024-12-31 23:59:59');
      for (const k of ['daily', 'weekly', 'monthly']) await spend(gw, k);
      for (const k of ['daily', 'weekly', 'monthly']) await refused(gw, k, 'Tue 2024-12-31 23:59:59');
      at('2025-01-01 00:00:00');
      const view = await spent(gw);
      assert.equal(view.daily, 0, 'the admin view rolls over too');
      assert.equal(view.monthly, 0);
      assert.ok(view.weekly > BUDGET_TOKENS, `weekly spend carried into 2025: ${view.weekly}`);
      await admitted(gw, 'daily', 'Wed 2025-01-01 00:00:00');
      await admitted(gw, 'monthly', 'Wed 2025-01-01 00:00:00');
      await refused(gw, 'weekly', 'Wed 2025-01-01 00:00:00');
      at('2025-01-05 23:59:59');
      await refused(gw, 'weekly', 'Sun 2025-01-05 23:59:59');
      at('2025-01-06 00:00:00');
      await admitted(gw, 'weekly', 'Mon 2025-01-06 00:00:00');
      await spend(gw, 'weekly');
      await refused(gw, 'weekly', 'Mon 2025-01-06 00:00:00, spent');

      // Restarts sum the current period's rows from the ledger: a row
      // written at Monday 00:00:00 still counts on Sunday 23:59:59 and no
      // longer on the next Monday.
      for (const [t, still] of [['2025-01-06 00:00:00', true], ['2025-01-12 23:59:59', true], ['2025-01-13 00:00:00', false]]) {
        await gw.stop();
        at(t);
        gw = await start();
        if (still) await refused(gw, 'weekly', `${t} after a restart`);
        else await admitted(gw, 'weekly', `${t} after a restart`);
      }
    } finally {
      await gw.stop();
    }
  });
});
