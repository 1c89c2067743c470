/*
 * test_client.c: libringkv against a scripted fake node.
 *
 * The fake node is a ROUTER socket on loopback served by a thread: it
 * answers each request it receives with the next reply of its script,
 * built before the thread starts, so a test can send what no real node
 * would: a reply naming another ring epoch, a malformed ring, a sibling
 * count no object can have. The client is compiled into this file
 * (client.c is included) so that a test can also look at its internal
 * state and call its static helpers.
 *
 * Memory comes from a scribbling allocator: a freed block is overwritten
 * before it is released, so a result that still points into freed client
 * memory reads garbage even without AddressSanitizer, and the largest
 * single allocation is recorded, so a test can prove that a hostile count
 * was refused before anything was sized by it.
 */
#include "client/client.c"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tests/support/testutil.h"

#define SCRIPT_MAX 8
#define SCRIBBLE   0x5a
#define HEAD_BYTES 16 /* keeps the blocks handed out 16-byte aligned */

/* ---- the scribbling allocator ---- */

static atomic_size_t alloc_max_bytes;      /* largest block asked for by the test's thread */
static _Thread_local bool alloc_untracked; /* the fake node's thread */

static void *scribble_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (!alloc_untracked && size > atomic_load(&alloc_max_bytes))
        atomic_store(&alloc_max_bytes, size);
    unsigned char *b = malloc(HEAD_BYTES + size);
    if (b == NULL)
        return NULL;
    memcpy(b, &size, sizeof size);
    return b + HEAD_BYTES;
}

static void scribble_free(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr == NULL)
        return;
    unsigned char *b = (unsigned char *)ptr - HEAD_BYTES;
    size_t size;
    memcpy(&size, b, sizeof size);
    memset(ptr, SCRIBBLE, size);
    free(b);
}

static void *scribble_realloc(void *ctx, void *ptr, size_t size)
{
    void *p = scribble_malloc(ctx, size);
    if (p == NULL || ptr == NULL)
        return p;
    size_t old;
    memcpy(&old, (unsigned char *)ptr - HEAD_BYTES, sizeof old);
    memcpy(p, ptr, old < size ? old : size);
    scribble_free(ctx, ptr);
    return p;
}

static void scribble_install(void)
{
    struct rkv_allocator a = {
        .malloc_fn = scribble_malloc,
        .realloc_fn = scribble_realloc,
        .free_fn = scribble_free,
        .ctx = NULL,
    };
    rkv_alloc_set(&a);
    atomic_store(&alloc_max_bytes, 0);
}

/* ---- the fake node ---- */

struct step {
    uint32_t type;  /* the request it expects */
    uint64_t epoch; /* of the reply; 0: the request's (the same ring) */
    int status;
    const char *answered;   /* one node id, or NULL */
    struct rkv_buf payload; /* msgpack; empty: nil */
};

struct fake {
    void *zctx, *sock;
    uint16_t port;
    pthread_t thread;
    struct step steps[SCRIPT_MAX];
    size_t n_steps;
    atomic_size_t served;
    atomic_bool unexpected; /* a request of another type than the script's */
};

static struct fake fk;

/* Receives one [routing id, frame] message; false once the context is
 * shut down. */
static bool fake_recv(struct fake *f, zmq_msg_t *rid, struct rkv_buf *frame)
{
    zmq_msg_t body;
    zmq_msg_init(rid);
    zmq_msg_init(&body);
    bool ok = zmq_msg_recv(rid, f->sock, 0) >= 0 && zmq_msg_more(rid) &&
              zmq_msg_recv(&body, f->sock, 0) >= 0 &&
              rkv_buf_set(frame, zmq_msg_data(&body), zmq_msg_size(&body)) == RKV_OK;
    zmq_msg_close(&body);
    return ok;
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    alloc_untracked = true;
    struct rkv_buf in = {0}, out = {0};
    for (size_t i = 0; i < f->n_steps; i++) {
        zmq_msg_t rid;
        if (!fake_recv(f, &rid, &in)) {
            zmq_msg_close(&rid);
            break;
        }
        const struct step *s = &f->steps[i];
        struct wire_msg req;
        if (wire_decode(in.data, in.len, &req) != RKV_OK || req.type != s->type)
            atomic_store(&f->unexpected, true);
        out.len = 0;
        const char *ans[1] = {s->answered};
        wire_encode_reply(&out, req.id, s->epoch ? s->epoch : req.epoch, s->status, "", ans,
                          s->answered ? 1 : 0, false, s->payload.len ? s->payload.data : NULL,
                          s->payload.len);
        /* Counted before the reply leaves, so a client that has its answer
         * always sees the count that includes it. */
        atomic_fetch_add(&f->served, 1);
        zmq_msg_send(&rid, f->sock, ZMQ_SNDMORE);
        zmq_msg_close(&rid);
        zmq_send(f->sock, out.data, out.len, 0);
    }
    rkv_buf_free(&in);
    rkv_buf_free(&out);
    return NULL;
}

