/*
 * muc: multi-user chat (XEP-0045) and the invitations that ride on it (XEP-0249 direct
 * invitations are messages between users: nothing here), at muc.domain
 * (conference.<domain> by default), a module of the router (module.h).
 *
 * Where a room lives. A room's bare JID picks its home shard as a user's does
 * (shard_of(jid_hash(room))), so rooms spread over the shards and the cluster's nodes;
 * only that shard touches the room. c2s marks the chat service's domain as ours
 * (PROTO_STANZA_LOCAL), the sender's shard applies the sender's rules (its blocklist,
 * directed presence: a session remembers the rooms it joined, so its end sends them
 * unavailable, presence.c) and route_forward() takes the stanza to the room's home,
 * where the module's home hook takes it before any account is looked up. Users of other
 * servers reach rooms through s2s, which serves the chat service's domain as a server of
 * its own (s2s/s2s.h) and hands their stanzas to the room's home shard (route_remote());
 * they occupy rooms as local users do. Stanzas to the service's own domain (disco) are
 * answered in the sender's shard, or for a remote sender in the shard s2s picked (its
 * disco#items once the store has answered).
 *
 * Fan-out. The room keeps each occupant's connection id (the frame that joined it
 * carries it). A groupchat message to N occupants is written once, without `to`, and
 * handed to out_list_send(): one PROTO_DELIVER frame per c2s thread of this node listing
 * that thread's occupants with each one's real JID as `to`, one link message per other
 * node holding occupants' connections (which splits it per thread there); the
 * per-occupant stanza exists only in the front end that writes it. Occupants from remote
 * servers (remote: they joined through s2s, PROTO_STANZA_REMOTE) are grouped per server
 * (muc_remote.c): one PROTO_REMOTE_FANOUT frame per server listing their real full
 * JIDs, marked PROTO_FANOUT_FROM_MUC so s2s sends it on our stream from the chat
 * service's domain (s2s/s2s.h), as one stanza per occupant or, to a server that offers
 * XEP-0033, one multicast stanza for many (s2s/multicast.c). What a room sends to one
 * remote occupant (its self-presence, history, a private message) is one PROTO_REMOTE
 * stanza (route_generated()). When a remote server cannot be reached, s2s returns the
 * room's frame as one error per occupant listed, from its real JID to the room/nick that
 * sent it (s2s/remote.c), as it returns a plain stanza; never for an error.
 * shard_stats counts it: muc_messages, muc_deliveries,
 * muc_deliver_frames (frames those deliveries took: the home's own c2s threads', one a
 * node, which link_deliver_frames counts alone, and the REMOTE_FANOUT ones, also those
 * sent across a link to the node owning the remote server's streams, out_remote_fanout());
 * tests/integration/test_muc_cluster.py checks it on three nodes, test_muc_everywhere.py
 * on two nodes federating with Prosody.
 *
 * What a room does: join with self-presence (110, 201 on creation: the creator is the
 * owner and the room is locked until the owner submits the configuration form, or an empty
 * one for an instant room), nick conflicts (409), passwords (401), members-only (407),
 * bans (403), max occupants (503), history on join (maxstanzas, maxchars, seconds, since),
 * the subject, nick changes (303), private messages (to room/nick, delivered to the
 * occupant's real JID), roles and affiliations changed by moderators, admins and owners
 * (§8-§10: kick 307, ban 301, affiliation changes 321/322), the owner's form
 * (muc#roomconfig), mediated invitations and declines (§7.8), destroying a room, MUC
 * self-ping (XEP-0410), removing an occupant whose real full JID answers the room with an
 * error (status 333, muc.c occupant_error(): any presence error, a message error whose
 * condition says the occupant or its server is gone, muc_error_gone(); local and remote
 * alike), which is how occupants of a server that went away leave: the room's broadcast to
 * them comes back as errors, and the removal's own broadcast to them, bounced again, finds
 * no occupant and ends. Rooms are kept in the memory of their shard; a persistent one
 * stays there when empty, and is also in the store (muc_store.c,
 * common/store/store_muc.h): its configuration, subject (and who set it) and affiliations,
 * written at each change of them and deleted when the room is destroyed or made temporary.
 * A stanza to a room the shard does not hold waits for the store's answer (bounded:
 * router.max_pending bytes per room, loads counted in muc.max_rooms), so persistent rooms
 * come back after a restart and on any node of a cluster sharing PostgreSQL. Neither
 * occupants nor history are stored: after a restart a room is empty and its history starts
 * again.
 *
 * The service's disco#items (§6.3) lists the public persistent rooms, from the store
 * (the one place that has every shard's and node's), muc.max_listed at most, in JID
 * order, without RSM; temporary rooms are not listed.
 *
 * MAM for rooms (XEP-0313 §3.3.2, §5.1.2; muc_mam.c). While mam.enabled, every room
 * archives each groupchat message with a <body/> (not subject changes, not private
 * messages, not one with a XEP-0334 no-store hint) under the room's bare JID, `with` the
 * occupant's room/nick, and sends it out with <stanza-id by='room' id='row id'/>
 * (XEP-0359); a stanza-id a sender wrote naming the room is removed first, from private
 * messages too. History on join carries the same stanza-ids. The room's disco#info lists
 * urn:xmpp:mam:2 and urn:xmpp:sid:0. A MAM query to the room JID (results from the
 * room, each forwarded message from room/nick) is answered for anyone who could join:
 * not outcasts; in a members-only or password-protected room, only occupants and
 * members (else forbidden).
 *
 * Everything runs on the room's shard thread.
 */
