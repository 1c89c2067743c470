/*
 * test_ring.c: placement. Same view, same ring, whatever order the members
 * come in; the published XXH3 vectors and ringkv's own format constants;
 * owners, preference lists and walks against a brute-force model; bad
 * input; allocation failure. Two tests print reports to stdout rather than
 * time anything: ownership balance per node, and how many partitions move
 * when one node joins.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/limits.h"
#include "ring/ring.h"
#include "ring/ring_int.h"
#include "tests/support/testutil.h"

/* ---- helpers ---- */

/* A member list with its own id storage. */
struct view {
    size_t n;
    char ids[RKV_NODES_MAX][RKV_NODE_ID_BYTES_MAX + 1];
    struct ring_member m[RKV_NODES_MAX];
};

static struct view *view_new(void)
{
    struct view *v = calloc(1, sizeof *v);
    ck_assert_ptr_nonnull(v);
    return v;
}

static void view_add(struct view *v, const char *id, uint32_t vnodes)
{
    ck_assert_uint_lt(v->n, RKV_NODES_MAX);
    snprintf(v->ids[v->n], sizeof v->ids[v->n], "%s", id);
    v->m[v->n] = (struct ring_member){.id = v->ids[v->n], .vnodes = vnodes};
    v->n++;
}

/* Members "n0" .. "n<count-1>", vnodes each. */
static void view_named(struct view *v, size_t count, uint32_t vnodes)
{
    char id[24];
    v->n = 0;
    for (size_t i = 0; i < count; i++) {
        snprintf(id, sizeof id, "n%zu", i);
        view_add(v, id, vnodes);
    }
}

static const char ID_BYTES[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

/* count members with random distinct ids of 1..64 bytes and 1..vmax vnodes. */
static void view_random(struct view *v, size_t count, uint32_t vmax, struct test_rng *rng)
{
    v->n = 0;
    while (v->n < count) {
        char id[RKV_NODE_ID_BYTES_MAX + 1];
        size_t len = 1 + test_rng_below(rng, test_rng_below(rng, 4) ? 8 : RKV_NODE_ID_BYTES_MAX);
        for (size_t j = 0; j < len; j++)
            id[j] = ID_BYTES[test_rng_below(rng, sizeof ID_BYTES - 1)];
        id[len] = '\0';
        bool dup = false;
        for (size_t k = 0; k < v->n && !dup; k++)
            dup = strcmp(v->ids[k], id) == 0;
        if (!dup)
            view_add(v, id, 1 + (uint32_t)test_rng_below(rng, vmax));
    }
}

static void view_shuffle(struct view *v, struct test_rng *rng)
{
    for (size_t i = v->n; i > 1; i--) {
        size_t j = test_rng_below(rng, i);
        struct ring_member t = v->m[i - 1];
        v->m[i - 1] = v->m[j];
        v->m[j] = t;
    }
}

/* Builds and checks a ring; seed (or -1) goes into failure messages. */
static struct ring *build_seeded(const struct view *v, uint32_t q, uint32_t n_rep, int seed)
{
    struct ring *r = NULL;
    struct rkv_error err = {0};
    int rc = ring_new(v->m, v->n, q, n_rep, &r, &err);
    ck_assert_msg(rc == RKV_OK, "seed %d: ring_new: %s", seed, err.msg);
    ck_assert_msg(ring_invariants_ok(r), "seed %d: invariants", seed);
    return r;
}

static struct ring *build(const struct view *v, uint32_t q, uint32_t n_rep)
{
    return build_seeded(v, q, n_rep, -1);
}

static uint32_t pow2_below(struct test_rng *rng, uint32_t max_bits)
{
    return 1u << test_rng_below(rng, max_bits + 1);
}

/* ---- hash vectors and format constants ---- */

#define PRIME32      2654435761u
#define PRIME64      11400714785074694797ull
#define SANITY_BYTES 2367

/* xxHash's sanity buffer, made the way xxhsum documents it. */
static void fill_sanity_buffer(uint8_t *buf, size_t len)
{
    uint64_t gen = PRIME32;
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(gen >> 56);
        gen *= PRIME64;
    }
}

/* XXH3_64bits_withSeed test vectors published by the xxHash project
 * (xxhsum's self-test, cli/xsum_sanity_check.c, XSUM_XXH3_testdata):
 * the first len bytes of the sanity buffer, with the given seed. */
