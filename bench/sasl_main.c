/*
 * sasl: the server's CPU per SASL login, with credentials as the store keeps them
 * (StoredKey/ServerKey, 4096 iterations): everything the server does for one exchange,
 * from the base64 of <auth/> to the base64 of <success/> (sasl_init, sasl_start,
 * sasl_creds, sasl_step, sasl_wipe). The client's work (its proof) is done between the
 * timed parts and not counted; like a real client it computed its SaltedPassword once.
 * PLAIN is shown for comparison: its PBKDF2 runs on every login.
 *
 * usage: sasl [-n logins] [-r rounds]      prints the best round of each case
 */
#include "common/auth/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/base64.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

struct client {
    enum scram_hash h;
    uint8_t client_key[SCRAM_KEY_MAX], stored_key[SCRAM_KEY_MAX];
};

/* The client's final message for server-first sfirst (base64 in, base64 out). */
static size_t client_final(const struct client *c, const char *first, const char *cbind_b64,
                           const struct sasl_event *ev, char *out)
{
    char sfirst[1024], fwp[512], am[2048];
    uint8_t sig[SCRAM_KEY_MAX], proof[SCRAM_KEY_MAX], raw[1024];
    size_t n, hl = scram_hash_len(c->h);

    EVP_DecodeBase64((uint8_t *)sfirst, &n, sizeof sfirst - 1, (const uint8_t *)ev->text, ev->len);
    sfirst[n] = 0;
    const char *r = sfirst + 2, *comma = strchr(sfirst, ',');
    snprintf(fwp, sizeof fwp, "c=%s,r=%.*s", cbind_b64, (int)(comma - r), r);
    int an = snprintf(am, sizeof am, "%s,%s,%s", strstr(first, "n="), sfirst, fwp);
    scram_hmac(c->h, c->stored_key, hl, am, (size_t)an, sig);
    for (size_t i = 0; i < hl; i++)
        proof[i] = c->client_key[i] ^ sig[i];
    int rn = snprintf((char *)raw, sizeof raw, "%s,p=", fwp);
    rn += (int)EVP_EncodeBlock(raw + rn, proof, hl);
    return EVP_EncodeBlock((uint8_t *)out, raw, (size_t)rn);
}

/* One round of n logins; returns the server's nanoseconds per login. */
static double scram_round(const struct sasl_config *cfg, const struct sasl_tls *tls,
                          const char *mech, const char *gs2, const struct scram_creds *creds,
                          const struct client *c, int n, bool known)
{
    static struct sasl s;
    struct sasl_event ev;
    char first[256], first_b64[512], final_b64[1024], cbind_b64[256];
    uint8_t cbind[128];
    double server = 0;
    size_t gl = strlen(gs2), cbl = gl;

    memcpy(cbind, gs2, gl);
    if (strstr(gs2, "tls-exporter")) {
        memcpy(cbind + gl, tls->exporter, 32);
        cbl += 32;
    }
    EVP_EncodeBlock((uint8_t *)cbind_b64, cbind, cbl);
    for (int i = 0; i < n; i++) {
        /* A fresh client nonce per login, as real clients send. */
        int fl = snprintf(first, sizeof first, "%sn=user,r=bench%08dnonce%08x", gs2, i,
                          (unsigned)i * 2654435761u);
        size_t bl = EVP_EncodeBlock((uint8_t *)first_b64, (uint8_t *)first, (size_t)fl);

        double t0 = now_ns();
        sasl_init(&s, cfg, tls);
        enum sasl_ev r = sasl_start(&s, mech, strlen(mech), first_b64, bl, &ev);
        if (r != SASL_EV_NEED_CREDS)
            abort();
        r = sasl_creds(&s, known ? creds : NULL, &ev);
        double t1 = now_ns();
        if (r != SASL_EV_CHALLENGE)
            abort();
        size_t fbl = client_final(c, first, cbind_b64, &ev, final_b64);
        double t2 = now_ns();
        r = sasl_step(&s, final_b64, fbl, &ev);
        sasl_wipe(&s);
        double t3 = now_ns();
        if (r != (known ? SASL_EV_SUCCESS : SASL_EV_FAILURE))
            abort();
        server += (t1 - t0) + (t3 - t2);
    }
    return server / n;
}

