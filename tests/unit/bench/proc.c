/*
 * Tests of bench/proc.c: /proc/<pid>/stat lines (a command name with spaces and
 * parentheses, a short line), and a live sample of this process and a child of it.
 */
#include "bench/proc.h"
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void parse_test(void)
{
    pid_t ppid;
    uint64_t ut, st, rss;
    const char *line = "4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 1000 0 0 0 "
                       "321 123 0 0 20 0 3 0 555 123456789 2048 18446744073709551615 1 1";
    CHECK_INT(proc_parse_stat(line, &ppid, &ut, &st, &rss), ==, 0);
    CHECK_INT(ppid, ==, 17);
    CHECK_INT(ut, ==, 321);
    CHECK_INT(st, ==, 123);
    CHECK_INT(rss, ==, 2048);
    CHECK_INT(proc_parse_stat("1 (init) S 0 1 1", &ppid, &ut, &st, &rss), ==, -EINVAL);
    CHECK_INT(proc_parse_stat("garbage", &ppid, &ut, &st, &rss), ==, -EINVAL);
}

static void live_test(void)
{
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    pid_t me = getpid();
    struct proc_sample s;
    CHECK_INT(proc_sample(&me, 1, &s), ==, 0);
    CHECK_INT(s.nprocs, ==, 2); /* this process and its child */
    CHECK(s.rss > 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    pid_t none = 0x3FFFFF; /* above any pid_max in use */
    CHECK_INT(proc_sample(&none, 1, &s), ==, -ESRCH);
}

int main(void)
{
    RUN(parse_test);
    RUN(live_test);
    return test_done("proc");
}
