/*
 * sub: presence subscriptions (RFC 6121 §3, Appendix A), the outbound step in the
 * subscriber's shard and the inbound step in the contact's (sub.c has the state table).
 * Shard thread only.
 *
 * Module mod_sub: outbound and inbound take subscription presence; last in the table
 * of those hooks (module.c), so every other module sees such presence before it.
 *
 * Config: roster.max_items, roster.max_bytes (an inbound request adds a hidden item).
 * Store: store_subreq_put, store_subreq_delete; the roster's through roster_changed().
 */
#ifndef STARLING_ROUTER_SUB_H
#define STARLING_ROUTER_SUB_H

struct shard;
struct stanza;
struct user;

void sub_outbound(struct shard *s, struct user *u, const struct stanza *st);
void sub_inbound(struct shard *s, struct user *v, const struct stanza *st);

#endif
