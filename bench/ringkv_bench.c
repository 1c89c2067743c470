/*
 * ringkv_bench.c: ringkv-bench, a load generator for a running ring (or
 * any Redis-protocol server). It has two modes, with the same workloads,
 * options and report:
 *  - libringkv (the default), with per-request R and W. With --pipeline 1
 *    (the default): --clients threads with one struct ringkv_client each,
 *    blocking calls, one request in flight per client. With --pipeline N
 *    above 1 (or --threads): --pipeline requests in flight per client
 *    through the asynchronous API (ringkv_get_async, ...), the clients
 *    shared by --threads event loops (default one; bench_async.c).
 *  - RESP (--resp HOST:PORT[,...]): bench_resp.c, its own RESP2 client on
 *    non-blocking sockets, --pipeline requests in flight per connection and
 *    optionally WAIT after each SET; for ringkv's resp_port and for Redis.
 * Both print ops/s and p50/p99/p99.9 latency of reads, writes and both,
 * errors by code, and the settings. --csv prints one machine-readable line
 * instead (the report then goes to stderr); bench/ring-bench.sh and
 * bench/compare use it.
 *
 * Design (libringkv mode; the terms are bench_lib.h's). Every lane runs a
 * closed loop: pick an op (a write with the workload's probability), pick
 * a key (uniform, or zipfian with theta 0.99), get or put it, time the
 * request with CLOCK_MONOTONIC from its start to its completion and record
 * it in its loop's histograms; the main thread only moves a shared phase
 * (warmup, measure, stop) and sleeps. Nothing is shared between threads
 * while they run except that phase and read-only settings; the histograms
 * are merged after the threads are joined. Every random draw comes from a
 * splitmix64 generator seeded from --prng-seed (and the lane number), never
 * from the clock.
 *
 * Writes and contexts. A put without a context on a key that exists adds a
 * sibling, so a benchmark that wrote blindly would pile siblings up. Here
 * key k is written only by the lane k % lanes (its owner), which keeps,
 * per owned key, the context returned by its last put and passes it with
 * the next put: every put supersedes exactly the previous one. A lane has
 * one request in flight, so two puts of one key never overlap, also with
 * --pipeline. The cache is one small buffer per key, grown only when a
 * context is longer than any before (so the total is bounded by keys x the
 * largest context). Before measuring, the contexts are filled: --preload
 * reads and then writes every key (the read's context makes the write
 * supersede whatever the ring held already); without --preload a workload
 * with writes reads every key once ("priming"). Both run on
 * max(clients, SETUP_CLIENTS_MIN) connections of their own, blocking. A put
 * that fails leaves its key's context unknown (the put may have been
 * applied); the owner then reads the key again, unmeasured, before its next
 * put (a "context fetch"). Contexts from measured reads are not cached:
 * with R + W <= N a read may miss the owner's last put. Reads pick any key.
 * For zipfian writes the drawn key k is moved to the key its lane owns in
 * k's block of `lanes` consecutive keys, which keeps the skew but never
 * shares a key between writers. (The RESP mode needs none of this: a RESP
 * SET overwrites.)
 *
 * Latency. Blocking: from just before to just after the library call.
 * Asynchronous: from just before the _async call to the start of its
 * callback (so it includes the time the reply waited for its loop). A
 * failed request is counted by its code and kept out of the latency
 * columns. The histograms (bench_util.c) are within 0.4%. ops/s counts the
 * successful ops that started in the measured window, over its length.
 *
 * Exit status: 0; 1 if more than 1% of the measured ops (or of the setup
 * ops) failed, if no op succeeded, or on a setup error; 2 on bad usage.
 */
#include "bench/bench_lib.h"

#include <zmq.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_CLIENTS_MIN 16u /* connections that preload or prime, at least */
#define CTX_BYTES_MIN     64  /* first allocation of a context slot */
#define NODES_MAX         64  /* nodes whose statistics are shown */

#define DEFAULT_CONFIG      "cluster.toml"
#define DEFAULT_KEYS        100000ull
#define DEFAULT_VALUE_BYTES 100u
#define DEFAULT_CLIENTS     50u
#define DEFAULT_DURATION_S  10u
#define DEFAULT_WARMUP_S    1u
#define DEFAULT_SEED        0x72696e676b76ull /* "ringkv" */

/* One connection of the setup (preload or priming). */
struct setup_worker {
    struct bench *b;
    uint32_t id, n; /* handles keys id, id + n, ... */
    pthread_t thread;
    bool started;
    int connect_rc;
    char connect_msg[ERRMSG_BYTES];
    struct tally t;
};

static uint32_t eff_r(const struct bench *b)
{
    return b->cfg.r ? b->cfg.r : b->ring_r;
}

static uint32_t eff_w(const struct bench *b)
{
    return b->cfg.w ? b->cfg.w : b->ring_w;
}

