/*
 * ring.c: placement, from a member list to partition owners and preference
 * lists (see ring.h for the scheme and docs/ring.md for its figures).
 *
 * ring_new runs in named phases; each is a pure function of the arguments
 * and of the phases before it, so equal member lists give equal rings:
 *
 *   check_args      Q, N and every member in the caller's order, so that a
 *                   message can say "member 3".
 *   copy_members    sort the members bytewise by id (a duplicate shows up
 *                   as two neighbours) and copy the ids. From here on a
 *                   member is known by its rank in id order, never by its
 *                   place in the caller's array.
 *   place_tokens    V tokens per member at XXH3-64(id || u32le i), sorted
 *                   by (position, member rank, token index). Two equal
 *                   64-bit positions are astronomically rare, but if they
 *                   happen every node breaks the tie the same way. (The
 *                   vnode number is hashed as input, not used as the seed:
 *                   XXH3's 1..3-byte path computes f(input ^ (k + seed)),
 *                   so ids like "n10" and "n11" would get the same token
 *                   positions one vnode apart.)
 *   find_owners     per partition, binary search for the first token at or
 *                   after the partition's start; past the last token it
 *                   wraps to token 0.
 *   fill_preflists  per partition, walk clockwise from its owner token and
 *                   keep the first min(N, members) distinct members.
 *   compute_epoch   XXH3-64 of the canonical encoding of the view.
 *
 * Costs. With T tokens (the sum of vnodes) and Q partitions, building takes
 * O(T log T) for the sort, O(Q log T) for the owners and, per partition, a
 * walk of about n * (H(n) - H(n - N)) tokens (the coupon collector: under
 * 4 tokens for N = 3 of 8 members). Memory is 16 bytes per token, 4 * (N + 1)
 * per partition and the ids. ring_walk lists every member, so it may visit
 * up to T tokens (about n * H(n) on average); it is meant for the rare
 * fallback search of sloppy quorum, not for every request.
 *
 * Limitation: ownership is as balanced as the hashed token positions make
 * it. Q only fixes the granularity data moves in; the spread of owned
 * partitions between members shrinks like 1 / sqrt(V). docs/ring.md has the
 * measured figures.
 */
#include "ring/ring.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/limits.h"
#include "ring/ring_int.h"

/* A bit per member, for the walks. */
#define SEEN_WORDS (RKV_NODES_MAX / 64)

/* Bytes of the canonical encoding before the members, and per member
 * beside its id: u32le Q, u32le N, u32le count; u8 id length, u32le vnodes. */
#define EPOCH_HEAD_BYTES   12u
#define EPOCH_MEMBER_BYTES 5u

/* One member as the caller gave it, while the ring is being built. */
struct ring_input {
    const char *id;
    size_t id_len;
    uint32_t vnodes;
    size_t arg_idx; /* place in the caller's array, for messages */
};

uint64_t ring_token_pos(const char *id, size_t id_len, uint32_t vnode)
{
    uint8_t buf[RKV_NODE_ID_BYTES_MAX + 4];
    assert(id_len <= RKV_NODE_ID_BYTES_MAX);
    memcpy(buf, id, id_len);
    rkv_put_u32(buf + id_len, vnode);
    return XXH3_64bits_withSeed(buf, id_len + 4, RING_TOKEN_SEED);
}

uint64_t ring_hash_key(const void *key, size_t len)
{
    return XXH3_64bits_withSeed(key, len, RING_KEY_SEED);
}

uint64_t ring_partition_start(const struct ring *r, uint32_t partition)
{
    assert(partition < r->partitions);
    return r->part_bits == 0 ? 0 : (uint64_t)partition << (64 - r->part_bits);
}

/* ---- checking the arguments ---- */

static bool id_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

bool ring_id_ok(const char *id, size_t len)
{
    if (len == 0 || len > RKV_NODE_ID_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!id_byte_ok((unsigned char)id[i]))
            return false;
    return true;
}

