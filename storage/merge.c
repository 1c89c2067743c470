/*
 * merge.c: the background merge (bitcask's compaction).
 *
 * A merge rewrites every sealed log file (the inputs) into new files (the
 * outputs) that hold only live records, each with a hint file, then swaps
 * them in. Steps, and what a crash at each leaves behind:
 *
 *   1. Snapshot the inputs: the sealed files (see write.c).
 *   2. Scan each input; a record is live if the keydir still points at
 *      exactly it (same file, offset and seq). Copy live records, bytes
 *      unchanged, into NNNNNNNNNN.log.merging outputs, and their hint
 *      entries into NNNNNNNNNN.hint.merging. Tombstones are dropped, and so
 *      are expired records (their keys leave the keydir: expired reads as
 *      absent anyway).                       crash: open deletes *.merging.
 *   3. fdatasync outputs and hints, sync the directory.     crash: as 2.
 *   4. Commit: write MERGE.tmp naming inputs and outputs, fdatasync it,
 *      rename it to MERGE, sync the directory.
 *                     crash: open finds MERGE and finishes steps 6-7.
 *   5. Switch, in memory, under the mutex: add the outputs to the file
 *      table, point every keydir entry that still names a copied record at
 *      its copy (matched by seq), retire the inputs.
 *   6. Unlink inputs, rename outputs to their final names, sync the dir.
 *   7. Unlink MERGE, sync the dir.
 * A failure before 4 abandons the merge and deletes its outputs; a failure
 * after 4 leaves MERGE for the next open to finish, and disables merging
 * on this handle so no later merge can overwrite the marker.
 *
 * Why dropping tombstones is safe. A tombstone for k can be dropped only if
 * no older record of k survives it. Every record in a sealed file is older
 * than every record in the active file, so all older records of k are in
 * sealed files, which are all inputs; they are dead (the keydir points at
 * something newer, or nothing), so none is copied; and the inputs disappear
 * together, atomically by the marker. The same argument covers expired
 * records and the older versions they shadow.
 *
 * Cost: a merge reads all sealed files and writes their live bytes once.
 * Rewriting files with nothing dead is the price of the simple safety
 * argument above; merging only a subset would need tombstones kept until
 * every older file is merged.
 */
#include "storage/store_int.h"

#include <errno.h>
#include <fcntl.h>

#include "common/alloc.h"
#include "common/log.h"

#define MERGE_WBUF_BYTES (256u * 1024)
#define MERGE_LOCK_BATCH 64 /* relocations per mutex hold: short, for readers' latency */

struct merge_out {
    uint32_t id;
    int fd;
    uint64_t size;
    uint64_t live;
};

struct merge {
    struct store *s;
    uint32_t *inputs; /* sorted ids */
    size_t n_inputs;
    uint64_t input_bytes;
    struct merge_out *outs;
    size_t n_outs, cap_outs;
    struct merge_out *cur;   /* the output being written, or NULL */
    struct hint_writer hw;
    bool hw_open;
    struct rkv_buf wbuf;     /* unflushed tail of cur */
    uint64_t now_ms;
    uint32_t in_id;          /* input being scanned */
    uint64_t bad_records;
    uint64_t seen;
    bool stop;
};

static int merge_err(struct merge *m, int rc, const char *what, int sys)
{
    RKV_ERROR("storage", "%s: merge: %s: %s", m->s->dir, what,
              sys ? strerror(-sys) : rkv_strerror(rc));
    return rc;
}

static int out_flush(struct merge *m)
{
    if (m->wbuf.len == 0)
        return RKV_OK;
    int sys = store_write_all(m->s, m->cur->fd, m->wbuf.data, m->wbuf.len,
                              m->cur->size - m->wbuf.len);
    if (sys < 0)
        return merge_err(m, rkv_err_from_errno(-sys), "write output", sys);
    m->wbuf.len = 0;
    return RKV_OK;
}

/* Flushes and syncs the current output and its hint file. */
static int out_finish(struct merge *m)
{
    if (m->cur == NULL)
        return RKV_OK;
    int rc = out_flush(m);
    if (rc != RKV_OK)
        return rc;
    int sys = m->s->ops->fdatasync(m->s->ops->ctx, m->cur->fd);
    if (sys < 0)
        return merge_err(m, rkv_err_from_errno(-sys), "fdatasync output", sys);
    rc = hint_writer_finish(&m->hw, m->cur->size);
    hint_writer_close(&m->hw);
    m->hw_open = false;
    if (rc != RKV_OK)
        return merge_err(m, rc, "write hint file", 0);
    m->cur = NULL;
    return RKV_OK;
}

