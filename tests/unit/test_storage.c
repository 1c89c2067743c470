/*
 * test_storage.c: the storage engine's behaviour on a real filesystem:
 * round trips, overwrite, delete, expiry, rotation, partition listing,
 * limits, locking, merge and hint files.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/limits.h"
#include "common/log.h"
#include "storage/store_int.h"
#include "tests/support/testutil.h"

static char *dir;
static uint64_t fake_now = 1700000000000ull;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void setup(void)
{
    rkv_log_set_level(RKV_LOG_ERROR);
    dir = test_mkdtemp("storage");
    fake_now = 1700000000000ull;
}

static void teardown(void)
{
    test_rmdir(dir);
    free(dir);
}

static struct store_options opts(void)
{
    struct store_options o;
    store_options_default(&o);
    o.now_ms = fake_clock;
    return o;
}

/* Asserts store_invariants_ok: every test calls it after each step, through
 * the helpers below. */
static void check_invariants(struct store *s)
{
    const char *why;
    ck_assert_msg(store_invariants_ok(s, &why), "store invariants: %s", why);
}

static struct store *open_store(const struct store_options *o)
{
    struct store *s = NULL;
    struct rkv_error err = {0};
    int rc = store_open(dir, o, &s, &err);
    ck_assert_msg(rc == RKV_OK, "store_open: %s", err.msg);
    check_invariants(s);
    return s;
}

static void close_ok(struct store *s)
{
    check_invariants(s);
    ck_assert_int_eq(store_close(s), RKV_OK);
}

static void commit_ok(struct store *s)
{
    int rc = store_commit(s);
    ck_assert_msg(rc == RKV_OK, "commit: %s", store_errmsg(s));
    check_invariants(s);
}

static void merge_ok(struct store *s)
{
    ck_assert_int_eq(store_merge(s), RKV_OK);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    check_invariants(s);
}

static void put_s(struct store *s, uint16_t part, const char *k, const char *v)
{
    int rc = store_put(s, part, k, strlen(k), v, strlen(v), 0);
    ck_assert_msg(rc == RKV_OK, "put %s: %s", k, store_errmsg(s));
    check_invariants(s);
}

/* Deletes k, expecting want. */
static void del_s(struct store *s, uint16_t part, const char *k, int want)
{
    ck_assert_int_eq(store_del(s, part, k, strlen(k)), want);
    check_invariants(s);
}

/* Asserts that k reads as v (or is absent when v is NULL). */
static void expect(struct store *s, uint16_t part, const char *k, const char *v)
{
    struct rkv_buf b = {0};
    int rc = store_get(s, part, k, strlen(k), &b, NULL);
    if (v == NULL) {
        ck_assert_msg(rc == RKV_ERR_NOTFOUND, "%s: expected absent, got rc %d", k, rc);
    } else {
        ck_assert_msg(rc == RKV_OK, "get %s: %s", k, store_errmsg(s));
        ck_assert_uint_eq(b.len, strlen(v));
        ck_assert(memcmp(b.data, v, b.len) == 0);
    }
    rkv_buf_free(&b);
    check_invariants(s);
}

START_TEST(roundtrip_and_reopen)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    put_s(s, 1, "alpha", "one");
    put_s(s, 2, "beta", "two");
    expect(s, 1, "alpha", "one"); /* visible before commit */
    commit_ok(s);
    expect(s, 2, "beta", "two");
    expect(s, 2, "alpha", NULL); /* partitions are separate namespaces */
    close_ok(s);

    s = open_store(&o);
    ck_assert_uint_eq(store_open_report(s)->keys, 2);
    ck_assert_uint_eq(store_open_report(s)->bytes_truncated, 0);
    expect(s, 1, "alpha", "one");
    expect(s, 2, "beta", "two");
    close_ok(s);
    /* opening and closing without writing leaves no empty logs behind */
    for (int i = 0; i < 3; i++)
        close_ok(open_store(&o));
    s = open_store(&o);
    ck_assert_uint_eq(store_open_report(s)->log_files, 1);
    close_ok(s);
}
END_TEST

