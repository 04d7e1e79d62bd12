/* Two-process stress test of shm/ring.c, shm/bell.c and shm/seg.c: the supervisor's pattern
 * (a segment and eventfds created, then fork), a producer in the parent and a consumer in the
 * child, many millions of frames through a small ring.
 *
 * Frame `seq` has a payload of 8..512 bytes and a kind, both derived from seq with a fixed
 * seed, so the consumer knows what to expect without being told: payload = seq (u32),
 * checksum (u32: xxh3 of the rest, seeded with seq), then bytes from a pattern block.
 * The consumer checks order, length, kind and checksum of every frame and that exactly
 * `frames` arrive, nothing more. Both sides pause now and then (fixed, pseudo-random points)
 * so that the consumer really sleeps on its bell and the producer really fills the 64 KiB
 * ring and waits for space; both sleeps are counted and must have happened. A wait that
 * ends by timeout instead of a ring would be a lost wake-up: counted, and a failure.
 *
 * Then the reset protocol (ring.h) against a peer that is really killed (SIGKILL at an
 * arbitrary point, mid-frame or asleep): a surviving consumer drains what was published,
 * every frame of it whole, resets, and reads a replacement producer's fresh sequence; a
 * surviving producer resets and a replacement consumer sees only frames made after that.
 *
 * RING_STRESS_FRAMES overrides the frame count: 100 M by default, 2 M under sanitizers,
 * 10 M in an unoptimised build. The child reports through a shared results block; only the
 * parent CHECKs (test.h is single-process).
 */
#include "shm/ring.h"
#include "shm/seg.h"
#include "test.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(undefined_behavior_sanitizer)
#define STRESS_SANITIZED 1
#endif
#endif

#if defined(STRESS_SANITIZED)
#define DEFAULT_FRAMES 2000000ull
#elif !defined(__OPTIMIZE__)
#define DEFAULT_FRAMES 10000000ull
#else
#define DEFAULT_FRAMES 100000000ull
#endif

#define SEED     0x5eed5eed12345678ull
#define MIN_LEN  8u
#define MAX_LEN  512u
#define N_KINDS  4u
#define PATTERN  2048u
#define WAIT_MS  2000
#define PAUSE_NS 100000

struct cfg {
    const char *name;
    uint64_t frames;
    uint32_t ring_size;
    unsigned batch;     /* frames per publish / release */
    unsigned spin;      /* empty polls before the consumer sleeps */
    unsigned pause_lg2; /* a side pauses about once every 2^pause_lg2 frames */
    uint64_t seed;      /* of the sequence: each replacement producer starts a new one */
};

/* Written by the child, read by the parent after waitpid(), which orders them. */
struct results {
    _Atomic uint64_t progress; /* frames checked so far, for a parent that kills us */
    uint64_t received, bad_seq, bad_len, bad_kind, bad_sum, bad_msg, extra;
    uint64_t sleeps, woken, timeouts, rings_sent;
};

struct stats {
    uint64_t waits, woken, timeouts, rings_sent, full;
};

static unsigned char pattern[PATTERN + MAX_LEN];

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* What frame seq looks like: the same function on both sides. */
static inline uint32_t frame_len(uint64_t h)
{
    return MIN_LEN + (uint32_t)(h % (MAX_LEN - MIN_LEN + 1));
}

static inline uint16_t frame_kind(uint64_t h)
{
    return (uint16_t)((h >> 32) % N_KINDS);
}

static inline bool pause_here(uint64_t h, unsigned lg2, unsigned side)
{
    return ((h >> 40 >> side) & ((1ull << lg2) - 1)) == 0;
}

static void nap(void)
{
    struct timespec ts = {0, PAUSE_NS};
    nanosleep(&ts, NULL);
}

