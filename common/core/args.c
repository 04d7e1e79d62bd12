#include "common/core/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fd_arg(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1 << 20)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

int args_parse(struct args *a, int argc, char **argv, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->shm_fd = a->ctl_fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            snprintf(err, errlen, "%s needs a value", k);
            return -EINVAL;
        }
        i++;
        if (!strcmp(k, "--config")) {
            a->config = v;
        } else if (!strcmp(k, "--shm-fd") || !strcmp(k, "--ctl-fd")) {
            if (fd_arg(v, k[2] == 's' ? &a->shm_fd : &a->ctl_fd) < 0) {
                snprintf(err, errlen, "%s: not a file descriptor: %s", k, v);
                return -EINVAL;
            }
        } else if (!strcmp(k, "--bell-fds")) {
            char tmp[16];
            const char *p = v;
            while (*p) {
                size_t n = strcspn(p, ",");
                if (n == 0 || n >= sizeof tmp || a->nbells == ARGS_MAX_BELLS) {
                    snprintf(err, errlen, "--bell-fds: bad list: %s", v);
                    return -EINVAL;
                }
                memcpy(tmp, p, n);
                tmp[n] = '\0';
                if (fd_arg(tmp, &a->bell_fds[a->nbells++]) < 0) {
                    snprintf(err, errlen, "--bell-fds: not a file descriptor: %s", tmp);
                    return -EINVAL;
                }
                p += n + (p[n] == ',');
            }
        } else {
            snprintf(err, errlen, "unknown option %s", k);
            return -EINVAL;
        }
    }
    if (!a->config || a->shm_fd < 0 || a->ctl_fd < 0 || a->nbells == 0) {
        snprintf(err, errlen, "usage: --config FILE --shm-fd N --ctl-fd N --bell-fds A,B,...");
        return -EINVAL;
    }
    return 0;
}
