/*
 * bench_resp.c: the RESP mode of ringkv-bench (--resp): a Redis-protocol
 * load generator of its own, for ringkv's resp_port and for Redis itself,
 * with the workloads, key space, values and report of the libringkv mode.
 *
 * Design. The machine is shared with the servers under test (two cores in
 * bench/compare), so the client side must cost little: the --clients TCP
 * connections are spread over --threads event-loop threads (default one,
 * like redis-benchmark), each an epoll loop (level-triggered) over
 * non-blocking sockets, rather than a thread per connection. A connection
 * keeps --pipeline requests in flight, in a closed loop: the replies of one
 * recv() are matched in order with its queue of outstanding requests, then
 * as many new requests are queued and written with one send(). Each request
 * carries the time it was queued; the clock is read once per batch of
 * replies (after each recv) and once per batch of new requests, so a
 * latency runs from the queuing of the request's batch to the arrival of
 * its reply's batch. With --wait N, every SET is followed, in the same
 * write, by WAIT N 0, and the pair is one operation: its latency ends with
 * WAIT's reply, and it fails if WAIT counts fewer than N replicas.
 *
 * Phases are those of the libringkv mode: the main thread sleeps through the
 * warmup and the measured window and moves an atomic phase; a thread reads
 * it before queuing requests; a request counts if it was queued while
 * measuring; after the stop the threads queue nothing new and wait (at most
 * DRAIN_MS) for the replies of what they sent, so every measured request is
 * counted, as in the libringkv mode.
 *
 * --preload SETs every key once before the threads are released:
 * connection i of C writes keys i, i + C, ..., PRELOAD_DEPTH in flight.
 * Keys are those of the libringkv mode; a SET overwrites (in Redis, and at
 * ringkv's RESP endpoint, docs/resp.md), so no key needs an owner and reads
 * and writes pick any key.
 *
 * A connection that fails (closed by the server, reset, a reply that cannot
 * be framed, or one that answers nothing sent) is closed and not reopened:
 * its requests in flight count as failed, the first reason is printed, and
 * the run fails.
 */
#include "bench/bench.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BYTES         (64u << 10) /* room made for each recv() */
#define IN_BYTES_MAX       (4u << 20)  /* unparsed reply bytes per connection */
#define EVENTS_MAX         256         /* epoll events taken per wait */
#define LOOP_TICK_MS       20          /* epoll timeout: how soon a phase change is seen */
#define DRAIN_MS           5000        /* after the stop: waiting for sent requests */
#define CONNECT_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS   5000
#define PRELOAD_DEPTH      32u /* preload SETs in flight per connection */
#define REQ_HEAD_BYTES     64  /* a request's bytes besides its key and value */

/* ---- settings and state ---- */

enum rop_kind { ROP_GET, ROP_SET, ROP_PRELOAD };

/* A request in flight (a SET and its WAIT are one). */
struct rop {
    uint64_t t0_ns;
    uint8_t kind;
    bool wait_next; /* the SET's reply came; WAIT's is next */
    bool measured;
    bool failed; /* counted as failed already */
};

/* Bytes [off, len) of data are pending (unsent, or unparsed). */
struct bytes {
    uint8_t *data;
    size_t off, len, cap;
};

struct rconn {
    int fd;        /* -1 once closed */
    uint32_t id;   /* 0 .. clients-1 */
    uint32_t addr; /* index into cfg->addrs */
    struct bytes in, out;
    struct rop *q; /* a ring of q_cap slots, q_n in flight from q_head */
    uint32_t q_head, q_n, q_cap;
    uint64_t rng;
    uint64_t preload_next; /* the next key it preloads; >= keys: done */
    bool out_armed;        /* EPOLLOUT is in its event mask */
};

struct rbench;

struct rthread {
    struct rbench *rb;
    uint32_t id;
    pthread_t thread;
    int ep;
    struct rconn *conns; /* connections id, id + threads, ... */
    uint32_t n_conns;
    uint32_t inflight; /* requests in flight over its connections */
    uint32_t lost;     /* connections that failed */
    char lost_msg[ERRMSG_BYTES];
    bool connect_failed;
    char connect_msg[ERRMSG_BYTES];
    struct tally t;     /* measured requests */
    struct tally setup; /* preload */
};

