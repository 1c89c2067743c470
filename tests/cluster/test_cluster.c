/*
 * test_cluster.c: a ring of real ringkvd processes on loopback, driven
 * through libringkv and the ringkv command line: quorums, limits, a node
 * killed and restarted, concurrent writes kept as siblings, read repair,
 * a restarted node keeping its data (and its vector-clock actor only after
 * a clean stop), and expired values staying expired on every replica.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include "client/ringkv.h"
#include "common/clock.h"
#include "tests/support/cluster.h"
#include "tests/support/testutil.h"

#define WAIT_MS 15000

static struct cluster cl;

static void start3(void)
{
    cluster_start(&cl, 3, NULL, NULL);
}

static void stop(void)
{
    cluster_stop(&cl);
}

static void put_ok(struct ringkv_client *c, const char *k, const char *v,
                   const struct ringkv_request_options *o)
{
    int rc = ringkv_put(c, k, strlen(k), v, strlen(v), o, NULL);
    ck_assert_msg(rc == RINGKV_OK, "put %s: %s", k, ringkv_errmsg(c));
}

/* Replaces k's value: reads it (at o's coordinator, R=2) for its context,
 * then writes v with that context, so it supersedes what was there. */
static void put_over(struct ringkv_client *c, const char *k, const char *v,
                     const struct ringkv_request_options *o)
{
    struct ringkv_result r;
    struct ringkv_request_options ro = {.r = 2, .coordinator = o->coordinator};
    int rc = ringkv_get(c, k, strlen(k), &ro, &r);
    ck_assert_msg(rc == RINGKV_OK || rc == RINGKV_ENOTFOUND, "read %s: %s", k, ringkv_errmsg(c));
    struct ringkv_request_options wo = *o;
    wo.context = r.context;
    wo.context_len = r.context_len;
    put_ok(c, k, v, &wo);
    ringkv_result_free(&r);
}

/* Asserts that a get of k at o returns exactly the values in want (any
 * order), or not found when n_want is 0. */
static void get_is(struct ringkv_client *c, const char *k, const struct ringkv_request_options *o,
                   const char *const *want, size_t n_want)
{
    struct ringkv_result r;
    int rc = ringkv_get(c, k, strlen(k), o, &r);
    if (n_want == 0) {
        ck_assert_msg(rc == RINGKV_ENOTFOUND, "get %s: expected not found, got %s (%s)", k,
                      ringkv_strerror(rc), ringkv_errmsg(c));
    } else {
        ck_assert_msg(rc == RINGKV_OK, "get %s: %s", k, ringkv_errmsg(c));
        ck_assert_msg(r.n_siblings == n_want, "get %s: %zu siblings, want %zu", k, r.n_siblings,
                      n_want);
        for (size_t i = 0; i < n_want; i++) {
            bool found = false;
            for (size_t j = 0; j < r.n_siblings; j++)
                found |= r.siblings[j].value_len == strlen(want[i]) &&
                         memcmp(r.siblings[j].value, want[i], strlen(want[i])) == 0;
            ck_assert_msg(found, "get %s: value \"%s\" missing", k, want[i]);
        }
    }
    ringkv_result_free(&r);
}

START_TEST(crud_at_every_quorum)
{
    struct ringkv_client *c = cluster_client(&cl);
    for (uint32_t r = 1; r <= 3; r++) {
        for (uint32_t w = 1; w <= 3; w++) {
            char k[32], v[32];
            snprintf(k, sizeof k, "key-r%u-w%u", r, w);
            snprintf(v, sizeof v, "value-%u-%u", r, w);
            struct ringkv_request_options ro = {.r = r}, wo = {.w = w};
            put_ok(c, k, v, &wo);
            const char *want[] = {v};
            if (r + w > 3) {
                get_is(c, k, &ro, want, 1); /* quorums overlap: the read sees the write */
            } else {
                /* they need not overlap: the value or nothing, never an error */
                struct ringkv_result res;
                int rc = ringkv_get(c, k, strlen(k), &ro, &res);
                ck_assert_msg(rc == RINGKV_OK || rc == RINGKV_ENOTFOUND, "get r=%u: %s", r,
                              ringkv_errmsg(c));
                ck_assert(rc != RINGKV_OK ||
                          (res.n_siblings == 1 && res.siblings[0].value_len == strlen(v) &&
                           memcmp(res.siblings[0].value, v, strlen(v)) == 0));
                ringkv_result_free(&res);
            }
            get_is(c, k, &(struct ringkv_request_options){.r = 3}, want, 1);
            ck_assert_int_eq(ringkv_del(c, k, strlen(k), &wo, NULL), RINGKV_OK);
            get_is(c, k, &(struct ringkv_request_options){.r = 3}, NULL, 0);
        }
    }
    ringkv_close(c);
}
END_TEST

