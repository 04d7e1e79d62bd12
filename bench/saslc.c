#include "bench/saslc.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* saslc.state */
enum { ST_FIRST = 1, ST_FINAL, ST_VERIFIED, ST_PLAIN };

/* Largest server-first-message accepted: a long nonce and salt still fit. */
#define SERVER_FIRST_MAX 512

const char *saslc_mech_name(enum saslc_mech m)
{
    switch (m) {
    case SASLC_PLAIN:
        return "PLAIN";
    case SASLC_SCRAM_SHA1:
        return "SCRAM-SHA-1";
    case SASLC_SCRAM_SHA256:
        return "SCRAM-SHA-256";
    }
    return "?";
}

int saslc_mech_parse(const char *name)
{
    for (int m = SASLC_PLAIN; m <= SASLC_SCRAM_SHA256; m++)
        if (!strcmp(name, saslc_mech_name((enum saslc_mech)m)))
            return m;
    return -EINVAL;
}

static enum scram_hash hash_of(const struct saslc *s)
{
    return s->mech == SASLC_SCRAM_SHA1 ? SCRAM_SHA1 : SCRAM_SHA256;
}

/* base64 of in[0..n) into out, NUL-terminated: its length, or -ENOSPC. */
static int b64(const void *in, size_t n, char *out, size_t cap)
{
    size_t need;
    if (!EVP_EncodedLength(&need, n) || need > cap)
        return -ENOSPC;
    return (int)EVP_EncodeBlock((uint8_t *)out, in, n);
}

/* Decodes base64 in[0..n) into out (cap bytes, NUL-terminated): the length, or -EBADMSG. */
static int unb64(const char *in, size_t n, char *out, size_t cap)
{
    size_t len, need;
    if (!EVP_DecodedLength(&need, n) || need >= cap ||
        !EVP_DecodeBase64((uint8_t *)out, &len, cap - 1, (const uint8_t *)in, n))
        return -EBADMSG;
    out[len] = '\0';
    return (int)len;
}

int saslc_start(struct saslc *s, enum saslc_mech m, const char *user, const char *password,
                const char *nonce, char *out, size_t cap)
{
    char prep[SASLC_BARE_MAX];
    memset(s, 0, sizeof *s);
    s->mech = (uint8_t)m;
    if (!user || !password || !*user || !*password)
        return -EINVAL;
    if (m == SASLC_PLAIN) {
        /* authzid empty, authcid, password (RFC 4616 §2); the server prepares both. */
        char msg[2 + SASLC_BARE_MAX + SCRAM_PASSWORD_MAX];
        size_t ul = strlen(user), pl = strlen(password);
        if (ul >= SASLC_BARE_MAX || pl > SCRAM_PASSWORD_MAX)
            return -EINVAL;
        msg[0] = '\0';
        memcpy(msg + 1, user, ul);
        msg[1 + ul] = '\0';
        memcpy(msg + 2 + ul, password, pl);
        int r = b64(msg, 2 + ul + pl, out, cap);
        OPENSSL_cleanse(msg, sizeof msg);
        s->state = ST_PLAIN;
        return r;
    }
    if (m != SASLC_SCRAM_SHA1 && m != SASLC_SCRAM_SHA256)
        return -EINVAL;
    int pl = scram_saslprep(user, strlen(user), prep, sizeof prep, false);
    if (pl < 0)
        return -EINVAL;

    /* client-first-message-bare: n=saslname,r=c-nonce, with ',' and '=' escaped
     * (RFC 5802 §5.1). */
    char nbuf[4 * SASLC_NONCE_RAW];
    if (!nonce) {
        uint8_t raw[SASLC_NONCE_RAW];
        RAND_bytes(raw, sizeof raw);
        b64(raw, sizeof raw, nbuf, sizeof nbuf);
        nonce = nbuf;
    } else if (!*nonce || strchr(nonce, ',')) {
        return -EINVAL;
    }
    size_t o = 0, nl = strlen(nonce);
    s->bare[o++] = 'n';
    s->bare[o++] = '=';
    for (int i = 0; i < pl; i++) {
        const char *esc = prep[i] == ',' ? "=2C" : prep[i] == '=' ? "=3D" : NULL;
        size_t el = esc ? 3 : 1;
        if (o + el + 3 + nl >= sizeof s->bare)
            return -EINVAL;
        memcpy(s->bare + o, esc ? esc : &prep[i], el);
        o += el;
    }
    memcpy(s->bare + o, ",r=", 3);
    s->nonce_off = (uint16_t)(o + 3);
    memcpy(s->bare + o + 3, nonce, nl);
    o += 3 + nl;
    s->bare[o] = '\0';
    s->bare_len = (uint16_t)o;

    char first[3 + SASLC_BARE_MAX];
    memcpy(first, "n,,", 3);
    memcpy(first + 3, s->bare, o);
    s->state = ST_FIRST;
    return b64(first, 3 + o, out, cap);
}

