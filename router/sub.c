/*
 * sub.c: presence subscriptions, RFC 6121 §3 with Appendix A as the specification. A
 * roster item's state is (sub: none/to/from/both, ask = pending out, pending_in), named
 * as in Appendix A: "None + Pending Out" is (none, ask), "To + Pending In" is (to,
 * pending_in), and so on.
 *
 * Outbound, the user U sends to contact C (A.2, in U's shard; the front end stamped the
 * stanza with U's bare JID, §3.1.2):
 *   subscribe     none→none+PO, none+PI→none+PO+PI, from→from+PO; always routed
 *   unsubscribe   none+PO→none, none+PO+PI→none+PI, to→none, to+PI→none+PI,
 *                 from+PO→from, both→from; always routed
 *   subscribed    none+PI→from, none+PO+PI→from+PO, to+PI→both: routed, then U's
 *                 presence goes to C; without pending-in it is a pre-approval (§3.4):
 *                 approved is set and nothing is routed; from/both: nothing
 *   unsubscribed  none+PI→none, none+PO+PI→none+PO, to+PI→to, from→none,
 *                 from+PO→none+PO, both→to: routed, then U's unavailable presence goes
 *                 to C when C had U's presence; a pre-approval is cancelled
 * Inbound, C's shard receives from U (A.3):
 *   subscribe     from/both: answered "subscribed" at once; pre-approved: approved and
 *                 answered; pending-in already: dropped; else →pending-in, kept in the
 *                 store until answered (redelivered at every login) and delivered to
 *                 C's resources
 *   unsubscribe   none+PI→none, none+PO+PI→none+PO, to+PI→to, from→none,
 *                 from+PO→none+PO, both→to; delivered when the state changed, then
 *                 C's unavailable presence goes to U when U had C's presence
 *   subscribed    none+PO→to, none+PO+PI→to+PI, from+PO→both; else ignored
 *   unsubscribed  none+PO→none, none+PO+PI→none+PI, to→none, to+PI→none+PI,
 *                 from+PO→from, both→from; else ignored
 * Every change is saved and pushed (roster.c). An item that exists only for state
 * (someone asked C, who never added them) is hidden from C's roster.
 */
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/xmlw.h"

#include <stdlib.h>
#include <string.h>

static bool has_to(const struct roster_item *it)
{
    return it->sub == STORE_SUB_TO || it->sub == STORE_SUB_BOTH;
}

static bool has_from(const struct roster_item *it)
{
    return it->sub == STORE_SUB_FROM || it->sub == STORE_SUB_BOTH;
}

static void set_to(struct roster_item *it, bool on)
{
    bool from = has_from(it);
    it->sub = on ? (from ? STORE_SUB_BOTH : STORE_SUB_TO) : (from ? STORE_SUB_FROM : STORE_SUB_NONE);
}

static void set_from(struct roster_item *it, bool on)
{
    bool to = has_to(it);
    it->sub = on ? (to ? STORE_SUB_BOTH : STORE_SUB_FROM) : (to ? STORE_SUB_TO : STORE_SUB_NONE);
}

/* A hidden item with nothing left in it is deleted; anything else is saved. */
static void commit(struct shard *s, struct user *u, struct roster_item *it)
{
    if (it->hidden && it->sub == STORE_SUB_NONE && !it->ask && !it->pending_in && !it->approved) {
        roster_changed(s, u, it, true);
        roster_remove(&u->roster, it);
        return;
    }
    roster_changed(s, u, it, false);
}

static void on_stored(void *arg, int res)
{
    struct user *u = arg;
    struct shard *s = shard_current;
    if (res < 0)
        LOG_ERROR("shard %u: a subscription request for %s was not saved", s->idx, u->bare);
    u->busy--;
    user_release(&s->users, u);
}

/* jid: NUL-terminated (a roster item's). */
static void subreq_drop(struct shard *s, struct user *u, const char *jid)
{
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);
    u->busy++;
    if (store_subreq_delete(s->store, user, jid, on_stored, u) < 0)
        on_stored(u, 0);
}

