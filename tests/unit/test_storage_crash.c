/*
 * test_storage_crash.c: kill -9 at random moments, over many seeds.
 *
 * A child process writes puts and deletes under sync = always, committing
 * in random batch sizes, with merges running. Through a pipe it tells the
 * parent two things, each before it can matter: before it issues the first
 * op of a batch, how far it is about to go (ISSUED), and after each
 * successful commit, how many ops are now durable (ACKED). The parent kills
 * it with SIGKILL once a random number of ops has been acknowledged, drains
 * the pipe, reopens the store and checks every key exactly: it must hold its
 * last acknowledged state, or the state of an op that was issued but not
 * acknowledged (the batch in flight at the kill), and nothing else. In
 * particular a key must not read as absent, or as an older version, when
 * its acknowledged state is a value.
 *
 * The store survives several kills in a row (rounds). Each round writes its
 * own op sequence, with versions numbered per round, so no value an earlier
 * round wrote can pass for one of this round's. The state the parent
 * observed at the end of a round is where the next round starts.
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
#include "storage/store_int.h"
#include "tests/support/testutil.h"

#define NKEYS 64
#define OPS_MAX 200000
#define ROUNDS_MAX 3
#define BATCH_OPS_MAX 16
#define ABSENT (-1)
#define ACK_DEADLINE_MS 30000

struct op {
    int key;
    bool del;
    bool commit_after; /* the child commits after this op */
};

/* What the child tells the parent; 8 bytes, so one write(2) is atomic. */
enum { MSG_ISSUED = 1, MSG_ACKED = 2 };
struct msg {
    int32_t kind;
    int32_t upto; /* ops[0 .. upto) */
};

/* The op sequence of one round of one seed; child and parent make the same
 * one, and no two rounds or seeds share one. */
static void make_ops(struct op *ops, int n, int seed, int round)
{
    struct test_rng r = {(uint64_t)seed << 8 | (uint64_t)round};
    int batch_left = 0;
    for (int i = 0; i < n; i++) {
        if (batch_left == 0)
            batch_left = 1 + (int)test_rng_below(&r, BATCH_OPS_MAX);
        ops[i].key = (int)test_rng_below(&r, NKEYS);
        ops[i].del = test_rng_below(&r, 100) < 15;
        ops[i].commit_after = --batch_left == 0;
    }
    ops[n - 1].commit_after = true;
}

/* The end of the batch that starts at op from: ops[from .. end) are
 * committed together. */
static int batch_end(const struct op *ops, int from)
{
    int end = from + 1;
    while (!ops[end - 1].commit_after)
        end++;
    return end;
}

/* Op i of round r writes version r * OPS_MAX + i: unique across rounds. */
static int version_of(int round, int i)
{
    return round * OPS_MAX + i;
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

static void send_msg(int fd, int32_t kind, int32_t upto)
{
    struct msg m = {.kind = kind, .upto = upto};
    if (write(fd, &m, sizeof m) != sizeof m)
        _exit(3);
}

/* Exit codes of a child that stopped by itself (the parent expects only
 * SIGKILL). */
enum { CHILD_OPEN = 2, CHILD_PIPE = 3, CHILD_WRITE = 4, CHILD_INVARIANTS = 5 };

static void child_main(const char *dir, const struct op *ops, int n, int round, int fd)
{
    rkv_log_set_level(RKV_LOG_OFF);
    struct store_options o = crash_opts();
    struct store *s = NULL;
    if (store_open(dir, &o, &s, NULL) != RKV_OK)
        _exit(CHILD_OPEN);
    char name[16], val[256];
    for (int i = 0; i < n; i++) {
        if (i == 0 || ops[i - 1].commit_after) /* before any op of the batch */
            send_msg(fd, MSG_ISSUED, batch_end(ops, i));
        snprintf(name, sizeof name, "key%02d", ops[i].key);
        int rc;
        if (ops[i].del) {
            rc = store_del(s, 0, name, strlen(name));
            if (rc == RKV_ERR_NOTFOUND)
                rc = RKV_OK;
        } else {
            size_t len = value_for(val, ops[i].key, version_of(round, i));
            rc = store_put(s, 0, name, strlen(name), val, len, 0);
        }
        if (rc == RKV_OK && ops[i].commit_after) {
            rc = store_commit(s);
            if (rc == RKV_OK && !store_invariants_ok(s, NULL))
                _exit(CHILD_INVARIANTS);
            if (rc == RKV_OK)
                send_msg(fd, MSG_ACKED, i + 1);
        }
        if (rc != RKV_OK)
            _exit(CHILD_WRITE);
    }
    _exit(0);
}

struct progress {
    int32_t issued; /* ops the child may have handed to the store */
    int32_t acked;  /* ops whose commit returned OK */
};

/* Reads messages until at least want ops are acknowledged or the child is
 * gone (end of file). */
static void read_msgs(int fd, int32_t want, struct progress *p)
{
    uint64_t deadline = rkv_clock_mono_ms() + ACK_DEADLINE_MS;
    while (p->acked < want) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = (int64_t)(deadline - rkv_clock_mono_ms());
        ck_assert_msg(left > 0, "child acknowledged only %d of %d ops in time", p->acked, want);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        struct msg m;
        ssize_t got = read(fd, &m, sizeof m);
        if (got <= 0)
            return; /* the child exited */
        ck_assert_int_eq(got, sizeof m);
        ck_assert(m.kind == MSG_ISSUED || m.kind == MSG_ACKED);
        ck_assert(m.upto > 0 && m.upto <= OPS_MAX);
        if (m.kind == MSG_ISSUED && m.upto > p->issued)
            p->issued = m.upto;
        if (m.kind == MSG_ACKED && m.upto > p->acked)
            p->acked = m.upto;
    }
}

