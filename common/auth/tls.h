/*
 * tls: TLS 1.2 and 1.3 (BoringSSL) for c2s (server side), s2s (both sides) and tests
 * (client side), over memory only. The module never touches a socket: the caller feeds it
 * the ciphertext it received and reads plaintext back; plaintext it writes comes out as
 * ciphertext through a sink callback that appends to the connection's output queue.
 *
 * Contexts. A struct tls_ctx holds what every connection of one listener (or one outgoing
 * role) shares: certificate, key, trust roots, ALPN list, versions, ticket keys. It is
 * created at start-up or reload, is read-only afterwards, may be used by every thread of a
 * process, and must outlive the connections made from it.
 *
 * Connections. A struct tls belongs to one thread (the one that owns the socket). Bytes
 * move like this:
 *   tls_feed()   borrows the caller's ciphertext; nothing is copied yet. The bytes must stay
 *                valid until tls_read() or tls_handshake() returns -EAGAIN (everything was
 *                consumed), an error, or until tls_keep() copied what is left.
 *   tls_read()   drives the handshake and returns plaintext; handshake messages, alerts and
 *                key updates that must be answered go to the sink as they arise.
 *   tls_write()  encrypts and hands every record to the sink before it returns.
 * The sink must take all the bytes it is given (append them to the output queue) or return
 * a negative errno, which is fatal for the connection: TLS cannot take a record back.
 *
 * Memory. Between records an idle connection holds no buffer: BoringSSL frees its read and
 * write buffers as soon as they are empty, configuration used only by the handshake is shed
 * when it completes (SSL_set_shed_handshake_config) and the module stashes input only when
 * the caller asks it to. What remains is the SSL object, the record keys and the session.
 * tests/unit/common/auth/tls.c measures it (mem_test) and fails above TLS_IDLE_BUDGET bytes.
 *
 * Peer certificates (s2s). A client context, and a server context with request_cert, check
 * the peer's chain against the context's trust roots during the handshake, but a chain that
 * does not verify never fails the handshake: s2s falls back to dialback for such a peer
 * (unless s2s.secure_auth), so the verdict is only recorded, for tls_peer_verify(). Which
 * domain the certificate names is a separate question (certid.h), asked once the stream
 * says which domain the peer claims; tls_peer_verified() asks both. A connection that got a
 * peer certificate keeps the peer's chain (its session holds it) for as long as it lives:
 * about 3.5 KiB per P-256 certificate (the DER and BoringSSL's parsed copy), so an idle s2s
 * connection with a chain of two holds about 10 KiB, either end (s2s_mem_test prints it).
 *
 * Channel binding (for SCRAM-*-PLUS, see sasl.h): tls_cb_exporter() (RFC 9266) and
 * tls_cb_server_end_point() (RFC 5929 §4.1) give the same bytes on both sides of a
 * connection.
 *
 * Errors: functions returning int give 0 (or a count) on success and -errno on failure;
 * -EPROTO is a TLS failure (the alert, if any, already went to the sink).
 */
#ifndef STARLING_TLS_H
#define STARLING_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLS_V12 0x0303 /* protocol versions as on the wire, for tls_opts and tls_version() */
#define TLS_V13 0x0304

#define TLS_EXPORTER_LEN  32 /* RFC 9266: tls-exporter channel binding length */
#define TLS_END_POINT_MAX 64 /* largest tls-server-end-point value (SHA-512) */
/* Heap bytes an idle server connection may hold: TLS's share of the 6 KiB a whole idle
 * connection may cost. About 2.8 KiB are measured; the margin is kept small so that losing
 * an optimisation (shedding the handshake configuration saves 0.7 KiB) fails the test. */
#define TLS_IDLE_BUDGET 3072

/* The trust roots of the public network as Debian ships them (package ca-certificates). */
#define TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

struct tls_ctx;
struct tls;

/*
 * Takes ciphertext for the peer: must append all n bytes and return 0, or return a negative
 * errno. Called from inside tls_read, tls_handshake, tls_write and tls_close_notify.
 */
typedef int (*tls_sink_fn)(void *ud, const void *p, size_t n);

