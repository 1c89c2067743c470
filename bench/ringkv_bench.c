/*
 * ringkv_bench.c: ringkv-bench, a load generator for a running ring. It
 * drives the ring through libringkv only (ringkv.h), from --clients threads
 * with one struct ringkv_client each, and prints what the clients saw:
 * ops/s and p50/p99/p99.9 latency of reads, writes and both, errors by code,
 * and the settings. --csv prints one machine-readable line instead (the
 * report then goes to stderr); bench/ring-bench.sh uses it.
 *
 * Design. Every client thread runs a closed loop: pick an op (a write with
 * the workload's probability), pick a key (uniform, or zipfian with theta
 * 0.99), call ringkv_get or ringkv_put, time the call with CLOCK_MONOTONIC
 * and record it in the thread's own histograms; the main thread only moves
 * a shared phase (warmup, measure, stop) and sleeps. Nothing is shared
 * between threads while they run except that phase and read-only settings;
 * the histograms are merged after the threads are joined. Every random draw
 * comes from a splitmix64 generator seeded from --prng-seed (and the thread
 * number), never from the clock.
 *
 * Writes and contexts. A put without a context on a key that exists adds a
 * sibling, so a benchmark that wrote blindly would pile siblings up. Here
 * key k is written only by the thread k % clients (its owner), which keeps,
 * per owned key, the context returned by its last put and passes it with
 * the next put: every put supersedes exactly the previous one. The cache is
 * one small buffer per key, grown only when a context is longer than any
 * before (so the total is bounded by keys x the largest context). Before
 * measuring, the contexts are filled: --preload reads and then writes every
 * key (the read's context makes the write supersede whatever the ring held
 * already); without --preload a workload with writes reads every key once
 * ("priming"). Both run on max(clients, SETUP_CLIENTS_MIN) connections of
 * their own. A put that fails leaves its key's context unknown (the put may
 * have been applied); the owner then reads the key again, unmeasured, before
 * its next put (a "context fetch"). Contexts from measured reads are not
 * cached: with R + W <= N a read may miss the owner's last put. Reads pick
 * any key. For zipfian writes the drawn key k is moved to the key its thread
 * owns in k's block of `clients` consecutive keys, which keeps the skew but
 * never shares a key between writers.
 *
 * Zipfian. The method of Gray et al., "Quickly generating billion-record
 * synthetic databases" (SIGMOD 1994): zeta(n, theta) is summed once (O(n)
 * at start), then each draw is O(1): one uniform u, and rank
 * n * (eta * u - eta + 1)^(1 / (1 - theta)) past the two closed-form first
 * ranks. Rank r is key r, so the hottest keys are 0, 1, 2, ...; placement
 * on the ring hashes the key, so hot keys still spread over partitions.
 *
 * Latency. Each call is timed from just before to just after the library
 * call; a failed call is counted by its code and kept out of the latency
 * columns. Histograms are log-linear (HIST_SUB_BITS bits of mantissa): every
 * bucket is at most 1/128 of its value wide and is reported at its middle,
 * so a percentile is within 0.4% (exact below 256 ns). ops/s counts the
 * successful ops that started in the measured window, over its length.
 *
 * Exit status: 0; 1 if more than 1% of the measured ops (or of the setup
 * ops) failed, if no op succeeded, or on a setup error; 2 on bad usage.
 */
#include <zmq.h>

#include "client/ringkv.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define KEY_BYTES         16 /* keys are 16 decimal digits */
#define CLIENTS_MAX       4096u
#define KEYS_MAX          100000000ull /* the context cache holds one slot per key */
#define VALUE_BYTES_MAX   (1u << 20)   /* the default limits.value_bytes_max */
#define DURATION_MAX_S    86400u
#define VALUE_POOL_SPAN   (1u << 16) /* a power of two: values start anywhere in it */
#define SETUP_CLIENTS_MIN 16u        /* connections that preload or prime, at least */
#define ZIPF_THETA        0.99
#define FAIL_PERMILLE_MAX 10u /* more failed ops than this (1%) fails the run */
#define ERR_CODES         32  /* error counters by code; larger codes share the last */
#define ERRMSG_BYTES      240
#define CTX_BYTES_MIN     64 /* first allocation of a context slot */
#define NODES_MAX         64 /* nodes whose statistics are shown */

