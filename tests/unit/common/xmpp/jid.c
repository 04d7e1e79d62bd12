/*
 * Tests common/xmpp/jid.c: RFC 7622 §3.5's examples as judged by the RFC 6122 profiles we use (where
 * the two RFCs differ, the table says so), the limits, equality and the shard hash, and the
 * ASCII fast path against libidn on pseudo-random input from a fixed seed.
 */
#define JID_TEST_API
#include "common/xmpp/jid.h"

#include <dlfcn.h>
#include <errno.h>
#include <stringprep.h>
#include <xxhash.h>

#include "test.h"

struct jid_case {
    const char *in;
    const char *out; /* normalised form; NULL: invalid */
};

static const struct jid_case jid_valid[] = {
    /* RFC 7622 §3.5.1 */
    {"juliet@example.com", "juliet@example.com"},
    {"juliet@example.com/foo", "juliet@example.com/foo"},
    {"juliet@example.com/foo bar", "juliet@example.com/foo bar"},
    {"juliet@example.com/foo@bar", "juliet@example.com/foo@bar"},
    {"foo\\20bar@example.com", "foo\\20bar@example.com"},
    {"fussball@example.com", "fussball@example.com"},
    {"fußball@example.com", "fussball@example.com"}, /* nodeprep folds ß to ss */
    {"π@example.com", "π@example.com"},
    {"ΣΣ@example.com/foo", "σσ@example.com/foo"},
    {"σσ@example.com/foo", "σσ@example.com/foo"},
    {"ς@example.com", "σ@example.com"}, /* final sigma folds too */
    {"king@example.com/♚", "king@example.com/♚"},
    {"example.com", "example.com"},
    {"example.com/foobar", "example.com/foobar"},
    {"a.example.com/b@example.net", "a.example.com/b@example.net"},
    /* §3.5.2 lists these as invalid under PRECIS; the RFC 6122 profiles accept them */
    {"henry\u2163@example.com", "henryiv@example.com"}, /* ROMAN NUMERAL FOUR: NFKC + fold */
    {"juliet@example.com/ foo", "juliet@example.com/ foo"},
    {"♚@example.com", "♚@example.com"}, /* a symbol: fine for nodeprep */
    /* splitting: first '/', then an '@' before it */
    {"juliet@example.com/a/b@c", "juliet@example.com/a/b@c"},
    {"example.com/b@c", "example.com/b@c"},
    {"a@b", "a@b"},
    /* case */
    {"JULIET@Example.COM/Balcony", "juliet@example.com/Balcony"},
    /* domains */
    {"example.com.", "example.com"},
    {"juliet@example.com./r", "juliet@example.com/r"},
    {"a_b-c.example", "a_b-c.example"},
    {"[::1]", "[::1]"},
    {"[0:0:0:0:0:0:0:1]", "[::1]"},
    {"juliet@[2001:DB8::1]/r", "juliet@[2001:db8::1]/r"},
    {"127.0.0.1", "127.0.0.1"},
    {"127.0.0.1.", "127.0.0.1"},
    {"bücher.example", "bücher.example"},
    {"xn--bcher-kva.example", "bücher.example"}, /* A-label becomes the U-label */
    {"XN--BCHER-KVA.Example", "bücher.example"},
    {"BÜCHER.example", "bücher.example"},
    {"ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"},        /* fullwidth letters and dot */
    {"example\u3002com", "example.com"},              /* ideographic full stop separates labels */
    {"example.com\u3002", "example.com"},             /* and is a trailing dot */
    {"\u05d0\u05d1.example", "\u05d0\u05d1.example"}, /* RTL label beside an LTR one */
    /* stringprep mapping and NFKC */
    {"\u00adjuliet@example.com", "juliet@example.com"},        /* soft hyphen maps to nothing */
    {"<\u0338@example.com", "\u226e@example.com"},             /* composes to NOT LESS-THAN */
    {"juliet@example.com/\u00a0x", "juliet@example.com/ x"},   /* NBSP is a space after NFKC */
    {"juliet@example.com/a\u2000b", "juliet@example.com/a b"}, /* so is EN QUAD */
    {"juliet@example.com/phone \U0001f4f1", "juliet@example.com/phone \U0001f4f1"},
    {"\U0001f600@example.com", "\U0001f600@example.com"}, /* unassigned in 3.2: allowed */
};

