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
 * Files, by job:
 *   main.c     process start, shards, inter-shard rings, control messages
 *   shard.c    a shard's loop: frames in, frames out, store completions
 *   session.c  users and sessions in a hash table
 *   load.c     loading a user's state, the queue of frames that wait for it
 *   route.c    the outbound and inbound steps: routing rules, delivery by priority
 *   roster.c   the roster in memory and jabber:iq:roster (RFC 6121 §2)
 *   sub.c      subscription states (RFC 6121 §3, Appendix A)
 *   presence.c broadcast, probes, directed presence, a session's end (RFC 6121 §4)
 *   offline.c  offline messages (XEP-0160, XEP-0203)
 *   block.c    blocking (XEP-0191)
 *   carbons.c  message carbons (XEP-0280)
 *   module.c   the table of modules and the calls that run their hooks (module.h)
 *   iq.c       iq dispatch by namespace to the modules; disco, ping, version
 *   out.c      frames to front-end threads and to other shards; stanza errors
 *   home.c     the cluster's consistent-hash ring: a key's home node (home.h)
 *   link.c     the link thread: nanomsg sockets to the other nodes (link.h)
 *   node.c     a shard's side of the cluster: frames to and from other nodes, and what
 *              a membership change moves
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

/* One contact in a user's roster (RFC 6121 §2.1). */
struct roster_item {
    struct roster_item *next; /* hash chain */
    uint64_t hash;            /* jid_hash() of jid */
    char *jid;                /* bare JID */
    char *name;               /* NULL: none */
    char **groups;
    uint16_t jid_len, ngroups;
    uint8_t sub; /* enum store_sub: none, to, from, both */
    bool ask;    /* pending out */
    bool pending_in;
    bool approved; /* pre-approved (RFC 6121 §3.4) */
    bool hidden;   /* only subscription state, not in the user's visible roster */
};

struct roster {
    struct roster_item **buckets;
    size_t mask, count;
    size_t bytes; /* every item's roster_item_bytes(): what roster.max_bytes bounds */
    uint64_t ver;
};

