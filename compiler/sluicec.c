/*
 * sluicec's command line: `check` validates specs for CI, `build` writes the
 * generated table and matcher for the gateway build, `explain` and `diff`
 * tell reviewers what a spec (change) does to routing, `keygen` makes a
 * client key and the hash that goes into a spec. Exit status: 0 ok, 1 the
 * spec has errors (explain: no entry matches; diff: the specs differ), 2
 * usage or I/O trouble. This is the only file that exits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compile.h"
#include "diff.h"
#include "emit.h"
#include "explain.h"
#include "presets.h"
#include "table.h"

#ifndef SLUICEC_VERSION
#define SLUICEC_VERSION "0.0.0"
#endif

static const char usage[] =
    "usage: sluicec check SPEC... [--Werror] [--format=text|json]\n"
    "       sluicec build SPEC -o DIR [--quiet] [--Werror]\n"
    "       sluicec explain SPEC --model NAME [--key KEY] [--format=text|json]\n"
    "       sluicec diff OLD NEW [--format=text|json]\n"
    "       sluicec keygen [--prefix PREFIX]\n"
    "       sluicec presets\n"
    "       sluicec --help | --version\n"
    "\n"
    "  check    validate specs; diagnostics go to stderr (json: one object per\n"
    "           line on stdout, for CI annotations)\n"
    "  build    validate SPEC and write DIR/sluice_table.c and DIR/sluice_models.re\n"
    "           (files are rewritten only when their content changes)\n"
    "  explain  which entry serves model NAME and why, its targets, the attempt\n"
    "           order, retries, timeouts and cooldown; with --key, what that key\n"
    "           may do (exit 1 when no entry matches)\n"
    "  diff     route-level changes from OLD to NEW (either may be - for stdin);\n"
    "           exit 0 when both compile to the same tables, 1 when they differ\n"
    "  keygen   print a new random client key (256 bits, default prefix\n"
    "           sk-sluice-) and the hash to put in `keys:`\n"
    "\n"
    "exit status: 0 ok, 1 spec errors, 2 usage or I/O error\n";

/* `--format=json`, `--format json`: 0 text, 1 json, -1 bad value. Advances
 * *i past a separate value. */
static int parse_format(int argc, char **argv, int *i)
{
    const char *v = NULL;
    if (strncmp(argv[*i], "--format=", 9) == 0)
        v = argv[*i] + 9;
    else if (*i + 1 < argc)
        v = argv[++*i];
    if (v && strcmp(v, "text") == 0)
        return 0;
    if (v && strcmp(v, "json") == 0)
        return 1;
    fprintf(stderr, "sluicec: --format takes text or json\n");
    return -1;
}

static bool is_format_opt(const char *a)
{
    return strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0;
}

static int read_file(const char *path, char **data, size_t *len)
{
    bool in = strcmp(path, "-") == 0;
    FILE *f = in ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    slc_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        slc_buf_put(&b, chunk, n);
    int err = ferror(f);
    if (!in)
        fclose(f);
    if (err) {
        slc_buf_free(&b);
        errno = EIO;
        return -1;
    }
    if (!b.p)
        slc_buf_put(&b, "", 0);
    *data = b.p;
    *len = b.len;
    return 0;
}

/* Compiles one spec, prints its diagnostics. 0 ok, 1 spec errors, 2 I/O. */
static int front_end(const char *path, bool werror, bool json, slc_arena *a, slc_spec **spec,
                     char sha[65], char **src_out, size_t *errors, size_t *warnings)
{
    char *src;
    size_t len;
    if (read_file(path, &src, &len) != 0) {
        fprintf(stderr, "sluicec: cannot read '%s': %s\n", path, strerror(errno));
        return 2;
    }
    slc_diags *d = slc_diags_new(strcmp(path, "-") == 0 ? "<stdin>" : path, src, len);
    slc_spec *s = slc_compile(src, len, a, d);
    if (s && slc_diags_errors(d) == 0)
        slc_check_files(s, path, a, d);
    if (json)
        slc_diags_print_json(d, stdout);
    else
        slc_diags_print(d, stderr);
    size_t e = slc_diags_errors(d), w = slc_diags_warnings(d);
    slc_diags_free(d);
    *errors += e;
    *warnings += w;
    if (sha)
        slc_sha256_hex(src, len, sha);
    if (src_out)
        *src_out = src;
    else
        free(src);
    if (spec)
        *spec = s;
    return (e || (werror && w) || !s) ? 1 : 0;
}

