/*
 * test_handoff.c: sloppy quorum and hinted handoff with real processes. A
 * ring of four (N = 3, so every key has a member outside its preference
 * list to fall back on): writes go on while one node is dead, the others
 * keep its share as hints, and when it comes back the hints drain to it
 * with no client reads; a full hint store is an error the client sees.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ringkv.h"
#include "common/clock.h"
#include "ring/ring.h"
#include "tests/support/cluster.h"
#include "tests/support/testutil.h"

#define WAIT_MS 15000
#define NODES 4
#define DOWN 3 /* n4 */
#define KEYS_W2 1200
#define KEYS_W3 100
#define KEYS (KEYS_W2 + KEYS_W3)

static struct cluster cl;

static void start4(void)
{
    cluster_start_opts(&cl, &(struct cluster_opts){.n = NODES, .plain = true});
}

static void stop(void)
{
    cluster_stop(&cl);
}

/* The ring the test cluster runs (tests/support/cluster.c: Q 64, V 32). */
static struct ring *test_ring(void)
{
    struct ring_member m[NODES] = {{"n1", 32}, {"n2", 32}, {"n3", 32}, {"n4", 32}};
    struct ring *r;
    struct rkv_error err;
    ck_assert_int_eq(ring_new(m, NODES, 64, 3, &r, &err), RKV_OK);
    return r;
}

static bool owned_by(const struct ring *r, const char *key, const char *id)
{
    uint32_t p = ring_partition(r, ring_hash_key(key, strlen(key)));
    return ring_in_preflist(r, p, (uint32_t)ring_member_index(r, id));
}

static uint64_t pending_for(struct ringkv_client *c, const char *id)
{
    uint64_t sum = 0;
    for (int i = 0; i < NODES; i++)
        if (strcmp(cl.id[i], id) != 0)
            sum += cluster_stat(c, cl.id[i], "hints_pending.n4");
    return sum;
}

/* Each holder's handoff, as seen by polling: when its first hint was
 * delivered and when it had none left (so its rate is a lower bound). */
struct drain {
    struct ringkv_client *c;
    uint64_t first_ms[NODES], done_ms[NODES], count[NODES];
};

static uint64_t delivered_total(struct ringkv_client *c)
{
    uint64_t sum = 0;
    for (int i = 0; i < NODES; i++)
        if (i != DOWN)
            sum += cluster_stat(c, cl.id[i], "hints_delivered");
    return sum;
}

static bool drained(void *arg)
{
    struct drain *d = arg;
    bool all = true;
    for (int i = 0; i < NODES; i++) {
        if (i == DOWN || d->done_ms[i])
            continue;
        uint64_t now = rkv_clock_mono_ms();
        if (d->first_ms[i] == 0 && cluster_stat(d->c, cl.id[i], "hints_delivered") > 0)
            d->first_ms[i] = now;
        if (cluster_stat(d->c, cl.id[i], "hints_pending.n4") == 0) {
            d->done_ms[i] = now;
            d->count[i] = cluster_stat(d->c, cl.id[i], "hints_delivered");
        } else {
            all = false;
        }
    }
    return all;
}

/* n4 is killed; 300 writes at W=2 and 100 at W=3 all succeed, those of n4's
 * keys through a fallback named in the reply (W=3 cannot do without it).
 * n4 restarts: the hints drain to zero and n4 holds every one of its keys,
 * checked by reading only n4 while the others are paused (R=1, no read
 * repair can have put them there). */
static bool n4_alive_everywhere(void *arg)
{
    struct ringkv_client *c = arg;
    for (int i = 0; i < NODES; i++)
        if (i != DOWN && cluster_stat(c, cl.id[i], "suspect.n4") != 0)
            return false;
    return true;
}

