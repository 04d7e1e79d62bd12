/*
 * muc.c: the chat service's module (muc.h): stanzas to rooms at their home shard,
 * occupants' presence, groupchat and private messages, invitations, and the fan-out of
 * what a room sends. The iq of rooms (disco, muc#admin, muc#owner) is muc_iq.c's, the
 * reading and rewriting of what an occupant sends muc_stanza.c's.
 */
#include "router/muc.h"
#include "router/mam.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING        "urn:xmpp:ping"

static struct muc_shard *state(struct shard *s)
{
    return s->mod[MOD_SLOT_MUC];
}

struct muc_table *muc_rooms(struct shard *s)
{
    return &state(s)->rooms;
}

static bool for_muc(const struct shard *s, const struct stanza *st)
{
    return st->to_len && config_is_muc(s->cfg, st->to + st->h->to_domain_off, st->h->to_domain_len);
}

/* ---- sending ---- */

void muc_send(struct shard *s, const struct muc_room *r, const struct muc_occupant *to,
              const char *stanza, size_t len, uint32_t to_at)
{
    if (!to->remote) {
        struct out_list l = {0};
        out_list_add(&l, to->conn, to->jid, to->jid_len);
        out_list_send(s, &l, stanza, len, to_at);
        out_list_free(&l);
        return;
    }
    /* A remote server's user: through s2s, with its `to` now. The `from` is the one
     * the stanza carries: the room, or one of its occupants. */
    struct buf b = {0};
    buf_append(&b, stanza, to_at);
    xmlw_attr(&b, "to", to->jid, to->jid_len);
    buf_append(&b, stanza + to_at, len - to_at);
    const char *f = memmem(stanza, len < 512 ? len : 512, " from='", 7);
    const char *fe = f ? memchr(f + 7, '\'', (size_t)(stanza + len - f - 7)) : NULL;
    if (fe) {
        uint8_t kind = stanza[1] == 'm' ? PROTO_MESSAGE : stanza[1] == 'p' ? PROTO_PRESENCE : PROTO_IQ;
        uint8_t type = kind == PROTO_MESSAGE ? PROTO_MSG_GROUPCHAT : PROTO_PRES_AVAILABLE;
        size_t flen = (size_t)(fe - f - 7);
        route_generated(s, f + 7, flen, r->jid_len, to->jid, to->jid_len, to->bare_len, kind,
                        type, buf_data(&b), buf_used(&b));
    }
    buf_free(&b);
}

void muc_broadcast(struct shard *s, struct muc_room *r, const char *stanza, size_t len,
                   uint32_t to_at)
{
    struct out_list l = {0};
    struct muc_remotes rem = {0};
    for (struct muc_occupant *o = r->occupants; o; o = o->next)
        if (!o->remote)
            out_list_add(&l, o->conn, o->jid, o->jid_len);
        else
            muc_remotes_add(&rem, o);
    uint64_t frames = s->stats.deliver_frames + s->stats.link_deliver_frames;
    out_list_send(s, &l, stanza, len, to_at);
    /* Counted by what it returns: a frame for another node's s2s is in neither counter. */
    unsigned remote = muc_remotes_send(s, &rem, stanza, len, to_at);
    s->stats.muc_deliver_frames += s->stats.deliver_frames + s->stats.link_deliver_frames +
                                   remote - frames;
    s->stats.muc_deliveries += r->noccupants;
    out_list_free(&l);
}

static void code_list(struct buf *b, const int *codes)
{
    char tmp[40];
    for (; codes && *codes; codes++) {
        snprintf(tmp, sizeof tmp, "<status code='%d'/>", *codes);
        buf_puts(b, tmp);
    }
}

