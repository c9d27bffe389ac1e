// Responses conversation state and pass-through, end to end with the
// official openai SDK against a gateway compiled from responses.yaml:
// - translated targets (Anthropic-kind, OpenAI-Chat-kind, Gemini-kind mock): store
//   (the API's default) keeps each answer in the state file, a
//   previous_response_id chain sends every earlier turn upstream, stored
//   responses are readable and deletable by the key that made them only,
//   store: false keeps nothing;
// - a provider marked `responses: true`: the request goes to its
//   /v1/responses unchanged but for the model (unknown fields included),
//   the answer and the stream come back as sent, and the ledger counts
//   the usage the provider reported, read with the sqlite3 CLI.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startGateway, readSSE, eventually } from './lib/harness.mjs';
import { openaiClient } from './lib/sdk-cases.mjs';

const ALICE = 'sk-sluice-test-resp-alice-4f1c2b';
const BOB = 'sk-sluice-test-resp-bob-9d3e7a';
const SQLITE3 = process.env.SQLITE3_BIN || 'sqlite3';

let mock, gw, dir, state;
before(async () => {
  mock = await startMock();
  dir = mkdtempSync(join(tmpdir(), 'sluice-resp-'));
  state = join(dir, 'state.db');
  gw = await startGateway({ mock, args: ['--state', state] });
});
after(async () => {
  const results = await Promise.allSettled([gw?.stop(), mock?.stop()]);
  rmSync(dir, { recursive: true, force: true });
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

const client = (key = ALICE) => openaiClient(`${gw.url}/v1`, { apiKey: key });
const api = (path, init = {}, key = ALICE) =>
  fetch(`${gw.url}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers || {}) } });

function sql(query) {
  const r = spawnSync(SQLITE3, ['-json', '-readonly', state, query], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sqlite3 (scripts/install-deps --test installs it): ${r.error || r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

function outputText(r) {
  return r.output.filter((i) => i.type === 'message')
    .flatMap((i) => i.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');
}

// Every text the mock saw in an Anthropic request, in order.
function anthropicTexts(body) {
  return body.messages.flatMap((m) => (typeof m.content === 'string' ? [m.content]
    : m.content.map((b) => b.text ?? (b.type === 'tool_result' ? `result:${typeof b.content === 'string' ? b.content : JSON.stringify(b.content)}` : `${b.type}:${b.name || ''}`))));
}

async function lastCall(path) {
  const calls = (await mock.calls()).filter((c) => c.path.startsWith(path));
  assert.ok(calls.length, `the mock saw a call to ${path}`);
  return calls.at(-1);
}

describe('conversation state on translated targets (Anthropic-kind, Chat-kind, Gemini-kind)', () => {
  beforeEach(() => mock.reset());

  for (const [model, path] of [['gpt-via-anthropic', '/v1/messages'], ['gpt-via-chat', '/v1/chat/completions'],
    ['gpt-via-gemini', '/v1beta/models/gemini-2.5-flash:generateContent']]) {
    it(`a three-turn previous_response_id chain sends every earlier turn upstream (${model})`, async () => {
      const c = client();
      const r1 = await c.responses.create({ model, instructions: 'Be brief.', input: 'Turn one: my name is Ada.' });
      assert.match(r1.id, /^resp_[0-9a-f]{32}$/);
      const r2 = await c.responses.create({ model, previous_response_id: r1.id, input: 'Turn two: I like tea.' });
      assert.equal(r2.previous_response_id, r1.id);
      assert.notEqual(r2.id, r1.id);
      const r3 = await c.responses.create({
        model, previous_response_id: r2.id,
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'Turn three: what is my name?' }] }],
      });
      assert.equal(r3.status, 'completed');
      const calls = (await mock.calls()).filter((x) => x.path === path);
      assert.equal(calls.length, 3);
      if (path.startsWith('/v1beta/')) {
        // Gemini: contents with user/model roles and text parts.
        const contents = calls[2].body.contents;
        assert.deepEqual(contents.map((c) => c.parts.map((p) => p.text).join('')), [
          'Turn one: my name is Ada.', outputText(r1), 'Turn two: I like tea.', outputText(r2), 'Turn three: what is my name?',
        ]);
        assert.deepEqual(contents.map((c) => c.role), ['user', 'model', 'user', 'model', 'user']);
        assert.equal(calls[2].body.systemInstruction, undefined);
        return;
      }
      const msgs = calls[2].body.messages.filter((m) => m.role !== 'system');
      const texts = path === '/v1/messages' ? anthropicTexts(calls[2].body) : msgs.map((m) => m.content);
      assert.deepEqual(texts, [
        'Turn one: my name is Ada.', outputText(r1),
        'Turn two: I like tea.', outputText(r2),
        'Turn three: what is my name?',
      ]);
      assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
      // Instructions are the request's own, as OpenAI does: not carried over.
      assert.equal(calls[2].body.system, undefined);
      assert.equal(calls[2].body.messages.filter((m) => m.role === 'system').length, 0);
      const sys = calls[0].body.system ?? calls[0].body.messages[0].content;
      assert.equal(Array.isArray(sys) ? sys.map((b) => b.text).join('') : sys, 'Be brief.', 'turn one had them');
    });
  }

  it('a streamed answer is stored under the id its events carry, and continues', async () => {
    const c = client();
    const stream = await c.responses.create({ model: 'gpt-via-chat', input: 'Stream turn one.', stream: true });
    let completed;
    const ids = new Set();
    for await (const e of stream) {
      if (e.response) ids.add(e.response.id);
      if (e.type === 'response.completed') completed = e.response;
    }
    assert.ok(completed, 'response.completed');
    assert.deepEqual([...ids], [completed.id], 'one id on every event');
    assert.match(completed.id, /^resp_[0-9a-f]{32}$/);
    const stored = await (await api(`/v1/responses/${completed.id}`)).json();
    assert.equal(stored.id, completed.id);
    assert.deepEqual(stored.output, completed.output);
    assert.deepEqual(stored.usage, completed.usage);
    await c.responses.create({ model: 'gpt-via-chat', previous_response_id: completed.id, input: 'Stream turn two.' });
    const call = await lastCall('/v1/chat/completions');
    assert.deepEqual(call.body.messages.map((m) => [m.role, m.content]), [
      ['user', 'Stream turn one.'], ['assistant', outputText(completed)], ['user', 'Stream turn two.'],
    ]);
  });

  it('an id can be continued as soon as response.completed arrives, before the stream ends', async () => {
    const res = await api('/v1/responses', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-via-anthropic', input: 'Quick one.', stream: true }),
    });
    let id;
    const next = [];
    await readSSE(res, {
      onEvent: (e) => {
        if (e.event !== 'response.completed') return true;
        id = e.json.response.id;
        // Continue at once, while this stream is still open.
        next.push(client().responses.create({ model: 'gpt-via-anthropic', previous_response_id: id, input: 'Next.' }));
        return true;
      },
    });
    assert.ok(id);
    const r2 = await next[0];
    assert.equal(r2.previous_response_id, id);
    const texts = anthropicTexts((await lastCall('/v1/messages')).body);
    assert.deepEqual(texts.slice(0, 1), ['Quick one.']);
    assert.equal(texts.at(-1), 'Next.');
  });

  it('a function call and its output continue through previous_response_id', async () => {
    const c = client();
    const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    const r1 = await c.responses.create({ model: 'gpt-via-anthropic', input: 'Weather in Oslo?', tools });
    const call = r1.output.find((i) => i.type === 'function_call');
    assert.ok(call, JSON.stringify(r1.output));
    const r2 = await c.responses.create({
      model: 'gpt-via-anthropic', previous_response_id: r1.id, tools,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'Rain, 9 C' }],
    });
    assert.match(outputText(r2), /The tool returned: Rain, 9 C/);
    const up = (await lastCall('/v1/messages')).body;
    const use = up.messages[1].content.find((b) => b.type === 'tool_use');
    const result = up.messages[2].content.find((b) => b.type === 'tool_result');
    assert.equal(use.id, call.call_id);
    assert.equal(result.tool_use_id, call.call_id);
  });

  it('stored responses belong to the key that made them', async () => {
    const r = await client().responses.create({ model: 'gpt-via-anthropic', input: 'Alice only.' });
    const mine = await api(`/v1/responses/${r.id}`);
    assert.equal(mine.status, 200);
    const got = await mine.json();
    assert.equal(got.id, r.id);
    assert.equal(outputText(got), outputText(r));
    for (const [path, init] of [[`/v1/responses/${r.id}`, {}], [`/v1/responses/${r.id}/input_items`, {}],
      [`/v1/responses/${r.id}`, { method: 'DELETE' }], [`/v1/responses/${r.id}/cancel`, { method: 'POST' }]]) {
      const other = await api(path, init, BOB);
      assert.equal(other.status, 404, `${init.method || 'GET'} ${path} by another key`);
      const e = await other.json();
      assert.equal(e.error.message, `Response with id '${r.id}' not found.`);
    }
    // ... and so is continuing it (the SDK raises NotFoundError).
    await assert.rejects(client(BOB).responses.create({ model: 'gpt-via-anthropic', previous_response_id: r.id, input: 'Bob.' }),
      (e) => e.status === 404 && /Previous response with id/.test(e.message));
    assert.equal((await api(`/v1/responses/${r.id}`)).status, 200, 'still there for alice');
  });

  it('store: false keeps nothing', async () => {
    const r = await client().responses.create({ model: 'gpt-via-anthropic', input: 'Forget me.', store: false });
    assert.equal(r.status, 'completed');
    assert.equal((await api(`/v1/responses/${r.id}`)).status, 404);
    await assert.rejects(client().responses.create({ model: 'gpt-via-anthropic', previous_response_id: r.id, input: 'x' }),
      (e) => e.status === 404);
    assert.equal(sql(`SELECT COUNT(*) AS n FROM responses WHERE response LIKE '%Forget me%' OR input LIKE '%Forget me%'`)[0].n, 0);
  });

  it('input_items, cancel and DELETE', async () => {
    const input = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'First.' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Second.' }] }];
    const r = await client().responses.create({ model: 'gpt-via-anthropic', input });
    const list = await (await api(`/v1/responses/${r.id}/input_items?order=asc`)).json();
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data, input);
    assert.equal(list.has_more, false);
    const desc = await (await api(`/v1/responses/${r.id}/input_items?limit=1`)).json();
    assert.deepEqual(desc.data, [input[1]]);
    assert.equal(desc.has_more, true);
    const cancel = await api(`/v1/responses/${r.id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 400);
    assert.match((await cancel.json()).error.message, /background=true/);
    const del = await api(`/v1/responses/${r.id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { id: r.id, object: 'response', deleted: true });
    assert.equal((await api(`/v1/responses/${r.id}`)).status, 404);
    assert.equal((await api(`/v1/responses/${r.id}`, { method: 'DELETE' })).status, 404);
    assert.equal((await api('/v1/responses/resp_nope/cancel', { method: 'POST' })).status, 404);
  });

  it('background: true is refused where sluice translates', async () => {
    await assert.rejects(client().responses.create({ model: 'gpt-via-anthropic', input: 'Later.', background: true }),
      (e) => e.status === 400 && /background/.test(e.message));
    assert.equal((await mock.calls()).length, 0, 'nothing went upstream');
  });

  it('stored rows are in the state file with their expiry', async () => {
    const r = await client().responses.create({ model: 'gpt-via-anthropic', input: 'Row check.' });
    const [row] = sql(`SELECT key, expires_ms - created_ms AS ttl FROM responses WHERE id='${r.id}'`);
    assert.equal(row.key, 'alice');
    assert.equal(row.ttl, 7 * 86400 * 1000, 'responses.retention: 7d');
  });
});

describe('pass-through to a provider that serves the Responses API', () => {
  beforeEach(() => mock.reset());

  it('the body goes upstream unchanged but for the model; the answer comes back as sent', async () => {
    const body = {
      model: 'responses-direct', input: 'Pass me through.', store: true, previous_response_id: 'resp_provider_kept',
      include: ['reasoning.encrypted_content'], reasoning: { effort: 'low', summary: 'auto' },
      x_unknown_field: { nested: [1, 'two', null] }, prompt_cache_key: 'pck-1', tools: [{ type: 'web_search' }],
    };
    // bob: a key without a budget, so sluice injects no output limit (it
    // does for budgeted keys, on every surface; see the README).
    const res = await api('/v1/responses', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, BOB);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-sluice-provider'), 'up-responses');
    assert.equal(res.headers.get('x-sluice-dropped-tools'), null, 'this provider runs its hosted tools: none dropped');
    const got = await res.json();
    const call = await lastCall('/v1/responses');
    assert.deepEqual(call.body, { ...body, model: 'gpt-5' }, 'every field as sent, web_search included');
    assert.match(got.id, /^resp_mock/, "the provider's own id");
    assert.equal(got.previous_response_id, 'resp_provider_kept');
    assert.deepEqual(got.usage, call.usage, 'the usage the provider reported, unchanged');
    // Nothing stored by sluice: the provider keeps this state.
    assert.equal((await api(`/v1/responses/${got.id}`, {}, BOB)).status, 404);
    const row = await eventually(() => sql(`SELECT * FROM requests WHERE provider='up-responses' AND stream=0 ORDER BY id DESC LIMIT 1`)[0], 3000);
    assert.equal(row.input_tokens, call.usage.input_tokens - call.usage.input_tokens_details.cached_tokens);
    assert.equal(row.output_tokens, call.usage.output_tokens);
    assert.equal(row.estimated, 0);
  });

  it('the pass-through body is fitted to the model the catalog knows (gpt-4o: no reasoning, its output limit)', async () => {
    const body = { model: 'responses-4o', input: 'Fit me.', reasoning: { effort: 'high', summary: 'auto' },
      max_output_tokens: 50000, temperature: 0.3 };
    const res = await api('/v1/responses', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, BOB);
    assert.equal(res.status, 200, await res.clone().text());
    const call = await lastCall('/v1/responses');
    assert.deepEqual(call.body, { model: 'gpt-4o', input: 'Fit me.', max_output_tokens: 16384, temperature: 0.3 },
      'gpt-4o rejects reasoning and takes at most 16,384 output tokens');
  });

  it('streams are relayed event for event, and the ledger counts response.completed usage', async () => {
    const res = await api('/v1/responses', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'responses-direct', input: 'Stream me. [[mock cache_read=7]]', stream: true, x_keep: 1 }),
    });
    assert.equal(res.status, 200);
    const { events, ended } = await readSSE(res);
    assert.ok(ended);
    const types = events.map((e) => e.event);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.equal(types.at(-1), 'response.completed');
    events.forEach((e, i) => assert.equal(e.json.sequence_number, i));
    const call = await lastCall('/v1/responses');
    assert.equal(call.body.x_keep, 1);
    assert.equal(call.body.stream, true);
    assert.equal(call.body.stream_options, undefined, 'nothing added to a Responses body');
    const usage = events.at(-1).json.response.usage;
    assert.deepEqual(usage, call.usage);
    const row = await eventually(() => sql(`SELECT * FROM requests WHERE provider='up-responses' AND stream=1 ORDER BY id DESC LIMIT 1`)[0], 3000);
    assert.equal(row.cache_read_tokens, 7);
    assert.equal(row.input_tokens, usage.input_tokens - 7);
    assert.equal(row.output_tokens, usage.output_tokens);
    assert.equal(row.estimated, 0);
    // cost = (in * 1.25 + out * 10 + 7 * 0.125) / 1e6 USD, in micro-USD rounded half up
    const micro = Math.round((row.input_tokens * 1.25 + row.output_tokens * 10 + 7 * 0.125));
    assert.equal(row.cost_micros, micro);
  });

  it('a previous_response_id chain is the provider\'s: each id goes to it unchanged', async () => {
    const c = client(BOB);
    const r1 = await c.responses.create({ model: 'responses-direct', input: 'One.' });
    const r2 = await c.responses.create({ model: 'responses-direct', input: 'Two.', previous_response_id: r1.id });
    await c.responses.create({ model: 'responses-direct', input: 'Three.', previous_response_id: r2.id });
    const calls = (await mock.calls()).filter((x) => x.path === '/v1/responses');
    assert.deepEqual(calls.map((x) => x.body.previous_response_id), [undefined, r1.id, r2.id]);
    assert.deepEqual(calls.map((x) => x.body.input), ['One.', 'Two.', 'Three.'], 'nothing prepended by sluice');
    assert.match(r1.id, /^resp_mock/);
  });

  it('the SDK streams a pass-through answer with a function call', async () => {
    const stream = await client().responses.create({
      model: 'responses-direct', input: 'Call it.', stream: true,
      tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }],
    });
    let done;
    for await (const e of stream) if (e.type === 'response.completed') done = e.response;
    const fc = done.output.find((i) => i.type === 'function_call');
    assert.equal(fc.name, 'lookup');
    assert.deepEqual(JSON.parse(fc.arguments), { q: 'mock-q' });
  });
});
