/*
 * GET /v1/models: the exact (non-glob) model entries, in the shape of the
 * surface the client speaks (Anthropic's when it sends anthropic-version).
 * Needs a client key like inference does: the list is the spec's routing.
 */
#include "handlers/handlers.h"
#include "proxy/surface.h"

void sl_handle_models(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                      size_t len)
{
    (void)body;
    (void)len;
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    int anthropic = sl_dispatch_surface(ep, req) == SL_PROTO_ANTHROPIC;
    int key;
    if (sl_dispatch_authenticate(c, anthropic ? SL_PROTO_ANTHROPIC : SL_PROTO_OPENAI, req, &key) != 0)
        return;
    json_t *data = json_array();
    for (uint32_t i = 0; i < t->model_count; i++) {
        const sl_model_entry *e = &t->models[i];
        if (e->is_glob)
            continue;
        if (anthropic)
            json_array_append_new(data, json_pack("{s:s,s:s,s:s,s:s}", "type", "model", "id", e->name,
                                                  "display_name", e->name, "created_at",
                                                  "1970-01-01T00:00:00Z"));
        else
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", e->name, "object", "model",
                                                  "created", 0, "owned_by", "sluice"));
    }
    json_t *out;
    if (anthropic) {
        size_t n = json_array_size(data);
        json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : NULL;
        json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : NULL;
        out = json_pack("{s:o,s:b,s:O?,s:O?}", "data", data, "has_more", 0, "first_id", first, "last_id", last);
    } else {
        out = json_pack("{s:s,s:o}", "object", "list", "data", data);
    }
    sl_handlers_respond_json(c, out);
}
