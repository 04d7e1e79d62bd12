/*
 * sasl: the receiving (server) side of SASL for XMPP (RFC 6120 §6) as a state machine that
 * does no I/O. c2s hands it the character data of <auth/> and <response/> as received
 * (base64, RFC 6120 §6.4.2) and sends what each call returns:
 *
 *   SASL_EV_CHALLENGE    send <challenge>text</challenge>
 *   SASL_EV_SUCCESS      send <success>text</success> (<success/> when len is 0); the
 *                        authenticated localpart is in user
 *   SASL_EV_FAILURE      send <failure><cond/></failure>, cond from sasl_cond_name()
 *   SASL_EV_NEED_CREDS   look up the credentials of `user` (already normalised with XMPP
 *                        nodeprep) for `hash`, asynchronously, then call sasl_creds() with
 *                        them or with NULL when there is no such account
 *   SASL_EV_NEED_VERIFY  (PLAIN) run sasl_verify(s) where PBKDF2 may take milliseconds (a
 *                        worker thread), then sasl_resume(s) on the owning thread
 *
 * Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) and
 * their -PLUS variants with the channel bindings tls-exporter (RFC 9266) and
 * tls-server-end-point (RFC 5929). Which ones to advertise: sasl_offer().
 *
 * An unknown user is indistinguishable from a wrong password: the machine goes on with
 * fake credentials (salt and keys derived from the configuration's secret and the user
 * name, so they do not change between attempts), costs the same, and fails with
 * not-authorized at the very end. Secret comparisons take constant time.
 *
 * Ownership and threads: the caller owns struct sasl (about 5 KiB, only while a stream
 * authenticates: allocate it when <auth/> arrives, drop it after success or failure) and
 * the struct sasl_config it points to, which must outlive it. A machine belongs to one
 * thread, except that sasl_verify() may run on another while the owner waits for it.
 * Spans in an event point into the machine and stay valid until the next call on it.
 * Call sasl_wipe() before freeing it: it holds key material and, for PLAIN, a password.
 */
#ifndef STARLING_SASL_H
#define STARLING_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/auth/scram.h"

enum sasl_mech {
    SASL_MECH_NONE = 0,
    SASL_SCRAM_SHA256_PLUS, /* in order of preference: sasl_offer() lists them so */
    SASL_SCRAM_SHA1_PLUS,
    SASL_SCRAM_SHA256,
    SASL_SCRAM_SHA1,
    SASL_PLAIN,
    SASL_MECH_COUNT,
};
#define SASL_MECH_BIT(m) (1u << (m))

/* Channel-binding types, as bits. */
enum sasl_cb {
    SASL_CB_TLS_EXPORTER = 1u << 0,         /* RFC 9266 */
    SASL_CB_TLS_SERVER_END_POINT = 1u << 1, /* RFC 5929 §4.1 */
    SASL_CB_TLS_UNIQUE = 1u << 2,           /* RFC 5929 §3, TLS 1.2 only (RFC 9266) */
};

/* Failure conditions of RFC 6120 §6.5. */
enum sasl_cond {
    SASL_COND_NONE = 0,
    SASL_ABORTED,
    SASL_ACCOUNT_DISABLED,
    SASL_CREDENTIALS_EXPIRED,
    SASL_ENCRYPTION_REQUIRED,
    SASL_INCORRECT_ENCODING,
    SASL_INVALID_AUTHZID,
    SASL_INVALID_MECHANISM,
    SASL_MALFORMED_REQUEST,
    SASL_MECHANISM_TOO_WEAK,
    SASL_NOT_AUTHORIZED,
    SASL_TEMPORARY_AUTH_FAILURE,
};

enum sasl_ev {
    SASL_EV_CHALLENGE = 1,
    SASL_EV_SUCCESS,
    SASL_EV_FAILURE,
    SASL_EV_NEED_CREDS,
    SASL_EV_NEED_VERIFY,
};

struct sasl_event {
    enum sasl_ev kind;
    const char *text;     /* CHALLENGE, SUCCESS: base64 character data ("=" for empty data) */
    size_t len;           /* 0: SUCCESS without additional data */
    enum sasl_cond cond;  /* FAILURE */
    const char *user;     /* NEED_CREDS, SUCCESS, a tested FAILURE: the nodeprepped
                             localpart, NUL-terminated */
    enum scram_hash hash; /* NEED_CREDS: which credentials to fetch */
    bool tested;          /* FAILURE: at the password check (not-authorized for a wrong
                             proof or password, or an unknown user), so a guess was made;
                             false for every refusal before it (mechanism, channel
                             binding, malformed message), which tested no password */
};

/* One per virtual host, shared by its machines; read-only while they run. */
struct sasl_config {
    const char *domain;       /* this host's normalised domain, for authzid checks */
    unsigned mechs;           /* SASL_MECH_BIT set this host allows; 0: all but PLAIN */
    uint8_t secret[32];       /* fake credentials of unknown users are derived from it: keep it the
                                 same across restarts (store it beside the accounts) */
    uint32_t fake_iterations; /* iteration count shown for unknown users: the one new
                                 accounts get; 0: SCRAM_MIN_ITERATIONS */
};

