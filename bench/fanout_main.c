/*
 * fanout: what one presence broadcast costs the router. The real router code (shards,
 * sessions, rosters, the in-process rings between shards, the rings to front-end
 * threads) runs in this process: a user with -k contacts, each online with one session
 * on one of -t front-end threads, changes presence -n times. Every frame the shards
 * write is counted as c2s would read it, and compared with the naive count of one frame
 * per recipient; CPU per broadcast is the shards' work, front ends excluded (their part
 * is one copy of the stanza per recipient with its `to`).
 *
 * usage: fanout [-k contacts] [-s shards] [-t threads] [-n broadcasts]
 */
#include "common/config/config.h"
#include "common/xmpp/jid.h"
#include "router/router.h"
#include "shm/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DATA_SIZE (1u << 20)
#define MAX_FRAME (320u << 10)

static struct shard *shards;
static unsigned nshards, nthreads;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct shard *home(uint64_t key)
{
    return &shards[key % nshards];
}

static void setup(const struct config *cfg)
{
    shards = calloc(nshards, sizeof *shards);
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &shards[i];
        s->idx = i;
        s->nshards = nshards;
        s->nfe = nthreads;
        s->cfg = cfg;
        s->to_fe = calloc(nthreads, sizeof *s->to_fe);
        s->from_fe = calloc(nthreads, sizeof *s->from_fe);
        s->dirty = calloc(nthreads, sizeof *s->dirty);
        s->backlog = calloc(nthreads, sizeof *s->backlog);
        s->broken = calloc(nthreads, sizeof *s->broken);
        for (unsigned t = 0; t < nthreads; t++) {
            /* The front end's end of each ring is this program, which never sleeps. */
            void *mem = aligned_alloc(SHM_SLOT, ring_footprint(DATA_SIZE));
            ring_format(mem, DATA_SIZE, MAX_FRAME);
            ring_attach(&s->to_fe[t], mem, NULL, PROTO_KIND_MAX - 1);
        }
        /* Shards ring each other's bells; here nobody ever sleeps on them. */
        struct shm_bell *sh = aligned_alloc(SHM_SLOT, SHM_SLOT);
        bell_format(sh);
        bell_attach(&s->bell, sh, bell_eventfd());
    }
    if (shard_link(shards, nshards, DATA_SIZE, MAX_FRAME) < 0) {
        fprintf(stderr, "fanout: cannot link the shards\n");
        exit(1);
    }
    for (unsigned i = 0; i < nshards; i++)
        if (shard_init(&shards[i]) < 0) {
            fprintf(stderr, "fanout: out of memory\n");
            exit(1);
        }
}

/* A user with one available session in its home shard, state loaded. */
static struct user *online(const char *bare, unsigned n)
{
    uint64_t key = jid_hash(bare, strlen(bare));
    struct shard *s = home(key);
    struct user *u = user_get(&s->users, key, bare, strlen(bare));
    u->state = USER_READY;
    u->exists = true;
    char full[256];
    snprintf(full, sizeof full, "%s/phone", bare);
    uint64_t conn = proto_conn_id(PROTO_FE_C2S, n % nthreads, n, 1);
    struct session *ss = session_add(u, conn, full, strlen(full));
    char p[512];
    int len = snprintf(p, sizeof p, "<presence from='%s'><show>chat</show></presence>", full);
    session_set_presence(ss, p, (size_t)len, 0);
    return u;
}

struct counts {
    unsigned long deliver_frames, recipients, shard_frames;
};

/* Lets every shard handle what other shards sent it, then reads what the front ends
 * would: the frames and their recipients. */
static void settle(struct counts *c)
{
    for (int round = 0; round < 2; round++)
        for (unsigned i = 0; i < nshards; i++) {
            struct shard *s = &shards[i];
            shard_current = s;
            out_flush(s);
            c->shard_frames += shard_drain_shards(s);
            out_flush(s);
        }
    for (unsigned i = 0; i < nshards; i++)
        for (unsigned t = 0; t < nthreads; t++) {
            struct ring *r = &shards[i].to_fe[t];
            struct ring_frame f;
            unsigned n = 0;
            while (ring_peek(r, &f) == 1) {
                if (f.kind == PROTO_DELIVER) {
                    c->deliver_frames++;
                    c->recipients += ((const struct proto_deliver *)f.payload)->nrcpt;
                }
                ring_consume(r);
                n++;
            }
            if (n)
                ring_release(r);
        }
}

int main(int argc, char **argv)
{
    unsigned contacts = 1000, rounds = 2000;
    nshards = 2;
    nthreads = 2;
    int opt;
    while ((opt = getopt(argc, argv, "k:s:t:n:")) != -1) {
        if (opt == 'k')
            contacts = (unsigned)atoi(optarg);
        else if (opt == 's')
            nshards = (unsigned)atoi(optarg);
        else if (opt == 't')
            nthreads = (unsigned)atoi(optarg);
        else if (opt == 'n')
            rounds = (unsigned)atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-k contacts] [-s shards] [-t threads] [-n broadcasts]\n",
                    argv[0]);
            return 2;
        }
    }
    struct config *cfg = config_defaults();
    setup(cfg);

    struct user *u = online("star@localhost", 0);
    for (unsigned i = 1; i <= contacts; i++) {
        char bare[64];
        snprintf(bare, sizeof bare, "contact%u@localhost", i);
        online(bare, i);
        struct roster_item *it = roster_add(&u->roster, bare, strlen(bare));
        it->sub = 3; /* both */
    }
    struct session *ss = u->sessions;
    struct shard *s = home(u->key);

    /* The presence frame c2s would send: stamped, no `to`. */
    static const char stanza[] =
        "<presence from='star@localhost/phone'><show>away</show><status>back soon</status>"
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.com' "
        "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>";
    struct proto_stanza h = {.conn = ss->conn,
                             .key = u->key,
                             .kind = PROTO_PRESENCE,
                             .type = PROTO_PRES_AVAILABLE,
                             .flags = PROTO_STANZA_TO_SERVER | PROTO_STANZA_LOCAL};
    struct stanza st = {.h = &h,
                        .from = ss->jid,
                        .from_len = ss->jid_len,
                        .from_bare_len = u->bare_len,
                        .raw = stanza,
                        .raw_len = sizeof stanza - 1,
                        .head_len = 38};

    struct counts c = {0};
    double t0 = cpu_now();
    for (unsigned r = 0; r < rounds; r++) {
        shard_current = s;
        presence_broadcast(s, u, ss, &st);
        settle(&c);
    }
    double cpu = cpu_now() - t0;

    /* Every contact's session, and the sender's own (it hears its presence too). */
    unsigned long want = (unsigned long)(contacts + 1) * rounds;
    printf("one user with %u online contacts changes presence %u times; %u shards, %u c2s "
           "threads\n",
           contacts, rounds, nshards, nthreads);
    printf("recipients reached per broadcast:     %lu (expected %u)\n", c.recipients / rounds,
           contacts + 1);
    printf("frames to c2s threads per broadcast:  %.2f (naive: one per recipient, %u)\n",
           (double)c.deliver_frames / rounds, contacts + 1);
    printf("frames between shards per broadcast:  %.2f (naive: one per contact in another "
           "shard, ~%u)\n",
           (double)c.shard_frames / rounds, contacts * (nshards - 1) / nshards);
    printf("router CPU per broadcast:             %.1f us (%.0f ns per recipient)\n",
           cpu / rounds * 1e6, cpu / (double)want * 1e9);
    return c.recipients == want ? 0 : 1;
}
