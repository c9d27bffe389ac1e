// Protocol translation end to end: the official Anthropic SDK through the
// gateway to an OpenAI-kind upstream, the official OpenAI SDK to an
// Anthropic-kind upstream, and the Gemini surface (the official
// @google/genai client and raw fetch) to both, against a gateway compiled
// from translate.yaml in front of the mock upstream. Besides what each
// client sees, the tests read the mock's call log (GET /__calls) to check
// the translated request itself: its shape in the upstream's protocol and
// the provider's key, never the client's. Same-protocol entries check that
// pass-through keeps fields the gateway does not know.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import {
  useStack, postJSON, readSSE, anthropicHeaders, openaiHeaders,
  OPENAI_KEY, ANTHROPIC_KEY, CLIENT_KEY, MOCK_TEXT,
} from './lib/harness.mjs';
import { openaiCases, anthropicCases, openaiClient, anthropicClient } from './lib/sdk-cases.mjs';

const stack = useStack();
const getBaseURL = () => stack.url;
const getOpenAIBaseURL = () => `${stack.url}/v1`;
const WORDS = MOCK_TEXT.split(' ').length;
const RESULT = 'Sunny, 21 C, light wind from the west';
// A 1x1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

// The shared SDK cases, held to the mock's exact answers: for text, streams
// and tool calls translation must lose nothing a client can see.
anthropicCases({ label: 'gateway -> up-openai (translated)', getBaseURL, model: 'claude-via-openai', exact: true });
openaiCases({ label: 'gateway -> up-anthropic (translated)', getBaseURL: getOpenAIBaseURL, model: 'gpt-via-anthropic', exact: true });

const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city'],
};
const anthropicTools = [{ name: 'get_weather', description: 'Current weather for a city', input_schema: weatherSchema }];
const openaiTools = [{
  type: 'function',
  function: { name: 'get_weather', description: 'Current weather for a city', parameters: weatherSchema },
}];

async function upstreamCalls() {
  return stack.mock.calls();
}

// The one call the mock received since the last reset.
async function onlyCall() {
  const calls = await upstreamCalls();
  assert.equal(calls.length, 1, `one upstream call, got ${calls.map((c) => c.path).join(', ')}`);
  return calls[0];
}

function assertOpenAIKey(call) {
  assert.equal(call.headers.authorization, `Bearer ${OPENAI_KEY}`);
  assert.equal(call.headers['x-api-key'], undefined);
  assert.ok(!JSON.stringify(call.headers).includes(CLIENT_KEY), 'client key must not reach the upstream');
}

function assertAnthropicKey(call) {
  assert.equal(call.headers['x-api-key'], ANTHROPIC_KEY);
  assert.equal(call.headers.authorization, undefined);
  assert.match(call.headers['anthropic-version'] || '', /^\d{4}-\d{2}-\d{2}$/);
  assert.ok(!JSON.stringify(call.headers).includes(CLIENT_KEY), 'client key must not reach the upstream');
}

// Checks an Anthropic SSE event list for the framing clients rely on and
// returns the block kinds in order.
function assertAnthropicFraming(events) {
  for (const e of events) assert.equal(e.event, e.json?.type, `event name matches data.type: ${e.data}`);
  const types = events.map((e) => e.event).filter((t) => t !== 'ping');
  assert.equal(types[0], 'message_start');
  assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
  const open = new Set();
  const kinds = [];
  let next = 0;
  for (const e of events) {
    const j = e.json;
    if (j.type === 'content_block_start') {
      assert.equal(j.index, next, 'block indices count up from 0');
      assert.equal(open.size, 0, 'one block open at a time');
      open.add(j.index);
      kinds.push(j.content_block.type);
      next++;
    } else if (j.type === 'content_block_delta') {
      assert.ok(open.has(j.index), `delta for the open block ${j.index}`);
    } else if (j.type === 'content_block_stop') {
      assert.ok(open.delete(j.index), `stop for the open block ${j.index}`);
    } else if (j.type === 'message_delta' || j.type === 'message_stop') {
      assert.equal(open.size, 0, 'every content_block_start has its stop before the message ends');
    }
  }
  assert.ok(next > 0, 'at least one content block');
  return kinds;
}