static uint64_t frames_from_env(void)
{
    const char *s = getenv("RING_STRESS_FRAMES");
    if (s && *s) {
        char *end;
        unsigned long long n = strtoull(s, &end, 10);
        if (*end == '\0' && n > 0)
            return n;
    }
    return DEFAULT_FRAMES;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- consumer ---- */

/* Checks that f is frame seq of the sequence `seed`; counts what is wrong in res. */
static void check_frame(const struct ring_frame *f, uint64_t seq, uint64_t seed,
                        struct results *res)
{
    uint64_t h = mix(seed ^ seq);
    const unsigned char *p = f->payload;
    uint32_t got_seq = 0, got_sum = 0;
    if (f->len >= 8) {
        memcpy(&got_seq, p, 4);
        memcpy(&got_sum, p + 4, 4);
    }
    if (f->len != frame_len(h))
        res->bad_len++;
    else if ((uint32_t)XXH3_64bits_withSeed(p + 8, f->len - 8, seq ^ seed) != got_sum)
        res->bad_sum++;
    if (got_seq != (uint32_t)seq)
        res->bad_seq++;
    if (f->kind != frame_kind(h))
        res->bad_kind++;
}

static void release(struct ring *c, struct results *res)
{
    if (ring_release(c) && bell_ring(c->peer) == 0)
        res->rings_sent++;
}

/* Consumes frames 0..k->frames-1 of k->seed, checking each. Returns how many it got. */
static uint64_t consume(const struct cfg *k, struct ring *c, const struct bell *me,
                        struct results *res, pid_t parent)
{
    uint64_t seq = 0;
    unsigned batch = 0;
    while (seq < k->frames) {
        struct ring_frame f;
        int rc = ring_peek(c, &f);
        if (rc == 1) {
            check_frame(&f, seq, k->seed, res);
            ring_consume(c);
            seq++;
            atomic_store_explicit(&res->progress, seq, memory_order_relaxed);
            if (++batch >= k->batch) {
                batch = 0;
                release(c, res);
            }
            if (pause_here(mix(k->seed ^ seq), k->pause_lg2, 0)) {
                /* Stall with frames in hand: the producer fills the ring and waits. */
                release(c, res);
                nap();
            }
            continue;
        }
        if (rc < 0) {
            res->bad_msg++;
            break;
        }
        batch = 0;
        release(c, res);
        bool found = false;
        for (unsigned i = 0; i < k->spin && !found; i++) {
            cpu_relax();
            found = !ring_empty(c);
        }
        if (found)
            continue;
        bell_prepare_sleep(me);
        if (!ring_empty(c)) {
            bell_cancel_sleep(me);
            continue;
        }
        res->sleeps++;
        /* Neither side ever idles for WAIT_MS: a timeout means a lost wake-up (or a dead
         * producer, which ends the run). */
        rc = bell_wait(me, WAIT_MS);
        if (rc == 1)
            res->woken++;
        else if (rc == 0) {
            res->timeouts++;
            if (getppid() != parent)
                break;
        }
    }
    release(c, res);
    return seq;
}

/* ---- producer ---- */

static void publish(struct ring *p, struct stats *st)
{
    if (ring_publish(p) && bell_ring(p->peer) == 0)
        st->rings_sent++;
}

/* Returns the number of frames sent. */
static uint64_t produce(const struct cfg *k, struct ring *p, const struct bell *me, pid_t child,
                        struct stats *st)
{
    uint64_t seq = 0;
    unsigned batch = 0;
    while (seq < k->frames) {
        uint64_t h = mix(k->seed ^ seq);
        uint32_t len = frame_len(h);
        void *v;
        int rc = ring_reserve(p, len, frame_kind(h), 0, &v);
        if (rc == 0) {
            unsigned char *b = v;
            uint32_t s32 = (uint32_t)seq;
            memcpy(b + 8, pattern + (h >> 20) % PATTERN, len - 8);
            uint32_t sum = (uint32_t)XXH3_64bits_withSeed(b + 8, len - 8, seq ^ k->seed);
            memcpy(b, &s32, 4);
            memcpy(b + 4, &sum, 4);
            ring_commit(p);
            seq++;
            if (++batch >= k->batch) {
                batch = 0;
                publish(p, st);
            }
            if (pause_here(h, k->pause_lg2, 8)) {
                /* Go quiet: the consumer drains, finds nothing and sleeps. */
                publish(p, st);
                nap();
            }
            continue;
        }
        if (rc != -ENOBUFS) {
            TEST_FAIL("ring_reserve: %d", rc);
            break;
        }
        st->full++;
        batch = 0;
        publish(p, st);
        rc = ring_wait_prepare(p);
        if (rc <= 0) {
            if (rc < 0) {
                TEST_FAIL("ring_wait_prepare: %d", rc);
                break;
            }
            continue;
        }
        st->waits++;
        rc = bell_wait(me, WAIT_MS);
        if (rc == 1)
            st->woken++;
        else if (rc == 0) {
            st->timeouts++;
            if (child > 0 && waitpid(child, NULL, WNOHANG) != 0) {
                TEST_FAIL("consumer died");
                break;
            }
        }
    }
    publish(p, st);
    return seq;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the supervisor creates before it forks: the segment (ring 0; bell 0 is the
 * consumer's, bell 1 the producer's), the eventfds, and here a block for the results. */
struct world {
    struct seg_layout l;
    struct seg s;
    int cfd, pfd;
    struct results *res;
};

/* One end as a process sees it. */
struct end {
    struct bell cb, pb;
    struct ring r;
};

static int world_open(struct world *w, uint32_t ring_size)
{
    int rc = seg_plan(&w->l, 1, 2, 0, ring_size, 1024);
    if (rc < 0 || (rc = seg_create(&w->s, "starling-stress", &w->l)) < 0)
        return rc;
    w->cfd = bell_eventfd();
    w->pfd = bell_eventfd();
    w->res = mmap(NULL, sizeof *w->res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w->cfd < 0 || w->pfd < 0 || w->res == MAP_FAILED)
        return -EMFILE;
    memset(w->res, 0, sizeof *w->res);
    return 0;
}

static void world_close(struct world *w)
{
    munmap(w->res, sizeof *w->res);
    close(w->cfd);
    close(w->pfd);
    seg_close(&w->s);
}

/* Attaches the producer's or the consumer's end; peer is the other end's bell. */
static int end_attach(struct end *e, const struct seg *s, const struct world *w, bool producer)
{
    int rc;
    if ((rc = bell_attach(&e->cb, seg_bell(s, 0), w->cfd)) < 0 ||
        (rc = bell_attach(&e->pb, seg_bell(s, 1), w->pfd)) < 0)
        return rc;
    return ring_attach(&e->r, seg_ring(s, 0), producer ? &e->cb : &e->pb, N_KINDS - 1);
}

/* A child maps the inherited segment as c2s or the router would, then attaches. */
static void child_attach(struct end *e, const struct world *w, bool producer)
{
    static struct seg cs; /* lives as long as the child */
    if (seg_map(&cs, w->s.fd, &w->l) < 0 || end_attach(e, &cs, w, producer) < 0)
        _exit(2);
}

/* Forks a consumer of k; it counts into w->res, and checks nothing follows the end. */
static pid_t spawn_consumer(struct world *w, const struct cfg *k)
{
    pid_t parent = getpid();
    fflush(stdout); /* nothing buffered that the child could print again */
    pid_t pid = fork();
    if (pid == 0) {
        struct end e;
        struct ring_frame f;
        child_attach(&e, w, false);
        w->res->received = consume(k, &e.r, &e.cb, w->res, parent);
        /* The producer has published everything by now, or will publish no more: nothing
         * may follow the last frame, now or a moment later. */
        if (ring_peek(&e.r, &f) != 0)
            w->res->extra++;
        nap();
        if (ring_peek(&e.r, &f) != 0)
            w->res->extra++;
        _exit(0);
    }
    return pid;
}

/* Forks a producer of k that runs until its frames are sent or it is killed. */
static pid_t spawn_producer(struct world *w, const struct cfg *k)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct end e;
        struct stats st = {0};
        child_attach(&e, w, true);
        produce(k, &e.r, &e.pb, 0, &st);
        _exit(0);
    }
    return pid;
}