#define HIST_SUB_BITS 8
#define HIST_SUB      (1u << HIST_SUB_BITS) /* values below are exact */
#define HIST_HALF     (HIST_SUB / 2)        /* buckets per power of two above */
#define HIST_TOP_BITS 36                    /* ~68.7 s: longer latencies are clamped */
#define HIST_BUCKETS  (HIST_SUB + (HIST_TOP_BITS - HIST_SUB_BITS) * HIST_HALF)

#define DEFAULT_CONFIG      "cluster.toml"
#define DEFAULT_KEYS        100000ull
#define DEFAULT_VALUE_BYTES 100u
#define DEFAULT_CLIENTS     50u
#define DEFAULT_DURATION_S  10u
#define DEFAULT_WARMUP_S    1u
#define DEFAULT_SEED        0x72696e676b76ull /* "ringkv" */

static void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ringkv-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- time, randomness, keys ---- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps until CLOCK_MONOTONIC reaches t_ns. */
static void sleep_until_ns(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u),
                          .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        continue;
}

/* splitmix64: small, fast, and good enough to pick keys. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (multiply-shift; the bias is below 2^-32). */
static inline uint64_t rng_below(uint64_t *state, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(state) * n) >> 64);
}

/* Uniform in [0, 1), 53 bits. */
static inline double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

/* The 16 decimal digits of v, no terminator. */
static inline void key_format(char *key, uint64_t v)
{
    for (int i = KEY_BYTES - 1; i >= 0; i--) {
        key[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* ---- zipfian ranks (Gray et al.; see the file comment) ---- */

struct zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow_theta;
};

static void zipf_init(struct zipf *z, uint64_t n, double theta)
{
    double zetan = 0, zeta2 = 1.0 + pow(0.5, theta);
    for (uint64_t i = 1; i <= n; i++)
        zetan += pow((double)i, -theta);
    *z = (struct zipf){
        .n = n,
        .theta = theta,
        .alpha = 1.0 / (1.0 - theta),
        .zetan = zetan,
        .eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan),
        .half_pow_theta = pow(0.5, theta),
    };
}

/* A rank in [0, n); rank 0 is the most frequent. */
static uint64_t zipf_next(const struct zipf *z, uint64_t *rng)
{
    double u = rng_unit(rng);
    double uz = u * z->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + z->half_pow_theta || z->n < 3)
        return z->n > 1 ? 1 : 0;
    uint64_t r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return r < z->n ? r : z->n - 1;
}

/* ---- latency histograms (log-linear; see the file comment) ---- */

struct hist {
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t buckets[HIST_BUCKETS];
};

static uint32_t hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (uint32_t)v;
    if (v >= (1ull << HIST_TOP_BITS))
        v = (1ull << HIST_TOP_BITS) - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* HIST_SUB_BITS .. HIST_TOP_BITS-1 */
    unsigned shift = e - (HIST_SUB_BITS - 1);
    uint64_t m = v >> shift; /* HIST_HALF .. HIST_SUB-1 */
    return HIST_SUB + (e - HIST_SUB_BITS) * HIST_HALF + (uint32_t)(m - HIST_HALF);
}

/* The middle of bucket i, in ns. */
static double hist_bucket_mid(uint32_t i)
{
    if (i < HIST_SUB)
        return i;
    uint32_t j = i - HIST_SUB;
    unsigned e = HIST_SUB_BITS + j / HIST_HALF;
    unsigned shift = e - (HIST_SUB_BITS - 1);
    uint64_t lower = (uint64_t)(HIST_HALF + j % HIST_HALF) << shift;
    return (double)lower + (double)(1ull << shift) / 2.0;
}

