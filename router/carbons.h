/*
 * carbons: message carbons (XEP-0280): sent copies in the sender's shard, received
 * copies in the recipient's, enabled per session (struct session.carbons).
 * Shard thread only.
 *
 * Module mod_carbons: iq and disco feature urn:xmpp:carbons:2; outbound sends the sent
 * copies, delivered the received ones. Config: none. Store: none.
 */
#ifndef STARLING_ROUTER_CARBONS_H
#define STARLING_ROUTER_CARBONS_H

#include <stdbool.h>

struct session;
struct shard;
struct stanza;
struct user;
struct xml_node;

bool carbons_eligible(const struct stanza *st);
/* Copies of a message one of u's sessions sent, to u's other carbons sessions (if the
 * message is eligible: checked here). */
void carbons_sent(struct shard *s, struct user *u, const struct stanza *st);
/* Copies of a message delivered to some of v's sessions, to v's other carbons sessions
 * (if eligible: checked here). */
void carbons_received(struct shard *s, struct user *v, const struct stanza *st,
                      struct session *const *got, unsigned ngot);
void carbons_iq(struct shard *s, struct session *ss, const struct stanza *st, const char *id,
                const struct xml_node *q);

#endif