describe('anthropic client -> openai-kind upstream', () => {
  const client = () => anthropicClient(getBaseURL());
  beforeEach(() => stack.mock.reset());

  it('raw stream: exact event sequence, indices, model and usage', async () => {
    const r = await fetch(`${stack.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...anthropicHeaders() },
      body: JSON.stringify({ model: 'claude-via-openai', max_tokens: 256, stream: true,
        messages: [{ role: 'user', content: 'Say hello.' }] }),
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    const { events } = await readSSE(r);
    const kinds = assertAnthropicFraming(events);
    assert.deepEqual(kinds, ['text']);
    const types = events.map((e) => e.event).filter((t) => t !== 'ping');
    assert.deepEqual(types, ['message_start', 'content_block_start',
      ...Array(WORDS).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    const start = events[0].json.message;
    assert.equal(start.model, 'claude-via-openai');
    assert.equal(start.role, 'assistant');
    const text = events.filter((e) => e.event === 'content_block_delta').map((e) => e.json.delta.text).join('');
    assert.equal(text, MOCK_TEXT);
    const md = events.find((e) => e.event === 'message_delta').json;
    assert.equal(md.delta.stop_reason, 'end_turn');
    assert.equal(md.usage.output_tokens, WORDS);

    const call = await onlyCall();
    assert.equal(call.path, '/v1/chat/completions');
    assertOpenAIKey(call);
    assert.equal(call.body.model, 'gpt-4o');
    assert.equal(call.body.stream, true);
    assert.equal(call.body.stream_options?.include_usage, true, 'usage asked for, so it can be reported');
    assert.equal(call.stream, true);
  });

  it('raw stream of a tool call: tool_use block, input_json_delta, stop_reason tool_use', async () => {
    const r = await fetch(`${stack.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...anthropicHeaders() },
      body: JSON.stringify({ model: 'claude-via-openai', max_tokens: 256, stream: true, tools: anthropicTools,
        messages: [{ role: 'user', content: 'Weather in Paris?' }] }),
    });
    assert.equal(r.status, 200);
    const { events } = await readSSE(r);
    const kinds = assertAnthropicFraming(events);
    assert.deepEqual(kinds, ['tool_use']);
    const start = events.find((e) => e.event === 'content_block_start').json.content_block;
    assert.equal(start.name, 'get_weather');
    assert.match(start.id, /\S/);
    assert.deepEqual(start.input, {});
    const args = events.filter((e) => e.event === 'content_block_delta').map((e) => {
      assert.equal(e.json.delta.type, 'input_json_delta');
      return e.json.delta.partial_json;
    }).join('');
    assert.deepEqual(JSON.parse(args), { city: 'mock-city', unit: 'celsius' });
    assert.equal(events.find((e) => e.event === 'message_delta').json.delta.stop_reason, 'tool_use');
  });

  it('the translated request: system blocks with cache_control, tools, parameters', async () => {
    const m = await client().messages.create({
      model: 'claude-via-openai',
      max_tokens: 300,
      temperature: 0.5,
      stop_sequences: ['STOP'],
      system: [
        { type: 'text', text: 'You are terse.' },
        { type: 'text', text: 'Answer in English.', cache_control: { type: 'ephemeral' } },
      ],
      tools: anthropicTools,
      tool_choice: { type: 'auto' },
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?', cache_control: { type: 'ephemeral' } }] }],
    });
    assert.equal(m.stop_reason, 'tool_use');
    assert.equal(m.model, 'claude-via-openai');
    const call = await onlyCall();
    assertOpenAIKey(call);
    const b = call.body;
    assert.equal(b.model, 'gpt-4o');
    assert.equal(b.messages[0].role, 'system');
    assert.match(b.messages[0].content, /You are terse\.[\s\S]*Answer in English\./);
    assert.equal(b.messages[1].role, 'user');
    const userText = typeof b.messages[1].content === 'string'
      ? b.messages[1].content : b.messages[1].content.map((p) => p.text).join('');
    assert.equal(userText, 'Weather in Paris?');
    assert.equal(b.messages.length, 2);
    assert.ok((b.max_completion_tokens ?? b.max_tokens) === 300, 'max_tokens carried over');
    assert.equal(b.temperature, 0.5);
    assert.deepEqual(b.stop, ['STOP']);
    assert.deepEqual(b.tools, openaiTools);
    assert.equal(b.tool_choice, 'auto');
    assert.ok(!JSON.stringify(b).includes('cache_control'), 'no Anthropic-only members upstream');
    assert.ok(!b.stream, 'non-stream stays non-stream');
  });

  it('system as a plain string', async () => {
    const m = await client().messages.create({
      model: 'claude-via-openai', max_tokens: 64, system: 'Be brief.',
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    assert.equal(m.content[0].text, MOCK_TEXT.split(' ').slice(0, 64).join(' '));
    const b = (await onlyCall()).body;
    assert.deepEqual(b.messages[0], { role: 'system', content: 'Be brief.' });
    assert.equal(b.messages[1].role, 'user');
  });

  it('tool round trip: tool_use -> tool_result -> text, upstream sees tool_calls and a tool message', async () => {
    const c = client();
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const params = { model: 'claude-via-openai', max_tokens: 256, tools: anthropicTools };
    const first = await c.messages.stream({ ...params, messages }).finalMessage();
    const use = first.content.find((b) => b.type === 'tool_use');
    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: RESULT }] });
    const second = await c.messages.create({ ...params, messages });
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content[0].text, `The tool returned: ${RESULT}`);

    const calls = await upstreamCalls();
    assert.equal(calls.length, 2);
    const b = calls[1].body;
    assert.deepEqual(b.messages.map((x) => x.role), ['user', 'assistant', 'tool']);
    assert.deepEqual(b.messages[1].tool_calls, [{ id: use.id, type: 'function',
      function: { name: 'get_weather', arguments: JSON.stringify(use.input) } }]);
    assert.equal(b.messages[2].tool_call_id, use.id);
    assert.equal(b.messages[2].content, RESULT);
  });

  it('images and a forced tool choice', async () => {
    await client().messages.create({
      model: 'claude-via-openai', max_tokens: 64, tools: anthropicTools,
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'text', text: 'What is in the picture?' },
      ] }],
    });
    const b = (await onlyCall()).body;
    assert.deepEqual(b.tool_choice, { type: 'function', function: { name: 'get_weather' } });
    const parts = b.messages.at(-1).content;
    assert.ok(Array.isArray(parts), 'content parts when an image is present');
    assert.deepEqual(parts.find((p) => p.type === 'image_url'), {
      type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } });
    assert.equal(parts.find((p) => p.type === 'text').text, 'What is in the picture?');
  });

  it('a Claude Code shaped request (beta, thinking, context_management) is accepted', async () => {
    const m = await client().beta.messages.create({
      model: 'claude-via-openai',
      max_tokens: 32000,
      betas: ['claude-code-20250219', 'interleaved-thinking-2025-05-14', 'context-management-2025-06-27'],
      thinking: { type: 'adaptive' },
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
      output_config: { effort: 'high' },
      metadata: { user_id: 'user-1' },
      system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }],
    });
    assert.equal(m.content.filter((x) => x.type === 'text').map((x) => x.text).join(''), MOCK_TEXT);
    const call = await onlyCall();
    assert.equal(call.path, '/v1/chat/completions');
    assert.equal(call.headers['anthropic-beta'], undefined, 'Anthropic headers stay behind');
    for (const k of ['thinking', 'context_management', 'output_config', 'metadata', 'system']) {
      assert.equal(call.body[k], undefined, `${k} is not sent to an OpenAI upstream`);
    }
  });

  it('count_tokens answers an estimate locally', async () => {
    const res = await client().messages.countTokens({
      model: 'claude-via-openai', messages: [{ role: 'user', content: 'Count these words, please.' }],
    }).withResponse();
    assert.equal(res.response.headers.get('x-sluice-estimate'), 'true');
    assert.ok(Number.isInteger(res.data.input_tokens) && res.data.input_tokens > 0);
    assert.equal((await upstreamCalls()).length, 0, 'no upstream call for an estimate');
  });
});

