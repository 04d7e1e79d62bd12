/*
 * st.h: what the s2s unit tests share. Elements are read as the s2s stream will hand them
 * over: a jabber:server stream whose header declares xmlns:db (as every server's does)
 * reports the stanza, and xml_tree builds its tree, so prefixes bound on the header
 * resolve exactly as they will in production.
 */
#ifndef STARLING_TEST_ST_H
#define STARLING_TEST_ST_H

#include "common/core/arena.h"
#include "common/core/buf.h"
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

#define ST_HEADER                                                                                  \
    "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "                      \
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

/* The first fields of a table's row: where it is, so a failure names the row. */
#define ST_ROW __FILE__, __LINE__

static struct arena st_arena;
static char st_scratch[16384];

/* The tree of the first element of xml on such a stream; NULL (a failure at the caller's
 * line) when xml is not one complete, well-formed element. Lives in st_arena. */
#define st_elem(xml) st_elem_at(__FILE__, __LINE__, (xml))
static inline struct xml_node *st_elem_at(const char *file, int line, const char *xml)
{
    static char in[1 << 16];
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    struct xml_node *n = NULL;
    int len = snprintf(in, sizeof in, "%s%s", ST_HEADER, xml);

    if (!st_arena.chunk_size)
        arena_init(&st_arena, 4096);
    xml_init(&p, &lim, XML_CONTENT_SERVER, st_scratch, sizeof st_scratch);
    if (len > 0 && (size_t)len < sizeof in &&
        xml_next(&p, in, (size_t)len, &ev) == XML_EV_STREAM_OPEN &&
        xml_next(&p, in, (size_t)len, &ev) == XML_EV_STANZA)
        n = xml_tree_parse(&p, ev.raw.p, ev.raw.len, &st_arena, st_scratch, sizeof st_scratch);
    xml_free(&p);
    if (!n) {
        test_cur_failed++;
        fprintf(stderr, "%s:%d: %s: not one element: %s\n", file, line, test_cur_name, xml);
    }
    return n;
}

/* What was appended to b, as a string; b is emptied for the next step. */
static inline const char *st_out(struct buf *b)
{
    static char s[1 << 16];
    size_t n = buf_used(b) < sizeof s - 1 ? buf_used(b) : sizeof s - 1;
    memcpy(s, buf_data(b), n);
    s[n] = '\0';
    buf_consume(b, buf_used(b));
    return s;
}

/* st_out() into dst (truncated to its size), for a value kept across other calls. */
static inline void st_take(char *dst, size_t size, struct buf *b)
{
    const char *s = st_out(b);
    size_t n = strlen(s) < size - 1 ? strlen(s) : size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

#endif