START_TEST(killed_node_gets_its_writes_through_hints)
{
    struct ringkv_client *c = cluster_client(&cl);
    struct ring *ring = test_ring();
    /* n4 is known alive first, so its death is noticed by failed sends
     * before the detector suspects it */
    wait_for(n4_alive_everywhere, c, WAIT_MS, "n4 heard by every node");
    cluster_node_signal(&cl, DOWN, SIGKILL);
    char key[32], val[32];
    int owned = 0, sloppy = 0;
    uint64_t t0 = rkv_clock_mono_ms();
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "hint-%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        struct ringkv_request_options o = {.w = i < KEYS_W2 ? 2 : 3, .timeout_ms = 3000};
        struct ringkv_result res;
        int rc = ringkv_put(c, key, strlen(key), val, strlen(val), &o, &res);
        ck_assert_msg(rc == RINGKV_OK, "put %s (w=%u) with n4 dead: %s", key, o.w,
                      ringkv_errmsg(c));
        bool mine = owned_by(ring, key, "n4");
        owned += mine;
        if (i >= KEYS_W2) { /* W=3: n4's keys need their fallback's answer */
            ck_assert_uint_eq(res.n_fallbacks, mine ? 1 : 0);
            if (mine) {
                ck_assert_str_eq(res.fallback_for[0], "n4");
                ck_assert(!owned_by(ring, key, res.fallbacks[0]));
            }
        }
        sloppy += res.n_fallbacks > 0;
        ringkv_result_free(&res);
    }
    uint64_t write_ms = rkv_clock_mono_ms() - t0;
    ck_assert_int_gt(owned, 0);
    /* one hint per key n4 owns, held by the one member outside its list */
    uint64_t pending = pending_for(c, "n4");
    ck_assert_uint_eq(pending, (uint64_t)owned);
    /* PW: with an owner dead, W=3 of primaries cannot be met, but the write
     * still reaches the fallback as a hint */
    for (int i = 0;; i++) {
        snprintf(key, sizeof key, "pw-%d", i);
        if (!owned_by(ring, key, "n4"))
            continue;
        struct ringkv_request_options o = {.w = 3, .primary_only = true, .timeout_ms = 3000};
        int rc = ringkv_put(c, key, strlen(key), "pw", 2, &o, NULL);
        ck_assert_msg(rc == RINGKV_EQUORUM, "PW=3 put with n4 dead: %s", ringkv_strerror(rc));
        ck_assert_msg(strstr(ringkv_errmsg(c), "primary"), "%s", ringkv_errmsg(c));
        ck_assert_uint_eq(pending_for(c, "n4"), (uint64_t)owned + 1);
        break;
    }
    fprintf(stderr, "handoff: %d writes (%d owned by n4, %d acknowledged with a fallback) in "
            "%llu ms with n4 dead; %llu hints pending\n",
            KEYS, owned, sloppy, (unsigned long long)write_ms, (unsigned long long)pending);

    cluster_node_start(&cl, DOWN);
    cluster_wait_ready(&cl, DOWN, WAIT_MS);
    t0 = rkv_clock_mono_ms();
    static struct drain d;
    memset(&d, 0, sizeof d);
    d.c = c;
    wait_for(drained, &d, 60000, "hints for n4 handed over");
    uint64_t drain_ms = rkv_clock_mono_ms() - t0;
    uint64_t delivered = delivered_total(c);
    ck_assert_uint_ge(delivered, (uint64_t)owned + 1);
    fprintf(stderr, "handoff: %llu hints drained %llu ms after n4 answered\n",
            (unsigned long long)delivered, (unsigned long long)drain_ms);
    for (int i = 0; i < NODES; i++) {
        if (i == DOWN || d.first_ms[i] == 0)
            continue;
        /* the node's own timing: first batch sent to last hint acknowledged */
        uint64_t ms = cluster_stat(c, cl.id[i], "hints_last_drain_ms");
        uint64_t count = cluster_stat(c, cl.id[i], "hints_last_drain_hints");
        fprintf(stderr, "handoff: %s: first delivery seen %llu ms after n4 answered; handed "
                "over %llu hints in %llu ms (%.0f hints/s); %llu sent, %llu failed\n", cl.id[i],
                (unsigned long long)(d.first_ms[i] - t0), (unsigned long long)count,
                (unsigned long long)ms, ms ? 1000.0 * (double)count / (double)ms : 0.0,
                (unsigned long long)cluster_stat(c, cl.id[i], "hints_sent"),
                (unsigned long long)cluster_stat(c, cl.id[i], "hints_failed"));
    }

    /* n4 alone answers for its keys: they are all there */
    for (int i = 0; i < NODES - 1; i++)
        cluster_node_signal(&cl, i, SIGSTOP);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "hint-%d", i);
        if (!owned_by(ring, key, "n4"))
            continue;
        snprintf(val, sizeof val, "value-%d", i);
        struct ringkv_request_options o = {.r = 1, .coordinator = "n4", .timeout_ms = 3000};
        struct ringkv_result res;
        int rc = ringkv_get(c, key, strlen(key), &o, &res);
        ck_assert_msg(rc == RINGKV_OK, "n4 lacks %s: %s", key, ringkv_errmsg(c));
        ck_assert_uint_eq(res.n_siblings, 1);
        ck_assert_uint_eq(res.n_answered, 1);
        ck_assert_str_eq(res.answered[0], "n4");
        ck_assert(res.siblings[0].value_len == strlen(val) &&
                  memcmp(res.siblings[0].value, val, strlen(val)) == 0);
        ringkv_result_free(&res);
    }
    for (int i = 0; i < NODES - 1; i++)
        cluster_node_signal(&cl, i, SIGCONT);
    ring_free(ring);
    ringkv_close(c);
}
END_TEST

