/*
 * s2s: the server-to-server front end (federation). One process, U threads; each thread
 * is a front-end thread (common/fe/fe.h: its io_uring, listeners, connections, rings to
 * every router shard) plus what server streams need: a resolver (dns.h), a client TLS
 * context, and a table of the remote domains it talks to.
 *
 * Who owns what. A remote domain's outbound stream, the one that carries our stanzas to
 * it, belongs to one thread (topo_s2s_of() of the domain), which is where the router
 * sends every stanza for it (PROTO_REMOTE). Inbound streams land on whichever thread
 * accepted them; what they carry goes straight to the recipients' shards. A thread that
 * must verify a dialback key of an inbound stream (XEP-0220) asks the sender's
 * authoritative server over a stream of its own to that domain (its own table entry), so
 * threads never talk to one another.
 *
 * Files, by job:
 *   conn.c    what s2s adds to the layer's connection and thread: the ops table
 *   stream.c  both directions' common part: headers, parser limits, dispatch, deadlines
 *   in.c      inbound streams: features, STARTTLS, SASL EXTERNAL, dialback as the
 *             receiving and the authoritative server; stanzas into the router
 *   out.c     outbound streams: the domain table, queues while connecting, resolving,
 *             connecting address after address, negotiating (STARTTLS or Direct TLS,
 *             bidi, EXTERNAL or dialback), sending, idle close, failures and backoff
 *   resolve.c finding peers: the thread's resolver on its loop (resolve.h)
 *   remote.c  stanzas the router hands over (PROTO_REMOTE); bounces (RFC 6120 §8.3)
 *   multicast.c XEP-0033 between servers: finding a peer's multicast service, fan-out
 *             frames as one stanza per many recipients, peers' multicast stanzas
 *             expanded for our recipients
 *   main.c    process start, threads, control messages from the supervisor
 *
 * Our domains. s2s serves the main domain and, with muc.enabled, the chat service's
 * (muc.domain, conference.<domain> by default), each as a server of its own on the wire
 * (XEP-0220 §2.6: a MUC service beside the main domain): an inbound stream is for the
 * one its header's `to` names (c->local), and our streams to a remote domain are one
 * per (local, remote) pair, the local one being the domain of the stanza's `from`, each
 * authenticated for it (SASL EXTERNAL with it as authzid, which our certificate must
 * name, or dialback as it; dialback.c answers for both). Both pairs of one remote
 * domain live on the thread that owns the remote domain (topo_s2s_of()).
 *
 * Every function here runs on the thread that owns the connection or thread it is given.
 */
#ifndef STARLING_S2S_H
#define STARLING_S2S_H

#include "common/auth/external.h"
#include "common/core/arena.h"
#include "common/fe/fe.h"
#include "s2s/authz.h"
#include "s2s/dialback.h"
#include "s2s/resolve.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct s2s_dns_poll;
struct jid;
struct xml_node;
struct decode_remote_fanout;

/* s2s_conn.fe.flags: s2s's bits (FE_F_PROTO_MASK). */
#define S2S_F_OUTBOUND 0x0004 /* we opened it */
#define S2S_F_SASL_OK  0x0040 /* SASL EXTERNAL succeeded: the restarted stream keeps its pair */
#define S2S_F_BIDI     0x0080 /* XEP-0288 negotiated (kept across the SASL restart) */
#define S2S_F_REFUSED  0x2000 /* over s2s.max_connections_per_address: refused at its header */

/* s2s_conn.phase of an outbound stream. */
enum s2s_phase {
    OUT_CONNECTING, /* the TCP connect is in flight */
    OUT_STREAM,     /* our header is out: the peer's header, then its features */
    OUT_STARTTLS,   /* <starttls/> sent: <proceed/> is due */
    OUT_SASL,       /* <auth mechanism='EXTERNAL'/> sent */
    OUT_DIALBACK,   /* our <db:result/> sent */
    OUT_READY,      /* we may send from our domain to theirs */
};

struct s2s_domain;

/* The domains we serve (see the top): S2S_LOCAL_MUC only when muc.enabled. */
enum s2s_local { S2S_LOCAL_MAIN, S2S_LOCAL_MUC };
/* Which of ours d[0..len) is, or -1. */
static inline int s2s_local_of(const struct config *cfg, const char *d, size_t len)
{
    if (strlen(cfg->domain) == len && !memcmp(d, cfg->domain, len))
        return S2S_LOCAL_MAIN;
    return config_is_muc(cfg, d, len) ? S2S_LOCAL_MUC : -1;
}
static inline const char *s2s_local_name(const struct config *cfg, unsigned local)
{
    return local == S2S_LOCAL_MUC ? cfg->muc.domain : cfg->domain;
}

