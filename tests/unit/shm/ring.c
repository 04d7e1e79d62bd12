/* Unit tests of shm/ring.c, in one process: both ends of a ring attached to the same memory.
 * Corruption cases write the shared header and frames directly, as a broken peer would. */
#include "shm/ring.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define DATA     4096u
#define MAXF     1024u
#define MAX_KIND 10u

struct pair {
    struct shm_ring *sh;
    struct ring p, c;
};

static struct shm_ring *ring_new(uint32_t data_size, uint32_t max_frame)
{
    struct shm_ring *sh = aligned_alloc(SHM_SLOT, ring_footprint(data_size));
    if (!sh)
        abort();
    memset(sh, 0xa5, ring_footprint(data_size)); /* no help from zeroed memory */
    if (ring_format(sh, data_size, max_frame) != 0)
        abort();
    return sh;
}

/* Both ends, no bells. */
static void pair_open(struct pair *x)
{
    x->sh = ring_new(DATA, MAXF);
    CHECK_INT(ring_attach(&x->p, x->sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(ring_attach(&x->c, x->sh, NULL, MAX_KIND), ==, 0);
}

static void pair_close(struct pair *x)
{
    free(x->sh);
    x->sh = NULL;
}

/* Reserves, fills with byte `fill`, commits. */
static int put(struct ring *r, uint32_t len, uint16_t kind, unsigned char fill)
{
    void *p;
    int rc = ring_reserve(r, len, kind, 0, &p);
    if (rc == 0) {
        memset(p, fill, len);
        ring_commit(r);
    }
    return rc;
}

/* Peeks one frame and checks it is len bytes of `fill` of the given kind; consumes it. */
static void get(struct ring *r, uint32_t len, uint16_t kind, unsigned char fill)
{
    struct ring_frame f;
    int rc = ring_peek(r, &f);
    CHECK_INT(rc, ==, 1);
    if (rc != 1)
        return;
    CHECK_INT(f.len, ==, len);
    CHECK_INT(f.kind, ==, kind);
    CHECK_INT((uintptr_t)f.payload % 8, ==, 0);
    const unsigned char *b = f.payload;
    for (uint32_t i = 0; i < f.len && i < len; i++)
        if (b[i] != fill) {
            TEST_FAIL("byte %u is %#x, expected %#x", i, b[i], fill);
            break;
        }
    ring_consume(r);
}

static void test_format_rejects(void)
{
    CHECK_INT(ring_footprint(DATA), ==, 512 + DATA);
    CHECK_INT(ring_footprint(5000), ==, 0);
    CHECK_INT(ring_footprint(2048), ==, 0);
    CHECK_INT(ring_footprint(0), ==, 0);
    CHECK_INT(ring_footprint(1u << 31), ==, 0);

    unsigned char *mem = aligned_alloc(SHM_SLOT, ring_footprint(DATA) + SHM_SLOT);
    CHECK_INT(ring_format(mem, 5000, 64), ==, -EINVAL);
    CHECK_INT(ring_format(mem, DATA, DATA / 2 + 1), ==, -EINVAL);
    CHECK_INT(ring_format(mem, DATA, RING_MIN_FRAME - 1), ==, -EINVAL);
    CHECK_INT(ring_format(mem + 8, DATA, 64), ==, -EINVAL);
    CHECK_INT(ring_format(mem, DATA, DATA / 2), ==, 0);
    free(mem);
}

static void test_attach_rejects(void)
{
    struct shm_ring *sh = ring_new(DATA, MAXF);
    struct ring r;
    CHECK_INT(ring_attach(&r, sh, NULL, SHM_KIND_PAD), ==, -EINVAL);
    CHECK_INT(ring_attach(&r, (char *)sh + 8, NULL, 1), ==, -EINVAL);

    sh->magic ^= 1;
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, -EPROTO);
    sh->magic ^= 1;
    sh->version = SHM_RING_VERSION + 1;
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, -EPROTO);
    sh->version = SHM_RING_VERSION;
    sh->data_size = DATA + 8;
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, -EBADMSG);
    sh->data_size = DATA;
    sh->max_frame = DATA;
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, -EBADMSG);
    sh->max_frame = MAXF;
    atomic_store(&sh->head, 12);
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, -EBADMSG);
    atomic_store(&sh->head, DATA + 8);
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, -EBADMSG);
    atomic_store(&sh->tail, 8);
    CHECK_INT(ring_attach(&r, sh, NULL, 1), ==, 0); /* head - tail == DATA: full, fine */
    free(sh);
}