void ctx_store(struct ctx_slot *s, const void *ctx, size_t len)
{
    s->valid = false;
    if (ctx == NULL || len > UINT32_MAX)
        return;
    if (len > s->cap) {
        uint32_t cap = len > CTX_BYTES_MIN ? (uint32_t)len : CTX_BYTES_MIN;
        uint8_t *p = realloc(s->data, cap);
        if (p == NULL)
            return;
        s->data = p;
        s->cap = cap;
    }
    if (len)
        memcpy(s->data, ctx, len);
    s->len = (uint32_t)len;
    s->valid = true;
}

struct ctx_slot *ctx_slot_of(struct bench *b, uint64_t k)
{
    struct lane *owner = &b->lanes[k % b->n_lanes];
    return &owner->ctx[k / b->n_lanes];
}

/* ---- operations ---- */

void tally_read_result(struct tally *t, const struct ringkv_result *res, uint32_t vbytes)
{
    if (res->status == RINGKV_ENOTFOUND) {
        t->not_found++;
        return;
    }
    if (res->n_siblings > 1)
        t->multi_sibling_reads++;
    if (res->n_siblings > t->siblings_max)
        t->siblings_max = res->n_siblings;
    for (size_t i = 0; i < res->n_siblings; i++)
        if (res->siblings[i].value_len != vbytes)
            t->bad_values++;
}

/* One get of key k; counted in t if t is not NULL. With slot set, the
 * context read is kept there. Returns the library's code. */
static int op_get(struct bench *b, struct ringkv_client *c, uint64_t k, struct tally *t,
                  struct ctx_slot *slot)
{
    char key[KEY_BYTES];
    key_format(key, k);
    struct ringkv_request_options o = {.r = b->cfg.r};
    struct ringkv_result res;
    uint64_t t0 = now_ns();
    int rc = ringkv_get(c, key, KEY_BYTES, &o, &res);
    uint64_t t1 = now_ns();
    bool ok = rc == RINGKV_OK || rc == RINGKV_ENOTFOUND;
    if (ok && slot)
        ctx_store(slot, res.context, res.context_len);
    if (t && ok) {
        hist_record(&t->read, t1 - t0);
        tally_read_result(t, &res, b->cfg.value_bytes);
    } else if (t) {
        tally_error(t, rc, ringkv_errmsg(c));
    }
    ringkv_result_free(&res);
    return rc;
}

/* One put of key k with the context in slot (if valid); the put's context
 * replaces it. Counted in t if t is not NULL. */
static int op_put(struct bench *b, struct ringkv_client *c, uint64_t k, uint64_t *rng,
                  struct tally *t, struct ctx_slot *slot)
{
    char key[KEY_BYTES];
    key_format(key, k);
    const uint8_t *value = b->pool + (rng_next(rng) & (VALUE_POOL_SPAN - 1));
    struct ringkv_request_options o = {
        .w = b->cfg.w,
        .context = slot->valid ? slot->data : NULL,
        .context_len = slot->valid ? slot->len : 0,
    };
    struct ringkv_result res;
    uint64_t t0 = now_ns();
    int rc = ringkv_put(c, key, KEY_BYTES, value, b->cfg.value_bytes, &o, &res);
    uint64_t t1 = now_ns();
    if (rc == RINGKV_OK)
        ctx_store(slot, res.context, res.context_len);
    else
        slot->valid = false; /* the put may have been applied: read again first */
    if (t && rc == RINGKV_OK)
        hist_record(&t->write, t1 - t0);
    else if (t)
        tally_error(t, rc, ringkv_errmsg(c));
    ringkv_result_free(&res);
    return rc;
}

static uint64_t pick_key(struct lane *l)
{
    struct bench *b = l->b;
    if (b->cfg.dist == DIST_ZIPFIAN)
        return zipf_next(&b->zipf, &l->rng);
    return rng_below(&l->rng, b->cfg.keys);
}

/* The key lane l owns in the block of key k (see the file comment). */
static uint64_t owned_key(const struct lane *l, uint64_t k)
{
    uint32_t lanes = l->b->n_lanes;
    uint64_t own = k - k % lanes + l->id;
    return own < l->b->cfg.keys ? own : own - lanes; /* keys >= lanes */
}

bool lane_pick(struct lane *l, uint64_t *key)
{
    bool write = rng_below(&l->rng, 1000) < wl_defs[l->b->cfg.wl].write_permille;
    uint64_t k = pick_key(l);
    *key = write ? owned_key(l, k) : k;
    return write;
}

/* A write of an owned key: first an unmeasured read if its context is lost. */
static void lane_write(struct lane *l, uint64_t k, bool measured)
{
    struct ctx_slot *slot = &l->ctx[k / l->b->n_lanes];
    struct tally *t = measured ? &l->loop->t : NULL;
    if (!slot->valid) {
        if (t)
            t->ctx_fetches++;
        int rc = op_get(l->b, l->c, k, NULL, slot);
        if (rc != RINGKV_OK && rc != RINGKV_ENOTFOUND) {
            if (t) /* the write cannot go ahead without a context */
                tally_error(t, rc, ringkv_errmsg(l->c));
            return;
        }
    }
    op_put(l->b, l->c, k, &l->rng, t, slot);
}

