/*
 * Tests of common/auth/sasl.c: the RFC 5802 §5 and RFC 7677 §3 exchanges byte for byte (server
 * nonce fixed with sasl_test_nonce(), salt from the credentials), -PLUS exchanges with
 * channel-binding data from a real in-memory TLS connection, and every way a client can get
 * it wrong. The client side is played here with scram.h's primitives.
 */
#include "common/auth/sasl.h"
#include "common/auth/tls.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/base64.h>

#define DOMAIN "example.org"

static struct sasl_config cfg = {.domain = DOMAIN, .fake_iterations = 4096};
static struct sasl_config cfg_plain = {
    .domain = DOMAIN,
    .mechs = SASL_MECH_BIT(SASL_PLAIN) | SASL_MECH_BIT(SASL_SCRAM_SHA256) |
             SASL_MECH_BIT(SASL_SCRAM_SHA256_PLUS),
};
static const struct sasl_tls no_tls = {0};
static struct sasl_tls tls_server_side, tls_client_side, tls_other; /* from real TLS 1.3 */
static struct sasl_tls tls12_server_side, tls12_client_side;         /* and TLS 1.2 */
static struct scram_creds pencil1, pencil256; /* "user"/"pencil", the RFCs' salts */

/* ---- helpers --------------------------------------------------------------------------- */

static char *b64(const void *p, size_t n)
{
    static char out[4][4096]; /* a few live at once */
    static int next;
    char *o = out[next++ % 4];
    EVP_EncodeBlock((uint8_t *)o, p, n);
    return o;
}

static char *b64s(const char *s)
{
    return b64(s, strlen(s));
}

/* Decoded event text, NUL-terminated. */
static const char *text_of(const struct sasl_event *ev)
{
    static char out[4096];
    size_t n = 0;
    if (ev->len == 1 && ev->text[0] == '=')
        n = 0;
    else if (!EVP_DecodeBase64((uint8_t *)out, &n, sizeof out - 1, (const uint8_t *)ev->text,
                               ev->len))
        return "<bad base64>";
    out[n] = 0;
    return out;
}

static struct sasl *new_sasl(const struct sasl_config *c, const struct sasl_tls *t)
{
    struct sasl *s = malloc(sizeof *s);
    sasl_init(s, c, t);
    return s;
}

static void free_sasl(struct sasl *s)
{
    sasl_wipe(s);
    free(s);
}

static enum sasl_ev start(struct sasl *s, const char *mech, const char *msg, struct sasl_event *ev)
{
    const char *t = msg ? b64s(msg) : "";
    return sasl_start(s, mech, strlen(mech), t, strlen(t), ev);
}

static enum sasl_ev step(struct sasl *s, const char *msg, struct sasl_event *ev)
{
    const char *t = b64s(msg);
    return sasl_step(s, t, strlen(t), ev);
}

#define CHECK_FAIL(s_, ev_, r_, cond_)                                                             \
    do {                                                                                           \
        CHECK_INT((r_), ==, SASL_EV_FAILURE);                                                      \
        CHECK_INT((ev_).kind, ==, SASL_EV_FAILURE);                                                \
        CHECK_STR(sasl_cond_name((ev_).cond), sasl_cond_name(cond_));                              \
        (void)(s_);                                                                                \
    } while (0)

/*
 * The client's half of SCRAM: from its first message and the server-first, the final
 * message for password and binding data cb (gs2 header + cb), or NULL if server-first is
 * not well formed.
 */
static const char *client_final(enum scram_hash h, const char *password, const char *first,
                                const char *sfirst, const void *cbind, size_t cbind_len,
                                const char *nonce_override, char *server_sig_b64)
{
    static char out[4096];
    char r[1024], sb64[256], fwp[2048], am[8192];
    uint8_t salt[128], salted[SCRAM_KEY_MAX], ck[SCRAM_KEY_MAX], sk[SCRAM_KEY_MAX],
        sig[SCRAM_KEY_MAX], svk[SCRAM_KEY_MAX], proof[SCRAM_KEY_MAX];
    size_t sl, hl = scram_hash_len(h);
    unsigned it;
    const char *bare = strstr(first, "n=");

    if (sscanf(sfirst, "r=%1023[^,],s=%255[^,],i=%u", r, sb64, &it) != 3 ||
        !EVP_DecodeBase64(salt, &sl, sizeof salt, (uint8_t *)sb64, strlen(sb64)))
        return NULL;
    if (scram_salted_password(h, password, strlen(password), salt, sl, it, salted) < 0)
        return NULL;
    scram_hmac(h, salted, hl, "Client Key", 10, ck);
    scram_digest(h, ck, hl, sk);
    snprintf(fwp, sizeof fwp, "c=%s,r=%s", b64(cbind, cbind_len),
             nonce_override ? nonce_override : r);
    snprintf(am, sizeof am, "%s,%s,%s", bare, sfirst, fwp);
    scram_hmac(h, sk, hl, am, strlen(am), sig);
    for (size_t i = 0; i < hl; i++)
        proof[i] = ck[i] ^ sig[i];
    scram_hmac(h, salted, hl, "Server Key", 10, svk);
    scram_hmac(h, svk, hl, am, strlen(am), sig);
    if (server_sig_b64)
        snprintf(server_sig_b64, 128, "v=%s", b64(sig, hl));
    snprintf(out, sizeof out, "%s,p=%s", fwp, b64(proof, hl));
    return out;
}

static char last_user[SASL_USER_MAX]; /* who the last scram_run() authenticated */

/*
 * A whole SCRAM exchange: mech, the client-first message (gs2 header included), the
 * credentials the store returns (NULL: no such user), the client's password and binding
 * data. Returns the final event; *ev holds it.
 */
static enum sasl_ev scram_run(const struct sasl_config *c, const struct sasl_tls *t,
                              const char *mech, const char *first, const struct scram_creds *cr,
                              const char *password, const void *cbdata, size_t cbdata_len,
                              struct sasl_event *ev)
{
    struct sasl *s = new_sasl(c, t);
    enum sasl_ev r = start(s, mech, first, ev);
    enum scram_hash h = strstr(mech, "SHA-1") ? SCRAM_SHA1 : SCRAM_SHA256;
    char vwant[128];
    uint8_t cbind[1024];
    size_t gs2 = (size_t)(strstr(first, "n=") - first);

