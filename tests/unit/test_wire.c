/*
 * test_wire.c: wire messages: round trips of every encoder through
 * wire_decode, refusal of malformed frames, and BATCH frames built with
 * struct wire_batch.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/wire.h"
#include "tests/support/testutil.h"

START_TEST(requests_round_trip)
{
    struct rkv_buf b = {0};
    struct wire_msg m;
    ck_assert_int_eq(wire_encode_put(&b, 7, 99, "key", 3, "value", 5, "ctx", 3, 2, 500, 1000),
                     RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    ck_assert_uint_eq(m.type, WIRE_PUT);
    ck_assert_uint_eq(m.id, 7);
    ck_assert_uint_eq(m.epoch, 99);
    ck_assert_uint_eq(m.key.len, 3);
    ck_assert_mem_eq(m.key.p, "key", 3);
    ck_assert_uint_eq(m.value.len, 5);
    ck_assert_uint_eq(m.quorum, 2);
    ck_assert_uint_eq(m.timeout_ms, 500);
    ck_assert_uint_eq(m.ttl_ms, 1000);

    b.len = 0;
    ck_assert_int_eq(wire_encode_replica_put(&b, 8, 99, 17, "k", 1, "obj", 3), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    ck_assert_uint_eq(m.type, WIRE_REPLICA_PUT);
    ck_assert_uint_eq(m.partition, 17);
    ck_assert_uint_eq(m.object.len, 3);

    /* every strict prefix is refused */
    for (size_t cut = 0; cut < b.len; cut++)
        ck_assert_int_eq(wire_decode(b.data, cut, &m), RKV_ERR_PROTO);
    rkv_buf_free(&b);
}
END_TEST

/* Decodes a sealed batch and checks it holds exactly msgs[0..n). */
static void check_frame(const uint8_t *frame, size_t len, struct rkv_buf *msgs, uint32_t n)
{
    struct wire_msg m;
    ck_assert_int_eq(wire_decode(frame, len, &m), RKV_OK);
    if (n == 1) { /* a batch of one is the message itself */
        ck_assert_uint_eq(len, msgs[0].len);
        ck_assert_mem_eq(frame, msgs[0].data, len);
        return;
    }
    ck_assert_uint_eq(m.type, WIRE_BATCH);
    ck_assert_uint_eq(m.n_frames, n);
    ck_assert_uint_eq(m.epoch, 42);
    struct wire_bytes f;
    uint32_t i = 0;
    for (size_t pos = 0; wire_batch_next(&m, &pos, &f); i++) {
        ck_assert_uint_lt(i, n);
        ck_assert_uint_eq(f.len, msgs[i].len);
        ck_assert_mem_eq(f.p, msgs[i].data, f.len);
    }
    ck_assert_uint_eq(i, n);
}

START_TEST(batch_round_trip)
{
    enum { N = 300 };
    static struct rkv_buf msgs[N];
    struct test_rng rng = {.s = 5};
    char key[64];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%u", i);
        /* sizes either side of msgpack's bin8/bin16 boundaries */
        size_t vlen = test_rng_below(&rng, 70000);
        uint8_t *v = calloc(1, vlen + 1);
        ck_assert_int_eq(wire_encode_replica_put(&msgs[i], i + 1, 42, (uint16_t)i, key,
                                                 strlen(key), v, vlen),
                         RKV_OK);
        free(v);
    }
    struct wire_batch b = {0};
    for (uint32_t n = 1; n <= N; n += n < 4 ? 1 : 37) {
        for (uint32_t i = 0; i < n; i++)
            ck_assert_int_eq(wire_batch_add(&b, msgs[i].data, msgs[i].len), RKV_OK);
        ck_assert_uint_eq(b.count, n);
        /* walking before sealing sees the same messages */
        struct wire_bytes f;
        uint32_t seen = 0;
        for (size_t pos = 0; wire_batch_each(&b, &pos, &f); seen++)
            ck_assert_mem_eq(f.p, msgs[seen].data, f.len);
        ck_assert_uint_eq(seen, n);
        const uint8_t *frame;
        size_t len;
        wire_batch_seal(&b, 42, &frame, &len);
        size_t total = 0;
        for (uint32_t i = 0; i < n; i++)
            total += msgs[i].len;
        ck_assert_uint_le(len, wire_batch_frame_bytes(n, total));
        check_frame(frame, len, msgs, n);
        wire_batch_clear(&b);
        ck_assert_uint_eq(b.count, 0);
    }
    wire_batch_free(&b);
    for (uint32_t i = 0; i < N; i++)
        rkv_buf_free(&msgs[i]);
}
END_TEST

