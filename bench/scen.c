#include "bench/scen.h"
#include "bench/bid.h"
#include "bench/load.h"
#include "bench/muc.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A login that failed is tried again this much later, not in a tight loop. */
#define RETRY_NS 100000000ull
/* Stanzas one schedule may send before the loop looks at completions again. */
#define BURST_MAX 10000

uint32_t scen_contact(uint32_t i, unsigned k, uint32_t n, unsigned contacts)
{
    (void)contacts;
    uint32_t d = k / 2 + 1;
    return k % 2 ? (i + n - d % n) % n : (i + d) % n;
}

unsigned scen_ncontacts(const struct opts *o, uint32_t i)
{
    if (!o->hub)
        return o->contacts;
    if (i == 0)
        return o->peer_host ? o->clients / 2 : o->clients - 1;
    return o->peer_host && !(i & 1) ? 0 : 1;
}

uint32_t scen_contact_of(const struct opts *o, uint32_t i, unsigned k)
{
    if (!o->hub)
        return scen_contact(i, k, o->clients, o->contacts);
    if (i)
        return 0;
    return o->peer_host ? 2 * k + 1 : k + 1;
}

unsigned scen_mix_kind(uint32_t p, const unsigned *w)
{
    unsigned sum = 0;
    for (unsigned m = 0; m < OPTS_MIX_COUNT; m++)
        sum += w[m];
    double r = fmod((double)p * 0.6180339887498949, 1.0) * sum, acc = 0;
    for (unsigned m = 0; m < OPTS_MIX_COUNT; m++) {
        acc += w[m];
        if (w[m] && r < acc)
            return m;
    }
    return OPTS_MIX_IDLE;
}

int scen_template(const char *to, const char *type, size_t body, char **out, uint16_t *id_off)
{
    static const char fill[] = "The quick brown fox jumps over the lazy dog. ";
    struct buf b = {0};
    char id[BID_LEN];
    memset(id, '0', sizeof id);
    int err = buf_puts(&b, "<message");
    err = err ? err : xmlw_attr(&b, "to", to, strlen(to));
    err = err ? err : buf_puts(&b, " type='");
    err = err ? err : buf_puts(&b, type);
    err = err ? err : buf_puts(&b, "' id='");
    size_t off = buf_used(&b);
    err = err ? err : buf_append(&b, id, sizeof id);
    err = err ? err : buf_puts(&b, "'><body>");
    for (size_t i = 0; !err && i < body; i++)
        err = buf_append(&b, &fill[i % (sizeof fill - 1)], 1);
    err = err ? err : buf_puts(&b, "</body></message>");
    if (err || off > UINT16_MAX) {
        buf_free(&b);
        return -ENOMEM;
    }
    *out = b.p;
    *id_off = (uint16_t)off;
    return (int)buf_used(&b);
}

/* The behaviour of every user of pair p. */
static unsigned pair_kind(const struct opts *o, uint32_t p)
{
    switch (o->scenario) {
    case OPTS_CHAT:
    case OPTS_SM:
        return OPTS_MIX_CHAT;
    case OPTS_PRESENCE:
        return OPTS_MIX_PRESENCE;
    case OPTS_LOGIN:
        return OPTS_MIX_LOGIN;
    case OPTS_MIXED:
        return scen_mix_kind(p, o->mix);
    default:
        return OPTS_MIX_IDLE;
    }
}

/* Users of `kind` on workers before k, on worker k, and in all; a share of a total
 * (rate, count) is split in proportion, the parts adding up exactly. */
static void census(const struct opts *o, unsigned T, unsigned k, unsigned kind, uint64_t *before,
                   uint64_t *mine, uint64_t *total)
{
    *before = *mine = *total = 0;
    if (o->scenario == OPTS_MUC) {
        /* The senders are users 0 .. senders - 1, on the worker of their pair. */
        for (uint32_t h = 0; kind == OPTS_MIX_CHAT && h < o->senders; h++) {
            unsigned wk = h / 2 % T;
            *total += 1;
            *before += wk < k;
            *mine += wk == k;
        }
        return;
    }
    for (uint32_t p = 0; p < (o->clients + 1) / 2; p++) {
        if (pair_kind(o, p) != kind)
            continue;
        uint64_t users = 2 * p + 1 < o->clients ? 2 : 1;
        *total += users;
        if (p % T < k)
            *before += users;
        else if (p % T == k)
            *mine += users;
    }
}

