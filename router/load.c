/*
 * load.c: a user's state (roster, blocklist, whether offline messages wait) comes from
 * the store in one request when first needed: when a session binds, or when a stanza
 * arrives for a user of this shard that is not in memory; each module takes its part of
 * the answer (the user_state hook: roster.c, block.c, offline.c). Until it is in, every
 * frame for that user waits in the user's queue (a copy: the ring's bytes are released),
 * and is then processed in arrival order, so nothing is reordered or lost. The queue
 * holds router.max_pending bytes of stanzas; past that a stanza gets resource-constraint.
 */
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void loaded(struct shard *s, struct user *u)
{
    u->state = USER_READY;
    mod_user_loaded(s, u); /* before the frames that waited for the state */
    /* Replay in order. A replayed frame may queue nothing new: the state is here. */
    u->busy++;
    while (u->pend_head) {
        struct pending *p = u->pend_head;
        u->pend_head = p->next;
        if (!u->pend_head)
            u->pend_tail = NULL;
        u->pend_bytes -= p->len;
        /* The frame carries on the work that queued it, under its ticket. */
        struct ticket *was = s->cur;
        s->cur = p->t;
        shard_frame(s, p->kind, p->payload, p->len);
        s->cur = was;
        ticket_defer(s, p->t);
        free(p);
    }
    /* Sessions re-registered after a router restart came with their presence, and were
     * never "initial": messages stored while they were away from this router (one sent
     * before the owner's re-registration reached it) go to them now. */
    for (struct session *ss = u->sessions; ss; ss = ss->next)
        if (ss->available && ss->priority >= 0)
            mod_receiving(s, u, ss);
    if (u->rehome_due)
        node_rehomed(s, u);
    u->busy--;
    user_release(&s->users, u);
}

static void on_roster(void *arg, int res, const struct store_roster *r)
{
    struct user *u = arg;
    struct shard *s = shard_current;
    u->busy--;
    if (res == 0) {
        u->exists = true;
    } else if (res == -ENOENT) {
        u->exists = false; /* no such account: inbound stanzas get errors */
    } else {
        /* The store failed: serve from an empty state rather than hold frames forever. */
        LOG_ERROR("shard %u: cannot load the roster of %s: %s", s->idx, u->bare, strerror(-res));
        u->exists = u->sessions != NULL;
        u->load_failed = true;
    }
    mod_user_state(s, u, res, res == 0 ? r : NULL); /* the roster, blocklist, offline flag */
    loaded(s, u);
}

void load_start(struct shard *s, struct user *u)
{
    if (u->state != USER_COLD)
        return;
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);
    u->state = USER_LOADING;
    u->busy++; /* the callback gives it back */
    if (store_roster_get(s->store, user, on_roster, u) < 0)
        on_roster(u, -EIO, NULL);
}

/* Over the user's bound, a stanza is answered instead of queued. Frames that must not
 * be lost are queued whatever the size: a session's end, and what the server made
 * itself (bounded by what caused it). Errors and results cannot be answered (RFC 6120
 * §8.3.1): dropped, as an undeliverable one is. */
static bool refuse(struct shard *s, struct user *u, uint16_t kind, const void *payload,
                   uint32_t len)
{
    struct stanza st;
    if ((uint64_t)u->pend_bytes + len <= s->cfg->router.max_pending || !u->pend_head)
        return false;
    if ((kind != PROTO_STANZA && kind != RK_INBOUND) || !stanza_parse(payload, len, &st) ||
        (st.h->flags & ROUTE_GENERATED))
        return false;
    LOG_RL(LOG_LEVEL_WARN, "shard %u: %s has %u bytes waiting for its state: a stanza refused",
           s->idx, u->bare, u->pend_bytes);
    out_error(s, &st, "wait", "resource-constraint");
    return true;
}

bool load_ready(struct shard *s, struct user *u, uint16_t kind, const void *payload, uint32_t len)
{
    if (u->state == USER_READY)
        return true;
    if (refuse(s, u, kind, payload, len))
        return false;
    struct pending *p = malloc(sizeof *p + len);
    if (!p) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a frame for %s is lost", s->idx,
               u->bare);
        return false;
    }
    p->next = NULL;
    p->t = ticket_hold(s->cur);
    p->kind = kind;
    p->len = len;
    memcpy(p->payload, payload, len);
    if (u->pend_tail)
        u->pend_tail->next = p;
    else
        u->pend_head = p;
    u->pend_tail = p;
    u->pend_bytes += len;
    load_start(s, u);
    return false;
}
