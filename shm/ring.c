#include "shm/ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static inline uint32_t align8(uint32_t n)
{
    return (n + (SHM_FRAME_ALIGN - 1)) & ~(SHM_FRAME_ALIGN - 1);
}

size_t ring_footprint(uint32_t data_size)
{
    if (data_size < RING_MIN_DATA || data_size > RING_MAX_DATA || (data_size & (data_size - 1)))
        return 0;
    return sizeof(struct shm_ring) + data_size;
}

uint64_t ring_occupancy(const void *mem)
{
    const struct shm_ring *sh = mem;
    if (sh->magic != SHM_RING_MAGIC || sh->version != SHM_RING_VERSION)
        return 0;
    /* tail first: head only grows and never passes tail + data_size, so a head loaded
     * later is at least the tail loaded before; no ordering with either end is needed. */
    uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&sh->head, memory_order_relaxed);
    uint64_t used = head - tail;
    return used > sh->data_size ? sh->data_size : used;
}

int ring_format(void *mem, uint32_t data_size, uint32_t max_frame)
{
    struct shm_ring *sh = mem;
    if (!ring_footprint(data_size) || max_frame < RING_MIN_FRAME || max_frame > data_size / 2 ||
        (uintptr_t)mem % SHM_SLOT)
        return -EINVAL;
    memset(sh, 0, sizeof *sh);
    sh->magic = SHM_RING_MAGIC;
    sh->version = SHM_RING_VERSION;
    sh->hdr_size = sizeof *sh;
    sh->data_size = data_size;
    sh->max_frame = max_frame;
    /* Relaxed: nobody is attached yet; the fork (or the supervisor's hand-over) that lets
     * the others map the segment orders these stores before their ring_attach(). */
    atomic_store_explicit(&sh->head, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->wake_tail, SHM_NO_WAKE, memory_order_relaxed);
    return 0;
}

/* Starts both ends' local state at the shared indices; each end then uses its half. */
static void ring_local_init(struct ring *r, uint64_t head, uint64_t tail)
{
    r->head = r->resv = r->pub = head;
    r->tail_seen = tail;
    r->want = 0;
    /* What a fresh ring holds was never touched; after a restart of the other end it may
     * have been, and stays until frames pass again: memory, not correctness. */
    r->quiet_pub = r->trimmed = head;
    /* head_seen = tail: the consumer's first ring_peek() loads and validates head. */
    r->tail = r->next = r->rel = r->head_seen = tail;
}