/* Derives ClientKey and ServerKey, through the cache when it matches. */
static int keys_for(const struct saslc *s, const char *password, const uint8_t *salt,
                    size_t salt_len, uint32_t iter, struct saslc_keys *cache, struct saslc_keys *k)
{
    enum scram_hash h = hash_of(s);
    if (cache && cache->hash == h && cache->iterations == iter && cache->salt_len == salt_len &&
        !memcmp(cache->salt, salt, salt_len)) {
        *k = *cache;
        return 0;
    }
    char prep[SCRAM_PASSWORD_MAX + 1];
    uint8_t sp[SCRAM_KEY_MAX];
    int pl = scram_saslprep(password, strlen(password), prep, sizeof prep, false);
    if (pl < 0 || salt_len > SCRAM_SALT_MAX)
        return -EINVAL;
    int r = scram_salted_password(h, prep, (size_t)pl, salt, salt_len, iter, sp);
    OPENSSL_cleanse(prep, sizeof prep);
    if (r < 0)
        return r;
    memset(k, 0, sizeof *k);
    k->hash = (uint8_t)h;
    k->iterations = iter;
    k->salt_len = (uint8_t)salt_len;
    memcpy(k->salt, salt, salt_len);
    scram_hmac(h, sp, scram_hash_len(h), "Client Key", 10, k->client_key);
    scram_hmac(h, sp, scram_hash_len(h), "Server Key", 10, k->server_key);
    OPENSSL_cleanse(sp, sizeof sp);
    if (cache)
        *cache = *k;
    return 0;
}

/* Checks "v=<base64 ServerSignature>" (or reports "e=<error>") in msg. */
static int check_final(struct saslc *s, const char *msg, size_t n)
{
    uint8_t sig[SCRAM_KEY_MAX + 4];
    size_t hl = scram_hash_len(hash_of(s)), len;
    if (n >= 2 && !memcmp(msg, "e=", 2))
        return -EPROTO;
    if (n < 2 || memcmp(msg, "v=", 2) != 0)
        return -EBADMSG;
    /* Extensions may follow the signature (RFC 5802 §7); none is understood. */
    const char *end = memchr(msg, ',', n);
    size_t vl = (end ? (size_t)(end - msg) : n) - 2;
    if (!EVP_DecodeBase64(sig, &len, sizeof sig, (const uint8_t *)msg + 2, vl) || len != hl ||
        CRYPTO_memcmp(sig, s->server_sig, hl) != 0)
        return -EPROTO;
    s->state = ST_VERIFIED;
    return 0;
}

/* The value of attribute `a` ("r=", "s=", "i=") at *p in msg[..end), advancing past it. */
static bool attr(const char **p, const char *end, char a, const char **v, size_t *vl)
{
    if (end - *p < 2 || (*p)[0] != a || (*p)[1] != '=')
        return false;
    *v = *p + 2;
    const char *c = memchr(*v, ',', (size_t)(end - *v));
    *vl = (size_t)((c ? c : end) - *v);
    *p = c ? c + 1 : end;
    return true;
}