static const char *const jid_invalid[] = {
    /* RFC 7622 §3.5.2 */
    "\"juliet\"@example.com",
    "foo bar@example.com",
    "@example.com/",
    /* empty parts */
    "@",
    "/",
    "@/",
    "@example.com",
    "juliet@",
    "juliet@/r",
    "juliet@example.com/",
    "/foobar",
    /* localpart */
    "a@b@c", /* the second '@' lands in the domain */
    "jul:iet@example.com",
    "jul<iet@example.com",
    "jul&iet@example.com",
    "jul'iet@example.com",
    "jul\x01iet@example.com",
    "jul\x7fiet@example.com",
    "\u00ad@example.com",   /* maps to nothing: empty */
    "a\uff20b@example.com", /* FULLWIDTH COMMERCIAL AT: NFKC makes an '@' */
    "\u05d0a@example.com",  /* bidi: RTL and LTR in one part */
    "a\u1680b@example.com", /* non-ASCII space */
    "a\u2000b@example.com", /* EN QUAD: NFKC makes it a space */
    /* domainpart */
    "juliet@exa mple.com",
    "juliet@example..com",
    "juliet@.example.com",
    "juliet@example.com..",
    "juliet@.",
    "example.com:5222",
    "exa\x01mple.com",
    "exa<mple.com",
    "foo\u2024bar",        /* ONE DOT LEADER becomes '.' under NFKC */
    "xn--abc-.example",    /* fake A-label */
    "xn--ab-r13a.example", /* decodes to "a\u3002b": a label that would split on re-parse */
    "xn--.example",
    "\U0001f600.example", /* unassigned in 3.2: ToASCII refuses */
    "xn--\u00fc.example",
    "[::1",
    "[fe80::1%eth0]",
    "[1.2.3.4]",
    "[]",
    "[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb]",
    "exa!mple.com",
    "exa$mple.com",
    "exa\\mple.com",
    "exa\"mple.com",
    /* resourcepart */
    "juliet@example.com/a\tb",
    "juliet@example.com/a\x7f",
    "juliet@example.com/\u00ad",
    "juliet@example.com/a\u1680b", /* OGHAM SPACE MARK: a space NFKC keeps */
    /* not UTF-8 */
    "\xff@example.com",
    "caf\xc3@example.com",
    "\xc0\xaf@example.com",                /* overlong '/' */
    "\xed\xa0\x80@example.com",            /* surrogate */
    "juliet@example.com/\xf4\x90\x80\x80", /* above U+10FFFF */
    "juliet@ex\xe0\x80\x80mple.com",
    "juliet@example.com/\xe2\x82",
};

/*
 * Interposes libidn's stringprep() to count the calls jid.c makes (an executable's definition
 * wins over the shared library's), so the tests can see which path a part took.
 */
static int stringprep_calls;

int stringprep(char *in, size_t maxlen, Stringprep_profile_flags flags,
               const Stringprep_profile *profile)
{
    static int (*real)(char *, size_t, Stringprep_profile_flags, const Stringprep_profile *);

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "stringprep");
    stringprep_calls++;
    return real(in, maxlen, flags, profile);
}

static int parse(struct jid *j, const char *s, char *buf)
{
    return jid_parse(j, s, strlen(s), buf, JID_BUF);
}

