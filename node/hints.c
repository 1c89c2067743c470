/*
 * hints.c: hinted handoff. The writes this node holds for other members as
 * a fallback of sloppy quorum (coordinator.h), kept durably in a store of
 * their own (<data_dir>/hints), bounded in size, and handed to their owner
 * once it is alive again.
 *
 * A hint is one key of the hint store:
 *
 *   offset  size  field
 *   0       1     L, the owner's id length (1..RKV_NODE_ID_BYTES_MAX)
 *   1       L     the owner's id
 *   1+L     2     the key's ring partition, big-endian
 *   3+L     ...   the key
 *
 * and its value is the object (object.h) the owner has not stored yet. The
 * store's own partition of a hint is a hash of the owner's id, so one
 * owner's hints are listed without the others' (two owners that share a
 * slot are told apart by the key). A second hint for the same key merges
 * into the first (object_sync): a hint store never holds two copies of one
 * key for one owner.
 *
 * Taking a hint: the REPLICA_PUT is merged into the hint store's batch and
 * acknowledged after hints_commit made it durable (end of the loop turn), so
 * an acknowledged hint survives a crash like any write. A hint that would
 * take the live bytes over hints.bytes_max is refused with RKV_ERR_FULL,
 * which the coordinator reports in its quorum error: never a silent drop.
 *
 * Handing over: every HINTS_ROUND_MS, and as soon as a batch is answered,
 * for each owner that is a member, not this node, alive by the failure
 * detector and without a batch in flight, up to HINTS_BATCH_MAX hints
 * (HINTS_BATCH_BYTES) are sent as ordinary
 * REPLICA_PUTs, paced by hints.replay_bytes_per_sec (a token bucket of one
 * second); an owner that fails a hint (or cannot be sent to) is left alone
 * for HINTS_RETRY_MS. Their ids carry COORD_ID_FREE_BIT, so the replies come here and
 * not to the coordinator. The owner acknowledges after its own group
 * commit; only then is the hint deleted, and only if it is still the
 * version sent (its store sequence number is unchanged): a hint that took a
 * newer write meanwhile stays for the next round. A batch not answered in
 * HINTS_BATCH_TIMEOUT_MS is given up; its hints stay. A listing that
 * reaches the end of the owner's slot starts again from the beginning, so a
 * hint that failed is retried on a later round.
 *
 * Rehoming: hints for a member that left or was removed, which will never
 * take them, and every hint while this node leaves, go the same way to
 * this node itself: merged into its own store like a replica write and
 * deleted from the hint store after that write's group commit. A key of a
 * partition this node does not own is then a stray for ownership handoff
 * (handoff.c), which streams it to the partition's owners and drops it
 * once they all have it. Hints for an id never heard of are kept and
 * counted, never sent.
 */
#include "node/node.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#define HINTS_BATCH_MAX 64
#define HINTS_BATCH_BYTES (1u << 20)
#define HINTS_ROUND_MS 100
#define HINTS_BATCH_TIMEOUT_MS 10000
#define HINTS_EXAMINE_MAX 4096 /* keys of a slot looked at per batch */
#define HINTS_RETRY_MS 1000 /* an owner that failed a hint is left alone this long */
#define HINTS_TARGETS_MAX RKV_NODES_MAX /* owners with hints (ids ever seen) */
#define HINT_KEY_HEAD_MAX (1 + RKV_NODE_ID_BYTES_MAX + 2)

/* A hint sent in the batch in flight. */
struct hint_sent {
    uint16_t partition;   /* ring partition */
    uint64_t seq;         /* the hint store's sequence number when sent */
    bool done;
    struct rkv_buf key;   /* the hint key (with the owner prefix) */
};

struct hint_target {
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    uint16_t slot;
    uint64_t count, bytes;       /* pending hints, their key and value bytes */
    uint64_t cursor;             /* listing position in the slot */
    uint32_t gen;                /* names the batch in flight in reply ids */
    uint32_t n_sent, inflight;
    uint32_t to;                 /* the member the batch in flight went to (self: rehomed) */
    uint64_t sent_ms;
    uint64_t retry_ms;           /* no batch before this (after a failure) */
    uint64_t drain_start_ms;     /* first send since count was last 0 */
    uint64_t drain_delivered;    /* delivered since then */
    double tokens;               /* bytes it may send now */
    uint64_t refill_ms;
    struct hint_sent sent[HINTS_BATCH_MAX];
};

