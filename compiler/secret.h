/*
 * Recognises provider credentials by their published shapes (`sk-ant-...`,
 * `AIza...`, `ghp_...`) so a key pasted into a spec is caught wherever it
 * sits, and so no diagnostic ever prints one: diag masks every match in
 * messages and quoted source lines before they leave the process.
 */
#ifndef SLC_SECRET_H
#define SLC_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "spec.h"

/* Finds the first credential-shaped token in s[0..len). Returns the name of
 * the shape ("an OpenAI key", ...) and its byte range, or NULL. */
const char *slc_find_secret(const char *s, size_t len, size_t *off, size_t *tlen);

/* Replaces every credential-shaped token in buf with '*'; true if any. */
bool slc_mask_secrets(char *buf, size_t len);

/* A name `env:NAME` may use: a letter or _, then letters, digits, _. */
bool slc_valid_env_name(const char *s);

/* Does s name a secret (env:... or file:...) rather than hold one? */
bool slc_is_secret_ref(const char *s);

/* A spec's reference to a secret, `key` of provider `name`: env:NAME (a
 * valid variable name, *env set) or file:PATH (a non-empty one-line path,
 * *file set; with bare_path a plain path too). Anything else is a literal
 * secret: an error whose quoted line is masked. false after an error. */
bool slc_check_secret_ref(slc_diags *d, const char *name, slc_str v, const char *key, bool bare_path,
                          const char **env, const char **file);

#endif