/* muc_presence_build() with a reason inside the item. */
static void presence_build(struct buf *b, const struct muc_room *r, const struct muc_occupant *o,
                           bool unavailable, bool with_jid, const char *nick, const char *reason,
                           const int *codes, const int *more, const char *extra)
{
    struct buf f = {0};
    buf_append(&f, r->jid, r->jid_len);
    buf_puts(&f, "/");
    buf_append(&f, o->nick, o->nick_len);
    buf_puts(b, "<presence");
    xmlw_attr(b, "from", buf_data(&f), buf_used(&f));
    buf_free(&f);
    if (unavailable)
        buf_puts(b, " type='unavailable'");
    buf_puts(b, ">");
    if (o->pres)
        buf_append(b, o->pres, o->pres_len);
    buf_puts(b, "<x xmlns='" NS_MUC_USER "'><item affiliation='");
    buf_puts(b, muc_aff_name((enum muc_aff)o->aff));
    buf_puts(b, "' role='");
    buf_puts(b, muc_role_name(unavailable ? MUC_ROLE_NONE : (enum muc_role)o->role));
    buf_puts(b, "'");
    if (with_jid)
        xmlw_attr(b, "jid", o->jid, o->jid_len);
    if (nick)
        xmlw_attr(b, "nick", nick, strlen(nick));
    if (reason) {
        buf_puts(b, "><reason>");
        xmlw_text(b, reason, strlen(reason));
        buf_puts(b, "</reason></item>");
    } else {
        buf_puts(b, "/>");
    }
    code_list(b, codes);
    code_list(b, more);
    if (extra)
        buf_puts(b, extra);
    buf_puts(b, "</x></presence>");
}

void muc_presence_build(struct buf *b, const struct muc_room *r, const struct muc_occupant *o,
                        bool unavailable, bool with_jid, const char *nick, const int *codes,
                        const char *extra)
{
    presence_build(b, r, o, unavailable, with_jid, nick, NULL, codes, NULL, extra);
}

#define TO_AT_PRESENCE 9
#define TO_AT_MESSAGE  8

/* To everyone: real JIDs to moderators (everyone in a non-anonymous room), self codes
 * to the occupant itself; one delivery per variant. */
static void presence_to_all(struct shard *s, struct muc_room *r, const struct muc_occupant *o,
                            bool unavailable, const char *nick, const char *reason,
                            const int *codes, const int *self_codes, const char *extra,
                            bool self_too)
{
    struct buf plain = {0}, jid = {0}, self = {0};
    presence_build(&plain, r, o, unavailable, false, nick, reason, codes, NULL, extra);
    presence_build(&jid, r, o, unavailable, true, nick, reason, codes, NULL, extra);
    presence_build(&self, r, o, unavailable, true, nick, reason, codes, self_codes, extra);
    struct out_list lp = {0}, lj = {0};
    struct muc_remotes rp = {0}, rj = {0};
    for (struct muc_occupant *x = r->occupants; x; x = x->next) {
        bool sees = r->cfg.whois_anyone || x->role == MUC_ROLE_MODERATOR;
        if (x == o)
            continue;
        if (x->remote)
            muc_remotes_add(sees ? &rj : &rp, x);
        else
            out_list_add(sees ? &lj : &lp, x->conn, x->jid, x->jid_len);
    }
    out_list_send(s, &lp, buf_data(&plain), buf_used(&plain), TO_AT_PRESENCE);
    out_list_send(s, &lj, buf_data(&jid), buf_used(&jid), TO_AT_PRESENCE);
    muc_remotes_send(s, &rp, buf_data(&plain), buf_used(&plain), TO_AT_PRESENCE);
    muc_remotes_send(s, &rj, buf_data(&jid), buf_used(&jid), TO_AT_PRESENCE);
    if (self_too)
        muc_send(s, r, o, buf_data(&self), buf_used(&self), TO_AT_PRESENCE);
    out_list_free(&lp);
    out_list_free(&lj);
    buf_free(&plain);
    buf_free(&jid);
    buf_free(&self);
}

void muc_presence_broadcast(struct shard *s, struct muc_room *r, const struct muc_occupant *o,
                            bool unavailable, const char *nick, const int *codes,
                            const int *self_codes, const char *extra)
{
    presence_to_all(s, r, o, unavailable, nick, NULL, codes, self_codes, extra, true);
}

static const int self_110[] = {110, 0};

void muc_occ_kick(struct shard *s, struct muc_room *r, struct muc_occupant *o, int code,
                  const char *reason)
{
    int codes[] = {code, 0};
    presence_to_all(s, r, o, true, NULL, reason, codes, self_110, NULL, true);
    muc_occ_remove(r, o);
}

void muc_room_destroy(struct shard *s, struct muc_room *r, const char *extra)
{
    for (struct muc_occupant *o = r->occupants; o; o = o->next) {
        struct buf b = {0};
        o->aff = MUC_AFF_NONE;
        presence_build(&b, r, o, true, false, NULL, NULL, NULL, NULL, extra);
        muc_send(s, r, o, buf_data(&b), buf_used(&b), TO_AT_PRESENCE);
        buf_free(&b);
    }
    muc_store_forget(s, r);
    muc_room_remove(muc_rooms(s), r);
}


