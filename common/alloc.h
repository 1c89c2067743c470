/*
 * alloc.h: the one allocation hook.
 *
 * All ringkv memory comes from rkv_malloc and friends, which call the
 * allocator installed with rkv_alloc_set() (libc's by default). Tests
 * install one that fails the Nth allocation to prove that every error path
 * releases what it took. The hook is process-wide (like hiredis's
 * hiredisAllocFns): install it before starting threads that allocate, and
 * free memory with the allocator that made it.
 */
#ifndef RKV_ALLOC_H
#define RKV_ALLOC_H

#include <stddef.h>

struct rkv_allocator {
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
    void *ctx;
};

/* Installs a (copied) allocator; NULL restores libc's. Not thread-safe. */
void rkv_alloc_set(const struct rkv_allocator *a);

/* Like their libc namesakes; a size of 0 still returns a unique pointer. */
void *rkv_malloc(size_t size);
void *rkv_calloc(size_t n, size_t size); /* NULL on n*size overflow */
void *rkv_realloc(void *ptr, size_t size);
void rkv_free(void *ptr); /* NULL is a no-op */
char *rkv_strdup(const char *s);
void *rkv_memdup(const void *p, size_t len);

/*
 * Grows an array: makes *cap at least need (elements of elem bytes), by at
 * least half again (doubling below 4 KiB), so appends cost amortised O(1);
 * never to less than 8 elements, nor 64 bytes of elements under 8 bytes. Returns RKV_OK or
 * RKV_ERR_NOMEM (the old array is kept).
 */
int rkv_grow(void **arr, size_t *cap, size_t need, size_t elem);

#endif