static void check_results(const struct results *res)
{
    CHECK_INT(res->bad_seq, ==, 0);
    CHECK_INT(res->bad_len, ==, 0);
    CHECK_INT(res->bad_kind, ==, 0);
    CHECK_INT(res->bad_sum, ==, 0);
    CHECK_INT(res->bad_msg, ==, 0);
    CHECK_INT(res->extra, ==, 0);
    CHECK_INT(res->timeouts, ==, 0);
}

/* The parent produces, a child consumes, k->frames of them. */
static void run(const struct cfg *k)
{
    struct world w;
    struct end e;
    struct stats st = {0};
    int status = -1;
    CHECK_INT(world_open(&w, k->ring_size), ==, 0);
    double t0 = now();
    pid_t pid = spawn_consumer(&w, k);
    CHECK_INT(pid, >, 0);
    CHECK_INT(end_attach(&e, &w.s, &w, true), ==, 0);
    uint64_t sent = produce(k, &e.r, &e.pb, pid, &st);
    if (sent < k->frames)
        kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    double secs = now() - t0;

    const struct results *res = w.res;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(sent, ==, k->frames);
    CHECK_INT(res->received, ==, k->frames);
    check_results(res);
    /* Both doorbells were really used, and never missed. */
    CHECK_INT(res->sleeps, >, 0);
    CHECK_INT(res->woken, >, 0);
    CHECK_INT(st.waits, >, 0);
    CHECK_INT(st.woken, >, 0);
    CHECK_INT(st.timeouts, ==, 0);
    printf("stress %s: %llu frames in %.2f s (%.1f M/s); consumer slept %llu, woken %llu; "
           "producer found the ring full %llu times, waited %llu, woken %llu; "
           "rings sent: %llu to the consumer, %llu to the producer\n",
           k->name, (unsigned long long)res->received, secs, (double)res->received / secs / 1e6,
           (unsigned long long)res->sleeps, (unsigned long long)res->woken,
           (unsigned long long)st.full, (unsigned long long)st.waits, (unsigned long long)st.woken,
           (unsigned long long)st.rings_sent, (unsigned long long)res->rings_sent);
    world_close(&w);
}

