/*
 * Tests of common/auth/tls.c: a server and a client struct tls talk through two in-memory queues
 * (the sinks), pumped until neither has anything to say.
 *
 * Memory is accounted through BoringSSL's allocation hooks (OPENSSL_memory_alloc & co.,
 * defined below, which libcrypto picks up at load time); struct tls comes from
 * OPENSSL_malloc too, so `live` is every heap byte the connections hold.
 */
#include "common/auth/certid.h"
#include "common/auth/tls.h"
#include "test.h"
#include "testcert.h"

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
#include <openssl/mem.h>
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
    CHECK_INT(tls_peer_verify(p.c.t, NULL), ==, TLS_VERIFY_OK);
    CHECK(tls_peer_verified(p.c.t, "localhost"));
    CHECK(!tls_peer_verified(p.c.t, "wrong.example")); /* the chain is fine, the name not */
    CHECK_INT(tls_peer_verify(p.s.t, NULL), ==, TLS_VERIFY_NO_CERT); /* no client certificate */
    CHECK(tls_peer_cert(p.s.t, NULL) == NULL);
    CHECK(!tls_peer_verified(p.s.t, "localhost"));
    pair_close(&p);
    pair_open(&p, sc, trusting, "wrong.example");
    CHECK(tls_handshake_done(p.c.t)); /* SNI does not decide anything */
    CHECK_INT(tls_peer_verify(p.c.t, NULL), ==, TLS_VERIFY_OK);
    pair_close(&p);
    pair_open(&p, sc, blind, "localhost");
    CHECK(tls_handshake_done(p.c.t)); /* never fails the handshake ... */
    const char *why = NULL;
    CHECK_INT(tls_peer_verify(p.c.t, &why), ==, TLS_VERIFY_SELF_SIGNED); /* ... but says so */
    CHECK(why && strstr(why, "self signed"));
    CHECK(!tls_peer_verified(p.c.t, "localhost"));
    size_t n = 0;
    CHECK(tls_peer_cert(p.c.t, &n) != NULL && n > 100);
    CHECK(transfer(&p, &p.c, &p.s, 100));
    pair_close(&p);
    tls_ctx_free(sc);
    tls_ctx_free(trusting);
    tls_ctx_free(blind);
}

/* ---- peer certificates: verdicts, names, client certificates ------------------------- */

static X509 *ca1, *ca2; /* ca1 is what the tests trust, ca2 a stranger */
static EVP_PKEY *ca1_key, *ca2_key;
static char ca1_path[160];

/* A leaf made from spec and signed by issuer (NULL: itself), with `extra` after it in the
 * certificate file, written to dir/name.crt and dir/name.key. */
static void leaf_files(const char *name, const struct testcert_spec *spec, X509 *issuer,
                       EVP_PKEY *issuer_key, X509 *extra, char crt_out[160], char key_out[160])
{
    EVP_PKEY *k = testcert_key();
    X509 *chain[2] = {testcert_make(spec, k, issuer, issuer ? issuer_key : k), extra};
    snprintf(crt_out, 160, "%s/%s.crt", dir, name);
    snprintf(key_out, 160, "%s/%s.key", dir, name);
    testcert_write(crt_out, chain, extra ? 2 : 1);
    testcert_write_key(key_out, k);
    X509_free(chain[0]);
    EVP_PKEY_free(k);
}

/* A server presenting crt/key (with request_cert if `ask`, trusting ca), a client trusting
 * ca that presents ccrt/ckey when they are not NULL; the handshake is run. */
struct peers {
    struct tls_ctx *sc, *cc;
    struct pair p;
};

static bool peers_open(struct peers *x, const char *crt_, const char *key_, const char *ccrt,
                       const char *ckey, bool ask, const char *ca, uint16_t vmax, const char *sni)
{
    struct tls_opts so = {.cert_file = crt_, .key_file = key_, .ca_file = ca, .request_cert = ask};
    struct tls_opts co = {
        .cert_file = ccrt, .key_file = ckey, .ca_file = ca, .alpn = "xmpp-server", .max_version = vmax};
    char err[256];
    memset(x, 0, sizeof *x);
    x->sc = tls_ctx_new_server(&so, err, sizeof err);
    if (!x->sc)
        fprintf(stderr, "server ctx: %s\n", err);
    x->cc = tls_ctx_new_client(&co, err, sizeof err);
    if (!x->cc)
        fprintf(stderr, "client ctx: %s\n", err);
    if (!x->sc || !x->cc) {
        tls_ctx_free(x->sc);
        tls_ctx_free(x->cc);
        return false;
    }
    pair_open(&x->p, x->sc, x->cc, sni);
    return true;
}

