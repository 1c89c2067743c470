/*
 * recover.c: taking the directory lock, and rebuilding the keydir at open.
 *
 * Open runs these steps:
 *   1. Lock: LOCK is flock'ed (so a dead owner can never hold it) and holds
 *      the owner's pid. A non-empty LOCK that we could lock was left by a
 *      process that died: refused (RKV_ERR_STALELOCK, naming the pid) unless
 *      break_stale_lock is set, in which case it is taken over and logged.
 *   2. Merge marker: if MERGE exists, a merge committed but may not have
 *      finished its switch; finish it (merge.c). Then delete leftovers of
 *      merges that did not commit (*.merging, MERGE.tmp).
 *   3. Load every log in id order, from its hint file if that is valid and
 *      describes the log's current size, else by scanning the log. For
 *      each key the record with the highest seq wins, tombstones included;
 *      a torn tail is truncated; damaged regions are skipped and counted.
 *   4. Drop the tombstones from the keydir (they only had to win step 3),
 *      and start a fresh active log.
 * Superseded records, tombstones and damaged regions are counted as dead
 * bytes of their files, which is what triggers merges later.
 */
#include "storage/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

#define LOCK_CONTENT_BYTES 32

int store_lock_acquire(struct store *s, struct rkv_error *err)
{
    char path[STORE_PATH_BYTES];
    store_path(s, path, "LOCK");
    int fd = s->ops->open(s->ops->ctx, path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return rkv_error_set(err, rkv_err_from_errno(-fd), "storage: open %s: %s", path,
                             strerror(-fd));
    char content[LOCK_CONTENT_BYTES + 1] = {0};
    ssize_t n = s->ops->pread(s->ops->ctx, fd, content, LOCK_CONTENT_BYTES, 0);
    long old_pid = n > 0 ? strtol(content, NULL, 10) : 0;
    int sys = s->ops->lock(s->ops->ctx, fd);
    if (sys == -EWOULDBLOCK || sys == -EAGAIN) {
        s->ops->close(s->ops->ctx, fd);
        return rkv_error_set(err, RKV_ERR_LOCKED, "storage: %s is locked by pid %ld", s->dir,
                             old_pid);
    }
    if (sys < 0) {
        s->ops->close(s->ops->ctx, fd);
        return rkv_error_set(err, RKV_ERR_IO, "storage: lock %s: %s", path, strerror(-sys));
    }
    if (old_pid > 0) {
        if (!s->opt.break_stale_lock) {
            s->ops->close(s->ops->ctx, fd);
            return rkv_error_set(err, RKV_ERR_STALELOCK,
                                 "storage: %s has a stale lock from pid %ld, which is no longer "
                                 "running; make sure nothing else uses the directory, then "
                                 "remove %s",
                                 s->dir, old_pid, path);
        }
        RKV_WARN("storage", "%s: taking over the stale lock of dead pid %ld", s->dir, old_pid);
        s->report.stale_lock_pid = (int)old_pid;
    }
    char pid[LOCK_CONTENT_BYTES];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (s->ops->ftruncate(s->ops->ctx, fd, 0) < 0 ||
        store_write_all(s, fd, pid, (size_t)len, 0) < 0 || s->ops->fdatasync(s->ops->ctx, fd) < 0) {
        s->ops->close(s->ops->ctx, fd);
        return rkv_error_set(err, RKV_ERR_IO, "storage: cannot write %s", path);
    }
    s->lock_fd = fd;
    return RKV_OK;
}

void store_lock_release(struct store *s)
{
    if (s->lock_fd < 0)
        return;
    /* Empty means "closed cleanly". The file stays: unlinking it would let
     * a waiting opener lock the old inode while a third creates a new one. */
    if (s->ops->ftruncate(s->ops->ctx, s->lock_fd, 0) == 0)
        s->ops->fdatasync(s->ops->ctx, s->lock_fd);
    s->ops->close(s->ops->ctx, s->lock_fd);
    s->lock_fd = -1;
}

/* ---- identity ---- */

static int has_logs_fn(void *arg, const char *name)
{
    size_t n = strlen(name);
    bool log = (n > 4 && strcmp(name + n - 4, ".log") == 0) ||
               (n > 5 && strcmp(name + n - 5, ".hint") == 0);
    if (log)
        *(bool *)arg = true;
    return log; /* stop at the first */
}

void store_ident_encode(uint64_t secret, uint8_t out[IDENT_BYTES])
{
    memcpy(out, IDENT_MAGIC, 8);
    rkv_put_u64(out + 8, secret);
    rkv_put_u64(out + 16, XXH3_64bits_withSeed(out, 16, IDENT_SEED));
}

static int ident_create(struct store *s, struct rkv_error *err)
{
    uint64_t secret;
    if (getrandom(&secret, sizeof secret, 0) != sizeof secret)
        return rkv_error_set(err, RKV_ERR_IO, "storage: getrandom: %s", strerror(errno));
    uint8_t b[IDENT_BYTES];
    store_ident_encode(secret, b);
    char tmp[STORE_PATH_BYTES], path[STORE_PATH_BYTES];
    store_path(s, tmp, "IDENT.tmp");
    store_path(s, path, "IDENT");
    int fd = s->ops->open(s->ops->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int sys = fd < 0 ? fd : store_write_all(s, fd, b, sizeof b, 0);
    if (sys == 0)
        sys = s->ops->fdatasync(s->ops->ctx, fd);
    if (fd >= 0)
        s->ops->close(s->ops->ctx, fd);
    if (sys == 0)
        sys = s->ops->rename(s->ops->ctx, tmp, path);
    if (sys == 0)
        sys = s->ops->sync_dir(s->ops->ctx, s->dir);
    if (sys < 0)
        return rkv_error_set(err, rkv_err_from_errno(-sys), "storage: cannot write %s: %s", path,
                             strerror(-sys));
    s->secret = secret;
    return RKV_OK;
}

int store_ident(struct store *s, struct rkv_error *err)
{
    char path[STORE_PATH_BYTES];
    store_path(s, path, "IDENT");
    int fd = s->ops->open(s->ops->ctx, path, O_RDONLY, 0);
    int rc = RKV_OK;
    if (fd == -ENOENT) {
        bool logs = false;
        int sys = s->ops->list_dir(s->ops->ctx, s->dir, has_logs_fn, &logs);
        if (sys < 0)
            return rkv_error_set(err, RKV_ERR_IO, "storage: list %s: %s", s->dir, strerror(-sys));
        if (logs)
            return rkv_error_set(err, RKV_ERR_CORRUPT,
                                 "storage: %s is missing: the logs beside it cannot be verified "
                                 "without it; restore it or rebuild this replica",
                                 path);
        rc = ident_create(s, err);
    } else if (fd < 0) {
        return rkv_error_set(err, RKV_ERR_IO, "storage: open %s: %s", path, strerror(-fd));
    } else {
        uint8_t b[IDENT_BYTES + 1];
        uint64_t size = 0;
        bool ok = s->ops->fsize(s->ops->ctx, fd, &size) == 0 && size == IDENT_BYTES &&
                  store_read_all(s, fd, b, IDENT_BYTES, 0) == 0 && memcmp(b, IDENT_MAGIC, 8) == 0 &&
                  rkv_get_u64(b + 16) == XXH3_64bits_withSeed(b, 16, IDENT_SEED);
        s->ops->close(s->ops->ctx, fd);
        if (!ok)
            return rkv_error_set(err, RKV_ERR_CORRUPT,
                                 "storage: %s is damaged: the logs cannot be verified without it",
                                 path);
        s->secret = rkv_get_u64(b + 8);
    }
    record_keys_init(&s->keys, s->secret);
    return rc;
}

/* ---- directory listing ---- */

struct dir_scan {
    struct store *s;
    uint32_t *logs;
    size_t n_logs, cap_logs;
    uint32_t max_id;
    bool nomem;
};

/* Parses "NNNNNNNNNN<suffix>"; true and *id if it matches exactly. */
static bool parse_name(const char *name, const char *suffix, uint32_t *id)
{
    size_t slen = strlen(suffix);
    if (strlen(name) != 10 + slen || strcmp(name + 10, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX - 1)
        return false;
    *id = (uint32_t)v;
    return true;
}

static int scan_dir_entry(void *arg, const char *name)
{
    struct dir_scan *d = arg;
    uint32_t id;
    if (parse_name(name, ".log", &id)) {
        void *logs = d->logs;
        if (rkv_grow(&logs, &d->cap_logs, d->n_logs + 1, sizeof *d->logs) != RKV_OK) {
            d->nomem = true;
            return 1;
        }
        d->logs = logs;
        d->logs[d->n_logs++] = id;
    } else if (!parse_name(name, ".hint", &id) && !parse_name(name, ".log.merging", &id) &&
               !parse_name(name, ".hint.merging", &id)) {
        if (strcmp(name, "LOCK") != 0 && strcmp(name, "MERGE") != 0 &&
            strcmp(name, "MERGE.tmp") != 0 && strcmp(name, "IDENT") != 0 &&
            strcmp(name, "IDENT.tmp") != 0)
            RKV_WARN("storage", "%s: ignoring unknown file %s", d->s->dir, name);
        return 0;
    }
    /* Hints and merge leftovers still reserve their ids. */
    if (id > d->max_id)
        d->max_id = id;
    return 0;
}

/* Deletes what merges that never committed left behind. */
static int remove_leftover(void *arg, const char *name)
{
    struct store *s = arg;
    uint32_t id;
    if (parse_name(name, ".log.merging", &id) || parse_name(name, ".hint.merging", &id) ||
        strcmp(name, "MERGE.tmp") == 0 || strcmp(name, "IDENT.tmp") == 0) {
        char path[STORE_PATH_BYTES];
        store_path(s, path, name);
        s->ops->unlink(s->ops->ctx, path);
    }
    return 0;
}

/* ---- loading records into the keydir ---- */

struct load_ctx {
    struct store *s;
    uint32_t file_id;
    uint64_t max_seq;
};

static void add_dead(struct store *s, uint32_t file_id, uint64_t bytes)
{
    struct store_file *f = store_file_find(s, file_id);
    if (f)
        f->dead += bytes;
}

static int load_record(void *arg, const struct record *r, uint32_t offset)
{
    struct load_ctx *c = arg;
    struct store *s = c->s;
    uint64_t bytes = record_bytes(r->key_len, r->value_len);
    bool tomb = (r->flags & RECORD_FLAG_TOMB) != 0;
    if (r->seq > c->max_seq)
        c->max_seq = r->seq;
    bool created;
    struct kd_entry *e = keydir_upsert(&s->kd, r->partition, r->key, r->key_len,
                                       keydir_hash(r->key, r->key_len), &created);
    if (e == NULL)
        return RKV_ERR_NOMEM;
    if (!created) {
        if ((e->seq & ~KD_TOMB) >= r->seq) {
            add_dead(s, c->file_id, bytes); /* an older record than the one we have */
            return RKV_OK;
        }
        if (!(e->seq & KD_TOMB)) /* tombstones were counted dead already */
            add_dead(s, e->file_id, record_bytes(r->key_len, e->value_len));
    }
    e->seq = r->seq | (tomb ? KD_TOMB : 0);
    e->expiry_ms = r->expiry_ms;
    e->file_id = c->file_id;
    e->offset = offset;
    e->value_len = r->value_len;
    if (tomb)
        add_dead(s, c->file_id, bytes);
    return RKV_OK;
}

/* Scans log f; truncates a torn tail. */
static int scan_log(struct store *s, struct load_ctx *c, struct store_file *fp,
                    struct rkv_error *err)
{
    struct rkv_buf copy = {0};
    const uint8_t *data;
    uint32_t id = fp->id;
    uint64_t size = fp->size;
    int rc = store_file_view(s, fp, &copy, &data);
    if (rc != RKV_OK) {
        rkv_buf_free(&copy);
        return rkv_error_set(err, rc, "storage: read %010u.log: %s", id, rkv_strerror(rc));
    }
    struct scan_result res;
    rc = record_scan(data, size, &s->keys, load_record, c, &res);
    rkv_buf_free(&copy);
    if (rc != RKV_OK)
        return rkv_error_set(err, rc, "storage: loading %010u.log: %s", id, rkv_strerror(rc));
    struct store_file *f = store_file_find(s, id);
    s->report.records += res.records;
    s->report.bad_records += res.bad_records;
    s->report.bad_bytes += res.bad_bytes;
    f->dead += res.bad_bytes;
    if (res.bad_records)
        RKV_WARN("storage", "%s: %010u.log: skipped %llu damaged regions (%llu bytes)", s->dir,
                 id, (unsigned long long)res.bad_records, (unsigned long long)res.bad_bytes);
    if (res.valid_end < size) {
        int sys = s->ops->ftruncate(s->ops->ctx, f->fd, res.valid_end);
        if (sys < 0)
            return rkv_error_set(err, rkv_err_from_errno(-sys), "storage: truncate %010u.log: %s",
                                 id, strerror(-sys));
        RKV_WARN("storage", "%s: %010u.log: cut a torn tail of %llu bytes", s->dir, id,
                 (unsigned long long)(size - res.valid_end));
        s->report.bytes_truncated += size - res.valid_end;
        f->size = res.valid_end;
    }
    return RKV_OK;
}

static int load_log(struct store *s, uint32_t id, struct load_ctx *c, struct rkv_error *err)
{
    char path[STORE_PATH_BYTES];
    store_log_path(s, path, id, ".log");
    int fd = s->ops->open(s->ops->ctx, path, O_RDWR, 0);
    if (fd < 0)
        return rkv_error_set(err, rkv_err_from_errno(-fd), "storage: open %s: %s", path,
                             strerror(-fd));
    struct store_file f = {.id = id, .fd = fd, .sealed = true};
    int sys = s->ops->fsize(s->ops->ctx, fd, &f.size);
    if (sys < 0) {
        s->ops->close(s->ops->ctx, fd);
        return rkv_error_set(err, RKV_ERR_IO, "storage: stat %s: %s", path, strerror(-sys));
    }
    if (f.size == 0) {
        /* an active log nothing was written to: every open starts a new
         * one, so keeping empty ones would only pile them up */
        s->ops->close(s->ops->ctx, fd);
        s->ops->unlink(s->ops->ctx, path);
        return RKV_OK;
    }
    store_file_map(s, &f, f.size);
    if (store_file_add(s, &f) != RKV_OK) {
        store_file_release(s, &f);
        return rkv_error_set(err, RKV_ERR_NOMEM, "storage: out of memory");
    }
    c->file_id = id;
    s->report.log_files++;

    store_log_path(s, path, id, ".hint");
    if (!s->opt.ignore_hints) {
        uint64_t entries = 0;
        int rc = hint_load(s, path, f.size, load_record, c, &entries);
        if (rc == RKV_OK) {
            s->report.hint_files++;
            s->report.records += entries;
            return RKV_OK;
        }
        if (rc == RKV_ERR_NOMEM)
            return rkv_error_set(err, rc, "storage: out of memory");
        if (rc != RKV_ERR_NOTFOUND) {
            s->report.hint_files_rejected++;
            RKV_WARN("storage", "%s is invalid or stale; scanning the log instead", path);
        }
        /* hint_load calls back only after verifying the whole file, so a
         * rejected hint added nothing to the keydir. */
    }
    return scan_log(s, c, store_file_find(s, id), err);
}

static bool is_tombstone(void *ctx, const struct kd_entry *e)
{
    (void)ctx;
    return (e->seq & KD_TOMB) != 0;
}

int store_recover(struct store *s, struct rkv_error *err)
{
    int rc = merge_finish_marker(s, &s->report.merge_completed, err);
    if (rc != RKV_OK)
        return rc;
    int sys = s->ops->list_dir(s->ops->ctx, s->dir, remove_leftover, s);
    if (sys < 0)
        return rkv_error_set(err, RKV_ERR_IO, "storage: list %s: %s", s->dir, strerror(-sys));
    rc = store_ident(s, err);
    if (rc != RKV_OK)
        return rc;

    struct dir_scan d = {.s = s};
    sys = s->ops->list_dir(s->ops->ctx, s->dir, scan_dir_entry, &d);
    if (d.nomem || sys < 0) {
        rkv_free(d.logs);
        return d.nomem ? rkv_error_set(err, RKV_ERR_NOMEM, "storage: out of memory")
                       : rkv_error_set(err, RKV_ERR_IO, "storage: list %s: %s", s->dir,
                                       strerror(-sys));
    }
    store_ids_sort(d.logs, d.n_logs);
    struct load_ctx c = {.s = s};
    for (size_t i = 0; i < d.n_logs; i++) {
        rc = load_log(s, d.logs[i], &c, err);
        if (rc != RKV_OK) {
            rkv_free(d.logs);
            return rc;
        }
    }
    rkv_free(d.logs);
    keydir_remove_if(&s->kd, is_tombstone, NULL); /* they only had to win over older records */
    s->report.keys = s->kd.n_live;
    s->next_seq = c.max_seq + 1;
    s->next_file_id = d.max_id + 1;

    uint32_t id;
    if (store_take_file_id(s, &id) != RKV_OK)
        return rkv_error_set(err, RKV_ERR_TOOBIG,
                             "storage: %s: log file ids are used up (it holds %010u, the last "
                             "there can be): no id is left for a new active log",
                             s->dir, d.max_id);
    int fd;
    rc = store_create_log(s, id, &fd);
    if (rc != RKV_OK)
        return rkv_error_set(err, rc, "%s", s->errmsg);
    s->active_id = id;
    s->active_fd = fd;
    s->active_size = 0;
    s->wbuf_off = 0;
    s->batch.start_file_id = id;
    s->batch.start_offset = 0;
    if (s->report.log_files || s->report.bytes_truncated || s->report.bad_records)
        RKV_INFO("storage",
                 "%s: opened: %u logs (%u from hints), %llu records, %llu keys, "
                 "%llu bytes truncated, %llu damaged regions skipped",
                 s->dir, s->report.log_files, s->report.hint_files,
                 (unsigned long long)s->report.records, (unsigned long long)s->report.keys,
                 (unsigned long long)s->report.bytes_truncated,
                 (unsigned long long)s->report.bad_records);
    return RKV_OK;
}
