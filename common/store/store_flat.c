/* Building one-block results (store_flat.h). */
#include "common/store/store_flat.h"
#include "common/store/store_mam.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void flat_init(struct flat *f, size_t rec_size)
{
    *f = (struct flat){.rec_size = rec_size, .len = 1};
}

void flat_drop(struct flat *f)
{
    free(f->rec);
    free(f->data);
    f->rec = f->data = NULL;
}

/* A new zeroed record, valid until the next call; NULL when memory is short. */
void *flat_rec(struct flat *f)
{
    if (f->nomem)
        return NULL;
    if (f->nrec == f->rec_cap) {
        size_t ncap = f->rec_cap ? f->rec_cap * 2 : 16;
        char *p = realloc(f->rec, ncap * f->rec_size);
        if (!p) {
            f->nomem = true;
            return NULL;
        }
        f->rec = p;
        f->rec_cap = ncap;
    }
    void *r = f->rec + f->nrec++ * f->rec_size;
    memset(r, 0, f->rec_size);
    return r;
}

/* The newest record. */
void *flat_last(struct flat *f)
{
    return f->rec + (f->nrec - 1) * f->rec_size;
}

/* Appends n bytes, and a NUL when nul, at an offset aligned to `align` (a power of
 * two); returns the offset, or 0 when memory is short. */
size_t flat_put(struct flat *f, const void *p, size_t n, size_t align, bool nul)
{
    size_t at = (f->len + align - 1) & ~(align - 1), need = at + n + nul;
    if (f->nomem)
        return 0;
    if (need > f->cap) {
        /* Doubling, but never to more than what is needed when that is more: one large
         * stanza must not cost twice its size. */
        size_t ncap = f->cap ? f->cap * 2 : 256;
        if (ncap < need)
            ncap = need;
        char *d = realloc(f->data, ncap);
        if (!d) {
            f->nomem = true;
            return 0;
        }
        f->data = d;
        f->cap = ncap;
    }
    if (n)
        memcpy(f->data + at, p, n);
    if (nul)
        f->data[at + n] = '\0';
    f->len = need;
    return at;
}

/* Joins records and data into one block, records first. Returns -ENOMEM, or 0 with the
 * block (NULL when there are no records) and where the data went in it, to which the
 * records' offsets are relative. */
int flat_finish(struct flat *f, void **block, char **base)
{
    size_t rb = f->nrec * f->rec_size;
    int rc = 0;
    *block = NULL;
    *base = NULL;
    if (f->nomem) {
        rc = -ENOMEM;
        goto out;
    }
    if (!f->nrec)
        goto out;
    /* The data buffer becomes the block, its bytes moved up to make room for the
     * records: no second copy of the data (stanzas up to STORE_STANZA_MAX) is ever
     * alive. rec_size is a multiple of 8 (records hold pointers), so the data stays
     * aligned for the group arrays. */
    char *b = realloc(f->data, rb + f->len);
    if (!b) {
        rc = -ENOMEM;
        goto out;
    }
    f->data = NULL;
    memmove(b + rb, b, f->len);
    memcpy(b, f->rec, rb);
    *block = b;
    *base = b + rb;
out:
    flat_drop(f);
    return rc;
}

const char *flat_rebase(const char *base, const char *off)
{
    return off ? base + (uintptr_t)off : NULL;
}

int flat_finish_rebased(struct flat *f, void **block, size_t *n, const size_t *offs, unsigned noffs)
{
    char *base;
    size_t size = f->rec_size;
    *n = f->nrec;
    int rc = flat_finish(f, block, &base);
    if (rc < 0) {
        *n = 0;
        return rc;
    }
    for (size_t i = 0; i < *n; i++)
        for (unsigned k = 0; k < noffs; k++) {
            const char **field = (const char **)(void *)((char *)*block + i * size + offs[k]);
            *field = flat_rebase(base, *field);
        }
    return 0;
}

int flat_subreqs_finish(struct flat *f, struct store_subreqs *out)
{
    static const size_t offs[] = {offsetof(struct store_subreq, jid),
                                  offsetof(struct store_subreq, stanza)};
    void *block;
    int rc = flat_finish_rebased(f, &block, &out->n, offs, 2);
    out->items = block;
    return rc;
}

int flat_offline_finish(struct flat *f, struct store_offline *out)
{
    static const size_t offs[] = {offsetof(struct store_offline_msg, stanza)};
    void *block;
    int rc = flat_finish_rebased(f, &block, &out->n, offs, 1);
    out->msgs = block;
    return rc;
}