START_TEST(binary_empty_and_large)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    const char k[] = {'a', 0, 'b'};
    const char v[] = {0, 0, 1, 0};
    ck_assert_int_eq(store_put(s, 0, k, sizeof k, v, sizeof v, 0), RKV_OK);
    ck_assert_int_eq(store_put(s, 0, "", 0, "empty-key", 9, 0), RKV_OK);
    ck_assert_int_eq(store_put(s, 0, "empty-value", 11, "", 0, 0), RKV_OK);
    size_t big = 3 * 1024 * 1024; /* larger than the write buffer */
    uint8_t *bv = malloc(big);
    for (size_t i = 0; i < big; i++)
        bv[i] = (uint8_t)(i * 7);
    ck_assert_int_eq(store_put(s, 0, "big", 3, bv, big, 0), RKV_OK);
    commit_ok(s);
    close_ok(s);
    s = open_store(&o);
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_get(s, 0, k, sizeof k, &b, NULL), RKV_OK);
    ck_assert(b.len == sizeof v && memcmp(b.data, v, sizeof v) == 0);
    ck_assert_int_eq(store_get(s, 0, "", 0, &b, NULL), RKV_OK);
    ck_assert(b.len == 9 && memcmp(b.data, "empty-key", 9) == 0);
    ck_assert_int_eq(store_get(s, 0, "empty-value", 11, &b, NULL), RKV_OK);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(store_get(s, 0, "big", 3, &b, NULL), RKV_OK);
    ck_assert(b.len == big && memcmp(b.data, bv, big) == 0);
    rkv_buf_free(&b);
    free(bv);
    close_ok(s);
}
END_TEST

START_TEST(overwrite_counts_dead_bytes)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        put_s(s, 0, "k", v);
        commit_ok(s);
    }
    expect(s, 0, "k", "v99");
    struct store_stats st;
    store_stats(s, &st);
    ck_assert_uint_eq(st.keys, 1);
    ck_assert_uint_eq(st.dead_bytes, 10 * record_bytes(1, 2) + 89 * record_bytes(1, 3));
    close_ok(s);
    s = open_store(&o);
    expect(s, 0, "k", "v99");
    store_stats(s, &st);
    ck_assert_uint_eq(st.keys, 1);
    close_ok(s);
}
END_TEST

START_TEST(delete_and_reopen)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    put_s(s, 3, "gone", "x");
    put_s(s, 3, "kept", "y");
    commit_ok(s);
    del_s(s, 3, "gone", RKV_OK);
    expect(s, 3, "gone", NULL); /* in the batch already */
    del_s(s, 3, "gone", RKV_ERR_NOTFOUND);
    del_s(s, 3, "never", RKV_ERR_NOTFOUND);
    commit_ok(s);
    expect(s, 3, "gone", NULL);
    close_ok(s);
    s = open_store(&o);
    expect(s, 3, "gone", NULL);
    expect(s, 3, "kept", "y");
    ck_assert_uint_eq(store_open_report(s)->keys, 1);
    /* put after delete within one batch, then reopen */
    del_s(s, 3, "kept", RKV_OK);
    put_s(s, 3, "kept", "again");
    commit_ok(s);
    close_ok(s);
    s = open_store(&o);
    expect(s, 3, "kept", "again");
    close_ok(s);
}
END_TEST

static int count_keys(void *ctx, const void *key, size_t key_len, const struct store_meta *m)
{
    (void)key;
    (void)key_len;
    (void)m;
    (*(int *)ctx)++;
    return 0;
}

START_TEST(expiry_with_injected_clock)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    ck_assert_int_eq(store_put(s, 0, "ttl", 3, "v", 1, fake_now + 100), RKV_OK);
    put_s(s, 0, "forever", "w");
    commit_ok(s);
    struct store_meta m;
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_get(s, 0, "ttl", 3, &b, &m), RKV_OK);
    ck_assert_uint_eq(m.expiry_ms, fake_now + 100);
    fake_now += 100;
    expect(s, 0, "ttl", NULL);
    expect(s, 0, "forever", "w");
    int n = 0;
    uint64_t cur = 0;
    ck_assert_int_eq(store_list(s, 0, &cur, 100, count_keys, &n), RKV_OK);
    ck_assert_int_eq(n, 1);
    close_ok(s);
    s = open_store(&o);
    expect(s, 0, "ttl", NULL);
    /* merge drops the expired record for good */
    merge_ok(s);
    struct store_stats st;
    store_stats(s, &st);
    ck_assert_uint_eq(st.keys, 1);
    fake_now -= 50; /* even if the clock goes back, it stays gone */
    expect(s, 0, "ttl", NULL);
    rkv_buf_free(&b);
    close_ok(s);
}
END_TEST

