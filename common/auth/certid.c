/*
 * certid: one walk over a certificate's names (walk()) feeds both certid_each() and
 * certid_match(), so what is reported and what is matched cannot drift apart. Names are
 * normalised on the way (A-labels, lowercase, no trailing dot) and matching compares
 * normalised strings only.
 */
#include "common/auth/certid.h"

#include <errno.h>
#include <idna.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define HOST_MAX  253 /* a host name in A-labels, no trailing dot (RFC 1035 §2.3.4) */
#define LABEL_MAX 63
#define JID_MAX   3071 /* RFC 7622 §3.1: three parts of 1023 octets and two separators */
#define SRV_XMPP  "_xmpp-server."

/* The DER contents of id-on-xmppAddr (1.3.6.1.5.5.7.8.5) and id-on-dnsSRV (…8.7), for which
 * BoringSSL has no NID. */
static const uint8_t oid_xmpp[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05};
static const uint8_t oid_srv[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07};

static bool oid_is(const ASN1_OBJECT *o, const uint8_t *der, size_t n)
{
    return OBJ_length(o) == n && memcmp(OBJ_get0_data(o), der, n) == 0;
}

/* Valid UTF-8 with no C0 or C1 control character and no DEL. */
static bool utf8_printable(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
            return false;
        i += len;
    }
    return true;
}

/*
 * An ASCII host name s[0..n) lowercased into out, one trailing dot dropped: labels of
 * letters, digits and hyphens, 1 to 63 octets, 253 in all. With `wild`, the first label
 * may be "*" when at least two labels follow it. Returns the length or -1.
 */
static int host_norm(const char *s, size_t n, bool wild, char out[HOST_MAX + 1])
{
    size_t label = 0, dots = 0;
    bool star = false;

    if (n && s[n - 1] == '.')
        n--;
    if (n == 0 || n > HOST_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return -1;
            label = 0;
            dots++;
        } else if (ch == '*' && wild && i == 0 && n > 1 && s[1] == '.') {
            star = true;
            label = 1;
        } else {
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') ||
                ++label > LABEL_MAX)
                return -1;
        }
        out[i] = ch;
    }
    if (label == 0 || (star && dots < 2))
        return -1;
    out[n] = '\0';
    return (int)n;
}

/* A host name in UTF-8 (U-labels or A-labels) as host_norm() gives it: non-ASCII goes
 * through IDNA2003 ToASCII (nameprep included), as jid.h normalises domains. */
static int name_prep(const char *s, size_t n, bool wild, char out[HOST_MAX + 1])
{
    char in[JID_MAX + 1];
    char *ace = NULL;
    bool ascii = true;
    int rc;

    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            ascii = false;
    if (ascii)
        return host_norm(s, n, wild, out);
    if (n > JID_MAX || !utf8_printable((const uint8_t *)s, n))
        return -1;
    memcpy(in, s, n);
    in[n] = '\0';
    rc = idna_to_ascii_8z(in, &ace, 0) == IDNA_SUCCESS ? host_norm(ace, strlen(ace), wild, out)
                                                       : -1;
    free(ace);
    return rc;
}

/* An ASN.1 string of the given type without NUL, or NULL. */
static const char *str_of(const ASN1_STRING *a, int type, size_t *n)
{
    if (!a || ASN1_STRING_type(a) != type)
        return NULL;
    *n = (size_t)ASN1_STRING_length(a);
    const char *p = (const char *)ASN1_STRING_get0_data(a);
    return memchr(p, '\0', *n) ? NULL : p;
}

/* A dNSName: printable ASCII (IA5String may hold any 7-bit byte). */
static int dns_id(const ASN1_IA5STRING *a, char out[HOST_MAX + 1])
{
    size_t n;
    const char *p = str_of(a, V_ASN1_IA5STRING, &n);
    return p ? host_norm(p, n, true, out) : -1;
}

/* "_service.host", the service lowercased, the host normalised; no wildcard (RFC 4985). */
static int srv_id(const ASN1_TYPE *v, char out[LABEL_MAX + 2 + HOST_MAX + 1])
{
    size_t n, svc;
    const char *p = v && v->type == V_ASN1_IA5STRING
                        ? str_of(v->value.ia5string, V_ASN1_IA5STRING, &n)
                        : NULL;
    const char *dot = p ? memchr(p, '.', n) : NULL;

    if (!dot || p[0] != '_')
        return -1;
    svc = (size_t)(dot - p);
    if (svc < 2 || svc > LABEL_MAX + 1)
        return -1;
    for (size_t i = 0; i <= svc; i++) {
        char ch = p[i];
        if (i > 0 && i < svc && !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                  (ch >= '0' && ch <= '9') || ch == '-'))
            return -1;
        out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    return host_norm(dot + 1, n - svc - 1, false, out + svc + 1) < 0 ? -1 : 0;
}

