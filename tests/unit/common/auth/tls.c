/*
 * Tests of common/auth/tls.c: a server and a client struct tls talk through two in-memory queues
 * (the sinks), pumped until neither has anything to say.
 *
 * Memory is accounted through BoringSSL's allocation hooks (OPENSSL_memory_alloc & co.,
 * defined below, which libcrypto picks up at load time); struct tls comes from
 * OPENSSL_malloc too, so `live` is every heap byte the connections hold.
 */
#include "common/auth/tls.h"
#include "test.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/hkdf.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- allocation accounting ------------------------------------------------------------- */

void *OPENSSL_memory_alloc(size_t size);
void OPENSSL_memory_free(void *ptr);
size_t OPENSSL_memory_get_size(void *ptr);

static long long live, allocs;

void *OPENSSL_memory_alloc(size_t size)
{
    void *p = malloc(size);
    if (p) {
        live += (long long)malloc_usable_size(p);
        allocs++;
    }
    return p;
}

void OPENSSL_memory_free(void *ptr)
{
    if (ptr)
        live -= (long long)malloc_usable_size(ptr);
    free(ptr);
}

size_t OPENSSL_memory_get_size(void *ptr)
{
    return malloc_usable_size(ptr);
}

/* ---- fixtures -------------------------------------------------------------------------- */

static char dir[64], crt[128], key[128];

struct q {
    uint8_t *p;
    size_t len, cap;
    int fail; /* when non-zero, the sink returns it */
};

static int q_sink(void *ud, const void *p, size_t n)
{
    struct q *q = ud;
    if (q->fail)
        return q->fail;
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n)
            cap *= 2;
        uint8_t *np = realloc(q->p, cap);
        if (!np)
            return -ENOMEM;
        q->p = np;
        q->cap = cap;
    }
    memcpy(q->p + q->len, p, n);
    q->len += n;
    return 0;
}

static void q_free(struct q *q)
{
    free(q->p);
    memset(q, 0, sizeof *q);
}

/* One side: its tls, the ciphertext it wrote (for the peer), the plaintext it read. */
struct end {
    struct tls *t;
    struct q out, got;
    int eof, err;
};

struct pair {
    struct end s, c;
};

/* Feeds everything `from` wrote into `to` and reads all plaintext `to` has. */
static bool deliver(struct end *from, struct end *to, size_t chunk)
{
    uint8_t buf[4096];
    size_t off = 0;
    bool moved = from->out.len > 0;

    while (off < from->out.len) {
        size_t n = from->out.len - off;
        if (chunk && n > chunk)
            n = chunk;
        if (tls_feed(to->t, from->out.p + off, n) != 0)
            abort();
        off += n;
        for (;;) {
            ssize_t r = tls_read(to->t, buf, sizeof buf);
            if (r > 0) {
                q_sink(&to->got, buf, (size_t)r);
                continue;
            }
            if (r == 0)
                to->eof = 1;
            else if (r != -EAGAIN)
                to->err = (int)r;
            break;
        }
        if (to->err || to->eof)
            break;
    }
    from->out.len = 0;
    return moved;
}

static void pump_chunked(struct pair *p, size_t chunk)
{
    for (int i = 0; i < 1000; i++) {
        bool a = deliver(&p->c, &p->s, chunk);
        bool b = deliver(&p->s, &p->c, chunk);
        if (!a && !b)
            return;
    }
    abort(); /* ping-pong without end */
}

static void pump(struct pair *p)
{
    pump_chunked(p, 0);
}

static struct tls_ctx *server_ctx(const char *alpn, uint16_t vmax)
{
    struct tls_opts o = {.cert_file = crt, .key_file = key, .alpn = alpn, .max_version = vmax};
    char err[256];
    struct tls_ctx *c = tls_ctx_new_server(&o, err, sizeof err);
    if (!c)
        fprintf(stderr, "server ctx: %s\n", err);
    return c;
}

static struct tls_ctx *client_ctx(const char *alpn, uint16_t vmax, const char *ca)
{
    struct tls_opts o = {.alpn = alpn, .max_version = vmax, .ca_file = ca};
    char err[256];
    struct tls_ctx *c = tls_ctx_new_client(&o, err, sizeof err);
    if (!c)
        fprintf(stderr, "client ctx: %s\n", err);
    return c;
}