/* A hint waiting for the hint store's commit before it is acknowledged. */
struct hint_ack {
    uint32_t member;
    uint64_t id;
};

struct hints {
    struct store *store;
    struct hint_target *targets;
    size_t n_targets, cap_targets;
    uint64_t bytes;              /* live bytes of all hints */
    uint64_t next_ms;            /* next handoff round */
    bool dirty;                  /* the store's batch holds writes */
    struct hint_ack *acks;
    size_t n_acks, cap_acks;
    struct rkv_buf key, value, enc;
    struct object held;          /* scratch: the hint already stored */
    struct node_hints_stats stats;
};

/* ---- keys and owners ---- */

static uint16_t owner_slot(const char *id, size_t len)
{
    return (uint16_t)(ring_hash_key(id, len) & 0xffffu);
}

/* The hint key of (owner, partition, key) into h->key. */
static int hint_key(struct hints *h, const char *owner, size_t owner_len, uint16_t partition,
                    const void *key, size_t key_len)
{
    if (owner_len == 0 || owner_len > RKV_NODE_ID_BYTES_MAX ||
        key_len > RKV_KEY_BYTES_MAX - HINT_KEY_HEAD_MAX)
        return RKV_ERR_TOOBIG;
    uint8_t head[HINT_KEY_HEAD_MAX];
    head[0] = (uint8_t)owner_len;
    memcpy(head + 1, owner, owner_len);
    head[1 + owner_len] = (uint8_t)(partition >> 8);
    head[2 + owner_len] = (uint8_t)partition;
    h->key.len = 0;
    int rc = rkv_buf_append(&h->key, head, 3 + owner_len);
    return rc == RKV_OK ? rkv_buf_append(&h->key, key, key_len) : rc;
}

/* Splits a hint key; false if it is not one (a damaged store). */
static bool hint_key_parse(const uint8_t *k, size_t len, const char **owner, size_t *owner_len,
                           uint16_t *partition, const uint8_t **key, size_t *key_len)
{
    if (len < 1 || k[0] == 0 || k[0] > RKV_NODE_ID_BYTES_MAX || len < 3u + k[0])
        return false;
    *owner = (const char *)k + 1;
    *owner_len = k[0];
    *partition = (uint16_t)(k[1 + k[0]] << 8 | k[2 + k[0]]);
    *key = k + 3 + k[0];
    *key_len = len - 3 - k[0];
    return true;
}

static struct hint_target *target_find(struct hints *h, const char *id, size_t len)
{
    for (uint32_t i = 0; i < h->n_targets; i++)
        if (strlen(h->targets[i].id) == len && memcmp(h->targets[i].id, id, len) == 0)
            return &h->targets[i];
    return NULL;
}

static struct hint_target *target_get(struct hints *h, const char *id, size_t len)
{
    struct hint_target *t = target_find(h, id, len);
    if (t != NULL)
        return t;
    if (h->n_targets >= HINTS_TARGETS_MAX || len == 0 || len > RKV_NODE_ID_BYTES_MAX)
        return NULL;
    void *p = h->targets;
    if (rkv_grow(&p, &h->cap_targets, h->n_targets + 1, sizeof *h->targets) != RKV_OK)
        return NULL;
    h->targets = p;
    t = &h->targets[h->n_targets++];
    memset(t, 0, sizeof *t);
    memcpy(t->id, id, len);
    t->slot = owner_slot(id, len);
    return t;
}

/* ---- open and close ---- */

struct count_ctx {
    struct hints *h;
    int rc;
};

static int count_one(void *arg, const void *key, size_t key_len, const struct store_meta *meta)
{
    struct count_ctx *x = arg;
    const char *owner;
    size_t owner_len, k_len;
    uint16_t part;
    const uint8_t *k;
    if (!hint_key_parse(key, key_len, &owner, &owner_len, &part, &k, &k_len))
        return 0; /* not a hint: never sent, never counted */
    struct hint_target *t = target_get(x->h, owner, owner_len);
    if (t == NULL) {
        x->rc = RKV_ERR_NOMEM;
        return 1;
    }
    t->count++;
    t->bytes += key_len + meta->value_len;
    x->h->bytes += key_len + meta->value_len;
    return 0;
}

/* Counts every owner's hints from the store itself: at open, and after a
 * commit that failed (the counters followed writes it rolled back). */
