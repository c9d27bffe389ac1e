/*
 * Collects, sorts and prints diagnostics (see diag.h). Sorting is by source
 * position with report order breaking ties, and notes travel with the
 * diagnostic they explain, so output is deterministic whatever order the
 * checks happen to run in.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "secret.h"

typedef struct item {
    slc_severity sev;
    slc_pos pos;        /* where the message points */
    slc_pos sort_pos;   /* the parent's position for notes */
    size_t group;       /* the parent's sequence number for notes */
    size_t seq;
    char *msg;
} item;

/* Source text never shown, whichever message quotes its line. */
typedef struct span {
    slc_pos pos, end;
} span;

struct slc_diags {
    const char *file;
    const char *src;
    size_t len;
    item *items;
    size_t n, cap;
    span *hidden;
    size_t nhidden, hidden_cap;
    size_t errors, warnings;
    bool sorted;
};

slc_diags *slc_diags_new(const char *file, const char *src, size_t len)
{
    slc_diags *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    d->file = file;
    d->src = src;
    d->len = len;
    return d;
}

void slc_diags_free(slc_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].msg);
    free(d->items);
    free(d->hidden);
    free(d);
}

static item *add(slc_diags *d, slc_severity sev, slc_pos pos, const char *fmt, va_list ap)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = realloc(d->items, d->cap * sizeof *d->items);
        if (!d->items)
            abort();
    }
    item *it = &d->items[d->n];
    memset(it, 0, sizeof *it);
    slc_buf b = {0};
    slc_buf_vprintf(&b, fmt, ap);
    it->msg = b.p ? b.p : calloc(1, 1);
    /* Messages quote scalars; a pasted key must not ride along into logs. */
    slc_mask_secrets(it->msg, strlen(it->msg));
    it->sev = sev;
    it->pos = pos;
    it->seq = d->n;
    if (sev == SLC_NOTE && d->n > 0) {
        item *parent = &d->items[d->n - 1];
        it->sort_pos = parent->sort_pos;
        it->group = parent->group;
    } else {
        it->sort_pos = pos;
        it->group = d->n;
    }
    if (sev == SLC_ERROR)
        d->errors++;
    else if (sev == SLC_WARNING)
        d->warnings++;
    d->n++;
    d->sorted = false;
    return it;
}

void slc_diag(slc_diags *d, slc_severity sev, slc_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, sev, pos, fmt, ap);
    va_end(ap);
}

void slc_diags_redact(slc_diags *d, slc_pos pos, slc_pos end)
{
    if (pos.line == 0)
        return;
    if (d->nhidden == d->hidden_cap) {
        size_t cap = d->hidden_cap ? d->hidden_cap * 2 : 8;
        span *h = realloc(d->hidden, cap * sizeof *h);
        if (!h)
            abort();
        d->hidden = h;
        d->hidden_cap = cap;
    }
    d->hidden[d->nhidden++] = (span){pos, end};
}

void slc_error_redacted(slc_diags *d, slc_pos pos, slc_pos end, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, SLC_ERROR, pos, fmt, ap);
    va_end(ap);
    slc_diags_redact(d, pos, end);
}

size_t slc_diags_errors(const slc_diags *d) { return d->errors; }
size_t slc_diags_warnings(const slc_diags *d) { return d->warnings; }
size_t slc_diags_count(const slc_diags *d) { return d->n; }

