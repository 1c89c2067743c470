/* admin.c: the requests about the node itself: PING, RING, STATS. */
#include "node/node.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "common/clock.h"

static void add_stat(struct mp_writer *w, const char *name, uint64_t v)
{
    mp_write_cstr(w, name);
    mp_write_uint(w, v);
}

/* The live members outside the ring (joining or leaving) into slots, and
 * their status names; how many. With CURVE, only those whose key this
 * node has: a client could not reach the others, and refuses a ring
 * description with a member without a key. */
static uint32_t outsiders(const struct node *n, uint32_t *slots, const char **status)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < n->n_peers; i++) {
        const char *s = membership_outside(n, i);
        /* not one the ring has yet (the ring follows gossip a turn later) */
        if (s != NULL && n->slot_ring[i] < 0 && (!n->sec.curve || n->peer[i]->keyed)) {
            slots[count] = i;
            status[count++] = s;
        }
    }
    return count;
}

/* The first five of a member's six fields in RING: [id, host, client_port,
 * cluster_port, ...]; the caller writes the fifth (vnodes or status) and
 * then server_key. Gossip's address first: a peer's slot may be older than
 * its address (made when it first spoke to us). */
static void write_member(const struct node *n, struct mp_writer *w, const struct node_peer *p)
{
    uint16_t client_port = p->client_port, cluster_port = p->cluster_port;
    const char *host = membership_address(n, p->id, &client_port, &cluster_port);
    mp_write_array(w, 6);
    mp_write_cstr(w, p->id);
    mp_write_cstr(w, host ? host : p->host);
    mp_write_uint(w, client_port);
    mp_write_uint(w, cluster_port);
}

static const char *server_key(const struct node *n, const struct node_peer *p)
{
    return n->sec.curve && p->keyed ? p->z85 : "";
}

static void encode_ring(struct node *n, struct mp_writer *w)
{
    const struct config *c = n->cfg;
    mp_write_array(w, 8);
    mp_write_cstr(w, c->name);
    mp_write_uint(w, c->partitions);
    mp_write_uint(w, c->replicas);
    mp_write_uint(w, c->read_quorum);
    mp_write_uint(w, c->write_quorum);
    mp_write_uint(w, c->request_timeout_ms);
    uint32_t members = ring_member_count(n->ring);
    mp_write_array(w, members);
    for (uint32_t i = 0; i < members; i++) {
        const struct node_peer *p = n->peer[n->ring_slot[i]];
        write_member(n, w, p);
        mp_write_uint(w, ring_member_vnodes(n->ring, i));
        mp_write_cstr(w, server_key(n, p));
    }
    uint32_t slots[RKV_NODES_MAX];
    const char *status[RKV_NODES_MAX];
    uint32_t others = outsiders(n, slots, status);
    mp_write_array(w, others);
    for (uint32_t k = 0; k < others; k++) {
        const struct node_peer *p = n->peer[slots[k]];
        write_member(n, w, p);
        mp_write_cstr(w, status[k]);
        mp_write_cstr(w, server_key(n, p));
    }
}

/* Peers whose connection is up: with ZMQ_IMMEDIATE a DEALER is writable
 * only when it has a connected pipe. */
static uint64_t peers_connected(struct node *n)
{
    uint64_t up = 0;
    for (uint32_t i = 0; i < n->n_peers; i++) {
        if (n->peer[i]->sock == NULL)
            continue;
        zmq_pollitem_t it = {.socket = n->peer[i]->sock, .events = ZMQ_POLLOUT};
        if (zmq_poll(&it, 1, 0) == 1 && (it.revents & ZMQ_POLLOUT))
            up++;
    }
    return up;
}

