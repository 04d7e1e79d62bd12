/*
 * xml: the incremental, zero-copy XML stream parser that every byte from the network
 * passes through first (RFC 6120 §4 streams, §11 XML usage).
 *
 * The parser never copies or rewrites stanza bytes and builds no tree. It walks the
 * bytes the caller holds and reports, one at a time:
 *   XML_EV_STREAM_OPEN   the stream header, with its known attributes decoded
 *   XML_EV_STANZA        one complete first-level element as one contiguous span of the
 *                        caller's buffer, with its name, namespace and the known top-level
 *                        attributes (to, from, type, id, xml:lang) decoded
 *   XML_EV_STREAM_CLOSE  </stream:stream>
 *   XML_EV_ERROR         the RFC 6120 §4.9.3 stream error condition to send; sticky
 * A tree is built only on request, by xml_tree (xml_tree.h), for the stanzas the server
 * must read itself.
 *
 * Buffer contract. The caller owns one growable buffer per stream. buf[0..len) must hold,
 * in order, every byte of the stream the parser has not released; the caller appends new
 * bytes at the end and may move the buffer between calls (the parser keeps offsets, never
 * pointers). After handling the events, the caller asks xml_release() how many leading
 * bytes it may drop (everything before the first byte of an incomplete stanza). Spans in an
 * event point into buf and into the parser's scratch, and stay valid until the next call.
 *
 * Feeding: any split of the input into chunks gives the same events as the whole input at
 * once, one byte at a time included; scanning is resumable in every state, so a stanza
 * trickled in byte by byte costs O(size), not O(size^2).
 *
 * Bounds: stanza size, element depth, attributes per element and name length come from
 * struct xml_limits (from the config). Exceeding one is policy-violation. Memory per
 * parser: the struct, a small copy of the stream header's namespace bindings, and a work
 * area (levels, attributes, bindings) allocated while a stanza is being received and
 * released by xml_trim().
 *
 * Threads: a parser belongs to one thread. The scratch buffer given to xml_init() may be
 * shared by every parser of that thread.
 */
#ifndef STARLING_XML_H
#define STARLING_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XML_NS_STREAMS "http://etherx.jabber.org/streams"
#define XML_NS_CLIENT  "jabber:client"
#define XML_NS_SERVER  "jabber:server"
#define XML_NS_XML     "http://www.w3.org/XML/1998/namespace"
#define XML_NS_XMLNS   "http://www.w3.org/2000/xmlns/"

/* Stream error conditions (RFC 6120 §4.9.3) the parser can detect. */
enum xml_err {
    XML_ERR_NONE = 0,
    XML_ERR_NOT_WELL_FORMED,      /* XML 1.0 or Namespaces in XML violated, invalid UTF-8 */
    XML_ERR_RESTRICTED_XML,       /* comment, PI, DTD, entity other than the five (§11.1) */
    XML_ERR_INVALID_NAMESPACE,    /* stream or content namespace wrong (§4.8) */
    XML_ERR_BAD_NAMESPACE_PREFIX, /* stream element not prefixed "stream", prefixed content */
    XML_ERR_POLICY_VIOLATION,     /* a configured limit was exceeded */
    XML_ERR_BAD_FORMAT,           /* well-formed, but not an XMPP stream (text at top level) */
    XML_ERR_UNSUPPORTED_ENCODING, /* UTF-16 byte order mark, encoding other than UTF-8 */
    XML_ERR_UNSUPPORTED_VERSION,  /* XML declaration of a version other than 1.0 */
};

enum xml_ev_kind {
    XML_EV_NONE = 0, /* every byte given was consumed; feed more */
    XML_EV_STREAM_OPEN,
    XML_EV_STANZA,
    XML_EV_STREAM_CLOSE,
    XML_EV_ERROR,
    /* Only in token mode (xml_init_fragment), used by the tree builder: */
    XML_EV_START,
    XML_EV_END,
    XML_EV_TEXT,
};

/* Attributes decoded for every stream header and first-level element. */
enum xml_attr_known {
    XML_ATTR_TO,
    XML_ATTR_FROM,
    XML_ATTR_TYPE,
    XML_ATTR_ID,
    XML_ATTR_LANG, /* xml:lang */
    XML_ATTR_VERSION,
    XML_ATTR_KNOWN
};

