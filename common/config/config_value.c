/* Values: a directive's value from text (a default from the table, a string from the
 * file) into its field, with the range and form checks and the file's words for what is
 * wrong; the lists' items. config.c's loading and snapshots use them (config_table.h). */
#include "common/config/config_table.h"
#include "common/xmpp/jid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_uint(void *p, size_t size, uint64_t v)
{
    switch (size) {
    case 1:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(uint64_t *)p = v;
        break;
    }
}

int config_set_num(const struct config_directive *d, struct config *c, long long v,
                   const char *shown, char *msg, size_t n)
{
    char lo[24], hi[24];
    if (v < 0 || (uint64_t)v < d->min || (uint64_t)v > d->max) {
        config_show_num(lo, sizeof lo, d, d->min);
        config_show_num(hi, sizeof hi, d, d->max);
        snprintf(msg, n, "%s is out of range %s..%s", shown, lo, hi);
        return -EINVAL;
    }
    if ((d->flags & CONFIG_F_POW2) && (v & (v - 1))) {
        snprintf(msg, n, "%s is not a power of two", shown);
        return -EINVAL;
    }
    put_uint(config_field(c, d), d->size, (uint64_t)v);
    return 0;
}

/* Parses digits with an optional one-letter suffix from `units` ("KMG", "smhd"). */
static bool parse_suffixed(const char *s, const char *units, const uint64_t *mult, long long *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p) {
        const char *u = strchr(units, *p);
        if (!u || p[1])
            return false;
        uint64_t m = mult[u - units];
        if (v > UINT64_MAX / m)
            return false;
        v *= m;
    }
    /* Anything above LLONG_MAX is out of every range; clamp instead of wrapping. */
    *out = v > (uint64_t)0x7fffffffffffffff ? 0x7fffffffffffffff : (long long)v;
    return true;
}

int config_set_addr(const struct config_directive *d, struct config_addr *a, const char *s,
                    char *msg, size_t n)
{
    char host[64];
    const char *port;
    memset(a, 0, sizeof *a);
    if (!*s) {
        if (d->flags & CONFIG_F_EMPTY)
            return 0;
        snprintf(msg, n, "must not be empty");
        return -EINVAL;
    }
    size_t len = strlen(s);
    if (len >= sizeof a->text)
        goto bad;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            goto bad;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            goto bad;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    long long p;
    if (!parse_suffixed(port, "", NULL, &p) || p < 1 || p > 65535)
        goto bad;
    if (s[0] == '[') {
        a->addr.in6.sin6_family = AF_INET6;
        a->addr.in6.sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, host, &a->addr.in6.sin6_addr) != 1)
            goto bad;
        a->len = sizeof a->addr.in6;
    } else {
        a->addr.in.sin_family = AF_INET;
        a->addr.in.sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, host, &a->addr.in.sin_addr) != 1)
            goto bad;
        a->len = sizeof a->addr.in;
    }
    memcpy(a->text, s, len + 1);
    return 0;
bad:
    memset(a, 0, sizeof *a);
    snprintf(msg, n,
             "\"%.80s\" is not an address: write an IPv4 address or a bracketed IPv6 address "
             "and a port, such as \"127.0.0.1:5222\" or \"[::1]:5222\"%s",
             s, d->flags & CONFIG_F_EMPTY ? ", or \"\" to disable" : "");
    return -EINVAL;
}

/* "domain=IPv4:port" or "domain=[IPv6]:port"; the domain must be in normal form, as every
 * domain it will be compared with is. */