#ifndef STARLING_ROUTER_MUC_H
#define STARLING_ROUTER_MUC_H

#include "common/core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NS_MUC       "http://jabber.org/protocol/muc"
#define NS_MUC_USER  "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN "http://jabber.org/protocol/muc#admin"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"

/* Roles and affiliations in rank order (XEP-0045 §5). */
enum muc_role { MUC_ROLE_NONE, MUC_ROLE_VISITOR, MUC_ROLE_PARTICIPANT, MUC_ROLE_MODERATOR };
enum muc_aff { MUC_AFF_OUTCAST, MUC_AFF_NONE, MUC_AFF_MEMBER, MUC_AFF_ADMIN, MUC_AFF_OWNER };

const char *muc_role_name(enum muc_role r);
const char *muc_aff_name(enum muc_aff a);
/* -1 when name is none of them. */
int muc_role_parse(const char *name);
int muc_aff_parse(const char *name);

struct muc_occupant {
    struct muc_occupant *next;
    char *nick;
    char *jid; /* the real full JID; its first bare_len bytes are the bare JID */
    uint16_t nick_len, jid_len, bare_len;
    uint8_t role; /* enum muc_role */
    uint8_t aff;  /* enum muc_aff, its bare JID's (kept here: presence carries it) */
    uint64_t conn; /* its connection (of any node), unless remote (0 is a connection id too) */
    bool remote;   /* a remote server's user: reached through s2s */
    char *pres;    /* the children of its last presence, the MUC ones left out */
    uint32_t pres_len;
};

struct muc_aff_item {
    struct muc_aff_item *next;
    uint8_t aff;
    uint16_t len;
    char jid[]; /* bare JID (or a domain) */
};

struct muc_hist {
    struct muc_hist *next;
    time_t at;
    uint32_t len, chars; /* chars: of the stanza as sent, what maxchars counts */
    char stanza[];       /* the groupchat message without `to` */
};

struct muc_config {
    char *name, *desc, *password; /* NULL: none */
    uint32_t maxusers;
    bool persistent, membersonly, moderated, public_room, whois_anyone, changesubject,
        allow_invites;
};

struct muc_room {
    struct muc_room *next; /* hash chain */
    uint64_t key;
    char *jid; /* bare JID */
    uint16_t jid_len;
    bool locked; /* created, waiting for its owner's configuration */
    struct muc_config cfg;
    struct muc_occupant *occupants;
    uint32_t noccupants;
    struct muc_aff_item *affs;
    uint32_t naffs;
    char *subject, *subject_nick; /* NULL: none */
    struct muc_hist *hist_head, *hist_tail;
    uint32_t nhist, hist_bytes;
    bool dirty;  /* its configuration, subject or affiliations changed since written */
    bool stored; /* the store has a row for it (muc_store.c) */
};

struct muc_table {
    struct muc_room **buckets;
    size_t mask, count;
};

/* ---- muc_room.c: a room's tables and rules, pure (no I/O) ---- */
int muc_table_init(struct muc_table *t);
void muc_table_free(struct muc_table *t);
struct muc_room *muc_room_find(const struct muc_table *t, uint64_t key, const char *jid, size_t len);
/* A new room, unlocked, default configuration (maxusers as given); NULL: no memory. */
struct muc_room *muc_room_add(struct muc_table *t, uint64_t key, const char *jid, size_t len,
                              uint32_t maxusers);
void muc_room_remove(struct muc_table *t, struct muc_room *r);
void muc_config_free(struct muc_config *c);

