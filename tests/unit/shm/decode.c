/* Unit tests of shm/decode.c: every frame kind, valid and each way of being invalid. */
#include "shm/decode.h"
#include "test.h"

#include <errno.h>
#include <stdalign.h>

static alignas(8) unsigned char frame[4096];

/* A stanza frame from a@x/r to b@x; returns its length. */
static uint32_t stanza_frame(void)
{
    static const char from[] = "a@x/r", to[] = "b@x", raw[] = "<message/>";
    struct proto_stanza h = {.kind = PROTO_MESSAGE,
                             .from_len = 5,
                             .from_bare_len = 3,
                             .to_len = 3,
                             .to_bare_len = 3,
                             .to_domain_off = 2,
                             .to_domain_len = 1,
                             .stanza_len = 10,
                             .head_len = 10};
    unsigned char *p = frame;
    memcpy(p, &h, sizeof h);
    memcpy(p += sizeof h, from, 5);
    memcpy(p += 5, to, 3);
    memcpy(p += 3, raw, 10);
    return (uint32_t)(p + 10 - frame);
}

#define SH ((struct proto_stanza *)frame)

/* After building a good frame, mutate one field: the frame must be refused. */
#define STANZA_BAD(stmt)                                                                           \
    do {                                                                                           \
        uint32_t n_ = stanza_frame();                                                              \
        stmt;                                                                                      \
        if (decode_stanza(frame, n_, &d) != -EBADMSG)                                              \
            TEST_FAIL("accepted with %s", #stmt);                                                  \
    } while (0)

static void test_stanza(void)
{
    struct decode_stanza d;
    uint32_t n = stanza_frame();
    CHECK_INT(decode_stanza(frame, n, &d), ==, 0);
    CHECK_SPAN(d.from, d.h.from_len, "a@x/r");
    CHECK_SPAN(d.to, d.h.to_len, "b@x");
    CHECK_SPAN(d.raw, d.h.stanza_len, "<message/>");
    /* The header is a copy: rewriting the frame afterwards changes nothing checked. */
    SH->stanza_len = 100000;
    CHECK_INT(d.h.stanza_len, ==, 10);

    CHECK_INT(decode_stanza(frame, sizeof(struct proto_stanza) - 1, &d), ==, -EBADMSG);
    STANZA_BAD(n_--);
    STANZA_BAD(SH->from_bare_len = 0);
    STANZA_BAD(SH->from_bare_len = 6);
    STANZA_BAD(SH->to_bare_len = 4);
    STANZA_BAD(SH->to_domain_off = 3);
    STANZA_BAD(SH->to_domain_len = 2);
    STANZA_BAD(SH->head_len = 11);
    STANZA_BAD(SH->kind = PROTO_IQ + 1);
    STANZA_BAD(SH->stanza_len = 0);
    STANZA_BAD(SH->from_len = 0xffff);
    STANZA_BAD(SH->stanza_len = 0xffffffffu); /* no overflow of the sum */
}

static uint32_t session_frame(const char *jid, uint16_t bare, const char *presence)
{
    struct proto_session h = {.jid_len = (uint16_t)strlen(jid), .bare_len = bare};
    h.presence_len = (uint32_t)strlen(presence);
    unsigned char *p = frame;
    memcpy(p, &h, sizeof h);
    memcpy(p += sizeof h, jid, h.jid_len);
    memcpy(p += h.jid_len, presence, h.presence_len);
    return (uint32_t)(p + h.presence_len - frame);
}

static void test_session(void)
{
    struct decode_session d;
    uint32_t n = session_frame("a@x/r", 3, "<presence/>");
    CHECK_INT(decode_session(frame, n, &d), ==, 0);
    CHECK_SPAN(d.jid, d.h.jid_len, "a@x/r");
    CHECK_SPAN(d.presence, d.h.presence_len, "<presence/>");
    CHECK(d.directed == d.presence + 11);
    CHECK_INT(decode_session(frame, n - 1, &d), ==, -EBADMSG);
    n = session_frame("a@x/r", 5, ""); /* no resource */
    CHECK_INT(decode_session(frame, n, &d), ==, -EBADMSG);
    n = session_frame("a@x/r", 2, ""); /* the bare part does not end at '/' */
    CHECK_INT(decode_session(frame, n, &d), ==, -EBADMSG);
    n = session_frame("a@x/r", 0, "");
    CHECK_INT(decode_session(frame, n, &d), ==, -EBADMSG);
    n = session_frame("a@x/r", 3, "");
    ((struct proto_session *)frame)->directed_len = 1;
    CHECK_INT(decode_session(frame, n, &d), ==, -EBADMSG);
    /* A resumable session's token follows: counted in, located. */
    n = session_frame("a@x/r", 3, "<presence/>");
    CHECK_INT(decode_session(frame, n, &d), ==, 0);
    CHECK(d.token == NULL);
    ((struct proto_session *)frame)->flags = PROTO_SESSION_REREGISTER | PROTO_SESSION_SM;
    CHECK_INT(decode_session(frame, n, &d), ==, -EBADMSG);
    memset(frame + n, 0x7e, PROTO_SM_TOKEN_LEN);
    CHECK_INT(decode_session(frame, n + PROTO_SM_TOKEN_LEN, &d), ==, 0);
    CHECK(d.token == frame + n && d.token[0] == 0x7e);
    CHECK_INT(decode_session_len(&d.h), ==, n + PROTO_SM_TOKEN_LEN);
}

static void test_directed_list(void)
{
    static const char list[] = "\x03\x00" "a@x" "\x05\x00" "b@y/r" "\x09\x00" "short";
    const char *p = list, *end = list + sizeof list - 1, *jid;
    uint16_t len;
    CHECK(decode_directed_next(&p, end, &jid, &len));
    CHECK_SPAN(jid, len, "a@x");
    CHECK(decode_directed_next(&p, end, &jid, &len));
    CHECK_SPAN(jid, len, "b@y/r");
    CHECK(!decode_directed_next(&p, end, &jid, &len)); /* 9 bytes announced, 5 there */
    p = list;
    CHECK(!decode_directed_next(&p, list + 1, &jid, &len));
}

static uint32_t deliver_frame(uint32_t to_off, uint32_t to_len)
{
    struct proto_deliver h = {.nrcpt = 2, .stanza_len = 10, .to_at = 8, .attr_len = 9};
    struct proto_rcpt r[2] = {{.conn = 1}, {.conn = 2, .to_off = to_off, .to_len = to_len}};
    unsigned char *p = frame;
    memcpy(p, &h, sizeof h);
    memcpy(p += sizeof h, r, sizeof r);
    memcpy(p += sizeof r, "<message/>", 10);
    memcpy(p += 10, " to='b@x'", 9);
    return (uint32_t)(p + 9 - frame);
}

static void test_deliver(void)
{
    struct decode_deliver d;
    struct proto_rcpt r;
    uint32_t n = deliver_frame(0, 9);
    CHECK_INT(decode_deliver(frame, n, &d), ==, 0);
    CHECK_INT(decode_rcpt(&d, 0, &r), ==, 0);
    CHECK_INT(r.conn, ==, 1);
    CHECK_INT(decode_rcpt(&d, 1, &r), ==, 0);
    CHECK_SPAN(d.attrs + r.to_off, r.to_len, " to='b@x'");
    CHECK_SPAN(d.stanza, d.h.stanza_len, "<message/>");
    CHECK_INT(decode_rcpt(&d, 2, &r), ==, -EBADMSG);
    CHECK_INT(decode_deliver(frame, n - 1, &d), ==, -EBADMSG);
    n = deliver_frame(1, 9); /* past the attribute table */
    CHECK_INT(decode_deliver(frame, n, &d), ==, 0);
    CHECK_INT(decode_rcpt(&d, 1, &r), ==, -EBADMSG);
    n = deliver_frame(0xffffffffu, 2); /* no overflow */
    CHECK_INT(decode_deliver(frame, n, &d), ==, 0);
    CHECK_INT(decode_rcpt(&d, 1, &r), ==, -EBADMSG);
    n = deliver_frame(0, 9);
    ((struct proto_deliver *)frame)->to_at = 11;
    CHECK_INT(decode_deliver(frame, n, &d), ==, -EBADMSG);
    ((struct proto_deliver *)frame)->to_at = 8;
    ((struct proto_deliver *)frame)->nrcpt = 0x10000000u;
    CHECK_INT(decode_deliver(frame, n, &d), ==, -EBADMSG);
}

static void test_small_frames(void)
{
    struct decode_bind_result b;
    struct decode_session_state st;
    struct proto_close c;
    struct proto_bind_result bh = {.conn = 7, .result = 0, .jid_len = 5};
    memcpy(frame, &bh, sizeof bh);
    memcpy(frame + sizeof bh, "a@x/r", 5);
    CHECK_INT(decode_bind_result(frame, sizeof bh + 5, &b), ==, 0);
    CHECK_SPAN(b.jid, b.h.jid_len, "a@x/r");
    CHECK_INT(decode_bind_result(frame, sizeof bh + 4, &b), ==, -EBADMSG);

    struct proto_session_state sh = {.conn = 7, .directed_len = 5};
    memcpy(frame, &sh, sizeof sh);
    CHECK_INT(decode_session_state(frame, sizeof sh + 5, &st), ==, 0);
    CHECK_INT(decode_session_state(frame, sizeof sh + 4, &st), ==, -EBADMSG);

    struct proto_close ch = {.conn = 7, .condition = PROTO_SE_RESET};
    memcpy(frame, &ch, sizeof ch);
    CHECK_INT(decode_close(frame, sizeof ch, &c), ==, 0);
    CHECK_INT(decode_close(frame, sizeof ch - 1, &c), ==, -EBADMSG);
    ((struct proto_close *)frame)->condition = PROTO_SE_RESET + 1;
    CHECK_INT(decode_close(frame, sizeof ch, &c), ==, -EBADMSG);
}

int main(void)
{
    RUN(test_stanza);
    RUN(test_session);
    RUN(test_directed_list);
    RUN(test_deliver);
    RUN(test_small_frames);
    return test_done("decode");
}