/* Which content namespace the stream header must declare as default (RFC 6120 §4.8.2). */
enum xml_content {
    XML_CONTENT_CLIENT, /* jabber:client: c2s */
    XML_CONTENT_SERVER, /* jabber:server: s2s */
};

struct xml_limits {
    uint32_t max_stanza; /* bytes of one first-level element (and of the stream header) */
    uint16_t max_depth;  /* nesting inside a stanza; the stanza element itself is depth 1 */
    uint16_t max_attrs;  /* attributes, namespace declarations included, per element */
    uint16_t max_name;   /* bytes of a qualified element or attribute name, at most 255 */
};

#define XML_LIMITS_DEFAULT                                                                         \
    ((struct xml_limits){.max_stanza = 262144, .max_depth = 48, .max_attrs = 64, .max_name = 255})

/* A byte string that is not NUL-terminated; p == NULL means absent. */
struct xml_str {
    const char *p;
    uint32_t len;
};

/* Event flags. */
#define XML_F_EMPTY  0x1u /* START: the element was <empty/> (its END follows at once) */
#define XML_F_DECODE 0x2u /* TEXT: raw holds references or CR; xml_decode() it */
#define XML_F_CDATA  0x4u /* TEXT: raw is the literal content of a CDATA section */
#define XML_F_STREAM_BIND                                                                          \
    0x8u /* STANZA: uses a prefix bound on the stream header, so its                               \
          * bytes alone do not carry all of their namespaces */

struct xml_event {
    enum xml_ev_kind kind;
    enum xml_err err;    /* XML_EV_ERROR only */
    unsigned flags;      /* XML_F_* */
    uint16_t depth;      /* token mode: depth of the element (1 = the stanza element) */
    struct xml_str raw;  /* STREAM_OPEN: the header tag; STANZA: the whole element;
                            START/END: the tag; TEXT: the character data as received */
    uint32_t head_len;   /* STANZA: bytes of its start tag (raw.len when <empty/>) */
    struct xml_str name; /* local name (STREAM_OPEN, STANZA, START, END) */
    struct xml_str ns;   /* namespace name, decoded (STREAM_OPEN, STANZA, START) */
    struct xml_str attr[XML_ATTR_KNOWN]; /* decoded values (STREAM_OPEN, STANZA) */
    /* STANZA: the stream header's bindings it uses, bit i for the header's i-th (there
     * are at most 8); nonzero exactly when XML_F_STREAM_BIND is set. A use resolves to
     * the innermost binding, so the stanza's own declarations of a prefix are never
     * among them. */
    uint8_t stream_binds;
    /* Where each known attribute sits in raw: from its name to its closing quote, so the
     * caller can cut it out (c2s replaces `from`). len 0 when absent. */
    struct {
        uint32_t off, len;
    } attr_raw[XML_ATTR_KNOWN];
};

/* One attribute of the element of the current START event (token mode). */
struct xml_attr {
    struct xml_str name; /* local name */
    struct xml_str ns;   /* namespace name (decoded); len 0 for an unprefixed attribute */
    struct xml_str raw;  /* the value as received, between the quotes */
    bool decode;         /* raw holds references or whitespace to normalise: xml_decode() */
};

struct xml_parser;

/* Prepares p for a new stream. scratch (scratch_cap bytes, at least 4 KiB useful) receives
 * decoded values that need it; values that fit nowhere are a policy-violation. */
void xml_init(struct xml_parser *p, const struct xml_limits *lim, enum xml_content content,
              char *scratch, size_t scratch_cap);

/* Prepares p to read one stanza previously reported by `stream` in token mode: START,
 * END and TEXT for every element and text run of it, with the namespaces in scope at the
 * stream's first level. p borrows stream's state: stream must outlive p. With stream
 * NULL the stanza stands alone in the jabber:client namespace (a stanza that crossed a
 * ring: c2s made it self-contained) under the default limits. */
void xml_init_fragment(struct xml_parser *p, const struct xml_parser *stream, char *scratch,
                       size_t scratch_cap);

