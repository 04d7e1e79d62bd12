/*
 * config: starling's configuration file, read into an immutable snapshot.
 *
 * The file is libconfig syntax (`name = value;`, groups `c2s = { threads = 4; };`,
 * `#` comments). What a name means comes from one table of directives in config_table.c:
 * dotted name, type, default, range and the field of struct config it fills. Adding a
 * directive is a field here and a line in that table; the loader, the error messages,
 * the sample file and the reload check follow from it. Unknown names, values of the
 * wrong type and values out of range are errors naming file:line and the key:
 *     var/starling.conf:12: c2s.threads: 65 is out of range 0..64
 *     var/starling.conf:7: unknown key 'c2s.thraeds' (did you mean 'c2s.threads'?)
 * Every directive has a default, so an empty file (or config_defaults()) is a working
 * single-node configuration on localhost.
 *
 * File names (storage.path, c2s.certificate, c2s.key: the directives the sample marks
 * "a file name") may be relative. config_load() resolves them against the folder of the
 * file it reads, made absolute, so a snapshot loaded from a file holds absolute names
 * whatever the working directory (`starlingctl --config /srv/x/starling.conf users`
 * works from anywhere, and the defaults put everything beside the file). Those of
 * config_defaults() stay relative, to the working directory.
 *
 * Value syntax beyond libconfig's: a size is bytes, or a string with a K, M or G suffix
 * (binary: "256K"); a duration is seconds, or a string with an s, m, h or d suffix
 * ("5m"); an address is "IPv4:port" or "[IPv6]:port" (literals only: nothing is resolved
 * at start-up), and "" where the directive allows it means disabled. A list is a libconfig
 * array of strings, `[ "a", "b" ]` (or a list, `( "a", "b" )`), each item of the
 * directive's item type, with at most the directive's maximum of items and no item given
 * twice; `[]` and "" are the empty list. A route, as s2s.routes lists them, is
 * "domain=IPv4:port" or "domain=[IPv6]:port", the domain in normal form.
 *
 * Snapshots and reload. config_load() builds a new snapshot and never changes one; the
 * caller holds a reference and drops it with config_free(). On SIGHUP the supervisor
 * loads the file again; if that fails it keeps the old snapshot and logs the error. If
 * it succeeds, it asks config_changed(old, new, true) whether a directive that only
 * takes effect at start-up changed (threads, shards, listeners, storage...) and says
 * so; then it signals its children, and each child process re-reads the same file
 * itself (nothing is passed through shared memory). Inside a process, the thread that
 * loaded the new snapshot hands a reference (config_ref()) to each thread through that
 * thread's own queue; a thread drops its old reference when it adopts the new one, so
 * no thread ever sees a snapshot change under it and no lock is needed to read one.
 *
 * Threads: every function may be called from any thread; a snapshot is read-only.
 */
#ifndef STARLING_CONFIG_H
#define STARLING_CONFIG_H

#include "common/core/log.h"
#include "common/net/addr.h"
#include "common/store/store.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* An address to listen on. len == 0 means disabled (configured as ""). */
struct config_addr {
    char text[64]; /* as configured, e.g. "[::1]:5222" */
    socklen_t len; /* of the sockaddr in addr */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
};

/* A static route (s2s.routes): the peer serving `domain` is at addr, whatever DNS says. */
struct config_route {
    const char *domain; /* in normal form (jid_prep_domain()), owned by the snapshot */
    struct config_addr addr;
};

/* A list directive's value: n items of the directive's item type, owned by the snapshot
 * (items is NULL when n is 0). */
struct config_list {
    uint32_t n;
    union {
        void *items;
        struct config_addr *addrs;   /* a list of addresses */
        struct config_route *routes; /* a list of routes */
        struct net_prefix *prefixes; /* a list of address prefixes */
    };
};

/* Who may open a connection with a PROXY protocol header (common/net/proxy.h), and the
 * bounds on it: a front end's, which the front-end layer reads (fe_thread.proxy). */
struct config_proxy {
    struct config_list from; /* of struct net_prefix; empty: nobody */
    uint32_t timeout;        /* seconds from the connection to the header's end */
    uint32_t max_header;     /* bytes of a v2 header at most */
};

/* The WebSocket opening handshake's policy (common/net/ws.h): a front end's, which the
 * front-end layer reads (fe_thread.ws_cfg). */