static inline void hist_record(struct hist *h, uint64_t ns)
{
    if (h->count == 0 || ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->count++;
    h->sum_ns += ns;
    h->buckets[hist_index(ns)]++;
}

static void hist_merge(struct hist *into, const struct hist *h)
{
    if (h->count == 0)
        return;
    if (into->count == 0 || h->min_ns < into->min_ns)
        into->min_ns = h->min_ns;
    if (h->max_ns > into->max_ns)
        into->max_ns = h->max_ns;
    into->count += h->count;
    into->sum_ns += h->sum_ns;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        into->buckets[i] += h->buckets[i];
}

/* Nearest-rank percentile (per mille, or per 10^4 with scale 10000), in µs. */
static double hist_percentile_us(const struct hist *h, uint64_t part, uint64_t scale)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (h->count * part + scale - 1) / scale, seen = 0;
    if (rank == 0)
        rank = 1;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            double v = hist_bucket_mid(i);
            v = v < (double)h->min_ns ? (double)h->min_ns : v;
            v = v > (double)h->max_ns ? (double)h->max_ns : v;
            return v / 1e3;
        }
    }
    return h->max_ns / 1e3;
}

/* ---- settings ---- */

enum wl_id { WL_READ, WL_95_5, WL_50_50, WL_WRITE, WL_COUNT };

struct wl_def {
    const char *name;
    const char *alias; /* also accepted by --workload */
    unsigned write_permille;
};

static const struct wl_def wl_defs[WL_COUNT] = {
    [WL_READ] = {.name = "read", .alias = "read-only", .write_permille = 0},
    [WL_95_5] = {.name = "95/5", .alias = "95-5", .write_permille = 50},
    [WL_50_50] = {.name = "50/50", .alias = "50-50", .write_permille = 500},
    [WL_WRITE] = {.name = "write", .alias = "write-only", .write_permille = 1000},
};

enum dist { DIST_UNIFORM, DIST_ZIPFIAN };

struct bench_cfg {
    const char *config_path; /* used when seeds is NULL */
    const char *seeds;
    enum wl_id wl;
    enum dist dist;
    uint64_t keys;
    uint32_t value_bytes;
    uint32_t clients;
    uint32_t duration_s, warmup_s;
    uint32_t r, w; /* 0: the ring's */
    bool preload;
    bool csv;
    uint64_t seed;
};

/* ---- per-thread state ---- */

/* What one thread saw; merged after the threads are joined. */
struct tally {
    struct hist read, write;            /* successful ops */
    uint64_t errors[ERR_CODES];         /* failed ops by code */
    char errmsg[ERR_CODES][ERRMSG_BYTES]; /* the first message of each code */
    uint64_t not_found;                 /* reads that found no live value */
    uint64_t multi_sibling_reads;       /* reads that returned more than one value */
    uint64_t siblings_max;
    uint64_t bad_values;                /* values of another size than --value */
    uint64_t ctx_fetches;               /* unmeasured reads for a lost context */
};

/* The context of an owned key, from its last put (or a setup read). */
struct ctx_slot {
    uint8_t *data;
    uint32_t len, cap;
    bool valid;
};

enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

struct bench;

/* One client thread of the measured run. */
struct worker {
    struct bench *b;
    uint32_t id;
    pthread_t thread;
    bool started;
    struct ringkv_client *c;
    int connect_rc;
    char connect_msg[ERRMSG_BYTES];
    uint64_t rng;
    struct ctx_slot *ctx; /* owned keys id, id + clients, ...: slot key / clients */
    uint64_t n_ctx;
    struct tally t;
};

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

struct bench {
    struct bench_cfg cfg;
    struct zipf zipf;
    uint8_t *pool; /* VALUE_POOL_SPAN + value_bytes seeded bytes */
    struct worker *workers;
    pthread_barrier_t ready, go;
    atomic_int phase;
    atomic_uint_fast64_t setup_failed; /* keys whose setup failed, over all threads */
    FILE *out; /* the report: stdout, or stderr with --csv */
    void *zctx; /* one ZeroMQ context shared by every client (one I/O thread) */
    uint32_t ring_r, ring_w, ring_n; /* the ring's defaults */
};