/* What a context is made of. Zero-initialise and fill in what applies. */
struct tls_opts {
    const char *cert_file; /* PEM chain, leaf first. Server: required. Client: optional (s2s) */
    const char *key_file;  /* PEM private key of the leaf; with cert_file */
    const char *ca_file;   /* PEM trust roots for the peer's certificate (TLS_SYSTEM_CA_FILE
                              for the public network); NULL or "": none */
    const char *ca_dir;    /* and/or a directory of them by subject hash (`openssl rehash`),
                              read as verification needs them; NULL or "": none */
    const char *alpn;      /* comma-separated ALPN protocols, e.g. "xmpp-client"; NULL: none.
                              Server: a client that offers ALPN without one of them is refused
                              (no_application_protocol); one that offers none is accepted.
                              Client: offered in this order. */
    uint16_t min_version;  /* TLS_V12 or TLS_V13; 0: TLS_V12 */
    uint16_t max_version;  /* TLS_V12 or TLS_V13; 0: TLS_V13 */
    bool request_cert;     /* server: ask for a client certificate (s2s, for SASL EXTERNAL);
                              never required. Such a context issues no session tickets, so
                              that each connection's certificate is checked now, not when a
                              ticket was made. The client's certificate may be one for a TLS
                              server: public CAs stopped issuing clientAuth in 2025-26 and an
                              XMPP server presents the same certificate in both roles. */
    /* Debugging only: receives each secret as an NSS key log line (the SSLKEYLOGFILE
     * format Wireshark reads), which decrypts the traffic. NULL in production. */
    void (*keylog)(const char *line);
};

/*
 * A server context (c2s, inbound s2s). NULL on failure, with the reason in err (when err is
 * not NULL). Only ECDHE key exchange with AEAD ciphers; stateless session tickets, no
 * session cache. SNI is accepted and reported by tls_server_name().
 */
struct tls_ctx *tls_ctx_new_server(const struct tls_opts *o, char *err, size_t errlen);

/*
 * A client context (outbound s2s, tests). The peer's certificate never fails the handshake:
 * see tls_peer_verify(). Its own certificate (cert_file), if any, goes to servers that ask.
 */
struct tls_ctx *tls_ctx_new_client(const struct tls_opts *o, char *err, size_t errlen);

void tls_ctx_free(struct tls_ctx *c);

/* A context a reload replaced: connections made on it still use it, so it is kept until
 * tls_ctx_retired_free() once they are all gone (at exit). NULL is ignored. The
 * process's main thread only. */
void tls_ctx_retire(struct tls_ctx *c);
void tls_ctx_retired_free(void);

/*
 * A connection on context c; ciphertext goes to sink(ud, ...). server_name: for a client,
 * the domain it connects to, sent as SNI (in A-labels, without a trailing dot; none for an
 * IP literal or NULL); ignored for a server. NULL when memory is exhausted or server_name
 * is not a domain IDNA can encode.
 */
struct tls *tls_new(struct tls_ctx *c, const char *server_name, tls_sink_fn sink, void *ud);

/* Frees the connection without sending anything (see tls_close_notify()). NULL is fine. */
void tls_free(struct tls *t);

/*
 * Lends n bytes of ciphertext received from the peer (see the borrowing rule at the top).
 * -EBUSY if bytes of the previous call are neither consumed nor kept.
 */
int tls_feed(struct tls *t, const void *in, size_t n);

/* Copies the fed bytes not consumed yet, so the caller may reuse its buffer. 0 or -ENOMEM. */
int tls_keep(struct tls *t);

/*
 * Advances the handshake with the input fed so far; a client calls it once after tls_new()
 * to send its ClientHello. 0: done; -EAGAIN: needs more input; -EPROTO or a sink error.
 */
int tls_handshake(struct tls *t);

bool tls_handshake_done(const struct tls *t);

/*
 * Plaintext into out[0..cap): a count > 0; 0 when the peer closed TLS cleanly
 * (close_notify); -EAGAIN when every fed byte is consumed and no plaintext is ready;
 * -EPROTO or a sink error when the connection is dead. Drives the handshake too. Call it
 * until it returns <= 0 after each tls_feed().
 */
ssize_t tls_read(struct tls *t, void *out, size_t cap);

/*
 * Encrypts p[0..n) into records handed to the sink. 0, -EAGAIN before the handshake is
 * done, -EPIPE after tls_close_notify(), -EPROTO or a sink error.
 */
int tls_write(struct tls *t, const void *p, size_t n);

/* Sends close_notify (once). 0 or -errno. The connection may be freed right after. */
int tls_close_notify(struct tls *t);

/* TLS_V12 or TLS_V13 once the handshake is done; 0 before. */
int tls_version(const struct tls *t);

/* The protocol ALPN selected and its length, or NULL when none was. */
const char *tls_alpn(const struct tls *t, size_t *len);

/* Server: the SNI host name the client sent, or NULL. */
const char *tls_server_name(const struct tls *t);