struct muc_occupant *muc_occ_by_nick(const struct muc_room *r, const char *nick, size_t len);
struct muc_occupant *muc_occ_by_jid(const struct muc_room *r, const char *jid, size_t len);
struct muc_occupant *muc_occ_add(struct muc_room *r, const char *nick, size_t nick_len,
                                 const char *jid, size_t jid_len, size_t bare_len, uint64_t conn);
void muc_occ_remove(struct muc_room *r, struct muc_occupant *o);
/* Replaces the occupant's nick or presence children with copies: 0 or -ENOMEM. */
int muc_occ_set_nick(struct muc_occupant *o, const char *nick, size_t len);
int muc_occ_set_pres(struct muc_occupant *o, const char *p, size_t len);

/* The affiliation of a JID: the bare JID's entry, else its domain's, else none. */
enum muc_aff muc_aff_of(const struct muc_room *r, const char *jid, size_t len);
/* Sets the bare JID's (none removes it): 0, -ENOMEM, or -EDQUOT past max entries. */
int muc_aff_set(struct muc_room *r, const char *bare, size_t len, enum muc_aff a, uint32_t max);
/* The role an occupant of this affiliation gets on entering (§5.1). */
enum muc_role muc_role_default(const struct muc_room *r, enum muc_aff a);
/* May an occupant (role, affiliation) give a target of affiliation target_aff, now of
 * role target_role, the role `to` (§8.2-8.6, §9.6-9.7, the tables of §5.1.2)? */
bool muc_may_set_role(enum muc_role actor_role, enum muc_aff actor_aff, enum muc_aff target_aff,
                      enum muc_role target_role, enum muc_role to);
/* May a user of affiliation actor change one of affiliation `from` to `to` (§9, §10)? */
bool muc_may_set_aff(enum muc_aff actor, enum muc_aff from, enum muc_aff to);
/* Keeps a groupchat message for history, dropping the oldest past max_n messages or
 * max_bytes: 0 or -ENOMEM (or 0 when max_n is 0: nothing kept). */
int muc_hist_add(struct muc_room *r, const char *stanza, size_t len, time_t at, uint32_t max_n,
                 uint32_t max_bytes);
/* The first message to send a new occupant: of at most maxstanzas messages (-1: no
 * bound), maxchars characters, sent at or after `since` (0: any), the newest ones. */
const struct muc_hist *muc_hist_from(const struct muc_room *r, long maxstanzas, long maxchars,
                                     time_t since);

/* ---- muc.c (the module) and muc_iq.c: what they share ---- */
struct shard;
struct stanza;
struct xml_node;

struct muc_load;

struct muc_shard {
    struct muc_table rooms;
    struct muc_load *loads; /* rooms being looked up in the store (muc_store.c) */
    uint32_t nloads;
    /* While the stanzas that waited for a room the store does not have are handled
     * again: that room's JID, which they must not look up again. */
    const char *absent;
    size_t absent_len;
    uint64_t absent_key;
};

/* The rooms of s. */
struct muc_table *muc_rooms(struct shard *s);
/* The occupant's presence as the room sends it: from room/nick, the occupant's own
 * presence children, then <x muc#user> with its item (jid when with_jid, nick when not
 * NULL: 303) and the status codes (0-terminated, may be NULL); unavailable as asked. */
void muc_presence_build(struct buf *b, const struct muc_room *r, const struct muc_occupant *o,
                        bool unavailable, bool with_jid, const char *nick, const int *codes,
                        const char *extra);
/* The occupant's presence to everyone in the room (real JIDs to those allowed to see
 * them), with `codes` to all and self_codes added for the occupant itself. */
void muc_presence_broadcast(struct shard *s, struct muc_room *r, const struct muc_occupant *o,
                            bool unavailable, const char *nick, const int *codes,
                            const int *self_codes, const char *extra);
/* The stanza (without `to`, its `to` going at to_at) to every occupant. */
void muc_broadcast(struct shard *s, struct muc_room *r, const char *stanza, size_t len,
                   uint32_t to_at);
/* A stanza from the room (from room, or room/nick) to one JID. */
void muc_send(struct shard *s, const struct muc_room *r, const struct muc_occupant *to,
              const char *stanza, size_t len, uint32_t to_at);
/* Removes an occupant as the room does when it is kicked or banned: unavailable with the
 * codes to all (and 110 to it), then gone. */
void muc_occ_kick(struct shard *s, struct muc_room *r, struct muc_occupant *o, int code,
                  const char *reason);
/* Ends the room: unavailable with <destroy/> (extra, may be NULL) to every occupant. */
void muc_room_destroy(struct shard *s, struct muc_room *r, const char *extra);
/* The room's iq (disco, muc#admin, muc#owner). */
void muc_iq(struct shard *s, struct muc_room *r, const struct stanza *st);
/* The room's disco#info features. */
void muc_room_features(const struct muc_room *r, struct buf *b);

