/*
 * gossip.h: membership by gossip, sans-I/O. ringkvd builds its ring from
 * the members gossip says are up, and its failure detector's suspicion
 * steers sloppy quorum (node/membership.c).
 *
 * Each node holds a table of versioned node states (struct gossip_node),
 * one per member it has heard of, itself included. It never reads a clock,
 * draws system randomness or touches a socket: the node calls gossip_tick
 * every interval_ms with the time, hands every gossip frame it receives to
 * gossip_on_message, and sends what gossip_outbox then holds, each entry to
 * the member it names (a seed's address comes from cluster.toml, any other
 * member's from its state here). Randomness is a PRNG seeded from the
 * options, so a run is a function of its inputs.
 *
 * ## States and the merge rule
 *   A state is owned by its node. incarnation is new (greater) on every
 *   restart; version is bumped by the owner on every change of its own
 *   state (status, address) and starts at 1 in each incarnation; heartbeat
 *   is bumped by the owner on every tick and starts at 0. Of two states of
 *   one id the newer is the one with the greater (incarnation, version,
 *   heartbeat), compared in that order (status breaks a full tie, the
 *   higher wins, so that forged equal keys still converge). Only a newer
 *   state replaces a held one; nothing older is ever applied or sent.
 *
 * ## Refutation
 *   A node that hears a state of itself newer than its own (someone says
 *   it is leaving, or a higher version it never made, or a higher
 *   incarnation) does not apply it: it raises its own incarnation to at
 *   least the rumour's and its version above it, so its true state wins
 *   everywhere. The one exception: status REMOVED in the node's current
 *   incarnation is accepted, because remove is an explicit operator command
 *   about a member (gossip_remove, run on any node); the removed node stops
 *   gossiping (gossip_self_removed says so, and the node should stop). A
 *   node restarted after a remove comes back with a new incarnation, which
 *   wins over the REMOVED state: refusing to restart a removed node is
 *   node/'s job (it must remember the remove), not this module's.
 *
 * ## Exchange (push-pull, as in Scuttlebutt and Cassandra)
 *   Each tick a node sends a SYN with its digest (id, incarnation, version,
 *   heartbeat of every member) to one random live peer, to a random seed
 *   every seed_every rounds or when it knows no live peer, and, with
 *   probability suspects/(live+1), to one random suspect (so a healed peer
 *   is heard again). The receiver answers with an ACK: the full states the
 *   sender lacks or holds older, and the ids it lacks or holds older
 *   itself; the sender answers those with an ACK2 of states. A message
 *   that would exceed message_bytes_max carries the states that fit; the
 *   rest go in later rounds.
 *
 * ## Failure detection (phi accrual, Hayashibara et al. 2004)
 *   Per peer, the times at which a newer heartbeat (or incarnation) of it
 *   is learned are arrivals (a state of version 0, which its member never
 *   made but a peer learned from its cluster file and passed on, is not
 *   one); the last fd_window inter-arrival times are
 *   kept. phi(t) = -log10(P(the next arrival comes later than t)) under a
 *   normal distribution of the window's mean and standard deviation (at
 *   least fd_min_std_dev_ms), with the logistic approximation of the
 *   normal tail that Akka uses. A peer is alive while phi < phi_threshold.
 *   The first arrival seeds the window with two samples around
 *   fd_first_interval_ms. At the defaults (1 s interval, threshold 8,
 *   min std-dev 500 ms) a peer whose heartbeats arrive every second is
 *   suspected about 1 + 5.2 * 0.5 = 3.6 s after its last heartbeat was
 *   learned; in test_gossip's 8-node simulation, 4.8 s after the node
 *   stopped (its last heartbeats reach others a round or so late). Newer
 *   heartbeats learned at one instant count as one arrival. Suspicion is
 *   local and never changes the member table.
 *
 * ## Wire format (one msgpack array per message)
 *   [version, type, cluster, from, ...]
 *     version  GOSSIP_WIRE_VERSION (1); anything else is refused
 *     type     enum gossip_msg_type
 *     cluster  str, the cluster name; a different one is refused, so two
 *              rings never merge
 *     from     str, the sender's id
 *   SYN   [.., digest]         digest: [[id, incarnation, version, heartbeat], ...]
 *   ACK   [.., states, want]   want: [id, ...], the states the sender should send
 *   ACK2  [.., states]
 *   state: [id, host, client_port, cluster_port, vnodes, incarnation, version,
 *           heartbeat, status, ring_epoch, handoff]
 *   Counts are at most RKV_NODES_MAX, ids 1..RKV_NODE_ID_BYTES_MAX bytes of
 *   [A-Za-z0-9_.-], hosts 1..GOSSIP_HOST_BYTES_MAX printable ASCII bytes,
 *   ports 1..65535, vnodes 1..RKV_VNODES_MAX, counters below
 *   RKV_COUNTER_MAX (a forged UINT64_MAX could never be refuted), status
 *   1..4, handoff at most RKV_PARTITIONS_MAX, a frame at most
 *   message_bytes_max bytes, nothing after the array.
 *   A whole message is validated before any of it is applied.
 *
 * ## One ring change at a time
 *   Each state also carries its member's progress through ring changes:
 *   the epoch of the ring it serves and the partitions it still has to hand
 *   over (gossip_set_progress; a change bumps the version). From them
 *   gossip_change_pending tells whether, as far as this node has heard, a
 *   change is still under way somewhere: a member alive and joining or
 *   leaving, one that serves another ring, or one with handoff left. The
 *   node lets a join or a leave begin only when none is, so that no
 *   preference list ever holds two owners still waiting for their data (a
 *   read at R could then be answered by those two alone). What a node has
 *   heard lags by a few rounds, so two changes begun on two nodes within
 *   that time can still overlap: a guard, not a lock.
 *
 * Ownership: gossip_new copies everything in the options. Pointers that
 * gossip_member/gossip_find/gossip_outbox return belong to g and stay valid
 * until the next call that is not a query. One thread at a time.
 *
 * Linking: the failure detector uses libm (exp, log1p, sqrt).
 */
