/* The directive table. Adding a directive: a field in struct config (config.h) and a
 * row here; loading, errors, the sample file and reload follow from the row. After a
 * change, regenerate deploy/starling.conf.sample (the config unit test says how). */
#include "common/config/config_table.h"
#include "common/auth/tls.h"
#include "common/store/store_mam.h"
#include "common/store/store_muc.h"

#include <stdio.h>

static const char *const config_levels[] = {
    [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARN] = "warn",    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_DEBUG + 1] = NULL,
};
static const char *const config_discovery[] = {
    [CONFIG_DISCOVERY_STATIC] = "static",
    [CONFIG_DISCOVERY_POSTGRESQL] = "postgresql",
    [CONFIG_DISCOVERY_POSTGRESQL + 1] = NULL,
};

static const char *const config_backends[] = {
    [STORE_BACKEND_SQLITE] = "sqlite",
    [STORE_BACKEND_POSTGRESQL] = "postgresql",
    [STORE_BACKEND_POSTGRESQL + 1] = NULL,
};
static const char *const config_mam_defaults[] = {
    [STORE_MAM_ALWAYS] = "always",
    [STORE_MAM_NEVER] = "never",
    [STORE_MAM_ROSTER] = "roster",
    [STORE_MAM_ROSTER + 1] = NULL,
};
static const char *const config_conflicts[] = {
    [CONFIG_CONFLICT_REPLACE] = "replace",
    [CONFIG_CONFLICT_REFUSE] = "refuse",
    [CONFIG_CONFLICT_REFUSE + 1] = NULL,
};

#define K 1024u
#define M (1024u * 1024u)
#define G (1024u * 1024u * 1024u)

/* The largest value a field can hold; the table's maxima are checked against it at
 * compile time, so a directive can never be configured into a truncated value. */
#define FIELD_SIZE(f) sizeof(((struct config *)0)->f)
#define FIELD_MAX(f)  (~0ull >> (64 - 8 * FIELD_SIZE(f)))
#define FIELD_OK(f, ok, why)                                                                       \
    (offsetof(struct config, f) + 0 * sizeof(struct {                                              \
                                      _Static_assert(ok, why);                                     \
                                      char c;                                                      \
                                  }))

#define NUM(t, n, f, def_, lo, hi, fl, doc_)                                                       \
    {                                                                                              \
        n, CONFIG_T_##t, fl, FIELD_OK(f, (hi) <= FIELD_MAX(f), n ": max exceeds the field"),       \
            FIELD_SIZE(f), def_, lo, hi, NULL, doc_, 0                                             \
    }
#define BOOL(n, f, def_, fl, doc_)                                                                 \
    {                                                                                              \
        n, CONFIG_T_BOOL, fl, FIELD_OK(f, FIELD_SIZE(f) == sizeof(bool), n ": not a bool"),        \
            FIELD_SIZE(f), def_, 0, 1, NULL, doc_, 0                                               \
    }
#define STR(n, f, def_, lo, hi, fl, doc_)                                                          \
    {                                                                                              \
        n, CONFIG_T_STRING, fl, FIELD_OK(f, FIELD_SIZE(f) == sizeof(char *), n ": not a string"),  \
            FIELD_SIZE(f), def_, lo, hi, NULL, doc_, 0                                             \
    }
#define ENUM(n, f, def_, names, fl, doc_)                                                          \
    {                                                                                              \
        n, CONFIG_T_ENUM, fl, FIELD_OK(f, FIELD_SIZE(f) == sizeof(int), n ": not an enum"),        \
            FIELD_SIZE(f), def_, 0, 0, names, doc_, 0                                              \
    }
#define ADDR(n, f, def_, fl, doc_)                                                                 \
    {                                                                                              \
        n, CONFIG_T_ADDR, fl,                                                                      \
            FIELD_OK(f, FIELD_SIZE(f) == sizeof(struct config_addr), n ": not an address"),        \
            FIELD_SIZE(f), def_, 0, 0, NULL, doc_, 0                                               \
    }

/* A list of `item`s (ADDR, ROUTE or PREFIX), at most hi of them; its default is the empty
 * list. */
