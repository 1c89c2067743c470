/*
 * gossip_seed.h: what fuzz_gossip.c and make_corpus.c must agree on: the
 * layout of fuzz_gossip's input and the node it feeds (cluster name, self,
 * seeds, options), so that the seeds make_corpus writes are messages that
 * node would really receive.
 *
 * Input of fuzz_gossip:
 *
 *   byte 0   flags (FG_*): the authenticated sender (bits 0-1), the table
 *            before the first frame (bits 2-3), self's status, whether the
 *            peer's answers come back, message_bytes_max, fd_window
 *   frames   each: a control byte (FG_CTL_*: clock advance, tick first,
 *            deliver twice), a 16-bit big-endian length, that many bytes
 *            (fewer if the input ends first: a length of 0xffff is "the
 *            rest"). Fewer than FG_FRAME_HEADER bytes left end the input.
 */
#ifndef RKV_FUZZ_GOSSIP_SEED_H
#define RKV_FUZZ_GOSSIP_SEED_H

#include <stdint.h>
#include <string.h>

#include "gossip/gossip.h"

#define FG_CLUSTER          "fuzz-ring"
#define FG_SELF_ID          "n0"
#define FG_PEER_ID          "peer" /* the second instance, fed the outbox */
#define FG_SELF_INCARNATION 1000u
#define FG_PEER_INCARNATION 2000u
#define FG_RNG_SEED         0x5eedull
#define FG_T0               1700000000000ull

/* byte 0 */
#define FG_SENDER_MASK 0x03u /* 0 unauthenticated (gossip_on_message), else fg_senders[] */
/* the table before the frames: 0 none, 1 three members, 2 members joining,
 * leaving and removed and a rumour of self, 3 (FG_PREFILL_FULL) one short of
 * RKV_NODES_MAX, but only with FG_SMALL_WINDOW and without FG_ANSWERS_BACK
 * (else none): a run with a full table is 20-50 times slower, so it is kept
 * to a sixteenth of the flag values */
#define FG_PREFILL_SHIFT 2
#define FG_PREFILL_MASK  0x0cu
#define FG_PREFILL_FULL  3u
#define FG_SELF_UP       0x10u /* self starts UP (else JOINING) */
#define FG_ANSWERS_BACK  0x20u /* the peer's answers to our outbox come back to us */
#define FG_BIG_MESSAGES  0x40u /* message_bytes_max = default (else the minimum) */
#define FG_SMALL_WINDOW  0x80u /* fd_window = 2 (else the default) */

/* a frame's control byte */
#define FG_CTL_ADVANCE_MASK 0x0fu /* index into fg_advance_ms */
#define FG_CTL_TICK         0x10u /* gossip_tick before the message */
#define FG_CTL_TWICE        0x20u /* deliver the message a second time */
#define FG_FRAME_HEADER     3u

static const char *const fg_senders[4] = {NULL, "n1", "n2", "seed-a"};
static const char *const fg_seeds[] = {"n0", "n1", "n2", "seed-a"};
static const uint32_t fg_advance_ms[16] = {
    0, 1, 10, 100, 500, 999, 1000, 1000, 1001, 1500, 2000, 5000, 10000, 60000, 3600000, 7200000,
};

/* The options of the fuzzed node (flags: byte 0) or, if peer, of the
 * instance its outbox is fed to. */
static inline void fg_options(struct gossip_options *o, uint8_t flags, int peer)
{
    memset(o, 0, sizeof *o);
    o->cluster = FG_CLUSTER;
    strcpy(o->self.id, peer ? FG_PEER_ID : FG_SELF_ID);
    strcpy(o->self.host, peer ? "10.0.0.9" : "10.0.0.1");
    o->self.client_port = 7000;
    o->self.cluster_port = 7001;
    o->self.vnodes = 16;
    o->self.incarnation = peer ? FG_PEER_INCARNATION : FG_SELF_INCARNATION;
    o->self.status = peer || (flags & FG_SELF_UP) ? GOSSIP_UP : GOSSIP_JOINING;
    o->seeds = fg_seeds;
    o->n_seeds = peer ? 1 : sizeof fg_seeds / sizeof fg_seeds[0];
    o->rng_seed = FG_RNG_SEED + (uint64_t)peer;
    o->fd_window = flags & FG_SMALL_WINDOW ? 2 : 0;
    /* the peer takes anything the node may send */
    o->message_bytes_max = peer                      ? RKV_MESSAGE_BYTES_MAX
                           : flags & FG_BIG_MESSAGES ? GOSSIP_MESSAGE_BYTES_DEFAULT
                                                     : GOSSIP_MESSAGE_BYTES_MIN;
}

#endif