static int recount(struct hints *h)
{
    h->bytes = 0;
    for (size_t i = 0; i < h->n_targets; i++)
        h->targets[i].count = h->targets[i].bytes = 0;
    struct count_ctx x = {.h = h, .rc = RKV_OK};
    for (uint32_t slot = 0; slot <= 0xffff && x.rc == RKV_OK; slot++) {
        uint64_t cursor = 0;
        while (cursor != STORE_CURSOR_END && x.rc == RKV_OK) {
            int rc = store_list(h->store, (uint16_t)slot, &cursor, 1024, count_one, &x);
            if (rc != RKV_OK && x.rc == RKV_OK)
                x.rc = rc;
        }
    }
    return x.rc;
}

int hints_open(struct node *n, struct rkv_error *err)
{
    struct hints *h = rkv_calloc(1, sizeof *h);
    if (h == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "hints: out of memory");
    n->hints = h;
    object_init(&h->held);
    char dir[CONFIG_PATH_BYTES + 16];
    snprintf(dir, sizeof dir, "%s/hints", n->me->data_dir);
    struct store_options o;
    store_options_default(&o);
    o.sync = (enum store_sync)n->cfg->sync;
    o.sync_interval_ms = n->cfg->sync_interval_ms;
    o.file_bytes_max = n->cfg->file_bytes_max;
    o.key_bytes_max = RKV_KEY_BYTES_MAX;
    o.value_bytes_max = 2 * n->cfg->object_bytes_max;
    o.break_stale_lock = true; /* as for the main store (node.c) */
    int rc = store_open(dir, &o, &h->store, err);
    if (rc != RKV_OK)
        return rc;
    /* count what a previous run left, owner by owner */
    rc = recount(h);
    if (rc != RKV_OK)
        return rkv_error_set(err, rc, "hints: cannot count the hints in %s: %s", dir,
                             rkv_strerror(rc));
    uint64_t total = 0;
    for (uint32_t i = 0; i < h->n_targets; i++)
        total += h->targets[i].count;
    if (total)
        RKV_INFO("node", "%s: %llu hints for %zu owners to hand over (%llu bytes)", n->me->id,
                 (unsigned long long)total, h->n_targets, (unsigned long long)h->bytes);
    return RKV_OK;
}

void hints_close(struct node *n)
{
    struct hints *h = n->hints;
    if (h == NULL)
        return;
    if (h->store && store_close(h->store) != RKV_OK)
        RKV_ERROR("node", "hints: closing the hint store failed");
    for (uint32_t i = 0; i < h->n_targets; i++)
        for (uint32_t k = 0; k < HINTS_BATCH_MAX; k++)
            rkv_buf_free(&h->targets[i].sent[k].key);
    rkv_free(h->targets);
    rkv_free(h->acks);
    rkv_buf_free(&h->key);
    rkv_buf_free(&h->value);
    rkv_buf_free(&h->enc);
    object_free(&h->held);
    rkv_free(h);
    n->hints = NULL;
}

/* ---- taking a hint ---- */

