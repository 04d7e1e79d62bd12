/*
 * mam_query.c: the archive's iq (XEP-0313 §4-§7, urn:xmpp:mam:2): the query form, a
 * query (a jabber:x:data form with with, start, end, before-id, after-id; an RSM set
 * with max, after, before) answered by one <message/> per archived stanza and then
 * the iq's result with <fin/>, and the preferences. A user asks about its own archive
 * (mam_iq, the module's iq hook); a room's archive is asked through mam_query()
 * (mam.h), which the room module calls.
 *
 * Errors: a field or value this archive does not know, bad-request (XEP-0313 §4.1.1);
 * an id that is not one of ours, item-not-found; RSM <index/>, feature-not-implemented;
 * preferences with more than mam.max_prefs JIDs, policy-violation; the store failing,
 * internal-server-error (wait).
 */
#include "router/mam.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/store/store_mam.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_XDATA   "jabber:x:data"
#define NS_FORWARD "urn:xmpp:forward:0"

/* ---- time -------------------------------------------------------------------------------- */

static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

int64_t mam_time_parse(const char *s)
{
    /* XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, TZD Z or (+|-)hh:mm. */
    const char *p = s;
    struct tm tm = {0};
    int y = digits(&p, 4);
    if (y < 1970 || *p++ != '-')
        return -1;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-')
        return -1;
    int d = digits(&p, 2);
    if (d < 1 || d > 31 || *p++ != 'T')
        return -1;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':')
        return -1;
    int mi = digits(&p, 2);
    if (mi < 0 || mi > 59 || *p++ != ':')
        return -1;
    int sec = digits(&p, 2);
    if (sec < 0 || sec > 60)
        return -1;
    int64_t us = 0;
    if (*p == '.') {
        int64_t scale = 100000;
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            us += scale * (*p - '0');
    }
    int64_t off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2);
        if (oh < 0 || oh > 23 || *p++ != ':')
            return -1;
        int om = digits(&p, 2);
        if (om < 0 || om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    return ((int64_t)t - off) * 1000000 + us;
}

void mam_time_text(uint64_t us, char *out)
{
    time_t t = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06uZ", (unsigned)(us % 1000000u));
}

/* ---- the query --------------------------------------------------------------------------- */

/* A query on its way to the store: the iq's frame (to answer it), and what the answer
 * needs. */
struct query_ctx {
    struct user *u;      /* a user's archive: held (busy) until the answer; NULL: a room's */
    char *jid;           /* the archive's JID: the results' from */
    char *queryid, *id;  /* NULL: none */
    struct store_mam_query q; /* its owner and with point into the two below */
    char *owner;
    char with[JID_BUF];
    uint64_t len;        /* 64 bits: the frame after it is read as a struct proto_stanza */
    char frame[];
};

static const char form[] =
    "<query xmlns='" NS_MAM "'><x xmlns='" NS_XDATA "' type='form'>"
    "<field type='hidden' var='FORM_TYPE'><value>" NS_MAM "</value></field>"
    "<field type='jid-single' var='with'/>"
    "<field type='text-single' var='start'/>"
    "<field type='text-single' var='end'/>"
    "<field type='text-single' var='after-id'/>"
    "<field type='text-single' var='before-id'/>"
    "</x></query>";

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void ctx_free(struct query_ctx *c)
{
    free(c->owner);
    free(c->jid);
    free(c->queryid);
    free(c->id);
    free(c);
}

static struct query_ctx *ctx_new(const struct stanza *st, const char *jid, size_t jid_len,
                                 const char *id, const char *queryid)
{
    uint32_t len = (uint32_t)(sizeof *st->h + st->h->from_len + st->h->to_len + st->h->stanza_len);
    struct query_ctx *c = st->frame ? calloc(1, sizeof *c + len) : NULL;
    if (!c)
        return NULL;
    c->len = len;
    memcpy(c->frame, st->frame, len);
    c->jid = strndup(jid, jid_len);
    c->id = dup_or_null(id);
    c->queryid = dup_or_null(queryid);
    if (!c->jid || (id && !c->id) || (queryid && !c->queryid)) {
        ctx_free(c);
        return NULL;
    }
    return c;
}

