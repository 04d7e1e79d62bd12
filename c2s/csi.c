/*
 * csi.c: client state indication (XEP-0352, urn:xmpp:csi:0), where every stanza for a
 * client passes: conn_stanza().
 *
 * While a client says it is <inactive/>, what it does not need at once waits: presence
 * updates (available and unavailable; subscription requests and answers do not wait)
 * and messages without a body that carry a chat state (XEP-0085). Only the latest of
 * each kind per sender (its full JID) is kept: a newer one replaces the older, and takes
 * its place at the end. Anything else (a message with a body, an iq, a message of any
 * other kind) goes at once, behind everything held, so the client sees stanzas in the
 * order the server had them (XEP-0352 leaves the choice; order wins over the few bytes a
 * presence sent early would save). <active/> sends what is held; so does one past
 * c2s.csi_max_queued. A held stanza is not sent yet, so stream management counts it
 * only when it goes (sm_out()); a session parked meanwhile queues it for the client.
 *
 * The choice reads the stanza's start tag (its name, type and from) and looks for a body
 * or the chat-state namespace in its bytes: a wrong guess only sends a stanza earlier or
 * later, never loses one.
 */
#include "c2s/c2s.h"
#include "common/core/log.h"
#include "shm/proto.h"

#include <stdlib.h>
#include <string.h>

#define NS_CSI        "urn:xmpp:csi:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

/* q holds entries: a struct held, the key (kind letter and the sender's JID), the stanza. */
struct csi {
    bool inactive;
    uint32_t n;
    struct buf q;
};

struct held {
    uint32_t key_len, len;
};

void csi_features(struct conn *c, struct buf *b)
{
    (void)c;
    buf_puts(b, "<csi xmlns='" NS_CSI "'/>");
}

void csi_free(struct conn *c)
{
    if (c->csi)
        buf_free(&c->csi->q);
    free(c->csi);
    c->csi = NULL;
}

void csi_flush(struct conn *c)
{
    struct csi *s = c->csi;
    if (!s || !s->n)
        return;
    /* Taken off first: sm_out() may end the session (and free this) on overflow. */
    struct buf q = s->q;
    s->q = (struct buf){0};
    s->n = 0;
    size_t off = 0;
    while (off + sizeof(struct held) <= buf_used(&q)) {
        struct held h;
        memcpy(&h, buf_data(&q) + off, sizeof h);
        sm_out(c, buf_data(&q) + off + sizeof h + h.key_len, h.len);
        off += sizeof h + h.key_len + h.len;
    }
    buf_free(&q);
}

/* The key a stanza waits under, or 0: it goes now. */
static size_t hold_key(struct conn *c, const char *p, size_t n, char *key)
{
    struct stanza_head h;
    if (n < 2 || (p[1] != 'p' && p[1] != 'm'))
        return 0; /* an iq, say: the router writes stanzas as `<name` */
    bool msg = p[1] == 'm';
    if (msg && (memmem(p, n, "<body", 5) || !memmem(p, n, NS_CHATSTATES, sizeof NS_CHATSTATES - 1)))
        return 0;
    stanza_head(conn_thread(c), p, n, &h);
    if (msg ? h.kind != PROTO_MESSAGE || h.type == PROTO_MSG_ERROR || h.type == PROTO_MSG_GROUPCHAT
            : h.kind != PROTO_PRESENCE ||
                  (h.type != PROTO_PRES_AVAILABLE && h.type != PROTO_PRES_UNAVAILABLE))
        return 0;
    key[0] = msg ? 'm' : 'p';
    memcpy(key + 1, h.from, h.from_len);
    return 1 + h.from_len;
}

static bool hold(struct conn *c, const char *key, size_t key_len, const char *p, size_t n)
{
    struct csi *s = c->csi;
    /* The older one of the same key goes. */
    size_t off = 0;
    while (off + sizeof(struct held) <= buf_used(&s->q)) {
        struct held h;
        char *e = buf_data(&s->q) + off;
        memcpy(&h, e, sizeof h);
        size_t sz = sizeof h + h.key_len + h.len;
        if (h.key_len == key_len && !memcmp(e + sizeof h, key, key_len)) {
            memmove(e, e + sz, buf_used(&s->q) - off - sz);
            s->q.len -= (uint32_t)sz;
            s->n--;
            break;
        }
        off += sz;
    }
    struct held h = {(uint32_t)key_len, (uint32_t)n};
    if (buf_reserve(&s->q, sizeof h + key_len + n) < 0)
        return false;
    buf_append(&s->q, &h, sizeof h);
    buf_append(&s->q, key, key_len);
    buf_append(&s->q, p, n);
    s->n++;
    return true;
}

void conn_stanza(struct conn *c, const char *p, size_t n)
{
    struct csi *s = c->csi;
    if (s && s->inactive) {
        char key[JID_BUF + 1];
        size_t kl = hold_key(c, p, n, key);
        if (kl && hold(c, key, kl, p, n)) {
            if (c->csi->n > c->fe.t->cfg->c2s.csi_max_queued)
                csi_flush(c);
            return;
        }
        csi_flush(c); /* what waited goes first */
    }
    sm_out(c, p, n);
}

void csi_element(struct conn *c, const struct xml_event *ev)
{
    bool inactive = ev->name.len == 8 && !memcmp(ev->name.p, "inactive", 8);
    if (!inactive && !(ev->name.len == 6 && !memcmp(ev->name.p, "active", 6))) {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
        return;
    }
    if (!c->csi && !inactive)
        return;
    if (!c->csi && !(c->csi = calloc(1, sizeof *c->csi))) {
        LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory: stays active", c->fe.slot);
        return;
    }
    c->csi->inactive = inactive;
    if (!inactive) {
        csi_flush(c);
        csi_free(c);
    }
}
