/*
 * Secrets from variables and files (see secret.h).
 */
#include "auth/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_MAX (64 * 1024)

void sl_secret_wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    free(p);
}

void sl_secret_free(char *s)
{
    if (s)
        sl_secret_wipe_free(s, strlen(s));
}

/* Where a relative path is read, for the message. */
static const char *cwd_note(const char *path, char *buf, size_t n)
{
    if (path[0] == '/' || !getcwd(buf, n))
        return "";
    return buf;
}

char *sl_secret_slurp(const char *path, size_t *len, char *why, size_t whylen)
{
    char cwd[256];
    const char *wd = cwd_note(path, cwd, sizeof cwd);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot read '%s': %s%s%s%s", path, strerror(errno),
                 *wd ? " (a relative path is read in the working directory, " : "", wd, *wd ? ")" : "");
        return NULL;
    }
    char *buf = malloc(SECRET_MAX + 1);
    size_t n = buf ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
    int bad = buf ? ferror(f) : 1;
    fclose(f);
    if (bad || n > SECRET_MAX) {
        snprintf(why, whylen, bad ? "cannot read '%s'" : "'%s' is larger than 64 KiB", path);
        if (buf) {
            explicit_bzero(buf, n < SECRET_MAX ? n : SECRET_MAX);
            free(buf);
        }
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *sl_secret_value(const char *env, const char *file, int *unset, char *why, size_t whylen)
{
    *unset = 0;
    char *v = NULL;
    size_t n = 0;
    if (env) {
        const char *e = getenv(env);
        if (!e || !*e) {
            *unset = 1;
            snprintf(why, whylen, "environment variable %s is %s", env, e ? "empty" : "not set");
            return NULL;
        }
        n = strlen(e);
        v = strdup(e);
        if (!v) {
            snprintf(why, whylen, "out of memory");
            return NULL;
        }
    } else {
        v = sl_secret_slurp(file, &n, why, whylen);
        if (!v)
            return NULL;
        /* A secret file written by `echo` ends in a newline. */
        while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
            v[--n] = '\0';
        if (n == 0) {
            snprintf(why, whylen, "file '%s' is empty", file);
            free(v);
            return NULL;
        }
    }
    if (strlen(v) != n || strpbrk(v, "\r\n")) {
        if (env)
            snprintf(why, whylen, "%s contains a line break", env);
        else
            snprintf(why, whylen, "file '%s' holds more than one line (or a NUL byte)", file);
        explicit_bzero(v, n);
        free(v);
        return NULL;
    }
    return v;
}
