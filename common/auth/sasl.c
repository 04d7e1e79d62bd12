/*
 * sasl: the server side of PLAIN and SCRAM(-PLUS) as a state machine (see sasl.h).
 *
 * Condition choices where the RFCs leave one (RFC 5802's server-error values have no
 * XMPP element of their own, RFC 6120 §6.5 lists what a <failure/> may say):
 *   malformed-request  the mechanism's syntax is violated: bad attribute order, '=' not
 *                      followed by 2C or 3D, a NUL, a mandatory extension (m=), a gs2 flag
 *                      that does not fit the mechanism (p= without -PLUS and the reverse);
 *                      also any call made out of order
 *   incorrect-encoding the base64 of the XMPP element is bad (not SCRAM's inner c=/p=)
 *   not-authorized     everything about credentials and binding: wrong proof or password,
 *                      unknown user, a user name nodeprep rejects, a nonce that is not ours,
 *                      channel-binding data or type that does not match, and the 'y'
 *                      downgrade (RFC 5802 §6, read as below)
 *
 * The 'y' flag says "I can bind, but you do not seem to". A client that predates XEP-0440
 * can only bind with RFC 5802's default, tls-unique, which TLS 1.3 does not have (RFC 9266):
 * over TLS 1.3 such a client rightly finds no binding it shares with us and says 'y' even
 * though -PLUS was on offer (slixmpp does exactly that). So 'y' is refused as a downgrade
 * only when tls-unique was available on the connection and -PLUS was offered; elsewhere a
 * stripped -PLUS list cannot be told from an old client, and protection against that is
 * XEP-0474's business.
 *   invalid-authzid    an authzid other than the user's own bare JID
 */
#include "common/auth/sasl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <stringprep.h>

enum sasl_state {
    ST_START = 0,
    ST_WAIT_FIRST,  /* empty challenge sent; the first message comes as a <response/> */
    ST_WAIT_CREDS,  /* NEED_CREDS returned */
    ST_WAIT_VERIFY, /* PLAIN: NEED_VERIFY returned */
    ST_VERIFIED,    /* PLAIN: sasl_verify() ran */
    ST_WAIT_FINAL,  /* SCRAM: server-first sent */
    ST_DONE,
};

#define ALL_MECHS       ((SASL_MECH_BIT(SASL_MECH_COUNT) - 1) & ~SASL_MECH_BIT(SASL_MECH_NONE))
#define PLUS_MECHS      (SASL_MECH_BIT(SASL_SCRAM_SHA256_PLUS) | SASL_MECH_BIT(SASL_SCRAM_SHA1_PLUS))
#define PLAIN_FIELD_MAX 1023 /* authzid, authcid, password: RFC 4616 asks for 255 at least */

static const char *const mech_names[SASL_MECH_COUNT] = {
    [SASL_SCRAM_SHA256_PLUS] = "SCRAM-SHA-256-PLUS",
    [SASL_SCRAM_SHA1_PLUS] = "SCRAM-SHA-1-PLUS",
    [SASL_SCRAM_SHA256] = "SCRAM-SHA-256",
    [SASL_SCRAM_SHA1] = "SCRAM-SHA-1",
    [SASL_PLAIN] = "PLAIN",
};

static const char *const cond_names[] = {
    [SASL_COND_NONE] = "",
    [SASL_ABORTED] = "aborted",
    [SASL_ACCOUNT_DISABLED] = "account-disabled",
    [SASL_CREDENTIALS_EXPIRED] = "credentials-expired",
    [SASL_ENCRYPTION_REQUIRED] = "encryption-required",
    [SASL_INCORRECT_ENCODING] = "incorrect-encoding",
    [SASL_INVALID_AUTHZID] = "invalid-authzid",
    [SASL_INVALID_MECHANISM] = "invalid-mechanism",
    [SASL_MALFORMED_REQUEST] = "malformed-request",
    [SASL_MECHANISM_TOO_WEAK] = "mechanism-too-weak",
    [SASL_NOT_AUTHORIZED] = "not-authorized",
    [SASL_TEMPORARY_AUTH_FAILURE] = "temporary-auth-failure",
};

