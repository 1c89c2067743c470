/* alloc.c: the allocation hook and its libc default. */
#include "common/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static void *libc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void libc_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static const struct rkv_allocator libc_allocator = {
    .malloc_fn = libc_malloc,
    .realloc_fn = libc_realloc,
    .free_fn = libc_free,
    .ctx = NULL,
};

/* The one piece of process-wide state besides logging; see alloc.h. */
static struct rkv_allocator current = {
    .malloc_fn = libc_malloc,
    .realloc_fn = libc_realloc,
    .free_fn = libc_free,
    .ctx = NULL,
};

void rkv_alloc_set(const struct rkv_allocator *a)
{
    current = a ? *a : libc_allocator;
}

void *rkv_malloc(size_t size)
{
    return current.malloc_fn(current.ctx, size ? size : 1);
}

void *rkv_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = rkv_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *rkv_realloc(void *ptr, size_t size)
{
    return current.realloc_fn(current.ctx, ptr, size ? size : 1);
}

void rkv_free(void *ptr)
{
    if (ptr)
        current.free_fn(current.ctx, ptr);
}

char *rkv_strdup(const char *s)
{
    return rkv_memdup(s, strlen(s) + 1);
}

void *rkv_memdup(const void *p, size_t len)
{
    void *q = rkv_malloc(len);
    if (q && len)
        memcpy(q, p, len);
    return q;
}

int rkv_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return RKV_OK;
    /* doubling while small (most buffers are messages of a few hundred
     * bytes: few reallocations to get there), half again beyond 4 KiB;
     * never less than 8 elements or 64 bytes */
    size_t bytes = *cap * (elem ? elem : 1);
    size_t ncap = bytes < 4096 ? 2 * *cap : *cap + *cap / 2;
    if (ncap < need)
        ncap = need;
    if (ncap < 8)
        ncap = 8;
    if (elem != 0 && elem < 8 && ncap < 64 / elem)
        ncap = 64 / elem;
    if (elem != 0 && ncap > SIZE_MAX / elem)
        return RKV_ERR_NOMEM;
    void *p = rkv_realloc(*arr, ncap * elem);
    if (p == NULL)
        return RKV_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return RKV_OK;
}
