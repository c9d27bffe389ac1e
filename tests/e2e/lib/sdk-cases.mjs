// The official-SDK test cases, written once and run against several
// targets: the mock-upstream directly (its selftest: proves the mock speaks
// shapes the real SDKs accept), and the gateway in front of the mock or
// its in-process demo provider. `exact` targets are known to be the
// mock-upstream, whose text and stream shape the cases may compare
// exactly; others (the demo provider) are held to the protocol only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { CLIENT_KEY, MOCK_TEXT } from './harness.mjs';

const WEATHER_RESULT = 'Sunny, 21 C, light wind from the west';

export function openaiClient(baseURL, opts = {}) {
  return new OpenAI({ baseURL, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 20000, ...opts });
}

export function anthropicClient(baseURL, opts = {}) {
  // authToken: null so an ANTHROPIC_AUTH_TOKEN in the environment adds no header.
  return new Anthropic({ baseURL, apiKey: CLIENT_KEY, authToken: null, maxRetries: 0,
    timeout: 20000, ...opts });
}

const openaiTools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city'],
    },
  },
}, {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
}];

const anthropicTools = [{
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city'],
  },
}, {
  name: 'get_time',
  input_schema: { type: 'object', properties: {} },
}];

// getBaseURL() is called inside each test, after the suite's before hook.
export function openaiCases({ label, getBaseURL, model, exact }) {
  describe(`openai SDK -> ${label} (${model})`, () => {
    const client = () => openaiClient(getBaseURL());
    const ask = [{ role: 'user', content: 'Say hello.' }];

    it('non-stream chat completion', async () => {
      const r = await client().chat.completions.create({ model, messages: ask });
      assert.equal(r.object, 'chat.completion');
      assert.match(r.id, /\S/);
      assert.equal(r.choices.length, 1);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(typeof r.choices[0].message.content, 'string');
      assert.ok(r.choices[0].message.content.length > 0);
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
      if (exact) {
        assert.equal(r.model, model);
        assert.equal(r.choices[0].message.content, MOCK_TEXT);
        assert.equal(r.usage.completion_tokens, MOCK_TEXT.split(' ').length);
        assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
      }
    });

    it('stream: true, iterated chunk by chunk, with usage', async () => {
      const stream = await client().chat.completions.create({
        model, messages: ask, stream: true, stream_options: { include_usage: true },
      });
      let text = '';
      let chunks = 0;
      let finish = null;
      let usage = null;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
          if (c.delta?.content) {
            text += c.delta.content;
            chunks++;
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      assert.ok(text.length > 0);
      assert.equal(finish, 'stop');
      assert.ok(usage && usage.completion_tokens > 0, 'final usage chunk');
      if (exact) {
        assert.equal(text, MOCK_TEXT);
        assert.equal(chunks, MOCK_TEXT.split(' ').length, 'one chunk per word by default');
      }
    });

    it('chat.completions.stream(...).finalChatCompletion()', async () => {
      const content = [];
      const stream = client().chat.completions.stream({ model, messages: ask });
      stream.on('content', (delta) => content.push(delta));
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0].message.role, 'assistant');
      assert.ok(final.choices[0].message.content.length > 0);
      assert.equal(content.join(''), final.choices[0].message.content);
      if (exact) {
        assert.equal(final.choices[0].message.content, MOCK_TEXT);
        assert.ok(content.length > 1, 'several content deltas');
      }
    });

    async function roundTrip(streamed) {
      const c = client();
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const first = streamed
        ? await c.chat.completions.stream({ model, messages, tools: openaiTools }).finalChatCompletion()
        : await c.chat.completions.create({ model, messages, tools: openaiTools });
      const choice = first.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.tool_calls.length, 1);
      const call = choice.message.tool_calls[0];
      assert.equal(call.type, 'function');
      assert.match(call.id, /\S/);
      assert.equal(call.function.name, 'get_weather');
      const args = JSON.parse(call.function.arguments);
      assert.equal(typeof args, 'object');
      if (exact) assert.deepEqual(args, { city: 'mock-city', unit: 'celsius' });

      messages.push(choice.message);
      messages.push({ role: 'tool', tool_call_id: call.id, content: WEATHER_RESULT });
      const second = streamed
        ? await c.chat.completions.stream({ model, messages, tools: openaiTools }).finalChatCompletion()
        : await c.chat.completions.create({ model, messages, tools: openaiTools });
      assert.equal(second.choices[0].finish_reason, 'stop');
      const text = second.choices[0].message.content;
      assert.ok(typeof text === 'string' && text.length > 0);
      if (exact) assert.ok(text.includes(WEATHER_RESULT), `reply quotes the tool result: ${text}`);
    }

    it('tool call round trip (non-stream)', () => roundTrip(false));
    it('tool call round trip (streamed)', () => roundTrip(true));
  });
}

