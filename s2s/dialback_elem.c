/* dialback: keys and elements (see dialback.h); the machine is in dialback.c. */
#include "s2s/dialback.h"

#include "common/xmpp/jid.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <string.h>

#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* Names, and the error types RFC 6120 §8.3.3 gives each condition in its examples. */
static const struct {
    const char *name, *type;
} conds[DIALBACK_COND_COUNT] = {
    [DIALBACK_COND_NONE] = {"", ""},
    [DIALBACK_BAD_REQUEST] = {"bad-request", "modify"},
    [DIALBACK_CONFLICT] = {"conflict", "cancel"},
    [DIALBACK_FEATURE_NOT_IMPLEMENTED] = {"feature-not-implemented", "cancel"},
    [DIALBACK_FORBIDDEN] = {"forbidden", "auth"},
    [DIALBACK_GONE] = {"gone", "cancel"},
    [DIALBACK_INTERNAL_SERVER_ERROR] = {"internal-server-error", "cancel"},
    [DIALBACK_ITEM_NOT_FOUND] = {"item-not-found", "cancel"},
    [DIALBACK_JID_MALFORMED] = {"jid-malformed", "modify"},
    [DIALBACK_NOT_ACCEPTABLE] = {"not-acceptable", "modify"},
    [DIALBACK_NOT_ALLOWED] = {"not-allowed", "cancel"},
    [DIALBACK_NOT_AUTHORIZED] = {"not-authorized", "auth"},
    [DIALBACK_POLICY_VIOLATION] = {"policy-violation", "modify"},
    [DIALBACK_RECIPIENT_UNAVAILABLE] = {"recipient-unavailable", "wait"},
    [DIALBACK_REDIRECT] = {"redirect", "modify"},
    [DIALBACK_REGISTRATION_REQUIRED] = {"registration-required", "auth"},
    [DIALBACK_REMOTE_CONNECTION_FAILED] = {"remote-connection-failed", "cancel"},
    [DIALBACK_REMOTE_SERVER_NOT_FOUND] = {"remote-server-not-found", "cancel"},
    [DIALBACK_REMOTE_SERVER_TIMEOUT] = {"remote-server-timeout", "wait"},
    [DIALBACK_RESOURCE_CONSTRAINT] = {"resource-constraint", "wait"},
    [DIALBACK_SERVICE_UNAVAILABLE] = {"service-unavailable", "cancel"},
    [DIALBACK_SUBSCRIPTION_REQUIRED] = {"subscription-required", "auth"},
    [DIALBACK_UNDEFINED_CONDITION] = {"undefined-condition", "cancel"},
    [DIALBACK_UNEXPECTED_REQUEST] = {"unexpected-request", "wait"},
};

const char *dialback_cond_name(enum dialback_cond c)
{
    return (unsigned)c < DIALBACK_COND_COUNT ? conds[c].name : NULL;
}

const char *dialback_cond_type(enum dialback_cond c)
{
    return (unsigned)c < DIALBACK_COND_COUNT ? conds[c].type : NULL;
}

static enum dialback_cond cond_parse(const char *name)
{
    for (unsigned c = DIALBACK_COND_NONE + 1; c < DIALBACK_COND_COUNT; c++)
        if (strcmp(conds[c].name, name) == 0)
            return (enum dialback_cond)c;
    return DIALBACK_UNDEFINED_CONDITION; /* RFC 6120 §8.3.2: unknown ones read as that */
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
}

void dialback_config_secret(struct dialback_config *c, const void *secret, size_t len)
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(secret, len, d);
    /* XEP-0185 §3 note 4: the digest "MUST be provided in the hexadecimal representation",
     * and its example keys the HMAC with those 64 characters, not the 32 bytes. */
    hex(d, sizeof d, c->hmac_key);
    OPENSSL_cleanse(d, sizeof d);
}

bool dialback_local(const struct dialback_config *c, const char *domain, size_t len)
{
    for (unsigned i = 0; i < c->ndomains; i++)
        if (strlen(c->domains[i]) == len && memcmp(c->domains[i], domain, len) == 0)
            return true;
    return false;
}

