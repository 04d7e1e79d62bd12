/*
 * libFuzzer driver of Server Dialback (s2s/dialback.c, dialback_elem.c) and XEP-0288's
 * request (s2s/bidi.c): whatever a peer sends on one stream, read as the s2s stream reads
 * it (a jabber:server stream whose header declares xmlns:db, each first-level element
 * built into a tree) and handed to one machine.
 *
 * Input: one mode byte, then the peer's bytes after its stream header.
 *   bit 0    the stream is inbound (else outbound)
 *   bit 1    bidi was negotiated
 *   bit 2    the stream has no stream ID
 *   bits 3-4 how a VERIFY is settled: at once valid, invalid, error, or left pending
 *   bit 5    the clock advances 20 s before each element (timeouts fire)
 *   bit 6    before the input, we start dialback for (capulet.example, montague.example)
 *            and send a <db:verify/> about (x.example, capulet.example, "id-x")
 *   bit 7    the stream closes at the end (dialback_drain) rather than timing out
 * The seeds use the names above, so that they reach answers that match our requests.
 * Checks, besides ASan/UBSan/LSan: every element the machine writes parses back as a
 * dialback element; write(parse(x)) parses to the same element; the bounds hold; an
 * event's pair is consistent with what the stream may carry afterwards; nothing is
 * accepted after a stream error.
 */
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "s2s/bidi.h"
#include "s2s/dialback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER                                                                                     \
    "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "                      \
    "xmlns:stream='http://etherx.jabber.org/streams' from='montague.example' "                     \
    "to='capulet.example' version='1.0'>"
#define ID "D60000229F"

static const char *const domains[] = {"capulet.example", "rooms.capulet.example"};
static struct dialback_config cfg = {
    .domains = domains, .ndomains = 2, .timeout = 60, .max_pending = 3};
static const struct authz_limits lim = {.max_pairs = 6, .max_pending = 3};
static char scratch[16384], scratch2[16384];
static struct arena arena;

#define S(s) (s), strlen(s)

/* Every element in b[0..n) (our output) must read back as a dialback element. */
static void check_output(struct buf *out)
{
    static char in[1 << 17];
    struct xml_limits lim_x = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    struct dialback_elem e;
    size_t hl = strlen(HEADER), n = buf_used(out);
    if (!n)
        return;
    const char *b = buf_data(out);
    if (hl + n > sizeof in)
        abort();
    memcpy(in, HEADER, hl);
    memcpy(in + hl, b, n);
    xml_init(&p, &lim_x, XML_CONTENT_SERVER, scratch2, sizeof scratch2);
    if (xml_next(&p, in, hl + n, &ev) != XML_EV_STREAM_OPEN)
        abort();
    for (;;) {
        enum xml_ev_kind k = xml_next(&p, in, hl + n, &ev);
        if (k == XML_EV_NONE)
            break;
        if (k != XML_EV_STANZA)
            abort();
        struct xml_node *t =
            xml_tree_parse(&p, ev.raw.p, ev.raw.len, &arena, scratch2, sizeof scratch2);
        if (!t || dialback_parse(t, &arena, &e) != DIALBACK_OK)
            abort();
    }
    if (xml_release(&p) != hl + n) /* a partial element */
        abort();
    xml_free(&p);
    buf_consume(out, n);
}

/* write(parse(n)) must parse to the same element. */
static void check_roundtrip(const struct xml_node *n)
{
    struct dialback_elem a, b;
    struct buf w = {0};
    if (dialback_parse(n, &arena, &a) != DIALBACK_OK)
        return;
    if (dialback_write(&w, &a) < 0)
        abort();
    static char in[1 << 17];
    size_t hl = strlen(HEADER);
    if (hl + buf_used(&w) > sizeof in)
        abort();
    memcpy(in, HEADER, hl);
    memcpy(in + hl, buf_data(&w), buf_used(&w));
    struct xml_limits lim_x = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    xml_init(&p, &lim_x, XML_CONTENT_SERVER, scratch2, sizeof scratch2);
    size_t len = hl + buf_used(&w);
    if (xml_next(&p, in, len, &ev) != XML_EV_STREAM_OPEN ||
        xml_next(&p, in, len, &ev) != XML_EV_STANZA)
        abort();
    struct xml_node *t =
        xml_tree_parse(&p, ev.raw.p, ev.raw.len, &arena, scratch2, sizeof scratch2);
    if (!t || dialback_parse(t, &arena, &b) != DIALBACK_OK)
        abort();
    if (a.kind != b.kind || a.type != b.type || a.cond != b.cond || strcmp(a.from, b.from) ||
        strcmp(a.to, b.to) || (a.id && strcmp(a.id, b.id)) || (!a.id) != (!b.id) ||
        (a.key && (a.key_len != b.key_len || memcmp(a.key, b.key, a.key_len))))
        abort();
    xml_free(&p);
    buf_free(&w);
}

static void check_state(const struct dialback *d, const struct authz *a)
{
    if (a->n > lim.max_pairs || a->npending > lim.max_pending || d->nverify > cfg.max_pending)
        abort();
    if (!a->bidi)
        for (unsigned i = 0; i < a->n; i++)
            if ((authz_at(a, i)->dir == AUTHZ_IN) != a->inbound)
                abort();
}

