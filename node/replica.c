/*
 * replica.c: this node as a replica: serving reads of its local copies,
 * merging incoming copies into them, running its coordinator's local
 * updates, and the group commit that must come before any write is
 * acknowledged.
 *
 * Every write goes through the shared merge (object_sync / object_update),
 * and the store is read and written within one call, so writes to the same
 * key in one loop turn see each other (the store's batch serves reads).
 */
#include "node/node.h"

#include <poll.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

/* The limits for data that comes from other nodes: the hard ceilings for
 * what one sibling may hold (a peer with other settings is not refused),
 * our conflict mode, and merged objects up to twice object_bytes_max: two
 * replicas that each took writes up to the limit still converge. */
void node_peer_limits(const struct node *n, struct object_limits *lim)
{
    object_limits_default(lim);
    lim->conflict = n->limits.conflict;
    lim->object_bytes_max = 2 * n->cfg->object_bytes_max;
}

/* When the store may drop an object: expiry_grace_ms after its last
 * sibling expired (never if one does not). Until then it stays, unseen by
 * readers, so that a replica that missed the write that set the ttl is
 * repaired to it rather than bringing its older value back. */
static uint64_t store_expiry(const struct node *n, const struct object *o)
{
    uint64_t at = object_expiry(o);
    if (at == 0)
        return 0;
    return at > UINT64_MAX - n->cfg->expiry_grace_ms ? UINT64_MAX : at + n->cfg->expiry_grace_ms;
}

/* A write to the store failed. If this turn minted dots, they are gone
 * here but may be at other replicas already: never mint them again. */
static void store_failed(struct node *n)
{
    if (n->minted == 0)
        return;
    n->minted = 0;
    node_rotate_actor(n, "a store write failed after this turn made new versions");
}

/* Loads the local copy of key into n->local (empty if there is none). */
static int load_local(struct node *n, uint16_t part, const void *key, size_t key_len, bool *found)
{
    object_free(&n->local);
    object_init(&n->local);
    *found = false;
    int rc = store_get(n->store, part, key, key_len, &n->obj, NULL);
    if (rc == RKV_ERR_NOTFOUND)
        return RKV_OK;
    if (rc != RKV_OK)
        return rc;
    struct object_limits lim;
    node_peer_limits(n, &lim);
    rc = object_decode(n->obj.data, n->obj.len, &lim, &n->local);
    if (rc != RKV_OK) {
        RKV_ERROR("node", "stored object of partition %u does not decode: %s", part,
                  rkv_strerror(rc));
        return RKV_ERR_CORRUPT;
    }
    *found = true;
    return RKV_OK;
}

/* Encodes o into n->tmp and adds it to the store's open batch. */
static int store_object(struct node *n, uint16_t part, const void *key, size_t key_len,
                        const struct object *o)
{
    n->tmp.len = 0;
    int rc = object_encode(o, &n->tmp);
    if (rc != RKV_OK)
        return rc;
    rc = store_put(n->store, part, key, key_len, n->tmp.data, n->tmp.len, store_expiry(n, o));
    if (rc != RKV_OK)
        store_failed(n);
    else
        handoff_stored(n, part); /* a write for a partition we do not own goes on */
    return rc;
}

static int push_ack(struct node *n, const struct node_ack *ack)
{
    void *a = n->acks;
    if (rkv_grow(&a, &n->cap_acks, n->n_acks + 1, sizeof *n->acks) != RKV_OK)
        return RKV_ERR_NOMEM;
    n->acks = a;
    n->acks[n->n_acks++] = *ack;
    return RKV_OK;
}

