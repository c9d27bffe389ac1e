/*
 * Helpers shared by the translation files and by nothing else: the stop
 * reason and usage vocabularies of the three protocols mapped onto the
 * neutral (Anthropic) ones, id synthesis for Gemini, which has no ids, a
 * few JSON accessors that keep the translation code short, and what the
 * request and stream translators share across their files.
 */
#ifndef SLUICE_TRANSLATE_INTERNAL_H
#define SLUICE_TRANSLATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "translate/sse.h"
#include "translate/translate.h"

/* String member or NULL. */
const char *sl_tr_str(json_t *o, const char *key);
/* Non-empty string member or NULL. */
const char *sl_tr_nstr(json_t *o, const char *key);
/* Integer member (a real is truncated), or dflt. */
long sl_tr_int(json_t *o, const char *key, long dflt);

/* Stop reasons. The neutral vocabulary is Anthropic's stop_reason. */
const char *sl_tr_stop_from_openai(const char *finish_reason);
const char *sl_tr_stop_to_openai(const char *stop_reason);
const char *sl_tr_stop_from_gemini(const char *finish_reason, int saw_tool_call);
const char *sl_tr_stop_to_gemini(const char *stop_reason);

/* Usage objects of each protocol <-> sl_usage_counts. `from_*` only sets the
 * fields the object carries, so later stream events can refine earlier. */
void sl_tr_usage_from_openai(json_t *u, sl_usage_counts *out);
void sl_tr_usage_from_anthropic(json_t *u, sl_usage_counts *out);
void sl_tr_usage_from_gemini(json_t *u, sl_usage_counts *out);
void sl_tr_usage_from_responses(json_t *u, sl_usage_counts *out);
json_t *sl_tr_usage_to_openai(const sl_usage_counts *u);
json_t *sl_tr_usage_to_anthropic(const sl_usage_counts *u);
json_t *sl_tr_usage_to_gemini(const sl_usage_counts *u);

/* A stable id derived from seed and n: "<prefix><16 hex>". Deterministic so
 * golden tests hold; unique because seeds (response ids, bodies) are. */
void sl_tr_make_id(char *buf, size_t cap, const char *prefix, const char *seed, size_t seed_len,
                   long n);

/* "data:<mime>;base64,<payload>" -> 0 with the spans filled, else -1. */
int sl_tr_parse_data_url(const char *url, const char **mime, size_t *mime_len,
                         const char **data);
/* Media type guessed from a URL's extension, for Gemini fileData. */
const char *sl_tr_mime_from_url(const char *url, const char *dflt);

/* An image (or, for application/pdf, document) block from a data: or
 * http URL, as OpenAI-style clients send media. */
json_t *sl_tr_image_from_url(const char *url);

/* Arguments JSON text -> object (never NULL: {} when not an object). */
json_t *sl_tr_args_object(const char *text, size_t len);

/* Concatenated text of an Anthropic content value (string or blocks of
 * type text), joined by `sep`. malloc'd. */
char *sl_tr_content_text(json_t *content, const char *sep);

/* ---- request translation (request*.c) ---------------------------------- */

/* Scalar sampling fields differ between protocols only in name (and in
 * which JSON type each accepts): one table per direction instead of a
 * ladder of ifs, in both directions. */
typedef enum sl_tr_field_kind { SL_TR_F_INT, SL_TR_F_NUM, SL_TR_F_LIST, SL_TR_F_OBJ } sl_tr_field_kind;
typedef struct sl_tr_field_map {
    const char *from;
    const char *alt;   /* second spelling accepted on input, or NULL */
    const char *to;
    sl_tr_field_kind kind;
} sl_tr_field_map;

/* Copies each of the n fields of src that has the JSON type its entry asks
 * for to dst, under its new name. */
void sl_tr_copy_fields(json_t *src, json_t *dst, const sl_tr_field_map *m, size_t n);

/* reasoning_effort -> thinking budget (0: none or unknown), and back. */
long sl_tr_effort_budget(const char *effort);
/* OpenAI's (and the Responses API's) string tool_choice in the neutral
 * form: "auto", "none", "required" (-> any); NULL for anything else. */
json_t *sl_tr_choice_from_openai(const char *s);
/* Stores `choice` (consumed, may be NULL) as the neutral tool_choice, with
 * OpenAI's parallel_tool_calls: false carried as disable_parallel_tool_use
 * (Chat and Responses requests share both fields). */
void sl_tr_set_tool_choice(json_t *req, json_t *ir, json_t *choice);
/* Gemini's generationConfig (either spelling) and the thinking budget its
 * thinkingConfig asks for, as the translators read it (0 = none). */
json_t *sl_tr_gemini_config(json_t *req);
long sl_tr_gemini_thinking(json_t *gc);
const char *sl_tr_budget_effort(long budget);

/* A neutral {"type":"text"} block. */
json_t *sl_tr_text_block(const char *text);
/* Appends a message to the neutral list (content is stolen), merged into
 * the previous message when the roles match; empty content is dropped. */
