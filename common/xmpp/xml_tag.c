/*
 * xml_tag.c: what a complete tag means to the scanner (xml.c): namespace bindings and
 * lookups, attribute checks, the stream header, and the start and end of stanzas.
 */
#include "common/xmpp/xml_int.h"
#include "common/xmpp/xml_lex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- namespaces ------------------------------------------------------------------------- */

bool xml_ns_lookup(const struct xml_parser *p, const char *ubuf, const char *prefix, size_t plen,
                   struct ns_ref *r)
{
    const struct xml_work *w = p->w;
    for (unsigned i = w ? w->nbind : 0; i-- > 0;) {
        const struct xml_bind *b = &w->binds[i];
        if (b->prefix_len == plen && memcmp(ubuf + b->prefix_off, prefix, plen) == 0) {
            *r = (struct ns_ref){NS_UNIT, b->decode, 0, b->uri_off, b->uri_len};
            return true;
        }
    }
    const struct xml_stream_ns *s = p->sns;
    for (unsigned i = s ? s->nbind : 0; i-- > 0;) {
        if (s->b[i].prefix_len == plen &&
            memcmp(sns_data(s) + s->b[i].prefix_off, prefix, plen) == 0) {
            *r = (struct ns_ref){NS_SNS, false, (uint8_t)i, s->b[i].uri_off, s->b[i].uri_len};
            return true;
        }
    }
    if (SPAN_IS(prefix, plen, "xml")) {
        *r = (struct ns_ref){NS_XML, false, 0, 0, sizeof XML_NS_XML - 1};
        return true;
    }
    if (plen == 0) {
        *r = (struct ns_ref){NS_NONE, false, 0, 0, 0};
        return true;
    }
    return false;
}

/* The namespace name a reference stands for, decoded into scratch when it must be.
 * Returns false when scratch is exhausted. */
bool xml_ns_str(struct xml_parser *p, const char *ubuf, const struct ns_ref *r, struct xml_str *out)
{
    switch (r->src) {
    case NS_UNIT:
        if (!r->decode) {
            *out = (struct xml_str){ubuf + r->off, r->len};
            return true;
        }
        char *o = scratch_take(p, r->len);
        if (!o)
            return false;
        *out = (struct xml_str){o, (uint32_t)xml_decode(ubuf + r->off, r->len, true, o)};
        return true;
    case NS_SNS:
        *out = (struct xml_str){sns_data(p->sns) + r->off, r->len};
        return true;
    case NS_XML:
        *out = (struct xml_str){XML_NS_XML, r->len};
        return true;
    default:
        *out = (struct xml_str){"", 0};
        return true;
    }
}

/* ---- tags ------------------------------------------------------------------------------- */

/* Validates a qualified name (Namespaces in XML §4): at most one colon, neither first nor
 * last. Returns the prefix length (0: none) or -1. */
int xml_qname_prefix(const char *s, size_t n)
{
    const char *c = memchr(s, ':', n);
    if (!c)
        return 0;
    size_t k = (size_t)(c - s);
    if (k == 0 || k + 1 == n || memchr(c + 1, ':', n - k - 1))
        return -1;
    return (int)k;
}

static int known_attr(const char *name, size_t len, size_t prefix_len)
{
    if (prefix_len) {
        if (prefix_len == 3 && SPAN_IS(name, len, "xml:lang"))
            return XML_ATTR_LANG;
        return -1;
    }
    switch (len) {
    case 2:
        if (name[0] == 't' && name[1] == 'o')
            return XML_ATTR_TO;
        if (name[0] == 'i' && name[1] == 'd')
            return XML_ATTR_ID;
        return -1;
    case 4:
        if (!memcmp(name, "from", 4))
            return XML_ATTR_FROM;
        if (!memcmp(name, "type", 4))
            return XML_ATTR_TYPE;
        return -1;
    case 7:
        return !memcmp(name, "version", 7) ? XML_ATTR_VERSION : -1;
    default:
        return -1;
    }
}

