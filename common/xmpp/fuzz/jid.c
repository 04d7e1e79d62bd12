/*
 * libFuzzer driver for common/xmpp/jid.c. The input is a JID. Properties, abort() on any violation:
 *   - jid_parse() returns 0 or -EINVAL (-ENOMEM tolerated), never -ENOSPC with JID_BUF;
 *   - a parsed JID's offsets agree with its string, and the bare hash is jid_hash() of the span;
 *   - normalisation is idempotent: the normalised string parses back to itself, same offsets;
 *   - a buffer of exactly len + 1 bytes is enough, one byte less gives -ENOSPC;
 *   - pure ASCII input: the fast path and jid_parse_slow() agree byte for byte, or both refuse;
 *   - each jid_prep_*() on the whole input is idempotent too.
 */
#define JID_TEST_API
#include "common/xmpp/jid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct jid *a, const struct jid *b)
{
    return a->len == b->len && !memcmp(a->str, b->str, a->len) && a->local_len == b->local_len &&
           a->domain_off == b->domain_off && a->domain_len == b->domain_len &&
           a->res_off == b->res_off && a->res_len == b->res_len;
}

static void check_layout(const struct jid *j)
{
    const char *s = j->str;
    size_t bare = jid_bare_len(j);

    FUZZ_CHECK(strlen(s) == j->len);
    FUZZ_CHECK(j->domain_len >= 1 && j->domain_len <= JID_PART_MAX);
    FUZZ_CHECK(j->local_len <= JID_PART_MAX && j->res_len <= JID_PART_MAX);
    if (j->local_len) {
        FUZZ_CHECK(s[j->local_len] == '@' && j->domain_off == j->local_len + 1);
        FUZZ_CHECK(!memchr(s, '@', j->local_len) && !memchr(s, '/', j->local_len));
    } else {
        FUZZ_CHECK(j->domain_off == 0);
    }
    FUZZ_CHECK(!memchr(s + j->domain_off, '@', j->domain_len));
    FUZZ_CHECK(!memchr(s + j->domain_off, '/', j->domain_len));
    FUZZ_CHECK(jid_is_bare(j) == (j->res_len == 0));
    if (j->res_len) {
        FUZZ_CHECK(s[j->res_off - 1] == '/');
        FUZZ_CHECK(j->res_off == j->domain_off + j->domain_len + 1);
        FUZZ_CHECK(j->res_off + j->res_len == j->len);
        FUZZ_CHECK(bare == (size_t)j->res_off - 1);
    } else {
        FUZZ_CHECK(j->domain_off + j->domain_len == j->len && bare == j->len);
    }
    FUZZ_CHECK(jid_hash_bare(j) == jid_hash(s, bare));
    FUZZ_CHECK(jid_eq_full(j, j) && jid_eq_bare(j, j));
}

static bool is_ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return false;
    return true;
}

/* A part prepped alone is a fixed point of the same prep. */
static void check_prep(int (*prep)(const char *, size_t, char *, size_t), const char *in,
                       size_t len)
{
    char out[JID_PART_MAX + 1], again[JID_PART_MAX + 1];
    int n = prep(in, len, out, sizeof out), m;

    FUZZ_CHECK(n == -EINVAL || n == -ENOMEM || (n >= 1 && n <= JID_PART_MAX));
    if (n < 0)
        return;
    FUZZ_CHECK((size_t)n == strlen(out));
    m = prep(out, (size_t)n, again, sizeof again);
    FUZZ_CHECK(m == n && !memcmp(out, again, (size_t)n + 1));
    FUZZ_CHECK(prep(in, len, again, (size_t)n) == -ENOSPC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    static char buf[JID_BUF], again[JID_BUF], slow[JID_BUF], tight[JID_BUF];
    struct jid j, k, s;
    int rc = jid_parse(&j, in, size, buf, sizeof buf);

    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (is_ascii(data, size)) {
        int rs = jid_parse_slow(&s, in, size, slow, sizeof slow);

        FUZZ_CHECK(rs == rc);
        FUZZ_CHECK(rc != 0 || same(&j, &s));
    }
    if (rc == 0) {
        FUZZ_CHECK(j.str == buf);
        check_layout(&j);
        FUZZ_CHECK(jid_parse(&k, j.str, j.len, again, sizeof again) == 0);
        FUZZ_CHECK(same(&j, &k) && jid_eq_full(&j, &k) && jid_eq_bare(&j, &k));
        FUZZ_CHECK(jid_hash_bare(&j) == jid_hash_bare(&k));
        FUZZ_CHECK(jid_parse(&k, in, size, tight, (size_t)j.len + 1) == 0);
        FUZZ_CHECK(k.str == tight && same(&j, &k));
        FUZZ_CHECK(jid_parse(&k, in, size, tight, j.len) == -ENOSPC);
    }
    check_prep(jid_prep_local, in, size);
    check_prep(jid_prep_domain, in, size);
    check_prep(jid_prep_resource, in, size);
    return 0;
}
