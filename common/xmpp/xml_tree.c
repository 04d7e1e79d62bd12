#include "common/xmpp/xml_tree.h"
#include "common/core/buf.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdio.h>

#include <string.h>

static bool copy_str(struct arena *a, struct xml_str *dst, const char *p, size_t n)
{
    char *d = arena_strndup(a, p, n);
    if (!d)
        return false;
    *dst = (struct xml_str){d, (uint32_t)n};
    return true;
}

/* Decodes raw (attribute value or text) into a NUL-terminated arena string. */
static bool copy_decoded(struct arena *a, struct xml_str *dst, const char *raw, size_t n, bool attr)
{
    char *d = arena_alloc(a, n + 1);
    if (!d)
        return false;
    size_t len = xml_decode(raw, n, attr, d);
    d[len] = '\0';
    *dst = (struct xml_str){d, (uint32_t)len};
    return true;
}

static void append(struct xml_node *parent, struct xml_node *n)
{
    n->parent = parent;
    if (!parent)
        return;
    if (parent->last)
        parent->last->next = n;
    else
        parent->children = n;
    parent->last = n;
}

static bool add_element(struct xml_parser *p, const char *buf, const struct xml_event *ev,
                        struct arena *a, struct xml_node *n)
{
    struct xml_attr at;
    unsigned count = 0;
    while (xml_attr_at(p, buf, count, &at))
        count++;
    if (!copy_str(a, &n->name, ev->name.p, ev->name.len) ||
        !copy_str(a, &n->ns, ev->ns.p, ev->ns.len))
        return false;
    if (count && !(n->attrs = arena_alloc(a, count * sizeof *n->attrs)))
        return false;
    n->nattrs = count;
    for (unsigned i = 0; i < count; i++) {
        struct xml_tree_attr *ta = &n->attrs[i];
        xml_attr_at(p, buf, i, &at);
        if (!copy_str(a, &ta->name, at.name.p, at.name.len) ||
            !copy_str(a, &ta->ns, at.ns.p, at.ns.len))
            return false;
        if (at.decode ? !copy_decoded(a, &ta->value, at.raw.p, at.raw.len, true)
                      : !copy_str(a, &ta->value, at.raw.p, at.raw.len))
            return false;
    }
    return true;
}

struct xml_node *xml_tree_parse(const struct xml_parser *stream, const char *stanza, size_t len,
                                struct arena *a, char *scratch, size_t scratch_cap)
{
    struct xml_parser p;
    struct xml_event ev;
    struct xml_node *root = NULL, *cur = NULL;

    xml_init_fragment(&p, stream, scratch, scratch_cap);
    for (;;) {
        enum xml_ev_kind k = xml_next(&p, stanza, len, &ev);
        if (k == XML_EV_NONE || k == XML_EV_ERROR)
            break;
        if (k == XML_EV_START) {
            struct xml_node *n = arena_alloc(a, sizeof *n);
            if (!n)
                goto fail;
            memset(n, 0, sizeof *n);
            if (!add_element(&p, stanza, &ev, a, n))
                goto fail;
            append(cur, n);
            if (!root)
                root = n;
            cur = n;
        } else if (k == XML_EV_END) {
            if (!cur)
                goto fail;
            cur = cur->parent;
            if (!cur)
                break; /* the stanza element is closed */
        } else if (k == XML_EV_TEXT && cur) {
            struct xml_node *t = arena_alloc(a, sizeof *t);
            if (!t)
                goto fail;
            memset(t, 0, sizeof *t);
            bool ok = (ev.flags & XML_F_DECODE)
                          ? copy_decoded(a, &t->text, ev.raw.p, ev.raw.len, false)
                          : copy_str(a, &t->text, ev.raw.p, ev.raw.len);
            if (!ok)
                goto fail;
            append(cur, t);
        }
    }
    xml_free(&p);
    return cur ? NULL : root; /* an unclosed element means the span was not a stanza */
fail:
    xml_free(&p);
    return NULL;
}