struct rbench {
    const struct bench_cfg *cfg;
    FILE *out;
    struct zipf zipf;
    uint8_t *pool; /* VALUE_POOL_SPAN + value_bytes seeded bytes */
    struct sockaddr_storage sa[ADDRS_MAX];
    socklen_t sa_len[ADDRS_MAX];
    struct rthread *threads;
    pthread_barrier_t ready, go;
    atomic_int phase;
    char vlen_line[32]; /* "$<value_bytes>\r\n" */
    size_t vlen_line_len;
    char wait_cmd[64]; /* WAIT n 0, encoded */
    size_t wait_cmd_len;
};

/* ---- buffers ---- */

/* Makes room for n more bytes at data + len; false if over max. */
static bool bytes_reserve(struct bytes *b, size_t n, size_t max)
{
    if (b->off > 0 && b->cap - b->len < n) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : READ_BYTES;
    while (cap - b->len < n)
        cap *= 2;
    if (cap > max)
        return false;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static inline void bytes_put(struct bytes *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* ---- requests ---- */

static const char get_head[] = "*2\r\n$3\r\nGET\r\n$16\r\n";
static const char set_head[] = "*3\r\n$3\r\nSET\r\n$16\r\n";

_Static_assert(KEY_BYTES == 16, "get_head and set_head spell the key length");

static uint64_t pick_key(struct rbench *rb, struct rconn *c)
{
    if (rb->cfg->dist == DIST_ZIPFIAN)
        return zipf_next(&rb->zipf, &c->rng);
    return rng_below(&c->rng, rb->cfg->keys);
}

/* Appends the request of kind (key k) to c's output and queues it. The
 * caller has checked that the queue has room. */
static bool conn_queue(struct rbench *rb, struct rthread *th, struct rconn *c, enum rop_kind kind,
                       uint64_t k, uint64_t now, bool measured)
{
    const struct bench_cfg *cfg = rb->cfg;
    bool wait = kind == ROP_SET && cfg->wait_replicas > 0;
    size_t need = REQ_HEAD_BYTES + KEY_BYTES + (kind == ROP_GET ? 0 : cfg->value_bytes) +
                  (wait ? rb->wait_cmd_len : 0);
    if (!bytes_reserve(&c->out, need, SIZE_MAX))
        return false;
    char key[KEY_BYTES];
    key_format(key, k);
    if (kind == ROP_GET) {
        bytes_put(&c->out, get_head, sizeof get_head - 1);
        bytes_put(&c->out, key, KEY_BYTES);
        bytes_put(&c->out, "\r\n", 2);
    } else {
        const uint8_t *value = rb->pool + (rng_next(&c->rng) & (VALUE_POOL_SPAN - 1));
        bytes_put(&c->out, set_head, sizeof set_head - 1);
        bytes_put(&c->out, key, KEY_BYTES);
        bytes_put(&c->out, "\r\n", 2);
        bytes_put(&c->out, rb->vlen_line, rb->vlen_line_len);
        bytes_put(&c->out, value, cfg->value_bytes);
        bytes_put(&c->out, "\r\n", 2);
        if (wait)
            bytes_put(&c->out, rb->wait_cmd, rb->wait_cmd_len);
    }
    c->q[(c->q_head + c->q_n) % c->q_cap] = (struct rop){
        .t0_ns = now,
        .kind = (uint8_t)kind,
        .measured = measured,
    };
    c->q_n++;
    th->inflight++;
    return true;
}

/* ---- connections ---- */

static struct tally *op_tally(struct rthread *th, const struct rop *op)
{
    if (op->kind == ROP_PRELOAD)
        return &th->setup;
    return op->measured ? &th->t : NULL;
}

/* Closes c after a failure: its requests in flight fail. */
static void conn_fail(struct rthread *th, struct rconn *c, const char *why)
{
    const struct bench_addr *a = &th->rb->cfg->addrs[c->addr];
    char msg[ERRMSG_BYTES];
    snprintf(msg, sizeof msg, "connection %u to %.80s:%s: %.100s", c->id + 1, a->host, a->port,
             why);
    for (; c->q_n > 0; c->q_n--) {
        struct rop *op = &c->q[c->q_head];
        struct tally *t = op_tally(th, op);
        if (t && !op->failed)
            tally_error(t, RESP_E_CONN, msg);
        c->q_head = (c->q_head + 1) % c->q_cap;
        th->inflight--;
    }
    if (th->lost++ == 0)
        snprintf(th->lost_msg, sizeof th->lost_msg, "%s", msg);
    epoll_ctl(th->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

/* Writes what c has pending; watches for writability while some is left. */
static void conn_flush(struct rthread *th, struct rconn *c)
{
    struct bytes *o = &c->out;
    while (o->off < o->len) {
        ssize_t n = send(c->fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL);
        if (n > 0) {
            o->off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            conn_fail(th, c, n == 0 ? "send wrote nothing" : strerror(errno));
            return;
        }
    }
    bool pending = o->off < o->len;
    if (!pending)
        o->off = o->len = 0;
    if (pending != c->out_armed) {
        struct epoll_event ev = {.events = EPOLLIN | (pending ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(th->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            conn_fail(th, c, strerror(errno));
            return;
        }
        c->out_armed = pending;
    }
}

/* Queues requests of the workload until c has --pipeline in flight. */
static void conn_fill(struct rthread *th, struct rconn *c)
{
    struct rbench *rb = th->rb;
    const struct bench_cfg *cfg = rb->cfg;
    int ph = atomic_load_explicit(&rb->phase, memory_order_acquire);
    if (ph == PH_STOP || c->fd < 0 || c->q_n >= cfg->pipeline)
        return;
    uint64_t now = now_ns();
    unsigned write_permille = wl_defs[cfg->wl].write_permille;
    while (c->q_n < cfg->pipeline) {
        bool write = rng_below(&c->rng, 1000) < write_permille;
        if (!conn_queue(rb, th, c, write ? ROP_SET : ROP_GET, pick_key(rb, c), now,
                        ph == PH_MEASURE)) {
            conn_fail(th, c, "out of memory for requests");
            return;
        }
    }
}

/* Queues the next preload SETs of c (keys id, id + clients, ...). */
static void conn_fill_preload(struct rthread *th, struct rconn *c)
{
    struct rbench *rb = th->rb;
    uint64_t now = 0;
    while (c->fd >= 0 && c->q_n < PRELOAD_DEPTH && c->preload_next < rb->cfg->keys) {
        now = now ? now : now_ns();
        if (!conn_queue(rb, th, c, ROP_PRELOAD, c->preload_next, now, false)) {
            conn_fail(th, c, "out of memory for requests");
            return;
        }
        c->preload_next += rb->cfg->clients;
    }
}

/* The error a reply to (the current stage of) op is, or 0; msg says why. */
static int reply_check(const struct bench_cfg *cfg, const struct rop *op, const struct rreply *r,
                       char *msg, size_t msg_len)
{
    const char *cmd = op->kind == ROP_GET ? "GET" : op->wait_next ? "WAIT" : "SET";
    if (r->type == RR_ERROR) {
        snprintf(msg, msg_len, "%s: -%.*s", cmd, (int)(r->len < 200 ? r->len : 200),
                 (const char *)r->str);
        return RESP_E_REPLY;
    }
    bool ok;
    if (op->kind == ROP_GET)
        ok = r->type == RR_BULK || r->type == RR_NIL;
    else if (op->wait_next)
        ok = r->type == RR_INT;
    else
        ok = r->type == RR_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0;
    if (!ok) {
        static const char *const type_names[] = {
            [RR_STATUS] = "a status",    [RR_ERROR] = "an error", [RR_INT] = "an integer",
            [RR_BULK] = "a bulk string", [RR_NIL] = "nil",        [RR_ARRAY] = "an array",
        };
        snprintf(msg, msg_len, "%s answered %s%s%.*s", cmd, type_names[r->type],
                 r->type == RR_STATUS ? " +" : "",
                 r->type == RR_STATUS ? (int)(r->len < 64 ? r->len : 64) : 0,
                 r->type == RR_STATUS ? (const char *)r->str : "");
        return RESP_E_TYPE;
    }
    if (op->wait_next && r->num < (int64_t)cfg->wait_replicas) {
        snprintf(msg, msg_len, "WAIT %u 0 answered %" PRId64, cfg->wait_replicas, r->num);
        return RESP_E_WAIT;
    }
    return 0;
}

/* Takes the reply to the request at the head of c's queue. */
static void conn_on_reply(struct rthread *th, struct rconn *c, const struct rreply *r, uint64_t now)
{
    const struct bench_cfg *cfg = th->rb->cfg;
    struct rop *op = &c->q[c->q_head];
    struct tally *t = op_tally(th, op);
    char msg[ERRMSG_BYTES];
    int err = reply_check(cfg, op, r, msg, sizeof msg);
    if (err && t && !op->failed)
        tally_error(t, err, msg);
    op->failed |= err != 0;
    if (op->kind == ROP_SET && cfg->wait_replicas > 0 && !op->wait_next) {
        op->wait_next = true; /* the pair is done with WAIT's reply */
        return;
    }
    if (t && !op->failed) {
        if (op->kind == ROP_GET) {
            hist_record(&t->read, now - op->t0_ns);
            t->not_found += r->type == RR_NIL;
            t->bad_values += r->type == RR_BULK && r->len != cfg->value_bytes;
        } else {
            hist_record(&t->write, now - op->t0_ns);
        }
    }
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_n--;
    th->inflight--;
}

/* Reads what arrived on c, takes every complete reply, refills, writes. */
static void conn_on_readable(struct rthread *th, struct rconn *c, bool preload)
{
    struct bytes *in = &c->in;
    if (!bytes_reserve(in, READ_BYTES / 2, IN_BYTES_MAX)) {
        conn_fail(th, c, "a reply larger than the input buffer's bound");
        return;
    }
    ssize_t n = recv(c->fd, in->data + in->len, in->cap - in->len, 0);
    if (n == 0) {
        conn_fail(th, c, "closed by the server");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_fail(th, c, strerror(errno));
        return;
    }
    in->len += (size_t)n;
    uint64_t now = now_ns();
    while (in->off < in->len) {
        struct rreply r;
        enum rreply_type type =
            rreply_parse(in->data + in->off, in->len - in->off, VALUE_BYTES_MAX, &r);
        if (type == RR_MORE)
            break;
        if (type == RR_BAD) {
            conn_fail(th, c, "a reply that is not RESP2");
            return;
        }
        if (c->q_n == 0) {
            conn_fail(th, c, "a reply to no request");
            return;
        }
        in->off += r.consumed;
        conn_on_reply(th, c, &r, now);
    }
    if (in->off == in->len)
        in->off = in->len = 0;
    if (preload)
        conn_fill_preload(th, c);
    else
        conn_fill(th, c);
    if (c->fd >= 0)
        conn_flush(th, c);
}

/* Connects to address a (non-blocking, TCP_NODELAY); -1 with msg on failure. */
static int socket_open(const struct sockaddr *sa, socklen_t sa_len, char *msg, size_t msg_len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(msg, msg_len, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, sa, sa_len) != 0) {
        int err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int rc = poll(&p, 1, CONNECT_TIMEOUT_MS);
            socklen_t len = sizeof err;
            if (rc == 0)
                err = ETIMEDOUT;
            else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
        if (err != 0) {
            snprintf(msg, msg_len, "connect: %s", strerror(err));
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* ---- threads ---- */

/* Opens the thread's connections and registers them with its epoll. */
static bool thread_connect(struct rthread *th)
{
    struct rbench *rb = th->rb;
    const struct bench_cfg *cfg = rb->cfg;
    char why[ERRMSG_BYTES];
    th->ep = epoll_create1(EPOLL_CLOEXEC);
    if (th->ep < 0) {
        snprintf(th->connect_msg, sizeof th->connect_msg, "epoll_create1: %s", strerror(errno));
        return false;
    }
    for (uint32_t i = 0; i < th->n_conns; i++) {
        struct rconn *c = &th->conns[i];
        const struct bench_addr *a = &cfg->addrs[c->addr];
        c->fd = socket_open((const struct sockaddr *)&rb->sa[c->addr], rb->sa_len[c->addr], why,
                            sizeof why);
        if (c->fd < 0) {
            snprintf(th->connect_msg, sizeof th->connect_msg, "connection %u to %.80s:%s: %.100s",
                     c->id + 1, a->host, a->port, why);
            return false;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(th->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            snprintf(th->connect_msg, sizeof th->connect_msg, "epoll_ctl: %s", strerror(errno));
            close(c->fd);
            c->fd = -1;
            return false;
        }
    }
    return true;
}

/* Counts the measured requests still in flight after the drain as failed. */
static void thread_count_unanswered(struct rthread *th)
{
    char msg[ERRMSG_BYTES];
    snprintf(msg, sizeof msg, "no reply within %d ms of the end of the measured window", DRAIN_MS);
    for (uint32_t i = 0; i < th->n_conns; i++) {
        struct rconn *c = &th->conns[i];
        for (uint32_t j = 0; j < c->q_n; j++) {
            const struct rop *op = &c->q[(c->q_head + j) % c->q_cap];
            if (op->measured && !op->failed)
                tally_error(&th->t, RESP_E_UNANSWERED, msg);
        }
    }
}

/* Runs the event loop: the preload until every key is written, or the
 * workload until the stop and the drain. */
static void thread_loop(struct rthread *th, bool preload)
{
    struct rbench *rb = th->rb;
    struct epoll_event ev[EVENTS_MAX];
    for (uint32_t i = 0; i < th->n_conns; i++) {
        struct rconn *c = &th->conns[i];
        if (preload)
            conn_fill_preload(th, c);
        else
            conn_fill(th, c);
        if (c->fd >= 0)
            conn_flush(th, c);
    }
    uint64_t drain_end_ns = 0;
    for (;;) {
        if (preload && th->inflight == 0)
            break; /* every connection has written its keys (or failed) */
        if (!preload && atomic_load_explicit(&rb->phase, memory_order_acquire) == PH_STOP) {
            uint64_t now = now_ns();
            if (drain_end_ns == 0)
                drain_end_ns = now + (uint64_t)DRAIN_MS * 1000000u;
            if (th->inflight == 0 || now > drain_end_ns)
                break;
        }
        if (!preload && th->lost == th->n_conns)
            break;
        int n = epoll_wait(th->ep, ev, EVENTS_MAX, LOOP_TICK_MS);
        if (n < 0 && errno != EINTR)
            bench_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct rconn *c = ev[i].data.ptr;
            if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                conn_on_readable(th, c, preload);
            if (c->fd >= 0 && (ev[i].events & EPOLLOUT))
                conn_flush(th, c);
        }
    }
    if (!preload)
        thread_count_unanswered(th);
}

static void *thread_main(void *arg)
{
    struct rthread *th = arg;
    struct rbench *rb = th->rb;
    th->connect_failed = !thread_connect(th);
    if (!th->connect_failed && rb->cfg->preload)
        thread_loop(th, true);
    pthread_barrier_wait(&rb->ready); /* main checks the connections and the preload */
    pthread_barrier_wait(&rb->go);
    if (!th->connect_failed && atomic_load(&rb->phase) != PH_STOP)
        thread_loop(th, false);
    for (uint32_t i = 0; i < th->n_conns; i++)
        if (th->conns[i].fd >= 0)
            close(th->conns[i].fd);
    if (th->ep >= 0)
        close(th->ep);
    return NULL;
}

/* ---- setup ---- */

bool bench_addrs_parse(struct bench_cfg *cfg, const char *spec, char *err, size_t err_len)
{
    cfg->n_addrs = 0;
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (cfg->n_addrs == ADDRS_MAX) {
            snprintf(err, err_len, "more than %u addresses", ADDRS_MAX);
            return false;
        }
        struct bench_addr *a = &cfg->addrs[cfg->n_addrs];
        const char *colon = NULL, *host = p;
        size_t host_len;
        for (size_t i = 0; i < len; i++)
            if (p[i] == ':')
                colon = p + i; /* the last one: [v6]:port */
        if (colon == NULL || colon == p || (size_t)(p + len - colon - 1) == 0 ||
            (size_t)(p + len - colon - 1) >= sizeof a->port) {
            snprintf(err, err_len, "expected HOST:PORT, got \"%.*s\"", (int)len, p);
            return false;
        }
        host_len = (size_t)(colon - p);
        if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
            host++;
            host_len -= 2;
        }
        if (host_len == 0 || host_len >= sizeof a->host) {
            snprintf(err, err_len, "bad host in \"%.*s\"", (int)len, p);
            return false;
        }
        memcpy(a->host, host, host_len);
        a->host[host_len] = '\0';
        size_t port_len = (size_t)(p + len - colon - 1);
        memcpy(a->port, colon + 1, port_len);
        a->port[port_len] = '\0';
        if (strspn(a->port, "0123456789") != port_len || atoi(a->port) < 1 ||
            atoi(a->port) > 65535) {
            snprintf(err, err_len, "bad port in \"%.*s\"", (int)len, p);
            return false;
        }
        cfg->n_addrs++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (cfg->n_addrs == 0) {
        snprintf(err, err_len, "no address in \"%s\"", spec);
        return false;
    }
    return true;
}

static void addrs_resolve(struct rbench *rb)
{
    const struct bench_cfg *cfg = rb->cfg;
    for (uint32_t i = 0; i < cfg->n_addrs; i++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *ai;
        int rc = getaddrinfo(cfg->addrs[i].host, cfg->addrs[i].port, &hints, &ai);
        if (rc != 0)
            bench_die("--resp %s:%s: %s", cfg->addrs[i].host, cfg->addrs[i].port, gai_strerror(rc));
        memcpy(&rb->sa[i], ai->ai_addr, ai->ai_addrlen);
        rb->sa_len[i] = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
}

/* Copies the value of "name:" in an INFO text into out ("?" if absent). */
static void info_field(const uint8_t *text, size_t len, const char *name, char *out, size_t n)
{
    size_t nlen = strlen(name);
    snprintf(out, n, "?");
    for (size_t i = 0; i + nlen < len; i++) {
        if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, name, nlen) == 0 &&
            text[i + nlen] == ':') {
            size_t from = i + nlen + 1, to = from;
            while (to < len && text[to] != '\r' && text[to] != '\n')
                to++;
            snprintf(out, n, "%.*s", (int)(to - from), (const char *)text + from);
            return;
        }
    }
}

/* Asks each address PING and INFO before the run, and prints what answers:
 * a wrong address fails here, with a message, rather than as 100% errors. */
static void addrs_probe(struct rbench *rb)
{
    static const char req[] = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n";
    const struct bench_cfg *cfg = rb->cfg;
    for (uint32_t i = 0; i < cfg->n_addrs; i++) {
        const struct bench_addr *a = &cfg->addrs[i];
        char msg[ERRMSG_BYTES];
        int fd = socket_open((const struct sockaddr *)&rb->sa[i], rb->sa_len[i], msg, sizeof msg);
        if (fd < 0)
            bench_die("%s:%s: %s", a->host, a->port, msg);
        struct bytes in = {0};
        size_t sent = 0, pos = 0;
        int got = 0;
        struct rreply r;
        uint64_t deadline = now_ns() + (uint64_t)PROBE_TIMEOUT_MS * 1000000u;
        while (got < 2) {
            struct pollfd p = {.fd = fd, .events = sent < sizeof req - 1 ? POLLOUT : POLLIN};
            uint64_t now = now_ns();
            if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) == 0)
                bench_die("%s:%s: no answer to PING and INFO in %d ms", a->host, a->port,
                          PROBE_TIMEOUT_MS);
            if (sent < sizeof req - 1) {
                ssize_t n = send(fd, req + sent, sizeof req - 1 - sent, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                    bench_die("%s:%s: send: %s", a->host, a->port, strerror(errno));
                sent += n > 0 ? (size_t)n : 0;
                continue;
            }
            if (!bytes_reserve(&in, READ_BYTES / 2, IN_BYTES_MAX))
                bench_die("%s:%s: INFO answered too much", a->host, a->port);
            ssize_t n = recv(fd, in.data + in.len, in.cap - in.len, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                bench_die("%s:%s: %s while waiting for PING and INFO", a->host, a->port,
                          n == 0 ? "closed" : strerror(errno));
            in.len += n > 0 ? (size_t)n : 0;
            while (got < 2) { /* INFO's text stays valid: in grows no more after it */
                enum rreply_type t = rreply_parse(in.data + pos, in.len - pos, IN_BYTES_MAX, &r);
                if (t == RR_MORE)
                    break;
                if (t == RR_BAD)
                    bench_die("%s:%s: the answer to PING is not RESP2", a->host, a->port);
                if (got == 0 && (t != RR_STATUS || r.len != 4 || memcmp(r.str, "PONG", 4) != 0))
                    bench_die("%s:%s: PING did not answer +PONG", a->host, a->port);
                pos += r.consumed;
                got++;
            }
        }
        char version[64] = "?", ringkv[64] = "?", node[64] = "?", pid[32] = "?";
        if (r.type == RR_BULK) { /* INFO's */
            info_field(r.str, r.len, "redis_version", version, sizeof version);
            info_field(r.str, r.len, "ringkv_version", ringkv, sizeof ringkv);
            info_field(r.str, r.len, "ringkv_node", node, sizeof node);
            info_field(r.str, r.len, "process_id", pid, sizeof pid);
        }
        if (strcmp(ringkv, "?") != 0)
            fprintf(rb->out, "# target %s:%s: ringkv %s node %s (redis_version %s), pid %s\n",
                    a->host, a->port, ringkv, node, version, pid);
        else
            fprintf(rb->out, "# target %s:%s: redis_version %s, pid %s\n", a->host, a->port,
                    version, pid);
        free(in.data);
        close(fd);
    }
}

static void rbench_init(struct rbench *rb, const struct bench_cfg *cfg, FILE *out)
{
    *rb = (struct rbench){.cfg = cfg, .out = out};
    uint64_t rng = cfg->seed;
    rb->pool = malloc((size_t)VALUE_POOL_SPAN + cfg->value_bytes);
    if (rb->pool == NULL)
        bench_die("out of memory");
    for (size_t i = 0; i < (size_t)VALUE_POOL_SPAN + cfg->value_bytes; i++)
        rb->pool[i] = (uint8_t)rng_next(&rng);
    if (cfg->dist == DIST_ZIPFIAN)
        zipf_init(&rb->zipf, cfg->keys, ZIPF_THETA);
    rb->vlen_line_len =
        (size_t)snprintf(rb->vlen_line, sizeof rb->vlen_line, "$%u\r\n", cfg->value_bytes);
    char n[16];
    int nlen = snprintf(n, sizeof n, "%u", cfg->wait_replicas);
    rb->wait_cmd_len = (size_t)snprintf(rb->wait_cmd, sizeof rb->wait_cmd,
                                        "*3\r\n$4\r\nWAIT\r\n$%d\r\n%s\r\n$1\r\n0\r\n", nlen, n);
    addrs_resolve(rb);
    rb->threads = calloc(cfg->threads, sizeof *rb->threads);
    if (rb->threads == NULL)
        bench_die("out of memory");
    uint32_t q_cap = cfg->pipeline > PRELOAD_DEPTH ? cfg->pipeline : PRELOAD_DEPTH;
    for (uint32_t j = 0; j < cfg->threads; j++) {
        struct rthread *th = &rb->threads[j];
        th->rb = rb;
        th->id = j;
        th->ep = -1;
        th->n_conns = (cfg->clients - j + cfg->threads - 1) / cfg->threads;
        th->conns = calloc(th->n_conns, sizeof *th->conns);
        if (th->conns == NULL)
            bench_die("out of memory");
        for (uint32_t i = 0; i < th->n_conns; i++) {
            struct rconn *c = &th->conns[i];
            c->fd = -1;
            c->id = j + i * cfg->threads;
            c->addr = c->id % cfg->n_addrs;
            c->rng = cfg->seed ^ (0x9e3779b97f4a7c15ull * (c->id + 1u));
            c->preload_next = c->id;
            c->q_cap = q_cap;
            c->q = calloc(q_cap, sizeof *c->q);
            if (c->q == NULL)
                bench_die("out of memory");
        }
    }
}

static void rbench_free(struct rbench *rb)
{
    for (uint32_t j = 0; j < rb->cfg->threads; j++) {
        struct rthread *th = &rb->threads[j];
        for (uint32_t i = 0; i < th->n_conns; i++) {
            free(th->conns[i].q);
            free(th->conns[i].in.data);
            free(th->conns[i].out.data);
        }
        free(th->conns);
    }
    free(rb->threads);
    free(rb->pool);
}

static void print_settings(const struct rbench *rb)
{
    const struct bench_cfg *cfg = rb->cfg;
    char dist[64];
    if (cfg->dist == DIST_ZIPFIAN)
        snprintf(dist, sizeof dist, "zipfian theta %.2f", ZIPF_THETA);
    else
        snprintf(dist, sizeof dist, "uniform");
    fprintf(rb->out, "# RESP mode: %u connections over", cfg->clients);
    for (uint32_t i = 0; i < cfg->n_addrs; i++)
        fprintf(rb->out, "%s %s:%s", i ? "," : "", cfg->addrs[i].host, cfg->addrs[i].port);
    fprintf(rb->out,
            " (round-robin), %u event-loop thread%s (epoll, non-blocking sockets), pipeline "
            "%u per connection",
            cfg->threads, cfg->threads == 1 ? "" : "s", cfg->pipeline);
    if (cfg->wait_replicas)
        fprintf(rb->out, ", WAIT %u 0 after each SET (in its latency)\n", cfg->wait_replicas);
    else
        fprintf(rb->out, ", no WAIT\n");
    fprintf(rb->out,
            "# workload %s (%.1f%% writes: SET, reads: GET), %" PRIu64
            " keys x %d bytes (%s), %u-byte values, warmup %u s, measured %u s, prng seed "
            "0x%" PRIx64 "\n",
            wl_defs[cfg->wl].name, wl_defs[cfg->wl].write_permille / 10.0, cfg->keys, KEY_BYTES,
            dist, cfg->value_bytes, cfg->warmup_s, cfg->duration_s, cfg->seed);
    fprintf(rb->out, "# latency: per request, from queuing it to parsing its reply, successful "
                     "requests only; log-linear histogram, within 0.4%%\n");
}

/* Releases the threads, times the warmup and the window, stops, joins. */
static void rbench_run(struct rbench *rb, struct run_times *rt)
{
    const struct bench_cfg *cfg = rb->cfg;
    uint32_t n = cfg->threads;
    if (pthread_barrier_init(&rb->ready, NULL, n + 1) != 0 ||
        pthread_barrier_init(&rb->go, NULL, n + 1) != 0)
        bench_die("pthread_barrier_init failed");
    atomic_store(&rb->phase, PH_WARMUP);
    uint64_t t0 = now_ns();
    for (uint32_t j = 0; j < n; j++)
        if (pthread_create(&rb->threads[j].thread, NULL, thread_main, &rb->threads[j]) != 0)
            bench_die("cannot start event-loop thread %u of %u", j + 1, n);
    pthread_barrier_wait(&rb->ready);
    const struct rthread *bad = NULL;
    struct tally *setup = calloc(1, sizeof *setup);
    if (setup == NULL)
        bench_die("out of memory");
    for (uint32_t j = 0; j < n; j++) {
        bad = bad ? bad : rb->threads[j].connect_failed ? &rb->threads[j] : NULL;
        tally_merge(setup, &rb->threads[j].setup);
    }
    uint64_t failed = tally_failed(setup);
    if (cfg->preload && bad == NULL) {
        fprintf(rb->out,
                "# setup: preload (SET of every key) of %" PRIu64
                " keys on %u connections in %.1f s, %" PRIu64 " failed\n",
                cfg->keys, cfg->clients, (double)(now_ns() - t0) / 1e9, failed);
        for (int i = 0; i < ERR_CODES; i++)
            if (setup->errors[i])
                fprintf(rb->out, "#   setup error %s: %" PRIu64 ", first: %s\n", resp_err_name(i),
                        setup->errors[i], setup->errmsg[i]);
    } else if (bad == NULL) {
        fprintf(rb->out, "# setup: none (without --preload, GETs may find no value)\n");
    }
    fflush(rb->out);
    bool setup_bad = failed * 1000 > cfg->keys * FAIL_PERMILLE_MAX;
    if (bad || setup_bad)
        atomic_store(&rb->phase, PH_STOP); /* the threads exit at once */
    pthread_barrier_wait(&rb->go);
    if (bad == NULL && !setup_bad) {
        sleep_until_ns(now_ns() + (uint64_t)cfg->warmup_s * 1000000000u);
        double u0, s0, u1, s1;
        cpu_times(&u0, &s0);
        uint64_t start = now_ns();
        atomic_store_explicit(&rb->phase, PH_MEASURE, memory_order_release);
        sleep_until_ns(start + (uint64_t)cfg->duration_s * 1000000000u);
        atomic_store_explicit(&rb->phase, PH_STOP, memory_order_release);
        rt->measure_ns = now_ns() - start;
        cpu_times(&u1, &s1);
        rt->user_s = u1 - u0;
        rt->sys_s = s1 - s0;
    }
    for (uint32_t j = 0; j < n; j++)
        pthread_join(rb->threads[j].thread, NULL);
    pthread_barrier_destroy(&rb->ready);
    pthread_barrier_destroy(&rb->go);
    free(setup);
    if (bad)
        bench_die("%s", bad->connect_msg);
    if (setup_bad)
        bench_die("setup: %" PRIu64 " of %" PRIu64 " preload SETs failed", failed, cfg->keys);
}

int resp_bench_main(const struct bench_cfg *cfg, FILE *out)
{
    struct rbench *rb = calloc(1, sizeof *rb);
    if (rb == NULL)
        bench_die("out of memory");
    rbench_init(rb, cfg, out);
    print_machine(out);
    addrs_probe(rb);
    print_settings(rb);
    fflush(out);
    struct run_times rt = {0};
    rbench_run(rb, &rt);
    struct tally *t = calloc(1, sizeof *t);
    if (t == NULL)
        bench_die("out of memory");
    uint32_t lost = 0;
    const char *lost_msg = NULL;
    for (uint32_t j = 0; j < cfg->threads; j++) {
        tally_merge(t, &rb->threads[j].t);
        lost += rb->threads[j].lost;
        lost_msg = lost_msg ? lost_msg : rb->threads[j].lost ? rb->threads[j].lost_msg : NULL;
    }
    struct report_info ri = {.proto = "resp"};
    int status = bench_report(cfg, out, &ri, t, &rt, resp_err_name);
    if (lost) {
        fprintf(out, "# FAILED: %u of %u connections failed; first: %s\n", lost, cfg->clients,
                lost_msg);
        status = 1;
    }
    free(t);
    rbench_free(rb);
    free(rb);
    return status;
}