static const struct {
    uint32_t len;
    uint64_t seed;
    uint64_t hash;
} XXH3_VECTORS[] = {
    {.len = 0, .seed = 0, .hash = 0x2D06800538D394C2ull},
    {.len = 0, .seed = PRIME64, .hash = 0xA8A6B918B2F0364Aull},
    {.len = 1, .seed = 0, .hash = 0xC44BDFF4074EECDBull},
    {.len = 1, .seed = PRIME64, .hash = 0x032BE332DD766EF8ull},
    {.len = 6, .seed = 0, .hash = 0x27B56A84CD2D7325ull},
    {.len = 6, .seed = PRIME64, .hash = 0x84589C116AB59AB9ull},
    {.len = 12, .seed = 0, .hash = 0xA713DAF0DFBB77E7ull},
    {.len = 12, .seed = PRIME64, .hash = 0xE7303E1B2336DE0Eull},
    {.len = 24, .seed = 0, .hash = 0xA3FE70BF9D3510EBull},
    {.len = 24, .seed = PRIME64, .hash = 0x850E80FC35BDD690ull},
    {.len = 48, .seed = 0, .hash = 0x397DA259ECBA1F11ull},
    {.len = 48, .seed = PRIME64, .hash = 0xADC2CBAA44ACC616ull},
    {.len = 80, .seed = 0, .hash = 0xBCDEFBBB2C47C90Aull},
    {.len = 80, .seed = PRIME64, .hash = 0xC6DD0CB699532E73ull},
    {.len = 195, .seed = 0, .hash = 0xCD94217EE362EC3Aull},
    {.len = 195, .seed = PRIME64, .hash = 0xBA68003D370CB3D9ull},
    {.len = 403, .seed = 0, .hash = 0xCDEB804D65C6DEA4ull},
    {.len = 403, .seed = PRIME64, .hash = 0x6259F6ECFD6443FDull},
    {.len = 512, .seed = 0, .hash = 0x617E49599013CB6Bull},
    {.len = 512, .seed = PRIME64, .hash = 0x3CE457DE14C27708ull},
    {.len = 2048, .seed = 0, .hash = 0xDD59E2C3A5F038E0ull},
    {.len = 2048, .seed = PRIME64, .hash = 0x66F81670669ABABCull},
    {.len = 2099, .seed = 0, .hash = 0xC6B9D9B3FC9AC765ull},
    {.len = 2099, .seed = PRIME64, .hash = 0x184F316843663974ull},
    {.len = 2240, .seed = 0, .hash = 0x6E73A90539CF2948ull},
    {.len = 2240, .seed = PRIME64, .hash = 0x757BA8487D1B5247ull},
    {.len = 2367, .seed = 0, .hash = 0xCB37AEB9E5D361EDull},
    {.len = 2367, .seed = PRIME64, .hash = 0xD2DB3415B942B42Aull},
};

START_TEST(xxh3_published_vectors)
{
    static uint8_t buf[SANITY_BYTES];
    fill_sanity_buffer(buf, sizeof buf);
    for (size_t i = 0; i < sizeof XXH3_VECTORS / sizeof XXH3_VECTORS[0]; i++) {
        uint32_t len = XXH3_VECTORS[i].len;
        uint64_t seed = XXH3_VECTORS[i].seed;
        const void *data = len ? buf : NULL;
        uint64_t got = XXH3_64bits_withSeed(data, len, seed);
        ck_assert_msg(got == XXH3_VECTORS[i].hash, "XXH3 len %u seed %" PRIu64 ": %016" PRIX64, len,
                      seed, got);
        if (seed == RING_KEY_SEED)
            ck_assert_uint_eq(ring_hash_key(data, len), XXH3_VECTORS[i].hash);
    }
}
END_TEST

/*
 * ringkv format constants. Key and token positions, the partition a key
 * lands in, the epoch and the placement itself are part of the on-disk and
 * wire format: these values must never change between releases. If this
 * test fails, placement changed; do not "fix" the constants.
 */
#define FMT_HELLO_POS   0x9555E8555C62DCFDull /* ring_hash_key("hello", 5) */
#define FMT_TOKEN_N1_0  0xC407687D60235E05ull /* token 0 of "n1" */
#define FMT_TOKEN_N1_63 0x4AFE7120EFFCF9B5ull
#define FMT_EPOCH_3     0xA40072F354958F0Bull /* n1, n2, n3; V 64; Q 256; N 3 */
#define FMT_PREFLISTS_3 0x3307394679CAFC10ull /* XXH3-64 of its preflists as u32le */

START_TEST(format_constants)
{
    ck_assert_uint_eq(ring_hash_key("hello", 5), FMT_HELLO_POS);
    ck_assert_uint_eq(ring_token_pos("n1", 2, 0), FMT_TOKEN_N1_0);
    ck_assert_uint_eq(ring_token_pos("n1", 2, 63), FMT_TOKEN_N1_63);
    /* the header's words: id bytes, then the vnode as u32le */
    ck_assert_uint_eq(XXH3_64bits_withSeed("n1\x3f\0\0\0", 6, RING_TOKEN_SEED), FMT_TOKEN_N1_63);

    struct view *v = view_new();
    view_add(v, "n3", 64);
    view_add(v, "n1", 64);
    view_add(v, "n2", 64);
    struct ring *r = build(v, 256, 3);
    ck_assert_uint_eq(ring_partition(r, FMT_HELLO_POS), 0x95);
    ck_assert_uint_eq(ring_epoch(r), FMT_EPOCH_3);
    uint8_t buf[256 * 3 * 4];
    for (uint32_t p = 0; p < 256; p++)
        for (uint32_t k = 0; k < 3; k++)
            rkv_put_u32(buf + (p * 3 + k) * 4, ring_preflist(r, p)[k]);
    ck_assert_uint_eq(XXH3_64bits(buf, sizeof buf), FMT_PREFLISTS_3);
    /* the token the ring placed is the one the format says */
    int n1 = ring_member_index(r, "n1");
    ck_assert_int_eq(n1, 0);
    bool found = false;
    for (uint32_t t = 0; t < r->n_tokens; t++)
        if (r->tokens[t].member == 0 && r->tokens[t].vnode == 0)
            found = r->tokens[t].pos == FMT_TOKEN_N1_0;
    ck_assert(found);
    ring_free(r);
    free(v);
}
END_TEST

