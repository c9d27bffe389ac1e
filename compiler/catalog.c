/*
 * The compiled-in catalog (see catalog.h): the TSV text is embedded by
 * cmake/embed.cmake and parsed once, on first use, into a sorted array.
 * The data is ours (checked in, reviewed), but the parser still rejects
 * malformed lines loudly: a bad regeneration must fail the build's tests,
 * not price a model at zero.
 */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "units.h"

extern const char slc_catalog_tsv[];
extern const unsigned long slc_catalog_tsv_len;

static slc_cat_model *models;
static size_t nmodels;
static char *text;        /* a writable copy the entries point into */
static char source[256];

static void free_catalog(void)
{
    free(models);
    free(text);
    models = NULL;
    text = NULL;
}

static int64_t price(const char *s)
{
    int64_t v;
    char err[64];
    if (strcmp(s, "-") == 0)
        return -1;
    if (slc_parse_money_micros(s, strlen(s), &v, err, sizeof err) != 0 || v < 0)
        return -2;
    return v;
}

static uint32_t caps_of(const char *flags, const char *efforts)
{
    uint32_t c = SL_CAP_KNOWN;
    for (const char *f = flags; *f && strcmp(flags, "-") != 0; f++)
        c |= *f == 't'   ? SL_CAP_TOOLS
             : *f == 'v' ? SL_CAP_VISION
             : *f == 'r' ? SL_CAP_REASONING
             : *f == 'c' ? SL_CAP_CACHING
             : *f == 'm' ? SL_CAP_MAX_COMPLETION
             : *f == 'x' ? SL_CAP_MAX_TOKENS
             : *f == 'T' ? SL_CAP_NO_TEMPERATURE
                         : 0;
    static const struct {
        const char *word;
        uint32_t bit;
    } eff[] = {{"minimal", SL_CAP_EFFORT_MINIMAL}, {"low", SL_CAP_EFFORT_LOW},
               {"medium", SL_CAP_EFFORT_MEDIUM},   {"high", SL_CAP_EFFORT_HIGH},
               {"budget", SL_CAP_EFFORT_BUDGET}};
    for (size_t i = 0; i < sizeof eff / sizeof eff[0]; i++) {
        size_t n = strlen(eff[i].word);
        for (const char *p = strstr(efforts, eff[i].word); p; p = strstr(p + 1, eff[i].word))
            if ((p == efforts || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
                c |= eff[i].bit;
    }
    return c;
}

static int cmp(const void *a, const void *b)
{
    const slc_cat_model *x = a, *y = b;
    int c = strcmp(x->provider, y->provider);
    return c ? c : strcmp(x->model, y->model);
}

static void load(void)
{
    if (text)
        return;
    text = malloc(slc_catalog_tsv_len + 1);
    size_t lines = 0;
    for (unsigned long i = 0; i < slc_catalog_tsv_len; i++)
        lines += slc_catalog_tsv[i] == '\n';
    models = calloc(lines + 1, sizeof *models);
    if (!text || !models)
        abort();
    atexit(free_catalog);
    memcpy(text, slc_catalog_tsv, slc_catalog_tsv_len);
    text[slc_catalog_tsv_len] = '\0';
    size_t lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (*line == '#') {
            if (strncmp(line, "# source: ", 10) == 0)
                snprintf(source, sizeof source, "%s", line + 10);
            continue;
        }
        char *f[10];
        size_t nf = 0;
        for (char *p = line; nf < 10; nf++) {
            f[nf] = p;
            p = strchr(p, '\t');
            if (!p) {
                nf++;
                break;
            }
            *p++ = '\0';
        }
        slc_cat_model m = {.provider = f[0], .model = nf > 1 ? f[1] : ""};
        if (nf == 10) {
            m.input = price(f[2]);
            m.output = price(f[3]);
            m.cache_read = price(f[4]);
            m.cache_write = price(f[5]);
            m.context = (uint32_t)strtoul(f[6], NULL, 10);
            m.max_output = (uint32_t)strtoul(f[7], NULL, 10);
            m.caps = caps_of(f[8], f[9]);
        }
        if (nf != 10 || m.input < -1 || m.output < -1 || m.cache_read < -1 || m.cache_write < -1) {
            fprintf(stderr, "sluicec: catalog/models.tsv line %zu is malformed (regenerate it)\n",
                    lineno);
            abort();
        }
        models[nmodels++] = m;
    }
    qsort(models, nmodels, sizeof *models, cmp);
}

const slc_cat_model *slc_catalog_find(const char *provider, const char *model)
{
    load();
    slc_cat_model key = {.provider = provider, .model = model};
    return bsearch(&key, models, nmodels, sizeof *models, cmp);
}

const slc_cat_model *slc_catalog_all(size_t *n)
{
    load();
    *n = nmodels;
    return models;
}

const char *slc_catalog_source(void)
{
    load();
    return source;
}
