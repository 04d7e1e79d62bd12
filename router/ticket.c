#include "router/ticket.h"
#include "router/router.h"
#include "common/core/log.h"

#include <stdlib.h>

struct ticket *ticket_new(struct shard *s)
{
    struct ticket *t = s->tickets.spare;
    if (t)
        s->tickets.spare = t->next;
    else if (!(t = malloc(sizeof *t)))
        return NULL;
    atomic_init(&t->refs, 1);
    t->end = 0;
    t->next = NULL;
    t->owner = s;
    return t;
}

static void put(struct ticket *t)
{
    /* Release: everything this reference covered (frames published, store writes done)
     * happens before the owner sees zero; pairs with the acquire load in done(). */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_release) != 1)
        return;
    struct shard *o = t->owner;
    if (o == shard_current)
        return; /* we are the owner: the settle that follows sees it */
    /* Dekker: pairs with the seq_cst fence of the owner's bell_prepare_sleep(), which
     * re-checks ticket_pending() after it: either it sees zero or we see it sleeping. */
    atomic_thread_fence(memory_order_seq_cst);
    if (bell_claim(&o->bell))
        bell_ring(&o->bell);
}

void ticket_defer(struct shard *s, struct ticket *t)
{
    struct ticket_state *ts = &s->tickets;
    if (!t)
        return;
    if (ts->ndefer == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 64;
        struct ticket **d = realloc(ts->defer, cap * sizeof *d);
        if (!d) {
            /* Dropping now may release a frame a moment early: only a crash in that
             * moment could lose it. Better than never releasing. */
            put(t);
            return;
        }
        ts->defer = d;
        ts->cap = cap;
    }
    ts->defer[ts->ndefer++] = t;
}

static bool done(const struct ticket *t)
{
    return atomic_load_explicit(&t->refs, memory_order_acquire) == 0;
}

static void recycle(struct shard *s, struct ticket *t)
{
    t->next = s->tickets.spare;
    s->tickets.spare = t;
}

void ticket_batch_end(struct shard *s, unsigned fe, struct ticket *t, uint64_t end)
{
    struct ticket_queue *q = &s->held[fe];
    /* Relaxed: every reference was taken on this thread, while t was current. */
    if (t && atomic_load_explicit(&t->refs, memory_order_relaxed) > 1) {
        t->end = end;
        t->next = NULL;
        if (q->tail)
            q->tail->next = t;
        else
            q->head = t;
        q->tail = t;
        s->tickets.nheld++;
        ticket_defer(s, t);
        return;
    }
    if (t)
        recycle(s, t);
    if (q->tail) {
        q->tail->end = end; /* finished, but behind one that is not */
    } else {
        s->tickets.nheld += !q->due;
        q->due = true;
        q->release = end; /* after the publish that follows */
    }
}

void ticket_queue_drop(struct shard *s, struct ticket_queue *q)
{
    while (q->head) {
        struct ticket *t = q->head;
        q->head = t->next;
        t->next = s->tickets.orphans;
        s->tickets.orphans = t;
        s->tickets.nheld--;
    }
    q->tail = NULL;
    s->tickets.nheld -= q->due;
    q->due = false;
}

void ticket_settle(struct shard *s)
{
    struct ticket_state *ts = &s->tickets;
    if (!ts->ndefer && !ts->nheld && !ts->orphans)
        return; /* most rounds of an idle or quiet shard */
    for (size_t i = 0; i < ts->ndefer; i++)
        put(ts->defer[i]);
    ts->ndefer = 0;
    for (struct ticket **pp = &ts->orphans; *pp;) {
        struct ticket *t = *pp;
        if (done(t)) {
            *pp = t->next;
            recycle(s, t);
        } else {
            pp = &t->next;
        }
    }
    for (unsigned fe = 0; ts->nheld && fe < s->nfe; fe++) {
        struct ticket_queue *q = &s->held[fe];
        bool any = q->due;
        uint64_t end = q->release;
        if (q->due) {
            q->due = false;
            ts->nheld--;
        }
        while (q->head && done(q->head)) {
            struct ticket *t = q->head;
            q->head = t->next;
            end = t->end;
            any = true;
            recycle(s, t);
            ts->nheld--;
        }
        if (!q->head)
            q->tail = NULL;
        if (any && ring_release_to(&s->from_fe[fe], end))
            bell_ring(s->from_fe[fe].peer);
    }
}

bool ticket_pending(struct shard *s)
{
    for (unsigned fe = 0; s->tickets.nheld && fe < s->nfe; fe++)
        if (s->held[fe].head && done(s->held[fe].head))
            return true;
    return false;
}

void ticket_state_free(struct ticket_state *ts)
{
    while (ts->spare) {
        struct ticket *t = ts->spare;
        ts->spare = t->next;
        free(t);
    }
    while (ts->orphans) {
        struct ticket *t = ts->orphans;
        ts->orphans = t->next;
        free(t);
    }
    free(ts->defer);
    ts->defer = NULL;
    ts->ndefer = ts->cap = 0;
}