void node_replica_get(struct node *n, const struct wire_msg *m, struct wire_msg *reply)
{
    n->stats.replica_gets++;
    memset(reply, 0, sizeof *reply);
    reply->type = WIRE_REPLICA_REPLY;
    reply->id = m->id;
    int rc = m->key.len > n->cfg->key_bytes_max
                 ? RKV_ERR_TOOBIG
                 : store_get(n->store, m->partition, m->key.p, m->key.len, &n->obj, NULL);
    reply->status = (uint32_t)rc;
    if (rc == RKV_OK) {
        reply->object.p = n->obj.data;
        reply->object.len = (uint32_t)n->obj.len;
    } else if (rc != RKV_ERR_NOTFOUND) {
        n->stats.replica_errors++;
    }
}

int node_replica_put(struct node *n, const struct wire_msg *m, const struct node_ack *ack)
{
    n->stats.replica_puts++;
    struct object_limits lim;
    node_peer_limits(n, &lim);
    int rc = m->key.len > n->cfg->key_bytes_max
                 ? RKV_ERR_TOOBIG
                 : object_decode(m->object.p, m->object.len, &lim, &n->incoming);
    bool found = false, changed = false;
    if (rc == RKV_OK)
        rc = load_local(n, m->partition, m->key.p, m->key.len, &found);
    if (rc == RKV_OK)
        rc = object_sync(&n->local, &n->incoming, &lim, &changed);
    if (rc == RKV_OK && (changed || !found))
        rc = store_object(n, m->partition, m->key.p, m->key.len, &n->local);
    if (rc == RKV_OK && ack->id != 0) /* id 0: a read repair, nobody waits for it */
        rc = push_ack(n, ack);
    if (rc != RKV_OK)
        n->stats.replica_errors++;
    return rc;
}

void node_local_update(struct node *n, const struct coord_update *u)
{
    bool found;
    const char *msg = NULL;
    char toobig[200];
    int rc = n->actor ? load_local(n, u->partition, u->key, u->key_len, &found) : RKV_ERR_FAILED;
    if (rc == RKV_ERR_FAILED)
        msg = "this node has no vector-clock actor (see its log)";
    const struct vclock *ctx = u->ctx;
    if (rc == RKV_OK && u->overwrite) {
        /* a blind overwrite supersedes what this copy holds */
        rc = object_context(&n->local, &n->overwrite_ctx);
        ctx = &n->overwrite_ctx;
    }
    if (rc == RKV_OK) {
        rc = object_update(&n->local, ctx, n->actor, u->now_ms, u->value, u->value_len,
                           u->expiry_ms, u->tomb, &n->limits);
        if (rc == RKV_ERR_TOOBIG) {
            snprintf(toobig, sizeof toobig,
                     "the key would have more than siblings_max (%u) "
                     "siblings or take more than object_bytes_max (%u bytes): read it and "
                     "write with its context to resolve its siblings",
                     n->cfg->siblings_max, n->cfg->object_bytes_max);
            msg = toobig;
        }
    }
    if (rc == RKV_OK) {
        n->minted++; /* before the store write: a failure of it must count it */
        rc = store_object(n, u->partition, u->key, u->key_len, &n->local);
        if (rc != RKV_OK)
            msg = store_errmsg(n->store);
    }
    uint64_t req = u->req;
    /* u points into the coordinator's state: done with it before calling in */
    coord_on_local_update(n->coord, n->now_ms, req, rc, msg, n->tmp.data, n->tmp.len);
    if (rc == RKV_OK && push_ack(n, &(struct node_ack){.to_self = true, .id = req}) != RKV_OK)
        coord_on_reply(
            n->coord, n->now_ms, n->self,
            &(struct wire_msg){.type = WIRE_REPLICA_REPLY, .id = req, .status = RKV_ERR_NOMEM});
}

