/*
 * muc_iq.c: a room's iq (muc.h): disco#info and disco#items of the room (XEP-0045 §6.4,
 * §6.5), muc#admin (roles and affiliations: §8 moderators, §9 admins, §10 owners) and
 * muc#owner (the configuration form, muc#roomconfig, §10.1-10.2; destroying, §10.9).
 */
#include "router/mam.h"
#include "router/muc.h"
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_XDATA       "jabber:x:data"
#define NS_ROOMCONFIG  "http://jabber.org/protocol/muc#roomconfig"
#define NS_ROOMINFO    "http://jabber.org/protocol/muc#roominfo"

static void feature(struct buf *b, const char *var)
{
    buf_puts(b, "<feature var='");
    buf_puts(b, var);
    buf_puts(b, "'/>");
}

void muc_room_features(const struct muc_room *r, struct buf *b)
{
    const struct muc_config *c = &r->cfg;
    feature(b, NS_MUC);
    feature(b, c->public_room ? "muc_public" : "muc_hidden");
    feature(b, c->persistent ? "muc_persistent" : "muc_temporary");
    feature(b, c->membersonly ? "muc_membersonly" : "muc_open");
    feature(b, c->moderated ? "muc_moderated" : "muc_unmoderated");
    feature(b, c->whois_anyone ? "muc_nonanonymous" : "muc_semianonymous");
    feature(b, c->password ? "muc_passwordprotected" : "muc_unsecured");
}

static void field(struct buf *b, const char *var, const char *type, const char *label,
                  const char *value)
{
    buf_puts(b, "<field var='");
    buf_puts(b, var);
    buf_puts(b, "'");
    if (type) {
        buf_puts(b, " type='");
        buf_puts(b, type);
        buf_puts(b, "'");
    }
    if (label) {
        buf_puts(b, " label='");
        buf_puts(b, label);
        buf_puts(b, "'");
    }
    buf_puts(b, "><value>");
    if (value)
        xmlw_text(b, value, strlen(value));
    buf_puts(b, "</value></field>");
}

