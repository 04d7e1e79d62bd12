/*
 * starlingctl: administration beside a running node (or a stopped one). It talks to
 * the same database as the server, through the store's synchronous calls; SQLite's
 * WAL mode lets it write while the server reads.
 *
 *   starlingctl --config FILE adduser JID [PASSWORD]   (none or "-": read from stdin)
 *   starlingctl --config FILE passwd JID [PASSWORD]
 *   starlingctl --config FILE deluser JID
 *   starlingctl --config FILE users
 *   starlingctl --config FILE import-users [--replace] LIST   (LIST "-": stdin)
 *   starlingctl --config FILE gencert [OPTIONS]        (for the domain, at c2s.certificate)
 *   starlingctl gencert [OPTIONS] DOMAIN CRT KEY       (for any domain, at CRT and KEY)
 *   starlingctl sample-config                          (the commented defaults, to stdout)
 *   starlingctl --config FILE drain|undrain            (signals the running supervisor)
 *
 * JID is user@domain (the configured domain) or just the user.
 *
 * drain and undrain find the supervisor through admin.pid_file and send it SIGUSR1 or
 * SIGUSR2 (common/cmd/starling/main.c says what draining does), after checking that the
 * process named there is a starling supervisor.
 *
 * gencert writes a new key and a certificate naming DOMAIN (subjectAltName DNS:DOMAIN),
 * self-signed unless --ca DIR: then signed by the CA in DIR (ca.crt, ca.key), which is made
 * first when DIR holds neither. Servers that trust DIR/ca.crt authenticate each other with
 * it (SASL EXTERNAL). With --config the chat service's domain (muc.domain, when
 * muc.enabled) is named too, as s2s authenticates as it for rooms' stanzas.
 * --san NAME adds a subjectAltName: DNS:host (DNS:*.host too),
 * SRV:_xmpp-server.host, XMPP:domain (an XmppAddr); a NAME without a prefix is DNS:.
 * --days N sets the validity (default 3650 days, the CA's too).
 *
 * import-users reads one account a line: a JID, spaces or tabs, and the password, which
 * is the rest of the line as written (spaces inside and at the end included; a line
 * ends with LF or CRLF). Blank lines and lines whose first non-blank character is '#'
 * are skipped. Every line is checked before anything is written (a JID that is not of
 * this domain, no password, a name given twice, an account that exists, unless
 * --replace gives existing accounts the new password and keeps their data); each bad
 * line is reported as LIST:LINE and nothing is imported. Then the passwords are hashed
 * (PBKDF2, on every core) and the accounts created in one transaction.
 */
#include "common/config/config.h"
#include "common/auth/creds.h"
#include "common/xmpp/jid.h"
#include "common/store/store.h"
#include "common/auth/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The value of key=... in a status line, or "-". */
static const char *status_field(const char *line, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = line; (p = strstr(p, key)); p += kl)
        if ((p == line || p[-1] == ' ') && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " \n");
            snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p + kl + 1);
            return out;
        }
    return "-";
}

/* `starlingctl cluster`: the router's status file (cluster.status_file, rewritten each
 * second by its link thread, router/link.c) as a table. A file older than a few seconds
 * means the router is not running: said, exit status 1. */