    if (r != SASL_EV_NEED_CREDS)
        goto out;
    CHECK_INT(ev->hash, ==, h);
    r = sasl_creds(s, cr, ev);
    if (r != SASL_EV_CHALLENGE)
        goto out;
    memcpy(cbind, first, gs2);
    if (cbdata_len)
        memcpy(cbind + gs2, cbdata, cbdata_len);
    const char *fin =
        client_final(h, password, first, text_of(ev), cbind, gs2 + cbdata_len, NULL, vwant);
    CHECK(fin != NULL);
    if (!fin)
        goto out;
    r = step(s, fin, ev);
    if (r == SASL_EV_SUCCESS) {
        CHECK_STR(text_of(ev), vwant); /* the server proves it knows ServerKey */
        snprintf(last_user, sizeof last_user, "%s", ev->user);
    }
out:
    ev->user = ev->text = NULL; /* they pointed into s */
    free_sasl(s);
    return r;
}

/* ---- the RFC examples ------------------------------------------------------------------ */

static void rfc_case(const char *mech, const struct scram_creds *cr, const char *cfirst,
                     const char *snonce, const char *sfirst, const char *cfinal, const char *sfinal)
{
    struct sasl *s = new_sasl(&cfg, &no_tls);
    struct sasl_event ev;

    sasl_test_nonce(s, snonce);
    CHECK_INT(start(s, mech, cfirst, &ev), ==, SASL_EV_NEED_CREDS);
    CHECK_STR(ev.user, "user");
    CHECK_INT(sasl_creds(s, cr, &ev), ==, SASL_EV_CHALLENGE);
    CHECK_STR(text_of(&ev), sfirst);
    CHECK_SPAN(ev.text, ev.len, b64s(sfirst)); /* exactly what goes on the wire */
    CHECK_INT(step(s, cfinal, &ev), ==, SASL_EV_SUCCESS);
    CHECK_STR(text_of(&ev), sfinal);
    CHECK_STR(ev.user, "user");
    free_sasl(s);
}

