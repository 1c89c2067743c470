/*
 * node.h: ringkvd, one member of a ring. The only code with server
 * sockets, threads (ZeroMQ's I/O thread, the storage merge thread) and the
 * clock; everything it decides, it asks the sans-I/O modules.
 *
 * Sockets (ZeroMQ):
 *   client ROUTER   bound on host:client_port; clients connect DEALERs
 *   cluster ROUTER  bound on host:cluster_port; peers' DEALERs connect
 *   one DEALER per peer, connected to the peer's cluster port, with the
 *   node id as routing id; requests go out on it and replies come back
 * Routers set ZMQ_ROUTER_MANDATORY (a send to a vanished peer fails instead
 * of vanishing), every send uses ZMQ_DONTWAIT (never blocks the loop), and
 * ZMQ_MAXMSGSIZE caps incoming frames at limits.message_bytes_max. DEALERs
 * set ZMQ_IMMEDIATE: a message to a peer that is not connected fails at
 * once, which the coordinator counts as that replica failing.
 *
 * Batching: messages to a peer are not sent one by one. Each peer has two
 * batches, one for requests (out on its DEALER) and one for replies (out on
 * the cluster ROUTER to its routing id); a turn appends to them and sends
 * each as one BATCH frame (wire.h) at the flush points below, or earlier
 * when one would outgrow WIRE_BATCH_MAX messages or message_bytes_max.
 * A request batch that cannot be sent fails every request in it.
 *
 * One loop turn (node_run): poll; read the clock once; take a bounded
 * number of messages from each socket and dispatch them; fire coordinator
 * deadlines; run the coordinator's outbox (local replica work included);
 * flush the batches, so peers work while we sync; group-commit storage once
 * for every write of the turn; only then acknowledge those writes; run the
 * outbox and flush again.
 */
#ifndef RKV_NODE_H
#define RKV_NODE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "common/buf.h"
#include "common/cert.h"
#include "common/config.h"
#include "common/object.h"
#include "common/wire.h"
#include "coordinator/coordinator.h"
#include "ring/ring.h"
#include "storage/storage.h"

#define NODE_BATCH_PER_SOCKET 256 /* messages taken from one socket per turn */
#define NODE_ROUTING_ID_BYTES 255 /* ZeroMQ's own ceiling */
#define NODE_SHUTDOWN_GRACE_MS 3000
#define NODE_HEARTBEAT_IVL_MS 1000     /* ZMTP pings on peer links... */
#define NODE_HEARTBEAT_TIMEOUT_MS 5000 /* ...and a link silent this long is closed */
#define NODE_GOSSIP_INTERVAL_MS 1000 /* a gossip round, and a heartbeat, per second */

/* A request of the Redis endpoint: part `sub` of the command numbered seq
 * on connection conn (while its generation is gen). */
struct node_resp_route {
    uint32_t conn, gen, sub;
    uint64_t seq;
};

#define NODE_ROUTE_RESP (-2)

/* Where a reply goes: a client on the client port, a peer that forwarded a
 * request (its reply goes back wrapped in FORWARD_REPLY), or a command of
 * the Redis endpoint. */
struct node_client {
    uint32_t gen;
    bool used;
    int32_t forwarder;   /* slot of the peer that forwarded it, -1 for a
                          * client, NODE_ROUTE_RESP for the Redis endpoint */
    struct node_resp_route resp;
    uint64_t rid_hash;   /* its connection, for inflight_per_client */
    uint64_t forward_id;
    uint8_t rid_len;
    uint8_t rid[NODE_ROUTING_ID_BYTES];
};

/* A write waiting for the group commit before it is acknowledged. */
struct node_ack {
    bool to_self;        /* report to our own coordinator */
    uint32_t member;     /* else: the peer's slot */
    uint64_t id;         /* the request id to answer */
    uint64_t ticket;     /* sync = "always": durable at this store ticket */
};

struct node_client_key {
    uint8_t key[32];
    char name[CERT_NAME_BYTES + 1];
};

/* CurveZMQ state (security.c). Peers' keys are in their struct node_peer. */
struct node_security {
    bool curve;
    struct cert own;
    struct node_client_key *clients;      /* the client allow-list */
    size_t n_clients, cap_clients;
    void *zap;                            /* REP on inproc://zeromq.zap.01 */
};

