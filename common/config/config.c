/* Loading: libconfig parses the file, the directive table (config_table.c) gives its
 * tree a meaning; and the snapshots that result. */
#include "common/config/config.h"
#include "common/config/config_table.h"
#include "common/xmpp/jid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct config_directive *config_find(const char *name)
{
    for (size_t i = 0; i < config_table_len; i++)
        if (!strcmp(config_table[i].name, name))
            return &config_table[i];
    return NULL;
}

/* True when some directive lives in the group `name` ("c2s" for "c2s.threads"). */
static bool config_is_group(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < config_table_len; i++)
        if (!strncmp(config_table[i].name, name, n) && config_table[i].name[n] == '.')
            return true;
    return false;
}

/* ---- snapshots --------------------------------------------------------------------------- */

static void config_destroy_snapshot(struct config *c)
{
    for (size_t i = 0; i < config_table_len; i++) {
        if (config_table[i].type == CONFIG_T_STRING) {
            const char **slot = config_field(c, &config_table[i]);
            free((char *)*slot);
            *slot = NULL;
        } else if (config_table[i].type == CONFIG_T_LIST) {
            config_list_clear(config_table[i].item, config_field(c, &config_table[i]));
        }
    }
    free((char *)c->path);
    free(c);
}

/* A snapshot holding the defaults, or NULL with the reason in msg. */
static struct config *config_new(char *msg, size_t n)
{
    struct config *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(msg, n, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs_, 1);
    for (size_t i = 0; i < config_table_len; i++) {
        const struct config_directive *d = &config_table[i];
        char why[256];
        if (config_set_text(d, c, d->def, why, sizeof why) < 0) {
            /* A bug in the table, which the unit tests catch. */
            snprintf(msg, n, "%s: the built-in default: %s", d->name, why);
            config_destroy_snapshot(c);
            return NULL;
        }
    }
    return c;
}

/* c2s.threads and router.shards of 0: half the cores each, so that the two stages of a
 * stanza's path do not compete for one core (on 2 cores, 1 and 1 beat 2 and 2 in CPU
 * per message and per login; bench/RESULTS.md). Every process reads the same count; a
 * process started after a CPU hot-plug that changes it finds the shared segment's
 * layout different and refuses to start (seg_map), rather than misroute. */
static void config_resolve_auto(struct config *c)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int half = n >= 4 ? (int)(n / 2) : 1;
    if (half > 64)
        half = 64;
    if (!c->c2s.threads)
        c->c2s.threads = half;
    if (!c->router.shards)
        c->router.shards = half;
}

/* muc.domain "" is conference.<domain>. 0 or -ENOMEM. */
static int config_resolve_muc(struct config *c)
{
    if (c->muc.domain[0])
        return 0;
    char *d;
    if (asprintf(&d, "conference.%s", c->domain) < 0)
        return -ENOMEM;
    free((char *)c->muc.domain);
    c->muc.domain = d;
    return 0;
}

struct config *config_defaults(void)
{
    char msg[256];
    struct config *c = config_new(msg, sizeof msg);
    if (c) {
        config_resolve_auto(c);
        if (config_resolve_muc(c) < 0) {
            config_destroy_snapshot(c);
            c = NULL;
        }
    }
    return c;
}

const struct config *config_ref(const struct config *c)
{
    /* Relaxed: taking a reference publishes nothing; the snapshot was published to this
     * thread by whatever handed it over. */
    atomic_fetch_add_explicit(&((struct config *)c)->refs_, 1, memory_order_relaxed);
    return c;
}

void config_free(const struct config *c)
{
    if (!c)
        return;
    /* acq_rel: the last owner must see every other owner's reads finished. */
    if (atomic_fetch_sub_explicit(&((struct config *)c)->refs_, 1, memory_order_acq_rel) == 1)
        config_destroy_snapshot((struct config *)c);
}