int hints_put(struct node *n, uint32_t from, const struct wire_msg *m)
{
    struct hints *h = n->hints;
    if (m->hint_for.len == 0 || m->hint_for.len > RKV_NODE_ID_BYTES_MAX)
        return RKV_ERR_INVAL;
    char owner[RKV_NODE_ID_BYTES_MAX + 1];
    memcpy(owner, m->hint_for.p, m->hint_for.len);
    owner[m->hint_for.len] = '\0';
    int member = node_peer_find(n, owner, strlen(owner));
    if (member < 0 || strlen(owner) != m->hint_for.len)
        return RKV_ERR_INVAL; /* a hint for a stranger (the rings differ), or a forged id */
    if ((uint32_t)member == n->self) /* we are the owner: an ordinary write */
        return node_replica_put(n, m, &(struct node_ack){.id = m->id, .member = from});
    n->stats.replica_puts++;
    struct object_limits lim;
    node_peer_limits(n, &lim);
    int rc = m->key.len > n->cfg->key_bytes_max
                 ? RKV_ERR_TOOBIG
                 : object_decode(m->object.p, m->object.len, &lim, &n->incoming);
    if (rc == RKV_OK)
        rc = hint_key(h, owner, m->hint_for.len, m->partition, m->key.p, m->key.len);
    struct store_meta meta = {0};
    uint16_t slot = owner_slot(owner, m->hint_for.len);
    bool found = false, changed = true;
    if (rc == RKV_OK) {
        rc = store_get(h->store, slot, h->key.data, h->key.len, &h->value, &meta);
        found = rc == RKV_OK;
        if (rc == RKV_ERR_NOTFOUND)
            rc = RKV_OK;
    }
    if (rc == RKV_OK && found) {
        rc = object_decode(h->value.data, h->value.len, &lim, &h->held);
        if (rc == RKV_OK)
            rc = object_sync(&h->held, &n->incoming, &lim, &changed);
    }
    const struct object *keep = found ? &h->held : &n->incoming;
    h->enc.len = 0;
    if (rc == RKV_OK && changed)
        rc = object_encode(keep, &h->enc);
    uint64_t old_bytes = found ? h->key.len + meta.value_len : 0;
    uint64_t new_bytes = h->key.len + h->enc.len;
    if (rc == RKV_OK && changed && new_bytes > old_bytes &&
        h->bytes - old_bytes + new_bytes > n->cfg->hints_bytes_max) {
        if (h->stats.refused_full++ == 0 || h->stats.refused_full % 1000 == 0)
            RKV_WARN("node", "%s: hint store full (%llu of %llu bytes): refusing hints "
                     "(%llu so far)", n->me->id, (unsigned long long)h->bytes,
                     (unsigned long long)n->cfg->hints_bytes_max,
                     (unsigned long long)h->stats.refused_full);
        rc = RKV_ERR_FULL;
    }
    struct hint_target *t = rc == RKV_OK ? target_get(h, owner, m->hint_for.len) : NULL;
    if (rc == RKV_OK && t == NULL)
        rc = RKV_ERR_NOMEM;
    if (rc == RKV_OK && changed) {
        rc = store_put(h->store, slot, h->key.data, h->key.len, h->enc.data, h->enc.len, 0);
        if (rc == RKV_OK) {
            h->dirty = true;
            h->bytes = h->bytes - old_bytes + new_bytes;
            t->bytes = t->bytes - old_bytes + new_bytes;
            t->count += !found;
            h->stats.stored++;
        }
    }
    if (rc == RKV_OK && m->id != 0) {
        void *a = h->acks;
        if (rkv_grow(&a, &h->cap_acks, h->n_acks + 1, sizeof *h->acks) != RKV_OK)
            rc = RKV_ERR_NOMEM;
        else {
            h->acks = a;
            h->acks[h->n_acks++] = (struct hint_ack){.member = from, .id = m->id};
        }
    }
    if (rc != RKV_OK)
        n->stats.replica_errors++;
    return rc;
}

void hints_commit(struct node *n)
{
    struct hints *h = n->hints;
    int rc = RKV_OK;
    if (h->dirty) {
        rc = store_commit(h->store);
        h->dirty = false;
        if (rc != RKV_OK) {
            RKV_ERROR("node", "%s: hint store commit failed: %s", n->me->id,
                      store_errmsg(h->store));
            if (recount(h) != RKV_OK)
                RKV_ERROR("node", "%s: hint store: cannot recount its hints", n->me->id);
        }
    }
    store_tick(h->store);
    for (size_t i = 0; i < h->n_acks; i++) {
        n->buf.len = 0;
        if (wire_encode_replica_reply(&n->buf, h->acks[i].id, ring_epoch(n->ring), rc, NULL, 0) ==
            RKV_OK)
            node_send_cluster(n, h->acks[i].member, n->buf.data, n->buf.len);
    }
    h->n_acks = 0;
    if (h->cap_acks > 4096) {
        rkv_free(h->acks);
        h->acks = NULL;
        h->cap_acks = 0;
    }
}

/* ---- handing over ---- */

static uint64_t reply_id(uint32_t target, uint32_t gen, uint32_t k)
{
    return COORD_ID_FREE_BIT | (uint64_t)target << 32 | (uint64_t)(gen & 0xffffu) << 16 | k;
}

struct batch_ctx {
    struct hints *h;
    struct hint_target *t;
    uint64_t bytes;
    uint32_t examined; /* keys of the slot looked at (other owners' too) */
    int rc;
};

