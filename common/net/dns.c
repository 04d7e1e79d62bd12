/* The resolver: lookups of RFC 6120 §3.2 through c-ares, their cache, routes and sockets. */
#include "common/net/dns.h"
#include "common/core/log.h"
#include "common/net/dns_srv.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <idna.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#define DNS_BUCKETS_MIN 64
#define DNS_ADDRS_MAX   64 /* the most s2s.dns_max_addresses allows */

/* What one c-ares query asks; the callback's argument. */
enum dns_kind { DNS_XMPPS, DNS_XMPP, DNS_A, DNS_AAAA };

struct dns_sub {
    struct dns_query *q;
    uint32_t target; /* DNS_A, DNS_AAAA: index in q->t */
    enum dns_kind kind;
};

/* One host and port to try, and (for the first target of each host) its addresses. */
struct dns_target {
    const char *host;
    uint16_t port;
    bool direct_tls;
    const struct dns_target *same; /* the target whose addresses these are: itself or an
                                      earlier one of the same host */
    struct in_addr *v4;
    struct in6_addr *v6;
    int n4, n6;
    int err4, err6;
};

/* A domain being looked up. Lives while any of its c-ares queries does. */
struct dns_query {
    struct dns *r;
    struct dns_entry *e;
    struct dns_lookup *waiters;
    unsigned pending; /* c-ares queries not answered yet, + 1 while queries are being sent */
    bool partial;     /* a query failed for want of an answer */
    uint32_t ttl;     /* least TTL so far, seconds */
    char name[DNS_NAME_MAX + 1]; /* the domain in A-labels */
    struct {
        struct dns_srv *rec; /* r->max_targets of them */
        struct dns_srv_answer ans;
        int err; /* 0, -ENODATA (no record), or the query's error */
    } srv[2];    /* [DNS_XMPPS], [DNS_XMPP] */
    struct dns_sub srv_sub[2];
    size_t ntargets;
    struct dns_target *t; /* with their subs and addresses, one allocation */
};

/* A domain the resolver knows: a route, a remembered answer, or one in flight. */
struct dns_entry {
    struct dns_entry *hnext;         /* hash chain */
    struct dns_entry *newer, *older; /* LRU: finished entries that are not routes */
    struct dns_query *q;             /* in flight, else NULL */
    struct dns_result *res;          /* the answer, or NULL with err */
    int err;
    bool route;
    int64_t expires; /* ms on CLOCK_MONOTONIC */
    uint64_t hash;
    char domain[];
};

struct dns {
    ares_channel ch;
    struct dns_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t nentries; /* routes excluded */
    size_t nroutes;
    struct dns_entry *newest, *oldest;
    struct dns_watch *watch;
    size_t nwatch, capwatch;
    uint32_t watch_id;
    size_t cache_max;
    uint32_t max_ttl, negative_ttl; /* seconds */
    uint32_t max_targets, max_addrs;
    uint64_t rng;
    struct dns_stats stats;
    bool closing; /* in dns_free(): c-ares ends every query, nothing is called back */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int err_of(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
        return -ENODATA; /* NXDOMAIN of an SRV name says nothing of the domain */
    case ARES_ETIMEOUT:
        return -ETIMEDOUT;
    case ARES_ENOMEM:
        return -ENOMEM;
    case ARES_EBADNAME:
        return -EINVAL;
    default:
        return -EIO; /* SERVFAIL, REFUSED, FORMERR, a refused connection, ... */
    }
}

/* A failure for want of an answer, which must not be remembered. */
static bool transient(int err)
{
    return err == -ETIMEDOUT || err == -EIO || err == -ENOMEM;
}

/* ---- results ----------------------------------------------------------------------------- */

struct dns_result *dns_result_ref(struct dns_result *res)
{
    res->refs_++;
    return res;
}

void dns_result_free(struct dns_result *res)
{
    if (res && --res->refs_ == 0)
        free(res);
}

/* A result of n addresses with room for `names` bytes of host names after them. */
static struct dns_result *result_new(size_t n, size_t names, char **pool)
{
    struct dns_result *res = malloc(sizeof *res + n * sizeof res->addr[0] + names);
    if (!res)
        return NULL;
    res->n = 0;
    res->refs_ = 1;
    *pool = (char *)&res->addr[n];
    return res;
}

