/*
 * handoff.c: ownership handoff. After the ring changes, every partition
 * whose preference list gained members is streamed to them, and every
 * partition this node holds but no longer owns is streamed to all its
 * owners and then dropped here, while requests go on.
 *
 * Jobs. handoff_ring_changed compares the old and the new preference list
 * of each partition and makes a job (partition, targets, drop):
 *   - this node is no owner of p any more and holds keys of it: targets =
 *     every new owner, drop = true;
 *   - it stays (or was) an owner and p gained owners: targets = the new
 *     ones, drop = false.
 * A job already queued for p keeps its targets that are still owners. The
 * jobs are kept in <data_dir>/HANDOFF (written whole: tmp, fsync, rename),
 * so a handoff interrupted by a crash or a restart resumes; at start, and
 * after each ring change, any partition with keys here and no ownership
 * gets a drop job too (a write taken while the rings disagreed, or a
 * crash before HANDOFF was written).
 *
 * Streaming. One job at a time, in batches of HANDOFF_BATCH_MAX keys or
 * HANDOFF_BATCH_BYTES (the next batch as soon as every target acknowledged
 * the last), paced by cluster.handoff_bytes_per_sec (a token bucket); each
 * key goes to each target that is alive as a REPLICA_PUT of the stored
 * object, which the target merges with its own copy like any replica write
 * and acknowledges after its group commit. A target that is down or fails
 * holds the job back (1 s back-off); a batch unanswered for
 * HANDOFF_BATCH_TIMEOUT_MS is given up and sent again later. A job is done
 * when a whole pass over the partition went to every target.
 *
 * Dropping. In a drop job a key is deleted here once every target has
 * acknowledged it and only if it is still the version that was sent (the
 * store's sequence number): a write that came in meanwhile is sent in the
 * next pass. The job ends when a pass finds the partition empty.
 *
 * Replies are routed here by their ids: COORD_ID_FREE_BIT and
 * HANDOFF_ID_BIT (hints use COORD_ID_FREE_BIT alone).
 */
#include "node/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#define HANDOFF_FILE "HANDOFF"
#define HANDOFF_MAGIC "ringkv-handoff 1"
#define HANDOFF_BATCH_MAX 256 /* reply ids give a key of the batch 8 bits */
#define HANDOFF_BATCH_BYTES (1u << 20)
#define HANDOFF_ROUND_MS 100
#define HANDOFF_RETRY_MS 1000
#define HANDOFF_BATCH_TIMEOUT_MS 10000
#define HANDOFF_SCAN_MS 1000 /* how often partitions not owned here are checked for keys */

struct handoff_job {
    uint16_t partition;
    bool drop;
    bool touched;        /* a key of it was stored during this pass (maybe not committed
                            yet, so not listed): the job needs another pass */
    uint32_t n_targets;
    char targets[RKV_REPLICAS_MAX][RKV_NODE_ID_BYTES_MAX + 1];
};

struct handoff_sent {
    struct rkv_buf key;
    uint64_t seq;
    uint32_t acked;  /* bit t: target t acknowledged */
    bool failed;
};

struct handoff {
    struct handoff_job *jobs; /* jobs[0] is the one streaming */
    size_t n_jobs, cap_jobs;
    uint64_t cursor;          /* in jobs[0]'s partition */
    bool pass_failed;         /* a key of this pass did not reach every target */
    bool pass_kept;           /* drop: a key of this pass changed and was kept */
    uint32_t targets_slot[RKV_REPLICAS_MAX];
    struct handoff_sent sent[HANDOFF_BATCH_MAX];
    uint32_t n_sent, inflight, gen;
    uint64_t sent_ms, next_ms, retry_ms;
    double tokens;
    uint64_t refill_ms;
    struct rkv_buf value;
    struct rkv_buf text;      /* scratch: HANDOFF being written */
    struct node_handoff_stats stats;
    uint64_t job_start_ms;
    uint64_t scan_ms;         /* the last scan for strays */
    uint64_t busy_since_ms;   /* jobs pending since (0: none) */
};

/* ---- the saved job list ---- */

