/*
 * Tests of bench/saslc.c: the SCRAM client against the examples of RFC 7677 §3
 * (SCRAM-SHA-256) and RFC 5802 §5 (SCRAM-SHA-1), byte for byte, the key cache, PLAIN,
 * and what a client must refuse: a nonce the server did not extend, a wrong server
 * signature, a server error, malformed messages, absurd iteration counts.
 */
#include "bench/saslc.h"
#include "test.h"

#include <errno.h>

#include <openssl/base64.h>

static char out[SASLC_OUT_MAX];

static const char *b64(const char *s)
{
    static char buf[1024];
    EVP_EncodeBlock((uint8_t *)buf, (const uint8_t *)s, strlen(s));
    return buf;
}

static const char *unb64(const char *s, size_t n)
{
    static char buf[1024];
    size_t len = 0;
    if (!EVP_DecodeBase64((uint8_t *)buf, &len, sizeof buf - 1, (const uint8_t *)s, n))
        return "(bad base64)";
    buf[len] = '\0';
    return buf;
}

/* One whole exchange of the RFC example: client-first, client-final, server-final. */
struct vector {
    enum saslc_mech mech;
    const char *nonce, *first, *sfirst, *final, *sfinal;
};

static const struct vector rfc7677 = {
    SASLC_SCRAM_SHA256,
    "rOprNGfwEbeRWgbNEkqO",
    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

static const struct vector rfc5802 = {
    SASLC_SCRAM_SHA1,
    "fyko+d2lbbFgONRv9qkxdawL",
    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static void run_vector(const struct vector *v, struct saslc_keys *cache)
{
    struct saslc s;
    int n = saslc_start(&s, v->mech, "user", "pencil", v->nonce, out, sizeof out);
    CHECK_INT(n, >, 0);
    CHECK_STR(unb64(out, (size_t)n), v->first);
    const char *ch = b64(v->sfirst);
    n = saslc_step(&s, "pencil", cache, ch, strlen(ch), out, sizeof out);
    CHECK_INT(n, >, 0);
    if (n > 0)
        CHECK_STR(unb64(out, (size_t)n), v->final);
    const char *fin = b64(v->sfinal);
    CHECK_INT(saslc_success(&s, fin, strlen(fin)), ==, 0);
}

static void rfc7677_test(void)
{
    run_vector(&rfc7677, NULL);
}

static void rfc5802_test(void)
{
    run_vector(&rfc5802, NULL);
}

static void cache_test(void)
{
    /* The first login fills the cache; a second one with a poisoned password still
     * computes the right proof, which shows PBKDF2 was skipped. */
    struct saslc_keys k = {0};
    run_vector(&rfc7677, &k);
    CHECK_INT(k.hash, ==, SCRAM_SHA256);
    CHECK_INT(k.iterations, ==, 4096);
    CHECK_INT(k.salt_len, ==, 16);
    struct saslc s;
    saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pencil", rfc7677.nonce, out, sizeof out);
    const char *ch = b64(rfc7677.sfirst);
    int n = saslc_step(&s, "not the password", &k, ch, strlen(ch), out, sizeof out);
    CHECK_INT(n, >, 0);
    if (n > 0)
        CHECK_STR(unb64(out, (size_t)n), rfc7677.final);
    /* Another salt: the cache is refreshed, so the (wrong) password now shows. */
    const char *other = b64("r=rOprNGfwEbeRWgbNEkqOxyz,s=QSXCR+Q6sek8bf92,i=4096");
    saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pencil", rfc7677.nonce, out, sizeof out);
    n = saslc_step(&s, "pencil", &k, other, strlen(other), out, sizeof out);
    CHECK_INT(n, >, 0);
    CHECK_INT(k.salt_len, ==, 12);
}

static void final_as_challenge_test(void)
{
    /* Some servers send server-final-message as a <challenge/>, answered with an empty
     * <response/>, and then an empty <success/>. */
    struct saslc s;
    saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pencil", rfc7677.nonce, out, sizeof out);
    const char *ch = b64(rfc7677.sfirst);
    CHECK_INT(saslc_step(&s, "pencil", NULL, ch, strlen(ch), out, sizeof out), >, 0);
    const char *fin = b64(rfc7677.sfinal);
    CHECK_INT(saslc_step(&s, "pencil", NULL, fin, strlen(fin), out, sizeof out), ==, 0);
    CHECK_INT(saslc_success(&s, "", 0), ==, 0);
}

static int step_with(const char *sfirst, const char *sfinal)
{
    struct saslc s;
    saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pencil", rfc7677.nonce, out, sizeof out);
    const char *ch = b64(sfirst);
    int n = saslc_step(&s, "pencil", NULL, ch, strlen(ch), out, sizeof out);
    if (n < 0 || !sfinal)
        return n;
    const char *fin = b64(sfinal);
    return saslc_success(&s, fin, strlen(fin));
}

static void refusals_test(void)
{
    /* The server's nonce must extend ours. */
    CHECK_INT(step_with("r=somebodyelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", NULL), ==, -EPROTO);
    CHECK_INT(step_with("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", NULL), ==,
              -EPROTO);
    /* A wrong server signature, a server error, no signature at all. */
    CHECK_INT(step_with(rfc7677.sfirst, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="), ==, -EPROTO);
    CHECK_INT(step_with(rfc7677.sfirst, "e=invalid-proof"), ==, -EPROTO);
    struct saslc s;
    saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pencil", rfc7677.nonce, out, sizeof out);
    const char *ch = b64(rfc7677.sfirst);
    saslc_step(&s, "pencil", NULL, ch, strlen(ch), out, sizeof out);
    CHECK_INT(saslc_success(&s, "", 0), ==, -EPROTO);
    /* Malformed server-first messages and iteration counts. */
    CHECK_INT(step_with("m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=QSXC,i=1", NULL), ==, -EBADMSG);
    CHECK_INT(step_with("r=rOprNGfwEbeRWgbNEkqOx,i=4096,s=QSXCR+Q6sek8bf92", NULL), ==, -EBADMSG);
    CHECK_INT(step_with("r=rOprNGfwEbeRWgbNEkqOx,s=!!!!,i=4096", NULL), ==, -EBADMSG);
    CHECK_INT(step_with("r=rOprNGfwEbeRWgbNEkqOx,s=QSXCR+Q6sek8bf92,i=0", NULL), ==, -EINVAL);
    CHECK_INT(step_with("r=rOprNGfwEbeRWgbNEkqOx,s=QSXCR+Q6sek8bf92,i=99999999999", NULL), ==,
              -EINVAL);
    CHECK_INT(step_with("r=rOprNGfwEbeRWgbNEkqOx,s=QSXCR+Q6sek8bf92,i=4x96", NULL), ==, -EBADMSG);
    /* Not base64 at all. */
    saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pencil", rfc7677.nonce, out, sizeof out);
    CHECK_INT(saslc_step(&s, "pencil", NULL, "%%%", 3, out, sizeof out), ==, -EBADMSG);
}

static void username_test(void)
{
    /* ',' and '=' in a user name are escaped (RFC 5802 §5.1). */
    struct saslc s;
    int n = saslc_start(&s, SASLC_SCRAM_SHA1, "a,b=c", "pw", "abc", out, sizeof out);
    CHECK_INT(n, >, 0);
    CHECK_STR(unb64(out, (size_t)n), "n,,n=a=2Cb=3Dc,r=abc");
    CHECK_INT(saslc_start(&s, SASLC_SCRAM_SHA1, "", "pw", NULL, out, sizeof out), ==, -EINVAL);
    CHECK_INT(saslc_start(&s, SASLC_SCRAM_SHA1, "u", "", NULL, out, sizeof out), ==, -EINVAL);
    CHECK_INT(saslc_start(&s, SASLC_SCRAM_SHA1, "u", "p", "a,b", out, sizeof out), ==, -EINVAL);
    /* A random nonce: 24 base64 characters, different each time. */
    char first[SASLC_OUT_MAX];
    n = saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pw", NULL, out, sizeof out);
    snprintf(first, sizeof first, "%s", unb64(out, (size_t)n));
    CHECK_INT(strlen(first), ==, strlen("n,,n=user,r=") + 24);
    n = saslc_start(&s, SASLC_SCRAM_SHA256, "user", "pw", NULL, out, sizeof out);
    CHECK(strcmp(first, unb64(out, (size_t)n)) != 0);
}

static void plain_test(void)
{
    struct saslc s;
    int n = saslc_start(&s, SASLC_PLAIN, "user1", "pw", NULL, out, sizeof out);
    CHECK_INT(n, >, 0);
    CHECK(!memcmp(unb64(out, (size_t)n), "\0user1\0pw", 10));
    CHECK_INT(saslc_success(&s, "", 0), ==, 0);
    CHECK_INT(saslc_step(&s, "pw", NULL, "", 0, out, sizeof out), ==, -EPROTO);
    CHECK_INT(saslc_mech_parse("SCRAM-SHA-256"), ==, SASLC_SCRAM_SHA256);
    CHECK_INT(saslc_mech_parse("scram-sha-1"), ==, -EINVAL);
    CHECK_STR(saslc_mech_name(SASLC_SCRAM_SHA1), "SCRAM-SHA-1");
}

int main(void)
{
    RUN(rfc7677_test);
    RUN(rfc5802_test);
    RUN(cache_test);
    RUN(final_as_challenge_test);
    RUN(refusals_test);
    RUN(username_test);
    RUN(plain_test);
    return test_done("saslc");
}