/* The epoch is XXH3-64 of the encoding ring.h describes, built here from
 * the header's words, not from ring.c's code. */
static uint64_t model_epoch(const struct view *v, uint32_t q, uint32_t n_rep)
{
    const char *sorted[RKV_NODES_MAX];
    uint32_t vnodes[RKV_NODES_MAX];
    for (size_t i = 0; i < v->n; i++) { /* insertion sort by bytes */
        size_t j = i;
        while (j > 0 && strcmp(sorted[j - 1], v->m[i].id) > 0) {
            sorted[j] = sorted[j - 1];
            vnodes[j] = vnodes[j - 1];
            j--;
        }
        sorted[j] = v->m[i].id;
        vnodes[j] = v->m[i].vnodes;
    }
    static uint8_t buf[12 + RKV_NODES_MAX * (1 + RKV_NODE_ID_BYTES_MAX + 4)];
    size_t len = 12;
    rkv_put_u32(buf, q);
    rkv_put_u32(buf + 4, n_rep);
    rkv_put_u32(buf + 8, (uint32_t)v->n);
    for (size_t i = 0; i < v->n; i++) {
        size_t id_len = strlen(sorted[i]);
        buf[len++] = (uint8_t)id_len;
        memcpy(buf + len, sorted[i], id_len);
        len += id_len;
        rkv_put_u32(buf + len, vnodes[i]);
        len += 4;
    }
    return XXH3_64bits_withSeed(buf, len, RING_EPOCH_SEED);
}

START_TEST(epoch_is_hash_of_canonical_encoding)
{
    struct view *v = view_new();
    int seeds = test_seeds(20);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        view_random(v, 1 + test_rng_below(&rng, 30), 100, &rng);
        uint32_t q = pow2_below(&rng, 10);
        uint32_t n_rep = 1 + (uint32_t)test_rng_below(&rng, RKV_REPLICAS_MAX);
        struct ring *r = build_seeded(v, q, n_rep, seed);
        ck_assert_msg(ring_epoch(r) == model_epoch(v, q, n_rep), "seed %d", seed);
        ring_free(r);
    }
    free(v);
}
END_TEST

/* ---- same view, same ring ---- */

static void assert_same_ring(const struct ring *a, const struct ring *b, int seed)
{
    ck_assert_msg(ring_epoch(a) == ring_epoch(b), "seed %d: epoch", seed);
    ck_assert_msg(a->n_members == b->n_members && a->n_rep == b->n_rep &&
                      a->n_tokens == b->n_tokens,
                  "seed %d: sizes", seed);
    for (uint32_t m = 0; m < a->n_members; m++)
        ck_assert_msg(strcmp(ring_member_id(a, m), ring_member_id(b, m)) == 0 &&
                          ring_member_vnodes(a, m) == ring_member_vnodes(b, m) &&
                          ring_owned_count(a, m) == ring_owned_count(b, m),
                      "seed %d: member %u", seed, m);
    size_t q = a->partitions;
    ck_assert_msg(memcmp(a->tokens, b->tokens, a->n_tokens * sizeof *a->tokens) == 0,
                  "seed %d: tokens", seed);
    ck_assert_msg(memcmp(a->owner_token, b->owner_token, q * sizeof *a->owner_token) == 0,
                  "seed %d: owner tokens", seed);
    ck_assert_msg(memcmp(a->preflists, b->preflists, q * a->n_rep * sizeof *a->preflists) == 0,
                  "seed %d: preference lists", seed);
}

START_TEST(same_view_same_ring)
{
    struct view *v = view_new();
    int seeds = test_seeds(12);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        view_random(v, 1 + test_rng_below(&rng, 48), 128, &rng);
        uint32_t q = pow2_below(&rng, 12);
        uint32_t n_rep = 1 + (uint32_t)test_rng_below(&rng, 5);
        struct ring *ref = build_seeded(v, q, n_rep, seed);
        for (int shuffle = 0; shuffle < 4; shuffle++) {
            view_shuffle(v, &rng);
            struct ring *r = build_seeded(v, q, n_rep, seed);
            assert_same_ring(ref, r, seed);
            ring_free(r);
        }
        ring_free(ref);
    }
    free(v);
}
END_TEST

START_TEST(different_views_different_epochs)
{
    struct view *v = view_new();
    view_named(v, 5, 64);
    struct ring *base = build(v, 256, 3);
    uint64_t e0 = ring_epoch(base);
    struct ring *r;
    r = build(v, 512, 3); /* Q */
    ck_assert_uint_ne(ring_epoch(r), e0);
    ring_free(r);
    r = build(v, 256, 2); /* N */
    ck_assert_uint_ne(ring_epoch(r), e0);
    ring_free(r);
    v->m[2].vnodes = 65; /* one member's V */
    r = build(v, 256, 3);
    ck_assert_uint_ne(ring_epoch(r), e0);
    ring_free(r);
    v->m[2].vnodes = 64;
    snprintf(v->ids[4], sizeof v->ids[4], "n4x"); /* a renamed member */
    r = build(v, 256, 3);
    ck_assert_uint_ne(ring_epoch(r), e0);
    ring_free(r);
    snprintf(v->ids[4], sizeof v->ids[4], "n4");
    view_add(v, "n5", 64); /* a joined member */
    r = build(v, 256, 3);
    ck_assert_uint_ne(ring_epoch(r), e0);
    ring_free(r);
    ring_free(base);
    free(v);
}
END_TEST