describe('openai client -> anthropic-kind upstream', () => {
  const client = () => openaiClient(getOpenAIBaseURL());
  beforeEach(() => stack.mock.reset());

  it('the translated request: system hoisted, max_tokens, input_schema tools, provider key', async () => {
    const r = await client().chat.completions.create({
      model: 'gpt-via-anthropic',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Weather in Paris?' },
      ],
      tools: openaiTools,
      tool_choice: 'required',
      temperature: 0.3,
      stop: ['STOP'],
    });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(r.model, 'gpt-via-anthropic');
    const call = await onlyCall();
    assert.equal(call.path, '/v1/messages');
    assertAnthropicKey(call);
    const b = call.body;
    assert.equal(b.model, 'claude-sonnet-4-5');
    const system = typeof b.system === 'string' ? b.system : b.system.map((x) => x.text).join('');
    assert.equal(system, 'You are terse.');
    assert.ok(b.messages.every((m) => m.role !== 'system'), 'no system role in Anthropic messages');
    assert.equal(b.messages.length, 1);
    assert.ok(Number.isInteger(b.max_tokens) && b.max_tokens > 0, 'max_tokens is required by Anthropic');
    assert.deepEqual(b.tools, anthropicTools);
    assert.deepEqual(b.tool_choice, { type: 'any' });
    assert.equal(b.temperature, 0.3);
    assert.deepEqual(b.stop_sequences, ['STOP']);
    assert.ok(!b.stream);
  });

  it('images: a data URL becomes a base64 image block', async () => {
    await client().chat.completions.create({
      model: 'gpt-via-anthropic',
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'What is in the picture?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
      ] }],
    });
    const content = (await onlyCall()).body.messages[0].content;
    assert.deepEqual(content.find((x) => x.type === 'image'),
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } });
    assert.equal(content.find((x) => x.type === 'text').text, 'What is in the picture?');
  });

  it('max_tokens from the client is kept; a stream asks Anthropic to stream', async () => {
    const stream = await client().chat.completions.create({
      model: 'gpt-via-anthropic', max_tokens: 5, stream: true,
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    let text = '';
    let finish = null;
    for await (const ch of stream) {
      for (const c of ch.choices) {
        text += c.delta?.content || '';
        if (c.finish_reason) finish = c.finish_reason;
      }
      assert.ok(!ch.usage, 'no usage chunk unless asked');
    }
    assert.equal(text, MOCK_TEXT.split(' ').slice(0, 5).join(' '));
    assert.equal(finish, 'length');
    const call = await onlyCall();
    assert.equal(call.body.max_tokens, 5);
    assert.equal(call.body.stream, true);
    assert.equal(call.body.stream_options, undefined, 'no OpenAI-only members upstream');
    assert.equal(call.stream, true);
  });

  it('tool round trip: tool_calls -> role tool -> text, upstream sees tool_use and tool_result', async () => {
    const c = client();
    const messages = [
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'What is the weather in Paris?' },
    ];
    const first = await c.chat.completions.stream({ model: 'gpt-via-anthropic', messages, tools: openaiTools })
      .finalChatCompletion();
    const tc = first.choices[0].message.tool_calls[0];
    messages.push(first.choices[0].message);
    messages.push({ role: 'tool', tool_call_id: tc.id, content: RESULT });
    const second = await c.chat.completions.create({ model: 'gpt-via-anthropic', messages, tools: openaiTools });
    assert.equal(second.choices[0].finish_reason, 'stop');
    assert.equal(second.choices[0].message.content, `The tool returned: ${RESULT}`);

    const calls = await upstreamCalls();
    assert.equal(calls.length, 2);
    const b = calls[1].body;
    assert.deepEqual(b.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    const use = b.messages[1].content.find((x) => x.type === 'tool_use');
    assert.deepEqual(use, { type: 'tool_use', id: tc.id, name: 'get_weather', input: JSON.parse(tc.function.arguments) });
    const result = b.messages[2].content.find((x) => x.type === 'tool_result');
    assert.equal(result.tool_use_id, tc.id);
    const rtext = typeof result.content === 'string' ? result.content : result.content.map((x) => x.text).join('');
    assert.equal(rtext, RESULT);
  });
});

