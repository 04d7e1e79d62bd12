/*
 * mam: the message archive (XEP-0313 urn:xmpp:mam:2, paged with XEP-0059 RSM), with
 * XEP-0359 stanza-ids. A router module (module.h): mam.c archives and keeps the
 * preferences, mam_query.c answers queries.
 *
 * What is archived. A message of type chat or normal with a <body/> (XEP-0313 §5.1.1
 * asks for those; as Prosody and ejabberd, chat states, receipts and markers alone are
 * not: they are stale by the time anyone reads an archive), unless marked <no-store/>
 * or <no-permanent-store/> (XEP-0334), in the archives of both its users: the
 * recipient's copy at the recipient's shard (the inbound hook), which also gets the
 * <stanza-id by='recipient' id='...'/> the delivered and the offline-stored copies
 * carry (any stanza-id the sender put there with by= the recipient is removed first,
 * XEP-0359 §5), and the sender's copy at the sender's shard (the outbound hook). A
 * message to oneself is archived once, as received. Carbon copies are made after the
 * hooks and never archived again. Groupchat is not a user's: rooms archive it through
 * the room API below (router/muc.h, muc_mam.c), in archives owned by a room's bare JID
 * (a user's is owned by its localpart, which has no '@': the two never meet). Preferences (XEP-0313 §6.1, per user, in the store; mam.default
 * for a user who set none) decide by the peer's bare JID; while a user's preferences
 * are on their way from the store the rows wait in the user's state, and the stanza-id
 * is added (or not) by mam.default.
 *
 * Ids. An archive row's id, the stanza-id, is the time it was archived in microseconds
 * since the Unix epoch, one more than the shard's previous id when the clock has not
 * moved on (so unique per shard, hence per archive: an archive is only ever written by
 * its owner's home shard), and above the highest id in the store at the router's start
 * (a clock set back across a restart does not reuse ids). In a cluster a user's home
 * may move to another node: ids stay in order as long as the nodes' clocks agree to
 * better than the time between two of the user's messages (NTP).
 *
 * Writes off the routing path. A row is copied into the shard's queue at once; the
 * shard has at most one append in flight, of up to mam.batch rows in one transaction,
 * and sends the rows that gathered meanwhile when it completes. So routing never
 * waits for the store, and the busier the shard the larger its transactions. A query
 * sends what is queued first, and the store runs one client's requests in order, so a
 * query sees every message archived before it. Past mam.max_queue rows, messages are
 * still delivered but not archived, each counted and logged (rate-limited).
 *
 * Threads: everything runs on the shard thread, but mam_router_start() and
 * mam_router_tick(), which router/main.c calls on its main thread.
 */
#ifndef STARLING_ROUTER_MAM_H
#define STARLING_ROUTER_MAM_H

#include "common/core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shard;
struct stanza;
struct store;
struct config;
struct xml_node;

#define NS_MAM "urn:xmpp:mam:2"
#define NS_SID "urn:xmpp:sid:0"
#define NS_RSM "http://jabber.org/protocol/rsm"

/* Bytes of an id as text, NUL included. */
#define MAM_ID_LEN 21

/* Main thread, before the shards start: the highest id in the store, which every
 * shard's ids then exceed. 0 or -errno (the router does not start). */
int mam_router_start(struct store *st);
/* Main thread, about once a second: the retention sweep (mam.retention), a chunk at a
 * time, every mam.sweep_interval. */
void mam_router_tick(struct store *st, const struct config *cfg);

/* ---- the room API (for MUC, on the room's home shard) ---- */

/* Archives a stanza in the archive of `owner` (NUL-terminated: a room's bare JID, or
 * a user's localpart) with peer `with` (with_len bytes, of which with_bare_len are its
 * bare JID; for a room, the occupant's room@service/nick). Returns the row's id, to
 * put in the stanza-id the room adds (mam_stanza_id()) before it sends the message
 * out, or 0 when nothing was archived (mam.enabled false, the queue full). */
uint64_t mam_archive(struct shard *s, const char *owner, const char *with, size_t with_len,
                     size_t with_bare_len, const char *stanza, size_t len);

/* Appends <stanza-id xmlns='urn:xmpp:sid:0' by='by' id='id'/> to b. */
void mam_stanza_id(struct buf *b, const char *by, size_t by_len, uint64_t id);

/* The stanza (a <message/>) with that element added as its last child, into out. */
void mam_with_stanza_id(struct buf *out, const char *raw, size_t len, const char *by,
                        size_t by_len, uint64_t id);

struct xml_parser;
/* During a token parser's XML_EV_START of a <stanza-id/>: does its `by` name `by` (a
 * normalised bare JID; the attribute is compared normalised, so by='Room@Conference.X'
 * names room@conference.x)? A stanza-id a sender wrote naming the archive is removed
 * before the archive adds its own (XEP-0359 §5). */
bool mam_sid_by(struct xml_parser *p, const char *raw, const char *by, size_t by_len);

/* Answers an iq in NS_MAM (a query, or the form's request) sent to the archive of
 * `owner`, whose JID is `jid` (the results' `from`): st is the iq, iq and q its tree
 * and payload (module.h's iq hook arguments). The room module decides first who may
 * ask; results go to st's sender, then the iq's result (or an error). */
void mam_query(struct shard *s, const char *owner, const char *jid, size_t jid_len,
               const struct stanza *st, const struct xml_node *iq, const struct xml_node *q);

/* ---- between mam.c and mam_query.c ---- */

struct user;
struct session;
struct store_mam_prefs;
/* The module's iq hook (mam_query.c): a user's own archive and preferences. */
void mam_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
            const struct xml_node *iq, const struct xml_node *q);
/* The user's preferences as they apply now (*dflt filled with mam.default when it set
 * none). */
const struct store_mam_prefs *mam_prefs_of(const struct shard *s, struct user *u,
                                           struct store_mam_prefs *dflt);
/* While u's preferences are on their way (rows wait for them), go(s, arg) is kept and
 * called once they came and the rows are queued: true. Else false (call it now). */
bool mam_prefs_wait(struct user *u, void (*go)(struct shard *s, void *arg), void *arg);
/* A copy of p (stored set) in one block, which free(out->jids) releases; false when
 * memory is short. */
bool mam_prefs_copy(const struct store_mam_prefs *p, struct store_mam_prefs *out);
/* The preferences just stored, a mam_prefs_copy() the user takes. */
void mam_prefs_replace(struct user *u, const struct store_mam_prefs *p);

/* Sends every queued row to the store now (a query must see them). */
void mam_flush(struct shard *s);
/* The id as decimal text into out (MAM_ID_LEN bytes); its length. */
size_t mam_id_text(uint64_t id, char *out);
/* Reads an id written by mam_id_text(): 0 when s is not one. */
uint64_t mam_id_parse(const char *s);
/* XEP-0082 date-time to microseconds since the Unix epoch (-1: not one), and back
 * (out: 32 bytes at least). */
int64_t mam_time_parse(const char *s);
void mam_time_text(uint64_t us, char *out);

extern const struct module mod_mam;

#endif
