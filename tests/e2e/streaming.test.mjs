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
    // README: OpenAI `data: {"error":...}`.
    isError: (e) => e.event === undefined && e.json?.error?.type === 'server_error' &&
      /^upstream stream from provider 'up-openai' failed/.test(e.json.error.message),
  },
  anthropic: {
    path: '/v1/messages',
    headers: () => ({ 'content-type': 'application/json', ...anthropicHeaders() }),
    body: (content) => ({ model: 'claude-sonnet-4-5', max_tokens: 256, stream: true,
      messages: [{ role: 'user', content }] }),
    isText: (e) => e.json?.type === 'content_block_delta',
    isEnd: (e) => e.json?.type === 'message_stop',
    // README: Anthropic `event: error`.
    isError: (e) => e.event === 'error' && e.json?.type === 'error' && e.json.error?.type === 'api_error' &&
      /^upstream stream from provider 'up-anthropic' failed/.test(e.json.error.message),
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
      // Event order, not gaps between arrivals: when the client holds the
      // first and the second text chunk, the mock's own record of the
      // transfer must still say it has not finished sending (three more
      // intervals are left), which a gateway that buffers the stream
      // cannot produce.
      const seen = [];
      const { events } = await readSSE(r, {
        onEvent: (e) => {
          if (p.isText(e) && seen.length < 2) seen.push(stack.mock.calls());
        },
      });
      const total = performance.now() - t0;
      const text = events.filter(p.isText);
      assert.equal(text.length, CHUNKS, 'every upstream chunk arrives');
      assert.ok(p.isEnd(events.at(-1)), 'the stream ends with its final event');
      for (const [i, calls] of (await Promise.all(seen)).entries()) {
        assert.equal(calls.length, 1);
        assert.equal(calls[0].completed, false, `text chunk ${i + 1} reached the client before the upstream finished`);
      }
      const [done] = await stack.mock.calls();
      assert.equal(done.completed, true, 'and the upstream did finish');
      // A lower bound only (a loaded machine is slower, never faster): the
      // pacing directive took effect.
      assert.ok(total >= (CHUNKS - 1) * INTERVAL, `total ${total} ms`);
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

    it('an upstream stream cut mid-way ends with an error event, then the connection closes without the final chunk', async () => {
      const r = await fetch(`${stack.url}${p.path}`, {
        method: 'POST', headers: p.headers(),
        body: JSON.stringify(p.body('[[mock chunks=6 interval_ms=20 fail=truncate]]')),
      });
      assert.equal(r.status, 200);
      const events = [];
      const read = readSSE(r, { onEvent: (e) => { events.push(e); } }).then(() => null, (e) => e);
      const err = await Promise.race([read, sleep(5000).then(() => 'hang')]);
      assert.notEqual(err, 'hang', 'the client stream ends, it does not hang');
      assert.ok(events.some(p.isText), 'what the upstream sent was relayed');
      assert.ok(p.isError(events.at(-1)), `the last event is the error event: ${events.at(-1)?.data}`);
      assert.ok(!events.some(p.isEnd), 'no made-up end of stream');
      // A chunked body without its last chunk: fetch reports the socket
      // closing under it, never a clean end.
      assert.ok(err, 'the body does not end cleanly');
      assert.equal(err.message, 'terminated');
      assert.equal(err.cause?.code, 'UND_ERR_SOCKET', String(err.cause));
    });
  });
}
