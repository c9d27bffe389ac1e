/*
 * SSE field parsing per the WHATWG event-stream rules that matter for LLM
 * APIs: `data:` lines accumulate, `event:` names the event, lines starting
 * with ':' are comments (keep-alives), `id:` and `retry:` are ignored
 * because upstreams are never reconnected mid-answer. A blank line
 * dispatches the event when it carried data.
 */
#include "translate/sse.h"

#include <string.h>

/* ---- lines ------------------------------------------------------------- */

void sl_sse_lines_free(sl_sse_lines *s)
{
    sl_buf_free(&s->line);
}

static int lines_fail(sl_sse_lines *s)
{
    s->failed = 1;
    sl_buf_free(&s->line);
    return -1;
}

/* The first CR or LF in buf[i, n), or n: two vectorised scans instead of
 * a byte loop (this runs over every streamed byte). */
static size_t line_end(const char *buf, size_t i, size_t n)
{
    const char *lf = memchr(buf + i, '\n', n - i);
    size_t end = lf ? (size_t)(lf - buf) : n;
    const char *cr = end > i ? memchr(buf + i, '\r', end - i) : NULL;
    return cr ? (size_t)(cr - buf) : end;
}

int sl_sse_lines_feed(sl_sse_lines *s, const char *buf, size_t n, sl_sse_line_cb cb, void *ctx)
{
    if (s->failed)
        return -1;
    size_t cap = s->max_line ? s->max_line : SL_SSE_MAX_LINE;
    size_t i = 0;
    while (i < n) {
        if (!s->started) {
            /* A UTF-8 byte-order mark may precede the first line. */
            static const char bom[] = "\xEF\xBB\xBF";
            size_t have = s->line.len;
            if (have < 3 && (unsigned char)buf[i] == (unsigned char)bom[have]) {
                if (sl_buf_append(&s->line, buf + i, 1) != 0)
                    return lines_fail(s);
                i++;
                if (s->line.len == 3) {
                    sl_buf_clear(&s->line);
                    s->started = 1;
                }
                continue;
            }
            s->started = 1;
        }
        if (s->after_cr) {
            s->after_cr = 0;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = line_end(buf, i, n);
        if (j < n && s->line.len == 0) {
            /* The whole line is in this piece (the usual case: upstreams
             * write whole events): hand it over where it lies, no copy. */
            if (j - i > cap)
                return lines_fail(s);
            s->after_cr = buf[j] == '\r';
            int rc = cb(ctx, buf + i, j - i);
            i = j + 1;
            if (rc == -1)
                return lines_fail(s);
            if (rc != 0)
                return rc;
            continue;
        }
        /* Copy up to the line ending in one go; the cap is checked before
         * the copy, so a line without end never grows past it. */
        if (j > i && (s->line.len + (j - i) > cap || sl_buf_append(&s->line, buf + i, j - i) != 0))
            return lines_fail(s);
        if (j == n)
            break;
        s->after_cr = buf[j] == '\r';
        i = j + 1;
        int rc = cb(ctx, s->line.data ? s->line.data : "", s->line.len);
        sl_buf_clear(&s->line);
        if (rc == -1)
            return lines_fail(s);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sl_sse_lines_finish(sl_sse_lines *s, sl_sse_line_cb cb, void *ctx)
{
    if (s->failed)
        return -1;
    if (s->line.len == 0)
        return 0;
    int rc = cb(ctx, s->line.data, s->line.len);
    sl_buf_clear(&s->line);
    if (rc == -1)
        return lines_fail(s);
    return rc;
}

/* ---- events ------------------------------------------------------------- */

void sl_sse_init(sl_sse *p, size_t max_event)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : SL_SSE_MAX_LINE;
    p->lines.max_line = p->max_event;
}

void sl_sse_free(sl_sse *p)
{
    sl_sse_lines_free(&p->lines);
    sl_buf_free(&p->event);
    sl_buf_free(&p->data);
}

size_t sl_sse_pending(const sl_sse *p)
{
    return p->lines.line.len + p->event.len + p->data.len;
}

static int dispatch(sl_sse *p, sl_sse_cb cb, void *ctx)
{
    int rc = 0;
    if (p->have_data) {
        size_t n = p->data.len;
        if (n > 0 && p->data.data[n - 1] == '\n')
            n--;   /* the spec drops the newline added after the last line */
        if (sl_buf_reserve(&p->data, 1) != 0)
            return -1;
        p->data.data[n] = '\0';
        if (sl_buf_reserve(&p->event, 1) != 0)
            return -1;
        p->event.data[p->event.len] = '\0';
        sl_sse_event ev = {p->event.data, p->event.len, p->data.data, n};
        rc = cb(ctx, &ev);
    }
    sl_buf_clear(&p->event);
    sl_buf_clear(&p->data);
    p->have_data = 0;
    return rc;
}

static int field(sl_sse *p, const char *l, size_t n, sl_sse_cb cb, void *ctx)
{
    if (n == 0)
        return dispatch(p, cb, ctx);
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vn = (size_t)(l + n - v);
    if (vn > 0 && v[0] == ' ') {
        v++;
        vn--;
    }
    if (name_len == 4 && memcmp(l, "data", 4) == 0) {
        p->have_data = 1;
        if (sl_buf_append(&p->data, v, vn) != 0 || sl_buf_append(&p->data, "\n", 1) != 0)
            return -1;
    } else if (name_len == 5 && memcmp(l, "event", 5) == 0) {
        sl_buf_clear(&p->event);
        if (sl_buf_append(&p->event, v, vn) != 0)
            return -1;
    }
    return 0;
}

/* Over the cap or out of memory: drop what is held (up to a cap's worth)
 * and refuse everything after, so a caller that keeps feeding cannot
 * resume parsing in the middle of the oversized line. */
static int fail(sl_sse *p)
{
    p->failed = 1;
    sl_sse_free(p);
    return -1;
}

static int on_line(void *ctx, const char *l, size_t n)
{
    sl_sse *p = ctx;
    int rc = field(p, l, n, p->cb, p->ctx);
    if (rc == 0 && p->event.len + p->data.len > p->max_event)
        return -1;
    return rc;
}

int sl_sse_feed(sl_sse *p, const char *buf, size_t n, sl_sse_cb cb, void *ctx)
{
    if (p->failed)
        return -1;
    /* The line being built and the event so far share the cap. */
    size_t held = p->event.len + p->data.len;
    p->lines.max_line = held < p->max_event ? p->max_event - held : 1;
    p->cb = cb;
    p->ctx = ctx;
    int rc = sl_sse_lines_feed(&p->lines, buf, n, on_line, p);
    if (rc == -1)
        return fail(p);
    return rc;
}

int sl_sse_finish(sl_sse *p, sl_sse_cb cb, void *ctx)
{
    if (p->failed)
        return -1;
    p->cb = cb;
    p->ctx = ctx;
    int rc = sl_sse_lines_finish(&p->lines, on_line, p);
    if (rc == -1)
        return fail(p);
    if (rc != 0)
        return rc;
    return dispatch(p, cb, ctx);
}
