/*
 * Output limits and worst-case pricing (see admit.h).
 */
#include "proxy/admit.h"

#include <stdio.h>
#include <string.h>

#include "govern/govern.h"
#include "translate/translate.h"

/* One field holding a limit: absent (0), valid (1, *v set) or refused (-1). */
static int read_limit(json_t *o, const char *name, int64_t *v, char *err, size_t errlen)
{
    json_t *j = json_object_get(o, name);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > SL_MAX_OUTPUT_TOKENS) {
        snprintf(err, errlen, "'%s' must be a whole number between 1 and %d", name, SL_MAX_OUTPUT_TOKENS);
        return -1;
    }
    *v = (int64_t)json_integer_value(j);
    return 1;
}

/* Two spellings of one limit: either, or both when they agree. */
static int read_pair(json_t *o, const char *a, const char *b, int64_t *v, char *err, size_t errlen)
{
    int64_t va = 0, vb = 0;
    int ra = read_limit(o, a, &va, err, errlen);
    if (ra < 0)
        return -1;
    int rb = read_limit(o, b, &vb, err, errlen);
    if (rb < 0)
        return -1;
    if (ra && rb && va != vb) {
        snprintf(err, errlen, "'%s' and '%s' disagree; send one of them", a, b);
        return -1;
    }
    *v = ra ? va : vb;
    return ra || rb;
}

int sl_admit_output_limit(json_t *req, sl_op op, sl_proto surface, int inject, sl_limit *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (op == SL_OP_COUNT_TOKENS || op == SL_OP_EMBEDDINGS)
        return 0; /* nothing is generated */
    int64_t v = 0;
    int r;
    json_t *gc = NULL;
    const char *gc_name = "generationConfig";
    if (surface == SL_PROTO_GEMINI) {
        gc = json_object_get(req, gc_name);
        if (!gc)
            gc = json_object_get(req, gc_name = "generation_config");
        if (json_is_null(gc))
            gc = NULL;
        /* Otherwise injecting into it fails, which read as "out of memory". */
        if (gc && !json_is_object(gc)) {
            snprintf(err, errlen, "'%s' must be an object", gc_name);
            return -1;
        }
        r = gc ? read_pair(gc, "maxOutputTokens", "max_output_tokens", &v, err, errlen) : 0;
    } else if (surface == SL_PROTO_OPENAI) {
        r = read_pair(req, "max_completion_tokens", "max_tokens", &v, err, errlen);
    } else if (surface == SL_PROTO_RESPONSES) {
        r = read_limit(req, "max_output_tokens", &v, err, errlen);
    } else {
        r = read_limit(req, "max_tokens", &v, err, errlen);
    }
    if (r < 0)
        return -1;
    out->given = r;
    out->output = r ? v : SL_DEFAULT_OUTPUT_TOKENS;
    if (!r && inject) {
        json_t *n = json_integer(SL_DEFAULT_OUTPUT_TOKENS);
        int rc;
        if (surface == SL_PROTO_GEMINI) {
            if (!gc) {
                /* Under the name the client used when it sent null. */
                if (!json_object_get(req, gc_name))
                    gc_name = "generationConfig";
                gc = json_object();
                if (!gc || json_object_set_new(req, gc_name, gc) != 0) {
                    json_decref(n);
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
            }
            rc = json_object_set_new(gc, "maxOutputTokens", n);
        } else {
            /* OpenAI: the field every current model takes (reasoning
             * models refuse max_tokens). */
            rc = json_object_set_new(req, surface == SL_PROTO_OPENAI      ? "max_completion_tokens"
                                          : surface == SL_PROTO_RESPONSES ? "max_output_tokens"
                                                                          : "max_tokens",
                                     n);
        }
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        out->injected = 1;
    }
    out->worst = sl_translate_output_ceiling(surface, req, out->output);
    if (out->worst > SL_MAX_OUTPUT_TOKENS + SL_DEFAULT_OUTPUT_TOKENS) {
        /* A thinking budget past any model's output would make the
         * translation send an absurd limit: refused like one. */
        snprintf(err, errlen, "the thinking budget must be at most %d tokens", SL_MAX_OUTPUT_TOKENS);
        return -1;
    }
    return 0;
}

int64_t sl_admit_price_plan(const sl_table *t, sl_attempt *plan, size_t *n, const char *client_model,
                            const sl_usage_counts *worst, int usd_budget, int *unpriced_target)
{
    int64_t most = 0;
    size_t kept = 0;
    *unpriced_target = -1;
    for (size_t i = 0; i < *n; i++) {
        const sl_target *tg = &t->targets[plan[i].target];
        const char *um = sl_route_upstream_model(t, &plan[i], client_model);
        int priced = 0;
        int64_t c = sl_gov_cost(t, tg->provider, um, worst, &priced);
        if (usd_budget && !priced) {
            if (*unpriced_target < 0)
                *unpriced_target = (int)plan[i].target;
            continue;
        }
        if (c > most)
            most = c; /* sl_gov_cost saturates */
        plan[kept++] = plan[i];
    }
    *n = kept;
    return most;
}
