/*
 * test_gossip.c: membership by gossip with no sockets and no sleeping. A
 * simulator runs N nodes in memory: every round each running node ticks at
 * the simulated time, then every queued message is delivered (answers
 * included) before the clock moves on by one interval. A silent node
 * neither ticks nor receives. Hand-built messages test the merge rule,
 * refutation and the decoder against hostile input. Every run is a
 * function of its seed.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/limits.h"
#include "gossip/gossip.h"
#include "tests/support/testutil.h"

#define SIM_MAX 300
#define T0 1700000000000ull
#define INTERVAL_MS 1000u
#define CLUSTER "test-ring"

/* ---- the simulator ---- */

struct qmsg {
    size_t to;
    struct rkv_buf bytes;
};

struct sim {
    size_t n;
    uint64_t seed;
    uint64_t now;
    struct gossip *g[SIM_MAX];
    bool silent[SIM_MAX];
    struct qmsg *q;
    size_t nq, capq;
    uint64_t delivered;
};

static void node_id(char *out, size_t cap, size_t i)
{
    snprintf(out, cap, "n%zu", i);
}

static size_t id_index(const char *id)
{
    ck_assert(id[0] == 'n');
    return (size_t)strtoul(id + 1, NULL, 10);
}

static struct gossip *node_new(size_t i, uint64_t seed, uint64_t incarnation,
                               enum gossip_status status)
{
    static const char *const seeds[] = {"n0", "n1"};
    struct gossip_options o = {
        .cluster = CLUSTER,
        .self = {.client_port = (uint16_t)(7000 + i),
                 .cluster_port = (uint16_t)(9000 + i),
                 .vnodes = 16,
                 .incarnation = incarnation,
                 .status = status},
        .seeds = seeds,
        .n_seeds = 2,
        .rng_seed = seed * 1000003u + i,
        .interval_ms = INTERVAL_MS,
    };
    node_id(o.self.id, sizeof o.self.id, i);
    snprintf(o.self.host, sizeof o.self.host, "10.0.%zu.%zu", i / 256, i % 256);
    struct gossip *g = NULL;
    struct rkv_error err = {0};
    ck_assert_msg(gossip_new(&o, &g, &err) == RKV_OK, "%s", err.msg);
    return g;
}

static struct sim *sim_new(size_t n, uint64_t seed)
{
    ck_assert_uint_le(n, SIM_MAX);
    struct sim *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->n = n;
    s->seed = seed;
    s->now = T0;
    for (size_t i = 0; i < n; i++)
        s->g[i] = node_new(i, seed, 1, GOSSIP_UP);
    return s;
}

static void sim_free(struct sim *s)
{
    for (size_t i = 0; i < s->n; i++)
        gossip_free(s->g[i]);
    for (size_t i = 0; i < s->nq; i++)
        rkv_buf_free(&s->q[i].bytes);
    free(s->q);
    free(s);
}

/* Moves node i's outbox to the queue. */
static void sim_collect(struct sim *s, size_t i)
{
    size_t n;
    struct gossip_out *out = gossip_outbox(s->g[i], &n);
    for (size_t k = 0; k < n; k++) {
        if (s->nq == s->capq) {
            s->capq = s->capq ? 2 * s->capq : 256;
            s->q = realloc(s->q, s->capq * sizeof *s->q);
            ck_assert_ptr_nonnull(s->q);
        }
        s->q[s->nq].to = id_index(out[k].to);
        s->q[s->nq].bytes = out[k].msg;
        out[k].msg = (struct rkv_buf){0}; /* moved */
        s->nq++;
    }
    gossip_outbox_clear(s->g[i]);
}

/* Delivers everything queued, and the answers, until nothing is left. */
static void sim_deliver(struct sim *s)
{
    for (size_t k = 0; k < s->nq; k++) {
        size_t to = s->q[k].to;
        if (to < s->n && s->g[to] != NULL && !s->silent[to]) {
            int rc = gossip_on_message(s->g[to], s->now, s->q[k].bytes.data, s->q[k].bytes.len);
            ck_assert_msg(rc == RKV_OK, "node %zu: %s", to, gossip_errmsg(s->g[to]));
            s->delivered++;
            sim_collect(s, to);
        }
        rkv_buf_free(&s->q[k].bytes);
    }
    s->nq = 0;
}

static void sim_round(struct sim *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->g[i] == NULL || s->silent[i])
            continue;
        gossip_tick(s->g[i], s->now);
        sim_collect(s, i);
    }
    sim_deliver(s);
    for (size_t i = 0; i < s->n; i++)
        if (s->g[i] != NULL)
            ck_assert(gossip_invariants_ok(s->g[i]));
    s->now += INTERVAL_MS;
}

/* Every running node holds every running node's current (incarnation,
 * version, status). */
static bool sim_converged(const struct sim *s)
{
    for (size_t j = 0; j < s->n; j++) {
        if (s->g[j] == NULL || s->silent[j])
            continue;
        const struct gossip_node *own = gossip_self(s->g[j]);
        for (size_t i = 0; i < s->n; i++) {
            if (s->g[i] == NULL || s->silent[i])
                continue;
            const struct gossip_node *seen = gossip_find(s->g[i], own->id);
            if (seen == NULL || seen->incarnation != own->incarnation ||
                seen->version != own->version || seen->status != own->status)
                return false;
        }
    }
    return true;
}

/* Rounds until converged (fails past max). */
static int sim_converge(struct sim *s, int max)
{
    for (int r = 1; r <= max; r++) {
        sim_round(s);
        if (sim_converged(s))
            return r;
    }
    ck_abort_msg("seed %llu: no convergence in %d rounds", (unsigned long long)s->seed, max);
    return -1;
}

/* ---- hand-built messages ---- */

static struct gossip_node state_of(const char *id, uint64_t inc, uint64_t ver, uint64_t hb,
                                   enum gossip_status st)
{
    struct gossip_node n = {.client_port = 7000, .cluster_port = 9000, .vnodes = 8,
                            .incarnation = inc, .version = ver, .heartbeat = hb,
                            .status = st};
    snprintf(n.id, sizeof n.id, "%s", id);
    snprintf(n.host, sizeof n.host, "host-%s", id);
    return n;
}

