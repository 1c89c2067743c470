/* memvfs.c: the in-memory filesystem of memvfs.h. */
#include "tests/support/memvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"

#define MEMVFS_FDS 256

/* File bytes use libc directly, so the failing allocator never hits the
 * filesystem itself. */
struct mbuf {
    uint8_t *data;
    size_t len, cap;
};

static void mb_reserve(struct mbuf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    b->data = realloc(b->data, cap);
    if (b->data == NULL)
        abort();
    b->cap = cap;
}

static void mb_append(struct mbuf *b, const void *p, size_t n)
{
    mb_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void mb_free(struct mbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

struct inode {
    struct mbuf data;
    struct mbuf durable;
    struct inode *next_all;
};

struct dent {
    char *path;
    struct inode *ino;
};

struct dir {
    struct dent *e;
    size_t n, cap;
};

struct memvfs {
    pthread_mutex_t mu;
    struct store_fileops ops;
    struct inode *all;
    struct dir cur, durable;
    struct inode *fds[MEMVFS_FDS];
    uint64_t mutations;
    uint64_t crash_at; /* 0: never */
    bool crashed;
    int64_t writes_left, syncs_left; /* -1: no fault */
    int write_err, sync_err;
    bool short_writes;
    struct test_rng rng;
};

static struct inode *inode_new(struct memvfs *v)
{
    struct inode *i = calloc(1, sizeof *i);
    i->next_all = v->all;
    v->all = i;
    return i;
}

static void buf_copy(struct mbuf *dst, const struct mbuf *src)
{
    dst->len = 0;
    mb_append(dst, src->data, src->len);
}

static struct dent *dir_find(struct dir *d, const char *path)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->e[i].path, path) == 0)
            return &d->e[i];
    return NULL;
}

static void dir_set(struct dir *d, const char *path, struct inode *ino)
{
    struct dent *e = dir_find(d, path);
    if (e) {
        e->ino = ino;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->e = realloc(d->e, d->cap * sizeof *d->e);
    }
    d->e[d->n++] = (struct dent){.path = strdup(path), .ino = ino};
}

static void dir_del(struct dir *d, const char *path)
{
    struct dent *e = dir_find(d, path);
    if (e == NULL)
        return;
    free(e->path);
    *e = d->e[--d->n];
}

static void dir_free(struct dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].path);
    free(d->e);
    memset(d, 0, sizeof *d);
}

/* Counts a mutating call; false if the filesystem is (now) crashed. */
static bool mutate(struct memvfs *v)
{
    if (v->crashed)
        return false;
    v->mutations++;
    if (v->crash_at && v->mutations >= v->crash_at) {
        v->crashed = true;
        return false;
    }
    return true;
}

static struct inode *fd_get(struct memvfs *v, int fd)
{
    return fd >= 0 && fd < MEMVFS_FDS ? v->fds[fd] : NULL;
}

/* LOCKED(v) { ... } runs the block holding v->mu. A break inside the block
 * leaves the inner loop only, so the outer loop's unlock always runs. */
#define LOCKED(v)                                                                          \
    for (int once_ = (pthread_mutex_lock(&(v)->mu), 1); once_;                             \
         once_ = (pthread_mutex_unlock(&(v)->mu), 0))                                      \
        for (int inner_ = 1; inner_; inner_ = 0)

static int mv_open(void *ctx, const char *path, int flags, unsigned mode)
{
    (void)mode;
    struct memvfs *v = ctx;
    int rc = -EIO;
    LOCKED(v)
    {
        if (v->crashed)
            break;
        struct dent *e = dir_find(&v->cur, path);
        if (e && (flags & O_CREAT) && (flags & O_EXCL)) {
            rc = -EEXIST;
            break;
        }
        if (!e && !(flags & O_CREAT)) {
            rc = -ENOENT;
            break;
        }
        if ((!e || (flags & O_TRUNC)) && !mutate(v))
            break;
        struct inode *ino;
        if (e) {
            ino = e->ino;
        } else {
            ino = inode_new(v);
            dir_set(&v->cur, path, ino);
        }
        if (flags & O_TRUNC)
            ino->data.len = 0;
        rc = -EMFILE;
        for (int fd = 3; fd < MEMVFS_FDS; fd++) {
            if (v->fds[fd] == NULL) {
                v->fds[fd] = ino;
                rc = fd;
                break;
            }
        }
    }
    return rc;
}

