/*
 * certid: which XMPP server a certificate names. RFC 6120 §13.7.1.2 and §13.7.2.1 (with
 * RFC 7590) take RFC 6125's matching rules and add one identifier type; a server presents,
 * in its subjectAltName:
 *   DNS-ID    dNSName "example.com", or "*.example.com" (a wildcard only as the whole
 *             leftmost label, standing for exactly one label)
 *   SRV-ID    otherName id-on-dnsSRV (1.3.6.1.5.5.7.8.7, RFC 4985) "_xmpp-server.example.com"
 *   XmppAddr  otherName id-on-xmppAddr (1.3.6.1.5.5.7.8.5), a UTF8String JID "example.com"
 * and, when it has none of those, the subject's commonName is checked like a DNS-ID
 * (CN-ID, RFC 6125 §6.4.4: deprecated, still met on the XMPP network).
 *
 * The reference identifier is the domain the peer claims to be (the stream's 'from', or
 * the domain we connected to). Both sides are compared as A-labels, case-insensitively,
 * without a trailing dot: "Bücher.example." and "xn--bcher-kva.example" are one domain.
 *
 * What this module deliberately refuses:
 *   - partial wildcards ("f*o.example.com", "*oo.example.com", "xn--*"): never a match;
 *   - a wildcard with fewer than two labels after it ("*.com", "*"): no public suffix list
 *     is consulted, so "*.co.uk" would match "a.co.uk"; a CA that issues that has a bigger
 *     problem than this check can catch;
 *   - wildcards in SRV-IDs and XmppAddrs (neither RFC 4985 nor RFC 6120 defines them);
 *   - SRV-IDs of other services: only "_xmpp-server" names an XMPP server (XEP-0368 asks
 *     Direct TLS peers to be checked exactly as STARTTLS ones, so not "_xmpps-server");
 *   - an XmppAddr with a localpart or resource (it names an account, not a server);
 *   - IP-literal domains, which would need iPAddress names that XMPP does not use;
 *   - names with a NUL, a control character, invalid UTF-8 or non-ASCII in an IA5String.
 *
 * A name match says nothing about whether the certificate is genuine: that is the chain's
 * verification (tls_peer_verify() in tls.h). Pure functions on a DER certificate; any
 * thread.
 */
#ifndef STARLING_CERTID_H
#define STARLING_CERTID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum certid_kind {
    CERTID_DNS,  /* dNSName, as written (may begin with "*.") */
    CERTID_SRV,  /* SRVName of any service, "_service.domain" */
    CERTID_XMPP, /* XmppAddr, any JID (UTF-8) */
    CERTID_CN,   /* commonName, reported only when the certificate has none of the above */
};

/* Receives one identity; name is NUL-terminated, printable, valid UTF-8, and lives only
 * during the call. Returns 0 to go on, anything else to stop the walk there. */
typedef int (*certid_fn)(void *ud, enum certid_kind kind, const char *name);

/*
 * Calls fn for each identity the certificate presents, in the order of its subjectAltName
 * and then of its subject. Names that could never match (see the list above) are skipped;
 * the others come normalised: host names as lowercase A-labels without a trailing dot
 * (CN ones included), SRV-IDs with the service lowercased, XmppAddrs as written. Returns
 * the number of calls made, or -EINVAL when der is not one whole DER certificate.
 */
int certid_each(const uint8_t *der, size_t len, certid_fn fn, void *ud);

/* Does the certificate name the XMPP server `domain` (UTF-8 or A-labels)? False also for
 * a domain that is not a valid host name or a der that is not a certificate. */
bool certid_match(const uint8_t *der, size_t len, const char *domain);

/* "DNS", "SRV", "XmppAddr" or "CN", for logs. */
const char *certid_kind_name(enum certid_kind kind);

#endif