static uint64_t share(uint64_t n, uint64_t before, uint64_t mine, uint64_t total)
{
    if (!n)
        return UINT64_MAX;
    if (!total)
        return 0;
    /* floor(n * (before + mine) / total) - floor(n * before / total), in 128 bits. */
    unsigned __int128 a = (unsigned __int128)n * (before + mine) / total;
    unsigned __int128 b = (unsigned __int128)n * before / total;
    return (uint64_t)(a - b);
}

static struct load_conn *partner(struct load_conn *c)
{
    struct load_conn *p = &c->w->conns[c->slot ^ 1];
    return p->home < c->w->run->o->clients ? p : NULL;
}

/* The connection of home h when it lives on this worker. */
static struct load_conn *conn_of_home(struct load_worker *w, uint32_t h)
{
    uint32_t p = h / 2, T = w->run->nworkers;
    if (h >= w->run->o->clients || p % T != w->idx)
        return NULL;
    return &w->conns[2 * (p / T) + h % 2];
}

/* user<n>@domain of the account with index a. */
static int jid_of(const struct opts *o, uint32_t a, char *out, size_t cap)
{
    const char *domain = opts_domain_of(o, a);
    int n = opts_expand(o->user, o->first + a, out, cap);
    if (n < 0 || (size_t)n + 2 + strlen(domain) > cap)
        return -ENOSPC;
    out[n] = '@';
    strcpy(out + n + 1, domain);
    return 0;
}

static unsigned contacts_of(const struct opts *o, uint32_t i)
{
    return o->scenario == OPTS_PRESENCE ? scen_ncontacts(o, i) : 1;
}

int scen_init(struct load_worker *w)
{
    const struct opts *o = w->run->o;
    struct scen_worker *sw = &w->sw;
    unsigned T = w->run->nworkers;
    uint64_t before, mine, total;

    sw->npairs = w->nconns / 2;
    sw->pairs = calloc(sw->npairs ? sw->npairs : 1, sizeof *sw->pairs);
    sw->msg.senders = calloc(w->nconns ? w->nconns : 1, sizeof *sw->msg.senders);
    sw->pres.senders = calloc(w->nconns ? w->nconns : 1, sizeof *sw->pres.senders);
    if (!sw->pairs || !sw->msg.senders || !sw->pres.senders)
        return -ENOMEM;
    for (uint32_t s = 0; s < w->nconns; s++) {
        struct load_conn *c = &w->conns[s];
        if (c->home >= o->clients)
            continue;
        c->sc.kind = (uint8_t)pair_kind(o, c->home / 2);
        if (o->scenario == OPTS_MUC) {
            if (c->home < o->senders) {
                int n = scen_template(o->room, "groupchat", o->body, &c->sc.tmpl, &c->sc.id_off);
                if (n < 0)
                    return n;
                c->sc.tmpl_len = (uint32_t)n;
                sw->msg.senders[sw->msg.nsenders++] = s;
            }
            continue;
        }
        struct load_conn *pc = partner(c);
        /* Across two servers, the first of a pair sends and the second receives. */
        if (c->sc.kind == OPTS_MIX_CHAT && pc && !opts_on_peer(o, c->account)) {
            char to[600];
            if (jid_of(o, pc->account, to, sizeof to) < 0)
                return -ENOSPC;
            int n = scen_template(to, "chat", o->body, &c->sc.tmpl, &c->sc.id_off);
            if (n < 0)
                return n;
            c->sc.tmpl_len = (uint32_t)n;
            sw->msg.senders[sw->msg.nsenders++] = s;
        }
        if (c->sc.kind == OPTS_MIX_PRESENCE && (!o->hub || c->home == 0))
            sw->pres.senders[sw->pres.nsenders++] = s;
    }
    census(o, T, w->idx, OPTS_MIX_CHAT, &before, &mine, &total);
    sw->msg.quota = share(o->count, before, mine, total);
    if (o->rate > 0 && mine)
        sw->msg.interval = 1e9 / (o->rate * (double)mine / (double)total);
    census(o, T, w->idx, OPTS_MIX_PRESENCE, &before, &mine, &total);
    sw->pres.quota =
        o->scenario == OPTS_PRESENCE ? share(o->count, before, mine, total) : UINT64_MAX;
    if (mine)
        sw->pres.interval = 1e9 / (o->presence_rate * (double)mine / (double)total);
    return 0;
}

