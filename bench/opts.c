#include "bench/opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const scenario_names[] = {
    [OPTS_LOGIN] = "login", [OPTS_IDLE] = "idle",
    [OPTS_CHAT] = "chat",   [OPTS_PRESENCE] = "presence",
    [OPTS_MIXED] = "mixed", [OPTS_MUC] = "muc",
    [OPTS_SM] = "sm",
};

static const char *const mix_names[OPTS_MIX_COUNT] = {
    [OPTS_MIX_CHAT] = "chat",
    [OPTS_MIX_PRESENCE] = "presence",
    [OPTS_MIX_IDLE] = "idle",
    [OPTS_MIX_LOGIN] = "login",
};

const char *opts_scenario_name(enum opts_scenario s)
{
    return (unsigned)s < sizeof scenario_names / sizeof scenario_names[0] ? scenario_names[s] : "?";
}

const char *opts_mix_name(enum opts_mix m)
{
    return (unsigned)m < OPTS_MIX_COUNT ? mix_names[m] : "?";
}

void opts_usage(FILE *f)
{
    fputs(
        "usage: starling-bench SCENARIO [options]\n"
        "\n"
        "A load generator for any XMPP server: many client connections from one process\n"
        "(io_uring), each doing TCP, the stream, optional STARTTLS, SASL, binding and\n"
        "initial presence, then what the scenario asks. Accounts must exist.\n"
        "\n"
        "scenarios:\n"
        "  login     connect, log in, log out, again: logins/s and login latency\n"
        "  idle      hold -c connections online for -d seconds (server memory per client)\n"
        "  chat      messages between pairs (user 2k+1 <-> 2k+2): open loop at -r msgs/s,\n"
        "            or closed loop with -w in flight per sender; latency and losses\n"
        "  presence  each user has -k contacts (rosters set up through subscriptions when\n"
        "            missing) and changes presence at --presence-rate in total: fan-out\n"
        "  mixed     pairs of users chat, change presence, idle or log in and out again,\n"
        "            in the proportions of --mix\n"
        "  muc       every client joins one room (XEP-0045; the first creates it, an\n"
        "            instant room); --senders of them post groupchat messages, open loop\n"
        "            (-r in total) or closed loop (-w in flight per sender, until the room\n"
        "            reflects it back); every occupant counts what reaches it\n"
        "  sm        chat, with XEP-0198 stream management enabled on every stream: the\n"
        "            server's <r/> answered, an <r/> every --ack-every stanzas sent\n"
        "\n"
        "server and accounts:\n"
        "  -H, --host HOST         server address (127.0.0.1)\n"
        "  -p, --port PORT         5222, or 5223 with --tls direct\n"
        "  -D, --domain DOMAIN     XMPP domain of the accounts (localhost)\n"
        "      --peer HOST:PORT    federation: the second user of each pair logs in there\n"
        "      --peer-domain D     ... in domain D; chat sends from the first to the second\n"
        "                          only (users 2k+1 -> 2k+2 across the two servers)\n"
        "  -u, --user PATTERN      account names; %d is the number (user%d)\n"
        "      --password PATTERN  password; may hold %d too (password)\n"
        "      --first N           number of the first account (1)\n"
        "      --resource NAME     resource to bind (bench)\n"
        "      --tls MODE          none, starttls or direct (none)\n"
        "      --mech MECH         SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN (SCRAM-SHA-256)\n"
        "      --source ADDRS      local addresses to connect from, round robin:\n"
        "                          127.0.0.2,127.0.0.3 or a range 127.0.0.1-8\n"
        "      --adduser CMD       create the accounts first: CMD runs through /bin/sh for\n"
        "                          each, %u user, %p password, %d number; errors tolerated\n"
        "                          (e.g. 'prosodyctl register %u localhost %p')\n"
        "\n"
        "load:\n"
        "  -c, --clients N         connections; login: connections at once (100)\n"
        "      --users N           login: accounts cycled through (= clients)\n"
        "  -T, --threads N         generator threads, one io_uring each (1)\n"
        "  -d, --duration S        seconds measured, after every client is online (10)\n"
        "  -n, --count N           stop after N messages (login: logins; presence: changes)\n"
        "  -r, --rate R            chat: open loop, R messages per second in total\n"
        "  -w, --window W          chat: closed loop, W messages in flight per sender (1)\n"
        "  -s, --size B            bytes of a message body (64)\n"
        "      --ramp R            connections started per second (no limit)\n"
        "      --pending N         logins in progress at once (200)\n"
        "      --timeout S         seconds a login may take (30); muc: also how long the\n"
        "                          room may fill without a join completing\n"
        "      --drain S           seconds to wait for stanzas in flight at the end (5)\n"
        "\n"
        "presence and mixed:\n"
        "  -k, --contacts K        presence: contacts per user, even (10)\n"
        "      --hub               presence: user 1 alone changes presence, to every other\n"
        "                          user (--peer: every user on the peer) as contacts\n"
        "      --presence-rate R   presence changes per second in total (clients / 10)\n"
        "      --roster-setup      always subscribe contacts to each other first\n"
        "      --no-roster-setup   never (rosters are provisioned)\n"
        "      --mix SPEC          mixed: pair weights, e.g. chat=50,presence=20,idle=20,login=10\n"
        "      --think S           mixed: seconds a churning user stays online (5)\n"
        "\n"
        "muc and sm:\n"
        "      --room JID          muc: the room (bench@conference.DOMAIN)\n"
        "      --senders N         muc: how many occupants post, the first N (10)\n"
        "      --broadcast ROLES   muc: the roles whose presence the new room broadcasts, set\n"
        "                          in its configuration (moderator: the owner's only, so the\n"
        "                          room fills in O(N) stanzas); 'all' keeps the server's\n"
        "                          default, every role (N*N/2 presences to fill it) (moderator)\n"
        "      --ack-every K       sm: request an ack every K stanzas sent, 0 never (1)\n"
        "\n"
        "output:\n"
        "  -o, --json FILE         results as JSON (for bench/report)\n"
        "  -l, --label TEXT        the server's name in results (host:port)\n"
        "      --server-pid PIDS   sample the server's CPU and memory: these processes and\n"
        "                          all their descendants (comma-separated)\n"
        "  -q, --quiet             no progress line on stderr\n"
        "  -h, --help\n"
        "\n"
        "Exit status: 0 stanzas flowed and nothing was lost or failed; 1 losses or errors;\n"
        "2 bad usage or set-up; 3 the server lacks what the scenario needs (rosters, MUC,\n"
        "stream management).\n",
        f);
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse_sources(struct opts *o, const char *spec, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", spec);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *dash = strrchr(t, '-');
        unsigned lo = 0, hi = 0;
        struct in_addr a4;
        struct in6_addr a6;
        if (dash && !strchr(t, ':')) {
            /* a.b.c.d-N: the last octet from d to N */
            *dash = '\0';
            char *end;
            hi = (unsigned)strtoul(dash + 1, &end, 10);
            if (*end || inet_pton(AF_INET, t, &a4) != 1)
                return bad(err, errlen, "--source: bad range '%s-%s'", t, dash + 1);
            lo = ntohl(a4.s_addr) & 0xFF;
            if (hi < lo || hi > 255)
                return bad(err, errlen, "--source: bad range end in '%s-%s'", t, dash + 1);
        }
        for (unsigned k = lo; k <= hi; k++) {
            if (o->nsources == OPTS_MAX_SOURCES)
                return bad(err, errlen, "--source: more than %d addresses", OPTS_MAX_SOURCES);
            struct sockaddr_storage *ss = &o->sources[o->nsources++];
            memset(ss, 0, sizeof *ss);
            if (inet_pton(AF_INET, t, &a4) == 1) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ss;
                sin->sin_family = AF_INET;
                sin->sin_addr = a4;
                if (dash)
                    sin->sin_addr.s_addr = htonl((ntohl(a4.s_addr) & ~0xFFu) | k);
            } else if (inet_pton(AF_INET6, t, &a6) == 1) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_addr = a6;
            } else {
                return bad(err, errlen, "--source: '%s' is not an IP address", t);
            }
        }
    }
    return 0;
}