static uint32_t count_logs(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.log$'", dir);
    FILE *p = popen(cmd, "r");
    unsigned n = 0;
    if (fscanf(p, "%u", &n) != 1)
        n = 0;
    pclose(p);
    return n;
}

START_TEST(rotation)
{
    struct store_options o = opts();
    o.file_bytes_max = 4096;
    o.write_buffer_bytes = 4096;
    o.merge_auto = false;
    struct store *s = open_store(&o);
    char k[32], v[64];
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof k, "key-%04d", i);
        snprintf(v, sizeof v, "value-%04d-padding-padding", i);
        put_s(s, (uint16_t)(i % 4), k, v);
        if (i % 10 == 9)
            commit_ok(s);
    }
    commit_ok(s);
    struct store_stats st;
    store_stats(s, &st);
    ck_assert_uint_ge(st.files, 500 * record_bytes(8, 26) / 4096);
    ck_assert_uint_ge(count_logs(), st.files);
    close_ok(s);
    s = open_store(&o);
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof k, "key-%04d", i);
        snprintf(v, sizeof v, "value-%04d-padding-padding", i);
        expect(s, (uint16_t)(i % 4), k, v);
    }
    close_ok(s);
}
END_TEST

struct seen {
    int count[200];
    int other;
};

static int note_key(void *ctx, const void *key, size_t key_len, const struct store_meta *m)
{
    (void)m;
    struct seen *sn = ctx;
    int i;
    char buf[32] = {0};
    memcpy(buf, key, key_len < 31 ? key_len : 31);
    if (sscanf(buf, "p3-%d", &i) == 1 && i >= 0 && i < 200)
        sn->count[i]++;
    else
        sn->other++;
    return 0;
}

START_TEST(partition_listing_with_cursor)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    char k[32];
    for (int p = 0; p < 8; p++) {
        for (int i = 0; i < 200; i++) {
            snprintf(k, sizeof k, "p%d-%d", p, i);
            put_s(s, (uint16_t)p, k, "v");
        }
    }
    commit_ok(s);
    /* some deletes, so the listing crosses free entries */
    for (int i = 0; i < 200; i += 3) {
        snprintf(k, sizeof k, "p3-%d", i);
        del_s(s, 3, k, RKV_OK);
    }
    commit_ok(s);
    struct seen sn = {0};
    uint64_t cur = 0;
    int calls = 0;
    while (cur != STORE_CURSOR_END) {
        ck_assert_int_eq(store_list(s, 3, &cur, 7, note_key, &sn), RKV_OK);
        ck_assert_int_lt(++calls, 1000);
    }
    ck_assert_int_eq(sn.other, 0);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(sn.count[i], i % 3 == 0 ? 0 : 1);
    /* an empty partition lists nothing */
    cur = 0;
    int n = 0;
    ck_assert_int_eq(store_list(s, 9, &cur, 10, count_keys, &n), RKV_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(cur, STORE_CURSOR_END);
    close_ok(s);
}
END_TEST

START_TEST(limits_rejected_before_writing)
{
    struct store_options o = opts();
    o.key_bytes_max = 16;
    o.value_bytes_max = 100;
    struct store *s = open_store(&o);
    char big[200];
    memset(big, 'x', sizeof big);
    struct store_stats before, after;
    store_stats(s, &before);
    ck_assert_int_eq(store_put(s, 0, big, 17, "v", 1, 0), RKV_ERR_TOOBIG);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "key of 17 bytes"));
    ck_assert_int_eq(store_put(s, 0, "k", 1, big, 101, 0), RKV_ERR_TOOBIG);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "value of 101 bytes"));
    commit_ok(s);
    store_stats(s, &after);
    ck_assert_uint_eq(after.disk_bytes, before.disk_bytes);
    /* exactly at the limit is fine */
    ck_assert_int_eq(store_put(s, 0, big, 16, big, 100, 0), RKV_OK);
    commit_ok(s);
    close_ok(s);

    /* options out of range */
    struct store *t = NULL;
    struct rkv_error err;
    o = opts();
    o.value_bytes_max = RKV_VALUE_BYTES_MAX + 1;
    ck_assert_int_eq(store_open(dir, &o, &t, &err), RKV_ERR_INVAL);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(err.msg, "value_bytes_max"));
}
END_TEST

