/* testutil.c: scratch directories and the failing allocator. */
#include "tests/support/testutil.h"


#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"

int test_seeds(int dflt)
{
    const char *e = getenv("RKV_TEST_SEEDS");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : dflt;
}

char *test_mkdtemp(const char *tag)
{
    const char *base = getenv("RKV_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0700);
    char *path = NULL;
    if (asprintf(&path, "%s/rkv-%s-XXXXXX", base, tag) < 0)
        abort();
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_rmdir(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static atomic_long alloc_countdown;
static atomic_bool alloc_refused;
static atomic_long alloc_live; /* blocks from the installed allocator not yet freed */

static void *failing_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (atomic_fetch_sub(&alloc_countdown, 1) <= 0) {
        atomic_store(&alloc_refused, true);
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&alloc_live, 1);
    return p;
}

static void *failing_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (atomic_fetch_sub(&alloc_countdown, 1) <= 0) {
        atomic_store(&alloc_refused, true);
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p && ptr == NULL)
        atomic_fetch_add(&alloc_live, 1);
    return p;
}

static void counting_free(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr)
        atomic_fetch_sub(&alloc_live, 1);
    free(ptr);
}

void test_alloc_fail_from(long n)
{
    atomic_store(&alloc_countdown, n);
    atomic_store(&alloc_refused, false);
    atomic_store(&alloc_live, 0);
    struct rkv_allocator a = {
        .malloc_fn = failing_malloc,
        .realloc_fn = failing_realloc,
        .free_fn = counting_free,
        .ctx = NULL,
    };
    rkv_alloc_set(&a);
}

void test_alloc_reset(void)
{
    rkv_alloc_set(NULL);
}

bool test_alloc_failed(void)
{
    return atomic_load(&alloc_refused);
}

long test_alloc_live(void)
{
    return atomic_load(&alloc_live);
}
