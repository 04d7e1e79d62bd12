/* Unit tests of common/store/store_im.c, the instant-messaging requests' front end: argument
 * checks, the asynchronous path (every request, callbacks in order on the caller's
 * thread) and a second process writing while this one reads. What the SQLite back end
 * does with each request is tested in store_sqlite_im.c. */
#include "common/core/log.h"
#include "common/store/store.h"
#include "test.h"

#include "store_im_test.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- arguments --------------------------------------------------------------------------- */

static void invalid_arguments(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("invalid", users);
    struct store_client *cl;
    static char jid[STORE_JID_MAX + 2], text[STORE_TEXT_MAX + 2];
    static const char *groups[STORE_GROUPS_MAX + 1];
    static char gnames[STORE_GROUPS_MAX + 1][12];
    static const char *jids[STORE_JIDS_MAX + 1];
    if (!st)
        return;
    memset(jid, 'j', STORE_JID_MAX + 1);
    memset(text, 't', STORE_TEXT_MAX + 1);
    for (int i = 0; i <= STORE_GROUPS_MAX; i++) {
        snprintf(gnames[i], sizeof gnames[i], "%d", i);
        groups[i] = gnames[i];
    }
    for (int i = 0; i <= STORE_JIDS_MAX; i++)
        jids[i] = gnames[i];

    /* Users. */
    struct store_roster r;
    struct store_list l;
    CHECK_INT(store_account_exists_sync(st, ""), ==, -EINVAL);
    CHECK_INT(store_account_exists_sync(st, NULL), ==, -EINVAL);
    CHECK_INT(store_roster_get_sync(st, "", &r), ==, -EINVAL);
    CHECK(r.items == NULL && r.n == 0);
    CHECK_INT(store_block_list_sync(st, "\xc0\xaf", &l), ==, -EINVAL);
    CHECK_INT(store_offline_count_sync(st, ""), ==, -EINVAL);

    /* JIDs: STORE_JID_MAX bytes is the longest. */
    struct store_roster_item it = item(jid, NULL, STORE_SUB_NONE);
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL);
    CHECK_INT(store_roster_delete_sync(st, "juliet", jid, NULL), ==, -EINVAL);
    CHECK_INT(store_subreq_put_sync(st, "juliet", jid, "<p/>", 4), ==, -EINVAL);
    CHECK_INT(store_block_add_sync(st, "juliet", (const char *[]){"a@b", jid}, 2), ==, -EINVAL);
    CHECK_INT(store_subreq_delete_sync(st, "juliet", ""), ==, -EINVAL);
    CHECK_INT(store_subreq_delete_sync(st, "juliet", "ab\xe2\x82"), ==, -EINVAL);
    jid[STORE_JID_MAX] = '\0';
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, 0);
    CHECK_INT(store_block_add_sync(st, "juliet", (const char *[]){jid}, 1), ==, 1);

    /* Roster items. */
    it = item("a@b", text, STORE_SUB_NONE);
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL); /* name too long */
    CHECK_INT(store_roster_put_sync(st, "juliet", NULL, NULL), ==, -EINVAL);
    it = item("a@b", NULL, STORE_SUB_BOTH);
    it.sub = STORE_SUB_BOTH + 1;
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL);
    it.sub = STORE_SUB_BOTH;
    it.groups = groups;
    it.ngroups = STORE_GROUPS_MAX + 1;
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL);
    it.ngroups = 2;
    it.groups = NULL;
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL);
    it.groups = (const char *[]){"Friends", "Verona", "Friends"};
    it.ngroups = 3;
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL); /* twice */
    it.groups = (const char *[]){"Friends", ""};
    it.ngroups = 2;
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL); /* empty */
    it.groups = (const char *[]){"Friends", text};
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL); /* too long */
    it.groups = (const char *[]){"Friends", "\xed\xa0\x80"};
    CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, -EINVAL); /* surrogate */

    /* Lists of JIDs and fetch sizes. */
    CHECK_INT(store_block_add_sync(st, "juliet", jids, 0), ==, -EINVAL);
    CHECK_INT(store_block_add_sync(st, "juliet", jids, STORE_JIDS_MAX + 1), ==, -EINVAL);
    CHECK_INT(store_block_remove_sync(st, "juliet", NULL, 1), ==, -EINVAL);
    CHECK_INT(store_block_add_sync(st, "juliet", jids, STORE_JIDS_MAX), ==, STORE_JIDS_MAX);
    struct store_offline o;
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 0, &o), ==, -EINVAL);
    CHECK_INT(store_offline_fetch_sync(st, "juliet", STORE_LIST_MAX + 1, &o), ==, -EINVAL);
    CHECK(o.msgs == NULL && o.n == 0);
    /* An offline message's sender is a JID. */
    CHECK_INT(store_offline_push_sync(st, "juliet", "", "<m/>", 4, QUOTA(10)), ==, -EINVAL);
    CHECK_INT(store_offline_push_sync(st, "juliet", NULL, "<m/>", 4, QUOTA(10)), ==, -EINVAL);
    CHECK_INT(store_offline_count_sync(st, "juliet"), ==, 0);

    /* Nothing the refused calls did reached the database. */
    CHECK_INT(store_roster_count_sync(st, "juliet"), ==, 1);

    /* The async forms refuse the same at once, and their callback never runs; so does
     * a missing callback. */
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    int calls = 0;
    CHECK_INT(store_roster_put(cl, "juliet", &it, (store_ver_fn)NULL, &calls), ==, -EINVAL);
    it.ngroups = 1;
    CHECK_INT(store_roster_put(cl, "juliet", &it, (store_ver_fn)NULL, &calls), ==, -EINVAL);
    CHECK_INT(store_account_exists(cl, "", (store_done_fn)NULL, &calls), ==, -EINVAL);
    CHECK_INT(store_offline_push(cl, "juliet", "romeo@montague.lit", "<m/>", 0, QUOTA(10),
                                 (store_done_fn)NULL, NULL),
              ==, -EINVAL);
    CHECK_INT(store_block_add(cl, "juliet", jids, 0, (store_done_fn)NULL, NULL), ==, -EINVAL);
    CHECK_INT(store_client_pending(cl), ==, 0);
    store_client_free(cl);
    store_close(st);
}

