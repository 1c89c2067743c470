/*
 * hint.c: hint files, the keydir's shortcut at open (format in store_int.h).
 *
 * Merge writes one hint file per output log: for every record, what the
 * keydir needs (key, seq, location, sizes, expiry) without the value. The
 * checksum covers the whole file and the trailer names the size of the log
 * it describes, so a hint that is torn, damaged or older than its log is
 * rejected as a whole and the log is scanned instead.
 */
#include "storage/store_int.h"

#include <errno.h>
#include <fcntl.h>

#include "common/alloc.h"
#include "common/limits.h"

#define HINT_FLUSH_BYTES (64u * 1024)

static int hint_flush(struct hint_writer *w)
{
    if (w->buf.len == 0)
        return RKV_OK;
    XXH3_64bits_update(&w->xxh, w->buf.data, w->buf.len);
    int sys = store_write_all(w->s, w->fd, w->buf.data, w->buf.len, w->off);
    if (sys < 0)
        return rkv_err_from_errno(-sys);
    w->off += w->buf.len;
    w->buf.len = 0;
    return RKV_OK;
}

int hint_writer_open(struct hint_writer *w, struct store *s, const char *path)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->fd = s->ops->open(s->ops->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (w->fd < 0)
        return rkv_err_from_errno(-w->fd);
    XXH3_64bits_reset_withSeed(&w->xxh, HINT_SEED);
    return rkv_buf_append(&w->buf, HINT_MAGIC, HINT_HDR_BYTES);
}

int hint_writer_add(struct hint_writer *w, const struct record *r, uint32_t offset)
{
    if (rkv_buf_reserve(&w->buf, HINT_ENTRY_BYTES + r->key_len) != RKV_OK)
        return RKV_ERR_NOMEM;
    uint8_t *p = w->buf.data + w->buf.len;
    rkv_put_u64(p, r->seq);
    rkv_put_u64(p + 8, r->expiry_ms);
    rkv_put_u32(p + 16, offset);
    rkv_put_u32(p + 20, r->value_len);
    rkv_put_u16(p + 24, r->key_len);
    rkv_put_u16(p + 26, r->partition);
    p[28] = r->flags;
    memcpy(p + HINT_ENTRY_BYTES, r->key, r->key_len);
    w->buf.len += HINT_ENTRY_BYTES + r->key_len;
    w->entries++;
    return w->buf.len >= HINT_FLUSH_BYTES ? hint_flush(w) : RKV_OK;
}

int hint_writer_finish(struct hint_writer *w, uint64_t log_bytes)
{
    uint8_t t[16];
    rkv_put_u64(t, log_bytes);
    rkv_put_u64(t + 8, w->entries);
    if (rkv_buf_append(&w->buf, t, sizeof t) != RKV_OK)
        return RKV_ERR_NOMEM;
    int rc = hint_flush(w);
    if (rc != RKV_OK)
        return rc;
    uint8_t sum[8];
    rkv_put_u64(sum, XXH3_64bits_digest(&w->xxh));
    int sys = store_write_all(w->s, w->fd, sum, sizeof sum, w->off);
    if (sys == 0)
        sys = w->s->ops->fdatasync(w->s->ops->ctx, w->fd);
    return sys < 0 ? rkv_err_from_errno(-sys) : RKV_OK;
}

void hint_writer_close(struct hint_writer *w)
{
    if (w->fd >= 0)
        w->s->ops->close(w->s->ops->ctx, w->fd);
    w->fd = -1;
    rkv_buf_free(&w->buf);
}

/* Decodes the entry at p (end is the start of the trailer); false if it
 * does not fit or is not sane for a log of log_bytes. */
static bool hint_entry(const uint8_t *p, const uint8_t *end, uint64_t log_bytes,
                       struct record *r, uint32_t *offset, const uint8_t **next)
{
    if (end - p < HINT_ENTRY_BYTES)
        return false;
    r->seq = rkv_get_u64(p);
    r->expiry_ms = rkv_get_u64(p + 8);
    *offset = rkv_get_u32(p + 16);
    r->value_len = rkv_get_u32(p + 20);
    r->key_len = rkv_get_u16(p + 24);
    r->partition = rkv_get_u16(p + 26);
    r->flags = p[28];
    r->key = p + HINT_ENTRY_BYTES;
    r->value = NULL;
    if (end - r->key < r->key_len || r->flags != 0 || r->value_len > RKV_VALUE_BYTES_MAX ||
        r->seq > STORE_SEQ_MAX || /* as record_parse: bit 63 is KD_TOMB */
        *offset + record_bytes(r->key_len, r->value_len) > log_bytes)
        return false;
    *next = r->key + r->key_len;
    return true;
}

int hint_load(struct store *s, const char *path, uint64_t log_bytes, hint_fn *fn, void *ctx,
              uint64_t *entries)
{
    int fd = s->ops->open(s->ops->ctx, path, O_RDONLY, 0);
    if (fd < 0)
        return fd == -ENOENT ? RKV_ERR_NOTFOUND : RKV_ERR_IO;
    uint64_t size = 0;
    struct rkv_buf b = {0};
    int rc = RKV_ERR_CORRUPT;
    if (s->ops->fsize(s->ops->ctx, fd, &size) < 0) {
        rc = RKV_ERR_IO;
        goto out;
    }
    if (size < HINT_HDR_BYTES + HINT_TRAILER_BYTES || size > SIZE_MAX)
        goto out;
    if (rkv_buf_reserve(&b, (size_t)size) != RKV_OK) {
        rc = RKV_ERR_NOMEM;
        goto out;
    }
    if (store_read_all(s, fd, b.data, (size_t)size, 0) < 0) {
        rc = RKV_ERR_IO;
        goto out;
    }
    const uint8_t *end = b.data + size - HINT_TRAILER_BYTES;
    if (memcmp(b.data, HINT_MAGIC, HINT_HDR_BYTES) != 0 ||
        XXH3_64bits_withSeed(b.data, (size_t)size - 8, HINT_SEED) != rkv_get_u64(end + 16) ||
        rkv_get_u64(end) != log_bytes)
        goto out;
    uint64_t count = rkv_get_u64(end + 8), n = 0;
    struct record r;
    uint32_t offset;
    const uint8_t *p = b.data + HINT_HDR_BYTES;
    while (p < end) { /* verify everything before the keydir sees any of it */
        if (!hint_entry(p, end, log_bytes, &r, &offset, &p))
            goto out;
        n++;
    }
    if (n != count)
        goto out;
    for (p = b.data + HINT_HDR_BYTES; p < end;) {
        hint_entry(p, end, log_bytes, &r, &offset, &p);
        rc = fn(ctx, &r, offset);
        if (rc != RKV_OK)
            goto out;
    }
    *entries = n;
    rc = RKV_OK;
out:
    rkv_buf_free(&b);
    s->ops->close(s->ops->ctx, fd);
    return rc;
}