/* ---- presence ---- */

/* XEP-0082 date-time (UTC or with an offset) to seconds; -1 when it is not one. */
static time_t parse_stamp(const char *v)
{
    struct tm tm = {0};
    const char *p = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    time_t t = timegm(&tm);
    if (*p == 'Z')
        return t;
    int hh, mm;
    if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
        return *p == '+' ? t - (hh * 3600 + mm * 60) : t + (hh * 3600 + mm * 60);
    return -1;
}

static void send_history(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                         const struct xml_node *hist)
{
    long maxstanzas = -1, maxchars = -1;
    time_t since = 0;
    const char *v;
    if (hist) {
        if ((v = xml_node_attr(hist, "maxstanzas")))
            maxstanzas = strtol(v, NULL, 10);
        if ((v = xml_node_attr(hist, "maxchars")))
            maxchars = strtol(v, NULL, 10);
        if ((v = xml_node_attr(hist, "seconds")))
            since = time(NULL) - strtol(v, NULL, 10);
        if ((v = xml_node_attr(hist, "since"))) {
            time_t t = parse_stamp(v);
            if (t > since)
                since = t;
        }
    }
    char stamp[32];
    for (const struct muc_hist *h = muc_hist_from(r, maxstanzas, maxchars, since); h; h = h->next) {
        struct tm tm;
        gmtime_r(&h->at, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        struct buf b = {0};
        buf_append(&b, h->stanza, h->len - 10); /* the stanza without </message> */
        buf_puts(&b, "<delay xmlns='urn:xmpp:delay'");
        xmlw_attr(&b, "from", r->jid, r->jid_len);
        buf_puts(&b, " stamp='");
        buf_puts(&b, stamp);
        buf_puts(&b, "'/></message>");
        muc_send(s, r, o, buf_data(&b), buf_used(&b), TO_AT_MESSAGE);
        buf_free(&b);
    }
}

static void send_subject(struct shard *s, struct muc_room *r, struct muc_occupant *o)
{
    struct buf b = {0}, f = {0};
    buf_append(&f, r->jid, r->jid_len);
    if (r->subject_nick) {
        buf_puts(&f, "/");
        buf_puts(&f, r->subject_nick);
    }
    buf_puts(&b, "<message type='groupchat'");
    xmlw_attr(&b, "from", buf_data(&f), buf_used(&f));
    buf_puts(&b, ">");
    if (r->subject) {
        buf_puts(&b, "<subject>");
        xmlw_text(&b, r->subject, strlen(r->subject));
        buf_puts(&b, "</subject></message>");
    } else {
        buf_puts(&b, "<subject/></message>");
    }
    /* "<message" then ` to` goes before the type: the same place as a broadcast's. */
    muc_send(s, r, o, buf_data(&b), buf_used(&b), TO_AT_MESSAGE);
    buf_free(&b);
    buf_free(&f);
}

/* The presence children to keep (the MUC ones out), into the occupant. */
static int keep_presence(struct muc_occupant *o, const struct stanza *st, const struct muc_spans *sp)
{
    struct buf b = {0};
    for (unsigned i = 0; i < sp->n; i++)
        if (sp->c[i].kind != MUC_CH_X_MUC && sp->c[i].kind != MUC_CH_X_USER)
            buf_append(&b, st->raw + sp->c[i].off, sp->c[i].len);
    int rc = muc_occ_set_pres(o, buf_data(&b), buf_used(&b));
    buf_free(&b);
    return rc;
}

static void join(struct shard *s, struct muc_room *r, const struct stanza *st,
                 const struct muc_spans *sp, const char *nick, size_t nick_len)
{
    const struct config *cfg = s->cfg;
    struct muc_table *t = muc_rooms(s);
    if (nick_len > cfg->muc.max_nick_bytes) {
        out_error(s, st, "modify", "not-acceptable");
        return;
    }
    struct xml_node *pr = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                         sizeof s->scratch);
    struct xml_node *x = pr ? xml_node_child(pr, "x", NS_MUC) : NULL;
    struct xml_node *pw = x ? xml_node_child(x, "password", NS_MUC) : NULL;
    const char *password = pw ? xml_node_text(pw, &s->arena) : NULL;
    if (!pr) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    bool created = false;
    enum muc_aff aff;
    if (!r) {
        if (t->count >= cfg->muc.max_rooms) {
            out_error(s, st, "wait", "resource-constraint");
            return;
        }
        if (!(r = muc_room_add(t, st->h->to_key, st->to, st->to_bare_len, cfg->muc.max_occupants)) ||
            muc_aff_set(r, st->from, st->from_bare_len, MUC_AFF_OWNER, cfg->muc.max_affiliations) < 0) {
            if (r)
                muc_room_remove(t, r);
            out_error(s, st, "wait", "resource-constraint");
            return;
        }
        r->locked = true; /* §10.1.1: until the owner configures it */
        created = true;
        aff = MUC_AFF_OWNER;
    } else {
        aff = muc_aff_of(r, st->from, st->from_len);
        struct muc_occupant *same = muc_occ_by_nick(r, nick, nick_len);
        if (r->locked && aff != MUC_AFF_OWNER) {
            out_error(s, st, "cancel", "item-not-found"); /* §10.1.1: not there yet */
            return;
        }
        if (aff == MUC_AFF_OUTCAST) {
            out_error(s, st, "auth", "forbidden"); /* §7.2.8: banned */
            return;
        }
        if (r->cfg.membersonly && aff < MUC_AFF_MEMBER) {
            out_error(s, st, "auth", "registration-required"); /* §7.2.7 */
            return;
        }
        if (same) {
            out_error(s, st, "cancel", "conflict"); /* §7.2.9 */
            return;
        }
        if (r->cfg.password && aff < MUC_AFF_OWNER && (!password || strcmp(password, r->cfg.password))) {
            out_error(s, st, "auth", "not-authorized"); /* §7.2.6 */
            return;
        }
        if (r->noccupants >= r->cfg.maxusers && aff < MUC_AFF_ADMIN) {
            out_error(s, st, "wait", "service-unavailable"); /* §7.2.10 */
            return;
        }
    }
    bool remote = st->h->flags & PROTO_STANZA_REMOTE;
    struct muc_occupant *o = muc_occ_add(r, nick, nick_len, st->from, st->from_len,
                                         st->from_bare_len, remote ? 0 : st->h->conn);
    if (o)
        o->remote = remote;
    if (!o || keep_presence(o, st, sp) < 0) {
        if (o)
            muc_occ_remove(r, o);
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    o->aff = (uint8_t)aff;
    o->role = (uint8_t)muc_role_default(r, aff);
    /* §7.2.3: everyone already there to the newcomer, then the newcomer to everyone,
     * its own copy last with 110 (and 201 for a new room, 100 when JIDs are public). */
    bool sees = r->cfg.whois_anyone || o->role == MUC_ROLE_MODERATOR;
    for (struct muc_occupant *y = r->occupants; y; y = y->next) {
        if (y == o)
            continue;
        struct buf b = {0};
        presence_build(&b, r, y, false, sees, NULL, NULL, NULL, NULL, NULL);
        muc_send(s, r, o, buf_data(&b), buf_used(&b), TO_AT_PRESENCE);
        buf_free(&b);
    }
    int self_codes[4], n = 0;
    self_codes[n++] = 110;
    if (r->cfg.whois_anyone)
        self_codes[n++] = 100;
    if (created)
        self_codes[n++] = 201;
    self_codes[n] = 0;
    muc_presence_broadcast(s, r, o, false, NULL, NULL, self_codes, NULL);
    /* The subject ends every join (§7.2.15), a new room's too: clients wait for it. */
    send_history(s, r, o, x ? xml_node_child(x, "history", NS_MUC) : NULL);
    send_subject(s, r, o);
}

static void change_nick(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                        const struct stanza *st, const struct muc_spans *sp, const char *nick,
                        size_t nick_len)
{
    if (nick_len > s->cfg->muc.max_nick_bytes) {
        out_error(s, st, "modify", "not-acceptable");
        return;
    }
    if (muc_occ_by_nick(r, nick, nick_len)) {
        out_error(s, st, "cancel", "conflict"); /* §7.6.2 */
        return;
    }
    char *newnick = arena_strndup(&s->arena, nick, nick_len);
    if (!newnick) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    /* §7.6.3: unavailable with 303 and the new nick, then available under it. */
    static const int c303[] = {303, 0};
    presence_to_all(s, r, o, true, newnick, NULL, c303, self_110, NULL, true);
    if (muc_occ_set_nick(o, nick, nick_len) < 0)
        return;
    keep_presence(o, st, sp);
    muc_presence_broadcast(s, r, o, false, NULL, NULL, self_110, NULL);
}

static void leave(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                  const struct stanza *st, const struct muc_spans *sp)
{
    if (sp)
        keep_presence(o, st, sp); /* its <status/>, said on the way out */
    muc_presence_broadcast(s, r, o, true, NULL, NULL, self_110, NULL);
    muc_occ_remove(r, o);
}

/* An error from an occupant's real full JID (to the room or to room/nick: a reply to
 * what the room sent it) says the room's stanzas no longer reach it: removed as
 * XEP-0045 §9 (status code registry) has it, with 333 to the others. A presence error
 * always removes (what the room sends in presence is the room's state), a message error
 * when its condition says the occupant or its server is gone (muc_error_gone(), the
 * same rule for local and remote occupants). An error from a JID that is not an
 * occupant is dropped: that is how a removal's own broadcast, bounced again by a server
 * that is down, ends. */
static void occupant_error(struct shard *s, struct muc_room *r, const struct stanza *st)
{
    struct muc_occupant *o = r ? muc_occ_by_jid(r, st->from, st->from_len) : NULL;
    if (o && (st->h->kind == PROTO_PRESENCE || muc_error_gone(s, st))) {
        LOG_RL(LOG_LEVEL_INFO, "shard %u: %.*s leaves %.*s: its server or client returned an "
               "error", s->idx, (int)o->jid_len, o->jid, (int)r->jid_len, r->jid);
        muc_occ_kick(s, r, o, 333, NULL);
    }
}

static void room_presence(struct shard *s, struct muc_room *r, const struct stanza *st)
{
    uint8_t type = st->h->type;
    struct muc_occupant *o = r ? muc_occ_by_jid(r, st->from, st->from_len) : NULL;
    const char *nick = st->to + st->to_bare_len + 1;
    size_t nick_len = st->to_len > st->to_bare_len ? st->to_len - st->to_bare_len - 1 : 0;
    struct muc_spans sp;
    if (type == PROTO_PRES_ERROR) {
        occupant_error(s, r, st);
        return;
    }
    if (type == PROTO_PRES_UNAVAILABLE) {
        if (o)
            leave(s, r, o, st, muc_spans_read(s, st, &sp) ? &sp : NULL);
        return;
    }
    if (type != PROTO_PRES_AVAILABLE)
        return; /* subscriptions and probes: a room has none */
    if (!nick_len) {
        if (!o)
            out_error(s, st, "modify", "jid-malformed"); /* §7.2.1: no nick */
        return;
    }
    if (!o && (st->h->flags & ROUTE_GENERATED))
        return; /* the server's own presence for a JID (an approval's): not a join */
    if (!muc_spans_read(s, st, &sp)) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    if (!o) {
        join(s, r, st, &sp, nick, nick_len);
    } else if (o->nick_len != nick_len || memcmp(o->nick, nick, nick_len)) {
        change_nick(s, r, o, st, &sp, nick, nick_len);
    } else {
        keep_presence(o, st, &sp); /* a change of show or status (§7.7) */
        muc_presence_broadcast(s, r, o, false, NULL, NULL, self_110, NULL);
    }
}

/* ---- messages ---- */

/* false when refused (the sender told). */
static bool set_subject(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                        const struct stanza *st)
{
    if (o->role != MUC_ROLE_MODERATOR && !(r->cfg.changesubject && o->role == MUC_ROLE_PARTICIPANT)) {
        out_error(s, st, "auth", "forbidden"); /* §8.1 */
        return false;
    }
    struct xml_node *m = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                        sizeof s->scratch);
    struct xml_node *sub = m ? xml_node_child(m, "subject", XML_NS_CLIENT) : NULL;
    const char *text = sub ? xml_node_text(sub, &s->arena) : NULL;
    if (!text) {
        out_error(s, st, "wait", "resource-constraint");
        return false;
    }
    if (strlen(text) > s->cfg->muc.max_subject_bytes) {
        out_error(s, st, "modify", "not-acceptable");
        return false;
    }
    char *n = text[0] ? strdup(text) : NULL, *who = strndup(o->nick, o->nick_len);
    if ((text[0] && !n) || !who) {
        free(n);
        free(who);
        out_error(s, st, "wait", "resource-constraint");
        return false;
    }
    free(r->subject);
    free(r->subject_nick);
    r->subject = n;
    r->subject_nick = who;
    muc_store_dirty(r);
    return true;
}

