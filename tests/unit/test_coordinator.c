/*
 * test_coordinator.c: the coordinator's state machines driven with no
 * sockets. A small harness plays the replicas (each an in-memory map of
 * encoded objects) and the node (running local updates); the test decides
 * which replies arrive, in which order, twice, late, or never, and when
 * time passes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "coordinator/coordinator.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/limits.h"
#include "tests/support/testutil.h"

#define NODES       4
#define KEYS        32
#define PENDING_MAX 4096
#define T0          1700000000000ull

/* ---- the simulated cluster ---- */

struct replica {
    struct rkv_buf obj[KEYS]; /* encoded object per key index, len 0: none */
};

struct msg {
    uint32_t to;   /* member the message is for (a reply: from) */
    bool is_reply; /* a reply for the coordinator */
    uint64_t forward_id; /* a forward: the FORWARD's request id (bytes: the inner request) */
    struct rkv_buf bytes;
};

struct client_reply {
    uint64_t client;
    struct rkv_buf bytes;
};

struct harness {
    struct ring *ring;
    struct coord *c;
    uint32_t self;
    uint64_t now;
    struct replica rep[NODES];
    struct replica hints[NODES];     /* what each node holds as a hint */
    char hint_for[NODES][KEYS][8];   /* ...and for whom */
    char keys[KEYS][16];
    struct msg pending[PENDING_MAX]; /* replies not yet delivered */
    size_t n_pending;
    struct client_reply replies[PENDING_MAX];
    size_t n_replies;
    uint64_t acks_owed[PENDING_MAX]; /* local writes awaiting their "commit" */
    size_t n_acks;
    struct object_limits lim;
};

static int key_index(struct harness *h, const uint8_t *k, uint32_t len)
{
    for (int i = 0; i < KEYS; i++)
        if (strlen(h->keys[i]) == len && memcmp(h->keys[i], k, len) == 0)
            return i;
    ck_abort_msg("unknown key");
    return -1;
}

static void queue_reply(struct harness *h, uint32_t from, const struct rkv_buf *b)
{
    ck_assert_uint_lt(h->n_pending, PENDING_MAX);
    struct msg *m = &h->pending[h->n_pending++];
    memset(m, 0, sizeof *m);
    m->to = from;
    m->is_reply = true;
    rkv_buf_set(&m->bytes, b->data, b->len);
}

/* Replica `to` handles a message from the coordinator; its reply is queued. */
static void replica_handle(struct harness *h, uint32_t to, const struct rkv_buf *bytes)
{
    struct wire_msg m;
    ck_assert_int_eq(wire_decode(bytes->data, bytes->len, &m), RKV_OK);
    struct rkv_buf out = {0};
    int k = key_index(h, m.key.p, m.key.len);
    struct rkv_buf *stored = &h->rep[to].obj[k];
    if (m.hint_for.len) { /* a fallback keeps it apart, for its owner */
        stored = &h->hints[to].obj[k];
        snprintf(h->hint_for[to][k], sizeof h->hint_for[to][k], "%.*s", (int)m.hint_for.len,
                 (const char *)m.hint_for.p);
    }
    if (m.type == WIRE_REPLICA_GET) {
        wire_encode_replica_reply(&out, m.id, 0, stored->len ? RKV_OK : RKV_ERR_NOTFOUND,
                                  stored->len ? stored->data : NULL, stored->len);
    } else {
        ck_assert_uint_eq(m.type, WIRE_REPLICA_PUT);
        struct object local, in;
        object_init(&local);
        object_init(&in);
        ck_assert_int_eq(object_decode(m.object.p, m.object.len, &h->lim, &in), RKV_OK);
        if (stored->len)
            ck_assert_int_eq(object_decode(stored->data, stored->len, &h->lim, &local), RKV_OK);
        ck_assert_int_eq(object_sync(&local, &in, &h->lim, NULL), RKV_OK);
        stored->len = 0;
        object_encode(&local, stored);
        object_free(&local);
        object_free(&in);
        wire_encode_replica_reply(&out, m.id, 0, RKV_OK, NULL, 0);
    }
    if (to == h->self) {
        /* the node answers its own coordinator at once */
        struct wire_msg r;
        ck_assert_int_eq(wire_decode(out.data, out.len, &r), RKV_OK);
        if (m.type == WIRE_REPLICA_GET)
            coord_on_reply(h->c, h->now, h->self, &r);
        else if (m.id)
            h->acks_owed[h->n_acks++] = m.id;
    } else {
        queue_reply(h, to, &out);
    }
    rkv_buf_free(&out);
}

static void local_update(struct harness *h, const struct coord_update *u)
{
    int k = key_index(h, u->key, u->key_len);
    struct rkv_buf *stored = &h->rep[h->self].obj[k];
    struct object o;
    object_init(&o);
    if (stored->len)
        ck_assert_int_eq(object_decode(stored->data, stored->len, &h->lim, &o), RKV_OK);
    struct vclock own; /* an overwrite takes the local copy's context, as the node does */
    vclock_init(&own);
    if (u->overwrite)
        ck_assert_int_eq(object_context(&o, &own), RKV_OK);
    int rc = object_update(&o, u->overwrite ? &own : u->ctx, 0xA1, u->now_ms, u->value,
                           u->value_len, u->expiry_ms, u->tomb, &h->lim);
    vclock_free(&own);
    struct rkv_buf enc = {0};
    if (rc == RKV_OK) {
        object_encode(&o, &enc);
        rkv_buf_set(stored, enc.data, enc.len);
    }
    uint64_t req = u->req;
    coord_on_local_update(h->c, h->now, req, rc, NULL, enc.data, enc.len);
    if (rc == RKV_OK)
        h->acks_owed[h->n_acks++] = req;
    rkv_buf_free(&enc);
    object_free(&o);
}

