/*
 * args: the command line the supervisor gives its children, and which they alone use:
 *   --config FILE --shm-fd N --ctl-fd N --bell-fds A,B,C...
 * The fds are inherited across exec; bell_fds[i] is the eventfd of bell i (shm/topo.h).
 */
#ifndef STARLING_ARGS_H
#define STARLING_ARGS_H

#include <stddef.h>

#define ARGS_MAX_BELLS 1024

struct args {
    const char *config;
    int shm_fd, ctl_fd;
    int nbells;
    int bell_fds[ARGS_MAX_BELLS];
};

/* 0, or -EINVAL with a message in err. */
int args_parse(struct args *a, int argc, char **argv, char *err, size_t errlen);

#endif
