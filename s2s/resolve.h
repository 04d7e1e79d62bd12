/*
 * resolve: finding peers from an s2s thread. Each s2s thread has its own resolver
 * (common/net/dns.h: routes, IP literals, SRV, A/AAAA, the cache), driven from the
 * thread's io_uring loop: its sockets are watched with fe_poll_add() and its timeouts
 * with an fe_timer, re-armed after every call that may change them.
 *
 * Every function runs on the thread t, inside its loop (fe_run()), but
 * s2s_resolve_init() and s2s_resolve_free(), which the process's main thread calls
 * before the thread starts and after it ended.
 */
#ifndef STARLING_S2S_RESOLVE_H
#define STARLING_S2S_RESOLVE_H

#include "common/net/dns.h"

struct s2s_thread;

/* t's resolver, from t->fe.cfg's s2s.* settings. 0, -ENOMEM or -EIO. */
int s2s_resolve_init(struct s2s_thread *t);
/* Frees t's resolver (pending lookups end without their callbacks). */
void s2s_resolve_free(struct s2s_thread *t);

/*
 * dns_resolve() on t's resolver, the same contract: 0 with *out (a route, an IP
 * literal, the cache), 1 pending (done runs later from the loop, never from here), or
 * a negative errno (see dns.h for each and the stanza error it stands for). l is the
 * caller's, kept until done runs or dns_cancel(l).
 */
int s2s_resolve(struct s2s_thread *t, const char *domain, struct dns_lookup *l, dns_done_fn *done,
                struct dns_result **out);

#endif