/* Runs the outbox like the node does. */
static void run_outbox(struct harness *h)
{
    for (size_t i = 0;; i++) {
        size_t n;
        struct coord_out *out = coord_outbox(h->c, &n);
        if (i >= n)
            break;
        struct coord_out o = out[i];
        if (o.kind == COORD_TO_CLIENT) {
            struct client_reply *r = &h->replies[h->n_replies++];
            memset(r, 0, sizeof *r);
            r->client = o.client;
            rkv_buf_set(&r->bytes, o.msg.data, o.msg.len);
        } else if (o.kind == COORD_UPDATE) {
            local_update(h, &o.update);
        } else {
            struct wire_msg m;
            ck_assert_int_eq(wire_decode(o.msg.data, o.msg.len, &m), RKV_OK);
            if (m.type == WIRE_FORWARD) {
                struct rkv_buf inner = {0};
                rkv_buf_set(&inner, m.inner.p, m.inner.len);
                /* the forward target is elsewhere: record it as a pending message */
                struct msg *p = &h->pending[h->n_pending++];
                memset(p, 0, sizeof *p);
                p->to = o.node;
                p->forward_id = m.id;
                p->bytes = inner;
            } else {
                replica_handle(h, o.node, &o.msg);
            }
        }
    }
    coord_outbox_clear(h->c);
    ck_assert(coord_invariants_ok(h->c));
}

/* The node's group commit: its own writes become durable. */
static void commit(struct harness *h)
{
    for (size_t i = 0; i < h->n_acks; i++) {
        struct wire_msg m = {.type = WIRE_REPLICA_REPLY, .id = h->acks_owed[i], .status = RKV_OK};
        coord_on_reply(h->c, h->now, h->self, &m);
    }
    h->n_acks = 0;
    run_outbox(h);
}

static void deliver(struct harness *h, size_t i)
{
    struct msg m = h->pending[i];
    h->pending[i] = h->pending[--h->n_pending];
    struct wire_msg w;
    ck_assert_int_eq(wire_decode(m.bytes.data, m.bytes.len, &w), RKV_OK);
    coord_on_reply(h->c, h->now, m.to, &w);
    rkv_buf_free(&m.bytes);
    run_outbox(h);
}

static void harness_init_fallback(struct harness *h, uint32_t nodes, uint32_t inflight,
                                  uint32_t fallback_after_ms)
{
    memset(h, 0, sizeof *h);
    struct ring_member m[NODES] = {{"n1", 16}, {"n2", 16}, {"n3", 16}, {"n4", 16}};
    struct rkv_error err;
    ck_assert_int_eq(ring_new(m, nodes, 16, 3, &h->ring, &err), RKV_OK);
    h->self = (uint32_t)ring_member_index(h->ring, "n1");
    object_limits_default(&h->lim);
    h->lim.siblings_max = 64;
    h->now = T0;
    struct coord_options o = {
        .actor = 0xA1,
        .self = h->self,
        .default_r = 2,
        .default_w = 2,
        .timeout_ms = 1000,
        .key_bytes_max = 64,
        .inflight_max = inflight,
        .fallback_after_ms = fallback_after_ms,
        .limits = h->lim,
    };
    ck_assert_int_eq(coord_new(&o, h->ring, &h->c), RKV_OK);
    for (int i = 0; i < KEYS; i++)
        snprintf(h->keys[i], sizeof h->keys[i], "key%d", i);
}

static void harness_init(struct harness *h, uint32_t nodes, uint32_t inflight)
{
    harness_init_fallback(h, nodes, inflight, 0);
}

static void harness_free(struct harness *h)
{
    coord_free(h->c);
    ring_free(h->ring);
    for (int n = 0; n < NODES; n++)
        for (int k = 0; k < KEYS; k++) {
            rkv_buf_free(&h->rep[n].obj[k]);
            rkv_buf_free(&h->hints[n].obj[k]);
        }
    for (size_t i = 0; i < h->n_pending; i++)
        rkv_buf_free(&h->pending[i].bytes);
    for (size_t i = 0; i < h->n_replies; i++)
        rkv_buf_free(&h->replies[i].bytes);
}

/* A key whose preference list holds (or not) the coordinator. */
static int key_with_self(struct harness *h, bool in)
{
    for (int k = 0; k < KEYS; k++) {
        uint32_t p = ring_partition(h->ring, ring_hash_key(h->keys[k], strlen(h->keys[k])));
        if (ring_in_preflist(h->ring, p, h->self) == in)
            return k;
    }
    ck_abort_msg("no such key");
    return -1;
}

static void client_get(struct harness *h, uint64_t client, int k, uint32_t r)
{
    struct rkv_buf b = {0};
    wire_encode_get(&b, client, 0, h->keys[k], strlen(h->keys[k]), r, 0);
    struct wire_msg m;
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    coord_on_client(h->c, h->now, client, &m, b.data, b.len, false);
    rkv_buf_free(&b);
    run_outbox(h);
}

static void client_put(struct harness *h, uint64_t client, int k, const char *v, uint32_t w,
                       const void *ctx, size_t ctx_len)
{
    struct rkv_buf b = {0};
    wire_encode_put(&b, client, 0, h->keys[k], strlen(h->keys[k]), v, strlen(v), ctx, ctx_len, w, 0,
                    0);
    struct wire_msg m;
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    coord_on_client(h->c, h->now, client, &m, b.data, b.len, false);
    rkv_buf_free(&b);
    run_outbox(h);
}

/* The decoded reply to client, or fails; *count says how many it got. */
static struct wire_msg reply_for(struct harness *h, uint64_t client, int *count)
{
    struct wire_msg m = {0};
    *count = 0;
    for (size_t i = 0; i < h->n_replies; i++) {
        if (h->replies[i].client != client)
            continue;
        ck_assert_int_eq(wire_decode(h->replies[i].bytes.data, h->replies[i].bytes.len, &m),
                         RKV_OK);
        (*count)++;
    }
    return m;
}

