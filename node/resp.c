/*
 * resp.c: the Redis-protocol (RESP2) endpoint of ringkvd (docs/resp.md).
 *
 * A plain TCP listener on the node's resp_port, polled by the node's own
 * loop (zmq_poll takes file descriptors too), so a command costs no thread
 * hop. Requests are parsed by common/resp.c, turned into the same GET, PUT
 * and DEL requests a libringkv client sends, and given to this node's
 * coordinator with a reply route that names the connection, the command
 * and the part of it (node_resp_token). Replies come back through
 * resp_on_reply in any order; each connection keeps its commands in a
 * queue and writes their replies in the order the commands came, which is
 * what pipelining clients rely on.
 *
 * Commands that need to read before they write (SET NX/XX, DEL, EXPIRE)
 * run in two phases: a get at the default R, then a put or delete with
 * the context that get returned, so they supersede exactly what they saw.
 * They are not atomic: a concurrent write between the phases becomes a
 * sibling, as any write does in this store.
 *
 * Bounds: resp.connections_max connections (more are answered with an
 * error and closed); per connection at most inflight_per_client requests
 * in flight and as many commands queued; a request at most
 * message_bytes_max bytes; replies waiting to be written at most
 * message_bytes_max bytes before the connection stops being read. A
 * protocol error gets an error reply and the connection is closed once it
 * is written.
 */
#include "node/node.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/resp.h"

#include <xxhash.h>

#define READ_BYTES      (64u * 1024)  /* one read() */
#define READ_PER_TURN   (256u * 1024) /* per connection and loop turn */
#define ACCEPT_PER_TURN 64
#define KEEP_BYTES      (64u * 1024) /* buffers larger than this are returned when idle */
#define REDIS_VERSION   "7.0.0"      /* what INFO and HELLO claim to speak */
#define KEY_SLOTS       1024         /* per connection: keys in flight, hashed */

/* What a command's reply is made of. */
enum call_kind {
    K_DONE = 0, /* the reply is written already */
    K_GET,      /* bulk of the newest sibling, or nil */
    K_MGET,     /* array of those */
    K_WRITE,    /* +OK once every part succeeded (SET, SETEX, MSET) */
    K_SET_NX,   /* get, then put if absent: +OK or nil */
    K_SET_XX,   /* get, then put if present */
    K_DEL,      /* get each, delete those found: count */
    K_EXISTS,   /* get each: count of found */
    K_EXPIRE,   /* get, then put again with a new expiry: 1 or 0 */
    K_TTL,      /* get: seconds left, -1, -2 */
    K_PTTL,
    K_FLUSH, /* an overwriting delete of every key this node stores */
};

#define FLUSH_INFLIGHT 256 /* FLUSHALL's deletes in flight at once */

struct call {
    uint8_t kind;
    uint8_t phase; /* two-phase kinds: 0 reading, 1 writing */
    bool done;
    uint32_t nkeys;
    uint32_t waiting; /* parts in flight */
    int64_t count;
    uint64_t ttl_ms; /* SET with EX/PX, EXPIRE */
    bool delete_now; /* EXPIRE with a time in the past */
    int error;       /* first failure of a part */
    char errmsg[RESP_ERROR_BYTES];
    struct rkv_buf reply;  /* the reply (or MGET's parts, in key order) */
    struct rkv_buf keep;   /* keys (and SET's value) for the second phase */
    struct rkv_buf offs;   /* uint32 offsets of the keys in keep, then the end */
    struct rkv_buf *parts; /* MGET: one reply per key */
    uint32_t cap_parts;
    uint32_t flush_part; /* FLUSHALL: the partition being listed, and where */
    uint64_t flush_cursor;
    bool writes;          /* its slots count as writes */
    struct rkv_buf slots; /* uint16 key slots it holds until done (see key_slots) */
};

struct conn {
    int fd; /* -1: free */
    uint32_t gen;
    bool closing; /* write what is queued, then close */
    bool barrier; /* a FLUSHALL is in flight: nothing else starts */
    bool ready;   /* on the ready list */
    struct resp_parser parser;
    struct rkv_buf in;
    size_t in_off; /* consumed bytes at the front of in */
    struct rkv_buf out;
    size_t out_off;     /* written bytes at the front of out */
    struct call *calls; /* a ring of cap_calls commands */
    uint32_t cap_calls, head, n_calls;
    uint64_t head_seq;     /* seq of calls[head] */
    uint32_t inflight;     /* parts in flight */
    uint16_t *slot_reads;  /* KEY_SLOTS: commands in flight reading keys of the slot */
    uint16_t *slot_writes; /* ...and writing them */
    char name[64];
};

struct resp_server {
    int listen_fd;
    struct conn *conns;
    uint32_t n_conns, cap_conns, open;
    uint32_t *ready; /* connections to look at after the turn */
    uint32_t n_ready;
    uint32_t queue_max;   /* commands and parts in flight per connection */
    struct rkv_buf slots; /* scratch: the key slots of the command being parsed */
    size_t out_max;       /* replies waiting to be written, per connection */
};

/* ---- helpers ---- */

/* No more commands are taken from c until it has room again. */
static bool conn_paused(const struct resp_server *s, const struct conn *c)
{
    return c->closing || c->barrier || c->n_calls == s->queue_max || c->inflight >= s->queue_max ||
           c->out.len - c->out_off > s->out_max;
}

/* Room for one more command in c's ring (grown up to queue_max). */
static bool calls_room(const struct resp_server *s, struct conn *c)
{
    if (c->n_calls < c->cap_calls)
        return true;
    if (c->cap_calls >= s->queue_max)
        return false;
    uint32_t cap = c->cap_calls ? 2 * c->cap_calls : 16;
    if (cap > s->queue_max)
        cap = s->queue_max;
    struct call *calls = rkv_calloc(cap, sizeof *calls);
    if (calls == NULL)
        return false;
    for (uint32_t i = 0; i < c->cap_calls; i++) /* in order, from the head */
        calls[i] = c->calls[(c->head + i) % c->cap_calls];
    rkv_free(c->calls);
    c->calls = calls;
    c->cap_calls = cap;
    c->head = 0;
    return true;
}

static void mark_ready(struct resp_server *s, uint32_t idx)
{
    struct conn *c = &s->conns[idx];
    if (!c->ready) {
        c->ready = true;
        s->ready[s->n_ready++] = idx;
    }
}

static struct call *call_at(struct conn *c, uint64_t seq)
{
    if (seq < c->head_seq || seq - c->head_seq >= c->n_calls)
        return NULL;
    return &c->calls[(c->head + (uint32_t)(seq - c->head_seq)) % c->cap_calls];
}

static void call_reset(struct call *k)
{
    k->kind = K_DONE;
    k->phase = 0;
    k->done = false;
    k->nkeys = k->waiting = 0;
    k->count = 0;
    k->ttl_ms = 0;
    k->delete_now = false;
    k->error = RKV_OK;
    k->errmsg[0] = '\0';
    k->reply.len = k->keep.len = k->offs.len = k->slots.len = 0;
    k->writes = false;
}

