/*
 * iq: iq stanzas the server answers itself, dispatched by the payload's namespace to
 * the modules (module.h); modules disco, ping and version. Shard thread only.
 *
 * Config: router.software_version (version), s2s.multicast_max (disco to servers).
 * Store: none.
 */
#ifndef STARLING_ROUTER_IQ_H
#define STARLING_ROUTER_IQ_H

#include <stdbool.h>
#include <stddef.h>

struct session;
struct shard;
struct stanza;
struct user;
struct xml_node;

/* An iq for the server, or for an account's bare JID (its own user, or another). */
void iq_to_server(struct shard *s, struct user *u, struct session *ss, const struct stanza *st);
void iq_to_account(struct shard *s, struct user *v, const struct stanza *st);
/* Is q the element name in namespace ns? */
bool iq_is(const struct xml_node *q, const char *name, const char *ns);
/* An iq_other hook (module.h) for what only the account itself may ask: forbidden. */
void iq_forbidden(struct shard *s, struct user *v, const struct stanza *st,
                  const struct xml_node *iq, const struct xml_node *q);
/* <iq type='result'/> with payload (may be NULL) to the sender of st. */
void iq_result(struct shard *s, const struct stanza *st, const char *id, const char *payload,
               size_t payload_len);

#endif