/* Sets up both ends and runs the handshake to its end (or to its failure). */
static void pair_open(struct pair *p, struct tls_ctx *sc, struct tls_ctx *cc, const char *sni)
{
    memset(p, 0, sizeof *p);
    p->s.t = tls_new(sc, NULL, q_sink, &p->s.out);
    p->c.t = tls_new(cc, sni, q_sink, &p->c.out);
    if (!p->s.t || !p->c.t)
        abort();
    int rc = tls_handshake(p->c.t);
    if (rc != -EAGAIN)
        abort();
    pump(p);
}

static void end_close(struct end *e)
{
    tls_free(e->t);
    e->t = NULL;
    q_free(&e->out);
    q_free(&e->got);
}

static void pair_close(struct pair *p)
{
    end_close(&p->s);
    end_close(&p->c);
}

/* Writes n bytes of a pattern from one end and checks the other reads exactly them. */
static bool transfer(struct pair *p, struct end *from, struct end *to, size_t n)
{
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 8));
    to->got.len = 0;
    bool ok = tls_write(from->t, buf, n) == 0;
    pump(p);
    ok = ok && to->got.len == n && memcmp(to->got.p, buf, n) == 0;
    free(buf);
    return ok;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void selfsigned_test(void)
{
    struct stat st;
    CHECK_INT(stat(key, &st), ==, 0);
    CHECK_INT(st.st_mode & 0777, ==, 0600);

    BIO *b = BIO_new_file(crt, "r");
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    CHECK(x != NULL);
    if (x) {
        CHECK_INT(X509_check_host(x, "localhost", 9, 0, NULL), ==, 1);
        CHECK_INT(X509_check_host(x, "example.org", 11, 0, NULL), ==, 0);
        CHECK_INT(X509_get_signature_nid(x), ==, NID_ecdsa_with_SHA256);
        EVP_PKEY *pk = X509_get_pubkey(x);
        CHECK(pk && EVP_PKEY_id(pk) == EVP_PKEY_EC);
        CHECK(pk && X509_verify(x, pk) == 1); /* self-signed: its own key signed it */
        EVP_PKEY_free(pk);
        X509_free(x);
    }
    BIO_free(b);

    /* The pair loads, and a mismatched key is refused. */
    struct tls_ctx *c = server_ctx(NULL, 0);
    CHECK(c != NULL);
    tls_ctx_free(c);
    char crt2[160], key2[160], err[256];
    snprintf(crt2, sizeof crt2, "%s/other.crt", dir);
    snprintf(key2, sizeof key2, "%s/other.key", dir);
    CHECK_INT(tls_selfsigned_write(crt2, key2, "other.example", 1), ==, 0);
    struct tls_opts o = {.cert_file = crt, .key_file = key2};
    c = tls_ctx_new_server(&o, err, sizeof err);
    CHECK(c == NULL);
    CHECK(strstr(err, key2) != NULL);
    tls_ctx_free(c);
    CHECK_INT(tls_selfsigned_write(crt2, key2, "bad name,DNS:evil", 1), ==, -EINVAL);
    CHECK_INT(tls_selfsigned_write(crt2, key2, "ok", 0), ==, -EINVAL);
}

static void handshake_version(uint16_t vmax, int want)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, vmax, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK(tls_handshake_done(p.s.t));
    CHECK(tls_handshake_done(p.c.t));
    CHECK_INT(tls_version(p.s.t), ==, want);
    CHECK_INT(tls_version(p.c.t), ==, want);
    CHECK_INT(p.s.err, ==, 0);
    CHECK_INT(p.c.err, ==, 0);
    CHECK(transfer(&p, &p.c, &p.s, 100));
    CHECK(transfer(&p, &p.s, &p.c, 5000));
    CHECK(transfer(&p, &p.c, &p.s, 1));
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void tls13_test(void)
{
    handshake_version(TLS_V13, TLS_V13);
}

static void tls12_test(void)
{
    handshake_version(TLS_V12, TLS_V12);
}