/* Offsets agree with the string: '@' and '/' where the offsets say, and nowhere they must not. */
static void check_layout(const struct jid *j, const char *in)
{
    if (j->len != strlen(j->str))
        TEST_FAIL("%s: len %u, strlen %zu", in, j->len, strlen(j->str));
    if (j->local_len && (j->str[j->local_len] != '@' || j->domain_off != j->local_len + 1))
        TEST_FAIL("%s: local_len %u, domain_off %u", in, j->local_len, j->domain_off);
    if (!j->local_len && (j->domain_off != 0 || memchr(j->str, '@', j->domain_len)))
        TEST_FAIL("%s: no local but domain_off %u", in, j->domain_off);
    if (j->res_len) {
        if (j->str[j->res_off - 1] != '/' || j->res_off != j->domain_off + j->domain_len + 1 ||
            j->res_off + j->res_len != j->len)
            TEST_FAIL("%s: resource at %u+%u of %u", in, j->res_off, j->res_len, j->len);
    } else if (j->res_off != j->len || j->domain_off + j->domain_len != j->len) {
        TEST_FAIL("%s: bare but res_off %u, len %u", in, j->res_off, j->len);
    }
}

static void test_valid(void)
{
    for (size_t i = 0; i < sizeof jid_valid / sizeof jid_valid[0]; i++) {
        const struct jid_case *c = &jid_valid[i];
        char buf[JID_BUF], again[JID_BUF];
        struct jid j, k;
        int rc = parse(&j, c->in, buf);

        if (rc != 0) {
            TEST_FAIL("'%s' rejected: %d", c->in, rc);
            continue;
        }
        CHECK(j.str == buf);
        if (strcmp(j.str, c->out))
            TEST_FAIL("'%s' is '%s', expected '%s'", c->in, j.str, c->out);
        check_layout(&j, c->in);
        /* The normalised form is a fixed point. */
        rc = parse(&k, j.str, again);
        if (rc != 0 || strcmp(k.str, j.str))
            TEST_FAIL("'%s' does not re-parse to itself (%d)", j.str, rc);
    }
}

static void test_invalid(void)
{
    for (size_t i = 0; i < sizeof jid_invalid / sizeof jid_invalid[0]; i++) {
        char buf[JID_BUF];
        struct jid j;
        int rc = parse(&j, jid_invalid[i], buf);

        if (rc != -EINVAL)
            TEST_FAIL("'%s' gave %d, expected -EINVAL", jid_invalid[i], rc);
    }
}

static void test_split(void)
{
    char buf[JID_BUF];
    struct jid j;

    CHECK_INT(parse(&j, "juliet@example.com/foo", buf), ==, 0);
    CHECK_INT(j.len, ==, 22);
    CHECK_INT(j.local_len, ==, 6);
    CHECK_SPAN(j.str + j.domain_off, j.domain_len, "example.com");
    CHECK_SPAN(j.str + j.res_off, j.res_len, "foo");
    CHECK_SPAN(j.str, jid_bare_len(&j), "juliet@example.com");
    CHECK(!jid_is_bare(&j));

    CHECK_INT(parse(&j, "example.com", buf), ==, 0);
    CHECK_INT(j.local_len, ==, 0);
    CHECK_INT(j.domain_off, ==, 0);
    CHECK_INT(j.res_len, ==, 0);
    CHECK_INT(jid_bare_len(&j), ==, 11);
    CHECK(jid_is_bare(&j));

    /* An '@' after the first '/' belongs to the resource. */
    CHECK_INT(parse(&j, "a.example.com/b@example.net", buf), ==, 0);
    CHECK_INT(j.local_len, ==, 0);
    CHECK_SPAN(j.str + j.domain_off, j.domain_len, "a.example.com");
    CHECK_SPAN(j.str + j.res_off, j.res_len, "b@example.net");

    /* A NUL is a byte like any other and invalid; input is not read as a C string. */
    CHECK_INT(jid_parse(&j, "jul\0iet@example.com", 19, buf, sizeof buf), ==, -EINVAL);
    CHECK_INT(jid_parse(&j, "juliet@example.com/a\0b", 22, buf, sizeof buf), ==, -EINVAL);
    /* Only len bytes are read: the tail past len is not part of the JID. */
    CHECK_INT(jid_parse(&j, "juliet@example.com/foo", 18, buf, sizeof buf), ==, 0);
    CHECK_STR(j.str, "juliet@example.com");
    CHECK_INT(jid_parse(&j, "", 0, buf, sizeof buf), ==, -EINVAL);
    CHECK_INT(jid_parse(&j, NULL, 0, buf, sizeof buf), ==, -EINVAL);
}