static int check_member(const struct ring_member *m, size_t i, struct rkv_error *err)
{
    if (m->id == NULL)
        return rkv_error_set(err, RKV_ERR_INVAL, "ring: member %zu: id is NULL", i);
    size_t len = strnlen(m->id, RKV_NODE_ID_BYTES_MAX + 1);
    if (len == 0)
        return rkv_error_set(err, RKV_ERR_INVAL, "ring: member %zu: empty id", i);
    if (len > RKV_NODE_ID_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "ring: member %zu: id longer than %u bytes", i,
                             RKV_NODE_ID_BYTES_MAX);
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)m->id[j];
        if (!id_byte_ok(c))
            return rkv_error_set(err, RKV_ERR_INVAL,
                                 "ring: member %zu: id has bad byte 0x%02x at offset %zu "
                                 "(ids are [A-Za-z0-9_.-])",
                                 i, c, j);
    }
    if (m->vnodes < 1 || m->vnodes > RKV_VNODES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL,
                             "ring: member %zu (\"%s\"): vnodes %u not in 1..%u", i, m->id,
                             m->vnodes, RKV_VNODES_MAX);
    return RKV_OK;
}

static int check_args(const struct ring_member *members, size_t n, uint32_t partitions,
                      uint32_t replicas, struct rkv_error *err)
{
    if (partitions < 1 || partitions > RKV_PARTITIONS_MAX || (partitions & (partitions - 1)))
        return rkv_error_set(err, RKV_ERR_INVAL,
                             "ring: partitions %u is not a power of two in 1..%u", partitions,
                             RKV_PARTITIONS_MAX);
    if (replicas < 1 || replicas > RKV_REPLICAS_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "ring: replicas %u not in 1..%u", replicas,
                             RKV_REPLICAS_MAX);
    if (n == 0)
        return rkv_error_set(err, RKV_ERR_INVAL, "ring: no members");
    if (n > RKV_NODES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "ring: %zu members, at most %u allowed", n,
                             RKV_NODES_MAX);
    assert(members != NULL);
    for (size_t i = 0; i < n; i++) {
        int rc = check_member(&members[i], i, err);
        if (rc != RKV_OK)
            return rc;
    }
    return RKV_OK;
}

static int nomem(const struct ring *r, struct rkv_error *err)
{
    return rkv_error_set(err, RKV_ERR_NOMEM, "ring: out of memory building a ring of %u partitions",
                         r->partitions);
}

/* ---- members ---- */

static int input_cmp(const void *a, const void *b)
{
    const struct ring_input *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->arg_idx < y->arg_idx ? -1 : x->arg_idx > y->arg_idx;
}

/* Sorts a copy of the members by id, rejects duplicates, copies the ids. */
static int copy_members(struct ring *r, const struct ring_member *members, size_t n,
                        struct rkv_error *err)
{
    int rc = RKV_OK;
    size_t id_total = 0;
    struct ring_input *in = rkv_malloc(n * sizeof *in);
    if (in == NULL)
        return nomem(r, err);
    for (size_t i = 0; i < n; i++) {
        in[i] = (struct ring_input){
            .id = members[i].id,
            .id_len = strlen(members[i].id),
            .vnodes = members[i].vnodes,
            .arg_idx = i,
        };
        id_total += in[i].id_len + 1;
    }
    qsort(in, n, sizeof *in, input_cmp);
    for (size_t k = 1; k < n; k++) {
        if (strcmp(in[k].id, in[k - 1].id) == 0) {
            rc = rkv_error_set(err, RKV_ERR_INVAL,
                               "ring: member %zu: duplicate id \"%s\" (same as member %zu)",
                               in[k].arg_idx, in[k].id, in[k - 1].arg_idx);
            goto out;
        }
    }
    r->members = rkv_calloc(n, sizeof *r->members);
    r->id_bytes = rkv_malloc(id_total);
    if (r->members == NULL || r->id_bytes == NULL) {
        rc = nomem(r, err);
        goto out;
    }
    char *p = r->id_bytes;
    for (size_t k = 0; k < n; k++) {
        memcpy(p, in[k].id, in[k].id_len + 1);
        r->members[k] = (struct ring_node){
            .id = p,
            .id_len = (uint32_t)in[k].id_len,
            .vnodes = in[k].vnodes,
            .owned = 0,
        };
        p += in[k].id_len + 1;
        r->n_tokens += in[k].vnodes;
    }
    r->n_members = (uint32_t)n;
out:
    rkv_free(in);
    return rc;
}

