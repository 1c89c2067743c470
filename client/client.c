/*
 * client.c: libringkv's blocking API (ringkv.h).
 *
 * The client keeps the ring it fetched (the RING reply: members with their
 * addresses, Q, N, defaults) and the ring module computes every key's
 * preference list locally, exactly as the nodes do. A request goes to the
 * first member of the walk of the key's partition (preference list first,
 * then the others, which forward writes) that is not marked down; if it
 * gives no answer in the request's timeout plus a margin, the member is
 * marked down for a while, its socket is recreated (so stale queued
 * requests are never delivered), and the next member is tried, until the
 * overall deadline.
 *
 * One DEALER socket per member, created on first use. Replies are matched
 * by request id; anything else that arrives (a late reply to an attempt
 * given up on) is dropped.
 */
#include "client/ringkv.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <zmq.h>

#include "common/alloc.h"
#include "common/cert.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/wire.h"
#include "ring/ring.h"

#define ATTEMPT_MARGIN_MS 500  /* beyond the server's own deadline */
#define CONNECT_WAIT_MS   250  /* a new connection may take this long to come up */
#define DOWN_FOR_MS       2000 /* a member that did not answer is skipped this long */
#define SEEDS_MAX         64
#define REFRESH_EVERY_MS  1000 /* the ring is fetched again at most this often */
#define SOCK_HWM          10000
/* Replies a node may have queued for this client: one is awaited, the rest
 * are late answers to attempts given up on. With ZMQ_MAXMSGSIZE at
 * RKV_MESSAGE_BYTES_MAX this bounds what a node can make the client hold. */
#define REPLIES_QUEUED_MAX 4

#define SAME_CODE(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME_CODE(RINGKV_ENOTFOUND, RKV_ERR_NOTFOUND) &&
                   SAME_CODE(RINGKV_EQUORUM, RKV_ERR_QUORUM) &&
                   SAME_CODE(RINGKV_EUNAVAILABLE, RKV_ERR_UNAVAILABLE) &&
                   SAME_CODE(RINGKV_ETOOBIG, RKV_ERR_TOOBIG) &&
                   SAME_CODE(RINGKV_EBUSY, RKV_ERR_BUSY) &&
                   SAME_CODE(RINGKV_ETIMEOUT, RKV_ERR_TIMEOUT) &&
                   SAME_CODE(RINGKV_EPROTO, RKV_ERR_PROTO) &&
                   SAME_CODE(RINGKV_EFAILED, RKV_ERR_FAILED),
               "client error codes are the server's status codes");

struct cnode {
    bool connected_once;                 /* its socket has carried a reply */
    char server_key[CERT_Z85_BYTES + 1]; /* Z85 public key, "" without CURVE */
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    char host[CONFIG_HOST_BYTES];
    uint16_t client_port, cluster_port;
    uint32_t vnodes;
    char status[8];                      /* "up"; outside the ring: "joining", "leaving" */
    void *sock;
    uint64_t down_until_ms;
};

struct seed {
    char id[RKV_NODE_ID_BYTES_MAX + 1]; /* "" if not given */
    char host[CONFIG_HOST_BYTES];
    uint16_t port;
    char key[CERT_Z85_BYTES + 1]; /* CURVE: the seed's public key */
};

struct ringkv_client {
    void *zctx;
    struct ringkv_options opt;
    struct seed seeds[SEEDS_MAX];
    size_t n_seeds;
    bool curve;     /* CurveZMQ on */
    struct cert me; /* this client's key pair */
    char keys_dir[CONFIG_PATH_BYTES];
    char name[64];
    uint32_t partitions, replicas, read_quorum, write_quorum, server_timeout_ms;
    struct ring *ring;
    struct cnode *nodes; /* by ring member index, then the live members outside the ring */
    size_t n_nodes;      /* all of them */
    size_t n_ring;       /* ring members: nodes[0 .. n_ring) */
    struct ringkv_node_info *infos;
    bool refresh;              /* a reply carried another ring epoch */
    uint32_t refresh_from;     /* ...from this member (asked first); UINT32_MAX: none */
    uint64_t refresh_after_ms; /* monotonic: no new fetch before this */
    uint64_t next_id;
    char errmsg[512];
    struct rkv_buf req, rep;
    /* pipelining (see "Pipelining" in ringkv.h) */
    struct pending *pend; /* by slot: RINGKV_PIPELINE_MAX at most */
    uint32_t cap_pend, n_pend;
    uint32_t *free_pend;
    uint32_t n_free_pend;
    uint64_t pend_deadline; /* the earliest deadline of a pending request */
    bool in_callback;
    int epfd; /* ringkv_fd's descriptor, -1 until asked for */
};

/* A pipelined request waiting for its reply. */
struct pending {
    uint64_t id; /* 0: the slot is free */
    uint32_t type, member;
    uint64_t deadline; /* monotonic ms */
    ringkv_done_fn *done;
    void *arg;
};

/* Memory of a result: everything a struct ringkv_result points to lives
 * here, never in the client, so that a result outlives a ring refresh (which
 * frees c->nodes), the next request (which reuses c->rep) and ringkv_close. */
struct result_mem {
    struct rkv_buf data; /* answered ids, sibling values, context */
    struct ringkv_sibling *sibs;
    const char **answered;
    char node[RKV_NODE_ID_BYTES_MAX + 1];
};

const char *ringkv_version(int *major, int *minor, int *patch)
{
    if (major)
        *major = RINGKV_VERSION_MAJOR;
    if (minor)
        *minor = RINGKV_VERSION_MINOR;
    if (patch)
        *patch = RINGKV_VERSION_PATCH;
    return WIRE_SOFTWARE_VERSION;
}

const char *ringkv_strerror(int err)
{
    return rkv_strerror(err);
}

const char *ringkv_errmsg(const struct ringkv_client *c)
{
    return c ? c->errmsg : "out of memory";
}

static int fail(struct ringkv_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ringkv_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* The error of a reply with a status other than RKV_OK: "PREFIX: " and
 * the node's message, else the status's name. The message is not
 * NUL-terminated and its length comes from the network: it is clamped. */
static int fail_reply(struct ringkv_client *c, int code, const char *prefix,
                      const struct wire_msg *m)
{
    const char *sep = prefix[0] ? ": " : "";
    if (m->message.len == 0)
        return fail(c, code, "%s%s%s", prefix, sep, rkv_strerror(code));
    int len = m->message.len < sizeof c->errmsg ? (int)m->message.len : (int)sizeof c->errmsg;
    return fail(c, code, "%s%s%.*s", prefix, sep, len, (const char *)m->message.p);
}

void ringkv_options_default(struct ringkv_options *o)
{
    *o = (struct ringkv_options){
        .config_path = NULL,
        .seeds = NULL,
        .timeout_ms = 0,
        .connect_timeout_ms = 5000,
        .keys_dir = NULL,
        .client_key = NULL,
        .zmq_context = NULL,
    };
}

/* ---- sockets ---- */

static int send_request(struct ringkv_client *c, void *sock, bool fresh, uint64_t wait_until);

static void *dealer(struct ringkv_client *c, const char *host, uint16_t port,
                    const char *server_key)
{
    void *s = zmq_socket(c->zctx, ZMQ_DEALER);
    if (s == NULL)
        return NULL;
    int zero = 0, one = 1, hwm = SOCK_HWM, rcvhwm = REPLIES_QUEUED_MAX;
    int64_t maxmsg = RKV_MESSAGE_BYTES_MAX;
    char ep[CONFIG_HOST_BYTES + 32];
    snprintf(ep, sizeof ep, "tcp://%s:%u", host, port);
    /* IMMEDIATE: nothing queues for a node that is not connected, so a
     * dead node is noticed at the send, not after a timeout. MAXMSGSIZE:
     * a frame's length is read from the network, and ZeroMQ allocates it
     * before the bytes arrive; a longer one closes the connection. */
    if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one) ||
        (c->curve &&
         (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, CERT_Z85_BYTES + 1) ||
          zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, c->me.public_key, CERT_Z85_BYTES + 1) ||
          zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, c->me.secret_key, CERT_Z85_BYTES + 1))) ||
        zmq_connect(s, ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Sends c->req on sock. A socket that has never been connected gets a
 * moment for its connection to come up (until wait_until, monotonic ms);
 * one that has lost its connection fails at once. */
static int send_request(struct ringkv_client *c, void *sock, bool fresh, uint64_t wait_until)
{
    for (;;) {
        if (zmq_send(sock, c->req.data, c->req.len, ZMQ_DONTWAIT) >= 0)
            return RKV_OK;
        uint64_t now = rkv_clock_mono_ms();
        if (zmq_errno() != EAGAIN || !fresh || now >= wait_until)
            return RKV_ERR_UNAVAILABLE;
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLOUT};
        if (zmq_poll(&it, 1, (long)(wait_until - now)) < 0 && zmq_errno() != EINTR)
            return RKV_ERR_UNAVAILABLE;
    }
}