static void buf_trim(struct rkv_buf *b)
{
    if (b->cap > KEEP_BYTES)
        rkv_buf_free(b);
}

static void call_free(struct call *k)
{
    rkv_buf_free(&k->reply);
    rkv_buf_free(&k->keep);
    rkv_buf_free(&k->offs);
    rkv_buf_free(&k->slots);
    for (uint32_t i = 0; i < k->cap_parts; i++)
        rkv_buf_free(&k->parts[i]);
    rkv_free(k->parts);
    k->parts = NULL;
    k->cap_parts = 0;
}

/* A command's key i (from keep). */
static void call_key(const struct call *k, uint32_t i, const uint8_t **p, uint32_t *len)
{
    uint32_t a = rkv_get_u32(k->offs.data + 4 * i), b = rkv_get_u32(k->offs.data + 4 * (i + 1));
    *p = k->keep.data + a;
    *len = b - a;
}

static int keep_add(struct call *k, const void *p, size_t len)
{
    uint8_t off[4];
    if (k->offs.len == 0) {
        rkv_put_u32(off, 0);
        if (rkv_buf_append(&k->offs, off, 4) != RKV_OK)
            return RKV_ERR_NOMEM;
    }
    if (rkv_buf_append(&k->keep, p, len) != RKV_OK)
        return RKV_ERR_NOMEM;
    rkv_put_u32(off, (uint32_t)k->keep.len);
    return rkv_buf_append(&k->offs, off, 4);
}

/* ---- the coordinator side ---- */

/* Sends one part of a command to the coordinator. On failure the part
 * counts as failed at once. */
static void submit(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub,
                   const struct wire_msg *req)
{
    struct resp_server *s = n->resp;
    struct conn *c = &s->conns[idx];
    struct call *k = call_at(c, seq);
    struct node_resp_route route = {.conn = idx, .gen = c->gen, .sub = sub, .seq = seq};
    uint64_t token = node_resp_token(n, &route);
    if (token == UINT64_MAX) {
        if (k->error == RKV_OK) {
            k->error = RKV_ERR_BUSY;
            snprintf(k->errmsg, sizeof k->errmsg, "queue_depth_max (%u) requests in flight",
                     n->cfg->queue_depth_max);
        }
        return;
    }
    k->waiting++;
    c->inflight++;
    /* no frame: the coordinator encodes the request only if it forwards it */
    coord_on_client(n->coord, n->now_ms, token, req, NULL, 0, false);
}

static void submit_get(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                       uint32_t key_len)
{
    submit(n, idx, seq, sub, &(struct wire_msg){.type = WIRE_GET, .key = {key, key_len}});
}

static void submit_put(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                       uint32_t key_len, const uint8_t *value, uint32_t value_len,
                       const struct wire_bytes *ctx, uint64_t ttl_ms)
{
    submit(n, idx, seq, sub,
           &(struct wire_msg){.type = WIRE_PUT,
                              .key = {key, key_len},
                              .value = {value, value_len},
                              .context = ctx ? *ctx : (struct wire_bytes){0},
                              .ttl_ms = ttl_ms,
                              .flags = ctx ? 0 : WIRE_FLAG_OVERWRITE});
}

static void submit_del(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                       uint32_t key_len, const struct wire_bytes *ctx)
{
    submit(n, idx, seq, sub,
           &(struct wire_msg){.type = WIRE_DEL, .key = {key, key_len}, .context = *ctx});
}

/* What a get found: the newest live sibling (by timestamp, ties broken by
 * the larger value, so every node shows the same one) and the context. */
struct found {
    bool any;
    const uint8_t *value;
    uint32_t value_len;
    uint64_t ts_ms, expiry_ms;
    struct wire_bytes ctx;
};

static bool read_get_reply(const struct wire_msg *m, struct found *f)
{
    *f = (struct found){0};
    struct mp_reader r;
    mp_reader_init(&r, m->payload.p, m->payload.len);
    uint32_t fields, n;
    if (!mp_read_array(&r, &fields) || fields != 2 || !mp_read_array(&r, &n) ||
        n > RKV_SIBLINGS_MAX)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t len;
        uint64_t ts, exp;
        if (!mp_read_array(&r, &fields) || fields != 3 || !mp_read_bin(&r, &p, &len) ||
            !mp_read_uint(&r, &ts) || !mp_read_uint(&r, &exp))
            return false;
        int cmp = 0;
        if (f->any && ts == f->ts_ms) {
            uint32_t l = len < f->value_len ? len : f->value_len;
            cmp = l ? memcmp(p, f->value, l) : 0;
            if (cmp == 0)
                cmp = len > f->value_len ? 1 : len < f->value_len ? -1 : 0;
        }
        if (!f->any || ts > f->ts_ms || cmp > 0) {
            f->any = true;
            f->value = p;
            f->value_len = len;
            f->ts_ms = ts;
            f->expiry_ms = exp;
        }
    }
    return mp_read_bin(&r, &f->ctx.p, &f->ctx.len) && mp_done(&r);
}

static void fail_part(struct call *k, const struct wire_msg *m)
{
    if (k->error != RKV_OK)
        return;
    k->error = (int)m->status;
    if (m->message.len) /* the coordinator's messages say what failed */
        snprintf(k->errmsg, sizeof k->errmsg, "%.*s", (int)m->message.len,
                 (const char *)m->message.p);
    else
        snprintf(k->errmsg, sizeof k->errmsg, "%s", rkv_strerror((int)m->status));
}

/* A reply to a get part; false if it was an error (recorded). */
static bool got(struct call *k, const struct wire_msg *m, struct found *f)
{
    static const struct wire_msg unreadable = {
        .status = RKV_ERR_PROTO, .message = {(const uint8_t *)"unreadable get reply", 20}};
    if ((m->status == RKV_OK || m->status == RKV_ERR_NOTFOUND) && read_get_reply(m, f))
        return true;
    fail_part(k, m->status == RKV_OK || m->status == RKV_ERR_NOTFOUND ? &unreadable : m);
    return false;
}

static int reply_found(struct rkv_buf *out, const struct found *f)
{
    return f->any ? resp_bulk(out, f->value, f->value_len) : resp_nil(out);
}

/* Whether key i of k is also an earlier key of it. */
static bool named_before(const struct call *k, uint32_t i)
{
    const uint8_t *key, *other;
    uint32_t len, olen;
    call_key(k, i, &key, &len);
    for (uint32_t j = 0; j < i; j++) {
        call_key(k, j, &other, &olen);
        if (olen == len && memcmp(other, key, len) == 0)
            return true;
    }
    return false;
}

