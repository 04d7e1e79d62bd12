/*
 * xml_int.h: the XML scanner's private state and the seam between its two files, and
 * nothing else includes it: xml.c (life cycle and the scanner's state machine) and
 * xml_tag.c (what a complete tag means: namespaces, attributes, the stream header,
 * stanza boundaries). Each function is described where it is defined.
 */
#ifndef STARLING_XML_INT_H
#define STARLING_XML_INT_H

#include "common/xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum xml_state {
    ST_START,   /* document start: byte order mark */
    ST_DECL,    /* optional XML declaration */
    ST_PROLOG,  /* whitespace before the stream root */
    ST_CONTENT, /* inside an element: character data (whitespace only at the first level) */
    ST_LT,      /* at a '<' whose next bytes decide what it opens */
    ST_STAG_NAME,
    ST_STAG_SP, /* inside a start tag, between attributes */
    ST_ATTR_NAME,
    ST_ATTR_EQ, /* after an attribute name: blanks, then '=' */
    ST_ATTR_Q,  /* after '=': blanks, then the opening quote */
    ST_ATTR_VAL,
    ST_STAG_SLASH, /* after the '/' of <empty/> */
    ST_ETAG_NAME,
    ST_ETAG_SP,
    ST_CDATA,
    ST_DONE, /* after </stream:stream>: further bytes are ignored */
    ST_ERROR,
};

enum { PENDING_NONE, PENDING_CLOSE, PENDING_END };

enum { ATTR_PLAIN, ATTR_XMLNS_DEFAULT, ATTR_XMLNS_PREFIX };

/* Longest reference accepted: "&#x0010FFFF;" with a little room for leading zeros. */
/* Namespace bindings copied from the stream header: one bit each in stream_binds. */
#define STREAM_BINDS_MAX 8
_Static_assert(STREAM_BINDS_MAX <= 8 * sizeof(((struct xml_event *)0)->stream_binds),
               "a bit per stream binding");
/* Longest XML declaration accepted. */
#define DECL_MAX 256

/* An element open inside the stanza (offsets relative to unit_off). */
struct xml_level {
    uint32_t name_off;
    uint16_t name_len;
    uint16_t nbind; /* bindings in scope before the element's own */
};

/* An attribute of the tag being scanned (offsets relative to unit_off). */
struct xml_attr_rec {
    uint32_t name_off;
    uint32_t val_off;
    uint32_t val_len;
    uint8_t name_len, prefix_len; /* prefix_len 0: unprefixed */
    uint8_t decode;
    uint8_t kind;
};

/* A namespace declaration in scope inside the stanza (offsets relative to unit_off). */
struct xml_bind {
    uint32_t prefix_off;
    uint32_t uri_off, uri_len;
    uint8_t prefix_len; /* 0: the default namespace */
    uint8_t decode;
};

/* A known attribute of the element being tracked (offsets relative to unit_off). */
struct xml_known {
    uint32_t val_off, val_len;
    uint32_t raw_off, raw_len;
    bool decode, present;
};

/* Allocated while a stanza is being received (an idle connection holds none of it);
 * every array is sized from the limits. Bindings in scope at once are capped at
 * max_attrs: more is a policy-violation. */
struct xml_work {
    /* The first-level element in progress. */
    uint32_t top_name_off;
    uint16_t top_name_len, top_prefix_len;
    uint32_t top_head_len;
    uint32_t top_ns_off, top_ns_len; /* into the unit, or into sns when top_ns_sns */
    bool top_ns_sns, top_ns_decode;
    struct xml_known known[XML_ATTR_KNOWN];
    uint16_t nbind;
    struct xml_level *levels;
    struct xml_attr_rec *attrs;
    struct xml_bind *binds;
};

/* The stream header's bindings and qualified name, decoded and copied, because the
 * header's bytes are released once it is reported. */
struct xml_stream_ns {
    uint16_t nbind;
    uint16_t qname_len; /* at sns_data()[0] */
    struct {
        uint16_t prefix_off, prefix_len, uri_off, uri_len;
    } b[]; /* nbind of them, then the strings: allocated to the byte, it lives as long as
              the stream */
};

static inline char *sns_data(const struct xml_stream_ns *s)
{
    return (char *)(s->b + s->nbind);
}

/* Where a namespace name comes from. */
enum { NS_NONE, NS_UNIT, NS_SNS, NS_XML };

struct ns_ref {
    uint8_t src;
    bool decode;
    uint8_t sns; /* NS_SNS: the index of the stream header's binding */
    uint32_t off, len;
};

static inline char *scratch_take(struct xml_parser *p, size_t n)
{
    if (n > p->scratch_cap - p->scratch_used)
        return NULL;
    char *o = p->scratch + p->scratch_used;
    p->scratch_used += (uint32_t)n;
    return o;
}

/* xml_tag.c */
bool xml_ns_lookup(const struct xml_parser *p, const char *ubuf, const char *prefix, size_t plen,
                   struct ns_ref *r);
bool xml_ns_str(struct xml_parser *p, const char *ubuf, const struct ns_ref *r,
                struct xml_str *out);
int xml_qname_prefix(const char *s, size_t n);
enum xml_ev_kind xml_start_tag_done(struct xml_parser *p, const char *buf, bool empty,
                                    struct xml_event *ev);
enum xml_ev_kind xml_end_element(struct xml_parser *p, const char *buf, struct xml_event *ev);

/* xml.c */
void xml_clear_stream(struct xml_parser *p);

#endif
