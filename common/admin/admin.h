/*
 * admin: the supervisor's HTTP listener (admin.listen) for /health, /ready and /metrics.
 * It lives in the supervisor's single-threaded poll loop and never blocks it: nonblocking
 * sockets, one request per connection (http.h parses it), the answer written as the socket
 * takes it, then a half-close and the client's remaining bytes read and dropped until it
 * closes (so that an unread request body does not turn our close into a reset that loses
 * the answer). Bounds, all directives: admin.max_connections at once (one more gets 503 at
 * once and is closed), admin.max_request bytes of request line and headers (431 or 414),
 * admin.timeout to send the request (408) and again to take the answer.
 *
 * What a path means is the caller's: answer() gets the path of every well-formed GET and
 * fills the body; 400, 405, 408, 414, 431, 503 and 505 are answered here.
 *
 * The supervisor's thread only.
 */
#ifndef STARLING_ADMIN_H
#define STARLING_ADMIN_H

#include "common/config/config.h"
#include "common/core/buf.h"

#include <poll.h>
#include <stdint.h>

/* The answer to GET path[0..len): its status, body appended to body, and *type its
 * Content-Type (default text/plain). */
typedef int admin_answer_fn(void *arg, const char *path, size_t len, struct buf *body,
                            const char **type);

struct admin_conn;

struct admin {
    int lfd; /* -1: off */
    struct admin_conn *conns;
    unsigned nconns;
    const struct config *cfg; /* max_request and timeout, read at each use */
    admin_answer_fn *answer;
    void *arg;
};

/* Listens on cfg->admin.listen (off when it is ""). 0 or -errno. */
int admin_open(struct admin *a, const struct config *cfg, admin_answer_fn *answer, void *arg);
void admin_close(struct admin *a);

/* How many pollfds admin_fill() writes: 1 + admin.max_connections (0 when off). */
unsigned admin_nfds(const struct admin *a);
/* Fills pf[0..admin_nfds()) for poll(2); free slots get fd -1. */
void admin_fill(const struct admin *a, struct pollfd *pf);
/* After poll(2): accepts, reads, answers, writes, times out (now: CLOCK_MONOTONIC ms). */
void admin_serve(struct admin *a, const struct pollfd *pf, uint64_t now);
/* Milliseconds until the next deadline, or -1 without one. */
int admin_timeout(const struct admin *a, uint64_t now);

#endif