#ifndef RKV_GOSSIP_H
#define RKV_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"

#define GOSSIP_WIRE_VERSION 2u
#define GOSSIP_CLUSTER_BYTES_MAX 64u  /* the cluster name */
#define GOSSIP_HOST_BYTES_MAX 255u    /* a DNS name or an address */
#define GOSSIP_FD_WINDOW_MAX 1000u    /* inter-arrival samples per peer */
#define GOSSIP_MESSAGE_BYTES_MIN (128u * 1024) /* a full digest fits */
#define GOSSIP_MESSAGE_BYTES_DEFAULT (1024u * 1024)
/* The options' defaults (a zero field takes these). */
#define GOSSIP_INTERVAL_MS_DEFAULT 1000u
#define GOSSIP_SEED_EVERY_DEFAULT 10u
#define GOSSIP_FD_WINDOW_DEFAULT 100u
#define GOSSIP_PHI_THRESHOLD_DEFAULT 8.0
#define GOSSIP_FD_MIN_STD_DEV_MS_DEFAULT 500u

enum gossip_status {
    GOSSIP_JOINING = 1,
    GOSSIP_UP = 2,
    GOSSIP_LEAVING = 3,
    GOSSIP_REMOVED = 4,
};

enum gossip_msg_type {
    GOSSIP_SYN = 1,
    GOSSIP_ACK = 2,
    GOSSIP_ACK2 = 3,
};

/* One member's state, as gossiped. */
struct gossip_node {
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    char host[GOSSIP_HOST_BYTES_MAX + 1];
    uint16_t client_port;
    uint16_t cluster_port;
    uint32_t vnodes;
    uint64_t incarnation;
    uint64_t version;
    uint64_t heartbeat;
    enum gossip_status status;
    uint64_t ring_epoch;         /* the ring its member serves (0: none yet) */
    uint32_t handoff;            /* partitions it has still to hand over */
};

struct gossip_options {
    const char *cluster;         /* 1..GOSSIP_CLUSTER_BYTES_MAX bytes */
    /* This node: id, host, ports, vnodes, status (JOINING, UP, or LEAVING
     * for a leave resumed after a restart), and an incarnation in
     * 1..RKV_COUNTER_MAX-1 greater than any it had before (the start time
     * in ms does); version and heartbeat are ignored. */
    struct gossip_node self;
    const char *const *seeds;    /* ids of seed members (self is skipped) */
    size_t n_seeds;              /* at most RKV_NODES_MAX */
    uint64_t rng_seed;           /* the PRNG's seed: same seed, same choices */
    uint32_t interval_ms;        /* tick period (for gossip_next_deadline) */
    uint32_t seed_every;         /* a seed every this many rounds */
    uint32_t fd_window;          /* 2..GOSSIP_FD_WINDOW_MAX samples */
    double phi_threshold;        /* > 0 */
    uint32_t fd_min_std_dev_ms;
    uint32_t fd_first_interval_ms; /* default: interval_ms */
    uint32_t message_bytes_max;  /* GOSSIP_MESSAGE_BYTES_MIN..RKV_MESSAGE_BYTES_MAX */
};

/* A message to send: msg to member `to` (a NUL-terminated id). */
struct gossip_out {
    char to[RKV_NODE_ID_BYTES_MAX + 1];
    struct rkv_buf msg;
};

struct gossip_stats {
    uint64_t rounds;
    uint64_t sent, received, refused;  /* messages */
    uint64_t states_applied;           /* newer states taken */
    uint64_t states_stale;             /* states received that were not newer */
    uint64_t refutations;              /* own version raised over a rumour */
    uint64_t members_dropped;          /* new ids ignored at RKV_NODES_MAX */
    uint64_t truncated;                /* messages cut at message_bytes_max */
};

struct gossip;

/*
 * Makes the membership state of one node: its table holds only itself.
 * Errors: RKV_ERR_INVAL (a bad option; err says which), RKV_ERR_NOMEM.
 */
int gossip_new(const struct gossip_options *o, struct gossip **out, struct rkv_error *err);
void gossip_free(struct gossip *g); /* NULL is a no-op */

