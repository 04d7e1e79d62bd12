/*
 * strophe_client: a small libstrophe client the integration tests run
 * (tests/integration/test_strophe.py) to see that a second, independent XMPP stack
 * interoperates with starling: STARTTLS with certificate verification, SASL as
 * libstrophe picks it, resource binding, presence and a message exchange.
 *
 *   strophe_client JID PASSWORD HOST PORT PEER TEXT send|receive [CAFILE]
 *
 * Both modes log in and send available presence, then wait until the server echoes
 * that presence back (from then on the router counts the session as available).
 *   receive  prints "READY <full JID>", waits for a message from PEER's bare JID,
 *            prints "RECEIVED <body>", answers "ack: <body>" to its sender, exits 0.
 *   send     sends TEXT to PEER, waits for a message from PEER's bare JID, prints
 *            "RECEIVED <body>", exits 0.
 * A message of type error prints "ERROR <condition>" and exits 3; a failed connection
 * exits 1; nothing within TIMEOUT_S seconds exits 2. CAFILE is the certificate to
 * trust (the test node's self-signed one); without it any certificate is accepted.
 * Everything printed goes to stdout, one line per event, flushed at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strophe.h>

#define TIMEOUT_S 15

enum exit_code {
    EXIT_OK = 0,
    EXIT_CONN = 1,
    EXIT_TIMEOUT = 2,
    EXIT_STANZA_ERROR = 3,
    EXIT_USAGE = 64,
};

struct client {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    const char *peer;
    const char *text;
    int sending;
    int ready;  /* our presence came back */
    int done;   /* stop the loop */
    int result; /* enum exit_code */
};

/* Does jid (bare or full) belong to the bare JID `bare`? */
static int same_bare(const char *jid, const char *bare)
{
    size_t n = strcspn(bare, "/");
    return jid && strncmp(jid, bare, n) == 0 && (jid[n] == '\0' || jid[n] == '/');
}

static void say(const char *what, const char *arg)
{
    printf("%s %s\n", what, arg ? arg : "");
    fflush(stdout);
}

static void finish(struct client *cl, int result)
{
    if (cl->done)
        return;
    cl->done = 1;
    cl->result = result;
    xmpp_disconnect(cl->conn);
}

static void send_message(struct client *cl, const char *to, const char *body)
{
    xmpp_stanza_t *m = xmpp_message_new(cl->ctx, "chat", to, NULL);
    xmpp_message_set_body(m, body);
    xmpp_send(cl->conn, m);
    xmpp_stanza_release(m);
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct client *cl = ud;
    const char *me = xmpp_conn_get_bound_jid(conn);
    const char *from = xmpp_stanza_get_from(st);

    if (cl->ready || !me || !from || strcmp(me, from) != 0 || xmpp_stanza_get_type(st))
        return 1;
    cl->ready = 1;
    if (cl->sending)
        send_message(cl, cl->peer, cl->text);
    else
        say("READY", me);
    return 1;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct client *cl = ud;
    const char *type = xmpp_stanza_get_type(st);
    const char *from = xmpp_stanza_get_from(st);
    (void)conn;

    if (type && strcmp(type, "error") == 0) {
        xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");
        xmpp_stanza_t *cond = err ? xmpp_stanza_get_children(err) : NULL;
        while (cond && !xmpp_stanza_is_tag(cond))
            cond = xmpp_stanza_get_next(cond);
        say("ERROR", cond ? xmpp_stanza_get_name(cond) : "?");
        finish(cl, EXIT_STANZA_ERROR);
        return 1;
    }
    if (!same_bare(from, cl->peer))
        return 1;
    char *body = xmpp_message_get_body(st);
    if (!body)
        return 1;
    say("RECEIVED", body);
    if (!cl->sending) {
        size_t n = strlen(body) + sizeof "ack: ";
        char *ack = malloc(n);
        if (ack) {
            snprintf(ack, n, "ack: %s", body);
            send_message(cl, from, ack);
            free(ack);
        }
    }
    xmpp_free(cl->ctx, body);
    finish(cl, EXIT_OK);
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *stream_error, void *ud)
{
    struct client *cl = ud;
    (void)error;

    if (status == XMPP_CONN_CONNECT) {
        say("BOUND", xmpp_conn_get_bound_jid(conn));
        say("SECURED", xmpp_conn_is_secured(conn) ? "yes" : "no");
        xmpp_handler_add(conn, on_message, NULL, "message", NULL, cl);
        xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, cl);
        xmpp_stanza_t *pres = xmpp_presence_new(cl->ctx);
        xmpp_send(conn, pres);
        xmpp_stanza_release(pres);
        return;
    }
    if (stream_error)
        say("STREAM-ERROR", stream_error->text ? stream_error->text : "");
    if (!cl->done) {
        cl->done = 1;
        cl->result = EXIT_CONN;
    }
}

int main(int argc, char **argv)
{
    struct client cl = {0};
    int rc = EXIT_CONN;

    if (argc < 8 || argc > 9 || (strcmp(argv[7], "send") != 0 && strcmp(argv[7], "receive") != 0)) {
        fprintf(stderr, "usage: %s JID PASSWORD HOST PORT PEER TEXT send|receive [CAFILE]\n",
                argv[0]);
        return EXIT_USAGE;
    }
    /* The server may close first once we sent our </stream>: a write then must fail,
     * not kill us (libstrophe writes with plain send()). */
    signal(SIGPIPE, SIG_IGN);
    cl.peer = argv[5];
    cl.text = argv[6];
    cl.sending = strcmp(argv[7], "send") == 0;

    xmpp_initialize();
    cl.ctx = xmpp_ctx_new(NULL, getenv("STROPHE_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
                                                        : NULL);
    if (!cl.ctx)
        goto out_lib;
    cl.conn = xmpp_conn_new(cl.ctx);
    if (!cl.conn)
        goto out_ctx;
    long flags = XMPP_CONN_FLAG_MANDATORY_TLS;
    if (argc == 9)
        xmpp_conn_set_cafile(cl.conn, argv[8]);
    else
        flags |= XMPP_CONN_FLAG_TRUST_TLS;
    xmpp_conn_set_flags(cl.conn, flags);
    xmpp_conn_set_jid(cl.conn, argv[1]);
    xmpp_conn_set_pass(cl.conn, argv[2]);
    if (xmpp_connect_client(cl.conn, argv[3], (unsigned short)atoi(argv[4]), on_conn, &cl) !=
        XMPP_EOK)
        goto out_conn;

    time_t deadline = time(NULL) + TIMEOUT_S;
    while (!cl.done && time(NULL) < deadline)
        xmpp_run_once(cl.ctx, 100);
    if (!cl.done) {
        say("TIMEOUT", NULL);
        cl.result = EXIT_TIMEOUT;
        xmpp_disconnect(cl.conn);
    }
    /* Let the disconnect (and an ack just queued) reach the wire. */
    for (int i = 0; i < 20 && xmpp_conn_is_connected(cl.conn); i++)
        xmpp_run_once(cl.ctx, 50);
    rc = cl.result;
out_conn:
    xmpp_conn_release(cl.conn);
out_ctx:
    xmpp_ctx_free(cl.ctx);
out_lib:
    xmpp_shutdown();
    return rc;
}