static void rfc5802_test(void)
{
    rfc_case("SCRAM-SHA-1", &pencil1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
             "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
             "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
             "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void rfc7677_test(void)
{
    rfc_case("SCRAM-SHA-256", &pencil256, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
             "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
             "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
             "i=4096",
             "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
             "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
             "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* The RFC 5802 client-final with one thing changed at a time. */
static void rfc5802_variant(const char *cfinal, enum sasl_cond cond)
{
    struct sasl *s = new_sasl(&cfg, &no_tls);
    struct sasl_event ev;
    sasl_test_nonce(s, "3rfcNHYJY1ZVvWVs7j");
    start(s, "SCRAM-SHA-1", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", &ev);
    sasl_creds(s, &pencil1, &ev);
    enum sasl_ev r = step(s, cfinal, &ev);
    CHECK_FAIL(s, ev, r, cond);
    free_sasl(s);
}

static void final_errors_test(void)
{
    /* wrong proof (one bit) */
    rfc5802_variant("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                    "p=w0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_NOT_AUTHORIZED);
    /* nonce: only the client's half, one character changed, one added */
    rfc5802_variant("c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_NOT_AUTHORIZED);
    rfc5802_variant("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7J,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_NOT_AUTHORIZED);
    rfc5802_variant("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7jx,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_NOT_AUTHORIZED);
    /* c= not our gs2 header ("y,," instead of "n,,") */
    rfc5802_variant("c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_NOT_AUTHORIZED);
    /* syntax: no proof, proof not last, proof too short, attributes out of order */
    rfc5802_variant("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j", SASL_MALFORMED_REQUEST);
    rfc5802_variant("c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVv"
                    "WVs7j",
                    SASL_MALFORMED_REQUEST);
    rfc5802_variant("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJ",
                    SASL_MALFORMED_REQUEST);
    rfc5802_variant("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,c=biws,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_MALFORMED_REQUEST);
    rfc5802_variant("c=b!ws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                    SASL_MALFORMED_REQUEST);
    rfc5802_variant("", SASL_MALFORMED_REQUEST);
}

/* A client that signs a nonce other than ours, correctly: only the nonce check stops it. */
static void nonce_test(void)
{
    static const char *const wrong[] = {"abcdefgh", "abcdefghX", NULL};
    for (int i = 0; i < 3; i++) {
        struct sasl *s = new_sasl(&cfg, &no_tls);
        struct sasl_event ev;
        const char *first = "n,,n=user,r=abcdefgh";
        start(s, "SCRAM-SHA-256", first, &ev);
        sasl_creds(s, &pencil256, &ev);
        char sfirst[1024], nonce[300];
        snprintf(sfirst, sizeof sfirst, "%s", text_of(&ev));
        sscanf(sfirst, "r=%255[^,]", nonce);
        if (i == 2)
            nonce[strlen(nonce) - 1] ^= 1; /* ours with its last character changed */
        const char *n = wrong[i] ? wrong[i] : nonce;
        const char *fin = client_final(SCRAM_SHA256, "pencil", first, sfirst, "n,,", 3, n, NULL);
        enum sasl_ev r = step(s, fin, &ev);
        CHECK_FAIL(s, ev, r, SASL_NOT_AUTHORIZED);
        free_sasl(s);
    }
}

/* An extension between nonce and proof is covered by the proof and otherwise ignored. */
static void final_extension_test(void)
{
    struct sasl *s = new_sasl(&cfg, &no_tls);
    struct sasl_event ev;
    const char *first = "n,,n=user,r=abcdefgh";
    char cb[8] = "n,,";
    start(s, "SCRAM-SHA-256", first, &ev);
    sasl_creds(s, &pencil256, &ev);
    char sfirst[1024];
    snprintf(sfirst, sizeof sfirst, "%s", text_of(&ev));
    char nonce[256];
    sscanf(sfirst, "r=%255[^,]", nonce);
    char withext[300];
    snprintf(withext, sizeof withext, "%s,x=whatever", nonce);
    /* client_final puts the override after r=, so the extension is part of what is signed */
    const char *fin = client_final(SCRAM_SHA256, "pencil", first, sfirst, cb, 3, withext, NULL);
    CHECK_INT(step(s, fin, &ev), ==, SASL_EV_SUCCESS);
    free_sasl(s);
}

/* ---- the client-first message ----------------------------------------------------------- */

static void first_case(const struct sasl_config *c, const struct sasl_tls *t, const char *mech,
                       const char *first, enum sasl_cond cond, const char *user)
{
    struct sasl *s = new_sasl(c, t);
    struct sasl_event ev;
    enum sasl_ev r = start(s, mech, first, &ev);
    if (cond == SASL_COND_NONE) {
        CHECK_INT(r, ==, SASL_EV_NEED_CREDS);
        if (r == SASL_EV_NEED_CREDS)
            CHECK_STR(ev.user, user);
    } else {
        if (r != SASL_EV_FAILURE || ev.cond != cond)
            TEST_FAIL("%s '%s': event %d cond %s, expected %s", mech, first, r,
                      r == SASL_EV_FAILURE ? sasl_cond_name(ev.cond) : "-", sasl_cond_name(cond));
    }
    free_sasl(s);
}

static void first_syntax_test(void)
{
    const struct sasl_config *c = &cfg;
    const struct sasl_tls *t = &no_tls;
    const char *m = "SCRAM-SHA-256";
    first_case(c, t, m, "n,,n=user,r=abc", SASL_COND_NONE, "user");
    first_case(c, t, m, "n,,n=USER,r=abc", SASL_COND_NONE, "user"); /* nodeprep */
    first_case(c, t, m, "n,,n=user,r=abc,x=ext", SASL_COND_NONE, "user");
    /* escapes: ',' and '=' in a name (RFC 5802 §5.1) */
    first_case(c, t, m, "n,,n=a=2Cb,r=abc", SASL_COND_NONE, "a,b");
    first_case(c, t, m, "n,,n=a=3Db,r=abc", SASL_COND_NONE, "a=b");
    first_case(c, t, m, "n,,n==3D=2C,r=abc", SASL_COND_NONE, "=,");
    first_case(c, t, m, "n,,n=a=2cb,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=a=41b,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=ab=,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=ab=2,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=a=b,r=abc", SASL_MALFORMED_REQUEST, NULL);
    /* mandatory extension */
    first_case(c, t, m, "n,,m=foo,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);
    /* structure */
    first_case(c, t, m, "n,,n=,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=user,r=", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=user", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,r=abc,n=user", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "x,,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "F,n,,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=user,r=ab c", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=user,r=abc,", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=user,r=abc,1=x", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m, "n,,n=user,r=abc,xy", SASL_MALFORMED_REQUEST, NULL);
    first_case(c, t, m,
               "n,,n=us\x01"
               "er,r=abc",
               SASL_NOT_AUTHORIZED, NULL);
    /* names nodeprep rejects cannot be accounts */
    first_case(c, t, m, "n,,n=us@er,r=abc", SASL_NOT_AUTHORIZED, NULL);
    first_case(c, t, m, "n,,n=a b,r=abc", SASL_NOT_AUTHORIZED, NULL);
    first_case(c, t, m, "n,,n=\xff,r=abc", SASL_NOT_AUTHORIZED, NULL);
    /* a NUL anywhere */
    struct sasl *s = new_sasl(c, t);
    struct sasl_event ev;
    const char *nul = b64("n,,n=u\0er,r=abc", 15);
    enum sasl_ev r = sasl_start(s, m, strlen(m), nul, strlen(nul), &ev);
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);
}

static void authzid_test(void)
{
    const char *m = "SCRAM-SHA-1";
    first_case(&cfg, &no_tls, m, "n,a=user@example.org,n=user,r=abc", SASL_COND_NONE, "user");
    first_case(&cfg, &no_tls, m, "n,a=USER@Example.ORG.,n=user,r=abc", SASL_COND_NONE, "user");
    first_case(&cfg, &no_tls, m, "n,a=other@example.org,n=user,r=abc", SASL_INVALID_AUTHZID, NULL);
    first_case(&cfg, &no_tls, m, "n,a=user@example.com,n=user,r=abc", SASL_INVALID_AUTHZID, NULL);
    first_case(&cfg, &no_tls, m, "n,a=user@example.org/res,n=user,r=abc", SASL_INVALID_AUTHZID,
               NULL);
    first_case(&cfg, &no_tls, m, "n,a=example.org,n=user,r=abc", SASL_INVALID_AUTHZID, NULL);
    first_case(&cfg, &no_tls, m, "n,a=user,n=user,r=abc", SASL_INVALID_AUTHZID, NULL);
    first_case(&cfg, &no_tls, m, "n,a=@example.org,n=user,r=abc", SASL_INVALID_AUTHZID, NULL);
    first_case(&cfg, &no_tls, m, "n,a=user@,n=user,r=abc", SASL_INVALID_AUTHZID, NULL);
    first_case(&cfg, &no_tls, m, "n,a=a=2Cb@example.org,n=a=2Cb,r=abc", SASL_COND_NONE, "a,b");
    first_case(&cfg, &no_tls, m, "n,a=us=er@example.org,n=user,r=abc", SASL_MALFORMED_REQUEST,
               NULL);

    /* And the authzid really is authenticated along: a full exchange with one. */
    struct sasl_event ev;
    CHECK_INT(scram_run(&cfg, &no_tls, "SCRAM-SHA-256", "n,a=user@example.org,n=user,r=xyz",
                        &pencil256, "pencil", NULL, 0, &ev),
              ==, SASL_EV_SUCCESS);
}

/* ---- channel binding ------------------------------------------------------------------- */

static const char *cb_first(const char *flag)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s,,n=user,r=clientnonce42", flag);
    return buf;
}

static void plus_test(void)
{
    struct sasl_event ev;
    const struct sasl_tls *st = &tls_server_side, *ct = &tls_client_side;

    /* Both types, both hashes, the client using the values its own TLS end computed. */
    CHECK_INT(scram_run(&cfg, st, "SCRAM-SHA-256-PLUS", cb_first("p=tls-exporter"), &pencil256,
                        "pencil", ct->exporter, 32, &ev),
              ==, SASL_EV_SUCCESS);
    CHECK_INT(scram_run(&cfg, st, "SCRAM-SHA-1-PLUS", cb_first("p=tls-exporter"), &pencil1,
                        "pencil", ct->exporter, 32, &ev),
              ==, SASL_EV_SUCCESS);
    CHECK_INT(scram_run(&cfg, st, "SCRAM-SHA-256-PLUS", cb_first("p=tls-server-end-point"),
                        &pencil256, "pencil", ct->end_point, ct->end_point_len, &ev),
              ==, SASL_EV_SUCCESS);
    CHECK_INT(scram_run(&cfg, st, "SCRAM-SHA-1-PLUS", cb_first("p=tls-server-end-point"), &pencil1,
                        "pencil", ct->end_point, ct->end_point_len, &ev),
              ==, SASL_EV_SUCCESS);
    CHECK_STR(last_user, "user");

    /* tls-unique exists on TLS 1.2 only; both ends agree on it there. */
    CHECK(!(st->cb & SASL_CB_TLS_UNIQUE));
    CHECK(tls12_server_side.cb & SASL_CB_TLS_UNIQUE);
    CHECK_INT(tls12_server_side.unique_len, ==, 12);
    CHECK_INT(scram_run(&cfg, &tls12_server_side, "SCRAM-SHA-256-PLUS", cb_first("p=tls-unique"),
                        &pencil256, "pencil", tls12_client_side.unique,
                        tls12_client_side.unique_len, &ev),
              ==, SASL_EV_SUCCESS);
    uint8_t bad[64];
    memcpy(bad, tls12_client_side.unique, tls12_client_side.unique_len);
    bad[0] ^= 1;
    CHECK_INT(scram_run(&cfg, &tls12_server_side, "SCRAM-SHA-1-PLUS", cb_first("p=tls-unique"),
                        &pencil1, "pencil", bad, tls12_client_side.unique_len, &ev),
              ==, SASL_EV_FAILURE);
}

static void plus_wrong_test(void)
{
    struct sasl_event ev;
    const struct sasl_tls *st = &tls_server_side, *ot = &tls_other;
    enum sasl_ev r;

    /* Binding data of another TLS connection (a man in the middle's): refused. */
    r = scram_run(&cfg, st, "SCRAM-SHA-256-PLUS", cb_first("p=tls-exporter"), &pencil256, "pencil",
                  ot->exporter, 32, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    /* tls-server-end-point of another certificate */
    uint8_t ep[64];
    memcpy(ep, tls_client_side.end_point, sizeof ep);
    ep[5] ^= 0x20;
    r = scram_run(&cfg, st, "SCRAM-SHA-256-PLUS", cb_first("p=tls-server-end-point"), &pencil256,
                  "pencil", ep, tls_client_side.end_point_len, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    /* the right data under the other type's name */
    r = scram_run(&cfg, st, "SCRAM-SHA-256-PLUS", cb_first("p=tls-server-end-point"), &pencil256,
                  "pencil", tls_client_side.exporter, 32, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    /* no binding data at all after p= */
    r = scram_run(&cfg, st, "SCRAM-SHA-256-PLUS", cb_first("p=tls-exporter"), &pencil256, "pencil",
                  NULL, 0, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);

    /* A type we do not support, or support but do not have on this connection. */
    first_case(&cfg, st, "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=user,r=abc", SASL_NOT_AUTHORIZED,
               NULL); /* TLS 1.3 */
    first_case(&cfg, st, "SCRAM-SHA-256-PLUS", "p=tls-unicorn,,n=user,r=abc", SASL_NOT_AUTHORIZED,
               NULL);
    struct sasl_tls only_exporter = *st;
    only_exporter.cb = SASL_CB_TLS_EXPORTER;
    first_case(&cfg, &only_exporter, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=user,r=abc",
               SASL_NOT_AUTHORIZED, NULL);
    first_case(&cfg, &only_exporter, "SCRAM-SHA-256-PLUS", "p=tls-exporter,,n=user,r=abc",
               SASL_COND_NONE, "user");
    first_case(&cfg, st, "SCRAM-SHA-256-PLUS", "p=,,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);

    /* gs2 flag against mechanism */
    first_case(&cfg, st, "SCRAM-SHA-256-PLUS", "n,,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(&cfg, st, "SCRAM-SHA-256-PLUS", "y,,n=user,r=abc", SASL_MALFORMED_REQUEST, NULL);
    first_case(&cfg, st, "SCRAM-SHA-256", "p=tls-exporter,,n=user,r=abc", SASL_MALFORMED_REQUEST,
               NULL);
    /* -PLUS is not offered without TLS channel binding */
    first_case(&cfg, &no_tls, "SCRAM-SHA-256-PLUS", "p=tls-exporter,,n=user,r=abc",
               SASL_INVALID_MECHANISM, NULL);
}

/* RFC 5802 §6: 'y' means "I could bind but you do not seem to": a lie if we offered -PLUS
 * and tls-unique, the one binding every SCRAM-PLUS client knows, was there (TLS 1.2). */
static void downgrade_test(void)
{
    struct sasl_event ev;
    enum sasl_ev r = scram_run(&cfg, &tls12_server_side, "SCRAM-SHA-256", "y,,n=user,r=abc",
                               &pencil256, "pencil", NULL, 0, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    r = scram_run(&cfg, &tls12_server_side, "SCRAM-SHA-1", "y,,n=user,r=abc", &pencil1, "pencil",
                  NULL, 0, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    /* TLS 1.3 has no tls-unique: an older client that only knows it says 'y' honestly. */
    CHECK_INT(scram_run(&cfg, &tls_server_side, "SCRAM-SHA-256", "y,,n=user,r=abc", &pencil256,
                        "pencil", NULL, 0, &ev),
              ==, SASL_EV_SUCCESS);
    /* TLS without binding data, or a host that does not allow -PLUS: 'y' is honest. */
    struct sasl_tls nocb = tls_server_side;
    nocb.cb = 0;
    CHECK_INT(scram_run(&cfg, &nocb, "SCRAM-SHA-256", "y,,n=user,r=abc", &pencil256, "pencil", NULL,
                        0, &ev),
              ==, SASL_EV_SUCCESS);
    struct sasl_config noplus = cfg;
    noplus.mechs = SASL_MECH_BIT(SASL_SCRAM_SHA256);
    CHECK_INT(scram_run(&noplus, &tls_server_side, "SCRAM-SHA-256", "y,,n=user,r=abc", &pencil256,
                        "pencil", NULL, 0, &ev),
              ==, SASL_EV_SUCCESS);
    CHECK_INT(scram_run(&cfg, &no_tls, "SCRAM-SHA-256", "y,,n=user,r=abc", &pencil256, "pencil",
                        NULL, 0, &ev),
              ==, SASL_EV_SUCCESS);
    /* 'n' is fine with -PLUS on offer: that client cannot bind. */
    CHECK_INT(scram_run(&cfg, &tls_server_side, "SCRAM-SHA-256", "n,,n=user,r=abc", &pencil256,
                        "pencil", NULL, 0, &ev),
              ==, SASL_EV_SUCCESS);
}

/* ---- credentials ----------------------------------------------------------------------- */

static void wrong_password_test(void)
{
    struct sasl_event ev;
    enum sasl_ev r = scram_run(&cfg, &no_tls, "SCRAM-SHA-256", "n,,n=user,r=abc", &pencil256,
                               "pencil2", NULL, 0, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    r = scram_run(&cfg, &no_tls, "SCRAM-SHA-1", "n,,n=user,r=abc", &pencil1, "Pencil", NULL, 0,
                  &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
}

/* An unknown user gets a normal-looking challenge, the same salt every time, and fails only
 * at the end, with the condition a wrong password gets. */
static void unknown_user_test(void)
{
    struct sasl_event ev;
    char salt1[128], salt2[128], salt3[128];
    unsigned it = 0;

    for (int i = 0; i < 3; i++) {
        struct sasl *s = new_sasl(&cfg, &no_tls);
        const char *who = i == 2 ? "n,,n=nobody2,r=abc" : "n,,n=nobody,r=abc";
        CHECK_INT(start(s, "SCRAM-SHA-256", who, &ev), ==, SASL_EV_NEED_CREDS);
        CHECK_INT(sasl_creds(s, NULL, &ev), ==, SASL_EV_CHALLENGE);
        char *salt = i == 0 ? salt1 : i == 1 ? salt2 : salt3;
        CHECK_INT(sscanf(text_of(&ev), "r=%*[^,],s=%127[^,],i=%u", salt, &it), ==, 2);
        CHECK_INT(it, ==, 4096);
        CHECK_INT(strlen(salt), ==, 24); /* 16 bytes, like a real account's */
        free_sasl(s);
    }
    CHECK_STR(salt1, salt2);
    CHECK(strcmp(salt1, salt3) != 0);

    /* The whole exchange, with whatever password: not-authorized at the very end. */
    enum sasl_ev r = scram_run(&cfg, &no_tls, "SCRAM-SHA-256", "n,,n=nobody,r=abc", NULL, "pencil",
                               NULL, 0, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    r = scram_run(&cfg, &tls_server_side, "SCRAM-SHA-1-PLUS", cb_first("p=tls-exporter"), NULL,
                  "pencil", tls_client_side.exporter, 32, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);

    /* Credentials of the wrong hash or damaged: the store's fault. */
    struct sasl *s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-256", "n,,n=user,r=abc", &ev);
    r = sasl_creds(s, &pencil1, &ev);
    CHECK_FAIL(s, ev, r, SASL_TEMPORARY_AUTH_FAILURE);
    free_sasl(s);
    struct scram_creds bad = pencil256;
    bad.iterations = 0;
    s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-256", "n,,n=user,r=abc", &ev);
    r = sasl_creds(s, &bad, &ev);
    CHECK_FAIL(s, ev, r, SASL_TEMPORARY_AUTH_FAILURE);
    free_sasl(s);
}

/* ---- base64 layer, mechanisms, order --------------------------------------------------- */

static void encoding_test(void)
{
    struct sasl_event ev;
    struct sasl *s = new_sasl(&cfg, &no_tls);
    enum sasl_ev r = sasl_start(s, "SCRAM-SHA-1", 11, "bi!sbj11c2VyLHI9YWJj", 20, &ev);
    CHECK_FAIL(s, ev, r, SASL_INCORRECT_ENCODING);
    free_sasl(s);

    s = new_sasl(&cfg, &no_tls);
    r = sasl_start(s, "SCRAM-SHA-1", 11, "biwsbj11c2VyLHI9YWJj=", 21, &ev); /* bad padding */
    CHECK_FAIL(s, ev, r, SASL_INCORRECT_ENCODING);
    free_sasl(s);

    s = new_sasl(&cfg, &no_tls);
    r = sasl_start(s, "SCRAM-SHA-1", 11, "biws bj11c2VyLHI9YWJj", 21, &ev); /* whitespace */
    CHECK_FAIL(s, ev, r, SASL_INCORRECT_ENCODING);
    free_sasl(s);

    /* In a <response/> too */
    s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-1", "n,,n=user,r=abc", &ev);
    sasl_creds(s, &pencil1, &ev);
    r = sasl_step(s, "####", 4, &ev);
    CHECK_FAIL(s, ev, r, SASL_INCORRECT_ENCODING);
    free_sasl(s);

    /* "=" is an empty initial response, which SCRAM cannot start with */
    s = new_sasl(&cfg, &no_tls);
    r = sasl_start(s, "SCRAM-SHA-1", 11, "=", 1, &ev);
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);

    /* Longer than any message we take */
    char big[3000];
    memset(big, 'A', sizeof big);
    s = new_sasl(&cfg, &no_tls);
    r = sasl_start(s, "SCRAM-SHA-1", 11, big, sizeof big, &ev);
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);

    /* The longest client nonce we accept still makes a server-first that fits. */
    char first[SASL_MSG_MAX + 1];
    int n = snprintf(first, sizeof first, "n,,n=user,r=");
    memset(first + n, 'x', SASL_MSG_MAX - (size_t)n);
    first[SASL_MSG_MAX] = 0;
    s = new_sasl(&cfg, &no_tls);
    CHECK_INT(start(s, "SCRAM-SHA-1", first, &ev), ==, SASL_EV_NEED_CREDS);
    CHECK_INT(sasl_creds(s, &pencil1, &ev), ==, SASL_EV_CHALLENGE);
    free_sasl(s);
}

/* <auth/> without initial response: an empty challenge ("="), then the first message. */
static void no_initial_response_test(void)
{
    struct sasl_event ev;
    struct sasl *s = new_sasl(&cfg, &no_tls);
    CHECK_INT(sasl_start(s, "SCRAM-SHA-256", 13, NULL, 0, &ev), ==, SASL_EV_CHALLENGE);
    CHECK_SPAN(ev.text, ev.len, "=");
    const char *first = "n,,n=user,r=abc";
    CHECK_INT(step(s, first, &ev), ==, SASL_EV_NEED_CREDS);
    CHECK_INT(sasl_creds(s, &pencil256, &ev), ==, SASL_EV_CHALLENGE);
    char sfirst[512];
    snprintf(sfirst, sizeof sfirst, "%s", text_of(&ev));
    const char *fin = client_final(SCRAM_SHA256, "pencil", first, sfirst, "n,,", 3, NULL, NULL);
    CHECK_INT(step(s, fin, &ev), ==, SASL_EV_SUCCESS);
    free_sasl(s);

    /* PLAIN the same way */
    s = new_sasl(&cfg_plain, &tls_server_side);
    CHECK_INT(sasl_start(s, "PLAIN", 5, NULL, 0, &ev), ==, SASL_EV_CHALLENGE);
    const char *t = b64("\0user\0pencil", 12);
    CHECK_INT(sasl_step(s, t, strlen(t), &ev), ==, SASL_EV_NEED_CREDS);
    free_sasl(s);

    /* and an empty response to it is malformed */
    s = new_sasl(&cfg, &no_tls);
    sasl_start(s, "SCRAM-SHA-256", 13, NULL, 0, &ev);
    enum sasl_ev r = sasl_step(s, "=", 1, &ev);
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);
}

static void mechanism_test(void)
{
    struct sasl_event ev;
    static const char *const bad[] = {"DIGEST-MD5", "scram-sha-1", "SCRAM-SHA-512", "", "PLAIN "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sasl *s = new_sasl(&cfg, &tls_server_side);
        enum sasl_ev r = start(s, bad[i], "n,,n=user,r=abc", &ev);
        CHECK_FAIL(s, ev, r, SASL_INVALID_MECHANISM);
        free_sasl(s);
    }
    /* PLAIN is off unless configured */
    struct sasl *s = new_sasl(&cfg, &tls_server_side);
    enum sasl_ev r = start(s, "PLAIN", "\0user\0pencil", &ev);
    CHECK_FAIL(s, ev, r, SASL_INVALID_MECHANISM);
    free_sasl(s);
    /* and needs TLS when it is on */
    s = new_sasl(&cfg_plain, &no_tls);
    const char *t = b64("\0user\0pencil", 12);
    r = sasl_start(s, "PLAIN", 5, t, strlen(t), &ev);
    CHECK_FAIL(s, ev, r, SASL_ENCRYPTION_REQUIRED);
    free_sasl(s);
    /* a mechanism the host turned off */
    s = new_sasl(&cfg_plain, &tls_server_side);
    r = start(s, "SCRAM-SHA-1", "n,,n=user,r=abc", &ev);
    CHECK_FAIL(s, ev, r, SASL_INVALID_MECHANISM);
    free_sasl(s);

    for (int m = SASL_MECH_NONE + 1; m < SASL_MECH_COUNT; m++) {
        const char *name = sasl_mech_name((enum sasl_mech)m);
        CHECK(name != NULL);
        if (name)
            CHECK_INT(sasl_mech_parse(name, strlen(name)), ==, m);
    }
    CHECK(sasl_mech_name(SASL_MECH_NONE) == NULL);
    CHECK_STR(sasl_cb_name(SASL_CB_TLS_EXPORTER), "tls-exporter");
    CHECK_STR(sasl_cb_name(SASL_CB_TLS_SERVER_END_POINT), "tls-server-end-point");
    CHECK_STR(sasl_cond_name(SASL_NOT_AUTHORIZED), "not-authorized");
    CHECK_STR(sasl_cond_name(SASL_TEMPORARY_AUTH_FAILURE), "temporary-auth-failure");
    CHECK_STR(sasl_cond_name(SASL_ENCRYPTION_REQUIRED), "encryption-required");
}

static void offer_test(void)
{
    const unsigned scram = SASL_MECH_BIT(SASL_SCRAM_SHA256) | SASL_MECH_BIT(SASL_SCRAM_SHA1);
    const unsigned plus =
        SASL_MECH_BIT(SASL_SCRAM_SHA256_PLUS) | SASL_MECH_BIT(SASL_SCRAM_SHA1_PLUS);
    struct sasl_tls nocb = tls_server_side;
    nocb.cb = 0;
    CHECK_INT(sasl_offer(&cfg, &no_tls), ==, scram);
    CHECK_INT(sasl_offer(&cfg, &nocb), ==, scram);
    CHECK_INT(sasl_offer(&cfg, &tls_server_side), ==, scram | plus);
    CHECK_INT(sasl_offer(&cfg_plain, &no_tls), ==, SASL_MECH_BIT(SASL_SCRAM_SHA256));
    CHECK_INT(sasl_offer(&cfg_plain, &tls_server_side), ==,
              SASL_MECH_BIT(SASL_SCRAM_SHA256) | SASL_MECH_BIT(SASL_SCRAM_SHA256_PLUS) |
                  SASL_MECH_BIT(SASL_PLAIN));
    CHECK_INT(sasl_cb_offer(&tls_server_side), ==,
              SASL_CB_TLS_EXPORTER | SASL_CB_TLS_SERVER_END_POINT);
    CHECK_INT(sasl_cb_offer(&no_tls), ==, 0);
    struct sasl_tls inactive = tls_server_side;
    inactive.active = false; /* binding data without TLS is never offered */
    CHECK_INT(sasl_cb_offer(&inactive), ==, 0);
    CHECK_INT(sasl_offer(&cfg, &inactive), ==, scram);
}

static void order_test(void)
{
    struct sasl_event ev;
    enum sasl_ev r;
    struct sasl *s = new_sasl(&cfg, &no_tls);
    r = step(s, "n,,n=user,r=abc", &ev); /* <response/> before <auth/> */
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);

    s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-1", "n,,n=user,r=abc", &ev);
    r = step(s, "c=biws,r=abc,p=AAAA", &ev); /* a response while we wait for the store */
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    r = sasl_creds(s, &pencil1, &ev); /* everything after a failure fails */
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);

    s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-1", "n,,n=user,r=abc", &ev);
    sasl_creds(s, &pencil1, &ev);
    r = sasl_fail(s, SASL_ABORTED, &ev); /* the client's <abort/> */
    CHECK_FAIL(s, ev, r, SASL_ABORTED);
    r = step(s, "c=biws", &ev);
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);

    s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-1", "n,,n=user,r=abc", &ev);
    r = start(s, "SCRAM-SHA-1", "n,,n=user,r=abc", &ev); /* a second <auth/> */
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);

    s = new_sasl(&cfg_plain, &tls_server_side);
    start(s, "PLAIN", "\0user\0pencil", &ev);
    sasl_creds(s, &pencil256, &ev);
    r = sasl_resume(s, &ev); /* before sasl_verify() */
    CHECK_FAIL(s, ev, r, SASL_MALFORMED_REQUEST);
    free_sasl(s);
}

/* ---- PLAIN ----------------------------------------------------------------------------- */

static enum sasl_ev plain_run(const char *msg, size_t n, const struct scram_creds *cr,
                              struct sasl_event *ev)
{
    struct sasl *s = new_sasl(&cfg_plain, &tls_server_side);
    const char *t = b64(msg, n);
    enum sasl_ev r = sasl_start(s, "PLAIN", 5, t, strlen(t), ev);
    if (r != SASL_EV_NEED_CREDS)
        goto out;
    CHECK_INT(ev->hash, ==, SCRAM_SHA256);
    CHECK_STR(ev->user, "user");
    r = sasl_creds(s, cr, ev);
    if (r != SASL_EV_NEED_VERIFY)
        goto out;
    sasl_verify(s);
    /* The password is gone from memory once checked. */
    static const char zero[sizeof s->msg];
    CHECK(memcmp(s->msg, zero, sizeof zero) == 0);
    r = sasl_resume(s, ev);
    if (r == SASL_EV_SUCCESS)
        snprintf(last_user, sizeof last_user, "%s", ev->user);
out:
    free_sasl(s);
    ev->user = ev->text = NULL; /* they pointed into s */
    return r;
}

#define PLAIN(lit) lit, sizeof lit - 1

static void plain_test(void)
{
    struct sasl_event ev;
    enum sasl_ev r;

    CHECK_INT(plain_run(PLAIN("\0user\0pencil"), &pencil256, &ev), ==, SASL_EV_SUCCESS);
    CHECK_INT(ev.len, ==, 0); /* <success/> without data */
    CHECK_STR(last_user, "user");
    CHECK_INT(plain_run(PLAIN("\0USER\0pencil"), &pencil256, &ev), ==, SASL_EV_SUCCESS);
    CHECK_INT(plain_run(PLAIN("user@example.org\0user\0pencil"), &pencil256, &ev), ==,
              SASL_EV_SUCCESS);

    r = plain_run(PLAIN("\0user\0pencil2"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    r = plain_run(PLAIN("\0user\0"
                        "PENCIL"),
                  &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    r = plain_run(PLAIN("\0user\0pencil"), NULL, &ev); /* unknown user: verified, then no */
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    r = plain_run(PLAIN("admin@example.org\0user\0pencil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_INVALID_AUTHZID);
    r = plain_run(PLAIN("user@example.net\0user\0pencil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_INVALID_AUTHZID);

    /* malformed: no NUL, one NUL, three NULs, empty authcid or password */
    r = plain_run(PLAIN("userpencil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_MALFORMED_REQUEST);
    r = plain_run(PLAIN("user\0pencil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_MALFORMED_REQUEST);
    r = plain_run(PLAIN("\0user\0pen\0cil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_MALFORMED_REQUEST);
    r = plain_run(PLAIN("\0\0pencil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_MALFORMED_REQUEST);
    r = plain_run(PLAIN("\0user\0"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_MALFORMED_REQUEST);
    r = plain_run(PLAIN("\0us/er\0pencil"), &pencil256, &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
}

/* Failures at the password check say so (c2s charges them to the account and the
 * address); refusals before it tested nothing. */
static void tested_flag_test(void)
{
    struct sasl_event ev;
    enum sasl_ev r;

    r = scram_run(&cfg, &no_tls, "SCRAM-SHA-256", "n,,n=user,r=abc", &pencil256, "pencil2", NULL, 0,
                  &ev);
    CHECK_FAIL(0, ev, r, SASL_NOT_AUTHORIZED);
    CHECK(ev.tested);
    r = scram_run(&cfg, &no_tls, "SCRAM-SHA-256", "n,,n=nobody,r=abc", NULL, "pencil", NULL, 0,
                  &ev);
    CHECK(r == SASL_EV_FAILURE && ev.tested); /* an unknown user: a guess too */
    r = plain_run(PLAIN("\0user\0pencil2"), &pencil256, &ev);
    CHECK(r == SASL_EV_FAILURE && ev.tested);
    r = plain_run(PLAIN("\0user\0pencil"), NULL, &ev);
    CHECK(r == SASL_EV_FAILURE && ev.tested);

    r = scram_run(&cfg, &tls12_server_side, "SCRAM-SHA-256", "y,,n=user,r=abc", &pencil256,
                  "pencil", NULL, 0, &ev);
    CHECK(r == SASL_EV_FAILURE && !ev.tested); /* downgrade, refused at the first message */
    r = plain_run(PLAIN("\0us/er\0pencil"), &pencil256, &ev);
    CHECK(r == SASL_EV_FAILURE && ev.cond == SASL_NOT_AUTHORIZED && !ev.tested);
    struct sasl *s = new_sasl(&cfg, &tls_server_side);
    r = start(s, "SCRAM-SHA-256-PLUS", "p=tls-unicorn,,n=user,r=abc", &ev);
    CHECK(r == SASL_EV_FAILURE && ev.cond == SASL_NOT_AUTHORIZED && !ev.tested);
    free_sasl(s);

    /* The RFC 5802 exchange: a wrong proof names the user; no proof at all tested none. */
    for (int i = 0; i < 2; i++) {
        s = new_sasl(&cfg, &no_tls);
        sasl_test_nonce(s, "3rfcNHYJY1ZVvWVs7j");
        start(s, "SCRAM-SHA-1", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", &ev);
        sasl_creds(s, &pencil1, &ev);
        r = step(s,
                 i ? "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
                   : "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=w0X8v3Bz2T0CJGbJQyF0X+"
                     "HI4Ts=",
                 &ev);
        CHECK_INT(r, ==, SASL_EV_FAILURE);
        CHECK(ev.tested == !i);
        if (!i)
            CHECK_STR(ev.user, "user");
        free_sasl(s);
    }
    s = new_sasl(&cfg, &no_tls);
    start(s, "SCRAM-SHA-256", "n,,n=user,r=abc", &ev);
    r = sasl_fail(s, SASL_TEMPORARY_AUTH_FAILURE, &ev);
    CHECK(r == SASL_EV_FAILURE && !ev.tested);
    free_sasl(s);
}

/* ---- set-up ------------------------------------------------------------------------------ */

struct q {
    uint8_t buf[65536];
    size_t len;
};

static int q_sink(void *ud, const void *p, size_t n)
{
    struct q *q = ud;
    if (q->len + n > sizeof q->buf)
        return -ENOBUFS;
    memcpy(q->buf + q->len, p, n);
    q->len += n;
    return 0;
}

static void pump(struct tls *a, struct q *aq, struct tls *b, struct q *bq)
{
    char buf[1024];
    for (int i = 0; i < 20 && (aq->len || bq->len); i++) {
        if (aq->len) {
            tls_feed(b, aq->buf, aq->len);
            while (tls_read(b, buf, sizeof buf) > 0)
                ;
            aq->len = 0;
        }
        if (bq->len) {
            tls_feed(a, bq->buf, bq->len);
            while (tls_read(a, buf, sizeof buf) > 0)
                ;
            bq->len = 0;
        }
    }
}

static void fill(struct sasl_tls *st, struct tls *t)
{
    memset(st, 0, sizeof *st);
    st->active = true;
    if (tls_cb_exporter(t, st->exporter) == 0)
        st->cb |= SASL_CB_TLS_EXPORTER;
    if (tls_cb_server_end_point(t, st->end_point, &st->end_point_len) == 0)
        st->cb |= SASL_CB_TLS_SERVER_END_POINT;
    if (tls_cb_unique(t, st->unique, &st->unique_len) == 0)
        st->cb |= SASL_CB_TLS_UNIQUE;
}

/* Two real TLS 1.3 connections: binding data for both ends of one, and of another. */
static int tls_setup(void)
{
    char dir[] = "/tmp/starling-sasl-XXXXXX", crt[64], key[64];
    static struct q cq, sq;
    int rc = -1;

    if (!mkdtemp(dir))
        return -1;
    snprintf(crt, sizeof crt, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    if (tls_selfsigned_write(crt, key, "localhost", 1) != 0)
        goto out;
    struct tls_opts so = {.cert_file = crt, .key_file = key}, co = {0};
    struct tls_opts so12 = {.cert_file = crt, .key_file = key, .max_version = TLS_V12};
    struct tls_ctx *sc = tls_ctx_new_server(&so, NULL, 0), *cc = tls_ctx_new_client(&co, NULL, 0);
    struct tls_ctx *sc12 = tls_ctx_new_server(&so12, NULL, 0);
    for (int i = 0; i < 3; i++) {
        struct tls *s = tls_new(i == 2 ? sc12 : sc, NULL, q_sink, &sq);
        struct tls *c = tls_new(cc, NULL, q_sink, &cq);
        tls_handshake(c);
        pump(c, &cq, s, &sq);
        if (!tls_handshake_done(s) || !tls_handshake_done(c))
            goto out_ctx;
        if (i == 0) {
            fill(&tls_server_side, s);
            fill(&tls_client_side, c);
        } else if (i == 1) {
            fill(&tls_other, c);
        } else {
            fill(&tls12_server_side, s);
            fill(&tls12_client_side, c);
        }
        tls_free(s);
        tls_free(c);
    }
    rc = 0;
    if (tls_server_side.cb != (SASL_CB_TLS_EXPORTER | SASL_CB_TLS_SERVER_END_POINT) ||
        memcmp(tls_server_side.exporter, tls_client_side.exporter, 32) != 0)
        rc = -1;
out_ctx:
    tls_ctx_free(sc);
    tls_ctx_free(sc12);
    tls_ctx_free(cc);
out:
    unlink(crt);
    unlink(key);
    rmdir(dir);
    return rc;
}

int main(void)
{
    uint8_t salt[32];
    size_t n;
    EVP_DecodeBase64(salt, &n, sizeof salt, (const uint8_t *)"QSXCR+Q6sek8bf92", 16);
    scram_creds_derive(SCRAM_SHA1, "pencil", salt, n, 4096, &pencil1);
    EVP_DecodeBase64(salt, &n, sizeof salt, (const uint8_t *)"W22ZaJ0SNY7soEsUEjb6gQ==", 24);
    scram_creds_derive(SCRAM_SHA256, "pencil", salt, n, 4096, &pencil256);
    memset(cfg.secret, 0x5a, sizeof cfg.secret);
    memset(cfg_plain.secret, 0xa5, sizeof cfg_plain.secret);
    if (tls_setup() != 0) {
        fprintf(stderr, "TLS set-up failed\n");
        return 1;
    }

    RUN(rfc5802_test);
    RUN(rfc7677_test);
    RUN(final_errors_test);
    RUN(final_extension_test);
    RUN(nonce_test);
    RUN(first_syntax_test);
    RUN(authzid_test);
    RUN(plus_test);
    RUN(tested_flag_test);
    RUN(plus_wrong_test);
    RUN(downgrade_test);
    RUN(wrong_password_test);
    RUN(unknown_user_test);
    RUN(encoding_test);
    RUN(no_initial_response_test);
    RUN(mechanism_test);
    RUN(offer_test);
    RUN(order_test);
    RUN(plain_test);
    return test_done("sasl");
}