static int client_final(struct saslc *s, const char *password, struct saslc_keys *cache,
                        const char *sfirst, size_t sl, char *out, size_t cap)
{
    const char *p = sfirst, *end = sfirst + sl, *r, *salt_b64, *it;
    size_t rl, saltl, itl;
    uint8_t salt[SCRAM_SALT_MAX + 4];
    size_t salt_len;

    /* r=nonce,s=salt,i=count[,ext]: a leading m= is a mandatory extension we lack. */
    if (!attr(&p, end, 'r', &r, &rl) || !attr(&p, end, 's', &salt_b64, &saltl) ||
        !attr(&p, end, 'i', &it, &itl))
        return -EBADMSG;
    const char *cnonce = s->bare + s->nonce_off;
    size_t cl = (size_t)(s->bare_len - s->nonce_off);
    if (rl <= cl || memcmp(r, cnonce, cl) != 0)
        return -EPROTO;
    if (!EVP_DecodeBase64(salt, &salt_len, sizeof salt, (const uint8_t *)salt_b64, saltl) ||
        salt_len == 0 || salt_len > SCRAM_SALT_MAX)
        return -EBADMSG;
    uint64_t iter = 0;
    if (!itl || itl > 10)
        return -EINVAL;
    for (size_t i = 0; i < itl; i++) {
        if (it[i] < '0' || it[i] > '9')
            return -EBADMSG;
        iter = iter * 10 + (uint64_t)(it[i] - '0');
    }
    if (iter < 1 || iter > SCRAM_MAX_ITERATIONS)
        return -EINVAL;

    struct saslc_keys k;
    int err = keys_for(s, password, salt, salt_len, (uint32_t)iter, cache, &k);
    if (err < 0)
        return err;
    enum scram_hash h = hash_of(s);
    size_t hl = scram_hash_len(h);

    /* client-final-message-without-proof: c=base64("n,,"),r=nonce */
    char fwp[16 + SERVER_FIRST_MAX];
    int fl = 0;
    memcpy(fwp, "c=biws,r=", 9);
    memcpy(fwp + 9, r, rl);
    fl = 9 + (int)rl;

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char am[SASLC_BARE_MAX + SERVER_FIRST_MAX + sizeof fwp + 2];
    size_t al = 0;
    memcpy(am, s->bare, s->bare_len);
    al += s->bare_len;
    am[al++] = ',';
    memcpy(am + al, sfirst, sl);
    al += sl;
    am[al++] = ',';
    memcpy(am + al, fwp, (size_t)fl);
    al += (size_t)fl;

    uint8_t stored[SCRAM_KEY_MAX], csig[SCRAM_KEY_MAX], proof[SCRAM_KEY_MAX];
    scram_digest(h, k.client_key, hl, stored);
    scram_hmac(h, stored, hl, am, al, csig);
    for (size_t i = 0; i < hl; i++)
        proof[i] = k.client_key[i] ^ csig[i];
    scram_hmac(h, k.server_key, hl, am, al, s->server_sig);
    OPENSSL_cleanse(&k, sizeof k);

    char final[sizeof fwp + 8 + 2 * SCRAM_KEY_MAX];
    memcpy(final, fwp, (size_t)fl);
    memcpy(final + fl, ",p=", 3);
    int pb = b64(proof, hl, final + fl + 3, sizeof final - (size_t)fl - 3);
    if (pb < 0)
        return pb;
    s->state = ST_FINAL;
    return b64(final, (size_t)fl + 3 + (size_t)pb, out, cap);
}

int saslc_step(struct saslc *s, const char *password, struct saslc_keys *keys, const char *in,
               size_t n, char *out, size_t cap)
{
    char msg[SERVER_FIRST_MAX];
    int ml = unb64(in, n, msg, sizeof msg);
    if (ml < 0)
        return ml;
    if (cap)
        out[0] = '\0';
    switch (s->state) {
    case ST_FIRST:
        return client_final(s, password, keys, msg, (size_t)ml, out, cap);
    case ST_FINAL: {
        /* server-final-message as a challenge: answered with an empty response. */
        int r = check_final(s, msg, (size_t)ml);
        return r < 0 ? r : 0;
    }
    default:
        return -EPROTO; /* PLAIN has no challenge; a verified exchange has no more */
    }
}

int saslc_success(struct saslc *s, const char *in, size_t n)
{
    if (s->state == ST_PLAIN)
        return 0;
    if (n) {
        char msg[SERVER_FIRST_MAX];
        int ml = unb64(in, n, msg, sizeof msg);
        if (ml < 0)
            return ml;
        if (s->state == ST_FINAL)
            return check_final(s, msg, (size_t)ml);
        return s->state == ST_VERIFIED ? 0 : -EPROTO;
    }
    return s->state == ST_VERIFIED ? 0 : -EPROTO;
}
