/*
 * relay: the floor of issue 5's goals. A bare relay that does no XMPP work at all: one
 * thread, one io_uring, a canned login (stream headers, SASL PLAIN taken on trust, a
 * bind result, the initial presence echoed) and then each <message/> forwarded, bytes
 * untouched, to the connection of the user its `to` names. Whatever an XMPP server
 * spends beyond what this spends on the same run is its own work.
 *
 *   relay -p PORT [-H 127.0.0.1] [-d localhost]
 *
 * It answers starling-bench's client and nothing else: an element it does not expect
 * closes the connection. Not a server; never run it anywhere but on loopback.
 */
#include "common/core/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 65536u
#define RECV_SIZE 16384u
#define QUEUE_DEPTH 4096u
#define USERS_SLOTS (2 * MAX_CONNS) /* open addressing, a power of two */

enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_CLOSE };
enum state { ST_HEADER1, ST_AUTH, ST_HEADER2, ST_BIND, ST_PRESENCE, ST_ONLINE, ST_GONE };

struct conn {
    int fd;
    unsigned slot;
    uint8_t state;
    bool recv_armed, sending, closing, queued;
    char user[64];    /* SASL authcid, the routing key */
    struct buf in;    /* received, not yet consumed */
    struct buf out;   /* in flight to the kernel */
    struct buf next;  /* queued behind it */
    char rbuf[RECV_SIZE];
};

static struct io_uring ring;
static struct conn *conns[MAX_CONNS];
static struct conn *users[USERS_SLOTS];
static const char *domain = "localhost";
/* Connections written to in this loop iteration: their sends start at its end, one each. */
static unsigned pending[MAX_CONNS];
static unsigned npending;

static uint64_t ud(enum op op, unsigned slot)
{
    return (uint64_t)op << 32 | slot;
}

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    return s;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The slot of user u: where it is, or the empty one where it would go. */
static size_t user_slot(const char *u)
{
    size_t i = hash(u) & (USERS_SLOTS - 1);
    while (users[i] && strcmp(users[i]->user, u) != 0)
        i = (i + 1) & (USERS_SLOTS - 1);
    return i;
}

/* Removing from linear probing: the followers of the hole move back. */
static void user_remove(struct conn *c)
{
    size_t i = user_slot(c->user);
    if (users[i] != c)
        return;
    users[i] = NULL;
    for (size_t j = (i + 1) & (USERS_SLOTS - 1); users[j]; j = (j + 1) & (USERS_SLOTS - 1)) {
        struct conn *m = users[j];
        users[j] = NULL;
        users[user_slot(m->user)] = m;
    }
}

static void arm_recv(unsigned slot)
{
    struct conn *c = conns[slot];
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_recv(s, c->fd, c->rbuf, sizeof c->rbuf, 0);
    io_uring_sqe_set_data64(s, ud(OP_RECV, slot));
    c->recv_armed = true;
}

