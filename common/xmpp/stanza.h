/*
 * stanza: what a stanza is, from its element name and its type attribute (RFC 6120 §8,
 * RFC 6121 §4.7.1, §5.2.2), in shm/proto.h's terms. Both front ends read stanzas with it.
 * Pure functions; any thread.
 */
#ifndef STARLING_STANZA_H
#define STARLING_STANZA_H

#include "common/xmpp/xml.h"

/* PROTO_MESSAGE, PROTO_PRESENCE or PROTO_IQ for the element's local name; -1 otherwise. */
int stanza_kind(struct xml_str name);

/*
 * The enum proto_*_type of a stanza of that kind with type attribute t (p NULL: absent),
 * or -1 when the type is not one the kind has: an unknown message type is "normal"
 * (RFC 6121 §5.2.2), an iq must have one.
 */
int stanza_type(int kind, struct xml_str t);

#endif