/* A part of exactly JID_PART_MAX bytes is valid, one more byte is not; per part. */
static void test_limits(void)
{
    static char in[8192], buf[JID_BUF];
    struct jid j;
    size_t n;

    memset(in, 'a', JID_PART_MAX);
    memcpy(in + JID_PART_MAX, "@example.com", 12);
    CHECK_INT(jid_parse(&j, in, JID_PART_MAX + 12, buf, sizeof buf), ==, 0);
    CHECK_INT(j.local_len, ==, JID_PART_MAX);
    memset(in, 'a', JID_PART_MAX + 1);
    memcpy(in + JID_PART_MAX + 1, "@example.com", 12);
    CHECK_INT(jid_parse(&j, in, JID_PART_MAX + 13, buf, sizeof buf), ==, -EINVAL);

    /* Bytes, not characters: 511 'é' and an 'a' are 1023 bytes; 512 'é' are 1024. */
    n = 0;
    for (int i = 0; i < 511; i++, n += 2)
        memcpy(in + n, "\xc3\xa9", 2);
    in[n++] = 'a';
    memcpy(in + n, "@x", 2);
    CHECK_INT(jid_parse(&j, in, n + 2, buf, sizeof buf), ==, 0);
    CHECK_INT(j.local_len, ==, JID_PART_MAX);
    memcpy(in + n - 1, "\xc3\xa9@x", 4);
    CHECK_INT(jid_parse(&j, in, n + 3, buf, sizeof buf), ==, -EINVAL);

    /* Limits apply after normalisation: 1023 fullwidth letters (3069 bytes) fold to 1023. */
    n = 0;
    for (int i = 0; i < JID_PART_MAX; i++, n += 3)
        memcpy(in + n, "\xef\xbd\x81", 3);
    memcpy(in + n, "@x", 2);
    CHECK_INT(jid_parse(&j, in, n + 2, buf, sizeof buf), ==, 0);
    CHECK_INT(j.local_len, ==, JID_PART_MAX);
    CHECK(j.str[0] == 'a' && j.str[JID_PART_MAX - 1] == 'a');

    /* Domain: 16 labels of 63 are 1023 bytes with their dots; a 64-byte label is too long. */
    n = 0;
    for (int i = 0; i < 16; i++) {
        if (i)
            in[n++] = '.';
        memset(in + n, 'd', 63);
        n += 63;
    }
    CHECK_INT(n, ==, JID_PART_MAX);
    CHECK_INT(jid_parse(&j, in, n, buf, sizeof buf), ==, 0);
    CHECK_INT(j.domain_len, ==, JID_PART_MAX);
    CHECK_INT(jid_parse_slow(&j, in, n, buf, sizeof buf), ==, 0);
    in[n++] = 'd';
    CHECK_INT(jid_parse(&j, in, n, buf, sizeof buf), ==, -EINVAL);
    CHECK_INT(jid_parse_slow(&j, in, n, buf, sizeof buf), ==, -EINVAL);
    memset(in, 'd', 64);
    CHECK_INT(jid_parse(&j, in, 63, buf, sizeof buf), ==, 0);
    CHECK_INT(jid_parse(&j, in, 64, buf, sizeof buf), ==, -EINVAL);
    CHECK_INT(jid_parse_slow(&j, in, 64, buf, sizeof buf), ==, -EINVAL);
    /* A-labels are longer than their U-labels: 1035 ASCII bytes normalise to 591 bytes. */
    n = 0;
    for (int i = 0; i < 74; i++, n += 14)
        memcpy(in + n, "xn--bcher-kva.", 14);
    CHECK_INT(jid_parse(&j, in, n - 1, buf, sizeof buf), ==, 0);
    CHECK_INT(j.domain_len, ==, 74 * 8 - 1);
    CHECK_INT(jid_parse_slow(&j, in, n - 1, buf, sizeof buf), ==, 0);
    CHECK_INT(j.domain_len, ==, 74 * 8 - 1);
    /* A U-label is measured in its ACE form: 57 'ü' are 63 bytes as an A-label, 58 are 64. */
    n = 0;
    for (int i = 0; i < 58; i++, n += 2)
        memcpy(in + n, "\xc3\xbc", 2);
    CHECK_INT(jid_parse(&j, in, n, buf, sizeof buf), ==, -EINVAL);
    CHECK_INT(jid_parse(&j, in, n - 2, buf, sizeof buf), ==, 0);
    CHECK_INT(j.domain_len, ==, 114);

    /* Resource: 1023 valid, 1024 not; the longest JID fits JID_BUF exactly. */
    n = 0;
    memset(in, 'l', JID_PART_MAX);
    n += JID_PART_MAX;
    in[n++] = '@';
    for (int i = 0; i < 16; i++) {
        if (i)
            in[n++] = '.';
        memset(in + n, 'd', 63);
        n += 63;
    }
    in[n++] = '/';
    memset(in + n, 'R', JID_PART_MAX + 1);
    CHECK_INT(jid_parse(&j, in, n + JID_PART_MAX, buf, sizeof buf), ==, 0);
    CHECK_INT(j.len, ==, JID_BUF - 1);
    CHECK_INT(j.res_len, ==, JID_PART_MAX);
    check_layout(&j, "longest");
    CHECK_INT(jid_parse(&j, in, n + JID_PART_MAX + 1, buf, sizeof buf), ==, -EINVAL);

    /* Input far longer than any part could normalise to is refused before libidn sees it. */
    n = 0;
    for (int i = 0; i < 2100; i++, n += 2)
        memcpy(in + n, "\xc2\xad", 2); /* soft hyphens: would map to nothing */
    in[n++] = 'a';
    memcpy(in + n, "@x", 2);
    CHECK_INT(jid_parse(&j, in, n + 2, buf, sizeof buf), ==, -EINVAL);
    n = 0;
    for (int i = 0; i < 100; i++, n += 2)
        memcpy(in + n, "\xc2\xad", 2);
    in[n++] = 'a';
    memcpy(in + n, "@x", 2);
    CHECK_INT(jid_parse(&j, in, n + 2, buf, sizeof buf), ==, 0);
    CHECK_STR(j.str, "a@x");
}