/* The second phase of SET NX/XX, DEL and EXPIRE, from a get's answer. */
static void second_phase(struct node *n, uint32_t idx, uint64_t seq, struct call *k, uint32_t sub,
                         const struct found *f)
{
    const uint8_t *key;
    uint32_t key_len;
    call_key(k, sub, &key, &key_len);
    switch (k->kind) {
    case K_SET_NX:
    case K_SET_XX:
        if (f->any == (k->kind == K_SET_XX)) {
            const uint8_t *value;
            uint32_t value_len;
            call_key(k, 1, &value, &value_len);
            k->phase = 1;
            submit_put(n, idx, seq, 0, key, key_len, value, value_len, &f->ctx, k->ttl_ms);
        } else {
            resp_nil(&k->reply);
        }
        break;
    case K_DEL: /* the delete of key i is part nkeys + i; a key named twice counts once */
        if (f->any && !named_before(k, sub)) {
            k->count++;
            submit_del(n, idx, seq, k->nkeys + sub, key, key_len, &f->ctx);
        }
        break;
    case K_EXPIRE:
        if (!f->any)
            break;
        k->count = 1;
        k->phase = 1;
        if (k->delete_now)
            submit_del(n, idx, seq, 0, key, key_len, &f->ctx);
        else
            submit_put(n, idx, seq, 0, key, key_len, f->value, f->value_len, &f->ctx, k->ttl_ms);
        break;
    default:
        break;
    }
}

/* A command is done: later commands on its keys may go. */
static void call_done(struct conn *c, struct call *k)
{
    k->done = true;
    if (k->kind == K_FLUSH || k->kind == K_DONE)
        c->barrier = false; /* only a barrier command was running */
    for (size_t i = 0; i + 2 <= k->slots.len; i += 2) {
        uint16_t slot = rkv_get_u16(k->slots.data + i);
        if (k->writes)
            c->slot_writes[slot]--;
        else
            c->slot_reads[slot]--;
    }
    k->slots.len = 0;
}

/* Builds the reply of a command whose parts are all back. */
static void finish_call(struct conn *c, struct call *k)
{
    if (k->error != RKV_OK) {
        k->reply.len = 0;
        resp_error(&k->reply, "ERR %s", k->errmsg);
    } else {
        switch (k->kind) {
        case K_MGET:
            k->reply.len = 0;
            resp_array(&k->reply, k->nkeys);
            for (uint32_t i = 0; i < k->nkeys; i++)
                rkv_buf_append(&k->reply, k->parts[i].data, k->parts[i].len);
            break;
        case K_WRITE:
        case K_FLUSH:
            resp_simple(&k->reply, "OK");
            break;
        case K_SET_NX:
        case K_SET_XX:
            if (k->phase == 1) /* else the condition failed: nil is written */
                resp_simple(&k->reply, "OK");
            break;
        case K_DEL:
        case K_EXISTS:
        case K_EXPIRE:
            resp_int(&k->reply, k->count);
            break;
        default:
            break; /* GET, TTL, PTTL wrote theirs */
        }
    }
    call_done(c, k);
}

struct flush_ctx {
    struct node *n;
    uint32_t idx;
    uint64_t seq;
};

static int flush_key(void *arg, const void *key, size_t key_len, const struct store_meta *meta)
{
    (void)meta;
    struct flush_ctx *f = arg;
    submit(f->n, f->idx, f->seq, 0,
           &(struct wire_msg){
               .type = WIRE_DEL, .key = {key, (uint32_t)key_len}, .flags = WIRE_FLAG_OVERWRITE});
    return 0;
}

/* Keeps FLUSHALL's deletes going: lists more keys while fewer than
 * FLUSH_INFLIGHT are in flight, partition by partition. */
static void flush_more(struct node *n, uint32_t idx, uint64_t seq, struct call *k)
{
    struct flush_ctx f = {.n = n, .idx = idx, .seq = seq};
    uint32_t parts = n->cfg->partitions;
    while (k->error == RKV_OK && k->waiting < FLUSH_INFLIGHT && k->flush_part < parts) {
        int rc = store_list(n->store, (uint16_t)k->flush_part, &k->flush_cursor,
                            FLUSH_INFLIGHT - k->waiting, flush_key, &f);
        if (rc != RKV_OK) {
            k->error = rc;
            snprintf(k->errmsg, sizeof k->errmsg, "listing the keys: %s", rkv_strerror(rc));
        } else if (k->flush_cursor == STORE_CURSOR_END) {
            k->flush_part++;
            k->flush_cursor = 0;
        }
    }
}

void resp_on_reply(struct node *n, const struct node_resp_route *rt, const void *msg, size_t len)
{
    struct resp_server *s = n->resp;
    if (s == NULL || rt->conn >= s->n_conns)
        return;
    struct conn *c = &s->conns[rt->conn];
    struct call *k = c->fd >= 0 && c->gen == rt->gen ? call_at(c, rt->seq) : NULL;
    if (k == NULL || k->waiting == 0)
        return; /* the connection is gone */
    k->waiting--;
    c->inflight--;
    mark_ready(s, rt->conn);
    struct wire_msg m;
    if (msg == NULL || wire_decode(msg, len, &m) != RKV_OK || m.type != WIRE_REPLY) {
        m = (struct wire_msg){.status = msg ? RKV_ERR_PROTO : RKV_ERR_BUSY,
                              .message = {(const uint8_t *)"no reply", 8}};
    }
    struct found f;
    bool write = k->kind == K_WRITE || k->kind == K_FLUSH || k->phase == 1 ||
                 (k->kind == K_DEL && rt->sub >= k->nkeys);
    if (write) {
        if (m.status != RKV_OK)
            fail_part(k, &m);
    } else if (got(k, &m, &f)) {
        uint64_t now = n->now_ms;
        switch (k->kind) {
        case K_GET:
            reply_found(&k->reply, &f);
            break;
        case K_MGET: /* one reply, bounded like one message of the native protocol */
            if (rt->sub < k->nkeys && (size_t)k->count + f.value_len > s->out_max) {
                k->error = RKV_ERR_TOOBIG;
                snprintf(k->errmsg, sizeof k->errmsg,
                         "the values would take more than limits.message_bytes_max (%zu bytes)",
                         s->out_max);
            } else if (rt->sub < k->nkeys) {
                k->count += f.value_len;
                reply_found(&k->parts[rt->sub], &f);
            }
            break;
        case K_EXISTS:
            k->count += f.any;
            break;
        case K_TTL:
        case K_PTTL: {
            int64_t left = !f.any               ? -2
                           : f.expiry_ms == 0   ? -1
                           : f.expiry_ms <= now ? 0
                                                : (int64_t)(f.expiry_ms - now);
            if (left > 0 && k->kind == K_TTL)
                left = (left + 500) / 1000;
            resp_int(&k->reply, left);
            break;
        }
        default:
            second_phase(n, rt->conn, rt->seq, k, rt->sub, &f);
            break;
        }
    } else if (k->kind == K_MGET && rt->sub < k->nkeys) {
        resp_nil(&k->parts[rt->sub]); /* the error is reported for the whole command */
    }
    if (k->kind == K_FLUSH)
        flush_more(n, rt->conn, rt->seq, k);
    if (k->waiting == 0)
        finish_call(c, k);
}