#define LIST(item_, n, f, hi, fl, doc_)                                                            \
    {                                                                                              \
        n, CONFIG_T_LIST, fl,                                                                      \
            FIELD_OK(                                                                              \
                f,                                                                                 \
                FIELD_SIZE(f) == sizeof(struct config_list) &&                                     \
                    (CONFIG_T_##item_ == CONFIG_T_ADDR || CONFIG_T_##item_ == CONFIG_T_ROUTE ||    \
                     CONFIG_T_##item_ == CONFIG_T_PREFIX),                                         \
                n ": not a list of addresses, routes or prefixes"),                                \
            FIELD_SIZE(f), "", 0, hi, NULL, doc_, CONFIG_T_##item_                                 \
    }

#define RESTART CONFIG_F_RESTART
#define POW2    CONFIG_F_POW2
#define EMPTY   CONFIG_F_EMPTY
#define PATH    CONFIG_F_PATH

/* Directives of one group stay together: the sample file writes them as one group. */
const struct config_directive config_table[] = {
    STR("domain", domain, "localhost", 1, 1023, RESTART,
        "The XMPP domain this server serves: the part after '@' in user@domain, in\n"
        "normal form (lower case, no trailing dot)."),
    ENUM("log.level", log.level, "info", config_levels, 0,
         "How much goes to stderr. debug logs every stanza: never in production."),
    ENUM("storage.backend", storage.backend, "sqlite", config_backends, RESTART,
         "Where accounts, rosters and offline messages live: sqlite (one file, nothing to\n"
         "set up) or postgresql (shared by a cluster: storage.dsn says where)."),
    STR("storage.path", storage.path, "starling.db", 1, 4095, PATH | RESTART,
        "The SQLite database file, created when missing (its folder must exist).\n"
        "starlingctl opens the same file while the server runs. Beside it, c2s keeps\n"
        "the secret that SCRAM's answers about unknown users derive from (PATH.secret)."),
    STR("storage.dsn", storage.dsn, "", 0, 4095, RESTART,
        "The PostgreSQL connection string (\"host=db dbname=starling user=starling\", or a\n"
        "postgresql:// URI), used when storage.backend is postgresql. It may hold the\n"
        "password; storage.password_file keeps it out of this file."),
    STR("storage.password_file", storage.password_file, "", 0, 4095, PATH | RESTART,
        "PostgreSQL: a file whose first line is the password (a mounted Kubernetes\n"
        "Secret), read at every connection and never logged; it overrides the DSN's.\n"
        "\"\": the DSN's, or libpq's usual ~/.pgpass and PGPASSWORD."),
    NUM(DURATION, "storage.timeout", storage.timeout, "10", 1, 600, RESTART,
        "PostgreSQL: how long a request waits for a connection while the database is\n"
        "unreachable (the store reconnects by itself), and how long results may stop\n"
        "coming before a connection counts as lost; then the request fails and the\n"
        "client gets an error it can retry. Also how long start-up waits for the\n"
        "database."),
    NUM(SIZE, "storage.cache_size", storage.cache_size, "256K", 64 * K, 1 * G, RESTART,
        "SQLite's page cache in each process that opens the database (c2s and router).\n"
        "The operating system caches the file as well: a page missed here costs a read\n"
        "from memory, not from disk."),
    NUM(INT, "c2s.threads", c2s.threads, "0", 0, 64, RESTART,
        "Threads of the c2s process, each with its own io_uring, listeners and\n"
        "connections. 0: half the cores, at least one, so that c2s threads and router\n"
        "shards together take each core once."),
    ADDR("c2s.listen", c2s.listen, "127.0.0.1:5222", EMPTY | RESTART,
         "Where clients connect and start TLS (STARTTLS). \"0.0.0.0:5222\" or \"[::]:5222\"\n"
         "for every interface; \"\" disables."),
    ADDR("c2s.listen_tls", c2s.listen_tls, "127.0.0.1:5223", EMPTY | RESTART,
         "Where clients connect with Direct TLS (XEP-0368). \"\" disables."),
    STR("c2s.certificate", c2s.certificate, "localhost.crt", 1, 4095, PATH,
        "The TLS certificate chain for the domain (PEM). Read again on reload, so a\n"
        "renewed certificate needs no restart."),
    STR("c2s.key", c2s.key, "localhost.key", 1, 4095, PATH, "The certificate's private key (PEM)."),
    BOOL("c2s.require_encryption", c2s.require_encryption, "true", 0,
         "Require TLS before authentication (RFC 6120 §5.3.1). Turn off only to test on\n"
         "loopback."),
    BOOL("c2s.allow_plain_without_tls", c2s.allow_plain_without_tls, "false", 0,
         "Offer SASL PLAIN on a stream without TLS, which sends the password in clear.\n"
         "Matters only when require_encryption is false."),
    NUM(SIZE, "c2s.max_stanza_size", c2s.max_stanza_size, "256K", 10000, 16 * M, RESTART,
        "Bytes of the largest stanza accepted; a larger one closes the stream with\n"
        "policy-violation. RFC 6120 §13.12 asks for at least 10000. It sizes the\n"
        "shared-memory frames, so it changes on restart only."),
    NUM(SIZE, "c2s.max_stanza_size_preauth", c2s.max_stanza_size_preauth, "8K", 1024, 16 * M, 0,
        "Bytes of the largest element a client may send before it has authenticated\n"
        "(its stream headers, <starttls/>, the SASL exchange: a few hundred bytes), so\n"
        "that nobody makes the server buffer a large stanza without an account. Over\n"
        "it: policy-violation. Authenticated streams get max_stanza_size."),
    NUM(INT, "c2s.max_depth", c2s.max_depth, "48", 8, 1024, 0,
        "Deepest nesting of elements inside one stanza."),
    NUM(INT, "c2s.max_attrs", c2s.max_attrs, "64", 8, 1024, 0,
        "Most attributes, namespace declarations included, on one element."),
    NUM(INT, "c2s.max_name", c2s.max_name, "255", 16, 255, 0,
        "Bytes of the longest element or attribute name."),
    NUM(DURATION, "c2s.idle_timeout", c2s.idle_timeout, "300", 0, 86400, 0,
        "A client that has sent nothing for this long is pinged (XEP-0199), then\n"
        "disconnected if it does not answer. 0 never."),
    NUM(DURATION, "c2s.keepalive", c2s.keepalive, "60", 0, 3600, 0,
        "Interval of the whitespace keepalives sent on a quiet stream, so that NAT\n"
        "and firewalls keep it open. 0 sends none."),
    NUM(DURATION, "c2s.handshake_timeout", c2s.handshake_timeout, "30", 1, 600, 0,
        "Time a new connection has to negotiate TLS and authenticate."),
    NUM(INT, "c2s.max_connections", c2s.max_connections, "100000", 1, 10000000, 0,
        "Client connections the c2s process holds at most; more are refused."),
    NUM(INT, "c2s.max_connections_per_address", c2s.max_connections_per_address, "10000", 0,
        10000000, 0,
        "Client connections from one address (an IPv6 /64 counts as one) at once; one\n"
        "more gets policy-violation. 0: no limit. The default serves an office behind\n"
        "one NAT address. Behind a load balancer, list it in c2s.proxy_from, or every\n"
        "client has the balancer's address (then set 0, or its client count)."),
    ENUM("c2s.resource_conflict", c2s.resource_conflict, "replace", config_conflicts, 0,
         "A client binds a resource that is in use: replace closes the older session\n"
         "(RFC 6120 §7.7.2.2), refuse fails the new bind."),
    NUM(INT, "c2s.scram_iterations", c2s.scram_iterations, "4096", 4096, 1000000, 0,
        "PBKDF2 iterations for passwords set from now on (SCRAM, RFC 7677). An account\n"
        "keeps its count until its password changes."),
    NUM(INT, "c2s.login_rate", c2s.login_rate, "100", 0, 1000000, 0,
        "Logins per second one client address (an IPv6 /64) may start, after a burst\n"
        "of login_burst. A login beyond it is not refused: the answer to its <auth/>\n"
        "waits for its turn, as long as handshake_timeout allows (past that:\n"
        "temporary-auth-failure). 0: no limit. Behind a load balancer not in\n"
        "c2s.proxy_from every login comes from its address: raise it or set 0."),
    NUM(INT, "c2s.login_burst", c2s.login_burst, "200", 1, 1000000, 0,
        "Logins one client address may start at once before login_rate paces them:\n"
        "an office that reconnects after an outage logs in without waiting."),
    NUM(INT, "c2s.auth_failures_per_account", c2s.auth_failures_per_account, "10", 0, 1000000, 0,
        "Failed authentications (a wrong password, or an unknown user) an account may\n"
        "have within auth_failure_window, from anywhere; after them its logins get\n"
        "temporary-auth-failure until the window has room again (one more attempt per\n"
        "window / this number). Bounds password guessing on one account. Whoever knows\n"
        "an account's name can keep it refusing logins this way. 0: no limit."),
    NUM(INT, "c2s.auth_failures_per_address", c2s.auth_failures_per_address, "20", 0, 1000000, 0,
        "Accounts one client address (an IPv6 /64) may fail to authenticate on within\n"
        "auth_failure_window; after them every login from it gets\n"
        "temporary-auth-failure until the window has room again. Bounds guessing\n"
        "across many accounts. Repeated failures on one account count once, so a\n"
        "device with a stale password does not lock out the rest of its office.\n"
        "Behind a load balancer not in c2s.proxy_from, set 0. 0: no limit."),
    NUM(DURATION, "c2s.auth_failure_window", c2s.auth_failure_window, "10m", 1, 86400, 0,
        "The window of auth_failures_per_account and auth_failures_per_address."),
    NUM(INT, "c2s.max_plain_pending", c2s.max_plain_pending, "256", 1, 1000000, 0,
        "PLAIN logins one c2s thread may have waiting for the password worker (PBKDF2\n"
        "takes about half a millisecond each); more get temporary-auth-failure at once\n"
        "rather than waiting behind them. SCRAM logins do not queue there."),
    LIST(PREFIX, "c2s.proxy_from", c2s.proxy.from, 1000, 0,
         "Load balancers that speak the PROXY protocol to c2s (HAProxy's send-proxy or\n"
         "send-proxy-v2; version 1 or 2, told apart by its first bytes), as addresses or\n"
         "prefixes: [ \"10.0.0.0/8\", \"127.0.0.2\", \"::1/128\" ]. A connection from one of\n"
         "them must start with a PROXY header, or it is closed (without a word: its peer\n"
         "is a balancer); the client's address the header names is then the\n"
         "connection's, for the logs and every per-address limit. A LOCAL header (a\n"
         "balancer's health check) or one naming no TCP client keeps the balancer's\n"
         "address. From any other address a header is never read: it fails as XML, so no\n"
         "client can claim another's address. Empty: nobody."),
    NUM(DURATION, "c2s.proxy_timeout", c2s.proxy.timeout, "5", 1, 600, 0,
        "Time a connection from c2s.proxy_from has to send its whole PROXY header (a\n"
        "balancer sends it at once); then it is closed."),
    NUM(SIZE, "c2s.proxy_max_header", c2s.proxy.max_header, "1K", 256, 65551, 0,
        "Bytes of the largest PROXY header v2 accepted (16, the addresses, the TLVs a\n"
        "balancer adds, which are skipped); a longer one closes the connection. Version\n"
        "1 has its own bound, 107 bytes."),
    ADDR("c2s.websocket_listen", c2s.websocket_listen, "", EMPTY | RESTART,
         "Where browser clients connect over WebSocket (RFC 7395, subprotocol xmpp), in\n"
         "plain text: for a reverse proxy in front that terminates TLS (wss://) and\n"
         "forwards to it, or a browser on this machine (ws://127.0.0.1:PORT/). Streams\n"
         "there count as encrypted (require_encryption, PLAIN), so bind it to loopback\n"
         "or to the proxy's network only. Any request path is accepted. \"\" disables."),
    ADDR("c2s.websocket_tls_listen", c2s.websocket_tls_listen, "", EMPTY | RESTART,
         "Where browser clients connect over WebSocket with TLS (wss://), with the\n"
         "certificate of c2s.certificate. \"\" disables."),
    STR("c2s.websocket_origins", c2s.ws.origins, "", 0, 4095, 0,
        "The Origin values a browser's WebSocket request may carry, separated by spaces\n"
        "(\"https://chat.example.com https://example.com\"), compared without regard to\n"
        "case; another gets 403. A request without Origin (no browser) is accepted.\n"
        "\"\": any origin."),
    NUM(SIZE, "c2s.websocket_max_request", c2s.ws.max_request, "8K", 1024, 64 * K, 0,
        "Bytes of a WebSocket upgrade request (request line and headers) at most; a\n"
        "longer one gets 431. The request must come within c2s.handshake_timeout, as the\n"
        "rest of the login. Each message after it is bounded as a stanza is\n"
        "(max_stanza_size, max_stanza_size_preauth before authentication): longer gets\n"
        "policy-violation and close code 1009."),
    NUM(DURATION, "c2s.resume_timeout", c2s.resume_timeout, "300", 0, 86400, 0,
        "Stream management (XEP-0198): how long a session whose connection dropped\n"
        "without closing its stream stays, available to its contacts, for its client to\n"
        "resume it (a client may ask for less). What it was sent meanwhile waits; when\n"
        "the time is up, messages it never acknowledged go to offline storage (or\n"
        "another resource) and iqs are answered with errors. 0: no resumption."),
    NUM(INT, "c2s.sm_max_unacked", c2s.sm_max_unacked, "5000", 16, 1000000, 0,
        "Stanzas sent to a client with stream management that it has not acknowledged\n"
        "yet (or that wait for it to resume), per session. One more ends the session\n"
        "(policy-violation): what it holds goes to offline storage as at the end of a\n"
        "resumption's time."),
    NUM(SIZE, "c2s.sm_max_unacked_bytes", c2s.sm_max_unacked_bytes, "8M", 64 * K, 32 * M, 0,
        "The same bound in bytes (the stanzas as written). At most 32M: a resumption\n"
        "hands them between c2s threads in one frame."),
    NUM(INT, "c2s.csi_max_queued", c2s.csi_max_queued, "500", 1, 100000, 0,
        "Client State Indication (XEP-0352): presence updates and chat states held for a\n"
        "client that said it is inactive, the latest per sender only. One more sends\n"
        "them all."),
    NUM(INT, "router.shards", router.shards, "0", 0, 256, RESTART,
        "Shard workers of the router process; a bare JID lives in shard\n"
        "xxh3(jid) % shards. 0: half the cores, at least one."),
    BOOL("router.software_version", router.software_version, "false", 0,
         "Answer XEP-0092 software version queries with starling's name and version.\n"
         "Off by default: it tells whoever asks what to look for."),
    NUM(INT, "router.max_sessions", router.max_sessions, "100", 1, 100000, 0,
        "Sessions (resources) one account may have bound at once. One more is refused\n"
        "with resource-constraint (RFC 6120 §7.6.2.1); binding a resource in use to\n"
        "replace its session is always allowed."),
    NUM(INT, "router.max_directed", router.max_directed, "500", 1, 100000, 0,
        "JIDs one session may have sent directed presence to (RFC 6121 §4.6), which the\n"
        "server must tell when the session ends: a MUC room joined is one. One more is\n"
        "refused with resource-constraint until the session sends unavailable to one."),
    NUM(SIZE, "router.max_pending", router.max_pending, "1M", 64 * K, 1 * G, 0,
        "Bytes of stanzas held for one user while the user's roster and blocklist load\n"
        "from storage (milliseconds, longer when storage is slow). Beyond it a stanza is\n"
        "refused with resource-constraint, and an error or result (which nothing may\n"
        "answer) is dropped; a session's end and what the server sends always wait."),
    NUM(SIZE, "router.max_remote_unacked", router.max_remote_unacked, "64M", 1 * M, 1 * G, 0,
        "Bytes of stanzas a shard keeps a copy of until s2s says it sent or returned them\n"
        "(per s2s thread), so that a restarted s2s gets what the one before had not done.\n"
        "Past it the oldest copy is forgotten: that stanza would be lost only if s2s then\n"
        "crashed. It holds what waits for remote servers that are slow to connect."),
    STR("cluster.node", cluster.node, "", 0, 63, RESTART,
        "This node's name in a cluster (letters, digits, '-', '.'), the same on every\n"
        "node's cluster.nodes list. \"\": no cluster, one node serves everything."),
    ADDR("cluster.listen", cluster.listen, "", EMPTY | RESTART,
         "Where this node's router takes the other nodes' links (nanomsg over TCP), such\n"
         "as \"10.0.0.1:7711\". Needed with cluster.node."),
    LIST(ROUTE, "cluster.nodes", cluster.nodes, 63, RESTART,
         "The other nodes of the cluster, \"name=IPv4:port\" each (their cluster.listen),\n"
         "such as [ \"node2=10.0.0.2:7711\", \"node3=10.0.0.3:7711\" ]. Every node lists\n"
         "the same set (itself excepted): a node's index in connection ids is its place\n"
         "in the sorted names."),
    ENUM("cluster.discovery", cluster.discovery, "static", config_discovery, RESTART,
         "How the nodes find each other: static (cluster.nodes) or postgresql (each node\n"
         "writes a row with its address to the cluster_nodes table of the shared\n"
         "storage.dsn every cluster.heartbeat, and links to the nodes whose rows are\n"
         "fresher than cluster.dead_after; cluster.nodes stays empty)."),
    NUM(DURATION, "cluster.heartbeat", cluster.heartbeat, "1", 1, 60, RESTART,
        "Seconds between heartbeats on each link."),
    NUM(DURATION, "cluster.dead_after", cluster.dead_after, "3", 2, 600, RESTART,
        "A node not heard from for this long is down: its users re-home to the nodes\n"
        "left, its sessions end. At least twice cluster.heartbeat. A node whose\n"
        "PostgreSQL store is unreachable this long takes no new logins and fails /ready\n"
        "until it is back (the arbiter), in a cluster or not."),
    NUM(SIZE, "cluster.max_link_bytes", cluster.max_link_bytes, "16M", 64 * K, 1 * G, 0,
        "Bytes of frames waiting for one slow link (another node that reads slower than\n"
        "this one sends). Past it stanzas for that node are refused with\n"
        "remote-server-timeout, other frames are dropped and counted."),
    STR("cluster.status_file", cluster.status_file, "cluster.status", 1, 4095, PATH | RESTART,
        "The router rewrites this file each second with the nodes, links and sessions\n"
        "it sees; `starlingctl cluster` prints it."),
    NUM(INT, "s2s.threads", s2s.threads, "1", 1, 64, RESTART,
        "Threads of the s2s process (federation), each with its own io_uring, listeners\n"
        "and server-to-server streams; a remote domain's outbound streams belong to one\n"
        "of them (a hash of the domain)."),
    ADDR("s2s.listen", s2s.listen, "127.0.0.1:5269", EMPTY | RESTART,
         "Where other servers connect (federation, STARTTLS). \"\" disables inbound\n"
         "federation; outbound streams are made all the same."),
    NUM(INT, "s2s.max_dialback_pending", s2s.max_dialback_pending, "32", 1, 10000, RESTART,
        "Server Dialback requests (XEP-0220) one server-to-server stream may have\n"
        "waiting at once: a peer's keys we are verifying (each costs a connection to\n"
        "the domain it names), and our own verification requests on a stream to one\n"
        "authoritative server. One more is refused with the dialback error\n"
        "resource-constraint, which tells the peer to open another stream; the stream\n"
        "and its other domains carry on."),
    NUM(INT, "s2s.max_domain_pairs", s2s.max_domain_pairs, "256", 1, 100000, RESTART,
        "Domain pairs (sender domain, target domain) one server-to-server stream may\n"
        "carry, both directions, pending ones included: XEP-0220 multiplexing of many\n"
        "domains (virtual hosts, MUC and upload services) over one connection. One\n"
        "more is refused with resource-constraint, as above."),
    NUM(DURATION, "s2s.dialback_timeout", s2s.dialback_timeout, "60", 1, 3600, RESTART,
        "How long a dialback request may wait for its answer. After it, the peer's\n"
        "request is refused with remote-server-timeout, and stanzas waiting for one of\n"
        "ours are returned to their senders with remote-server-timeout."),
    BOOL("s2s.secure_auth", s2s.secure_auth, "false", RESTART,
         "Refuse peers whose certificate does not verify (against the system CAs, with\n"
         "RFC 6125 name matching), even over TLS with Server Dialback: every peer must then\n"
         "authenticate with SASL EXTERNAL (XEP-0178). Off by default, as on the public\n"
         "network, where dialback over TLS with self-signed certificates is common."),
    STR("s2s.ca_file", s2s.ca_file, TLS_SYSTEM_CA_FILE, 0, 4095, PATH,
        "The trust roots (PEM) that other servers' certificates are checked against,\n"
        "Debian's public CAs by default. A peer whose certificate chains to one of them\n"
        "and names its domain (RFC 6125) may authenticate with SASL EXTERNAL; any\n"
        "other goes through dialback. A private federation lists its own CA here\n"
        "(`starlingctl gencert --ca`). \"\": none."),
    STR("s2s.ca_dir", s2s.ca_dir, "", 0, 4095, PATH,
        "A folder of more trust roots, one PEM file each under its subject hash\n"
        "(`openssl rehash`), read as checks need them; with s2s.ca_file or instead of\n"
        "it. \"\": none."),
    LIST(ROUTE, "s2s.routes", s2s.routes, 10000, RESTART,
         "Static routes for private federation and tests, used instead of DNS for their\n"
         "domains: \"domain=IPv4:port\" or \"domain=[IPv6]:port\", the domain in normal form\n"
         "(lower case), the peer reached there with STARTTLS, such as\n"
         "[ \"a.example=127.0.0.2:5269\", \"b.example=[::1]:5269\" ]."),
    LIST(ADDR, "s2s.dns_servers", s2s.dns_servers, 16, RESTART,
         "The DNS servers that find peers (SRV, A and AAAA records), asked in turn, such\n"
         "as [ \"10.0.0.53:53\" ] behind split DNS; empty: those of /etc/resolv.conf."),
    NUM(DURATION, "s2s.dns_timeout", s2s.dns_timeout, "2", 1, 60, RESTART,
        "Seconds a DNS server has to answer a query in the first round of tries; each\n"
        "further round waits twice as long."),
    NUM(INT, "s2s.dns_tries", s2s.dns_tries, "2", 1, 10, RESTART,
        "Rounds of tries of a DNS query (each round asks every DNS server in turn)\n"
        "before the peer counts as unreachable (remote-server-timeout). A lookup asks\n"
        "for SRV records, then for its targets' addresses: with one server and the\n"
        "defaults, it gives up after at most 2 x (2 + 4) = 12 seconds."),
    NUM(INT, "s2s.dns_cache_size", s2s.dns_cache_size, "10000", 1, 1000000, RESTART,
        "Remote domains whose lookup each s2s thread remembers (and those it is looking\n"
        "up); past it the least recently used is forgotten. While every one is a lookup\n"
        "in flight, one more domain cannot be looked up: it is unreachable for now\n"
        "(remote-server-timeout)."),
    NUM(DURATION, "s2s.dns_max_ttl", s2s.dns_max_ttl, "1h", 0, 86400, RESTART,
        "The longest a lookup is remembered, whatever its records' TTLs say (each is\n"
        "remembered for the shortest TTL among its records). 0: never remembered."),
    NUM(DURATION, "s2s.dns_negative_ttl", s2s.dns_negative_ttl, "60", 0, 3600, RESTART,
        "How long a domain that does not exist, has no address or publishes no XMPP\n"
        "service (an SRV target of \".\") is remembered as such. A lookup that failed\n"
        "for want of an answer (a timeout, a DNS server's error) is not remembered: the\n"
        "next stanza for that domain tries again at once."),
    NUM(INT, "s2s.dns_max_targets", s2s.dns_max_targets, "16", 1, 256, RESTART,
        "SRV targets of one domain kept (_xmpps-server and _xmpp-server together, in\n"
        "the order they are tried); the records after them are ignored."),
    NUM(INT, "s2s.dns_max_addresses", s2s.dns_max_addresses, "8", 1, 64, RESTART,
        "Addresses (A and AAAA together) of one SRV target kept; the rest are ignored."),
    ADDR("s2s.listen_tls", s2s.listen_tls, "", EMPTY | RESTART,
         "Where other servers connect with Direct TLS (XEP-0368, _xmpps-server). \"\"\n"
         "disables it."),
    BOOL("s2s.require_encryption", s2s.require_encryption, "true", 0,
         "Every server-to-server stream is encrypted (STARTTLS or Direct TLS): a peer that\n"
         "offers no TLS is not used, and an inbound stream must start TLS before anything\n"
         "else. false allows plaintext streams (a private network only)."),
    NUM(SIZE, "s2s.max_stanza_size", s2s.max_stanza_size, "256K", 10000, 16 * M, RESTART,
        "Bytes of the largest stanza a remote server may send; a larger one closes its\n"
        "stream with policy-violation. At most c2s.max_stanza_size (frames are sized by it)."),
    NUM(DURATION, "s2s.connect_timeout", s2s.connect_timeout, "10", 1, 600, 0,
        "Time a TCP connection to one address of a remote server has to be made; then the\n"
        "next address is tried."),
    NUM(DURATION, "s2s.auth_timeout", s2s.auth_timeout, "30", 1, 600, 0,
        "Time a server-to-server stream has, either way, from its first byte to being\n"
        "authenticated (TLS, SASL EXTERNAL or dialback). An inbound stream past it ends\n"
        "with connection-timeout; an outbound one's stanzas go back with\n"
        "remote-server-timeout."),
    NUM(DURATION, "s2s.idle_timeout", s2s.idle_timeout, "10m", 10, 86400, 0,
        "An outbound stream that carried nothing for this long is closed; the next stanza\n"
        "opens another."),
    NUM(INT, "s2s.max_queue", s2s.max_queue, "10000", 1, 10000000, 0,
        "Stanzas waiting for one remote domain while its stream is being made; one more\n"
        "goes back to its sender with resource-constraint."),
    NUM(SIZE, "s2s.max_queue_bytes", s2s.max_queue_bytes, "8M", 64 * K, 1 * G, 0,
        "Bytes of those stanzas at most, likewise."),
    NUM(INT, "s2s.max_connections", s2s.max_connections, "10000", 1, 1000000, 0,
        "Server-to-server connections the s2s process holds at most, both ways."),
    NUM(INT, "s2s.max_connections_per_address", s2s.max_connections_per_address, "64", 1,
        1000000, 0,
        "Inbound connections from one remote address (IPv6: one /64) at most; one more is\n"
        "closed with policy-violation. A large server opens one or two per domain pair."),
    NUM(INT, "s2s.multicast_max", s2s.multicast_max, "1000", 0, 10000, 0,
        "XEP-0033 multicast between servers: a presence broadcast to several contacts on\n"
        "a remote server that advertises it goes there as one stanza per this many\n"
        "recipients at most, fewer when the server advertises a lower limit (one that\n"
        "advertises none gets 20, what ejabberd accepts from remote servers unless told\n"
        "otherwise); a multicast stanza from a peer may name this many local recipients\n"
        "at most (more: not-acceptable), which our disco#info advertises. 0: no\n"
        "multicast, neither sent, accepted nor advertised."),
    BOOL("s2s.bidi", s2s.bidi, "true", RESTART,
         "Bidirectional server-to-server streams (XEP-0288): one TCP connection carries\n"
         "stanzas both ways. Offered to peers that connect (accepted before or after\n"
         "authentication), requested from peers that offer it; a peer's bidirectional\n"
         "stream then also carries our stanzas to it, so no second connection is made.\n"
         "false: one connection per direction, as without XEP-0288."),
    NUM(SIZE, "shm.ring_size", shm.ring_size, "1M", 64 * K, 1 * G, POW2 | RESTART,
        "Bytes of each shared-memory ring between a front-end thread and a router\n"
        "shard (one ring per pair and direction). At least twice c2s.max_stanza_size."),
    NUM(INT, "roster.max_items", roster.max_items, "1000", 1, 100000, 0,
        "Contacts one roster holds at most; adding more is refused (not-allowed)."),
    NUM(SIZE, "roster.max_item_bytes", roster.max_item_bytes, "4K", 256, 1 * M, 0,
        "Bytes of one contact's name and groups together; a roster set with more is\n"
        "refused with not-acceptable (RFC 6121 §2.3.3)."),
    NUM(SIZE, "roster.max_bytes", roster.max_bytes, "1M", 4 * K, 1 * G, 0,
        "Bytes of one roster: every contact's JID, name and groups, hidden ones (a\n"
        "stranger's subscription request) too. A change past it is refused like a\n"
        "contact past roster.max_items."),
    NUM(INT, "offline.max_messages", offline.max_messages, "100", 0, 100000, 0,
        "Messages stored for a user who is offline, at most; more are bounced with an\n"
        "error (service-unavailable). 0 stores none."),
    NUM(SIZE, "offline.max_bytes", offline.max_bytes, "1M", 0, 1 * G, 0,
        "Bytes of stanzas stored for one user who is offline, at most; more are bounced\n"
        "like messages past offline.max_messages."),
    NUM(INT, "offline.sender_share", offline.sender_share, "50", 1, 100, 0,
        "Percent of offline.max_messages and offline.max_bytes that the messages of one\n"
        "sender may take in one user's storage, so that nobody can fill a mailbox (or\n"
        "everyone's) and keep the others out. Over it the sender's messages bounce."),
    NUM(INT, "blocking.max_items", blocking.max_items, "1000", 1, 10000, 0,
        "JIDs one user's blocklist (XEP-0191) holds at most; a block request that would\n"
        "go past it is refused whole (not-allowed)."),
    NUM(INT, "pep.max_nodes", pep.max_nodes, "64", 1, 10000, 0,
        "PEP nodes (XEP-0163) one user may have; publishing to one more is refused with\n"
        "resource-constraint (and <max-nodes-exceeded/>, XEP-0060)."),
    NUM(INT, "pep.max_items", pep.max_items, "256", 1, 100000, 0,
        "Items one PEP node keeps at most: what pubsub#max_items 'max' means (bookmarks,\n"
        "XEP-0402). A node configured for more is refused with not-acceptable (or\n"
        "precondition-not-met through publish-options); past its max_items the oldest\n"
        "item goes."),
    NUM(SIZE, "pep.max_item_bytes", pep.max_item_bytes, "192K", 1 * K, 16 * M, 0,
        "Bytes of one published item: an avatar's data (XEP-0084, base64) or an OMEMO\n"
        "bundle must fit, and c2s.max_stanza_size bounds what a client can send anyway.\n"
        "A larger one is refused with not-acceptable and <payload-too-big/> (XEP-0060)."),
    NUM(SIZE, "pep.max_bytes", pep.max_bytes, "4M", 4 * K, 1 * G, 0,
        "Bytes of one user's PEP items in all (kept in memory while the user is in use);\n"
        "a publish past it is refused with resource-constraint."),
    NUM(INT, "pep.max_caps", pep.max_caps, "4096", 16, 1000000, 0,
        "Entity capabilities (XEP-0115: a 'ver' and its features) each router shard\n"
        "remembers, verified, to know which resources want which PEP notifications; past\n"
        "it the least recently used is forgotten (and asked again when seen)."),
    NUM(INT, "pep.max_contacts", pep.max_contacts, "2000", 16, 1000000, 0,
        "Contacts' available resources (with their capabilities) one user's PEP service\n"
        "keeps track of, to send them the last items when they come online; past it one\n"
        "more is not tracked (it can still fetch items)."),
    NUM(INT, "private.max_elements", private_xml.max_elements, "64", 1, 10000, 0,
        "Elements (one per namespace) one user may keep in private XML storage\n"
        "(XEP-0049); one more is refused with resource-constraint."),
    NUM(SIZE, "private.max_bytes", private_xml.max_bytes, "64K", 1 * K, 16 * M, 0,
        "Bytes of one element in private XML storage; a larger one is refused with\n"
        "not-acceptable."),
    NUM(SIZE, "vcard.max_bytes", vcard.max_bytes, "192K", 1 * K, 16 * M, 0,
        "Bytes of one user's vCard (XEP-0054, a photo included); a larger one is refused\n"
        "with not-acceptable."),
    ADDR("admin.listen", admin.listen, "", EMPTY | RESTART,
         "Where the supervisor answers HTTP GET /health (200 while every process runs),\n"
         "/ready (200 while the node serves and is not draining: a load balancer's check)\n"
         "and /metrics (Prometheus text format). No authentication: keep it on loopback or\n"
         "a management network. \"\" disables it."),
    NUM(INT, "admin.max_connections", admin.max_connections, "16", 1, 1000, RESTART,
        "Admin connections open at once; one more gets 503 and is closed."),
    NUM(SIZE, "admin.max_request", admin.max_request, "8K", 1 * K, 1 * M, 0,
        "Bytes of an admin request's line and headers; a longer one gets 431."),
    NUM(DURATION, "admin.timeout", admin.timeout, "10", 1, 600, 0,
        "Time an admin connection has to send its request and read the answer; then it\n"
        "gets 408 (when its request is not complete) and is closed."),
    NUM(DURATION, "admin.drain_grace", admin.drain_grace, "30", 0, 86400, 0,
        "After `starlingctl drain` (or SIGUSR1 to the supervisor) /ready fails at once and\n"
        "no new client logs in; after this long every client stream still open is ended\n"
        "with see-other-host (with admin.drain_redirect) or system-shutdown. The node\n"
        "keeps running until stopped; `starlingctl undrain` (or SIGUSR2) serves again."),
    STR("admin.drain_redirect", admin.drain_redirect, "", 0, 1023, 0,
        "\"host:port\" (a name, an IPv4 address or an [IPv6] one) that draining sends\n"
        "clients to with <see-other-host/> (RFC 6120 §4.9.3.19); \"\": system-shutdown."),
    STR("admin.pid_file", admin.pid_file, "", 0, 4095, PATH | RESTART,
        "A file the supervisor writes its process id to at start (and removes at exit),\n"
        "where `starlingctl drain` and `undrain` find it. \"\": none."),
    BOOL("mam.enabled", mam.enabled, "true", 0,
         "The message archive (XEP-0313): every chat message (and normal one with a body)\n"
         "a user sends or receives is kept, with a XEP-0359 stanza-id added to the copy\n"
         "delivered, and the user's clients page through it. false: nothing archived,\n"
         "no stanza-id added, and urn:xmpp:mam:2 is not served or advertised."),
    ENUM("mam.default", mam.dflt, "always", config_mam_defaults, 0,
         "What is archived for a user who set no preference (XEP-0313 §6.1): always,\n"
         "never, or roster (only messages with contacts in the user's roster)."),
    NUM(INT, "mam.max_page", mam.max_page, "50", 1, STORE_MAM_PAGE_MAX, 0,
        "Messages of one page of an archive query; a larger RSM <max/> is lowered to\n"
        "it (XEP-0059 §2.1 lets the server), and a query without <max/> gets this many."),
    NUM(DURATION, "mam.retention", mam.retention, "365d", 0, 36500u * 86400u, 0,
        "How long an archived message is kept; older ones are not returned, and the\n"
        "retention sweep deletes them. 0: for ever."),
    NUM(DURATION, "mam.sweep_interval", mam.sweep_interval, "1h", 1, 86400, 0,
        "Time between two retention sweeps; a sweep deletes in chunks of 10000 rows, one\n"
        "chunk a second, until nothing is older than mam.retention."),
    NUM(INT, "mam.batch", mam.batch, "256", 1, STORE_MAM_BATCH_MAX, 0,
        "Archive rows one store request writes (one transaction) at most. A shard writes\n"
        "its rows off the routing path: while one request is under way, the next rows\n"
        "wait and go together in the next."),
    NUM(INT, "mam.max_queue", mam.max_queue, "20000", 1, 1000000, 0,
        "Archive rows one shard holds while the store is busy, at most. Past it (a store\n"
        "that cannot keep up) messages are still delivered but not archived: each one is\n"
        "logged (rate-limited) with the count so far, and the count again at exit."),
    NUM(INT, "mam.max_prefs", mam.max_prefs, "1000", 0, STORE_MAM_PREFS_MAX, 0,
        "JIDs of one user's always and never lists together; archive preferences with\n"
        "more are refused (policy-violation)."),
    BOOL("muc.enabled", muc.enabled, "true", RESTART,
         "Multi-user chat (XEP-0045) at muc.domain, listed in the domain's disco#items."),
    STR("muc.domain", muc.domain, "", 0, 1023, RESTART,
        "The chat service's domain, in normal form; rooms are room@muc.domain. \"\":\n"
        "conference.<domain>. Clients reach it through this server; remote servers\n"
        "through s2s, where it is a server of its own: streams from and to it, dialback\n"
        "as it, and SASL EXTERNAL when the certificate names it (gencert does)."),
    NUM(INT, "muc.max_rooms", muc.max_rooms, "10000", 1, 10000000, 0,
        "Rooms one router shard holds at once (rooms spread over the shards like users);\n"
        "creating one more is refused with resource-constraint."),
    NUM(INT, "muc.max_occupants", muc.max_occupants, "2000", 1, 1000000, 0,
        "Occupants of one room at most, and the largest max occupants an owner may\n"
        "configure; one more is refused with service-unavailable (XEP-0045 §7.2.9)."),
    NUM(INT, "muc.max_affiliations", muc.max_affiliations, "10000", 1, 1000000, 0,
        "Affiliations (owners, admins, members, outcasts) one room keeps; one more is\n"
        "refused with resource-constraint."),
    NUM(INT, "muc.history", muc.history, "20", 0, 10000, 0,
        "Groupchat messages a room keeps to send to a new occupant (XEP-0045 §7.2.15)."),
    NUM(SIZE, "muc.max_history_bytes", muc.max_history_bytes, "256K", 0, 64 * M, 0,
        "Bytes of the messages one room keeps for history; the oldest go first."),
    NUM(SIZE, "muc.max_nick_bytes", muc.max_nick_bytes, "128", 1, 1023, 0,
        "Bytes of an occupant's nickname; a longer one is refused with not-acceptable."),
    NUM(SIZE, "muc.max_subject_bytes", muc.max_subject_bytes, "4K", 1, 1 * M, 0,
        "Bytes of a room's subject; a longer one is refused with not-acceptable."),
    NUM(INT, "muc.max_listed", muc.max_listed, "100", 1, STORE_MUC_LIST_MAX, 0,
        "Rooms the service's disco#items lists at most (XEP-0045 §6.3): the public\n"
        "persistent rooms, from the store, in JID order; those past it are not listed."),
};

#undef RESTART
#undef POW2
#undef EMPTY
#undef PATH

const size_t config_table_len = sizeof config_table / sizeof config_table[0];

/* Writes a number as the file would: with the largest exact binary suffix for sizes. */
void config_show_num(char *buf, size_t n, const struct config_directive *d, uint64_t v)
{
    if (d->type == CONFIG_T_SIZE && v) {
        if (v % G == 0) {
            snprintf(buf, n, "%lluG", (unsigned long long)(v / G));
            return;
        }
        if (v % M == 0) {
            snprintf(buf, n, "%lluM", (unsigned long long)(v / M));
            return;
        }
        if (v % K == 0) {
            snprintf(buf, n, "%lluK", (unsigned long long)(v / K));
            return;
        }
    }
    snprintf(buf, n, "%llu", (unsigned long long)v);
}