/* What XEP-0033 discovery learnt of a remote domain (multicast.c), kept in its table
 * entry for the life of its stream: found again on each new stream. */
enum mcast_state { MC_UNKNOWN, MC_INFO, MC_ITEMS, MC_ITEM_INFO, MC_YES, MC_NO };
struct s2s_mcast {
    uint8_t state;   /* enum mcast_state */
    uint8_t pending; /* MC_ITEM_INFO: answers still due */
    uint32_t nonce;  /* in the ids of the current round's queries */
    uint32_t limit;  /* MC_YES: recipients per stanza */
    char *service;   /* MC_YES: the multicast service's JID */
};

struct s2s_conn {
    struct fe_conn fe; /* first: the layer's part */
    char *remote;      /* the peer's domain: an inbound header's `from`, or where we connect */
    struct s2s_domain *dom; /* the entry it is the stream of: outbound, or an inbound
                             * bidi stream out_attach() took; NULL once detached */
    uint8_t phase;          /* outbound: enum s2s_phase */
    uint8_t local;          /* enum s2s_local: the domain of ours the stream is for */
    bool db_ready;          /* authz and dialback initialised for the current stream */
    bool timed_out;         /* closed at a deadline, for the bounce's condition */
    uint64_t addr_key;      /* inbound: the peer's address (IPv6: its /64) */
    bool addr_counted;      /* inbound: counted against s2s.max_connections_per_address */
    uint16_t id_len;
    char id[DIALBACK_ID_MAX + 1]; /* the stream ID: ours inbound, the peer's outbound */
    struct authz authz;
    struct dialback db;
    struct external ext; /* inbound: SASL EXTERNAL */
};

struct s2s_dns_poll;

struct s2s_thread {
    struct fe_thread fe; /* first: the layer's part */
    /* resolve.c: the peer resolver and what drives it from the loop */
    struct dns *dns;
    struct fe_timer dns_timer;
    struct s2s_dns_poll *dns_polls; /* [ndns_polls]: polls armed on its sockets */
    size_t ndns_polls, capdns_polls;
    struct tls_ctx *client_tls;
    struct tls_ctx *next_client_tls; /* FE_CTL_RELOAD: the one to switch to, or NULL */
    const struct dialback_config *db_cfg;
    struct authz_limits authz_lim;
    /* out.c: remote domains this thread talks to, by hash of the name */
    struct s2s_domain **domains;
    uint32_t domains_mask, ndomains;
    struct buf *acks; /* [nshards]: a PROTO_REMOTE_ACK being gathered for each shard */
    struct fe_timer ack_timer;
    bool ack_armed;
    uint64_t sent, received, bounced; /* stanzas, for the log */
    uint64_t fanout_frames, fanout_stanzas; /* PROTO_REMOTE_FANOUT frames, recipients served */
    uint64_t fanout_lost; /* ... stanzas to an unreachable server (a room's are returned) */
    /* multicast.c: XEP-0033 stanzas sent, the recipients they carried, bytes they saved
     * against one stanza per recipient; received, and the recipients they reached */
    uint64_t mc_sent, mc_rcpts, mc_received, mc_delivered;
    int64_t mc_saved_bytes;
};

static inline struct s2s_thread *s2s_thread(struct fe_conn *c)
{
    return (struct s2s_thread *)c->t;
}

/* The domain of ours stream c is for. */
static inline const char *s2s_me(const struct s2s_conn *c)
{
    return s2s_local_name(c->fe.t->cfg, c->local);
}

/* ---- conn.c ---- */
extern const struct fe_ops s2s_ops;

/* ---- stream.c ---- */
void s2s_stream_start(struct fe_conn *c);
void s2s_stream_event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev);
void s2s_send_header(struct fe_conn *c);
void s2s_stream_tick(struct fe_conn *c);
/* Writes our stream header: to `to` (NULL: none), with our ID when id is not NULL. */
void s2s_header(struct s2s_conn *c, const char *to, const char *id);
/* A domain pair of the stream is authenticated: no deadline, stanzas of full size. */
void s2s_authed(struct s2s_conn *c);
/* (Re)initialises the stream's authz and dialback machine for the current stream ID. */
void s2s_auth_reset(struct s2s_conn *c);
/* The element as a tree in the thread's arena (reset by the caller), or NULL. */
struct xml_node *s2s_tree(struct s2s_conn *c, const struct xml_event *ev);
/* Handles a dialback event of stream c (both directions meet here: a VERIFY on an
 * inbound stream becomes a <db:verify/> on an outbound one, whose answer comes back). */
