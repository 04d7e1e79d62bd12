/* Unit tests of common/config/config.c: defaults, every value type, every kind of error with
 * its exact message (file:line, key), @include, the sample file, reload comparison.
 *
 * `config --write-sample FILE` writes the sample configuration and exits: that is how
 * deploy/starling.conf.sample is regenerated after the directive table changes. */
#include "common/config/config.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAMPLE_PATH "deploy/starling.conf.sample"

static char dir[64];
static char realdir[PATH_MAX]; /* dir made absolute, as the loader resolves names against it */

/* Writes text to dir/name and returns the path (valid until the next call). */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        TEST_FAIL("cannot write %s", path);
    return path;
}

/* Loads text as a file; returns the snapshot (NULL on error) and the error line. */
static struct config *load_text(const char *text, int *rc, char *err, size_t errlen)
{
    struct config *c = (struct config *)1;
    *rc = config_load(write_file("t.conf", text), &c, err, errlen);
    if (*rc != 0 && c != NULL)
        TEST_FAIL("*out is not NULL after an error");
    return c;
}

/* A file name that the loader resolved to `rel` in realdir. */
#define CHECK_BESIDE(got, rel)                                                                     \
    do {                                                                                           \
        char want_[PATH_MAX + 64];                                                                 \
        snprintf(want_, sizeof want_, "%s/%s", realdir, rel);                                      \
        CHECK_STR(got, want_);                                                                     \
    } while (0)

/* Gives d the file names of c, so that config_changed() compares the rest: the defaults
 * are relative, a loaded file's names absolute. */
static void adopt_paths(struct config *d, const struct config *c)
{
    const char **dst[] = {&d->storage.path, &d->c2s.certificate, &d->c2s.key,
                          &d->cluster.status_file};
    const char *src[] = {c->storage.path, c->c2s.certificate, c->c2s.key, c->cluster.status_file};
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++) {
        free((char *)*dst[i]);
        *dst[i] = strdup(src[i]);
    }
}

static void check_addr4(const struct config_addr *a, const char *text, const char *ip,
                        unsigned port)
{
    char buf[INET6_ADDRSTRLEN];
    CHECK_STR(a->text, text);
    CHECK_INT(a->len, ==, sizeof(struct sockaddr_in));
    CHECK_INT(a->addr.in.sin_family, ==, AF_INET);
    CHECK_INT(ntohs(a->addr.in.sin_port), ==, port);
    CHECK(inet_ntop(AF_INET, &a->addr.in.sin_addr, buf, sizeof buf));
    CHECK_STR(buf, ip);
}

static void defaults(void)
{
    struct config *c = config_defaults();
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_STR(c->domain, "localhost");
    CHECK_INT(c->log.level, ==, LOG_LEVEL_INFO);
    CHECK_INT(c->storage.backend, ==, STORE_BACKEND_SQLITE);
    /* Relative: config_defaults() has no file to be beside, so the working directory. */
    CHECK_STR(c->storage.path, "starling.db");
    CHECK_STR(c->storage.dsn, "");
    CHECK_INT(c->storage.cache_size, ==, 256 * 1024);
    /* 0 stands for half the cores, at least one: resolved when loaded. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int half = cores >= 4 ? (int)(cores / 2) : 1;
    CHECK_INT(c->c2s.threads, ==, half > 64 ? 64 : half);
    check_addr4(&c->c2s.listen, "127.0.0.1:5222", "127.0.0.1", 5222);
    check_addr4(&c->c2s.listen_tls, "127.0.0.1:5223", "127.0.0.1", 5223);
    CHECK_STR(c->c2s.certificate, "localhost.crt");
    CHECK_STR(c->c2s.key, "localhost.key");
    CHECK(c->c2s.require_encryption);
    CHECK(!c->c2s.allow_plain_without_tls);
    CHECK_INT(c->c2s.max_stanza_size, ==, 262144);
    CHECK_INT(c->c2s.max_depth, ==, 48);
    CHECK_INT(c->c2s.max_attrs, ==, 64);
    CHECK_INT(c->c2s.max_name, ==, 255);
    CHECK_INT(c->c2s.idle_timeout, ==, 300);
    CHECK_INT(c->c2s.keepalive, ==, 60);
    CHECK_INT(c->c2s.handshake_timeout, ==, 30);
    CHECK_INT(c->c2s.max_connections, ==, 100000);
    CHECK_INT(c->c2s.resource_conflict, ==, CONFIG_CONFLICT_REPLACE);
    CHECK_INT(c->c2s.scram_iterations, ==, 4096);
    CHECK_INT(c->c2s.max_stanza_size_preauth, ==, 8192);
    CHECK_INT(c->c2s.max_connections_per_address, ==, 10000);
    CHECK_INT(c->c2s.login_rate, ==, 100);
    CHECK_INT(c->c2s.login_burst, ==, 200);
    CHECK_INT(c->c2s.auth_failures_per_account, ==, 10);
    CHECK_INT(c->c2s.auth_failures_per_address, ==, 20);
    CHECK_INT(c->c2s.auth_failure_window, ==, 600);
    CHECK_INT(c->c2s.max_plain_pending, ==, 256);
    CHECK_INT(c->c2s.proxy.from.n, ==, 0); /* nobody may send a PROXY header */
    CHECK_INT(c->c2s.proxy.timeout, ==, 5);
    CHECK_INT(c->c2s.proxy.max_header, ==, 1024);
    CHECK_INT(c->router.shards, ==, c->c2s.threads);
    CHECK_INT(c->router.max_sessions, ==, 100);
    CHECK_INT(c->router.max_directed, ==, 500);
    CHECK_INT(c->router.max_pending, ==, 1048576);
    check_addr4(&c->s2s.listen, "127.0.0.1:5269", "127.0.0.1", 5269);
    CHECK_INT(c->s2s.routes.n, ==, 0);
    CHECK(c->s2s.routes.items == NULL);
    CHECK_INT(c->s2s.dns_servers.n, ==, 0);
    CHECK_INT(c->s2s.dns_timeout, ==, 2);
    CHECK_INT(c->s2s.dns_tries, ==, 2);
    CHECK_INT(c->s2s.dns_cache_size, ==, 10000);
    CHECK_INT(c->s2s.dns_max_ttl, ==, 3600);
    CHECK_INT(c->s2s.dns_negative_ttl, ==, 60);
    CHECK_INT(c->s2s.dns_max_targets, ==, 16);
    CHECK_INT(c->s2s.dns_max_addresses, ==, 8);
    CHECK_INT(c->shm.ring_size, ==, 1048576);
    CHECK_INT(c->roster.max_items, ==, 1000);
    CHECK_INT(c->roster.max_item_bytes, ==, 4096);
    CHECK_INT(c->roster.max_bytes, ==, 1048576);
    CHECK_INT(c->offline.max_messages, ==, 100);
    CHECK_INT(c->offline.max_bytes, ==, 1048576);
    CHECK_INT(c->offline.sender_share, ==, 50);
    CHECK_INT(c->blocking.max_items, ==, 1000);
    CHECK(c->path == NULL);
    config_free(c);
}