static void test_empty(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    CHECK(ring_empty(&x.c));
    CHECK(!ring_release(&x.c));
    CHECK(!ring_publish(&x.p));
    CHECK_INT(ring_wait_prepare(&x.p), ==, 0); /* an empty ring has all the space */
    pair_close(&x);
}

static void test_roundtrip(void)
{
    struct pair x;
    struct ring_frame f;
    void *p;
    pair_open(&x);
    CHECK_INT(ring_reserve(&x.p, 5, 3, 7, &p), ==, 0);
    memcpy(p, "hello", 5);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    ring_commit(&x.p);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0); /* committed is not published */
    CHECK(!ring_publish(&x.p));            /* no peer bell: never asks for a ring */
    CHECK(!ring_empty(&x.c));
    CHECK_INT(ring_peek(&x.c, &f), ==, 1);
    CHECK_SPAN(f.payload, f.len, "hello");
    CHECK_INT(f.kind, ==, 3);
    CHECK_INT(f.flags, ==, 7);
    CHECK_INT(ring_peek(&x.c, &f), ==, 1); /* peek does not consume */
    ring_consume(&x.c);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    CHECK(ring_empty(&x.c));
    CHECK_INT(atomic_load(&x.sh->tail), ==, 0); /* consumed is not released */
    CHECK(!ring_release(&x.c));
    CHECK_INT(atomic_load(&x.sh->tail), ==, 16);
    /* A zero-length payload is a frame too. */
    CHECK_INT(put(&x.p, 0, 0, 0), ==, 0);
    ring_publish(&x.p);
    get(&x.c, 0, 0, 0);
    pair_close(&x);
}

static void test_batch_visibility(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    for (unsigned i = 0; i < 10; i++)
        CHECK_INT(put(&x.p, 20 + i, (uint16_t)i, (unsigned char)i), ==, 0);
    CHECK_INT(atomic_load(&x.sh->head), ==, 0); /* one store per batch, not yet */
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    ring_publish(&x.p);
    CHECK_INT(atomic_load(&x.sh->head), >, 0);
    for (unsigned i = 0; i < 10; i++)
        get(&x.c, 20 + i, (uint16_t)i, (unsigned char)i);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    ring_release(&x.c);
    pair_close(&x);
}

static void test_reservation_forgotten(void)
{
    struct pair x;
    struct ring_frame f;
    void *p;
    pair_open(&x);
    CHECK_INT(ring_reserve(&x.p, 100, 1, 0, &p), ==, 0); /* never committed */
    memset(p, 'a', 100);
    CHECK_INT(put(&x.p, 10, 2, 'b'), ==, 0);
    ring_commit(&x.p); /* nothing reserved: no-op */
    ring_publish(&x.p);
    get(&x.c, 10, 2, 'b');
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    pair_close(&x);
}

static void test_full(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    /* 56-byte payloads: 64-byte frames, exactly DATA / 64 of them fit. */
    unsigned n = 0;
    while (put(&x.p, 56, 1, (unsigned char)n) == 0)
        n++;
    CHECK_INT(n, ==, DATA / 64);
    CHECK_INT(put(&x.p, 56, 1, 0), ==, -ENOBUFS);
    CHECK_INT(put(&x.p, 0, 1, 0), ==, -ENOBUFS);
    ring_publish(&x.p);
    get(&x.c, 56, 1, 0);
    CHECK_INT(put(&x.p, 56, 1, 0), ==, -ENOBUFS); /* consumed but not released */
    ring_release(&x.c);
    CHECK_INT(put(&x.p, 56, 1, 0xee), ==, 0);
    ring_publish(&x.p);
    for (unsigned i = 1; i < n; i++)
        get(&x.c, 56, 1, (unsigned char)i);
    get(&x.c, 56, 1, 0xee);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    pair_close(&x);
}