static void addr_set(struct dns_addr *a, int family, const void *ip, uint16_t port)
{
    memset(&a->addr, 0, sizeof a->addr);
    if (family == AF_INET6) {
        a->addr.in6.sin6_family = AF_INET6;
        a->addr.in6.sin6_port = htons(port);
        memcpy(&a->addr.in6.sin6_addr, ip, sizeof(struct in6_addr));
        a->len = sizeof a->addr.in6;
    } else {
        a->addr.in.sin_family = AF_INET;
        a->addr.in.sin_port = htons(port);
        memcpy(&a->addr.in.sin_addr, ip, sizeof(struct in_addr));
        a->len = sizeof a->addr.in;
    }
}

/* One address, STARTTLS: a route's, or an IP-literal domain's. */
static struct dns_result *result_one(const struct sockaddr *sa, const char *host)
{
    char *pool;
    size_t hl = strlen(host) + 1;
    struct dns_result *res = result_new(1, hl, &pool);
    if (!res)
        return NULL;
    const struct sockaddr_in *in = (const void *)sa;
    const struct sockaddr_in6 *in6 = (const void *)sa;
    if (sa->sa_family == AF_INET6)
        addr_set(&res->addr[0], AF_INET6, &in6->sin6_addr, ntohs(in6->sin6_port));
    else
        addr_set(&res->addr[0], AF_INET, &in->sin_addr, ntohs(in->sin_port));
    res->addr[0].direct_tls = false;
    res->addr[0].host = memcpy(pool, host, hl);
    res->n = 1;
    return res;
}

/* ---- the table of entries ---------------------------------------------------------------- */

static uint64_t hash_of(const char *domain)
{
    return XXH3_64bits(domain, strlen(domain));
}

static struct dns_entry **slot_of(struct dns *r, const char *domain, uint64_t h)
{
    struct dns_entry **p = &r->buckets[h & (r->nbuckets - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->domain, domain)))
        p = &(*p)->hnext;
    return p;
}