/* ---- preference lists against a brute-force model ---- */

struct model_token {
    uint64_t pos;
    uint32_t member; /* rank of the id in bytewise order */
    uint32_t vnode;
};

static int model_cmp(const struct model_token *x, const struct model_token *y)
{
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    if (x->member != y->member)
        return x->member < y->member ? -1 : 1;
    return x->vnode < y->vnode ? -1 : x->vnode > y->vnode;
}

/* Token k of id as the header defines it. */
static uint64_t model_token_pos(const char *id, uint32_t k)
{
    uint8_t buf[RKV_NODE_ID_BYTES_MAX + 4];
    size_t len = strlen(id);
    memcpy(buf, id, len);
    buf[len] = (uint8_t)k;
    buf[len + 1] = (uint8_t)(k >> 8);
    buf[len + 2] = (uint8_t)(k >> 16);
    buf[len + 3] = (uint8_t)(k >> 24);
    return XXH3_64bits_withSeed(buf, len + 4, RING_TOKEN_SEED);
}

/* Every token, unsorted, from the header's definition. */
static size_t model_tokens(const struct view *v, struct model_token *out)
{
    size_t t = 0;
    for (size_t i = 0; i < v->n; i++) {
        uint32_t rank = 0;
        for (size_t j = 0; j < v->n; j++)
            rank += strcmp(v->m[j].id, v->m[i].id) < 0;
        for (uint32_t k = 0; k < v->m[i].vnodes; k++)
            out[t++] = (struct model_token){
                .pos = model_token_pos(v->m[i].id, k),
                .member = rank,
                .vnode = k,
            };
    }
    return t;
}

/* The token following at (strictly after it in ring order), wrapping. */
static size_t model_next(const struct model_token *tok, size_t n, const struct model_token *at)
{
    size_t best = n, lowest = 0;
    for (size_t i = 0; i < n; i++) {
        if (model_cmp(&tok[i], &tok[lowest]) < 0)
            lowest = i;
        if (model_cmp(&tok[i], at) > 0 && (best == n || model_cmp(&tok[i], &tok[best]) < 0))
            best = i;
    }
    return best == n ? lowest : best;
}

/* Every member in the model's clockwise order from partition start. */
static uint32_t model_walk(const struct model_token *tok, size_t n, uint64_t start,
                           uint32_t members, uint32_t *out)
{
    /* the first token at or after start is the next one after (start - 1, max, max) */
    struct model_token at = {.pos = start - 1, .member = UINT32_MAX, .vnode = UINT32_MAX};
    if (start == 0)
        at = (struct model_token){.pos = UINT64_MAX, .member = UINT32_MAX, .vnode = UINT32_MAX};
    bool seen[64] = {false};
    uint32_t got = 0;
    size_t cur = model_next(tok, n, &at);
    for (size_t step = 0; step < n && got < members; step++) {
        if (!seen[tok[cur].member]) {
            seen[tok[cur].member] = true;
            out[got++] = tok[cur].member;
        }
        cur = model_next(tok, n, &tok[cur]);
    }
    return got;
}

static void check_partition(const struct ring *r, uint32_t p, const uint32_t *expect, int seed)
{
    uint32_t n = ring_member_count(r), n_rep = ring_replicas(r);
    const uint32_t *pl = ring_preflist(r, p);
    for (uint32_t k = 0; k < n_rep; k++)
        ck_assert_msg(pl[k] == expect[k], "seed %d partition %u: preflist[%u]", seed, p, k);
    for (uint32_t m = 0; m < n; m++) {
        bool in = false;
        for (uint32_t k = 0; k < n_rep; k++)
            in = in || pl[k] == m;
        ck_assert_msg(ring_in_preflist(r, p, m) == in, "seed %d partition %u member %u", seed, p,
                      m);
    }
    uint32_t walk[64];
    ck_assert_msg(ring_walk(r, p, walk, 64) == n && memcmp(walk, expect, n * sizeof *walk) == 0,
                  "seed %d partition %u: walk", seed, p);
    ck_assert_msg(ring_walk(r, p, walk, n_rep) == n_rep, "seed %d partition %u", seed, p);
    ck_assert_uint_eq(ring_walk(r, p, NULL, 0), 0);
}