static void test_oversized_and_kind(void)
{
    struct pair x;
    void *p;
    pair_open(&x);
    CHECK_INT(ring_max_payload(&x.p), ==, MAXF - 8);
    CHECK_INT(ring_reserve(&x.p, MAXF - 7, 1, 0, &p), ==, -EMSGSIZE);
    CHECK_INT(ring_reserve(&x.p, UINT32_MAX, 1, 0, &p), ==, -EMSGSIZE);
    CHECK_INT(ring_reserve(&x.p, 8, MAX_KIND + 1, 0, &p), ==, -EINVAL);
    CHECK_INT(ring_reserve(&x.p, 8, SHM_KIND_PAD, 0, &p), ==, -EINVAL);
    CHECK_INT(put(&x.p, MAXF - 8, MAX_KIND, 'm'), ==, 0);
    ring_publish(&x.p);
    get(&x.c, MAXF - 8, MAX_KIND, 'm');
    pair_close(&x);
}

/* A frame that does not fit before the end: a pad to the end, then the frame at offset 0. */
static void test_wrap_pad(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    for (int i = 0; i < 4; i++) /* 4 x 1008 = 4032: 64 bytes left before the end */
        CHECK_INT(put(&x.p, 1000, 1, (unsigned char)('a' + i)), ==, 0);
    ring_publish(&x.p);
    get(&x.c, 1000, 1, 'a');
    get(&x.c, 1000, 1, 'b');
    ring_release(&x.c);
    CHECK_INT(put(&x.p, 1000, 2, 'e'), ==, 0); /* 64 + 1008 needed, 2080 free */
    ring_publish(&x.p);
    const struct shm_frame *pad = (const struct shm_frame *)(x.sh->data + 4032);
    CHECK_INT(pad->kind, ==, SHM_KIND_PAD);
    CHECK_INT(pad->len, ==, 64);
    CHECK_INT(atomic_load(&x.sh->head), ==, DATA + 1008);
    get(&x.c, 1000, 1, 'c');
    get(&x.c, 1000, 1, 'd');
    CHECK_INT(ring_peek(&x.c, &f), ==, 1); /* the pad is skipped */
    CHECK(f.payload == x.sh->data + 8);
    get(&x.c, 1000, 2, 'e');
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    ring_release(&x.c);
    CHECK_INT(atomic_load(&x.sh->tail), ==, DATA + 1008);

    /* A frame that ends exactly at the end needs no pad. */
    for (int i = 0; i < 2; i++) /* 1008 .. 3024 */
        CHECK_INT(put(&x.p, 1000, 1, 'f'), ==, 0);
    CHECK_INT(put(&x.p, 1064, 1, 'g'), ==, -EMSGSIZE);
    CHECK_INT(put(&x.p, 1016 - 8, 1, 'g'), ==, 0); /* 3024 + 1016 = 4040 */
    CHECK_INT(put(&x.p, 48, 1, 'h'), ==, 0);       /* 4040 + 56 = 4096 exactly */
    CHECK_INT(put(&x.p, 8, 1, 'i'), ==, 0);        /* at offset 0, no pad */
    ring_publish(&x.p);
    get(&x.c, 1000, 1, 'f');
    get(&x.c, 1000, 1, 'f');
    get(&x.c, 1008, 1, 'g');
    get(&x.c, 48, 1, 'h');
    CHECK_INT(ring_peek(&x.c, &f), ==, 1);
    CHECK(f.payload == x.sh->data + 8);
    get(&x.c, 8, 1, 'i');
    pair_close(&x);
}

/* A model run over many laps: random lengths, batch sizes and consumer pace, every payload
 * checked. Fixed seed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void test_model(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    uint64_t sent = 0, got = 0, bad = 0, full = 0;
    uint32_t lens[4096]; /* ring of expected lengths, indexed by sequence */
    while (got < 300000) {
        unsigned burst = (unsigned)(rnd() % 40);
        for (unsigned i = 0; i < burst; i++) {
            uint32_t len = rnd() % 4 ? (uint32_t)(rnd() % 200) : (uint32_t)(rnd() % (MAXF - 7));
            void *p;
            int rc = ring_reserve(&x.p, len, (uint16_t)(sent % (MAX_KIND + 1)), 0, &p);
            if (rc == -ENOBUFS) {
                full++;
                break;
            }
            CHECK_INT(rc, ==, 0);
            memset(p, (int)(sent & 0xff), len);
            lens[sent % 4096] = len;
            ring_commit(&x.p);
            sent++;
            if (rnd() % 8 == 0)
                ring_publish(&x.p);
        }
        ring_publish(&x.p);
        unsigned eat = (unsigned)(rnd() % 48);
        for (unsigned i = 0; i < eat && ring_peek(&x.c, &f) == 1; i++) {
            const unsigned char *b = f.payload;
            if (f.len != lens[got % 4096] || f.kind != got % (MAX_KIND + 1) ||
                (f.len && (b[0] != (got & 0xff) || b[f.len - 1] != (got & 0xff))))
                bad++;
            ring_consume(&x.c);
            got++;
            if (rnd() % 4 == 0)
                ring_release(&x.c);
        }
        ring_release(&x.c);
    }
    CHECK_INT(bad, ==, 0);
    CHECK_INT(full, >, 100);                            /* back-pressure happened, often */
    CHECK_INT(atomic_load(&x.sh->head), >, 100 * DATA); /* many laps */
    pair_close(&x);
}