/* ---- tokens and owners ---- */

static int token_cmp(const void *a, const void *b)
{
    const struct ring_token *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    if (x->member != y->member)
        return x->member < y->member ? -1 : 1;
    return x->vnode < y->vnode ? -1 : x->vnode > y->vnode;
}

static int place_tokens(struct ring *r, struct rkv_error *err)
{
    r->tokens = rkv_malloc((size_t)r->n_tokens * sizeof *r->tokens);
    if (r->tokens == NULL)
        return nomem(r, err);
    uint32_t t = 0;
    for (uint32_t m = 0; m < r->n_members; m++) {
        const struct ring_node *node = &r->members[m];
        for (uint32_t i = 0; i < node->vnodes; i++)
            r->tokens[t++] = (struct ring_token){
                .pos = ring_token_pos(node->id, node->id_len, i),
                .member = m,
                .vnode = i,
            };
    }
    assert(t == r->n_tokens);
    qsort(r->tokens, r->n_tokens, sizeof *r->tokens, token_cmp);
    return RKV_OK;
}

/* Index of the first token at or after pos, or 0 if there is none. */
static uint32_t first_token_at(const struct ring *r, uint64_t pos)
{
    uint32_t lo = 0, hi = r->n_tokens;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->tokens[mid].pos < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->n_tokens ? 0 : lo;
}

static int find_owners(struct ring *r, struct rkv_error *err)
{
    r->owner_token = rkv_malloc((size_t)r->partitions * sizeof *r->owner_token);
    if (r->owner_token == NULL)
        return nomem(r, err);
    for (uint32_t p = 0; p < r->partitions; p++)
        r->owner_token[p] = first_token_at(r, ring_partition_start(r, p));
    return RKV_OK;
}

/* ---- walks and preference lists ---- */

/*
 * Walks clockwise from token tok and writes the first distinct members it
 * meets to out, at most max of them; marks each in seen (which the caller
 * clears). Returns how many it wrote: min(max, members).
 */
static uint32_t walk(const struct ring *r, uint32_t tok, uint32_t *out, uint32_t max,
                     uint64_t *seen)
{
    uint32_t want = max < r->n_members ? max : r->n_members;
    uint32_t got = 0;
    for (uint32_t step = 0; step < r->n_tokens && got < want; step++) {
        uint32_t m = r->tokens[tok].member;
        uint64_t bit = 1ull << (m % 64);
        if ((seen[m / 64] & bit) == 0) {
            seen[m / 64] |= bit;
            out[got++] = m;
        }
        if (++tok == r->n_tokens)
            tok = 0;
    }
    return got;
}

static int fill_preflists(struct ring *r, struct rkv_error *err)
{
    r->preflists = rkv_malloc((size_t)r->partitions * r->n_rep * sizeof *r->preflists);
    if (r->preflists == NULL)
        return nomem(r, err);
    uint64_t seen[SEEN_WORDS] = {0};
    for (uint32_t p = 0; p < r->partitions; p++) {
        uint32_t *pl = &r->preflists[(size_t)p * r->n_rep];
        uint32_t got = walk(r, r->owner_token[p], pl, r->n_rep, seen);
        assert(got == r->n_rep);
        for (uint32_t k = 0; k < got; k++) /* the walk marked only these */
            seen[pl[k] / 64] &= ~(1ull << (pl[k] % 64));
        r->members[pl[0]].owned++;
    }
    return RKV_OK;
}

/* ---- epoch ---- */

