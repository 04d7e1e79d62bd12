/*
 * muc_stanza.c: how a room reads and rewrites what an occupant sends (muc.h).
 *
 * A room rewrites what an occupant sends: its start tag gets the occupant's room JID as
 * `from` and loses `to` (each recipient's is filled in at the last hop), its children are
 * copied as they came, but for <x/> elements of muc#user (a sender may not forge status
 * codes) and, in presence, the join's <x xmlns='muc'/>. The rest of the start tag (id,
 * xml:lang, namespace declarations its children may use) stays.
 */
#include "router/mam.h"
#include "router/muc.h"
#include "router/router.h"
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <string.h>

#define NS_HINTS   "urn:xmpp:hints"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

static bool str_eq(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && !memcmp(s.p, lit, n);
}

static uint8_t child_kind(const struct xml_event *ev)
{
    if (str_eq(ev->name, "x"))
        return str_eq(ev->ns, NS_MUC)        ? MUC_CH_X_MUC
               : str_eq(ev->ns, NS_MUC_USER) ? MUC_CH_X_USER
                                             : MUC_CH_OTHER;
    if (str_eq(ev->ns, XML_NS_CLIENT))
        return str_eq(ev->name, "subject") ? MUC_CH_SUBJECT
               : str_eq(ev->name, "body")  ? MUC_CH_BODY
                                           : MUC_CH_OTHER;
    if (str_eq(ev->ns, NS_HINTS) &&
        (str_eq(ev->name, "no-store") || str_eq(ev->name, "no-permanent-store")))
        return MUC_CH_NOSTORE;
    return MUC_CH_OTHER;
}

bool muc_spans_read(struct shard *s, const struct stanza *st, struct muc_spans *sp)
{
    memset(sp, 0, sizeof *sp);
    unsigned cap = 0;
    struct xml_parser p;
    struct xml_event ev;
    bool ok = true;
    bool open = false;  /* sp->c[sp->n] has started and not been given its end */
    unsigned depth = 0; /* counted here: the events' own is the tree builder's */
    /* The stanza's end tag: after its last child (an END event has no bytes of its own). */
    uint32_t close = (uint32_t)st->raw_len;
    while (close > st->head_len && st->raw[close - 1] != '<')
        close--;
    close = close > st->head_len ? close - 1 : (uint32_t)st->raw_len;
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    for (;;) {
        enum xml_ev_kind k = xml_next(&p, st->raw, st->raw_len, &ev);
        if (k == XML_EV_NONE || k == XML_EV_ERROR)
            break;
        uint32_t off = ev.raw.p ? (uint32_t)(ev.raw.p - st->raw) : close;
        if (open && depth == 1) {
            /* What follows a closed child (text, the next child, the end) ends it. */
            sp->c[sp->n].len = off - sp->c[sp->n].off;
            sp->n++;
            open = false;
        }
        if (k == XML_EV_START && ++depth == 1) {
            sp->name_len =
                ev.name.len + (ev.name.p > st->raw + 1 ? (uint32_t)(ev.name.p - st->raw - 1) : 0);
            struct xml_attr a;
            for (unsigned i = 0; xml_attr_at(&p, st->raw, i, &a); i++) {
                int which = a.ns.len                 ? -1
                            : str_eq(a.name, "from") ? 0
                            : str_eq(a.name, "to")   ? 1
                            : str_eq(a.name, "type") ? 2
                                                     : -1;
                if (which < 0)
                    continue;
                const char *b = a.name.p;
                while (b > st->raw &&
                       (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\n' || b[-1] == '\r'))
                    b--;
                sp->cut[which][0] = (uint32_t)(b - st->raw);
                sp->cut[which][1] = (uint32_t)(a.raw.p + a.raw.len + 1 - b);
            }
        } else if (k == XML_EV_START && depth == 2) {
            if (sp->n == cap) {
                unsigned ncap = cap ? cap * 2 : 8;
                struct muc_child *c = arena_alloc(&s->arena, ncap * sizeof *c);
                if (!c) {
                    ok = false;
                    break;
                }
                if (sp->n)
                    memcpy(c, sp->c, sp->n * sizeof *c);
                sp->c = c;
                cap = ncap;
            }
            sp->c[sp->n].kind = child_kind(&ev);
            if (str_eq(ev.name, "stanza-id") && str_eq(ev.ns, NS_SID) &&
                mam_sid_by(&p, st->raw, st->to, st->to_bare_len))
                sp->c[sp->n].kind = MUC_CH_SID;
            sp->c[sp->n].off = off;
            sp->has[sp->c[sp->n].kind] = true;
        } else if (k == XML_EV_END) {
            if (depth == 2)
                open = true;
            if (--depth == 0)
                break; /* the stanza element is closed */
        }
    }
    if (open) {
        sp->c[sp->n].len = close - sp->c[sp->n].off;
        sp->n++;
    }
    xml_free(&p);
    return ok;
}

void muc_restamp(struct buf *b, const struct stanza *st, const struct muc_spans *sp,
                 const char *from, size_t from_len, const char *nick, size_t nick_len,
                 const char *type, unsigned skip)
{
    buf_append(b, st->raw, 1 + sp->name_len);
    struct buf f = {0};
    buf_append(&f, from, from_len);
    if (nick) {
        buf_puts(&f, "/");
        buf_append(&f, nick, nick_len);
    }
    xmlw_attr(b, "from", buf_data(&f), buf_used(&f));
    buf_free(&f);
    if (type) {
        buf_puts(b, " type='");
        buf_puts(b, type);
        buf_puts(b, "'");
    }
    size_t end = st->head_len - 1; /* the '>' */
    if (end > 0 && st->raw[end - 1] == '/')
        end--;
    size_t at = 1 + sp->name_len;
    while (at < end) {
        size_t next = end;
        int cut = -1;
        for (int i = 0; i < 3; i++)
            if (sp->cut[i][1] && sp->cut[i][0] >= at && sp->cut[i][0] < next && (i < 2 || type)) {
                next = sp->cut[i][0];
                cut = i;
            }
        buf_append(b, st->raw + at, next - at);
        at = cut >= 0 ? next + sp->cut[cut][1] : end;
    }
    buf_puts(b, ">");
    for (unsigned i = 0; i < sp->n; i++)
        if (!(skip & (1u << sp->c[i].kind)))
            buf_append(b, st->raw + sp->c[i].off, sp->c[i].len);
}

/* Prosody's list (mod_muc's kickable errors): what says the occupant's client or server
 * is gone or cannot take the room's stanzas, not what it says of one stanza (a rate
 * limit's resource-constraint, a feature-not-implemented). */
static const char *const gone_conditions[] = {
    "gone", "internal-server-error", "item-not-found", "jid-malformed",
    "recipient-unavailable", "redirect", "remote-server-not-found",
    "remote-server-timeout", "service-unavailable", NULL,
};

bool muc_error_gone(struct shard *s, const struct stanza *st)
{
    struct xml_node *root = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                           sizeof s->scratch);
    struct xml_node *err = root ? xml_node_child(root, "error", NULL) : NULL;
    if (!err)
        return true; /* an error that names nothing: as Prosody, a malformed one goes */
    for (struct xml_node *c = err->children; c; c = c->next) {
        if (!c->name.p || !str_eq(c->ns, NS_STANZAS))
            continue;
        for (const char *const *g = gone_conditions; *g; g++)
            if (str_eq(c->name, *g))
                return true;
        return false;
    }
    return true;
}