/* A client that speaks only TLS 1.3 against a server capped at 1.2 fails on both sides. */
static void version_mismatch_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, TLS_V12);
    struct tls_opts o = {.min_version = TLS_V13};
    struct tls_ctx *cc = tls_ctx_new_client(&o, NULL, 0);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK_INT(p.s.err, ==, -EPROTO);
    CHECK(!tls_handshake_done(p.s.t));
    CHECK(!tls_handshake_done(p.c.t));
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
    o.min_version = TLS_V13;
    o.max_version = TLS_V12;
    CHECK(tls_ctx_new_client(&o, NULL, 0) == NULL);
}

static void large_write_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    /* 1 MiB + 1: many full records, then a one-byte tail. */
    size_t n = (1u << 20) + 1;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i ^ (i >> 11));
    CHECK_INT(tls_write(p.s.t, buf, n), ==, 0);
    CHECK(p.s.out.len > n); /* every byte is in the sink already */
    CHECK(p.s.out.len < n + n / 100);
    pump(&p);
    CHECK_INT(p.c.got.len, ==, n);
    CHECK(p.c.got.len == n && memcmp(p.c.got.p, buf, n) == 0);
    /* And the other way, fed to the server in odd-sized pieces. */
    CHECK_INT(tls_write(p.c.t, buf, n), ==, 0);
    p.s.got.len = 0;
    pump_chunked(&p, 1000);
    CHECK(p.s.got.len == n && memcmp(p.s.got.p, buf, n) == 0);
    free(buf);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

/* Feeding one byte at a time gives the same handshake and data. */
static void trickle_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    memset(&p, 0, sizeof p);
    p.s.t = tls_new(sc, NULL, q_sink, &p.s.out);
    p.c.t = tls_new(cc, NULL, q_sink, &p.c.out);
    CHECK_INT(tls_handshake(p.c.t), ==, -EAGAIN);
    pump_chunked(&p, 1);
    CHECK(tls_handshake_done(p.s.t) && tls_handshake_done(p.c.t));
    CHECK_INT(tls_write(p.c.t, "<stream>", 8), ==, 0);
    pump_chunked(&p, 1);
    CHECK_SPAN(p.s.got.p, p.s.got.len, "<stream>");
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

/* The borrow rule: a second feed before the first is consumed is refused, tls_keep() lets
 * the caller reuse its buffer. */
static void feed_keep_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK_INT(tls_write(p.c.t, "hello world", 11), ==, 0);
    CHECK_INT(tls_write(p.c.t, "second", 6), ==, 0);
    size_t n = p.c.out.len;
    uint8_t *copy = malloc(n);
    memcpy(copy, p.c.out.p, n);
    p.c.out.len = 0;

    char buf[64];
    CHECK_INT(tls_feed(p.s.t, copy, n), ==, 0);
    CHECK_INT(tls_read(p.s.t, buf, 5), ==, 5); /* first record, part of it */
    CHECK_INT(tls_feed(p.s.t, copy, n), ==, -EBUSY);
    CHECK_INT(tls_keep(p.s.t), ==, 0);
    memset(copy, 0xAA, n); /* the caller's buffer is gone */
    free(copy);
    ssize_t r;
    size_t got = 5;
    while ((r = tls_read(p.s.t, buf + got, sizeof buf - got)) > 0)
        got += (size_t)r;
    CHECK_INT(r, ==, -EAGAIN);
    CHECK_SPAN(buf, got, "hello worldsecond");
    CHECK_INT(tls_feed(p.s.t, "", 0), ==, 0);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void alpn_case(const char *srv, const char *cli, const char *want, bool ok)
{
    struct tls_ctx *sc = server_ctx(srv, 0), *cc = client_ctx(cli, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK_INT(tls_handshake_done(p.s.t), ==, ok);
    CHECK_INT(tls_handshake_done(p.c.t), ==, ok);
    size_t n = 0;
    const char *a = tls_alpn(p.s.t, &n);
    const char *b = tls_alpn(p.c.t, NULL);
    if (ok && want) {
        CHECK(a && b);
        if (a)
            CHECK_SPAN(a, n, want);
    } else {
        CHECK(a == NULL);
        CHECK(b == NULL);
    }
    if (!ok)
        CHECK_INT(p.s.err, ==, -EPROTO);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void alpn_test(void)
{
    alpn_case("xmpp-client", "xmpp-client", "xmpp-client", true);
    alpn_case("xmpp-client,xmpp-server", "xmpp-server", "xmpp-server", true);
    alpn_case("xmpp-client,xmpp-server", "h2,xmpp-server,xmpp-client", "xmpp-client", true);
    alpn_case("xmpp-client", NULL, NULL, true); /* STARTTLS clients send no ALPN */
    alpn_case(NULL, "xmpp-client", NULL, true);
    alpn_case("xmpp-client", "h2,http/1.1", NULL, false);
    alpn_case("xmpp-client", "xmpp-server", NULL, false);
    struct tls_opts o = {.alpn = "a,,b"};
    CHECK(tls_ctx_new_client(&o, NULL, 0) == NULL);
}

static void sni_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, "example.org");
    CHECK(tls_handshake_done(p.s.t));
    const char *sn = tls_server_name(p.s.t);
    CHECK(sn && strcmp(sn, "example.org") == 0);
    CHECK(tls_server_name(p.c.t) == NULL);
    pair_close(&p);
    pair_open(&p, sc, cc, NULL);
    CHECK(tls_server_name(p.s.t) == NULL);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void verify_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0);
    struct tls_ctx *trusting = client_ctx(NULL, 0, crt), *blind = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, trusting, "localhost");
    CHECK(tls_handshake_done(p.c.t));
    CHECK(tls_peer_verified(p.c.t));
    CHECK(!tls_peer_verified(p.s.t)); /* no client certificate */
    pair_close(&p);
    pair_open(&p, sc, trusting, "wrong.example");
    CHECK(tls_handshake_done(p.c.t)); /* never fails the handshake ... */
    CHECK(!tls_peer_verified(p.c.t)); /* ... but says so */
    pair_close(&p);
    pair_open(&p, sc, blind, "localhost");
    CHECK(tls_handshake_done(p.c.t));
    CHECK(!tls_peer_verified(p.c.t));
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(trusting);
    tls_ctx_free(blind);
}