/* One op of a blocking lane. */
static void lane_op(struct lane *l, bool measured)
{
    uint64_t k;
    if (lane_pick(l, &k))
        lane_write(l, k, measured);
    else
        op_get(l->b, l->c, k, measured ? &l->loop->t : NULL, NULL);
}

/* ---- threads ---- */

int client_connect(const struct bench *b, struct ringkv_client **c, char *msg, size_t msg_len)
{
    const struct bench_cfg *cfg = &b->cfg;
    struct ringkv_options o;
    ringkv_options_default(&o);
    o.seeds = cfg->seeds;
    o.config_path = cfg->seeds ? NULL : cfg->config_path;
    o.zmq_context = b->zctx;
    int rc = ringkv_connect(&o, c);
    if (rc != RINGKV_OK) {
        snprintf(msg, msg_len, "%s", ringkv_errmsg(*c));
        ringkv_close(*c);
        *c = NULL;
    }
    return rc;
}

/* The thread of a blocking loop: one client, one lane. */
static void *loop_blocking_main(void *arg)
{
    struct loop *lp = arg;
    struct bench *b = lp->b;
    struct lane *l = &b->lanes[lp->client_first];
    lp->connect_rc = client_connect(b, &l->c, lp->connect_msg, sizeof lp->connect_msg);
    b->clients[lp->client_first] = l->c;
    pthread_barrier_wait(&b->ready); /* main checks every connection */
    pthread_barrier_wait(&b->go);
    int ph;
    while ((ph = atomic_load_explicit(&b->phase, memory_order_acquire)) != PH_STOP)
        lane_op(l, ph == PH_MEASURE);
    ringkv_close(l->c);
    l->c = NULL;
    b->clients[lp->client_first] = NULL;
    return NULL;
}

/* Preload (read for the context, then write) or prime (read) every key
 * this setup connection handles; contexts go to the owners' slots. */
static void *setup_main(void *arg)
{
    struct setup_worker *s = arg;
    struct bench *b = s->b;
    struct ringkv_client *c;
    s->connect_rc = client_connect(b, &c, s->connect_msg, sizeof s->connect_msg);
    if (s->connect_rc != RINGKV_OK)
        return NULL;
    uint64_t rng = b->cfg.seed ^ (0xa0761d6478bd642full * (s->id + 1u));
    /* give up together once more ops failed than the run would accept */
    uint64_t fail_max = b->cfg.keys * (b->cfg.preload ? 2 : 1) * FAIL_PERMILLE_MAX / 1000;
    for (uint64_t k = s->id; k < b->cfg.keys; k += s->n) {
        struct ctx_slot *slot = ctx_slot_of(b, k);
        int rc = op_get(b, c, k, &s->t, slot);
        bool ok = rc == RINGKV_OK || rc == RINGKV_ENOTFOUND;
        if (b->cfg.preload && ok)
            ok = op_put(b, c, k, &rng, &s->t, slot) == RINGKV_OK;
        if (!ok)
            atomic_fetch_add(&b->setup_failed, 1);
        if (atomic_load_explicit(&b->setup_failed, memory_order_relaxed) > fail_max)
            break;
    }
    ringkv_close(c);
    return NULL;
}

/* Runs the setup; prints what it did and dies if it mostly failed. */
static void bench_setup(struct bench *b)
{
    bool prime = !b->cfg.preload && wl_defs[b->cfg.wl].write_permille > 0;
    if (!b->cfg.preload && !prime) {
        fprintf(b->out, "# setup: none (read-only without --preload: keys may be absent)\n");
        return;
    }
    uint32_t n = b->cfg.clients > SETUP_CLIENTS_MIN ? b->cfg.clients : SETUP_CLIENTS_MIN;
    if (n > b->cfg.keys)
        n = (uint32_t)b->cfg.keys;
    struct setup_worker *sw = calloc(n, sizeof *sw);
    if (sw == NULL)
        bench_die("out of memory");
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < n; i++) {
        sw[i] = (struct setup_worker){.b = b, .id = i, .n = n};
        sw[i].started = pthread_create(&sw[i].thread, NULL, setup_main, &sw[i]) == 0;
    }
    struct tally *sum = calloc(1, sizeof *sum);
    if (sum == NULL)
        bench_die("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        if (!sw[i].started)
            bench_die("setup: cannot start a thread");
        pthread_join(sw[i].thread, NULL);
        if (sw[i].connect_rc != RINGKV_OK)
            bench_die("setup: connect: %s", sw[i].connect_msg);
        tally_merge(sum, &sw[i].t);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    uint64_t failed = tally_failed(sum), done = sum->read.count + sum->write.count;
    fprintf(b->out,
            "# setup: %s of %" PRIu64 " keys on %u connections in %.1f s (%" PRIu64
            " gets, %" PRIu64 " puts, %" PRIu64 " failed; %" PRIu64 " reads found values)\n",
            b->cfg.preload ? "preload (get for the context, then put)"
                           : "write contexts primed by one get",
            b->cfg.keys, n, secs, sum->read.count, sum->write.count, failed,
            sum->read.count - sum->not_found);
    for (int i = 0; i < ERR_CODES; i++)
        if (sum->errors[i])
            fprintf(b->out, "#   setup error %s: %" PRIu64 ", first: %s\n", ringkv_strerror(i),
                    sum->errors[i], sum->errmsg[i]);
    if (failed * 1000 > (failed + done) * FAIL_PERMILLE_MAX)
        bench_die("setup: %" PRIu64 " of %" PRIu64 " ops failed", failed, failed + done);
    free(sum);
    free(sw);
}