const char *config_changed(const struct config *a, const struct config *b, bool restart_only)
{
    for (size_t i = 0; i < config_table_len; i++) {
        const struct config_directive *d = &config_table[i];
        if (restart_only && !(d->flags & CONFIG_F_RESTART))
            continue;
        const void *x = config_cfield(a, d), *y = config_cfield(b, d);
        bool same;
        if (d->type == CONFIG_T_STRING)
            same = !strcmp(*(const char *const *)x, *(const char *const *)y);
        else if (d->type == CONFIG_T_ADDR)
            same = !strcmp(((const struct config_addr *)x)->text,
                           ((const struct config_addr *)y)->text);
        else if (d->type == CONFIG_T_LIST)
            same = config_list_equal(d->item, x, y);
        else
            same = !memcmp(x, y, d->size);
        if (!same)
            return d->name;
    }
    return NULL;
}

/* ---- loading ----------------------------------------------------------------------------- */

struct config_loader {
    struct config *c;
    const char *path;
    const char *incdir; /* the directory of path, where @include looks */
    char filebuf[4096]; /* an included file's name, resolved */
    const config_t *lc; /* the parsed file */
    char *err;
    size_t errlen;
};

static int fail(struct config_loader *ld, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The name of a file libconfig read. It records an included file's name as the @include
 * line wrote it, relative to the include directory; errors name it as the operator can
 * find it. */
static const char *resolve(struct config_loader *ld, const char *file)
{
    if (!file || !strcmp(file, ld->path))
        return ld->path;
    if (file[0] == '/' || !ld->incdir)
        return file;
    snprintf(ld->filebuf, sizeof ld->filebuf, "%s/%s", ld->incdir, file);
    return ld->filebuf;
}

/* "file:line: " + message into ld->err. */
static int fail(struct config_loader *ld, const char *file, unsigned line, const char *fmt, ...)
{
    if (!ld->errlen)
        return -EINVAL;
    file = resolve(ld, file);
    int n = line ? snprintf(ld->err, ld->errlen, "%s:%u: ", file, line)
                 : snprintf(ld->err, ld->errlen, "%s: ", file);
    if (n >= 0 && (size_t)n < ld->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* One line, whatever the file's values hold (a quoted string may span lines). */
    for (char *p = ld->err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return -EINVAL;
}

/* Edit distance between short names, for "did you mean". */
static unsigned distance(const char *a, const char *b)
{
    unsigned row[64], la = (unsigned)strlen(a), lb = (unsigned)strlen(b);
    if (la >= 64 || lb >= 64)
        return 64;
    for (unsigned j = 0; j <= lb; j++)
        row[j] = j;
    for (unsigned i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = i;
        for (unsigned j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int fail_nomem(struct config_loader *ld)
{
    fail(ld, NULL, 0, "out of memory");
    return -ENOMEM;
}

static int fail_unknown(struct config_loader *ld, const config_setting_t *s, const char *name)
{
    const char *best = NULL;
    unsigned best_d = 3; /* suggest only a near miss: two edits at most */
    for (size_t i = 0; i < config_table_len; i++) {
        unsigned dd = distance(name, config_table[i].name);
        if (dd < best_d) {
            best_d = dd;
            best = config_table[i].name;
        }
    }
    if (best)
        return fail(ld, config_setting_source_file(s), config_setting_source_line(s),
                    "unknown key '%s' (did you mean '%s'?)", name, best);
    return fail(ld, config_setting_source_file(s), config_setting_source_line(s),
                "unknown key '%s'", name);
}

static const char *type_name(int t)
{
    switch (t) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a decimal number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "something else";
    }
}

static const char *expected(enum config_type t)
{
    switch (t) {
    case CONFIG_T_INT:
        return "an integer";
    case CONFIG_T_SIZE:
        return "a size (an integer, or a string such as \"256K\")";
    case CONFIG_T_DURATION:
        return "a duration (seconds, or a string such as \"5m\")";
    case CONFIG_T_BOOL:
        return "true or false";
    case CONFIG_T_ENUM:
    case CONFIG_T_STRING:
        return "a string";
    case CONFIG_T_ADDR:
        return "an address string such as \"127.0.0.1:5222\"";
    case CONFIG_T_ROUTE:
    case CONFIG_T_PREFIX:
    case CONFIG_T_LIST:
        return "a list of strings, [ \"...\", \"...\" ]";
    }
    return "?";
}

/*
 * Fills a list directive from the file's array or list, checking each item as its type
 * says. An item's error names the item's line as libconfig records it: that of the token
 * after the string (its parser looks ahead for an adjacent string to concatenate), so the
 * last item of a list whose ']' stands on a line of its own is reported at that line.
 */
static int set_list(struct config_loader *ld, const struct config_directive *d,
                    const config_setting_t *s)
{
    unsigned n = (unsigned)config_setting_length(s);
    struct config_list l = {0};
    char why[320];
    int rc = 0;
    if (n > d->max)
        return fail(ld, config_setting_source_file(s), config_setting_source_line(s),
                    "%s: %u items, more than %llu", d->name, n, (unsigned long long)d->max);
    l.items = n ? calloc(n, config_item_size(d->item)) : NULL;
    if (n && !l.items)
        return fail_nomem(ld);
    for (unsigned i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);
        const char *file = config_setting_source_file(e);
        unsigned line = config_setting_source_line(e);
        void *item = config_item_at(d->item, l.items, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            rc = fail(ld, file, line, "%s, item %u: expected a string, not %s", d->name, i + 1,
                      type_name(config_setting_type(e)));
            goto out;
        }
        const char *text = config_setting_get_string(e);
        rc = d->item == CONFIG_T_ROUTE    ? config_set_route(d, item, text, why, sizeof why)
             : d->item == CONFIG_T_PREFIX ? net_prefix_parse(text, item, why, sizeof why)
                                          : config_set_addr(d, item, text, why, sizeof why);
        if (rc == 0)
            l.n = i + 1;
        if (rc == -ENOMEM) {
            rc = fail_nomem(ld);
            goto out;
        }
        if (rc < 0) {
            rc = fail(ld, file, line, "%s, item %u: %s", d->name, i + 1, why);
            goto out;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(config_item_key(d->item, config_item_at(d->item, l.items, j)), config_item_key(d->item, item)))
                continue;
            rc = d->item == CONFIG_T_ROUTE
                     ? fail(ld, file, line, "%s, item %u: %s has a route already (item %u)",
                            d->name, i + 1, config_item_key(d->item, item), j + 1)
                     : fail(ld, file, line, "%s, item %u: \"%s\" is item %u too", d->name, i + 1,
                            config_item_key(d->item, item), j + 1);
            goto out;
        }
    }
    config_list_clear(d->item, config_field(ld->c, d));
    *(struct config_list *)config_field(ld->c, d) = l;
    return 0;
out:
    config_list_clear(d->item, &l);
    return rc;
}

/* Applies one leaf setting to its directive. */
static int apply(struct config_loader *ld, const struct config_directive *d,
                 const config_setting_t *s)
{
    const char *file = config_setting_source_file(s);
    unsigned line = config_setting_source_line(s);
    int t = config_setting_type(s);
    bool numeric =
        d->type == CONFIG_T_INT || d->type == CONFIG_T_SIZE || d->type == CONFIG_T_DURATION;
    char why[320], shown[24];
    int rc;

    if (d->type == CONFIG_T_LIST && (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST))
        return set_list(ld, d, s);
    if ((t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) && numeric) {
        long long v = config_setting_get_int64(s);
        snprintf(shown, sizeof shown, "%lld", v);
        rc = config_set_num(d, ld->c, v, shown, why, sizeof why);
    } else if (t == CONFIG_TYPE_BOOL && d->type == CONFIG_T_BOOL) {
        *(bool *)config_field(ld->c, d) = config_setting_get_bool(s);
        rc = 0;
    } else if (t == CONFIG_TYPE_STRING && d->type != CONFIG_T_INT && d->type != CONFIG_T_BOOL &&
               (d->type != CONFIG_T_LIST || !*config_setting_get_string(s))) {
        rc = config_set_text(d, ld->c, config_setting_get_string(s), why, sizeof why);
    } else {
        snprintf(why, sizeof why, "expected %s, not %s", expected(d->type), type_name(t));
        rc = -EINVAL;
    }
    if (rc == -ENOMEM)
        return fail_nomem(ld);
    if (rc < 0)
        return fail(ld, file, line, "%s: %s", d->name, why);
    return 0;
}

/* Walks a group of the file; prefix is the group's dotted name ("" at the top). */
static int walk(struct config_loader *ld, const config_setting_t *group, const char *prefix)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        char name[128];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", config_setting_name(s));
        const struct config_directive *d = config_find(name);
        int rc;
        if (d)
            rc = apply(ld, d, s);
        else if (config_setting_is_group(s) && config_is_group(name))
            rc = walk(ld, s, name);
        else if (config_is_group(name))
            rc = fail(ld, config_setting_source_file(s), config_setting_source_line(s),
                      "%s: expected a group (%s = { ... };), not %s", name, name,
                      type_name(config_setting_type(s)));
        else
            rc = fail_unknown(ld, s, name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An error about directive `name` found after the walk: at its line if the file set it. */
static int fail_at(struct config_loader *ld, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct config_loader *ld, const char *name, const char *fmt, ...)
{
    const config_setting_t *s = config_lookup(ld->lc, name);
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return fail(ld, s ? config_setting_source_file(s) : NULL, s ? config_setting_source_line(s) : 0,
                "%s: %s", name, why);
}

/* Rules between directives, and on a value's form, which the table cannot express. */
/* "host:port": a domain name (letters, digits, '-', '.'), an IPv4 address or an [IPv6] one,
 * and a port 1..65535. What a client is sent to must be something it can connect to. */
static bool config_host_port(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return false;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port < 1 || port > 65535)
        return false;
    if (s[0] == '[') {
        char a[64];
        struct in6_addr in6;
        size_t n = (size_t)(colon - s);
        if (n < 3 || colon[-1] != ']' || n - 2 >= sizeof a)
            return false;
        memcpy(a, s + 1, n - 2);
        a[n - 2] = '\0';
        return inet_pton(AF_INET6, a, &in6) == 1;
    }
    for (const char *p = s; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            return false;
    return true;
}

static int cross_check(struct config_loader *ld)
{
    const struct config *c = ld->c;
    char a[24], b[24], dom[JID_BUF];
    /* Every JID a peer sends is compared with the domain once normalised (RFC 7622), so
     * with "LocalHost" every client naming it would get host-unknown; the operator writes
     * the normal form. */
    if (jid_prep_domain(c->domain, strlen(c->domain), dom, sizeof dom) < 0)
        return fail_at(ld, "domain", "\"%s\" is not a domain", c->domain);
    if (strcmp(dom, c->domain) != 0)
        return fail_at(ld, "domain", "\"%s\" is not in normal form: write \"%s\"", c->domain, dom);
    if (jid_prep_domain(c->muc.domain, strlen(c->muc.domain), dom, sizeof dom) < 0 ||
        strcmp(dom, c->muc.domain) != 0)
        return fail_at(ld, "muc.domain", "\"%s\" is not a domain in normal form", c->muc.domain);
    if (!strcmp(c->muc.domain, c->domain))
        return fail_at(ld, "muc.domain", "\"%s\" is the domain itself", c->muc.domain);
    if (c->storage.backend == STORE_BACKEND_POSTGRESQL && !c->storage.dsn[0])
        return fail_at(ld, "storage.backend", "postgresql needs storage.dsn");
    if (!c->c2s.listen.len && !c->c2s.listen_tls.len)
        return fail_at(ld, "c2s.listen",
                       "c2s.listen and c2s.listen_tls are both disabled: no client could connect");
    if (c->c2s.listen.len && c->c2s.listen.len == c->c2s.listen_tls.len &&
        !memcmp(&c->c2s.listen.addr, &c->c2s.listen_tls.addr, c->c2s.listen.len))
        return fail_at(ld, "c2s.listen_tls", "\"%s\" is c2s.listen too", c->c2s.listen.text);
    if (c->admin.drain_redirect[0] && !config_host_port(c->admin.drain_redirect))
        return fail_at(ld, "admin.drain_redirect", "\"%s\" is not host:port", c->admin.drain_redirect);
    if (c->shm.ring_size < 2ull * c->c2s.max_stanza_size) {
        config_show_num(a, sizeof a, config_find("shm.ring_size"), c->shm.ring_size);
        config_show_num(b, sizeof b, config_find("c2s.max_stanza_size"), c->c2s.max_stanza_size);
        return fail_at(ld, "shm.ring_size", "%s is less than twice c2s.max_stanza_size (%s)", a, b);
    }
    return 0;
}

/*
 * A relative file name in the configuration is relative to the folder of the file
 * loaded, not to the working directory of whichever process reads it: the supervisor,
 * its children and starlingctl, run from anywhere, all find the same files. The folder
 * is made absolute here, once, so every snapshot holds absolute names. Defaults count
 * as written in the file (an empty file keeps the database beside itself); an included
 * file's names are relative to the same folder, as its @include line is.
 */
static int resolve_paths(struct config_loader *ld)
{
    char *base = realpath(ld->incdir, NULL);
    int rc = 0;
    if (!base)
        return errno == ENOMEM ? fail_nomem(ld)
                               : fail(ld, NULL, 0, "cannot resolve its folder %s: %s", ld->incdir,
                                      strerror(errno));
    const char *sep = strcmp(base, "/") ? "/" : "";
    for (size_t i = 0; rc == 0 && i < config_table_len; i++) {
        const struct config_directive *d = &config_table[i];
        const char **slot = config_field(ld->c, d);
        if (!(d->flags & CONFIG_F_PATH) || (*slot)[0] == '/' || !(*slot)[0])
            continue;
        char *abs;
        if (asprintf(&abs, "%s%s%s", base, sep, *slot) < 0) {
            rc = fail_nomem(ld);
        } else if (strlen(abs) > d->max) {
            rc = fail_at(ld, d->name, "is %zu bytes long once made absolute, more than %llu",
                         strlen(abs), (unsigned long long)d->max);
            free(abs);
        } else {
            free((char *)*slot);
            *slot = abs;
        }
    }
    free(base);
    return rc;
}

/*
 * libconfig 1.5 reads an integer literal that does not fit in 32 bits (without an L
 * suffix) by silently wrapping it: 4294967298 arrives as 2. So the file's text is
 * scanned for such literals first. Returns the line of the first one, 0 if none, and
 * copies the literal into lit.
 */
static unsigned find_wrapped_literal(const char *text, char *lit, size_t litlen)
{
    unsigned line = 1;
    for (const char *p = text; *p;) {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
                line += *p == '\n';
            p += *p ? 2 : 0;
        } else if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                line += *p == '\n';
            }
            p += *p ? 1 : 0;
        } else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' || *p == '*') {
            while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '_' || *p == '*' || *p == '-')
                p++;
        } else if ((*p >= '0' && *p <= '9') ||
                   ((*p == '-' || *p == '+') && p[1] >= '0' && p[1] <= '9')) {
            const char *start = p;
            bool neg = *p == '-';
            if (*p == '-' || *p == '+')
                p++;
            const char *digits = p;
            while ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= 'a' && *p <= 'z') || *p == '.' ||
                   ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
                p++;
            size_t n = (size_t)(p - digits);
            bool hex = n > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
            if (memchr(digits, '.', n) ||
                (!hex && (memchr(digits, 'e', n) || memchr(digits, 'E', n))))
                continue; /* a float */
            if (p[-1] == 'L')
                continue; /* a 64-bit literal, read correctly */
            errno = 0;
            char *end;
            unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
            unsigned long long lim = hex ? 0x7fffffffull : neg ? 0x80000000ull : 0x7fffffffull;
            if (end == p && (errno == ERANGE || v > lim)) {
                snprintf(lit, litlen, "%.*s", (int)(p - start), start);
                return line;
            }
        } else {
            p++;
        }
    }
    return 0;
}

