/*
 * Provider presets: `kind: groq` and friends. A preset is data about one
 * provider (the wire protocol it speaks, its documented base URL, how its
 * key is presented, extra headers, the operations it serves, its quirks and
 * which catalog/ section prices its models). The compiler resolves a preset
 * into the fields the runtime's provider table already has, so the runtime
 * knows protocols and URL shapes, never provider names. This table is the
 * one copy of each fact; README's presets table is written from it.
 */
#ifndef SLC_PRESETS_H
#define SLC_PRESETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"

typedef struct slc_preset {
    const char *name;
    slc_kind kind;          /* wire protocol: one of the runtime's adapters */
    const char *base_url;   /* documented default; NULL = built from other settings (azure) */
    const char *auth;       /* header line format for the key; NULL = the protocol's own */
    bool key_required;      /* a cloud service: `api_key: env:NAME` is required */
    const char *env;        /* the variable the provider's own docs use */
    const char *headers;    /* extra header lines ('\n'-separated), or NULL */
    uint32_t ops;           /* bit (1 << sl_op) per operation served; 0 = all the protocol serves */
    uint32_t quirks;        /* SL_QUIRK_* (runtime/table.h) */
    uint8_t url_style;      /* SL_URL_* (runtime/table.h) */
    const char *catalog;    /* catalog/ provider ids pricing its models (blank-separated), or NULL */
} slc_preset;

/* The preset named `name` (len bytes), or NULL. */
const slc_preset *slc_preset_find(const char *name, size_t len);
/* Every preset, in table order (for did-you-mean and the README). */
const slc_preset *slc_preset_all(size_t *n);
/* The preset of a spec provider (its `kind:` word). */
const slc_preset *slc_preset_of(const slc_provider *p);

#endif
