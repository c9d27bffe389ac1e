// What each `--ledger` mode guarantees when the gateway is killed with
// SIGKILL right after its last answer, read from the SQLite file with the
// sqlite3 CLI; the ledger schema against README.md; what prompt-cache tokens
// cost (OpenAI, Anthropic and Gemini upstreams); and `?key=` authentication
// end to end on every client surface. Against a gateway compiled from gov.yaml (keys, budgets) whose
// providers the harness points at its mock.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { E2E_DIR, startMock, startGateway, postJSON } from './lib/harness.mjs';
import { KEYS, PLANTED } from './lib/gov-fixtures.mjs';

const BIN = process.env.SLUICE_GOV_BIN;
const SQLITE3 = process.env.SQLITE3_BIN || 'sqlite3';
assert.ok(BIN, 'SLUICE_GOV_BIN must name the gov gateway');

let mock;
let dir;
before(async () => {
  mock = await startMock();
  dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'));
});
after(async () => {
  await mock?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const chat = (content) => ({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content }] });
const bearer = (k) => ({ authorization: `Bearer ${k}` });

// Rows of `key` in the ledger at `state` (read-write open: a killed
// writer's WAL is recovered like a restarted gateway would).
function sql(state, query) {
  const r = spawnSync(SQLITE3, ['-json', state, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sqlite3 (scripts/install-deps --test installs it): ${r.error || r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}
const rows = (state, key) => sql(state, `SELECT COUNT(*) AS n FROM requests WHERE key='${key}'`)[0].n;

// Starts the gov gateway on a fresh state file with `--ledger mode`, sends
// n sequential requests with `key`, all of which must succeed; returns
// the gateway and the state path.
async function serve(mode, key, n) {
  const state = join(dir, `${mode}-${key}.db`);
  const gw = await startGateway({ bin: BIN, mock, env: PLANTED, args: ['--state', state, '--workers', '1', '--ledger', mode] });
  for (let i = 0; i < n; i++) {
    const r = await postJSON(`${gw.url}/v1/chat/completions`, chat(`ledger ${mode} ${i}`), bearer(KEYS[key]));
    assert.equal(r.status, 200, r.text);
  }
  return { gw, state };
}

async function kill9(gw) {
  gw.proc.kill('SIGKILL');
  const res = await gw.exited;
  assert.equal(res.signal, 'SIGKILL');
}

describe('--ledger after kill -9', () => {
  // `ratey` has no budget (own or team): under the default mode its rows
  // are batched without waiting, so only `commit` guarantees them.
  it('commit: every answered request has its row, even for a key without a budget', async () => {
    const { gw, state } = await serve('commit', 'ratey', 4);
    await kill9(gw);
    assert.equal(rows(state, 'ratey'), 4);
  });

  it('budget (default): every answered request of a budgeted key has its row', async () => {
    const { gw, state } = await serve('budget', 'alice', 4);
    await kill9(gw);
    assert.equal(rows(state, 'alice'), 4);
  });

  it('async: a kill -9 may lose rows, never invents them; a SIGTERM flushes all of them', async () => {
    const killed = await serve('async', 'alice', 4);
    await kill9(killed.gw);
    assert.ok(rows(killed.state, 'alice') <= 4);
    const clean = await serve('async', 'ratey', 4);
    await clean.gw.stop();
    assert.equal(rows(clean.state, 'ratey'), 4);
  });

  it('off: no state file is created at all', async () => {
    const { gw, state } = await serve('off', 'alice', 2);
    await gw.stop();
    assert.equal(existsSync(state), false, 'no ledger file');
  });
});

// The README's ```sql block under "### The ledger": its statements,
// comments dropped, whitespace folded.
function readmeSchema() {
  const readme = readFileSync(resolve(E2E_DIR, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### The ledger'));
  const m = section.match(/```sql\n([\s\S]*?)```/);
  assert.ok(m, 'README: a ```sql block under "### The ledger"');
  return m[1].replace(/--[^\n]*/g, '').split(';').map((x) => x.replace(/\s+/g, ' ').trim()).filter(Boolean);
}

describe('the ledger schema', () => {
  it('is the one the README documents: columns, types, NOT NULL, key, indexes; WAL mode', async () => {
    const state = join(dir, 'schema.db');
    const gw = await startGateway({ bin: BIN, mock, env: PLANTED, args: ['--state', state] });
    try {
      const r = await postJSON(`${gw.url}/v1/chat/completions`, chat('schema'), bearer(KEYS.alice));
      assert.equal(r.status, 200, r.text);
    } finally {
      await gw.stop();
    }
    const stmts = readmeSchema();
    // Every table the README documents, column by column...
    const doc = {};
    for (const t of stmts.filter((x) => x.startsWith('CREATE TABLE '))) {
      const name = t.match(/^CREATE TABLE (\w+) \(/)[1];
      doc[name] = t.slice(t.indexOf('(') + 1, t.lastIndexOf(')')).split(',').map((def) => {
        const [col, type] = def.trim().split(' ');
        return { name: col, type, notnull: /NOT NULL/.test(def) ? 1 : 0, pk: /PRIMARY KEY/.test(def) ? 1 : 0 };
      });
    }
    assert.ok(doc.requests, `README documents CREATE TABLE requests: ${stmts}`);
    // ...is in the file as documented, and nothing else is.
    const objects = sql(state, "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
    assert.deepEqual(objects.filter((o) => o.type === 'table').map((o) => o.name), Object.keys(doc).sort(),
      'the state file\'s tables differ from README.md ("### The ledger")');
    for (const [name, cols] of Object.entries(doc)) {
      const real = sql(state, `PRAGMA table_info(${name})`).map(({ name: n, type, notnull, pk }) => ({ name: n, type, notnull, pk }));
      assert.deepEqual(real, cols, `the ${name} table differs from README.md ("### The ledger")`);
    }
    assert.deepEqual(objects.filter((o) => o.type === 'index').map((o) => o.sql.replace(/\s+/g, ' ')).sort(),
      stmts.filter((x) => x.startsWith('CREATE INDEX')).sort(), 'indexes differ from README.md');
    assert.deepEqual(sql(state, 'PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
    // The row has every documented column, none of them NULL.
    const [row] = sql(state, 'SELECT * FROM requests');
    assert.deepEqual(Object.keys(row), doc.requests.map((c) => c.name));
    for (const [k, v] of Object.entries(row)) assert.notEqual(v, null, k);
  });
});

// gov.yaml's prices, micro-USD per million tokens.
const PRICE = {
  'gpt-4o-mini': { input: 150000, output: 600000, cache_read: 75000, cache_write: 0 },
  'claude-sonnet-4-5': { input: 3000000, output: 15000000, cache_read: 300000, cache_write: 3750000 },
  'gemini-2.5-flash': { input: 300000, output: 2500000, cache_read: 75000, cache_write: 0 },
};
// The README's formula: integer micro-USD, rounded half up.
const cost = (p, t) => Math.floor((t.input * p.input + t.output * p.output + t.cache_read * p.cache_read +
  t.cache_write * p.cache_write + 500000) / 1000000);

describe('prompt-cache token pricing', () => {
  it('cache reads and writes are counted apart from input and priced at their own rates', async () => {
    const state = join(dir, 'cache.db');
    const gw = await startGateway({ bin: BIN, mock, env: PLANTED, args: ['--state', state, '--ledger', 'commit'] });
    try {
      await mock.reset();
      const d = '[[mock cache_read=4000 cache_write=2000]]';
      const o = await postJSON(`${gw.url}/v1/chat/completions`, chat(`cached ${d}`), bearer(KEYS.alice));
      assert.equal(o.status, 200, o.text);
      const a = await postJSON(`${gw.url}/v1/messages`, { model: 'claude-sonnet-4-5', max_tokens: 5,
        messages: [{ role: 'user', content: `cached ${d}` }] }, { ...bearer(KEYS.alice), 'anthropic-version': '2023-06-01' });
      assert.equal(a.status, 200, a.text);
      // A Gemini upstream (cachedContentTokenCount), for an OpenAI client.
      const g = await postJSON(`${gw.url}/v1/chat/completions`, { ...chat(`cached ${d}`), model: 'gemini-2.5-flash' },
        bearer(KEYS.alice));
      assert.equal(g.status, 200, g.text);
      const [oc, ac, gc] = await mock.calls();
      // What the upstreams reported, split the way one price table fits both.
      const want = {
        'gpt-4o-mini': { input: oc.usage.prompt_tokens - 4000, output: oc.usage.completion_tokens,
          cache_read: 4000, cache_write: 0 },
        'claude-sonnet-4-5': { input: ac.usage.input_tokens, output: ac.usage.output_tokens,
          cache_read: 4000, cache_write: 2000 },
        // Gemini has no cache-write count.
        'gemini-2.5-flash': { input: gc.usage.promptTokenCount - 4000,
          output: gc.usage.candidatesTokenCount + (gc.usage.thoughtsTokenCount || 0), cache_read: 4000, cache_write: 0 },
      };
      const got = sql(state, 'SELECT model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, ' +
        "cost_micros, estimated FROM requests WHERE key='alice' ORDER BY id");
      assert.equal(got.length, 3, JSON.stringify(got));
      for (const r of got) {
        const t = want[r.model];
        assert.deepEqual([r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, r.estimated],
          [t.input, t.output, t.cache_read, t.cache_write, 0], r.model);
        assert.equal(r.cost_micros, cost(PRICE[r.model], t), `${r.model}: ${JSON.stringify(r)}`);
        assert.ok(r.cost_micros > cost(PRICE[r.model], { ...t, cache_read: 0, cache_write: 0 }), 'cache tokens cost something');
      }
    } finally {
      await gw.stop();
    }
  });
});

describe('?key= authentication', () => {
  let gw;
  before(async () => { gw = await startGateway({ bin: BIN, mock, env: PLANTED }); });
  after(async () => { await gw?.stop(); });

  it('a valid key in the query authenticates on the OpenAI, Anthropic and Gemini surfaces and GET /v1/models', async () => {
    await mock.reset();
    const q = `?key=${KEYS.alice}`;
    const o = await postJSON(`${gw.url}/v1/chat/completions${q}`, chat('query key openai'));
    assert.equal(o.status, 200, o.text);
    const a = await postJSON(`${gw.url}/v1/messages${q}`,
      { model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'query key anthropic' }] },
      { 'anthropic-version': '2023-06-01' });
    assert.equal(a.status, 200, a.text);
    const g = await postJSON(`${gw.url}/v1beta/models/gpt-4o-mini:generateContent${q}`,
      { contents: [{ role: 'user', parts: [{ text: 'query key gemini' }] }], generationConfig: { maxOutputTokens: 5 } });
    assert.equal(g.status, 200, g.text);
    assert.ok(g.json.candidates?.[0]?.content?.parts?.[0]?.text, g.text);
    const m = await fetch(`${gw.url}/v1/models${q}`);
    assert.equal(m.status, 200);
    assert.ok((await m.json()).data.some((e) => e.id === 'gpt-4o-mini'));
    for (const c of await mock.calls()) {
      assert.ok(!c.path.includes('key='), `the client's key stays at the gateway: ${c.path}`);
      assert.ok(!JSON.stringify(c.headers).includes(KEYS.alice));
    }
  });

  it('an unknown or expired key in the query: 401 in the caller\'s shape, nothing sent upstream', async () => {
    await mock.reset();
    for (const k of ['sk-sluice-nope', KEYS.expired]) {
      const o = await postJSON(`${gw.url}/v1/chat/completions?key=${k}`, chat('bad query key'));
      assert.equal(o.status, 401, o.text);
      assert.equal(o.json.error.message, 'invalid API key');
      const g = await postJSON(`${gw.url}/v1beta/models/gpt-4o-mini:generateContent?key=${k}`,
        { contents: [{ role: 'user', parts: [{ text: 'x' }] }] });
      assert.equal(g.status, 401, g.text);
      assert.equal(g.json.error.code, 401, g.text);
    }
    assert.deepEqual(await mock.calls(), []);
  });
});