/* ---- the asynchronous path --------------------------------------------------------------- */

/* What one callback saw; text holds a copy of its result, which is gone afterwards. */
struct cap {
    int calls, res, order;
    uint64_t ver;
    bool other_thread;
    char text[1024];
    struct store_offline_msg first; /* offline fetch: the first message, stanza dropped */
    uint64_t last_seq;              /* and the last one's seq */
    size_t n;                       /* items or messages */
    uint64_t max_ver;               /* roster get: the newest item's version */
};

static int cap_seq;
static pthread_t main_thread; /* where every callback must run */

static void cap_note(struct cap *c, int res)
{
    c->calls++;
    c->res = res;
    c->order = cap_seq++;
    if (!pthread_equal(pthread_self(), main_thread))
        c->other_thread = true;
}

static void cap_done(void *arg, int res)
{
    cap_note(arg, res);
}

static void cap_ver(void *arg, int res, uint64_t ver)
{
    struct cap *c = arg;
    c->ver = ver;
    cap_note(c, res);
}

/* The callbacks keep a result as text, cut to the buffer: what the tests compare is short. */
static void cap_roster(void *arg, int res, const struct store_roster *r)
{
    struct cap *c = arg;
    CHECK((res == 0) == (r != NULL));
    if (r) {
        snprintf(c->text, sizeof c->text, "%.*s", (int)sizeof c->text - 1, roster_text(r));
        c->n = r->n;
        c->ver = r->ver;
        for (size_t i = 0; i < r->n; i++)
            if (r->items[i].ver > c->max_ver)
                c->max_ver = r->items[i].ver;
    }
    cap_note(c, res);
}

