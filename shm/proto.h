/*
 * proto: the frames front ends (c2s, s2s) and the router exchange through shm rings.
 * Types only: this header is a cross-process ABI, like the ring layout itself. Bump
 * PROTO_VERSION on any change; the supervisor starts every process of one build.
 *
 * Every frame is a struct shm_frame header (ring.h: len, kind, flags) followed by one of
 * the payloads below, then its variable-length strings and stanza bytes, in the order
 * each payload's comment gives. Frames carry everything the next hop needs to route:
 * normalised JIDs, their hashes, the stanza's kind and type, where its start tag ends,
 * so no hop re-parses a stanza to route it. Lengths are validated by the reader against
 * the frame length before any byte is used.
 *
 * Connection ids name one connection of one front-end thread across processes:
 *
 *   63    58 57 56 55     48 47                  24 23                   0
 *  +--------+-----+---------+----------------------+----------------------+
 *  |  node  | fe  | thread  |        slot          |      generation      |
 *  +--------+-----+---------+----------------------+----------------------+
 *
 * A slot is reused with a new generation, so a frame for a closed connection is
 * recognised and dropped (or bounced) by the front end. The node is the cluster's index
 * of the node whose front end holds the connection (router/home.h): front ends make ids
 * with node 0 and never look at it; their router stamps its own index on every frame
 * they send, so replies find the node from any other (0 on a node without a cluster).
 */
#ifndef STARLING_PROTO_H
#define STARLING_PROTO_H

#include <stdint.h>

#define PROTO_VERSION 9

static inline uint64_t proto_conn_id(unsigned fe, unsigned thread, uint32_t slot, uint32_t gen)
{
    return (uint64_t)fe << 56 | (uint64_t)(thread & 0xFF) << 48 |
           (uint64_t)(slot & 0xFFFFFF) << 24 | (gen & 0xFFFFFF);
}
#define PROTO_CONN_FE(id)     ((unsigned)((id) >> 56) & 0x3u)
#define PROTO_CONN_NODE(id)   ((unsigned)((id) >> 58))
#define PROTO_CONN_NODE_SHIFT 58
#define PROTO_CONN_NODE_MASK  (0x3Full << PROTO_CONN_NODE_SHIFT)
/* Nodes a connection id can name. */
#define PROTO_NODES_MAX 64
#define PROTO_CONN_THREAD(id) ((unsigned)((id) >> 48) & 0xFFu)
#define PROTO_CONN_SLOT(id)   ((uint32_t)((id) >> 24) & 0xFFFFFFu)
#define PROTO_CONN_GEN(id)    ((uint32_t)(id)&0xFFFFFFu)

/* Front-end numbers in connection ids. */
enum { PROTO_FE_C2S = 0, PROTO_FE_S2S = 1 };

enum proto_kind {
    PROTO_PAD = 0, /* reserved by the ring for wrap-around padding */
    /* front end -> router */
    PROTO_BIND = 1, /* bind a resource: struct proto_session */
    PROTO_UNBIND,   /* the session's connection is gone: struct proto_session */
    PROTO_STANZA,   /* a stanza from a bound session: struct proto_stanza */
    PROTO_REMOTE_ACK, /* s2s: REMOTE(_FANOUT) frames done with: struct proto_remote_ack */
    /* router -> front end */
    PROTO_BIND_RESULT, /* struct proto_bind_result */
    PROTO_DELIVER,     /* stanza bytes for connections of this thread: struct proto_deliver */
    PROTO_CLOSE,       /* close a connection with a stream error: struct proto_close */
    PROTO_SESSION_STATE, /* what to hand back at re-registration: struct proto_session_state */
    PROTO_REMOTE, /* router -> s2s: a stanza for a remote domain, as a struct proto_stanza */
    PROTO_REMOTE_FANOUT, /* router -> s2s: one stanza for many JIDs of one remote domain */
    /* Stream management (XEP-0198), c2s and the router; c2s/sm.c and router/sm.c tell
     * the story. */
    PROTO_SM_ENABLE,   /* c2s -> router: a session may be resumed by this token:
                          struct proto_sm_token */
    PROTO_SM_RESUME,   /* c2s -> router: a new connection presents a token: struct proto_sm_token */
    PROTO_SM_TAKEOVER, /* router -> c2s: hand the session of conn over: struct proto_sm_takeover */
    PROTO_SM_HANDOFF,  /* c2s -> router: a session's stream state: struct proto_sm_state */
    PROTO_SM_ORPHAN,   /* c2s -> router: a stanza a session that ended never acknowledged, for
                          its recipient's step again: struct proto_stanza */
    PROTO_SM_RESUMED,  /* router -> c2s: the HANDOFF for the connection that resumes, or a
                          resumption's failure: struct proto_sm_state */
    PROTO_KIND_MAX
};

