/*
 * codec.c: msgpack writer and bounded reader.
 *
 * Both sides are sticky: after the writer's first failure it appends
 * nothing more (the buffer keeps a clean prefix), and after the reader's
 * first failure every call returns false. mp_skip recurses once per nested
 * array or map and refuses the (MP_DEPTH_MAX + 1)th, whatever it contains.
 */
#include "common/codec.h"

#include "common/err.h"

/* Room for n more bytes at the end of the buffer, or NULL (the writer is
 * then failed, and every later write is a no-op). */
static uint8_t *room(struct mp_writer *w, size_t n)
{
    struct rkv_buf *b = w->buf;
    if (w->failed)
        return NULL;
    if (b->cap - b->len < n && rkv_buf_reserve(b, n) != RKV_OK) {
        w->failed = true;
        return NULL;
    }
    return b->data + b->len;
}

/* A tag byte followed by v in `bytes` big-endian bytes (0 for none). */
static void put_tag(struct mp_writer *w, uint8_t tag, uint64_t v, unsigned bytes)
{
    uint8_t *p = room(w, 1 + bytes);
    if (p == NULL)
        return;
    p[0] = tag;
    for (unsigned i = 0; i < bytes; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    w->buf->len += 1 + bytes;
}

void mp_writer_init(struct mp_writer *w, struct rkv_buf *buf)
{
    w->buf = buf;
    w->failed = false;
}

/* Every value in its shortest form (the reader accepts nothing else). */
static void put_count(struct mp_writer *w, uint32_t n, uint8_t fix, uint32_t fix_max,
                      uint8_t tag16)
{
    if (n <= fix_max)
        put_tag(w, (uint8_t)(fix | n), 0, 0);
    else if (n <= UINT16_MAX)
        put_tag(w, tag16, n, 2);
    else
        put_tag(w, (uint8_t)(tag16 + 1), n, 4);
}

void mp_write_array(struct mp_writer *w, uint32_t n)
{
    put_count(w, n, 0x90, 15, 0xdc);
}

void mp_write_map(struct mp_writer *w, uint32_t n)
{
    put_count(w, n, 0x80, 15, 0xde);
}

void mp_write_uint(struct mp_writer *w, uint64_t v)
{
    if (v <= 0x7f)
        put_tag(w, (uint8_t)v, 0, 0);
    else if (v <= UINT8_MAX)
        put_tag(w, 0xcc, v, 1);
    else if (v <= UINT16_MAX)
        put_tag(w, 0xcd, v, 2);
    else if (v <= UINT32_MAX)
        put_tag(w, 0xce, v, 4);
    else
        put_tag(w, 0xcf, v, 8);
}

void mp_write_int(struct mp_writer *w, int64_t v)
{
    if (v >= 0)
        mp_write_uint(w, (uint64_t)v);
    else if (v >= -32)
        put_tag(w, (uint8_t)(0xe0 | (v & 0x1f)), 0, 0);
    else if (v >= INT8_MIN)
        put_tag(w, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN)
        put_tag(w, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN)
        put_tag(w, 0xd2, (uint64_t)v, 4);
    else
        put_tag(w, 0xd3, (uint64_t)v, 8);
}

void mp_write_bool(struct mp_writer *w, bool v)
{
    put_tag(w, v ? 0xc3 : 0xc2, 0, 0);
}

void mp_write_nil(struct mp_writer *w)
{
    put_tag(w, 0xc0, 0, 0);
}

/* A length header, then the payload, in one reservation. msgpack lengths
 * are 32 bits: a longer payload fails the writer. */
static void put_payload(struct mp_writer *w, uint8_t tag8, const void *p, size_t len)
{
    if (len > UINT32_MAX || room(w, 5 + len) == NULL) {
        w->failed = true;
        return;
    }
    if (len <= UINT8_MAX)
        put_tag(w, tag8, len, 1);
    else if (len <= UINT16_MAX)
        put_tag(w, (uint8_t)(tag8 + 1), len, 2);
    else
        put_tag(w, (uint8_t)(tag8 + 2), len, 4);
    if (len)
        memcpy(w->buf->data + w->buf->len, p, len);
    w->buf->len += len;
}

void mp_write_bin(struct mp_writer *w, const void *p, size_t len)
{
    put_payload(w, 0xc4, p, len);
}

void mp_write_str(struct mp_writer *w, const char *s, size_t len)
{
    if (len <= 31) {
        if (room(w, 1 + len) == NULL)
            return;
        put_tag(w, (uint8_t)(0xa0 | len), 0, 0);
        if (len)
            memcpy(w->buf->data + w->buf->len, s, len);
        w->buf->len += len;
        return;
    }
    put_payload(w, 0xd9, s, len);
}

void mp_write_cstr(struct mp_writer *w, const char *s)
{
    mp_write_str(w, s, strlen(s));
}

void mp_write_raw(struct mp_writer *w, const void *p, size_t len)
{
    uint8_t *d = room(w, len);
    if (d == NULL)
        return;
    if (len)
        memcpy(d, p, len);
    w->buf->len += len;
}

void mp_reader_init(struct mp_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->end = len ? r->p + len : r->p; /* no arithmetic on a NULL data */
    r->failed = false;
}

static bool fail(struct mp_reader *r)
{
    r->failed = true;
    return false;
}

/* Takes n bytes; NULL (and fails) if there are not that many. */
static const uint8_t *take(struct mp_reader *r, size_t n)
{
    if (r->failed || (size_t)(r->end - r->p) < n) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads a big-endian length of n bytes. */
static bool take_len(struct mp_reader *r, int n, uint32_t *len)
{
    const uint8_t *p = take(r, (size_t)n);
    if (p == NULL)
        return false;
    *len = (uint32_t)be(p, n);
    return true;
}

static bool container(struct mp_reader *r, uint8_t fix_lo, uint8_t fix_hi, uint8_t b16,
                      uint8_t b32, uint32_t per_elem, uint32_t *n)
{
    const uint8_t *t = take(r, 1);
    if (t == NULL)
        return false;
    uint8_t b = *t;
    if (b >= fix_lo && b <= fix_hi)
        *n = b - fix_lo;
    else if (b == b16) {
        if (!take_len(r, 2, n))
            return false;
    } else if (b == b32) {
        if (!take_len(r, 4, n))
            return false;
    } else {
        return fail(r);
    }
    /* Every element takes at least one byte: a count the frame cannot
     * hold is refused before anyone sizes an allocation by it. */
    if ((uint64_t)*n * per_elem > mp_left(r))
        return fail(r);
    return true;
}

bool mp_read_array(struct mp_reader *r, uint32_t *n)
{
    return container(r, 0x90, 0x9f, 0xdc, 0xdd, 1, n);
}

bool mp_read_map(struct mp_reader *r, uint32_t *n)
{
    return container(r, 0x80, 0x8f, 0xde, 0xdf, 2, n);
}

/* Reads any integer as sign + magnitude. */
static bool read_integer(struct mp_reader *r, bool *neg, uint64_t *mag)
{
    const uint8_t *t = take(r, 1);
    if (t == NULL)
        return false;
    uint8_t b = *t;
    *neg = false;
    if (b <= 0x7f) {
        *mag = b;
        return true;
    }
    if (b >= 0xe0) {
        *neg = true;
        *mag = (uint64_t)(-(int64_t)(int8_t)b);
        return true;
    }
    int n;
    bool sign;
    switch (b) {
    case 0xcc: n = 1; sign = false; break;
    case 0xcd: n = 2; sign = false; break;
    case 0xce: n = 4; sign = false; break;
    case 0xcf: n = 8; sign = false; break;
    case 0xd0: n = 1; sign = true; break;
    case 0xd1: n = 2; sign = true; break;
    case 0xd2: n = 4; sign = true; break;
    case 0xd3: n = 8; sign = true; break;
    default: return fail(r);
    }
    const uint8_t *p = take(r, (size_t)n);
    if (p == NULL)
        return false;
    uint64_t v = be(p, n);
    if (sign && (v >> (8 * n - 1)) & 1) {
        /* negative: sign-extend, then take the magnitude */
        int64_t sv = n == 8 ? (int64_t)v : (int64_t)(v | (~0ull << (8 * n)));
        *neg = true;
        *mag = sv == INT64_MIN ? (uint64_t)1 << 63 : (uint64_t)(-sv);
    } else {
        *mag = v;
    }
    return true;
}

bool mp_read_uint(struct mp_reader *r, uint64_t *v)
{
    bool neg;
    uint64_t mag;
    if (!read_integer(r, &neg, &mag))
        return false;
    if (neg && mag != 0)
        return fail(r);
    *v = mag;
    return true;
}

bool mp_read_int(struct mp_reader *r, int64_t *v)
{
    bool neg;
    uint64_t mag;
    if (!read_integer(r, &neg, &mag))
        return false;
    if (!neg && mag > (uint64_t)INT64_MAX)
        return fail(r);
    if (neg && mag > (uint64_t)1 << 63)
        return fail(r);
    *v = neg ? (mag == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return true;
}

bool mp_read_u32(struct mp_reader *r, uint32_t *v)
{
    uint64_t x;
    if (!mp_read_uint(r, &x) || x > UINT32_MAX)
        return fail(r);
    *v = (uint32_t)x;
    return true;
}

bool mp_read_u16(struct mp_reader *r, uint16_t *v)
{
    uint64_t x;
    if (!mp_read_uint(r, &x) || x > UINT16_MAX)
        return fail(r);
    *v = (uint16_t)x;
    return true;
}

bool mp_read_bool(struct mp_reader *r, bool *v)
{
    const uint8_t *t = take(r, 1);
    if (t == NULL)
        return false;
    if (*t != 0xc2 && *t != 0xc3)
        return fail(r);
    *v = *t == 0xc3;
    return true;
}

bool mp_read_nil(struct mp_reader *r)
{
    const uint8_t *t = take(r, 1);
    if (t == NULL)
        return false;
    return *t == 0xc0 ? true : fail(r);
}

bool mp_peek_nil(const struct mp_reader *r)
{
    return !r->failed && r->p < r->end && *r->p == 0xc0;
}

static bool payload(struct mp_reader *r, uint32_t len, const uint8_t **p)
{
    *p = take(r, len);
    return *p != NULL;
}

bool mp_read_bin(struct mp_reader *r, const uint8_t **p, uint32_t *len)
{
    const uint8_t *t = take(r, 1);
    if (t == NULL)
        return false;
    int n = *t == 0xc4 ? 1 : *t == 0xc5 ? 2 : *t == 0xc6 ? 4 : 0;
    if (n == 0)
        return fail(r);
    return take_len(r, n, len) && payload(r, *len, p);
}

bool mp_read_str(struct mp_reader *r, const char **s, uint32_t *len)
{
    const uint8_t *t = take(r, 1);
    if (t == NULL)
        return false;
    uint8_t b = *t;
    if (b >= 0xa0 && b <= 0xbf)
        *len = b - 0xa0;
    else if (b == 0xd9 || b == 0xda || b == 0xdb) {
        if (!take_len(r, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, len))
            return false;
    } else {
        return fail(r);
    }
    const uint8_t *p;
    if (!payload(r, *len, &p))
        return false;
    *s = (const char *)p;
    return true;
}

/* depth: arrays and maps already open around this value. */
static bool skip_depth(struct mp_reader *r, int depth)
{
    if (r->failed || r->p >= r->end)
        return fail(r);
    uint8_t b = *r->p;
    uint32_t n, len;
    const uint8_t *p;
    const char *s;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
        int64_t i;
        uint64_t u;
        return b == 0xcf ? mp_read_uint(r, &u) : mp_read_int(r, &i);
    }
    bool is_map = (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
    bool is_array = (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd;
    if ((is_map || is_array) && depth >= MP_DEPTH_MAX)
        return fail(r);
    if (is_map) {
        if (!mp_read_map(r, &n))
            return false;
        for (uint64_t i = 0; i < 2ull * n; i++)
            if (!skip_depth(r, depth + 1))
                return false;
        return true;
    }
    if (is_array) {
        if (!mp_read_array(r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++)
            if (!skip_depth(r, depth + 1))
                return false;
        return true;
    }
    if ((b >= 0xa0 && b <= 0xbf) || b == 0xd9 || b == 0xda || b == 0xdb)
        return mp_read_str(r, &s, &len);
    if (b == 0xc4 || b == 0xc5 || b == 0xc6)
        return mp_read_bin(r, &p, &len);
    if (b == 0xc0) {
        r->p++;
        return true;
    }
    if (b == 0xc2 || b == 0xc3) {
        r->p++;
        return true;
    }
    /* floats and ext types are not part of any ringkv format */
    return fail(r);
}

bool mp_skip(struct mp_reader *r)
{
    return skip_depth(r, 0);
}
