/*
 * coordinator.c: the request state machines of coordinator.h.
 *
 * Requests live in a slot table; a request id is (generation << 32 | slot),
 * so a reply that arrives after its request was freed and the slot reused
 * is recognised and ignored. Deadlines sit in a binary min-heap of the live
 * requests ordered by (deadline, sequence); each request knows its place in
 * it, so a request that finishes early leaves the heap at once.
 *
 * States of a request (per replica: PENDING -> OK | NOTFOUND | FAILED, or
 * SKIPPED: a write not sent to an owner that is down):
 *   GET:  waiting for R -> answered -> waiting for the rest -> repair, free
 *   PUT/DEL: local update -> replicating, waiting for W -> answered, free
 *   FWD:  forwarded, waiting for the FORWARD_REPLY -> relayed, free
 * A deadline answers a request that has not been answered (quorum error),
 * runs a get's repair with the replies it has, and frees it.
 *
 * Sloppy quorum (writes). The first n_primary entries of a request are the
 * preference list. An owner that is down when the write goes out (SKIPPED),
 * that fails, or that has not answered by fallback_after_ms is "covered": a
 * new entry sends the object to the next member clockwise past the
 * preference list that is not down and not in the request yet, as a hint
 * for that owner (stand_in names the owner's entry). A fallback that fails
 * uncovers its owner, which is then covered by the next one. A slow owner
 * keeps its entry: its late answer still counts, beside its fallback's.
 * Entries never exceed COORD_ENTRIES_MAX, so a request sends at most that
 * many copies. W counts every OK entry, or only owners with PRIMARY (PW);
 * the write fails once the OK and pending entries that count cannot reach
 * W any more. Gets read the preference list only.
 */
#include "coordinator/coordinator.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/alloc.h"
#include "common/limits.h"

#define FORWARD_SLACK_MS 200 /* a forwarder waits this much longer than its target */

enum creq_type { CR_GET = 1, CR_PUT, CR_DEL, CR_FWD };
enum rstate { RS_PENDING = 0, RS_OK, RS_NOTFOUND, RS_FAILED, RS_SKIPPED };

#define COORD_ENTRIES_MAX (2 * RKV_REPLICAS_MAX) /* owners and their fallbacks */
#define NO_OWNER UINT8_MAX                       /* stand_in of an owner's own entry */
_Static_assert(WIRE_FALLBACKS_MAX >= RKV_REPLICAS_MAX, "a reply names every fallback");

struct creq {
    bool used;
    uint32_t slot;
    uint32_t gen;
    uint8_t type;
    bool answered;
    bool repair_expected;
    uint64_t client;
    uint64_t client_rid;
    uint64_t deadline;
    uint64_t wake;           /* heap key: fallback_at until it passed, then deadline */
    uint64_t seq;            /* creation order, for equal deadlines */
    size_t heap_pos;
    uint16_t partition;
    uint32_t need;
    uint32_t n;              /* entries: the owners, then fallbacks */
    uint32_t n_primary;      /* the preference list: entries 0..n_primary-1 */
    bool primary_only;       /* PW: only owners count toward need */
    bool covered[RKV_REPLICAS_MAX]; /* owner i has a fallback that has not failed */
    uint32_t nodes[COORD_ENTRIES_MAX];
    uint8_t state[COORD_ENTRIES_MAX];
    uint8_t stand_in[COORD_ENTRIES_MAX]; /* a fallback's owner entry, or NO_OWNER */
    struct rkv_buf objs[RKV_REPLICAS_MAX]; /* GET: each replica's object */
    struct rkv_buf key;
    struct rkv_buf value;    /* PUT */
    struct vclock ctx;       /* PUT, DEL */
    bool overwrite;          /* PUT, DEL: supersede the local copy (WIRE_FLAG_OVERWRITE) */
    uint64_t expiry_ms;
    struct rkv_buf written;  /* PUT, DEL: the object the local update made */
    int error;               /* first failure reported by a replica */
    char errmsg[256];
};

struct coord {
    struct coord_options opt;
    const struct ring *ring;
    uint64_t epoch;
    /* members are the node's slots (coord_set_members); ring indices are
     * turned into slots as they are read, so a request keeps its members
     * when the ring changes under it */
    const uint32_t *slot_of;  /* ring index -> slot; NULL: the same number */
    const char *const *ids;   /* slot -> id; NULL: the ring's ids */
    int64_t self_ring;        /* this node's ring index, -1 outside the ring */
    /* each request is allocated on its own and never moves: the outbox
     * hands the node pointers into it (a local update's context) */
    struct creq **reqs;
    size_t n_reqs, cap_reqs;
    uint32_t *free_slots;
    size_t n_free, cap_free;
    size_t live;
    struct creq **heap;      /* the live requests, by deadline */
    size_t n_heap, cap_heap;
    uint64_t seq;
    struct coord_out *out;
    size_t n_out, cap_out;
    struct rkv_buf scratch;
    struct coord_stats stats;
    uint8_t down[RKV_NODES_MAX / 8]; /* members marked down (coord_set_down) */
    uint32_t walk[RKV_NODES_MAX];    /* scratch: ring_walk of one partition */
};

static bool is_down(const struct coord *c, uint32_t member)
{
    return member < RKV_NODES_MAX && (c->down[member / 8] >> (member % 8) & 1);
}

/* The member (slot) of ring index idx, and a member's id. */
static uint32_t slot_of(const struct coord *c, uint32_t idx)
{
    return c->slot_of ? c->slot_of[idx] : idx;
}

