/*
 * test_storage_crash.c: kill -9 at random moments, over many seeds.
 *
 * A child process writes puts and deletes under sync = always, committing
 * in random batch sizes, with merges running, and after every successful
 * commit tells the parent (through a pipe) how many ops are now durable.
 * The parent kills it with SIGKILL once a random number of ops has been
 * acknowledged, reopens the store, and checks each key against the op
 * sequence, which it regenerates from the same seed: every key holds its
 * state as of the last acknowledged op or a state written after it.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "storage/storage.h"
#include "tests/support/testutil.h"

#define NKEYS 64
#define OPS_MAX 200000
#define ABSENT (-1)
#define ACK_DEADLINE_MS 30000

struct op {
    int key;
    bool del;
    bool commit_after; /* the child commits after this op */
};

/* The op sequence of a seed; child and parent make the same one. */
static void make_ops(struct op *ops, int n, uint64_t seed)
{
    struct test_rng r = {seed};
    int batch_left = 0;
    for (int i = 0; i < n; i++) {
        if (batch_left == 0)
            batch_left = 1 + (int)test_rng_below(&r, 16);
        ops[i].key = (int)test_rng_below(&r, NKEYS);
        ops[i].del = test_rng_below(&r, 100) < 15;
        ops[i].commit_after = --batch_left == 0;
    }
}

static size_t value_for(char *buf, int k, int version)
{
    int n = snprintf(buf, 256, "key%02d#%d#", k, version);
    size_t pad = (size_t)((version * 31 + k) % 150);
    memset(buf + n, 'a' + (version % 26), pad);
    return (size_t)n + pad;
}

static struct store_options crash_opts(void)
{
    struct store_options o;
    store_options_default(&o);
    o.sync = STORE_SYNC_ALWAYS;
    o.file_bytes_max = 32 * 1024;
    o.merge_dead_bytes_min = 32 * 1024;
    o.merge_dead_percent = 30;
    o.break_stale_lock = true;
    return o;
}

static void child_main(const char *dir, const struct op *ops, int n, int ack_fd)
{
    rkv_log_set_level(RKV_LOG_OFF);
    struct store_options o = crash_opts();
    struct store *s = NULL;
    if (store_open(dir, &o, &s, NULL) != RKV_OK)
        _exit(2);
    char name[16], val[256];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "key%02d", ops[i].key);
        int rc;
        if (ops[i].del) {
            rc = store_del(s, 0, name, strlen(name));
            if (rc == RKV_ERR_NOTFOUND)
                rc = RKV_OK;
        } else {
            size_t len = value_for(val, ops[i].key, i);
            rc = store_put(s, 0, name, strlen(name), val, len, 0);
        }
        if (rc == RKV_OK && ops[i].commit_after) {
            rc = store_commit(s);
            int32_t durable = i + 1;
            if (rc == RKV_OK && write(ack_fd, &durable, sizeof durable) != sizeof durable)
                _exit(3);
        }
        if (rc != RKV_OK)
            _exit(4);
    }
    _exit(0);
}

/* Reads acks until at least want ops are durable or the child is gone;
 * returns the highest count seen. */
static int32_t read_acks(int fd, int32_t want, int32_t have)
{
    uint64_t deadline = rkv_clock_mono_ms() + ACK_DEADLINE_MS;
    while (have < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = (int64_t)(deadline - rkv_clock_mono_ms());
        ck_assert_msg(left > 0, "child acknowledged only %d of %d ops in time", have, want);
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        int32_t v;
        ssize_t got = read(fd, &v, sizeof v);
        if (got <= 0)
            break; /* the child exited */
        ck_assert_int_eq(got, sizeof v);
        if (v > have)
            have = v;
    }
    return have;
}

/* key's state after ops[0..upto) */
static int state_after(const struct op *ops, int upto, int key)
{
    int st = ABSENT;
    for (int i = 0; i < upto; i++)
        if (ops[i].key == key)
            st = ops[i].del ? ABSENT : i;
    return st;
}

