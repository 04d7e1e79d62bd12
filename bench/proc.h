/*
 * proc: the CPU time and memory of the server under test, read from /proc, so that a run
 * reports server CPU per message and memory per connection beside its own figures.
 *
 * A sample covers the given processes and all their descendants, found afresh each time
 * (the starling supervisor forks c2s and router and may restart them; prosody is one
 * process; ejabberd runs beam.smp under a shell script): whatever the server is made of,
 * give its top process. CPU is utime + stime of every thread of those processes; memory
 * is their resident set (RSS) and its anonymous part (RssAnon: heap and stacks, without
 * mapped files), summed. Processes that exit between two samples take their CPU time
 * with them: keep the server stable during a run.
 *
 * Called by the control thread about once a second; a sample reads every /proc/<pid>/stat
 * once (a few hundred small files on a test box, about a millisecond).
 */
#ifndef STARLING_BENCH_PROC_H
#define STARLING_BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

struct proc_sample {
    double cpu;        /* seconds of CPU, user + system */
    uint64_t rss;      /* bytes */
    uint64_t rss_anon; /* bytes */
    unsigned nprocs;   /* processes found: the roots still alive and their descendants */
};

/* Samples roots[0..n) and their descendants. 0, or -ESRCH when none is alive. */
int proc_sample(const pid_t *roots, unsigned n, struct proc_sample *out);

/* The fields of one /proc/<pid>/stat line that proc_sample needs; the command name in
 * parentheses may hold spaces and parentheses itself. 0 or -EINVAL. */
int proc_parse_stat(const char *line, pid_t *ppid, uint64_t *utime, uint64_t *stime,
                    uint64_t *rss_pages);

#endif
