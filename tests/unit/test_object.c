/*
 * test_object.c: sibling sets and dotted version vectors (common/object.h).
 *
 * The heart is a seeded simulation: a few replicas, each a coordinator with
 * its own actor, take writes whose contexts come from random earlier reads
 * (of one replica, or of several merged the way a coordinator merges
 * replies), and sync with each other at random. Every merge is checked for
 * the algebra (commutative, associative, idempotent), for the invariants,
 * and against a brute-force reference that knows every sibling ever
 * created: a merge keeps exactly the input dots that no created sibling's
 * past covers. At the end all replicas converge to exactly the created dots
 * nobody has seen superseded (invariant 4 and 5 of DESIGN.md).
 *
 * Around it: hand-built cases (same-actor concurrency, resolving puts, lww,
 * limits, pruning), the decoder against truncation, byte flips, mutation
 * and hand-made malicious frames, and allocation failure at every step.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/object.h"
#include "tests/support/testutil.h"

/* ---- helpers ---- */

static struct object_limits limits(enum conflict_mode m)
{
    struct object_limits lim;
    object_limits_default(&lim);
    lim.conflict = m;
    return lim;
}

static void vc_add(struct vclock *vc, uint64_t actor, uint64_t counter, uint64_t ts)
{
    ck_assert_int_eq(vclock_bump(vc, actor, counter, ts), RKV_OK);
}

static void put(struct object *o, const struct vclock *ctx, uint64_t actor, uint64_t now,
                const char *v, const struct object_limits *lim)
{
    ck_assert_int_eq(object_update(o, ctx, actor, now, v, strlen(v), 0, false, lim), RKV_OK);
    ck_assert(object_invariants_ok(o));
}

static int find_dot(const struct object *o, uint64_t actor, uint64_t counter)
{
    for (uint32_t i = 0; i < o->n; i++)
        if (o->s[i].actor == actor && o->s[i].counter == counter)
            return (int)i;
    return -1;
}

static bool has_value(const struct object *o, const char *v)
{
    for (uint32_t i = 0; i < o->n; i++)
        if (o->s[i].value_len == strlen(v) && memcmp(o->s[i].value, v, strlen(v)) == 0)
            return true;
    return false;
}

static struct rkv_buf enc(const struct object *o)
{
    struct rkv_buf b = {0};
    ck_assert_int_eq(object_encode(o, &b), RKV_OK);
    return b;
}

static bool bytes_eq(const struct rkv_buf *a, const struct rkv_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* True if o encodes to exactly the bytes in b. */
static bool encodes_to(const struct object *o, const struct rkv_buf *b)
{
    struct rkv_buf now = enc(o);
    bool eq = bytes_eq(&now, b);
    rkv_buf_free(&now);
    return eq;
}

static void copy(struct object *dst, const struct object *src)
{
    object_init(dst);
    ck_assert_int_eq(object_copy(dst, src), RKV_OK);
}

static void sync_ok(struct object *dst, const struct object *src, const struct object_limits *lim)
{
    ck_assert_int_eq(object_sync(dst, src, lim, NULL), RKV_OK);
    ck_assert(object_invariants_ok(dst));
}

/* ---- small pieces ---- */

START_TEST(modes_and_limits)
{
    ck_assert_int_eq(conflict_mode_parse("siblings"), CONFLICT_SIBLINGS);
    ck_assert_int_eq(conflict_mode_parse("lww"), CONFLICT_LWW);
    ck_assert_int_eq(conflict_mode_parse("LWW"), -1);
    ck_assert_int_eq(conflict_mode_parse(""), -1);
    ck_assert_str_eq(conflict_mode_name(CONFLICT_SIBLINGS), "siblings");
    ck_assert_str_eq(conflict_mode_name(CONFLICT_LWW), "lww");
    struct object_limits lim;
    object_limits_default(&lim);
    ck_assert_uint_eq(lim.siblings_max, RKV_SIBLINGS_MAX);
    ck_assert_uint_eq(lim.clock_entries_max, RKV_CLOCK_ENTRIES_MAX);
    ck_assert_uint_eq(lim.value_bytes_max, RKV_VALUE_BYTES_MAX);
    ck_assert_int_eq(lim.conflict, CONFLICT_SIBLINGS);
}
END_TEST

START_TEST(vclock_basics)
{
    struct vclock a, b, c;
    vclock_init(&a);
    vclock_init(&b);
    vclock_init(&c);
    vc_add(&a, 30, 2, 100);
    vc_add(&a, 10, 5, 50);
    vc_add(&a, 20, 1, 70);
    ck_assert_uint_eq(a.n, 3);
    ck_assert(a.e[0].actor == 10 && a.e[1].actor == 20 && a.e[2].actor == 30);
    ck_assert_uint_eq(vclock_get(&a, 10), 5);
    ck_assert_uint_eq(vclock_get(&a, 11), 0);
    ck_assert(vclock_covers(&a, 10, 5) && !vclock_covers(&a, 10, 6));
    ck_assert(!vclock_covers(&a, 99, 1));
    /* bump only raises */
    vc_add(&a, 10, 3, 999);
    ck_assert_uint_eq(vclock_get(&a, 10), 5);
    ck_assert_uint_eq(a.e[0].ts_ms, 50);
    vc_add(&a, 10, 0, 1); /* counters are > 0: a no-op */
    ck_assert_uint_eq(a.n, 3);
    /* b: {10:7 @40, 25:1 @10, 30:2 @120} */
    vc_add(&b, 10, 7, 40);
    vc_add(&b, 25, 1, 10);
    vc_add(&b, 30, 2, 120);
    ck_assert(!vclock_descends(&a, &b) && !vclock_descends(&b, &a));
    ck_assert_int_eq(vclock_copy(&c, &a), RKV_OK);
    ck_assert(vclock_equal(&c, &a));
    ck_assert_int_eq(vclock_join(&c, &b), RKV_OK);
    ck_assert_uint_eq(c.n, 4);
    ck_assert(vclock_descends(&c, &a) && vclock_descends(&c, &b));
    ck_assert(!vclock_descends(&a, &c));
    /* ts follows the larger counter; on a tie the larger ts */
    ck_assert(c.e[0].actor == 10 && c.e[0].counter == 7 && c.e[0].ts_ms == 40);
    ck_assert(c.e[1].actor == 20 && c.e[1].counter == 1 && c.e[1].ts_ms == 70);
    ck_assert(c.e[2].actor == 25 && c.e[2].counter == 1 && c.e[2].ts_ms == 10);
    ck_assert(c.e[3].actor == 30 && c.e[3].counter == 2 && c.e[3].ts_ms == 120);
    /* join is commutative; join with self and with empty are no-ops */
    struct vclock d;
    vclock_init(&d);
    ck_assert_int_eq(vclock_copy(&d, &b), RKV_OK);
    ck_assert_int_eq(vclock_join(&d, &a), RKV_OK);
    ck_assert(vclock_equal(&c, &d));
    for (uint32_t i = 0; i < c.n; i++)
        ck_assert_uint_eq(c.e[i].ts_ms, d.e[i].ts_ms);
    ck_assert_int_eq(vclock_join(&d, &d), RKV_OK);
    struct vclock empty;
    vclock_init(&empty);
    ck_assert_int_eq(vclock_join(&d, &empty), RKV_OK);
    ck_assert(vclock_equal(&c, &d));
    ck_assert(vclock_descends(&d, &empty) && !vclock_descends(&empty, &d));
    ck_assert(vclock_equal(&empty, &empty));
    ck_assert_int_eq(vclock_join(&empty, &d), RKV_OK);
    ck_assert(vclock_equal(&empty, &d));
    vclock_free(&a);
    vclock_free(&b);
    vclock_free(&c);
    vclock_free(&d);
    vclock_free(&empty);
    vclock_free(&empty); /* freeing twice is a no-op */
}
END_TEST

START_TEST(vclock_join_random)
{
    int seeds = test_seeds(50);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        struct vclock a, b, j;
        vclock_init(&a);
        vclock_init(&b);
        vclock_init(&j);
        uint64_t ca[40] = {0}, cb[40] = {0};
        for (int k = 0; k < 40; k++) {
            uint64_t actor = test_rng_below(&rng, 40);
            uint64_t n = 1 + test_rng_below(&rng, 9);
            if (k & 1) {
                vc_add(&a, actor, n, n);
                ca[actor] = ca[actor] > n ? ca[actor] : n;
            } else {
                vc_add(&b, actor, n, n);
                cb[actor] = cb[actor] > n ? cb[actor] : n;
            }
        }
        ck_assert_int_eq(vclock_copy(&j, &a), RKV_OK);
        ck_assert_int_eq(vclock_join(&j, &b), RKV_OK);
        for (uint64_t actor = 0; actor < 40; actor++) {
            uint64_t want = ca[actor] > cb[actor] ? ca[actor] : cb[actor];
            ck_assert_msg(vclock_get(&j, actor) == want, "seed %d actor %d", seed, (int)actor);
        }
        for (uint32_t k = 1; k < j.n; k++)
            ck_assert_msg(j.e[k - 1].actor < j.e[k].actor, "seed %d", seed);
        vclock_free(&a);
        vclock_free(&b);
        vclock_free(&j);
    }
}
END_TEST

