/*
 * pep_caps.c: who gets PEP notifications (XEP-0163 §4): the resources whose entity
 * capabilities (XEP-0115) include NODE+notify, the owner's own and its contacts' as the
 * node's access model allows.
 *
 * Capabilities. A presence carries <c xmlns='http://jabber.org/protocol/caps' hash='sha-1'
 * node ver/>; a shard keeps pep.max_caps 'ver's with their features (least recently used
 * forgotten). A 'ver' not known yet is asked of the resource that announced it (disco#info
 * to its full JID, node NODE#VER, from the bare JID of the user who saw it), and its answer
 * is trusted only when it hashes to the 'ver' (§5: SHA-1, base64); one that does not, or
 * an error, is remembered as having no features. Legacy capabilities (no hash) count as
 * none. A question unanswered for CAPS_RETRY_S is asked again when the 'ver' is seen.
 *
 * Whose capabilities a user's shard tracks: its own sessions' (their broadcast presence,
 * the presence_own hook), and the contacts' resources that sent it presence (the
 * presence_in hook), pep.max_contacts of them.
 *
 * A publish (pep_notify()) goes to: the owner's resources with +notify; each contact in
 * the owner's roster on this server allowed by the access model, as one headline from the
 * owner's bare JID to the contact's bare JID, which the contact's shard hands to those of
 * its resources with +notify (this file's inbound hook: that shard knows them); each
 * resource of a contact on another server that told us +notify, addressed to it.
 * Last items (§4.3.2): to a resource that becomes available with +notify (or whose 'ver'
 * gets known), the newest item of each node it wants and may read; and when the owner's
 * rows are loaded (its first session comes), to every resource known so far and, through
 * the contacts' shards, to its contacts' resources online.
 */
#include "router/pep.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <openssl/base64.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_CAPS       "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DATA       "jabber:x:data"
#define CAPS_RETRY_S  60
#define CAPS_ID       "pepcaps-"

/* ---- the shard's cache ------------------------------------------------------------------- */

struct caps {
    struct caps *hnext;       /* hash chain */
    struct caps *prev, *next; /* least recently used last */
    uint64_t hash;
    char ver[64];
    bool known;     /* answered (features may be empty: a bad or failed answer) */
    time_t asked;   /* when asked, while not known */
    char *features; /* NUL-separated */
    size_t flen;
};

struct caps_cache {
    struct caps **buckets;
    size_t mask, n;
    struct caps *mru, *lru;
};

static struct caps_cache *cache_of(const struct shard *s)
{
    return s->mod[MOD_SLOT_PEP];
}

static int caps_shard_init(struct shard *s)
{
    struct caps_cache *c = calloc(1, sizeof *c);
    size_t nb = 64;
    while (nb < s->cfg->pep.max_caps)
        nb *= 2;
    if (!c || !(c->buckets = calloc(nb, sizeof *c->buckets))) {
        free(c);
        return -12; /* -ENOMEM */
    }
    c->mask = nb - 1;
    s->mod[MOD_SLOT_PEP] = c;
    return 0;
}

static void caps_shard_free(struct shard *s)
{
    struct caps_cache *c = cache_of(s);
    if (!c)
        return;
    for (struct caps *e = c->mru, *next; e; e = next) {
        next = e->next;
        free(e->features);
        free(e);
    }
    free(c->buckets);
    free(c);
    s->mod[MOD_SLOT_PEP] = NULL;
}

static void lru_unlink(struct caps_cache *c, struct caps *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->mru = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct caps_cache *c, struct caps *e)
{
    e->next = c->mru;
    if (c->mru)
        c->mru->prev = e;
    c->mru = e;
    if (!c->lru)
        c->lru = e;
}

static struct caps *caps_find(struct caps_cache *c, const char *ver)
{
    uint64_t h = jid_hash(ver, strlen(ver));
    for (struct caps *e = c->buckets[h & c->mask]; e; e = e->hnext)
        if (e->hash == h && !strcmp(e->ver, ver)) {
            lru_unlink(c, e);
            lru_front(c, e);
            return e;
        }
    return NULL;
}

