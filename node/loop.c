/*
 * loop.c: the event loop and message dispatch of ringkvd.
 *
 * A turn: poll; read the clock once; take up to NODE_BATCH_PER_SOCKET
 * messages from each socket that is ready and dispatch them (client
 * requests to the coordinator or the admin handler, replica requests from
 * peers to replica.c, replies from peers to the coordinator); fire the
 * coordinator's deadlines; run its outbox; group-commit; run the outbox
 * again for what the acknowledgements released.
 *
 * Hostile bytes: every frame is decoded by wire_decode, which refuses
 * anything malformed; a bad client frame gets an error reply, a bad peer
 * frame is dropped and counted. Frames with unexpected part counts are
 * drained and dropped. Memory grows only in bounded tables (reply routes,
 * pending acknowledgements, the per-peer batches), which are reused from
 * turn to turn.
 */
#include "node/node.h"

#include <errno.h>
#include <zmq.h>

#include <stdio.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#define POLL_IDLE_MS  1000
#define MSG_PARTS_MAX 2

/* Receives one message of up to MSG_PARTS_MAX parts. Returns the number of
 * parts, 0 if none is waiting, or -1 if it had more parts (dropped). */
static int recv_message(void *sock, zmq_msg_t *parts)
{
    int n = 0;
    for (;;) {
        zmq_msg_t tmp;
        zmq_msg_t *m = n < MSG_PARTS_MAX ? &parts[n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            return n; /* EAGAIN: only possible before the first part */
        }
        n++;
        bool more = zmq_msg_more(m);
        if (m == &tmp)
            zmq_msg_close(&tmp);
        if (!more)
            return n <= MSG_PARTS_MAX ? n : -1;
    }
}

static void close_parts(zmq_msg_t *parts, int n)
{
    for (int i = 0; i < n && i < MSG_PARTS_MAX; i++)
        zmq_msg_close(&parts[i]);
}

static bool is_client_request(uint32_t type)
{
    return type == WIRE_PING || type == WIRE_GET || type == WIRE_PUT || type == WIRE_DEL ||
           type == WIRE_RING || type == WIRE_STATS || type == WIRE_MEMBER;
}

/* Answers a client request that gets no reply route (malformed, refused
 * busy, or while shutting down): straight to its connection. */