static void check_key(struct store *s, const struct op *ops, int n, int acked, int key, int seed)
{
    char name[16], want[256];
    snprintf(name, sizeof name, "key%02d", key);
    struct rkv_buf b = {0};
    int rc = store_get(s, 0, name, strlen(name), &b, NULL);
    int got = ABSENT;
    if (rc == RKV_OK) {
        int kk;
        char *str = strndup((char *)b.data, b.len);
        ck_assert_msg(sscanf(str, "key%d#%d#", &kk, &got) == 2 && kk == key,
                      "seed %d: %s holds foreign bytes", seed, name);
        free(str);
        size_t len = value_for(want, key, got);
        ck_assert_msg(len == b.len && memcmp(want, b.data, len) == 0, "seed %d: %s damaged", seed,
                      name);
        ck_assert_msg(got >= 0 && got < n && ops[got].key == key && !ops[got].del,
                      "seed %d: %s holds version %d that was never written", seed, name, got);
    } else {
        ck_assert_msg(rc == RKV_ERR_NOTFOUND, "seed %d: get %s: %s", seed, name,
                      store_errmsg(s));
    }
    rkv_buf_free(&b);
    if (got == state_after(ops, acked, key))
        return;
    /* otherwise it must be a state written after the last acknowledgement */
    for (int i = acked; i < n; i++)
        if (ops[i].key == key && got == (ops[i].del ? ABSENT : i))
            return;
    ck_abort_msg("seed %d: %s holds %d; last acknowledged state %d", seed, name, got,
                 state_after(ops, acked, key));
}

START_TEST(kill9_keeps_acknowledged_writes)
{
    rkv_log_set_level(RKV_LOG_ERROR);
    struct op *ops = malloc(OPS_MAX * sizeof *ops);
    int seeds = test_seeds(20);
    for (int seed = 0; seed < seeds; seed++) {
        char *dir = test_mkdtemp("crash");
        struct test_rng r = {(uint64_t)seed + 1000};
        make_ops(ops, OPS_MAX, (uint64_t)seed);
        /* the store survives several kills in a row */
        int rounds = 1 + (int)test_rng_below(&r, 3);
        int32_t acked = 0;
        for (int round = 0; round < rounds; round++) {
            int fds[2];
            ck_assert_int_eq(pipe(fds), 0);
            pid_t pid = fork();
            ck_assert_int_ge(pid, 0);
            if (pid == 0) {
                close(fds[0]);
                /* each round replays the same sequence: later rounds
                 * overwrite what earlier ones wrote */
                child_main(dir, ops, OPS_MAX, fds[1]);
            }
            close(fds[1]);
            int32_t want = 20 + (int32_t)test_rng_below(&r, 1500);
            int32_t round_acked = read_acks(fds[0], want, 0);
            kill(pid, SIGKILL);
            int status;
            ck_assert_int_eq(waitpid(pid, &status, 0), pid);
            ck_assert_msg(WIFSIGNALED(status), "seed %d: child exited with %d", seed,
                          WEXITSTATUS(status));
            round_acked = read_acks(fds[0], INT32_MAX, round_acked); /* drain */
            close(fds[0]);
            acked = round_acked;
            /* after a later round, earlier rounds' states are superseded
             * only where this round wrote; keep checks exact by replaying
             * the same sequence, so states after `acked` are this round's */
            struct store_options o = crash_opts();
            struct store *s = NULL;
            struct rkv_error err;
            ck_assert_msg(store_open(dir, &o, &s, &err) == RKV_OK, "seed %d: reopen: %s", seed,
                          err.msg);
            ck_assert_int_eq(store_open_report(s)->stale_lock_pid, pid);
            for (int k = 0; k < NKEYS; k++)
                check_key(s, ops, OPS_MAX, acked, k, seed);
            ck_assert_int_eq(store_close(s), RKV_OK);
        }
        test_rmdir(dir);
        free(dir);
    }
    free(ops);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("storage-crash");
    TCase *tc = tcase_create("kill9");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, kill9_keeps_acknowledged_writes);
    suite_add_tcase(su, tc);
    return test_run(su);
}