static void caps_evict(struct caps_cache *c)
{
    struct caps *e = c->lru;
    struct caps **pp = &c->buckets[e->hash & c->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    free(e->features);
    free(e);
    c->n--;
}

static struct caps *caps_add(const struct shard *s, struct caps_cache *c, const char *ver)
{
    while (c->n && c->n >= s->cfg->pep.max_caps)
        caps_evict(c);
    struct caps *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->ver, sizeof e->ver, "%s", ver);
    e->hash = jid_hash(ver, strlen(ver));
    e->hnext = c->buckets[e->hash & c->mask];
    c->buckets[e->hash & c->mask] = e;
    lru_front(c, e);
    c->n++;
    return e;
}

static bool caps_wants(const struct caps *e, const char *node)
{
    size_t nl = strlen(node);
    for (size_t at = 0; e && at < e->flen;) {
        const char *f = e->features + at;
        size_t fl = strlen(f);
        if (fl == nl + 7 && !memcmp(f, node, nl) && !strcmp(f + nl, "+notify"))
            return true;
        at += fl + 1;
    }
    return false;
}

/* ---- XEP-0115 §5: the verification string ------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Strings of one kind in byte order, each followed by '<'. */
static void put_sorted(struct buf *b, const char **v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 0; i < n; i++) {
        buf_puts(b, v[i]);
        buf_puts(b, "<");
    }
}

#define CAPS_MAX_PARTS 1024

/* The features of a disco#info answer, NUL-separated, into *features; 0 when it hashes
 * to ver, else -1. Everything in the arena. */
static int caps_verify(struct shard *s, const struct xml_node *q, const char *ver,
                       struct buf *features)
{
    const char **v = arena_alloc(&s->arena, CAPS_MAX_PARTS * sizeof *v);
    size_t n = 0;
    struct buf b = {0};
    int rc = -1;
    if (!v)
        return -1;
    for (struct xml_node *c = xml_node_child(q, "identity", NS_DISCO_INFO); c && n < CAPS_MAX_PARTS;
         c = xml_node_next(c, "identity", NS_DISCO_INFO)) {
        const char *cat = xml_node_attr(c, "category"), *type = xml_node_attr(c, "type");
        const char *name = xml_node_attr(c, "name"), *lang = NULL;
        for (unsigned i = 0; i < c->nattrs; i++)
            if (c->attrs[i].ns.len && !strcmp(c->attrs[i].ns.p, XML_NS_XML) &&
                !strcmp(c->attrs[i].name.p, "lang"))
                lang = c->attrs[i].value.p;
        size_t len = strlen(cat ? cat : "") + strlen(type ? type : "") + strlen(lang ? lang : "") +
                     strlen(name ? name : "") + 4;
        char *one = arena_alloc(&s->arena, len);
        if (!one)
            goto out;
        snprintf(one, len, "%s/%s/%s/%s", cat ? cat : "", type ? type : "", lang ? lang : "",
                 name ? name : "");
        v[n++] = one;
    }
    put_sorted(&b, v, n);
    n = 0;
    for (struct xml_node *c = xml_node_child(q, "feature", NS_DISCO_INFO); c && n < CAPS_MAX_PARTS;
         c = xml_node_next(c, "feature", NS_DISCO_INFO)) {
        const char *var = xml_node_attr(c, "var");
        if (var) {
            v[n++] = var;
            buf_append(features, var, strlen(var) + 1);
        }
    }
    put_sorted(&b, v, n);
    /* Extended forms (XEP-0128), by FORM_TYPE; each its fields by var, values sorted. */
    struct xml_node *forms[64];
    const char *types[64];
    size_t nf = 0;
    for (struct xml_node *x = xml_node_child(q, "x", NS_DATA); x && nf < 64;
         x = xml_node_next(x, "x", NS_DATA)) {
        const char *ft = NULL;
        for (struct xml_node *f = xml_node_child(x, "field", NS_DATA); f;
             f = xml_node_next(f, "field", NS_DATA)) {
            const char *var = xml_node_attr(f, "var");
            struct xml_node *val = xml_node_child(f, "value", NS_DATA);
            if (var && !strcmp(var, "FORM_TYPE") && val)
                ft = xml_node_text(val, &s->arena);
        }
        if (!ft)
            continue; /* §5.4: a form without FORM_TYPE is ignored */
        size_t at = nf++;
        while (at > 0 && strcmp(types[at - 1], ft) > 0) {
            forms[at] = forms[at - 1];
            types[at] = types[at - 1];
            at--;
        }
        forms[at] = x;
        types[at] = ft;
    }
    for (size_t i = 0; i < nf; i++) {
        buf_puts(&b, types[i]);
        buf_puts(&b, "<");
        struct xml_node *fields[256];
        const char *vars[256];
        size_t nfield = 0;
        for (struct xml_node *f = xml_node_child(forms[i], "field", NS_DATA); f && nfield < 256;
             f = xml_node_next(f, "field", NS_DATA)) {
            const char *var = xml_node_attr(f, "var");
            if (!var || !strcmp(var, "FORM_TYPE"))
                continue;
            size_t at = nfield++;
            while (at > 0 && strcmp(vars[at - 1], var) > 0) {
                fields[at] = fields[at - 1];
                vars[at] = vars[at - 1];
                at--;
            }
            fields[at] = f;
            vars[at] = var;
        }
        for (size_t k = 0; k < nfield; k++) {
            buf_puts(&b, vars[k]);
            buf_puts(&b, "<");
            n = 0;
            for (struct xml_node *val = xml_node_child(fields[k], "value", NS_DATA);
                 val && n < CAPS_MAX_PARTS; val = xml_node_next(val, "value", NS_DATA)) {
                const char *t = xml_node_text(val, &s->arena);
                if (t)
                    v[n++] = t;
            }
            put_sorted(&b, v, n);
        }
    }
    uint8_t md[SHA_DIGEST_LENGTH];
    char b64[32];
    SHA1((const uint8_t *)buf_data(&b), buf_used(&b), md);
    EVP_EncodeBlock((uint8_t *)b64, md, sizeof md);
    rc = strcmp(b64, ver) ? -1 : 0;
out:
    buf_free(&b);
    return rc;
}