/* A BATCH is refused whole when any of its frames is not a bin, when it
 * claims more frames than it holds, or more than WIRE_BATCH_MAX. */
START_TEST(batch_malformed_refused)
{
    struct rkv_buf one = {0}, b = {0};
    ck_assert_int_eq(wire_encode_simple(&one, WIRE_PING, 1, 0), RKV_OK);
    struct mp_writer w;
    struct wire_msg m;

    /* claims 3 frames, holds 2 */
    mp_writer_init(&w, &b);
    wire_header(&w, 1, WIRE_BATCH, 0, 0);
    mp_write_array(&w, 3);
    mp_write_bin(&w, one.data, one.len);
    mp_write_bin(&w, one.data, one.len);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_ERR_PROTO);

    /* a frame that is a str, not a bin */
    b.len = 0;
    mp_writer_init(&w, &b);
    wire_header(&w, 1, WIRE_BATCH, 0, 0);
    mp_write_array(&w, 2);
    mp_write_bin(&w, one.data, one.len);
    mp_write_str(&w, (const char *)one.data, one.len);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_ERR_PROTO);

    /* too many frames, even if they are there */
    b.len = 0;
    mp_writer_init(&w, &b);
    wire_header(&w, 1, WIRE_BATCH, 0, 0);
    mp_write_array(&w, WIRE_BATCH_MAX + 1);
    for (uint32_t i = 0; i <= WIRE_BATCH_MAX; i++)
        mp_write_bin(&w, "", 0);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_ERR_PROTO);

    /* exactly the maximum is fine, and its empty frames are walked */
    b.len = 0;
    mp_writer_init(&w, &b);
    wire_header(&w, 1, WIRE_BATCH, 0, 0);
    mp_write_array(&w, WIRE_BATCH_MAX);
    for (uint32_t i = 0; i < WIRE_BATCH_MAX; i++)
        mp_write_bin(&w, "", 0);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    struct wire_bytes f;
    uint32_t n = 0;
    for (size_t pos = 0; wire_batch_next(&m, &pos, &f); n++)
        ck_assert_uint_eq(f.len, 0);
    ck_assert_uint_eq(n, WIRE_BATCH_MAX);
    rkv_buf_free(&one);
    rkv_buf_free(&b);
}
END_TEST

/* A failed allocation leaves the batch as it was. */
START_TEST(batch_add_out_of_memory)
{
    struct rkv_buf one = {0};
    ck_assert_int_eq(wire_encode_simple(&one, WIRE_PING, 1, 0), RKV_OK);
    struct wire_batch b = {0};
    ck_assert_int_eq(wire_batch_add(&b, one.data, one.len), RKV_OK);
    static uint8_t big[1 << 20];
    test_alloc_fail_from(0);
    int rc = wire_batch_add(&b, big, sizeof big);
    test_alloc_reset();
    ck_assert_int_eq(rc, RKV_ERR_NOMEM);
    ck_assert_uint_eq(b.count, 1);
    const uint8_t *frame;
    size_t len;
    wire_batch_seal(&b, 42, &frame, &len);
    ck_assert_uint_eq(len, one.len);
    ck_assert_mem_eq(frame, one.data, len);
    wire_batch_free(&b);
    rkv_buf_free(&one);
}
END_TEST