int ring_attach(struct ring *r, void *mem, const struct bell *peer, uint16_t max_kind)
{
    struct shm_ring *sh = mem;
    if (max_kind >= SHM_KIND_PAD || (uintptr_t)mem % SHM_SLOT)
        return -EINVAL;
    if (sh->magic != SHM_RING_MAGIC || sh->version != SHM_RING_VERSION ||
        sh->hdr_size != sizeof *sh)
        return -EPROTO;
    uint32_t size = sh->data_size, max_frame = sh->max_frame;
    if (!ring_footprint(size) || max_frame < RING_MIN_FRAME || max_frame > size / 2)
        return -EBADMSG;
    /* Acquire: pairs with the store-release of head in ring_publish() (or ring_reset()) and
     * of tail in ring_release(), should the other end be running already. Head first: one
     * of the two is ours and still, the other only moves towards it, so the check below
     * cannot fail on a healthy ring whatever the timing. */
    uint64_t head = atomic_load_explicit(&sh->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
    if ((head | tail) % SHM_FRAME_ALIGN || head - tail > size)
        return -EBADMSG;
    r->sh = sh;
    r->data = sh->data;
    r->peer = peer;
    r->mask = size - 1;
    r->size = size;
    r->max_frame = max_frame;
    r->max_kind = max_kind;
    ring_local_init(r, head, tail);
    return 0;
}

/* ---- producer ---------------------------------------------------------------------------- */

/* Loads the consumer's tail and checks it: it can only have moved forward from what we saw,
 * and not past what we published. One unsigned comparison covers both directions. */
static int ring_load_tail(struct ring *r)
{
    /* Acquire: pairs with the store-release of tail in ring_release(), so the consumer's
     * reads of the frames below tail happen before we overwrite them. */
    uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
    if (t - r->tail_seen > r->pub - r->tail_seen)
        return -EBADMSG;
    r->tail_seen = t;
    return 0;
}

int ring_reserve(struct ring *r, uint32_t len, uint16_t kind, uint16_t flags, void **payload)
{
    if (len > ring_max_payload(r))
        return -EMSGSIZE;
    if (kind > r->max_kind)
        return -EINVAL;
    uint32_t flen = len + (uint32_t)sizeof(struct shm_frame);
    uint32_t need = align8(flen);
    uint64_t pos = r->head;
    uint32_t off = (uint32_t)(pos & r->mask);
    uint32_t room = r->size - off; /* bytes to the end of the data area, a multiple of 8 */
    /* A frame that does not fit before the end costs the rest of the area as a pad. */
    uint32_t total = need <= room ? need : room + need;

    /* The cached tail is a lower bound of the real one: only when it says "full" is the
     * shared line worth reading. */
    if (pos + total - r->tail_seen > r->size) {
        if (ring_load_tail(r) < 0)
            return -EBADMSG;
        if (pos + total - r->tail_seen > r->size) {
            r->want = total;
            return -ENOBUFS;
        }
    }

    unsigned char *p = r->data + off;
    if (need > room) {
        struct shm_frame *pad = (struct shm_frame *)p;
        pad->len = room;
        pad->kind = SHM_KIND_PAD;
        pad->flags = 0;
        pos += room;
        p = r->data;
    }
    struct shm_frame *h = (struct shm_frame *)p;
    h->len = flen;
    h->kind = kind;
    h->flags = flags;
    r->resv = pos + need;
    *payload = h + 1;
    return 0;
}

bool ring_publish(struct ring *r)
{
    if (r->head == r->pub)
        return false;
    r->pub = r->head;
    /* Release: pairs with the load-acquire of head in ring_peek() / ring_empty(): every
     * frame of the batch, headers and payloads, is visible before the consumer sees head. */
    atomic_store_explicit(&r->sh->head, r->pub, memory_order_release);
    if (!r->peer)
        return false;
    /* Dekker: pairs with the seq_cst fence in bell_prepare_sleep(). Orders the store of head
     * before the load of the consumer's sleeping flag; without it the load could pass the
     * store (x86 store buffer) and both sides would miss each other. */
    atomic_thread_fence(memory_order_seq_cst);
    return bell_claim(r->peer);
}

int ring_wait_prepare(struct ring *r)
{
    if (r->head != r->pub)
        return -EBUSY;
    uint64_t want = r->want > r->size / 2 ? r->want : r->size / 2;
    if (r->head + want <= r->size)
        return 0; /* fewer than size - want bytes ever written: want is free */
    uint64_t at = r->head + want - r->size; /* the tail at which want bytes are free */
    if (r->tail_seen >= at)
        return 0;
    atomic_store_explicit(&r->sh->wake_tail, at, memory_order_relaxed);
    /* Dekker: pairs with the seq_cst fence in ring_release(). Orders the store of wake_tail
     * before the re-load of tail: either we see the consumer's tail, or it sees wake_tail. */
    atomic_thread_fence(memory_order_seq_cst);
    int rc = ring_load_tail(r);
    if (rc == 0 && r->tail_seen < at)
        return 1;
    /* Disarm. If the consumer disarmed first, it rings us once for nothing: harmless. */
    atomic_store_explicit(&r->sh->wake_tail, SHM_NO_WAKE, memory_order_relaxed);
    return rc;
}

int ring_trim(struct ring *r)
{
    bool quiet = r->pub == r->quiet_pub;
    r->quiet_pub = r->pub;
    if (!quiet || r->resv != r->pub || ring_trimmed(r))
        return 0;
    /* The load-acquire of tail pairs with the store-release in ring_release(): once every
     * published frame is released, the consumer's reads of them are over before the pages
     * go. It reads nothing more until head moves, and only the producer (us) moves it. */
    if (ring_load_tail(r) < 0)
        return -EBADMSG;
    if (r->tail_seen != r->pub)
        return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)r->data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)r->data + r->size) & ~(page - 1);
    /* MADV_REMOVE punches the hole in the shared file; private memory refuses it with
     * EINVAL, and there MADV_DONTNEED frees the pages. */
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_REMOVE) < 0 &&
        (errno != EINVAL || madvise((void *)lo, hi - lo, MADV_DONTNEED) < 0))
        return -errno;
    r->trimmed = r->pub;
    return 1;
}

/* ---- consumer ---------------------------------------------------------------------------- */

