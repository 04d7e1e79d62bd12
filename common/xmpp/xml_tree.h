/*
 * xml_tree: an element tree of one stanza, built on request for the stanzas the server
 * must read itself (roster, disco, blocking, SASL...). Routed stanzas never get one.
 *
 * Every string of the tree is a NUL-terminated, decoded copy in the caller's arena, so
 * the tree outlives the stream buffer and the parser's scratch; it dies with the arena.
 * Text is kept as child nodes (name.p == NULL) so mixed content keeps its order.
 */
#ifndef STARLING_XML_TREE_H
#define STARLING_XML_TREE_H

#include "common/core/arena.h"
#include "common/xmpp/xml.h"

struct xml_tree_attr {
    struct xml_str name, ns, value; /* ns.len 0: unprefixed */
};

struct xml_node {
    struct xml_str name; /* local name; p == NULL for a text node */
    struct xml_str ns;   /* namespace name */
    struct xml_str text; /* text node: the character data */
    struct xml_tree_attr *attrs;
    unsigned nattrs;
    struct xml_node *parent, *children, *last, *next;
};

/* Builds the tree of stanza[0..len), a span that `stream` reported as XML_EV_STANZA
 * (so namespaces bound on the stream header resolve), or with stream NULL a standalone
 * jabber:client stanza. scratch as for xml_init().
 * Returns the stanza element, or NULL when memory ran out. */
struct xml_node *xml_tree_parse(const struct xml_parser *stream, const char *stanza, size_t len,
                                struct arena *a, char *scratch, size_t scratch_cap);

/* The first child element with this local name and namespace (ns NULL: any), or NULL. */
struct xml_node *xml_node_child(const struct xml_node *n, const char *name, const char *ns);

/* The next sibling element after c with the same filter, or NULL. */
struct xml_node *xml_node_next(const struct xml_node *c, const char *name, const char *ns);

/* Value of the unprefixed attribute `name`, or NULL. */
const char *xml_node_attr(const struct xml_node *n, const char *name);

/* The element's character data (its text children, concatenated, in the arena);
 * "" when it has none, NULL when memory ran out. */
const char *xml_node_text(const struct xml_node *n, struct arena *a);

/* Appends n and its subtree to b as well-formed XML: each element's namespace declared
 * where it differs from parent_ns (the namespace the element's parent is in, "" or NULL
 * at the top: declared there), prefixed attributes with a prefix of their own (xml:
 * for the XML namespace), text and values escaped. 0 or -ENOMEM. */
struct buf;
int xml_node_write(struct buf *b, const struct xml_node *n, const char *parent_ns);

#endif
