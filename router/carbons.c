/*
 * carbons.c: message carbons (XEP-0280), so that all of a user's clients see every
 * conversation. A resource enables them with an iq; then:
 *   - a message one of the user's resources sends goes, wrapped in <sent/>, to the
 *     user's other resources with carbons enabled (in the sender's shard);
 *   - a message delivered to some of the user's resources goes, wrapped in <received/>,
 *     to its other resources with carbons enabled (in the recipient's shard).
 * Eligible (§6): messages of type chat, unless marked <private/> (§7) or <no-copy/>
 * (XEP-0334), and never a carbon itself. The copy is built once and each recipient's
 * `to` filled in by c2s; the forwarded original carries xmlns='jabber:client' because it
 * now sits inside <forwarded xmlns='urn:xmpp:forward:0'/>.
 */
#include "router/router.h"
#include "common/log.h"
#include "common/xml_tree.h"
#include "common/xmlw.h"

#include <string.h>

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_HINTS   "urn:xmpp:hints"
#define NS_FORWARD "urn:xmpp:forward:0"

bool carbons_eligible(const struct stanza *st)
{
    if (st->h->kind != PROTO_MESSAGE || st->h->type != PROTO_MSG_CHAT)
        return false;
    /* Most messages name neither namespace: no tree for them. */
    if (!memmem(st->raw, st->raw_len, NS_CARBONS, sizeof NS_CARBONS - 1) &&
        !memmem(st->raw, st->raw_len, NS_HINTS, sizeof NS_HINTS - 1))
        return true;
    struct shard *s = shard_current;
    struct xml_node *m =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    bool ok = m && !xml_node_child(m, "private", NS_CARBONS) &&
              !xml_node_child(m, "sent", NS_CARBONS) &&
              !xml_node_child(m, "received", NS_CARBONS) && !xml_node_child(m, "no-copy", NS_HINTS);
    arena_reset(&s->arena);
    return ok;
}

/* <message xmlns='jabber:client' from='bare' type='chat'><what><forwarded>original... */
#define OUTER "<message xmlns='jabber:client'"

static void wrap(struct buf *b, const struct user *u, const char *what, const struct stanza *st)
{
    buf_puts(b, OUTER);
    xmlw_attr(b, "from", u->bare, u->bare_len);
    buf_puts(b, " type='chat'><");
    buf_puts(b, what);
    buf_puts(b, " xmlns='" NS_CARBONS "'><forwarded xmlns='" NS_FORWARD "'>");
    /* The original, with its namespace stated: "<message" + xmlns + the rest. */
    bool has_ns = memmem(st->raw, st->head_len, "xmlns=", 6) != NULL;
    buf_append(b, st->raw, 8);
    if (!has_ns)
        buf_puts(b, " xmlns='jabber:client'");
    buf_append(b, st->raw + 8, st->raw_len - 8);
    buf_puts(b, "</forwarded></");
    buf_puts(b, what);
    buf_puts(b, "></message>");
}

static void send_copies(struct shard *s, const struct user *u, const char *what,
                        const struct stanza *st, struct out_list *l)
{
    if (!l->n)
        return;
    struct buf b = {0};
    wrap(&b, u, what, st);
    out_list_send(s, l, buf_data(&b), buf_used(&b), sizeof OUTER - 1); /* `to` after OUTER */
    buf_free(&b);
}

void carbons_sent(struct shard *s, struct user *u, const struct stanza *st)
{
    /* Most users have no other resource with carbons on: ask that first, the stanza
     * itself only when a copy would go somewhere. */
    struct session *ss = u->sessions;
    while (ss && !(ss->carbons && ss->conn != st->h->conn))
        ss = ss->next;
    if (!ss || !carbons_eligible(st))
        return;
    struct out_list l = {0};
    for (; ss; ss = ss->next)
        if (ss->carbons && ss->conn != st->h->conn)
            out_list_add(&l, ss->conn, ss->jid, ss->jid_len);
    send_copies(s, u, "sent", st, &l);
    out_list_free(&l);
}

void carbons_received(struct shard *s, struct user *v, const struct stanza *st,
                      struct session *const *got, unsigned ngot)
{
    struct out_list l = {0};
    bool checked = false;
    for (struct session *ss = v->sessions; ss; ss = ss->next) {
        if (!ss->carbons)
            continue;
        bool had = false;
        for (unsigned i = 0; i < ngot && !had; i++)
            had = got[i] == ss;
        if (had)
            continue;
        if (!checked) { /* as in carbons_sent(): the stanza only when a copy would go */
            if (!carbons_eligible(st))
                break;
            checked = true;
        }
        out_list_add(&l, ss->conn, ss->jid, ss->jid_len);
    }
    send_copies(s, v, "received", st, &l);
    out_list_free(&l);
}

void carbons_iq(struct shard *s, struct session *ss, const struct stanza *st, const char *id,
                const struct xml_node *q)
{
    if (st->h->type != PROTO_IQ_SET ||
        (strcmp(q->name.p, "enable") != 0 && strcmp(q->name.p, "disable") != 0)) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    bool on = q->name.p[0] == 'e';
    if (ss->carbons != on) {
        ss->carbons = on;
        out_session_state(s, ss);
    }
    iq_result(s, st, id, NULL, 0);
}