static void write_state(struct mp_writer *w, const struct gossip_node *n)
{
    mp_write_array(w, 11);
    mp_write_cstr(w, n->id);
    mp_write_cstr(w, n->host);
    mp_write_uint(w, n->client_port);
    mp_write_uint(w, n->cluster_port);
    mp_write_uint(w, n->vnodes);
    mp_write_uint(w, n->incarnation);
    mp_write_uint(w, n->version);
    mp_write_uint(w, n->heartbeat);
    mp_write_uint(w, n->status);
    mp_write_uint(w, n->ring_epoch);
    mp_write_uint(w, n->handoff);
}

/* An ACK2 from `from` carrying n states. */
static void ack2(struct rkv_buf *b, const char *cluster, const char *from,
                 const struct gossip_node *states, size_t n)
{
    b->len = 0;
    struct mp_writer w;
    mp_writer_init(&w, b);
    mp_write_array(&w, 5);
    mp_write_uint(&w, GOSSIP_WIRE_VERSION);
    mp_write_uint(&w, GOSSIP_ACK2);
    mp_write_cstr(&w, cluster);
    mp_write_cstr(&w, from);
    mp_write_array(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        write_state(&w, &states[i]);
    ck_assert(!w.failed);
}

static int feed(struct gossip *g, uint64_t now, const struct rkv_buf *b)
{
    return gossip_on_message(g, now, b->data, b->len);
}

static int feed_state(struct gossip *g, uint64_t now, struct gossip_node st)
{
    struct rkv_buf b = {0};
    ack2(&b, CLUSTER, "n9", &st, 1);
    int rc = feed(g, now, &b);
    rkv_buf_free(&b);
    return rc;
}

/* ---- (1) convergence ---- */

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Boots n nodes from the seeds, then a new node joins: rounds until every
 * node holds its state (and everyone else's). */
static int join_rounds(size_t n, uint64_t seed, int *boot)
{
    struct sim *s = sim_new(n + 1, seed);
    s->silent[n] = true; /* not started yet */
    int bound = (int)(4 * log2((double)n) + 10);
    *boot = sim_converge(s, 10 * bound);
    s->silent[n] = false;
    gossip_free(s->g[n]);
    s->g[n] = node_new(n, seed, 1, GOSSIP_JOINING);
    int r = sim_converge(s, 10 * bound);
    sim_free(s);
    return r;
}

START_TEST(join_converges)
{
    static const size_t sizes[] = {8, 64, 256};
    enum { SEEDS = 5 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int rounds[SEEDS], boots[SEEDS];
        int bound = (int)(4 * log2((double)n) + 10);
        for (int sd = 0; sd < SEEDS; sd++) {
            rounds[sd] = join_rounds(n, 100 + (uint64_t)sd, &boots[sd]);
            ck_assert_msg(rounds[sd] <= bound, "n=%zu seed %d: %d rounds > %d", n, 100 + sd,
                          rounds[sd], bound);
        }
        qsort(rounds, SEEDS, sizeof rounds[0], cmp_int);
        qsort(boots, SEEDS, sizeof boots[0], cmp_int);
        printf("gossip: %3zu nodes: join converges in %d rounds (median of %d seeds, "
               "range %d..%d, bound %d); cold start from seeds %d rounds\n",
               n, rounds[SEEDS / 2], SEEDS, rounds[0], rounds[SEEDS - 1], bound,
               boots[SEEDS / 2]);
    }
}
END_TEST

/* ---- (2) failure detection ---- */

START_TEST(silent_node_suspected_then_cleared)
{
    struct sim *s = sim_new(8, 7);
    sim_converge(s, 50);
    for (int r = 0; r < 30; r++)
        sim_round(s);
    size_t members = gossip_member_count(s->g[0]);
    for (size_t i = 0; i < 8; i++)
        if (i != 3)
            ck_assert(gossip_alive(s->g[i], "n3", s->now));
    s->silent[3] = true;
    uint64_t stopped = s->now;
    uint64_t suspected = 0;
    for (int r = 0; r < 30 && suspected == 0; r++) {
        /* probe between rounds at 100 ms steps */
        for (uint64_t t = s->now; t < s->now + INTERVAL_MS && suspected == 0; t += 100)
            if (!gossip_alive(s->g[0], "n3", t))
                suspected = t;
        sim_round(s);
    }
    ck_assert_uint_ne(suspected, 0);
    uint64_t after = suspected - stopped;
    printf("gossip: silent node suspected by n0 %llu ms after it stopped (phi %.1f; "
           "threshold %.0f, interval %u ms)\n",
           (unsigned long long)after, gossip_phi(s->g[0], "n3", suspected),
           GOSSIP_PHI_THRESHOLD_DEFAULT, INTERVAL_MS);
    /* not before the heartbeats could have been missed, and within the
     * detector's bound: mean + 5.3 sd after the last arrival, which lags
     * the stop by the gossip spread (a few rounds) */
    ck_assert_uint_ge(after, 2 * INTERVAL_MS);
    ck_assert_uint_le(after, 10 * INTERVAL_MS);
    for (int r = 0; r < 5; r++)
        sim_round(s);
    for (size_t i = 0; i < 8; i++)
        if (i != 3) {
            ck_assert(!gossip_alive(s->g[i], "n3", s->now));
            ck_assert(gossip_phi(s->g[i], "n3", s->now) >= GOSSIP_PHI_THRESHOLD_DEFAULT);
            /* suspicion never changes the member table */
            ck_assert_uint_eq(gossip_member_count(s->g[i]), members);
            ck_assert_int_eq(gossip_find(s->g[i], "n3")->status, GOSSIP_UP);
        }
    s->silent[3] = false;
    int cleared = 0;
    for (int r = 1; r <= 10 && cleared == 0; r++) {
        sim_round(s);
        bool all = true;
        for (size_t i = 0; i < 8; i++)
            all &= gossip_alive(s->g[i], "n3", s->now);
        cleared = all ? r : 0;
    }
    ck_assert_int_gt(cleared, 0);
    printf("gossip: n3 heard again: alive everywhere after %d rounds\n", cleared);
    sim_free(s);
}
END_TEST

START_TEST(phi_grows_with_silence)
{
    struct gossip *g = node_new(0, 1, 1, GOSSIP_UP);
    uint64_t t = T0;
    for (uint64_t hb = 1; hb <= 50; hb++, t += INTERVAL_MS)
        ck_assert_int_eq(feed_state(g, t, state_of("n5", 1, 1, hb, GOSSIP_UP)), RKV_OK);
    uint64_t last = t - INTERVAL_MS;
    double prev = -1;
    for (uint64_t dt = 0; dt <= 10000; dt += 250) {
        double phi = gossip_phi(g, "n5", last + dt);
        ck_assert(phi >= prev);
        prev = phi;
    }
    ck_assert(gossip_alive(g, "n5", last + 1000));
    ck_assert(gossip_alive(g, "n5", last + 3000));
    ck_assert(!gossip_alive(g, "n5", last + 4000));
    ck_assert(isinf(gossip_phi(g, "nobody", t)));
    ck_assert(!gossip_alive(g, "nobody", t));
    ck_assert(gossip_phi(g, "n0", t) == 0);
    gossip_free(g);
}
END_TEST

/* ---- (3) and (7): the merge rule ---- */

START_TEST(stale_rumour_never_wins)
{
    struct gossip *g = node_new(0, 1, 1, GOSSIP_UP);
    ck_assert_int_eq(feed_state(g, T0, state_of("n5", 5, 3, 10, GOSSIP_UP)), RKV_OK);
    /* older version, older incarnation, older heartbeat: all ignored */
    feed_state(g, T0 + 1, state_of("n5", 5, 2, 99, GOSSIP_LEAVING));
    feed_state(g, T0 + 2, state_of("n5", 4, 9, 99, GOSSIP_REMOVED));
    feed_state(g, T0 + 3, state_of("n5", 5, 3, 9, GOSSIP_LEAVING));
    const struct gossip_node *n5 = gossip_find(g, "n5");
    ck_assert_uint_eq(n5->incarnation, 5);
    ck_assert_uint_eq(n5->version, 3);
    ck_assert_uint_eq(n5->heartbeat, 10);
    ck_assert_int_eq(n5->status, GOSSIP_UP);
    struct gossip_stats st;
    gossip_stats(g, &st);
    ck_assert_uint_eq(st.states_stale, 3);
    /* newer ones win: version, then incarnation over a higher version */
    feed_state(g, T0 + 4, state_of("n5", 5, 4, 11, GOSSIP_LEAVING));
    ck_assert_int_eq(gossip_find(g, "n5")->status, GOSSIP_LEAVING);
    feed_state(g, T0 + 5, state_of("n5", 6, 1, 0, GOSSIP_JOINING));
    n5 = gossip_find(g, "n5");
    ck_assert_uint_eq(n5->incarnation, 6);
    ck_assert_uint_eq(n5->version, 1);
    ck_assert_int_eq(n5->status, GOSSIP_JOINING);
    ck_assert_uint_eq(gossip_member_count(g), 2);
    gossip_free(g);
}
END_TEST

/* In a running ring, an old state replayed from a node that stayed behind
 * is overridden, never spread. */
START_TEST(stale_state_does_not_spread)
{
    struct sim *s = sim_new(16, 11);
    sim_converge(s, 60);
    ck_assert_int_eq(gossip_set_status(s->g[4], GOSSIP_LEAVING), RKV_OK);
    uint64_t v = gossip_self(s->g[4])->version;
    sim_converge(s, 60);
    /* replay n4's older UP state into three nodes */
    for (size_t i = 5; i < 8; i++)
        feed_state(s->g[i], s->now, state_of("n4", 1, v - 1, 1u << 20, GOSSIP_UP));
    for (int r = 0; r < 20; r++)
        sim_round(s);
    for (size_t i = 0; i < 16; i++) {
        const struct gossip_node *n4 = gossip_find(s->g[i], "n4");
        ck_assert_int_eq(n4->status, GOSSIP_LEAVING);
        ck_assert_uint_eq(n4->version, v);
    }
    sim_free(s);
}
END_TEST

/* ---- (4) restart ---- */

START_TEST(restart_is_same_member_new_state_wins)
{
    struct sim *s = sim_new(8, 21);
    sim_converge(s, 50);
    gossip_set_status(s->g[3], GOSSIP_LEAVING);
    gossip_set_status(s->g[3], GOSSIP_UP);
    sim_converge(s, 50);
    ck_assert_uint_eq(gossip_find(s->g[0], "n3")->version, 3);
    /* restart: new incarnation, version back to 1, heartbeat 0, joining */
    gossip_free(s->g[3]);
    s->g[3] = node_new(3, 99, 2, GOSSIP_JOINING);
    int r = sim_converge(s, 50);
    for (size_t i = 0; i < 8; i++) {
        ck_assert_uint_eq(gossip_member_count(s->g[i]), 8);
        const struct gossip_node *n3 = gossip_find(s->g[i], "n3");
        ck_assert_uint_eq(n3->incarnation, 2);
        ck_assert_uint_eq(n3->version, 1);
        ck_assert_int_eq(n3->status, GOSSIP_JOINING);
        ck_assert(gossip_alive(s->g[i], "n3", s->now));
    }
    /* and the restarted node learned the ring back */
    ck_assert_uint_eq(gossip_member_count(s->g[3]), 8);
    printf("gossip: restarted node's new incarnation everywhere after %d rounds\n", r);
    sim_free(s);
}
END_TEST

/* ---- (5) refutation ---- */

START_TEST(false_rumour_is_refuted)
{
    struct sim *s = sim_new(8, 31);
    sim_converge(s, 50);
    const struct gossip_node *own = gossip_self(s->g[5]);
    uint64_t v = own->version;
    /* n0 hears that n5 is leaving, at a higher version than n5's own */
    struct gossip_node lie = *own;
    lie.version = v + 5;
    lie.status = GOSSIP_LEAVING;
    ck_assert_int_eq(feed_state(s->g[0], s->now, lie), RKV_OK);
    ck_assert_int_eq(gossip_find(s->g[0], "n5")->status, GOSSIP_LEAVING);
    sim_converge(s, 50);
    own = gossip_self(s->g[5]);
    ck_assert_int_eq(own->status, GOSSIP_UP);
    ck_assert_uint_gt(own->version, v + 5);
    for (size_t i = 0; i < 8; i++)
        ck_assert_int_eq(gossip_find(s->g[i], "n5")->status, GOSSIP_UP);
    struct gossip_stats st;
    gossip_stats(s->g[5], &st);
    ck_assert_uint_ge(st.refutations, 1);
    /* a rumour of a higher incarnation is refuted too */
    lie = *gossip_self(s->g[6]);
    lie.incarnation += 3;
    lie.status = GOSSIP_LEAVING;
    feed_state(s->g[1], s->now, lie);
    sim_converge(s, 50);
    ck_assert_int_eq(gossip_self(s->g[6])->status, GOSSIP_UP);
    ck_assert_uint_eq(gossip_self(s->g[6])->incarnation, lie.incarnation);
    ck_assert_int_eq(gossip_find(s->g[0], "n6")->status, GOSSIP_UP);
    sim_free(s);
}
END_TEST

/* Found by fuzz_gossip (docs/fuzzing.md, finding 7): a rumour of self with
 * version RKV_COUNTER_MAX - 1 (the largest a reader accepts) was refuted
 * with version RKV_COUNTER_MAX, which every peer refuses, so every message
 * of the node was refused from then on; a heartbeat taken there went over
 * at the next tick. */
START_TEST(rumour_at_counter_limit)
{
    struct gossip *g = node_new(2, 1, 10, GOSSIP_UP);
    struct gossip *peer = node_new(3, 1, 10, GOSSIP_UP);
    /* versions used up: the next incarnation, version 1 */
    struct gossip_node lie = state_of("n2", 10, RKV_COUNTER_MAX - 1, 3, GOSSIP_LEAVING);
    ck_assert_int_eq(feed_state(g, T0, lie), RKV_OK);
    ck_assert(gossip_invariants_ok(g));
    const struct gossip_node *me = gossip_self(g);
    ck_assert_uint_eq(me->incarnation, 11);
    ck_assert_uint_eq(me->version, 1);
    ck_assert_int_eq(me->status, GOSSIP_UP);
    /* the heartbeat stays below the limit through ticks */
    lie = state_of("n2", 11, 5, RKV_COUNTER_MAX - 1, GOSSIP_LEAVING);
    ck_assert_int_eq(feed_state(g, T0, lie), RKV_OK);
    ck_assert_uint_eq(me->version, 6);
    gossip_tick(g, T0 + INTERVAL_MS);
    gossip_tick(g, T0 + 2 * INTERVAL_MS);
    ck_assert(gossip_invariants_ok(g));
    ck_assert_uint_eq(me->heartbeat, RKV_COUNTER_MAX - 1);
    /* and a peer takes what the node sends */
    size_t n;
    struct gossip_out *out = gossip_outbox(g, &n);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(gossip_on_message(peer, T0, out[i].msg.data, out[i].msg.len), RKV_OK);
    /* nothing left to refute with: unchanged, still valid */
    lie = state_of("n2", RKV_COUNTER_MAX - 1, RKV_COUNTER_MAX - 1, 0, GOSSIP_LEAVING);
    ck_assert_int_eq(feed_state(g, T0, lie), RKV_OK);
    ck_assert(gossip_invariants_ok(g));
    ck_assert_uint_eq(me->incarnation, 11);
    ck_assert_int_eq(me->status, GOSSIP_UP);
    gossip_free(peer);
    gossip_free(g);
}
END_TEST

START_TEST(explicit_remove_sticks)
{
    struct sim *s = sim_new(8, 41);
    sim_converge(s, 50);
    ck_assert_int_eq(gossip_remove(s->g[0], "n6"), RKV_OK);
    ck_assert_int_eq(gossip_remove(s->g[0], "n0"), RKV_ERR_INVAL);
    ck_assert_int_eq(gossip_remove(s->g[0], "zz"), RKV_ERR_NOTFOUND);
    ck_assert_int_eq(gossip_set_status(s->g[0], GOSSIP_REMOVED), RKV_ERR_INVAL);
    for (int r = 0; r < 20; r++)
        sim_round(s);
    ck_assert(gossip_self_removed(s->g[6]));
    for (size_t i = 0; i < 8; i++) {
        ck_assert_int_eq(gossip_find(s->g[i], "n6")->status, GOSSIP_REMOVED);
        ck_assert(!gossip_alive(s->g[i], "n6", s->now));
        ck_assert_uint_eq(gossip_member_count(s->g[i]), 8); /* kept as a tombstone */
    }
    /* a removed node sends nothing */
    gossip_tick(s->g[6], s->now);
    size_t n;
    gossip_outbox(s->g[6], &n);
    ck_assert_uint_eq(n, 0);
    sim_free(s);
}
END_TEST

/* Delivers what a and b (n0 and n1) send each other; the rest is lost. */
static void exchange_pair(struct gossip *a, struct gossip *b, uint64_t now)
{
    struct gossip *g[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        size_t n;
        struct gossip_out *out = gossip_outbox(g[k], &n);
        for (size_t i = 0; i < n; i++) {
            struct gossip *to = strcmp(out[i].to, "n0") == 0   ? a
                              : strcmp(out[i].to, "n1") == 0   ? b
                                                               : NULL;
            if (to != NULL && to != g[k])
                ck_assert_int_eq(gossip_on_message(to, now, out[i].msg.data, out[i].msg.len),
                                 RKV_OK);
        }
        gossip_outbox_clear(g[k]);
    }
}

/* A state nobody has heard from its member (the cluster file's, version
 * 0) spreads with the table but is no heartbeat where it lands: a node
 * that has only heard of a member second hand, and never from it, does
 * not take it for alive. */
START_TEST(second_hand_placeholders_are_not_heartbeats)
{
    struct gossip *a = node_new(0, 9, 100, GOSSIP_UP), *b = node_new(1, 9, 100, GOSSIP_UP);
    struct gossip_node st = {.id = "n6", .host = "10.0.0.6", .client_port = 7006,
                             .cluster_port = 9006, .vnodes = 16, .incarnation = 1,
                             .status = GOSSIP_UP};
    ck_assert_int_eq(gossip_learn(a, &st), RKV_OK);
    st = (struct gossip_node){.id = "n1", .host = "10.0.0.1", .client_port = 7001,
                              .cluster_port = 9001, .vnodes = 16, .incarnation = 1,
                              .status = GOSSIP_UP};
    ck_assert_int_eq(gossip_learn(a, &st), RKV_OK); /* so that a gossips with b */
    for (uint64_t r = 0; r < 5; r++) {
        uint64_t now = T0 + r * INTERVAL_MS;
        gossip_tick(a, now);
        gossip_tick(b, now);
        exchange_pair(a, b, now);
        if (gossip_find(b, "n6") != NULL) /* from the moment b has heard of it */
            ck_assert_msg(!gossip_alive(b, "n6", now), "round %llu", (unsigned long long)r);
    }
    ck_assert_ptr_nonnull(gossip_find(b, "n6"));
    ck_assert(gossip_alive(b, "n0", T0 + 4 * INTERVAL_MS));
    gossip_free(a);
    gossip_free(b);
}
END_TEST

/* A member known only from the cluster file (incarnation 1) and dead: a
 * remove stamped with the remover's clock wins over its real state held
 * elsewhere; learned states never override newer ones nor count as
 * heartbeats. */
START_TEST(remove_at_wins_over_unheard_states)
{
    struct gossip *a = node_new(0, 7, 100, GOSSIP_UP), *b = node_new(1, 7, 100, GOSSIP_UP);
    struct gossip_node st = {.id = "n6", .host = "10.0.0.6", .client_port = 7006,
                             .cluster_port = 9006, .vnodes = 16, .incarnation = 1,
                             .status = GOSSIP_UP};
    ck_assert_int_eq(gossip_learn(a, &st), RKV_OK); /* the cluster file's word */
    st.incarnation = 500; /* its real state, which only b heard */
    st.version = 3;
    ck_assert_int_eq(gossip_learn(b, &st), RKV_OK);
    st.incarnation = 1;
    ck_assert_int_eq(gossip_learn(b, &st), RKV_OK); /* older: ignored */
    ck_assert_uint_eq(gossip_find(b, "n6")->incarnation, 500);
    ck_assert(!gossip_alive(b, "n6", T0)); /* learned, never heard */
    st.vnodes = 0;
    ck_assert_int_eq(gossip_learn(b, &st), RKV_ERR_INVAL);
    ck_assert_int_eq(gossip_remove_at(a, "n6", 1000), RKV_OK);
    ck_assert_uint_eq(gossip_find(a, "n6")->incarnation, 1000);
    for (uint64_t r = 0; r < 10; r++) {
        gossip_tick(a, T0 + r * INTERVAL_MS);
        gossip_tick(b, T0 + r * INTERVAL_MS);
        exchange_pair(a, b, T0 + r * INTERVAL_MS);
    }
    ck_assert_int_eq(gossip_find(a, "n6")->status, GOSSIP_REMOVED);
    ck_assert_int_eq(gossip_find(b, "n6")->status, GOSSIP_REMOVED);
    ck_assert_uint_eq(gossip_find(b, "n6")->incarnation, 1000);
    /* restarted later (a newer incarnation), it is a member again */
    st.vnodes = 16;
    st.incarnation = 2000;
    st.version = 1;
    ck_assert_int_eq(gossip_learn(b, &st), RKV_OK);
    ck_assert_int_eq(gossip_find(b, "n6")->status, GOSSIP_UP);
    ck_assert(gossip_invariants_ok(a) && gossip_invariants_ok(b));
    gossip_free(a);
    gossip_free(b);
}
END_TEST

/* ---- one ring change at a time ---- */

/* Every running node sets the same progress: ring epoch, no handoff. */
static void sim_progress_all(struct sim *s, uint64_t epoch)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->g[i] != NULL && !s->silent[i])
            ck_assert_int_eq(gossip_set_progress(s->g[i], epoch, 0), RKV_OK);
}

