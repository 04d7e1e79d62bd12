/*
 * sm: the client's half of XEP-0198 stream management, for starling-bench's sm scenario:
 * the counters both ends keep and the elements that carry them. No I/O: xmppc keeps one
 * struct sm per stream, feeds it what it sends and receives, and writes what it returns.
 *
 * Counting (XEP-0198 §4): once <enabled/> has come back, every stanza (message, presence,
 * iq) each side sends counts one; h is the number handled, modulo 2^32. The server's <r/>
 * is answered with <a h='in'/>; the client's own <r/> goes out every `every` stanzas it
 * sent, and the server's <a h/> must acknowledge no more than were sent nor fewer than it
 * acknowledged before.
 *
 * The stream is enabled with resume='true', as phone clients (Conversations, Monal) do, so
 * the server keeps what resumption needs; the bench never resumes and ends every stream
 * with </stream:stream>, which ends the session for good (§3).
 */
#ifndef STARLING_BENCH_SM_H
#define STARLING_BENCH_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SM_NS "urn:xmpp:sm:3"

/* What the client sends to turn it on. */
#define SM_ENABLE "<enable xmlns='" SM_NS "' resume='true'/>"
/* An ack request. */
#define SM_REQUEST "<r xmlns='" SM_NS "'/>"

struct sm {
    bool on;        /* <enabled/> came back: stanzas count from here */
    uint32_t in;    /* stanzas received since (the h we report) */
    uint32_t out;   /* stanzas sent since */
    uint32_t acked; /* the server's last h */
    uint32_t unreq; /* stanzas sent since our last <r/> */
};

/* The SM elements a server sends. */
enum sm_elem {
    SM_EL_OTHER,   /* not one the client expects (resumed, an unknown name) */
    SM_EL_ENABLED, /* <enabled/> */
    SM_EL_FAILED,  /* <failed/> */
    SM_EL_R,       /* <r/>: the server asks for our h */
    SM_EL_A,       /* <a h=''/>: the server's h */
};

/* Which element the local name n[0..len) is. */
enum sm_elem sm_elem_of(const char *n, size_t len);

/* Writes <a xmlns='urn:xmpp:sm:3' h='IN'/> into out (cap >= SM_ACK_MAX). Its length. */
#define SM_ACK_MAX 64
int sm_ack(const struct sm *s, char *out, size_t cap);

/* The server's <a/>: the text of its h attribute. 0, or -EPROTO when h is no number or
 * acknowledges stanzas never sent or fewer than before (its count went back). */
int sm_on_ack(struct sm *s, const char *h, size_t len);

/* n stanzas went out. True when an <r/> is now due (every > 0 and at least `every`
 * stanzas since the last one); the caller sends SM_REQUEST and calls sm_requested(). */
static inline bool sm_sent(struct sm *s, uint32_t n, unsigned every)
{
    if (!s->on)
        return false;
    s->out += n;
    s->unreq += n;
    return every && s->unreq >= every;
}

static inline void sm_requested(struct sm *s)
{
    s->unreq = 0;
}

#endif
