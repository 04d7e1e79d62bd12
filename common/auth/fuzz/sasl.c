/*
 * libFuzzer driver of the SASL machine (common/auth/sasl.c): arbitrary client messages for every
 * mechanism, against fixed credentials ("user"/"pencil", the RFCs' salts).
 *
 * Input: one mode byte, then the client's messages separated by the two bytes FF FE.
 *   bits 0-2  mechanism: the five of sasl.h, then three names that are not offered
 *   bit 3     TLS active with both channel bindings (fixed bytes, see below)
 *   bit 4     the store has the account "user" (else it has none)
 *   bit 5     no initial response: <auth/> is empty and the first message is a <response/>
 *   bit 6     messages are the element's base64 text as is (else the driver encodes them)
 *   bit 7     fixed server nonce (the RFC examples'), so that seeds can complete an exchange
 * Checks, besides ASan/UBSan: SUCCESS only for the existing user "user"; CHALLENGE and
 * SUCCESS text is valid base64 of bounded length; a FAILURE names an RFC 6120 condition;
 * nothing is accepted after the exchange ended; a PLAIN password never outlives its check.
 */
#include "common/auth/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>

static const char *const mechs[8] = {
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
    "DIGEST-MD5",
    "scram-sha-1",
    "",
};

static struct scram_creds sha1, sha256, plain;
static struct sasl_config cfg;
static struct sasl_tls tls_on, tls_off;

static void init(void)
{
    static const uint8_t salt1[] = {0x41, 0x25, 0xc2, 0x47, 0xe4, 0x3a,
                                    0xb1, 0xe9, 0x3c, 0x6d, 0xff, 0x76}; /* QSXCR+Q6sek8bf92 */
    static const uint8_t salt256[] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                      0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
    if (scram_creds_derive(SCRAM_SHA1, "pencil", salt1, sizeof salt1, 4096, &sha1) ||
        scram_creds_derive(SCRAM_SHA256, "pencil", salt256, sizeof salt256, 4096, &sha256) ||
        /* PLAIN runs PBKDF2 on every attempt: one iteration keeps the fuzzer fast */
        scram_creds_derive(SCRAM_SHA256, "pencil", salt256, sizeof salt256, 1, &plain))
        abort();
    cfg.domain = "example.org";
    cfg.mechs = (SASL_MECH_BIT(SASL_MECH_COUNT) - 1) & ~SASL_MECH_BIT(SASL_MECH_NONE);
    memset(cfg.secret, 7, sizeof cfg.secret);
    cfg.fake_iterations = 1;
    tls_on.active = true;
    tls_on.cb = SASL_CB_TLS_EXPORTER | SASL_CB_TLS_SERVER_END_POINT;
    memset(tls_on.exporter, 0x11, sizeof tls_on.exporter);
    memset(tls_on.end_point, 0x22, 32);
    tls_on.end_point_len = 32;
}

/* Checks an event's text and returns whether the exchange goes on. */
static void check_text(const struct sasl_event *ev)
{
    uint8_t buf[4096];
    size_t n;
    if (ev->len > 4 * (SASL_MSG_MAX + 128) / 3 + 4)
        abort();
    if (ev->kind == SASL_EV_CHALLENGE && ev->len == 0)
        abort(); /* an empty challenge is "=" */
    if (ev->len == 0 || (ev->len == 1 && ev->text[0] == '='))
        return;
    if (!EVP_DecodeBase64(buf, &n, sizeof buf, (const uint8_t *)ev->text, ev->len))
        abort();
}

/* Next message: [*p, sep) or [*p, end). NULL when none is left. */
static const uint8_t *next_msg(const uint8_t **p, const uint8_t *end, size_t *n)
{
    const uint8_t *m = *p, *q;
    if (!m)
        return NULL;
    for (q = m; q + 1 < end; q++)
        if (q[0] == 0xff && q[1] == 0xfe)
            break;
    if (q + 1 < end) {
        *n = (size_t)(q - m);
        *p = q + 2;
    } else {
        *n = (size_t)(end - m);
        *p = NULL;
    }
    return m;
}

/* The element text for message m: as is, or base64 of it (into buf). */
static const char *as_text(const uint8_t *m, size_t n, bool raw, char *buf, size_t *len)
{
    if (raw) {
        *len = n;
        return (const char *)m;
    }
    if (n == 0) {
        *len = 1;
        return "=";
    }
    *len = EVP_EncodeBlock((uint8_t *)buf, m, n);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    static char text[8192];
    struct sasl s;
    struct sasl_event ev;
    enum sasl_ev r;
    const uint8_t *p, *end = data + size, *m;
    size_t n, tn;

    if (!ready) {
        init();
        ready = true;
    }
    if (size < 1 || size > 6000)
        return 0;
    uint8_t mode = data[0];
    const char *mech = mechs[mode & 7];
    bool known = mode & 0x10, raw = mode & 0x40, none_first = mode & 0x20;
    enum sasl_mech mm = sasl_mech_parse(mech, strlen(mech));
    bool sha1_mech = mm == SASL_SCRAM_SHA1 || mm == SASL_SCRAM_SHA1_PLUS;

    sasl_init(&s, &cfg, (mode & 8) ? &tls_on : &tls_off);
    if (mode & 0x80)
        sasl_test_nonce(&s, sha1_mech ? "3rfcNHYJY1ZVvWVs7j" : "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");

    p = data + 1;
    if (none_first) {
        r = sasl_start(&s, mech, strlen(mech), NULL, 0, &ev);
    } else {
        m = next_msg(&p, end, &n);
        const char *t = as_text(m, n, raw, text, &tn);
        /* raw and empty: no initial response; encoded and empty: "=" */
        r = sasl_start(&s, mech, strlen(mech), t, tn, &ev);
    }
    for (int round = 0; round < 8; round++) {
        switch (r) {
        case SASL_EV_NEED_CREDS:
            if (!ev.user || !ev.user[0] || strlen(ev.user) >= SASL_USER_MAX)
                abort();
            if (ev.hash != (sha1_mech ? SCRAM_SHA1 : SCRAM_SHA256))
                abort();
            /* The store has one account. */
            if (!known || strcmp(ev.user, "user") != 0)
                r = sasl_creds(&s, NULL, &ev);
            else
                r = sasl_creds(&s, mm == SASL_PLAIN ? &plain : sha1_mech ? &sha1 : &sha256, &ev);
            continue;
        case SASL_EV_NEED_VERIFY:
            sasl_verify(&s);
            for (size_t i = 0; i < sizeof s.msg; i++)
                if (s.msg[i])
                    abort(); /* the password must be gone */
            r = sasl_resume(&s, &ev);
            continue;
        case SASL_EV_CHALLENGE:
            check_text(&ev);
            m = next_msg(&p, end, &n);
            if (!m)
                goto out;
            {
                const char *t = as_text(m, n, raw, text, &tn);
                r = sasl_step(&s, t, tn, &ev);
            }
            continue;
        case SASL_EV_SUCCESS:
            check_text(&ev);
            if (!known || strcmp(ev.user, "user") != 0)
                abort();
            goto ended;
        case SASL_EV_FAILURE:
            if (ev.cond == SASL_COND_NONE || !sasl_cond_name(ev.cond))
                abort();
            goto ended;
        }
        abort(); /* no other event exists */
    }
    goto out;
ended:
    /* Whatever comes after the end is refused. */
    if (sasl_step(&s, "biws", 4, &ev) != SASL_EV_FAILURE)
        abort();
out:
    sasl_wipe(&s);
    return 0;
}