describe('gemini surface', () => {
  beforeEach(() => stack.mock.reset());
  const gemini = () => new GoogleGenAI({ apiKey: CLIENT_KEY, httpOptions: { baseUrl: stack.url } });

  for (const [model, path, upModel] of [
    ['gpt-via-anthropic', '/v1/messages', 'claude-sonnet-4-5'],
    ['claude-via-openai', '/v1/chat/completions', 'gpt-4o'],
  ]) {
    it(`@google/genai generateContent -> ${path}`, async () => {
      const r = await gemini().models.generateContent({
        model, contents: 'Say hello.',
        config: { systemInstruction: 'Be brief.', maxOutputTokens: 200, temperature: 0.2 },
      });
      assert.equal(r.text, MOCK_TEXT);
      assert.equal(r.candidates[0].finishReason, 'STOP');
      assert.ok(r.usageMetadata.promptTokenCount > 0);
      assert.equal(r.usageMetadata.candidatesTokenCount, WORDS);
      const call = await onlyCall();
      assert.equal(call.path, path);
      assert.equal(call.body.model, upModel);
      if (path === '/v1/messages') {
        assertAnthropicKey(call);
        const sys = typeof call.body.system === 'string' ? call.body.system : call.body.system.map((x) => x.text).join('');
        assert.equal(sys, 'Be brief.');
        assert.equal(call.body.max_tokens, 200);
      } else {
        assertOpenAIKey(call);
        assert.deepEqual(call.body.messages[0], { role: 'system', content: 'Be brief.' });
        assert.equal(call.body.max_completion_tokens ?? call.body.max_tokens, 200);
      }
      assert.equal(call.body.temperature, 0.2);
    });

    it(`@google/genai generateContentStream -> ${path}`, async () => {
      const stream = await gemini().models.generateContentStream({ model, contents: 'Say hello.' });
      let text = '';
      let chunks = 0;
      let finish;
      for await (const ch of stream) {
        if (ch.text) {
          text += ch.text;
          chunks++;
        }
        finish = ch.candidates?.[0]?.finishReason || finish;
      }
      assert.equal(text, MOCK_TEXT);
      assert.ok(chunks > 1, 'streamed in pieces');
      assert.equal(finish, 'STOP');
      const call = await onlyCall();
      assert.equal(call.body.stream, true);
    });

    it(`@google/genai function call round trip -> ${path}`, async () => {
      const ai = gemini();
      const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather',
        parametersJsonSchema: weatherSchema }] }];
      const contents = [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }];
      const first = await ai.models.generateContent({ model, contents, config: { tools } });
      assert.equal(first.functionCalls.length, 1);
      const fc = first.functionCalls[0];
      assert.equal(fc.name, 'get_weather');
      assert.deepEqual(fc.args, { city: 'mock-city', unit: 'celsius' });
      contents.push(first.candidates[0].content);
      contents.push({ role: 'user', parts: [{ functionResponse: { id: fc.id, name: fc.name, response: { result: RESULT } } }] });
      const second = await ai.models.generateContent({ model, contents, config: { tools } });
      assert.match(second.text, /^The tool returned: /);
      assert.ok(second.text.includes(RESULT), second.text);
      const calls = await upstreamCalls();
      assert.equal(calls.length, 2);
      const up = calls[0].body.tools[0];
      if (path === '/v1/messages') assert.deepEqual(up.input_schema, weatherSchema);
      else assert.deepEqual(up.function.parameters, weatherSchema);
    });
  }

  it('raw fetch: :generateContent and :streamGenerateContent?alt=sse', async () => {
    const body = { contents: [{ role: 'user', parts: [{ text: 'Say hello.' }] }] };
    const r = await postJSON(`${stack.url}/v1beta/models/gpt-via-anthropic:generateContent`, body,
      { 'x-goog-api-key': CLIENT_KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.candidates[0].content.role, 'model');
    assert.equal(r.json.candidates[0].content.parts.map((p) => p.text).join(''), MOCK_TEXT);

    const s = await fetch(`${stack.url}/v1beta/models/gpt-via-anthropic:streamGenerateContent?alt=sse`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': CLIENT_KEY },
      body: JSON.stringify(body),
    });
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type'), /^text\/event-stream/);
    const { events } = await readSSE(s);
    assert.ok(events.length > 1);
    for (const e of events) assert.ok(e.json && e.event === undefined, `plain data events: ${e.data}`);
    const text = events.flatMap((e) => e.json.candidates?.[0]?.content?.parts || []).map((p) => p.text || '').join('');
    assert.equal(text, MOCK_TEXT);
    assert.equal(events.at(-1).json.candidates?.[0]?.finishReason ?? events.findLast((e) => e.json.candidates?.[0]?.finishReason)
      ?.json.candidates[0].finishReason, 'STOP');
    assert.ok(events.some((e) => e.json.usageMetadata?.candidatesTokenCount === WORDS));
  });

  it('an upstream error comes back in Gemini shape', async () => {
    const r = await postJSON(`${stack.url}/v1beta/models/gpt-via-anthropic:generateContent`,
      { contents: [{ role: 'user', parts: [{ text: 'hi [[mock status=400]]' }] }] }, { 'x-goog-api-key': CLIENT_KEY });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 400);
    assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    assert.match(r.json.error.message, /mock-upstream: simulated 400/);
  });
});