/* Binds the fake node to a free loopback port. */
static void fake_bind(void)
{
    memset(&fk, 0, sizeof fk);
    fk.zctx = zmq_ctx_new();
    fk.sock = zmq_socket(fk.zctx, ZMQ_ROUTER);
    int zero = 0;
    ck_assert(fk.sock != NULL);
    ck_assert_int_eq(zmq_setsockopt(fk.sock, ZMQ_LINGER, &zero, sizeof zero), 0);
    ck_assert_int_eq(zmq_bind(fk.sock, "tcp://127.0.0.1:*"), 0);
    char ep[64];
    size_t len = sizeof ep;
    ck_assert_int_eq(zmq_getsockopt(fk.sock, ZMQ_LAST_ENDPOINT, ep, &len), 0);
    const char *colon = strrchr(ep, ':');
    ck_assert(colon != NULL);
    fk.port = (uint16_t)atoi(colon + 1);
}

static struct step *fake_step(uint32_t type, uint64_t epoch, int status, const char *answered)
{
    ck_assert_uint_lt(fk.n_steps, SCRIPT_MAX);
    struct step *s = &fk.steps[fk.n_steps++];
    *s = (struct step){.type = type, .epoch = epoch, .status = status, .answered = answered};
    return s;
}

static void fake_start(void)
{
    ck_assert_int_eq(pthread_create(&fk.thread, NULL, fake_run, &fk), 0);
}

static void fake_stop(void)
{
    zmq_ctx_shutdown(fk.zctx);
    pthread_join(fk.thread, NULL);
    zmq_close(fk.sock);
    zmq_ctx_term(fk.zctx);
    for (size_t i = 0; i < fk.n_steps; i++)
        rkv_buf_free(&fk.steps[i].payload);
    ck_assert_msg(!atomic_load(&fk.unexpected), "the client sent a request off the script");
}

/* ---- payloads ---- */

struct ring_desc {
    uint32_t q, n, vnodes, timeout_ms;
    const char *outsider; /* NULL, or the status of member "n9", outside the ring */
    const char *outsider_id; /* its id instead of "n9" */
};

#define RING_OK ((struct ring_desc){.q = 16, .n = 3, .vnodes = 8, .timeout_ms = 1000})

/* A RING payload: one member, "n1", at the fake node's address (and with
 * d.outsider, "n9" outside the ring, at the same address). */
static void ring_payload(struct rkv_buf *b, struct ring_desc d)
{
    struct mp_writer w;
    mp_writer_init(&w, b);
    mp_write_array(&w, d.outsider ? 8 : 7);
    mp_write_cstr(&w, "fake");
    mp_write_uint(&w, d.q);
    mp_write_uint(&w, d.n);
    mp_write_uint(&w, 1);
    mp_write_uint(&w, 1);
    mp_write_uint(&w, d.timeout_ms);
    mp_write_array(&w, 1);
    mp_write_array(&w, 6);
    mp_write_cstr(&w, "n1");
    mp_write_cstr(&w, "127.0.0.1");
    mp_write_uint(&w, fk.port);
    mp_write_uint(&w, fk.port);
    mp_write_uint(&w, d.vnodes);
    mp_write_cstr(&w, "");
    if (d.outsider) {
        mp_write_array(&w, 1);
        mp_write_array(&w, 6);
        mp_write_cstr(&w, d.outsider_id ? d.outsider_id : "n9");
        mp_write_cstr(&w, "127.0.0.1");
        mp_write_uint(&w, fk.port);
        mp_write_uint(&w, fk.port);
        mp_write_cstr(&w, d.outsider);
        mp_write_cstr(&w, "");
    }
    ck_assert(!w.failed);
}

