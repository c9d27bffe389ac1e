// Gemini as an *upstream* (`kind: gemini`): the official OpenAI and
// Anthropic SDKs and the @google/genai client through the translate
// gateway to the mock's Gemini surface, streaming and not, tools included.
// Besides what each client sees, the mock's call log shows what sluice
// built: the URL (base_url + /v1beta/models/{model}:generateContent, or
// :streamGenerateContent?alt=sse), the provider key in x-goog-api-key and
// nowhere else, and the request in Gemini's shape.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import { useStack, CLIENT_KEY, GEMINI_KEY, MOCK_TEXT } from './lib/harness.mjs';
import { openaiCases, anthropicCases } from './lib/sdk-cases.mjs';

const stack = useStack();
const WORDS = MOCK_TEXT.split(' ').length;
const RESULT = 'Sunny, 21 C, light wind from the west';
const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city'],
};

// The shared SDK cases (text, streams, tool round trips) held to the mock's
// exact answers, through the Gemini translation both ways.
openaiCases({ label: 'gateway -> up-gemini (translated)', getBaseURL: () => `${stack.url}/v1`,
  model: 'gpt-via-gemini', exact: true });
anthropicCases({ label: 'gateway -> up-gemini (translated)', getBaseURL: () => stack.url,
  model: 'claude-via-gemini', exact: true });

function assertGeminiCall(call, { model, stream }) {
  const verb = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
  assert.equal(call.path, `/v1beta/models/${model}:${verb}`);
  assert.equal(call.headers['x-goog-api-key'], GEMINI_KEY);
  assert.equal(call.headers.authorization, undefined);
  assert.equal(call.headers['x-api-key'], undefined);
  assert.ok(!JSON.stringify(call.headers).includes(CLIENT_KEY), 'client key must not reach the upstream');
  assert.ok(Array.isArray(call.body.contents), 'a Gemini request body');
}

describe('what reaches a Gemini-kind upstream', () => {
  beforeEach(() => stack.mock.reset());

  for (const stream of [false, true]) {
    it(`openai client, ${stream ? 'stream' : 'non-stream'}: URL, key header, contents and config`, async () => {
      const r = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
        body: JSON.stringify({ model: 'gpt-via-gemini', stream, max_tokens: 50, temperature: 0.3,
          messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }] }),
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-sluice-provider'), 'up-gemini');
      await r.text();
      const calls = await stack.mock.calls();
      assert.equal(calls.length, 1);
      assertGeminiCall(calls[0], { model: 'gemini-2.5-flash', stream });
      const b = calls[0].body;
      assert.deepEqual(b.systemInstruction.parts.map((p) => p.text).join(''), 'Be brief.');
      assert.equal(b.generationConfig.maxOutputTokens, 50);
      assert.equal(b.generationConfig.temperature, 0.3);
      assert.deepEqual(b.contents, [{ role: 'user', parts: [{ text: 'Say hello.' }] }]);
    });
  }

  it('anthropic client: tools become functionDeclarations; the tool result a functionResponse', async () => {
    const body = (messages) => JSON.stringify({ model: 'claude-via-gemini', max_tokens: 100, messages,
      tools: [{ name: 'get_weather', description: 'Weather', input_schema: weatherSchema }] });
    const headers = { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY, 'anthropic-version': '2023-06-01' };
    const first = await (await fetch(`${stack.url}/v1/messages`, { method: 'POST', headers,
      body: body([{ role: 'user', content: 'Weather in Paris?' }]) })).json();
    assert.equal(first.stop_reason, 'tool_use', JSON.stringify(first));
    const use = first.content.find((c) => c.type === 'tool_use');
    assert.deepEqual(use.input, { city: 'mock-city', unit: 'celsius' });
    const second = await (await fetch(`${stack.url}/v1/messages`, { method: 'POST', headers,
      body: body([{ role: 'user', content: 'Weather in Paris?' }, { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: RESULT }] }]) })).json();
    assert.ok(second.content[0].text.includes(RESULT), JSON.stringify(second));
    const calls = await stack.mock.calls();
    assert.equal(calls.length, 2);
    const decl = calls[0].body.tools[0].functionDeclarations[0];
    assert.equal(decl.name, 'get_weather');
    const parts = calls[1].body.contents.flatMap((c) => c.parts);
    assert.ok(parts.some((p) => p.functionCall?.name === 'get_weather'), JSON.stringify(parts));
    assert.ok(parts.some((p) => p.functionResponse?.name === 'get_weather'), JSON.stringify(parts));
  });
});