/* An XmppAddr: the JID as written, if it is printable UTF-8. */
static int xmpp_id(const ASN1_TYPE *v, char out[JID_MAX + 1])
{
    size_t n;
    const char *p = v && v->type == V_ASN1_UTF8STRING
                        ? str_of(v->value.utf8string, V_ASN1_UTF8STRING, &n)
                        : NULL;
    if (!p || n == 0 || n > JID_MAX || !utf8_printable((const uint8_t *)p, n))
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* A commonName in any string type, as a host name that may begin with a wildcard. */
static int cn_id(X509_NAME_ENTRY *e, char out[HOST_MAX + 1])
{
    uint8_t *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
    int rc = n > 0 && !memchr(u, '\0', (size_t)n) ? name_prep((const char *)u, (size_t)n, true, out)
                                                  : -1;
    OPENSSL_free(u);
    return rc;
}

/*
 * Every name of x that could match, normalised, to fn; see certid_each(). The commonName
 * counts only when the subjectAltName holds no DNS-ID, SRV-ID or XmppAddr, whether or not
 * those parse: a certificate that has them must not be judged by its subject. A
 * subjectAltName that is present but does not decode gives no name at all.
 */
static int walk(X509 *x, certid_fn fn, void *ud)
{
    char buf[JID_MAX + 1];
    bool has_san = X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0, typed = false;
    int crit, calls = 0, rc = 0;
    GENERAL_NAMES *gens = has_san ? X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL) : NULL;

    if (has_san && !gens)
        return 0;
    for (size_t i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        enum certid_kind kind;
        int ok = -1;
        if (g->type == GEN_DNS) {
            typed = true;
            kind = CERTID_DNS;
            ok = dns_id(g->d.dNSName, buf);
        } else if (g->type == GEN_OTHERNAME && oid_is(g->d.otherName->type_id, oid_srv,
                                                      sizeof oid_srv)) {
            typed = true;
            kind = CERTID_SRV;
            ok = srv_id(g->d.otherName->value, buf);
        } else if (g->type == GEN_OTHERNAME && oid_is(g->d.otherName->type_id, oid_xmpp,
                                                      sizeof oid_xmpp)) {
            typed = true;
            kind = CERTID_XMPP;
            ok = xmpp_id(g->d.otherName->value, buf);
        }
        if (ok >= 0) {
            calls++;
            rc = fn(ud, kind, buf);
        }
    }
    GENERAL_NAMES_free(gens);
    if (rc == 0 && !typed) {
        X509_NAME *subject = X509_get_subject_name(x);
        for (int i = -1; rc == 0 && (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
            if (cn_id(X509_NAME_get_entry(subject, i), buf) >= 0) {
                calls++;
                rc = fn(ud, CERTID_CN, buf);
            }
        }
    }
    return calls;
}

int certid_each(const uint8_t *der, size_t len, certid_fn fn, void *ud)
{
    const uint8_t *p = der;
    X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (!x || p != der + len) {
        X509_free(x);
        return -EINVAL;
    }
    int rc = walk(x, fn, ud);
    X509_free(x);
    return rc;
}

/* RFC 6125 §6.4.3 as RFC 9525 §6.3 tightens it: "*" is the whole leftmost label and
 * stands for exactly one non-empty label; host_norm() admitted no other wildcard. */
static bool host_match(const char *presented, const char *ref)
{
    if (presented[0] != '*')
        return strcmp(presented, ref) == 0;
    const char *dot = strchr(ref, '.');
    return dot && strcmp(dot + 1, presented + 2) == 0;
}

struct match {
    const char *ref;
    bool hit;
};

static int match_one(void *ud, enum certid_kind kind, const char *name)
{
    struct match *m = ud;
    char d[HOST_MAX + 1];

    switch (kind) {
    case CERTID_DNS:
    case CERTID_CN:
        m->hit = host_match(name, m->ref);
        break;
    case CERTID_SRV:
        m->hit = strncmp(name, SRV_XMPP, sizeof SRV_XMPP - 1) == 0 &&
                 strcmp(name + sizeof SRV_XMPP - 1, m->ref) == 0;
        break;
    case CERTID_XMPP:
        m->hit = !strpbrk(name, "@/") && name_prep(name, strlen(name), false, d) >= 0 &&
                 strcmp(d, m->ref) == 0;
        break;
    }
    return m->hit;
}

bool certid_match(const uint8_t *der, size_t len, const char *domain)
{
    char ref[HOST_MAX + 1];
    int n = domain ? name_prep(domain, strlen(domain), false, ref) : -1;

    if (n < 0)
        return false;
    /* No top-level domain is all digits: this is an IPv4 literal (an IPv6 one already
     * failed the host name syntax). */
    const char *last = strrchr(ref, '.');
    if (strspn(last ? last + 1 : ref, "0123456789") == strlen(last ? last + 1 : ref))
        return false;
    struct match m = {.ref = ref};
    return certid_each(der, len, match_one, &m) >= 0 && m.hit;
}

const char *certid_kind_name(enum certid_kind kind)
{
    switch (kind) {
    case CERTID_DNS:
        return "DNS";
    case CERTID_SRV:
        return "SRV";
    case CERTID_XMPP:
        return "XmppAddr";
    case CERTID_CN:
        return "CN";
    }
    return "?";
}