void flat_offline_stamp(struct store_offline_msg *m, int64_t stamp)
{
    /* Floor division: a stamp before 1970 still gets 0..999999 microseconds. */
    m->stamp_s = stamp / 1000000 - (stamp % 1000000 < 0);
    m->stamp_us = (uint32_t)(stamp - m->stamp_s * 1000000);
}

_Static_assert(sizeof(size_t) == sizeof(char *), "a group array holds offsets, then pointers");

void flat_roster_init(struct flat_roster *r)
{
    *r = (struct flat_roster){0};
    flat_init(&r->f, sizeof(struct store_roster_item));
}

void flat_roster_group(struct flat_roster *r, size_t off)
{
    if (r->ngroups == r->gcap) {
        size_t ncap = r->gcap ? r->gcap * 2 : 16;
        size_t *g = realloc(r->goff, ncap * sizeof *g);
        if (!g) {
            r->f.nomem = true;
            return;
        }
        r->goff = g;
        r->gcap = ncap;
    }
    r->goff[r->ngroups++] = off;
}

/* The offsets of the newest item's groups go into the data as its group array. */
void flat_roster_item_end(struct flat_roster *r)
{
    struct flat *f = &r->f;
    if (!f->nrec || f->nomem)
        return;
    size_t at =
        r->ngroups ? flat_put(f, r->goff, r->ngroups * sizeof *r->goff, sizeof(char *), false) : 0;
    struct store_roster_item *it = flat_last(f);
    it->groups = (const char *const *)(uintptr_t)at;
    it->ngroups = at ? r->ngroups : 0;
    r->ngroups = 0;
}

void flat_roster_drop(struct flat_roster *r)
{
    flat_drop(&r->f);
    free(r->goff);
    r->goff = NULL;
    r->ngroups = r->gcap = 0;
}

int flat_roster_finish(struct flat_roster *r, struct store_roster *out)
{
    char *base;
    void *block;
    flat_roster_item_end(r);
    size_t n = r->f.nrec;
    int rc = flat_finish(&r->f, &block, &base);
    flat_roster_drop(r);
    if (rc < 0)
        return rc;
    out->items = block;
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        struct store_roster_item *x = &out->items[i];
        x->jid = flat_rebase(base, x->jid);
        x->name = flat_rebase(base, x->name);
        if (!x->ngroups) {
            x->groups = NULL;
            continue;
        }
        /* The array holds offsets (size_t); each becomes the pointer it stands for. */
        const char **g = (const char **)(void *)(base + (uintptr_t)x->groups);
        for (size_t k = 0; k < x->ngroups; k++) {
            size_t off;
            memcpy(&off, &g[k], sizeof off);
            g[k] = base + off;
        }
        x->groups = g;
    }
    return 0;
}

int flat_mam_finish(struct flat *f, size_t max, bool last, struct store_mam_page *out)
{
    static const size_t offs[] = {offsetof(struct store_mam_msg, stanza)};
    void *block;
    size_t n;
    int rc = flat_finish_rebased(f, &block, &n, offs, 1);
    if (rc < 0)
        return rc;
    struct store_mam_msg *m = block;
    out->complete = n <= max;
    if (n > max) {
        if (last) {
            memmove(m, m + 1, (n - 1) * sizeof *m); /* the stanzas stay where they are */
            out->index++;
        }
        n--;
    }
    out->msgs = block;
    out->n = n;
    if (!n) {
        free(block);
        out->msgs = NULL;
    }
    return 0;
}

int flat_mam_prefs(const char *lists, uint8_t dflt, struct store_mam_prefs *out)
{
    size_t n = 0, len = strlen(lists);
    for (const char *p = lists; *p; p++)
        n += *p == '\n';
    char *block = malloc(n * (sizeof(char *) + sizeof(bool)) + len + 1);
    if (!block)
        return -ENOMEM;
    const char **jids = (const char **)(void *)block;
    bool *always = (bool *)(block + n * sizeof(char *));
    char *text = memcpy((char *)(always + n), lists, len + 1);
    size_t i = 0;
    for (char *line = text; i < n && *line; i++) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        always[i] = line[0] == '+';
        jids[i] = line + 1;
        line = nl + 1;
    }
    out->dflt = dflt;
    out->stored = true;
    out->n = i;
    out->jids = jids;
    out->always = always;
    return 0;
}

char *flat_mam_lists(const struct store_mam_prefs *p)
{
    size_t len = 1;
    for (size_t i = 0; i < p->n; i++)
        len += strlen(p->jids[i]) + 2;
    char *s = malloc(len), *at = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < p->n; i++) {
        *at++ = p->always[i] ? '+' : '-';
        size_t l = strlen(p->jids[i]);
        memcpy(at, p->jids[i], l);
        at += l;
        *at++ = '\n';
    }
    *at = '\0';
    return s;
}