static uint32_t eff_r(const struct bench *b)
{
    return b->cfg.r ? b->cfg.r : b->ring_r;
}

static uint32_t eff_w(const struct bench *b)
{
    return b->cfg.w ? b->cfg.w : b->ring_w;
}

static void tally_error(struct tally *t, int rc, const char *msg)
{
    int slot = rc > 0 && rc < ERR_CODES ? rc : ERR_CODES - 1;
    if (t->errors[slot]++ == 0)
        snprintf(t->errmsg[slot], sizeof t->errmsg[slot], "%s", msg);
}

static void tally_merge(struct tally *into, const struct tally *t)
{
    hist_merge(&into->read, &t->read);
    hist_merge(&into->write, &t->write);
    for (int i = 0; i < ERR_CODES; i++) {
        if (t->errors[i] && into->errors[i] == 0)
            memcpy(into->errmsg[i], t->errmsg[i], sizeof into->errmsg[i]);
        into->errors[i] += t->errors[i];
    }
    into->not_found += t->not_found;
    into->multi_sibling_reads += t->multi_sibling_reads;
    if (t->siblings_max > into->siblings_max)
        into->siblings_max = t->siblings_max;
    into->bad_values += t->bad_values;
    into->ctx_fetches += t->ctx_fetches;
}

static uint64_t tally_failed(const struct tally *t)
{
    uint64_t n = 0;
    for (int i = 0; i < ERR_CODES; i++)
        n += t->errors[i];
    return n;
}

/* Keeps a copy of a context; on failure the slot is left invalid. */
static void ctx_store(struct ctx_slot *s, const void *ctx, size_t len)
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

/* The slot of key k in its owner's cache. */
static struct ctx_slot *ctx_slot_of(struct bench *b, uint64_t k)
{
    struct worker *owner = &b->workers[k % b->cfg.clients];
    return &owner->ctx[k / b->cfg.clients];
}

/* ---- operations ---- */

/* Counts a read's outcome (a found value or none; not an error). */
static void tally_read_result(struct tally *t, const struct ringkv_result *res, uint32_t vbytes)
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

static uint64_t pick_key(struct worker *w)
{
    struct bench *b = w->b;
    if (b->cfg.dist == DIST_ZIPFIAN)
        return zipf_next(&b->zipf, &w->rng);
    return rng_below(&w->rng, b->cfg.keys);
}

/* The key this thread owns in the block of key k (see the file comment). */
static uint64_t owned_key(const struct worker *w, uint64_t k)
{
    uint32_t clients = w->b->cfg.clients;
    uint64_t own = k - k % clients + w->id;
    return own < w->b->cfg.keys ? own : own - clients; /* keys >= clients */
}

/* A write of an owned key: first an unmeasured read if its context is lost. */
static void worker_write(struct worker *w, uint64_t k, bool measured)
{
    struct ctx_slot *slot = &w->ctx[k / w->b->cfg.clients];
    struct tally *t = measured ? &w->t : NULL;
    if (!slot->valid) {
        if (measured)
            w->t.ctx_fetches++;
        int rc = op_get(w->b, w->c, k, NULL, slot);
        if (rc != RINGKV_OK && rc != RINGKV_ENOTFOUND) {
            if (t) /* the write cannot go ahead without a context */
                tally_error(t, rc, ringkv_errmsg(w->c));
            return;
        }
    }
    op_put(w->b, w->c, k, &w->rng, t, slot);
}

static void worker_op(struct worker *w, bool measured)
{
    bool write = rng_below(&w->rng, 1000) < wl_defs[w->b->cfg.wl].write_permille;
    uint64_t k = pick_key(w);
    if (write)
        worker_write(w, owned_key(w, k), measured);
    else
        op_get(w->b, w->c, k, measured ? &w->t : NULL, NULL);
}

/* ---- threads ---- */

