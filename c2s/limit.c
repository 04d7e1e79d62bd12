/*
 * limit.c: the process-wide tables behind limit.h.
 *
 * Rates use the generic cell rate algorithm: an entry keeps one time, the theoretical
 * arrival time (tat) of the next event at the allowed pace; each event pushes it one
 * interval further; an event may happen when tat is at most `burst` intervals ahead of
 * now. The rate tables are bounded and lossy: RATE_SETS sets of RATE_WAYS entries, a
 * key in the set its hash picks; a new key takes the entry of its set that owes the
 * least (an entry whose tat has passed owes nothing and is as good as empty), so
 * flooding a table with new keys evicts the idle ones first and an address or account
 * under heavy use last.
 *
 * Connections are counted exactly, in an open-addressing table that grows with the
 * number of addresses connected (linear probing, deletion by backward shift).
 */
#include "c2s/limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define US 1000000ull

static uint64_t seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * US * 1000 + (uint64_t)ts.tv_nsec;
    }
}

static uint64_t hash(const void *p, size_t n)
{
    pthread_once(&seed_once, seed_init);
    uint64_t h = XXH3_64bits_withSeed(p, n, seed);
    return h ? h : 1; /* 0 marks an empty entry */
}

uint64_t limit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * US + (uint64_t)ts.tv_nsec / 1000;
}

uint32_t limit_peer_of(const struct sockaddr *sa)
{
    uint8_t key[9];
    size_t n;

    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        n = 5;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
            n = 5;
        } else {
            key[0] = 6;
            memcpy(key + 1, a->s6_addr, 8); /* the /64 */
            n = 9;
        }
    } else {
        return 0;
    }
    uint32_t h = (uint32_t)hash(key, n);
    return h ? h : 1;
}

uint64_t limit_account(const char *user)
{
    return hash(user, strlen(user));
}

/* ---- rate tables ------------------------------------------------------------------------ */

#define RATE_SETS 4096 /* power of two */
#define RATE_WAYS 4

struct rate_table {
    pthread_mutex_t lock;
    struct {
        uint64_t key, tat;
    } e[RATE_SETS][RATE_WAYS];
};

static struct rate_table logins = {.lock = PTHREAD_MUTEX_INITIALIZER},
                         fail_address = {.lock = PTHREAD_MUTEX_INITIALIZER},
                         fail_account = {.lock = PTHREAD_MUTEX_INITIALIZER},
                         fail_pair = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The entry of key, or NULL. Called with the table locked. */
static uint64_t *rate_find(struct rate_table *t, uint64_t key)
{
    key = key ? key : 1;
    __typeof__(t->e[0][0]) *set = t->e[key & (RATE_SETS - 1)];
    for (unsigned i = 0; i < RATE_WAYS; i++)
        if (set[i].key == key)
            return &set[i].tat;
    return NULL;
}

/* The tat of key, taking over the entry that owes least when key has none. Called
 * with the table locked. */
static uint64_t *rate_take(struct rate_table *t, uint64_t key)
{
    uint64_t *tat = rate_find(t, key);
    if (tat)
        return tat;
    key = key ? key : 1;
    __typeof__(t->e[0][0]) *set = t->e[key & (RATE_SETS - 1)], *victim = &set[0];
    for (unsigned i = 1; i < RATE_WAYS; i++)
        if (set[i].tat < victim->tat)
            victim = &set[i];
    victim->key = key;
    victim->tat = 0;
    return &victim->tat;
}

int64_t limit_login(uint32_t peer, uint64_t now, uint32_t rate, uint32_t burst, uint64_t max_wait)
{
    if (!rate)
        return 0;
    uint64_t step = US / rate ? US / rate : 1;
    uint64_t ahead = (uint64_t)(burst ? burst : 1) * step;
    int64_t wait;

    pthread_mutex_lock(&logins.lock);
    uint64_t *tat = rate_take(&logins, peer);
    uint64_t next = (*tat > now ? *tat : now) + step;
    /* This login may start once its tat is no more than `ahead` in the future. */
    uint64_t wait_u = next > now + ahead ? next - ahead - now : 0;
    if (wait_u > max_wait) {
        wait = -1;
    } else {
        *tat = next;
        wait = (int64_t)wait_u;
    }
    pthread_mutex_unlock(&logins.lock);
    return wait;
}

static uint64_t interval(uint32_t max, uint32_t window)
{
    uint64_t step = (uint64_t)window * US / max;
    return step ? step : 1;
}