/* A GET payload: n siblings "v0", "v1", ... and the context "ctx". */
static void get_payload(struct rkv_buf *b, uint32_t n)
{
    struct mp_writer w;
    mp_writer_init(&w, b);
    mp_write_array(&w, 2);
    mp_write_array(&w, n);
    for (uint32_t i = 0; i < n; i++) {
        char v[16];
        int len = snprintf(v, sizeof v, "v%u", i);
        mp_write_array(&w, 3);
        mp_write_bin(&w, v, (size_t)len);
        mp_write_uint(&w, 1000 + i);
        mp_write_uint(&w, 0);
    }
    mp_write_bin(&w, "ctx", 3);
    ck_assert(!w.failed);
}

static struct ringkv_client *connect_fake(void)
{
    struct ringkv_options o;
    ringkv_options_default(&o);
    char seeds[64];
    snprintf(seeds, sizeof seeds, "127.0.0.1:%u", fk.port);
    o.seeds = seeds;
    o.connect_timeout_ms = 3000;
    o.timeout_ms = 3000;
    struct ringkv_client *c;
    int rc = ringkv_connect(&o, &c);
    ck_assert_msg(rc == RINGKV_OK, "connect: %s", ringkv_errmsg(c));
    return c;
}

static void take_one_stat(void *ctx, const char *name, uint64_t value)
{
    (void)name;
    *(uint64_t *)ctx = value;
}

/* ---- tests ---- */

/* The result of a request whose reply named another epoch: the client
 * fetches the ring again, which frees its node table, before the caller
 * reads the result. Nothing in the result may have pointed there (the
 * coordinator's id once did), nor into the client at all: it must read
 * the same after ringkv_close. */
START_TEST(result_outlives_ring_refresh_and_close)
{
    scribble_install();
    fake_bind();
    ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, RING_OK);
    get_payload(&fake_step(WIRE_GET, 1, RKV_OK, "n1")->payload, 2);
    struct ring_desc other = RING_OK;
    other.vnodes = 16;
    ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, other);
    fake_start();

    struct ringkv_client *c = connect_fake();
    uint64_t epoch = ring_epoch(c->ring);
    ck_assert_uint_ne(epoch, 1);
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "k", 1, NULL, &r), RINGKV_OK);
    ck_assert_uint_eq(atomic_load(&fk.served), 3); /* the ring was fetched again */
    ck_assert_uint_ne(ring_epoch(c->ring), epoch);
    ck_assert_str_eq(ringkv_errmsg(c), "");
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(r.status, RINGKV_OK);
        ck_assert_ptr_nonnull(r.node);
        ck_assert_str_eq(r.node, "n1");
        ck_assert_uint_eq(r.n_answered, 1);
        ck_assert_str_eq(r.answered[0], "n1");
        ck_assert_uint_eq(r.n_siblings, 2);
        ck_assert_uint_eq(r.siblings[1].value_len, 2);
        ck_assert_mem_eq(r.siblings[1].value, "v1", 2);
        ck_assert_uint_eq(r.siblings[1].ts_ms, 1001);
        ck_assert_uint_eq(r.context_len, 3);
        ck_assert_mem_eq(r.context, "ctx", 3);
        if (round == 0)
            ringkv_close(c);
    }
    ringkv_result_free(&r);
    fake_stop();
}
END_TEST

/* A ring refresh that fails after a request that succeeded: the request's
 * outcome and its (empty) message stand, and the next request tries the
 * refresh again. */
START_TEST(failed_refresh_keeps_the_outcome)
{
    scribble_install();
    fake_bind();
    ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, RING_OK);
    get_payload(&fake_step(WIRE_GET, 1, RKV_OK, "n1")->payload, 1);
    fake_step(WIRE_RING, 0, RKV_OK, NULL); /* nil: not a ring */
    fake_start();

    struct ringkv_client *c = connect_fake();
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "k", 1, NULL, &r), RINGKV_OK);
    ck_assert_uint_eq(atomic_load(&fk.served), 3);
    ck_assert_str_eq(ringkv_errmsg(c), "");
    ck_assert(c->refresh);
    ck_assert_str_eq(r.node, "n1");
    ringkv_result_free(&r);
    ringkv_close(c);
    fake_stop();
}
END_TEST

