/*
 * opts: starling-bench's command line: one table of long options, their defaults and
 * ranges, checked together so that a run never starts with parameters it cannot honour.
 * The parsed struct is read-only afterwards and shared by every thread.
 */
#ifndef STARLING_BENCH_OPTS_H
#define STARLING_BENCH_OPTS_H

#include "bench/saslc.h"
#include "bench/xmppc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

enum opts_scenario {
    OPTS_LOGIN,
    OPTS_IDLE,
    OPTS_CHAT,
    OPTS_PRESENCE,
    OPTS_MIXED,
    OPTS_MUC, /* one room, every client an occupant, --senders post groupchat messages */
    OPTS_SM,  /* chat with XEP-0198 stream management on every stream */
};

/* Behaviours of a pair of users in the mixed scenario. */
enum opts_mix { OPTS_MIX_CHAT, OPTS_MIX_PRESENCE, OPTS_MIX_IDLE, OPTS_MIX_LOGIN, OPTS_MIX_COUNT };

#define OPTS_MAX_SOURCES 256
#define OPTS_MAX_PIDS    16

struct opts {
    enum opts_scenario scenario;
    const char *host;
    unsigned port;
    struct sockaddr_storage addr; /* host:port resolved */
    socklen_t addr_len;
    const char *domain;
    /* --peer: the second user of each pair (odd account index) logs into this other
     * server, in peer_domain; chat then sends only from the first to the second. */
    const char *peer_host;
    unsigned peer_port;
    struct sockaddr_storage peer_addr;
    socklen_t peer_addr_len;
    const char *peer_domain;
    const char *user;     /* pattern: the first "%d" becomes the account number */
    const char *password; /* pattern, likewise */
    const char *resource;
    uint32_t first;   /* number of the first account */
    uint32_t clients; /* connections; login: connections at once */
    uint32_t users;   /* login: accounts cycled through (>= clients) */
    unsigned threads;
    double duration; /* seconds measured */
    uint64_t count;  /* messages (login: logins; presence: changes); 0: no limit */
    double rate;     /* open loop, per second in total; 0: closed loop */
    unsigned window; /* closed loop: in flight per sender */
    unsigned body;   /* bytes of a message body */
    enum xmppc_tls tls;
    enum saslc_mech mech;
    double ramp;          /* connections started per second; 0: no limit */
    unsigned pending;     /* logins in progress at once */
    double timeout;       /* seconds a login may take */
    double drain;         /* seconds to wait for stanzas in flight at the end */
    unsigned contacts;    /* presence: contacts per user */
    bool hub;             /* presence: user 0 alone has contacts (scen_ncontacts) */
    double presence_rate; /* presence changes per second in total */
    int roster_setup;     /* 1: always, 0: when rosters lack contacts, -1: never */
    unsigned mix[OPTS_MIX_COUNT];
    double think;       /* mixed: seconds a churning user stays online */
    const char *room;   /* muc: the room's bare JID */
    uint32_t senders;   /* muc: occupants that post (the first ones) */
    const char *broadcast; /* muc: roles whose presence the room broadcasts; NULL: all */
    unsigned ack_every; /* sm: an <r/> after this many stanzas sent; 0: never */
    const char *label;
    const char *json;
    const char *adduser;
    pid_t pids[OPTS_MAX_PIDS];
    unsigned npids;
    struct sockaddr_storage sources[OPTS_MAX_SOURCES];
    unsigned nsources;
    bool quiet;
    char label_buf[300];
    char peer_buf[256];
    char room_buf[300];
};

/* Scenarios whose users chat in pairs (user 2k+1 <-> 2k+2). */
static inline bool opts_pairs_chat(const struct opts *o)
{
    return o->scenario == OPTS_CHAT || o->scenario == OPTS_SM;
}

/* "login", "idle", ... */
const char *opts_scenario_name(enum opts_scenario s);
const char *opts_mix_name(enum opts_mix m);

/*
 * Fills o from argv. 0 to run; 1 when --help was asked (usage printed to stdout);
 * -EINVAL with the reason in err. Resolves the host (getaddrinfo: may block briefly).
 */
int opts_parse(struct opts *o, int argc, char **argv, char *err, size_t errlen);

void opts_usage(FILE *f);

/* Whether the user of account index a (0-based) lives on the --peer server. */
static inline bool opts_on_peer(const struct opts *o, uint32_t a)
{
    return o->peer_host && (a & 1);
}

/* The domain of the user of account index a. */
static inline const char *opts_domain_of(const struct opts *o, uint32_t a)
{
    return opts_on_peer(o, a) ? o->peer_domain : o->domain;
}

/* The account name or password of account number n: pattern with its first "%d"
 * replaced by n ("%%" stands for '%'). The length, or -ENOSPC. */
int opts_expand(const char *pattern, uint32_t n, char *out, size_t cap);

#endif
