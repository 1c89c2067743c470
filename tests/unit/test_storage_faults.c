/*
 * test_storage_faults.c: the storage engine under failure.
 *
 * Most tests run on memvfs, an in-memory filesystem that can lose unsynced
 * data, tear tails, fail writes and syncs, and freeze at an exact step.
 * Workloads are random but seeded; a failure message names the seed. The
 * checks come from a model of what each key may hold: after a crash, a key
 * holds its last committed state or one written after that commit, never
 * anything else and never bytes that were not written.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "storage/store_int.h"
#include "tests/support/memvfs.h"
#include "tests/support/testutil.h"

#define DB          "/db"
#define NKEYS       32
#define ABSENT      (-1)
#define PENDING_MAX 4096

static uint64_t fake_now = 1700000000000ull;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void setup(void)
{
    rkv_log_set_level(RKV_LOG_OFF);
    fake_now = 1700000000000ull;
}

static struct store_options mem_opts(struct memvfs *v)
{
    struct store_options o;
    store_options_default(&o);
    o.fileops = memvfs_ops(v);
    o.file_bytes_max = 4096;
    o.write_buffer_bytes = 4096;
    o.merge_auto = false;
    o.now_ms = fake_clock;
    o.break_stale_lock = true; /* a crash image keeps the dead owner's LOCK */
    return o;
}

/* ---- the model ---- */

struct model {
    int committed[NKEYS];   /* version, or ABSENT */
    int pending[NKEYS][64]; /* states written since the last commit */
    int n_pending[NKEYS];
    int next_version;
};

static void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    for (int k = 0; k < NKEYS; k++)
        m->committed[k] = ABSENT;
}

static void model_write(struct model *m, int k, int state)
{
    if (m->n_pending[k] < 64)
        m->pending[k][m->n_pending[k]++] = state;
    else
        m->pending[k][63] = state;
}

static void model_commit(struct model *m)
{
    for (int k = 0; k < NKEYS; k++) {
        if (m->n_pending[k])
            m->committed[k] = m->pending[k][m->n_pending[k] - 1];
        m->n_pending[k] = 0;
    }
}

/* The newest state written (committed or not). */
static int model_latest(const struct model *m, int k)
{
    return m->n_pending[k] ? m->pending[k][m->n_pending[k] - 1] : m->committed[k];
}

static void key_name(char *buf, int k)
{
    snprintf(buf, 16, "key%02d", k);
}

static uint16_t key_part(int k)
{
    return (uint16_t)(k % 4);
}

/* Values say which key and version they are, with a length that varies. */
static size_t value_for(char *buf, int k, int version)
{
    int n = snprintf(buf, 256, "key%02d#%d#", k, version);
    size_t pad = (size_t)((version * 37 + k) % 180);
    memset(buf + n, 'a' + (version % 26), pad);
    return (size_t)n + pad;
}

/* Asserts store_invariants_ok; the helpers below call it after each step
 * (a get, a put, a delete, a commit, an open). */
static void check_invariants(struct store *s, const char *ctx)
{
    const char *why;
    ck_assert_msg(store_invariants_ok(s, &why), "%s: store invariants: %s", ctx, why);
}

static void commit_expect(struct store *s, int want)
{
    int rc = store_commit(s);
    ck_assert_msg(rc == want, "commit: rc %d (%s), want %d", rc, store_errmsg(s), want);
    check_invariants(s, "commit");
}

/* Reads key k: its version, ABSENT, or fails the test on anything else. */
static int read_state(struct store *s, int k, const char *ctx)
{
    char name[16], want[256];
    key_name(name, k);
    struct rkv_buf b = {0};
    int rc = store_get(s, key_part(k), name, strlen(name), &b, NULL);
    check_invariants(s, ctx);
    if (rc == RKV_ERR_NOTFOUND) {
        rkv_buf_free(&b);
        return ABSENT;
    }
    ck_assert_msg(rc == RKV_OK, "%s: get %s: %s", ctx, name, store_errmsg(s));
    int kk, version;
    char tail;
    char *str = strndup((char *)b.data, b.len);
    ck_assert_msg(sscanf(str, "key%d#%d%c", &kk, &version, &tail) == 3 && kk == k && tail == '#',
                  "%s: %s holds foreign bytes", ctx, name);
    size_t n = value_for(want, k, version);
    ck_assert_msg(n == b.len && memcmp(want, b.data, n) == 0, "%s: %s v%d damaged", ctx, name,
                  version);
    free(str);
    rkv_buf_free(&b);
    return version;
}

/* After a crash: every key holds its committed state or a later one. */
static void check_after_crash(struct store *s, const struct model *m, const char *ctx)
{
    for (int k = 0; k < NKEYS; k++) {
        int got = read_state(s, k, ctx);
        bool ok = got == m->committed[k];
        for (int i = 0; !ok && i < m->n_pending[k]; i++)
            ok = got == m->pending[k][i];
        ck_assert_msg(ok, "%s: key %d holds %d, committed %d (+%d pending)", ctx, k, got,
                      m->committed[k], m->n_pending[k]);
    }
    check_invariants(s, ctx);
}

static void check_exact(struct store *s, const struct model *m, const char *ctx)
{
    for (int k = 0; k < NKEYS; k++) {
        int got = read_state(s, k, ctx);
        ck_assert_msg(got == model_latest(m, k), "%s: key %d holds %d, expected %d", ctx, k, got,
                      model_latest(m, k));
    }
}

/* One random operation. Returns the store's result (NOTFOUND from a delete
 * of an absent key counts as success). */
static int random_op_unchecked(struct store *s, struct model *m, struct test_rng *r)
{
    int k = (int)test_rng_below(r, NKEYS);
    char name[16], val[256];
    key_name(name, k);
    uint64_t dice = test_rng_below(r, 100);
    if (dice < 70) {
        int version = ++m->next_version;
        size_t n = value_for(val, k, version);
        int rc = store_put(s, key_part(k), name, strlen(name), val, n, 0);
        if (rc == RKV_OK)
            model_write(m, k, version);
        return rc;
    }
    if (dice < 85) {
        int rc = store_del(s, key_part(k), name, strlen(name));
        if (rc == RKV_OK)
            model_write(m, k, ABSENT);
        return rc == RKV_ERR_NOTFOUND ? RKV_OK : rc;
    }
    int rc = store_commit(s);
    if (rc == RKV_OK)
        model_commit(m);
    return rc;
}

static int random_op(struct store *s, struct model *m, struct test_rng *r)
{
    int rc = random_op_unchecked(s, m, r);
    check_invariants(s, "random op");
    return rc;
}

static struct store *open_ok(const char *dir, const struct store_options *o, const char *ctx)
{
    struct store *s = NULL;
    struct rkv_error err = {0};
    int rc = store_open(dir, o, &s, &err);
    ck_assert_msg(rc == RKV_OK, "%s: open: %s", ctx, err.msg);
    check_invariants(s, ctx);
    return s;
}

/* Opens what a power loss now would leave of v (nothing torn: the store
 * was closed) with options o, and checks it holds exactly m. */
static void check_exact_after_power_loss(struct memvfs *v, const struct store_options *o,
                                         const struct model *m, const char *ctx)
{
    struct memvfs *img = memvfs_image(v, 1, MEMVFS_TEAR_NONE);
    struct store_options io = *o;
    io.fileops = memvfs_ops(img);
    struct store *s = open_ok(DB, &io, ctx);
    check_exact(s, m, ctx);
    store_close(s);
    memvfs_free(img);
}

/* ---- simulated power loss ---- */