START_TEST(queries)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    object_init(&o);
    ck_assert_int_eq(object_newest_live(&o, 0), -1);
    ck_assert_uint_eq(object_live_count(&o, 0), 0);
    ck_assert_uint_eq(object_expiry(&o), 0);
    ck_assert_int_eq(object_update(&o, NULL, 1, 100, "a", 1, 500, false, &lim), RKV_OK);
    ck_assert_int_eq(object_update(&o, NULL, 2, 300, "b", 1, 400, false, &lim), RKV_OK);
    ck_assert_int_eq(object_update(&o, NULL, 3, 200, "c", 1, 900, false, &lim), RKV_OK);
    ck_assert_uint_eq(o.n, 3);
    ck_assert_uint_eq(object_live_count(&o, 0), 3);
    ck_assert_int_eq(object_newest_live(&o, 0), find_dot(&o, 2, 1)); /* ts 300 */
    ck_assert_uint_eq(object_live_count(&o, 400), 2);                /* b expired at 400 */
    ck_assert_int_eq(object_newest_live(&o, 400), find_dot(&o, 3, 1));
    ck_assert_uint_eq(object_live_count(&o, 900), 0);
    ck_assert_int_eq(object_newest_live(&o, 900), -1);
    ck_assert_uint_eq(object_expiry(&o), 900);
    /* a sibling that never expires, or a tombstone, pins the object */
    ck_assert_int_eq(object_update(&o, NULL, 4, 50, NULL, 0, 0, true, &lim), RKV_OK);
    ck_assert_uint_eq(object_expiry(&o), 0);
    ck_assert_uint_eq(object_live_count(&o, 0), 3);
    /* ties on ts_ms break by actor, then counter */
    struct object t;
    object_init(&t);
    put(&t, NULL, 5, 10, "x", &lim);
    put(&t, NULL, 5, 10, "y", &lim);
    put(&t, NULL, 4, 10, "z", &lim);
    ck_assert_int_eq(object_newest_live(&t, 0), find_dot(&t, 5, 2));
    object_free(&t);
    object_free(&o);
    object_free(&o);
}
END_TEST

/* ---- updates ---- */

START_TEST(same_actor_concurrency)
{
    /* Two clients write without context through the same coordinator: a
     * plain version vector would order them and drop the first. */
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    object_init(&o);
    put(&o, NULL, 7, 100, "first", &lim);
    put(&o, NULL, 7, 101, "second", &lim);
    ck_assert_uint_eq(o.n, 2);
    ck_assert(has_value(&o, "first") && has_value(&o, "second"));
    ck_assert(find_dot(&o, 7, 1) >= 0 && find_dot(&o, 7, 2) >= 0);
    /* a client that read only the first write supersedes only that one */
    struct object r;
    object_init(&r);
    put(&r, NULL, 7, 100, "first", &lim);
    struct vclock ctx1;
    vclock_init(&ctx1);
    ck_assert_int_eq(object_context(&r, &ctx1), RKV_OK);
    put(&o, &ctx1, 7, 102, "third", &lim);
    ck_assert_uint_eq(o.n, 2);
    ck_assert(!has_value(&o, "first") && has_value(&o, "second") && has_value(&o, "third"));
    ck_assert(find_dot(&o, 7, 3) >= 0);
    /* and the same story across replicas: sync keeps both */
    struct object other;
    object_init(&other);
    put(&other, NULL, 7, 100, "first", &lim);
    sync_ok(&other, &o, &lim);
    ck_assert(object_same(&other, &o));
    vclock_free(&ctx1);
    object_free(&r);
    object_free(&other);
    object_free(&o);
}
END_TEST

START_TEST(merged_context_resolves)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object a, b;
    object_init(&a);
    object_init(&b);
    put(&a, NULL, 1, 10, "a1", &lim);
    put(&a, NULL, 1, 11, "a2", &lim);
    put(&b, NULL, 2, 12, "b1", &lim);
    put(&b, NULL, 3, 13, "b2", &lim);
    /* a coordinator merges the replies and returns the context */
    struct object m;
    copy(&m, &a);
    sync_ok(&m, &b, &lim);
    ck_assert_uint_eq(m.n, 4);
    struct vclock ctx;
    vclock_init(&ctx);
    ck_assert_int_eq(object_context(&m, &ctx), RKV_OK);
    ck_assert_uint_eq(ctx.n, 3);
    /* the put lands on a (which has only half): one sibling remains */
    put(&a, &ctx, 1, 20, "resolved", &lim);
    ck_assert_uint_eq(a.n, 1);
    ck_assert(has_value(&a, "resolved"));
    ck_assert_uint_eq(a.s[0].counter, 3);
    /* and it wins everywhere */
    sync_ok(&b, &a, &lim);
    ck_assert_uint_eq(b.n, 1);
    ck_assert(object_same(&a, &b));
    sync_ok(&m, &a, &lim);
    ck_assert(object_same(&a, &m));
    vclock_free(&ctx);
    object_free(&a);
    object_free(&b);
    object_free(&m);
}
END_TEST

START_TEST(counter_comes_from_everything_known)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    object_init(&o);
    struct vclock ctx;
    vclock_init(&ctx);
    /* actor 9's entry is known only through a past */
    vc_add(&ctx, 9, 41, 5);
    put(&o, &ctx, 2, 10, "v", &lim);
    put(&o, NULL, 9, 11, "w", &lim);
    ck_assert(find_dot(&o, 9, 42) >= 0);
    /* and through the context alone */
    vclock_free(&ctx);
    vc_add(&ctx, 4, 100, 5);
    put(&o, &ctx, 4, 12, "x", &lim);
    ck_assert(find_dot(&o, 4, 101) >= 0);
    /* the new sibling's past never covers its own dot */
    ck_assert(object_invariants_ok(&o));
    vclock_free(&ctx);
    object_free(&o);
}
END_TEST

START_TEST(update_errors)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    lim.value_bytes_max = 4;
    struct object o;
    object_init(&o);
    put(&o, NULL, 1, 1, "abcd", &lim);
    struct rkv_buf before = enc(&o);
    ck_assert_int_eq(object_update(&o, NULL, 1, 2, "abcde", 5, 0, false, &lim), RKV_ERR_TOOBIG);
    ck_assert_int_eq(object_update(&o, NULL, 1, 2, "x", 1, 0, true, &lim), RKV_ERR_INVAL);
    ck_assert(encodes_to(&o, &before));
    ck_assert_int_eq(object_update(&o, NULL, 1, 2, NULL, 0, 0, true, &lim), RKV_OK);
    ck_assert(o.s[1].tomb && o.s[1].value_len == 0);
    rkv_buf_free(&before);
    object_free(&o);
}
END_TEST

START_TEST(siblings_cap)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    lim.siblings_max = 3;
    struct object o;
    object_init(&o);
    put(&o, NULL, 1, 1, "a", &lim);
    put(&o, NULL, 2, 2, "b", &lim);
    put(&o, NULL, 1, 3, "c", &lim);
    struct rkv_buf before = enc(&o);
    ck_assert_int_eq(object_update(&o, NULL, 3, 4, "d", 1, 0, false, &lim), RKV_ERR_TOOBIG);
    ck_assert(encodes_to(&o, &before));
    ck_assert(object_invariants_ok(&o));
    /* a context that covers one of them makes room */
    struct vclock ctx;
    vclock_init(&ctx);
    vc_add(&ctx, 2, 1, 2);
    put(&o, &ctx, 3, 5, "d", &lim);
    ck_assert_uint_eq(o.n, 3);
    ck_assert(!has_value(&o, "b") && has_value(&o, "d"));
    /* a merge of replicas is not held to siblings_max, only to the ceiling */
    struct object p;
    object_init(&p);
    put(&p, NULL, 9, 6, "e", &lim);
    sync_ok(&p, &o, &lim);
    ck_assert_uint_eq(p.n, 4);
    /* but a write on top of it still is */
    struct rkv_buf pb = enc(&p);
    ck_assert_int_eq(object_update(&p, NULL, 9, 7, "f", 1, 0, false, &lim), RKV_ERR_TOOBIG);
    ck_assert(encodes_to(&p, &pb));
    rkv_buf_free(&pb);
    rkv_buf_free(&before);
    vclock_free(&ctx);
    object_free(&o);
    object_free(&p);
}
END_TEST

/* An object of n concurrent siblings from actors base..base+n-1. */
static void concurrent(struct object *o, uint32_t n, uint64_t base, const struct object_limits *lim)
{
    object_init(o);
    for (uint32_t i = 0; i < n; i++)
        ck_assert_int_eq(object_update(o, NULL, base + i, i, "v", 1, 0, false, lim), RKV_OK);
}

START_TEST(sync_ceiling)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object a, b;
    concurrent(&a, 200, 1000, &lim);
    concurrent(&b, RKV_SIBLINGS_MAX - 200, 5000, &lim);
    struct rkv_buf ab = enc(&a), bb = enc(&b);
    struct object c;
    copy(&c, &a);
    sync_ok(&c, &b, &lim); /* exactly RKV_SIBLINGS_MAX */
    ck_assert_uint_eq(c.n, RKV_SIBLINGS_MAX);
    struct object d;
    concurrent(&d, 1, 9000, &lim);
    bool changed = true;
    struct rkv_buf cb = enc(&c);
    ck_assert_int_eq(object_sync(&c, &d, &lim, &changed), RKV_ERR_TOOBIG);
    ck_assert(!changed);
    ck_assert(encodes_to(&c, &cb));
    ck_assert_int_eq(object_sync(&d, &c, &lim, &changed), RKV_ERR_TOOBIG);
    ck_assert_uint_eq(d.n, 1);
    /* lww has no such problem */
    struct object_limits lww = limits(CONFLICT_LWW);
    ck_assert_int_eq(object_sync(&d, &c, &lww, &changed), RKV_OK);
    ck_assert(changed && d.n == 1);
    ck_assert(encodes_to(&a, &ab) && encodes_to(&b, &bb));
    rkv_buf_free(&ab);
    rkv_buf_free(&bb);
    rkv_buf_free(&cb);
    object_free(&a);
    object_free(&b);
    object_free(&c);
    object_free(&d);
}
END_TEST

