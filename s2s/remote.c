/*
 * remote.c: stanzas the router hands over for remote domains (PROTO_REMOTE), and the
 * errors that answer them when they cannot go (RFC 6120 §8.3): an error stanza from the
 * addressee to the sender, back into the router like any stanza from a remote server.
 * A room's REMOTE_FANOUT frame (PROTO_FANOUT_FROM_MUC) is answered the same way, one
 * error per occupant it lists, so the room can remove them (router/muc.h).
 */
#include "s2s/s2s.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && !memcmp(s.p, lit, n);
}

static bool is_error_or_result(const struct proto_stanza *h)
{
    return (h->kind == PROTO_MESSAGE && h->type == PROTO_MSG_ERROR) ||
           (h->kind == PROTO_PRESENCE && h->type == PROTO_PRES_ERROR) ||
           (h->kind == PROTO_IQ && h->type >= PROTO_IQ_RESULT);
}

/* The start tag's id, decoded (into buf, cap bytes); its length, 0 without one. */
static size_t stanza_id(struct fe_thread *t, const struct decode_stanza *d, char *buf, size_t cap)
{
    struct xml_parser p;
    struct xml_event ev;
    size_t n = 0;
    xml_init_fragment(&p, NULL, t->scratch, sizeof t->scratch);
    if (xml_next(&p, d->raw, d->h.head_len, &ev) == XML_EV_START) {
        struct xml_attr a;
        for (unsigned i = 0; xml_attr_at(&p, d->raw, i, &a); i++)
            if (!a.ns.len && a.name.len == 2 && !memcmp(a.name.p, "id", 2)) {
                if (a.raw.len <= cap)
                    n = xml_decode(a.raw.p, a.raw.len, true, buf);
                break;
            }
    }
    xml_free(&p);
    return n;
}

/* Who says what to whom in an error frame: from the addressee (remote) to the sender
 * (ours), as if the addressee's server had said it. */
struct err_ends {
    const char *from, *to;
    size_t from_len, from_bare_len, to_len, to_bare_len;
};