const char *sasl_mech_name(enum sasl_mech m)
{
    return m > SASL_MECH_NONE && m < SASL_MECH_COUNT ? mech_names[m] : NULL;
}

enum sasl_mech sasl_mech_parse(const char *name, size_t len)
{
    for (int m = SASL_MECH_NONE + 1; m < SASL_MECH_COUNT; m++)
        if (strlen(mech_names[m]) == len && memcmp(mech_names[m], name, len) == 0)
            return (enum sasl_mech)m;
    return SASL_MECH_NONE;
}

const char *sasl_cb_name(enum sasl_cb cb)
{
    switch (cb) {
    case SASL_CB_TLS_EXPORTER:
        return "tls-exporter";
    case SASL_CB_TLS_SERVER_END_POINT:
        return "tls-server-end-point";
    case SASL_CB_TLS_UNIQUE:
        return "tls-unique";
    }
    return NULL;
}

const char *sasl_cond_name(enum sasl_cond c)
{
    return (size_t)c < sizeof cond_names / sizeof cond_names[0] ? cond_names[c] : NULL;
}

static bool is_plus(enum sasl_mech m)
{
    return m == SASL_SCRAM_SHA256_PLUS || m == SASL_SCRAM_SHA1_PLUS;
}

static enum scram_hash mech_hash(enum sasl_mech m)
{
    return m == SASL_SCRAM_SHA1 || m == SASL_SCRAM_SHA1_PLUS ? SCRAM_SHA1 : SCRAM_SHA256;
}

unsigned sasl_cb_offer(const struct sasl_tls *tls)
{
    return tls->active ? tls->cb & (SASL_CB_TLS_EXPORTER | SASL_CB_TLS_SERVER_END_POINT |
                                    SASL_CB_TLS_UNIQUE)
                       : 0;
}

unsigned sasl_offer(const struct sasl_config *cfg, const struct sasl_tls *tls)
{
    unsigned allowed = cfg->mechs ? cfg->mechs & ALL_MECHS : ALL_MECHS & ~SASL_MECH_BIT(SASL_PLAIN);
    unsigned offer = allowed & (SASL_MECH_BIT(SASL_SCRAM_SHA256) | SASL_MECH_BIT(SASL_SCRAM_SHA1));
    if (sasl_cb_offer(tls))
        offer |= allowed & PLUS_MECHS;
    if (tls->active) /* a password in the clear only inside TLS */
        offer |= allowed & SASL_MECH_BIT(SASL_PLAIN);
    return offer;
}

void sasl_init(struct sasl *s, const struct sasl_config *cfg, const struct sasl_tls *tls)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->tls = *tls;
    s->state = ST_START;
}

void sasl_wipe(struct sasl *s)
{
    OPENSSL_cleanse(s, sizeof *s);
}

void sasl_test_nonce(struct sasl *s, const char *nonce)
{
    s->test_nonce = nonce;
}

/* ---- events ---------------------------------------------------------------------------- */

static enum sasl_ev fail(struct sasl *s, enum sasl_cond cond, struct sasl_event *ev)
{
    /* Refused at the password check itself: the client proof (SCRAM) or the password
     * (PLAIN) was tried against the account's credentials, or an unknown user's fake
     * ones. Every earlier refusal tested nothing. */
    bool tested =
        cond == SASL_NOT_AUTHORIZED && (s->state == ST_WAIT_FINAL || s->state == ST_VERIFIED);
    s->state = ST_DONE;
    OPENSSL_cleanse(s->msg, sizeof s->msg); /* PLAIN's password, if it was there */
    OPENSSL_cleanse(&s->creds, sizeof s->creds);
    memset(ev, 0, sizeof *ev);
    ev->kind = SASL_EV_FAILURE;
    ev->cond = cond;
    ev->tested = tested;
    if (tested)
        ev->user = s->user;
    return ev->kind;
}