void s2s_dialback_event(struct s2s_conn *c, enum dialback_ev k, const struct dialback_event *ev);
/* A dialback element arrived on stream c (either direction). */
void s2s_dialback_recv(struct s2s_conn *c, const struct xml_event *ev);
/* Sends what a dialback call appended to b, then handles its event. */
void s2s_dialback_out(struct s2s_conn *c, struct buf *b, enum dialback_ev k,
                      const struct dialback_event *ev);

/* ---- in.c ---- */
void in_open(struct s2s_conn *c, const struct xml_event *ev);
void in_element(struct s2s_conn *c, const struct xml_event *ev);
/* A stanza on an authenticated stream (inbound, or outbound with bidi): checked against
 * the stream's pairs, then to the recipient's shard. */
void in_stanza(struct s2s_conn *c, const struct xml_event *ev);
/* The outcome of verifying the dialback request (sender, target) of the inbound stream
 * whose ID is id, on this thread (XEP-0220 §2.1.2: a stream that is gone is ignored). */
void in_verified(struct s2s_thread *t, const char *id, const char *sender, const char *target,
                 enum dialback_type result, enum dialback_cond cond);

/* Stanza ev of the peer, or what stands for it: parts joined in order (the first starts
 * with its name; the stream's declarations it uses go in after that), its start tag
 * head_delta bytes longer than ev's, for `to`: into the recipient's shard. 0, or -1
 * after a stream error. */
int in_route(struct s2s_conn *c, const struct xml_event *ev, int kind, int type,
             const struct jid *from, const struct jid *to, const struct xml_str *parts,
             unsigned nparts, int head_delta);

/* ---- out.c ---- */
/* The XEP-0033 state of the table entry of (local, remote domain `name`), and its stream
 * when it is ready (else *conn NULL); NULL when the thread has no such entry. */
struct s2s_mcast *out_mcast(struct s2s_thread *t, unsigned local, const char *name, size_t len,
                            struct s2s_conn **conn);
int out_init(struct s2s_thread *t);
void out_free(struct s2s_thread *t);
/* A frame from the router for a remote domain (PROTO_REMOTE: one stanza; or
 * PROTO_REMOTE_FANOUT): sent, queued while the stream is made, or bounced. */
void out_frame(struct s2s_thread *t, uint16_t kind, const void *frame, uint32_t len,
               unsigned shard, uint64_t seq); /* shard ~0u: s2s's own, nobody to tell */
/* Asks the authoritative server of `sender` whether key is the one it made for (target,
 * sender, id), on this thread's stream to it (made if need be). The answer reaches
 * in_verified(). */
void out_verify(struct s2s_thread *t, const char *sender, const char *target, const char *id,
                const char *key, size_t key_len);
void out_connected(struct s2s_conn *c, int res);
/* ALLOWED_OUT or REFUSED_OUT on outbound stream c. */
void out_dialback(struct s2s_conn *c, enum dialback_ev k, const struct dialback_event *ev);
void out_open(struct s2s_conn *c, const struct xml_event *ev);
void out_element(struct s2s_conn *c, const struct xml_event *ev);
/* The stream is closing: its domain tries the next address, or fails, or goes idle. */
void out_closing(struct s2s_conn *c);
/* c no longer serves its domain's entry (the same as out_closing() without the dialback
 * that ends with a stream): for an inbound bidi stream that closes or must stop. */
void out_detach(struct s2s_conn *c);
/* Inbound stream c with XEP-0288 is authenticated for (remote -> us): it becomes the ready
 * stream of remote's entry, on the thread that owns remote, if that entry has none. */
void out_attach(struct s2s_conn *c, const char *remote);
void out_tick(struct s2s_conn *c);
/* Retries due after a backoff (ops->wake). */
void out_wake(struct s2s_thread *t);

/* ---- remote.c ---- */
/* A frame from the router (fe_ops.frame): a stanza for a remote domain. */
void remote_frame(struct fe_thread *t, const struct ring_frame *f);
/* Frame seq of shard is done with (on the wire, returned, or given up): the shard may
 * forget its copy (router/rlog.c). Batched: sent within a millisecond. */
void remote_ack(struct s2s_thread *t, unsigned shard, uint64_t seq);
/* The router died: acknowledgements for it are moot. */
void remote_ack_reset(struct s2s_thread *t);
/* An error answering the stanza of the PROTO_STANZA frame `frame` (from a local sender
 * to a remote JID) goes back to its sender through the router; nothing for an error or
 * a result (RFC 6120 §8.3.1). */
void remote_bounce(struct s2s_thread *t, const void *frame, uint32_t len, const char *condition);
/* A REMOTE_FANOUT frame that cannot go: a room's (PROTO_FANOUT_FROM_MUC) is answered for
 * each occupant it lists with an error of the stanza's kind from the occupant's real JID
 * to the room/nick that sent it (the room removes the occupant, status 333: router/
 * muc.h); presence fan-out and a room's error are counted (fanout_lost), never answered. */
