/*
 * The PostgreSQL back end: one connection per store, driven by the store's worker
 * thread without ever blocking on it (serve(), store_backend.h).
 *
 * The loop. The worker takes whatever is queued, sends each request's statements and a
 * sync point into libpq's pipeline at once (nonblocking socket, PQenterPipelineMode),
 * and sleeps in poll() on the socket and the store's bell. Results come back in the
 * order sent; a request completes at its sync, so the requests of one user complete in
 * submission order, and one round trip serves as many requests as were waiting. Each
 * request is one implicit transaction (store_pgsql.h).
 *
 * Connection loss. When the socket fails, the server ends the session (an admin's
 * pg_terminate_backend, a restart) or results stop coming for opts.timeout_ms while
 * some are owed, every request sent on that connection completes with -EIO: it may or
 * may not have committed, and the caller treats it as the store's error it is. The
 * worker reconnects (PQconnectStartParams, polled like the rest) with a backoff from
 * PG_BACKOFF_MIN_MS doubling to PG_BACKOFF_MAX_MS; requests that arrive meanwhile wait
 * for it, each until opts.timeout_ms after it was taken, then complete with -EIO.
 * pg_reachable() is true only while a connection is up and prepared: the cluster stops
 * taking logins without it. A loss logs one line, the recovery another.
 *
 * Schema. The schema_version table holds the number of migrations applied.
 * store_open() applies the missing ones each in its own transaction, under an
 * advisory lock (nodes starting together migrate once, the others wait and find it
 * done), and refuses a database newer than this program. Migrations are only ever
 * appended. As with SQLite, a user's data references accounts ON DELETE CASCADE, and
 * every text column is COLLATE "C" so that order is byte order on any database.
 *
 * Secrets. The password comes from the DSN or from opts.password_file (read at every
 * connection, so a rotated secret is picked up at the next one) and is never logged:
 * the log names the server by PQhost()/PQdb() only.
 *
 * No TLS to the database. Debian's libpq calls OpenSSL 3; c2s and starlingctl carry
 * BoringSSL, which exports the same symbol names without versions, and the dynamic
 * linker binds libpq's SSL_* calls to the first definition in the global scope,
 * BoringSSL's, even with libpq opened RTLD_LOCAL: the first TLS handshake with the
 * server crashes the process. RTLD_DEEPBIND would bind them to OpenSSL 3 (it does:
 * sslmode=verify-full works so in a program on glibc's malloc), but it binds libpq's
 * and OpenSSL's malloc and free to glibc's too, while glibc's own functions (strdup,
 * which PQconninfoParse() uses) allocate from the jemalloc our programs export: the
 * first free() aborts. (AddressSanitizer refuses RTLD_DEEPBIND for the same reason.)
 * dlmopen() into a namespace of its own gets a handshake through, but its second libc
 * hands out pthread keys that collide with the first's in each thread's descriptor:
 * BoringSSL's thread-local state and Kerberos's crash. So the connection is made with
 * sslmode=disable (whatever PGSSLMODE says), and a DSN asking for any other sslmode
 * is refused at store_open() (-ENOTSUP). Reach the database over a Unix socket, a
 * private network, or a tunnel.
 */
#include "common/core/log.h"
#include "common/store/store_pgsql.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PG_BACKOFF_MIN_MS 50
#define PG_BACKOFF_MAX_MS 2000
#define PG_LIBPQ          "libpq.so.5"
#define PG_PASSWORD_MAX   1024 /* bytes of a password file's first line, NUL included */
/* The advisory lock migrations hold: any constant of ours ("stlg"). */
#define PG_MIGRATION_LOCK 0x73746c67