static void test_nospace(void)
{
    char buf[JID_BUF], small[32];
    struct jid j;
    const char *in = "JULIET@example.com/foo"; /* 22 bytes normalised */

    memset(small, '#', sizeof small);
    CHECK_INT(jid_parse(&j, in, strlen(in), small, 23), ==, 0);
    CHECK(j.str == small);
    CHECK_STR(j.str, "juliet@example.com/foo");
    CHECK_INT(j.res_len, ==, 3);
    memset(small, '#', sizeof small);
    CHECK_INT(jid_parse(&j, in, strlen(in), small, 22), ==, -ENOSPC);
    CHECK(small[22] == '#'); /* nothing written past cap */
    CHECK_INT(jid_parse(&j, in, strlen(in), small, 0), ==, -ENOSPC);
    /* Invalid beats too small, even when the bad part comes after the one that does not fit. */
    CHECK_INT(jid_parse(&j, "juliet@exa mple.com", 19, small, 3), ==, -EINVAL);
    CHECK_INT(jid_parse(&j, "juliet@example.com/\x01", 20, small, 3), ==, -EINVAL);
    CHECK_INT(jid_parse(&j, "[::1]", 5, buf, sizeof buf), ==, 0);
    CHECK_INT(jid_parse(&j, "[::1]", 5, small, 5), ==, -ENOSPC);
    CHECK_INT(jid_parse(&j, "[::1]", 5, small, 6), ==, 0);
}

