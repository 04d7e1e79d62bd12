/*
 * bidi: bidirectional server-to-server streams (XEP-0288): one TCP connection carries
 * stanzas both ways, instead of one connection per direction.
 *
 * The exchange is two elements and no answer:
 *   the receiving server offers <bidi xmlns='urn:xmpp:features:bidi'/> among its stream
 *       features (bidi_feature()), before and after TLS;
 *   the initiating server that wants it sends <bidi xmlns='urn:xmpp:bidi'/>
 *       (bidi_request()) before SASL or dialback, and after STARTTLS if it uses TLS.
 * Both sides then call authz_set_bidi() on the stream's authz: the initiating server as
 * soon as it has sent the request, the receiving server when bidi_recv() accepts it. What
 * the stream may carry in each direction from then on is authz.h's business: each
 * authenticated pair allows its inverse too (SASL: from the stream's 'to' to its 'from';
 * dialback: the inverse of each valid pair), and dialback may run either way. The restart
 * after SASL success keeps bidi, as it keeps the pair SASL gave (the XEP's first example):
 * the caller carries both over to the fresh authz. STARTTLS's restart comes before the
 * request, so nothing is lost there.
 *
 * Prosody offers the feature only on unauthenticated inbound streams and only when
 * encrypted (or when it does not require encryption), and takes the request only before
 * authentication; ejabberd offers it before and after authentication and takes the request
 * whenever it comes. We offer it where Prosody does and accept it like ejabberd, since
 * accepting late only makes inverses usable that were authenticated anyway.
 *
 * No state of its own, no I/O; any thread.
 */
#ifndef STARLING_S2S_BIDI_H
#define STARLING_S2S_BIDI_H

#include "common/core/buf.h"
#include "common/xmpp/xml_tree.h"
#include "s2s/authz.h"

#include <stdbool.h>

#define BIDI_NS         "urn:xmpp:bidi"
#define BIDI_NS_FEATURE "urn:xmpp:features:bidi"

/* Append the stream feature / the request. 0 or -ENOMEM. */
int bidi_feature(struct buf *out);
int bidi_request(struct buf *out);

/* Whether a <stream:features/> element offers bidi. */
bool bidi_offered(const struct xml_node *features);

/*
 * A first-level element in urn:xmpp:bidi arrived on the stream whose pairs are in a. On an
 * inbound stream a well-formed <bidi/> (no attributes that matter, no child elements, no
 * text but whitespace) turns bidi on and gives NULL; otherwise the stream error condition to
 * close with: unsupported-stanza-type on an outbound stream (only the initiating server
 * asks) or for another element name, bad-format for content inside it. A repeated request
 * is accepted again.
 */
const char *bidi_recv(struct authz *a, const struct xml_node *n);

#endif