START_TEST(second_open_is_refused)
{
    struct store_options o = opts();
    struct store *s = open_store(&o);
    struct store *t = NULL;
    struct rkv_error err;
    ck_assert_int_eq(store_open(dir, &o, &t, &err), RKV_ERR_LOCKED);
    ck_assert_ptr_null(t);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    ck_assert_msg(strstr(err.msg, pid) != NULL, "%s", err.msg);
    close_ok(s);
    t = open_store(&o); /* a clean close leaves no stale lock */
    ck_assert_int_eq(store_open_report(t)->stale_lock_pid, 0);
    close_ok(t);
}
END_TEST

START_TEST(stale_lock_reported_not_stolen)
{
    struct store_options o = opts();
    pid_t child = fork();
    if (child == 0) {
        struct store *s = NULL;
        if (store_open(dir, &o, &s, NULL) != RKV_OK)
            _exit(1);
        store_put(s, 0, "k", 1, "v", 1, 0);
        store_commit(s);
        _exit(0); /* dies holding the lock */
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct store *t = NULL;
    struct rkv_error err;
    ck_assert_int_eq(store_open(dir, &o, &t, &err), RKV_ERR_STALELOCK);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %d", (int)child);
    ck_assert_msg(strstr(err.msg, pid) != NULL, "%s", err.msg);
    o.break_stale_lock = true;
    t = open_store(&o);
    ck_assert_int_eq(store_open_report(t)->stale_lock_pid, child);
    expect(t, 0, "k", "v");
    close_ok(t);
}
END_TEST

START_TEST(sync_policies)
{
    for (int pol = STORE_SYNC_ALWAYS; pol <= STORE_SYNC_NONE; pol++) {
        struct store_options o = opts();
        o.sync = (enum store_sync)pol;
        o.sync_interval_ms = 1;
        struct store *s = open_store(&o);
        char k[32];
        for (int i = 0; i < 50; i++) {
            snprintf(k, sizeof k, "%d-%d", pol, i);
            put_s(s, 0, k, k);
            commit_ok(s);
        }
        struct store_stats st;
        store_stats(s, &st);
        if (pol == STORE_SYNC_ALWAYS)
            ck_assert_uint_eq(st.unsynced_bytes, 0);
        if (pol == STORE_SYNC_NONE)
            ck_assert_uint_gt(st.unsynced_bytes, 0);
        ck_assert_int_eq(store_tick(s), RKV_OK);
        ck_assert_int_eq(store_sync(s), RKV_OK);
        store_stats(s, &st);
        ck_assert_uint_eq(st.unsynced_bytes, 0);
        close_ok(s);
    }
    struct store_options o = opts();
    struct store *s = open_store(&o);
    ck_assert_uint_eq(store_open_report(s)->keys, 150);
    close_ok(s);
    ck_assert_int_eq(store_sync_parse("interval"), STORE_SYNC_INTERVAL);
    ck_assert_int_eq(store_sync_parse("sometimes"), -1);
}
END_TEST

START_TEST(batch_auto_commit_at_limit)
{
    struct store_options o = opts();
    o.batch_ops_max = 10;
    struct store *s = open_store(&o);
    char k[16];
    for (int i = 0; i < 25; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put_s(s, 0, k, k);
        struct store_stats st;
        store_stats(s, &st);
        ck_assert_uint_le(st.batch_ops, 10);
    }
    close_ok(s);
}
END_TEST

/* keydir_remove_if, the walk recovery (tombstones) and merge (orphans) share:
 * partitions at both ends of pages, far apart, and entries removed while
 * the walk goes on. */
static bool odd_seq(void *ctx, const struct kd_entry *e)
{
    (*(int *)ctx)++;
    return e->seq % 2 == 1;
}

START_TEST(keydir_remove_if_walks_every_partition)
{
    static const uint16_t parts[] = {0, 1, 255, 256, 4097, 65535};
    struct keydir kd;
    ck_assert_int_eq(keydir_init(&kd), RKV_OK);
    char k[32];
    uint64_t seq = 0;
    for (size_t p = 0; p < sizeof parts / sizeof *parts; p++) {
        for (int i = 0; i < 300; i++) {
            int n = snprintf(k, sizeof k, "k%d", i);
            bool created;
            struct kd_entry *e =
                keydir_upsert(&kd, parts[p], k, (size_t)n, keydir_hash(k, (size_t)n), &created);
            ck_assert(e != NULL && created);
            e->seq = ++seq;
            e->file_id = 1;
        }
    }
    int asked = 0;
    ck_assert_uint_eq(keydir_remove_if(&kd, odd_seq, &asked), seq / 2);
    ck_assert_int_eq(asked, (int)seq); /* every entry was offered once */
    ck_assert_uint_eq(kd.n_live, seq / 2);
    ck_assert(keydir_invariants_ok(&kd));
    for (size_t p = 0; p < sizeof parts / sizeof *parts; p++) {
        ck_assert_uint_eq(keydir_part_count(&kd, parts[p]), 150);
        uint32_t pos = 0;
        struct kd_entry *e;
        while ((e = keydir_next(&kd, parts[p], &pos)) != NULL)
            ck_assert_uint_eq(e->seq % 2, 0);
    }
    asked = 0;
    ck_assert_uint_eq(keydir_remove_if(&kd, odd_seq, &asked), 0);
    ck_assert_int_eq(asked, (int)seq / 2);
    keydir_free(&kd);
}
END_TEST

/* ---- merge and hints ---- */

struct kd_row {
    uint16_t part;
    char key[32];
    uint64_t seq, expiry;
    uint32_t file, offset, vlen;
};

static int row_cmp(const void *a, const void *b)
{
    const struct kd_row *x = a, *y = b;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Every keydir entry, sorted: what "the same keydir" means. */
static struct kd_row *dump_keydir(struct store *s, size_t *n)
{
    struct kd_row *rows = calloc(s->kd.n_live + 1, sizeof *rows);
    *n = 0;
    for (uint32_t part = 0; part < 16; part++) {
        uint32_t pos = 0;
        struct kd_entry *e;
        while ((e = keydir_next(&s->kd, (uint16_t)part, &pos)) != NULL) {
            struct kd_row *r = &rows[(*n)++];
            uint16_t klen;
            const uint8_t *k = keydir_key(&s->kd, (uint16_t)part, e, &klen);
            r->part = (uint16_t)part;
            memcpy(r->key, k, klen < 31 ? klen : 31);
            r->seq = e->seq;
            r->expiry = e->expiry_ms;
            r->file = e->file_id;
            r->offset = e->offset;
            r->vlen = e->value_len;
        }
    }
    ck_assert_uint_eq(*n, s->kd.n_live);
    qsort(rows, *n, sizeof *rows, row_cmp);
    return rows;
}

static void churn(struct store *s, int rounds, int keys)
{
    char k[32], v[64];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < keys; i++) {
            snprintf(k, sizeof k, "key-%d", i);
            snprintf(v, sizeof v, "round-%d-key-%d", r, i);
            if ((i + r) % 7 == 0) {
                int rc = store_del(s, (uint16_t)(i % 16), k, strlen(k));
                ck_assert(rc == RKV_OK || rc == RKV_ERR_NOTFOUND);
                check_invariants(s);
            }
            else
                put_s(s, (uint16_t)(i % 16), k, v);
        }
        commit_ok(s);
    }
}