static int collect_one(void *arg, const void *key, size_t key_len, const struct store_meta *meta)
{
    struct batch_ctx *x = arg;
    struct hint_target *t = x->t;
    const char *owner;
    size_t owner_len, k_len;
    uint16_t part;
    const uint8_t *k;
    if (++x->examined >= HINTS_EXAMINE_MAX)
        return 1; /* a slot shared with another owner's many hints: go on next round */
    if (t->n_sent >= HINTS_BATCH_MAX ||
        !hint_key_parse(key, key_len, &owner, &owner_len, &part, &k, &k_len) ||
        owner_len != strlen(t->id) || memcmp(owner, t->id, owner_len) != 0)
        return 0;
    struct hint_sent *s = &t->sent[t->n_sent];
    if (rkv_buf_set(&s->key, key, key_len) != RKV_OK) {
        x->rc = RKV_ERR_NOMEM;
        return 1;
    }
    s->partition = part;
    s->seq = meta->seq;
    s->done = false;
    t->n_sent++;
    x->bytes += key_len + meta->value_len;
    return x->bytes >= HINTS_BATCH_BYTES || t->n_sent >= HINTS_BATCH_MAX; /* full: stop */
}

/* Hint k of t's batch, for member self: merged into this node's own store
 * like a replica write (its acknowledgement comes back through
 * node_replica_reply after the group commit). If this node does not own
 * the partition, ownership handoff takes it to the owners from there. */
static int rehome(struct node *n, uint64_t id, uint16_t part, const uint8_t *key, size_t key_len,
                  const struct rkv_buf *object)
{
    struct wire_msg m = {
        .type = WIRE_REPLICA_PUT,
        .id = id,
        .epoch = ring_epoch(n->ring),
        .partition = part,
        .key = {.p = key, .len = (uint32_t)key_len},
        .object = {.p = object->data, .len = (uint32_t)object->len},
    };
    return node_replica_put(n, &m, &(struct node_ack){.to_self = true, .id = id});
}

/* Sends the next batch of t's hints to member (self: rehomes them). */
static void send_batch(struct node *n, uint32_t ti, uint32_t member)
{
    struct hints *h = n->hints;
    struct hint_target *t = &h->targets[ti];
    struct batch_ctx x = {.h = h, .t = t, .rc = RKV_OK};
    t->n_sent = 0;
    while (t->n_sent < HINTS_BATCH_MAX && x.bytes < HINTS_BATCH_BYTES && x.rc == RKV_OK &&
           x.examined < HINTS_EXAMINE_MAX) {
        if (store_list(h->store, t->slot, &t->cursor, HINTS_BATCH_MAX, collect_one, &x) != RKV_OK)
            break; /* full, examined enough, or an error: the cursor is kept */
        if (t->cursor == STORE_CURSOR_END) {
            t->cursor = 0; /* from the beginning next time: failed hints are retried */
            break;
        }
    }
    t->gen++;
    t->inflight = 0;
    t->to = member;
    t->sent_ms = rkv_clock_mono_ms();
    if (t->drain_start_ms == 0) {
        t->drain_start_ms = t->sent_ms;
        t->drain_delivered = 0;
    }
    for (uint32_t k = 0; k < t->n_sent; k++) {
        struct hint_sent *s = &t->sent[k];
        const char *owner;
        size_t owner_len, k_len;
        uint16_t part;
        const uint8_t *key;
        hint_key_parse(s->key.data, s->key.len, &owner, &owner_len, &part, &key, &k_len);
        if (store_get(h->store, t->slot, s->key.data, s->key.len, &h->value, NULL) != RKV_OK) {
            s->done = true; /* gone meanwhile, or unreadable: the count says so */
            continue;
        }
        uint64_t id = reply_id(ti, t->gen, k);
        if (member == n->self) {
            if (rehome(n, id, part, key, k_len, &h->value) != RKV_OK) {
                s->done = true;
                h->stats.failed++;
                t->retry_ms = rkv_clock_mono_ms() + HINTS_RETRY_MS;
                continue;
            }
        } else {
            n->buf.len = 0;
            if (wire_encode_replica_put(&n->buf, id, ring_epoch(n->ring), part, key, k_len,
                                        h->value.data, h->value.len) != RKV_OK ||
                node_send_peer(n, member, n->buf.data, n->buf.len) != RKV_OK) {
                s->done = true;
                continue;
            }
        }
        t->tokens -= (double)(s->key.len + h->value.len);
        t->inflight++;
        h->stats.sent++;
    }
}

