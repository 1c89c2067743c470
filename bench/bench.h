/*
 * bench.h: what the parts of ringkv-bench share. ringkv_bench.c holds the
 * options, main and the libringkv mode (bench_lib.h its internals,
 * bench_async.c its asynchronous loop); bench_resp.c the RESP mode (its own
 * Redis-protocol client over non-blocking sockets); bench_util.c the
 * latency histograms, the zipfian generator and the report; resp_reply.c
 * a sans-I/O parser of RESP2 replies.
 *
 * Both modes run the same workloads (a read/write mix over KEY_BYTES-digit
 * keys, uniform or zipfian, values cut from one seeded pool) and print the
 * same table and CSV line, so their numbers compare directly. Nothing here
 * is process-wide mutable state: each mode keeps its state in a struct of
 * its own, and the tables below are const.
 */
#ifndef RKV_BENCH_H
#define RKV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define KEY_BYTES         16 /* keys are 16 decimal digits */
#define CLIENTS_MAX       4096u
#define KEYS_MAX          100000000ull /* the context cache holds one slot per key */
#define VALUE_BYTES_MAX   (1u << 20)   /* the default limits.value_bytes_max */
#define DURATION_MAX_S    86400u
#define VALUE_POOL_SPAN   (1u << 16) /* a power of two: values start anywhere in it */
#define ZIPF_THETA        0.99
#define FAIL_PERMILLE_MAX 10u /* more failed ops than this (1%) fails the run */
#define ERR_CODES         32  /* error counters by code; larger codes share the last */
#define ERRMSG_BYTES      240
#define PIPELINE_MAX      1024u /* in flight per RESP connection or libringkv client */
#define WAIT_REPLICAS_MAX 64u
#define THREADS_MAX       64u /* event-loop threads */
#define ADDRS_MAX         64u /* --resp addresses */

#define HIST_SUB_BITS 8
#define HIST_SUB      (1u << HIST_SUB_BITS) /* values below are exact */
#define HIST_HALF     (HIST_SUB / 2)        /* buckets per power of two above */
#define HIST_TOP_BITS 36                    /* ~68.7 s: longer latencies are clamped */
#define HIST_BUCKETS  (HIST_SUB + (HIST_TOP_BITS - HIST_SUB_BITS) * HIST_HALF)

/* Prints "ringkv-bench: " and the message on stderr and exits with status 1
 * (a setup error). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- time, randomness, keys ---- */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps until CLOCK_MONOTONIC reaches t_ns. */
void sleep_until_ns(uint64_t t_ns);

/* CPU time of this process (every thread), in seconds. */
void cpu_times(double *user_s, double *sys_s);

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

