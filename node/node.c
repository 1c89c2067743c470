/*
 * node.c: opening and closing a node: storage, the vector-clock actor, the
 * ring, the sockets; and the reply routes of clients.
 *
 * The actor. A node's vector-clock identity is a random 64-bit id kept in
 * DATA_DIR/ACTOR. A node keeps it across a clean restart, continuing its
 * counters. It takes a fresh one whenever a dot it minted might be known to
 * other replicas but missing from its own store, since minting that dot
 * again for another write would make two different writes "the same" and
 * a merge would drop one (Riak's KV679):
 *   - at start, when the store is empty (a new node, or lost data);
 *   - at start, when the last run did not shut down cleanly: a write is
 *     sent to the replicas before the coordinator's own group commit, so a
 *     crash can lose a dot locally that the replicas keep;
 *   - while running, when a write or group commit of the store fails after
 *     the turn minted dots (they were rolled back here, maybe kept there).
 * The file says "clean" only after a clean shutdown synced the store.
 */
#include "node/node.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zmq.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"

#define CLOSE_LINGER_MS 1000      /* at shutdown, time to flush the last replies */

/* Messages a socket queues per connection, each way (ZeroMQ counts
 * messages, not bytes): RKV_SOCKET_QUEUE_BYTES of frames at their largest;
 * on the client port at least two per request a client may have in flight
 * and one per request a turn takes from a connection (each gets a reply,
 * if only BUSY), so that replies are not dropped while the client reads.
 * Between peers at least queue_depth_max: a node never has more requests
 * in flight, each is at most one message to a peer (and one reply), so
 * the limit that bounds memory there is queue_depth_max; a lower one only
 * fails requests when a peer falls a few turns behind under load. */
int node_queue_hwm(const struct config *cfg, bool clients)
{
    uint64_t n = RKV_SOCKET_QUEUE_BYTES / cfg->message_bytes_max;
    if (!clients && n < cfg->queue_depth_max)
        n = cfg->queue_depth_max;
    if (clients && n < 2ull * cfg->inflight_per_client)
        n = 2ull * cfg->inflight_per_client;
    if (clients && n < NODE_BATCH_PER_SOCKET)
        n = NODE_BATCH_PER_SOCKET;
    return n < RKV_SOCKET_QUEUE_MIN ? (int)RKV_SOCKET_QUEUE_MIN
         : n > RKV_SOCKET_QUEUE_MAX ? (int)RKV_SOCKET_QUEUE_MAX : (int)n;
}
#define ACTOR_FILE "ACTOR"

static int zerr(struct rkv_error *err, const char *what)
{
    return rkv_error_set(err, RKV_ERR_IO, "node: %s: %s", what, zmq_strerror(zmq_errno()));
}

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof v);
}