/* PUT and DEL carry flags only when set; 0 and unknown bits are refused. */
START_TEST(write_flags)
{
    struct rkv_buf b = {0};
    struct wire_msg m = {.type = WIRE_PUT, .id = 3, .key = {(const uint8_t *)"k", 1},
                         .value = {(const uint8_t *)"v", 1}, .flags = WIRE_FLAG_OVERWRITE};
    ck_assert_int_eq(wire_encode_request(&b, &m), RKV_OK);
    struct wire_msg d;
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert_uint_eq(d.flags, WIRE_FLAG_OVERWRITE);
    ck_assert_uint_eq(d.value.len, 1);
    m.type = WIRE_DEL;
    b.len = 0;
    ck_assert_int_eq(wire_encode_request(&b, &m), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert_uint_eq(d.type, WIRE_DEL);
    ck_assert_uint_eq(d.flags, WIRE_FLAG_OVERWRITE);
    /* without flags: the old form, decoded as flags 0 */
    b.len = 0;
    ck_assert_int_eq(wire_encode_del(&b, 1, 0, "k", 1, NULL, 0, 0, 0), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert_uint_eq(d.flags, 0);
    /* an explicit 0, or a bit nobody knows; and a count that claims the
     * flags without them (the last case) */
    static const int64_t bad[] = {0, 4, 1ll << 31, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.len = 0;
        struct mp_writer w;
        mp_writer_init(&w, &b);
        wire_header(&w, 5, WIRE_DEL, 1, 0);
        mp_write_bin(&w, "k", 1);
        mp_write_bin(&w, "", 0);
        mp_write_uint(&w, 0);
        mp_write_uint(&w, 0);
        if (bad[i] >= 0)
            mp_write_uint(&w, (uint64_t)bad[i]);
        ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_ERR_PROTO);
    }
    /* a reply is no request */
    m.type = WIRE_REPLY;
    ck_assert_int_eq(wire_encode_request(&b, &m), RKV_ERR_INVAL);
    rkv_buf_free(&b);
}
END_TEST

/* Sloppy quorum's optional fields: a reply's fallbacks and a REPLICA_PUT's
 * hint owner round-trip, are left out when empty, and are refused when
 * present but empty or malformed. */
/* MEMBER: the three ops round trip; another op, an empty id or one with
 * a NUL is malformed. */
START_TEST(member_requests)
{
    struct rkv_buf b = {0};
    struct wire_msg m;
    ck_assert_int_eq(wire_encode_member(&b, 9, 3, WIRE_MEMBER_REMOVE, "n4"), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    ck_assert_uint_eq(m.type, WIRE_MEMBER);
    ck_assert_uint_eq(m.op, WIRE_MEMBER_REMOVE);
    ck_assert_uint_eq(m.member.len, 2);
    ck_assert(memcmp(m.member.p, "n4", 2) == 0);
    b.len = 0;
    ck_assert_int_eq(wire_encode_member(&b, 9, 3, WIRE_MEMBER_LEAVE, "n1"), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    ck_assert_uint_eq(m.op, WIRE_MEMBER_LEAVE);
    /* an id with a NUL inside: encode "nQx", then make the Q a NUL */
    b.len = 0;
    ck_assert_int_eq(wire_encode_member(&b, 9, 3, WIRE_MEMBER_LEAVE, "nQx"), RKV_OK);
    uint8_t *q = memchr(b.data, 'Q', b.len);
    ck_assert_ptr_nonnull(q);
    *q = 0;
    ck_assert_int_ne(wire_decode(b.data, b.len, &m), RKV_OK);
    b.len = 0;
    ck_assert_int_eq(wire_encode_member(&b, 9, 3, WIRE_MEMBER_LEAVE, ""), RKV_OK);
    ck_assert_int_ne(wire_decode(b.data, b.len, &m), RKV_OK);
    b.len = 0;
    ck_assert_int_eq(wire_encode_member(&b, 9, 3, WIRE_MEMBER_LEAVE_FORCE, "n1"), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &m), RKV_OK);
    ck_assert_uint_eq(m.op, WIRE_MEMBER_LEAVE_FORCE);
    for (uint32_t op = 0; op < 6; op += 4) { /* 0 and 4: no such op */
        b.len = 0;
        ck_assert_int_eq(wire_encode_member(&b, 9, 3, op, "n1"), RKV_OK);
        ck_assert_int_ne(wire_decode(b.data, b.len, &m), RKV_OK);
    }
    rkv_buf_free(&b);
}
END_TEST

START_TEST(fallbacks_and_hints)
{
    struct rkv_buf b = {0};
    struct wire_msg d;
    const char *answered[] = {"n1", "n4"};
    struct wire_fallbacks fb = {.n = 1, .fallback = {"n4"}, .fallback_for = {"n2"}};
    ck_assert_int_eq(wire_encode_reply_fallbacks(&b, 7, 0, RKV_OK, "", answered, 2, false, NULL,
                                                 0, &fb), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert_uint_eq(d.n_answered, 2);
    ck_assert_uint_eq(d.n_fallbacks, 1);
    ck_assert(d.fallback[0].len == 2 && memcmp(d.fallback[0].p, "n4", 2) == 0);
    ck_assert(d.fallback_for[0].len == 2 && memcmp(d.fallback_for[0].p, "n2", 2) == 0);
    fb.n = 0; /* none: the old five-field form */
    b.len = 0;
    ck_assert_int_eq(wire_encode_reply_fallbacks(&b, 7, 0, RKV_OK, "", answered, 2, false, NULL,
                                                 0, &fb), RKV_OK);
    struct rkv_buf plain = {0};
    ck_assert_int_eq(wire_encode_reply(&plain, 7, 0, RKV_OK, "", answered, 2, false, NULL, 0),
                     RKV_OK);
    ck_assert(b.len == plain.len && memcmp(b.data, plain.data, b.len) == 0);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert_uint_eq(d.n_fallbacks, 0);
    /* present but empty, or a pair that is not a pair */
    for (int bad = 0; bad < 2; bad++) {
        b.len = 0;
        struct mp_writer w;
        mp_writer_init(&w, &b);
        wire_header(&w, 6, WIRE_REPLY, 7, 0);
        mp_write_uint(&w, 0);
        mp_write_cstr(&w, "");
        mp_write_array(&w, 0);
        mp_write_bool(&w, false);
        mp_write_nil(&w);
        mp_write_array(&w, bad ? 1 : 0);
        if (bad) {
            mp_write_array(&w, 1);
            mp_write_cstr(&w, "n4");
        }
        ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_ERR_PROTO);
    }
    /* a hint */
    b.len = 0;
    ck_assert_int_eq(wire_encode_hint_put(&b, 9, 0, 3, "k", 1, "o", 1, "n2"), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert(d.hint_for.len == 2 && memcmp(d.hint_for.p, "n2", 2) == 0);
    ck_assert_uint_eq(d.partition, 3);
    b.len = 0;
    ck_assert_int_eq(wire_encode_hint_put(&b, 9, 0, 3, "k", 1, "o", 1, ""), RKV_OK);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_OK);
    ck_assert_uint_eq(d.hint_for.len, 0);
    b.len = 0;
    struct mp_writer w;
    mp_writer_init(&w, &b);
    wire_header(&w, 4, WIRE_REPLICA_PUT, 9, 0);
    mp_write_uint(&w, 3);
    mp_write_bin(&w, "k", 1);
    mp_write_bin(&w, "o", 1);
    mp_write_cstr(&w, ""); /* an empty owner is malformed */
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_ERR_PROTO);
    b.len = 0; /* and so is one with a NUL inside ("n3" followed by junk) */
    mp_writer_init(&w, &b);
    wire_header(&w, 4, WIRE_REPLICA_PUT, 9, 0);
    mp_write_uint(&w, 3);
    mp_write_bin(&w, "k", 1);
    mp_write_bin(&w, "o", 1);
    mp_write_str(&w, "n3\0AB", 5);
    ck_assert_int_eq(wire_decode(b.data, b.len, &d), RKV_ERR_PROTO);
    rkv_buf_free(&plain);
    rkv_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("wire");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, requests_round_trip);
    tcase_add_test(tc, batch_round_trip);
    tcase_add_test(tc, batch_malformed_refused);
    tcase_add_test(tc, batch_add_out_of_memory);
    tcase_add_test(tc, fallbacks_and_hints);
    tcase_add_test(tc, member_requests);
    tcase_add_test(tc, write_flags);
    suite_add_tcase(su, tc);
    return test_run(su);
}
