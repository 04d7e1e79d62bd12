/*
 * jid.c: see jid.h for the contract. Two paths per part: pure ASCII is folded here by hand, the
 * rest goes through libidn. The ASCII path must give byte-identical results to libidn on the
 * same input; jid_parse_slow() exists so the unit test and the fuzz driver can check that.
 */
#define JID_TEST_API
#include "common/xmpp/jid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <idna.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/*
 * Longest part handed to libidn. stringprep can shrink its input without limit (U+00AD and
 * friends map to nothing), so no input length is provably too long; 4 bytes per output byte is
 * far more than any sane JID needs, and bounds the stack scratch.
 */
#define JID_PREP_IN_MAX (4 * JID_PART_MAX)
#define JID_LABEL_MAX   63 /* bytes of a domain label in ACE form (RFC 1035) */

/* Internal only: the ASCII fast path met something it leaves to libidn (an A-label). */
#define JID_SLOW_PATH (-EAGAIN)

#define JID_BIT(c) (UINT64_C(1) << ((unsigned)(c) % 64))

/*
 * ASCII the profiles refuse, as 128-bit sets. Localpart: nodeprep's RFC 6122 §A.5 list plus
 * space (C.1.1) and controls (C.2.1). Resourcepart: controls only (C.2.1); space is allowed.
 */
static const uint64_t jid_local_bad[2] = {
    UINT64_C(0x1ffffffff) /* 0x00..0x20 */ | JID_BIT('"') | JID_BIT('&') | JID_BIT('\'') |
        JID_BIT('/') | JID_BIT(':') | JID_BIT('<') | JID_BIT('>'),
    JID_BIT('@') | JID_BIT(0x7f),
};
static const uint64_t jid_res_bad[2] = {UINT64_C(0xffffffff), JID_BIT(0x7f)};

static inline bool jid_in_set(const uint64_t set[2], unsigned char c)
{
    return c < 128 && (set[c / 64] >> (c % 64) & 1);
}

static inline char jid_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* ASCII allowed in a domain label once lowercased; '.' separates labels and is not one. */
static inline bool jid_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool jid_ascii(const char *s, size_t n)
{
    unsigned char acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= (unsigned char)s[i];
    return acc < 0x80;
}

/*
 * Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) and no
 * NUL: libidn reads C strings, so a NUL would silently cut the part short.
 */