/* Acts on an event as the s2s stream would; false once the stream must close. */
static bool handle(struct dialback *d, struct authz *a, struct dialback_event *ev, int settle,
                   struct buf *out)
{
    for (int round = 0; round < 4; round++) {
        switch (ev->kind) {
        case DIALBACK_EV_NONE:
        case DIALBACK_EV_ANSWERED:
        case DIALBACK_EV_VERIFIED:
        case DIALBACK_EV_REFUSED_IN:
            return true;
        case DIALBACK_EV_REFUSED_OUT:
            if (ev->bounce == DIALBACK_COND_NONE)
                abort();
            return true;
        case DIALBACK_EV_ALLOWED_IN:
            if (!authz_may_receive(a, S(ev->sender), S(ev->target)))
                abort();
            return true;
        case DIALBACK_EV_ALLOWED_OUT:
            if (!authz_may_send(a, S(ev->sender), S(ev->target)))
                abort();
            return true;
        case DIALBACK_EV_STREAM_ERROR:
            if (!ev->stream_error || !*ev->stream_error)
                abort();
            return false;
        case DIALBACK_EV_VERIFY:
            if (!dialback_local(&cfg, S(ev->target)) || dialback_local(&cfg, S(ev->sender)) ||
                strcmp(ev->id, d->id) != 0 || !ev->key_len)
                abort();
            if (settle == 3)
                return true;
            dialback_verified(d, ev->sender, ev->target,
                              settle == 0   ? DIALBACK_VALID
                              : settle == 1 ? DIALBACK_INVALID
                                            : DIALBACK_ERROR,
                              DIALBACK_REMOTE_CONNECTION_FAILED, out, ev);
            continue;
        }
        abort();
    }
    abort(); /* one settlement never leads to another VERIFY */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    static char in[1 << 16];
    struct xml_limits xl = {.max_stanza = 8192, .max_depth = 16, .max_attrs = 16, .max_name = 64};
    struct xml_parser p;
    struct xml_event xev;
    struct authz a;
    struct dialback d;
    struct dialback_event ev;
    struct buf out = {0};
    uint32_t now = 100;
    bool open = true;

    if (!ready) {
        dialback_config_secret(&cfg, "s3cr3tf0rd14lb4ck", 17);
        arena_init(&arena, 4096);
        ready = true;
    }
    if (size < 1 || size > sizeof in - 512)
        return 0;
    uint8_t mode = data[0];
    int settle = (mode >> 3) & 3;
    size_t hl = strlen(HEADER);
    memcpy(in, HEADER, hl);
    memcpy(in + hl, data + 1, size - 1);
    size_t len = hl + size - 1;

    authz_init(&a, &lim, mode & 1);
    if (mode & 2)
        authz_set_bidi(&a);
    if (dialback_init(&d, &cfg, &a, ID, (mode & 4) ? 0 : strlen(ID)) < 0)
        abort();
    if (mode & 64) {
        dialback_start(&d, "capulet.example", "montague.example", now, &out);
        dialback_verify_send(&d, "x.example", "capulet.example", "id-x", "k", 1, now, &out);
        check_output(&out);
    }

    xml_init(&p, &xl, XML_CONTENT_SERVER, scratch, sizeof scratch);
    if (xml_next(&p, in, len, &xev) != XML_EV_STREAM_OPEN)
        abort();
    while (open) {
        enum xml_ev_kind k = xml_next(&p, in, len, &xev);
        if (k != XML_EV_STANZA)
            break;
        struct xml_node *n =
            xml_tree_parse(&p, xev.raw.p, xev.raw.len, &arena, scratch, sizeof scratch);
        if (!n)
            break;
        if (mode & 32)
            now += 20;
        while (open && dialback_expire(&d, now, &out, &ev) != DIALBACK_EV_NONE)
            open = handle(&d, &a, &ev, 3, &out);
        if (open && strcmp(n->ns.p, DIALBACK_NS) == 0) {
            check_roundtrip(n);
            dialback_recv(&d, n, &arena, now, &out, &ev);
            open = handle(&d, &a, &ev, settle, &out);
        } else if (open && strcmp(n->ns.p, BIDI_NS) == 0) {
            open = bidi_recv(&a, n) == NULL;
        }
        check_output(&out);
        check_state(&d, &a);
        arena_reset(&arena);
    }
    if (mode & 128) {
        while (dialback_drain(&d, &ev) != DIALBACK_EV_NONE)
            if (ev.kind == DIALBACK_EV_STREAM_ERROR)
                abort(); /* nothing to allocate or send on a closed stream but the event */
        if (authz_pending(&a) || d.nverify)
            abort();
    } else {
        while (dialback_expire(&d, now + 3600, &out, &ev) != DIALBACK_EV_NONE)
            handle(&d, &a, &ev, 3, &out);
        check_output(&out);
        if (dialback_deadline(&d) != 0)
            abort();
    }
    xml_free(&p);
    dialback_free(&d);
    authz_free(&a);
    buf_free(&out);
    arena_reset(&arena);
    return 0;
}
