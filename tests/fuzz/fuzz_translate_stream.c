/*
 * Fuzz target: the SSE parser and the incremental stream translator. The
 * first byte picks the upstream protocol, the client protocol (the three
 * wire protocols or the Responses API, a client protocol only) and the
 * feed size;
 * the rest is fed as an upstream stream. Feeding in pieces must produce the
 * same client bytes and the same verdict as feeding it whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "translate/translate.h"

static int run(sl_proto up, sl_proto client, const uint8_t *d, size_t n, size_t step, sl_buf *out)
{
    sl_stream *s = sl_stream_new(up, client, "fuzz-model");
    if (!s)
        return -2;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = sl_stream_feed(s, (const char *)d + i, n - i < step ? n - i : step, out);
    if (rc == 0)
        rc = sl_stream_finish(s, out) == 0 ? 0 : 1;
    (void)sl_stream_usage(s);
    sl_stream_free(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sl_proto up = (sl_proto)(data[0] % 3);
    sl_proto client = (sl_proto)((data[0] / 3) % 4);
    size_t step = (size_t)(data[0] / 12) % 16 + 1;
    data++;
    size--;
    sl_buf whole = {0}, parts = {0};
    int a = run(up, client, data, size, size ? size : 1, &whole);
    int b = run(up, client, data, size, step, &parts);
    /* A malformed stream may be caught at different points, but a clean
     * one must translate to the same bytes however it is split (compared
     * by length: OpenAI chunks carry the current time in "created"). */
    if (a == 0 && b == 0 && whole.len != parts.len)
        abort();
    if ((a == 0) != (b == 0) && a != -1 && b != -1)
        abort();
    sl_buf_free(&whole);
    sl_buf_free(&parts);
    return 0;
}
