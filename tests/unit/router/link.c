/*
 * link.c: the checks of what arrives on a cluster link (router/link.h): the envelope
 * and the heartbeat. Everything a peer could get wrong is refused.
 */
#include "router/link.h"
#include "router/router.h"
#include "test.h"

#include <errno.h>
#include <string.h>

static char msg[256];

static size_t frame(struct link_hdr h, const char *payload, uint32_t len)
{
    h.len = len;
    memcpy(msg, &h, sizeof h);
    memcpy(msg + sizeof h, payload, len);
    return sizeof h + len;
}

static const struct link_hdr ok = {LINK_MAGIC, PROTO_STANZA, 1, 2, 0, 0, 0, 0};

static void test_envelope(void)
{
    struct link_hdr h;
    const void *p;
    /* From node 2 to node 0 (us), shard 1 of 2, three nodes. */
    size_t n = frame(ok, "abc", 3);
    CHECK_INT(link_decode(msg, n, 0, 3, 2, &h, &p), ==, 0);
    CHECK(p == msg + sizeof h && h.kind == PROTO_STANZA && h.shard == 1 && h.src == 2);
    CHECK_INT(link_decode(msg, n - 1, 0, 3, 2, &h, &p), ==, -EBADMSG); /* cut short */
    /* Records follow each other in a message: the first one's length says where the
     * next begins. */
    size_t two = n + frame(ok, "de", 2);
    memmove(msg + n, msg, two - n);
    frame(ok, "abc", 3);
    CHECK_INT(link_decode(msg, two, 0, 3, 2, &h, &p), ==, 0);
    CHECK_INT(h.len, ==, 3);
    CHECK_INT(link_decode(msg + n, two - n, 0, 3, 2, &h, &p), ==, 0);
    CHECK(h.len == 2 && !memcmp(p, "de", 2));
    frame(ok, "abc", 3);
    CHECK_INT(link_decode(msg, sizeof h - 1, 0, 3, 2, &h, &p), ==, -EBADMSG);
    CHECK_INT(link_decode(msg, n, 1, 3, 2, &h, &p), ==, -EBADMSG); /* not for us */
    CHECK_INT(link_decode(msg, n, 0, 2, 2, &h, &p), ==, -EBADMSG); /* no such node */
    CHECK_INT(link_decode(msg, n, 0, 3, 1, &h, &p), ==, -EBADMSG); /* no such shard */
    CHECK_INT(link_decode(msg, n, 2, 3, 2, &h, &p), ==, -EBADMSG); /* from ourselves */
    struct link_hdr bad = ok;
    bad.magic ^= 1;
    CHECK_INT(link_decode(msg, frame(bad, "abc", 3), 0, 3, 2, &h, &p), ==, -EBADMSG);
    bad = ok;
    bad.kind = PROTO_REMOTE_ACK; /* s2s's to its router: never between nodes */
    CHECK_INT(link_decode(msg, frame(bad, "abc", 3), 0, 3, 2, &h, &p), ==, -EBADMSG);
    bad.kind = RK_BOUNCE; /* the link thread's to its shards */
    CHECK_INT(link_decode(msg, frame(bad, "abc", 3), 0, 3, 2, &h, &p), ==, -EBADMSG);
    bad = ok;
    bad.hops = LINK_MAX_HOPS + 1;
    CHECK_INT(link_decode(msg, frame(bad, "abc", 3), 0, 3, 2, &h, &p), ==, -EBADMSG);
    bad.hops = LINK_MAX_HOPS;
    CHECK_INT(link_decode(msg, frame(bad, "abc", 3), 0, 3, 2, &h, &p), ==, 0);
    /* Every kind a link carries. */
    uint16_t kinds[] = {PROTO_BIND, PROTO_UNBIND, PROTO_STANZA, PROTO_BIND_RESULT,
                        PROTO_DELIVER, PROTO_CLOSE, PROTO_SESSION_STATE, PROTO_REMOTE,
                        PROTO_REMOTE_FANOUT, RK_INBOUND, RK_FANOUT, RK_PROBE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        CHECK(link_kind_ok(kinds[i]));
    CHECK(!link_kind_ok(PROTO_PAD) && !link_kind_ok(RK_KIND_MAX));
}

static void test_heartbeat(void)
{
    struct link_hdr h = ok, got;
    const void *p;
    h.kind = LINK_HEARTBEAT;
    h.shard = 0;
    char pl[64];
    struct link_hb hb = {.incarnation = 9, .sessions = 3, .shards = 2, .name_len = 5};
    memcpy(pl, &hb, sizeof hb);
    memcpy(pl + sizeof hb, "node3", 5);
    size_t n = frame(h, pl, (uint32_t)sizeof hb + 5);
    CHECK_INT(link_decode(msg, n, 0, 3, 2, &got, &p), ==, 0);
    struct link_hb out;
    const char *name;
    CHECK_INT(link_decode_hb(p, got.len, &out, &name), ==, 0);
    CHECK(out.incarnation == 9 && out.shards == 2 && !memcmp(name, "node3", 5));
    CHECK_INT(link_decode_hb(p, got.len - 1, &out, &name), ==, -EBADMSG); /* name cut */
    CHECK_INT(link_decode_hb(p, sizeof hb - 1, &out, &name), ==, -EBADMSG);
    hb.shards = 0; /* a node with no shard is nobody's home */
    memcpy(pl, &hb, sizeof hb);
    CHECK_INT(link_decode_hb(pl, (uint32_t)sizeof hb + 5, &out, &name), ==, -EBADMSG);
    h.shard = 1; /* a heartbeat names no shard */
    n = frame(h, pl, (uint32_t)sizeof hb + 5);
    CHECK_INT(link_decode(msg, n, 0, 3, 2, &got, &p), ==, -EBADMSG);
}

int main(void)
{
    RUN(test_envelope);
    RUN(test_heartbeat);
    return test_done("link");
}
