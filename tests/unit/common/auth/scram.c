/*
 * Tests of common/auth/scram.c: key derivation against the RFCs' example account ("user",
 * "pencil"), SASLprep (RFC 4013 §3's examples), the PLAIN password check and the RFC 5803
 * text form. The StoredKey/ServerKey of RFC 7677's salt were computed independently with
 * Python's hashlib/hmac; RFC 5802's match RFC 5803 §3.
 */
#include "common/auth/scram.h"
#include "test.h"

#include <errno.h>

#include <openssl/base64.h>

static size_t unb64(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (!EVP_DecodeBase64(out, &n, cap, (const uint8_t *)s, strlen(s)))
        return 0;
    return n;
}

static bool key_is(const uint8_t *key, size_t hl, const char *b64)
{
    uint8_t want[64];
    return unb64(b64, want, sizeof want) == hl && memcmp(key, want, hl) == 0;
}

static void rfc5802_keys_test(void)
{
    uint8_t salt[32];
    size_t sl = unb64("QSXCR+Q6sek8bf92", salt, sizeof salt);
    struct scram_creds c;
    CHECK_INT(scram_creds_derive(SCRAM_SHA1, "pencil", salt, sl, 4096, &c), ==, 0);
    CHECK_INT(c.hash, ==, SCRAM_SHA1);
    CHECK_INT(c.iterations, ==, 4096);
    CHECK_INT(c.salt_len, ==, 12);
    CHECK(key_is(c.stored_key, 20, "6dlGYMOdZcOPutkcNY8U2g7vK9Y="));
    CHECK(key_is(c.server_key, 20, "D+CSWLOshSulAsxiupA+qs2/fTE="));
}