/* ---- RFC 8446 §7.5 exporter, recomputed from the key log ----------------------------- */

static char keylog_lines[8][256];
static int keylog_n;

static void keylog(const char *line)
{
    if (keylog_n < 8)
        snprintf(keylog_lines[keylog_n++], sizeof keylog_lines[0], "%s", line);
}

static void expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
                         const uint8_t *ctx, size_t clen, uint8_t *out, size_t olen)
{
    uint8_t info[512];
    size_t n = 0, ll = strlen(label);
    info[n++] = (uint8_t)(olen >> 8);
    info[n++] = (uint8_t)olen;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = (uint8_t)clen;
    memcpy(info + n, ctx, clen);
    n += clen;
    if (!HKDF_expand(out, olen, md, secret, slen, info, n))
        abort();
}

/* TLS-Exporter("EXPORTER-Channel-Binding", no context, 32) from the EXPORTER_SECRET line. */
static bool exporter_from_keylog(uint8_t out[32])
{
    uint8_t secret[64], empty_hash[64], derived[64];
    size_t slen = 0;
    for (int i = 0; i < keylog_n; i++) {
        char hex[200];
        if (sscanf(keylog_lines[i], "EXPORTER_SECRET %*s %199s", hex) != 1)
            continue;
        for (slen = 0; hex[2 * slen] && slen < sizeof secret; slen++)
            sscanf(hex + 2 * slen, "%2hhx", &secret[slen]);
    }
    if (slen != 32 && slen != 48)
        return false;
    const EVP_MD *md = slen == 32 ? EVP_sha256() : EVP_sha384();
    unsigned hl;
    EVP_Digest("", 0, empty_hash, &hl, md, NULL);
    expand_label(md, secret, slen, "EXPORTER-Channel-Binding", empty_hash, hl, derived, hl);
    expand_label(md, derived, hl, "exporter", empty_hash, hl, out, 32);
    return true;
}