void scen_free(struct load_worker *w)
{
    for (uint32_t s = 0; s < w->nconns; s++) {
        free(w->conns[s].sc.tmpl);
        w->conns[s].sc.tmpl = NULL;
    }
    free(w->sw.pairs);
    free(w->sw.msg.senders);
    free(w->sw.pres.senders);
    memset(&w->sw, 0, sizeof w->sw);
}

/* One chat message from c to its partner, stamped t. False when c's queue is full. */
static bool chat_send(struct load_conn *c, uint64_t t)
{
    struct scen_conn *sc = &c->sc;
    char *p = load_reserve(c, sc->tmpl_len);
    if (!p)
        return false;
    memcpy(p, sc->tmpl, sc->tmpl_len);
    struct bid b = {.kind = BID_MESSAGE, .idx = c->home, .seq = sc->msg_seq++, .t = t};
    bid_write(p + sc->id_off, &b);
    load_commit(c, sc->tmpl_len);
    xmppc_sent(&c->xc, 1);
    stats_add(&c->w->st, ST_MSG_SENT, 1);
    if (c->w->run->o->scenario == OPTS_MUC)
        stats_add(&c->w->st, ST_MUC_EXPECT,
                  atomic_load_explicit(&c->w->run->occupants, memory_order_relaxed));
    c->w->sw.pairs[c->slot / 2].inflight[c->slot & 1]++;
    return true;
}

/* A presence change from c to its contacts, stamped t. */
static bool presence_send(struct load_conn *c, uint64_t t)
{
    static const char head[] = "<presence id='";
    static const char *const tail[2] = {"'><show>away</show></presence>",
                                        "'><show>chat</show></presence>"};
    struct load_worker *w = c->w;
    const struct opts *o = w->run->o;
    struct scen_conn *sc = &c->sc;
    const char *tl = tail[sc->pres_seq & 1];
    size_t hl = sizeof head - 1, n = hl + BID_LEN + strlen(tl);
    char *p = load_reserve(c, n);
    if (!p)
        return false;
    struct bid b = {.kind = BID_PRESENCE, .idx = c->home, .seq = sc->pres_seq++, .t = t};
    memcpy(p, head, hl);
    bid_write(p + hl, &b);
    memcpy(p + hl + BID_LEN, tl, strlen(tl));
    load_commit(c, n);
    xmppc_sent(&c->xc, 1);
    /* Deliveries owed: every contact online now (any worker may own it). */
    uint64_t expect = 0;
    if (o->scenario == OPTS_PRESENCE) {
        for (unsigned k = 0, nk = scen_ncontacts(o, c->home); k < nk; k++) {
            uint32_t j = scen_contact_of(o, c->home, k);
            expect += atomic_load_explicit(&w->run->online[j], memory_order_relaxed);
        }
    } else {
        struct load_conn *pc = partner(c);
        expect = pc && pc->state == LC_ONLINE;
    }
    stats_add(&w->st, ST_PRES_SENT, 1);
    stats_add(&w->st, ST_PRES_EXPECT, expect);
    return true;
}

/* What an open-loop schedule owes by now, round robin over its online senders. */
static uint64_t run_sched(struct load_worker *w, struct scen_sched *s, uint64_t now,
                          bool (*send)(struct load_conn *, uint64_t))
{
    if (s->interval <= 0 || !s->nsenders)
        return UINT64_MAX;
    for (unsigned burst = 0; s->due <= (double)now && s->quota; burst++) {
        if (burst == BURST_MAX)
            return now;
        uint64_t t = (uint64_t)s->due;
        bool sent = false;
        for (uint32_t tries = 0; tries < s->nsenders; tries++) {
            struct load_conn *c = &w->conns[s->senders[s->rr]];
            s->rr = s->rr + 1 == s->nsenders ? 0 : s->rr + 1;
            if (c->state == LC_ONLINE) {
                sent = send(c, t);
                break;
            }
        }
        if (!sent)
            stats_add(&w->st, ST_MSG_SKIPPED, 1);
        s->due += s->interval;
        if (s->quota != UINT64_MAX)
            s->quota--;
    }
    return s->quota ? (uint64_t)s->due : UINT64_MAX;
}

uint64_t scen_tick(struct load_worker *w, uint64_t now)
{
    struct scen_worker *sw = &w->sw;
    if (!sw->sending)
        return UINT64_MAX;
    uint64_t a = run_sched(w, &sw->msg, now, chat_send);
    uint64_t b = run_sched(w, &sw->pres, now, presence_send);
    return a < b ? a : b;
}

