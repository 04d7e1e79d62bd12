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
 *   outbound       a stanza leaves its sender's shard (route_outbound(), after the
 *                  sender's blocklist): return true when the module took it (answered,
 *                  forwarded or dropped it itself); false lets it go on.
 *   home           a stanza arrives at the home shard of its `to` (route_inbound()),
 *                  before the recipient is looked up as an account: a module serving
 *                  the recipient's domain (the chat service, muc.h) takes it (true).
 *   inbound        a stanza arrives at its recipient's shard, the recipient's state
 *                  loaded, the account existing and the sender not blocked: as above.
 *                  A module that must change the stanza (add an element) may point
 *                  st->raw at a new copy in the shard's arena; later steps use it.
 *   iq             a request (get or set) in one of the module's namespaces: to the
 *                  server or to the sender's own bare JID (iq_own; u and ss are NULL
 *                  when a remote server asks, and then only modules with iq_remote
 *                  see it), or to another account's bare JID (iq_other; NULL: the
 *                  request is answered forbidden when the module serves it for the
 *                  account itself, else service-unavailable).
 *   user_loaded    a user's state came from the store (it is USER_READY).
 *   session_end    a session ends (its goodbye presence already sent).
 *   user_free      a user leaves the shard's table: free the module's slot.
 *   disco          the features the module adds to disco#info of the server (remote:
 *                  asked by another server) or of an account, and the items it adds to
 *                  the server's disco#items; disco#info is made of these alone, so it
 *                  lists exactly what the modules present serve.
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
    void (*user_loaded)(struct shard *s, struct user *u);
    void (*session_end)(struct shard *s, struct user *u, struct session *ss);
    void (*user_free)(struct shard *s, struct user *u);
    /* Appends <feature var='...'/> elements (and forms) to b. */
    void (*disco_server)(const struct shard *s, bool remote, struct buf *b);
    void (*disco_account)(const struct shard *s, struct buf *b);
    /* Appends <item jid='...'/> elements to b. */
    void (*disco_items)(const struct shard *s, struct buf *b);
    /* A shard starts (0 or -errno: the router does not start) and stops. */
    int (*shard_init)(struct shard *s);
    void (*shard_free)(struct shard *s);
};

/* The modules, in the order their hooks run; NULL-terminated. */
extern const struct module *const mod_table[];

/* The module serving an iq payload's namespace; NULL: none (service-unavailable). */
const struct module *mod_for_ns(const char *ns);

/* Each runs the hook of every module that has it, in table order; the bool ones stop
 * at the first that returns true and return true. */
bool mod_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st);
bool mod_home(struct shard *s, const struct stanza *st);
bool mod_inbound(struct shard *s, struct user *v, struct stanza *st);
void mod_user_loaded(struct shard *s, struct user *u);
void mod_session_end(struct shard *s, struct user *u, struct session *ss);
void mod_user_free(struct shard *s, struct user *u);
void mod_disco_server(const struct shard *s, bool remote, struct buf *b);
void mod_disco_account(const struct shard *s, struct buf *b);
void mod_disco_items(const struct shard *s, struct buf *b);
int mod_shard_init(struct shard *s);
void mod_shard_free(struct shard *s);

/* The modules of the core features (their files say what each serves). */
extern const struct module mod_disco, mod_ping, mod_version, mod_roster, mod_blocking,
    mod_carbons, mod_offline, mod_muc;

#endif