/* The KEY_BYTES decimal digits of v, no terminator. */
static inline void key_format(char *key, uint64_t v)
{
    for (int i = KEY_BYTES - 1; i >= 0; i--) {
        key[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* ---- zipfian ranks (Gray et al.; see bench_util.c) ---- */

struct zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow_theta;
};

void zipf_init(struct zipf *z, uint64_t n, double theta);
/* A rank in [0, n); rank 0 is the most frequent. */
uint64_t zipf_next(const struct zipf *z, uint64_t *rng);

/* ---- latency histograms (log-linear; see bench_util.c) ---- */

struct hist {
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t buckets[HIST_BUCKETS];
};

uint32_t hist_index(uint64_t v);

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

void hist_merge(struct hist *into, const struct hist *h);
/* Nearest-rank percentile (per mille, or per 10^4 with scale 10000), in µs. */
double hist_percentile_us(const struct hist *h, uint64_t part, uint64_t scale);

/* ---- settings ---- */

enum wl_id { WL_READ, WL_95_5, WL_50_50, WL_WRITE, WL_COUNT };

struct wl_def {
    const char *name;
    const char *alias; /* also accepted by --workload */
    unsigned write_permille;
};

extern const struct wl_def wl_defs[WL_COUNT];

enum dist { DIST_UNIFORM, DIST_ZIPFIAN };

/* One --resp address, copied out of the option's text. */
struct bench_addr {
    char host[256];
    char port[8];
};

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
    uint32_t pipeline; /* requests in flight per connection or client; 1: none */
    /* event-loop threads. RESP: 0 until parsed, then at least 1. libringkv:
     * 0 for one blocking thread per client, else the asynchronous API */
    uint32_t threads;
    /* RESP mode (n_addrs > 0) */
    struct bench_addr addrs[ADDRS_MAX];
    uint32_t n_addrs;
    uint32_t wait_replicas; /* 0: no WAIT; else WAIT n 0 after each SET */
};

/* ---- what the clients saw ---- */

/* Error codes of the RESP mode (the libringkv mode uses ringkv's codes). */
enum resp_err {
    RESP_E_REPLY = 1,      /* an error reply (-ERR ...) */
    RESP_E_TYPE = 2,       /* a reply of a type the command does not answer */
    RESP_E_WAIT = 3,       /* WAIT counted fewer replicas than asked */
    RESP_E_CONN = 4,       /* the connection failed with the op in flight */
    RESP_E_UNANSWERED = 5, /* no reply by the end of the drain (DRAIN_MS) */
    RESP_E_COUNT
};

const char *resp_err_name(int code);

/* What one thread saw; merged after the threads are joined. */
struct tally {
    struct hist read, write;              /* successful ops */
    uint64_t errors[ERR_CODES];           /* failed ops by code */
    char errmsg[ERR_CODES][ERRMSG_BYTES]; /* the first message of each code */
    uint64_t not_found;                   /* reads that found no live value */
    uint64_t multi_sibling_reads;         /* reads that returned more than one value */
    uint64_t siblings_max;
    uint64_t bad_values;  /* values of another size than --value */
    uint64_t ctx_fetches; /* unmeasured reads for a lost context */
};

void tally_error(struct tally *t, int code, const char *msg);
void tally_merge(struct tally *into, const struct tally *t);
uint64_t tally_failed(const struct tally *t);

enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

/* ---- the report ---- */

struct run_times {
    uint64_t measure_ns;
    double user_s, sys_s; /* this process's CPU during the measured window */
};

/* What the CSV line says about the run besides the tally. */
struct report_info {
    const char *proto; /* "ringkv" or "resp" */
    uint32_t r, w;     /* the quorums used; 0: the server's */
};

void print_machine(FILE *out);
/* Prints the table, the outcomes and (with cfg->csv) the CSV line on
 * stdout; returns the exit status (see ringkv_bench.c). err_name names an
 * error code of t. */
int bench_report(const struct bench_cfg *cfg, FILE *out, const struct report_info *ri,
                 const struct tally *t, const struct run_times *rt,
                 const char *(*err_name)(int code));

/* ---- RESP replies (resp_reply.c), sans-I/O ---- */

enum rreply_type {
    RR_MORE = 0, /* incomplete: read more and parse again from the same start */
    RR_STATUS,   /* +text */
    RR_ERROR,    /* -text */
    RR_INT,      /* :n */
    RR_BULK,     /* $n: n bytes */
    RR_NIL,      /* $-1 or *-1 */
    RR_ARRAY,    /* *n: n replies, skipped whole (their bytes are in consumed) */
    RR_BAD,      /* not RESP2, or past a bound: the stream cannot be framed */
};

#define RREPLY_DEPTH_MAX 8           /* nested arrays */
#define RREPLY_LINE_MAX  (64u << 10) /* a status or error line */

/* One reply; str points into the parsed buffer (borrowed), valid while it is. */
struct rreply {
    enum rreply_type type;
    const uint8_t *str; /* status, error: the text; bulk: the bytes */
    size_t len;
    int64_t num;     /* integer; array: element count; bulk: len */
    size_t consumed; /* bytes of the whole reply */
};

/* Parses the reply at the start of buf[0..len) into *out. A reply that is
 * not complete yet is RR_MORE (parse it again, from the same start, once
 * more bytes arrived: the cost is its header lines, bulk bodies are skipped
 * by length). bulk_max bounds a bulk string's length. */
enum rreply_type rreply_parse(const uint8_t *buf, size_t len, size_t bulk_max, struct rreply *out);

/* ---- the RESP mode (bench_resp.c) ---- */

/* Parses "HOST:PORT[,HOST:PORT...]" ([v6]:port too) into cfg->addrs;
 * returns false with a message in err. */
bool bench_addrs_parse(struct bench_cfg *cfg, const char *spec, char *err, size_t err_len);
/* Runs the whole RESP-mode benchmark (settings, setup, run, report) and
 * returns the exit status. */
int resp_bench_main(const struct bench_cfg *cfg, FILE *out);

#endif