static int client_connect(const struct bench *b, struct ringkv_client **c, char *msg,
                          size_t msg_len)
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

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    w->connect_rc = client_connect(b, &w->c, w->connect_msg, sizeof w->connect_msg);
    pthread_barrier_wait(&b->ready); /* main checks every connection */
    pthread_barrier_wait(&b->go);
    int ph;
    while ((ph = atomic_load_explicit(&b->phase, memory_order_acquire)) != PH_STOP)
        worker_op(w, ph == PH_MEASURE);
    ringkv_close(w->c);
    w->c = NULL;
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

static void workers_alloc(struct bench *b)
{
    uint32_t n = b->cfg.clients;
    b->workers = calloc(n, sizeof *b->workers);
    if (b->workers == NULL)
        bench_die("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        struct worker *w = &b->workers[i];
        w->b = b;
        w->id = i;
        w->rng = b->cfg.seed ^ (0x9e3779b97f4a7c15ull * (i + 1u));
        w->n_ctx = (b->cfg.keys - i + n - 1) / n;
        w->ctx = calloc(w->n_ctx ? w->n_ctx : 1, sizeof *w->ctx);
        if (w->ctx == NULL)
            bench_die("out of memory");
    }
}

static void workers_free(struct bench *b)
{
    for (uint32_t i = 0; i < b->cfg.clients; i++) {
        struct worker *w = &b->workers[i];
        for (uint64_t j = 0; j < w->n_ctx; j++)
            free(w->ctx[j].data);
        free(w->ctx);
    }
    free(b->workers);
}

/* CPU time of this process (every thread), in seconds. */
static void cpu_times(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

struct run_times {
    uint64_t measure_ns;
    double user_s, sys_s; /* this process's CPU during the measured window */
};

/* Starts the client threads, runs warmup and the measured window, joins. */
static void bench_run(struct bench *b, struct run_times *rt)
{
    uint32_t n = b->cfg.clients;
    if (pthread_barrier_init(&b->ready, NULL, n + 1) != 0 ||
        pthread_barrier_init(&b->go, NULL, n + 1) != 0)
        bench_die("pthread_barrier_init failed");
    atomic_store(&b->phase, PH_WARMUP);
    for (uint32_t i = 0; i < n; i++)
        if (pthread_create(&b->workers[i].thread, NULL, worker_main, &b->workers[i]) != 0)
            bench_die("cannot start client thread %u of %u", i + 1, n);
    pthread_barrier_wait(&b->ready);
    const struct worker *bad = NULL;
    for (uint32_t i = 0; i < n && bad == NULL; i++)
        bad = b->workers[i].connect_rc != RINGKV_OK ? &b->workers[i] : NULL;
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
        pthread_join(b->workers[i].thread, NULL);
    pthread_barrier_destroy(&b->ready);
    pthread_barrier_destroy(&b->go);
    if (bad)
        bench_die("client %u: connect: %s", bad->id + 1, bad->connect_msg);
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

static void read_first_field(const char *path, const char *prefix, char *out, size_t n)
{
    snprintf(out, n, "?");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[512];
    size_t plen = strlen(prefix);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, plen) != 0)
            continue;
        const char *v = strchr(line, ':');
        v = v ? v + 1 : line + plen;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(out, n, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

static void print_machine(FILE *out)
{
    char cpu[128], mem[64], load[64];
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    read_first_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_first_field("/proc/meminfo", "MemTotal", mem, sizeof mem);
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL || fgets(load, sizeof load, f) == NULL)
        snprintf(load, sizeof load, "?");
    load[strcspn(load, "\n")] = '\0';
    if (f)
        fclose(f);
    fprintf(out, "# ringkv-bench: nproc %ld, cpu \"%s\", mem %s, kernel %s, loadavg %s\n",
            sysconf(_SC_NPROCESSORS_ONLN), cpu, mem, u.release, load);
}

/* Reads the ring's defaults into b, checks -r/-w, prints the ring. */
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
    fprintf(b->out,
            "# workload %s (%.1f%% writes), %u clients (threads, one ringkv_client each), "
            "%" PRIu64 " keys x %d bytes (%s), %u-byte values, warmup %u s, measured %u s, "
            "prng seed 0x%" PRIx64 "\n",
            wl_defs[cfg->wl].name, wl_defs[cfg->wl].write_permille / 10.0, cfg->clients,
            cfg->keys, KEY_BYTES, dist, cfg->value_bytes, cfg->warmup_s, cfg->duration_s,
            cfg->seed);
    fprintf(b->out,
            "# writes: key k is written only by client k %% clients, always with the context "
            "of its last put of k (no siblings from the benchmark); reads pick any key\n"
            "# latency: per call, CLOCK_MONOTONIC around ringkv_get/ringkv_put, successful "
            "calls only; log-linear histogram, within 0.4%%\n");
}

