/*
 * Decoder for the chunked transfer coding of request bodies (RFC 9112 7.1).
 * It is a byte-driven state machine rather than a re2c DFA because its input
 * arrives in arbitrary pieces and must be resumable at any byte, and because
 * most of its work is copying chunk data, done here with one memmove per
 * piece. Everything that is not data (size lines, extensions, trailers) is
 * checked strictly and bounded, so a client cannot make the gateway buffer or
 * scan without limit, and nothing ambiguous is accepted that an upstream
 * could frame differently.
 */
#include "http/http.h"

#include <string.h>

#include "core/str.h"

enum {
    CH_SIZE,     /* hex digits of a chunk size; line_len counts them */
    CH_SIZE_BWS, /* whitespace after the size: only ';' may follow */
    CH_EXT,      /* chunk extensions, skipped up to CR */
    CH_SIZE_LF,  /* CR seen on the size line */
    CH_DATA,
    CH_DATA_CR,  /* chunk data done: CRLF must follow at once */
    CH_DATA_LF,
    CH_TR_START, /* start of a trailer line, or of the final CRLF */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR,
};

#define MAX_HEX_DIGITS 16

static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value and extension bytes: HTAB, SP, VCHAR, obs-text. */
static int is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void sl_chunked_init(sl_chunked *c)
{
    c->state = CH_SIZE;
    c->remaining = 0;
    c->line_len = 0;
    c->trailer_len = 0;
}

int sl_chunked_decode(sl_chunked *c, const char *in, size_t in_len, size_t *consumed, char *out,
                      size_t *produced)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    int rc = SL_CHUNKED_AGAIN;

    if (c->state == CH_DONE) {
        rc = SL_CHUNKED_DONE;
        goto out;
    }
    if (c->state == CH_ERROR) {
        rc = SL_CHUNKED_ERROR;
        goto out;
    }

    while (i < in_len) {
        if (c->state == CH_DATA) {
            size_t n = in_len - i;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            /* memmove: out may be in, and then out + o trails in + i. */
            memmove(out + o, in + i, n);
            i += n;
            o += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }

        unsigned char ch = p[i];
        switch (c->state) {
        case CH_SIZE:
        case CH_SIZE_BWS:
        case CH_EXT:
        case CH_SIZE_LF:
            if (++c->line_len > SL_CHUNKED_MAX_LINE)
                goto bad;
            break;
        case CH_TR_START:
        case CH_TR_NAME:
        case CH_TR_VALUE:
        case CH_TR_LF:
        case CH_FINAL_LF:
            if (++c->trailer_len > SL_CHUNKED_MAX_TRAILER)
                goto bad;
            break;
        default:
            break;
        }

        switch (c->state) {
        case CH_SIZE: {
            int d = sl_hex_digit(ch);
            if (d >= 0) {
                /* line_len - 1 digits came before this one. */
                if (c->line_len > MAX_HEX_DIGITS ||
                    c->remaining > (uint64_t)SL_HTTP_MAX_BODY_SIZE >> 4)
                    goto bad;
                c->remaining = c->remaining << 4 | (uint64_t)d;
                if (c->remaining > (uint64_t)SL_HTTP_MAX_BODY_SIZE)
                    goto bad;
                break;
            }
            if (c->line_len == 1) /* no digit at all */
                goto bad;
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == ' ' || ch == '\t')
                c->state = CH_SIZE_BWS;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else
                goto bad;
            break;
        }
        case CH_SIZE_BWS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch != ' ' && ch != '\t')
                goto bad;
            break;
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_field_byte(ch))
                goto bad;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto bad;
            c->line_len = 0;
            if (c->remaining == 0) {
                c->trailer_len = 0;
                c->state = CH_TR_START;
            } else {
                c->state = CH_DATA;
            }
            break;
        case CH_DATA_CR:
            if (ch != '\r')
                goto bad;
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_SIZE;
            break;
        case CH_TR_START:
            if (ch == '\r')
                c->state = CH_FINAL_LF;
            else if (is_tchar(ch))
                c->state = CH_TR_NAME; /* SP/HT here would be obs-fold */
            else
                goto bad;
            break;
        case CH_TR_NAME:
            if (ch == ':')
                c->state = CH_TR_VALUE;
            else if (!is_tchar(ch))
                goto bad;
            break;
        case CH_TR_VALUE:
            if (ch == '\r')
                c->state = CH_TR_LF;
            else if (!is_field_byte(ch))
                goto bad;
            break;
        case CH_TR_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_TR_START;
            break;
        case CH_FINAL_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_DONE;
            i++;
            rc = SL_CHUNKED_DONE;
            goto out;
        default:
            goto bad;
        }
        i++;
    }
    goto out;

bad:
    c->state = CH_ERROR;
    rc = SL_CHUNKED_ERROR;
out:
    *consumed = i;
    *produced = o;
    return rc;
}