// An upstream error with a retryable status (429, 5xx by default) is
// answered, once retries run out, by runtime/proxy/proxy.c finish_failed()
// as it came, in the upstream's protocol, not the client's. Those cases are
// `todo` until that is fixed; the `-once` entries (no status retryable, so
// the error is a final answer) show the translation itself is right.
const RETRIED_TODO = undefined; // fixed: finish_failed translates the kept answer
const RETRIED = new Set([408, 429, 500, 502, 503, 504, 529]);

describe('upstream errors in the client protocol', () => {
  beforeEach(() => stack.mock.reset());

  // OpenAI client, Anthropic-kind upstream.
  for (const [status, want, type] of [[529, 503, 'server_error'], [429, 429, 'rate_limit_error'],
    [400, 400, 'invalid_request_error']]) {
    for (const model of ['gpt-via-anthropic-once', 'gpt-via-anthropic']) {
      const todo = model === 'gpt-via-anthropic' && RETRIED.has(status) ? RETRIED_TODO : undefined;
      it(`openai SDK sees ${want} for an Anthropic ${status} (${model})`, { todo }, async () => {
        const err = await openaiClient(getOpenAIBaseURL()).chat.completions.create({
          model, messages: [{ role: 'user', content: `hi [[mock status=${status}]]` }],
        }).then(() => null, (e) => e);
        assert.ok(err, 'the call fails');
        assert.equal(err.status, want);
        assert.equal(err.error?.type, type, JSON.stringify(err.error));
        assert.match(err.error?.message || '', new RegExp(`mock-upstream: simulated ${status}`));
        const calls = await upstreamCalls();
        assert.ok(calls.length >= 1 && calls.every((c) => c.path === '/v1/messages'));
        if (model.endsWith('-once')) assert.equal(calls.length, 1);
      });
    }
  }

  // Anthropic client, OpenAI-kind upstream.
  for (const [status, want, type] of [[529, 529, 'overloaded_error'], [503, 529, 'overloaded_error'],
    [429, 429, 'rate_limit_error'], [400, 400, 'invalid_request_error']]) {
    for (const model of ['claude-via-openai-once', 'claude-via-openai']) {
      const todo = model === 'claude-via-openai' && RETRIED.has(status) ? RETRIED_TODO : undefined;
      it(`anthropic SDK sees ${type} for an OpenAI ${status} (${model})`, { todo }, async () => {
        const err = await anthropicClient(getBaseURL()).messages.create({
          model, max_tokens: 64, messages: [{ role: 'user', content: `hi [[mock status=${status}]]` }],
        }).then(() => null, (e) => e);
        assert.ok(err, 'the call fails');
        assert.equal(err.status, want);
        assert.equal(err.error?.type, 'error', JSON.stringify(err.error));
        assert.equal(err.error?.error?.type, type, JSON.stringify(err.error));
        assert.match(err.error.error.message, new RegExp(`mock-upstream: simulated ${status}`));
        const calls = await upstreamCalls();
        assert.ok(calls.length >= 1 && calls.every((c) => c.path === '/v1/chat/completions'));
      });
    }
  }

  for (const [suffix, todo] of [['-once', undefined], ['', RETRIED_TODO]]) {
    it(`a streamed request that fails upstream fails with the status, before any event (${suffix || 'retried'})`,
      { todo }, async () => {
        const stream = anthropicClient(getBaseURL()).messages.stream({
          model: `claude-via-openai${suffix}`, max_tokens: 64,
          messages: [{ role: 'user', content: 'hi [[mock status=529]]' }],
        });
        const err = await stream.finalMessage().then(() => null, (e) => e);
        assert.ok(err);
        assert.equal(err.status, 529);
        assert.equal(err.error?.error?.type, 'overloaded_error', JSON.stringify(err.error));

        const oerr = await openaiClient(getOpenAIBaseURL()).chat.completions.stream({
          model: `gpt-via-anthropic${suffix}`, messages: [{ role: 'user', content: 'hi [[mock status=529]]' }],
        }).finalChatCompletion().then(() => null, (e) => e);
        assert.ok(oerr);
        assert.equal(oerr.status, 503);
        assert.equal(oerr.error?.type, 'server_error', JSON.stringify(oerr.error));
        assert.match(oerr.error?.message || '', /mock-upstream: simulated 529/);
      });
  }
});