/* ---- presence: whose capabilities -------------------------------------------------------- */

/* The 'ver' a presence announces (sha-1 only), "" when none; whether it is available. */
struct pres_caps {
    bool available;
    char ver[64], node[256];
};

static bool pres_caps_read(struct shard *s, const char *stanza, size_t len, struct pres_caps *pc)
{
    struct xml_node *p =
        xml_tree_parse(NULL, stanza, len, &s->arena, s->scratch, sizeof s->scratch);
    *pc = (struct pres_caps){0};
    if (!p) {
        arena_reset(&s->arena);
        return false;
    }
    const char *type = xml_node_attr(p, "type");
    pc->available = !type;
    struct xml_node *c = xml_node_child(p, "c", NS_CAPS);
    const char *hash = c ? xml_node_attr(c, "hash") : NULL;
    const char *ver = c ? xml_node_attr(c, "ver") : NULL;
    const char *node = c ? xml_node_attr(c, "node") : NULL;
    if (hash && ver && node && !strcmp(hash, "sha-1") && strlen(ver) < sizeof pc->ver &&
        strlen(node) < sizeof pc->node) {
        snprintf(pc->ver, sizeof pc->ver, "%s", ver);
        snprintf(pc->node, sizeof pc->node, "%s", node);
    }
    arena_reset(&s->arena); /* copied: a presence's step keeps nothing in the arena */
    return true;
}

/* The resource of list *l with this full JID, or NULL; *pp its link. */
static struct pep_res *res_find(struct pep_res **l, const char *jid, size_t len,
                                struct pep_res ***pp)
{
    for (struct pep_res **p = l; *p; p = &(*p)->next)
        if (strlen((*p)->jid) == len && !memcmp((*p)->jid, jid, len)) {
            if (pp)
                *pp = p;
            return *p;
        }
    return NULL;
}

static void res_drop(struct pep_res **pp)
{
    struct pep_res *r = *pp;
    *pp = r->next;
    free(r->jid);
    free(r);
}

/* Asks the resource what 'ver' means, unless asked recently. */
static void caps_ask(struct shard *s, struct user *u, const char *jid, size_t jid_len,
                     const struct pres_caps *pc, struct caps *e)
{
    time_t now = time(NULL);
    if (e->asked && now - e->asked < CAPS_RETRY_S)
        return;
    e->asked = now;
    struct buf b = {0};
    const char *slash = memchr(jid, '/', jid_len);
    buf_puts(&b, "<iq type='get' id='" CAPS_ID);
    buf_puts(&b, pc->ver[0] ? "1" : "0"); /* the id says nothing: the answer's node does */
    buf_puts(&b, "'");
    xmlw_attr(&b, "from", u->bare, u->bare_len);
    xmlw_attr(&b, "to", jid, jid_len);
    buf_puts(&b, "><query xmlns='" NS_DISCO_INFO "'");
    char node[sizeof pc->node + sizeof pc->ver + 1];
    snprintf(node, sizeof node, "%s#%s", pc->node, pc->ver);
    xmlw_attr(&b, "node", node, strlen(node));
    buf_puts(&b, "/></iq>");
    route_generated(s, u->bare, u->bare_len, u->bare_len, jid, jid_len,
                    slash ? (size_t)(slash - jid) : jid_len, PROTO_IQ, PROTO_IQ_GET, buf_data(&b),
                    buf_used(&b));
    buf_free(&b);
}

