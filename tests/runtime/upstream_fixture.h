/*
 * The upstream client's test fixture, shared by test_upstream*.c: a small
 * loopback HTTP server on 127.0.0.1:0 in the same libev loop as the
 * transfers, scripted per test (see scenario), and the client callbacks
 * that record what a transfer delivered. Each test gets a fresh loop and
 * upstream from setup(); group_setup() keeps proxies from the environment
 * out and initialises libcurl.
 */
#ifndef SLUICE_TEST_UPSTREAM_FIXTURE_H
#define SLUICE_TEST_UPSTREAM_FIXTURE_H

#include <ev.h>
#include <stddef.h>

#include "upstream/upstream.h"

typedef enum scenario {
    SC_HEADERS,    /* full response with a spread of headers */
    SC_PIECES,     /* chunked; each chunk sent when the client asks */
    SC_SILENT,     /* reads the request, never answers */
    SC_STALL,      /* head and part of the body, then nothing */
    SC_CLOSE_MID,  /* head with Content-Length 100, 10 bytes, close */
    SC_CLOSE_NOW,  /* reads the request and closes without a byte */
    SC_REDIRECT,   /* 302 with Location */
    SC_STATUS,     /* status/headers from the test's canned_head */
    SC_TRICKLE,    /* one body byte every 50 ms, forever */
    SC_EARLY_HINTS,/* 103 interim response, then 200 */
} scenario;

typedef struct srv {
    struct ev_loop *loop;
    int lfd;
    int port;
    ev_io accept_io;
    scenario sc;
    const char *canned; /* SC_STATUS: whole response */
    int cfd;            /* the one client connection being served, or -1 */
    ev_io conn_io;
    ev_timer trickle;
    char req[16384];
    size_t req_len;
    int requests;       /* complete requests seen */
    char last_req[16384];
    size_t last_req_len;
    size_t body_left;   /* request body bytes still to come */
    size_t body_seen;   /* request body bytes received */
    double answered_at; /* loop time the last complete request was answered */
    int piece;          /* SC_PIECES: chunks sent */
    int peer_closed;    /* the client closed its side */
    int break_on_close; /* ev_break when the client closes */
} srv;

typedef struct fixture {
    struct ev_loop *loop;
    sl_upstream *u;
    srv s;
    sl_xfer *x;
    ev_timer guard;
    int guard_fired;
    ev_timer resume_timer;

    /* what the callbacks saw */
    int heads, datas, dones;
    int status;
    char content_type[128];
    int has_content_type;
    char pass[4096];
    int retry_after;
    char data[4096];
    size_t data_len;
    char first_delivery[256];
    size_t first_delivery_len;
    char second_delivery[256];
    size_t second_delivery_len;
    sl_xfer_result result;
    char detail[256];

    /* how the callbacks behave */
    int lockstep;         /* ask the server for the next piece from on_data */
    int cancel_in_head;
    int cancel_in_data;   /* on the first piece */
    int cancel_in_done;
    int pause_first;      /* SL_XFER_PAUSE once, resume after resume_after s */
    double resume_after;
    int abort_in_data;    /* return 0 */
} fixture;

extern const sl_xfer_callbacks cbs;

/* Listens (or only binds, do_listen 0) on 127.0.0.1 at a free port. */
int listen_loopback(int do_listen, int *port);
void guard_cb(struct ev_loop *loop, ev_timer *t, int revents);
int setup(void **state);
int teardown(void **state);
int group_setup(void **state);
int group_teardown(void **state);
sl_xfer_spec spec_for(fixture *f, const char *path, char *url, size_t url_cap);
void run(fixture *f, const sl_xfer_spec *sp, double max_s);
double now_s(fixture *f);

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