/* Siblings in a GET reply's payload. */
static uint32_t payload_siblings(const struct wire_msg *m)
{
    struct mp_reader r;
    mp_reader_init(&r, m->payload.p, m->payload.len);
    uint32_t n, s;
    ck_assert(mp_read_array(&r, &n) && n == 2 && mp_read_array(&r, &s));
    return s;
}

/* ---- tests ---- */

START_TEST(put_then_get_any_order)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    client_put(&h, 1, k, "v1", 2, NULL, 0);
    int count;
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 0); /* nothing is durable yet */
    commit(&h);
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 0); /* one of W=2 */
    ck_assert_uint_eq(h.n_pending, 2);
    deliver(&h, 1); /* the second replica answers first */
    struct wire_msg m = reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_answered, 2);
    deliver(&h, 0); /* a late ack changes nothing */
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    /* a get: R=2 answered by the second reply, whichever it is */
    client_get(&h, 2, k, 2);
    ck_assert_uint_eq(h.n_pending, 2);
    reply_for(&h, 2, &count);
    ck_assert_int_eq(count, 0); /* the local copy counts as one */
    deliver(&h, 0);
    m = reply_for(&h, 2, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(payload_siblings(&m), 1);
    harness_free(&h);
}
END_TEST

START_TEST(duplicates_are_counted_once)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    client_put(&h, 1, k, "v", 3, NULL, 0);
    commit(&h);
    /* deliver one replica's ack three times */
    struct msg dup = h.pending[0];
    for (int i = 0; i < 2; i++) {
        struct msg *p = &h.pending[h.n_pending++];
        *p = dup;
        p->bytes = (struct rkv_buf){0};
        rkv_buf_set(&p->bytes, dup.bytes.data, dup.bytes.len);
    }
    uint32_t from = dup.to;
    for (size_t i = 0; i < h.n_pending;) {
        if (h.pending[i].to == from)
            deliver(&h, i);
        else
            i++;
    }
    int count;
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 0); /* W=3 needs a third, distinct replica */
    deliver(&h, 0);
    struct wire_msg m = reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_OK);
    harness_free(&h);
}
END_TEST

START_TEST(missing_replies_fail_at_the_deadline)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    client_put(&h, 1, k, "v", 3, NULL, 0);
    commit(&h);
    deliver(&h, 0); /* one of the two peers answers; the other never does */
    uint32_t silent = h.pending[0].to;
    h.now += 999;
    coord_tick(h.c, h.now);
    run_outbox(&h);
    int count;
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 0);
    ck_assert_uint_eq(coord_next_deadline(h.c), T0 + 1000);
    h.now += 1;
    coord_tick(h.c, h.now);
    run_outbox(&h);
    struct wire_msg m = reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_ERR_QUORUM);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)m.message.len, (const char *)m.message.p);
    ck_assert_msg(strstr(msg, "2 of 3") && strstr(msg, ring_member_id(h.ring, silent)),
                  "message: %s", msg);
    /* the late reply finds nothing to answer */
    deliver(&h, 0);
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    struct coord_stats st;
    coord_stats(h.c, &st);
    ck_assert_uint_eq(st.inflight, 0);
    harness_free(&h);
}
END_TEST

START_TEST(late_replies_are_read_repaired)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    /* the coordinator and one peer hold a value, the other peer nothing */
    client_put(&h, 1, k, "v", 2, NULL, 0);
    commit(&h);
    deliver(&h, 0);
    uint32_t stale = h.pending[0].to;
    rkv_buf_free(&h.pending[0].bytes);
    h.n_pending = 0;
    h.rep[stale].obj[k].len = 0; /* its write was lost */
    /* R=1: answered from the local copy; the stale replica answers late */
    client_get(&h, 2, k, 1);
    int count;
    struct wire_msg m = reply_for(&h, 2, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_OK);
    for (size_t i = 0; i < h.n_pending;)
        deliver(&h, i);
    ck_assert_msg(h.rep[stale].obj[k].len > 0, "the late, stale replica was repaired");
    struct coord_stats st;
    coord_stats(h.c, &st);
    ck_assert_uint_eq(st.read_repairs, 1);
    ck_assert_uint_eq(st.inflight, 0);
    harness_free(&h);
}
END_TEST

START_TEST(siblings_and_context)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    for (int i = 0; i < 2; i++) { /* two writes without context, same coordinator */
        client_put(&h, 10 + (uint64_t)i, k, i ? "b" : "a", 1, NULL, 0);
        commit(&h);
    }
    while (h.n_pending)
        deliver(&h, 0);
    client_get(&h, 20, k, 3);
    while (h.n_pending)
        deliver(&h, 0);
    int count;
    struct wire_msg m = reply_for(&h, 20, &count);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(payload_siblings(&m), 2);
    /* put with the context: one sibling left */
    struct mp_reader r;
    mp_reader_init(&r, m.payload.p, m.payload.len);
    uint32_t n;
    const uint8_t *ctx;
    uint32_t ctx_len;
    mp_read_array(&r, &n);
    mp_skip(&r);
    ck_assert(mp_read_bin(&r, &ctx, &ctx_len));
    uint8_t saved[512];
    memcpy(saved, ctx, ctx_len);
    client_put(&h, 30, k, "c", 3, saved, ctx_len);
    commit(&h);
    while (h.n_pending)
        deliver(&h, 0);
    client_get(&h, 40, k, 3);
    while (h.n_pending)
        deliver(&h, 0);
    m = reply_for(&h, 40, &count);
    ck_assert_uint_eq(payload_siblings(&m), 1);
    harness_free(&h);
}
END_TEST