static int cluster_status(const struct config *cfg)
{
    if (!*cfg->cluster.node) {
        fprintf(stderr, "starlingctl: no cluster: cluster.node is \"\"\n");
        return 1;
    }
    FILE *f = fopen(cfg->cluster.status_file, "r");
    if (!f) {
        fprintf(stderr, "starlingctl: %s: %s (is the node running?)\n", cfg->cluster.status_file,
                strerror(errno));
        return 1;
    }
    char line[1024], a[8][64];
    long long written = 0, epoch = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "written_ms %lld", &written) == 1) {
            if (now_ms - written > 3000) {
                printf("stale: written %.1f s ago, the router is not running\n",
                       (double)(now_ms - written) / 1000);
                rc = 1;
            }
        } else if (sscanf(line, "epoch %lld", &epoch) == 1) {
            printf("membership view %lld (each change of who is up makes a new one)\n\n", epoch);
            printf("%-16s %-22s %-5s %8s %6s %8s %10s %8s %16s %16s\n", "NODE", "ADDRESS",
                   "STATE", "HEARD", "SHARDS", "SESSIONS", "QUEUED", "BOUNCED", "OUT frames/bytes",
                   "IN frames/bytes");
        } else if (!strncmp(line, "node ", 5)) {
            char name[64] = "", heard[32] = "-", out[140] = "-", in[140] = "-";
            sscanf(line + 5, "%63s", name);
            const char *ago = status_field(line, "heard_ms_ago", a[0], sizeof a[0]);
            if (strcmp(ago, "-") && atoll(ago) >= 0)
                snprintf(heard, sizeof heard, "%.1fs", atoll(ago) / 1000.0);
            if (strcmp(status_field(line, "frames_out", a[1], sizeof a[1]), "-")) {
                snprintf(out, sizeof out, "%s/%s", a[1],
                         status_field(line, "bytes_out", a[2], sizeof a[2]));
                snprintf(in, sizeof in, "%s/%s", status_field(line, "frames_in", a[3], sizeof a[3]),
                         status_field(line, "bytes_in", a[4], sizeof a[4]));
            }
            printf("%-16s %-22s %-5s %8s %6s %8s %10s %8s %16s %16s\n", name,
                   status_field(line, "addr", a[5], sizeof a[5]),
                   status_field(line, "state", a[6], sizeof a[6]), heard,
                   status_field(line, "shards", a[7], sizeof a[7]),
                   status_field(line, "sessions", a[0], sizeof a[0]),
                   status_field(line, "queued_bytes", a[1], sizeof a[1]),
                   status_field(line, "bounced", a[2], sizeof a[2]), out, in);
        } else if (!strncmp(line, "shards ", 7)) {
            printf("\nlinks from this node's shards: %s frames (%s bytes); presence fan-out %s "
                   "frames for %s contacts; deliveries %s lists for %s connections; %s bytes "
                   "saved by both; %s frames forwarded to a new home; %s refused\n",
                   status_field(line, "link_frames", a[0], sizeof a[0]),
                   status_field(line, "link_bytes", a[1], sizeof a[1]),
                   status_field(line, "link_fanout_frames", a[2], sizeof a[2]),
                   status_field(line, "link_fanout_contacts", a[3], sizeof a[3]),
                   status_field(line, "link_deliver_frames", a[4], sizeof a[4]),
                   status_field(line, "link_deliveries", a[5], sizeof a[5]),
                   status_field(line, "link_bytes_saved", a[6], sizeof a[6]),
                   status_field(line, "link_forwarded", a[7], sizeof a[7]),
                   status_field(line, "link_bounced", a[0], sizeof a[0]));
        }
    }
    fclose(f);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: starlingctl --config FILE adduser|passwd JID [PASSWORD]\n"
                    "       starlingctl --config FILE deluser JID\n"
                    "       starlingctl --config FILE users\n"
                    "       starlingctl --config FILE import-users [--replace] LIST|-\n"
                    "       starlingctl --config FILE gencert [--ca DIR] [--san NAME]... [--days N]\n"
                    "       starlingctl gencert [--ca DIR] [--san NAME]... [--days N] DOMAIN CRT KEY\n"
                    "       starlingctl --config FILE drain|undrain\n"
                    "       starlingctl --config FILE cluster\n"
                    "       starlingctl sample-config\n");
    return 2;
}

/* The normalised localpart of arg, which must name an account of cfg's domain. */
static int account_of(const struct config *cfg, const char *arg, char *user, size_t cap)
{
    char buf[JID_BUF];
    if (!strchr(arg, '@')) {
        int n = jid_prep_local(arg, strlen(arg), user, cap);
        return n < 0 ? n : 0;
    }
    struct jid j;
    if (jid_parse(&j, arg, strlen(arg), buf, sizeof buf) < 0 || !j.local_len || j.res_len)
        return -EINVAL;
    if (j.domain_len != strlen(cfg->domain) ||
        memcmp(j.str + j.domain_off, cfg->domain, j.domain_len))
        return -EXDEV;
    if (j.local_len >= cap)
        return -ENAMETOOLONG;
    memcpy(user, j.str, j.local_len);
    user[j.local_len] = '\0';
    return 0;
}