/* Lanes, clients and loops (see bench_lib.h). */
static void lanes_alloc(struct bench *b)
{
    const struct bench_cfg *cfg = &b->cfg;
    uint32_t n = b->n_lanes = cfg->clients * cfg->pipeline;
    b->n_loops = b->async ? cfg->threads : cfg->clients;
    b->lanes = calloc(n, sizeof *b->lanes);
    b->clients = calloc(cfg->clients, sizeof *b->clients);
    b->loops = calloc(b->n_loops, sizeof *b->loops);
    if (b->lanes == NULL || b->clients == NULL || b->loops == NULL)
        bench_die("out of memory");
    for (uint32_t i = 0; i < b->n_loops; i++) {
        struct loop *lp = &b->loops[i];
        lp->b = b;
        lp->id = i;
        lp->client_first = (uint32_t)((uint64_t)cfg->clients * i / b->n_loops);
        lp->n_clients =
            (uint32_t)((uint64_t)cfg->clients * (i + 1) / b->n_loops) - lp->client_first;
        for (uint32_t j = lp->client_first * cfg->pipeline;
             j < (lp->client_first + lp->n_clients) * cfg->pipeline; j++)
            b->lanes[j].loop = lp;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct lane *l = &b->lanes[i];
        l->b = b;
        l->id = i;
        l->rng = cfg->seed ^ (0x9e3779b97f4a7c15ull * (i + 1u));
        l->n_ctx = (cfg->keys - i + n - 1) / n;
        l->ctx = calloc(l->n_ctx ? l->n_ctx : 1, sizeof *l->ctx);
        if (l->ctx == NULL)
            bench_die("out of memory");
    }
}

static void lanes_free(struct bench *b)
{
    for (uint32_t i = 0; i < b->n_lanes; i++) {
        struct lane *l = &b->lanes[i];
        for (uint64_t j = 0; j < l->n_ctx; j++)
            free(l->ctx[j].data);
        free(l->ctx);
    }
    free(b->lanes);
    free(b->clients);
    free(b->loops);
}

/* Runs the loops through the warmup and the measured window; rt gets the
 * window's length and this process's CPU time in it. */
static void bench_run(struct bench *b, struct run_times *rt)
{
    uint32_t n = b->n_loops;
    if (pthread_barrier_init(&b->ready, NULL, n + 1) != 0 ||
        pthread_barrier_init(&b->go, NULL, n + 1) != 0)
        bench_die("pthread_barrier_init failed");
    atomic_store(&b->phase, PH_WARMUP);
    void *(*loop_main)(void *) = b->async ? loop_async_main : loop_blocking_main;
    for (uint32_t i = 0; i < n; i++)
        if (pthread_create(&b->loops[i].thread, NULL, loop_main, &b->loops[i]) != 0)
            bench_die("cannot start thread %u of %u", i + 1, n);
    pthread_barrier_wait(&b->ready);
    const struct loop *bad = NULL;
    for (uint32_t i = 0; i < n && bad == NULL; i++)
        bad = b->loops[i].connect_rc != RINGKV_OK ? &b->loops[i] : NULL;
    if (bad)
        atomic_store(&b->phase, PH_STOP); /* the threads exit at once */
    pthread_barrier_wait(&b->go);
    uint64_t t = now_ns();
    double u0, s0, u1, s1;
    if (bad == NULL) {
        sleep_until_ns(t += (uint64_t)b->cfg.warmup_s * 1000000000u);
        cpu_times(&u0, &s0);
        uint64_t start = now_ns();
        atomic_store_explicit(&b->phase, PH_MEASURE, memory_order_release);
        sleep_until_ns(start + (uint64_t)b->cfg.duration_s * 1000000000u);
        atomic_store_explicit(&b->phase, PH_STOP, memory_order_release);
        rt->measure_ns = now_ns() - start;
        cpu_times(&u1, &s1);
        rt->user_s = u1 - u0;
        rt->sys_s = s1 - s0;
    }
    for (uint32_t i = 0; i < n; i++)
        pthread_join(b->loops[i].thread, NULL);
    pthread_barrier_destroy(&b->ready);
    pthread_barrier_destroy(&b->go);
    if (bad)
        bench_die("%s %u: connect: %s", b->async ? "event loop" : "client", bad->id + 1,
                  bad->connect_msg);
}