START_TEST(values_keys_and_limits)
{
    struct ringkv_client *c = cluster_client(&cl);
    /* empty value */
    ck_assert_int_eq(ringkv_put(c, "empty", 5, "", 0, NULL, NULL), RINGKV_OK);
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "empty", 5, NULL, &r), RINGKV_OK);
    ck_assert_uint_eq(r.n_siblings, 1);
    ck_assert_uint_eq(r.siblings[0].value_len, 0);
    ringkv_result_free(&r);
    /* options past what a node accepts are refused by the client itself */
    struct ringkv_request_options far = {.timeout_ms = 3600001};
    ck_assert_int_eq(ringkv_get(c, "empty", 5, &far, &r), RINGKV_EINVAL);
    ck_assert_ptr_nonnull(strstr(ringkv_errmsg(c), "timeout_ms"));
    far = (struct ringkv_request_options){.ttl_ms = 315360000001ull};
    ck_assert_int_eq(ringkv_put(c, "empty", 5, "", 0, &far, NULL), RINGKV_EINVAL);
    /* binary key and value with NUL bytes */
    const char key[] = {'b', 0, 'i', 0, 'n'};
    const char val[] = {0, 1, 0, 2, 0, (char)0xff};
    ck_assert_int_eq(ringkv_put(c, key, sizeof key, val, sizeof val, NULL, NULL), RINGKV_OK);
    ck_assert_int_eq(ringkv_get(c, key, sizeof key, NULL, &r), RINGKV_OK);
    ck_assert(r.siblings[0].value_len == sizeof val &&
              memcmp(r.siblings[0].value, val, sizeof val) == 0);
    ringkv_result_free(&r);
    ck_assert_int_eq(ringkv_get(c, key, 2, NULL, &r),
                     RINGKV_ENOTFOUND); /* a prefix is another key */
    ringkv_result_free(&r);
    /* 1 MiB value */
    size_t big = 1024 * 1024;
    char *bv = malloc(big);
    for (size_t i = 0; i < big; i++)
        bv[i] = (char)(i * 31 + 7);
    ck_assert_int_eq(ringkv_put(c, "big", 3, bv, big, NULL, NULL), RINGKV_OK);
    ck_assert_int_eq(ringkv_get(c, "big", 3, NULL, &r), RINGKV_OK);
    ck_assert(r.siblings[0].value_len == big && memcmp(r.siblings[0].value, bv, big) == 0);
    ringkv_result_free(&r);
    free(bv);
    /* limits, with errors that say which */
    char *huge = calloc(1, 3 * 1024 * 1024);
    int rc = ringkv_put(c, "huge", 4, huge, 2 * 1024 * 1024 + 1, NULL, NULL);
    ck_assert_int_eq(rc, RINGKV_ETOOBIG);
    ck_assert_msg(strstr(ringkv_errmsg(c), "value_bytes_max") != NULL, "%s", ringkv_errmsg(c));
    free(huge);
    char longkey[2000];
    memset(longkey, 'k', sizeof longkey);
    rc = ringkv_put(c, longkey, sizeof longkey, "v", 1, NULL, NULL);
    ck_assert_int_eq(rc, RINGKV_ETOOBIG);
    ck_assert_msg(strstr(ringkv_errmsg(c), "key_bytes_max") != NULL, "%s", ringkv_errmsg(c));
    rc = ringkv_get(c, "k", 1, &(struct ringkv_request_options){.r = 4}, &r);
    ck_assert_int_eq(rc, RINGKV_EINVAL);
    ck_assert_msg(strstr(ringkv_errmsg(c), "r=4") != NULL, "%s", ringkv_errmsg(c));
    ringkv_result_free(&r);
    /* the connection is fine after refused requests */
    put_ok(c, "after", "ok", NULL);
    ringkv_close(c);
}
END_TEST

START_TEST(node_killed_and_restarted)
{
    struct ringkv_client *c = cluster_client(&cl);
    char k[32], v[32];
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "before-%d", i);
        put_ok(c, k, k, NULL);
    }
    cluster_node_signal(&cl, 2, SIGKILL); /* n3 */
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "during-%d", i);
        put_ok(c, k, k, &(struct ringkv_request_options){.w = 2});
        const char *want[] = {k};
        get_is(c, k, &(struct ringkv_request_options){.r = 2}, want, 1);
        snprintf(k, sizeof k, "before-%d", i);
        want[0] = k;
        get_is(c, k, &(struct ringkv_request_options){.r = 2}, want, 1);
    }
    struct ringkv_result r;
    int rc = ringkv_get(c, "before-1", 8, &(struct ringkv_request_options){.r = 3}, &r);
    ck_assert_int_eq(rc, RINGKV_EQUORUM);
    ck_assert_msg(strstr(ringkv_errmsg(c), "n3") != NULL, "R=3 error names n3: %s",
                  ringkv_errmsg(c));
    ringkv_result_free(&r);
    rc = ringkv_put(c, "w3", 2, "x", 1, &(struct ringkv_request_options){.w = 3}, NULL);
    ck_assert_int_eq(rc, RINGKV_EQUORUM);
    ck_assert_msg(strstr(ringkv_errmsg(c), "n3") != NULL, "W=3 error names n3: %s",
                  ringkv_errmsg(c));
    cluster_node_start(&cl, 2);
    cluster_wait_ready(&cl, 2, WAIT_MS);
    for (int i = 0; i < 30; i++) {
        const char *want[] = {k};
        snprintf(k, sizeof k, "before-%d", i);
        get_is(c, k, &(struct ringkv_request_options){.r = 3}, want, 1);
        snprintf(k, sizeof k, "during-%d", i);
        get_is(c, k, &(struct ringkv_request_options){.r = 3}, want, 1);
    }
    (void)v;
    ringkv_close(c);
}
END_TEST