static const char *const pg_migrations[] = {
    /* 1: accounts and instant messaging. A SCRAM mechanism whose iterations is 0 is
     * absent (empty blobs); stanzas are bytea kept byte for byte. */
    "CREATE TABLE accounts ("
    " username text COLLATE \"C\" PRIMARY KEY,"
    " created bigint NOT NULL," /* Unix time */
    " sha1_iterations bigint NOT NULL,"
    " sha1_salt bytea NOT NULL,"
    " sha1_stored_key bytea NOT NULL,"
    " sha1_server_key bytea NOT NULL,"
    " sha256_iterations bigint NOT NULL,"
    " sha256_salt bytea NOT NULL,"
    " sha256_stored_key bytea NOT NULL,"
    " sha256_server_key bytea NOT NULL);"
    /* A user's roster version, bumped by every change of an item; no row: version 0. */
    "CREATE TABLE roster_version ("
    " username text COLLATE \"C\" PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,"
    " ver bigint NOT NULL);"
    "CREATE TABLE roster ("
    " username text COLLATE \"C\" NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    " jid text COLLATE \"C\" NOT NULL,"
    " name text COLLATE \"C\"," /* NULL: none */
    " sub smallint NOT NULL CHECK (sub BETWEEN 0 AND 3),"
    " ask boolean NOT NULL,"
    " pending_in boolean NOT NULL,"
    " approved boolean NOT NULL,"
    " hidden boolean NOT NULL,"
    " ver bigint NOT NULL,"
    " PRIMARY KEY (username, jid));"
    "CREATE TABLE roster_groups ("
    " username text COLLATE \"C\" NOT NULL,"
    " jid text COLLATE \"C\" NOT NULL,"
    " grp text COLLATE \"C\" NOT NULL,"
    " PRIMARY KEY (username, jid, grp),"
    " FOREIGN KEY (username, jid) REFERENCES roster ON DELETE CASCADE);"
    /* id keeps the order in which requests first arrived. */
    "CREATE TABLE subreqs ("
    " id bigserial PRIMARY KEY,"
    " username text COLLATE \"C\" NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    " jid text COLLATE \"C\" NOT NULL,"
    " stanza bytea NOT NULL,"
    " UNIQUE (username, jid));"
    /* A sequence never hands a seq out twice, so a seq that offline_delete() is given
     * names only messages the caller has seen. Pushes for one user are serialised by
     * a lock taken before the seq is drawn (store_pgsql_req.c), so one user's seqs
     * also commit in order. */
    "CREATE TABLE offline ("
    " seq bigserial PRIMARY KEY,"
    " username text COLLATE \"C\" NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    " stamp bigint NOT NULL," /* UTC microseconds since the Unix epoch */
    " stanza bytea NOT NULL,"
    " sender text COLLATE \"C\" NOT NULL,"
    " len integer NOT NULL);" /* bytes of stanza */
    "CREATE INDEX offline_user ON offline (username, seq);"
    "CREATE TABLE blocklist ("
    " username text COLLATE \"C\" NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    " jid text COLLATE \"C\" NOT NULL,"
    " PRIMARY KEY (username, jid));",

    /* 2: what a user's offline messages take, in all and per sender, kept by triggers
     * as SQLite's schema does, so that a push reads two rows instead of counting. */
    "CREATE TABLE offline_usage ("
    " username text COLLATE \"C\" PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,"
    " messages bigint NOT NULL,"
    " bytes bigint NOT NULL);"
    "CREATE TABLE offline_sender_usage ("
    " username text COLLATE \"C\" NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    " sender text COLLATE \"C\" NOT NULL,"
    " messages bigint NOT NULL,"
    " bytes bigint NOT NULL,"
    " PRIMARY KEY (username, sender));"
    "INSERT INTO offline_usage"
    " SELECT username, count(*), sum(len) FROM offline GROUP BY username;"
    "INSERT INTO offline_sender_usage"
    " SELECT username, sender, count(*), sum(len) FROM offline GROUP BY username, sender;"
    "CREATE FUNCTION offline_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO offline_usage VALUES (new.username, 1, new.len) ON CONFLICT (username)"
    "  DO UPDATE SET messages = offline_usage.messages + 1,"
    "  bytes = offline_usage.bytes + excluded.bytes;"
    " INSERT INTO offline_sender_usage VALUES (new.username, new.sender, 1, new.len)"
    "  ON CONFLICT (username, sender) DO UPDATE SET"
    "  messages = offline_sender_usage.messages + 1,"
    "  bytes = offline_sender_usage.bytes + excluded.bytes;"
    " RETURN NULL; END $$;"
    /* A sender's row goes with its last message: senders come and go, users stay. */
    "CREATE FUNCTION offline_uncounted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " UPDATE offline_usage SET messages = messages - 1, bytes = bytes - old.len"
    "  WHERE username = old.username;"
    " DELETE FROM offline_sender_usage"
    "  WHERE username = old.username AND sender = old.sender AND messages = 1;"
    " UPDATE offline_sender_usage SET messages = messages - 1, bytes = bytes - old.len"
    "  WHERE username = old.username AND sender = old.sender;"
    " RETURN NULL; END $$;"
    "CREATE TRIGGER offline_counted AFTER INSERT ON offline"
    " FOR EACH ROW EXECUTE FUNCTION offline_counted();"
    "CREATE TRIGGER offline_uncounted AFTER DELETE ON offline"
    " FOR EACH ROW EXECUTE FUNCTION offline_uncounted();",
    /* 3: the cluster's members (cluster.discovery = "postgresql"): a row per node ever
     * seen, its slot (the node's index in the cluster, for good) and its last heartbeat
     * by the database's clock. */
    "CREATE TABLE cluster_nodes ("
    " name text COLLATE \"C\" PRIMARY KEY,"
    " slot smallint NOT NULL UNIQUE,"
    " address text NOT NULL,"
    " shards integer NOT NULL,"
    " incarnation bigint NOT NULL,"
    " heartbeat timestamptz NOT NULL);",
    /* A user's own data (store_pep.c): PEP nodes and items, private XML, the vCard.
     * seq orders the rows (a put deletes and inserts: its row becomes the newest). */
    "CREATE TABLE pep ("
    " seq bigserial PRIMARY KEY,"
    " username text COLLATE \"C\" NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    " kind smallint NOT NULL CHECK (kind BETWEEN 0 AND 3),"
    " node text COLLATE \"C\" NOT NULL,"
    " id text COLLATE \"C\" NOT NULL,"
    " stamp bigint NOT NULL," /* UTC microseconds since the Unix epoch */
    " data bytea NOT NULL,"
    " UNIQUE (username, kind, node, id));",
    /* 5: the message archive (store_mam.h), as SQLite's schema 5: the owner is no
     * account's foreign key (rooms own archives too), so a trigger takes an account's
     * archive with it. */
    "CREATE TABLE mam ("
    " owner text COLLATE \"C\" NOT NULL,"
    " id bigint NOT NULL,"
    " with_bare text COLLATE \"C\" NOT NULL,"
    " with_full text COLLATE \"C\" NOT NULL,"
    " stanza bytea NOT NULL,"
    " PRIMARY KEY (owner, id));"
    "CREATE INDEX mam_with ON mam (owner, with_bare, id);"
    "CREATE INDEX mam_id ON mam (id);"
    "CREATE TABLE mam_prefs ("
    " owner text COLLATE \"C\" PRIMARY KEY,"
    " dflt smallint NOT NULL CHECK (dflt BETWEEN 0 AND 2),"
    " lists text NOT NULL);"
    "CREATE FUNCTION mam_account_gone() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " DELETE FROM mam WHERE owner = old.username;"
    " DELETE FROM mam_prefs WHERE owner = old.username;"
    " RETURN NULL; END $$;"
    "CREATE TRIGGER mam_account_gone AFTER DELETE ON accounts"
    " FOR EACH ROW EXECUTE FUNCTION mam_account_gone();",
    /* 6: the chat service's persistent rooms (store_muc.h), as SQLite's schema 6. */
    "CREATE TABLE muc_rooms ("
    " jid text COLLATE \"C\" PRIMARY KEY,"
    " name text, descr text, password text,"
    " maxusers bigint NOT NULL,"
    " flags integer NOT NULL,"
    " subject text, subject_nick text,"
    " affs text NOT NULL);"
    "CREATE INDEX muc_public ON muc_rooms (jid) WHERE flags & 8 <> 0;",
};
#define PG_SCHEMA_VERSION (int)(sizeof pg_migrations / sizeof pg_migrations[0])