START_TEST(preflists_match_model)
{
    struct view *v = view_new();
    static struct model_token tok[12 * 16];
    int seeds = test_seeds(40);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        view_random(v, 1 + test_rng_below(&rng, 12), 16, &rng);
        uint32_t q = pow2_below(&rng, 6);
        uint32_t n_rep = 1 + (uint32_t)test_rng_below(&rng, 5);
        struct ring *r = build_seeded(v, q, n_rep, seed);
        ck_assert_msg(ring_replicas(r) == (n_rep < v->n ? n_rep : v->n), "seed %d", seed);
        size_t nt = model_tokens(v, tok);
        uint32_t owned_total = 0;
        for (uint32_t m = 0; m < v->n; m++)
            owned_total += ring_owned_count(r, m);
        ck_assert_uint_eq(owned_total, q);
        for (uint32_t p = 0; p < q; p++) {
            uint32_t expect[12];
            uint64_t start = ring_partition_start(r, p);
            ck_assert_msg(model_walk(tok, nt, start, (uint32_t)v->n, expect) == v->n, "seed %d",
                          seed);
            check_partition(r, p, expect, seed);
        }
        ring_free(r);
    }
    free(v);
}
END_TEST

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Ties between token positions, over ids n0..n<count-1> with V tokens. */
static uint32_t position_ties(uint32_t count, uint32_t v_count, bool seed_is_vnode)
{
    uint64_t *pos = calloc((size_t)count * v_count, sizeof *pos);
    ck_assert_ptr_nonnull(pos);
    size_t t = 0;
    for (uint32_t m = 0; m < count; m++) {
        char id[16];
        int len = snprintf(id, sizeof id, "n%u", m);
        for (uint32_t k = 0; k < v_count; k++)
            pos[t++] = seed_is_vnode ? XXH3_64bits_withSeed(id, (size_t)len, k)
                                     : ring_token_pos(id, (size_t)len, k);
    }
    qsort(pos, t, sizeof *pos, u64_cmp);
    uint32_t ties = 0;
    for (size_t i = 1; i < t; i++)
        ties += pos[i] == pos[i - 1];
    free(pos);
    return ties;
}

/* Why the vnode number is hashed rather than used as the seed: with seed i,
 * short ids that differ in one character share most token positions (XXH3
 * hashes 1..3-byte input as f(input ^ (k + seed))). */
START_TEST(short_ids_get_distinct_tokens)
{
    ck_assert_uint_eq(position_ties(64, 256, false), 0);
    uint32_t seeded = position_ties(64, 256, true);
    printf("\nring tokens: n0..n63, V=256: %u of %u positions repeated with seed = vnode, "
           "0 as ringkv hashes them\n",
           seeded, 64 * 256);
    fflush(stdout);
    ck_assert_uint_gt(seeded, 1000);
}
END_TEST

START_TEST(members_sorted_and_found)
{
    struct view *v = view_new();
    struct test_rng rng = {7};
    view_random(v, 40, 8, &rng);
    struct ring *r = build(v, 64, 3);
    for (uint32_t m = 0; m + 1 < ring_member_count(r); m++)
        ck_assert_int_lt(strcmp(ring_member_id(r, m), ring_member_id(r, m + 1)), 0);
    for (size_t i = 0; i < v->n; i++) {
        int idx = ring_member_index(r, v->m[i].id);
        ck_assert_int_ge(idx, 0);
        ck_assert_str_eq(ring_member_id(r, (uint32_t)idx), v->m[i].id);
        ck_assert_uint_eq(ring_member_vnodes(r, (uint32_t)idx), v->m[i].vnodes);
    }
    ck_assert_int_eq(ring_member_index(r, "no-such-member"), -1);
    ck_assert_int_eq(ring_member_index(r, ""), -1);
    ck_assert_int_eq(ring_member_index(r, NULL), -1);
    ring_free(r);
    ring_free(NULL);
    free(v);
}
END_TEST

START_TEST(partition_of_key)
{
    struct view *v = view_new();
    view_named(v, 3, 4);
    struct test_rng rng = {11};
    for (uint32_t bits = 0; bits <= 16; bits++) {
        uint32_t q = 1u << bits;
        struct ring *r = build(v, q, 3);
        ck_assert_uint_eq(ring_partitions(r), q);
        uint64_t edges[] = {0, 1, UINT64_MAX, ring_partition_start(r, q - 1)};
        for (int i = 0; i < 1000 + 4; i++) {
            uint64_t h = i < 4 ? edges[i] : test_rng_next(&rng);
            uint32_t p = ring_partition(r, h);
            ck_assert_uint_lt(p, q);
            ck_assert_uint_eq(p, bits ? h >> (64 - bits) : 0);
            ck_assert(ring_partition_start(r, p) <= h);
            if (p + 1 < q)
                ck_assert(h < ring_partition_start(r, p + 1));
        }
        ring_free(r);
    }
    free(v);
}
END_TEST

/* ---- bad input ---- */

static void expect_inval(const struct ring_member *m, size_t n, uint32_t q, uint32_t n_rep,
                         const char *msg_part)
{
    struct ring *r = (struct ring *)&r; /* not NULL: ring_new must clear it */
    struct rkv_error err = {0};
    int rc = ring_new(m, n, q, n_rep, &r, &err);
    ck_assert_msg(rc == RKV_ERR_INVAL, "want INVAL with \"%s\", got %d (%s)", msg_part, rc,
                  err.msg);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.code, RKV_ERR_INVAL);
    ck_assert_msg(strstr(err.msg, msg_part) != NULL, "message \"%s\" lacks \"%s\"", err.msg,
                  msg_part);
    ck_assert_int_eq(ring_new(m, n, q, n_rep, &r, NULL), RKV_ERR_INVAL);
}