static void reply_unrouted(struct node *n, const void *rid, size_t rid_len, uint64_t id, int status,
                           const char *msg)
{
    n->buf.len = 0;
    if (wire_encode_reply(&n->buf, id, ring_epoch(n->ring), status, msg, NULL, 0, false, NULL, 0) !=
            RKV_OK ||
        zmq_send(n->client_sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(n->client_sock, n->buf.data, n->buf.len, ZMQ_DONTWAIT) < 0)
        n->stats.send_failures++;
}

static void on_client(struct node *n, const void *rid, size_t rid_len, const uint8_t *frame,
                      size_t len)
{
    n->stats.client_requests++;
    struct wire_msg m;
    if (wire_decode(frame, len, &m) != RKV_OK || !is_client_request(m.type)) {
        n->stats.bad_requests++;
        reply_unrouted(n, rid, rid_len, m.id, RKV_ERR_PROTO,
                       "malformed request (see docs/protocol.md)");
        return;
    }
    if (n->stopping) {
        reply_unrouted(n, rid, rid_len, m.id, RKV_ERR_UNAVAILABLE, "node is shutting down");
        return;
    }
    uint64_t token = node_client_token(n, rid, rid_len, -1, 0);
    if (token == UINT64_MAX || token == NODE_TOKEN_CLIENT_BUSY) {
        /* no reply route for it: answer straight away, without one */
        char msg[96];
        if (token == UINT64_MAX)
            snprintf(msg, sizeof msg, "queue_depth_max (%u) requests in flight on this node",
                     n->cfg->queue_depth_max);
        else
            snprintf(msg, sizeof msg,
                     "inflight_per_client (%u) requests in flight on this "
                     "connection",
                     n->cfg->inflight_per_client);
        n->stats.refused_busy++;
        reply_unrouted(n, rid, rid_len, m.id, RKV_ERR_BUSY, msg);
        return;
    }
    if (m.type == WIRE_GET || m.type == WIRE_PUT || m.type == WIRE_DEL)
        coord_on_client(n->coord, n->now_ms, token, &m, frame, len, false);
    else
        node_admin(n, token, &m);
}

/* Answers a peer's request with an error right away. A FORWARD's answer
 * is a FORWARD_REPLY holding the REPLY for the forwarder's client. */
static void refuse_peer(struct node *n, uint32_t member, const struct wire_msg *m, int status,
                        const char *msg)
{
    n->buf.len = 0;
    int rc;
    if (m->type == WIRE_FORWARD) {
        struct wire_msg inner;
        uint64_t id = wire_decode(m->inner.p, m->inner.len, &inner) == RKV_OK ? inner.id : 0;
        n->tmp.len = 0;
        rc = wire_encode_reply(&n->tmp, id, ring_epoch(n->ring), status, msg, NULL, 0, false, NULL,
                               0);
        if (rc == RKV_OK)
            rc = wire_encode_wrapped(&n->buf, WIRE_FORWARD_REPLY, m->id, ring_epoch(n->ring),
                                     n->tmp.data, n->tmp.len);
    } else {
        rc = wire_encode_replica_reply(&n->buf, m->id, ring_epoch(n->ring), status, NULL, 0);
    }
    if (rc == RKV_OK)
        node_send_cluster(n, member, n->buf.data, n->buf.len);
}

/* A replica request must name the partition its key hashes to; anything
 * else would store keys where no one looks. Its ring epoch may differ from
 * ours while a ring change spreads: replica writes merge, so serving them
 * is safe, and gossip brings the rings together (counted, logged once). */
static int check_replica_request(struct node *n, uint32_t member, const struct wire_msg *m)
{
    uint64_t epoch = ring_epoch(n->ring);
    if (m->epoch != epoch && n->stats.epoch_mismatch++ == 0)
        RKV_INFO("node", "%s: %s has ring epoch %016llx, this node %016llx (a ring change is "
                 "spreading, or the members' cluster files differ); logged once",
                 n->me->id, n->peer[member]->id, (unsigned long long)m->epoch,
                 (unsigned long long)epoch);
    if (m->type != WIRE_FORWARD &&
        m->partition != ring_partition(n->ring, ring_hash_key(m->key.p, m->key.len))) {
        n->stats.bad_requests++;
        return RKV_ERR_INVAL;
    }
    return RKV_OK;
}

/* One message from peer member (its routing id rid) on the cluster port. */
static void cluster_message(struct node *n, uint32_t member, const uint8_t *rid, size_t rid_len,
                            const struct wire_msg *mp)
{
    const struct wire_msg m = *mp;
    if (m.type == WIRE_REPLICA_GET || m.type == WIRE_REPLICA_PUT || m.type == WIRE_FORWARD) {
        int rc = check_replica_request(n, member, &m);
        if (rc != RKV_OK) {
            if (m.id != 0)
                refuse_peer(n, member, &m, rc, rkv_strerror(rc));
            return;
        }
    }
    if (m.type == WIRE_REPLICA_GET) {
        struct wire_msg reply;
        node_replica_get(n, &m, &reply);
        n->buf.len = 0;
        if (wire_encode_replica_reply(&n->buf, m.id, ring_epoch(n->ring), (int)reply.status,
                                      reply.object.p, reply.object.len) == RKV_OK)
            node_send_cluster(n, member, n->buf.data, n->buf.len);
    } else if (m.type == WIRE_REPLICA_PUT) {
        struct node_ack ack = {.id = m.id, .member = member};
        int rc = m.hint_for.len ? hints_put(n, member, &m) : node_replica_put(n, &m, &ack);
        n->buf.len = 0;
        if (rc != RKV_OK &&
            wire_encode_replica_reply(&n->buf, m.id, ring_epoch(n->ring), rc, NULL, 0) == RKV_OK)
            node_send_cluster(n, member, n->buf.data, n->buf.len);
    } else if (m.type == WIRE_GOSSIP) {
        membership_on_message(n, member, &m);
    } else if (m.type == WIRE_FORWARD) {
        struct wire_msg inner;
        if (wire_decode(m.inner.p, m.inner.len, &inner) != RKV_OK ||
            (inner.type != WIRE_GET && inner.type != WIRE_PUT && inner.type != WIRE_DEL)) {
            n->stats.bad_requests++;
            return;
        }
        uint64_t token = node_client_token(n, rid, rid_len, (int32_t)member, m.id);
        if (token < NODE_TOKEN_CLIENT_BUSY) {
            coord_on_client(n->coord, n->now_ms, token, &inner, m.inner.p, m.inner.len, true);
        } else {
            n->stats.refused_busy++;
            refuse_peer(n, member, &m, RKV_ERR_BUSY, "queue_depth_max requests in flight");
        }
    } else {
        n->stats.bad_requests++;
    }
}

/* A frame on the cluster port: one message or a BATCH of them. Only
 * members are served: the routing id of a peer's DEALER is its id. */
static void on_cluster(struct node *n, const uint8_t *rid, size_t rid_len, zmq_msg_t *payload)
{
    const uint8_t *frame = zmq_msg_data(payload);
    size_t len = zmq_msg_size(payload);
    if (!security_peer_ok(n, payload, rid, rid_len))
        return;
    int32_t member = node_member_of(n, rid, rid_len);
    if (member < 0 && n->cfg->security == SECURITY_NONE)
        member = node_peer_add(n, (const char *)rid, rid_len); /* a member that joins */
    if (member < 0 || (uint32_t)member == n->self) {
        n->stats.bad_requests++;
        RKV_DEBUG("node", "dropped a frame from a routing id that is no peer");
        return;
    }
    struct wire_msg m, one;
    if (wire_decode(frame, len, &m) != RKV_OK) {
        n->stats.bad_requests++;
        RKV_DEBUG("node", "dropped a malformed frame from a peer");
        return;
    }
    if (m.type != WIRE_BATCH) {
        cluster_message(n, (uint32_t)member, rid, rid_len, &m);
        return;
    }
    struct wire_bytes f;
    for (size_t pos = 0; wire_batch_next(&m, &pos, &f);) {
        if (wire_decode(f.p, f.len, &one) == RKV_OK && one.type != WIRE_BATCH)
            cluster_message(n, (uint32_t)member, rid, rid_len, &one);
        else
            n->stats.bad_requests++;
    }
}

static void peer_message(struct node *n, uint32_t member, const struct wire_msg *m)
{
    if (m->type == WIRE_GOSSIP) { /* from a member that does not know our address yet */
        membership_on_message(n, member, m);
        return;
    }
    if (m->type != WIRE_REPLICA_REPLY && m->type != WIRE_FORWARD_REPLY) {
        n->stats.bad_requests++;
        return;
    }
    if (m->type == WIRE_REPLICA_REPLY)
        node_replica_reply(n, member, m);
    else
        coord_on_reply(n->coord, n->now_ms, member, m);
}

void node_replica_reply(struct node *n, uint32_t member, const struct wire_msg *m)
{
    if ((m->id & COORD_ID_FREE_BIT) && (m->id & HANDOFF_ID_BIT))
        handoff_on_reply(n, member, m); /* a new owner took a key we hand over */
    else if (m->id & COORD_ID_FREE_BIT)
        hints_on_reply(n, member, m); /* an owner (or this node) took a hint */
    else
        coord_on_reply(n->coord, n->now_ms, member, m);
}

/* A frame from a peer on its DEALER: replies, one or a BATCH of them. */
static void on_peer(struct node *n, uint32_t member, const uint8_t *frame, size_t len)
{
    struct wire_msg m, one;
    if (wire_decode(frame, len, &m) != RKV_OK) {
        n->stats.bad_requests++;
        return;
    }
    if (m.type != WIRE_BATCH) {
        peer_message(n, member, &m);
        return;
    }
    struct wire_bytes f;
    for (size_t pos = 0; wire_batch_next(&m, &pos, &f);) {
        if (wire_decode(f.p, f.len, &one) == RKV_OK)
            peer_message(n, member, &one);
        else
            n->stats.bad_requests++;
    }
}

/* A message the coordinator addressed to this node. */
static void to_self(struct node *n, const struct rkv_buf *msg)
{
    struct wire_msg m;
    if (wire_decode(msg->data, msg->len, &m) != RKV_OK)
        return;
    if (m.type == WIRE_REPLICA_GET) {
        struct wire_msg reply;
        node_replica_get(n, &m, &reply);
        coord_on_reply(n->coord, n->now_ms, n->self, &reply);
    } else if (m.type == WIRE_REPLICA_PUT) {
        /* read repair of our own copy; its acknowledgement has id 0 */
        struct node_ack ack = {.to_self = true, .id = m.id};
        node_replica_put(n, &m, &ack);
    }
}

void node_send_failed(struct node *n, uint32_t member, const void *msg, size_t len)
{
    struct wire_msg m;
    if (wire_decode(msg, len, &m) != RKV_OK || m.id == 0)
        return;
    if (m.type == WIRE_REPLICA_GET || m.type == WIRE_REPLICA_PUT) {
        struct wire_msg fail = {
            .type = WIRE_REPLICA_REPLY, .id = m.id, .status = RKV_ERR_UNAVAILABLE};
        node_replica_reply(n, member, &fail);
    } else if (m.type == WIRE_FORWARD) {
        coord_on_forward_unsent(n->coord, member, m.id);
    }
}

static void run_outbox(struct node *n)
{
    for (size_t i = 0;; i++) {
        size_t count;
        struct coord_out *out = coord_outbox(n->coord, &count);
        if (i >= count)
            break;
        /* Calls below may append to the outbox and move it: copy first. */
        struct coord_out o = out[i];
        if (o.kind == COORD_TO_CLIENT) {
            node_send_client(n, o.client, o.msg.data, o.msg.len);
        } else if (o.kind == COORD_UPDATE) {
            node_local_update(n, &o.update);
        } else if (o.node == n->self) {
            to_self(n, &o.msg);
        } else if (node_send_peer(n, o.node, o.msg.data, o.msg.len) != RKV_OK) {
            node_send_failed(n, o.node, o.msg.data, o.msg.len);
        }
    }
    coord_outbox_clear(n->coord);
}

/* Sends what the turn produced. A batch that cannot be sent fails its
 * requests, which may produce more to send (error replies): a few rounds. */
static void finish_turn(struct node *n)
{
    for (int round = 0; round < 4; round++) {
        run_outbox(n);
        node_flush(n);
        size_t left;
        coord_outbox(n->coord, &left);
        if (left == 0)
            return;
    }
}

/* Takes up to a batch of messages from one socket. */
static void drain(struct node *n, void *sock, int which, uint32_t member)
{
    for (int k = 0; k < NODE_BATCH_PER_SOCKET; k++) {
        zmq_msg_t parts[MSG_PARTS_MAX];
        int np = recv_message(sock, parts);
        if (np == 0)
            return;
        if (np < 0) {
            n->stats.bad_requests++;
            close_parts(parts, MSG_PARTS_MAX);
            continue;
        }
        bool routed = which != 2;
        if (np != (routed ? 2 : 1)) {
            n->stats.bad_requests++;
        } else if (which == 0) {
            on_client(n, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), zmq_msg_data(&parts[1]),
                      zmq_msg_size(&parts[1]));
        } else if (which == 1) {
            size_t rl = zmq_msg_size(&parts[0]);
            if (rl <= NODE_ROUTING_ID_BYTES)
                on_cluster(n, zmq_msg_data(&parts[0]), rl, &parts[1]);
        } else {
            on_peer(n, member, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]));
        }
        close_parts(parts, np);
    }
}

