/*
 * muc_remote.c: a room's stanza to its occupants of other servers (muc.h, Fan-out):
 * grouped per server, one PROTO_REMOTE_FANOUT frame each listing the occupants' real
 * full JIDs, marked as the chat service's (s2s sends it on our stream from muc.domain,
 * as one stanza per occupant, or as XEP-0033 multicasts to a server that takes them).
 * A room has few servers among its occupants: a list walked per occupant does.
 */
#include "router/muc.h"
#include "router/router.h"

#include <stdlib.h>
#include <string.h>

/* The occupant's server: the domain of its real JID. */
static void domain_of(const struct muc_occupant *o, const char **dom, size_t *dlen)
{
    const char *at = memchr(o->jid, '@', o->bare_len);
    *dom = at ? at + 1 : o->jid;
    *dlen = (size_t)(o->jid + o->bare_len - *dom);
}

void muc_remotes_add(struct muc_remotes *r, const struct muc_occupant *o)
{
    const char *dom;
    size_t dlen;
    domain_of(o, &dom, &dlen);
    unsigned i = 0;
    while (i < r->n && !(r->v[i].dlen == dlen && !memcmp(r->v[i].dom, dom, dlen)))
        i++;
    if (i == r->n) {
        if (r->n == r->cap) {
            unsigned cap = r->cap ? 2 * r->cap : 4;
            struct muc_remote_group *v = realloc(r->v, cap * sizeof *v);
            if (!v) {
                r->lost++;
                return;
            }
            r->v = v;
            r->cap = cap;
        }
        r->v[r->n++] = (struct muc_remote_group){.dom = dom, .dlen = dlen};
    }
    uint16_t len = o->jid_len;
    if (buf_append(&r->v[i].list, &len, sizeof len) == 0 &&
        buf_append(&r->v[i].list, o->jid, len) == 0)
        r->v[i].count++;
    else
        r->lost++;
}

unsigned muc_remotes_send(struct shard *s, struct muc_remotes *r, const char *stanza, size_t len,
                          uint32_t to_at)
{
    unsigned frames = 0;
    if (r->lost)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a room's stanza is lost for %u occupants",
               s->idx, r->lost);
    for (unsigned i = 0; i < r->n; i++) {
        struct muc_remote_group *g = &r->v[i];
        if (g->count) {
            out_remote_fanout(s, g->dom, g->dlen, stanza, len, to_at, buf_data(&g->list),
                              buf_used(&g->list), g->count, PROTO_FANOUT_FROM_MUC);
            frames++;
        }
        buf_free(&g->list);
    }
    free(r->v);
    *r = (struct muc_remotes){0};
    return frames;
}
