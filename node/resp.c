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
#include "node/resp_int.h"

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
    k->barrier = false;
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

int resp_keep_add(struct call *k, const void *p, size_t len)
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

void resp_submit_get(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                     uint32_t key_len)
{
    submit(n, idx, seq, sub, &(struct wire_msg){.type = WIRE_GET, .key = {key, key_len}});
}

void resp_submit_put(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
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

void resp_submit_del(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
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
            resp_submit_put(n, idx, seq, 0, key, key_len, value, value_len, &f->ctx, k->ttl_ms);
        } else {
            resp_nil(&k->reply);
        }
        break;
    case K_DEL: /* the delete of key i is part nkeys + i; a key named twice counts once */
        if (f->any && !named_before(k, sub)) {
            k->count++;
            resp_submit_del(n, idx, seq, k->nkeys + sub, key, key_len, &f->ctx);
        }
        break;
    case K_EXPIRE:
        if (!f->any)
            break;
        k->count = 1;
        k->phase = 1;
        if (k->delete_now)
            resp_submit_del(n, idx, seq, 0, key, key_len, &f->ctx);
        else
            resp_submit_put(n, idx, seq, 0, key, key_len, f->value, f->value_len, &f->ctx,
                            k->ttl_ms);
        break;
    default:
        break;
    }
}

/* A command is done: later commands on its keys may go. */
void resp_call_done(struct conn *c, struct call *k)
{
    k->done = true;
    if (k->barrier)
        c->barrier = false;
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
void resp_finish_call(struct conn *c, struct call *k)
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
    resp_call_done(c, k);
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
void resp_flush_more(struct node *n, uint32_t idx, uint64_t seq, struct call *k)
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
        resp_flush_more(n, rt->conn, rt->seq, k);
    if (k->waiting == 0)
        resp_finish_call(c, k);
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
        const struct command *cmd = resp_find_command(&c->parser, buf);
        if ((cmd && cmd->barrier && c->n_calls > 1) ||
            !resp_key_slots(s, c, cmd, &c->parser, buf)) {
            c->n_calls--; /* parsed again once the keys are free */
            break;
        }
        c->in_off += used;
        resp_hold_slots(s, c, k, cmd);
        n->stats.resp_commands++;
        struct cmd_ctx x = {
            .n = n, .idx = idx, .c = c, .k = k, .seq = seq, .buf = buf, .p = &c->parser};
        if (cmd && cmd->barrier)
            c->barrier = k->barrier = true;
        resp_run_command(&x, cmd);
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