/* object_bytes_max holds updates and syncs to a size; the bound it is
 * checked with is never below the real encoding. */
START_TEST(object_bytes_cap)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    static char big[1000];
    memset(big, 'x', sizeof big);
    struct object o;
    object_init(&o);
    struct rkv_buf b = {0};
    for (uint64_t actor = 1; actor <= 5; actor++) {
        ck_assert_int_eq(object_update(&o, NULL, actor, actor, big, sizeof big, 0, false, &lim),
                         RKV_OK);
        b.len = 0;
        ck_assert_int_eq(object_encode(&o, &b), RKV_OK);
        ck_assert_uint_ge(object_bytes_bound(&o), b.len);
        ck_assert_uint_le(object_bytes_bound(&o), b.len + 200 * o.n + 64);
    }
    /* room for five siblings, not six */
    lim.object_bytes_max = (uint32_t)object_bytes_bound(&o) + 100;
    struct rkv_buf before = enc(&o);
    ck_assert_int_eq(object_update(&o, NULL, 6, 6, big, sizeof big, 0, false, &lim),
                     RKV_ERR_TOOBIG);
    ck_assert(encodes_to(&o, &before));
    /* a write that supersedes them all fits */
    struct vclock ctx;
    vclock_init(&ctx);
    ck_assert_int_eq(object_context(&o, &ctx), RKV_OK);
    struct object p;
    copy(&p, &o);
    ck_assert_int_eq(object_update(&p, &ctx, 6, 6, big, sizeof big, 0, false, &lim), RKV_OK);
    ck_assert_uint_eq(p.n, 1);
    /* a sync whose union is over the cap fails and changes nothing */
    struct object q;
    concurrent(&q, 1, 100, &lim);
    ck_assert_int_eq(object_update(&q, NULL, 100, 9, big, sizeof big, 0, false, &lim), RKV_OK);
    bool changed = true;
    ck_assert_int_eq(object_sync(&o, &q, &lim, &changed), RKV_ERR_TOOBIG);
    ck_assert(!changed && encodes_to(&o, &before));
    /* under twice the cap, as nodes allow their replicas, it converges */
    lim.object_bytes_max *= 2;
    sync_ok(&o, &q, &lim);
    ck_assert_uint_eq(o.n, 7);
    /* lww keeps one sibling, which must fit too */
    struct object_limits lww = limits(CONFLICT_LWW);
    lww.object_bytes_max = 64;
    struct object r;
    object_init(&r);
    ck_assert_int_eq(object_sync(&r, &p, &lww, &changed), RKV_ERR_TOOBIG);
    ck_assert_uint_eq(r.n, 0);
    rkv_buf_free(&b);
    rkv_buf_free(&before);
    vclock_free(&ctx);
    object_free(&o);
    object_free(&p);
    object_free(&q);
    object_free(&r);
}
END_TEST

/* Counters at RKV_COUNTER_MAX or above only come from forged contexts:
 * they are refused when decoded, and an update never makes one. */
START_TEST(counter_ceiling)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct vclock ctx, back;
    vclock_init(&ctx);
    vclock_init(&back);
    struct rkv_buf b = {0};
    vc_add(&ctx, 7, RKV_COUNTER_MAX - 1, 1);
    ck_assert_int_eq(context_encode(&ctx, &b), RKV_OK);
    ck_assert_int_eq(context_decode(b.data, b.len, &lim, &back), RKV_OK);
    b.len = 0;
    vc_add(&ctx, 7, RKV_COUNTER_MAX, 1);
    ck_assert_int_eq(context_encode(&ctx, &b), RKV_OK);
    ck_assert_int_eq(context_decode(b.data, b.len, &lim, &back), RKV_ERR_PROTO);
    /* the same in a stored object's past */
    struct object o;
    object_init(&o);
    ck_assert_int_eq(object_update(&o, &ctx, 1, 1, "v", 1, 0, false, &lim), RKV_OK);
    b.len = 0;
    ck_assert_int_eq(object_encode(&o, &b), RKV_OK);
    struct object d;
    object_init(&d);
    ck_assert_int_eq(object_decode(b.data, b.len, &lim, &d), RKV_ERR_PROTO);
    /* an update whose counter would reach the ceiling fails */
    struct vclock top;
    vclock_init(&top);
    vc_add(&top, 1, RKV_COUNTER_MAX - 1, 1);
    struct rkv_buf before = enc(&o);
    ck_assert_int_eq(object_update(&o, &top, 1, 2, "w", 1, 0, false, &lim), RKV_ERR_TOOBIG);
    ck_assert(encodes_to(&o, &before));
    rkv_buf_free(&b);
    rkv_buf_free(&before);
    vclock_free(&ctx);
    vclock_free(&back);
    vclock_free(&top);
    object_free(&o);
    object_free(&d);
}
END_TEST

START_TEST(pruning_keeps_own_and_adds)
{
    /* The context names five actors; the limit is three. The own actor (1)
     * has the oldest ts_ms but stays; of the others the two newest stay. */
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object full, pruned;
    object_init(&full);
    put(&full, NULL, 1, 10, "own", &lim);   /* (1,1) @10 */
    put(&full, NULL, 2, 20, "two", &lim);   /* (2,1) @20 */
    put(&full, NULL, 3, 30, "three", &lim); /* (3,1) @30 */
    put(&full, NULL, 4, 40, "four", &lim);  /* (4,1) @40 */
    put(&full, NULL, 5, 50, "five", &lim);  /* (5,1) @50 */
    copy(&pruned, &full);
    struct object replica;
    copy(&replica, &full);
    struct vclock ctx;
    vclock_init(&ctx);
    ck_assert_int_eq(object_context(&full, &ctx), RKV_OK);
    ck_assert_uint_eq(ctx.n, 5);
    put(&full, &ctx, 1, 60, "new", &lim);
    ck_assert_uint_eq(full.n, 1);
    lim.clock_entries_max = 3;
    put(&pruned, &ctx, 1, 60, "new", &lim);
    int ni = find_dot(&pruned, 1, 2);
    ck_assert_int_ge(ni, 0);
    const struct vclock *past = &pruned.s[ni].past;
    ck_assert_uint_eq(past->n, 3);
    ck_assert_uint_eq(vclock_get(past, 1), 1); /* own, though oldest */
    ck_assert_uint_eq(vclock_get(past, 4), 1);
    ck_assert_uint_eq(vclock_get(past, 5), 1);
    /* pruning only adds siblings: the forgotten writes (2 and 3) stay */
    ck_assert_uint_eq(pruned.n, 3);
    ck_assert(find_dot(&pruned, 2, 1) >= 0 && find_dot(&pruned, 3, 1) >= 0);
    for (uint32_t i = 0; i < full.n; i++)
        ck_assert(find_dot(&pruned, full.s[i].actor, full.s[i].counter) >= 0);
    /* a replica that holds them all agrees after a merge; nothing is hidden */
    sync_ok(&replica, &pruned, &lim);
    ck_assert(object_same(&replica, &pruned));
    /* with a limit of one, only the own entry is left */
    struct object one;
    copy(&one, &replica);
    lim.clock_entries_max = 1;
    struct vclock ctx2;
    vclock_init(&ctx2);
    ck_assert_int_eq(object_context(&one, &ctx2), RKV_OK);
    put(&one, &ctx2, 1, 70, "newer", &lim);
    ni = find_dot(&one, 1, 3);
    ck_assert(ni >= 0 && one.s[ni].past.n == 1 && one.s[ni].past.e[0].actor == 1);
    ck_assert_uint_eq(one.n, 3); /* (2,1), (3,1) and the new one */
    vclock_free(&ctx);
    vclock_free(&ctx2);
    object_free(&full);
    object_free(&pruned);
    object_free(&replica);
    object_free(&one);
}
END_TEST

/* ---- lww ---- */

START_TEST(lww_basics)
{
    struct object_limits lww = limits(CONFLICT_LWW);
    struct object a, b;
    object_init(&a);
    object_init(&b);
    /* concurrent writes: the newest wins, the other is lost (documented) */
    put(&a, NULL, 1, 1000, "a", &lww);
    put(&b, NULL, 2, 900, "b", &lww);
    struct object m;
    copy(&m, &b);
    bool changed;
    ck_assert_int_eq(object_sync(&m, &a, &lww, &changed), RKV_OK);
    ck_assert(changed && m.n == 1 && has_value(&m, "a"));
    ck_assert_int_eq(object_sync(&a, &b, &lww, &changed), RKV_OK);
    ck_assert(!changed && a.n == 1 && has_value(&a, "a"));
    /* a write replaces everything, even with no context */
    put(&a, NULL, 1, 1001, "a2", &lww);
    ck_assert(a.n == 1 && has_value(&a, "a2"));
    /* a write through a node whose clock lags still beats what it replaced */
    put(&m, NULL, 2, 500, "late clock", &lww);
    ck_assert(m.n == 1 && m.s[0].ts_ms == 1001);
    /* equal ts_ms: actor, then counter decide */
    struct object x, y;
    object_init(&x);
    object_init(&y);
    put(&x, NULL, 5, 7, "x", &lww);
    put(&y, NULL, 6, 7, "y", &lww);
    sync_ok(&x, &y, &lww);
    ck_assert(has_value(&x, "y"));
    object_free(&a);
    object_free(&b);
    object_free(&m);
    object_free(&x);
    object_free(&y);
}
END_TEST

