/*
 * router: S shard worker threads. A bare JID belongs to shard jid_hash(bare) % S (in a
 * cluster, of its home node: router/home.h says which node, the one rule), which
 * alone keeps its sessions (resources, priority, last presence, the connection of each),
 * its roster, pending subscription requests and blocklist, and applies the rules of
 * RFC 6120 §10 and RFC 6121 for it. Shards never touch each other's tables.
 *
 * A stanza takes two steps, as between two servers in RFC 6121's prose: the *sender's*
 * shard applies the "user's server" rules (outbound subscription states, outbound
 * blocking, sent carbons, directed presence, the presence broadcast itself), then the
 * *recipient's* shard applies the "contact's server" rules (inbound subscription
 * states, inbound blocking, delivery by priority, offline storage, received carbons).
 * When both users live in one shard the second step is a call; otherwise one frame
 * through an in-process ring (struct shard.to_shard). A presence broadcast to many
 * contacts travels once per destination shard (RK_FANOUT) and then once per front-end
 * thread (PROTO_DELIVER listing recipients, each `to` filled in by c2s).
 *
 * State is loaded on demand: a user's roster and blocklist come from the store when the
 * user binds a session or a stanza arrives for them; frames for a user being loaded
 * wait in order in the user's queue. Store calls are asynchronous: no shard blocks.
 *
 * Files, by job (a .h beside a .c is its contract; router.h has the core types: shard,
 * user, session, stanza, and the frames between shards):
 *   main.c       process start, shards, inter-shard rings, control messages
 *   shard.c/h    a shard's loop: frames in, frames out, store completions
 *   session.c/h  users and sessions in a hash table
 *   load.c/h     loading a user's state, the queue of frames that wait for it
 *   route.c/h    the outbound and inbound steps: routing rules, delivery by priority
 *   roster.c/h   the roster in memory and jabber:iq:roster (RFC 6121 §2)
 *   sub.c/h      subscription states (RFC 6121 §3, Appendix A)
 *   presence.c/h broadcast, probes, directed presence, a session's end (RFC 6121 §4)
 *   offline.c/h  offline messages (XEP-0160, XEP-0203)
 *   block.c/h    blocking (XEP-0191)
 *   carbons.c/h  message carbons (XEP-0280)
 *   sm.c/h       stream management (XEP-0198): resumption tokens, a session's move to a
 *                new connection, what a session that ended never acknowledged
 *   module.c/h   the table of modules and the calls that run their hooks
 *   iq.c/h       iq dispatch by namespace to the modules; disco, ping, version
 *   out.c/h      frames to front-end threads and to other shards; stanza errors
 *   rlog.c/h     frames to s2s kept until s2s acknowledges them
 *   ticket.c/h   when a batch of frames from a front end is finished with
 *   home.c/h     the cluster's consistent-hash ring: a key's home node
 *   link.c/h     the link thread: nanomsg sockets to the other nodes
 *   node.c/h     a shard's side of the cluster: frames to and from other nodes, and what
 *                a membership change moves
 *
 * Everything here but main.c runs on the shard thread given.
 */
#ifndef STARLING_ROUTER_H
#define STARLING_ROUTER_H

#include "common/core/arena.h"
#include "common/core/buf.h"
#include "common/config/config.h"
#include "common/xmpp/xml_tree.h"
#include "shm/backlog.h"
#include "shm/bell.h"
#include "shm/port.h"
#include "shm/proto.h"
#include "shm/ring.h"
#include "shm/stats.h"
#include "shm/topo.h"
#include "router/home.h"
#include "router/link.h"
#include "router/module.h"
#include "router/ticket.h"
/* The parts of the router, by file (each header says what it reads of the config and of
 * the store); router.h includes them all, so one include still gives a .c everything. */
#include "router/block.h"
#include "router/carbons.h"
#include "router/iq.h"
#include "router/load.h"
#include "router/node.h"
#include "router/offline.h"
#include "router/out.h"
#include "router/presence.h"
#include "router/rlog.h"
#include "router/roster.h"
#include "router/route.h"
#include "router/session.h"
#include "router/shard.h"
#include "router/sm.h"
#include "router/sub.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_client;

/* Frames between shards (in-process rings), after the front ends' kinds. */
enum {
    RK_INBOUND = PROTO_KIND_MAX, /* struct proto_stanza: the recipient's step */
    RK_FANOUT,                   /* struct rk_fanout: presence to contacts of one shard */
    RK_PROBE,                    /* struct rk_probe: a session asks contacts' presence */
    RK_BOUNCE, /* link thread -> shard: a frame (struct link_hdr first) no link took */
    RK_KIND_MAX,
};

/* proto_stanza.flags, router-made stanzas only: never answered with an error (the front
 * ends never set it; the router clears it on what they send). */
#define ROUTE_GENERATED 0x80

/* RK_FANOUT. Followed by the sender's full JID (from_len, bare first), the stanza (its
 * `to` goes at to_at), exclude_len bytes of blocklist entries naming a resource (as
 * block_resources() writes them: no session they match gets it), then ncontacts entries:
 * uint16_t len, then the bare JID. */
