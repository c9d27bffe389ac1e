/*
 * Fuzz target: the AWS event-stream decoder and the Bedrock stream filter
 * on top of it (InvokeModel chunks and Converse events into Anthropic SSE).
 * The first byte picks the mode and the split size; split points must not
 * change the SSE produced or whether the stream failed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/bedrock.h"

static int run(int converse, const uint8_t *d, size_t n, size_t step, sl_buf *out)
{
    sl_bedrock_stream *s = sl_bedrock_stream_new(converse, "m");
    if (!s)
        return -2;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = sl_bedrock_stream_feed(s, (const char *)d + i, n - i < step ? n - i : step, out);
    if (rc == 0)
        rc = sl_bedrock_stream_finish(s, out) == 0 ? 0 : 1;
    sl_bedrock_stream_free(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int converse = data[0] & 1;
    size_t step = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    sl_buf a = {0}, b = {0};
    int ra = run(converse, data, size, size ? size : 1, &a);
    int rb = run(converse, data, size, step, &b);
    /* Success and its bytes may not depend on the split (Converse
     * message ids are a process counter: same width, other digits). */
    if ((ra == 0) != (rb == 0) ||
        (ra == 0 && (a.len != b.len || (!converse && a.len && memcmp(a.data, b.data, a.len)))))
        abort();
    sl_buf_free(&a);
    sl_buf_free(&b);
    return 0;
}
