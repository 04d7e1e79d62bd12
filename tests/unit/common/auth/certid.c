/*
 * Tests of common/auth/certid.c on DER certificates made here (testcert.h). The same table of
 * cases runs again in tests/unit/common/auth/tls.c on certificates a handshake delivered.
 */
#include "common/auth/certid.h"
#include "test.h"
#include "testcert.h"

#include <errno.h>

#include <openssl/mem.h>

/* The DER of a certificate made from spec; free() it. */
static uint8_t *der_of(const struct testcert_spec *spec, size_t *len)
{
    EVP_PKEY *k = testcert_key();
    X509 *x = testcert_make(spec, k, NULL, k);
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0)
        abort();
    *len = (size_t)n;
    uint8_t *copy = malloc(*len);
    memcpy(copy, der, *len);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
    return copy;
}

static void table_test(void)
{
    for (size_t i = 0; i < sizeof testcert_cases / sizeof testcert_cases[0]; i++) {
        const struct testcert_case *c = &testcert_cases[i];
        size_t len;
        uint8_t *der = der_of(&c->spec, &len);
        for (const struct testcert_id *id = c->ids; id->domain; id++) {
            if (certid_match(der, len, id->domain) != id->match)
                TEST_FAIL("%s: %s should %smatch", c->label, id->domain, id->match ? "" : "not ");
        }
        free(der);
    }
}

/* What certid_each() reports, one "KIND name" line each. */
struct seen {
    char text[1024];
    int stop_after; /* 0: never */
    int calls;
};

static int collect(void *ud, enum certid_kind kind, const char *name)
{
    struct seen *s = ud;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof s->text - used, "%s %s\n", certid_kind_name(kind), name);
    return ++s->calls == s->stop_after;
}

static void each_case(const struct testcert_spec *spec, int want_rc, const char *want)
{
    size_t len;
    uint8_t *der = der_of(spec, &len);
    struct seen s = {.calls = 0};
    CHECK_INT(certid_each(der, len, collect, &s), ==, want_rc);
    CHECK_STR(s.text, want);
    free(der);
}

static void each_test(void)
{
    /* Normalised: lowercase A-labels without the trailing dot; an XmppAddr as written;
     * names that could never match left out; no CN beside typed names. */
    each_case(&(struct testcert_spec){.cn = "cn.example",
                                      .sans = {"DNS:Example.COM.", "EMAIL:a@b.example",
                                               "SRV:_XMPP-Server.Upper.Example",
                                               "XMPP:B\xc3\xbc" "cher.example", "DNS:f*o.example",
                                               "DNS:*.Example.NET"}},
              4,
              "DNS example.com\n"
              "SRV _xmpp-server.upper.example\n"
              "XmppAddr B\xc3\xbc" "cher.example\n"
              "DNS *.example.net\n");
    /* The CN alone, in A-labels, every one of them. */
    each_case(&(struct testcert_spec){.cn = "Caf\xc3\xa9.example"}, 1, "CN xn--caf-dma.example\n");
    each_case(&(struct testcert_spec){.cn = "cn.example", .sans = {"EMAIL:a@b.example"}}, 1,
              "CN cn.example\n");
    each_case(&(struct testcert_spec){0}, 0, "");
    each_case(&(struct testcert_spec){.cn = "cn.example", .sans = {"DNS:bad_name.example"}}, 0, "");

    /* fn stops the walk. */
    size_t len;
    uint8_t *der = der_of(&(struct testcert_spec){.sans = {"DNS:a.example", "DNS:b.example"}}, &len);
    struct seen s = {.stop_after = 1};
    CHECK_INT(certid_each(der, len, collect, &s), ==, 1);
    CHECK_STR(s.text, "DNS a.example\n");

    /* Not one whole certificate. */
    CHECK_INT(certid_each(der, len - 1, collect, &s), ==, -EINVAL);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    CHECK_INT(certid_each(longer, len + 1, collect, &s), ==, -EINVAL);
    CHECK(!certid_match(longer, len + 1, "a.example"));
    CHECK(certid_match(der, len, "a.example"));
    CHECK(!certid_match(der, len, NULL));
    CHECK_INT(certid_each((const uint8_t *)"garbage", 7, collect, &s), ==, -EINVAL);
    free(longer);
    free(der);
}

/* Two subjectAltName extensions: which one would count is anyone's guess, so neither does,
 * and the CN does not stand in for them. Several CNs all count. */
static void odd_structure_test(void)
{
    EVP_PKEY *k = testcert_key();
    X509 *x = testcert_make(&(struct testcert_spec){.cn = "cn.example", .sans = {"DNS:a.example"}},
                            k, NULL, k);
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, "b.example", 9);
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    sk_GENERAL_NAME_push(gens, g);
    CHECK(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) == 1);
    GENERAL_NAMES_free(gens);
    X509_sign(x, k, EVP_sha256());
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    struct seen seen = {.calls = 0};
    CHECK_INT(certid_each(der, (size_t)n, collect, &seen), ==, 0);
    CHECK(!certid_match(der, (size_t)n, "a.example"));
    CHECK(!certid_match(der, (size_t)n, "b.example"));
    CHECK(!certid_match(der, (size_t)n, "cn.example"));
    OPENSSL_free(der);
    X509_free(x);

    x = testcert_make(&(struct testcert_spec){.cn = "one.example"}, k, NULL, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const uint8_t *)"two.example", -1, -1, 0);
    X509_sign(x, k, EVP_sha256());
    der = NULL;
    n = i2d_X509(x, &der);
    CHECK(certid_match(der, (size_t)n, "one.example"));
    CHECK(certid_match(der, (size_t)n, "two.example"));
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void kind_name_test(void)
{
    CHECK_STR(certid_kind_name(CERTID_DNS), "DNS");
    CHECK_STR(certid_kind_name(CERTID_SRV), "SRV");
    CHECK_STR(certid_kind_name(CERTID_XMPP), "XmppAddr");
    CHECK_STR(certid_kind_name(CERTID_CN), "CN");
}

int main(void)
{
    RUN(table_test);
    RUN(each_test);
    RUN(odd_structure_test);
    RUN(kind_name_test);
    return test_done("certid");
}
