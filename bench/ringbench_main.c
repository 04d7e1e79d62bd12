/*
 * ringbench: throughput of one shared-memory ring (shm/ring.h) between two processes, as
 * between a c2s thread and a router shard. The parent creates the segment and eventfds and
 * forks, as the supervisor does; the parent produces, the child consumes, each pinned to its
 * own CPU.
 *
 * Producer: reserve, copy the payload in (as c2s copies a stanza), commit; publish every
 * `batch` frames and when the ring is full; on a full ring it waits on its bell.
 * Consumer: peek, check the sequence number, copy the payload out (as the router copies a
 * stanza on to its destination; -t only touches its first and last bytes), consume; release
 * every `batch` frames and when the ring is empty; when empty, it polls a little, then sleeps
 * on its bell. Frame size counts the 8-byte header.
 *
 * Reported per frame size (best of R runs by throughput): frames/s, ns/frame, MB/s of frames,
 * how often each side slept and was woken, the eventfd writes, and the voluntary context
 * switches the kernel counted for both processes.
 *
 * usage: ringbench [-n frames] [-s size[,size...]] [-r ring KiB] [-b batch] [-R runs] [-t]
 */
#include "shm/ring.h"
#include "shm/seg.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPIN     2000 /* empty polls before the consumer sleeps */
#define MAX_SIZE 65536

struct opts {
    uint64_t frames;
    uint32_t ring_kib;
    unsigned batch, runs;
    bool touch_only;
};

/* Filled by the two processes; read by the parent after waitpid(). */
struct shared {
    _Atomic int go; /* the child is attached; the parent starts the clock */
    double t_end;   /* consumer: when the last frame was consumed */
    uint64_t bad;   /* consumer: frames out of order */
    uint64_t sleeps, woken, rings, nvcsw;
};

struct side {
    uint64_t sleeps, woken, rings;
};

struct result {
    double secs;
    struct side prod, cons;
    uint64_t nvcsw;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0)
        perror("sched_setaffinity (running unpinned)");
}

static uint64_t nvcsw(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_nvcsw;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "ringbench: %s: %s\n", what, strerror(-rc));
    exit(1);
}

static void consume(const struct opts *o, uint32_t size, struct ring *c, const struct bell *me,
                    struct shared *sh)
{
    static unsigned char out[MAX_SIZE];
    struct side st = {0};
    uint64_t seq = 0, bad = 0;
    uint64_t cs0 = nvcsw();
    unsigned batch = 0;
    while (seq < o->frames) {
        struct ring_frame f;
        int rc = ring_peek(c, &f);
        if (rc == 1) {
            uint64_t got;
            memcpy(&got, f.payload, sizeof got);
            if (o->touch_only)
                out[0] ^= ((const unsigned char *)f.payload)[f.len - 1];
            else
                memcpy(out, f.payload, f.len);
            bad += got != seq || f.len != size - 8;
            ring_consume(c);
            seq++;
            if (++batch >= o->batch) {
                batch = 0;
                if (ring_release(c) && bell_ring(c->peer) == 0)
                    st.rings++;
            }
            continue;
        }
        if (rc < 0)
            die("ring_peek", rc);
        batch = 0;
        if (ring_release(c) && bell_ring(c->peer) == 0)
            st.rings++;
        bool found = false;
        for (unsigned i = 0; i < SPIN && !found; i++) {
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
        st.sleeps++;
        if (bell_wait(me, -1) == 1)
            st.woken++;
    }
    sh->t_end = now();
    ring_release(c);
    sh->bad = bad + (out[0] == 0x5a && out[1] == 0xa5); /* keeps `out` alive */
    sh->sleeps = st.sleeps;
    sh->woken = st.woken;
    sh->rings = st.rings;
    sh->nvcsw = nvcsw() - cs0;
}

static void produce(const struct opts *o, uint32_t size, struct ring *p, const struct bell *me,
                    struct side *st)
{
    static unsigned char in[MAX_SIZE];
    memset(in, 'x', sizeof in);
    uint32_t len = size - 8;
    unsigned batch = 0;
    for (uint64_t seq = 0; seq < o->frames;) {
        void *v;
        int rc = ring_reserve(p, len, 1, 0, &v);
        if (rc == 0) {
            memcpy(v, in, len);
            memcpy(v, &seq, sizeof seq);
            ring_commit(p);
            seq++;
            if (++batch >= o->batch) {
                batch = 0;
                if (ring_publish(p) && bell_ring(p->peer) == 0)
                    st->rings++;
            }
            continue;
        }
        if (rc != -ENOBUFS)
            die("ring_reserve", rc);
        batch = 0;
        if (ring_publish(p) && bell_ring(p->peer) == 0)
            st->rings++;
        rc = ring_wait_prepare(p);
        if (rc < 0)
            die("ring_wait_prepare", rc);
        if (rc == 1) {
            st->sleeps++;
            if (bell_wait(me, -1) == 1)
                st->woken++;
        }
    }
    if (ring_publish(p) && bell_ring(p->peer) == 0)
        st->rings++;
}

static struct result run(const struct opts *o, uint32_t size)
{
    struct seg_layout l;
    struct seg s;
    struct result r = {0};
    int rc = seg_plan(&l, 1, 2, 0, o->ring_kib * 1024, size > 4096 ? size : 4096);
    if (rc < 0)
        die("seg_plan", rc);
    if ((rc = seg_create(&s, "ringbench", &l)) < 0)
        die("seg_create", rc);
    int cfd = bell_eventfd(), pfd = bell_eventfd();
    if (cfd < 0 || pfd < 0)
        die("eventfd", cfd < 0 ? cfd : pfd);
    struct shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap", -errno);
    memset(sh, 0, sizeof *sh);

    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", -errno);
    if (pid == 0) {
        struct seg cs;
        struct bell cb, pb;
        struct ring c;
        pin(1);
        if ((rc = seg_map(&cs, s.fd, &l)) < 0 ||
            (rc = bell_attach(&cb, seg_bell(&cs, 0), cfd)) < 0 ||
            (rc = bell_attach(&pb, seg_bell(&cs, 1), pfd)) < 0 ||
            (rc = ring_attach(&c, seg_ring(&cs, 0), &pb, 1)) < 0)
            die("child attach", rc);
        atomic_store_explicit(&sh->go, 1, memory_order_release);
        consume(o, size, &c, &cb, sh);
        _exit(0);
    }
    pin(0);
    struct bell cb, pb;
    struct ring p;
    if ((rc = bell_attach(&cb, seg_bell(&s, 0), cfd)) < 0 ||
        (rc = bell_attach(&pb, seg_bell(&s, 1), pfd)) < 0 ||
        (rc = ring_attach(&p, seg_ring(&s, 0), &cb, 1)) < 0)
        die("attach", rc);
    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        sched_yield();
    uint64_t cs0 = nvcsw();
    double t0 = now();
    produce(o, size, &p, &pb, &r.prod);
    uint64_t cs1 = nvcsw();
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sh->bad) {
        fprintf(stderr, "ringbench: consumer failed (status %d, %llu bad frames)\n", status,
                (unsigned long long)sh->bad);
        exit(1);
    }
    r.secs = sh->t_end - t0;
    r.cons = (struct side){sh->sleeps, sh->woken, sh->rings};
    r.nvcsw = (cs1 - cs0) + sh->nvcsw;
    munmap(sh, sizeof *sh);
    close(cfd);
    close(pfd);
    seg_close(&s);
    return r;
}

