/*
 * libFuzzer driver for the config reader (common/config/config.c with its directive table): the
 * input is a config file. Properties, abort() on any violation:
 *   - config_load() returns 0 with a snapshot, or a negative errno with none and a
 *     one-line, NUL-terminated message;
 *   - every number of a loaded snapshot lies in its directive's range (a power of two
 *     where the table says so), every string within its length bounds, every enum names
 *     one of its choices, every list within its count with each item set (an address,
 *     a route's domain, a prefix of its family's length);
 *   - a snapshot equals itself (config_changed) and survives config_ref()/config_free().
 * Files named by @include are not followed (libconfig 1.5 has no hook to confine them,
 * and a fuzzer must not read /dev/zero): such inputs are skipped.
 */
#include "common/config/config.h"
#include "common/config/config_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libconfig 1.5's scanner loses its string buffer when a file ends inside a string
 * (strbuf_append, never freed on that error path): its leak, not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

static uint64_t field(const struct config *c, const struct config_directive *d)
{
    const unsigned char *p = (const unsigned char *)c + d->off;
    switch (d->size) {
    case 1: return *(const uint8_t *)p;
    case 2: return *(const uint16_t *)p;
    case 4: return *(const uint32_t *)p;
    default: return *(const uint64_t *)p;
    }
}

static void check(const struct config *c)
{
    for (size_t i = 0; i < config_table_len; i++) {
        const struct config_directive *d = &config_table[i];
        const void *f = (const unsigned char *)c + d->off;
        switch (d->type) {
        case CONFIG_T_INT:
        case CONFIG_T_SIZE:
        case CONFIG_T_DURATION: {
            uint64_t v = field(c, d);
            FUZZ_CHECK(v >= d->min && v <= d->max);
            FUZZ_CHECK(!(d->flags & CONFIG_F_POW2) || !(v & (v - 1)));
            break;
        }
        case CONFIG_T_STRING: {
            const char *s = *(const char *const *)f;
            FUZZ_CHECK(s && strlen(s) <= d->max && (strlen(s) >= d->min || (d->flags & CONFIG_F_PATH)));
            break;
        }
        case CONFIG_T_ENUM: {
            int v = *(const int *)f, n = 0;
            while (d->choices[n])
                n++;
            FUZZ_CHECK(v >= 0 && v < n);
            break;
        }
        case CONFIG_T_LIST: {
            const struct config_list *l = f;
            FUZZ_CHECK(l->n <= d->max && (l->n == 0) == (l->items == NULL));
            for (uint32_t j = 0; j < l->n && d->item == CONFIG_T_PREFIX; j++) {
                const struct net_prefix *p = &l->prefixes[j];
                FUZZ_CHECK(p->bits <= (p->family == AF_INET ? 32 : 128));
                FUZZ_CHECK(p->family == AF_INET || p->family == AF_INET6);
            }
            for (uint32_t j = 0; j < l->n && d->item != CONFIG_T_PREFIX; j++) {
                const struct config_addr *a =
                    d->item == CONFIG_T_ROUTE ? &l->routes[j].addr : &l->addrs[j];
                FUZZ_CHECK(a->len == sizeof a->addr.in || a->len == sizeof a->addr.in6);
                FUZZ_CHECK(d->item != CONFIG_T_ROUTE || l->routes[j].domain[0]);
            }
            break;
        }
        case CONFIG_T_BOOL:
        case CONFIG_T_ADDR:
        case CONFIG_T_ROUTE:
        case CONFIG_T_PREFIX:
            break;
        }
    }
    FUZZ_CHECK(config_changed(c, c, false) == NULL);
    config_free(config_ref(c));
}

static char dir[] = "/tmp/starling-fuzz-config-XXXXXX", path[64];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        if (!mkdtemp(dir))
            abort();
        snprintf(path, sizeof path, "%s/starling.conf", dir);
        atexit(cleanup);
    }
    if (size > 65536 || memmem(data, size, "include", 7))
        return 0;
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    struct config *c = NULL;
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = config_load(path, &c, err, sizeof err);
    if (rc == 0) {
        FUZZ_CHECK(c != NULL);
        check(c);
        config_free(c);
    } else {
        FUZZ_CHECK(rc < 0 && c == NULL && memchr(err, '\0', sizeof err) && err[0]);
        FUZZ_CHECK(!strchr(err, '\n'));
    }
    return 0;
}