static double plain_round(const struct sasl_config *cfg, const struct sasl_tls *tls,
                          const struct scram_creds *creds, int n)
{
    static struct sasl s;
    struct sasl_event ev;
    char b64[64];
    size_t bl = EVP_EncodeBlock((uint8_t *)b64, (const uint8_t *)"\0user\0pencil", 12);
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
        sasl_init(&s, cfg, tls);
        sasl_start(&s, "PLAIN", 5, b64, bl, &ev);
        sasl_creds(&s, creds, &ev);
        sasl_verify(&s);
        if (sasl_resume(&s, &ev) != SASL_EV_SUCCESS)
            abort();
        sasl_wipe(&s);
    }
    return (now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
    int n = 20000, rounds = 5, opt;
    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 'r')
            rounds = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n logins] [-r rounds]\n", argv[0]);
            return 2;
        }
    }

    struct sasl_config cfg = {.domain = "example.org",
                              .mechs = (SASL_MECH_BIT(SASL_MECH_COUNT) - 1) &
                                       ~SASL_MECH_BIT(SASL_MECH_NONE),
                              .fake_iterations = 4096};
    memset(cfg.secret, 1, sizeof cfg.secret);
    struct sasl_tls tls = {.active = true, .cb = SASL_CB_TLS_EXPORTER};
    memset(tls.exporter, 0x42, sizeof tls.exporter);

    struct scram_creds c256, c1;
    struct client cl256 = {.h = SCRAM_SHA256}, cl1 = {.h = SCRAM_SHA1};
    if (scram_creds_make(SCRAM_SHA256, "pencil", 4096, &c256) ||
        scram_creds_make(SCRAM_SHA1, "pencil", 4096, &c1))
        return 1;
    /* The client's cached keys (it ran PBKDF2 once, at its first login). */
    uint8_t sp[SCRAM_KEY_MAX];
    scram_salted_password(SCRAM_SHA256, "pencil", 6, c256.salt, c256.salt_len, 4096, sp);
    scram_hmac(SCRAM_SHA256, sp, 32, "Client Key", 10, cl256.client_key);
    scram_digest(SCRAM_SHA256, cl256.client_key, 32, cl256.stored_key);
    scram_salted_password(SCRAM_SHA1, "pencil", 6, c1.salt, c1.salt_len, 4096, sp);
    scram_hmac(SCRAM_SHA1, sp, 20, "Client Key", 10, cl1.client_key);
    scram_digest(SCRAM_SHA1, cl1.client_key, 20, cl1.stored_key);

    struct {
        const char *label, *mech, *gs2;
        const struct scram_creds *creds;
        const struct client *cl;
        bool known;
    } cases[] = {
        {"SCRAM-SHA-256", "SCRAM-SHA-256", "n,,", &c256, &cl256, true},
        {"SCRAM-SHA-256-PLUS (tls-exporter)", "SCRAM-SHA-256-PLUS", "p=tls-exporter,,", &c256,
         &cl256, true},
        {"SCRAM-SHA-1", "SCRAM-SHA-1", "n,,", &c1, &cl1, true},
        {"SCRAM-SHA-256, unknown user", "SCRAM-SHA-256", "n,,", NULL, &cl256, false},
    };
    printf("server CPU per login, best of %d rounds of %d logins (credentials: 4096 "
           "iterations)\n",
           rounds, n);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double best = 1e18;
        for (int r = 0; r < rounds; r++) {
            double ns = scram_round(&cfg, &tls, cases[k].mech, cases[k].gs2, cases[k].creds,
                                    cases[k].cl, n, cases[k].known);
            if (ns < best)
                best = ns;
        }
        printf("  %-36s %8.2f us\n", cases[k].label, best / 1000);
    }
    double best = 1e18;
    for (int r = 0; r < rounds; r++) {
        double ns = plain_round(&cfg, &tls, &c256, n / 100 > 10 ? n / 100 : 10);
        if (ns < best)
            best = ns;
    }
    printf("  %-36s %8.2f us (PBKDF2 on every login)\n", "PLAIN (SHA-256 credentials)",
           best / 1000);
    return 0;
}