START_TEST(bad_inputs_rejected)
{
    struct ring_member ok[] = {{.id = "n0", .vnodes = 8}, {.id = "n1", .vnodes = 8}};
    expect_inval(ok, 0, 256, 3, "ring: no members");
    expect_inval(NULL, 0, 256, 3, "ring: no members");
    expect_inval(ok, 2, 0, 3, "partitions 0 is not a power of two");
    expect_inval(ok, 2, 3, 3, "partitions 3 is not a power of two");
    expect_inval(ok, 2, 131072, 3, "partitions 131072 is not a power of two in 1..65536");
    expect_inval(ok, 2, 256, 0, "replicas 0 not in 1..16");
    expect_inval(ok, 2, 256, 17, "replicas 17 not in 1..16");

    struct ring_member dup[] = {
        {.id = "n0", .vnodes = 8},
        {.id = "n1", .vnodes = 8},
        {.id = "n2", .vnodes = 8},
        {.id = "n1", .vnodes = 9},
    };
    expect_inval(dup, 4, 256, 3, "ring: member 3: duplicate id \"n1\" (same as member 1)");

    char long_id[RKV_NODE_ID_BYTES_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    struct ring_member bad[] = {{.id = "n0", .vnodes = 8}, {.id = "n1", .vnodes = 8}};
    const struct {
        const char *id;
        uint32_t vnodes;
        const char *msg;
    } cases[] = {
        {.id = "", .vnodes = 8, .msg = "ring: member 1: empty id"},
        {.id = NULL, .vnodes = 8, .msg = "ring: member 1: id is NULL"},
        {.id = "a b", .vnodes = 8, .msg = "ring: member 1: id has bad byte 0x20 at offset 1"},
        {.id = "n/1", .vnodes = 8, .msg = "ring: member 1: id has bad byte 0x2f at offset 1"},
        {.id = "caf\xc3\xa9",
         .vnodes = 8,
         .msg = "ring: member 1: id has bad byte 0xc3 at offset 3"},
        {.id = "tab\t", .vnodes = 8, .msg = "bad byte 0x09"},
        {.id = long_id, .vnodes = 8, .msg = "ring: member 1: id longer than 64 bytes"},
        {.id = "n1", .vnodes = 0, .msg = "ring: member 1 (\"n1\"): vnodes 0 not in 1..4096"},
        {"n1", RKV_VNODES_MAX + 1, "vnodes 4097 not in 1..4096"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad[1] = (struct ring_member){.id = cases[i].id, .vnodes = cases[i].vnodes};
        expect_inval(bad, 2, 256, 3, cases[i].msg);
    }

    struct view *v = view_new();
    view_named(v, RKV_NODES_MAX, 1);
    struct ring_member *many = calloc(RKV_NODES_MAX + 1, sizeof *many);
    memcpy(many, v->m, RKV_NODES_MAX * sizeof *many);
    many[RKV_NODES_MAX] = (struct ring_member){.id = "extra", .vnodes = 1};
    expect_inval(many, RKV_NODES_MAX + 1, 256, 3, "ring: 1025 members, at most 1024 allowed");
    free(many);
    free(v);

    /* the limits themselves are accepted */
    long_id[RKV_NODE_ID_BYTES_MAX] = '\0';
    struct ring_member edge[] = {{.id = long_id, .vnodes = RKV_VNODES_MAX},
                                 {.id = "A-Z_a.z-09", .vnodes = 1}};
    struct ring *r = NULL;
    ck_assert_int_eq(ring_new(edge, 2, RKV_PARTITIONS_MAX, RKV_REPLICAS_MAX, &r, NULL), RKV_OK);
    ck_assert(ring_invariants_ok(r));
    ck_assert_uint_eq(ring_replicas(r), 2);
    ring_free(r);
    ck_assert_int_eq(ring_new(edge, 2, 1, 1, &r, NULL), RKV_OK);
    ck_assert(ring_invariants_ok(r));
    ring_free(r);
}
END_TEST

START_TEST(largest_ring)
{
    struct view *v = view_new();
    view_named(v, RKV_NODES_MAX, 8);
    struct ring *r = build(v, RKV_PARTITIONS_MAX, RKV_REPLICAS_MAX);
    ck_assert_uint_eq(ring_replicas(r), RKV_REPLICAS_MAX);
    static uint32_t walk[RKV_NODES_MAX];
    ck_assert_uint_eq(ring_walk(r, 12345, walk, RKV_NODES_MAX), RKV_NODES_MAX);
    ring_free(r);
    free(v);
}
END_TEST

/* ---- allocation failure ---- */

START_TEST(alloc_failure_is_clean)
{
    struct view *v = view_new();
    view_named(v, 5, 8);
    for (long n = 0;; n++) {
        struct ring *r = (struct ring *)&r;
        struct rkv_error err = {0};
        test_alloc_fail_from(n);
        int rc = ring_new(v->m, v->n, 64, 3, &r, &err);
        bool refused = test_alloc_failed();
        test_alloc_reset();
        if (rc == RKV_OK) {
            ck_assert_msg(!refused, "allocation %ld refused but ring_new succeeded", n);
            ck_assert(ring_invariants_ok(r));
            ring_free(r);
            ck_assert_int_gt(n, 0);
            break;
        }
        ck_assert_msg(rc == RKV_ERR_NOMEM, "allocation %ld: rc %d (%s)", n, rc, err.msg);
        ck_assert_ptr_null(r);
        ck_assert_msg(strstr(err.msg, "out of memory") != NULL, "%s", err.msg);
        ck_assert_int_lt(n, 100);
    }
    free(v);
}
END_TEST

START_TEST(alloc_failure_leaks_nothing)
{
    struct view *v = view_new();
    view_named(v, 5, 8);
    for (long n = 0; n < 100; n++) {
        /* fails from the nth call and counts live blocks, so the no-leak
         * claim is checked in every build, not only under LeakSanitizer */
        test_alloc_fail_from(n);
        struct ring *r = NULL;
        int rc = ring_new(v->m, v->n, 64, 3, &r, NULL);
        bool live_while_built = test_alloc_live() > 0;
        ring_free(r);
        long live = test_alloc_live();
        test_alloc_reset();
        ck_assert_msg(live == 0, "allocation %ld: %ld blocks leaked", n, live);
        if (rc == RKV_OK) {
            ck_assert(live_while_built);
            break;
        }
        ck_assert_int_eq(rc, RKV_ERR_NOMEM);
    }
    free(v);
}
END_TEST

/* ---- reports: balance and movement ---- */

static void print_balance_row(const struct ring *r, uint32_t v_count)
{
    uint32_t n = ring_member_count(r), q = ring_partitions(r);
    uint32_t lo = UINT32_MAX, hi = 0, total = 0;
    for (uint32_t m = 0; m < n; m++) {
        uint32_t owned = ring_owned_count(r, m);
        ck_assert_uint_le(owned, q);
        lo = owned < lo ? owned : lo;
        hi = owned > hi ? owned : hi;
        total += owned;
    }
    ck_assert_uint_eq(total, q);
    double avg = (double)q / n;
    char ratio[16];
    if (lo == 0)
        snprintf(ratio, sizeof ratio, "inf");
    else
        snprintf(ratio, sizeof ratio, "%.2f", (double)hi / lo);
    printf("%6u %4u %5u %8.1f %5u %5u %8s %8.2f%s\n", q, v_count, n, avg, lo, hi, ratio, hi / avg,
           n >= 8 && lo > 0 && hi <= 1.3 * lo ? "  <= 1.3" : "");
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One row per (Q, V, nodes), Q slowest. */
static void balance_grid(const uint32_t *qs, size_t nq, const uint32_t *vs, size_t nv,
                         const uint32_t *ns, size_t nn)
{
    struct view *v = view_new();
    printf("%6s %4s %5s %8s %5s %5s %8s %8s\n", "Q", "V", "nodes", "avg", "min", "max", "max/min",
           "max/avg");
    for (size_t qi = 0; qi < nq; qi++)
        for (size_t vi = 0; vi < nv; vi++)
            for (size_t ni = 0; ni < nn; ni++) {
                view_named(v, ns[ni], vs[vi]);
                struct ring *r = build(v, qs[qi], 3);
                print_balance_row(r, vs[vi]);
                ring_free(r);
            }
    fflush(stdout);
    free(v);
}

/* The issue asks for max/min <= 1.3 at V = 64 from 8 nodes on; the second
 * table shows what V and Q it takes with hashed tokens. */
START_TEST(balance_report)
{
    static const uint32_t nodes[] = {3, 4, 5, 8, 16, 32, 64};
    static const uint32_t vnodes[] = {16, 64, 256};
    static const uint32_t qs[] = {256, 1024, 4096};
    printf("\nring balance: partitions owned per node (members n0..n<k-1>, N=3)\n");
    balance_grid(qs, COUNT(qs), vnodes, COUNT(vnodes), nodes, COUNT(nodes));

    static const uint32_t big_nodes[] = {8, 16, 32, 64};
    static const uint32_t big_vnodes[] = {64, 256, 1024};
    static const uint32_t big_qs[] = {16384, 65536};
    printf("\nring balance beyond the defaults\n");
    balance_grid(big_qs, COUNT(big_qs), big_vnodes, COUNT(big_vnodes), big_nodes, COUNT(big_nodes));
}
END_TEST

/*
 * Partitions the new node takes as owner (M) against the expectation
 * E = Q / (n + 1). Two sources of spread: the node's share of the ring is a
 * sum of V gaps between tokens, so its relative variance is about 1 / V
 * (variance E^2 / V); and each of its V arcs holds a whole number of
 * partition starts, adding at most min(V / 4, E). The bound is 5 standard
 * deviations of that, on each side: a normal tail of 6e-7 per case, so a
 * failure means placement is wrong, not unlucky. With Q = 256 and many
 * nodes E is small and the lower bound is 0; Q = 4096 makes it bite.
 */
static bool moved_plausible(uint32_t moved, uint32_t q, uint32_t n, uint32_t v_count)
{
    double e = (double)q / (n + 1);
    double var = e * e / v_count + (v_count / 4.0 < e ? v_count / 4.0 : e);
    double d = moved - e;
    return d * d <= 25 * var;
}

/* Partitions whose preference list changed; asserts each such list now
 * holds the new member and keeps the old members' order (the old list with
 * the new member inserted, truncated to N). */
static uint32_t preflists_changed(const struct ring *a, const struct ring *b, uint32_t joined)
{
    uint32_t changed = 0, n_rep = ring_replicas(a);
    ck_assert_uint_eq(ring_replicas(b), n_rep);
    for (uint32_t p = 0; p < ring_partitions(a); p++) {
        const uint32_t *pa = ring_preflist(a, p), *pb = ring_preflist(b, p);
        uint32_t k = 0;
        bool has_new = false, same = true;
        for (uint32_t j = 0; j < n_rep; j++) {
            if (pb[j] == joined) {
                has_new = true;
                continue;
            }
            /* member indices differ between a and b: compare ids */
            ck_assert_str_eq(ring_member_id(b, pb[j]), ring_member_id(a, pa[k]));
            same = same && j == k;
            k++;
        }
        same = same && !has_new;
        changed += !same;
        ck_assert_msg(same || has_new, "partition %u changed without the new member", p);
    }
    return changed;
}

/* Joins member n<n> to n0..n<n-1>; returns partitions moved; asserts every
 * partition whose owner changed went to the new member. */
static uint32_t join_one(struct view *v, uint32_t n, uint32_t q, uint32_t v_count,
                         uint32_t *pl_changed)
{
    view_named(v, n, v_count);
    struct ring *a = build(v, q, 3);
    view_named(v, n + 1, v_count);
    struct ring *b = build(v, q, 3);
    char id[16];
    snprintf(id, sizeof id, "n%u", n);
    int joined = ring_member_index(b, id);
    ck_assert_int_ge(joined, 0);
    uint32_t moved = 0;
    for (uint32_t p = 0; p < q; p++) {
        const char *before = ring_member_id(a, ring_preflist(a, p)[0]);
        const char *after = ring_member_id(b, ring_preflist(b, p)[0]);
        if (strcmp(before, after) != 0) {
            ck_assert_msg(strcmp(after, id) == 0, "n=%u Q=%u partition %u moved %s -> %s", n, q, p,
                          before, after);
            moved++;
        }
    }
    ck_assert_uint_eq(moved, ring_owned_count(b, (uint32_t)joined));
    *pl_changed = preflists_changed(a, b, (uint32_t)joined);
    ring_free(a);
    ring_free(b);
    return moved;
}

START_TEST(join_moves_only_to_new_node)
{
    const uint32_t v_count = 64, q_small = 256, q_big = 4096;
    struct view *v = view_new();
    double sum_small = 0, sum_big = 0, sum_e_small = 0, sum_e_big = 0;
    printf("\nring join: node n<n> joins n0..n<n-1> (V=%u, N=3); owners moved\n", v_count);
    printf("%4s %8s | %6s %6s %6s | %6s %6s %6s | %10s %8s\n", "n", "1/(n+1)", "Q=256", "frac",
           "ratio", "Q=4096", "frac", "ratio", "preflists", "3/(n+1)");
    for (uint32_t n = 3; n <= 32; n++) {
        uint32_t pl_small, pl_big;
        uint32_t m_small = join_one(v, n, q_small, v_count, &pl_small);
        uint32_t m_big = join_one(v, n, q_big, v_count, &pl_big);
        double f = 1.0 / (n + 1);
        double fs = (double)m_small / q_small, fb = (double)m_big / q_big;
        printf("%4u %8.4f | %6u %6.4f %6.2f | %6u %6.4f %6.2f | %10.4f %8.4f\n", n, f, m_small, fs,
               fs / f, m_big, fb, fb / f, (double)pl_small / q_small, 3 * f < 1 ? 3 * f : 1);
        ck_assert_msg(moved_plausible(m_small, q_small, n, v_count), "n=%u Q=256 moved %u", n,
                      m_small);
        ck_assert_msg(moved_plausible(m_big, q_big, n, v_count), "n=%u Q=4096 moved %u", n, m_big);
        sum_small += m_small;
        sum_big += m_big;
        sum_e_small += f * q_small;
        sum_e_big += f * q_big;
    }
    printf("total moved / expected: Q=256 %.3f, Q=4096 %.3f\n", sum_small / sum_e_small,
           sum_big / sum_e_big);
    fflush(stdout);
    /* summed over 30 joins the spread is about 5% (Q=256) and 3% (Q=4096) */
    ck_assert(sum_small > 0.75 * sum_e_small && sum_small < 1.25 * sum_e_small);
    ck_assert(sum_big > 0.85 * sum_e_big && sum_big < 1.15 * sum_e_big);
    free(v);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("ring");
    TCase *tc = tcase_create("ring");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, xxh3_published_vectors);
    tcase_add_test(tc, format_constants);
    tcase_add_test(tc, epoch_is_hash_of_canonical_encoding);
    tcase_add_test(tc, same_view_same_ring);
    tcase_add_test(tc, different_views_different_epochs);
    tcase_add_test(tc, preflists_match_model);
    tcase_add_test(tc, short_ids_get_distinct_tokens);
    tcase_add_test(tc, members_sorted_and_found);
    tcase_add_test(tc, partition_of_key);
    tcase_add_test(tc, bad_inputs_rejected);
    tcase_add_test(tc, largest_ring);
    tcase_add_test(tc, alloc_failure_is_clean);
    tcase_add_test(tc, alloc_failure_leaks_nothing);
    tcase_add_test(tc, balance_report);
    tcase_add_test(tc, join_moves_only_to_new_node);
    suite_add_tcase(su, tc);
    return test_run(su);
}
