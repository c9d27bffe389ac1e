/*
 * What the translator's tests share (test_translate*.c): reading fixture
 * files, comparing JSON canonically, turning SSE text into event arrays and
 * back, running a stream translation whole or a few bytes at a time, and
 * checking that a translated stream is well formed for its client protocol.
 */
#ifndef SLUICE_TEST_TRANSLATE_CHECK_H
#define SLUICE_TEST_TRANSLATE_CHECK_H

#include <jansson.h>
#include <stddef.h>

#include "translate/translate.h"

#define CLIENT_MODEL "client-model"
#define UPSTREAM_MODEL "upstream-model"

char *read_file(const char *path, size_t *len);
json_t *parse_text(const char *s);
void assert_json_equal(json_t *got, json_t *want, const char *what);
json_t *events_of(const char *p, size_t n);
char *sse_of(json_t *events, int crlf, size_t *len);
json_t *usage_json(const sl_usage_counts *u);
void check_anthropic_stream(json_t *events, int complete);
void check_openai_stream(json_t *events, int complete);
void check_client_stream(sl_proto client, json_t *events, int complete);
json_t *run_stream(sl_proto up, sl_proto client, const char *in, size_t len, size_t step);
sl_proto proto_of(const char *s, size_t n);

#endif
