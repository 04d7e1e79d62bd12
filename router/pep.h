/*
 * pep: a user's own data that the router serves at the user's bare JID, in memory while
 * the user is (struct pep_user, in the user's MOD_SLOT_PEP), and in the store's PEP rows
 * (store.h, store_pep_*):
 *   pep.c       the personal eventing service (XEP-0163): a pubsub service (XEP-0060) at
 *               the bare JID, its nodes created on first publish, configured through
 *               publish-options or the owner's form, read by others as the node's access
 *               model allows; disco of the account lists its nodes
 *   pep_caps.c  who gets notifications: entity capabilities (XEP-0115) of the user's own
 *               resources and of the contacts' resources that sent it presence, a cache
 *               per shard of verified 'ver's and their features, notifications and last
 *               items to the resources whose features include NODE+notify
 *   pep_load.c  the user's rows from the store, loaded when first needed (a request, or
 *               a session's available presence); frames that need them wait in order
 *   private.c   private XML storage (XEP-0049)
 *   vcard.c     vCard-temp (XEP-0054)
 * Everything runs on the user's shard thread.
 *
 * Notifications cross shards as messages the router makes (ROUTE_GENERATED): one
 * headline per local contact allowed by the node's access model, from the owner's bare
 * JID to the contact's; the contact's shard, which knows the capabilities of its own
 * resources, hands it to those with NODE+notify (pep_caps.c's inbound hook). A contact
 * on another server gets one per resource of its that told us +notify, addressed to
 * the resource.
 */
#ifndef STARLING_ROUTER_PEP_H
#define STARLING_ROUTER_PEP_H

#include "common/core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shard;
struct user;
struct session;
struct stanza;
struct xml_node;

#define NS_PUBSUB        "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER  "http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT  "http://jabber.org/protocol/pubsub#event"
#define NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"

/* pubsub#access_model (XEP-0060 §4.5); roster is "anyone in the roster": groups are not
 * looked at. */
enum pep_access { PEP_OPEN, PEP_PRESENCE, PEP_ROSTER, PEP_WHITELIST };

struct pep_item {
    struct pep_item *next; /* newer */
    char *id;
    char *xml; /* the payload element, as written */
    uint32_t len;
};

struct pep_node {
    struct pep_node *next;
    char *name;
    uint8_t access;     /* enum pep_access */
    bool persist;       /* pubsub#persist_items: items go to the store */
    uint32_t max_items; /* 1..pep.max_items */
    struct pep_item *oldest, *newest;
    uint32_t nitems;
};

/* A private XML element (XEP-0049), by its namespace. */
struct pep_private {
    struct pep_private *next;
    char *ns;
    char *xml;
    uint32_t len;
};

/* One of the user's own resources or of a contact's, with the capabilities its last
 * available presence announced ('ver' of XEP-0115; "" when none). */
struct pep_res {
    struct pep_res *next;
    uint64_t conn; /* own sessions: their connection; contacts: 0 */
    char *jid;     /* full JID */
    char ver[64];
};

/* A frame waiting for the user's rows (pep_load.c). */
struct pep_wait;

enum pep_state { PEP_COLD, PEP_LOADING, PEP_READY };

struct pep_user {
    uint8_t state; /* enum pep_state */
    bool failed;   /* the load failed: served empty, nothing written */
    struct pep_node *nodes;
    uint32_t nnodes;
    uint64_t bytes; /* of every item's payload: pep.max_bytes */
    struct pep_private *priv;
    uint32_t npriv;
    char *vcard;
    uint32_t vcard_len;
    struct pep_res *own;      /* the user's available resources */
    struct pep_res *contacts; /* contacts' available resources that told us their caps */
    uint32_t ncontacts;
    struct pep_wait *wait_head, *wait_tail;
};

/* ---- pep_load.c ---- */
/* The user's PEP state, made (cold) when missing; NULL when memory is short. */
struct pep_user *pep_of(struct user *u);
/* Whether u's rows are here. If not, the frame of st (an iq in the sender's step when
 * own, else in the recipient's) waits for them, the load starts, and false. */
bool pep_ready(struct shard *s, struct user *u, const struct stanza *st, bool own);
/* Starts loading u's rows if they are not here (a session became available). */
void pep_load(struct shard *s, struct user *u);
/* Writes a row (store_pep_put), or deletes one (data NULL; with id NULL a whole node);
 * failures are logged. Nothing when the load had failed (what is in memory is not all). */
void pep_store(struct shard *s, struct user *u, uint8_t kind, const char *node, const char *id,
               const char *data, size_t len, size_t keep);
void pep_user_free(struct shard *s, struct user *u);

/* ---- pep.c ---- */
struct pep_node *pep_node_find(struct pep_user *p, const char *name);
/* Whether jid (bare JID: from_bare_len bytes) may read the node's items. */
bool pep_allowed(struct user *u, const struct pep_node *n, const char *jid, size_t bare_len);
/* Applies a node's configuration row (as pep.c writes it). */
void pep_node_config_parse(struct pep_node *n, const char *s, size_t len, uint32_t max_items);
/* Adds an item to the node (a load, or a publish): replaces one of the same id, drops
 * the oldest past max_items. Takes id and xml (malloc'd). */
void pep_node_put(struct pep_user *p, struct pep_node *n, char *id, char *xml, uint32_t len);
struct pep_node *pep_node_new(struct pep_user *p, const char *name);
/* <item id='...'>payload</item>, appended to b. */
void pep_item_xml(struct buf *b, const struct pep_item *it);

/* ---- pep_caps.c ---- */
/* A publish or a retraction: the event (inner: <item id>payload</item> or <retract
 * id/>) to u's resources and contacts that want the node's notifications. */
void pep_notify(struct shard *s, struct user *u, const struct pep_node *n, const char *inner,
                size_t len);
/* The rows are here: the last items to every resource known to want them. */
void pep_caps_loaded(struct shard *s, struct user *u);

#endif