static int mv_close(void *ctx, int fd)
{
    struct memvfs *v = ctx;
    int rc = -EBADF;
    LOCKED(v)
    {
        if (fd_get(v, fd)) {
            v->fds[fd] = NULL;
            rc = 0;
        }
    }
    return rc;
}

static ssize_t mv_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    struct memvfs *v = ctx;
    ssize_t rc = -EBADF;
    LOCKED(v)
    {
        struct inode *i = fd_get(v, fd);
        if (v->crashed) {
            rc = -EIO;
        } else if (i) {
            size_t n = off >= i->data.len ? 0 : i->data.len - (size_t)off;
            if (n > len)
                n = len;
            if (n)
                memcpy(buf, i->data.data + off, n);
            rc = (ssize_t)n;
        }
    }
    return rc;
}

static ssize_t mv_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    struct memvfs *v = ctx;
    ssize_t rc = -EBADF;
    LOCKED(v)
    {
        struct inode *i = fd_get(v, fd);
        if (i == NULL)
            break;
        if (!mutate(v)) {
            rc = -EIO;
            break;
        }
        if (v->writes_left == 0) {
            rc = -v->write_err;
            break;
        }
        if (v->writes_left > 0)
            v->writes_left--;
        if (v->short_writes && len > 1)
            len = 1 + (size_t)test_rng_below(&v->rng, len);
        if (off + len > i->data.len) {
            size_t old = i->data.len;
            mb_reserve(&i->data, (size_t)(off + len) - old);
            memset(i->data.data + old, 0, (size_t)(off + len) - old);
            i->data.len = (size_t)(off + len);
        }
        memcpy(i->data.data + off, buf, len);
        rc = (ssize_t)len;
    }
    return rc;
}

static int mv_fdatasync(void *ctx, int fd)
{
    struct memvfs *v = ctx;
    int rc = -EBADF;
    LOCKED(v)
    {
        struct inode *i = fd_get(v, fd);
        if (i == NULL)
            break;
        if (!mutate(v)) {
            rc = -EIO;
            break;
        }
        if (v->syncs_left == 0) {
            rc = -v->sync_err;
            break;
        }
        if (v->syncs_left > 0)
            v->syncs_left--;
        buf_copy(&i->durable, &i->data);
        rc = 0;
    }
    return rc;
}

static int mv_ftruncate(void *ctx, int fd, uint64_t len)
{
    struct memvfs *v = ctx;
    int rc = -EBADF;
    LOCKED(v)
    {
        struct inode *i = fd_get(v, fd);
        if (i == NULL)
            break;
        if (!mutate(v)) {
            rc = -EIO;
            break;
        }
        if (len > i->data.len) {
            size_t old = i->data.len;
            mb_reserve(&i->data, (size_t)len - old);
            memset(i->data.data + old, 0, (size_t)len - old);
        }
        i->data.len = (size_t)len;
        rc = 0;
    }
    return rc;
}

static int mv_fsize(void *ctx, int fd, uint64_t *size)
{
    struct memvfs *v = ctx;
    int rc = -EBADF;
    LOCKED(v)
    {
        struct inode *i = fd_get(v, fd);
        if (v->crashed) {
            rc = -EIO;
        } else if (i) {
            *size = i->data.len;
            rc = 0;
        }
    }
    return rc;
}

static int mv_rename(void *ctx, const char *from, const char *to)
{
    struct memvfs *v = ctx;
    int rc = -ENOENT;
    LOCKED(v)
    {
        struct dent *e = dir_find(&v->cur, from);
        if (v->crashed) {
            rc = -EIO;
            break;
        }
        if (e == NULL)
            break;
        if (!mutate(v)) {
            rc = -EIO;
            break;
        }
        struct inode *ino = e->ino;
        dir_del(&v->cur, from);
        dir_set(&v->cur, to, ino);
        rc = 0;
    }
    return rc;
}