/* Answers the first count acknowledgements with rc and drops them. */
static void send_acks(struct node *n, size_t count, int rc)
{
    for (size_t i = 0; i < count; i++) {
        struct node_ack *a = &n->acks[i];
        if (a->to_self) {
            struct wire_msg m = {.type = WIRE_REPLICA_REPLY, .id = a->id, .status = (uint32_t)rc};
            node_replica_reply(n, n->self, &m);
            continue;
        }
        n->buf.len = 0;
        if (wire_encode_replica_reply(&n->buf, a->id, ring_epoch(n->ring), rc, NULL, 0) == RKV_OK &&
            node_send_cluster(n, a->member, n->buf.data, n->buf.len) != RKV_OK)
            RKV_DEBUG("node", "acknowledgement to a peer could not be sent");
    }
    memmove(n->acks, n->acks + count, (n->n_acks - count) * sizeof *n->acks);
    n->n_acks -= count;
    n->n_ticketed = n->n_ticketed > count ? n->n_ticketed - count : 0;
}

/*
 * sync = "always": the turn's writes go to the store's sync thread
 * (store_commit_async) and their acknowledgements wait, in order, for
 * their ticket; the loop serves the next turn meanwhile and
 * node_acks_durable releases them. Other policies commit (and sync, when
 * due) in the turn and acknowledge at once.
 */
void node_group_commit(struct node *n)
{
    hints_commit(n); /* rare (a peer is down), so synchronous */
    if (n->cfg->sync == STORE_SYNC_ALWAYS) {
        uint64_t ticket;
        int rc = store_commit_async(n->store, &ticket);
        n->stats.commits++;
        if (rc != RKV_OK) {
            RKV_ERROR("node", "group commit of %zu writes failed: %s", n->n_acks - n->n_ticketed,
                      store_errmsg(n->store));
            store_failed(n);
            send_acks(n, n->n_acks, rc); /* earlier turns' too: the store is failed */
            return;
        }
        for (size_t i = n->n_ticketed; i < n->n_acks; i++)
            n->acks[i].ticket = ticket;
        n->n_ticketed = n->n_acks;
        /* versions made from here on are in later tickets */
        n->minted_unsynced += n->minted;
        n->minted = 0;
        /* writes that changed nothing (a replica already had the version)
         * are durable at once: no sync round will come to wake us for them */
        if (n->n_ticketed > 0)
            node_acks_durable(n);
        return;
    }
    int rc = store_commit(n->store);
    n->stats.commits++;
    if (rc != RKV_OK) {
        RKV_ERROR("node", "group commit of %zu writes failed: %s", n->n_acks,
                  store_errmsg(n->store));
        store_failed(n);
    }
    n->minted = 0;
    /* Acknowledge only now: every write of the turn is durable (or failed). */
    send_acks(n, n->n_acks, rc);
    store_tick(n->store);
}

void node_acks_wait(struct node *n, uint32_t deadline_ms)
{
    uint64_t until = rkv_clock_mono_ms() + deadline_ms;
    while (n->cfg->sync == STORE_SYNC_ALWAYS && n->n_ticketed > 0) {
        node_acks_durable(n);
        uint64_t now = rkv_clock_mono_ms();
        if (n->n_ticketed == 0 || now >= until)
            return;
        struct pollfd p = {.fd = store_sync_fd(n->store), .events = POLLIN};
        poll(&p, 1, (int)(until - now));
        store_sync_fd_clear(n->store);
    }
}

void node_acks_durable(struct node *n)
{
    if (n->cfg->sync != STORE_SYNC_ALWAYS)
        return;
    uint64_t done;
    int rc = store_synced(n->store, &done);
    if (rc != RKV_OK) {
        if (n->minted_unsynced || n->minted) {
            n->minted_unsynced = n->minted = 0;
            node_rotate_actor(n, "an fdatasync failed after this node made new versions");
        }
        RKV_ERROR("node", "fdatasync failed: %zu writes are not acknowledged", n->n_ticketed);
        send_acks(n, n->n_ticketed, RKV_ERR_IO);
        return;
    }
    size_t k = 0;
    while (k < n->n_ticketed && n->acks[k].ticket <= done)
        k++;
    if (k == n->n_ticketed)
        n->minted_unsynced = 0;
    if (k > 0)
        send_acks(n, k, RKV_OK);
}