/* ---- commands ---- */

struct cmd_ctx {
    struct node *n;
    uint32_t idx;
    struct conn *c;
    struct call *k;
    uint64_t seq;
    const uint8_t *buf; /* the request's bytes */
    const struct resp_parser *p;
};

static const uint8_t *arg(const struct cmd_ctx *x, uint32_t i, uint32_t *len)
{
    *len = x->p->args[i].len;
    return resp_arg_ptr(x->p, x->buf, i);
}

static bool arg_is(const struct cmd_ctx *x, uint32_t i, const char *name)
{
    uint32_t len;
    const uint8_t *a = arg(x, i, &len);
    return resp_arg_is(a, len, name);
}

static void reply_done(struct cmd_ctx *x)
{
    x->k->kind = K_DONE;
    call_done(x->c, x->k);
}

static void reply_error(struct cmd_ctx *x, const char *text)
{
    x->k->reply.len = 0;
    resp_error(&x->k->reply, "%s", text);
    reply_done(x);
}

/* Keys are checked here, so that a bad one fails the command before any
 * part of it is sent. */
static bool keys_ok(struct cmd_ctx *x, uint32_t first, uint32_t step)
{
    if ((x->p->n - first + step - 1) / step > x->n->resp->queue_max) {
        char msg[96];
        snprintf(msg, sizeof msg, "ERR more than %u keys in one command", x->n->resp->queue_max);
        reply_error(x, msg);
        return false;
    }
    for (uint32_t i = first; i < x->p->n; i += step) {
        if (x->p->args[i].len == 0 || x->p->args[i].len > x->n->cfg->key_bytes_max) {
            char msg[96];
            snprintf(msg, sizeof msg, "ERR a key must be 1 to %u bytes", x->n->cfg->key_bytes_max);
            reply_error(x, msg);
            return false;
        }
    }
    return true;
}

static bool value_ok(struct cmd_ctx *x, uint32_t i)
{
    if (x->p->args[i].len <= x->n->cfg->value_bytes_max)
        return true;
    char msg[96];
    snprintf(msg, sizeof msg, "ERR a value must be at most %u bytes (limits.value_bytes_max)",
             x->n->cfg->value_bytes_max);
    reply_error(x, msg);
    return false;
}

/* A time argument in units of unit_ms; false (replied) if it is not one. */
static bool time_arg(struct cmd_ctx *x, uint32_t i, uint64_t unit_ms, bool positive, int64_t *ms)
{
    uint32_t len;
    const uint8_t *a = arg(x, i, &len);
    int64_t v;
    if (!resp_arg_int(a, len, &v)) {
        reply_error(x, "ERR value is not an integer or out of range");
        return false;
    }
    if ((positive && v <= 0) || v > (int64_t)(RKV_TTL_MS_MAX / unit_ms) ||
        v < -(int64_t)(RKV_TTL_MS_MAX / unit_ms)) {
        reply_error(x, positive ? "ERR invalid expire time in 'set' command"
                                : "ERR invalid expire time in 'expire' command");
        return false;
    }
    *ms = v * (int64_t)unit_ms;
    return true;
}

static void cmd_get(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    uint32_t len;
    const uint8_t *key = arg(x, 1, &len);
    x->k->kind = K_GET;
    submit_get(x->n, x->idx, x->seq, 0, key, len);
}

static void cmd_mget(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    struct call *k = x->k;
    uint32_t nk = x->p->n - 1;
    if (k->cap_parts < nk) {
        struct rkv_buf *parts = rkv_realloc(k->parts, nk * sizeof *parts);
        if (parts == NULL) {
            reply_error(x, "ERR out of memory");
            return;
        }
        memset(parts + k->cap_parts, 0, (nk - k->cap_parts) * sizeof *parts);
        k->parts = parts;
        k->cap_parts = nk;
    }
    k->kind = K_MGET;
    k->nkeys = nk;
    for (uint32_t i = 0; i < nk; i++) {
        k->parts[i].len = 0;
        uint32_t len;
        const uint8_t *key = arg(x, i + 1, &len);
        submit_get(x->n, x->idx, x->seq, i, key, len);
    }
}

/* SET key value [EX s | PX ms] [NX | XX] */
static void cmd_set(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 3) || !value_ok(x, 2))
        return;
    int64_t ttl = 0;
    int mode = 0; /* 1 NX, 2 XX */
    for (uint32_t i = 3; i < x->p->n; i++) {
        if ((arg_is(x, i, "EX") || arg_is(x, i, "PX")) && ttl == 0 && i + 1 < x->p->n) {
            if (!time_arg(x, i + 1, arg_is(x, i, "EX") ? 1000 : 1, true, &ttl))
                return;
            i++;
        } else if (arg_is(x, i, "NX") && mode == 0) {
            mode = 1;
        } else if (arg_is(x, i, "XX") && mode == 0) {
            mode = 2;
        } else {
            reply_error(x, "ERR syntax error");
            return;
        }
    }
    uint32_t klen, vlen;
    const uint8_t *key = arg(x, 1, &klen), *value = arg(x, 2, &vlen);
    struct call *k = x->k;
    k->ttl_ms = (uint64_t)ttl;
    if (mode == 0) {
        k->kind = K_WRITE;
        submit_put(x->n, x->idx, x->seq, 0, key, klen, value, vlen, NULL, k->ttl_ms);
        return;
    }
    k->kind = mode == 1 ? K_SET_NX : K_SET_XX;
    if (keep_add(k, key, klen) != RKV_OK || keep_add(k, value, vlen) != RKV_OK) {
        reply_error(x, "ERR out of memory");
        return;
    }
    submit_get(x->n, x->idx, x->seq, 0, key, klen);
}

/* SETEX key seconds value, PSETEX key ms value */
static void cmd_setex(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 3) || !value_ok(x, 3))
        return;
    int64_t ttl;
    if (!time_arg(x, 2, arg_is(x, 0, "SETEX") ? 1000 : 1, true, &ttl))
        return;
    uint32_t klen, vlen;
    const uint8_t *key = arg(x, 1, &klen), *value = arg(x, 3, &vlen);
    x->k->kind = K_WRITE;
    submit_put(x->n, x->idx, x->seq, 0, key, klen, value, vlen, NULL, (uint64_t)ttl);
}

