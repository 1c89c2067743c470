/*
 * gossip.c: the membership state machine of gossip.h.
 *
 * The table is an array of pointers to members sorted by id (bytewise), so
 * lookups are binary searches and iteration order is the same on every
 * node (never a hash table's). Each member carries its failure detector:
 * a ring buffer of fd_window inter-arrival times with their integer sum
 * and sum of squares (exact, so no drift however long it runs; a sample is
 * capped at FD_SAMPLE_MS_MAX, so sum of squares stays below 2^64).
 *
 * A received message is read twice: once to validate every field of it,
 * then again to apply it. A malformed message therefore changes nothing,
 * and nothing is allocated from a count the message claims.
 */
#include "gossip/gossip.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"

#define FD_SAMPLE_MS_MAX 3600000u /* one inter-arrival sample: 1 hour */
/* Room kept for the envelope of a message (version, type, cluster, from,
 * array headers). */
#define ENVELOPE_BYTES (32u + GOSSIP_CLUSTER_BYTES_MAX + RKV_NODE_ID_BYTES_MAX)
/* A digest entry at most: array, str8 id, three uint64. A SYN always fits. */
#define DIGEST_ENTRY_BYTES_MAX (1u + 2 + RKV_NODE_ID_BYTES_MAX + 3 * 9)
_Static_assert(ENVELOPE_BYTES + (uint64_t)RKV_NODES_MAX * DIGEST_ENTRY_BYTES_MAX <=
                   GOSSIP_MESSAGE_BYTES_MIN,
               "a full digest must fit in the smallest message");

struct fd {
    uint64_t last_ms;   /* the last arrival */
    uint64_t sum, sumsq; /* of the samples in the window */
    uint32_t n, head;   /* samples held; next slot to write */
    uint32_t samples[]; /* fd_window of them */
};

struct member {
    struct gossip_node st;
    uint64_t mark;  /* == gossip.mark: to be sent in the answer being built */
    struct fd fd;   /* last: its samples follow */
};

struct gossip {
    struct gossip_options opt;
    char cluster[GOSSIP_CLUSTER_BYTES_MAX + 1];
    char (*seeds)[RKV_NODE_ID_BYTES_MAX + 1];
    size_t n_seeds;
    struct member **members; /* sorted by id */
    size_t n_members, cap_members;
    struct member *self;
    uint64_t rng;
    uint64_t last_tick_ms;
    bool ticked;
    uint64_t mark;           /* see struct member; only grows */
    uint32_t *pick;          /* scratch: candidate member indices */
    size_t cap_pick;
    struct gossip_out *out;
    size_t n_out, cap_out;
    struct rkv_buf part[2];  /* scratch: states, wants */
    struct gossip_stats stats;
    char errmsg[160];
};

/* ---- leaf helpers ---- */