START_TEST(lww_dots_not_reused)
{
    /* x's write loses to y's at x; x's next write must not get x's old dot,
     * or a replica holding the old write would keep it as "the same". */
    struct object_limits lww = limits(CONFLICT_LWW);
    struct object x, y, w;
    object_init(&x);
    object_init(&y);
    object_init(&w);
    put(&x, NULL, 1, 1000, "x1", &lww);
    sync_ok(&w, &x, &lww);
    put(&y, NULL, 2, 1005, "y1", &lww);
    sync_ok(&x, &y, &lww);
    ck_assert(has_value(&x, "x1") == false);
    put(&x, NULL, 1, 900, "x2", &lww); /* x's clock even runs behind */
    ck_assert(x.s[0].counter != w.s[0].counter);
    ck_assert(x.s[0].ts_ms > 1005);
    sync_ok(&w, &x, &lww);
    ck_assert(has_value(&w, "x2"));
    /* a stale copy under the same dot (as made before this rule) still loses */
    struct object old, cur;
    object_init(&old);
    object_init(&cur);
    struct object_limits sib = limits(CONFLICT_SIBLINGS);
    put(&old, NULL, 5, 100, "old", &sib);
    put(&cur, NULL, 5, 200, "new", &sib);
    ck_assert(object_same(&old, &cur)); /* (5,1) both */
    bool changed;
    ck_assert_int_eq(object_sync(&old, &cur, &lww, &changed), RKV_OK);
    ck_assert(changed && has_value(&old, "new"));
    ck_assert_int_eq(object_sync(&cur, &old, &lww, &changed), RKV_OK);
    ck_assert(!changed && has_value(&cur, "new"));
    object_free(&x);
    object_free(&y);
    object_free(&w);
    object_free(&old);
    object_free(&cur);
}
END_TEST

START_TEST(lww_random)
{
    int seeds = test_seeds(30);
    struct object_limits lww = limits(CONFLICT_LWW);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        struct object rep[3];
        uint64_t skew[3];
        for (int i = 0; i < 3; i++) {
            object_init(&rep[i]);
            skew[i] = test_rng_below(&rng, 50);
        }
        uint64_t now = 1000;
        uint64_t dots[200][2];
        int n_dots = 0;
        for (int step = 0; step < 200; step++) {
            int i = (int)test_rng_below(&rng, 3), j = (int)test_rng_below(&rng, 3);
            now += test_rng_below(&rng, 3);
            if (test_rng_below(&rng, 2)) {
                uint64_t before_ts = rep[i].n ? rep[i].s[0].ts_ms : 0;
                put(&rep[i], NULL, 100 + (uint64_t)i, now + skew[i], "v", &lww);
                ck_assert_msg(rep[i].n == 1, "seed %d step %d", seed, step);
                ck_assert_msg(rep[i].s[0].ts_ms > before_ts || before_ts == 0, "seed %d step %d",
                              seed, step);
                for (int d = 0; d < n_dots; d++) /* every write gets a new dot */
                    ck_assert_msg(dots[d][0] != rep[i].s[0].actor ||
                                      dots[d][1] != rep[i].s[0].counter,
                                  "seed %d step %d", seed, step);
                dots[n_dots][0] = rep[i].s[0].actor;
                dots[n_dots++][1] = rep[i].s[0].counter;
                continue;
            }
            /* the merge keeps the newest of the union, in either order */
            struct object ab, ba;
            copy(&ab, &rep[i]);
            copy(&ba, &rep[j]);
            sync_ok(&ab, &rep[j], &lww);
            sync_ok(&ba, &rep[i], &lww);
            ck_assert_msg(object_same(&ab, &ba), "seed %d step %d", seed, step);
            ck_assert_msg(ab.n <= 1, "seed %d step %d", seed, step);
            for (int k = 0; k < 2; k++) {
                const struct object *in = k ? &rep[j] : &rep[i];
                if (in->n)
                    ck_assert_msg(ab.s[0].ts_ms >= in->s[0].ts_ms, "seed %d step %d", seed, step);
            }
            object_free(&rep[i]);
            rep[i] = ab;
            object_free(&ba);
        }
        for (int i = 0; i < 3; i++)
            object_free(&rep[i]);
    }
}
END_TEST

/* ---- the simulation ---- */

#define SIM_REPLICAS 4
#define SIM_POOL     16
#define SIM_STEPS    250

struct created {
    uint64_t actor, counter;
    struct vclock past;
};

struct sim {
    int seed;
    int step;
    struct test_rng rng;
    struct object_limits lim;
    bool pruning; /* clock_entries_max below the number of actors */
    struct object rep[SIM_REPLICAS];
    uint64_t actor[SIM_REPLICAS];
    uint64_t now;
    struct vclock pool[SIM_POOL]; /* contexts of earlier reads */
    uint32_t pool_n;
    struct created created[SIM_STEPS];
    uint32_t n_created;
};

/* True if some sibling ever created has a past covering the dot. */
static bool dominated(const struct sim *s, uint64_t actor, uint64_t counter)
{
    for (uint32_t i = 0; i < s->n_created; i++)
        if (vclock_covers(&s->created[i].past, actor, counter))
            return true;
    return false;
}

static bool was_created(const struct sim *s, uint64_t actor, uint64_t counter)
{
    for (uint32_t i = 0; i < s->n_created; i++)
        if (s->created[i].actor == actor && s->created[i].counter == counter)
            return true;
    return false;
}

static void sim_init(struct sim *s, int seed, bool pruning)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->rng.s = (uint64_t)seed * 7919 + (pruning ? 1 : 0);
    s->lim = limits(CONFLICT_SIBLINGS);
    s->pruning = pruning;
    if (pruning)
        s->lim.clock_entries_max = 2;
    for (int i = 0; i < SIM_REPLICAS; i++) {
        object_init(&s->rep[i]);
        /* small actors and full 64-bit ones, for every integer width */
        s->actor[i] = i % 2 ? test_rng_next(&s->rng) | 1ull << 63 : (uint64_t)i + 1;
    }
    s->now = test_rng_below(&s->rng, 2) ? 1700000000000ull : 5;
    for (int i = 0; i < SIM_POOL; i++)
        vclock_init(&s->pool[i]);
}

static void sim_free(struct sim *s)
{
    for (int i = 0; i < SIM_REPLICAS; i++)
        object_free(&s->rep[i]);
    for (int i = 0; i < SIM_POOL; i++)
        vclock_free(&s->pool[i]);
    for (uint32_t i = 0; i < s->n_created; i++)
        vclock_free(&s->created[i].past);
}