START_TEST(power_loss_keeps_every_synced_record)
{
    int seeds = test_seeds(150);
    for (int seed = 0; seed < seeds; seed++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "seed %d", seed);
        struct test_rng r = {(uint64_t)seed * 7919 + 1};
        struct memvfs *v = memvfs_new();
        struct store_options o = mem_opts(v);
        if (seed % 2) { /* let merges run in the background too */
            o.merge_auto = true;
            o.merge_dead_bytes_min = 2048;
            o.merge_dead_percent = 30;
        }
        struct store *s = open_ok(DB, &o, ctx);
        struct model m;
        model_init(&m);
        memvfs_crash_after(v, 1 + test_rng_below(&r, 1500));
        for (int i = 0; i < 3000; i++) {
            if (random_op(s, &m, &r) != RKV_OK)
                break;
            if (seed % 2 && i % 150 == 149)
                store_merge(s); /* crash points land inside merges too */
        }
        if (store_close(s) == RKV_OK)
            model_commit(&m);
        struct memvfs *img = memvfs_image(v, (uint64_t)seed, MEMVFS_TEAR_RANDOM);
        o.fileops = memvfs_ops(img);
        o.merge_auto = false;
        s = open_ok(DB, &o, ctx);
        check_after_crash(s, &m, ctx);
        /* and the store keeps working on top of what it recovered */
        ck_assert_int_eq(store_put(s, 0, "after", 5, "x", 1, 0), RKV_OK);
        commit_expect(s, RKV_OK);
        store_close(s);
        memvfs_free(img);
        memvfs_free(v);
    }
}
END_TEST

/* ---- corruption at every offset ---- */

struct written {
    int versions[NKEYS][8];
    int n[NKEYS];
    int latest[NKEYS];
    uint64_t end_of_latest[NKEYS]; /* offset just past the key's newest record */
};

/* A small log: 20 puts (some overwrites) and one delete, in file 1. */
static struct memvfs *small_log(struct written *w)
{
    memset(w, 0, sizeof *w);
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    o.file_bytes_max = 1 << 20;
    struct store *s = open_ok(DB, &o, "small log");
    uint64_t off = 0;
    char name[16], val[256];
    for (int i = 0; i < 20; i++) {
        int k = i % 12, version = i + 1;
        key_name(name, k);
        size_t n = value_for(val, k, version);
        ck_assert_int_eq(store_put(s, key_part(k), name, strlen(name), val, n, 0), RKV_OK);
        w->versions[k][w->n[k]++] = version;
        w->latest[k] = version;
        off += record_bytes(strlen(name), n);
        w->end_of_latest[k] = off;
    }
    key_name(name, 3);
    ck_assert_int_eq(store_del(s, key_part(3), name, strlen(name)), RKV_OK);
    off += record_bytes(strlen(name), 0);
    w->latest[3] = ABSENT;
    w->end_of_latest[3] = off;
    for (int k = 12; k < NKEYS; k++)
        w->latest[k] = ABSENT;
    ck_assert_int_eq(store_close(s), RKV_OK);
    return v;
}

static void check_damaged(struct store *s, const struct written *w, uint64_t intact_before,
                          const char *ctx)
{
    for (int k = 0; k < NKEYS; k++) {
        int got = read_state(s, k, ctx);
        bool ok = got == ABSENT;
        for (int i = 0; !ok && i < w->n[k]; i++)
            ok = got == w->versions[k][i];
        ck_assert_msg(ok, "%s: key %d holds version %d, never written", ctx, k, got);
        if (w->end_of_latest[k] && w->end_of_latest[k] <= intact_before)
            ck_assert_msg(got == w->latest[k], "%s: key %d lost (holds %d, want %d)", ctx, k, got,
                          w->latest[k]);
    }
}

START_TEST(corruption_at_every_offset)
{
    struct written w;
    struct memvfs *base = small_log(&w);
    struct rkv_buf log = {0};
    ck_assert_int_eq(memvfs_read_file(base, DB "/0000000001.log", &log), 0);
    ck_assert_uint_gt(log.len, 1000);
    uint8_t *bytes = malloc(log.len);
    for (size_t off = 0; off < log.len; off++) {
        char ctx[64];
        /* a flipped byte */
        snprintf(ctx, sizeof ctx, "flip at %zu", off);
        struct memvfs *v = memvfs_clone(base);
        memcpy(bytes, log.data, log.len);
        bytes[off] ^= (uint8_t)(0x5a | (off & 1));
        memvfs_write_file(v, DB "/0000000001.log", bytes, log.len);
        struct store_options o = mem_opts(v);
        struct store *s = open_ok(DB, &o, ctx);
        const struct store_open_report *rep = store_open_report(s);
        ck_assert_msg(rep->bad_records + (rep->bytes_truncated > 0) >= 1, "%s: not noticed", ctx);
        check_damaged(s, &w, off, ctx);
        store_close(s);
        memvfs_free(v);
        /* a cut */
        snprintf(ctx, sizeof ctx, "cut at %zu", off);
        v = memvfs_clone(base);
        memvfs_write_file(v, DB "/0000000001.log", log.data, off);
        o = mem_opts(v);
        s = open_ok(DB, &o, ctx);
        check_damaged(s, &w, off, ctx);
        store_close(s);
        memvfs_free(v);
    }
    free(bytes);
    rkv_buf_free(&log);
    memvfs_free(base);
}
END_TEST

START_TEST(zero_filled_tail_is_cut)
{
    struct written w;
    struct memvfs *v = small_log(&w);
    struct rkv_buf log = {0};
    ck_assert_int_eq(memvfs_read_file(v, DB "/0000000001.log", &log), 0);
    size_t good = log.len;
    uint8_t zeros[4096] = {0};
    rkv_buf_append(&log, zeros, sizeof zeros);
    memvfs_write_file(v, DB "/0000000001.log", log.data, log.len);
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "zeros");
    ck_assert_uint_eq(store_open_report(s)->bytes_truncated, sizeof zeros);
    ck_assert_uint_eq(store_open_report(s)->bad_records, 0);
    check_damaged(s, &w, good, "zeros");
    store_close(s);
    ck_assert_int_eq(memvfs_read_file(v, DB "/0000000001.log", &log), 0);
    ck_assert_uint_eq(log.len, good);
    rkv_buf_free(&log);
    memvfs_free(v);
}
END_TEST

START_TEST(hint_corruption_at_every_offset)
{
    struct written w;
    struct memvfs *base = small_log(&w);
    struct store_options o = mem_opts(base);
    struct store *s = open_ok(DB, &o, "merge");
    ck_assert_int_eq(store_merge(s), RKV_OK);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    store_close(s);
    /* the merge output is the only log with a hint */
    struct rkv_buf names = {0}, hint = {0};
    memvfs_list(base, DB, &names);
    char *hint_path = NULL;
    for (char *line = strtok((char *)names.data, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, ".hint"))
            hint_path = strdup(line);
    ck_assert_ptr_nonnull(hint_path);
    ck_assert_int_eq(memvfs_read_file(base, hint_path, &hint), 0);
    uint8_t *bytes = malloc(hint.len);
    for (size_t off = 0; off < hint.len; off++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "hint flip at %zu", off);
        struct memvfs *v = memvfs_clone(base);
        memcpy(bytes, hint.data, hint.len);
        bytes[off] ^= 0x21;
        memvfs_write_file(v, hint_path, bytes, hint.len);
        o = mem_opts(v);
        s = open_ok(DB, &o, ctx);
        ck_assert_uint_eq(store_open_report(s)->hint_files, 0);
        ck_assert_uint_eq(store_open_report(s)->hint_files_rejected, 1);
        check_damaged(s, &w, UINT64_MAX, ctx); /* the log is intact: nothing lost */
        store_close(s);
        memvfs_free(v);
    }
    free(bytes);
    free(hint_path);
    rkv_buf_free(&hint);
    rkv_buf_free(&names);
    memvfs_free(base);
}
END_TEST