/* The cache's entry for what r announced, when known. */
static const struct caps *res_caps(struct shard *s, const struct pep_res *r)
{
    struct caps *e = r->ver[0] ? caps_find(cache_of(s), r->ver) : NULL;
    return e && e->known ? e : NULL;
}

/* ---- events ------------------------------------------------------------------------------ */

/* <message from=u type='headline'><event><items node>inner</items></event></message>,
 * with ` to='...'` inserted at *to_at when to is NULL. */
static void event(struct buf *b, const struct user *u, const struct pep_node *n, const char *to,
                  size_t to_len, const char *inner, size_t len)
{
    buf_puts(b, "<message");
    if (to)
        xmlw_attr(b, "to", to, to_len);
    xmlw_attr(b, "from", u->bare, u->bare_len);
    buf_puts(b, " type='headline'><event xmlns='" NS_PUBSUB_EVENT "'><items");
    xmlw_attr(b, "node", n->name, strlen(n->name));
    buf_puts(b, ">");
    buf_append(b, inner, len);
    buf_puts(b, "</items></event></message>");
}

static void send_to(struct shard *s, struct user *u, const struct pep_res *r, const char *stanza,
                    size_t len)
{
    if (r->conn) {
        out_deliver(s, &r->conn, 1, stanza, len);
        return;
    }
    size_t jl = strlen(r->jid);
    const char *slash = memchr(r->jid, '/', jl);
    route_generated(s, u->bare, u->bare_len, u->bare_len, r->jid, jl,
                    slash ? (size_t)(slash - r->jid) : jl, PROTO_MESSAGE, PROTO_MSG_HEADLINE,
                    stanza, len);
}

static bool is_local(const struct shard *s, const char *jid, size_t bare_len)
{
    const char *at = memchr(jid, '@', bare_len);
    const char *dom = at ? at + 1 : jid;
    size_t dl = (size_t)(jid + bare_len - dom);
    return dl == strlen(s->cfg->domain) && !memcmp(dom, s->cfg->domain, dl);
}

static size_t bare_len_of(const char *jid)
{
    const char *slash = strchr(jid, '/');
    return slash ? (size_t)(slash - jid) : strlen(jid);
}

/* The newest item of each node r wants and may read. */
static void last_items(struct shard *s, struct user *u, const struct pep_res *r)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    const struct caps *e = res_caps(s, r);
    if (!e || !p || p->state != PEP_READY)
        return;
    for (struct pep_node *n = p->nodes; n; n = n->next) {
        if (!n->newest || !caps_wants(e, n->name) ||
            !pep_allowed(u, n, r->jid, bare_len_of(r->jid)))
            continue;
        struct buf in = {0}, b = {0};
        pep_item_xml(&in, n->newest);
        event(&b, u, n, r->jid, strlen(r->jid), buf_data(&in), buf_used(&in));
        send_to(s, u, r, buf_data(&b), buf_used(&b));
        buf_free(&in);
        buf_free(&b);
    }
}

/* To each local contact allowed, through its shard (which picks its resources). */
static void to_local_contacts(struct shard *s, struct user *u, const struct pep_node *n,
                              const char *inner, size_t len)
{
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next) {
            /* Notifications follow presence: only contacts who get ours (XEP-0163 §4). */
            if ((it->sub != STORE_SUB_FROM && it->sub != STORE_SUB_BOTH) ||
                !is_local(s, it->jid, it->jid_len) || !pep_allowed(u, n, it->jid, it->jid_len) ||
                block_blocks(&u->block, it->jid, it->jid_len))
                continue;
            struct buf b = {0};
            event(&b, u, n, it->jid, it->jid_len, inner, len);
            route_generated(s, u->bare, u->bare_len, u->bare_len, it->jid, it->jid_len, it->jid_len,
                            PROTO_MESSAGE, PROTO_MSG_HEADLINE, buf_data(&b), buf_used(&b));
            buf_free(&b);
        }
}