/*
 * A round: bumps this node's heartbeat and queues SYNs (see the exchange
 * above). Does nothing once this node is removed. now_ms must not go back.
 */
void gossip_tick(struct gossip *g, uint64_t now_ms);
/* When gossip_tick is next due (the last tick + interval_ms; 0 before the
 * first). */
uint64_t gossip_next_deadline(const struct gossip *g);

/*
 * A frame received from the network. Queues the answer, if any. Errors
 * (nothing applied, the reason in gossip_errmsg): RKV_ERR_PROTO (malformed,
 * another version or cluster, a limit exceeded), RKV_ERR_TOOBIG (longer
 * than message_bytes_max); RKV_ERR_NOMEM (states applied up to the failure;
 * applying the rest later is harmless). The sender named in the message is
 * not authenticated here: the node should check it against the transport.
 */
int gossip_on_message(struct gossip *g, uint64_t now_ms, const void *data, size_t len);
/* The same for a frame whose sender the transport has authenticated as
 * member `sender`: a message that names another sender is refused
 * (RKV_ERR_PROTO), so one member cannot speak for another. */
int gossip_on_message_from(struct gossip *g, uint64_t now_ms, const char *sender,
                           const void *data, size_t len);

/* This node's status changes (JOINING -> UP, UP -> LEAVING ...): bumps its
 * version. RKV_ERR_INVAL for REMOVED (use gossip_remove on another node)
 * or an unknown status. */
int gossip_set_status(struct gossip *g, enum gossip_status status);
/* This node's progress through ring changes: the epoch of the ring it
 * serves and the partitions it has still to hand over (at most
 * RKV_PARTITIONS_MAX; more is RKV_ERR_INVAL). Bumps its version if either
 * changed, so that it spreads; does nothing once this node is removed. */
int gossip_set_progress(struct gossip *g, uint64_t ring_epoch, uint32_t handoff);
/*
 * Whether a ring change is still under way, as far as this node has heard
 * at now_ms: a live member other than this one is JOINING or LEAVING, or
 * is UP and serves a ring other than this node's, or one not known here
 * yet (ring_epoch 0: a state learned before it said, as cluster.toml's),
 * or has handoff left; or this node has handoff left. A member that is down (suspected) or
 * removed holds nothing back: its state is old news, and waiting for it
 * could wait for ever. If this node is JOINING itself, joining members
 * whose ids sort after its own do not count (of several nodes joining at
 * once, the least id goes first). If one is, writes the first reason
 * found into why (size bytes, NUL-terminated; may be NULL).
 */
bool gossip_change_pending(const struct gossip *g, uint64_t now_ms, char *why, size_t size);
/*
 * Marks member id REMOVED (an operator's remove, run on any node): its
 * version goes up by one, so the remove spreads and wins over what others
 * hold. RKV_ERR_NOTFOUND if unknown, RKV_ERR_INVAL for self.
 */
int gossip_remove(struct gossip *g, const char *id);
/* The same, with the REMOVED state's incarnation raised to incarnation if
 * that is greater (version 1 then). The node passes its wall clock: the
 * remove then wins over every state the member made before it (including
 * ones this node has not heard yet), and a member restarted afterwards
 * (a new incarnation, from its own clock) wins over the remove. */
int gossip_remove_at(struct gossip *g, const char *id, uint64_t incarnation);

/*
 * A state this node knew before it started (its saved member table, or
 * the members of cluster.toml with incarnation 1 and version 0, which any
 * state a member gossips wins over): taken if newer than the one held,
 * never for self, and not a heartbeat (it does not feed the failure
 * detector). RKV_ERR_INVAL for bad fields, RKV_ERR_NOMEM.
 */
int gossip_learn(struct gossip *g, const struct gossip_node *st);

/* Members (removed ones included, as tombstones), sorted by id, self too. */
size_t gossip_member_count(const struct gossip *g);
const struct gossip_node *gossip_member(const struct gossip *g, size_t idx);
/* The state of id, or NULL. */
const struct gossip_node *gossip_find(const struct gossip *g, const char *id);
const struct gossip_node *gossip_self(const struct gossip *g);
bool gossip_self_removed(const struct gossip *g);

/* Suspicion of id at now_ms: 0 for self, INFINITY for an unknown or
 * removed member, else the phi of its heartbeats. */
double gossip_phi(const struct gossip *g, const char *id, uint64_t now_ms);
/* phi below the threshold (self is alive unless removed; unknown or
 * removed members are not). */
bool gossip_alive(const struct gossip *g, const char *id, uint64_t now_ms);

/* The pending messages, in order; valid until gossip_outbox_clear or the
 * next input call. */
struct gossip_out *gossip_outbox(struct gossip *g, size_t *n);
void gossip_outbox_clear(struct gossip *g);

/* The reason of the last error of gossip_on_message ("" if none). */
const char *gossip_errmsg(const struct gossip *g);
void gossip_stats(const struct gossip *g, struct gossip_stats *st);
bool gossip_invariants_ok(const struct gossip *g);

#endif
