/*
 * offline.c: messages for a user with no available resource (XEP-0160). A chat or
 * normal message is stored as it arrived, up to offline.max_messages and
 * offline.max_bytes per user, of which one sender's messages take at most
 * offline.sender_share percent (so that nobody can fill a mailbox and keep the others
 * out); over that, or when the account does not exist, the sender gets
 * service-unavailable (RFC 6121 §8.5.2.2.1). At the next initial presence with a
 * non-negative priority the messages go to that resource, oldest first, each with a
 * XEP-0203 <delay/> saying when the server took it, and are deleted from the store only
 * afterwards: a crash in between delivers twice rather than never.
 *
 * Not stored, silently: a message with only chat states (XEP-0085) or a <no-store/>
 * hint (XEP-0334). Not delivered: stored messages from JIDs blocked since (XEP-0191).
 *
 * Unanswered subscription requests are shown again at every initial presence
 * (RFC 6121 §3.1.3).
 */
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_BATCH 100

/* The stored message's frame, kept to answer its sender if the store refuses it. */
struct push_ctx {
    uint64_t len; /* 64 bits: the frame after it is read as a struct proto_stanza */
    char frame[];
};

static void on_pushed(void *arg, int res)
{
    struct push_ctx *c = arg;
    struct shard *s = shard_current;
    struct stanza st;
    if (res < 0 && stanza_parse(c->frame, c->len, &st)) {
        if (res != -EDQUOT && res != -ENOENT)
            LOG_ERROR("shard %u: an offline message was not stored: %s", s->idx, strerror(-res));
        out_error(s, &st, "cancel", "service-unavailable");
    }
    free(c);
}

#define NS_HINTS      "urn:xmpp:hints"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

/* A standalone chat state (stale by the time anyone reads it) or a <no-store/> hint
 * (XEP-0334) is dropped instead; a <store/> hint keeps anything. */
static bool worth_storing(struct shard *s, const struct stanza *st)
{
    bool hints = memmem(st->raw, st->raw_len, NS_HINTS, sizeof NS_HINTS - 1);
    bool states = memmem(st->raw, st->raw_len, NS_CHATSTATES, sizeof NS_CHATSTATES - 1);
    if (!hints && !states)
        return true;
    struct xml_node *m =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    bool keep = true;
    if (m && xml_node_child(m, "store", NS_HINTS)) {
        keep = true;
    } else if (m && xml_node_child(m, "no-store", NS_HINTS)) {
        keep = false;
    } else if (m) {
        /* Kept when anything but chat states is in it. */
        keep = false;
        for (const struct xml_node *c = m->children; c && !keep; c = c->next)
            keep = c->name.p && strcmp(c->ns.p, NS_CHATSTATES) != 0;
    }
    arena_reset(&s->arena);
    return keep;
}

/* pct percent of n, at least 1 when n is not 0 (a share never shuts a sender out). */
static size_t share(uint32_t n, uint32_t pct)
{
    uint64_t v = (uint64_t)n * pct / 100;
    return n && !v ? 1 : (size_t)v;
}

void offline_store(struct shard *s, struct user *u, const struct stanza *st)
{
    if (!worth_storing(s, st))
        return;
    char user[USER_LOCAL_MAX];
    /* The frame as it came: a module may have pointed st->raw at a longer copy. */
    uint32_t len = (uint32_t)(sizeof *st->h + st->h->from_len + st->h->to_len + st->h->stanza_len);
    struct push_ctx *c = malloc(sizeof *c + len);
    if (!c) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    c->len = len;
    memcpy(c->frame, st->frame, len);
    u->offline_maybe = true;
    user_localpart(u, user, sizeof user);
    /* The sender's bare JID, NUL-terminated for the store. */
    char sender[JID_BUF];
    size_t fl = st->from_bare_len < sizeof sender ? st->from_bare_len : sizeof sender - 1;
    memcpy(sender, st->from, fl);
    sender[fl] = '\0';
    const struct config *cfg = s->cfg;
    struct store_offline_quota q = {
        .messages = cfg->offline.max_messages,
        .bytes = cfg->offline.max_bytes,
        .sender_messages = share(cfg->offline.max_messages, cfg->offline.sender_share),
        .sender_bytes = share(cfg->offline.max_bytes, cfg->offline.sender_share),
    };
    if (store_offline_push(s->store, user, sender, st->raw, st->raw_len, &q, on_pushed, c) < 0)
        on_pushed(c, -EAGAIN);
}

