/*
 * fuzz_object.c: libFuzzer target for stored objects and contexts
 * (common/object.h).
 *
 * Objects arrive from peers (REPLICA_PUT, REPLICA_REPLY) and from disk;
 * contexts arrive from clients. Both decoders are given the input as it is,
 * with the hard ceilings as limits (what ringkvd uses for bytes of unknown
 * origin). The decoders promise to accept only canonical encodings of valid
 * objects, so when one succeeds the target checks:
 *
 *   object:  object_invariants_ok; object_encode gives back the very input
 *            bytes; object_sync with itself succeeds and changes nothing;
 *            object_sync with a fixed small object (in both conflict modes)
 *            succeeds or fails cleanly (RKV_ERR_TOOBIG), and a result keeps
 *            the invariants and re-encodes to bytes that decode again;
 *            object_context works, its encoding decodes to the same clock
 *            (or is refused as too big when the join outgrows
 *            RKV_CLOCK_ENTRIES_MAX); an update with that context
 *            supersedes every sibling (unless the context had to be
 *            pruned) and keeps the invariants, and so do updates under
 *            tight limits (pruning, siblings_max) and in lww mode.
 *   context: context_encode gives back the input bytes (an empty input is
 *            the empty clock, which encodes as [1, []]).
 *
 * The fixed object is rebuilt for every input, so nothing is kept between
 * inputs; all that is allocated is freed.
 */
#include <stdbool.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/object.h"
#include "tests/fuzz/fuzz.h"

#define ACTOR_A 1
#define ACTOR_B 0x8000000000000000ull
#define NOW_MS  1700000000000ull

/* A value from actor B, and a tombstone from actor 2 that saw (and so
 * superseded) actor A's first write: a small object whose dots and pasts
 * overlap what the fuzzer tends to produce (low actors, small counters). */
static void fixed_object(struct object *o, const struct object_limits *lim)
{
    struct vclock seen;
    vclock_init(&seen);
    object_init(o);
    FUZZ_CHECK(object_update(o, NULL, ACTOR_A, NOW_MS, "a", 1, 0, false, lim) == RKV_OK);
    FUZZ_CHECK(object_update(o, NULL, ACTOR_B, NOW_MS + 1, "b", 1, 0, false, lim) == RKV_OK);
    FUZZ_CHECK(vclock_bump(&seen, ACTOR_A, 1, NOW_MS) == RKV_OK);
    FUZZ_CHECK(object_update(o, &seen, 2, NOW_MS + 2, NULL, 0, 0, true, lim) == RKV_OK);
    vclock_free(&seen);
}

/* Encodes o, checks the bytes decode to an object that encodes the same. */
static void check_round_trip(const struct object *o)
{
    struct object_limits lim;
    object_limits_default(&lim);
    struct rkv_buf b1 = {0}, b2 = {0};
    struct object back;
    object_init(&back);
    FUZZ_CHECK(object_encode(o, &b1) == RKV_OK);
    FUZZ_CHECK(object_decode(b1.data, b1.len, &lim, &back) == RKV_OK);
    FUZZ_CHECK(object_same(o, &back));
    FUZZ_CHECK(object_encode(&back, &b2) == RKV_OK);
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    object_free(&back);
    rkv_buf_free(&b1);
    rkv_buf_free(&b2);
}

/* dst := sync(copy of a, b); checks the result if it succeeded. */
static void check_sync(const struct object *a, const struct object *b,
                       const struct object_limits *lim)
{
    struct object dst;
    object_init(&dst);
    FUZZ_CHECK(object_copy(&dst, a) == RKV_OK);
    bool changed = true;
    int rc = object_sync(&dst, b, lim, &changed);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_TOOBIG);
    if (rc != RKV_OK) {
        FUZZ_CHECK(object_same(&dst, a)); /* an error leaves dst as it was */
    } else {
        FUZZ_CHECK(object_invariants_ok(&dst));
        /* lww may replace a sibling by a newer one with the same dot: that
         * is a change object_same cannot see */
        FUZZ_CHECK(changed || object_same(&dst, a));
        if (lim->conflict == CONFLICT_SIBLINGS)
            FUZZ_CHECK(changed == !object_same(&dst, a));
        if (lim->conflict == CONFLICT_LWW)
            FUZZ_CHECK(dst.n <= 1 && (dst.n == 1 || (a->n == 0 && b->n == 0)));
        check_round_trip(&dst);
    }
    object_free(&dst);
}

/* Updates under tight limits (pruning, siblings_max) and in lww mode. */
static void check_updates(const struct object *o, const struct vclock *ctx)
{
    struct object_limits tight, lww;
    object_limits_default(&tight);
    tight.siblings_max = 2;
    tight.clock_entries_max = 2;
    object_limits_default(&lww);
    lww.conflict = CONFLICT_LWW;
    const struct {
        const struct vclock *ctx;
        const struct object_limits *lim;
    } cases[] = {{ctx, &tight}, {NULL, &tight}, {ctx, &lww}, {NULL, &lww}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct object upd;
        object_init(&upd);
        FUZZ_CHECK(object_copy(&upd, o) == RKV_OK);
        int rc = object_update(&upd, cases[i].ctx, 7, NOW_MS, "w", 1, 0, false, cases[i].lim);
        FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_TOOBIG);
        if (rc != RKV_OK) {
            FUZZ_CHECK(object_same(&upd, o)); /* an error changes nothing */
        } else {
            FUZZ_CHECK(object_invariants_ok(&upd));
            FUZZ_CHECK(upd.n <= cases[i].lim->siblings_max);
            if (cases[i].lim->conflict == CONFLICT_LWW)
                FUZZ_CHECK(upd.n == 1);
            /* the new sibling (actor 7's highest counter) has a pruned past */
            const struct sibling *ns = NULL;
            for (uint32_t j = 0; j < upd.n; j++)
                if (upd.s[j].actor == 7 && (ns == NULL || upd.s[j].counter > ns->counter))
                    ns = &upd.s[j];
            FUZZ_CHECK(ns != NULL && ns->past.n <= cases[i].lim->clock_entries_max);
            check_round_trip(&upd);
        }
        object_free(&upd);
    }
}

