/*
 * membership.c: the node's side of gossip/gossip.h: who the members are,
 * which of them form the ring, and which are alive.
 *
 * The ring is the members gossip says are UP (a function of the member
 * table, so every node that holds the same table computes the same ring).
 * A member that is JOINING (started with --join, until it has heard the
 * others), LEAVING (ringkv leave) or REMOVED (ringkv remove) is not in it.
 * Each MEMBERSHIP_DOWN_REFRESH_MS the node compares the ring of its table
 * with the ring it serves; when they differ it takes the new one, starts
 * the ownership handoff it implies (handoff.c) and saves the table.
 *
 * The table is kept in <data_dir>/MEMBERS (written whole: tmp, fsync,
 * rename, fsync the folder), so that a restart knows the ring without
 * cluster.toml, whose [[node]] list only says how the ring began: a node
 * without MEMBERS starts from cluster.toml's members (as states any
 * gossiped state wins over) or, with --join, from the seed alone.
 *
 * One change at a time: every member gossips the epoch of the ring it
 * serves and the partitions it has still to hand over, and a join (the
 * joining node stays JOINING) or a leave (refused, unless forced) begins
 * only once, as far as gossip says, no other change is under way
 * (gossip_change_pending) and none has been for MEMBERSHIP_QUIET_MS.
 *
 * A join and a leave survive a crash. A node that MEMBERS says is joining
 * goes on joining (waiting its turn) when it starts again. A leave is
 * begun by writing LEAVING, which at start means "go on leaving" (its
 * handoff jobs resume from HANDOFF) whatever MEMBERS says, and is done
 * when LEFT is written, after which the node refuses to start with that
 * data; a node that MEMBERS says is leaving but that has no LEAVING file
 * (one that left before these files existed) counts as left.
 *
 * Heartbeats spread by gossip feed a phi-accrual detector per peer, whose
 * verdict shows in the node's statistics (peers_suspect, suspect.<id>),
 * steers the coordinator's sloppy quorum (coord_set_down) and decides when
 * hints are handed over (hints.c). Suspicion never changes the ring.
 *
 * Gossip messages travel as WIRE_GOSSIP frames in the peer batches, like
 * replica requests, and come in on the cluster port, where the transport
 * has authenticated the sender (with CurveZMQ, its key; the routing id is
 * its member id): a message that names another sender is refused. Gossip
 * runs on the monotonic clock, so a wall-clock jump cannot make every peer
 * look silent.
 */
#include "node/node.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/random.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "gossip/gossip.h"

#define MEMBERSHIP_DOWN_REFRESH_MS 100
/* A peer this node has not heard from since it started counts as down for
 * sloppy quorum only after this long: the detector needs a few heartbeats
 * before it knows anything. */
#define MEMBERSHIP_STARTUP_GRACE_MS 10000
/* A join waits until no other ring change has been seen under way for
 * this long: a few gossip rounds, for news of one to reach this node. */
#define MEMBERSHIP_QUIET_MS (3 * NODE_GOSSIP_INTERVAL_MS)
/* A join that waits says why at most this often. */
#define MEMBERSHIP_WAIT_LOG_MS 10000
#define MEMBERSHIP_WHY_BYTES 160 /* what change is under way, for a message */
#define MEMBERS_FILE "MEMBERS"
#define MEMBERS_MAGIC "ringkv-members 1"
#define LEAVING_FILE "LEAVING" /* written when a leave begins */
#define LEFT_FILE "LEFT"       /* written when a leave is done */
/* A join that has waited this long says why as a warning. */
#define MEMBERSHIP_WAIT_WARN_MS 60000

static const char *status_name(enum gossip_status s)
{
    return s == GOSSIP_JOINING ? "joining"
         : s == GOSSIP_UP      ? "up"
         : s == GOSSIP_LEAVING ? "leaving"
                               : "removed";
}

static int status_parse(const char *s)
{
    for (int i = GOSSIP_JOINING; i <= GOSSIP_REMOVED; i++)
        if (strcmp(s, status_name((enum gossip_status)i)) == 0)
            return i;
    return -1;
}

/* ---- the saved member table ---- */