void sl_tr_ir_push(json_t *msgs, const char *role, json_t *content);

/* Readers fill the neutral form `ir` from a client request: 0, or -1 with
 * a client error in err. Writers return the upstream body (Gemini's has no
 * model: it goes in the URL). */
int sl_tr_openai_to_ir(json_t *req, json_t *ir, char *err, size_t errlen);
int sl_tr_gemini_to_ir(json_t *req, json_t *ir, char *err, size_t errlen);
int sl_tr_responses_to_ir(json_t *req, json_t *ir, char *err, size_t errlen);
/* Neutral response (an Anthropic Message) -> Responses object. */
json_t *sl_tr_ir_to_responses(json_t *ir, const sl_usage_counts *u, const char *model);
/* What the non-stream and stream Responses writers share: the response
 * object around the output, its usage object, and the status (with the
 * incomplete reason, or NULL) a neutral stop reason gives. */
json_t *sl_tr_responses_envelope(const char *id, const char *model, long created, const char *status);
json_t *sl_tr_responses_usage(const sl_usage_counts *u);
const char *sl_tr_responses_status(const char *stop_reason, const char **incomplete);
json_t *sl_tr_ir_to_openai(json_t *ir, const char *model, int stream);
json_t *sl_tr_ir_to_gemini(json_t *ir);

/* ---- stream translation (stream*.c) ------------------------------------ */

/* Kinds of content block: what an upstream Anthropic block index carries
 * and which block an Anthropic client has open. */
enum { SL_TR_BLK_NONE, SL_TR_BLK_TEXT, SL_TR_BLK_THINKING, SL_TR_BLK_TOOL, SL_TR_BLK_OTHER };

typedef struct sl_tr_tool_slot {
    long key;        /* upstream's tool key: OpenAI index, Anthropic block index */
    int out_index;   /* client block index (Anthropic) or tool_calls index (OpenAI) */
    char *id, *name; /* Gemini writer: held until the call is complete */
    sl_buf args;
    int done;
} sl_tr_tool_slot;

struct sl_stream {
    sl_proto up, client;
    int translate;            /* up != client */
    char *client_model;
    sl_sse sse;
    sl_buf *out;
    sl_usage_counts usage;
    int started;              /* client bytes produced */
    int terminal;             /* upstream end marker seen */
    int finish_seen;          /* OpenAI finish_reason / Gemini finishReason */
    int failed;               /* malformed upstream */
    int usage_chunk;          /* OpenAI writer: emit the usage chunk */
    long created;

    /* reader state */
    char *id;
    int gm_saw_tool;
    long gm_tool_count;
    int *an_kind;             /* Anthropic reader: kind per upstream block index */
    size_t an_kind_cap;

    /* writer state */
    int w_started, w_ended;
    char *stop_reason, *stop_sequence;
    int open_kind;            /* Anthropic writer: the open block */
    long open_key;
    int next_index;
    sl_tr_tool_slot *tools;
    size_t ntools, tools_cap;

    /* Responses writer: the open item's text (open_kind says which), the
     * output list so far, the next sequence number */
    sl_buf rw_text;
    int rw_open_index;
    json_t *rw_output;
    long rw_seq;
    char *rw_id, *rw_prev;    /* set by sl_stream_set_response_ids, or NULL */
    json_t *rw_final;         /* the response the terminal event carried */
};

/* The neutral calls (stream_write.c): the readers report each upstream
 * event as these, and the client's writer emits what they mean at once. */
void sl_tr_ev_start(sl_stream *s);
void sl_tr_ev_text(sl_stream *s, const char *text, int thinking);
void sl_tr_ev_tool_start(sl_stream *s, long key, const char *id, const char *name);
void sl_tr_ev_tool_args(sl_stream *s, long key, const char *frag, size_t n);
void sl_tr_ev_tool_end(sl_stream *s, long key);
void sl_tr_ev_finish(sl_stream *s, const char *stop_reason, const char *stop_sequence);
void sl_tr_ev_end(sl_stream *s);
void sl_tr_ev_error(sl_stream *s, const char *type, const char *message);

/* The Responses writer (stream_responses.c), called by the neutral calls
 * once they have found or made the call's slot. */
void sl_tr_rw_start(sl_stream *s);
void sl_tr_rw_text(sl_stream *s, const char *text, int thinking);
void sl_tr_rw_tool_start(sl_stream *s, sl_tr_tool_slot *t);
void sl_tr_rw_tool_args(sl_stream *s, sl_tr_tool_slot *t, const char *frag, size_t n);
void sl_tr_rw_tool_end(sl_stream *s, sl_tr_tool_slot *t);
void sl_tr_rw_end(sl_stream *s, const char *stop_reason);
void sl_tr_rw_error(sl_stream *s, const char *type, const char *message);

/* The call with upstream key `key`, or NULL. */
sl_tr_tool_slot *sl_tr_tool_find(sl_stream *s, long key);
/* The message id the client sees: the upstream's, or a fixed one. */
const char *sl_tr_msg_id(sl_stream *s);

#endif
