/*
 * serve.c: a front-end process's main thread once its threads run: the supervisor's
 * control socket and the signals, which reach this thread only (the loops must never be
 * interrupted). CTL_DRAIN goes to every thread as FE_CTL_DRAIN; what draining means is
 * the front end's (c2s/stream.c).
 */
#include "common/fe/fe.h"
#include "common/core/ctl.h"
#include "common/core/log.h"

#include <errno.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

void fe_serve(int ctl_fd, int sfd, unsigned role, struct fe_thread *const *ts, unsigned n,
              void (*reload)(void *arg), void *arg)
{
    struct ctl_msg m = {CTL_READY, role};
    send(ctl_fd, &m, sizeof m, MSG_NOSIGNAL);
    for (;;) {
        struct pollfd pf[2] = {{ctl_fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            return;
        if (pf[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo == SIGTERM)
                return; /* SIGINT is the terminal's: the supervisor decides */
        }
        if (!(pf[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = recv(ctl_fd, &m, sizeof m, 0);
        if (got == 0 || (got < 0 && errno != EINTR))
            return; /* the supervisor is gone */
        if (got != (ssize_t)sizeof m)
            continue;
        if (m.type == CTL_SHUTDOWN)
            return;
        if (m.type == CTL_RELOAD) {
            reload(arg);
        } else if (m.type == CTL_PEER_DOWN && m.arg == CTL_ROLE_ROUTER) {
            LOG_WARN("the router went down: holding input until it is back");
            fe_request(ts, n, FE_CTL_ROUTER_DOWN);
            struct ctl_msg ack = {CTL_PEER_RESET, m.arg};
            send(ctl_fd, &ack, sizeof ack, MSG_NOSIGNAL);
        } else if (m.type == CTL_DRAIN) {
            for (unsigned i = 0; i < n; i++)
                ts[i]->next_drain = m.arg;
            fe_request(ts, n, FE_CTL_DRAIN);
            LOG_INFO("%s", m.arg == CTL_DRAIN_OFF      ? "serving again: logins accepted"
                           : m.arg == CTL_DRAIN_LOGINS ? "draining: new logins refused"
                           : m.arg == CTL_DRAIN_STORE  ? "storage unreachable: new logins refused"
                                                       : "draining: every stream ended");
        } else if (m.type == CTL_REHOME) {
            fe_request(ts, n, FE_CTL_REHOME);
        } else if (m.type == CTL_PEER_UP && m.arg == CTL_ROLE_ROUTER) {
            fe_request(ts, n, FE_CTL_ROUTER_UP);
            LOG_INFO("the router is back");
        }
    }
}