/* ---- I/O errors ---- */

static void put_ver(struct store *s, struct model *m, int k, int version, int want)
{
    char name[16], val[256];
    key_name(name, k);
    size_t n = value_for(val, k, version);
    int rc = store_put(s, key_part(k), name, strlen(name), val, n, 0);
    ck_assert_msg(rc == want, "put key %d: rc %d (%s), want %d", k, rc, store_errmsg(s), want);
    check_invariants(s, "put");
    if (rc == RKV_OK)
        model_write(m, k, version);
}

START_TEST(fsync_failure_is_sticky)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "eio");
    struct model m;
    model_init(&m);
    put_ver(s, &m, 1, 1, RKV_OK);
    put_ver(s, &m, 2, 2, RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(&m);
    memvfs_fail_syncs(v, 0, EIO);
    put_ver(s, &m, 3, 3, RKV_OK);
    commit_expect(s, RKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "fdatasync"));
    /* the failed batch is not acknowledged; the handle refuses to go on */
    memvfs_clear_faults(v); /* even if the disk "recovers", no retry */
    put_ver(s, &m, 4, 4, RKV_ERR_FAILED);
    commit_expect(s, RKV_ERR_FAILED);
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_get(s, key_part(1), "key01", 5, &b, NULL), RKV_ERR_FAILED);
    struct store_stats st;
    store_stats(s, &st);
    ck_assert(st.failed);
    store_close(s);
    /* reopen: what was acknowledged is there */
    struct memvfs *img = memvfs_image(v, 1, MEMVFS_TEAR_RANDOM);
    o.fileops = memvfs_ops(img);
    s = open_ok(DB, &o, "eio reopen");
    check_after_crash(s, &m, "eio reopen");
    ck_assert_int_eq(read_state(s, 1, "eio"), 1);
    ck_assert_int_eq(read_state(s, 2, "eio"), 2);
    store_close(s);
    memvfs_free(img);
    memvfs_free(v);
}
END_TEST

START_TEST(enospc_rolls_back_the_batch)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "enospc");
    struct model m;
    model_init(&m);
    put_ver(s, &m, 1, 1, RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(&m);

    /* the failure at commit: the small put sat in the buffer */
    memvfs_fail_writes(v, 0, ENOSPC);
    struct model doomed = m;
    put_ver(s, &doomed, 2, 2, RKV_OK);
    ck_assert_int_eq(read_state(s, 2, "in batch"), 2);
    commit_expect(s, RKV_ERR_NOSPC);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "No space"));
    ck_assert_int_eq(read_state(s, 2, "rolled back"), ABSENT);
    ck_assert_int_eq(read_state(s, 1, "kept"), 1);

    /* the failure inside a put (the buffer fills): later puts are refused
     * until the commit reports it */
    for (int i = 0; i < 100; i++) {
        char name[16], val[256];
        key_name(name, 5);
        size_t n = value_for(val, 5, 100 + i);
        int rc = store_put(s, key_part(5), name, strlen(name), val, n, 0);
        if (rc != RKV_OK) {
            ck_assert_int_eq(rc, RKV_ERR_NOSPC);
            break;
        }
        ck_assert_int_lt(i, 99);
    }
    put_ver(s, &doomed, 6, 6, RKV_ERR_ABORTED);
    commit_expect(s, RKV_ERR_NOSPC);
    ck_assert_int_eq(read_state(s, 5, "rolled back"), ABSENT);

    /* space comes back: the store goes on */
    memvfs_clear_faults(v);
    put_ver(s, &m, 7, 7, RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(&m);
    check_exact(s, &m, "after enospc");
    store_close(s);
    struct memvfs *img = memvfs_image(v, 2, MEMVFS_TEAR_NONE);
    o.fileops = memvfs_ops(img);
    s = open_ok(DB, &o, "enospc reopen");
    ck_assert_uint_eq(store_open_report(s)->bytes_truncated, 0);
    ck_assert_uint_eq(store_open_report(s)->bad_records, 0);
    check_exact(s, &m, "enospc reopen");
    store_close(s);
    memvfs_free(img);
    memvfs_free(v);
}
END_TEST

/* A put past batch_ops_max commits the open batch first. If that commit
 * fails, the batch is rolled back as a whole, just as when a put's own write
 * fails: later writes are refused and the next store_commit reports it.
 * Before the fix the rollback was silent there: the next put went into a
 * fresh batch and the next commit said OK although the earlier puts of the
 * caller's batch were gone. */
START_TEST(failed_auto_commit_is_reported)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    o.batch_ops_max = 2;
    struct store *s = open_ok(DB, &o, "auto commit");
    struct model m;
    model_init(&m);
    put_ver(s, &m, 0, 1, RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(&m);

    struct model doomed = m;
    put_ver(s, &doomed, 1, 2, RKV_OK); /* a */
    put_ver(s, &doomed, 2, 3, RKV_OK); /* b: the batch is full */
    memvfs_fail_writes(v, 0, ENOSPC);
    put_ver(s, &doomed, 3, 4, RKV_ERR_NOSPC); /* c: its commit of a and b fails */
    ck_assert_int_eq(read_state(s, 1, "rolled back"), ABSENT);
    ck_assert_int_eq(read_state(s, 2, "rolled back"), ABSENT);
    memvfs_clear_faults(v);                     /* even with space back, the failure is reported */
    put_ver(s, &doomed, 4, 5, RKV_ERR_ABORTED); /* d */
    ck_assert_int_eq(store_del(s, key_part(0), "key00", 5), RKV_ERR_ABORTED);
    commit_expect(s, RKV_ERR_NOSPC); /* a and b are not durable */
    ck_assert_int_eq(read_state(s, 1, "after report"), ABSENT);
    check_exact(s, &m, "after report");

    /* reported once; then the store goes on */
    put_ver(s, &m, 5, 6, RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(&m);
    check_exact(s, &m, "after recovery");
    store_close(s);
    check_exact_after_power_loss(v, &o, &m, "auto commit reopen");
    memvfs_free(v);
}
END_TEST

/* What a power loss now would leave of key k. */
static int durable_state(struct memvfs *v, int k, const char *ctx)
{
    struct memvfs *img = memvfs_image(v, 5, MEMVFS_TEAR_NONE);
    struct store_options o = mem_opts(img);
    struct store *s = open_ok(DB, &o, ctx);
    int got = read_state(s, k, ctx);
    store_close(s);
    memvfs_free(img);
    return got;
}

static uint64_t unsynced(struct store *s)
{
    struct store_stats st;
    store_stats(s, &st);
    return st.unsynced_bytes;
}

/* Moves the clock to now, puts a new version of k and commits; returns the
 * bytes left unsynced. */
static uint64_t put_commit_at(struct store *s, struct model *m, uint64_t now, int k, int version)
{
    fake_now = now;
    put_ver(s, m, k, version, RKV_OK);
    commit_expect(s, RKV_OK);
    return unsynced(s);
}

static uint64_t tick_at(struct store *s, uint64_t now)
{
    fake_now = now;
    ck_assert_int_eq(store_tick(s), RKV_OK);
    return unsynced(s);
}

/* sync = interval is timed by the injected clock: no sleeping, and the
 * exact edges of the interval are checked. */
START_TEST(interval_sync_follows_the_injected_clock)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    o.sync = STORE_SYNC_INTERVAL;
    o.sync_interval_ms = 1000;
    struct store *s = open_ok(DB, &o, "interval");
    struct model m;
    model_init(&m);
    uint64_t t0 = fake_now;
    ck_assert_uint_eq(put_commit_at(s, &m, t0, 1, 1), 0); /* the first commit syncs */
    ck_assert_int_eq(durable_state(v, 1, "first commit"), 1);

    ck_assert_uint_gt(put_commit_at(s, &m, t0 + 10, 2, 2), 0);
    ck_assert_uint_gt(tick_at(s, t0 + 999), 0); /* one ms short of the interval */
    ck_assert_int_eq(durable_state(v, 2, "before the interval"), ABSENT);
    ck_assert_uint_eq(tick_at(s, t0 + 1000), 0);
    ck_assert_int_eq(durable_state(v, 2, "at the interval"), 2);

    /* a commit a whole interval after the last sync syncs by itself */
    ck_assert_uint_gt(put_commit_at(s, &m, t0 + 1500, 3, 3), 0);
    ck_assert_uint_eq(put_commit_at(s, &m, t0 + 2000, 4, 4), 0);
    ck_assert_int_eq(durable_state(v, 3, "commit at the interval"), 3);

    /* a clock set back does not postpone the next sync */
    ck_assert_uint_eq(put_commit_at(s, &m, t0 + 100, 5, 5), 0);
    ck_assert_int_eq(durable_state(v, 5, "clock set back"), 5);
    store_close(s);
    memvfs_free(v);
}
END_TEST