/* A reply with one sibling more than any object holds is refused; one
 * with exactly as many is taken. */
START_TEST(sibling_count_bounded)
{
    scribble_install();
    fake_bind();
    ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, RING_OK);
    get_payload(&fake_step(WIRE_GET, 0, RKV_OK, "n1")->payload, RKV_SIBLINGS_MAX);
    get_payload(&fake_step(WIRE_GET, 0, RKV_OK, "n1")->payload, RKV_SIBLINGS_MAX + 1);
    fake_start();
    struct ringkv_client *c = connect_fake();
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "k", 1, NULL, &r), RINGKV_OK);
    ck_assert_uint_eq(r.n_siblings, RKV_SIBLINGS_MAX);
    ringkv_result_free(&r);
    ck_assert_int_eq(ringkv_get(c, "k", 1, NULL, &r), RINGKV_EPROTO);
    ck_assert_int_eq(r.status, RINGKV_EPROTO);
    ck_assert_uint_eq(r.n_siblings, 0);
    ck_assert_ptr_nonnull(strstr(ringkv_errmsg(c), "n1: unusable reply"));
    ringkv_result_free(&r);
    ringkv_close(c);
    fake_stop();
}
END_TEST

/* A 1 MiB frame whose sibling array claims a million entries (nils, so
 * the reader's one-byte-per-element check passes): the count must be
 * refused before anything is sized by it. Sized by it, the sibling table
 * alone would take 32 MiB. */
START_TEST(claimed_sibling_count_allocates_nothing)
{
    enum { CLAIMED = 1000000 };
    scribble_install();
    fake_bind();
    ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, RING_OK);
    struct rkv_buf *b = &fake_step(WIRE_GET, 0, RKV_OK, "n1")->payload;
    struct mp_writer w;
    mp_writer_init(&w, b);
    mp_write_array(&w, 2);
    mp_write_array(&w, CLAIMED);
    ck_assert(!w.failed);
    ck_assert_int_eq(rkv_buf_reserve(b, CLAIMED), RKV_OK);
    memset(b->data + b->len, 0xc0, CLAIMED); /* nil */
    b->len += CLAIMED;
    mp_write_bin(&w, "ctx", 3);
    ck_assert(!w.failed);
    fake_start();
    struct ringkv_client *c = connect_fake();
    atomic_store(&alloc_max_bytes, 0);
    struct ringkv_result r;
    ck_assert_int_eq(ringkv_get(c, "k", 1, NULL, &r), RINGKV_EPROTO);
    size_t most = atomic_load(&alloc_max_bytes);
    ck_assert_msg(most <= 2 * (CLAIMED + 1024), "an allocation of %zu bytes", most);
    ringkv_result_free(&r);
    ringkv_close(c);
    fake_stop();
}
END_TEST

/* Members outside the ring (joining, leaving) are listed apart from the
 * ring's and take requests by id; they own no partition. */
START_TEST(members_outside_the_ring)
{
    scribble_install();
    fake_bind();
    struct ring_desc d = RING_OK;
    d.outsider = "leaving";
    ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, d);
    struct rkv_buf *stats = &fake_step(WIRE_STATS, 0, RKV_OK, NULL)->payload;
    struct mp_writer w;
    mp_writer_init(&w, stats);
    mp_write_map(&w, 1);
    mp_write_cstr(&w, "leaving");
    mp_write_uint(&w, 1);
    ck_assert(!w.failed);
    fake_start();
    struct ringkv_client *c = connect_fake();
    struct ringkv_ring_info info;
    ck_assert_int_eq(ringkv_ring(c, &info), RINGKV_OK);
    ck_assert_uint_eq(info.n_nodes, 1);
    ck_assert_str_eq(info.nodes[0].id, "n1");
    ck_assert_str_eq(info.nodes[0].status, "up");
    ck_assert_uint_eq(info.nodes[0].partitions_owned, 16);
    ck_assert_uint_eq(info.n_others, 1);
    ck_assert_str_eq(info.others[0].id, "n9");
    ck_assert_str_eq(info.others[0].status, "leaving");
    ck_assert_uint_eq(info.others[0].partitions_owned, 0);
    const char *ids[RKV_REPLICAS_MAX];
    for (uint32_t p = 0; p < 16; p++) /* routing sees the ring's members only */
        ck_assert_str_eq(ids[ringkv_preflist(c, p, ids, RKV_REPLICAS_MAX) - 1], "n1");
    uint64_t leaving = 0;
    ck_assert_int_eq(ringkv_stats(c, "n9", take_one_stat, &leaving), RINGKV_OK);
    ck_assert_uint_eq(leaving, 1);
    ringkv_close(c);
    fake_stop();
}
END_TEST

