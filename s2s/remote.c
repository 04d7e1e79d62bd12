/*
 * remote.c: stanzas the router hands over for remote domains (PROTO_REMOTE), and the
 * errors that answer them when they cannot go (RFC 6120 §8.3): an error stanza from the
 * addressee to the sender, back into the router like any stanza from a remote server.
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

void remote_bounce(struct s2s_thread *t, const void *frame, uint32_t len, const char *condition)
{
    static const char *const names[] = {"message", "presence", "iq"};
    struct decode_stanza d;
    if (decode_stanza(frame, len, &d) < 0 || is_error_or_result(&d.h))
        return; /* an error is never answered with one: it ends here */
    char id[1024];
    size_t id_len = stanza_id(&t->fe, &d, id, sizeof id);
    struct buf st = {0};
    buf_puts(&st, "<");
    buf_puts(&st, names[d.h.kind]);
    buf_puts(&st, " type='error'");
    if (id_len)
        xmlw_attr(&st, "id", id, id_len);
    xmlw_attr(&st, "from", d.to, d.h.to_len);
    xmlw_attr(&st, "to", d.from, d.h.from_len);
    buf_puts(&st, "><error type='cancel'><");
    buf_puts(&st, condition);
    buf_puts(&st, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></");
    buf_puts(&st, names[d.h.kind]);
    buf_puts(&st, ">");
    const char *gt = memchr(buf_data(&st), '>', buf_used(&st));

    /* From the addressee (remote) to the sender (ours), as if its server had said it. */
    struct proto_stanza h = {
        .conn = proto_conn_id(PROTO_FE_S2S, t->fe.idx, 0xFFFFFF, 0),
        .key = jid_hash(d.from, d.h.from_bare_len),
        .to_key = jid_hash(d.from, d.h.from_bare_len),
        .kind = d.h.kind,
        .type = d.h.kind == PROTO_MESSAGE   ? PROTO_MSG_ERROR
                : d.h.kind == PROTO_PRESENCE ? PROTO_PRES_ERROR
                                             : PROTO_IQ_ERROR,
        .flags = PROTO_STANZA_LOCAL | PROTO_STANZA_REMOTE,
        .from_len = d.h.to_len,
        .from_bare_len = d.h.to_bare_len ? d.h.to_bare_len : d.h.to_len,
        .to_len = d.h.from_len,
        .to_bare_len = d.h.from_bare_len,
        .head_len = (uint32_t)(gt - buf_data(&st) + 1),
        .stanza_len = buf_used(&st),
    };
    const char *at = memchr(d.from, '@', d.h.from_bare_len);
    h.to_domain_off = at ? (uint16_t)(at + 1 - d.from) : 0;
    h.to_domain_len = (uint16_t)(d.h.from_bare_len - h.to_domain_off);
    struct buf fr = {0};
    if (buf_append(&fr, &h, sizeof h) == 0 && buf_append(&fr, d.to, d.h.to_len) == 0 &&
        buf_append(&fr, d.from, d.h.from_len) == 0 &&
        buf_append(&fr, buf_data(&st), buf_used(&st)) == 0 &&
        fe_port_send(&t->fe, fe_shard_of(&t->fe, h.key), PROTO_STANZA, buf_data(&fr),
                     buf_used(&fr)) == 0)
        ;
    else
        LOG_RL(LOG_LEVEL_ERROR, "s2s thread %u: out of memory: a bounce is lost", t->fe.idx);
    buf_free(&st);
    buf_free(&fr);
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