static void cap_subreqs(void *arg, int res, const struct store_subreqs *l)
{
    struct cap *c = arg;
    CHECK((res == 0) == (l != NULL));
    if (l)
        snprintf(c->text, sizeof c->text, "%.*s", (int)sizeof c->text - 1, subreqs_text(l));
    cap_note(c, res);
}

static void cap_offline(void *arg, int res, const struct store_offline *o)
{
    struct cap *c = arg;
    CHECK((res == 0) == (o != NULL));
    if (o) {
        snprintf(c->text, sizeof c->text, "%.*s", (int)sizeof c->text - 1, offline_text(o));
        if (o->n) {
            c->first = o->msgs[0];
            c->first.stanza = NULL;
            c->last_seq = o->msgs[o->n - 1].seq;
        }
    }
    cap_note(c, res);
}

/* Polls until every callback submitted has run. */
static void drain(struct store_client *cl)
{
    for (int i = 0; store_client_pending(cl) > 0 && i < 1000; i++) {
        fd_readable(store_client_fd(cl), 10);
        store_poll(cl);
    }
    CHECK_INT(store_client_pending(cl), ==, 0);
}

/* Every request, asynchronously, in one batch: each callback runs once, on this thread,
 * in submission order, with what the synchronous twin returns. */
static void async_every_request(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("async", users);
    struct store_client *cl;
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    cap_seq = 0;
    enum { N = 24 };
    struct cap c[N];
    memset(c, 0, sizeof c);
    const char *g[] = {"Friends", "Lovers"};
    const char *jids[] = {"tybalt@capulet.lit", "paris@verona.lit"};
    struct store_roster_item it = item("romeo@montague.lit", "Romeo", STORE_SUB_BOTH);
    it.groups = g;
    it.ngroups = 2;
    it.approved = true;
    char stanza[] = "<message>hi</message>";
    int k = 0;
    CHECK_INT(store_account_exists(cl, "juliet", cap_done, &c[k++]), ==, 0); /* 0 */
    CHECK_INT(store_account_exists(cl, "tybalt", cap_done, &c[k++]), ==, 0); /* 1 */
    CHECK_INT(store_roster_put(cl, "juliet", &it, cap_ver, &c[k++]), ==, 0); /* 2 */
    /* The request has its own copies: what the caller passed may change at once. */
    it.jid = "nurse@capulet.lit";
    it.name = NULL;
    it.groups = NULL;
    it.ngroups = 0;
    it.approved = false;
    it.sub = STORE_SUB_NONE;
    g[0] = "changed";
    CHECK_INT(store_roster_put(cl, "juliet", &it, cap_ver, &c[k++]), ==, 0); /* 3 */
    CHECK_INT(store_roster_count(cl, "juliet", cap_done, &c[k++]), ==, 0);   /* 4 */
    CHECK_INT(store_roster_delete(cl, "juliet", "nurse@capulet.lit", cap_ver, &c[k++]), ==,
              0); /* 5 */
    CHECK_INT(store_roster_delete(cl, "juliet", "nurse@capulet.lit", cap_ver, &c[k++]), ==,
              0);                                                          /* 6 */
    CHECK_INT(store_roster_get(cl, "juliet", cap_roster, &c[k++]), ==, 0); /* 7 */
    CHECK_INT(store_subreq_put(cl, "juliet", "paris@verona.lit", stanza, strlen(stanza), cap_done,
                               &c[k++]),
              ==, 0); /* 8 */
    stanza[1] = 'X';
    CHECK_INT(store_subreq_list(cl, "juliet", cap_subreqs, &c[k++]), ==, 0); /* 9 */
    CHECK_INT(store_subreq_delete(cl, "juliet", "paris@verona.lit", cap_done, &c[k++]), ==,
              0);                                                                        /* 10 */
    CHECK_INT(store_offline_push(cl, "juliet", "r@m.lit", "<a/>", 4, QUOTA(2), cap_done, &c[k++]),
              ==, 0); /* 11 */
    CHECK_INT(store_offline_push(cl, "juliet", "r@m.lit", "<b/>", 4, QUOTA(2), cap_done, &c[k++]),
              ==, 0); /* 12 */
    CHECK_INT(store_offline_push(cl, "juliet", "r@m.lit", "<c/>", 4, QUOTA(2), cap_done, &c[k++]),
              ==, 0);                                                                    /* 13 */
    CHECK_INT(store_offline_count(cl, "juliet", cap_done, &c[k++]), ==, 0);              /* 14 */
    CHECK_INT(store_offline_fetch(cl, "juliet", 10, cap_offline, &c[k++]), ==, 0);       /* 15 */
    CHECK_INT(store_offline_delete(cl, "juliet", UINT64_MAX, cap_done, &c[k++]), ==, 0); /* 16 */
    CHECK_INT(store_block_add(cl, "juliet", jids, 2, cap_done, &c[k++]), ==, 0);         /* 17 */
    jids[0] = "changed@example.com";
    CHECK_INT(store_roster_get(cl, "juliet", cap_roster, &c[k++]), ==, 0);              /* 18 */
    CHECK_INT(store_block_remove(cl, "juliet", jids + 1, 1, cap_done, &c[k++]), ==, 0); /* 19 */
    CHECK_INT(store_block_clear(cl, "juliet", cap_done, &c[k++]), ==, 0);               /* 20 */
    CHECK_INT(store_roster_get(cl, "tybalt", cap_roster, &c[k++]), ==, 0);              /* 21 */
    CHECK_INT(store_offline_fetch(cl, "tybalt", 1, cap_offline, &c[k++]), ==, 0);       /* 22 */
    CHECK_INT(store_account_exists(cl, "tybalt", cap_done, &c[k++]), ==, 0);            /* 23 */
    CHECK_INT(k, ==, N);
    CHECK_INT(store_client_pending(cl), ==, N);
    drain(cl);

    for (int i = 0; i < N; i++) {
        CHECK_INT(c[i].calls, ==, 1);
        CHECK_INT(c[i].order, ==, i);
        CHECK(!c[i].other_thread);
    }
    int want[N] = {0, -ENOENT, 0, 0, 2, 0, -ENOENT, 0, 0, 0,       1,       0,
                   0, -EDQUOT, 2, 0, 2, 2, 0,       1, 1, -ENOENT, -ENOENT, -ENOENT};
    for (int i = 0; i < N; i++)
        if (c[i].res != want[i])
            TEST_FAIL("request %d: %d, expected %d", i, c[i].res, want[i]);
    CHECK_INT(c[2].ver, ==, 1);
    CHECK_INT(c[3].ver, ==, 2);
    CHECK_INT(c[5].ver, ==, 3);
    CHECK_INT(c[6].ver, ==, 0);
    CHECK_TEXT(c[7].text, "3: romeo@montague.lit(Romeo)/both/--v-/1[Friends,Lovers]");
    CHECK_TEXT(c[9].text, "paris@verona.lit=<message>hi</message>");
    CHECK_TEXT(c[15].text, "<a/> <b/>");
    CHECK_INT(c[15].first.len, ==, 4);
    CHECK_INT(c[15].first.seq, >, 0);
    CHECK_TEXT(c[18].text, "3: romeo@montague.lit(Romeo)/both/--v-/1[Friends,Lovers]"
                           " blocked:paris@verona.lit,tybalt@capulet.lit");

    /* What the sync twins see now agrees with what the async requests did. */
    CHECK_TEXT(roster_of(st, "juliet"), c[7].text);
    CHECK_TEXT(subreqs_of(st, "juliet"), "");
    CHECK_TEXT(offline_of(st, "juliet", 10), "");
    CHECK_TEXT(blocks_of(st, "juliet"), "");
    store_client_free(cl);
    store_close(st);
}

