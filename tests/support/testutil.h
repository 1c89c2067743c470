/*
 * testutil.h: helpers shared by the unit tests: a seeded random generator,
 * scratch directories, and an allocator that fails on demand.
 *
 * Tests never seed from the clock. A test that loops over seeds prints the
 * failing seed through ck_assert_msg so the failure can be replayed.
 */
#ifndef RKV_TESTUTIL_H
#define RKV_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: small, fast, good enough for test inputs. */
struct test_rng {
    uint64_t s;
};

static inline uint64_t test_rng_next(struct test_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t test_rng_below(struct test_rng *r, uint64_t n)
{
    return test_rng_next(r) % n;
}

/* Number of seeds for seed loops: RKV_TEST_SEEDS or dflt. */
int test_seeds(int dflt);

/* A fresh empty directory under $RKV_TEST_TMP (or /tmp); the caller frees
 * the returned string with free() after test_rmdir. */
char *test_mkdtemp(const char *tag);
/* rm -rf path. */
void test_rmdir(const char *path);

/* Runs every test of s (forked, as Check does by default) and returns the
 * process's exit status: EXIT_SUCCESS if all passed. */
struct Suite;
int test_run(struct Suite *s);

/* Installs an allocator that fails every allocation from the nth (0-based)
 * on; test_alloc_reset restores libc's. test_alloc_failed says whether any
 * allocation was refused since the install. */
void test_alloc_fail_from(long n);
void test_alloc_reset(void);
bool test_alloc_failed(void);
/* Blocks allocated through it since test_alloc_fail_from and not freed
 * (a block allocated before and freed after counts -1): 0 after a run
 * that leaked nothing. */
long test_alloc_live(void);

#endif
