/*
 * buf.h: a growable byte buffer, and little-endian load/store helpers.
 *
 * struct rkv_buf owns its bytes (allocated with rkv_malloc). A zeroed struct
 * is an empty buffer; rkv_buf_free returns it to that state.
 */
#ifndef RKV_BUF_H
#define RKV_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rkv_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* Makes room for extra more bytes past len. RKV_OK or RKV_ERR_NOMEM. */
int rkv_buf_reserve(struct rkv_buf *b, size_t extra);
/* Appends n bytes. RKV_OK or RKV_ERR_NOMEM (b unchanged). */
int rkv_buf_append(struct rkv_buf *b, const void *p, size_t n);
/* Replaces the contents with n bytes. RKV_OK or RKV_ERR_NOMEM. */
int rkv_buf_set(struct rkv_buf *b, const void *p, size_t n);
/* Frees the bytes; b becomes empty. */
void rkv_buf_free(struct rkv_buf *b);

static inline void rkv_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void rkv_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rkv_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t rkv_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t rkv_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t rkv_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif
