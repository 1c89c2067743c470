/*
 * peers.c: the members a node knows, numbered by slot (node.h explains
 * why slots and not ring indices), their sockets, and the batches of
 * messages to them.
 *
 * A slot is made when the node first hears of a member: from the ring it
 * starts with, from gossip, or from a peer that connects (with CURVE, only
 * one whose key is in keys_dir). Its DEALER is made once its address is
 * known and, with CURVE, its key; until then replies to it go out through
 * the cluster ROUTER, where its own DEALER is connected.
 */
#include "node/node.h"

#include <stdio.h>
#include <zmq.h>

#include "common/alloc.h"
#include "common/log.h"

/* Compares id (len bytes) with a peer's id, in the order of peer_by_id. */
static int cmp_id(const char *id, size_t len, const struct node_peer *p)
{
    size_t plen = strlen(p->id);
    int c = memcmp(id, p->id, len < plen ? len : plen);
    return c ? c : (len > plen) - (len < plen);
}

/* Binary search of peer_by_id: the position of id, or where it would go
 * as -(pos + 1). Every frame from a peer looks its sender up here. */
static long by_id_search(const struct node *n, const char *id, size_t len)
{
    size_t lo = 0, hi = n->n_peers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_id(id, len, n->peer[n->peer_by_id[mid]]);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -(long)lo - 1;
}

int32_t node_peer_find(const struct node *n, const char *id, size_t len)
{
    long pos = by_id_search(n, id, len);
    return pos >= 0 ? (int32_t)n->peer_by_id[pos] : -1;
}

int32_t node_peer_add(struct node *n, const char *id, size_t len)
{
    long pos = by_id_search(n, id, len);
    if (pos >= 0)
        return (int32_t)n->peer_by_id[pos];
    if (!ring_id_ok(id, len) || n->n_peers == RKV_NODES_MAX)
        return -1;
    struct node_peer *p = rkv_calloc(1, sizeof *p);
    if (p == NULL)
        return -1;
    memcpy(p->id, id, len);
    uint32_t slot = n->n_peers++;
    size_t at = (size_t)(-pos - 1);
    memmove(&n->peer_by_id[at + 1], &n->peer_by_id[at],
            (slot - at) * sizeof n->peer_by_id[0]);
    n->peer_by_id[at] = (uint16_t)slot;
    n->peer[slot] = p;
    n->peer_id[slot] = p->id;
    n->slot_ring[slot] = -1;
    security_peer_key(n, slot);
    return (int32_t)slot;
}

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof v);
}