/* The state of key after ops[0 .. upto) of round, starting from base. */
static int state_after(const struct op *ops, int round, int upto, int key, int base)
{
    int st = base;
    for (int i = 0; i < upto; i++)
        if (ops[i].key == key)
            st = ops[i].del ? ABSENT : version_of(round, i);
    return st;
}

static void state_name(char *buf, size_t len, int st)
{
    if (st == ABSENT)
        snprintf(buf, len, "absent");
    else
        snprintf(buf, len, "round %d op %d", st / OPS_MAX, st % OPS_MAX);
}

/* Reads key: its version or ABSENT; fails on damaged or foreign bytes. */
static int read_key(struct store *s, int key, int seed)
{
    char name[16], want[256];
    snprintf(name, sizeof name, "key%02d", key);
    struct rkv_buf b = {0};
    int rc = store_get(s, 0, name, strlen(name), &b, NULL);
    int got = ABSENT;
    if (rc == RKV_OK) {
        int kk;
        char *str = strndup((char *)b.data, b.len);
        ck_assert_msg(sscanf(str, "key%d#%d#", &kk, &got) == 2 && kk == key && got >= 0,
                      "seed %d: %s holds foreign bytes", seed, name);
        free(str);
        size_t len = value_for(want, key, got);
        ck_assert_msg(len == b.len && memcmp(want, b.data, len) == 0, "seed %d: %s damaged", seed,
                      name);
    } else {
        ck_assert_msg(rc == RKV_ERR_NOTFOUND, "seed %d: get %s: %s", seed, name, store_errmsg(s));
    }
    rkv_buf_free(&b);
    return got;
}

/* Checks key against the acknowledged state and the ops in flight; returns
 * what it holds, the next round's starting state. */
static int check_key(struct store *s, const struct op *ops, int round, const struct progress *p,
                     int key, int base, int seed)
{
    int got = read_key(s, key, seed);
    int acked_state = state_after(ops, round, p->acked, key, base);
    if (got == acked_state)
        return got;
    for (int i = p->acked; i < p->issued; i++)
        if (ops[i].key == key && got == (ops[i].del ? ABSENT : version_of(round, i)))
            return got; /* a batch in flight at the kill */
    char g[48], a[48];
    state_name(g, sizeof g, got);
    state_name(a, sizeof a, acked_state);
    ck_abort_msg("seed %d round %d: key%02d holds %s; acknowledged: %s (%d ops acknowledged, "
                 "%d issued)",
                 seed, round, key, g, a, p->acked, p->issued);
    return got;
}

/* One round: a child writes round's ops until killed; then every key is
 * checked. base[] is the state each key starts from; it is updated. */
static void crash_round(const char *dir, const struct op *ops, int seed, int round, int32_t want,
                        int base[NKEYS])
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(dir, ops, OPS_MAX, round, fds[1]);
    }
    close(fds[1]);
    struct progress p = {0};
    read_msgs(fds[0], want, &p);
    kill(pid, SIGKILL);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status), "seed %d round %d: child exited with %d", seed, round,
                  WEXITSTATUS(status));
    read_msgs(fds[0], INT32_MAX, &p); /* drain: whatever it said before dying */
    close(fds[0]);
    /* at most one batch is in flight: the one after the last ack */
    ck_assert_msg(p.issued == p.acked || (p.acked < OPS_MAX && p.issued == batch_end(ops, p.acked)),
                  "seed %d round %d: %d ops acknowledged but %d issued", seed, round, p.acked,
                  p.issued);

    struct store_options o = crash_opts();
    struct store *s = NULL;
    struct rkv_error err;
    ck_assert_msg(store_open(dir, &o, &s, &err) == RKV_OK, "seed %d: reopen: %s", seed, err.msg);
    ck_assert_int_eq(store_open_report(s)->stale_lock_pid, pid);
    const char *why;
    ck_assert_msg(store_invariants_ok(s, &why), "seed %d: store invariants: %s", seed, why);
    for (int k = 0; k < NKEYS; k++)
        base[k] = check_key(s, ops, round, &p, k, base[k], seed);
    ck_assert_msg(store_invariants_ok(s, &why), "seed %d: store invariants: %s", seed, why);
    ck_assert_int_eq(store_close(s), RKV_OK);
}

START_TEST(kill9_keeps_acknowledged_writes)
{
    rkv_log_set_level(RKV_LOG_ERROR);
    struct op *ops = malloc(OPS_MAX * sizeof *ops);
    int seeds = test_seeds(20);
    for (int seed = 0; seed < seeds; seed++) {
        char *dir = test_mkdtemp("crash");
        struct test_rng r = {(uint64_t)seed + 1000};
        int base[NKEYS];
        for (int k = 0; k < NKEYS; k++)
            base[k] = ABSENT;
        int rounds = 1 + (int)test_rng_below(&r, ROUNDS_MAX);
        for (int round = 0; round < rounds; round++) {
            make_ops(ops, OPS_MAX, seed, round);
            int32_t want = 20 + (int32_t)test_rng_below(&r, 1500);
            crash_round(dir, ops, seed, round, want, base);
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
