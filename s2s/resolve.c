/*
 * resolve.c: an s2s thread's resolver on its io_uring loop, as common/net/dns.h's
 * "Driving it" says: after each call into the resolver, the polls armed for its sockets
 * are brought in line with dns_watches() (a socket no longer watched, or watched for
 * other events, loses its poll; a new one gets one), and the timer with
 * dns_timeout_ms().
 */
#include "s2s/resolve.h"
#include "common/core/log.h"
#include "s2s/s2s.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

/* A poll armed for one of the resolver's sockets. */
struct s2s_dns_poll {
    uint32_t id; /* dns_watch.id: the poll's tag */
    unsigned events;
    int fd;
    int poll; /* fe_poll_add()'s id */
};

static void rearm(struct s2s_thread *t);

static struct s2s_thread *of(struct fe_thread *f)
{
    return (struct s2s_thread *)f;
}

static void on_ready(struct fe_thread *f, uint64_t tag, int res)
{
    struct s2s_thread *t = of(f);
    for (size_t i = 0; i < t->ndns_polls; i++) {
        if (t->dns_polls[i].id != (uint32_t)tag)
            continue;
        int fd = t->dns_polls[i].fd;
        t->dns_polls[i] = t->dns_polls[--t->ndns_polls]; /* one-shot: it is over */
        dns_process(t->dns, fd, res > 0 ? (unsigned)res : POLLERR);
        break;
    }
    rearm(t);
}

static void on_timer(struct fe_thread *f, struct fe_timer *tm)
{
    (void)tm;
    struct s2s_thread *t = of(f);
    dns_process(t->dns, -1, 0);
    rearm(t);
}

static void rearm(struct s2s_thread *t)
{
    const struct dns_watch *w;
    size_t n = dns_watches(t->dns, &w);
    /* Polls for sockets the resolver no longer watches (closed, or other events). */
    for (size_t i = 0; i < t->ndns_polls;) {
        const struct s2s_dns_poll *p = &t->dns_polls[i];
        size_t j = 0;
        while (j < n && (w[j].id != p->id || w[j].events != p->events))
            j++;
        if (j < n) {
            i++;
            continue;
        }
        fe_poll_remove(&t->fe, p->poll);
        t->dns_polls[i] = t->dns_polls[--t->ndns_polls];
    }
    for (size_t j = 0; j < n; j++) {
        size_t i = 0;
        while (i < t->ndns_polls && t->dns_polls[i].id != w[j].id)
            i++;
        if (i < t->ndns_polls)
            continue;
        if (t->ndns_polls == t->capdns_polls) {
            size_t cap = t->capdns_polls ? 2 * t->capdns_polls : 4;
            struct s2s_dns_poll *p = realloc(t->dns_polls, cap * sizeof *p);
            if (!p)
                goto unwatched;
            t->dns_polls = p;
            t->capdns_polls = cap;
        }
        int id = fe_poll_add(&t->fe, w[j].fd, w[j].events, w[j].id, on_ready);
        if (id < 0)
            goto unwatched;
        t->dns_polls[t->ndns_polls++] = (struct s2s_dns_poll){w[j].id, w[j].events, w[j].fd, id};
        continue;
    unwatched:
        /* Its queries time out (the timer still runs): those lookups fail, no worse. */
        LOG_RL(LOG_LEVEL_ERROR, "dns: out of memory: socket %d not watched", w[j].fd);
    }
    int ms = dns_timeout_ms(t->dns);
    if (ms >= 0)
        fe_timer_at(&t->fe, &t->dns_timer, fe_now_us() + (uint64_t)ms * 1000, on_timer);
    else
        fe_timer_cancel(&t->dns_timer);
}

int s2s_resolve(struct s2s_thread *t, const char *domain, struct dns_lookup *l, dns_done_fn *done,
                struct dns_result **out)
{
    int rc = dns_resolve(t->dns, domain, l, done, out);
    rearm(t); /* even when answered now: a query may have started and failed at once */
    return rc;
}

int s2s_resolve_init(struct s2s_thread *t)
{
    return dns_new(t->fe.cfg, &t->dns);
}

void s2s_resolve_free(struct s2s_thread *t)
{
    dns_free(t->dns);
    t->dns = NULL;
    free(t->dns_polls);
    t->dns_polls = NULL;
    t->ndns_polls = t->capdns_polls = 0;
}
