/*
 * roster: a user's roster in memory, and jabber:iq:roster (RFC 6121 §2): get with
 * versioning, set and remove, pushes to the resources that asked for the roster. The
 * user's shard is the only writer (struct user.roster); the store keeps a copy.
 * Shard thread only.
 *
 * Module mod_roster: iq and disco feature jabber:iq:roster; user_state (the roster from
 * the load), user_free.
 * Config: roster.* (max_items, max_bytes, max_item_bytes).
 * Store: store_roster_put, store_roster_delete (common/store/store_im.c); the roster
 * comes with the user's state in load.c's store_roster_get.
 */
#ifndef STARLING_ROUTER_ROSTER_H
#define STARLING_ROUTER_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct shard;
struct stanza;
struct user;
struct xml_node;

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

#endif
