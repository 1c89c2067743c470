/*
 * membership.c: the node's side of gossip/gossip.h. For now gossip only
 * tells a node which peers are alive: heartbeats spread by gossip feed a
 * phi-accrual detector per peer, whose verdict shows in the node's
 * statistics (peers_suspect, suspect.<id>), steers the coordinator's sloppy
 * quorum (a suspect owner's writes go to a fallback, coord_set_down, every
 * MEMBERSHIP_DOWN_REFRESH_MS) and decides when hints are handed over
 * (hints.c). The member list still comes from cluster.toml
 * (docs/architecture.md, "Not built yet").
 *
 * Gossip messages travel as WIRE_GOSSIP frames in the peer batches, like
 * replica requests, and come in on the cluster port, where the transport
 * has authenticated the sender (with CurveZMQ, its key; the routing id is
 * its member id): a message that names another sender is refused. Gossip
 * runs on the monotonic clock, so a wall-clock jump cannot make every peer
 * look silent.
 */
#include "node/node.h"

#include <math.h>
#include <stdio.h>
#include <sys/random.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "gossip/gossip.h"

#define MEMBERSHIP_DOWN_REFRESH_MS 100
/* A peer this node has not heard from since it started counts as down for
 * sloppy quorum only after this long: the detector needs a few heartbeats
 * before it knows anything. */
#define MEMBERSHIP_STARTUP_GRACE_MS 10000

int membership_open(struct node *n, struct rkv_error *err)
{
    uint32_t members = ring_member_count(n->ring);
    const char **seeds = rkv_calloc(members ? members : 1, sizeof *seeds);
    if (seeds == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "membership: out of memory");
    for (uint32_t i = 0; i < members; i++)
        seeds[i] = ring_member_id(n->ring, i);
    struct gossip_options o = {
        .cluster = n->cfg->name,
        .seeds = seeds,
        .n_seeds = members,
        .interval_ms = NODE_GOSSIP_INTERVAL_MS,
        .message_bytes_max = n->cfg->message_bytes_max,
    };
    struct gossip_node *self = &o.self;
    snprintf(self->id, sizeof self->id, "%s", n->me->id);
    snprintf(self->host, sizeof self->host, "%s", n->me->host);
    self->client_port = n->me->client_port;
    self->cluster_port = n->me->cluster_port;
    self->vnodes = n->cfg->vnodes;
    /* new on every start, and greater than the last one's: the wall clock */
    self->incarnation = rkv_clock_realtime_ms();
    self->status = GOSSIP_UP;
    if (getrandom(&o.rng_seed, sizeof o.rng_seed, 0) != sizeof o.rng_seed)
        o.rng_seed = self->incarnation ^ XXH3_64bits(n->me->id, strlen(n->me->id));
    int rc = gossip_new(&o, &n->gossip, err);
    rkv_free(seeds);
    return rc;
}

void membership_close(struct node *n)
{
    gossip_free(n->gossip);
    n->gossip = NULL;
}

/* Sends what gossip queued, each message to the member it names. */
static void send_outbox(struct node *n)
{
    size_t count;
    struct gossip_out *out = gossip_outbox(n->gossip, &count);
    for (size_t i = 0; i < count; i++) {
        int member = node_peer_find(n, out[i].to, strlen(out[i].to));
        if (member < 0 || (uint32_t)member == n->self)
            continue;
        n->buf.len = 0;
        if (wire_encode_wrapped(&n->buf, WIRE_GOSSIP, 0, ring_epoch(n->ring), out[i].msg.data,
                                out[i].msg.len) != RKV_OK)
            continue;
        /* to a member whose address is not known yet (one that is joining
         * and spoke first), through the connection it made to us */
        if (n->peer[member]->sock)
            node_send_peer(n, (uint32_t)member, n->buf.data, n->buf.len);
        else
            node_send_cluster(n, (uint32_t)member, n->buf.data, n->buf.len);
    }
    gossip_outbox_clear(n->gossip);
}

/* Tells the coordinator who is down (suspect), for sloppy quorum. */
static void refresh_down(struct node *n, uint64_t now)
{
    if (now - n->down_checked_ms < MEMBERSHIP_DOWN_REFRESH_MS)
        return;
    n->down_checked_ms = now;
    for (uint32_t i = 0; i < n->n_peers; i++) {
        bool down = !membership_alive(n, i);
        if (down && isinf(gossip_phi(n->gossip, n->peer[i]->id, now)))
            down = now - n->started_ms > MEMBERSHIP_STARTUP_GRACE_MS; /* never heard yet */
        coord_set_down(n->coord, i, down);
    }
}

void membership_turn(struct node *n)
{
    if (n->gossip == NULL)
        return;
    uint64_t now = rkv_clock_mono_ms();
    if (now >= gossip_next_deadline(n->gossip))
        gossip_tick(n->gossip, now);
    send_outbox(n);
    refresh_down(n, now);
}

uint64_t membership_next_ms(const struct node *n)
{
    return n->gossip ? gossip_next_deadline(n->gossip) : UINT64_MAX;
}

void membership_on_message(struct node *n, uint32_t member, const struct wire_msg *m)
{
    if (n->gossip == NULL)
        return;
    int rc = gossip_on_message_from(n->gossip, rkv_clock_mono_ms(), n->peer[member]->id,
                                    m->inner.p, m->inner.len);
    if (rc != RKV_OK && n->stats.gossip_refused++ == 0)
        RKV_WARN("node", "%s: %s (refusing such gossip; logged once)", n->me->id,
                 gossip_errmsg(n->gossip));
    send_outbox(n); /* the answer, if any */
}

bool membership_alive(const struct node *n, uint32_t member)
{
    return n->gossip == NULL || member == n->self ||
           gossip_alive(n->gossip, n->peer[member]->id, rkv_clock_mono_ms());
}

uint32_t membership_suspects(const struct node *n)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < n->n_peers; i++)
        count += !membership_alive(n, i);
    return count;
}
