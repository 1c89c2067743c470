/*
 * bench_util.c: the parts of ringkv-bench both modes use: the clock, the
 * zipfian generator, latency histograms, tallies and the report.
 *
 * Zipfian. The method of Gray et al., "Quickly generating billion-record
 * synthetic databases" (SIGMOD 1994): zeta(n, theta) is summed once (O(n)
 * at start), then each draw is O(1): one uniform u, and rank
 * n * (eta * u - eta + 1)^(1 / (1 - theta)) past the two closed-form first
 * ranks. Rank r is key r, so the hottest keys are 0, 1, 2, ...; placement
 * on the ring hashes the key, so hot keys still spread over partitions.
 *
 * Latency. Histograms are log-linear (HIST_SUB_BITS bits of mantissa):
 * every bucket is at most 1/128 of its value wide and is reported at its
 * middle, so a percentile is within 0.4% (exact below 256 ns).
 *
 * The report is a table (ops, ops/s, p50, p99, p99.9, mean, max per reads,
 * writes and both) and, with --csv, one CSV line on stdout whose columns
 * usage() lists; new columns are only ever appended, so scripts that read
 * the line by position keep working.
 */
#include "bench/bench.h"
#include "bench/machine.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

const struct wl_def wl_defs[WL_COUNT] = {
    [WL_READ] = {.name = "read", .alias = "read-only", .write_permille = 0},
    [WL_95_5] = {.name = "95/5", .alias = "95-5", .write_permille = 50},
    [WL_50_50] = {.name = "50/50", .alias = "50-50", .write_permille = 500},
    [WL_WRITE] = {.name = "write", .alias = "write-only", .write_permille = 1000},
};

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ringkv-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void sleep_until_ns(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u),
                          .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        continue;
}

void cpu_times(double *user_s, double *sys_s)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- zipfian ranks ---- */

void zipf_init(struct zipf *z, uint64_t n, double theta)
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

uint64_t zipf_next(const struct zipf *z, uint64_t *rng)
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

/* ---- latency histograms ---- */

uint32_t hist_index(uint64_t v)
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

void hist_merge(struct hist *into, const struct hist *h)
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

double hist_percentile_us(const struct hist *h, uint64_t part, uint64_t scale)
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
    return (double)h->max_ns / 1e3;
}

/* ---- tallies ---- */

static const char *const resp_err_names[RESP_E_COUNT] = {
    [RESP_E_REPLY] = "error reply",
    [RESP_E_TYPE] = "unexpected reply type",
    [RESP_E_WAIT] = "WAIT reached fewer replicas",
    [RESP_E_CONN] = "connection failed",
    [RESP_E_UNANSWERED] = "no reply",
};

const char *resp_err_name(int code)
{
    if (code > 0 && code < RESP_E_COUNT && resp_err_names[code])
        return resp_err_names[code];
    return "unknown";
}

void tally_error(struct tally *t, int code, const char *msg)
{
    int slot = code > 0 && code < ERR_CODES ? code : ERR_CODES - 1;
    if (t->errors[slot]++ == 0)
        snprintf(t->errmsg[slot], sizeof t->errmsg[slot], "%s", msg);
}

void tally_merge(struct tally *into, const struct tally *t)
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

uint64_t tally_failed(const struct tally *t)
{
    uint64_t n = 0;
    for (int i = 0; i < ERR_CODES; i++)
        n += t->errors[i];
    return n;
}

/* ---- the report ---- */

void print_machine(FILE *out)
{
    bench_print_machine(out, "ringkv-bench");
}

static void print_row(FILE *out, const char *op, const struct hist *h, double secs)
{
    if (h->count == 0) {
        fprintf(out, "%-6s %10d %10s %10s %10s %10s %10s %10s\n", op, 0, "-", "-", "-", "-", "-",
                "-");
        return;
    }
    fprintf(out, "%-6s %10" PRIu64 " %10.0f %10.1f %10.1f %10.1f %10.1f %10.1f\n", op, h->count,
            (double)h->count / secs, hist_percentile_us(h, 500, 1000),
            hist_percentile_us(h, 990, 1000), hist_percentile_us(h, 9990, 10000),
            (double)h->sum_ns / (double)h->count / 1e3, (double)h->max_ns / 1e3);
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

static void print_outcomes(FILE *out, const struct tally *t, const struct hist *all,
                           const char *(*err_name)(int code))
{
    uint64_t failed = tally_failed(t);
    if (failed == 0)
        fprintf(out, "# errors: none\n");
    for (int i = 0; i < ERR_CODES; i++)
        if (t->errors[i])
            fprintf(out, "# errors: %s: %" PRIu64 " (%.3f%% of ops); first: %s\n", err_name(i),
                    t->errors[i], 100.0 * (double)t->errors[i] / (double)(all->count + failed),
                    t->errmsg[i]);
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

/* One line on stdout; the columns are listed in usage(). */
static void print_csv(const struct bench_cfg *cfg, const struct report_info *ri,
                      const struct tally *t, const struct hist *all, double secs)
{
    printf("%s,%s,%u,%" PRIu64 ",%u,%u,%u,%.3f", wl_defs[cfg->wl].name,
           cfg->dist == DIST_ZIPFIAN ? "zipfian" : "uniform", cfg->clients, cfg->keys,
           cfg->value_bytes, ri->r, ri->w, secs);
    print_hist_csv(stdout, all, secs);
    print_hist_csv(stdout, &t->read, secs);
    print_hist_csv(stdout, &t->write, secs);
    printf(",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%s,%u,%u\n", tally_failed(t), t->not_found,
           t->multi_sibling_reads, ri->proto, cfg->pipeline, cfg->wait_replicas);
    fflush(stdout);
}

int bench_report(const struct bench_cfg *cfg, FILE *out, const struct report_info *ri,
                 const struct tally *t, const struct run_times *rt,
                 const char *(*err_name)(int code))
{
    struct hist *all = calloc(1, sizeof *all);
    if (all == NULL) {
        fprintf(stderr, "ringkv-bench: out of memory\n");
        return 1;
    }
    hist_merge(all, &t->read);
    hist_merge(all, &t->write);
    double secs = (double)rt->measure_ns / 1e9;
    fprintf(out,
            "# this process (client threads%s): user %.2f s + sys %.2f s of CPU in the measured "
            "%.2f s = %.0f%% of one core\n",
            strcmp(ri->proto, "resp") == 0 ? "" : ", libzmq threads", rt->user_s, rt->sys_s, secs,
            100.0 * (rt->user_s + rt->sys_s) / secs);
    print_table(out, t, all, secs);
    print_outcomes(out, t, all, err_name);
    if (cfg->csv)
        print_csv(cfg, ri, t, all, secs);
    uint64_t failed = tally_failed(t), total = failed + all->count;
    int status = 0;
    if (all->count == 0) {
        fprintf(out, "# FAILED: no operation succeeded\n");
        status = 1;
    } else if (failed * 1000 > total * FAIL_PERMILLE_MAX) {
        fprintf(out, "# FAILED: %" PRIu64 " of %" PRIu64 " ops failed (more than %u%%)\n", failed,
                total, FAIL_PERMILLE_MAX / 10);
        status = 1;
    }
    free(all);
    return status;
}