static void expect_churned(struct store *s, int rounds, int keys)
{
    char k[32], v[64];
    int r = rounds - 1;
    for (int i = 0; i < keys; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(v, sizeof v, "round-%d-key-%d", r, i);
        expect(s, (uint16_t)(i % 16), k, (i + r) % 7 == 0 ? NULL : v);
    }
}

START_TEST(merge_reclaims_and_hints_match_scan)
{
    struct store_options o = opts();
    o.file_bytes_max = 8192;
    o.merge_auto = false;
    struct store *s = open_store(&o);
    churn(s, 20, 300);
    struct store_stats before, after;
    store_stats(s, &before);
    merge_ok(s);
    store_stats(s, &after);
    ck_assert_uint_eq(after.merges, 1);
    ck_assert_uint_lt(after.disk_bytes, before.disk_bytes / 4);
    ck_assert_uint_lt(after.files, before.files);
    ck_assert(keydir_invariants_ok(&s->kd));
    expect_churned(s, 20, 300);
    /* the outputs took ids after the active log's (docs/storage.md) */
    ck_assert_uint_gt(s->files[s->n_files - 1].id, s->active_id);
    ck_assert(s->files[s->n_files - 1].sealed);
    close_ok(s);

    s = open_store(&o);
    ck_assert_uint_gt(store_open_report(s)->hint_files, 0);
    ck_assert_uint_eq(store_open_report(s)->hint_files_rejected, 0);
    expect_churned(s, 20, 300);
    size_t n1, n2;
    struct kd_row *from_hints = dump_keydir(s, &n1);
    close_ok(s);

    o.ignore_hints = true;
    s = open_store(&o);
    ck_assert_uint_eq(store_open_report(s)->hint_files, 0);
    struct kd_row *from_scan = dump_keydir(s, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_uint_gt(n1, 0);
    ck_assert(memcmp(from_hints, from_scan, n1 * sizeof *from_hints) == 0);
    free(from_hints);
    free(from_scan);
    close_ok(s);
}
END_TEST

START_TEST(stale_hint_is_rejected)
{
    struct store_options o = opts();
    o.file_bytes_max = 8192;
    o.merge_auto = false;
    struct store *s = open_store(&o);
    churn(s, 5, 100);
    merge_ok(s);
    close_ok(s);
    /* damage one byte of every hint file */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "for f in %s/*.hint; do printf 'Z' | dd of=$f bs=1 seek=20 conv=notrunc "
             "status=none; done",
             dir);
    ck_assert_int_eq(system(cmd), 0);
    s = open_store(&o);
    ck_assert_uint_eq(store_open_report(s)->hint_files, 0);
    ck_assert_uint_gt(store_open_report(s)->hint_files_rejected, 0);
    expect_churned(s, 5, 100);
    close_ok(s);
}
END_TEST

