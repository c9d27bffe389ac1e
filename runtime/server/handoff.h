/*
 * Listener hand-off between two gateway processes over a unix control
 * socket. The running instance offers its listening sockets (SCM_RIGHTS)
 * to whoever connects with its uid; the new instance checks them, starts
 * serving on them and says READY, and only then does the old one stop
 * accepting and drain. Until READY the old instance keeps accepting, so a
 * new binary that fails to start, refuses the address or dies mid-way
 * costs nothing: the old one simply carries on.
 *
 * Wire (SOCK_SEQPACKET, one line per message):
 *   old -> new  "SLUICE-HANDOFF 1 pid=P fds=N listen=ADDR\n" + up to 64 fds,
 *               then "+" messages carrying the rest, 64 at a time
 *   new -> old  "READY pid=P\n" or "REFUSE reason\n"
 *   old -> new  "DRAINING\n"
 */
#ifndef SLUICE_HANDOFF_H
#define SLUICE_HANDOFF_H

#include <stddef.h>

#include "server/listen.h"

struct ev_loop;

/* ---- the running instance -------------------------------------------- */

typedef struct sl_handoff sl_handoff;

/* The new instance said READY; called on `loop`'s thread. */
typedef void (*sl_handoff_taken_fn)(void *ud, long new_pid);

/* Binds the control socket at `path` (mode 0600, replacing a stale socket
 * or, atomically, the socket of the instance this one took over from) and
 * serves hand-offs on `loop` once sl_handoff_offer has named the
 * listeners. NULL with err filled when the path is unusable or a live
 * instance still answers there: checked before this one binds anything. */
sl_handoff *sl_handoff_serve(struct ev_loop *loop, const char *path, sl_handoff_taken_fn taken,
                             void *ud, char *err, size_t errlen);
/* The listeners to hand over, fds[0..n), and their printable address (for
 * the new instance's messages). The fds stay the caller's. */
void sl_handoff_offer(sl_handoff *h, const int *fds, int n, const char *listen);
/* Stops serving; removes the path unless another instance has replaced it
 * since. Call on the loop's thread (or after it stopped). NULL is fine. */
void sl_handoff_close(sl_handoff *h);

/* ---- the new instance --------------------------------------------------- */

typedef struct sl_handoff_client {
    int conn;
    long old_pid;
    char listen[128];            /* the address the old instance serves */
    int fds[SL_LISTEN_MAX];
    int nfds;
} sl_handoff_client;

/* Connects to `path` and receives the listeners. -1 with err filled (and
 * nothing held) when there is no instance or the exchange is malformed. */
int sl_handoff_connect(const char *path, sl_handoff_client *c, char *err, size_t errlen);
/* Tells the old instance no (it keeps serving) and releases everything. */
void sl_handoff_refuse(sl_handoff_client *c, const char *why);
/* Tells the old instance to drain and waits (bounded) for its answer. The
 * fds stay with the caller; the connection is closed. -1 with err filled
 * when the old instance did not confirm (the caller still has the fds). */
int sl_handoff_commit(sl_handoff_client *c, char *err, size_t errlen);

#endif