static int cmp_item(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    if (a->sort_pos.line != b->sort_pos.line)
        return a->sort_pos.line < b->sort_pos.line ? -1 : 1;
    if (a->sort_pos.col != b->sort_pos.col)
        return a->sort_pos.col < b->sort_pos.col ? -1 : 1;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void sort_items(slc_diags *d)
{
    if (!d->sorted && d->n > 1)
        qsort(d->items, d->n, sizeof *d->items, cmp_item);
    d->sorted = true;
}

const char *slc_diags_message(const slc_diags *d, size_t i, slc_severity *sev, slc_pos *pos)
{
    sort_items((slc_diags *)d);
    if (i >= d->n)
        return NULL;
    if (sev)
        *sev = d->items[i].sev;
    if (pos)
        *pos = d->items[i].pos;
    return d->items[i].msg;
}

/* Start and length of 1-based line `line` in the source, without its
 * newline; false when the file has fewer lines. */
static bool find_line(const slc_diags *d, uint32_t line, const char **start, size_t *len)
{
    if (!d->src || line == 0)
        return false;
    const char *p = d->src, *end = d->src + d->len;
    /* libyaml does not count a byte-order mark as a column; neither do we. */
    if (d->len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    for (uint32_t l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        p = nl + 1;
    }
    if (p >= end)
        return false;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n && p[n - 1] == '\r')
        n--;
    *start = p;
    *len = n;
    return true;
}

static bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Byte offset of 1-based character column `col` within the line. */
static size_t col_offset(const char *s, size_t len, uint32_t col)
{
    size_t i = 0;
    for (uint32_t c = 1; c < col && i < len; c++) {
        i++;
        while (i < len && is_cont((unsigned char)s[i]))
            i++;
    }
    return i;
}

/* Bytes that are not part of valid UTF-8 are shown as '?', so a quoted line
 * never puts raw garbage on a terminal or into a CI log. */
static void sanitize_utf8(char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = is_cont((unsigned char)s[i + k]);
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

static void print_item(const slc_diags *d, const item *it, FILE *out)
{
    static const char *const names[] = {"note", "warning", "error"};
    if (it->pos.line == 0) {
        fprintf(out, "%s: %s: %s\n", d->file, names[it->sev], it->msg);
        return;
    }
    fprintf(out, "%s:%u:%u: %s: %s\n", d->file, it->pos.line, it->pos.col,
            names[it->sev], it->msg);
    const char *line;
    size_t len;
    if (!find_line(d, it->pos.line, &line, &len))
        return;
    size_t caret = col_offset(line, len, it->pos.col);
    char *shown = malloc(len + 1);
    if (!shown)
        abort();
    /* Every hidden span on this line is masked, not only the one this
     * message is about: another error on the same line quotes it too. One
     * '*' per character, so the caret line (which counts characters)
     * still lines up. */
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        bool hide = false;
        for (size_t k = 0; k < d->nhidden && !hide; k++) {
            const span *h = &d->hidden[k];
            if (h->pos.line > it->pos.line || h->end.line < it->pos.line)
                continue;
            size_t from = h->pos.line == it->pos.line ? col_offset(line, len, h->pos.col) : 0;
            size_t to = h->end.line == it->pos.line ? col_offset(line, len, h->end.col) : len;
            hide = i >= from && i < to;
        }
        if (!hide)
            shown[w++] = line[i];
        else if (!is_cont((unsigned char)line[i]))
            shown[w++] = '*';
    }
    len = w;
    slc_mask_secrets(shown, len);
    sanitize_utf8(shown, len);
    fwrite(shown, 1, len, out);
    free(shown);
    fputc('\n', out);
    /* Tabs are kept so the caret lines up whatever the tab width. */
    for (size_t i = 0; i < caret; i++) {
        if (line[i] == '\t')
            fputc('\t', out);
        else if (!is_cont((unsigned char)line[i]))
            fputc(' ', out);
    }
    fputs("^\n", out);
}

void slc_diags_print(slc_diags *d, FILE *out)
{
    sort_items(d);
    for (size_t i = 0; i < d->n; i++)
        print_item(d, &d->items[i], out);
}

void slc_diags_print_json(slc_diags *d, FILE *out)
{
    static const char *const names[] = {"note", "warning", "error"};
    sort_items(d);
    for (size_t i = 0; i < d->n; i++) {
        const item *it = &d->items[i];
        slc_buf b = {0};
        slc_buf_puts(&b, "{\"file\":");
        slc_buf_json_string(&b, d->file, strlen(d->file));
        slc_buf_printf(&b, ",\"line\":%u,\"column\":%u,\"severity\":\"%s\",\"message\":",
                       it->pos.line, it->pos.line ? it->pos.col : 0, names[it->sev]);
        slc_buf_json_string(&b, it->msg, strlen(it->msg));
        slc_buf_puts(&b, "}\n");
        fwrite(b.p, 1, b.len, out);
        slc_buf_free(&b);
    }
}

void slc_diags_summary(FILE *out, size_t errors, size_t warnings)
{
    if (errors && warnings)
        fprintf(out, "%zu error%s, %zu warning%s generated.\n", errors,
                errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    else if (errors)
        fprintf(out, "%zu error%s generated.\n", errors, errors == 1 ? "" : "s");
    else if (warnings)
        fprintf(out, "%zu warning%s generated.\n", warnings, warnings == 1 ? "" : "s");
}