/* A hint store at its bound refuses more: a W=3 write that needs the
 * fallback fails with a message that says why; nothing is dropped quietly. */
START_TEST(full_hint_store_is_an_error)
{
    struct ringkv_client *c = cluster_client(&cl);
    struct ring *ring = test_ring();
    cluster_node_signal(&cl, DOWN, SIGKILL);
    static char big[200 * 1024];
    memset(big, 'h', sizeof big);
    char key[32];
    int refused = 0, stored = 0;
    for (int i = 0; i < 200 && refused == 0; i++) {
        snprintf(key, sizeof key, "full-%d", i);
        if (!owned_by(ring, key, "n4"))
            continue;
        struct ringkv_request_options o = {.w = 3, .timeout_ms = 3000};
        int rc = ringkv_put(c, key, strlen(key), big, sizeof big, &o, NULL);
        if (rc == RINGKV_OK) {
            stored++;
            continue;
        }
        ck_assert_msg(rc == RINGKV_EQUORUM, "put: %s", ringkv_errmsg(c));
        ck_assert_msg(strstr(ringkv_errmsg(c), "hint store is full"), "%s", ringkv_errmsg(c));
        refused++;
    }
    ck_assert_int_eq(refused, 1);
    ck_assert_int_gt(stored, 0);
    uint64_t full = 0;
    for (int i = 0; i < NODES - 1; i++)
        full += cluster_stat(c, cl.id[i], "hints_refused_full");
    ck_assert_uint_ge(full, 1);
    fprintf(stderr, "handoff: hint store full after %d hints of %zu bytes\n", stored, sizeof big);
    ring_free(ring);
    ringkv_close(c);
}
END_TEST

static void start4_small_hints(void)
{
    cluster_start_opts(&cl, &(struct cluster_opts){
        .n = NODES, .plain = true, .extra_tables = "[hints]\nbytes_max = 1048576\n"});
}

int main(void)
{
    Suite *su = suite_create("handoff");
    TCase *tc = tcase_create("hints");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, start4, stop);
    tcase_add_test(tc, killed_node_gets_its_writes_through_hints);
    suite_add_tcase(su, tc);
    TCase *small = tcase_create("small");
    tcase_set_timeout(small, 120);
    tcase_add_checked_fixture(small, start4_small_hints, stop);
    tcase_add_test(small, full_hint_store_is_an_error);
    suite_add_tcase(su, small);
    return test_run(su);
}