void remote_bounce_fanout(struct s2s_thread *t, const void *frame, uint32_t len,
                          const char *condition);
/* remote_bounce_fanout()'s core, without I/O (for the unit tests): fn gets each error as
 * a PROTO_STANZA frame with header conn `conn`; scratch is the XML parser's. Returns how
 * many, 0 when the frame is not to be answered, -EBADMSG for a malformed frame. */
typedef void remote_error_fn(void *arg, const void *frame, uint32_t len);
int remote_fanout_errors(const void *frame, uint32_t len, const char *condition, uint64_t conn,
                         char *scratch, size_t scratch_cap, remote_error_fn *fn, void *arg);

/* ---- multicast.c ---- */
#define MCAST_NS "http://jabber.org/protocol/address"
#define MCAST_ITEMS_MAX 8 /* disco#items entries of a peer asked whether they multicast */

enum mcast_addr_type { MCAST_TO, MCAST_CC, MCAST_BCC, MCAST_INFO /* replyto, noreply... */ };
struct mcast_addr {
    uint8_t type;    /* enum mcast_addr_type */
    bool delivered;  /* delivered='true' */
    const char *jid; /* normalised (arena); NULL for MCAST_INFO without one */
    const char *raw_type, *node, *desc, *uri; /* as given (MCAST_INFO ones are kept) */
};
/* Errors of a peer's multicast stanza, each the stanza error it answers with. */
enum mcast_err {
    MCAST_OK,
    MCAST_BAD_REQUEST,    /* no <address/>, an unknown type, a recipient without a JID */
    MCAST_JID_MALFORMED,  /* a JID that does not parse */
    MCAST_FORBIDDEN,      /* a recipient that is not a user of our domain (no relaying) */
    MCAST_NOT_ACCEPTABLE, /* more recipients than s2s.multicast_max */
};
extern const char *const mcast_err_name[];

/* Reads an <addresses/> element (XEP-0033 §4): at most max entries (recipients and the
 * informational ones) into out[], *n of them; every to/cc/bcc one not yet delivered must
 * be a user's JID of `domain`. Strings live in a. */
enum mcast_err mcast_parse(const struct xml_node *addresses, const char *domain, unsigned max,
                           struct arena *a, struct mcast_addr *out, unsigned *n);
/* Where the stanza raw[0..len) (as `stream` reported it; NULL: standalone) has its
 * XEP-0033 <addresses/> child: [*off, *end). -ENOENT without one, -EINVAL when there
 * are several or the bytes do not parse. */
int mcast_span(const struct xml_parser *stream, const char *raw, size_t len, char *scratch,
               size_t scratch_cap, size_t *off, size_t *end);
/* Appends what a recipient of a peer's multicast sees in place of the <addresses/>
 * (§4.4): nothing when every recipient was bcc, else the element without the bcc ones
 * and with the to/cc ones marked delivered. */
int mcast_rewrite(struct buf *b, const struct mcast_addr *v, unsigned n);
/* Appends the multicast stanza for a fan-out: stanza[0..len) (no `to`; to_at where it
 * goes) to `service`, with a bcc address for each of the n bare JIDs of the fan-out
 * list from *p on (advanced past them). */
int mcast_build(struct buf *b, const char *stanza, size_t len, size_t to_at,
                const char *service, const char **p, const char *end, unsigned n);
/* Reads a disco#info <query/>: true when it has XEP-0033's feature; *limit then holds the
 * presence limit it advertises (XEP-0128 form, `http://jabber.org/protocol/address` as
 * ejabberd names it, or `...#limits`), else stays. */
bool mcast_info(const struct xml_node *query, struct arena *a, uint32_t *limit);

/* The stream of d is ready: ask whether it multicasts (disco#info, then disco#items). */
void mcast_discover(struct s2s_conn *c, struct s2s_mcast *m);
/* Forgets what was found (the stream is gone, or the entry). */
void mcast_reset(struct s2s_mcast *m);
/* A fan-out frame for m's domain on its ready stream c: true when it went out as
 * multicast stanzas (the peer supports it and there are several recipients). */
bool mcast_fanout(struct s2s_conn *c, struct s2s_mcast *m, const struct decode_remote_fanout *d);
/* An authenticated stanza from the peer addressed to our domain `local` itself (only the
 * main domain takes multicast stanzas; both take answers to discovery): true when
 * multicast.c took it (an answer to our discovery, a multicast stanza delivered or
 * refused); false: the router's. */
bool mcast_stanza(struct s2s_conn *c, const struct xml_event *ev, int kind, int type,
                  const struct jid *from, unsigned local);

#endif
