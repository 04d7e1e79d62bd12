/* bidi: XEP-0288 elements (see bidi.h). */
#include "s2s/bidi.h"

#include <string.h>

int bidi_feature(struct buf *out)
{
    return buf_puts(out, "<bidi xmlns='" BIDI_NS_FEATURE "'/>");
}

int bidi_request(struct buf *out)
{
    return buf_puts(out, "<bidi xmlns='" BIDI_NS "'/>");
}

bool bidi_offered(const struct xml_node *features)
{
    return xml_node_child(features, "bidi", BIDI_NS_FEATURE) != NULL;
}

const char *bidi_recv(struct authz *a, const struct xml_node *n)
{
    if (!a->inbound || !n->name.p || strcmp(n->name.p, "bidi") != 0 ||
        strcmp(n->ns.p, BIDI_NS) != 0)
        return "unsupported-stanza-type";
    for (const struct xml_node *c = n->children; c; c = c->next) {
        if (c->name.p)
            return "bad-format";
        for (uint32_t i = 0; i < c->text.len; i++) {
            char ch = c->text.p[i];
            if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
                return "bad-format";
        }
    }
    authz_set_bidi(a);
    return NULL;
}