static void node_reset(struct ringkv_client *c, struct cnode *n)
{
    if (n->sock) {
        int fd;
        size_t len = sizeof fd;
        if (c->epfd >= 0 && zmq_getsockopt(n->sock, ZMQ_FD, &fd, &len) == 0)
            epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
        zmq_close(n->sock);
    }
    n->sock = NULL;
    n->connected_once = false;
}

/* The member's socket, made on first use (and watched by ringkv_fd's
 * descriptor, if there is one). NULL if it cannot be made. */
static void *node_socket(struct ringkv_client *c, struct cnode *n)
{
    if (n->sock != NULL)
        return n->sock;
    n->sock = dealer(c, n->host, n->client_port, n->server_key);
    int fd;
    size_t len = sizeof fd;
    if (n->sock && c->epfd >= 0 && zmq_getsockopt(n->sock, ZMQ_FD, &fd, &len) == 0) {
        struct epoll_event ev = {.events = EPOLLIN};
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    return n->sock;
}

/* Waits for the reply to request id on sock until deadline (monotonic ms).
 * The frame lands in c->rep. RKV_OK, RKV_ERR_TIMEOUT or RKV_ERR_PROTO. */
static int await_reply(struct ringkv_client *c, void *sock, uint64_t id, uint64_t deadline,
                       struct wire_msg *m)
{
    for (;;) {
        uint64_t now = rkv_clock_mono_ms();
        if (now >= deadline)
            return RKV_ERR_TIMEOUT;
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&it, 1, (long)(deadline - now));
        if (rc < 0)
            return zmq_errno() == EINTR ? RKV_ERR_TIMEOUT : RKV_ERR_IO;
        if (rc == 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        int set = rkv_buf_set(&c->rep, zmq_msg_data(&msg), zmq_msg_size(&msg));
        bool more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
        while (more) { /* nodes send one part; drop anything else */
            zmq_msg_init(&msg);
            zmq_msg_recv(&msg, sock, 0);
            more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
        if (set != RKV_OK)
            return RKV_ERR_NOMEM;
        if (wire_decode(c->rep.data, c->rep.len, m) != RKV_OK || m->type != WIRE_REPLY)
            return RKV_ERR_PROTO;
        if (m->id == id)
            return RKV_OK;
        /* a late reply to an attempt we gave up on: drop it */
    }
}

/* ---- the ring ---- */

static bool read_str(struct mp_reader *r, char *out, size_t cap)
{
    const char *s;
    uint32_t len;
    if (!mp_read_str(r, &s, &len) || len >= cap)
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

/* Reads a server key (Z85, "" without CURVE) into cn. */
static bool read_server_key(const struct ringkv_client *c, struct mp_reader *r, struct cnode *cn)
{
    const char *key;
    uint32_t key_len;
    if (!mp_read_str(r, &key, &key_len) || key_len > CERT_Z85_BYTES ||
        (c->curve && key_len != CERT_Z85_BYTES))
        return false;
    memcpy(cn->server_key, key, key_len);
    cn->server_key[key_len] = '\0';
    return true;
}

/* A member outside the ring: [id, host, client_port, cluster_port, status,
 * server_key], status "joining" or "leaving"; its id must be one that is
 * neither in ring nor among the outsiders before it, nodes[0 .. idx). */
static bool read_outsider(const struct ringkv_client *c, struct mp_reader *r,
                          const struct ring *ring, struct cnode *nodes, uint32_t idx)
{
    struct cnode *cn = &nodes[idx];
    uint32_t fields;
    if (!mp_read_array(r, &fields) || fields != 6 || !read_str(r, cn->id, sizeof cn->id) ||
        !read_str(r, cn->host, sizeof cn->host) || !mp_read_u16(r, &cn->client_port) ||
        !mp_read_u16(r, &cn->cluster_port) || !read_str(r, cn->status, sizeof cn->status) ||
        (strcmp(cn->status, "joining") != 0 && strcmp(cn->status, "leaving") != 0) ||
        !read_server_key(c, r, cn))
        return false;
    if (cn->id[0] == '\0' || cn->client_port == 0 || cn->host[0] == '\0' ||
        ring_member_index(ring, cn->id) >= 0)
        return false;
    for (uint32_t k = 0; k < idx; k++)
        if (strcmp(nodes[k].id, cn->id) == 0)
            return false;
    return true;
}

/* Parses a RING payload and rebuilds nodes and ring. The payload comes
 * from the network: each member count is bounded before a table is sized
 * by it, ring_new bounds Q, N and each member's vnodes, and the quorums
 * and timeout must be what a cluster file may set. */
static int parse_ring(struct ringkv_client *c, const struct wire_bytes *payload)
{
    struct mp_reader r;
    mp_reader_init(&r, payload->p, payload->len);
    uint32_t n, members, others = 0;
    char name[64];
    uint32_t q, nrep, rq, wq, tmo;
    if (!mp_read_array(&r, &n) || (n != 7 && n != 8) || !read_str(&r, name, sizeof name) ||
        !mp_read_u32(&r, &q) || !mp_read_u32(&r, &nrep) || !mp_read_u32(&r, &rq) ||
        !mp_read_u32(&r, &wq) || !mp_read_u32(&r, &tmo) || !mp_read_array(&r, &members) ||
        members == 0 || members > RKV_NODES_MAX || rq < 1 || rq > RKV_REPLICAS_MAX || wq < 1 ||
        wq > RKV_REPLICAS_MAX || tmo < 1 || tmo > CONFIG_INTERVAL_MS_MAX)
        return fail(c, RKV_ERR_PROTO, "malformed ring description");
    struct cnode *nodes = rkv_calloc(members, sizeof *nodes);
    struct ring_member *rm = rkv_calloc(members, sizeof *rm);
    struct ringkv_node_info *infos = NULL;
    struct cnode *sorted = NULL;
    struct ring *ring = NULL;
    struct rkv_error err = {0};
    int rc = nodes && rm ? RKV_OK : RKV_ERR_NOMEM;
    for (uint32_t i = 0; rc == RKV_OK && i < members; i++) {
        struct cnode *cn = &nodes[i];
        uint32_t fields;
        if (!mp_read_array(&r, &fields) || fields != 6 || !read_str(&r, cn->id, sizeof cn->id) ||
            !read_str(&r, cn->host, sizeof cn->host) || !mp_read_u16(&r, &cn->client_port) ||
            !mp_read_u16(&r, &cn->cluster_port) || !mp_read_u32(&r, &cn->vnodes) ||
            !read_server_key(c, &r, cn))
            rc = RKV_ERR_PROTO;
        memcpy(cn->status, "up", 3);
        rm[i] = (struct ring_member){.id = cn->id, .vnodes = cn->vnodes};
    }
    if (rc == RKV_OK)
        rc = ring_new(rm, members, q, nrep, &ring, &err);
    /* the members outside the ring follow the ring's, in sorted order */
    if (rc == RKV_OK && n == 8 &&
        (!mp_read_array(&r, &others) || others > RKV_NODES_MAX - members))
        rc = RKV_ERR_PROTO;
    if (rc == RKV_OK) {
        sorted = rkv_calloc(members + others, sizeof *sorted);
        infos = rkv_calloc(members + others, sizeof *infos);
        rc = sorted && infos ? RKV_OK : RKV_ERR_NOMEM;
    }
    if (rc == RKV_OK)
        for (uint32_t i = 0; i < members; i++)
            sorted[ring_member_index(ring, nodes[i].id)] = nodes[i];
    for (uint32_t i = 0; rc == RKV_OK && i < others; i++)
        if (!read_outsider(c, &r, ring, sorted, members + i))
            rc = RKV_ERR_PROTO;
    if (rc == RKV_OK && !mp_done(&r))
        rc = RKV_ERR_PROTO;
    rkv_free(nodes);
    rkv_free(rm);
    if (rc != RKV_OK) {
        ring_free(ring);
        rkv_free(sorted);
        rkv_free(infos);
        return fail(c, rc, "ring description: %s", err.msg[0] ? err.msg : rkv_strerror(rc));
    }
    for (size_t i = 0; i < c->n_nodes; i++)
        node_reset(c, &c->nodes[i]);
    rkv_free(c->nodes);
    rkv_free(c->infos);
    ring_free(c->ring);
    c->nodes = sorted;
    c->infos = infos;
    c->n_nodes = members + others;
    c->n_ring = members;
    c->ring = ring;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->partitions = q;
    c->replicas = ring_replicas(ring);
    c->read_quorum = rq;
    c->write_quorum = wq;
    c->server_timeout_ms = tmo;
    c->refresh = false;
    c->refresh_from = UINT32_MAX;
    return RKV_OK;
}

/* Asks one address for the ring. */
static int fetch_ring(struct ringkv_client *c, const char *host, uint16_t port, const char *key,
                      uint64_t deadline)
{
    void *s = dealer(c, host, port, key);
    if (s == NULL)
        return fail(c, RKV_ERR_UNAVAILABLE, "cannot connect to %s:%u", host, port);
    uint64_t id = ++c->next_id;
    c->req.len = 0;
    int rc = wire_encode_simple(&c->req, WIRE_RING, id, 0);
    struct wire_msg m;
    if (rc == RKV_OK)
        rc = send_request(c, s, true, deadline);
    if (rc == RKV_OK)
        rc = await_reply(c, s, id, deadline, &m);
    if (rc == RKV_OK && m.status != RKV_OK)
        rc = (int)m.status;
    if (rc == RKV_OK)
        rc = parse_ring(c, &m.payload);
    zmq_close(s);
    return rc;
}

/* Fetches the ring again after a reply carried another epoch. It frees
 * c->nodes and reuses c->rep, so it runs after the reply has been copied
 * out. The request it follows has its outcome already: its message in
 * c->errmsg is kept, and if no node gives a ring, c->refresh stays set and
 * the next request tries again. The member whose reply told of the new
 * epoch is asked first: it is up and has that ring (the first in c->nodes
 * may be a member that has left, whose connection never comes up). */
static void refresh_ring(struct ringkv_client *c)
{
    /* at most once per REFRESH_EVERY_MS: a node whose cluster file differs
     * keeps answering with another epoch, and a fetch per request would
     * double the cost of every request that reaches it */
    uint64_t now = rkv_clock_mono_ms();
    if (now < c->refresh_after_ms)
        return;
    c->refresh_after_ms = now + REFRESH_EVERY_MS;
    char errmsg[sizeof c->errmsg];
    memcpy(errmsg, c->errmsg, sizeof errmsg);
    uint64_t deadline = rkv_clock_mono_ms() + c->opt.connect_timeout_ms;
    size_t first = c->refresh_from < c->n_nodes ? c->refresh_from : 0;
    for (size_t k = 0; k < c->n_nodes; k++) {
        size_t i = (first + k) % c->n_nodes;
        if (c->nodes[i].down_until_ms > rkv_clock_mono_ms())
            continue;
        struct cnode n = c->nodes[i]; /* fetch_ring replaces c->nodes */
        if (fetch_ring(c, n.host, n.client_port, n.server_key, deadline) == RKV_OK)
            break;
    }
    memcpy(c->errmsg, errmsg, sizeof errmsg);
}

/* Parses "[ID@]HOST:PORT" into seed. */
static int parse_seed(struct ringkv_client *c, const char *p, size_t len, struct seed *seed)
{
    char text[RKV_NODE_ID_BYTES_MAX + CONFIG_HOST_BYTES + 16];
    if (len == 0 || len >= sizeof text)
        return fail(c, RKV_ERR_INVAL, "bad seed \"%.*s\": expected [ID@]HOST:PORT", (int)len, p);
    memcpy(text, p, len);
    text[len] = '\0';
    char *host = text, *at = strchr(text, '@');
    memset(seed, 0, sizeof *seed);
    if (at) {
        *at = '\0';
        host = at + 1;
        if (strlen(text) == 0 || strlen(text) > RKV_NODE_ID_BYTES_MAX)
            return fail(c, RKV_ERR_INVAL, "bad node id in seed \"%s@%s\"", text, host);
        memcpy(seed->id, text, strlen(text) + 1); /* checked above */
    }
    char *colon = strrchr(host, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || colon == host || port < 1 || port > 65535 || *end != '\0' ||
        (size_t)(colon - host) >= sizeof seed->host)
        return fail(c, RKV_ERR_INVAL, "bad seed \"%.*s\": expected [ID@]HOST:PORT", (int)len, p);
    *colon = '\0';
    memcpy(seed->host, host, (size_t)(colon - host) + 1); /* checked above */
    seed->port = (uint16_t)port;
    return RKV_OK;
}

/* Fills c->seeds (and the security settings) from opt.seeds or the config. */
static int collect_seeds(struct ringkv_client *c)
{
    if (c->opt.config_path && !(c->opt.seeds && *c->opt.seeds)) {
        struct config *cfg;
        struct rkv_error err = {0};
        if (config_load(c->opt.config_path, &cfg, &err) != RKV_OK)
            return fail(c, err.code, "%s", err.msg);
        c->curve = cfg->security == SECURITY_CURVE;
        snprintf(c->keys_dir, sizeof c->keys_dir, "%s",
                 c->opt.keys_dir ? c->opt.keys_dir : cfg->keys_dir);
        for (size_t i = 0; i < cfg->n_nodes && c->n_seeds < SEEDS_MAX; i++) {
            struct seed *sd = &c->seeds[c->n_seeds++];
            memset(sd, 0, sizeof *sd);
            snprintf(sd->id, sizeof sd->id, "%s", cfg->nodes[i].id);
            snprintf(sd->host, sizeof sd->host, "%s", cfg->nodes[i].host);
            sd->port = cfg->nodes[i].client_port;
        }
        config_free(cfg);
        return RKV_OK;
    }
    if (c->opt.seeds == NULL || *c->opt.seeds == '\0')
        return fail(c, RKV_ERR_INVAL, "no seeds: set config_path or seeds");
    c->curve = c->opt.keys_dir != NULL;
    if (c->curve)
        snprintf(c->keys_dir, sizeof c->keys_dir, "%s", c->opt.keys_dir);
    for (const char *p = c->opt.seeds; *p && c->n_seeds < SEEDS_MAX;) {
        size_t len = strcspn(p, ",");
        int rc = parse_seed(c, p, len, &c->seeds[c->n_seeds]);
        if (rc != RKV_OK)
            return rc;
        c->n_seeds++;
        p += len + (p[len] == ',');
    }
    return RKV_OK;
}

/* CURVE: this client's key pair (the search path of ringkv.h) and every
 * seed's public key. */
static int load_keys(struct ringkv_client *c)
{
    char path[CONFIG_PATH_BYTES + 64];
    const char *home = getenv("HOME"), *env = getenv("RINGKV_CLIENT_KEY");
    const char *tried[4];
    char p2[CONFIG_PATH_BYTES + 64], p3[CONFIG_PATH_BYTES + 64];
    size_t n = 0;
    if (c->opt.client_key)
        tried[n++] = c->opt.client_key;
    else {
        if (env && *env)
            tried[n++] = env;
        snprintf(p2, sizeof p2, "%s/client.key_secret", c->keys_dir);
        tried[n++] = p2;
        if (home && *home) {
            snprintf(p3, sizeof p3, "%s/.config/ringkv/client.key_secret", home);
            tried[n++] = p3;
        }
    }
    struct rkv_error err = {0};
    int rc = RKV_ERR_NOTFOUND;
    for (size_t i = 0; i < n && rc == RKV_ERR_NOTFOUND; i++)
        rc = cert_load_secret(tried[i], &c->me, &err);
    if (rc == RKV_ERR_NOTFOUND)
        return fail(c, RKV_ERR_DENIED,
                    "the ring uses CurveZMQ but this client has no key (tried %s%s%s%s%s); make "
                    "one with: ringkv keygen client",
                    tried[0], n > 1 ? ", " : "", n > 1 ? tried[1] : "", n > 2 ? ", " : "",
                    n > 2 ? tried[2] : "");
    if (rc != RKV_OK)
        return fail(c, rc, "%s", err.msg);
    for (size_t i = 0; i < c->n_seeds; i++) {
        struct seed *sd = &c->seeds[i];
        if (sd->id[0] == '\0')
            return fail(c, RKV_ERR_INVAL, "with CurveZMQ a seed must name its node: ID@%s:%u",
                        sd->host, sd->port);
        snprintf(path, sizeof path, "%s/%s.key", c->keys_dir, sd->id);
        struct cert pub;
        rc = cert_load_public(path, &pub, &err);
        if (rc != RKV_OK)
            return fail(c, rc, "%s", err.msg);
        memcpy(sd->key, pub.public_key, sizeof sd->key);
    }
    return RKV_OK;
}

int ringkv_connect(const struct ringkv_options *o, struct ringkv_client **out)
{
    struct ringkv_client *c = rkv_calloc(1, sizeof *c);
    *out = c;
    if (c == NULL)
        return RKV_ERR_NOMEM;
    c->epfd = -1;
    if (o)
        c->opt = *o;
    else
        ringkv_options_default(&c->opt);
    if (c->opt.connect_timeout_ms == 0)
        c->opt.connect_timeout_ms = 5000;
    c->zctx = c->opt.zmq_context ? c->opt.zmq_context : zmq_ctx_new();
    if (c->zctx == NULL)
        return fail(c, RKV_ERR_IO, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    int rc = collect_seeds(c);
    if (rc == RKV_OK && c->curve)
        rc = load_keys(c);
    if (rc != RKV_OK)
        return rc;
    uint64_t deadline = rkv_clock_mono_ms() + c->opt.connect_timeout_ms;
    for (size_t i = 0; i < c->n_seeds; i++) {
        /* each seed gets a fair share of what is left */
        uint64_t now = rkv_clock_mono_ms();
        uint64_t share = now < deadline ? (deadline - now) / (c->n_seeds - i) : 0;
        const struct seed *sd = &c->seeds[i];
        if (fetch_ring(c, sd->host, sd->port, sd->key, now + share) == RKV_OK) {
            c->errmsg[0] = '\0';
            return RKV_OK;
        }
    }
    return fail(c, RKV_ERR_UNAVAILABLE, "no seed answered within %u ms (tried %zu: %s:%u%s)%s",
                c->opt.connect_timeout_ms, c->n_seeds, c->seeds[0].host, c->seeds[0].port,
                c->n_seeds > 1 ? ", ..." : "",
                c->curve ? "; with CurveZMQ this also means the ring refused this client's key"
                         : "");
}

void ringkv_close(struct ringkv_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_nodes; i++)
        node_reset(c, &c->nodes[i]);
    if (c->epfd >= 0)
        close(c->epfd);
    rkv_free(c->pend);
    rkv_free(c->free_pend);
    if (c->zctx && c->zctx != c->opt.zmq_context)
        zmq_ctx_term(c->zctx);
    ring_free(c->ring);
    rkv_free(c->nodes);
    rkv_free(c->infos);
    rkv_buf_free(&c->req);
    rkv_buf_free(&c->rep);
    rkv_free(c);
}

/* ---- requests ---- */

/* How exchange may move on from a member that was sent the request. */
enum {
    /* no reply by the attempt's deadline: send it to the next member. Only
     * for requests that may be applied twice (reads, admin): a write the
     * member took may still be applied, and a second coordinator would
     * mint a second version of it (two equal siblings). */
    RESEND_AFTER_TIMEOUT = 1,
    /* an RKV_ERR_UNAVAILABLE reply (the node is shutting down, or was
     * forwarded a key it does not own): it did nothing; try the next */
    NEXT_IF_REFUSED = 2,
};

/* Sends c->req (request id) to the members of `order` in turn until one
 * answers (as `how` allows). On RKV_OK *m is the reply (in c->rep) and
 * *from the member. */
static int exchange(struct ringkv_client *c, const uint32_t *order, uint32_t n_order, uint64_t id,
                    uint32_t timeout_ms, unsigned how, struct wire_msg *m, uint32_t *from)
{
    uint32_t attempt_ms = (timeout_ms ? timeout_ms : c->server_timeout_ms) + ATTEMPT_MARGIN_MS;
    uint32_t total_ms = c->opt.timeout_ms ? c->opt.timeout_ms : 2 * attempt_ms;
    if (timeout_ms && timeout_ms + ATTEMPT_MARGIN_MS > total_ms)
        total_ms = timeout_ms + ATTEMPT_MARGIN_MS;
    uint64_t deadline = rkv_clock_mono_ms() + total_ms;
    char tried[256] = "";
    size_t tlen = 0;
    /* two passes: members not marked down first, then the rest; a member
     * is tried at most once per request */
    bool tried_k[RKV_NODES_MAX] = {false};
    bool any_timeout = false;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < n_order; k++) {
            struct cnode *n = &c->nodes[order[k]];
            uint64_t now = rkv_clock_mono_ms();
            if (now >= deadline)
                break;
            bool down = n->down_until_ms > now;
            if (tried_k[k] || down != (pass == 1))
                continue;
            tried_k[k] = true;
            node_socket(c, n);
            uint64_t until = now + attempt_ms < deadline ? now + attempt_ms : deadline;
            /* a connection not up yet gets a moment, so that a dead node is
             * passed over quickly; in the last pass, all that is left (a
             * CurveZMQ handshake can take longer when many clients share
             * one I/O thread) */
            uint64_t conn =
                pass == 1 || now + CONNECT_WAIT_MS >= until ? until : now + CONNECT_WAIT_MS;
            int rc =
                n->sock ? send_request(c, n->sock, !n->connected_once, conn) : RKV_ERR_UNAVAILABLE;
            bool sent = rc == RKV_OK;
            if (sent)
                rc = await_reply(c, n->sock, id, until, m);
            const char *why = rc == RKV_ERR_TIMEOUT ? "no answer" : "unreachable";
            if (rc == RKV_OK) {
                n->down_until_ms = 0;
                n->connected_once = true;
                *from = order[k];
                if (m->status != RKV_ERR_UNAVAILABLE || !(how & NEXT_IF_REFUSED))
                    return RKV_OK;
                why = "refused: shutting down or not an owner";
            } else if (rc == RKV_ERR_NOMEM) {
                return fail(c, rc, "out of memory");
            } else {
                any_timeout |= rc == RKV_ERR_TIMEOUT;
                n->down_until_ms = rkv_clock_mono_ms() + DOWN_FOR_MS;
                /* a socket whose connection never came up keeps trying (its
                 * handshake may be under way); one that had a connection
                 * and failed is made anew */
                if (n->connected_once)
                    node_reset(c, n);
                if (sent && rc == RKV_ERR_TIMEOUT && !(how & RESEND_AFTER_TIMEOUT))
                    return fail(c, rc,
                                "%s did not answer within %u ms: the write may have been "
                                "applied (it is not sent to another node, which would make "
                                "a second version of it)",
                                n->id, attempt_ms);
            }
            int w = snprintf(tried + tlen, sizeof tried - tlen, "%s%s (%s)", tlen ? ", " : "",
                             n->id, why);
            if (w > 0 && (size_t)w < sizeof tried - tlen)
                tlen += (size_t)w;
        }
    }
    if (!any_timeout)
        return fail(c, RKV_ERR_UNAVAILABLE, "no node reachable: %s", tlen ? tried : "none tried");
    return fail(c, RKV_ERR_TIMEOUT, "no node answered within %u ms: %s", total_ms,
                tlen ? tried : "none tried");
}

/* Starts a result: it is overwritten, never freed (it may be garbage). */
static void result_reset(struct ringkv_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
}

/* Copies the reply into res: answered ids, status, and the payload. */
static int fill_result(struct ringkv_client *c, const struct wire_msg *m, uint32_t from,
                       uint32_t type, struct ringkv_result *res)
{
    struct result_mem *mem = rkv_calloc(1, sizeof *mem);
    if (mem == NULL)
        return RKV_ERR_NOMEM;
    res->priv_ = mem;
    res->status = (int)m->status;
    res->repaired = m->repaired;
    snprintf(mem->node, sizeof mem->node, "%s", c->nodes[from].id);
    res->node = mem->node;
    /* offsets first: the data buffer moves while it grows */
    /* answered ids, then the fallbacks, then the owners they stood in for */
    size_t ans_off[WIRE_ANSWERED_MAX + 2 * WIRE_FALLBACKS_MAX];
    assert(m->n_answered <= WIRE_ANSWERED_MAX); /* wire_decode refuses more */
    assert(m->n_fallbacks <= WIRE_FALLBACKS_MAX);
    uint32_t n_ids = m->n_answered + 2 * m->n_fallbacks;
    int rc = RKV_OK;
    for (uint32_t i = 0; rc == RKV_OK && i < n_ids; i++) {
        uint32_t k = i - m->n_answered, nf = m->n_fallbacks;
        const struct wire_bytes *id = i < m->n_answered ? &m->answered[i]
                                      : k < nf          ? &m->fallback[k]
                                                        : &m->fallback_for[k - nf];
        ans_off[i] = mem->data.len;
        rc = rkv_buf_append(&mem->data, id->p, id->len);
        if (rc == RKV_OK)
            rc = rkv_buf_append(&mem->data, "", 1);
    }
    struct mp_reader r;
    mp_reader_init(&r, m->payload.p, m->payload.len);
    uint32_t n_sibs = 0, fields;
    size_t ctx_off = 0, ctx_len = 0;
    struct ringkv_sibling *sibs = NULL;
    size_t *val_off = NULL;
    bool has_ctx = false;
    if (rc == RKV_OK && !mp_peek_nil(&r) && m->payload.len) {
        const uint8_t *p;
        uint32_t len;
        if (type == WIRE_GET) {
            /* no object holds more siblings: refuse a count that would
             * size the tables below before the siblings are read */
            if (!mp_read_array(&r, &fields) || fields != 2 || !mp_read_array(&r, &n_sibs) ||
                n_sibs > RKV_SIBLINGS_MAX)
                rc = RKV_ERR_PROTO;
            sibs = rc == RKV_OK ? rkv_calloc(n_sibs + 1, sizeof *sibs) : NULL;
            val_off = rc == RKV_OK ? rkv_calloc(n_sibs + 1, sizeof *val_off) : NULL;
            if (rc == RKV_OK && (sibs == NULL || val_off == NULL))
                rc = RKV_ERR_NOMEM;
            for (uint32_t i = 0; rc == RKV_OK && i < n_sibs; i++) {
                if (!mp_read_array(&r, &fields) || fields != 3 || !mp_read_bin(&r, &p, &len) ||
                    !mp_read_uint(&r, &sibs[i].ts_ms) || !mp_read_uint(&r, &sibs[i].expiry_ms)) {
                    rc = RKV_ERR_PROTO;
                    break;
                }
                val_off[i] = mem->data.len;
                sibs[i].value_len = len;
                rc = rkv_buf_append(&mem->data, p, len);
            }
        }
        if (rc == RKV_OK && mp_read_bin(&r, &p, &len)) {
            ctx_off = mem->data.len;
            ctx_len = len;
            has_ctx = true;
            rc = rkv_buf_append(&mem->data, p, len);
        } else if (rc == RKV_OK) {
            rc = RKV_ERR_PROTO;
        }
    }
    mem->answered = rkv_calloc(n_ids + 1, sizeof *mem->answered);
    if (rc == RKV_OK && mem->answered == NULL)
        rc = RKV_ERR_NOMEM;
    if (rc != RKV_OK) {
        rkv_free(sibs);
        rkv_free(val_off);
        return rc;
    }
    for (uint32_t i = 0; i < n_ids; i++)
        mem->answered[i] = (const char *)mem->data.data + ans_off[i];
    for (uint32_t i = 0; i < n_sibs; i++)
        sibs[i].value = mem->data.data + val_off[i];
    rkv_free(val_off);
    mem->sibs = sibs;
    res->siblings = sibs;
    res->n_siblings = n_sibs;
    res->answered = mem->answered;
    res->n_answered = m->n_answered;
    res->fallbacks = mem->answered + m->n_answered;
    res->fallback_for = mem->answered + m->n_answered + m->n_fallbacks;
    res->n_fallbacks = m->n_fallbacks;
    res->context = has_ctx ? mem->data.data + ctx_off : NULL;
    res->context_len = ctx_len;
    return RKV_OK;
}

void ringkv_result_free(struct ringkv_result *res)
{
    if (res == NULL)
        return;
    struct result_mem *mem = res->priv_;
    if (mem) {
        rkv_buf_free(&mem->data);
        rkv_free(mem->sibs);
        rkv_free(mem->answered);
        rkv_free(mem);
    }
    memset(res, 0, sizeof *res);
}

/* Runs one key request already encoded in c->req. */
/* The members to try for key, in order: the named coordinator only, or
 * the key's preference list and then the rest of the ring. */
static int route(struct ringkv_client *c, const void *key, size_t key_len,
                 const struct ringkv_request_options *o, uint32_t order[RKV_NODES_MAX], uint32_t *n)
{
    if (o->coordinator) {
        int idx = ring_member_index(c->ring, o->coordinator);
        if (idx < 0)
            return fail(c, RKV_ERR_INVAL, "no node \"%s\" in the ring", o->coordinator);
        order[0] = (uint32_t)idx;
        *n = 1;
        return RKV_OK;
    }
    *n = ring_walk(c->ring, ring_partition(c->ring, ring_hash_key(key, key_len)), order,
                   RKV_NODES_MAX);
    return RKV_OK;
}

static int key_request(struct ringkv_client *c, const void *key, size_t key_len, uint64_t id,
                       uint32_t type, const struct ringkv_request_options *o,
                       struct ringkv_result *res)
{
    uint32_t timeout_ms = o->timeout_ms;
    uint32_t order[RKV_NODES_MAX];
    uint32_t n;
    int rc = route(c, key, key_len, o, order, &n);
    if (rc != RKV_OK)
        return rc;
    struct wire_msg m;
    uint32_t from;
    unsigned how = NEXT_IF_REFUSED | (type == WIRE_GET ? RESEND_AFTER_TIMEOUT : 0);
    rc = exchange(c, order, n, id, timeout_ms, how, &m, &from);
    if (rc != RKV_OK)
        return rc;
    if (m.epoch != ring_epoch(c->ring)) {
        c->refresh = true;
        c->refresh_from = from;
    }
    struct ringkv_result tmp = {0};
    struct ringkv_result *r = res ? res : &tmp;
    rc = fill_result(c, &m, from, type, r);
    if (rc != RKV_OK)
        fail(c, rc, "%s: unusable reply: %s", c->nodes[from].id, rkv_strerror(rc));
    else if ((rc = (int)m.status) != RKV_OK)
        fail_reply(c, rc, c->nodes[from].id, &m);
    else
        c->errmsg[0] = '\0';
    r->status = rc;
    ringkv_result_free(&tmp);
    /* last: it frees c->nodes and reuses c->rep, where m points */
    if (c->refresh)
        refresh_ring(c);
    return rc;
}

/* What a node would refuse anyway, refused here (a timeout past it would
 * also overflow the client's own deadline arithmetic). */
static int check_options(struct ringkv_client *c, const struct ringkv_request_options *o)
{
    if (o->timeout_ms > RKV_TIMEOUT_MS_MAX)
        return fail(c, RKV_ERR_INVAL, "timeout_ms %u is over %u", o->timeout_ms,
                    RKV_TIMEOUT_MS_MAX);
    if (o->ttl_ms > RKV_TTL_MS_MAX)
        return fail(c, RKV_ERR_INVAL, "ttl_ms %llu is over %llu", (unsigned long long)o->ttl_ms,
                    (unsigned long long)RKV_TTL_MS_MAX);
    return RKV_OK;
}

static int check_key(struct ringkv_client *c, size_t key_len)
{
    if (c == NULL || c->ring == NULL)
        return RKV_ERR_INVAL;
    if (c->n_pend > 0)
        return fail(c, RKV_ERR_INVAL,
                    "%u pipelined requests are in flight: a blocking call "
                    "would drop their replies (ringkv_wait for them first)",
                    c->n_pend);
    if (key_len > RKV_KEY_BYTES_MAX)
        return fail(c, RKV_ERR_TOOBIG, "key of %zu bytes is over %u", key_len, RKV_KEY_BYTES_MAX);
    return RKV_OK;
}

int ringkv_get(struct ringkv_client *c, const void *key, size_t key_len,
               const struct ringkv_request_options *opt, struct ringkv_result *res)
{
    result_reset(res);
    int rc = check_key(c, key_len);
    if (rc != RKV_OK)
        return rc;
    struct ringkv_request_options o = opt ? *opt : (struct ringkv_request_options){0};
    if (check_options(c, &o) != RKV_OK)
        return RKV_ERR_INVAL;
    uint64_t id = ++c->next_id;
    c->req.len = 0;
    rc = wire_encode_get(&c->req, id, ring_epoch(c->ring), key, key_len, o.r, o.timeout_ms);
    if (rc != RKV_OK)
        return fail(c, rc, "out of memory");
    return key_request(c, key, key_len, id, WIRE_GET, &o, res);
}

int ringkv_put(struct ringkv_client *c, const void *key, size_t key_len, const void *value,
               size_t value_len, const struct ringkv_request_options *opt,
               struct ringkv_result *res)
{
    result_reset(res);
    int rc = check_key(c, key_len);
    if (rc != RKV_OK)
        return rc;
    if (value_len > RKV_VALUE_BYTES_MAX)
        return fail(c, RKV_ERR_TOOBIG, "value of %zu bytes is over %u", value_len,
                    RKV_VALUE_BYTES_MAX);
    struct ringkv_request_options o = opt ? *opt : (struct ringkv_request_options){0};
    if (check_options(c, &o) != RKV_OK)
        return RKV_ERR_INVAL;
    uint64_t id = ++c->next_id;
    c->req.len = 0;
    rc = wire_encode_request(&c->req, &(struct wire_msg){
        .type = WIRE_PUT, .id = id, .epoch = ring_epoch(c->ring), .key = {key, (uint32_t)key_len},
        .value = {value, (uint32_t)value_len}, .context = {o.context, (uint32_t)o.context_len},
        .quorum = o.w, .timeout_ms = o.timeout_ms, .ttl_ms = o.ttl_ms,
        .flags = o.primary_only ? WIRE_FLAG_PRIMARY : 0});
    if (rc != RKV_OK)
        return fail(c, rc, "out of memory");
    return key_request(c, key, key_len, id, WIRE_PUT, &o, res);
}

int ringkv_del(struct ringkv_client *c, const void *key, size_t key_len,
               const struct ringkv_request_options *opt, struct ringkv_result *res)
{
    result_reset(res);
    int rc = check_key(c, key_len);
    if (rc != RKV_OK)
        return rc;
    struct ringkv_request_options o = opt ? *opt : (struct ringkv_request_options){0};
    if (check_options(c, &o) != RKV_OK)
        return RKV_ERR_INVAL;
    struct ringkv_result read = {0};
    if (o.context == NULL) {
        /* delete what exists now: read it for its context */
        struct ringkv_request_options ro = {.timeout_ms = o.timeout_ms,
                                            .coordinator = o.coordinator};
        rc = ringkv_get(c, key, key_len, &ro, &read);
        if (rc != RKV_OK) { /* not found (or deleted already): nothing to delete */
            ringkv_result_free(&read);
            return rc;
        }
        o.context = read.context;
        o.context_len = read.context_len;
    }
    uint64_t id = ++c->next_id;
    c->req.len = 0;
    rc = wire_encode_request(&c->req, &(struct wire_msg){
        .type = WIRE_DEL, .id = id, .epoch = ring_epoch(c->ring), .key = {key, (uint32_t)key_len},
        .context = {o.context, (uint32_t)o.context_len}, .quorum = o.w,
        .timeout_ms = o.timeout_ms, .flags = o.primary_only ? WIRE_FLAG_PRIMARY : 0});
    ringkv_result_free(&read); /* o.context pointed into it: encoded by now */
    if (rc != RKV_OK)
        return fail(c, rc, "out of memory");
    return key_request(c, key, key_len, id, WIRE_DEL, &o, res);
}

/* ---- the ring and nodes ---- */

/* ---- pipelining ---- */

/*
 * A pipelined request goes to the first member of the key's preference
 * list that takes it (a member not marked down, whose socket is
 * connected), with an id whose low 16 bits are its slot in c->pend. Its
 * reply is matched by id in ringkv_process. It is not retried on another
 * member: a request that gets no reply by its deadline completes with
 * RINGKV_ETIMEOUT (the caller may retry; it may have been applied).
 */
#define PEND_SLOT_BITS 16

static int pend_alloc(struct ringkv_client *c, uint32_t *slot)
{
    if (c->n_free_pend) {
        *slot = c->free_pend[--c->n_free_pend];
        return RKV_OK;
    }
    if (c->cap_pend == RINGKV_PIPELINE_MAX)
        return RKV_ERR_BUSY;
    uint32_t cap = c->cap_pend ? 2 * c->cap_pend : 64;
    if (cap > RINGKV_PIPELINE_MAX)
        cap = RINGKV_PIPELINE_MAX;
    struct pending *p = rkv_realloc(c->pend, cap * sizeof *p);
    if (p == NULL)
        return RKV_ERR_NOMEM;
    c->pend = p;
    uint32_t *f = rkv_realloc(c->free_pend, cap * sizeof *f);
    if (f == NULL)
        return RKV_ERR_NOMEM;
    c->free_pend = f;
    for (uint32_t i = cap; i-- > c->cap_pend + 1;) {
        c->pend[i].id = 0;
        c->free_pend[c->n_free_pend++] = i;
    }
    *slot = c->cap_pend;
    c->pend[*slot].id = 0;
    c->cap_pend = cap;
    return RKV_OK;
}

static void pend_release(struct ringkv_client *c, uint32_t slot)
{
    c->pend[slot].id = 0;
    c->free_pend[c->n_free_pend++] = slot;
    c->n_pend--;
}

/* Sends c->req (encoded with id for slot) to the key's preference list. */
static int pipeline_send(struct ringkv_client *c, const void *key, size_t key_len, uint32_t slot,
                         uint64_t id, uint32_t type, const struct ringkv_request_options *o,
                         ringkv_done_fn *done, void *arg)
{
    uint32_t order[RKV_NODES_MAX], n;
    int rc = route(c, key, key_len, o, order, &n);
    if (rc != RKV_OK)
        return rc;
    uint32_t timeout_ms =
        (o->timeout_ms ? o->timeout_ms : c->server_timeout_ms) + ATTEMPT_MARGIN_MS;
    if (c->opt.timeout_ms && !o->timeout_ms)
        timeout_ms = c->opt.timeout_ms;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < n; k++) {
            struct cnode *nd = &c->nodes[order[k]];
            uint64_t now = rkv_clock_mono_ms();
            if ((nd->down_until_ms > now) != (pass == 1) || node_socket(c, nd) == NULL)
                continue;
            if (send_request(c, nd->sock, !nd->connected_once, now + CONNECT_WAIT_MS) != RKV_OK) {
                nd->down_until_ms = now + DOWN_FOR_MS;
                continue;
            }
            nd->connected_once = true;
            nd->down_until_ms = 0;
            uint64_t deadline = rkv_clock_mono_ms() + timeout_ms;
            c->pend[slot] = (struct pending){.id = id,
                                             .type = type,
                                             .member = order[k],
                                             .deadline = deadline,
                                             .done = done,
                                             .arg = arg};
            c->n_pend++;
            if (c->n_pend == 1 || deadline < c->pend_deadline)
                c->pend_deadline = deadline;
            c->errmsg[0] = '\0';
            return RKV_OK;
        }
    }
    return fail(c, RKV_ERR_UNAVAILABLE, "no node of the key's preference list is reachable");
}

