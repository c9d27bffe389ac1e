/*
 * What explain says about a target's price and the model catalog's facts
 * (split from explain.c, which keeps the plan): the price line, the
 * catalog's limits and the request mapping they imply, as text and JSON.
 */
#ifndef SLC_EXPLAIN_CATALOG_H
#define SLC_EXPLAIN_CATALOG_H

#include <stdint.h>

#include "mem.h"
#include "table.h"

/* "; sends max_tokens; drops temperature; ..." for target tg. */
void slc_explain_caps_text(slc_buf *b, const sl_target *tg, sl_kind kind);
/* ,"catalog":{...} for target tg, whose model has `context` tokens. */
void slc_explain_caps_json(slc_buf *b, const sl_target *tg, uint32_t context);
/* "$3.00 in, $15.00 out, ... per million tokens (source)". */
void slc_explain_price_text(slc_buf *b, const sl_price *p, const char *source);

#endif
