/*
 * store.c: the store handle: options, open and close, reads, listing and
 * statistics, and the helpers the other storage files share.
 *
 * Threads. The owner thread makes every API call. The merge thread shares
 * the keydir and the file table with it under s->mu; everything else in the
 * handle is the owner's. The owner never keeps a keydir pointer or a file
 * table pointer across an unlock: it copies what it needs (a location, a
 * map pointer, an fd) while holding mu. Files that a merge replaced are not
 * closed by the merge thread, because the owner may be copying out of their
 * maps: they go on s->retired and the owner closes them at its next call.
 */
#include "storage/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"

void store_options_default(struct store_options *opt)
{
    *opt = (struct store_options){
        .sync = STORE_SYNC_ALWAYS,
        .sync_interval_ms = 1000,
        .file_bytes_max = 128u * 1024 * 1024,
        .write_buffer_bytes = 256u * 1024,
        .batch_ops_max = 65536,
        .key_bytes_max = RKV_KEY_BYTES_MAX,
        .value_bytes_max = RKV_VALUE_BYTES_MAX,
        .merge_auto = true,
        .merge_dead_percent = 40,
        .merge_dead_bytes_min = 64u * 1024 * 1024,
        .merge_files_max = 16,
        .break_stale_lock = false,
        .ignore_hints = false,
        .fileops = NULL,
        .now_ms = NULL,
        .now_ctx = NULL,
    };
}