static bool jid_utf8_ok(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t k;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c == 0xe0)
            k = 2, lo = 0xa0;
        else if (c == 0xed)
            k = 2, hi = 0x9f;
        else if (c >= 0xe1 && c <= 0xef)
            k = 2;
        else if (c == 0xf0)
            k = 3, lo = 0x90;
        else if (c == 0xf4)
            k = 3, hi = 0x8f;
        else if (c >= 0xf1 && c <= 0xf3)
            k = 3;
        else
            return false;
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t m = 2; m <= k; m++)
            if ((s[i + m] & 0xc0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

/* Length of the IDNA2003 label separator at p (U+002E, U+3002, U+FF0E, U+FF61), or 0. */
static size_t jid_dot_len(const char *p, size_t left)
{
    if (p[0] == '.')
        return 1;
    if (left >= 3 && (!memcmp(p, "\xe3\x80\x82", 3) || !memcmp(p, "\xef\xbc\x8e", 3) ||
                      !memcmp(p, "\xef\xbd\xa1", 3)))
        return 3;
    return 0;
}

static int jid_idn_err(int rc, int malloc_rc)
{
    return rc == malloc_rc ? -ENOMEM : -EINVAL;
}

/* ---- localpart and resourcepart ---------------------------------------------------------- */

/* ASCII: nodeprep is "lowercase A-Z, refuse the bad set"; resourceprep is "refuse controls". */
static int jid_part_fast(const char *in, size_t len, char *out, size_t cap, const uint64_t bad[2],
                         bool fold)
{
    if (len > JID_PART_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (jid_in_set(bad, (unsigned char)in[i]))
            return -EINVAL;
    if (len + 1 > cap)
        return -ENOSPC;
    for (size_t i = 0; i < len; i++)
        out[i] = fold ? jid_lower(in[i]) : in[i];
    out[len] = '\0';
    return (int)len;
}

static int jid_part_slow(const char *in, size_t len, char *out, size_t cap,
                         const Stringprep_profile *profile, const uint64_t bad[2])
{
    char s[JID_PREP_IN_MAX + 1];
    size_t n;
    int rc;

    if (len > JID_PREP_IN_MAX || !jid_utf8_ok(in, len))
        return -EINVAL;
    memcpy(s, in, len);
    s[len] = '\0';
    rc = stringprep(s, sizeof s, 0, profile);
    if (rc != STRINGPREP_OK)
        return jid_idn_err(rc, STRINGPREP_MALLOC_ERROR);
    n = strlen(s);
    if (n == 0 || n > JID_PART_MAX)
        return -EINVAL;
    /* The profiles already prohibit these; checked again so the rule holds whatever libidn does. */
    for (size_t i = 0; i < n; i++)
        if (jid_in_set(bad, (unsigned char)s[i]))
            return -EINVAL;
    if (n + 1 > cap)
        return -ENOSPC;
    memcpy(out, s, n + 1);
    return (int)n;
}

/*
 * The fast path may only judge a part it sees whole as ASCII: "<" alone is refused, but "<"
 * followed by U+0338 is NFKC'd to the allowed "≮".
 */
static int jid_local(const char *in, size_t len, char *out, size_t cap, bool fast)
{
    if (len == 0)
        return -EINVAL;
    if (fast && jid_ascii(in, len))
        return jid_part_fast(in, len, out, cap, jid_local_bad, true);
    return jid_part_slow(in, len, out, cap, stringprep_xmpp_nodeprep, jid_local_bad);
}

static int jid_resource(const char *in, size_t len, char *out, size_t cap, bool fast)
{
    if (len == 0)
        return -EINVAL;
    if (fast && jid_ascii(in, len))
        return jid_part_fast(in, len, out, cap, jid_res_bad, false);
    return jid_part_slow(in, len, out, cap, stringprep_xmpp_resourceprep, jid_res_bad);
}

int jid_prep_local(const char *in, size_t len, char *out, size_t cap)
{
    return jid_local(in, len, out, cap, true);
}

int jid_prep_resource(const char *in, size_t len, char *out, size_t cap)
{
    return jid_resource(in, len, out, cap, true);
}

/* ---- domainpart --------------------------------------------------------------------------- */

/*
 * "[IPv6]" or a dotted quad: returns the length of the inet_ntop() form written to out, 0 when
 * in is not an IP literal (it may still be a host name), or -errno. An IPv6 literal is written
 * canonical so "[::1]" and "[0::1]" are one JID.
 */
static int jid_ip_literal(const char *in, size_t len, char *out, size_t cap)
{
    char tmp[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    int v6 = len >= 2 && in[0] == '[' && in[len - 1] == ']';
    size_t n;

    if (v6) {
        if (len - 2 >= sizeof tmp)
            return -EINVAL;
        memcpy(tmp, in + 1, len - 2);
        tmp[len - 2] = '\0';
        if (inet_pton(AF_INET6, tmp, addr) != 1)
            return -EINVAL;
    } else {
        if (len >= sizeof tmp)
            return 0;
        for (size_t i = 0; i < len; i++)
            if (in[i] != '.' && (in[i] < '0' || in[i] > '9'))
                return 0;
        memcpy(tmp, in, len);
        tmp[len] = '\0';
        if (inet_pton(AF_INET, tmp, addr) != 1)
            return 0;
    }
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, addr, canon, sizeof canon))
        return -EINVAL;
    n = strlen(canon) + (v6 ? 2 : 0);
    if (n + 1 > cap)
        return -ENOSPC;
    if (v6) {
        out[0] = '[';
        memcpy(out + 1, canon, n - 2);
        out[n - 1] = ']';
        out[n] = '\0';
    } else {
        memcpy(out, canon, n + 1);
    }
    return (int)n;
}

static bool jid_is_ace(const char *label, size_t len)
{
    return len >= 4 && jid_lower(label[0]) == 'x' && jid_lower(label[1]) == 'n' &&
           label[2] == '-' && label[3] == '-';
}

/*
 * ASCII domain without the trailing dot: nameprep is lowercasing here. An A-label needs libidn
 * to decode, so the whole domain goes the slow way (JID_SLOW_PATH). Judging labels one by one
 * and stopping at the first bad one is safe: for ASCII input libidn judges each non-ACE label
 * the same way, and one bad label makes the domain invalid on both paths. The length is judged
 * last because a U-label is shorter than its A-label: an ASCII domain over JID_PART_MAX bytes
 * may still be valid.
 */
static int jid_domain_fast(const char *in, size_t len, char *out, size_t cap)
{
    bool room = len + 1 <= cap;
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || in[i] == '.') {
            if (i == start || i - start > JID_LABEL_MAX)
                return -EINVAL;
            if (jid_is_ace(in + start, i - start))
                return JID_SLOW_PATH;
            if (room && i < len)
                out[i] = '.';
            start = i + 1;
            continue;
        }
        char c = jid_lower(in[i]);
        if (!jid_label_char(c))
            return -EINVAL;
        if (room)
            out[i] = c;
    }
    if (len > JID_PART_MAX)
        return -EINVAL;
    if (!room)
        return -ENOSPC;
    out[len] = '\0';
    return (int)len;
}

