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
 * One loop turn (node_run): poll; read the clock once; take a bounded
 * number of messages from each socket and dispatch them; fire coordinator
 * deadlines; run the coordinator's outbox (local replica work included);
 * group-commit storage once for every write of the turn; only then send the
 * acknowledgements those writes were waiting for; run the outbox again.
 */
#ifndef RKV_NODE_H
#define RKV_NODE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/object.h"
#include "common/wire.h"
#include "coordinator/coordinator.h"
#include "ring/ring.h"
#include "storage/storage.h"

#define NODE_BATCH_PER_SOCKET 256 /* messages taken from one socket per turn */
#define NODE_ROUTING_ID_BYTES 256
#define NODE_SHUTDOWN_GRACE_MS 3000

/* Where a reply goes: a client on the client port, or a peer that
 * forwarded a request (its reply goes back wrapped in FORWARD_REPLY). */
struct node_client {
    uint32_t gen;
    bool used;
    bool forwarded;
    uint64_t forward_id;
    uint8_t rid_len;
    uint8_t rid[NODE_ROUTING_ID_BYTES];
};

/* A write waiting for the group commit before it is acknowledged. */
struct node_ack {
    bool to_self;        /* report to our own coordinator */
    uint64_t id;         /* the request id to answer */
    uint8_t rid_len;     /* else: the peer's routing id on the cluster port */
    uint8_t rid[NODE_ROUTING_ID_BYTES];
};

struct node_stats {
    uint64_t client_requests;
    uint64_t bad_requests;
    uint64_t replica_gets, replica_puts, replica_errors;
    uint64_t send_failures;
    uint64_t commits;
};

struct node {
    struct config *cfg;
    const struct config_node *me;
    uint32_t self;               /* ring index */
    struct ring *ring;
    struct store *store;
    uint64_t actor;
    struct object_limits limits;
    struct coord *coord;
    void *zctx;
    void *client_sock;
    void *cluster_sock;
    void **peers;                /* by ring index; NULL for self */
    struct node_client *clients; /* reply routes, by token slot */
    uint32_t n_clients, cap_clients;
    uint32_t *free_clients;
    uint32_t n_free_clients;
    struct node_ack *acks;
    size_t n_acks, cap_acks;
    uint64_t now_ms;
    uint64_t started_ms;
    volatile sig_atomic_t *stop;
    bool stopping;
    struct node_stats stats;
    struct rkv_buf buf, obj, tmp; /* scratch */
    struct object local, incoming;
};

/* Opens everything for node `id` of cfg (which the node then owns). */
int node_open(struct node *n, struct config *cfg, const char *id, volatile sig_atomic_t *stop,
              struct rkv_error *err);
/* Runs until *stop is set, then drains and returns. */
int node_run(struct node *n);
void node_close(struct node *n);

/* node.c */
int node_send_client(struct node *n, uint64_t token, const void *msg, size_t len);
int node_send_peer(struct node *n, uint32_t member, const void *msg, size_t len);
/* To the peer DEALER with routing id rid, through the cluster ROUTER. */
int node_send_cluster(struct node *n, const void *rid, size_t rid_len, const void *msg,
                      size_t len);
uint64_t node_client_token(struct node *n, const void *rid, size_t rid_len, bool forwarded,
                           uint64_t forward_id);

/* replica.c */
void node_replica_get(struct node *n, const struct wire_msg *m, struct wire_msg *reply);
int node_replica_put(struct node *n, const struct wire_msg *m, const struct node_ack *ack);
void node_local_update(struct node *n, const struct coord_update *u);
void node_group_commit(struct node *n);

/* admin.c */
void node_admin(struct node *n, uint64_t token, const struct wire_msg *m);

#endif