START_TEST(bad_requests_are_refused_before_sending)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    client_get(&h, 1, k, 4);
    int count;
    struct wire_msg m = reply_for(&h, 1, &count);
    ck_assert_uint_eq(m.status, RKV_ERR_INVAL);
    client_put(&h, 2, k, "v", 0, "\x01\x02", 2); /* a context that is not one */
    m = reply_for(&h, 2, &count);
    ck_assert_uint_eq(m.status, RKV_ERR_PROTO);
    char longkey[100];
    memset(longkey, 'k', sizeof longkey);
    struct rkv_buf b = {0};
    wire_encode_get(&b, 3, 0, longkey, sizeof longkey, 0, 0);
    struct wire_msg req;
    wire_decode(b.data, b.len, &req);
    coord_on_client(h.c, h.now, 3, &req, b.data, b.len, false);
    run_outbox(&h);
    rkv_buf_free(&b);
    m = reply_for(&h, 3, &count);
    ck_assert_uint_eq(m.status, RKV_ERR_TOOBIG);
    ck_assert_uint_eq(h.n_pending, 0);
    struct coord_stats st;
    coord_stats(h.c, &st);
    ck_assert_uint_eq(st.inflight, 0);
    harness_free(&h);
}
END_TEST

/* Sends a request as built by the caller (b holds its frame). */
static void client_raw(struct harness *h, uint64_t client, struct rkv_buf *b)
{
    struct wire_msg m;
    ck_assert_int_eq(wire_decode(b->data, b->len, &m), RKV_OK);
    coord_on_client(h->c, h->now, client, &m, b->data, b->len, false);
    rkv_buf_free(b);
    run_outbox(h);
}

/* Timeouts and ttls past their limits, and contexts from the future, are
 * refused before anything is sent; the limits themselves are accepted. */
START_TEST(limits_of_a_request)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    const char *key = h.keys[k];
    struct rkv_buf b = {0};
    wire_encode_get(&b, 1, 0, key, strlen(key), 0, RKV_TIMEOUT_MS_MAX + 1);
    client_raw(&h, 1, &b);
    wire_encode_put(&b, 2, 0, key, strlen(key), "v", 1, NULL, 0, 0, 0, RKV_TTL_MS_MAX + 1);
    client_raw(&h, 2, &b);
    struct vclock vc;
    vclock_init(&vc);
    ck_assert_int_eq(vclock_bump(&vc, 0xB2, 3, h.now + RKV_CONTEXT_AHEAD_MS_MAX + 1), RKV_OK);
    struct rkv_buf ctx = {0};
    ck_assert_int_eq(context_encode(&vc, &ctx), RKV_OK);
    wire_encode_put(&b, 3, 0, key, strlen(key), "v", 1, ctx.data, ctx.len, 0, 0, 0);
    client_raw(&h, 3, &b);
    int count;
    for (uint64_t id = 1; id <= 3; id++) {
        struct wire_msg m = reply_for(&h, id, &count);
        ck_assert_int_eq(count, 1);
        ck_assert_uint_eq(m.status, RKV_ERR_INVAL);
    }
    ck_assert_uint_eq(h.n_pending, 0);
    /* at the limits: accepted */
    vc.n = 0;
    ck_assert_int_eq(vclock_bump(&vc, 0xB2, 3, h.now + RKV_CONTEXT_AHEAD_MS_MAX), RKV_OK);
    ctx.len = 0;
    ck_assert_int_eq(context_encode(&vc, &ctx), RKV_OK);
    wire_encode_put(&b, 4, 0, key, strlen(key), "v", 1, ctx.data, ctx.len, 0, RKV_TIMEOUT_MS_MAX,
                    RKV_TTL_MS_MAX);
    client_raw(&h, 4, &b);
    commit(&h);
    deliver(&h, 0);
    struct wire_msg m = reply_for(&h, 4, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_OK);
    rkv_buf_free(&ctx);
    vclock_free(&vc);
    harness_free(&h);
}
END_TEST

/* A request answered at once leaves the deadline heap at once: a client
 * asking for hour-long deadlines cannot grow the node's memory. */
START_TEST(answered_requests_leave_the_deadline_heap)
{
    struct harness h;
    harness_init(&h, 3, 16);
    int k = key_with_self(&h, true);
    const char *key = h.keys[k];
    for (uint64_t id = 1; id <= 20000; id++) {
        struct rkv_buf b = {0};
        wire_encode_get(&b, id, 0, key, strlen(key), 1, RKV_TIMEOUT_MS_MAX);
        client_raw(&h, id, &b); /* R=1: the local reply answers it */
        while (h.n_pending)     /* and the others' replies end it */
            deliver(&h, h.n_pending - 1);
        struct coord_stats st;
        coord_stats(h.c, &st);
        ck_assert_uint_eq(st.inflight, 0);
        ck_assert_uint_eq(coord_next_deadline(h.c), UINT64_MAX);
        for (size_t i = 0; i < h.n_replies; i++)
            rkv_buf_free(&h.replies[i].bytes);
        h.n_replies = 0;
    }
    harness_free(&h);
}
END_TEST

/* A get whose siblings would not fit in message_bytes_max is an error, not
 * a frame the client's socket would drop. */
START_TEST(oversized_reply_is_toobig)
{
    struct harness h;
    harness_init(&h, 3, 100);
    coord_free(h.c);
    struct coord_options o = {
        .actor = 0xA1,
        .self = h.self,
        .default_r = 2,
        .default_w = 2,
        .timeout_ms = 1000,
        .key_bytes_max = 64,
        .inflight_max = 100,
        .message_bytes_max = 600,
        .limits = h.lim,
    };
    ck_assert_int_eq(coord_new(&o, h.ring, &h.c), RKV_OK);
    int k = key_with_self(&h, true);
    char v[300];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    for (uint64_t id = 1; id <= 2; id++) { /* two siblings of 299 bytes */
        client_put(&h, id, k, v, 3, NULL, 0);
        commit(&h);
        while (h.n_pending)
            deliver(&h, 0);
    }
    client_get(&h, 3, k, 3);
    while (h.n_pending)
        deliver(&h, 0);
    int count;
    struct wire_msg m = reply_for(&h, 3, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_ERR_TOOBIG);
    ck_assert_ptr_nonnull(strstr((const char *)m.message.p, "message_bytes_max"));
    harness_free(&h);
}
END_TEST