/* Ring descriptions no cluster file can produce are refused at connect. */
START_TEST(hostile_rings_refused)
{
    static const struct ring_desc bad[] = {
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = 0},
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = CONFIG_INTERVAL_MS_MAX + 1},
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = UINT32_MAX},
        {.q = 0, .n = 3, .vnodes = 8, .timeout_ms = 1000},
        {.q = 24, .n = 3, .vnodes = 8, .timeout_ms = 1000},
        {.q = 2 * RKV_PARTITIONS_MAX, .n = 3, .vnodes = 8, .timeout_ms = 1000},
        {.q = 16, .n = 0, .vnodes = 8, .timeout_ms = 1000},
        {.q = 16, .n = RKV_REPLICAS_MAX + 1, .vnodes = 8, .timeout_ms = 1000},
        {.q = 16, .n = 3, .vnodes = 0, .timeout_ms = 1000},
        {.q = 16, .n = 3, .vnodes = RKV_VNODES_MAX + 1, .timeout_ms = 1000},
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = 1000, .outsider = "up"},
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = 1000, .outsider = "gone"},
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = 1000, .outsider = "joining",
         .outsider_id = "n1"},
        {.q = 16, .n = 3, .vnodes = 8, .timeout_ms = 1000, .outsider = "joining",
         .outsider_id = ""},
    };
    scribble_install();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fake_bind();
        ring_payload(&fake_step(WIRE_RING, 0, RKV_OK, NULL)->payload, bad[i]);
        fake_start();
        struct ringkv_options o;
        ringkv_options_default(&o);
        char seeds[64];
        snprintf(seeds, sizeof seeds, "127.0.0.1:%u", fk.port);
        o.seeds = seeds;
        o.connect_timeout_ms = 3000;
        struct ringkv_client *c;
        int rc = ringkv_connect(&o, &c);
        ck_assert_msg(rc != RINGKV_OK, "ring %zu accepted", i);
        ck_assert_uint_eq(atomic_load(&fk.served), 1);
        ringkv_close(c);
        fake_stop();
    }
}
END_TEST

/* The client's sockets bound what a node can make it receive. */
START_TEST(sockets_bound_replies)
{
    struct ringkv_client c = {.zctx = zmq_ctx_new()};
    void *s = dealer(&c, "127.0.0.1", 1, "");
    ck_assert_ptr_nonnull(s);
    int64_t maxmsg = 0;
    int hwm = 0;
    size_t len = sizeof maxmsg;
    ck_assert_int_eq(zmq_getsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, &len), 0);
    ck_assert_int_eq(maxmsg, RKV_MESSAGE_BYTES_MAX);
    len = sizeof hwm;
    ck_assert_int_eq(zmq_getsockopt(s, ZMQ_RCVHWM, &hwm, &len), 0);
    ck_assert_int_eq(hwm, REPLIES_QUEUED_MAX);
    zmq_close(s);
    zmq_ctx_term(c.zctx);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("client");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, result_outlives_ring_refresh_and_close);
    tcase_add_test(tc, failed_refresh_keeps_the_outcome);
    tcase_add_test(tc, sibling_count_bounded);
    tcase_add_test(tc, claimed_sibling_count_allocates_nothing);
    tcase_add_test(tc, hostile_rings_refused);
    tcase_add_test(tc, members_outside_the_ring);
    tcase_add_test(tc, sockets_bound_replies);
    suite_add_tcase(su, tc);
    return test_run(su);
}
