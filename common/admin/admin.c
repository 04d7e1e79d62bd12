/*
 * admin.c: the listener's sockets (admin.h). Each connection goes READ -> WRITE -> DRAIN
 * -> closed: READ until http_parse() decides (or the deadline: 408), WRITE until the
 * answer is out, DRAIN (after shutdown(SHUT_WR)) until the client closes or the deadline.
 */
#include "common/admin/admin.h"
#include "common/admin/http.h"
#include "common/core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum admin_state { AC_FREE, AC_READ, AC_WRITE, AC_DRAIN };

struct admin_conn {
    int fd;
    uint8_t state; /* enum admin_state */
    uint64_t deadline;
    char *in; /* admin.max_request bytes at accept */
    size_t in_len, in_cap;
    struct buf out;
};

int admin_open(struct admin *a, const struct config *cfg, admin_answer_fn *answer, void *arg)
{
    const struct config_addr *la = &cfg->admin.listen;
    memset(a, 0, sizeof *a);
    a->lfd = -1;
    a->cfg = cfg;
    a->answer = answer;
    a->arg = arg;
    if (!la->len)
        return 0;
    a->nconns = cfg->admin.max_connections;
    a->conns = calloc(a->nconns, sizeof *a->conns);
    if (!a->conns)
        return -ENOMEM;
    for (unsigned i = 0; i < a->nconns; i++)
        a->conns[i].fd = -1;
    int fd = socket(la->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rc;
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, &la->addr.sa, la->len) < 0 || listen(fd, 64) < 0)
        goto fail;
    a->lfd = fd;
    return 0;
fail:
    rc = -errno;
    if (fd >= 0)
        close(fd);
    free(a->conns);
    a->conns = NULL;
    a->nconns = 0;
    return rc;
}

static void conn_close(struct admin_conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->state = AC_FREE;
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    buf_free(&c->out);
}

void admin_close(struct admin *a)
{
    for (unsigned i = 0; i < a->nconns; i++)
        if (a->conns[i].state != AC_FREE)
            conn_close(&a->conns[i]);
    free(a->conns);
    a->conns = NULL;
    a->nconns = 0;
    if (a->lfd >= 0)
        close(a->lfd);
    a->lfd = -1;
}

unsigned admin_nfds(const struct admin *a)
{
    return a->lfd >= 0 ? 1 + a->nconns : 0;
}

void admin_fill(const struct admin *a, struct pollfd *pf)
{
    if (a->lfd < 0)
        return;
    pf[0] = (struct pollfd){a->lfd, POLLIN, 0};
    for (unsigned i = 0; i < a->nconns; i++) {
        const struct admin_conn *c = &a->conns[i];
        pf[1 + i] = (struct pollfd){c->fd, c->state == AC_WRITE ? POLLOUT : POLLIN, 0};
    }
}

/* The whole answer, headers and body, ready to write. */
static void respond(struct admin *a, struct admin_conn *c, int status, struct buf *body,
                    const char *type, uint64_t now)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %u\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     status, http_reason(status), type ? type : "text/plain; charset=utf-8",
                     buf_used(body), status == 405 ? "Allow: GET\r\n" : "");
    buf_free(&c->out);
    if (buf_append(&c->out, head, (size_t)n) < 0 ||
        buf_append(&c->out, buf_data(body), buf_used(body)) < 0) {
        conn_close(c);
        return;
    }
    free(c->in);
    c->in = NULL;
    c->state = AC_WRITE;
    c->deadline = now + (uint64_t)a->cfg->admin.timeout * 1000;
}

static void respond_text(struct admin *a, struct admin_conn *c, int status, uint64_t now)
{
    struct buf body = {0};
    buf_puts(&body, http_reason(status));
    buf_puts(&body, "\n");
    respond(a, c, status, &body, NULL, now);
    buf_free(&body);
}

static void on_readable(struct admin *a, struct admin_conn *c, uint64_t now)
{
    if (c->state == AC_DRAIN) {
        char sink[4096];
        ssize_t n = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c); /* gone before its request was complete */
        return;
    }
    c->in_len += (size_t)n;
    struct http_request r;
    int st = http_parse(c->in, c->in_len, c->in_cap, &r);
    if (st == 0)
        return;
    if (st != 200) {
        respond_text(a, c, st, now);
        return;
    }
    struct buf body = {0};
    const char *type = NULL;
    st = a->answer(a->arg, r.path, r.path_len, &body, &type);
    respond(a, c, st, &body, type, now);
    buf_free(&body);
}

static void on_writable(struct admin_conn *c)
{
    ssize_t n = send(c->fd, buf_data(&c->out), buf_used(&c->out), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    buf_consume(&c->out, (size_t)n);
    if (buf_used(&c->out))
        return;
    buf_free(&c->out);
    shutdown(c->fd, SHUT_WR);
    c->state = AC_DRAIN;
}

static void on_accept(struct admin *a, uint64_t now)
{
    for (;;) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                LOG_RL(LOG_LEVEL_WARN, "admin: accept: %s", strerror(errno));
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return;
        }
        struct admin_conn *c = NULL;
        for (unsigned i = 0; i < a->nconns && !c; i++)
            if (a->conns[i].state == AC_FREE)
                c = &a->conns[i];
        if (c) {
            c->in_cap = a->cfg->admin.max_request;
            c->in = malloc(c->in_cap);
        }
        if (!c || !c->in) {
            /* Over admin.max_connections: told so in one write the new socket takes
             * whole, then closed. */
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            LOG_RL(LOG_LEVEL_WARN, "admin: %u connections open already: 503", a->nconns);
            (void)!send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = AC_READ;
        c->in_len = 0;
        c->deadline = now + (uint64_t)a->cfg->admin.timeout * 1000;
    }
}

void admin_serve(struct admin *a, const struct pollfd *pf, uint64_t now)
{
    if (a->lfd < 0)
        return;
    for (unsigned i = 0; i < a->nconns; i++) {
        struct admin_conn *c = &a->conns[i];
        short ev = pf[1 + i].revents;
        if (c->state == AC_FREE || pf[1 + i].fd != c->fd)
            continue;
        if (c->state == AC_WRITE && (ev & (POLLOUT | POLLERR | POLLHUP)))
            on_writable(c);
        else if (c->state != AC_WRITE && (ev & (POLLIN | POLLERR | POLLHUP)))
            on_readable(a, c, now);
        if (c->state == AC_FREE || now < c->deadline)
            continue;
        if (c->state == AC_READ)
            respond_text(a, c, 408, now); /* then a last chance to take it */
        else
            conn_close(c);
    }
    if (pf[0].revents & POLLIN)
        on_accept(a, now);
}

int admin_timeout(const struct admin *a, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < a->nconns; i++)
        if (a->conns[i].state != AC_FREE && a->conns[i].deadline < next)
            next = a->conns[i].deadline;
    if (next == UINT64_MAX)
        return -1;
    return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}
