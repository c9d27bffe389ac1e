/*
 * Guardrails at run time. Each guardrail of the spec has a generated re2c
 * scanner (table.h, sl_guardrail.scan); this module runs it over message
 * text, checks what the DFA found (boundaries, Luhn, IBAN mod-97, address
 * syntax), and acts: block (the request or response is refused, naming
 * the guardrail and detector, never the text), redact (typed placeholders
 * such as [EMAIL_1], the same value getting the same placeholder within a
 * request), log (counted in /metrics and named in the ledger row), and
 * restore (placeholders in the answer mapped back to the request's values,
 * held only in the request's memory).
 *
 * Cost: the scanner is tried at every position of the text, and each try
 * reads at most SL_GUARD_WINDOW bytes, so a scan is linear in the text.
 * Streams are scanned per JSON string "channel" (the path of a delta in
 * the client's event shape) across events; text that could still be the
 * start of a match (at most the window) is held back until the next event
 * decides it, and is flushed in an event of the same shape before any
 * event that does not continue that channel.
 *
 * The proxy reaches this module only through sl_guard_runtime_ops, to
 * which only tables generated from a spec with `guardrails:` refer.
 */
#ifndef SLUICE_GUARD_H
#define SLUICE_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "table.h"

#define SL_GUARD_WINDOW 256      /* longest match a scanner reads, the stream lookbehind */
#define SL_GUARD_MAX_VALUES 256  /* distinct redacted values per request */

struct sl_exchange;
typedef struct sl_guard_req sl_guard_req;

typedef enum sl_guard_dir {
    SL_GUARD_REQUEST = 0,
    SL_GUARD_RESPONSE = 1,
} sl_guard_dir;

typedef struct sl_guard_ops {
    /* Request stage (after the model is read, before admission): picks
     * the guardrails for the entry, key and team, scans and acts on the
     * body's text. 0 to go on, -1 after answering (blocked, or memory). */
    int (*request)(struct sl_exchange *x, size_t model_len);
    /* A request document built after the request stage (a Responses
     * client's earlier turns prepended from the store): scanned and acted
     * on in place like the body was. 0, 1 blocked (msg filled), -1 memory. */
    int (*request_json)(sl_guard_req *g, void *json, char *msg, size_t cap);
    /* A whole 2xx body in the client's protocol. 0 (possibly replaced by
     * a malloc'd body, the old one freed), 1 blocked (msg filled), -1 out
     * of memory. */
    int (*body)(sl_guard_req *g, char **body, size_t *len, char *msg, size_t cap);
    /* The relay filter for streams; begin resets the per-try state and
     * says whether the filter is needed (1) and transforms (1) or only
     * observes (0) via *transform. */
    int (*stream_begin)(sl_guard_req *g, int *transform);
    int (*stream_feed)(void *g, const char *p, size_t n, sl_buf *out);
    int (*stream_finish)(void *g, sl_buf *out);
    /* Why the stream filter failed ("blocked by guardrail ..."). */
    const char *(*message)(const sl_guard_req *g);
    /* Detector names that fired ("email,card"), for the ledger; "" none. */
    void (*ledger)(const sl_guard_req *g, char *buf, size_t cap);
    /* Whether the answer may come from or go to the response cache: not
     * when guardrails act on it (a stored answer would skip them, or carry
     * the restored values of the request that made it). */
    int (*cacheable)(const sl_guard_req *g);
    /* sluice_guardrail_hits_total for /metrics. 0, or -1 out of memory. */
    int (*metrics)(const sl_table *t, sl_buf *out);
} sl_guard_ops;

/* ---- the engine, for the proxy glue, tests, fuzzing and the bench ---- */

/* Per-request state for the guardrails in `rails` (bit i: guardrail i). */
sl_guard_req *sl_guard_req_new(const sl_guard_spec *spec, uint32_t rails);
/* Forgets the redacted values (zeroed first) and frees. */
void sl_guard_req_free(sl_guard_req *g);
/* Whether any selected guardrail acts in this direction, restores, or
 * rewrites (redact) in it. */
int sl_guard_active(const sl_guard_req *g, sl_guard_dir dir);
int sl_guard_restores(const sl_guard_req *g);
int sl_guard_rewrites(const sl_guard_req *g, sl_guard_dir dir);

/* Scans s[0..n) and acts. 0: *out holds the text to use (possibly
 * changed); 1: blocked (sl_guard_message says by what); -1: out of memory.
 * With final 0 (streams), only the first *used bytes are decided: the rest
 * may still start a match and must be passed again with what follows. */
int sl_guard_text(sl_guard_req *g, sl_guard_dir dir, const char *s, size_t n, int final, sl_buf *out,
                  size_t *used);
const char *sl_guard_message(const sl_guard_req *g);
/* Bit per detector (SL_GDET_*) and bit SL_GDET_COUNT for deny patterns
 * that fired in this request. */
uint32_t sl_guard_fired(const sl_guard_req *g);

/* Validation after a DFA match at t[at] of length *len within t[0..n):
 * returns the detector (SL_GDET_*, PEM reported as SECRETS, deny rules as
 * SL_GDET_DENY + k) or -1 when the candidate is not one; *len may change
 * (secrets extend over their token, private keys to their END line, IBANs
 * shrink to their valid length). */
int sl_guard_validate(int rule, const unsigned char *t, size_t n, size_t at, size_t *len);
int sl_guard_luhn(const unsigned char *s, size_t n);    /* digits and separators */
int sl_guard_iban_ok(const unsigned char *s, size_t n); /* letters, digits, spaces */

/* Hits counted per guardrail, detector and direction (process-wide). */
uint64_t sl_guard_hits(uint32_t rail, int det, sl_guard_dir dir);

#endif