static void peers_close(struct peers *x)
{
    pair_close(&x->p);
    tls_ctx_free(x->sc);
    tls_ctx_free(x->cc);
}

/* The client's verdict on a server certificate made from spec. */
static void verdict_case(const char *label, const struct testcert_spec *spec, X509 *issuer,
                         EVP_PKEY *issuer_key, X509 *extra, enum tls_verify want)
{
    char c[160], k[160];
    struct peers x;
    leaf_files("verdict", spec, issuer, issuer_key, extra, c, k);
    if (!peers_open(&x, c, k, NULL, NULL, false, ca1_path, 0, "v.example")) {
        TEST_FAIL("%s: no contexts", label);
        return;
    }
    const char *why = NULL;
    enum tls_verify v = tls_peer_verify(x.p.c.t, &why);
    if (!tls_handshake_done(x.p.c.t) || !tls_handshake_done(x.p.s.t))
        TEST_FAIL("%s: the handshake did not complete", label);
    if (v != want)
        TEST_FAIL("%s: verdict %d, expected %d (%s)", label, v, want, why ? why : "");
    if ((v == TLS_VERIFY_OK) != (why == NULL))
        TEST_FAIL("%s: reason '%s'", label, why ? why : "(none)");
    /* Whatever the verdict, the name is matched all the same, and only both make it. */
    size_t n;
    const uint8_t *der = tls_peer_cert(x.p.c.t, &n);
    CHECK(der && certid_match(der, n, "v.example"));
    CHECK_INT(tls_peer_verified(x.p.c.t, "v.example"), ==, want == TLS_VERIFY_OK);
    CHECK(transfer(&x.p, &x.p.c, &x.p.s, 64)); /* and the session works */
    peers_close(&x);
}

static void verdict_test(void)
{
    const long day = 86400;
    struct testcert_spec ok = {.cn = "v.example", .sans = {"DNS:v.example"}};
    struct testcert_spec expired = ok, future = ok, client_only = ok, no_eku = ok, email = ok;
    expired.not_before = -2 * day, expired.not_after = -day;
    future.not_before = day, future.not_after = 2 * day;
    client_only.eku = "clientAuth";
    no_eku.eku = "";
    email.eku = "emailProtection";

    verdict_case("signed by the trusted CA", &ok, ca1, ca1_key, NULL, TLS_VERIFY_OK);
    verdict_case("expired", &expired, ca1, ca1_key, NULL, TLS_VERIFY_EXPIRED);
    verdict_case("not yet valid", &future, ca1, ca1_key, NULL, TLS_VERIFY_NOT_YET_VALID);
    verdict_case("another CA", &ok, ca2, ca2_key, NULL, TLS_VERIFY_UNTRUSTED);
    verdict_case("another CA, with its certificate", &ok, ca2, ca2_key, ca2, TLS_VERIFY_UNTRUSTED);
    verdict_case("self-signed", &ok, NULL, NULL, NULL, TLS_VERIFY_SELF_SIGNED);
    /* The first problem is the one reported: the missing trust comes before the dates. */
    verdict_case("self-signed and expired", &expired, NULL, NULL, NULL, TLS_VERIFY_SELF_SIGNED);
    verdict_case("another CA and expired", &expired, ca2, ca2_key, NULL, TLS_VERIFY_UNTRUSTED);
    verdict_case("for TLS clients only", &client_only, ca1, ca1_key, NULL, TLS_VERIFY_INVALID);
    verdict_case("for e-mail only", &email, ca1, ca1_key, NULL, TLS_VERIFY_INVALID);
    verdict_case("no extended key usage", &no_eku, ca1, ca1_key, NULL, TLS_VERIFY_OK);

    /* Through an intermediate CA: verified when the server sends it, not otherwise. */
    EVP_PKEY *ik = testcert_key();
    X509 *inter = testcert_make(&(struct testcert_spec){.cn = "intermediate", .ca = true}, ik, ca1,
                                ca1_key);
    verdict_case("through an intermediate", &ok, inter, ik, inter, TLS_VERIFY_OK);
    verdict_case("intermediate not sent", &ok, inter, ik, NULL, TLS_VERIFY_UNTRUSTED);
    X509_free(inter);
    EVP_PKEY_free(ik);
}