/* splitmix64 */
static uint64_t rng_next(struct gossip *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(struct gossip *g, uint64_t n)
{
    return rng_next(g) % n;
}

static bool id_ok(const char *s, size_t len)
{
    if (len == 0 || len > RKV_NODE_ID_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool host_ok(const char *s, size_t len)
{
    if (len == 0 || len > GOSSIP_HOST_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static bool status_ok(uint64_t s)
{
    return s >= GOSSIP_JOINING && s <= GOSSIP_REMOVED;
}

/* Checks the fields of a state other than version and heartbeat. */
static bool node_fields_ok(const struct gossip_node *n)
{
    return id_ok(n->id, strnlen(n->id, sizeof n->id)) && n->id[sizeof n->id - 1] == '\0' &&
           host_ok(n->host, strnlen(n->host, sizeof n->host)) &&
           n->host[sizeof n->host - 1] == '\0' && n->client_port != 0 && n->cluster_port != 0 &&
           n->vnodes >= 1 && n->vnodes <= RKV_VNODES_MAX && n->incarnation >= 1 &&
           n->incarnation < RKV_COUNTER_MAX && n->version < RKV_COUNTER_MAX &&
           n->heartbeat < RKV_COUNTER_MAX && status_ok(n->status) &&
           n->handoff <= RKV_PARTITIONS_MAX;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

/* The merge order: (incarnation, version, heartbeat, status). */
static int state_cmp(const struct gossip_node *a, const struct gossip_node *b)
{
    int c = cmp_u64(a->incarnation, b->incarnation);
    if (c == 0)
        c = cmp_u64(a->version, b->version);
    if (c == 0)
        c = cmp_u64(a->heartbeat, b->heartbeat);
    if (c == 0)
        c = cmp_u64(a->status, b->status);
    return c;
}

/* The order of a digest entry against a state: status is not in digests,
 * so an equal (incarnation, version, heartbeat) counts as equal. */
static int digest_cmp(const struct gossip_node *a, uint64_t inc, uint64_t ver, uint64_t hb)
{
    int c = cmp_u64(a->incarnation, inc);
    if (c == 0)
        c = cmp_u64(a->version, ver);
    if (c == 0)
        c = cmp_u64(a->heartbeat, hb);
    return c;
}

static void set_err(struct gossip *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct gossip *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->errmsg, sizeof g->errmsg, fmt, ap);
    va_end(ap);
}

/* ---- failure detector ---- */

static void fd_push(struct fd *f, uint32_t window, uint64_t interval_ms)
{
    uint32_t s = interval_ms > FD_SAMPLE_MS_MAX ? FD_SAMPLE_MS_MAX : (uint32_t)interval_ms;
    if (f->n == window) {
        uint32_t old = f->samples[f->head];
        f->sum -= old;
        f->sumsq -= (uint64_t)old * old;
    } else {
        f->n++;
    }
    f->samples[f->head] = s;
    f->head = (f->head + 1) % window;
    f->sum += s;
    f->sumsq += (uint64_t)s * s;
}

/* A newer heartbeat of the member was learned at now_ms. */
static void fd_arrival(const struct gossip *g, struct fd *f, uint64_t now_ms)
{
    uint32_t w = g->opt.fd_window;
    if (f->n == 0) {
        /* first arrival: two samples a quarter of the estimate either side */
        uint64_t est = g->opt.fd_first_interval_ms;
        fd_push(f, w, est - est / 4);
        fd_push(f, w, est + est / 4);
    } else if (now_ms > f->last_ms) {
        /* several newer heartbeats learned at one instant (from the
         * answers of one round) are one arrival, not zero-length gaps */
        fd_push(f, w, now_ms - f->last_ms);
    }
    f->last_ms = now_ms > f->last_ms ? now_ms : f->last_ms;
}

static double fd_phi(const struct gossip *g, const struct fd *f, uint64_t now_ms)
{
    if (f->n == 0)
        return INFINITY;
    double mean = (double)f->sum / f->n;
    double var = (double)f->sumsq / f->n - mean * mean;
    double sd = var > 0 ? sqrt(var) : 0;
    if (sd < g->opt.fd_min_std_dev_ms)
        sd = g->opt.fd_min_std_dev_ms;
    double t = now_ms > f->last_ms ? (double)(now_ms - f->last_ms) : 0;
    double y = (t - mean) / sd;
    /* P(later) = 1 / (1 + e^z), z the logistic approximation of the
     * normal tail; phi = log10(1 + e^z), written so e^z never overflows */
    double z = y * (1.5976 + 0.070566 * y * y);
    double ln_phi = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
    return ln_phi / log(10.0);
}

/* ---- the member table ---- */

/* Index of id, or -(insertion point) - 1. */
static long find_index(const struct gossip *g, const char *id, size_t len)
{
    size_t lo = 0, hi = g->n_members;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = g->members[mid]->st.id;
        int c = strncmp(m, id, len);
        if (c == 0 && m[len] != '\0')
            c = 1;
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static struct member *find_member(const struct gossip *g, const char *id, size_t len)
{
    long i = find_index(g, id, len);
    return i >= 0 ? g->members[i] : NULL;
}

/* Adds st at insertion point pos; NULL on NOMEM or a full table. */
static struct member *insert_member(struct gossip *g, size_t pos, const struct gossip_node *st)
{
    if (g->n_members >= RKV_NODES_MAX) {
        g->stats.members_dropped++;
        return NULL;
    }
    if (g->n_members == g->cap_members &&
        rkv_grow((void **)&g->members, &g->cap_members, g->n_members + 1, sizeof *g->members) !=
            RKV_OK)
        return NULL;
    struct member *m =
        rkv_calloc(1, sizeof *m + (size_t)g->opt.fd_window * sizeof m->fd.samples[0]);
    if (m == NULL)
        return NULL;
    m->st = *st;
    memmove(&g->members[pos + 1], &g->members[pos], (g->n_members - pos) * sizeof *g->members);
    g->members[pos] = m;
    g->n_members++;
    return m;
}

/* ---- options ---- */

static int check_options(const struct gossip_options *o, struct rkv_error *err)
{
    if (o->cluster == NULL || o->cluster[0] == '\0' ||
        strlen(o->cluster) > GOSSIP_CLUSTER_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "gossip: cluster name must be 1..%u bytes",
                             GOSSIP_CLUSTER_BYTES_MAX);
    if (!node_fields_ok(&o->self))
        return rkv_error_set(err, RKV_ERR_INVAL,
                             "gossip: self: bad id, host, port, vnodes or incarnation");
    if (o->self.status != GOSSIP_JOINING && o->self.status != GOSSIP_UP &&
        o->self.status != GOSSIP_LEAVING)
        return rkv_error_set(err, RKV_ERR_INVAL,
                             "gossip: self: status must be joining, up or leaving");
    if (o->n_seeds > RKV_NODES_MAX || (o->n_seeds > 0 && o->seeds == NULL))
        return rkv_error_set(err, RKV_ERR_INVAL, "gossip: at most %u seeds", RKV_NODES_MAX);
    for (size_t i = 0; i < o->n_seeds; i++)
        if (o->seeds[i] == NULL || !id_ok(o->seeds[i], strlen(o->seeds[i])))
            return rkv_error_set(err, RKV_ERR_INVAL, "gossip: seed %zu: bad id", i);
    if (o->fd_window != 0 && (o->fd_window < 2 || o->fd_window > GOSSIP_FD_WINDOW_MAX))
        return rkv_error_set(err, RKV_ERR_INVAL, "gossip: fd_window must be 2..%u",
                             GOSSIP_FD_WINDOW_MAX);
    if (!(o->phi_threshold >= 0) || isinf(o->phi_threshold))
        return rkv_error_set(err, RKV_ERR_INVAL, "gossip: phi_threshold must be > 0");
    if (o->message_bytes_max != 0 && (o->message_bytes_max < GOSSIP_MESSAGE_BYTES_MIN ||
                                      o->message_bytes_max > RKV_MESSAGE_BYTES_MAX))
        return rkv_error_set(err, RKV_ERR_INVAL, "gossip: message_bytes_max must be %u..%u",
                             GOSSIP_MESSAGE_BYTES_MIN, RKV_MESSAGE_BYTES_MAX);
    if (o->interval_ms > FD_SAMPLE_MS_MAX || o->fd_first_interval_ms > FD_SAMPLE_MS_MAX ||
        o->fd_min_std_dev_ms > FD_SAMPLE_MS_MAX)
        return rkv_error_set(err, RKV_ERR_INVAL, "gossip: intervals must be at most %u ms",
                             FD_SAMPLE_MS_MAX);
    return RKV_OK;
}

int gossip_new(const struct gossip_options *o, struct gossip **out, struct rkv_error *err)
{
    *out = NULL;
    int rc = check_options(o, err);
    if (rc != RKV_OK)
        return rc;
    struct gossip *g = rkv_calloc(1, sizeof *g);
    if (g == NULL)
        goto nomem;
    g->opt = *o;
    g->opt.seeds = NULL;
    struct gossip_options *p = &g->opt;
    p->interval_ms = p->interval_ms ? p->interval_ms : GOSSIP_INTERVAL_MS_DEFAULT;
    p->seed_every = p->seed_every ? p->seed_every : GOSSIP_SEED_EVERY_DEFAULT;
    p->fd_window = p->fd_window ? p->fd_window : GOSSIP_FD_WINDOW_DEFAULT;
    p->phi_threshold = p->phi_threshold > 0 ? p->phi_threshold : GOSSIP_PHI_THRESHOLD_DEFAULT;
    p->fd_min_std_dev_ms =
        p->fd_min_std_dev_ms ? p->fd_min_std_dev_ms : GOSSIP_FD_MIN_STD_DEV_MS_DEFAULT;
    p->fd_first_interval_ms = p->fd_first_interval_ms ? p->fd_first_interval_ms : p->interval_ms;
    p->message_bytes_max = p->message_bytes_max ? p->message_bytes_max
                                                : GOSSIP_MESSAGE_BYTES_DEFAULT;
    snprintf(g->cluster, sizeof g->cluster, "%s", o->cluster);
    p->cluster = g->cluster;
    g->rng = o->rng_seed;
    if (o->n_seeds > 0) {
        g->seeds = rkv_calloc(o->n_seeds, sizeof *g->seeds);
        if (g->seeds == NULL)
            goto nomem;
        for (size_t i = 0; i < o->n_seeds; i++)
            if (strcmp(o->seeds[i], o->self.id) != 0)
                snprintf(g->seeds[g->n_seeds++], sizeof g->seeds[0], "%s", o->seeds[i]);
    }
    struct gossip_node self = o->self;
    self.version = 1;
    self.heartbeat = 0;
    g->self = insert_member(g, 0, &self);
    if (g->self == NULL)
        goto nomem;
    *out = g;
    return RKV_OK;
nomem:
    gossip_free(g);
    return rkv_error_set(err, RKV_ERR_NOMEM, "gossip: out of memory");
}

void gossip_free(struct gossip *g)
{
    if (g == NULL)
        return;
    gossip_outbox_clear(g);
    rkv_free(g->out);
    for (size_t i = 0; i < g->n_members; i++)
        rkv_free(g->members[i]);
    rkv_free(g->members);
    rkv_free(g->seeds);
    rkv_free(g->pick);
    rkv_buf_free(&g->part[0]);
    rkv_buf_free(&g->part[1]);
    rkv_free(g);
}

/* ---- encoding ---- */

static void write_envelope(const struct gossip *g, struct mp_writer *w, uint32_t fields,
                           enum gossip_msg_type type)
{
    mp_write_array(w, 4 + fields);
    mp_write_uint(w, GOSSIP_WIRE_VERSION);
    mp_write_uint(w, type);
    mp_write_cstr(w, g->cluster);
    mp_write_cstr(w, g->self->st.id);
}

static void write_state(struct mp_writer *w, const struct gossip_node *n)
{
    mp_write_array(w, 11);
    mp_write_cstr(w, n->id);
    mp_write_cstr(w, n->host);
    mp_write_uint(w, n->client_port);
    mp_write_uint(w, n->cluster_port);
    mp_write_uint(w, n->vnodes);
    mp_write_uint(w, n->incarnation);
    mp_write_uint(w, n->version);
    mp_write_uint(w, n->heartbeat);
    mp_write_uint(w, (uint64_t)n->status);
    mp_write_uint(w, n->ring_epoch);
    mp_write_uint(w, n->handoff);
}

/* Appends an outbox entry to `to`; returns its buffer, or NULL on NOMEM. */
static struct rkv_buf *out_push(struct gossip *g, const char *to)
{
    if (g->n_out == g->cap_out &&
        rkv_grow((void **)&g->out, &g->cap_out, g->n_out + 1, sizeof *g->out) != RKV_OK)
        return NULL;
    struct gossip_out *o = &g->out[g->n_out++];
    memset(o, 0, sizeof *o);
    snprintf(o->to, sizeof o->to, "%s", to);
    return &o->msg;
}

static int out_drop_last(struct gossip *g)
{
    rkv_buf_free(&g->out[--g->n_out].msg);
    return RKV_ERR_NOMEM;
}

static int send_syn(struct gossip *g, const char *to)
{
    struct rkv_buf *b = out_push(g, to);
    if (b == NULL)
        return RKV_ERR_NOMEM;
    struct mp_writer w;
    mp_writer_init(&w, b);
    write_envelope(g, &w, 1, GOSSIP_SYN);
    mp_write_array(&w, (uint32_t)g->n_members);
    for (size_t i = 0; i < g->n_members; i++) {
        const struct gossip_node *n = &g->members[i]->st;
        mp_write_array(&w, 4);
        mp_write_cstr(&w, n->id);
        mp_write_uint(&w, n->incarnation);
        mp_write_uint(&w, n->version);
        mp_write_uint(&w, n->heartbeat);
    }
    if (w.failed)
        return out_drop_last(g);
    g->stats.sent++;
    return RKV_OK;
}

/* Adds states of the marked members (mark == g->mark) to g->part[0], as
 * many as fit in budget bytes; returns how many, or -1 on NOMEM. */
static long encode_marked(struct gossip *g, size_t budget)
{
    struct rkv_buf *b = &g->part[0];
    b->len = 0;
    struct mp_writer w;
    mp_writer_init(&w, b);
    long n = 0;
    /* from a random place, so a cut message does not always favour the
     * same members */
    size_t start = g->n_members ? (size_t)rng_below(g, g->n_members) : 0;
    for (size_t k = 0; k < g->n_members; k++) {
        struct member *m = g->members[(start + k) % g->n_members];
        if (m->mark != g->mark)
            continue;
        size_t before = b->len;
        write_state(&w, &m->st);
        if (w.failed)
            return -1;
        if (b->len > budget) {
            b->len = before;
            g->stats.truncated++;
            break;
        }
        n++;
    }
    return n;
}

/* An ACK (wants != NULL) or ACK2 carrying the marked states. */
static int send_states(struct gossip *g, const char *to, enum gossip_msg_type type,
                       const struct rkv_buf *wants, uint32_t n_wants)
{
    size_t room = g->opt.message_bytes_max - ENVELOPE_BYTES - (wants ? wants->len : 0);
    long n = encode_marked(g, room);
    if (n < 0)
        return RKV_ERR_NOMEM;
    if (n == 0 && n_wants == 0)
        return RKV_OK;
    struct rkv_buf *b = out_push(g, to);
    if (b == NULL)
        return RKV_ERR_NOMEM;
    struct mp_writer w;
    mp_writer_init(&w, b);
    write_envelope(g, &w, wants ? 2 : 1, type);
    mp_write_array(&w, (uint32_t)n);
    mp_write_raw(&w, g->part[0].data, g->part[0].len);
    if (wants) {
        mp_write_array(&w, n_wants);
        mp_write_raw(&w, wants->data, wants->len);
    }
    if (w.failed)
        return out_drop_last(g);
    g->stats.sent++;
    return RKV_OK;
}

/* ---- decoding ---- */

static bool read_id(struct mp_reader *r, char out[RKV_NODE_ID_BYTES_MAX + 1])
{
    const char *s;
    uint32_t len;
    if (!mp_read_str(r, &s, &len) || !id_ok(s, len)) {
        r->failed = true;
        return false;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

static bool read_counter(struct mp_reader *r, uint64_t *v)
{
    if (!mp_read_uint(r, v) || *v >= RKV_COUNTER_MAX) {
        r->failed = true;
        return false;
    }
    return true;
}

static bool read_state(struct mp_reader *r, struct gossip_node *n)
{
    uint32_t fields, len;
    const char *host;
    uint64_t status;
    memset(n, 0, sizeof *n);
    if (!mp_read_array(r, &fields) || fields != 11 || !read_id(r, n->id) ||
        !mp_read_str(r, &host, &len) || !host_ok(host, len))
        goto bad;
    memcpy(n->host, host, len);
    n->host[len] = '\0';
    if (!mp_read_u16(r, &n->client_port) || !mp_read_u16(r, &n->cluster_port) ||
        !mp_read_u32(r, &n->vnodes) || !read_counter(r, &n->incarnation) ||
        !read_counter(r, &n->version) || !read_counter(r, &n->heartbeat) ||
        !mp_read_uint(r, &status) || !status_ok(status) || !mp_read_uint(r, &n->ring_epoch) ||
        !mp_read_u32(r, &n->handoff))
        goto bad;
    n->status = (enum gossip_status)status;
    if (!node_fields_ok(n))
        goto bad;
    return true;
bad:
    r->failed = true;
    return false;
}

struct digest_entry {
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    uint64_t inc, ver, hb;
};

static bool read_digest_entry(struct mp_reader *r, struct digest_entry *e)
{
    uint32_t fields;
    if (!mp_read_array(r, &fields) || fields != 4 || !read_id(r, e->id) ||
        !read_counter(r, &e->inc) || !read_counter(r, &e->ver) || !read_counter(r, &e->hb) ||
        e->inc == 0) {
        r->failed = true;
        return false;
    }
    return true;
}

/* A list header: a count within RKV_NODES_MAX. */
static bool read_count(struct mp_reader *r, uint32_t *n)
{
    if (!mp_read_array(r, n) || *n > RKV_NODES_MAX) {
        r->failed = true;
        return false;
    }
    return true;
}

struct envelope {
    uint32_t fields;
    uint64_t type;
    char from[RKV_NODE_ID_BYTES_MAX + 1];
};

static int read_envelope(struct gossip *g, struct mp_reader *r, struct envelope *e)
{
    uint64_t version;
    const char *cluster;
    uint32_t len;
    if (!mp_read_array(r, &e->fields) || !mp_read_uint(r, &version)) {
        set_err(g, "gossip: not a message");
        return RKV_ERR_PROTO;
    }
    if (version != GOSSIP_WIRE_VERSION) {
        set_err(g, "gossip: wire version %llu, expected %u", (unsigned long long)version,
                GOSSIP_WIRE_VERSION);
        return RKV_ERR_PROTO;
    }
    if (!mp_read_uint(r, &e->type) || !mp_read_str(r, &cluster, &len)) {
        set_err(g, "gossip: malformed envelope");
        return RKV_ERR_PROTO;
    }
    if (len != strlen(g->cluster) || memcmp(cluster, g->cluster, len) != 0) {
        set_err(g, "gossip: message from another cluster");
        return RKV_ERR_PROTO;
    }
    if (!read_id(r, e->from)) {
        set_err(g, "gossip: bad sender id");
        return RKV_ERR_PROTO;
    }
    uint32_t want = e->type == GOSSIP_ACK ? 6 : 5;
    if ((e->type != GOSSIP_SYN && e->type != GOSSIP_ACK && e->type != GOSSIP_ACK2) ||
        e->fields != want) {
        set_err(g, "gossip: unknown message type %llu or wrong field count",
                (unsigned long long)e->type);
        return RKV_ERR_PROTO;
    }
    return RKV_OK;
}

/* Validates a whole message body (after the envelope). */
static bool body_ok(struct mp_reader *r, uint64_t type)
{
    uint32_t n;
    if (!read_count(r, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (type == GOSSIP_SYN) {
            struct digest_entry e;
            if (!read_digest_entry(r, &e))
                return false;
        } else {
            struct gossip_node st;
            if (!read_state(r, &st))
                return false;
        }
    }
    if (type == GOSSIP_ACK) {
        char id[RKV_NODE_ID_BYTES_MAX + 1];
        if (!read_count(r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++)
            if (!read_id(r, id))
                return false;
    }
    return mp_done(r);
}

/* ---- applying ---- */

/* A rumour about this node that is newer than its own state. */
static void on_rumour_of_self(struct gossip *g, const struct gossip_node *st)
{
    struct gossip_node *me = &g->self->st;
    if (st->status == GOSSIP_REMOVED && st->incarnation == me->incarnation) {
        /* an operator's remove: kept, not refuted */
        *me = *st;
        return;
    }
    uint64_t inc = st->incarnation, ver = st->version;
    if (inc == me->incarnation && me->version > ver)
        ver = me->version;
    /* the next version, or when a forged rumour used up the versions (it
     * may carry RKV_COUNTER_MAX - 1), version 1 of the next incarnation;
     * never a counter a peer would refuse. Both used up: not refutable. */
    if (ver + 1 < RKV_COUNTER_MAX) {
        me->version = ver + 1;
    } else if (inc + 1 < RKV_COUNTER_MAX) {
        inc++;
        me->version = 1;
    } else {
        return;
    }
    me->incarnation = inc;
    me->heartbeat = st->heartbeat > me->heartbeat ? st->heartbeat : me->heartbeat;
    g->stats.refutations++;
}

static int apply_state(struct gossip *g, uint64_t now_ms, const struct gossip_node *st)
{
    long i = find_index(g, st->id, strlen(st->id));
    struct member *m = i >= 0 ? g->members[i] : NULL;
    if (m != NULL && state_cmp(st, &m->st) <= 0) {
        g->stats.states_stale++;
        return RKV_OK;
    }
    if (m == g->self) {
        on_rumour_of_self(g, st);
        return RKV_OK;
    }
    /* a state of version 0 was never made by its member (the cluster
     * file's word, passed on): no sign of life */
    bool beat = st->version > 0;
    if (m == NULL) {
        m = insert_member(g, (size_t)(-i - 1), st);
        if (m == NULL)
            return g->n_members >= RKV_NODES_MAX ? RKV_OK : RKV_ERR_NOMEM;
    } else {
        beat = beat && (st->incarnation > m->st.incarnation ||
                        (st->incarnation == m->st.incarnation && st->heartbeat > m->st.heartbeat));
        m->st = *st;
    }
    g->stats.states_applied++;
    if (beat)
        fd_arrival(g, &m->fd, now_ms);
    return RKV_OK;
}

/* Applies the states list the reader is at. */
static int apply_states(struct gossip *g, uint64_t now_ms, struct mp_reader *r)
{
    uint32_t n;
    int rc = RKV_OK;
    read_count(r, &n);
    for (uint32_t i = 0; i < n; i++) {
        struct gossip_node st;
        read_state(r, &st);
        int one = apply_state(g, now_ms, &st);
        rc = rc == RKV_OK ? one : rc;
    }
    return rc;
}

/* SYN: answer with the states the sender lacks or holds older, and ask for
 * the ones this node lacks or holds older. */
static int on_syn(struct gossip *g, const struct envelope *e, struct mp_reader *r)
{
    uint32_t n, n_wants = 0;
    read_count(r, &n);
    g->mark += 2;
    uint64_t named = g->mark - 1; /* in the digest and not older there */
    struct rkv_buf *wants = &g->part[1];
    wants->len = 0;
    struct mp_writer w;
    mp_writer_init(&w, wants);
    size_t wants_max = (g->opt.message_bytes_max - ENVELOPE_BYTES) / 2;
    for (uint32_t i = 0; i < n; i++) {
        struct digest_entry d;
        read_digest_entry(r, &d);
        struct member *m = find_member(g, d.id, strlen(d.id));
        int c = m ? digest_cmp(&m->st, d.inc, d.ver, d.hb) : -1;
        if (m != NULL)
            m->mark = c > 0 ? g->mark : named;
        if (c < 0 && wants->len + 2 + RKV_NODE_ID_BYTES_MAX <= wants_max) {
            mp_write_cstr(&w, d.id);
            n_wants++;
        }
    }
    if (w.failed)
        return RKV_ERR_NOMEM;
    /* members the digest did not name are sent too */
    for (size_t i = 0; i < g->n_members; i++)
        if (g->members[i]->mark != named)
            g->members[i]->mark = g->mark;
    return send_states(g, e->from, GOSSIP_ACK, wants, n_wants);
}

/* ACK: apply its states, then send the ones it wants. */
static int on_ack(struct gossip *g, uint64_t now_ms, const struct envelope *e,
                  struct mp_reader *r)
{
    int rc = apply_states(g, now_ms, r);
    uint32_t n;
    read_count(r, &n);
    g->mark += 2;
    for (uint32_t i = 0; i < n; i++) {
        char id[RKV_NODE_ID_BYTES_MAX + 1];
        read_id(r, id);
        struct member *m = find_member(g, id, strlen(id));
        if (m != NULL)
            m->mark = g->mark;
    }
    int sent = send_states(g, e->from, GOSSIP_ACK2, NULL, 0);
    return rc != RKV_OK ? rc : sent;
}

int gossip_on_message(struct gossip *g, uint64_t now_ms, const void *data, size_t len)
{
    return gossip_on_message_from(g, now_ms, NULL, data, len);
}

int gossip_on_message_from(struct gossip *g, uint64_t now_ms, const char *sender,
                           const void *data, size_t len)
{
    g->errmsg[0] = '\0';
    g->stats.received++;
    if (len > g->opt.message_bytes_max) {
        g->stats.refused++;
        set_err(g, "gossip: message of %zu bytes, limit %u", len, g->opt.message_bytes_max);
        return RKV_ERR_TOOBIG;
    }
    struct mp_reader r;
    struct envelope e;
    mp_reader_init(&r, data, len);
    int rc = read_envelope(g, &r, &e);
    if (rc == RKV_OK && sender != NULL && strcmp(e.from, sender) != 0) {
        set_err(g, "gossip: a message from %s says it is from %s", sender, e.from);
        rc = RKV_ERR_PROTO;
    }
    if (rc == RKV_OK && !body_ok(&r, e.type)) {
        set_err(g, "gossip: malformed message body");
        rc = RKV_ERR_PROTO;
    }
    if (rc != RKV_OK) {
        g->stats.refused++;
        return rc;
    }
    /* valid: read it again and apply */
    mp_reader_init(&r, data, len);
    read_envelope(g, &r, &e);
    if (e.type == GOSSIP_SYN)
        return on_syn(g, &e, &r);
    if (e.type == GOSSIP_ACK)
        return on_ack(g, now_ms, &e, &r);
    return apply_states(g, now_ms, &r);
}

/* ---- rounds ---- */

static bool member_alive(const struct gossip *g, const struct member *m, uint64_t now_ms)
{
    if (m->st.status == GOSSIP_REMOVED)
        return false;
    if (m == g->self)
        return true;
    return fd_phi(g, &m->fd, now_ms) < g->opt.phi_threshold;
}

/* Picks the live (alive == true) or suspect peers into g->pick; count. */
static size_t collect_peers(struct gossip *g, uint64_t now_ms, bool alive)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_members; i++) {
        struct member *m = g->members[i];
        if (m == g->self || m->st.status == GOSSIP_REMOVED)
            continue;
        if (member_alive(g, m, now_ms) == alive)
            g->pick[n++] = (uint32_t)i;
    }
    return n;
}

void gossip_tick(struct gossip *g, uint64_t now_ms)
{
    g->last_tick_ms = now_ms;
    g->ticked = true;
    if (g->self->st.status == GOSSIP_REMOVED)
        return;
    if (g->self->st.heartbeat + 1 < RKV_COUNTER_MAX) /* a forged rumour can take it there */
        g->self->st.heartbeat++;
    g->stats.rounds++;
    if (g->cap_pick < g->n_members &&
        rkv_grow((void **)&g->pick, &g->cap_pick, g->n_members, sizeof *g->pick) != RKV_OK)
        return; /* out of memory: skip the round, the next one retries */
    const char *peer = NULL;
    size_t live = collect_peers(g, now_ms, true);
    if (live > 0) {
        peer = g->members[g->pick[rng_below(g, live)]]->st.id;
        send_syn(g, peer);
    }
    if (g->n_seeds > 0 && (live == 0 || g->stats.rounds % g->opt.seed_every == 0)) {
        const char *seed = g->seeds[rng_below(g, g->n_seeds)];
        if (peer == NULL || strcmp(seed, peer) != 0)
            send_syn(g, seed);
    }
    size_t dead = collect_peers(g, now_ms, false);
    if (dead > 0 && rng_below(g, live + 1 + dead) < dead)
        send_syn(g, g->members[g->pick[rng_below(g, dead)]]->st.id);
}

uint64_t gossip_next_deadline(const struct gossip *g)
{
    return g->ticked ? g->last_tick_ms + g->opt.interval_ms : 0;
}

/* ---- commands and queries ---- */

/* This node's state changed: the next version, or version 1 of the next
 * incarnation when a forged rumour used the versions up. */
static void self_changed(struct gossip *g)
{
    struct gossip_node *me = &g->self->st;
    if (me->version + 1 < RKV_COUNTER_MAX) {
        me->version++;
    } else if (me->incarnation + 1 < RKV_COUNTER_MAX) {
        me->incarnation++;
        me->version = 1;
    }
}

int gossip_set_status(struct gossip *g, enum gossip_status status)
{
    if (status != GOSSIP_JOINING && status != GOSSIP_UP && status != GOSSIP_LEAVING)
        return RKV_ERR_INVAL;
    if (g->self->st.status == GOSSIP_REMOVED)
        return RKV_ERR_INVAL;
    g->self->st.status = status;
    self_changed(g);
    return RKV_OK;
}

int gossip_set_progress(struct gossip *g, uint64_t ring_epoch, uint32_t handoff)
{
    struct gossip_node *me = &g->self->st;
    if (handoff > RKV_PARTITIONS_MAX)
        return RKV_ERR_INVAL;
    /* a removed node's state is the remover's: it stays as it was spread */
    if (me->status == GOSSIP_REMOVED || (me->ring_epoch == ring_epoch && me->handoff == handoff))
        return RKV_OK;
    me->ring_epoch = ring_epoch;
    me->handoff = handoff;
    self_changed(g);
    return RKV_OK;
}

bool gossip_change_pending(const struct gossip *g, uint64_t now_ms, char *why, size_t size)
{
    const struct gossip_node *me = &g->self->st;
    char none[1];
    if (why == NULL || size == 0) {
        why = none;
        size = sizeof none;
    }
    if (me->handoff > 0) {
        snprintf(why, size, "%s has %u partitions to hand over", me->id, me->handoff);
        return true;
    }
    for (size_t i = 0; i < g->n_members; i++) {
        const struct member *m = g->members[i];
        const struct gossip_node *st = &m->st;
        if (m == g->self || !member_alive(g, m, now_ms))
            continue;
        if (st->status == GOSSIP_JOINING &&
            (me->status != GOSSIP_JOINING || strcmp(st->id, me->id) < 0)) {
            snprintf(why, size, "%s is joining", st->id);
            return true;
        }
        if (st->status == GOSSIP_LEAVING) {
            snprintf(why, size, "%s is leaving", st->id);
            return true;
        }
        if (st->status != GOSSIP_UP)
            continue;
        if (st->ring_epoch == 0) { /* a state from before it said (cluster.toml's) */
            snprintf(why, size, "%s: which ring it serves is not known here yet", st->id);
            return true;
        }
        if (st->ring_epoch != me->ring_epoch) {
            snprintf(why, size, "%s serves ring %016llx, this node %016llx", st->id,
                     (unsigned long long)st->ring_epoch, (unsigned long long)me->ring_epoch);
            return true;
        }
        if (st->handoff > 0) {
            snprintf(why, size, "%s has %u partitions to hand over", st->id, st->handoff);
            return true;
        }
    }
    return false;
}

int gossip_learn(struct gossip *g, const struct gossip_node *st)
{
    if (!node_fields_ok(st))
        return RKV_ERR_INVAL;
    long i = find_index(g, st->id, strlen(st->id));
    if (i < 0)
        return insert_member(g, (size_t)(-i - 1), st) ? RKV_OK : RKV_ERR_NOMEM;
    struct member *m = g->members[i];
    if (m != g->self && state_cmp(st, &m->st) > 0)
        m->st = *st;
    return RKV_OK;
}

int gossip_remove(struct gossip *g, const char *id)
{
    return gossip_remove_at(g, id, 0);
}

int gossip_remove_at(struct gossip *g, const char *id, uint64_t incarnation)
{
    struct member *m = find_member(g, id, strlen(id));
    if (m == NULL)
        return RKV_ERR_NOTFOUND;
    if (m == g->self)
        return RKV_ERR_INVAL;
    if (m->st.status == GOSSIP_REMOVED)
        return RKV_OK;
    m->st.status = GOSSIP_REMOVED;
    if (incarnation > m->st.incarnation && incarnation < RKV_COUNTER_MAX) {
        m->st.incarnation = incarnation;
        m->st.version = 1;
    } else {
        m->st.version++;
    }
    return RKV_OK;
}

size_t gossip_member_count(const struct gossip *g)
{
    return g->n_members;
}

const struct gossip_node *gossip_member(const struct gossip *g, size_t idx)
{
    return idx < g->n_members ? &g->members[idx]->st : NULL;
}

const struct gossip_node *gossip_find(const struct gossip *g, const char *id)
{
    struct member *m = find_member(g, id, strlen(id));
    return m ? &m->st : NULL;
}

const struct gossip_node *gossip_self(const struct gossip *g)
{
    return &g->self->st;
}

bool gossip_self_removed(const struct gossip *g)
{
    return g->self->st.status == GOSSIP_REMOVED;
}

double gossip_phi(const struct gossip *g, const char *id, uint64_t now_ms)
{
    struct member *m = find_member(g, id, strlen(id));
    if (m == NULL || m->st.status == GOSSIP_REMOVED)
        return INFINITY;
    if (m == g->self)
        return 0;
    return fd_phi(g, &m->fd, now_ms);
}

bool gossip_alive(const struct gossip *g, const char *id, uint64_t now_ms)
{
    struct member *m = find_member(g, id, strlen(id));
    return m != NULL && member_alive(g, m, now_ms);
}

struct gossip_out *gossip_outbox(struct gossip *g, size_t *n)
{
    *n = g->n_out;
    return g->out;
}

void gossip_outbox_clear(struct gossip *g)
{
    for (size_t i = 0; i < g->n_out; i++)
        rkv_buf_free(&g->out[i].msg);
    g->n_out = 0;
}

const char *gossip_errmsg(const struct gossip *g)
{
    return g->errmsg;
}

void gossip_stats(const struct gossip *g, struct gossip_stats *st)
{
    *st = g->stats;
}

bool gossip_invariants_ok(const struct gossip *g)
{
    if (g->n_members == 0 || g->n_members > RKV_NODES_MAX || g->self == NULL)
        return false;
    bool self_found = false;
    for (size_t i = 0; i < g->n_members; i++) {
        const struct member *m = g->members[i];
        if (!node_fields_ok(&m->st) || m->fd.n > g->opt.fd_window ||
            m->fd.head >= g->opt.fd_window)
            return false;
        if (i > 0 && strcmp(g->members[i - 1]->st.id, m->st.id) >= 0)
            return false;
        self_found |= m == g->self;
    }
    return self_found;
}