static const char *account_error(int rc)
{
    return rc == -EEXIST   ? "the account exists"
           : rc == -ENOENT ? "no such account"
           : rc == -EXDEV  ? "not an account of this server's domain"
           : rc == -EINVAL ? "invalid JID or password"
                           : strerror(-rc);
}

/* ---- import-users ------------------------------------------------------------------------ */

/* What is wrong with a line. */
struct import_bad {
    unsigned line;
    size_t seq; /* in the order found */
    char why[200];
};

/* Where an account came from and what hashing its password gave. */
struct import_item {
    char *password; /* malloc'd, zeroed once hashed */
    unsigned line;
    int rc; /* creds_make()'s */
};

/* The accounts of a list, in the order of its lines: a[i] for the store (user malloc'd,
 * creds filled by the hashing threads) and item[i] beside it. */
struct import {
    const char *list; /* the list's name in messages */
    const struct config *cfg;
    size_t n, cap;
    struct store_account *a;
    struct import_item *item;
    _Atomic size_t next;    /* the next account to hash */
    struct import_bad *bad; /* found in any order, reported by line */
    size_t nbad, capbad;
};

static void import_bad(struct import *im, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void import_bad(struct import *im, unsigned line, const char *fmt, ...)
{
    va_list ap;
    if (im->nbad == im->capbad) {
        size_t cap = im->capbad ? 2 * im->capbad : 16;
        struct import_bad *b = realloc(im->bad, cap * sizeof *b);
        if (!b) {
            fprintf(stderr, "starlingctl: out of memory\n");
            exit(1);
        }
        im->bad = b;
        im->capbad = cap;
    }
    im->bad[im->nbad].line = line;
    im->bad[im->nbad].seq = im->nbad;
    va_start(ap, fmt);
    vsnprintf(im->bad[im->nbad].why, sizeof im->bad[im->nbad].why, fmt, ap);
    va_end(ap);
    im->nbad++;
}

static int by_line(const void *x, const void *y)
{
    const struct import_bad *a = x, *b = y;
    /* Of two reasons for one line, the one found first is reported. */
    return a->line != b->line ? (a->line > b->line) - (a->line < b->line)
                              : (a->seq > b->seq) - (a->seq < b->seq);
}

/* Reports one reason per bad line, in line order, the first IMPORT_REPORT_MAX of them (a
 * list imported twice is wrong on every line); returns how many lines are bad. */
#define IMPORT_REPORT_MAX 100
static unsigned import_report(struct import *im)
{
    unsigned lines = 0;
    qsort(im->bad, im->nbad, sizeof *im->bad, by_line);
    for (size_t i = 0; i < im->nbad; i++) {
        if (i && im->bad[i].line == im->bad[i - 1].line)
            continue;
        if (++lines <= IMPORT_REPORT_MAX)
            fprintf(stderr, "starlingctl: %s:%u: %s\n", im->list, im->bad[i].line, im->bad[i].why);
    }
    if (lines > IMPORT_REPORT_MAX)
        fprintf(stderr, "starlingctl: %s: and %u more bad lines\n", im->list,
                lines - IMPORT_REPORT_MAX);
    return lines;
}

/* Parses one line (its end of line removed) into a new account; blank lines and comments
 * add none. -ENOMEM only: a bad line is reported and counted. */
static int import_line(struct import *im, unsigned line, char *s, size_t len)
{
    char user[JID_BUF];
    if (memchr(s, '\0', len)) {
        import_bad(im, line, "a NUL byte");
        return 0;
    }
    s += strspn(s, " \t");
    if (!*s || *s == '#')
        return 0;
    size_t jlen = strcspn(s, " \t");
    char *pw = s + jlen + strspn(s + jlen, " \t");
    s[jlen] = '\0';
    int rc = account_of(im->cfg, s, user, sizeof user);
    if (rc == -EXDEV) {
        import_bad(im, line, "%s is not an account of %s", s, im->cfg->domain);
        return 0;
    }
    if (rc < 0) {
        import_bad(im, line, "%s is not a valid JID", s);
        return 0;
    }
    if (!*pw) {
        import_bad(im, line, "no password after the JID");
        return 0;
    }
    if (strlen(pw) > SCRAM_PASSWORD_MAX) {
        import_bad(im, line, "the password is longer than %d bytes", SCRAM_PASSWORD_MAX);
        return 0;
    }
    if (im->n == im->cap) {
        size_t cap = im->cap ? 2 * im->cap : 256;
        struct store_account *a = realloc(im->a, cap * sizeof *a);
        if (a)
            im->a = a;
        struct import_item *it = realloc(im->item, cap * sizeof *it);
        if (it)
            im->item = it;
        if (!a || !it)
            return -ENOMEM;
        im->cap = cap;
    }
    struct import_item *it = &im->item[im->n];
    im->a[im->n].user = strdup(user);
    *it = (struct import_item){.password = strdup(pw), .line = line};
    if (!im->a[im->n].user || !it->password) {
        free((char *)im->a[im->n].user);
        free(it->password);
        return -ENOMEM;
    }
    im->n++;
    return 0;
}

static int import_read(struct import *im, FILE *f)
{
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t len;
    int rc = 0;
    for (unsigned line = 1; rc == 0 && (len = getline(&buf, &bufcap, f)) >= 0; line++) {
        if (len && buf[len - 1] == '\n')
            buf[--len] = '\0';
        if (len && buf[len - 1] == '\r')
            buf[--len] = '\0';
        rc = import_line(im, line, buf, (size_t)len);
    }
    if (rc == 0 && ferror(f))
        rc = -EIO;
    if (buf)
        explicit_bzero(buf, bufcap);
    free(buf);
    return rc;
}

static int by_user(const void *x, const void *y, void *arg)
{
    const struct import *im = arg;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    int c = strcmp(im->a[i].user, im->a[j].user);
    return c ? c : (i > j) - (i < j);
}

/* Names given twice, and (without replace) accounts that exist: all before any hashing. */
static int import_check(struct import *im, struct store *st, bool replace)
{
    size_t *order = malloc(im->n * sizeof *order);
    if (!order)
        return -ENOMEM;
    for (size_t i = 0; i < im->n; i++)
        order[i] = i;
    qsort_r(order, im->n, sizeof *order, by_user, im);
    for (size_t k = 1; k < im->n; k++) {
        size_t prev = order[k - 1], dup = order[k];
        if (!strcmp(im->a[prev].user, im->a[dup].user))
            import_bad(im, im->item[dup].line, "the same account as line %u", im->item[prev].line);
    }
    free(order);
    for (size_t i = 0; !replace && i < im->n; i++) {
        int rc = store_account_exists_sync(st, im->a[i].user);
        if (rc == 0)
            import_bad(im, im->item[i].line, "the account exists (--replace sets its password)");
        else if (rc != -ENOENT)
            return rc;
    }
    return 0;
}

static void *import_hash(void *arg)
{
    struct import *im = arg;
    for (size_t i; (i = atomic_fetch_add(&im->next, 1)) < im->n;) {
        struct import_item *it = &im->item[i];
        it->rc = creds_make(it->password, im->cfg->c2s.scram_iterations, &im->a[i].creds);
        explicit_bzero(it->password, strlen(it->password));
    }
    return NULL;
}

/* PBKDF2 is nearly all an import's time: this thread and one more per other core. */
static void import_hash_all(struct import *im)
{
    pthread_t th[63];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nth = cores <= 1 ? 0 : cores > 64 ? 63 : (size_t)cores - 1, started = 0;
    while (started < nth && pthread_create(&th[started], NULL, import_hash, im) == 0)
        started++;
    import_hash(im); /* also makes progress when no thread could start */
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < im->n; i++)
        if (im->item[i].rc < 0)
            import_bad(im, im->item[i].line, "%s",
                       im->item[i].rc == -EINVAL ? "the password is not UTF-8 that SASLprep accepts"
                                                 : strerror(-im->item[i].rc));
}