/* The id of member `idx` of key's preference list. */
static const char *pref(struct ringkv_client *c, const char *key, size_t idx)
{
    const char *ids[8];
    size_t n = ringkv_preflist(c, ringkv_partition(c, key, strlen(key)), ids, 8);
    ck_assert_uint_gt(n, idx);
    return ids[idx];
}

START_TEST(concurrent_writes_become_siblings)
{
    struct ringkv_client *a = cluster_client(&cl), *b = cluster_client(&cl);
    /* through different coordinators */
    const char *k = "shared";
    put_ok(a, k, "from-a", &(struct ringkv_request_options){.coordinator = pref(a, k, 0)});
    put_ok(b, k, "from-b", &(struct ringkv_request_options){.coordinator = pref(b, k, 1)});
    const char *both[] = {"from-a", "from-b"};
    struct ringkv_request_options r3 = {.r = 3};
    get_is(a, k, &r3, both, 2);
    /* a put with the merged context resolves them */
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(a, k, strlen(k), &r3, &r), RINGKV_OK);
    struct ringkv_request_options wctx = {.context = r.context, .context_len = r.context_len};
    put_ok(a, k, "resolved", &wctx);
    ringkv_result_free(&r);
    const char *one[] = {"resolved"};
    get_is(b, k, &r3, one, 1);
    /* through the same coordinator: still two siblings (dotted versions) */
    const char *k2 = "same-coordinator";
    struct ringkv_request_options same = {.coordinator = pref(a, k2, 0)};
    put_ok(a, k2, "first", &same);
    put_ok(b, k2, "second", &same);
    const char *pair[] = {"first", "second"};
    get_is(a, k2, &r3, pair, 2);
    ringkv_close(a);
    ringkv_close(b);
}
END_TEST

/* Reads key at node id alone: R=1 coordinated there answers with its own
 * copy, which it reads in the same loop turn, before any peer can reply. */
static int local_read(struct ringkv_client *c, const char *id, const char *k,
                      struct ringkv_result *r)
{
    int rc =
        ringkv_get(c, k, strlen(k), &(struct ringkv_request_options){.r = 1, .coordinator = id}, r);
    if (rc == RINGKV_OK || rc == RINGKV_ENOTFOUND)
        ck_assert_msg(r->n_answered == 1 && strcmp(r->answered[0], id) == 0,
                      "a local read at %s was answered by %s", id,
                      r->n_answered ? r->answered[0] : "nobody");
    return rc;
}

struct holds {
    struct ringkv_client *c;
    const char *id, *key, *value;
};

static bool node_holds(void *arg)
{
    struct holds *h = arg;
    struct ringkv_result r;
    bool yes = local_read(h->c, h->id, h->key, &r) == RINGKV_OK && r.n_siblings == 1 &&
               r.siblings[0].value_len == strlen(h->value) &&
               memcmp(r.siblings[0].value, h->value, strlen(h->value)) == 0;
    ringkv_result_free(&r);
    return yes;
}

static bool node_lacks(void *arg)
{
    struct holds *h = arg;
    struct ringkv_result r;
    bool lacks = local_read(h->c, h->id, h->key, &r) == RINGKV_ENOTFOUND;
    ringkv_result_free(&r);
    return lacks;
}

struct past {
    uint64_t at; /* CLOCK_MONOTONIC ms */
};

static bool time_passed(void *arg)
{
    return rkv_clock_mono_ms() >= ((struct past *)arg)->at;
}

START_TEST(read_repair_after_sigstop)
{
    struct ringkv_client *c = cluster_client(&cl);
    cluster_node_signal(&cl, 2, SIGSTOP); /* n3 pauses */
    char v[32];
    for (int i = 0; i < 20; i++) { /* a run of writes, each replacing the last */
        snprintf(v, sizeof v, "v%d", i);
        put_over(c, "paused", v, &(struct ringkv_request_options){.coordinator = "n1", .w = 2});
    }
    cluster_node_signal(&cl, 2, SIGCONT);
    const char *want[] = {"v19"};
    get_is(c, "paused", &(struct ringkv_request_options){.r = 3}, want, 1);
    struct holds h = {.c = c, .id = "n3", .key = "paused", .value = "v19"};
    wait_for(node_holds, &h, WAIT_MS, "n3 to hold the latest version");
    ringkv_close(c);
}
END_TEST