/* Every case of the RFC 6125 table, on the certificate the client received. */
static void names_test(void)
{
    char c[160], k[160];
    for (size_t i = 0; i < sizeof testcert_cases / sizeof testcert_cases[0]; i++) {
        const struct testcert_case *tc = &testcert_cases[i];
        struct peers x;
        leaf_files("names", &tc->spec, ca1, ca1_key, NULL, c, k);
        if (!peers_open(&x, c, k, NULL, NULL, false, ca1_path, 0, "names.example")) {
            TEST_FAIL("%s: no contexts", tc->label);
            continue;
        }
        const char *why = NULL;
        if (tls_peer_verify(x.p.c.t, &why) != TLS_VERIFY_OK)
            TEST_FAIL("%s: the chain did not verify: %s", tc->label, why ? why : "");
        for (const struct testcert_id *id = tc->ids; id->domain; id++)
            if (tls_peer_verified(x.p.c.t, id->domain) != id->match)
                TEST_FAIL("%s: %s should %smatch", tc->label, id->domain, id->match ? "" : "not ");
        peers_close(&x);
    }
}

/* An inbound s2s stream: the server asks for a certificate and judges it, never refusing. */
static void client_cert_case(const char *label, const struct testcert_spec *spec, X509 *issuer,
                             EVP_PKEY *issuer_key, uint16_t vmax, enum tls_verify want)
{
    char c[160], k[160], pc[160], pk[160];
    struct peers x;
    leaf_files("server", &(struct testcert_spec){.sans = {"DNS:in.example"}}, ca1, ca1_key, NULL,
               c, k);
    if (spec)
        leaf_files("client", spec, issuer, issuer_key, NULL, pc, pk);
    if (!peers_open(&x, c, k, spec ? pc : NULL, spec ? pk : NULL, true, ca1_path, vmax,
                    "in.example")) {
        TEST_FAIL("%s: no contexts", label);
        return;
    }
    const char *why = NULL;
    if (!tls_handshake_done(x.p.c.t) || !tls_handshake_done(x.p.s.t))
        TEST_FAIL("%s: the handshake did not complete", label);
    enum tls_verify v = tls_peer_verify(x.p.s.t, &why);
    if (v != want)
        TEST_FAIL("%s: verdict %d, expected %d (%s)", label, v, want, why ? why : "");
    CHECK_INT(tls_peer_verified(x.p.s.t, "out.example"), ==, want == TLS_VERIFY_OK);
    CHECK(!tls_peer_verified(x.p.s.t, "in.example"));
    CHECK(tls_peer_verified(x.p.c.t, "in.example")); /* and the other way round */
    size_t alen = 0;
    const char *alpn = tls_alpn(x.p.c.t, &alen);
    CHECK(alpn == NULL); /* the server has no ALPN list: none selected, none refused */
    CHECK(transfer(&x.p, &x.p.s, &x.p.c, 64));
    peers_close(&x);
}

