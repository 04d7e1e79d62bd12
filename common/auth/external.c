/* external: SASL EXTERNAL between servers (see external.h). */
#include "common/auth/external.h"

#include <errno.h>
#include <string.h>

#include <openssl/base64.h>

enum external_state {
    ST_START = 0,
    ST_WAIT_RESPONSE, /* empty challenge sent */
    ST_FAILED,        /* a new <auth/> may start over */
    ST_DONE,          /* success: nothing more on this stream before its restart */
};

bool external_offer(const struct external_peer *p)
{
    return p->tls && p->cert_ok && p->name_ok && p->from && *p->from;
}

int external_mechanisms(struct buf *out)
{
    return buf_puts(out, "<mechanisms xmlns='" EXTERNAL_NS_SASL
                         "'><mechanism>EXTERNAL</mechanism></mechanisms>");
}

void external_init(struct external *x, const struct external_peer *peer)
{
    memset(x, 0, sizeof *x);
    x->peer = *peer;
    x->peer.from = NULL;
    size_t n = peer->from ? strlen(peer->from) : 0;
    if (n && n < sizeof x->from) {
        memcpy(x->from, peer->from, n + 1);
        x->peer.from = x->from;
    }
}

/* Appends a, b and c whole, or nothing. */
static int append3(struct buf *out, const char *a, const char *b, const char *c)
{
    uint32_t mark = out->len;
    if (buf_puts(out, a) || buf_puts(out, b) || buf_puts(out, c)) {
        out->len = mark;
        return -ENOMEM;
    }
    return 0;
}

/* The event, once its element is appended; no event when it could not be (see the header). */
static enum sasl_ev emit(struct buf *out, const char *a, const char *b, const char *c,
                         struct external_event *ev)
{
    if (append3(out, a, b, c) < 0)
        ev->kind = 0;
    return ev->kind;
}

static enum sasl_ev fail(struct external *x, enum sasl_cond cond, struct buf *out,
                         struct external_event *ev)
{
    /* After success the exchange stays over until the stream restarts: a refused second
     * <auth/> must not let a third one succeed again. */
    if (x->state != ST_DONE)
        x->state = ST_FAILED;
    ev->kind = SASL_EV_FAILURE;
    ev->cond = cond;
    return emit(out, "<failure xmlns='" EXTERNAL_NS_SASL "'><", sasl_cond_name(cond),
                "/></failure>", ev);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The authorization identity in b64[0..len) ("=" or nothing: empty), then the verdict. */
static enum sasl_ev finish(struct external *x, const char *b64, size_t len, struct buf *out,
                           struct external_event *ev)
{
    uint8_t authzid[JID_PART_MAX + 1];
    char prepped[JID_PART_MAX + 1];
    size_t n = 0;