START_TEST(read_repair_fixes_a_replica_that_missed_writes)
{
    struct ringkv_client *c = cluster_client(&cl);
    put_ok(c, "missed", "old", &(struct ringkv_request_options){.w = 3});
    cluster_node_signal(&cl, 2, SIGKILL); /* n3 misses the next write */
    put_over(c, "missed", "new", &(struct ringkv_request_options){.coordinator = "n1", .w = 2});
    cluster_node_start(&cl, 2);
    cluster_wait_ready(&cl, 2, WAIT_MS);
    /* n3 still has the old version: nothing has told it */
    struct ringkv_result r;
    ck_assert_int_eq(local_read(c, "n3", "missed", &r), RINGKV_OK);
    ck_assert(r.siblings[0].value_len == 3 && memcmp(r.siblings[0].value, "old", 3) == 0);
    ringkv_result_free(&r);
    /* that read was answered from n3 alone; the replies that came after it
     * still repaired n3 */
    struct holds h = {.c = c, .id = "n3", .key = "missed", .value = "new"};
    wait_for(node_holds, &h, WAIT_MS, "late replies to repair n3");
    ck_assert_uint_gt(cluster_stat(c, "n3", "read_repairs"), 0);
    /* and a get at R=3 says when it repairs */
    cluster_node_signal(&cl, 2, SIGKILL);
    put_over(c, "missed", "newer", &(struct ringkv_request_options){.coordinator = "n2", .w = 2});
    cluster_node_start(&cl, 2);
    cluster_wait_ready(&cl, 2, WAIT_MS);
    ck_assert_int_eq(ringkv_get(c, "missed", 6,
                                &(struct ringkv_request_options){.r = 3, .coordinator = "n1"}, &r),
                     RINGKV_OK);
    ck_assert(r.repaired);
    ck_assert_uint_eq(r.n_answered, 3);
    ringkv_result_free(&r);
    h.value = "newer";
    wait_for(node_holds, &h, WAIT_MS, "the R=3 read to repair n3");
    ringkv_close(c);
}
END_TEST

/* A clean stop keeps the node's data and its vector-clock actor; a crash
 * (SIGKILL) keeps the data but takes a new actor, since the replicas may
 * hold versions the crashed node never stored. */
START_TEST(restart_keeps_data_and_actor_after_clean_stop)
{
    struct ringkv_client *c = cluster_client(&cl);
    uint64_t actor = cluster_stat(c, "n1", "actor");
    ck_assert_uint_ne(actor, 0);
    put_ok(c, "durable", "yes", &(struct ringkv_request_options){.w = 3});
    struct holds h = {.c = c, .id = "n1", .key = "durable", .value = "yes"};
    cluster_node_signal(&cl, 0, SIGTERM);
    cluster_node_start(&cl, 0);
    cluster_wait_ready(&cl, 0, WAIT_MS);
    ck_assert_uint_eq(cluster_stat(c, "n1", "actor"), actor);
    ck_assert(node_holds(&h));
    cluster_node_signal(&cl, 0, SIGKILL);
    cluster_node_start(&cl, 0);
    cluster_wait_ready(&cl, 0, WAIT_MS);
    uint64_t fresh = cluster_stat(c, "n1", "actor");
    ck_assert_uint_ne(fresh, 0);
    ck_assert_uint_ne(fresh, actor);
    ck_assert(node_holds(&h));
    /* the new actor writes over the old versions with a context as usual */
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "durable", 7, &(struct ringkv_request_options){.r = 3}, &r),
                     RINGKV_OK);
    put_ok(c, "durable", "again",
           &(struct ringkv_request_options){
               .coordinator = "n1", .context = r.context, .context_len = r.context_len, .w = 3});
    ringkv_result_free(&r);
    const char *want[] = {"again"};
    get_is(c, "durable", &(struct ringkv_request_options){.r = 3}, want, 1);
    ringkv_close(c);
}
END_TEST

/* KV679: a node that lost its data and comes back with the same id must
 * not mint its old dots again, or its first new write would be taken for
 * one the other replicas have already seen, and dropped. The hardest case:
 * a clean stop (its ACTOR file says clean), then the store is lost and the
 * ACTOR file is not. It takes a new actor all the same (its store is
 * empty), and a blind write through it is kept, on every replica, through
 * read repair. */
