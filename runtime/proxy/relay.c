/*
 * Response filters (see relay.h). The chain is rebuilt per attempt, so a
 * retried attempt starts with fresh translator and usage state.
 */
#include "proxy/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/guard.h"

/* ---- the filters ---------------------------------------------------------- */

static int usage_observe(void *st, const char *p, size_t n, sl_buf *out)
{
    (void)out;
    return sl_usage_stream_feed(st, p, n);
}

static int usage_strip(void *st, const char *p, size_t n, sl_buf *out)
{
    return sl_usage_stream_strip(st, p, n, out);
}

static int translate_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    return sl_stream_feed(st, p, n, out);
}

static int translate_finish(void *st, sl_buf *out)
{
    return sl_stream_finish(st, out);
}

static int legacy_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    return sl_legacy_stream_feed(st, p, n, out);
}

/* ---- the chain ------------------------------------------------------------ */

int sl_relay_add(sl_relay *r, const sl_filter *f)
{
    if (r->n >= SL_RELAY_MAX_FILTERS)
        return -1;
    r->f[r->n++] = *f;
    return 0;
}

int sl_relay_init(sl_relay *r, const sl_relay_cfg *cfg)
{
    memset(r, 0, sizeof *r);
    int translate = cfg->up != cfg->client || cfg->legacy;
    if (cfg->pre) {
        sl_relay_add(r, cfg->pre);
        r->reframed = 1;
        r->pre_detail = cfg->pre_detail;
    }
    /* Without a translator the usage chunk sluice asked for is cut out
     * here; a translator must see it to count, and drops it itself (for
     * a legacy client the legacy filter does, since the translator passes
     * a same-protocol stream on unchanged). */
    if (!translate && cfg->strip_usage && cfg->up == SL_PROTO_OPENAI) {
        sl_relay_add(r, &(sl_filter){"usage", 0, usage_strip, NULL, &r->usage});
    } else {
        sl_relay_add(r, &(sl_filter){"usage", 1, usage_observe, NULL, &r->usage});
    }
    if (translate) {
        /* A legacy client's chat stream still goes through the translator
         * (same protocol: it only observes and normalises). */
        r->xl = sl_stream_new(cfg->up, cfg->client, cfg->client_model);
        if (!r->xl)
            return -1;
        if (cfg->client == SL_PROTO_OPENAI && cfg->strip_usage)
            sl_stream_set_openai_usage_chunk(r->xl, 0);
        sl_relay_add(r, &(sl_filter){"translate", 0, translate_feed, translate_finish, r->xl});
    }
    if (cfg->legacy) {
        r->legacy.strip_usage = cfg->client == SL_PROTO_OPENAI && cfg->strip_usage;
        sl_relay_add(r, &(sl_filter){"legacy", 0, legacy_feed, NULL, &r->legacy});
    }
    /* Guardrails read the client's shape; a log-only set just observes. */
    int transform = 0;
    if (cfg->guard && cfg->gops->stream_begin(cfg->guard, &transform))
        sl_relay_add(r, &(sl_filter){"guardrail", !transform, cfg->gops->stream_feed, cfg->gops->stream_finish,
                                     cfg->guard});
    return 0;
}

/* Runs filters [from, n) over p/n; `fin` calls finish() on each first
 * (whose output joins the input of the next). */
static int run(sl_relay *r, size_t from, const char *p, size_t n, int fin, const char **out,
               size_t *out_n)
{
    int cur = 0;
    for (size_t i = from; i < r->n; i++) {
        sl_filter *f = &r->f[i];
        if (f->observer && !fin) {
            if (f->feed(f->st, p, n, NULL) != 0) {
                r->error = f->name;
                r->detail = i == 0 && r->reframed && r->pre_detail ? r->pre_detail(f->st) : NULL;
                return -1;
            }
            continue;
        }
        if (f->observer)
            continue;
        sl_buf *o = &r->scratch[cur];
        sl_buf_clear(o);
        int rc = n ? f->feed(f->st, p, n, o) : 0;
        if (rc == SL_FILTER_UNCHANGED) {
            if (!(fin && f->finish))
                continue; /* p/n go on as they are: no copy */
            if (sl_buf_append(o, p, n) != 0)
                rc = -1;
            else
                rc = 0;
        }
        if (rc != 0 || (fin && f->finish && f->finish(f->st, o) != 0)) {
            r->error = f->name;
            r->detail = i == 0 && r->reframed && r->pre_detail ? r->pre_detail(f->st) : NULL;
            return -1;
        }
        p = o->data ? o->data : "";
        n = o->len;
        cur ^= 1;
    }
    *out = p;
    *out_n = n;
    return 0;
}

int sl_relay_feed(sl_relay *r, const char *p, size_t n, const char **out, size_t *out_n)
{
    return run(r, 0, p, n, 0, out, out_n);
}

int sl_relay_finish(sl_relay *r, const char **out, size_t *out_n)
{
    return run(r, 0, "", 0, 1, out, out_n);
}

void sl_relay_usage(const sl_relay *r, sl_usage_counts *u, int64_t *events)
{
    *u = r->xl ? *sl_stream_usage(r->xl) : r->usage.u;
    *events = r->usage.events;
}

void sl_relay_free(sl_relay *r)
{
    if (r->n == 0)
        return; /* never built (a non-stream try), or freed already */
    sl_buf_free(&r->scratch[0]);
    sl_buf_free(&r->scratch[1]);
    sl_usage_stream_free(&r->usage);
    sl_stream_free(r->xl);
    r->xl = NULL;
    sl_legacy_stream_free(&r->legacy);
    memset(r, 0, sizeof *r);
}

/* ---- whole bodies ----------------------------------------------------------- */

static void replace(char **body, size_t *len, char *nb)
{
    free(*body);
    *body = nb;
    *len = strlen(nb);
}

int sl_relay_body(const sl_relay_cfg *cfg, char **body, size_t *len, sl_usage_counts *u,
                  char *err, size_t errlen)
{
    const char *b = *body ? *body : "";
    sl_usage_from_body(b, *len, u);
    if (cfg->up != cfg->client) {
        sl_usage_counts uu = {0};
        if (sl_translate_usage(cfg->up, b, *len, &uu) == 0)
            *u = uu;
        char *tb = sl_translate_response(cfg->up, cfg->client, b, *len, cfg->client_model, err, errlen);
        if (!tb)
            return -1;
        replace(body, len, tb);
    }
    if (cfg->legacy) {
        char *lb = sl_legacy_from_chat(*body ? *body : "", *len);
        if (lb)
            replace(body, len, lb);
    }
    if (cfg->guard) {
        int rc = cfg->gops->body(cfg->guard, body, len, err, errlen);
        if (rc < 0)
            snprintf(err, errlen, "out of memory");
        if (rc)
            return rc > 0 ? -2 : -1;
    }
    return 0;
}

void sl_relay_error_body(sl_proto up, sl_proto client, int *status, char **body, size_t *len,
                         const char **ctype)
{
    if (up == client)
        return;
    int st = *status;
    char *tb = sl_translate_error(up, client, *status, *body ? *body : "", *len, &st);
    if (tb) {
        replace(body, len, tb);
        *status = st;
        *ctype = "application/json";
    }
}