static void test_prep_parts(void)
{
    char out[64];

    CHECK_INT(jid_prep_local("JuLiet", 6, out, sizeof out), ==, 6);
    CHECK_STR(out, "juliet");
    CHECK_INT(jid_prep_local("ΣΣ", 4, out, sizeof out), ==, 4);
    CHECK_STR(out, "σσ");
    CHECK_INT(jid_prep_local("a@b", 3, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_local("a/b", 3, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_local("", 0, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_local("JuLiet", 6, out, 6), ==, -ENOSPC);
    CHECK_INT(jid_prep_local("ΣΣ", 4, out, 4), ==, -ENOSPC);
    CHECK_INT(jid_prep_local("a b", 3, out, 1), ==, -EINVAL);

    CHECK_INT(jid_prep_resource("Foo Bar/@", 9, out, sizeof out), ==, 9);
    CHECK_STR(out, "Foo Bar/@"); /* resources keep case, '/' and '@' */
    CHECK_INT(jid_prep_resource("\xef\xbc\xa1", 3, out, sizeof out), ==, 1);
    CHECK_STR(out, "A"); /* but NFKC still applies */
    CHECK_INT(jid_prep_resource("a\nb", 3, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_resource("", 0, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_resource("Foo", 3, out, 3), ==, -ENOSPC);

    CHECK_INT(jid_prep_domain("Example.COM.", 12, out, sizeof out), ==, 11);
    CHECK_STR(out, "example.com");
    CHECK_INT(jid_prep_domain("xn--bcher-kva.example", 21, out, sizeof out), ==, 15);
    CHECK_STR(out, "bücher.example");
    CHECK_INT(jid_prep_domain("[::FFFF:1.2.3.4]", 16, out, sizeof out), ==, 16);
    CHECK_STR(out, "[::ffff:1.2.3.4]");
    CHECK_INT(jid_prep_domain("1.2.3.256", 9, out, sizeof out), ==, 9); /* a host name then */
    CHECK_INT(jid_prep_domain(".", 1, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_domain("a@b", 3, out, sizeof out), ==, -EINVAL);
    CHECK_INT(jid_prep_domain("example.com", 11, out, 11), ==, -ENOSPC);
    CHECK_INT(jid_prep_domain("exa mple.com", 12, out, 2), ==, -EINVAL);
}

static void test_equality(void)
{
    char b1[JID_BUF], b2[JID_BUF], b3[JID_BUF], b4[JID_BUF];
    struct jid a, b, c, d;

    CHECK_INT(parse(&a, "JULIET@Example.COM/x", b1), ==, 0);
    CHECK_INT(parse(&b, "juliet@example.com./y", b2), ==, 0);
    CHECK_INT(parse(&c, "juliet@example.com/x", b3), ==, 0);
    CHECK_INT(parse(&d, "juliet@example.co", b4), ==, 0);
    CHECK(jid_eq_bare(&a, &b));
    CHECK(!jid_eq_full(&a, &b));
    CHECK(jid_eq_full(&a, &c));
    CHECK(!jid_eq_bare(&a, &d));
    CHECK(!jid_eq_bare(&d, &a)); /* a prefix is not equal */
    CHECK(!jid_eq_full(&d, &c));
    CHECK(!jid_eq_full(&c, &d));

    /* A bare JID equals a full one bare, never full. */
    CHECK_INT(parse(&d, "Juliet@EXAMPLE.com", b4), ==, 0);
    CHECK(jid_eq_bare(&a, &d));
    CHECK(!jid_eq_full(&a, &d));
    /* Domain-only against local@domain with the same bytes elsewhere. */
    CHECK_INT(parse(&c, "example.com/juliet", b3), ==, 0);
    CHECK(!jid_eq_bare(&c, &d));
    /* Both spellings of an IDN are one JID. */
    CHECK_INT(parse(&c, "juliet@xn--bcher-kva.example/r", b3), ==, 0);
    CHECK_INT(parse(&d, "Juliet@BÜCHER.example", b4), ==, 0);
    CHECK(jid_eq_bare(&c, &d));
}

static void test_hash(void)
{
    char b1[JID_BUF], b2[JID_BUF];
    struct jid a, b;

    CHECK_INT(parse(&a, "JULIET@Example.COM/x", b1), ==, 0);
    CHECK_INT(parse(&b, "juliet@example.com/y", b2), ==, 0);
    CHECK(jid_hash_bare(&a) == jid_hash_bare(&b));
    /* The shard key is pinned: XXH3 64-bit, seed 0, of the bare JID's bytes. */
    CHECK(jid_hash_bare(&a) == XXH3_64bits("juliet@example.com", 18));
    CHECK(jid_hash("juliet@example.com", 18) == XXH3_64bits("juliet@example.com", 18));
    CHECK(jid_hash(a.str, jid_bare_len(&a)) == jid_hash_bare(&a));
    CHECK(jid_hash_bare(&a) != jid_hash(a.str, a.len));

    CHECK_INT(parse(&b, "romeo@example.com", b2), ==, 0);
    CHECK(jid_hash_bare(&a) != jid_hash_bare(&b));
    CHECK_INT(parse(&b, "example.com", b2), ==, 0);
    CHECK(jid_hash_bare(&b) == XXH3_64bits("example.com", 11));
    CHECK_INT(parse(&a, "xn--bcher-kva.example", b1), ==, 0);
    CHECK_INT(parse(&b, "bücher.example", b2), ==, 0);
    CHECK(jid_hash_bare(&a) == jid_hash_bare(&b));
}

/* xorshift64*: a fixed seed, so a failing string can be replayed. */
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint32_t rng(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * UINT64_C(0x2545f4914f6cdd1d)) >> 32) % n;
}

/*
 * Mostly letters so that many strings are valid, salted with every ASCII byte class the
 * profiles treat specially (separators, the nodeprep list, space, controls, case, "xn--").
 */
static size_t random_ascii(char *s, size_t cap)
{
    static const char *const atoms[] = {
        "a",        "b",       "Z",    "Q",    "0",     "9",
        "-",        "_",       ".",    "@",    "/",     " ",
        "\"",       "&",       "'",    ":",    "<",     ">",
        "[",        "]",       "\\",   "~",    "!",     "=",
        "\t",       "\x01",    "\x7f", "xn--", "XN--",  "xn--bcher-kva",
        "xn--abc-", "example", "COM",  "..",   "[::1]", "127.0.0.1",
        "\0",
    };
    size_t n = 0, want = 1 + rng(40);

    while (n < want) {
        const char *a = atoms[rng(sizeof atoms / sizeof atoms[0])];
        size_t al = *a ? strlen(a) : 1;

        if (rng(3) != 0) { /* letters twice as often as atoms */
            a = &"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[rng(52)];
            al = 1;
        }
        if (n + al > cap)
            break;
        memcpy(s + n, a, al);
        n += al;
    }
    return n;
}

static void test_fast_equals_slow(void)
{
    int valid = 0, invalid = 0;

    for (int i = 0; i < 2000; i++) {
        char in[256], f[JID_BUF], s[JID_BUF];
        struct jid jf, js;
        size_t n = random_ascii(in, sizeof in);
        int rf = jid_parse(&jf, in, n, f, sizeof f);
        int rs = jid_parse_slow(&js, in, n, s, sizeof s);

        if (rf != rs) {
            TEST_FAIL("#%d '%.*s': fast %d, slow %d", i, (int)n, in, rf, rs);
            continue;
        }
        if (rf != 0) {
            invalid++;
            continue;
        }
        valid++;
        if (strcmp(jf.str, js.str) || jf.len != js.len || jf.local_len != js.local_len ||
            jf.domain_off != js.domain_off || jf.domain_len != js.domain_len ||
            jf.res_off != js.res_off || jf.res_len != js.res_len)
            TEST_FAIL("#%d '%.*s': fast '%s', slow '%s'", i, (int)n, in, jf.str, js.str);
    }
    /* Both outcomes must be well exercised or the comparison proves little. */
    CHECK_INT(valid, >=, 200);
    CHECK_INT(invalid, >=, 200);
}

/* Pure ASCII never reaches libidn; anything else, or jid_parse_slow(), does. */
static void test_fast_path_taken(void)
{
    static const char *const ascii[] = {
        "juliet@example.com",  "JULIET@EXAMPLE.COM/Balcony",
        "example.com.",        "[::1]",
        "127.0.0.1/r",         "a\"b@example.com",
        "juliet@exa mple.com", "juliet@example.com/\x01",
    };
    char buf[JID_BUF], out[64];
    struct jid j;

    stringprep_calls = 0;
    for (size_t i = 0; i < sizeof ascii / sizeof ascii[0]; i++)
        jid_parse(&j, ascii[i], strlen(ascii[i]), buf, sizeof buf);
    CHECK_INT(jid_prep_local("Juliet", 6, out, sizeof out), ==, 6);
    CHECK_INT(jid_prep_domain("Example.com", 11, out, sizeof out), ==, 11);
    CHECK_INT(jid_prep_resource("Foo", 3, out, sizeof out), ==, 3);
    CHECK_INT(stringprep_calls, ==, 0);

    /* One call per non-ASCII part, one per domain label on the slow path. */
    CHECK_INT(parse(&j, "juliet@example.com/\u266a", buf), ==, 0);
    CHECK_INT(stringprep_calls, ==, 1);
    stringprep_calls = 0;
    CHECK_INT(parse(&j, "\u03c0@example.com/r", buf), ==, 0);
    CHECK_INT(stringprep_calls, ==, 1);
    stringprep_calls = 0;
    CHECK_INT(parse(&j, "juliet@b\u00fccher.example", buf), ==, 0);
    CHECK_INT(stringprep_calls, >=, 2);
    stringprep_calls = 0;
    CHECK_INT(jid_parse_slow(&j, "juliet@example.com/r", 20, buf, sizeof buf), ==, 0);
    CHECK_INT(stringprep_calls, ==, 4);
}

/* Both tables through jid_parse_slow(): the libidn path alone must agree with them too. */
static void test_fast_equals_slow_table(void)
{
    for (size_t i = 0; i < sizeof jid_invalid / sizeof jid_invalid[0]; i++) {
        const char *in = jid_invalid[i];
        char buf[JID_BUF];
        struct jid j;

        if (jid_parse_slow(&j, in, strlen(in), buf, sizeof buf) != -EINVAL)
            TEST_FAIL("slow path accepts '%s'", in);
    }
    for (size_t i = 0; i < sizeof jid_valid / sizeof jid_valid[0]; i++) {
        const struct jid_case *c = &jid_valid[i];
        char buf[JID_BUF];
        struct jid j;

        if (jid_parse_slow(&j, c->in, strlen(c->in), buf, sizeof buf) != 0 || strcmp(j.str, c->out))
            TEST_FAIL("slow path on '%s'", c->in);
    }
}

int main(void)
{
    RUN(test_valid);
    RUN(test_invalid);
    RUN(test_split);
    RUN(test_limits);
    RUN(test_nospace);
    RUN(test_prep_parts);
    RUN(test_equality);
    RUN(test_hash);
    RUN(test_fast_equals_slow);
    RUN(test_fast_equals_slow_table);
    RUN(test_fast_path_taken);
    return test_done("jid");
}
