/* secret: per-node secret files (see secret.h). */
#include "common/auth/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

static int read_secret(const char *path, uint8_t out[SECRET_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, out, SECRET_LEN);
    int err = n < 0 ? -errno : n == SECRET_LEN ? 0 : -EIO;
    close(fd);
    return err;
}

int secret_load(const char *db_path, const char *suffix, uint8_t out[SECRET_LEN])
{
    char path[4096], tmp[4096 + 16];
    if ((size_t)snprintf(path, sizeof path, "%s%s", db_path, suffix) >= sizeof path)
        return -ENAMETOOLONG;
    int err = read_secret(path, out);
    if (err != -ENOENT)
        return err; /* ours, or one that is there and not ours to replace */
    if (getrandom(out, SECRET_LEN, 0) != SECRET_LEN)
        return -EIO;
    snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
    unlink(tmp); /* left by a process of the same pid that died here */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    bool ok = write(fd, out, SECRET_LEN) == SECRET_LEN && fsync(fd) == 0;
    close(fd);
    /* link() fails when another process made the file first: theirs stands, we read it. */
    if (!ok || link(tmp, path) < 0) {
        unlink(tmp);
        return read_secret(path, out) == 0 ? 0 : -EIO;
    }
    unlink(tmp);
    return 0;
}