/* CHALLENGE or SUCCESS with data (base64'd into s->out; empty data is "="). */
static enum sasl_ev emit(struct sasl *s, enum sasl_ev kind, const void *data, size_t n,
                         struct sasl_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    if (n == 0) {
        memcpy(s->out, "=", 2);
        ev->len = 1;
    } else {
        ev->len = EVP_EncodeBlock((uint8_t *)s->out, data, n);
    }
    ev->text = s->out;
    if (kind == SASL_EV_SUCCESS)
        ev->user = s->user;
    return kind;
}

/* Base64 of the XMPP element into out[0..*n). "=" is empty data (RFC 6120 §6.4.2). */
static enum sasl_cond decode(const char *b64, size_t len, uint8_t *out, size_t *n)
{
    if (len == 0 || (len == 1 && b64[0] == '=')) {
        *n = 0;
        return SASL_COND_NONE;
    }
    if (len > 4 * ((SASL_MSG_MAX + 2) / 3))
        return SASL_MALFORMED_REQUEST; /* longer than any message we accept */
    if (!EVP_DecodeBase64(out, n, SASL_MSG_MAX + 2, (const uint8_t *)b64, len))
        return SASL_INCORRECT_ENCODING;
    if (*n > SASL_MSG_MAX)
        return SASL_MALFORMED_REQUEST;
    return SASL_COND_NONE;
}

/* ---- identities ------------------------------------------------------------------------ */

/* XMPP nodeprep of name[0..n) into s->user. False if it cannot be a localpart. */
static bool set_user(struct sasl *s, const char *name, size_t n)
{
    if (n == 0 || n >= sizeof s->user || memchr(name, 0, n))
        return false;
    memcpy(s->user, name, n);
    s->user[n] = 0;
    if (stringprep_xmpp_nodeprep(s->user, sizeof s->user) != STRINGPREP_OK || !s->user[0]) {
        s->user[0] = 0;
        return false;
    }
    return true;
}

static bool ascii_case_eq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/*
 * RFC 6120 §6.3.8: an authzid other than empty must be the bare JID <user@domain> that the
 * authentication identity already gives; acting for anyone else is not supported. Local
 * and domain parts are normalised (nodeprep, nameprep, no trailing dot) before comparing.
 */
static bool authzid_ok(const struct sasl *s, const char *a, size_t n)
{
    char local[SASL_USER_MAX], dom[1024];
    const char *at;
    size_t ln, dn, cn;

    if (n == 0)
        return true;
    at = memchr(a, '@', n);
    if (!at || memchr(a, '/', n) || memchr(a, 0, n))
        return false;
    ln = (size_t)(at - a);
    dn = n - ln - 1;
    if (dn && a[n - 1] == '.')
        dn--;
    if (ln == 0 || ln >= sizeof local || dn == 0 || dn >= sizeof dom)
        return false;
    memcpy(local, a, ln);
    local[ln] = 0;
    memcpy(dom, at + 1, dn);
    dom[dn] = 0;
    if (stringprep_xmpp_nodeprep(local, sizeof local) != STRINGPREP_OK ||
        stringprep_nameprep(dom, sizeof dom) != STRINGPREP_OK)
        return false;
    cn = strlen(s->cfg->domain);
    if (cn && s->cfg->domain[cn - 1] == '.')
        cn--;
    return strcmp(local, s->user) == 0 && ascii_case_eq(dom, strlen(dom), s->cfg->domain, cn);
}

/*
 * Credentials for a user that does not exist. The salt is all a client ever sees of them:
 * it comes from the configured secret and the name, so that repeated attempts see the same
 * salt, as they would for a real account. The keys only have to match no proof; they reuse
 * the same MAC. sasl_creds() computes the MAC for real users too, so that both paths cost
 * one HMAC and take the same time.
 */
