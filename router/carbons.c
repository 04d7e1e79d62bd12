/*
 * carbons.c: message carbons (XEP-0280), so that all of a user's clients see every
 * conversation. A resource enables them with an iq; then:
 *   - a message one of the user's resources sends goes, wrapped in <sent/>, to the
 *     user's other resources with carbons enabled (in the sender's shard);
 *   - a message delivered to some of the user's resources goes, wrapped in <received/>,
 *     to its other resources with carbons enabled (in the recipient's shard).
 * Eligible (§6): messages of type chat, and of type normal with a <body/> or an IM
 * payload (chat states, receipts, markers), unless marked <private/> (§7) or <no-copy/>
 * (XEP-0334), and never a carbon itself. Errors are not copied: which message an error
 * answers is not known here. The copy is built once and each recipient's
 * `to` filled in by c2s; the forwarded original carries xmlns='jabber:client' because it
 * now sits inside <forwarded xmlns='urn:xmpp:forward:0'/>.
 */
#include "router/router.h"
#include "common/core/log.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <string.h>

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_HINTS   "urn:xmpp:hints"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_MARKERS "urn:xmpp:chat-markers:0"

#define HAS(lit) (memmem(st->raw, st->raw_len, lit, sizeof lit - 1) != NULL)

/* A type normal message worth copying: a body or an IM payload (§6). */
static bool im_payload(const struct xml_node *m)
{
    for (const struct xml_node *c = m->children; c; c = c->next) {
        if (!c->name.p)
            continue;
        if (!strcmp(c->name.p, "body") && !strcmp(c->ns.p, "jabber:client"))
            return true;
        if (!strcmp(c->ns.p, NS_CHATSTATES) || !strcmp(c->ns.p, NS_RECEIPTS) ||
            !strcmp(c->ns.p, NS_MARKERS))
            return true;
    }
    return false;
}

bool carbons_eligible(const struct stanza *st)
{
    if (st->h->kind != PROTO_MESSAGE)
        return false;
    bool chat = st->h->type == PROTO_MSG_CHAT;
    if (!chat && st->h->type != PROTO_MSG_NORMAL)
        return false;
    bool marks = HAS(NS_CARBONS) || HAS(NS_HINTS);
    /* Most messages need no tree: chat without marks, or normal with nothing to copy. */
    if (chat && !marks)
        return true;
    if (!chat && !HAS("body") && !HAS(NS_CHATSTATES) && !HAS(NS_RECEIPTS) && !HAS(NS_MARKERS))
        return false;
    struct shard *s = shard_current;
    struct xml_node *m =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    bool ok = m && !xml_node_child(m, "private", NS_CARBONS) &&
              !xml_node_child(m, "sent", NS_CARBONS) &&
              !xml_node_child(m, "received", NS_CARBONS) &&
              !xml_node_child(m, "no-copy", NS_HINTS) && (chat || im_payload(m));
    arena_reset(&s->arena);
    return ok;
}

/* <message xmlns='jabber:client' from='bare' type='chat'><what><forwarded>original... */
#define OUTER "<message xmlns='jabber:client'"

/* Does the start tag declare its default namespace itself? Read from the parser's
 * attributes, not the bytes: blanks may surround '=', and any value may hold "xmlns=".
 * c2s passes only jabber:client stanzas, so a declaration there names jabber:client. */
static bool declares_ns(struct shard *s, const struct stanza *st)
{
    struct xml_parser p;
    struct xml_event ev;
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    bool yes = xml_next(&p, st->raw, st->head_len, &ev) == XML_EV_START &&
               xml_declares(&p, st->raw, "", 0);
    xml_free(&p);
    return yes;
}

static void wrap(struct shard *s, struct buf *b, const struct user *u, const char *what,
                 const struct stanza *st)
{
    buf_puts(b, OUTER);
    xmlw_attr(b, "from", u->bare, u->bare_len);
    buf_puts(b, " type='chat'><");
    buf_puts(b, what);
    buf_puts(b, " xmlns='" NS_CARBONS "'><forwarded xmlns='" NS_FORWARD "'>");
    /* The original, with its namespace stated: "<message" + xmlns + the rest. */
    buf_append(b, st->raw, 8);
    if (!declares_ns(s, st))
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
    wrap(s, &b, u, what, st);
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

static void carbons_own(struct shard *s, struct user *u, struct session *ss,
                        const struct stanza *st, const struct xml_node *iq,
                        const struct xml_node *q)
{
    (void)u;
    carbons_iq(s, ss, st, xml_node_attr(iq, "id"), q);
}

static void carbons_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s, (void)remote;
    buf_puts(b, "<feature var='" NS_CARBONS "'/>");
}

static bool carbons_outbound(struct shard *s, struct user *u, struct session *ss,
                             struct stanza *st)
{
    (void)ss;
    if (st->h->kind == PROTO_MESSAGE)
        carbons_sent(s, u, st);
    return false; /* the message goes on */
}

static const char *const carbons_ns[] = {NS_CARBONS, NULL};
const struct module mod_carbons = {
    .name = "carbons",
    .iq_ns = carbons_ns,
    .iq_own = carbons_own,
    .outbound = carbons_outbound,
    .delivered = carbons_received,
    .disco_server = carbons_features,
};