static int import_users(const struct config *cfg, struct store *st, const char *list, bool replace)
{
    struct import im = {.list = strcmp(list, "-") ? list : "<stdin>", .cfg = cfg};
    FILE *f = strcmp(list, "-") ? fopen(list, "r") : stdin;
    size_t failed;
    int rc;
    if (!f) {
        fprintf(stderr, "starlingctl: %s: %s\n", list, strerror(errno));
        return 1;
    }
    rc = import_read(&im, f);
    if (f != stdin)
        fclose(f);
    if (rc == 0)
        rc = import_check(&im, st, replace);
    if (rc == 0 && !im.nbad && im.n)
        import_hash_all(&im);
    if (rc == 0 && !im.nbad && im.n) {
        rc = store_account_import_sync(st, im.a, im.n, replace, &failed);
        if (rc < 0 && failed < im.n) {
            import_bad(&im, im.item[failed].line, "%s", account_error(rc));
            rc = 0;
        }
    }
    if (rc < 0)
        fprintf(stderr, "starlingctl: import-users: %s\n", strerror(-rc));
    else if (im.nbad)
        fprintf(stderr, "starlingctl: import-users: %u bad line(s) in %s, nothing imported\n",
                import_report(&im), im.list);
    else if (replace)
        printf("imported %zu accounts: %d created, %zu passwords replaced\n", im.n, rc,
               im.n - (size_t)rc);
    else
        printf("imported %zu accounts\n", im.n);
    for (size_t i = 0; i < im.n; i++) {
        free((char *)im.a[i].user);
        explicit_bzero(&im.a[i].creds, sizeof im.a[i].creds);
        explicit_bzero(im.item[i].password, strlen(im.item[i].password));
        free(im.item[i].password);
    }
    free(im.a);
    free(im.item);
    free(im.bad);
    return rc < 0 || im.nbad ? 1 : 0;
}

