/*
 * ring.h: placement. A pure function of the member list: every node with
 * the same members (ids and vnode counts) computes the same ring, byte for
 * byte, whatever order it learned them in, and names it by the same epoch.
 * No I/O, no clock, no randomness.
 *
 * Positions (part of the on-disk and wire format; they never change):
 *   key position    XXH3-64 of the key bytes, seed RING_KEY_SEED (0).
 *   token i of m    XXH3-64 of m's id bytes followed by u32le i, seed
 *                   RING_TOKEN_SEED, for i < vnodes(m). (Not "seed i": for
 *                   ids of 1..3 bytes XXH3 folds the seed into the input
 *                   linearly, so "n10" and "n11" would share most token
 *                   positions; see docs/ring.md.)
 *   partition of k  position(k) >> (64 - log2 Q); partition p covers the
 *                   positions [p << (64 - log2 Q), (p + 1) << ...).
 * The owner of partition p is the member of the first token at or after
 * the start of p (clockwise, wrapping); its preference list is the first
 * min(N, members) distinct members met walking clockwise from that token.
 * This is Dynamo's strategy 3: Q equal partitions, placed by tokens, so
 * data moves in whole partitions when members change, and a new member
 * only takes partitions (as owner) from others.
 *
 * The epoch is XXH3-64 (seed RING_EPOCH_SEED) of the canonical encoding:
 * u32le Q, u32le N, u32le member count, then per member in id order:
 * u8 id length, id bytes, u32le vnodes.
 *
 * Ownership: ring_new copies the ids; a struct ring is immutable after
 * ring_new and safe to share between threads for reading.
 */
#ifndef RKV_RING_H
#define RKV_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define RING_KEY_SEED 0ull
#define RING_TOKEN_SEED 0x746f6b6eull /* "tokn" */
#define RING_EPOCH_SEED 0x72696e67ull /* "ring" */

struct ring;

struct ring_member {
    const char *id;  /* 1..RKV_NODE_ID_BYTES_MAX bytes of [A-Za-z0-9_.-] */
    uint32_t vnodes; /* 1..RKV_VNODES_MAX */
};

/*
 * Builds the ring of n members (any order). partitions (Q) is a power of
 * two in 1..RKV_PARTITIONS_MAX; replicas (N) is 1..RKV_REPLICAS_MAX and is
 * capped at n for the preference lists. Errors: RKV_ERR_INVAL (no members,
 * bad id, duplicate id, bad Q/N/vnodes; err says which), RKV_ERR_NOMEM.
 */
int ring_new(const struct ring_member *members, size_t n, uint32_t partitions,
             uint32_t replicas, struct ring **out, struct rkv_error *err);
void ring_free(struct ring *r);

/* A member id: 1..RKV_NODE_ID_BYTES_MAX bytes of [A-Za-z0-9_.-]. */
bool ring_id_ok(const char *id, size_t len);

/* Position of a key on the ring. */
uint64_t ring_hash_key(const void *key, size_t len);
/* Partition of a key position. */
uint32_t ring_partition(const struct ring *r, uint64_t key_hash);

uint32_t ring_partitions(const struct ring *r);
/* Length of every preference list: min(N, members). */
uint32_t ring_replicas(const struct ring *r);
uint64_t ring_epoch(const struct ring *r);

/* Members, sorted by id; indices below are into this order. */
uint32_t ring_member_count(const struct ring *r);
const char *ring_member_id(const struct ring *r, uint32_t idx);
uint32_t ring_member_vnodes(const struct ring *r, uint32_t idx);
/* Index of id, or -1. */
int ring_member_index(const struct ring *r, const char *id);

/* The preference list of partition p: ring_replicas(r) member indices, the
 * owner first. The array belongs to r. */
const uint32_t *ring_preflist(const struct ring *r, uint32_t partition);
/* True if member idx is in the preference list of partition p. */
bool ring_in_preflist(const struct ring *r, uint32_t partition, uint32_t idx);
/* All members in the clockwise order of partition p (preference list first,
 * then the fallbacks sloppy quorum uses): writes up to max indices to out
 * and returns how many. */
uint32_t ring_walk(const struct ring *r, uint32_t partition, uint32_t *out, uint32_t max);

/* Partitions owned (as first of the preference list) by member idx. */
uint32_t ring_owned_count(const struct ring *r, uint32_t idx);

bool ring_invariants_ok(const struct ring *r);

#endif
