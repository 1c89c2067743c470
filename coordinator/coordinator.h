/*
 * coordinator.h: one state machine per client request (get, put, delete),
 * sans-I/O: it is fed messages and the time and returns messages to send.
 * It never reads a clock, a socket or the disk.
 *
 * The node gives each client request to coord_on_client, each reply from a
 * replica to coord_on_reply, the result of a local update to
 * coord_on_local_update, and calls coord_tick when coord_next_deadline
 * passes. After each call it drains coord_outbox: messages for ring members
 * (itself included: the node handles those locally), local updates to run,
 * and replies for clients.
 *
 * ## Get (R of N)
 *   REPLICA_GET to every member of the preference list. Once R have
 *   answered (found or not found), reply with the merge of their objects:
 *   the live siblings and the context. Keep collecting until all N have
 *   answered or the deadline passes, then send the merged object to every
 *   replica that answered with a stale or missing copy (read repair,
 *   including replicas whose answer came after the client's reply).
 *
 * ## Put and delete (W of N)
 *   Only a member of the key's preference list coordinates a write (its
 *   clock entry must be meaningful), so any other node forwards the request
 *   to the first member and relays the answer. The coordinator asks its
 *   node for a local update (read the local copy, object_update with the
 *   client's context and this node's actor, store it): the node runs it in
 *   one step, so two writes in one loop turn cannot mint the same dot. The
 *   resulting object goes to the other N-1 members as REPLICA_PUT; the local
 *   copy counts once the node's group commit is durable, which it reports
 *   as a REPLICA_REPLY from itself. W successes answer the client.
 *
 * ## Sloppy quorum (writes)
 *   The node marks members down (coord_set_down: its failure detector's
 *   suspicion). A write is not sent to an owner that is down; an owner that
 *   is down, fails, or has not answered within fallback_after_ms is covered
 *   by the next member clockwise past the preference list that is not down
 *   (ring_walk), which keeps the object as a hint for that owner
 *   (REPLICA_PUT with hint_for) and hands it over later. Its answer counts
 *   toward W unless the request asked for primaries only (WIRE_FLAG_PRIMARY,
 *   Riak's PW); the reply names each fallback that counted and its owner. A
 *   non-owner forwards a write to the first owner that is not down. Gets
 *   read the owners only (their R is always "primary").
 *
 * ## Failure
 *   Each request has a deadline (its timeout_ms, or the default). A quorum
 *   that cannot be reached any more, or is not reached by the deadline, is
 *   RKV_ERR_QUORUM with a message naming who answered and who did not.
 *   Bad requests (R or W out of 1..N, oversized key or value, a malformed
 *   context, a context from more than RKV_CONTEXT_AHEAD_MS_MAX in the
 *   future, a timeout over RKV_TIMEOUT_MS_MAX or a ttl over RKV_TTL_MS_MAX)
 *   are refused before anything is sent. A reply that would be larger than
 *   message_bytes_max (the siblings of a get) is sent as RKV_ERR_TOOBIG.
 *
 * Invariants: a request is answered exactly once; its state is freed when
 * it has nothing left to do (answered and, for gets, repair decided), and
 * its deadline with it; at most inflight_max requests exist; equal
 * deadlines fire in creation order. Memory: a freed request keeps buffers
 * up to COORD_KEEP_BYTES for reuse and returns larger ones, and so does the
 * outbox when cleared: a burst of large values does not stay allocated.
 */
#ifndef RKV_COORDINATOR_H
#define RKV_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/object.h"
#include "common/wire.h"
#include "ring/ring.h"

struct coord;

#define COORD_KEEP_BYTES (64u * 1024)

struct coord_options {
    uint64_t actor;             /* this node's vector-clock actor */
    uint32_t self;              /* this node's member index in the ring */
    uint32_t default_r, default_w;
    uint32_t timeout_ms;        /* default deadline of a request */
    uint32_t fallback_after_ms; /* a silent owner gets a fallback after this; 0: only when
                                   it is down or fails */
    uint32_t key_bytes_max;
    uint32_t inflight_max;      /* requests at once; more are refused BUSY */
    uint32_t message_bytes_max; /* a reply larger than this is an error instead */
    struct object_limits limits;
};

enum coord_out_kind {
    COORD_TO_NODE = 1,    /* send msg to ring member `node` (may be self) */
    COORD_TO_CLIENT = 2,  /* send msg (a REPLY) to client `client` */
    COORD_UPDATE = 3,     /* run the local update in `update` */
};