/* ---- a second process -------------------------------------------------------------------- */

/* A second process (starlingctl's situation, or a second node) writes with the sync API
 * while this one reads asynchronously. Every roster this one reads is a snapshot: its
 * version is its number of items, as every put of the writer adds one; and offline
 * messages fetched and deleted two-phase while the writer pushes arrive all, once, in
 * order. The fork happens before either side opens the file or starts a thread. */
static void second_process_writes(void)
{
    enum { N = 150 };
    const char *path = db_path("twoproc");
    int go[2];
    char jid[64], msg[64];
    {
        struct store *st = fresh("twoproc", (const char *[]){"juliet", NULL});
        if (!st)
            return;
        store_close(st);
    }
    CHECK_INT(pipe(go), ==, 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1)
            _exit(2);
        struct store *cst;
        struct store_opts o = db_opts(path);
        if (store_open(&o, &cst) != 0)
            _exit(3);
        int bad = 0;
        const char *g[] = {"Friends"};
        for (int i = 0; i < N; i++) {
            snprintf(jid, sizeof jid, "c%03d@example.com", i);
            struct store_roster_item it = item(jid, NULL, STORE_SUB_BOTH);
            it.groups = g;
            it.ngroups = 1;
            bad += store_roster_put_sync(cst, "juliet", &it, NULL) != 0;
            snprintf(msg, sizeof msg, "<m%03d/>", i);
            bad += push(cst, "juliet", msg, 1000) != 0;
            usleep(300); /* paced, so that the reader's rounds fall between writes */
        }
        store_close(cst);
        _exit(bad ? 1 : 0);
    }
    close(go[0]);
    struct store *st = open_db(path, 0);
    struct store_client *cl;
    if (!st || store_client_new(st, &cl) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    CHECK_INT(write(go[1], "g", 1), ==, 1);
    close(go[1]);

    int got = 0, torn = 0, rounds = 0, reads = 0, midway = 0;
    bool order_ok = true;
    for (; rounds < 4000 && (got < N || reads == 0); rounds++) {
        struct cap r = {0}, f = {0}, d = {0};
        CHECK_INT(store_roster_get(cl, "juliet", cap_roster, &r), ==, 0);
        CHECK_INT(store_offline_fetch(cl, "juliet", 16, cap_offline, &f), ==, 0);
        drain(cl);
        if (r.res != 0 || f.res != 0) {
            TEST_FAIL("roster %d, fetch %d", r.res, f.res);
            break;
        }
        /* As many items as the version says, the newest of them at that version. */
        torn += r.n != r.ver || r.max_ver != r.ver;
        midway += r.n > 0 && r.n < N;
        reads++;
        /* The messages fetched continue where the last ones ended. */
        const char *p = f.text;
        int n = 0;
        while (*p) {
            int i = -1;
            if (sscanf(p, "<m%d/>", &i) != 1 || i != got) {
                order_ok = false;
                break;
            }
            got++;
            n++;
            p += 7;
            p += *p == ' ';
        }
        if (!order_ok)
            break;
        if (n) {
            /* Delete up to the last one delivered; the writer keeps pushing meanwhile. */
            CHECK_INT(store_offline_delete(cl, "juliet", f.last_seq, cap_done, &d), ==, 0);
            drain(cl);
            CHECK_INT(d.res, ==, n);
        }
        usleep(1000);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(order_ok);
    CHECK_INT(torn, ==, 0);
    CHECK_INT(midway, >, 0); /* some reads did fall while the writer was at work */
    CHECK_INT(got, ==, N);
    CHECK_TEXT(offline_of(st, "juliet", 10), "");
    CHECK_INT(store_roster_count_sync(st, "juliet"), ==, N);
    store_client_free(cl);
    store_close(st);
}

int main(void)
{
    main_thread = pthread_self();
    if (tmpdir_make() < 0)
        return 1;
    /* Errors the tests provoke on purpose are logged; keep the output to those. */
    log_init("store-im-test", LOG_LEVEL_WARN);
    RUN(invalid_arguments);
    RUN(second_process_writes);
    RUN(async_every_request);
    tmpdir_remove();
    return test_done("store_im");
}