/* Is the namespace name r the literal lit (litlen bytes)? Decodes only when it must:
 * decoding never lengthens, so a shorter raw value cannot match. */
static bool ns_equal(struct xml_parser *p, const char *ubuf, const struct ns_ref *r,
                     const char *lit, size_t litlen)
{
    if (r->len < litlen || (!r->decode && r->len != litlen))
        return false;
    struct xml_str s;
    uint32_t mark = p->scratch_used;
    bool eq = xml_ns_str(p, ubuf, r, &s) && span_is(s.p, s.len, lit, litlen);
    p->scratch_used = mark;
    return eq;
}

#define ns_equal_lit(p, ubuf, r, lit) ns_equal((p), (ubuf), (r), lit, sizeof(lit) - 1)

/* Namespace declarations of the tag: pushes each as a binding, after the checks of
 * Namespaces in XML §3 (reserved prefixes and names). Returns 0 or an XML_ERR_*. */
static int push_bindings(struct xml_parser *p, const char *ubuf)
{
    struct xml_work *w = p->w;
    for (unsigned i = 0; i < p->nattrs; i++) {
        const struct xml_attr_rec *a = &w->attrs[i];
        if (a->kind == ATTR_PLAIN)
            continue;
        if (w->nbind >= (p->lim.max_attrs ? p->lim.max_attrs : 1))
            return XML_ERR_POLICY_VIOLATION;
        struct xml_bind *b = &w->binds[w->nbind];
        b->uri_off = a->val_off;
        b->uri_len = a->val_len;
        b->decode = a->decode;
        if (a->kind == ATTR_XMLNS_PREFIX) {
            b->prefix_off = a->name_off + 6;
            b->prefix_len = (uint8_t)(a->name_len - 6);
        } else {
            b->prefix_off = a->name_off;
            b->prefix_len = 0;
        }
        struct ns_ref r = {NS_UNIT, b->decode, 0, b->uri_off, b->uri_len};
        const char *pre = ubuf + b->prefix_off;
        bool is_xml_ns = ns_equal_lit(p, ubuf, &r, XML_NS_XML);
        bool is_xmlns_ns = ns_equal_lit(p, ubuf, &r, XML_NS_XMLNS);
        if (a->kind == ATTR_XMLNS_PREFIX) {
            bool pre_xml = SPAN_IS(pre, b->prefix_len, "xml");
            if (a->val_len == 0 || SPAN_IS(pre, b->prefix_len, "xmlns") || is_xmlns_ns ||
                pre_xml != is_xml_ns)
                return XML_ERR_NOT_WELL_FORMED;
        } else if (is_xml_ns || is_xmlns_ns) {
            return XML_ERR_NOT_WELL_FORMED;
        }
        w->nbind++;
    }
    return 0;
}

/* The stanza uses the stream header's binding r (a prefix bound there, not by itself). */
static void use_stream_bind(struct xml_parser *p, const struct ns_ref *r)
{
    p->flags |= XML_F_STREAM_BIND;
    p->stream_binds |= (uint8_t)(1u << r->sns);
}

/* Every attribute's qualified name unique, and no two with the same local name and
 * namespace (Namespaces in XML §6.3). Prefixes of attributes must be bound. Sets
 * XML_F_STREAM_BIND when a prefix comes from the stream header. */