static const char *member_id(const struct coord *c, uint32_t member)
{
    return c->ids ? c->ids[member] : ring_member_id(c->ring, member);
}

void coord_set_down(struct coord *c, uint32_t member, bool down)
{
    if (member >= RKV_NODES_MAX || member == c->opt.self)
        return;
    if (down)
        c->down[member / 8] |= (uint8_t)(1u << (member % 8));
    else
        c->down[member / 8] &= (uint8_t)~(1u << (member % 8));
}

/* Frees b's memory if it grew past what is worth keeping for reuse. */
static void buf_trim(struct rkv_buf *b)
{
    if (b->cap > COORD_KEEP_BYTES)
        rkv_buf_free(b);
}

/* ---- outbox ---- */

static struct coord_out *out_push(struct coord *c, enum coord_out_kind kind)
{
    if (c->n_out == c->cap_out) {
        size_t ncap = c->cap_out ? c->cap_out * 2 : 16;
        struct coord_out *o = rkv_realloc(c->out, ncap * sizeof *o);
        if (o == NULL)
            return NULL;
        memset(o + c->cap_out, 0, (ncap - c->cap_out) * sizeof *o);
        c->out = o;
        c->cap_out = ncap;
    }
    struct coord_out *o = &c->out[c->n_out++];
    struct rkv_buf keep = o->msg; /* reuse the buffer's memory */
    memset(o, 0, sizeof *o);
    o->msg = keep;
    o->msg.len = 0;
    o->kind = kind;
    return o;
}

struct coord_out *coord_outbox(struct coord *c, size_t *n)
{
    *n = c->n_out;
    return c->out;
}

void coord_outbox_clear(struct coord *c)
{
    for (size_t i = 0; i < c->n_out; i++)
        buf_trim(&c->out[i].msg);
    buf_trim(&c->scratch);
    c->n_out = 0;
}

/* ---- request table and deadlines ---- */

static uint64_t req_id(const struct coord *c, const struct creq *r)
{
    (void)c;
    return (uint64_t)r->gen << 32 | r->slot;
}

static struct creq *req_find(struct coord *c, uint64_t id)
{
    uint64_t slot = id & 0xffffffffu;
    if (slot >= c->n_reqs)
        return NULL;
    struct creq *r = c->reqs[slot];
    return r->used && r->gen == (uint32_t)(id >> 32) ? r : NULL;
}

static bool heap_less(const struct creq *a, const struct creq *b)
{
    return a->wake < b->wake || (a->wake == b->wake && a->seq < b->seq);
}

static void heap_place(struct coord *c, size_t i, struct creq *r)
{
    c->heap[i] = r;
    r->heap_pos = i;
}

static void heap_up(struct coord *c, size_t i)
{
    struct creq *r = c->heap[i];
    while (i > 0 && heap_less(r, c->heap[(i - 1) / 2])) {
        heap_place(c, i, c->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_place(c, i, r);
}

static void heap_down(struct coord *c, size_t i)
{
    struct creq *r = c->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= c->n_heap)
            break;
        if (l + 1 < c->n_heap && heap_less(c->heap[l + 1], c->heap[l]))
            m = l + 1;
        if (!heap_less(c->heap[m], r))
            break;
        heap_place(c, i, c->heap[m]);
        i = m;
    }
    heap_place(c, i, r);
}

static int heap_push(struct coord *c, struct creq *r)
{
    void *h = c->heap;
    if (rkv_grow(&h, &c->cap_heap, c->n_heap + 1, sizeof *c->heap) != RKV_OK)
        return RKV_ERR_NOMEM;
    c->heap = h;
    heap_place(c, c->n_heap++, r);
    heap_up(c, r->heap_pos);
    return RKV_OK;
}

static void heap_remove(struct coord *c, struct creq *r)
{
    size_t i = r->heap_pos;
    struct creq *last = c->heap[--c->n_heap];
    if (i == c->n_heap)
        return;
    heap_place(c, i, last);
    heap_down(c, i);
    heap_up(c, last->heap_pos);
}

/* A fresh request, or NULL (BUSY or out of memory). */
static struct creq *req_alloc(struct coord *c, uint8_t type, uint64_t deadline)
{
    if (c->live >= c->opt.inflight_max)
        return NULL;
    size_t slot;
    if (c->n_free) {
        slot = c->free_slots[--c->n_free];
    } else {
        void *rq = c->reqs, *fs = c->free_slots;
        if (rkv_grow(&rq, &c->cap_reqs, c->n_reqs + 1, sizeof *c->reqs) != RKV_OK)
            return NULL;
        c->reqs = rq;
        /* free_slots can always hold every slot, so freeing never fails */
        if (rkv_grow(&fs, &c->cap_free, c->cap_reqs, sizeof *c->free_slots) != RKV_OK)
            return NULL;
        c->free_slots = fs;
        struct creq *fresh = rkv_calloc(1, sizeof *fresh);
        if (fresh == NULL)
            return NULL;
        slot = c->n_reqs++;
        fresh->slot = (uint32_t)slot;
        c->reqs[slot] = fresh;
    }
    struct creq *r = c->reqs[slot];
    r->used = true;
    r->gen = (r->gen + 1) & 0x7fffffffu; /* ids never have COORD_ID_FREE_BIT */
    r->type = type;
    r->answered = r->repair_expected = false;
    r->deadline = r->wake = deadline;
    r->primary_only = false;
    memset(r->covered, 0, sizeof r->covered);
    memset(r->stand_in, NO_OWNER, sizeof r->stand_in);
    r->error = RKV_OK;
    r->errmsg[0] = '\0';
    r->n = r->n_primary = 0;
    r->key.len = r->value.len = r->written.len = 0;
    r->ctx.n = 0;
    r->expiry_ms = 0;
    r->seq = c->seq++;
    if (heap_push(c, r) != RKV_OK) {
        r->used = false;
        c->free_slots[c->n_free++] = (uint32_t)slot;
        return NULL;
    }
    c->live++;
    return r;
}

static void req_free(struct coord *c, struct creq *r)
{
    heap_remove(c, r);
    for (uint32_t k = 0; k < RKV_REPLICAS_MAX; k++)
        buf_trim(&r->objs[k]);
    buf_trim(&r->key);
    buf_trim(&r->value);
    buf_trim(&r->written);
    if (r->ctx.cap > RKV_CLOCK_ENTRIES_MAX)
        vclock_free(&r->ctx);
    r->used = false;
    c->free_slots[c->n_free++] = r->slot;
    c->live--;
}

/* ---- replies to clients ---- */

/* Does entry i count toward r's quorum? */
static bool counts(const struct creq *r, uint32_t i)
{
    return !r->primary_only || i < r->n_primary;
}

/* Names of the replicas whose answers counted. */
static uint32_t answered_names(const struct coord *c, const struct creq *r, const char **names)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n; i++)
        if ((r->state[i] == RS_OK || r->state[i] == RS_NOTFOUND) && counts(r, i))
            names[n++] = member_id(c, r->nodes[i]);
    return n;
}

/* The fallbacks whose answers counted, with the owners they stood in for. */
static void answered_fallbacks(const struct coord *c, const struct creq *r,
                               struct wire_fallbacks *fb)
{
    fb->n = 0;
    if (r == NULL)
        return;
    for (uint32_t i = r->n_primary; i < r->n && fb->n < WIRE_FALLBACKS_MAX; i++) {
        if (r->state[i] != RS_OK || !counts(r, i))
            continue;
        fb->fallback[fb->n] = member_id(c, r->nodes[i]);
        fb->fallback_for[fb->n++] = member_id(c, r->nodes[r->stand_in[i]]);
    }
}

static void reply(struct coord *c, uint64_t client, uint64_t rid, const struct creq *r, int status,
                  const char *message, bool repaired, const void *payload, size_t payload_len)
{
    const char *names[COORD_ENTRIES_MAX];
    uint32_t n = r ? answered_names(c, r, names) : 0;
    struct wire_fallbacks fb;
    answered_fallbacks(c, r, &fb);
    struct coord_out *o = out_push(c, COORD_TO_CLIENT);
    if (o == NULL)
        return;
    o->client = client;
    int rc = wire_encode_reply_fallbacks(&o->msg, rid, c->epoch, status, message, names, n,
                                         repaired, payload, payload_len, &fb);
    if (rc == RKV_OK && c->opt.message_bytes_max && o->msg.len > c->opt.message_bytes_max) {
        char msg[200];
        snprintf(msg, sizeof msg, "the reply (%zu bytes) would exceed message_bytes_max (%u): "
                 "the key's siblings are too large to send; write it with a context",
                 o->msg.len, c->opt.message_bytes_max);
        o->msg.len = 0;
        rc = wire_encode_reply(&o->msg, rid, c->epoch, RKV_ERR_TOOBIG, msg, names, n, false, NULL,
                               0);
    }
    if (rc != RKV_OK)
        c->n_out--; /* out of memory: the client's own deadline answers it */
}

static void reply_error(struct coord *c, uint64_t client, uint64_t rid, const struct creq *r,
                        int status, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void reply_error(struct coord *c, uint64_t client, uint64_t rid, const struct creq *r,
                        int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply(c, client, rid, r, status, msg, false, NULL, 0);
}

/* "n1, n3": the replicas of r in one of the states of mask (1 << state). */
static void list_replicas(const struct coord *c, const struct creq *r, unsigned mask, char *out,
                          size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < r->n; i++) {
        if (!(mask & (1u << r->state[i])))
            continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
                         member_id(c, r->nodes[i]));
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
    if (len == 0)
        snprintf(out, cap, "none");
}

static void reply_quorum(struct coord *c, struct creq *r, bool deadline)
{
    char yes[256], failed[256], silent[256], down[256];
    list_replicas(c, r, 1u << RS_OK | 1u << RS_NOTFOUND, yes, sizeof yes);
    list_replicas(c, r, 1u << RS_FAILED, failed, sizeof failed);
    list_replicas(c, r, 1u << RS_PENDING, silent, sizeof silent);
    list_replicas(c, r, 1u << RS_SKIPPED, down + 8, sizeof down - 8);
    if (strcmp(down + 8, "none") == 0)
        down[0] = '\0'; /* said only when some owner was skipped */
    else
        memcpy(down, "; down: ", 8);
    uint32_t got = 0;
    for (uint32_t i = 0; i < r->n; i++)
        got += (r->state[i] == RS_OK || r->state[i] == RS_NOTFOUND) && counts(r, i);
    c->stats.quorum_failures++;
    reply_error(c, r->client, r->client_rid, r, RKV_ERR_QUORUM,
                "quorum not reached: %u of %u needed %s%s; answered: %s; failed: %s%s%s%s%s; "
                "%s: %s",
                got, r->need, r->primary_only ? "primary " : "",
                r->type == CR_GET ? "reads" : "writes", yes, failed, r->error ? " (" : "",
                r->error ? r->errmsg : "", r->error ? ")" : "", down,
                deadline ? "no answer by the deadline" : "not answered yet", silent);
    r->answered = true;
}