/* The common part of the three calls: checks, a slot, the encoding. */
static int pipeline(struct ringkv_client *c, uint32_t type, const void *key, size_t key_len,
                    const void *value, size_t value_len, const struct ringkv_request_options *opt,
                    ringkv_done_fn *done, void *arg)
{
    if (c == NULL || c->ring == NULL || done == NULL)
        return RKV_ERR_INVAL;
    if (key_len > RKV_KEY_BYTES_MAX)
        return fail(c, RKV_ERR_TOOBIG, "key of %zu bytes is over %u", key_len, RKV_KEY_BYTES_MAX);
    if (value_len > RKV_VALUE_BYTES_MAX)
        return fail(c, RKV_ERR_TOOBIG, "value of %zu bytes is over %u", value_len,
                    RKV_VALUE_BYTES_MAX);
    struct ringkv_request_options o = opt ? *opt : (struct ringkv_request_options){0};
    if (check_options(c, &o) != RKV_OK)
        return RKV_ERR_INVAL;
    if (type == WIRE_DEL && o.context == NULL)
        return fail(c, RKV_ERR_INVAL, "a pipelined delete needs the context of a read");
    uint32_t slot;
    int rc = pend_alloc(c, &slot);
    if (rc == RKV_ERR_BUSY)
        return fail(c, rc, "%u pipelined requests in flight already (RINGKV_PIPELINE_MAX)",
                    RINGKV_PIPELINE_MAX);
    if (rc != RKV_OK)
        return fail(c, rc, "out of memory");
    uint64_t id = (++c->next_id << PEND_SLOT_BITS) | slot;
    struct wire_msg m = {.type = type,
                         .id = id,
                         .epoch = ring_epoch(c->ring),
                         .key = {key, (uint32_t)key_len},
                         .value = {value, (uint32_t)value_len},
                         .context = {o.context, (uint32_t)o.context_len},
                         .quorum = type == WIRE_GET ? o.r : o.w,
                         .timeout_ms = o.timeout_ms,
                         .ttl_ms = o.ttl_ms,
                         .flags = type != WIRE_GET && o.primary_only ? WIRE_FLAG_PRIMARY : 0};
    c->req.len = 0;
    rc = wire_encode_request(&c->req, &m);
    if (rc == RKV_OK)
        rc = pipeline_send(c, key, key_len, slot, id, type, &o, done, arg);
    else
        fail(c, rc, "out of memory");
    if (rc != RKV_OK) {
        c->pend[slot].id = 0;
        c->free_pend[c->n_free_pend++] = slot;
    }
    return rc;
}

