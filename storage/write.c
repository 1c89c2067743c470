/*
 * write.c: the write path: batches, the write buffer, rotation, commit and
 * rollback.
 *
 * A put encodes its record into the write buffer (the unflushed tail of
 * the active log) and records an op in the open batch; store_get finds it
 * there through the batch index. store_commit flushes the buffer with one
 * pwrite, runs the policy's fdatasync over every file the batch wrote, and
 * only then applies the batch's ops to the keydir under the mutex. So the
 * keydir (which merge reads) never points at a record that is not
 * committed, and a failed batch never needs undoing in the keydir: rollback
 * just truncates the log back to where the batch began and drops the ops.
 *
 * Sealing. A log file that stops being active while a batch is open is not
 * yet safe to merge (its newest records are not committed). It is sealed at
 * the next successful commit; merge only reads sealed files. Every record in
 * a sealed file is older than every record in the active file, which is
 * what lets merge drop tombstones (see merge.c).
 */
#include "storage/store_int.h"

#include <errno.h>
#include <fcntl.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#define BATCH_INDEX_MIN 64u

/* ---- the batch index: key -> newest op of the open batch ---- */

static size_t batch_slot(uint64_t hash, size_t mask)
{
    return (size_t)(hash ^ (hash >> 29)) & mask;
}

static bool op_matches(const struct store *s, const struct batch_op *op, uint16_t partition,
                       const void *key, size_t key_len, uint64_t hash)
{
    /* keys.data is NULL while every key of the batch is empty */
    return op->hash == hash && op->partition == partition && op->key_len == key_len &&
           (key_len == 0 || memcmp(s->batch.keys.data + op->key_off, key, key_len) == 0);
}

const struct batch_op *batch_find(struct store *s, uint16_t partition, const void *key,
                                  size_t key_len, uint64_t hash)
{
    struct batch *b = &s->batch;
    if (b->n_ops == 0)
        return NULL;
    for (size_t i = batch_slot(hash, b->index_mask);; i = (i + 1) & b->index_mask) {
        uint32_t v = b->index[i];
        if (v == 0)
            return NULL;
        if (op_matches(s, &b->ops[v - 1], partition, key, key_len, hash))
            return &b->ops[v - 1];
    }
}

/* Makes room for one more op with a key of key_len bytes, so that
 * batch_push cannot fail. */
static int batch_reserve(struct store *s, size_t key_len)
{
    struct batch *b = &s->batch;
    void *ops = b->ops;
    if (rkv_grow(&ops, &b->cap_ops, b->n_ops + 1, sizeof *b->ops) != RKV_OK)
        return RKV_ERR_NOMEM;
    b->ops = ops;
    if (rkv_buf_reserve(&b->keys, key_len) != RKV_OK)
        return RKV_ERR_NOMEM;
    size_t size = b->index ? b->index_mask + 1 : 0;
    if ((b->n_ops + 1) * 2 <= size)
        return RKV_OK;
    size_t nsize = size ? size * 2 : BATCH_INDEX_MIN;
    uint32_t *index = rkv_calloc(nsize, sizeof *index);
    if (index == NULL)
        return RKV_ERR_NOMEM;
    /* Rehash: only the newest op of each key is indexed. */
    for (size_t i = 0; i < size; i++) {
        uint32_t v = b->index[i];
        if (v == 0)
            continue;
        size_t j = batch_slot(b->ops[v - 1].hash, nsize - 1);
        while (index[j] != 0)
            j = (j + 1) & (nsize - 1);
        index[j] = v;
    }
    rkv_free(b->index);
    b->index = index;
    b->index_mask = nsize - 1;
    return RKV_OK;
}

static void batch_push(struct store *s, struct batch_op *op, const void *key)
{
    struct batch *b = &s->batch;
    op->key_off = (uint32_t)b->keys.len;
    if (op->key_len) /* the empty key: keys.data may still be NULL */
        memcpy(b->keys.data + b->keys.len, key, op->key_len);
    b->keys.len += op->key_len;
    b->ops[b->n_ops] = *op;
    uint32_t v = (uint32_t)++b->n_ops;
    for (size_t i = batch_slot(op->hash, b->index_mask);; i = (i + 1) & b->index_mask) {
        uint32_t w = b->index[i];
        if (w == 0 || op_matches(s, &b->ops[w - 1], op->partition, key, op->key_len, op->hash)) {
            b->index[i] = v;
            return;
        }
    }
}