static int parse_mix(struct opts *o, const char *spec, char *err, size_t errlen)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", spec);
    memset(o->mix, 0, sizeof o->mix);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        double w;
        if (!eq)
            return bad(err, errlen, "--mix: '%s' is not name=weight", t);
        *eq = '\0';
        int m = -1;
        for (int i = 0; i < OPTS_MIX_COUNT; i++)
            if (!strcmp(t, mix_names[i]))
                m = i;
        if (m < 0 || !num(eq + 1, 0, 1000000, &w))
            return bad(err, errlen, "--mix: bad entry '%s=%s'", t, eq + 1);
        o->mix[m] = (unsigned)w;
    }
    unsigned sum = 0;
    for (int i = 0; i < OPTS_MIX_COUNT; i++)
        sum += o->mix[i];
    return sum ? 0 : bad(err, errlen, "--mix: every weight is 0");
}

int opts_expand(const char *pattern, uint32_t n, char *out, size_t cap)
{
    size_t o = 0;
    bool done = false;
    for (const char *p = pattern; *p; p++) {
        char num_s[16];
        const char *ins = NULL;
        size_t il = 1;
        if (p[0] == '%' && p[1] == '%') {
            ins = "%";
            p++;
        } else if (p[0] == '%' && p[1] == 'd' && !done) {
            il = (size_t)snprintf(num_s, sizeof num_s, "%u", n);
            ins = num_s;
            done = true;
            p++;
        }
        if (o + il >= cap)
            return -ENOSPC;
        memcpy(out + o, ins ? ins : p, il);
        o += il;
    }
    out[o] = '\0';
    return (int)o;
}