static void fake_mac(const struct sasl *s, enum scram_hash h, uint8_t mac[SCRAM_KEY_MAX])
{
    uint8_t label[1 + SASL_USER_MAX];
    size_t un = strlen(s->user);
    label[0] = (uint8_t)h;
    memcpy(label + 1, s->user, un);
    scram_hmac(SCRAM_SHA256, s->cfg->secret, sizeof s->cfg->secret, label, 1 + un, mac);
}

static void fake_creds(struct sasl *s, enum scram_hash h, const uint8_t mac[SCRAM_KEY_MAX])
{
    size_t hl = scram_hash_len(h);
    memset(&s->creds, 0, sizeof s->creds);
    s->creds.hash = h;
    s->creds.iterations = s->cfg->fake_iterations ? s->cfg->fake_iterations : SCRAM_MIN_ITERATIONS;
    s->creds.salt_len = SCRAM_SALT_LEN;
    memcpy(s->creds.salt, mac, SCRAM_SALT_LEN);
    memcpy(s->creds.stored_key, mac, hl);
    memcpy(s->creds.server_key, mac, hl);
    s->fake = true;
}

/* ---- PLAIN (RFC 4616) ------------------------------------------------------------------ */

static enum sasl_ev plain_first(struct sasl *s, const uint8_t *m, size_t n, struct sasl_event *ev)
{
    const uint8_t *end = m + n, *z1, *z2;
    size_t azn, acn, pwn;

    /* message = [authzid] NUL authcid NUL passwd */
    z1 = memchr(m, 0, n);
    z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
    if (!z2 || memchr(z2 + 1, 0, (size_t)(end - z2 - 1)))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    azn = (size_t)(z1 - m);
    acn = (size_t)(z2 - z1 - 1);
    pwn = (size_t)(end - z2 - 1);
    if (acn == 0 || pwn == 0 || azn > PLAIN_FIELD_MAX || acn > PLAIN_FIELD_MAX ||
        pwn > PLAIN_FIELD_MAX)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (!set_user(s, (const char *)z1 + 1, acn))
        return fail(s, SASL_NOT_AUTHORIZED, ev);
    if (!authzid_ok(s, (const char *)m, azn))
        return fail(s, SASL_INVALID_AUTHZID, ev);
    memcpy(s->msg, z2 + 1, pwn);
    s->msg[pwn] = 0;

    s->state = ST_WAIT_CREDS;
    memset(ev, 0, sizeof *ev);
    ev->kind = SASL_EV_NEED_CREDS;
    ev->user = s->user;
    ev->hash = SCRAM_SHA256;
    return ev->kind;
}

void sasl_verify(struct sasl *s)
{
    if (s->state != ST_WAIT_VERIFY)
        return;
    /* Fake credentials cost the same PBKDF2 and never match. */
    s->verified = scram_verify_plain(&s->creds, s->msg) && !s->fake;
    OPENSSL_cleanse(s->msg, sizeof s->msg);
    s->state = ST_VERIFIED;
}

enum sasl_ev sasl_resume(struct sasl *s, struct sasl_event *ev)
{
    if (s->state != ST_VERIFIED)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (!s->verified)
        return fail(s, SASL_NOT_AUTHORIZED, ev);
    s->state = ST_DONE;
    OPENSSL_cleanse(&s->creds, sizeof s->creds);
    memset(ev, 0, sizeof *ev);
    ev->kind = SASL_EV_SUCCESS; /* no additional data: <success/> */
    ev->text = s->out;
    s->out[0] = 0;
    ev->user = s->user;
    return ev->kind;
}

/* ---- SCRAM (RFC 5802 §5, §7) ----------------------------------------------------------- */

/* saslname at p (up to ',' or end) unescaped into out; its end in *next. -1 when an '='
 * is not "=2C" or "=3D" (§5.1: the server MUST fail) or the name is empty or too long. */