struct rk_fanout {
    uint64_t from_key;
    uint32_t stanza_len, to_at;
    uint16_t from_len, from_bare_len;
    uint32_t ncontacts;
    uint32_t exclude_len;
};

/* RK_PROBE. Followed by the prober's full JID (bare first), then ncontacts entries as in
 * RK_FANOUT. Answers go straight to the prober's connection. */
struct rk_probe {
    uint64_t conn;
    uint16_t from_len, from_bare_len;
    uint32_t ncontacts;
};

/* A JID a session sent directed presence to, to be told when it goes (RFC 6121 §4.6).
 * A session keeps router.max_directed of them; the list rides back to us in the
 * re-registration frame (in pieces when large). */
struct directed {
    struct directed *next;
    uint16_t len;
    char jid[];
};

struct session {
    struct session *next;
    uint64_t conn;
    char *jid; /* full JID; its first bare_len bytes are the user's bare JID */
    uint16_t jid_len;
    int8_t priority;
    bool available;     /* its last broadcast presence was available */
    bool interested;    /* asked for the roster: gets roster pushes (RFC 6121 §2.1.6) */
    bool blocklist_req; /* asked for the blocklist: gets its pushes (XEP-0191 §3.2) */
    bool carbons;       /* XEP-0280 enabled */
    char *presence;     /* last available presence, as sent (answers probes) */
    uint32_t presence_len;
    struct directed *directed;
    uint32_t ndirected, directed_bytes; /* the list's length, and its bytes as sent */
};

/* A frame waiting for its user's state. */
struct pending {
    struct pending *next;
    struct ticket *t; /* of the work that queued it (ticket.h) */
    uint16_t kind;
    uint32_t len;
    char payload[];
};

enum user_state { USER_COLD, USER_LOADING, USER_READY };

struct user {
    struct user *next; /* hash chain */
    uint64_t key;
    char *bare;
    uint16_t bare_len, local_len;
    uint8_t state;   /* enum user_state */
    bool exists;     /* the account exists (the store found its roster) */
    bool load_failed;
    bool fetching;   /* offline messages on their way to a session (offline.c) */
    /* Offline messages may be stored: the store said so at load, or one was stored
     * since. Only the user's shard stores them, so while false a login fetches none. */
    bool offline_maybe;
    /* In a cluster: its home was on a node that went down (node_rehomed()); told its
     * lost contacts' end once (rehome_done). */
    bool rehome_due, rehome_done;
    unsigned busy;   /* asynchronous calls that will find it again by pointer */
    struct session *sessions;
    struct pending *pend_head, *pend_tail;
    uint32_t pend_bytes; /* of the frames queued */
    /* mod_roster's and mod_blocking's state, as fields rather than slots: presence
     * fan-out, probes and offline delivery read them on every stanza (roster.h, block.h). */
    struct roster roster;
    struct blocklist block;
    void *mod[MOD_SLOTS]; /* each module's state of the user (module.h) */
};

struct user_table {
    struct shard *shard; /* whose table: modules free their state of a user there */
    struct user **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t count;
};

/* Counters of one shard; RESULTS.md reads them from the fan-out benchmark, /metrics from
 * the shard's stats slot (shard.c publishes them there). */
struct shard_stats {
    uint64_t frames_in, frames_out;
    uint64_t deliveries;      /* recipients reached */
    uint64_t deliver_frames;  /* PROTO_DELIVER frames written */
    uint64_t fanout_frames;   /* RK_FANOUT frames sent to other shards */
    uint64_t fanout_contacts; /* contacts those frames listed */
    uint64_t remote_fanout_frames;   /* PROTO_REMOTE_FANOUT frames to s2s */
    uint64_t remote_fanout_contacts; /* remote contacts those frames listed */
    uint64_t remote_forgotten;       /* copies for s2s dropped past router.max_remote_unacked */
    /* The cluster's links (node.c). */
    uint64_t link_frames, link_bytes; /* frames (and their bytes) to other nodes */
    uint64_t link_fanout_frames;      /* RK_FANOUT frames to other nodes: one per node */
    uint64_t link_fanout_contacts;    /* contacts those frames listed */
    uint64_t link_deliver_frames;     /* PROTO_DELIVER lists to other nodes' connections */
    uint64_t link_deliveries;         /* recipients those lists named */
    uint64_t link_bytes_saved;        /* what one copy per recipient would have added */
    uint64_t link_forwarded;          /* frames that reached a shard not their home */
    uint64_t link_bounced;            /* frames a link refused (node down, link full) */
    /* Multi-user chat (muc.c). */
    uint64_t muc_messages;       /* groupchat messages rooms broadcast */
    uint64_t muc_deliveries;     /* occupants those reached */
    uint64_t muc_deliver_frames; /* frames that took: to c2s threads and other nodes */
};

/* The link counters a shard publishes for the link thread's status file. */
struct shard_pub {
    _Atomic uint64_t sessions;
    _Atomic uint64_t link_frames, link_bytes, link_fanout_frames, link_fanout_contacts,
        link_deliver_frames, link_deliveries, link_bytes_saved, link_forwarded, link_bounced;
};

