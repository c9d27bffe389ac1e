/*
 * The streaming guardrail scanner (runtime/guard): the input is cut into
 * pieces (each byte 0x01 ends one) that arrive one by one, as events of a
 * stream do, through every guardrail of tests/runtime/guard.yaml in both
 * directions. What is held back never exceeds the lookbehind window, every
 * byte is either released or held, and one uncut piece gives what one
 * whole scan gives. Then the same bytes, read as a server-sent event
 * stream in the client's shape, go through the relay filter (events
 * parsed, delta fields held back and flushed, placeholders restored) in
 * the same pieces, and, as a whole body, through the body filter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guard/guard.h"
#include "table.h"

static int feed(sl_guard_req *g, sl_guard_dir dir, const uint8_t *d, size_t n, sl_buf *all)
{
    sl_buf held = {0};
    size_t start = 0;
    int rc = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        if (i < n && d[i] != 0x01)
            continue;
        if (sl_buf_append(&held, d + start, i - start) != 0)
            abort();
        start = i + 1;
        size_t used;
        rc = sl_guard_text(g, dir, held.data ? held.data : "", held.len, i == n, all, &used);
        if (rc == -1)
            abort();
        if (rc == 1)
            break;
        if (used > held.len)
            abort();
        if (used) {
            memmove(held.data, held.data + used, held.len - used);
            held.len -= used;
        }
        if (held.len > SL_GUARD_WINDOW)
            abort();
    }
    if (rc == 0 && held.len != 0)
        abort(); /* the final piece decides everything */
    sl_buf_free(&held);
    return rc;
}

static void stream_filter(const sl_guard_spec *spec, uint32_t rails, const uint8_t *d, size_t n)
{
    sl_guard_req *g = sl_guard_req_new(spec, rails);
    if (!g)
        return;
    /* a request first, so restore has values to put back */
    sl_buf tmp = {0};
    size_t used;
    static const char req[] = "mail bob@example.com card 4111 1111 1111 1111";
    sl_guard_text(g, SL_GUARD_REQUEST, req, sizeof req - 1, 1, &tmp, &used);
    sl_buf_free(&tmp);
    int transform = 0;
    if (spec->ops->stream_begin(g, &transform)) {
        sl_buf out = {0};
        size_t start = 0;
        int rc = 0;
        for (size_t i = 0; i <= n && rc == 0; i++) {
            if (i < n && d[i] != 0x01)
                continue;
            rc = spec->ops->stream_feed(g, (const char *)d + start, i - start, transform ? &out : NULL);
            start = i + 1;
        }
        if (rc == 0 && transform)
            spec->ops->stream_finish(g, &out);
        sl_buf_free(&out);
    }
    char *body = malloc(n + 1);
    if (body) {
        memcpy(body, d, n);
        body[n] = '\0';
        size_t len = n;
        char msg[256];
        spec->ops->body(g, &body, &len, msg, sizeof msg);
        free(body);
    }
    sl_guard_req_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_guard_spec *spec = sl_spec.guard;
    uint32_t all_rails = (1u << spec->rail_count) - 1;
    for (int dir = 0; dir < 2; dir++) {
        sl_guard_req *g = sl_guard_req_new(spec, all_rails);
        if (!g)
            return 0;
        sl_buf out = {0};
        int rc = feed(g, (sl_guard_dir)dir, data, size, &out);
        sl_buf_free(&out);
        sl_guard_req_free(g);
        if (memchr(data, 0x01, size) == NULL) {
            /* one piece: the same as a whole scan */
            g = sl_guard_req_new(spec, all_rails);
            sl_buf whole = {0};
            size_t used;
            int wrc = sl_guard_text(g, (sl_guard_dir)dir, (const char *)data, size, 1, &whole, &used);
            if (wrc != rc || (wrc == 0 && used != size))
                abort();
            sl_buf_free(&whole);
            sl_guard_req_free(g);
        }
    }
    stream_filter(spec, all_rails, data, size);
    stream_filter(spec, 1u, data, size); /* redact and restore only: transforms */
    stream_filter(spec, 4u, data, size); /* log only: observes */
    return 0;
}
