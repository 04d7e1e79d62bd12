/*
 * proxy: the header of the PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and
 * 2), which a load balancer writes at the start of each connection it opens to us to say
 * whom it carries: the client's address and port. Decoding only, no I/O: the front-end
 * layer hands it what a connection sent so far (common/fe/proxy.c); the fuzz driver
 * (fuzz/proxy.c) hands it anything.
 *
 * Which version is told by the first bytes: "PROXY " for version 1 (a text line), the
 * twelve bytes "\r\n\r\n\0\r\nQUIT\n" for version 2 (binary). Anything else is invalid at
 * once: a connection that must start with a header and does not is not a balancer's.
 *
 *   v1  "PROXY TCP4 SRC DST SPORT DPORT\r\n", TCP6 alike, or "PROXY UNKNOWN...\r\n"; at
 *       most PROXY_V1_MAX bytes, CR LF included (the specification's own bound). Fields
 *       are separated by one space; addresses as inet_pton() reads them, ports decimal
 *       without leading zeros; nothing but printable ASCII before the CR.
 *   v2  the signature, a version-and-command byte (0x20 LOCAL, 0x21 PROXY), a family-and-
 *       transport byte, a 16-bit big-endian length, then that many bytes: the addresses
 *       (12 bytes for TCP over IPv4, 36 over IPv6, 216 for Unix sockets), then TLVs, which
 *       are skipped but must fill the rest exactly. The whole header may be at most
 *       `max_v2` bytes (the caller's bound: the format's own is 16 + 65535); a longer one
 *       is invalid as soon as its length field has arrived.
 *
 * What it says about the address. PROXY over TCP (v1 TCP4 and TCP6, v2 PROXY with TCP
 * over IPv4 or IPv6) names the client: has_addr, src. Everything else keeps the
 * connection's own address (has_addr false): v2 LOCAL (the balancer's own connections,
 * HAProxy's health checks), v1 UNKNOWN, v2 PROXY over UNSPEC, UDP or a Unix socket
 * (nothing a TCP client behind it could be named by).
 *
 * Any thread may call it; it keeps no state between calls, so a caller that received
 * part of a header calls it again with everything so far.
 */
#ifndef STARLING_NET_PROXY_H
#define STARLING_NET_PROXY_H

#include "common/net/addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX   107   /* bytes of a v1 line, CR LF included */
#define PROXY_V2_FIXED 16    /* bytes of v2's signature, command, family and length */
#define PROXY_V2_MAX   65551 /* PROXY_V2_FIXED + the largest length field */

enum proxy_status {
    PROXY_INCOMPLETE, /* a header so far: more bytes are needed */
    PROXY_DONE,       /* a whole header: *h says what it holds */
    PROXY_INVALID,    /* not a header, or a broken one: h->why says how */
};

struct proxy_header {
    uint32_t len;        /* PROXY_DONE: bytes of the header; what follows is the client's */
    uint8_t version;     /* 1 or 2, once the signature is known */
    bool has_addr;       /* PROXY_DONE: src and dst name the client and where it connected */
    union net_addr src;  /* the client's address and port, as the header wrote it */
    union net_addr dst;  /* the address the client connected to (the balancer's) */
    const char *why;     /* PROXY_INVALID: a static string for a log line */
};

/* Decodes the header at the start of p[0..n). See the top of this file. */
enum proxy_status proxy_parse(const void *p, size_t n, size_t max_v2, struct proxy_header *h);

#endif