#define SIM_ASSERT(s, cond)                                                                        \
    ck_assert_msg((cond), "seed %d step %d: %s", (s)->seed, (s)->step, #cond)

/* Encode, decode, encode: the same bytes and the same object. */
static void check_round_trip(struct sim *s, const struct object *o)
{
    struct rkv_buf b = enc(o);
    struct object d;
    object_init(&d);
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    SIM_ASSERT(s, object_decode(b.data, b.len, &lim, &d) == RKV_OK);
    SIM_ASSERT(s, object_same(&d, o));
    SIM_ASSERT(s, encodes_to(&d, &b));
    rkv_buf_free(&b);
    object_free(&d);
}

/* What the update must have done to before, given the new sibling's past. */
static void check_update(struct sim *s, const struct object *before, const struct object *after,
                         const struct vclock *ctx, int ni)
{
    const struct sibling *ns = &after->s[ni];
    /* Dots are never reused, unless pruning made the coordinator forget its
     * own earlier dot (a past that covered it was pruned by a later writer
     * that superseded it): a known limitation of the contract, described in
     * object.c. The pruned runs check everything else. */
    if (!s->pruning)
        SIM_ASSERT(s, !was_created(s, ns->actor, ns->counter));
    uint32_t kept = 0;
    for (uint32_t i = 0; i < before->n; i++) {
        const struct sibling *b = &before->s[i];
        bool covered = vclock_covers(&ns->past, b->actor, b->counter);
        SIM_ASSERT(s, (find_dot(after, b->actor, b->counter) >= 0) == !covered);
        /* only what the context saw goes; pruning may keep more */
        if (covered)
            SIM_ASSERT(s, ctx && vclock_covers(ctx, b->actor, b->counter));
        else if (!s->pruning && ctx)
            SIM_ASSERT(s, !vclock_covers(ctx, b->actor, b->counter));
        kept += !covered;
    }
    SIM_ASSERT(s, after->n == kept + 1);
    SIM_ASSERT(s, ns->past.n <= s->lim.clock_entries_max);
    if (!s->pruning)
        SIM_ASSERT(s, ctx ? vclock_equal(&ns->past, ctx) : ns->past.n == 0);
}

static void sim_update(struct sim *s, int i)
{
    const struct vclock *ctx = NULL;
    if (s->pool_n && test_rng_below(&s->rng, 10) < 7)
        ctx = &s->pool[test_rng_below(&s->rng, s->pool_n)];
    uint8_t val[300];
    size_t len = test_rng_below(&s->rng, 4) ? test_rng_below(&s->rng, 20) : sizeof val;
    for (size_t k = 0; k < len; k++)
        val[k] = (uint8_t)test_rng_next(&s->rng);
    bool tomb = test_rng_below(&s->rng, 10) == 0;
    uint64_t expiry = test_rng_below(&s->rng, 5) == 0 ? s->now + 1000 : 0;
    s->now += test_rng_below(&s->rng, 3);
    struct object before;
    copy(&before, &s->rep[i]);
    int rc = object_update(&s->rep[i], ctx, s->actor[i], s->now, tomb ? NULL : val, tomb ? 0 : len,
                           expiry, tomb, &s->lim);
    SIM_ASSERT(s, rc == RKV_OK);
    SIM_ASSERT(s, object_invariants_ok(&s->rep[i]));
    /* the new sibling has the actor's highest counter */
    int ni = -1;
    for (uint32_t k = 0; k < s->rep[i].n; k++)
        if (s->rep[i].s[k].actor == s->actor[i] &&
            (ni < 0 || s->rep[i].s[k].counter > s->rep[i].s[ni].counter))
            ni = (int)k;
    SIM_ASSERT(s, ni >= 0);
    check_update(s, &before, &s->rep[i], ctx, ni);
    struct created *c = &s->created[s->n_created++];
    c->actor = s->rep[i].s[ni].actor;
    c->counter = s->rep[i].s[ni].counter;
    vclock_init(&c->past);
    ck_assert_int_eq(vclock_copy(&c->past, &s->rep[i].s[ni].past), RKV_OK);
    object_free(&before);
}

/* A read: the context of one replica, or of two merged like a coordinator
 * merges replies. Also checks that a put with it resolves to one sibling. */
static void sim_read(struct sim *s, int i, int j)
{
    struct object m;
    copy(&m, &s->rep[i]);
    if (j != i)
        SIM_ASSERT(s, object_sync(&m, &s->rep[j], &s->lim, NULL) == RKV_OK);
    uint32_t slot =
        s->pool_n < SIM_POOL ? s->pool_n++ : (uint32_t)test_rng_below(&s->rng, SIM_POOL);
    SIM_ASSERT(s, object_context(&m, &s->pool[slot]) == RKV_OK);
    if (!s->pruning) {
        struct object scratch;
        copy(&scratch, &m);
        SIM_ASSERT(s, object_update(&scratch, &s->pool[slot], s->actor[i], s->now, "r", 1, 0, false,
                                    &s->lim) == RKV_OK);
        SIM_ASSERT(s, scratch.n == 1);
        object_free(&scratch);
    }
    object_free(&m);
}

/* out = a synced with b, checking what sync reports. */
static void merged(struct sim *s, struct object *out, const struct object *a,
                   const struct object *b)
{
    copy(out, a);
    bool changed;
    SIM_ASSERT(s, object_sync(out, b, &s->lim, &changed) == RKV_OK);
    SIM_ASSERT(s, object_invariants_ok(out));
    SIM_ASSERT(s, changed == !object_same(out, a));
    SIM_ASSERT(s, object_contains(a, b) == !changed);
}

/* The result of merging a and b against the brute-force reference. */
static void check_reference(struct sim *s, const struct object *a, const struct object *b,
                            const struct object *ab)
{
    for (uint32_t i = 0; i < ab->n; i++) /* nothing from nowhere */
        SIM_ASSERT(s, find_dot(a, ab->s[i].actor, ab->s[i].counter) >= 0 ||
                          find_dot(b, ab->s[i].actor, ab->s[i].counter) >= 0);
    for (int k = 0; k < 2; k++) {
        const struct object *in = k ? b : a;
        for (uint32_t i = 0; i < in->n; i++) {
            uint64_t actor = in->s[i].actor, counter = in->s[i].counter;
            bool kept = find_dot(ab, actor, counter) >= 0;
            if (!dominated(s, actor, counter)) /* never drop an undominated version */
                SIM_ASSERT(s, kept);
            /* and drop exactly what the union covers */
            bool covered = false;
            for (uint32_t j = 0; j < a->n + b->n && !covered; j++) {
                const struct sibling *t = j < a->n ? &a->s[j] : &b->s[j - a->n];
                covered = vclock_covers(&t->past, actor, counter);
            }
            SIM_ASSERT(s, kept == !covered);
        }
    }
}

static void sim_sync(struct sim *s, int i, int j, int k)
{
    const struct object *a = &s->rep[i], *b = &s->rep[j], *c = &s->rep[k];
    struct object ab, ba, abb, ab_c, bc, a_bc;
    merged(s, &ab, a, b);
    merged(s, &ba, b, a);
    SIM_ASSERT(s, object_same(&ab, &ba)); /* commutative */
    merged(s, &abb, &ab, &ab);
    SIM_ASSERT(s, object_same(&abb, &ab)); /* idempotent */
    object_free(&abb);
    check_reference(s, a, b, &ab);
    /* Merging an input again changes nothing, and the order of merges does
     * not matter: both need domination to be transitive, which pruning
     * breaks (a sibling whose only witness was itself superseded comes
     * back). */
    merged(s, &abb, &ab, b);
    if (!s->pruning) {
        SIM_ASSERT(s, object_same(&abb, &ab));
        SIM_ASSERT(s, object_contains(&ab, a) && object_contains(&ab, b));
        merged(s, &ab_c, &ab, c);
        merged(s, &bc, b, c);
        merged(s, &a_bc, a, &bc);
        SIM_ASSERT(s, object_same(&ab_c, &a_bc));
        object_free(&ab_c);
        object_free(&bc);
        object_free(&a_bc);
    }
    bool both = test_rng_below(&s->rng, 2);
    object_free(&s->rep[i]);
    s->rep[i] = ab;
    if (both) {
        object_free(&s->rep[j]);
        s->rep[j] = ba;
    } else {
        object_free(&ba);
    }
    object_free(&abb);
}

/* One anti-entropy round: everything into replica 0, then back out.
 * True if every replica then holds the same dots. */
static bool sim_round(struct sim *s)
{
    for (int i = 1; i < SIM_REPLICAS; i++)
        SIM_ASSERT(s, object_sync(&s->rep[0], &s->rep[i], &s->lim, NULL) == RKV_OK);
    bool same = true;
    for (int i = 1; i < SIM_REPLICAS; i++) {
        SIM_ASSERT(s, object_sync(&s->rep[i], &s->rep[0], &s->lim, NULL) == RKV_OK);
        same &= object_same(&s->rep[i], &s->rep[0]);
    }
    return same;
}

/* Full anti-entropy; then every replica holds exactly the created dots no
 * created sibling's past covers. Without pruning one round is enough; with
 * it, a superseded sibling whose witness was itself superseded can come
 * back from a replica not yet merged, so it may take a few. */
static void sim_converge(struct sim *s)
{
    int rounds = 1;
    while (!sim_round(s)) {
        SIM_ASSERT(s, s->pruning);
        SIM_ASSERT(s, ++rounds <= 2 * SIM_REPLICAS);
    }
    const struct object *f = &s->rep[0];
    uint32_t want = 0;
    for (uint32_t i = 0; i < s->n_created; i++) {
        const struct created *c = &s->created[i];
        bool dom = dominated(s, c->actor, c->counter);
        want += !dom;
        if (!dom)
            SIM_ASSERT(s, find_dot(f, c->actor, c->counter) >= 0);
    }
    if (!s->pruning)
        SIM_ASSERT(s, f->n == want);
    for (uint32_t i = 0; i < f->n; i++)
        SIM_ASSERT(s, was_created(s, f->s[i].actor, f->s[i].counter));
}

static void sim_run(int seed, bool pruning)
{
    static struct sim s; /* large; one test at a time per process */
    sim_init(&s, seed, pruning);
    for (s.step = 0; s.step < SIM_STEPS; s.step++) {
        int i = (int)test_rng_below(&s.rng, SIM_REPLICAS);
        int j = (int)test_rng_below(&s.rng, SIM_REPLICAS);
        int k = (int)test_rng_below(&s.rng, SIM_REPLICAS);
        uint64_t op = test_rng_below(&s.rng, 10);
        if (op < 4 && s.n_created < SIM_STEPS)
            sim_update(&s, i);
        else if (op < 6)
            sim_read(&s, i, j);
        else
            sim_sync(&s, i, j, k);
        if (s.step % 10 == 0)
            check_round_trip(&s, &s.rep[i]);
    }
    sim_converge(&s);
    check_round_trip(&s, &s.rep[0]);
    sim_free(&s);
}

START_TEST(random_histories)
{
    int seeds = test_seeds(40);
    for (int seed = 0; seed < seeds; seed++)
        sim_run(seed, false);
}
END_TEST

START_TEST(random_histories_pruned)
{
    int seeds = test_seeds(40);
    for (int seed = 0; seed < seeds; seed++)
        sim_run(seed, true);
}
END_TEST

START_TEST(contains)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object a, b;
    object_init(&a);
    object_init(&b);
    ck_assert(object_contains(&a, &b));
    put(&a, NULL, 1, 1, "a", &lim);
    ck_assert(object_contains(&a, &b));
    ck_assert(!object_contains(&b, &a));
    copy(&b, &a);
    ck_assert(object_contains(&a, &b) && object_contains(&b, &a));
    struct vclock ctx;
    vclock_init(&ctx);
    ck_assert_int_eq(object_context(&b, &ctx), RKV_OK);
    put(&b, &ctx, 2, 2, "b", &lim);      /* b supersedes a */
    ck_assert(!object_contains(&a, &b)); /* a would change */
    ck_assert(object_contains(&b, &a));  /* a adds nothing to b */
    vclock_free(&ctx);
    object_free(&a);
    object_free(&b);
}
END_TEST