/* Doubles the buckets when the entries outnumber them; failing to is only slower. */
static void table_grow(struct dns *r)
{
    if (r->nentries + r->nroutes < r->nbuckets)
        return;
    size_t n = r->nbuckets * 2;
    struct dns_entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (struct dns_entry *e = r->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
}

static void lru_unlink(struct dns *r, struct dns_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else if (r->newest == e)
        r->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else if (r->oldest == e)
        r->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(struct dns *r, struct dns_entry *e)
{
    e->older = r->newest;
    e->newer = NULL;
    if (r->newest)
        r->newest->newer = e;
    r->newest = e;
    if (!r->oldest)
        r->oldest = e;
}

static void entry_free(struct dns *r, struct dns_entry *e)
{
    struct dns_entry **p = slot_of(r, e->domain, e->hash);
    *p = e->hnext;
    lru_unlink(r, e);
    dns_result_free(e->res);
    if (e->route)
        r->nroutes--;
    else
        r->nentries--;
    free(e);
}

static struct dns_entry *entry_new(struct dns *r, const char *domain, uint64_t h)
{
    size_t len = strlen(domain);
    struct dns_entry *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->domain, domain, len + 1);
    e->hash = h;
    table_grow(r);
    struct dns_entry **p = &r->buckets[h & (r->nbuckets - 1)];
    e->hnext = *p;
    *p = e;
    r->nentries++;
    return e;
}

/* ---- finishing a lookup ------------------------------------------------------------------ */

static void query_free(struct dns_query *q)
{
    free(q->t);
    free(q);
}

/* Remembers the outcome and tells every waiter. Nothing may touch q->e after the first
 * callback: a callback may look up another domain, which may forget this one, or this
 * one again, which starts it over when its answer is stale already (dns_max_ttl = 0):
 * either drops the entry's reference to res, so the loop holds one of its own. */
static void finish(struct dns_query *q, int err, struct dns_result *res)
{
    struct dns *r = q->r;
    struct dns_entry *e = q->e;
    uint32_t ttl = 0;
    if (!err)
        ttl = q->ttl < r->max_ttl ? q->ttl : r->max_ttl;
    else if (!transient(err))
        ttl = r->negative_ttl;
    if (q->partial && ttl > r->negative_ttl)
        ttl = r->negative_ttl;
    e->q = NULL;
    e->err = err;
    e->res = res;
    e->expires = now_ms() + (int64_t)ttl * 1000;
    lru_push(r, e);
    LOG_DEBUG("dns: %s: %s, remembered %us", e->domain, err ? strerror(-err) : "found",
              (unsigned)ttl);
    if (res)
        dns_result_ref(res);
    for (struct dns_lookup *l; (l = q->waiters);) {
        q->waiters = l->next_;
        if (l->next_)
            l->next_->prev_ = NULL;
        l->next_ = l->prev_ = NULL;
        l->query_ = NULL;
        l->done(l, err, res ? dns_result_ref(res) : NULL);
    }
    dns_result_free(res);
    query_free(q);
}

/* Builds the answer from the targets' addresses, or the error when there is none. */
static void finish_addresses(struct dns_query *q)
{
    struct dns *r = q->r;
    size_t n = 0, names = 0;
    bool timeout = false, failed = false;
    for (size_t i = 0; i < q->ntargets; i++) {
        const struct dns_target *a = q->t[i].same;
        size_t k = (size_t)(a->n4 + a->n6);
        n += k < r->max_addrs ? k : r->max_addrs;
        names += strlen(q->t[i].host) + 1;
        timeout |= a->err4 == -ETIMEDOUT || a->err6 == -ETIMEDOUT;
        failed |= transient(a->err4) || transient(a->err6);
    }
    if (n == 0) {
        finish(q, timeout ? -ETIMEDOUT : failed ? -EIO : -ENOENT, NULL);
        return;
    }
    q->partial |= failed;
    char *pool;
    struct dns_result *res = result_new(n, names, &pool);
    if (!res) {
        finish(q, -ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < q->ntargets; i++) {
        const struct dns_target *t = &q->t[i], *a = t->same;
        size_t hl = strlen(t->host) + 1;
        const char *host = memcpy(pool, t->host, hl);
        pool += hl;
        /* IPv6 and IPv4 in turn, IPv6 first (RFC 8305 §4). */
        for (int k = 0, i6 = 0, i4 = 0; k < (int)r->max_addrs && (i6 < a->n6 || i4 < a->n4); k++) {
            struct dns_addr *d = &res->addr[res->n++];
            if (i6 < a->n6 && (k % 2 == 0 || i4 >= a->n4))
                addr_set(d, AF_INET6, &a->v6[i6++], t->port);
            else
                addr_set(d, AF_INET, &a->v4[i4++], t->port);
            d->direct_tls = t->direct_tls;
            d->host = host;
        }
    }
    finish(q, 0, res);
}

/* ---- queries ----------------------------------------------------------------------------- */

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static void addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void ask(struct dns_query *q, struct dns_sub *sub, const char *name, int type)
{
    q->pending++;
    q->r->stats.queries++;
    ares_query(q->r->ch, name, DNS_C_IN, type, type == DNS_T_SRV ? srv_cb : addr_cb, sub);
}

/* One reference of q->pending is the sender's own while it sends (so that a query c-ares
 * fails at once cannot finish q under it); dropping it may finish the phase. */
static void phase_done(struct dns_query *q);

static void release(struct dns_query *q)
{
    if (--q->pending == 0)
        phase_done(q);
}

static void ask_addresses(struct dns_query *q)
{
    struct dns *r = q->r;
    size_t nt = q->ntargets, per = r->max_addrs;
    /* targets, then two subs each, then their addresses */
    size_t size = nt * (sizeof(struct dns_target) + 2 * sizeof(struct dns_sub) +
                        per * (sizeof(struct in_addr) + sizeof(struct in6_addr)));
    char *mem = calloc(1, size);
    if (!mem) {
        finish(q, -ENOMEM, NULL);
        return;
    }
    struct dns_target *tmp = q->t; /* the hosts and ports, set by phase_done() */
    q->t = (struct dns_target *)mem;
    struct dns_sub *subs = (struct dns_sub *)(q->t + nt);
    struct in6_addr *v6 = (struct in6_addr *)(subs + 2 * nt);
    struct in_addr *v4 = (struct in_addr *)(v6 + nt * per);
    for (size_t i = 0; i < nt; i++) {
        struct dns_target *t = &q->t[i];
        *t = tmp[i];
        t->v6 = v6 + i * per;
        t->v4 = v4 + i * per;
        t->same = t;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(q->t[j].host, t->host))
                t->same = &q->t[j];
    }
    free(tmp);
    q->pending++;
    for (size_t i = 0; i < nt; i++) {
        if (q->t[i].same != &q->t[i])
            continue;
        subs[2 * i] = (struct dns_sub){q, (uint32_t)i, DNS_AAAA};
        subs[2 * i + 1] = (struct dns_sub){q, (uint32_t)i, DNS_A};
        ask(q, &subs[2 * i], q->t[i].host, DNS_T_AAAA);
        ask(q, &subs[2 * i + 1], q->t[i].host, DNS_T_A);
    }
    release(q);
}

/*
 * Both SRV answers are in: the targets, or the domain itself (RFC 6120 §3.2.2), or the
 * end. Every xmpps target before every xmpp one; those of one service already in RFC
 * 2782 order (dns_srv_parse()).
 */
static void srv_done(struct dns_query *q)
{
    struct dns *r = q->r;
    const struct dns_srv_answer *xs = &q->srv[DNS_XMPPS].ans, *x = &q->srv[DNS_XMPP].ans;
    int es = q->srv[DNS_XMPPS].err, ex = q->srv[DNS_XMPP].err;
    size_t n = xs->n + x->n;
    if (n > r->max_targets)
        n = r->max_targets;
    q->partial = transient(es) || transient(ex);
    if (n == 0 && x->dot) {
        finish(q, transient(es) ? es : -ECONNREFUSED, NULL);
        return;
    }
    if (n == 0 && (ex == -ETIMEDOUT || ex == -ENOMEM)) {
        finish(q, ex, NULL);
        return;
    }
    struct dns_target *t = calloc(n ? n : 1, sizeof *t);
    if (!t) {
        finish(q, -ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool tls = i < xs->n;
        const struct dns_srv *s =
            tls ? &q->srv[DNS_XMPPS].rec[i] : &q->srv[DNS_XMPP].rec[i - xs->n];
        t[i] = (struct dns_target){.host = s->target, .port = s->port, .direct_tls = tls};
    }
    if (n == 0) { /* the fallback: the domain itself */
        t[0] = (struct dns_target){.host = q->name, .port = DNS_XMPP_SERVER_PORT};
        n = 1;
    }
    q->t = t;
    q->ntargets = n;
    ask_addresses(q);
}

static void phase_done(struct dns_query *q)
{
    if (!q->t)
        srv_done(q);
    else
        finish_addresses(q);
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_sub *sub = arg;
    struct dns_query *q = sub->q;
    if (q->r->closing)
        return;
    int *err = &q->srv[sub->kind].err;
    *err = err_of(status);
    if (!*err) {
        int rc = dns_srv_parse(abuf, (size_t)alen, q->srv[sub->kind].rec, q->r->max_targets,
                               &q->r->rng, &q->srv[sub->kind].ans);
        *err = rc == -EBADMSG ? -EIO : rc;
        if (!rc && !q->srv[sub->kind].ans.n && !q->srv[sub->kind].ans.dot)
            *err = -ENODATA;
        if (!*err && q->srv[sub->kind].ans.ttl < q->ttl)
            q->ttl = q->srv[sub->kind].ans.ttl;
    }
    if (*err)
        memset(&q->srv[sub->kind].ans, 0, sizeof q->srv[sub->kind].ans);
    release(q);
}

static void addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_sub *sub = arg;
    struct dns_query *q = sub->q;
    if (q->r->closing)
        return;
    struct dns_target *t = &q->t[sub->target];
    int n = (int)q->r->max_addrs, err = err_of(status);
    int ttl[DNS_ADDRS_MAX];
    if (!err && sub->kind == DNS_A) {
        struct ares_addrttl a[DNS_ADDRS_MAX];
        err = err_of(ares_parse_a_reply(abuf, alen, NULL, a, &n));
        for (int i = 0; !err && i < n; i++) {
            t->v4[i] = a[i].ipaddr;
            ttl[i] = a[i].ttl;
        }
        t->n4 = err ? 0 : n;
    } else if (!err) {
        struct ares_addr6ttl a[DNS_ADDRS_MAX];
        err = err_of(ares_parse_aaaa_reply(abuf, alen, NULL, a, &n));
        for (int i = 0; !err && i < n; i++) {
            memcpy(&t->v6[i], &a[i].ip6addr, sizeof t->v6[i]);
            ttl[i] = a[i].ttl;
        }
        t->n6 = err ? 0 : n;
    }
    for (int i = 0; !err && i < n; i++)
        if ((uint32_t)(ttl[i] < 0 ? 0 : ttl[i]) < q->ttl)
            q->ttl = (uint32_t)(ttl[i] < 0 ? 0 : ttl[i]);
    if (sub->kind == DNS_A)
        t->err4 = err;
    else
        t->err6 = err;
    release(q);
}

/* Starts looking up e's domain, whose A-label form is name. */
static int query_start(struct dns *r, struct dns_entry *e, const char *name)
{
    struct dns_query *q = calloc(1, sizeof *q + 2 * r->max_targets * sizeof(struct dns_srv));
    if (!q)
        return -ENOMEM;
    q->r = r;
    q->e = e;
    q->ttl = UINT32_MAX;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->srv[DNS_XMPPS].rec = (struct dns_srv *)(q + 1);
    q->srv[DNS_XMPP].rec = q->srv[DNS_XMPPS].rec + r->max_targets;
    e->q = q;
    char srv[DNS_NAME_MAX + 32];
    static const char *const service[2] = {"_xmpps-server._tcp.", "_xmpp-server._tcp."};
    q->pending++;
    for (int k = DNS_XMPPS; k <= DNS_XMPP; k++) {
        q->srv_sub[k] = (struct dns_sub){q, 0, (enum dns_kind)k};
        snprintf(srv, sizeof srv, "%s%s", service[k], name);
        ask(q, &q->srv_sub[k], srv, DNS_T_SRV);
    }
    release(q);
    return 0;
}

/* ---- lookups ----------------------------------------------------------------------------- */

/* The domain in A-labels, checked to be a DNS name: labels of 1..63 bytes, 253 in all. */
static int dns_name(const char *domain, char *out)
{
    char *ace = NULL;
    const char *s = domain;
    int rc = 0;
    for (const char *p = domain; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            int irc = idna_to_ascii_8z(domain, &ace, 0);
            if (irc != IDNA_SUCCESS) {
                free(ace);
                return irc == IDNA_MALLOC_ERROR ? -ENOMEM : -EINVAL;
            }
            s = ace;
            break;
        }
    }
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > DNS_NAME_MAX)
        rc = -EINVAL;
    for (size_t i = 0; rc == 0 && i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                rc = -EINVAL;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            label++;
        } else {
            rc = -EINVAL;
        }
    }
    if (rc == 0)
        memcpy(out, s, len + 1);
    free(ace);
    return rc;
}