/* A stanza to the asker: to its connection, or through s2s when it is remote. */
static void to_asker(struct shard *s, const struct stanza *st, const char *from, uint8_t kind,
                     const char *stanza, size_t len)
{
    if (st->h->flags & PROTO_STANZA_REMOTE) {
        size_t fl = strlen(from);
        const char *slash = memchr(from, '/', fl);
        route_generated(s, from, fl, slash ? (size_t)(slash - from) : fl, st->from, st->from_len,
                        st->from_bare_len, kind, kind == PROTO_MESSAGE ? PROTO_MSG_NORMAL : 0,
                        stanza, len);
    } else {
        out_deliver(s, &st->h->conn, 1, stanza, len);
    }
}

/* Does the stored start tag declare its default namespace? (as carbons.c's) */
static bool declares_ns(struct shard *s, const char *raw, size_t len)
{
    struct xml_parser p;
    struct xml_event ev;
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    bool yes = xml_next(&p, raw, len, &ev) == XML_EV_START && xml_declares(&p, raw, "", 0);
    xml_free(&p);
    return yes;
}

static void send_result(struct shard *s, const struct stanza *st, const struct query_ctx *c,
                        const struct store_mam_msg *m, struct buf *b)
{
    char id[MAM_ID_LEN], stamp[32];
    size_t idl = mam_id_text(m->id, id);
    mam_time_text(m->id, stamp);
    buf_consume(b, buf_used(b));
    buf_puts(b, "<message");
    xmlw_attr(b, "from", c->jid, strlen(c->jid));
    xmlw_attr(b, "to", st->from, st->from_len);
    buf_puts(b, "><result xmlns='" NS_MAM "'");
    if (c->queryid)
        xmlw_attr(b, "queryid", c->queryid, strlen(c->queryid));
    xmlw_attr(b, "id", id, idl);
    buf_puts(b, "><forwarded xmlns='" NS_FORWARD "'><delay xmlns='urn:xmpp:delay'");
    xmlw_attr(b, "stamp", stamp, strlen(stamp));
    buf_puts(b, "/>");
    /* The stored stanza, with its namespace stated: it now sits inside <forwarded/>. */
    if (m->len > 8 && !memcmp(m->stanza, "<message", 8) && !declares_ns(s, m->stanza, m->len)) {
        buf_append(b, m->stanza, 8);
        buf_puts(b, " xmlns='jabber:client'");
        buf_append(b, m->stanza + 8, m->len - 8);
    } else {
        buf_append(b, m->stanza, m->len);
    }
    buf_puts(b, "</forwarded></result></message>");
    to_asker(s, st, c->jid, PROTO_MESSAGE, buf_data(b), buf_used(b));
}

static void on_page(void *arg, int res, const struct store_mam_page *pg)
{
    struct query_ctx *c = arg;
    struct shard *s = shard_current;
    struct stanza st;
    if (!stanza_parse(c->frame, (uint32_t)c->len, &st))
        goto out;
    /* A user's session that left gets nothing (its connection may be another's now). */
    if (c->u && !session_by_conn(c->u, st.h->conn))
        goto out;
    if (res < 0) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: archive query of %s failed: %s", s->idx, c->jid,
               strerror(-res));
        out_error(s, &st, "wait", "internal-server-error");
        goto out;
    }
    struct buf b = {0};
    for (size_t i = 0; i < pg->n; i++)
        send_result(s, &st, c, &pg->msgs[i], &b);
    buf_consume(&b, buf_used(&b));
    buf_puts(&b, "<fin xmlns='" NS_MAM "'");
    if (pg->complete)
        buf_puts(&b, " complete='true'");
    buf_puts(&b, "><set xmlns='" NS_RSM "'>");
    char t[MAM_ID_LEN];
    if (pg->n) {
        buf_puts(&b, "<first");
        snprintf(t, sizeof t, "%zu", pg->index);
        xmlw_attr(&b, "index", t, strlen(t));
        buf_puts(&b, ">");
        buf_append(&b, t, mam_id_text(pg->msgs[0].id, t));
        buf_puts(&b, "</first><last>");
        buf_append(&b, t, mam_id_text(pg->msgs[pg->n - 1].id, t));
        buf_puts(&b, "</last>");
    }
    snprintf(t, sizeof t, "%zu", pg->count);
    buf_puts(&b, "<count>");
    buf_puts(&b, t);
    buf_puts(&b, "</count></set></fin>");
    iq_result(s, &st, c->id, buf_data(&b), buf_used(&b));
    buf_free(&b);