START_TEST(wiped_node_takes_a_new_actor_and_loses_nothing)
{
    struct ringkv_client *c = cluster_client(&cl);
    const struct ringkv_request_options at_n3 = {.coordinator = "n3", .w = 3};
    put_ok(c, "kv679", "v1", &at_n3);
    for (int i = 2; i <= 5; i++) { /* dots (n3's actor, 1..5) on every replica */
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        put_over(c, "kv679", v, &at_n3);
    }
    uint64_t actor = cluster_stat(c, "n3", "actor");
    cluster_node_signal(&cl, 2, SIGTERM);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/data/n3/store", cl.dir);
    test_rmdir(dir);
    ck_assert_int_ne(access(dir, F_OK), 0);
    cluster_node_start(&cl, 2);
    cluster_wait_ready(&cl, 2, WAIT_MS);
    uint64_t fresh = cluster_stat(c, "n3", "actor");
    ck_assert_uint_ne(fresh, 0);
    ck_assert_uint_ne(fresh, actor);
    /* a blind write through the wiped node: with the old actor its dot
     * would be (actor, 1), which v5's past covers, and it would vanish */
    put_ok(c, "kv679", "after", &(struct ringkv_request_options){.coordinator = "n3", .w = 2});
    const char *want[] = {"v5", "after"};
    get_is(c, "kv679", &(struct ringkv_request_options){.r = 3}, want, 2);
    /* read repair gives every replica both */
    for (int i = 0; i < 3; i++)
        get_is(c, "kv679", &(struct ringkv_request_options){.r = 1, .coordinator = cl.id[i]}, want,
               2);
    ringkv_close(c);
}
END_TEST

/* A value whose ttl passed stays expired on every replica, even on one
 * that missed the write that set the ttl and still holds the older value:
 * the others keep the expired version (expiry_grace_ms) and repair it. */
START_TEST(expired_value_does_not_come_back)
{
    struct ringkv_client *c = cluster_client(&cl);
    put_ok(c, "ttl", "old", &(struct ringkv_request_options){.w = 3});
    cluster_node_signal(&cl, 2, SIGKILL); /* n3 misses the write with a ttl */
    struct ringkv_result r;
    struct ringkv_request_options r2 = {.r = 2, .coordinator = "n1"};
    ck_assert_int_eq(ringkv_get(c, "ttl", 3, &r2, &r), RINGKV_OK);
    uint64_t ttl_ms = 300;
    put_ok(c, "ttl", "short-lived",
           &(struct ringkv_request_options){.coordinator = "n1",
                                            .w = 2,
                                            .ttl_ms = ttl_ms,
                                            .context = r.context,
                                            .context_len = r.context_len});
    ringkv_result_free(&r);
    uint64_t written = rkv_clock_mono_ms();
    cluster_node_start(&cl, 2);
    cluster_wait_ready(&cl, 2, WAIT_MS);
    struct holds h = {.c = c, .id = "n3", .key = "ttl", .value = "old"};
    ck_assert(node_holds(&h)); /* n3 still has the old value */
    struct past p = {.at = written + ttl_ms + 50};
    wait_for(time_passed, &p, WAIT_MS, "the ttl to pass");
    get_is(c, "ttl", &(struct ringkv_request_options){.r = 3}, NULL, 0);
    /* and the read repaired n3: alone, it does not find the old value */
    wait_for(node_lacks, &h, WAIT_MS, "n3 to be repaired to the expired version");
    ringkv_close(c);
}
END_TEST

struct writer {
    int id;
    int ok;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    struct ringkv_client *c = cluster_client(&cl);
    char k[32], v[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "burst-%d", (w->id * 40 + i) % 100);
        snprintf(v, sizeof v, "w%d-%d", w->id, i);
        struct ringkv_result r;
        int rc = ringkv_get(c, k, strlen(k), NULL, &r);
        struct ringkv_request_options o = {.context = r.context, .context_len = r.context_len};
        if ((rc == RINGKV_OK || rc == RINGKV_ENOTFOUND) &&
            ringkv_put(c, k, strlen(k), v, strlen(v), &o, NULL) == RINGKV_OK)
            w->ok++;
        ringkv_result_free(&r);
    }
    ringkv_close(c);
    return NULL;
}

/* Many connections writing at once to a ring that has just started: the
 * coordinators' request tables grow while local updates are queued. */
START_TEST(concurrent_writes_on_a_fresh_ring)
{
    pthread_t t[16];
    struct writer w[16];
    for (int i = 0; i < 16; i++) {
        w[i] = (struct writer){.id = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].ok, 40);
    }
    struct ringkv_client *c = cluster_client(&cl);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(cluster_stat(c, cl.id[i], "replica_errors"), 0);
    ringkv_close(c);
}
END_TEST