/* A local update the node must run: read the local copy of key, apply
 * object_update(ctx, actor, now_ms, value, expiry_ms, tomb), store it, and
 * call coord_on_local_update(req, ...) with the result; later, once the
 * write is durable, report it with coord_on_reply(self, REPLICA_REPLY with
 * id = req). Pointers are valid until the outbox is cleared. */
struct coord_update {
    uint64_t req;
    uint16_t partition;
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    const struct vclock *ctx;
    uint64_t now_ms;
    uint64_t expiry_ms;
    bool tomb;
    bool overwrite; /* a blind overwrite: ctx is empty, use the local copy's own context */
};

struct coord_out {
    enum coord_out_kind kind;
    uint32_t node;
    uint64_t client;
    struct rkv_buf msg;
    struct coord_update update;
};

struct coord_stats {
    uint64_t gets, puts, dels, forwards;
    uint64_t quorum_failures;
    uint64_t read_repairs;     /* REPLICA_PUTs sent by read repair */
    uint64_t hints_sent;       /* REPLICA_PUTs sent to fallbacks as hints */
    uint64_t sloppy_writes;    /* writes acknowledged with a fallback's answer counted */
    uint64_t inflight;
    uint64_t refused_busy;
};

/* ring is borrowed and must outlive c (or be replaced with coord_set_ring). */
int coord_new(const struct coord_options *o, const struct ring *ring, struct coord **out);
void coord_free(struct coord *c);
void coord_set_ring(struct coord *c, const struct ring *ring, uint32_t self);
/*
 * The same, for a node whose members are not numbered as in the ring (its
 * peer slots, which stay while the ring changes): slot_of[i] is the member
 * number of ring index i, ids[m] the id of member m, self this node's
 * number and self_ring its ring index (-1 if it is not in the ring: it
 * then forwards every write). Requests in flight keep their members; a
 * member that left the ring still counts if it answers. Every member
 * number the coordinator uses afterwards (coord_out.node, coord_on_reply's
 * from, coord_set_down) is such a number. The arrays are borrowed.
 */
void coord_set_members(struct coord *c, const struct ring *ring, const uint32_t *slot_of,
                       const char *const *ids, uint32_t self, int64_t self_ring);
/* Marks ring member `member` down (suspect) or up; self is never down. */
void coord_set_down(struct coord *c, uint32_t member, bool down);

/* Request ids (the id of every message the coordinator sends) never have
 * this bit set: the node may use it for messages of its own. */
#define COORD_ID_FREE_BIT (1ull << 63)

/*
 * A client request (GET, PUT, DEL). client is the node's token for where
 * the reply goes. frame/frame_len are the request's bytes (kept if it must
 * be forwarded); NULL if the node built m itself (it is encoded from m if
 * it must be forwarded). forwarded: it came through FORWARD, so it must not be
 * forwarded again (two nodes whose rings differ would bounce it forever).
 */
void coord_on_client(struct coord *c, uint64_t now_ms, uint64_t client, const struct wire_msg *m,
                     const void *frame, size_t frame_len, bool forwarded);
/* A REPLICA_REPLY or FORWARD_REPLY from member `from`. */
void coord_on_reply(struct coord *c, uint64_t now_ms, uint32_t from, const struct wire_msg *m);
/* A FORWARD (request id) that could not be sent to `to`: the target never
 * saw it, so the client is told RKV_ERR_UNAVAILABLE (it may try another
 * member) rather than a timeout later. */
void coord_on_forward_unsent(struct coord *c, uint32_t to, uint64_t id);
/* The outcome of a COORD_UPDATE: on success the encoded object written. */
void coord_on_local_update(struct coord *c, uint64_t now_ms, uint64_t req, int status,
                           const char *errmsg, const void *object, size_t object_len);
/* Fires deadlines up to now_ms. */
void coord_tick(struct coord *c, uint64_t now_ms);
/* The earliest deadline, or UINT64_MAX. */
uint64_t coord_next_deadline(const struct coord *c);

/* The pending outputs, in order. Input calls only append, but the array
 * may move when it grows: after any input call, fetch it again and address
 * entries by index. */
struct coord_out *coord_outbox(struct coord *c, size_t *n);
void coord_outbox_clear(struct coord *c);

void coord_stats(const struct coord *c, struct coord_stats *st);
bool coord_invariants_ok(const struct coord *c);

#endif