/* Waits, on the eventfd with a deadline, until ticket t is durable or the
 * sync thread has failed; returns store_synced's status. */
static int wait_ticket(struct store *s, uint64_t t)
{
    uint64_t deadline = rkv_clock_mono_ms() + 10000;
    for (;;) {
        uint64_t done;
        int rc = store_synced(s, &done);
        if (rc != RKV_OK || done >= t)
            return rc;
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "ticket %llu not durable in 10 s",
                      (unsigned long long)t);
        struct pollfd p = {.fd = store_sync_fd(s), .events = POLLIN};
        poll(&p, 1, 100);
        store_sync_fd_clear(s);
    }
}

/* store_commit_async: visible at once, durable at its ticket. */
START_TEST(async_commit_is_durable_at_its_ticket)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "async");
    struct model m;
    model_init(&m);
    uint64_t t = 0, prev = 0;
    for (int i = 1; i <= 200; i++) {
        put_ver(s, &m, i % 13, i, RKV_OK);
        if (i % 4 == 0) {
            ck_assert_int_eq(store_commit_async(s, &t), RKV_OK);
            model_commit(&m);
            ck_assert_uint_gt(t, prev); /* every commit that wrote gets a new ticket */
            prev = t;
            ck_assert_int_eq(read_state(s, i % 13, "visible before durable"), i);
        }
        if (i % 40 == 0) {
            ck_assert_int_eq(wait_ticket(s, t), RKV_OK);
            check_invariants(s, "async");
            /* a power loss now keeps everything up to the ticket */
            for (int k = 0; k < 13; k++)
                ck_assert_int_eq(durable_state(v, k, "async"), model_latest(&m, k));
        }
    }
    /* a commit that wrote nothing gets the ticket there is */
    uint64_t same;
    ck_assert_int_eq(store_commit_async(s, &same), RKV_OK);
    ck_assert_uint_eq(same, t);
    store_close(s);
    memvfs_free(v);
}
END_TEST

/* A failed fdatasync of the sync thread: the ticket never becomes durable
 * and the store fails, as with store_commit. */
START_TEST(async_sync_failure_is_sticky)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "async eio");
    struct model m;
    model_init(&m);
    uint64_t t1, t2, t3, done;
    put_ver(s, &m, 1, 1, RKV_OK);
    ck_assert_int_eq(store_commit_async(s, &t1), RKV_OK);
    ck_assert_int_eq(wait_ticket(s, t1), RKV_OK);
    model_commit(&m);
    memvfs_fail_syncs(v, 0, EIO);
    put_ver(s, &m, 2, 2, RKV_OK);
    ck_assert_int_eq(store_commit_async(s, &t2), RKV_OK);
    ck_assert_int_eq(wait_ticket(s, t2), RKV_ERR_FAILED);
    ck_assert_int_eq(store_synced(s, &done), RKV_ERR_FAILED);
    ck_assert_uint_lt(done, t2);
    memvfs_clear_faults(v); /* no retry, even if the disk recovers */
    ck_assert_int_eq(store_commit_async(s, &t3), RKV_ERR_FAILED);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "failed"));
    put_ver(s, &m, 3, 3, RKV_ERR_FAILED);
    store_close(s);
    struct memvfs *img = memvfs_image(v, 2, MEMVFS_TEAR_RANDOM);
    o.fileops = memvfs_ops(img);
    s = open_ok(DB, &o, "async eio reopen");
    ck_assert_int_eq(read_state(s, 1, "async eio"), 1);
    store_close(s);
    memvfs_free(img);
    memvfs_free(v);
}
END_TEST

START_TEST(short_writes_are_completed)
{
    struct memvfs *v = memvfs_new();
    memvfs_short_writes(v, true, 42);
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "short");
    struct model m;
    model_init(&m);
    struct test_rng r = {99};
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(random_op(s, &m, &r), RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(&m);
    ck_assert_int_eq(store_merge(s), RKV_OK);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    check_exact(s, &m, "short");
    store_close(s);
    check_exact_after_power_loss(v, &o, &m, "short reopen");
    memvfs_free(v);
}
END_TEST

/* ---- merge crashed at every step ---- */

/* A store with several sealed files full of overwrites, deletes and some
 * expired keys, closed cleanly. */
static struct memvfs *merge_base(struct model *m)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    o.file_bytes_max = 4096;
    struct store *s = open_ok(DB, &o, "merge base");
    model_init(m);
    struct test_rng r = {7};
    for (int i = 0; i < 1500; i++)
        ck_assert_int_eq(random_op(s, m, &r), RKV_OK);
    /* two keys that expire before the merge runs */
    char val[256];
    size_t n = value_for(val, 30, 9000);
    ck_assert_int_eq(store_put(s, key_part(30), "key30", 5, val, n, fake_now + 10), RKV_OK);
    model_write(m, 30, ABSENT);
    n = value_for(val, 31, 9001);
    ck_assert_int_eq(store_put(s, key_part(31), "key31", 5, val, n, fake_now + 10), RKV_OK);
    model_write(m, 31, ABSENT);
    ck_assert_int_eq(store_close(s), RKV_OK);
    model_commit(m);
    fake_now += 20;
    return v;
}

START_TEST(merge_crash_at_every_step)
{
    struct model m;
    struct memvfs *base = merge_base(&m);
    /* how many mutating calls a whole merge makes */
    struct memvfs *v = memvfs_clone(base);
    struct store_options o = mem_opts(v);
    o.file_bytes_max = 4096;
    struct store *s = open_ok(DB, &o, "dry run");
    uint64_t m0 = memvfs_mutations(v);
    ck_assert_int_eq(store_merge(s), RKV_OK);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    uint64_t steps = memvfs_mutations(v) - m0;
    check_exact(s, &m, "dry run");
    store_close(s);
    memvfs_free(v);
    ck_assert_uint_gt(steps, 10);

    int finished_at_open = 0;
    for (uint64_t k = 0; k <= steps + 1; k++) {
        char ctx[64];
        v = memvfs_clone(base);
        o.fileops = memvfs_ops(v);
        s = open_ok(DB, &o, "before crash");
        memvfs_crash_after(v, k);
        store_merge(s);
        store_merge_wait(s);
        store_close(s);
        for (int tear = MEMVFS_TEAR_NONE; tear <= MEMVFS_TEAR_RANDOM; tear++) {
            snprintf(ctx, sizeof ctx, "merge crash at step %llu, tear %d", (unsigned long long)k,
                     tear);
            struct memvfs *img = memvfs_image(v, k, (enum memvfs_tear)tear);
            o.fileops = memvfs_ops(img);
            s = open_ok(DB, &o, ctx);
            finished_at_open += store_open_report(s)->merge_completed;
            check_exact(s, &m, ctx);
            check_invariants(s, ctx);
            store_close(s);
            s = open_ok(DB, &o, ctx); /* and once more: the repair is stable */
            ck_assert(!store_open_report(s)->merge_completed);
            check_exact(s, &m, ctx);
            store_close(s);
            memvfs_free(img);
        }
        memvfs_free(v);
    }
    /* some crash points fall between the commit and the end of the switch */
    ck_assert_int_gt(finished_at_open, 0);
    memvfs_free(base);
}
END_TEST