static void groupchat(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                      const struct stanza *st)
{
    if (!o) {
        out_error(s, st, "modify", "not-acceptable"); /* §7.4: not an occupant */
        return;
    }
    if (o->role < MUC_ROLE_PARTICIPANT) {
        out_error(s, st, "auth", "forbidden"); /* a visitor of a moderated room */
        return;
    }
    struct muc_spans sp;
    if (!muc_spans_read(s, st, &sp)) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    bool subject = sp.has[MUC_CH_SUBJECT] && !sp.has[MUC_CH_BODY];
    if (subject && !set_subject(s, r, o, st))
        return;
    struct buf b = {0};
    muc_restamp(&b, st, &sp, r->jid, r->jid_len, o->nick, o->nick_len, NULL,
            (1u << MUC_CH_X_USER) | (1u << MUC_CH_SID));
    buf_puts(&b, "</message>");
    if (!subject && sp.has[MUC_CH_BODY] && !sp.has[MUC_CH_NOSTORE])
        muc_archive_hook(s, r, o, &b);
    if (!subject && sp.has[MUC_CH_BODY])
        muc_hist_add(r, buf_data(&b), buf_used(&b), time(NULL), s->cfg->muc.history,
                     s->cfg->muc.max_history_bytes);
    s->stats.muc_messages++;
    muc_broadcast(s, r, buf_data(&b), buf_used(&b), TO_AT_MESSAGE);
    buf_free(&b);
}