/* Whether node i sees a change under way, and why (into why). */
static bool pending_at(struct sim *s, size_t i, char *why, size_t size)
{
    return gossip_change_pending(s->g[i], s->now, why, size);
}

/* A member's progress spreads like the rest of its state: a node that
 * hands partitions over, or serves another ring, makes every other node
 * see a change under way until it is done; a member that goes silent
 * stops holding changes back once it is suspected. */
START_TEST(progress_spreads_and_holds_changes_back)
{
    struct sim *s = sim_new(8, 21);
    char why[160];
    /* nobody has said which ring it serves: nothing is known to be settled */
    sim_converge(s, 50);
    ck_assert(pending_at(s, 0, why, sizeof why));
    ck_assert_msg(strstr(why, "not known here yet") != NULL, "%s", why);
    sim_progress_all(s, 0xe1);
    sim_converge(s, 50);
    for (int r = 0; r < 5; r++)
        sim_round(s);
    for (size_t i = 0; i < s->n; i++)
        ck_assert_msg(!pending_at(s, i, why, sizeof why), "n%zu: %s", i, why);

    /* n3 takes a new ring and has 12 partitions to hand over */
    uint64_t before = gossip_self(s->g[3])->version;
    ck_assert_int_eq(gossip_set_progress(s->g[3], 0xe2, 12), RKV_OK);
    ck_assert_uint_eq(gossip_self(s->g[3])->version, before + 1);
    ck_assert_int_eq(gossip_set_progress(s->g[3], 0xe2, 12), RKV_OK); /* no change */
    ck_assert_uint_eq(gossip_self(s->g[3])->version, before + 1);
    ck_assert_int_eq(gossip_set_progress(s->g[3], 0xe2, RKV_PARTITIONS_MAX + 1), RKV_ERR_INVAL);
    ck_assert(pending_at(s, 3, why, sizeof why));
    ck_assert_msg(strstr(why, "n3 has 12 partitions") != NULL, "%s", why);
    sim_converge(s, 50);
    for (size_t i = 0; i < s->n; i++) {
        ck_assert_uint_eq(gossip_find(s->g[i], "n3")->handoff, 12);
        ck_assert_uint_eq(gossip_find(s->g[i], "n3")->ring_epoch, 0xe2);
        ck_assert(pending_at(s, i, why, sizeof why));
    }
    /* the others take the ring too: n3's handoff is what is left */
    for (size_t i = 0; i < s->n; i++)
        if (i != 3)
            gossip_set_progress(s->g[i], 0xe2, 0);
    sim_converge(s, 50);
    ck_assert(pending_at(s, 0, why, sizeof why));
    ck_assert_msg(strstr(why, "n3 has 12 partitions to hand over") != NULL, "%s", why);
    /* n3 is done */
    gossip_set_progress(s->g[3], 0xe2, 0);
    sim_converge(s, 50);
    for (size_t i = 0; i < s->n; i++)
        ck_assert_msg(!pending_at(s, i, why, sizeof why), "n%zu: %s", i, why);

    /* one node on another ring holds changes back ... */
    gossip_set_progress(s->g[5], 0xe3, 0);
    sim_converge(s, 50);
    ck_assert(pending_at(s, 0, why, sizeof why));
    ck_assert_msg(strstr(why, "n5 serves ring") != NULL, "%s", why);
    /* ... until it falls silent and is suspected */
    s->silent[5] = true;
    int r = 0;
    while (pending_at(s, 0, why, sizeof why)) {
        ck_assert_msg(r++ < 30, "n5 still holds changes back after 30 silent rounds: %s", why);
        sim_round(s);
    }
    ck_assert(!gossip_alive(s->g[0], "n5", s->now));
    sim_free(s);
}
END_TEST