START_TEST(auto_merge_by_dead_ratio)
{
    struct store_options o = opts();
    o.file_bytes_max = 8192;
    o.merge_dead_bytes_min = 16384;
    o.merge_dead_percent = 50;
    struct store *s = open_store(&o);
    churn(s, 30, 200);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    check_invariants(s);
    struct store_stats st;
    store_stats(s, &st);
    ck_assert_uint_ge(st.merges, 1);
    ck_assert_uint_gt(st.merge_bytes_reclaimed, 0);
    expect_churned(s, 30, 200);
    close_ok(s);
    s = open_store(&o);
    expect_churned(s, 30, 200);
    close_ok(s);
}
END_TEST

static Suite *storage_suite(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("basic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, roundtrip_and_reopen);
    tcase_add_test(tc, binary_empty_and_large);
    tcase_add_test(tc, overwrite_counts_dead_bytes);
    tcase_add_test(tc, delete_and_reopen);
    tcase_add_test(tc, expiry_with_injected_clock);
    tcase_add_test(tc, rotation);
    tcase_add_test(tc, partition_listing_with_cursor);
    tcase_add_test(tc, limits_rejected_before_writing);
    tcase_add_test(tc, second_open_is_refused);
    tcase_add_test(tc, stale_lock_reported_not_stolen);
    tcase_add_test(tc, sync_policies);
    tcase_add_test(tc, batch_auto_commit_at_limit);
    tcase_add_test(tc, keydir_remove_if_walks_every_partition);
    suite_add_tcase(s, tc);
    tc = tcase_create("merge");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, merge_reclaims_and_hints_match_scan);
    tcase_add_test(tc, stale_hint_is_rejected);
    tcase_add_test(tc, auto_merge_by_dead_ratio);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(storage_suite());
}