/* A blocklist (XEP-0191): a set of JIDs, chained hash table (block.c). */
struct block_item;
struct blocklist {
    struct block_item **buckets;
    size_t mask, n;
    size_t nres; /* entries naming a resource (a full JID, or domain/resource) */
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

/* ---- session.c ---- */
void users_init(struct user_table *t);
void users_free(struct user_table *t);
struct user *user_find(struct user_table *t, uint64_t key, const char *bare, size_t len);
struct user *user_get(struct user_table *t, uint64_t key, const char *bare, size_t len);
/* Frees the user when nothing holds it: no session, no queued frame, no call due. */
void user_release(struct user_table *t, struct user *u);
/* RFC 7622 §3.3.1: a localpart has at most 1023 bytes. */
#define USER_LOCAL_MAX 1024
/* u's localpart as a C string: the store's name of the account. */
void user_localpart(const struct user *u, char *out, size_t cap);
struct session *session_find(struct user *u, const char *res, size_t len);
struct session *session_by_conn(struct user *u, uint64_t conn);
struct session *session_add(struct user *u, uint64_t conn, const char *jid, size_t len);
void session_remove(struct user *u, struct session *s);
int session_set_presence(struct session *s, const char *p, size_t len, int8_t priority);
/* A re-registered session gets back what out_session_state() told its front end, up to
 * max_directed JIDs. */
void session_restore(struct session *ss, uint8_t flags, const char *list, uint32_t len,
                     uint32_t max_directed);
/* Adds jid to ss's directed-presence list (false when memory is short); forgets the
 * entry *pp points to. Both keep the counts. */
bool session_directed_add(struct session *ss, const char *jid, size_t len);
void session_directed_drop(struct session *ss, struct directed **pp);

/* ---- load.c ---- */
/* True when u's state is there; otherwise the frame is queued (a copy) and the load
 * started: it is processed again, in order, when the state arrives. A stanza past
 * router.max_pending bytes is answered with resource-constraint instead. */
bool load_ready(struct shard *s, struct user *u, uint16_t kind, const void *payload, uint32_t len);
/* Starts loading without a frame (a session binds). */
void load_start(struct shard *s, struct user *u);

/* ---- shard.c ---- */
/* Rings between shards, in this process's memory: one per ordered pair, sized like the
 * shared ones. Shard i produces into to_shard[j], which shard j reads as from_shard[i].
 * The shards' bells must be attached first. 0 or -errno. */
int shard_link(struct shard *shards, unsigned nshards, uint32_t data_size, uint32_t max_frame);
void *shard_main(void *arg);
/* main.c, once a second: wakes the shard if it sleeps with outbound rings to trim. */
void shard_trim_tick(struct shard *s);
/* One round of the shard's loop, without sleeping: store completions, a batch from each
 * inbound ring, output published, tickets settled. Returns non-zero when it did work
 * (shard_main() sleeps on zero; tests drive shards in-process with it). */
unsigned shard_step(struct shard *s);
/* Handles a batch of what the other shards sent: their frames carry an envelope (the
 * ticket, see out_to_shard()). Returns how many frames. */
unsigned shard_drain_shards(struct shard *s);
/* The parts of a shard that main.c's attach() and shard_link() do not make: 0 or -ENOMEM. */
int shard_init(struct shard *s);
/* Frees what shard_init() made, the users and the store client (the thread ends). */
void shard_free(struct shard *s);
/* Frees what shard_link() made, once no shard runs. */
void shard_unlink(struct shard *shards, unsigned nshards);
/* The store client's notify (store_client_new_notify()): rings the shard's bell. */
void shard_store_notify(void *arg);
/* Handles one frame of any kind (from a ring, or replayed from a user's queue). */
void shard_frame(struct shard *s, uint16_t kind, const void *payload, uint32_t len);
bool stanza_parse(const void *payload, uint32_t len, struct stanza *st);

/* ---- route.c ---- */
void route_outbound(struct shard *s, const struct stanza *st);
void route_inbound(struct shard *s, const struct stanza *st);
/* A stanza from a remote server (s2s): to the server itself (iq.c), or the recipient's
 * step. */
void route_remote(struct shard *s, const struct stanza *st);
void route_bind(struct shard *s, const struct proto_session *b, const char *jid,
                const char *presence);
void route_unbind(struct shard *s, const struct proto_session *b, const char *jid);
/* Hands st to the recipient's step: a call when its shard is ours, else a frame. */
void route_forward(struct shard *s, const struct stanza *st);
/* A stanza the server makes itself on behalf of `from` (a user of this shard or the
 * one being answered), taken to the recipient's step. */
void route_generated(struct shard *s, const char *from, size_t from_len, size_t from_bare_len,
                     const char *to, size_t to_len, size_t to_bare_len, uint8_t kind, uint8_t type,
                     const char *stanza, size_t len);
/* Message delivery to a user (bare JID, or a full JID with no such session). */
void route_message_to_user(struct shard *s, struct user *u, const struct stanza *st);

/* ---- roster.c ---- */
void roster_init(struct roster *r);
void roster_free(struct roster *r);
struct roster_item *roster_find(const struct roster *r, const char *jid, size_t len);
struct roster_item *roster_add(struct roster *r, const char *jid, size_t len);
void roster_remove(struct roster *r, struct roster_item *it);
/* Bytes of the item's JID, name and groups. */
size_t roster_item_bytes(const struct roster_item *it);
/* Replaces the item's name (NULL: none) and groups with copies, keeping r->bytes; on
 * -ENOMEM the item is unchanged. No bound: callers check it. */
int roster_item_label(struct roster *r, struct roster_item *it, const char *name,
                      const char *const *groups, size_t ng);
/* Writes the item (or its removal) to the store and pushes it to interested sessions. */
void roster_changed(struct shard *s, struct user *u, struct roster_item *it, bool removed);
/* jabber:iq:roster from one of u's sessions. */
void roster_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
               const struct xml_node *iq, const struct xml_node *q);

/* ---- sub.c ---- */
void sub_outbound(struct shard *s, struct user *u, const struct stanza *st);
void sub_inbound(struct shard *s, struct user *v, const struct stanza *st);

/* ---- presence.c ---- */
/* A presence without `to` from session ss: availability, broadcast, probes. */
void presence_broadcast(struct shard *s, struct user *u, struct session *ss,
                        const struct stanza *st);
/* Directed available or unavailable presence: remembered, then forwarded. */
void presence_directed(struct shard *s, struct user *u, struct session *ss,
                       const struct stanza *st);
/* Presence for a user of ours (inbound): delivered to its available sessions. */
void presence_inbound(struct shard *s, struct user *v, const struct stanza *st);
void presence_fanout_in(struct shard *s, const struct rk_fanout *f, uint32_t len);
void presence_probe_in(struct shard *s, const struct rk_probe *p, uint32_t len);
/* Sends the current presence of each of u's available sessions to `to` (a bare JID):
 * after an approval or an unblock. unavailable: the opposite. */