static void cmd_mset(struct cmd_ctx *x)
{
    if (x->p->n % 2 != 1) {
        reply_error(x, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    if (!keys_ok(x, 1, 2))
        return;
    for (uint32_t i = 2; i < x->p->n; i += 2)
        if (!value_ok(x, i))
            return;
    x->k->kind = K_WRITE;
    for (uint32_t i = 1; i < x->p->n; i += 2) {
        uint32_t klen, vlen;
        const uint8_t *key = arg(x, i, &klen), *value = arg(x, i + 1, &vlen);
        submit_put(x->n, x->idx, x->seq, i / 2, key, klen, value, vlen, NULL, 0);
    }
}

/* DEL and EXISTS: a get per key (DEL then deletes what it found). */
static void cmd_keys(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    struct call *k = x->k;
    bool del = arg_is(x, 0, "DEL") || arg_is(x, 0, "UNLINK");
    k->kind = del ? K_DEL : K_EXISTS;
    k->nkeys = x->p->n - 1;
    for (uint32_t i = 1; i < x->p->n && del; i++) {
        uint32_t len;
        const uint8_t *key = arg(x, i, &len);
        if (keep_add(k, key, len) != RKV_OK) {
            reply_error(x, "ERR out of memory");
            return;
        }
    }
    for (uint32_t i = 1; i < x->p->n; i++) {
        uint32_t len;
        const uint8_t *key = arg(x, i, &len);
        submit_get(x->n, x->idx, x->seq, i - 1, key, len);
    }
}

static void cmd_expire(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 3))
        return;
    int64_t ms;
    if (!time_arg(x, 2, arg_is(x, 0, "EXPIRE") ? 1000 : 1, false, &ms))
        return;
    struct call *k = x->k;
    k->kind = K_EXPIRE;
    k->delete_now = ms <= 0;
    k->ttl_ms = ms > 0 ? (uint64_t)ms : 0;
    uint32_t len;
    const uint8_t *key = arg(x, 1, &len);
    if (keep_add(k, key, len) != RKV_OK) {
        reply_error(x, "ERR out of memory");
        return;
    }
    submit_get(x->n, x->idx, x->seq, 0, key, len);
}

static void cmd_ttl(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    uint32_t len;
    const uint8_t *key = arg(x, 1, &len);
    x->k->kind = arg_is(x, 0, "TTL") ? K_TTL : K_PTTL;
    submit_get(x->n, x->idx, x->seq, 0, key, len);
}

static void cmd_ping(struct cmd_ctx *x)
{
    if (x->p->n == 1) {
        resp_simple(&x->k->reply, "PONG");
    } else {
        uint32_t len;
        const uint8_t *a = arg(x, 1, &len);
        resp_bulk(&x->k->reply, a, len);
    }
    reply_done(x);
}

static void cmd_echo(struct cmd_ctx *x)
{
    uint32_t len;
    const uint8_t *a = arg(x, 1, &len);
    resp_bulk(&x->k->reply, a, len);
    reply_done(x);
}

static void cmd_quit(struct cmd_ctx *x)
{
    resp_simple(&x->k->reply, "OK");
    x->c->closing = true;
    reply_done(x);
}

static void cmd_select(struct cmd_ctx *x)
{
    if (arg_is(x, 1, "0"))
        resp_simple(&x->k->reply, "OK");
    else
        resp_error(&x->k->reply, "ERR DB index is out of range");
    reply_done(x);
}

/* An estimate: this node's live keys times members / N (each key is on N
 * of the members). Exact when every node holds every key (N = members). */
static uint64_t key_estimate(struct node *n)
{
    struct store_stats st;
    store_stats(n->store, &st);
    uint64_t members = ring_member_count(n->ring);
    return st.keys * members / (n->cfg->replicas ? n->cfg->replicas : 1);
}

static void cmd_dbsize(struct cmd_ctx *x)
{
    resp_int(&x->k->reply, (int64_t)key_estimate(x->n));
    reply_done(x);
}

static void cmd_info(struct cmd_ctx *x)
{
    struct node *n = x->n;
    char text[1024];
    snprintf(text, sizeof text,
             "# Server\r\nredis_version:%s\r\nringkv_version:%s\r\nredis_mode:standalone\r\n"
             "process_id:%ld\r\ntcp_port:%u\r\nuptime_in_seconds:%llu\r\n"
             "ringkv_node:%s\r\nringkv_ring:%s\r\n\r\n"
             "# Clients\r\nconnected_clients:%u\r\n\r\n"
             "# Persistence\r\naof_enabled:%d\r\n\r\n"
             "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
             "rejected_connections:%llu\r\n\r\n"
             "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n"
             "# Keyspace\r\ndb0:keys=%llu,expires=0,avg_ttl=0\r\n",
             REDIS_VERSION, WIRE_SOFTWARE_VERSION, (long)getpid(), n->me->resp_port,
             (unsigned long long)((rkv_clock_mono_ms() - n->started_ms) / 1000), n->me->id,
             n->cfg->name, n->resp->open, n->cfg->sync == STORE_SYNC_ALWAYS,
             (unsigned long long)n->stats.resp_connections,
             (unsigned long long)n->stats.resp_commands, (unsigned long long)n->stats.resp_refused,
             (unsigned long long)key_estimate(n));
    resp_bulk_str(&x->k->reply, text);
    reply_done(x);
}

/* CONFIG GET param: what redis-benchmark and clients ask for at connect. */
static void cmd_config(struct cmd_ctx *x)
{
    struct rkv_buf *r = &x->k->reply;
    if (!arg_is(x, 1, "GET") || x->p->n != 3) {
        resp_error(r, "ERR CONFIG: only CONFIG GET is supported");
    } else if (arg_is(x, 2, "save")) {
        resp_array(r, 2);
        resp_bulk_str(r, "save");
        resp_bulk_str(r, "");
    } else if (arg_is(x, 2, "appendonly")) {
        resp_array(r, 2);
        resp_bulk_str(r, "appendonly");
        resp_bulk_str(r, x->n->cfg->sync == STORE_SYNC_ALWAYS ? "yes" : "no");
    } else if (arg_is(x, 2, "databases")) {
        resp_array(r, 2);
        resp_bulk_str(r, "databases");
        resp_bulk_str(r, "1");
    } else {
        resp_array(r, 0);
    }
    reply_done(x);
}

static void cmd_client(struct cmd_ctx *x)
{
    struct rkv_buf *r = &x->k->reply;
    if (arg_is(x, 1, "SETNAME") && x->p->n == 3) {
        uint32_t len;
        const uint8_t *a = arg(x, 2, &len);
        if (len >= sizeof x->c->name || memchr(a, ' ', len) || memchr(a, '\n', len)) {
            resp_error(r, "ERR Client names cannot contain spaces, newlines or special "
                          "characters, and are at most 63 bytes here.");
        } else {
            memcpy(x->c->name, a, len);
            x->c->name[len] = '\0';
            resp_simple(r, "OK");
        }
    } else if (arg_is(x, 1, "GETNAME") && x->p->n == 2) {
        if (x->c->name[0])
            resp_bulk_str(r, x->c->name);
        else
            resp_nil(r);
    } else if (arg_is(x, 1, "ID") && x->p->n == 2) {
        resp_int(r, (int64_t)((uint64_t)x->c->gen << 16 | x->idx));
    } else if (arg_is(x, 1, "SETINFO") && x->p->n == 4) {
        resp_simple(r, "OK");
    } else {
        resp_error(r, "ERR CLIENT: only SETNAME, GETNAME, ID and SETINFO are supported");
    }
    reply_done(x);
}

