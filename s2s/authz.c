/* authz: domain pairs of one s2s stream (see authz.h). */
#include "s2s/authz.h"

#include "common/xmpp/jid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void authz_init(struct authz *a, const struct authz_limits *lim, bool inbound)
{
    memset(a, 0, sizeof *a);
    a->lim = *lim;
    a->inbound = inbound;
}

void authz_free(struct authz *a)
{
    for (unsigned i = 0; i < a->n; i++)
        free((char *)a->v[i].from);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = a->npending = 0;
    a->nvalid[AUTHZ_IN] = a->nvalid[AUTHZ_OUT] = 0;
}

void authz_set_bidi(struct authz *a)
{
    a->bidi = true;
}

static bool same(const char *p, size_t n, const char *s, uint16_t len)
{
    return n == len && memcmp(p, s, n) == 0;
}

static struct authz_pair *find(const struct authz *a, enum authz_dir dir, const char *from,
                               size_t from_len, const char *to, size_t to_len)
{
    for (unsigned i = 0; i < a->n; i++) {
        struct authz_pair *p = &a->v[i];
        if (p->dir == dir && same(from, from_len, p->from, p->from_len) &&
            same(to, to_len, p->to, p->to_len))
            return p;
    }
    return NULL;
}

const struct authz_pair *authz_find(const struct authz *a, enum authz_dir dir, const char *from,
                                    size_t from_len, const char *to, size_t to_len)
{
    return find(a, dir, from, from_len, to, to_len);
}

int authz_add(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
              const char *to, size_t to_len, bool pending, uint32_t now)
{
    if (!from_len || !to_len || from_len > JID_PART_MAX || to_len > JID_PART_MAX)
        return -EINVAL;
    if (!a->bidi && a->inbound != (dir == AUTHZ_IN))
        return -EPERM;
    if (find(a, dir, from, from_len, to, to_len))
        return -EEXIST;
    if (a->n >= a->lim.max_pairs || (pending && a->npending >= a->lim.max_pending))
        return -ENOSPC;
    if (a->n == a->cap) {
        unsigned cap = a->cap ? 2 * a->cap : 4;
        struct authz_pair *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    char *mem = malloc(from_len + to_len + 2);
    if (!mem)
        return -ENOMEM;
    memcpy(mem, from, from_len);
    mem[from_len] = '\0';
    memcpy(mem + from_len + 1, to, to_len);
    mem[from_len + 1 + to_len] = '\0';
    a->v[a->n++] = (struct authz_pair){
        .from = mem,
        .to = mem + from_len + 1,
        .from_len = (uint16_t)from_len,
        .to_len = (uint16_t)to_len,
        .dir = (uint8_t)dir,
        .pending = pending,
        .since = now,
    };
    if (pending)
        a->npending++;
    else
        a->nvalid[dir]++;
    return 0;
}

int authz_settle(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                 const char *to, size_t to_len)
{
    struct authz_pair *p = find(a, dir, from, from_len, to, to_len);
    if (!p || !p->pending)
        return -ENOENT;
    p->pending = false;
    a->npending--;
    a->nvalid[dir]++;
    return 0;
}

char *authz_take(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                 const char *to, size_t to_len)
{
    struct authz_pair *p = find(a, dir, from, from_len, to, to_len);
    if (!p)
        return NULL;
    if (p->pending)
        a->npending--;
    else
        a->nvalid[dir]--;
    char *mem = (char *)p->from;
    /* Keep insertion order: walks (timeouts, oldest first) rely on it. */
    size_t i = (size_t)(p - a->v);
    memmove(p, p + 1, (a->n - i - 1) * sizeof *p);
    a->n--;
    return mem;
}

int authz_remove(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                 const char *to, size_t to_len)
{
    char *mem = authz_take(a, dir, from, from_len, to, to_len);
    if (!mem)
        return -ENOENT;
    free(mem);
    return 0;
}

static bool valid(const struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                  const char *to, size_t to_len)
{
    const struct authz_pair *p = find(a, dir, from, from_len, to, to_len);
    return p && !p->pending;
}

bool authz_may_send(const struct authz *a, const char *from, size_t from_len, const char *to,
                    size_t to_len)
{
    return valid(a, AUTHZ_OUT, from, from_len, to, to_len) ||
           (a->bidi && valid(a, AUTHZ_IN, to, to_len, from, from_len));
}

bool authz_may_receive(const struct authz *a, const char *from, size_t from_len, const char *to,
                       size_t to_len)
{
    return valid(a, AUTHZ_IN, from, from_len, to, to_len) ||
           (a->bidi && valid(a, AUTHZ_OUT, to, to_len, from, from_len));
}

unsigned authz_valid(const struct authz *a, enum authz_dir dir)
{
    return a->nvalid[dir];
}

unsigned authz_pending(const struct authz *a)
{
    return a->npending;
}

const struct authz_pair *authz_at(const struct authz *a, unsigned i)
{
    return i < a->n ? &a->v[i] : NULL;
}