static int check_attrs(struct xml_parser *p, const char *ubuf)
{
    const struct xml_attr_rec *at = p->w->attrs;
    for (unsigned i = 0; i < p->nattrs; i++) {
        const struct xml_attr_rec *a = &at[i];
        const char *an = ubuf + a->name_off;
        if (a->kind == ATTR_PLAIN && a->prefix_len) {
            struct ns_ref r;
            if (!xml_ns_lookup(p, ubuf, an, a->prefix_len, &r))
                return XML_ERR_NOT_WELL_FORMED;
            if (r.src == NS_SNS)
                use_stream_bind(p, &r);
        }
        for (unsigned j = 0; j < i; j++) {
            const struct xml_attr_rec *b = &at[j];
            const char *bn = ubuf + b->name_off;
            if (a->name_len == b->name_len && an[a->name_len - 1] == bn[b->name_len - 1] &&
                memcmp(an, bn, a->name_len) == 0)
                return XML_ERR_NOT_WELL_FORMED;
            if (a->kind != ATTR_PLAIN || b->kind != ATTR_PLAIN || !a->prefix_len || !b->prefix_len)
                continue;
            size_t al = a->name_len - a->prefix_len - 1u, bl = b->name_len - b->prefix_len - 1u;
            if (al != bl || memcmp(an + a->prefix_len + 1, bn + b->prefix_len + 1, al))
                continue;
            struct ns_ref ra, rb;
            struct xml_str sa, sb;
            xml_ns_lookup(p, ubuf, an, a->prefix_len, &ra);
            xml_ns_lookup(p, ubuf, bn, b->prefix_len, &rb);
            uint32_t mark = p->scratch_used;
            bool same = xml_ns_str(p, ubuf, &ra, &sa) && xml_ns_str(p, ubuf, &rb, &sb) &&
                        sa.len == sb.len && memcmp(sa.p, sb.p, sa.len) == 0;
            p->scratch_used = mark;
            if (same)
                return XML_ERR_NOT_WELL_FORMED;
        }
    }
    return 0;
}

static void record_known(struct xml_parser *p, const char *ubuf)
{
    memset(p->w->known, 0, sizeof p->w->known);
    for (unsigned i = 0; i < p->nattrs; i++) {
        const struct xml_attr_rec *a = &p->w->attrs[i];
        if (a->kind != ATTR_PLAIN)
            continue;
        int k = known_attr(ubuf + a->name_off, a->name_len, a->prefix_len);
        if (k < 0)
            continue;
        struct xml_known *kn = &p->w->known[k];
        kn->present = true;
        kn->decode = a->decode;
        kn->val_off = a->val_off;
        kn->val_len = a->val_len;
        kn->raw_off = a->name_off;
        kn->raw_len = a->val_off + a->val_len + 1 - a->name_off;
    }
}

/* Fills the known attributes of ev, decoding into scratch as needed. */
static bool emit_known(struct xml_parser *p, const char *ubuf, struct xml_event *ev)
{
    for (int i = 0; i < XML_ATTR_KNOWN; i++) {
        const struct xml_known *k = &p->w->known[i];
        if (!k->present) {
            ev->attr[i] = (struct xml_str){NULL, 0};
            ev->attr_raw[i].off = ev->attr_raw[i].len = 0;
            continue;
        }
        if (k->decode) {
            char *o = scratch_take(p, k->val_len);
            if (!o)
                return false;
            ev->attr[i] =
                (struct xml_str){o, (uint32_t)xml_decode(ubuf + k->val_off, k->val_len, true, o)};
        } else {
            ev->attr[i] = (struct xml_str){ubuf + k->val_off, k->val_len};
        }
        ev->attr_raw[i].off = k->raw_off;
        ev->attr_raw[i].len = k->raw_len;
    }
    return true;
}