/* A fetch in flight for one session. */
struct fetch_ctx {
    struct user *u;
    uint64_t conn;
};

static void fetch(struct shard *s, struct user *u, uint64_t conn);

static void on_deleted(void *arg, int res)
{
    struct fetch_ctx *f = arg;
    struct shard *s = shard_current;
    if (res < 0)
        LOG_ERROR("shard %u: delivered offline messages of %s were not deleted", s->idx,
                  f->u->bare);
    f->u->busy--;
    user_release(&s->users, f->u);
    free(f);
}

/* The stanza with <delay/> as its first child (XEP-0203 §3). */
static void with_delay(struct shard *s, struct buf *b, const char *raw, size_t len,
                       int64_t stamp_s, uint32_t stamp_us)
{
    struct xml_parser p;
    struct xml_event ev;
    size_t head = 0;
    bool empty = false;
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    if (xml_next(&p, raw, len, &ev) == XML_EV_START) {
        head = ev.raw.len;
        empty = ev.flags & XML_F_EMPTY;
    }
    xml_free(&p);
    if (!head) {
        buf_append(b, raw, len);
        return;
    }
    char stamp[64];
    time_t t = (time_t)stamp_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03uZ", stamp_us / 1000);
    /* <message .../> becomes <message ...><delay/></message>. */
    buf_append(b, raw, empty ? head - 2 : head);
    if (empty)
        buf_puts(b, ">");
    buf_puts(b, "<delay xmlns='urn:xmpp:delay'");
    xmlw_attr(b, "from", s->cfg->domain, strlen(s->cfg->domain));
    xmlw_attr(b, "stamp", stamp, strlen(stamp));
    buf_puts(b, "/>");
    if (empty)
        buf_puts(b, "</message>");
    else
        buf_append(b, raw + head, len - head);
}

/* The session the stored messages go to: the one asked for while it still takes them,
 * else another that does (the first left, or went negative, in the middle). */
static struct session *fetch_target(struct user *u, uint64_t conn)
{
    struct session *ss = session_by_conn(u, conn);
    if (ss && ss->available && ss->priority >= 0)
        return ss;
    for (ss = u->sessions; ss; ss = ss->next)
        if (ss->available && ss->priority >= 0)
            return ss;
    return NULL;
}

/* The stored message's sender is blocked now. Read only when the user blocks anyone. */
static bool blocked_sender(struct shard *s, const struct user *u, const char *raw, size_t len)
{
    if (!u->block.n)
        return false;
    struct xml_node *m = xml_tree_parse(NULL, raw, len, &s->arena, s->scratch, sizeof s->scratch);
    const char *from = m ? xml_node_attr(m, "from") : NULL;
    bool blocked = from && block_blocks(&u->block, from, strlen(from));
    arena_reset(&s->arena);
    return blocked;
}

static void on_fetched(void *arg, int res, const struct store_offline *msgs)
{
    struct fetch_ctx *f = arg;
    struct shard *s = shard_current;
    struct user *u = f->u;
    struct session *ss = fetch_target(u, f->conn);
    if (res < 0 || !msgs->n || !ss) {
        /* Nothing (more), or nobody takes them now: the rest waits for the next one. */
        u->fetching = false;
        u->busy--;
        user_release(&s->users, u);
        free(f);
        return;
    }
    f->conn = ss->conn;
    uint64_t last = 0;
    for (size_t i = 0; i < msgs->n; i++) {
        last = msgs->msgs[i].seq;
        if (blocked_sender(s, u, msgs->msgs[i].stanza, msgs->msgs[i].len))
            continue; /* blocked since it was stored: dropped with the rest (XEP-0191) */
        struct buf b = {0};
        with_delay(s, &b, msgs->msgs[i].stanza, msgs->msgs[i].len, msgs->msgs[i].stamp_s,
                   msgs->msgs[i].stamp_us);
        out_deliver(s, &f->conn, 1, buf_data(&b), buf_used(&b));
        buf_free(&b);
    }
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);
    /* The deletion takes this context; then a new one goes on fetching. The store runs
     * requests in order, so the next fetch cannot see what was just delivered. */
    uint64_t conn = f->conn;
    if (store_offline_delete(s->store, user, last, on_deleted, f) < 0)
        on_deleted(f, -EIO);
    fetch(s, u, conn); /* a batch may stop short of the limit: only an empty one ends it */
}

