/*
 * codec.h: msgpack encoding and bounded decoding, for the wire protocol and
 * the stored object format.
 *
 * Writing appends each value, in its shortest msgpack form, to a struct
 * rkv_buf (reserving room once per value, no callback per byte).
 *
 * Reading does not use msgpack-c's unpacker: it allocates a tree sized by
 * the counts a frame claims, so a five-byte frame whose array header says
 * four billion elements asks for gigabytes. struct mp_reader is a cursor
 * over the bytes instead: it allocates nothing, hands out borrowed pointers
 * for bin/str payloads, refuses any array or map whose count exceeds the
 * bytes left (every element takes at least one byte), and caps nesting when
 * skipping values it does not know. The first failure makes the reader
 * sticky-failed: every later call returns false, so a decoder can read a
 * whole message and check r->failed once.
 */
#ifndef RKV_CODEC_H
#define RKV_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MP_DEPTH_MAX 16 /* deepest value mp_skip will walk */

struct mp_writer {
    struct rkv_buf *buf;
    bool failed; /* out of memory at some point */
};

/* Appends to buf (which keeps its current contents). */
void mp_writer_init(struct mp_writer *w, struct rkv_buf *buf);
void mp_write_array(struct mp_writer *w, uint32_t n);
void mp_write_map(struct mp_writer *w, uint32_t n);
void mp_write_uint(struct mp_writer *w, uint64_t v);
void mp_write_int(struct mp_writer *w, int64_t v);
void mp_write_bool(struct mp_writer *w, bool v);
void mp_write_nil(struct mp_writer *w);
void mp_write_bin(struct mp_writer *w, const void *p, size_t len);
void mp_write_str(struct mp_writer *w, const char *s, size_t len);
void mp_write_cstr(struct mp_writer *w, const char *s);
/* Appends bytes that are already msgpack (one or more whole values). */
void mp_write_raw(struct mp_writer *w, const void *p, size_t len);

struct mp_reader {
    const uint8_t *p;
    const uint8_t *end;
    bool failed;
};

void mp_reader_init(struct mp_reader *r, const void *data, size_t len);
/* Each returns false (and fails the reader) on a type mismatch, a
 * truncated value, or a count larger than the bytes left. */
bool mp_read_array(struct mp_reader *r, uint32_t *n);
bool mp_read_map(struct mp_reader *r, uint32_t *n);
bool mp_read_uint(struct mp_reader *r, uint64_t *v);   /* any non-negative integer */
bool mp_read_int(struct mp_reader *r, int64_t *v);     /* any integer within int64 */
bool mp_read_bool(struct mp_reader *r, bool *v);
bool mp_read_nil(struct mp_reader *r);
bool mp_read_bin(struct mp_reader *r, const uint8_t **p, uint32_t *len); /* borrowed */
bool mp_read_str(struct mp_reader *r, const char **p, uint32_t *len);    /* borrowed, not NUL-terminated */
/* Narrowing helpers: fail unless the integer fits. */
bool mp_read_u32(struct mp_reader *r, uint32_t *v);
bool mp_read_u16(struct mp_reader *r, uint16_t *v);
/* True if the next value is nil (without consuming it). */
bool mp_peek_nil(const struct mp_reader *r);
/* Skips one value of any type, nested at most MP_DEPTH_MAX deep. */
bool mp_skip(struct mp_reader *r);
/* Bytes not yet read. */
static inline size_t mp_left(const struct mp_reader *r)
{
    return (size_t)(r->end - r->p);
}
/* True if the reader has not failed and consumed everything. */
static inline bool mp_done(const struct mp_reader *r)
{
    return !r->failed && r->p == r->end;
}

#endif
