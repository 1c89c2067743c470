/*
 * test_keydir.c: the keydir against a naive model, with its invariants
 * checked as it grows, shrinks, rehashes and compacts its key arena.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/store_int.h"
#include "tests/support/testutil.h"

#define MODEL_KEYS 5000
#define PARTS 3

struct mkey {
    char key[48];
    size_t len;
    bool present;
    uint32_t file_id;
};

static void make_key(struct mkey *k, int i, struct test_rng *r)
{
    /* lengths from 0 to 39, some sharing long prefixes */
    int len = (int)test_rng_below(r, 40);
    snprintf(k->key, sizeof k->key, "%d-%s", i, "prefix-prefix-prefix-prefix-pre");
    k->len = (size_t)len;
    if (k->len > strlen(k->key))
        k->len = strlen(k->key);
    if (k->len < 4) { /* keep keys distinct: the index comes first */
        k->len = strlen(k->key) < 4 ? strlen(k->key) : 4;
        snprintf(k->key, sizeof k->key, "%04d", i);
        k->len = 4;
    }
}

START_TEST(random_ops_match_model)
{
    int seeds = test_seeds(5);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng r = {(uint64_t)seed};
        struct keydir kd;
        ck_assert_int_eq(keydir_init(&kd), RKV_OK);
        static struct mkey keys[PARTS][MODEL_KEYS];
        for (int p = 0; p < PARTS; p++)
            for (int i = 0; i < MODEL_KEYS; i++) {
                make_key(&keys[p][i], i, &r);
                keys[p][i].present = false;
            }
        for (int step = 0; step < 60000; step++) {
            uint16_t p = (uint16_t)test_rng_below(&r, PARTS);
            struct mkey *k = &keys[p][test_rng_below(&r, MODEL_KEYS)];
            uint64_t h = keydir_hash(k->key, k->len);
            /* phases: grow, then mostly delete (arena compaction), then mix */
            uint64_t del_pct = step < 20000 ? 10 : step < 40000 ? 85 : 40;
            struct kd_entry *e = keydir_find(&kd, p, k->key, k->len, h);
            ck_assert_msg((e != NULL) == k->present, "seed %d step %d: presence", seed, step);
            if (e)
                ck_assert_uint_eq(e->file_id, k->file_id);
            if (test_rng_below(&r, 100) < del_pct) {
                if (e) {
                    keydir_remove(&kd, p, e);
                    k->present = false;
                }
            } else {
                bool created;
                e = keydir_upsert(&kd, p, k->key, k->len, h, &created);
                ck_assert_ptr_nonnull(e);
                ck_assert(created == !k->present);
                e->file_id = k->file_id = (uint32_t)step;
                k->present = true;
            }
            if (step % 5000 == 0)
                ck_assert_msg(keydir_invariants_ok(&kd), "seed %d step %d", seed, step);
        }
        ck_assert(keydir_invariants_ok(&kd));
        /* listing each partition returns exactly the present keys */
        uint64_t n = 0;
        for (uint16_t p = 0; p < PARTS; p++) {
            uint32_t pos = 0;
            struct kd_entry *e;
            while ((e = keydir_next(&kd, p, &pos)) != NULL) {
                uint16_t len;
                const uint8_t *key = keydir_key(&kd, p, e, &len);
                ck_assert_ptr_nonnull(keydir_find(&kd, p, key, len, keydir_hash(key, len)));
                n++;
            }
        }
        ck_assert_uint_eq(n, kd.n_live);
        keydir_free(&kd);
    }
}
END_TEST

START_TEST(partitions_are_separate)
{
    struct keydir kd;
    ck_assert_int_eq(keydir_init(&kd), RKV_OK);
    bool created;
    for (uint32_t p = 0; p < 65536; p += 4099) {
        struct kd_entry *e = keydir_upsert(&kd, (uint16_t)p, "same", 4, keydir_hash("same", 4),
                                           &created);
        ck_assert(created);
        e->file_id = p;
    }
    for (uint32_t p = 0; p < 65536; p += 4099) {
        struct kd_entry *e = keydir_find(&kd, (uint16_t)p, "same", 4, keydir_hash("same", 4));
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->file_id, p);
        ck_assert_ptr_null(keydir_find(&kd, (uint16_t)(p + 1), "same", 4, keydir_hash("same", 4)));
    }
    ck_assert(keydir_invariants_ok(&kd));
    keydir_free(&kd);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("keydir");
    TCase *tc = tcase_create("keydir");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, random_ops_match_model);
    tcase_add_test(tc, partitions_are_separate);
    suite_add_tcase(su, tc);
    return test_run(su);
}