export function anthropicCases({ label, getBaseURL, model, exact }) {
  describe(`anthropic SDK -> ${label} (${model})`, () => {
    const client = () => anthropicClient(getBaseURL());
    const ask = [{ role: 'user', content: 'Say hello.' }];

    it('non-stream message', async () => {
      const m = await client().messages.create({ model, max_tokens: 256, messages: ask });
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.match(m.id, /\S/);
      assert.equal(m.content[0].type, 'text');
      assert.ok(m.content[0].text.length > 0);
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
      if (exact) {
        assert.equal(m.model, model);
        assert.equal(m.content[0].text, MOCK_TEXT);
        assert.equal(m.usage.output_tokens, MOCK_TEXT.split(' ').length);
      }
    });

    it('stream: true, iterated event by event', async () => {
      const stream = await client().messages.create({
        model, max_tokens: 256, messages: ask, stream: true,
      });
      const types = [];
      let text = '';
      let stop = null;
      let outTokens = 0;
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
        if (ev.type === 'message_delta') {
          stop = ev.delta.stop_reason;
          outTokens = ev.usage.output_tokens;
        }
      }
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.ok(types.includes('content_block_delta'));
      assert.equal(stop, 'end_turn');
      assert.ok(text.length > 0 && outTokens > 0);
      if (exact) {
        const words = MOCK_TEXT.split(' ').length;
        // The SDK drops `ping` events; the raw sequence is checked elsewhere.
        assert.deepEqual(types, ['message_start', 'content_block_start',
          ...Array(words).fill('content_block_delta'), 'content_block_stop', 'message_delta',
          'message_stop']);
        assert.equal(text, MOCK_TEXT);
        assert.equal(outTokens, words);
      }
    });

    it('messages.stream(...).finalMessage()', async () => {
      const deltas = [];
      const stream = client().messages.stream({ model, max_tokens: 256, messages: ask });
      stream.on('text', (t) => deltas.push(t));
      const m = await stream.finalMessage();
      assert.equal(m.content[0].type, 'text');
      assert.equal(deltas.join(''), m.content[0].text);
      assert.equal(m.stop_reason, 'end_turn');
      if (exact) assert.equal(m.content[0].text, MOCK_TEXT);
    });

    async function roundTrip(streamed) {
      const c = client();
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const params = { model, max_tokens: 256, tools: anthropicTools };
      const first = streamed
        ? await c.messages.stream({ ...params, messages }).finalMessage()
        : await c.messages.create({ ...params, messages });
      assert.equal(first.stop_reason, 'tool_use');
      const use = first.content.find((b) => b.type === 'tool_use');
      assert.ok(use, 'a tool_use block');
      assert.equal(use.name, 'get_weather');
      assert.match(use.id, /\S/);
      assert.equal(typeof use.input, 'object');
      if (exact) assert.deepEqual(use.input, { city: 'mock-city', unit: 'celsius' });

      messages.push({ role: 'assistant', content: first.content });
      messages.push({
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: use.id, content: WEATHER_RESULT }],
      });
      const second = streamed
        ? await c.messages.stream({ ...params, messages }).finalMessage()
        : await c.messages.create({ ...params, messages });
      assert.equal(second.stop_reason, 'end_turn');
      const text = second.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
      assert.ok(text.length > 0);
      if (exact) assert.ok(text.includes(WEATHER_RESULT), `reply quotes the tool result: ${text}`);
    }

    it('tool use round trip (non-stream)', () => roundTrip(false));
    it('tool use round trip (streamed)', () => roundTrip(true));
  });
}