/*
 * A member this node knows of: one of the ring, one joining or leaving it,
 * or itself. Members are numbered by slot, in the order the node learned
 * of them; a slot is never reused while the node runs, so a number held by
 * a request in flight stays the same member when the ring changes (ring
 * indices do not: they follow the sorted ids of the ring's members).
 */
struct node_peer {
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    char host[CONFIG_HOST_BYTES];
    uint16_t client_port, cluster_port;
    void *sock;                   /* DEALER to its cluster port; NULL for self, or while
                                     its address (or, with CURVE, its key) is unknown */
    struct wire_batch requests;   /* for its DEALER */
    struct wire_batch replies;    /* for its routing id on the cluster ROUTER */
    bool keyed;                   /* CURVE: its public key is known */
    char z85[CERT_Z85_BYTES + 1];
    uint8_t key[32];
};

struct node_stats {
    uint64_t auth_refused;    /* handshakes refused, messages with a false id */
    uint64_t client_requests;
    uint64_t bad_requests;
    uint64_t replica_gets, replica_puts, replica_errors;
    uint64_t send_failures;
    uint64_t refused_busy;    /* queue_depth_max or inflight_per_client */
    uint64_t commits;
    uint64_t epoch_mismatch;  /* peer requests from another ring epoch (served) */
    uint64_t frames_sent;     /* to peers, batches counted once */
    uint64_t messages_sent;   /* to peers, each message of a batch counted */
    uint64_t resp_connections; /* accepted on the Redis port, in all */
    uint64_t resp_refused;     /* refused: resp.connections_max open already */
    uint64_t resp_commands;
    uint64_t resp_protocol_errors;
    uint64_t gossip_refused;   /* malformed, foreign or misattributed gossip */
};

struct node {
    struct config *cfg;
    const struct config_node *me;
    uint32_t self;               /* this node's slot */
    int64_t self_ring;           /* its ring index, -1 outside the ring */
    struct ring *ring;
    struct node_peer *peer[RKV_NODES_MAX]; /* by slot (peers.c) */
    uint32_t n_peers;
    uint32_t peers_gen;          /* changes when a peer's socket opens or closes */
    const char *peer_id[RKV_NODES_MAX];    /* by slot, for the coordinator */
    uint16_t peer_by_id[RKV_NODES_MAX];    /* slots sorted by id (node_peer_find) */
    uint32_t ring_slot[RKV_NODES_MAX];     /* ring index -> slot */
    int32_t slot_ring[RKV_NODES_MAX];      /* slot -> ring index, -1 if not in the ring */
    struct store *store;
    uint64_t actor;
    struct object_limits limits;
    struct coord *coord;
    void *zctx;
    void *client_sock;
    void *cluster_sock;
    struct node_client *clients; /* reply routes, by token slot */
    uint32_t n_clients, cap_clients;
    uint32_t *free_clients;
    uint32_t n_free_clients;
    /* requests in flight per client connection (hash of its routing id) */
    uint64_t *inflight_key;
    uint32_t *inflight_count;
    uint32_t inflight_cap;        /* a power of two */
    struct node_ack *acks;       /* in order; the first n_ticketed wait for their ticket */
    size_t n_acks, cap_acks, n_ticketed;
    uint64_t minted;             /* versions made by this turn's local updates */
    uint64_t minted_unsynced;    /* ...and by earlier turns whose ticket is not durable */
    uint64_t now_ms;
    uint64_t started_ms;
    volatile sig_atomic_t *stop;
    bool stopping;
    struct node_stats stats;
    struct node_security sec;
    struct rkv_buf buf, obj, tmp; /* scratch */
    struct object local, incoming;
    struct vclock overwrite_ctx;  /* scratch: the local copy's context */
    struct resp_server *resp;     /* NULL: no Redis endpoint */
    struct gossip *gossip;        /* membership.c: who is alive */
    struct hints *hints;          /* hints.c: writes held for other members */
    uint64_t down_checked_ms;     /* membership.c: last coord_set_down refresh */
    struct gossip_node *boot;     /* membership.c: the table known at start */
    size_t n_boot;
    bool joining;                 /* started with --join and no saved table */
    bool leaving, left;           /* ringkv leave: handing over; done */
    uint64_t leave_ms;
    uint64_t quiet_since_ms;      /* joining: no ring change seen under way since (0: one is) */
    uint64_t join_logged_ms;
    uint64_t join_wait_since_ms;  /* joining: first seen waiting for a change (0: not yet) */
    uint32_t connect_warned;
    struct handoff *handoff;      /* handoff.c: partitions to hand to new owners */
};