void pep_notify(struct shard *s, struct user *u, const struct pep_node *n, const char *inner,
                size_t len)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    for (struct pep_res *r = p->own; r; r = r->next)
        if (caps_wants(res_caps(s, r), n->name)) {
            struct buf b = {0};
            event(&b, u, n, u->bare, u->bare_len, inner, len);
            send_to(s, u, r, buf_data(&b), buf_used(&b));
            buf_free(&b);
        }
    for (struct pep_res *r = p->contacts; r; r = r->next) {
        size_t bl = bare_len_of(r->jid);
        if (is_local(s, r->jid, bl) || !caps_wants(res_caps(s, r), n->name) ||
            !pep_allowed(u, n, r->jid, bl))
            continue;
        struct roster_item *it = roster_find(&u->roster, r->jid, bl);
        if (!it || (it->sub != STORE_SUB_FROM && it->sub != STORE_SUB_BOTH))
            continue;
        struct buf b = {0};
        event(&b, u, n, r->jid, strlen(r->jid), inner, len);
        send_to(s, u, r, buf_data(&b), buf_used(&b));
        buf_free(&b);
    }
    to_local_contacts(s, u, n, inner, len);
}

void pep_caps_loaded(struct shard *s, struct user *u)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    for (struct pep_res *r = p->own; r; r = r->next)
        last_items(s, u, r);
    for (struct pep_res *r = p->contacts; r; r = r->next)
        last_items(s, u, r);
    if (!u->sessions)
        return; /* loaded for a request: nobody came online */
    for (struct pep_node *n = p->nodes; n; n = n->next) {
        if (!n->newest)
            continue;
        struct buf in = {0};
        pep_item_xml(&in, n->newest);
        to_local_contacts(s, u, n, buf_data(&in), buf_used(&in));
        buf_free(&in);
    }
}

/* A resource of list l announced pc (available) or left: kept up to date, asked what its
 * 'ver' means, sent last items when it is new or its 'ver' changed. */
static void res_seen(struct shard *s, struct user *u, struct pep_res **l, uint64_t conn,
                     const char *jid, size_t jid_len, const struct pres_caps *pc, bool bounded)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    struct pep_res **pp, *r = res_find(l, jid, jid_len, &pp);
    if (!pc->available) {
        if (r) {
            res_drop(pp);
            if (bounded)
                p->ncontacts--;
        }
        return;
    }
    if (!pc->ver[0] && !r)
        return; /* no capabilities: it wants nothing */
    bool changed = !r || strcmp(r->ver, pc->ver);
    if (!r) {
        if (bounded && p->ncontacts >= s->cfg->pep.max_contacts)
            return;
        if (!(r = calloc(1, sizeof *r)) || !(r->jid = strndup(jid, jid_len))) {
            free(r);
            return;
        }
        r->conn = conn;
        r->next = *l;
        *l = r;
        if (bounded)
            p->ncontacts++;
    }
    snprintf(r->ver, sizeof r->ver, "%s", pc->ver);
    if (!changed || !r->ver[0])
        return;
    struct caps_cache *c = cache_of(s);
    struct caps *e = caps_find(c, r->ver);
    if (!e)
        e = caps_add(s, c, r->ver);
    if (e && !e->known)
        caps_ask(s, u, jid, jid_len, pc, e);
    else if (e && p->state == PEP_READY)
        last_items(s, u, r);
    else if (e)
        pep_load(s, u); /* pep_caps_loaded() sends them */
}

static void caps_presence_own(struct shard *s, struct user *u, struct session *ss,
                              const struct stanza *st)
{
    struct pres_caps pc;
    struct pep_user *p = pep_of(u);
    if (!p || !pres_caps_read(s, st->raw, st->raw_len, &pc))
        return;
    pc.available = ss->available;
    res_seen(s, u, &p->own, ss->conn, ss->jid, ss->jid_len, &pc, false);
    if (ss->available)
        pep_load(s, u);
}

