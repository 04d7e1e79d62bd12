/*
 * libFuzzer driver of common/auth/certid.c: the input is a DER certificate (the seeds are
 * ones `starlingctl gencert` made, with every kind of name). Checks, besides ASan/UBSan:
 * every name reported is printable, short enough and of its kind's syntax; each name that
 * can identify a server identifies it (a DNS-ID or CN its domain, a wildcard one label
 * under it, an SRV-ID for _xmpp-server its domain), so reporting and matching agree.
 */
#include "common/auth/certid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fuzz {
    const uint8_t *der;
    size_t len;
};

static bool numeric_tld(const char *host)
{
    const char *last = strrchr(host, '.');
    last = last ? last + 1 : host;
    return strspn(last, "0123456789") == strlen(last);
}

static void must_match(const struct fuzz *f, const char *domain)
{
    if (!numeric_tld(domain) && !certid_match(f->der, f->len, domain)) {
        fprintf(stderr, "a reported name does not match: %s\n", domain);
        abort();
    }
}

static int check(void *ud, enum certid_kind kind, const char *name)
{
    const struct fuzz *f = ud;
    char d[300];
    size_t n = strlen(name);

    if (n == 0 || n > 3071)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            abort();
    switch (kind) {
    case CERTID_DNS:
    case CERTID_CN:
        if (n > 253 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-.*") != n)
            abort();
        if (name[0] == '*') {
            snprintf(d, sizeof d, "x%s", name + 1);
            must_match(f, d);
        } else {
            must_match(f, name);
        }
        break;
    case CERTID_SRV:
        if (name[0] != '_' || !strchr(name, '.'))
            abort();
        if (!strncmp(name, "_xmpp-server.", 13))
            must_match(f, name + 13);
        break;
    case CERTID_XMPP:
        break;
    default:
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz f = {data, size};
    certid_each(data, size, check, &f);
    certid_match(data, size, "example.com");
    certid_match(data, size, "b\xc3\xbc" "cher.example");
    return 0;
}