/* "192.0.2.1" or "[2001:db8::1]": that address, port 5269, STARTTLS. */
static int ip_literal(const char *domain, struct dns_result **out)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    char v6[INET6_ADDRSTRLEN];
    size_t len = strlen(domain);
    if (inet_pton(AF_INET, domain, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(DNS_XMPP_SERVER_PORT);
    } else if (domain[0] == '[' && len > 2 && len - 2 < sizeof v6 && domain[len - 1] == ']') {
        memcpy(v6, domain + 1, len - 2);
        v6[len - 2] = '\0';
        if (inet_pton(AF_INET6, v6, &in6->sin6_addr) != 1)
            return 0;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(DNS_XMPP_SERVER_PORT);
    } else {
        return 0;
    }
    *out = result_one((struct sockaddr *)&ss, domain);
    return *out ? 1 : -ENOMEM;
}

static void wait_on(struct dns_query *q, struct dns_lookup *l, dns_done_fn *done)
{
    l->done = done;
    l->query_ = q;
    l->prev_ = NULL;
    l->next_ = q->waiters;
    if (q->waiters)
        q->waiters->prev_ = l;
    q->waiters = l;
}

/* What a finished entry says, as dns_resolve() returns it. */
static int answer(struct dns_entry *e, struct dns_result **out)
{
    if (e->res)
        *out = dns_result_ref(e->res);
    return e->res ? 0 : e->err;
}