/* A put from client 1 to a coordinator outside the key's list: one
 * FORWARD is pending. Returns the key. */
static int forwarded_put(struct harness *h)
{
    harness_init(h, 4, 100);
    int k = key_with_self(h, false);
    client_put(h, 1, k, "v", 2, NULL, 0);
    ck_assert_uint_eq(h->n_pending, 1);
    return k;
}

START_TEST(writes_outside_the_preflist_are_forwarded)
{
    struct harness h;
    int k = forwarded_put(&h);
    uint32_t p = ring_partition(h.ring, ring_hash_key(h.keys[k], strlen(h.keys[k])));
    ck_assert_uint_eq(h.pending[0].to, ring_preflist(h.ring, p)[0]);
    /* the target answers with its reply, relayed verbatim */
    struct rkv_buf reply = {0}, fwd = {0};
    wire_encode_reply(&reply, 1, 0, RKV_OK, "", NULL, 0, false, NULL, 0);
    struct wire_msg fm;
    wire_decode(h.pending[0].bytes.data, h.pending[0].bytes.len, &fm);
    rkv_buf_free(&h.pending[0].bytes);
    h.n_pending = 0;
    /* find the forward's request id: the only one in flight */
    struct coord_stats st;
    coord_stats(h.c, &st);
    ck_assert_uint_eq(st.forwards, 1);
    ck_assert_uint_eq(st.inflight, 1);
    /* a forwarded request for a key outside our list is refused */
    struct rkv_buf b = {0};
    wire_encode_put(&b, 9, 0, h.keys[k], strlen(h.keys[k]), "v", 1, NULL, 0, 0, 0, 0);
    struct wire_msg req;
    wire_decode(b.data, b.len, &req);
    coord_on_client(h.c, h.now, 9, &req, b.data, b.len, true);
    run_outbox(&h);
    int count;
    struct wire_msg m = reply_for(&h, 9, &count);
    ck_assert_uint_eq(m.status, RKV_ERR_UNAVAILABLE);
    /* no answer from the target: a timeout at the deadline (plus slack);
     * not UNAVAILABLE, which tells a client that nothing was done, while
     * the target may have applied the write */
    h.now += 2000;
    coord_tick(h.c, h.now);
    run_outbox(&h);
    m = reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_ERR_TIMEOUT);
    rkv_buf_free(&reply);
    rkv_buf_free(&fwd);
    rkv_buf_free(&b);
    harness_free(&h);
}
END_TEST

/* A forward that could not be sent was never seen by its target: the
 * client hears UNAVAILABLE at once (it may try elsewhere), not a timeout. */
START_TEST(an_unsent_forward_is_refused_at_once)
{
    struct harness h;
    forwarded_put(&h);
    uint64_t id = h.pending[0].forward_id;
    uint32_t to = h.pending[0].to;
    rkv_buf_free(&h.pending[0].bytes);
    h.n_pending = 0;
    coord_on_forward_unsent(h.c, to + 1, id); /* another member: not this forward */
    coord_on_forward_unsent(h.c, to, id + 1); /* another request */
    run_outbox(&h);
    int count;
    reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 0);
    coord_on_forward_unsent(h.c, to, id);
    run_outbox(&h);
    struct wire_msg m = reply_for(&h, 1, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_ERR_UNAVAILABLE);
    struct coord_stats st;
    coord_stats(h.c, &st);
    ck_assert_uint_eq(st.inflight, 0);
    harness_free(&h);
}
END_TEST

/* WIRE_FLAG_OVERWRITE supersedes the coordinator's copy without a context;
 * with one it is refused. A request the node built (no frame) is encoded
 * when it must be forwarded, flags included. */
START_TEST(overwrite_supersedes_the_local_copy)
{
    struct harness h;
    harness_init(&h, 3, 100);
    int k = key_with_self(&h, true);
    const char *key = h.keys[k];
    for (uint64_t id = 1; id <= 2; id++) { /* two blind puts: siblings */
        client_put(&h, id, k, id == 1 ? "a" : "b", 3, NULL, 0);
        commit(&h);
        while (h.n_pending)
            deliver(&h, 0);
    }
    struct wire_msg put = {.type = WIRE_PUT,
                           .id = 3,
                           .key = {(const uint8_t *)key, (uint32_t)strlen(key)},
                           .value = {(const uint8_t *)"c", 1},
                           .quorum = 3,
                           .flags = WIRE_FLAG_OVERWRITE};
    coord_on_client(h.c, h.now, 3, &put, NULL, 0, false);
    run_outbox(&h);
    commit(&h);
    while (h.n_pending)
        deliver(&h, 0);
    int count;
    ck_assert_uint_eq(reply_for(&h, 3, &count).status, RKV_OK);
    client_get(&h, 4, k, 3);
    while (h.n_pending)
        deliver(&h, 0);
    struct wire_msg m = reply_for(&h, 4, &count);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(payload_siblings(&m), 1);
    /* an overwrite with a context is a contradiction */
    struct rkv_buf ctx = {0};
    struct vclock vc;
    vclock_init(&vc);
    ck_assert_int_eq(vclock_bump(&vc, 0xB2, 1, h.now), RKV_OK);
    ck_assert_int_eq(context_encode(&vc, &ctx), RKV_OK);
    put.id = 5;
    put.context = (struct wire_bytes){ctx.data, (uint32_t)ctx.len};
    coord_on_client(h.c, h.now, 5, &put, NULL, 0, false);
    run_outbox(&h);
    ck_assert_uint_eq(reply_for(&h, 5, &count).status, RKV_ERR_INVAL);
    rkv_buf_free(&ctx);
    vclock_free(&vc);
    harness_free(&h);

    /* outside the preference list: forwarded, encoded from the struct */
    harness_init(&h, 4, 100);
    k = key_with_self(&h, false);
    put = (struct wire_msg){.type = WIRE_PUT,
                            .id = 6,
                            .key = {(const uint8_t *)h.keys[k], (uint32_t)strlen(h.keys[k])},
                            .value = {(const uint8_t *)"d", 1},
                            .flags = WIRE_FLAG_OVERWRITE};
    coord_on_client(h.c, h.now, 6, &put, NULL, 0, false);
    run_outbox(&h);
    ck_assert_uint_eq(h.n_pending, 1);
    struct wire_msg inner; /* the harness keeps a FORWARD's inner frame */
    ck_assert_int_eq(wire_decode(h.pending[0].bytes.data, h.pending[0].bytes.len, &inner), RKV_OK);
    ck_assert_uint_eq(inner.type, WIRE_PUT);
    ck_assert_uint_eq(inner.flags, WIRE_FLAG_OVERWRITE);
    ck_assert_mem_eq(inner.value.p, "d", 1);
    harness_free(&h);
}
END_TEST

