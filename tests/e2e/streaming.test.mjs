// Streaming through the gateway is a relay, not a buffer: with the
// upstream pacing chunks 300 ms apart, the client must see each chunk when
// the upstream sends it, and a client that hangs up mid-stream must make
// the gateway drop the upstream transfer (seen by the mock as its peer
// closing before the reply finished).
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  useStack, readSSE, eventually, sleep, openaiHeaders, anthropicHeaders,
} from './lib/harness.mjs';

const stack = useStack();
beforeEach(() => stack.mock.reset());

const CHUNKS = 5;
const INTERVAL = 300;
const PACED = `Count to five. [[mock chunks=${CHUNKS} interval_ms=${INTERVAL}]]`;

const protocols = {
  openai: {
    path: '/v1/chat/completions',
    headers: () => ({ 'content-type': 'application/json', ...openaiHeaders() }),
    body: (content) => ({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content }] }),
    isText: (e) => Boolean(e.json?.choices?.[0]?.delta?.content),
    isEnd: (e) => e.data === '[DONE]',
  },
  anthropic: {
    path: '/v1/messages',
    headers: () => ({ 'content-type': 'application/json', ...anthropicHeaders() }),
    body: (content) => ({ model: 'claude-sonnet-4-5', max_tokens: 256, stream: true,
      messages: [{ role: 'user', content }] }),
    isText: (e) => e.json?.type === 'content_block_delta',
    isEnd: (e) => e.json?.type === 'message_stop',
  },
};

for (const [name, p] of Object.entries(protocols)) {
  describe(`${name} stream relay`, () => {
    it('chunks reach the client as the upstream sends them', async () => {
      const t0 = performance.now();
      const r = await fetch(`${stack.url}${p.path}`, {
        method: 'POST', headers: p.headers(), body: JSON.stringify(p.body(PACED)),
      });
      assert.equal(r.status, 200);
      const { events } = await readSSE(r, { t0 });
      const total = performance.now() - t0;
      const text = events.filter(p.isText);
      assert.equal(text.length, CHUNKS, 'every upstream chunk arrives');
      assert.ok(p.isEnd(events.at(-1)), 'the stream ends with its final event');
      // The upstream spends (CHUNKS-1)*INTERVAL ms between first and last chunk.
      assert.ok(total >= (CHUNKS - 1) * INTERVAL, `total ${total} ms`);
      assert.ok(text[0].t < total - 2 * INTERVAL,
        `first chunk at ${text[0].t.toFixed(0)} ms should come well before the end (${total.toFixed(0)} ms)`);
      for (let i = 1; i < text.length; i++) {
        const gap = text[i].t - text[i - 1].t;
        assert.ok(gap >= INTERVAL / 2,
          `chunk ${i} arrived ${gap.toFixed(0)} ms after chunk ${i - 1}: buffered, not relayed`);
      }
    });

    it('a client that disconnects mid-stream cancels the upstream request', async () => {
      const ac = new AbortController();
      const r = await fetch(`${stack.url}${p.path}`, {
        method: 'POST', headers: p.headers(), signal: ac.signal,
        body: JSON.stringify(p.body('Keep talking. [[mock chunks=30 interval_ms=200]]')),
      });
      assert.equal(r.status, 200);
      let sawText = false;
      await readSSE(r, {
        onEvent: (e) => {
          if (p.isText(e)) sawText = true;
          return !sawText; // stop reading at the first text chunk
        },
      });
      assert.ok(sawText);
      ac.abort();
      // The upstream would run for ~6 s more; the gateway must hang up on it now.
      const call = await eventually(async () => {
        const calls = await stack.mock.calls();
        return calls.find((c) => c.closed_early);
      }, 3000);
      assert.ok(call, 'the mock saw its client (the gateway) close mid-stream');
      assert.equal(call.completed, false);
    });

    it('an upstream stream cut mid-way ends the client stream without the final events', async () => {
      const r = await fetch(`${stack.url}${p.path}`, {
        method: 'POST', headers: p.headers(),
        body: JSON.stringify(p.body('[[mock chunks=6 interval_ms=20 fail=truncate]]')),
      });
      assert.equal(r.status, 200);
      let events = [];
      const done = (async () => {
        try {
          ({ events } = await readSSE(r, { onEvent: (e) => { events.push(e); } }));
        } catch { /* an aborted transfer is an acceptable way to end */ }
      })();
      const finished = await Promise.race([done.then(() => true), sleep(5000).then(() => false)]);
      assert.ok(finished, 'the client stream ends, it does not hang');
      assert.ok(events.some(p.isText), 'what the upstream sent was relayed');
      assert.ok(!events.some(p.isEnd), 'no made-up end of stream');
    });
  });
}