describe('@google/genai client -> Gemini-kind upstream (same protocol)', () => {
  beforeEach(() => stack.mock.reset());
  const gemini = () => new GoogleGenAI({ apiKey: CLIENT_KEY, httpOptions: { baseUrl: stack.url } });

  it('generateContent: the upstream model from the spec, the provider key', async () => {
    const r = await gemini().models.generateContent({ model: 'gemini-direct', contents: 'Say hello.' });
    assert.equal(r.text, MOCK_TEXT);
    assert.equal(r.candidates[0].finishReason, 'STOP');
    assert.equal(r.usageMetadata.candidatesTokenCount, WORDS);
    const calls = await stack.mock.calls();
    assert.equal(calls.length, 1);
    assertGeminiCall(calls[0], { model: 'gemini-2.5-pro', stream: false });
  });

  it('generateContentStream: ?alt=sse upstream, the text in pieces', async () => {
    const stream = await gemini().models.generateContentStream({ model: 'gemini-direct', contents: 'Say hello.' });
    let text = '';
    let chunks = 0;
    let usage;
    for await (const ch of stream) {
      if (ch.text) { text += ch.text; chunks++; }
      usage = ch.usageMetadata || usage;
    }
    assert.equal(text, MOCK_TEXT);
    assert.equal(chunks, WORDS, 'one chunk per word, as the upstream sent them');
    assert.equal(usage.candidatesTokenCount, WORDS);
    const calls = await stack.mock.calls();
    assertGeminiCall(calls[0], { model: 'gemini-2.5-pro', stream: true });
  });

  for (const stream of [false, true]) {
    it(`function call round trip (${stream ? 'streamed' : 'non-stream'})`, async () => {
      const ai = gemini();
      const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather',
        parametersJsonSchema: weatherSchema }] }];
      const contents = [{ role: 'user', parts: [{ text: 'Weather in Paris?' }] }];
      const ask = async () => {
        if (!stream) return ai.models.generateContent({ model: 'gemini-direct', contents, config: { tools } });
        let last;
        const parts = [];
        for await (const ch of await ai.models.generateContentStream({ model: 'gemini-direct', contents, config: { tools } })) {
          parts.push(...(ch.candidates?.[0]?.content?.parts || []));
          last = ch;
        }
        return { parts, text: parts.map((p) => p.text || '').join(''), last };
      };
      const first = await ask();
      const fparts = stream ? first.parts : first.candidates[0].content.parts;
      const fc = fparts.find((p) => p.functionCall).functionCall;
      assert.equal(fc.name, 'get_weather');
      assert.deepEqual(fc.args, { city: 'mock-city', unit: 'celsius' });
      contents.push({ role: 'model', parts: fparts });
      contents.push({ role: 'user', parts: [{ functionResponse: { name: fc.name, response: { result: RESULT } } }] });
      const second = await ask();
      assert.match(second.text, /^The tool returned: /);
      assert.ok(second.text.includes(RESULT), second.text);
      const calls = await stack.mock.calls();
      assert.equal(calls.length, 2);
      for (const c of calls) assertGeminiCall(c, { model: 'gemini-2.5-pro', stream });
      assert.deepEqual(calls[0].body.tools[0].functionDeclarations[0].parametersJsonSchema, weatherSchema);
    });
  }
});