/* Opens everything for node `id` of cfg (which the node then owns). join:
 * NULL, or the cluster address (HOST:PORT) of a member to join the ring
 * through, for a node that has no saved member table yet. */
int node_open(struct node *n, struct config *cfg, const char *id, const char *join,
              volatile sig_atomic_t *stop, struct rkv_error *err);
/* Runs until *stop is set, then drains and returns. */
int node_run(struct node *n);
void node_close(struct node *n);

/* node.c */
int node_send_client(struct node *n, uint64_t token, const void *msg, size_t len);
/* Writes DATA_DIR/name whole: tmp, write, fsync, rename, fsync the folder.
 * -1 with errno on failure (the old file is left as it was). */
int node_save_file(const struct node *n, const char *name, const void *data, size_t len);
/* DATA_DIR/name exists (any error but ENOENT counts as existing: the
 * callers use it to refuse, never to go ahead). */
bool node_file_exists(const struct node *n, const char *name);
/* The ZeroMQ high-water mark for a socket to peers or clients. */
int node_queue_hwm(const struct config *cfg, bool clients);
/* Sends msg to routing id rid on a ROUTER (without blocking). */
int node_send_routed(struct node *n, void *sock, const void *rid, size_t rid_len, const void *msg,
                     size_t len);

/* peers.c: the members this node knows, by slot, and the batches to them */
/* The slot of member id, or -1. */
int32_t node_peer_find(const struct node *n, const char *id, size_t len);
/* The slot of member id, made if new (without an address yet); -1 if the
 * id is not a valid member id or RKV_NODES_MAX slots are taken. */
int32_t node_peer_add(struct node *n, const char *id, size_t len);
/* Sets a peer's address and (re)connects its DEALER if it changed. */
int node_peer_connect(struct node *n, uint32_t slot, const char *host, uint16_t client_port,
                      uint16_t cluster_port, struct rkv_error *err);
/* Makes ring the node's ring (it takes it over, and frees the old one):
 * gives every member a slot and tells the coordinator. */
void node_set_ring(struct node *n, struct ring *ring);
void node_peers_close(struct node *n);
/* Adds a request to member's batch. RKV_ERR_UNAVAILABLE if there is no
 * such peer (or no memory); a failure to send it comes later, through
 * node_send_failed. */
int node_send_peer(struct node *n, uint32_t member, const void *msg, size_t len);
/* Adds a reply to member's batch for the cluster ROUTER (to the DEALER
 * with the member's id as routing id). */
int node_send_cluster(struct node *n, uint32_t member, const void *msg, size_t len);
/* Sends every batch. */
void node_flush(struct node *n);
/* The slot of the member whose id is rid, or -1. */
int32_t node_member_of(const struct node *n, const void *rid, size_t rid_len);
/* A reply route for a request from routing id rid. UINT64_MAX if the
 * node's queue is full; NODE_TOKEN_CLIENT_BUSY if this client connection
 * has inflight_per_client requests in flight already. A forwarded request
 * names the forwarding member. */
#define NODE_TOKEN_CLIENT_BUSY (UINT64_MAX - 1)
uint64_t node_client_token(struct node *n, const void *rid, size_t rid_len, int32_t forwarder,
                           uint64_t forward_id);
/* A reply route to the Redis endpoint (no inflight_per_client: the endpoint
 * bounds its own connections). UINT64_MAX if the node's queue is full. */
uint64_t node_resp_token(struct node *n, const struct node_resp_route *route);

/* loop.c */
/* A request that could not be sent to member fails for its coordinator. */
void node_send_failed(struct node *n, uint32_t member, const void *msg, size_t len);
/* A REPLICA_REPLY from member (n->self: this node's own acknowledgement),
 * to whoever sent the request its id names: the coordinator, the hints
 * (COORD_ID_FREE_BIT) or the handoff (and HANDOFF_ID_BIT). */
void node_replica_reply(struct node *n, uint32_t member, const struct wire_msg *m);