static int jid_label_slow(const char *in, size_t len, char *out, size_t room);

/*
 * An A-label ("xn--", lowercase) becomes its U-label. ToUnicode never fails in libidn: a label
 * that does not decode and round-trip comes back unchanged, which is how a fake A-label shows.
 * A real one decodes to something non-ASCII (else it would not round-trip), so the recursion
 * below ends there. The U-label goes through the label rules again so that the output is a fixed
 * point: parsing it gives it back, and it hashes like the A-label it came from.
 */
static int jid_alabel(const char *label, char *out, size_t room)
{
    char *u = NULL;
    int rc = idna_to_unicode_8z8z(label, &u, 0);

    if (rc != IDNA_SUCCESS) {
        rc = jid_idn_err(rc, IDNA_MALLOC_ERROR);
        goto out_free;
    }
    if (!strcmp(u, label) || jid_ascii(u, strlen(u))) {
        rc = -EINVAL;
        goto out_free;
    }
    rc = jid_label_slow(u, strlen(u), out, room);
out_free:
    free(u);
    return rc;
}

/*
 * One label through nameprep and the label rules, appended at out (room bytes left of the
 * domain's JID_PART_MAX). Returns its length or -errno; running out of room is -EINVAL, since
 * room is the limit on the part, not on the caller's buffer.
 */
static int jid_label_slow(const char *in, size_t len, char *out, size_t room)
{
    char s[JID_PART_MAX + 1];
    bool ascii = true;
    size_t n;
    int rc;

    if (len == 0 || len >= sizeof s)
        return -EINVAL;
    memcpy(s, in, len);
    s[len] = '\0';
    rc = stringprep(s, sizeof s, 0, stringprep_nameprep);
    if (rc != STRINGPREP_OK)
        return jid_idn_err(rc, STRINGPREP_MALLOC_ERROR);
    n = strlen(s);
    if (n == 0)
        return -EINVAL;
    /*
     * NFKC can make a dot ("․" U+2024 is "."): refusing it keeps the label structure of the
     * input, where IDNA2003 would quietly split. A surviving U+3002 would be split on re-parse.
     */
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80)
            ascii = false;
        else if (!jid_label_char(s[i]))
            return -EINVAL;
    }
    if (strstr(s, "\xe3\x80\x82"))
        return -EINVAL;
    if (ascii && jid_is_ace(s, n))
        return jid_alabel(s, out, room);
    if (ascii && n > JID_LABEL_MAX)
        return -EINVAL;
    if (!ascii) {
        char *ace = NULL;

        rc = idna_to_ascii_8z(s, &ace, 0);
        if (rc == IDNA_SUCCESS && (strlen(ace) == 0 || strlen(ace) > JID_LABEL_MAX))
            rc = IDNA_INVALID_LENGTH;
        free(ace);
        if (rc != IDNA_SUCCESS)
            return jid_idn_err(rc, IDNA_MALLOC_ERROR);
    }
    if (n > room)
        return -EINVAL;
    memcpy(out, s, n);
    return (int)n;
}

/*
 * Labels are split before nameprep, as IDNA2003 does, and prepped one by one: nameprep's bidi
 * rule applies per label, so "אב.example" is valid although its whole string mixes RTL and LTR.
 * `stripped`: the caller already dropped a trailing '.', so no other trailing dot is dropped.
 */
