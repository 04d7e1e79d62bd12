/*
 * tls: BoringSSL over a custom BIO. The BIO reads from what the caller lent with tls_feed()
 * (or kept with tls_keep()) and writes straight into the sink, so the module itself holds
 * no ciphertext buffer between calls. Making certificates is in tls_cert.c.
 */
#include "common/auth/tls.h"
#include "common/auth/certid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <idna.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are all of that already. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define TLS_CURVES "X25519:P-256:P-384"

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"

/* Signatures we accept from a peer: BoringSSL's defaults plus Ed25519, which some servers'
 * certificates use. SHA-1 stays last, for TLS 1.2 peers that can do nothing better. */
static const uint16_t verify_prefs[] = {
    SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_SIGN_RSA_PSS_RSAE_SHA256,
    SSL_SIGN_RSA_PKCS1_SHA256,       SSL_SIGN_ED25519,
    SSL_SIGN_ECDSA_SECP384R1_SHA384, SSL_SIGN_RSA_PSS_RSAE_SHA384,
    SSL_SIGN_RSA_PKCS1_SHA384,       SSL_SIGN_RSA_PSS_RSAE_SHA512,
    SSL_SIGN_RSA_PKCS1_SHA512,       SSL_SIGN_RSA_PKCS1_SHA1,
};

struct tls_ctx {
    SSL_CTX *ssl;
    BIO_METHOD *bio_meth; /* our BIO's methods; every connection's BIO points here */
    bool server;
    uint8_t *alpn; /* ALPN list in wire format (length-prefixed), or NULL */
    size_t alpn_len;
    /* Server: tls-server-end-point of our own certificate, computed once because the
     * certificate is the context's and the handshake configuration is shed. */
    uint8_t end_point[TLS_END_POINT_MAX];
    size_t end_point_len;
    int end_point_err; /* 0, or what tls_cb_server_end_point() returns instead */
    void (*keylog)(const char *line);
};

struct tls {
    SSL *ssl;
    struct tls_ctx *ctx;
    tls_sink_fn sink;
    void *ud;
    const uint8_t *in; /* the part of the lent input BoringSSL has not taken yet */
    size_t in_len;
    uint8_t *kept; /* tls_keep()'s copy, consumed before `in`; freed when drained */
    size_t kept_off, kept_len;
    int sink_err;     /* the sink's negative errno once it failed */
    uint8_t hello[2]; /* server: the first bytes received, as far as checked */
    uint8_t hello_len;
    bool dead;   /* a fatal error happened; every later call fails with err */
    bool closed; /* close_notify sent */
    int err;
};

/* ---- the BIO --------------------------------------------------------------------------- */

/*
 * A server's first bytes must begin a ClientHello: a handshake record (0x16, then
 * version 3.x) or, in the SSLv2 format some old clients send, a length with its top bit
 * set. BoringSSL judges a record only once its 5-byte header is in, so a client that
 * sent a few bytes of anything else would be held until the handshake timeout; these
 * bytes are judged as they come instead.
 */
static bool hello_plausible(struct tls *t, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && t->hello_len < sizeof t->hello; i++) {
        uint8_t b = t->hello[t->hello_len++] = p[i];
        if (t->hello_len == 1 ? b != 0x16 && !(b & 0x80) : t->hello[0] == 0x16 && b != 0x03)
            return false;
    }
    return true;
}

static int bio_read(BIO *b, char *out, int cap)
{
    struct tls *t = BIO_get_data(b);
    const uint8_t *src;
    size_t n;

    BIO_clear_retry_flags(b);
    if (cap <= 0)
        return 0;
    if (t->kept) {
        src = t->kept + t->kept_off;
        n = t->kept_len - t->kept_off;
    } else {
        src = t->in;
        n = t->in_len;
    }
    if (n == 0) {
        /* Not end of stream: the caller will feed more. */
        BIO_set_retry_read(b);
        return -1;
    }
    if (n > (size_t)cap)
        n = (size_t)cap;
    if (t->ctx->server && !hello_plausible(t, src, n))
        return -1; /* no retry flag: the handshake fails (-EPROTO) */
    memcpy(out, src, n);
    if (t->kept) {
        t->kept_off += n;
        if (t->kept_off == t->kept_len) {
            OPENSSL_free(t->kept);
            t->kept = NULL;
            t->kept_off = t->kept_len = 0;
        }
    } else {
        t->in += n;
        t->in_len -= n;
    }
    return (int)n;
}