/* Checks one file for wrapped literals; a file that cannot be read is left to libconfig. */
static int check_literals(struct config_loader *ld, const char *name)
{
    char file[sizeof ld->filebuf];
    snprintf(file, sizeof file, "%s", resolve(ld, name));
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        rc = fail_nomem(ld);
        goto out_file;
    }
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;)
        fwrite(buf, 1, n, mem);
    fclose(mem);
    if (!text) {
        rc = fail_nomem(ld);
        goto out_file;
    }
    char lit[64];
    unsigned line = find_wrapped_literal(text, lit, sizeof lit);
    if (line)
        rc = fail(ld, name, line,
                  "%s is out of range: integers here are 32-bit (no directive takes more; "
                  "sizes may be written \"1G\")",
                  lit);
    free(text);
out_file:
    fclose(f);
    return rc;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
    struct config_loader ld = {.path = path, .err = err, .errlen = errlen};
    config_t lc;
    char *dir = NULL;
    int rc;

    *out = NULL;
    if (errlen)
        err[0] = '\0';
    /* libconfig says only "file I/O error"; find out why ourselves. */
    FILE *f = fopen(path, "r");
    if (!f) {
        rc = -errno;
        fail(&ld, NULL, 0, "%s", strerror(-rc));
        return rc;
    }
    fclose(f);

    config_init(&lc);
    ld.lc = &lc;
    /* @include "x.conf" is relative to the including file, not to the cwd. */
    dir = strdup(path);
    if (!dir) {
        rc = fail_nomem(&ld);
        goto out_lc;
    }
    ld.incdir = dirname(dir);
    config_set_include_dir(&lc, ld.incdir);
    if (!config_read_file(&lc, path)) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            rc = fail(&ld, NULL, 0, "cannot read the file");
        else
            rc = fail(&ld, config_error_file(&lc), (unsigned)config_error_line(&lc), "%s",
                      config_error_text(&lc));
        goto out_lc;
    }
    rc = check_literals(&ld, path);
    for (unsigned i = 0; rc == 0 && lc.filenames && i < lc.num_filenames; i++)
        if (strcmp(lc.filenames[i], path))
            rc = check_literals(&ld, lc.filenames[i]);
    if (rc < 0)
        goto out_lc;

    char why[256];
    ld.c = config_new(why, sizeof why);
    if (!ld.c) {
        rc = fail_nomem(&ld);
        goto out_lc;
    }
    ld.c->path = strdup(path);
    if (!ld.c->path) {
        rc = fail_nomem(&ld);
        goto out_config;
    }
    rc = walk(&ld, config_root_setting(&lc), "");
    if (rc == 0)
        rc = resolve_paths(&ld);
    if (rc == 0) {
        config_resolve_auto(ld.c);
        rc = config_resolve_muc(ld.c) < 0 ? fail_nomem(&ld) : cross_check(&ld);
    }
    if (rc < 0)
        goto out_config;
    *out = ld.c;
    goto out_lc;

out_config:
    config_destroy_snapshot(ld.c);
out_lc:
    config_destroy(&lc);
    free(dir);
    return rc;
}

static const struct config **retired;
static size_t nretired;

void config_retire(const struct config *old)
{
    const struct config **v = realloc(retired, (nretired + 1) * sizeof *v);
    if (!v)
        return; /* kept for good: a reader may still be there */
    retired = v;
    retired[nretired++] = old;
}

void config_retired_free(void)
{
    for (size_t i = 0; i < nretired; i++)
        config_free(retired[i]);
    free(retired);
    retired = NULL;
    nretired = 0;
}