/* Joining and leaving members hold changes back while they are alive;
 * of two nodes joining at once, the one with the lesser id goes first. */
START_TEST(joins_and_leaves_take_turns)
{
    struct sim *s = sim_new(7, 33);
    sim_progress_all(s, 0xa1);
    sim_converge(s, 50);
    /* n5 and n6 restart as joining nodes at the same moment */
    for (size_t i = 5; i < 7; i++) {
        gossip_free(s->g[i]);
        s->g[i] = node_new(i, 33, 2, GOSSIP_JOINING);
        gossip_set_progress(s->g[i], 0xa1, 0);
    }
    sim_converge(s, 50);
    char why[160];
    ck_assert_msg(!pending_at(s, 5, why, sizeof why), "n5: %s", why);
    ck_assert(pending_at(s, 6, why, sizeof why));
    ck_assert_msg(strstr(why, "n5 is joining") != NULL, "%s", why);
    ck_assert(pending_at(s, 0, why, sizeof why)); /* a member that is up waits for both */
    /* n5 is up on the same ring: n6's turn */
    gossip_set_status(s->g[5], GOSSIP_UP);
    sim_converge(s, 50);
    ck_assert_msg(!pending_at(s, 6, why, sizeof why), "n6: %s", why);
    ck_assert(pending_at(s, 0, why, sizeof why));
    ck_assert_msg(strstr(why, "n6 is joining") != NULL, "%s", why);
    gossip_set_status(s->g[6], GOSSIP_UP);
    sim_converge(s, 50);
    ck_assert_msg(!pending_at(s, 0, why, sizeof why), "n0: %s", why);
    /* n2 leaves: a change under way for everyone else while it is alive */
    gossip_set_status(s->g[2], GOSSIP_LEAVING);
    sim_converge(s, 50);
    for (size_t i = 0; i < s->n; i++)
        if (i != 2)
            ck_assert(pending_at(s, i, why, sizeof why));
    ck_assert_msg(strstr(why, "n2 is leaving") != NULL, "%s", why);
    sim_free(s);
}
END_TEST