enum pg_state {
    PG_DOWN,       /* no connection; the next attempt at retry_ms */
    PG_CONNECTING, /* PQconnectPoll() under way */
    PG_PREPARING,  /* connected; the statements' PQsendPrepare()s in flight */
    PG_UP,
};

struct pg_be {
    char *dsn, *password_file;
    unsigned timeout_ms;
    PGconn *conn;
    enum pg_state state;
    PostgresPollingStatusType poll; /* PG_CONNECTING: what PQconnectPoll() waits for */
    int64_t retry_ms, backoff_ms, attempt_ms, lost_ms;
    int64_t progress_ms; /* when a result last came (or the first of those owed went) */
    bool want_write;     /* PQflush() left data */
    _Atomic bool up;

    /* Requests taken, oldest first, in a ring: the first nsent are in the pipeline, the
     * rest wait for a connection. */
    struct pg_flight *fl;
    size_t head, count, nsent, cap; /* cap: a power of two */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct pg_flight *flight(struct pg_be *be, size_t i)
{
    return &be->fl[(be->head + i) & (be->cap - 1)];
}

/* ---- loading libpq ----------------------------------------------------------------------- */

struct pg_lib pg_lib;

static pthread_once_t pg_load_once = PTHREAD_ONCE_INIT;
static int pg_load_rc;

/* Opens libpq and fills pg_lib, once per process. libpq then stays: OpenSSL registers
 * exit handlers once used, which must not outlive its code. */
static void pg_load_lib(void)
{
    void *lib = dlopen(PG_LIBPQ, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        LOG_ERROR("postgresql: cannot load libpq: %s", dlerror());
        pg_load_rc = -ELIBACC;
        return;
    }
    struct pg_lib l;
#define PG_PQ_SYM(f)                                                                               \
    if (!(l.f = (__typeof__(l.f))dlsym(lib, #f))) {                                                \
        LOG_ERROR("postgresql: %s has no %s (libpq 14 or later is needed)", PG_LIBPQ, #f);         \
        goto missing;                                                                              \
    }
    PG_PQ_FUNCS(PG_PQ_SYM)
#undef PG_PQ_SYM
    pg_lib = l;
    return;
missing:
    dlclose(lib);
    pg_load_rc = -ENOSYS;
}

/* ---- errors ------------------------------------------------------------------------------ */

/* Whether an error means the session is gone (SQLSTATE classes 08 and 57P). */
static bool pg_gone(const char *state)
{
    return state && (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3));
}

/* A failed statement's SQLSTATE as -errno. */
static int pg_errno(const char *state)
{
    static const struct {
        const char *state;
        int err;
    } map[] = {
        {"23505", -EEXIST}, {"23503", -ENOENT}, {"40P01", -EBUSY},  {"40001", -EBUSY},
        {"53100", -ENOSPC}, {"53200", -ENOMEM}, {"42501", -EACCES}, {"25006", -EROFS},
        {"54000", -E2BIG},  {"57014", -ECANCELED},
    };
    if (!state)
        return -EIO;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(state, map[i].state))
            return map[i].err;
    if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))
        return -EINVAL; /* data exceptions, other constraints */
    return -EIO;
}

