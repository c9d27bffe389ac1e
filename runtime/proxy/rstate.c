/*
 * Responses conversation state (see rstate.h).
 */
#include "proxy/rstate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json_out.h"
#include "rstore/rstore.h"
#include "translate/translate.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *key_name(const sl_exchange *x)
{
    return x->key >= 0 ? x->t->keys[x->key].name : "";
}

static int translated(const sl_exchange *x)
{
    return x->surface == SL_PROTO_RESPONSES && x->up_proto != SL_PROTO_RESPONSES;
}

void sl_rstate_begin(sl_exchange *x)
{
    if (x->surface != SL_PROTO_RESPONSES)
        return;
    /* store defaults to true, as OpenAI's does; only a stored state file
     * can keep anything. */
    x->store = !json_is_false(json_object_get(x->json, "store")) && sl_rstore_enabled();
    json_t *prev = json_object_get(x->json, "previous_response_id");
    if (json_is_string(prev) && json_string_length(prev) > 0) {
        x->prev_id = json_string_value(prev);
        x->prev_context = sl_rstore_get(x->prev_id, key_name(x), SL_RSTORE_CONTEXT, now_ms());
        x->prev_missing = !json_is_array(x->prev_context);
        if (x->prev_missing) {
            json_decref(x->prev_context);
            x->prev_context = NULL;
        } else {
            /* What the earlier turns add to the input, for admission. */
            x->prev_bytes = json_dumpb(x->prev_context, NULL, 0, JSON_COMPACT);
        }
    }
    if (x->store)
        sl_rstore_new_id(x->resp_id);
}

json_t *sl_rstate_request(sl_exchange *x)
{
    /* A background response is one a client polls for; only a provider
     * that runs them can take one. */
    if (json_is_true(json_object_get(x->json, "background"))) {
        sl_exchange_fail(x, 400, "unsupported_parameter", NULL,
                         "'background': true is not supported for model '%s': this gateway translates its requests "
                         "and runs no background responses",
                         x->client_model);
        return NULL;
    }
    if (!x->prev_id)
        return x->json;
    if (x->prev_missing) {
        sl_exchange_fail(x, 404, "previous_response_not_found", NULL, "Previous response with id '%.64s' not found.",
                         x->prev_id);
        return NULL;
    }
    if (!x->xjson) {
        /* The chain's items, then this request's. */
        json_t *req = json_copy(x->json); /* shallow: only two members change */
        json_t *input = json_deep_copy(x->prev_context);
        json_t *mine = sl_rstore_input_items(json_object_get(x->json, "input"));
        if (!req || !input || !mine || json_array_extend(input, mine) != 0 ||
            json_object_set_new(req, "input", input) != 0) {
            json_decref(req);
            json_decref(mine);
            sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
            return NULL;
        }
        json_decref(mine);
        json_object_del(req, "previous_response_id");
        x->xjson = req;
    }
    return x->xjson;
}

void sl_rstate_stream_init(sl_exchange *x)
{
    if (translated(x) && x->relay.xl && (x->store || x->prev_id))
        sl_stream_set_response_ids(x->relay.xl, x->store ? x->resp_id : NULL, x->prev_id);
}

/* The row for `response`: this request's input items, and the chain with
 * this turn's input and output appended. */
static void keep(sl_exchange *x, json_t *response)
{
    if (!x->store || !json_is_object(response))
        return;
    json_t *input = sl_rstore_input_items(json_object_get(x->json, "input"));
    json_t *context = x->prev_context ? json_deep_copy(x->prev_context) : json_array();
    if (input && context) {
        json_array_extend(context, input);
        json_array_extend(context, json_object_get(response, "output"));
        int64_t now = now_ms();
        sl_rstore_rec_free(x->store_rec);
        x->store_rec = sl_rstore_rec_new(x->resp_id, key_name(x), now,
                                         now + (int64_t)sl_rstore_retention_s() * 1000, response, input, context);
    }
    json_decref(input);
    json_decref(context);
}

void sl_rstate_body(sl_exchange *x, char **body, size_t *len)
{
    if (!translated(x) || (!x->store && !x->prev_id))
        return;
    json_t *r = json_loadb(*body ? *body : "", *len, 0, NULL);
    if (!json_is_object(r)) {
        json_decref(r);
        return;
    }
    if (x->store)
        json_object_set_new(r, "id", json_string(x->resp_id));
    if (x->prev_id)
        json_object_set_new(r, "previous_response_id", json_string(x->prev_id));
    char *nb = sl_json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (nb) {
        free(*body);
        *body = nb;
        *len = strlen(nb);
        keep(x, r);
    }
    json_decref(r);
}

void sl_rstate_stream_end(sl_exchange *x)
{
    if (translated(x) && x->relay.xl)
        keep(x, sl_stream_final_response(x->relay.xl));
}