/* A subscription stanza of ours, from `from` (a bare JID of this shard) to `to`. */
static void answer(struct shard *s, const char *from, size_t from_len, const char *to,
                   size_t to_len, uint8_t type, const char *name)
{
    struct buf b = {0};
    buf_puts(&b, "<presence type='");
    buf_puts(&b, name);
    buf_puts(&b, "'");
    xmlw_attr(&b, "from", from, from_len);
    xmlw_attr(&b, "to", to, to_len);
    buf_puts(&b, "/>");
    route_generated(s, from, from_len, from_len, to, to_len, to_len, PROTO_PRESENCE, type,
                    buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* Room in u's roster for one more item of a JID of len bytes (roster.max_items,
 * roster.max_bytes)? */
static bool room_for(const struct shard *s, const struct user *u, size_t len)
{
    return u->roster.count < s->cfg->roster.max_items &&
           u->roster.bytes + len <= s->cfg->roster.max_bytes;
}

/* A new item for the stanza's contact, unless the roster is full (not-allowed). */
static struct roster_item *item_add(struct shard *s, struct user *u, const struct stanza *st)
{
    struct roster_item *it = NULL;
    if (!room_for(s, u, st->to_bare_len))
        out_error(s, st, "cancel", "not-allowed");
    else if (!(it = roster_add(&u->roster, st->to, st->to_bare_len)))
        out_error(s, st, "wait", "resource-constraint");
    return it;
}

void sub_outbound(struct shard *s, struct user *u, const struct stanza *st)
{
    const char *c = st->to;
    size_t clen = st->to_bare_len;
    struct roster_item *it = roster_find(&u->roster, c, clen);

    switch (st->h->type) {
    case PROTO_PRES_SUBSCRIBE:
        if (!it && !(it = item_add(s, u, st)))
            return;
        if (it->hidden || (!has_to(it) && !it->ask)) {
            it->hidden = false; /* the user asked: the contact is now in the roster */
            if (!has_to(it))
                it->ask = true;
            commit(s, u, it);
        }
        route_forward(s, st);
        return;
    case PROTO_PRES_UNSUBSCRIBE:
        if (it && (it->ask || has_to(it))) {
            it->ask = false;
            set_to(it, false);
            commit(s, u, it);
        }
        route_forward(s, st);
        return;
    case PROTO_PRES_SUBSCRIBED:
        if (it && it->pending_in) {
            it->pending_in = false;
            it->approved = false;
            it->hidden = false;
            set_from(it, true);
            commit(s, u, it);
            route_forward(s, st);
            subreq_drop(s, u, it->jid);
            /* §3.1.5: the contact gets the user's current presence at once. */
            presence_send_all(s, u, c, clen, false);
        } else if (!it || !has_from(it)) {
            /* §3.4: a pre-approval; the stanza itself goes nowhere. */
            if (!it && !(it = item_add(s, u, st)))
                return;
            if (!it->approved || it->hidden) {
                it->approved = true;
                it->hidden = false;
                commit(s, u, it);
            }
        }
        return;
    case PROTO_PRES_UNSUBSCRIBED:
        if (!it) {
            route_forward(s, st);
            return;
        }
        if (it->pending_in || has_from(it) || it->approved) {
            bool had_from = has_from(it), had_pending = it->pending_in;
            it->pending_in = false;
            it->approved = false;
            set_from(it, false);
            /* The contact stops hearing the user: unavailable first, then the stanza
             * that ends the subscription (§3.2.2). */
            if (had_from)
                presence_send_all(s, u, c, clen, true);
            route_forward(s, st);
            if (had_pending)
                subreq_drop(s, u, it->jid);
            commit(s, u, it);
        }
        return;
    }
}

void sub_inbound(struct shard *s, struct user *v, const struct stanza *st)
{
    const char *from = st->from; /* the sender's bare JID: subscriptions are between accounts */
    size_t flen = st->from_bare_len;
    struct roster_item *it = roster_find(&v->roster, from, flen);

    switch (st->h->type) {
    case PROTO_PRES_SUBSCRIBE:
        if (it && has_from(it)) {
            /* §3.1.3: already subscribed: answer for the contact, tell no one. */
            answer(s, v->bare, v->bare_len, from, flen, PROTO_PRES_SUBSCRIBED, "subscribed");
            return;
        }
        if (it && it->approved) {
            it->approved = false;
            it->pending_in = false;
            set_from(it, true);
            commit(s, v, it);
            answer(s, v->bare, v->bare_len, from, flen, PROTO_PRES_SUBSCRIBED, "subscribed");
            presence_send_all(s, v, from, flen, false);
            return;
        }
        if (!it) {
            /* A stranger's request takes a hidden item: within the roster's bounds, so
             * that strangers cannot fill it; told when there is no room. */
            if (!room_for(s, v, flen) || !(it = roster_add(&v->roster, from, flen))) {
                out_error(s, st, "wait", "resource-constraint");
                return;
            }
            it->hidden = true;
        }
        if (it->pending_in)
            return; /* asked already: not delivered again (A.3.1) */
        it->pending_in = true;
        commit(s, v, it);
        /* Kept until answered, and shown at every login (§3.1.3). */
        char user[USER_LOCAL_MAX];
        user_localpart(v, user, sizeof user);
        v->busy++;
        if (store_subreq_put(s->store, user, it->jid, st->raw, st->raw_len, on_stored, v) < 0)
            on_stored(v, -1);
        out_to_available(s, v, st->raw, st->raw_len);
        return;
    case PROTO_PRES_UNSUBSCRIBE:
        if (it && (it->pending_in || has_from(it))) {
            bool had_pending = it->pending_in, had_from = has_from(it);
            it->pending_in = false;
            set_from(it, false);
            if (had_pending)
                subreq_drop(s, v, it->jid);
            commit(s, v, it); /* may free it */
            out_to_available(s, v, st->raw, st->raw_len);
            /* The user no longer hears the contact's resources (§3.3.3). */
            if (had_from)
                presence_send_all(s, v, from, flen, true);
        }
        return;
    case PROTO_PRES_SUBSCRIBED:
        if (it && it->ask) {
            it->ask = false;
            set_to(it, true);
            commit(s, v, it);
            out_to_available(s, v, st->raw, st->raw_len);
        }
        return;
    case PROTO_PRES_UNSUBSCRIBED:
        if (it && (it->ask || has_to(it))) {
            it->ask = false;
            set_to(it, false);
            commit(s, v, it);
            out_to_available(s, v, st->raw, st->raw_len);
        }
        return;
    }
}

static bool is_sub(const struct stanza *st)
{
    return st->h->kind == PROTO_PRESENCE && st->h->type >= PROTO_PRES_SUBSCRIBE &&
           st->h->type <= PROTO_PRES_UNSUBSCRIBED;
}

static bool sub_out(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)ss;
    if (!is_sub(st))
        return false;
    sub_outbound(s, u, st);
    return true;
}

static bool sub_in(struct shard *s, struct user *v, struct stanza *st)
{
    if (!is_sub(st))
        return false;
    sub_inbound(s, v, st);
    return true;
}

/* Presence subscriptions: no iq, no feature of their own (the roster's). */
const struct module mod_sub = {
    .name = "sub",
    .outbound = sub_out,
    .inbound = sub_in,
};