static void exporter_case(uint16_t vmax)
{
    struct tls_opts so = {.cert_file = crt, .key_file = key, .keylog = keylog};
    struct tls_ctx *sc = tls_ctx_new_server(&so, NULL, 0), *cc = client_ctx(NULL, vmax, NULL);
    struct pair p, p2;
    uint8_t a[TLS_EXPORTER_LEN], b[TLS_EXPORTER_LEN], c[TLS_EXPORTER_LEN], zero[32] = {0};

    keylog_n = 0;

    memset(&p, 0, sizeof p);
    p.s.t = tls_new(sc, NULL, q_sink, &p.s.out);
    p.c.t = tls_new(cc, NULL, q_sink, &p.c.out);
    CHECK_INT(tls_cb_exporter(p.s.t, a), ==, -EAGAIN);
    CHECK_INT(tls_handshake(p.c.t), ==, -EAGAIN);
    pump(&p);
    CHECK_INT(tls_cb_exporter(p.s.t, a), ==, 0);
    CHECK_INT(tls_cb_exporter(p.c.t, b), ==, 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, zero, sizeof a) != 0);
    if (vmax == TLS_V13) {
        /* The value RFC 9266 defines, computed here from the exporter secret. */
        uint8_t want[32];
        CHECK(exporter_from_keylog(want));
        CHECK(memcmp(a, want, sizeof a) == 0);
    } else {
        CHECK_INT(keylog_n, ==, 1); /* TLS 1.2: CLIENT_RANDOM only */
    }
    /* Another connection, another value. */
    pair_open(&p2, sc, cc, NULL);
    CHECK_INT(tls_cb_exporter(p2.s.t, c), ==, 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    pair_close(&p2);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void exporter_test(void)
{
    exporter_case(TLS_V13);
    exporter_case(TLS_V12); /* with extended master secret, which BoringSSL always uses */
}

/* Writes a self-signed certificate signed with md (NULL: Ed25519) into path/keypath. */
static void write_cert_md(const char *path, const char *keypath, const EVP_MD *md)
{
    EVP_PKEY *pk = EVP_PKEY_new();
    if (md) {
        EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
        EC_KEY_generate_key(ec);
        EVP_PKEY_assign_EC_KEY(pk, ec);
    } else {
        EVP_PKEY_free(pk);
        pk = NULL;
        EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        EVP_PKEY_keygen_init(kc);
        EVP_PKEY_keygen(kc, &pk);
        EVP_PKEY_CTX_free(kc);
    }
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const uint8_t *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, pk);
    if (!X509_sign(x, pk, md))
        abort();
    BIO *b = BIO_new_file(path, "w");
    PEM_write_bio_X509(b, x);
    BIO_free(b);
    b = BIO_new_file(keypath, "w");
    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(pk);
}

/* The expected RFC 5929 value, computed here independently of tls.c. */
static size_t digest_of(const char *path, const EVP_MD *md, uint8_t *out)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    unsigned n = 0;
    X509_digest(x, md, out, &n);
    X509_free(x);
    BIO_free(b);
    return n;
}