static void empty_file_is_defaults(void)
{
    int rc;
    char err[256];
    struct config *c = load_text("# nothing but a comment\n", &rc, err, sizeof err);
    struct config *d = config_defaults();
    CHECK_INT(rc, ==, 0);
    CHECK_STR(err, "");
    if (c && d) {
        /* The default file names, beside the file. */
        CHECK_BESIDE(c->storage.path, "starling.db");
        CHECK_BESIDE(c->c2s.certificate, "localhost.crt");
        CHECK_BESIDE(c->c2s.key, "localhost.key");
        /* An absolute default stays as it is, and "" (none) stays "". */
        CHECK_STR(c->s2s.ca_file, "/etc/ssl/certs/ca-certificates.crt");
        CHECK_STR(c->s2s.ca_dir, "");
        adopt_paths(d, c);
        CHECK(config_changed(c, d, false) == NULL);
        CHECK(c->path && strstr(c->path, "/t.conf"));
    }
    config_free(c);
    config_free(d);
}

static void every_type(void)
{
    int rc;
    char err[256];
    struct config *c =
        load_text("domain = \"example.org\";\n"
                  "log = { level = \"debug\"; };\n"
                  "storage = { backend = \"postgresql\"; dsn = \"host=db dbname=starling\"; };\n"
                  "c2s = {\n"
                  "  threads = 8;\n"                    /* int */
                  "  listen = \"[::1]:5222\";\n"        /* IPv6 address */
                  "  listen_tls = \"\";\n"              /* disabled */
                  "  require_encryption = false;\n"     /* bool */
                  "  allow_plain_without_tls = true;\n" /* bool */
                  "  max_stanza_size = \"64K\";\n"      /* size with suffix */
                  "  max_depth = 0x20;\n"               /* hex int into a uint16 */
                  "  idle_timeout = \"5m\";\n"          /* duration with suffix */
                  "  keepalive = 0;\n"                  /* duration, bare, the minimum */
                  "  handshake_timeout = \"1m\";\n"     /* duration */
                  "  resource_conflict = \"refuse\";\n" /* enum */
                  "  max_connections = 10000000;\n"     /* the maximum */
                  "  login_rate = 0;\n"                 /* 0: unlimited */
                  "  proxy_from = [ \"127.0.0.2\", \"10.0.0.0/8\", \"::1\",\n" /* prefixes */
                  "    \"2001:db8::/32\", \"::ffff:192.0.2.0/120\", \"0.0.0.0/0\" ];\n"
                  "  proxy_timeout = \"10s\";\n"
                  "};\n"
                  "router = { shards = 256; };\n"
                  "s2s = { listen = \"0.0.0.0:5269\";\n"
                  "  routes = [ \"a.test=127.0.0.2:25269\",\n"       /* a list, over lines */
                  "             \"bücher.test=[::1]:5269\" ];\n"       /* an IDN in normal form */
                  "  dns_servers = ( \"127.0.0.53:5353\" ); };\n"    /* a libconfig list */
                  "shm = { ring_size = 4194304; };\n" /* size without suffix */
                  "offline = { max_messages = 0; };\n",
                  &rc, err, sizeof err);
    CHECK_INT(rc, ==, 0);
    CHECK_STR(err, "");
    if (!c)
        return;
    CHECK_STR(c->domain, "example.org");
    CHECK_INT(c->log.level, ==, LOG_LEVEL_DEBUG);
    CHECK_INT(c->storage.backend, ==, STORE_BACKEND_POSTGRESQL);
    CHECK_STR(c->storage.dsn, "host=db dbname=starling");
    CHECK_INT(c->c2s.threads, ==, 8);
    CHECK_STR(c->c2s.listen.text, "[::1]:5222");
    CHECK_INT(c->c2s.listen.len, ==, sizeof(struct sockaddr_in6));
    CHECK_INT(c->c2s.listen.addr.in6.sin6_family, ==, AF_INET6);
    CHECK_INT(ntohs(c->c2s.listen.addr.in6.sin6_port), ==, 5222);
    CHECK(IN6_IS_ADDR_LOOPBACK(&c->c2s.listen.addr.in6.sin6_addr));
    CHECK_INT(c->c2s.listen_tls.len, ==, 0);
    CHECK_STR(c->c2s.listen_tls.text, "");
    CHECK(!c->c2s.require_encryption);
    CHECK(c->c2s.allow_plain_without_tls);
    CHECK_INT(c->c2s.max_stanza_size, ==, 65536);
    CHECK_INT(c->c2s.max_depth, ==, 32);
    CHECK_INT(c->c2s.idle_timeout, ==, 300);
    CHECK_INT(c->c2s.keepalive, ==, 0);
    CHECK_INT(c->c2s.handshake_timeout, ==, 60);
    CHECK_INT(c->c2s.resource_conflict, ==, CONFIG_CONFLICT_REFUSE);
    CHECK_INT(c->c2s.max_connections, ==, 10000000);
    CHECK_INT(c->c2s.login_rate, ==, 0);
    CHECK_INT(c->router.shards, ==, 256);
    /* Prefixes in normal form; an IPv4-mapped one is the IPv4 prefix it maps. */
    static const char *const prefixes[] = {"127.0.0.2/32",  "10.0.0.0/8",   "::1/128",
                                            "2001:db8::/32", "192.0.2.0/24", "0.0.0.0/0"};
    CHECK_INT(c->c2s.proxy.from.n, ==, 6);
    for (uint32_t i = 0; i < c->c2s.proxy.from.n && i < 6; i++)
        CHECK_STR(c->c2s.proxy.from.prefixes[i].text, prefixes[i]);
    CHECK_INT(c->c2s.proxy.timeout, ==, 10);
    CHECK_INT(c->c2s.proxy.max_header, ==, 1024);
    check_addr4(&c->s2s.listen, "0.0.0.0:5269", "0.0.0.0", 5269);
    CHECK_INT(c->s2s.routes.n, ==, 2);
    if (c->s2s.routes.n == 2) {
        CHECK_STR(c->s2s.routes.routes[0].domain, "a.test");
        check_addr4(&c->s2s.routes.routes[0].addr, "127.0.0.2:25269", "127.0.0.2", 25269);
        CHECK_STR(c->s2s.routes.routes[1].domain, "bücher.test");
        CHECK_STR(c->s2s.routes.routes[1].addr.text, "[::1]:5269");
        CHECK_INT(c->s2s.routes.routes[1].addr.addr.in6.sin6_family, ==, AF_INET6);
    }
    CHECK_INT(c->s2s.dns_servers.n, ==, 1);
    if (c->s2s.dns_servers.n == 1)
        check_addr4(&c->s2s.dns_servers.addrs[0], "127.0.0.53:5353", "127.0.0.53", 5353);
    CHECK_INT(c->shm.ring_size, ==, 4 * 1024 * 1024);
    CHECK_INT(c->offline.max_messages, ==, 0);
    config_free(c);
    c = load_text("admin = { listen = \"127.0.0.1:5280\"; drain_redirect = \"[::1]:5222\";\n"
                  "  pid_file = \"s.pid\"; };\n",
                  &rc, err, sizeof err);
    CHECK_STR(err, "");
    if (!c)
        return;
    check_addr4(&c->admin.listen, "127.0.0.1:5280", "127.0.0.1", 5280);
    CHECK_STR(c->admin.drain_redirect, "[::1]:5222");
    CHECK_BESIDE(c->admin.pid_file, "s.pid");
    CHECK_INT(c->admin.drain_grace, ==, 30);
    /* Untouched directives keep their defaults. */
    CHECK_INT(c->c2s.max_attrs, ==, 64);
    CHECK_INT(c->roster.max_items, ==, 1000);
    CHECK_BESIDE(c->storage.path, "starling.db");
    config_free(c);

    /* Suffixes at their limits: sizes in G, durations in h and d. */
    c = load_text("shm = { ring_size = \"1G\"; };\n"
                  "c2s = { idle_timeout = \"1d\"; keepalive = \"1h\"; max_stanza_size = "
                  "\"16M\"; };\n",
                  &rc, err, sizeof err);
    CHECK_INT(rc, ==, 0);
    if (c) {
        CHECK_INT(c->shm.ring_size, ==, 1024ull * 1024 * 1024);
        CHECK_INT(c->c2s.idle_timeout, ==, 86400);
        CHECK_INT(c->c2s.keepalive, ==, 3600);
        CHECK_INT(c->c2s.max_stanza_size, ==, 16 * 1024 * 1024);
    }
    config_free(c);
}