/* ---- corruption: each case must be -EBADMSG, sticky, and not a crash ---- */

/* Publishes one 16-byte frame, then lets the caller break it. */
static void corrupt_case(const char *what, uint32_t len, uint16_t kind, int64_t head)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    CHECK_INT(put(&x.p, 8, 1, 'x'), ==, 0);
    ring_publish(&x.p);
    struct shm_frame *h = (struct shm_frame *)x.sh->data;
    h->len = len;
    h->kind = kind;
    if (head >= 0)
        atomic_store(&x.sh->head, (uint64_t)head);
    int rc = ring_peek(&x.c, &f);
    if (rc != -EBADMSG)
        TEST_FAIL("%s: ring_peek gave %d", what, rc);
    CHECK_INT(ring_peek(&x.c, &f), ==, -EBADMSG);
    pair_close(&x);
}

static void test_corrupt_frames(void)
{
    corrupt_case("len 0", 0, 1, -1);
    corrupt_case("len < header", 4, 1, -1);
    corrupt_case("len huge", 0xfffffff0u, 1, -1);
    corrupt_case("len > max_frame", MAXF + 8, 1, 4096);
    corrupt_case("beyond head", 64, 1, -1);
    corrupt_case("bad kind", 16, MAX_KIND + 1, -1);
    corrupt_case("pad short of the end", 16, SHM_KIND_PAD, -1);
    corrupt_case("pad misaligned", 4095, SHM_KIND_PAD, 4096);
    corrupt_case("pad beyond head", 4096, SHM_KIND_PAD, -1);
    corrupt_case("head misaligned", 16, 1, 12);
    corrupt_case("head too far", 16, 1, DATA + 8);
    corrupt_case("head far ahead", 16, 1, INT64_MAX - 7);
}