static void cmd_command(struct cmd_ctx *x)
{
    if (x->p->n == 2 && arg_is(x, 1, "COUNT"))
        resp_int(&x->k->reply, 0);
    else
        resp_array(&x->k->reply, 0);
    reply_done(x);
}

/* HELLO [2 [AUTH ...] [SETNAME name]]: RESP2 only. */
static void cmd_hello(struct cmd_ctx *x)
{
    struct rkv_buf *r = &x->k->reply;
    if (x->p->n >= 2 && !arg_is(x, 1, "2")) {
        uint32_t len;
        const uint8_t *a = arg(x, 1, &len);
        int64_t v;
        if (resp_arg_int(a, len, &v))
            resp_error(r, "NOPROTO unsupported protocol version");
        else
            resp_error(r, "ERR Protocol version is not an integer or out of range");
        reply_done(x);
        return;
    }
    for (uint32_t i = 2; i < x->p->n; i++) {
        if (arg_is(x, i, "SETNAME") && i + 1 < x->p->n) {
            uint32_t len;
            const uint8_t *a = arg(x, i + 1, &len);
            if (len < sizeof x->c->name) {
                memcpy(x->c->name, a, len);
                x->c->name[len] = '\0';
            }
            i++;
        } else {
            resp_error(r, "ERR HELLO: only the protocol version and SETNAME are supported "
                          "(no AUTH: the Redis port has no users)");
            reply_done(x);
            return;
        }
    }
    resp_array(r, 14);
    resp_bulk_str(r, "server");
    resp_bulk_str(r, "redis");
    resp_bulk_str(r, "version");
    resp_bulk_str(r, REDIS_VERSION);
    resp_bulk_str(r, "proto");
    resp_int(r, 2);
    resp_bulk_str(r, "id");
    resp_int(r, (int64_t)((uint64_t)x->c->gen << 16 | x->idx));
    resp_bulk_str(r, "mode");
    resp_bulk_str(r, "standalone");
    resp_bulk_str(r, "role");
    resp_bulk_str(r, "master");
    resp_bulk_str(r, "modules");
    resp_array(r, 0);
    reply_done(x);
}

static void cmd_flushall(struct cmd_ctx *x)
{
    if (!x->n->cfg->resp_flushall) {
        reply_error(x, "ERR FLUSHALL is disabled on this ring (resp.flushall = false in "
                       "cluster.toml)");
        return;
    }
    if (x->p->n > 2 || (x->p->n == 2 && !arg_is(x, 1, "SYNC") && !arg_is(x, 1, "ASYNC"))) {
        reply_error(x, "ERR syntax error");
        return;
    }
    struct call *k = x->k;
    k->kind = K_FLUSH;
    k->flush_part = 0;
    k->flush_cursor = 0;
    flush_more(x->n, x->idx, x->seq, k);
}

/* Keys: none (first 0); argument `first` only (step 0); or every step-th
 * argument from first on. */
struct command {
    const char *name;
    int arity; /* as Redis counts: the exact count, or -minimum */
    void (*run)(struct cmd_ctx *x);
    uint8_t first, step;
    bool writes;
    bool barrier; /* starts alone, once all before it are done; all after it wait */
};

static const struct command commands[] = {
    {"GET", 2, cmd_get, 1, 0, false, false},
    {"SET", -3, cmd_set, 1, 0, true, false},
    {"SETEX", 4, cmd_setex, 1, 0, true, false},
    {"PSETEX", 4, cmd_setex, 1, 0, true, false},
    {"MGET", -2, cmd_mget, 1, 1, false, false},
    {"MSET", -3, cmd_mset, 1, 2, true, false},
    {"DEL", -2, cmd_keys, 1, 1, true, false},
    {"UNLINK", -2, cmd_keys, 1, 1, true, false},
    {"EXISTS", -2, cmd_keys, 1, 1, false, false},
    {"EXPIRE", 3, cmd_expire, 1, 0, true, false},
    {"PEXPIRE", 3, cmd_expire, 1, 0, true, false},
    {"TTL", 2, cmd_ttl, 1, 0, false, false},
    {"PTTL", 2, cmd_ttl, 1, 0, false, false},
    {"PING", -1, cmd_ping, 0, 0, false, false},
    {"ECHO", 2, cmd_echo, 0, 0, false, false},
    {"QUIT", -1, cmd_quit, 0, 0, false, false},
    {"SELECT", 2, cmd_select, 0, 0, false, false},
    {"DBSIZE", 1, cmd_dbsize, 0, 0, false, false},
    {"INFO", -1, cmd_info, 0, 0, false, false},
    {"CONFIG", -2, cmd_config, 0, 0, false, false},
    {"CLIENT", -2, cmd_client, 0, 0, false, false},
    {"COMMAND", -1, cmd_command, 0, 0, false, false},
    {"HELLO", -1, cmd_hello, 0, 0, false, false},
    {"FLUSHALL", -1, cmd_flushall, 0, 0, false, true},
};

static const struct command *find_command(const struct resp_parser *p, const uint8_t *buf)
{
    const uint8_t *name = resp_arg_ptr(p, buf, 0);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (resp_arg_is(name, p->args[0].len, commands[i].name))
            return &commands[i];
    return NULL;
}

/*
 * Commands of one connection run concurrently, yet each must see the
 * effect of the commands before it, as with Redis: a GET after a SET of
 * the same key must read the new value. So a command waits (stays unparsed)
 * while an earlier one in flight on the same connection writes one of its
 * keys, or, if it writes, reads one. Keys are tracked by hash in KEY_SLOTS
 * slots; a collision only makes a command wait when it need not.
 * Fills s->slots with the command's distinct slots; false if it must wait.
 */
static bool key_slots(struct resp_server *s, struct conn *c, const struct command *cmd,
                      const struct resp_parser *p, const uint8_t *buf)
{
    s->slots.len = 0;
    if (cmd == NULL || cmd->first == 0 || p->n <= cmd->first)
        return true;
    bool clear = true;
    uint32_t last = cmd->step ? p->n - 1 : cmd->first;
    for (uint32_t i = cmd->first; i <= last; i += cmd->step ? cmd->step : 1) {
        uint16_t slot =
            (uint16_t)(XXH3_64bits(resp_arg_ptr(p, buf, i), p->args[i].len) & (KEY_SLOTS - 1));
        bool seen = false;
        for (size_t j = 0; j + 2 <= s->slots.len && !seen; j += 2)
            seen = rkv_get_u16(s->slots.data + j) == slot;
        if (seen)
            continue;
        uint8_t b[2];
        rkv_put_u16(b, slot);
        if (rkv_buf_append(&s->slots, b, 2) != RKV_OK)
            return false;
        clear &= c->slot_writes[slot] == 0 && (!cmd->writes || c->slot_reads[slot] == 0);
    }
    return clear;
}

