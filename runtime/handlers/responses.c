/*
 * /v1/responses/{id}: the stored Responses objects of requests sluice
 * translated (rstore/rstore.h), for the key that created them; any other
 * key, an expired or deleted id, and the ids of providers that keep their
 * own state (pass-through) get 404. GET returns the response, GET
 * .../input_items its input items, DELETE removes it; POST .../cancel is a
 * 400 for a stored response, as OpenAI answers for one not created with
 * background: true (sluice runs no background responses).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/handlers.h"
#include "proxy/surface.h"
#include "rstore/rstore.h"

#define PREFIX "/v1/responses/"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ids are sluice's own (resp_ and hex) or a provider's: letters, digits,
 * '_' and '-', as a path segment carries them. */
static int valid_id(const char *p, size_t n)
{
    if (n == 0 || n >= SL_RSTORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", p[i]))
            return 0;
    return 1;
}

static void not_found(sl_conn *c, const char *id)
{
    sl_surface_error(c, SL_PROTO_RESPONSES, 404, NULL, NULL, "Response with id '%s' not found.", id);
}

/* input_items: a list page, newest first unless order=asc, `limit` (1 to
 * 100, default 20) items; `after` is not supported (every list fits). */
static void input_items(sl_conn *c, const sl_http_request *req, const char *id, const char *key)
{
    json_t *items = sl_rstore_get(id, key, SL_RSTORE_INPUT, now_ms());
    if (!json_is_array(items)) {
        json_decref(items);
        not_found(c, id);
        return;
    }
    size_t n;
    const char *v = sl_http_query_param(req, "order", &n);
    int asc = v && n == 3 && memcmp(v, "asc", 3) == 0;
    long limit = 20;
    v = sl_http_query_param(req, "limit", &n);
    if (v) {
        char buf[8];
        limit = n < sizeof buf ? (memcpy(buf, v, n), buf[n] = '\0', strtol(buf, NULL, 10)) : 0;
        if (limit < 1 || limit > 100) {
            json_decref(items);
            sl_surface_error(c, SL_PROTO_RESPONSES, 400, NULL, NULL, "'limit' must be between 1 and 100");
            return;
        }
    }
    json_t *data = json_array();
    size_t total = json_array_size(items);
    for (size_t k = 0; k < total && (long)k < limit; k++)
        json_array_append(data, json_array_get(items, asc ? k : total - 1 - k));
    json_decref(items);
    size_t dn = json_array_size(data);
    json_t *first = json_object_get(json_array_get(data, 0), "id");
    json_t *last = json_object_get(json_array_get(data, dn ? dn - 1 : 0), "id");
    sl_handlers_respond_json(c, json_pack("{s:s,s:o,s:O?,s:O?,s:b}", "object", "list", "data", data, "first_id",
                                          first, "last_id", last, "has_more", total > dn));
}

void sl_handle_responses(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                         size_t len)
{
    (void)ep;
    (void)body;
    (void)len;
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    int key;
    if (sl_dispatch_authenticate(c, SL_PROTO_RESPONSES, req, &key) != 0)
        return;
    const char *name = key >= 0 ? t->keys[key].name : "";
    const char *p = req->path + strlen(PREFIX);
    size_t n = req->path_len - strlen(PREFIX);
    const char *slash = memchr(p, '/', n);
    size_t idn = slash ? (size_t)(slash - p) : n;
    const char *sub = slash ? slash + 1 : "";
    size_t subn = slash ? n - idn - 1 : 0;
    if (!valid_id(p, idn)) {
        sl_surface_error(c, SL_PROTO_RESPONSES, 404, NULL, NULL, "no response at %.*s",
                         (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
        return;
    }
    char id[SL_RSTORE_ID_MAX];
    memcpy(id, p, idn);
    id[idn] = '\0';
    int get = req->method == SL_HTTP_GET || req->method == SL_HTTP_HEAD;
    if (subn == 0 && get) {
        json_t *r = sl_rstore_get(id, name, SL_RSTORE_RESPONSE, now_ms());
        if (!r)
            not_found(c, id);
        else
            sl_handlers_respond_json(c, r);
    } else if (subn == 0 && req->method == SL_HTTP_DELETE) {
        int rc = sl_rstore_delete(id, name, now_ms());
        if (rc < 0)
            sl_surface_error(c, SL_PROTO_RESPONSES, 503, NULL, "Retry-After: 1\r\n",
                             "the state file is busy; retry shortly");
        else if (rc == 0)
            not_found(c, id);
        else
            sl_handlers_respond_json(c, json_pack("{s:s,s:s,s:b}", "id", id, "object", "response", "deleted", 1));
    } else if (subn == 11 && memcmp(sub, "input_items", 11) == 0 && get) {
        input_items(c, req, id, name);
    } else if (subn == 6 && memcmp(sub, "cancel", 6) == 0 && req->method == SL_HTTP_POST) {
        json_t *r = sl_rstore_get(id, name, SL_RSTORE_RESPONSE, now_ms());
        if (!r) {
            not_found(c, id);
            return;
        }
        json_decref(r);
        sl_surface_error(c, SL_PROTO_RESPONSES, 400, NULL, NULL,
                         "Only responses created with background=true can be cancelled; this gateway runs no "
                         "background responses.");
    } else if (subn == 0 || (subn == 11 && memcmp(sub, "input_items", 11) == 0) ||
               (subn == 6 && memcmp(sub, "cancel", 6) == 0)) {
        const char *allow = subn == 0 ? "Allow: GET, DELETE\r\n" : subn == 6 ? "Allow: POST\r\n" : "Allow: GET\r\n";
        sl_surface_error(c, SL_PROTO_RESPONSES, 405, NULL, allow, "method not allowed for %.*s",
                         (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
    } else {
        sl_surface_error(c, SL_PROTO_RESPONSES, 404, NULL, NULL, "no route for %.*s",
                         (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
    }
}