void hints_turn(struct node *n)
{
    struct hints *h = n->hints;
    uint64_t now = rkv_clock_mono_ms(); /* a wall-clock step must not stall handoff */
    if (now < h->next_ms)
        return;
    h->next_ms = now + HINTS_ROUND_MS;
    double rate = n->cfg->hints_replay_bytes_per_sec;
    for (uint32_t i = 0; i < h->n_targets; i++) {
        struct hint_target *t = &h->targets[i];
        if (t->inflight && now - t->sent_ms > HINTS_BATCH_TIMEOUT_MS) {
            h->stats.timeouts++;
            t->inflight = 0; /* given up: its hints stay for a later round */
        }
        if (t->count == 0 || t->inflight || now < t->retry_ms)
            continue;
        int member;
        /* an owner that left or was removed never takes its hints, and a
         * leaving node cannot wait for anyone: rehome them */
        if (n->leaving || membership_gone(n, t->id)) {
            member = (int)n->self;
        } else {
            member = node_peer_find(n, t->id, strlen(t->id));
            if (member < 0 || (uint32_t)member == n->self || !membership_alive(n, (uint32_t)member))
                continue;
        }
        /* a token bucket of one second's worth */
        if (t->refill_ms == 0)
            t->tokens = rate;
        else if (now > t->refill_ms)
            t->tokens += rate * (double)(now - t->refill_ms) / 1000.0;
        if (t->tokens > rate)
            t->tokens = rate;
        t->refill_ms = now;
        if (t->tokens > 0)
            send_batch(n, i, (uint32_t)member);
    }
}

bool hints_idle(const struct node *n)
{
    const struct hints *h = n->hints;
    for (uint32_t i = 0; i < h->n_targets; i++)
        if (h->targets[i].count)
            return false;
    return true;
}

uint64_t hints_next_ms(const struct node *n)
{
    return hints_idle(n) ? UINT64_MAX : n->hints->next_ms;
}

/* The owner answered hint k of the batch: delete it if it is still the
 * version sent. */
static void delivered(struct node *n, struct hint_target *t, struct hint_sent *s)
{
    struct hints *h = n->hints;
    struct store_meta meta;
    if (store_get(h->store, t->slot, s->key.data, s->key.len, &h->value, &meta) != RKV_OK ||
        meta.seq != s->seq)
        return; /* a newer hint merged in meanwhile: it goes next round */
    if (store_del(h->store, t->slot, s->key.data, s->key.len) != RKV_OK)
        return;
    h->dirty = true;
    uint64_t bytes = s->key.len + meta.value_len;
    h->bytes -= bytes;
    t->bytes -= bytes;
    t->count--;
    t->drain_delivered++;
    h->stats.delivered++;
    if (t->to == n->self)
        h->stats.rehomed++;
    if (t->count == 0) { /* handed over: how long it took, for the statistics */
        h->stats.last_drain_ms = rkv_clock_mono_ms() - t->drain_start_ms;
        h->stats.last_drain_hints = t->drain_delivered;
        t->drain_start_ms = 0;
    }
}

void hints_on_reply(struct node *n, uint32_t member, const struct wire_msg *m)
{
    struct hints *h = n->hints;
    uint32_t ti = (uint32_t)(m->id >> 32) & 0x7fffffffu;
    uint32_t gen = (uint32_t)(m->id >> 16) & 0xffffu, k = (uint32_t)m->id & 0xffffu;
    if (ti >= h->n_targets)
        return;
    struct hint_target *t = &h->targets[ti];
    if ((t->gen & 0xffffu) != gen || k >= t->n_sent || t->sent[k].done || t->inflight == 0 ||
        t->to != member)
        return; /* late, duplicated, or not from where the batch went */
    t->sent[k].done = true;
    t->inflight--;
    if (m->status == RKV_OK) {
        delivered(n, t, &t->sent[k]);
    } else {
        h->stats.failed++;
        t->retry_ms = rkv_clock_mono_ms() + HINTS_RETRY_MS; /* down, or failing: not at once */
        t->drain_start_ms = 0; /* the handoff's timing starts at the next batch */
    }
    if (t->inflight == 0 && rkv_clock_mono_ms() >= t->retry_ms)
        h->next_ms = 0; /* the batch went through: the next one may go at once */
}

void hints_stats(const struct node *n, struct node_hints_stats *st, uint64_t *pending,
                 uint64_t *bytes)
{
    const struct hints *h = n->hints;
    *st = h->stats;
    *pending = 0;
    for (uint32_t i = 0; i < h->n_targets; i++)
        *pending += h->targets[i].count;
    *bytes = h->bytes;
}

uint64_t hints_pending_for(const struct node *n, const char *id)
{
    struct hint_target *t = target_find(n->hints, id, strlen(id));
    return t ? t->count : 0;
}

uint32_t hints_owners(const struct node *n)
{
    return (uint32_t)n->hints->n_targets;
}

const char *hints_owner(const struct node *n, uint32_t i)
{
    return n->hints->targets[i].id;
}