static void private_message(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                            const struct stanza *st, const char *nick, size_t nick_len)
{
    if (!o) {
        out_error(s, st, "modify", "not-acceptable"); /* §7.5: occupants only */
        return;
    }
    struct muc_occupant *to = muc_occ_by_nick(r, nick, nick_len);
    if (!to) {
        out_error(s, st, "cancel", "item-not-found");
        return;
    }
    struct muc_spans sp;
    if (!muc_spans_read(s, st, &sp)) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    struct buf b = {0};
    muc_restamp(&b, st, &sp, r->jid, r->jid_len, o->nick, o->nick_len, NULL,
            (1u << MUC_CH_X_USER) | (1u << MUC_CH_SID));
    buf_puts(&b, "<x xmlns='" NS_MUC_USER "'/></message>");
    muc_send(s, r, to, buf_data(&b), buf_used(&b), TO_AT_MESSAGE);
    buf_free(&b);
}

/* A message from the room itself (an invitation, a decline) to a JID outside it. */
static void from_room(struct shard *s, const struct muc_room *r, const char *to, size_t to_len,
                      const char *body)
{
    struct jid j;
    char tmp[JID_BUF];
    if (jid_parse(&j, to, to_len, tmp, sizeof tmp) < 0)
        return;
    struct buf b = {0};
    buf_puts(&b, "<message");
    xmlw_attr(&b, "from", r->jid, r->jid_len);
    xmlw_attr(&b, "to", j.str, j.len);
    buf_puts(&b, ">");
    buf_puts(&b, body);
    buf_puts(&b, "</message>");
    route_generated(s, r->jid, r->jid_len, r->jid_len, j.str, j.len, jid_bare_len(&j),
                    PROTO_MESSAGE, PROTO_MSG_NORMAL, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* §7.8.2 mediated invitations and §7.8.3 declines: <x muc#user> with <invite to/> or
 * <decline to/>. */
static void invitation(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                       const struct stanza *st)
{
    struct xml_node *m = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                        sizeof s->scratch);
    struct xml_node *x = m ? xml_node_child(m, "x", NS_MUC_USER) : NULL;
    struct xml_node *inv = x ? xml_node_child(x, "invite", NS_MUC_USER) : NULL;
    struct xml_node *dec = x ? xml_node_child(x, "decline", NS_MUC_USER) : NULL;
    struct xml_node *e = inv ? inv : dec;
    const char *to = e ? xml_node_attr(e, "to") : NULL;
    if (!to) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    struct xml_node *rn = xml_node_child(e, "reason", NS_MUC_USER);
    const char *reason = rn ? xml_node_text(rn, &s->arena) : NULL;
    struct buf body = {0};
    buf_puts(&body, "<x xmlns='" NS_MUC_USER "'><");
    buf_puts(&body, inv ? "invite" : "decline");
    xmlw_attr(&body, "from", st->from, inv ? st->from_bare_len : st->from_len);
    if (reason && reason[0]) {
        buf_puts(&body, "><reason>");
        xmlw_text(&body, reason, strlen(reason));
        buf_puts(&body, "</reason></");
        buf_puts(&body, inv ? "invite>" : "decline>");
    } else {
        buf_puts(&body, "/>");
    }
    if (inv) {
        if (!o) {
            out_error(s, st, "modify", "not-acceptable");
            goto out;
        }
        enum muc_aff aff = (enum muc_aff)o->aff;
        if (r->cfg.membersonly && aff < MUC_AFF_ADMIN && !(r->cfg.allow_invites && aff >= MUC_AFF_MEMBER)) {
            out_error(s, st, "auth", "forbidden"); /* §7.8.2: not theirs to invite */
            goto out;
        }
        struct jid j;
        char tmp[JID_BUF];
        if (jid_parse(&j, to, strlen(to), tmp, sizeof tmp) < 0) {
            out_error(s, st, "modify", "jid-malformed");
            goto out;
        }
        /* In a members-only room, an admin's invitation makes a member (§9.3). */
        if (r->cfg.membersonly && aff >= MUC_AFF_ADMIN &&
            muc_aff_of(r, j.str, jid_bare_len(&j)) == MUC_AFF_NONE &&
            muc_aff_set(r, j.str, jid_bare_len(&j), MUC_AFF_MEMBER, s->cfg->muc.max_affiliations) == 0)
            muc_store_dirty(r);
        if (r->cfg.password) {
            buf_puts(&body, "<password>");
            xmlw_text(&body, r->cfg.password, strlen(r->cfg.password));
            buf_puts(&body, "</password>");
        }
    }
    buf_puts(&body, "</x>");
    buf_append(&body, "", 1);
    from_room(s, r, to, strlen(to), buf_data(&body));
out:
    buf_free(&body);
}

static void room_message(struct shard *s, struct muc_room *r, const struct stanza *st)
{
    uint8_t type = st->h->type;
    if (type == PROTO_MSG_ERROR) {
        occupant_error(s, r, st); /* never answered: an error ends here */
        return;
    }
    if (!r) {
        out_error(s, st, "cancel", "item-not-found");
        return;
    }
    struct muc_occupant *o = muc_occ_by_jid(r, st->from, st->from_len);
    bool full = st->to_len > st->to_bare_len;
    if (full) {
        if (type == PROTO_MSG_GROUPCHAT)
            out_error(s, st, "modify", "bad-request"); /* §7.5: not to an occupant */
        else
            private_message(s, r, o, st, st->to + st->to_bare_len + 1,
                            st->to_len - st->to_bare_len - 1);
    } else if (type == PROTO_MSG_GROUPCHAT) {
        groupchat(s, r, o, st);
    } else if (memmem(st->raw, st->raw_len, NS_MUC_USER, sizeof NS_MUC_USER - 1)) {
        invitation(s, r, o, st);
    } else {
        out_error(s, st, "modify", "not-acceptable");
    }
}

/* ---- iq to an occupant's JID: XEP-0410 self-ping; the rest is not relayed ---- */

static void occupant_iq(struct shard *s, struct muc_room *r, const struct stanza *st)
{
    if (st->h->type >= PROTO_IQ_RESULT)
        return;
    struct muc_occupant *o = r ? muc_occ_by_jid(r, st->from, st->from_len) : NULL;
    const char *nick = st->to + st->to_bare_len + 1;
    size_t nick_len = st->to_len - st->to_bare_len - 1;
    if (!o) {
        out_error(s, st, "cancel", "not-acceptable"); /* XEP-0410: not joined (any more) */
        return;
    }
    struct xml_node *iq = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                         sizeof s->scratch);
    struct xml_node *ping = iq ? xml_node_child(iq, "ping", NS_PING) : NULL;
    if (ping && o->nick_len == nick_len && !memcmp(o->nick, nick, nick_len))
        iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
    else
        out_error(s, st, "cancel", "feature-not-implemented");
}

