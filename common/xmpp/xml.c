/*
 * xml.c: the stream scanner. A resumable state machine over the caller's bytes; the
 * states that see long runs (character data, attribute values, whitespace, names) skip
 * ahead with table or SSE2 loops, the rest go byte by byte. Every state can stop at any
 * byte and resume there; the only look-aheads (a UTF-8 sequence, a reference, "<!--" and
 * friends, the XML declaration) are a few bytes long and simply wait, unconsumed, until
 * complete, so no partial token needs to be stored.
 *
 * What a complete tag means (namespaces, attributes, the stream header, stanza
 * boundaries) is in xml_tag.c, the character level in xml_lex.c.
 */
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_int.h"
#include "common/xmpp/xml_lex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The bindings of a standalone stanza: jabber:client as the default namespace. */
static union {
    struct xml_stream_ns s;
    char room[sizeof(struct xml_stream_ns) + 8 + sizeof XML_NS_CLIENT];
} standalone;

__attribute__((constructor)) static void standalone_init(void)
{
    standalone.s.nbind = 1;
    standalone.s.b[0].uri_len = sizeof XML_NS_CLIENT - 1;
    memcpy(sns_data(&standalone.s), XML_NS_CLIENT, sizeof XML_NS_CLIENT - 1);
}

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *const conditions[] = {
    [XML_ERR_NONE] = "undefined-condition",
    [XML_ERR_NOT_WELL_FORMED] = "not-well-formed",
    [XML_ERR_RESTRICTED_XML] = "restricted-xml",
    [XML_ERR_INVALID_NAMESPACE] = "invalid-namespace",
    [XML_ERR_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
    [XML_ERR_POLICY_VIOLATION] = "policy-violation",
    [XML_ERR_BAD_FORMAT] = "bad-format",
    [XML_ERR_UNSUPPORTED_ENCODING] = "unsupported-encoding",
    [XML_ERR_UNSUPPORTED_VERSION] = "unsupported-version",
};

const char *xml_err_condition(enum xml_err err)
{
    if ((unsigned)err >= sizeof conditions / sizeof conditions[0])
        return conditions[XML_ERR_NONE];
    return conditions[err];
}

/* ---- life cycle ------------------------------------------------------------------------- */

void xml_clear_stream(struct xml_parser *p)
{
    if (p->owns_stream)
        free(p->sns);
    p->sns = NULL;
    p->owns_stream = false;
}

void xml_init(struct xml_parser *p, const struct xml_limits *lim, enum xml_content content,
              char *scratch, size_t scratch_cap)
{
    memset(p, 0, sizeof *p);
    p->lim = *lim;
    if (p->lim.max_name > 255)
        p->lim.max_name = 255;
    if (p->lim.max_depth == 0)
        p->lim.max_depth = 1;
    p->content = (uint8_t)content;
    p->scratch = scratch;
    p->scratch_cap = scratch_cap > UINT32_MAX ? UINT32_MAX : (uint32_t)scratch_cap;
    p->state = ST_START;
}

void xml_init_fragment(struct xml_parser *p, const struct xml_parser *stream, char *scratch,
                       size_t scratch_cap)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    if (stream) {
        xml_init(p, &stream->lim, (enum xml_content)stream->content, scratch, scratch_cap);
        p->sns = stream->sns;
    } else {
        xml_init(p, &lim, XML_CONTENT_CLIENT, scratch, scratch_cap);
        p->sns = &standalone.s;
    }
    p->state = ST_CONTENT;
    p->depth = 1;
    p->tokens = true;
}

void xml_trim(struct xml_parser *p)
{
    if (p->in_unit || p->tokens)
        return;
    free(p->w);
    p->w = NULL;
}

void xml_free(struct xml_parser *p)
{
    free(p->w);
    p->w = NULL;
    xml_clear_stream(p);
}

void xml_reset(struct xml_parser *p)
{
    struct xml_limits lim = p->lim;
    char *scratch = p->scratch;
    uint32_t cap = p->scratch_cap;
    enum xml_content content = (enum xml_content)p->content;
    xml_free(p);
    xml_init(p, &lim, content, scratch, cap);
}