/* What checking the peer's certificate chain found (the first problem, if several). */
enum tls_verify {
    TLS_VERIFY_OK,            /* it chains to a trust root and every certificate is valid now */
    TLS_VERIFY_NO_CERT,       /* no certificate, or the handshake is not done */
    TLS_VERIFY_SELF_SIGNED,   /* a lone self-signed certificate that is not a trust root */
    TLS_VERIFY_UNTRUSTED,     /* no chain to a trust root (unknown or missing issuer) */
    TLS_VERIFY_EXPIRED,       /* a certificate of the chain has expired */
    TLS_VERIFY_NOT_YET_VALID, /* a certificate of the chain is not valid yet */
    TLS_VERIFY_INVALID,       /* anything else: a bad signature, a CA that is not one, a
                                 certificate not meant for a TLS server or client... */
};

/*
 * The verdict on the peer's chain. why (may be NULL) gets BoringSSL's description of the
 * problem ("certificate has expired"), for logs, or NULL when there is none.
 */
enum tls_verify tls_peer_verify(const struct tls *t, const char **why);

/* The peer's certificate (DER) once the handshake is done, for certid.h; NULL when it sent
 * none. Valid as long as t. */
const uint8_t *tls_peer_cert(const struct tls *t, size_t *len);

/* Both checks s2s needs before trusting a peer as `domain` (SASL EXTERNAL, XEP-0178): the
 * chain verified (TLS_VERIFY_OK) and the certificate names domain (certid_match()). */
bool tls_peer_verified(const struct tls *t, const char *domain);

/*
 * RFC 9266 tls-exporter: the 32-byte exporter value with label "EXPORTER-Channel-Binding"
 * and no context. 0; -EAGAIN before the handshake is done; -ENOTSUP on TLS 1.2 without
 * extended master secret (RFC 9266 §3 forbids it there).
 */
int tls_cb_exporter(const struct tls *t, uint8_t out[TLS_EXPORTER_LEN]);

/*
 * RFC 5929 §4.1 tls-server-end-point: the hash of the server's certificate with the hash of
 * its signature algorithm, SHA-256 when that is MD5 or SHA-1. Same value on both sides.
 * 0 with *len set; -EAGAIN before the handshake; -ENOTSUP when the signature algorithm has
 * no single hash (Ed25519, RSA-PSS), for which RFC 5929 leaves the binding undefined.
 */
int tls_cb_server_end_point(const struct tls *t, uint8_t out[TLS_END_POINT_MAX], size_t *len);

/* tls-unique (RFC 5929 §3): the first Finished message of the handshake, which both ends
 * can read. TLS 1.2 only: -ENOTSUP on TLS 1.3 (RFC 9266 §4) and, as RFC 7627 asks, on a
 * resumed TLS 1.2 session without extended master secret; -EAGAIN before the handshake. */
int tls_cb_unique(const struct tls *t, uint8_t out[TLS_END_POINT_MAX], size_t *len);

/* ---- making certificates (tls_cert.c): `starlingctl gencert`, `make run`, tests ---- */

/* What tls_cert_write() makes. */
struct tls_cert_spec {
    const char *name;        /* the subject's commonName: a host name */
    const char *const *sans; /* subjectAltNames, NULL-terminated: "DNS:host" ("*.host" too),
                                "SRV:_service.host" (an SRV-ID), "XMPP:domain" (an
                                XmppAddr, UTF-8); NULL: just "DNS:name" */
    unsigned days;           /* valid from an hour ago for this many days, 1 to 36500 */
    const char *ca_cert;     /* PEM files of the CA that signs it (tls_ca_write()); */
    const char *ca_key;      /* NULL: the certificate signs itself */
};

/*
 * Writes a new EC P-256 key (PKCS#8 PEM, mode 0600) to key_path and its certificate
 * (SHA-256, extended key usage serverAuth and clientAuth: s2s presents it in both roles) to
 * crt_path, each replaced whole. 0 or -errno: -EINVAL for a bad spec or a CA key that is not
 * the CA certificate's, -errno of reading the CA files, -EIO when BoringSSL fails.
 */
int tls_cert_write(const char *crt_path, const char *key_path, const struct tls_cert_spec *s);

/* A certificate authority for tls_cert_write(): a self-signed CA certificate (CA:TRUE,
 * pathlen 0, keyCertSign) whose subject's commonName is name (printable ASCII). Same
 * returns. */
int tls_ca_write(const char *crt_path, const char *key_path, const char *name, unsigned days);

/* tls_cert_write() of a self-signed certificate for common_name, DNS:common_name only. */
int tls_selfsigned_write(const char *crt_path, const char *key_path, const char *common_name,
                         unsigned days);

#endif
