/*
 * Tests of s2s/remote.c's answer to a room's fan-out that cannot be delivered: one error
 * per occupant listed, of the stanza's kind, from the occupant's real JID to the
 * room/nick that sent it; nothing for an error, nothing for presence fan-out not from a
 * room, -EBADMSG for a malformed frame.
 */
#include "s2s/s2s.h"
#include "common/xmpp/jid.h"
#include "shm/decode.h"
#include "shm/proto.h"
#include "st.h"

#include <errno.h>
#include <string.h>

#define ROOM "room@muc.a.test"
#define COND "remote-server-not-found"

static struct buf frames; /* what the callback got: uint32_t length, then the frame */
static unsigned nframes;

static void got(void *arg, const void *frame, uint32_t len)
{
    (void)arg;
    buf_append(&frames, &len, sizeof len);
    buf_append(&frames, frame, len);
    nframes++;
}

/* A REMOTE_FANOUT frame for b.test: the stanza (without `to`) and the recipients. */
static void fanout(struct buf *b, const char *stanza, uint16_t flags, const char *const *rcpt)
{
    struct proto_remote_fanout h = {
        .stanza_len = (uint32_t)strlen(stanza),
        .to_at = 8,
        .domain_len = 6,
        .flags = flags,
    };
    for (const char *const *r = rcpt; *r; r++)
        h.nrcpt++;
    buf_consume(b, buf_used(b));
    buf_append(b, &h, sizeof h);
    buf_puts(b, "b.test");
    buf_puts(b, stanza);
    for (const char *const *r = rcpt; *r; r++) {
        uint16_t l = (uint16_t)strlen(*r);
        buf_append(b, &l, sizeof l);
        buf_append(b, *r, l);
    }
}

static int run(const struct buf *b)
{
    buf_consume(&frames, buf_used(&frames));
    nframes = 0;
    return remote_fanout_errors(buf_data(b), (uint32_t)buf_used(b), COND, 77, st_scratch,
                                sizeof st_scratch, got, NULL);
}

/* The i-th frame the callback got, decoded. */
static bool frame_at(unsigned i, struct decode_stanza *d)
{
    const char *p = buf_data(&frames), *end = p + buf_used(&frames);
    for (;;) {
        uint32_t len;
        if ((size_t)(end - p) < sizeof len)
            return false;
        memcpy(&len, p, sizeof len);
        p += sizeof len;
        if (!i--)
            return decode_stanza(p, len, d) == 0;
        p += len;
    }
}

static void message_test(void)
{
    static const char *const rcpt[] = {"bob@b.test/phone", "carol@b.test/pc", NULL};
    struct buf b = {0};
    fanout(&b, "<message from='" ROOM "/a&amp;b' id='m1' type='groupchat'><body>hi</body>"
               "</message>", PROTO_FANOUT_FROM_MUC, rcpt);
    CHECK_INT(run(&b), ==, 2);
    CHECK_INT(nframes, ==, 2);
    for (unsigned i = 0; i < 2; i++) {
        struct decode_stanza d;
        if (!frame_at(i, &d)) {
            TEST_FAIL("frame %u does not decode", i);
            continue;
        }
        CHECK_INT(d.h.kind, ==, PROTO_MESSAGE);
        CHECK_INT(d.h.type, ==, PROTO_MSG_ERROR);
        CHECK(d.h.conn == 77);
        CHECK(d.h.flags & PROTO_STANZA_REMOTE);
        CHECK_SPAN(d.from, d.h.from_len, rcpt[i]);
        CHECK_INT(d.h.from_bare_len, ==, strchr(rcpt[i], '/') - rcpt[i]);
        /* To the room/nick that sent it, on the room's shard. */
        CHECK_SPAN(d.to, d.h.to_len, ROOM "/a&b");
        CHECK_INT(d.h.to_bare_len, ==, sizeof ROOM - 1);
        CHECK_SPAN(d.to + d.h.to_domain_off, d.h.to_domain_len, "muc.a.test");
        CHECK(d.h.key == jid_hash(ROOM, sizeof ROOM - 1));
        struct buf want = {0};
        buf_puts(&want, "<message type='error' id='m1' from='");
        buf_puts(&want, rcpt[i]);
        buf_puts(&want, "' to='" ROOM "/a&amp;b'><error type='cancel'><" COND
                        " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        CHECK_SPAN(d.raw, d.h.stanza_len, st_out(&want));
        buf_free(&want);
    }
    buf_free(&b);
}

static void presence_test(void)
{
    static const char *const rcpt[] = {"bob@b.test/phone", NULL};
    struct buf b = {0};
    fanout(&b, "<presence from='" ROOM "/al' type='unavailable'><x xmlns='"
               "http://jabber.org/protocol/muc#user'><status code='333'/></x></presence>",
           PROTO_FANOUT_FROM_MUC, rcpt);
    CHECK_INT(run(&b), ==, 1);
    struct decode_stanza d;
    CHECK(frame_at(0, &d));
    CHECK_INT(d.h.kind, ==, PROTO_PRESENCE);
    CHECK_INT(d.h.type, ==, PROTO_PRES_ERROR);
    CHECK_SPAN(d.to, d.h.to_len, ROOM "/al");
    CHECK(d.h.stanza_len > 9 && !memcmp(d.raw, "<presence type='error' from=", 28));
    buf_free(&b);
}

/* Nothing answers an error, presence fan-out not from a room, or what has no room/nick. */
static void silent_test(void)
{
    static const char *const rcpt[] = {"bob@b.test/phone", NULL};
    struct buf b = {0};
    fanout(&b, "<message from='" ROOM "/al' type='error'><error type='cancel'/></message>",
           PROTO_FANOUT_FROM_MUC, rcpt);
    CHECK_INT(run(&b), ==, 0);
    fanout(&b, "<presence from='" ROOM "/al' type='error'/>", PROTO_FANOUT_FROM_MUC, rcpt);
    CHECK_INT(run(&b), ==, 0);
    fanout(&b, "<presence from='alice@a.test/pc'/>", 0, rcpt);
    CHECK_INT(run(&b), ==, 0);
    fanout(&b, "<message from='" ROOM "' type='groupchat'/>", PROTO_FANOUT_FROM_MUC, rcpt);
    CHECK_INT(run(&b), ==, 0);
    fanout(&b, "<iq from='" ROOM "/al' type='get'/>", PROTO_FANOUT_FROM_MUC, rcpt);
    CHECK_INT(run(&b), ==, 0);
    CHECK_INT(nframes, ==, 0);
    /* Malformed: the domain's length past the frame. */
    struct proto_remote_fanout h = {.stanza_len = 5, .domain_len = 60000, .nrcpt = 1};
    buf_consume(&b, buf_used(&b));
    buf_append(&b, &h, sizeof h);
    CHECK_INT(run(&b), ==, -EBADMSG);
    buf_free(&b);
}

int main(void)
{
    RUN(message_test);
    RUN(presence_test);
    RUN(silent_test);
    buf_free(&frames);
    arena_free(&st_arena);
    return test_done("s2s/remote");
}
