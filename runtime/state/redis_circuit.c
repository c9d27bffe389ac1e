/*
 * Shared circuits (`share_circuits: true`): once a second, worker 0 tells
 * Redis which targets this replica's breakers hold open and until when
 * (wall-clock ms, in the hash PREFIX "circuits", one field per target:
 * "entry|provider|model"), and opens here what other replicas hold open.
 * So one replica's failures cool a target for every replica within about
 * a second, and each replica still probes a target itself when its
 * cooldown ends. Nothing of this is on the request path.
 */
#include "state/redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "route/health.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The field naming target i: the same on every replica built from the
 * same routes, whatever the order of the table. */
static void target_name(const sl_table *t, uint32_t i, char *out, size_t cap)
{
    const char *entry = "";
    for (uint32_t m = 0; m < t->model_count; m++)
        if (i >= t->models[m].target_first && i < t->models[m].target_first + t->models[m].target_count)
            entry = t->models[m].name;
    const sl_target *tg = &t->targets[i];
    snprintf(out, cap, "%s|%s|%s", entry, t->providers[tg->provider].name, tg->model ? tg->model : "*");
}

static void circuits_reply(sl_state_pending *p, redisReply *reply)
{
    sl_state_worker *w = p->w;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    const sl_table *t = w->t;
    int64_t now_wall = wall_ms(), now_mono = sl_health_now_ms();
    char name[512];
    for (uint32_t i = 0; i < t->target_count; i++) {
        target_name(t, i, name, sizeof name);
        for (size_t j = 0; j + 1 < reply->elements; j += 2) {
            const redisReply *f = reply->element[j], *v = reply->element[j + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || strcmp(f->str, name) != 0)
                continue;
            int64_t until = strtoll(v->str, NULL, 10);
            /* Longer than an hour is no cooldown a spec can ask for. */
            if (until > now_wall && until - now_wall <= 3600000)
                sl_health_open_until(i, now_mono + (until - now_wall));
        }
    }
}

static void tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    sl_state_worker *w = timer->data;
    if (!w->ac || !w->connected)
        return;
    const sl_table *t = w->t;
    int64_t now_wall = wall_ms(), now_mono = sl_health_now_ms();
    char name[512];
    /* What this replica holds open that Redis does not know yet. */
    sl_state_pending *p = NULL;
    for (uint32_t i = 0; i < t->target_count; i++) {
        uint32_t fails;
        int64_t left;
        if (sl_health_state_of(i, now_mono, &fails, &left) != SL_HEALTH_OPEN)
            continue;
        int64_t until = now_wall + left;
        if (until <= w->circuit_sent[i] + 500)
            continue;
        if (!p) {
            p = sl_redis_pending_new(w);
            if (!p || sl_redis_arg(p, "HSET") | sl_redis_arg(p, "%scircuits", w->rs->prefix)) {
                free(p);
                return;
            }
            p->publish = 1;
        }
        target_name(t, i, name, sizeof name);
        if (sl_redis_arg(p, "%s", name) | sl_redis_arg(p, "%lld", (long long)until))
            break; /* the rest next second */
        w->circuit_sent[i] = until;
    }
    if (p && sl_redis_send(p) != 0)
        free(p);
    sl_state_pending *q = sl_redis_pending_new(w);
    if (!q)
        return;
    q->raw = circuits_reply;
    if (sl_redis_arg(q, "HGETALL") | sl_redis_arg(q, "%scircuits", w->rs->prefix) || sl_redis_send(q) != 0)
        free(q);
}

int sl_redis_circuits_start(sl_state_worker *w)
{
    w->circuit_sent = calloc(w->t->target_count ? w->t->target_count : 1, sizeof *w->circuit_sent);
    if (!w->circuit_sent)
        return -1;
    ev_timer_init(&w->circuit_timer, tick, 1.0, 1.0);
    w->circuit_timer.data = w;
    ev_timer_start(w->loop, &w->circuit_timer);
    return 0;
}

void sl_redis_circuits_stop(sl_state_worker *w)
{
    if (w->circuit_sent)
        ev_timer_stop(w->loop, &w->circuit_timer);
    free(w->circuit_sent);
    w->circuit_sent = NULL;
}