static void print_row(FILE *out, const char *op, const struct hist *h, double secs)
{
    if (h->count == 0) {
        fprintf(out, "%-6s %10d %10s %10s %10s %10s %10s %10s\n", op, 0, "-", "-", "-", "-",
                "-", "-");
        return;
    }
    fprintf(out, "%-6s %10" PRIu64 " %10.0f %10.1f %10.1f %10.1f %10.1f %10.1f\n", op,
            h->count, (double)h->count / secs, hist_percentile_us(h, 500, 1000),
            hist_percentile_us(h, 990, 1000), hist_percentile_us(h, 9990, 10000),
            (double)h->sum_ns / (double)h->count / 1e3, h->max_ns / 1e3);
}

static void print_table(FILE *out, const struct tally *t, const struct hist *all, double secs)
{
    fprintf(out, "\n%-6s %10s %10s %10s %10s %10s %10s %10s\n", "op", "ops", "ops/s", "p50 us",
            "p99 us", "p99.9 us", "mean us", "max us");
    print_row(out, "read", &t->read, secs);
    print_row(out, "write", &t->write, secs);
    print_row(out, "all", all, secs);
    fputc('\n', out);
}

static void print_outcomes(FILE *out, const struct tally *t, const struct hist *all)
{
    uint64_t failed = tally_failed(t);
    if (failed == 0)
        fprintf(out, "# errors: none\n");
    for (int i = 0; i < ERR_CODES; i++)
        if (t->errors[i])
            fprintf(out, "# errors: %s: %" PRIu64 " (%.3f%% of ops); first: %s\n",
                    ringkv_strerror(i), t->errors[i],
                    100.0 * (double)t->errors[i] / (double)(all->count + failed), t->errmsg[i]);
    fprintf(out,
            "# reads: %" PRIu64 " found no value, %" PRIu64 " returned more than one sibling "
            "(most %" PRIu64 "), %" PRIu64 " values not %s bytes; writes: %" PRIu64
            " context re-reads after a failed put\n",
            t->not_found, t->multi_sibling_reads, t->siblings_max, t->bad_values, "--value",
            t->ctx_fetches);
}

static void print_hist_csv(FILE *out, const struct hist *h, double secs)
{
    fprintf(out, ",%" PRIu64 ",%.0f,%.1f,%.1f,%.1f", h->count, (double)h->count / secs,
            hist_percentile_us(h, 500, 1000), hist_percentile_us(h, 990, 1000),
            hist_percentile_us(h, 9990, 10000));
}