/* ---- node statistics (before and after the measured run) ---- */

enum nstat { NS_GETS, NS_PUTS, NS_FORWARDS, NS_READ_REPAIRS, NS_QUORUM_FAILURES, NS_BUSY,
             NS_SEND_FAILURES, NS_REPLICA_ERRORS, NS_TURNS, NS_COUNT };

static const char *const nstat_names[NS_COUNT] = {
    [NS_GETS] = "gets",
    [NS_PUTS] = "puts",
    [NS_FORWARDS] = "forwards",
    [NS_READ_REPAIRS] = "read_repairs",
    [NS_QUORUM_FAILURES] = "quorum_failures",
    [NS_BUSY] = "refused_busy",
    [NS_SEND_FAILURES] = "send_failures",
    [NS_REPLICA_ERRORS] = "replica_errors",
    [NS_TURNS] = "commits", /* one group commit per loop turn */
};

struct node_snap {
    bool ok;
    uint64_t v[NS_COUNT];
};

static void nstat_take(void *ctx, const char *name, uint64_t value)
{
    struct node_snap *s = ctx;
    for (int i = 0; i < NS_COUNT; i++)
        if (strcmp(name, nstat_names[i]) == 0)
            s->v[i] = value;
}

/* Statistics of every node of the ring (at most n_max). */
static void nodes_snapshot(struct ringkv_client *c, struct node_snap *snaps, size_t n_max)
{
    struct ringkv_ring_info info;
    if (ringkv_ring(c, &info) != RINGKV_OK)
        return;
    size_t n = info.n_nodes < n_max ? info.n_nodes : n_max;
    char ids[NODES_MAX][64];
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], sizeof ids[i], "%s", info.nodes[i].id);
    for (size_t i = 0; i < n; i++) {
        snaps[i] = (struct node_snap){.ok = false};
        snaps[i].ok = ringkv_stats(c, ids[i], nstat_take, &snaps[i]) == RINGKV_OK;
    }
}

static void print_nodes(struct bench *b, struct ringkv_client *c, const struct node_snap *before,
                        const struct node_snap *after, double secs)
{
    struct ringkv_ring_info info;
    if (ringkv_ring(c, &info) != RINGKV_OK)
        return;
    for (size_t i = 0; i < info.n_nodes && i < NODES_MAX; i++) {
        if (!before[i].ok || !after[i].ok) {
            fprintf(b->out, "# node %s: no statistics\n", info.nodes[i].id);
            continue;
        }
        fprintf(b->out, "# node %s:", info.nodes[i].id);
        for (int k = 0; k < NS_COUNT; k++)
            fprintf(b->out, " %s +%" PRIu64, nstat_names[k], after[i].v[k] - before[i].v[k]);
        fprintf(b->out, " (%.0f loop turns/s)\n",
                (double)(after[i].v[NS_TURNS] - before[i].v[NS_TURNS]) / secs);
    }
}

/* ---- output ---- */

static void print_ring(struct bench *b, struct ringkv_client *c)
{
    struct ringkv_ring_info info;
    if (ringkv_ring(c, &info) != RINGKV_OK)
        bench_die("cannot read the ring: %s", ringkv_errmsg(c));
    b->ring_n = info.replicas;
    b->ring_r = info.read_quorum;
    b->ring_w = info.write_quorum;
    if (b->cfg.r > info.replicas || b->cfg.w > info.replicas)
        bench_die("-r/-w must be in 1..%u (N of ring \"%s\")", info.replicas, info.name);
    fprintf(b->out, "# ring \"%s\": %zu nodes (", info.name, info.n_nodes);
    for (size_t i = 0; i < info.n_nodes; i++)
        fprintf(b->out, "%s%s %s:%u", i ? ", " : "", info.nodes[i].id, info.nodes[i].host,
                info.nodes[i].client_port);
    fprintf(b->out, "), Q %u, N %u, ring defaults R %u W %u; this run R %u W %u\n",
            info.partitions, info.replicas, info.read_quorum, info.write_quorum, eff_r(b),
            eff_w(b));
}