static void rfc7677_keys_test(void)
{
    uint8_t salt[32];
    size_t sl = unb64("W22ZaJ0SNY7soEsUEjb6gQ==", salt, sizeof salt);
    struct scram_creds c;
    CHECK_INT(scram_creds_derive(SCRAM_SHA256, "pencil", salt, sl, 4096, &c), ==, 0);
    CHECK(key_is(c.stored_key, 32, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="));
    CHECK(key_is(c.server_key, 32, "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="));
}

static void saslprep_case(const char *in, const char *want, bool stored)
{
    char out[64];
    int n = scram_saslprep(in, strlen(in), out, sizeof out, stored);
    if (want) {
        CHECK_INT(n, ==, (int)strlen(want));
        if (n >= 0)
            CHECK_STR(out, want);
    } else {
        CHECK_INT(n, ==, -EINVAL);
    }
}

static void saslprep_test(void)
{
    /* RFC 4013 §3 */
    saslprep_case("I\xc2\xadX", "IX", true);   /* SOFT HYPHEN mapped to nothing */
    saslprep_case("user", "user", true);       /* no transformation */
    saslprep_case("USER", "USER", true);       /* case preserved */
    saslprep_case("\xc2\xaa", "a", true);      /* NFKC */
    saslprep_case("\xe2\x85\xa8", "IX", true); /* NFKC */
    saslprep_case("\x07", NULL, true);         /* prohibited */
    saslprep_case("\xd8\xa7"
                  "1",
                  NULL, true); /* bidi check */
    /* non-ASCII space maps to SPACE (RFC 4013 §2.1) */
    saslprep_case("a\xc2\xa0"
                  "b",
                  "a b", true);
    /* invalid UTF-8, empty, and a NUL inside */
    saslprep_case("a\xff", NULL, true);
    saslprep_case("\xc0\xaf", NULL, true);
    saslprep_case("", NULL, true);
    saslprep_case("\xc2\xad", NULL, true); /* maps to nothing at all */
    char out[8];
    CHECK_INT(scram_saslprep("ab\0cd", 5, out, sizeof out, false), ==, -EINVAL);
    CHECK_INT(scram_saslprep("abcdefgh", 8, out, sizeof out, false), ==, -ENOSPC);
    /* An unassigned code point (U+0221 in Unicode 3.2): a query may hold it, storage not. */
    saslprep_case("\xc8\xa1", "\xc8\xa1", false);
    saslprep_case("\xc8\xa1", NULL, true);
}

static void make_verify_test(void)
{
    struct scram_creds a, b;
    CHECK_INT(scram_creds_make(SCRAM_SHA256, "pencil", 4096, &a), ==, 0);
    CHECK_INT(scram_creds_make(SCRAM_SHA256, "pencil", 4096, &b), ==, 0);
    CHECK_INT(a.salt_len, ==, SCRAM_SALT_LEN);
    CHECK(memcmp(a.salt, b.salt, SCRAM_SALT_LEN) != 0); /* random salt */
    CHECK(memcmp(a.stored_key, b.stored_key, 32) != 0);
    CHECK(scram_verify_plain(&a, "pencil"));
    CHECK(scram_verify_plain(&b, "pencil"));
    CHECK(!scram_verify_plain(&a, "pencil "));
    CHECK(!scram_verify_plain(&a, "Pencil"));
    CHECK(!scram_verify_plain(&a, ""));
    CHECK(!scram_verify_plain(&a, "\x07"));

    /* SASLprep on both sides: the Roman numeral nine is "IX". */
    CHECK_INT(scram_creds_make(SCRAM_SHA1, "\xe2\x85\xa8", 4096, &a), ==, 0);
    CHECK(scram_verify_plain(&a, "IX"));
    CHECK(scram_verify_plain(&a, "I\xc2\xadX"));
    CHECK(!scram_verify_plain(&a, "ix"));

    CHECK_INT(scram_creds_make(SCRAM_SHA256, "pencil", 4095, &a), ==, -EINVAL);
    CHECK_INT(scram_creds_make(SCRAM_SHA256, "", 4096, &a), ==, -EINVAL);
    CHECK_INT(scram_creds_make(SCRAM_SHA256, "bell\x07", 4096, &a), ==, -EINVAL);
    CHECK_INT(scram_creds_make((enum scram_hash)7, "pencil", 4096, &a), ==, -EINVAL);
    CHECK_INT(scram_creds_make(SCRAM_SHA256, "pencil", SCRAM_MAX_ITERATIONS + 1, &a), ==, -EINVAL);

    /* Damaged credentials never verify. */
    CHECK_INT(scram_creds_make(SCRAM_SHA256, "pencil", 4096, &a), ==, 0);
    b = a;
    b.stored_key[31] ^= 1;
    CHECK(!scram_verify_plain(&b, "pencil"));
    b = a;
    b.salt_len = 0;
    CHECK(!scram_creds_valid(&b));
    CHECK(!scram_verify_plain(&b, "pencil"));
    b = a;
    b.iterations = 0;
    CHECK(!scram_verify_plain(&b, "pencil"));
}

static void text_form_test(void)
{
    uint8_t salt[32];
    size_t sl = unb64("QSXCR+Q6sek8bf92", salt, sizeof salt);
    struct scram_creds c, d;
    char text[SCRAM_TEXT_MAX];
    scram_creds_derive(SCRAM_SHA1, "pencil", salt, sl, 4096, &c);
    int n = scram_creds_format(&c, text, sizeof text);
    /* RFC 5803 §3's example, character for character */
    CHECK_STR(text, "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:"
                    "D+CSWLOshSulAsxiupA+qs2/fTE=");
    CHECK_INT(n, ==, (int)strlen(text));
    CHECK_INT(scram_creds_parse(text, (size_t)n, &d), ==, 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    CHECK(scram_verify_plain(&d, "pencil"));

    /* The longest form fits SCRAM_TEXT_MAX. */
    uint8_t big[SCRAM_SALT_MAX];
    memset(big, 0xfe, sizeof big);
    scram_creds_derive(SCRAM_SHA256, "pencil", big, sizeof big, 1, &c);
    c.iterations = SCRAM_MAX_ITERATIONS;
    n = scram_creds_format(&c, text, sizeof text);
    CHECK(n > 0 && n < SCRAM_TEXT_MAX);
    CHECK_INT(scram_creds_parse(text, (size_t)n, &d), ==, 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    CHECK_INT(scram_creds_format(&c, text, 20), ==, -ENOSPC);

    static const char *const bad[] = {
        "",
        "SCRAM-SHA-1",
        "SCRAM-SHA-512$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/"
        "fTE=",
        "SCRAM-SHA-1$0:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
        "SCRAM-SHA-1$04096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/"
        "fTE=",
        "SCRAM-SHA-1$99999999:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+"
        "qs2/fTE=",
        "SCRAM-SHA-1$4096:$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf9$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/"
        "fTE=",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
        /* SHA-256-sized keys under SHA-1 */
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/"
        "fTE=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (scram_creds_parse(bad[i], strlen(bad[i]), &d) != -EINVAL)
            TEST_FAIL("accepted '%s'", bad[i]);
    }
}

static void primitives_test(void)
{
    uint8_t out[SCRAM_KEY_MAX];
    CHECK_INT(scram_hash_len(SCRAM_SHA1), ==, 20);
    CHECK_INT(scram_hash_len(SCRAM_SHA256), ==, 32);
    CHECK_INT(scram_hash_len((enum scram_hash)0), ==, 0);
    /* RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe") */
    scram_hmac(SCRAM_SHA256, "Jefe", 4, "what do ya want for nothing?", 28, out);
    CHECK(key_is(out, 32, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="));
    scram_digest(SCRAM_SHA1, "abc", 3, out);
    CHECK(key_is(out, 20, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="));
    CHECK_INT(scram_salted_password(SCRAM_SHA1, "x", 1, out, 1, 0, out), ==, -EINVAL);
}

int main(void)
{
    RUN(rfc5802_keys_test);
    RUN(rfc7677_keys_test);
    RUN(saslprep_test);
    RUN(make_verify_test);
    RUN(text_form_test);
    RUN(primitives_test);
    return test_done("scram");
}