/* A record that rots in a sealed file after open cannot be copied by a
 * merge: its key leaves the keydir (drop_orphans) instead of pointing into
 * a file the merge deleted. */
/* A memvfs store with mem_opts in which every key k holds version k + 1,
 * committed; *v and *o are what it was opened with. */
static struct store *filled_store(struct memvfs **v, struct store_options *o, struct model *m,
                                  const char *ctx)
{
    *v = memvfs_new();
    *o = mem_opts(*v);
    struct store *s = open_ok(DB, o, ctx);
    model_init(m);
    for (int k = 0; k < NKEYS; k++)
        put_ver(s, m, k, k + 1, RKV_OK);
    commit_expect(s, RKV_OK);
    model_commit(m);
    return s;
}

START_TEST(merge_drops_keys_whose_records_rotted)
{
    struct memvfs *v;
    struct store_options o;
    struct model m;
    struct store *s = filled_store(&v, &o, &m, "rot");
    /* key 5's record, in a file that is sealed by now */
    struct kd_entry *e = keydir_find(&s->kd, key_part(5), "key05", 5, keydir_hash("key05", 5));
    ck_assert_ptr_nonnull(e);
    uint32_t file_id = e->file_id, offset = e->offset;
    ck_assert_uint_ne(file_id, s->active_id);
    char path[STORE_PATH_BYTES];
    store_log_path(s, path, file_id, ".log");
    struct rkv_buf b = {0};
    ck_assert_int_eq(memvfs_read_file(v, path, &b), 0);
    b.data[offset + RECORD_HDR_BYTES + 6] ^= 0x40; /* in the value */
    memvfs_write_file(v, path, b.data, b.len);
    ck_assert_int_eq(store_get(s, key_part(5), "key05", 5, &b, NULL), RKV_ERR_CORRUPT);

    ck_assert_int_eq(store_merge(s), RKV_OK);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    check_invariants(s, "invariants");
    m.committed[5] = ABSENT;
    check_exact(s, &m, "after merge");
    struct store_stats st;
    store_stats(s, &st);
    ck_assert_uint_eq(st.keys, NKEYS - 1);
    store_close(s);
    s = open_ok(DB, &o, "rot reopen");
    check_exact(s, &m, "rot reopen");
    store_close(s);
    rkv_buf_free(&b);
    memvfs_free(v);
}
END_TEST

/* store_invariants_ok notices each kind of damage it claims to: break one
 * field of a sound store at a time, check the reason, put it back. */
static void expect_broken(struct store *s, const char *want)
{
    const char *why = NULL;
    ck_assert_msg(!store_invariants_ok(s, &why), "not noticed: %s", want);
    ck_assert_msg(why && strstr(why, want), "noticed as '%s', want '%s'", why, want);
}

START_TEST(store_invariants_notice_damage)
{
    struct memvfs *v;
    struct store_options o;
    struct model m;
    struct store *s = filled_store(&v, &o, &m, "damage");
    put_ver(s, &m, 1, 100, RKV_OK);
    put_ver(s, &m, 2, 101, RKV_OK); /* an open batch of two ops */
    struct kd_entry *e = keydir_find(&s->kd, key_part(7), "key07", 5, keydir_hash("key07", 5));
    ck_assert_ptr_nonnull(e);

    uint32_t saved32 = e->offset;
    e->offset = UINT32_MAX - 100;
    expect_broken(s, "past the end of its file");
    e->offset = saved32;
    saved32 = e->file_id;
    e->file_id = s->next_file_id + 5;
    expect_broken(s, "not in the table");
    e->file_id = saved32;
    uint64_t saved64 = e->seq;
    e->seq = s->next_seq;
    expect_broken(s, "seq out of range");
    e->seq = saved64;

    s->active_size++;
    expect_broken(s, "flushed bytes plus the write buffer");
    s->active_size--;
    struct store_file *active = store_file_find(s, s->active_id);
    active->sealed = true;
    expect_broken(s, "active log is sealed");
    active->sealed = false;
    s->files[0].dead = s->files[0].size + 1;
    expect_broken(s, "more dead bytes");
    s->files[0].dead = 0;

    struct batch_op op0 = s->batch.ops[0];
    s->batch.ops[0].seq = s->batch.ops[1].seq;
    expect_broken(s, "seq order");
    s->batch.ops[0] = op0;
    size_t slot = 0;
    while (s->batch.index[slot] != 1) /* op 0's slot */
        slot++;
    s->batch.index[slot] = 0;
    expect_broken(s, "batch index");
    s->batch.index[slot] = 1;
    s->batch.error = RKV_ERR_IO;
    expect_broken(s, "rolled-back batch");
    s->batch.error = RKV_OK;

    check_invariants(s, "repaired");
    commit_expect(s, RKV_OK);
    model_commit(&m);
    check_exact(s, &m, "after damage checks");
    store_close(s);
    memvfs_free(v);
}
END_TEST

START_TEST(damaged_merge_marker_refuses_open)
{
    struct memvfs *v = memvfs_new();
    memvfs_write_file(v, DB "/MERGE", "RKVMERG1garbage-garbage-garbage", 31);
    struct store_options o = mem_opts(v);
    struct store *s = NULL;
    struct rkv_error err;
    ck_assert_int_eq(store_open(DB, &o, &s, &err), RKV_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "MERGE is damaged"));
    memvfs_free(v);
}
END_TEST

/* Hand-made stores: writes an IDENT with a known secret into dir and
 * returns the checksum keys records written beside it must use. */
#define TEST_SECRET 0x5eed5eed5eed5eedull
static struct record_keys hand_made(struct memvfs *v)
{
    uint8_t b[IDENT_BYTES];
    store_ident_encode(TEST_SECRET, b);
    memvfs_write_file(v, DB "/IDENT", b, sizeof b);
    struct record_keys k;
    record_keys_init(&k, TEST_SECRET);
    return k;
}

/* ---- file ids running out (found by tests/fuzz/fuzz_storage.c) ---- */

/* Log ids are u32, and UINT32_MAX is the keydir's mark of a free entry
 * (KD_FREE). A directory holding log 4294967294 (the highest name open
 * accepts) used to give the new active log id UINT32_MAX: its keys then
 * looked free to the keydir (invariants broken, keys lost by the next
 * resize), and the id after it wrapped to 0, a name open ignores. Running
 * out of ids must be a clean error instead. */
static void write_one_record_log(struct memvfs *v, const char *path)
{
    struct record_keys k = hand_made(v);
    uint8_t rec[64];
    struct record r = {.seq = 1,
                       .value_len = 3,
                       .key_len = 3,
                       .partition = 0,
                       .key = (const uint8_t *)"old",
                       .value = (const uint8_t *)"val"};
    record_encode(rec, &r, &k);
    memvfs_write_file(v, path, rec, record_bytes(3, 3));
}