/* ---- the service's own domain ---- */

static void service_iq(struct shard *s, const struct stanza *st)
{
    if (st->h->type >= PROTO_IQ_RESULT)
        return;
    struct xml_node *iq = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                         sizeof s->scratch);
    struct xml_node *q = iq ? xml_node_child(iq, "query", NULL) : NULL;
    const char *id = iq ? xml_node_attr(iq, "id") : NULL;
    if (!q || st->h->type != PROTO_IQ_GET) {
        out_error(s, st, "cancel", "service-unavailable");
    } else if (!strcmp(q->ns.p, NS_DISCO_INFO) && !xml_node_attr(q, "node")) {
        static const char info[] =
            "<query xmlns='" NS_DISCO_INFO "'>"
            "<identity category='conference' type='text' name='Chatrooms'/>"
            "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>"
            "<feature var='" NS_MUC "'/><feature var='urn:xmpp:ping'/></query>";
        iq_result(s, st, id, info, sizeof info - 1);
    } else if (!strcmp(q->ns.p, NS_DISCO_ITEMS) && !xml_node_attr(q, "node")) {
        muc_store_list(s, st); /* the public persistent rooms: the store has them all */
    } else if (!strcmp(q->ns.p, NS_PING)) {
        iq_result(s, st, id, NULL, 0);
    } else {
        out_error(s, st, "cancel", "service-unavailable");
    }
    arena_reset(&s->arena);
}