int ringkv_get_async(struct ringkv_client *c, const void *key, size_t key_len,
                     const struct ringkv_request_options *opt, ringkv_done_fn *done, void *arg)
{
    return pipeline(c, WIRE_GET, key, key_len, NULL, 0, opt, done, arg);
}

int ringkv_put_async(struct ringkv_client *c, const void *key, size_t key_len, const void *value,
                     size_t value_len, const struct ringkv_request_options *opt,
                     ringkv_done_fn *done, void *arg)
{
    return pipeline(c, WIRE_PUT, key, key_len, value, value_len, opt, done, arg);
}

int ringkv_del_async(struct ringkv_client *c, const void *key, size_t key_len,
                     const struct ringkv_request_options *opt, ringkv_done_fn *done, void *arg)
{
    return pipeline(c, WIRE_DEL, key, key_len, NULL, 0, opt, done, arg);
}

/* Completes slot's request with the reply m (NULL: timed out). */
static void complete(struct ringkv_client *c, uint32_t slot, const struct wire_msg *m)
{
    struct pending p = c->pend[slot];
    pend_release(c, slot);
    struct ringkv_result res = {0};
    int rc;
    if (m == NULL) {
        rc = RKV_ERR_TIMEOUT;
    } else {
        if (m->epoch != ring_epoch(c->ring)) {
            c->refresh = true;
            c->refresh_from = p.member;
        }
        rc = fill_result(c, m, p.member, p.type, &res);
        if (rc == RKV_OK)
            rc = (int)m->status;
    }
    res.status = rc;
    c->in_callback = true;
    p.done(p.arg, &res);
    c->in_callback = false;
}