static int out_start(struct merge *m)
{
    struct store *s = m->s;
    void *outs = m->outs;
    if (rkv_grow(&outs, &m->cap_outs, m->n_outs + 1, sizeof *m->outs) != RKV_OK)
        return RKV_ERR_NOMEM;
    m->outs = outs;
    pthread_mutex_lock(&s->mu);
    uint32_t id;
    int rc = store_take_file_id(s, &id);
    pthread_mutex_unlock(&s->mu);
    if (rc != RKV_OK)
        return merge_err(m, rc, "log file ids are used up", 0);
    char path[STORE_PATH_BYTES];
    store_log_path(s, path, id, ".log.merging");
    int fd = s->ops->open(s->ops->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return merge_err(m, rkv_err_from_errno(-fd), "create output", fd);
    m->cur = &m->outs[m->n_outs++];
    *m->cur = (struct merge_out){.id = id, .fd = fd};
    store_log_path(s, path, id, ".hint.merging");
    rc = hint_writer_open(&m->hw, s, path);
    m->hw_open = true;
    if (rc != RKV_OK)
        return merge_err(m, rc, "create hint file", 0);
    return RKV_OK;
}

/* Copies the live record r (raw bytes at raw) to the current output. */
static int out_append(struct merge *m, const struct record *r, const uint8_t *raw)
{
    size_t total = record_bytes(r->key_len, r->value_len);
    if (m->cur && m->cur->size > 0 && m->cur->size + total > m->s->opt.file_bytes_max) {
        int rc = out_finish(m);
        if (rc != RKV_OK)
            return rc;
    }
    if (m->cur == NULL) {
        int rc = out_start(m);
        if (rc != RKV_OK)
            return rc;
    }
    if (m->wbuf.len + total > MERGE_WBUF_BYTES) {
        int rc = out_flush(m);
        if (rc != RKV_OK)
            return rc;
    }
    uint32_t offset = (uint32_t)m->cur->size;
    if (rkv_buf_append(&m->wbuf, raw, total) != RKV_OK)
        return RKV_ERR_NOMEM;
    m->cur->size += total;
    return hint_writer_add(&m->hw, r, offset);
}

/* record_scan callback over an input: keep the record if it is live. */
static int merge_record(void *arg, const struct record *r, uint32_t offset)
{
    struct merge *m = arg;
    struct store *s = m->s;
    if (r->flags & RECORD_FLAG_TOMB)
        return RKV_OK;
    bool live = false;
    pthread_mutex_lock(&s->mu);
    if (s->merge_stop) {
        m->stop = true;
    } else {
        uint64_t hash = keydir_hash(r->key, r->key_len);
        struct kd_entry *e = keydir_find(&s->kd, r->partition, r->key, r->key_len, hash);
        live = e && e->seq == r->seq && e->file_id == m->in_id && e->offset == offset;
        if (live && r->expiry_ms != 0 && r->expiry_ms <= m->now_ms) {
            keydir_remove(&s->kd, r->partition, e);
            live = false;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (m->stop)
        return RKV_ERR_ABORTED;
    if (!live)
        return RKV_OK;
    return out_append(m, r, r->key - RECORD_HDR_BYTES);
}

static int merge_scan_input(struct merge *m, uint32_t id)
{
    struct store *s = m->s;
    pthread_mutex_lock(&s->mu);
    struct store_file f = *store_file_find(s, id);
    pthread_mutex_unlock(&s->mu);
    struct rkv_buf copy = {0};
    const uint8_t *data;
    int rc = store_file_view(s, &f, &copy, &data);
    if (rc == RKV_OK) {
        struct scan_result res;
        m->in_id = id;
        rc = record_scan(data, f.size, &s->keys, merge_record, m, &res);
        m->bad_records += res.bad_records + (res.valid_end < f.size);
    }
    rkv_buf_free(&copy);
    return rc;
}

static int write_marker(struct merge *m)
{
    struct store *s = m->s;
    struct rkv_buf b = {0};
    uint8_t hdr[16];
    memcpy(hdr, MARKER_MAGIC, 8);
    rkv_put_u32(hdr + 8, (uint32_t)m->n_inputs);
    rkv_put_u32(hdr + 12, (uint32_t)m->n_outs);
    int rc = rkv_buf_append(&b, hdr, sizeof hdr);
    for (size_t i = 0; rc == RKV_OK && i < m->n_inputs + m->n_outs; i++) {
        uint8_t id[4];
        rkv_put_u32(id, i < m->n_inputs ? m->inputs[i] : m->outs[i - m->n_inputs].id);
        rc = rkv_buf_append(&b, id, 4);
    }
    uint8_t sum[8];
    if (rc == RKV_OK) {
        rkv_put_u64(sum, XXH3_64bits_withSeed(b.data, b.len, MARKER_SEED));
        rc = rkv_buf_append(&b, sum, 8);
    }
    if (rc != RKV_OK) {
        rkv_buf_free(&b);
        return RKV_ERR_NOMEM;
    }
    char tmp[STORE_PATH_BYTES], path[STORE_PATH_BYTES];
    store_path(s, tmp, "MERGE.tmp");
    store_path(s, path, "MERGE");
    int sys = s->ops->open(s->ops->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (sys >= 0) {
        int fd = sys;
        sys = store_write_all(s, fd, b.data, b.len, 0);
        if (sys == 0)
            sys = s->ops->fdatasync(s->ops->ctx, fd);
        s->ops->close(s->ops->ctx, fd);
    }
    rkv_buf_free(&b);
    if (sys == 0)
        sys = s->ops->rename(s->ops->ctx, tmp, path);
    if (sys == 0)
        sys = s->ops->sync_dir(s->ops->ctx, s->dir);
    if (sys < 0)
        return merge_err(m, rkv_err_from_errno(-sys), "write MERGE", sys);
    return RKV_OK;
}

static bool is_input(const struct merge *m, uint32_t id)
{
    size_t lo = 0, hi = m->n_inputs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->inputs[mid] == id)
            return true;
        if (m->inputs[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

struct reloc {
    struct merge *m;
    struct merge_out *out;
    int held;
};

/* record_scan callback over an output: point the keydir at the copy. */
static int relocate_record(void *arg, const struct record *r, uint32_t offset)
{
    struct reloc *c = arg;
    struct store *s = c->m->s;
    if (c->held == 0)
        pthread_mutex_lock(&s->mu);
    struct kd_entry *e =
        keydir_find(&s->kd, r->partition, r->key, r->key_len, keydir_hash(r->key, r->key_len));
    if (e && e->seq == r->seq && is_input(c->m, e->file_id)) {
        e->file_id = c->out->id;
        e->offset = offset;
        c->out->live += record_bytes(r->key_len, r->value_len);
    }
    if (++c->held == MERGE_LOCK_BATCH) {
        pthread_mutex_unlock(&s->mu);
        c->held = 0;
    }
    return RKV_OK;
}

static bool in_input(void *ctx, const struct kd_entry *e)
{
    return is_input(ctx, e->file_id);
}

/* Drops keydir entries that still point into inputs: their records were
 * damaged and not copied. Caller holds mu. */
static void drop_orphans(struct merge *m)
{
    struct store *s = m->s;
    uint64_t dropped = keydir_remove_if(&s->kd, in_input, m);
    if (dropped)
        RKV_WARN("storage", "%s: merge: %llu keys had damaged records and were dropped", s->dir,
                 (unsigned long long)dropped);
}

/* Step 5: the in-memory switch. Cannot fail except for memory, which only
 * costs the outputs' map (reads fall back to pread). */
static int merge_switch(struct merge *m)
{
    struct store *s = m->s;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < m->n_outs; i++) {
        struct store_file f = {.id = m->outs[i].id, .fd = m->outs[i].fd, .size = m->outs[i].size,
                               .sealed = true};
        store_file_map(s, &f, f.size);
        if (store_file_add(s, &f) != RKV_OK) {
            store_file_release(s, &f);
            pthread_mutex_unlock(&s->mu);
            return merge_err(m, RKV_ERR_NOMEM, "register outputs", 0);
        }
        m->outs[i].fd = -1; /* owned by the table now */
    }
    pthread_mutex_unlock(&s->mu);

    for (size_t i = 0; i < m->n_outs; i++) {
        pthread_mutex_lock(&s->mu);
        struct store_file f = *store_file_find(s, m->outs[i].id);
        pthread_mutex_unlock(&s->mu);
        struct rkv_buf copy = {0};
        const uint8_t *data;
        struct reloc c = {.m = m, .out = &m->outs[i]};
        int rc = store_file_view(s, &f, &copy, &data);
        if (rc == RKV_OK) {
            struct scan_result res;
            rc = record_scan(data, f.size, &s->keys, relocate_record, &c, &res);
        }
        if (c.held)
            pthread_mutex_unlock(&s->mu);
        rkv_buf_free(&copy);
        if (rc != RKV_OK)
            return merge_err(m, rc, "read back output", 0);
    }

    pthread_mutex_lock(&s->mu);
    if (m->bad_records)
        drop_orphans(m);
    uint64_t out_bytes = 0;
    for (size_t i = 0; i < m->n_outs; i++) {
        struct store_file *f = store_file_find(s, m->outs[i].id);
        f->dead = f->size - m->outs[i].live;
        out_bytes += f->size;
    }
    for (size_t i = 0; i < m->n_inputs; i++) {
        struct store_file *f = store_file_find(s, m->inputs[i]);
        void *r = s->retired;
        if (rkv_grow(&r, &s->cap_retired, s->n_retired + 1, sizeof *s->retired) == RKV_OK) {
            s->retired = r;
            s->retired[s->n_retired++] = *f;
        } /* else leak the fd and map until close: still correct */
        size_t idx = (size_t)(f - s->files);
        memmove(f, f + 1, (s->n_files - idx - 1) * sizeof *f);
        s->n_files--;
    }
    atomic_store_explicit(&s->have_retired, true, memory_order_release);
    s->merge_bytes_reclaimed += m->input_bytes > out_bytes ? m->input_bytes - out_bytes : 0;
    pthread_mutex_unlock(&s->mu);
    return RKV_OK;
}

/* Steps 6 and 7: the directory catches up with the marker. */
static int apply_marker(struct store *s, const uint32_t *inputs, size_t n_in,
                        const uint32_t *outputs, size_t n_out)
{
    char from[STORE_PATH_BYTES], to[STORE_PATH_BYTES];
    for (size_t i = 0; i < n_in; i++) {
        store_log_path(s, from, inputs[i], ".log");
        int sys = s->ops->unlink(s->ops->ctx, from);
        if (sys < 0 && sys != -ENOENT)
            return sys;
        store_log_path(s, from, inputs[i], ".hint");
        sys = s->ops->unlink(s->ops->ctx, from);
        if (sys < 0 && sys != -ENOENT)
            return sys;
    }
    for (size_t i = 0; i < n_out; i++) {
        static const char *const sfx[2][2] = {{".log.merging", ".log"},
                                              {".hint.merging", ".hint"}};
        for (int k = 0; k < 2; k++) {
            store_log_path(s, from, outputs[i], sfx[k][0]);
            store_log_path(s, to, outputs[i], sfx[k][1]);
            int sys = s->ops->rename(s->ops->ctx, from, to);
            if (sys < 0 && sys != -ENOENT)
                return sys;
        }
    }
    int sys = s->ops->sync_dir(s->ops->ctx, s->dir);
    if (sys < 0)
        return sys;
    store_path(s, from, "MERGE");
    sys = s->ops->unlink(s->ops->ctx, from);
    if (sys < 0)
        return sys;
    return s->ops->sync_dir(s->ops->ctx, s->dir);
}

/* Abandons an uncommitted merge: closes and deletes its outputs. */
static void merge_abandon(struct merge *m)
{
    if (m->hw_open)
        hint_writer_close(&m->hw);
    char path[STORE_PATH_BYTES];
    for (size_t i = 0; i < m->n_outs; i++) {
        if (m->outs[i].fd >= 0)
            m->s->ops->close(m->s->ops->ctx, m->outs[i].fd);
        store_log_path(m->s, path, m->outs[i].id, ".log.merging");
        m->s->ops->unlink(m->s->ops->ctx, path);
        store_log_path(m->s, path, m->outs[i].id, ".hint.merging");
        m->s->ops->unlink(m->s->ops->ctx, path);
    }
}

static int merge_run(struct store *s)
{
    struct merge m = {.s = s, .now_ms = store_now_ms(s)};
    int rc = RKV_OK;
    pthread_mutex_lock(&s->mu);
    m.inputs = rkv_calloc(s->n_files ? s->n_files : 1, sizeof *m.inputs);
    for (size_t i = 0; m.inputs && i < s->n_files; i++) {
        if (s->files[i].sealed) {
            m.inputs[m.n_inputs++] = s->files[i].id;
            m.input_bytes += s->files[i].size;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (m.inputs == NULL)
        return RKV_ERR_NOMEM;
    if (m.n_inputs == 0 || m.n_inputs > MARKER_IDS_MAX / 2)
        goto out;
    store_ids_sort(m.inputs, m.n_inputs);

    for (size_t i = 0; rc == RKV_OK && i < m.n_inputs; i++)
        rc = merge_scan_input(&m, m.inputs[i]);
    if (rc == RKV_OK)
        rc = out_finish(&m);
    if (rc == RKV_OK && m.n_outs > MARKER_IDS_MAX / 2)
        rc = merge_err(&m, RKV_ERR_TOOBIG, "too many outputs", 0);
    if (rc == RKV_OK) {
        int sys = s->ops->sync_dir(s->ops->ctx, s->dir);
        if (sys < 0)
            rc = merge_err(&m, rkv_err_from_errno(-sys), "sync directory", sys);
    }
    if (rc == RKV_OK)
        rc = write_marker(&m);
    if (rc != RKV_OK) {
        merge_abandon(&m);
        goto out;
    }
    /* Committed: from here on the next open would finish the job. */
    rc = merge_switch(&m);
    uint32_t *out_ids = rkv_calloc(m.n_outs ? m.n_outs : 1, sizeof *out_ids);
    int sys = -ENOMEM;
    if (out_ids) {
        for (size_t i = 0; i < m.n_outs; i++)
            out_ids[i] = m.outs[i].id;
        sys = rc == RKV_OK ? apply_marker(s, m.inputs, m.n_inputs, out_ids, m.n_outs) : -EIO;
    }
    rkv_free(out_ids);
    if (sys < 0) {
        pthread_mutex_lock(&s->mu);
        s->merge_disabled = true;
        pthread_mutex_unlock(&s->mu);
        RKV_ERROR("storage", "%s: merge committed but could not finish (%s); merging is off "
                  "until the store is reopened, which finishes it",
                  s->dir, strerror(-sys));
        rc = rc != RKV_OK ? rc : rkv_err_from_errno(-sys);
    }
    for (size_t i = 0; i < m.n_outs; i++)
        if (m.outs[i].fd >= 0) /* not handed to the table */
            s->ops->close(s->ops->ctx, m.outs[i].fd);
out:
    rkv_buf_free(&m.wbuf);
    rkv_free(m.outs);
    rkv_free(m.inputs);
    return rc;
}

static void *merge_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->merge_stop) {
        if (!s->merge_requested || s->merge_disabled) {
            s->merge_requested = false;
            pthread_cond_broadcast(&s->merge_done_cv);
            pthread_cond_wait(&s->merge_cv, &s->mu);
            continue;
        }
        s->merge_requested = false;
        s->merge_running = true;
        pthread_mutex_unlock(&s->mu);
        int rc = merge_run(s);
        pthread_mutex_lock(&s->mu);
        s->merge_running = false;
        s->merge_last_error = rc;
        if (rc == RKV_OK)
            s->merges++;
        pthread_cond_broadcast(&s->merge_done_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int merge_thread_start(struct store *s)
{
    if (pthread_create(&s->merge_thread, NULL, merge_main, s) != 0)
        return RKV_ERR_NOMEM;
    s->merge_thread_started = true;
    return RKV_OK;
}

void merge_thread_stop(struct store *s)
{
    if (!s->merge_thread_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->merge_stop = true;
    pthread_cond_broadcast(&s->merge_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->merge_thread, NULL);
    s->merge_thread_started = false;
}

void merge_maybe_trigger(struct store *s)
{
    const struct store_options *o = &s->opt;
    if (!o->merge_auto)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->merge_running && !s->merge_requested && !s->merge_disabled) {
        uint64_t total = 0, dead = 0, n = 0;
        for (size_t i = 0; i < s->n_files; i++) {
            if (!s->files[i].sealed)
                continue;
            n++;
            total += s->files[i].size;
            dead += s->files[i].dead;
        }
        uint64_t live_files = (total - dead + o->file_bytes_max - 1) / o->file_bytes_max;
        bool by_dead = dead >= o->merge_dead_bytes_min && dead * 100 >= total * o->merge_dead_percent;
        bool by_count = n >= o->merge_files_max && n - live_files >= o->merge_files_max / 2;
        if (by_dead || by_count) {
            s->merge_requested = true;
            pthread_cond_signal(&s->merge_cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int store_merge(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    int rc = RKV_OK;
    if (s->merge_running || s->merge_requested)
        rc = RKV_ERR_BUSY;
    else if (s->merge_disabled)
        rc = RKV_ERR_FAILED;
    else {
        s->merge_requested = true;
        pthread_cond_signal(&s->merge_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_merge_wait(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->merge_running || s->merge_requested)
        pthread_cond_wait(&s->merge_done_cv, &s->mu);
    int rc = s->merge_last_error;
    pthread_mutex_unlock(&s->mu);
    merge_reap_retired(s);
    return rc;
}

void merge_reap_retired(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    store_sync_quiesce(s); /* it may hold numbers of the files closed below */
    for (size_t i = 0; i < s->n_retired; i++)
        store_file_release(s, &s->retired[i]);
    s->n_retired = 0;
    atomic_store_explicit(&s->have_retired, false, memory_order_release);
    pthread_mutex_unlock(&s->mu);
}

int merge_finish_marker(struct store *s, bool *completed, struct rkv_error *err)
{
    *completed = false;
    char path[STORE_PATH_BYTES];
    store_path(s, path, "MERGE");
    int fd = s->ops->open(s->ops->ctx, path, O_RDONLY, 0);
    if (fd == -ENOENT)
        return RKV_OK;
    if (fd < 0)
        return rkv_error_set(err, RKV_ERR_IO, "storage: open %s: %s", path, strerror(-fd));
    uint64_t size = 0;
    uint8_t *b = NULL;
    int rc = RKV_ERR_CORRUPT;
    if (s->ops->fsize(s->ops->ctx, fd, &size) < 0 || size < 24 ||
        size > 24 + 8ull * MARKER_IDS_MAX)
        goto out;
    b = rkv_malloc((size_t)size);
    if (b == NULL) {
        rc = RKV_ERR_NOMEM;
        goto out;
    }
    if (store_read_all(s, fd, b, (size_t)size, 0) < 0) {
        rc = RKV_ERR_IO;
        goto out;
    }
    uint32_t n_in = rkv_get_u32(b + 8), n_out = rkv_get_u32(b + 12);
    if (memcmp(b, MARKER_MAGIC, 8) != 0 || (uint64_t)n_in + n_out > MARKER_IDS_MAX ||
        size != 24 + 4ull * (n_in + n_out) ||
        XXH3_64bits_withSeed(b, (size_t)size - 8, MARKER_SEED) != rkv_get_u64(b + size - 8))
        goto out;
    uint32_t *ids = rkv_calloc((size_t)n_in + n_out + 1, sizeof *ids);
    if (ids == NULL) {
        rc = RKV_ERR_NOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n_in + n_out; i++)
        ids[i] = rkv_get_u32(b + 16 + 4 * i);
    int sys = apply_marker(s, ids, n_in, ids + n_in, n_out);
    rkv_free(ids);
    rc = sys < 0 ? RKV_ERR_IO : RKV_OK;
    if (rc == RKV_OK) {
        *completed = true;
        RKV_INFO("storage", "%s: finished a merge interrupted after its commit (%u inputs, "
                 "%u outputs)", s->dir, n_in, n_out);
    }
out:
    rkv_free(b);
    s->ops->close(s->ops->ctx, fd);
    if (rc == RKV_ERR_CORRUPT)
        return rkv_error_set(err, rc,
                             "storage: %s is damaged; a merge's switch cannot be finished "
                             "safely: restore the directory from a replica",
                             path);
    if (rc != RKV_OK)
        return rkv_error_set(err, rc, "storage: finishing the merge recorded in %s: %s", path,
                             rkv_strerror(rc));
    return RKV_OK;
}