void presence_send_all(struct shard *s, struct user *u, const char *to, size_t to_len,
                       bool unavailable);
/* A session ends: unavailable to contacts, directed recipients and own resources. */
void presence_end_session(struct shard *s, struct user *u, struct session *ss);

/* ---- offline.c ---- */
/* Stores a message for a user with no available session, or answers the sender. */
void offline_store(struct shard *s, struct user *u, const struct stanza *st);
/* Initial presence with a non-negative priority: the stored messages go out. */
void offline_deliver(struct shard *s, struct user *u, struct session *ss);
/* Initial presence: subscription requests still unanswered go out again. */
void offline_subreqs(struct shard *s, struct user *u, struct session *ss);

/* ---- block.c ---- */
/* Whether jid (normalised) is blocked: an entry is the JID, its bare JID, its domain
 * or its domain/resource. */
bool block_blocks(const struct blocklist *b, const char *jid, size_t len);
/* Adds an entry: 1, or 0 when it was there, or -ENOMEM. No bound: callers check it. */
int block_add(struct blocklist *b, const char *jid, size_t len);
void block_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
              const struct xml_node *iq, const struct xml_node *q);
void block_free(struct blocklist *b);
/* The entries that name a resource, as a list of uint16_t length + entry appended to out:
 * what a broadcast carries to its contacts' shards, which cannot see the blocklist
 * (XEP-0191 §3.3: a blocked full JID gets no presence). 0 or -ENOMEM. */
int block_resources(const struct blocklist *b, struct buf *out);
/* Does an entry of such a list match jid, a full JID? */
bool block_list_matches(const char *list, size_t len, const char *jid, size_t jid_len);

/* ---- carbons.c ---- */
bool carbons_eligible(const struct stanza *st);
/* Copies of a message one of u's sessions sent, to u's other carbons sessions (if the
 * message is eligible: checked here). */
void carbons_sent(struct shard *s, struct user *u, const struct stanza *st);
/* Copies of a message delivered to some of v's sessions, to v's other carbons sessions
 * (if eligible: checked here). */
void carbons_received(struct shard *s, struct user *v, const struct stanza *st,
                      struct session *const *got, unsigned ngot);
void carbons_iq(struct shard *s, struct session *ss, const struct stanza *st, const char *id,
                const struct xml_node *q);

/* ---- iq.c ---- */
/* An iq for the server, or for an account's bare JID (its own user, or another). */
void iq_to_server(struct shard *s, struct user *u, struct session *ss, const struct stanza *st);
void iq_to_account(struct shard *s, struct user *v, const struct stanza *st);
/* Is q the element name in namespace ns? */
bool iq_is(const struct xml_node *q, const char *name, const char *ns);
/* An iq_other hook (module.h) for what only the account itself may ask: forbidden. */
void iq_forbidden(struct shard *s, struct user *v, const struct stanza *st,
                  const struct xml_node *iq, const struct xml_node *q);
/* <iq type='result'/> with payload (may be NULL) to the sender of st. */
void iq_result(struct shard *s, const struct stanza *st, const char *id, const char *payload,
               size_t payload_len);

/* ---- out.c ---- */
/* ` id='push-N'`, unique for this shard's lifetime: clients answer pushes by id. */
void out_push_id(struct shard *s, struct buf *b);
/* A recipient for out_deliver_to(): its `to` attribute (` to='...'`, escaped), or none. */
struct out_rcpt {
    uint64_t conn;
    const char *to_attr;
    uint16_t to_len;
};
/* The stanza to each of rcpt (any threads): one frame per destination thread. The
 * recipients with a to_attr get it inserted at to_at. */
void out_deliver_to(struct shard *s, const struct out_rcpt *rcpt, unsigned n, const char *stanza,
                    size_t len, uint32_t to_at);
/* Recipients with a `to` each: built up, then sent with one out_deliver_to(). */
struct out_list {
    struct out_rcpt *r;
    size_t *off; /* of each recipient's attribute in attrs */
    unsigned n, cap;
    struct buf attrs;
};
/* Adds conn, whose `to` will be jid (escaped here). */
void out_list_add(struct out_list *l, uint64_t conn, const char *jid, size_t len);
void out_list_send(struct shard *s, struct out_list *l, const char *stanza, size_t len,
                   uint32_t to_at);
void out_list_free(struct out_list *l);