/* One line; the columns are listed in usage(). */
static void print_csv(const struct bench *b, const struct tally *t, const struct hist *all,
                      double secs)
{
    const struct bench_cfg *cfg = &b->cfg;
    printf("%s,%s,%u,%" PRIu64 ",%u,%u,%u,%.3f", wl_defs[cfg->wl].name,
           cfg->dist == DIST_ZIPFIAN ? "zipfian" : "uniform", cfg->clients, cfg->keys,
           cfg->value_bytes, eff_r(b), eff_w(b), secs);
    print_hist_csv(stdout, all, secs);
    print_hist_csv(stdout, &t->read, secs);
    print_hist_csv(stdout, &t->write, secs);
    printf(",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", tally_failed(t), t->not_found,
           t->multi_sibling_reads);
    fflush(stdout);
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
    {.name = "help", .has_arg = no_argument, .val = 'h'},
    {.name = NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringkv-bench [options]\n"
            "Drives a running ring through libringkv and prints throughput and latency.\n"
            "  -c, --config FILE     the cluster file (default %s)\n"
            "  -s, --seed HOST:PORT  a node's client address instead of --config\n"
            "      --workload W      read (read-only), 95/5, 50/50, write (write-only);\n"
            "                        reads/writes in percent (default 95/5)\n"
            "      --keys N          key space (default %llu)\n"
            "      --dist D          uniform or zipfian (theta %.2f) (default uniform)\n"
            "      --value BYTES     value size (default %u)\n"
            "      --clients N       threads, one ringkv_client each (default %u)\n"
            "      --duration S      measured seconds (default %u)\n"
            "      --warmup S        seconds run before measuring (default %u)\n"
            "  -r N, -w N            read / write quorum (default: the ring's)\n"
            "      --preload         write every key once before measuring\n"
            "      --prng-seed N     seed of every random choice (default 0x%llx)\n"
            "      --csv             print one CSV line on stdout (the report goes to stderr):\n"
            "                        workload,dist,clients,keys,value_bytes,r,w,seconds,\n"
            "                        ops,ops_per_s,p50_us,p99_us,p999_us,\n"
            "                        read_ops,read_ops_per_s,read_p50_us,read_p99_us,read_p999_us,\n"
            "                        write_ops,write_ops_per_s,write_p50_us,write_p99_us,"
            "write_p999_us,\n"
            "                        errors,reads_not_found,reads_with_siblings\n"
            "  -h, --help\n"
            "Exit status: 0; 1 if more than 1%% of ops failed, or on a setup error; 2 bad "
            "usage.\n",
            DEFAULT_CONFIG, DEFAULT_KEYS, ZIPF_THETA, DEFAULT_VALUE_BYTES, DEFAULT_CLIENTS,
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
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:s:r:w:h", cli_options, NULL)) != -1)
        cfg_option(cfg, c, optarg);
    if (optind < argc)
        usage_die("unexpected argument \"%s\"", argv[optind]);
    if (cfg->keys < cfg->clients)
        usage_die("--keys (%" PRIu64 ") must be at least --clients (%u): each client writes "
                  "keys of its own",
                  cfg->keys, cfg->clients);
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
    workers_alloc(b);
}

/* Prints the results; returns the exit status. */
static int bench_report(struct bench *b, const struct run_times *rt)
{
    struct tally *t = calloc(1, sizeof *t);
    struct hist *all = calloc(1, sizeof *all);
    if (t == NULL || all == NULL)
        bench_die("out of memory");
    for (uint32_t i = 0; i < b->cfg.clients; i++)
        tally_merge(t, &b->workers[i].t);
    hist_merge(all, &t->read);
    hist_merge(all, &t->write);
    double secs = (double)rt->measure_ns / 1e9;
    fprintf(b->out, "# this process (client threads, libzmq threads): user %.2f s + sys %.2f s "
            "of CPU in the measured %.2f s = %.0f%% of one core\n",
            rt->user_s, rt->sys_s, secs, 100.0 * (rt->user_s + rt->sys_s) / secs);
    print_table(b->out, t, all, secs);
    print_outcomes(b->out, t, all);
    if (b->cfg.csv)
        print_csv(b, t, all, secs);
    uint64_t failed = tally_failed(t), total = failed + all->count;
    int status = 0;
    if (all->count == 0) {
        fprintf(b->out, "# FAILED: no operation succeeded\n");
        status = 1;
    } else if (failed * 1000 > total * FAIL_PERMILLE_MAX) {
        fprintf(b->out, "# FAILED: %" PRIu64 " of %" PRIu64 " ops failed (more than %u%%)\n",
                failed, total, FAIL_PERMILLE_MAX / 10);
        status = 1;
    }
    free(all);
    free(t);
    return status;
}

int main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    if (b == NULL)
        bench_die("out of memory");
    cfg_parse(&b->cfg, argc, argv);
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
    int status = bench_report(b, &rt);
    ringkv_close(probe);
    workers_free(b);
    zmq_ctx_term(b->zctx);
    free(b->pool);
    free(b);
    return status;
}