    while (len && is_ws(*b64))
        b64++, len--;
    while (len && is_ws(b64[len - 1]))
        len--;
    if (!(len == 0 || (len == 1 && b64[0] == '='))) {
        /* Longer than any domain's base64: no need to decode it to refuse it. */
        if (len > 4 * ((sizeof authzid + 2) / 3))
            return fail(x, SASL_INVALID_AUTHZID, out, ev);
        if (!EVP_DecodeBase64(authzid, &n, sizeof authzid, (const uint8_t *)b64, len))
            return fail(x, SASL_INCORRECT_ENCODING, out, ev);
    }
    if (n) {
        int pl = jid_prep_domain((const char *)authzid, n, prepped, sizeof prepped);
        if (pl <= 0)
            return fail(x, pl == -ENOMEM ? SASL_TEMPORARY_AUTH_FAILURE : SASL_INVALID_AUTHZID, out,
                        ev);
        /* Only the stream's own domain: nobody may authorise as a domain it did not claim
         * (and with no 'from' there is nothing the certificate was matched against). */
        if (!x->peer.from || strcmp(prepped, x->peer.from) != 0)
            return fail(x, SASL_INVALID_AUTHZID, out, ev);
    }
    if (!x->peer.cert_ok || !x->peer.name_ok || !x->peer.from)
        return fail(x, SASL_NOT_AUTHORIZED, out, ev);
    x->state = ST_DONE;
    ev->kind = SASL_EV_SUCCESS;
    ev->domain = x->peer.from;
    return emit(out, "<success xmlns='" EXTERNAL_NS_SASL "'/>", "", "", ev);
}

enum sasl_ev external_start(struct external *x, const char *mech, size_t mech_len, const char *b64,
                            size_t len, struct buf *out, struct external_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (x->state == ST_DONE)
        return fail(x, SASL_MALFORMED_REQUEST, out, ev);
    x->state = ST_START;
    if (mech_len != 8 || memcmp(mech, "EXTERNAL", 8) != 0)
        return fail(x, SASL_INVALID_MECHANISM, out, ev);
    if (!x->peer.tls)
        return fail(x, SASL_ENCRYPTION_REQUIRED, out, ev);
    if (len == 0) {
        x->state = ST_WAIT_RESPONSE;
        ev->kind = SASL_EV_CHALLENGE;
        return emit(out, "<challenge xmlns='" EXTERNAL_NS_SASL "'>=</challenge>", "", "", ev);
    }
    return finish(x, b64, len, out, ev);
}

enum sasl_ev external_step(struct external *x, const char *b64, size_t len, struct buf *out,
                           struct external_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (x->state != ST_WAIT_RESPONSE)
        return fail(x, SASL_MALFORMED_REQUEST, out, ev);
    return finish(x, b64, len, out, ev);
}

enum sasl_ev external_abort(struct external *x, struct buf *out, struct external_event *ev)
{
    memset(ev, 0, sizeof *ev);
    return fail(x, SASL_ABORTED, out, ev);
}

/* ---- the initiating side ------------------------------------------------------------------- */

bool external_client_offered(const struct xml_node *features)
{
    const struct xml_node *m = xml_node_child(features, "mechanisms", EXTERNAL_NS_SASL);
    for (const struct xml_node *c = m ? xml_node_child(m, "mechanism", EXTERNAL_NS_SASL) : NULL; c;
         c = xml_node_next(c, "mechanism", EXTERNAL_NS_SASL)) {
        /* A mechanism name is the element's only text child (no arena needed). */
        const struct xml_node *t = c->children;
        if (t && !t->name.p && !t->next && strcmp(t->text.p, "EXTERNAL") == 0)
            return true;
    }
    return false;
}

int external_client_auth(struct buf *out, const char *authzid)
{
    char b64[4 * ((JID_PART_MAX + 2) / 3) + 1];
    size_t n = authzid ? strlen(authzid) : 0;
    if (n > JID_PART_MAX)
        return -EINVAL;
    if (n)
        EVP_EncodeBlock((uint8_t *)b64, (const uint8_t *)authzid, n);
    else
        memcpy(b64, "=", 2);
    /* base64 needs no escaping */
    return append3(out, "<auth xmlns='" EXTERNAL_NS_SASL "' mechanism='EXTERNAL'>", b64, "</auth>");
}

int external_client_abort(struct buf *out)
{
    return buf_puts(out, "<abort xmlns='" EXTERNAL_NS_SASL "'/>");
}

enum sasl_ev external_client_answer(const struct xml_node *n, enum sasl_cond *cond)
{
    *cond = SASL_COND_NONE;
    if (!n->name.p || strcmp(n->ns.p, EXTERNAL_NS_SASL) != 0)
        return 0;
    if (strcmp(n->name.p, "success") == 0)
        return SASL_EV_SUCCESS;
    if (strcmp(n->name.p, "challenge") == 0)
        return SASL_EV_CHALLENGE;
    if (strcmp(n->name.p, "failure") != 0)
        return 0;
    for (const struct xml_node *c = n->children; c; c = c->next) {
        if (!c->name.p || strcmp(c->ns.p, EXTERNAL_NS_SASL) != 0 || strcmp(c->name.p, "text") == 0)
            continue;
        for (int k = SASL_COND_NONE + 1; sasl_cond_name((enum sasl_cond)k); k++)
            if (strcmp(sasl_cond_name((enum sasl_cond)k), c->name.p) == 0)
                *cond = (enum sasl_cond)k;
        break;
    }
    return SASL_EV_FAILURE;
}