int dialback_key(const struct dialback_config *c, const char *receiving, size_t rlen,
                 const char *originating, size_t olen, const char *id, size_t idlen,
                 char out[DIALBACK_KEY_LEN + 1])
{
    char msg[2 * JID_PART_MAX + 2 + DIALBACK_ID_MAX];
    uint8_t mac[SHA256_DIGEST_LENGTH];
    unsigned maclen;
    if (rlen > JID_PART_MAX || olen > JID_PART_MAX || idlen > DIALBACK_ID_MAX)
        return -EINVAL;
    memcpy(msg, receiving, rlen);
    msg[rlen] = ' ';
    memcpy(msg + rlen + 1, originating, olen);
    msg[rlen + 1 + olen] = ' ';
    memcpy(msg + rlen + 2 + olen, id, idlen);
    if (!HMAC(EVP_sha256(), c->hmac_key, sizeof c->hmac_key, (const uint8_t *)msg,
              rlen + 2 + olen + idlen, mac, &maclen))
        return -ENOMEM;
    hex(mac, sizeof mac, out);
    out[DIALBACK_KEY_LEN] = '\0';
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A normalised copy of an address attribute, or NULL (missing, empty, invalid). */
static enum dialback_perr domain_attr(const struct xml_node *n, const char *name, struct arena *a,
                                      const char **out)
{
    char buf[JID_PART_MAX + 1];
    const char *v = xml_node_attr(n, name);
    if (!v)
        return DIALBACK_IMPROPER_ADDRESSING;
    int len = jid_prep_domain(v, strlen(v), buf, sizeof buf);
    if (len == -ENOMEM)
        return DIALBACK_NOMEM;
    if (len <= 0)
        return DIALBACK_IMPROPER_ADDRESSING;
    if (!(*out = arena_strndup(a, buf, (size_t)len)))
        return DIALBACK_NOMEM;
    return DIALBACK_OK;
}

static bool has_elements(const struct xml_node *n)
{
    for (const struct xml_node *c = n->children; c; c = c->next)
        if (c->name.p)
            return true;
    return false;
}

/* The condition of <error><cond xmlns='...stanzas'/></error> (RFC 6120 §8.3.2). */
static enum dialback_cond error_cond(const struct xml_node *n)
{
    /* The XEP qualifies <error/> by jabber:server (the stream's default namespace); one
     * written inside an element that made jabber:server:dialback the default is the same
     * mistake in spirit, so both are read. */
    const struct xml_node *e = xml_node_child(n, "error", XML_NS_SERVER);
    if (!e)
        e = xml_node_child(n, "error", DIALBACK_NS);
    if (!e)
        return DIALBACK_UNDEFINED_CONDITION;
    for (const struct xml_node *c = e->children; c; c = c->next)
        if (c->name.p && strcmp(c->ns.p, NS_STANZAS) == 0 && strcmp(c->name.p, "text") != 0)
            return cond_parse(c->name.p);
    return DIALBACK_UNDEFINED_CONDITION;
}

enum dialback_perr dialback_parse(const struct xml_node *n, struct arena *a,
                                  struct dialback_elem *e)
{
    enum dialback_perr err;
    memset(e, 0, sizeof *e);
    if (!n->name.p || strcmp(n->ns.p, DIALBACK_NS) != 0)
        return DIALBACK_NOT_DIALBACK;
    if (strcmp(n->name.p, "result") == 0)
        e->kind = DIALBACK_RESULT;
    else if (strcmp(n->name.p, "verify") == 0)
        e->kind = DIALBACK_VERIFY;
    else
        return DIALBACK_NOT_DIALBACK;

    if ((err = domain_attr(n, "from", a, &e->from)) || (err = domain_attr(n, "to", a, &e->to)))
        return err;

    const char *type = xml_node_attr(n, "type");
    if (!type)
        e->type = DIALBACK_REQUEST;
    else if (strcmp(type, "valid") == 0)
        e->type = DIALBACK_VALID;
    else if (strcmp(type, "invalid") == 0)
        e->type = DIALBACK_INVALID;
    else if (strcmp(type, "error") == 0)
        e->type = DIALBACK_ERROR;
    else
        return DIALBACK_BAD_FORMAT;

    /* 'id' decides which stream a <db:verify/> is about; on <db:result/> it means nothing
     * (Prosody adds one to its answers) and is not kept. */
    if (e->kind == DIALBACK_VERIFY) {
        const char *id = xml_node_attr(n, "id");
        if (!id || !*id)
            return DIALBACK_BAD_FORMAT;
        if (strlen(id) > DIALBACK_ID_MAX)
            return DIALBACK_TOO_LONG;
        e->id = id; /* the tree's copy lives in the same arena */
    }

    if (e->type == DIALBACK_ERROR)
        e->cond = error_cond(n);
    if (e->type != DIALBACK_REQUEST)
        return DIALBACK_OK; /* an answer's text is ignored: Prosody repeats the key there */

    if (has_elements(n))
        return DIALBACK_BAD_FORMAT;
    const char *text = xml_node_text(n, a);
    if (!text)
        return DIALBACK_NOMEM;
    size_t len = strlen(text);
    while (len && is_ws(*text))
        text++, len--;
    while (len && is_ws(text[len - 1]))
        len--;
    if (!len)
        return DIALBACK_BAD_FORMAT;
    if (len > DIALBACK_KEY_MAX)
        return DIALBACK_TOO_LONG;
    if (!(e->key = arena_strndup(a, text, len)))
        return DIALBACK_NOMEM;
    e->key_len = len;
    return DIALBACK_OK;
}

const char *dialback_perr_condition(enum dialback_perr e)
{
    switch (e) {
    case DIALBACK_OK:
        return NULL;
    case DIALBACK_NOT_DIALBACK:
        return "unsupported-stanza-type";
    case DIALBACK_IMPROPER_ADDRESSING:
        return "improper-addressing";
    case DIALBACK_BAD_FORMAT:
        return "bad-format";
    case DIALBACK_TOO_LONG:
        return "policy-violation";
    case DIALBACK_NOMEM:
        return "internal-server-error";
    }
    return "undefined-condition";
}

/* ---- writing ------------------------------------------------------------------------------- */

int dialback_write(struct buf *out, const struct dialback_elem *e)
{
    static const char *const types[] = {
        [DIALBACK_VALID] = "valid", [DIALBACK_INVALID] = "invalid", [DIALBACK_ERROR] = "error"};
    const char *name = e->kind == DIALBACK_VERIFY ? "db:verify" : "db:result";
    int err = buf_puts(out, "<");
    if (!err)
        err = buf_puts(out, name);
    if (!err)
        err = xmlw_attr(out, "from", e->from, strlen(e->from));
    if (!err)
        err = xmlw_attr(out, "to", e->to, strlen(e->to));
    if (!err && e->id)
        err = xmlw_attr(out, "id", e->id, strlen(e->id));
    if (!err && e->type != DIALBACK_REQUEST)
        err = xmlw_attr(out, "type", types[e->type], strlen(types[e->type]));
    if (err)
        return err;
    if (e->type == DIALBACK_ERROR) {
        /* Unprefixed, so in jabber:server, the stream's default namespace. */
        err = buf_puts(out, "><error type='");
        if (!err)
            err = buf_puts(out, dialback_cond_type(e->cond));
        if (!err)
            err = buf_puts(out, "'><");
        if (!err)
            err = buf_puts(out, dialback_cond_name(e->cond));
        if (!err)
            err = buf_puts(out, " xmlns='" NS_STANZAS "'/></error></");
    } else if (e->type == DIALBACK_REQUEST) {
        err = buf_puts(out, ">");
        if (!err)
            err = xmlw_text(out, e->key, e->key_len);
        if (!err)
            err = buf_puts(out, "</");
    } else {
        return buf_puts(out, "/>");
    }
    if (!err)
        err = buf_puts(out, name);
    if (!err)
        err = buf_puts(out, ">");
    return err;
}

int dialback_feature(struct buf *out)
{
    return buf_puts(out, "<dialback xmlns='" DIALBACK_NS_FEATURE "'><errors/></dialback>");
}

enum dialback_support dialback_feature_parse(const struct xml_node *features)
{
    const struct xml_node *f = xml_node_child(features, "dialback", DIALBACK_NS_FEATURE);
    if (!f)
        return DIALBACK_FEATURE_NONE;
    return xml_node_child(f, "errors", DIALBACK_NS_FEATURE) ? DIALBACK_FEATURE_ERRORS
                                                            : DIALBACK_FEATURE_PLAIN;
}
