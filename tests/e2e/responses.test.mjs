// The OpenAI Responses API surface end to end: the official openai SDK's
// client.responses.create (non-stream, streamed, and a function-tool round
// trip) through the gateway to an OpenAI-Chat-kind upstream and to an
// Anthropic-kind upstream, both the mock, with the gateway compiled from
// translate.yaml. The mock's call log shows the translated request; the
// stream's events are checked for the framing the SDK and Codex rely on.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { useStack, postJSON, readSSE, openaiHeaders, MOCK_TEXT } from './lib/harness.mjs';
import { openaiClient } from './lib/sdk-cases.mjs';

const stack = useStack();
const client = () => openaiClient(`${stack.url}/v1`);
const RESULT = 'Sunny, 21 C, light wind from the west';

const tools = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city'],
    },
    strict: false,
  },
  // Offered by Codex on every request; no Chat or Anthropic backend runs it.
  { type: 'web_search' },
];

function outputText(r) {
  return r.output.filter((i) => i.type === 'message')
    .flatMap((i) => i.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');
}

// The event framing: sequence numbers 0,1,2..., created first, items added
// at increasing output indices and done before the terminal event, the
// done text and arguments equal to what the deltas built.
function assertFraming(events) {
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.equal(types.at(-1), 'response.completed');
  events.forEach((e, i) => assert.equal(e.sequence_number, i, `sequence number of ${e.type}`));
  const open = new Map();
  let next = 0;
  for (const e of events) {
    if (e.type === 'response.output_item.added') {
      assert.equal(e.output_index, next++);
      open.set(e.output_index, '');
    } else if (e.type === 'response.output_text.delta' || e.type === 'response.function_call_arguments.delta') {
      assert.ok(open.has(e.output_index), `${e.type} to an open item`);
      open.set(e.output_index, open.get(e.output_index) + e.delta);
    } else if (e.type === 'response.output_text.done') {
      assert.equal(e.text, open.get(e.output_index));
    } else if (e.type === 'response.function_call_arguments.done') {
      assert.equal(e.arguments, open.get(e.output_index));
    } else if (e.type === 'response.output_item.done') {
      assert.ok(open.delete(e.output_index), 'done once, after added');
    }
  }
  assert.equal(open.size, 0, 'every item done');
}

for (const [label, model, path] of [
  ['OpenAI Chat upstream', 'claude-via-openai', '/v1/chat/completions'],
  ['Anthropic upstream', 'gpt-via-anthropic', '/v1/messages'],
]) {
  describe(`openai SDK responses.create -> ${label} (${model})`, () => {
    beforeEach(() => stack.mock.reset());

    it('non-stream', async () => {
      const r = await client().responses.create({
        model, instructions: 'Be brief.', input: 'Say hello.', max_output_tokens: 200,
      });
      assert.equal(r.object, 'response');
      assert.equal(r.status, 'completed');
      assert.match(r.id, /^resp_/);
      assert.equal(r.model, model);
      assert.equal(r.output_text, MOCK_TEXT);
      assert.equal(outputText(r), MOCK_TEXT);
      assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
      assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
      assert.equal(typeof r.usage.input_tokens_details.cached_tokens, 'number');
      assert.equal(typeof r.usage.output_tokens_details.reasoning_tokens, 'number');
      const calls = await stack.mock.calls();
      assert.equal(calls.length, 1);
      assert.equal(calls[0].path, path);
      const body = calls[0].body;
      if (path === '/v1/messages') {
        assert.deepEqual(body.system, [{ type: 'text', text: 'Be brief.' }]);
        assert.equal(body.max_tokens, 200);
      } else {
        assert.deepEqual(body.messages[0], { role: 'system', content: 'Be brief.' });
        assert.equal(body.max_completion_tokens, 200);
      }
    });

    it('streamed, with the SDK stream helper and the raw events', async () => {
      const events = [];
      const stream = client().responses.stream({ model, input: 'Say hello.' });
      stream.on('event', (e) => events.push(e));
      const final = await stream.finalResponse();
      assert.equal(final.status, 'completed');
      assert.equal(outputText(final), MOCK_TEXT);
      assertFraming(events);
      const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
      assert.ok(deltas.length > 1, 'several text deltas');
      assert.equal(deltas.join(''), MOCK_TEXT);
      assert.ok(final.usage.output_tokens > 0);

      // create({stream: true}) is the plain iterator over the same events.
      const it = await client().responses.create({ model, input: 'Say hello.', stream: true });
      const seen = [];
      for await (const e of it) seen.push(e.type);
      assert.equal(seen.at(-1), 'response.completed');
    });

    for (const streamed of [false, true]) {
      it(`function tool round trip (${streamed ? 'streamed' : 'non-stream'})`, async () => {
        const c = client();
        const input = [{ role: 'user', content: 'What is the weather in Paris?' }];
        const ask = (inp) => (streamed
          ? c.responses.stream({ model, input: inp, tools }).finalResponse()
          : c.responses.create({ model, input: inp, tools }));
        const first = await ask(input);
        const call = first.output.find((i) => i.type === 'function_call');
        assert.ok(call, `a function_call item: ${JSON.stringify(first.output)}`);
        assert.equal(call.name, 'get_weather');
        assert.match(call.call_id, /\S/);
        assert.deepEqual(JSON.parse(call.arguments), { city: 'mock-city', unit: 'celsius' });
        const up = (await stack.mock.calls())[0].body;
        const names = path === '/v1/messages' ? up.tools.map((t) => t.name) : up.tools.map((t) => t.function.name);
        assert.deepEqual(names, ['get_weather'], 'the hosted tool is not sent upstream');

        const second = await ask([...input, ...first.output,
          { type: 'function_call_output', call_id: call.call_id, output: RESULT }]);
        assert.equal(second.status, 'completed');
        assert.ok(outputText(second).includes(RESULT), `reply quotes the tool result: ${outputText(second)}`);
      });
    }

    it('names dropped hosted tools; refuses a tool_choice forcing one', async () => {
      const url = `${stack.url}/v1/responses`;
      const ok = await postJSON(url, { model, input: 'hi', tools: [{ type: 'web_search' }] }, openaiHeaders());
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('x-sluice-dropped-tools'), 'web_search');
      const bad = await postJSON(url, { model, input: 'hi', tools: [{ type: 'web_search' }],
        tool_choice: { type: 'web_search' } }, openaiHeaders());
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /web_search/);
      assert.equal(bad.json.error.type, 'invalid_request_error');
    });

    it('raw stream bytes: event names match data types', async () => {
      const r = await fetch(`${stack.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...openaiHeaders() },
        body: JSON.stringify({ model, input: 'Say hello.', stream: true }),
      });
      assert.equal(r.status, 200);
      const { events, ended } = await readSSE(r);
      assert.ok(ended);
      for (const e of events) assert.equal(e.event, e.json?.type);
      assertFraming(events.map((e) => e.json));
    });
  });
}
