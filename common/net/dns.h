/*
 * dns: where to connect to reach a remote XMPP domain's server (RFC 6120 §3.2 with
 * XEP-0368), found asynchronously through c-ares, with a cache; for s2s's outbound
 * streams. It has no event loop of its own: the caller watches the sockets it names and
 * calls it back (see "Driving it" below), so any loop can carry it.
 *
 * A lookup answers the addresses to try, in order, each an IP address and port and
 * whether the stream starts with TLS at once (Direct TLS, XEP-0368) or with STARTTLS:
 *   1. A static route (s2s.routes) answers for its domain at once: its address,
 *      STARTTLS. So does an IP-literal domain ("192.0.2.1", "[2001:db8::1]"): that
 *      address, port 5269. Neither asks DNS.
 *   2. Otherwise the SRV records of _xmpps-server._tcp.DOMAIN (Direct TLS) and
 *      _xmpp-server._tcp.DOMAIN (STARTTLS) are asked for together. Every xmpps target
 *      is tried before every xmpp target (XEP-0368 §3 lets an initiator prefer one
 *      kind: Direct TLS saves a round trip and cannot be stripped); within each, by
 *      priority, then in RFC 2782's weighted random order (dns_srv.h). At most
 *      s2s.dns_max_targets targets are kept. A target of "." says that the service is
 *      decidedly not available (RFC 2782): an xmpps "." only rules out Direct TLS; an
 *      xmpp "." with no xmpps target ends the lookup (-ECONNREFUSED), without fallback.
 *   3. Each target's A and AAAA records are asked for (once per distinct host); its
 *      addresses are tried IPv6 and IPv4 alternately, IPv6 first (RFC 8305 §4), at
 *      most s2s.dns_max_addresses of them.
 *   4. When neither service has an SRV record (NXDOMAIN, no record of the type, or a
 *      failed query other than a timeout), the domain itself is asked for A and AAAA,
 *      port 5269, STARTTLS (RFC 6120 §3.2.2).
 * The domain is given in normal form (as jid_prep_domain() writes it, U-labels);
 * DNS is asked in A-labels (IDNA ToASCII). DNS names are never searched
 * (resolv.conf's "search" does not apply: a domain is absolute).
 *
 * Errors, as -errno:
 *   -ENOENT        the domain has no address: NXDOMAIN, or no A/AAAA record for any target
 *   -ECONNREFUSED  the domain publishes that it takes no server connections (SRV ".")
 *   -ETIMEDOUT     no answer from the DNS servers (s2s.dns_timeout, s2s.dns_tries)
 *   -EIO           the DNS servers failed (SERVFAIL, REFUSED, an unreadable answer)
 *   -EINVAL        the domain cannot be a DNS name (a label over 63 bytes, ...)
 *   -EAGAIN        the cache is full of lookups in flight (s2s.dns_cache_size): try later
 *   -ENOMEM
 * s2s answers -ETIMEDOUT and -EAGAIN with remote-server-timeout and the others with
 * remote-server-not-found (RFC 6120 §8.3.3).
 *
 * Cache. A resolver remembers up to s2s.dns_cache_size domains, least recently used
 * forgotten first, lookups in flight included (they are never forgotten). An answer is
 * remembered for the least TTL of the records it came from, at most s2s.dns_max_ttl;
 * -ENOENT and -ECONNREFUSED for s2s.dns_negative_ttl. Failures for want of an answer
 * (-ETIMEDOUT, -EIO, -ENOMEM) are not remembered, so the next stanza for the domain
 * asks again at once; an answer that one of its queries failed to complete (the
 * xmpps query timed out, say) is remembered at most s2s.dns_negative_ttl. Lookups of a
 * domain already in flight wait for the same queries: one domain is asked for once.
 *
 * Driving it. c-ares opens a UDP (or TCP) socket per DNS server and tells which it
 * wants watched for reading or writing; dns_watches() lists them, dns_timeout_ms() says
 * when dns_process() must run even if no socket is ready. An io_uring loop does:
 *
 *     // after each call of dns_resolve() or dns_process():
 *     n = dns_watches(r, &w);
 *     for each poll armed for a watch no longer in w[0..n) (by id and events):
 *         IORING_OP_POLL_REMOVE it   // the kernel holds the file: a poll on an fd that
 *                                    // c-ares closed would never complete
 *     for each w[i] not armed: IORING_OP_POLL_ADD, fd w[i].fd, poll32_events w[i].events,
 *                              user_data (DNS, w[i].id)
 *     ms = dns_timeout_ms(r); if ms >= 0: wake up within ms (IORING_OP_TIMEOUT, or the
 *                                         loop's own timer wheel)
 *     // on the CQE of a DNS poll (one-shot, so no longer armed):
 *     dns_process(r, fd of that id, cqe->res > 0 ? cqe->res : POLLERR);
 *     // when the timeout expires:
 *     dns_process(r, -1, 0);
 *
 * tests/unit/common/net/dns.c drives it the same way with poll(2). Completions
 * (dns_done_fn) run inside dns_process(), never inside dns_resolve().
 *
 * Ownership and threads. One resolver per thread: a struct dns, its results and its
 * lookups belong to the thread that made it (no locks, plain reference counts). The
 * caller owns each struct dns_lookup it passes (typically inside its own per-domain
 * object) and must keep it until its callback runs or it calls dns_cancel(). Every
 * result handed out (by dns_resolve() or a callback) is a reference the receiver owns
 * and drops with dns_result_free(); the cache holds its own.
 */