/* ---- gencert ----------------------------------------------------------------------------- */

#define GENCERT_SANS 32

/* The CA of dir: its two files, made now when neither exists. *made tells. 0 or -errno. */
static int gencert_ca(const char *dir, unsigned days, char *crt, char *key, size_t cap,
                      bool *made)
{
    uint8_t rnd[4];
    char name[64];
    bool has_crt, has_key;

    *made = false;
    if (snprintf(crt, cap, "%s/ca.crt", dir) >= (int)cap ||
        snprintf(key, cap, "%s/ca.key", dir) >= (int)cap)
        return -ENAMETOOLONG;
    has_crt = access(crt, F_OK) == 0;
    has_key = access(key, F_OK) == 0;
    if (has_crt && has_key)
        return 0;
    if (has_crt || has_key) {
        fprintf(stderr, "starlingctl: gencert: %s has %s but not %s\n", dir,
                has_crt ? "ca.crt" : "ca.key", has_crt ? "ca.key" : "ca.crt");
        return -EINVAL;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    /* A name of its own: roots are looked up by subject, and two CAs of the same name in
     * one trust store would shadow each other. */
    if (getentropy(rnd, sizeof rnd) != 0)
        return -errno;
    snprintf(name, sizeof name, "starling CA %02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    int rc = tls_ca_write(crt, key, name, days);
    *made = rc == 0;
    return rc;
}

/* gencert's options and, without a config, DOMAIN CRT KEY; see the top of this file. */
static int gencert(int argc, char **argv, const struct config *cfg)
{
    char bufs[GENCERT_SANS + 1][300], ca_crt[4096], ca_key[4096];
    const char *sans[GENCERT_SANS + 2], *ca_dir = NULL, *pos[3] = {NULL, NULL, NULL};
    unsigned long days = 3650;
    size_t nsan = 1, npos = 0;
    bool made = false;
    int rc;

    for (int i = 0; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--ca") && i + 1 < argc) {
            ca_dir = argv[++i];
        } else if (!strcmp(argv[i], "--san") && i + 1 < argc && nsan <= GENCERT_SANS) {
            const char *v = argv[++i];
            bool typed = !strncmp(v, "DNS:", 4) || !strncmp(v, "SRV:", 4) || !strncmp(v, "XMPP:", 5);
            if (snprintf(bufs[nsan], sizeof bufs[nsan], "%s%s", typed ? "" : "DNS:", v) >=
                (int)sizeof bufs[nsan]) {
                fprintf(stderr, "starlingctl: gencert: --san %s is too long\n", v);
                return 2;
            }
            sans[nsan] = bufs[nsan];
            nsan++;
        } else if (!strcmp(argv[i], "--days") && i + 1 < argc) {
            errno = 0;
            days = strtoul(argv[++i], &end, 10);
            if (errno || *end || days == 0 || days > 36500) {
                fprintf(stderr, "starlingctl: gencert: --days takes 1 to 36500\n");
                return 2;
            }
        } else if (argv[i][0] != '-' && npos < 3) {
            pos[npos++] = argv[i];
        } else {
            return usage();
        }
    }
    if (cfg ? npos != 0 : npos != 3)
        return usage();
    const char *domain = cfg ? cfg->domain : pos[0];
    const char *crt = cfg ? cfg->c2s.certificate : pos[1];
    const char *key = cfg ? cfg->c2s.key : pos[2];
    snprintf(bufs[0], sizeof bufs[0], "DNS:%s", domain);
    sans[0] = bufs[0];
    /* The chat service is a server of its own to other servers (s2s/s2s.h): the
     * certificate names it too, or SASL EXTERNAL as it would fail. */
    if (cfg && cfg->muc.enabled && nsan <= GENCERT_SANS &&
        snprintf(bufs[nsan], sizeof bufs[nsan], "DNS:%s", cfg->muc.domain) <
            (int)sizeof bufs[nsan]) {
        sans[nsan] = bufs[nsan];
        nsan++;
    }
    sans[nsan] = NULL;

    struct tls_cert_spec spec = {.name = domain, .sans = sans, .days = (unsigned)days};
    if (ca_dir) {
        if ((rc = gencert_ca(ca_dir, (unsigned)days, ca_crt, ca_key, sizeof ca_crt, &made)) < 0)
            goto out;
        spec.ca_cert = ca_crt;
        spec.ca_key = ca_key;
    }
    if (made)
        printf("made the CA %s (peers trust it) and its key %s\n", ca_crt, ca_key);
    rc = tls_cert_write(crt, key, &spec);
out:
    if (rc < 0)
        fprintf(stderr, "starlingctl: gencert: %s\n",
                rc == -EINVAL ? "invalid domain, name or CA" : strerror(-rc));
    else
        printf("wrote %s and %s for %s%s%s\n", crt, key, domain, ca_dir ? ", signed by " : "",
               ca_dir ? ca_crt : "");
    return rc < 0 ? 1 : 0;
}

/* drain (SIGUSR1) or undrain (SIGUSR2) to the supervisor named by admin.pid_file. */
static int signal_node(const struct config *cfg, const char *cmd, int sig)
{
    char exe[PATH_MAX], link[64];
    long pid = 0;
    if (!cfg->admin.pid_file[0]) {
        fprintf(stderr, "starlingctl: %s: admin.pid_file is not set; send %s to the supervisor\n",
                cmd, sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
        return 1;
    }
    FILE *f = fopen(cfg->admin.pid_file, "r");
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "starlingctl: %s: no process id in %s%s%s\n", cmd, cfg->admin.pid_file,
                f ? "" : ": ", f ? "" : strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    /* A stale file may name a process that is no starling now: leave that one alone. */
    snprintf(link, sizeof link, "/proc/%ld/exe", pid);
    ssize_t n = readlink(link, exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *base = strrchr(exe, '/');
    if (n <= 0 || strcmp(base ? base + 1 : exe, "starling") != 0) {
        fprintf(stderr, "starlingctl: %s: process %ld (from %s) is not a running starling\n", cmd,
                pid, cfg->admin.pid_file);
        return 1;
    }
    if (kill((pid_t)pid, sig) < 0) {
        fprintf(stderr, "starlingctl: %s: process %ld: %s\n", cmd, pid, strerror(errno));
        return 1;
    }
    printf("%s: sent to starling (process %ld)\n", cmd, pid);
    return 0;
}

static int read_password(const char *arg, char *out, size_t cap)
{
    if (arg) {
        snprintf(out, cap, "%s", arg);
        return 0;
    }
    if (!fgets(out, (int)cap, stdin))
        return -EINVAL;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    char err[512], user[JID_BUF], password[SCRAM_PASSWORD_MAX + 2];
    struct config *cfg;
    struct store *st = NULL;
    int rc;

    if (argc == 2 && !strcmp(argv[1], "sample-config"))
        return config_write_sample(stdout) < 0 ? 1 : 0;
    if (argc >= 2 && !strcmp(argv[1], "gencert"))
        return gencert(argc - 2, argv + 2, NULL);
    if (argc < 4 || strcmp(argv[1], "--config") != 0)
        return usage();
    if (config_load(argv[2], &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "starlingctl: %s\n", err);
        return 2;
    }
    const char *cmd = argv[3];
    if ((!strcmp(cmd, "drain") || !strcmp(cmd, "undrain")) && argc == 4) {
        int status = signal_node(cfg, cmd, cmd[0] == 'd' ? SIGUSR1 : SIGUSR2);
        config_free(cfg);
        return status;
    }
    if (!strcmp(cmd, "gencert")) {
        int status = gencert(argc - 4, argv + 4, cfg);
        config_free(cfg);
        return status;
    }
    if (!strcmp(cmd, "cluster") && argc == 4) {
        int status = cluster_status(cfg);
        config_free(cfg);
        return status;
    }
    struct store_opts so = {
        .backend = cfg->storage.backend,
        .path = cfg->storage.path,
        .dsn = cfg->storage.dsn,
        .password_file = cfg->storage.password_file,
        .timeout_ms = cfg->storage.timeout * 1000,
    };
    if ((rc = store_open(&so, &st)) < 0) {
        fprintf(stderr, "starlingctl: storage: %s\n", strerror(-rc));
        config_free(cfg);
        return 1;
    }
    rc = 0;
    if (!strcmp(cmd, "users") && argc == 4) {
        struct store_list l;
        char after[JID_BUF] = "";
        do {
            if ((rc = store_account_list_sync(st, after, STORE_LIST_MAX, &l)) < 0)
                break;
            for (size_t i = 0; i < l.n; i++)
                printf("%s@%s\n", l.names[i], cfg->domain);
            if (l.n)
                snprintf(after, sizeof after, "%s", l.names[l.n - 1]);
            size_t n = l.n;
            store_list_free(&l);
            if (n < STORE_LIST_MAX)
                break;
        } while (1);
    } else if ((!strcmp(cmd, "adduser") || !strcmp(cmd, "passwd")) && (argc == 5 || argc == 6)) {
        struct store_creds creds;
        if ((rc = account_of(cfg, argv[4], user, sizeof user)) < 0 ||
            (rc = read_password(argc == 6 && strcmp(argv[5], "-") ? argv[5] : NULL, password,
                                sizeof password)) < 0 ||
            (rc = creds_make(password, cfg->c2s.scram_iterations, &creds)) < 0)
            goto out;
        rc = cmd[0] == 'a' ? store_account_create_sync(st, user, &creds)
                           : store_creds_set_sync(st, user, &creds);
        memset(&creds, 0, sizeof creds);
    } else if (!strcmp(cmd, "import-users") &&
               (argc == 5 || (argc == 6 && !strcmp(argv[4], "--replace")))) {
        int status = import_users(cfg, st, argv[argc - 1], argc == 6);
        store_close(st);
        config_free(cfg);
        return status;
    } else if (!strcmp(cmd, "deluser") && argc == 5) {
        if ((rc = account_of(cfg, argv[4], user, sizeof user)) == 0)
            rc = store_account_delete_sync(st, user);
    } else {
        store_close(st);
        config_free(cfg);
        return usage();
    }
out:
    memset(password, 0, sizeof password);
    store_close(st);
    config_free(cfg);
    if (rc < 0) {
        fprintf(stderr, "starlingctl: %s: %s\n", cmd, account_error(rc));
        return 1;
    }
    return 0;
}
