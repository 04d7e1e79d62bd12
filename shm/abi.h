/*
 * abi.h: the layouts that live in shared memory, and nothing else. Every process that
 * maps a segment (supervisor, c2s, s2s, router) compiles against this header, and a
 * process built from a different revision must refuse a segment it does not understand:
 * that is what the magics and versions are for. Bump the version of a struct whenever its
 * size, an offset or the meaning of a field changes; the _Static_asserts below pin the
 * layout so that a change cannot happen by accident.
 *
 * Byte order and alignment are the host's: a segment never leaves the machine.
 *
 * The code that reads and writes these layouts is in ring.h (struct shm_ring, struct
 * shm_frame), bell.h (struct shm_bell), stats.h (struct shm_stats) and seg.h (struct
 * shm_seg). Nothing else touches them directly, except tests that corrupt them on purpose.
 *
 * Fields written at run time by two processes are C11 atomics. They must be lock-free
 * (a lock inside a shared mapping would not be address-free), hence the asserts on
 * ATOMIC_LLONG_LOCK_FREE and ATOMIC_INT_LOCK_FREE.
 *
 * Every field that one side writes often gets a slot of SHM_SLOT = 128 bytes: its own
 * 64-byte cache line plus a guard line, because the adjacent-line prefetchers of x86 cores
 * fetch lines in pairs and would otherwise make the producer's and the consumer's lines
 * false-share.
 */
#ifndef STARLING_SHM_ABI_H
#define STARLING_SHM_ABI_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHM_SLOT 128

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to live in shm");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to live in shm");

/* ---- a frame ------------------------------------------------------------------------------
 *
 *   data + (pos & mask), pos a multiple of 8
 *   +-----------+-----------+-----------+--------------------------+--------------+
 *   | len  u32  | kind  u16 | flags u16 | payload: len - 8 bytes   | 0..7 unused  |
 *   +-----------+-----------+-----------+--------------------------+--------------+
 *   0           4           6           8                          len            align8(len)
 *
 * len counts the header and the payload, not the trailing alignment; the next frame starts
 * at pos + align8(len). A frame never straddles the end of the data area: when the next
 * frame does not fit before the end, the producer fills the rest with one pad frame
 * (kind SHM_KIND_PAD, len = bytes to the end, a multiple of 8) and starts again at offset 0.
 * kind and flags other than the pad kind belong to the callers (router protocol).
 */
struct shm_frame {
    uint32_t len;
    uint16_t kind;
    uint16_t flags;
};

#define SHM_FRAME_ALIGN 8u
#define SHM_KIND_PAD    0xffffu

_Static_assert(sizeof(struct shm_frame) == 8, "frame header is 8 bytes");
_Static_assert(offsetof(struct shm_frame, kind) == 4, "shm_frame.kind");
_Static_assert(offsetof(struct shm_frame, flags) == 6, "shm_frame.flags");

/* ---- a ring --------------------------------------------------------------------------------
 *
 *   offset
 *      0 +--------------------------------------------------------------+
 *        | magic u32 "SRNG" | version u16 | hdr_size u16                 |  written once by
 *        | data_size u32 (power of two) | max_frame u32                 |  ring_format()
 *    128 +--------------------------------------------------------------+
 *        | head u64: end of the last published frame                    |  producer stores,
 *        |                                                              |  consumer loads
 *    256 +--------------------------------------------------------------+
 *        | tail u64: end of the last released frame                     |  consumer stores,
 *        |                                                              |  producer loads
 *    384 +--------------------------------------------------------------+
 *        | wake_tail u64: wake the producer when tail reaches this;     |  producer arms,
 *        | SHM_NO_WAKE when nobody waits                                |  consumer disarms
 *    512 +--------------------------------------------------------------+
 *        | data[data_size]: frames, back to back, 8-byte aligned        |
 *        +--------------------------------------------------------------+
 *
 * head and tail are free-running byte counts (they never wrap in practice: 2^64 bytes) and
 * are masked with data_size - 1 only to address data. head - tail is the number of bytes
 * published and not yet released; 0 <= head - tail <= data_size, both multiples of 8.
 */
#define SHM_RING_MAGIC   0x474e5253u /* "SRNG" read as little-endian bytes */
#define SHM_RING_VERSION 1u
#define SHM_NO_WAKE      UINT64_MAX

struct shm_ring {
    uint32_t magic;
    uint16_t version;
    uint16_t hdr_size; /* sizeof(struct shm_ring): where data starts */
    uint32_t data_size;
    uint32_t max_frame; /* largest len a frame may have, header included */
    unsigned char pad0_[SHM_SLOT - 16];

    _Atomic uint64_t head;
    unsigned char pad1_[SHM_SLOT - 8];

    _Atomic uint64_t tail;
    unsigned char pad2_[SHM_SLOT - 8];

    _Atomic uint64_t wake_tail;
    unsigned char pad3_[SHM_SLOT - 8];

    unsigned char data[];
};