static int saslname(const char *p, const char *end, char *out, size_t cap, const char **next)
{
    size_t n = 0;
    for (; p < end && *p != ','; p++) {
        char ch = *p;
        if (ch == '=') {
            if (end - p >= 3 && p[1] == '2' && p[2] == 'C')
                ch = ',';
            else if (end - p >= 3 && p[1] == '3' && p[2] == 'D')
                ch = '=';
            else
                return -1;
            p += 2;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
    }
    *next = p;
    return n ? (int)n : -1;
}

/* "attr=" at *p? Then advances past it. */
static bool attr(const char **p, const char *end, char a)
{
    if (end - *p < 2 || (*p)[0] != a || (*p)[1] != '=')
        return false;
    *p += 2;
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Skips optional ",x=value" extensions (RFC 5802 §7 attr-val) up to end. */
static bool skip_extensions(const char *p, const char *end)
{
    while (p < end) {
        if (*p != ',' || end - p < 3 || !is_alpha(p[1]) || p[2] != '=')
            return false;
        p += 3;
        while (p < end && *p != ',')
            p++;
    }
    return true;
}

static enum sasl_ev scram_first(struct sasl *s, const char *m, size_t n, struct sasl_event *ev)
{
    const char *p = m, *end = m + n, *q;
    char authzid[SASL_USER_MAX + 1024], name[SASL_USER_MAX];
    int azn = 0, nn;
    unsigned cb = 0;
    bool plus = is_plus(s->mech);

    if (memchr(m, 0, n))
        return fail(s, SASL_MALFORMED_REQUEST, ev);

    /* gs2-cbind-flag "," [authzid] "," */
    if (end - p >= 2 && (p[0] == 'n' || p[0] == 'y') && p[1] == ',') {
        s->gs2_flag = p[0];
        p += 2;
    } else if (attr(&p, end, 'p')) {
        q = p;
        while (p < end && *p != ',')
            p++;
        if (p == end || p == q)
            return fail(s, SASL_MALFORMED_REQUEST, ev);
        if ((size_t)(p - q) == 12 && memcmp(q, "tls-exporter", 12) == 0)
            cb = SASL_CB_TLS_EXPORTER;
        else if ((size_t)(p - q) == 20 && memcmp(q, "tls-server-end-point", 20) == 0)
            cb = SASL_CB_TLS_SERVER_END_POINT;
        else if ((size_t)(p - q) == 10 && memcmp(q, "tls-unique", 10) == 0)
            cb = SASL_CB_TLS_UNIQUE;
        s->gs2_flag = 'p';
        p++;
    } else {
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    }
    if (attr(&p, end, 'a')) {
        azn = saslname(p, end, authzid, sizeof authzid, &p);
        if (azn < 0)
            return fail(s, SASL_MALFORMED_REQUEST, ev);
    }
    if (p == end || *p != ',')
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    p++;
    s->gs2_len = (uint16_t)(p - m);

    /* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
    if (attr(&p, end, 'm'))
        return fail(s, SASL_MALFORMED_REQUEST, ev); /* §5.1: MUST cause failure */
    if (!attr(&p, end, 'n') || (nn = saslname(p, end, name, sizeof name, &p)) < 0)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (p == end || *p != ',')
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    p++;
    if (!attr(&p, end, 'r'))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    q = p;
    while (p < end && *p != ',') {
        if (*p < 0x21 || *p > 0x7e) /* printable, and ',' ends it */
            return fail(s, SASL_MALFORMED_REQUEST, ev);
        p++;
    }
    if (p == q || !skip_extensions(p, end))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    s->cnonce_off = (uint16_t)(q - m);
    s->cnonce_len = (uint16_t)(p - q);

    /* The gs2 flag against the mechanism and what we offered (RFC 5802 §6). */
    if (plus != (s->gs2_flag == 'p'))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (s->gs2_flag == 'y' && (sasl_offer(s->cfg, &s->tls) & PLUS_MECHS) &&
        (sasl_cb_offer(&s->tls) & SASL_CB_TLS_UNIQUE))
        return fail(s, SASL_NOT_AUTHORIZED, ev); /* a downgrade: see the top of this file */
    if (plus && !(cb & sasl_cb_offer(&s->tls)))
        return fail(s, SASL_NOT_AUTHORIZED, ev); /* a type we do not support or have */
    s->cb = cb;

    if (!set_user(s, name, (size_t)nn))
        return fail(s, SASL_NOT_AUTHORIZED, ev);
    if (!authzid_ok(s, authzid, (size_t)azn))
        return fail(s, SASL_INVALID_AUTHZID, ev);

    memcpy(s->msg, m, n);
    s->first_len = (uint16_t)n;
    s->state = ST_WAIT_CREDS;
    memset(ev, 0, sizeof *ev);
    ev->kind = SASL_EV_NEED_CREDS;
    ev->user = s->user;
    ev->hash = mech_hash(s->mech);
    return ev->kind;
}

/* server-first-message = nonce "," salt "," iteration-count */
static enum sasl_ev scram_server_first(struct sasl *s, struct sasl_event *ev)
{
    char snonce[SASL_NONCE_LEN + 1], salt[4 * SCRAM_SALT_MAX / 3 + 4];
    uint8_t rnd[SASL_NONCE_LEN * 3 / 4];
    const char *nonce = snonce;

    if (s->test_nonce) {
        nonce = s->test_nonce;
    } else {
        /* 24 random bytes give 32 base64 characters without padding: none is ','. */
        RAND_bytes(rnd, sizeof rnd);
        EVP_EncodeBlock((uint8_t *)snonce, rnd, sizeof rnd);
    }
    EVP_EncodeBlock((uint8_t *)salt, s->creds.salt, s->creds.salt_len);
    int n = snprintf(s->sfirst, sizeof s->sfirst, "r=%.*s%s,s=%s,i=%u", (int)s->cnonce_len,
                     s->msg + s->cnonce_off, nonce, salt, s->creds.iterations);
    if (n < 0 || (size_t)n >= sizeof s->sfirst)
        return fail(s, SASL_MALFORMED_REQUEST, ev); /* a client nonce too long to echo */
    s->sfirst_len = (uint16_t)n;
    s->nonce_len = (uint16_t)(s->cnonce_len + strlen(nonce));
    s->state = ST_WAIT_FINAL;
    return emit(s, SASL_EV_CHALLENGE, s->sfirst, (size_t)n, ev);
}

/* HMAC(key, AuthMessage), AuthMessage = client-first-bare "," server-first "," final-wp. */
static void auth_hmac(const struct sasl *s, const uint8_t *key, const char *fwp, size_t fwp_len,
                      uint8_t out[SCRAM_KEY_MAX])
{
    enum scram_hash h = s->creds.hash;
    size_t hl = scram_hash_len(h);
    unsigned n;
    HMAC_CTX ctx;

    HMAC_CTX_init(&ctx);
    if (!HMAC_Init_ex(&ctx, key, hl, h == SCRAM_SHA1 ? EVP_sha1() : EVP_sha256(), NULL) ||
        !HMAC_Update(&ctx, (const uint8_t *)s->msg + s->gs2_len, s->first_len - s->gs2_len) ||
        !HMAC_Update(&ctx, (const uint8_t *)",", 1) ||
        !HMAC_Update(&ctx, (const uint8_t *)s->sfirst, s->sfirst_len) ||
        !HMAC_Update(&ctx, (const uint8_t *)",", 1) ||
        !HMAC_Update(&ctx, (const uint8_t *)fwp, fwp_len) || !HMAC_Final(&ctx, out, &n))
        abort(); /* cannot fail with a known digest */
    HMAC_CTX_cleanup(&ctx);
}

/* client-final-message = "c=" b64 "," "r=" nonce ["," extensions] "," "p=" b64 */
static enum sasl_ev scram_final(struct sasl *s, const char *m, size_t n, struct sasl_event *ev)
{
    const char *p = m, *end = m + n, *comma, *q;
    uint8_t cbind[SASL_MSG_MAX], want[SASL_MSG_MAX + sizeof s->tls.end_point];
    uint8_t proof[SCRAM_KEY_MAX + 3], sig[SCRAM_KEY_MAX], key[SCRAM_KEY_MAX];
    size_t cbind_len, proof_len, want_len, hl = scram_hash_len(s->creds.hash);
    char v[3 + 4 * SCRAM_KEY_MAX / 3 + 4];

    if (memchr(m, 0, n))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    /* The proof is the last attribute and holds no ','. (EVP_DecodeBase64 wants room for the
     * longest output the input length allows, padding not counted: hence the +3.) */
    comma = memrchr(m, ',', n);
    if (!comma || end - comma < 4 || comma[1] != 'p' || comma[2] != '=')
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (!EVP_DecodeBase64(proof, &proof_len, sizeof proof, (const uint8_t *)comma + 3,
                          (size_t)(end - comma - 3)) ||
        proof_len != hl)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    end = comma; /* now the end of client-final-message-without-proof */

    if (!attr(&p, end, 'c'))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    q = memchr(p, ',', (size_t)(end - p));
    if (!q ||
        !EVP_DecodeBase64(cbind, &cbind_len, sizeof cbind, (const uint8_t *)p, (size_t)(q - p)))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    p = q + 1;
    if (!attr(&p, end, 'r'))
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    q = p;
    while (p < end && *p != ',')
        p++;
    if (!skip_extensions(p, end))
        return fail(s, SASL_MALFORMED_REQUEST, ev);

    /* Every check runs, whatever the others found; one verdict at the end. */
    bool nonce_ok =
        (size_t)(p - q) == s->nonce_len && CRYPTO_memcmp(q, s->sfirst + 2, s->nonce_len) == 0;

    /* c= must be our gs2 header, followed by the binding data when p= was used. */
    memcpy(want, s->msg, s->gs2_len);
    want_len = s->gs2_len;
    if (s->cb == SASL_CB_TLS_EXPORTER) {
        memcpy(want + want_len, s->tls.exporter, sizeof s->tls.exporter);
        want_len += sizeof s->tls.exporter;
    } else if (s->cb == SASL_CB_TLS_SERVER_END_POINT) {
        memcpy(want + want_len, s->tls.end_point, s->tls.end_point_len);
        want_len += s->tls.end_point_len;
    } else if (s->cb == SASL_CB_TLS_UNIQUE) {
        memcpy(want + want_len, s->tls.unique, s->tls.unique_len);
        want_len += s->tls.unique_len;
    }
    bool cb_ok = cbind_len == want_len && CRYPTO_memcmp(cbind, want, want_len) == 0;

    /* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) = StoredKey? */
    auth_hmac(s, s->creds.stored_key, m, (size_t)(end - m), sig);
    for (size_t i = 0; i < hl; i++)
        key[i] = proof[i] ^ sig[i];
    scram_digest(s->creds.hash, key, hl, sig);
    bool proof_ok = CRYPTO_memcmp(sig, s->creds.stored_key, hl) == 0;
    auth_hmac(s, s->creds.server_key, m, (size_t)(end - m), sig); /* ServerSignature */
    OPENSSL_cleanse(key, sizeof key);

    if (!(nonce_ok & cb_ok & proof_ok & !s->fake))
        return fail(s, SASL_NOT_AUTHORIZED, ev);

    /* server-final-message = "v=" base64(ServerSignature), as additional data with success */
    memcpy(v, "v=", 2);
    size_t vn = 2 + EVP_EncodeBlock((uint8_t *)v + 2, sig, hl);
    s->state = ST_DONE;
    OPENSSL_cleanse(&s->creds, sizeof s->creds);
    return emit(s, SASL_EV_SUCCESS, v, vn, ev);
}

/* ---- driving --------------------------------------------------------------------------- */

static enum sasl_ev first_message(struct sasl *s, const uint8_t *m, size_t n, struct sasl_event *ev)
{
    if (n == 0)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (s->mech == SASL_PLAIN)
        return plain_first(s, m, n, ev);
    return scram_first(s, (const char *)m, n, ev);
}

enum sasl_ev sasl_start(struct sasl *s, const char *mech, size_t mech_len, const char *b64,
                        size_t len, struct sasl_event *ev)
{
    uint8_t buf[SASL_MSG_MAX + 2];
    size_t n;
    enum sasl_cond c;

    if (s->state != ST_START)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    s->mech = sasl_mech_parse(mech, mech_len);
    if (!(sasl_offer(s->cfg, &s->tls) & SASL_MECH_BIT(s->mech))) {
        /* PLAIN that this host allows, asked for before TLS */
        struct sasl_tls with_tls = s->tls;
        with_tls.active = true;
        if (s->mech == SASL_PLAIN && (sasl_offer(s->cfg, &with_tls) & SASL_MECH_BIT(SASL_PLAIN)))
            return fail(s, SASL_ENCRYPTION_REQUIRED, ev);
        return fail(s, SASL_INVALID_MECHANISM, ev);
    }
    if (len == 0) {
        /* No initial response: both mechanisms are client-first, so an empty challenge. */
        s->state = ST_WAIT_FIRST;
        return emit(s, SASL_EV_CHALLENGE, NULL, 0, ev);
    }
    c = decode(b64, len, buf, &n);
    if (c != SASL_COND_NONE)
        return fail(s, c, ev);
    enum sasl_ev r = first_message(s, buf, n, ev);
    OPENSSL_cleanse(buf, n);
    return r;
}

enum sasl_ev sasl_step(struct sasl *s, const char *b64, size_t len, struct sasl_event *ev)
{
    uint8_t buf[SASL_MSG_MAX + 2];
    size_t n;
    enum sasl_cond c;
    enum sasl_ev r;

    if (s->state != ST_WAIT_FIRST && s->state != ST_WAIT_FINAL)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    c = decode(b64, len, buf, &n);
    if (c != SASL_COND_NONE)
        return fail(s, c, ev);
    if (s->state == ST_WAIT_FIRST)
        r = first_message(s, buf, n, ev);
    else
        r = scram_final(s, (const char *)buf, n, ev);
    OPENSSL_cleanse(buf, n);
    return r;
}

enum sasl_ev sasl_creds(struct sasl *s, const struct scram_creds *c, struct sasl_event *ev)
{
    enum scram_hash h = mech_hash(s->mech);

    if (s->state != ST_WAIT_CREDS)
        return fail(s, SASL_MALFORMED_REQUEST, ev);
    if (c && (c->hash != h || !scram_creds_valid(c)))
        return fail(s, SASL_TEMPORARY_AUTH_FAILURE, ev); /* the store gave us garbage */
    uint8_t mac[SCRAM_KEY_MAX];
    fake_mac(s, h, mac); /* for every user: see fake_creds() */
    if (c) {
        s->creds = *c;
        s->fake = false;
    } else {
        fake_creds(s, h, mac);
    }
    if (s->mech == SASL_PLAIN) {
        s->state = ST_WAIT_VERIFY;
        memset(ev, 0, sizeof *ev);
        ev->kind = SASL_EV_NEED_VERIFY;
        ev->user = s->user;
        return ev->kind;
    }
    return scram_server_first(s, ev);
}

enum sasl_ev sasl_fail(struct sasl *s, enum sasl_cond cond, struct sasl_event *ev)
{
    return fail(s, cond, ev);
}