/* The first line of libpq's message, without its newline, for one log line. */
static const char *pg_msg(const char *m, char *buf, size_t len)
{
    snprintf(buf, len, "%s", m && m[0] ? m : "no detail");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static void pg_notice(void *arg, const char *message)
{
    char buf[256];
    (void)arg;
    LOG_DEBUG("postgresql: %s", pg_msg(message, buf, sizeof buf));
}

/* ---- connecting -------------------------------------------------------------------------- */

/* Reads the password file's first line into pw: -errno, or -ENAMETOOLONG for a line of
 * len bytes or more (never cut short: a wrong password would be the puzzling result). */
static int pg_password(const char *path, char *pw, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    ssize_t n = 0;
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if ((n = read(fd, pw, len - 1)) < 0) {
        rc = -errno;
        n = 0;
    }
    close(fd);
out:
    pw[n] = '\0';
    if (rc == 0 && strcspn(pw, "\r\n") == len - 1)
        rc = -ENAMETOOLONG;
    pw[strcspn(pw, "\r\n")] = '\0';
    if (rc < 0)
        LOG_ERROR("postgresql: storage.password_file %s: %s", path,
                  rc == -ENAMETOOLONG ? "the password is longer than 1023 bytes" : strerror(-rc));
    return rc;
}

/* Starts a connection (blocking: for store_open()); PQstatus() says how it went. */
static PGconn *pg_connect(struct pg_be *be, bool blocking)
{
    char pw[PG_PASSWORD_MAX], user_timeout[16];
    /* Keywords before dbname are defaults the DSN may override; those after it override
     * the DSN. Over TCP, keepalives find a silent partition of an idle connection in
     * about 11 s (so that store_reachable() says so) and tcp_user_timeout one with data
     * unacknowledged within the timeout; a Unix socket ignores both. */
    snprintf(user_timeout, sizeof user_timeout, "%u", be->timeout_ms);
    const char *keys[10] = {"keepalives_idle", "keepalives_interval", "keepalives_count",
                            "tcp_user_timeout", "dbname", "fallback_application_name",
                            "client_encoding", "sslmode"};
    const char *vals[10] = {"5", "2", "3", user_timeout, be->dsn, "starling", "UTF8", "disable"};
    int n = 8;
    if (be->password_file) {
        if (pg_password(be->password_file, pw, sizeof pw) < 0)
            return NULL;
        keys[n] = "password";
        vals[n++] = pw;
    }
    keys[n] = vals[n] = NULL;
    PGconn *c = blocking ? pg_lib.PQconnectdbParams(keys, vals, 1)
                         : pg_lib.PQconnectStartParams(keys, vals, 1);
    explicit_bzero(pw, sizeof pw);
    if (c)
        pg_lib.PQsetNoticeProcessor(c, pg_notice, NULL);
    return c;
}

/* Runs SQL without parameters (migrations, transaction control) on a blocking
 * connection. Returns the result (PQclear() it) or NULL after logging. */
static PGresult *pg_exec(struct pg_be *be, const char *sql, ExecStatusType want)
{
    char buf[256];
    PGresult *r = pg_lib.PQexec(be->conn, sql);
    if (pg_lib.PQresultStatus(r) == want)
        return r;
    LOG_ERROR("postgresql %s/%s: %.60s...: %s", pg_lib.PQhost(be->conn), pg_lib.PQdb(be->conn), sql,
              pg_msg(r ? pg_lib.PQresultErrorMessage(r) : pg_lib.PQerrorMessage(be->conn), buf,
                     sizeof buf));
    pg_lib.PQclear(r);
    return NULL;
}

static int pg_exec_ok(struct pg_be *be, const char *sql)
{
    PGresult *r = pg_exec(be, sql, PGRES_COMMAND_OK);
    pg_lib.PQclear(r);
    return r ? 0 : -EIO;
}

/* One migration (or none, when the schema is current) in one transaction. Returns the
 * version found before it, or -errno. */
static int pg_migrate_one(struct pg_be *be)
{
    char sql[96];
    int rc, version;
    if ((rc = pg_exec_ok(be, "BEGIN")) < 0)
        return rc;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%d)", PG_MIGRATION_LOCK);
    PGresult *r = pg_exec(be, sql, PGRES_TUPLES_OK);
    pg_lib.PQclear(r);
    /* Under the lock, IF NOT EXISTS is no race. */
    if (!r || (rc = pg_exec_ok(be, "CREATE TABLE IF NOT EXISTS schema_version"
                                   " (version integer NOT NULL)")) < 0)
        goto rollback;
    r = pg_exec(be, "SELECT coalesce(max(version), 0) FROM schema_version", PGRES_TUPLES_OK);
    if (!r)
        goto rollback;
    version = atoi(pg_lib.PQgetvalue(r, 0, 0));
    pg_lib.PQclear(r);
    if (version > PG_SCHEMA_VERSION) {
        LOG_ERROR("postgresql %s/%s: the schema's version (%d) is newer than this program's (%d)",
                  pg_lib.PQhost(be->conn), pg_lib.PQdb(be->conn), version, PG_SCHEMA_VERSION);
        rc = -EPROTO;
        goto rollback;
    }
    if (version < PG_SCHEMA_VERSION) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
                 version + 1);
        if ((rc = pg_exec_ok(be, pg_migrations[version])) < 0 || (rc = pg_exec_ok(be, sql)) < 0)
            goto rollback;
    }
    if ((rc = pg_exec_ok(be, "COMMIT")) < 0)
        goto rollback;
    if (version < PG_SCHEMA_VERSION)
        LOG_INFO("postgresql %s/%s: schema migrated to version %d", pg_lib.PQhost(be->conn),
                 pg_lib.PQdb(be->conn), version + 1);
    return version;