/* ---- muc_remote.c: occupants of other servers, grouped per server ---- */
struct muc_remote_group {
    const char *dom; /* inside an occupant's JID */
    size_t dlen;
    uint32_t count;
    struct buf list; /* uint16_t length + full JID, count of them */
};
struct muc_remotes {
    struct muc_remote_group *v;
    unsigned n, cap;
    unsigned lost; /* occupants left out for want of memory (logged when sent) */
};
/* Adds the occupant (a remote one) to its server's group. */
void muc_remotes_add(struct muc_remotes *r, const struct muc_occupant *o);
/* The stanza (without `to`, its `to` going at to_at) to every group, one
 * PROTO_REMOTE_FANOUT frame each; then the groups are forgotten (*r empty again).
 * Returns the frames written: to this node's s2s, or across the link to the node that
 * owns the server's streams (which counts it in remote_fanout_frames, not us). */
unsigned muc_remotes_send(struct shard *s, struct muc_remotes *r, const char *stanza, size_t len,
                      uint32_t to_at);

/* ---- muc_stanza.c: reading and rewriting what an occupant sends ---- */
/* MUC_CH_SID: a <stanza-id/> naming the room, which only the room may write (XEP-0359 §5);
 * MUC_CH_NOSTORE: a XEP-0334 hint not to archive. */
enum {
    MUC_CH_OTHER,
    MUC_CH_X_MUC,
    MUC_CH_X_USER,
    MUC_CH_SUBJECT,
    MUC_CH_BODY,
    MUC_CH_SID,
    MUC_CH_NOSTORE,
    MUC_CH_KINDS
};

/* A child of the stanza: its kind and bytes. */
struct muc_child {
    uint8_t kind;
    uint32_t off, len;
};

/* A stanza read: its start tag's cuts and its children's spans. */
struct muc_spans {
    uint32_t name_len;  /* of the element name */
    uint32_t cut[3][2]; /* from, to, type: offset and length in the start tag */
    struct muc_child *c;
    unsigned n;
    bool has[MUC_CH_KINDS];
};

/* One pass of the token parser over the stanza (which crossed a ring: well-formed and
 * self-contained), the children in s's arena. false when memory ran out. */
bool muc_spans_read(struct shard *s, const struct stanza *st, struct muc_spans *sp);
/* The start tag with `from` (room, or room/nick) and `type` (when given) in place of the
 * sender's, without `to`, then the children but those of the kinds in `skip` (bits of
 * MUC_CH_*); the caller ends it. */
void muc_restamp(struct buf *b, const struct stanza *st, const struct muc_spans *sp,
                 const char *from, size_t from_len, const char *nick, size_t nick_len,
                 const char *type, unsigned skip);
/* Whether a message error (st, type='error') says its sender is gone, so the room removes
 * it (muc.c): its condition is one of those that name the recipient or its server, not
 * the one stanza. Uses s's arena. */
bool muc_error_gone(struct shard *s, const struct stanza *st);

/* ---- muc_store.c: persistent rooms in the store, the service's room list ---- */
/* A stanza to a room this shard does not hold: true when it goes on (the store has
 * been asked and has no such room); false when it waits for the room's load (handled
 * again from the start once it is in) or was refused (resource-constraint). */
bool muc_store_ready(struct shard *s, const struct stanza *st);
/* The room's persistent state changed (its configuration, subject, affiliations). */
void muc_store_dirty(struct muc_room *r);
/* Writes a dirty room: its row when persistent and configured, else its row's delete. */
void muc_store_sync(struct shard *s, struct muc_room *r);
/* The room is destroyed: its row goes. */
void muc_store_forget(struct shard *s, struct muc_room *r);
/* Answers the service's disco#items (the public persistent rooms, muc.max_listed). */
void muc_store_list(struct shard *s, const struct stanza *st);
/* Drops the loads of a shard being freed. */
void muc_store_free(struct shard *s);

/* ---- muc_mam.c: the room's archive (router/mam.h's room API) ---- */
/* A groupchat message o sent, to archive, before it is sent: b holds it (without `to`)
 * and gets the room's stanza-id when it was archived. */
void muc_archive_hook(struct shard *s, const struct muc_room *r, const struct muc_occupant *o,
                      struct buf *b);
/* A MAM iq (NS_MAM <query/>) to the room: refused (forbidden) to those who may not read
 * the archive, else mam_query()'s. */
void muc_mam_iq(struct shard *s, struct muc_room *r, const struct stanza *st,
                const struct xml_node *iq, const struct xml_node *q);

#endif