/* The stream root's start tag is complete: check it (RFC 6120 §4.8), keep its bindings. */
static int stream_open(struct xml_parser *p, const char *ubuf, const struct ns_ref *ens)
{
    const char *qname = ubuf + 1;
    size_t qlen = p->tag_name_len, plen = p->tag_prefix_len;
    const char *local = plen ? qname + plen + 1 : qname;
    size_t llen = plen ? qlen - plen - 1 : qlen;

    if (!ns_equal_lit(p, ubuf, ens, XML_NS_STREAMS))
        return XML_ERR_INVALID_NAMESPACE;
    if (!SPAN_IS(local, llen, "stream"))
        return XML_ERR_BAD_FORMAT;
    if (!SPAN_IS(qname, plen, "stream"))
        return XML_ERR_BAD_NAMESPACE_PREFIX;
    struct ns_ref def;
    xml_ns_lookup(p, ubuf, "", 0, &def);
    if (p->content == XML_CONTENT_SERVER ? !ns_equal_lit(p, ubuf, &def, XML_NS_SERVER)
                                         : !ns_equal_lit(p, ubuf, &def, XML_NS_CLIENT))
        return XML_ERR_INVALID_NAMESPACE;

    struct xml_work *w = p->w;
    if (w->nbind > STREAM_BINDS_MAX)
        return XML_ERR_POLICY_VIOLATION;
    size_t need = qlen;
    for (unsigned i = 0; i < w->nbind; i++)
        need += w->binds[i].prefix_len + w->binds[i].uri_len;
    if (need > UINT16_MAX)
        return XML_ERR_POLICY_VIOLATION;
    struct xml_stream_ns *s = malloc(sizeof *s + w->nbind * sizeof s->b[0] + need);
    if (!s)
        return XML_ERR_POLICY_VIOLATION;
    s->nbind = w->nbind;
    s->qname_len = (uint16_t)qlen;
    memcpy(sns_data(s), qname, qlen);
    size_t at = qlen;
    for (unsigned i = 0; i < w->nbind; i++) {
        const struct xml_bind *b = &w->binds[i];
        s->b[i].prefix_off = (uint16_t)at;
        s->b[i].prefix_len = b->prefix_len;
        memcpy(sns_data(s) + at, ubuf + b->prefix_off, b->prefix_len);
        at += b->prefix_len;
        s->b[i].uri_off = (uint16_t)at;
        if (b->decode)
            s->b[i].uri_len =
                (uint16_t)xml_decode(ubuf + b->uri_off, b->uri_len, true, sns_data(s) + at);
        else
            memcpy(sns_data(s) + at, ubuf + b->uri_off, s->b[i].uri_len = (uint16_t)b->uri_len);
        at += s->b[i].uri_len;
    }
    xml_clear_stream(p);
    p->sns = s;
    p->owns_stream = true;
    w->nbind = 0;
    return 0;
}

/* A start tag is complete (pos is past its '>'). Returns the event to report, if any. */
enum xml_ev_kind xml_start_tag_done(struct xml_parser *p, const char *buf, bool empty,
                                    struct xml_event *ev)
{
    const char *ubuf = buf + p->unit_off;
    struct xml_work *w = p->w;
    uint32_t name_off = p->tag_off + 1 - p->unit_off;
    const char *qname = ubuf + name_off;
    unsigned nest = p->depth; /* depth of this element inside the stanza; 0: the root */
    uint16_t nbind_before = w->nbind;
    int err;

    p->scratch_used = 0;
    if (nest > p->lim.max_depth) {
        err = XML_ERR_POLICY_VIOLATION;
        goto fail;
    }
    if ((err = push_bindings(p, ubuf)))
        goto fail;
    struct ns_ref ens;
    if (!xml_ns_lookup(p, ubuf, qname, p->tag_prefix_len, &ens)) {
        err = XML_ERR_NOT_WELL_FORMED;
        goto fail;
    }
    if ((err = check_attrs(p, ubuf)))
        goto fail;
    p->text_off = p->pos;

    if (nest == 0) {
        record_known(p, ubuf);
        if ((err = stream_open(p, ubuf, &ens)))
            goto fail;
        p->depth = 1;
        p->in_unit = false;
        ev->raw = (struct xml_str){ubuf, p->pos - p->unit_off};
        ev->name = (struct xml_str){"stream", 6};
        ev->ns = (struct xml_str){XML_NS_STREAMS, sizeof XML_NS_STREAMS - 1};
        if (!emit_known(p, ubuf, ev)) {
            err = XML_ERR_POLICY_VIOLATION;
            goto fail;
        }
        if (empty)
            p->pending = PENDING_CLOSE;
        return XML_EV_STREAM_OPEN;
    }