/* Stanza kinds and types, so the router routes without parsing. */
enum proto_stanza_kind { PROTO_MESSAGE, PROTO_PRESENCE, PROTO_IQ };

enum proto_message_type {
    PROTO_MSG_NORMAL,
    PROTO_MSG_CHAT,
    PROTO_MSG_GROUPCHAT,
    PROTO_MSG_HEADLINE,
    PROTO_MSG_ERROR,
};

enum proto_presence_type {
    PROTO_PRES_AVAILABLE, /* no type attribute */
    PROTO_PRES_UNAVAILABLE,
    PROTO_PRES_SUBSCRIBE,
    PROTO_PRES_SUBSCRIBED,
    PROTO_PRES_UNSUBSCRIBE,
    PROTO_PRES_UNSUBSCRIBED,
    PROTO_PRES_PROBE,
    PROTO_PRES_ERROR,
};

enum proto_iq_type { PROTO_IQ_GET, PROTO_IQ_SET, PROTO_IQ_RESULT, PROTO_IQ_ERROR };

/* BIND, UNBIND. Followed by the full JID (jid_len bytes, its first bare_len bytes are
 * the bare JID), then for a re-registration the session's last available presence and
 * the directed-presence list of its last PROTO_SESSION_STATE. */
struct proto_session {
    uint64_t conn;
    uint64_t key; /* jid_hash() of the bare JID: the shard key */
    uint16_t jid_len;
    uint16_t bare_len;
    uint8_t flags;   /* PROTO_SESSION_* */
    int8_t priority; /* re-registration: of the last available presence */
    uint16_t pad;
    uint32_t presence_len; /* re-registration: bytes of that presence */
    uint32_t directed_len; /* re-registration: bytes of the directed-presence list */
};

/* The session existed before the router restarted: no conflict handling, no answer. */
#define PROTO_SESSION_REREGISTER 0x1
/* Router state, in proto_session_state.flags and again in a re-registration: the session
 * asked for its roster (gets pushes), for its blocklist (gets pushes), enabled carbons. */
#define PROTO_SESSION_ROSTER 0x2
#define PROTO_SESSION_BLOCKLIST 0x4
#define PROTO_SESSION_CARBONS 0x8
/* Re-registration: the session may be resumed (XEP-0198); its PROTO_SM_TOKEN_LEN bytes of
 * token follow the directed-presence list. */
#define PROTO_SESSION_SM 0x10

/* Does a front end send frames of this kind? */
static inline int proto_kind_from_fe(unsigned kind)
{
    return (kind >= PROTO_BIND && kind <= PROTO_REMOTE_ACK) || kind == PROTO_SM_ENABLE ||
           kind == PROTO_SM_RESUME || kind == PROTO_SM_HANDOFF || kind == PROTO_SM_ORPHAN;
}

/* STANZA. Followed by the sender's full JID (from_len, its first from_bare_len bytes
 * are the bare JID), the normalised destination (to_len, 0 when the stanza had no
 * `to`; its first to_bare_len bytes are the bare JID), then the stanza (stanza_len
 * bytes: `from` already stamped by the front end, namespaces self-contained). */