static int work_get(struct xml_parser *p)
{
    if (p->w)
        return 0;
    size_t nl = p->lim.max_depth, na = p->lim.max_attrs ? p->lim.max_attrs : 1;
    struct xml_work *w = malloc(sizeof *w + nl * sizeof(struct xml_level) +
                                na * (sizeof(struct xml_attr_rec) + sizeof(struct xml_bind)));
    if (!w)
        return -ENOMEM;
    w->nbind = 0;
    w->attrs = (struct xml_attr_rec *)(w + 1);
    w->binds = (struct xml_bind *)(w->attrs + na);
    w->levels = (struct xml_level *)(w->binds + na);
    p->w = w;
    return 0;
}

size_t xml_release(struct xml_parser *p)
{
    uint32_t n = p->in_unit ? p->unit_off : p->pos;
    p->pos -= n;
    p->unit_off -= n;
    p->unit_end -= n;
    p->tag_off -= n;
    p->tok_off -= n;
    p->text_off -= n;
    return n;
}

/* ---- the scanner ------------------------------------------------------------------------ */

/* Starts a new tag at pos (buf[pos] == '<', a name start character follows). */
static int tag_begin(struct xml_parser *p)
{
    if (work_get(p))
        return XML_ERR_POLICY_VIOLATION;
    if (p->depth <= 1 && !p->tokens) {
        p->in_unit = true;
        p->unit_off = p->pos;
        p->unit_end = p->pos + p->lim.max_stanza;
        if (p->unit_end < p->pos)
            p->unit_end = UINT32_MAX;
        p->flags = 0;
        p->stream_binds = 0;
    }
    p->tag_off = p->pos;
    p->tok_off = p->pos + 1;
    p->nattrs = 0;
    p->pos++;
    p->state = ST_STAG_NAME;
    return 0;
}

/* The name at tok_off ends at pos. Validates it; returns its prefix length or -XML_ERR_*. */
static int name_end(struct xml_parser *p, const char *buf)
{
    uint32_t n = p->pos - p->tok_off;
    if (n > p->lim.max_name)
        return -XML_ERR_POLICY_VIOLATION;
    int k = xml_qname_prefix(buf + p->tok_off, n);
    return k < 0 ? -XML_ERR_NOT_WELL_FORMED : k;
}

/* Scans a name from pos: ASCII through the table, the rest decoded. Returns 1 when the
 * name ended at pos, 0 when more input is needed, or -XML_ERR_*. */
static int scan_name(struct xml_parser *p, const char *buf, size_t end, size_t len)
{
    uint32_t pos = p->pos;
    int ret;
    for (;;) {
        while (pos < end && (xml_cls[(uint8_t)buf[pos]] & C_NAME))
            pos++;
        if (pos - p->tok_off > p->lim.max_name) {
            ret = -XML_ERR_POLICY_VIOLATION;
            break;
        }
        if (pos >= end) {
            ret = 0;
            break;
        }
        if ((uint8_t)buf[pos] < 0x80) {
            ret = 1;
            break;
        }
        uint32_t cp;
        int k = xml_utf8_decode((const uint8_t *)buf + pos, len - pos, &cp);
        if (k == 0) {
            ret = 0;
            break;
        }
        if (k < 0 || !xml_name_cp(cp)) {
            ret = -XML_ERR_NOT_WELL_FORMED;
            break;
        }
        pos += (uint32_t)k;
    }
    p->pos = pos;
    return ret;
}

/* Is the byte at buf[pos] (n bytes available) a name start character? 1 yes, 0 wait
 * for more bytes, -1 no. */
static int name_start_at(const char *buf, size_t pos, size_t n)
{
    uint8_t c = (uint8_t)buf[pos];
    if (c < 0x80)
        return (xml_cls[c] & C_NAME_START) && c != ':' ? 1 : -1;
    uint32_t cp;
    int k = xml_utf8_decode((const uint8_t *)buf + pos, n - pos, &cp);
    if (k == 0)
        return 0;
    return k > 0 && xml_name_start_cp(cp) ? 1 : -1;
}