static void fetch(struct shard *s, struct user *u, uint64_t conn)
{
    char user[USER_LOCAL_MAX];
    struct fetch_ctx *f = malloc(sizeof *f);
    if (!f) {
        u->fetching = false;
        return;
    }
    f->u = u;
    f->conn = conn;
    u->busy++;
    user_localpart(u, user, sizeof user);
    if (store_offline_fetch(s->store, user, FETCH_BATCH, on_fetched, f) < 0)
        on_fetched(f, -EIO, NULL);
}

void offline_deliver(struct shard *s, struct user *u, struct session *ss)
{
    /* One fetch at a time per user: two resources coming online together must not both
     * get the messages (the second is skipped; the first takes them all). */
    if (u->fetching || !u->offline_maybe)
        return;
    u->fetching = true;
    fetch(s, u, ss->conn);
}

struct subreq_ctx {
    struct user *u;
    uint64_t conn;
};

static void on_subreqs(void *arg, int res, const struct store_subreqs *reqs)
{
    struct subreq_ctx *c = arg;
    struct shard *s = shard_current;
    if (res == 0 && session_by_conn(c->u, c->conn))
        for (size_t i = 0; i < reqs->n; i++) {
            /* Only still-pending ones (an answer may have crossed the store's), and none from
             * a JID blocked since (XEP-0191 §3.4). */
            const char *jid = reqs->items[i].jid;
            struct roster_item *it = roster_find(&c->u->roster, jid, strlen(jid));
            if (it && it->pending_in && !block_blocks(&c->u->block, jid, strlen(jid)))
                out_deliver(s, &c->conn, 1, reqs->items[i].stanza, reqs->items[i].len);
        }
    c->u->busy--;
    user_release(&s->users, c->u);
    free(c);
}

void offline_subreqs(struct shard *s, struct user *u, struct session *ss)
{
    /* A request is stored only while its item is pending-in: without one, none waits. */
    bool waiting = false;
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask && !waiting; i++)
        for (const struct roster_item *it = u->roster.buckets[i]; it && !waiting; it = it->next)
            waiting = it->pending_in;
    if (!waiting)
        return;
    char user[USER_LOCAL_MAX];
    struct subreq_ctx *c = malloc(sizeof *c);
    if (!c)
        return;
    c->u = u;
    c->conn = ss->conn;
    u->busy++;
    user_localpart(u, user, sizeof user);
    if (store_subreq_list(s->store, user, on_subreqs, c) < 0)
        on_subreqs(c, -EIO, NULL);
}

static void offline_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s, (void)remote;
    buf_puts(b, "<feature var='msgoffline'/>");
}

static bool offline_undeliverable(struct shard *s, struct user *v, const struct stanza *st)
{
    offline_store(s, v, st);
    return true; /* stored, dropped as not worth it, or its sender answered */
}

static void offline_state(struct shard *s, struct user *u, int res, const struct store_roster *r)
{
    (void)s;
    if (res == 0)
        u->offline_maybe = r->offline;
    else if (res != -ENOENT)
        u->offline_maybe = true; /* unknown: a login asks */
}

const struct module mod_offline = {
    .name = "offline",
    .user_state = offline_state,
    .undeliverable = offline_undeliverable,
    .receiving = offline_deliver,
    .initial_presence = offline_subreqs,
    .disco_server = offline_features,
};