int main(int argc, char **argv)
{
    struct opts o = {.frames = 20000000, .ring_kib = 256, .batch = 64, .runs = 5};
    char sizes_arg[256] = "64,200,1024";
    int opt;
    while ((opt = getopt(argc, argv, "n:s:r:b:R:t")) != -1) {
        switch (opt) {
        case 'n':
            o.frames = strtoull(optarg, NULL, 10);
            break;
        case 's':
            snprintf(sizes_arg, sizeof sizes_arg, "%s", optarg);
            break;
        case 'r':
            o.ring_kib = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'b':
            o.batch = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'R':
            o.runs = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            o.touch_only = true;
            break;
        default:
            fprintf(stderr, "usage: ringbench [-n frames] [-s size,...] [-r ring KiB] [-b batch] "
                            "[-R runs] [-t]\n");
            return 2;
        }
    }
    if (!o.frames || !o.batch || !o.runs || !ring_footprint(o.ring_kib * 1024)) {
        fprintf(stderr, "ringbench: bad -n, -b, -R or -r (a power of two, KiB)\n");
        return 2;
    }
    printf("ringbench: one ring of %u KiB between two processes (CPU 0 -> CPU 1), publish and "
           "release every %u frames, consumer %s, %llu frames per run, best of %u\n",
           o.ring_kib, o.batch, o.touch_only ? "touches each payload" : "copies each payload out",
           (unsigned long long)o.frames, o.runs);
    printf("%6s %10s %9s %9s | %13s %13s | %13s %13s | %9s\n", "frame", "Mframes/s", "ns/frame",
           "MB/s", "cons sleeps", "prod waits", "rings->cons", "rings->prod", "ctx sw");
    for (char *tok = strtok(sizes_arg, ","); tok; tok = strtok(NULL, ",")) {
        uint32_t size = (uint32_t)strtoul(tok, NULL, 10);
        if (size < 16 || size > MAX_SIZE || size % 8 || size > o.ring_kib * 512) {
            fprintf(stderr,
                    "ringbench: frame size %s: a multiple of 8 in [16, %u] and at "
                    "most half the ring\n",
                    tok, MAX_SIZE);
            return 2;
        }
        struct result best = {0};
        for (unsigned i = 0; i < o.runs; i++) {
            struct result r = run(&o, size);
            if (!best.secs || r.secs < best.secs)
                best = r;
        }
        double fps = (double)o.frames / best.secs;
        printf("%6u %10.2f %9.2f %9.0f | %13llu %13llu | %13llu %13llu | %9llu\n", size, fps / 1e6,
               1e9 / fps, fps * size / 1e6, (unsigned long long)best.cons.sleeps,
               (unsigned long long)best.prod.sleeps, (unsigned long long)best.prod.rings,
               (unsigned long long)best.cons.rings, (unsigned long long)best.nvcsw);
    }
    return 0;
}
