/*
 * bench_lib.h: the libringkv mode's internals, shared by ringkv_bench.c
 * (options, setup, the blocking loop, the report) and bench_async.c (the
 * asynchronous loop, --pipeline). Not a public interface.
 *
 * The unit of load is a lane: a closed loop of operations with one in
 * flight at a time, and the only writer of the keys it owns (key k belongs
 * to lane k % n_lanes). There are --clients x --pipeline lanes: lane i
 * runs on client i / pipeline. A loop is a thread: in the blocking mode one
 * per client, running its single lane with ringkv_get/ringkv_put; in the
 * asynchronous mode --threads of them, each driving a share of the clients
 * and all their lanes from one epoll loop with the _async calls. Both
 * modes draw keys, values and operations the same way and time each
 * request from its start to its completion.
 */
#ifndef RKV_BENCH_LIB_H
#define RKV_BENCH_LIB_H

#include "bench/bench.h"

#include "client/ringkv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The context of an owned key, from its last put (or a setup read). */
struct ctx_slot {
    uint8_t *data;
    uint32_t len, cap;
    bool valid;
};

/* What an asynchronous lane has in flight. */
enum lane_op {
    LANE_OFF,   /* nothing: stopped, or waiting to retry (lane.retry) */
    LANE_GET,   /* a measured read */
    LANE_FETCH, /* an unmeasured read of a lost context; the put follows */
    LANE_PUT,
};

struct bench;
struct loop;

struct lane {
    struct bench *b;
    struct loop *loop;
    uint32_t id;
    struct ringkv_client *c; /* its client's; owned by the loop */
    uint64_t rng;
    struct ctx_slot *ctx; /* owned keys id, id + n_lanes, ...: slot key / n_lanes */
    uint64_t n_ctx;
    /* the asynchronous mode's request in flight */
    enum lane_op op;
    bool measured; /* started while measuring */
    bool retry;    /* its last start failed: started again on the loop's tick */
    uint64_t key, t0_ns;
};

struct loop {
    struct bench *b;
    uint32_t id;
    pthread_t thread;
    uint32_t client_first, n_clients; /* b->clients[client_first ...] */
    int connect_rc;
    char connect_msg[ERRMSG_BYTES];
    uint32_t n_retry; /* lanes waiting to retry a start */
    struct tally t;   /* measured ops of its lanes */
};

struct bench {
    struct bench_cfg cfg;
    bool async; /* the _async calls from event loops (--pipeline > 1 or --threads) */
    struct zipf zipf;
    uint8_t *pool; /* VALUE_POOL_SPAN + value_bytes seeded bytes */
    struct lane *lanes;
    uint32_t n_lanes;
    struct ringkv_client **clients; /* cfg.clients, made by their loops */
    struct loop *loops;
    uint32_t n_loops;
    pthread_barrier_t ready, go;
    atomic_int phase;
    atomic_uint_fast64_t setup_failed; /* keys whose setup failed, over all threads */
    FILE *out;                         /* the report: stdout, or stderr with --csv */
    void *zctx; /* one ZeroMQ context shared by every client (one I/O thread) */
    uint32_t ring_r, ring_w, ring_n; /* the ring's defaults */
};

/* ---- ringkv_bench.c ---- */

/* Connects a client with the run's settings; on failure *c is NULL and msg
 * says why. */
int client_connect(const struct bench *b, struct ringkv_client **c, char *msg, size_t msg_len);
/* Keeps a copy of a result's context in s (s->valid false if none). */
void ctx_store(struct ctx_slot *s, const void *ctx, size_t len);
/* Counts a read's outcome (a found value or none; not an error). */
void tally_read_result(struct tally *t, const struct ringkv_result *res, uint32_t vbytes);
/* The next operation of lane l: whether it writes, and its key (for a
 * write, one l owns). */
bool lane_pick(struct lane *l, uint64_t *key);
/* The slot of key k in its owner's cache. */
struct ctx_slot *ctx_slot_of(struct bench *b, uint64_t k);

/* ---- bench_async.c ---- */

/* The thread of an asynchronous loop (arg: its struct loop). */
void *loop_async_main(void *arg);

#endif
