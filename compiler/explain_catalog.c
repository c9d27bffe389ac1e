/*
 * explain's price and catalog lines (see explain_catalog.h).
 */
#include "explain_catalog.h"

#include "explain.h"

/* What the catalog says and what sluice therefore does to requests. */
void slc_explain_caps_text(slc_buf *b, const sl_target *tg, sl_kind kind)
{
    uint32_t k = tg->caps;
    if (!(k & SL_CAP_KNOWN)) {
        slc_buf_puts(b, "not in the catalog: requests go as sent");
        return;
    }
    slc_buf_printf(b, "output limit %u", tg->max_output);
    if (kind == SL_KIND_OPENAI && (k & SL_CAP_MAX_COMPLETION))
        slc_buf_puts(b, "; sends max_completion_tokens");
    else if (kind == SL_KIND_OPENAI && (k & SL_CAP_MAX_TOKENS))
        slc_buf_puts(b, "; sends max_tokens");
    if (k & SL_CAP_NO_TEMPERATURE)
        slc_buf_puts(b, "; drops temperature");
    if (!(k & SL_CAP_EFFORTS))
        slc_buf_puts(b, "; drops reasoning effort");
    else if (!(k & SL_CAP_EFFORT_BUDGET)) {
        static const char *const w[] = {"minimal", "low", "medium", "high"};
        slc_buf_puts(b, "; reasoning_effort");
        for (int i = 0, first = 1; i < 4; i++)
            if (k & (SL_CAP_EFFORT_MINIMAL << i)) {
                slc_buf_printf(b, "%s%s", first ? " " : "/", w[i]);
                first = 0;
            }
    }
    if (!(k & SL_CAP_TOOLS))
        slc_buf_puts(b, "; takes no tools (requests with tools skip it)");
    if (!(k & SL_CAP_VISION))
        slc_buf_puts(b, "; takes no images (requests with images skip it)");
}

/* The catalog's facts about a target and the mapping they imply, as
 * explain --format=json reports them. */
void slc_explain_caps_json(slc_buf *b, const sl_target *tg, uint32_t context)
{
    uint32_t k = tg->caps;
    slc_buf_printf(b,
                   ",\"catalog\":{\"context\":%u,\"max_output\":%u,\"tools\":%s,\"vision\":%s,"
                   "\"reasoning\":%s,\"prompt_caching\":%s,\"output_limit_name\":",
                   context, tg->max_output, k & SL_CAP_TOOLS ? "true" : "false",
                   k & SL_CAP_VISION ? "true" : "false", k & SL_CAP_REASONING ? "true" : "false",
                   k & SL_CAP_CACHING ? "true" : "false");
    slc_buf_puts(b, k & SL_CAP_MAX_COMPLETION ? "\"max_completion_tokens\""
                    : k & SL_CAP_MAX_TOKENS   ? "\"max_tokens\""
                                              : "null");
    slc_buf_printf(b, ",\"rejects_temperature\":%s,\"reasoning_effort\":",
                   k & SL_CAP_NO_TEMPERATURE ? "true" : "false");
    if (k & SL_CAP_EFFORT_BUDGET) {
        slc_buf_puts(b, "\"thinking budget\"}");
        return;
    }
    static const char *const w[] = {"minimal", "low", "medium", "high"};
    slc_buf_putc(b, '[');
    for (int i = 0, first = 1; i < 4; i++)
        if (k & (SL_CAP_EFFORT_MINIMAL << i)) {
            slc_buf_printf(b, "%s\"%s\"", first ? "" : ",", w[i]);
            first = 0;
        }
    slc_buf_puts(b, "]}");
}

void slc_explain_price_text(slc_buf *b, const sl_price *p, const char *source)
{
    slc_fmt_money(b, p->input);
    slc_buf_puts(b, " in, ");
    slc_fmt_money(b, p->output);
    slc_buf_puts(b, " out");
    if (p->cache_read) {
        slc_buf_puts(b, ", ");
        slc_fmt_money(b, p->cache_read);
        slc_buf_puts(b, " cache read");
    }
    if (p->cache_write) {
        slc_buf_puts(b, ", ");
        slc_fmt_money(b, p->cache_write);
        slc_buf_puts(b, " cache write");
    }
    slc_buf_printf(b, " per million tokens (%s)", source);
}

