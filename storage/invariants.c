/*
 * invariants.c: store_invariants_ok, the checker of a store handle's
 * invariants, which the storage tests assert after each step (STYLE.md:
 * one x_invariants_ok per core structure, like SQLite's assert_pager_state).
 *
 * What it checks, beyond keydir_invariants_ok's structure of the keydir:
 *   files   the table is sorted by id, ids are below next_file_id, every
 *           file is open, and its dead bytes fit in it. The active log is
 *           in the table, unsealed, and its size is the flushed bytes plus
 *           the write buffer. Files other than the active log are sealed
 *           unless the open batch wrote them (a rotation mid-batch).
 *   keydir  every entry names a file in the table and lies inside it, and
 *           has a seq below next_seq with no tombstone mark left from
 *           recovery.
 *   batch   an empty batch starts where the active log ends; a rolled-back
 *           one is empty; ops are in seq order, inside files the batch may
 *           write, and the index holds exactly the newest op of each key.
 * A failed handle (s->failed) promises nothing but a sound keydir, so only
 * that is checked for it. Costs a walk of the keydir and the batch: for
 * tests only.
 */
#include "storage/store_int.h"

/* The bytes of f that records may lie in: the active log's size is the
 * owner's (f->size catches up only at commit). */
static uint64_t file_bytes(const struct store *s, const struct store_file *f)
{
    return f->id == s->active_id ? s->active_size : f->size;
}

static const char *files_check(const struct store *s)
{
    if (s->n_files == 0)
        return "no files: the active log is missing";
    for (size_t i = 0; i < s->n_files; i++) {
        const struct store_file *f = &s->files[i];
        if (i > 0 && s->files[i - 1].id >= f->id)
            return "file table not sorted by id";
        if (f->id == 0 || f->id >= s->next_file_id || f->id > STORE_FILE_ID_MAX)
            return "file id out of range";
        if (f->fd < 0)
            return "file in the table is not open";
        if (f->dead > file_bytes(s, f))
            return "file has more dead bytes than bytes";
        bool batch_wrote = s->batch.n_ops > 0 && f->id >= s->batch.start_file_id;
        if (!f->sealed && f->id != s->active_id && !batch_wrote)
            return "unsealed file that is neither active nor written by the open batch";
    }
    const struct store_file *a = store_file_find((struct store *)s, s->active_id);
    if (a == NULL || a->fd != s->active_fd)
        return "active log missing from the table";
    if (a->sealed)
        return "active log is sealed";
    if (s->active_size != s->wbuf_off + s->wbuf_len || s->wbuf_len > s->opt.write_buffer_bytes)
        return "active size is not flushed bytes plus the write buffer";
    return NULL;
}

struct entry_check {
    struct store *s;
    const char *why;
};

static int entry_check(void *arg, uint16_t part, struct kd_entry *e)
{
    struct entry_check *c = arg;
    struct store *s = c->s;
    const struct store_file *f = store_file_find(s, e->file_id);
    uint16_t key_len;
    keydir_key(&s->kd, part, e, &key_len);
    if ((e->seq & KD_TOMB) || e->seq == 0 || e->seq >= s->next_seq)
        c->why = "keydir entry with a tombstone mark or a seq out of range";
    else if (f == NULL)
        c->why = "keydir entry names a file not in the table";
    else if ((uint64_t)e->offset + record_bytes(key_len, e->value_len) > file_bytes(s, f))
        c->why = "keydir entry points past the end of its file";
    return c->why != NULL;
}

static const char *keydir_check(struct store *s)
{
    if (!keydir_invariants_ok(&s->kd))
        return "keydir structure (keydir_invariants_ok)";
    struct entry_check c = {.s = s};
    keydir_each(&s->kd, entry_check, &c);
    return c.why;
}

static const char *batch_check(struct store *s)
{
    const struct batch *b = &s->batch;
    if (b->n_ops == 0)
        return b->start_file_id == s->active_id && b->start_offset == s->active_size
                   ? NULL
                   : "empty batch does not start at the end of the active log";
    if (b->error != RKV_OK)
        return "rolled-back batch still holds ops";
    if (b->n_ops > s->opt.batch_ops_max)
        return "batch holds more than batch_ops_max ops";
    size_t key_bytes = 0, newest = 0;
    for (size_t i = 0; i < b->n_ops; i++) {
        const struct batch_op *op = &b->ops[i];
        key_bytes += op->key_len;
        if (op->seq >= s->next_seq || (i > 0 && op->seq <= b->ops[i - 1].seq))
            return "batch ops out of seq order";
        const struct store_file *f = store_file_find(s, op->file_id);
        if (f == NULL || op->file_id < b->start_file_id ||
            (uint64_t)op->offset + record_bytes(op->key_len, op->value_len) > file_bytes(s, f))
            return "batch op outside the files the batch wrote";
        const uint8_t *key = op->key_len ? b->keys.data + op->key_off : (const uint8_t *)"";
        const struct batch_op *found = batch_find(s, op->partition, key, op->key_len, op->hash);
        if (found == NULL || found < op)
            return "batch index does not lead to the newest op of a key";
        newest += found == op;
    }
    if (key_bytes != b->keys.len)
        return "batch key bytes do not add up";
    size_t indexed = 0;
    for (size_t i = 0; i <= b->index_mask; i++)
        indexed += b->index[i] != 0;
    if (indexed != newest)
        return "batch index holds other than one op per key";
    return NULL;
}

bool store_invariants_ok(struct store *s, const char **why)
{
    const char *broken = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->failed)
        broken = keydir_invariants_ok(&s->kd) ? NULL : "keydir structure (keydir_invariants_ok)";
    else if ((broken = files_check(s)) == NULL && (broken = keydir_check(s)) == NULL)
        broken = batch_check(s);
    pthread_mutex_unlock(&s->mu);
    if (why)
        *why = broken;
    return broken == NULL;
}