/* Each bad file and the exact line config_load() must give; "@" stands for the path. */
static const struct {
    const char *text, *err;
} bad_files[] = {
    /* out of range, with the line of the value */
    {"c2s = {\n  threads = 65;\n};", "@:2: c2s.threads: 65 is out of range 0..64"},
    {"c2s = { threads = -1; };", "@:1: c2s.threads: -1 is out of range 0..64"},
    {"c2s = { scram_iterations = 4095; };",
     "@:1: c2s.scram_iterations: 4095 is out of range 4096..1000000"},
    {"c2s = { max_name = 256; };", "@:1: c2s.max_name: 256 is out of range 16..255"},
    {"shm = { ring_size = \"2G\"; };", "@:1: shm.ring_size: 2G is out of range 64K..1G"},
    {"c2s = { max_stanza_size = 9999; };",
     "@:1: c2s.max_stanza_size: 9999 is out of range 10000..16M"},
    {"c2s = { idle_timeout = \"2d\"; };", "@:1: c2s.idle_timeout: 2d is out of range 0..86400"},
    {"shm = { ring_size = \"3M\"; };", "@:1: shm.ring_size: 3M is not a power of two"},
    {"shm = { ring_size = 1000000; };", "@:1: shm.ring_size: 1000000 is not a power of two"},
    /* libconfig 1.5 would wrap these to 2, 1215752191 and -1 without a word */
    {"# big\nc2s = { max_connections = 4294967298; };",
     "@:2: 4294967298 is out of range: integers here are 32-bit (no directive takes more; "
     "sizes may be written \"1G\")"},
    {"c2s = {\n max_depth = 99999999999;\n};",
     "@:2: 99999999999 is out of range: integers here are 32-bit (no directive takes more; "
     "sizes may be written \"1G\")"},
    {"c2s = { threads = 0xFFFFFFFF; };",
     "@:1: 0xFFFFFFFF is out of range: integers here are 32-bit (no directive takes more; "
     "sizes may be written \"1G\")"},
    /* unknown keys, with a suggestion when one is close */
    {"# comment\n\nc2s = {\n    thraeds = 4;\n};\n",
     "@:4: unknown key 'c2s.thraeds' (did you mean 'c2s.threads'?)"},
    {"domian = \"x\";", "@:1: unknown key 'domian' (did you mean 'domain'?)"},
    {"nonsense = 1;", "@:1: unknown key 'nonsense'"},
    {"foo = { bar = 1; };", "@:1: unknown key 'foo'"},
    {"c2s = 5;", "@:1: c2s: expected a group (c2s = { ... };), not an integer"},
    /* types */
    {"domain = 5;", "@:1: domain: expected a string, not an integer"},
    {"domain = { a = 1; };", "@:1: domain: expected a string, not a group"},
    {"domain = \"\";", "@:1: domain: must not be empty"},
    /* every JID compares normalised with the domain: it must be normalised itself */
    {"domain = \"LocalHost\";",
     "@:1: domain: \"LocalHost\" is not in normal form: write \"localhost\""},
    {"domain = \"example.org.\";",
     "@:1: domain: \"example.org.\" is not in normal form: write \"example.org\""},
    {"domain = \"a b\";", "@:1: domain: \"a b\" is not a domain"},
    {"domain = \"a/b\";", "@:1: domain: \"a/b\" is not a domain"},
    {"c2s = { threads = \"4\"; };", "@:1: c2s.threads: expected an integer, not a string"},
    {"c2s = { threads = 4.0; };", "@:1: c2s.threads: expected an integer, not a decimal number"},
    {"c2s = { threads = [4]; };", "@:1: c2s.threads: expected an integer, not an array"},
    {"c2s = { require_encryption = \"yes\"; };",
     "@:1: c2s.require_encryption: expected true or false, not a string"},
    {"c2s = { require_encryption = 1; };",
     "@:1: c2s.require_encryption: expected true or false, not an integer"},
    {"log = { level = \"verbose\"; };",
     "@:1: log.level: \"verbose\" is not one of error, warn, info, debug"},
    {"c2s = { max_stanza_size = \"12Q\"; };",
     "@:1: c2s.max_stanza_size: \"12Q\" is not a size: bytes, or a number with a K, M or G "
     "suffix"},
    {"c2s = { idle_timeout = \"-5\"; };",
     "@:1: c2s.idle_timeout: \"-5\" is not a duration: seconds, or a number with an s, m, h or "
     "d suffix"},
    {"c2s = { idle_timeout = true; };",
     "@:1: c2s.idle_timeout: expected a duration (seconds, or a string such as \"5m\"), not a "
     "boolean"},
    /* addresses */
    {"c2s = { listen = \"localhost:5222\"; };",
     "@:1: c2s.listen: \"localhost:5222\" is not an address: write an IPv4 address or a "
     "bracketed IPv6 address and a port, such as \"127.0.0.1:5222\" or \"[::1]:5222\", or \"\" "
     "to disable"},
    {"c2s = { listen = \"127.0.0.1:0\"; };", "@:1: c2s.listen: \"127.0.0.1:0\" is not an address"},
    {"c2s = { listen = \"127.0.0.1:65536\"; };",
     "@:1: c2s.listen: \"127.0.0.1:65536\" is not an address"},
    {"c2s = { listen = \"::1:5222\"; };", "@:1: c2s.listen: \"::1:5222\" is not an address"},
    {"c2s = { listen = \"[::1]5222\"; };", "@:1: c2s.listen: \"[::1]5222\" is not an address"},
    {"c2s = { listen = \"127.0.0.1\"; };", "@:1: c2s.listen: \"127.0.0.1\" is not an address"},
    /* a value that spans lines still makes a one-line message (found by the fuzzer) */
    {"c2s = { listen = \"a\nb\"; };", "@:1: c2s.listen: \"a?b\" is not an address"},
    /* lists: each item at its line; routes are domain=address with the domain in normal form */
    {"s2s = { routes = [ \"a.test\" ]; };",
     "@:1: s2s.routes, item 1: \"a.test\" is not a route: write domain=IPv4:port or "
     "domain=[IPv6]:port, such as \"a.example=127.0.0.2:5269\""},
    {"s2s = { routes = [ \"=127.0.0.2:5269\" ]; };",
     "@:1: s2s.routes, item 1: \"=127.0.0.2:5269\" is not a route: write domain=IPv4:port or "
     "domain=[IPv6]:port, such as \"a.example=127.0.0.2:5269\""},
    {"s2s = { routes = [ \"a.test=localhost:5269\" ]; };",
     "@:1: s2s.routes, item 1: \"a.test=localhost:5269\" is not a route: write "
     "domain=IPv4:port or domain=[IPv6]:port, such as \"a.example=127.0.0.2:5269\""},
    {"s2s = { routes = [ \"A.test=127.0.0.2:5269\" ]; };",
     "@:1: s2s.routes, item 1: \"A.test\" is not in normal form: write \"a.test\""},
    {"s2s = { routes = [ \"xn--bcher-kva.test=127.0.0.2:5269\" ]; };",
     "@:1: s2s.routes, item 1: \"xn--bcher-kva.test\" is not in normal form: write "
     "\"bücher.test\""},
    {"s2s = { routes = [ \"a b=127.0.0.2:5269\" ]; };",
     "@:1: s2s.routes, item 1: \"a b\" is not a domain"},
    {"s2s = {\n  routes = [\n    \"a.test=127.0.0.2:1\",\n    \"b.test=127.0.0.3:1\",\n"
     "    \"a.test=127.0.0.4:1\" ];\n};\n",
     "@:5: s2s.routes, item 3: a.test has a route already (item 1)"},
    {"s2s = {\n  routes = (\n    \"a.test=127.0.0.2:1\",\n    5 );\n};\n",
     "@:4: s2s.routes, item 2: expected a string, not an integer"},
    {"s2s = { routes = \"a.test=127.0.0.2:1\"; };",
     "@:1: s2s.routes: expected a list of strings, [ \"...\", \"...\" ], not a string"},
    {"s2s = { routes = { a = 1; }; };",
     "@:1: s2s.routes: expected a list of strings, [ \"...\", \"...\" ], not a group"},
    {"s2s = { dns_servers = [ \"127.0.0.53\" ]; };",
     "@:1: s2s.dns_servers, item 1: \"127.0.0.53\" is not an address"},
    {"s2s = { dns_servers = [ \"\" ]; };", "@:1: s2s.dns_servers, item 1: must not be empty"},
    /* prefixes: an address, or one with a length in range and no bits set past it */
    {"c2s = { proxy_from = [ \"127.0.0.1:5222\" ]; };",
     "@:1: c2s.proxy_from, item 1: \"127.0.0.1:5222\" is not an IPv4 or IPv6 address, or one "
     "with a /prefix length"},
    {"c2s = { proxy_from = [ \"10.0.0.0/33\" ]; };",
     "@:1: c2s.proxy_from, item 1: \"10.0.0.0/33\" is not an IPv4 or IPv6 address, or one "
     "with a /prefix length"},
    {"c2s = { proxy_from = [ \"10.0.0.0/08\" ]; };",
     "@:1: c2s.proxy_from, item 1: \"10.0.0.0/08\" is not an IPv4 or IPv6 address, or one "
     "with a /prefix length"},
    {"c2s = { proxy_from = [ \"[::1]\" ]; };",
     "@:1: c2s.proxy_from, item 1: \"[::1]\" is not an IPv4 or IPv6 address, or one with a "
     "/prefix length"},
    {"c2s = { proxy_from = [ \"10.0.0.1/8\" ]; };",
     "@:1: c2s.proxy_from, item 1: \"10.0.0.1/8\" has bits set past its /8 prefix"},
    {"c2s = { proxy_from = [ \"2001:db8::1/64\" ]; };",
     "@:1: c2s.proxy_from, item 1: \"2001:db8::1/64\" has bits set past its /64 prefix"},
    {"c2s = { proxy_from = [ \"127.0.0.1\", \"127.0.0.1/32\" ]; };",
     "@:1: c2s.proxy_from, item 2: \"127.0.0.1/32\" is item 1 too"},
    {"s2s = { dns_servers = [ \"127.0.0.1:53\", \"[::1]:53\", \"127.0.0.1:53\" ]; };",
     "@:1: s2s.dns_servers, item 3: \"127.0.0.1:53\" is item 1 too"},
    {"s2s = { dns_servers = [ \"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\", "
     "\"127.0.0.1:4\", \"127.0.0.1:5\", \"127.0.0.1:6\", \"127.0.0.1:7\", \"127.0.0.1:8\", "
     "\"127.0.0.1:9\", \"127.0.0.1:10\", \"127.0.0.1:11\", \"127.0.0.1:12\", \"127.0.0.1:13\", "
     "\"127.0.0.1:14\", \"127.0.0.1:15\", \"127.0.0.1:16\", \"127.0.0.1:17\" ]; };",
     "@:1: s2s.dns_servers: 17 items, more than 16"},
    /* syntax, as libconfig reports it */
    {"c2s = { threads = ; };", "@:1: syntax error"},
    {"domain = \"x\";\n\nc2s = {\n  threads = = 4;\n};\n", "@:4: syntax error"},
    {"domain = \"a\";\ndomain = \"b\";\n", "@:2: duplicate setting name"},
    /* rules between directives: at the line of the key named, or without a line */
    {"storage = { backend = \"postgresql\"; };",
     "@:1: storage.backend: postgresql needs storage.dsn"},
    {"c2s = {\n listen = \"\";\n listen_tls = \"\";\n};",
     "@:2: c2s.listen: c2s.listen and c2s.listen_tls are both disabled: no client could "
     "connect"},
    {"c2s = { listen_tls = \"127.0.0.1:5222\"; };",
     "@:1: c2s.listen_tls: \"127.0.0.1:5222\" is c2s.listen too"},
    {"shm = { ring_size = \"256K\"; };",
     "@:1: shm.ring_size: 256K is less than twice c2s.max_stanza_size (256K)"},
    {"c2s = { max_stanza_size = \"1M\"; };",
     "@: shm.ring_size: 1M is less than twice c2s.max_stanza_size (1M)"},
    {"admin = { drain_redirect = \"xmpp.example\"; };",
     "@:1: admin.drain_redirect: \"xmpp.example\" is not host:port"},
    {"admin = { drain_redirect = \"xmpp.example:0\"; };",
     "@:1: admin.drain_redirect: \"xmpp.example:0\" is not host:port"},
    {"admin = { drain_redirect = \"a<b:5222\"; };",
     "@:1: admin.drain_redirect: \"a<b:5222\" is not host:port"},
    {"admin = { drain_redirect = \"[::1:5222\"; };",
     "@:1: admin.drain_redirect: \"[::1:5222\" is not host:port"},
};