struct config_ws {
    const char *origins;  /* Origin values allowed, separated by spaces; "": any */
    uint32_t max_request; /* bytes of the HTTP request at most */
};

enum config_resource_conflict {
    CONFIG_CONFLICT_REPLACE, /* the older session is closed with <conflict/> */
    CONFIG_CONFLICT_REFUSE,  /* the newer bind request fails with <conflict/> */
};

/* The snapshot. Each field is documented in the directive table (config_table.c) and in the
 * sample file it generates (deploy/starling.conf.sample). Durations are seconds. */
/* cluster.discovery: the members from cluster.nodes, or from PostgreSQL's cluster_nodes. */
enum config_discovery { CONFIG_DISCOVERY_STATIC, CONFIG_DISCOVERY_POSTGRESQL };

struct config {
    const char *domain;
    struct {
        enum log_level level;
    } log;
    struct {
        enum store_backend backend;
        const char *path;
        const char *dsn;
        const char *password_file;
        uint32_t timeout;
        uint64_t cache_size;
    } storage;
    struct {
        uint32_t threads;
        struct config_addr listen, listen_tls;
        const char *certificate, *key;
        bool require_encryption, allow_plain_without_tls;
        uint32_t max_stanza_size;
        uint16_t max_depth, max_attrs, max_name;
        uint32_t idle_timeout, keepalive, handshake_timeout;
        uint32_t max_connections;
        enum config_resource_conflict resource_conflict;
        uint32_t scram_iterations;
        uint32_t max_stanza_size_preauth;
        uint32_t max_connections_per_address; /* 0: unlimited */
        uint32_t login_rate, login_burst;     /* per client address; rate 0: unlimited */
        uint32_t auth_failures_per_account, auth_failures_per_address, auth_failure_window;
        uint32_t max_plain_pending; /* per c2s thread */
        struct config_proxy proxy;
        struct config_addr websocket_listen, websocket_tls_listen;
        struct config_ws ws;
        uint32_t resume_timeout;        /* XEP-0198: seconds a dropped session waits; 0: none */
        uint32_t sm_max_unacked;        /* stanzas a stream keeps until its client acks */
        uint32_t sm_max_unacked_bytes;  /* ... and their bytes */
        uint32_t csi_max_queued;        /* XEP-0352: stanzas held for an inactive client */
    } c2s;
    struct {
        uint32_t shards;
        bool software_version;
        uint32_t max_sessions; /* per account */
        uint32_t max_directed; /* per session */
        uint32_t max_pending;  /* bytes of frames held per user while its state loads */
        uint64_t max_remote_unacked; /* bytes of copies of frames to s2s, per shard and thread */
    } router;
    struct {
        uint32_t threads;
        uint32_t max_dialback_pending; /* per stream */
        uint32_t max_domain_pairs;     /* per stream */
        uint32_t dialback_timeout;
        bool secure_auth;
        const char *ca_file, *ca_dir; /* trust roots for peers' certificates; "": none */
        struct config_list routes;      /* of struct config_route */
        struct config_list dns_servers; /* of struct config_addr; empty: /etc/resolv.conf */
        uint32_t dns_timeout, dns_tries;
        uint32_t dns_cache_size;                /* domains, per s2s thread */
        uint32_t dns_max_ttl, dns_negative_ttl; /* seconds */
        uint32_t dns_max_targets, dns_max_addresses;
        struct config_addr listen, listen_tls;
        bool require_encryption;
        uint32_t max_stanza_size;
        uint32_t connect_timeout, auth_timeout, idle_timeout;
        uint32_t max_queue, max_queue_bytes; /* per remote domain, while its stream is made */
        uint32_t max_connections, max_connections_per_address;
        uint32_t multicast_max; /* XEP-0033 recipients per stanza, both ways; 0: off */
        bool bidi;              /* XEP-0288 offered, accepted and requested */
    } s2s;
    struct {
        uint64_t ring_size;
    } shm;
    struct {
        uint32_t max_items;
        uint32_t max_item_bytes; /* a name and groups */
        uint32_t max_bytes;      /* every item's JID, name and groups */
    } roster;
    struct {
        uint32_t max_messages;
        uint32_t max_bytes;
        uint32_t sender_share; /* percent of both that one sender may take */
    } offline;
    struct {
        uint32_t max_items;
    } blocking;
    struct {
        uint32_t max_nodes;      /* per user */
        uint32_t max_items;      /* per node: what max_items 'max' means */
        uint32_t max_item_bytes; /* of one item's payload */
        uint32_t max_bytes;      /* of one user's items in all */
        uint32_t max_caps;       /* entity capabilities a shard remembers (XEP-0115) */
        uint32_t max_contacts;   /* contacts' resources a user's service watches */
    } pep;
    struct {
        uint32_t max_elements; /* per user */
        uint32_t max_bytes;    /* of one element */
    } private_xml;
    struct {
        uint32_t max_bytes;
    } vcard;
    struct {
        const char *node;          /* this node's name; "": no cluster */
        struct config_addr listen; /* this router's link socket (NN_PULL) */
        struct config_list nodes;  /* of struct config_route: the other nodes, name=addr */
        unsigned discovery;        /* enum config_discovery */
        uint32_t heartbeat, dead_after; /* seconds */
        uint64_t max_link_bytes;   /* what waits for one slow link, per node */
        const char *status_file;   /* written each second; starlingctl cluster reads it */
    } cluster;
    struct {
        struct config_addr listen; /* the HTTP admin listener (common/admin/); "": none */
        uint32_t max_connections, max_request, timeout;
        uint32_t drain_grace;
        const char *drain_redirect; /* "host:port" for <see-other-host/>; "": none */
        const char *pid_file;       /* "": none */
    } admin;
    struct {
        bool enabled;
        unsigned dflt;            /* enum store_mam_default: the preference of a user who set none */
        uint32_t max_page;        /* messages of one page; a larger RSM <max/> is clamped */
        uint32_t retention;       /* seconds a message is kept; 0: for ever */
        uint32_t sweep_interval;  /* seconds between retention sweeps */
        uint32_t batch;           /* rows of one store request */
        uint32_t max_queue;       /* rows a shard holds for the store at most */
        uint32_t max_prefs;       /* JIDs of one user's always and never lists */
    } mam;
    struct {
        bool enabled;
        const char *domain;          /* resolved at load: "" becomes conference.<domain> */
        uint32_t max_rooms;          /* per router shard */
        uint32_t max_occupants;      /* per room */
        uint32_t max_affiliations;   /* per room */
        uint32_t history;            /* messages kept per room */
        uint32_t max_history_bytes;  /* per room */
        uint32_t max_nick_bytes;
        uint32_t max_subject_bytes;
        uint32_t max_listed;         /* rooms of the service's disco#items */
    } muc;