rollback:
    pg_lib.PQclear(pg_lib.PQexec(be->conn, "ROLLBACK"));
    return rc < 0 ? rc : -EIO;
}

static int pg_migrate(struct pg_be *be)
{
    int v;
    while ((v = pg_migrate_one(be)) >= 0 && v < PG_SCHEMA_VERSION)
        ;
    return v < 0 ? v : 0;
}

/* A connection is up: its statements prepared, then nonblocking and in pipeline mode.
 * On store_open()'s connection the preparing blocks (and the store starts up); on a
 * new one the prepares go into the pipeline and the connection counts as up at their
 * sync (pg_read()). */
static int pg_ready(struct pg_be *be, bool blocking)
{
    char name[16], buf[256];
    for (int i = 0; blocking && i < PG_STMT_COUNT_; i++) {
        snprintf(name, sizeof name, "s%d", i);
        PGresult *r = pg_lib.PQprepare(be->conn, name, pg_sql[i], 0, NULL);
        if (pg_lib.PQresultStatus(r) != PGRES_COMMAND_OK) {
            LOG_ERROR("postgresql: %s: %s", pg_sql[i],
                      pg_msg(r ? pg_lib.PQresultErrorMessage(r) : pg_lib.PQerrorMessage(be->conn),
                             buf, sizeof buf));
            pg_lib.PQclear(r);
            return -EIO;
        }
        pg_lib.PQclear(r);
    }
    if (pg_lib.PQsetnonblocking(be->conn, 1) != 0 || !pg_lib.PQenterPipelineMode(be->conn))
        return -EIO;
    be->progress_ms = now_ms();
    if (blocking) {
        be->state = PG_UP;
        atomic_store_explicit(&be->up, true, memory_order_release);
        return 0;
    }
    for (int i = 0; i < PG_STMT_COUNT_; i++) {
        snprintf(name, sizeof name, "s%d", i);
        if (!pg_lib.PQsendPrepare(be->conn, name, pg_sql[i], 0, NULL))
            return -EIO;
    }
    if (!pg_lib.PQpipelineSync(be->conn) || pg_lib.PQflush(be->conn) < 0)
        return -EIO;
    be->state = PG_PREPARING;
    return 0;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void pg_complete(const struct store_serve *sv, struct pg_flight *fl)
{
    struct store_req *req = fl->req;
    /* The server's errors were logged as they came (pg_read()), a lost connection by
     * pg_lost(); what is left is our own shortage. */
    if (req->res == -ENOMEM)
        LOG_RL(LOG_LEVEL_ERROR, "postgresql: %s: %s", store_op_name(req->op),
               strerror(-req->res));
    /* A failed request hands back no result, whatever it had built. */
    if (req->res < 0) {
        store_list_free(&req->list);
        store_roster_free(&req->roster);
        store_subreqs_free(&req->subreqs);
        store_offline_free(&req->offline);
        store_pep_free(&req->pep);
        store_mam_page_free(&req->mam_page);
        store_mam_prefs_free(&req->mam_prefs_out);
        store_muc_room_free(&req->muc_out);
        store_muc_list_free(&req->muc_list);
    }
    sv->done(sv->st, req);
}

/* Completes the oldest request taken and drops it from the ring. */
static void pg_pop(struct pg_be *be, const struct store_serve *sv)
{
    struct pg_flight fl = *flight(be, 0);
    be->head = (be->head + 1) & (be->cap - 1);
    be->count--;
    if (be->nsent)
        be->nsent--;
    pg_complete(sv, &fl);
}

static void pg_lost(struct pg_be *be, const struct store_serve *sv, const char *why)
{
    char buf[256];
    if (atomic_load_explicit(&be->up, memory_order_relaxed)) {
        LOG_ERROR("postgresql %s/%s: connection lost (%s); %zu requests in flight fail,"
                  " reconnecting",
                  pg_lib.PQhost(be->conn), pg_lib.PQdb(be->conn),
                  pg_msg(why ? why : pg_lib.PQerrorMessage(be->conn), buf, sizeof buf), be->nsent);
        be->lost_ms = now_ms();
    }
    atomic_store_explicit(&be->up, false, memory_order_release);
    pg_lib.PQfinish(be->conn);
    be->conn = NULL;
    be->state = PG_DOWN;
    be->want_write = false;
    /* What was sent may or may not have committed: -EIO. What waits, waits on. */
    while (be->nsent) {
        flight(be, 0)->req->res = -EIO;
        pg_pop(be, sv);
    }
    /* The first attempt at once: a server restarting is often back by then. */
    be->retry_ms = now_ms();
}

static int pg_grow(struct pg_be *be)
{
    size_t ncap = be->cap ? be->cap * 2 : 64;
    struct pg_flight *n = malloc(ncap * sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < be->count; i++)
        n[i] = *flight(be, i);
    free(be->fl);
    be->fl = n;
    be->head = 0;
    be->cap = ncap;
    return 0;
}

/* Takes what is queued into the ring. Without memory to grow the ring a request fails
 * with -ENOMEM at once, ahead of older ones still in it: the one case where completions
 * leave submission order, and only when memory is short. */
static void pg_take(struct pg_be *be, const struct store_serve *sv, bool *stop)
{
    int64_t deadline = now_ms() + be->timeout_ms;
    for (struct store_req *req = sv->take(sv->st, stop), *next; req; req = next) {
        next = req->next;
        if (be->count == be->cap && pg_grow(be) < 0) {
            req->res = -ENOMEM;
            sv->done(sv->st, req);
            continue;
        }
        *flight(be, be->count++) = (struct pg_flight){.req = req, .deadline_ms = deadline};
    }
}

/* Sends every waiting request. One that fails before all its statements went (memory
 * for sorting its JIDs) still gets its sync, which ends what did go of it, and
 * completes with the failure. */
static void pg_send_waiting(struct pg_be *be, const struct store_serve *sv)
{
    if (be->nsent == 0)
        be->progress_ms = now_ms();
    while (be->nsent < be->count) {
        struct pg_flight *fl = flight(be, be->nsent);
        int rc = pg_req_send(be->conn, fl);
        if (rc == -EIO || !pg_lib.PQpipelineSync(be->conn)) {
            pg_lost(be, sv, NULL);
            return;
        }
        if (rc < 0) {
            fl->err = rc;
            fl->err_k = 0;
        }
        be->nsent++;
    }
    int f = pg_lib.PQflush(be->conn);
    if (f < 0)
        pg_lost(be, sv, NULL);
    else
        be->want_write = f == 1;
}

/* Handles the results that have come: read from the socket first when `readable`, else
 * only what libpq holds already (it reads input by itself while a send would block). */
static void pg_read(struct pg_be *be, const struct store_serve *sv, bool readable)
{
    char buf[256], why[256];
    const char *gone = NULL;
    int nulls = 0;
    if (readable && !pg_lib.PQconsumeInput(be->conn)) {
        pg_lost(be, sv, NULL);
        return;
    }
    while ((be->state == PG_PREPARING || be->nsent) && !pg_lib.PQisBusy(be->conn)) {
        PGresult *r = pg_lib.PQgetResult(be->conn);
        if (!r) {
            /* One NULL ends each statement's results; two in a row: nothing more yet. */
            if (++nulls > 1)
                break;
            continue;
        }
        nulls = 0;
        be->progress_ms = now_ms();
        ExecStatusType status = pg_lib.PQresultStatus(r);
        const char *state = pg_lib.PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (status == PGRES_FATAL_ERROR && pg_gone(state))
            gone = pg_msg(pg_lib.PQresultErrorMessage(r), why, sizeof why);
        if (be->state == PG_PREPARING) {
            if (status == PGRES_PIPELINE_SYNC) {
                be->state = PG_UP;
                be->backoff_ms = PG_BACKOFF_MIN_MS;
                if (be->lost_ms)
                    LOG_INFO("postgresql %s/%s: connection back after %lld ms",
                             pg_lib.PQhost(be->conn), pg_lib.PQdb(be->conn),
                             (long long)(now_ms() - be->lost_ms));
                be->lost_ms = 0;
                atomic_store_explicit(&be->up, true, memory_order_release);
            } else if (status != PGRES_COMMAND_OK) {
                LOG_ERROR("postgresql: preparing statements: %s",
                          pg_msg(pg_lib.PQresultErrorMessage(r), buf, sizeof buf));
                gone = "cannot prepare statements";
            }
            pg_lib.PQclear(r);
            if (gone)
                break;
            continue;
        }
        struct pg_flight *fl = flight(be, 0);
        if (status == PGRES_PIPELINE_SYNC) {
            pg_req_finish(fl);
            pg_pop(be, sv);
        } else if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            if (!fl->err)
                pg_req_result(fl, fl->k, r);
            fl->k++;
        } else if (status == PGRES_PIPELINE_ABORTED) {
            fl->k++;
        } else {
            if (!fl->err) {
                fl->err = pg_errno(state);
                fl->err_k = fl->k;
                /* An answer is no failure; a lost session is pg_lost()'s to log. */
                bool answer = fl->err == -ENOENT || fl->err == -EEXIST;
                if (!answer && !gone)
                    LOG_RL(LOG_LEVEL_ERROR, "postgresql: %s: %s", store_op_name(fl->req->op),
                           pg_msg(pg_lib.PQresultErrorMessage(r), buf, sizeof buf));
            }
            fl->k++;
        }
        pg_lib.PQclear(r);
        if (gone)
            break;
    }
    if (gone || pg_lib.PQstatus(be->conn) == CONNECTION_BAD)
        pg_lost(be, sv, gone);
}

