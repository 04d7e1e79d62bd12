/*
 * module: the router's features, each a module behind one table of hooks. The core
 * (route.c, load.c, session.c, iq.c) knows a stanza's way through a shard; a feature
 * (the roster, blocking, carbons, offline storage, ping, ...) is a struct module that
 * says which points of that way it wants to see. The table is fixed at build time
 * (module.c lists the modules in the order their hooks run); each module has its own
 * file, its own header when others call it, its own config group, its own part of the
 * store, and its own state, hung off a user or a shard in the slot module.h gives it.
 *
 * Points of the way, all on the shard thread, in the order a stanza meets them:
 *   outbound       a stanza leaves its sender's shard (route_outbound(); not those to
 *                  the server itself): return true when the module took it (answered,
 *                  forwarded or dropped it itself); false lets it go on. Blocking is
 *                  first in the table: a later module sees only what passed the
 *                  sender's blocklist. What no module takes, the core routes: presence
 *                  as directed presence (presence.c), the rest to its recipient.
 *   home           a stanza arrives at the home shard of its `to` (route_inbound()),
 *                  before the recipient is looked up as an account: a module serving
 *                  the recipient's domain (the chat service, muc.h) takes it (true).
 *   inbound        a stanza arrives at its recipient's shard, the recipient's state
 *                  loaded and the account existing: as above (blocking first: later
 *                  modules see only what passed the recipient's blocklist). A module
 *                  that must change the stanza (add an element) may point st->raw at a
 *                  new copy in the shard's arena; later steps use it. What no module
 *                  takes, the core delivers (presence to the available resources,
 *                  messages by priority, iq to a resource or to iq_other below).
 *   delivered      a message reached sessions got[0..ngot) of v (inbound step).
 *   undeliverable  a chat or normal message for v found no session that takes it:
 *                  true when the module took it (stored it, or answered the sender);
 *                  when none does, the sender gets service-unavailable (RFC 6121
 *                  §8.5.2.1.1).
 *   iq             a request (get or set) in one of the module's namespaces: to the
 *                  server or to the sender's own bare JID (iq_own; u and ss are NULL
 *                  when a remote server asks, and then only modules with iq_remote
 *                  see it), or to another account's bare JID (iq_other; NULL: the
 *                  request is answered forbidden when the module serves it for the
 *                  account itself, else service-unavailable).
 *   iq_response    a result or error for the server or an account (u: whose; NULL when
 *                  for the server and not from one of its users' sessions): answers to
 *                  requests a module sent.
 *   presence_own   a session's broadcast presence (available or unavailable), after it
 *                  went out.
 *   presence_in    available or unavailable presence from a full JID delivered to v's
 *                  sessions (a contact's broadcast, a directed presence, a remote one).
 * Points of a user's and a session's life:
 *   user_state     the store's answer to the user's load (store_roster_get: roster,
 *                  blocklist, whether offline messages wait): res 0 and r, or -ENOENT
 *                  (no such account) or another -errno (the store failed: the user is
 *                  served from an empty state) and r NULL. Then user_loaded.
 *   user_loaded    a user's state came from the store (it is USER_READY), before the
 *                  frames that waited for it.
 *   initial_presence  ss sent its initial presence (RFC 6121 §4.2), after its broadcast,
 *                  its probes and its siblings' presence (after receiving, when both).
 *   receiving      ss now takes messages to the bare JID (available, priority >= 0)
 *                  where it did not: its initial presence, a priority raised from
 *                  negative, or its return with such a presence after a router restart
 *                  (re-registration; also when the user's state arrives later).
 *   session_end    a session ends (its goodbye presence already sent).
 *   user_free      a user leaves the shard's table: free the module's slot.
 *   disco          the features the module adds to disco#info of the server (remote:
 *                  asked by another server) or of an account, and the items it adds to
 *                  the server's disco#items; disco#info is made of these alone, so it
 *                  lists exactly what the modules present serve. disco_account_items
 *                  adds the items of account v that st's sender may see (own: v's
 *                  own request); false when st waits for the module's state (the
 *                  request comes again, the module took it).
 * Any hook may be NULL. A module's iq handler answers every request it is given
 * (result or error, RFC 6120 §8.2.3).
 */
#ifndef STARLING_ROUTER_MODULE_H
#define STARLING_ROUTER_MODULE_H

#include "common/core/buf.h"

#include <stdbool.h>

struct shard;
struct user;
struct session;
struct stanza;
struct store_roster;
struct xml_node;

/* The slots of module state in struct user and struct shard (mod[]), one per module
 * that keeps state; modules without state have none. */
enum mod_slot {
    MOD_SLOT_SM,
    MOD_SLOT_MUC,
    MOD_SLOT_MAM,
    MOD_SLOT_PEP,
    MOD_SLOTS,
};