static void batch_clear(struct store *s)
{
    struct batch *b = &s->batch;
    if (b->n_ops)
        memset(b->index, 0, (b->index_mask + 1) * sizeof *b->index);
    b->n_ops = 0;
    b->keys.len = 0;
    b->start_file_id = s->active_id;
    b->start_offset = s->active_size;
}

/* ---- the active file ---- */

static int set_file_dirty(struct store *s, uint32_t id)
{
    pthread_mutex_lock(&s->mu);
    struct store_file *f = store_file_find(s, id);
    if (f)
        f->dirty = true;
    pthread_mutex_unlock(&s->mu);
    return RKV_OK;
}

/* Writes the write buffer to the active file. */
static int wbuf_flush(struct store *s)
{
    if (s->wbuf_len == 0)
        return RKV_OK;
    int sys = store_write_all(s, s->active_fd, s->wbuf, s->wbuf_len, s->wbuf_off);
    if (sys < 0)
        return store_fail(s, rkv_err_from_errno(-sys), "storage: write %010u.log@%llu: %s",
                          s->active_id, (unsigned long long)s->wbuf_off, strerror(-sys));
    s->wbuf_off += s->wbuf_len;
    s->unsynced_bytes += s->wbuf_len;
    s->wbuf_len = 0;
    set_file_dirty(s, s->active_id);
    return RKV_OK;
}

/* Creates log file id, syncs the directory, and adds it to the table
 * (unsealed, mapped for reads). */