static void *make_dealer(struct node *n, uint32_t slot, struct rkv_error *err)
{
    const struct node_peer *p = n->peer[slot];
    void *s = zmq_socket(n->zctx, ZMQ_DEALER);
    if (s == NULL)
        return rkv_error_set(err, RKV_ERR_IO, "node: zmq_socket: %s", zmq_strerror(zmq_errno())),
               NULL;
    char ep[CONFIG_HOST_BYTES + 32];
    snprintf(ep, sizeof ep, "tcp://%s:%u", p->host, p->cluster_port);
    int64_t maxmsg = n->cfg->message_bytes_max;
    int hwm = node_queue_hwm(n->cfg, false);
    if (zmq_setsockopt(s, ZMQ_ROUTING_ID, n->me->id, strlen(n->me->id)) ||
        set_int(s, ZMQ_IMMEDIATE, 1) || set_int(s, ZMQ_LINGER, 0) || set_int(s, ZMQ_SNDHWM, hwm) ||
        set_int(s, ZMQ_RCVHWM, hwm) || set_int(s, ZMQ_HEARTBEAT_IVL, NODE_HEARTBEAT_IVL_MS) ||
        set_int(s, ZMQ_HEARTBEAT_TIMEOUT, NODE_HEARTBEAT_TIMEOUT_MS) ||
        set_int(s, ZMQ_RECONNECT_IVL, 100) || set_int(s, ZMQ_RECONNECT_IVL_MAX, 1000) ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        security_client(n, s, slot) || zmq_connect(s, ep) != 0) {
        rkv_error_set(err, RKV_ERR_IO, "node: cannot connect to %s at %s: %s", p->id, ep,
                      zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int node_peer_connect(struct node *n, uint32_t slot, const char *host, uint16_t client_port,
                      uint16_t cluster_port, struct rkv_error *err)
{
    struct node_peer *p = n->peer[slot];
    if (slot == n->self)
        return RKV_OK;
    bool same = p->sock && strcmp(p->host, host) == 0 && p->cluster_port == cluster_port;
    p->client_port = client_port;
    if (same)
        return RKV_OK;
    if (strlen(host) >= sizeof p->host)
        return rkv_error_set(err, RKV_ERR_INVAL, "node: host of %s too long", p->id);
    snprintf(p->host, sizeof p->host, "%s", host);
    p->cluster_port = cluster_port;
    if (n->cfg->security == SECURITY_CURVE && !p->keyed)
        return rkv_error_set(err, RKV_ERR_DENIED, "node: no public key for member %s in %s",
                             p->id, n->cfg->keys_dir);
    void *s = make_dealer(n, slot, err);
    if (s == NULL)
        return err->code;
    if (p->sock)
        zmq_close(p->sock);
    p->sock = s;
    n->peers_gen++;
    return RKV_OK;
}

void node_set_ring(struct node *n, struct ring *ring)
{
    for (uint32_t s = 0; s < n->n_peers; s++)
        n->slot_ring[s] = -1;
    for (uint32_t i = 0; i < ring_member_count(ring); i++) {
        const char *id = ring_member_id(ring, i);
        int32_t slot = node_peer_add(n, id, strlen(id));
        /* a ring has at most RKV_NODES_MAX valid ids, each gets a slot
         * unless the node heard of that many others first */
        n->ring_slot[i] = slot < 0 ? n->self : (uint32_t)slot;
        if (slot >= 0)
            n->slot_ring[slot] = (int32_t)i;
    }
    n->self_ring = n->slot_ring[n->self];
    struct ring *old = n->ring;
    n->ring = ring;
    if (n->coord)
        coord_set_members(n->coord, ring, n->ring_slot, n->peer_id, n->self, n->self_ring);
    if (old != ring)
        ring_free(old);
}

void node_peers_close(struct node *n)
{
    for (uint32_t i = 0; i < n->n_peers; i++) {
        struct node_peer *p = n->peer[i];
        if (p->sock) {
            int linger = 1000; /* give what it still queues a moment */
            zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
            zmq_close(p->sock);
        }
        wire_batch_free(&p->requests);
        wire_batch_free(&p->replies);
        rkv_free(p);
        n->peer[i] = NULL;
    }
    n->n_peers = 0;
}

/* ---- batches to peers ---- */

int32_t node_member_of(const struct node *n, const void *rid, size_t rid_len)
{
    if (rid_len == 0 || rid_len > RKV_NODE_ID_BYTES_MAX || memchr(rid, 0, rid_len))
        return -1;
    return node_peer_find(n, rid, rid_len);
}

/* Sends one batch: on the peer's DEALER (requests), or through the cluster
 * ROUTER (replies). Clears it either way. */
static void flush_one(struct node *n, uint32_t member, bool requests)
{
    struct node_peer *p = n->peer[member];
    struct wire_batch *b = requests ? &p->requests : &p->replies;
    if (b->count == 0)
        return;
    const uint8_t *frame;
    size_t len;
    wire_batch_seal(b, ring_epoch(n->ring), &frame, &len);
    n->stats.frames_sent++;
    n->stats.messages_sent += b->count;
    int rc = RKV_OK;
    if (requests) {
        if (p->sock == NULL || zmq_send(p->sock, frame, len, ZMQ_DONTWAIT) < 0) {
            n->stats.send_failures++;
            rc = RKV_ERR_UNAVAILABLE;
        }
    } else {
        rc = node_send_routed(n, n->cluster_sock, p->id, strlen(p->id), frame, len);
        if (rc != RKV_OK)
            RKV_DEBUG("node", "%u replies to %s could not be sent", b->count, p->id);
    }
    if (rc != RKV_OK && requests) {
        /* the coordinator only queues what follows; nothing is sent here */
        struct wire_bytes m;
        for (size_t pos = 0; wire_batch_each(b, &pos, &m);)
            node_send_failed(n, member, m.p, m.len);
    }
    wire_batch_clear(b);
}

/* Appends msg to a batch, sending the batch first if msg would make it
 * outgrow its bounds. */
static int batch_add(struct node *n, uint32_t member, bool requests, const void *msg, size_t len)
{
    struct node_peer *p = n->peer[member];
    struct wire_batch *b = requests ? &p->requests : &p->replies;
    if (b->count > 0 &&
        (b->count >= WIRE_BATCH_MAX ||
         wire_batch_frame_bytes(b->count + 1, b->buf.len + len) > n->cfg->message_bytes_max))
        flush_one(n, member, requests);
    return wire_batch_add(b, msg, len);
}

int node_send_cluster(struct node *n, uint32_t member, const void *msg, size_t len)
{
    if (member >= n->n_peers || member == n->self ||
        batch_add(n, member, false, msg, len) != RKV_OK) {
        n->stats.send_failures++;
        return RKV_ERR_UNAVAILABLE;
    }
    return RKV_OK;
}

int node_send_peer(struct node *n, uint32_t member, const void *msg, size_t len)
{
    if (member >= n->n_peers || n->peer[member]->sock == NULL ||
        batch_add(n, member, true, msg, len) != RKV_OK) {
        n->stats.send_failures++;
        return RKV_ERR_UNAVAILABLE;
    }
    return RKV_OK;
}

void node_flush(struct node *n)
{
    for (uint32_t i = 0; i < n->n_peers; i++) {
        if (i == n->self)
            continue;
        flush_one(n, i, false);
        flush_one(n, i, true);
    }
}