/* Takes a new vector-clock actor now (node.c explains when and why). */
void node_rotate_actor(struct node *n, const char *why);

/* replica.c */
/* The limits for objects from other nodes (see replica.c). */
void node_peer_limits(const struct node *n, struct object_limits *lim);
void node_replica_get(struct node *n, const struct wire_msg *m, struct wire_msg *reply);
int node_replica_put(struct node *n, const struct wire_msg *m, const struct node_ack *ack);
void node_local_update(struct node *n, const struct coord_update *u);
void node_group_commit(struct node *n);
/* Acknowledges the writes whose store ticket is durable now. */
void node_acks_durable(struct node *n);
/* The same, waiting up to deadline_ms for all of them (at shutdown). */
void node_acks_wait(struct node *n, uint32_t deadline_ms);

/* security.c */
int security_open(struct node *n, struct rkv_error *err);
void security_close(struct node *n);
int security_server(struct node *n, void *sock, const char *domain);
int security_client(struct node *n, void *sock, uint32_t peer);
/* Loads the public key of peer slot from keys_dir, if there is one (with
 * CURVE a peer without one cannot be connected to, nor admitted). */
void security_peer_key(struct node *n, uint32_t slot);
void security_on_zap(struct node *n);
/* False (logged, counted) if a cluster message's claimed id is not the id
 * its sender's key belongs to. payload is a zmq_msg_t *. */
bool security_peer_ok(struct node *n, void *payload, const void *rid, size_t rid_len);

/* resp.c: the Redis-protocol endpoint (docs/resp.md) */
struct resp_server;
int resp_open(struct node *n, struct rkv_error *err);
void resp_close(struct node *n);
/* Poll items for the listener and the connections, at most max. */
int resp_poll_items(struct node *n, zmq_pollitem_t *items, int max);
/* Handles what poll reported for the items resp_poll_items gave. */
void resp_on_poll(struct node *n, const zmq_pollitem_t *items, int count);
/* A coordinator reply for a command. */
void resp_on_reply(struct node *n, const struct node_resp_route *route, const void *msg,
                   size_t len);
/* End of a turn: writes replies, closes what is done, and takes up
 * commands that were waiting for room. True if some were taken up (the
 * next poll must not wait). */
bool resp_after_turn(struct node *n);

/* membership.c: the member table, the ring it implies, who is alive */
struct gossip;
struct gossip_node;
#define MEMBERSHIP_LEAVE_SPREAD_MS 5000 /* a leaving node runs at least this long */
/* The ring to start with (n->ring): from <data_dir>/MEMBERS, else from
 * cluster.toml, or with join (HOST:PORT) the seed's [[node]] alone. */
int membership_boot(struct node *n, const char *join, struct rkv_error *err);
int membership_open(struct node *n, struct rkv_error *err);
void membership_close(struct node *n);
/* A round if one is due, what gossip has to send, and ring changes. */
void membership_turn(struct node *n);
/* When the next round is due (monotonic ms). */
uint64_t membership_next_ms(const struct node *n);
/* A GOSSIP frame from member (authenticated by the transport). */
void membership_on_message(struct node *n, uint32_t member, const struct wire_msg *m);
bool membership_alive(const struct node *n, uint32_t member);
/* Member id left (LEAVING) or was removed: it will not take writes again. */
bool membership_gone(const struct node *n, const char *id);
uint32_t membership_suspects(const struct node *n);
/* A member's host and ports as gossip has them (NULL if unknown). */
const char *membership_address(const struct node *n, const char *id, uint16_t *client_port,
                               uint16_t *cluster_port);
/* ringkv leave (this node; RKV_ERR_BUSY while another ring change is under
 * way, unless force) and ringkv remove ID: a status and, in msg, what
 * happened or why not. */
int membership_leave(struct node *n, bool force, char *msg, size_t size);
/* A ring change is under way as far as this node knows (statistics). */
bool membership_change_pending(const struct node *n);
/* This node is joining (started with --join, waiting its turn or for the
 * ring's answer). */
bool membership_joining(const struct node *n);
/* "joining" or "leaving" for a member slot that is alive (as this node
 * sees it, itself included) and outside the ring that way; else NULL. */
const char *membership_outside(const struct node *n, uint32_t member);
int membership_remove(struct node *n, const char *id, char *msg, size_t size);