static int bio_write(BIO *b, const char *p, int n)
{
    struct tls *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    int rc = t->sink(t->ud, p, (size_t)n);
    if (rc < 0) {
        /* No retry flag: BoringSSL reports SSL_ERROR_SYSCALL and the connection is dead. */
        t->sink_err = rc;
        return -1;
    }
    return n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    /* Records are in the sink as soon as they are written: nothing to flush. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* ---- contexts -------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *what, const char *arg)
{
    if (!err || !errlen)
        return;
    uint32_t e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s%s%s%s%s", what, arg ? " " : "", arg ? arg : "", why ? ": " : "",
             why ? why : "");
}

/* "a,b" -> "\1a\1b". -EINVAL for an empty or over-long name. */
static int alpn_wire(const char *list, uint8_t **out, size_t *out_len)
{
    size_t len = strlen(list), n = 0;
    uint8_t *w = malloc(len + 1);
    if (!w)
        return -ENOMEM;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == 0 || l > 255) {
            free(w);
            return -EINVAL;
        }
        w[n++] = (uint8_t)l;
        memcpy(w + n, p, l);
        n += l;
        if (!end)
            break;
        p = end + 1;
    }
    *out = w;
    *out_len = n;
    return 0;
}

/* Server preference: the first of our protocols the client offers. */
static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                       unsigned in_len, void *arg)
{
    const struct tls_ctx *c = arg;
    (void)ssl;
    for (size_t i = 0; i < c->alpn_len; i += 1 + (size_t)c->alpn[i]) {
        for (unsigned j = 0; j < in_len; j += 1u + in[j]) {
            if (in[j] == c->alpn[i] && j + 1u + in[j] <= in_len &&
                memcmp(in + j + 1, c->alpn + i + 1, in[j]) == 0) {
                *out = in + j + 1;
                *out_len = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    /* RFC 7301 §3.2: a client that speaks none of our protocols is refused, so that a port
     * multiplexed by ALPN never serves XMPP to, say, an HTTP/2 client. */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * Replaces BoringSSL's call of X509_verify_cert() so that a chain that does not verify never
 * fails the handshake: s2s decides later what such a peer is worth (dialback). The store's
 * error, the first problem found (the default callback stops there), becomes the session's
 * verify result, which tls_peer_verify() reads.
 */
static int verify_chain(X509_STORE_CTX *store, void *arg)
{
    (void)arg;
    if (X509_verify_cert(store) != 1 && X509_STORE_CTX_get_error(store) == X509_V_OK)
        X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED); /* out of memory, say */
    ERR_clear_error();
    return 1;
}

/*
 * A server's check of a client certificate wants extended key usage clientAuth. The client
 * here is another XMPP server presenting its server certificate, and public CAs issue
 * serverAuth only since 2025-26 (Let's Encrypt among them): such a certificate is as good.
 */
static int client_cert_purpose(int ok, X509_STORE_CTX *store)
{
    if (!ok && X509_STORE_CTX_get_error(store) == X509_V_ERR_INVALID_PURPOSE) {
        X509 *x = X509_STORE_CTX_get_current_cert(store);
        if (x && X509_check_purpose(x, X509_PURPOSE_SSL_SERVER,
                                    X509_STORE_CTX_get_error_depth(store) > 0) == 1) {
            X509_STORE_CTX_set_error(store, X509_V_OK);
            return 1;
        }
    }
    return ok;
}

static void keylog_cb(const SSL *ssl, const char *line)
{
    const struct tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    c->keylog(line);
}

static int end_point_hash(X509 *x, uint8_t out[TLS_END_POINT_MAX], size_t *len)
{
    int md_nid, pkey_nid;
    if (!OBJ_find_sigid_algs(X509_get_signature_nid(x), &md_nid, &pkey_nid) || md_nid == NID_undef)
        return -ENOTSUP;
    const EVP_MD *md =
        md_nid == NID_md5 || md_nid == NID_sha1 ? EVP_sha256() : EVP_get_digestbynid(md_nid);
    unsigned n = 0;
    if (!md || EVP_MD_size(md) > TLS_END_POINT_MAX)
        return -ENOTSUP;
    if (!X509_digest(x, md, out, &n))
        return -EIO;
    *len = n;
    return 0;
}

static struct tls_ctx *ctx_new(const struct tls_opts *o, bool server, char *err, size_t errlen)
{
    struct tls_ctx *c = calloc(1, sizeof *c);
    uint16_t vmin = o->min_version ? o->min_version : TLS_V12;
    uint16_t vmax = o->max_version ? o->max_version : TLS_V13;

    if (!c) {
        set_err(err, errlen, "out of memory", NULL);
        return NULL;
    }
    c->server = server;
    c->end_point_err = -ENOTSUP;
    if ((vmin != TLS_V12 && vmin != TLS_V13) || (vmax != TLS_V12 && vmax != TLS_V13) ||
        vmin > vmax) {
        set_err(err, errlen, "TLS versions must be 1.2 or 1.3, min <= max", NULL);
        goto fail_ctx;
    }
    c->ssl = SSL_CTX_new(TLS_method());
    if (!c->ssl) {
        set_err(err, errlen, "SSL_CTX_new", NULL);
        goto fail_ctx;
    }
    c->bio_meth = BIO_meth_new(BIO_get_new_index(), "starling");
    if (!c->bio_meth || !BIO_meth_set_read(c->bio_meth, bio_read) ||
        !BIO_meth_set_write(c->bio_meth, bio_write) || !BIO_meth_set_ctrl(c->bio_meth, bio_ctrl)) {
        set_err(err, errlen, "BIO_meth_new", NULL);
        goto fail_ssl;
    }
    if (!SSL_CTX_set_min_proto_version(c->ssl, vmin) ||
        !SSL_CTX_set_max_proto_version(c->ssl, vmax) ||
        !SSL_CTX_set_strict_cipher_list(c->ssl, TLS12_CIPHERS) ||
        !SSL_CTX_set1_curves_list(c->ssl, TLS_CURVES) ||
        !SSL_CTX_set_verify_algorithm_prefs(c->ssl, verify_prefs,
                                            sizeof verify_prefs / sizeof verify_prefs[0])) {
        set_err(err, errlen, "configuring versions and ciphers", NULL);
        goto fail_ssl;
    }
    if (o->alpn) {
        int rc = alpn_wire(o->alpn, &c->alpn, &c->alpn_len);
        if (rc < 0) {
            set_err(err, errlen, "bad ALPN list", o->alpn);
            goto fail_ssl;
        }
        if (server)
            SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
        else if (SSL_CTX_set_alpn_protos(c->ssl, c->alpn, c->alpn_len) != 0) {
            set_err(err, errlen, "SSL_CTX_set_alpn_protos", NULL);
            goto fail_ssl;
        }
    }
    if (o->cert_file || o->key_file) {
        if (!o->cert_file || !o->key_file) {
            set_err(err, errlen, "a certificate needs its key and the other way round", NULL);
            goto fail_ssl;
        }
        if (SSL_CTX_use_certificate_chain_file(c->ssl, o->cert_file) != 1) {
            set_err(err, errlen, "loading certificate", o->cert_file);
            goto fail_ssl;
        }
        if (SSL_CTX_use_PrivateKey_file(c->ssl, o->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ssl) != 1) {
            set_err(err, errlen, "loading key", o->key_file);
            goto fail_ssl;
        }
        if (server)
            c->end_point_err =
                end_point_hash(SSL_CTX_get0_certificate(c->ssl), c->end_point, &c->end_point_len);
    } else if (server) {
        set_err(err, errlen, "a server needs a certificate and a key", NULL);
        goto fail_ssl;
    }
    /* "" as well as NULL: what an empty s2s.ca_file or s2s.ca_dir gives. */
    const char *ca_file = o->ca_file && *o->ca_file ? o->ca_file : NULL;
    const char *ca_dir = o->ca_dir && *o->ca_dir ? o->ca_dir : NULL;
    if ((ca_file || ca_dir) && SSL_CTX_load_verify_locations(c->ssl, ca_file, ca_dir) != 1) {
        set_err(err, errlen, "loading trust roots", ca_file ? ca_file : ca_dir);
        goto fail_ssl;
    }
    SSL_CTX_set_cert_verify_callback(c->ssl, verify_chain, NULL);
    if (o->keylog) {
        c->keylog = o->keylog;
        SSL_CTX_set_app_data(c->ssl, c);
        SSL_CTX_set_keylog_callback(c->ssl, keylog_cb);
    }
    if (server) {
        /* Stateless tickets only: a session cache would hold memory for every client. */
        SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(c->ssl, 1);
        if (o->request_cert) {
            /* A resumed session would bring the verdict of the handshake that made it. */
            SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
            /* PEER without FAIL_IF_NO_PEER_CERT: asked for, not required. */
            SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, client_cert_purpose);
        }
    } else {
        /* verify_chain() runs all the same; NONE also keeps a failure from being fatal. */
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    }
    ERR_clear_error();
    return c;

fail_ssl:
    free(c->alpn);
    if (c->bio_meth)
        BIO_meth_free(c->bio_meth);
    SSL_CTX_free(c->ssl);
fail_ctx:
    free(c);
    ERR_clear_error();
    return NULL;
}

struct tls_ctx *tls_ctx_new_server(const struct tls_opts *o, char *err, size_t errlen)
{
    return ctx_new(o, true, err, errlen);
}

struct tls_ctx *tls_ctx_new_client(const struct tls_opts *o, char *err, size_t errlen)
{
    return ctx_new(o, false, err, errlen);
}

void tls_ctx_free(struct tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    BIO_meth_free(c->bio_meth);
    free(c->alpn);
    free(c);
}

/* ---- connections ----------------------------------------------------------------------- */

/*
 * SNI (RFC 6066 §3): a host name in A-labels without the trailing dot, never an IP
 * literal, for which nothing is sent. XEP-0368 asks for the JID's domain.
 */
static int sni_set(SSL *ssl, const char *domain)
{
    char name[256], *ace = NULL;
    struct in6_addr a6;
    struct in_addr a4;
    size_t n = strlen(domain);
    int rc = -EINVAL;

    if (n && domain[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof name)
        return -EINVAL;
    memcpy(name, domain, n);
    name[n] = '\0';
    if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1 ||
        (name[0] == '[' && name[n - 1] == ']'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] >= 0x80) {
            if (idna_to_ascii_8z(name, &ace, 0) != IDNA_SUCCESS)
                goto out;
            break;
        }
    }
    rc = SSL_set_tlsext_host_name(ssl, ace ? ace : name) ? 0 : -ENOMEM;
out:
    free(ace);
    return rc;
}

/*
 * A connection's own memory comes from OPENSSL_malloc like BoringSSL's, so that one hook
 * (OPENSSL_memory_alloc, see the unit test) accounts for everything a connection holds.
 */
struct tls *tls_new(struct tls_ctx *c, const char *server_name, tls_sink_fn sink, void *ud)
{
    struct tls *t = OPENSSL_malloc(sizeof *t);
    BIO *bio;

    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->ctx = c;
    t->sink = sink;
    t->ud = ud;
    t->ssl = SSL_new(c->ssl);
    if (!t->ssl)
        goto fail_t;
    bio = BIO_new(c->bio_meth);
    if (!bio)
        goto fail_ssl;
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio); /* one reference, owned by the SSL */
    SSL_set_shed_handshake_config(t->ssl, 1);
    if (c->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (server_name && sni_set(t->ssl, server_name) < 0)
            goto fail_ssl;
    }
    return t;

fail_ssl:
    SSL_free(t->ssl);
fail_t:
    OPENSSL_free(t);
    ERR_clear_error();
    return NULL;
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    OPENSSL_free(t->kept);
    OPENSSL_free(t);
}