out:
    if (c->u) {
        c->u->busy--;
        user_release(&s->users, c->u);
    }
    ctx_free(c);
}

/* A field's (or an RSM element's) text; NULL when memory is short. */
static const char *text_of(struct shard *s, const struct xml_node *n)
{
    return xml_node_text(n, &s->arena);
}

/* Reads the query into q; an error condition, or NULL. */
static const char *parse_query(struct shard *s, const struct xml_node *qn,
                               struct store_mam_query *q, char *with, size_t with_cap)
{
    const struct xml_node *x = xml_node_child(qn, "x", NS_XDATA);
    for (const struct xml_node *f = x ? xml_node_child(x, "field", NS_XDATA) : NULL; f;
         f = xml_node_next(f, "field", NS_XDATA)) {
        const char *var = xml_node_attr(f, "var");
        const struct xml_node *vn = xml_node_child(f, "value", NS_XDATA);
        const char *v = vn ? text_of(s, vn) : "";
        if (!var || !v)
            return "bad-request";
        if (!strcmp(var, "FORM_TYPE")) {
            if (strcmp(v, NS_MAM) != 0)
                return "bad-request";
        } else if (!strcmp(var, "with")) {
            struct jid j;
            if (!*v || jid_parse(&j, v, strlen(v), with, with_cap) < 0)
                return "bad-request";
            q->with = with;
        } else if (!strcmp(var, "start") || !strcmp(var, "end")) {
            int64_t t = mam_time_parse(v);
            if (t < 0)
                return "bad-request";
            /* Ids are times in microseconds: a time is an id bound. */
            if (var[0] == 's')
                q->start = t ? (uint64_t)t : 1;
            else
                q->end = t ? (uint64_t)t : 1; /* 0 would be no bound */
        } else if (!strcmp(var, "after-id") || !strcmp(var, "before-id")) {
            uint64_t id = mam_id_parse(v);
            if (!id)
                return "item-not-found";
            if (var[0] == 'a')
                q->after = id > q->after ? id : q->after;
            else
                q->before = !q->before || id < q->before ? id : q->before;
        } else {
            return "bad-request";
        }
    }
    const struct xml_node *set = xml_node_child(qn, "set", NS_RSM);
    if (!set)
        return NULL;
    if (xml_node_child(set, "index", NS_RSM))
        return "feature-not-implemented";
    const struct xml_node *n;
    if ((n = xml_node_child(set, "max", NS_RSM))) {
        const char *v = text_of(s, n);
        char *end;
        unsigned long m = v ? strtoul(v, &end, 10) : 0;
        if (!v || !*v || *end || v[0] == '-')
            return "bad-request";
        q->max = m < q->max ? m : q->max;
    }
    if ((n = xml_node_child(set, "after", NS_RSM))) {
        uint64_t id = mam_id_parse(text_of(s, n));
        if (!id)
            return "item-not-found";
        q->after = id > q->after ? id : q->after;
    }
    if ((n = xml_node_child(set, "before", NS_RSM))) {
        const char *v = text_of(s, n);
        if (!v)
            return "bad-request";
        q->last = true; /* RSM §2.5: <before/> alone asks for the last page */
        if (*v) {
            uint64_t id = mam_id_parse(v);
            if (!id)
                return "item-not-found";
            q->before = !q->before || id < q->before ? id : q->before;
        }
    }
    return NULL;
}