/* hints.c: hinted handoff (the hints this node holds for other members) */
struct hints;
struct node_hints_stats {
    uint64_t stored;       /* hints taken (new or merged) */
    uint64_t refused_full; /* refused: hints.bytes_max reached */
    uint64_t sent;         /* handed to their owner (REPLICA_PUTs sent) */
    uint64_t delivered;    /* acknowledged by the owner and deleted */
    uint64_t failed;       /* the owner answered with an error */
    uint64_t timeouts;     /* batches given up unanswered */
    uint64_t rehomed;      /* hints for a member that left or was removed (or for any
                              member, while this node leaves), moved into this node's
                              store: ownership handoff takes them to the owners */
    uint64_t last_drain_ms;    /* the last owner whose hints all went: first batch after
                                  its last failure to the last acknowledgement */
    uint64_t last_drain_hints; /* ...and how many it took then */
};
int hints_open(struct node *n, struct rkv_error *err);
void hints_close(struct node *n);
/* A REPLICA_PUT with hint_for from member `from`: merged into the hint
 * store and acknowledged at hints_commit; an error is for the caller to
 * answer (RKV_ERR_FULL when the store is full). */
int hints_put(struct node *n, uint32_t from, const struct wire_msg *m);
/* Commits the turn's hint writes, then acknowledges the hints taken. */
void hints_commit(struct node *n);
/* A handoff round if one is due (sends to owners that are alive). */
void hints_turn(struct node *n);
/* When the next round is due (monotonic ms), UINT64_MAX if nothing is held. */
uint64_t hints_next_ms(const struct node *n);
/* An owner's REPLICA_REPLY to a handoff (its id has COORD_ID_FREE_BIT). */
void hints_on_reply(struct node *n, uint32_t member, const struct wire_msg *m);
void hints_stats(const struct node *n, struct node_hints_stats *st, uint64_t *pending,
                 uint64_t *bytes);
/* Owners this node holds (or held) hints for, and the count for one. */
uint32_t hints_owners(const struct node *n);
const char *hints_owner(const struct node *n, uint32_t i);
uint64_t hints_pending_for(const struct node *n, const char *id);
/* No hint is pending for anyone. */
bool hints_idle(const struct node *n);

/* handoff.c: ownership handoff after a ring change */
struct handoff;
/* Replies to handoff's REPLICA_PUTs have this bit and COORD_ID_FREE_BIT. */
#define HANDOFF_ID_BIT (1ull << 62)
struct node_handoff_stats {
    uint64_t partitions_pending; /* jobs left (the first one streaming) */
    uint64_t current;            /* the partition streaming */
    uint64_t jobs_planned;       /* jobs after the last ring change */
    uint64_t partitions_done;
    uint64_t last_partition_ms;  /* how long the last partition took */
    uint64_t keys_sent, keys_acked, keys_dropped, bytes_sent;
    uint64_t timeouts;
    uint64_t strays;             /* writes stored for partitions not owned here */
    uint64_t resumed;            /* jobs found in HANDOFF at start */
    uint64_t busy_ms;            /* time with jobs pending: bytes_sent / busy_ms is the
                                    handoff's throughput while it streams */
};
int handoff_open(struct node *n, struct rkv_error *err);
void handoff_close(struct node *n);
/* The ring goes from old (NULL: unknown) to r: plans the jobs it implies. */
void handoff_ring_changed(struct node *n, const struct ring *old, const struct ring *r);
/* A key of partition was stored here: if this node does not own it (a
 * peer with another ring sent it), a job hands it over and drops it. */
void handoff_stored(struct node *n, uint32_t partition);
/* A round of streaming if one is due. */
void handoff_turn(struct node *n);
uint64_t handoff_next_ms(const struct node *n);
/* No partition left to hand over. */
bool handoff_idle(const struct node *n);
/* A target's REPLICA_REPLY (its id has HANDOFF_ID_BIT). */
void handoff_on_reply(struct node *n, uint32_t member, const struct wire_msg *m);
void handoff_stats(const struct node *n, struct node_handoff_stats *st);
/* Keys stored here in partitions this node does not own (0 once every
 * handoff is done). Lists those partitions: for statistics, not hot paths. */
uint64_t handoff_unowned_keys(struct node *n);

/* admin.c */
void node_admin(struct node *n, uint64_t token, const struct wire_msg *m);

#endif