_Static_assert(offsetof(struct shm_ring, data_size) == 8, "shm_ring.data_size");
_Static_assert(offsetof(struct shm_ring, max_frame) == 12, "shm_ring.max_frame");
_Static_assert(offsetof(struct shm_ring, head) == 1 * SHM_SLOT, "shm_ring.head");
_Static_assert(offsetof(struct shm_ring, tail) == 2 * SHM_SLOT, "shm_ring.tail");
_Static_assert(offsetof(struct shm_ring, wake_tail) == 3 * SHM_SLOT, "shm_ring.wake_tail");
_Static_assert(offsetof(struct shm_ring, data) == 4 * SHM_SLOT, "shm_ring.data");
_Static_assert(sizeof(struct shm_ring) == 512, "shm_ring header is 512 bytes");

/* ---- a doorbell ----------------------------------------------------------------------------
 *
 *      0 +--------------------------------------------------------------+
 *        | sleeping u32: 1 while the owning thread is going to sleep or |  owner sets and
 *        | asleep on its eventfd; whoever clears it rings the eventfd   |  clears, others
 *        | magic u32 "SBEL"                                             |  claim (xchg 0)
 *    128 +--------------------------------------------------------------+
 *
 * One per thread that may sleep. The eventfd itself is a process-local file descriptor
 * (inherited from the supervisor), so it is not in here.
 */
#define SHM_BELL_MAGIC 0x4c454253u /* "SBEL" */

struct shm_bell {
    _Atomic uint32_t sleeping;
    uint32_t magic;
    unsigned char pad_[SHM_SLOT - 8];
};

_Static_assert(offsetof(struct shm_bell, magic) == 4, "shm_bell.magic");
_Static_assert(sizeof(struct shm_bell) == SHM_SLOT, "a bell fills one slot");

/* ---- a stats slot --------------------------------------------------------------------------
 *
 *      0 +--------------------------------------------------------------+
 *        | v[0] u64 | v[1] u64 | ...                  | v[63] u64         |  one writer thread
 *    512 +--------------------------------------------------------------+  stores, anyone loads
 *
 * The counters and gauges of one thread (a c2s or s2s thread, a router shard, the router's
 * own thread), indexed by enum stats_id (stats.h). A slot has exactly one writer, which
 * stores relaxed (no read-modify-write: nobody else writes the line); readers (the
 * supervisor's /metrics) load relaxed and sum the slots. Slots are four SHM_SLOTs apart, so
 * two writers never share a line or a prefetched pair.
 */
#define SHM_STATS_MAX 64

struct shm_stats {
    _Atomic uint64_t v[SHM_STATS_MAX];
};

_Static_assert(sizeof(struct shm_stats) == 4 * SHM_SLOT, "a stats slot fills four slots");

/* ---- a segment -----------------------------------------------------------------------------
 *
 *   offset
 *      0 +--------------------------------------------------------------+
 *        | struct shm_seg: magic "SSEG", version, counts, sizes, offsets |
 *   4096 +--------------------------------------------------------------+ bells_off
 *        | struct shm_bell [n_bells]            (128 bytes each)        |
 *        +--------------------------------------------------------------+ stats_off
 *        | struct shm_stats [n_stats]           (512 bytes each)        |
 *        +--------------------------------------------------------------+ rings_off (4096-aligned)
 *        | ring 0: struct shm_ring + data[ring_data_size]               |
 *        | ring 1 ...                           (ring_stride each)      |
 *        | ring n_rings - 1                                             |
 *        +--------------------------------------------------------------+ size
 *
 * Every offset is a pure function of (n_bells, n_stats, n_rings, ring_data_size): seg_plan()
 * computes it, and a process that maps a segment checks that the header agrees.
 */
#define SHM_SEG_MAGIC   0x47455353u /* "SSEG" */
#define SHM_SEG_VERSION 2u
#define SHM_SEG_HDR     4096u

struct shm_seg {
    uint32_t magic;
    uint16_t version;
    uint16_t hdr_size; /* sizeof(struct shm_seg) */
    uint32_t n_rings;
    uint32_t n_bells;
    uint32_t ring_data_size;
    uint32_t max_frame;
    uint64_t ring_stride;
    uint64_t bells_off;
    uint64_t rings_off;
    uint64_t size;
    uint32_t n_stats;
    uint32_t pad_;
    uint64_t stats_off;
};

_Static_assert(offsetof(struct shm_seg, n_rings) == 8, "shm_seg.n_rings");
_Static_assert(offsetof(struct shm_seg, ring_stride) == 24, "shm_seg.ring_stride");
_Static_assert(offsetof(struct shm_seg, size) == 48, "shm_seg.size");
_Static_assert(offsetof(struct shm_seg, stats_off) == 64, "shm_seg.stats_off");
_Static_assert(sizeof(struct shm_seg) == 72, "shm_seg header is 72 bytes");
_Static_assert(sizeof(struct shm_seg) <= SHM_SEG_HDR, "segment header fits its page");

#endif
