/* mock-upstream internals shared by the provider-logic files (mock_api.c
 * and the mock_*.c pieces split from it): the per-request context `ctx`
 * (the request, its reply plan, and the knobs the `[[mock ...]]`
 * directives set), the `answer` an assistant turn is built into, the SSE
 * event list, and the functions the pieces call across files. Only the
 * mock's own sources include this; the server side sees mock_upstream.h. */
#ifndef MOCK_API_INTERNAL_H
#define MOCK_API_INTERNAL_H

#include "mock_upstream.h"

#include <stddef.h>
#include <jansson.h>

enum proto { P_OPENAI, P_ANTHROPIC, P_GEMINI };
enum fail { F_NONE, F_RESET, F_TRUNCATE, F_ABORT, F_STALL, F_CORRUPT, F_EXCEPTION, F_EARLY_EXCEPTION };

typedef struct ctx {
    const mu_request *rq;
    mu_reply *rp;
    enum proto proto;
    int azure;    /* an Azure OpenAI deployment path */
    int vertex;   /* a Vertex AI publisher model path (mock_vertex.c) */
    json_t *body; /* parsed request body, or NULL */
    const char *model;
    long long created;
    unsigned base_delay;
    char req_id[40];
    /* directives */
    int chunks; /* 0: default for the reply kind */
    unsigned interval_ms, delay_ms, first_byte_ms;
    int status;      /* 0: none */
    int retry_after; /* -1: none */
    enum fail fail;
    int words; /* 0: default */
    char redirect[256]; /* Location of a 3xx answer; "" = none */
    /* Tool calls: which declared tool to call ("" = tool_choice or the
     * first; no_tool = answer text even when tools are declared), whether
     * arguments fill only the schema's required properties, and a value
     * for their string arguments ("" = mock-<name>). */
    char tool[128];
    int no_tool;
    int args_required;
    char arg_str[256];
    /* echo=1: the reply is the last user message without its directives
     * (guardrail tests: what the gateway let through comes back). */
    int echo;
    char echo_text[1024];
    /* Misbehaviour a gateway must contain: no usage in the answer, the
     * account and rate-limit headers real providers send, a bare CR inside
     * the request-id header's value, and one endless `data:` line (this
     * many bytes, no newline) in place of a stream's second half. */
    int usage_none;
    /* Prompt-cache tokens the usage reports (read: OpenAI cached_tokens,
     * Anthropic cache_read_input_tokens, Gemini cachedContentTokenCount;
     * write: Anthropic cache_creation_input_tokens), so gateways can be
     * held to cache prices. */
    long cache_read, cache_write;
    int account_headers;
    int bare_cr;
    long huge_line;
} ctx;

/* A list of SSE events with their delays, collected before framing so
 * truncation can cut it at its middle. */
typedef struct evlist {
    mu_step *v;
    size_t n, cap;
} evlist;


/* What the assistant says: text split into chunks, or one tool call. */
typedef struct answer {
    int is_tool;
    char *text;    /* text reply, or the tool arguments JSON */
    char **pieces; /* stream chunks; concatenated they give `text` */
    int npieces;
    int nchunks; /* chunk count, also what a non-stream answer waits for */
    const char *tool_name;
    json_t *tool_input; /* parsed arguments */
    char tool_id[48];
    long long out_tokens;
    int truncated; /* stopped at max_tokens */
} answer;

/* ---- mock_send.c: ids, usage, sending, directives -------------------- */

char *mu_dump(json_t *j); /* compact JSON text; caller frees; aborts on OOM */
int mu_count_words(const char *s);
long long mu_input_tokens(const ctx *c);
void mu_new_id(char *out, size_t n, const char *prefix);
void mu_set_call(const ctx *c, const char *key, json_t *v);
void mu_put_usage(const ctx *c, json_t *obj, const char *key, json_t *usage);
void mu_send_json_wait(ctx *c, int status, json_t *obj, unsigned wait_ms);
void mu_send_json(ctx *c, int status, json_t *obj);
void mu_send_error(ctx *c, int status, const char *message);
void mu_ev_add(evlist *l, unsigned delay_ms, const char *event, json_t *data);
void mu_send_stream(ctx *c, evlist *l);
int mu_apply_directives(ctx *c, const char *s, char *err, size_t errlen);
void mu_content_text(json_t *content, mu_buf *out);
json_t *mu_last_message(json_t *messages, const char *role);

/* ---- mock_answer.c: text and tool answers ----------------------------- */

void mu_answer_free(answer *a);
void mu_text_answer(ctx *c, answer *a, const char *quoted, long long max_tokens, int stream);
void mu_tool_answer(ctx *c, answer *a, const char *name, json_t *schema, int stream);

/* ---- the providers (mock_openai.c, mock_anthropic.c, mock_gemini.c) --- */

void mu_openai_chat(ctx *c);
void mu_openai_embeddings(ctx *c);
void mu_models_list(ctx *c);
void mu_openai_responses(ctx *c);
void mu_rs_user_text(json_t *input, mu_buf *out);
void mu_anthropic_messages(ctx *c);
void mu_anthropic_count_tokens(ctx *c);
void mu_gemini_generate(ctx *c, int stream);
void mu_gemini_user_text(json_t *contents, mu_buf *out);
void mu_bedrock_handle(ctx *c, const char *path); /* mock_bedrock.c: /model/{id}/... */

/* ---- mock_oauth.c: token endpoints; mock_vertex.c: Vertex AI paths ----- */

int mu_oauth_google(const char *email_eq_cert);
int mu_oauth_entra(const char *tenant_client_secret);
int mu_oauth_ttl(const char *seconds);
int mu_oauth_enabled(void);
int mu_oauth_bearer_ok(const char *authorization);
int mu_oauth_route(ctx *c, const char *path);
int mu_vertex_path(const char *path, const char *q, char *model, size_t cap, int *anthropic, int *stream);
const char *mu_vertex_check_body(const ctx *c, int stream);

#endif