static bool matches(const struct xml_node *c, const char *name, const char *ns)
{
    return c->name.p && strcmp(c->name.p, name) == 0 && (!ns || strcmp(c->ns.p, ns) == 0);
}

struct xml_node *xml_node_child(const struct xml_node *n, const char *name, const char *ns)
{
    for (struct xml_node *c = n->children; c; c = c->next)
        if (matches(c, name, ns))
            return c;
    return NULL;
}

struct xml_node *xml_node_next(const struct xml_node *c, const char *name, const char *ns)
{
    for (c = c->next; c; c = c->next)
        if (matches(c, name, ns))
            return (struct xml_node *)c;
    return NULL;
}

const char *xml_node_attr(const struct xml_node *n, const char *name)
{
    for (unsigned i = 0; i < n->nattrs; i++)
        if (n->attrs[i].ns.len == 0 && strcmp(n->attrs[i].name.p, name) == 0)
            return n->attrs[i].value.p;
    return NULL;
}

const char *xml_node_text(const struct xml_node *n, struct arena *a)
{
    size_t total = 0, count = 0;
    const struct xml_node *only = NULL;
    for (const struct xml_node *c = n->children; c; c = c->next)
        if (!c->name.p) {
            total += c->text.len;
            count++;
            only = c;
        }
    if (count == 0)
        return "";
    if (count == 1)
        return only->text.p;
    char *d = arena_alloc(a, total + 1), *o = d;
    if (!d)
        return NULL;
    for (const struct xml_node *c = n->children; c; c = c->next)
        if (!c->name.p) {
            memcpy(o, c->text.p, c->text.len);
            o += c->text.len;
        }
    *o = '\0';
    return d;
}

int xml_node_write(struct buf *b, const struct xml_node *n, const char *parent_ns)
{
    int rc = 0;
    if (!n->name.p)
        return xmlw_text(b, n->text.p, n->text.len);
    rc |= buf_puts(b, "<");
    rc |= buf_append(b, n->name.p, n->name.len);
    if (!parent_ns || strcmp(parent_ns, n->ns.p))
        rc |= xmlw_attr(b, "xmlns", n->ns.p, n->ns.len);
    unsigned prefixes = 0;
    for (unsigned i = 0; i < n->nattrs; i++) {
        const struct xml_tree_attr *at = &n->attrs[i];
        char name[16 + 1024];
        if (at->name.len > 1000)
            return -EINVAL; /* longer than any name a stanza within limits carries */
        if ((!at->ns.len && !strcmp(at->name.p, "xmlns")) ||
            (at->ns.len && !strcmp(at->ns.p, XML_NS_XMLNS)))
            continue; /* declarations: written where needed */
        if (!at->ns.len) {
            snprintf(name, sizeof name, "%s", at->name.p);
        } else if (!strcmp(at->ns.p, XML_NS_XML)) {
            snprintf(name, sizeof name, "xml:%s", at->name.p);
        } else {
            char decl[24];
            snprintf(decl, sizeof decl, "xmlns:a%u", prefixes);
            rc |= xmlw_attr(b, decl, at->ns.p, at->ns.len);
            snprintf(name, sizeof name, "a%u:%s", prefixes++, at->name.p);
        }
        rc |= xmlw_attr(b, name, at->value.p, at->value.len);
    }
    if (!n->children)
        return rc || buf_puts(b, "/>") ? -ENOMEM : 0;
    rc |= buf_puts(b, ">");
    for (const struct xml_node *c = n->children; c && !rc; c = c->next)
        if ((rc = xml_node_write(b, c, n->ns.p)) == -EINVAL)
            return rc;
    rc |= buf_puts(b, "</");
    rc |= buf_append(b, n->name.p, n->name.len);
    rc |= buf_puts(b, ">");
    return rc ? -ENOMEM : 0;
}