/* The query to the store, after every row archived before it. */
static void submit(struct shard *s, void *arg)
{
    struct query_ctx *c = arg;
    mam_flush(s);
    if (store_mam_query(s->store, &c->q, on_page, c) < 0)
        on_page(c, -EAGAIN, NULL);
}

static void query(struct shard *s, struct user *u, const char *owner, const char *jid,
                  size_t jid_len, const struct stanza *st, const struct xml_node *iq,
                  const struct xml_node *qn)
{
    const char *id = xml_node_attr(iq, "id");
    if (!s->cfg->mam.enabled) {
        out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    if (st->h->type == PROTO_IQ_GET) {
        iq_result(s, st, id, form, sizeof form - 1);
        return;
    }
    char with[JID_BUF];
    struct store_mam_query q = {.owner = owner, .max = s->cfg->mam.max_page};
    const char *err = parse_query(s, qn, &q, with, sizeof with);
    if (err) {
        out_error(s, st, !strcmp(err, "bad-request") ? "modify" : "cancel", err);
        return;
    }
    if (s->cfg->mam.retention) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        uint64_t oldest = now - (uint64_t)s->cfg->mam.retention * 1000000u;
        if (q.start < oldest)
            q.start = oldest;
    }
    struct query_ctx *c = ctx_new(st, jid, jid_len, id, xml_node_attr(qn, "queryid"));
    if (c && !(c->owner = strdup(owner))) {
        ctx_free(c);
        c = NULL;
    }
    if (!c) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    c->q = q;
    c->q.owner = c->owner;
    if (q.with)
        c->q.with = strcpy(c->with, q.with);
    if ((c->u = u))
        u->busy++;
    /* Rows that wait for the user's preferences would reach the store after the query:
     * it waits for them. */
    if (!u || !mam_prefs_wait(u, submit, c))
        submit(s, c);
}

void mam_query(struct shard *s, const char *owner, const char *jid, size_t jid_len,
               const struct stanza *st, const struct xml_node *iq, const struct xml_node *q)
{
    if (!iq_is(q, "query", NS_MAM)) {
        out_error(s, st, "cancel", "feature-not-implemented");
        return;
    }
    query(s, NULL, owner, jid, jid_len, st, iq, q);
}

/* ---- preferences ------------------------------------------------------------------------- */

static const char *const default_names[] = {"always", "never", "roster"};

static void prefs_xml(struct buf *b, const struct store_mam_prefs *p)
{
    buf_puts(b, "<prefs xmlns='" NS_MAM "' default='");
    buf_puts(b, default_names[p->dflt <= STORE_MAM_ROSTER ? p->dflt : 0]);
    buf_puts(b, "'>");
    for (int list = 1; list >= 0; list--) {
        buf_puts(b, list ? "<always>" : "<never>");
        for (size_t i = 0; i < p->n; i++)
            if (p->always[i] == list) {
                buf_puts(b, "<jid>");
                xmlw_text(b, p->jids[i], strlen(p->jids[i]));
                buf_puts(b, "</jid>");
            }
        buf_puts(b, list ? "</always>" : "</never>");
    }
    buf_puts(b, "</prefs>");
}

struct prefs_ctx {
    struct user *u;
    struct store_mam_prefs p; /* a mam_prefs_copy(): the user's once stored */
    char *id;
    uint64_t len;
    char frame[];
};

static void prefs_ctx_free(struct prefs_ctx *c)
{
    if (!c)
        return;
    free((void *)c->p.jids);
    free(c->id);
    free(c);
}

static void on_prefs_set(void *arg, int res)
{
    struct prefs_ctx *c = arg;
    struct shard *s = shard_current;
    struct stanza st;
    if (stanza_parse(c->frame, (uint32_t)c->len, &st)) {
        if (res < 0) {
            out_error(s, &st, "wait", "internal-server-error");
        } else {
            struct buf b = {0};
            prefs_xml(&b, &c->p);
            iq_result(s, &st, c->id, buf_data(&b), buf_used(&b));
            buf_free(&b);
        }
    }
    if (res >= 0) {
        mam_prefs_replace(c->u, &c->p);
        c->p.jids = NULL;
    }
    c->u->busy--;
    user_release(&s->users, c->u);
    prefs_ctx_free(c);
}