static void *make_router(struct node *n, uint16_t port, bool cluster, struct rkv_error *err)
{
    void *s = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (s == NULL)
        return zerr(err, "zmq_socket"), NULL;
    int64_t maxmsg = n->cfg->message_bytes_max;
    char ep[CONFIG_HOST_BYTES + 32];
    snprintf(ep, sizeof ep, "tcp://%s:%u", n->me->host, port);
    int hwm = node_queue_hwm(n->cfg, !cluster);
    /* No ZMQ_ROUTER_HANDOVER on the cluster port: a second connection with
     * a member's routing id is refused, never handed the first one's
     * route. Heartbeats close a dead peer's link so that it can reconnect. */
    if (set_int(s, ZMQ_ROUTER_MANDATORY, 1) || set_int(s, ZMQ_LINGER, 0) ||
        set_int(s, ZMQ_SNDHWM, hwm) || set_int(s, ZMQ_RCVHWM, hwm) ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        (cluster && (set_int(s, ZMQ_HEARTBEAT_IVL, NODE_HEARTBEAT_IVL_MS) ||
                     set_int(s, ZMQ_HEARTBEAT_TIMEOUT, NODE_HEARTBEAT_TIMEOUT_MS))) ||
        security_server(n, s, cluster ? "cluster" : "client") || zmq_bind(s, ep) != 0) {
        rkv_error_set(err, RKV_ERR_IO, "node: cannot listen on %s: %s", ep,
                      zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int node_save_file(const struct node *n, const char *name, const void *data, size_t len)
{
    char path[CONFIG_PATH_BYTES + 32], tmp[CONFIG_PATH_BYTES + 40];
    snprintf(path, sizeof path, "%s/%s", n->me->data_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    int dfd = open(n->me->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

bool node_file_exists(const struct node *n, const char *name)
{
    char path[CONFIG_PATH_BYTES + 32];
    snprintf(path, sizeof path, "%s/%s", n->me->data_dir, name);
    struct stat st;
    return stat(path, &st) == 0 || errno != ENOENT;
}

static int write_actor(const struct node *n, bool clean)
{
    char text[64];
    int len = snprintf(text, sizeof text, "%016llx\n%s", (unsigned long long)n->actor,
                       clean ? "clean\n" : "");
    return node_save_file(n, ACTOR_FILE, text, (size_t)len);
}

static int new_actor(struct node *n)
{
    do {
        if (getrandom(&n->actor, sizeof n->actor, 0) != sizeof n->actor)
            return -1;
    } while (n->actor == 0);
    return 0;
}

/* Reads DATA_DIR/ACTOR and keeps its actor only after a clean shutdown of
 * a store that is not empty (see the file comment); then marks the file as
 * in use (not clean) until node_close. */
static int load_actor(struct node *n, bool store_empty, struct rkv_error *err)
{
    char path[CONFIG_PATH_BYTES + 16];
    snprintf(path, sizeof path, "%s/%s", n->me->data_dir, ACTOR_FILE);
    char text[64] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool have = false, clean = false;
    if (fd >= 0) {
        ssize_t got = read(fd, text, sizeof text - 1);
        close(fd);
        char *end = NULL;
        n->actor = got > 0 ? strtoull(text, &end, 16) : 0;
        have = n->actor != 0 && end && end == text + 16 && *end == '\n';
        clean = have && strcmp(end + 1, "clean\n") == 0;
        if (!have)
            RKV_WARN("node", "%s is unreadable; taking a new actor", path);
    }
    const char *why = !have ? NULL
                    : store_empty ? "the store is empty: data was lost"
                    : !clean ? "the last run did not shut down cleanly"
                    : NULL;
    if (!have || why) {
        if (why)
            RKV_WARN("node", "%s: %s; taking a new vector-clock actor so that no version "
                     "it made is made again", n->me->id, why);
        if (new_actor(n) != 0)
            return rkv_error_set(err, RKV_ERR_IO, "node: getrandom: %s", strerror(errno));
    }
    if (write_actor(n, false) != 0)
        return rkv_error_set(err, RKV_ERR_IO, "node: cannot write %s: %s", path, strerror(errno));
    RKV_INFO("node", "%s: vector-clock actor %016llx", n->me->id, (unsigned long long)n->actor);
    return RKV_OK;
}

void node_rotate_actor(struct node *n, const char *why)
{
    uint64_t old = n->actor;
    if (new_actor(n) != 0) {
        /* no randomness: refuse to coordinate writes rather than risk a dot */
        RKV_ERROR("node", "getrandom failed (%s): writes will fail until restart",
                  strerror(errno));
        n->actor = 0;
        return;
    }
    RKV_WARN("node", "%s: %s: vector-clock actor %016llx replaced by %016llx", n->me->id, why,
             (unsigned long long)old, (unsigned long long)n->actor);
    /* If this fails the file keeps the old actor, not marked clean: the next
     * start takes a fresh one whatever happens here. */
    if (write_actor(n, false) != 0)
        RKV_ERROR("node", "cannot record the new actor: %s", strerror(errno));
}

/* mkdir -p: creates dir and any missing parents. */
static int make_dirs(const char *dir)
{
    char path[CONFIG_PATH_BYTES];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int open_store(struct node *n, struct rkv_error *err)
{
    if (make_dirs(n->me->data_dir) != 0)
        return rkv_error_set(err, RKV_ERR_IO, "node: cannot create %s: %s", n->me->data_dir,
                             strerror(errno));
    char dir[CONFIG_PATH_BYTES + 16];
    snprintf(dir, sizeof dir, "%s/store", n->me->data_dir);
    struct store_options o;
    store_options_default(&o);
    o.sync = (enum store_sync)n->cfg->sync;
    o.sync_interval_ms = n->cfg->sync_interval_ms;
    o.file_bytes_max = n->cfg->file_bytes_max;
    o.merge_dead_percent = n->cfg->merge_dead_percent;
    o.merge_dead_bytes_min = n->cfg->merge_dead_bytes_min;
    o.merge_files_max = n->cfg->merge_files_max;
    o.key_bytes_max = n->cfg->key_bytes_max;
    /* a stored value is a whole object; replicas merge up to twice the
     * object limit (the config keeps this within RKV_VALUE_BYTES_MAX) */
    o.value_bytes_max = 2 * n->cfg->object_bytes_max;
    /* After a crash the LOCK of the dead process is still there. The store
     * verifies with flock that no process holds it; we take it over and the
     * store logs the dead pid, so it is reported, never silent. */
    o.break_stale_lock = true;
    int rc = store_open(dir, &o, &n->store, err);
    if (rc != RKV_OK)
        return rc;
    return load_actor(n, store_open_report(n->store)->log_files == 0, err);
}

static int open_sockets(struct node *n, struct rkv_error *err)
{
    n->zctx = zmq_ctx_new();
    if (n->zctx == NULL)
        return zerr(err, "zmq_ctx_new");
    /* the ZAP handler first: no socket may accept a handshake before it */
    int rc = security_open(n, err);
    if (rc != RKV_OK)
        return rc;
    n->client_sock = make_router(n, n->me->client_port, false, err);
    if (n->client_sock == NULL)
        return err->code;
    n->cluster_sock = make_router(n, n->me->cluster_port, true, err);
    if (n->cluster_sock == NULL)
        return err->code;
    /* a slot for every member of the ring, this node first */
    if (node_peer_add(n, n->me->id, strlen(n->me->id)) != 0)
        return rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory");
    n->self = 0;
    struct node_peer *me = n->peer[0];
    snprintf(me->host, sizeof me->host, "%s", n->me->host);
    me->client_port = n->me->client_port;
    me->cluster_port = n->me->cluster_port;
    for (uint32_t i = 0; i < ring_member_count(n->ring); i++) {
        const char *id = ring_member_id(n->ring, i);
        int32_t slot = node_peer_add(n, id, strlen(id));
        if (slot < 0)
            return rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory");
        if ((uint32_t)slot == n->self)
            continue;
        const struct config_node *peer = config_node_find(n->cfg, id);
        rc = peer ? node_peer_connect(n, (uint32_t)slot, peer->host, peer->client_port,
                                      peer->cluster_port, err)
                  : RKV_OK;
        if (rc != RKV_OK)
            return rc;
    }
    return RKV_OK;
}

int node_open(struct node *n, struct config *cfg, const char *id, const char *join,
              volatile sig_atomic_t *stop, struct rkv_error *err)
{
    memset(n, 0, sizeof *n);
    n->cfg = cfg;
    n->stop = stop;
    n->started_ms = rkv_clock_mono_ms();
    n->me = config_node_find(cfg, id);
    if (n->me == NULL)
        return rkv_error_set(err, RKV_ERR_CONFIG, "node: %s has no [[node]] with id \"%s\"",
                             cfg->path, id);
    config_object_limits(cfg, &n->limits);
    object_init(&n->local);
    vclock_init(&n->overwrite_ctx);
    object_init(&n->incoming);
    int rc = membership_boot(n, join, err);
    if (rc == RKV_OK)
        rc = open_store(n, err);
    if (rc == RKV_OK)
        rc = hints_open(n, err);
    if (rc == RKV_OK)
        rc = handoff_open(n, err);
    if (rc == RKV_OK)
        rc = open_sockets(n, err);
    if (rc == RKV_OK)
        rc = resp_open(n, err);
    if (rc == RKV_OK)
        rc = membership_open(n, err);
    if (rc != RKV_OK)
        return rc;
    struct coord_options co = {
        .actor = n->actor,
        .self = n->self,
        .default_r = cfg->read_quorum,
        .default_w = cfg->write_quorum,
        .timeout_ms = cfg->request_timeout_ms,
        .fallback_after_ms = cfg->fallback_after_ms,
        .key_bytes_max = cfg->key_bytes_max,
        .inflight_max = cfg->queue_depth_max,
        .message_bytes_max = cfg->message_bytes_max,
        .limits = n->limits,
    };
    rc = coord_new(&co, n->ring, &n->coord);
    if (rc != RKV_OK)
        return rkv_error_set(err, rc, "node: cannot start the coordinator");
    node_set_ring(n, n->ring);
    if (membership_joining(n))
        RKV_INFO("node", "%s: serving clients on %s:%u, peers on %s:%u; joining: the ring "
                 "comes from %s by gossip (Q=%u N=%u R=%u W=%u)",
                 id, n->me->host, n->me->client_port, n->me->host, n->me->cluster_port,
                 join ? join : "the members it knew",
                 cfg->partitions, cfg->replicas, cfg->read_quorum, cfg->write_quorum);
    else
        RKV_INFO("node", "%s: serving clients on %s:%u, peers on %s:%u; ring of %u nodes, "
                 "Q=%u N=%u R=%u W=%u, epoch %016llx",
                 id, n->me->host, n->me->client_port, n->me->host, n->me->cluster_port,
                 ring_member_count(n->ring), cfg->partitions, ring_replicas(n->ring),
                 cfg->read_quorum, cfg->write_quorum, (unsigned long long)ring_epoch(n->ring));
    return RKV_OK;
}

/* Closes a socket, giving what it still queues a moment to go out. */
static void close_socket(void *s)
{
    int linger = CLOSE_LINGER_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(s);
}

void node_close(struct node *n)
{
    resp_close(n);
    membership_close(n);
    node_peers_close(n);
    if (n->client_sock)
        close_socket(n->client_sock);
    if (n->cluster_sock)
        close_socket(n->cluster_sock);
    security_close(n);
    if (n->zctx)
        zmq_ctx_term(n->zctx);
    hints_close(n);
    handoff_close(n);
    if (n->store) {
        int rc = store_close(n->store);
        if (rc != RKV_OK)
            RKV_ERROR("node", "closing the store: %s", rkv_strerror(rc));
        else if (n->actor && write_actor(n, true) != 0)
            RKV_WARN("node", "cannot mark the actor clean (%s): the next start takes a new one",
                     strerror(errno));
    }
    coord_free(n->coord);
    ring_free(n->ring);
    object_free(&n->local);
    vclock_free(&n->overwrite_ctx);
    object_free(&n->incoming);
    rkv_free(n->clients);
    rkv_free(n->free_clients);
    rkv_free(n->inflight_key);
    rkv_free(n->inflight_count);
    rkv_free(n->acks);
    rkv_buf_free(&n->buf);
    rkv_buf_free(&n->obj);
    rkv_buf_free(&n->tmp);
}

/* ---- reply routes ---- */

/*
 * In-flight requests per client connection: an open-addressing table from
 * the XXH3 hash of the routing id to a count (a hash collision would merge
 * two connections' counts, which only makes the limit stricter). It holds
 * at most one entry per request in flight, so it is sized by
 * queue_depth_max. Entries at zero are removed by backward shift.
 */
static uint32_t *inflight_slot(struct node *n, uint64_t key, bool *found)
{
    uint32_t mask = n->inflight_cap - 1;
    for (uint32_t i = (uint32_t)key & mask;; i = (i + 1) & mask) {
        if (n->inflight_count[i] == 0 || n->inflight_key[i] == key) {
            *found = n->inflight_count[i] != 0;
            return &n->inflight_count[i];
        }
    }
}

static int inflight_init(struct node *n)
{
    uint32_t cap = 16;
    while (cap < 2u * n->cfg->queue_depth_max)
        cap *= 2;
    n->inflight_key = rkv_calloc(cap, sizeof *n->inflight_key);
    n->inflight_count = rkv_calloc(cap, sizeof *n->inflight_count);
    n->inflight_cap = cap;
    return n->inflight_key && n->inflight_count ? RKV_OK : RKV_ERR_NOMEM;
}

/* Counts one more request of connection key; false if it has its limit. */
static bool inflight_take(struct node *n, uint64_t key)
{
    bool found;
    uint32_t *c = inflight_slot(n, key, &found);
    if (found && *c >= n->cfg->inflight_per_client)
        return false;
    n->inflight_key[c - n->inflight_count] = key;
    (*c)++;
    return true;
}

static void inflight_give(struct node *n, uint64_t key)
{
    bool found;
    uint32_t *c = inflight_slot(n, key, &found);
    if (!found || --*c > 0)
        return;
    uint32_t mask = n->inflight_cap - 1, i = (uint32_t)(c - n->inflight_count);
    for (uint32_t j = (i + 1) & mask; n->inflight_count[j]; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)n->inflight_key[j] & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        n->inflight_key[i] = n->inflight_key[j];
        n->inflight_count[i] = n->inflight_count[j];
        n->inflight_count[j] = 0;
        i = j;
    }
}

/* A free reply route, or NULL when queue_depth_max routes are in use. */
static struct node_client *route_alloc(struct node *n, uint32_t *slot_out)
{
    uint32_t slot;
    if (n->n_free_clients) {
        slot = n->free_clients[--n->n_free_clients];
    } else {
        if (n->n_clients >= n->cfg->queue_depth_max)
            return NULL;
        if (n->n_clients == n->cap_clients) {
            uint32_t cap = n->cap_clients ? n->cap_clients * 2 : 64;
            struct node_client *c = rkv_realloc(n->clients, cap * sizeof *c);
            if (c == NULL)
                return NULL;
            n->clients = c;
            uint32_t *f = rkv_realloc(n->free_clients, cap * sizeof *f);
            if (f == NULL)
                return NULL;
            n->free_clients = f;
            n->cap_clients = cap;
        }
        slot = n->n_clients++;
        n->clients[slot].gen = 0;
    }
    struct node_client *c = &n->clients[slot];
    c->used = true;
    c->gen++;
    *slot_out = slot;
    return c;
}

uint64_t node_client_token(struct node *n, const void *rid, size_t rid_len, int32_t forwarder,
                           uint64_t forward_id)
{
    if (rid_len > NODE_ROUTING_ID_BYTES)
        return UINT64_MAX;
    if (n->inflight_cap == 0 && inflight_init(n) != RKV_OK)
        return UINT64_MAX;
    /* A client connection has its inflight_per_client. Requests forwarded
     * by a member stand for many clients of that member: only
     * queue_depth_max bounds them. */
    uint64_t key = forwarder < 0 ? XXH3_64bits(rid, rid_len) : 0;
    bool full = n->n_free_clients == 0 && n->n_clients >= n->cfg->queue_depth_max;
    if (!full && forwarder < 0 && !inflight_take(n, key))
        return NODE_TOKEN_CLIENT_BUSY;
    uint32_t slot;
    struct node_client *c = full ? NULL : route_alloc(n, &slot);
    if (c == NULL) {
        if (!full && forwarder < 0)
            inflight_give(n, key);
        return UINT64_MAX;
    }
    c->forwarder = forwarder;
    c->forward_id = forward_id;
    c->rid_hash = key;
    c->rid_len = 0;
    if (forwarder < 0) { /* a peer's routing id is its member id */
        c->rid_len = (uint8_t)rid_len;
        memcpy(c->rid, rid, rid_len);
    }
    return (uint64_t)c->gen << 32 | slot;
}

uint64_t node_resp_token(struct node *n, const struct node_resp_route *route)
{
    uint32_t slot;
    struct node_client *c = route_alloc(n, &slot);
    if (c == NULL)
        return UINT64_MAX;
    c->forwarder = NODE_ROUTE_RESP;
    c->resp = *route;
    return (uint64_t)c->gen << 32 | slot;
}

int node_send_routed(struct node *n, void *sock, const void *rid, size_t rid_len,
                       const void *msg, size_t len)
{
    if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, msg, len, ZMQ_DONTWAIT) < 0) {
        n->stats.send_failures++;
        return RKV_ERR_UNAVAILABLE;
    }
    return RKV_OK;
}

int node_send_client(struct node *n, uint64_t token, const void *msg, size_t len)
{
    uint32_t slot = (uint32_t)token;
    if (slot >= n->n_clients || !n->clients[slot].used ||
        n->clients[slot].gen != (uint32_t)(token >> 32))
        return RKV_ERR_NOTFOUND;
    struct node_client *c = &n->clients[slot];
    int rc;
    if (c->forwarder == NODE_ROUTE_RESP) {
        /* free the route first: the endpoint may take new ones */
        struct node_resp_route route = c->resp;
        c->used = false;
        n->free_clients[n->n_free_clients++] = slot;
        resp_on_reply(n, &route, msg, len);
        return RKV_OK;
    }
    if (c->forwarder >= 0) {
        n->buf.len = 0;
        rc = wire_encode_wrapped(&n->buf, WIRE_FORWARD_REPLY, c->forward_id, ring_epoch(n->ring),
                                 msg, len);
        if (rc == RKV_OK)
            rc = node_send_cluster(n, (uint32_t)c->forwarder, n->buf.data, n->buf.len);
    } else {
        rc = node_send_routed(n, n->client_sock, c->rid, c->rid_len, msg, len);
    }
    c->used = false;
    n->free_clients[n->n_free_clients++] = slot;
    if (c->forwarder < 0)
        inflight_give(n, c->rid_hash);
    return rc;
}
