/*
 * libFuzzer driver of what s2s/multicast.c reads from a peer (XEP-0033): the input is
 * the peer's bytes after its stream header on a jabber:server stream, as in.c gets them;
 * for each first-level element, its <addresses/> child found in the bytes (mcast_span),
 * read and checked for recipients of b.test (mcast_parse, at most MAX of them) and
 * rewritten for a recipient (mcast_rewrite, §4.4); a disco#info <query/> child is read
 * as our discovery reads it (mcast_info).
 * Checks, besides ASan/UBSan/LSan: the span is a whole element of the stanza's bytes
 * exactly when the tree has that child; an accepted list names only users of b.test,
 * within the bounds; the stanza with its span replaced by the rewrite parses again as
 * one element on that stream, and its <addresses/> (if any) holds no bcc address.
 */
#include "common/xmpp/jid.h"
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "s2s/s2s.h"

#include <stdlib.h>
#include <string.h>

#define HEADER                                                                                     \
    "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "                      \
    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:a='" MCAST_NS "' "                      \
    "from='a.test' to='b.test' version='1.0'>"
#define MAX 5

static char scratch[16384], scratch2[16384];
static struct arena arena;
static struct mcast_addr v[MAX + 16];

/* header + the stanza with raw[off..end) replaced by r: one element again, whose
 * addresses have no bcc one left. */
static void check_rewritten(const char *raw, size_t len, size_t off, size_t end,
                            const struct buf *r)
{
    static char in[1 << 18];
    size_t hl = strlen(HEADER), n = hl + off + buf_used(r) + (len - end);
    if (n > sizeof in)
        return;
    memcpy(in, HEADER, hl);
    memcpy(in + hl, raw, off);
    if (buf_used(r))
        memcpy(in + hl + off, buf_data(r), buf_used(r));
    memcpy(in + hl + off + buf_used(r), raw + end, len - end);
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    lim.max_stanza = sizeof in;
    struct xml_parser p;
    struct xml_event ev;
    xml_init(&p, &lim, XML_CONTENT_SERVER, scratch2, sizeof scratch2);
    if (xml_next(&p, in, n, &ev) != XML_EV_STREAM_OPEN ||
        xml_next(&p, in, n, &ev) != XML_EV_STANZA || ev.raw.p + ev.raw.len != in + n)
        abort();
    struct xml_node *t =
        xml_tree_parse(&p, ev.raw.p, ev.raw.len, &arena, scratch2, sizeof scratch2);
    if (!t)
        abort();
    const struct xml_node *as = xml_node_child(t, "addresses", MCAST_NS);
    for (const struct xml_node *a = as ? xml_node_child(as, "address", MCAST_NS) : NULL; a;
         a = xml_node_next(a, "address", MCAST_NS)) {
        const char *type = xml_node_attr(a, "type");
        if (type && !strcmp(type, "bcc") && buf_used(r))
            abort();
    }
    xml_free(&p);
}

static void one(const struct xml_parser *stream, const struct xml_event *ev)
{
    size_t off = 0, end = 0;
    int rc = mcast_span(stream, ev->raw.p, ev->raw.len, scratch2, sizeof scratch2, &off, &end);
    struct xml_node *t =
        xml_tree_parse(stream, ev->raw.p, ev->raw.len, &arena, scratch2, sizeof scratch2);
    if (!t)
        abort();
    struct xml_node *as = xml_node_child(t, "addresses", MCAST_NS);
    if ((rc == -ENOENT) != !as || (rc != 0 && rc != -ENOENT && rc != -EINVAL))
        abort();
    uint32_t limit = 0;
    struct xml_node *q = xml_node_child(t, "query", "http://jabber.org/protocol/disco#info");
    if (q)
        mcast_info(q, &arena, &limit);
    if (rc != 0)
        return;
    const char *raw = ev->raw.p;
    if (off >= end || end > ev->raw.len || raw[off] != '<' || raw[end - 1] != '>')
        abort();
    unsigned n = 0, rcpts = 0;
    if (mcast_parse(as, "b.test", MAX, &arena, v, &n) != MCAST_OK)
        return;
    if (n > MAX + 8)
        abort();
    for (unsigned i = 0; i < n; i++) {
        if (v[i].type == MCAST_INFO || v[i].delivered)
            continue;
        char buf[JID_BUF];
        struct jid j;
        if (!v[i].jid || jid_parse(&j, v[i].jid, strlen(v[i].jid), buf, sizeof buf) < 0 ||
            !j.local_len || j.domain_len != 6 || memcmp(j.str + j.domain_off, "b.test", 6) ||
            strcmp(j.str, v[i].jid) != 0)
            abort();
        rcpts++;
    }
    if (!rcpts || rcpts > MAX)
        abort();
    struct buf r = {0};
    if (mcast_rewrite(&r, v, n) < 0)
        abort();
    check_rewritten(raw, ev->raw.len, off, end, &r);
    buf_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[1 << 17];
    size_t hl = strlen(HEADER);
    if (size > sizeof in - hl)
        return 0;
    if (!arena.chunk_size)
        arena_init(&arena, 8192);
    memcpy(in, HEADER, hl);
    memcpy(in + hl, data, size);
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    xml_init(&p, &lim, XML_CONTENT_SERVER, scratch, sizeof scratch);
    if (xml_next(&p, in, hl + size, &ev) != XML_EV_STREAM_OPEN)
        abort();
    while (xml_next(&p, in, hl + size, &ev) == XML_EV_STANZA) {
        one(&p, &ev);
        arena_reset(&arena);
    }
    xml_free(&p);
    return 0;
}