static void encode_stats(struct node *n, struct mp_writer *w)
{
    struct store_stats ss;
    struct coord_stats cs;
    store_stats(n->store, &ss);
    coord_stats(n->coord, &cs);
    struct node_hints_stats hs;
    struct node_handoff_stats ho;
    handoff_stats(n, &ho);
    uint64_t hints_pending, hints_bytes;
    hints_stats(n, &hs, &hints_pending, &hints_bytes);
    const struct { const char *name; uint64_t value; } stat[] = {
        {"uptime_ms", rkv_clock_mono_ms() - n->started_ms},
        {"auth_refused", n->stats.auth_refused},
        {"peers_connected", peers_connected(n)},
        {"ring_epoch", ring_epoch(n->ring)},
        {"actor", n->actor},
        {"client_requests", n->stats.client_requests},
        {"bad_requests", n->stats.bad_requests},
        {"gets", cs.gets},
        {"puts", cs.puts},
        {"dels", cs.dels},
        {"forwards", cs.forwards},
        {"quorum_failures", cs.quorum_failures},
        {"read_repairs", cs.read_repairs},
        {"inflight", cs.inflight},
        {"refused_busy", cs.refused_busy + n->stats.refused_busy},
        {"replica_gets", n->stats.replica_gets},
        {"replica_puts", n->stats.replica_puts},
        {"replica_errors", n->stats.replica_errors},
        {"send_failures", n->stats.send_failures},
        {"commits", n->stats.commits},
        {"epoch_mismatch", n->stats.epoch_mismatch},
        {"handoff_partitions_pending", ho.partitions_pending},
        {"handoff_partition", ho.current},
        {"handoff_partitions_done", ho.partitions_done},
        {"handoff_last_partition_ms", ho.last_partition_ms},
        {"handoff_keys_sent", ho.keys_sent},
        {"handoff_keys_acked", ho.keys_acked},
        {"handoff_keys_dropped", ho.keys_dropped},
        {"handoff_bytes_sent", ho.bytes_sent},
        {"handoff_busy_ms", ho.busy_ms},
        {"handoff_timeouts", ho.timeouts},
        {"handoff_strays", ho.strays},
        {"handoff_partitions_resumed", ho.resumed},
        {"store_keys_unowned", handoff_unowned_keys(n)},
        {"ring_members", ring_member_count(n->ring)},
        {"in_ring", n->self_ring >= 0},
        {"leaving", n->leaving},
        {"joining", membership_joining(n)},
        {"ring_change_pending", membership_change_pending(n)},
        {"peer_frames_sent", n->stats.frames_sent},
        {"peer_messages_sent", n->stats.messages_sent},
        {"store_keys", ss.keys},
        {"store_files", ss.files},
        {"store_disk_bytes", ss.disk_bytes},
        {"store_dead_bytes", ss.dead_bytes},
        {"store_keydir_bytes", ss.keydir_bytes},
        {"store_merges", ss.merges},
        {"store_unsynced_bytes", ss.unsynced_bytes},
        {"store_failed", ss.failed},
        {"resp_connections", n->stats.resp_connections},
        {"resp_refused", n->stats.resp_refused},
        {"resp_commands", n->stats.resp_commands},
        {"resp_protocol_errors", n->stats.resp_protocol_errors},
        {"gossip_refused", n->stats.gossip_refused},
        {"fallback_writes", cs.hints_sent},
        {"sloppy_writes", cs.sloppy_writes},
        {"hints_pending", hints_pending},
        {"hints_bytes", hints_bytes},
        {"hints_stored", hs.stored},
        {"hints_refused_full", hs.refused_full},
        {"hints_sent", hs.sent},
        {"hints_delivered", hs.delivered},
        {"hints_failed", hs.failed},
        {"hints_timeouts", hs.timeouts},
        {"hints_rehomed", hs.rehomed},
        {"hints_last_drain_ms", hs.last_drain_ms},
        {"hints_last_drain_hints", hs.last_drain_hints},
    };
    size_t count = sizeof stat / sizeof stat[0];
    uint32_t others = n->n_peers - 1; /* every member this node knows but itself */
    /* hints held for ids it does not know (any more) are listed too */
    uint32_t strangers = 0;
    for (uint32_t i = 0; i < hints_owners(n); i++) {
        const char *id = hints_owner(n, i);
        strangers += node_peer_find(n, id, strlen(id)) < 0 && hints_pending_for(n, id) > 0;
    }
    mp_write_map(w, (uint32_t)count + 1 + 2 * others + strangers);
    for (size_t i = 0; i < count; i++)
        add_stat(w, stat[i].name, stat[i].value);
    char name[16 + RKV_NODE_ID_BYTES_MAX];
    for (uint32_t i = 0; i < n->n_peers; i++) {
        if (i == n->self)
            continue;
        snprintf(name, sizeof name, "hints_pending.%s", n->peer[i]->id);
        add_stat(w, name, hints_pending_for(n, n->peer[i]->id));
    }
    for (uint32_t i = 0; i < hints_owners(n); i++) {
        const char *id = hints_owner(n, i);
        if (node_peer_find(n, id, strlen(id)) >= 0 || hints_pending_for(n, id) == 0)
            continue;
        snprintf(name, sizeof name, "hints_pending.%s", id);
        add_stat(w, name, hints_pending_for(n, id));
    }
    /* what this node's failure detector says of each peer */
    add_stat(w, "peers_suspect", membership_suspects(n));
    for (uint32_t i = 0; i < n->n_peers; i++) {
        if (i == n->self)
            continue;
        snprintf(name, sizeof name, "suspect.%s", n->peer[i]->id);
        add_stat(w, name, !membership_alive(n, i));
    }
}

void node_admin(struct node *n, uint64_t token, const struct wire_msg *m)
{
    struct rkv_buf *payload = &n->tmp;
    payload->len = 0;
    struct mp_writer w;
    mp_writer_init(&w, payload);
    if (m->type == WIRE_PING) {
        mp_write_array(&w, 2);
        mp_write_cstr(&w, n->me->id);
        mp_write_cstr(&w, WIRE_SOFTWARE_VERSION);
    } else if (m->type == WIRE_RING) {
        encode_ring(n, &w);
    } else if (m->type == WIRE_MEMBER) {
        char id[RKV_NODE_ID_BYTES_MAX + 1], msg[256];
        memcpy(id, m->member.p, m->member.len);
        id[m->member.len] = '\0';
        int rc;
        if (m->op == WIRE_MEMBER_REMOVE) {
            rc = membership_remove(n, id, msg, sizeof msg);
        } else if (strcmp(id, n->me->id) != 0) {
            snprintf(msg, sizeof msg, "leave goes to the member that leaves: this is %s, not %s",
                     n->me->id, id);
            rc = RKV_ERR_INVAL;
        } else {
            rc = membership_leave(n, m->op == WIRE_MEMBER_LEAVE_FORCE, msg, sizeof msg);
        }
        if (rc != RKV_OK) {
            n->obj.len = 0;
            if (wire_encode_reply(&n->obj, m->id, ring_epoch(n->ring), rc, msg, NULL, 0, false,
                                  NULL, 0) == RKV_OK)
                node_send_client(n, token, n->obj.data, n->obj.len);
            return;
        }
        mp_write_cstr(&w, msg);
    } else {
        encode_stats(n, &w);
    }
    n->obj.len = 0;
    int rc = w.failed ? RKV_ERR_NOMEM : RKV_OK;
    if (rc == RKV_OK)
        rc = wire_encode_reply(&n->obj, m->id, ring_epoch(n->ring), RKV_OK, "", NULL, 0, false,
                               payload->data, payload->len);
    if (rc == RKV_OK)
        node_send_client(n, token, n->obj.data, n->obj.len);
}