/* Checks the XML declaration at pos; returns its length, 0 to wait, or -XML_ERR_*. */
static int check_decl(const char *s, size_t n)
{
    size_t max = n < DECL_MAX ? n : DECL_MAX, end = 0;
    for (size_t i = 5; i + 1 < max; i++)
        if (s[i] == '?' && s[i + 1] == '>') {
            end = i;
            break;
        }
    if (!end)
        return n < DECL_MAX ? 0 : -XML_ERR_NOT_WELL_FORMED;
    /* version="1.x" [encoding="..."] [standalone="..."], blanks around '=' allowed */
    size_t i = 5;
    bool seen_version = false;
    while (i < end) {
        while (i < end && is_ws((uint8_t)s[i]))
            i++;
        if (i >= end)
            break;
        size_t ns = i;
        while (i < end && (xml_cls[(uint8_t)s[i]] & C_NAME))
            i++;
        size_t nl = i - ns;
        while (i < end && is_ws((uint8_t)s[i]))
            i++;
        if (nl == 0 || i >= end || s[i] != '=')
            return -XML_ERR_NOT_WELL_FORMED;
        i++;
        while (i < end && is_ws((uint8_t)s[i]))
            i++;
        if (i >= end || (s[i] != '"' && s[i] != '\''))
            return -XML_ERR_NOT_WELL_FORMED;
        char q = s[i++];
        size_t vs = i;
        while (i < end && s[i] != q)
            i++;
        if (i >= end)
            return -XML_ERR_NOT_WELL_FORMED;
        const char *v = s + vs;
        size_t vl = i - vs;
        i++;
        if (SPAN_IS(s + ns, nl, "version")) {
            if (vl != 3 || v[0] != '1' || v[1] != '.' || v[2] < '0' || v[2] > '9')
                return -XML_ERR_UNSUPPORTED_VERSION;
            seen_version = true;
        } else if (SPAN_IS(s + ns, nl, "encoding")) {
            if (!(vl == 5 && strncasecmp(v, "utf-8", 5) == 0))
                return -XML_ERR_UNSUPPORTED_ENCODING;
        } else if (!SPAN_IS(s + ns, nl, "standalone")) {
            return -XML_ERR_NOT_WELL_FORMED;
        }
        if (i < end && !is_ws((uint8_t)s[i]))
            return -XML_ERR_NOT_WELL_FORMED;
    }
    return seen_version ? (int)end + 2 : -XML_ERR_NOT_WELL_FORMED;
}

/* Decides what the '<' at pos opens. Returns 0 after a state change, 1 to wait for
 * more bytes, or -XML_ERR_*. */
static int at_lt(struct xml_parser *p, const char *buf, size_t len)
{
    uint32_t pos = p->pos;
    if (pos + 1 >= len)
        return 1;
    char c = buf[pos + 1];
    if (c == '/') {
        if (p->depth == 0)
            return -XML_ERR_NOT_WELL_FORMED;
        if (p->depth == 1 && !p->tokens) {
            /* </stream:stream>: keep its bytes until the name is compared. */
            p->in_unit = true;
            p->unit_off = pos;
            p->unit_end = pos + p->lim.max_stanza;
        }
        p->tag_off = pos;
        p->tok_off = p->pos = pos + 2;
        p->state = ST_ETAG_NAME;
        return 0;
    }
    if (c == '?')
        return -XML_ERR_RESTRICTED_XML; /* processing instruction, RFC 6120 §11.1 */
    if (c == '!') {
        static const char *const opens[] = {"<!--", "<![CDATA[", "<!DOCTYPE"};
        size_t avail = len - pos;
        bool maybe = false;
        for (int i = 0; i < 3; i++) {
            size_t ol = strlen(opens[i]);
            size_t cmp = avail < ol ? avail : ol;
            if (memcmp(buf + pos, opens[i], cmp) != 0)
                continue;
            if (cmp < ol) {
                maybe = true;
                continue;
            }
            if (i != 1)
                return -XML_ERR_RESTRICTED_XML; /* comment or DTD, RFC 6120 §11.1 */
            if (p->depth == 0)
                return -XML_ERR_NOT_WELL_FORMED;
            if (p->depth == 1)
                return -XML_ERR_BAD_FORMAT;
            p->tok_off = p->pos = pos + 9;
            p->state = ST_CDATA;
            return 0;
        }
        return maybe ? 1 : -XML_ERR_NOT_WELL_FORMED;
    }
    int k = name_start_at(buf, pos + 1, len);
    if (k == 0)
        return 1;
    if (k < 0)
        return -XML_ERR_NOT_WELL_FORMED;
    int err = tag_begin(p);
    return err ? -err : 0;
}

enum xml_ev_kind xml_next(struct xml_parser *p, const char *buf, size_t len, struct xml_event *ev)
{
    enum xml_ev_kind k;
    int r;