/* Replaces '@' in pattern with path. */
static void expand(char *out, size_t n, const char *pattern, const char *path)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < n; p++) {
        if (*p == '@') {
            o += (size_t)snprintf(out + o, n - o, "%s", path);
            if (o >= n)
                o = n - 1;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static void errors_name_file_line_and_key(void)
{
    char path[128], want[512], err[512];
    snprintf(path, sizeof path, "%s/t.conf", dir);
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        int rc;
        struct config *c = load_text(bad_files[i].text, &rc, err, sizeof err);
        expand(want, sizeof want, bad_files[i].err, path);
        if (rc != -EINVAL || c)
            TEST_FAIL("case %zu: rc %d, expected -EINVAL", i, rc);
        /* A pattern ending in "is not an address" is a prefix; all others are exact. */
        size_t n = strlen(want);
        bool prefix = n > 17 && !strcmp(want + n - 17, "is not an address");
        if (prefix ? strncmp(err, want, n) != 0 : strcmp(err, want) != 0)
            TEST_FAIL("case %zu:\n  got    '%s'\n  wanted '%s'", i, err, want);
        config_free(c);
    }
}

static void missing_file(void)
{
    char err[256], path[128], want[256];
    struct config *c = (struct config *)1;
    snprintf(path, sizeof path, "%s/absent/starling.conf", dir);
    CHECK_INT(config_load(path, &c, err, sizeof err), ==, -ENOENT);
    CHECK(c == NULL);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    CHECK_STR(err, want);
}

static void include_relative_to_file(void)
{
    char err[512], want[512];
    int rc;
    write_file("inc-ok.conf", "c2s = { threads = 3; };\n");
    write_file("inc-bad.conf", "# included\nrouter = { shards = 257; };\n");
    struct config *c = load_text("@include \"inc-ok.conf\"\n", &rc, err, sizeof err);
    CHECK_INT(rc, ==, 0);
    if (c)
        CHECK_INT(c->c2s.threads, ==, 3);
    config_free(c);
    /* An error in an included file names that file. */
    c = load_text("domain = \"x\";\n@include \"inc-bad.conf\"\n", &rc, err, sizeof err);
    snprintf(want, sizeof want, "%s/inc-bad.conf:2: router.shards: 257 is out of range 0..256",
             dir);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK_STR(err, want);
    /* So does a wrapped literal in it. */
    write_file("inc-big.conf", "c2s = {\n\n max_connections = 4294967297;\n};\n");
    c = load_text("@include \"inc-big.conf\"\n", &rc, err, sizeof err);
    snprintf(want, sizeof want, "%s/inc-big.conf:3: 4294967297 is out of range", dir);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK(!strncmp(err, want, strlen(want)));
    /* Relative paths stay relative to the working directory in messages. */
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_INT(chdir(dir), ==, 0);
    write_file("t.conf", "@include \"inc-bad.conf\"\n");
    rc = config_load("t.conf", &c, err, sizeof err);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK_STR(err, "./inc-bad.conf:2: router.shards: 257 is out of range 0..256");
    write_file("t.conf", "@include \"inc-big.conf\"\n");
    rc = config_load("t.conf", &c, err, sizeof err);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK(!strncmp(err, "./inc-big.conf:3: 4294967297 is out of range", 44));
    CHECK_INT(chdir(cwd), ==, 0);
}

static void paths_relative_to_the_file(void)
{
    char err[512], cwd[PATH_MAX], sub[PATH_MAX], name[PATH_MAX + 16];
    struct config *c;
    int rc;
    snprintf(sub, sizeof sub, "%s/etc", dir);
    CHECK_INT(mkdir(sub, 0700), ==, 0);
    CHECK_INT(mkdir(strcat(strcpy(name, sub), "/inc"), 0700), ==, 0);
    write_file("etc/inc/tls.conf",
               "c2s = { certificate = \"tls/c.crt\"; key = \"/abs/k.key\"; };\n");
    const char *path = write_file("etc/p.conf", "storage = { path = \"data/x.db\"; };\n"
                                                "s2s = { ca_dir = \"cas\"; };\n"
                                                "@include \"inc/tls.conf\"\n");
    snprintf(name, sizeof name, "%s", path);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    /* The same names whether the file is named absolutely or relatively, from any
     * working directory: those of an included file too (relative to the same folder as
     * its @include line); an absolute name stays as it is. */
    const char *const cases[][2] = {
        {"/", name}, {dir, "etc/p.conf"}, {sub, "p.conf"}, {sub, "../etc/./p.conf"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_INT(chdir(cases[i][0]), ==, 0);
        rc = config_load(cases[i][1], &c, err, sizeof err);
        CHECK_INT(rc, ==, 0);
        CHECK_STR(err, "");
        if (rc == 0) {
            CHECK_BESIDE(c->storage.path, "etc/data/x.db");
            CHECK_BESIDE(c->c2s.certificate, "etc/tls/c.crt");
            CHECK_STR(c->c2s.key, "/abs/k.key");
            CHECK_BESIDE(c->s2s.ca_dir, "etc/cas");
        }
        config_free(c);
    }
    CHECK_INT(chdir(cwd), ==, 0);

    /* A name that fits as written but not once made absolute is an error at its line. */
    static char text[4200], want[256];
    int n = snprintf(text, sizeof text, "# long\nstorage = { path = \"");
    memset(text + n, 'a', 4090);
    strcpy(text + n + 4090, "\"; };\n");
    c = load_text(text, &rc, err, sizeof err);
    snprintf(want, sizeof want,
             "%s/t.conf:2: storage.path: is %zu bytes long once made absolute, more than 4095", dir,
             strlen(realdir) + 1 + 4090);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK_STR(err, want);
}

static void literal_scanner_ignores_strings_comments_and_floats(void)
{
    int rc;
    char err[256];
    /* Big numbers in comments and strings, 64-bit literals with L: none is an error. */
    struct config *c = load_text("# 99999999999\n"
                                 "// 99999999999\n"
                                 "/* 99999999999\n 99999999999 */\n"
                                 "storage = { dsn = \"port=99999999999 \\\" 99999999999\"; };\n"
                                 "c2s = { threads = 4; max_connections = 100000L; };\n",
                                 &rc, err, sizeof err);
    CHECK_INT(rc, ==, 0);
    CHECK_STR(err, "");
    if (c) {
        CHECK_STR(c->storage.dsn, "port=99999999999 \" 99999999999");
        CHECK_INT(c->c2s.max_connections, ==, 100000);
    }
    config_free(c);
    /* 64-bit literals are read correctly by libconfig, so range checks see them whole. */
    c = load_text("c2s = { max_connections = 4294967298L; };", &rc, err, sizeof err);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK(strstr(err, "c2s.max_connections: 4294967298 is out of range 1..10000000"));
    config_free(c);
}

static void short_error_buffer(void)
{
    char err[8];
    int rc;
    memset(err, 'x', sizeof err);
    struct config *c = load_text("c2s = { threads = 65; };", &rc, err, sizeof err);
    CHECK_INT(rc, ==, -EINVAL);
    CHECK(c == NULL);
    CHECK_INT(strnlen(err, sizeof err), ==, sizeof err - 1);
    /* errlen 0: nothing written, still an error. */
    c = load_text("c2s = { threads = 65; };", &rc, NULL, 0);
    CHECK_INT(rc, ==, -EINVAL);
}

static char *write_sample(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(config_write_sample(f), ==, 0);
    fclose(f);
    return text;
}

static void sample_round_trips(void)
{
    char *text = write_sample();
    int rc;
    char err[256];
    struct config *c = load_text(text, &rc, err, sizeof err);
    struct config *d = config_defaults();
    CHECK_INT(rc, ==, 0);
    CHECK_STR(err, "");
    if (c && d) {
        adopt_paths(d, c);
        CHECK(config_changed(c, d, false) == NULL);
    }
    config_free(c);

    /* The sample sets every directive: change each value and it is no longer the
     * default. (Checked on a few of each type; the loader rejects unknown keys.) */
    static const char *const lines[] = {
        "domain = \"localhost\";",
        "level = \"info\";",
        "threads = 0;",
        "listen = \"127.0.0.1:5222\";",
        "max_stanza_size = \"256K\";",
        "idle_timeout = 300;",
        "require_encryption = true;",
        "ring_size = \"1M\";",
        "max_messages = 100;",
        "shards = 0;",
        "routes = [];",
        "dns_max_ttl = \"1h\";",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(text, lines[i]))
            TEST_FAIL("the sample lacks '%s'", lines[i]);
    /* Every directive has a comment, and the file tells how it is read. */
    CHECK(strstr(text, "# 0..64; a restart applies it\n    threads = 0;"));
    CHECK(strstr(text, "# error | warn | info | debug; a reload applies it\n    level"));
    CHECK(strstr(text, "# 64K..1G bytes, a power of two; a restart applies it\n"));
    CHECK(strstr(text, "# a list of at most 16 \"IPv4:port\" or \"[IPv6]:port\"; a restart applies "
                       "it\n    dns_servers = [];"));
    config_free(d);
    free(text);
}

static void sample_file_is_current(void)
{
    char *want = write_sample(), *have = NULL;
    size_t len = 0;
    FILE *f = fopen(SAMPLE_PATH, "r");
    if (!f) {
        TEST_FAIL("cannot open %s (run from the top of the tree)", SAMPLE_PATH);
        free(want);
        return;
    }
    FILE *m = open_memstream(&have, &len);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;)
        fwrite(buf, 1, n, m);
    fclose(m);
    fclose(f);
    if (strcmp(have, want) != 0)
        TEST_FAIL("%s is out of date; regenerate it with: "
                  "build/release/tests/unit/common/config/config --write-sample %s",
                  SAMPLE_PATH, SAMPLE_PATH);
    free(have);
    free(want);
}

static void reload_comparison(void)
{
    int rc;
    char err[256];
    /* From the same file as the others, so that its file names are the same. */
    struct config *d = load_text("", &rc, err, sizeof err);
    struct config *c = load_text("log = { level = \"debug\"; };\n", &rc, err, sizeof err);
    CHECK_INT(rc, ==, 0);
    if (c && d) {
        CHECK(config_changed(d, c, true) == NULL); /* a reload applies it */
        CHECK_STR(config_changed(d, c, false), "log.level");
    }
    config_free(c);
    c = load_text("c2s = { threads = 4; certificate = \"new.crt\"; };\n", &rc, err, sizeof err);
    if (c && d) {
        CHECK_STR(config_changed(d, c, true), "c2s.threads");
        CHECK_STR(config_changed(d, c, false), "c2s.threads");
    }
    config_free(c);
    c = load_text("c2s = { certificate = \"new.crt\"; listen = \"127.0.0.1:5222\"; };\n", &rc, err,
                  sizeof err);
    if (c && d) {
        CHECK(config_changed(d, c, true) == NULL);
        CHECK_STR(config_changed(d, c, false), "c2s.certificate");
    }
    config_free(c);
    c = load_text("s2s = { listen = \"\"; };\n", &rc, err, sizeof err);
    if (c && d)
        CHECK_STR(config_changed(d, c, true), "s2s.listen");
    config_free(c);
    /* Lists compare item by item: "" is the empty list, a route's address counts. */
    c = load_text("s2s = { routes = \"\"; dns_servers = []; };\n", &rc, err, sizeof err);
    CHECK_INT(rc, ==, 0);
    if (c && d)
        CHECK(config_changed(d, c, false) == NULL);
    config_free(c);
    struct config *r1 = load_text("s2s = { routes = [ \"a.test=127.0.0.2:1\" ]; };\n", &rc, err,
                                  sizeof err);
    struct config *r2 = load_text("s2s = { routes = [ \"a.test=127.0.0.2:2\" ]; };\n", &rc, err,
                                  sizeof err);
    c = load_text("s2s = { routes = [ \"a.test=127.0.0.2:1\" ]; };\n", &rc, err, sizeof err);
    if (c && d && r1 && r2) {
        CHECK_STR(config_changed(d, r1, true), "s2s.routes");
        CHECK_STR(config_changed(r1, r2, true), "s2s.routes");
        CHECK(config_changed(r1, c, false) == NULL);
    }
    config_free(r1);
    config_free(r2);
    config_free(c);
    config_free(d);
}

static void references(void)
{
    struct config *c = config_defaults();
    if (!c)
        return;
    const struct config *r = config_ref(c);
    CHECK(r == c);
    config_free(c);
    /* Still alive through the second reference (ASan would see a use after free). */
    CHECK_STR(r->domain, "localhost");
    config_free(r);
    config_free(NULL);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-sample")) {
        FILE *f = fopen(argv[2], "w");
        if (!f || config_write_sample(f) < 0 || fclose(f) != 0) {
            perror(argv[2]);
            return 1;
        }
        return 0;
    }
    snprintf(dir, sizeof dir, "/tmp/starling-config-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (!realpath(dir, realdir)) {
        perror("realpath");
        return 1;
    }
    RUN(defaults);
    RUN(empty_file_is_defaults);
    RUN(every_type);
    RUN(errors_name_file_line_and_key);
    RUN(missing_file);
    RUN(include_relative_to_file);
    RUN(paths_relative_to_the_file);
    RUN(literal_scanner_ignores_strings_comments_and_floats);
    RUN(short_error_buffer);
    RUN(sample_round_trips);
    RUN(sample_file_is_current);
    RUN(reload_comparison);
    RUN(references);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done("config");
}