int tls_feed(struct tls *t, const void *in, size_t n)
{
    if (t->in_len)
        return -EBUSY;
    t->in = in;
    t->in_len = n;
    return 0;
}

int tls_keep(struct tls *t)
{
    if (!t->in_len)
        return 0;
    size_t have = t->kept ? t->kept_len - t->kept_off : 0;
    uint8_t *k = OPENSSL_malloc(have + t->in_len);
    if (!k)
        return -ENOMEM;
    if (have)
        memcpy(k, t->kept + t->kept_off, have);
    memcpy(k + have, t->in, t->in_len);
    OPENSSL_free(t->kept);
    t->kept = k;
    t->kept_off = 0;
    t->kept_len = have + t->in_len;
    t->in = NULL;
    t->in_len = 0;
    return 0;
}

/* Maps a failed SSL call to -errno; a fatal one makes the connection dead for good. */
static int fail(struct tls *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return -EAGAIN;
    t->dead = true;
    t->err = e == SSL_ERROR_SYSCALL && t->sink_err ? t->sink_err : -EPROTO;
    t->in = NULL; /* the borrow ends here: nothing more will be read */
    t->in_len = 0;
    ERR_clear_error();
    return t->err;
}

int tls_handshake(struct tls *t)
{
    if (t->dead)
        return t->err;
    ERR_clear_error();
    int ret = SSL_do_handshake(t->ssl);
    return ret == 1 ? 0 : fail(t, ret);
}

