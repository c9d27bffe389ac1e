/*
 * GET /healthz: liveness plus the spec's identity, open to load balancers.
 * `?detail=1` adds each target's circuit state, which names every entry,
 * provider and upstream model: that is for operators only (the admin key),
 * except on an open gateway (no keys), which serves anyone on loopback.
 * GET / answers Claude Code's probe.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "handlers/handlers.h"
#include "json/json_out.h"
#include "proxy/surface.h"
#include "route/health.h"

void sl_handlers_respond_json(sl_conn *c, json_t *body)
{
    char *js = body ? sl_json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!js) {
        sl_surface_error(c, SL_PROTO_OPENAI, 500, NULL, NULL, "out of memory");
        return;
    }
    sl_conn_respond(c, 200, "application/json", NULL, js, strlen(js));
    free(js);
}

static json_t *targets_json(const sl_table *t)
{
    static const char *const names[] = {"ok", "cooling", "probing"};
    json_t *arr = json_array();
    int64_t now = sl_health_now_ms();
    for (uint32_t m = 0; m < t->model_count; m++) {
        const sl_model_entry *e = &t->models[m];
        for (uint32_t i = e->target_first; i < e->target_first + e->target_count; i++) {
            uint32_t fails;
            int64_t remaining;
            sl_health_state st = sl_health_state_of(i, now, &fails, &remaining);
            const sl_target *tg = &t->targets[i];
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:s,s:i,s:i}", "model", e->name, "provider",
                                                 t->providers[tg->provider].name, "upstream_model", tg->model,
                                                 "state", names[st], "consecutive_failures", (json_int_t)fails,
                                                 "cooldown_remaining_ms", (json_int_t)remaining));
        }
    }
    return arr;
}

void sl_handle_healthz(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                       size_t len)
{
    (void)ep;
    (void)body;
    (void)len;
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    size_t dn;
    int detail = sl_http_query_param(req, "detail", &dn) != NULL;
    if (detail && t->key_count > 0 && !(t->has_admin && sl_auth_is_admin(t, req))) {
        sl_surface_error(c, SL_PROTO_OPENAI, 401, "invalid_api_key", NULL,
                         "healthz detail needs the admin key");
        return;
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i}", "status", "ok", "version", SLUICE_VERSION, "spec_sha256",
                          t->spec_sha256, "providers", (json_int_t)t->provider_count, "models",
                          (json_int_t)t->model_count);
    if (o && detail)
        json_object_set_new(o, "targets", targets_json(t));
    sl_handlers_respond_json(c, o);
}

void sl_handle_service(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                       size_t len)
{
    (void)ep;
    (void)req;
    (void)body;
    (void)len;
    static const char hello[] = "{\"service\":\"sluice\"}";
    sl_conn_respond(c, 200, "application/json", NULL, hello, sizeof hello - 1);
}