static void end_point_case(const EVP_MD *sign_md, const EVP_MD *want_md)
{
    char c[160], k[160];
    snprintf(c, sizeof c, "%s/ep.crt", dir);
    snprintf(k, sizeof k, "%s/ep.key", dir);
    write_cert_md(c, k, sign_md);
    struct tls_opts so = {.cert_file = c, .key_file = k};
    struct tls_ctx *sc = tls_ctx_new_server(&so, NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    CHECK(sc != NULL);
    if (!sc) {
        tls_ctx_free(cc);
        return;
    }
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK(tls_handshake_done(p.c.t));
    uint8_t a[TLS_END_POINT_MAX], b[TLS_END_POINT_MAX], want[TLS_END_POINT_MAX];
    size_t alen = 0, blen = 0;
    int ra = tls_cb_server_end_point(p.s.t, a, &alen);
    int rb = tls_cb_server_end_point(p.c.t, b, &blen);
    if (!want_md) {
        CHECK_INT(ra, ==, -ENOTSUP);
        CHECK_INT(rb, ==, -ENOTSUP);
    } else {
        size_t wlen = digest_of(c, want_md, want);
        CHECK_INT(ra, ==, 0);
        CHECK_INT(rb, ==, 0);
        CHECK_INT(alen, ==, wlen);
        CHECK_INT(blen, ==, wlen);
        CHECK(alen == wlen && memcmp(a, want, wlen) == 0);
        CHECK(blen == wlen && memcmp(b, want, wlen) == 0);
    }
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void end_point_test(void)
{
    end_point_case(EVP_sha256(), EVP_sha256());
    end_point_case(EVP_sha384(), EVP_sha384());
    end_point_case(EVP_sha512(), EVP_sha512());
    end_point_case(EVP_sha1(), EVP_sha256()); /* RFC 5929 §4.1: SHA-1 -> SHA-256 */
    end_point_case(NULL, NULL);               /* Ed25519: no single hash, undefined */
}

static void garbage_case(const char *bytes, size_t n)
{
    struct tls_ctx *sc = server_ctx("xmpp-client", 0);
    struct q out = {0};
    struct tls *t = tls_new(sc, NULL, q_sink, &out);
    char buf[64];
    CHECK_INT(tls_feed(t, bytes, n), ==, 0);
    CHECK_INT(tls_read(t, buf, sizeof buf), ==, -EPROTO);
    CHECK_INT(tls_read(t, buf, sizeof buf), ==, -EPROTO); /* sticky */
    CHECK_INT(tls_handshake(t), ==, -EPROTO);
    CHECK_INT(tls_write(t, "x", 1), ==, -EPROTO);
    CHECK(!tls_handshake_done(t));
    CHECK_INT(tls_feed(t, bytes, n), ==, 0); /* the failed read ended the borrow */
    tls_free(t);
    q_free(&out);
    tls_ctx_free(sc);
}

static void garbage_test(void)
{
    static const char xml[] = "<?xml version='1.0'?><stream:stream to='example.org' "
                              "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/"
                              "streams' version='1.0'>";
    static const char http[] = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
    /* A handshake record claiming a ClientHello whose body is nonsense. */
    static const char bad_hello[] = "\x16\x03\x01\x00\x10\x01\x00\x00\x0c\x03\x03"
                                    "garbagegar";
    uint8_t rnd[512];
    garbage_case(xml, sizeof xml - 1);
    garbage_case(http, sizeof http - 1);
    garbage_case(bad_hello, sizeof bad_hello - 1);
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)(i * 131 + 17);
    rnd[0] = 0x16, rnd[1] = 3, rnd[2] = 1, rnd[3] = 1, rnd[4] = 0xfb;
    garbage_case((const char *)rnd, sizeof rnd);
    /* Shorter than a record header: judged by the first bytes, not held for more. */
    garbage_case("foo", 3);
    garbage_case("\0", 1);
    garbage_case("\x16\x01", 2);
}

/* ...while the start of a real ClientHello, a byte at a time, waits for the rest. */
static void hello_prefix_test(void)
{
    struct tls_ctx *sc = server_ctx("xmpp-client", 0);
    struct q out = {0};
    char buf[64];
    static const char *const prefixes[] = {"\x16", "\x16\x03", "\x16\x03\x01\x02", "\x80"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        struct tls *t = tls_new(sc, NULL, q_sink, &out);
        for (const char *p = prefixes[i]; *p; p++) {
            CHECK_INT(tls_feed(t, p, 1), ==, 0);
            CHECK_INT(tls_read(t, buf, sizeof buf), ==, -EAGAIN);
        }
        tls_free(t);
    }
    q_free(&out);
    tls_ctx_free(sc);
}

/* A corrupted record after the handshake kills the connection with an alert. */
static void tamper_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK_INT(tls_write(p.c.t, "<message/>", 10), ==, 0);
    p.c.out.p[p.c.out.len - 3] ^= 1;
    deliver(&p.c, &p.s, 0);
    CHECK_INT(p.s.err, ==, -EPROTO);
    CHECK(p.s.out.len > 0); /* the bad_record_mac alert */
    CHECK_INT(p.s.got.len, ==, 0);
    deliver(&p.s, &p.c, 0);
    CHECK_INT(p.c.err, ==, -EPROTO); /* the client read the alert */
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void close_notify_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK_INT(tls_write(p.c.t, "</stream:stream>", 16), ==, 0);
    CHECK_INT(tls_close_notify(p.c.t), ==, 0);
    CHECK_INT(tls_close_notify(p.c.t), ==, 0); /* once */
    CHECK_INT(tls_write(p.c.t, "x", 1), ==, -EPIPE);
    deliver(&p.c, &p.s, 0);
    CHECK_SPAN(p.s.got.p, p.s.got.len, "</stream:stream>");
    CHECK_INT(p.s.eof, ==, 1);
    CHECK_INT(p.s.err, ==, 0);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void early_calls_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0);
    struct q out = {0};
    struct tls *t = tls_new(sc, NULL, q_sink, &out);
    uint8_t cb[TLS_END_POINT_MAX];
    size_t n;
    CHECK(!tls_handshake_done(t));
    CHECK_INT(tls_version(t), ==, 0);
    CHECK_INT(tls_write(t, "x", 1), ==, -EAGAIN);
    CHECK_INT(tls_cb_server_end_point(t, cb, &n), ==, -EAGAIN);
    CHECK_INT(tls_handshake(t), ==, -EAGAIN); /* a server waits for its ClientHello */
    CHECK_INT(out.len, ==, 0);
    CHECK_INT(tls_close_notify(t), ==, 0);
    CHECK_INT(out.len, ==, 0);
    tls_free(t);
    q_free(&out);
    tls_ctx_free(sc);
}