static void service(struct shard *s, const struct stanza *st)
{
    if (st->h->kind == PROTO_IQ)
        service_iq(s, st);
    else if (st->h->kind == PROTO_MESSAGE && st->h->type != PROTO_MSG_ERROR)
        out_error(s, st, "cancel", "service-unavailable");
}

/* ---- the module ---- */

static bool muc_home(struct shard *s, const struct stanza *st)
{
    if (!for_muc(s, st))
        return false;
    if (!st->h->to_domain_off) {
        service(s, st);
        return true;
    }
    struct muc_room *r = muc_room_find(muc_rooms(s), st->h->to_key, st->to, st->to_bare_len);
    bool full = st->to_len > st->to_bare_len;
    if (!r && !muc_store_ready(s, st)) {
        arena_reset(&s->arena);
        return true; /* waits for the store's answer, or was refused */
    }
    switch (st->h->kind) {
    case PROTO_PRESENCE:
        room_presence(s, r, st);
        break;
    case PROTO_MESSAGE:
        room_message(s, r, st);
        break;
    default:
        if (full)
            occupant_iq(s, r, st);
        else if (r)
            muc_iq(s, r, st);
        else if (st->h->type <= PROTO_IQ_SET)
            out_error(s, st, "cancel", "item-not-found");
    }
    /* An empty room that nobody keeps goes (the stanza may have ended it already). */
    r = muc_room_find(muc_rooms(s), st->h->to_key, st->to, st->to_bare_len);
    if (r)
        muc_store_sync(s, r);
    if (r && !r->noccupants && (!r->cfg.persistent || r->locked))
        muc_room_remove(muc_rooms(s), r);
    arena_reset(&s->arena);
    return true;
}