static int cmd_check(int argc, char **argv)
{
    bool werror = false;
    int nspecs = 0, json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--Werror") == 0)
            werror = true;
        else if (is_format_opt(argv[i])) {
            int at = i;
            if ((json = parse_format(argc, argv, &i)) < 0)
                return 2;
            for (int k = at; k <= i; k++)
                argv[k] = NULL; /* consumed */
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluicec check: unknown option '%s'\n%s", argv[i], usage);
            return 2;
        } else
            nspecs++;
    }
    if (!nspecs) {
        fprintf(stderr, "sluicec check: no spec given\n%s", usage);
        return 2;
    }
    int rc = 0;
    size_t errors = 0, warnings = 0;
    for (int i = 0; i < argc; i++) {
        if (!argv[i] || (argv[i][0] == '-' && argv[i][1]))
            continue;
        slc_arena a = {0};
        int r = front_end(argv[i], werror, json, &a, NULL, NULL, NULL, &errors, &warnings);
        slc_arena_free(&a);
        if (r > rc)
            rc = r;
    }
    if (!json)
        slc_diags_summary(stderr, errors, warnings);
    return rc;
}

static int make_dirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int r = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return r;
}

/* Leaves an identical file untouched so its mtime does not trigger a
 * rebuild; otherwise writes a temporary and renames it into place so a
 * crash never leaves half a file for the next build to compile. */