struct proto_stanza {
    uint64_t conn;   /* the sender's connection, for errors and results */
    uint64_t key;    /* jid_hash() of the sender's bare JID: its shard does the outbound
                        rules of RFC 6121 (its roster, blocklist, sessions live there) */
    uint64_t to_key; /* jid_hash() of the destination's bare JID (0 without `to`) */
    uint8_t kind;    /* enum proto_stanza_kind */
    uint8_t type;    /* enum proto_*_type of that kind */
    uint8_t flags;   /* PROTO_STANZA_* */
    int8_t priority; /* available presence: its <priority/>, clamped to -128..127 */
    uint16_t from_len, from_bare_len;
    uint16_t to_len, to_bare_len;
    uint16_t to_domain_off, to_domain_len; /* the domainpart inside the normalised `to` */
    uint32_t head_len;                     /* bytes of the stanza's start tag */
    uint32_t stanza_len;
};

/* The destination is the server itself (no `to`, or the domain, or the sender's bare
 * JID for stanzas the server answers on the account's behalf). */
#define PROTO_STANZA_TO_SERVER 0x1
/* The destination's domain is one this node serves. */
#define PROTO_STANZA_LOCAL 0x2
/* s2s -> router: the stanza comes from a remote server (its `from` is remote, `key` is
 * to_key: it goes to the recipient's shard first). Only s2s may set it. */
#define PROTO_STANZA_REMOTE 0x4

/* BIND_RESULT. Followed by the bound full JID (jid_len bytes) on success. */
struct proto_bind_result {
    uint64_t conn;
    int32_t result; /* 0; -EEXIST: the resource is taken and the policy refuses; -EDQUOT: the
                       account has router.max_sessions already */
    uint16_t jid_len;
    uint16_t pad;
};

/* DELIVER. Followed by nrcpt struct proto_rcpt (connections of the receiving thread),
 * the stanza bytes, then a table of ` to='...'` attributes (already escaped) that
 * recipients with to_len != 0 get inserted at to_at: a broadcast travels once per
 * thread and each recipient's `to` is filled in at this last hop. */
struct proto_deliver {
    uint32_t nrcpt;
    uint32_t stanza_len;
    uint32_t to_at;    /* where the `to` attribute goes: right after the element name */
    uint32_t attr_len; /* bytes of the attribute table */
};

struct proto_rcpt {
    uint64_t conn;
    uint32_t to_off; /* into the attribute table */
    uint32_t to_len; /* 0: the stanza as is */
};

/* REMOTE and REMOTE_FANOUT frames start with this envelope, then their payload. s2s
 * acknowledges each (PROTO_REMOTE_ACK) once its stanzas are on the wire, returned to
 * their senders or given up: what a shard has not heard back of when s2s dies goes to
 * its replacement (router/rlog.c), so nothing handed to s2s is lost with it. seq is
 * the shard's, starting at a random epoch at each router start. */
struct proto_remote_env {
    uint64_t seq;
    uint32_t shard;
    uint32_t pad;
};

/* REMOTE_ACK. conn names the s2s thread (slot and generation unused); followed by n
 * uint64_t sequence numbers of the shard the frame goes to. */
struct proto_remote_ack {
    uint64_t conn;
    uint32_t n;
    uint32_t pad;
};

/* REMOTE_FANOUT. Followed by the remote domain (domain_len bytes), the stanza
 * (stanza_len bytes, without `to`), then nrcpt entries of a uint16_t length and a
 * JID of that domain (bare for presence broadcasts, an occupant's full JID for a room's
 * stanzas): s2s writes the stanza once per recipient with its ` to='...'`
 * inserted at to_at (or, to a server that takes XEP-0033, once per many recipients:
 * s2s/multicast.c), so a broadcast to many contacts on one server crosses the ring
 * once. It is presence (broadcasts, probes), which s2s counts (fanout_lost) when the
 * server cannot be reached, or a room's broadcast (PROTO_FANOUT_FROM_MUC), which s2s
 * then returns as one error per recipient to the room (s2s/remote.c). */