int dns_resolve(struct dns *r, const char *domain, struct dns_lookup *l, dns_done_fn *done,
                struct dns_result **out)
{
    char name[DNS_NAME_MAX + 1];
    uint64_t h = hash_of(domain);
    int rc;

    *out = NULL;
    r->stats.lookups++;
    struct dns_entry *e = *slot_of(r, domain, h);
    if (e && e->route) {
        r->stats.routes++;
        return answer(e, out);
    }
    if (e && e->q) {
        r->stats.joined++;
        wait_on(e->q, l, done);
        return 1;
    }
    if (e && e->expires > now_ms()) {
        r->stats.cached++;
        lru_unlink(r, e);
        lru_push(r, e);
        return answer(e, out);
    }
    rc = ip_literal(domain, out);
    if (rc != 0) {
        r->stats.routes += rc > 0;
        return rc > 0 ? 0 : rc;
    }
    rc = dns_name(domain, name);
    if (rc < 0)
        return rc;
    if (e) { /* expired: asked again in place */
        lru_unlink(r, e);
        dns_result_free(e->res);
        e->res = NULL;
    } else {
        if (r->nentries >= r->cache_max) {
            if (!r->oldest)
                return -EAGAIN;
            entry_free(r, r->oldest);
        }
        e = entry_new(r, domain, h);
        if (!e)
            return -ENOMEM;
    }
    rc = query_start(r, e, name);
    if (rc < 0) {
        entry_free(r, e);
        return rc;
    }
    if (!e->q) /* every query failed at once (no DNS server, no memory) */
        return answer(e, out);
    wait_on(e->q, l, done);
    return 1;
}