static int write_if_changed(const char *dir, const char *name, const slc_buf *content)
{
    char path[4096], tmp[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        fprintf(stderr, "sluicec: output path too long\n");
        return -1;
    }
    char *old;
    size_t oldlen;
    if (read_file(path, &old, &oldlen) == 0) {
        bool same = oldlen == content->len && memcmp(old, content->p, oldlen) == 0;
        free(old);
        if (same)
            return 0;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(content->p, 1, content->len, f) != content->len || fclose(f) != 0) {
        fprintf(stderr, "sluicec: cannot write '%s': %s\n", tmp, strerror(errno));
        remove(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "sluicec: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static int cmd_build(int argc, char **argv)
{
    const char *spec_path = NULL, *out = NULL;
    bool quiet = false, werror = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = true;
        else if (strcmp(argv[i], "--Werror") == 0)
            werror = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluicec build: unknown option '%s'\n%s", argv[i], usage);
            return 2;
        } else if (!spec_path)
            spec_path = argv[i];
        else {
            fprintf(stderr, "sluicec build: one spec at a time\n%s", usage);
            return 2;
        }
    }
    if (!spec_path || !out) {
        fprintf(stderr, "sluicec build: need SPEC and -o DIR\n%s", usage);
        return 2;
    }
    slc_arena a = {0};
    slc_spec *s = NULL;
    char sha[65];
    char *src = NULL;
    size_t errors = 0, warnings = 0;
    int rc = front_end(spec_path, werror, false, &a, &s, sha, &src, &errors, &warnings);
    slc_diags_summary(stderr, errors, warnings);
    if (rc == 0) {
        slc_buf table = {0}, re = {0};
        slc_emit_table(s, sha, &table);
        slc_emit_models_re(s, sha, &re);
        if (make_dirs(out) != 0) {
            fprintf(stderr, "sluicec: cannot create '%s': %s\n", out, strerror(errno));
            rc = 2;
        } else if (write_if_changed(out, "sluice_table.c", &table) != 0 ||
                   write_if_changed(out, "sluice_models.re", &re) != 0) {
            rc = 2;
        } else if (!quiet) {
            printf("spec sha256: %s\n", sha);
        }
        slc_buf_free(&table);
        slc_buf_free(&re);
    }
    free(src);
    slc_arena_free(&a);
    return rc;
}

/* The whole buffer from getrandom(2): no fallback to a weaker source. */
static int random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *prefix = "sk-sluice-";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else if (strncmp(argv[i], "--prefix=", 9) == 0)
            prefix = argv[i] + 9;
        else {
            fprintf(stderr, "sluicec keygen: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    /* The prefix is what makes a leaked key recognisable (and what secret
     * scanners match), so it stays short and printable. */
    size_t plen = strlen(prefix);
    bool ok = plen <= 32;
    for (size_t i = 0; i < plen && ok; i++)
        ok = (prefix[i] >= 'a' && prefix[i] <= 'z') || (prefix[i] >= 'A' && prefix[i] <= 'Z') ||
             (prefix[i] >= '0' && prefix[i] <= '9') || prefix[i] == '-' || prefix[i] == '_';
    if (!ok) {
        fprintf(stderr, "sluicec keygen: --prefix must be at most 32 of [A-Za-z0-9_-]\n");
        return 2;
    }
    unsigned char raw[32];
    if (random_bytes(raw, sizeof raw) != 0) {
        fprintf(stderr, "sluicec: getrandom failed: %s\n", strerror(errno));
        return 2;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char key[96];
    memcpy(key, prefix, plen);
    size_t k = plen;
    /* 32 bytes -> 43 base64url characters, no padding. */
    for (size_t i = 0; i < 32; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (i + 1 < 32 ? (unsigned)raw[i + 1] << 8 : 0) |
                     (i + 2 < 32 ? raw[i + 2] : 0);
        size_t chars = i + 2 < 32 ? 4 : 3;
        for (size_t j = 0; j < chars; j++)
            key[k++] = b64[(v >> (18 - 6 * j)) & 63];
    }
    key[k] = '\0';
    char hex[65];
    slc_sha256_hex(key, k, hex);
    printf("key:  %s\nhash: sha256:%s\n", key, hex);
    fprintf(stderr, "Give the key to its user once; put only the hash in the spec.\n");
    return 0;
}

static int cmd_explain(int argc, char **argv)
{
    const char *spec_path = NULL, *model = NULL, *key = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strncmp(argv[i], "--model=", 8) == 0)
            model = argv[i] + 8;
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strncmp(argv[i], "--key=", 6) == 0)
            key = argv[i] + 6;
        else if (is_format_opt(argv[i])) {
            if ((json = parse_format(argc, argv, &i)) < 0)
                return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluicec explain: unknown option '%s'\n%s", argv[i], usage);
            return 2;
        } else if (!spec_path)
            spec_path = argv[i];
        else {
            fprintf(stderr, "sluicec explain: one spec at a time\n%s", usage);
            return 2;
        }
    }
    if (!spec_path || !model) {
        fprintf(stderr, "sluicec explain: need SPEC and --model NAME\n%s", usage);
        return 2;
    }
    slc_arena a = {0};
    slc_spec *s = NULL;
    size_t errors = 0, warnings = 0;
    int rc = front_end(spec_path, false, false, &a, &s, NULL, NULL, &errors, &warnings);
    if (rc != 0) {
        slc_diags_summary(stderr, errors, warnings);
        if (rc == 1)
            fprintf(stderr, "sluicec explain: '%s' has errors; fix them first\n", spec_path);
        slc_arena_free(&a);
        return 2;
    }
    slc_buf out = {0};
    rc = slc_explain(s, model, key, json, &out);
    if (rc == 2)
        fprintf(stderr, "sluicec explain: %s\n", out.p);
    else if (out.p)
        fwrite(out.p, 1, out.len, stdout);
    slc_buf_free(&out);
    slc_arena_free(&a);
    return rc;
}