static void client_cert_test(void)
{
    const long day = 86400;
    struct testcert_spec peer = {.sans = {"DNS:out.example", "XMPP:out.example"}};
    struct testcert_spec server_only = peer, client_only = peer, email = peer, expired = peer;
    server_only.eku = "serverAuth";
    client_only.eku = "clientAuth";
    email.eku = "emailProtection";
    expired.not_before = -2 * day, expired.not_after = -day;

    client_cert_case("none", NULL, NULL, NULL, 0, TLS_VERIFY_NO_CERT);
    client_cert_case("server and client", &peer, ca1, ca1_key, 0, TLS_VERIFY_OK);
    client_cert_case("server and client, TLS 1.2", &peer, ca1, ca1_key, TLS_V12, TLS_VERIFY_OK);
    client_cert_case("server only (new public CAs)", &server_only, ca1, ca1_key, 0, TLS_VERIFY_OK);
    client_cert_case("server only, TLS 1.2", &server_only, ca1, ca1_key, TLS_V12, TLS_VERIFY_OK);
    client_cert_case("client only", &client_only, ca1, ca1_key, 0, TLS_VERIFY_OK);
    client_cert_case("e-mail only", &email, ca1, ca1_key, 0, TLS_VERIFY_INVALID);
    client_cert_case("expired", &expired, ca1, ca1_key, 0, TLS_VERIFY_EXPIRED);
    client_cert_case("another CA", &peer, ca2, ca2_key, 0, TLS_VERIFY_UNTRUSTED);
    client_cert_case("self-signed", &peer, NULL, NULL, TLS_V12, TLS_VERIFY_SELF_SIGNED);

    /* A server that does not ask gets none, even from a client that has one. */
    char c[160], k[160], pc[160], pk[160];
    struct peers x;
    leaf_files("server", &(struct testcert_spec){.sans = {"DNS:in.example"}}, ca1, ca1_key, NULL,
               c, k);
    leaf_files("client", &peer, ca1, ca1_key, NULL, pc, pk);
    if (peers_open(&x, c, k, pc, pk, false, ca1_path, 0, NULL)) {
        CHECK(tls_handshake_done(x.p.s.t));
        CHECK_INT(tls_peer_verify(x.p.s.t, NULL), ==, TLS_VERIFY_NO_CERT);
        peers_close(&x);
    }
}

/* Bytes a TLS 1.3 server writes with its first record of one byte (23 of its own): its
 * session tickets go out with it, if it issues any (BoringSSL defers them until then). */
static size_t first_write(struct tls_ctx *sc, struct tls_ctx *cc)
{
    struct pair p;
    pair_open(&p, sc, cc, NULL);
    CHECK(tls_handshake_done(p.s.t));
    CHECK_INT(p.s.out.len, ==, 0);
    CHECK_INT(tls_write(p.s.t, "x", 1), ==, 0);
    size_t n = p.s.out.len;
    pair_close(&p);
    return n;
}

/* A server that asks for certificates issues no tickets: resuming would skip the check of
 * the certificate. c2s's servers do issue one. */
static void no_ticket_test(void)
{
    char c[160], k[160];
    leaf_files("ticket", &(struct testcert_spec){.sans = {"DNS:in.example"}}, ca1, ca1_key, NULL,
               c, k);
    struct tls_opts so = {.cert_file = c, .key_file = k, .ca_file = ca1_path, .request_cert = true};
    struct tls_ctx *s2s = tls_ctx_new_server(&so, NULL, 0), *c2s = server_ctx(NULL, 0);
    struct tls_ctx *cc = client_ctx(NULL, TLS_V13, NULL);
    CHECK_INT(first_write(s2s, cc), ==, 23);
    CHECK_INT(first_write(c2s, cc), >, 23 + 100);
    tls_ctx_free(s2s);
    tls_ctx_free(c2s);
    tls_ctx_free(cc);
}

/* SNI is the domain in A-labels without its trailing dot, and nothing for an IP literal. */
static void sni_case(struct tls_ctx *sc, struct tls_ctx *cc, const char *name, const char *want)
{
    struct pair p;
    pair_open(&p, sc, cc, name);
    CHECK(tls_handshake_done(p.s.t));
    const char *sn = tls_server_name(p.s.t);
    if (want ? !sn || strcmp(sn, want) : sn != NULL)
        TEST_FAIL("SNI for %s is %s, expected %s", name, sn ? sn : "none", want ? want : "none");
    pair_close(&p);
}