/* Closed loop: a sender keeps the window full while the quota lasts. */
static void window_fill(struct load_conn *c, uint64_t now)
{
    struct scen_worker *sw = &c->w->sw;
    struct scen_pair *pr = &sw->pairs[c->slot / 2];
    unsigned side = c->slot & 1, win = c->w->run->o->window;
    if (!c->sc.tmpl)
        return; /* not a chat sender (a stamp naming it came from elsewhere) */
    while (sw->sending && sw->msg.quota && c->state == LC_ONLINE && pr->inflight[side] < win) {
        if (!chat_send(c, now)) {
            stats_add(&c->w->st, ST_MSG_SKIPPED, 1);
            break;
        }
        if (sw->msg.quota != UINT64_MAX)
            sw->msg.quota--;
    }
}

static bool closed_loop(const struct load_worker *w)
{
    return w->sw.msg.interval <= 0;
}

/* Subscription requests to each contact (RFC 6121 §3.1.1); the contacts' clients approve
 * them (xmppc: accept_subs), and they send theirs to us. */
static void subscribe_contacts(struct load_conn *c)
{
    const struct opts *o = c->w->run->o;
    unsigned n = contacts_of(o, c->home);
    for (unsigned k = 0; k < n; k++) {
        uint32_t j = o->scenario == OPTS_PRESENCE ? scen_contact_of(o, c->home, k) : c->home ^ 1;
        char jid[600];
        if (j >= o->clients || jid_of(o, j, jid, sizeof jid) < 0)
            continue;
        struct buf b = {0};
        buf_puts(&b, "<presence type='subscribe'");
        xmlw_attr(&b, "to", jid, strlen(jid));
        if (buf_puts(&b, "/>") == 0 && load_send(c, buf_data(&b), buf_used(&b)))
            stats_add(&c->w->st, ST_SUB_SENT, 1);
        buf_free(&b);
    }
}

/* The account name of c: its nick in the room. */
static void nick_of(const struct load_conn *c, char *out, size_t cap)
{
    const struct opts *o = c->w->run->o;
    if (opts_expand(o->user, o->first + c->account, out, cap) < 0)
        *out = '\0';
}