/* A sink that fails is fatal, and its errno comes back. */
static void sink_error_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    p.s.out.fail = -ENOBUFS;
    CHECK_INT(tls_write(p.s.t, "data", 4), ==, -ENOBUFS);
    p.s.out.fail = 0;
    CHECK_INT(tls_write(p.s.t, "data", 4), ==, -ENOBUFS);
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

/*
 * Heap held by established, idle server connections. Measured over many connections (their
 * clients freed) so that what the context allocates once is not counted; each connection has
 * moved data both ways first, so buffers would show if they were kept.
 */
#define MEM_CONNS 1000

static void mem_case(uint16_t vmax, const char *label)
{
    struct tls_ctx *sc = server_ctx("xmpp-client", 0), *cc = client_ctx("xmpp-client", vmax, NULL);
    struct pair *p = calloc(MEM_CONNS, sizeof *p);
    struct pair warm;
    long long before, after, idle1, busy1;

    /* The context's lazily created state (ticket keys) is not a connection's. */
    pair_open(&warm, sc, cc, NULL);
    pair_close(&warm);

    before = live;
    for (int i = 0; i < MEM_CONNS; i++) {
        pair_open(&p[i], sc, cc, "localhost");
        transfer(&p[i], &p[i].c, &p[i].s, 300);
        transfer(&p[i], &p[i].s, &p[i].c, 20000);
        end_close(&p[i].c);
        q_free(&p[i].s.out);
        q_free(&p[i].s.got);
    }
    after = live;
    long long per = (after - before) / MEM_CONNS;
    printf("  idle %s server connection: %lld heap bytes (average of %d)\n", label, per, MEM_CONNS);
    CHECK_INT(per, >, 0); /* the allocation hooks are in use */
    CHECK_INT(per, <=, TLS_IDLE_BUDGET);

    /* One pair: moving 40 kB each way leaves both ends with exactly what they held. */
    struct pair one;
    pair_open(&one, sc, cc, NULL);
    /* Settle first: a TLS 1.3 client frees some handshake leftovers at its first read. */
    transfer(&one, &one.c, &one.s, 10);
    transfer(&one, &one.s, &one.c, 10);
    idle1 = live;
    CHECK(transfer(&one, &one.s, &one.c, 40000));
    CHECK(transfer(&one, &one.c, &one.s, 40000));
    busy1 = live;
    CHECK_INT(busy1, ==, idle1);
    pair_close(&one);

    for (int i = 0; i < MEM_CONNS; i++)
        end_close(&p[i].s);
    CHECK_INT(live, ==, before); /* nothing leaked */
    free(p);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void mem_test(void)
{
    mem_case(TLS_V13, "TLS 1.3");
    mem_case(TLS_V12, "TLS 1.2");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/starling-tls-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(crt, sizeof crt, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    if (tls_selfsigned_write(crt, key, "localhost", 30) != 0) {
        fprintf(stderr, "tls_selfsigned_write failed\n");
        return 1;
    }

    RUN(selfsigned_test);
    RUN(tls13_test);
    RUN(tls12_test);
    RUN(version_mismatch_test);
    RUN(large_write_test);
    RUN(trickle_test);
    RUN(feed_keep_test);
    RUN(alpn_test);
    RUN(sni_test);
    RUN(verify_test);
    RUN(exporter_test);
    RUN(end_point_test);
    RUN(garbage_test);
    RUN(hello_prefix_test);
    RUN(tamper_test);
    RUN(close_notify_test);
    RUN(early_calls_test);
    RUN(sink_error_test);
    RUN(mem_test);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done("tls");
}