describe('count_tokens', () => {
  beforeEach(() => stack.mock.reset());

  it('to an Anthropic target: forwarded, with the provider key', async () => {
    const res = await anthropicClient(getBaseURL()).messages.countTokens({
      model: 'anthropic-direct', system: 'Be brief.',
      messages: [{ role: 'user', content: 'Count these words, please.' }],
    }).withResponse();
    assert.equal(res.response.headers.get('x-sluice-estimate'), null);
    const call = await onlyCall();
    assert.equal(call.path, '/v1/messages/count_tokens');
    assertAnthropicKey(call);
    assert.equal(call.body.model, 'claude-sonnet-4-5');
    assert.equal(call.body.system, 'Be brief.');
    assert.ok(res.data.input_tokens > 0);
  });

  it('to an OpenAI target: an estimate, flagged, no upstream call', async () => {
    const r = await postJSON(`${stack.url}/v1/messages/count_tokens`, {
      model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'x'.repeat(400) }],
    }, anthropicHeaders());
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-sluice-estimate'), 'true');
    assert.ok(r.json.input_tokens >= 50 && r.json.input_tokens < 400, `about 100: ${r.json.input_tokens}`);
    assert.equal((await upstreamCalls()).length, 0);
  });
});

describe('same-protocol pass-through keeps what the gateway does not know', () => {
  beforeEach(() => stack.mock.reset());

  it('anthropic: unknown fields and a long anthropic-beta arrive intact', async () => {
    const beta = ['claude-code-20250219', 'interleaved-thinking-2025-05-14', 'context-management-2025-06-27',
      'prompt-caching-scope-2026-01-05', 'fine-grained-tool-streaming-2025-05-14', 'effort-2025-11-24',
      'token-efficient-tools-2026-03-28', 'some-future-beta-2027-01-01'].join(',');
    const sent = {
      model: 'anthropic-direct',
      max_tokens: 32000,
      thinking: { type: 'adaptive' },
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
      output_config: { effort: 'high', format: { type: 'json_schema', schema: { type: 'object' } } },
      metadata: { user_id: '{"device_id":"abc","session_id":"s-1"}' },
      system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello. ünïcödé ✓', cache_control: { type: 'ephemeral' } }] }],
      tools: [{ name: 'Bash', input_schema: { type: 'object', properties: { command: { type: 'string' } } },
        eager_input_streaming: true, defer_loading: false }],
      unknown_future_field: { nested: [1, 2.5, null, true, 'x'] },
    };
    const r = await postJSON(`${stack.url}/v1/messages?beta=true`, sent,
      anthropicHeaders(CLIENT_KEY, { 'anthropic-beta': beta }));
    assert.equal(r.status, 200, r.text);
    const call = await onlyCall();
    assert.equal(call.path, '/v1/messages?beta=true');
    assertAnthropicKey(call);
    assert.equal(call.headers['anthropic-beta'], beta);
    assert.equal(call.headers['anthropic-version'], '2023-06-01');
    const want = { ...sent, model: 'claude-sonnet-4-5' };
    // Same members in the same order with the same values.
    assert.equal(JSON.stringify(call.body), JSON.stringify(want));
  });

  it('openai: unknown fields arrive intact', async () => {
    const sent = {
      model: 'openai-direct',
      messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }],
      store: false,
      verbosity: 'low',
      prediction: { type: 'content', content: 'Hello' },
      metadata: { team: 'x' },
      unknown_future_field: { a: [1, { b: null }] },
    };
    const r = await postJSON(`${stack.url}/v1/chat/completions`, sent, openaiHeaders());
    assert.equal(r.status, 200, r.text);
    const call = await onlyCall();
    assertOpenAIKey(call);
    assert.equal(JSON.stringify(call.body), JSON.stringify({ ...sent, model: 'gpt-4o-mini' }));
  });
});