#ifndef STARLING_DNS_H
#define STARLING_DNS_H

#include "common/config/config.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_XMPP_SERVER_PORT 5269 /* RFC 6120 §3.2.2: the fallback port */

struct dns;

/* One address to try. */
struct dns_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr; /* with the port */
    socklen_t len;
    bool direct_tls;  /* TLS at once (xmpps); else STARTTLS */
    const char *host; /* the SRV target, the domain itself or the route, for logs; in the result */
};

/* A lookup's answer: at least one address, in the order to try them. Read-only. */
struct dns_result {
    uint32_t n;
    uint32_t refs_; /* private: see dns_result_ref() */
    struct dns_addr addr[];
};

struct dns_lookup;

/*
 * A lookup finished: err is 0 with res, a reference the callee now owns, or a negative
 * errno (see the top) with res NULL. l is no longer in use by the resolver. May call
 * any dns_* function but dns_free().
 */
typedef void dns_done_fn(struct dns_lookup *l, int err, struct dns_result *res);

/* A pending lookup; owned by the caller, who finds its own object from it (container_of). */
struct dns_lookup {
    dns_done_fn *done;
    struct dns_lookup *next_, *prev_; /* private: the query's waiters */
    struct dns_query *query_;         /* private: NULL when not pending */
};

/* Counters since dns_new(), for logs and tests. */
struct dns_stats {
    uint64_t lookups; /* dns_resolve() calls */
    uint64_t cached;  /* ... answered from the cache (an error included) */
    uint64_t routes;  /* ... answered by a static route or an IP literal */
    uint64_t joined;  /* ... that waited for a lookup of the same domain in flight */
    uint64_t queries; /* DNS queries sent (each SRV, A and AAAA question asked once) */
};

/*
 * A resolver with the s2s.* settings of c (routes, DNS servers, cache and limits; c is
 * not kept). Reads /etc/resolv.conf when s2s.dns_servers is empty. Returns 0 with *out,
 * or -ENOMEM, -EIO (c-ares could not start).
 */
int dns_new(const struct config *c, struct dns **out);

/* Frees the resolver and its cache. Pending lookups end without their callbacks; results
 * handed out stay valid until their owners free them. NULL is ignored. */
void dns_free(struct dns *r);

/*
 * Looks up the servers of domain (normal form, NUL-terminated). Returns
 *   0      answered now (a route, an IP literal, the cache): *out is a reference to the
 *          result; l is not used;
 *   1      pending: l->done will be called once from dns_process() (unless cancelled);
 *   < 0    failed now (a remembered -ENOENT or -ECONNREFUSED, or -EINVAL, -EAGAIN,
 *          -ENOMEM); *out is NULL.
 * l must not be pending already.
 */
int dns_resolve(struct dns *r, const char *domain, struct dns_lookup *l, dns_done_fn *done,
                struct dns_result **out);

/* Forgets a pending lookup (its callback will not run); the queries go on for the
 * cache and for other lookups of the domain. Does nothing when l is not pending. */
void dns_cancel(struct dns_lookup *l);

/* Another reference to res. */
struct dns_result *dns_result_ref(struct dns_result *res);

/* Drops a reference; NULL is ignored. */
void dns_result_free(struct dns_result *res);

/* A socket to watch: poll(2) / IORING_OP_POLL_ADD events (POLLIN, POLLOUT). The id is
 * new each time c-ares starts watching a socket, so a reused fd number is told apart. */
struct dns_watch {
    int fd;
    unsigned events;
    uint32_t id;
};

/* The sockets to watch now, in *w (valid until the next dns_* call); returns the count. */
size_t dns_watches(const struct dns *r, const struct dns_watch **w);

/* Milliseconds until dns_process() must run even with no socket ready (rounded up);
 * -1 when no query is in flight. */
int dns_timeout_ms(struct dns *r);

/*
 * Handles fd being ready with the poll(2) bits in revents (POLLERR and POLLHUP count as
 * readable), or with fd = -1 only the timeouts; runs the callbacks of the lookups that
 * finish. Calling it early or for an fd no longer watched is harmless.
 */
void dns_process(struct dns *r, int fd, unsigned revents);

const struct dns_stats *dns_stats(const struct dns *r);

#endif
