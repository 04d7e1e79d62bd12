/*
 * offline: messages for a user with no available resource (XEP-0160, with XEP-0203
 * delays), and unanswered subscription requests shown again at initial presence.
 * Shard thread only.
 *
 * Module mod_offline: disco feature msgoffline; undeliverable stores the message;
 * receiving delivers what is stored; initial_presence shows the subscription requests;
 * user_state (whether messages wait).
 * Config: offline.* (max_messages, max_bytes, sender_share).
 * Store: store_offline_push, store_offline_fetch, store_offline_delete,
 * store_subreq_list (common/store/store_im.c); whether messages wait comes with the
 * user's state (store_roster_get, load.c).
 */
#ifndef STARLING_ROUTER_OFFLINE_H
#define STARLING_ROUTER_OFFLINE_H

struct session;
struct shard;
struct stanza;
struct user;

/* Stores a message for a user with no available session, or answers the sender. */
void offline_store(struct shard *s, struct user *u, const struct stanza *st);
/* Initial presence with a non-negative priority: the stored messages go out. */
void offline_deliver(struct shard *s, struct user *u, struct session *ss);
/* Initial presence: subscription requests still unanswered go out again. */
void offline_subreqs(struct shard *s, struct user *u, struct session *ss);

#endif
