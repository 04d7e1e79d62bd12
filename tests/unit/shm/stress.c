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
};

/* Written by the child, read by the parent after waitpid(), which orders them. */
struct results {
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

/* ---- consumer (child) ---- */

static void consume(const struct cfg *k, struct ring *c, const struct bell *me, struct results *res,
                    pid_t parent)
{
    uint64_t seq = 0;
    unsigned batch = 0;
    while (seq < k->frames) {
        struct ring_frame f;
        int rc = ring_peek(c, &f);
        if (rc == 1) {
            uint64_t h = mix(SEED ^ seq);
            const unsigned char *p = f.payload;
            uint32_t got_seq = 0, got_sum = 0;
            if (f.len >= 8) {
                memcpy(&got_seq, p, 4);
                memcpy(&got_sum, p + 4, 4);
            }
            if (f.len != frame_len(h))
                res->bad_len++;
            else if ((uint32_t)XXH3_64bits_withSeed(p + 8, f.len - 8, seq) != got_sum)
                res->bad_sum++;
            if (got_seq != (uint32_t)seq)
                res->bad_seq++;
            if (f.kind != frame_kind(h))
                res->bad_kind++;
            ring_consume(c);
            seq++;
            if (++batch >= k->batch) {
                batch = 0;
                if (ring_release(c) && bell_ring(c->peer) == 0)
                    res->rings_sent++;
            }
            if (pause_here(h, k->pause_lg2, 0)) {
                /* Stall with frames in hand: the producer fills the ring and waits. */
                if (ring_release(c) && bell_ring(c->peer) == 0)
                    res->rings_sent++;
                nap();
            }
            continue;
        }
        if (rc < 0) {
            res->bad_msg++;
            break;
        }
        batch = 0;
        if (ring_release(c) && bell_ring(c->peer) == 0)
            res->rings_sent++;
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
    res->received = seq;
    /* Nothing beyond the last frame. The producer has published all of it by now or will
     * not publish more: check once more after a pause. */
    struct ring_frame f;
    if (ring_peek(c, &f) != 0)
        res->extra++;
    nap();
    if (ring_peek(c, &f) != 0)
        res->extra++;
    ring_release(c);
}

/* ---- producer (parent) ---- */

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
        uint64_t h = mix(SEED ^ seq);
        uint32_t len = frame_len(h);
        void *v;
        int rc = ring_reserve(p, len, frame_kind(h), 0, &v);
        if (rc == 0) {
            unsigned char *b = v;
            uint32_t s32 = (uint32_t)seq;
            memcpy(b + 8, pattern + (h >> 20) % PATTERN, len - 8);
            uint32_t sum = (uint32_t)XXH3_64bits_withSeed(b + 8, len - 8, seq);
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
            if (waitpid(child, NULL, WNOHANG) != 0) {
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

static void run(const struct cfg *k)
{
    struct seg_layout l;
    struct seg s;
    int rc;
    /* Ring 0; bell 0 is the consumer's, bell 1 the producer's. */
    CHECK_INT(seg_plan(&l, 1, 2, k->ring_size, 1024), ==, 0);
    rc = seg_create(&s, "starling-stress", &l);
    CHECK_INT(rc, ==, 0);
    if (rc < 0)
        return;
    int cfd = bell_eventfd(), pfd = bell_eventfd();
    struct results *res =
        mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(cfd >= 0 && pfd >= 0 && res != MAP_FAILED);
    if (cfd < 0 || pfd < 0 || res == MAP_FAILED)
        return;
    memset(res, 0, sizeof *res);

    fflush(stdout); /* nothing buffered that the child could print again */
    double t0 = now();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The child maps the inherited fd as c2s or router would. */
        struct seg cs;
        struct bell cb, pb;
        struct ring c;
        if (seg_map(&cs, s.fd, &l) < 0 || bell_attach(&cb, seg_bell(&cs, 0), cfd) < 0 ||
            bell_attach(&pb, seg_bell(&cs, 1), pfd) < 0 ||
            ring_attach(&c, seg_ring(&cs, 0), &pb, N_KINDS - 1) < 0)
            _exit(2);
        consume(k, &c, &cb, res, parent);
        _exit(0);
    }
    CHECK_INT(pid, >, 0);
    if (pid < 0)
        return;
    struct bell cb, pb;
    struct ring p;
    struct stats st = {0};
    CHECK_INT(bell_attach(&cb, seg_bell(&s, 0), cfd), ==, 0);
    CHECK_INT(bell_attach(&pb, seg_bell(&s, 1), pfd), ==, 0);
    CHECK_INT(ring_attach(&p, seg_ring(&s, 0), &cb, N_KINDS - 1), ==, 0);
    uint64_t sent = produce(k, &p, &pb, pid, &st);
    if (sent < k->frames)
        kill(pid, SIGKILL);
    int status = -1;
    waitpid(pid, &status, 0);
    double secs = now() - t0;

    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(sent, ==, k->frames);
    CHECK_INT(res->received, ==, k->frames);
    CHECK_INT(res->bad_seq, ==, 0);
    CHECK_INT(res->bad_len, ==, 0);
    CHECK_INT(res->bad_kind, ==, 0);
    CHECK_INT(res->bad_sum, ==, 0);
    CHECK_INT(res->bad_msg, ==, 0);
    CHECK_INT(res->extra, ==, 0);
    /* Both doorbells were really used, and never missed. */
    CHECK_INT(res->sleeps, >, 0);
    CHECK_INT(res->woken, >, 0);
    CHECK_INT(st.waits, >, 0);
    CHECK_INT(st.woken, >, 0);
    CHECK_INT(res->timeouts, ==, 0);
    CHECK_INT(st.timeouts, ==, 0);
    printf("stress %s: %llu frames in %.2f s (%.1f M/s); consumer slept %llu, woken %llu; "
           "producer found the ring full %llu times, waited %llu, woken %llu; "
           "rings sent: %llu to the consumer, %llu to the producer\n",
           k->name, (unsigned long long)res->received, secs, (double)res->received / secs / 1e6,
           (unsigned long long)res->sleeps, (unsigned long long)res->woken,
           (unsigned long long)st.full, (unsigned long long)st.waits, (unsigned long long)st.woken,
           (unsigned long long)st.rings_sent, (unsigned long long)res->rings_sent);

    munmap(res, sizeof *res);
    close(cfd);
    close(pfd);
    seg_close(&s);
}

static uint64_t n_frames;

/* The main run: batches of 32, a consumer that spins briefly before it sleeps. */
static void test_batched(void)
{
    struct cfg k = {"batched", n_frames, 64 * 1024, 32, 200, 16};
    run(&k);
}

/* Every frame published and released on its own, and a consumer that sleeps as soon as the
 * ring is empty: the most doorbell handshakes per frame, where a lost wake-up would show. */
static void test_unbatched(void)
{
    struct cfg k = {"unbatched", n_frames / 20 + 1000, 64 * 1024, 1, 0, 12};
    run(&k);
}

int main(void)
{
    n_frames = frames_from_env();
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)mix(SEED + i);
    RUN(test_batched);
    RUN(test_unbatched);
    return test_done("stress");
}