bool limit_failures_exhausted(enum limit_failures kind, uint64_t key, uint64_t now, uint32_t max,
                              uint32_t window)
{
    if (!max)
        return false;
    struct rate_table *t = kind == LIMIT_ADDRESS ? &fail_address : &fail_account;
    uint64_t span = (uint64_t)window * US, step = interval(max, window);
    pthread_mutex_lock(&t->lock);
    const uint64_t *tat = rate_find(t, key);
    /* `max` failures at once put tat max steps ahead: one more would overflow the window. */
    bool out = tat && *tat > now && *tat - now > span - step;
    pthread_mutex_unlock(&t->lock);
    return out;
}

static void charge(struct rate_table *t, uint64_t key, uint64_t now, uint64_t step)
{
    pthread_mutex_lock(&t->lock);
    uint64_t *tat = rate_take(t, key);
    *tat = (*tat > now ? *tat : now) + step;
    pthread_mutex_unlock(&t->lock);
}

void limit_failure(uint32_t peer, uint64_t account, uint64_t now, uint32_t max_address,
                   uint32_t max_account, uint32_t window)
{
    if (max_account)
        charge(&fail_account, account, now, interval(max_account, window));
    if (!max_address)
        return;
    uint8_t pair[sizeof account + sizeof peer]; /* bytes, so no padding is hashed */
    memcpy(pair, &account, sizeof account);
    memcpy(pair + sizeof account, &peer, sizeof peer);
    uint64_t pk = hash(pair, sizeof pair);
    pthread_mutex_lock(&fail_pair.lock);
    uint64_t *tat = rate_take(&fail_pair, pk);
    bool first = *tat <= now; /* this address's first failure on this account in the window */
    if (first)
        *tat = now + (uint64_t)window * US;
    pthread_mutex_unlock(&fail_pair.lock);
    if (first)
        charge(&fail_address, peer, now, interval(max_address, window));
}

/* ---- connections per address ------------------------------------------------------------ */

struct conn_count {
    uint32_t key, n; /* key 0: empty */
};

static struct {
    pthread_mutex_t lock;
    struct conn_count *e;
    uint32_t cap, used; /* cap: 0 or a power of two, at most half full */
} conns = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct conn_count *conn_slot(uint32_t key)
{
    uint32_t mask = conns.cap - 1;
    for (uint32_t i = key & mask;; i = (i + 1) & mask)
        if (conns.e[i].key == key || !conns.e[i].key)
            return &conns.e[i];
}

static bool conn_grow(void)
{
    uint32_t cap = conns.cap ? conns.cap * 2 : 64;
    struct conn_count *old = conns.e, *e = calloc(cap, sizeof *e);
    if (!e)
        return false;
    uint32_t old_cap = conns.cap;
    conns.e = e;
    conns.cap = cap;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].key)
            *conn_slot(old[i].key) = old[i];
    free(old);
    return true;
}

bool limit_conn_open(uint32_t peer, uint32_t max)
{
    bool ok = true;
    if (!peer)
        return true;
    pthread_mutex_lock(&conns.lock);
    /* Grow before the table is half full. Without memory, once it is full, connections
     * go uncounted (allowed): an address may then be undercounted, never overcounted. */
    if ((conns.used + 1) * 2 > conns.cap && !conn_grow() && conns.used + 1 >= conns.cap)
        goto out;
    struct conn_count *c = conn_slot(peer);
    if (!c->key) {
        c->key = peer;
        conns.used++;
    }
    c->n++;
    ok = !max || c->n <= max;
out:
    pthread_mutex_unlock(&conns.lock);
    return ok;
}

void limit_conn_close(uint32_t peer)
{
    if (!peer)
        return;
    pthread_mutex_lock(&conns.lock);
    if (!conns.cap)
        goto out;
    uint32_t mask = conns.cap - 1;
    struct conn_count *c = conn_slot(peer);
    if (!c->key || --c->n)
        goto out;
    /* Backward-shift deletion: move later members of the probe run into the hole, so
     * that every key stays reachable from its home slot without tombstones. */
    uint32_t hole = (uint32_t)(c - conns.e);
    for (uint32_t i = (hole + 1) & mask; conns.e[i].key; i = (i + 1) & mask) {
        uint32_t home = conns.e[i].key & mask;
        /* Entry i may fill the hole if its home is not in (hole, i] (cyclically). */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            conns.e[hole] = conns.e[i];
            hole = i;
        }
    }
    conns.e[hole].key = 0;
    conns.e[hole].n = 0;
    conns.used--;
out:
    pthread_mutex_unlock(&conns.lock);
}