/* The same stanza as is to each of conns. */
void out_deliver(struct shard *s, const uint64_t *conns, unsigned n, const char *stanza,
                 size_t len);
/* The stanza as is to each of u's available sessions. */
void out_to_available(struct shard *s, const struct user *u, const char *stanza, size_t len);
void out_bind_result(struct shard *s, uint64_t conn, int result, const char *jid, size_t len);
void out_close(struct shard *s, uint64_t conn, uint8_t condition);
/* Tells ss's front end the session's flags and directed-presence list (they changed),
 * which it hands back if this router restarts. */
void out_session_state(struct shard *s, const struct session *ss);
/* An error answering st (RFC 6120 §8.3) to its sender; extra (may be NULL) is an
 * application-specific condition element added after the defined one. */
void out_error(struct shard *s, const struct stanza *st, const char *type, const char *condition);
void out_error_extra(struct shard *s, const struct stanza *st, const char *type,
                     const char *condition, const char *extra);
/* A stanza for a remote domain, to the s2s thread that owns the domain (PROTO_REMOTE). */
void out_remote(struct shard *s, const struct stanza *st);
/* A frame of two parts (a, then b) to front-end thread fe; false when it is lost. */
bool out_fe_frame(struct shard *s, unsigned fe, uint16_t kind, const void *a, uint32_t alen,
                  const void *b, uint32_t blen);
/* One stanza (without `to`) for `count` bare JIDs of one remote domain, listed as
 * uint16_t length + JID: one PROTO_REMOTE_FANOUT frame to the domain's s2s thread. */
void out_remote_fanout(struct shard *s, const char *domain, size_t dlen, const char *stanza,
                       size_t len, uint32_t to_at, const char *list, size_t list_len,
                       uint32_t count);
/* A frame for another shard (copied; queued in order when its ring is full; in pieces
 * when large). It travels in an envelope with a reference to the current ticket, which
 * the other shard drops once it has handled the frame (ticket.h). */
void out_to_shard(struct shard *s, unsigned dst, uint16_t kind, const void *payload, uint32_t len);
/* Sends what the backlogs hold, publishes, wakes front ends and shards. */
void out_flush(struct shard *s);

/* ---- node.c ---- */
/* A frame to shard `shard` of another node, through the link thread: a, then b (may be
 * empty), after a struct link_hdr. */
void node_send(struct shard *s, unsigned node, unsigned shard, uint16_t kind, const void *a,
               uint32_t alen, const void *b, uint32_t blen);
/* A frame for a key this shard is not the home of (dst: shard_of()): to its home, on
 * this node or another; past LINK_MAX_HOPS a stanza is answered remote-server-timeout. */
void node_relay(struct shard *s, unsigned dst, uint64_t key, uint16_t kind, const void *payload,
                uint32_t len);
/* The home shard of key on node `node`. */
unsigned node_home_shard(const struct shard *s, unsigned node, uint64_t key);
/* The shard of node `node` that a frame from this shard goes to when any would do:
 * always the same one, so frames from here to there stay in order. */
unsigned node_peer_shard(const struct shard *s, unsigned node);
/* Handles a batch of what the link thread brought. Returns how many frames. */
unsigned node_drain(struct shard *s);
/* Takes the link thread's newest view, if it is new: users whose home moved are handed
 * to it (their sessions as re-registrations), sessions whose connection was on a node
 * that went down end, and the contacts homed there are reported unavailable. */
void node_view_check(struct shard *s);
/* A session registered again after the loss of a node that was its user's home: once
 * the state is here (called again from load.c), the user hears that the contacts homed
 * on lost nodes are gone, and its contacts get its sessions' presence again (from this
 * home, after any goodbye the loss made). */
void node_rehomed(struct shard *s, struct user *u);
/* Publishes the counters the link thread reports (shard.pub). */
void node_publish(struct shard *s);

/* ---- rlog.c: frames to s2s until it acknowledges them ---- */
struct rlog;
int rlog_init(struct shard *s);
void rlog_free(struct shard *s);
/* Sends payload (malloc'd; the log keeps it) as a `kind` frame to s2s thread fe. */
void rlog_send(struct shard *s, unsigned fe, uint16_t kind, char *payload, uint32_t len);
/* A PROTO_REMOTE_ACK frame from s2s. */
void rlog_ack(struct shard *s, const void *frame, uint32_t len);
/* s2s thread fe was replaced (its rings reset): what it had not acknowledged goes again. */
void rlog_replay(struct shard *s, unsigned fe);

#endif