START_TEST(file_ids_used_up_fail_cleanly)
{
    /* No id left for the active log: open refuses. */
    struct memvfs *v = memvfs_new();
    hand_made(v);
    memvfs_write_file(v, DB "/4294967294.log", "", 0);
    struct store_options o = mem_opts(v);
    struct store *s = NULL;
    struct rkv_error err = {0};
    ck_assert_int_eq(store_open(DB, &o, &s, &err), RKV_ERR_TOOBIG);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err.msg, "file ids"));
    memvfs_free(v);

    /* One id left: open takes it for the active log; rotation and merge,
     * which need another, fail cleanly and lose nothing committed. */
    v = memvfs_new();
    write_one_record_log(v, DB "/4294967293.log");
    o = mem_opts(v); /* file_bytes_max 4096: the second big put rotates */
    s = open_ok(DB, &o, "last id");
    char big[3000];
    memset(big, 'b', sizeof big);
    ck_assert_int_eq(store_put(s, 0, "k1", 2, big, sizeof big, 0), RKV_OK);
    commit_expect(s, RKV_OK);
    ck_assert_int_eq(store_put(s, 0, "k2", 2, big, sizeof big, 0), RKV_ERR_TOOBIG);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "file ids"));
    commit_expect(s, RKV_ERR_TOOBIG); /* the rollback, reported once */
    check_invariants(s, "invariants");
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_get(s, 0, "old", 3, &b, NULL), RKV_OK);
    ck_assert_int_eq(store_get(s, 0, "k1", 2, &b, NULL), RKV_OK);
    ck_assert_uint_eq(b.len, sizeof big);
    ck_assert_int_eq(store_get(s, 0, "k2", 2, &b, NULL), RKV_ERR_NOTFOUND);
    ck_assert_int_eq(store_merge(s), RKV_OK);
    ck_assert_int_eq(store_merge_wait(s), RKV_ERR_TOOBIG);
    ck_assert_int_eq(store_get(s, 0, "old", 3, &b, NULL), RKV_OK);
    check_invariants(s, "invariants");
    rkv_buf_free(&b);
    ck_assert_int_eq(store_close(s), RKV_OK);
    memvfs_free(v);
}
END_TEST

/* ---- sequence numbers past 2^63 (found by tests/fuzz/fuzz_storage.c) ---- */

/* Recovery marks tombstones with bit 63 of the keydir's seq (KD_TOMB), so a
 * record whose seq has that bit (damage that keeps the checksum, or a
 * hand-made file) used to be purged as a tombstone, and every write after
 * it got a seq with the bit set too: acknowledged, synced, and gone at the
 * next open. Such records are invalid now, and writes stop (RKV_ERR_TOOBIG)
 * rather than reach the bit. */
static size_t seq_record(uint8_t *out, uint64_t seq, const char *key, const struct record_keys *k)
{
    struct record r = {.seq = seq,
                       .value_len = 1,
                       .key_len = (uint16_t)strlen(key),
                       .key = (const uint8_t *)key,
                       .value = (const uint8_t *)"v"};
    record_encode(out, &r, k);
    return record_bytes(r.key_len, 1);
}

/* A hint file of one entry, for a log of log_bytes bytes. */
struct hint_entry {
    uint64_t seq, expiry_ms;
    uint32_t offset, value_len;
    uint16_t partition;
    const char *key;
};

static size_t one_entry_hint(uint8_t *out, const struct hint_entry *e, uint64_t log_bytes)
{
    size_t klen = strlen(e->key), n = 0;
    memcpy(out, HINT_MAGIC, HINT_HDR_BYTES);
    n += HINT_HDR_BYTES;
    memset(out + n, 0, HINT_ENTRY_BYTES);
    rkv_put_u64(out + n, e->seq);
    rkv_put_u64(out + n + 8, e->expiry_ms);
    rkv_put_u32(out + n + 16, e->offset);
    rkv_put_u32(out + n + 20, e->value_len);
    rkv_put_u16(out + n + 24, (uint16_t)klen);
    rkv_put_u16(out + n + 26, e->partition);
    memcpy(out + n + HINT_ENTRY_BYTES, e->key, klen);
    n += HINT_ENTRY_BYTES + klen;
    rkv_put_u64(out + n, log_bytes);
    rkv_put_u64(out + n + 8, 1);
    rkv_put_u64(out + n + 16, XXH3_64bits_withSeed(out, n + 16, HINT_SEED));
    return n + HINT_TRAILER_BYTES;
}

static size_t seq_hint(uint8_t *out, uint64_t seq, const char *key, uint64_t log_bytes)
{
    struct hint_entry e = {.seq = seq, .value_len = 1, .key = key};
    return one_entry_hint(out, &e, log_bytes);
}

static void put_probe(struct store *s, int want)
{
    int rc = store_put(s, 0, "probe", 5, "p", 1, 0);
    ck_assert_msg(rc == want, "put: %d (%s)", rc, store_errmsg(s));
    if (rc == RKV_OK)
        commit_expect(s, RKV_OK);
}

static void get_probe(struct store *s, int want)
{
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_get(s, 0, "probe", 5, &b, NULL), want);
    rkv_buf_free(&b);
}

START_TEST(seq_past_2_63_is_refused)
{
    uint8_t log[128], hint[128];
    struct store_options o;
    struct store *s;

    /* A record with bit 63 in its seq is not a valid record: cut as a torn
     * tail, and the writes that follow survive a reopen. */
    struct memvfs *v = memvfs_new();
    struct record_keys k = hand_made(v);
    size_t n = seq_record(log, (1ull << 63) + 1, "high", &k);
    memvfs_write_file(v, DB "/0000000001.log", log, n);
    o = mem_opts(v);
    s = open_ok(DB, &o, "high seq");
    ck_assert_uint_eq(store_open_report(s)->bytes_truncated, n);
    ck_assert_uint_eq(store_open_report(s)->keys, 0);
    put_probe(s, RKV_OK);
    store_close(s);
    s = open_ok(DB, &o, "high seq reopen");
    get_probe(s, RKV_OK);
    store_close(s);
    memvfs_free(v);

    /* The same seq in a hint file: the hint is rejected, the log scanned. */
    v = memvfs_new();
    k = hand_made(v);
    n = seq_record(log, (1ull << 63) + 1, "high", &k);
    memvfs_write_file(v, DB "/0000000001.log", log, n);
    memvfs_write_file(v, DB "/0000000001.hint", hint, seq_hint(hint, (1ull << 63) + 1, "high", n));
    o = mem_opts(v);
    s = open_ok(DB, &o, "high seq hint");
    ck_assert_uint_eq(store_open_report(s)->hint_files, 0);
    ck_assert_uint_eq(store_open_report(s)->hint_files_rejected, 1);
    put_probe(s, RKV_OK);
    store_close(s);
    s = open_ok(DB, &o, "high seq hint reopen");
    get_probe(s, RKV_OK);
    store_close(s);
    memvfs_free(v);

    /* The last valid seq: the store opens and reads, but refuses writes
     * instead of handing out a seq it could not recover. */
    v = memvfs_new();
    k = hand_made(v);
    n = seq_record(log, (1ull << 63) - 1, "last", &k);
    memvfs_write_file(v, DB "/0000000001.log", log, n);
    o = mem_opts(v);
    s = open_ok(DB, &o, "last seq");
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_get(s, 0, "last", 4, &b, NULL), RKV_OK);
    rkv_buf_free(&b);
    put_probe(s, RKV_ERR_TOOBIG);
    ck_assert_ptr_nonnull(strstr(store_errmsg(s), "sequence numbers"));
    ck_assert_int_eq(store_del(s, 0, "last", 4), RKV_ERR_TOOBIG);
    store_close(s);
    s = open_ok(DB, &o, "last seq reopen");
    get_probe(s, RKV_ERR_NOTFOUND);
    ck_assert_uint_eq(store_open_report(s)->keys, 1);
    store_close(s);
    memvfs_free(v);
}
END_TEST