static int compute_epoch(struct ring *r, struct rkv_error *err)
{
    size_t len = EPOCH_HEAD_BYTES;
    for (uint32_t m = 0; m < r->n_members; m++)
        len += EPOCH_MEMBER_BYTES + r->members[m].id_len;
    uint8_t *buf = rkv_malloc(len);
    if (buf == NULL)
        return nomem(r, err);
    rkv_put_u32(buf, r->partitions);
    rkv_put_u32(buf + 4, r->replicas_cfg);
    rkv_put_u32(buf + 8, r->n_members);
    uint8_t *p = buf + EPOCH_HEAD_BYTES;
    for (uint32_t m = 0; m < r->n_members; m++) {
        const struct ring_node *node = &r->members[m];
        *p++ = (uint8_t)node->id_len;
        memcpy(p, node->id, node->id_len);
        p += node->id_len;
        rkv_put_u32(p, node->vnodes);
        p += 4;
    }
    assert(p == buf + len);
    r->epoch = XXH3_64bits_withSeed(buf, len, RING_EPOCH_SEED);
    rkv_free(buf);
    return RKV_OK;
}

/* ---- construction ---- */

static uint32_t log2_exact(uint32_t pow2)
{
    uint32_t bits = 0;
    while ((1u << bits) < pow2)
        bits++;
    return bits;
}

int ring_new(const struct ring_member *members, size_t n, uint32_t partitions, uint32_t replicas,
             struct ring **out, struct rkv_error *err)
{
    assert(out != NULL);
    *out = NULL;
    int rc = check_args(members, n, partitions, replicas, err);
    if (rc != RKV_OK)
        return rc;
    struct ring *r = rkv_calloc(1, sizeof *r);
    if (r == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "ring: out of memory");
    r->partitions = partitions;
    r->part_bits = log2_exact(partitions);
    r->replicas_cfg = replicas;
    r->n_rep = replicas < n ? replicas : (uint32_t)n;
    if ((rc = copy_members(r, members, n, err)) != RKV_OK ||
        (rc = place_tokens(r, err)) != RKV_OK || (rc = find_owners(r, err)) != RKV_OK ||
        (rc = fill_preflists(r, err)) != RKV_OK || (rc = compute_epoch(r, err)) != RKV_OK)
        goto fail;
    *out = r;
    return RKV_OK;
fail:
    ring_free(r);
    return rc;
}

void ring_free(struct ring *r)
{
    if (r == NULL)
        return;
    rkv_free(r->preflists);
    rkv_free(r->owner_token);
    rkv_free(r->tokens);
    rkv_free(r->id_bytes);
    rkv_free(r->members);
    rkv_free(r);
}

/* ---- queries ---- */

uint32_t ring_partition(const struct ring *r, uint64_t key_hash)
{
    return r->part_bits == 0 ? 0 : (uint32_t)(key_hash >> (64 - r->part_bits));
}

uint32_t ring_partitions(const struct ring *r)
{
    return r->partitions;
}

uint32_t ring_replicas(const struct ring *r)
{
    return r->n_rep;
}

uint64_t ring_epoch(const struct ring *r)
{
    return r->epoch;
}

uint32_t ring_member_count(const struct ring *r)
{
    return r->n_members;
}

const char *ring_member_id(const struct ring *r, uint32_t idx)
{
    assert(idx < r->n_members);
    return r->members[idx].id;
}

uint32_t ring_member_vnodes(const struct ring *r, uint32_t idx)
{
    assert(idx < r->n_members);
    return r->members[idx].vnodes;
}

int ring_member_index(const struct ring *r, const char *id)
{
    if (id == NULL)
        return -1;
    uint32_t lo = 0, hi = r->n_members;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->members[mid].id, id);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const uint32_t *ring_preflist(const struct ring *r, uint32_t partition)
{
    assert(partition < r->partitions);
    return &r->preflists[(size_t)partition * r->n_rep];
}

bool ring_in_preflist(const struct ring *r, uint32_t partition, uint32_t idx)
{
    const uint32_t *pl = ring_preflist(r, partition);
    for (uint32_t k = 0; k < r->n_rep; k++)
        if (pl[k] == idx)
            return true;
    return false;
}

