/*
 * ctl: the messages the supervisor and its children exchange over the socketpair each
 * child inherits (SOCK_SEQPACKET, one message per packet). Types only: a cross-process
 * ABI between binaries of one build.
 *
 * The dance when a process dies (ring.h, "Reset"): the supervisor reaps it, tells each
 * survivor that shares rings with it (CTL_PEER_DOWN), waits for every CTL_PEER_RESET,
 * then starts the replacement; once that one says CTL_READY, the survivors hear
 * CTL_PEER_UP (a c2s then registers its sessions again with the new router).
 */
#ifndef STARLING_CTL_H
#define STARLING_CTL_H

#include <stdint.h>
#include <sys/socket.h>

enum ctl_type {
    CTL_READY = 1,   /* child -> supervisor: attached to the segment, serving */
    CTL_PEER_DOWN,   /* supervisor -> child: arg (enum ctl_role) died; reset shared rings */
    CTL_PEER_RESET,  /* child -> supervisor: done */
    CTL_PEER_UP,     /* supervisor -> child: arg's replacement is serving */
    CTL_SHUTDOWN,    /* supervisor -> child: drain and exit (c2s: system-shutdown) */
    CTL_RELOAD,      /* supervisor -> child: re-read what can change at run time */
    CTL_PEER_BROKEN, /* child -> supervisor: arg's process wrote a corrupt frame: replace it */
    CTL_DRAIN,       /* supervisor -> c2s: arg (enum ctl_drain) is what to refuse from now on */
    CTL_REHOME,      /* router -> supervisor -> c2s: the cluster lost a node; register every
                        session again with its home (router/link.h) */
    CTL_STORE,       /* router -> supervisor: arg 1: the store (PostgreSQL) has been unreachable
                        for cluster.dead_after, so the node takes no new logins (not ready,
                        c2s at CTL_DRAIN_STORE); 0: reachable again */
};

/* Draining (`starlingctl drain`, common/admin/): LOGINS refuses new logins, ALL also ends
 * every client stream (after admin.drain_grace); OFF serves again. STORE refuses new
 * logins as LOGINS does, for another reason: the store is unreachable (CTL_STORE). */
enum ctl_drain { CTL_DRAIN_OFF, CTL_DRAIN_LOGINS, CTL_DRAIN_ALL, CTL_DRAIN_STORE };

enum ctl_role { CTL_ROLE_ROUTER, CTL_ROLE_C2S, CTL_ROLE_S2S };

struct ctl_msg {
    uint32_t type; /* enum ctl_type */
    uint32_t arg;
};

/* Tells the supervisor through the child's control socket, from any thread (one
 * datagram per call on a SOCK_SEQPACKET socket never interleaves). */
static inline void ctl_tell(int fd, uint32_t type, uint32_t arg)
{
    struct ctl_msg m = {type, arg};
    (void)!send(fd, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

#endif
