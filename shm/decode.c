#include "shm/decode.h"

#include <errno.h>
#include <string.h>

/* Copies the fixed header of `size` bytes out of the frame. */
static int head(const void *frame, uint32_t len, void *h, size_t size)
{
    if (len < size)
        return -EBADMSG;
    memcpy(h, frame, size);
    return 0;
}

int decode_stanza(const void *frame, uint32_t len, struct decode_stanza *out)
{
    struct proto_stanza *h = &out->h;
    if (head(frame, len, h, sizeof *h) < 0)
        return -EBADMSG;
    uint64_t need = sizeof *h + (uint64_t)h->from_len + h->to_len + h->stanza_len;
    /* from is a full JID from a front end, a bare one when the server speaks for an
     * account (subscription answers); the domain of `to` lies inside its bare part. */
    if (need > len || !h->from_bare_len || h->from_bare_len > h->from_len ||
        h->to_bare_len > h->to_len ||
        (uint32_t)h->to_domain_off + h->to_domain_len > h->to_bare_len ||
        h->head_len > h->stanza_len || h->kind > PROTO_IQ || !h->stanza_len)
        return -EBADMSG;
    out->from = (const char *)frame + sizeof *h;
    out->to = out->from + h->from_len;
    out->raw = out->to + h->to_len;
    return 0;
}

int decode_remote_env(const void *frame, uint32_t len, struct proto_remote_env *env,
                      const void **payload, uint32_t *plen)
{
    if (head(frame, len, env, sizeof *env) < 0)
        return -EBADMSG;
    *payload = (const char *)frame + sizeof *env;
    *plen = len - (uint32_t)sizeof *env;
    return 0;
}

int decode_remote_ack(const void *frame, uint32_t len, struct decode_remote_ack *out)
{
    struct proto_remote_ack *h = &out->h;
    if (head(frame, len, h, sizeof *h) < 0 ||
        sizeof *h + (uint64_t)h->n * sizeof(uint64_t) > len)
        return -EBADMSG;
    out->seqs = (const char *)frame + sizeof *h;
    return 0;
}

int decode_remote_fanout(const void *frame, uint32_t len, struct decode_remote_fanout *out)
{
    struct proto_remote_fanout *h = &out->h;
    if (head(frame, len, h, sizeof *h) < 0)
        return -EBADMSG;
    uint64_t need = sizeof *h + (uint64_t)h->domain_len + h->stanza_len;
    if (need > len || !h->domain_len || !h->stanza_len || h->to_at > h->stanza_len)
        return -EBADMSG;
    out->domain = (const char *)frame + sizeof *h;
    out->stanza = out->domain + h->domain_len;
    out->list = out->stanza + h->stanza_len;
    out->end = (const char *)frame + len;
    return 0;
}

bool decode_fanout_next(const char **p, const char *end, const char **jid, uint16_t *len)
{
    if (end - *p < 2)
        return false;
    memcpy(len, *p, 2);
    if ((size_t)(end - *p - 2) < *len || !*len)
        return false;
    *jid = *p + 2;
    *p += 2 + *len;
    return true;
}

int decode_session(const void *frame, uint32_t len, struct decode_session *out)
{
    struct proto_session *h = &out->h;
    if (head(frame, len, h, sizeof *h) < 0)
        return -EBADMSG;
    uint64_t need = sizeof *h + (uint64_t)h->jid_len + h->presence_len + h->directed_len +
                    ((h->flags & PROTO_SESSION_SM) ? PROTO_SM_TOKEN_LEN : 0);
    /* A full JID: the bare part, '/', a resource. */
    if (need > len || !h->bare_len || h->bare_len >= h->jid_len)
        return -EBADMSG;
    out->jid = (const char *)frame + sizeof *h;
    if (out->jid[h->bare_len] != '/')
        return -EBADMSG;
    out->presence = out->jid + h->jid_len;
    out->directed = out->presence + h->presence_len;
    out->token = (h->flags & PROTO_SESSION_SM)
                     ? (const uint8_t *)out->directed + h->directed_len
                     : NULL;
    return 0;
}

bool decode_directed_next(const char **p, const char *end, const char **jid, uint16_t *len)
{
    if (end - *p < 2)
        return false;
    memcpy(len, *p, 2);
    if (*len > end - *p - 2)
        return false;
    *jid = *p + 2;
    *p += 2 + *len;
    return true;
}

int decode_deliver(const void *frame, uint32_t len, struct decode_deliver *out)
{
    struct proto_deliver *h = &out->h;
    if (head(frame, len, h, sizeof *h) < 0)
        return -EBADMSG;
    uint64_t need = sizeof *h + (uint64_t)h->nrcpt * sizeof(struct proto_rcpt) + h->stanza_len +
                    h->attr_len;
    if (need > len || h->to_at > h->stanza_len)
        return -EBADMSG;
    out->rcpt = (const unsigned char *)frame + sizeof *h;
    out->stanza = (const char *)out->rcpt + (size_t)h->nrcpt * sizeof(struct proto_rcpt);
    out->attrs = out->stanza + h->stanza_len;
    return 0;
}

int decode_rcpt(const struct decode_deliver *d, uint32_t i, struct proto_rcpt *out)
{
    if (i >= d->h.nrcpt)
        return -EBADMSG;
    memcpy(out, d->rcpt + (size_t)i * sizeof *out, sizeof *out);
    if ((uint64_t)out->to_off + out->to_len > d->h.attr_len)
        return -EBADMSG;
    return 0;
}

int decode_bind_result(const void *frame, uint32_t len, struct decode_bind_result *out)
{
    if (head(frame, len, &out->h, sizeof out->h) < 0 ||
        sizeof out->h + (uint64_t)out->h.jid_len > len)
        return -EBADMSG;
    out->jid = (const char *)frame + sizeof out->h;
    return 0;
}

int decode_session_state(const void *frame, uint32_t len, struct decode_session_state *out)
{
    if (head(frame, len, &out->h, sizeof out->h) < 0 ||
        sizeof out->h + (uint64_t)out->h.directed_len > len)
        return -EBADMSG;
    out->directed = (const char *)frame + sizeof out->h;
    return 0;
}

int decode_close(const void *frame, uint32_t len, struct proto_close *out)
{
    if (head(frame, len, out, sizeof *out) < 0 || out->condition > PROTO_SE_RESET)
        return -EBADMSG;
    return 0;
}