static void jobs_save(struct node *n)
{
    struct handoff *h = n->handoff;
    struct rkv_buf *b = &h->text;
    b->len = 0;
    char line[32 + RKV_REPLICAS_MAX * (RKV_NODE_ID_BYTES_MAX + 1)];
    static const char head[] = HANDOFF_MAGIC "\n# partition drop|copy target...\n";
    int rc = rkv_buf_append(b, head, sizeof head - 1);
    for (size_t i = 0; rc == RKV_OK && i < h->n_jobs; i++) {
        const struct handoff_job *j = &h->jobs[i];
        int len = snprintf(line, sizeof line, "%u %s", j->partition, j->drop ? "drop" : "copy");
        for (uint32_t t = 0; t < j->n_targets; t++)
            len += snprintf(line + len, sizeof line - (size_t)len, " %s", j->targets[t]);
        line[len++] = '\n';
        rc = rkv_buf_append(b, line, (size_t)len);
    }
    if (rc != RKV_OK || node_save_file(n, HANDOFF_FILE, b->data, b->len) != 0)
        RKV_ERROR("node", "cannot write %s/%s: %s", n->me->data_dir, HANDOFF_FILE,
                  rc != RKV_OK ? rkv_strerror(rc) : strerror(errno));
}

static struct handoff_job *job_find(struct handoff *h, uint32_t partition)
{
    for (size_t i = 0; i < h->n_jobs; i++)
        if (h->jobs[i].partition == partition)
            return &h->jobs[i];
    return NULL;
}

static struct handoff_job *job_add(struct handoff *h, uint32_t partition)
{
    struct handoff_job *j = job_find(h, partition);
    if (j)
        return j;
    if (h->n_jobs == h->cap_jobs &&
        rkv_grow((void **)&h->jobs, &h->cap_jobs, h->n_jobs + 1, sizeof *h->jobs) != RKV_OK)
        return NULL;
    j = &h->jobs[h->n_jobs++];
    memset(j, 0, sizeof *j);
    j->partition = (uint16_t)partition;
    return j;
}

static bool job_has(const struct handoff_job *j, const char *id)
{
    for (uint32_t t = 0; t < j->n_targets; t++)
        if (strcmp(j->targets[t], id) == 0)
            return true;
    return false;
}

static void job_target(struct handoff_job *j, const char *id)
{
    if (!job_has(j, id) && j->n_targets < RKV_REPLICAS_MAX)
        snprintf(j->targets[j->n_targets++], sizeof j->targets[0], "%s", id);
}