static void kick_send(unsigned slot)
{
    struct conn *c = conns[slot];
    if (c->sending || (!buf_used(&c->out) && !buf_used(&c->next)))
        return;
    if (!buf_used(&c->out)) {
        struct buf t = c->out;
        c->out = c->next;
        c->next = t;
    }
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_send(s, c->fd, buf_data(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud(OP_SEND, slot));
    c->sending = true;
}

/* Queues bytes for c; the send starts at the end of the loop iteration. */
static void out(struct conn *c, const char *p, size_t n)
{
    if (buf_append(c->sending || buf_used(&c->out) ? &c->next : &c->out, p, n) < 0)
        c->closing = true;
    if (!c->queued) {
        c->queued = true;
        pending[npending++] = c->slot;
    }
}

static void outs(struct conn *c, const char *s)
{
    out(c, s, strlen(s));
}

static void header(struct conn *c, bool bind)
{
    char h[512];
    snprintf(h, sizeof h,
             "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams' id='relay' from='%s' "
             "version='1.0'><stream:features>%s</stream:features>",
             domain,
             bind ? "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                  : "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                    "<mechanism>PLAIN</mechanism></mechanisms>");
    outs(c, h);
}

/* The value of attribute `name` in the tag at p..end, copied into v. */
static bool attr(const char *p, const char *end, const char *name, char *v, size_t vl)
{
    size_t nl = strlen(name);
    for (const char *q = p + 1; q + nl + 2 < end && *q != '>'; q++) {
        if ((q[-1] == ' ') && !memcmp(q, name, nl) && q[nl] == '=' &&
            (q[nl + 1] == '\'' || q[nl + 1] == '"')) {
            const char *s = q + nl + 2, *e = memchr(s, q[nl + 1], (size_t)(end - s));
            if (!e || (size_t)(e - s) >= vl)
                return false;
            memcpy(v, s, (size_t)(e - s));
            v[e - s] = '\0';
            return true;
        }
    }
    return false;
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* PLAIN's message is authzid NUL authcid NUL password: the authcid is the user. */
static bool plain_user(const char *p, const char *end, char *user, size_t ul)
{
    char raw[512];
    size_t n = 0;
    unsigned acc = 0, bits = 0;
    for (; p < end && n < sizeof raw; p++) {
        int v = b64val((unsigned char)*p);
        if (v < 0)
            continue;
        acc = acc << 6 | (unsigned)v;
        if ((bits += 6) >= 8) {
            bits -= 8;
            raw[n++] = (char)(acc >> bits);
        }
    }
    const char *a = memchr(raw, '\0', n);
    if (!a)
        return false;
    const char *u = a + 1, *ue = memchr(u, '\0', n - (size_t)(u - raw));
    if (!ue || ue == u || (size_t)(ue - u) >= ul)
        return false;
    memcpy(user, u, (size_t)(ue - u));
    user[ue - u] = '\0';
    return true;
}

/* Where the element that starts at p ends (one past), or NULL while incomplete. */
static const char *element_end(const char *p, const char *end, const char *name)
{
    const char *gt = memchr(p, '>', (size_t)(end - p));
    if (!gt)
        return NULL;
    if (gt[-1] == '/')
        return gt + 1;
    char close[32];
    int cl = snprintf(close, sizeof close, "</%s>", name);
    const char *e = memmem(gt, (size_t)(end - gt), close, (size_t)cl);
    return e ? e + cl : NULL;
}

/* Consumes what it can of c->in; false when the connection must go. */
static bool process(struct conn *c)
{
    for (;;) {
        const char *p = buf_data(&c->in), *end = p + buf_used(&c->in);
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p == end) {
            buf_consume(&c->in, buf_used(&c->in));
            return true;
        }
        const char *next = NULL;
        if (c->state == ST_HEADER1 || c->state == ST_HEADER2) {
            const char *h = memmem(p, (size_t)(end - p), "<stream:stream", 14);
            const char *gt = h ? memchr(h, '>', (size_t)(end - h)) : NULL;
            if (!gt)
                return true;
            next = gt + 1;
            header(c, c->state == ST_HEADER2);
            c->state = c->state == ST_HEADER1 ? ST_AUTH : ST_BIND;
        } else if ((size_t)(end - p) >= 16 && !memcmp(p, "</stream:stream>", 16)) {
            outs(c, "</stream:stream>");
            c->closing = true;
            return true;
        } else if (c->state == ST_AUTH) {
            if (!(next = element_end(p, end, "auth")))
                return true;
            const char *gt = memchr(p, '>', (size_t)(next - p));
            if (!plain_user(gt + 1, next, c->user, sizeof c->user))
                return false;
            size_t i = user_slot(c->user);
            users[i] = c; /* a second login of the same user takes the routes */
            outs(c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
            c->state = ST_HEADER2;
        } else if (c->state == ST_BIND || c->state == ST_PRESENCE || c->state == ST_ONLINE) {
            size_t left = (size_t)(end - p);
            if (left < 9)
                return true; /* every element expected here is longer */
            bool iq = !memcmp(p, "<iq", 3), msg = !memcmp(p, "<message", 8);
            bool pres = !memcmp(p, "<presence", 9);
            if (!iq && !msg && !pres)
                return left < 16; /* perhaps the start of </stream:stream>, or give up */
            if (!(next = element_end(p, end, iq ? "iq" : msg ? "message" : "presence")))
                return true;
            char id[128] = "", to[256], reply[512];
            if (iq) {
                attr(p, next, "id", id, sizeof id);
                if (c->state == ST_BIND) {
                    snprintf(reply, sizeof reply,
                             "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:"
                             "xmpp-bind'><jid>%s@%s/relay</jid></bind></iq>",
                             id, c->user, domain);
                    c->state = ST_PRESENCE;
                } else {
                    snprintf(reply, sizeof reply,
                             "<iq type='result' id='%s'><query xmlns='jabber:iq:roster'/></iq>",
                             id);
                }
                outs(c, reply);
            } else if (pres && c->state == ST_PRESENCE) {
                snprintf(reply, sizeof reply, "<presence from='%s@%s/relay'/>", c->user, domain);
                outs(c, reply);
                c->state = ST_ONLINE;
            } else if (msg && attr(p, next, "to", to, sizeof to)) {
                char *at = strchr(to, '@');
                if (at)
                    *at = '\0';
                struct conn *r = users[user_slot(to)];
                if (r && r->state == ST_ONLINE && !r->closing)
                    out(r, p, (size_t)(next - p));
            }
        } else {
            return false;
        }
        buf_consume(&c->in, (size_t)(next - buf_data(&c->in)));
    }
}

static void conn_close(unsigned slot)
{
    struct conn *c = conns[slot];
    if (c->state == ST_GONE)
        return;
    if (c->user[0])
        user_remove(c);
    c->state = ST_GONE;
    shutdown(c->fd, SHUT_RDWR); /* ends a receive still armed */
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_close(s, c->fd);
    io_uring_sqe_set_data64(s, ud(OP_CLOSE, slot));
}

/* A connection's slot is free again when nothing of it is in the kernel. */
static void maybe_free(unsigned slot)
{
    struct conn *c = conns[slot];
    if (c->state != ST_GONE || c->recv_armed || c->sending || c->fd >= 0)
        return;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->next);
    free(c);
    conns[slot] = NULL;
}

static int listen_on(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "H:p:d:")) != -1) {
        if (opt == 'H')
            host = optarg;
        else if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 'd')
            domain = optarg;
        else
            port = -1;
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s -p PORT [-H 127.0.0.1] [-d localhost]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(host, port);
    if (lfd < 0) {
        fprintf(stderr, "relay: %s:%d: %s\n", host, port, strerror(-lfd));
        return 1;
    }
    struct io_uring_params pr = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                          IORING_SETUP_SUBMIT_ALL};
    int err = io_uring_queue_init_params(QUEUE_DEPTH, &ring, &pr);
    if (err < 0) {
        fprintf(stderr, "relay: io_uring: %s\n", strerror(-err));
        return 1;
    }
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud(OP_ACCEPT, 0));
    unsigned next_slot = 0;
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            enum op op = (enum op)(cqe->user_data >> 32);
            unsigned slot = (unsigned)(cqe->user_data & 0xffffffffu);
            if (op == OP_ACCEPT) {
                if (cqe->res >= 0) {
                    unsigned i = 0;
                    while (i < MAX_CONNS && conns[(next_slot + i) % MAX_CONNS])
                        i++;
                    struct conn *c = i < MAX_CONNS ? calloc(1, sizeof *c) : NULL;
                    if (!c) {
                        close(cqe->res);
                    } else {
                        slot = (next_slot + i) % MAX_CONNS;
                        next_slot = slot + 1;
                        c->fd = cqe->res;
                        c->slot = slot;
                        int one = 1;
                        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        conns[slot] = c;
                        arm_recv(slot);
                    }
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    s = sqe_get();
                    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
                    io_uring_sqe_set_data64(s, ud(OP_ACCEPT, 0));
                }
                continue;
            }
            struct conn *c = conns[slot];
            if (!c)
                continue;
            if (op == OP_RECV) {
                c->recv_armed = false;
                if (c->state == ST_GONE) {
                    maybe_free(slot);
                } else if (cqe->res <= 0) {
                    conn_close(slot);
                } else if (buf_append(&c->in, c->rbuf, (size_t)cqe->res) < 0 || !process(c)) {
                    conn_close(slot);
                } else if (!c->closing) {
                    arm_recv(slot);
                }
            } else if (op == OP_SEND) {
                c->sending = false;
                if (cqe->res < 0 || c->state == ST_GONE) {
                    conn_close(slot);
                    maybe_free(slot);
                    continue;
                }
                buf_consume(&c->out, (size_t)cqe->res);
                kick_send(slot);
                if (!c->sending && c->closing) {
                    conn_close(slot);
                    maybe_free(slot);
                }
            } else if (op == OP_CLOSE) {
                c->fd = -1;
                maybe_free(slot);
            }
        }
        io_uring_cq_advance(&ring, seen);
        for (unsigned i = 0; i < npending; i++) {
            struct conn *c = conns[pending[i]];
            if (!c)
                continue; /* freed meanwhile */
            c->queued = false;
            if (c->state != ST_GONE)
                kick_send(pending[i]);
        }
        npending = 0;
    }
}