/* ---- get ---- */

static bool same_bytes(const struct rkv_buf *a, const struct rkv_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* What the replicas that answered OK hold, merged. Replicas in step send
 * the same bytes, so a copy equal to one merged already is not decoded
 * again; when all OK copies are equal (the common case), `agree` says so
 * and whether that copy is exactly the merge (then none of them is stale,
 * and replica_stale decodes nothing). */
struct merge_view {
    bool agree;          /* every OK copy has the same bytes */
    bool agree_current;  /* ...and they decode to exactly the merge */
};

static int merge_replies(struct coord *c, struct creq *r, struct object *merged,
                         struct merge_view *view)
{
    struct object tmp;
    object_init(&tmp);
    struct object_limits lim;
    object_limits_default(&lim);
    lim.conflict = c->opt.limits.conflict;
    int rc = RKV_OK;
    int first = -1;
    uint32_t decoded = 0;
    view->agree = true;
    for (uint32_t i = 0; i < r->n && rc == RKV_OK; i++) {
        if (r->state[i] != RS_OK)
            continue;
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = r->state[j] == RS_OK && same_bytes(&r->objs[j], &r->objs[i]);
        if (first >= 0 && !same_bytes(&r->objs[first], &r->objs[i]))
            view->agree = false;
        if (first < 0)
            first = (int)i;
        if (seen)
            continue; /* object_sync is idempotent */
        rc = object_decode(r->objs[i].data, r->objs[i].len, &lim, &tmp);
        if (rc == RKV_OK)
            rc = object_sync(merged, &tmp, &lim, NULL);
        decoded++;
    }
    /* with one distinct copy, tmp still holds it */
    view->agree_current = view->agree && rc == RKV_OK && (decoded == 0 || object_same(&tmp, merged));
    object_free(&tmp);
    return rc;
}

/* Is replica i's copy behind merged? */
static bool replica_stale(struct creq *r, uint32_t i, const struct object *merged,
                          const struct merge_view *view, struct object *tmp,
                          const struct object_limits *lim)
{
    if (r->state[i] == RS_NOTFOUND)
        return merged->n > 0;
    if (r->state[i] != RS_OK)
        return false;
    if (view->agree)
        return !view->agree_current;
    if (object_decode(r->objs[i].data, r->objs[i].len, lim, tmp) != RKV_OK)
        return true;
    return !object_same(tmp, merged);
}

static int encode_get_payload(struct coord *c, const struct object *o, uint64_t now,
                              struct rkv_buf *out, uint32_t *live)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    mp_write_array(&w, 2);
    *live = object_live_count(o, now);
    mp_write_array(&w, *live);
    for (uint32_t i = 0; i < o->n; i++) {
        const struct sibling *s = &o->s[i];
        if (s->tomb || (s->expiry_ms && s->expiry_ms <= now))
            continue;
        mp_write_array(&w, 3);
        mp_write_bin(&w, s->value, s->value_len);
        mp_write_uint(&w, s->ts_ms);
        mp_write_uint(&w, s->expiry_ms);
    }
    struct vclock ctx;
    vclock_init(&ctx);
    struct rkv_buf cb = {0};
    int rc = object_context(o, &ctx);
    if (rc == RKV_OK)
        rc = context_encode(&ctx, &cb);
    mp_write_bin(&w, cb.data, cb.len);
    rkv_buf_free(&cb);
    vclock_free(&ctx);
    (void)c;
    return rc != RKV_OK ? rc : w.failed ? RKV_ERR_NOMEM : RKV_OK;
}

static void answer_get(struct coord *c, struct creq *r, uint64_t now)
{
    struct object merged, tmp;
    object_init(&merged);
    object_init(&tmp);
    struct object_limits lim;
    object_limits_default(&lim);
    struct merge_view view;
    int rc = merge_replies(c, r, &merged, &view);
    for (uint32_t i = 0; rc == RKV_OK && i < r->n; i++)
        if (replica_stale(r, i, &merged, &view, &tmp, &lim))
            r->repair_expected = true;
    c->scratch.len = 0;
    uint32_t live = 0;
    if (rc == RKV_OK)
        rc = encode_get_payload(c, &merged, now, &c->scratch, &live);
    if (rc != RKV_OK) {
        reply_error(c, r->client, r->client_rid, r, rc, "merging replies failed: %s",
                    rkv_strerror(rc));
    } else {
        /* NOTFOUND still carries the context: a later put can supersede a
         * tombstone it has seen. */
        reply(c, r->client, r->client_rid, r, live ? RKV_OK : RKV_ERR_NOTFOUND,
              live ? "" : merged.n ? "deleted" : "not found", r->repair_expected,
              c->scratch.data, c->scratch.len);
    }
    r->answered = true;
    object_free(&tmp);
    object_free(&merged);
}

/* Sends the merged object to every replica that answered stale. */
static void repair_get(struct coord *c, struct creq *r)
{
    struct object merged, tmp;
    object_init(&merged);
    object_init(&tmp);
    struct object_limits lim;
    object_limits_default(&lim);
    struct merge_view view;
    if (merge_replies(c, r, &merged, &view) == RKV_OK && merged.n > 0) {
        c->scratch.len = 0;
        bool encoded = false;
        for (uint32_t i = 0; i < r->n; i++) {
            if (!replica_stale(r, i, &merged, &view, &tmp, &lim))
                continue;
            if (!encoded && object_encode(&merged, &c->scratch) != RKV_OK)
                break;
            encoded = true;
            struct coord_out *o = out_push(c, COORD_TO_NODE);
            if (o == NULL)
                break;
            o->node = r->nodes[i];
            /* id 0: nobody waits for the acknowledgement of a repair */
            if (wire_encode_replica_put(&o->msg, 0, c->epoch, r->partition, r->key.data,
                                        r->key.len, c->scratch.data, c->scratch.len) != RKV_OK)
                c->n_out--;
            else
                c->stats.read_repairs++;
        }
    }
    object_free(&tmp);
    object_free(&merged);
}