struct shard {
    unsigned idx, nshards;
    const struct config *cfg;
    unsigned nfe;                 /* front-end threads (c2s threads) */
    struct ring *from_fe, *to_fe; /* [nfe] */
    struct port_rx *rx_fe;        /* [nfe] messages in pieces from the front ends */
    struct ticket_queue *held;    /* [nfe] batches not finished: not released yet */
    bool *dirty;                  /* [nfe] committed frames not yet published */
    struct backlog *backlog;      /* [nfe] frames waiting for room */
    bool *broken;                 /* [nfe] inbound ring corrupt: left alone until reset */
    struct ring *from_shard, *to_shard; /* [nshards] in-process; [idx] unused */
    struct port_rx *rx_shard;
    bool *shard_dirty;
    struct backlog *shard_backlog;
    struct ticket *cur;           /* the ticket of the work under way (ticket.h) */
    struct ticket_state tickets;
    char *in; /* the shard's copy of the message from a front end being handled */
    uint32_t in_cap;
    struct session **targets; /* route.c: the sessions a message goes to */
    size_t targets_cap;
    bool retry_out;  /* an outbound ring had room already: flush again */
    unsigned trim_wakes; /* idle wake-ups left to give the outbound rings' pages back */
    _Atomic bool trim_wanted; /* asleep with trim_wakes left: main.c's tick wakes it */
    struct bell bell; /* frames for us, or room in a ring we wait on */
    struct store_client *store;
    struct user_table users;
    struct arena arena; /* per stanza */
    char scratch[16384];
    struct shard_stats stats;
    struct shm_stats *slot; /* the shard's stats slot (shm/stats.h): stats published there */
    struct rlog *rlog; /* [nfe]: frames s2s has not acknowledged (rlog.c); s2s threads only */
    uint64_t push_seq; /* ids of the pushes this shard sends */
    _Atomic unsigned ctl;      /* control request from main (ROUTER_CTL_*), 0: none */
    _Atomic unsigned ctl_done; /* last request handled */
    unsigned ctl_arg;
    const struct config *next_cfg; /* ROUTER_CTL_RELOAD */
    /* The cluster (link.h); NULL on a node alone, and then none of what follows is used. */
    struct cluster *cl;
    unsigned node;                 /* this node's index (0 alone) */
    uint64_t node_bits;            /* node << PROTO_CONN_NODE_SHIFT: on front ends' ids */
    const struct home_view *view;  /* the ring this shard routes by */
    _Atomic uint64_t view_seen;    /* view's epoch, for the link thread */
    struct ring to_link, from_link; /* to and from the link thread, in-process */
    struct port_rx rx_link;
    struct backlog link_backlog;
    bool link_dirty;
    uint8_t link_hops;             /* of the frame from another node being handled */
    uint64_t nsessions;
    struct shard_pub pub;
    const struct home_view *lost_view; /* the view before the last loss of nodes */
    uint64_t lost_mask;                /* the nodes that loss took */
    void *mod[MOD_SLOTS];              /* each module's state of the shard (module.h) */
};

enum { ROUTER_CTL_NONE, ROUTER_CTL_FE_DOWN, ROUTER_CTL_STOP, ROUTER_CTL_RELOAD };

/* A stanza frame, validated, with its strings located. */
struct stanza {
    const struct proto_stanza *h; /* the checked copy of the header (hdr), or one built here */
    struct proto_stanza hdr;
    const void *frame; /* the frame as received, to pass it on; NULL for one built here */
    const char *from, *to, *raw;
    size_t from_len, from_bare_len, to_len, to_bare_len, raw_len, head_len;
};

/* The control socket to the supervisor (main.c). */
extern int router_ctl_fd;
/* The shard this thread runs: store callbacks find their shard through it. */
extern _Thread_local struct shard *shard_current;

/* Where a key (jid_hash() of a bare JID) lives: its shard (< nshards) when its home is
 * this node, else nshards + the home node. Every path that routes by a user's key asks
 * here (home.h has the rule). */
static inline unsigned shard_of(const struct shard *s, uint64_t key)
{
    if (s->view) {
        unsigned n = home_node(s->view, key);
        if (n != s->node)
            return s->nshards + n;
    }
    return topo_shard_of(key, s->nshards);
}

/* Is the connection one of this node's front ends'? */
static inline bool conn_here(const struct shard *s, uint64_t conn)
{
    return (conn & PROTO_CONN_NODE_MASK) == s->node_bits;
}

/* The front-end thread (index g of shard.from_fe/to_fe, shm/topo.h) of a connection.
 * From a frame, it may be out of range: callers of fe_open() are given only ids the
 * front ends made, and from_front_end() checks what they send. */
static inline unsigned shard_fe(const struct shard *s, uint64_t conn)
{
    return topo_fe_index(s->cfg, PROTO_CONN_FE(conn), PROTO_CONN_THREAD(conn));
}

#endif