static int jobs_load(struct node *n, struct rkv_error *err)
{
    struct handoff *h = n->handoff;
    char path[CONFIG_PATH_BYTES + 32];
    snprintf(path, sizeof path, "%s/%s", n->me->data_dir, HANDOFF_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? RKV_OK
                               : rkv_error_set(err, RKV_ERR_IO, "node: %s: %s", path,
                                               strerror(errno));
    char line[1024];
    int rc = RKV_OK;
    for (unsigned no = 1; rc == RKV_OK && fgets(line, sizeof line, f); no++) {
        size_t len = strlen(line);
        bool ok = len > 0 && line[len - 1] == '\n';
        if (ok)
            line[len - 1] = '\0';
        if (no == 1) {
            ok = ok && strcmp(line, HANDOFF_MAGIC) == 0;
        } else if (ok && line[0] != '#') {
            char *save = NULL, *tok = strtok_r(line, " ", &save), *end = NULL;
            unsigned long p = tok ? strtoul(tok, &end, 10) : 0;
            char *mode = strtok_r(NULL, " ", &save);
            ok = tok && end && *end == '\0' && p < ring_partitions(n->ring) && mode &&
                 (strcmp(mode, "drop") == 0 || strcmp(mode, "copy") == 0);
            struct handoff_job *j = ok ? job_add(h, (uint32_t)p) : NULL;
            ok = ok && j != NULL;
            if (ok)
                j->drop = j->drop || strcmp(mode, "drop") == 0;
            while (ok && (tok = strtok_r(NULL, " ", &save)) != NULL) {
                ok = strlen(tok) <= RKV_NODE_ID_BYTES_MAX && j->n_targets < RKV_REPLICAS_MAX;
                if (ok)
                    job_target(j, tok);
            }
        }
        if (!ok)
            rc = rkv_error_set(err, RKV_ERR_CORRUPT, "node: %s:%u: not a handoff job", path, no);
    }
    fclose(f);
    return rc;
}

/* ---- planning ---- */

static int has_one(void *ctx, const void *key, size_t key_len, const struct store_meta *meta)
{
    (void)key;
    (void)key_len;
    (void)meta;
    *(bool *)ctx = true;
    return 1;
}

static bool holds_keys(struct node *n, uint32_t partition)
{
    bool any = false;
    uint64_t cursor = 0;
    store_list(n->store, (uint16_t)partition, &cursor, 1, has_one, &any);
    return any;
}

static bool in_preflist(const struct ring *r, uint32_t p, const char *id)
{
    int idx = ring_member_index(r, id);
    return idx >= 0 && ring_in_preflist(r, p, (uint32_t)idx);
}

/* Does this node own p in the ring it serves? (No id lookup: per write.) */
static bool owns(const struct node *n, uint32_t p)
{
    return n->self_ring >= 0 && ring_in_preflist(n->ring, p, (uint32_t)n->self_ring);
}

/* Partition p under ring r (the old one, or NULL): the job it needs. */
static void plan_partition(struct node *n, const struct ring *old, const struct ring *r,
                           uint32_t p)
{
    struct handoff *h = n->handoff;
    const char *me = n->me->id;
    const uint32_t *pref = ring_preflist(r, p);
    uint32_t count = ring_replicas(r);
    struct handoff_job *j = job_find(h, p);
    if (j) { /* keep only the targets that are still owners */
        uint32_t kept = 0;
        for (uint32_t t = 0; t < j->n_targets; t++)
            if (in_preflist(r, p, j->targets[t]) && strcmp(j->targets[t], me) != 0)
                memmove(j->targets[kept++], j->targets[t], sizeof j->targets[t]);
        j->n_targets = kept;
    }
    if (!in_preflist(r, p, me)) {
        if (j == NULL && !holds_keys(n, p))
            return;
        j = job_add(h, p);
        if (j == NULL)
            return;
        j->drop = true;
        for (uint32_t i = 0; i < count; i++)
            job_target(j, ring_member_id(r, pref[i]));
        return;
    }
    if (j)
        j->drop = false; /* an owner again: keep what is here */
    if (old == NULL || !in_preflist(old, p, me))
        return; /* not an owner before: nothing of p to give */
    for (uint32_t i = 0; i < count; i++) {
        const char *id = ring_member_id(r, pref[i]);
        if (strcmp(id, me) != 0 && !in_preflist(old, p, id) && (j || (j = job_add(h, p))))
            job_target(j, id);
    }
}

/* Drops jobs with nothing left to do (no targets). */
static void jobs_prune(struct handoff *h)
{
    size_t kept = 0;
    for (size_t i = 0; i < h->n_jobs; i++) {
        if (h->jobs[i].n_targets == 0) {
            if (i == 0)
                h->cursor = 0;
            continue;
        }
        h->jobs[kept++] = h->jobs[i];
    }
    h->n_jobs = kept;
}

void handoff_ring_changed(struct node *n, const struct ring *old, const struct ring *r)
{
    struct handoff *h = n->handoff;
    if (h == NULL)
        return;
    uint16_t current = h->n_jobs ? h->jobs[0].partition : 0;
    bool had = h->n_jobs > 0;
    for (uint32_t p = 0; p < ring_partitions(r); p++)
        plan_partition(n, old, r, p);
    jobs_prune(h);
    if (!had || h->n_jobs == 0 || h->jobs[0].partition != current) {
        h->cursor = 0;
        h->n_sent = h->inflight = 0;
        h->pass_failed = h->pass_kept = false;
    } else if (h->n_sent > 0) {
        /* The same job goes on, but its targets may have changed under the
         * batch in flight: replies name a target by its index, so the
         * batch is given up (its late replies no longer match gen) and its
         * keys go again in the next pass. Waiting for it instead stalled
         * the job for HANDOFF_BATCH_TIMEOUT_MS (found by test_membership). */
        h->gen++;
        h->n_sent = h->inflight = 0;
        h->pass_failed = true;
        h->next_ms = 0;
    }
    h->stats.jobs_planned = h->n_jobs;
    jobs_save(n);
    if (h->n_jobs)
        RKV_INFO("node", "%s: %zu partitions to hand over", n->me->id, h->n_jobs);
}

void handoff_stored(struct node *n, uint32_t partition)
{
    struct handoff *h = n->handoff;
    if (h == NULL || owns(n, partition))
        return;
    struct handoff_job *j = job_find(h, partition);
    if (j) {
        j->touched = true;
        return;
    }
    /* a peer whose ring is older sent it here, or this node's is */
    plan_partition(n, NULL, n->ring, partition);
    h->stats.strays++;
    jobs_save(n);
}

/* ---- opening ---- */

int handoff_open(struct node *n, struct rkv_error *err)
{
    n->handoff = rkv_calloc(1, sizeof *n->handoff);
    if (n->handoff == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory");
    int rc = jobs_load(n, err);
    if (rc != RKV_OK)
        return rc;
    size_t loaded = n->handoff->n_jobs;
    n->handoff->stats.resumed = loaded;
    handoff_ring_changed(n, NULL, n->ring); /* strays: keys of partitions not ours */
    if (loaded)
        RKV_INFO("node", "%s: resuming the handoff of %zu partitions", n->me->id, loaded);
    return RKV_OK;
}

void handoff_close(struct node *n)
{
    struct handoff *h = n->handoff;
    if (h == NULL)
        return;
    for (uint32_t k = 0; k < HANDOFF_BATCH_MAX; k++)
        rkv_buf_free(&h->sent[k].key);
    rkv_buf_free(&h->value);
    rkv_buf_free(&h->text);
    rkv_free(h->jobs);
    rkv_free(h);
    n->handoff = NULL;
}

/* ---- streaming ---- */

static uint64_t reply_id(uint32_t gen, uint32_t k)
{
    return COORD_ID_FREE_BIT | HANDOFF_ID_BIT | (uint64_t)(gen & 0xffffffu) << 16 | k;
}

static int collect_one(void *ctx, const void *key, size_t key_len, const struct store_meta *meta)
{
    struct handoff *h = ctx;
    struct handoff_sent *s = &h->sent[h->n_sent];
    if (rkv_buf_set(&s->key, key, key_len) != RKV_OK)
        return 1;
    s->seq = meta->seq;
    s->acked = 0;
    s->failed = false;
    h->n_sent++;
    h->tokens -= (double)(key_len + meta->value_len);
    return h->n_sent >= HANDOFF_BATCH_MAX || h->tokens <= 0;
}

/* The job is done when a pass is; a drop job when a pass found nothing. */
static void finish_pass(struct node *n)
{
    struct handoff *h = n->handoff;
    struct handoff_job *j = &h->jobs[0];
    bool done = !h->pass_failed && !j->touched &&
                !(j->drop && (h->pass_kept || holds_keys(n, j->partition)));
    h->cursor = 0;
    j->touched = false;
    h->pass_failed = h->pass_kept = false;
    if (!done)
        return;
    h->stats.partitions_done++;
    h->stats.last_partition_ms = rkv_clock_mono_ms() - h->job_start_ms;
    h->job_start_ms = 0;
    memmove(&h->jobs[0], &h->jobs[1], (h->n_jobs - 1) * sizeof *h->jobs);
    h->n_jobs--;
    jobs_save(n);
    if (h->n_jobs == 0)
        RKV_INFO("node", "%s: handoff done (%llu partitions, %llu keys)", n->me->id,
                 (unsigned long long)h->stats.partitions_done,
                 (unsigned long long)h->stats.keys_sent);
}

/* Sends the next batch of jobs[0] to its targets (all alive, in slots). */
static void send_batch(struct node *n)
{
    struct handoff *h = n->handoff;
    struct handoff_job *j = &h->jobs[0];
    h->n_sent = 0;
    if (store_list(n->store, j->partition, &h->cursor, HANDOFF_BATCH_MAX, collect_one, h) !=
            RKV_OK &&
        h->n_sent == 0) {
        h->retry_ms = rkv_clock_mono_ms() + HANDOFF_RETRY_MS;
        return;
    }
    if (h->job_start_ms == 0)
        h->job_start_ms = rkv_clock_mono_ms();
    h->gen++;
    h->inflight = 0;
    h->sent_ms = rkv_clock_mono_ms();
    for (uint32_t k = 0; k < h->n_sent; k++) {
        struct handoff_sent *s = &h->sent[k];
        if (store_get(n->store, j->partition, s->key.data, s->key.len, &h->value, NULL) != RKV_OK) {
            s->acked = (1u << j->n_targets) - 1; /* gone meanwhile: nothing to hand over */
            continue;
        }
        for (uint32_t t = 0; t < j->n_targets; t++) {
            n->buf.len = 0;
            if (wire_encode_replica_put(&n->buf, reply_id(h->gen, k) | (uint64_t)t << 8,
                                        ring_epoch(n->ring), j->partition, s->key.data,
                                        s->key.len, h->value.data, h->value.len) != RKV_OK ||
                node_send_peer(n, h->targets_slot[t], n->buf.data, n->buf.len) != RKV_OK) {
                s->failed = true;
                continue;
            }
            h->inflight++;
            h->stats.bytes_sent += s->key.len + h->value.len;
        }
        h->stats.keys_sent++;
    }
    if (h->inflight == 0)
        handoff_on_reply(n, UINT32_MAX, NULL); /* nothing went out: settle the batch now */
}

/* Keys of partitions this node does not own and no job hands over: a
 * write that was not committed yet when the ring changed (listings see
 * committed keys only). Cheap: one key listed per partition not owned. */
static void scan_strays(struct node *n, uint64_t now)
{
    struct handoff *h = n->handoff;
    if (now - h->scan_ms < HANDOFF_SCAN_MS)
        return;
    h->scan_ms = now;
    bool added = false;
    for (uint32_t p = 0; p < ring_partitions(n->ring); p++) {
        if (owns(n, p) || job_find(h, p) || !holds_keys(n, p))
            continue;
        plan_partition(n, NULL, n->ring, p);
        h->stats.strays++;
        added = true;
    }
    if (added)
        jobs_save(n);
}

void handoff_turn(struct node *n)
{
    struct handoff *h = n->handoff;
    if (h == NULL)
        return;
    uint64_t now = rkv_clock_mono_ms();
    scan_strays(n, now);
    if (h->n_jobs > 0 && h->busy_since_ms == 0) {
        h->busy_since_ms = now;
    } else if (h->n_jobs == 0 && h->busy_since_ms != 0) {
        h->stats.busy_ms += now - h->busy_since_ms;
        h->busy_since_ms = 0;
    }
    if (h->n_jobs == 0)
        return;
    if (h->inflight && now - h->sent_ms > HANDOFF_BATCH_TIMEOUT_MS) {
        h->stats.timeouts++;
        h->inflight = 0;
        h->n_sent = 0;
        h->pass_failed = true; /* those keys go again in the next pass */
    }
    if (h->inflight || now < h->next_ms || now < h->retry_ms)
        return;
    h->next_ms = now + HANDOFF_ROUND_MS;
    struct handoff_job *j = &h->jobs[0];
    for (uint32_t t = 0; t < j->n_targets; t++) {
        int32_t slot = node_peer_find(n, j->targets[t], strlen(j->targets[t]));
        if (slot < 0 || n->peer[slot]->sock == NULL || !membership_alive(n, (uint32_t)slot)) {
            h->retry_ms = now + HANDOFF_RETRY_MS; /* a target is down: wait for it */
            return;
        }
        h->targets_slot[t] = (uint32_t)slot;
    }
    double rate = n->cfg->handoff_bytes_per_sec;
    h->tokens = h->refill_ms == 0 ? rate : h->tokens + rate * (double)(now - h->refill_ms) / 1e3;
    if (h->tokens > rate)
        h->tokens = rate;
    h->refill_ms = now;
    if (h->tokens <= 0)
        return;
    if (h->cursor == STORE_CURSOR_END) {
        finish_pass(n);
        h->next_ms = 0;
        return;
    }
    send_batch(n);
}

uint64_t handoff_next_ms(const struct node *n)
{
    const struct handoff *h = n->handoff;
    if (h == NULL)
        return UINT64_MAX;
    if (h->n_jobs == 0)
        return h->scan_ms + HANDOFF_SCAN_MS;
    return h->next_ms > h->retry_ms ? h->next_ms : h->retry_ms;
}

bool handoff_idle(const struct node *n)
{
    return n->handoff == NULL || n->handoff->n_jobs == 0;
}

/* Key k of the batch reached every target: in a drop job, delete it here
 * if it is still the version sent. */
static void settle(struct node *n, struct handoff_sent *s)
{
    struct handoff *h = n->handoff;
    struct handoff_job *j = &h->jobs[0];
    h->stats.keys_acked++;
    if (!j->drop)
        return;
    struct store_meta meta;
    if (store_get(n->store, j->partition, s->key.data, s->key.len, &h->value, &meta) != RKV_OK)
        return;
    if (meta.seq != s->seq) {
        h->pass_kept = true; /* written meanwhile: the next pass sends it */
        return;
    }
    if (store_del(n->store, j->partition, s->key.data, s->key.len) == RKV_OK)
        h->stats.keys_dropped++;
}

void handoff_on_reply(struct node *n, uint32_t member, const struct wire_msg *m)
{
    struct handoff *h = n->handoff;
    if (h == NULL || h->n_jobs == 0)
        return;
    if (m != NULL) {
        uint32_t gen = (uint32_t)(m->id >> 16) & 0xffffffu, k = (uint32_t)m->id & 0xffu;
        uint32_t t = (uint32_t)(m->id >> 8) & 0xffu;
        struct handoff_job *j = &h->jobs[0];
        if (gen != (h->gen & 0xffffffu) || k >= h->n_sent || t >= j->n_targets ||
            h->targets_slot[t] != member || h->inflight == 0 || (h->sent[k].acked >> t & 1))
            return; /* late, duplicated, or not from that target */
        h->inflight--;
        if (m->status == RKV_OK)
            h->sent[k].acked |= 1u << t;
        else
            h->sent[k].failed = true;
        if (h->inflight > 0)
            return;
    }
    /* the whole batch is answered */
    uint32_t all = (1u << h->jobs[0].n_targets) - 1;
    for (uint32_t k = 0; k < h->n_sent; k++) {
        if (h->sent[k].acked == all && !h->sent[k].failed)
            settle(n, &h->sent[k]);
        else
            h->pass_failed = true;
    }
    if (h->pass_failed)
        h->retry_ms = rkv_clock_mono_ms() + HANDOFF_RETRY_MS;
    h->n_sent = 0;
    h->next_ms = 0; /* the next batch at once */
}

void handoff_stats(const struct node *n, struct node_handoff_stats *st)
{
    const struct handoff *h = n->handoff;
    *st = h->stats;
    if (h->busy_since_ms)
        st->busy_ms += rkv_clock_mono_ms() - h->busy_since_ms;
    st->partitions_pending = h->n_jobs;
    st->current = h->n_jobs ? h->jobs[0].partition : 0;
}

static int count_one(void *ctx, const void *key, size_t key_len, const struct store_meta *meta)
{
    (void)key;
    (void)key_len;
    (void)meta;
    (*(uint64_t *)ctx)++;
    return 0;
}

uint64_t handoff_unowned_keys(struct node *n)
{
    uint64_t count = 0;
    for (uint32_t p = 0; p < ring_partitions(n->ring); p++) {
        if (owns(n, p))
            continue;
        for (uint64_t cursor = 0; cursor != STORE_CURSOR_END;)
            if (store_list(n->store, (uint16_t)p, &cursor, 1024, count_one, &count) != RKV_OK)
                break;
    }
    return count;
}