struct proto_remote_fanout {
    uint32_t stanza_len;
    uint32_t to_at;
    uint32_t nrcpt;
    uint16_t domain_len;
    uint16_t flags; /* PROTO_FANOUT_* */
};
/* proto_remote_fanout.flags: the stanza is from the chat service (a room's), so it
 * leaves on our stream from muc.domain, not the main domain's (s2s/s2s.h). */
#define PROTO_FANOUT_FROM_MUC 0x0001

/* CLOSE. The front end sends the stream error and closes the connection. */
struct proto_close {
    uint64_t conn;
    uint8_t condition; /* enum proto_stream_error */
    uint8_t pad[7];
};

/* SESSION_STATE. What the router knows of a session that its stanzas alone do not
 * rebuild: flags (PROTO_SESSION_ROSTER...), then directed_len bytes listing the JIDs it
 * sent directed presence to (each a uint16_t length, then the JID). The front end keeps
 * the latest and hands it back when it re-registers the session with a restarted
 * router, so a router restart forgets nothing a client set up. */
struct proto_session_state {
    uint64_t conn;
    uint8_t flags;
    uint8_t pad[3];
    uint32_t directed_len;
};

/* Random bytes naming a resumable session (XEP-0198's id is their hex): the router keeps
 * them with the session and matches a resumption against the sessions of the user who
 * presents them, so a token is worth nothing to another account. */
#define PROTO_SM_TOKEN_LEN 16

/* SM_ENABLE, SM_RESUME. Followed by the bare JID (bare_len bytes). conn is the session's
 * (ENABLE) or the connection that would resume one (RESUME). */
struct proto_sm_token {
    uint64_t conn;
    uint64_t key; /* jid_hash() of the bare JID */
    uint8_t token[PROTO_SM_TOKEN_LEN];
    uint16_t bare_len;
    uint8_t pad[6];
};

/* SM_TAKEOVER. conn: the session's connection now (open, or detached in c2s); to: the
 * connection that resumes it, which the router has given the session already. */
struct proto_sm_takeover {
    uint64_t conn;
    uint64_t to;
    uint64_t key;
};

/* SM_HANDOFF, SM_RESUMED. From c2s (conn: the old connection, answering SM_TAKEOVER) to
 * the user's shard, which passes it on unchanged as SM_RESUMED to the thread of `to`
 * (any node's); or SM_RESUMED made by the router (conn == to) for a resumption that
 * failed. result 0: followed by the full JID (jid_len, its first bare_len
 * bytes the bare JID), the last available presence (presence_len), the directed-presence
 * list of the last PROTO_SESSION_STATE (directed_len), then the stanzas not acknowledged
 * (queue_len bytes: each a uint32_t length and the stanza as written). result -ENOENT:
 * nothing follows, and the resumption gets item-not-found. -ESRCH (SM_RESUMED only): as
 * for 0, but the session ended meanwhile: the resumption fails and the stanzas go back
 * to the router as at the end of a session (PROTO_SM_ORPHAN). */
struct proto_sm_state {
    uint64_t conn;
    uint64_t to;
    uint64_t key;
    int32_t result;
    uint32_t in_h;      /* stanzas the server handled from the client */
    uint32_t out_acked; /* the client's last acknowledgement */
    uint32_t out_sent;  /* stanzas sent it; out_sent - out_acked are queued */
    uint16_t jid_len, bare_len;
    int8_t priority;
    uint8_t router_flags; /* PROTO_SESSION_ROSTER... */
    uint8_t available;    /* it had sent available presence */
    uint8_t pad;
    uint32_t presence_len, directed_len, queue_len;
};

enum proto_stream_error {
    PROTO_SE_CONFLICT,
    PROTO_SE_SYSTEM_SHUTDOWN,
    PROTO_SE_POLICY_VIOLATION,
    PROTO_SE_RESET,
};

#endif