/* ---- put and delete ---- */

/* Answers a write that reached W with the context of the object written. */
static void answer_write(struct coord *c, struct creq *r)
{
    struct object o;
    struct object_limits lim;
    struct vclock ctx;
    struct rkv_buf cb = {0};
    object_init(&o);
    object_limits_default(&lim);
    vclock_init(&ctx);
    int rc = object_decode(r->written.data, r->written.len, &lim, &o);
    if (rc == RKV_OK)
        rc = object_context(&o, &ctx);
    if (rc == RKV_OK)
        rc = context_encode(&ctx, &cb);
    c->scratch.len = 0;
    struct mp_writer w;
    mp_writer_init(&w, &c->scratch);
    mp_write_bin(&w, cb.data, cb.len);
    for (uint32_t i = r->n_primary; i < r->n; i++)
        if (r->state[i] == RS_OK && counts(r, i)) {
            c->stats.sloppy_writes++;
            break;
        }
    if (rc == RKV_OK && !w.failed)
        reply(c, r->client, r->client_rid, r, RKV_OK, "", false, c->scratch.data, c->scratch.len);
    else /* the write is done; only its context could not be made */
        reply(c, r->client, r->client_rid, r, RKV_OK, "", false, NULL, 0);
    r->answered = true;
    rkv_buf_free(&cb);
    vclock_free(&ctx);
    object_free(&o);
}

/* ---- sloppy quorum ---- */

/* The next member clockwise past the preference list that is not down and
 * not in r yet; UINT32_MAX if there is none. */
static uint32_t next_fallback(struct coord *c, const struct creq *r)
{
    uint32_t count = ring_walk(c->ring, r->partition, c->walk, RKV_NODES_MAX);
    for (uint32_t k = r->n_primary; k < count; k++) {
        uint32_t m = slot_of(c, c->walk[k]);
        bool taken = is_down(c, m);
        for (uint32_t i = 0; i < r->n && !taken; i++)
            taken = r->nodes[i] == m;
        if (!taken)
            return m;
    }
    return UINT32_MAX;
}

/* Sends r's object to a fallback as a hint for owner entry i, if owner i is
 * not covered yet and a fallback is left. */
static void cover(struct coord *c, struct creq *r, uint32_t i)
{
    if (r->covered[i] || r->n >= COORD_ENTRIES_MAX || r->written.len == 0)
        return;
    uint32_t f = next_fallback(c, r);
    if (f == UINT32_MAX)
        return;
    struct coord_out *o = out_push(c, COORD_TO_NODE);
    if (o == NULL)
        return;
    uint32_t j = r->n;
    o->node = f;
    if (wire_encode_hint_put(&o->msg, req_id(c, r), c->epoch, r->partition, r->key.data,
                             r->key.len, r->written.data, r->written.len,
                             member_id(c, r->nodes[i])) != RKV_OK) {
        c->n_out--;
        return;
    }
    r->nodes[j] = f;
    r->state[j] = RS_PENDING;
    r->stand_in[j] = (uint8_t)i;
    r->n++;
    r->covered[i] = true;
    c->stats.hints_sent++;
}

/* Entry i of a write failed: cover its owner (again, if it was a fallback). */
static void on_entry_failed(struct coord *c, struct creq *r, uint32_t i)
{
    if (r->type != CR_PUT && r->type != CR_DEL)
        return;
    uint32_t owner = i < r->n_primary ? i : r->stand_in[i];
    if (i >= r->n_primary)
        r->covered[owner] = false;
    if (r->state[owner] != RS_OK) /* an owner that has the write needs no stand-in */
        cover(c, r, owner);
}

/* ---- progress ---- */

static uint32_t pending(const struct creq *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n; i++)
        n += r->state[i] == RS_PENDING;
    return n;
}

static void progress(struct coord *c, struct creq *r, uint64_t now)
{
    uint32_t found = 0, open = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        if (!counts(r, i))
            continue;
        found += r->state[i] == RS_OK || (r->type == CR_GET && r->state[i] == RS_NOTFOUND);
        open += r->state[i] == RS_PENDING;
    }
    if (!r->answered) {
        if (found >= r->need && r->type == CR_GET)
            answer_get(c, r, now);
        else if (found >= r->need)
            answer_write(c, r);
        else if (found + open < r->need)
            reply_quorum(c, r, false);
    }
    if (r->answered && (r->type != CR_GET || pending(r) == 0)) {
        if (r->type == CR_GET)
            repair_get(c, r);
        req_free(c, r);
    }
}

/* ---- inputs ---- */

static void start_get(struct coord *c, struct creq *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        struct coord_out *o = out_push(c, COORD_TO_NODE);
        if (o == NULL)
            return;
        o->node = r->nodes[i];
        if (wire_encode_replica_get(&o->msg, req_id(c, r), c->epoch, r->partition, r->key.data,
                                    r->key.len) != RKV_OK)
            c->n_out--;
    }
}