/* Writes the gossip table to MEMBERS (node_save_file). */
static void members_save(struct node *n)
{
    static const char head[] =
        MEMBERS_MAGIC "\n# id host client_port cluster_port vnodes incarnation version status\n";
    struct rkv_buf text = {0}, *b = &text; /* rare (a ring change): its own buffer */
    char line[RKV_NODE_ID_BYTES_MAX + GOSSIP_HOST_BYTES_MAX + 128];
    int rc = rkv_buf_append(b, head, sizeof head - 1);
    for (size_t i = 0; rc == RKV_OK && i < gossip_member_count(n->gossip); i++) {
        const struct gossip_node *m = gossip_member(n->gossip, i);
        int len = snprintf(line, sizeof line, "%s %s %u %u %u %llu %llu %s\n", m->id, m->host,
                           m->client_port, m->cluster_port, m->vnodes,
                           (unsigned long long)m->incarnation, (unsigned long long)m->version,
                           status_name(m->status));
        rc = rkv_buf_append(b, line, (size_t)len);
    }
    if (rc != RKV_OK || node_save_file(n, MEMBERS_FILE, b->data, b->len) != 0)
        RKV_ERROR("node", "cannot write %s/%s: %s", n->me->data_dir, MEMBERS_FILE,
                  rc != RKV_OK ? rkv_strerror(rc) : strerror(errno));
    rkv_buf_free(&text);
}

/* Reads MEMBERS into states (at most RKV_NODES_MAX); RKV_ERR_NOTFOUND if
 * there is none, RKV_ERR_CORRUPT (err says where) if it is not one. */
static int members_load(struct node *n, struct gossip_node *states, size_t *count,
                        struct rkv_error *err)
{
    char path[CONFIG_PATH_BYTES + 32];
    snprintf(path, sizeof path, "%s/%s", n->me->data_dir, MEMBERS_FILE);
    FILE *f = fopen(path, "r");
    *count = 0;
    if (f == NULL)
        return errno == ENOENT ? RKV_ERR_NOTFOUND
                               : rkv_error_set(err, RKV_ERR_IO, "node: %s: %s", path,
                                               strerror(errno));
    char line[512];
    int rc = RKV_OK;
    for (unsigned no = 1; rc == RKV_OK && fgets(line, sizeof line, f); no++) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            rc = rkv_error_set(err, RKV_ERR_CORRUPT, "node: %s:%u: line too long or cut", path,
                               no);
            break;
        }
        line[len - 1] = '\0';
        if (no == 1) {
            if (strcmp(line, MEMBERS_MAGIC) != 0)
                rc = rkv_error_set(err, RKV_ERR_CORRUPT, "node: %s: not a member table", path);
            continue;
        }
        if (line[0] == '#')
            continue;
        struct gossip_node st = {0};
        char id[80], host[GOSSIP_HOST_BYTES_MAX + 2], status[16], extra;
        unsigned cport, clport, vnodes;
        unsigned long long inc, ver;
        if (*count == RKV_NODES_MAX ||
            sscanf(line, "%79s %256s %u %u %u %llu %llu %15s %c", id, host, &cport, &clport,
                   &vnodes, &inc, &ver, status, &extra) != 8 ||
            strlen(id) > RKV_NODE_ID_BYTES_MAX || strlen(host) > GOSSIP_HOST_BYTES_MAX ||
            cport == 0 || cport > 65535 || clport == 0 || clport > 65535 ||
            status_parse(status) < 0) {
            rc = rkv_error_set(err, RKV_ERR_CORRUPT, "node: %s:%u: not a member line", path, no);
            break;
        }
        memcpy(st.id, id, strlen(id) + 1);       /* lengths checked above */
        memcpy(st.host, host, strlen(host) + 1);
        st.client_port = (uint16_t)cport;
        st.cluster_port = (uint16_t)clport;
        st.vnodes = vnodes;
        st.incarnation = inc;
        st.version = ver;
        st.status = (enum gossip_status)status_parse(status);
        states[(*count)++] = st;
    }
    fclose(f);
    return rc;
}