int store_create_log(struct store *s, uint32_t id, int *fd_out)
{
    char path[STORE_PATH_BYTES];
    store_log_path(s, path, id, ".log");
    int fd = s->ops->open(s->ops->ctx, path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return store_fail(s, rkv_err_from_errno(-fd), "storage: create %s: %s", path,
                          strerror(-fd));
    int sys = s->ops->sync_dir(s->ops->ctx, s->dir);
    if (sys < 0) {
        s->ops->close(s->ops->ctx, fd);
        s->ops->unlink(s->ops->ctx, path);
        return store_fail(s, rkv_err_from_errno(-sys), "storage: sync %s: %s", s->dir,
                          strerror(-sys));
    }
    struct store_file f = {.id = id, .fd = fd};
    store_file_map(s, &f, s->opt.file_bytes_max);
    pthread_mutex_lock(&s->mu);
    int rc = store_file_add(s, &f);
    pthread_mutex_unlock(&s->mu);
    if (rc != RKV_OK) {
        store_file_release(s, &f);
        s->ops->unlink(s->ops->ctx, path);
        return store_fail(s, rc, "storage: out of memory");
    }
    *fd_out = fd;
    return RKV_OK;
}

static int rotate(struct store *s)
{
    int rc = wbuf_flush(s);
    if (rc != RKV_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    uint32_t id;
    rc = store_take_file_id(s, &id);
    struct store_file *old = store_file_find(s, s->active_id);
    if (old && rc == RKV_OK)
        old->size = s->active_size;
    pthread_mutex_unlock(&s->mu);
    if (rc != RKV_OK)
        return store_fail(s, rc,
                          "storage: log file ids are used up (%010u.log is the last "
                          "there can be); the write was refused",
                          STORE_FILE_ID_MAX);
    int fd;
    rc = store_create_log(s, id, &fd);
    if (rc != RKV_OK)
        return rc;
    s->active_id = id;
    s->active_fd = fd;
    s->active_size = 0;
    s->wbuf_off = 0;
    return RKV_OK;
}

/* Appends r to the active log (through the buffer). */
static int append(struct store *s, const struct record *r, uint32_t *file_id, uint32_t *offset)
{
    size_t total = record_bytes(r->key_len, r->value_len);
    if (s->active_size > 0 && s->active_size + total > s->opt.file_bytes_max) {
        int rc = rotate(s);
        if (rc != RKV_OK)
            return rc;
    }
    if (s->wbuf_len + total > s->opt.write_buffer_bytes) {
        int rc = wbuf_flush(s);
        if (rc != RKV_OK)
            return rc;
    }
    if (total > s->opt.write_buffer_bytes) {
        /* Too big for the buffer: write it straight through. */
        s->scratch.len = 0;
        if (rkv_buf_reserve(&s->scratch, total) != RKV_OK)
            return store_fail(s, RKV_ERR_NOMEM, "storage: out of memory");
        record_encode(s->scratch.data, r, &s->keys);
        int sys = store_write_all(s, s->active_fd, s->scratch.data, total, s->active_size);
        if (sys < 0)
            return store_fail(s, rkv_err_from_errno(-sys), "storage: write %010u.log: %s",
                              s->active_id, strerror(-sys));
        s->wbuf_off += total;
        s->unsynced_bytes += total;
        set_file_dirty(s, s->active_id);
    } else {
        record_encode(s->wbuf + s->wbuf_len, r, &s->keys);
        s->wbuf_len += total;
    }
    *file_id = s->active_id;
    *offset = (uint32_t)s->active_size;
    s->active_size += total;
    return RKV_OK;
}

/*
 * Undoes the open batch after a failed write: drops the buffer, deletes the
 * files the batch created, truncates the file it began in. If the undo
 * itself fails the store is failed.
 */
static void rollback(struct store *s, int code)
{
    s->wbuf_len = 0;
    uint32_t start = s->batch.start_file_id;
    pthread_mutex_lock(&s->mu);
    store_sync_quiesce(s); /* it may hold numbers of the files closed below */
    for (size_t i = 0; i < s->n_files;) {
        struct store_file *f = &s->files[i];
        if (f->sealed || f->id == start) {
            i++;
            continue;
        }
        char path[STORE_PATH_BYTES];
        store_log_path(s, path, f->id, ".log");
        store_file_release(s, f);
        if (s->ops->unlink(s->ops->ctx, path) < 0)
            s->failed = code;
        memmove(f, f + 1, (s->n_files - i - 1) * sizeof *f);
        s->n_files--;
    }
    struct store_file *f = store_file_find(s, start);
    int fd = f ? f->fd : -1;
    pthread_mutex_unlock(&s->mu);
    if (fd < 0 || s->ops->ftruncate(s->ops->ctx, fd, s->batch.start_offset) < 0)
        s->failed = code;
    s->active_id = start;
    s->active_fd = fd;
    s->active_size = s->batch.start_offset;
    s->wbuf_off = s->active_size;
    batch_clear(s);
    if (s->failed)
        RKV_ERROR("storage", "%s: rollback after a failed write failed too; store is failed",
                  s->dir);
}

/* The clock that times STORE_SYNC_INTERVAL: the injected one if the options
 * have it (so a test moves time by hand), else the monotonic clock. Only
 * differences are used; a clock that went back counts as a whole interval
 * passed, so a wall clock set back can bring a sync forward, never delay it. */
static uint64_t sync_clock_ms(const struct store *s)
{
    return s->opt.now_ms ? s->opt.now_ms(s->opt.now_ctx) : rkv_clock_mono_ms();
}

/* fdatasyncs every dirty file. On failure the store is failed: after a
 * failed fdatasync nothing is known about what reached the disk. */
static int sync_dirty(struct store *s)
{
    int fds[64];
    uint32_t ids[64];
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n_files && n < 64; i++) {
            if (s->files[i].dirty) {
                fds[n] = s->files[i].fd;
                ids[n++] = s->files[i].id;
                s->files[i].dirty = false;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            int sys = s->ops->fdatasync(s->ops->ctx, fds[i]);
            if (sys < 0) {
                s->failed = rkv_err_from_errno(-sys);
                RKV_ERROR("storage", "%s: fdatasync %010u.log: %s; store is failed", s->dir, ids[i],
                          strerror(-sys));
                return store_fail(s, s->failed,
                                  "storage: fdatasync %010u.log: %s; the store is failed, "
                                  "reopen it",
                                  ids[i], strerror(-sys));
            }
        }
    }
    s->unsynced_bytes = 0;
    if (s->opt.sync == STORE_SYNC_INTERVAL)
        s->last_sync_ms = sync_clock_ms(s);
    return RKV_OK;
}

/* Applies the committed batch to the keydir and seals finished files.
 * Caller holds mu. Fails (out of memory) only if the keydir cannot grow. */
static int batch_apply(struct store *s)
{
    struct batch *b = &s->batch;
    for (size_t i = 0; i < b->n_ops; i++) {
        const struct batch_op *op = &b->ops[i];
        const uint8_t *key = op->key_len ? b->keys.data + op->key_off : (const uint8_t *)"";
        struct kd_entry *e = keydir_find(&s->kd, op->partition, key, op->key_len, op->hash);
        if (e) {
            struct store_file *old = store_file_find(s, e->file_id);
            if (old)
                old->dead += record_bytes(op->key_len, e->value_len);
        }
        if (op->tomb) {
            if (e)
                keydir_remove(&s->kd, op->partition, e);
            struct store_file *f = store_file_find(s, op->file_id);
            if (f)
                f->dead += record_bytes(op->key_len, 0);
            continue;
        }
        if (e == NULL) {
            bool created;
            e = keydir_upsert(&s->kd, op->partition, key, op->key_len, op->hash, &created);
            if (e == NULL)
                return RKV_ERR_NOMEM;
        }
        e->seq = op->seq;
        e->expiry_ms = op->expiry_ms;
        e->file_id = op->file_id;
        e->offset = op->offset;
        e->value_len = op->value_len;
    }
    for (size_t i = 0; i < s->n_files; i++) {
        struct store_file *f = &s->files[i];
        if (f->id == s->active_id)
            f->size = s->active_size;
        else
            f->sealed = true;
    }
    return RKV_OK;
}

static bool sync_due(const struct store *s)
{
    if (s->opt.sync != STORE_SYNC_INTERVAL || s->unsynced_bytes == 0)
        return false;
    uint64_t now = sync_clock_ms(s);
    return now < s->last_sync_ms || now - s->last_sync_ms >= s->opt.sync_interval_ms;
}

/* Ends the batch: writes it, fdatasyncs it as the policy says (unless
 * nosync), applies it. */
static int commit(struct store *s, bool nosync)
{
    if (atomic_load_explicit(&s->have_retired, memory_order_acquire))
        merge_reap_retired(s);
    if (s->batch.error) {
        int code = s->batch.error;
        s->batch.error = RKV_OK;
        return code; /* errmsg still says what rolled the batch back */
    }
    if (s->failed)
        return store_fail(s, RKV_ERR_FAILED, "storage: store is failed (%s); reopen it",
                          rkv_strerror(s->failed));
    int rc = wbuf_flush(s);
    if (rc != RKV_OK) {
        rollback(s, rc);
        return rc;
    }
    if (!nosync && (s->opt.sync == STORE_SYNC_ALWAYS || sync_due(s))) {
        rc = sync_dirty(s);
        if (rc != RKV_OK) {
            batch_clear(s);
            return rc;
        }
    }
    if (s->batch.n_ops) {
        pthread_mutex_lock(&s->mu);
        rc = batch_apply(s);
        pthread_mutex_unlock(&s->mu);
        if (rc != RKV_OK) {
            s->failed = rc;
            batch_clear(s);
            return store_fail(s, rc,
                              "storage: keydir cannot grow (out of memory); the "
                              "commit is on disk, reopen the store to see it");
        }
    }
    batch_clear(s);
    merge_maybe_trigger(s);
    return RKV_OK;
}

int store_commit(struct store *s)
{
    return commit(s, false);
}

int store_commit_nosync(struct store *s)
{
    return commit(s, true);
}

int store_sync(struct store *s)
{
    int rc = store_commit(s);
    if (rc != RKV_OK)
        return rc;
    return sync_dirty(s);
}

int store_tick(struct store *s)
{
    if (s->failed || s->batch.n_ops || !sync_due(s))
        return RKV_OK;
    return sync_dirty(s);
}

/* Checks that a write can start: not failed, no rolled-back batch, key and
 * value within limits; commits first if the batch is full. */
static int write_begin(struct store *s, size_t key_len, size_t value_len)
{
    if (atomic_load_explicit(&s->have_retired, memory_order_acquire))
        merge_reap_retired(s);
    if (s->failed)
        return store_fail(s, RKV_ERR_FAILED, "storage: store is failed (%s); reopen it",
                          rkv_strerror(s->failed));
    if (s->batch.error)
        return store_fail(s, RKV_ERR_ABORTED,
                          "storage: the batch was rolled back by an earlier error (%s); "
                          "call store_commit",
                          rkv_strerror(s->batch.error));
    if (key_len > s->opt.key_bytes_max)
        return store_fail(s, RKV_ERR_TOOBIG, "storage: key of %zu bytes exceeds the limit of %u",
                          key_len, s->opt.key_bytes_max);
    if (value_len > s->opt.value_bytes_max)
        return store_fail(s, RKV_ERR_TOOBIG, "storage: value of %zu bytes exceeds the limit of %u",
                          value_len, s->opt.value_bytes_max);
    if (s->batch.n_ops >= s->opt.batch_ops_max) {
        /* The caller did not ask for this commit, so it cannot be where the
         * caller learns that the batch failed: a failure here rolled back
         * the caller's earlier writes, and like a failed write it must fail
         * later writes and be reported by the next store_commit. */
        int rc = store_commit(s);
        if (rc != RKV_OK)
            s->batch.error = rc;
        return rc;
    }
    return RKV_OK;
}

/* Appends one record and adds its op to the batch. */
static int write_record(struct store *s, uint16_t partition, const void *key, size_t key_len,
                        uint64_t hash, const void *value, size_t value_len, uint64_t expiry_ms,
                        bool tomb)
{
    /* Only a record with a forged seq near 2^63 can bring this about (2^63
     * writes never happen); recovery could not read the write back. */
    if (s->next_seq > STORE_SEQ_MAX)
        return store_fail(s, RKV_ERR_TOOBIG,
                          "storage: sequence numbers are used up "
                          "(the log holds seq %llu); the write was refused",
                          (unsigned long long)(s->next_seq - 1));
    int rc = batch_reserve(s, key_len);
    if (rc != RKV_OK)
        return store_fail(s, rc, "storage: out of memory");
    struct record r = {
        .seq = s->next_seq++,
        .expiry_ms = expiry_ms,
        .value_len = (uint32_t)value_len,
        .key_len = (uint16_t)key_len,
        .partition = partition,
        .flags = tomb ? RECORD_FLAG_TOMB : 0,
        .key = key,
        .value = value,
    };
    struct batch_op op = {
        .hash = hash,
        .seq = r.seq,
        .expiry_ms = expiry_ms,
        .value_len = r.value_len,
        .key_len = r.key_len,
        .partition = partition,
        .tomb = tomb,
    };
    rc = append(s, &r, &op.file_id, &op.offset);
    if (rc != RKV_OK) {
        rollback(s, rc);
        s->batch.error = rc;
        return rc;
    }
    batch_push(s, &op, key);
    return RKV_OK;
}

int store_put(struct store *s, uint16_t partition, const void *key, size_t key_len,
              const void *value, size_t value_len, uint64_t expiry_ms)
{
    if (key_len == 0)
        key = ""; /* the empty key may come as NULL: never hand NULL to memcmp */
    int rc = write_begin(s, key_len, value_len);
    if (rc != RKV_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    uint64_t keys = keydir_part_count(&s->kd, partition);
    pthread_mutex_unlock(&s->mu);
    if (keys + s->batch.n_ops >= KD_PART_KEYS_MAX)
        return store_fail(s, RKV_ERR_TOOBIG,
                          "storage: partition %u holds the most keys one "
                          "partition can (%u)",
                          partition, KD_PART_KEYS_MAX);
    return write_record(s, partition, key, key_len, keydir_hash(key, key_len), value, value_len,
                        expiry_ms, false);
}

int store_del(struct store *s, uint16_t partition, const void *key, size_t key_len)
{
    if (key_len == 0)
        key = "";
    int rc = write_begin(s, key_len, 0);
    if (rc != RKV_OK)
        return rc;
    uint64_t hash = keydir_hash(key, key_len);
    const struct batch_op *op = batch_find(s, partition, key, key_len, hash);
    bool exists;
    if (op) {
        exists = !op->tomb;
    } else {
        pthread_mutex_lock(&s->mu);
        exists = keydir_find(&s->kd, partition, key, key_len, hash) != NULL;
        pthread_mutex_unlock(&s->mu);
    }
    if (!exists)
        return store_fail(s, RKV_ERR_NOTFOUND, "storage: key not found");
    return write_record(s, partition, key, key_len, hash, NULL, 0, 0, true);
}