static int resolve(const char *host, unsigned portn, struct sockaddr_storage *addr,
                   socklen_t *len, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%u", portn);
    int r = getaddrinfo(host, port, &hints, &res);
    if (r)
        return bad(err, errlen, "%s: %s", host, gai_strerror(r));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

enum {
    OPT_PASSWORD = 256,
    OPT_FIRST,
    OPT_RESOURCE,
    OPT_TLS,
    OPT_MECH,
    OPT_SOURCE,
    OPT_ADDUSER,
    OPT_USERS,
    OPT_RAMP,
    OPT_PENDING,
    OPT_TIMEOUT,
    OPT_DRAIN,
    OPT_PRATE,
    OPT_RSETUP,
    OPT_NO_RSETUP,
    OPT_MIX,
    OPT_THINK,
    OPT_PID,
    OPT_PEER,
    OPT_PEER_DOMAIN,
    OPT_HUB,
    OPT_ROOM,
    OPT_SENDERS,
    OPT_ACK_EVERY,
    OPT_BROADCAST,
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"domain", required_argument, NULL, 'D'},
    {"peer", required_argument, NULL, OPT_PEER},
    {"peer-domain", required_argument, NULL, OPT_PEER_DOMAIN},
    {"user", required_argument, NULL, 'u'},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"first", required_argument, NULL, OPT_FIRST},
    {"resource", required_argument, NULL, OPT_RESOURCE},
    {"tls", required_argument, NULL, OPT_TLS},
    {"mech", required_argument, NULL, OPT_MECH},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"adduser", required_argument, NULL, OPT_ADDUSER},
    {"clients", required_argument, NULL, 'c'},
    {"users", required_argument, NULL, OPT_USERS},
    {"threads", required_argument, NULL, 'T'},
    {"duration", required_argument, NULL, 'd'},
    {"count", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'r'},
    {"window", required_argument, NULL, 'w'},
    {"size", required_argument, NULL, 's'},
    {"ramp", required_argument, NULL, OPT_RAMP},
    {"pending", required_argument, NULL, OPT_PENDING},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"contacts", required_argument, NULL, 'k'},
    {"hub", no_argument, NULL, OPT_HUB},
    {"presence-rate", required_argument, NULL, OPT_PRATE},
    {"roster-setup", no_argument, NULL, OPT_RSETUP},
    {"no-roster-setup", no_argument, NULL, OPT_NO_RSETUP},
    {"mix", required_argument, NULL, OPT_MIX},
    {"think", required_argument, NULL, OPT_THINK},
    {"room", required_argument, NULL, OPT_ROOM},
    {"senders", required_argument, NULL, OPT_SENDERS},
    {"ack-every", required_argument, NULL, OPT_ACK_EVERY},
    {"broadcast", required_argument, NULL, OPT_BROADCAST},
    {"json", required_argument, NULL, 'o'},
    {"label", required_argument, NULL, 'l'},
    {"server-pid", required_argument, NULL, OPT_PID},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int opts_parse(struct opts *o, int argc, char **argv, char *err, size_t errlen)
{
    double v;
    bool window_set = false, port_set = false;
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->domain = "localhost";
    o->user = "user%d";
    o->password = "password";
    o->resource = "bench";
    o->first = 1;
    o->clients = 100;
    o->threads = 1;
    o->duration = 10;
    o->window = 1;
    o->body = 64;
    o->tls = XMPPC_TLS_NONE;
    o->mech = SASLC_SCRAM_SHA256;
    o->pending = 200;
    o->timeout = 30;
    o->drain = 5;
    o->contacts = 10;
    o->think = 5;
    o->senders = 10;
    o->ack_every = 1;
    o->broadcast = "moderator";
    o->mix[OPTS_MIX_CHAT] = 50;
    o->mix[OPTS_MIX_PRESENCE] = 20;
    o->mix[OPTS_MIX_IDLE] = 20;
    o->mix[OPTS_MIX_LOGIN] = 10;

    optind = 1;
    opterr = 0;
    int c, r;
    while ((c = getopt_long(argc, argv, ":H:p:D:u:c:T:d:n:r:w:s:k:o:l:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            if (!num(optarg, 1, 65535, &v))
                return bad(err, errlen, "--port: 1..65535");
            o->port = (unsigned)v;
            port_set = true;
            break;
        case 'D':
            o->domain = optarg;
            break;
        case OPT_PEER: {
            const char *colon = strrchr(optarg, ':');
            if (!colon || colon == optarg || !num(colon + 1, 1, 65535, &v))
                return bad(err, errlen, "--peer: HOST:PORT");
            snprintf(o->peer_buf, sizeof o->peer_buf, "%.*s", (int)(colon - optarg), optarg);
            o->peer_host = o->peer_buf;
            o->peer_port = (unsigned)v;
            break;
        }
        case OPT_HUB:
            o->hub = true;
            break;
        case OPT_PEER_DOMAIN:
            o->peer_domain = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case OPT_PASSWORD:
            o->password = optarg;
            break;
        case OPT_FIRST:
            if (!num(optarg, 0, 1e9, &v))
                return bad(err, errlen, "--first: 0..1000000000");
            o->first = (uint32_t)v;
            break;
        case OPT_RESOURCE:
            o->resource = optarg;
            break;
        case OPT_TLS:
            if (!strcmp(optarg, "none"))
                o->tls = XMPPC_TLS_NONE;
            else if (!strcmp(optarg, "starttls"))
                o->tls = XMPPC_TLS_STARTTLS;
            else if (!strcmp(optarg, "direct"))
                o->tls = XMPPC_TLS_DIRECT;
            else
                return bad(err, errlen, "--tls: none, starttls or direct");
            break;
        case OPT_MECH:
            if ((r = saslc_mech_parse(optarg)) < 0)
                return bad(err, errlen, "--mech: SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN");
            o->mech = (enum saslc_mech)r;
            break;
        case OPT_SOURCE:
            if ((r = parse_sources(o, optarg, err, errlen)) < 0)
                return r;
            break;
        case OPT_ADDUSER:
            o->adduser = optarg;
            break;
        case 'c':
            if (!num(optarg, 1, 10000000, &v))
                return bad(err, errlen, "--clients: 1..10000000");
            o->clients = (uint32_t)v;
            break;
        case OPT_USERS:
            if (!num(optarg, 1, 100000000, &v))
                return bad(err, errlen, "--users: 1..100000000");
            o->users = (uint32_t)v;
            break;
        case 'T':
            if (!num(optarg, 1, 64, &v))
                return bad(err, errlen, "--threads: 1..64");
            o->threads = (unsigned)v;
            break;
        case 'd':
            if (!num(optarg, 0.1, 86400 * 7, &v))
                return bad(err, errlen, "--duration: 0.1 to a week, in seconds");
            o->duration = v;
            break;
        case 'n':
            if (!num(optarg, 1, 1e15, &v))
                return bad(err, errlen, "--count: at least 1");
            o->count = (uint64_t)v;
            break;
        case 'r':
            if (!num(optarg, 0.001, 1e8, &v))
                return bad(err, errlen, "--rate: 0.001..100000000 per second");
            o->rate = v;
            break;
        case 'w':
            if (!num(optarg, 1, 100000, &v))
                return bad(err, errlen, "--window: 1..100000");
            o->window = (unsigned)v;
            window_set = true;
            break;
        case 's':
            if (!num(optarg, 0, 1 << 20, &v))
                return bad(err, errlen, "--size: 0..1048576 bytes");
            o->body = (unsigned)v;
            break;
        case OPT_RAMP:
            if (!num(optarg, 0, 1e7, &v))
                return bad(err, errlen, "--ramp: 0..10000000 per second");
            o->ramp = v;
            break;
        case OPT_PENDING:
            if (!num(optarg, 1, 1e7, &v))
                return bad(err, errlen, "--pending: 1..10000000");
            o->pending = (unsigned)v;
            break;
        case OPT_TIMEOUT:
            if (!num(optarg, 0.1, 3600, &v))
                return bad(err, errlen, "--timeout: 0.1..3600 seconds");
            o->timeout = v;
            break;
        case OPT_DRAIN:
            if (!num(optarg, 0, 3600, &v))
                return bad(err, errlen, "--drain: 0..3600 seconds");
            o->drain = v;
            break;
        case 'k':
            if (!num(optarg, 0, 100000, &v) || (unsigned)v % 2)
                return bad(err, errlen, "--contacts: an even number, 0..100000");
            o->contacts = (unsigned)v;
            break;
        case OPT_PRATE:
            if (!num(optarg, 0.001, 1e8, &v))
                return bad(err, errlen, "--presence-rate: 0.001..100000000 per second");
            o->presence_rate = v;
            break;
        case OPT_RSETUP:
            o->roster_setup = 1;
            break;
        case OPT_NO_RSETUP:
            o->roster_setup = -1;
            break;
        case OPT_MIX:
            if ((r = parse_mix(o, optarg, err, errlen)) < 0)
                return r;
            break;
        case OPT_THINK:
            if (!num(optarg, 0, 86400, &v))
                return bad(err, errlen, "--think: 0..86400 seconds");
            o->think = v;
            break;
        case OPT_ROOM:
            o->room = optarg;
            break;
        case OPT_SENDERS:
            if (!num(optarg, 1, 10000000, &v))
                return bad(err, errlen, "--senders: 1..10000000");
            o->senders = (uint32_t)v;
            break;
        case OPT_BROADCAST:
            o->broadcast = strcmp(optarg, "all") ? optarg : NULL;
            break;
        case OPT_ACK_EVERY:
            if (!num(optarg, 0, 1000000, &v))
                return bad(err, errlen, "--ack-every: 0..1000000");
            o->ack_every = (unsigned)v;
            break;
        case 'o':
            o->json = optarg;
            break;
        case 'l':
            o->label = optarg;
            break;
        case OPT_PID: {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s", optarg);
            for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (o->npids == OPTS_MAX_PIDS || !num(t, 1, 4194304, &v))
                    return bad(err, errlen, "--server-pid: up to %d process ids", OPTS_MAX_PIDS);
                o->pids[o->npids++] = (pid_t)v;
            }
            break;
        }
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            opts_usage(stdout);
            return 1;
        case ':':
            return bad(err, errlen, "%s needs a value", argv[optind - 1]);
        default:
            return bad(err, errlen, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return bad(err, errlen, "name one scenario: login, idle, chat, presence, mixed, muc or sm");
    int s = -1;
    for (int i = 0; i < (int)(sizeof scenario_names / sizeof scenario_names[0]); i++)
        if (!strcmp(argv[optind], scenario_names[i]))
            s = i;
    if (s < 0)
        return bad(err, errlen, "unknown scenario '%s'", argv[optind]);
    o->scenario = (enum opts_scenario)s;

    if (!port_set)
        o->port = o->tls == XMPPC_TLS_DIRECT ? 5223 : 5222;
    if (!o->users)
        o->users = o->clients;
    if (o->scenario == OPTS_LOGIN && o->users < o->clients)
        return bad(err, errlen,
                   "--users must be at least --clients: two connections "
                   "logging into one account at once would replace each other");
    if ((opts_pairs_chat(o) || o->scenario == OPTS_MIXED) && o->clients % 2)
        return bad(err, errlen, "--clients must be even: users chat in pairs");
    if (o->rate && window_set)
        return bad(err, errlen, "-r (open loop) and -w (closed loop) exclude each other");
    if (o->hub && o->scenario != OPTS_PRESENCE)
        return bad(err, errlen, "--hub: only with the presence scenario");
    if (o->hub)
        o->threads = 1; /* the one sender takes the whole --presence-rate */
    if (o->scenario == OPTS_PRESENCE && !o->hub && o->contacts >= o->clients)
        return bad(err, errlen, "--contacts must be below --clients");
    if (o->threads > o->clients)
        o->threads = o->clients;
    if (!o->presence_rate)
        o->presence_rate = o->clients / 10.0 > 1 ? o->clients / 10.0 : 1;
    char probe[512];
    if (opts_expand(o->user, o->first, probe, sizeof probe) < 0 ||
        opts_expand(o->password, o->first, probe, sizeof probe) < 0)
        return bad(err, errlen, "--user or --password pattern too long");
    if (!o->peer_host != !o->peer_domain)
        return bad(err, errlen, "--peer and --peer-domain go together");
    if (o->peer_host && (o->scenario == OPTS_MIXED || o->scenario == OPTS_MUC))
        return bad(err, errlen, "--peer: not with the mixed or muc scenario");
    if (o->scenario == OPTS_MUC) {
        if (o->senders > o->clients)
            o->senders = o->clients;
        if (!o->room) {
            snprintf(o->room_buf, sizeof o->room_buf, "bench@conference.%s", o->domain);
            o->room = o->room_buf;
        }
        if (!strchr(o->room, '@') || strchr(o->room, '/'))
            return bad(err, errlen, "--room: a bare JID, room@service");
    }
    if ((r = resolve(o->host, o->port, &o->addr, &o->addr_len, err, errlen)) < 0)
        return r;
    if (o->peer_host &&
        (r = resolve(o->peer_host, o->peer_port, &o->peer_addr, &o->peer_addr_len, err, errlen)) < 0)
        return r;
    for (unsigned i = 0; i < o->nsources; i++)
        if (o->sources[i].ss_family != o->addr.ss_family ||
            (o->peer_host && o->sources[i].ss_family != o->peer_addr.ss_family))
            return bad(err, errlen, "--source: addresses of another family than the server's");
    if (!o->label) {
        snprintf(o->label_buf, sizeof o->label_buf, "%s:%u", o->host, o->port);
        o->label = o->label_buf;
    }
    return 0;
}
