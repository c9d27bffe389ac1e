/*
 * The container credentials endpoint (see container.h). One blocking
 * libcurl easy request per fetch: it runs at start and on creds.c's
 * refresh thread, never on a worker loop.
 */
#define _GNU_SOURCE
#include "aws/container.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/secret.h"
#include "core/buf.h"

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    sl_buf *b = ud;
    if (b->len + size * n > 65536 || sl_buf_append(b, p, size * n) != 0)
        return 0;
    return size * n;
}

/* http:// is allowed only to this host or the ECS/EKS agent. */
static int host_allowed(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return 1;
    if (strncmp(url, "http://", 7) != 0)
        return 0;
    static const char *const ok[] = {"127.", "localhost", "[::1]", "169.254.170.2", "169.254.170.23",
                                     "[fd00:ec2::23]"};
    const char *h = url + 7;
    size_t hn = strcspn(h, ":/");
    if (h[0] == '[')
        hn = strcspn(h, "]") + 1;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        if (ok[i][n - 1] == '.' ? strncmp(h, ok[i], n) == 0 : (hn == n && strncmp(h, ok[i], n) == 0))
            return 1;
    }
    return 0;
}

static char *auth_token(char *err, size_t errlen)
{
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char *t = NULL;
    if (file && *file) {
        FILE *f = fopen(file, "rb");
        if (!f) {
            snprintf(err, errlen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s", file);
            return (char *)-1;
        }
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        buf[n] = '\0';
        t = strdup(buf);
        explicit_bzero(buf, sizeof buf);
    } else if (getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN") && *getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        t = strdup(getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    if (t && strpbrk(t, "\r\n")) {
        free(t);
        snprintf(err, errlen, "the container authorization token holds a line break");
        return (char *)-1;
    }
    return t;
}

static time_t parse_time(const char *s)
{
    struct tm tm = {0};
    const char *e = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    return e ? timegm(&tm) : 0;
}

int sl_aws_container_fetch(sl_aws_creds *c, time_t *expires, char *err, size_t errlen)
{
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    char url[2048];
    if (rel && *rel)
        snprintf(url, sizeof url, "http://169.254.170.2%s", rel);
    else if (full && *full)
        snprintf(url, sizeof url, "%s", full);
    else {
        snprintf(err, errlen, "credentials: container, but neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                              "AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
        return -1;
    }
    if (!host_allowed(url)) {
        snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI over plain HTTP must name a loopback host or "
                              "the ECS/EKS agent (169.254.170.2, 169.254.170.23, fd00:ec2::23)");
        return -1;
    }
    char *tok = auth_token(err, errlen);
    if (tok == (char *)-1)
        return -1;
    CURL *h = curl_easy_init();
    sl_buf body = {0};
    struct curl_slist *hl = NULL;
    char *line = NULL;
    if (tok && asprintf(&line, "Authorization: %s", tok) > 0)
        hl = curl_slist_append(NULL, line);
    sl_secret_free(tok);
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(hl);
    sl_secret_free(line);
    if (rc != CURLE_OK || status != 200) {
        snprintf(err, errlen, "container credentials endpoint: %s",
                 rc != CURLE_OK ? curl_easy_strerror(rc) : status == 401 || status == 403 ? "refused (HTTP 401/403)"
                                                                                           : "unexpected HTTP status");
        sl_buf_free(&body);
        return -1;
    }
    json_t *j = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
    if (body.data)
        explicit_bzero(body.data, body.len);
    sl_buf_free(&body);
    const char *k = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *s = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *t = json_string_value(json_object_get(j, "Token"));
    int ok = k && *k && s && *s && !strpbrk(k, "\r\n") && !strpbrk(s, "\r\n") && (!t || !strpbrk(t, "\r\n"));
    if (ok) {
        c->key_id = strdup(k);
        c->secret = strdup(s);
        c->token = t && *t ? strdup(t) : NULL;
        *expires = parse_time(json_string_value(json_object_get(j, "Expiration")));
        ok = c->key_id && c->secret && (!t || !*t || c->token);
    }
    json_decref(j);
    if (!ok) {
        free(c->key_id);
        free(c->secret);
        free(c->token);
        memset(c, 0, sizeof *c);
        snprintf(err, errlen, "container credentials endpoint: the answer has no AccessKeyId/SecretAccessKey");
        return -1;
    }
    return 0;
}
