// Guardrails end to end (guard.yaml): the official OpenAI and Anthropic
// SDKs, curl, and raw fetch for the Gemini surface, against a gateway in
// front of the mock upstream, whose echo=1 directive answers with the
// user's text as the upstream received it. The mock's call log shows what
// left the gateway (redacted text, never the original); the client's
// answer shows what came back (restored, redacted, or refused). Streams
// are echoed one word per event, so a card number written in groups is
// split over four events.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useStack, startGateway, postJSON, readSSE, openaiHeaders } from './lib/harness.mjs';
import { openaiClient, anthropicClient } from './lib/sdk-cases.mjs';

const stack = useStack();
const openai = () => openaiClient(`${stack.url}/v1`);
const anthropic = () => anthropicClient(stack.url);

const PII = 'mail bob@example.com or call +1 415 555 2671, card 4111 1111 1111 1111';
const ECHO = ' [[mock echo=1]]';
const ORIGINALS = ['bob@example.com', '+1 415 555 2671', '4111 1111 1111 1111'];
const SECRET = 'sk-proj-abc123DEF456ghi789JKL012xyz';

async function lastUpstreamBody() {
  const calls = await stack.mock.calls();
  assert.ok(calls.length >= 1, 'the request reached the upstream');
  return JSON.stringify(calls.at(-1).body);
}

function assertRedactedUpstream(body) {
  for (const v of ORIGINALS) assert.ok(!body.includes(v), `upstream saw ${v}: ${body}`);
  for (const p of ['[EMAIL_1]', '[PHONE_1]', '[CARD_1]']) assert.ok(body.includes(p), `upstream lacks ${p}: ${body}`);
}

function curl(path, body) {
  const r = spawnSync('curl', ['-s', '-w', '\n%{http_code}', `${stack.url}${path}`, '-H', 'content-type: application/json',
    '-H', 'anthropic-version: 2023-06-01', '-d', JSON.stringify(body)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), json: JSON.parse(r.stdout.slice(0, nl)) };
}