int config_set_route(const struct config_directive *d, struct config_route *r, const char *s,
                     char *msg, size_t n)
{
    char dom[JID_BUF];
    const char *eq = strchr(s, '=');
    memset(r, 0, sizeof *r);
    if (!eq || eq == s || config_set_addr(d, &r->addr, eq + 1, msg, n) < 0) {
        snprintf(msg, n,
                 "\"%.80s\" is not a route: write domain=IPv4:port or domain=[IPv6]:port, such "
                 "as \"a.example=127.0.0.2:5269\"",
                 s);
        return -EINVAL;
    }
    size_t len = (size_t)(eq - s);
    int rc = jid_prep_domain(s, len, dom, sizeof dom);
    if (rc == -ENOMEM) {
        snprintf(msg, n, "out of memory");
        return rc;
    }
    if (rc < 0) {
        snprintf(msg, n, "\"%.*s\" is not a domain", (int)(len > 80 ? 80 : len), s);
        return -EINVAL;
    }
    if ((size_t)rc != len || memcmp(dom, s, len)) {
        snprintf(msg, n, "\"%.*s\" is not in normal form: write \"%.80s\"",
                 (int)(len > 80 ? 80 : len), s, dom);
        return -EINVAL;
    }
    r->domain = strdup(dom);
    if (!r->domain) {
        snprintf(msg, n, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

size_t config_item_size(enum config_type t)
{
    return t == CONFIG_T_ROUTE    ? sizeof(struct config_route)
           : t == CONFIG_T_PREFIX ? sizeof(struct net_prefix)
                                  : sizeof(struct config_addr);
}

void *config_item_at(enum config_type t, void *items, size_t i)
{
    return (char *)items + i * config_item_size(t);
}

/* What no two items of a list may share: the address, the domain of a route, or the
 * prefix in its normal form. */
const char *config_item_key(enum config_type t, const void *item)
{
    return t == CONFIG_T_ROUTE    ? ((const struct config_route *)item)->domain
           : t == CONFIG_T_PREFIX ? ((const struct net_prefix *)item)->text
                                  : ((const struct config_addr *)item)->text;
}

void config_list_clear(enum config_type t, struct config_list *l)
{
    for (size_t i = 0; t == CONFIG_T_ROUTE && i < l->n; i++)
        free((char *)l->routes[i].domain);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

bool config_list_equal(enum config_type t, const struct config_list *a, const struct config_list *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const void *x = config_item_at(t, a->items, i), *y = config_item_at(t, b->items, i);
        if (strcmp(config_item_key(t, x), config_item_key(t, y)))
            return false;
        if (t == CONFIG_T_ROUTE && strcmp(((const struct config_route *)x)->addr.text,
                                          ((const struct config_route *)y)->addr.text))
            return false;
    }
    return true;
}

static const uint64_t size_mult[] = {1ull << 10, 1ull << 10, 1ull << 20,
                                     1ull << 20, 1ull << 30, 1ull << 30};
static const uint64_t dur_mult[] = {1, 60, 3600, 86400};

int config_set_text(const struct config_directive *d, struct config *c, const char *s, char *msg,
                    size_t n)
{
    long long v;
    size_t len;
    char quoted[96];
    snprintf(quoted, sizeof quoted, "\"%.80s\"", s);
    switch (d->type) {
    case CONFIG_T_INT:
        if (!parse_suffixed(s, "", NULL, &v))
            break;
        return config_set_num(d, c, v, s, msg, n);
    case CONFIG_T_SIZE:
        if (!parse_suffixed(s, "KkMmGg", size_mult, &v)) {
            snprintf(msg, n, "%s is not a size: bytes, or a number with a K, M or G suffix",
                     quoted);
            return -EINVAL;
        }
        return config_set_num(d, c, v, s, msg, n);
    case CONFIG_T_DURATION:
        if (!parse_suffixed(s, "smhd", dur_mult, &v)) {
            snprintf(msg, n,
                     "%s is not a duration: seconds, or a number with an s, m, h or d "
                     "suffix",
                     quoted);
            return -EINVAL;
        }
        return config_set_num(d, c, v, s, msg, n);
    case CONFIG_T_BOOL:
        if (strcmp(s, "true") && strcmp(s, "false"))
            break;
        *(bool *)config_field(c, d) = !strcmp(s, "true");
        return 0;
    case CONFIG_T_STRING: {
        len = strlen(s);
        if (len < d->min) {
            snprintf(msg, n, "must not be empty");
            return -EINVAL;
        }
        if (len > d->max) {
            snprintf(msg, n, "is %zu bytes long, more than %llu", len, (unsigned long long)d->max);
            return -EINVAL;
        }
        char *copy = strdup(s);
        if (!copy) {
            snprintf(msg, n, "out of memory");
            return -ENOMEM;
        }
        const char **slot = config_field(c, d);
        free((char *)*slot);
        *slot = copy;
        return 0;
    }
    case CONFIG_T_ENUM: {
        for (int i = 0; d->choices[i]; i++) {
            if (!strcmp(d->choices[i], s)) {
                *(int *)config_field(c, d) = i;
                return 0;
            }
        }
        len = (size_t)snprintf(msg, n, "%s is not one of", quoted);
        for (int i = 0; d->choices[i] && len < n; i++)
            len += (size_t)snprintf(msg + len, n - len, "%s %s", i ? "," : "", d->choices[i]);
        return -EINVAL;
    }
    case CONFIG_T_ADDR:
        return config_set_addr(d, config_field(c, d), s, msg, n);
    case CONFIG_T_LIST:
        /* Only as a default or the file's "": both the empty list. */
        if (*s)
            break;
        config_list_clear(d->item, config_field(c, d));
        return 0;
    case CONFIG_T_ROUTE:
    case CONFIG_T_PREFIX:
        break;
    }
    snprintf(msg, n, "%s is not a valid value", quoted);
    return -EINVAL;
}
