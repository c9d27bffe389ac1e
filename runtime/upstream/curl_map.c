/*
 * libcurl's vocabulary in sluice's terms: the name of each transfer result,
 * which CURLcode means which result, and which easy options a provider's
 * `tls:` block sets. Split from upstream.c, which keeps the multi handle,
 * the libev glue and the transfer lifecycle.
 */
#include <curl/curl.h>

#include "table.h"
#include "upstream/upstream.h"
#include "upstream/upstream_internal.h"

const char *sl_xfer_result_name(sl_xfer_result r)
{
    switch (r) {
    case SL_XFER_OK: return "ok";
    case SL_XFER_CONNECT: return "connect";
    case SL_XFER_TIMEOUT_FIRST_BYTE: return "first_byte_timeout";
    case SL_XFER_TIMEOUT_IDLE: return "idle_timeout";
    case SL_XFER_TIMEOUT_TOTAL: return "total_timeout";
    case SL_XFER_RESET: return "reset";
    case SL_XFER_ERROR: return "error";
    case SL_XFER_TLS: return "tls";
    case SL_XFER_AUTH: return "auth";
    }
    return "error";
}

sl_xfer_result sl_upstream_map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return SL_XFER_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return SL_XFER_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return SL_XFER_TIMEOUT_TOTAL;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return SL_XFER_RESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CLIENTCERT:
        return SL_XFER_TLS;
    default: return SL_XFER_ERROR;
    }
}

/* A provider's `tls:` (table.h). Paths go to libcurl as the spec wrote
 * them; the gateway checked at start that they load. */
void sl_upstream_set_tls(CURL *e, const sl_provider_tls *t)
{
    if (t->ca) {
        /* The provider's CAs instead of the system's: libcurl would also
         * consult its built-in CA directory (Debian's: /etc/ssl/certs). */
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
    }
    if (t->client_cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->client_cert);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->client_key);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (!t->verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}