/* Runs the ringkv command line; returns its exit status, output in out. */
static int run_cli(char *out, size_t cap, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s --config %s %s 2>&1", cluster_bin("ringkv"), cl.config, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- failure detection ---- */

struct suspicion {
    struct ringkv_client *c;
    const char *observer, *stat; /* e.g. "n1", "suspect.n3" */
    uint64_t want;
};

static bool suspicion_is(void *arg)
{
    struct suspicion *s = arg;
    return cluster_stat(s->c, s->observer, s->stat) == s->want;
}

struct put_job {
    struct ringkv_client *c;
    const char *key, *value;
    struct ringkv_request_options o;
    int rc;
    char errmsg[512];
};

static void *put_thread(void *arg)
{
    struct put_job *j = arg;
    j->rc = ringkv_put(j->c, j->key, strlen(j->key), j->value, strlen(j->value), &j->o, NULL);
    snprintf(j->errmsg, sizeof j->errmsg, "%s", ringkv_errmsg(j->c));
    return NULL;
}

/* A coordinator that took a put and then went quiet may still apply it:
 * the client must not send it to a second coordinator, which would mint a
 * second version of the same write (two equal siblings). It answers
 * RINGKV_ETIMEOUT instead. Here n1 coordinates at W=3 with n3 paused, so
 * it waits (for up to 5 s); once n2 holds n1's version, n1 pauses too. */
START_TEST(a_put_that_times_out_is_not_sent_twice)
{
    struct ringkv_client *c = cluster_client(&cl);
    char k[32];
    int i = 0;
    do /* a key the client sends to n1 first */
        snprintf(k, sizeof k, "once-%d", i++);
    while (strcmp(pref(c, k, 0), "n1") != 0);
    cluster_node_signal(&cl, 2, SIGSTOP);
    /* a long timeout: n1 must still be waiting for n3 when it is paused */
    struct put_job job = {
        .c = cluster_client(&cl), .key = k, .value = "once", .o = {.w = 3, .timeout_ms = 5000}};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, put_thread, &job), 0);
    struct holds h = {.c = c, .id = "n2", .key = k, .value = "once"};
    wait_for(node_holds, &h, WAIT_MS, "n2 to hold n1's version");
    cluster_node_signal(&cl, 0, SIGSTOP);
    ck_assert_int_eq(pthread_join(t, NULL), 0); /* the put ends by its own deadline */
    cluster_node_signal(&cl, 0, SIGCONT);
    cluster_node_signal(&cl, 2, SIGCONT);
    ck_assert_msg(job.rc == RINGKV_ETIMEOUT, "put: %s (%s)", ringkv_strerror(job.rc),
                  job.errmsg);
    ck_assert_msg(strstr(job.errmsg, "may have been applied"), "%s", job.errmsg);
    ringkv_close(job.c);
    /* one version, wherever it is read */
    const char *once[] = {"once"};
    get_is(c, k, &(struct ringkv_request_options){.r = 3, .timeout_ms = 5000}, once, 1);

    /* a read is safe to send again: a fresh client (which has not marked
     * n1 down) tries n1, gets no answer, and asks the next member */
    struct ringkv_client *fresh = cluster_client(&cl);
    struct ringkv_result r;
    cluster_node_signal(&cl, 0, SIGSTOP);
    int rc = ringkv_get(fresh, k, strlen(k), NULL, &r);
    cluster_node_signal(&cl, 0, SIGCONT);
    ck_assert_msg(rc == RINGKV_OK, "get: %s", ringkv_errmsg(fresh));
    ck_assert_str_ne(r.node, "n1");
    ringkv_result_free(&r);
    ringkv_close(fresh);
    ringkv_close(c);
}
END_TEST

/* Gossip heartbeats feed each node's phi-accrual detector: a node paused
 * with SIGSTOP is suspected by the others, and cleared on SIGCONT. */
START_TEST(paused_node_is_suspected_then_cleared)
{
    struct ringkv_client *c = cluster_client(&cl);
    const char *observers[] = {"n1", "n2"};
    for (int i = 0; i < 2; i++) { /* first every peer is heard */
        struct suspicion s = {c, observers[i], "peers_suspect", 0};
        wait_for(suspicion_is, &s, WAIT_MS, "every peer alive");
    }
    cluster_node_signal(&cl, 2, SIGSTOP);
    uint64_t t0 = rkv_clock_mono_ms();
    for (int i = 0; i < 2; i++) {
        struct suspicion s = {c, observers[i], "suspect.n3", 1};
        wait_for(suspicion_is, &s, 30000, "n3 suspected");
        fprintf(stderr, "failure detection: %s suspects n3 %llu ms after SIGSTOP\n",
                observers[i], (unsigned long long)(rkv_clock_mono_ms() - t0));
    }
    /* the others stay alive: n2 may miss a heartbeat or two while half the
     * rounds went to the paused node, so this too is a wait, not a snapshot */
    struct suspicion other = {c, "n1", "suspect.n2", 0};
    wait_for(suspicion_is, &other, WAIT_MS, "n2 alive at n1 while n3 is paused");
    cluster_node_signal(&cl, 2, SIGCONT);
    t0 = rkv_clock_mono_ms();
    for (int i = 0; i < 2; i++) {
        struct suspicion s = {c, observers[i], "suspect.n3", 0};
        wait_for(suspicion_is, &s, 30000, "n3 alive again");
        fprintf(stderr, "failure detection: %s clears n3 %llu ms after SIGCONT\n",
                observers[i], (unsigned long long)(rkv_clock_mono_ms() - t0));
    }
    ringkv_close(c);
}
END_TEST

/* ---- pipelining ---- */

#define PIPE_KEYS 600

struct pipe_state {
    int done, ok, timeouts;
    int status[PIPE_KEYS];
    struct ringkv_result res[PIPE_KEYS];
};