void dns_cancel(struct dns_lookup *l)
{
    struct dns_query *q = l->query_;
    if (!q)
        return;
    if (l->prev_)
        l->prev_->next_ = l->next_;
    else
        q->waiters = l->next_;
    if (l->next_)
        l->next_->prev_ = l->prev_;
    l->next_ = l->prev_ = NULL;
    l->query_ = NULL;
}

/* ---- sockets ----------------------------------------------------------------------------- */

/* c-ares tells which sockets it wants watched: a new one, new events, or none (it is
 * about to close it). */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *r = data;
    unsigned events = (readable ? POLLIN : 0u) | (writable ? POLLOUT : 0u);
    size_t i = 0;
    while (i < r->nwatch && r->watch[i].fd != fd)
        i++;
    if (!events) {
        if (i < r->nwatch)
            r->watch[i] = r->watch[--r->nwatch];
        return;
    }
    if (i < r->nwatch) {
        r->watch[i].events = events;
        return;
    }
    if (r->nwatch == r->capwatch) {
        size_t cap = r->capwatch ? 2 * r->capwatch : 4;
        struct dns_watch *w = realloc(r->watch, cap * sizeof *w);
        if (!w) {
            /* Unwatched, its queries time out: the lookup fails, nothing worse. */
            LOG_RL(LOG_LEVEL_ERROR, "dns: out of memory: socket %d not watched", fd);
            return;
        }
        r->watch = w;
        r->capwatch = cap;
    }
    r->watch[r->nwatch++] = (struct dns_watch){fd, events, ++r->watch_id};
}

size_t dns_watches(const struct dns *r, const struct dns_watch **w)
{
    *w = r->watch;
    return r->nwatch;
}

int dns_timeout_ms(struct dns *r)
{
    struct timeval tv;
    if (!ares_timeout(r->ch, NULL, &tv))
        return -1;
    long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > 1000000 ? 1000000 : (int)ms;
}

void dns_process(struct dns *r, int fd, unsigned revents)
{
    ares_socket_t rd = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;
    if (fd >= 0 && (revents & (POLLIN | POLLERR | POLLHUP)))
        rd = fd;
    if (fd >= 0 && (revents & POLLOUT))
        wr = fd;
    ares_process_fd(r->ch, rd, wr); /* and the timeouts, whatever the fds */
}