static void sni_forms_test(void)
{
    struct tls_ctx *sc = server_ctx(NULL, 0), *cc = client_ctx(NULL, 0, NULL);
    sni_case(sc, cc, "b\xc3\xbc" "cher.example", "xn--bcher-kva.example");
    sni_case(sc, cc, "example.org.", "example.org");
    sni_case(sc, cc, "127.0.0.1", NULL);
    sni_case(sc, cc, "::1", NULL);
    sni_case(sc, cc, "[::1]", NULL);
    struct q out = {0};
    CHECK(tls_new(cc, "\xff.example", q_sink, &out) == NULL); /* not UTF-8 */
    CHECK(tls_new(cc, ".", q_sink, &out) == NULL);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

/* Trust roots from the system bundle, from a hashed directory, or from nowhere. */
static void trust_store_test(void)
{
    char c[160], k[160], hashed[160], link[200], err[256];
    struct tls_opts o = {.ca_file = TLS_SYSTEM_CA_FILE};
    struct tls_ctx *sc, *cc;
    struct pair p;

    leaf_files("store", &(struct testcert_spec){.sans = {"DNS:v.example"}}, ca1, ca1_key, NULL, c,
               k);
    struct tls_opts so = {.cert_file = c, .key_file = k};
    sc = tls_ctx_new_server(&so, NULL, 0);
    if (access(TLS_SYSTEM_CA_FILE, R_OK) == 0) {
        long long before = live;
        cc = tls_ctx_new_client(&o, err, sizeof err);
        CHECK(cc != NULL);
        printf("  a client context with %s: %lld heap bytes\n", TLS_SYSTEM_CA_FILE, live - before);
        pair_open(&p, sc, cc, "v.example");
        CHECK_INT(tls_peer_verify(p.c.t, NULL), ==, TLS_VERIFY_UNTRUSTED); /* not our test CA */
        pair_close(&p);
        tls_ctx_free(cc);
    }

    /* A directory of roots by subject hash, the layout of /etc/ssl/certs. */
    snprintf(hashed, sizeof hashed, "%s/roots", dir);
    CHECK_INT(mkdir(hashed, 0700), ==, 0);
    snprintf(link, sizeof link, "%s/%08lx.0", hashed,
             (unsigned long)X509_NAME_hash(X509_get_subject_name(ca1)));
    testcert_write(link, &ca1, 1);
    o = (struct tls_opts){.ca_dir = hashed};
    cc = tls_ctx_new_client(&o, err, sizeof err);
    CHECK(cc != NULL);
    pair_open(&p, sc, cc, "v.example");
    CHECK_INT(tls_peer_verify(p.c.t, NULL), ==, TLS_VERIFY_OK);
    pair_close(&p);
    tls_ctx_free(cc);

    /* "" is none, as the config writes it: nothing verifies. */
    o = (struct tls_opts){.ca_file = "", .ca_dir = ""};
    cc = tls_ctx_new_client(&o, err, sizeof err);
    CHECK(cc != NULL);
    pair_open(&p, sc, cc, "v.example");
    CHECK(tls_handshake_done(p.c.t));
    CHECK_INT(tls_peer_verify(p.c.t, NULL), ==, TLS_VERIFY_UNTRUSTED);
    pair_close(&p);
    tls_ctx_free(cc);

    o = (struct tls_opts){.ca_file = "/nonexistent/ca.pem"};
    CHECK(tls_ctx_new_client(&o, err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
    tls_ctx_free(sc);
}

/* tls_cert_write() and tls_ca_write(): a CA and two servers it certifies trust each other,
 * and the names asked for are the names presented. */
static int names_of(void *ud, enum certid_kind kind, const char *name)
{
    char *text = ud;
    size_t used = strlen(text);
    snprintf(text + used, 512 - used, "%s:%s ", certid_kind_name(kind), name);
    return 0;
}

static void cert_write_test(void)
{
    char cac[160], cak[160], ac[160], ak[160], bc[160], bk[160], names[512] = "";
    snprintf(cac, sizeof cac, "%s/gen-ca.crt", dir);
    snprintf(cak, sizeof cak, "%s/gen-ca.key", dir);
    snprintf(ac, sizeof ac, "%s/gen-a.crt", dir);
    snprintf(ak, sizeof ak, "%s/gen-a.key", dir);
    snprintf(bc, sizeof bc, "%s/gen-b.crt", dir);
    snprintf(bk, sizeof bk, "%s/gen-b.key", dir);
    CHECK_INT(tls_ca_write(cac, cak, "starling test CA", 10), ==, 0);
    const char *a_sans[] = {"DNS:a.example", "DNS:*.a.example", "SRV:_xmpp-server.a.example",
                            "XMPP:a.example", NULL};
    struct tls_cert_spec a = {.name = "a.example", .sans = a_sans, .days = 10, .ca_cert = cac,
                              .ca_key = cak};
    struct tls_cert_spec b = {.name = "b.example", .days = 10, .ca_cert = cac, .ca_key = cak};
    CHECK_INT(tls_cert_write(ac, ak, &a), ==, 0);
    CHECK_INT(tls_cert_write(bc, bk, &b), ==, 0);

    struct peers x;
    if (peers_open(&x, ac, ak, bc, bk, true, cac, 0, "a.example")) {
        CHECK(tls_peer_verified(x.p.c.t, "a.example"));
        CHECK(tls_peer_verified(x.p.c.t, "muc.a.example"));
        CHECK(tls_peer_verified(x.p.s.t, "b.example"));
        CHECK(!tls_peer_verified(x.p.s.t, "a.example"));
        size_t n;
        const uint8_t *der = tls_peer_cert(x.p.c.t, &n);
        CHECK_INT(certid_each(der, n, names_of, names), ==, 4);
        CHECK_STR(names, "DNS:a.example DNS:*.a.example SRV:_xmpp-server.a.example "
                         "XmppAddr:a.example ");
        peers_close(&x);
    }

    /* The CA certificate is a CA, and only that. */
    BIO *bio = BIO_new_file(cac, "r");
    X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    CHECK(ca && X509_check_ca(ca) == 1);
    CHECK(ca && X509_get_pathlen(ca) == 0);
    X509_free(ca);

    /* Refused specs. */
    const char *bad1[] = {"URI:xmpp:a.example", NULL}, *bad2[] = {"XMPP:user@a.example", NULL};
    const char *bad3[] = {"DNS:a b.example", NULL}, *bad4[] = {"SRV:xmpp-server.a.example", NULL};
    const char *const *bads[] = {bad1, bad2, bad3, bad4};
    for (size_t i = 0; i < 4; i++) {
        struct tls_cert_spec s = {.name = "a.example", .sans = bads[i], .days = 1};
        CHECK_INT(tls_cert_write(ac, ak, &s), ==, -EINVAL);
    }
    struct tls_cert_spec mismatch = {.name = "a.example", .days = 1, .ca_cert = cac, .ca_key = ak};
    CHECK_INT(tls_cert_write(bc, bk, &mismatch), ==, -EINVAL);
    struct tls_cert_spec missing = {
        .name = "a.example", .days = 1, .ca_cert = "/nonexistent/ca.crt", .ca_key = cak};
    CHECK_INT(tls_cert_write(bc, bk, &missing), ==, -ENOENT);
    struct tls_cert_spec half = {.name = "a.example", .days = 1, .ca_cert = cac};
    CHECK_INT(tls_cert_write(bc, bk, &half), ==, -EINVAL);
    CHECK_INT(tls_ca_write(cac, cak, "tab\there", 1), ==, -EINVAL);
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

/* Average heap bytes held by n established, idle connections of sc and cc: their client
 * ends (keep_client) or their server ends, the other ends freed. */
static long long idle_bytes(struct tls_ctx *sc, struct tls_ctx *cc, bool keep_client, int n)
{
    struct pair *p = calloc((size_t)n, sizeof *p);
    struct pair warm;

    /* The context's lazily created state (ticket keys) is not a connection's. */
    pair_open(&warm, sc, cc, NULL);
    pair_close(&warm);

    long long before = live;
    for (int i = 0; i < n; i++) {
        struct end *kept = keep_client ? &p[i].c : &p[i].s;
        pair_open(&p[i], sc, cc, "localhost");
        transfer(&p[i], &p[i].c, &p[i].s, 300);
        transfer(&p[i], &p[i].s, &p[i].c, 20000);
        end_close(keep_client ? &p[i].s : &p[i].c);
        q_free(&kept->out);
        q_free(&kept->got);
    }
    long long per = (live - before) / n;
    for (int i = 0; i < n; i++)
        end_close(keep_client ? &p[i].c : &p[i].s);
    CHECK_INT(live, ==, before); /* nothing leaked */
    free(p);
    return per;
}

static void mem_case(uint16_t vmax, const char *label)
{
    struct tls_ctx *sc = server_ctx("xmpp-client", 0), *cc = client_ctx("xmpp-client", vmax, NULL);
    long long idle1, busy1;

    long long per = idle_bytes(sc, cc, false, MEM_CONNS);
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
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

static void mem_test(void)
{
    mem_case(TLS_V13, "TLS 1.3");
    mem_case(TLS_V12, "TLS 1.2");
}

/*
 * What s2s connections cost, both verifying the peer's chain and keeping it: the outbound
 * (client) end and the inbound (server) end that asked for a certificate. Printed
 * for tls.h's figures; the bound catches a buffer or a handshake structure kept by mistake
 * (each is 4 KiB or more), not a few bytes.
 */
#define MEM_S2S_CONNS 200
#define S2S_IDLE_BOUND (TLS_IDLE_BUDGET + 8192)

static void s2s_mem_test(void)
{
    char c[160], k[160];
    /* A chain of two, as public CAs give: the leaf and an intermediate. */
    EVP_PKEY *ik = testcert_key();
    X509 *inter = testcert_make(&(struct testcert_spec){.cn = "intermediate", .ca = true}, ik, ca1,
                                ca1_key);
    leaf_files("mem", &(struct testcert_spec){.sans = {"DNS:localhost"}}, inter, ik, inter, c, k);
    X509_free(inter);
    EVP_PKEY_free(ik);
    struct tls_opts so = {.cert_file = c, .key_file = k, .ca_file = ca1_path, .request_cert = true,
                          .alpn = "xmpp-server"};
    for (int v = 0; v < 2; v++) {
        uint16_t vmax = v ? TLS_V12 : TLS_V13;
        struct tls_opts co = {.cert_file = c, .key_file = k, .ca_file = ca1_path,
                              .alpn = "xmpp-server", .max_version = vmax};
        struct tls_ctx *sc = tls_ctx_new_server(&so, NULL, 0), *cc = tls_ctx_new_client(&co, NULL, 0);
        long long out = idle_bytes(sc, cc, true, MEM_S2S_CONNS);
        long long in = idle_bytes(sc, cc, false, MEM_S2S_CONNS);
        printf("  idle %s s2s connection with a verified peer certificate: outbound %lld, "
               "inbound %lld heap bytes\n", v ? "TLS 1.2" : "TLS 1.3", out, in);
        CHECK_INT(out, <=, S2S_IDLE_BOUND);
        CHECK_INT(in, <=, S2S_IDLE_BOUND);
        tls_ctx_free(sc);
        tls_ctx_free(cc);
    }
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
    ca1_key = testcert_key();
    ca2_key = testcert_key();
    ca1 = testcert_make(&(struct testcert_spec){.cn = "starling test CA 1", .ca = true}, ca1_key,
                        NULL, ca1_key);
    ca2 = testcert_make(&(struct testcert_spec){.cn = "starling test CA 2", .ca = true}, ca2_key,
                        NULL, ca2_key);
    snprintf(ca1_path, sizeof ca1_path, "%s/ca1.crt", dir);
    testcert_write(ca1_path, &ca1, 1);

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
    RUN(verdict_test);
    RUN(names_test);
    RUN(client_cert_test);
    RUN(no_ticket_test);
    RUN(sni_forms_test);
    RUN(trust_store_test);
    RUN(cert_write_test);
    RUN(exporter_test);
    RUN(end_point_test);
    RUN(garbage_test);
    RUN(hello_prefix_test);
    RUN(tamper_test);
    RUN(close_notify_test);
    RUN(early_calls_test);
    RUN(sink_error_test);
    RUN(mem_test);
    RUN(s2s_mem_test);

    X509_free(ca1);
    X509_free(ca2);
    EVP_PKEY_free(ca1_key);
    EVP_PKEY_free(ca2_key);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done("tls");
}