static void pipe_done(void *arg, struct ringkv_result *res)
{
    struct pipe_state *st = arg;
    st->done++;
    st->ok += res->status == RINGKV_OK;
    st->timeouts += res->status == RINGKV_ETIMEOUT;
    ringkv_result_free(res);
}

/* Keeps each result, for the test to read (the slot is the key's number). */
struct pipe_slot {
    struct pipe_state *st;
    int i;
};

static void pipe_keep(void *arg, struct ringkv_result *res)
{
    struct pipe_slot *s = arg;
    s->st->done++;
    s->st->status[s->i] = res->status;
    s->st->res[s->i] = *res; /* the result is ours: moved, freed later */
}

static void wait_all(struct ringkv_client *c, struct pipe_state *st, int want)
{
    uint64_t deadline = rkv_clock_mono_ms() + WAIT_MS;
    while (st->done < want) {
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "%d of %d completions", st->done, want);
        ck_assert_int_ge(ringkv_wait(c, 1000), 0);
    }
}

/* Hundreds of requests in flight on one client; completions by waiting
 * and through the descriptor of an external poll loop. */
START_TEST(pipelined_requests)
{
    struct ringkv_client *c = cluster_client(&cl);
    static struct pipe_state st;
    static struct pipe_slot slots[PIPE_KEYS];
    memset(&st, 0, sizeof st);
    char k[32], v[32];
    for (int i = 0; i < PIPE_KEYS; i++) {
        snprintf(k, sizeof k, "pipe%d", i);
        snprintf(v, sizeof v, "value%d", i);
        ck_assert_msg(ringkv_put_async(c, k, strlen(k), v, strlen(v), NULL, pipe_done, &st) ==
                          RINGKV_OK,
                      "%s", ringkv_errmsg(c));
    }
    ck_assert_int_gt(ringkv_pending(c), 0);
    ck_assert_int_ge(ringkv_next_timeout_ms(c), 0);
    /* a blocking call now would eat pipelined replies: refused */
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "pipe0", 5, NULL, &r), RINGKV_EINVAL);
    wait_all(c, &st, PIPE_KEYS);
    ck_assert_int_eq(st.ok, PIPE_KEYS);
    ck_assert_int_eq(ringkv_pending(c), 0);
    ck_assert_int_eq(ringkv_next_timeout_ms(c), -1);

    /* reads, driven by poll() on ringkv_fd as an event loop would */
    memset(&st, 0, sizeof st);
    int fd = ringkv_fd(c);
    ck_assert_int_ge(fd, 0);
    for (int i = 0; i < PIPE_KEYS; i++) {
        snprintf(k, sizeof k, "pipe%d", i);
        slots[i] = (struct pipe_slot){.st = &st, .i = i};
        ck_assert_int_eq(ringkv_get_async(c, k, strlen(k), &(struct ringkv_request_options){.r = 3},
                                          pipe_keep, &slots[i]),
                         RINGKV_OK);
    }
    uint64_t deadline = rkv_clock_mono_ms() + WAIT_MS;
    while (st.done < PIPE_KEYS) {
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "%d of %d reads", st.done, PIPE_KEYS);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int t = ringkv_next_timeout_ms(c);
        poll(&p, 1, t < 0 || t > 1000 ? 1000 : t);
        while (ringkv_process(c) > 0)
            ;
    }
    for (int i = 0; i < PIPE_KEYS; i++) {
        snprintf(v, sizeof v, "value%d", i);
        ck_assert_msg(st.status[i] == RINGKV_OK, "pipe%d: %s", i, ringkv_strerror(st.status[i]));
        ck_assert_uint_eq(st.res[i].n_siblings, 1);
        ck_assert_mem_eq(st.res[i].siblings[0].value, v, strlen(v));
    }
    /* deletes with the contexts read; without one, refused */
    ck_assert_int_eq(ringkv_del_async(c, "pipe0", 5, NULL, pipe_done, &st), RINGKV_EINVAL);
    struct pipe_state dels = {0};
    for (int i = 0; i < PIPE_KEYS; i += 2) {
        snprintf(k, sizeof k, "pipe%d", i);
        struct ringkv_request_options o = {.context = st.res[i].context,
                                           .context_len = st.res[i].context_len};
        ck_assert_int_eq(ringkv_del_async(c, k, strlen(k), &o, pipe_done, &dels), RINGKV_OK);
    }
    for (int i = 0; i < PIPE_KEYS; i++)
        ringkv_result_free(&st.res[i]);
    wait_all(c, &dels, PIPE_KEYS / 2);
    ck_assert_int_eq(dels.ok, PIPE_KEYS / 2);
    get_is(c, "pipe0", NULL, NULL, 0);
    const char *want[] = {"value1"};
    get_is(c, "pipe1", NULL, want, 1);

    /* a node that stops answering: its requests time out, by their deadline */
    cluster_node_signal(&cl, 0, SIGSTOP);
    memset(&st, 0, sizeof st);
    int sent = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(k, sizeof k, "pipe%d", i);
        if (ringkv_get_async(
                c, k, strlen(k),
                &(struct ringkv_request_options){.timeout_ms = 300, .coordinator = "n1"}, pipe_done,
                &st) == RINGKV_OK)
            sent++;
    }
    ck_assert_int_gt(sent, 0);
    wait_all(c, &st, sent);
    cluster_node_signal(&cl, 0, SIGCONT);
    ck_assert_int_eq(st.timeouts, sent);
    ringkv_close(c);
}
END_TEST

