/*
 * Fuzz target: the SSE usage observer that watches relayed streams. Split
 * points must not change what it concludes.
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
    sl_usage_counts u = {0};
    sl_usage_from_body((const char *)data, size, &u);
    return 0;
}