/* ---- the empty key (found by tests/fuzz/fuzz_storage.c under UBSan) ---- */

/* A key of length 0 is a valid key (clients may send one), but the engine
 * did pointer arithmetic and memcmp/memcpy on NULL for it: the batch's key
 * buffer is still unallocated when every key so far is empty, and
 * store_list lends a NULL key for it, which store_get passed to memcmp.
 * Undefined behaviour, caught by -fsanitize=undefined (make asan). */
static int get_listed(void *ctx, const void *key, size_t key_len, const struct store_meta *meta)
{
    struct store *s = ctx;
    struct rkv_buf b = {0};
    ck_assert_uint_eq(key_len, 0);
    ck_assert_ptr_nonnull(key);
    ck_assert_int_eq(store_get(s, 3, key, key_len, &b, NULL), RKV_OK);
    ck_assert_uint_eq(b.len, meta->value_len);
    rkv_buf_free(&b);
    return 0;
}

START_TEST(empty_key_is_a_key)
{
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "empty key");
    struct rkv_buf b = {0};
    ck_assert_int_eq(store_put(s, 3, "", 0, "v1", 2, 0), RKV_OK); /* the first op of a batch */
    ck_assert_int_eq(store_get(s, 3, "", 0, &b, NULL), RKV_OK);   /* found in the batch */
    ck_assert_int_eq(store_put(s, 3, "", 0, "v2", 2, 0), RKV_OK);
    commit_expect(s, RKV_OK);
    ck_assert_int_eq(store_get(s, 3, NULL, 0, &b, NULL), RKV_OK); /* NULL names it too */
    ck_assert(b.len == 2 && memcmp(b.data, "v2", 2) == 0);
    store_close(s);
    s = open_ok(DB, &o, "empty key reopen");
    uint64_t cursor = 0;
    ck_assert_int_eq(store_list(s, 3, &cursor, 10, get_listed, s), RKV_OK);
    ck_assert_int_eq(store_del(s, 3, NULL, 0), RKV_OK);
    ck_assert_int_eq(store_get(s, 3, "", 0, &b, NULL), RKV_ERR_NOTFOUND);
    commit_expect(s, RKV_OK);
    check_invariants(s, "invariants");
    store_close(s);
    rkv_buf_free(&b);
    memvfs_free(v);
}
END_TEST

/* ---- a hint that disagrees with its record (found by fuzz_storage) ---- */

/* A read checked the record a keydir entry points at for its checksum, seq
 * and key, but not for the rest of what the entry says. A (checksummed)
 * hint that disagrees with its log then made store_get return a value of
 * another length than store_meta/store_list report, a tombstone as a live
 * empty value (a delete undone), a value past its expiry as live, or a
 * value under another partition than its record's (which the next merge,
 * going by the record, then dropped). The record is the truth: any
 * disagreement reads as RKV_ERR_CORRUPT. */
static void hint_case(const struct hint_entry *e, uint64_t rec_expiry, bool rec_tomb,
                      const char *ctx)
{
    uint8_t log[256], hint[128];
    struct record r = {.seq = 1,
                       .expiry_ms = rec_expiry,
                       .value_len = rec_tomb ? 0 : 3,
                       .key_len = 1,
                       .flags = rec_tomb ? RECORD_FLAG_TOMB : 0,
                       .key = (const uint8_t *)"k",
                       .value = (const uint8_t *)"abc"};
    struct memvfs *v = memvfs_new();
    struct record_keys k = hand_made(v);
    record_encode(log, &r, &k);
    size_t n = record_bytes(1, r.value_len);
    memset(log + n, 0, 64); /* room after it, which a longer value_len may claim */
    struct record pad = {.seq = 2,
                         .value_len = 40,
                         .key_len = 1,
                         .key = (const uint8_t *)"z",
                         .value = (const uint8_t *)"0123456789012345678901234567890123456789"};
    record_encode(log + n, &pad, &k);
    n += record_bytes(1, 40);
    memvfs_write_file(v, DB "/0000000001.log", log, n);
    memvfs_write_file(v, DB "/0000000001.hint", hint, one_entry_hint(hint, e, n));
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, ctx);
    ck_assert_msg(store_open_report(s)->hint_files == 1, "%s: hint not used", ctx);
    struct rkv_buf b = {0};
    struct store_meta m;
    int rc = store_get(s, e->partition, "k", 1, &b, &m);
    ck_assert_msg(rc == RKV_ERR_CORRUPT, "%s: get gave %d, %zu bytes (meta says %u)", ctx, rc,
                  b.len, rc == RKV_OK ? m.value_len : 0);
    rkv_buf_free(&b);
    store_close(s);
    memvfs_free(v);
}

START_TEST(hint_disagreeing_with_record_is_corrupt)
{
    struct hint_entry e = {.seq = 1, .value_len = 10, .key = "k"};
    hint_case(&e, 0, false, "longer value_len");
    e.value_len = 0;
    hint_case(&e, 0, true, "a tombstone");
    e.value_len = 3;
    hint_case(&e, fake_now - 1, false, "expiry dropped");
    e.expiry_ms = fake_now + 1000;
    hint_case(&e, 0, false, "expiry added");
    e.expiry_ms = 0;
    e.partition = 256;
    hint_case(&e, 0, false, "another partition");
}
END_TEST

/* ---- merge under concurrent reads and writes (real files, threads) ---- */