static void start_update(struct coord *c, struct creq *r, uint64_t now)
{
    struct coord_out *o = out_push(c, COORD_UPDATE);
    if (o == NULL)
        return;
    o->update = (struct coord_update){
        .req = req_id(c, r),
        .partition = r->partition,
        .key = r->key.data,
        .key_len = (uint32_t)r->key.len,
        .value = r->value.data,
        .value_len = (uint32_t)r->value.len,
        .ctx = &r->ctx,
        .now_ms = now,
        .expiry_ms = r->expiry_ms,
        .tomb = r->type == CR_DEL,
        .overwrite = r->overwrite,
    };
}

static void forward(struct coord *c, uint64_t now, uint64_t client, const struct wire_msg *m,
                    const void *frame, size_t frame_len, uint32_t target, uint64_t timeout)
{
    struct creq *r = req_alloc(c, CR_FWD, now + timeout + FORWARD_SLACK_MS);
    if (r == NULL) {
        c->stats.refused_busy++;
        reply_error(c, client, m->id, NULL, RKV_ERR_BUSY, "coordinator busy");
        return;
    }
    r->client = client;
    r->client_rid = m->id;
    r->n = r->n_primary = 1;
    r->nodes[0] = target;
    r->state[0] = RS_PENDING;
    c->stats.forwards++;
    struct coord_out *o = out_push(c, COORD_TO_NODE);
    if (o == NULL)
        return;
    o->node = target;
    if (frame == NULL) { /* a request the node made itself: encoded only now */
        c->scratch.len = 0;
        if (wire_encode_request(&c->scratch, m) != RKV_OK) {
            c->n_out--;
            return;
        }
        frame = c->scratch.data;
        frame_len = c->scratch.len;
    }
    if (wire_encode_wrapped(&o->msg, WIRE_FORWARD, req_id(c, r), c->epoch, frame, frame_len) !=
        RKV_OK)
        c->n_out--;
}

void coord_on_client(struct coord *c, uint64_t now, uint64_t client, const struct wire_msg *m,
                     const void *frame, size_t frame_len, bool forwarded)
{
    uint8_t type = m->type == WIRE_GET ? CR_GET : m->type == WIRE_PUT ? CR_PUT
                 : m->type == WIRE_DEL ? CR_DEL : 0;
    if (type == 0) {
        reply_error(c, client, m->id, NULL, RKV_ERR_INVAL, "not a get, put or delete");
        return;
    }
    if (m->key.len > c->opt.key_bytes_max) {
        reply_error(c, client, m->id, NULL, RKV_ERR_TOOBIG,
                    "key of %u bytes exceeds key_bytes_max (%u)", m->key.len,
                    c->opt.key_bytes_max);
        return;
    }
    if (type == CR_PUT && m->value.len > c->opt.limits.value_bytes_max) {
        reply_error(c, client, m->id, NULL, RKV_ERR_TOOBIG,
                    "value of %u bytes exceeds value_bytes_max (%u)", m->value.len,
                    c->opt.limits.value_bytes_max);
        return;
    }
    uint32_t n = ring_replicas(c->ring);
    uint32_t dflt = type == CR_GET ? c->opt.default_r : c->opt.default_w;
    uint32_t need = m->quorum ? m->quorum : (dflt < n ? dflt : n);
    if (need < 1 || need > n) {
        reply_error(c, client, m->id, NULL, RKV_ERR_INVAL, "%s=%u is out of range 1..%u (n)",
                    type == CR_GET ? "r" : "w", m->quorum, n);
        return;
    }
    if (m->timeout_ms > RKV_TIMEOUT_MS_MAX || m->ttl_ms > RKV_TTL_MS_MAX) {
        reply_error(c, client, m->id, NULL, RKV_ERR_INVAL,
                    "%s is over its limit (timeout_ms %u, ttl_ms %llu)",
                    m->timeout_ms > RKV_TIMEOUT_MS_MAX ? "timeout_ms" : "ttl_ms",
                    RKV_TIMEOUT_MS_MAX, (unsigned long long)RKV_TTL_MS_MAX);
        return;
    }
    uint32_t part = ring_partition(c->ring, ring_hash_key(m->key.p, m->key.len));
    uint64_t timeout = m->timeout_ms ? m->timeout_ms : c->opt.timeout_ms;
    if (type != CR_GET &&
        (c->self_ring < 0 || !ring_in_preflist(c->ring, part, (uint32_t)c->self_ring))) {
        if (forwarded) {
            reply_error(c, client, m->id, NULL, RKV_ERR_UNAVAILABLE,
                        "forwarded to a node outside the key's preference list (ring views "
                        "differ)");
            return;
        }
        /* the first owner that is up coordinates (the first, if none is) */
        const uint32_t *owners = ring_preflist(c->ring, part);
        uint32_t target = slot_of(c, owners[0]);
        for (uint32_t i = n; i-- > 0;)
            if (!is_down(c, slot_of(c, owners[i])))
                target = slot_of(c, owners[i]);
        forward(c, now, client, m, frame, frame_len, target, timeout);
        return;
    }
    struct creq *r = req_alloc(c, type, now + timeout);
    if (r == NULL) {
        c->stats.refused_busy++;
        reply_error(c, client, m->id, NULL, RKV_ERR_BUSY, "too many requests in flight (%u)",
                    c->opt.inflight_max);
        return;
    }
    r->client = client;
    r->client_rid = m->id;
    r->partition = (uint16_t)part;
    r->need = need;
    r->n = r->n_primary = n;
    r->primary_only = type != CR_GET && (m->flags & WIRE_FLAG_PRIMARY);
    const uint32_t *owners = ring_preflist(c->ring, part);
    for (uint32_t i = 0; i < n; i++)
        r->nodes[i] = slot_of(c, owners[i]);
    memset(r->state, RS_PENDING, sizeof r->state);
    if (type != CR_GET && c->opt.fallback_after_ms && c->opt.fallback_after_ms < timeout) {
        r->wake = now + c->opt.fallback_after_ms; /* earlier: it can only move up */
        heap_up(c, r->heap_pos);
    }
    int rc = rkv_buf_set(&r->key, m->key.p, m->key.len);
    if (rc == RKV_OK && type == CR_PUT)
        rc = rkv_buf_set(&r->value, m->value.p, m->value.len);
    if (rc == RKV_OK && type != CR_GET) {
        /* a context is the join of every sibling's history, which may be
         * longer than clock_entries_max: accept what the ring can produce */
        struct object_limits ctx_lim;
        object_limits_default(&ctx_lim);
        rc = context_decode(m->context.p, m->context.len, &ctx_lim, &r->ctx);
        if (rc != RKV_OK) {
            reply_error(c, client, m->id, NULL, rc, "bad context: %s", rkv_strerror(rc));
            req_free(c, r);
            return;
        }
        for (uint32_t i = 0; i < r->ctx.n; i++) {
            if (r->ctx.e[i].ts_ms <= now + RKV_CONTEXT_AHEAD_MS_MAX)
                continue;
            reply_error(c, client, m->id, NULL, RKV_ERR_INVAL,
                        "bad context: a version from %llu ms in the future (clocks may be "
                        "skewed by at most %u ms)",
                        (unsigned long long)(r->ctx.e[i].ts_ms - now), RKV_CONTEXT_AHEAD_MS_MAX);
            req_free(c, r);
            return;
        }
    }
    if (rc != RKV_OK) {
        reply_error(c, client, m->id, NULL, rc, "%s", rkv_strerror(rc));
        req_free(c, r);
        return;
    }
    if (type != CR_GET && (m->flags & WIRE_FLAG_OVERWRITE) && r->ctx.n) {
        reply_error(c, client, m->id, NULL, RKV_ERR_INVAL,
                    "an overwrite supersedes the coordinator's copy: it takes no context");
        req_free(c, r);
        return;
    }
    r->overwrite = type != CR_GET && (m->flags & WIRE_FLAG_OVERWRITE);
    r->expiry_ms = m->ttl_ms ? now + m->ttl_ms : 0;
    if (type == CR_GET) {
        c->stats.gets++;
        start_get(c, r);
    } else {
        if (type == CR_PUT)
            c->stats.puts++;
        else
            c->stats.dels++;
        start_update(c, r, now);
    }
}