/* A stream restart (after STARTTLS or SASL, RFC 6120 §5.4.3.3, §6.4.6): forget the
 * old stream, keep the configuration. The caller discards its buffered bytes too. */
void xml_reset(struct xml_parser *p);

/* Frees what the parser allocated; p may be reinitialised afterwards. */
void xml_free(struct xml_parser *p);

/* Releases the work area if no stanza is in progress. For idle connections. */
void xml_trim(struct xml_parser *p);

/* Scans buf[0..len) from where the previous call stopped and fills *ev with the next
 * event. Returns ev->kind. After XML_EV_ERROR every call returns the same error. */
enum xml_ev_kind xml_next(struct xml_parser *p, const char *buf, size_t len, struct xml_event *ev);

/* How many leading bytes of buf the caller may drop now; the parser's offsets move by as
 * much, so the next xml_next() must be given the buffer without them. */
size_t xml_release(struct xml_parser *p);

/* Token mode, during an XML_EV_START: the element's attributes, namespace declarations
 * excluded. Returns false when i is out of range. */
bool xml_attr_at(struct xml_parser *p, const char *buf, unsigned i, struct xml_attr *a);

/* Token mode, during an XML_EV_START: whether the element's start tag declares the
 * prefix prefix[0..plen) (plen 0: the default namespace, xmlns='...'). */
bool xml_declares(const struct xml_parser *p, const char *buf, const char *prefix, size_t plen);

/* Decodes character data or an attribute value as received: the five predefined entities,
 * character references, line ends (CR LF and CR become LF) and, when attr is true,
 * attribute-value whitespace normalisation. Writes at most len bytes (decoding never
 * lengthens) to out and returns the decoded length. Input must come from a span the
 * parser accepted. */
size_t xml_decode(const char *raw, size_t len, bool attr, char *out);

/* Writes ` xmlns:p='uri'` for each prefixed binding of the stream header in `binds` (an
 * XML_EV_STANZA's stream_binds), so that the stanza can be made to stand alone: it
 * declares exactly what it uses from the header and does not declare itself, so the
 * start tag it is added to never gets a prefix twice. Returns the length needed; the
 * output is complete only when that is at most cap. */
size_t xml_stream_decls(const struct xml_parser *p, unsigned binds, char *out, size_t cap);

/* The element name of a stream error condition, e.g. "not-well-formed". */
const char *xml_err_condition(enum xml_err err);

/* ---- layout: treat as private ----------------------------------------------------------- */

struct xml_work;
struct xml_stream_ns;

struct xml_parser {
    struct xml_limits lim;
    char *scratch;
    uint32_t scratch_cap, scratch_used;
    uint8_t content; /* enum xml_content */
    uint8_t state;
    uint8_t quote;         /* quote character of the attribute value being scanned */
    bool tokens;           /* token mode */
    bool owns_stream;      /* stream_ns was allocated by this parser */
    uint8_t pending;       /* event owed before scanning on (empty element's END...) */
    uint8_t err;           /* enum xml_err, when state is the error state */
    uint8_t attr_decode;   /* the value being scanned needs decoding */
    uint16_t depth;        /* open elements, the stream root included */
    uint16_t nattrs;       /* attributes of the tag being scanned */
    uint32_t pos;          /* next byte to look at */
    uint32_t unit_off;     /* first byte of the stream header or stanza in progress */
    uint32_t unit_end;     /* unit_off + max_stanza: scanning past it is a violation */
    uint32_t tag_off;      /* '<' of the tag being scanned */
    uint32_t tok_off;      /* first byte of the name or value being scanned */
    uint32_t text_off;     /* first byte of the text run being scanned (token mode) */
    uint32_t tag_name_len; /* qualified name of the tag being scanned */
    uint32_t tag_prefix_len;
    bool in_unit;       /* a stream header, stanza or stream end tag is in progress */
    bool blank;         /* in a start tag: a blank since the last name or value */
    bool text_decode;   /* the text run holds references or CR */
    unsigned flags;     /* XML_F_STREAM_BIND gathered over the stanza */
    uint8_t stream_binds; /* and which of the header's bindings: xml_event.stream_binds */
    struct xml_work *w; /* per-stanza state: exists only while one is received */
    struct xml_stream_ns *sns;
};

#endif