/* ---- sloppy quorum ---- */

/* Key k's preference list (3 of the 4 members) and the one member outside it. */
static void owners_of(struct harness *h, int k, uint32_t owners[3], uint32_t *outside)
{
    uint32_t p = ring_partition(h->ring, ring_hash_key(h->keys[k], strlen(h->keys[k])));
    memcpy(owners, ring_preflist(h->ring, p), 3 * sizeof *owners);
    for (uint32_t m = 0; m < 4; m++)
        if (!ring_in_preflist(h->ring, p, m))
            *outside = m;
}

/* The owner of k other than self at position `which` (0 or 1). */
static uint32_t other_owner(struct harness *h, int k, int which)
{
    uint32_t owners[3], outside;
    owners_of(h, k, owners, &outside);
    for (int i = 0, seen = 0; i < 3; i++)
        if (owners[i] != h->self && seen++ == which)
            return owners[i];
    ck_abort_msg("no such owner");
    return 0;
}

static void deliver_all(struct harness *h)
{
    while (h->n_pending)
        deliver(h, 0);
}

/* A put of "v" with flags, its local write made durable; replies wait. */
static void put_start(struct harness *h, uint64_t client, int k, uint32_t w, uint32_t flags)
{
    struct rkv_buf b = {0};
    struct wire_msg m = {.type = WIRE_PUT, .id = client, .key = {(const uint8_t *)h->keys[k],
                         (uint32_t)strlen(h->keys[k])}, .value = {(const uint8_t *)"v", 1},
                         .quorum = w, .flags = flags};
    ck_assert_int_eq(wire_encode_request(&b, &m), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    coord_on_client(h->c, h->now, client, &m, b.data, b.len, false);
    rkv_buf_free(&b);
    run_outbox(h);
    commit(h);
}

/* The same, every reply delivered: the client's answer. */
static struct wire_msg put_flags(struct harness *h, uint64_t client, int k, uint32_t w,
                                 uint32_t flags)
{
    put_start(h, client, k, w, flags);
    deliver_all(h);
    int count;
    struct wire_msg r = reply_for(h, client, &count);
    ck_assert_int_eq(count, 1);
    return r;
}

static bool answered_by(const struct wire_msg *m, const char *id)
{
    for (uint32_t i = 0; i < m->n_answered; i++)
        if (m->answered[i].len == strlen(id) && memcmp(m->answered[i].p, id, m->answered[i].len) == 0)
            return true;
    return false;
}

/* An owner marked down gets no copy; the member past the preference list
 * takes it as a hint for that owner, and its answer counts toward W=3. */
START_TEST(down_owner_is_covered_by_a_fallback)
{
    struct harness h;
    harness_init(&h, 4, 100);
    int k = key_with_self(&h, true);
    uint32_t owners[3], outside, down = other_owner(&h, k, 0);
    owners_of(&h, k, owners, &outside);
    coord_set_down(h.c, down, true);
    coord_set_down(h.c, h.self, true); /* never: self is always up */
    struct wire_msg m = put_flags(&h, 1, k, 3, 0);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_fallbacks, 1);
    const char *fb = ring_member_id(h.ring, outside), *owner = ring_member_id(h.ring, down);
    ck_assert_int_eq((int)m.fallback[0].len, (int)strlen(fb));
    ck_assert(memcmp(m.fallback[0].p, fb, m.fallback[0].len) == 0);
    ck_assert(memcmp(m.fallback_for[0].p, owner, m.fallback_for[0].len) == 0);
    ck_assert(answered_by(&m, fb) && !answered_by(&m, owner));
    /* the down owner got nothing; the fallback holds a hint, not a replica */
    ck_assert_uint_eq(h.rep[down].obj[k].len, 0);
    ck_assert_uint_eq(h.rep[outside].obj[k].len, 0);
    ck_assert_uint_gt(h.hints[outside].obj[k].len, 0);
    ck_assert_str_eq(h.hint_for[outside][k], owner);
    struct coord_stats st;
    coord_stats(h.c, &st);
    ck_assert_uint_eq(st.hints_sent, 1);
    ck_assert_uint_eq(st.sloppy_writes, 1);
    /* up again: no more hints */
    coord_set_down(h.c, down, false);
    m = put_flags(&h, 2, k, 3, 0);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_fallbacks, 0);
    ck_assert_uint_gt(h.rep[down].obj[k].len, 0);
    harness_free(&h);
}
END_TEST