static long poll_timeout(struct node *n)
{
    uint64_t next = coord_next_deadline(n->coord);
    uint64_t now = rkv_clock_realtime_ms();
    long t = n->stopping ? 50 : POLL_IDLE_MS;
    if (next != UINT64_MAX)
        t = next <= now ? 0 : (next - now < (uint64_t)t ? (long)(next - now) : t);
    if (n->cfg->sync == STORE_SYNC_INTERVAL && (long)n->cfg->sync_interval_ms < t)
        t = (long)n->cfg->sync_interval_ms;
    uint64_t round = membership_next_ms(n), mono = rkv_clock_mono_ms(); /* gossip's clock */
    if (round != UINT64_MAX && (round <= mono || round - mono < (uint64_t)t))
        t = round <= mono ? 0 : (long)(round - mono);
    uint64_t dues[2] = {hints_next_ms(n), handoff_next_ms(n)}; /* monotonic, like gossip's */
    for (int i = 0; i < 2; i++)
        if (dues[i] != UINT64_MAX && (dues[i] <= mono || dues[i] - mono < (uint64_t)t))
            t = dues[i] <= mono ? 0 : (long)(dues[i] - mono);
    return t;
}

/* The poll set: the two routers, every peer's DEALER, the ZAP handler,
 * the store's sync fd; then (not here) the Redis endpoint's. Rebuilt when
 * a peer's socket opens or closes. Returns the count. */