START_TEST(command_line_session)
{
    char out[65536];
    ck_assert_int_eq(run_cli(out, sizeof out, "put greeting hello"), 0);
    ck_assert_int_eq(run_cli(out, sizeof out, "get greeting"), 0);
    ck_assert_str_eq(out, "hello\n");
    ck_assert_int_eq(run_cli(out, sizeof out, "-v get greeting"), 0);
    ck_assert_ptr_nonnull(strstr(out, "status\tok\n"));
    ck_assert_ptr_nonnull(strstr(out, "siblings\t1\n"));
    char *ctx = strstr(out, "context\t");
    ck_assert_ptr_nonnull(ctx);
    char hex[4096];
    ck_assert_int_eq(sscanf(ctx, "context\t%4095s", hex), 1);
    char args[8192];
    snprintf(args, sizeof args, "-x %s put greeting bonjour", hex);
    ck_assert_int_eq(run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(run_cli(out, sizeof out, "-r 3 get greeting"), 0);
    ck_assert_str_eq(out, "bonjour\n");
    ck_assert_int_eq(run_cli(out, sizeof out, "del greeting"), 0);
    ck_assert_int_eq(run_cli(out, sizeof out, "get greeting"), 1);
    ck_assert_int_eq(run_cli(out, sizeof out, "-r 9 get greeting"), 2);
    ck_assert_int_eq(run_cli(out, sizeof out, "frobnicate"), 2);
    ck_assert_int_eq(run_cli(out, sizeof out, "ring"), 0);
    ck_assert_ptr_nonnull(strstr(out, "node\tn1\t"));
    ck_assert_ptr_nonnull(strstr(out, "partition\t63\t"));
    ck_assert_int_eq(run_cli(out, sizeof out, "ping"), 0);
    ck_assert_ptr_nonnull(strstr(out, "n3\tok"));
    /* plan: what a join or a leave would move, computed, nothing changed */
    ck_assert_int_eq(run_cli(out, sizeof out, "plan add n4/32"), 0);
    ck_assert_ptr_nonnull(strstr(out, "plan\tadd n4\tmembers 3 -> 4\n"));
    ck_assert_ptr_nonnull(strstr(out, "node\tn4\treplicas 0 -> "));
    ck_assert_ptr_nonnull(strstr(out, "+n4"));
    ck_assert_ptr_nonnull(strstr(out, "moves\t"));
    ck_assert_int_eq(run_cli(out, sizeof out, "plan remove n3"), 0);
    ck_assert_ptr_nonnull(strstr(out, "node\tn3\treplicas 64 -> 0\n"));
    ck_assert_int_eq(run_cli(out, sizeof out, "plan remove n9"), 2);
    ck_assert_int_eq(run_cli(out, sizeof out, "plan add n1"), 2);
    ck_assert_int_eq(run_cli(out, sizeof out, "ring"), 0);
    ck_assert_ptr_nonnull(strstr(out, "node\tn1\t")); /* the ring is as it was */
    ck_assert_ptr_null(strstr(out, "n4"));
    ck_assert_int_eq(run_cli(out, sizeof out, "stats n2"), 0);
    ck_assert_ptr_nonnull(strstr(out, "n2\tstore_keys\t"));
}
END_TEST

int main(void)
{
    Suite *su = suite_create("cluster");
    TCase *tc = tcase_create("three-nodes");
    tcase_add_checked_fixture(tc, start3, stop);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, concurrent_writes_on_a_fresh_ring);
    tcase_add_test(tc, crud_at_every_quorum);
    tcase_add_test(tc, values_keys_and_limits);
    tcase_add_test(tc, node_killed_and_restarted);
    tcase_add_test(tc, concurrent_writes_become_siblings);
    tcase_add_test(tc, read_repair_after_sigstop);
    tcase_add_test(tc, read_repair_fixes_a_replica_that_missed_writes);
    tcase_add_test(tc, restart_keeps_data_and_actor_after_clean_stop);
    tcase_add_test(tc, wiped_node_takes_a_new_actor_and_loses_nothing);
    tcase_add_test(tc, expired_value_does_not_come_back);
    tcase_add_test(tc, command_line_session);
    tcase_add_test(tc, pipelined_requests);
    tcase_add_test(tc, paused_node_is_suspected_then_cleared);
    tcase_add_test(tc, a_put_that_times_out_is_not_sent_twice);
    suite_add_tcase(su, tc);
    return test_run(su);
}
