/*
 * Tests of bench/opts.c: account name patterns, the defaults, and the combinations the
 * parser must refuse before a run starts.
 */
#include "bench/opts.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

static struct opts o;
static char err[512];

/* Parses a command line given as one string of space-separated words. */
static int parse(const char *line)
{
    static char copy[1024];
    char *argv[64];
    int argc = 0;
    snprintf(copy, sizeof copy, "starling-bench %s", line);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && argc < 63;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    err[0] = '\0';
    return opts_parse(&o, argc, argv, err, sizeof err);
}

static void expand_test(void)
{
    char out[64];
    CHECK_INT(opts_expand("user%d", 42, out, sizeof out), ==, 6);
    CHECK_STR(out, "user42");
    CHECK_INT(opts_expand("pw", 42, out, sizeof out), ==, 2);
    CHECK_STR(out, "pw");
    opts_expand("a%%b%dc%d", 7, out, sizeof out); /* only the first %d is the number */
    CHECK_STR(out, "a%b7c%d");
    CHECK_INT(opts_expand("user%d", 123456, out, 8), ==, -ENOSPC);
}

static void defaults_test(void)
{
    CHECK_INT(parse("chat"), ==, 0);
    CHECK_INT(o.scenario, ==, OPTS_CHAT);
    CHECK_INT(o.port, ==, 5222);
    CHECK_INT(o.clients, ==, 100);
    CHECK_INT(o.window, ==, 1);
    CHECK_INT(o.mech, ==, SASLC_SCRAM_SHA256);
    CHECK_INT(o.tls, ==, XMPPC_TLS_NONE);
    CHECK_STR(o.label, "127.0.0.1:5222");
    CHECK_INT(parse("login --tls direct -c 8 --users 80 -T 2 -l prosody"), ==, 0);
    CHECK_INT(o.port, ==, 5223);
    CHECK_INT(o.users, ==, 80);
    CHECK_INT(o.threads, ==, 2);
    CHECK_STR(o.label, "prosody");
    CHECK_INT(parse("mixed -c 10 --mix chat=1,login=3 --mech PLAIN"), ==, 0);
    CHECK_INT(o.mix[OPTS_MIX_CHAT], ==, 1);
    CHECK_INT(o.mix[OPTS_MIX_PRESENCE], ==, 0);
    CHECK_INT(o.mix[OPTS_MIX_LOGIN], ==, 3);
}

static void sources_test(void)
{
    CHECK_INT(parse("idle --source 127.0.0.2-4,127.0.0.9"), ==, 0);
    CHECK_INT(o.nsources, ==, 4);
    char a[INET_ADDRSTRLEN];
    const struct sockaddr_in *s = (const struct sockaddr_in *)&o.sources[2];
    inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
    CHECK_STR(a, "127.0.0.4");
    s = (const struct sockaddr_in *)&o.sources[3];
    inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
    CHECK_STR(a, "127.0.0.9");
    CHECK_INT(parse("idle --source 127.0.0.5-3"), ==, -EINVAL);
    CHECK_INT(parse("idle --source ::1"), ==, -EINVAL); /* not the server's family */
}

/* --peer: the odd account indices (users 2, 4...) on the other server, in its domain. */
static void peer_test(void)
{
    CHECK_INT(parse("chat -H 127.0.0.7 -D a.test --peer 127.0.0.8:5333 --peer-domain b.test"), ==, 0);
    CHECK_STR(o.peer_host, "127.0.0.8");
    CHECK_INT(o.peer_port, ==, 5333);
    const struct sockaddr_in *s = (const struct sockaddr_in *)&o.peer_addr;
    CHECK_INT(ntohs(s->sin_port), ==, 5333);
    CHECK(!opts_on_peer(&o, 0));
    CHECK(opts_on_peer(&o, 1));
    CHECK_STR(opts_domain_of(&o, 0), "a.test");
    CHECK_STR(opts_domain_of(&o, 3), "b.test");
    CHECK_INT(parse("presence --hub -T 4 -c 10"), ==, 0);
    CHECK_INT(o.threads, ==, 1); /* the hub alone sends: one thread takes the whole rate */
    CHECK_INT(parse("chat"), ==, 0);
    CHECK(!opts_on_peer(&o, 1));
    CHECK_STR(opts_domain_of(&o, 1), "localhost");
}

static void refusals_test(void)
{
    CHECK_INT(parse(""), ==, -EINVAL);
    CHECK_INT(parse("dance"), ==, -EINVAL);
    CHECK_INT(parse("chat idle"), ==, -EINVAL);
    CHECK_INT(parse("chat -c 5"), ==, -EINVAL);       /* pairs */
    CHECK_INT(parse("chat -r 10 -w 3"), ==, -EINVAL); /* open and closed loop */
    CHECK_INT(parse("login -c 10 --users 5"), ==, -EINVAL);
    CHECK_INT(parse("presence -c 10 -k 3"), ==, -EINVAL); /* odd contacts */
    CHECK_INT(parse("presence -c 10 -k 10"), ==, -EINVAL);
    CHECK_INT(parse("chat --tls maybe"), ==, -EINVAL);
    CHECK_INT(parse("chat --mech DIGEST-MD5"), ==, -EINVAL);
    CHECK_INT(parse("chat --port 0"), ==, -EINVAL);
    CHECK_INT(parse("chat --bogus"), ==, -EINVAL);
    CHECK_INT(parse("chat -d"), ==, -EINVAL);
    CHECK_INT(parse("mixed --mix chat=0"), ==, -EINVAL);
    CHECK_INT(parse("chat --host no.such.host.invalid"), ==, -EINVAL);
    CHECK_INT(parse("chat --peer 127.0.0.8"), ==, -EINVAL);            /* no port */
    CHECK_INT(parse("chat --peer 127.0.0.8:5222"), ==, -EINVAL);       /* no domain */
    CHECK_INT(parse("chat --peer-domain b.test"), ==, -EINVAL);        /* no server */
    CHECK_INT(parse("mixed --peer 127.0.0.8:5222 --peer-domain b"), ==, -EINVAL);
    CHECK_INT(parse("chat --hub"), ==, -EINVAL);                       /* presence only */
}

int main(void)
{
    RUN(expand_test);
    RUN(defaults_test);
    RUN(sources_test);
    RUN(peer_test);
    RUN(refusals_test);
    return test_done("opts");
}
