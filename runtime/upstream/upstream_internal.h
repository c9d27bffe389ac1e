/*
 * What the upstream module's files share: the state of a loop's multi
 * handles (upstream.c runs transfers on it, watch.c binds it to libev), and
 * the translation between libcurl and sluice's terms (curl_map.c,
 * pass_headers.c).
 */
#ifndef SLUICE_UPSTREAM_INTERNAL_H
#define SLUICE_UPSTREAM_INTERNAL_H

#include <curl/curl.h>
#include <ev.h>
#include <stddef.h>

#include "table.h"
#include "upstream/upstream.h"
#include "upstream/urlcache.h"

#define EASY_POOL_MAX 1024
/* HTTP/1.1-over-TLS transfers per multi handle (see shard_for) and how
 * long an emptied extra one keeps its idle connections (CURLOPT_MAXAGE_CONN
 * would not reuse them after that anyway). */
#define SL_UPSTREAM_SHARD_ACTIVE 256
#define SL_UPSTREAM_SHARD_IDLE_S 30.

struct sl_upstream {
    struct ev_loop *loop;
    CURLM *multi;
    /* TLS sessions shared by this loop's transfers (see sl_upstream_new);
     * the first multi's, used by all of them. */
    CURLSH *share;
    /* Further multi handles of this loop for HTTP/1.1 over TLS (sl_upstream_shard_for),
     * chained from the first; `reap` frees an extra one left idle. */
    sl_upstream *next_shard;
    sl_upstream *first;
    unsigned all_active; /* the first one's: `active` summed over all */
    ev_timer reap;
    ev_timer timer;
    unsigned active;
    int in_action;   /* inside curl_multi_socket_action */
    /* Finished easy handles kept for the next transfer: creating one costs
     * several allocations and a fresh set of internal buffers. They keep
     * their options (see easy_take), so each remembers its `tls:`. */
    CURL *pool[EASY_POOL_MAX];
    const sl_provider_tls *pool_tls[EASY_POOL_MAX];
    unsigned pooled;
    /* Sockets curl asked us to watch when allocating their watcher failed:
     * polled from the timer until their transfers end. */
    curl_socket_t lost[16];
    unsigned lost_count;
    /* Every socket watcher by descriptor, parked ones included (see
     * socket_cb); grown on demand. */
    struct sock_watch **byfd;
    size_t nbyfd;
    /* Descriptors curl opened through sl_upstream_open_cb and has not yet
     * closed through sl_upstream_close_cb (see socket_cb); grown on demand. */
    unsigned char *opened;
    size_t nopened;
    sl_urlcache urls; /* parsed URLs: libcurl need not parse them per transfer */
    /* Transfers whose request may still sit in curl's upload buffer
     * (release_uploads). */
    struct sl_xfer *uploading;
};

typedef struct sock_watch {
    ev_io io;
    sl_upstream *u;
    curl_socket_t fd;
    int parked; /* curl let go of the socket; it sits in curl's connection cache */
} sock_watch;

/* Collects the loop's finished transfers and runs their callbacks
 * (upstream.c); called after every curl_multi_socket_action. */
void sl_upstream_check_done(sl_upstream *u);

/* CURLOPT_OPENSOCKETFUNCTION: opens a connection socket as curl would and
 * remembers it as one sl_upstream_close_cb will see. */
curl_socket_t sl_upstream_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a);

/* CURLOPT_CLOSESOCKETFUNCTION: drops the socket's watcher, then closes it. */
int sl_upstream_close_cb(void *clientp, curl_socket_t fd);

/* The multi handle of u's loop an HTTP/1.1-over-TLS transfer goes to. */
sl_upstream *sl_upstream_shard_for(sl_upstream *u);

/* The outcome a finished transfer's libcurl code stands for. */
sl_xfer_result sl_upstream_map_curl(CURLcode rc);

/* Sets a provider's `tls:` options on an easy handle. */
void sl_upstream_set_tls(CURL *e, const sl_provider_tls *t);

/* Whether a response header goes back to the client: on the allow-list
 * (pass_headers.c), a valid field name and a clean value of bounded size. */
int sl_upstream_header_passes(const char *name, size_t name_len, const char *v, size_t vlen);

#endif