/* ---- decoding hostile bytes ---- */

/* A small object with every feature: pasts, big actors, a tombstone,
 * expiry, and values on both sides of the bin8/bin16 boundary. */
static void rich_object(struct object *o)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct vclock ctx;
    vclock_init(&ctx);
    object_init(o);
    vc_add(&ctx, 3, 2, 1700000000001ull);
    vc_add(&ctx, 0xfffffffffffffff0ull, 300, 70000);
    char big[300];
    memset(big, 'q', sizeof big);
    ck_assert_int_eq(object_update(o, &ctx, 1ull << 40, 1700000000002ull, big, sizeof big,
                                   1700000009999ull, false, &lim),
                     RKV_OK);
    ck_assert_int_eq(object_update(o, NULL, 3, 1700000000003ull, NULL, 0, 0, true, &lim), RKV_OK);
    put(o, NULL, 200, 65536, "small", &lim);
    ck_assert_uint_eq(o->n, 3);
    vclock_free(&ctx);
}

/* Decodes into an object that already holds something; checks that a
 * failure leaves it alone and a success yields a valid canonical object. */
static int decode_checked(const uint8_t *p, size_t len, const struct object_limits *lim)
{
    struct object_limits dflt = limits(CONFLICT_SIBLINGS);
    struct object o;
    object_init(&o);
    put(&o, NULL, 77, 1, "keep", &dflt);
    struct rkv_buf before = enc(&o);
    int rc = object_decode(p, len, lim, &o);
    if (rc != RKV_OK) {
        ck_assert(rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
        ck_assert(encodes_to(&o, &before));
    } else {
        ck_assert(object_invariants_ok(&o));
        struct rkv_buf again = enc(&o);
        ck_assert(again.len == len && memcmp(again.data, p, len) == 0); /* canonical */
        rkv_buf_free(&again);
    }
    rkv_buf_free(&before);
    object_free(&o);
    return rc;
}

START_TEST(decode_truncated)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    rich_object(&o);
    struct rkv_buf b = enc(&o);
    ck_assert_int_eq(decode_checked(b.data, b.len, &lim), RKV_OK);
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *p = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
        memcpy(p, b.data, cut);
        ck_assert_msg(decode_checked(p, cut, &lim) == RKV_ERR_PROTO, "cut %zu", cut);
        free(p);
    }
    rkv_buf_free(&b);
    object_free(&o);
}
END_TEST

START_TEST(decode_flipped)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    rich_object(&o);
    struct rkv_buf b = enc(&o);
    uint8_t *p = malloc(b.len);
    int ok = 0;
    for (size_t at = 0; at < b.len; at++) {
        static const uint8_t set[] = {0x00, 0xff, 0xc0, 0xdd, 0x90, 0x7f, 0xcf};
        for (int v = 0; v < 8 + (int)sizeof set; v++) {
            memcpy(p, b.data, b.len);
            p[at] = v < 8 ? (uint8_t)(p[at] ^ (1u << v)) : set[v - 8];
            ok += decode_checked(p, b.len, &lim) == RKV_OK;
        }
    }
    /* value bytes and ts fields flip harmlessly; most structure does not */
    ck_assert_int_gt(ok, 0);
    free(p);
    rkv_buf_free(&b);
    object_free(&o);
}
END_TEST

START_TEST(decode_mutated)
{
    int seeds = test_seeds(300);
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    rich_object(&o);
    struct rkv_buf b = enc(&o);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        size_t len = b.len;
        uint8_t *p = malloc(len + 16);
        memcpy(p, b.data, len);
        int edits = 1 + (int)test_rng_below(&rng, 6);
        for (int e = 0; e < edits; e++) {
            size_t at = test_rng_below(&rng, len);
            switch (test_rng_below(&rng, 3)) {
            case 0:
                p[at] = (uint8_t)test_rng_next(&rng);
                break;
            case 1: /* delete a byte */
                memmove(p + at, p + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert a byte */
                if (len < b.len + 16) {
                    memmove(p + at + 1, p + at, len - at);
                    p[at] = (uint8_t)test_rng_next(&rng);
                    len++;
                }
            }
        }
        uint8_t *exact = malloc(len ? len : 1);
        memcpy(exact, p, len);
        decode_checked(exact, len, &lim);
        free(exact);
        free(p);
    }
    rkv_buf_free(&b);
    object_free(&o);
}
END_TEST

/* Hand-made frames. */
struct frame {
    struct rkv_buf b;
    struct mp_writer w;
};

static void frame_init(struct frame *f)
{
    memset(&f->b, 0, sizeof f->b);
    mp_writer_init(&f->w, &f->b);
}

struct tsib {
    uint64_t actor, counter;
    uint32_t np;
    uint64_t past[4][3];
    uint64_t ts, expiry;
    bool tomb;
    const char *value;
};

static void w_sib(struct mp_writer *w, const struct tsib *s)
{
    mp_write_array(w, 7);
    mp_write_uint(w, s->actor);
    mp_write_uint(w, s->counter);
    mp_write_array(w, s->np);
    for (uint32_t i = 0; i < s->np; i++) {
        mp_write_array(w, 3);
        for (int k = 0; k < 3; k++)
            mp_write_uint(w, s->past[i][k]);
    }
    mp_write_uint(w, s->ts);
    mp_write_uint(w, s->expiry);
    mp_write_bool(w, s->tomb);
    mp_write_bin(w, s->value, strlen(s->value));
}

/* [1, [sibs...]] with an optional trailing byte. */
static int decode_sibs(const struct tsib *sibs, uint32_t n, int format, int trailer,
                       const struct object_limits *lim)
{
    struct frame f;
    frame_init(&f);
    mp_write_array(&f.w, 2);
    mp_write_uint(&f.w, (uint64_t)format);
    mp_write_array(&f.w, n);
    for (uint32_t i = 0; i < n; i++)
        w_sib(&f.w, &sibs[i]);
    if (trailer >= 0) {
        uint8_t t = (uint8_t)trailer;
        mp_write_raw(&f.w, &t, 1);
    }
    ck_assert(!f.w.failed);
    int rc = decode_checked(f.b.data, f.b.len, lim);
    rkv_buf_free(&f.b);
    return rc;
}

static int decode_bytes(const uint8_t *p, size_t len)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, p, len);
    int rc = decode_checked(exact, len, &lim);
    free(exact);
    return rc;
}

START_TEST(decode_rejects)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    const struct tsib a = {
        .actor = 1, .counter = 2, .np = 1, .past = {{2, 1, 5}}, .ts = 9, .value = "va"};
    const struct tsib b = {.actor = 3, .counter = 1, .ts = 8, .value = "vb"};
    struct tsib two[2] = {a, b};
    ck_assert_int_eq(decode_sibs(two, 2, 1, -1, &lim), RKV_OK);
    ck_assert_int_eq(decode_sibs(two, 0, 1, -1, &lim), RKV_OK);          /* no siblings at all */
    ck_assert_int_eq(decode_sibs(two, 2, 0, -1, &lim), RKV_ERR_PROTO);   /* format */
    ck_assert_int_eq(decode_sibs(two, 2, 2, -1, &lim), RKV_ERR_PROTO);   /* format */
    ck_assert_int_eq(decode_sibs(two, 2, 1, 0xc0, &lim), RKV_ERR_PROTO); /* trailing */
    ck_assert_int_eq(decode_sibs(two, 2, 1, 0x00, &lim), RKV_ERR_PROTO); /* trailing */
    struct tsib s[2];
    s[0] = a, s[1] = a; /* duplicate dots */
    ck_assert_int_eq(decode_sibs(s, 2, 1, -1, &lim), RKV_ERR_PROTO);
    s[0] = b, s[1] = a; /* out of order */
    ck_assert_int_eq(decode_sibs(s, 2, 1, -1, &lim), RKV_ERR_PROTO);
    s[0] = a, s[0].counter = 0; /* counter 0 */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_ERR_PROTO);
    s[0] = a, s[0].past[0][1] = 0; /* past counter 0 */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_ERR_PROTO);
    s[0] = a, s[0].np = 2, s[0].past[1][0] = 2, s[0].past[1][1] = 4; /* duplicate past actor */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_ERR_PROTO);
    s[0].past[1][0] = 1; /* unsorted past: 2 then 1 */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_ERR_PROTO);
    s[0].past[1][0] = 3; /* sorted: fine */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_OK);
    s[0] = a, s[0].tomb = true; /* tombstone with a value */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_ERR_PROTO);
    s[0].value = "";
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_OK);
    s[0] = a, s[0].past[0][0] = 1, s[0].past[0][1] = 2; /* its own past covers its dot */
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &lim), RKV_ERR_PROTO);
    s[0] = a, s[1] = b, s[1].np = 1; /* b saw a: a is obsolete */
    s[1].past[0][0] = 1, s[1].past[0][1] = 2, s[1].past[0][2] = 1;
    ck_assert_int_eq(decode_sibs(s, 2, 1, -1, &lim), RKV_ERR_PROTO);
    /* limits: value size, past length, sibling count */
    struct object_limits small = lim;
    small.value_bytes_max = 1;
    ck_assert_int_eq(decode_sibs(two, 2, 1, -1, &small), RKV_ERR_TOOBIG);
    s[0] = a, s[0].np = 3, s[0].past[1][0] = 3, s[0].past[2][0] = 4;
    s[0].past[1][1] = s[0].past[2][1] = 1;
    small = lim;
    small.clock_entries_max = 2;
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &small), RKV_ERR_TOOBIG);
    small.clock_entries_max = 3;
    ck_assert_int_eq(decode_sibs(s, 1, 1, -1, &small), RKV_OK);
    struct tsib *many = calloc(RKV_SIBLINGS_MAX + 1, sizeof *many);
    for (uint32_t i = 0; i <= RKV_SIBLINGS_MAX; i++)
        many[i] = (struct tsib){.actor = i, .counter = 1, .value = ""};
    ck_assert_int_eq(decode_sibs(many, RKV_SIBLINGS_MAX, 1, -1, &lim), RKV_OK);
    ck_assert_int_eq(decode_sibs(many, RKV_SIBLINGS_MAX + 1, 1, -1, &lim), RKV_ERR_TOOBIG);
    free(many);
}
END_TEST

