/*
 * The model catalog compiled into sluicec (catalog/models.tsv, generated
 * from models.dev data by catalog/update.mjs): per provider and model its
 * prices, context and output limits and capabilities. The compiler uses it
 * for prices the spec does not give and for the per-target capability bits
 * the runtime maps request parameters by (runtime/table.h SL_CAP_*).
 */
#ifndef SLC_CATALOG_H
#define SLC_CATALOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct slc_cat_model {
    const char *provider;   /* models.dev provider id ("openai", "fireworks-ai") */
    const char *model;
    /* micro-USD per million tokens; -1 = unknown */
    int64_t input, output, cache_read, cache_write;
    uint32_t context, max_output; /* tokens; 0 = unknown */
    uint32_t caps;                /* SL_CAP_* with SL_CAP_KNOWN set */
} slc_cat_model;

/* The entry for provider/model (exact names), or NULL. */
const slc_cat_model *slc_catalog_find(const char *provider, const char *model);
/* Every entry, sorted by provider then model. */
const slc_cat_model *slc_catalog_all(size_t *n);
/* The "source: ..." header line of the data (what it was generated from). */
const char *slc_catalog_source(void);

#endif