static void pg_backoff(struct pg_be *be, int64_t t)
{
    be->retry_ms = t + be->backoff_ms;
    be->backoff_ms = be->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : be->backoff_ms * 2;
}

/* Starts a connection attempt when it is time, moves one on when its socket is ready
 * (`ready`), gives it up past the timeout. */
static void pg_connecting(struct pg_be *be, int64_t t, bool ready)
{
    char buf[256];
    if (be->state == PG_DOWN) {
        if (t < be->retry_ms)
            return;
        be->conn = pg_connect(be, false);
        be->attempt_ms = t;
        /* libpq's rule: wait until the socket is writable before the first poll. */
        be->poll = PGRES_POLLING_WRITING;
        be->state = PG_CONNECTING;
        if (!be->conn || pg_lib.PQstatus(be->conn) == CONNECTION_BAD)
            goto failed;
        return;
    }
    if (t - be->attempt_ms > be->timeout_ms)
        goto failed;
    if (!ready)
        return;
    be->poll = pg_lib.PQconnectPoll(be->conn);
    if (be->poll == PGRES_POLLING_FAILED)
        goto failed;
    if (be->poll == PGRES_POLLING_OK && pg_ready(be, false) < 0)
        goto failed;
    return;
failed:
    LOG_DEBUG("postgresql: connecting: %s",
              pg_msg(be->conn ? pg_lib.PQerrorMessage(be->conn) : "no memory", buf, sizeof buf));
    pg_lib.PQfinish(be->conn);
    be->conn = NULL;
    be->state = PG_DOWN;
    pg_backoff(be, t);
}