    ev->kind = XML_EV_NONE;
    ev->flags = 0;
    if (p->state == ST_ERROR)
        goto error;
    if (p->pending == PENDING_CLOSE) {
        p->pending = PENDING_NONE;
        p->state = ST_DONE;
        p->depth = 0;
        return ev->kind = XML_EV_STREAM_CLOSE;
    }
    if (p->pending == PENDING_END) {
        p->pending = PENDING_NONE;
        k = xml_end_element(p, buf, ev);
        ev->flags |= XML_F_EMPTY;
        return ev->kind = k;
    }

    for (;;) {
        size_t end = p->in_unit && p->unit_end < len ? p->unit_end : len;
        uint32_t pos = p->pos;
        if (pos >= end) {
            if (end < len) {
                p->err = XML_ERR_POLICY_VIOLATION;
                goto error;
            }
            return XML_EV_NONE;
        }
        uint8_t c = (uint8_t)buf[pos];

        switch ((enum xml_state)p->state) {
        case ST_START:
            if (c == 0xFE || c == 0xFF || c == 0x00) {
                p->err = XML_ERR_UNSUPPORTED_ENCODING; /* UTF-16 or UTF-32 */
                goto error;
            }
            if (c == 0xEF) {
                if (len - pos < 3)
                    return XML_EV_NONE;
                if ((uint8_t)buf[pos + 1] != 0xBB || (uint8_t)buf[pos + 2] != 0xBF) {
                    p->err = XML_ERR_NOT_WELL_FORMED;
                    goto error;
                }
                p->pos += 3;
            }
            p->state = ST_DECL;
            continue;

        case ST_DECL: {
            static const char decl[] = "<?xml";
            size_t avail = len - pos, cmp = avail < 6 ? avail : 5;
            if (memcmp(buf + pos, decl, cmp) != 0) {
                p->state = ST_PROLOG;
                continue;
            }
            if (avail < 6)
                return XML_EV_NONE;
            if (!is_ws((uint8_t)buf[pos + 5])) {
                p->err = XML_ERR_RESTRICTED_XML; /* a PI whose target starts with "xml" */
                goto error;
            }
            r = check_decl(buf + pos, len - pos);
            if (r == 0)
                return XML_EV_NONE;
            if (r < 0) {
                p->err = (uint8_t)-r;
                goto error;
            }
            p->pos += (uint32_t)r;
            p->state = ST_PROLOG;
            continue;
        }

        case ST_PROLOG:
            while (pos < end && is_ws((uint8_t)buf[pos]))
                pos++;
            p->pos = pos;
            if (pos >= end)
                continue;
            if (buf[pos] != '<') {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            p->state = ST_LT;
            continue;

        case ST_LT:
            r = at_lt(p, buf, len);
            if (r == 1)
                return XML_EV_NONE;
            if (r < 0) {
                p->err = (uint8_t)-r;
                goto error;
            }
            continue;

        case ST_CONTENT:
            if (p->depth == 1) {
                /* Between stanzas only whitespace (keepalives) may appear. */
                while (pos < end && is_ws((uint8_t)buf[pos]))
                    pos++;
                p->pos = pos;
                if (pos >= end)
                    continue;
                if (buf[pos] != '<') {
                    p->err = XML_ERR_BAD_FORMAT;
                    goto error;
                }
                p->state = ST_LT;
                continue;
            }
            pos += (uint32_t)scan_text(buf + pos, end - pos);
            p->pos = pos;
            if (pos >= end)
                continue;
            c = (uint8_t)buf[pos];
            if (c == '<') {
                if (p->tokens && pos > p->text_off) {
                    ev->raw = (struct xml_str){buf + p->text_off, pos - p->text_off};
                    ev->flags = p->text_decode ? XML_F_DECODE : 0;
                    ev->depth = (uint16_t)(p->depth - 1);
                    p->text_off = pos;
                    p->text_decode = false;
                    return ev->kind = XML_EV_TEXT;
                }
                p->state = ST_LT;
            } else if (c == '&') {
                r = xml_check_ref(buf + pos, len - pos);
                if (r == 0)
                    return XML_EV_NONE;
                if (r < 0) {
                    p->err = (uint8_t)-r;
                    goto error;
                }
                p->text_decode = true;
                p->pos += (uint32_t)r;
            } else if (c == '>') {
                if (pos >= p->text_off + 2 && buf[pos - 1] == ']' && buf[pos - 2] == ']') {
                    p->err = XML_ERR_NOT_WELL_FORMED; /* "]]>" outside CDATA */
                    goto error;
                }
                p->pos++;
            } else if (c < 0x80) {
                if (c != '\t' && c != '\n' && c != '\r') {
                    p->err = XML_ERR_NOT_WELL_FORMED;
                    goto error;
                }
                if (c == '\r')
                    p->text_decode = true;
                p->pos++;
            } else {
                uint32_t cp;
                r = xml_utf8_decode((const uint8_t *)buf + pos, len - pos, &cp);
                if (r == 0)
                    return XML_EV_NONE;
                if (r < 0) {
                    p->err = XML_ERR_NOT_WELL_FORMED;
                    goto error;
                }
                p->pos += (uint32_t)r;
            }
            continue;

        case ST_STAG_NAME:
            r = scan_name(p, buf, end, len);
            if (r <= 0)
                goto name_wait;
            r = name_end(p, buf);
            if (r < 0) {
                p->err = (uint8_t)-r;
                goto error;
            }
            p->tag_name_len = p->pos - p->tok_off;
            p->tag_prefix_len = (uint32_t)r;
            p->state = ST_STAG_SP;
            p->blank = false;
            c = (uint8_t)buf[p->pos];
            if (!is_ws(c) && c != '>' && c != '/') {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            continue;

        case ST_STAG_SP:
            while (pos < end && is_ws((uint8_t)buf[pos]))
                pos++, p->blank = true;
            p->pos = pos;
            if (pos >= end)
                continue;
            c = (uint8_t)buf[pos];
            if (c == '>' || c == '/') {
                if (c == '/') {
                    p->pos++;
                    p->state = ST_STAG_SLASH;
                    continue;
                }
                p->pos++;
                p->state = ST_CONTENT;
                k = xml_start_tag_done(p, buf, false, ev);
                if (k == XML_EV_ERROR)
                    goto error;
                if (k != XML_EV_NONE)
                    return ev->kind = k;
                continue;
            }
            r = name_start_at(buf, pos, len);
            if (r == 0)
                return XML_EV_NONE;
            if (r < 0 || !p->blank) {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            if (p->nattrs >= p->lim.max_attrs) {
                p->err = XML_ERR_POLICY_VIOLATION;
                goto error;
            }
            p->w->attrs[p->nattrs].name_off = pos - p->unit_off;
            p->tok_off = pos;
            p->state = ST_ATTR_NAME;
            continue;

        case ST_ATTR_NAME: {
            r = scan_name(p, buf, end, len);
            if (r <= 0)
                goto name_wait;
            r = name_end(p, buf);
            if (r < 0) {
                p->err = (uint8_t)-r;
                goto error;
            }
            struct xml_attr_rec *a = &p->w->attrs[p->nattrs];
            const char *an = buf + p->tok_off;
            a->name_len = (uint8_t)(p->pos - p->tok_off);
            a->prefix_len = (uint8_t)r;
            a->kind = ATTR_PLAIN;
            if (SPAN_IS(an, a->name_len, "xmlns"))
                a->kind = ATTR_XMLNS_DEFAULT;
            else if (r == 5 && !memcmp(an, "xmlns", 5))
                a->kind = ATTR_XMLNS_PREFIX;
            p->state = ST_ATTR_EQ;
            continue;
        }

        case ST_ATTR_EQ:
            while (pos < end && is_ws((uint8_t)buf[pos]))
                pos++;
            p->pos = pos;
            if (pos >= end)
                continue;
            if (buf[pos] != '=') {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            p->pos++;
            p->state = ST_ATTR_Q;
            continue;

        case ST_ATTR_Q:
            while (pos < end && is_ws((uint8_t)buf[pos]))
                pos++;
            p->pos = pos;
            if (pos >= end)
                continue;
            if (buf[pos] != '"' && buf[pos] != '\'') {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            p->quote = (uint8_t)buf[pos];
            p->pos++;
            p->tok_off = p->pos;
            p->attr_decode = 0;
            p->state = ST_ATTR_VAL;
            continue;

        case ST_ATTR_VAL:
            pos += (uint32_t)scan_attr(buf + pos, end - pos, (char)p->quote);
            p->pos = pos;
            if (pos >= end)
                continue;
            c = (uint8_t)buf[pos];
            if (c == p->quote) {
                struct xml_attr_rec *a = &p->w->attrs[p->nattrs++];
                a->val_off = p->tok_off - p->unit_off;
                a->val_len = pos - p->tok_off;
                a->decode = p->attr_decode;
                p->pos++;
                p->blank = false;
                p->state = ST_STAG_SP;
            } else if (c == '&') {
                r = xml_check_ref(buf + pos, len - pos);
                if (r == 0)
                    return XML_EV_NONE;
                if (r < 0) {
                    p->err = (uint8_t)-r;
                    goto error;
                }
                p->attr_decode = 1;
                p->pos += (uint32_t)r;
            } else if (c == '\t' || c == '\n' || c == '\r') {
                p->attr_decode = 1;
                p->pos++;
            } else if (c < 0x80) {
                p->err = XML_ERR_NOT_WELL_FORMED; /* '<' or a control character */
                goto error;
            } else {
                uint32_t cp;
                r = xml_utf8_decode((const uint8_t *)buf + pos, len - pos, &cp);
                if (r == 0)
                    return XML_EV_NONE;
                if (r < 0) {
                    p->err = XML_ERR_NOT_WELL_FORMED;
                    goto error;
                }
                p->pos += (uint32_t)r;
            }
            continue;

        case ST_STAG_SLASH:
            if (c != '>') {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            p->pos++;
            p->state = ST_CONTENT;
            k = xml_start_tag_done(p, buf, true, ev);
            if (k == XML_EV_ERROR)
                goto error;
            if (k != XML_EV_NONE)
                return ev->kind = k;
            /* <empty/> inside a stanza, or a whole empty stanza: close it at once. */
            k = xml_end_element(p, buf, ev);
            if (k != XML_EV_NONE)
                return ev->kind = k;
            continue;

        case ST_ETAG_NAME:
            r = scan_name(p, buf, end, len);
            if (r <= 0)
                goto name_wait;
            p->tag_name_len = p->pos - p->tok_off;
            if (p->tag_name_len > p->lim.max_name) {
                p->err = XML_ERR_POLICY_VIOLATION;
                goto error;
            }
            p->state = ST_ETAG_SP;
            continue;

        case ST_ETAG_SP: {
            while (pos < end && is_ws((uint8_t)buf[pos]))
                pos++;
            p->pos = pos;
            if (pos >= end)
                continue;
            if (buf[pos] != '>') {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            p->pos++;
            p->state = ST_CONTENT;
            const char *qn = buf + p->tok_off;
            if (p->depth == 1) {
                if (!p->sns || !span_is(qn, p->tag_name_len, sns_data(p->sns), p->sns->qname_len)) {
                    p->err = XML_ERR_NOT_WELL_FORMED;
                    goto error;
                }
                p->depth = 0;
                p->in_unit = false;
                p->state = ST_DONE;
                return ev->kind = XML_EV_STREAM_CLOSE;
            }
            const struct xml_level *l = &p->w->levels[p->depth - 2];
            if (!span_is(qn, p->tag_name_len, buf + p->unit_off + l->name_off, l->name_len)) {
                p->err = XML_ERR_NOT_WELL_FORMED;
                goto error;
            }
            k = xml_end_element(p, buf, ev);
            if (k == XML_EV_ERROR)
                goto error;
            if (k != XML_EV_NONE)
                return ev->kind = k;
            continue;
        }

        case ST_CDATA:
            while (pos < end) {
                c = (uint8_t)buf[pos];
                if (c >= 0x20 && c < 0x80 && c != ']') {
                    pos++;
                    continue;
                }
                if (c == ']') {
                    if (len - pos < 3)
                        break;
                    if (buf[pos + 1] == ']' && buf[pos + 2] == '>') {
                        p->pos = pos + 3;
                        p->state = ST_CONTENT;
                        p->text_off = p->pos;
                        if (p->tokens && pos > p->tok_off) {
                            ev->raw = (struct xml_str){buf + p->tok_off, pos - p->tok_off};
                            ev->flags = XML_F_CDATA;
                            ev->depth = (uint16_t)(p->depth - 1);
                            return ev->kind = XML_EV_TEXT;
                        }
                        break;
                    }
                    pos++;
                    continue;
                }
                if (c < 0x80) {
                    if (c != '\t' && c != '\n' && c != '\r') {
                        p->err = XML_ERR_NOT_WELL_FORMED;
                        goto error;
                    }
                    pos++;
                    continue;
                }
                uint32_t cp;
                r = xml_utf8_decode((const uint8_t *)buf + pos, len - pos, &cp);
                if (r == 0)
                    break;
                if (r < 0) {
                    p->err = XML_ERR_NOT_WELL_FORMED;
                    goto error;
                }
                pos += (uint32_t)r;
            }
            if (p->state != ST_CDATA)
                continue;
            p->pos = pos;
            if (pos < end)
                return XML_EV_NONE; /* a "]" or a UTF-8 sequence waits for more bytes */
            continue;

        case ST_DONE:
            p->pos = (uint32_t)len; /* the peer has closed its stream; ignore the rest */
            return XML_EV_NONE;

        case ST_ERROR:
            goto error;
        }
    }

name_wait:
    if (r == 0) {
        if (p->pos >= (p->in_unit && p->unit_end < len ? p->unit_end : len) && p->pos < len) {
            p->err = XML_ERR_POLICY_VIOLATION;
            goto error;
        }
        return XML_EV_NONE;
    }
    p->err = (uint8_t)-r;
error:
    p->state = ST_ERROR;
    ev->err = (enum xml_err)p->err;
    return ev->kind = XML_EV_ERROR;
}

size_t xml_stream_decls(const struct xml_parser *p, unsigned binds, char *out, size_t cap)
{
    const struct xml_stream_ns *s = p->sns;
    size_t n = 0;
    for (unsigned i = 0; s && i < s->nbind; i++) {
        if (!s->b[i].prefix_len || !(binds & (1u << i)))
            continue;
        /* URIs were decoded when copied; re-escape what an attribute cannot hold. */
        size_t need = 7 + s->b[i].prefix_len + 2 + 1; /* ` xmlns:` p `='` uri `'` */
        for (unsigned k = 0; k < s->b[i].uri_len; k++) {
            char c = sns_data(s)[s->b[i].uri_off + k];
            need += c == '&' ? 5 : c == '\'' ? 6 : c == '<' ? 4 : 1;
        }
        if (n + need <= cap) {
            char *o = out + n;
            memcpy(o, " xmlns:", 7);
            o += 7;
            memcpy(o, sns_data(s) + s->b[i].prefix_off, s->b[i].prefix_len);
            o += s->b[i].prefix_len;
            *o++ = '=';
            *o++ = '\'';
            for (unsigned k = 0; k < s->b[i].uri_len; k++) {
                char c = sns_data(s)[s->b[i].uri_off + k];
                const char *e = c == '&'    ? "&amp;"
                                : c == '\'' ? "&apos;"
                                : c == '<'  ? "&lt;"
                                            : NULL;
                if (e) {
                    memcpy(o, e, strlen(e));
                    o += strlen(e);
                } else {
                    *o++ = c;
                }
            }
            *o++ = '\'';
        }
        n += need;
    }
    return n;
}

bool xml_declares(const struct xml_parser *p, const char *buf, const char *prefix, size_t plen)
{
    const char *ubuf = buf + p->unit_off;
    for (unsigned k = 0; k < p->nattrs; k++) {
        const struct xml_attr_rec *r = &p->w->attrs[k];
        if (plen == 0 ? r->kind == ATTR_XMLNS_DEFAULT
                      : r->kind == ATTR_XMLNS_PREFIX && r->name_len == 6u + plen &&
                            memcmp(ubuf + r->name_off + 6, prefix, plen) == 0)
            return true;
    }
    return false;
}

bool xml_attr_at(struct xml_parser *p, const char *buf, unsigned i, struct xml_attr *a)
{
    const char *ubuf = buf + p->unit_off;
    for (unsigned k = 0; k < p->nattrs; k++) {
        const struct xml_attr_rec *r = &p->w->attrs[k];
        if (r->kind != ATTR_PLAIN || i-- != 0)
            continue;
        const char *qn = ubuf + r->name_off;
        size_t skip = r->prefix_len ? r->prefix_len + 1u : 0u;
        a->name = (struct xml_str){qn + skip, (uint32_t)(r->name_len - skip)};
        a->raw = (struct xml_str){ubuf + r->val_off, r->val_len};
        a->decode = r->decode;
        a->ns = (struct xml_str){"", 0};
        if (r->prefix_len) {
            struct ns_ref ref;
            if (xml_ns_lookup(p, ubuf, qn, r->prefix_len, &ref))
                xml_ns_str(p, ubuf, &ref, &a->ns);
        }
        return true;
    }
    return false;
}