/* What the transport offers at the time of authentication. */
struct sasl_tls {
    bool active; /* the stream is encrypted */
    unsigned cb; /* enum sasl_cb bits that have data below */
    uint8_t exporter[32];
    uint8_t end_point[64];
    size_t end_point_len;
    uint8_t unique[64]; /* tls-unique: the first Finished message of the handshake */
    size_t unique_len;
};

/*
 * The mechanisms to advertise, as SASL_MECH_BIT set: the -PLUS ones only when tls has a
 * channel binding, PLAIN only over TLS and only when cfg->mechs names it.
 */
unsigned sasl_offer(const struct sasl_config *cfg, const struct sasl_tls *tls);

/* The channel-binding types to advertise (XEP-0440): tls->cb when TLS is active, else 0. */
unsigned sasl_cb_offer(const struct sasl_tls *tls);

const char *sasl_mech_name(enum sasl_mech m);                 /* "SCRAM-SHA-256-PLUS"... */
enum sasl_mech sasl_mech_parse(const char *name, size_t len); /* SASL_MECH_NONE if unknown */
const char *sasl_cb_name(enum sasl_cb cb);                    /* "tls-exporter"... */
const char *sasl_cond_name(enum sasl_cond c);                 /* "not-authorized"... */

struct sasl;

/* Prepares s for one authentication on a stream whose transport is *tls (copied). */
void sasl_init(struct sasl *s, const struct sasl_config *cfg, const struct sasl_tls *tls);

/*
 * <auth mechanism='mech'>b64</auth>. len 0 means no initial response (the mechanism then
 * gets an empty challenge); "=" is an empty one. Fails with invalid-mechanism for a
 * mechanism not offered, encryption-required for PLAIN without TLS.
 */
enum sasl_ev sasl_start(struct sasl *s, const char *mech, size_t mech_len, const char *b64,
                        size_t len, struct sasl_event *ev);

/* <response>b64</response> (len 0 or "=": empty). */
enum sasl_ev sasl_step(struct sasl *s, const char *b64, size_t len, struct sasl_event *ev);

/* After NEED_CREDS: the account's credentials for ev->hash (copied), or NULL if none. */
enum sasl_ev sasl_creds(struct sasl *s, const struct scram_creds *c, struct sasl_event *ev);

/* After NEED_VERIFY, on any thread: checks the PLAIN password and forgets it. */
void sasl_verify(struct sasl *s);

/* After sasl_verify() returned, on the owning thread: SUCCESS or FAILURE. */
enum sasl_ev sasl_resume(struct sasl *s, struct sasl_event *ev);

/*
 * Ends the exchange with cond: ABORTED for the client's <abort/>, TEMPORARY_AUTH_FAILURE
 * when the credential store failed, ACCOUNT_DISABLED by policy...
 */
enum sasl_ev sasl_fail(struct sasl *s, enum sasl_cond cond, struct sasl_event *ev);

/* Erases every secret s holds; s must be sasl_init()ed again before reuse. */
void sasl_wipe(struct sasl *s);

/* Tests only: the server nonce part of the next server-first message (printable, no ','). */
void sasl_test_nonce(struct sasl *s, const char *nonce);

/* ---- layout ------------------------------------------------------------------------------- */

#define SASL_MSG_MAX   1024 /* longest decoded client message */
#define SASL_USER_MAX  1024 /* nodeprepped localpart, NUL included (RFC 7622: 1023 bytes) */
#define SASL_NONCE_LEN 32   /* server nonce characters: 24 random bytes in base64 */

struct sasl {
    const struct sasl_config *cfg;
    struct sasl_tls tls;
    enum sasl_mech mech;
    int state;                       /* enum sasl_state in sasl.c */
    char gs2_flag;                   /* 'n', 'y' or 'p' */
    unsigned cb;                     /* the enum sasl_cb the client chose with p= */
    bool fake;                       /* unknown user: the exchange runs on fake credentials */
    bool verified;                   /* PLAIN: what sasl_verify() found */
    uint16_t gs2_len;                /* client-first = gs2 header (msg[0..gs2_len)) + bare */
    uint16_t first_len;              /* length of the whole client-first message in msg */
    uint16_t cnonce_off, cnonce_len; /* the client nonce inside msg */
    uint16_t sfirst_len;             /* server-first message in sfirst */
    uint16_t nonce_len;              /* client + server nonce, at sfirst + 2 */
    const char *test_nonce;
    struct scram_creds creds;
    char user[SASL_USER_MAX];
    char msg[SASL_MSG_MAX + 1]; /* client-first message; PLAIN: the password */
    char sfirst[SASL_MSG_MAX + 128];
    char out[4 * (SASL_MSG_MAX + 128) / 3 + 4]; /* base64 text of the last event */
};

#endif