/* The PROTO_STANZA frame of an error of kind (PROTO_MESSAGE...) into fr. */
static int error_frame(struct buf *fr, uint64_t conn, uint8_t kind, const char *id,
                       size_t id_len, const struct err_ends *e, const char *condition)
{
    static const char *const names[] = {"message", "presence", "iq"};
    struct buf st = {0};
    buf_puts(&st, "<");
    buf_puts(&st, names[kind]);
    buf_puts(&st, " type='error'");
    if (id_len)
        xmlw_attr(&st, "id", id, id_len);
    xmlw_attr(&st, "from", e->from, e->from_len);
    xmlw_attr(&st, "to", e->to, e->to_len);
    buf_puts(&st, "><error type='cancel'><");
    buf_puts(&st, condition);
    buf_puts(&st, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></");
    buf_puts(&st, names[kind]);
    buf_puts(&st, ">");
    const char *gt = memchr(buf_data(&st), '>', buf_used(&st));
    struct proto_stanza h = {
        .conn = conn,
        .key = jid_hash(e->to, e->to_bare_len),
        .to_key = jid_hash(e->to, e->to_bare_len),
        .kind = kind,
        .type = kind == PROTO_MESSAGE    ? PROTO_MSG_ERROR
                : kind == PROTO_PRESENCE ? PROTO_PRES_ERROR
                                         : PROTO_IQ_ERROR,
        .flags = PROTO_STANZA_LOCAL | PROTO_STANZA_REMOTE,
        .from_len = (uint16_t)e->from_len,
        .from_bare_len = (uint16_t)e->from_bare_len,
        .to_len = (uint16_t)e->to_len,
        .to_bare_len = (uint16_t)e->to_bare_len,
        .head_len = gt ? (uint32_t)(gt - buf_data(&st) + 1) : 0,
        .stanza_len = buf_used(&st),
    };
    const char *at = memchr(e->to, '@', e->to_bare_len);
    h.to_domain_off = at ? (uint16_t)(at + 1 - e->to) : 0;
    h.to_domain_len = (uint16_t)(e->to_bare_len - h.to_domain_off);
    buf_consume(fr, buf_used(fr));
    int rc = gt && buf_append(fr, &h, sizeof h) == 0 && buf_append(fr, e->from, e->from_len) == 0 &&
                     buf_append(fr, e->to, e->to_len) == 0 &&
                     buf_append(fr, buf_data(&st), buf_used(&st)) == 0
                 ? 0
                 : -ENOMEM;
    buf_free(&st);
    return rc;
}

/* Into the router: to the shard of the error's addressee (the sender of what failed). */
static void error_send(void *arg, const void *frame, uint32_t len)
{
    struct s2s_thread *t = arg;
    struct proto_stanza h;
    memcpy(&h, frame, sizeof h);
    if (fe_port_send(&t->fe, fe_shard_of(&t->fe, h.key), PROTO_STANZA, frame, len) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "s2s thread %u: out of memory: a bounce is lost", t->fe.idx);
}

static uint64_t thread_conn(const struct s2s_thread *t)
{
    return proto_conn_id(PROTO_FE_S2S, t->fe.idx, 0xFFFFFF, 0);
}

void remote_bounce(struct s2s_thread *t, const void *frame, uint32_t len, const char *condition)
{
    struct decode_stanza d;
    if (decode_stanza(frame, len, &d) < 0 || is_error_or_result(&d.h))
        return; /* an error is never answered with one: it ends here */
    char id[1024];
    size_t id_len = stanza_id(&t->fe, &d, id, sizeof id);
    struct err_ends e = {
        .from = d.to,
        .from_len = d.h.to_len,
        .from_bare_len = d.h.to_bare_len ? d.h.to_bare_len : d.h.to_len,
        .to = d.from,
        .to_len = d.h.from_len,
        .to_bare_len = d.h.from_bare_len,
    };
    struct buf fr = {0};
    if (error_frame(&fr, thread_conn(t), d.h.kind, id, id_len, &e, condition) == 0)
        error_send(t, buf_data(&fr), buf_used(&fr));
    else
        LOG_RL(LOG_LEVEL_ERROR, "s2s thread %u: out of memory: a bounce is lost", t->fe.idx);
    buf_free(&fr);
}

/* ---- a room's fan-out that cannot go ---- */

#define JID_MAX 3071 /* RFC 7622 §3.1: three parts of at most 1023 bytes, '@' and '/' */

int remote_fanout_errors(const void *frame, uint32_t len, const char *condition, uint64_t conn,
                         char *scratch, size_t scratch_cap, remote_error_fn *fn, void *arg)
{
    struct decode_remote_fanout f;
    if (decode_remote_fanout(frame, len, &f) < 0)
        return -EBADMSG;
    if (!(f.h.flags & PROTO_FANOUT_FROM_MUC))
        return 0; /* presence fan-out: RFC 6121 §4.2.2 lets the server say nothing */
    struct xml_parser p;
    struct xml_event ev;
    char room[JID_MAX], id[1024];
    size_t room_len = 0, id_len = 0;
    uint8_t kind = 0;
    bool error = false, ok = false;
    xml_init_fragment(&p, NULL, scratch, scratch_cap);
    if (xml_next(&p, f.stanza, f.h.stanza_len, &ev) == XML_EV_START) {
        ok = str_is(ev.name, "message") || str_is(ev.name, "presence");
        kind = str_is(ev.name, "message") ? PROTO_MESSAGE : PROTO_PRESENCE;
        struct xml_attr a;
        for (unsigned i = 0; ok && xml_attr_at(&p, f.stanza, i, &a); i++) {
            if (a.ns.len)
                continue;
            if (str_is(a.name, "from") && a.raw.len <= sizeof room)
                room_len = xml_decode(a.raw.p, a.raw.len, true, room);
            else if (str_is(a.name, "id") && a.raw.len <= sizeof id)
                id_len = xml_decode(a.raw.p, a.raw.len, true, id);
            else if (str_is(a.name, "type"))
                error = a.raw.len == 5 && !memcmp(a.raw.p, "error", 5);
        }
    }
    xml_free(&p);
    /* An error is never answered with one (RFC 6120 §8.3.1): the loop ends here. */
    const char *slash = room_len ? memchr(room, '/', room_len) : NULL;
    if (!ok || error || !slash || !memchr(room, '@', (size_t)(slash - room)))
        return 0;
    struct err_ends e = {.to = room, .to_len = room_len, .to_bare_len = (size_t)(slash - room)};
    struct buf fr = {0};
    const char *q = f.list, *jid;
    uint16_t jl;
    int n = 0;
    for (uint32_t i = 0; i < f.h.nrcpt && decode_fanout_next(&q, f.end, &jid, &jl); i++) {
        const char *js = memchr(jid, '/', jl);
        e.from = jid;
        e.from_len = jl;
        e.from_bare_len = js ? (size_t)(js - jid) : jl;
        if (error_frame(&fr, conn, kind, id, id_len, &e, condition) < 0)
            break;
        fn(arg, buf_data(&fr), buf_used(&fr));
        n++;
    }
    buf_free(&fr);
    return n;
}

void remote_bounce_fanout(struct s2s_thread *t, const void *frame, uint32_t len,
                          const char *condition)
{
    struct decode_remote_fanout f;
    int n = remote_fanout_errors(frame, len, condition, thread_conn(t), t->fe.scratch,
                                 sizeof t->fe.scratch, error_send, t);
    uint32_t all = decode_remote_fanout(frame, len, &f) == 0 ? f.h.nrcpt : 0;
    uint32_t back = n > 0 ? (uint32_t)n : 0;
    t->bounced += back;
    t->fanout_lost += all > back ? all - back : 0; /* presence fan-out, errors: counted */
}

/* Acknowledgements in one frame per shard, at most this many. */
#define ACK_BATCH 512

static void ack_flush(struct s2s_thread *t, unsigned shard)
{
    struct buf *b = &t->acks[shard];
    if (!buf_used(b))
        return;
    if (fe_port_send(&t->fe, shard, PROTO_REMOTE_ACK, buf_data(b), buf_used(b)) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "s2s thread %u: out of memory: acknowledgements are lost (the "
               "router keeps copies longer)", t->fe.idx);
    buf_consume(b, buf_used(b));
}

static void ack_timer(struct fe_thread *ft, struct fe_timer *tm)
{
    (void)tm;
    struct s2s_thread *t = (struct s2s_thread *)ft;
    t->ack_armed = false;
    for (unsigned i = 0; i < ft->nshards; i++)
        ack_flush(t, i);
}

void remote_ack(struct s2s_thread *t, unsigned shard, uint64_t seq)
{
    if (shard >= t->fe.nshards)
        return;
    struct buf *b = &t->acks[shard];
    struct proto_remote_ack h = {.conn = proto_conn_id(PROTO_FE_S2S, t->fe.idx, 0xFFFFFF, 0)};
    if (!buf_used(b) && buf_append(b, &h, sizeof h) < 0)
        return;
    memcpy(&h, buf_data(b), sizeof h);
    if (buf_append(b, &seq, sizeof seq) < 0)
        return;
    h.n++;
    memcpy(buf_data(b), &h, sizeof h);
    if (h.n >= ACK_BATCH)
        ack_flush(t, shard);
    else if (!t->ack_armed) {
        t->ack_armed = true;
        fe_timer_at(&t->fe, &t->ack_timer, fe_now_us() + 1000, ack_timer);
    }
}

void remote_ack_reset(struct s2s_thread *t)
{
    for (unsigned i = 0; i < t->fe.nshards; i++)
        buf_free(&t->acks[i]);
}

void remote_frame(struct fe_thread *ft, const struct ring_frame *f)
{
    struct s2s_thread *t = (struct s2s_thread *)ft;
    struct proto_remote_env env;
    const void *p;
    uint32_t len;
    if ((f->kind != PROTO_REMOTE && f->kind != PROTO_REMOTE_FANOUT) ||
        decode_remote_env(f->payload, f->len, &env, &p, &len) < 0) {
        LOG_RL(LOG_LEVEL_ERROR, "s2s thread %u: a frame of kind %u from the router", ft->idx,
               f->kind);
        return;
    }
    out_frame(t, f->kind, p, len, env.shard, env.seq);
}