static void print_settings(const struct bench *b)
{
    const struct bench_cfg *cfg = &b->cfg;
    char dist[64];
    if (cfg->dist == DIST_ZIPFIAN)
        snprintf(dist, sizeof dist, "zipfian theta %.2f", ZIPF_THETA);
    else
        snprintf(dist, sizeof dist, "uniform");
    char clients[160];
    if (b->async)
        snprintf(clients, sizeof clients,
                 "%u clients x %u in flight (asynchronous API, %u event-loop thread%s)",
                 cfg->clients, cfg->pipeline, cfg->threads, cfg->threads == 1 ? "" : "s");
    else
        snprintf(clients, sizeof clients,
                 "%u clients (threads, one ringkv_client each, blocking calls)", cfg->clients);
    fprintf(b->out,
            "# workload %s (%.1f%% writes), %s, %" PRIu64 " keys x %d bytes (%s), %u-byte "
            "values, warmup %u s, measured %u s, prng seed 0x%" PRIx64 "\n",
            wl_defs[cfg->wl].name, wl_defs[cfg->wl].write_permille / 10.0, clients, cfg->keys,
            KEY_BYTES, dist, cfg->value_bytes, cfg->warmup_s, cfg->duration_s, cfg->seed);
    fprintf(b->out,
            "# writes: key k is written only by request slot k %% %u (one in flight at a time), "
            "always with the context of its last put of k (no siblings from the benchmark); "
            "reads pick any key\n"
            "# latency: per request, CLOCK_MONOTONIC %s, successful requests only; log-linear "
            "histogram, within 0.4%%\n",
            b->n_lanes,
            b->async ? "from before ringkv_get_async/ringkv_put_async to its callback"
                     : "around ringkv_get/ringkv_put");
}

/* ---- options ---- */

enum {
    OPT_WORKLOAD = 256,
    OPT_KEYS,
    OPT_DIST,
    OPT_VALUE,
    OPT_CLIENTS,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_PRELOAD,
    OPT_CSV,
    OPT_PRNG_SEED,
    OPT_RESP,
    OPT_PIPELINE,
    OPT_WAIT,
    OPT_THREADS,
};

static const struct option cli_options[] = {
    {.name = "config", .has_arg = required_argument, .val = 'c'},
    {.name = "seed", .has_arg = required_argument, .val = 's'},
    {.name = "workload", .has_arg = required_argument, .val = OPT_WORKLOAD},
    {.name = "keys", .has_arg = required_argument, .val = OPT_KEYS},
    {.name = "dist", .has_arg = required_argument, .val = OPT_DIST},
    {.name = "value", .has_arg = required_argument, .val = OPT_VALUE},
    {.name = "clients", .has_arg = required_argument, .val = OPT_CLIENTS},
    {.name = "duration", .has_arg = required_argument, .val = OPT_DURATION},
    {.name = "warmup", .has_arg = required_argument, .val = OPT_WARMUP},
    {.name = "preload", .has_arg = no_argument, .val = OPT_PRELOAD},
    {.name = "csv", .has_arg = no_argument, .val = OPT_CSV},
    {.name = "prng-seed", .has_arg = required_argument, .val = OPT_PRNG_SEED},
    {.name = "resp", .has_arg = required_argument, .val = OPT_RESP},
    {.name = "pipeline", .has_arg = required_argument, .val = OPT_PIPELINE},
    {.name = "wait", .has_arg = required_argument, .val = OPT_WAIT},
    {.name = "threads", .has_arg = required_argument, .val = OPT_THREADS},
    {.name = "help", .has_arg = no_argument, .val = 'h'},
    {.name = NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringkv-bench [options]\n"
            "Drives a running ring through libringkv, or a Redis-protocol server (ringkv's\n"
            "resp_port, Redis) with --resp, and prints throughput and latency.\n"
            "  -c, --config FILE     the cluster file (default %s)\n"
            "  -s, --seed HOST:PORT  a node's client address instead of --config\n"
            "      --resp HOST:PORT[,HOST:PORT...]\n"
            "                        RESP mode: RESP2 over TCP to these addresses instead of\n"
            "                        libringkv; connection i goes to address i %% count\n"
            "      --pipeline N      requests in flight per connection (RESP) or per client\n"
            "                        (libringkv, up to %u) (default 1). libringkv above 1: the\n"
            "                        asynchronous API, clients driven by --threads event loops\n"
            "      --wait N          RESP mode: send WAIT N 0 after each SET; the SET's latency\n"
            "                        runs until WAIT answers (Redis replication)\n"
            "      --threads N       event-loop threads sharing the connections or clients\n"
            "                        (default 1; libringkv: with --pipeline 1 and no --threads,\n"
            "                        one thread per client and blocking calls instead)\n"
            "      --workload W      read (read-only), 95/5, 50/50, write (write-only);\n"
            "                        reads/writes in percent (default 95/5)\n"
            "      --keys N          key space (default %llu)\n"
            "      --dist D          uniform or zipfian (theta %.2f) (default uniform)\n"
            "      --value BYTES     value size (default %u)\n"
            "      --clients N       libringkv: ringkv_clients (connections to each node); RESP:\n"
            "                        connections (default %u)\n"
            "      --duration S      measured seconds (default %u)\n"
            "      --warmup S        seconds run before measuring (default %u)\n"
            "  -r N, -w N            read / write quorum (default: the ring's; libringkv only)\n"
            "      --preload         write every key once before measuring\n"
            "      --prng-seed N     seed of every random choice (default 0x%llx)\n"
            "      --csv             print one CSV line on stdout (the report goes to stderr):\n"
            "                        workload,dist,clients,keys,value_bytes,r,w,seconds,\n"
            "                        ops,ops_per_s,p50_us,p99_us,p999_us,\n"
            "                        read_ops,read_ops_per_s,read_p50_us,read_p99_us,read_p999_us,\n"
            "                        write_ops,write_ops_per_s,write_p50_us,write_p99_us,"
            "write_p999_us,\n"
            "                        errors,reads_not_found,reads_with_siblings,\n"
            "                        proto,pipeline,wait\n"
            "                        (proto ringkv or resp; r and w 0 in RESP mode: the server's;\n"
            "                        latencies in microseconds)\n"
            "  -h, --help\n"
            "Exit status: 0; 1 if more than 1%% of ops failed, or on a setup error; 2 bad "
            "usage.\n",
            DEFAULT_CONFIG, PIPELINE_MAX, DEFAULT_KEYS, ZIPF_THETA, DEFAULT_VALUE_BYTES, DEFAULT_CLIENTS,
            DEFAULT_DURATION_S, DEFAULT_WARMUP_S, DEFAULT_SEED);
}

