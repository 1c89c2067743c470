/*
 * ring_int.h: the layout of struct ring, shared by ring.c and its tests.
 *
 * A ring is five immutable arrays built once by ring_new:
 *
 *   members      n_members   struct ring_node, sorted bytewise by id; a
 *                            member's index everywhere is its rank here
 *   id_bytes     every id, NUL-terminated, back to back (members[i].id
 *                points into it)
 *   tokens       n_tokens    struct ring_token, one per (member, vnode),
 *                            sorted by (pos, member, vnode)
 *   owner_token  partitions  index into tokens of the first token at or
 *                            after the partition's start, wrapping to 0
 *   preflists    partitions * n_rep member indices; row p is the
 *                            preference list of partition p, owner first
 *
 * Nothing here is ever written after ring_new returns, which is what makes
 * a ring safe to read from many threads.
 */
#ifndef RKV_RING_INT_H
#define RKV_RING_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"

struct ring_node {
    const char *id;  /* NUL-terminated, inside ring.id_bytes */
    uint32_t id_len; /* 1..RKV_NODE_ID_BYTES_MAX */
    uint32_t vnodes; /* 1..RKV_VNODES_MAX */
    uint32_t owned;  /* partitions whose preference list it heads */
};

/* 16 bytes, no padding: two rings are equal iff their token arrays are
 * equal byte for byte. */
struct ring_token {
    uint64_t pos;    /* ring_token_pos(id of member, vnode) */
    uint32_t member; /* index into ring.members */
    uint32_t vnode;  /* 0..vnodes-1 */
};

struct ring {
    uint32_t n_members;
    uint32_t partitions;   /* Q, a power of two */
    uint32_t part_bits;    /* log2 Q: a partition is the top part_bits bits */
    uint32_t replicas_cfg; /* N as given to ring_new (part of the epoch) */
    uint32_t n_rep;        /* min(N, n_members): every preference list's length */
    uint32_t n_tokens;     /* sum of vnodes, at most RKV_NODES_MAX * RKV_VNODES_MAX */
    uint64_t epoch;
    struct ring_node *members;
    char *id_bytes;
    struct ring_token *tokens;
    uint32_t *owner_token;
    uint32_t *preflists;
};

/* Position of token vnode of the member with this id (id_len at most
 * RKV_NODE_ID_BYTES_MAX): XXH3-64, seed RING_TOKEN_SEED, of the id bytes
 * followed by vnode as u32le. Part of the on-disk and wire format. */
uint64_t ring_token_pos(const char *id, size_t id_len, uint32_t vnode);

/* First position of partition p: p << (64 - log2 Q) (0 when Q is 1). */
uint64_t ring_partition_start(const struct ring *r, uint32_t partition);

#endif
