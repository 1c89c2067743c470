/*
 * bench_async.c: the asynchronous loop of ringkv-bench's libringkv mode
 * (--pipeline above 1, or --threads): each client keeps --pipeline
 * requests in flight through ringkv_get_async and ringkv_put_async.
 *
 * Design. The clients are shared by --threads event loops (default one),
 * not given a thread each: bench/compare runs on two cores shared with the
 * three nodes, where fifty client threads would each wake for a few
 * replies and compete with the nodes for the cores, and one loop over all
 * the connections is also what the RESP mode and redis-benchmark do, so
 * the client side costs about the same in the lib and resp rows. A
 * client's request slots are its lanes (bench_lib.h): a lane starts its
 * next request from the callback of its last one, so a client has
 * --pipeline requests in flight at all times. A request is timed from just
 * before its _async call to the start of its callback, both read per
 * request.
 *
 * One epoll set holds every client's ringkv_fd (level-triggered; each is
 * itself an epoll set over the client's node sockets). libringkv's
 * descriptor is edge-like, so a client that was readable, or on which
 * requests were started outside its callbacks, is "hot": it gets one
 * ringkv_process per turn until a call completes nothing (a call that ran
 * callbacks sent requests, which may have taken the edge of replies that
 * arrived meanwhile). One call per hot client per turn keeps a busy client
 * from starving the others. Requests whose reply never comes complete
 * through ringkv_process once their deadline passed: each client's next
 * deadline is looked at once per tick (LOOP_TICK_MS), with the lanes to
 * retry and the phase.
 *
 * A start that fails at once (no node of the key's preference list
 * reachable, say) counts as a failed op and its lane waits for the next
 * tick to try again, rather than spinning. After the stop, lanes start
 * nothing new and the loop runs until its clients have nothing in flight:
 * every request completes by its deadline (RINGKV_ETIMEOUT at worst), and
 * DRAIN_MS bounds the wait anyway.
 */
#include "bench/bench_lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVENTS_MAX   256    /* epoll events taken per wait */
#define LOOP_TICK_MS 10u    /* deadlines, retries and the phase are looked at this often */
#define DRAIN_MS     10000u /* after the stop: waiting for requests in flight */
#define MS_NS        1000000u

/* One loop's event machinery, private to its thread. */
struct aloop {
    struct loop *lp;
    struct ringkv_client **clients; /* the loop's share of b->clients */
    struct lane *lanes;             /* its clients' lanes, pipeline per client */
    uint32_t n_lanes;
    int ep;
    bool *hot; /* per client: ringkv_process it this turn */
    uint32_t n_hot;
};

/* ---- lanes ---- */

static void lane_on_done(void *arg, struct ringkv_result *res);

static struct ctx_slot *lane_slot(struct lane *l)
{
    return &l->ctx[l->key / l->b->n_lanes];
}

static int lane_get_start(struct lane *l, enum lane_op op)
{
    char key[KEY_BYTES];
    key_format(key, l->key);
    struct ringkv_request_options o = {.r = l->b->cfg.r};
    l->op = op;
    l->t0_ns = now_ns();
    return ringkv_get_async(l->c, key, KEY_BYTES, &o, lane_on_done, l);
}

/* A put of l->key with the context of its last put (if known). */
static int lane_put_start(struct lane *l)
{
    struct bench *b = l->b;
    struct ctx_slot *slot = lane_slot(l);
    char key[KEY_BYTES];
    key_format(key, l->key);
    const uint8_t *value = b->pool + (rng_next(&l->rng) & (VALUE_POOL_SPAN - 1));
    struct ringkv_request_options o = {
        .w = b->cfg.w,
        .context = slot->valid ? slot->data : NULL,
        .context_len = slot->valid ? slot->len : 0,
    };
    l->op = LANE_PUT;
    l->t0_ns = now_ns();
    return ringkv_put_async(l->c, key, KEY_BYTES, value, b->cfg.value_bytes, &o, lane_on_done, l);
}

/* A start failed at once: counted, and tried again on the next tick. */
static void lane_park(struct lane *l, int rc)
{
    if (l->measured)
        tally_error(&l->loop->t, rc, ringkv_errmsg(l->c));
    l->op = LANE_OFF;
    l->retry = true;
    l->loop->n_retry++;
}