static void usage_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ringkv-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *opt, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0' || *s == '-' || v < min || v > max)
        usage_die("%s: expected a number in %" PRIu64 "..%" PRIu64 ", got \"%s\"", opt, min,
                  max, s);
    return v;
}

static enum wl_id parse_workload(const char *s)
{
    for (int i = 0; i < WL_COUNT; i++)
        if (strcmp(s, wl_defs[i].name) == 0 || strcmp(s, wl_defs[i].alias) == 0)
            return (enum wl_id)i;
    usage_die("--workload: unknown workload \"%s\"", s);
}

static enum dist parse_dist(const char *s)
{
    if (strcmp(s, "uniform") == 0)
        return DIST_UNIFORM;
    if (strcmp(s, "zipfian") == 0 || strcmp(s, "zipf") == 0)
        return DIST_ZIPFIAN;
    usage_die("--dist: expected uniform or zipfian, got \"%s\"", s);
}

static void cfg_option(struct bench_cfg *cfg, int c, const char *arg)
{
    switch (c) {
    case 'c': cfg->config_path = arg; break;
    case 's': cfg->seeds = arg; break;
    case 'r': cfg->r = (uint32_t)parse_u64(arg, "-r", 1, 255); break;
    case 'w': cfg->w = (uint32_t)parse_u64(arg, "-w", 1, 255); break;
    case OPT_WORKLOAD: cfg->wl = parse_workload(arg); break;
    case OPT_KEYS: cfg->keys = parse_u64(arg, "--keys", 1, KEYS_MAX); break;
    case OPT_DIST: cfg->dist = parse_dist(arg); break;
    case OPT_VALUE:
        cfg->value_bytes = (uint32_t)parse_u64(arg, "--value", 0, VALUE_BYTES_MAX);
        break;
    case OPT_CLIENTS: cfg->clients = (uint32_t)parse_u64(arg, "--clients", 1, CLIENTS_MAX); break;
    case OPT_DURATION:
        cfg->duration_s = (uint32_t)parse_u64(arg, "--duration", 1, DURATION_MAX_S);
        break;
    case OPT_WARMUP:
        cfg->warmup_s = (uint32_t)parse_u64(arg, "--warmup", 0, DURATION_MAX_S);
        break;
    case OPT_PRELOAD: cfg->preload = true; break;
    case OPT_CSV: cfg->csv = true; break;
    case OPT_PRNG_SEED: cfg->seed = parse_u64(arg, "--prng-seed", 0, UINT64_MAX); break;
    case OPT_RESP: {
        char err[ERRMSG_BYTES];
        if (!bench_addrs_parse(cfg, arg, err, sizeof err))
            usage_die("--resp: %s", err);
        break;
    }
    case OPT_PIPELINE:
        cfg->pipeline = (uint32_t)parse_u64(arg, "--pipeline", 1, PIPELINE_MAX);
        break;
    case OPT_WAIT:
        cfg->wait_replicas = (uint32_t)parse_u64(arg, "--wait", 1, WAIT_REPLICAS_MAX);
        break;
    case OPT_THREADS: cfg->threads = (uint32_t)parse_u64(arg, "--threads", 1, THREADS_MAX); break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
}

static void cfg_parse(struct bench_cfg *cfg, int argc, char **argv)
{
    *cfg = (struct bench_cfg){
        .config_path = DEFAULT_CONFIG,
        .wl = WL_95_5,
        .dist = DIST_UNIFORM,
        .keys = DEFAULT_KEYS,
        .value_bytes = DEFAULT_VALUE_BYTES,
        .clients = DEFAULT_CLIENTS,
        .duration_s = DEFAULT_DURATION_S,
        .warmup_s = DEFAULT_WARMUP_S,
        .seed = DEFAULT_SEED,
        .pipeline = 1,
    };
    int c;
    bool ringkv_only = false; /* an option of the libringkv mode was given */
    while ((c = getopt_long(argc, argv, "c:s:r:w:h", cli_options, NULL)) != -1) {
        ringkv_only |= c == 'c' || c == 's' || c == 'r' || c == 'w';
        cfg_option(cfg, c, optarg);
    }
    if (optind < argc)
        usage_die("unexpected argument \"%s\"", argv[optind]);
    if (cfg->n_addrs > 0) {
        if (ringkv_only)
            usage_die("--config, --seed, -r and -w are for libringkv; with --resp the server "
                      "decides (ringkv's RESP endpoint uses the ring's R and W)");
        if (cfg->threads == 0)
            cfg->threads = 1;
        if (cfg->threads > cfg->clients)
            usage_die("--threads (%u) must be at most --clients (%u)", cfg->threads,
                      cfg->clients);
        return;
    }
    if (cfg->wait_replicas)
        usage_die("--wait is for the RESP mode (--resp); libringkv waits for W replicas (-w)");
    if (cfg->pipeline > 1 && cfg->threads == 0)
        cfg->threads = 1; /* asynchronous: event loops */
    if (cfg->threads > cfg->clients)
        usage_die("--threads (%u) must be at most --clients (%u)", cfg->threads, cfg->clients);
    if (cfg->keys < (uint64_t)cfg->clients * cfg->pipeline)
        usage_die("--keys (%" PRIu64 ") must be at least --clients x --pipeline (%" PRIu64
                  "): each request slot writes keys of its own",
                  cfg->keys, (uint64_t)cfg->clients * cfg->pipeline);
}

/* ---- main ---- */

static void bench_init(struct bench *b)
{
    uint64_t rng = b->cfg.seed;
    b->pool = malloc((size_t)VALUE_POOL_SPAN + b->cfg.value_bytes);
    if (b->pool == NULL)
        bench_die("out of memory");
    for (size_t i = 0; i < (size_t)VALUE_POOL_SPAN + b->cfg.value_bytes; i++)
        b->pool[i] = (uint8_t)rng_next(&rng);
    if (b->cfg.dist == DIST_ZIPFIAN)
        zipf_init(&b->zipf, b->cfg.keys, ZIPF_THETA);
    b->out = b->cfg.csv ? stderr : stdout;
    lanes_alloc(b);
}

/* Prints the results; returns the exit status. */
static int bench_done(struct bench *b, const struct run_times *rt)
{
    struct tally *t = calloc(1, sizeof *t);
    if (t == NULL)
        bench_die("out of memory");
    for (uint32_t i = 0; i < b->n_loops; i++)
        tally_merge(t, &b->loops[i].t);
    struct report_info ri = {.proto = "ringkv", .r = eff_r(b), .w = eff_w(b)};
    int status = bench_report(&b->cfg, b->out, &ri, t, rt, ringkv_strerror);
    free(t);
    return status;
}

int main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    if (b == NULL)
        bench_die("out of memory");
    cfg_parse(&b->cfg, argc, argv);
    b->async = b->cfg.threads > 0;
    if (b->cfg.n_addrs > 0) {
        int rc = resp_bench_main(&b->cfg, b->cfg.csv ? stderr : stdout);
        free(b);
        return rc;
    }
    bench_init(b);
    b->zctx = zmq_ctx_new();
    if (b->zctx == NULL)
        bench_die("zmq_ctx_new failed");
    struct ringkv_client *probe;
    char msg[ERRMSG_BYTES];
    if (client_connect(b, &probe, msg, sizeof msg) != RINGKV_OK)
        bench_die("connect: %s", msg);
    print_machine(b->out);
    print_ring(b, probe);
    print_settings(b);
    fflush(b->out);
    bench_setup(b);
    fflush(b->out);
    struct node_snap before[NODES_MAX] = {0}, after[NODES_MAX] = {0};
    nodes_snapshot(probe, before, NODES_MAX);
    struct run_times rt = {0};
    bench_run(b, &rt);
    nodes_snapshot(probe, after, NODES_MAX);
    print_nodes(b, probe, before, after, (double)rt.measure_ns / 1e9);
    int status = bench_done(b, &rt);
    ringkv_close(probe);
    lanes_free(b);
    zmq_ctx_term(b->zctx);
    free(b->pool);
    free(b);
    return status;
}