/* PW: the fallback still takes the write, but only owners count. */
START_TEST(primary_only_counts_owners)
{
    struct harness h;
    harness_init(&h, 4, 100);
    int k = key_with_self(&h, true);
    uint32_t owners[3], outside, down = other_owner(&h, k, 1);
    owners_of(&h, k, owners, &outside);
    coord_set_down(h.c, down, true);
    struct wire_msg m = put_flags(&h, 1, k, 3, WIRE_FLAG_PRIMARY);
    ck_assert_uint_eq(m.status, RKV_ERR_QUORUM);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)m.message.len, (const char *)m.message.p);
    /* it fails at once: no owner can stand in for the one that is down */
    ck_assert_msg(strstr(msg, "of 3 needed primary writes") && strstr(msg, "down: ") &&
                      strstr(msg, ring_member_id(h.ring, down)),
                  "message: %s", msg);
    ck_assert_uint_gt(h.hints[outside].obj[k].len, 0); /* not lost */
    m = put_flags(&h, 2, k, 2, WIRE_FLAG_PRIMARY);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_fallbacks, 0); /* it did not count, so it is not named */
    ck_assert(!answered_by(&m, ring_member_id(h.ring, outside)));
    harness_free(&h);
}
END_TEST

/* An owner that fails is covered at once; one that is silent, after
 * fallback_after_ms; its late answer still counts beside its fallback's. */
START_TEST(failed_or_silent_owners_get_a_fallback)
{
    struct harness h;
    harness_init_fallback(&h, 4, 100, 200);
    int k = key_with_self(&h, true);
    uint32_t owners[3], outside;
    owners_of(&h, k, owners, &outside);
    uint32_t a = other_owner(&h, k, 0), b = other_owner(&h, k, 1);
    /* a fails */
    put_start(&h, 1, k, 3, 0);
    for (size_t i = 0; i < h.n_pending; i++) {
        if (h.pending[i].to != a)
            continue;
        struct wire_msg pm;
        wire_decode(h.pending[i].bytes.data, h.pending[i].bytes.len, &pm);
        struct wire_msg fail = {.type = WIRE_REPLICA_REPLY, .id = pm.id, .status = RKV_ERR_IO};
        rkv_buf_free(&h.pending[i].bytes);
        h.pending[i] = h.pending[--h.n_pending];
        coord_on_reply(h.c, h.now, a, &fail);
        run_outbox(&h);
        break;
    }
    ck_assert_uint_gt(h.hints[outside].obj[k].len, 0);
    deliver_all(&h);
    int count;
    struct wire_msg m = reply_for(&h, 1, &count);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_fallbacks, 1);
    /* b is silent: nothing happens before fallback_after_ms... */
    h.hints[outside].obj[k].len = 0;
    put_start(&h, 2, k, 3, 0);
    for (size_t i = 0; i < h.n_pending;)
        if (h.pending[i].to == a)
            deliver(&h, i);
        else
            i++;
    ck_assert_uint_eq(h.n_pending, 1); /* b's answer, held back */
    ck_assert_uint_eq(coord_next_deadline(h.c), T0 + 200);
    h.now = T0 + 199;
    coord_tick(h.c, h.now);
    run_outbox(&h);
    ck_assert_uint_eq(h.hints[outside].obj[k].len, 0);
    /* ...then its fallback takes the write and answers */
    h.now = T0 + 200;
    coord_tick(h.c, h.now);
    run_outbox(&h);
    ck_assert_uint_eq(coord_next_deadline(h.c), T0 + 1000);
    ck_assert_uint_gt(h.hints[outside].obj[k].len, 0);
    ck_assert_str_eq(h.hint_for[outside][k], ring_member_id(h.ring, b));
    for (size_t i = 0; i < h.n_pending;)
        if (h.pending[i].to == outside)
            deliver(&h, i);
        else
            i++;
    m = reply_for(&h, 2, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_fallbacks, 1);
    deliver_all(&h); /* b's late answer finds the request answered */
    reply_for(&h, 2, &count);
    ck_assert_int_eq(count, 1);
    harness_free(&h);
}
END_TEST

/* Two owners down and one member outside the list: W=3 cannot be met, and
 * the error says so at once, naming who was down; a fallback that fails
 * leaves its owner uncovered. A non-owner forwards to the first owner up. */
START_TEST(no_fallback_left_is_a_quorum_error)
{
    struct harness h;
    harness_init(&h, 4, 100);
    int k = key_with_self(&h, true);
    uint32_t a = other_owner(&h, k, 0), b = other_owner(&h, k, 1);
    coord_set_down(h.c, a, true);
    coord_set_down(h.c, b, true);
    struct wire_msg m = put_flags(&h, 1, k, 3, 0);
    ck_assert_uint_eq(m.status, RKV_ERR_QUORUM);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)m.message.len, (const char *)m.message.p);
    ck_assert_msg(strstr(msg, "of 3 needed writes") && strstr(msg, "down: "), "message: %s", msg);
    m = put_flags(&h, 2, k, 2, 0); /* self and the one fallback make 2 */
    ck_assert_uint_eq(m.status, RKV_OK);
    ck_assert_uint_eq(m.n_fallbacks, 1);
    harness_free(&h);

    harness_init(&h, 4, 100);
    k = key_with_self(&h, false);
    uint32_t p = ring_partition(h.ring, ring_hash_key(h.keys[k], strlen(h.keys[k])));
    coord_set_down(h.c, ring_preflist(h.ring, p)[0], true);
    client_put(&h, 3, k, "v", 2, NULL, 0);
    ck_assert_uint_eq(h.n_pending, 1);
    ck_assert_uint_eq(h.pending[0].to, ring_preflist(h.ring, p)[1]);
    harness_free(&h);
}
END_TEST

START_TEST(inflight_limit)
{
    struct harness h;
    harness_init(&h, 3, 2);
    int k = key_with_self(&h, true);
    client_get(&h, 1, k, 3);
    client_get(&h, 2, k, 3);
    client_get(&h, 3, k, 3);
    int count;
    struct wire_msg m = reply_for(&h, 3, &count);
    ck_assert_int_eq(count, 1);
    ck_assert_uint_eq(m.status, RKV_ERR_BUSY);
    while (h.n_pending)
        deliver(&h, 0);
    client_get(&h, 4, k, 3); /* room again */
    reply_for(&h, 4, &count);
    ck_assert_int_eq(count, 0);
    harness_free(&h);
}
END_TEST