/* Starts lane l's next op, unless the run has stopped. */
static void lane_next(struct lane *l)
{
    int ph = atomic_load_explicit(&l->b->phase, memory_order_acquire);
    l->op = LANE_OFF;
    if (ph == PH_STOP)
        return;
    l->measured = ph == PH_MEASURE;
    int rc;
    if (!lane_pick(l, &l->key)) {
        rc = lane_get_start(l, LANE_GET);
    } else if (lane_slot(l)->valid) {
        rc = lane_put_start(l);
    } else { /* the context is lost: read it first, unmeasured */
        if (l->measured)
            l->loop->t.ctx_fetches++;
        rc = lane_get_start(l, LANE_FETCH);
    }
    if (rc != RINGKV_OK)
        lane_park(l, rc);
}

static const char *const lane_op_names[] = {
    [LANE_OFF] = "nothing",
    [LANE_GET] = "get",
    [LANE_FETCH] = "get (context for a put)",
    [LANE_PUT] = "put",
};

/* The callback of every request a lane starts. */
static void lane_on_done(void *arg, struct ringkv_result *res)
{
    uint64_t t1 = now_ns();
    struct lane *l = arg;
    struct tally *t = l->measured ? &l->loop->t : NULL;
    enum lane_op op = l->op;
    int rc = res->status;
    bool ok = rc == RINGKV_OK || (rc == RINGKV_ENOTFOUND && op != LANE_PUT);
    if (op != LANE_GET) { /* a failed put may have been applied: read again first */
        if (ok)
            ctx_store(lane_slot(l), res->context, res->context_len);
        else
            lane_slot(l)->valid = false;
    }
    if (t && !ok) {
        char msg[ERRMSG_BYTES];
        snprintf(msg, sizeof msg, "pipelined %s: %s%s%s", lane_op_names[op], ringkv_strerror(rc),
                 res->node ? ", answered by " : "", res->node ? res->node : "");
        tally_error(t, rc, msg);
    } else if (t && op == LANE_GET) {
        hist_record(&t->read, t1 - l->t0_ns);
        tally_read_result(t, res, l->b->cfg.value_bytes);
    } else if (t && op == LANE_PUT) {
        hist_record(&t->write, t1 - l->t0_ns);
    }
    ringkv_result_free(res);
    if (op == LANE_FETCH && ok) { /* the write goes ahead, also after the stop */
        rc = lane_put_start(l);
        if (rc != RINGKV_OK)
            lane_park(l, rc);
        return;
    }
    lane_next(l);
}

/* ---- the loop ---- */

static void aloop_hot(struct aloop *a, uint32_t i, bool hot)
{
    if (a->hot[i] == hot)
        return;
    a->hot[i] = hot;
    if (hot)
        a->n_hot++;
    else
        a->n_hot--;
}