describe('redact then restore', () => {
  beforeEach(() => stack.mock.reset());

  it('openai SDK, pass-through: upstream gets placeholders, the client its own values', async () => {
    const r = await openai().chat.completions.create({
      model: 'restore-openai', messages: [{ role: 'user', content: PII + ECHO }],
    });
    assert.equal(r.choices[0].message.content, PII);
    assertRedactedUpstream(await lastUpstreamBody());
  });

  it('openai SDK, stream: placeholders restored across events', async () => {
    const s = await openai().chat.completions.create({
      model: 'restore-openai', stream: true, messages: [{ role: 'user', content: PII + ECHO }],
    });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
  });

  for (const model of ['restore-anthropic', 'restore-openai']) {
    it(`anthropic SDK -> ${model} (${model.endsWith('anthropic') ? 'pass-through' : 'translated'})`, async () => {
      const m = await anthropic().messages.create({
        model, max_tokens: 200, messages: [{ role: 'user', content: PII + ECHO }],
      });
      assert.equal(m.content[0].text, PII);
      assertRedactedUpstream(await lastUpstreamBody());
      await stack.mock.reset();
      const s = anthropic().messages.stream({ model, max_tokens: 200, messages: [{ role: 'user', content: PII + ECHO }] });
      const done = await s.finalMessage();
      assert.equal(done.content[0].text, PII);
      assertRedactedUpstream(await lastUpstreamBody());
    });
  }

  it('openai SDK responses.create (translated to chat)', async () => {
    const r = await openai().responses.create({ model: 'restore-openai', input: PII + ECHO });
    assert.equal(r.output_text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
  });

  it('openai SDK responses.create stream: deltas, the done text and the final response restored', async () => {
    const s = await openai().responses.create({ model: 'restore-openai', input: PII + ECHO, stream: true });
    let deltas = '';
    let done = '';
    let final;
    const types = [];
    for await (const e of s) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') deltas += e.delta;
      if (e.type === 'response.output_text.done') done = e.text;
      if (e.type === 'response.completed') final = e.response;
    }
    for (const t of ['response.created', 'response.output_text.done', 'response.completed'])
      assert.equal(types.filter((x) => x === t).length, 1, `one ${t}: ${types.join(' ')}`);
    assert.equal(deltas, PII);
    assert.equal(done, PII);
    assert.equal(final.output[0].content[0].text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
  });

  it('Responses conversation state: stored earlier turns go upstream redacted', async () => {
    const r1 = await openai().responses.create({ model: 'restore-openai', input: PII + ECHO, store: true });
    assert.equal(r1.output_text, PII);
    await stack.mock.reset();
    const r2 = await openai().responses.create({ model: 'restore-openai', previous_response_id: r1.id,
      input: 'and once more' + ECHO, store: true });
    assert.equal(r2.output_text, 'and once more');
    const body = await lastUpstreamBody();
    for (const v of ORIGINALS) assert.ok(!body.includes(v), `upstream saw ${v} from the stored turn: ${body}`);
    assert.ok(body.includes('[EMAIL_1]'), body);
  });

  it('an answer guardrails act on is never cached', async () => {
    const ask = () => openai().chat.completions.create({ model: 'cached-restore', temperature: 0,
      messages: [{ role: 'user', content: PII + ECHO }] }).withResponse();
    const a = await ask();
    const b = await ask();
    assert.equal(a.data.choices[0].message.content, PII);
    assert.equal(b.data.choices[0].message.content, PII);
    assert.notEqual(b.response.headers.get('x-sluice-cache'), 'hit');
    assert.equal((await stack.mock.calls()).length, 2, 'both went upstream');
  });

  it('Gemini streamGenerateContent (translated)', async () => {
    const r = await fetch(`${stack.url}/v1beta/models/restore-openai:streamGenerateContent?alt=sse`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': 'k' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: PII + ECHO }] }] }) });
    assert.equal(r.status, 200);
    const { events } = await readSSE(r);
    const text = events.map((e) => e.json?.candidates?.[0]?.content?.parts?.map((p) => p.text ?? '').join('') ?? '').join('');
    assert.equal(text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
  });

  it('Gemini generateContent (translated)', async () => {
    const r = await postJSON(`${stack.url}/v1beta/models/restore-openai:generateContent`,
      { contents: [{ role: 'user', parts: [{ text: PII + ECHO }] }] }, { 'x-goog-api-key': 'k' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.candidates[0].content.parts[0].text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
  });

  it('curl on the OpenAI and Anthropic surfaces: restored, and redacted answers', async () => {
    const o = curl('/v1/chat/completions', { model: 'restore-openai', messages: [{ role: 'user', content: PII + ECHO }] });
    assert.equal(o.status, 200);
    assert.equal(o.json.choices[0].message.content, PII);
    assertRedactedUpstream(await lastUpstreamBody());
    const a = curl('/v1/messages', { model: 'restore-anthropic', max_tokens: 100, messages: [{ role: 'user', content: PII + ECHO }] });
    assert.equal(a.status, 200);
    assert.equal(a.json.content[0].text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
    const c = curl('/v1/messages', { model: 'clean-anthropic', max_tokens: 100,
      messages: [{ role: 'user', content: 'card 4111-1111-1111-1111 to bob@example.com' + ECHO }] });
    assert.equal(c.json.content[0].text, 'card [CARD_1] to [EMAIL_1]');
  });

  it('legacy /v1/completions, whole and streamed', async () => {
    const r = await openai().completions.create({ model: 'restore-openai', prompt: PII + ECHO, max_tokens: 200 });
    assert.equal(r.choices[0].text, PII);
    assertRedactedUpstream(await lastUpstreamBody());
    const s = await openai().completions.create({ model: 'restore-openai', prompt: PII + ECHO, max_tokens: 200, stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.text ?? '';
    assert.equal(text, PII);
  });

  it('tool results and earlier tool-call arguments are redacted too', async () => {
    await openai().chat.completions.create({
      model: 'restore-openai',
      messages: [
        { role: 'user', content: 'look up my account' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
          function: { name: 'lookup', arguments: JSON.stringify({ email: 'bob@example.com' }) } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'card on file: 4111 1111 1111 1111' },
      ],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
    });
    const body = await lastUpstreamBody();
    assert.ok(!body.includes('bob@example.com') && !body.includes('4111 1111'), body);
    assert.ok(body.includes('[EMAIL_1]') && body.includes('[CARD_1]'), body);
    assert.ok(body.includes('call_1'), 'ids are not rewritten');
  });
});

describe('block', () => {
  beforeEach(() => stack.mock.reset());

  it('curl, OpenAI surface: 400 naming guardrail and detector, not the secret; nothing sent upstream', async () => {
    const r = curl('/v1/chat/completions', { model: 'block-openai', messages: [{ role: 'user', content: `use ${SECRET}` }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'guardrail_blocked');
    assert.match(r.json.error.message, /guardrail 'no-secrets' \(detector secrets\)/);
    assert.ok(!JSON.stringify(r.json).includes(SECRET));
    assert.equal((await stack.mock.calls()).length, 0);
  });

  it('curl, Anthropic surface: its error shape, deny pattern named', async () => {
    const r = curl('/v1/messages', { model: 'block-anthropic', max_tokens: 10,
      messages: [{ role: 'user', content: 'status of ACME-4242?' }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.type, 'error');
    assert.match(r.json.error.message, /guardrail 'no-secrets' \(deny pattern 2\)/);
    assert.ok(!JSON.stringify(r.json).includes('4242'));
  });

  it('SDKs see a BadRequestError', async () => {
    await assert.rejects(openai().chat.completions.create({
      model: 'block-openai', messages: [{ role: 'user', content: 'Project Falcon launch date?' }],
    }), (e) => e.status === 400 && /no-secrets/.test(e.message));
    await assert.rejects(anthropic().messages.create({
      model: 'block-anthropic', max_tokens: 10, messages: [{ role: 'user', content: `key ${SECRET}` }],
    }), (e) => e.status === 400 && /no-secrets/.test(e.message));
  });

  it('a response that trips a block guardrail: 400, or an error event once streaming', async () => {
    const msg = [{ role: 'user', content: 'say the forbidden words now' + ECHO }];
    const r = await postJSON(`${stack.url}/v1/chat/completions`, { model: 'strict-openai', messages: msg }, openaiHeaders());
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /response blocked by guardrail 'answers-block'/);
    const s = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'strict-openai', stream: true, messages: msg }) });
    // A stream sluice ends on an error closes without its final chunk
    // (never a clean-looking end), so the reader sees the connection cut.
    const events = [];
    await assert.rejects(readSSE(s, { onEvent: (e) => { events.push(e); } }), /terminated/);
    const text = events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');
    assert.ok(!/forbidden/.test(text), `released: ${text}`);
    assert.match(events.at(-1).data, /response blocked by guardrail 'answers-block'/);
  });
});

describe('redact answers and log requests', () => {
  beforeEach(() => stack.mock.reset());

  it('stream: a card split over four events is redacted; the request was only logged', async () => {
    const content = 'card 4111 1111 1111 1111 and bob@example.com end';
    const s = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'clean-openai', stream: true, messages: [{ role: 'user', content: content + ' [[mock echo=1 chunks=8]]' }] }) });
    const { events } = await readSSE(s);
    const text = events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'card [CARD_1] and [EMAIL_1] end');
    assert.equal(events.at(-1).data, '[DONE]');
    assert.ok((await lastUpstreamBody()).includes('4111 1111 1111 1111'), 'log does not change the request');
  });

  it('anthropic SDK stream, translated', async () => {
    const s = anthropic().messages.stream({ model: 'clean-openai', max_tokens: 200,
      messages: [{ role: 'user', content: 'card 4111 1111 1111 1111 ok' + ECHO }] });
    assert.equal((await s.finalMessage()).content[0].text, 'card [CARD_1] ok');
  });

  it('tool-call arguments from the model are redacted', async () => {
    const r = await openai().chat.completions.create({
      model: 'clean-openai', messages: [{ role: 'user', content: 'send it [[mock arg_str=carol@example.org]]' }],
      tools: [{ type: 'function', function: { name: 'send', parameters: { type: 'object', properties: { to: { type: 'string' } } } } }],
    });
    const args = r.choices[0].message.tool_calls[0].function.arguments;
    assert.deepEqual(JSON.parse(args), { to: '[EMAIL_1]' });
  });

  const sendTool = { type: 'object', properties: { to: { type: 'string' } }, required: ['to'] };
  for (const model of ['clean-openai', 'clean-anthropic']) {
    it(`streamed tool calls keep their shape, arguments redacted: openai and anthropic SDKs -> ${model}`, async () => {
      const content = 'send it [[mock arg_str=carol@example.org chunks=6]]';
      const s = await openai().chat.completions.create({ model, stream: true, messages: [{ role: 'user', content }],
        tools: [{ type: 'function', function: { name: 'send', parameters: sendTool } }] });
      let name = '';
      let args = '';
      let ids = 0;
      for await (const c of s) {
        const tc = c.choices[0]?.delta?.tool_calls?.[0];
        if (tc?.id) ids++;
        name += tc?.function?.name ?? '';
        args += tc?.function?.arguments ?? '';
      }
      assert.equal(name, 'send');
      assert.equal(ids, 1);
      assert.deepEqual(JSON.parse(args), { to: '[EMAIL_1]' });
      const m = await anthropic().messages.stream({ model, max_tokens: 200, messages: [{ role: 'user', content }],
        tools: [{ name: 'send', input_schema: sendTool }] }).finalMessage();
      const use = m.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'send');
      assert.deepEqual(use.input, { to: '[EMAIL_1]' });
      assert.equal(m.content.filter((b) => b.type === 'tool_use').length, 1);
    });
  }

  it('/metrics counts detections by guardrail, detector, direction and action', async () => {
    await openai().chat.completions.create({ model: 'clean-openai', messages: [{ role: 'user', content: 'hi bob@example.com' }] });
    const m = await (await fetch(`${stack.url}/metrics`)).text();
    assert.match(m, /sluice_guardrail_hits_total\{guardrail="answers-clean",detector="email",direction="request",action="log"\} [1-9]/);
    assert.ok(!m.includes('bob@example.com'));
  });

  it('the ledger row names the detectors that fired, never the text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-guard-ledger-'));
    const db = join(dir, 'l.db');
    const gw = await startGateway({ mock: stack.mock, args: ['--state', db, '--ledger', 'commit'] });
    try {
      const r = await postJSON(`${gw.url}/v1/chat/completions`, { model: 'clean-openai',
        messages: [{ role: 'user', content: 'mail bob@example.com, card 4111 1111 1111 1111' }] }, openaiHeaders());
      assert.equal(r.status, 200, r.text);
      await postJSON(`${gw.url}/v1/chat/completions`, { model: 'plain', messages: [{ role: 'user', content: 'hi' }] },
        openaiHeaders());
    } finally {
      await gw.stop();
    }
    const q = spawnSync(process.env.SQLITE3_BIN || 'sqlite3', [db, 'SELECT model, guardrails FROM requests ORDER BY id'],
      { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(q.status, 0, q.stderr);
    assert.equal(q.stdout, 'clean-openai|email,card\nplain|\n');
  });

  it('only a gateway whose spec has guardrails links their code', () => {
    const syms = (bin) => {
      const r = spawnSync('nm', [bin], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.equal(r.status, 0, `nm ${bin}: ${r.error || r.stderr}`);
      return r.stdout.split('\n').filter((l) => / [TtDdRr] sl_(guard|spec_guard)_/.test(l)).length;
    };
    assert.ok(syms(process.env.SLUICE_BIN) > 0, 'the guardrail gateway has the module');
    assert.equal(syms(process.env.SLUICE_PLAIN_BIN), 0, 'a spec without guardrails links none of it');
  });

  it('an entry without guardrails passes text unchanged', async () => {
    const r = await openai().chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: PII + ECHO }] });
    assert.equal(r.choices[0].message.content, PII);
    assert.ok((await lastUpstreamBody()).includes('bob@example.com'));
  });
});