int store_fail(struct store *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

const char *store_errmsg(const struct store *s)
{
    return s->errmsg;
}

const struct store_open_report *store_open_report(const struct store *s)
{
    return &s->report;
}

void store_path(const struct store *s, char *out, const char *name)
{
    snprintf(out, STORE_PATH_BYTES, "%s/%s", s->dir, name);
}

void store_log_path(const struct store *s, char *out, uint32_t id, const char *suffix)
{
    char name[STORE_FILE_NAME_BYTES];
    snprintf(name, sizeof name, "%010u%s", id, suffix);
    store_path(s, out, name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void store_ids_sort(uint32_t *ids, size_t n)
{
    if (n > 1)
        qsort(ids, n, sizeof *ids, cmp_u32);
}

uint64_t store_now_ms(const struct store *s)
{
    return s->opt.now_ms ? s->opt.now_ms(s->opt.now_ctx) : rkv_clock_realtime_ms();
}

int store_take_file_id(struct store *s, uint32_t *id)
{
    /* Only reachable through a directory holding a log named near the end
     * of the range (damage, or a hand-made name): at one rotation per
     * file_bytes_max, 2^32 files are never written. Found by fuzz_storage. */
    if (s->next_file_id == 0 || s->next_file_id > STORE_FILE_ID_MAX)
        return RKV_ERR_TOOBIG;
    *id = s->next_file_id++;
    return RKV_OK;
}

struct store_file *store_file_find(struct store *s, uint32_t id)
{
    size_t lo = 0, hi = s->n_files;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->files[mid].id == id)
            return &s->files[mid];
        if (s->files[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int store_file_add(struct store *s, const struct store_file *f)
{
    void *arr = s->files;
    if (rkv_grow(&arr, &s->cap_files, s->n_files + 1, sizeof *s->files) != RKV_OK)
        return RKV_ERR_NOMEM;
    s->files = arr;
    size_t i = s->n_files;
    while (i > 0 && s->files[i - 1].id > f->id) {
        s->files[i] = s->files[i - 1];
        i--;
    }
    s->files[i] = *f;
    s->n_files++;
    return RKV_OK;
}

void store_file_map(struct store *s, struct store_file *f, uint64_t len)
{
    if (s->ops->map == NULL || len == 0)
        return;
    const void *m = s->ops->map(s->ops->ctx, f->fd, len);
    if (m != NULL) {
        f->map = m;
        f->map_len = len;
    }
}

void store_file_release(struct store *s, struct store_file *f)
{
    if (f->map)
        s->ops->unmap(s->ops->ctx, f->map, f->map_len);
    if (f->fd >= 0)
        s->ops->close(s->ops->ctx, f->fd);
    f->map = NULL;
    f->fd = -1;
}

int store_write_all(struct store *s, int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = s->ops->pwrite(s->ops->ctx, fd, p, len, off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int store_read_all(struct store *s, int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = s->ops->pread(s->ops->ctx, fd, p, len, off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO; /* the file is shorter than the keydir says */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int store_file_view(struct store *s, struct store_file *f, struct rkv_buf *copy,
                    const uint8_t **data)
{
    if (f->map && f->map_len >= f->size) {
        *data = f->map;
        return RKV_OK;
    }
    if (f->size > SIZE_MAX)
        return RKV_ERR_NOMEM;
    copy->len = 0;
    if (rkv_buf_reserve(copy, (size_t)f->size) != RKV_OK)
        return RKV_ERR_NOMEM;
    int rc = store_read_all(s, f->fd, copy->data, (size_t)f->size, 0);
    if (rc < 0)
        return rkv_err_from_errno(-rc);
    copy->len = (size_t)f->size;
    *data = copy->data;
    return RKV_OK;
}

static int options_check(const struct store_options *o, struct rkv_error *err)
{
    if (o->file_bytes_max < RKV_FILE_BYTES_MIN || o->file_bytes_max > RKV_FILE_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: file_bytes_max must be %u..%u",
                             RKV_FILE_BYTES_MIN, RKV_FILE_BYTES_MAX);
    if (o->write_buffer_bytes < 4096 || o->write_buffer_bytes > RKV_WRITE_BUFFER_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: write_buffer_bytes must be 4096..%u",
                             RKV_WRITE_BUFFER_BYTES_MAX);
    if (o->batch_ops_max < 1 || o->batch_ops_max > RKV_BATCH_OPS_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: batch_ops_max must be 1..%u",
                             RKV_BATCH_OPS_MAX);
    if (o->key_bytes_max > RKV_KEY_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: key_bytes_max must be <= %u",
                             RKV_KEY_BYTES_MAX);
    if (o->value_bytes_max > RKV_VALUE_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: value_bytes_max must be <= %u",
                             RKV_VALUE_BYTES_MAX);
    if ((unsigned)o->sync > STORE_SYNC_NONE)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: unknown sync policy %d", o->sync);
    if (o->sync_interval_ms < 1)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: sync_interval_ms must be >= 1");
    if (o->merge_dead_percent > 100)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: merge_dead_percent must be <= 100");
    if (o->merge_files_max < 2)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: merge_files_max must be >= 2");
    return RKV_OK;
}

/* Frees a handle in any state of construction; the caller has stopped the
 * merge thread. */
static void store_free(struct store *s)
{
    merge_reap_retired(s);
    for (size_t i = 0; i < s->n_files; i++)
        store_file_release(s, &s->files[i]);
    store_lock_release(s);
    keydir_free(&s->kd);
    rkv_free(s->files);
    rkv_free(s->retired);
    rkv_free(s->wbuf);
    rkv_free(s->batch.ops);
    rkv_free(s->batch.index);
    rkv_buf_free(&s->batch.keys);
    rkv_buf_free(&s->scratch);
    rkv_buf_free(&s->listkey);
    pthread_cond_destroy(&s->merge_done_cv);
    pthread_cond_destroy(&s->sync_cv);
    pthread_cond_destroy(&s->sync_idle_cv);
    pthread_cond_destroy(&s->merge_cv);
    pthread_mutex_destroy(&s->mu);
    rkv_free(s->dir);
    rkv_free(s);
}

int store_open(const char *dir, const struct store_options *opt, struct store **out,
               struct rkv_error *err)
{
    *out = NULL;
    uint64_t t0 = rkv_clock_mono_us();
    struct store_options o;
    if (opt)
        o = *opt;
    else
        store_options_default(&o);
    int rc = options_check(&o, err);
    if (rc != RKV_OK)
        return rc;
    if (strlen(dir) + STORE_FILE_NAME_BYTES + 2 > STORE_PATH_BYTES)
        return rkv_error_set(err, RKV_ERR_INVAL, "storage: directory path too long");

    struct store *s = rkv_calloc(1, sizeof *s);
    if (s == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "storage: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->merge_cv, NULL);
    pthread_cond_init(&s->merge_done_cv, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_cond_init(&s->sync_idle_cv, NULL);
    s->sync_efd = -1;
    s->opt = o;
    s->ops = o.fileops ? o.fileops : store_fileops_posix();
    s->lock_fd = -1;
    s->active_fd = -1;
    s->next_seq = 1;
    s->next_file_id = 1;
    s->dir = rkv_strdup(dir);
    s->wbuf = rkv_malloc(o.write_buffer_bytes);
    if (s->dir == NULL || s->wbuf == NULL || keydir_init(&s->kd) != RKV_OK) {
        rc = rkv_error_set(err, RKV_ERR_NOMEM, "storage: out of memory");
        goto fail;
    }
    int sys = s->ops->mkdir(s->ops->ctx, dir);
    if (sys < 0) {
        rc = rkv_error_set(err, rkv_err_from_errno(-sys), "storage: cannot create %s: %s", dir,
                           strerror(-sys));
        goto fail;
    }
    rc = store_lock_acquire(s, err);
    if (rc != RKV_OK)
        goto fail;
    rc = store_recover(s, err);
    if (rc != RKV_OK)
        goto fail;
    rc = merge_thread_start(s);
    if (rc != RKV_OK) {
        rkv_error_set(err, rc, "storage: cannot start the merge thread");
        goto fail;
    }
    s->report.elapsed_us = rkv_clock_mono_us() - t0;
    *out = s;
    return RKV_OK;
fail:
    store_free(s);
    return rc;
}

int store_close(struct store *s)
{
    if (s == NULL)
        return RKV_OK;
    /* A failed store reports it: what its last batch wrote is unknown. */
    int rc = s->failed ? RKV_ERR_FAILED : store_sync(s);
    store_sync_stop(s);
    merge_thread_stop(s);
    store_free(s);
    return rc;
}

/* Where a key's newest record is, and the file holding it, copied out of
 * the batch or keydir under one hold of mu: a merge may move the entry and
 * retire the file as soon as mu is released, but a retired file stays open
 * until the owner's next call, so the copied fd and map stay usable. */
struct loc {
    uint64_t seq;
    uint64_t expiry_ms;
    uint32_t file_id;
    uint32_t offset;
    uint32_t value_len;
    bool tomb;
    int fd;
    const uint8_t *map;
    uint64_t map_len;
};

static bool locate(struct store *s, uint16_t partition, const void *key, size_t key_len,
                   uint64_t hash, struct loc *l)
{
    const struct batch_op *op = batch_find(s, partition, key, key_len, hash);
    pthread_mutex_lock(&s->mu);
    struct kd_entry *e = op ? NULL : keydir_find(&s->kd, partition, key, key_len, hash);
    if (op)
        *l = (struct loc){.seq = op->seq, .expiry_ms = op->expiry_ms, .file_id = op->file_id,
                          .offset = op->offset, .value_len = op->value_len, .tomb = op->tomb};
    else if (e)
        *l = (struct loc){.seq = e->seq, .expiry_ms = e->expiry_ms, .file_id = e->file_id,
                          .offset = e->offset, .value_len = e->value_len, .tomb = false};
    if (op || e) {
        struct store_file *f = store_file_find(s, l->file_id);
        l->fd = f ? f->fd : -1;
        l->map = f ? f->map : NULL;
        l->map_len = f ? f->map_len : 0;
    }
    pthread_mutex_unlock(&s->mu);
    return op || e;
}

/* Reads and verifies the record at l; copies its value into *value. */
static int read_record(struct store *s, const struct loc *l, uint16_t partition, const void *key,
                       size_t key_len, struct rkv_buf *value)
{
    size_t total = record_bytes(key_len, l->value_len);
    const uint8_t *p = NULL;
    if (l->file_id == s->active_id && l->offset >= s->wbuf_off) {
        p = s->wbuf + (l->offset - s->wbuf_off);
    } else if (l->fd < 0) {
        return store_fail(s, RKV_ERR_CORRUPT, "storage: log %u of a key is missing", l->file_id);
    } else if (l->map && (uint64_t)l->offset + total <= l->map_len) {
        p = l->map + l->offset;
    } else {
        s->scratch.len = 0;
        if (rkv_buf_reserve(&s->scratch, total) != RKV_OK)
            return store_fail(s, RKV_ERR_NOMEM, "storage: out of memory");
        int sys = store_read_all(s, l->fd, s->scratch.data, total, l->offset);
        if (sys < 0)
            return store_fail(s, rkv_err_from_errno(-sys), "storage: read %010u.log@%u: %s",
                              l->file_id, l->offset, strerror(-sys));
        p = s->scratch.data;
    }
    struct record r;
    if (!record_parse(p, total, &s->keys, &r) || r.seq != l->seq || r.key_len != key_len ||
        memcmp(r.key, key, key_len) != 0)
        return store_fail(s, RKV_ERR_CORRUPT,
                          "storage: record at %010u.log offset %u fails its checksum",
                          l->file_id, l->offset);
    /* The record is the truth: an entry that says otherwise (from a hint
     * file that disagrees with its log) must not turn a tombstone into a
     * value, keep an expired value alive, report another length than it
     * returns, or serve a key under a partition its record is not in (merge
     * goes by the record and would drop it). Found by fuzz_storage. */
    if (r.value_len != l->value_len || r.expiry_ms != l->expiry_ms ||
        r.partition != partition || (r.flags & RECORD_FLAG_TOMB))
        return store_fail(s, RKV_ERR_CORRUPT,
                          "storage: record at %010u.log offset %u does not match its index "
                          "entry (a damaged hint file?)",
                          l->file_id, l->offset);
    if (rkv_buf_set(value, r.value, r.value_len) != RKV_OK)
        return store_fail(s, RKV_ERR_NOMEM, "storage: out of memory");
    return RKV_OK;
}

int store_get(struct store *s, uint16_t partition, const void *key, size_t key_len,
              struct rkv_buf *value, struct store_meta *meta)
{
    if (key_len == 0)
        key = ""; /* the empty key may come as NULL: never hand NULL to memcmp */
    if (atomic_load_explicit(&s->have_retired, memory_order_acquire))
        merge_reap_retired(s);
    if (s->failed)
        return store_fail(s, RKV_ERR_FAILED, "storage: store is failed (%s); reopen it",
                          rkv_strerror(s->failed));
    if (key_len > s->opt.key_bytes_max)
        return store_fail(s, RKV_ERR_TOOBIG, "storage: key of %zu bytes exceeds the limit of %u",
                          key_len, s->opt.key_bytes_max);
    struct loc l;
    if (!locate(s, partition, key, key_len, keydir_hash(key, key_len), &l) || l.tomb)
        return store_fail(s, RKV_ERR_NOTFOUND, "storage: key not found");
    if (l.expiry_ms != 0 && l.expiry_ms <= store_now_ms(s))
        return store_fail(s, RKV_ERR_NOTFOUND, "storage: key expired");
    int rc = read_record(s, &l, partition, key, key_len, value);
    if (rc == RKV_OK && meta)
        *meta = (struct store_meta){.seq = l.seq, .expiry_ms = l.expiry_ms,
                                    .value_len = l.value_len};
    return rc;
}

int store_list(struct store *s, uint16_t partition, uint64_t *cursor, size_t max,
               store_list_fn *fn, void *ctx)
{
    if (atomic_load_explicit(&s->have_retired, memory_order_acquire))
        merge_reap_retired(s);
    if (s->failed)
        return store_fail(s, RKV_ERR_FAILED, "storage: store is failed; reopen it");
    if (*cursor == STORE_CURSOR_END)
        return RKV_OK;
    if (*cursor > UINT32_MAX)
        return store_fail(s, RKV_ERR_INVAL, "storage: bad cursor");
    uint32_t pos = (uint32_t)*cursor;
    uint64_t now = store_now_ms(s);
    for (size_t n = 0; n < max;) {
        pthread_mutex_lock(&s->mu);
        struct kd_entry *e = keydir_next(&s->kd, partition, &pos);
        if (e == NULL) {
            pthread_mutex_unlock(&s->mu);
            *cursor = STORE_CURSOR_END;
            return RKV_OK;
        }
        struct store_meta m = {.seq = e->seq, .expiry_ms = e->expiry_ms,
                               .value_len = e->value_len};
        uint16_t klen;
        const uint8_t *k = keydir_key(&s->kd, partition, e, &klen);
        int rc = rkv_buf_set(&s->listkey, k, klen);
        pthread_mutex_unlock(&s->mu);
        if (rc != RKV_OK)
            return store_fail(s, RKV_ERR_NOMEM, "storage: out of memory");
        if (m.expiry_ms != 0 && m.expiry_ms <= now)
            continue;
        n++;
        /* listkey.data is NULL when only the empty key was ever listed */
        rc = fn(ctx, klen ? s->listkey.data : (const uint8_t *)"", klen, &m);
        if (rc != 0) {
            *cursor = pos;
            return rc;
        }
    }
    *cursor = pos;
    return RKV_OK;
}

void store_stats(struct store *s, struct store_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    st->keys = s->kd.n_live;
    st->keydir_bytes = s->kd.bytes;
    st->files = (uint32_t)s->n_files;
    for (size_t i = 0; i < s->n_files; i++) {
        const struct store_file *f = &s->files[i];
        st->disk_bytes += f->id == s->active_id ? s->active_size : f->size;
        st->dead_bytes += f->dead;
    }
    st->merges = s->merges;
    st->merge_bytes_reclaimed = s->merge_bytes_reclaimed;
    st->merge_running = s->merge_running || s->merge_requested;
    st->merge_last_error = s->merge_last_error;
    pthread_mutex_unlock(&s->mu);
    st->batch_ops = s->batch.n_ops;
    st->unsynced_bytes = s->unsynced_bytes;
    st->failed = s->failed != RKV_OK;
}