/* Connects the loop's clients and watches their descriptors. */
static int aloop_open(struct aloop *a)
{
    struct loop *lp = a->lp;
    struct bench *b = lp->b;
    a->ep = epoll_create1(EPOLL_CLOEXEC);
    a->hot = calloc(lp->n_clients ? lp->n_clients : 1, sizeof *a->hot);
    if (a->ep < 0 || a->hot == NULL) {
        snprintf(lp->connect_msg, sizeof lp->connect_msg, "event loop: %s",
                 a->ep < 0 ? strerror(errno) : "out of memory");
        return RINGKV_ENOMEM;
    }
    for (uint32_t i = 0; i < lp->n_clients; i++) {
        int rc = client_connect(b, &a->clients[i], lp->connect_msg, sizeof lp->connect_msg);
        if (rc != RINGKV_OK)
            return rc;
        for (uint32_t j = 0; j < b->cfg.pipeline; j++)
            a->lanes[i * b->cfg.pipeline + j].c = a->clients[i];
        int fd = ringkv_fd(a->clients[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (fd < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            snprintf(lp->connect_msg, sizeof lp->connect_msg, "client %u: ringkv_fd: %s",
                     lp->client_first + i + 1,
                     fd < 0 ? ringkv_errmsg(a->clients[i]) : strerror(errno));
            return RINGKV_EIO;
        }
    }
    return RINGKV_OK;
}

static void aloop_close(struct aloop *a)
{
    for (uint32_t i = 0; i < a->lp->n_clients; i++) {
        ringkv_close(a->clients[i]); /* drops what is still in flight, without callbacks */
        a->clients[i] = NULL;
    }
    for (uint32_t i = 0; i < a->n_lanes; i++)
        a->lanes[i].c = NULL;
    if (a->ep >= 0)
        close(a->ep);
    free(a->hot);
}

/* One ringkv_process for each hot client, and on a tick for each whose
 * next deadline has passed. */
static void aloop_process(struct aloop *a, bool tick)
{
    for (uint32_t i = 0; i < a->lp->n_clients; i++)
        if (a->hot[i] || (tick && ringkv_next_timeout_ms(a->clients[i]) == 0))
            aloop_hot(a, i, ringkv_process(a->clients[i]) > 0);
}

/* Starts the lanes whose last start failed. */
static void aloop_retry(struct aloop *a)
{
    uint32_t pipeline = a->lp->b->cfg.pipeline;
    for (uint32_t i = 0; i < a->n_lanes && a->lp->n_retry > 0; i++) {
        struct lane *l = &a->lanes[i];
        if (!l->retry)
            continue;
        l->retry = false;
        a->lp->n_retry--;
        lane_next(l);
        if (l->op != LANE_OFF) /* started outside a callback */
            aloop_hot(a, i / pipeline, true);
    }
}

static int aloop_pending(const struct aloop *a)
{
    int n = 0;
    for (uint32_t i = 0; i < a->lp->n_clients; i++)
        n += ringkv_pending(a->clients[i]);
    return n;
}

/* Past DRAIN_MS: what is still in flight will not be counted by a callback. */
static void aloop_abandon(struct aloop *a)
{
    for (uint32_t i = 0; i < a->n_lanes; i++)
        if (a->lanes[i].op != LANE_OFF && a->lanes[i].measured)
            tally_error(&a->lp->t, RINGKV_ETIMEOUT, "no completion by the end of the drain");
}

static void aloop_run(struct aloop *a)
{
    struct bench *b = a->lp->b;
    for (uint32_t i = 0; i < a->n_lanes; i++)
        lane_next(&a->lanes[i]);
    for (uint32_t i = 0; i < a->lp->n_clients; i++)
        aloop_hot(a, i, true);
    uint64_t next_tick = now_ns() + LOOP_TICK_MS * MS_NS, drain_end = 0;
    struct epoll_event ev[EVENTS_MAX];
    for (;;) {
        int timeout = 0;
        if (a->n_hot == 0) {
            uint64_t now = now_ns();
            timeout = now >= next_tick ? 0 : (int)((next_tick - now + MS_NS - 1) / MS_NS);
        }
        int n = epoll_wait(a->ep, ev, EVENTS_MAX, timeout);
        for (int k = 0; k < n; k++)
            aloop_hot(a, ev[k].data.u32, true);
        uint64_t now = now_ns();
        bool tick = now >= next_tick;
        aloop_process(a, tick);
        if (!tick)
            continue;
        next_tick = now + LOOP_TICK_MS * MS_NS;
        if (a->lp->n_retry > 0)
            aloop_retry(a);
        if (atomic_load_explicit(&b->phase, memory_order_acquire) != PH_STOP)
            continue;
        if (drain_end == 0)
            drain_end = now + (uint64_t)DRAIN_MS * MS_NS;
        if (aloop_pending(a) == 0)
            break;
        if (now >= drain_end) {
            aloop_abandon(a);
            break;
        }
    }
}

void *loop_async_main(void *arg)
{
    struct loop *lp = arg;
    struct bench *b = lp->b;
    uint32_t pipeline = b->cfg.pipeline;
    struct aloop a = {
        .lp = lp,
        .clients = &b->clients[lp->client_first],
        .lanes = &b->lanes[lp->client_first * pipeline],
        .n_lanes = lp->n_clients * pipeline,
        .ep = -1,
    };
    lp->connect_rc = aloop_open(&a);
    pthread_barrier_wait(&b->ready); /* main checks every loop's connections */
    pthread_barrier_wait(&b->go);
    if (atomic_load_explicit(&b->phase, memory_order_acquire) != PH_STOP)
        aloop_run(&a);
    aloop_close(&a);
    return NULL;
}