static void pg_serve(void *p, const struct store_serve *sv)
{
    struct pg_be *be = p;
    bool stop = false, rang = true;
    for (;;) {
        if (rang)
            pg_take(be, sv, &stop);
        int64_t t = now_ms();
        if (be->state == PG_DOWN || be->state == PG_CONNECTING)
            pg_connecting(be, t, false);
        if (be->state == PG_UP && be->nsent < be->count)
            pg_send_waiting(be, sv);
        /* Results libpq took in while sending would never make the socket readable. */
        if (be->state == PG_UP && be->nsent)
            pg_read(be, sv, false);
        /* Results owed and none for the timeout: a server that stopped answering (a
         * partition without a reset) is a lost connection too. */
        if ((be->state == PG_PREPARING || (be->state == PG_UP && be->nsent)) &&
            t - be->progress_ms > be->timeout_ms)
            pg_lost(be, sv, "no answer within storage.timeout");
        /* Waiting too long for a connection. */
        while (be->state != PG_UP && be->count && flight(be, 0)->deadline_ms <= t) {
            flight(be, 0)->req->res = -EIO;
            pg_pop(be, sv);
        }
        if (stop && !be->count)
            break;

        int64_t wake = -1;
        if (be->state == PG_DOWN)
            wake = be->retry_ms;
        if (be->state != PG_UP && be->count && (wake < 0 || flight(be, 0)->deadline_ms < wake))
            wake = flight(be, 0)->deadline_ms;
        if (be->state == PG_CONNECTING || be->state == PG_PREPARING ||
            (be->state == PG_UP && be->nsent)) {
            int64_t w = (be->state == PG_CONNECTING ? be->attempt_ms : be->progress_ms) +
                        be->timeout_ms + 1;
            if (wake < 0 || w < wake)
                wake = w;
        }
        struct pollfd pfd[2] = {{.fd = sv->bell, .events = POLLIN}, {.fd = -1}};
        if (be->conn && be->state != PG_DOWN) {
            pfd[1].fd = pg_lib.PQsocket(be->conn);
            if (be->state == PG_CONNECTING)
                pfd[1].events = be->poll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
            else
                pfd[1].events = POLLIN | (be->want_write ? POLLOUT : 0);
        }
        int timeout = wake < 0 ? -1 : wake <= t ? 0 : (int)(wake - t);
        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            LOG_ERROR("postgresql: poll: %s", strerror(errno));
            usleep(10000);
        }
        rang = pfd[0].revents & POLLIN;
        if (pfd[1].fd < 0 || !pfd[1].revents)
            continue;
        if (be->state == PG_CONNECTING) {
            pg_connecting(be, now_ms(), true);
            continue;
        }
        if (be->want_write && (pfd[1].revents & POLLOUT)) {
            int f = pg_lib.PQflush(be->conn);
            if (f < 0) {
                pg_lost(be, sv, NULL);
                continue;
            }
            be->want_write = f == 1;
        }
        if (pfd[1].revents & (POLLIN | POLLERR | POLLHUP))
            pg_read(be, sv, true);
    }
}