void coord_on_local_update(struct coord *c, uint64_t now, uint64_t req, int status,
                           const char *errmsg, const void *object, size_t object_len)
{
    struct creq *r = req_find(c, req);
    if (r == NULL || (r->type != CR_PUT && r->type != CR_DEL) || r->written.len)
        return;
    if (status != RKV_OK) {
        reply_error(c, r->client, r->client_rid, NULL, status, "%s",
                    errmsg && *errmsg ? errmsg : rkv_strerror(status));
        req_free(c, r);
        return;
    }
    if (rkv_buf_set(&r->written, object, object_len) != RKV_OK) {
        reply_error(c, r->client, r->client_rid, NULL, RKV_ERR_NOMEM, "out of memory");
        req_free(c, r);
        return;
    }
    for (uint32_t i = 0; i < r->n_primary; i++) {
        if (r->nodes[i] == c->opt.self)
            continue; /* its write is done; it reports when durable */
        if (is_down(c, r->nodes[i])) {
            r->state[i] = RS_SKIPPED;
            cover(c, r, i);
            continue;
        }
        struct coord_out *o = out_push(c, COORD_TO_NODE);
        if (o == NULL)
            break;
        o->node = r->nodes[i];
        if (wire_encode_replica_put(&o->msg, req, c->epoch, r->partition, r->key.data,
                                    r->key.len, object, object_len) != RKV_OK)
            c->n_out--;
    }
    progress(c, r, now);
}

void coord_on_forward_unsent(struct coord *c, uint32_t to, uint64_t id)
{
    struct creq *r = req_find(c, id);
    if (r == NULL || r->type != CR_FWD || r->nodes[0] != to)
        return;
    reply_error(c, r->client, r->client_rid, NULL, RKV_ERR_UNAVAILABLE,
                "could not reach %s to forward the request to it", member_id(c, to));
    req_free(c, r);
}

void coord_on_reply(struct coord *c, uint64_t now, uint32_t from, const struct wire_msg *m)
{
    struct creq *r = req_find(c, m->id);
    if (r == NULL)
        return; /* late, duplicated, or a repair's acknowledgement */
    if (m->type == WIRE_FORWARD_REPLY) {
        if (r->type != CR_FWD || from != r->nodes[0])
            return;
        struct coord_out *o = out_push(c, COORD_TO_CLIENT);
        if (o) {
            o->client = r->client;
            if (rkv_buf_set(&o->msg, m->inner.p, m->inner.len) != RKV_OK)
                c->n_out--;
        }
        req_free(c, r);
        return;
    }
    if (m->type != WIRE_REPLICA_REPLY || r->type == CR_FWD)
        return;
    if ((r->type == CR_PUT || r->type == CR_DEL) && r->written.len == 0)
        return; /* nothing was sent yet */
    uint32_t i = 0;
    while (i < r->n && r->nodes[i] != from)
        i++;
    if (i == r->n || r->state[i] != RS_PENDING)
        return; /* not a replica of this request, or a duplicate */
    if (m->status == RKV_OK && r->type == CR_GET) {
        if (m->object.p == NULL || rkv_buf_set(&r->objs[i], m->object.p, m->object.len) != RKV_OK)
            r->state[i] = RS_FAILED;
        else
            r->state[i] = RS_OK;
    } else if (m->status == RKV_OK) {
        r->state[i] = RS_OK;
    } else if (m->status == RKV_ERR_NOTFOUND && r->type == CR_GET) {
        r->state[i] = RS_NOTFOUND;
    } else {
        r->state[i] = RS_FAILED;
        /* every replica's reason, as far as they fit */
        size_t len = strlen(r->errmsg);
        if (r->error == RKV_OK)
            r->error = (int)m->status;
        snprintf(r->errmsg + len, sizeof r->errmsg - len, "%s%s: %s", len ? "; " : "",
                 member_id(c, from), rkv_strerror((int)m->status));
        on_entry_failed(c, r, i);
    }
    progress(c, r, now);
}