static int jid_domain_slow(const char *in, size_t len, bool stripped, char *out, size_t cap)
{
    char d[JID_PART_MAX + 1];
    size_t n = 0, i = 0;

    if (len > JID_PREP_IN_MAX || !jid_utf8_ok(in, len))
        return -EINVAL;
    if (!stripped && len > 3 && jid_dot_len(in + len - 3, 3) == 3)
        len -= 3;
    for (;;) {
        size_t start = i, dot = 0;
        int rc;

        while (i < len && !(dot = jid_dot_len(in + i, len - i)))
            i++;
        rc = jid_label_slow(in + start, i - start, d + n, JID_PART_MAX - n);
        if (rc < 0)
            return rc;
        n += (size_t)rc;
        if (i == len)
            break;
        if (n + 1 > JID_PART_MAX)
            return -EINVAL;
        d[n++] = '.';
        i += dot;
    }
    if (n + 1 > cap)
        return -ENOSPC;
    memcpy(out, d, n);
    out[n] = '\0';
    return (int)n;
}

static int jid_domain(const char *in, size_t len, char *out, size_t cap, bool fast)
{
    bool stripped = false;
    int rc;

    if (len && in[len - 1] == '.') {
        len--;
        stripped = true;
    }
    if (len == 0)
        return -EINVAL;
    rc = jid_ip_literal(in, len, out, cap);
    if (rc != 0)
        return rc;
    if (fast && jid_ascii(in, len)) {
        rc = jid_domain_fast(in, len, out, cap);
        if (rc != JID_SLOW_PATH)
            return rc;
    }
    return jid_domain_slow(in, len, stripped, out, cap);
}

int jid_prep_domain(const char *in, size_t len, char *out, size_t cap)
{
    return jid_domain(in, len, out, cap, true);
}

/* ---- whole JIDs ----------------------------------------------------------------------------- */

static int jid_parse_mode(struct jid *j, const char *in, size_t len, char *buf, size_t cap,
                          bool fast)
{
    const char *slash, *at, *dom;
    size_t pre, dom_len, n = 0;
    int rc;

    /*
     * With less than JID_BUF, work in a scratch copy: a part that does not fit must not hide
     * that a later part is invalid (-EINVAL wins over -ENOSPC).
     */
    if (cap < JID_BUF) {
        char tmp[JID_BUF];

        rc = jid_parse_mode(j, in, len, tmp, sizeof tmp, fast);
        if (rc < 0)
            return rc;
        if ((size_t)j->len + 1 > cap)
            return -ENOSPC;
        memcpy(buf, tmp, (size_t)j->len + 1);
        j->str = buf;
        return 0;
    }
    if (len == 0)
        return -EINVAL;
    /* RFC 7622 §3.1: the first '/' starts the resource; only an '@' before it ends the local. */
    slash = memchr(in, '/', len);
    pre = slash ? (size_t)(slash - in) : len;
    at = memchr(in, '@', pre);
    dom = at ? at + 1 : in;
    dom_len = pre - (size_t)(dom - in);

    if (at) {
        rc = jid_local(in, (size_t)(at - in), buf, cap, fast);
        if (rc < 0)
            return rc;
        n = (size_t)rc;
        buf[n++] = '@';
    }
    j->local_len = (uint16_t)(at ? n - 1 : 0);
    j->domain_off = (uint16_t)n;
    rc = jid_domain(dom, dom_len, buf + n, cap - n, fast);
    if (rc < 0)
        return rc;
    j->domain_len = (uint16_t)rc;
    n += (size_t)rc;
    if (slash) {
        buf[n++] = '/';
        rc = jid_resource(slash + 1, len - pre - 1, buf + n, cap - n, fast);
        if (rc < 0)
            return rc;
        j->res_off = (uint16_t)n;
        j->res_len = (uint16_t)rc;
        n += (size_t)rc;
    } else {
        j->res_off = (uint16_t)n;
        j->res_len = 0;
    }
    j->str = buf;
    j->len = (uint16_t)n;
    return 0;
}

int jid_parse(struct jid *j, const char *in, size_t len, char *buf, size_t cap)
{
    return jid_parse_mode(j, in, len, buf, cap, true);
}

int jid_parse_slow(struct jid *j, const char *in, size_t len, char *buf, size_t cap)
{
    return jid_parse_mode(j, in, len, buf, cap, false);
}

bool jid_eq_bare(const struct jid *a, const struct jid *b)
{
    size_t n = jid_bare_len(a);

    return n == jid_bare_len(b) && !memcmp(a->str, b->str, n);
}

bool jid_eq_full(const struct jid *a, const struct jid *b)
{
    return a->len == b->len && !memcmp(a->str, b->str, a->len);
}

uint64_t jid_hash(const char *s, size_t len)
{
    return XXH3_64bits(s, len);
}

uint64_t jid_hash_bare(const struct jid *j)
{
    return XXH3_64bits(j->str, jid_bare_len(j));
}