/* The JIDs of one list, normalised bare (copies in the shard's arena), added to p (room
 * for cap); -1 when one is not a JID, -2 past cap. */
static int prefs_list(struct shard *s, const struct xml_node *l, bool always,
                      struct store_mam_prefs *p, const char **jids, bool *alw, size_t cap)
{
    for (const struct xml_node *j = l ? xml_node_child(l, "jid", NS_MAM) : NULL; j;
         j = xml_node_next(j, "jid", NS_MAM)) {
        const char *v = text_of(s, j);
        char norm[JID_BUF];
        struct jid jd;
        if (!v || jid_parse(&jd, v, strlen(v), norm, sizeof norm) < 0)
            return -1;
        if (p->n >= cap)
            return -2;
        if (!(jids[p->n] = arena_strndup(&s->arena, jd.str, jid_bare_len(&jd))))
            return -1;
        alw[p->n++] = always;
    }
    return 0;
}

static void prefs_set(struct shard *s, struct user *u, const struct stanza *st, const char *id,
                      const struct xml_node *q)
{
    const char *d = xml_node_attr(q, "default");
    int dflt = -1;
    for (int i = 0; d && i < 3; i++)
        if (!strcmp(d, default_names[i]))
            dflt = i;
    if (dflt < 0) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    size_t cap = s->cfg->mam.max_prefs;
    const char **jids = malloc((cap + 1) * sizeof *jids);
    bool *alw = malloc(cap + 1);
    struct store_mam_prefs p = {.dflt = (uint8_t)dflt, .stored = true, .jids = jids, .always = alw};
    uint32_t len = (uint32_t)(sizeof *st->h + st->h->from_len + st->h->to_len + st->h->stanza_len);
    struct prefs_ctx *c = st->frame ? calloc(1, sizeof *c + len) : NULL;
    const char *err = "resource-constraint";
    char user[USER_LOCAL_MAX];
    if (!jids || !alw || !c)
        goto out;
    int rc = prefs_list(s, xml_node_child(q, "always", NS_MAM), true, &p, jids, alw, cap);
    if (rc == 0)
        rc = prefs_list(s, xml_node_child(q, "never", NS_MAM), false, &p, jids, alw, cap);
    if (rc < 0) {
        err = rc == -1 ? "jid-malformed" : "policy-violation";
        goto out;
    }
    if (!mam_prefs_copy(&p, &c->p) || (id && !(c->id = strdup(id))))
        goto out;
    c->u = u;
    c->len = len;
    memcpy(c->frame, st->frame, len);
    user_localpart(u, user, sizeof user);
    u->busy++;
    if (store_mam_prefs_set(s->store, user, &c->p, on_prefs_set, c) < 0) {
        u->busy--;
        goto out;
    }
    c = NULL;
    err = NULL;
out:
    prefs_ctx_free(c);
    free(jids);
    free(alw);
    if (err)
        out_error(s, st, !strcmp(err, "resource-constraint") ? "wait" : "modify", err);
}

/* The module's iq hook: a user's own archive. */
void mam_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
            const struct xml_node *iq, const struct xml_node *q)
{
    (void)ss;
    const char *id = xml_node_attr(iq, "id");
    if (!u || !s->cfg->mam.enabled) {
        out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    if (iq_is(q, "prefs", NS_MAM)) {
        if (st->h->type == PROTO_IQ_SET) {
            prefs_set(s, u, st, id, q);
        } else {
            struct store_mam_prefs dflt;
            struct buf b = {0};
            prefs_xml(&b, mam_prefs_of(s, u, &dflt));
            iq_result(s, st, id, buf_data(&b), buf_used(&b));
            buf_free(&b);
        }
        return;
    }
    if (!iq_is(q, "query", NS_MAM)) {
        out_error(s, st, "cancel", "feature-not-implemented");
        return;
    }
    char owner[USER_LOCAL_MAX];
    user_localpart(u, owner, sizeof owner);
    query(s, u, owner, u->bare, u->bare_len, st, iq, q);
}
