/*
 * Spans of one request (see trace.h): ids, the W3C traceparent in and
 * out, and the attributes of the server span and each try's client span.
 * Runs on the worker's loop; finished spans go to export.c's queue.
 */
#include "trace/trace.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/reqid.h"
#include "trace/span.h"

struct sl_trace_req {
    uint8_t trace_id[16];
    uint8_t client_parent[8];  /* the client's span, when it sent traceparent */
    int has_client_parent;
    uint8_t server_id[8];
    uint64_t start_ns;
    int pending;               /* try holds a client span not yet queued */
    int try_done;              /* its outcome is recorded */
    sl_span try;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* W3C: lowercase only */
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
        any |= out[i];
    }
    return any ? 0 : -1; /* all-zero ids are invalid */
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* version-traceid-parentid-flags. Version 00 is exactly 55 bytes; a later
 * version may append fields after a '-' (W3C Trace Context, 4.3), ff is
 * invalid. */
int sl_trace_parse_parent(const char *v, size_t n, uint8_t trace_id[16], uint8_t span_id[8])
{
    if (!v || n < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -1;
    int vh = hexval(v[0]), vl = hexval(v[1]);
    if (vh < 0 || vl < 0 || (vh == 15 && vl == 15))
        return -1;
    if (vh == 0 && vl == 0 && n != 55)
        return -1;
    if (n > 55 && v[55] != '-')
        return -1;
    if (hexval(v[53]) < 0 || hexval(v[54]) < 0)
        return -1;
    if (unhex(v + 3, trace_id, 16) != 0 || unhex(v + 36, span_id, 8) != 0)
        return -1;
    return 0;
}

static void new_id(uint8_t *b, size_t n)
{
    unsigned char r[16];
    sl_reqid_random16(r);
    memcpy(b, r, n);
}

sl_trace_req *sl_trace_begin(sl_arena *a, const char *traceparent, size_t len)
{
    if (!sl_trace_enabled())
        return NULL;
    sl_trace_req *t = sl_arena_alloc(a, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    if (traceparent && sl_trace_parse_parent(traceparent, len, t->trace_id, t->client_parent) == 0)
        t->has_client_parent = 1;
    else
        new_id(t->trace_id, 16);
    new_id(t->server_id, 8);
    t->start_ns = now_ns();
    return t;
}

/* ---- attributes --------------------------------------------------------------- */

static void attr_str(sl_span *s, const char *key, const char *v)
{
    if (!v || s->nattr >= SL_SPAN_ATTRS)
        return;
    sl_span_attr *a = &s->attr[s->nattr++];
    a->key = key;
    a->type = SL_ATTR_STR;
    snprintf(a->s, sizeof a->s, "%s", v);
}

static void attr_int(sl_span *s, const char *key, int type, int64_t v)
{
    if (s->nattr >= SL_SPAN_ATTRS)
        return;
    sl_span_attr *a = &s->attr[s->nattr++];
    a->key = key;
    a->type = type;
    a->i = v;
}

static void fill(sl_span *s, const sl_span_info *in)
{
    attr_str(s, "gen_ai.operation.name", in->op);
    attr_str(s, "gen_ai.provider.name", in->provider);
    attr_str(s, "gen_ai.request.model", in->request_model);
    attr_str(s, "gen_ai.response.model", in->response_model);
    attr_int(s, "gen_ai.request.stream", SL_ATTR_BOOL, in->stream);
    attr_str(s, "server.address", in->server_address);
    if (in->http_status)
        attr_int(s, "http.response.status_code", SL_ATTR_INT, in->http_status);
    attr_str(s, "sluice.request_id", in->request_id);
    if (in->error_type) {
        attr_str(s, "error.type", in->error_type);
        s->error = 1;
    }
    snprintf(s->name, sizeof s->name, "%s %s", in->op ? in->op : "request",
             in->request_model ? in->request_model : "");
    size_t n = strlen(s->name);
    if (n && s->name[n - 1] == ' ')
        s->name[n - 1] = '\0';
}

static void usage(sl_span *s, const sl_span_info *u)
{
    if (!u || !u->have_usage)
        return;
    attr_int(s, "gen_ai.usage.input_tokens", SL_ATTR_INT, u->input);
    attr_int(s, "gen_ai.usage.output_tokens", SL_ATTR_INT, u->output);
    attr_int(s, "gen_ai.usage.cache_read.input_tokens", SL_ATTR_INT, u->cache_read);
    attr_int(s, "gen_ai.usage.cache_creation.input_tokens", SL_ATTR_INT, u->cache_write);
}

/* ---- tries and the finish ------------------------------------------------------ */

/* A try cut short by the finish (the client left) takes the request's
 * attributes, so it is still a named span. */
static void flush_try(sl_trace_req *t, const sl_span_info *fallback, const sl_span_info *u)
{
    if (!t->pending)
        return;
    if (!t->try_done && fallback)
        sl_trace_try_end(t, fallback);
    usage(&t->try, u);
    sl_trace_queue(&t->try);
    t->pending = 0;
}

const char *sl_trace_try_begin(sl_trace_req *t, sl_arena *a)
{
    if (!t)
        return NULL;
    flush_try(t, NULL, NULL);
    sl_span *s = &t->try;
    memset(s, 0, sizeof *s);
    memcpy(s->trace_id, t->trace_id, 16);
    memcpy(s->parent_id, t->server_id, 8);
    s->has_parent = 1;
    new_id(s->span_id, 8);
    s->kind = SL_SPAN_CLIENT;
    s->start_ns = now_ns();
    t->pending = 1;
    t->try_done = 0;
    char tid[33], sid[17];
    hex(tid, t->trace_id, 16);
    hex(sid, s->span_id, 8);
    return sl_arena_printf(a, "traceparent: 00-%s-%s-01", tid, sid);
}

void sl_trace_try_end(sl_trace_req *t, const sl_span_info *info)
{
    if (!t || !t->pending || t->try_done)
        return;
    t->try.end_ns = now_ns();
    fill(&t->try, info);
    t->try_done = 1;
}

void sl_trace_finish(sl_trace_req *t, const sl_span_info *server, const sl_span_info *usage_from)
{
    if (!t)
        return;
    flush_try(t, server, usage_from);
    sl_span s;
    memset(&s, 0, sizeof s);
    memcpy(s.trace_id, t->trace_id, 16);
    memcpy(s.span_id, t->server_id, 8);
    if (t->has_client_parent) {
        memcpy(s.parent_id, t->client_parent, 8);
        s.has_parent = 1;
    }
    s.kind = SL_SPAN_SERVER;
    s.start_ns = t->start_ns;
    s.end_ns = now_ns();
    fill(&s, server);
    usage(&s, usage_from);
    sl_trace_queue(&s);
}
