/* mock-upstream as Vertex AI: the publisher model paths
 *
 *   /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
 *                                                              :streamGenerateContent?alt=sse
 *   /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict
 *                                                                 :streamRawPredict
 *
 * answered by the Gemini and Anthropic logic, with Vertex's own rules:
 * only a live token from this mock's token endpoint (mock_oauth.c) gets
 * in, and an Anthropic body must carry "anthropic_version":
 * "vertex-2023-10-16" and no `model` (it is in the URL), with `stream`
 * matching the method. The project and location are recorded in the
 * call log for the tests to compare.
 */
#include "mock_api_internal.h"

#include <stdio.h>
#include <string.h>

int mu_vertex_path(const char *path, const char *q, char *model, size_t cap, int *anthropic, int *stream)
{
    static const char pre[] = "/v1/projects/";
    if (strncmp(path, pre, sizeof pre - 1) != 0)
        return 0;
    const char *p = path + sizeof pre - 1;
    const char *loc = strstr(p, "/locations/");
    const char *pub = loc ? strstr(loc, "/publishers/") : NULL;
    const char *mod = pub ? strstr(pub, "/models/") : NULL;
    if (!mod || loc == p || pub == loc + 11 || mod == pub + 12)
        return 0;
    size_t publen = (size_t)(mod - pub - 12);
    const char *m = mod + 8, *colon = strrchr(m, ':');
    if (!colon || colon == m || (size_t)(colon - m) >= cap)
        return 0;
    int sse = q && (strstr(q, "?alt=sse") == q || strstr(q, "&alt=sse"));
    if (publen == 6 && !strncmp(pub + 12, "google", 6)) {
        *anthropic = 0;
        if (!strcmp(colon, ":generateContent"))
            *stream = 0;
        else if (!strcmp(colon, ":streamGenerateContent") && sse)
            *stream = 1;
        else
            return 0;
    } else if (publen == 9 && !strncmp(pub + 12, "anthropic", 9)) {
        *anthropic = 1;
        if (!strcmp(colon, ":rawPredict"))
            *stream = 0;
        else if (!strcmp(colon, ":streamRawPredict"))
            *stream = 1;
        else
            return 0;
    } else {
        return 0;
    }
    memcpy(model, m, (size_t)(colon - m));
    model[colon - m] = '\0';
    return 1;
}

const char *mu_vertex_check_body(const ctx *c, int stream)
{
    if (json_object_get(c->body, "model"))
        return "model: Extra inputs are not permitted (the model is in the URL on Vertex AI)";
    const char *v = json_string_value(json_object_get(c->body, "anthropic_version"));
    if (!v || strcmp(v, "vertex-2023-10-16") != 0)
        return "anthropic_version: must be \"vertex-2023-10-16\"";
    if (json_is_true(json_object_get(c->body, "stream")) != stream)
        return stream ? "streamRawPredict needs \"stream\": true" : "rawPredict takes no \"stream\": true";
    return NULL;
}
