#include "shm/seg.h"
#include "shm/bell.h"
#include "shm/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_PAGE 4096u

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

int seg_plan(struct seg_layout *l, uint32_t n_rings, uint32_t n_bells, uint32_t n_stats,
             uint32_t ring_data_size, uint32_t max_frame)
{
    size_t fp = ring_footprint(ring_data_size);
    if (!fp || max_frame < RING_MIN_FRAME || max_frame > ring_data_size / 2)
        return -EINVAL;
    memset(l, 0, sizeof *l);
    l->n_rings = n_rings;
    l->n_bells = n_bells;
    l->n_stats = n_stats;
    l->ring_data_size = ring_data_size;
    l->max_frame = max_frame;
    l->ring_stride = round_up(fp, SHM_SLOT);
    l->bells_off = SHM_SEG_HDR;
    /* Rings start on a page so that their data areas stay page-aligned relative to each
     * other: a ring's pages are then never shared with a bell's line. */
    size_t bells = (size_t)n_bells * sizeof(struct shm_bell);
    l->stats_off = l->bells_off + bells;
    size_t stats = (size_t)n_stats * sizeof(struct shm_stats);
    l->rings_off = round_up(l->stats_off + stats, SEG_PAGE);
    /* n_rings and the stride are < 2^32 and <= 2^30 + 512: the product fits in 64 bits. */
    uint64_t rings = (uint64_t)n_rings * l->ring_stride;
    if (rings > (uint64_t)INT64_MAX - l->rings_off - SEG_PAGE) /* off_t for ftruncate */
        return -EOVERFLOW;
    l->size = round_up(l->rings_off + rings, SEG_PAGE);
    return 0;
}

static int seg_format(struct seg *s)
{
    struct shm_seg *h = s->base;
    h->magic = SHM_SEG_MAGIC;
    h->version = SHM_SEG_VERSION;
    h->hdr_size = sizeof *h;
    h->n_rings = s->l.n_rings;
    h->n_bells = s->l.n_bells;
    h->n_stats = s->l.n_stats;
    h->stats_off = s->l.stats_off;
    h->ring_data_size = s->l.ring_data_size;
    h->max_frame = s->l.max_frame;
    h->ring_stride = s->l.ring_stride;
    h->bells_off = s->l.bells_off;
    h->rings_off = s->l.rings_off;
    h->size = s->l.size;
    for (uint32_t i = 0; i < s->l.n_bells; i++)
        bell_format(seg_bell(s, i));
    for (uint32_t i = 0; i < s->l.n_rings; i++) {
        int rc = ring_format(seg_ring(s, i), s->l.ring_data_size, s->l.max_frame);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int seg_create(struct seg *s, const char *name, const struct seg_layout *l)
{
    int rc;
    memset(s, 0, sizeof *s);
    s->l = *l;
    /* Not MFD_CLOEXEC: the children inherit the segment across exec. */
    s->fd = memfd_create(name, MFD_ALLOW_SEALING);
    if (s->fd < 0)
        return -errno;
    s->owns_fd = true;
    if (ftruncate(s->fd, (off_t)l->size) < 0)
        goto err_close;
    if (fcntl(s->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        goto err_close;
    /* Not MAP_POPULATE, here or in seg_map(): a ring's pages are allocated as frames
     * reach them (and given back when it is quiet: ring_trim), so an idle node holds
     * its rings' headers, not every ring's whole size in each process (2 MiB apiece
     * for the smallest node). */
    s->base = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (s->base == MAP_FAILED)
        goto err_close;
    rc = seg_format(s);
    if (rc < 0)
        goto err_unmap;
    return 0;

err_close:
    rc = -errno;
    goto out_close;
err_unmap:
    munmap(s->base, l->size);
out_close:
    s->base = NULL;
    close(s->fd);
    s->fd = -1;
    return rc;
}

/* The header's plan, re-derived with seg_plan() so that only layouts this revision would
 * have produced are accepted. */
static int seg_header_layout(const struct shm_seg *h, struct seg_layout *l)
{
    if (h->magic != SHM_SEG_MAGIC || h->version != SHM_SEG_VERSION || h->hdr_size != sizeof *h)
        return -EPROTO;
    if (seg_plan(l, h->n_rings, h->n_bells, h->n_stats, h->ring_data_size, h->max_frame) < 0)
        return -EBADMSG;
    if (h->ring_stride != l->ring_stride || h->bells_off != l->bells_off ||
        h->stats_off != l->stats_off ||
        h->rings_off != l->rings_off || h->size != l->size)
        return -EBADMSG;
    return 0;
}

int seg_map(struct seg *s, int fd, const struct seg_layout *l)
{
    struct stat st;
    struct seg_layout got;
    int rc;
    memset(s, 0, sizeof *s);
    s->fd = fd;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size < (off_t)SHM_SEG_HDR)
        return -EBADMSG;
    /* Map what the file holds, then check that it is what we planned. */
    size_t size = (size_t)st.st_size;
    s->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s->base == MAP_FAILED) {
        s->base = NULL;
        return -errno;
    }
    rc = seg_header_layout(s->base, &got);
    if (rc < 0)
        goto err_unmap;
    rc = -EBADMSG;
    if (got.size != size)
        goto err_unmap;
    if (l && (l->n_rings != got.n_rings || l->n_bells != got.n_bells || l->n_stats != got.n_stats ||
              l->ring_data_size != got.ring_data_size || l->max_frame != got.max_frame))
        goto err_unmap;
    s->l = got;
    return 0;

err_unmap:
    munmap(s->base, size);
    s->base = NULL;
    return rc;
}

void seg_close(struct seg *s)
{
    if (s->base) {
        munmap(s->base, s->l.size);
        s->base = NULL;
    }
    if (s->owns_fd && s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->owns_fd = false;
}
