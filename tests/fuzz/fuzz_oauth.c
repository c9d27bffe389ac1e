/*
 * Fuzz target: the OAuth parsers (runtime/auth/oauth_parse.c) over
 * untrusted bytes: a service-account key file (an operator's file, but
 * a wrong one must be an error, not a crash), the PEM/DER key inside it
 * (input starting with 'P': the rest becomes private_key), and a token
 * endpoint's answer and refusal (the network's). Invariants: a parsed
 * key signs, and its email and token_uri are printable; a parsed token is
 * printable ASCII with a lifetime of 1 s to 7 days; an error code is a
 * short word.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth_parse.h"

static void check_printable(const char *s)
{
    if (!s || !*s)
        abort();
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            abort();
}

static void sa(const char *js, size_t n)
{
    sl_sa_key k;
    char err[256];
    if (sl_sa_parse(js, n, &k, err, sizeof err) != 0) {
        if (!err[0] || k.mem || k.client_email)
            abort();
        return;
    }
    check_printable(k.client_email);
    check_printable(k.token_uri);
    char *jwt = sl_sa_jwt(&k, "https://www.googleapis.com/auth/cloud-platform", 1700000000);
    if (!jwt)
        abort(); /* a key the parser took must sign */
    free(jwt);
    sl_sa_free(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (size && data[0] == 'P') {
        json_t *o = json_pack("{s:s,s:s%}", "client_email", "fuzz@example.iam.gserviceaccount.com",
                              "private_key", s + 1, size - 1);
        char *js = o ? json_dumps(o, 0) : NULL;
        if (js)
            sa(js, strlen(js));
        free(js);
        json_decref(o);
        return 0;
    }
    sa(s, size);
    char *tok;
    int64_t exp;
    char err[200];
    if (sl_oauth_parse_token(s, size, &tok, &exp, err, sizeof err) == 0) {
        check_printable(tok);
        if (exp < 1 || exp > 7 * 86400)
            abort();
        free(tok);
    } else if (tok || !err[0]) {
        abort();
    }
    char code[72];
    sl_oauth_error_code(s, size, code, sizeof code);
    for (const char *c = code; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *c))
            abort();
    return 0;
}
