/*
 * out.c: frames from a shard to front-end threads.
 *
 * Delivery is deduplicated per destination thread: a stanza for n connections spread
 * over k threads becomes k frames, each listing its thread's connections, not n frames.
 * A ring that is full keeps later frames in order in the shard's backlog for that
 * thread; the shard stops reading its inbound rings while backlogs are large, which
 * pushes back on the front ends in turn.
 */
#include "router/router.h"
#include "common/log.h"
#include "common/xml_tree.h"
#include "common/xmlw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A frame of kind for front-end thread fe: reserved in its ring, or a temporary buffer
 * that emit() queues. Returns where to write len payload bytes. */
struct slot {
    unsigned fe;
    uint16_t kind;
    uint32_t len;
    void *dst;
    bool queued;
};

static void *slot_open(struct shard *s, struct slot *o, unsigned fe, uint16_t kind, uint32_t len)
{
    o->fe = fe;
    o->kind = kind;
    o->len = len;
    o->queued = false;
    o->dst = NULL;
    if (len > ring_max_payload(&s->to_fe[fe])) {
        /* Callers split what can be split; anything else cannot travel at all. */
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: a %u-byte frame exceeds the ring's limit", s->idx, len);
        return NULL;
    }
    if (!backlog_empty(&s->backlog[fe]) || ring_reserve(&s->to_fe[fe], len, kind, 0, &o->dst) < 0) {
        o->queued = true;
        o->dst = malloc(len);
    }
    return o->dst;
}

static void slot_close(struct shard *s, struct slot *o)
{
    if (!o->dst && !o->queued)
        return;
    if (!o->queued) {
        ring_commit(&s->to_fe[o->fe]);
        s->dirty[o->fe] = true;
        s->frames_out++;
        return;
    }
    if (!o->dst || backlog_push(&s->backlog[o->fe], o->kind, o->dst, o->len) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a frame for thread %u is lost", s->idx,
               o->fe);
    free(o->dst);
}

void out_deliver(struct shard *s, const uint64_t *conns, unsigned n, const char *stanza, size_t len)
{
    /* One frame per destination thread, listing that thread's connections: O(n) per
     * thread present, and front-end threads are few. */
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        uint32_t room = ring_max_payload(&s->to_fe[fe]);
        if (room < sizeof(struct proto_deliver) + 8 + len)
            room = (uint32_t)(sizeof(struct proto_deliver) + 8 + len); /* refused below */
        unsigned per_frame = (unsigned)((room - sizeof(struct proto_deliver) - len) / 8);
        unsigned i = 0;
        for (;;) {
            /* The next batch of this thread's recipients, as many as one frame holds. */
            unsigned k = 0, first = n;
            for (unsigned j = i; j < n && k < per_frame; j++)
                if (PROTO_CONN_THREAD(conns[j]) == fe) {
                    if (first == n)
                        first = j;
                    k++;
                }
            if (!k)
                break;
            struct slot o;
            uint32_t plen = (uint32_t)(sizeof(struct proto_deliver) + 8u * k + len);
            struct proto_deliver *d = slot_open(s, &o, fe, PROTO_DELIVER, plen);
            unsigned m = 0, j = first;
            for (; j < n && m < k; j++)
                if (PROTO_CONN_THREAD(conns[j]) == fe) {
                    if (d)
                        ((uint64_t *)(d + 1))[m] = conns[j];
                    m++;
                }
            if (d) {
                d->nrcpt = k;
                d->stanza_len = (uint32_t)len;
                memcpy((uint64_t *)(d + 1) + k, stanza, len);
            }
            slot_close(s, &o);
            s->deliveries += k;
            i = j;
        }
    }
}

void out_bind_result(struct shard *s, uint64_t conn, int result, const char *jid, size_t len)
{
    struct slot o;
    struct proto_bind_result *b =
        slot_open(s, &o, PROTO_CONN_THREAD(conn), PROTO_BIND_RESULT, (uint32_t)(sizeof *b + len));
    if (b) {
        memset(b, 0, sizeof *b);
        b->conn = conn;
        b->result = result;
        b->jid_len = (uint16_t)len;
        if (len)
            memcpy(b + 1, jid, len);
    }
    slot_close(s, &o);
}

void out_close(struct shard *s, uint64_t conn, uint8_t condition)
{
    struct slot o;
    struct proto_close *c =
        slot_open(s, &o, PROTO_CONN_THREAD(conn), PROTO_CLOSE, (uint32_t)sizeof *c);
    if (c) {
        memset(c, 0, sizeof *c);
        c->conn = conn;
        c->condition = condition;
    }
    slot_close(s, &o);
}

void out_error(struct shard *s, const struct stanza *st, const char *type, const char *condition)
{
    static const char *const names[] = {"message", "presence", "iq"};
    const struct proto_stanza *h = st->h;
    if ((h->kind == PROTO_MESSAGE && h->type == PROTO_MSG_ERROR) ||
        (h->kind == PROTO_PRESENCE && h->type == PROTO_PRES_ERROR) ||
        (h->kind == PROTO_IQ && h->type >= PROTO_IQ_RESULT))
        return; /* never an error for an error or a result (RFC 6120 §8.3.1) */
    if (h->kind > PROTO_IQ)
        return;

    /* The id is in the start tag: read just that much. */
    struct xml_parser p;
    struct xml_event ev;
    const char *id = NULL;
    size_t id_len = 0;
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    if (xml_next(&p, st->raw, st->head_len, &ev) == XML_EV_START) {
        struct xml_attr a;
        for (unsigned i = 0; xml_attr_at(&p, st->raw, i, &a); i++)
            if (!a.ns.len && a.name.len == 2 && !memcmp(a.name.p, "id", 2)) {
                id = a.raw.p;
                id_len = a.raw.len; /* raw, so it goes back exactly as it came */
                break;
            }
    }

    struct buf b = {0};
    buf_puts(&b, "<");
    buf_puts(&b, names[h->kind]);
    buf_puts(&b, " type='error'");
    if (id) {
        buf_puts(&b, " id='");
        buf_append(&b, id, id_len);
        buf_puts(&b, "'");
    }
    if (st->to_len)
        xmlw_attr(&b, "from", st->to, st->to_len);
    else
        xmlw_attr(&b, "from", s->cfg->domain, strlen(s->cfg->domain));
    xmlw_attr(&b, "to", st->from, st->from_len);
    buf_puts(&b, "><error type='");
    buf_puts(&b, type);
    buf_puts(&b, "'><");
    buf_puts(&b, condition);
    buf_puts(&b, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></");
    buf_puts(&b, names[h->kind]);
    buf_puts(&b, ">");
    xml_free(&p); /* after the last use of id, which may point into its scratch */
    out_deliver(s, &h->conn, 1, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void out_flush(struct shard *s)
{
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        struct ring *r = &s->to_fe[fe];
        if (!backlog_empty(&s->backlog[fe]) && backlog_flush(&s->backlog[fe], r))
            s->dirty[fe] = true;
        if (s->dirty[fe]) {
            s->dirty[fe] = false;
            if (ring_publish(r))
                bell_ring(r->peer);
        }
        /* Room already there means no bell will come: go round again instead. */
        if (!backlog_empty(&s->backlog[fe]) && ring_wait_prepare(r) == 0)
            s->retry_out = true;
    }
}