    if (ens.src == NS_SNS && p->tag_prefix_len)
        use_stream_bind(p, &ens);
    if (nest == 1) {
        /* RFC 6120 §4.8.3: the content namespace is the default one, never prefixed. */
        if (p->tag_prefix_len && (ns_equal_lit(p, ubuf, &ens, XML_NS_CLIENT) ||
                                  ns_equal_lit(p, ubuf, &ens, XML_NS_SERVER))) {
            err = XML_ERR_BAD_NAMESPACE_PREFIX;
            goto fail;
        }
        record_known(p, ubuf);
    }
    if (nest == 1) {
        p->w->top_name_off = name_off;
        p->w->top_name_len = (uint16_t)p->tag_name_len;
        p->w->top_prefix_len = (uint16_t)p->tag_prefix_len;
        p->w->top_head_len = p->pos - p->unit_off;
        p->w->top_ns_sns = ens.src != NS_UNIT;
        p->w->top_ns_decode = ens.decode;
        p->w->top_ns_off = ens.off;
        p->w->top_ns_len = ens.len;
        if (ens.src == NS_XML || ens.src == NS_NONE) /* not bindable on elements we keep */
            p->w->top_ns_len = 0;
    }
    w->levels[nest - 1] = (struct xml_level){name_off, (uint16_t)p->tag_name_len, nbind_before};
    p->depth++;

    if (p->tokens) {
        const char *local = qname + (p->tag_prefix_len ? p->tag_prefix_len + 1 : 0);
        ev->raw = (struct xml_str){buf + p->tag_off, p->pos - p->tag_off};
        ev->name = (struct xml_str){
            local, (uint32_t)(p->tag_name_len - (p->tag_prefix_len ? p->tag_prefix_len + 1 : 0))};
        if (!xml_ns_str(p, ubuf, &ens, &ev->ns)) {
            err = XML_ERR_POLICY_VIOLATION;
            goto fail;
        }
        ev->depth = (uint16_t)nest;
        ev->flags = empty ? XML_F_EMPTY : 0;
        if (empty)
            p->pending = PENDING_END;
        return XML_EV_START;
    }
    return XML_EV_NONE; /* an <empty/> one is closed by the caller */

fail:
    p->err = (uint8_t)err;
    return XML_EV_ERROR;
}

/* Closes the innermost element (pos is past the '>' of its end tag, or of <empty/>).
 * Returns the event to report, if any. */
enum xml_ev_kind xml_end_element(struct xml_parser *p, const char *buf, struct xml_event *ev)
{
    struct xml_work *w = p->w;
    const char *ubuf = buf + p->unit_off;
    const struct xml_level *l = &w->levels[p->depth - 2];
    w->nbind = l->nbind;
    p->depth--;
    p->text_off = p->pos;
    if (p->tokens) {
        const char *qn = ubuf + l->name_off, *colon = memchr(qn, ':', l->name_len);
        const char *local = colon ? colon + 1 : qn;
        ev->depth = (uint16_t)(p->depth);
        ev->name = (struct xml_str){local, (uint32_t)(qn + l->name_len - local)};
        ev->raw = (struct xml_str){NULL, 0};
        return XML_EV_END;
    }
    if (p->depth > 1)
        return XML_EV_NONE;

    /* A stanza is complete. */
    p->in_unit = false;
    p->scratch_used = 0;
    ev->raw = (struct xml_str){ubuf, p->pos - p->unit_off};
    ev->head_len = p->w->top_head_len;
    ev->name = (struct xml_str){
        ubuf + p->w->top_name_off + (p->w->top_prefix_len ? p->w->top_prefix_len + 1u : 0u),
        (uint32_t)(p->w->top_name_len - (p->w->top_prefix_len ? p->w->top_prefix_len + 1 : 0))};
    struct ns_ref r = {NS_UNIT, p->w->top_ns_decode, 0, p->w->top_ns_off, p->w->top_ns_len};
    if (p->w->top_ns_sns)
        r.src = p->w->top_ns_len ? NS_SNS : NS_NONE;
    ev->flags = p->flags;
    ev->stream_binds = p->stream_binds;
    p->flags = 0;
    p->stream_binds = 0;
    if (!xml_ns_str(p, ubuf, &r, &ev->ns) || !emit_known(p, ubuf, ev)) {
        p->err = XML_ERR_POLICY_VIOLATION;
        return XML_EV_ERROR;
    }
    return XML_EV_STANZA;
}