bool tls_handshake_done(const struct tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

ssize_t tls_read(struct tls *t, void *out, size_t cap)
{
    if (t->dead)
        return t->err;
    if (cap == 0)
        return -EINVAL;
    ERR_clear_error();
    int ret = SSL_read(t->ssl, out, cap > INT_MAX ? INT_MAX : (int)cap);
    if (ret > 0)
        return ret;
    if (SSL_get_error(t->ssl, ret) == SSL_ERROR_ZERO_RETURN) {
        t->in = NULL; /* whatever follows close_notify is not TLS data */
        t->in_len = 0;
        return 0;
    }
    return fail(t, ret);
}

int tls_write(struct tls *t, const void *p, size_t n)
{
    const uint8_t *b = p;

    if (t->dead)
        return t->err;
    if (t->closed)
        return -EPIPE;
    if (!SSL_is_init_finished(t->ssl))
        return -EAGAIN;
    while (n) {
        /* BoringSSL writes all of one call or fails (no partial-write mode). */
        int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        ERR_clear_error();
        int ret = SSL_write(t->ssl, b, chunk);
        if (ret <= 0)
            return fail(t, ret);
        b += ret;
        n -= (size_t)ret;
    }
    return 0;
}

int tls_close_notify(struct tls *t)
{
    if (t->dead)
        return t->err;
    if (t->closed || !SSL_is_init_finished(t->ssl))
        return 0; /* before the handshake there is no key to protect an alert with */
    t->closed = true;
    ERR_clear_error();
    int ret = SSL_shutdown(t->ssl);
    return ret >= 0 ? 0 : fail(t, ret);
}

int tls_version(const struct tls *t)
{
    return SSL_is_init_finished(t->ssl) ? SSL_version(t->ssl) : 0;
}

const char *tls_alpn(const struct tls *t, size_t *len)
{
    const uint8_t *p;
    unsigned n;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (len)
        *len = n;
    return n ? (const char *)p : NULL;
}

const char *tls_server_name(const struct tls *t)
{
    return t->ctx->server ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

const uint8_t *tls_peer_cert(const struct tls *t, size_t *len)
{
    const STACK_OF(CRYPTO_BUFFER) *chain = SSL_get0_peer_certificates(t->ssl);
    const CRYPTO_BUFFER *leaf = SSL_is_init_finished(t->ssl) && chain &&
                                        sk_CRYPTO_BUFFER_num(chain) > 0
                                    ? sk_CRYPTO_BUFFER_value(chain, 0)
                                    : NULL;
    if (len)
        *len = leaf ? CRYPTO_BUFFER_len(leaf) : 0;
    return leaf ? CRYPTO_BUFFER_data(leaf) : NULL;
}

enum tls_verify tls_peer_verify(const struct tls *t, const char **why)
{
    enum tls_verify v;
    long res = SSL_get_verify_result(t->ssl);

    if (why)
        *why = NULL;
    if (!tls_peer_cert(t, NULL))
        return TLS_VERIFY_NO_CERT;
    switch (res) {
    case X509_V_OK:
        return TLS_VERIFY_OK;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        v = TLS_VERIFY_SELF_SIGNED;
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        v = TLS_VERIFY_UNTRUSTED;
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        v = TLS_VERIFY_EXPIRED;
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        v = TLS_VERIFY_NOT_YET_VALID;
        break;
    default:
        v = TLS_VERIFY_INVALID;
        break;
    }
    if (why)
        *why = X509_verify_cert_error_string(res);
    return v;
}

bool tls_peer_verified(const struct tls *t, const char *domain)
{
    size_t len;
    const uint8_t *der = tls_peer_cert(t, &len);
    return der && tls_peer_verify(t, NULL) == TLS_VERIFY_OK && certid_match(der, len, domain);
}

int tls_cb_exporter(const struct tls *t, uint8_t out[TLS_EXPORTER_LEN])
{
    if (!SSL_is_init_finished(t->ssl))
        return -EAGAIN;
    if (SSL_version(t->ssl) < TLS1_3_VERSION && !SSL_get_extms_support(t->ssl))
        return -ENOTSUP;
    /* use_context = 0: RFC 9266 asks for no context, which differs from an empty one in
     * TLS 1.2. */
    if (!SSL_export_keying_material(t->ssl, out, TLS_EXPORTER_LEN, EXPORTER_LABEL,
                                    sizeof EXPORTER_LABEL - 1, NULL, 0, 0)) {
        ERR_clear_error();
        return -EIO;
    }
    return 0;
}

int tls_cb_unique(const struct tls *t, uint8_t out[TLS_END_POINT_MAX], size_t *len)
{
    if (!SSL_is_init_finished(t->ssl))
        return -EAGAIN;
    if (SSL_version(t->ssl) >= TLS1_3_VERSION ||
        (SSL_session_reused(t->ssl) && !SSL_get_extms_support(t->ssl)))
        return -ENOTSUP;
    if (!SSL_get_tls_unique(t->ssl, out, len, TLS_END_POINT_MAX)) {
        ERR_clear_error();
        return -EIO;
    }
    return 0;
}

int tls_cb_server_end_point(const struct tls *t, uint8_t out[TLS_END_POINT_MAX], size_t *len)
{
    if (!SSL_is_init_finished(t->ssl))
        return -EAGAIN;
    if (t->ctx->server) {
        if (t->ctx->end_point_err)
            return t->ctx->end_point_err;
        memcpy(out, t->ctx->end_point, t->ctx->end_point_len);
        *len = t->ctx->end_point_len;
        return 0;
    }
    X509 *peer = SSL_get_peer_certificate(t->ssl);
    if (!peer)
        return -ENOTSUP;
    int rc = end_point_hash(peer, out, len);
    X509_free(peer);
    return rc;
}

static struct tls_ctx **retired;
static size_t nretired;

void tls_ctx_retire(struct tls_ctx *c)
{
    if (!c)
        return;
    struct tls_ctx **v = realloc(retired, (nretired + 1) * sizeof *v);
    if (!v)
        return; /* kept for good: connections may still use it */
    retired = v;
    retired[nretired++] = c;
}

void tls_ctx_retired_free(void)
{
    for (size_t i = 0; i < nretired; i++)
        tls_ctx_free(retired[i]);
    free(retired);
    retired = NULL;
    nretired = 0;
}
