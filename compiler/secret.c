/*
 * Credential shapes (see secret.h). A token is a known prefix at a word
 * boundary followed by a long run of key characters that mixes upper case
 * with lower case or digits: real keys are random and always do, while
 * model names like `sk-learn-regressor-2024` are lower case and do not, so
 * the check stays quiet on ordinary names.
 */
#include "secret.h"

#include <string.h>

typedef struct shape {
    const char *prefix;
    size_t min_body;
    const char *what;
} shape;

/* Longer prefixes first so `sk-ant-` is named before `sk-`. */
static const shape shapes[] = {
    {"sk-ant-", 20, "an Anthropic API key"},
    {"sk-proj-", 20, "an OpenAI project key"},
    {"sk-svcacct-", 20, "an OpenAI service account key"},
    {"sk-sluice-", 20, "a sluice client key"},
    {"sk-or-", 20, "an OpenRouter key"},
    {"sk-", 20, "an API key"},
    {"AIza", 30, "a Google API key"},
    {"xoxb-", 20, "a Slack bot token"},
    {"xoxp-", 20, "a Slack user token"},
    {"ghp_", 30, "a GitHub token"},
    {"gho_", 30, "a GitHub token"},
    {"github_pat_", 30, "a GitHub token"},
    {"glpat-", 20, "a GitLab token"},
    {"hf_", 30, "a Hugging Face token"},
    {"gsk_", 30, "a Groq key"},
    {"AKIA", 16, "an AWS access key"},
};

static bool key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

const char *slc_find_secret(const char *s, size_t len, size_t *off, size_t *tlen)
{
    for (size_t i = 0; i < len; i++) {
        /* Every prefix starts with one of these: skip the rest cheaply. */
        if (!strchr("sAxghG", s[i]) || !s[i] || (i > 0 && alnum((unsigned char)s[i - 1])))
            continue;
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            size_t plen = strlen(shapes[k].prefix);
            if (len - i < plen || memcmp(s + i, shapes[k].prefix, plen) != 0)
                continue;
            size_t j = i + plen;
            bool upper = false, lower = false, digit = false;
            while (j < len && key_char((unsigned char)s[j])) {
                unsigned char c = (unsigned char)s[j++];
                upper |= c >= 'A' && c <= 'Z';
                lower |= c >= 'a' && c <= 'z';
                digit |= c >= '0' && c <= '9';
            }
            /* AWS key ids are upper case and digits only. */
            bool mixed = upper && (lower || digit);
            if (j - i - plen >= shapes[k].min_body && mixed) {
                *off = i;
                *tlen = j - i;
                return shapes[k].what;
            }
            break; /* a shorter prefix of the same text is no better */
        }
    }
    return NULL;
}

bool slc_mask_secrets(char *buf, size_t len)
{
    bool any = false;
    size_t pos = 0, off, tlen;
    while (pos < len && slc_find_secret(buf + pos, len - pos, &off, &tlen)) {
        memset(buf + pos + off, '*', tlen);
        pos += off + tlen;
        any = true;
    }
    return any;
}

bool slc_valid_env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* env:NAME or file:PATH into *env / *file; false (reported) otherwise. */
bool slc_check_secret_ref(slc_diags *d, const char *name, slc_str v, const char *key, bool bare_path,
                          const char **env, const char **file)
{
    if (strncmp(v.s, "env:", 4) == 0) {
        if (!slc_valid_env_name(v.s + 4)) {
            slc_error(d, v.pos, "provider '%s': %s '%s' does not name a valid environment variable",
                      name, key, v.s);
            return false;
        }
        *env = v.s + 4;
        return true;
    }
    const char *path = strncmp(v.s, "file:", 5) == 0 ? v.s + 5 : bare_path ? v.s : NULL;
    if (!path) {
        slc_error_redacted(d, v.pos, v.end,
                           "provider '%s': %s must be env:NAME or file:PATH; a literal secret does "
                           "not belong in the spec",
                           name, key);
        return false;
    }
    if (!*path || strpbrk(path, "\r\n")) {
        slc_error(d, v.pos, "provider '%s': %s names no file", name, key);
        return false;
    }
    *file = path;
    return true;
}

bool slc_is_secret_ref(const char *s)
{
    return strncmp(s, "env:", 4) == 0 || strncmp(s, "file:", 5) == 0;
}