/* ---- (6) hostile messages ---- */

/* A valid SYN, ACK and ACK2 to mutate. */
static void sample_messages(struct rkv_buf out[3])
{
    struct sim *s = sim_new(4, 51);
    sim_converge(s, 30);
    gossip_tick(s->g[1], s->now);
    size_t n;
    struct gossip_out *o = gossip_outbox(s->g[1], &n);
    ck_assert_uint_ge(n, 1);
    rkv_buf_set(&out[0], o[0].msg.data, o[0].msg.len);
    size_t to = id_index(o[0].to);
    gossip_outbox_clear(s->g[1]);
    ck_assert_int_eq(gossip_on_message(s->g[to], s->now, out[0].data, out[0].len), RKV_OK);
    o = gossip_outbox(s->g[to], &n);
    ck_assert_uint_eq(n, 1);
    rkv_buf_set(&out[1], o[0].msg.data, o[0].msg.len);
    struct gossip_node st[3] = {state_of("x1", 1, 1, 1, GOSSIP_UP),
                                state_of("x2", 2, 3, 4, GOSSIP_LEAVING),
                                state_of("x3", 1, 1, 0, GOSSIP_JOINING)};
    ack2(&out[2], CLUSTER, "x1", st, 3);
    sim_free(s);
}

static void assert_refused(struct gossip *g, const void *p, size_t len, const char *what)
{
    size_t before = gossip_member_count(g);
    int rc = gossip_on_message(g, T0, p, len);
    ck_assert_msg(rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG, "%s: accepted (%d)", what, rc);
    ck_assert_uint_eq(gossip_member_count(g), before);
    size_t n;
    gossip_outbox(g, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert(gossip_invariants_ok(g));
}

START_TEST(truncated_messages_refused)
{
    struct rkv_buf m[3] = {{0}};
    sample_messages(m);
    struct gossip *g = node_new(2, 1, 1, GOSSIP_UP);
    test_alloc_fail_from(0); /* refusing takes no memory */
    for (int k = 0; k < 3; k++)
        for (size_t len = 0; len < m[k].len; len++)
            assert_refused(g, m[k].data, len, "truncated");
    ck_assert(!test_alloc_failed());
    test_alloc_reset();
    for (int k = 0; k < 3; k++) {
        /* trailing bytes */
        uint8_t *p = malloc(m[k].len + 1);
        memcpy(p, m[k].data, m[k].len);
        p[m[k].len] = 0xc0;
        assert_refused(g, p, m[k].len + 1, "trailing byte");
        free(p);
        /* the whole message is fine */
        ck_assert_int_eq(gossip_on_message(g, T0, m[k].data, m[k].len), RKV_OK);
        gossip_outbox_clear(g);
    }
    gossip_free(g);
    for (int k = 0; k < 3; k++)
        rkv_buf_free(&m[k]);
}
END_TEST

/* An envelope by hand, then `count` claimed in an array32 header. */
static void hostile(struct rkv_buf *b, uint64_t version, uint64_t type, const char *cluster,
                    const char *from, uint32_t fields)
{
    b->len = 0;
    struct mp_writer w;
    mp_writer_init(&w, b);
    mp_write_array(&w, fields);
    mp_write_uint(&w, version);
    mp_write_uint(&w, type);
    mp_write_cstr(&w, cluster);
    mp_write_cstr(&w, from);
}

START_TEST(hostile_messages_refused)
{
    struct gossip *g = node_new(2, 1, 1, GOSSIP_UP);
    struct rkv_buf b = {0};
    struct mp_writer w;
    /* a count of four billion in a few bytes */
    hostile(&b, GOSSIP_WIRE_VERSION, GOSSIP_SYN, CLUSTER, "n1", 5);
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    rkv_buf_append(&b, huge, sizeof huge);
    test_alloc_fail_from(0); /* refusing takes no memory */
    assert_refused(g, b.data, b.len, "huge count");
    ck_assert(!test_alloc_failed());
    test_alloc_reset();

    /* more digest entries than RKV_NODES_MAX, each well formed */
    hostile(&b, GOSSIP_WIRE_VERSION, GOSSIP_SYN, CLUSTER, "n1", 5);
    mp_writer_init(&w, &b);
    mp_write_array(&w, RKV_NODES_MAX + 1);
    for (uint32_t i = 0; i <= RKV_NODES_MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%u", i);
        mp_write_array(&w, 4);
        mp_write_cstr(&w, id);
        mp_write_uint(&w, 1);
        mp_write_uint(&w, 1);
        mp_write_uint(&w, 1);
    }
    test_alloc_fail_from(0);
    assert_refused(g, b.data, b.len, "too many entries");
    test_alloc_reset();

    /* envelopes */
    struct {
        uint64_t version, type;
        const char *cluster, *from;
        uint32_t fields;
        const char *what;
    } env[] = {
        {.version = 1, .type = 3, .cluster = CLUSTER, .from = "n1", .fields = 5, .what = "old version"},
        {.version = 3, .type = 3, .cluster = CLUSTER, .from = "n1", .fields = 5, .what = "version"},
        {.version = GOSSIP_WIRE_VERSION, .type = 3, .cluster = "other", .from = "n1", .fields = 5, .what = "cluster"},
        {.version = GOSSIP_WIRE_VERSION, .type = 3, .cluster = CLUSTER "x", .from = "n1", .fields = 5, .what = "cluster+"},
        {.version = GOSSIP_WIRE_VERSION, .type = 3, .cluster = "", .from = "n1", .fields = 5, .what = "no cluster"},
        {.version = GOSSIP_WIRE_VERSION, .type = 9, .cluster = CLUSTER, .from = "n1", .fields = 5, .what = "type"},
        {.version = GOSSIP_WIRE_VERSION, .type = 3, .cluster = CLUSTER, .from = "n/1", .fields = 5, .what = "from"},
        {.version = GOSSIP_WIRE_VERSION, .type = 3, .cluster = CLUSTER, .from = "", .fields = 5, .what = "empty from"},
        {.version = GOSSIP_WIRE_VERSION, .type = 3, .cluster = CLUSTER, .from = "n1", .fields = 6, .what = "fields"},
    };
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        hostile(&b, env[i].version, env[i].type, env[i].cluster, env[i].from, env[i].fields);
        mp_writer_init(&w, &b);
        mp_write_array(&w, 0);
        assert_refused(g, b.data, b.len, env[i].what);
        if (strcmp(env[i].what, "cluster") == 0)
            ck_assert(strstr(gossip_errmsg(g), "cluster") != NULL);
    }

    /* bad states: each one field wrong */
    char long_id[RKV_NODE_ID_BYTES_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    for (int k = 0; k < 10; k++) {
        struct gossip_node st = state_of("ok", 1, 1, 1, GOSSIP_UP);
        struct gossip_node good = state_of("fine", 1, 1, 1, GOSSIP_UP);
        hostile(&b, GOSSIP_WIRE_VERSION, GOSSIP_ACK2, CLUSTER, "n1", 5);
        mp_writer_init(&w, &b);
        mp_write_array(&w, 2);
        write_state(&w, &good); /* nothing of a bad message is applied */
        mp_write_array(&w, 11);
        mp_write_cstr(&w, k == 0 ? long_id : k == 1 ? "bad id" : st.id);
        mp_write_cstr(&w, k == 2 ? "" : k == 3 ? "a b" : st.host);
        mp_write_uint(&w, k == 4 ? 0 : st.client_port);
        mp_write_uint(&w, k == 5 ? 70000 : st.cluster_port);
        mp_write_uint(&w, k == 6 ? RKV_VNODES_MAX + 1 : st.vnodes);
        mp_write_uint(&w, k == 7 ? UINT64_MAX : st.incarnation);
        mp_write_uint(&w, k == 8 ? RKV_COUNTER_MAX : st.version);
        mp_write_uint(&w, st.heartbeat);
        mp_write_uint(&w, st.status);
        mp_write_uint(&w, st.ring_epoch);
        mp_write_uint(&w, k == 9 ? RKV_PARTITIONS_MAX + 1 : st.handoff);
        assert_refused(g, b.data, b.len, "bad state");
    }
    for (uint64_t status = 0; status < 8; status += 5) {
        struct gossip_node st = state_of("ok", 1, 1, 1, GOSSIP_UP);
        st.status = (enum gossip_status)status;
        ack2(&b, CLUSTER, "n1", &st, 1);
        assert_refused(g, b.data, b.len, "status");
    }
    /* longer than message_bytes_max */
    rkv_buf_reserve(&b, GOSSIP_MESSAGE_BYTES_DEFAULT + 1);
    assert_refused(g, b.data, GOSSIP_MESSAGE_BYTES_DEFAULT + 1, "too long");
    ck_assert_uint_eq(gossip_member_count(g), 1);
    rkv_buf_free(&b);
    gossip_free(g);
}
END_TEST

/* Random damage to valid messages: refused or applied, never a crash. */
START_TEST(mutated_messages_are_safe)
{
    struct rkv_buf m[3] = {{0}};
    sample_messages(m);
    int seeds = test_seeds(2000);
    for (int sd = 0; sd < seeds; sd++) {
        struct test_rng rng = {.s = (uint64_t)sd};
        struct gossip *g = node_new(2, 1, 1, GOSSIP_UP);
        int k = (int)test_rng_below(&rng, 3);
        uint8_t *p = malloc(m[k].len);
        memcpy(p, m[k].data, m[k].len);
        int flips = 1 + (int)test_rng_below(&rng, 4);
        for (int f = 0; f < flips; f++)
            p[test_rng_below(&rng, m[k].len)] = (uint8_t)test_rng_next(&rng);
        int rc = gossip_on_message(g, T0, p, m[k].len);
        ck_assert_msg(rc == RKV_OK || rc == RKV_ERR_PROTO, "seed %d: %d", sd, rc);
        ck_assert_msg(gossip_invariants_ok(g), "seed %d", sd);
        free(p);
        gossip_free(g);
    }
    for (int k = 0; k < 3; k++)
        rkv_buf_free(&m[k]);
}
END_TEST

/* ---- options, limits, allocation ---- */

START_TEST(bad_options_refused)
{
    struct gossip_options base = {
        .cluster = CLUSTER,
        .self = state_of("me", 1, 0, 0, GOSSIP_UP),
    };
    struct gossip *g = NULL;
    struct rkv_error err = {0};
    ck_assert_int_eq(gossip_new(&base, &g, &err), RKV_OK);
    gossip_free(g);
    gossip_free(NULL);
    static const char *const bad_seed[] = {"ok", "not ok"};
    for (int k = 0; k < 8; k++) {
        struct gossip_options o = base;
        switch (k) {
        case 0: o.cluster = ""; break;
        case 1: o.self.id[0] = '\0'; break;
        case 2: o.self.incarnation = 0; break;
        case 3: o.self.status = GOSSIP_REMOVED; break;
        case 4: o.seeds = bad_seed; o.n_seeds = 2; break;
        case 5: o.fd_window = 1; break;
        case 6: o.message_bytes_max = 1000; break;
        case 7: o.phi_threshold = -1; break;
        }
        ck_assert_int_eq(gossip_new(&o, &g, &err), RKV_ERR_INVAL);
        ck_assert_ptr_null(g);
        ck_assert(err.msg[0] != '\0');
    }
}
END_TEST

START_TEST(member_table_bounded)
{
    struct gossip *g = node_new(0, 1, 1, GOSSIP_UP);
    struct rkv_buf b = {0};
    struct gossip_node *st = calloc(RKV_NODES_MAX, sizeof *st);
    for (int batch = 0; batch < 2; batch++) {
        for (uint32_t i = 0; i < RKV_NODES_MAX; i++) {
            char id[32];
            snprintf(id, sizeof id, "m%u-%d", i, batch);
            st[i] = state_of(id, 1, 1, 1, GOSSIP_UP);
        }
        ack2(&b, CLUSTER, "n1", st, RKV_NODES_MAX);
        ck_assert_int_eq(feed(g, T0, &b), RKV_OK);
    }
    ck_assert_uint_eq(gossip_member_count(g), RKV_NODES_MAX);
    ck_assert(gossip_invariants_ok(g));
    struct gossip_stats s;
    gossip_stats(g, &s);
    ck_assert_uint_eq(s.members_dropped, RKV_NODES_MAX + 1);
    /* a full table still fits every SYN, and an ACK is cut to the limit */
    gossip_tick(g, T0 + 1000);
    size_t n;
    struct gossip_out *o = gossip_outbox(g, &n);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(o[0].msg.len, GOSSIP_MESSAGE_BYTES_DEFAULT);
    gossip_outbox_clear(g);
    free(st);
    rkv_buf_free(&b);
    gossip_free(g);
}
END_TEST

START_TEST(alloc_failure_is_clean)
{
    struct rkv_buf m[3] = {{0}};
    sample_messages(m);
    bool finished = false;
    for (long k = 0; k < 200 && !finished; k++) {
        test_alloc_fail_from(k); /* counts live blocks too */
        struct gossip *g = NULL;
        int rc = gossip_new(&(struct gossip_options){.cluster = CLUSTER,
                                                     .self = state_of("n2", 1, 0, 0, GOSSIP_UP),
                                                     .seeds = (const char *const[]){"n0"},
                                                     .n_seeds = 1},
                            &g, NULL);
        finished = rc == RKV_OK;
        if (rc == RKV_OK) {
            for (int i = 0; i < 3; i++) {
                rc = gossip_on_message(g, T0, m[i].data, m[i].len);
                finished &= rc == RKV_OK;
                ck_assert(rc == RKV_OK || rc == RKV_ERR_NOMEM);
                ck_assert(gossip_invariants_ok(g));
            }
            gossip_tick(g, T0 + 1000);
            ck_assert(gossip_invariants_ok(g));
        } else {
            ck_assert_int_eq(rc, RKV_ERR_NOMEM);
            ck_assert_ptr_null(g);
        }
        gossip_free(g);
        long live = test_alloc_live();
        test_alloc_reset();
        ck_assert_msg(live == 0, "allocation %ld: %ld blocks leaked", k, live);
    }
    ck_assert(finished);
    for (int k = 0; k < 3; k++)
        rkv_buf_free(&m[k]);
}
END_TEST

START_TEST(same_seed_same_run)
{
    uint64_t delivered[2];
    for (int k = 0; k < 2; k++) {
        struct sim *s = sim_new(32, 77);
        sim_converge(s, 60);
        for (int r = 0; r < 5; r++)
            sim_round(s);
        delivered[k] = s->delivered;
        sim_free(s);
    }
    ck_assert_uint_eq(delivered[0], delivered[1]);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("gossip");
    TCase *tc = tcase_create("gossip");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, join_converges);
    tcase_add_test(tc, silent_node_suspected_then_cleared);
    tcase_add_test(tc, phi_grows_with_silence);
    tcase_add_test(tc, stale_rumour_never_wins);
    tcase_add_test(tc, stale_state_does_not_spread);
    tcase_add_test(tc, restart_is_same_member_new_state_wins);
    tcase_add_test(tc, false_rumour_is_refuted);
    tcase_add_test(tc, explicit_remove_sticks);
    tcase_add_test(tc, remove_at_wins_over_unheard_states);
    tcase_add_test(tc, second_hand_placeholders_are_not_heartbeats);
    tcase_add_test(tc, rumour_at_counter_limit);
    tcase_add_test(tc, progress_spreads_and_holds_changes_back);
    tcase_add_test(tc, joins_and_leaves_take_turns);
    tcase_add_test(tc, truncated_messages_refused);
    tcase_add_test(tc, hostile_messages_refused);
    tcase_add_test(tc, mutated_messages_are_safe);
    tcase_add_test(tc, bad_options_refused);
    tcase_add_test(tc, member_table_bounded);
    tcase_add_test(tc, alloc_failure_is_clean);
    tcase_add_test(tc, same_seed_same_run);
    suite_add_tcase(su, tc);
    return test_run(su);
}