static void caps_presence_in(struct shard *s, struct user *v, const char *from, size_t from_len,
                             const char *stanza, size_t len)
{
    struct pres_caps pc;
    struct pep_user *p = v->mod[MOD_SLOT_PEP];
    const char *slash = memchr(from, '/', from_len);
    size_t bl = slash ? (size_t)(slash - from) : from_len;
    if (!p || !slash || (bl == v->bare_len && !memcmp(from, v->bare, bl)))
        return; /* nobody here cares (no session came online), or one of v's own */
    /* Most presence has no capabilities and comes from nobody tracked: not parsed. (The
     * namespace can only be declared in the stanza: standalone, it binds no prefix.) */
    if (!memmem(stanza, len, NS_CAPS, sizeof NS_CAPS - 1) &&
        !res_find(&p->contacts, from, from_len, NULL))
        return;
    if (!pres_caps_read(s, stanza, len, &pc))
        return;
    res_seen(s, v, &p->contacts, 0, from, from_len, &pc, true);
}

static void caps_session_end(struct shard *s, struct user *u, struct session *ss)
{
    (void)s;
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    struct pep_res **pp;
    if (p && res_find(&p->own, ss->jid, ss->jid_len, &pp))
        res_drop(pp);
}

/* An answer to caps_ask(): the 'ver' it hashes to becomes known. */
static void caps_iq_response(struct shard *s, struct user *u, const struct stanza *st)
{
    if (!u || st->from_len <= st->from_bare_len)
        return;
    struct xml_node *iq =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    const char *id = iq ? xml_node_attr(iq, "id") : NULL;
    if (!id || strncmp(id, CAPS_ID, sizeof CAPS_ID - 1))
        goto out;
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    struct pep_res *r = NULL;
    if (p && !(r = res_find(&p->own, st->from, st->from_len, NULL)))
        r = res_find(&p->contacts, st->from, st->from_len, NULL);
    struct caps *e = r && r->ver[0] ? caps_find(cache_of(s), r->ver) : NULL;
    if (!e || e->known)
        goto out;
    struct xml_node *q = xml_node_child(iq, "query", NS_DISCO_INFO);
    struct buf f = {0};
    e->known = true;
    if (st->h->type == PROTO_IQ_RESULT && q && caps_verify(s, q, e->ver, &f) == 0) {
        e->features = buf_used(&f) ? malloc(buf_used(&f)) : NULL;
        if (e->features) {
            memcpy(e->features, buf_data(&f), buf_used(&f));
            e->flen = buf_used(&f);
        }
    } else {
        LOG_RL(LOG_LEVEL_INFO, "shard %u: capabilities %s of %.*s not verified", s->idx, e->ver,
               (int)st->from_len, st->from);
    }
    buf_free(&f);
    if (p->state == PEP_READY)
        last_items(s, u, r);
out:
    arena_reset(&s->arena);
}

/* A notification from a user of this server (pep_notify()): to v's resources that want
 * the node's events. */
static bool caps_inbound(struct shard *s, struct user *v, struct stanza *st)
{
    const struct proto_stanza *h = st->h;
    if (!(h->flags & ROUTE_GENERATED) || h->kind != PROTO_MESSAGE ||
        h->type != PROTO_MSG_HEADLINE || st->from_len != st->from_bare_len ||
        st->to_len != st->to_bare_len)
        return false;
    struct xml_node *m =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    struct xml_node *ev = m ? xml_node_child(m, "event", NS_PUBSUB_EVENT) : NULL;
    struct xml_node *items = ev ? xml_node_child(ev, "items", NS_PUBSUB_EVENT) : NULL;
    const char *node = items ? xml_node_attr(items, "node") : NULL;
    struct pep_user *p = v->mod[MOD_SLOT_PEP];
    if (node && p) {
        uint64_t conns[64];
        unsigned n = 0;
        for (struct pep_res *r = p->own; r && n < 64; r = r->next)
            if (caps_wants(res_caps(s, r), node))
                conns[n++] = r->conn;
        if (n)
            out_deliver(s, conns, n, st->raw, st->raw_len);
    }
    arena_reset(&s->arena);
    return node != NULL;
}

const struct module mod_pep_caps = {
    .name = "pep_caps",
    .inbound = caps_inbound,
    .iq_response = caps_iq_response,
    .presence_own = caps_presence_own,
    .presence_in = caps_presence_in,
    .session_end = caps_session_end,
    .shard_init = caps_shard_init,
    .shard_free = caps_shard_free,
};