START_TEST(merge_under_concurrent_load)
{
    char *dir = test_mkdtemp("merge-load");
    struct store_options o;
    store_options_default(&o);
    o.file_bytes_max = 16384;
    o.merge_dead_bytes_min = 8192;
    o.merge_dead_percent = 20;
    o.now_ms = fake_clock;
    struct store *s = open_ok(dir, &o, "load");
    struct model m;
    model_init(&m);
    struct test_rng r = {2024};
    for (int i = 0; i < 40000; i++) {
        int k = (int)test_rng_below(&r, NKEYS);
        if (test_rng_below(&r, 2)) {
            ck_assert_int_eq(read_state(s, k, "load"), model_latest(&m, k));
        } else {
            ck_assert_int_eq(random_op(s, &m, &r), RKV_OK);
        }
        if (i % 8 == 0) {
            commit_expect(s, RKV_OK);
            model_commit(&m);
        }
        if (i % 2000 == 0)
            store_merge(s); /* BUSY while one runs is fine */
    }
    commit_expect(s, RKV_OK);
    model_commit(&m);
    ck_assert_int_eq(store_merge_wait(s), RKV_OK);
    struct store_stats st;
    store_stats(s, &st);
    ck_assert_uint_ge(st.merges, 5);
    check_exact(s, &m, "load");
    store_close(s);
    s = open_ok(dir, &o, "load reopen");
    check_exact(s, &m, "load reopen");
    store_close(s);
    test_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- allocation failure at every allocation ---- */

static int scenario(struct memvfs *v)
{
    struct store_options o = mem_opts(v);
    struct store *s = NULL;
    int rc = store_open(DB, &o, &s, NULL);
    if (rc != RKV_OK) {
        ck_assert_msg(rc == RKV_ERR_NOMEM, "open failed with %d", rc);
        return rc;
    }
    struct model m;
    model_init(&m);
    struct test_rng r = {5};
    for (int i = 0; i < 200; i++)
        random_op(s, &m, &r);
    store_commit(s);
    store_merge(s);
    store_merge_wait(s);
    struct rkv_buf b = {0};
    store_get(s, 0, "key00", 5, &b, NULL);
    rkv_buf_free(&b);
    return store_close(s);
}

START_TEST(allocation_failure_everywhere)
{
    long n;
    for (n = 0; n < 100000; n++) {
        struct memvfs *v = memvfs_new();
        test_alloc_fail_from(n);
        scenario(v);
        test_alloc_reset();
        bool failed = test_alloc_failed();
        /* whatever happened, the store opens and holds only real values */
        struct store_options o = mem_opts(v);
        struct store *s = open_ok(DB, &o, "after alloc failure");
        for (int k = 0; k < NKEYS; k++)
            read_state(s, k, "after alloc failure");
        store_close(s);
        memvfs_free(v);
        if (!failed)
            break;
    }
    ck_assert_int_lt(n, 100000);
    ck_assert_int_gt(n, 20);
}
END_TEST

/* ---- records planted in values ---- */

/* A value may hold bytes shaped like records. After damage, the scanner
 * looks for the next record at every offset: it must neither accept a
 * planted one (here checksummed under a guessed secret: the real one is
 * random and never leaves the store), nor do more than a header's worth of
 * work per offset (planted headers claim the largest lengths they can; the
 * scan used to hash each claimed length, quadratic in the file size). */
static int count_records(void *ctx, const struct record *r, uint32_t offset)
{
    (void)offset;
    struct rkv_buf *keys = ctx;
    rkv_buf_append(keys, r->key, r->key_len);
    rkv_buf_append(keys, ";", 1);
    return RKV_OK;
}

START_TEST(planted_records_are_never_accepted)
{
    struct record_keys real, guessed;
    record_keys_init(&real, TEST_SECRET);
    record_keys_init(&guessed, TEST_SECRET ^ 1);
    size_t cap = 1 << 20;
    uint8_t *log = calloc(1, cap), *value = malloc(512 * 1024);
    /* the value: a planted record under the guessed secret, then planted
     * headers (format, flags and lengths plausible), back to back, each
     * claiming a body to the end of the value */
    struct record planted = {.seq = STORE_SEQ_MAX,
                             .value_len = 4,
                             .key_len = 7,
                             .key = (const uint8_t *)"planted",
                             .value = (const uint8_t *)"evil"};
    record_encode(value, &planted, &guessed);
    size_t vlen = 512 * 1024;
    for (size_t off = 64; off + RECORD_HDR_BYTES <= vlen; off += RECORD_HDR_BYTES) {
        memset(value + off, 0, RECORD_HDR_BYTES);
        rkv_put_u32(value + off + 28, (uint32_t)(vlen - off - RECORD_HDR_BYTES));
        value[off + 37] = RECORD_FORMAT;
    }
    size_t n = 0;
    struct record a = {.seq = 1,
                       .value_len = 1,
                       .key_len = 1,
                       .key = (const uint8_t *)"a",
                       .value = (const uint8_t *)"1"};
    record_encode(log + n, &a, &real);
    n += record_bytes(1, 1);
    size_t damaged = n;
    struct record holder = {.seq = 2,
                            .value_len = (uint32_t)vlen,
                            .key_len = 6,
                            .key = (const uint8_t *)"holder",
                            .value = value};
    record_encode(log + n, &holder, &real);
    n += record_bytes(6, vlen);
    struct record b = {.seq = 3,
                       .value_len = 1,
                       .key_len = 1,
                       .key = (const uint8_t *)"b",
                       .value = (const uint8_t *)"2"};
    record_encode(log + n, &b, &real);
    n += record_bytes(1, 1);
    log[damaged + 40] ^= 0xff; /* damage the holder: the scan must resync */
    struct rkv_buf keys = {0};
    struct scan_result res;
    ck_assert_int_eq(record_scan(log, n, &real, count_records, &keys, &res), RKV_OK);
    rkv_buf_append(&keys, "", 1);
    ck_assert_str_eq((char *)keys.data, "a;b;"); /* b found again; nothing planted */
    ck_assert_uint_eq(res.bad_records, 1);
    ck_assert_msg(res.body_checks <= 4, "%llu body checksums for %zu bytes of planted headers",
                  (unsigned long long)res.body_checks, vlen);
    /* and the same through a store on disk: open, read, nothing planted */
    struct memvfs *v = memvfs_new();
    hand_made(v);
    memvfs_write_file(v, DB "/0000000001.log", log, n);
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "planted");
    struct rkv_buf got = {0};
    ck_assert_int_eq(store_get(s, 0, "planted", 7, &got, NULL), RKV_ERR_NOTFOUND);
    ck_assert_int_eq(store_get(s, 0, "b", 1, &got, NULL), RKV_OK);
    store_close(s);
    rkv_buf_free(&got);
    rkv_buf_free(&keys);
    memvfs_free(v);
    free(value);
    free(log);
}
END_TEST

START_TEST(ident_guards_the_logs)
{
    /* a store makes its IDENT once; logs without one refuse to open */
    struct memvfs *v = memvfs_new();
    struct store_options o = mem_opts(v);
    struct store *s = open_ok(DB, &o, "ident");
    ck_assert_int_eq(store_put(s, 0, "k", 1, "v", 1, 0), RKV_OK);
    uint64_t secret = s->secret;
    store_close(s);
    s = open_ok(DB, &o, "ident reopen");
    ck_assert_uint_eq(s->secret, secret);
    store_close(s);
    struct rkv_buf b = {0};
    ck_assert_int_eq(memvfs_read_file(v, DB "/IDENT", &b), 0);
    b.data[10] ^= 1;
    memvfs_write_file(v, DB "/IDENT", b.data, b.len);
    struct rkv_error err;
    ck_assert_int_eq(store_open(DB, &o, &s, &err), RKV_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "IDENT is damaged"));
    struct memvfs *w = memvfs_clone(v);
    o.fileops = memvfs_ops(w);
    rkv_buf_free(&b);
    memvfs_free(v);
    /* no IDENT at all, but logs: refused too */
    struct memvfs *x = memvfs_new();
    ck_assert_int_eq(memvfs_read_file(w, DB "/0000000001.log", &b), 0);
    memvfs_write_file(x, DB "/0000000001.log", b.data, b.len);
    o.fileops = memvfs_ops(x);
    ck_assert_int_eq(store_open(DB, &o, &s, &err), RKV_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.msg, "IDENT is missing"));
    rkv_buf_free(&b);
    memvfs_free(w);
    memvfs_free(x);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("storage-faults");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, power_loss_keeps_every_synced_record);
    tcase_add_test(tc, corruption_at_every_offset);
    tcase_add_test(tc, zero_filled_tail_is_cut);
    tcase_add_test(tc, hint_corruption_at_every_offset);
    tcase_add_test(tc, fsync_failure_is_sticky);
    tcase_add_test(tc, enospc_rolls_back_the_batch);
    tcase_add_test(tc, failed_auto_commit_is_reported);
    tcase_add_test(tc, interval_sync_follows_the_injected_clock);
    tcase_add_test(tc, async_commit_is_durable_at_its_ticket);
    tcase_add_test(tc, async_sync_failure_is_sticky);
    tcase_add_test(tc, short_writes_are_completed);
    tcase_add_test(tc, merge_crash_at_every_step);
    tcase_add_test(tc, merge_drops_keys_whose_records_rotted);
    tcase_add_test(tc, store_invariants_notice_damage);
    tcase_add_test(tc, damaged_merge_marker_refuses_open);
    tcase_add_test(tc, file_ids_used_up_fail_cleanly);
    tcase_add_test(tc, seq_past_2_63_is_refused);
    tcase_add_test(tc, empty_key_is_a_key);
    tcase_add_test(tc, planted_records_are_never_accepted);
    tcase_add_test(tc, ident_guards_the_logs);
    tcase_add_test(tc, hint_disagreeing_with_record_is_corrupt);
    tcase_add_test(tc, merge_under_concurrent_load);
    tcase_add_test(tc, allocation_failure_everywhere);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(faults_suite());
}
