/*
 * Fuzz target: the chunked body decoder. The first byte picks a feed size;
 * the decoder must give the same result fed in pieces as in one call, and
 * never report more output than input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static int decode(const uint8_t *in, size_t n, size_t step, char *out, size_t *out_len, size_t *used)
{
    sl_chunked c;
    sl_chunked_init(&c);
    size_t pos = 0, o = 0;
    int rc = SL_CHUNKED_AGAIN;
    while (pos < n) {
        size_t take = n - pos < step ? n - pos : step;
        size_t consumed = 0, produced = 0;
        rc = sl_chunked_decode(&c, (const char *)in + pos, take, &consumed, out + o, &produced);
        if (consumed > take || produced > consumed)
            abort();
        pos += consumed;
        o += produced;
        if (rc != SL_CHUNKED_AGAIN)
            break;
        if (consumed < take) /* decoder wants more before it can use the rest */
            abort();
    }
    *out_len = o;
    *used = pos;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    char *a = malloc(size + 1), *b = malloc(size + 1);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    size_t alen, blen, aused, bused;
    int ra = decode(data, size, size ? size : 1, a, &alen, &aused);
    int rb = decode(data, size, step, b, &blen, &bused);
    if (ra != rb)
        abort();
    if (ra == SL_CHUNKED_DONE && (alen != blen || aused != bused || memcmp(a, b, alen) != 0))
        abort();
    free(a);
    free(b);
    return 0;
}