static void muc_join_send(struct load_conn *c)
{
    char nick[512];
    struct buf b = {0};
    nick_of(c, nick, sizeof nick);
    if (muc_join(&b, c->w->run->o->room, nick) == 0)
        xmppc_send(&c->xc, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void scen_phase(struct load_worker *w, unsigned p, uint64_t now)
{
    const struct opts *o = w->run->o;
    struct scen_worker *sw = &w->sw;
    /* A phase the run has left already (the control thread skipped it: no room to join,
     * say) is passed through without doing anything. Pairs with load_set_phase(). */
    if (p < LOAD_STOP && atomic_load_explicit(&w->run->phase, memory_order_acquire) > p)
        return;
    for (uint32_t s = 0; s < w->nconns && (p == LOAD_SETUP || p == LOAD_VERIFY); s++) {
        struct load_conn *c = &w->conns[s];
        if (c->state == LC_ONLINE && o->scenario == OPTS_MUC && (p == LOAD_SETUP) == (c->home == 0))
            muc_join_send(c); /* the creator first; the others once the room is open */
        if (c->state != LC_ONLINE || c->sc.kind != OPTS_MIX_PRESENCE)
            continue;
        if (p == LOAD_SETUP && (o->roster_setup > 0 || !c->sc.roster_ok))
            subscribe_contacts(c);
        if (p == LOAD_VERIFY)
            xmppc_roster_get(&c->xc);
    }
    if (p == LOAD_GO) {
        sw->sending = true;
        /* Workers start their schedules a fraction of an interval apart, so T threads
         * do not send in lockstep. */
        sw->msg.due = (double)now + sw->msg.interval * w->idx / w->run->nworkers;
        sw->pres.due = (double)now + sw->pres.interval * w->idx / w->run->nworkers;
        for (uint32_t s = 0; s < w->nconns; s++) {
            struct load_conn *c = &w->conns[s];
            if (c->state != LC_ONLINE)
                continue;
            if (c->sc.kind == OPTS_MIX_LOGIN && o->scenario == OPTS_MIXED)
                c->sc.logout_at =
                    now + (uint64_t)(o->think * 1e9 * fmod(c->home * 0.6180339887498949, 1.0)) + 1;
            if (c->sc.tmpl && closed_loop(w))
                window_fill(c, now);
        }
    } else if (p >= LOAD_STOP) {
        sw->sending = false;
    }
}

void scen_housekeeping(struct load_worker *w, uint64_t now)
{
    if (!w->sw.sending || w->run->o->scenario != OPTS_MIXED)
        return;
    for (uint32_t s = 0; s < w->nconns; s++) {
        struct load_conn *c = &w->conns[s];
        if (c->state == LC_ONLINE && c->sc.logout_at && now >= c->sc.logout_at) {
            c->sc.logout_at = 0;
            load_logout(c);
        }
    }
}

void scen_online(struct load_conn *c, uint64_t now)
{
    struct load_worker *w = c->w;
    const struct opts *o = w->run->o;
    if (o->scenario == OPTS_LOGIN) {
        load_logout(c);
        return;
    }
    if (!w->sw.sending)
        return;
    if (c->sc.kind == OPTS_MIX_LOGIN)
        c->sc.logout_at = now + (uint64_t)(o->think * 1e9) + 1;
    if (c->sc.tmpl && closed_loop(w))
        window_fill(c, now);
}

void scen_down(struct load_conn *c, uint64_t now)
{
    struct load_worker *w = c->w;
    const struct opts *o = w->run->o;
    c->sc.logout_at = 0;
    if (c->sc.joined) {
        c->sc.joined = false;
        atomic_fetch_sub_explicit(&w->run->occupants, 1, memory_order_relaxed);
    }
    if (w->phase >= LOAD_STOP || c->sc.kind != OPTS_MIX_LOGIN)
        return;
    uint64_t when = c->failed ? now + RETRY_NS : now;
    if (o->scenario == OPTS_LOGIN) {
        /* The next account of this connection's own sequence home, home + clients, ...:
         * no two connections ever log into one account at once. */
        uint64_t next = (uint64_t)c->account + o->clients;
        load_connect_at(c, next < o->users ? (uint32_t)next : c->home, when);
    } else if (w->phase >= LOAD_GO) {
        load_connect_at(c, c->account, when);
    }
}

static bool is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

/* The muc scenario: a post of ours reached occupant c (the sender's own copy, reflected
 * by the room, included); when c sent it, the copy or its error closes c's window. */
static void muc_message(struct load_conn *c, const struct xml_event *x, uint64_t now)
{
    struct load_worker *w = c->w;
    struct xml_str id = x->attr[XML_ATTR_ID];
    bool error = is(x->attr[XML_ATTR_TYPE], "error");
    struct bid b;
    if (!id.p || !bid_parse(id.p, id.len, &b) || b.kind != BID_MESSAGE || b.t < w->run->t_start) {
        stats_add(&w->st, ST_OTHER, 1); /* history, or the subject */
        return;
    }
    if (!error) {
        hist_record(&w->h_msg, now > b.t ? now - b.t : 0);
        stats_add(&w->st, ST_MUC_RECV, 1);
    }
    if (b.idx != c->home)
        return;
    stats_add(&w->st, error ? ST_MSG_BOUNCED : ST_MSG_RECV, 1);
    struct scen_pair *pr = &w->sw.pairs[c->slot / 2];
    if (pr->inflight[c->slot & 1])
        pr->inflight[c->slot & 1]--;
    if (closed_loop(w))
        window_fill(c, now);
}

/* The muc scenario: a presence about our own occupant (anything else from the room, the
 * other occupants' presence, is just counted). */
static void muc_presence(struct load_conn *c, const struct xml_event *x)
{
    struct load_worker *w = c->w;
    const struct opts *o = w->run->o;
    char nick[512];
    nick_of(c, nick, sizeof nick);
    if (!muc_is_self(x->attr[XML_ATTR_FROM], o->room, nick)) {
        stats_add(&w->st, ST_OTHER, 1);
        return;
    }
    switch (muc_self_of(xmppc_tree(&c->xc, x), is(x->attr[XML_ATTR_TYPE], "error"))) {
    case MUC_SELF_REFUSED:
        stats_add(&w->st, ST_MUC_REFUSED, 1);
        return;
    case MUC_SELF_CREATED: {
        /* Locked until its owner accepts a configuration (§10.1.2): the defaults. */
        struct buf b = {0};
        if (muc_instant(&b, o->room, o->broadcast) == 0)
            xmppc_send(&c->xc, buf_data(&b), buf_used(&b));
        buf_free(&b);
        break;
    }
    case MUC_SELF_JOINED:
        if (c->home == 0 && !c->sc.joined)
            stats_add(&w->st, ST_MUC_READY, 1); /* the room was there already */
        break;
    default:
        return;
    }
    if (!c->sc.joined) {
        c->sc.joined = true;
        atomic_fetch_add_explicit(&w->run->occupants, 1, memory_order_relaxed);
        stats_add(&w->st, ST_MUC_JOINED, 1);
    }
}

static void on_message(struct load_conn *c, const struct xml_event *x, uint64_t now)
{
    struct load_worker *w = c->w;
    struct xml_str id = x->attr[XML_ATTR_ID];
    struct bid b;
    struct load_conn *s;
    /* A stamp from before this run (a server delivering stored messages of an earlier
     * one) or naming no sender of this thread is not ours. */
    if (!id.p || !bid_parse(id.p, id.len, &b) || b.kind != BID_MESSAGE || b.t < w->run->t_start ||
        !(s = conn_of_home(w, b.idx))) {
        stats_add(&w->st, ST_OTHER, 1);
        return;
    }
    struct scen_pair *pr = &w->sw.pairs[s->slot / 2];
    unsigned side = s->slot & 1;
    if (is(x->attr[XML_ATTR_TYPE], "error")) {
        /* Our own message came back: the server could not deliver it. */
        stats_add(&w->st, ST_MSG_BOUNCED, 1);
    } else {
        hist_record(&w->h_msg, now > b.t ? now - b.t : 0);
        stats_add(&w->st, ST_MSG_RECV, 1);
        if (b.seq < pr->rx_next[side])
            stats_add(&w->st, ST_MSG_LATE, 1);
        else
            pr->rx_next[side] = b.seq + 1;
    }
    if (pr->inflight[side])
        pr->inflight[side]--;
    if (closed_loop(w))
        window_fill(s, now);
}

static void on_presence(struct load_conn *c, const struct xml_event *x, uint64_t now)
{
    struct load_worker *w = c->w;
    struct xml_str id = x->attr[XML_ATTR_ID], type = x->attr[XML_ATTR_TYPE];
    struct bid b;
    if (id.p && bid_parse(id.p, id.len, &b) && b.kind == BID_PRESENCE && b.t >= w->run->t_start) {
        if (b.idx == c->home || type.p)
            return; /* our own change coming back to us (RFC 6121 §4.4.2) */
        hist_record(&w->h_pres, now > b.t ? now - b.t : 0);
        stats_add(&w->st, ST_PRES_RECV, 1);
    } else if (is(type, "subscribed")) {
        stats_add(&w->st, ST_SUB_ACKED, 1);
    } else {
        stats_add(&w->st, ST_OTHER, 1);
    }
}

void scen_event(struct load_conn *c, const struct xmppc_ev *ev, uint64_t now)
{
    struct load_worker *w = c->w;
    bool muc = w->run->o->scenario == OPTS_MUC;
    switch (ev->kind) {
    case XMPPC_EV_MESSAGE:
        if (muc)
            muc_message(c, ev->x, now);
        else
            on_message(c, ev->x, now);
        break;
    case XMPPC_EV_PRESENCE:
        if (muc && c->state == LC_ONLINE)
            muc_presence(c, ev->x);
        else
            on_presence(c, ev->x, now);
        break;
    case XMPPC_EV_IQ:
        if (muc && is(ev->x->attr[XML_ATTR_ID], MUC_ID_CREATE))
            stats_add(&w->st,
                      is(ev->x->attr[XML_ATTR_TYPE], "result") ? ST_MUC_READY : ST_MUC_REFUSED, 1);
        else
            stats_add(&w->st, ST_OTHER, 1);
        break;
    case XMPPC_EV_SM_REQ:
        stats_add(&w->st, ST_SM_REQ_RECV, 1);
        break;
    case XMPPC_EV_SM_ACK:
        stats_add(&w->st, ST_SM_ACK_RECV, 1);
        break;
    case XMPPC_EV_ROSTER:
        stats_add(&w->st, ST_ROSTERS, 1);
        stats_add(&w->st, ev->error ? ST_ROSTER_ERR : ST_ROSTER_BOTH, ev->error ? 1 : ev->both);
        if (c->sc.kind == OPTS_MIX_PRESENCE) {
            c->sc.roster_ok = !ev->error && ev->both >= contacts_of(w->run->o, c->home);
            /* At login (not yet online): does this user need its contacts set up? */
            if (c->state != LC_ONLINE && !c->sc.roster_ok)
                stats_add(&w->st, ST_NEED_SETUP, 1);
        }
        break;
    default:
        stats_add(&w->st, ST_OTHER, 1);
        break;
    }
}
