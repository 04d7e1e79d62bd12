/* Tests of common/auth/secret.c: made once, then read back; never overwritten. */
#include "common/auth/secret.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/starling-secret-XXXXXX";

static void made_once_test(void)
{
    char db[256], path[300];
    uint8_t a[SECRET_LEN], b[SECRET_LEN], zero[SECRET_LEN] = {0};
    struct stat st;

    snprintf(db, sizeof db, "%s/starling.db", dir);
    snprintf(path, sizeof path, "%s.dialback", db);
    CHECK_INT(secret_load(db, ".dialback", a), ==, 0);
    CHECK(memcmp(a, zero, sizeof a) != 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == SECRET_LEN);
    CHECK_INT(secret_load(db, ".dialback", b), ==, 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* another suffix is another secret */
    CHECK_INT(secret_load(db, ".other", b), ==, 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* no temporary file is left behind */
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
    CHECK(access(tmp, F_OK) != 0);
    unlink(path);
    snprintf(path, sizeof path, "%s.other", db);
    unlink(path);
}

static void refused_test(void)
{
    char db[256], path[300];
    uint8_t a[SECRET_LEN];

    /* A file of another length is not ours to replace. */
    snprintf(db, sizeof db, "%s/short.db", dir);
    snprintf(path, sizeof path, "%s.dialback", db);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && write(fd, "short", 5) == 5);
    close(fd);
    CHECK_INT(secret_load(db, ".dialback", a), ==, -EIO);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 5);
    unlink(path);

    /* What cannot be read is reported as it is, not as a file to make (a folder here;
     * an unreadable file alike, which root's tests cannot make). */
    snprintf(db, sizeof db, "%s/folder", dir);
    snprintf(path, sizeof path, "%s.dialback", db);
    CHECK(mkdir(path, 0700) == 0);
    CHECK_INT(secret_load(db, ".dialback", a), ==, -EISDIR);
    rmdir(path);

    /* A folder that does not exist. */
    snprintf(db, sizeof db, "%s/none/x.db", dir);
    CHECK_INT(secret_load(db, ".dialback", a), ==, -ENOENT);

    char longname[5000];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_INT(secret_load(longname, ".dialback", a), ==, -ENAMETOOLONG);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(made_once_test);
    RUN(refused_test);
    rmdir(dir);
    return test_done("common/auth/secret");
}
