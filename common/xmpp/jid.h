/*
 * jid: XMPP addresses ("local@domain/resource"), parsed and normalised once, at the edge.
 *
 * Every JID that enters the server (a stanza's to/from, a bound resource, a roster item) goes
 * through jid_parse(); from then on a JID is its normalised string plus offsets, so equality is
 * memcmp() and the shard key is a hash of bytes. Splitting follows RFC 7622 §3.1: the resource
 * is everything after the first '/', the localpart everything before the first '@' that comes
 * before that '/'. Each part is 1..JID_PART_MAX bytes after normalisation.
 *
 * Normalisation uses the RFC 6122 stringprep profiles through libidn, not RFC 7622's PRECIS
 * classes: a decided design choice (libidn is what Debian ships and what the XMPP servers we
 * federate with still use). So: localpart = nodeprep, resourcepart = resourceprep, domainpart =
 * IDNA2003 nameprep per label. Consequences worth knowing, all pinned by tests/unit/common/xmpp/jid.c:
 *   - nodeprep case-folds hard: "fußball" is "fussball", final "ς" is "σ", "henryⅣ" is "henryiv";
 *   - NFKC runs before the prohibition check, so "<" + U+0338 is the allowed "≮", and a
 *     resource may start with a space (" foo"), which PRECIS would refuse;
 *   - code points unassigned in Unicode 3.2 (emoji, say) are allowed in local and resource parts
 *     (libidn's default, as Prosody and jabberd2 do) but not in a domain (IDNA2003 ToASCII).
 * Domain rules on top of nameprep: one trailing dot is dropped; "[IPv6]" and dotted-quad IPv4
 * literals skip nameprep and are written in inet_ntop() form; otherwise labels are split at
 * U+002E, U+3002, U+FF0E and U+FF61 (IDNA2003 dots), every label is 1..63 bytes in ACE form,
 * ASCII in a label is limited to [a-z0-9-_], and an A-label ("xn--...") is decoded to its
 * U-label (RFC 7622 §3.2.2) so both spellings of a domain compare and hash equal; a fake
 * A-label that does not round-trip is invalid.
 *
 * A part made only of ASCII never reaches libidn: it is folded by hand, with no allocation.
 * Non-ASCII parts call libidn, which allocates internally (hence -ENOMEM). Inputs are byte
 * spans, not C strings; invalid UTF-8 and NUL bytes are invalid JIDs.
 *
 * Ownership: struct jid points into the caller's buffer and owns nothing; it stays valid as long
 * as that buffer does. All functions are pure functions of their arguments (libidn keeps no
 * global state): any thread of any process may call them.
 */
#ifndef STARLING_COMMON_JID_H
#define STARLING_COMMON_JID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JID_PART_MAX 1023                   /* bytes, per part, after normalisation */
#define JID_BUF      (3 * JID_PART_MAX + 3) /* room for "local@domain/resource" + NUL */

struct jid;

/*
 * Parses and normalises in[0..len) (need not be NUL-terminated) into buf (cap bytes; JID_BUF is
 * always enough) and fills *j, whose str then points at buf.
 * Returns 0; -EINVAL when the JID is invalid (the caller answers jid-malformed), which takes
 * precedence over -ENOSPC when cap is too small for a valid JID's normalised form; -ENOMEM when
 * libidn could not allocate. On error *j and buf hold nothing useful.
 */
int jid_parse(struct jid *j, const char *in, size_t len, char *buf, size_t cap);

/*
 * One part alone (resource binding preps the client's requested resource, a roster import the
 * domain, ...): writes the normalised part to out, NUL-terminated, and returns its length
 * (1..JID_PART_MAX), or as jid_parse() -EINVAL, -ENOSPC (cap < length + 1, and never for an
 * invalid part) or -ENOMEM. The domain follows every domain rule above, trailing dot and IP
 * literals included.
 */
int jid_prep_local(const char *in, size_t len, char *out, size_t cap);
int jid_prep_domain(const char *in, size_t len, char *out, size_t cap);
int jid_prep_resource(const char *in, size_t len, char *out, size_t cap);

/* str[0..jid_bare_len(j)) is the bare JID "local@domain". */
static inline size_t jid_bare_len(const struct jid *j);
/* True when the JID has no resource. */
static inline bool jid_is_bare(const struct jid *j);

/* Equality of normalised JIDs: bare ignores the resources, full compares them too. */
bool jid_eq_bare(const struct jid *a, const struct jid *b);
bool jid_eq_full(const struct jid *a, const struct jid *b);

/*
 * XXH3 64-bit (seed 0) of the normalised bare JID: the shard key. It is stable across processes,
 * builds and restarts, so it may be stored and sent through shared memory.
 */
uint64_t jid_hash_bare(const struct jid *j);
/* The same hash of an already normalised span: jid_hash_bare(j) == jid_hash(j->str, bare_len). */
uint64_t jid_hash(const char *s, size_t len);

#ifdef JID_TEST_API
/*
 * For tests and the fuzz driver only: jid_parse() with every part sent through libidn, pure
 * ASCII included, so the hand-written ASCII fast path can be checked byte for byte against it.
 */
int jid_parse_slow(struct jid *j, const char *in, size_t len, char *buf, size_t cap);
#endif

/* ---- layout and inline bodies ----------------------------------------------------------- */

/*
 * Offsets into str. No localpart: local_len = 0 and domain_off = 0. No resource: res_len = 0
 * and res_off = len. Otherwise str[local_len] is '@' and str[res_off - 1] is '/'.
 * uint16_t is enough: the longest normalised JID is 3 * JID_PART_MAX + 2 bytes.
 */
struct jid {
    const char *str;    /* normalised "local@domain/resource", NUL-terminated, in caller's buffer */
    uint16_t len;       /* strlen(str) */
    uint16_t local_len; /* 0: no localpart */
    uint16_t domain_off, domain_len;
    uint16_t res_off, res_len; /* res_len 0: bare JID */
};

static inline size_t jid_bare_len(const struct jid *j)
{
    return j->res_len ? (size_t)j->res_off - 1 : j->len;
}

static inline bool jid_is_bare(const struct jid *j)
{
    return j->res_len == 0;
}

#endif