static int mv_unlink(void *ctx, const char *path)
{
    struct memvfs *v = ctx;
    int rc = -ENOENT;
    LOCKED(v)
    {
        if (v->crashed) {
            rc = -EIO;
            break;
        }
        if (dir_find(&v->cur, path) == NULL)
            break;
        if (!mutate(v)) {
            rc = -EIO;
            break;
        }
        dir_del(&v->cur, path);
        rc = 0;
    }
    return rc;
}

static int mv_mkdir(void *ctx, const char *dir)
{
    (void)dir;
    struct memvfs *v = ctx;
    int rc = 0;
    LOCKED(v)
    {
        if (v->crashed)
            rc = -EIO;
    }
    return rc;
}

static bool in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' && strchr(path + n + 1, '/') == NULL;
}

static int mv_sync_dir(void *ctx, const char *dir)
{
    struct memvfs *v = ctx;
    int rc = 0;
    LOCKED(v)
    {
        if (!mutate(v)) {
            rc = -EIO;
            break;
        }
        /* The durable view of dir becomes the current one. */
        for (size_t i = 0; i < v->durable.n;) {
            if (in_dir(v->durable.e[i].path, dir) && !dir_find(&v->cur, v->durable.e[i].path))
                dir_del(&v->durable, v->durable.e[i].path);
            else
                i++;
        }
        for (size_t i = 0; i < v->cur.n; i++)
            if (in_dir(v->cur.e[i].path, dir))
                dir_set(&v->durable, v->cur.e[i].path, v->cur.e[i].ino);
    }
    return rc;
}