/* ---- opening and closing ----------------------------------------------------------------- */

static bool pg_reachable(void *p)
{
    struct pg_be *be = p;
    return atomic_load_explicit(&be->up, memory_order_acquire);
}

static void pg_close(void *p)
{
    struct pg_be *be = p;
    if (!be)
        return;
    pg_lib.PQfinish(be->conn);
    free(be->fl);
    free(be->dsn);
    free(be->password_file);
    free(be);
}

/* A DSN libpq can parse, asking for no TLS (see the top of this file). */
static int pg_check_dsn(const char *dsn)
{
    char *err = NULL;
    int rc = 0;
    PQconninfoOption *opts = pg_lib.PQconninfoParse(dsn, &err);
    if (!opts) {
        /* libpq's message quotes the offending part, which may be the password. */
        LOG_ERROR("postgresql: storage.dsn is not a connection string libpq understands");
        pg_lib.PQfreemem(err);
        return -EINVAL;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!strcmp(o->keyword, "sslmode") && o->val && strcmp(o->val, "disable") != 0) {
            LOG_ERROR("postgresql: storage.dsn asks for sslmode=%s: this build cannot use TLS"
                      " to PostgreSQL (libpq's OpenSSL and starling's BoringSSL collide);"
                      " use sslmode=disable over a Unix socket, a private network or a tunnel",
                      o->val);
            rc = -ENOTSUP;
        }
    }
    pg_lib.PQconninfoFree(opts);
    return rc;
}

static int pg_open(const struct store_opts *opts, void **out)
{
    char buf[256];
    int rc = -ENOMEM;
    *out = NULL;
    if (!opts->dsn || !opts->dsn[0]) {
        LOG_ERROR("postgresql: no storage.dsn configured");
        return -EINVAL;
    }
    if ((rc = pthread_once(&pg_load_once, pg_load_lib)) != 0)
        return -rc;
    if (pg_load_rc < 0)
        return pg_load_rc;
    if ((rc = pg_check_dsn(opts->dsn)) < 0)
        return rc;
    struct pg_be *be = calloc(1, sizeof *be);
    if (!be)
        return -ENOMEM;
    be->timeout_ms = opts->timeout_ms ? opts->timeout_ms : STORE_TIMEOUT_DEFAULT;
    be->backoff_ms = PG_BACKOFF_MIN_MS;
    if (!(be->dsn = strdup(opts->dsn)))
        goto fail;
    if (opts->password_file && opts->password_file[0] &&
        !(be->password_file = strdup(opts->password_file)))
        goto fail;
    /* The first connection, blocking (store_open() may): tried until the timeout, so
     * that a node started with its database still coming up waits for it. */
    int64_t until = now_ms() + be->timeout_ms;
    for (;;) {
        be->conn = pg_connect(be, true);
        if (!be->conn) {
            rc = be->password_file ? -EACCES : -ENOMEM;
            goto fail;
        }
        if (pg_lib.PQstatus(be->conn) == CONNECTION_OK)
            break;
        if (now_ms() + be->backoff_ms >= until) {
            LOG_ERROR("postgresql: cannot connect: %s",
                      pg_msg(pg_lib.PQerrorMessage(be->conn), buf, sizeof buf));
            rc = -ECONNREFUSED;
            goto fail;
        }
        pg_lib.PQfinish(be->conn);
        be->conn = NULL;
        usleep((useconds_t)be->backoff_ms * 1000);
        pg_backoff(be, now_ms());
    }
    be->backoff_ms = PG_BACKOFF_MIN_MS;
    const char *enc = pg_lib.PQparameterStatus(be->conn, "server_encoding");
    if (!enc || strcmp(enc, "UTF8") != 0) {
        LOG_ERROR("postgresql %s/%s: the database's encoding is %s, not UTF8",
                  pg_lib.PQhost(be->conn), pg_lib.PQdb(be->conn), enc ? enc : "unknown");
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = pg_migrate(be)) < 0)
        goto fail;
    if (pg_ready(be, true) < 0) {
        rc = -EIO;
        goto fail;
    }
    LOG_INFO("postgresql %s/%s: connected, schema version %d", pg_lib.PQhost(be->conn),
             pg_lib.PQdb(be->conn), PG_SCHEMA_VERSION);
    *out = be;
    return 0;

fail:
    pg_close(be);
    return rc;
}

const struct store_backend_ops store_pgsql_ops = {
    .name = "postgresql",
    .open = pg_open,
    .serve = pg_serve,
    .reachable = pg_reachable,
    .close = pg_close,
};
