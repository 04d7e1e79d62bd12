/*
 * addr: a peer's IP address and port as the front ends keep it, and the address prefixes
 * ("10.0.0.0/8", "::1/128") a directive lists (c2s.proxy_from: who may send a PROXY
 * protocol header).
 *
 * An IPv4 address reached over an IPv6 socket (an IPv4-mapped address, ::ffff:a.b.c.d)
 * is kept as the IPv4 address it is: a prefix, a log line and the per-address limits
 * see one form only.
 *
 * No state, no allocation: any thread may call anything here.
 */
#ifndef STARLING_NET_ADDR_H
#define STARLING_NET_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address and port; sa.sa_family AF_UNSPEC (all zero) when unknown. */
union net_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Bytes net_addr_text() needs at most: "[" INET6 "]:65535" and the NUL. */
#define NET_ADDR_TEXT (INET6_ADDRSTRLEN + 9)

/* The peer of socket fd into *a, IPv4-mapped addresses unmapped: 0, or -errno (and *a
 * all zero) when it has none that is IP (a Unix socket, not a socket). */
int net_addr_peer(int fd, union net_addr *a);

/* An IPv4-mapped IPv6 address becomes its IPv4 address (port kept); others unchanged. */
void net_addr_unmap(union net_addr *a);

/* "192.0.2.1:5222", "[2001:db8::1]:5222", or "-" for AF_UNSPEC; written into buf of at
 * least NET_ADDR_TEXT bytes, which it returns (for a log line's argument). */
const char *net_addr_text(const union net_addr *a, char *buf);

/* A prefix: the first `bits` bits of an IPv4 or IPv6 address. */
struct net_prefix {
    char text[INET6_ADDRSTRLEN + 4]; /* its normal form: "10.0.0.0/8", "::1/128" */
    uint8_t family;                  /* AF_INET or AF_INET6 */
    uint8_t bits;                    /* 0..32 or 0..128 */
    uint8_t addr[16];                /* network order; bits past the prefix are 0 */
};

/*
 * Reads "ADDRESS" (a whole address: /32 or /128) or "ADDRESS/BITS", the address an IPv4
 * dotted quad or an IPv6 literal without brackets, into *p. An address with bits set past
 * the prefix ("10.0.0.1/8") is refused: it reads as a mistake for a host or for
 * "10.0.0.0/8", and which one cannot be guessed. -EINVAL with a reason in why (always
 * NUL-terminated when n > 0), or 0.
 */
int net_prefix_parse(const char *s, struct net_prefix *p, char *why, size_t n);

/* Is a within p? An address of the other family never is. */
bool net_prefix_match(const struct net_prefix *p, const union net_addr *a);

#endif