/* Takes the replies waiting on one socket (at most a bounded number). */
static int drain_socket(struct ringkv_client *c, void *sock)
{
    int done = 0;
    for (int i = 0; i < RINGKV_PIPELINE_MAX; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        bool more = zmq_msg_more(&msg);
        int set =
            more ? RKV_ERR_PROTO : rkv_buf_set(&c->rep, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        while (more) { /* nodes send one part; drop anything else */
            zmq_msg_init(&msg);
            zmq_msg_recv(&msg, sock, 0);
            more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
        struct wire_msg m;
        if (set != RKV_OK || wire_decode(c->rep.data, c->rep.len, &m) != RKV_OK ||
            m.type != WIRE_REPLY)
            continue;
        uint32_t slot = (uint32_t)(m.id & ((1u << PEND_SLOT_BITS) - 1));
        if (slot >= c->cap_pend || c->pend[slot].id != m.id || m.id == 0)
            continue; /* a reply nobody waits for (timed out already) */
        complete(c, slot, &m);
        done++;
    }
    return done;
}

int ringkv_process(struct ringkv_client *c)
{
    if (c == NULL || c->in_callback)
        return 0;
    int done = 0;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (c->nodes[i].sock == NULL)
            continue;
        /* reading ZMQ_EVENTS resets the edge ringkv_fd's descriptor saw */
        int events = 0;
        size_t len = sizeof events;
        zmq_getsockopt(c->nodes[i].sock, ZMQ_EVENTS, &events, &len);
        if (events & ZMQ_POLLIN)
            done += drain_socket(c, c->nodes[i].sock);
    }
    uint64_t now = rkv_clock_mono_ms();
    if (c->n_pend > 0 && now >= c->pend_deadline) {
        uint64_t next = UINT64_MAX;
        for (uint32_t s = 0; s < c->cap_pend; s++) {
            if (c->pend[s].id == 0)
                continue;
            if (c->pend[s].deadline <= now) {
                complete(c, s, NULL);
                done++;
            } else if (c->pend[s].deadline < next) {
                next = c->pend[s].deadline;
            }
        }
        c->pend_deadline = next;
    }
    /* a new ring replaces the sockets: only with nothing in flight */
    if (c->refresh && c->n_pend == 0)
        refresh_ring(c);
    return done;
}

int ringkv_pending(const struct ringkv_client *c)
{
    return c ? (int)c->n_pend : 0;
}

int ringkv_next_timeout_ms(const struct ringkv_client *c)
{
    if (c == NULL || c->n_pend == 0)
        return -1;
    uint64_t now = rkv_clock_mono_ms();
    return c->pend_deadline <= now ? 0 : (int)(c->pend_deadline - now);
}

int ringkv_fd(struct ringkv_client *c)
{
    if (c == NULL)
        return -1;
    if (c->epfd >= 0)
        return c->epfd;
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        fail(c, RKV_ERR_IO, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        int fd;
        size_t len = sizeof fd;
        if (c->nodes[i].sock && zmq_getsockopt(c->nodes[i].sock, ZMQ_FD, &fd, &len) == 0) {
            struct epoll_event ev = {.events = EPOLLIN};
            epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
        }
    }
    return c->epfd;
}

int ringkv_wait(struct ringkv_client *c, int timeout_ms)
{
    if (c == NULL || c->in_callback)
        return 0;
    uint64_t until = timeout_ms < 0 ? UINT64_MAX : rkv_clock_mono_ms() + (uint64_t)timeout_ms;
    zmq_pollitem_t items[RKV_NODES_MAX];
    for (;;) {
        int done = ringkv_process(c);
        if (done > 0 || c->n_pend == 0)
            return done;
        uint64_t now = rkv_clock_mono_ms();
        if (now >= until)
            return 0;
        int n = 0;
        for (size_t i = 0; i < c->n_nodes && n < (int)RKV_NODES_MAX; i++)
            if (c->nodes[i].sock)
                items[n++] = (zmq_pollitem_t){.socket = c->nodes[i].sock, .events = ZMQ_POLLIN};
        uint64_t wake = c->pend_deadline < until ? c->pend_deadline : until;
        long t = wake <= now ? 0 : (long)(wake - now);
        if (zmq_poll(items, n, t) < 0 && zmq_errno() != EINTR) {
            fail(c, RKV_ERR_IO, "zmq_poll: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
    }
}

int ringkv_ring(struct ringkv_client *c, struct ringkv_ring_info *info)
{
    if (c == NULL || c->ring == NULL)
        return RKV_ERR_INVAL;
    for (size_t i = 0; i < c->n_nodes; i++)
        c->infos[i] = (struct ringkv_node_info){
            .id = c->nodes[i].id,
            .host = c->nodes[i].host,
            .client_port = c->nodes[i].client_port,
            .cluster_port = c->nodes[i].cluster_port,
            .vnodes = c->nodes[i].vnodes,
            .partitions_owned = i < c->n_ring ? ring_owned_count(c->ring, (uint32_t)i) : 0,
            .status = c->nodes[i].status,
        };
    *info = (struct ringkv_ring_info){
        .name = c->name,
        .partitions = c->partitions,
        .replicas = c->replicas,
        .read_quorum = c->read_quorum,
        .write_quorum = c->write_quorum,
        .epoch = ring_epoch(c->ring),
        .n_nodes = c->n_ring,
        .nodes = c->infos,
        .n_others = c->n_nodes - c->n_ring,
        .others = c->infos + c->n_ring,
    };
    return RKV_OK;
}

size_t ringkv_preflist(struct ringkv_client *c, uint32_t partition, const char **ids, size_t max)
{
    if (c == NULL || c->ring == NULL || partition >= c->partitions)
        return 0;
    const uint32_t *pl = ring_preflist(c->ring, partition);
    size_t n = ring_replicas(c->ring);
    for (size_t i = 0; i < n && i < max; i++)
        ids[i] = c->nodes[pl[i]].id;
    return n < max ? n : max;
}

uint32_t ringkv_partition(struct ringkv_client *c, const void *key, size_t key_len)
{
    if (c == NULL || c->ring == NULL) /* a handle whose connect failed */
        return 0;
    return ring_partition(c->ring, ring_hash_key(key, key_len));
}

/* The index in c->nodes of member id, in the ring or outside it; -1 if
 * the client knows no such member. */
static int node_index(const struct ringkv_client *c, const char *id)
{
    int idx = ring_member_index(c->ring, id);
    for (size_t i = c->n_ring; idx < 0 && i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].id, id) == 0)
            idx = (int)i;
    return idx;
}

/* An admin request to one node (or any, id NULL): type, or with member
 * set a MEMBER request (op, member). */
static int admin_to(struct ringkv_client *c, const char *id, uint32_t type, uint32_t op,
                    const char *member, struct wire_msg *m, uint32_t *from)
{
    if (c == NULL || c->ring == NULL)
        return RKV_ERR_INVAL;
    uint32_t order[RKV_NODES_MAX], n = 0;
    if (id) {
        int idx = node_index(c, id);
        if (idx < 0 && c->n_pend == 0) {
            /* a member that joined since the ring was fetched (a new ring
             * replaces the sockets: only with nothing in flight) */
            refresh_ring(c);
            idx = node_index(c, id);
        }
        if (idx < 0)
            return fail(c, RKV_ERR_NOTFOUND, "no node \"%s\" in the ring", id);
        order[n++] = (uint32_t)idx;
    } else {
        for (uint32_t i = 0; i < c->n_nodes; i++)
            order[n++] = i;
    }
    uint64_t rid = ++c->next_id;
    c->req.len = 0;
    int rc = member ? wire_encode_member(&c->req, rid, ring_epoch(c->ring), op, member)
                    : wire_encode_simple(&c->req, type, rid, ring_epoch(c->ring));
    if (rc != RKV_OK)
        return fail(c, RKV_ERR_NOMEM, "out of memory");
    rc = exchange(c, order, n, rid, 0, RESEND_AFTER_TIMEOUT, m, from);
    if (rc == RKV_OK && m->status != RKV_OK)
        rc = fail_reply(c, (int)m->status, "", m);
    return rc;
}

static int admin(struct ringkv_client *c, const char *id, uint32_t type, struct wire_msg *m,
                 uint32_t *from)
{
    return admin_to(c, id, type, 0, NULL, m, from);
}

/* A membership change; the node's account of it into msg. */
static int member_change(struct ringkv_client *c, const char *to, uint32_t op, const char *id,
                         char *msg, size_t size)
{
    if (id == NULL || id[0] == '\0' || strlen(id) > RKV_NODE_ID_BYTES_MAX)
        return fail(c, RKV_ERR_INVAL, "a node id is 1..%u bytes", RKV_NODE_ID_BYTES_MAX);
    struct wire_msg m;
    uint32_t from;
    int rc = admin_to(c, to, WIRE_MEMBER, op, id, &m, &from);
    if (rc == RKV_OK && msg && size) {
        struct mp_reader r;
        mp_reader_init(&r, m.payload.p, m.payload.len);
        if (!read_str(&r, msg, size))
            msg[0] = '\0';
    }
    return rc;
}

int ringkv_leave(struct ringkv_client *c, const char *id, unsigned flags, char *msg,
                 size_t size)
{
    if (flags & ~RINGKV_LEAVE_FORCE)
        return fail(c, RKV_ERR_INVAL, "unknown leave flags %#x", flags);
    uint32_t op = flags & RINGKV_LEAVE_FORCE ? WIRE_MEMBER_LEAVE_FORCE : WIRE_MEMBER_LEAVE;
    return member_change(c, id, op, id, msg, size);
}

int ringkv_remove(struct ringkv_client *c, const char *id, char *msg, size_t size)
{
    return member_change(c, NULL, WIRE_MEMBER_REMOVE, id, msg, size);
}

int ringkv_ping(struct ringkv_client *c, const char *id, uint64_t *rtt_us)
{
    uint64_t t0 = rkv_clock_mono_us();
    struct wire_msg m;
    uint32_t from;
    int rc = admin(c, id, WIRE_PING, &m, &from);
    if (rc == RKV_OK && rtt_us)
        *rtt_us = rkv_clock_mono_us() - t0;
    return rc;
}

int ringkv_stats(struct ringkv_client *c, const char *id, ringkv_stat_fn *fn, void *ctx)
{
    struct wire_msg m;
    uint32_t from;
    int rc = admin(c, id, WIRE_STATS, &m, &from);
    if (rc != RKV_OK)
        return rc;
    struct mp_reader r;
    mp_reader_init(&r, m.payload.p, m.payload.len);
    uint32_t n;
    if (!mp_read_map(&r, &n))
        return fail(c, RKV_ERR_PROTO, "malformed stats");
    for (uint32_t i = 0; i < n; i++) {
        char name[64];
        uint64_t v;
        if (!read_str(&r, name, sizeof name) || !mp_read_uint(&r, &v))
            return fail(c, RKV_ERR_PROTO, "malformed stats");
        fn(ctx, name, v);
    }
    return RKV_OK;
}