static int poll_set(struct node *n, zmq_pollitem_t *items, uint32_t *member_of, int *zap,
                    int *synced)
{
    int count = 2;
    items[0] = (zmq_pollitem_t){.socket = n->client_sock, .events = ZMQ_POLLIN};
    items[1] = (zmq_pollitem_t){.socket = n->cluster_sock, .events = ZMQ_POLLIN};
    for (uint32_t i = 0; i < n->n_peers; i++) {
        if (n->peer[i]->sock == NULL)
            continue;
        member_of[count] = i;
        items[count++] = (zmq_pollitem_t){.socket = n->peer[i]->sock, .events = ZMQ_POLLIN};
    }
    *zap = -1;
    if (n->sec.zap) {
        *zap = count;
        items[count++] = (zmq_pollitem_t){.socket = n->sec.zap, .events = ZMQ_POLLIN};
    }
    *synced = -1; /* the store's sync thread says a ticket is durable */
    if (n->cfg->sync == STORE_SYNC_ALWAYS) {
        *synced = count;
        items[count++] = (zmq_pollitem_t){.fd = store_sync_fd(n->store), .events = ZMQ_POLLIN};
    }
    return count;
}

int node_run(struct node *n)
{
    /* the sockets, the ZAP handler, then the Redis listener and connections */
    int resp_max = n->resp ? 1 + (int)n->cfg->resp_connections_max : 0;
    zmq_pollitem_t *items = rkv_calloc(4 + RKV_NODES_MAX + (size_t)resp_max, sizeof *items);
    uint32_t *member_of = rkv_calloc(4 + RKV_NODES_MAX, sizeof *member_of);
    if (items == NULL || member_of == NULL) {
        rkv_free(items);
        rkv_free(member_of);
        return RKV_ERR_NOMEM;
    }
    if (n->cfg->sync == STORE_SYNC_ALWAYS)
        node_group_commit(n); /* starts the sync thread, whose fd is polled */
    int zap, synced;
    uint32_t gen = n->peers_gen;
    int count = poll_set(n, items, member_of, &zap, &synced);
    int fixed = count;
    uint64_t stop_at = 0;
    int rc = RKV_OK;
    bool resp_more = false;
    for (;;) {
        if (*n->stop && !n->stopping) {
            n->stopping = true;
            stop_at = rkv_clock_mono_ms() + NODE_SHUTDOWN_GRACE_MS;
            RKV_INFO("node", "%s: shutting down: answering requests in flight", n->me->id);
        }
        if (n->stopping) {
            struct coord_stats cs;
            coord_stats(n->coord, &cs);
            if (cs.inflight == 0 || rkv_clock_mono_ms() >= stop_at)
                break;
        }
        if (gen != n->peers_gen) {
            gen = n->peers_gen;
            fixed = poll_set(n, items, member_of, &zap, &synced);
        }
        count = fixed + resp_poll_items(n, items + fixed, resp_max);
        if (zmq_poll(items, count, resp_more ? 0 : poll_timeout(n)) < 0 && zmq_errno() != EINTR) {
            RKV_ERROR("node", "zmq_poll: %s", zmq_strerror(zmq_errno()));
            rc = RKV_ERR_IO;
            break;
        }
        n->now_ms = rkv_clock_realtime_ms();
        for (int i = 0; i < fixed; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            if (i == zap)
                security_on_zap(n);
            else if (i == synced) {
                store_sync_fd_clear(n->store);
                node_acks_durable(n);
            }
            else
                drain(n, items[i].socket, i < 2 ? i : 2, member_of[i]);
        }
        resp_on_poll(n, items + fixed, count - fixed);
        if (!n->stopping) {
            membership_turn(n);
            hints_turn(n);
            handoff_turn(n);
        }
        coord_tick(n->coord, n->now_ms);
        run_outbox(n);
        node_flush(n); /* peers work on these while we sync */
        node_group_commit(n);
        finish_turn(n);
        resp_more = resp_after_turn(n);
    }
    /* requests still in flight at the end of the grace period fail */
    coord_tick(n->coord, UINT64_MAX);
    run_outbox(n);
    node_group_commit(n);
    node_acks_wait(n, NODE_SHUTDOWN_GRACE_MS);
    finish_turn(n);
    resp_after_turn(n);
    rkv_free(items);
    rkv_free(member_of);
    return rc;
}
