/* fileops.c: the real disk behind struct store_fileops. */
#include "storage/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int neg_errno(void)
{
    return errno ? -errno : -EIO;
}

static int px_open(void *ctx, const char *path, int flags, unsigned mode)
{
    (void)ctx;
    int fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    return fd >= 0 ? fd : neg_errno();
}

static int px_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd) == 0 ? 0 : neg_errno();
}

static ssize_t px_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    (void)ctx;
    ssize_t n;
    do
        n = pread(fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : neg_errno();
}

static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    (void)ctx;
    ssize_t n;
    do
        n = pwrite(fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : neg_errno();
}

static int px_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    /* Never retried: after a failed fdatasync the kernel may have dropped
     * the dirty pages, so a second call can "succeed" without the data. */
    return fdatasync(fd) == 0 ? 0 : neg_errno();
}

static int px_ftruncate(void *ctx, int fd, uint64_t len)
{
    (void)ctx;
    return ftruncate(fd, (off_t)len) == 0 ? 0 : neg_errno();
}

static int px_fsize(void *ctx, int fd, uint64_t *size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return neg_errno();
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) == 0 ? 0 : neg_errno();
}

static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) == 0 ? 0 : neg_errno();
}

static int px_mkdir(void *ctx, const char *dir)
{
    (void)ctx;
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return neg_errno();
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    }
    return neg_errno();
}

static int px_sync_dir(void *ctx, const char *dir)
{
    (void)ctx;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return neg_errno();
    int rc = fsync(fd) == 0 ? 0 : neg_errno();
    close(fd);
    return rc;
}

static int px_list_dir(void *ctx, const char *dir, int (*fn)(void *arg, const char *name),
                       void *arg)
{
    (void)ctx;
    DIR *d = opendir(dir);
    if (d == NULL)
        return neg_errno();
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = fn(arg, de->d_name);
        if (rc != 0)
            break;
        errno = 0;
    }
    if (de == NULL && errno != 0)
        rc = neg_errno();
    closedir(d);
    return rc;
}

static int px_lock(void *ctx, int fd)
{
    (void)ctx;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    return errno == EWOULDBLOCK ? -EWOULDBLOCK : neg_errno();
}

static const void *px_map(void *ctx, int fd, uint64_t len)
{
    (void)ctx;
    if (len == 0 || len > SIZE_MAX)
        return NULL;
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void px_unmap(void *ctx, const void *addr, uint64_t len)
{
    (void)ctx;
    munmap((void *)addr, (size_t)len);
}

static const struct store_fileops posix_fileops = {
    .ctx = NULL,
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .fdatasync = px_fdatasync,
    .ftruncate = px_ftruncate,
    .fsize = px_fsize,
    .rename = px_rename,
    .unlink = px_unlink,
    .mkdir = px_mkdir,
    .sync_dir = px_sync_dir,
    .list_dir = px_list_dir,
    .lock = px_lock,
    .map = px_map,
    .unmap = px_unmap,
};

const struct store_fileops *store_fileops_posix(void)
{
    return &posix_fileops;
}