/* Many writes arrive in one loop turn, before the node runs the outbox:
 * the local updates it then runs must still see their contexts (the
 * request table grows meanwhile). */
START_TEST(many_writes_in_one_turn)
{
    struct harness h;
    harness_init(&h, 3, 1000);
    int k = key_with_self(&h, true);
    client_put(&h, 1, k, "base", 3, NULL, 0);
    commit(&h);
    while (h.n_pending)
        deliver(&h, 0);
    client_get(&h, 2, k, 3);
    while (h.n_pending)
        deliver(&h, 0);
    int count;
    struct wire_msg m = reply_for(&h, 2, &count);
    struct mp_reader r;
    mp_reader_init(&r, m.payload.p, m.payload.len);
    uint32_t n;
    const uint8_t *ctx;
    uint32_t ctx_len;
    mp_read_array(&r, &n);
    mp_skip(&r);
    ck_assert(mp_read_bin(&r, &ctx, &ctx_len));
    uint8_t saved[512];
    memcpy(saved, ctx, ctx_len);
    for (uint64_t cl = 100; cl < 160; cl++) { /* 60 siblings: under siblings_max */
        struct rkv_buf b = {0};
        wire_encode_put(&b, cl, 0, h.keys[k], strlen(h.keys[k]), "v", 1, saved, ctx_len, 1, 0, 0);
        struct wire_msg req;
        ck_assert_int_eq(wire_decode(b.data, b.len, &req), RKV_OK);
        coord_on_client(h.c, h.now, cl, &req, b.data, b.len, false); /* no outbox run */
        rkv_buf_free(&b);
    }
    run_outbox(&h);
    commit(&h);
    for (uint64_t cl = 100; cl < 160; cl++) { /* 60 siblings: under siblings_max */
        m = reply_for(&h, cl, &count);
        ck_assert_int_eq(count, 1);
        ck_assert_uint_eq(m.status, RKV_OK);
    }
    harness_free(&h);
}
END_TEST

/* Random schedules: every request answered exactly once, state freed. */
START_TEST(random_schedules)
{
    int seeds = test_seeds(200);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng r = {(uint64_t)seed + 1};
        struct harness h;
        harness_init(&h, 3 + (uint32_t)(seed % 2), 1000);
        uint64_t next_client = 1;
        for (int step = 0; step < 300; step++) {
            uint64_t dice = test_rng_below(&r, 100);
            if (dice < 25) {
                int k = (int)test_rng_below(&r, 8);
                client_get(&h, next_client++, k, 1 + (uint32_t)test_rng_below(&r, 3));
            } else if (dice < 50) {
                int k = (int)test_rng_below(&r, 8);
                client_put(&h, next_client++, k, "x", 1 + (uint32_t)test_rng_below(&r, 3), NULL, 0);
            } else if (dice < 60) {
                commit(&h);
            } else if (dice < 85 && h.n_pending) {
                size_t i = (size_t)test_rng_below(&r, h.n_pending);
                if (test_rng_below(&r, 10) == 0) { /* duplicate it first */
                    struct msg *p = &h.pending[h.n_pending++];
                    *p = h.pending[i];
                    p->bytes = (struct rkv_buf){0};
                    rkv_buf_set(&p->bytes, h.pending[i].bytes.data, h.pending[i].bytes.len);
                }
                if (h.pending[i].is_reply)
                    deliver(&h, i);
                else { /* a forward: drop it */
                    rkv_buf_free(&h.pending[i].bytes);
                    h.pending[i] = h.pending[--h.n_pending];
                }
            } else if (dice < 92 && h.n_pending) {
                size_t i = (size_t)test_rng_below(&r, h.n_pending); /* lost */
                rkv_buf_free(&h.pending[i].bytes);
                h.pending[i] = h.pending[--h.n_pending];
            } else {
                h.now += test_rng_below(&r, 400);
                coord_tick(h.c, h.now);
                run_outbox(&h);
            }
        }
        commit(&h);
        h.now += 5000;
        coord_tick(h.c, h.now);
        run_outbox(&h);
        struct coord_stats st;
        coord_stats(h.c, &st);
        ck_assert_msg(st.inflight == 0, "seed %d: %llu requests never freed", seed,
                      (unsigned long long)st.inflight);
        for (uint64_t cl = 1; cl < next_client; cl++) {
            int count;
            reply_for(&h, cl, &count);
            ck_assert_msg(count == 1, "seed %d: client %llu got %d replies", seed,
                          (unsigned long long)cl, count);
        }
        harness_free(&h);
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("coordinator");
    TCase *tc = tcase_create("rounds");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, put_then_get_any_order);
    tcase_add_test(tc, duplicates_are_counted_once);
    tcase_add_test(tc, missing_replies_fail_at_the_deadline);
    tcase_add_test(tc, late_replies_are_read_repaired);
    tcase_add_test(tc, siblings_and_context);
    tcase_add_test(tc, bad_requests_are_refused_before_sending);
    tcase_add_test(tc, limits_of_a_request);
    tcase_add_test(tc, answered_requests_leave_the_deadline_heap);
    tcase_add_test(tc, oversized_reply_is_toobig);
    tcase_add_test(tc, writes_outside_the_preflist_are_forwarded);
    tcase_add_test(tc, inflight_limit);
    tcase_add_test(tc, down_owner_is_covered_by_a_fallback);
    tcase_add_test(tc, primary_only_counts_owners);
    tcase_add_test(tc, failed_or_silent_owners_get_a_fallback);
    tcase_add_test(tc, no_fallback_left_is_a_quorum_error);
    tcase_add_test(tc, overwrite_supersedes_the_local_copy);
    tcase_add_test(tc, many_writes_in_one_turn);
    tcase_add_test(tc, random_schedules);
    tcase_add_test(tc, an_unsent_forward_is_refused_at_once);
    suite_add_tcase(su, tc);
    return test_run(su);
}