static int mv_list_dir(void *ctx, const char *dir, int (*fn)(void *arg, const char *name),
                       void *arg)
{
    struct memvfs *v = ctx;
    /* Copy the names first: fn may call back into the filesystem. */
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    LOCKED(v)
    {
        if (v->crashed) {
            rc = -EIO;
            break;
        }
        names = calloc(v->cur.n + 1, sizeof *names);
        for (size_t i = 0; i < v->cur.n; i++)
            if (in_dir(v->cur.e[i].path, dir))
                names[n++] = strdup(v->cur.e[i].path + strlen(dir) + 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = fn(arg, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int mv_lock(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0;
}

struct memvfs *memvfs_new(void)
{
    struct memvfs *v = calloc(1, sizeof *v);
    pthread_mutex_init(&v->mu, NULL);
    v->writes_left = v->syncs_left = -1;
    v->ops = (struct store_fileops){
        .ctx = v,
        .open = mv_open,
        .close = mv_close,
        .pread = mv_pread,
        .pwrite = mv_pwrite,
        .fdatasync = mv_fdatasync,
        .ftruncate = mv_ftruncate,
        .fsize = mv_fsize,
        .rename = mv_rename,
        .unlink = mv_unlink,
        .mkdir = mv_mkdir,
        .sync_dir = mv_sync_dir,
        .list_dir = mv_list_dir,
        .lock = mv_lock,
        .map = NULL,
        .unmap = NULL,
    };
    return v;
}

void memvfs_free(struct memvfs *v)
{
    if (v == NULL)
        return;
    for (struct inode *i = v->all, *next; i; i = next) {
        next = i->next_all;
        mb_free(&i->data);
        mb_free(&i->durable);
        free(i);
    }
    dir_free(&v->cur);
    dir_free(&v->durable);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

const struct store_fileops *memvfs_ops(struct memvfs *v)
{
    return &v->ops;
}

void memvfs_fail_writes(struct memvfs *v, uint64_t after, int err)
{
    LOCKED(v)
    {
        v->writes_left = (int64_t)after;
        v->write_err = err;
    }
}

void memvfs_fail_syncs(struct memvfs *v, uint64_t after, int err)
{
    LOCKED(v)
    {
        v->syncs_left = (int64_t)after;
        v->sync_err = err;
    }
}

void memvfs_short_writes(struct memvfs *v, bool on, uint64_t seed)
{
    LOCKED(v)
    {
        v->short_writes = on;
        v->rng.s = seed;
    }
}

void memvfs_clear_faults(struct memvfs *v)
{
    LOCKED(v)
    {
        v->writes_left = v->syncs_left = -1;
        v->short_writes = false;
    }
}

void memvfs_crash_after(struct memvfs *v, uint64_t n)
{
    LOCKED(v)
    {
        v->crash_at = v->mutations + n;
        if (n == 0)
            v->crashed = true;
    }
}

bool memvfs_crashed(struct memvfs *v)
{
    bool c;
    LOCKED(v)
    {
        c = v->crashed;
    }
    return c;
}

uint64_t memvfs_mutations(struct memvfs *v)
{
    uint64_t n;
    LOCKED(v)
    {
        n = v->mutations;
    }
    return n;
}

/* What survives of inode i: its durable bytes, plus for a torn image a
 * random prefix of the appends made since, the last part maybe garbage. */
static void survive(const struct inode *i, struct mbuf *out, struct test_rng *rng,
                    enum memvfs_tear tear)
{
    buf_copy(out, &i->durable);
    if (tear == MEMVFS_TEAR_NONE)
        return;
    bool appended = i->data.len > i->durable.len &&
                    (i->durable.len == 0 ||
                     memcmp(i->data.data, i->durable.data, i->durable.len) == 0);
    if (!appended)
        return;
    size_t extra = i->data.len - i->durable.len;
    size_t keep = (size_t)test_rng_below(rng, extra + 1);
    mb_append(out, i->data.data + i->durable.len, keep);
    if (keep > 0 && test_rng_below(rng, 2)) {
        /* The last sectors of the kept part were not fully written. */
        size_t bad = 1 + (size_t)test_rng_below(rng, keep < 512 ? keep : 512);
        bool zeros = test_rng_below(rng, 2);
        for (size_t k = out->len - bad; k < out->len; k++)
            out->data[k] = zeros ? 0 : (uint8_t)test_rng_next(rng);
    }
}

struct memvfs *memvfs_image(struct memvfs *v, uint64_t seed, enum memvfs_tear tear)
{
    struct memvfs *img = memvfs_new();
    struct test_rng rng = {seed};
    LOCKED(v)
    {
        for (size_t k = 0; k < v->durable.n; k++) {
            struct inode *ni = inode_new(img);
            survive(v->durable.e[k].ino, &ni->data, &rng, tear);
            buf_copy(&ni->durable, &ni->data);
            dir_set(&img->cur, v->durable.e[k].path, ni);
            dir_set(&img->durable, v->durable.e[k].path, ni);
        }
    }
    return img;
}

struct memvfs *memvfs_clone(struct memvfs *v)
{
    struct memvfs *img = memvfs_new();
    LOCKED(v)
    {
        for (size_t k = 0; k < v->cur.n; k++) {
            struct inode *ni = inode_new(img);
            buf_copy(&ni->data, &v->cur.e[k].ino->data);
            buf_copy(&ni->durable, &ni->data);
            dir_set(&img->cur, v->cur.e[k].path, ni);
            dir_set(&img->durable, v->cur.e[k].path, ni);
        }
    }
    return img;
}

int memvfs_read_file(struct memvfs *v, const char *path, struct rkv_buf *out)
{
    int rc = -ENOENT;
    LOCKED(v)
    {
        struct dent *e = dir_find(&v->cur, path);
        if (e) {
            rkv_buf_set(out, e->ino->data.data, e->ino->data.len);
            rc = 0;
        }
    }
    return rc;
}

int memvfs_write_file(struct memvfs *v, const char *path, const void *data, size_t len)
{
    LOCKED(v)
    {
        struct dent *e = dir_find(&v->cur, path);
        struct inode *ino = e ? e->ino : inode_new(v);
        if (!e) {
            dir_set(&v->cur, path, ino);
            dir_set(&v->durable, path, ino);
        }
        ino->data.len = 0;
        mb_append(&ino->data, data, len);
        buf_copy(&ino->durable, &ino->data);
    }
    return 0;
}

int memvfs_list(struct memvfs *v, const char *dir, struct rkv_buf *out)
{
    out->len = 0;
    LOCKED(v)
    {
        for (size_t i = 0; i < v->cur.n; i++) {
            if (!in_dir(v->cur.e[i].path, dir))
                continue;
            rkv_buf_append(out, v->cur.e[i].path, strlen(v->cur.e[i].path));
            rkv_buf_append(out, "\n", 1);
        }
        rkv_buf_append(out, "", 1);
        out->len--;
    }
    return 0;
}