void coord_tick(struct coord *c, uint64_t now)
{
    while (c->n_heap && c->heap[0]->wake <= now) {
        struct creq *r = c->heap[0];
        if (r->wake < r->deadline) {
            /* fallback_after_ms passed: cover the owners still silent */
            r->wake = r->deadline;
            heap_down(c, 0);
            for (uint32_t i = 0; i < r->n_primary; i++)
                if (r->state[i] == RS_PENDING && r->nodes[i] != c->opt.self)
                    cover(c, r, i);
            continue;
        }
        /* every path below frees r */
        if (r->type == CR_FWD) {
            /* a timeout, not UNAVAILABLE: the target may have applied it */
            reply_error(c, r->client, r->client_rid, NULL, RKV_ERR_TIMEOUT,
                        "forwarded to %s, which did not answer in time",
                        member_id(c, r->nodes[0]));
            req_free(c, r);
            continue;
        }
        if (!r->answered)
            reply_quorum(c, r, true);
        if (r->type == CR_GET)
            repair_get(c, r);
        req_free(c, r);
    }
}

uint64_t coord_next_deadline(const struct coord *c)
{
    return c->n_heap ? c->heap[0]->wake : UINT64_MAX;
}

/* ---- lifecycle ---- */

int coord_new(const struct coord_options *o, const struct ring *ring, struct coord **out)
{
    *out = NULL;
    if (o->inflight_max == 0 || o->default_r == 0 || o->default_w == 0 || o->timeout_ms == 0)
        return RKV_ERR_INVAL;
    struct coord *c = rkv_calloc(1, sizeof *c);
    if (c == NULL)
        return RKV_ERR_NOMEM;
    c->opt = *o;
    coord_set_ring(c, ring, o->self);
    *out = c;
    return RKV_OK;
}

void coord_set_ring(struct coord *c, const struct ring *ring, uint32_t self)
{
    c->ring = ring;
    c->epoch = ring_epoch(ring);
    c->opt.self = self;
    c->slot_of = NULL;
    c->ids = NULL;
    c->self_ring = self;
}

void coord_set_members(struct coord *c, const struct ring *ring, const uint32_t *slot_of,
                       const char *const *ids, uint32_t self, int64_t self_ring)
{
    c->ring = ring;
    c->epoch = ring_epoch(ring);
    c->opt.self = self;
    c->slot_of = slot_of;
    c->ids = ids;
    c->self_ring = self_ring;
}

void coord_free(struct coord *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_reqs; i++) {
        struct creq *r = c->reqs[i];
        for (uint32_t k = 0; k < RKV_REPLICAS_MAX; k++)
            rkv_buf_free(&r->objs[k]);
        rkv_buf_free(&r->key);
        rkv_buf_free(&r->value);
        rkv_buf_free(&r->written);
        vclock_free(&r->ctx);
        rkv_free(r);
    }
    for (size_t i = 0; i < c->cap_out; i++)
        rkv_buf_free(&c->out[i].msg);
    rkv_free(c->out);
    rkv_free(c->reqs);
    rkv_free(c->free_slots);
    rkv_free(c->heap);
    rkv_buf_free(&c->scratch);
    rkv_free(c);
}

void coord_stats(const struct coord *c, struct coord_stats *st)
{
    *st = c->stats;
    st->inflight = c->live;
}

bool coord_invariants_ok(const struct coord *c)
{
    size_t used = 0;
    for (size_t i = 0; i < c->n_reqs; i++) {
        const struct creq *r = c->reqs[i];
        if (r->slot != i)
            return false;
        if (!r->used)
            continue;
        used++;
        if (r->n > COORD_ENTRIES_MAX || r->n_primary > RKV_REPLICAS_MAX || r->n < r->n_primary ||
            (r->type == CR_FWD && r->n != 1) || r->wake > r->deadline)
            return false;
        if (r->type != CR_FWD && r->need > r->n_primary)
            return false;
        for (uint32_t k = r->n_primary; k < r->n; k++)
            if (r->stand_in[k] >= r->n_primary)
                return false;
        if (r->answered && r->type != CR_GET)
            return false; /* answered writes are freed at once */
        if (r->heap_pos >= c->n_heap || c->heap[r->heap_pos] != r)
            return false;
    }
    for (size_t i = 1; i < c->n_heap; i++)
        if (heap_less(c->heap[i], c->heap[(i - 1) / 2]))
            return false;
    return used == c->live && c->n_heap == c->live && used + c->n_free == c->n_reqs &&
           c->live <= c->opt.inflight_max;
}
