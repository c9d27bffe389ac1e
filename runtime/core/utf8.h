/*
 * Strict UTF-8 validation for names a client sends that sluice routes on,
 * logs or stores (model names, key names in queries). Strict means the
 * RFC 3629 form: shortest encodings only, no UTF-16 surrogates, nothing
 * above U+10FFFF, so one name has exactly one byte spelling and a lookup,
 * a log line and a ledger row cannot disagree about which name it was.
 */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is valid UTF-8, else 0. NUL bytes are valid UTF-8 (U+0000);
 * callers that need C strings check for them separately. */
int sl_utf8_valid(const char *s, size_t n);

/* Length (1..4) of the well-formed sequence at s[0..n), or 0 when s does
 * not start with one (or n is 0). For scanners that pass valid text
 * through and treat the rest byte by byte. */
size_t sl_utf8_seq_len(const char *s, size_t n);

#endif