uint32_t ring_walk(const struct ring *r, uint32_t partition, uint32_t *out, uint32_t max)
{
    assert(partition < r->partitions);
    assert(out != NULL || max == 0);
    uint64_t seen[SEEN_WORDS] = {0};
    return walk(r, r->owner_token[partition], out, max, seen);
}

uint32_t ring_owned_count(const struct ring *r, uint32_t idx)
{
    assert(idx < r->n_members);
    return r->members[idx].owned;
}

/* ---- invariants ---- */

static bool members_ok(const struct ring *r)
{
    if (r->n_members < 1 || r->n_members > RKV_NODES_MAX)
        return false;
    uint64_t tokens = 0;
    for (uint32_t m = 0; m < r->n_members; m++) {
        const struct ring_node *node = &r->members[m];
        const struct ring_member as_arg = {.id = node->id, .vnodes = node->vnodes};
        if (check_member(&as_arg, m, NULL) != RKV_OK || strlen(node->id) != node->id_len)
            return false;
        if (m > 0 && strcmp(r->members[m - 1].id, node->id) >= 0)
            return false;
        tokens += node->vnodes;
    }
    return tokens == r->n_tokens;
}

/* Tokens strictly sorted, each where its hash says; with the count checked
 * by members_ok, that makes every (member, vnode) appear exactly once. */
static bool tokens_ok(const struct ring *r)
{
    for (uint32_t t = 0; t < r->n_tokens; t++) {
        const struct ring_token *tok = &r->tokens[t];
        if (tok->member >= r->n_members || tok->vnode >= r->members[tok->member].vnodes)
            return false;
        const struct ring_node *node = &r->members[tok->member];
        if (tok->pos != ring_token_pos(node->id, node->id_len, tok->vnode))
            return false;
        if (t > 0 && token_cmp(&r->tokens[t - 1], tok) >= 0)
            return false;
    }
    return true;
}

static bool owner_token_ok(const struct ring *r, uint32_t p)
{
    uint32_t t = r->owner_token[p];
    uint64_t start = ring_partition_start(r, p);
    if (t >= r->n_tokens)
        return false;
    if (r->tokens[r->n_tokens - 1].pos < start) /* nothing at or after: wrap */
        return t == 0;
    return r->tokens[t].pos >= start && (t == 0 || r->tokens[t - 1].pos < start);
}

/* Every preference list is the clockwise walk from its owner token: n_rep
 * distinct members, the owner first; owned counts tally the owners. */
static bool preflists_ok(const struct ring *r)
{
    uint32_t owned[RKV_NODES_MAX] = {0};
    uint32_t expect[RKV_REPLICAS_MAX];
    for (uint32_t p = 0; p < r->partitions; p++) {
        if (!owner_token_ok(r, p))
            return false;
        uint64_t seen[SEEN_WORDS] = {0};
        if (walk(r, r->owner_token[p], expect, r->n_rep, seen) != r->n_rep)
            return false;
        const uint32_t *pl = ring_preflist(r, p);
        if (memcmp(pl, expect, r->n_rep * sizeof *pl) != 0)
            return false;
        if (pl[0] != r->tokens[r->owner_token[p]].member)
            return false;
        owned[pl[0]]++;
    }
    for (uint32_t m = 0; m < r->n_members; m++)
        if (owned[m] != r->members[m].owned)
            return false;
    return true;
}

bool ring_invariants_ok(const struct ring *r)
{
    if (r == NULL || r->partitions < 1 || r->partitions > RKV_PARTITIONS_MAX ||
        r->partitions != 1u << r->part_bits)
        return false;
    if (r->replicas_cfg < 1 || r->replicas_cfg > RKV_REPLICAS_MAX)
        return false;
    if (!members_ok(r) || !tokens_ok(r))
        return false;
    uint32_t n_rep = r->replicas_cfg < r->n_members ? r->replicas_cfg : r->n_members;
    if (r->n_rep != n_rep)
        return false;
    return preflists_ok(r);
}