struct module {
    const char *name;
    /* Namespaces of the iq payloads it serves; NULL-terminated, or NULL. */
    const char *const *iq_ns;
    bool iq_remote; /* serves iq_own to remote servers too */
    void (*iq_own)(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
                   const struct xml_node *iq, const struct xml_node *q);
    void (*iq_other)(struct shard *s, struct user *v, const struct stanza *st,
                     const struct xml_node *iq, const struct xml_node *q);
    bool (*outbound)(struct shard *s, struct user *u, struct session *ss, struct stanza *st);
    bool (*home)(struct shard *s, const struct stanza *st);
    bool (*inbound)(struct shard *s, struct user *v, struct stanza *st);
    void (*iq_response)(struct shard *s, struct user *u, const struct stanza *st);
    void (*presence_own)(struct shard *s, struct user *u, struct session *ss,
                         const struct stanza *st);
    void (*presence_in)(struct shard *s, struct user *v, const char *from, size_t from_len,
                        const char *stanza, size_t len);
    void (*user_loaded)(struct shard *s, struct user *u);
    void (*session_end)(struct shard *s, struct user *u, struct session *ss);
    void (*user_free)(struct shard *s, struct user *u);
    /* Appends <feature var='...'/> elements (and forms) to b. */
    void (*disco_server)(const struct shard *s, bool remote, struct buf *b);
    void (*disco_account)(const struct shard *s, struct buf *b);
    /* Appends <item jid='...'/> elements to b. */
    void (*disco_items)(const struct shard *s, struct buf *b);
    bool (*disco_account_items)(struct shard *s, struct user *v, const struct stanza *st,
                                bool own, struct buf *b);
    /* A shard starts (0 or -errno: the router does not start) and stops. */
    int (*shard_init)(struct shard *s);
    void (*shard_free)(struct shard *s);
    /* Added as the core features moved behind the table (see above for each). */
    void (*user_state)(struct shard *s, struct user *u, int res, const struct store_roster *r);
    void (*delivered)(struct shard *s, struct user *v, const struct stanza *st,
                      struct session *const *got, unsigned ngot);
    bool (*undeliverable)(struct shard *s, struct user *v, const struct stanza *st);
    void (*initial_presence)(struct shard *s, struct user *u, struct session *ss);
    void (*receiving)(struct shard *s, struct user *u, struct session *ss);
};

/* The modules, in the order their hooks run; NULL-terminated. */
extern const struct module *const mod_table[];

/* The table the calls below run: mod_table. A unit test may point it at a table of its
 * own while no shard runs (tests/unit/router/module.c). */
extern const struct module *const *mod_active;

/* The module serving an iq payload's namespace; NULL: none (service-unavailable). */
const struct module *mod_for_ns(const char *ns);

/* Each runs the hook of every module that has it, in table order; the bool ones stop
 * at the first that returns true and return true. */
bool mod_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st);
bool mod_home(struct shard *s, const struct stanza *st);
bool mod_inbound(struct shard *s, struct user *v, struct stanza *st);
void mod_iq_response(struct shard *s, struct user *u, const struct stanza *st);
void mod_presence_own(struct shard *s, struct user *u, struct session *ss,
                      const struct stanza *st);
void mod_presence_in(struct shard *s, struct user *v, const char *from, size_t from_len,
                     const char *stanza, size_t len);
void mod_user_loaded(struct shard *s, struct user *u);
void mod_session_end(struct shard *s, struct user *u, struct session *ss);
void mod_user_free(struct shard *s, struct user *u);
void mod_disco_server(const struct shard *s, bool remote, struct buf *b);
void mod_disco_account(const struct shard *s, struct buf *b);
void mod_disco_items(const struct shard *s, struct buf *b);
bool mod_disco_account_items(struct shard *s, struct user *v, const struct stanza *st, bool own,
                             struct buf *b);
int mod_shard_init(struct shard *s);
void mod_shard_free(struct shard *s);
void mod_user_state(struct shard *s, struct user *u, int res, const struct store_roster *r);
void mod_delivered(struct shard *s, struct user *v, const struct stanza *st,
                   struct session *const *got, unsigned ngot);
bool mod_undeliverable(struct shard *s, struct user *v, const struct stanza *st);
void mod_initial_presence(struct shard *s, struct user *u, struct session *ss);
void mod_receiving(struct shard *s, struct user *u, struct session *ss);

/* The modules of the core features (their files say what each serves). */
extern const struct module mod_disco, mod_ping, mod_version, mod_roster, mod_blocking,
    mod_carbons, mod_offline, mod_sub, mod_muc, mod_pep, mod_pep_caps, mod_private, mod_vcard;

#endif