    const char *path;       /* the file this snapshot was read from; NULL for the defaults */
    _Atomic unsigned refs_; /* private: see config_ref() */
};

/*
 * Reads `path` into a new snapshot with one reference, stored in *out. On failure
 * returns -errno (-ENOENT and friends when the file cannot be read, -EINVAL for any
 * error in it, -ENOMEM) and writes one line saying where and why into err (always
 * NUL-terminated when errlen > 0); *out is then NULL. Blocks on file I/O: call it from a
 * main thread, not an event loop.
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* A snapshot of the defaults, with one reference; NULL when memory is short. */
struct config *config_defaults(void);

/* Takes another reference to c and returns it. */
const struct config *config_ref(const struct config *c);

/* Drops a reference; the last one frees the snapshot. NULL is ignored. */
void config_free(const struct config *c);

/* A snapshot a reload replaced: threads may still be reading it, so it is kept until
 * config_retired_free() once they have ended (a reload costs one snapshot's memory).
 * The process's main thread only. */
void config_retire(const struct config *old);
void config_retired_free(void);

/*
 * The name of the first directive whose value differs between a and b, or NULL when
 * none does. With restart_only, only directives that need a restart to take effect are
 * compared: a non-NULL answer means the reload cannot apply everything.
 */
const char *config_changed(const struct config *a, const struct config *b, bool restart_only);

/*
 * Writes the sample configuration: every directive at its default, each with a comment
 * saying what it does and what values it takes. deploy/starling.conf.sample is its
 * output, and `make run` writes var/starling.conf with it when there is none. Returns 0
 * or -errno of the stream.
 */
int config_write_sample(FILE *f);

/* Is d[0..len) the chat service's domain (muc.domain, when muc.enabled)? Front ends and
 * the router treat it as one of ours. */
static inline bool config_is_muc(const struct config *c, const char *d, size_t len)
{
    return c->muc.enabled && strlen(c->muc.domain) == len && !memcmp(d, c->muc.domain, len);
}

#endif