static void disco_info(struct shard *s, struct muc_room *r, const struct stanza *st, const char *id)
{
    struct buf b = {0};
    char n[16];
    buf_puts(&b, "<query xmlns='" NS_DISCO_INFO "'><identity category='conference' type='text'");
    if (r->cfg.name)
        xmlw_attr(&b, "name", r->cfg.name, strlen(r->cfg.name));
    buf_puts(&b, "/>");
    feature(&b, NS_DISCO_INFO);
    feature(&b, NS_DISCO_ITEMS);
    feature(&b, "urn:xmpp:ping");
    muc_room_features(r, &b);
    if (s->cfg->mam.enabled) {
        feature(&b, NS_MAM); /* XEP-0313 §3.3.2: the room archives */
        feature(&b, NS_SID);
    }
    snprintf(n, sizeof n, "%u", r->noccupants);
    buf_puts(&b, "<x xmlns='" NS_XDATA "' type='result'>");
    field(&b, "FORM_TYPE", "hidden", NULL, NS_ROOMINFO);
    field(&b, "muc#roominfo_description", NULL, NULL, r->cfg.desc ? r->cfg.desc : "");
    field(&b, "muc#roominfo_occupants", NULL, NULL, n);
    field(&b, "muc#roominfo_subject", NULL, NULL, r->subject ? r->subject : "");
    buf_puts(&b, "</x></query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* ---- muc#owner: the configuration form ---- */

static void bool_field(struct buf *b, const char *var, const char *label, bool v)
{
    field(b, var, "boolean", label, v ? "1" : "0");
}

static void config_form(struct shard *s, struct muc_room *r, const struct stanza *st, const char *id)
{
    const struct muc_config *c = &r->cfg;
    char max[16];
    snprintf(max, sizeof max, "%u", c->maxusers);
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_XDATA "' type='form'>"
                 "<title>Room configuration</title>");
    field(&b, "FORM_TYPE", "hidden", NULL, NS_ROOMCONFIG);
    field(&b, "muc#roomconfig_roomname", "text-single", "Name", c->name);
    field(&b, "muc#roomconfig_roomdesc", "text-single", "Description", c->desc);
    bool_field(&b, "muc#roomconfig_persistentroom", "Persistent", c->persistent);
    bool_field(&b, "muc#roomconfig_publicroom", "Public", c->public_room);
    bool_field(&b, "muc#roomconfig_membersonly", "Members only", c->membersonly);
    bool_field(&b, "muc#roomconfig_moderatedroom", "Moderated", c->moderated);
    bool_field(&b, "muc#roomconfig_changesubject", "Participants may change the subject",
               c->changesubject);
    bool_field(&b, "muc#roomconfig_allowinvites", "Members may invite", c->allow_invites);
    bool_field(&b, "muc#roomconfig_passwordprotectedroom", "Password protected", c->password);
    field(&b, "muc#roomconfig_roomsecret", "text-private", "Password", c->password);
    field(&b, "muc#roomconfig_maxusers", "text-single", "Maximum occupants", max);
    buf_puts(&b, "<field var='muc#roomconfig_whois' type='list-single' label='Who sees real JIDs'>"
                 "<option><value>moderators</value></option><option><value>anyone</value></option>"
                 "<value>");
    buf_puts(&b, c->whois_anyone ? "anyone" : "moderators");
    buf_puts(&b, "</value></field></x></query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static bool truthy(const char *v)
{
    return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

/* A submitted form into c (a copy of the room's): 0, or -EINVAL when a value is wrong,
 * -ENOMEM. */
static int config_read(struct shard *s, const struct xml_node *x, struct muc_config *c,
                       bool *password_protected)
{
    for (struct xml_node *f = xml_node_child(x, "field", NS_XDATA); f;
         f = xml_node_next(f, "field", NS_XDATA)) {
        const char *var = xml_node_attr(f, "var");
        struct xml_node *vn = xml_node_child(f, "value", NS_XDATA);
        const char *v = vn ? xml_node_text(vn, &s->arena) : "";
        if (!var || !v)
            continue;
        char **str = NULL;
        if (!strcmp(var, "muc#roomconfig_roomname"))
            str = &c->name;
        else if (!strcmp(var, "muc#roomconfig_roomdesc"))
            str = &c->desc;
        else if (!strcmp(var, "muc#roomconfig_roomsecret"))
            str = &c->password;
        else if (!strcmp(var, "muc#roomconfig_persistentroom"))
            c->persistent = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_publicroom"))
            c->public_room = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_membersonly"))
            c->membersonly = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_moderatedroom"))
            c->moderated = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_changesubject"))
            c->changesubject = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_allowinvites"))
            c->allow_invites = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_passwordprotectedroom"))
            *password_protected = truthy(v);
        else if (!strcmp(var, "muc#roomconfig_whois"))
            c->whois_anyone = !strcmp(v, "anyone");
        else if (!strcmp(var, "muc#roomconfig_maxusers")) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (!strcmp(v, "none") || !v[0])
                n = s->cfg->muc.max_occupants;
            else if (*end || !n)
                return -EINVAL;
            c->maxusers = n > s->cfg->muc.max_occupants ? s->cfg->muc.max_occupants : (uint32_t)n;
        }
        if (str) {
            char *d = v[0] ? strdup(v) : NULL;
            if (v[0] && !d)
                return -ENOMEM;
            free(*str);
            *str = d;
        }
    }
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void owner_set(struct shard *s, struct muc_room *r, const struct stanza *st, const char *id,
                      const struct xml_node *q)
{
    struct xml_node *x = xml_node_child(q, "x", NS_XDATA);
    struct xml_node *destroy = xml_node_child(q, "destroy", NS_MUC_OWNER);
    if (destroy) {
        /* §10.9: the occupants hear why, and where to go. */
        struct buf e = {0};
        const char *alt = xml_node_attr(destroy, "jid");
        struct xml_node *rn = xml_node_child(destroy, "reason", NS_MUC_OWNER);
        const char *reason = rn ? xml_node_text(rn, &s->arena) : NULL;
        buf_puts(&e, "<destroy");
        if (alt)
            xmlw_attr(&e, "jid", alt, strlen(alt));
        buf_puts(&e, ">");
        if (reason && reason[0]) {
            buf_puts(&e, "<reason>");
            xmlw_text(&e, reason, strlen(reason));
            buf_puts(&e, "</reason>");
        }
        buf_puts(&e, "</destroy>");
        buf_append(&e, "", 1);
        iq_result(s, st, id, NULL, 0);
        muc_room_destroy(s, r, buf_data(&e));
        buf_free(&e);
        return;
    }
    const char *type = x ? xml_node_attr(x, "type") : NULL;
    if (!type) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    if (!strcmp(type, "cancel")) {
        iq_result(s, st, id, NULL, 0);
        if (r->locked) /* §10.1.3: a new room the owner gave up on */
            muc_room_destroy(s, r, NULL);
        return;
    }
    if (strcmp(type, "submit")) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    struct muc_config c = r->cfg;
    c.name = dup_or_null(r->cfg.name);
    c.desc = dup_or_null(r->cfg.desc);
    c.password = dup_or_null(r->cfg.password);
    bool protected = r->cfg.password != NULL;
    int rc = config_read(s, x, &c, &protected);
    if (!protected) {
        free(c.password);
        c.password = NULL;
    }
    if (rc < 0 || (protected && !c.password)) {
        muc_config_free(&c);
        out_error(s, st, rc == -ENOMEM ? "wait" : "modify",
                  rc == -ENOMEM ? "resource-constraint" : "not-acceptable");
        return;
    }
    muc_config_free(&r->cfg);
    r->cfg = c;
    r->locked = false; /* an instant room is an empty submission (§10.1.2) */
    muc_store_dirty(r);
    iq_result(s, st, id, NULL, 0);
    /* §9.5 and §10.2: made members-only, those who are not members leave (322). */
    if (r->cfg.membersonly)
        for (struct muc_occupant *o = r->occupants, *next; o; o = next) {
            next = o->next;
            if (o->aff < MUC_AFF_MEMBER)
                muc_occ_kick(s, r, o, 322, NULL);
        }
}

/* ---- muc#admin ---- */

static void admin_list(struct shard *s, struct muc_room *r, struct muc_occupant *actor,
                       const struct stanza *st, const char *id, const struct xml_node *item)
{
    int aff = muc_aff_parse(xml_node_attr(item, "affiliation"));
    int role = muc_role_parse(xml_node_attr(item, "role"));
    enum muc_aff mine = muc_aff_of(r, st->from, st->from_len);
    /* §9.5, §10.5, §10.8: affiliation lists for admins and owners; role lists (§8.5,
     * §9.8) for moderators. */
    if ((aff < 0 && role < 0) || (aff >= 0 && mine < MUC_AFF_ADMIN) ||
        (aff < 0 && (!actor || actor->role != MUC_ROLE_MODERATOR))) {
        out_error(s, st, aff < 0 && role < 0 ? "modify" : "auth",
                  aff < 0 && role < 0 ? "bad-request" : "forbidden");
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_MUC_ADMIN "'>");
    if (aff >= 0) {
        for (const struct muc_aff_item *a = r->affs; a; a = a->next)
            if (a->aff == aff) {
                buf_puts(&b, "<item affiliation='");
                buf_puts(&b, muc_aff_name((enum muc_aff)aff));
                buf_puts(&b, "'");
                xmlw_attr(&b, "jid", a->jid, a->len);
                buf_puts(&b, "/>");
            }
    } else {
        for (const struct muc_occupant *o = r->occupants; o; o = o->next)
            if (o->role == role) {
                buf_puts(&b, "<item role='");
                buf_puts(&b, muc_role_name((enum muc_role)role));
                buf_puts(&b, "' affiliation='");
                buf_puts(&b, muc_aff_name((enum muc_aff)o->aff));
                buf_puts(&b, "'");
                xmlw_attr(&b, "nick", o->nick, o->nick_len);
                xmlw_attr(&b, "jid", o->jid, o->jid_len);
                buf_puts(&b, "/>");
            }
    }
    buf_puts(&b, "</query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static unsigned owners(const struct muc_room *r)
{
    unsigned n = 0;
    for (const struct muc_aff_item *a = r->affs; a; a = a->next)
        n += a->aff == MUC_AFF_OWNER;
    return n;
}

/* The checks of one item of a set, before anything changes: NULL when it may be done,
 * else the error condition (and *type its type). */
static const char *admin_check(struct muc_room *r, struct muc_occupant *actor, enum muc_aff mine,
                               const struct xml_node *item, const char **type)
{
    const char *nick = xml_node_attr(item, "nick"), *jid = xml_node_attr(item, "jid");
    int aff = muc_aff_parse(xml_node_attr(item, "affiliation"));
    int role = muc_role_parse(xml_node_attr(item, "role"));
    *type = "modify";
    if (role >= 0 && nick) {
        struct muc_occupant *o = muc_occ_by_nick(r, nick, strlen(nick));
        if (!o)
            return "item-not-found";
        *type = "cancel";
        if (!actor || actor->role != MUC_ROLE_MODERATOR) {
            *type = "auth";
            return "forbidden";
        }
        if (!muc_may_set_role((enum muc_role)actor->role, mine, (enum muc_aff)o->aff,
                              (enum muc_role)o->role, (enum muc_role)role))
            return "not-allowed";
        return NULL;
    }
    if (aff >= 0 && jid) {
        struct jid j;
        char tmp[JID_BUF];
        if (jid_parse(&j, jid, strlen(jid), tmp, sizeof tmp) < 0)
            return "jid-malformed";
        enum muc_aff from = muc_aff_of(r, j.str, jid_bare_len(&j));
        *type = "auth";
        if (!muc_may_set_aff(mine, from, (enum muc_aff)aff))
            return "forbidden";
        *type = "cancel";
        if (from == MUC_AFF_OWNER && aff != MUC_AFF_OWNER && owners(r) == 1)
            return "conflict"; /* §10.7: the last owner stays */
        return NULL;
    }
    return "bad-request";
}

/* An occupant's role or affiliation changed (§8.4, §9.3-9.4): banned or no longer a
 * member of a members-only room it leaves; else everyone hears its new item. */
static void occupant_changed(struct shard *s, struct muc_room *r, struct muc_occupant *o,
                             const char *reason)
{
    static const int self_110[] = {110, 0};
    if (o->aff == MUC_AFF_OUTCAST)
        muc_occ_kick(s, r, o, 301, reason);
    else if (r->cfg.membersonly && o->aff < MUC_AFF_MEMBER)
        muc_occ_kick(s, r, o, 321, reason);
    else
        muc_presence_broadcast(s, r, o, false, NULL, NULL, self_110, NULL);
}

static void admin_set(struct shard *s, struct muc_room *r, struct muc_occupant *actor,
                      const struct stanza *st, const char *id, const struct xml_node *q)
{
    enum muc_aff mine = muc_aff_of(r, st->from, st->from_len);
    unsigned n = 0;
    const char *type, *cond;
    for (struct xml_node *it = xml_node_child(q, "item", NS_MUC_ADMIN); it;
         it = xml_node_next(it, "item", NS_MUC_ADMIN), n++)
        if ((cond = admin_check(r, actor, mine, it, &type))) {
            out_error(s, st, type, cond); /* §9: all of it or nothing */
            return;
        }
    if (!n) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    iq_result(s, st, id, NULL, 0);
    for (struct xml_node *it = xml_node_child(q, "item", NS_MUC_ADMIN); it;
         it = xml_node_next(it, "item", NS_MUC_ADMIN)) {
        const char *nick = xml_node_attr(it, "nick"), *jid = xml_node_attr(it, "jid");
        int aff = muc_aff_parse(xml_node_attr(it, "affiliation"));
        int role = muc_role_parse(xml_node_attr(it, "role"));
        struct xml_node *rn = xml_node_child(it, "reason", NS_MUC_ADMIN);
        const char *reason = rn ? xml_node_text(rn, &s->arena) : NULL;
        if (reason && !reason[0])
            reason = NULL;
        if (role >= 0 && nick) {
            struct muc_occupant *o = muc_occ_by_nick(r, nick, strlen(nick));
            if (!o)
                continue;
            if (role == MUC_ROLE_NONE) {
                muc_occ_kick(s, r, o, 307, reason); /* §8.2 kicked */
                continue;
            }
            o->role = (uint8_t)role;
            occupant_changed(s, r, o, reason);
            continue;
        }
        struct jid j;
        char tmp[JID_BUF];
        if (jid_parse(&j, jid, strlen(jid), tmp, sizeof tmp) < 0)
            continue;
        size_t blen = jid_bare_len(&j);
        if (muc_aff_set(r, j.str, blen, (enum muc_aff)aff, s->cfg->muc.max_affiliations) < 0)
            continue; /* over muc.max_affiliations: the error was ours to give before */
        muc_store_dirty(r);
        for (struct muc_occupant *o = r->occupants, *next; o; o = next) {
            next = o->next;
            if (o->bare_len != blen || memcmp(o->jid, j.str, blen))
                continue;
            o->aff = (uint8_t)aff;
            o->role = (uint8_t)muc_role_default(r, (enum muc_aff)aff);
            occupant_changed(s, r, o, reason);
        }
    }
}

void muc_iq(struct shard *s, struct muc_room *r, const struct stanza *st)
{
    if (st->h->type >= PROTO_IQ_RESULT)
        return;
    struct xml_node *iq = xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch,
                                         sizeof s->scratch);
    struct xml_node *q = NULL;
    unsigned elements = 0;
    for (struct xml_node *c = iq ? iq->children : NULL; c; c = c->next)
        if (c->name.p) {
            q = c;
            elements++;
        }
    const char *id = iq ? xml_node_attr(iq, "id") : NULL;
    if (!iq || elements != 1 || !id) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    bool get = st->h->type == PROTO_IQ_GET;
    struct muc_occupant *actor = muc_occ_by_jid(r, st->from, st->from_len);
    if (get && iq_is(q, "query", NS_DISCO_INFO) && !xml_node_attr(q, "node")) {
        disco_info(s, r, st, id);
    } else if (get && iq_is(q, "query", NS_DISCO_ITEMS)) {
        /* §6.5: occupants stay private. */
        static const char items[] = "<query xmlns='" NS_DISCO_ITEMS "'/>";
        iq_result(s, st, id, items, sizeof items - 1);
    } else if (get && iq_is(q, "ping", "urn:xmpp:ping")) {
        iq_result(s, st, id, NULL, 0);
    } else if (iq_is(q, "query", NS_MUC_OWNER)) {
        if (muc_aff_of(r, st->from, st->from_len) != MUC_AFF_OWNER)
            out_error(s, st, "auth", "forbidden"); /* §10.1.2 */
        else if (get)
            config_form(s, r, st, id);
        else
            owner_set(s, r, st, id, q);
    } else if (iq_is(q, "query", NS_MAM)) {
        muc_mam_iq(s, r, st, iq, q);
    } else if (iq_is(q, "query", NS_MUC_ADMIN)) {
        struct xml_node *item = xml_node_child(q, "item", NS_MUC_ADMIN);
        if (get && item)
            admin_list(s, r, actor, st, id, item);
        else if (!get)
            admin_set(s, r, actor, st, id, q);
        else
            out_error(s, st, "modify", "bad-request");
    } else {
        out_error(s, st, "cancel", "service-unavailable");
    }
}
