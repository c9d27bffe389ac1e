/*
 * Secrets a spec names instead of holding: `env:NAME` (a variable) or
 * `file:PATH` (a file, as Docker and Kubernetes secrets are mounted),
 * read once at start. Messages name the variable or the path, never the
 * content.
 */
#ifndef SLUICE_SECRET_H
#define SLUICE_SECRET_H

#include <stddef.h>

/* The file's bytes (NUL-terminated, at most 64 KiB), malloc'd; NULL with
 * why filled ("cannot read 'PATH': No such file or directory"). */
char *sl_secret_slurp(const char *path, size_t *len, char *why, size_t whylen);

/* A one-line secret from variable `env` or else file `file`: trailing
 * newlines (and CRs) trimmed, then non-empty and without line breaks or
 * NUL (it goes into a header line). malloc'd; NULL with why filled, and
 * *unset = 1 when the variable is unset or empty (the caller may treat
 * that as an optional provider's absent key). */
char *sl_secret_value(const char *env, const char *file, int *unset, char *why, size_t whylen);

/* Overwrites and frees a secret string (NULL is fine). */
void sl_secret_free(char *s);
/* Overwrites n bytes and frees them (NULL is fine): secrets that are not
 * strings, or buffers that may hold more than one. */
void sl_secret_wipe_free(void *p, size_t n);

#endif