START_TEST(decode_rejects_bytes)
{
    /* baseline: [1, [[1, 1, [], 0, 0, false, bin ""]]] */
    static const uint8_t good[] = {0x92, 0x01, 0x91, 0x97, 0x01, 0x01,
                                   0x90, 0x00, 0x00, 0xc2, 0xc4, 0x00};
    ck_assert_int_eq(decode_bytes(good, sizeof good), RKV_OK);
    struct {
        const char *what;
        uint8_t b[24];
        size_t len;
    } bad[] = {
        {"empty", {0}, 0},
        {"huge array", {0xdd, 0xff, 0xff, 0xff, 0xff}, 5},
        {"huge sibling count", {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, 7},
        {"sibling count past the bytes", {0x92, 0x01, 0xdc, 0x00, 0x10, 0x97}, 6},
        {"huge past", {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, 11},
        {"huge value",
         {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc6, 0xff, 0xff, 0xff, 0xff},
         15},
        {"non-canonical uint",
         {0x92, 0x01, 0x91, 0x97, 0xcc, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc4, 0x00},
         13},
        {"signed uint",
         {0x92, 0x01, 0x91, 0x97, 0xd0, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc4, 0x00},
         13},
        {"non-canonical array",
         {0xdc, 0x00, 0x02, 0x01, 0x91, 0x97, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc4, 0x00},
         14},
        {"negative actor",
         {0x92, 0x01, 0x91, 0x97, 0xff, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc4, 0x00},
         12},
        {"str value", {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xa0}, 11},
        {"nil value", {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc0}, 11},
        {"int as bool",
         {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x90, 0x00, 0x00, 0x00, 0xc4, 0x00},
         12},
        {"float ts",
         {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x90, 0xca, 0, 0, 0, 0, 0x00, 0xc2, 0xc4, 0x00},
         16},
        {"six fields", {0x92, 0x01, 0x91, 0x96, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2}, 10},
        {"eight fields",
         {0x92, 0x01, 0x91, 0x98, 0x01, 0x01, 0x90, 0x00, 0x00, 0xc2, 0xc4, 0x00, 0xc0},
         13},
        {"past entry of two",
         {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x91, 0x92, 0x02, 0x01, 0x00, 0x00, 0xc2, 0xc4, 0x00},
         15},
        {"nested past",
         {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0x91, 0x91, 0x91, 0x91, 0x90, 0x00, 0x00, 0xc2, 0xc4,
          0x00},
         16},
        {"object is a map", {0x82, 0x01, 0x90, 0x02, 0x90}, 5},
        {"three fields", {0x93, 0x01, 0x90, 0xc0}, 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(decode_bytes(bad[i].b, bad[i].len) != RKV_OK, "%s", bad[i].what);
    /* deep nesting anywhere */
    uint8_t deep[2000];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0x90;
    ck_assert_int_eq(decode_bytes(deep, sizeof deep), RKV_ERR_PROTO);
}
END_TEST

START_TEST(decode_huge_count_allocates_nothing)
{
    /* Every allocation fails: a decoder that sized anything by the claimed
     * count would report NOMEM (or, without the hook, ask for gigabytes,
     * which ASan turns into an error). */
    static const uint8_t frames[][8] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff},
        {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff},
        {0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff},
    };
    static const size_t lens[] = {5, 7, 7};
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    for (size_t i = 0; i < 3; i++) {
        struct object o;
        struct vclock vc;
        object_init(&o);
        vclock_init(&vc);
        test_alloc_fail_from(0);
        int rc = object_decode(frames[i], lens[i], &lim, &o);
        int rc2 = context_decode(frames[i], lens[i], &lim, &vc);
        bool asked = test_alloc_failed();
        test_alloc_reset();
        ck_assert_int_eq(rc, RKV_ERR_PROTO);
        ck_assert_int_eq(rc2, RKV_ERR_PROTO);
        ck_assert(!asked);
        ck_assert(o.n == 0 && vc.n == 0);
    }
    /* and with the allocator working, under ASan */
    struct object o;
    object_init(&o);
    ck_assert_int_eq(object_decode(frames[0], lens[0], &lim, &o), RKV_ERR_PROTO);
    object_free(&o);
}
END_TEST

/* ---- contexts ---- */

static int ctx_decode_bytes(const uint8_t *p, size_t len, const struct object_limits *lim)
{
    struct vclock vc;
    vclock_init(&vc);
    vc_add(&vc, 42, 1, 1);
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, p, len);
    int rc = context_decode(exact, len, lim, &vc);
    if (rc != RKV_OK) {
        ck_assert(vc.n == 1 && vc.e[0].actor == 42); /* untouched */
    } else {
        struct rkv_buf b = {0};
        ck_assert_int_eq(context_encode(&vc, &b), RKV_OK);
        if (len) /* canonical */
            ck_assert(b.len == len && memcmp(b.data, p, len) == 0);
        rkv_buf_free(&b);
    }
    free(exact);
    vclock_free(&vc);
    return rc;
}

START_TEST(context_round_trip)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    rich_object(&o);
    struct vclock ctx, back;
    vclock_init(&ctx);
    vclock_init(&back);
    ck_assert_int_eq(object_context(&o, &ctx), RKV_OK);
    ck_assert_uint_eq(ctx.n, 4);
    struct rkv_buf b = {0};
    ck_assert_int_eq(context_encode(&ctx, &b), RKV_OK);
    ck_assert_int_eq(context_decode(b.data, b.len, &lim, &back), RKV_OK);
    ck_assert(vclock_equal(&ctx, &back));
    for (uint32_t i = 0; i < ctx.n; i++)
        ck_assert_uint_eq(ctx.e[i].ts_ms, back.e[i].ts_ms);
    ck_assert_int_eq(ctx_decode_bytes(b.data, b.len, &lim), RKV_OK);
    /* every truncation fails cleanly */
    for (size_t cut = 1; cut < b.len; cut++)
        ck_assert_msg(ctx_decode_bytes(b.data, cut, &lim) == RKV_ERR_PROTO, "cut %zu", cut);
    /* flips never crash, and what decodes re-encodes the same */
    uint8_t *p = malloc(b.len);
    for (size_t at = 0; at < b.len; at++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(p, b.data, b.len);
            p[at] ^= (uint8_t)(1u << bit);
            int rc = ctx_decode_bytes(p, b.len, &lim);
            ck_assert(rc == RKV_OK || rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
        }
    free(p);
    /* over the limit */
    struct object_limits small = lim;
    small.clock_entries_max = 3;
    ck_assert_int_eq(ctx_decode_bytes(b.data, b.len, &small), RKV_ERR_TOOBIG);
    /* the empty input is the empty context; so is [1, []] */
    vclock_free(&back);
    ck_assert_int_eq(context_decode(NULL, 0, &lim, &back), RKV_OK);
    ck_assert_uint_eq(back.n, 0);
    static const uint8_t empty[] = {0x92, 0x01, 0x90};
    ck_assert_int_eq(ctx_decode_bytes(empty, sizeof empty, &lim), RKV_OK);
    rkv_buf_free(&b);
    vclock_free(&ctx);
    vclock_free(&back);
    object_free(&o);
}
END_TEST

START_TEST(context_rejects)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct {
        const char *what;
        uint8_t b[20];
        size_t len;
    } bad[] = {
        {"format 2", {0x92, 0x02, 0x90}, 3},
        {"format 0", {0x92, 0x00, 0x90}, 3},
        {"three fields", {0x93, 0x01, 0x90, 0x90}, 4},
        {"trailing", {0x92, 0x01, 0x90, 0x00}, 4},
        {"counter 0", {0x92, 0x01, 0x91, 0x93, 0x01, 0x00, 0x00}, 7},
        {"unsorted", {0x92, 0x01, 0x92, 0x93, 0x02, 0x01, 0x00, 0x93, 0x01, 0x01, 0x00}, 11},
        {"duplicate", {0x92, 0x01, 0x92, 0x93, 0x01, 0x01, 0x00, 0x93, 0x01, 0x02, 0x00}, 11},
        {"huge", {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, 7},
        {"huge outer", {0xdd, 0xff, 0xff, 0xff, 0xff}, 5},
        {"entry of four", {0x92, 0x01, 0x91, 0x94, 0x01, 0x01, 0x00, 0x00}, 8},
        {"nil", {0xc0}, 1},
        {"non-canonical counter", {0x92, 0x01, 0x91, 0x93, 0x01, 0xcc, 0x01, 0x00}, 8},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ctx_decode_bytes(bad[i].b, bad[i].len, &lim) != RKV_OK, "%s", bad[i].what);
    static const uint8_t ok[] = {0x92, 0x01, 0x92, 0x93, 0x01, 0x01, 0x00, 0x93, 0x02, 0x05, 0x07};
    ck_assert_int_eq(ctx_decode_bytes(ok, sizeof ok, &lim), RKV_OK);
}
END_TEST

/* ---- allocation failure ---- */

/* Runs op with the nth allocation failing, for n = 0, 1, ... until op
 * completes without a refusal. Every failure must be NOMEM and leave the
 * inputs as they were (check). Leaks are LeakSanitizer's to find. */
#define ALLOC_LOOP(op, check)                                                                      \
    for (long n_ = 0;; n_++) {                                                                     \
        test_alloc_fail_from(n_);                                                                  \
        int rc_ = (op);                                                                            \
        bool refused_ = test_alloc_failed();                                                       \
        test_alloc_reset();                                                                        \
        if (!refused_) {                                                                           \
            ck_assert_int_eq(rc_, RKV_OK);                                                         \
            break;                                                                                 \
        }                                                                                          \
        ck_assert_msg(rc_ == RKV_ERR_NOMEM, "allocation %ld: rc %d", n_, rc_);                     \
        check;                                                                                     \
        ck_assert_int_lt(n_, 10000);                                                               \
    }

START_TEST(alloc_failure_update)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o;
    rich_object(&o);
    struct vclock ctx;
    vclock_init(&ctx);
    vc_add(&ctx, 200, 1, 65536); /* supersedes "small" */
    vc_add(&ctx, 9, 9, 9);
    struct rkv_buf before = enc(&o);
    ALLOC_LOOP(object_update(&o, &ctx, 3, 5, "value", 5, 0, false, &lim),
               ck_assert(encodes_to(&o, &before) && object_invariants_ok(&o)));
    ck_assert_uint_eq(o.n, 3);
    ck_assert(find_dot(&o, 200, 1) < 0 && find_dot(&o, 3, 4) >= 0); /* 3 was at 3 */
    /* lww, and an update that has to grow the array */
    struct object_limits lww = limits(CONFLICT_LWW);
    struct object l;
    copy(&l, &o);
    rkv_buf_free(&before);
    before = enc(&l);
    ALLOC_LOOP(object_update(&l, NULL, 4, 6, "lww", 3, 0, false, &lww),
               ck_assert(encodes_to(&l, &before)));
    ck_assert_uint_eq(l.n, 1);
    struct object g;
    concurrent(&g, 8, 100, &lim);
    rkv_buf_free(&before);
    before = enc(&g);
    ALLOC_LOOP(object_update(&g, NULL, 50, 6, "ninth", 5, 0, false, &lim),
               ck_assert(encodes_to(&g, &before)));
    ck_assert_uint_eq(g.n, 9);
    rkv_buf_free(&before);
    vclock_free(&ctx);
    object_free(&o);
    object_free(&l);
    object_free(&g);
}
END_TEST