static void check_context_of(const struct object *o)
{
    struct object_limits lim;
    object_limits_default(&lim);
    struct vclock ctx, back;
    vclock_init(&ctx);
    vclock_init(&back);
    struct rkv_buf b = {0};
    FUZZ_CHECK(object_context(o, &ctx) == RKV_OK);
    for (uint32_t i = 0; i < o->n; i++)
        FUZZ_CHECK(vclock_covers(&ctx, o->s[i].actor, o->s[i].counter) &&
                   vclock_descends(&ctx, &o->s[i].past));
    FUZZ_CHECK(context_encode(&ctx, &b) == RKV_OK);
    int rc = context_decode(b.data, b.len, &lim, &back);
    if (ctx.n > RKV_CLOCK_ENTRIES_MAX) {
        FUZZ_CHECK(rc == RKV_ERR_TOOBIG);
    } else {
        FUZZ_CHECK(rc == RKV_OK && vclock_equal(&ctx, &back));
        /* A write with this context supersedes everything the object holds. */
        struct object upd;
        object_init(&upd);
        FUZZ_CHECK(object_copy(&upd, o) == RKV_OK);
        rc = object_update(&upd, &ctx, 7, NOW_MS, "v", 1, 0, false, &lim);
        FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_TOOBIG); /* TOOBIG: a counter at 2^64 - 1 */
        if (rc == RKV_OK) {
            FUZZ_CHECK(object_invariants_ok(&upd));
            FUZZ_CHECK(upd.n == 1);
            check_round_trip(&upd);
        }
        object_free(&upd);
        check_updates(o, &ctx);
    }
    rkv_buf_free(&b);
    vclock_free(&back);
    vclock_free(&ctx);
}

static void fuzz_object(const uint8_t *data, size_t size)
{
    struct object_limits lim, lww;
    object_limits_default(&lim);
    lww = lim;
    lww.conflict = CONFLICT_LWW;
    struct object o;
    object_init(&o);
    int rc = object_decode(data, size, &lim, &o);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
    if (rc != RKV_OK) {
        FUZZ_CHECK(o.n == 0 && o.s == NULL); /* a failed decode leaves out untouched */
        return;
    }
    FUZZ_CHECK(object_invariants_ok(&o));

    struct rkv_buf b = {0};
    FUZZ_CHECK(object_encode(&o, &b) == RKV_OK);
    FUZZ_CHECK(b.len == size && memcmp(b.data, data, size) == 0);
    rkv_buf_free(&b);

    /* Idempotence: sync with itself changes nothing. */
    struct object same;
    object_init(&same);
    FUZZ_CHECK(object_copy(&same, &o) == RKV_OK);
    bool changed = true;
    FUZZ_CHECK(object_sync(&same, &o, &lim, &changed) == RKV_OK);
    FUZZ_CHECK(!changed && object_same(&same, &o));
    FUZZ_CHECK(object_contains(&o, &o));
    object_free(&same);

    struct object fixed;
    fixed_object(&fixed, &lim);
    check_sync(&o, &fixed, &lim);
    check_sync(&fixed, &o, &lim);
    check_sync(&o, &fixed, &lww);
    check_sync(&fixed, &o, &lww);
    check_sync(&o, &o, &lww);
    object_free(&fixed);

    check_context_of(&o);
    (void)object_live_count(&o, NOW_MS);
    (void)object_newest_live(&o, NOW_MS);
    (void)object_expiry(&o);
    object_free(&o);
}

static void fuzz_context(const uint8_t *data, size_t size)
{
    struct object_limits lim;
    object_limits_default(&lim);
    struct vclock vc;
    vclock_init(&vc);
    int rc = context_decode(data, size, &lim, &vc);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
    if (rc != RKV_OK) {
        FUZZ_CHECK(vc.n == 0 && vc.e == NULL);
        return;
    }
    FUZZ_CHECK(vc.n <= RKV_CLOCK_ENTRIES_MAX);
    for (uint32_t i = 0; i < vc.n; i++)
        FUZZ_CHECK(vc.e[i].counter > 0 && (i == 0 || vc.e[i - 1].actor < vc.e[i].actor));
    struct rkv_buf b = {0};
    FUZZ_CHECK(context_encode(&vc, &b) == RKV_OK);
    if (size == 0)
        FUZZ_CHECK(vc.n == 0 && b.len == 3);
    else
        FUZZ_CHECK(b.len == size && memcmp(b.data, data, size) == 0);
    rkv_buf_free(&b);
    vclock_free(&vc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_object(data, size);
    fuzz_context(data, size);
    return 0;
}