/* A member of cluster.toml as a state that any gossiped one wins over. */
static void state_of_config(const struct node *n, const struct config_node *cn,
                            struct gossip_node *st)
{
    memset(st, 0, sizeof *st);
    snprintf(st->id, sizeof st->id, "%s", cn->id);
    snprintf(st->host, sizeof st->host, "%s", cn->host);
    st->client_port = cn->client_port;
    st->cluster_port = cn->cluster_port;
    st->vnodes = n->cfg->vnodes;
    st->incarnation = 1;
    st->status = GOSSIP_UP;
}

/* The ring of the members that are up in states; NULL if none is. */
static struct ring *ring_of(const struct node *n, const struct gossip_node *const *states,
                            size_t count, struct rkv_error *err)
{
    struct ring_member *m = rkv_calloc(count ? count : 1, sizeof *m);
    if (m == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory"), NULL;
    size_t up = 0;
    for (size_t i = 0; i < count; i++)
        if (states[i]->status == GOSSIP_UP)
            m[up++] = (struct ring_member){.id = states[i]->id, .vnodes = states[i]->vnodes};
    struct ring *r = NULL;
    if (up == 0)
        rkv_error_set(err, RKV_ERR_INVAL, "node: no member is up");
    else
        ring_new(m, up, n->cfg->partitions, n->cfg->replicas, &r, err);
    rkv_free(m);
    return r;
}

int membership_boot(struct node *n, const char *join, struct rkv_error *err)
{
    n->boot = rkv_calloc(RKV_NODES_MAX, sizeof *n->boot);
    if (n->boot == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory");
    int rc = members_load(n, n->boot, &n->n_boot, err);
    if (rc == RKV_OK) {
        bool left = node_file_exists(n, LEFT_FILE);
        for (size_t i = 0; i < n->n_boot; i++) {
            const struct gossip_node *st = &n->boot[i];
            if (strcmp(st->id, n->me->id) != 0)
                continue;
            bool leaving_file = node_file_exists(n, LEAVING_FILE);
            /* MEMBERS says leaving, with no LEAVING file: a node that left
             * before these files existed */
            bool left_before = st->status == GOSSIP_LEAVING && !leaving_file;
            if (st->status == GOSSIP_REMOVED || left || left_before)
                return rkv_error_set(err, RKV_ERR_INVAL,
                                     "node: %s %s the ring (%s/%s says so): to bring it back, "
                                     "empty its data_dir and start it with --join",
                                     n->me->id, left || left_before ? "left" : "was removed from",
                                     n->me->data_dir, left ? LEFT_FILE : MEMBERS_FILE);
            /* LEAVING decides, whatever MEMBERS says: its save may have
             * failed after the leave was taken */
            if (leaving_file) {
                RKV_INFO("node", "%s: was leaving when it stopped: goes on leaving",
                         n->me->id);
                n->leaving = true;
            } else if (st->status == GOSSIP_JOINING) {
                RKV_INFO("node", "%s: was joining when it stopped: goes on joining",
                         n->me->id);
                n->joining = true;
            }
        }
        if (join)
            RKV_WARN("node", "%s: --join ignored: %s/%s knows the ring already", n->me->id,
                     n->me->data_dir, MEMBERS_FILE);
    } else if (rc != RKV_ERR_NOTFOUND) {
        return rc;
    } else if (join) {
        /* the seed's [[node]] entry, found by its cluster address */
        const struct config_node *seed = NULL;
        char host[CONFIG_HOST_BYTES];
        unsigned port = 0;
        const char *colon = strrchr(join, ':');
        if (colon == NULL || colon == join || (size_t)(colon - join) >= sizeof host ||
            sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
            return rkv_error_set(err, RKV_ERR_INVAL, "node: --join %s: expected HOST:PORT", join);
        memcpy(host, join, (size_t)(colon - join));
        host[colon - join] = '\0';
        for (size_t i = 0; i < n->cfg->n_nodes && seed == NULL; i++)
            if (strcmp(n->cfg->nodes[i].host, host) == 0 && n->cfg->nodes[i].cluster_port == port)
                seed = &n->cfg->nodes[i];
        if (seed == NULL || seed == n->me)
            return rkv_error_set(err, RKV_ERR_INVAL,
                                 "node: --join %s: no other [[node]] of %s has that cluster "
                                 "address (list the member to join through there)",
                                 join, n->cfg->path);
        state_of_config(n, seed, &n->boot[0]);
        n->n_boot = 1;
        n->joining = true;
    } else {
        for (size_t i = 0; i < n->cfg->n_nodes; i++)
            state_of_config(n, &n->cfg->nodes[i], &n->boot[n->n_boot++]);
    }
    const struct gossip_node **all = rkv_calloc(n->n_boot + 1, sizeof *all);
    if (all == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory");
    for (size_t i = 0; i < n->n_boot; i++)
        all[i] = &n->boot[i];
    n->ring = ring_of(n, all, n->n_boot, err);
    rkv_free(all);
    return n->ring ? RKV_OK : err->code;
}

int membership_open(struct node *n, struct rkv_error *err)
{
    const char **seeds = rkv_calloc(n->cfg->n_nodes + 1, sizeof *seeds);
    if (seeds == NULL)
        return rkv_error_set(err, RKV_ERR_NOMEM, "membership: out of memory");
    for (size_t i = 0; i < n->cfg->n_nodes; i++)
        seeds[i] = n->cfg->nodes[i].id;
    struct gossip_options o = {
        .cluster = n->cfg->name,
        .seeds = seeds,
        .n_seeds = n->cfg->n_nodes,
        .interval_ms = NODE_GOSSIP_INTERVAL_MS,
        .message_bytes_max = n->cfg->message_bytes_max,
    };
    struct gossip_node *self = &o.self;
    snprintf(self->id, sizeof self->id, "%s", n->me->id);
    snprintf(self->host, sizeof self->host, "%s", n->me->host);
    self->client_port = n->me->client_port;
    self->cluster_port = n->me->cluster_port;
    self->vnodes = n->cfg->vnodes;
    /* new on every start, and greater than the last one's: the wall clock */
    self->incarnation = rkv_clock_realtime_ms();
    self->status = n->leaving ? GOSSIP_LEAVING : n->joining ? GOSSIP_JOINING : GOSSIP_UP;
    n->leave_ms = rkv_clock_mono_ms();
    if (getrandom(&o.rng_seed, sizeof o.rng_seed, 0) != sizeof o.rng_seed)
        o.rng_seed = self->incarnation ^ XXH3_64bits(n->me->id, strlen(n->me->id));
    int rc = gossip_new(&o, &n->gossip, err);
    rkv_free(seeds);
    for (size_t i = 0; rc == RKV_OK && i < n->n_boot; i++)
        if (gossip_learn(n->gossip, &n->boot[i]) == RKV_ERR_NOMEM)
            rc = rkv_error_set(err, RKV_ERR_NOMEM, "membership: out of memory");
    rkv_free(n->boot);
    n->boot = NULL;
    if (rc == RKV_OK)
        members_save(n);
    return rc;
}

void membership_close(struct node *n)
{
    if (n->gossip && n->left)
        members_save(n);
    gossip_free(n->gossip);
    n->gossip = NULL;
    rkv_free(n->boot);
    n->boot = NULL;
}

/* Sends what gossip queued, each message to the member it names. */
static void send_outbox(struct node *n)
{
    size_t count;
    struct gossip_out *out = gossip_outbox(n->gossip, &count);
    for (size_t i = 0; i < count; i++) {
        int member = node_peer_find(n, out[i].to, strlen(out[i].to));
        if (member < 0 || (uint32_t)member == n->self)
            continue;
        n->buf.len = 0;
        if (wire_encode_wrapped(&n->buf, WIRE_GOSSIP, 0, ring_epoch(n->ring), out[i].msg.data,
                                out[i].msg.len) != RKV_OK)
            continue;
        /* to a member whose address is not known yet (one that is joining
         * and spoke first), through the connection it made to us */
        if (n->peer[member]->sock)
            node_send_peer(n, (uint32_t)member, n->buf.data, n->buf.len);
        else
            node_send_cluster(n, (uint32_t)member, n->buf.data, n->buf.len);
    }
    gossip_outbox_clear(n->gossip);
}

/* A slot and a connection for every member gossip knows an address of. */
static void connect_members(struct node *n)
{
    for (size_t i = 0; i < gossip_member_count(n->gossip); i++) {
        const struct gossip_node *m = gossip_member(n->gossip, i);
        if (m->status == GOSSIP_REMOVED)
            continue;
        int32_t slot = node_peer_add(n, m->id, strlen(m->id));
        struct rkv_error err;
        if (slot >= 0 && (uint32_t)slot != n->self &&
            node_peer_connect(n, (uint32_t)slot, m->host, m->client_port, m->cluster_port,
                              &err) != RKV_OK &&
            n->connect_warned++ < 8)
            RKV_WARN("node", "%s: %s", n->me->id, err.msg);
    }
}

/* Takes the ring of the member table if it differs from the one served. */
static void follow_ring(struct node *n)
{
    size_t count = gossip_member_count(n->gossip);
    const struct gossip_node **all = rkv_calloc(count, sizeof *all);
    if (all == NULL)
        return;
    size_t up = 0;
    bool same = true;
    for (size_t i = 0; i < count; i++) {
        all[i] = gossip_member(n->gossip, i);
        if (all[i]->status != GOSSIP_UP)
            continue;
        /* both sorted by id: the same ring iff the same ids and vnodes in order */
        same = same && up < ring_member_count(n->ring) &&
               strcmp(ring_member_id(n->ring, (uint32_t)up), all[i]->id) == 0 &&
               ring_member_vnodes(n->ring, (uint32_t)up) == all[i]->vnodes;
        up++;
    }
    if (same && up == ring_member_count(n->ring)) {
        rkv_free(all);
        return;
    }
    struct rkv_error err;
    struct ring *r = up ? ring_of(n, all, count, &err) : NULL;
    rkv_free(all);
    if (r == NULL)
        return;
    RKV_INFO("node", "%s: the ring changes: %u members, epoch %016llx -> %016llx", n->me->id,
             ring_member_count(r), (unsigned long long)ring_epoch(n->ring),
             (unsigned long long)ring_epoch(r));
    connect_members(n);
    handoff_ring_changed(n, n->ring, r);
    node_set_ring(n, r);
    members_save(n);
}

/* Tells the coordinator who is down (suspect), for sloppy quorum. */
static void refresh_down(struct node *n, uint64_t now)
{
    for (uint32_t i = 0; i < n->n_peers; i++) {
        bool down = !membership_alive(n, i);
        if (down && isinf(gossip_phi(n->gossip, n->peer[i]->id, now)))
            down = now - n->started_ms > MEMBERSHIP_STARTUP_GRACE_MS; /* never heard yet */
        coord_set_down(n->coord, i, down);
    }
}

/* Tells gossip how far this node is through the last ring change. */
static void publish_progress(struct node *n)
{
    struct node_handoff_stats ho;
    handoff_stats(n, &ho);
    uint32_t pending = ho.partitions_pending > RKV_PARTITIONS_MAX ? RKV_PARTITIONS_MAX
                                                                  : (uint32_t)ho.partitions_pending;
    gossip_set_progress(n->gossip, ring_epoch(n->ring), pending);
}

/* A joining node that waits says why: every MEMBERSHIP_WAIT_LOG_MS, as a
 * warning once it has waited MEMBERSHIP_WAIT_WARN_MS. */
static void log_join_wait(struct node *n, uint64_t now, const char *why)
{
    if (n->join_wait_since_ms == 0)
        n->join_wait_since_ms = now;
    if (now - n->join_logged_ms < MEMBERSHIP_WAIT_LOG_MS)
        return;
    n->join_logged_ms = now;
    uint64_t waited = now - n->join_wait_since_ms;
    if (waited < MEMBERSHIP_WAIT_WARN_MS)
        RKV_INFO("node", "%s: waits to join: another ring change is under way (%s)",
                 n->me->id, why);
    else
        RKV_WARN("node", "%s: has waited %llu s to join: another ring change is under "
                 "way (%s); a member that stays on another ring may have another "
                 "partitions or replicas setting in its cluster.toml, and a handoff "
                 "that waits for a dead member ends once it is back or removed",
                 n->me->id, (unsigned long long)(waited / 1000), why);
}

/* A joining node is up once it has heard a member that is (it then knows
 * the table: an ACK carries every state it lacks) and no other change has
 * been under way for MEMBERSHIP_QUIET_MS since; until then it waits, and
 * says why. */
static void finish_join(struct node *n, uint64_t now)
{
    const struct gossip_node *me = gossip_self(n->gossip);
    if (me->status != GOSSIP_JOINING)
        return;
    /* an UP member heard since this start (states loaded from MEMBERS, or
     * cluster.toml's, are no heartbeats): the table is then news */
    const struct gossip_node *via = NULL;
    for (size_t i = 0; i < gossip_member_count(n->gossip) && via == NULL; i++) {
        const struct gossip_node *m = gossip_member(n->gossip, i);
        if (m != me && m->status == GOSSIP_UP && m->incarnation > 1 &&
            gossip_alive(n->gossip, m->id, now))
            via = m;
    }
    char why[MEMBERSHIP_WHY_BYTES];
    if (via == NULL || gossip_change_pending(n->gossip, now, why, sizeof why)) {
        n->quiet_since_ms = 0;
        if (via != NULL)
            log_join_wait(n, now, why);
        return;
    }
    if (n->quiet_since_ms == 0)
        n->quiet_since_ms = now;
    if (now - n->quiet_since_ms < MEMBERSHIP_QUIET_MS)
        return;
    gossip_set_status(n->gossip, GOSSIP_UP);
    members_save(n); /* a restart now starts up, not joining again */
    RKV_INFO("node", "%s: joined the ring through %s", n->me->id, via->id);
}

/* A leaving node stops once it has handed over everything (its hints
 * are rehomed into its store, and handed over from there) and its leave
 * has had time to spread (others must stop sending it writes first). */
static void finish_leave(struct node *n, uint64_t now)
{
    if (!n->leaving || n->left || now - n->leave_ms < MEMBERSHIP_LEAVE_SPREAD_MS ||
        !hints_idle(n) || !handoff_idle(n))
        return;
    n->left = true;
    RKV_INFO("node", "%s: left the ring: every partition it held is handed over; stopping",
             n->me->id);
    static const char left[] = "ringkv-left 1\n";
    if (node_save_file(n, LEFT_FILE, left, sizeof left - 1) != 0)
        RKV_ERROR("node", "cannot write %s/%s: %s (a restart would go on leaving, "
                  "with nothing left to hand over)", n->me->data_dir, LEFT_FILE,
                  strerror(errno));
    members_save(n);
    *n->stop = 1;
}

void membership_turn(struct node *n)
{
    if (n->gossip == NULL)
        return;
    uint64_t now = rkv_clock_mono_ms();
    if (now >= gossip_next_deadline(n->gossip))
        gossip_tick(n->gossip, now);
    send_outbox(n);
    if (now - n->down_checked_ms < MEMBERSHIP_DOWN_REFRESH_MS)
        return;
    n->down_checked_ms = now;
    connect_members(n);
    follow_ring(n);
    publish_progress(n);
    finish_join(n, now);
    refresh_down(n, now);
    finish_leave(n, now);
}

int membership_leave(struct node *n, bool force, char *msg, size_t size)
{
    if (n->leaving) {
        snprintf(msg, size, "%s is leaving already", n->me->id);
        return RKV_OK;
    }
    if (ring_member_count(n->ring) <= 1 || n->self_ring < 0) {
        snprintf(msg, size, "%s is not a member of a ring it could leave to others",
                 n->me->id);
        return RKV_ERR_INVAL;
    }
    uint64_t now = rkv_clock_mono_ms();
    char why[MEMBERSHIP_WHY_BYTES];
    if (!force && gossip_change_pending(n->gossip, now, why, sizeof why)) {
        snprintf(msg, size, "%s cannot leave now: another ring change is under way (%s); ask "
                 "again once `ringkv ring` shows no handoff, or leave with --force",
                 n->me->id, why);
        return RKV_ERR_BUSY;
    }
    /* first on disk, so that a restart goes on leaving */
    static const char leaving[] = "ringkv-leaving 1\n";
    if (node_save_file(n, LEAVING_FILE, leaving, sizeof leaving - 1) != 0) {
        snprintf(msg, size, "%s cannot leave: cannot write %s/%s: %s", n->me->id,
                 n->me->data_dir, LEAVING_FILE, strerror(errno));
        return RKV_ERR_IO;
    }
    int rc = gossip_set_status(n->gossip, GOSSIP_LEAVING);
    if (rc != RKV_OK) {
        snprintf(msg, size, "%s cannot leave: %s", n->me->id, rkv_strerror(rc));
        return rc;
    }
    n->leaving = true;
    n->leave_ms = rkv_clock_mono_ms();
    members_save(n);
    n->down_checked_ms = 0; /* take the new ring at the next turn */
    snprintf(msg, size, "%s is leaving: it hands over its partitions, then stops", n->me->id);
    RKV_INFO("node", "%s", msg);
    return RKV_OK;
}

int membership_remove(struct node *n, const char *id, char *msg, size_t size)
{
    const struct gossip_node *m = gossip_find(n->gossip, id);
    if (m == NULL) {
        snprintf(msg, size, "%s is not a member", id);
        return RKV_ERR_NOTFOUND;
    }
    if (strcmp(id, n->me->id) == 0) {
        snprintf(msg, size, "a node cannot remove itself: use leave");
        return RKV_ERR_INVAL;
    }
    if (m->status == GOSSIP_REMOVED) {
        snprintf(msg, size, "%s is removed already", id);
        return RKV_OK;
    }
    if (gossip_alive(n->gossip, id, rkv_clock_mono_ms())) {
        snprintf(msg, size, "%s is alive: ask it to leave (ringkv leave) so that it hands its "
                 "data over; remove is for a member that is gone", id);
        return RKV_ERR_INVAL;
    }
    gossip_remove_at(n->gossip, id, rkv_clock_realtime_ms());
    members_save(n);
    n->down_checked_ms = 0;
    snprintf(msg, size, "%s is removed: its partitions are rebuilt from the other replicas", id);
    RKV_INFO("node", "%s: %s", n->me->id, msg);
    return RKV_OK;
}

uint64_t membership_next_ms(const struct node *n)
{
    return n->gossip ? gossip_next_deadline(n->gossip) : UINT64_MAX;
}

void membership_on_message(struct node *n, uint32_t member, const struct wire_msg *m)
{
    if (n->gossip == NULL)
        return;
    int rc = gossip_on_message_from(n->gossip, rkv_clock_mono_ms(), n->peer[member]->id,
                                    m->inner.p, m->inner.len);
    if (rc != RKV_OK && n->stats.gossip_refused++ == 0)
        RKV_WARN("node", "%s: %s (refusing such gossip; logged once)", n->me->id,
                 gossip_errmsg(n->gossip));
    send_outbox(n); /* the answer, if any */
}

bool membership_alive(const struct node *n, uint32_t member)
{
    return n->gossip == NULL || member == n->self ||
           gossip_alive(n->gossip, n->peer[member]->id, rkv_clock_mono_ms());
}

bool membership_gone(const struct node *n, const char *id)
{
    const struct gossip_node *m = n->gossip ? gossip_find(n->gossip, id) : NULL;
    return m && (m->status == GOSSIP_LEAVING || m->status == GOSSIP_REMOVED);
}

uint32_t membership_suspects(const struct node *n)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < n->n_peers; i++) /* a member that left is not suspect */
        count += !membership_gone(n, n->peer[i]->id) && !membership_alive(n, i);
    return count;
}

const char *membership_address(const struct node *n, const char *id, uint16_t *client_port,
                               uint16_t *cluster_port)
{
    const struct gossip_node *m = n->gossip ? gossip_find(n->gossip, id) : NULL;
    if (m == NULL)
        return NULL;
    *client_port = m->client_port;
    *cluster_port = m->cluster_port;
    return m->host;
}

bool membership_change_pending(const struct node *n)
{
    return n->gossip && gossip_change_pending(n->gossip, rkv_clock_mono_ms(), NULL, 0);
}

bool membership_joining(const struct node *n)
{
    return n->gossip && gossip_self(n->gossip)->status == GOSSIP_JOINING;
}

const char *membership_outside(const struct node *n, uint32_t member)
{
    const struct gossip_node *m = n->gossip ? gossip_find(n->gossip, n->peer[member]->id) : NULL;
    if (m == NULL || (m->status != GOSSIP_JOINING && m->status != GOSSIP_LEAVING) ||
        !membership_alive(n, member))
        return NULL;
    return status_name(m->status);
}