static int cmd_diff(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    int n = 0, json = 0;
    for (int i = 0; i < argc; i++) {
        if (is_format_opt(argv[i])) {
            if ((json = parse_format(argc, argv, &i)) < 0)
                return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluicec diff: unknown option '%s'\n%s", argv[i], usage);
            return 2;
        } else if (n < 2)
            paths[n++] = argv[i];
        else {
            fprintf(stderr, "sluicec diff: takes exactly two specs\n%s", usage);
            return 2;
        }
    }
    if (n != 2) {
        fprintf(stderr, "sluicec diff: need OLD and NEW\n%s", usage);
        return 2;
    }
    if (strcmp(paths[0], "-") == 0 && strcmp(paths[1], "-") == 0) {
        fprintf(stderr, "sluicec diff: only one of OLD and NEW can be -\n");
        return 2;
    }
    slc_arena a = {0};
    slc_spec *s[2] = {NULL, NULL};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        size_t errors = 0, warnings = 0;
        int r = front_end(paths[k], false, false, &a, &s[k], NULL, NULL, &errors, &warnings);
        if (r != 0) {
            slc_diags_summary(stderr, errors, warnings);
            if (r == 1)
                fprintf(stderr, "sluicec diff: '%s' has errors\n", paths[k]);
            rc = 2;
        }
    }
    if (rc == 0) {
        slc_buf out = {0};
        rc = slc_diff(s[0], s[1], json, &out) ? 1 : 0;
        if (out.p)
            fwrite(out.p, 1, out.len, stdout);
        slc_buf_free(&out);
    }
    slc_arena_free(&a);
    return rc;
}

static int cmd_presets(int argc, char **argv)
{
    if (argc) {
        fprintf(stderr, "sluicec presets: unknown argument '%s'\n%s", argv[0], usage);
        return 2;
    }
    size_t n;
    const slc_preset *ps = slc_preset_all(&n);
    for (size_t i = 0; i < n; i++) {
        const slc_preset *p = &ps[i];
        if (p->kind == SLC_KIND_MOCK) {
            printf("%s\tmock\t-\t-\tnothing (answers locally)\n", p->name);
            continue;
        }
        if (p->kind == SLC_KIND_VERTEX) {
            printf("%s\tvertex\thttps://{location}-aiplatform.googleapis.com/v1\tAuthorization: Bearer "
                   "(OAuth token)\tproject, location, credentials\n",
                   p->name);
            continue;
        }
        /* The key header as the preset or, without one of its own, the
         * protocol's adapter (runtime/providers/) sends it; presets.test.mjs
         * checks what really goes out against the providers' docs. */
        const char *auth = p->auth ? p->auth
                           : p->kind == SLC_KIND_ANTHROPIC ? "x-api-key: %s"
                           : p->kind == SLC_KIND_GEMINI    ? "x-goog-api-key: %s"
                                                           : "Authorization: Bearer %s";
        int hl = (int)(strstr(auth, "%s") - auth);
        while (hl > 0 && (auth[hl - 1] == ' ' || auth[hl - 1] == ':'))
            hl--;
        if (p->kind == SLC_KIND_BEDROCK) {
            printf("%s\tbedrock\thttps://bedrock-runtime.{region}.amazonaws.com\tSigV4\tregion (AWS "
                   "credentials from AWS_* or credentials:)\n",
                   p->name);
            continue;
        }
        printf("%s\t%s\t%s\t%.*s\t%s\n", p->name, slc_kind_name(p->kind),
               p->url_style == SL_URL_AZURE ? "https://{resource}.openai.azure.com" : p->base_url,
               hl, auth,
               p->url_style == SL_URL_AZURE ? "api_key, api_version, resource or base_url"
               : p->key_required            ? "api_key"
                                            : "nothing (api_key optional)");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("sluicec %s (spec format %d)\n", SLUICEC_VERSION, SLC_SPEC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "build") == 0)
        return cmd_build(argc - 2, argv + 2);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - 2, argv + 2);
    if (strcmp(cmd, "explain") == 0)
        return cmd_explain(argc - 2, argv + 2);
    if (strcmp(cmd, "diff") == 0)
        return cmd_diff(argc - 2, argv + 2);
    if (strcmp(cmd, "presets") == 0)
        return cmd_presets(argc - 2, argv + 2);
    fprintf(stderr, "sluicec: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