/* The command holds its slots until it is done. */
static void hold_slots(struct resp_server *s, struct conn *c, struct call *k,
                       const struct command *cmd)
{
    if (cmd == NULL || s->slots.len == 0)
        return;
    k->writes = cmd->writes;
    if (rkv_buf_set(&k->slots, s->slots.data, s->slots.len) != RKV_OK) {
        k->slots.len = 0;
        return; /* untracked: it only loses ordering against later commands */
    }
    for (size_t j = 0; j + 2 <= s->slots.len; j += 2) {
        uint16_t slot = rkv_get_u16(s->slots.data + j);
        if (cmd->writes)
            c->slot_writes[slot]++;
        else
            c->slot_reads[slot]++;
    }
}

static void run_command(struct cmd_ctx *x, const struct command *cmd)
{
    uint32_t len;
    const uint8_t *name = arg(x, 0, &len);
    char shown[48];
    size_t sl = len < 32 ? len : 32;
    for (size_t i = 0; i < sl; i++)
        shown[i] = name[i] >= 0x20 && name[i] < 0x7f && name[i] != '\'' ? (char)name[i] : '?';
    shown[sl] = '\0';
    if (cmd != NULL) {
        int argc = (int)x->p->n;
        if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity)) {
            char msg[96], lower[16];
            size_t l = 0;
            for (; cmd->name[l] && l < sizeof lower - 1; l++)
                lower[l] = (char)(cmd->name[l] | 0x20);
            lower[l] = '\0';
            snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", lower);
            reply_error(x, msg);
            return;
        }
        cmd->run(x);
        if (x->k->kind != K_DONE && !x->k->done && x->k->waiting == 0)
            finish_call(x->c, x->k); /* every part failed at once */
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "ERR unknown command '%s' (docs/resp.md lists what ringkv serves)",
             shown);
    reply_error(x, msg);
}

/* ---- connections ---- */

static void conn_close(struct node *n, uint32_t idx)
{
    struct resp_server *s = n->resp;
    struct conn *c = &s->conns[idx];
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    c->gen++; /* replies still on their way find no connection */
    c->closing = false;
    for (uint32_t i = 0; i < c->cap_calls; i++)
        call_free(&c->calls[i]);
    rkv_free(c->calls);
    c->calls = NULL;
    c->cap_calls = c->n_calls = c->head = 0;
    c->inflight = 0;
    resp_parser_free(&c->parser);
    rkv_free(c->slot_reads);
    rkv_free(c->slot_writes);
    c->slot_reads = c->slot_writes = NULL;
    rkv_buf_free(&c->in);
    rkv_buf_free(&c->out);
    c->in_off = c->out_off = 0;
    s->open--;
}

/* Takes up the complete commands in c's input while there is room. */
static void parse_input(struct node *n, uint32_t idx)
{
    struct resp_server *s = n->resp;
    struct conn *c = &s->conns[idx];
    while (c->fd >= 0 && !conn_paused(s, c) && c->in.len > c->in_off) {
        size_t used;
        const uint8_t *buf = c->in.data + c->in_off;
        enum resp_status st = resp_parse(&c->parser, buf, c->in.len - c->in_off, &used);
        if (st == RESP_MORE)
            break;
        if (!calls_room(s, c))
            break;
        struct call *k = &c->calls[(c->head + c->n_calls) % c->cap_calls];
        uint64_t seq = c->head_seq + c->n_calls;
        call_reset(k);
        c->n_calls++;
        if (st == RESP_BAD) {
            n->stats.resp_protocol_errors++;
            resp_error(&k->reply, "ERR %s", c->parser.error);
            k->done = true;
            c->closing = true;
            break;
        }
        if (st == RESP_EMPTY) {
            c->in_off += used;
            c->n_calls--;
            continue;
        }
        const struct command *cmd = find_command(&c->parser, buf);
        if ((cmd && cmd->barrier && c->n_calls > 1) || !key_slots(s, c, cmd, &c->parser, buf)) {
            c->n_calls--; /* parsed again once the keys are free */
            break;
        }
        c->in_off += used;
        hold_slots(s, c, k, cmd);
        n->stats.resp_commands++;
        struct cmd_ctx x = {
            .n = n, .idx = idx, .c = c, .k = k, .seq = seq, .buf = buf, .p = &c->parser};
        if (cmd && cmd->barrier)
            c->barrier = true;
        run_command(&x, cmd);
        c = &s->conns[idx];
    }
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
        buf_trim(&c->in);
    }
}

/* Moves finished replies, in order, to the output. */
static void collect_replies(struct conn *c)
{
    while (c->n_calls && c->calls[c->head].done) {
        struct call *k = &c->calls[c->head];
        if (rkv_buf_append(&c->out, k->reply.data, k->reply.len) != RKV_OK)
            c->closing = true; /* out of memory: this connection cannot go on */
        buf_trim(&k->reply);
        buf_trim(&k->keep);
        k->done = false;
        c->head = (c->head + 1) % c->cap_calls;
        c->n_calls--;
        c->head_seq++;
    }
}

static void write_out(struct node *n, uint32_t idx)
{
    struct conn *c = &n->resp->conns[idx];
    while (c->out.len > c->out_off) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            conn_close(n, idx);
            return;
        }
        c->out_off += (size_t)w;
    }
    c->out.len = c->out_off = 0;
    buf_trim(&c->out);
    if (c->closing && c->n_calls == 0)
        conn_close(n, idx);
}

static void read_in(struct node *n, uint32_t idx)
{
    struct resp_server *s = n->resp;
    struct conn *c = &s->conns[idx];
    size_t room_max = (size_t)n->cfg->message_bytes_max + READ_BYTES;
    for (size_t got = 0; got < READ_PER_TURN && c->fd >= 0 && !c->closing;) {
        if (c->in_off > 0 && c->in_off >= c->in.len / 2) {
            memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
            c->in.len -= c->in_off;
            c->in_off = 0;
        }
        if (c->in.len - c->in_off >= room_max || conn_paused(s, c))
            return; /* the parser refuses a request this large anyway */
        if (rkv_buf_reserve(&c->in, READ_BYTES) != RKV_OK) {
            conn_close(n, idx);
            return;
        }
        ssize_t r = recv(c->fd, c->in.data + c->in.len, READ_BYTES, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) { /* closed by the client, or reset */
            conn_close(n, idx);
            return;
        }
        c->in.len += (size_t)r;
        got += (size_t)r;
        parse_input(n, idx);
        c = &s->conns[idx];
        if ((size_t)r < READ_BYTES)
            return;
    }
}

