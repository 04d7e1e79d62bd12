/*
 * xmlbench: throughput of starling's XML stream parser against expat on the same input,
 * in the same run. Both parse one client stream of a realistic stanza mix, fed in
 * 16 KiB chunks the way a socket delivers it; rounds alternate between the two parsers so
 * machine noise hits both, and the best round of each is reported, with the ratio.
 *
 * expat runs with namespace processing on (XMPP needs it) and element handlers that track
 * depth to count stanzas: the least work that yields what starling's parser reports.
 *
 * usage: xmlbench [-m MiB] [-r rounds]
 */
#include "common/xmpp/xml.h"

#include <expat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 16384

static const char header[] =
    "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xml:lang='en' "
    "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

static const char chat[] =
    "<message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' "
    "type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/></message>";

static const char presence[] =
    "<presence from='romeo@example.net/orchard' to='juliet@example.com' id='p1'>"
    "<show>away</show><status>Wherefore art thou?</status><priority>5</priority>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://gajim.org' "
    "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>";

struct mix {
    char *buf;
    size_t len;
    size_t stanzas;
};

static void append(struct mix *m, size_t *cap, const char *s, size_t n)
{
    while (m->len + n > *cap) {
        *cap *= 2;
        m->buf = realloc(m->buf, *cap);
        if (!m->buf) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(m->buf + m->len, s, n);
    m->len += n;
}

/* A roster result with 25 items and a 10 KB message, built once. */
static char roster[8192], big[11000];

static void build_fixtures(void)
{
    size_t n = (size_t)snprintf(roster, sizeof roster,
                                "<iq to='juliet@example.com/balcony' type='result' id='r1'>"
                                "<query xmlns='jabber:iq:roster' ver='ver11'>");
    for (int i = 0; i < 25; i++)
        n += (size_t)snprintf(roster + n, sizeof roster - n,
                              "<item jid='contact%d@example.net' name='Contact &amp; %d' "
                              "subscription='both'><group>Friends</group></item>",
                              i, i);
    snprintf(roster + n, sizeof roster - n, "</query></iq>");

    n = (size_t)snprintf(big, sizeof big,
                         "<message from='a@example.com/x' to='b@example.net' type='chat' "
                         "id='big1'><body>");
    while (n < 10200)
        n += (size_t)snprintf(big + n, sizeof big - n,
                              "Lorem ipsum dolor sit amet, consectetur &lt;adipiscing&gt; "
                              "elit, sed do eiusmod tempor incididunt ut labore.\n");
    snprintf(big + n, sizeof big - n, "</body></message>");
}

/* Per 100 stanzas: 55 chat, 30 presence, 10 roster results, 5 ten-kilobyte messages;
 * or, when chat_only, chat messages alone (the hot path: small stanzas). */
static struct mix make_mix(size_t target, bool chat_only)
{
    struct mix m = {0};
    size_t cap = 1 << 20;
    m.buf = malloc(cap);
    append(&m, &cap, header, strlen(header));
    while (m.len < target) {
        for (int i = 0; i < 100; i++) {
            const char *s = chat_only ? chat
                            : i < 55  ? chat
                            : i < 85  ? presence
                            : i < 95  ? roster
                                      : big;
            append(&m, &cap, s, strlen(s));
            m.stanzas++;
        }
    }
    return m;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- starling ---------------------------------------------------------------------------- */

static size_t run_starling(const struct mix *m)
{
    static char scratch[65536];
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    char *buf = malloc(lim.max_stanza + CHUNK);
    size_t have = 0, off = 0, stanzas = 0, sum = 0;

    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    while (off < m->len) {
        size_t n = m->len - off < CHUNK ? m->len - off : CHUNK;
        memcpy(buf + have, m->buf + off, n); /* the socket's copy into the stream buffer */
        have += n;
        off += n;
        enum xml_ev_kind k;
        while ((k = xml_next(&p, buf, have, &ev)) != XML_EV_NONE) {
            if (k == XML_EV_ERROR) {
                fprintf(stderr, "starling: %s\n", xml_err_condition(ev.err));
                exit(1);
            }
            if (k == XML_EV_STANZA) {
                stanzas++;
                sum += ev.attr[XML_ATTR_TO].len; /* use what was decoded */
            }
        }
        size_t drop = xml_release(&p);
        memmove(buf, buf + drop, have - drop);
        have -= drop;
    }
    xml_free(&p);
    free(buf);
    return stanzas + (sum == 0);
}

/* ---- expat ------------------------------------------------------------------------------- */

struct ex_state {
    int depth;
    size_t stanzas;
};

static void XMLCALL ex_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    (void)name;
    (void)atts;
    ((struct ex_state *)ud)->depth++;
}

static void XMLCALL ex_end(void *ud, const XML_Char *name)
{
    struct ex_state *s = ud;
    (void)name;
    if (--s->depth == 1)
        s->stanzas++;
}

static size_t run_expat(const struct mix *m)
{
    struct ex_state s = {0, 0};
    XML_Parser xp = XML_ParserCreateNS(NULL, ' ');
    XML_SetUserData(xp, &s);
    XML_SetElementHandler(xp, ex_start, ex_end);
    for (size_t off = 0; off < m->len; off += CHUNK) {
        size_t n = m->len - off < CHUNK ? m->len - off : CHUNK;
        if (XML_Parse(xp, m->buf + off, (int)n, 0) != XML_STATUS_OK) {
            fprintf(stderr, "expat: %s\n", XML_ErrorString(XML_GetErrorCode(xp)));
            exit(1);
        }
    }
    XML_ParserFree(xp);
    return s.stanzas;
}

int main(int argc, char **argv)
{
    size_t mib = 64;
    int rounds = 7, opt;
    while ((opt = getopt(argc, argv, "m:r:")) != -1) {
        if (opt == 'm')
            mib = (size_t)atol(optarg);
        else if (opt == 'r')
            rounds = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-m MiB] [-r rounds]\n", argv[0]);
            return 2;
        }
    }
    build_fixtures();
    printf("%d KiB chunks, best of %d rounds, starling and expat alternating\n", CHUNK / 1024,
           rounds);
    printf("%-44s %-9s %8s %12s %10s\n", "input", "parser", "MB/s", "stanzas/s", "ns/stanza");
    for (int chat_only = 0; chat_only <= 1; chat_only++) {
        struct mix m = make_mix(mib << 20, chat_only);
        double best_s = 1e9, best_e = 1e9;
        size_t n_s = 0, n_e = 0;
        for (int r = 0; r < rounds; r++) {
            double t0 = now();
            n_s = run_starling(&m);
            double t1 = now();
            n_e = run_expat(&m);
            double t2 = now();
            if (t1 - t0 < best_s)
                best_s = t1 - t0;
            if (t2 - t1 < best_e)
                best_e = t2 - t1;
        }
        if (n_s != m.stanzas || n_e != m.stanzas) {
            fprintf(stderr, "stanza counts differ: built %zu, starling %zu, expat %zu\n", m.stanzas,
                    n_s, n_e);
            return 1;
        }
        const char *name = chat_only ? "chat messages only (296 B each)"
                                     : "mix: 55% chat, 30% presence+caps, 10% roster, 5% 10 KB";
        double mb = (double)m.len / 1e6;
        printf("%-44.44s %-9s %8.0f %12.0f %10.1f\n", name, "starling", mb / best_s,
               (double)m.stanzas / best_s, best_s * 1e9 / (double)m.stanzas);
        printf("%-44s %-9s %8.0f %12.0f %10.1f\n", "", "expat", mb / best_e,
               (double)m.stanzas / best_e, best_e * 1e9 / (double)m.stanzas);
        printf("%-44s ratio starling/expat: %.2fx\n", "", best_e / best_s);
        free(m.buf);
    }
    return 0;
}
