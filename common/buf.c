/* buf.c: growable byte buffers. */
#include "common/buf.h"

#include "common/alloc.h"
#include "common/err.h"

int rkv_buf_reserve(struct rkv_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return RKV_ERR_NOMEM;
    void *data = b->data;
    int rc = rkv_grow(&data, &b->cap, b->len + extra, 1);
    b->data = data;
    return rc;
}

int rkv_buf_append(struct rkv_buf *b, const void *p, size_t n)
{
    int rc = rkv_buf_reserve(b, n);
    if (rc != RKV_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return RKV_OK;
}

int rkv_buf_set(struct rkv_buf *b, const void *p, size_t n)
{
    b->len = 0;
    return rkv_buf_append(b, p, n);
}

void rkv_buf_free(struct rkv_buf *b)
{
    rkv_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
