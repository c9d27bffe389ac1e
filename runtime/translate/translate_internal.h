/*
 * Helpers shared by the translation files and by nothing else: the stop
 * reason and usage vocabularies of the three protocols mapped onto the
 * neutral (Anthropic) ones, id synthesis for Gemini, which has no ids, and
 * a few JSON accessors that keep the translation code short.
 */
#ifndef SLUICE_TRANSLATE_INTERNAL_H
#define SLUICE_TRANSLATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

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

/* Usage objects of each protocol <-> sl_usage. `from_*` only sets the
 * fields the object carries, so later stream events can refine earlier. */
void sl_tr_usage_from_openai(json_t *u, sl_usage *out);
void sl_tr_usage_from_anthropic(json_t *u, sl_usage *out);
void sl_tr_usage_from_gemini(json_t *u, sl_usage *out);
json_t *sl_tr_usage_to_openai(const sl_usage *u);
json_t *sl_tr_usage_to_anthropic(const sl_usage *u);
json_t *sl_tr_usage_to_gemini(const sl_usage *u);

/* A stable id derived from seed and n: "<prefix><16 hex>". Deterministic so
 * golden tests hold; unique because seeds (response ids, bodies) are. */
void sl_tr_make_id(char *buf, size_t cap, const char *prefix, const char *seed, size_t seed_len,
                   long n);

/* "data:<mime>;base64,<payload>" -> 0 with the spans filled, else -1. */
int sl_tr_parse_data_url(const char *url, const char **mime, size_t *mime_len,
                         const char **data);
/* Media type guessed from a URL's extension, for Gemini fileData. */
const char *sl_tr_mime_from_url(const char *url, const char *dflt);

/* Arguments JSON text -> object (never NULL: {} when not an object). */
json_t *sl_tr_args_object(const char *text, size_t len);

/* Concatenated text of an Anthropic content value (string or blocks of
 * type text), joined by `sep`. malloc'd. */
char *sl_tr_content_text(json_t *content, const char *sep);

#endif
