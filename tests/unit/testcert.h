/*
 * testcert.h: certificates made at test time with BoringSSL's X509 API (nothing committed,
 * and none of common/auth/tls_cert.c, so that a mistake there cannot hide one in what it is
 * checked with), and the RFC 6125 name-matching cases that two tests run: certid's on the
 * DER itself, tls's on the certificate a real handshake delivered.
 */
#ifndef STARLING_TESTCERT_H
#define STARLING_TESTCERT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct testcert_spec {
    const char *cn; /* subject commonName; NULL: none */
    /* subjectAltNames: "DNS:x", "SRV:_service.x", "XMPP:x" (UTF8String), "EMAIL:x", and
     * two malformed kinds: "DNS0:" with '!' standing for a NUL byte, "XMPPIA5:" an XmppAddr
     * that is an IA5String. None: no subjectAltName at all. */
    const char *sans[8];
    long not_before, not_after; /* seconds from now; both 0: an hour ago, a day ahead */
    const char *eku;            /* extendedKeyUsage; NULL: "serverAuth,clientAuth"; "": none */
    bool ca;                    /* basicConstraints CA:TRUE and keyCertSign */
};

static inline EVP_PKEY *testcert_key(void)
{
    EVP_PKEY *pk = EVP_PKEY_new();
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    if (!pk || !ec || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pk, ec))
        abort();
    return pk;
}

static inline void testcert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!e || !X509_add_ext(x, e, -1))
        abort();
    X509_EXTENSION_free(e);
}

static inline void testcert_other(GENERAL_NAME *g, const char *oid, int type, const char *v)
{
    ASN1_STRING *s = ASN1_STRING_type_new(type);
    ASN1_TYPE *any = ASN1_TYPE_new();
    ASN1_STRING_set(s, v, (int)strlen(v));
    ASN1_TYPE_set(any, type, s);
    if (!GENERAL_NAME_set0_othername(g, OBJ_txt2obj(oid, 1), any))
        abort();
}

static inline void testcert_sans(X509 *x, const char *const *sans)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    for (; *sans; sans++) {
        const char *v = strchr(*sans, ':') + 1;
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (!strncmp(*sans, "DNS:", 4) || !strncmp(*sans, "EMAIL:", 6) ||
            !strncmp(*sans, "DNS0:", 5)) {
            char buf[256];
            size_t n = strlen(v);
            memcpy(buf, v, n);
            for (size_t i = 0; i < n && !strncmp(*sans, "DNS0:", 5); i++)
                if (buf[i] == '!')
                    buf[i] = '\0';
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            ASN1_STRING_set(s, buf, (int)n);
            GENERAL_NAME_set0_value(g, (*sans)[0] == 'E' ? GEN_EMAIL : GEN_DNS, s);
        } else if (!strncmp(*sans, "SRV:", 4)) {
            testcert_other(g, "1.3.6.1.5.5.7.8.7", V_ASN1_IA5STRING, v);
        } else if (!strncmp(*sans, "XMPP:", 5)) {
            testcert_other(g, "1.3.6.1.5.5.7.8.5", V_ASN1_UTF8STRING, v);
        } else if (!strncmp(*sans, "XMPPIA5:", 8)) {
            testcert_other(g, "1.3.6.1.5.5.7.8.5", V_ASN1_IA5STRING, v);
        } else {
            abort();
        }
        sk_GENERAL_NAME_push(gens, g);
    }
    if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
        abort();
    GENERAL_NAMES_free(gens);
}

/* A certificate for key, signed by issuer_key (issuer NULL: self-signed). */
static inline X509 *testcert_make(const struct testcert_spec *s, EVP_PKEY *key, X509 *issuer,
                                  EVP_PKEY *issuer_key)
{
    static long serial = 1000;
    X509 *x = X509_new();
    long from = s->not_before || s->not_after ? s->not_before : -3600;
    long to = s->not_before || s->not_after ? s->not_after : 86400;

    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    if (s->cn)
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                   (const uint8_t *)s->cn, -1, -1, 0);
    else /* a subject all the same, so that issuer and subject names tell certificates apart */
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_UTF8,
                                   (const uint8_t *)"starling tests", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    X509_set_pubkey(x, key);
    if (s->sans[0])
        testcert_sans(x, s->sans);
    testcert_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (issuer)
        testcert_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (s->ca) {
        testcert_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        testcert_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        testcert_ext(x, x, NID_basic_constraints, "critical,CA:FALSE");
        if (!s->eku || s->eku[0])
            testcert_ext(x, x, NID_ext_key_usage, s->eku ? s->eku : "serverAuth,clientAuth");
    }
    if (!X509_sign(x, issuer_key, EVP_sha256()))
        abort();
    return x;
}

/* PEM of n certificates (a chain, leaf first) to path. */
static inline void testcert_write(const char *path, X509 *const *chain, size_t n)
{
    BIO *b = BIO_new_file(path, "w");
    for (size_t i = 0; b && i < n; i++)
        PEM_write_bio_X509(b, chain[i]);
    if (!b || BIO_free(b) != 1)
        abort();
}

static inline void testcert_write_key(const char *path, EVP_PKEY *k)
{
    BIO *b = BIO_new_file(path, "w");
    if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
        abort();
    BIO_free(b);
}