START_TEST(alloc_failure_sync)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object dst, src;
    rich_object(&dst);
    copy(&src, &dst);
    struct vclock ctx;
    vclock_init(&ctx);
    vc_add(&ctx, 200, 1, 1); /* src supersedes one of dst's */
    put(&src, &ctx, 5, 10, "five", &lim);
    put(&src, NULL, 6, 11, "six", &lim);
    struct rkv_buf db = enc(&dst), sb = enc(&src);
    bool changed = false;
    ALLOC_LOOP(object_sync(&dst, &src, &lim, &changed),
               ck_assert(encodes_to(&dst, &db) && encodes_to(&src, &sb)));
    ck_assert(changed && encodes_to(&src, &sb));
    ck_assert_uint_eq(dst.n, 4);
    ck_assert(object_same(&dst, &src));
    struct object_limits lww = limits(CONFLICT_LWW);
    struct object l;
    object_init(&l);
    put(&l, NULL, 1, 1, "old", &lim);
    rkv_buf_free(&db);
    db = enc(&l);
    ALLOC_LOOP(object_sync(&l, &src, &lww, NULL), ck_assert(encodes_to(&l, &db)));
    ck_assert_uint_eq(l.n, 1);
    rkv_buf_free(&db);
    rkv_buf_free(&sb);
    vclock_free(&ctx);
    object_free(&dst);
    object_free(&src);
    object_free(&l);
}
END_TEST

START_TEST(alloc_failure_decode_and_friends)
{
    struct object_limits lim = limits(CONFLICT_SIBLINGS);
    struct object o, out;
    rich_object(&o);
    struct rkv_buf b = enc(&o);
    object_init(&out);
    put(&out, NULL, 77, 1, "keep", &lim);
    struct rkv_buf ob = enc(&out);
    ALLOC_LOOP(object_decode(b.data, b.len, &lim, &out), ck_assert(encodes_to(&out, &ob)));
    ck_assert(encodes_to(&out, &b));
    /* copy, context, encode, context codec */
    struct object c;
    object_init(&c);
    ALLOC_LOOP(object_copy(&c, &o), ck_assert(c.n == 0));
    ck_assert(encodes_to(&c, &b));
    struct vclock ctx, back;
    vclock_init(&ctx);
    vclock_init(&back);
    ALLOC_LOOP(object_context(&o, &ctx), ck_assert(ctx.n == 0));
    ck_assert_uint_eq(ctx.n, 4);
    struct rkv_buf e = {0};
    ALLOC_LOOP(object_encode(&o, &e), ck_assert(e.len == 0));
    ck_assert(bytes_eq(&e, &b));
    struct rkv_buf cb = {0};
    ALLOC_LOOP(context_encode(&ctx, &cb), ck_assert(cb.len == 0));
    ALLOC_LOOP(context_decode(cb.data, cb.len, &lim, &back), ck_assert(back.n == 0));
    ck_assert(vclock_equal(&ctx, &back));
    struct vclock j;
    vclock_init(&j);
    vc_add(&j, 5, 5, 5);
    ALLOC_LOOP(vclock_join(&j, &ctx), ck_assert(j.n == 1));
    ck_assert_uint_eq(j.n, 5);
    rkv_buf_free(&b);
    rkv_buf_free(&ob);
    rkv_buf_free(&e);
    rkv_buf_free(&cb);
    vclock_free(&ctx);
    vclock_free(&back);
    vclock_free(&j);
    object_free(&o);
    object_free(&out);
    object_free(&c);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("object");
    TCase *basics = tcase_create("basics");
    tcase_add_test(basics, modes_and_limits);
    tcase_add_test(basics, vclock_basics);
    tcase_add_test(basics, vclock_join_random);
    tcase_add_test(basics, queries);
    tcase_add_test(basics, contains);
    tcase_set_timeout(basics, 120);
    suite_add_tcase(su, basics);
    TCase *upd = tcase_create("update");
    tcase_add_test(upd, same_actor_concurrency);
    tcase_add_test(upd, merged_context_resolves);
    tcase_add_test(upd, counter_comes_from_everything_known);
    tcase_add_test(upd, update_errors);
    tcase_add_test(upd, siblings_cap);
    tcase_add_test(upd, sync_ceiling);
    tcase_add_test(upd, object_bytes_cap);
    tcase_add_test(upd, counter_ceiling);
    tcase_add_test(upd, pruning_keeps_own_and_adds);
    tcase_add_test(upd, lww_basics);
    tcase_add_test(upd, lww_dots_not_reused);
    tcase_add_test(upd, lww_random);
    tcase_set_timeout(upd, 120);
    suite_add_tcase(su, upd);
    TCase *sim = tcase_create("simulation");
    tcase_set_timeout(sim, 120);
    tcase_add_test(sim, random_histories);
    tcase_add_test(sim, random_histories_pruned);
    suite_add_tcase(su, sim);
    TCase *codec = tcase_create("codec");
    tcase_set_timeout(codec, 60);
    tcase_add_test(codec, decode_truncated);
    tcase_add_test(codec, decode_flipped);
    tcase_add_test(codec, decode_mutated);
    tcase_add_test(codec, decode_rejects);
    tcase_add_test(codec, decode_rejects_bytes);
    tcase_add_test(codec, decode_huge_count_allocates_nothing);
    tcase_add_test(codec, context_round_trip);
    tcase_add_test(codec, context_rejects);
    suite_add_tcase(su, codec);
    TCase *alloc = tcase_create("alloc");
    tcase_add_test(alloc, alloc_failure_update);
    tcase_add_test(alloc, alloc_failure_sync);
    tcase_add_test(alloc, alloc_failure_decode_and_friends);
    tcase_set_timeout(alloc, 120);
    suite_add_tcase(su, alloc);
    return test_run(su);
}