static void accept_some(struct node *n)
{
    struct resp_server *s = n->resp;
    for (int i = 0; i < ACCEPT_PER_TURN; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                RKV_WARN("resp", "%s: accept: %s", n->me->id, strerror(errno));
            return;
        }
        if (s->open >= n->cfg->resp_connections_max) {
            static const char full[] = "-ERR max number of clients reached\r\n";
            ssize_t w = send(fd, full, sizeof full - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            n->stats.resp_refused++;
            continue;
        }
        uint32_t idx = 0;
        while (idx < s->n_conns && s->conns[idx].fd >= 0)
            idx++;
        if (idx == s->n_conns) {
            if (s->n_conns == s->cap_conns) { /* cap_conns is connections_max */
                close(fd);
                continue;
            }
            s->conns[s->n_conns++] = (struct conn){.fd = -1};
        }
        struct conn *c = &s->conns[idx];
        c->slot_reads = rkv_calloc(KEY_SLOTS, sizeof *c->slot_reads);
        c->slot_writes = rkv_calloc(KEY_SLOTS, sizeof *c->slot_writes);
        if (c->slot_reads == NULL || c->slot_writes == NULL) {
            rkv_free(c->slot_reads);
            rkv_free(c->slot_writes);
            c->slot_reads = c->slot_writes = NULL;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->n_calls = c->head = 0;
        c->head_seq = 0;
        c->closing = false;
        c->name[0] = '\0';
        uint32_t bulk = n->cfg->value_bytes_max > n->cfg->key_bytes_max ? n->cfg->value_bytes_max
                                                                        : n->cfg->key_bytes_max;
        resp_parser_init(&c->parser, 2 * s->queue_max + 2, bulk, n->cfg->message_bytes_max);
        s->open++;
        n->stats.resp_connections++;
    }
}

/* ---- the node's side ---- */

static int listen_on(const struct config_node *me, struct rkv_error *err)
{
    char port[8];
    snprintf(port, sizeof port, "%u", me->resp_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int g = getaddrinfo(me->host, port, &hints, &ai);
    if (g != 0)
        return rkv_error_set(err, RKV_ERR_IO, "resp: %s:%u: %s", me->host, me->resp_port,
                             gai_strerror(g));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rkv_error_set(err, RKV_ERR_IO, "resp: cannot listen on %s:%u: %s", me->host,
                             me->resp_port, strerror(e));
    }
    freeaddrinfo(ai);
    return fd;
}

int resp_open(struct node *n, struct rkv_error *err)
{
    if (n->me->resp_port == 0)
        return RKV_OK;
    struct resp_server *s = rkv_calloc(1, sizeof *s);
    uint32_t max = n->cfg->resp_connections_max;
    if (s != NULL) {
        s->conns = rkv_calloc(max, sizeof *s->conns);
        s->ready = rkv_calloc(max, sizeof *s->ready);
    }
    if (s == NULL || s->conns == NULL || s->ready == NULL) {
        if (s) {
            rkv_free(s->conns);
            rkv_free(s->ready);
        }
        rkv_free(s);
        return rkv_error_set(err, RKV_ERR_NOMEM, "resp: out of memory");
    }
    s->cap_conns = max;
    s->queue_max = n->cfg->inflight_per_client;
    s->out_max = n->cfg->message_bytes_max;
    int fd = listen_on(n->me, err);
    if (fd < 0) {
        rkv_free(s->conns);
        rkv_free(s->ready);
        rkv_free(s);
        return fd;
    }
    s->listen_fd = fd;
    n->resp = s;
    RKV_INFO("resp", "%s: Redis protocol on %s:%u", n->me->id, n->me->host, n->me->resp_port);
    return RKV_OK;
}

void resp_close(struct node *n)
{
    struct resp_server *s = n->resp;
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->n_conns; i++)
        conn_close(n, i);
    close(s->listen_fd);
    rkv_free(s->conns);
    rkv_free(s->ready);
    rkv_buf_free(&s->slots);
    rkv_free(s);
    n->resp = NULL;
}

int resp_poll_items(struct node *n, zmq_pollitem_t *items, int max)
{
    struct resp_server *s = n->resp;
    if (s == NULL || max < 1)
        return 0;
    int count = 0;
    items[count++] = (zmq_pollitem_t){.fd = s->listen_fd, .events = n->stopping ? 0 : ZMQ_POLLIN};
    for (uint32_t i = 0; i < s->n_conns && count < max; i++) {
        struct conn *c = &s->conns[i];
        if (c->fd < 0)
            continue;
        short ev = conn_paused(s, c) || n->stopping ? 0 : ZMQ_POLLIN;
        if (c->out.len > c->out_off)
            ev |= ZMQ_POLLOUT;
        items[count++] = (zmq_pollitem_t){.fd = c->fd, .events = ev};
    }
    return count;
}

static uint32_t conn_of_fd(const struct resp_server *s, int fd, uint32_t hint)
{
    if (hint < s->n_conns && s->conns[hint].fd == fd)
        return hint;
    for (uint32_t i = 0; i < s->n_conns; i++)
        if (s->conns[i].fd == fd)
            return i;
    return UINT32_MAX;
}

void resp_on_poll(struct node *n, const zmq_pollitem_t *items, int count)
{
    struct resp_server *s = n->resp;
    if (s == NULL || count < 1)
        return;
    if (items[0].revents & ZMQ_POLLIN)
        accept_some(n);
    uint32_t hint = 0;
    for (int i = 1; i < count; i++) {
        if (!items[i].revents)
            continue;
        /* items follow the connection table in order: find from the last */
        uint32_t idx = conn_of_fd(s, items[i].fd, hint);
        if (idx == UINT32_MAX)
            continue;
        hint = idx + 1;
        if (items[i].revents & ZMQ_POLLOUT)
            mark_ready(s, idx);
        if (items[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            read_in(n, idx);
        if (s->conns[idx].fd >= 0)
            mark_ready(s, idx);
    }
}

bool resp_after_turn(struct node *n)
{
    struct resp_server *s = n->resp;
    if (s == NULL)
        return false;
    bool more = false;
    for (uint32_t r = 0; r < s->n_ready; r++) {
        uint32_t idx = s->ready[r];
        struct conn *c = &s->conns[idx];
        c->ready = false;
        if (c->fd < 0)
            continue;
        collect_replies(c);
        write_out(n, idx);
        if (c->fd < 0)
            continue;
        /* commands that waited for room or for their keys: those answered
         * at once are written now, the others wake the next turn */
        uint64_t taken = n->stats.resp_commands;
        if (c->in.len > c->in_off && !conn_paused(s, c)) {
            parse_input(n, idx);
            more |= n->stats.resp_commands != taken;
            if (c->fd >= 0) {
                collect_replies(c);
                write_out(n, idx);
            }
        }
    }
    s->n_ready = 0;
    return more;
}