int ring_peek(struct ring *r, struct ring_frame *f)
{
    for (;;) {
        uint64_t pos = r->tail;
        if (pos == r->head_seen) {
            /* Acquire: pairs with the store-release of head in ring_publish(): the frames
             * below head are complete before we read them. */
            uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
            if (h == pos)
                return 0;
            /* Forward, by at most the data area, 8-aligned; else the producer is broken. */
            if (h - pos > r->size || h % SHM_FRAME_ALIGN)
                return -EBADMSG;
            r->head_seen = h;
        }
        uint32_t off = (uint32_t)(pos & r->mask);
        uint32_t room = r->size - off;
        uint64_t avail = r->head_seen - pos; /* published bytes from pos, >= 8 */
        /* One copy of the header: the producer's process could rewrite it while we check
         * it, and only what we checked may be used. */
        struct shm_frame h;
        memcpy(&h, r->data + off, sizeof h);
        if (h.kind == SHM_KIND_PAD) {
            if (h.len != room || room > avail)
                return -EBADMSG;
            r->tail = pos + room;
            continue;
        }
        if (h.len < sizeof h || h.len > r->max_frame || h.kind > r->max_kind)
            return -EBADMSG;
        uint32_t step = align8(h.len); /* no overflow: len <= max_frame <= 2^29 */
        if (step > avail || step > room)
            return -EBADMSG;
        r->next = pos + step;
        f->payload = r->data + off + sizeof h;
        f->len = h.len - (uint32_t)sizeof h;
        f->kind = h.kind;
        f->flags = h.flags;
        return 1;
    }
}

bool ring_release(struct ring *r)
{
    return ring_release_to(r, r->tail);
}

bool ring_release_to(struct ring *r, uint64_t pos)
{
    if (pos == r->rel || pos - r->rel > r->tail - r->rel)
        return false; /* nothing new, or not between what was released and what was read */
    r->rel = pos;
    /* Release: pairs with the load-acquire of tail in ring_reserve() / ring_wait_prepare():
     * our reads of the consumed frames happen before the producer reuses their bytes. */
    atomic_store_explicit(&r->sh->tail, r->rel, memory_order_release);
    /* Dekker: pairs with the seq_cst fence in ring_wait_prepare(). Orders the store of tail
     * before the load of wake_tail. */
    atomic_thread_fence(memory_order_seq_cst);
    /* Relaxed: wake_tail only decides who rings; the space itself travels through tail.
     * The plain load keeps the line shared while nobody waits (the usual case). */
    if (r->rel < atomic_load_explicit(&r->sh->wake_tail, memory_order_relaxed))
        return false;
    /* The exchange makes exactly one of us and a disarming producer act. If the producer
     * had disarmed and re-armed further away meanwhile, it gets one early wake-up and
     * re-arms: harmless. */
    return atomic_exchange_explicit(&r->sh->wake_tail, SHM_NO_WAKE, memory_order_relaxed) !=
           SHM_NO_WAKE;
}

bool ring_empty(struct ring *r)
{
    /* Acquire: pairs with the store-release of head in ring_publish(). */
    return atomic_load_explicit(&r->sh->head, memory_order_acquire) == r->tail;
}

/* ---- either end -------------------------------------------------------------------------- */

void ring_reset(struct ring *r)
{
    struct shm_ring *sh = r->sh;
    /* The other end is dead and its replacement not yet started: nobody races with these
     * stores. Relaxed for the first two; the release on head pairs with the load-acquire of
     * head in the replacement's ring_attach(), though what really orders the reset before
     * that attach is the survivor-to-supervisor-to-replacement hand-over. */
    atomic_store_explicit(&sh->wake_tail, SHM_NO_WAKE, memory_order_relaxed);
    atomic_store_explicit(&sh->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->head, 0, memory_order_release);
    ring_local_init(r, 0, 0);
}

int ring_unreleased(struct ring *r, int (*fn)(void *arg, const struct ring_frame *f), void *arg)
{
    /* Acquire: pairs with the dead consumer's store-release of tail, like ring_load_tail();
     * it only ever moved forward from what we saw, and never past what we published. */
    uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
    if (t - r->tail_seen > r->pub - r->tail_seen || t % SHM_FRAME_ALIGN)
        return -EBADMSG;
    /* Our own frames, read with the consumer's code: a view that has seen head already, so
     * it never loads the shared one (which lags behind frames committed, not published). */
    struct ring v = *r;
    v.tail = v.next = t;
    v.head_seen = r->head;
    while (v.tail != r->head) {
        struct ring_frame f;
        int rc = ring_peek(&v, &f);
        if (rc != 1)
            return -EBADMSG;
        ring_consume(&v);
        if ((rc = fn(arg, &f)) != 0)
            return rc;
    }
    return 0;
}
