/*
 * block: blocking (XEP-0191): a user's blocklist in memory (struct user.block, a hash
 * set), urn:xmpp:blocking, and the checks on a stanza's two steps. Shard thread only.
 *
 * Module mod_blocking: iq and disco feature urn:xmpp:blocking; outbound and inbound
 * stop what the sender's or the recipient's list blocks (first in the table, so no other
 * module sees it); user_state (the list from the load), user_free. presence.c, node.c
 * and offline.c read the list too (block_blocks(), block_resources()): who gets a
 * presence broadcast or a stored message.
 * Config: blocking.max_items.
 * Store: store_block_add, store_block_remove, store_block_clear (common/store/
 * store_im.c); the list comes with the user's state (store_roster_get, load.c).
 */
#ifndef STARLING_ROUTER_BLOCK_H
#define STARLING_ROUTER_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct session;
struct shard;
struct stanza;
struct user;
struct xml_node;

/* A blocklist (XEP-0191): a set of JIDs, chained hash table (block.c). */
struct block_item;
struct blocklist {
    struct block_item **buckets;
    size_t mask, n;
    size_t nres; /* entries naming a resource (a full JID, or domain/resource) */
};

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

#endif