const struct dns_stats *dns_stats(const struct dns *r)
{
    return &r->stats;
}

/* ---- the resolver ------------------------------------------------------------------------ */

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_lib_status;

static void dns_lib_init(void)
{
    dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static int set_servers(struct dns *r, const struct config_list *servers)
{
    struct ares_addr_port_node *nodes = calloc(servers->n, sizeof *nodes);
    if (!nodes)
        return -ENOMEM;
    for (uint32_t i = 0; i < servers->n; i++) {
        const struct config_addr *a = &servers->addrs[i];
        struct ares_addr_port_node *nd = &nodes[i];
        nd->next = i + 1 < servers->n ? &nodes[i + 1] : NULL;
        nd->family = a->addr.sa.sa_family;
        if (nd->family == AF_INET6) {
            memcpy(&nd->addr.addr6, &a->addr.in6.sin6_addr, sizeof nd->addr.addr6);
            nd->udp_port = nd->tcp_port = ntohs(a->addr.in6.sin6_port);
        } else {
            nd->addr.addr4 = a->addr.in.sin_addr;
            nd->udp_port = nd->tcp_port = ntohs(a->addr.in.sin_port);
        }
    }
    int st = ares_set_servers_ports(r->ch, nodes);
    free(nodes);
    return st == ARES_SUCCESS ? 0 : st == ARES_ENOMEM ? -ENOMEM : -EIO;
}

static int add_route(struct dns *r, const struct config_route *rt)
{
    uint64_t h = hash_of(rt->domain);
    struct dns_entry *e = entry_new(r, rt->domain, h);
    if (!e)
        return -ENOMEM;
    r->nentries--;
    r->nroutes++;
    e->route = true;
    e->res = result_one(&rt->addr.addr.sa, rt->domain);
    return e->res ? 0 : -ENOMEM;
}

int dns_new(const struct config *c, struct dns **out)
{
    struct ares_options o = {0};
    int rc = -ENOMEM;

    *out = NULL;
    pthread_once(&dns_once, dns_lib_init);
    if (dns_lib_status != ARES_SUCCESS)
        return -EIO;
    struct dns *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->cache_max = c->s2s.dns_cache_size;
    r->max_ttl = c->s2s.dns_max_ttl;
    r->negative_ttl = c->s2s.dns_negative_ttl;
    r->max_targets = c->s2s.dns_max_targets;
    r->max_addrs =
        c->s2s.dns_max_addresses < DNS_ADDRS_MAX ? c->s2s.dns_max_addresses : DNS_ADDRS_MAX;
    if (getrandom(&r->rng, sizeof r->rng, 0) != sizeof r->rng)
        r->rng = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)r;
    r->nbuckets = DNS_BUCKETS_MIN;
    r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
    if (!r->buckets)
        goto fail;

    o.flags = ARES_FLAG_EDNS; /* fewer answers truncated into a retry over TCP */
    o.timeout = (int)(c->s2s.dns_timeout * 1000);
    o.tries = (int)c->s2s.dns_tries;
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = r;
    int st = ares_init_options(
        &r->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (st != ARES_SUCCESS) {
        r->ch = NULL;
        rc = st == ARES_ENOMEM ? -ENOMEM : -EIO;
        goto fail;
    }
    if (c->s2s.dns_servers.n && (rc = set_servers(r, &c->s2s.dns_servers)) < 0)
        goto fail;
    for (uint32_t i = 0; i < c->s2s.routes.n; i++)
        if ((rc = add_route(r, &c->s2s.routes.routes[i])) < 0)
            goto fail;
    *out = r;
    return 0;
fail:
    dns_free(r);
    return rc;
}

void dns_free(struct dns *r)
{
    if (!r)
        return;
    r->closing = true;
    if (r->ch)
        ares_destroy(r->ch); /* ends every query: srv_cb and addr_cb see closing */
    for (size_t i = 0; r->buckets && i < r->nbuckets; i++) {
        for (struct dns_entry *e = r->buckets[i], *next; e; e = next) {
            next = e->hnext;
            if (e->q)
                query_free(e->q);
            dns_result_free(e->res);
            free(e);
        }
    }
    free(r->buckets);
    free(r->watch);
    free(r);
}