static void test_corrupt_straddle_and_regress(void)
{
    struct shm_ring *sh = ring_new(DATA, MAXF);
    struct ring c;
    struct ring_frame f;
    /* A frame that straddles the end: 32 bytes at 4080, with 16 bytes of room. */
    atomic_store(&sh->head, DATA - 16);
    atomic_store(&sh->tail, DATA - 16);
    CHECK_INT(ring_attach(&c, sh, NULL, MAX_KIND), ==, 0);
    struct shm_frame *h = (struct shm_frame *)(sh->data + DATA - 16);
    *h = (struct shm_frame){.len = 32, .kind = 1};
    atomic_store(&sh->head, DATA + 16);
    CHECK_INT(ring_peek(&c, &f), ==, -EBADMSG);
    /* Fixed, then a head that goes backwards. */
    *h = (struct shm_frame){.len = 16, .kind = 1};
    atomic_store(&sh->head, DATA);
    CHECK_INT(ring_attach(&c, sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(ring_peek(&c, &f), ==, 1);
    ring_consume(&c);
    atomic_store(&sh->head, DATA - 8);
    CHECK_INT(ring_peek(&c, &f), ==, -EBADMSG);
    free(sh);
}

/* The producer checks the consumer's tail likewise. */
static void test_corrupt_tail(void)
{
    struct pair x;
    pair_open(&x);
    while (put(&x.p, 56, 1, 0) == 0)
        ;
    ring_publish(&x.p);
    atomic_store(&x.sh->tail, DATA + 64); /* past what was published */
    CHECK_INT(put(&x.p, 56, 1, 0), ==, -EBADMSG);
    CHECK_INT(ring_wait_prepare(&x.p), ==, -EBADMSG);
    CHECK_INT(atomic_load(&x.sh->wake_tail), ==, (int64_t)SHM_NO_WAKE);
    atomic_store(&x.sh->tail, 64);
    CHECK_INT(put(&x.p, 56, 1, 0), ==, 0);
    ring_commit(&x.p);
    ring_publish(&x.p);
    atomic_store(&x.sh->tail, 0); /* backwards */
    while (put(&x.p, 56, 1, 0) == 0)
        ; /* fills what is left by the cached tail */
    CHECK_INT(put(&x.p, 56, 1, 0), ==, -EBADMSG);
    pair_close(&x);
}

/* ---- wake-up decisions (the bells' flags, no eventfd needed) ---- */

static void test_publish_wakes_sleeper(void)
{
    struct shm_bell cb_sh;
    struct bell cb;
    struct pair x;
    struct ring_frame f;
    bell_format(&cb_sh);
    CHECK_INT(bell_attach(&cb, &cb_sh, -1), ==, 0);
    x.sh = ring_new(DATA, MAXF);
    CHECK_INT(ring_attach(&x.p, x.sh, &cb, MAX_KIND), ==, 0);
    CHECK_INT(ring_attach(&x.c, x.sh, NULL, MAX_KIND), ==, 0);

    put(&x.p, 8, 1, 1);
    CHECK(!ring_publish(&x.p)); /* consumer awake: no ring */
    bell_prepare_sleep(&cb);
    CHECK(!ring_empty(&x.c)); /* the re-check finds the frame: cancel */
    bell_cancel_sleep(&cb);
    get(&x.c, 8, 1, 1);
    ring_release(&x.c);

    bell_prepare_sleep(&cb);
    CHECK(ring_empty(&x.c)); /* nothing: the consumer would block now */
    put(&x.p, 8, 1, 2);
    CHECK(ring_publish(&x.p)); /* this producer must ring */
    CHECK_INT(atomic_load(&cb_sh.sleeping), ==, 0);
    put(&x.p, 8, 1, 3);
    CHECK(!ring_publish(&x.p)); /* already claimed: one ring is enough */
    CHECK(!ring_publish(&x.p)); /* nothing new */
    get(&x.c, 8, 1, 2);
    get(&x.c, 8, 1, 3);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    pair_close(&x);
}

static void test_release_wakes_waiting_producer(void)
{
    struct pair x;
    pair_open(&x);
    CHECK_INT(put(&x.p, 56, 1, 0), ==, 0);
    CHECK_INT(ring_wait_prepare(&x.p), ==, -EBUSY); /* committed, unpublished */
    ring_publish(&x.p);
    CHECK_INT(ring_wait_prepare(&x.p), ==, 0); /* half the ring is free */
    CHECK_INT(atomic_load(&x.sh->wake_tail), ==, (int64_t)SHM_NO_WAKE);
    while (put(&x.p, 56, 1, 0) == 0)
        ;
    ring_publish(&x.p);
    CHECK_INT(ring_wait_prepare(&x.p), ==, 1);
    CHECK_INT(atomic_load(&x.sh->wake_tail), ==, DATA / 2); /* wake at half a ring */

    for (int i = 0; i < 31; i++)
        get(&x.c, 56, 1, 0);
    CHECK(!ring_release(&x.c)); /* 31 x 64 < 2048: not yet */
    get(&x.c, 56, 1, 0);
    CHECK(ring_release(&x.c)); /* 2048: ring the producer */
    CHECK_INT(atomic_load(&x.sh->wake_tail), ==, (int64_t)SHM_NO_WAKE);
    get(&x.c, 56, 1, 0);
    CHECK(!ring_release(&x.c)); /* disarmed */
    CHECK_INT(put(&x.p, 56, 1, 0), ==, 0);
    pair_close(&x);
}

static void test_wait_space_already_there(void)
{
    struct pair x;
    pair_open(&x);
    while (put(&x.p, 56, 1, 0) == 0)
        ;
    ring_publish(&x.p);
    for (int i = 0; i < 40; i++)
        get(&x.c, 56, 1, 0);
    ring_release(&x.c);                        /* not armed: no ring */
    CHECK_INT(ring_wait_prepare(&x.p), ==, 0); /* the re-load of tail sees the space */
    CHECK_INT(atomic_load(&x.sh->wake_tail), ==, (int64_t)SHM_NO_WAKE);
    /* A refused frame larger than half the ring raises the bar. */
    struct shm_ring *big = ring_new(DATA, DATA / 2);
    struct ring p, c;
    CHECK_INT(ring_attach(&p, big, NULL, 1), ==, 0);
    CHECK_INT(ring_attach(&c, big, NULL, 1), ==, 0);
    CHECK_INT(put(&p, 8, 1, 0), ==, 0);                   /* 16 */
    CHECK_INT(put(&p, DATA / 2 - 8, 1, 0), ==, 0);        /* 16 + 2048 */
    CHECK_INT(put(&p, DATA / 2 - 8, 1, 0), ==, -ENOBUFS); /* needs 2032 pad + 2048 */
    ring_publish(&p);
    CHECK_INT(ring_wait_prepare(&p), ==, 1);
    CHECK_INT(atomic_load(&big->wake_tail), ==, 2064 + 4080 - DATA); /* head + want - size */
    free(big);
    pair_close(&x);
}

/* ---- reset by the survivor ---- */

static void test_reset(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    /* The producer dies with frames published, a reservation half-written and a wait armed. */
    while (put(&x.p, 100, 1, 'z') == 0)
        ;
    ring_publish(&x.p);
    CHECK_INT(ring_wait_prepare(&x.p), ==, 1);
    void *p;
    ring_reserve(&x.p, 8, 1, 0, &p);
    /* The surviving consumer drains what was published (all whole), then resets. */
    unsigned n = 0;
    while (ring_peek(&x.c, &f) == 1) {
        ring_consume(&x.c);
        n++;
    }
    CHECK_INT(n, ==, DATA / 112);
    ring_reset(&x.c);
    CHECK_INT(atomic_load(&x.sh->head), ==, 0);
    CHECK_INT(atomic_load(&x.sh->tail), ==, 0);
    CHECK_INT(atomic_load(&x.sh->wake_tail), ==, (int64_t)SHM_NO_WAKE);
    CHECK(!ring_release(&x.c)); /* nothing armed any more */
    /* The replacement attaches and both go on. */
    struct ring np;
    CHECK_INT(ring_attach(&np, x.sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(put(&np, 5, 2, 'n'), ==, 0);
    ring_publish(&np);
    get(&x.c, 5, 2, 'n');
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);

    /* The other way round: the consumer dies with frames unread, the producer survives. */
    CHECK_INT(put(&np, 5, 2, 'u'), ==, 0);
    ring_publish(&np);
    ring_reset(&np);
    struct ring nc;
    CHECK_INT(ring_attach(&nc, x.sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(ring_peek(&nc, &f), ==, 0);
    CHECK_INT(put(&np, 6, 3, 'v'), ==, 0);
    ring_publish(&np);
    get(&nc, 6, 3, 'v');
    pair_close(&x);
}

/* A consumer that gives frames back only up to a point keeps the rest from the producer. */
static void test_release_to(void)
{
    struct pair x;
    pair_open(&x);
    CHECK_INT(put(&x.p, 100, 1, 0x11), ==, 0);
    CHECK_INT(put(&x.p, 100, 2, 0x22), ==, 0);
    ring_publish(&x.p);
    get(&x.c, 100, 1, 0x11);
    uint64_t first = ring_consumed(&x.c);
    get(&x.c, 100, 2, 0x22);
    CHECK(ring_release_to(&x.c, first) == false); /* nobody waits: no bell */
    CHECK_INT(atomic_load(&x.sh->tail), ==, first);
    CHECK(!ring_release_to(&x.c, first));            /* nothing new */
    CHECK(!ring_release_to(&x.c, first - 8));        /* backwards */
    CHECK(!ring_release_to(&x.c, ring_consumed(&x.c) + 8)); /* beyond what was read */
    CHECK_INT(atomic_load(&x.sh->tail), ==, first);
    ring_release(&x.c);
    CHECK_INT(atomic_load(&x.sh->tail), ==, ring_consumed(&x.c));
    pair_close(&x);
}

struct seen {
    unsigned n;
    uint16_t kinds[16];
    uint32_t lens[16];
};

static int visit(void *arg, const struct ring_frame *f)
{
    struct seen *v = arg;
    if (v->n < 16) {
        v->kinds[v->n] = f->kind;
        v->lens[v->n] = f->len;
    }
    v->n++;
    return 0;
}

/* The survivor producer gets back what the dead consumer had not released: frames read
 * but not released, published and not read, committed and not published; across the
 * wrap (a pad in between). */
static void test_unreleased(void)
{
    struct pair x;
    pair_open(&x);
    for (int i = 0; i < 3; i++) /* 3 x 1000 + pads: the next ones wrap */
        CHECK_INT(put(&x.p, 1000 - 8, 1, 0x11), ==, 0);
    ring_publish(&x.p);
    for (int i = 0; i < 3; i++)
        get(&x.c, 1000 - 8, 1, 0x11);
    ring_release(&x.c);
    CHECK_INT(put(&x.p, 900, 2, 0x22), ==, 0); /* read, not released */
    CHECK_INT(put(&x.p, 800, 3, 0x33), ==, 0); /* wraps: published, not read */
    ring_publish(&x.p);
    get(&x.c, 900, 2, 0x22);
    CHECK_INT(put(&x.p, 50, 4, 0x44), ==, 0); /* committed only */
    struct seen v = {0};
    CHECK_INT(ring_unreleased(&x.p, visit, &v), ==, 0);
    CHECK_INT(v.n, ==, 3);
    CHECK_INT(v.kinds[0], ==, 2);
    CHECK_INT(v.lens[0], ==, 900);
    CHECK_INT(v.kinds[1], ==, 3);
    CHECK_INT(v.kinds[2], ==, 4);
    CHECK_INT(v.lens[2], ==, 50);

    /* A dead consumer's impossible tail, or a frame it scribbled over, is refused. */
    atomic_store(&x.sh->tail, ring_committed(&x.p) + 8);
    v.n = 0;
    CHECK_INT(ring_unreleased(&x.p, visit, &v), ==, -EBADMSG);
    CHECK_INT(v.n, ==, 0);
    atomic_store(&x.sh->tail, x.c.rel);
    ((struct shm_frame *)(x.sh->data + (x.c.rel & (DATA - 1))))->len = DATA;
    CHECK_INT(ring_unreleased(&x.p, visit, &v), ==, -EBADMSG);
    pair_close(&x);
}

/* Frames committed and not published can be taken back; published ones cannot. */
static void test_uncommit(void)
{
    struct pair x;
    struct ring_frame f;
    pair_open(&x);
    CHECK_INT(put(&x.p, 10, 1, 0x11), ==, 0);
    ring_publish(&x.p);
    uint64_t mark = ring_committed(&x.p);
    CHECK_INT(put(&x.p, 20, 2, 0x22), ==, 0);
    CHECK_INT(put(&x.p, 30, 3, 0x33), ==, 0);
    ring_uncommit(&x.p, mark);
    CHECK_INT(ring_committed(&x.p), ==, mark);
    ring_uncommit(&x.p, 0); /* before what was published: refused */
    CHECK_INT(ring_committed(&x.p), ==, mark);
    CHECK_INT(put(&x.p, 40, 4, 0x44), ==, 0);
    ring_publish(&x.p);
    get(&x.c, 10, 1, 0x11);
    get(&x.c, 40, 4, 0x44);
    CHECK_INT(ring_peek(&x.c, &f), ==, 0);
    pair_close(&x);
}

/* ---- memory at rest ---- */

/* Pages of [p, p + n) the segment holds (mincore: in the page cache of the memfd). */
static unsigned resident(const void *p, size_t n)
{
    unsigned char v[64];
    long page = sysconf(_SC_PAGESIZE);
    unsigned count = 0;
    size_t pages = n / (size_t)page;
    if (pages > sizeof v || mincore((void *)p, n, v) < 0)
        return ~0u;
    for (size_t i = 0; i < pages; i++)
        count += v[i] & 1;
    return count;
}

static void test_trim(void)
{
    /* A ring in a memfd, as in a segment: its data area is 16 pages, 15 of them whole. */
    const uint32_t data = 16 * 4096;
    size_t size = ring_footprint(data) + 4096;
    int fd = memfd_create("ring-trim", 0);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
    unsigned char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(mem != MAP_FAILED);
    if (fd < 0 || mem == MAP_FAILED)
        return;
    struct shm_ring *sh = (struct shm_ring *)mem;
    struct ring p, c;
    CHECK_INT(ring_format(sh, data, 8192), ==, 0);
    CHECK_INT(ring_attach(&p, sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(ring_attach(&c, sh, NULL, MAX_KIND), ==, 0);
    unsigned char *first = mem + 4096; /* the first whole page of the data area */
    CHECK(ring_trimmed(&p));
    CHECK_INT(ring_trim(&p), ==, 0); /* never written: nothing to give back */

    /* A lap and a half of frames, each consumed: every page was touched. */
    for (unsigned i = 0; i < 24; i++) {
        CHECK_INT(put(&p, 4000, 1, (unsigned char)i), ==, 0);
        ring_publish(&p);
        get(&c, 4000, 1, (unsigned char)i);
        ring_release(&c);
    }
    CHECK_INT(resident(first, 15 * 4096), ==, 15);
    CHECK(!ring_trimmed(&p));
    /* Published since the last call: busy, not trimmed. */
    CHECK_INT(ring_trim(&p), ==, 0);
    /* A frame not yet consumed keeps the pages too, however quiet the ring. */
    CHECK_INT(put(&p, 100, 2, 'k'), ==, 0);
    ring_publish(&p);
    CHECK_INT(ring_trim(&p), ==, 0);
    CHECK_INT(ring_trim(&p), ==, 0);
    get(&c, 100, 2, 'k');
    ring_release(&c);
    /* Batched but not published: not quiet either. */
    CHECK_INT(put(&p, 100, 2, 'b'), ==, 0);
    CHECK_INT(ring_trim(&p), ==, 0);
    ring_publish(&p);
    get(&c, 100, 2, 'b');
    ring_release(&c);
    CHECK_INT(ring_trim(&p), ==, 0); /* published since the last call */
    /* Quiet: the whole pages go, for both ends (one mapping here, two in a node). */
    CHECK_INT(ring_trim(&p), ==, 1);
    CHECK(ring_trimmed(&p));
    CHECK_INT(resident(first, 15 * 4096), ==, 0);
    CHECK_INT(ring_trim(&p), ==, 0); /* once */
    CHECK_INT(atomic_load(&sh->head), ==, atomic_load(&sh->tail));

    /* Frames pass as before, over fresh pages, across the end of the area too. */
    for (unsigned i = 0; i < 20; i++) {
        CHECK_INT(put(&p, 3000, 3, (unsigned char)(0x40 + i)), ==, 0);
        ring_publish(&p);
        get(&c, 3000, 3, (unsigned char)(0x40 + i));
        ring_release(&c);
    }
    struct ring_frame f;
    CHECK_INT(ring_peek(&c, &f), ==, 0);
    CHECK(!ring_trimmed(&p));

    munmap(mem, size);
    close(fd);

    /* Private memory, as between two shards of one process. */
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED)
        return;
    sh = (struct shm_ring *)mem;
    CHECK_INT(ring_format(sh, data, 8192), ==, 0);
    CHECK_INT(ring_attach(&p, sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(ring_attach(&c, sh, NULL, MAX_KIND), ==, 0);
    for (unsigned i = 0; i < 20; i++) {
        CHECK_INT(put(&p, 4000, 1, 'm'), ==, 0);
        ring_publish(&p);
        get(&c, 4000, 1, 'm');
        ring_release(&c);
    }
    first = mem + 4096;
    CHECK_INT(resident(first, 15 * 4096), ==, 15);
    ring_trim(&p);
    CHECK_INT(ring_trim(&p), ==, 1);
    CHECK_INT(resident(first, 15 * 4096), ==, 0);
    CHECK_INT(put(&p, 5000, 2, 'n'), ==, 0);
    ring_publish(&p);
    get(&c, 5000, 2, 'n');
    munmap(mem, size);
}

int main(void)
{
    RUN(test_format_rejects);
    RUN(test_attach_rejects);
    RUN(test_empty);
    RUN(test_roundtrip);
    RUN(test_batch_visibility);
    RUN(test_reservation_forgotten);
    RUN(test_full);
    RUN(test_oversized_and_kind);
    RUN(test_wrap_pad);
    RUN(test_model);
    RUN(test_corrupt_frames);
    RUN(test_corrupt_straddle_and_regress);
    RUN(test_corrupt_tail);
    RUN(test_publish_wakes_sleeper);
    RUN(test_release_wakes_waiting_producer);
    RUN(test_wait_space_already_there);
    RUN(test_reset);
    RUN(test_release_to);
    RUN(test_unreleased);
    RUN(test_uncommit);
    RUN(test_trim);
    return test_done("ring");
}
