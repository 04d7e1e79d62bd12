#include "bench/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int proc_parse_stat(const char *line, pid_t *ppid, uint64_t *utime, uint64_t *stime,
                    uint64_t *rss_pages)
{
    /* The command name ends at the last ')': it may contain anything. */
    const char *p = strrchr(line, ')');
    if (!p)
        return -EINVAL;
    p++;
    /* Fields from 3 (state) on; we want 4 (ppid), 14 (utime), 15 (stime), 24 (rss). */
    unsigned long long f[25] = {0};
    int field = 3;
    while (*p && field <= 24) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *end;
        if (field == 3) {
            p++; /* the state letter */
        } else {
            f[field] = strtoull(p, &end, 10);
            if (end == p)
                return -EINVAL;
            p = end;
        }
        while (*p && *p != ' ')
            p++;
        field++;
    }
    if (field <= 24)
        return -EINVAL;
    *ppid = (pid_t)f[4];
    *utime = f[14];
    *stime = f[15];
    *rss_pages = f[24];
    return 0;
}

struct pinfo {
    pid_t pid, ppid;
    uint64_t ticks, rss_pages;
};

static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err)
        return err;
    buf[n] = '\0';
    return (int)n;
}

static uint64_t rss_anon(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_file(path, buf, sizeof buf) < 0)
        return 0;
    const char *p = strstr(buf, "\nRssAnon:");
    return p ? strtoull(p + 9, NULL, 10) * 1024 : 0;
}

int proc_sample(const pid_t *roots, unsigned n, struct proc_sample *out)
{
    struct pinfo *ps = NULL;
    size_t np = 0, cap = 0;
    DIR *d = opendir("/proc");
    int rc = -ESRCH;
    memset(out, 0, sizeof *out);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300], line[1024];
        snprintf(path, sizeof path, "/proc/%.255s/stat", de->d_name);
        if (read_file(path, line, sizeof line) < 0)
            continue; /* gone meanwhile */
        struct pinfo pi = {.pid = (pid_t)atoi(de->d_name)};
        uint64_t ut, st;
        if (proc_parse_stat(line, &pi.ppid, &ut, &st, &pi.rss_pages) < 0)
            continue;
        pi.ticks = ut + st;
        if (np == cap) {
            size_t nc = cap ? cap * 2 : 512;
            struct pinfo *t = realloc(ps, nc * sizeof *t);
            if (!t) {
                rc = -ENOMEM;
                goto out;
            }
            ps = t;
            cap = nc;
        }
        ps[np++] = pi;
    }
    /* Mark the roots, then whoever has a marked parent, until nothing changes: process
     * trees of a server are a few levels deep. */
    bool *in = calloc(np ? np : 1, sizeof *in);
    if (!in) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        for (unsigned k = 0; k < n; k++)
            if (ps[i].pid == roots[k])
                in[i] = true;
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < np; i++) {
            if (in[i])
                continue;
            for (size_t j = 0; j < np; j++)
                if (in[j] && ps[j].pid == ps[i].ppid) {
                    in[i] = grew = true;
                    break;
                }
        }
    }
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < np; i++) {
        if (!in[i])
            continue;
        out->nprocs++;
        out->cpu += (double)ps[i].ticks / (double)hz;
        out->rss += ps[i].rss_pages * (uint64_t)page;
        out->rss_anon += rss_anon(ps[i].pid);
    }
    free(in);
    rc = out->nprocs ? 0 : -ESRCH;
out:
    free(ps);
    closedir(d);
    return rc;
}