/* The service's own domain has no home: answered in the sender's shard. */
static bool muc_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)u, (void)ss;
    if (!for_muc(s, st) || st->h->to_domain_off)
        return false;
    service(s, st);
    return true;
}

static void muc_items(const struct shard *s, struct buf *b)
{
    if (!s->cfg->muc.enabled)
        return;
    buf_puts(b, "<item");
    xmlw_attr(b, "jid", s->cfg->muc.domain, strlen(s->cfg->muc.domain));
    buf_puts(b, " name='Chatrooms'/>");
}

static int muc_shard_init(struct shard *s)
{
    struct muc_shard *m = calloc(1, sizeof *m);
    if (!m || muc_table_init(&m->rooms) < 0) {
        free(m);
        return -ENOMEM;
    }
    s->mod[MOD_SLOT_MUC] = m;
    return 0;
}

static void muc_shard_free(struct shard *s)
{
    struct muc_shard *m = state(s);
    if (!m)
        return;
    muc_store_free(s);
    muc_table_free(&m->rooms);
    free(m);
    s->mod[MOD_SLOT_MUC] = NULL;
}

const struct module mod_muc = {
    .name = "muc",
    .home = muc_home,
    .outbound = muc_outbound,
    .disco_items = muc_items,
    .shard_init = muc_shard_init,
    .shard_free = muc_shard_free,
};
