/*
 * session: a shard's users and their sessions, in a hash table keyed by the bare
 * JID's hash (the types are router.h's). Shard thread only.
 */
#ifndef STARLING_ROUTER_SESSION_H
#define STARLING_ROUTER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct directed;
struct session;
struct user;
struct user_table;

void users_init(struct user_table *t);
void users_free(struct user_table *t);
struct user *user_find(struct user_table *t, uint64_t key, const char *bare, size_t len);
struct user *user_get(struct user_table *t, uint64_t key, const char *bare, size_t len);
/* Frees the user when nothing holds it: no session, no queued frame, no call due. */
void user_release(struct user_table *t, struct user *u);
/* RFC 7622 §3.3.1: a localpart has at most 1023 bytes. */
#define USER_LOCAL_MAX 1024
/* u's localpart as a C string: the store's name of the account. */
void user_localpart(const struct user *u, char *out, size_t cap);
struct session *session_find(struct user *u, const char *res, size_t len);
struct session *session_by_conn(struct user *u, uint64_t conn);
struct session *session_add(struct user *u, uint64_t conn, const char *jid, size_t len);
void session_remove(struct user *u, struct session *s);
int session_set_presence(struct session *s, const char *p, size_t len, int8_t priority);
/* A re-registered session gets back what out_session_state() told its front end, up to
 * max_directed JIDs. */
void session_restore(struct session *ss, uint8_t flags, const char *list, uint32_t len,
                     uint32_t max_directed);
/* Adds jid to ss's directed-presence list (false when memory is short); forgets the
 * entry *pp points to. Both keep the counts. */
bool session_directed_add(struct session *ss, const char *jid, size_t len);
void session_directed_drop(struct session *ss, struct directed **pp);

#endif
