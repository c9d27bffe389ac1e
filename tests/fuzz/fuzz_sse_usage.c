/*
 * Fuzz target: the SSE usage observer that watches relayed streams, and the
 * relay that strips the usage chunk (whose whole-event reads skip the copy).
 * Split points must not change what either concludes or what the client
 * gets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "govern/usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    sl_usage_stream whole = {0}, parts = {0};
    sl_usage_stream_feed(&whole, (const char *)data, size);
    for (size_t i = 0; i < size; i += step)
        sl_usage_stream_feed(&parts, (const char *)data + i, size - i < step ? size - i : step);
    if (whole.u.input != parts.u.input || whole.u.output != parts.u.output ||
        whole.done != parts.done || whole.events != parts.events)
        abort();
    sl_usage_stream_free(&whole);
    sl_usage_stream_free(&parts);

    sl_usage_stream sw = {0}, sp = {0};
    sl_buf kw = {0}, kp = {0};
    int rw = sl_usage_stream_relay(&sw, (const char *)data, size, &kw), rp = 0;
    for (size_t i = 0; i < size && rp == 0; i += step) {
        size_t n = size - i < step ? size - i : step;
        int rc = sl_usage_stream_strip(&sp, (const char *)data + i, n, &kp);
        if (rc == 1)
            rc = sl_buf_append(&kp, (const char *)data + i, n);
        rp = rc;
    }
    if (rw == 0 && rp == 0 &&
        (kw.len != kp.len || (kw.len && memcmp(kw.data, kp.data, kw.len) != 0) || sw.u.output != sp.u.output ||
         sw.events != sp.events))
        abort();
    sl_buf_free(&kw);
    sl_buf_free(&kp);
    sl_usage_stream_free(&sw);
    sl_usage_stream_free(&sp);
    sl_usage_counts u = {0};
    sl_usage_from_body((const char *)data, size, &u);
    return 0;
}