static uint64_t n_frames;

/* The main run: batches of 32, a consumer that spins briefly before it sleeps. */
static void test_batched(void)
{
    struct cfg k = {"batched", n_frames, 64 * 1024, 32, 200, 16, SEED};
    run(&k);
}

/* Every frame published and released on its own, and a consumer that sleeps as soon as the
 * ring is empty: the most doorbell handshakes per frame, where a lost wake-up would show. */
static void test_unbatched(void)
{
    struct cfg k = {"unbatched", n_frames / 20 + 1000, 64 * 1024, 1, 0, 12, SEED};
    run(&k);
}

#define RESET_ROUNDS 8

/* The producer dies (SIGKILL, wherever it is); the consumer survives. It drains what was
 * published, which must be whole, resets, and the replacement's new sequence follows. */
static void test_producer_killed(void)
{
    struct world w;
    struct end e;
    uint64_t drained = 0;
    CHECK_INT(world_open(&w, 64 * 1024), ==, 0);
    CHECK_INT(end_attach(&e, &w.s, &w, false), ==, 0);
    for (unsigned round = 0; round < RESET_ROUNDS; round++) {
        struct cfg k = {"killed producer", UINT64_MAX, 64 * 1024, 32, 0, 63, SEED + round + 1};
        bell_format(seg_bell(&w.s, 1)); /* the supervisor's part: the dead one's bell */
        memset(w.res, 0, sizeof *w.res);
        pid_t pid = spawn_producer(&w, &k);
        CHECK_INT(pid, >, 0);
        struct cfg until = k;
        until.frames = 1000 + mix(k.seed) % 50000;
        uint64_t seq = consume(&until, &e.r, &e.cb, w.res, getppid());
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* Everything below head is whole, however the producer was interrupted. */
        struct ring_frame f;
        int rc;
        uint64_t got = seq;
        while ((rc = ring_peek(&e.r, &f)) == 1) {
            check_frame(&f, seq++, k.seed, w.res);
            ring_consume(&e.r);
        }
        CHECK_INT(rc, ==, 0);
        CHECK_INT(got, ==, until.frames);
        drained += seq - got;
        check_results(w.res);
        ring_reset(&e.r);
    }
    CHECK_INT(drained, >, 0); /* the producer was ahead: some frames outlived it */
    world_close(&w);
}

/* The consumer dies; the producer survives, resets, and the replacement sees only frames
 * made after the reset, from the first one on. */
static void test_consumer_killed(void)
{
    struct world w;
    struct end e;
    CHECK_INT(world_open(&w, 64 * 1024), ==, 0);
    CHECK_INT(end_attach(&e, &w.s, &w, true), ==, 0);
    for (unsigned round = 0; round < RESET_ROUNDS; round++) {
        struct cfg k = {"killed consumer", UINT64_MAX, 64 * 1024, 32, 0, 63, SEED + 100 + round};
        bell_format(seg_bell(&w.s, 0));
        memset(w.res, 0, sizeof *w.res);
        pid_t pid = spawn_consumer(&w, &k);
        CHECK_INT(pid, >, 0);
        struct cfg until = k;
        struct stats st = {0};
        until.frames = 1000 + mix(k.seed) % 50000;
        CHECK_INT(produce(&until, &e.r, &e.pb, pid, &st), ==, until.frames);
        kill(pid, SIGKILL); /* with frames unread, probably, and maybe asleep */
        waitpid(pid, NULL, 0);
        uint64_t progress = atomic_load_explicit(&w.res->progress, memory_order_relaxed);
        CHECK_INT(progress, >, 0);
        CHECK_INT(progress, <=, until.frames);
        check_results(w.res);
        CHECK_INT(st.timeouts, ==, 0);
        ring_reset(&e.r);
    }
    world_close(&w);
}

int main(void)
{
    n_frames = frames_from_env();
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)mix(SEED + i);
    RUN(test_batched);
    RUN(test_unbatched);
    RUN(test_producer_killed);
    RUN(test_consumer_killed);
    return test_done("stress");
}