/* ---- RFC 6125 as RFC 6120 §13.7 and RFC 7590 profile it --------------------------------- */

struct testcert_id {
    const char *domain; /* the reference identifier, as the stream gives it */
    bool match;
};

struct testcert_case {
    const char *label;
    struct testcert_spec spec;
    struct testcert_id ids[16]; /* up to the first NULL domain */
};

static const struct testcert_case testcert_cases[] = {
    {"DNS-ID and wildcard (RFC 6125 §6.4.3's examples)",
     {.cn = "cn.example.org", .sans = {"DNS:example.com", "DNS:*.example.net"}},
     {{"example.com", true},
      {"EXAMPLE.Com", true},        /* §6.4.1: case-insensitive */
      {"example.com.", true},       /* RFC 7622 §3.2: the trailing dot is not part of it */
      {"foo.example.net", true},    /* one label for the '*' */
      {"Foo.EXAMPLE.net.", true},
      {"bar.foo.example.net", false}, /* not two */
      {"example.net", false},         /* not none */
      {".example.net", false},
      {"www.example.com", false},
      {"example.co", false},
      {"cn.example.org", false}, /* the CN does not count beside a DNS-ID */
      {"", false},
      {"*.example.net", false}, /* a reference is never a pattern */
      {NULL, false}}},
    {"wildcards that are never one",
     {.cn = "foo.example.com",
      .sans = {"DNS:f*o.example.com", "DNS:baz*.example.net", "DNS:*baz.example.net",
               "DNS:b*z.example.net", "DNS:*.com", "DNS:foo.*.example.org", "DNS:*.*.example.info",
               "DNS:*"}},
     {{"foo.example.com", false}, /* not by the partial wildcard, nor by the CN */
      {"baz1.example.net", false},
      {"foobaz.example.net", false},
      {"buzz.example.net", false},
      {"example.com", false}, /* "*.com" stands for a public suffix */
      {"foo.bar.example.org", false},
      {"a.b.example.info", false},
      {"localhost", false},
      {NULL, false}}},
    {"SRV-ID (RFC 4985): _xmpp-server only",
     {.cn = "cn.example",
      .sans = {"SRV:_xmpp-server.srv.example", "SRV:_xmpp-client.client.example",
               "SRV:_xmpps-server.direct.example", "SRV:_XMPP-Server.Upper.Example",
               "SRV:_xmpp-server.*.wild.example"}},
     {{"srv.example", true},
      {"SRV.Example", true},
      {"upper.example", true}, /* the service name is case-insensitive too */
      {"client.example", false},
      {"direct.example", false},
      {"a.wild.example", false}, /* no wildcard in an SRV-ID */
      {"_xmpp-server.srv.example", false},
      {"cn.example", false},
      {NULL, false}}},
    {"XmppAddr (RFC 6120 §13.7.1.4)",
     {.cn = "cn.example",
      .sans = {"XMPP:xmpp.example", "XMPP:user@acct.example", "XMPP:b\xc3\xbc" "cher.example",
               "XMPP:host.example/res", "XMPP:*.wild.example", "XMPP:Upper.Example"}},
     {{"xmpp.example", true},
      {"XMPP.example", true},
      {"upper.example", true},
      {"b\xc3\xbc" "cher.example", true},
      {"xn--bcher-kva.example", true}, /* compared as A-labels */
      {"B\xc3\x9c" "CHER.example", true}, /* nameprep folds case */
      {"acct.example", false},           /* an account, not the server */
      {"host.example", false},
      {"a.wild.example", false},
      {"cn.example", false},
      {NULL, false}}},
    {"CN-ID only when no DNS-ID, SRV-ID or XmppAddr (RFC 6125 §6.4.4)",
     {.cn = "cn-only.example"},
     {{"cn-only.example", true}, {"CN-ONLY.example.", true}, {"other.example", false}, {NULL, false}}},
    {"CN-ID with a wildcard, beside an rfc822Name",
     {.cn = "*.cn.example", .sans = {"EMAIL:admin@cn.example"}},
     {{"a.cn.example", true}, {"cn.example", false}, {"a.b.cn.example", false}, {NULL, false}}},
    {"internationalised DNS-IDs",
     {.sans = {"DNS:xn--bcher-kva.example", "DNS:*.xn--caf-dma.example"}},
     {{"b\xc3\xbc" "cher.example", true},
      {"xn--bcher-kva.example", true},
      {"XN--BCHER-KVA.example", true},
      {"shop.caf\xc3\xa9" ".example", true},
      {"bucher.example", false},
      {NULL, false}}},
    {"malformed names count for nothing",
     {.cn = "cn.example",
      .sans = {"DNS0:evil.example!.good.example", "XMPPIA5:ia5.example", "DNS:bad_name.example",
               "DNS:127.0.0.1", "DNS:*.0.0.1"}},
     {{"evil.example", false},
      {"good.example", false},
      {"evil.example.good.example", false},
      {"ia5.example", false},
      {"bad_name.example", false},
      {"127.0.0.1", false}, /* an IP literal is no DNS name, wildcard or not */
      {"1.0.0.1", false},
      {"cn.example", false}, /* they are there, so the CN does not count */
      {NULL, false}}},
};

#endif
